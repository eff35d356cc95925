/*
 * cors: the cross-origin policy ([cors]) and the monitor of its violations
 * (the seed's CORSMonitor).
 *
 * A policy borrows its lists from the configuration that holds them.  An
 * origin is allowed when it equals a listed one (scheme, host and port,
 * case-insensitively), or matches a pattern written with a "*." host
 * prefix, as in https + "://" + "*.example.com" (one or more labels before
 * ".example.com", same scheme and port; not example.com itself), or the
 * list holds "*".  An origin that is not a
 * well-formed scheme://host[:port] is never allowed, so what the responder
 * echoes back in Access-Control-Allow-Origin is always plain text.
 *
 * The monitor counts violations per origin in a small fixed table (origins
 * are chosen by whoever sends the request, so the set of metric labels
 * must be bounded): the first RS_CORS_ORIGINS origins get their own
 * counter, later ones are counted under "other", and malformed ones under
 * "invalid".  It also says when a violation should be logged: once per
 * origin per minute, with the count since the last time.
 */
#ifndef RS_CORS_H
#define RS_CORS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_CORS_ORIGIN_MAX 200
#define RS_CORS_ORIGINS 64

struct rs_cors_policy {
	char *const *origins;       /* borrowed */
	size_t norigins;
	char *const *methods;
	size_t nmethods;
	char *const *headers;
	size_t nheaders;
	bool credentials;
	int64_t max_age_ms;
};

/* Is origin a well-formed "scheme://host[:port]" (http or https)? */
bool rs_cors_origin_valid(const char *origin);
bool rs_cors_origin_allowed(const struct rs_cors_policy *p, const char *origin);
/* Does the list hold "*"? (Then Access-Control-Allow-Origin is "*" and
 * credentials are never allowed.) */
bool rs_cors_any_origin(const struct rs_cors_policy *p);
bool rs_cors_method_allowed(const struct rs_cors_policy *p, const char *method);
/* requested: an Access-Control-Request-Headers value ("a, b").  false
 * with the first refused name copied into bad (n bytes). */
bool rs_cors_headers_allowed(const struct rs_cors_policy *p, const char *requested,
			     char *bad, size_t n);

enum rs_cors_violation { RS_CORS_BAD_ORIGIN, RS_CORS_BAD_METHOD, RS_CORS_BAD_HEADER };
const char *rs_cors_violation_name(enum rs_cors_violation v);

struct rs_cors_origin_count {
	char origin[RS_CORS_ORIGIN_MAX + 1];
	uint64_t count[3];          /* by enum rs_cors_violation */
	int64_t minute;             /* of the last report */
	uint64_t unreported;
};

struct rs_cors_monitor {
	pthread_mutex_t lock;
	struct rs_cors_origin_count slots[RS_CORS_ORIGINS + 2];  /* + other, invalid */
	size_t used;
};

void rs_cors_monitor_init(struct rs_cors_monitor *m);
void rs_cors_monitor_destroy(struct rs_cors_monitor *m);
/* Count one violation by origin at now_ms; true when it should be logged,
 * with the violations since the last logged one in *since_last. */
bool rs_cors_monitor_record(struct rs_cors_monitor *m, const char *origin,
			    enum rs_cors_violation v, int64_t now_ms,
			    uint64_t *since_last);
/* A copy of the counters (n of them, at most RS_CORS_ORIGINS + 2). */
size_t rs_cors_monitor_snapshot(struct rs_cors_monitor *m,
				struct rs_cors_origin_count *out, size_t n);

#endif
