/*
 * alert: queue, dedup and rate limit under one mutex; one sender thread
 * formats and POSTs.  See alert.h for the contract.
 *
 * Deliberate quirk: rs_alert_fire decides twice.  The first pass, under
 * the lock, settles every call that will not be queued (the common case
 * in an incident: a burst folded into one notification) without
 * allocating; only a call that looks like it will be queued copies its
 * arguments, outside the lock, and then decides again, because another
 * thread may have queued the same name meanwhile.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alert.h"
#include "buf.h"
#include "util.h"

#define RATE_WINDOW_MS RS_MS_PER_MIN
#define HOST_MAX 256
#define SOURCE_DEFAULT "resync"
#define SEVERITY_DEFAULT "warning"
#define RESOLVED_DEFAULT "resolved"
/* Slack: a field's text may hold 2000 characters and a section's 3000;
 * a value cut to this stays below both once escaped (at most 5x). */
#define SLACK_VALUE_MAX 300
/* Our summaries are one line; a payload beyond this is a bug upstream. */
#define PAYLOAD_MAX (64 * RS_KIB)

struct job {
	bool resolved;
	int64_t time_ms;                  /* wall clock of the call */
	uint64_t repeats;
	json_t *details;                  /* owned; NULL = none */
	char name[RS_ALERT_NAME_MAX];
	char severity[RS_ALERT_SEVERITY_MAX];
	char summary[RS_ALERT_SUMMARY_MAX];
};

/* A name whose firing notification was queued and not yet resolved. */
struct firing {
	char name[RS_ALERT_NAME_MAX];
	char severity[RS_ALERT_SEVERITY_MAX];
	int64_t notified_ms;              /* monotonic, last queued notification */
	uint64_t suppressed;              /* deduplicated since then */
};

struct rs_alerter {
	/* set by _new, read-only afterwards */
	enum rs_alert_format format;
	char *url, *source, *ca_file;
	char host[HOST_MAX];              /* the only part of url we ever show */
	char *secret[3];                  /* its path, query, password, or NULL */
	int64_t timeout_ms, repeat_interval_ms;
	unsigned max_per_minute, queue_size;
	CURL *curl;                       /* the sender thread's alone */
	char errbuf[CURL_ERROR_SIZE];     /* the sender thread's alone */
	struct curl_slist *headers;
	pthread_t thread;

	/* lock guards everything below; wake tells the sender about a job
	 * or about stopping */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	struct job **queue;               /* ring of queue_size */
	unsigned qhead, qlen;
	bool in_flight;
	struct firing firing[RS_ALERT_NAMES_MAX]; /* the first nfiring in use */
	unsigned nfiring;
	int64_t *sent_at;                 /* ring of max_per_minute queue times */
	unsigned sent_head, sent_len;
	struct rs_alert_stats st;
};

/* ---- small helpers ----------------------------------------------------------- */

/* Length of the UTF-8 sequence starting at s (at most avail bytes), or 0
 * when it is not a valid one. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	size_t n;
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong 3/4-byte forms, surrogates, beyond U+10FFFF */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/* Copy src into dst (n bytes), cut at a character boundary, with invalid
 * UTF-8 bytes and control characters replaced by '?': jansson refuses
 * invalid strings, and one bad byte in a summary must not cost the alert. */
static void copy_utf8(char *dst, size_t n, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, len = strlen(src);

	for (size_t i = 0; i < len;) {
		size_t k = utf8_len(s + i, len - i);

		if (k == 0 || (k == 1 && s[i] < 0x20)) {
			if (o + 1 >= n)
				break;
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + k >= n)
			break;
		memcpy(dst + o, s + i, k);
		o += k;
		i += k;
	}
	dst[o] = '\0';
}

static bool has_scheme(const char *s, const char *scheme)
{
	return strcasecmp(s, scheme) == 0;
}

/* Check url and copy its host into host; err never shows more than the
 * host, since the path or user part may hold the webhook's secret. */
static int check_url(const char *url, char *host, size_t n, char *secret[3],
		     struct rs_err *err)
{
	static const CURLUPart parts[3] = {
		CURLUPART_PATH, CURLUPART_QUERY, CURLUPART_PASSWORD,
	};
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL;
	CURLUcode uc;
	int rc = -1;

