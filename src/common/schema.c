/*
 * The configuration schema.  Defaults follow the seed's tuned values where
 * it gives them (pool min 3 / max 30 / idle 150s / connection timeout 20s /
 * health checks 30s / lifetime 1h; cache TTL 5m, 500 000 entries, 256MB,
 * 32 shards; retries 3 x base 1s capped at 10s; key rotation 30 days with
 * a 7-day grace).
 */
#include "schema.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define S(x) ((x) * RS_MS_PER_SEC)
#define M(x) ((x) * RS_MS_PER_MIN)
#define H(x) ((x) * RS_MS_PER_HOUR)
#define D(x) ((x) * RS_MS_PER_DAY)

#define NAME_RE "^[A-Za-z0-9][A-Za-z0-9._-]*$"
#define TIME_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z)?$"
#define LOG_FACILITIES \
	"auth|authpriv|daemon|user|local0|local1|local2|local3|local4|local5|local6|local7"

const struct rs_schema_section rs_schema_sections[] = {
	{ "server", false, "the resync-fcgi process: socket, threads, request limits" },
	{ "cache", false, "the in-memory TTL cache in front of the HWA REST API" },
	{ "persistence", false, "the SQLite database: cache log, snapshots, audit, shared state" },
	{ "pool", false, "the upstream connection pools (libcurl): one per [upstream], each with these limits" },
	{ "upstream", true, "an HTTP service Resync calls, such as the HWA REST API" },
	{ "breaker", true, "a circuit breaker protecting one [upstream], or some of its routes" },
	{ "route", true, "one HWA route of the API: the upstream call behind it and its TTL" },
	{ "retry", false, "retries of failed idempotent upstream calls, with full-jitter backoff" },
	{ "auth", false, "authentication of API clients: JWT and API-key rotation" },
	{ "key", true, "an API key, stored as its SHA-256 hash, with a role" },
	{ "ratelimit", false, "token-bucket rate limits per client" },
	{ "cors", false, "cross-origin resource sharing policy for browsers" },
	{ "idempotency", false, "Idempotency-Key handling of POST, PUT, PATCH and DELETE requests" },
	{ "alerts", false, "incident notifications to a webhook" },
	{ "audit", false, "the hash-chained audit log" },
	{ "log", false, "the process log" },
};
const size_t rs_schema_nsections = RS_ARRAY_SIZE(rs_schema_sections);

