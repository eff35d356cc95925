/*
 * alerts: the seed's incident response.  The housekeeping thread looks for
 * incidents every second, each under a stable name:
 *
 *   breaker_open:NAME     critical  a circuit breaker is open (or forced)
 *   persistence_degraded  critical  the cache log's last commit failed
 *   log_commit_failures   warning   commits failed in the last minute
 *   cache_memory_high     warning   memory >= [alerts] memory_percent
 *   error_rate_high       critical  5xx share of the last minute >=
 *                                   [alerts] error_rate_percent
 *   latency_p95_high      warning   p95 of the last minute >=
 *                                   [alerts] p95_latency
 *   audit_queue_full      critical  the audit queue is 90% full, refused
 *                                   a record, or cannot commit
 *
 * An incident is logged when it starts and when it ends, and, with
 * [alerts] webhook_url, handed to the notifier (src/common/alert.h), which
 * POSTs from its own thread, deduplicates and rate-limits: a request never
 * waits for it.  The minute figures leave out the probes and /metrics
 * (Prometheus's scrapes), and the latency also /api/ask, an LLM call that
 * takes seconds by nature; fewer than MIN_REQUESTS in a minute is too
 * little to judge.  The webhook settings need a restart; the thresholds
 * are read from the current configuration.
 *
 * State: the windows are written by the workers (atomics, and the
 * histogram's own atomic buckets); everything else belongs to the
 * housekeeping thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "histogram.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define WINDOW_MS 60000
#define MIN_REQUESTS 20
#define COMMIT_QUIET_MS 60000
/* memory must fall this many points below the threshold to end the
 * incident, so a cache hovering at the bound does not flap */
#define MEMORY_HYSTERESIS 5

struct window {
	atomic_uint_least64_t total, errors;
	struct rs_hist latency;     /* microseconds */
};

enum incident { I_PERSISTENCE, I_COMMITS, I_MEMORY, I_ERRORS, I_LATENCY, I_AUDIT, I_COUNT };

static const char *const incident_names[I_COUNT] = {
	"persistence_degraded", "log_commit_failures", "cache_memory_high",
	"error_rate_high", "latency_p95_high", "audit_queue_full",
};

static struct {
	struct rs_alerter *alerter;
	struct window win[2];
	atomic_uint cur;
	int64_t window_start_ms;
	bool firing[I_COUNT];
	bool *breaker_firing;       /* by breaker index */
	size_t nbreakers;
	uint64_t commit_failures;
	int64_t last_commit_failure_ms;
	uint64_t audit_refused;
	atomic_uint firing_now;
} A;

int alerts_start(struct server *s, const struct rs_config *cfg, struct rs_err *err)
{
	char source[160], host[96];
	struct rs_alert_options o;
	const char *url = rs_config_str(cfg, "alerts", "webhook_url");

	rs_hist_init(&A.win[0].latency);
	rs_hist_init(&A.win[1].latency);
	A.window_start_ms = rs_monotonic_ms();
	A.nbreakers = rs_upstreams_nbreakers(s->ups);
	if (A.nbreakers && !(A.breaker_firing = calloc(A.nbreakers, sizeof(bool))))
		return rs_err_set(err, "out of memory");
	if (!url || !*url)
		return 0;
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(source, sizeof(source), "resync-fcgi@%s:%ld", host, (long)getpid());
	rs_alert_options_default(&o);
	o.url = url;
	o.format = strcmp(rs_config_str(cfg, "alerts", "webhook_format"), "slack") == 0
		   ? RS_ALERT_SLACK : RS_ALERT_GENERIC;
	o.source = source;
	o.timeout_ms = rs_config_num(cfg, "alerts", "timeout");
	o.repeat_interval_ms = rs_config_num(cfg, "alerts", "repeat_interval");
	o.max_per_minute = (unsigned)rs_config_num(cfg, "alerts", "max_per_minute");
	if (rs_alerter_new(&A.alerter, &o, err) < 0) {
		rs_err_prefix(err, "[alerts] webhook_url");
		return -1;
	}
	return 0;
}

void alerts_stop(void)
{
	rs_alerter_free(A.alerter);
	A.alerter = NULL;
	free(A.breaker_firing);
	A.breaker_firing = NULL;
}

