/*
 * upstream: endpoints, load balancing, health, and the call path with its
 * breaker and retries (see upstream.h).
 */
#include "upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* Slow start begins at this share of the weight, in percent. */
#define SLOW_START_FLOOR_PCT 10
/* Ejections in a row double fail_timeout up to this factor. */
#define EJECT_MAX_FACTOR 16
/* Health checks never wait longer than this, whatever the timeouts. */
#define CHECK_MAX_MS 10000

struct endpoint {
	char *url;
	unsigned weight;
	/* under u->lock */
	bool down;                       /* by active checks */
	unsigned check_ok, check_fail;   /* streaks */
	unsigned consecutive_failures;   /* passive */
	unsigned ejections_in_row;
	int64_t ejected_until_ms;        /* monotonic; 0 = not ejected */
	int64_t returned_ms;             /* monotonic; start of slow start */
	int64_t current_weight;          /* smooth weighted round robin */
	uint64_t calls, failures, ejections;
	int64_t last_check_ms, last_check_latency_ms;
	char last_error[160];
};

struct rs_upstream {
	char *name;
	enum rs_lb_strategy strategy;
	struct endpoint ep[RS_POOL_MAX_ENDPOINTS];
	size_t nep;
	struct rs_pool *pool;
	int64_t request_timeout_ms;
	char *health_path;               /* NULL: the base URL */
	unsigned healthy_threshold, unhealthy_threshold, max_fails;
	int64_t fail_timeout_ms, slow_start_ms;
	struct rs_breaker *breaker;      /* the default one; borrowed */
	pthread_mutex_t lock;
	atomic_uint_fast64_t rr;
	atomic_uint_fast64_t calls, retries, retries_denied, panics;
};

struct guard {                           /* a [breaker] bound to routes */
	struct rs_upstream *u;
	char **routes;
	size_t nroutes;
	struct rs_breaker *b;
};

struct rs_upstreams {
	struct rs_upstream **u;
	size_t n;
	struct rs_breaker **breakers;
	size_t nbreakers;
	struct guard *guards;
	size_t nguards;
	struct rs_retry_options retry;
	struct rs_retry_budget *budget;
};

static const char *const lb_names[] = { "round_robin", "least_connections", "weighted" };
static const char *const ep_state_names[] = { "up", "down", "ejected", "slow_start" };

const char *rs_lb_strategy_name(enum rs_lb_strategy s)
{
	return (unsigned)s < RS_ARRAY_SIZE(lb_names) ? lb_names[s] : "unknown";
}

const char *rs_endpoint_state_name(enum rs_endpoint_state s)
{
	return (unsigned)s < RS_ARRAY_SIZE(ep_state_names) ? ep_state_names[s] : "unknown";
}

static int64_t num(const struct rs_conf_section *s, const char *key)
{
	const struct rs_conf_value *v = rs_conf_get(s, key);

	return v ? v->num : 0;
}

static const char *str(const struct rs_conf_section *s, const char *key)
{
	const struct rs_conf_value *v = rs_conf_get(s, key);

	return v && v->str && v->str[0] ? v->str : NULL;
}

static void upstream_free(struct rs_upstream *u)
{
	if (!u)
		return;
	rs_pool_free(u->pool);
	for (size_t i = 0; i < u->nep; i++)
		free(u->ep[i].url);
	pthread_mutex_destroy(&u->lock);
	free(u->health_path);
	free(u->name);
	free(u);
}

static int upstream_new(struct rs_upstream **out, const struct rs_config *cfg,
			const struct rs_conf_section *s, size_t max_response,
			struct rs_err *err)
{
	const struct rs_conf_value *urls = rs_conf_get(s, "url"),
		*weights = rs_conf_get(s, "weights");
	struct rs_upstream *u;
	struct rs_pool_options po = { 0 };

