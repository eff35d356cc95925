/*
 * alert: the incident notifier.  The responder calls rs_alert_fire when it
 * sees an incident (a breaker opened, persistence degraded, cache log
 * commits failing, memory near its bound, error rate or p95 latency high)
 * and rs_alert_resolve when it is over; this module POSTs one JSON
 * notification per incident to an operator's webhook ([alerts]
 * webhook_url), in a generic shape or as a Slack incoming-webhook message.
 *
 * Calls never wait for the network: rs_alert_fire and rs_alert_resolve
 * take one mutex for O(names) work and either queue a notification for
 * the sender thread or count why not:
 *
 *   deduplicated  the name is firing and its last notification went out
 *                 less than repeat_interval_ms ago; the call is folded
 *                 into the name's next notification as "repeats"
 *   rate_limited  max_per_minute firing notifications were already
 *                 queued in the last 60 s (all names together)
 *   dropped       queue_size notifications are already waiting (or
 *                 memory ran out, or the name was empty)
 *
 * A name is "firing" from the fire call whose notification was queued
 * until rs_alert_resolve, which queues one "resolved" notification and
 * forgets the name; resolving a name that is not firing does nothing.
 * A queued notification counts for dedup even if its POST then fails:
 * otherwise a dead webhook would get two POSTs per fire call.
 * Resolved notices are never rate-limited: there is at most one per
 * queued firing one, and an operator who saw "firing" must see
 * "resolved".  At most RS_ALERT_NAMES_MAX names fire at once; beyond,
 * the one notified longest ago is forgotten (its resolve then sends
 * nothing).
 *
 * Sending: one thread with one CURL easy handle (its connection kept
 * alive between POSTs), TLS verified, each POST bounded by timeout_ms.
 * A transport error or a non-2xx answer is retried once after
 * RS_ALERT_RETRY_BACKOFF_MS, then counted as failed: alerts must not pile
 * up behind a dead webhook.  The webhook URL is a secret (Slack's carry
 * the token in the path): errors and last_error name its host only.
 *
 * Generic payload:
 *   {"status":"firing"|"resolved","name":..,"severity":..,"summary":..,
 *    "source":..,"time":"2026-11-23T14:05:01Z","repeats":N,"details":{..}}
 * time is when the notified call was made (UTC); repeats counts the
 * deduplicated fire calls since the name's previous notification; details
 * is the fire call's object ({} when none, and for resolved notices).
 * Slack: "text" ("[FIRING] critical: summary (source)") plus blocks with
 * the name, time, repeats and up to RS_ALERT_SLACK_FIELDS_MAX details as
 * fields.
 *
 * Ownership: rs_alerter_new copies the option strings; fire copies name,
 * severity, summary (cut to their *_MAX) and a deep copy of details.
 * curl_global_init must have run before rs_alerter_new
 * (rs_pool_global_init).  Every function but _new/_free is thread-safe,
 * and a NULL alerter is accepted by all of them (alerts switched off).
 */
#ifndef RS_ALERT_H
#define RS_ALERT_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define RS_ALERT_NAME_MAX 128          /* bytes with the NUL; longer is cut */
#define RS_ALERT_SEVERITY_MAX 16
#define RS_ALERT_SUMMARY_MAX 512
#define RS_ALERT_ERROR_MAX 256
#define RS_ALERT_NAMES_MAX 256         /* names firing at once */
#define RS_ALERT_QUEUE_MAX 65536       /* largest queue_size accepted */
#define RS_ALERT_PER_MINUTE_MAX 10000  /* largest max_per_minute accepted */
#define RS_ALERT_RETRY_BACKOFF_MS 500
#define RS_ALERT_SLACK_FIELDS_MAX 10   /* Slack's limit per section block */

/* Defaults for the [alerts] keys, in one place. */
#define RS_ALERT_DEFAULT_TIMEOUT_MS 5000
#define RS_ALERT_DEFAULT_REPEAT_INTERVAL_MS (15 * 60 * 1000)
#define RS_ALERT_DEFAULT_MAX_PER_MINUTE 20
#define RS_ALERT_DEFAULT_QUEUE_SIZE 64

enum rs_alert_format { RS_ALERT_GENERIC, RS_ALERT_SLACK };

struct rs_alert_options {
	const char *url;                  /* http:// or https:// */
	enum rs_alert_format format;
	const char *source;               /* "resync-fcgi@host:pid"; NULL = "resync" */
	int64_t timeout_ms;               /* per POST, connect + transfer; > 0 */
	int64_t repeat_interval_ms;       /* >= 0; 0 = every fire is sent */
	unsigned max_per_minute;          /* 0 = unlimited */
	unsigned queue_size;              /* 1..RS_ALERT_QUEUE_MAX */
	const char *ca_file;              /* NULL = the system's CAs */
};

struct rs_alert_stats {
	uint64_t fired;                   /* rs_alert_fire calls */
	uint64_t queued;                  /* notifications queued (firing + resolved) */
	uint64_t resolved;                /* of those, resolved ones */
	uint64_t sent;                    /* POSTs answered 2xx */
	uint64_t failed;                  /* notifications given up after the retry */
	uint64_t retried;                 /* second attempts */
	uint64_t deduplicated, rate_limited, dropped;
	unsigned pending;                 /* queued or being sent now */
	int64_t last_error_ms;            /* wall clock; 0 = never failed */
	char last_error[RS_ALERT_ERROR_MAX]; /* "POST to HOST: ..."; "" = none */
};

struct rs_alerter;

/* The defaults above, generic format, no URL. */
void rs_alert_options_default(struct rs_alert_options *o);

/* Checks the options (err names the bad one, and the URL by its host
 * only), makes the CURL handle and starts the sender thread. */
int rs_alerter_new(struct rs_alerter **out, const struct rs_alert_options *o,
		   struct rs_err *err);
/* Stops the sender: waits for the POST in progress (at most timeout_ms;
 * its retry is skipped) and drops what is still queued. */
void rs_alerter_free(struct rs_alerter *a);

/* name: stable identifier and dedup key ("breaker_open:hwa"); severity
 * "critical", "warning" or "info" (NULL = "warning"); summary: one line;
 * details: a JSON object or NULL, borrowed. */
void rs_alert_fire(struct rs_alerter *a, const char *name, const char *severity,
		   const char *summary, const json_t *details);
/* summary NULL = "resolved". */
void rs_alert_resolve(struct rs_alerter *a, const char *name, const char *summary);

void rs_alert_stats(struct rs_alerter *a, struct rs_alert_stats *st);

const char *rs_alert_format_name(enum rs_alert_format f);   /* "generic", "slack" */
int rs_alert_format_parse(const char *s, enum rs_alert_format *out);

#endif
