/*
 * pool: the connection pool of one [upstream NAME], built on libcurl.
 *
 * libcurl cannot share one connection cache between threads that use it
 * at once (BASELINES.md), so a pooled "connection" is a CURL easy handle
 * whose private connection cache holds at most one connection
 * (CURLOPT_MAXCONNECTS 1).  A thread leases a handle, performs one
 * transfer on it and hands it back; handles move between threads but are
 * never used by two at once.  Only DNS answers and TLS sessions are shared
 * (a CURLSH with locks).  So the seed's pool model holds exactly:
 *
 *   open     handles in existence (each holds zero or one connection)
 *   in use   leased; idle = open - in use
 *   caps     open <= max_size, open to one endpoint <= max_per_endpoint;
 *            a lease waits up to connection_timeout, or the request's
 *            deadline if sooner, then fails with RS_CALL_EXHAUSTED ("pool
 *            exhausted"); an idle handle of another endpoint is closed to
 *            make room rather than wait
 *   hit      the transfer reused the handle's connection; miss = it opened
 *            one (CURLINFO_NUM_CONNECTS)
 *   closures counted by reason: idle (idle_timeout, above min_size),
 *            lifetime (max_lifetime less up to 2.5% random jitter, so they
 *            do not all expire together), error (the transfer failed),
 *            remote (the server closed it), rebalance, shutdown
 *   leaks    a lease held longer than leak_detection_ms is logged once,
 *            with the request id, by rs_pool_maintain (HikariCP)
 *
 * rs_pool_maintain (housekeeping, about once a second) closes idle and
 * expired connections and reports leaks.  The upstream module's health
 * checks keep min_size connections warm through rs_pool_warm.
 *
 * Thread-safety: everything but _new/_free; one mutex per pool, never held
 * during a transfer.
 */
#ifndef RS_POOL_H
#define RS_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "buf.h"
#include "err.h"
#include "histogram.h"

#define RS_POOL_MAX_ENDPOINTS 32
#define RS_POOL_REQUEST_ID_MAX 64

struct rs_pool_options {
	const char *name;                 /* the upstream's, for messages */
	const char *const *urls;          /* base URL per endpoint */
	size_t nendpoints;                /* 1..RS_POOL_MAX_ENDPOINTS */
	unsigned min_size, max_size;
	unsigned max_per_endpoint;        /* 0 = max_size */
	int64_t idle_timeout_ms, connection_timeout_ms, max_lifetime_ms;
	int64_t leak_detection_ms;        /* 0 = off */
	bool tcp_keepalive;
	bool verify_tls;
	const char *ca_file, *tls_cert, *tls_key;   /* NULL = none */
	const char *username, *password;            /* NULL = no basic auth */
	const char *bearer_token;                   /* NULL = none */
	int64_t connect_timeout_ms;
	size_t max_response_bytes;        /* larger answers fail (RS_CALL_PARTIAL) */
};

enum rs_pool_close_reason {
	RS_POOL_CLOSE_IDLE,
	RS_POOL_CLOSE_LIFETIME,
	RS_POOL_CLOSE_ERROR,
	RS_POOL_CLOSE_REMOTE,
	RS_POOL_CLOSE_REBALANCE,
	RS_POOL_CLOSE_SHUTDOWN,
	RS_POOL_CLOSE_NREASONS,
};

/* One upstream request. */
struct rs_http_request {
	const char *method;               /* "GET", "POST", "HEAD" */
	const char *path;                 /* appended to the endpoint's base URL */
	const char *body;                 /* POST body or NULL */
	size_t body_len;
	const char *content_type;         /* of body; NULL = application/json */
	int64_t timeout_ms;               /* this try, whole transfer */
	const char *request_id;           /* sent as X-Request-ID; for leak logs */
};

struct rs_http_response {
	long status;                      /* 0 when error != RS_CALL_OK */
	enum rs_call_error error;
	char message[256];                /* why, when error != RS_CALL_OK */
	struct rs_buf body;               /* caller frees: rs_buf_free */
	char retry_after[64];             /* raw Retry-After value; "" = none */
	int64_t duration_us;              /* the transfer, lease excluded */
	int64_t wait_us;                  /* waiting for a connection */
	bool reused;                      /* hit */
};

struct rs_pool_endpoint_stats {
	const char *url;                  /* borrowed from the pool */
	unsigned open, in_use;
};

struct rs_pool_stats {
	uint64_t hits, misses, creations, exhaustions, requests, errors;
	uint64_t closures[RS_POOL_CLOSE_NREASONS];
	uint64_t leaks;
	unsigned open, in_use, idle, waiting;
	unsigned max_size, min_size;
	size_t nendpoints;
	struct rs_pool_endpoint_stats endpoint[RS_POOL_MAX_ENDPOINTS];
	/* borrowed; recorded in microseconds */
	const struct rs_hist *acquire_wait_us, *request_us;
};

struct rs_pool;

/* curl_global_init must have run (rs_pool_global_init, once per process,
 * before any thread starts). */
int rs_pool_global_init(struct rs_err *err);

int rs_pool_new(struct rs_pool **out, const struct rs_pool_options *o,
		struct rs_err *err);
/* No lease may be outstanding. */
void rs_pool_free(struct rs_pool *p);

/* Lease a connection to endpoint ep and perform req on it, then return
 * the connection (closed if the transfer failed).  deadline_ms is the
 * monotonic time (rs_monotonic_ms) the whole thing must end by.  Returns
 * 0 when an HTTP answer came back (any status), -1 otherwise with
 * resp->error and resp->message set.  resp is initialised here; the
 * caller frees resp->body. */
int rs_pool_perform(struct rs_pool *p, size_t ep,
		    const struct rs_http_request *req, int64_t deadline_ms,
		    struct rs_http_response *resp);

/* As rs_pool_perform, but on a new connection, and only while fewer than
 * min_size are open: returns 1 (resp->error RS_CALL_EXHAUSTED) without
 * doing anything when min_size are open or no room is free now.  Health
 * checks use it to keep min_size connections warm. */
int rs_pool_warm(struct rs_pool *p, size_t ep, const struct rs_http_request *req,
		 int64_t deadline_ms, struct rs_http_response *resp);

void rs_pool_maintain(struct rs_pool *p, int64_t now_ms);
void rs_pool_stats(struct rs_pool *p, struct rs_pool_stats *out);
unsigned rs_pool_in_use(struct rs_pool *p, size_t ep);
const char *rs_pool_close_reason_name(enum rs_pool_close_reason r);

#endif