	*out = NULL;
	if (!urls || urls->nitems == 0)
		return rs_err_set(err, "[upstream %s]: no url", s->name);
	if (urls->nitems > RS_POOL_MAX_ENDPOINTS)
		return rs_err_set(err, "[upstream %s]: %zu endpoints, at most %d",
				  s->name, urls->nitems, RS_POOL_MAX_ENDPOINTS);
	if (!(u = calloc(1, sizeof(*u))) || !(u->name = strdup(s->name))) {
		free(u);
		return rs_err_set(err, "out of memory");
	}
	pthread_mutex_init(&u->lock, NULL);
	u->strategy = (enum rs_lb_strategy)num(s, "strategy");
	u->nep = urls->nitems;
	for (size_t i = 0; i < u->nep; i++) {
		size_t len = strlen(urls->items[i]);

		/* "http://h/twsd/" + "/api" would double the slash */
		while (len > 0 && urls->items[i][len - 1] == '/')
			len--;
		if (!(u->ep[i].url = strndup(urls->items[i], len)))
			goto oom;
		u->ep[i].weight = 1;
		if (weights && i < weights->nitems)
			u->ep[i].weight = (unsigned)strtoul(weights->items[i], NULL, 10);
		u->ep[i].last_check_latency_ms = -1;
	}
	u->request_timeout_ms = num(s, "request_timeout");
	if (str(s, "health_check_path") && !(u->health_path = strdup(str(s, "health_check_path"))))
		goto oom;
	u->healthy_threshold = (unsigned)num(s, "healthy_threshold");
	u->unhealthy_threshold = (unsigned)num(s, "unhealthy_threshold");
	u->max_fails = (unsigned)num(s, "max_fails");
	u->fail_timeout_ms = num(s, "fail_timeout");
	u->slow_start_ms = num(s, "slow_start");

	const char *list[RS_POOL_MAX_ENDPOINTS];
	for (size_t i = 0; i < u->nep; i++)
		list[i] = u->ep[i].url;
	po.name = u->name;
	po.urls = list;
	po.nendpoints = u->nep;
	po.min_size = (unsigned)rs_config_num(cfg, "pool", "min_size");
	po.max_size = (unsigned)rs_config_num(cfg, "pool", "max_size");
	po.max_per_endpoint = (unsigned)rs_config_num(cfg, "pool", "max_per_endpoint");
	po.idle_timeout_ms = rs_config_num(cfg, "pool", "idle_timeout");
	po.connection_timeout_ms = rs_config_num(cfg, "pool", "connection_timeout");
	po.max_lifetime_ms = rs_config_num(cfg, "pool", "max_lifetime");
	po.leak_detection_ms = rs_config_num(cfg, "pool", "leak_detection_threshold");
	po.tcp_keepalive = rs_config_num(cfg, "pool", "tcp_keepalive") != 0;
	po.verify_tls = num(s, "verify_tls") != 0;
	po.ca_file = str(s, "ca_file");
	po.tls_cert = str(s, "tls_cert");
	po.tls_key = str(s, "tls_key");
	po.username = str(s, "username");
	po.password = str(s, "password");
	po.bearer_token = str(s, "bearer_token");
	po.connect_timeout_ms = num(s, "connect_timeout");
	po.max_response_bytes = max_response;
	if (rs_pool_new(&u->pool, &po, err)) {
		upstream_free(u);
		return -1;
	}
	*out = u;
	return 0;
oom:
	upstream_free(u);
	return rs_err_set(err, "out of memory");
}

static int add_breaker(struct rs_upstreams *ups, struct rs_breaker *b)
{
	struct rs_breaker **nb = realloc(ups->breakers,
					 (ups->nbreakers + 1) * sizeof(*nb));

	if (!nb)
		return -1;
	ups->breakers = nb;
	ups->breakers[ups->nbreakers++] = b;
	return 0;
}

/* One breaker per [breaker NAME]; those with routes become guards; an
 * upstream no route-less [breaker] covers gets one under its own name. */
