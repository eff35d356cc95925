/*
 * api_metrics: /metrics in the Prometheus text format: the HTTP metrics,
 * the cache's and the log's figures, the responder's own counters.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "server.h"
#include "util.h"

#define PROM_MAX (8u << 20)

static int cache_metrics(struct server *s, struct rs_buf *b)
{
	struct rs_cache_stats cs;
	int rc = 0;

	if (rs_cache_stats(rs_store_cache(s->store), &cs, NULL) < 0)
		return 0;
	const struct { const char *name, *type, *help; uint64_t v; } m[] = {
		{ "resync_cache_entries", "gauge", "entries in the cache", cs.entries },
		{ "resync_cache_bytes", "gauge", "bytes the cache holds, overhead included", cs.bytes },
		{ "resync_cache_max_entries", "gauge", "[cache] max_entries", cs.max_entries },
		{ "resync_cache_max_bytes", "gauge", "[cache] max_memory", cs.max_memory_bytes },
		{ "resync_cache_hits_total", "counter", "lookups answered from a fresh entry", cs.hits },
		{ "resync_cache_misses_total", "counter", "lookups that found nothing usable", cs.misses },
		{ "resync_cache_stale_hits_total", "counter", "lookups answered from a stale entry", cs.stale_hits },
		{ "resync_cache_sets_total", "counter", "entries stored", cs.sets },
		{ "resync_cache_deletes_total", "counter", "entries deleted", cs.deletes },
		{ "resync_cache_purged_total", "counter", "entries removed by purges", cs.purged },
		{ "resync_cache_expirations_total", "counter", "entries removed past their windows", cs.expirations },
		{ "resync_cache_rejected_total", "counter", "sets refused (too large, bad key)", cs.rejected },
		{ "resync_cache_hot_shards", "gauge", "shards taking more than twice their share", cs.hot_shards },
	};
	for (size_t i = 0; i < RS_ARRAY_SIZE(m) && rc == 0; i++)
		rc = rs_prom_sample(b, m[i].name, m[i].type, m[i].help, NULL, (double)m[i].v);
	if (rc == 0)
		rc = rs_buf_printf(b, "# HELP resync_cache_evictions_total entries evicted for room, by reason\n"
				      "# TYPE resync_cache_evictions_total counter\n"
				      "resync_cache_evictions_total{reason=\"expired\"} %llu\n"
				      "resync_cache_evictions_total{reason=\"lru\"} %llu\n",
				   (unsigned long long)cs.evictions_expired,
				   (unsigned long long)cs.evictions_lru);
	rs_cache_stats_free(&cs);
	return rc;
}

static int server_metrics(struct server *s, struct rs_buf *b)
{
	struct rs_wal_stats ws;
	char labels[64];
	int rc;

	rs_store_wal_stats(s->store, &ws);
	snprintf(labels, sizeof(labels), "version=\"%s\"", PACKAGE_VERSION);
	rc = rs_prom_sample(b, "resync_build_info", "gauge", "the running version", labels, 1);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_uptime_seconds", "gauge", "since the responder started",
				    NULL, (double)(rs_now_ms() - s->started_ms) / 1e3);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_http_slow_requests_total", "counter",
				    "requests slower than slow_request_threshold", NULL,
				    (double)atomic_load(&s->slow));
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_http_request_timeouts_total", "counter",
				    "requests answered 504 by the watchdog", NULL,
				    (double)atomic_load(&s->timed_out));
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_threads", "gauge", "worker threads", NULL,
				    (double)s->nthreads);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_persistence_degraded", "gauge",
				    "1 while cache log commits fail", NULL, ws.degraded ? 1 : 0);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_wal_committed_total", "counter",
				    "cache log records committed", NULL, (double)ws.committed);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_wal_commit_failures_total", "counter",
				    "failed cache log group commits", NULL, (double)ws.commit_failures);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_wal_queued", "gauge",
				    "cache log records waiting to be committed", NULL, (double)ws.queued);
	if (rc == 0)
		rc = rs_prom_sample(b, "resync_config_reloads_total", "counter",
				    "successful SIGHUP reloads", NULL, (double)atomic_load(&s->reloads));
	return rc;
}

static int family(struct rs_buf *b, const char *name, const char *type,
		  const char *help)
{
	return rs_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values are config names and URLs, which the schema keeps free of
 * quotes and backslashes. */
