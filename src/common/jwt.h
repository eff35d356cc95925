/*
 * jwt: verifying HS256 JSON Web Tokens (RFC 7519, RFC 7515 compact form)
 * presented as bearer tokens.
 *
 * Only HS256 is accepted: the algorithm is fixed by the verifier, never
 * chosen by the token, so "none", RS256-with-the-HMAC-key and the like are
 * refused before any key is used.  A header carrying "crit" is refused too
 * (RFC 7515 4.1.11: we understand no extensions).  Keys named by the token
 * ("kid", "jku", "jwk", "x5u") are ignored: the key is the caller's secret.
 *
 * rs_jwt_verify never allocates memory that grows with anything but the
 * token, which is capped at RS_JWT_MAX_LEN, and reads no byte past the
 * token's NUL.  It fills claims only on RS_JWT_OK (zeroed otherwise).  The
 * error codes are for logs only: clients get one generic 401.
 *
 * All times are wall-clock milliseconds since the epoch; the token's
 * NumericDate seconds (fractions allowed) are converted on the way in.
 */
#ifndef RS_JWT_H
#define RS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_JWT_MAX_LEN 8192          /* longer tokens are refused unparsed */
#define RS_JWT_SUBJECT_MAX 128
#define RS_JWT_ROLE_MAX 32

struct rs_jwt_options {
	const unsigned char *secret; size_t secret_len;   /* HS256 key */
	const char *issuer;       /* required "iss" when not NULL */
	const char *audience;     /* required in "aud" (string or array) when not NULL */
	int64_t leeway_ms;        /* clock skew allowed for exp/nbf (e.g. 30000) */
};

struct rs_jwt_claims {
	char subject[RS_JWT_SUBJECT_MAX];  /* "sub", "" when absent */
	char role[RS_JWT_ROLE_MAX];        /* "role" claim, "" when absent */
	int64_t exp_ms, nbf_ms, iat_ms;    /* 0 when absent */
};

enum rs_jwt_error { RS_JWT_OK, RS_JWT_MALFORMED, RS_JWT_ALG, RS_JWT_SIGNATURE,
	RS_JWT_EXPIRED, RS_JWT_NOT_YET, RS_JWT_ISSUER, RS_JWT_AUDIENCE, RS_JWT_NO_EXP };

/* Does s look like a JWT (three base64url parts separated by two dots)?
 * Cheap; lets a caller tell a JWT from an opaque API key. */
bool rs_jwt_looks_like(const char *s);

/* Verify token at now_ms (wall clock).  RS_JWT_OK with claims filled, or the
 * first reason it fails.  Checks, in order: length and shape (3 parts,
 * base64url without padding, header and payload JSON objects), header
 * "alg" exactly "HS256" ("none" and every other alg refused, and "typ" if
 * present must be "JWT"), signature (HMAC-SHA256 over "header.payload"
 * with the secret, compared in constant time with CRYPTO_memcmp), then
 * claims: "exp" required (NumericDate seconds, may be a number with
 * fraction) and not past now - leeway; "nbf" if present not after now +
 * leeway; "iss" equal to issuer when set; "aud" equal to audience, or an
 * array containing it, when set; "sub" and "role" copied when they are
 * strings that fit (too long: MALFORMED).  Never reads past the token;
 * never allocates unbounded memory.
 *
 * Details: a wrong "typ" or any "crit" is MALFORMED; a missing or empty
 * secret fails closed as SIGNATURE; claims of the wrong JSON type ("exp"
 * as a string, "sub" as a number, "aud" holding a non-string) are
 * MALFORMED; a negative leeway counts as 0. */
enum rs_jwt_error rs_jwt_verify(const char *token, const struct rs_jwt_options *o,
				int64_t now_ms, struct rs_jwt_claims *claims);

/* "malformed", "algorithm not allowed", "bad signature", "expired",
 * "not yet valid", "wrong issuer", "wrong audience", "no expiry" (for logs only:
 * clients get one generic 401). */
const char *rs_jwt_error_name(enum rs_jwt_error e);

/* For tests and tools: sign a payload JSON object string with HS256 into a
 * malloc'd token (caller frees); NULL on error.  The payload's bytes are
 * signed as given (not re-serialised); the header is
 * {"alg":"HS256","typ":"JWT"}.  NULL too when the payload is not a JSON
 * object, the secret is empty, or the token would exceed RS_JWT_MAX_LEN. */
char *rs_jwt_sign(const char *payload_json, const unsigned char *secret, size_t secret_len);

#endif