static int make_breakers(struct rs_upstreams *ups, const struct rs_config *cfg,
			 struct rs_err *err)
{
	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);
		const struct rs_conf_value *routes;
		struct rs_breaker_options o;
		struct rs_upstream *u;
		struct rs_breaker *b;

		if (strcmp(s->schema->name, "breaker") != 0)
			continue;
		if (!(u = rs_upstreams_find(ups, str(s, "upstream"))))
			return rs_err_set(err, "[breaker %s]: no [upstream %s]", s->name,
					  str(s, "upstream") ? str(s, "upstream") : "");
		if (rs_breaker_options_from_conf(&o, s->name, s, err) ||
		    rs_breaker_new(&b, &o, err))
			return -1;
		if (add_breaker(ups, b)) {
			rs_breaker_free(b);
			return rs_err_set(err, "out of memory");
		}
		routes = rs_conf_get(s, "routes");
		if (!routes || routes->nitems == 0) {
			if (!u->breaker)
				u->breaker = b;
			continue;
		}
		/* copied: the config may be reloaded and freed */
		struct guard *g = realloc(ups->guards, (ups->nguards + 1) * sizeof(*g));
		if (!g)
			return rs_err_set(err, "out of memory");
		ups->guards = g;
		g = &ups->guards[ups->nguards++];
		*g = (struct guard){ u, calloc(routes->nitems, sizeof(char *)), 0, b };
		if (!g->routes)
			return rs_err_set(err, "out of memory");
		for (; g->nroutes < routes->nitems; g->nroutes++)
			if (!(g->routes[g->nroutes] = strdup(routes->items[g->nroutes])))
				return rs_err_set(err, "out of memory");
	}
	for (size_t i = 0; i < ups->n; i++) {
		struct rs_upstream *u = ups->u[i];
		struct rs_breaker_options o;
		struct rs_breaker *b;

		if (u->breaker)
			continue;
		if (rs_upstreams_breaker_find(ups, u->name))
			return rs_err_set(err, "[breaker %s] guards only some routes of another upstream, so [upstream %s] cannot have its implicit breaker of that name",
					  u->name, u->name);
		if (rs_breaker_options_from_conf(&o, u->name, NULL, err) ||
		    rs_breaker_new(&b, &o, err))
			return -1;
		if (add_breaker(ups, b)) {
			rs_breaker_free(b);
			return rs_err_set(err, "out of memory");
		}
		u->breaker = b;
	}
	return 0;
}

int rs_upstreams_new(struct rs_upstreams **out, const struct rs_config *cfg,
		     size_t max_response_bytes, struct rs_err *err)
{
	struct rs_upstreams *ups = calloc(1, sizeof(*ups));

	*out = NULL;
	if (!ups)
		return rs_err_set(err, "out of memory");
	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);
		struct rs_upstream **nu, *u;

		if (strcmp(s->schema->name, "upstream") != 0)
			continue;
		if (!(nu = realloc(ups->u, (ups->n + 1) * sizeof(*nu)))) {
			rs_err_set(err, "out of memory");
			goto fail;
		}
		ups->u = nu;
		if (upstream_new(&u, cfg, s, max_response_bytes, err))
			goto fail;
		ups->u[ups->n++] = u;
	}
	if (make_breakers(ups, cfg, err))
		goto fail;
	rs_retry_options_from_config(&ups->retry, cfg);
	if (rs_retry_budget_new(&ups->budget, &ups->retry, err))
		goto fail;
	*out = ups;
	return 0;
fail:
	rs_upstreams_free(ups);
	return -1;
}

void rs_upstreams_free(struct rs_upstreams *ups)
{
	if (!ups)
		return;
	for (size_t i = 0; i < ups->n; i++)
		upstream_free(ups->u[i]);
	for (size_t i = 0; i < ups->nbreakers; i++)
		rs_breaker_free(ups->breakers[i]);
	rs_retry_budget_free(ups->budget);
	for (size_t i = 0; i < ups->nguards; i++) {
		for (size_t j = 0; j < ups->guards[i].nroutes; j++)
			free(ups->guards[i].routes[j]);
		free(ups->guards[i].routes);
	}
	free(ups->guards);
	free(ups->breakers);
	free(ups->u);
	free(ups);
}

size_t rs_upstreams_count(const struct rs_upstreams *ups)
{
	return ups ? ups->n : 0;
}

struct rs_upstream *rs_upstreams_at(struct rs_upstreams *ups, size_t i)
{
	return i < ups->n ? ups->u[i] : NULL;
}

