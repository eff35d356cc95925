/*
 * hwa: cached HWA REST calls (see hwa.h).
 */
#include "hwa.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ask.h"
#include "log.h"
#include "util.h"

#define PARAM_MAX 128
#define PATH_MAX_LEN 1024
#define KEY_MAX 256
/* Refreshes waiting for the refresher; one more is dropped (its ticket
 * lapses and a later request asks again). */
#define REFRESH_QUEUE 64

/* The built-in routes: HWA 10.x REST API v2 (paths under the engine's
 * base URL, e.g. https://hwa.example.com:31116). */
static const struct builtin {
	const char *name;
	const char *method, *path, *body;
	int64_t ttl_ms;
	const char *key;                 /* cache key, the parameter appended */
} builtins[RS_HWA_NROUTES] = {
	[RS_HWA_SYSTEM_STATUS] = { "system_status", "GET",
		"/twsd/api/v2/engine/info", NULL, 30000, "system:status" },
	[RS_HWA_WORKSTATIONS_STATUS] = { "workstations_status", "POST",
		"/twsd/api/v2/plan/current/workstation/query", "{\"filters\":{}}",
		30000, "workstations:status" },
	[RS_HWA_JOBS_STATUS] = { "jobs_status", "POST",
		"/twsd/api/v2/plan/current/job/query", "{\"filters\":{}}",
		30000, "jobs:status" },
	[RS_HWA_JOB] = { "job", "GET",
		"/twsd/api/v2/plan/current/job/{id}", NULL, 60000, "jobs:id:" },
	[RS_HWA_WORKSTATIONS] = { "workstations", "POST",
		"/twsd/api/v2/model/workstation/header/query", "{\"filters\":{}}",
		300000, "workstations:all" },
	[RS_HWA_WORKSTATION] = { "workstation", "GET",
		"/twsd/api/v2/model/workstation/{name}", NULL, 300000,
		"workstations:name:" },
	[RS_HWA_JOBSTREAMS] = { "jobstreams", "POST",
		"/twsd/api/v2/plan/current/jobstream/query", "{\"filters\":{}}",
		60000, "plan:jobstreams" },
};

struct route {
	bool enabled;
	char *method, *path, *body;
	size_t body_len;
	int64_t ttl_ms;
	struct rs_upstream *u;           /* NULL: its upstream is not configured */
	struct rs_breaker *b;
	char *upstream_name;
};

/* A refresh the refresher thread owes (stale_while_revalidate). */
struct refresh {
	enum rs_hwa_route route;
	char param[PARAM_MAX + 1];
};

struct rs_hwa {
	struct rs_upstreams *ups;
	struct rs_cache *cache;
	struct route r[RS_HWA_NROUTES];
	int64_t refresh_timeout_ms;      /* [server] request_timeout, at most
					  * shutdown_timeout */

	pthread_mutex_t lock;            /* the queue and stop */
	pthread_cond_t wake;
	struct refresh queue[REFRESH_QUEUE];
	size_t head, len;
	bool stop, running, inited;
	pthread_t thread;
	uint64_t refreshes, refresh_failures, refresh_dropped;
};

static void *refresher(void *arg);

const char *rs_hwa_route_name(enum rs_hwa_route r)
{
	return (unsigned)r < RS_HWA_NROUTES ? builtins[r].name : "unknown";
}

int rs_hwa_route_parse(const char *name)
{
	for (int i = 0; i < RS_HWA_NROUTES; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return i;
	return -1;
}

bool rs_route_known(const char *name)
{
	return rs_hwa_route_parse(name) >= 0 || strcmp(name, RS_ASK_ROUTE) == 0;
}

const char *rs_route_names(void)
{
	return "system_status, workstations_status, jobs_status, job, "
	       "workstations, workstation, jobstreams, " RS_ASK_ROUTE;
}

bool rs_hwa_route_has_param(enum rs_hwa_route r)
{
	return r == RS_HWA_JOB || r == RS_HWA_WORKSTATION;
}

bool rs_hwa_param_valid(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '.' || *s == '-')
		return false;
	for (; s[n]; n++)
		if (n >= PARAM_MAX ||
		    !(isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_' ||
		      s[n] == '-'))
			return false;
	return true;
}

