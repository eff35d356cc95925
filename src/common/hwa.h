/*
 * hwa: the HCL Workload Automation questions Resync answers, each a cached
 * call to the HWA REST API (/twsd/api/v2/...).
 *
 * A route names one upstream call: method, path (with {id} or {name}
 * standing for the caller's parameter), JSON body for the `.../query`
 * calls, and a TTL.  The built-in table below matches HWA 10.x; a
 * [route NAME] section changes any part of it, so an installation can
 * match its own version.
 *
 * rs_hwa_get answers from the cache; a miss loads through single-flight
 * (concurrent callers for one key share one upstream call) and the
 * upstream module (breaker, pool, retries).  When the call fails or the
 * breaker refuses, an entry inside [cache] stale_if_error is returned as
 * STALE.  Only a 2xx answer that parses as JSON is cached.  With [cache]
 * stale_while_revalidate, an entry that far past its TTL is returned at
 * once as STALE (revalidating) and one refresh per entry runs on a
 * refresher thread of this module (bounded queue; a refresh that cannot be
 * queued is dropped and asked for again once the cache's ticket lapses).
 *
 * Cache keys: "system:status", "workstations:status", "jobs:status",
 * "jobs:id:ID", "workstations:all", "workstations:name:NAME",
 * "plan:jobstreams" (so `cache purge --scope jobs` and friends work).
 *
 * Values loaded from the upstream live in memory and reach the database
 * with the next snapshot; they are not written to the cache log (they can
 * always be fetched again).  Thread-safe after rs_hwa_new.
 */
#ifndef RS_HWA_H
#define RS_HWA_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "err.h"
#include "upstream.h"

/* The upstream the routes call unless a [route] names another. */
#define RS_HWA_UPSTREAM "hwa"

enum rs_hwa_route {
	RS_HWA_SYSTEM_STATUS,
	RS_HWA_WORKSTATIONS_STATUS,
	RS_HWA_JOBS_STATUS,
	RS_HWA_JOB,
	RS_HWA_WORKSTATIONS,
	RS_HWA_WORKSTATION,
	RS_HWA_JOBSTREAMS,
	RS_HWA_NROUTES,
};

/* "jobs_status" <-> RS_HWA_JOBS_STATUS; parse returns -1 when unknown. */
const char *rs_hwa_route_name(enum rs_hwa_route r);
int rs_hwa_route_parse(const char *name);
/* Every [route NAME] the configuration may have: these and "ask"
 * (ask.h); "system_status, ..., ask" for messages. */
bool rs_route_known(const char *name);
const char *rs_route_names(void);
/* Does the route take a parameter ({id} or {name})? */
bool rs_hwa_route_has_param(enum rs_hwa_route r);

/* The strict pattern every id and name must match before any use:
 * 1 to 128 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool rs_hwa_param_valid(const char *s);

struct rs_hwa;

/* Routes come from cfg; calls go through ups (borrowed, must outlive h),
 * answers are cached in cache (borrowed).  -1 with err for a [route]
 * naming an unknown route or upstream. */
int rs_hwa_new(struct rs_hwa **out, const struct rs_config *cfg,
	       struct rs_upstreams *ups, struct rs_cache *cache,
	       struct rs_err *err);
void rs_hwa_free(struct rs_hwa *h);
bool rs_hwa_route_enabled(const struct rs_hwa *h, enum rs_hwa_route r);

struct rs_hwa_result {
	enum rs_cache_status cache;      /* HIT, MISS (loaded now), STALE */
	bool revalidating;               /* STALE inside stale_while_revalidate:
					  * a refresh runs (not an error) */
	struct rs_cache_value value;     /* the answer; caller frees */
	/* when there is no answer (rs_hwa_get returned -1): */
	int http_status;                 /* 404, 502, 503 or 504 to answer */
	bool breaker_open;
	int64_t retry_after_ms;          /* -1 unknown */
	char message[256];               /* for the client: no internals */
	char detail[256];                /* for the log */
	/* when the upstream was called */
	bool called;
	long upstream_status;
	unsigned tries;
	int64_t upstream_us;
};

/* 0 with res->value set (HIT, MISS or STALE), -1 with res->http_status and
 * message set.  param is the validated id or name (NULL for routes
 * without); deadline_ms is monotonic. */
int rs_hwa_get(struct rs_hwa *h, enum rs_hwa_route r, const char *param,
	       const char *request_id, int64_t deadline_ms,
	       struct rs_hwa_result *res);

#endif