struct rs_upstream *rs_upstreams_find(struct rs_upstreams *ups, const char *name)
{
	for (size_t i = 0; name && ups && i < ups->n; i++)
		if (strcmp(ups->u[i]->name, name) == 0)
			return ups->u[i];
	return NULL;
}

const char *rs_upstream_name(const struct rs_upstream *u)
{
	return u->name;
}

size_t rs_upstreams_nbreakers(const struct rs_upstreams *ups)
{
	return ups ? ups->nbreakers : 0;
}

struct rs_breaker *rs_upstreams_breaker_at(struct rs_upstreams *ups, size_t i)
{
	return i < ups->nbreakers ? ups->breakers[i] : NULL;
}

struct rs_breaker *rs_upstreams_breaker_find(struct rs_upstreams *ups,
					     const char *name)
{
	for (size_t i = 0; ups && i < ups->nbreakers; i++)
		if (strcmp(rs_breaker_name(ups->breakers[i]), name) == 0)
			return ups->breakers[i];
	return NULL;
}

struct rs_breaker *rs_upstreams_breaker(struct rs_upstreams *ups,
					struct rs_upstream *u, const char *route)
{
	for (size_t i = 0; route && i < ups->nguards; i++) {
		if (ups->guards[i].u != u)
			continue;
		for (size_t j = 0; j < ups->guards[i].nroutes; j++)
			if (strcmp(ups->guards[i].routes[j], route) == 0)
				return ups->guards[i].b;
	}
	return u->breaker;
}

struct rs_retry_budget *rs_upstreams_budget(struct rs_upstreams *ups)
{
	return ups->budget;
}

/* ---- endpoints ---- */

static bool available(const struct endpoint *e, int64_t now)
{
	return !e->down && now >= e->ejected_until_ms;
}

/* Weight with slow start applied, in hundredths. */
static int64_t effective_weight(const struct rs_upstream *u,
				const struct endpoint *e, int64_t now)
{
	int64_t w = (int64_t)e->weight * 100;

	if (u->slow_start_ms > 0 && e->returned_ms &&
	    now - e->returned_ms < u->slow_start_ms) {
		int64_t pct = SLOW_START_FLOOR_PCT +
			      (100 - SLOW_START_FLOOR_PCT) * (now - e->returned_ms) /
			      u->slow_start_ms;
		w = w * pct / 100;
		if (w < 1)
			w = 1;
	}
	return w;
}

static size_t pick(struct rs_upstream *u, int64_t now)
{
	size_t cand[RS_POOL_MAX_ENDPOINTS], n = 0, best = 0;
	bool slow = false;

	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->nep; i++) {
		if (available(&u->ep[i], now)) {
			cand[n++] = i;
			slow |= effective_weight(u, &u->ep[i], now) < (int64_t)u->ep[i].weight * 100;
		}
	}
	if (n == 0) {
		atomic_fetch_add(&u->panics, 1);
		for (size_t i = 0; i < u->nep; i++)
			cand[n++] = i;
	}
	uint64_t rr = atomic_fetch_add(&u->rr, 1);
	if (n == 1) {
		best = cand[0];
	} else if (u->strategy == RS_LB_WEIGHTED || slow) {
		/* nginx's smooth weighted round robin; slow start rides on it
		 * whatever the strategy, so a returning endpoint ramps up */
		int64_t total = 0, bw = INT64_MIN;
		for (size_t k = 0; k < n; k++) {
			struct endpoint *e = &u->ep[cand[k]];
			int64_t w = u->strategy == RS_LB_WEIGHTED ?
				    effective_weight(u, e, now) :
				    effective_weight(u, e, now) / e->weight;
			e->current_weight += w;
			total += w;
			if (e->current_weight > bw) {
				bw = e->current_weight;
				best = cand[k];
			}
		}
		u->ep[best].current_weight -= total;
	} else if (u->strategy == RS_LB_LEAST_CONNECTIONS) {
		/* start the scan at rr so ties rotate */
		int64_t bl = INT64_MAX;
		for (size_t k = 0; k < n; k++) {
			size_t i = cand[(rr + k) % n];
			int64_t load = (int64_t)rs_pool_in_use(u->pool, i) * 10000 /
				       effective_weight(u, &u->ep[i], now);
			if (load < bl) {
				bl = load;
				best = i;
			}
		}
	} else {
		best = cand[rr % n];
	}
	u->ep[best].calls++;
	pthread_mutex_unlock(&u->lock);
	return best;
}

