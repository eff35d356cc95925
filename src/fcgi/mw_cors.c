/*
 * mw_cors: step 3 of the chain, the [cors] policy (src/common/cors.h).
 *
 * A request without Origin, or from our own origin, is not cross-origin
 * and passes untouched.  A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered here, before authentication,
 * because browsers send it without credentials: 204 with the policy when
 * origin, method and headers are allowed, otherwise 403 with no CORS
 * headers at all.  An actual request from an allowed origin gets
 * Access-Control-Allow-Origin and the headers scripts may read; from any
 * other origin it gets none, and when it would change something (not GET
 * or HEAD) it is refused with 403, since the browser would run it before
 * hiding the answer.  Every refusal is a violation: counted per origin for
 * /metrics, logged and audited once per origin per minute.
 */
#include <string.h>

#include "log.h"
#include "server.h"
#include "util.h"

/* What scripts on an allowed origin may read besides the safelisted
 * headers. */
#define EXPOSED "Access-Control-Expose-Headers: X-Request-ID, X-Cache, Warning, " \
	"Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, " \
	"Idempotent-Replayed"

static bool same_origin(const struct req *r, const char *origin)
{
	const char *host = r->p.host;
	const char *scheme = r->https ? "https://" : "http://";
	size_t sl = strlen(scheme);

	return host && *host && strncasecmp(origin, scheme, sl) == 0 &&
	       strcasecmp(origin + sl, host) == 0;
}

static void violation(struct req *r, const char *origin, enum rs_cors_violation v,
		      const char *detail)
{
	uint64_t since = 0;

	if (!rs_cors_monitor_record(&r->srv->cors_mon, origin, v, rs_now_ms(), &since))
		return;
	const char *shown = rs_cors_origin_valid(origin) ? origin : "invalid";
	RS_LOG(RS_LOG_WARNING, r->id,
	       "CORS violation from %s: %s %s (%s not allowed%s%s); %llu from this origin since the last report",
	       shown, r->method, r->path, rs_cors_violation_name(v),
	       detail ? ": " : "", detail ? detail : "", (unsigned long long)since);
	/* before authentication: the actor is the address */
	audit_request(r, "cors.violation", RS_AUDIT_DENIED, r->path,
		      json_pack("{s:s,s:s,s:s?,s:I}", "origin", shown, "reason",
				rs_cors_violation_name(v), "detail", detail,
				"since_last_record", (json_int_t)since));
}

static void allow_origin(struct req *r, const struct rs_cors_policy *p,
			 const char *origin)
{
	if (rs_cors_any_origin(p)) {
		/* "*" and credentials do not mix (the Fetch standard refuses
		 * it); config-validate says so too */
		req_add_header_str(r, "Access-Control-Allow-Origin: *");
		return;
	}
	req_add_header(r, "Access-Control-Allow-Origin: %s", origin);
	if (p->credentials)
		req_add_header_str(r, "Access-Control-Allow-Credentials: true");
}

static void join(struct rs_buf *b, char *const *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rs_buf_printf(b, "%s%s", i ? ", " : "", items[i]);
}

static int preflight(struct req *r, const struct rs_cors_policy *p, const char *origin)
{
	const char *method = r->p.acr_method;
	char bad[64];

	if (!rs_cors_origin_allowed(p, origin)) {
		violation(r, origin, RS_CORS_BAD_ORIGIN, NULL);
	} else if (!rs_cors_method_allowed(p, method)) {
		violation(r, origin, RS_CORS_BAD_METHOD, method);
	} else if (r->p.acr_headers &&
		   !rs_cors_headers_allowed(p, r->p.acr_headers, bad, sizeof(bad))) {
		violation(r, origin, RS_CORS_BAD_HEADER, bad);
	} else {
		struct rs_buf b;

		atomic_fetch_add(&r->srv->preflights[0], 1);
		allow_origin(r, p, origin);
		rs_buf_init(&b, 4096);
		rs_buf_puts(&b, "Access-Control-Allow-Methods: GET, HEAD");
		for (size_t i = 0; i < p->nmethods; i++)
			if (strcmp(p->methods[i], "GET") && strcmp(p->methods[i], "HEAD"))
				rs_buf_printf(&b, ", %s", p->methods[i]);
		if (p->nheaders) {
			rs_buf_puts(&b, "\r\nAccess-Control-Allow-Headers: ");
			join(&b, p->headers, p->nheaders);
		}
		if (b.data)
			req_add_header_str(r, b.data);
		rs_buf_free(&b);
		req_add_header(r, "Access-Control-Max-Age: %lld",
			       (long long)(p->max_age_ms / 1000));
		req_add_header_str(r, "Vary: Origin, Access-Control-Request-Method, "
				      "Access-Control-Request-Headers");
		r->status = 204;
		return -1;
	}
	atomic_fetch_add(&r->srv->preflights[1], 1);
	req_add_header_str(r, "Vary: Origin");
	req_error(r, 403, "cors_refused", "this cross-origin request is not allowed");
	return -1;
}

int cors_step(struct req *r, bool path_known)
{
	const char *origin = r->p.origin;
	const struct rs_cors_policy *p = &r->conf->cors;

	if (!origin || same_origin(r, origin))
		return 0;
	if (strcmp(r->method, "OPTIONS") == 0 && r->p.acr_method) {
		if (!path_known) {
			req_error(r, 404, "not_found", "no such resource");
			return -1;
		}
		return preflight(r, p, origin);
	}
	/* the answer depends on Origin: shared caches must know */
	req_add_header_str(r, "Vary: Origin");
	if (rs_cors_origin_allowed(p, origin)) {
		allow_origin(r, p, origin);
		req_add_header_str(r, EXPOSED);
		return 0;
	}
	violation(r, origin, RS_CORS_BAD_ORIGIN, NULL);
	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
	    strcmp(r->method, "OPTIONS") == 0)
		return 0;
	req_error(r, 403, "cors_refused", "this cross-origin request is not allowed");
	return -1;
}
