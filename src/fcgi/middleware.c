/*
 * middleware: the chain every request runs through, in this order
 * (doc/ARCHITECTURE.md):
 *   1. request id        2. security headers    3. CORS
 *   4. authentication    5. rate limit          6. idempotency
 *   7. handler, then the access log and metrics (serve_done)
 * A step that answers the request (an error) ends the chain; the headers
 * of steps 1 and 2 are on every response, errors included.  Step 3 is in
 * mw_cors.c, step 5 in mw_ratelimit.c, step 6 in mw_idempotency.c.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "log.h"
#include "server.h"
#include "util.h"

/* Request ids need to be unique, not secret: a per-thread xorshift128+
 * seeded from the kernel costs a few instructions where RAND_bytes cost
 * thousands (measured with callgrind: it was a fifth of a /live answer). */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t st[2];

	if (!st[0] && !st[1]) {
		if (getrandom(st, sizeof(st), 0) != (ssize_t)sizeof(st) || (!st[0] && !st[1])) {
			st[0] = (uint64_t)rs_monotonic_us() ^ 0x9e3779b97f4a7c15ull;
			st[1] = (uint64_t)(uintptr_t)&st ^ (uint64_t)rs_now_ms();
		}
	}
	uint64_t a = st[0], b = st[1];
	st[0] = b;
	a ^= a << 23;
	st[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	return st[1] + b;
}

static void request_id(struct req *r)
{
	const char *in = r->p.request_id;

	if (in && r->conf->request_id_re_ok && strlen(in) < sizeof(r->id) &&
	    regexec(&r->conf->request_id_re, in, 0, NULL, 0) == 0) {
		strcpy(r->id, in);
		return;
	}
	uint64_t hi = next_random(), lo = next_random();
	snprintf(r->id, sizeof(r->id), "%016llx%016llx", (unsigned long long)hi,
		 (unsigned long long)lo);
}

/* Set on every response before anything can fail, so errors carry them. */
void req_begin_headers(struct req *r)
{
	char line[sizeof("X-Request-ID: ") + REQ_ID_MAX];

	memcpy(line, "X-Request-ID: ", 14);
	strcpy(line + 14, r->id);
	req_add_header_str(r, line);
	req_add_header_str(r, "X-Content-Type-Options: nosniff\r\n"
			      "X-Frame-Options: DENY\r\n"
			      "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
			      "Referrer-Policy: no-referrer");
	if (r->https)
		req_add_header_str(r, "Strict-Transport-Security: max-age=31536000; includeSubDomains");
}

static const char *credential(const struct req *r)
{
	const char *k = r->p.api_key;
	if (k && *k)
		return k;
	const char *a = r->p.authorization;
	if (a && strncasecmp(a, "Bearer ", 7) == 0) {
		a += 7;
		while (*a == ' ')
			a++;
		return *a ? a : NULL;
	}
	return NULL;
}

static int authorize(struct req *r, enum role need);

/* An HS256 bearer token: its "role" claim is the role ("" or an unknown
 * one: none, so 403 where a role is needed).  Why a token failed is
 * logged, never told: every failure is the same 401. */
static int authenticate_jwt(struct req *r, const char *token, enum role need)
{
	struct rs_jwt_claims cl;
	enum rs_jwt_error e = rs_jwt_verify(token, &r->conf->jwt, rs_now_ms(), &cl);

	if (e != RS_JWT_OK) {
		RS_LOG(RS_LOG_NOTICE, r->id, "JWT refused from %s: %s",
		       r->remote_addr ? r->remote_addr : "-", rs_jwt_error_name(e));
		if (ratelimit_auth_failure(r))
			return -1;
		audit_request(r, "auth.failure", RS_AUDIT_DENIED, NULL,
			      json_pack("{s:s,s:s}", "credential", "jwt", "reason",
					rs_jwt_error_name(e)));
		req_add_header_str(r, "WWW-Authenticate: Bearer error=\"invalid_token\"");
		req_error(r, 401, "unauthorized", "authentication required");
		return -1;
	}
	static const char *const roles[] = { "viewer", "operator", "admin" };
	r->role = ROLE_NONE;
	for (size_t i = 0; i < RS_ARRAY_SIZE(roles); i++)
		if (strcmp(cl.role, roles[i]) == 0)
			r->role = (enum role)(ROLE_VIEWER + i);
	r->authenticated = true;
	snprintf(r->jwt_subject, sizeof(r->jwt_subject), "jwt:%s", cl.subject);
	r->key_name = r->jwt_subject;
	req_add_header_str(r, "Cache-Control: no-store");
	return authorize(r, need);
}