static void endpoint_result(struct rs_upstream *u, size_t i, bool failed,
			    const char *why, const char *rid)
{
	struct endpoint *e = &u->ep[i];
	int64_t now = rs_monotonic_ms();
	bool ejected = false;
	int64_t for_ms = 0;

	pthread_mutex_lock(&u->lock);
	if (!failed) {
		e->consecutive_failures = 0;
		e->ejections_in_row = 0;
	} else {
		e->failures++;
		e->consecutive_failures++;
		if (u->max_fails && e->consecutive_failures >= u->max_fails &&
		    now >= e->ejected_until_ms) {
			unsigned f = 1u << (e->ejections_in_row < 4 ? e->ejections_in_row : 4);
			for_ms = u->fail_timeout_ms * (f > EJECT_MAX_FACTOR ? EJECT_MAX_FACTOR : f);
			e->ejected_until_ms = now + for_ms;
			e->returned_ms = e->ejected_until_ms;
			e->ejections_in_row++;
			e->ejections++;
			e->consecutive_failures = 0;
			ejected = true;
		}
	}
	pthread_mutex_unlock(&u->lock);
	if (ejected)
		RS_LOG(RS_LOG_WARNING, rid,
		       "upstream %s: endpoint %s ejected for %lld ms after %u failed calls in a row (last: %s)",
		       u->name, e->url, (long long)for_ms, u->max_fails, why);
}

/* ---- the call ---- */

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static bool endpoint_failure(long status, enum rs_call_error e)
{
	return (e != RS_CALL_OK && e != RS_CALL_EXHAUSTED) || status >= 500;
}

int rs_upstream_call(struct rs_upstreams *ups, struct rs_upstream *u,
		     struct rs_breaker *b, const struct rs_call *call,
		     struct rs_call_result *res)
{
	const struct rs_retry_options *ro = &ups->retry;
	int64_t start = rs_monotonic_us();
	struct rs_backoff bo;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	res->retry_after_ms = -1;
	rs_buf_init(&res->body, 0);
	rs_backoff_init(&bo, 0);
	atomic_fetch_add(&u->calls, 1);
	rs_retry_budget_call(ups->budget, rs_monotonic_ms());
	for (unsigned attempt = 1;; attempt++) {
		int64_t now = rs_monotonic_ms(), ra = 0;
		struct rs_http_response resp;

		if (now >= call->deadline_ms) {
			if (attempt == 1) {
				res->error = RS_CALL_TIMEOUT;
				snprintf(res->message, sizeof(res->message),
					 "upstream %s: no time left before the request's deadline", u->name);
			}
			break;
		}
		if (b && !rs_breaker_acquire(b, now, &ra)) {
			if (attempt == 1 || rc != 0) {
				rs_buf_free(&res->body);
				res->status = 0;
				res->breaker_open = true;
				res->error = RS_CALL_OK;
				res->retry_after_ms = ra > 0 ? ra : -1;
				snprintf(res->message, sizeof(res->message),
					 "upstream %s: circuit breaker %s is open",
					 u->name, rs_breaker_name(b));
				rc = -1;
			}
			break;
		}
		size_t ep = pick(u, now);
		int64_t per_try = ro->per_try_timeout_ms > 0 ? ro->per_try_timeout_ms :
				  u->request_timeout_ms;
		struct rs_http_request req = {
			call->method, call->path, call->body, call->body_len, NULL,
			per_try, call->request_id,
		};
		int prc = rs_pool_perform(u->pool, ep, &req, call->deadline_ms, &resp);
		res->tries = attempt;
		if (b)
			rs_breaker_record(b, rs_monotonic_ms(),
					  rs_breaker_classify(b, resp.status, resp.error),
					  resp.duration_us / 1000);
		if (resp.error != RS_CALL_EXHAUSTED)
			endpoint_result(u, ep, endpoint_failure(resp.status, resp.error),
					prc ? resp.message : "5xx answer", call->request_id);
		/* keep this try's outcome as the result */
		rs_buf_free(&res->body);
		res->body = resp.body;
		res->status = resp.status;
		res->error = resp.error;
		res->breaker_open = false;
		rs_copy_text(res->message, sizeof(res->message), resp.message);
		res->retry_after_ms = resp.retry_after[0] ?
			rs_retry_after_parse(resp.retry_after, rs_now_ms()) : -1;
		rc = prc ? -1 : 0;
		if (!call->idempotent || attempt >= ro->attempts ||
		    !rs_retry_retryable(resp.status, resp.error))
			break;
		int64_t delay = rs_backoff_next(&bo, ro, attempt);
		if (res->retry_after_ms > delay)
			delay = res->retry_after_ms;
		if (rs_monotonic_ms() + delay >= call->deadline_ms)
			break;
		if (!rs_retry_budget_try(ups->budget, rs_monotonic_ms())) {
			atomic_fetch_add(&u->retries_denied, 1);
			break;
		}
		atomic_fetch_add(&u->retries, 1);
		RS_LOG(RS_LOG_INFO, call->request_id,
		       "upstream %s: try %u failed (%s), retrying in %lld ms",
		       u->name, attempt, prc ? resp.message : "status", (long long)delay);
		sleep_ms(delay);
	}
	res->upstream_us = rs_monotonic_us() - start;
	return rc;
}