void alerts_observe(const struct req *r, int64_t took_us)
{
	const char *route = r->route_name ? r->route_name : "";

	if (strncmp(route, "/api/health", 11) == 0 || strcmp(route, "/metrics") == 0)
		return;
	struct window *w = &A.win[atomic_load_explicit(&A.cur, memory_order_relaxed) & 1];
	atomic_fetch_add_explicit(&w->total, 1, memory_order_relaxed);
	if (r->status >= 500)
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
	if (strcmp(route, "/api/ask") != 0)
		rs_hist_record(&w->latency, took_us > 0 ? (uint64_t)took_us : 0);
}

/* Fire (every check while it lasts: the notifier deduplicates) or resolve,
 * logging the edges. */
static void set(bool *firing, bool now, const char *name, const char *severity,
		const char *summary, json_t *details)
{
	if (now) {
		if (!*firing) {
			RS_LOG(strcmp(severity, "critical") == 0 ? RS_LOG_ERROR : RS_LOG_WARNING,
			       NULL, "incident %s: %s", name, summary);
			atomic_fetch_add(&A.firing_now, 1);
		}
		rs_alert_fire(A.alerter, name, severity, summary, details);
	} else if (*firing) {
		RS_LOG(RS_LOG_NOTICE, NULL, "incident %s is over", name);
		atomic_fetch_sub(&A.firing_now, 1);
		rs_alert_resolve(A.alerter, name, NULL);
	}
	*firing = now;
	json_decref(details);
}

static void check_breakers(struct server *s)
{
	int64_t now = rs_monotonic_ms();   /* the breakers' clock */

	for (size_t i = 0; i < A.nbreakers; i++) {
		struct rs_breaker_info bi;
		char name[RS_ALERT_NAME_MAX], summary[256];

		rs_breaker_info(rs_upstreams_breaker_at(s->ups, i), now, &bi);
		/* half-open is still the same incident: only a close ends it */
		if (bi.state == RS_BREAKER_HALF_OPEN)
			continue;
		bool open = bi.state == RS_BREAKER_OPEN || bi.state == RS_BREAKER_FORCED_OPEN;
		snprintf(name, sizeof(name), "breaker_open:%s", bi.name);
		snprintf(summary, sizeof(summary), "circuit breaker %s is %s", bi.name,
			 rs_breaker_state_name(bi.state));
		set(&A.breaker_firing[i], open, name, "critical", summary,
		    open ? json_pack("{s:s,s:s,s:I}", "breaker", bi.name, "state",
				     rs_breaker_state_name(bi.state), "failures",
				     (json_int_t)bi.failures) : NULL);
	}
}

static void check_store(struct server *s, const struct srv_conf *c)
{
	struct rs_wal_stats ws;
	struct rs_cache_stats cs;
	char summary[RS_ERR_MSG_MAX + 64];
	int64_t now = rs_monotonic_ms();

	rs_store_wal_stats(s->store, &ws);
	snprintf(summary, sizeof(summary), "cache log commits are failing: %s",
		 ws.last_error[0] ? ws.last_error : "unknown error");
	set(&A.firing[I_PERSISTENCE], ws.degraded, incident_names[I_PERSISTENCE], "critical",
	    summary, ws.degraded ? json_pack("{s:I}", "degraded_ms", (json_int_t)ws.degraded_ms)
				 : NULL);
	if (ws.commit_failures > A.commit_failures)
		A.last_commit_failure_ms = now;
	bool failing = A.last_commit_failure_ms && now - A.last_commit_failure_ms < COMMIT_QUIET_MS;
	snprintf(summary, sizeof(summary), "%llu cache log commits failed since start",
		 (unsigned long long)ws.commit_failures);
	set(&A.firing[I_COMMITS], failing, incident_names[I_COMMITS], "warning", summary,
	    failing ? json_pack("{s:I}", "commit_failures", (json_int_t)ws.commit_failures)
		    : NULL);
	A.commit_failures = ws.commit_failures;

	if (rs_cache_stats(rs_store_cache(s->store), &cs, NULL) < 0)
		return;
	int64_t pct = rs_config_num(c->cfg, "alerts", "memory_percent");
	double used = cs.max_memory_bytes ? 100.0 * (double)cs.bytes / (double)cs.max_memory_bytes : 0;
	bool high = used >= (double)pct ||
		    (A.firing[I_MEMORY] && used >= (double)(pct - MEMORY_HYSTERESIS));
	snprintf(summary, sizeof(summary), "cache memory at %.1f%% of its bound", used);
	set(&A.firing[I_MEMORY], high, incident_names[I_MEMORY], "warning", summary,
	    high ? json_pack("{s:I,s:I}", "bytes", (json_int_t)cs.bytes, "max_bytes",
			     (json_int_t)cs.max_memory_bytes) : NULL);
	rs_cache_stats_free(&cs);
}

