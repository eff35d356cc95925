/*
 * resync-fcgi: what the responder's files share.
 *
 * One struct server per process (main.c owns it).  Its configuration is a
 * reference-counted struct srv_conf: a request takes a reference when it
 * starts and keeps that configuration to its end, so SIGHUP swaps the
 * pointer without stopping anyone (conf_lock guards only the pointer and
 * the counts).  The store (cache + log) lives as long as the process; the
 * settings that need a restart are read from the first configuration.
 *
 * A request is a struct req (request.c): the parsed CGI parameters, the
 * body, the response being built, the stage timings.  It is owned by the
 * worker running it; the watchdog (worker.c) may answer it with a 504
 * under the worker slot's lock, after which the worker's own answer is
 * dropped.
 */
#ifndef RS_FCGI_SERVER_H
#define RS_FCGI_SERVER_H

#include <fcgiapp.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "apikey.h"
#include "ask.h"
#include "audit.h"
#include "buf.h"
#include "config.h"
#include "cors.h"
#include "db.h"
#include "fields.h"
#include "hwa.h"
#include "jwt.h"
#include "metrics.h"
#include "ratelimit.h"
#include "store.h"
#include "upstream.h"


/* Rate-limit classes: each client has a bucket per class. */
enum rl_class { RL_READ, RL_WRITE, RL_EXEMPT };

/* Roles, in order: a route needing ROLE_VIEWER admits operator and admin. */
enum role { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN };
const char *role_name(enum role r);

struct api_key {
	char *name;
	unsigned char hash[32];     /* SHA-256 of the key */
	enum role role;
	struct rs_key_times times;  /* [key] created, expires, rotated */
	/* the one mutable field of a configuration: the wall-clock minute
	 * of this key's last audit record of a use in its grace period */
	atomic_int_least64_t grace_audited_minute;
};

/* Everything a request reads from the configuration, parsed once per load. */
struct srv_conf {
	struct rs_config *cfg;
	int64_t loaded_ms;
	int64_t max_body;
	int64_t request_timeout_ms;
	int64_t slow_request_ms;
	int64_t shutdown_timeout_ms;
	int64_t compress_min;
	int max_json_depth;
	regex_t request_id_re;
	bool request_id_re_ok;
	struct api_key *keys;
	size_t nkeys;
	int64_t key_grace_ms, key_rotation_ms;   /* [auth] */
	/* HS256 bearer tokens; jwt.secret NULL: JWT off.  Strings borrowed
	 * from cfg. */
	struct rs_jwt_options jwt;
	/* [cors]: lists borrowed from cfg */
	struct rs_cors_policy cors;
	/* [idempotency] */
	int64_t idem_ttl_ms, idem_lock_ms, idem_max_response;
	/* [ratelimit], by enum rl_class (RL_READ, RL_WRITE) */
	bool rl_on;
	double rl_rate[2];
	uint32_t rl_burst[2];
	unsigned refs;              /* under server.conf_lock */
};

struct worker;

struct server {
	/* set at start, read-only afterwards */
	const char *config_path;
	char origin[96];
	int64_t started_ms;
	int listen_fd;              /* -1 in CGI mode */
	char *unix_path;            /* socket file we created, removed at exit */
	unsigned nthreads;
	struct rs_store *store;
	enum rs_wal_sync sync;
	size_t max_key;             /* the store's key limit, as configured */
	char *db_path;
	struct rs_metrics *metrics;
	struct worker *workers;     /* nthreads slots */

	pthread_mutex_t conf_lock;
	struct srv_conf *conf;      /* under conf_lock */
	atomic_uint_least64_t reloads, reload_failures;

	atomic_bool draining;
	atomic_uint_least64_t accepted, slow, timed_out;
	atomic_uint active, max_active;

	/* the upstreams and the HWA routes over them, from the first
	 * configuration (restart to change) */
	struct rs_upstreams *ups;
	struct rs_hwa *hwa;
	struct rs_ask *ask;         /* NULL: no LLM configured */

	/* the audit log (auditing.c); NULL: [audit] enabled = false */
	struct rs_audit *audit;
	struct rs_keyring *audit_keys;
	char config_sha256[65];     /* of the file last loaded, for reload records */

	/* the door (mw_cors.c, mw_ratelimit.c) */
	struct rs_ratelimit *rl;
	struct rs_cors_monitor cors_mon;
	atomic_uint_least64_t rl_counts[2][2];   /* [class][limited] */
	atomic_uint_least64_t preflights[2];     /* [refused] */
};

/* Reference to the current configuration; release with conf_put. */
struct srv_conf *conf_get(struct server *s);
void conf_put(struct server *s, struct srv_conf *c);
/* Build a srv_conf from a loaded, validated configuration (takes cfg). */
struct srv_conf *srv_conf_new(struct rs_config *cfg, struct rs_err *err);
void srv_conf_free(struct srv_conf *c);

/* ---- requests (request.c) --------------------------------------------- */