const struct rs_schema_key rs_schema_keys[] = {
	/* [server] */
	{ "server", "environment", RS_T_ENUM, "development", 0, 0,
	  "development|test|production", NULL, 0,
	  "how strictly the configuration is checked; production turns risky settings into errors" },
	{ "server", "listen", RS_T_STRING, NULL, 0, 0, NULL,
	  "^(unix:/.+|[A-Za-z0-9.-]+:[0-9]{1,5}|\\[[0-9A-Fa-f:.]+\\]:[0-9]{1,5})$", 0,
	  "FastCGI socket, unix:/PATH or HOST:PORT; unset: the socket on fd 0, or plain CGI" },
	{ "server", "threads", RS_T_INT, "0", 0, 1024, NULL, NULL, 0,
	  "worker threads; 0 means twice the number of CPUs" },
	{ "server", "max_body", RS_T_SIZE, "1MB", RS_KIB, RS_GIB, NULL, NULL, 0,
	  "largest request body accepted; larger requests get 413" },
	{ "server", "request_timeout", RS_T_DURATION, "30s", 100, H(1), NULL, NULL, 0,
	  "longest a request may run before it is answered with 504" },
	{ "server", "request_id_pattern", RS_T_REGEX, "^[A-Za-z0-9._:-]{1,128}$", 0, 0,
	  NULL, NULL, 0,
	  "an inbound X-Request-ID matching this is kept, otherwise a new id is made" },
	{ "server", "slow_request_threshold", RS_T_DURATION, "1s", 0, H(1), NULL, NULL, 0,
	  "log requests slower than this, with the time spent in each stage; 0 disables" },
	{ "server", "shutdown_timeout", RS_T_DURATION, "10s", 0, M(10), NULL, NULL, 0,
	  "on SIGTERM, how long in-flight requests may run before the process exits anyway" },
	{ "server", "compress_min_size", RS_T_SIZE, "1KB", 0, RS_GIB, NULL, NULL, 0,
	  "gzip responses at least this large when the client accepts it; 0 disables" },
	{ "server", "max_json_depth", RS_T_INT, "32", 1, 1000, NULL, NULL, 0,
	  "deepest nesting of arrays and objects accepted in a JSON request body" },

	/* [cache] */
	{ "cache", "ttl", RS_T_DURATION, "300s", S(1), D(30), NULL, NULL, 0,
	  "default time to live of a cache entry" },
	{ "cache", "max_entries", RS_T_INT, "500000", 1, 1000000000, NULL, NULL, 0,
	  "most entries the cache holds" },
	{ "cache", "max_memory", RS_T_SIZE, "256MB", 64 * RS_KIB, 1024 * RS_GIB,
	  NULL, NULL, 0,
	  "most bytes the cache holds: keys, values and per-entry overhead" },
	{ "cache", "num_shards", RS_T_INT, "32", 1, 4096, NULL, NULL, 0,
	  "lock shards; a power of two" },
	{ "cache", "cleanup_interval", RS_T_DURATION, "30s", 100, H(1), NULL, NULL, 0,
	  "how often the background sweep removes expired entries" },
	{ "cache", "stale_while_revalidate", RS_T_DURATION, "0", 0, D(1), NULL, NULL, 0,
	  "how long past its TTL an entry is served while one refresh runs; 0 disables" },
	{ "cache", "stale_if_error", RS_T_DURATION, "0", 0, D(30), NULL, NULL, 0,
	  "how long past its TTL an entry is served when the upstream fails; 0 disables" },
	{ "cache", "max_key_size", RS_T_SIZE, "1000B", 1, 1024, NULL, NULL, 0,
	  "longest key stored; the default is 1024 outside production" },
	{ "cache", "max_value_size", RS_T_SIZE, "1MB", 1, RS_GIB, NULL, NULL, 0,
	  "largest value stored; the default is 10MB outside production" },
	{ "cache", "slow_op_threshold", RS_T_DURATION, "10ms", 0, M(1), NULL, NULL, 0,
	  "log any cache operation that takes longer; 0 disables" },

	/* [persistence] */
	{ "persistence", "db", RS_T_PATH, RS_LOCALSTATEDIR "/lib/resync/resync.db",
	  0, 0, NULL, NULL, 0,
	  "the SQLite database file" },
	{ "persistence", "sync", RS_T_ENUM, "batch", 0, 0, "always|batch|off", NULL, 0,
	  "always: a write returns once committed; batch: commit every sync_interval; off: memory only" },
	{ "persistence", "sync_interval", RS_T_DURATION, "100ms", 1, S(10), NULL, NULL, 0,
	  "longest time between group commits with sync = batch" },
	{ "persistence", "snapshot_interval", RS_T_DURATION, "5m", S(1), D(7), NULL, NULL, 0,
	  "how often a cache snapshot is taken" },
	{ "persistence", "snapshot_retention", RS_T_DURATION, "7d", M(1), D(365), NULL,
	  NULL, 0, "snapshots older than this are collected (the newest valid one is kept)" },
	{ "persistence", "wal_retention", RS_T_DURATION, "1h", S(1), D(30), NULL, NULL, 0,
	  "log records covered by a snapshot are kept this long" },
	{ "persistence", "encryption_key_file", RS_T_PATH, NULL, 0, 0, NULL, NULL,
	  RS_K_SECRET_PATH | RS_K_KEYRING,
	  "seal cached values in the database with AES-256-GCM; keys, one per line, 64 hex digits, the first current" },

	/* [pool] */
	{ "pool", "min_size", RS_T_INT, "3", 1, 1000, NULL, NULL, 0,
	  "connections kept open and warm per upstream" },
	{ "pool", "max_size", RS_T_INT, "30", 1, 10000, NULL, NULL, 0,
	  "most connections open at once per upstream" },
	{ "pool", "idle_timeout", RS_T_DURATION, "150s", S(1), D(1), NULL, NULL, 0,
	  "an idle connection above min_size is closed after this" },
	{ "pool", "connection_timeout", RS_T_DURATION, "20s", 1, M(10), NULL, NULL, 0,
	  "longest wait for a free connection before a \"pool exhausted\" error" },
	{ "pool", "health_check_interval", RS_T_DURATION, "30s", S(1), D(1), NULL, NULL, 0,
	  "how often idle connections and endpoints are checked" },
	{ "pool", "max_lifetime", RS_T_DURATION, "3600s", S(1), D(7), NULL, NULL, 0,
	  "a connection is retired and replaced after this (with jitter)" },
	{ "pool", "max_per_endpoint", RS_T_INT, "0", 0, 10000, NULL, NULL, 0,
	  "most connections open at once to one endpoint; 0 means max_size" },
	{ "pool", "leak_detection_threshold", RS_T_DURATION, "0", 0, H(1), NULL, NULL, 0,
	  "log a connection held longer than this, with the request id; 0 disables" },
	{ "pool", "tcp_keepalive", RS_T_BOOL, "true", 0, 0, NULL, NULL, 0,
	  "send TCP keepalive probes on idle upstream connections" },

	/* [upstream NAME] */
	{ "upstream", "url", RS_T_LIST, NULL, 0, 0, NULL, NULL,
	  RS_K_REQUIRED | RS_K_URL_ITEMS,
	  "base URL of each endpoint, comma-separated, e.g. https://hwa1.example.com:31116" },
	{ "upstream", "strategy", RS_T_ENUM, "round_robin", 0, 0,
	  "round_robin|least_connections|weighted", NULL, 0,
	  "how a call picks among the healthy endpoints" },
	{ "upstream", "weights", RS_T_LIST, "", 0, 0, NULL, "^[1-9][0-9]{0,3}$", 0,
	  "weight of each endpoint, in url order, for strategy = weighted; empty: all 1" },
	{ "upstream", "username", RS_T_STRING, NULL, 0, 0, NULL, NULL, 0,
	  "user for HTTP basic authentication" },
	{ "upstream", "password", RS_T_STRING, NULL, 0, 0, NULL, NULL, RS_K_SECRET,
	  "password for HTTP basic authentication" },
	{ "upstream", "verify_tls", RS_T_BOOL, "true", 0, 0, NULL, NULL, 0,
	  "verify the server's TLS certificate and host name" },
	{ "upstream", "ca_file", RS_T_PATH, NULL, 0, 0, NULL, NULL, RS_K_MUST_EXIST,
	  "CA certificates (PEM) to verify the server with, instead of the system's" },
	{ "upstream", "tls_cert", RS_T_PATH, NULL, 0, 0, NULL, NULL, RS_K_MUST_EXIST,
	  "client certificate (PEM) for mutual TLS" },
	{ "upstream", "tls_key", RS_T_PATH, NULL, 0, 0, NULL, NULL, RS_K_SECRET_PATH,
	  "private key (PEM) of tls_cert" },
	{ "upstream", "connect_timeout", RS_T_DURATION, "5s", 1, M(5), NULL, NULL, 0,
	  "longest time to establish a connection" },
	{ "upstream", "request_timeout", RS_T_DURATION, "30s", 1, H(1), NULL, NULL, 0,
	  "longest time for one upstream request" },
	{ "upstream", "bearer_token", RS_T_STRING, NULL, 0, 0, NULL, "^[!-~]{1,4096}$",
	  RS_K_SECRET,
	  "sent as Authorization: Bearer (an LLM service's API key)" },
	{ "upstream", "health_check_path", RS_T_STRING, NULL, 0, 0, NULL, "^/[^[:space:]]*$", 0,
	  "path checked every [pool] health_check_interval (2xx is healthy); unset: the base URL, any answer below 500" },
	{ "upstream", "healthy_threshold", RS_T_INT, "2", 1, 100, NULL, NULL, 0,
	  "consecutive good health checks that bring an endpoint back" },
	{ "upstream", "unhealthy_threshold", RS_T_INT, "3", 1, 100, NULL, NULL, 0,
	  "consecutive failed health checks that take an endpoint out" },
	{ "upstream", "max_fails", RS_T_INT, "5", 0, 1000, NULL, NULL, 0,
	  "consecutive failed calls that eject an endpoint for fail_timeout; 0 disables" },
	{ "upstream", "fail_timeout", RS_T_DURATION, "10s", S(1), H(1), NULL, NULL, 0,
	  "how long an ejected endpoint gets no calls (doubled for each ejection in a row)" },
	{ "upstream", "slow_start", RS_T_DURATION, "30s", 0, H(1), NULL, NULL, 0,
	  "a returning endpoint's share of calls grows from 10% to full over this; 0 disables" },

	/* [breaker NAME] */
	{ "breaker", "upstream", RS_T_STRING, NULL, 0, 0, NULL, NAME_RE, RS_K_REQUIRED,
	  "the [upstream NAME] this breaker protects" },
	{ "breaker", "routes", RS_T_LIST, "", 0, 0, NULL, NAME_RE, 0,
	  "the [route NAME]s it guards; empty: every call to the upstream not guarded by another" },
	{ "breaker", "window", RS_T_ENUM, "consecutive", 0, 0, "consecutive|count|time",
	  NULL, 0,
	  "consecutive: open after fail_max failures in a row; count / time: on failure and slow-call rates over a sliding window" },
	{ "breaker", "fail_max", RS_T_INT, "5", 1, 1000, NULL, NULL, 0,
	  "consecutive failures that open the breaker (window = consecutive)" },
	{ "breaker", "window_size", RS_T_INT, "100", 1, 100000, NULL, NULL, 0,
	  "calls in the sliding window (window = count)" },
	{ "breaker", "window_duration", RS_T_DURATION, "60s", S(1), H(1), NULL, NULL, 0,
	  "span of the sliding window (window = time)" },
	{ "breaker", "failure_rate_threshold", RS_T_INT, "50", 1, 100, NULL, NULL, 0,
	  "percentage of failed calls in the window that opens the breaker" },
	{ "breaker", "slow_call_duration", RS_T_DURATION, "0", 0, H(1), NULL, NULL, 0,
	  "a call slower than this counts as slow; 0 disables slow-call detection" },
	{ "breaker", "slow_call_rate_threshold", RS_T_INT, "100", 1, 100, NULL, NULL, 0,
	  "percentage of slow calls in the window that opens the breaker" },
	{ "breaker", "minimum_calls", RS_T_INT, "10", 1, 100000, NULL, NULL, 0,
	  "calls the window must hold before its rates are judged" },
	{ "breaker", "open_duration", RS_T_DURATION, "60s", 100, H(1), NULL, NULL, 0,
	  "how long the breaker stays open before trial calls (the seed's reset_timeout)" },
	{ "breaker", "half_open_calls", RS_T_INT, "1", 1, 1000, NULL, NULL, 0,
	  "trial calls let through when half-open; all must succeed to close" },
	{ "breaker", "max_wait_in_half_open", RS_T_DURATION, "0", 0, H(1), NULL, NULL, 0,
	  "reopen when the trial calls have not all finished within this; 0 waits for them" },
	{ "breaker", "exclude", RS_T_LIST, "", 0, 0, NULL,
	  "^([1-5][0-9][0-9]|[1-5]xx|connect|timeout|tls|reset|partial)$", 0,
	  "outcomes that count neither as failure nor success: status codes (503, 5xx) or error kinds (connect, timeout, tls, reset, partial)" },

	/* [retry] */
	{ "retry", "attempts", RS_T_INT, "3", 1, 10, NULL, NULL, 0,
	  "tries per request, the first included" },
	{ "retry", "base", RS_T_DURATION, "1s", 1, M(1), NULL, NULL, 0,
	  "backoff before the first retry (doubled each time, then jittered)" },
	{ "retry", "cap", RS_T_DURATION, "10s", 1, M(10), NULL, NULL, 0,
	  "longest backoff between tries" },
	{ "retry", "jitter", RS_T_ENUM, "full", 0, 0, "full|decorrelated", NULL, 0,
	  "backoff jitter: full (random 0..backoff) or decorrelated" },
	{ "retry", "per_try_timeout", RS_T_DURATION, "0", 0, H(1), NULL, NULL, 0,
	  "longest time for one try; 0: the upstream's request_timeout (never past the request's deadline)" },
	{ "retry", "budget_percent", RS_T_INT, "20", 0, 100, NULL, NULL, 0,
	  "retries allowed as a percentage of the calls in the last budget_window; 0 disables retries" },
	{ "retry", "budget_min_per_second", RS_T_INT, "3", 0, 100000, NULL, NULL, 0,
	  "retries per second always allowed, whatever the budget says" },
	{ "retry", "budget_window", RS_T_DURATION, "10s", S(1), M(10), NULL, NULL, 0,
	  "the period the retry budget counts calls and retries over" },

	/* [route NAME] */
	{ "route", "upstream", RS_T_STRING, NULL, 0, 0, NULL, NAME_RE, 0,
	  "the [upstream NAME] the route calls; unset: hwa (llm for the ask route)" },
	{ "route", "method", RS_T_ENUM, NULL, 0, 0, "GET|POST", NULL, 0,
	  "HTTP method of the upstream call; unset: the route's built-in one" },
	{ "route", "path", RS_T_STRING, NULL, 0, 0, NULL, "^/[^[:space:]]*$", 0,
	  "upstream path, {id} or {name} standing for the request's; unset: the built-in HWA v2 path" },
	{ "route", "body", RS_T_STRING, NULL, 0, 0, NULL, NULL, 0,
	  "JSON body of a POST call; unset: the built-in one" },
	{ "route", "ttl", RS_T_DURATION, NULL, S(1), D(30), NULL, NULL, 0,
	  "how long the answer is cached; unset: the route's built-in TTL" },
	{ "route", "enabled", RS_T_BOOL, "true", 0, 0, NULL, NULL, 0,
	  "serve the route (false: 404)" },

	/* [auth] */
	{ "auth", "jwt_secret", RS_T_STRING, NULL, 0, 0, NULL, NULL, RS_K_SECRET,
	  "HS256 key for JWT bearer tokens (at least 32 bytes); unset disables JWT" },
	{ "auth", "jwt_issuer", RS_T_STRING, NULL, 0, 0, NULL, NULL, 0,
	  "required iss claim of JWT bearer tokens" },
	{ "auth", "jwt_audience", RS_T_STRING, NULL, 0, 0, NULL, NULL, 0,
	  "required aud claim of JWT bearer tokens" },
	{ "auth", "key_rotation_interval", RS_T_DURATION, "30d", D(1), D(365), NULL,
	  NULL, 0, "API keys older than this are reported as due for rotation" },
	{ "auth", "key_grace", RS_T_DURATION, "7d", 0, D(90), NULL, NULL, 0,
	  "how long a rotated API key keeps working" },

	/* [key NAME] */
	{ "key", "hash", RS_T_STRING, NULL, 0, 0, NULL, "^[0-9a-f]{64}$",
	  RS_K_REQUIRED, "SHA-256 of the API key, 64 lowercase hex digits" },
	{ "key", "role", RS_T_ENUM, NULL, 0, 0, "viewer|operator|admin", NULL,
	  RS_K_REQUIRED, "viewer reads; operator may also purge and reset; admin may do everything" },
	{ "key", "expires", RS_T_STRING, NULL, 0, 0, NULL, TIME_RE, 0,
	  "the key stops working at this UTC time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)" },
	{ "key", "created", RS_T_STRING, NULL, 0, 0, NULL, TIME_RE, 0,
	  "when the key was made (resyncctl key generate writes it); older than [auth] key_rotation_interval is due for rotation" },
	{ "key", "rotated", RS_T_STRING, NULL, 0, 0, NULL, TIME_RE, 0,
	  "when the key was replaced; it keeps working for [auth] key_grace after" },

	/* [ratelimit] */
	{ "ratelimit", "enabled", RS_T_BOOL, "true", 0, 0, NULL, NULL, 0,
	  "apply rate limits" },
	{ "ratelimit", "requests_per_second", RS_T_INT, "10", 1, 1000000, NULL, NULL, 0,
	  "sustained reads (GET, HEAD) per second per client (token refill rate)" },
	{ "ratelimit", "burst", RS_T_INT, "20", 1, 1000000, NULL, NULL, 0,
	  "reads a client may make at once (bucket size)" },
	{ "ratelimit", "write_requests_per_second", RS_T_INT, "1", 1, 1000000, NULL, NULL, 0,
	  "sustained writes (POST: purges, questions to the LLM) per second per client" },
	{ "ratelimit", "write_burst", RS_T_INT, "5", 1, 1000000, NULL, NULL, 0,
	  "writes a client may make at once" },
	{ "ratelimit", "max_clients", RS_T_INT, "65536", 16, 16777216, NULL, NULL, 0,
	  "buckets kept at most; when full, the least recently used is forgotten (restart to change)" },

	/* [cors] */
	{ "cors", "allowed_origins", RS_T_LIST, "", 0, 0, NULL,
	  "^(\\*|https?://(\\*\\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?)$", 0,
	  "origins allowed to call the API: exact (https://app.example.com) or https://*.example.com; empty: none" },
	{ "cors", "allowed_methods", RS_T_LIST, "GET, POST", 0, 0, NULL, "^[A-Z]+$", 0,
	  "methods allowed in cross-origin requests" },
	{ "cors", "allowed_headers", RS_T_LIST,
	  "Content-Type, Authorization, X-API-Key, Idempotency-Key, X-Request-ID",
	  0, 0, NULL, "^[A-Za-z0-9-]+$", 0,
	  "request headers allowed in cross-origin requests" },
	{ "cors", "allow_credentials", RS_T_BOOL, "false", 0, 0, NULL, NULL, 0,
	  "allow cookies and credentials in cross-origin requests" },
	{ "cors", "max_age", RS_T_DURATION, "10m", 0, D(1), NULL, NULL, 0,
	  "how long browsers may cache a preflight answer" },

	/* [idempotency] */
	{ "idempotency", "ttl", RS_T_DURATION, "24h", 1000, D(30), NULL, NULL, 0,
	  "how long a key's stored response is replayed; after that the key is new again" },
	{ "idempotency", "lock_timeout", RS_T_DURATION, "2m", 1000, H(1), NULL, NULL, 0,
	  "a request still running after this (its process died) no longer holds its key" },
	{ "idempotency", "max_response", RS_T_SIZE, "1MB", 1024, 64 * 1024 * 1024, NULL, NULL, 0,
	  "largest response stored for replay; a larger one releases its key instead" },

	/* [alerts] */
	{ "alerts", "webhook_url", RS_T_STRING, NULL, 0, 0, NULL, "^https?://[^[:space:]/]+(/[^[:space:]]*)?$",
	  RS_K_SECRET,
	  "where incident notifications are POSTed as JSON; unset: no notifications" },
	{ "alerts", "webhook_format", RS_T_ENUM, "generic", 0, 0, "generic|slack", NULL, 0,
	  "generic JSON, or a Slack incoming-webhook message" },
	{ "alerts", "repeat_interval", RS_T_DURATION, "15m", 1000, D(1), NULL, NULL, 0,
	  "an incident still going on is notified again after this" },
	{ "alerts", "max_per_minute", RS_T_INT, "20", 1, 10000, NULL, NULL, 0,
	  "notifications sent per minute at most; more are counted and dropped" },
	{ "alerts", "timeout", RS_T_DURATION, "5s", 100, 60000, NULL, NULL, 0,
	  "longest one notification may take to send" },
	{ "alerts", "error_rate_percent", RS_T_INT, "5", 1, 100, NULL, NULL, 0,
	  "share of 5xx answers over a minute that is an incident" },
	{ "alerts", "p95_latency", RS_T_DURATION, "1s", 1, 600000, NULL, NULL, 0,
	  "95th percentile request time over a minute that is an incident" },
	{ "alerts", "memory_percent", RS_T_INT, "90", 1, 100, NULL, NULL, 0,
	  "cache memory use, as a share of [cache] max_memory, that is an incident" },

	/* [audit] */
	{ "audit", "enabled", RS_T_BOOL, "true", 0, 0, NULL, NULL, 0,
	  "write security-relevant events to the audit log" },
	{ "audit", "key_file", RS_T_PATH, NULL, 0, 0, NULL, NULL, RS_K_SECRET_PATH | RS_K_KEYRING,
	  "HMAC keys of the audit chain, one of 64 hex digits per line, the current first (openssl rand -hex 32); without it plain SHA-256" },
	{ "audit", "on_full", RS_T_ENUM, "block", 0, 0, "block|fail", NULL, 0,
	  "when the audit queue is full: block the request, or fail it with 503" },
	{ "audit", "queue_size", RS_T_INT, "4096", 16, 1000000, NULL, NULL, 0,
	  "audit records waiting to be written, at most" },
	{ "audit", "syslog", RS_T_BOOL, "false", 0, 0, NULL, NULL, 0,
	  "also send each record to syslog" },
	{ "audit", "syslog_facility", RS_T_ENUM, "authpriv", 0, 0, LOG_FACILITIES, NULL, 0,
	  "syslog facility of audit records" },

	/* [log] */
	{ "log", "level", RS_T_ENUM, "info", 0, 0, "debug|info|notice|warning|error",
	  NULL, 0, "lowest level logged" },
	{ "log", "format", RS_T_ENUM, "text", 0, 0, "text|json", NULL, 0,
	  "text lines or JSON lines" },
	{ "log", "output", RS_T_STRING, "stderr", 0, 0, NULL, NULL, 0,
	  "stderr, syslog, or the path of a file (reopened on SIGUSR1; relative to this file's directory)" },
	{ "log", "syslog_facility", RS_T_ENUM, "daemon", 0, 0, LOG_FACILITIES, NULL, 0,
	  "syslog facility when output = syslog" },
	{ "log", "access_log", RS_T_STRING, "stderr", 0, 0, NULL, NULL, 0,
	  "resync-fcgi's access log, one JSON line per request: stderr, off, or the path of a file (reopened on SIGUSR1; relative to this file's directory)" },
};
const size_t rs_schema_nkeys = RS_ARRAY_SIZE(rs_schema_keys);