static int dup_field(char **dst, const char *src)
{
	return src && !(*dst = strdup(src)) ? -1 : 0;
}

static int route_setup(struct rs_hwa *h, const struct rs_config *cfg,
		       enum rs_hwa_route i, struct rs_err *err)
{
	const struct rs_conf_section *s = rs_config_find(cfg, "route", builtins[i].name);
	const struct rs_conf_value *v;
	struct route *r = &h->r[i];
	const char *up = RS_HWA_UPSTREAM;

	r->enabled = true;
	r->ttl_ms = builtins[i].ttl_ms;
	if (s) {
		if ((v = rs_conf_get(s, "enabled")))
			r->enabled = v->num != 0;
		if ((v = rs_conf_get(s, "ttl")))
			r->ttl_ms = v->num;
		if ((v = rs_conf_get(s, "upstream")) && v->str)
			up = v->str;
	}
	if (dup_field(&r->method, s && (v = rs_conf_get(s, "method")) ? v->str :
		      builtins[i].method) ||
	    dup_field(&r->path, s && (v = rs_conf_get(s, "path")) ? v->str :
		      builtins[i].path) ||
	    dup_field(&r->body, s && (v = rs_conf_get(s, "body")) ? v->str :
		      builtins[i].body) ||
	    dup_field(&r->upstream_name, up))
		return rs_err_set(err, "out of memory");
	r->body_len = r->body ? strlen(r->body) : 0;
	r->u = rs_upstreams_find(h->ups, up);
	if (!r->u && s)
		return rs_err_set(err, "[route %s]: no [upstream %s] is configured",
				  builtins[i].name, up);
	if (r->u)
		r->b = rs_upstreams_breaker(h->ups, r->u, builtins[i].name);
	return 0;
}

int rs_hwa_new(struct rs_hwa **out, const struct rs_config *cfg,
	       struct rs_upstreams *ups, struct rs_cache *cache,
	       struct rs_err *err)
{
	struct rs_hwa *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return rs_err_set(err, "out of memory");
	h->ups = ups;
	h->cache = cache;
	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);

		if (strcmp(s->schema->name, "route") == 0 && !rs_route_known(s->name)) {
			rs_err_set(err, "[route %s]: unknown route (known: %s)",
				   s->name, rs_route_names());
			goto fail;
		}
	}
	for (int i = 0; i < RS_HWA_NROUTES; i++)
		if (route_setup(h, cfg, (enum rs_hwa_route)i, err))
			goto fail;
	/* a refresh in flight holds up shutdown: no longer than it may last */
	h->refresh_timeout_ms = rs_config_num(cfg, "server", "request_timeout");
	if (h->refresh_timeout_ms > rs_config_num(cfg, "server", "shutdown_timeout") &&
	    rs_config_num(cfg, "server", "shutdown_timeout") > 0)
		h->refresh_timeout_ms = rs_config_num(cfg, "server", "shutdown_timeout");
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	h->inited = true;
	if (rs_config_num(cfg, "cache", "stale_while_revalidate") > 0) {
		int rc = pthread_create(&h->thread, NULL, refresher, h);
		if (rc) {
			rs_err_errno(err, rc, "cannot start the HWA refresher thread");
			goto fail;
		}
		h->running = true;
	}
	*out = h;
	return 0;
fail:
	rs_hwa_free(h);
	return -1;
}

