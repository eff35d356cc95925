/*
 * api_status: /api/status, the responder's own page (as php-fpm's status
 * page): uptime, threads, requests, limits, configuration.  The same
 * object goes to the stats table every second (server_stats_json).
 */
#include <jansson.h>
#include <unistd.h>

#include "server.h"
#include "stats.h"
#include "util.h"

#define J(v) json_integer((json_int_t)(v))

json_t *server_status_json(struct server *s, const struct srv_conf *c)
{
	char started[32], loaded[32];
	unsigned busy = atomic_load(&s->active);

	rs_format_utc(s->started_ms, started, sizeof(started));
	rs_format_utc(c->loaded_ms, loaded, sizeof(loaded));
	return json_pack("{s:o,s:s,s:o,s:{s:o,s:o},s:{s:o,s:o,s:o,s:o,s:o},"
			 "s:{s:o,s:o,s:o,s:o,s:o},s:{s:s,s:s,s:s,s:o,s:o}}",
		"pid", J(getpid()), "started_at", started,
		"uptime_s", J((rs_now_ms() - s->started_ms) / 1000),
		"threads", "total", J(s->nthreads), "busy", J(busy),
		"requests", "accepted", J(atomic_load(&s->accepted)), "active", J(busy),
		"max_active", J(atomic_load(&s->max_active)), "slow", J(atomic_load(&s->slow)),
		"timed_out", J(atomic_load(&s->timed_out)),
		"limits", "max_body", J(c->max_body), "request_timeout_ms", J(c->request_timeout_ms),
		"slow_request_threshold_ms", J(c->slow_request_ms),
		"shutdown_timeout_ms", J(c->shutdown_timeout_ms),
		"compress_min_size", J(c->compress_min),
		"config", "path", s->config_path, "environment", rs_config_environment(c->cfg),
		"loaded_at", loaded, "reloads", J(atomic_load(&s->reloads)),
		"reload_failures", J(atomic_load(&s->reload_failures)));
}

json_t *server_stats_json(struct server *s)
{
	struct rs_cache_stats cs;
	struct rs_wal_stats ws;
	struct srv_conf *c = conf_get(s);
	json_t *j = json_object();

	json_object_set_new(j, "server", server_status_json(s, c));
	conf_put(s, c);
	if (rs_cache_stats(rs_store_cache(s->store), &cs, NULL) == 0) {
		json_object_set_new(j, "cache", rs_stats_cache_json(&cs, false));
		rs_cache_stats_free(&cs);
	}
	rs_store_wal_stats(s->store, &ws);
	json_object_set_new(j, "persistence", rs_stats_wal_json(&ws, rs_wal_sync_name(s->sync)));
	json_object_set_new(j, "upstreams", rs_stats_upstreams_json(s->ups));
	json_object_set_new(j, "breakers", rs_stats_breakers_json(s->ups));
	return j;
}

void api_status(struct req *r)
{
	req_json(r, 200, server_status_json(r->srv, r->conf));
}