#define U(i) ui[i].name

static int pool_metrics(struct rs_buf *b, const struct rs_upstream_info *ui, size_t n)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
		{ "resync_upstream_pool_hits_total", "transfers on a reused connection",
		  offsetof(struct rs_pool_stats, hits) },
		{ "resync_upstream_pool_misses_total", "transfers that opened a connection",
		  offsetof(struct rs_pool_stats, misses) },
		{ "resync_upstream_pool_exhaustions_total", "leases that found no free connection in time",
		  offsetof(struct rs_pool_stats, exhaustions) },
		{ "resync_upstream_pool_leaks_total", "leases held past leak_detection_threshold",
		  offsetof(struct rs_pool_stats, leaks) },
		{ "resync_upstream_requests_total", "upstream transfers (retries included)",
		  offsetof(struct rs_pool_stats, requests) },
		{ "resync_upstream_errors_total", "upstream transfers without an HTTP answer",
		  offsetof(struct rs_pool_stats, errors) },
	};
	int rc = 0;

	for (size_t k = 0; k < RS_ARRAY_SIZE(counters) && rc == 0; k++) {
		rc = family(b, counters[k].name, "counter", counters[k].help);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = rs_buf_printf(b, "%s{upstream=\"%s\"} %llu\n", counters[k].name, U(i),
				(unsigned long long)*(const uint64_t *)((const char *)&ui[i].pool +
									 counters[k].off));
	}
	if (rc == 0)
		rc = family(b, "resync_upstream_pool_connections", "gauge",
			    "pooled connections by state, and callers waiting for one");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = rs_buf_printf(b,
			"resync_upstream_pool_connections{upstream=\"%s\",state=\"open\"} %u\n"
			"resync_upstream_pool_connections{upstream=\"%s\",state=\"in_use\"} %u\n"
			"resync_upstream_pool_connections{upstream=\"%s\",state=\"idle\"} %u\n"
			"resync_upstream_pool_connections{upstream=\"%s\",state=\"waiting\"} %u\n",
			U(i), ui[i].pool.open, U(i), ui[i].pool.in_use, U(i), ui[i].pool.idle,
			U(i), ui[i].pool.waiting);
	if (rc == 0)
		rc = family(b, "resync_upstream_pool_closures_total", "counter",
			    "connections closed, by reason");
	for (size_t i = 0; i < n && rc == 0; i++)
		for (int k = 0; k < RS_POOL_CLOSE_NREASONS && rc == 0; k++)
			rc = rs_buf_printf(b, "resync_upstream_pool_closures_total{upstream=\"%s\",reason=\"%s\"} %llu\n",
				U(i), rs_pool_close_reason_name((enum rs_pool_close_reason)k),
				(unsigned long long)ui[i].pool.closures[k]);
	const struct { const char *name, *help; int which; } sums[] = {
		{ "resync_upstream_request_seconds", "upstream transfer time", 0 },
		{ "resync_upstream_pool_wait_seconds", "time waiting for a pooled connection", 1 },
	};
	for (size_t k = 0; k < RS_ARRAY_SIZE(sums) && rc == 0; k++) {
		rc = family(b, sums[k].name, "summary", sums[k].help);
		for (size_t i = 0; i < n && rc == 0; i++) {
			const struct rs_hist *h = sums[k].which ? ui[i].pool.acquire_wait_us
								 : ui[i].pool.request_us;
			uint64_t cnt = rs_hist_count(h);
			rc = rs_buf_printf(b,
				"%s{upstream=\"%s\",quantile=\"0.5\"} %g\n"
				"%s{upstream=\"%s\",quantile=\"0.95\"} %g\n"
				"%s{upstream=\"%s\",quantile=\"0.99\"} %g\n"
				"%s_sum{upstream=\"%s\"} %g\n%s_count{upstream=\"%s\"} %llu\n",
				sums[k].name, U(i), rs_hist_percentile(h, 50) / 1e6,
				sums[k].name, U(i), rs_hist_percentile(h, 95) / 1e6,
				sums[k].name, U(i), rs_hist_percentile(h, 99) / 1e6,
				sums[k].name, U(i), rs_hist_mean(h) * (double)cnt / 1e6,
				sums[k].name, U(i), (unsigned long long)cnt);
		}
	}
	return rc;
}

