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