enum stage { STAGE_MIDDLEWARE, STAGE_CACHE, STAGE_UPSTREAM, STAGE_DATABASE,
	     STAGE_COUNT };

#define REQ_ID_MAX 129
#define RESPONSE_MAX (64u << 20)
#define REQ_HEADERS_MAX 8192

struct req {
	struct server *srv;
	struct worker *worker;      /* running it (CGI: a slot of its own) */
	struct srv_conf *conf;      /* referenced for the request's life */
	FCGX_Request *fcgi;         /* NULL: plain CGI (environ, stdin, stdout) */
	char **envp;
	int64_t start_us;           /* monotonic */
	char id[REQ_ID_MAX];
	const char *method;
	char path[1024];            /* REQUEST_URI's path, not decoded */
	const char *query;
	bool https;
	const char *remote_addr;
	/* the parameters every request reads, found in one pass over envp
	 * (req_scan); borrowed from it, NULL when absent */
	struct {
		const char *request_uri, *request_method, *query_string,
			*https, *request_scheme, *remote_addr, *content_length,
			*content_type, *request_id, *api_key, *authorization,
			*accept_encoding, *origin, *host, *acr_method,
			*acr_headers, *idempotency_key;
	} p;

	/* body, read by request_read_body; json: parsed and checked against
	 * the route's fields (owned; req_json_body hands out references) */
	char *body;
	size_t body_len;
	json_t *json;

	/* middleware results */
	enum role role;
	const char *key_name;       /* borrowed from conf, or jwt_subject */
	char jwt_subject[RS_JWT_SUBJECT_MAX + 4];  /* "jwt:SUB" */
	bool authenticated;
	int route;                  /* index in the router table, -1 none */
	const char *path_param;     /* the {id} / {name} segment, in path */
	const char *route_name;     /* its pattern, or "unmatched" */
	const char *cache_status;   /* "HIT", "MISS", "STALE" or NULL */
	bool audit_failed;          /* a record could not be queued: answer 503 */
	/* step 6: the Idempotency-Key this request claimed, if any */
	bool idem_claimed;
	unsigned char idem_fp[32];
	char idem_scope[RS_RL_NAME_MAX];

	/* response */
	int status;
	const char *content_type;   /* NULL = application/json */
	struct rs_buf headers;      /* "Name: value\r\n" lines */
	struct rs_buf out;
	size_t bytes_sent;
	bool head;                  /* HEAD: headers only */

	int64_t stage_us[STAGE_COUNT];
};

/* Find the parameters of r->p in r->envp. */
void req_scan(struct req *r);
const char *req_param(const struct req *r, const char *name);
/* Read the body up to conf->max_body: 0, or an HTTP status (413, 400). */
int req_read_body(struct req *r);
void req_add_header(struct req *r, const char *fmt, ...) RS_PRINTF(2, 3);
/* The same for a header that needs no formatting. */
void req_add_header_str(struct req *r, const char *line);
/* Set the response to a JSON value (stolen) with `status`. */
void req_json(struct req *r, int status, json_t *body);
/* The error body of the house style; `message` is a printf format. */
void req_error(struct req *r, int status, const char *code, const char *fmt,
	       ...) RS_PRINTF(4, 5);
/* The error answer when an upstream call gave nothing to serve: the code
 * from the status (circuit_open when the breaker refused), and
 * Retry-After in whole seconds when known (retry_after_ms >= 0). */
void req_upstream_error(struct req *r, int status, bool breaker_open,
			int64_t retry_after_ms, const char *message);
/* Serialise the response (headers, gzip) into *wire; 0 or -1 (no memory). */
int req_render(struct req *r, struct rs_buf *wire);
void req_free(struct req *r);
/* Who sent r, for rate limits, Idempotency-Key scopes and audit actors:
 * "key:NAME" or "jwt:SUB" when it authenticated, else "ip:ADDR". */
void req_client(const struct req *r, char *buf, size_t n);
/* Time since the request started. */
int64_t req_elapsed_us(const struct req *r);
/* Parse a JSON object body with the depth limit; NULL with the error
 * response already set. */
json_t *req_json_body(struct req *r);

/* ---- router and middleware (router.c, middleware.c) ------------------- */

typedef void (*handler_fn)(struct req *r);

struct route {
	const char *method;
	const char *pattern;        /* exact path, or ending in "/{id}" or
				     * "/{name}": one more path segment */
	enum role role;
	enum rl_class rl;
	handler_fn handler;
	/* what it takes (query, body, path parameter); NULL: nothing */
	const struct rs_fields *in;
};
extern const struct route routes[];
extern const size_t nroutes;

int route_find(const char *method, const char *path, bool *path_known,
	       const char **param);
void route_allow(const char *path, char *buf, size_t n);

/* Steps 1 and 2 of the chain (request id, security headers): done before
 * the request is visible to the watchdog, so a 504 carries them too. */
