/*
 * cors: see cors.h.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "cors.h"
#include "util.h"

/* "http://" or "https://": the length of the scheme part, or 0. */
static size_t scheme_len(const char *o)
{
	if (strncasecmp(o, "https://", 8) == 0)
		return 8;
	if (strncasecmp(o, "http://", 7) == 0)
		return 7;
	return 0;
}

/* host[:port]: labels of letters, digits and '-', separated by single
 * dots; an optional port of 1 to 5 digits. */
static bool hostport_valid(const char *h)
{
	size_t label = 0;
	const char *p = h;

	for (; *p && *p != ':'; p++) {
		if (*p == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	if (!label)
		return false;
	if (*p == ':') {
		size_t digits = strspn(p + 1, "0123456789");
		if (digits < 1 || digits > 5 || p[1 + digits])
			return false;
	}
	return true;
}

bool rs_cors_origin_valid(const char *origin)
{
	size_t s;

	if (!origin || strlen(origin) > RS_CORS_ORIGIN_MAX)
		return false;
	s = scheme_len(origin);
	return s && hostport_valid(origin + s);
}

/* "https://" "*.example.com[:port]" against a valid origin. */
static bool pattern_matches(const char *pat, const char *origin)
{
	size_t ps = scheme_len(pat), os = scheme_len(origin);

	if (!ps || ps != os || strncasecmp(pat, origin, ps) != 0 ||
	    strncmp(pat + ps, "*.", 2) != 0)
		return false;
	const char *suffix = pat + ps + 1;          /* ".example.com[:port]" */
	const char *host = origin + os;
	size_t sl = strlen(suffix), hl = strlen(host);
	/* at least one label before the suffix (the origin is valid, so
	 * it has no empty labels) */
	return hl > sl && strcasecmp(host + hl - sl, suffix) == 0;
}

bool rs_cors_any_origin(const struct rs_cors_policy *p)
{
	for (size_t i = 0; i < p->norigins; i++)
		if (strcmp(p->origins[i], "*") == 0)
			return true;
	return false;
}

bool rs_cors_origin_allowed(const struct rs_cors_policy *p, const char *origin)
{
	if (!rs_cors_origin_valid(origin))
		return false;
	for (size_t i = 0; i < p->norigins; i++) {
		const char *a = p->origins[i];
		if (strcmp(a, "*") == 0 || strcasecmp(a, origin) == 0 ||
		    (strchr(a, '*') && pattern_matches(a, origin)))
			return true;
	}
	return false;
}

bool rs_cors_method_allowed(const struct rs_cors_policy *p, const char *method)
{
	/* the CORS-safelisted methods need no listing */
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return true;
	for (size_t i = 0; i < p->nmethods; i++)
		if (strcmp(p->methods[i], method) == 0)
			return true;
	return false;
}

static bool header_listed(const struct rs_cors_policy *p, const char *name, size_t n)
{
	for (size_t i = 0; i < p->nheaders; i++)
		if (strlen(p->headers[i]) == n && strncasecmp(p->headers[i], name, n) == 0)
			return true;
	return false;
}

bool rs_cors_headers_allowed(const struct rs_cors_policy *p, const char *requested,
			     char *bad, size_t n)
{
	const char *s = requested;

	while (s && *s) {
		s += strspn(s, " \t,");
		size_t len = strcspn(s, " \t,");
		if (!len)
			break;
		if (!header_listed(p, s, len)) {
			if (n) {
				size_t c = len < n - 1 ? len : n - 1;
				memcpy(bad, s, c);
				bad[c] = '\0';
			}
			return false;
		}
		s += len;
	}
	return true;
}

const char *rs_cors_violation_name(enum rs_cors_violation v)
{
	static const char *const names[] = { "origin", "method", "header" };
	return (unsigned)v < RS_ARRAY_SIZE(names) ? names[v] : "origin";
}

void rs_cors_monitor_init(struct rs_cors_monitor *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
}

void rs_cors_monitor_destroy(struct rs_cors_monitor *m)
{
	pthread_mutex_destroy(&m->lock);
}

/* The slot of origin (under the lock): its own, "other" or "invalid". */
static struct rs_cors_origin_count *slot_for(struct rs_cors_monitor *m,
					     const char *origin)
{
	const char *name = rs_cors_origin_valid(origin) ? origin : "invalid";

	for (size_t i = 0; i < m->used; i++)
		if (strcmp(m->slots[i].origin, name) == 0)
			return &m->slots[i];
	if (strcmp(name, "invalid") != 0 && m->used >= RS_CORS_ORIGINS)
		name = "other";
	for (size_t i = RS_CORS_ORIGINS; i < m->used; i++)
		if (strcmp(m->slots[i].origin, name) == 0)
			return &m->slots[i];
	struct rs_cors_origin_count *c = &m->slots[m->used++];
	rs_copy_text(c->origin, sizeof(c->origin), name);
	return c;
}

bool rs_cors_monitor_record(struct rs_cors_monitor *m, const char *origin,
			    enum rs_cors_violation v, int64_t now_ms,
			    uint64_t *since_last)
{
	int64_t minute = now_ms / 60000;
	bool report = false;

	pthread_mutex_lock(&m->lock);
	struct rs_cors_origin_count *c = slot_for(m, origin ? origin : "");
	c->count[(unsigned)v < 3 ? v : 0]++;
	c->unreported++;
	if (c->minute != minute) {
		report = true;
		*since_last = c->unreported;
		c->unreported = 0;
		c->minute = minute;
	}
	pthread_mutex_unlock(&m->lock);
	return report;
}

size_t rs_cors_monitor_snapshot(struct rs_cors_monitor *m,
				struct rs_cors_origin_count *out, size_t n)
{
	pthread_mutex_lock(&m->lock);
	size_t k = m->used < n ? m->used : n;
	memcpy(out, m->slots, k * sizeof(*out));
	pthread_mutex_unlock(&m->lock);
	return k;
}