/* 0 to go on, -1 when the request was answered (401/403). */
static int authenticate(struct req *r, enum role need)
{
	const char *cred = credential(r);
	unsigned char h[SHA256_DIGEST_LENGTH];
	const struct api_key *found = NULL;

	if (cred) {
		SHA256((const unsigned char *)cred, strlen(cred), h);
		/* compare against every key, in constant time each, so the
		 * timing does not tell how close a guess was */
		for (size_t i = 0; i < r->conf->nkeys; i++)
			if (CRYPTO_memcmp(h, r->conf->keys[i].hash, sizeof(h)) == 0)
				found = &r->conf->keys[i];
		enum rs_key_state st = found ? rs_apikey_state(&found->times, rs_now_ms(),
							       r->conf->key_grace_ms,
							       r->conf->key_rotation_ms)
					     : RS_KEY_ACTIVE;
		const char *why = "unknown key", *which = NULL;
		if (st == RS_KEY_EXPIRED || st == RS_KEY_RETIRED) {
			RS_LOG(RS_LOG_NOTICE, r->id, "key %s is %s", found->name,
			       st == RS_KEY_RETIRED ? "rotated and its grace is over" : "expired");
			why = rs_apikey_state_name(st);
			which = found->name;
			found = NULL;
		}
		if (!found && r->conf->jwt.secret && rs_jwt_looks_like(cred))
			return authenticate_jwt(r, cred, need);
		if (!found) {
			RS_LOG(RS_LOG_NOTICE, r->id, "authentication failed from %s",
			       r->remote_addr ? r->remote_addr : "-");
			if (ratelimit_auth_failure(r))
				return -1;
			audit_request(r, "auth.failure", RS_AUDIT_DENIED, NULL,
				      json_pack("{s:s,s:s,s:s?}", "credential", "api_key",
						"reason", why, "key", which));
			req_add_header_str(r, "WWW-Authenticate: Bearer");
			req_error(r, 401, "unauthorized", "authentication required");
			return -1;
		}
		r->authenticated = true;
		r->role = found->role;
		r->key_name = found->name;
		req_add_header_str(r, "Cache-Control: no-store");
		if (st == RS_KEY_GRACE) {
			char when[32];
			rs_format_utc(rs_apikey_retired_ms(&found->times, r->conf->key_grace_ms),
				      when, sizeof(when));
			RS_LOG(RS_LOG_INFO, r->id, "rotated key %s used in its grace period",
			       found->name);
			/* once a minute per key: a client still on its old key
			 * would otherwise write a record per request */
			int64_t minute = rs_now_ms() / 60000;
			struct api_key *k = (struct api_key *)found;
			if (atomic_exchange(&k->grace_audited_minute, minute) != minute)
				audit_request(r, "auth.rotated_key", RS_AUDIT_SUCCESS, NULL,
					      json_pack("{s:s,s:s}", "key", found->name,
							"stops_working", when));
			req_add_header(r, "Warning: 299 resync \"this API key was rotated; it stops working at %s\"",
				       when);
		}
	}
	return authorize(r, need);
}

/* The role check after authentication: 0, or -1 with 401/403 answered. */
static int authorize(struct req *r, enum role need)
{
	if (need == ROLE_NONE || r->role >= need)
		return 0;
	/* without credentials this costs the address a token, as a wrong key
	 * does: denials are audited, and must not be a free flood */
	if (!r->authenticated && ratelimit_auth_failure(r))
		return -1;
	audit_request(r, "auth.denied", RS_AUDIT_DENIED, NULL,
		      json_pack("{s:s,s:s}", "needs", role_name(need), "has", role_name(r->role)));
	if (!r->authenticated) {
		req_add_header_str(r, "WWW-Authenticate: Bearer");
		req_error(r, 401, "unauthorized", "authentication required");
	} else {
		req_error(r, 403, "forbidden", "this needs the %s role",
			  role_name(need));
	}
	return -1;
}

/* The route's declared input (router.c): 0, or -1 with 400/422 answered,
 * naming the field. */
static int check_input(struct req *r)
{
	const struct rs_fields *in = routes[r->route].in;
	struct rs_field_error fe;
	int rc = rs_fields_check_path(in, r->path_param, &fe);

	if (rc == 0)
		rc = rs_fields_check_query(in, r->query, &fe);
	if (rc == 0 && rs_fields_want_body(in)) {
		if (!(r->json = req_json_body(r)))
			return -1;
		rc = rs_fields_check_body(in, r->json, &fe);
	} else if (rc == 0 && r->body_len) {
		rc = -1;
		fe.status = 400;
		rs_copy_text(fe.field, sizeof(fe.field), "body");
		rs_copy_text(fe.message, sizeof(fe.message), "body: this route takes no body");
	}
	if (rc == 0)
		return 0;
	RS_LOG(RS_LOG_INFO, r->id, "refused %s %s: %s", r->method, r->route_name, fe.message);
	audit_request(r, "validation.failure", RS_AUDIT_DENIED, r->route_name,
		      json_pack("{s:s,s:i}", "field", fe.field, "status", fe.status));
	req_json(r, fe.status, json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "code",
					 fe.status == 422 ? "validation_failed" : "bad_request",
					 "message", fe.message, "field", fe.field,
					 "request_id", r->id));
	return -1;
}

