/*
 * api_health: /api/health (every component), /api/health/live (the
 * process answers) and /api/health/ready (it should get traffic).
 *
 * The overall status is the worst that matters: a database that cannot
 * be read makes the responder unhealthy (503); a degraded log or an
 * unhealthy upstream makes it degraded (200: cached answers still flow).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "util.h"

enum health { HEALTHY, DEGRADED, UNHEALTHY };
static const char *const health_names[] = { "healthy", "degraded", "unhealthy" };

/* Read the database through this worker's own connection: 0 or -1. */
static int database_check(struct req *r, double *ms)
{
	struct worker *w = r->worker;
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options o = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };
	int64_t t0 = rs_monotonic_us();
	int rc = -1;

	if (!w->db && rs_db_open(&w->db, r->srv->db_path, &o, &err) < 0)
		goto out;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(w->db->handle, "SELECT count(*) FROM meta", -1, &st,
			       NULL) == SQLITE_OK) {
		rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
		sqlite3_finalize(st);
	}
	if (rc < 0) {
		/* reopen next time: the file may have been replaced */
		rs_db_close(w->db);
		w->db = NULL;
	}
out:
	r->stage_us[STAGE_DATABASE] += rs_monotonic_us() - t0;
	*ms = (double)(rs_monotonic_us() - t0) / 1e3;
	return rc;
}

/* One upstream: unknown before its first check, unhealthy when no
 * endpoint is up or its breaker refuses calls, degraded when some
 * endpoints are out.  Endpoint URLs and errors name hosts and ports: only
 * for authenticated callers, as /api/health itself is public. */
static json_t *upstream_json(struct server *s, struct rs_upstream *u,
			     bool detail, enum health *overall)
{
	struct rs_upstream_info *ui = malloc(sizeof(*ui));
	struct rs_breaker_info bi;
	struct rs_breaker *b = rs_upstreams_breaker(s->ups, u, NULL);
	int64_t now = rs_monotonic_ms();
	size_t up = 0, checked = 0, best = 0;
	const char *error = NULL;
	char when[32];
	json_t *e, *eps;

	if (!ui)
		return json_pack("{s:s}", "status", "unknown");
	rs_upstream_info(u, ui);
	rs_breaker_info(b, now, &bi);
	eps = json_array();
	for (size_t i = 0; i < ui->nendpoints; i++) {
		const struct rs_endpoint_info *ep = &ui->endpoint[i];
		bool ok = ep->state == RS_ENDPOINT_UP || ep->state == RS_ENDPOINT_SLOW_START;

		up += ok;
		checked += ep->last_check_ms != 0;
		if (ep->last_check_ms > ui->endpoint[best].last_check_ms)
			best = i;
		if (!ok && !error && ep->last_error[0])
			error = ep->last_error;
		if (detail)
			json_array_append_new(eps, json_pack("{s:s,s:s,s:I,s:I,s:s}",
				"url", ep->url, "state", rs_endpoint_state_name(ep->state),
				"calls", (json_int_t)ep->calls, "failures", (json_int_t)ep->failures,
				"last_error", ep->last_error));
	}
	bool refused = bi.state == RS_BREAKER_OPEN || bi.state == RS_BREAKER_FORCED_OPEN;
	const char *st = refused || (checked && up == 0) ? "unhealthy" :
			 checked == 0 ? "unknown" :
			 up < ui->nendpoints ? "degraded" : "healthy";
	e = json_pack("{s:s,s:s,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I}}", "status", st,
		      "breaker", rs_breaker_state_name(bi.state),
		      "endpoints", (json_int_t)ui->nendpoints, "endpoints_up", (json_int_t)up,
		      "pool", "open", (json_int_t)ui->pool.open,
		      "in_use", (json_int_t)ui->pool.in_use, "idle", (json_int_t)ui->pool.idle,
		      "waiting", (json_int_t)ui->pool.waiting,
		      "max_size", (json_int_t)ui->pool.max_size);
	if (checked) {
		const struct rs_endpoint_info *ep = &ui->endpoint[best];
		rs_format_utc(ep->last_check_ms, when, sizeof(when));
		json_object_set_new(e, "checked_at", json_string(when));
		if (ep->last_check_latency_ms >= 0)
			json_object_set_new(e, "response_time_ms",
					    json_real((double)ep->last_check_latency_ms));
	}
	if (detail) {
		if (error)
			json_object_set_new(e, "error", json_string(error));
		json_object_set_new(e, "endpoint_detail", eps);
	} else {
		json_decref(eps);
	}
	if (strcmp(st, "healthy") != 0 && strcmp(st, "unknown") != 0 && *overall < DEGRADED)
		*overall = DEGRADED;
	free(ui);
	return e;
}