int rs_call_failure(const struct rs_call_result *res, const char *service,
		    char *msg, size_t n)
{
	if (res->breaker_open) {
		snprintf(msg, n, "the %s is unavailable (circuit breaker open)", service);
		return 503;
	}
	if (res->error == RS_CALL_EXHAUSTED) {
		snprintf(msg, n, "too many requests to the %s in flight", service);
		return 503;
	}
	if (res->error == RS_CALL_TIMEOUT) {
		snprintf(msg, n, "the %s did not answer in time", service);
		return 504;
	}
	snprintf(msg, n, "the %s could not be reached", service);
	return 502;
}

/* ---- health ---- */

size_t rs_upstream_nendpoints(const struct rs_upstream *u)
{
	return u->nep;
}

/* The health check's request: GET health_check_path (or the base URL),
 * within request_timeout but never longer than CHECK_MAX_MS. */
static struct rs_http_request health_request(const struct rs_upstream *u)
{
	return (struct rs_http_request){
		.method = "GET",
		.path = u->health_path ? u->health_path : "",
		.timeout_ms = u->request_timeout_ms < CHECK_MAX_MS ? u->request_timeout_ms
								 : CHECK_MAX_MS,
	};
}

static void probe(struct rs_upstream *u, size_t i, struct rs_probe *out)
{
	struct rs_http_request req = health_request(u);
	struct rs_http_response resp;
	int64_t t0 = rs_monotonic_ms();
	int rc = rs_pool_perform(u->pool, i, &req, t0 + req.timeout_ms, &resp);

	memset(out, 0, sizeof(*out));
	rs_copy_text(out->url, sizeof(out->url), u->ep[i].url);
	out->status = resp.status;
	out->error = resp.error;
	out->latency_ms = rs_monotonic_ms() - t0;
	out->ok = rc == 0 && (u->health_path ? resp.status >= 200 && resp.status < 300 :
					      resp.status < 500);
	if (rc)
		rs_copy_text(out->message, sizeof(out->message), resp.message);
	else if (!out->ok)
		snprintf(out->message, sizeof(out->message), "HTTP %ld from %.200s%.40s",
			 resp.status, u->ep[i].url, u->health_path ? u->health_path : "");
	rs_buf_free(&resp.body);
}

void rs_upstream_probe(struct rs_upstream *u, size_t ep, struct rs_probe *out)
{
	probe(u, ep, out);
}