void req_begin(struct req *r);
/* Step 2 alone, for a response built outside the chain. */
void req_begin_headers(struct req *r);
/* The rest of the chain and the handler (middleware.c). */
void serve(struct req *r);
/* Step 3 (mw_cors.c): 0 to go on, -1 when answered (a preflight, or a
 * refused cross-origin write). */
int cors_step(struct req *r, bool path_known);
/* Step 6 (mw_idempotency.c), after the input checks: 0 to run the
 * handler (the key claimed, or none given), -1 when answered (a replay,
 * 409, 422, 503); idempotency_end stores or releases the claim after the
 * handler. */
int idempotency_begin(struct req *r);
void idempotency_end(struct req *r);
/* Housekeeping: drop expired keys; db is its own connection. */
void idempotency_prune(struct server *s, struct rs_db **db);
/* Step 5 (mw_ratelimit.c): 0, or -1 with 429 answered. */
int ratelimit_step(struct req *r, enum rl_class cls);
/* A failed authentication costs the client address a read token: true
 * when it had none left (answered 429 instead of 401). */
bool ratelimit_auth_failure(struct req *r);
/* After the answer is sent: access log, metrics, slow-request log. */
void serve_done(struct req *r);

/* ---- handlers ---------------------------------------------------------- */
void api_health(struct req *r);
void api_health_live(struct req *r);
void api_health_ready(struct req *r);
void api_status(struct req *r);
void api_cache_stats(struct req *r);
void api_cache_purge(struct req *r);
void api_metrics(struct req *r);

/* ---- circuit breakers' persistence (breakers.c) ------------------------ */

/* Restore saved states; before the workers start. */
int breakers_load(struct server *s, struct rs_err *err);
/* Log transitions, save states, apply resyncctl's commands; db NULL
 * (sync = off): log only.  Housekeeping thread only. */
int breakers_sync(struct server *s, struct rs_db *db, struct rs_err *err);
void breakers_free(void);
void api_hwa_system_status(struct req *r);
void api_hwa_workstations_status(struct req *r);
void api_hwa_jobs_status(struct req *r);
void api_hwa_job(struct req *r);
void api_hwa_workstations(struct req *r);
void api_hwa_workstation(struct req *r);
void api_hwa_jobstreams(struct req *r);
void api_ask(struct req *r);
/* What the responder publishes to the stats table every second and
 * /api/status shows: {"server":{...},"cache":{...},"persistence":{...}}. */
json_t *server_stats_json(struct server *s);
json_t *server_status_json(struct server *s, const struct srv_conf *c);

/* ---- the audit log (auditing.c) ---------------------------------------- */

/* After the store: loads [audit] key_file, starts the writer. */
int auditing_start(struct server *s, const struct rs_config *cfg, struct rs_err *err);
void auditing_stop(struct server *s);
/* A record caused by r (actor and source from it; target NULL: the path);
 * details stolen.  On a refusal (on_full = fail) r->audit_failed is set. */
void audit_request(struct req *r, const char *action, enum rs_audit_outcome o,
		   const char *target, json_t *details);
/* The responder's own record (actor "system"); details stolen. */
void audit_system(struct server *s, const char *action, enum rs_audit_outcome o,
		  const char *target, json_t *details);
/* {"audit":{...}} into an object (/api/status, stats). */
void audit_stats_json(struct server *s, json_t *into);
int audit_metrics(struct server *s, struct rs_buf *b);

/* ---- incidents (alerts.c) ---------------------------------------------- */

/* After the upstreams; starts the webhook notifier when configured. */
int alerts_start(struct server *s, const struct rs_config *cfg, struct rs_err *err);
/* After housekeeping has stopped. */
void alerts_stop(void);
/* Every answered request (serve_done). */
void alerts_observe(const struct req *r, int64_t took_us);
/* Housekeeping thread, every second. */
void alerts_check(struct server *s);
int alerts_metrics(struct rs_buf *b);

/* ---- threads (worker.c, housekeeping.c) ------------------------------- */

struct worker {
	pthread_t thread;
	struct server *srv;
	unsigned index;
	pthread_mutex_t lock;       /* guards cur and answered */
	struct req *cur;
	bool answered;
	FCGX_Request fcgi;
	struct rs_db *db;           /* read connection for health, lazily */
	struct rs_db *wdb;          /* read-write, for Idempotency-Keys, lazily */
};

int workers_start(struct server *s, struct rs_err *err);
/* Stop accepting, wait up to timeout_ms for in-flight requests; returns
 * how many were still running. */
unsigned workers_stop(struct server *s, int64_t timeout_ms);
/* Answer one CGI request from the environment and stdin. */
int serve_cgi(struct server *s);

int housekeeping_start(struct server *s, struct rs_err *err);
/* Ask the threads to stop and wait for them. */
void housekeeping_stop(struct server *s);
/* Ask only (they may be held by what holds a straggling request). */
void housekeeping_signal_stop(void);

/* The access log (accesslog.c): one JSON line per request. */
int accesslog_setup(const char *target, struct rs_err *err);
void accesslog_reopen(void);
void accesslog_write(const struct req *r);

#endif