static int upstream_metrics(struct server *s, struct rs_buf *b)
{
	size_t n = rs_upstreams_count(s->ups);
	struct rs_upstream_info *ui;
	int rc;

	if (!n)
		return 0;
	if (!(ui = calloc(n, sizeof(*ui))))
		return -1;
	for (size_t i = 0; i < n; i++)
		rs_upstream_info(rs_upstreams_at(s->ups, i), &ui[i]);
	rc = pool_metrics(b, ui, n);
	if (rc == 0)
		rc = family(b, "resync_upstream_retries_total", "counter",
			    "retries made, and retries the budget refused");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = rs_buf_printf(b, "resync_upstream_retries_total{upstream=\"%s\",outcome=\"made\"} %llu\n"
				      "resync_upstream_retries_total{upstream=\"%s\",outcome=\"denied\"} %llu\n",
				   U(i), (unsigned long long)ui[i].retries,
				   U(i), (unsigned long long)ui[i].retries_denied);
	if (rc == 0)
		rc = family(b, "resync_upstream_endpoint_up", "gauge",
			    "1 while an endpoint takes calls (up or in slow start)");
	for (size_t i = 0; i < n && rc == 0; i++)
		for (size_t k = 0; k < ui[i].nendpoints && rc == 0; k++)
			rc = rs_buf_printf(b, "resync_upstream_endpoint_up{upstream=\"%s\",endpoint=\"%s\"} %d\n",
				U(i), ui[i].endpoint[k].url,
				ui[i].endpoint[k].state == RS_ENDPOINT_UP ||
				ui[i].endpoint[k].state == RS_ENDPOINT_SLOW_START);
	free(ui);
	return rc;
}

/* One snapshot of every breaker serves all three families. */
static int breaker_metrics(struct server *s, struct rs_buf *b)
{
	static const enum rs_breaker_state states[] = {
		RS_BREAKER_CLOSED, RS_BREAKER_OPEN, RS_BREAKER_HALF_OPEN,
		RS_BREAKER_FORCED_OPEN, RS_BREAKER_DISABLED,
	};
	size_t nb = rs_upstreams_nbreakers(s->ups);
	struct rs_breaker_info *bi;
	int64_t now = rs_monotonic_ms();
	int rc;

	if (!nb)
		return 0;
	if (!(bi = calloc(nb, sizeof(*bi))))
		return -1;
	for (size_t i = 0; i < nb; i++)
		rs_breaker_info(rs_upstreams_breaker_at(s->ups, i), now, &bi[i]);
	rc = family(b, "resync_breaker_state", "gauge",
		    "1 for the state each circuit breaker is in");
	for (size_t i = 0; i < nb && rc == 0; i++)
		for (size_t k = 0; k < RS_ARRAY_SIZE(states) && rc == 0; k++)
			rc = rs_buf_printf(b, "resync_breaker_state{breaker=\"%s\",state=\"%s\"} %d\n",
					   bi[i].name, rs_breaker_state_name(states[k]),
					   bi[i].state == states[k]);
	if (rc == 0)
		rc = family(b, "resync_breaker_calls_total", "counter",
			    "calls through each breaker by outcome; rejected: refused while open");
	for (size_t i = 0; i < nb && rc == 0; i++)
		rc = rs_buf_printf(b,
			"resync_breaker_calls_total{breaker=\"%s\",outcome=\"success\"} %llu\n"
			"resync_breaker_calls_total{breaker=\"%s\",outcome=\"failure\"} %llu\n"
			"resync_breaker_calls_total{breaker=\"%s\",outcome=\"ignored\"} %llu\n"
			"resync_breaker_calls_total{breaker=\"%s\",outcome=\"rejected\"} %llu\n",
			bi[i].name, (unsigned long long)bi[i].successes, bi[i].name,
			(unsigned long long)bi[i].failures, bi[i].name,
			(unsigned long long)bi[i].ignored, bi[i].name,
			(unsigned long long)bi[i].rejected);
	if (rc == 0)
		rc = family(b, "resync_breaker_transitions_total", "counter",
			    "state changes of each breaker, by the state entered");
	for (size_t i = 0; i < nb && rc == 0; i++)
		rc = rs_buf_printf(b,
			"resync_breaker_transitions_total{breaker=\"%s\",to=\"open\"} %llu\n"
			"resync_breaker_transitions_total{breaker=\"%s\",to=\"half_open\"} %llu\n"
			"resync_breaker_transitions_total{breaker=\"%s\",to=\"closed\"} %llu\n",
			bi[i].name, (unsigned long long)bi[i].opened, bi[i].name,
			(unsigned long long)bi[i].half_opened, bi[i].name,
			(unsigned long long)bi[i].closed);
	free(bi);
	return rc;
}

