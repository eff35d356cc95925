/*
 * api_cache: /api/cache/stats and /api/cache/purge.
 *
 * A purge goes through the store, so it is logged like resyncctl's and
 * survives a restart; with sync = always it is answered once committed.
 * Scopes name the key prefixes the HWA routes cache under.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "stats.h"
#include "util.h"

static const struct {
	const char *name, *prefix;   /* "" = everything */
} scopes[] = {
	{ "jobs", "jobs:" },
	{ "workstations", "workstations:" },
	{ "plan", "plan:" },
	{ "system", "" },
};

/* The rendered /api/cache/stats body is reused for STATS_REUSE_US: the
 * JSON of some sixty counters costs ten times a /live answer (callgrind:
 * most of it in json_dumps), and monitoring polls it from many places.
 * A purge through this process drops it at once. */
#define STATS_REUSE_US 100000

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static char *stats_body;        /* under stats_lock */
static size_t stats_len;
static int64_t stats_at_us;

static void stats_forget(void)
{
	pthread_mutex_lock(&stats_lock);
	free(stats_body);
	stats_body = NULL;
	pthread_mutex_unlock(&stats_lock);
}

/* Copy a fresh enough body into r->out: true when there was one. */
static bool stats_reuse(struct req *r)
{
	bool hit = false;

	pthread_mutex_lock(&stats_lock);
	if (stats_body && rs_monotonic_us() - stats_at_us < STATS_REUSE_US)
		hit = rs_buf_append(&r->out, stats_body, stats_len) == 0;
	pthread_mutex_unlock(&stats_lock);
	return hit;
}

static void stats_keep(const struct req *r)
{
	char *copy = malloc(r->out.len + 1);

	if (!copy)
		return;
	memcpy(copy, r->out.data, r->out.len + 1);
	pthread_mutex_lock(&stats_lock);
	free(stats_body);
	stats_body = copy;
	stats_len = r->out.len;
	stats_at_us = rs_monotonic_us();
	pthread_mutex_unlock(&stats_lock);
}

void api_cache_stats(struct req *r)
{
	struct server *s = r->srv;
	struct rs_cache_stats cs;
	struct rs_wal_stats ws;
	struct rs_err err = RS_ERR_INIT;
	int64_t t0 = rs_monotonic_us();
	/* the per-shard table is most of the answer's size: on request */
	char flag[8];
	const char *sv = rs_query_value(r->query, "shards", flag, sizeof(flag));
	bool shards = sv && rs_fields_bool(sv) == 1;

	if (!shards && stats_reuse(r)) {
		r->status = 200;
		r->stage_us[STAGE_CACHE] += rs_monotonic_us() - t0;
		return;
	}
	if (rs_cache_stats(rs_store_cache(s->store), &cs, &err) < 0) {
		RS_LOG(RS_LOG_ERROR, r->id, "cache stats: %s", err.msg);
		req_error(r, 500, "internal_error", "the cache statistics are not available");
		return;
	}
	json_t *j = rs_stats_cache_json(&cs, shards);
	rs_cache_stats_free(&cs);
	rs_store_wal_stats(s->store, &ws);
	json_object_set_new(j, "persistence", rs_stats_wal_json(&ws, rs_wal_sync_name(s->sync)));
	r->stage_us[STAGE_CACHE] += rs_monotonic_us() - t0;
	req_json(r, 200, j);
	if (!shards && r->status == 200)
		stats_keep(r);
}

/* The body's selector: the one of key, prefix, scope it has (the route
 * table made sure of that, and of the scope's name). */
static void selector(json_t *body, const char **what, const char **value,
		     const char **prefix)
{
	static const char *const names[] = { "key", "prefix", "scope" };

	for (size_t i = 0; i < RS_ARRAY_SIZE(names); i++)
		if (json_object_get(body, names[i])) {
			*what = names[i];
			*value = json_string_value(json_object_get(body, names[i]));
		}
	*prefix = *value;
	for (size_t i = 0; strcmp(*what, "scope") == 0 && i < RS_ARRAY_SIZE(scopes); i++)
		if (strcmp(*value, scopes[i].name) == 0)
			*prefix = scopes[i].prefix;
}

void api_cache_purge(struct req *r)
{
	struct server *s = r->srv;
	struct rs_err err = RS_ERR_INIT;
	const char *what = "prefix", *value = "", *prefix = "";
	uint64_t removed = 0;
	int rc;

	json_t *body = req_json_body(r);
	if (!body)
		return;
	selector(body, &what, &value, &prefix);
	/* longer than any key can be: refused here, not by the log */
	if (strlen(value) > s->max_key && strcmp(what, "scope") != 0) {
		req_error(r, 400, "bad_request", "the %s is longer than %zu bytes", what,
			  s->max_key);
		json_decref(body);
		return;
	}
	int64_t t0 = rs_monotonic_us();
	if (strcmp(what, "key") == 0) {
		int deleted = 0;
		rc = rs_store_delete(s->store, value, strlen(value), &deleted, &err);
		removed = (uint64_t)deleted;
	} else {
		rc = rs_store_purge(s->store, prefix, strlen(prefix), &removed, &err);
	}
	r->stage_us[s->sync == RS_WAL_SYNC_OFF ? STAGE_CACHE : STAGE_DATABASE] +=
		rs_monotonic_us() - t0;
	stats_forget();
	if (rc < 0) {
		RS_LOG(RS_LOG_ERROR, r->id, "purge %s %s: %s", what, value, err.msg);
		if (err.code == EIO)
			req_error(r, 503, "service_unavailable",
				  "the purge could not be made durable; try again");
		else
			req_error(r, 400, "bad_request", "the %s is not a valid cache key", what);
	} else {
		RS_LOG(RS_LOG_NOTICE, r->id, "purged %llu cache entries (%s %s) for %s",
		       (unsigned long long)removed, what, value,
		       r->key_name ? r->key_name : "-");
		req_json(r, 200, json_pack("{s:I,s:s}", "purged", (json_int_t)removed,
					   what, value));
	}
	char target[96];
	snprintf(target, sizeof(target), "%s:%.80s", what, value);
	audit_request(r, "cache.purge", rc < 0 ? RS_AUDIT_FAILURE : RS_AUDIT_SUCCESS, target,
		      json_pack("{s:I}", "removed", (json_int_t)removed));
	json_decref(body);
}