/* true when the endpoint passed */
static bool check_one(struct rs_upstream *u, size_t i)
{
	struct endpoint *e = &u->ep[i];
	struct rs_probe pr;
	bool changed = false, up = false;

	probe(u, i, &pr);
	int64_t now = rs_monotonic_ms();
	bool ok = pr.ok;
	const char *why = pr.message;

	pthread_mutex_lock(&u->lock);
	/* the first check decides at once: no threshold to wait out at start */
	bool first = e->last_check_ms == 0;
	e->last_check_ms = rs_now_ms();
	e->last_check_latency_ms = ok ? pr.latency_ms : -1;
	rs_copy_text(e->last_error, sizeof(e->last_error), ok ? "" : why);
	if (ok) {
		e->check_fail = 0;
		if (e->down && ++e->check_ok >= u->healthy_threshold) {
			e->down = false;
			e->returned_ms = now;
			changed = up = true;
		}
	} else {
		e->check_ok = 0;
		if (!e->down && (++e->check_fail >= u->unhealthy_threshold || first)) {
			e->down = true;
			changed = true;
		}
	}
	pthread_mutex_unlock(&u->lock);
	if (changed)
		RS_LOG(up ? RS_LOG_NOTICE : RS_LOG_WARNING, NULL,
		       "upstream %s: endpoint %s is %s%s%s", u->name, e->url,
		       up ? "up again" : "down", up ? "" : ": ", up ? "" : why);
	return ok;
}

/* Open connections to endpoint i until the pool holds min_size (its
 * share: min_size spread over the endpoints), each with a health-check
 * request so it is known to work. */
static void warm(struct rs_upstream *u, size_t i, unsigned share)
{
	struct rs_http_request req = health_request(u);

	for (unsigned k = 0; k < share; k++) {
		struct rs_http_response resp;
		int rc = rs_pool_warm(u->pool, i, &req, rs_monotonic_ms() + req.timeout_ms, &resp);

		rs_buf_free(&resp.body);
		if (rc != 0)
			break;
	}
}

void rs_upstreams_check(struct rs_upstreams *ups)
{
	for (size_t i = 0; ups && i < ups->n; i++) {
		struct rs_upstream *u = ups->u[i];
		struct rs_pool_stats ps;

		rs_pool_stats(u->pool, &ps);
		for (size_t j = 0; j < u->nep; j++) {
			if (check_one(u, j))
				warm(u, j, (unsigned)((ps.min_size + u->nep - 1) / u->nep));
		}
	}
}

void rs_upstreams_maintain(struct rs_upstreams *ups, int64_t now_ms)
{
	for (size_t i = 0; ups && i < ups->n; i++)
		rs_pool_maintain(ups->u[i]->pool, now_ms);
}

void rs_upstream_info(struct rs_upstream *u, struct rs_upstream_info *out)
{
	int64_t now = rs_monotonic_ms();

	memset(out, 0, sizeof(*out));
	rs_copy_text(out->name, sizeof(out->name), u->name);
	out->strategy = u->strategy;
	out->nendpoints = u->nep;
	rs_pool_stats(u->pool, &out->pool);
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->nep; i++) {
		const struct endpoint *e = &u->ep[i];
		struct rs_endpoint_info *o = &out->endpoint[i];

		rs_copy_text(o->url, sizeof(o->url), e->url);
		o->state = e->down ? RS_ENDPOINT_DOWN :
			   now < e->ejected_until_ms ? RS_ENDPOINT_EJECTED :
			   effective_weight(u, e, now) < (int64_t)e->weight * 100 ?
				RS_ENDPOINT_SLOW_START : RS_ENDPOINT_UP;
		o->weight = e->weight;
		o->consecutive_failures = e->consecutive_failures;
		o->calls = e->calls;
		o->failures = e->failures;
		o->ejections = e->ejections;
		o->last_check_ms = e->last_check_ms;
		o->last_check_latency_ms = e->last_check_latency_ms;
		rs_copy_text(o->last_error, sizeof(o->last_error), e->last_error);
	}
	pthread_mutex_unlock(&u->lock);
	out->calls = atomic_load(&u->calls);
	out->retries = atomic_load(&u->retries);
	out->retries_denied = atomic_load(&u->retries_denied);
	out->panics = atomic_load(&u->panics);
}