static json_t *upstreams_json(struct server *s, bool detail, enum health *overall)
{
	json_t *j = json_object();

	for (size_t i = 0; i < rs_upstreams_count(s->ups); i++) {
		struct rs_upstream *u = rs_upstreams_at(s->ups, i);
		json_object_set_new(j, rs_upstream_name(u), upstream_json(s, u, detail, overall));
	}
	return j;
}

void api_health(struct req *r)
{
	struct server *s = r->srv;
	enum health overall = HEALTHY;
	json_t *comp = json_object();
	struct rs_cache_stats cs;
	double ms;

	if (s->sync == RS_WAL_SYNC_OFF) {
		json_object_set_new(comp, "database", json_pack("{s:s}", "status", "disabled"));
		json_object_set_new(comp, "persistence", json_pack("{s:s,s:s}", "status",
			"disabled", "sync", "off"));
	} else {
		int rc = database_check(r, &ms);
		if (rc < 0)
			overall = UNHEALTHY;
		json_object_set_new(comp, "database", json_pack("{s:s,s:f}", "status",
			health_names[rc < 0 ? UNHEALTHY : HEALTHY], "response_time_ms", ms));
		struct rs_wal_stats ws;
		rs_store_wal_stats(s->store, &ws);
		if (ws.degraded && overall < DEGRADED)
			overall = DEGRADED;
		json_object_set_new(comp, "persistence", json_pack("{s:s,s:s,s:I,s:I}",
			"status", health_names[ws.degraded ? DEGRADED : HEALTHY],
			"sync", rs_wal_sync_name(s->sync),
			"commit_failures", (json_int_t)ws.commit_failures,
			"queued", (json_int_t)ws.queued));
	}
	if (rs_cache_stats(rs_store_cache(s->store), &cs, NULL) == 0) {
		json_object_set_new(comp, "cache", json_pack("{s:s,s:I,s:I,s:f}",
			"status", "healthy", "entries", (json_int_t)cs.entries,
			"bytes", (json_int_t)cs.bytes, "memory_used_pct",
			cs.max_memory_bytes ? 100.0 * (double)cs.bytes / (double)cs.max_memory_bytes : 0.0));
		rs_cache_stats_free(&cs);
	} else {
		json_object_set_new(comp, "cache", json_pack("{s:s}", "status", "unhealthy"));
		overall = UNHEALTHY;
	}
	json_object_set_new(comp, "upstreams", upstreams_json(s, r->authenticated, &overall));
	req_json(r, overall == UNHEALTHY ? 503 : 200,
		 json_pack("{s:s,s:s,s:I,s:f,s:o}", "status", health_names[overall],
			   "version", PACKAGE_VERSION,
			   "uptime_s", (json_int_t)((rs_now_ms() - s->started_ms) / 1000),
			   "response_time_ms", (double)req_elapsed_us(r) / 1e3,
			   "components", comp));
}

void api_health_live(struct req *r)
{
	/* the probe load balancers call most: a constant, no JSON to build */
	static const char alive[] = "{\"status\":\"alive\"}\n";

	r->status = 200;
	rs_buf_reset(&r->out);
	rs_buf_append(&r->out, alive, sizeof(alive) - 1);
}

void api_health_ready(struct req *r)
{
	double ms;
	const char *why = NULL;

	if (atomic_load(&r->srv->draining))
		why = "shutting down";
	else if (r->srv->sync != RS_WAL_SYNC_OFF && database_check(r, &ms) < 0)
		why = "the database cannot be read";
	if (why)
		req_json(r, 503, json_pack("{s:s,s:s}", "status", "not_ready", "reason", why));
	else
		req_json(r, 200, json_pack("{s:s}", "status", "ready"));
}
