/*
 * stats: JSON views of the cache and log figures, and the stats table.
 */
#include "stats.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define J(v) json_integer((json_int_t)(v))

json_t *rs_stats_cache_json(const struct rs_cache_stats *cs, bool shards)
{
	uint64_t lookups = cs->hits + cs->misses + cs->stale_hits;
	json_t *j = json_pack("{s:o,s:o,s:o,s:o,s:f,s:o,s:o,s:o,s:f,s:o,s:o,s:o,s:o,"
			 "s:{s:o,s:o,s:o},s:o,s:o,s:{s:o,s:o,s:o,s:o},s:f,s:o,s:o}",
		"entries", J(cs->entries), "bytes", J(cs->bytes),
		"max_entries", J(cs->max_entries), "max_memory_bytes", J(cs->max_memory_bytes),
		"memory_used_pct", cs->max_memory_bytes
			? 100.0 * (double)cs->bytes / (double)cs->max_memory_bytes : 0.0,
		"hits", J(cs->hits), "misses", J(cs->misses), "stale_hits", J(cs->stale_hits),
		"hit_rate", lookups ? (double)(cs->hits + cs->stale_hits) / (double)lookups : 0.0,
		"sets", J(cs->sets), "deletes", J(cs->deletes), "purged", J(cs->purged),
		"expirations", J(cs->expirations),
		"evictions", "expired", J(cs->evictions_expired), "lru", J(cs->evictions_lru),
		"by_writers", J(cs->writer_evictions),
		"rejected", J(cs->rejected), "no_room", J(cs->no_room),
		"loads", "count", J(cs->loads), "failures", J(cs->load_failures),
		"waits", J(cs->load_waits), "timeouts", J(cs->load_timeouts),
		"insert_rate_per_s", cs->insert_rate_per_s,
		"hot_shards", J(cs->hot_shards), "num_shards", J(cs->num_shards));
	if (j && shards) {
		json_t *sh = json_array();
		for (size_t i = 0; i < cs->num_shards; i++)
			json_array_append_new(sh, json_pack("{s:o,s:o,s:o,s:o}",
				"entries", J(cs->shards[i].entries), "bytes", J(cs->shards[i].bytes),
				"gets", J(cs->shards[i].gets), "sets", J(cs->shards[i].sets)));
		json_object_set_new(j, "shards", sh);
	}
	return j;
}

json_t *rs_stats_wal_json(const struct rs_wal_stats *ws, const char *sync)
{
	return json_pack("{s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s?}",
		"sync", sync, "degraded", ws->degraded,
		"degraded_ms", J(ws->degraded_ms), "appended", J(ws->appended),
		"committed", J(ws->committed), "groups", J(ws->groups),
		"commit_failures", J(ws->commit_failures), "rejected", J(ws->rejected),
		"dropped", J(ws->dropped), "queued", J(ws->queued),
		"last_seq", J(ws->last_seq), "commit_us_max", J(ws->commit_us_max),
		"last_error", ws->last_error[0] ? ws->last_error : NULL);
}

static int sql_fail(struct rs_db *db, struct rs_err *err, const char *what)
{
	return rs_err_set(err, "database '%s': %s: %s", db->path, what,
			  sqlite3_errmsg(db->handle));
}

int rs_stats_publish(struct rs_db *db, const char *origin, const json_t *doc,
		     struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	char *text = json_dumps(doc, JSON_COMPACT);
	int rc = -1;

	if (!text)
		return rs_err_set(err, "out of memory");
	if (sqlite3_prepare_v2(db->handle,
			       "INSERT OR REPLACE INTO stats (origin, pid, updated_ms, json)"
			       " VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		sql_fail(db, err, "cannot publish stats");
		goto out;
	}
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)getpid());
	sqlite3_bind_int64(st, 3, rs_now_ms());
	sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		sql_fail(db, err, "cannot publish stats");
	else
		rc = 0;
out:
	sqlite3_finalize(st);
	free(text);
	return rc;
}

json_t *rs_stats_read(struct rs_db *db, int64_t since_ms, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	int rc;

	if (db->schema_version < 5)
		return arr;
	if (sqlite3_prepare_v2(db->handle,
			       "SELECT origin, pid, updated_ms, json FROM stats"
			       " WHERE updated_ms >= ? ORDER BY updated_ms DESC",
			       -1, &st, NULL) != SQLITE_OK) {
		sql_fail(db, err, "cannot read stats");
		json_decref(arr);
		return NULL;
	}
	sqlite3_bind_int64(st, 1, since_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *txt = (const char *)sqlite3_column_text(st, 3);
		json_t *doc = txt ? json_loads(txt, 0, NULL) : NULL;
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:o}",
			"origin", (const char *)sqlite3_column_text(st, 0),
			"pid", (json_int_t)sqlite3_column_int64(st, 1),
			"updated_ms", (json_int_t)sqlite3_column_int64(st, 2),
			"stats", doc ? doc : json_object()));
	}
	if (rc != SQLITE_DONE) {
		sql_fail(db, err, "cannot read stats");
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_finalize(st);
	return arr;
}

