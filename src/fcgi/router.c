/*
 * router: the one table of routes.  Paths are matched exactly (the API has
 * no path parameters yet); HEAD is served wherever GET is.  The pattern
 * doubles as the metrics label, so the label set is bounded by this table.
 */
#include <string.h>

#include "server.h"
#include "util.h"

const struct route routes[] = {
	{ "GET", "/api/health", ROLE_NONE, api_health },
	{ "GET", "/api/health/live", ROLE_NONE, api_health_live },
	{ "GET", "/api/health/ready", ROLE_NONE, api_health_ready },
	{ "GET", "/api/status", ROLE_ADMIN, api_status },
	{ "GET", "/api/cache/stats", ROLE_VIEWER, api_cache_stats },
	{ "POST", "/api/cache/purge", ROLE_ADMIN, api_cache_purge },
	{ "GET", "/metrics", ROLE_VIEWER, api_metrics },
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

/* The route for the request, or -1; *path_known says whether some route
 * has this path (so the answer is 405, not 404). */
int route_find(const char *method, const char *path, bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < nroutes; i++) {
		if (strcmp(routes[i].pattern, path) != 0)
			continue;
		*path_known = true;
		if (method_matches(routes[i].method, method))
			return (int)i;
	}
	return -1;
}

/* "GET, HEAD, POST": the methods the path answers. */
void route_allow(const char *path, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nroutes && len < n; i++) {
		if (strcmp(routes[i].pattern, path) != 0)
			continue;
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "",
					routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0 && len < n)
			len += (size_t)snprintf(buf + len, n - len, ", HEAD");
	}
}