	if (!u)
		return rs_err_set(err, "alerts: out of memory");
	uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		rs_err_set(err, "alerts: invalid webhook url: %s", curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h) {
		rs_err_set(err, "alerts: webhook url has no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    !(has_scheme(scheme, "http") || has_scheme(scheme, "https"))) {
		rs_err_set(err, "alerts: webhook url for host '%s' is not http:// or https://", h);
		goto out;
	}
	if (host)
		rs_copy_text(host, n, h);
	for (size_t i = 0; secret && i < RS_ARRAY_SIZE(parts); i++) {
		char *part = NULL;

		/* "/" alone gives nothing away and would match any message */
		if (curl_url_get(u, parts[i], &part, 0) == CURLUE_OK && strlen(part) > 1)
			secret[i] = strdup(part);
		curl_free(part);
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_url_cleanup(u);
	return rc;
}

static void job_free(struct job *j)
{
	if (j) {
		json_decref(j->details);
		free(j);
	}
}

/* ---- payloads ------------------------------------------------------------------ */

static const char *status_name(const struct job *j)
{
	return j->resolved ? "resolved" : "firing";
}

static json_t *generic_payload(const struct rs_alerter *a, const struct job *j,
			       const char *when)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O}",
			 "status", status_name(j), "name", j->name,
			 "severity", j->severity, "summary", j->summary,
			 "source", a->source, "time", when,
			 "repeats", (json_int_t)j->repeats,
			 "details", j->details);
}

/* Slack's mrkdwn treats &, < and > as control characters. */
static int slack_escape(struct rs_buf *b, const char *s)
{
	for (; *s; s++) {
		const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" :
				*s == '>' ? "&gt;" : NULL;

		if (e ? rs_buf_puts(b, e) : rs_buf_putc(b, *s))
			return -1;
	}
	return 0;
}

/* One mrkdwn field "*title*\nvalue" appended to fields. */
static int slack_field(json_t *fields, const char *title, const char *value)
{
	struct rs_buf b;
	char cut[SLACK_VALUE_MAX];
	int rc = -1;

	rs_buf_init(&b, PAYLOAD_MAX);
	copy_utf8(cut, sizeof(cut), value);
	if (rs_buf_putc(&b, '*') == 0 && slack_escape(&b, title) == 0 &&
	    rs_buf_puts(&b, "*\n") == 0 && slack_escape(&b, cut) == 0)
		rc = json_array_append_new(fields,
					   json_pack("{s:s, s:s}", "type", "mrkdwn",
						     "text", rs_buf_str(&b)));
	rs_buf_free(&b);
	return rc;
}

static json_t *slack_section(json_t *fields)
{
	return json_pack("{s:s, s:o}", "type", "section", "fields", fields);
}

/* {"text": fallback, "blocks": [headline, name/time/source/repeats,
 * details]}: the shape of a Slack incoming webhook message. */
static json_t *slack_payload(const struct rs_alerter *a, const struct job *j,
			     const char *when)
{
	const char *tag = j->resolved ? "RESOLVED" : "FIRING";
	json_t *root = NULL, *blocks = json_array(), *meta = json_array();
	json_t *info = NULL;
	struct rs_buf text, head;
	char repeats[32], title[RS_ALERT_NAME_MAX];
	const char *key;
	json_t *v;
	unsigned nfields = 0;
	int bad = !blocks || !meta;

	rs_buf_init(&text, PAYLOAD_MAX);
	rs_buf_init(&head, PAYLOAD_MAX);
	bad |= rs_buf_printf(&text, "[%s] ", tag) || slack_escape(&text, j->severity) ||
	       rs_buf_puts(&text, ": ") || slack_escape(&text, j->summary) ||
	       rs_buf_puts(&text, " (") || slack_escape(&text, a->source) ||
	       rs_buf_putc(&text, ')');
	bad |= rs_buf_printf(&head, "*[%s] ", tag) || slack_escape(&head, j->severity) ||
	       rs_buf_puts(&head, "*: ") || slack_escape(&head, j->summary);
	snprintf(repeats, sizeof(repeats), "%llu", (unsigned long long)j->repeats);
	bad |= slack_field(meta, "name", j->name) || slack_field(meta, "time", when) ||
	       slack_field(meta, "source", a->source);
	if (j->repeats)
		bad |= slack_field(meta, "repeats", repeats);
	if (bad)
		goto out;
	json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "section",
						"text", "type", "mrkdwn", "text",
						rs_buf_str(&head)));
	json_array_append_new(blocks, slack_section(meta));
	meta = NULL;
	if (j->details && json_object_size(j->details)) {
		info = json_array();
		json_object_foreach(j->details, key, v) {
			char *dump = NULL;

			if (!info || nfields++ == RS_ALERT_SLACK_FIELDS_MAX)
				break;
			if (!json_is_string(v))
				dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			copy_utf8(title, sizeof(title), key);
			slack_field(info, title, dump ? dump : json_is_string(v) ?
				    json_string_value(v) : "?");
			free(dump);
		}
		if (info && json_array_size(info))
			json_array_append_new(blocks, slack_section(info));
		else
			json_decref(info);
		info = NULL;
	}
	root = json_pack("{s:s, s:O}", "text", rs_buf_str(&text), "blocks", blocks);
