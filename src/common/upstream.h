/*
 * upstream: the [upstream NAME] services Resync calls (the HWA REST API),
 * each with its endpoints, connection pool, circuit breakers and retries.
 *
 * A call (rs_upstream_call) goes:
 *   breaker admits? -> pick an endpoint -> pooled connection -> transfer
 *   -> outcome to the breaker and the endpoint -> retry (idempotent calls,
 *   retryable outcomes, full-jitter backoff or Retry-After, within the
 *   retry budget and the request's deadline) -> the last answer.
 *
 * Endpoints and load balancing (nginx's and Envoy's models):
 *   - strategy round_robin, least_connections (fewest in use / weight)
 *     or weighted (smooth weighted round robin, as nginx);
 *   - active health checks (rs_upstreams_check, every [pool]
 *     health_check_interval): unhealthy_threshold failures in a row take
 *     an endpoint out (the first check at start at once),
 *     healthy_threshold successes bring it back;
 *   - passive ejection: max_fails failed calls in a row eject it for
 *     fail_timeout, doubled for each ejection in a row (capped at 16x),
 *     reset by a success;
 *   - slow start: a returning endpoint's weight grows from 10% to full
 *     over slow_start;
 *   - panic: when no endpoint is available every endpoint is used (better
 *     to try than to fail all calls; the breaker stops a real outage).
 * A failed call for an endpoint is a transport error or a 5xx status.
 *
 * Breakers: every [breaker NAME] bound to an upstream, plus an implicit one
 * named after the upstream when no [breaker] with empty `routes` covers
 * it.  rs_upstreams_breaker picks the one guarding a route.
 *
 * Configuration is read once at rs_upstreams_new; these settings need a
 * restart to change.  Thread-safe apart from _new/_free.
 */
#ifndef RS_UPSTREAM_H
#define RS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "config.h"
#include "err.h"
#include "pool.h"
#include "retry.h"

enum rs_lb_strategy { RS_LB_ROUND_ROBIN, RS_LB_LEAST_CONNECTIONS, RS_LB_WEIGHTED };

struct rs_upstream;
struct rs_upstreams;

/* max_response_bytes caps every answer (the cache's max_value_size). */
int rs_upstreams_new(struct rs_upstreams **out, const struct rs_config *cfg,
		     size_t max_response_bytes, struct rs_err *err);
void rs_upstreams_free(struct rs_upstreams *ups);

size_t rs_upstreams_count(const struct rs_upstreams *ups);
struct rs_upstream *rs_upstreams_at(struct rs_upstreams *ups, size_t i);
struct rs_upstream *rs_upstreams_find(struct rs_upstreams *ups, const char *name);
const char *rs_upstream_name(const struct rs_upstream *u);

size_t rs_upstreams_nbreakers(const struct rs_upstreams *ups);
struct rs_breaker *rs_upstreams_breaker_at(struct rs_upstreams *ups, size_t i);
struct rs_breaker *rs_upstreams_breaker_find(struct rs_upstreams *ups,
					     const char *name);
/* The breaker guarding `route` (may be NULL) on u: a [breaker] listing
 * the route, else the upstream's default one. */
struct rs_breaker *rs_upstreams_breaker(struct rs_upstreams *ups,
					struct rs_upstream *u, const char *route);
struct rs_retry_budget *rs_upstreams_budget(struct rs_upstreams *ups);

struct rs_call {
	const char *method, *path;
	const char *body;                /* POST body or NULL */
	size_t body_len;
	bool idempotent;                 /* may be retried */
	const char *request_id;
	int64_t deadline_ms;             /* monotonic */
};

struct rs_call_result {
	long status;                     /* the last answer's; 0 = none */
	enum rs_call_error error;        /* why there is no answer */
	bool breaker_open;               /* refused by the breaker */
	int64_t retry_after_ms;          /* -1 unknown */
	char message[256];               /* error text for logs (no secrets) */
	struct rs_buf body;              /* caller frees */
	unsigned tries;
	int64_t upstream_us;             /* transfers + backoff */
};

/* 0 with an HTTP answer in res (any status), -1 without one (res->error
 * and message say why; breaker_open when the breaker refused).  b may be
 * NULL for no breaker. */
int rs_upstream_call(struct rs_upstreams *ups, struct rs_upstream *u,
		     struct rs_breaker *b, const struct rs_call *call,
		     struct rs_call_result *res);

/* For a call that got no answer (rs_upstream_call returned -1): the HTTP
 * status to answer the client with (503 breaker open or pool exhausted,
 * 504 timeout, 502 otherwise) and, in msg, why in words for the client,
 * naming the upstream as `service` ("HWA service") and no internals. */
int rs_call_failure(const struct rs_call_result *res, const char *service,
		    char *msg, size_t n);

/* Active health checks of every endpoint, and warming the pools up to
 * min_size; blocks for up to the checks' timeouts.  Run from one
 * background thread. */
void rs_upstreams_check(struct rs_upstreams *ups);
/* One health check of endpoint ep, as rs_upstreams_check does it
 * (health_check_path: 2xx; else the base URL: any answer below 500),
 * without changing the endpoint's state. */
struct rs_probe {
	char url[256];                   /* the endpoint's base URL */
	bool ok;
	long status;                     /* 0 without an answer */
	enum rs_call_error error;
	int64_t latency_ms;
	char message[256];               /* why not ok */
};
size_t rs_upstream_nendpoints(const struct rs_upstream *u);
void rs_upstream_probe(struct rs_upstream *u, size_t ep, struct rs_probe *out);

/* Pool maintenance (idle, lifetime, leaks); cheap, about once a second. */
void rs_upstreams_maintain(struct rs_upstreams *ups, int64_t now_ms);

enum rs_endpoint_state {
	RS_ENDPOINT_UP,
	RS_ENDPOINT_DOWN,          /* failed active checks */
	RS_ENDPOINT_EJECTED,       /* passive: too many failed calls */
	RS_ENDPOINT_SLOW_START,    /* back, weight still ramping up */
};
const char *rs_endpoint_state_name(enum rs_endpoint_state s);

struct rs_endpoint_info {
	char url[256];
	enum rs_endpoint_state state;
	unsigned weight;
	unsigned consecutive_failures;
	uint64_t calls, failures, ejections;
	int64_t last_check_ms;           /* wall clock; 0 = never */
	int64_t last_check_latency_ms;   /* -1 = failed */
	char last_error[160];
};

struct rs_upstream_info {
	char name[64];
	enum rs_lb_strategy strategy;
	size_t nendpoints;
	struct rs_endpoint_info endpoint[RS_POOL_MAX_ENDPOINTS];
	struct rs_pool_stats pool;
	uint64_t calls, retries, retries_denied, panics;
};
void rs_upstream_info(struct rs_upstream *u, struct rs_upstream_info *out);

const char *rs_lb_strategy_name(enum rs_lb_strategy s);

#endif