static json_t *hist_json(const struct rs_hist *h)
{
	return json_pack("{s:I,s:f,s:f,s:f,s:f}", "count", (json_int_t)rs_hist_count(h),
			 "p50", rs_hist_percentile(h, 50) / 1e3,
			 "p95", rs_hist_percentile(h, 95) / 1e3,
			 "p99", rs_hist_percentile(h, 99) / 1e3,
			 "max", rs_hist_max(h) / 1e3);
}

static json_t *pool_json(const struct rs_pool_stats *p)
{
	json_t *closures = json_object();

	for (int i = 0; i < RS_POOL_CLOSE_NREASONS; i++)
		json_object_set_new(closures, rs_pool_close_reason_name((enum rs_pool_close_reason)i),
				    json_integer((json_int_t)p->closures[i]));
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}",
		"open", (json_int_t)p->open, "in_use", (json_int_t)p->in_use,
		"idle", (json_int_t)p->idle, "waiting", (json_int_t)p->waiting,
		"min_size", (json_int_t)p->min_size, "max_size", (json_int_t)p->max_size,
		"hits", (json_int_t)p->hits, "misses", (json_int_t)p->misses,
		"creations", (json_int_t)p->creations,
		"exhaustions", (json_int_t)p->exhaustions,
		"requests", (json_int_t)p->requests, "errors", (json_int_t)p->errors,
		"leaks", (json_int_t)p->leaks, "closures", closures,
		"acquire_wait_ms", hist_json(p->acquire_wait_us),
		"request_ms", hist_json(p->request_us));
}

static json_t *endpoint_json(const struct rs_endpoint_info *e)
{
	char when[32] = "";
	json_t *j;

	if (e->last_check_ms)
		rs_format_utc(e->last_check_ms, when, sizeof(when));
	j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "url", e->url,
		      "state", rs_endpoint_state_name(e->state),
		      "weight", (json_int_t)e->weight, "calls", (json_int_t)e->calls,
		      "failures", (json_int_t)e->failures,
		      "ejections", (json_int_t)e->ejections,
		      "consecutive_failures", (json_int_t)e->consecutive_failures);
	json_object_set_new(j, "last_check", when[0] ? json_string(when) : json_null());
	json_object_set_new(j, "last_check_latency_ms", e->last_check_latency_ms >= 0 ?
			    json_integer(e->last_check_latency_ms) : json_null());
	json_object_set_new(j, "last_error", json_string(e->last_error));
	return j;
}

json_t *rs_stats_upstreams_json(struct rs_upstreams *ups)
{
	json_t *arr = json_array();
	struct rs_upstream_info *ui = malloc(sizeof(*ui));

	for (size_t i = 0; ui && i < rs_upstreams_count(ups); i++) {
		json_t *eps = json_array();

		rs_upstream_info(rs_upstreams_at(ups, i), ui);
		for (size_t k = 0; k < ui->nendpoints; k++)
			json_array_append_new(eps, endpoint_json(&ui->endpoint[k]));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o}",
			"name", ui->name, "strategy", rs_lb_strategy_name(ui->strategy),
			"calls", (json_int_t)ui->calls, "retries", (json_int_t)ui->retries,
			"retries_denied", (json_int_t)ui->retries_denied,
			"panics", (json_int_t)ui->panics,
			"pool", pool_json(&ui->pool), "endpoints", eps));
	}
	free(ui);
	return arr;
}

json_t *rs_stats_breaker_json(const struct rs_breaker_info *bi)
{
	char since[32] = "";

	if (bi->state_since_ms)
		rs_format_utc(bi->state_since_ms, since, sizeof(since));
	return json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"name", bi->name, "state", rs_breaker_state_name(bi->state),
		"since", since[0] ? since : NULL,
		"retry_after_ms", (json_int_t)bi->retry_after_ms,
		"window_calls", (json_int_t)bi->window_calls,
		"window_failures", (json_int_t)bi->window_failures,
		"window_slow", (json_int_t)bi->window_slow,
		"consecutive_failures", (json_int_t)bi->consecutive_failures,
		"calls", (json_int_t)bi->calls, "successes", (json_int_t)bi->successes,
		"failures", (json_int_t)bi->failures, "ignored", (json_int_t)bi->ignored,
		"slow", (json_int_t)bi->slow, "rejected", (json_int_t)bi->rejected,
		"opened", (json_int_t)bi->opened, "half_opened", (json_int_t)bi->half_opened,
		"closed", (json_int_t)bi->closed);
}

json_t *rs_stats_breakers_json(struct rs_upstreams *ups)
{
	json_t *arr = json_array();
	int64_t now = rs_monotonic_ms();

	for (size_t i = 0; i < rs_upstreams_nbreakers(ups); i++) {
		struct rs_breaker_info bi;

		rs_breaker_info(rs_upstreams_breaker_at(ups, i), now, &bi);
		json_array_append_new(arr, rs_stats_breaker_json(&bi));
	}
	return arr;
}