out:
	json_decref(info);
	json_decref(meta);
	json_decref(blocks);
	rs_buf_free(&text);
	rs_buf_free(&head);
	return root;
}

/* The request body, malloc'd; NULL when out of memory. */
static char *payload(const struct rs_alerter *a, struct job *j)
{
	char when[32];
	json_t *root;
	char *body;

	rs_format_utc(j->time_ms, when, sizeof(when));
	if (!j->details)
		j->details = json_object();
	if (!j->details)
		return NULL;
	root = a->format == RS_ALERT_SLACK ? slack_payload(a, j, when) :
					     generic_payload(a, j, when);
	body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return body;
}

/* ---- the sender thread ------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Does text quote a secret part of the URL? */
static bool tells_secret(const struct rs_alerter *a, const char *text)
{
	for (size_t i = 0; i < RS_ARRAY_SIZE(a->secret); i++)
		if (a->secret[i] && strstr(text, a->secret[i]))
			return true;
	return false;
}

/* One POST; 0 on a 2xx answer, else -1 with why in msg (the host and
 * curl's message cut so both fit RS_ALERT_ERROR_MAX). */
static int post(struct rs_alerter *a, const char *body, char *msg, size_t n)
{
	CURLcode rc;
	long status = 0;

	a->errbuf[0] = '\0';
	curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	rc = curl_easy_perform(a->curl);
	if (rc != CURLE_OK) {
		/* curl's messages name hosts and ports, not URLs; should one
		 * ever quote the path (a Slack token), keep the generic text */
		snprintf(msg, n, "POST to %.100s: %.140s", a->host,
			 a->errbuf[0] && !tells_secret(a, a->errbuf) ?
				 a->errbuf : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(msg, n, "POST to %.100s: HTTP %ld", a->host, status);
		return -1;
	}
	return 0;
}

static void note_error(struct rs_alerter *a, const char *msg)
{
	rs_copy_text(a->st.last_error, sizeof(a->st.last_error), msg);
	a->st.last_error_ms = rs_now_ms();
}

/* Send one job, retrying once; called and returns with the lock held. */
static void deliver(struct rs_alerter *a, struct job *j)
{
	char msg[RS_ALERT_ERROR_MAX];
	struct timespec until;
	char *body;
	int rc;

	pthread_mutex_unlock(&a->lock);
	body = payload(a, j);
	rc = body ? post(a, body, msg, sizeof(msg)) : -1;
	if (!body)
		snprintf(msg, sizeof(msg), "cannot build the '%s' notification: out of memory",
			 j->name);
	pthread_mutex_lock(&a->lock);
	if (rc < 0 && body) {
		note_error(a, msg);
		rs_deadline_after(&until, CLOCK_MONOTONIC, RS_ALERT_RETRY_BACKOFF_MS);
		while (!a->stopping &&
		       pthread_cond_timedwait(&a->wake, &a->lock, &until) == 0)
			;
		if (!a->stopping) {
			a->st.retried++;
			pthread_mutex_unlock(&a->lock);
			rc = post(a, body, msg, sizeof(msg));
			pthread_mutex_lock(&a->lock);
		}
	}
	if (rc == 0) {
		a->st.sent++;
	} else {
		a->st.failed++;
		note_error(a, msg);
	}
	free(body);
}

static void *sender_main(void *arg)
{
	struct rs_alerter *a = arg;
	struct job *j;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->stopping && a->qlen == 0)
			pthread_cond_wait(&a->wake, &a->lock);
		if (a->stopping)
			break;
		j = a->queue[a->qhead];
		a->queue[a->qhead] = NULL;
		a->qhead = (a->qhead + 1) % a->queue_size;
		a->qlen--;
		a->in_flight = true;
		deliver(a, j);
		a->in_flight = false;
		/* free with the lock dropped: details may be large */
		pthread_mutex_unlock(&a->lock);
		job_free(j);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- new / free ---------------------------------------------------------------- */

void rs_alert_options_default(struct rs_alert_options *o)
{
	memset(o, 0, sizeof(*o));
	o->format = RS_ALERT_GENERIC;
	o->timeout_ms = RS_ALERT_DEFAULT_TIMEOUT_MS;
	o->repeat_interval_ms = RS_ALERT_DEFAULT_REPEAT_INTERVAL_MS;
	o->max_per_minute = RS_ALERT_DEFAULT_MAX_PER_MINUTE;
	o->queue_size = RS_ALERT_DEFAULT_QUEUE_SIZE;
}

static int check_options(const struct rs_alert_options *o, struct rs_err *err)
{
	if (!o->url || !*o->url)
		return rs_err_set(err, "alerts: no webhook url");
	if (check_url(o->url, NULL, 0, NULL, err) < 0)
		return -1;
	if (o->format != RS_ALERT_GENERIC && o->format != RS_ALERT_SLACK)
		return rs_err_set(err, "alerts: unknown webhook format %d", (int)o->format);
	if (o->timeout_ms <= 0 || o->timeout_ms > INT32_MAX)
		return rs_err_set(err, "alerts: timeout must be above 0 ms, not %lld",
				  (long long)o->timeout_ms);
	if (o->repeat_interval_ms < 0)
		return rs_err_set(err, "alerts: repeat interval must not be negative");
	if (o->queue_size == 0 || o->queue_size > RS_ALERT_QUEUE_MAX)
		return rs_err_set(err, "alerts: queue size must be 1..%d, not %u",
				  RS_ALERT_QUEUE_MAX, o->queue_size);
	if (o->max_per_minute > RS_ALERT_PER_MINUTE_MAX)
		return rs_err_set(err, "alerts: max per minute must be 0..%d, not %u",
				  RS_ALERT_PER_MINUTE_MAX, o->max_per_minute);
	return 0;
}

static int setup_curl(struct rs_alerter *a, struct rs_err *err)
{
	struct curl_slist *h;

	a->curl = curl_easy_init();
	if (!a->curl)
		return rs_err_set(err, "alerts: cannot create a curl handle");
	/* "Expect:" off: a webhook answers at once, and a server that does
	 * not speak 100-continue would cost a second per POST */
	if (!(h = curl_slist_append(NULL, "Content-Type: application/json")))
		return rs_err_set(err, "alerts: out of memory");
	a->headers = h;
	if (!(h = curl_slist_append(a->headers, "Expect:")))
		return rs_err_set(err, "alerts: out of memory");
	a->headers = h;
	curl_easy_setopt(a->curl, CURLOPT_URL, a->url);
	curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(a->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(a->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(a->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)a->timeout_ms);
	curl_easy_setopt(a->curl, CURLOPT_TIMEOUT_MS, (long)a->timeout_ms);
	curl_easy_setopt(a->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(a->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (a->ca_file)
		curl_easy_setopt(a->curl, CURLOPT_CAINFO, a->ca_file);
	curl_easy_setopt(a->curl, CURLOPT_USERAGENT, "resync-alert");
	curl_easy_setopt(a->curl, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, discard);
	return 0;
}

static int init_sync(struct rs_alerter *a, struct rs_err *err)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);

	if (rc == 0) {
		/* the retry backoff must not jump with the wall clock */
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		rc = pthread_cond_init(&a->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc == 0 && (rc = pthread_mutex_init(&a->lock, NULL)) != 0)
		pthread_cond_destroy(&a->wake);
	if (rc != 0)
		return rs_err_errno(err, rc, "alerts: cannot initialise locks");
	return 0;
}

/* Everything but the thread and the locks. */
static void destroy(struct rs_alerter *a)
{
	curl_easy_cleanup(a->curl);
	curl_slist_free_all(a->headers);
	free(a->sent_at);
	free(a->queue);
	for (size_t i = 0; i < RS_ARRAY_SIZE(a->secret); i++)
		free(a->secret[i]);
	free(a->ca_file);
	free(a->source);
	free(a->url);
	free(a);
}

int rs_alerter_new(struct rs_alerter **out, const struct rs_alert_options *o,
		   struct rs_err *err)
{
	struct rs_alerter *a;
	int rc;

	*out = NULL;
	if (check_options(o, err) < 0)
		return -1;
	a = calloc(1, sizeof(*a));
	if (!a)
		return rs_err_set(err, "alerts: out of memory");
	if (check_url(o->url, a->host, sizeof(a->host), a->secret, err) < 0)
		goto fail;
	a->format = o->format;
	a->timeout_ms = o->timeout_ms;
	a->repeat_interval_ms = o->repeat_interval_ms;
	a->max_per_minute = o->max_per_minute;
	a->queue_size = o->queue_size;
	a->url = strdup(o->url);
	a->source = strdup(o->source && *o->source ? o->source : SOURCE_DEFAULT);
	a->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	a->queue = calloc(a->queue_size, sizeof(*a->queue));
	a->sent_at = calloc(a->max_per_minute ? a->max_per_minute : 1, sizeof(*a->sent_at));
	if (!a->url || !a->source || (o->ca_file && !a->ca_file) || !a->queue ||
	    !a->sent_at) {
		rs_err_set(err, "alerts: out of memory");
		goto fail;
	}
	if (setup_curl(a, err) < 0 || init_sync(a, err) < 0)
		goto fail;
	rc = pthread_create(&a->thread, NULL, sender_main, a);
	if (rc != 0) {
		rs_err_errno(err, rc, "alerts: cannot start the sender thread");
		pthread_cond_destroy(&a->wake);
		pthread_mutex_destroy(&a->lock);
		goto fail;
	}
	*out = a;
	return 0;
fail:
	destroy(a);
	return -1;
}

void rs_alerter_free(struct rs_alerter *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (unsigned i = 0; i < a->qlen; i++)
		job_free(a->queue[(a->qhead + i) % a->queue_size]);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	destroy(a);
}

/* ---- fire / resolve ------------------------------------------------------------ */

enum verdict { QUEUE, DEDUPLICATED, RATE_LIMITED, DROPPED };

/* The firing entry of name, or NULL; lock held. */
static struct firing *find(struct rs_alerter *a, const char *name)
{
	for (unsigned i = 0; i < a->nfiring; i++)
		if (strcmp(a->firing[i].name, name) == 0)
			return &a->firing[i];
	return NULL;
}

static void forget(struct rs_alerter *a, struct firing *f)
{
	*f = a->firing[--a->nfiring];
}

/* Queue times of the last minute, oldest first; lock held. */
static bool rate_limited(struct rs_alerter *a, int64_t now)
{
	if (!a->max_per_minute)
		return false;
	while (a->sent_len && now - a->sent_at[a->sent_head] >= RATE_WINDOW_MS) {
		a->sent_head = (a->sent_head + 1) % a->max_per_minute;
		a->sent_len--;
	}
	return a->sent_len == a->max_per_minute;
}

static void rate_note(struct rs_alerter *a, int64_t now)
{
	if (a->max_per_minute) {
		a->sent_at[(a->sent_head + a->sent_len) % a->max_per_minute] = now;
		a->sent_len++;
	}
}

/* What a fire call for name would come to now; lock held, no effects
 * apart from expiring old rate-limit entries. */
static enum verdict judge_fire(struct rs_alerter *a, const struct firing *f,
			       int64_t now)
{
	if (f && now - f->notified_ms < a->repeat_interval_ms)
		return DEDUPLICATED;
	if (rate_limited(a, now))
		return RATE_LIMITED;
	if (a->qlen == a->queue_size)
		return DROPPED;
	return QUEUE;
}

static void push(struct rs_alerter *a, struct job *j)
{
	a->queue[(a->qhead + a->qlen) % a->queue_size] = j;
	a->qlen++;
	a->st.queued++;
	pthread_cond_signal(&a->wake);
}

/* Count a verdict that queues nothing; lock held. */
static void count(struct rs_alerter *a, struct firing *f, enum verdict v)
{
	switch (v) {
	case DEDUPLICATED:
		a->st.deduplicated++;
		f->suppressed++;
		break;
	case RATE_LIMITED:
		a->st.rate_limited++;
		break;
	case DROPPED:
		a->st.dropped++;
		break;
	case QUEUE:
		break;
	}
}

static struct job *job_new(const char *name, const char *severity,
			   const char *summary, const json_t *details)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->time_ms = rs_now_ms();
	copy_utf8(j->name, sizeof(j->name), name);
	copy_utf8(j->severity, sizeof(j->severity), severity);
	copy_utf8(j->summary, sizeof(j->summary), summary ? summary : "");
	if (details && json_is_object(details)) {
		/* deep: the caller may change or free its object at once */
		j->details = json_deep_copy(details);
		if (!j->details) {
			free(j);
			return NULL;
		}
	}
	return j;
}

void rs_alert_fire(struct rs_alerter *a, const char *name, const char *severity,
		   const char *summary, const json_t *details)
{
	char key[RS_ALERT_NAME_MAX];
	struct job *j = NULL;
	struct firing *f;
	enum verdict v;
	int64_t now;

	if (!a)
		return;
	if (!severity || !*severity)
		severity = SEVERITY_DEFAULT;
	/* as the job will store it, so a long name still matches */
	copy_utf8(key, sizeof(key), name ? name : "");
	pthread_mutex_lock(&a->lock);
	a->st.fired++;
	if (!*key) {
		a->st.dropped++;
		goto out;
	}
	now = rs_monotonic_ms();
	f = find(a, key);
	v = judge_fire(a, f, now);
	if (v != QUEUE) {
		count(a, f, v);
		goto out;
	}
	pthread_mutex_unlock(&a->lock);
	j = job_new(key, severity, summary, details);
	pthread_mutex_lock(&a->lock);
	if (!j) {
		a->st.dropped++;
		goto out;
	}
	/* again: the name may have been queued or resolved meanwhile */
	now = rs_monotonic_ms();
	f = find(a, j->name);
	v = judge_fire(a, f, now);
	if (v != QUEUE) {
		count(a, f, v);
		goto out;
	}
	if (!f) {
		if (a->nfiring == RS_ALERT_NAMES_MAX) {
			unsigned old = 0;

			for (unsigned i = 1; i < a->nfiring; i++)
				if (a->firing[i].notified_ms < a->firing[old].notified_ms)
					old = i;
			forget(a, &a->firing[old]);
		}
		f = &a->firing[a->nfiring++];
		memcpy(f->name, j->name, sizeof(f->name));
	}
	memcpy(f->severity, j->severity, sizeof(f->severity));
	f->notified_ms = now;
	j->repeats = f->suppressed;
	f->suppressed = 0;
	rate_note(a, now);
	push(a, j);
	j = NULL;
out:
	pthread_mutex_unlock(&a->lock);
	job_free(j);
}

void rs_alert_resolve(struct rs_alerter *a, const char *name, const char *summary)
{
	char key[RS_ALERT_NAME_MAX];
	struct job *j;
	struct firing *f;

	if (!a || !name)
		return;
	copy_utf8(key, sizeof(key), name);
	pthread_mutex_lock(&a->lock);
	f = find(a, key);
	if (!f) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	pthread_mutex_unlock(&a->lock);
	j = job_new(key, "", summary ? summary : RESOLVED_DEFAULT, NULL);
	pthread_mutex_lock(&a->lock);
	/* again: another resolve may have won */
	f = find(a, key);
	if (!f)
		goto out;
	if (!j || a->qlen == a->queue_size) {
		a->st.dropped++;
	} else {
		j->resolved = true;
		memcpy(j->severity, f->severity, sizeof(j->severity));
		j->repeats = f->suppressed;
		a->st.resolved++;
		push(a, j);
		j = NULL;
	}
	/* the incident is over here even if its notice could not be queued */
	forget(a, f);
out:
	pthread_mutex_unlock(&a->lock);
	job_free(j);
}

void rs_alert_stats(struct rs_alerter *a, struct rs_alert_stats *st)
{
	if (!a) {
		memset(st, 0, sizeof(*st));
		return;
	}
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->pending = a->qlen + (a->in_flight ? 1 : 0);
	pthread_mutex_unlock(&a->lock);
}

static const char *const format_names[] = { "generic", "slack" };

const char *rs_alert_format_name(enum rs_alert_format f)
{
	return (unsigned)f < RS_ARRAY_SIZE(format_names) ? format_names[f] : "unknown";
}

int rs_alert_format_parse(const char *s, enum rs_alert_format *out)
{
	for (size_t i = 0; s && i < RS_ARRAY_SIZE(format_names); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum rs_alert_format)i;
			return 0;
		}
	return -1;
}