void req_begin(struct req *r)
{
	int64_t t0 = rs_monotonic_us();

	request_id(r);
	req_begin_headers(r);
	r->stage_us[STAGE_MIDDLEWARE] += rs_monotonic_us() - t0;
}

void serve(struct req *r)
{
	int64_t t0 = rs_monotonic_us();
	bool path_known;

	r->route = route_find(r->method, r->path, &path_known, &r->path_param);
	r->route_name = r->route >= 0 ? routes[r->route].pattern : "unmatched";
	r->head = strcmp(r->method, "HEAD") == 0;

	enum role need = r->route >= 0 ? routes[r->route].role : ROLE_NONE;
	bool safe = strcmp(r->method, "GET") == 0 || r->head;
	int rc = cors_step(r, path_known);
	if (rc == 0)
		rc = authenticate(r, need);
	if (rc == 0)
		rc = ratelimit_step(r, r->route >= 0 ? routes[r->route].rl
					     : safe ? RL_READ : RL_WRITE);
	r->stage_us[STAGE_MIDDLEWARE] += rs_monotonic_us() - t0;
	if (rc < 0)
		goto out;

	if (r->route < 0) {
		if (path_known && strcmp(r->method, "OPTIONS") == 0) {
			char allow[128];
			route_allow(r->path, allow, sizeof(allow));
			req_add_header(r, "Allow: %s, OPTIONS", allow);
			r->status = 204;
		} else if (path_known) {
			char allow[128];
			route_allow(r->path, allow, sizeof(allow));
			req_add_header(r, "Allow: %s", allow);
			req_error(r, 405, "method_not_allowed",
				  "%s is not allowed here", r->method);
		} else {
			req_error(r, 404, "not_found", "no such resource");
		}
		return;
	}
	int body = req_read_body(r);
	if (body == 413) {
		req_error(r, 413, "payload_too_large",
			  "the request body is larger than %lld bytes",
			  (long long)r->conf->max_body);
		return;
	}
	if (body) {
		req_error(r, body, body == 400 ? "bad_request" : "internal_error",
			  body == 400 ? "the request body is incomplete"
				      : "the request body could not be read");
		return;
	}
	if (check_input(r) < 0 || idempotency_begin(r) < 0)
		goto out;
	routes[r->route].handler(r);
	/* an admin's reads (/api/status) are not recorded: with sync =
	 * always they would wait on the database, and they are what an
	 * operator looks at when the database is in trouble */
	if (routes[r->route].role == ROLE_ADMIN && r->status < 400 && !r->head &&
	    strcmp(r->method, "GET") != 0)
		audit_request(r, "admin.request", RS_AUDIT_SUCCESS, r->route_name,
			      json_pack("{s:s,s:i}", "method", r->method, "status", r->status));
	idempotency_end(r);
out:
	if (r->audit_failed && r->status < 500) {
		/* [audit] on_full = fail, or a failed commit with sync =
		 * always: no success without its record (a failure keeps its
		 * own error) */
		rs_buf_free(&r->out);
		req_error(r, 503, "audit_unavailable",
			  "the audit log cannot take this request's record; try again");
	}
}

void serve_done(struct req *r)
{
	int64_t took = req_elapsed_us(r);
	struct server *s = r->srv;

	rs_metrics_observe(s->metrics, r->route >= 0 ? (size_t)r->route : nroutes,
			   r->method, r->status, (uint64_t)took);
	accesslog_write(r);
	alerts_observe(r, took);
	if (r->conf->slow_request_ms > 0 && took >= r->conf->slow_request_ms * 1000) {
		atomic_fetch_add(&s->slow, 1);
		RS_LOG(RS_LOG_WARNING, r->id,
		       "slow request: %s %s took %.1f ms (middleware %.1f, cache %.1f, "
		       "upstream %.1f, database %.1f) status %d",
		       r->method, r->path, took / 1e3,
		       r->stage_us[STAGE_MIDDLEWARE] / 1e3, r->stage_us[STAGE_CACHE] / 1e3,
		       r->stage_us[STAGE_UPSTREAM] / 1e3, r->stage_us[STAGE_DATABASE] / 1e3,
		       r->status);
	}
}