/* Steps 3 and 5 of the chain.  Origins are label values only once the
 * monitor judged them well formed (letters, digits, '.', ':', '/', '-'). */
static int door_metrics(struct server *s, struct rs_buf *b)
{
	static const char *const classes[] = { "read", "write" };
	struct rs_rl_stats st;
	struct rs_cors_origin_count oc[RS_CORS_ORIGINS + 2];
	int rc;

	rc = family(b, "resync_ratelimit_requests_total", "counter",
		    "requests through the rate limiter by class and result");
	for (int c = 0; c < 2 && rc == 0; c++)
		rc = rs_buf_printf(b,
			"resync_ratelimit_requests_total{class=\"%s\",result=\"allowed\"} %llu\n"
			"resync_ratelimit_requests_total{class=\"%s\",result=\"limited\"} %llu\n",
			classes[c], (unsigned long long)atomic_load(&s->rl_counts[c][0]),
			classes[c], (unsigned long long)atomic_load(&s->rl_counts[c][1]));
	if (rc == 0 && s->rl) {
		rs_ratelimit_stats(s->rl, rs_monotonic_us(), &st);
		rc = rs_prom_sample(b, "resync_ratelimit_clients", "gauge",
				    "clients whose bucket is not full", NULL, (double)st.clients);
		if (rc == 0)
			rc = rs_prom_sample(b, "resync_ratelimit_evictions_total", "counter",
					    "buckets forgotten to make room ([ratelimit] max_clients)",
					    NULL, (double)st.evicted);
	}
	if (rc == 0)
		rc = rs_buf_printf(b, "# HELP resync_cors_preflights_total CORS preflight requests by result\n"
				      "# TYPE resync_cors_preflights_total counter\n"
				      "resync_cors_preflights_total{result=\"allowed\"} %llu\n"
				      "resync_cors_preflights_total{result=\"refused\"} %llu\n",
				   (unsigned long long)atomic_load(&s->preflights[0]),
				   (unsigned long long)atomic_load(&s->preflights[1]));
	size_t n = rs_cors_monitor_snapshot(&s->cors_mon, oc, RS_ARRAY_SIZE(oc));
	if (rc == 0)
		rc = family(b, "resync_cors_violations_total", "counter",
			    "cross-origin requests refused, by origin and what was not allowed");
	for (size_t i = 0; i < n && rc == 0; i++)
		for (int v = 0; v < 3 && rc == 0; v++)
			if (oc[i].count[v])
				rc = rs_buf_printf(b, "resync_cors_violations_total{origin=\"%s\",reason=\"%s\"} %llu\n",
						   oc[i].origin,
						   rs_cors_violation_name((enum rs_cors_violation)v),
						   (unsigned long long)oc[i].count[v]);
	return rc;
}

void api_metrics(struct req *r)
{
	struct rs_buf b;

	rs_buf_init(&b, PROM_MAX);
	if (rs_metrics_render(r->srv->metrics, &b) < 0 || cache_metrics(r->srv, &b) < 0 ||
	    server_metrics(r->srv, &b) < 0 || upstream_metrics(r->srv, &b) < 0 ||
	    breaker_metrics(r->srv, &b) < 0 || door_metrics(r->srv, &b) < 0 ||
	    alerts_metrics(&b) < 0 || audit_metrics(r->srv, &b) < 0) {
		rs_buf_free(&b);
		req_error(r, 500, "internal_error", "the metrics could not be rendered");
		return;
	}
	rs_buf_free(&r->out);
	r->out = b;
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
