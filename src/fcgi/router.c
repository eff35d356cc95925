/*
 * router: the one table of routes.  Paths are matched exactly, except a
 * pattern ending in "/{id}" or "/{name}", which takes one more segment
 * (any bytes but '/', checked against the route's declared pattern before
 * the handler runs).  Exact patterns win over parameter ones (/api/jobs/status is
 * not job "status").  HEAD is served wherever GET is.  The pattern doubles
 * as the metrics label, so the label set is bounded by this table.
 */
#include <string.h>

#include "ask.h"
#include "hwa.h"
#include "server.h"
#include "util.h"

/* What each route takes: anything else is refused before its handler
 * runs (middleware.c, src/common/fields.h). */
#define HWA_NAME_RULE "1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"

static const struct rs_field f_cache_stats[] = {
	{ .name = "shards", .in = RS_IN_QUERY, .type = RS_F_BOOL },
	{ 0 },
};
static const struct rs_field f_purge[] = {
	{ .name = "key", .in = RS_IN_BODY, .type = RS_F_STRING, .min = 1, .max = 4096 },
	{ .name = "prefix", .in = RS_IN_BODY, .type = RS_F_STRING, .min = 1, .max = 4096 },
	{ .name = "scope", .in = RS_IN_BODY, .type = RS_F_ENUM,
	  .values = "jobs|workstations|plan|system" },
	{ 0 },
};
static const struct rs_field f_job[] = {
	{ .name = "id", .in = RS_IN_PATH, .type = RS_F_STRING, .min = 1, .max = 128,
	  .valid = rs_hwa_param_valid, .rule = HWA_NAME_RULE },
	{ 0 },
};
static const struct rs_field f_workstation[] = {
	{ .name = "name", .in = RS_IN_PATH, .type = RS_F_STRING, .min = 1, .max = 128,
	  .valid = rs_hwa_param_valid, .rule = HWA_NAME_RULE },
	{ 0 },
};
static const struct rs_field f_ask[] = {
	{ .name = "prompt", .in = RS_IN_BODY, .type = RS_F_STRING, .required = true,
	  .min = 1, .max = RS_ASK_PROMPT_MAX },
	{ .name = "model", .in = RS_IN_BODY, .type = RS_F_STRING, .required = true,
	  .min = 1, .max = RS_ASK_MODEL_MAX, .valid = rs_ask_model_valid,
	  .rule = "letters, digits, '-', '_', '/' or '.'" },
	{ 0 },
};
static const struct rs_fields in_cache_stats = { f_cache_stats, NULL };
static const struct rs_fields in_purge = { f_purge, "key|prefix|scope" };
static const struct rs_fields in_job = { f_job, NULL };
static const struct rs_fields in_workstation = { f_workstation, NULL };
static const struct rs_fields in_ask = { f_ask, NULL };

const struct route routes[] = {
	{ "GET", "/api/health", ROLE_NONE, RL_READ, api_health, NULL },
	/* orchestrators' probes: cheap, and refusing them would restart us */
	{ "GET", "/api/health/live", ROLE_NONE, RL_EXEMPT, api_health_live, NULL },
	{ "GET", "/api/health/ready", ROLE_NONE, RL_EXEMPT, api_health_ready, NULL },
	{ "GET", "/api/status", ROLE_ADMIN, RL_READ, api_status, NULL },
	{ "GET", "/api/cache/stats", ROLE_VIEWER, RL_READ, api_cache_stats, &in_cache_stats },
	{ "POST", "/api/cache/purge", ROLE_OPERATOR, RL_WRITE, api_cache_purge, &in_purge },
	{ "GET", "/metrics", ROLE_VIEWER, RL_READ, api_metrics, NULL },
	{ "GET", "/api/system/status", ROLE_VIEWER, RL_READ, api_hwa_system_status, NULL },
	{ "GET", "/api/workstations/status", ROLE_VIEWER, RL_READ, api_hwa_workstations_status, NULL },
	{ "GET", "/api/jobs/status", ROLE_VIEWER, RL_READ, api_hwa_jobs_status, NULL },
	{ "GET", "/api/jobs/{id}", ROLE_VIEWER, RL_READ, api_hwa_job, &in_job },
	{ "GET", "/api/workstations", ROLE_VIEWER, RL_READ, api_hwa_workstations, NULL },
	{ "GET", "/api/workstations/{name}", ROLE_VIEWER, RL_READ, api_hwa_workstation, &in_workstation },
	{ "GET", "/api/plan/jobstreams", ROLE_VIEWER, RL_READ, api_hwa_jobstreams, NULL },
	{ "POST", "/api/ask", ROLE_OPERATOR, RL_WRITE, api_ask, &in_ask },
};
const size_t nroutes = RS_ARRAY_SIZE(routes);

const char *role_name(enum role r)
{
	static const char *const names[] = { "none", "viewer", "operator", "admin" };
	return (unsigned)r < RS_ARRAY_SIZE(names) ? names[r] : "none";
}

static bool method_matches(const char *route_method, const char *method)
{
	return strcmp(route_method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* Does path match pattern?  *param gets the parameter segment, if any. */
static bool path_matches(const char *pattern, const char *path, bool exact,
			 const char **param)
{
	const char *brace = strchr(pattern, '{');
	size_t plen;

	if (exact)
		return !brace && strcmp(pattern, path) == 0;
	if (!brace)
		return false;
	plen = (size_t)(brace - pattern);
	if (strncmp(pattern, path, plen) != 0 || !path[plen] ||
	    strchr(path + plen, '/'))
		return false;
	*param = path + plen;
	return true;
}

/* The route for the request, or -1; *path_known says whether some route
 * has this path (so the answer is 405, not 404). */
int route_find(const char *method, const char *path, bool *path_known,
	       const char **param)
{
	*path_known = false;
	*param = NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nroutes; i++) {
			const char *p = NULL;

			if (!path_matches(routes[i].pattern, path, pass == 0, &p))
				continue;
			*path_known = true;
			if (method_matches(routes[i].method, method)) {
				*param = p;
				return (int)i;
			}
		}
		if (*path_known)
			return -1;
	}
	return -1;
}

/* "GET, HEAD, POST": the methods the path answers. */
void route_allow(const char *path, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	const char *p;
	bool exact = false;

	for (size_t i = 0; i < nroutes; i++)
		exact |= path_matches(routes[i].pattern, path, true, &p);
	for (size_t i = 0; i < nroutes && len < n; i++) {
		if (!path_matches(routes[i].pattern, path, exact, &p))
			continue;
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "",
					routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0 && len < n)
			len += (size_t)snprintf(buf + len, n - len, ", HEAD");
	}
}
