/*
 * api_metrics: /metrics in the Prometheus text format: the HTTP metrics,
 * the cache's and the log's figures, the responder's own counters.
 */
#include <stdio.h>

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

void api_metrics(struct req *r)
{
	struct rs_buf b;

	rs_buf_init(&b, PROM_MAX);
	if (rs_metrics_render(r->srv->metrics, &b) < 0 || cache_metrics(r->srv, &b) < 0 ||
	    server_metrics(r->srv, &b) < 0) {
		rs_buf_free(&b);
		req_error(r, 500, "internal_error", "the metrics could not be rendered");
		return;
	}
	rs_buf_free(&r->out);
	r->out = b;
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