const struct rs_schema_section *rs_schema_section(const char *name)
{
	for (size_t i = 0; i < rs_schema_nsections; i++)
		if (strcmp(rs_schema_sections[i].name, name) == 0)
			return &rs_schema_sections[i];
	return NULL;
}

const struct rs_schema_key *rs_schema_key(const char *section, const char *key)
{
	for (size_t i = 0; i < rs_schema_nkeys; i++)
		if (strcmp(rs_schema_keys[i].section, section) == 0 &&
		    strcmp(rs_schema_keys[i].name, key) == 0)
			return &rs_schema_keys[i];
	return NULL;
}

const char *rs_schema_suggest_section(const char *name)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;

	for (size_t i = 0; i < rs_schema_nsections; i++) {
		const char *c = rs_schema_sections[i].name;
		size_t d = rs_edit_distance(name, c);

		if (rs_is_near(name, c) && d < bestd) {
			best = c;
			bestd = d;
		}
	}
	return best;
}

const char *rs_schema_suggest_key(const char *section, const char *key)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;

	for (size_t i = 0; i < rs_schema_nkeys; i++) {
		const struct rs_schema_key *k = &rs_schema_keys[i];
		size_t d;

		if (strcmp(k->section, section) != 0)
			continue;
		d = rs_edit_distance(key, k->name);
		if (rs_is_near(key, k->name) && d < bestd) {
			best = k->name;
			bestd = d;
		}
	}
	return best;
}

int rs_schema_enum_index(const struct rs_schema_key *k, const char *value)
{
	const char *p = k->values;
	size_t vlen = strlen(value);
	int i = 0;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == vlen && strncmp(p, value, len) == 0)
			return i;
		i++;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

const char *rs_type_name(enum rs_type t)
{
	switch (t) {
	case RS_T_STRING: return "string";
	case RS_T_INT: return "integer";
	case RS_T_BOOL: return "boolean";
	case RS_T_DURATION: return "duration";
	case RS_T_SIZE: return "size";
	case RS_T_ENUM: return "enum";
	case RS_T_LIST: return "list";
	case RS_T_URL: return "url";
	case RS_T_PATH: return "path";
	case RS_T_REGEX: return "regex";
	}
	return "?";
}

void rs_schema_format_number(enum rs_type t, int64_t v, char *buf, size_t n)
{
	if (t == RS_T_DURATION)
		rs_format_duration(v, buf, n);
	else if (t == RS_T_SIZE)
		rs_format_size(v, buf, n);
	else
		snprintf(buf, n, "%lld", (long long)v);
}