void rs_hwa_free(struct rs_hwa *h)
{
	if (!h)
		return;
	if (h->running) {
		/* a refresh in flight ends within its deadline */
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	if (h->inited) {
		pthread_cond_destroy(&h->wake);
		pthread_mutex_destroy(&h->lock);
	}
	for (int i = 0; i < RS_HWA_NROUTES; i++) {
		free(h->r[i].method);
		free(h->r[i].path);
		free(h->r[i].body);
		free(h->r[i].upstream_name);
	}
	free(h);
}

bool rs_hwa_route_enabled(const struct rs_hwa *h, enum rs_hwa_route r)
{
	return (unsigned)r < RS_HWA_NROUTES && h->r[r].enabled;
}

/* The route's path with {id} / {name} replaced by param. */
static int expand_path(const char *tmpl, const char *param, char *out, size_t n)
{
	const char *p = strchr(tmpl, '{'), *q = p ? strchr(p, '}') : NULL;
	int len;

	if (!p || !q || !param)
		len = snprintf(out, n, "%s", tmpl);
	else
		len = snprintf(out, n, "%.*s%s%s", (int)(p - tmpl), tmpl, param, q + 1);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

struct load {
	struct rs_hwa *h;
	struct route *r;
	const char *path, *request_id;
	int64_t deadline_ms;
	struct rs_hwa_result *res;
};

/* err->code carries the HTTP status to answer, so every single-flight
 * waiter answers the same. */
static int fail(struct rs_err *err, int status, const char *client,
		struct rs_hwa_result *res, const char *detail)
{
	rs_copy_text(res->detail, sizeof(res->detail), detail);
	rs_err_set(err, "%s", client);
	err->code = status;
	return -1;
}

static int loader(void *arg, const void *key, size_t klen, void **val,
		  size_t *vlen, int64_t *ttl_ms, struct rs_err *err)
{
	struct load *l = arg;
	struct rs_hwa_result *res = l->res;
	struct rs_call call = {
		l->r->method, l->path, l->r->body, l->r->body_len,
		strcmp(l->r->method, "GET") == 0 || l->r->body != NULL,
		l->request_id, l->deadline_ms,
	};
	struct rs_call_result cr;
	char msg[256];
	int rc;

	(void)key;
	(void)klen;
	/* the query calls are POSTs that read, so they are retried too */
	rc = rs_upstream_call(l->h->ups, l->r->u, l->r->b, &call, &cr);
	res->called = true;
	res->tries = cr.tries;
	res->upstream_us = cr.upstream_us;
	res->upstream_status = cr.status;
	res->retry_after_ms = cr.retry_after_ms;
	res->breaker_open = cr.breaker_open;
	if (rc) {
		rs_buf_free(&cr.body);
		int status = rs_call_failure(&cr, "HWA service", msg, sizeof(msg));
		return fail(err, status, msg, res, cr.message);
	}
	if (cr.status < 200 || cr.status > 299) {
		snprintf(msg, sizeof(msg), "upstream %.32s answered HTTP %ld for %.100s",
			 l->r->upstream_name, cr.status, l->path);
		rs_buf_free(&cr.body);
		if (cr.status == 404)
			return fail(err, 404, "not found in HWA", res, msg);
		if (cr.status == 503 || cr.status == 429)
			return fail(err, 503, "the HWA service is unavailable", res, msg);
		return fail(err, 502, "the HWA service answered with an error", res, msg);
	}
	json_error_t je;
	json_t *doc = json_loadb(cr.body.data ? cr.body.data : "", cr.body.len,
				 JSON_DECODE_ANY, &je);
	if (!doc) {
		snprintf(msg, sizeof(msg), "upstream %.32s answered invalid JSON for %.100s: %.60s",
			 l->r->upstream_name, l->path, je.text);
		rs_buf_free(&cr.body);
		return fail(err, 502, "the HWA service answered with invalid JSON", res, msg);
	}
	json_decref(doc);
	*vlen = cr.body.len;
	*val = rs_buf_detach(&cr.body);
	*ttl_ms = l->r->ttl_ms;
	return 0;
}

static void make_key(enum rs_hwa_route id, const char *param, char *key, size_t n)
{
	snprintf(key, n, "%s%s", builtins[id].key, rs_hwa_route_has_param(id) ? param : "");
}

/* Refresh one entry now (the refresher thread): load it as a miss would,
 * and store it, which also hands back the refresh ticket. */
static void refresh_one(struct rs_hwa *h, const struct refresh *q)
{
	struct route *r = &h->r[q->route];
	const char *param = rs_hwa_route_has_param(q->route) ? q->param : NULL;
	char key[KEY_MAX], path[PATH_MAX_LEN];
	struct rs_hwa_result res;
	struct rs_err err = RS_ERR_INIT;
	void *val = NULL;
	size_t vlen = 0;
	int64_t ttl = -1;

	memset(&res, 0, sizeof(res));
	make_key(q->route, param, key, sizeof(key));
	if (expand_path(r->path, param, path, sizeof(path)))
		return;
	struct load l = { h, r, path, NULL, rs_monotonic_ms() + h->refresh_timeout_ms, &res };
	if (loader(&l, key, strlen(key), &val, &vlen, &ttl, &err) == 0 &&
	    rs_cache_set(h->cache, key, strlen(key), val, vlen, ttl, &err) == 0) {
		free(val);
		__atomic_add_fetch(&h->refreshes, 1, __ATOMIC_RELAXED);
		return;
	}
	free(val);
	__atomic_add_fetch(&h->refresh_failures, 1, __ATOMIC_RELAXED);
	RS_LOG(RS_LOG_WARNING, NULL, "refreshing %s in the background failed: %s",
	       key, res.detail[0] ? res.detail : err.msg);
}

static void *refresher(void *arg)
{
	struct rs_hwa *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		if (!h->len) {
			pthread_cond_wait(&h->wake, &h->lock);
			continue;
		}
		struct refresh q = h->queue[h->head];
		h->head = (h->head + 1) % REFRESH_QUEUE;
		h->len--;
		pthread_mutex_unlock(&h->lock);
		refresh_one(h, &q);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void queue_refresh(struct rs_hwa *h, enum rs_hwa_route id, const char *param)
{
	pthread_mutex_lock(&h->lock);
	if (h->len < REFRESH_QUEUE && h->running) {
		struct refresh *q = &h->queue[(h->head + h->len) % REFRESH_QUEUE];
		q->route = id;
		rs_copy_text(q->param, sizeof(q->param), param ? param : "");
		h->len++;
		pthread_cond_signal(&h->wake);
	} else {
		h->refresh_dropped++;
	}
	pthread_mutex_unlock(&h->lock);
}

int rs_hwa_get(struct rs_hwa *h, enum rs_hwa_route id, const char *param,
	       const char *request_id, int64_t deadline_ms,
	       struct rs_hwa_result *res)
{
	struct route *r;
	char key[KEY_MAX], path[PATH_MAX_LEN];
	struct rs_err err = RS_ERR_INIT;
	int st;

	memset(res, 0, sizeof(*res));
	res->retry_after_ms = -1;
	if ((unsigned)id >= RS_HWA_NROUTES || !h->r[id].enabled) {
		res->http_status = 404;
		rs_copy_text(res->message, sizeof(res->message), "no such route");
		return -1;
	}
	r = &h->r[id];
	if (rs_hwa_route_has_param(id) && !rs_hwa_param_valid(param)) {
		res->http_status = 400;
		rs_copy_text(res->message, sizeof(res->message), "invalid id or name");
		return -1;
	}
	if (!r->u) {
		res->http_status = 503;
		snprintf(res->message, sizeof(res->message), "no HWA upstream is configured");
		snprintf(res->detail, sizeof(res->detail), "route %s: no [upstream %s]",
			 builtins[id].name, r->upstream_name);
		return -1;
	}
	make_key(id, param, key, sizeof(key));
	if (h->running) {
		/* stale_while_revalidate: a fresh hit, or an answer a little
		 * past its TTL at once while one refresh runs behind it */
		st = rs_cache_get(h->cache, key, strlen(key), RS_CACHE_ALLOW_REVALIDATE,
				  &res->value);
		if (st == RS_CACHE_HIT || st == RS_CACHE_STALE) {
			res->cache = (enum rs_cache_status)st;
			res->revalidating = st == RS_CACHE_STALE;
			if (res->value.refresh)
				queue_refresh(h, id, param);
			return 0;
		}
	}
	if (expand_path(r->path, param, path, sizeof(path))) {
		res->http_status = 400;
		rs_copy_text(res->message, sizeof(res->message), "invalid id or name");
		return -1;
	}
	struct load l = { h, r, path, request_id, deadline_ms, res };
	int64_t wait = deadline_ms - rs_monotonic_ms();
	st = rs_cache_get_or_load(h->cache, key, strlen(key), loader, &l,
				  wait > 0 ? wait : 0, &res->value, &err);
	if (st >= 0) {
		res->cache = (enum rs_cache_status)st;
		return 0;
	}
	res->http_status = err.code >= 400 && err.code <= 599 ? err.code : 504;
	rs_copy_text(res->message, sizeof(res->message),
		     err.code >= 400 ? err.msg : "the HWA service did not answer in time");
	if (!res->detail[0])
		rs_copy_text(res->detail, sizeof(res->detail), err.msg);
	return -1;
}