/* Requests wait (on_full = block) or fail (fail) when the audit queue
 * fills: either is an incident before it happens, if possible. */
static void check_audit(struct server *s)
{
	struct rs_audit_stats st;
	char summary[RS_ERR_MSG_MAX + 96];

	if (!s->audit)
		return;
	rs_audit_stats(s->audit, &st);
	bool full = st.queue_size && st.queued * 10 >= st.queue_size * 9;
	bool bad = full || st.refused > A.audit_refused || st.degraded;
	snprintf(summary, sizeof(summary), "the audit log is %s (%u of %u queued%s%s)",
		 st.degraded ? "failing to commit" : full ? "nearly full" : "refusing records",
		 st.queued, st.queue_size, st.last_error[0] ? "; " : "", st.last_error);
	set(&A.firing[I_AUDIT], bad, incident_names[I_AUDIT], "critical", summary,
	    bad ? json_pack("{s:i,s:i,s:I,s:b}", "queued", (int)st.queued, "queue_size",
			    (int)st.queue_size, "refused", (json_int_t)st.refused,
			    "degraded", st.degraded) : NULL);
	A.audit_refused = st.refused;
}

/* The minute just ended: error rate and p95. */
static void check_window(const struct srv_conf *c)
{
	unsigned old = atomic_fetch_add(&A.cur, 1) & 1;
	struct window *w = &A.win[old];
	uint64_t total = atomic_exchange(&w->total, 0), errors = atomic_exchange(&w->errors, 0);
	uint64_t count = rs_hist_count(&w->latency);
	uint64_t p95_us = count ? rs_hist_percentile(&w->latency, 95.0) : 0;
	char summary[256];

	rs_hist_init(&w->latency);
	int64_t pct = rs_config_num(c->cfg, "alerts", "error_rate_percent");
	bool bad = total >= MIN_REQUESTS && errors * 100 >= total * (uint64_t)pct;
	snprintf(summary, sizeof(summary), "%llu of %llu requests failed with 5xx in the last minute",
		 (unsigned long long)errors, (unsigned long long)total);
	set(&A.firing[I_ERRORS], bad, incident_names[I_ERRORS], "critical", summary,
	    bad ? json_pack("{s:I,s:I}", "errors", (json_int_t)errors, "requests",
			    (json_int_t)total) : NULL);

	int64_t limit_ms = rs_config_num(c->cfg, "alerts", "p95_latency");
	bool slow = count >= MIN_REQUESTS && p95_us >= (uint64_t)limit_ms * 1000;
	snprintf(summary, sizeof(summary), "p95 request time %.1f ms in the last minute",
		 (double)p95_us / 1000.0);
	set(&A.firing[I_LATENCY], slow, incident_names[I_LATENCY], "warning", summary,
	    slow ? json_pack("{s:f,s:I}", "p95_ms", (double)p95_us / 1000.0, "requests",
			     (json_int_t)count) : NULL);
}

void alerts_check(struct server *s)
{
	struct srv_conf *c = conf_get(s);
	int64_t now = rs_monotonic_ms();

	check_breakers(s);
	check_store(s, c);
	check_audit(s);
	if (now - A.window_start_ms >= WINDOW_MS) {
		check_window(c);
		A.window_start_ms = now;
	}
	conf_put(s, c);
}

int alerts_metrics(struct rs_buf *b)
{
	struct rs_alert_stats st;
	int rc;

	rs_alert_stats(A.alerter, &st);
	rc = rs_prom_sample(b, "resync_incidents_firing", "gauge",
			    "incidents going on now (see resync-fcgi(8), ALERTS)", NULL,
			    (double)atomic_load(&A.firing_now));
	if (rc == 0)
		rc = rs_buf_printf(b,
			"# HELP resync_alert_notifications_total webhook notifications by result\n"
			"# TYPE resync_alert_notifications_total counter\n"
			"resync_alert_notifications_total{result=\"sent\"} %llu\n"
			"resync_alert_notifications_total{result=\"failed\"} %llu\n"
			"resync_alert_notifications_total{result=\"deduplicated\"} %llu\n"
			"resync_alert_notifications_total{result=\"rate_limited\"} %llu\n"
			"resync_alert_notifications_total{result=\"dropped\"} %llu\n",
			(unsigned long long)st.sent, (unsigned long long)st.failed,
			(unsigned long long)st.deduplicated, (unsigned long long)st.rate_limited,
			(unsigned long long)st.dropped);
	return rc;
}
