/*
 * mw_ratelimit: step 5 of the chain, token buckets per client and route
 * class ([ratelimit], src/common/ratelimit.h).
 *
 * The client is the API key (or JWT subject) when the request carried
 * one, else the address nginx saw.  Each has a bucket for reads (GET,
 * HEAD) and one for writes (POST).  Every limited response carries
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds until
 * the bucket is full again, as in the IETF httpapi draft); a refusal is
 * 429 with Retry-After, logged once per client per minute.
 *
 * A failed authentication also costs the client address a read token, so
 * guessing keys is as slow as reading.
 */
#include <string.h>

#include "log.h"
#include "server.h"
#include "util.h"

static const char *const class_names[] = { "read", "write" };

static void client_name(const struct req *r, enum rl_class cls, char *buf, size_t n)
{
	char who[RS_RL_NAME_MAX];

	req_client(r, who, sizeof(who));
	snprintf(buf, n, "%s|%s", class_names[cls], who);
}

static int64_t whole_seconds(int64_t ms)
{
	return (ms + 999) / 1000;
}

/* Take a token: true when allowed.  Sets the headers either way. */
static bool take(struct req *r, enum rl_class cls)
{
	char name[RS_RL_NAME_MAX + 32];
	struct rs_rl_verdict v;

	client_name(r, cls, name, sizeof(name));
	rs_ratelimit_take(r->srv->rl, name, r->conf->rl_rate[cls], r->conf->rl_burst[cls],
			  rs_monotonic_us(), rs_now_ms(), &v);
	atomic_fetch_add(&r->srv->rl_counts[cls][!v.allowed], 1);
	req_add_header(r, "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\n"
		       "RateLimit-Reset: %lld", v.limit, v.remaining,
		       (long long)whole_seconds(v.reset_ms));
	if (v.allowed)
		return true;
	if (v.report) {
		/* once per client per minute, with the count of the minute
		 * before: a flood cannot flood the log or the audit log */
		RS_LOG(RS_LOG_NOTICE, r->id,
		       "rate limit: %s refused (%s %s); %llu refused in the minute before",
		       name + strlen(class_names[cls]) + 1, r->method, r->path,
		       (unsigned long long)v.refused_before);
		audit_request(r, "ratelimit.block", RS_AUDIT_DENIED, r->route_name,
			      json_pack("{s:s,s:I}", "class", class_names[cls],
					"refused_in_minute_before", (json_int_t)v.refused_before));
	}
	int64_t after = whole_seconds(v.retry_after_ms);
	req_add_header(r, "Retry-After: %lld", (long long)(after < 1 ? 1 : after));
	req_error(r, 429, "rate_limited",
		  "too many requests; try again in %lld s", (long long)(after < 1 ? 1 : after));
	return false;
}

int ratelimit_step(struct req *r, enum rl_class cls)
{
	if (!r->conf->rl_on || cls == RL_EXEMPT || !r->srv->rl)
		return 0;
	return take(r, cls) ? 0 : -1;
}

bool ratelimit_auth_failure(struct req *r)
{
	if (!r->conf->rl_on || !r->srv->rl)
		return false;
	/* the key was not accepted: charge the address, not the key */
	r->authenticated = false;
	if (take(r, RL_READ))
		return false;
	return true;
}
