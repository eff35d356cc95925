/*
 * jwt: HS256 JSON Web Token verification.  See jwt.h.
 *
 * The base64url decoder is our own and strict on purpose: no '=' padding,
 * no characters outside the URL-safe alphabet, no impossible lengths and no
 * non-zero trailing bits.  A lenient decoder would let one signature be
 * written several ways (malleable tokens), and a token that some other
 * verifier reads differently is a token we would rather refuse.
 *
 * The token is capped at RS_JWT_MAX_LEN before anything is decoded, so the
 * decoded parts fit one buffer on the stack and jansson never sees more
 * than that many bytes.
 */
#include "jwt.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

#define HS256_BYTES 32
#define HS256_B64_CHARS 43    /* 32 bytes, unpadded */
/* All three parts decoded: at most 3 bytes for every 4 characters. */
#define DECODED_MAX (RS_JWT_MAX_LEN / 4 * 3 + 3)
/* int64 milliseconds past this are saturated (2^63 is about 9.22e18). */
#define MS_DOUBLE_LIMIT 9.2e18

static const char hs256_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char b64url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char ch)
{
	unsigned char c = (unsigned char)ch;

	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

static size_t b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes b64url_encoded_len(n) characters, no NUL. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			*out++ = b64url_alphabet[acc >> bits & 0x3f];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits)
		*out++ = b64url_alphabet[acc << (6 - bits) & 0x3f];
}

/* Decodes n characters into out (room for n / 4 * 3 + 2 bytes); -1 on
 * anything but canonical unpadded base64url. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t *out_len)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	if (acc != 0)
		return -1;      /* the leftover 2 or 4 bits must be zero */
	*out_len = o;
	return 0;
}

static bool json_str_eq(const json_t *v, const char *want)
{
	size_t n = strlen(want);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), want, n) == 0;
}

bool rs_jwt_looks_like(const char *s)
{
	size_t part = 0;
	int dots = 0;

	if (!s)
		return false;
	/* The signature may be empty: an alg "none" token should still be
	 * taken for a JWT (and refused as one), not tried as an API key. */
	for (; *s; s++) {
		if (*s == '.') {
			if (part == 0 || ++dots > 2)
				return false;
			part = 0;
		} else if (b64url_value(*s) < 0) {
			return false;
		} else {
			part++;
		}
	}
	return dots == 2;
}

static json_t *load_object(const unsigned char *buf, size_t n)
{
	json_t *j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static enum rs_jwt_error check_header(const json_t *hdr)
{
	const json_t *typ;

	if (!json_str_eq(json_object_get(hdr, "alg"), "HS256"))
		return RS_JWT_ALG;
	typ = json_object_get(hdr, "typ");
	if (typ && !json_str_eq(typ, "JWT"))
		return RS_JWT_MALFORMED;
	if (json_object_get(hdr, "crit"))
		return RS_JWT_MALFORMED;
	return RS_JWT_OK;
}

static enum rs_jwt_error check_signature(const char *input, size_t input_len,
					 const unsigned char *sig, size_t sig_len,
					 const struct rs_jwt_options *o)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	enum rs_jwt_error e = RS_JWT_SIGNATURE;

	/* No key, no way to verify: fail closed. */
	if (!o || !o->secret || o->secret_len == 0 || o->secret_len > INT_MAX)
		return RS_JWT_SIGNATURE;
	if (sig_len != HS256_BYTES)
		return RS_JWT_SIGNATURE;
	if (!HMAC(EVP_sha256(), o->secret, (int)o->secret_len,
		  (const unsigned char *)input, input_len, mac, &mac_len))
		goto out;
	if (mac_len == HS256_BYTES && CRYPTO_memcmp(mac, sig, HS256_BYTES) == 0)
		e = RS_JWT_OK;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return e;
}

/* NumericDate (seconds, maybe with a fraction) to ms, saturating; -1 when
 * v is not a number. */
static int numeric_date_ms(const json_t *v, int64_t *ms)
{
	if (json_is_integer(v)) {
		json_int_t s = json_integer_value(v);

		if (s > INT64_MAX / RS_MS_PER_SEC)
			*ms = INT64_MAX;
		else if (s < INT64_MIN / RS_MS_PER_SEC)
			*ms = INT64_MIN;
		else
			*ms = (int64_t)s * RS_MS_PER_SEC;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v) * (double)RS_MS_PER_SEC;

		if (d != d)
			return -1;
		if (d >= MS_DOUBLE_LIMIT)
			*ms = INT64_MAX;
		else if (d <= -MS_DOUBLE_LIMIT)
			*ms = INT64_MIN;
		else
			*ms = (int64_t)d;
		return 0;
	}
	return -1;
}

/* Copies an optional string claim; -1 when it is not a string or does not
 * fit dst with its NUL. */
static int copy_claim(const json_t *v, char *dst, size_t n)
{
	size_t len;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return -1;
	len = json_string_length(v);
	if (len >= n || memchr(json_string_value(v), '\0', len))
		return -1;
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

static enum rs_jwt_error check_audience(const json_t *aud, const char *want)
{
	bool found = false;
	size_t i;
	const json_t *v;

	if (!aud)
		return want ? RS_JWT_AUDIENCE : RS_JWT_OK;
	if (json_is_string(aud)) {
		found = want && json_str_eq(aud, want);
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v) {
			if (!json_is_string(v))
				return RS_JWT_MALFORMED;
			if (want && json_str_eq(v, want))
				found = true;
		}
	} else {
		return RS_JWT_MALFORMED;
	}
	return !want || found ? RS_JWT_OK : RS_JWT_AUDIENCE;
}

static enum rs_jwt_error check_claims(const json_t *pl, const struct rs_jwt_options *o,
				      int64_t now_ms, struct rs_jwt_claims *c)
{
	int64_t leeway_ms = o->leeway_ms > 0 ? o->leeway_ms : 0;
	const json_t *v;
	enum rs_jwt_error e;

	v = json_object_get(pl, "exp");
	if (!v)
		return RS_JWT_NO_EXP;
	if (numeric_date_ms(v, &c->exp_ms) < 0)
		return RS_JWT_MALFORMED;
	/* RFC 7519 4.1.4: valid only while now is before exp. */
	if (rs_sat_add(c->exp_ms, leeway_ms) <= now_ms)
		return RS_JWT_EXPIRED;
	v = json_object_get(pl, "nbf");
	if (v) {
		if (numeric_date_ms(v, &c->nbf_ms) < 0)
			return RS_JWT_MALFORMED;
		if (c->nbf_ms > rs_sat_add(now_ms, leeway_ms))
			return RS_JWT_NOT_YET;
	}
	v = json_object_get(pl, "iat");
	if (v && numeric_date_ms(v, &c->iat_ms) < 0)
		return RS_JWT_MALFORMED;
	v = json_object_get(pl, "iss");
	if (v && !json_is_string(v))
		return RS_JWT_MALFORMED;
	if (o->issuer && !(v && json_str_eq(v, o->issuer)))
		return RS_JWT_ISSUER;
	e = check_audience(json_object_get(pl, "aud"), o->audience);
	if (e != RS_JWT_OK)
		return e;
	if (copy_claim(json_object_get(pl, "sub"), c->subject, sizeof(c->subject)) < 0 ||
	    copy_claim(json_object_get(pl, "role"), c->role, sizeof(c->role)) < 0)
		return RS_JWT_MALFORMED;
	return RS_JWT_OK;
}

enum rs_jwt_error rs_jwt_verify(const char *token, const struct rs_jwt_options *o,
				int64_t now_ms, struct rs_jwt_claims *claims)
{
	unsigned char buf[DECODED_MAX];
	struct rs_jwt_claims c;
	const char *dot1, *dot2;
	size_t len, hlen, plen, slen, hdec, pdec, sdec;
	json_t *hdr = NULL, *pl = NULL;
	enum rs_jwt_error e = RS_JWT_MALFORMED;

	memset(&c, 0, sizeof(c));
	if (claims)
		memset(claims, 0, sizeof(*claims));
	if (!token)
		return RS_JWT_MALFORMED;
	len = strnlen(token, RS_JWT_MAX_LEN + 1);
	if (len > RS_JWT_MAX_LEN)
		return RS_JWT_MALFORMED;
	dot1 = memchr(token, '.', len);
	if (!dot1)
		return RS_JWT_MALFORMED;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return RS_JWT_MALFORMED;
	hlen = (size_t)(dot1 - token);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(dot2 + 1 - token);

	/* hlen + plen + slen <= RS_JWT_MAX_LEN, so the three fit buf. */
	if (b64url_decode(token, hlen, buf, &hdec) < 0 ||
	    b64url_decode(dot1 + 1, plen, buf + hdec, &pdec) < 0 ||
	    b64url_decode(dot2 + 1, slen, buf + hdec + pdec, &sdec) < 0)
		goto out;
	hdr = load_object(buf, hdec);
	pl = load_object(buf + hdec, pdec);
	if (!hdr || !pl)
		goto out;

	e = check_header(hdr);
	if (e != RS_JWT_OK)
		goto out;
	e = check_signature(token, (size_t)(dot2 - token), buf + hdec + pdec, sdec, o);
	if (e != RS_JWT_OK)
		goto out;
	e = check_claims(pl, o, now_ms, &c);
	if (e == RS_JWT_OK && claims)
		*claims = c;
out:
	json_decref(pl);
	json_decref(hdr);
	return e;
}

const char *rs_jwt_error_name(enum rs_jwt_error e)
{
	switch (e) {
	case RS_JWT_OK:         return "ok";
	case RS_JWT_MALFORMED:  return "malformed";
	case RS_JWT_ALG:        return "algorithm not allowed";
	case RS_JWT_SIGNATURE:  return "bad signature";
	case RS_JWT_EXPIRED:    return "expired";
	case RS_JWT_NOT_YET:    return "not yet valid";
	case RS_JWT_ISSUER:     return "wrong issuer";
	case RS_JWT_AUDIENCE:   return "wrong audience";
	case RS_JWT_NO_EXP:     return "no expiry";
	}
	return "unknown";
}

char *rs_jwt_sign(const char *payload_json, const unsigned char *secret, size_t secret_len)
{
	const size_t hraw = sizeof(hs256_header) - 1;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t plen, hb, pb, total;
	json_t *j;
	char *tok = NULL;

	if (!payload_json || !secret || secret_len == 0 || secret_len > INT_MAX)
		return NULL;
	plen = strnlen(payload_json, RS_JWT_MAX_LEN + 1);
	if (plen > RS_JWT_MAX_LEN)
		return NULL;
	j = load_object((const unsigned char *)payload_json, plen);
	if (!j)
		return NULL;
	json_decref(j);
	hb = b64url_encoded_len(hraw);
	pb = b64url_encoded_len(plen);
	total = hb + 1 + pb + 1 + HS256_B64_CHARS;
	if (total > RS_JWT_MAX_LEN)
		return NULL;
	tok = malloc(total + 1);
	if (!tok)
		return NULL;
	b64url_encode((const unsigned char *)hs256_header, hraw, tok);
	tok[hb] = '.';
	b64url_encode((const unsigned char *)payload_json, plen, tok + hb + 1);
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)tok,
		  hb + 1 + pb, mac, &mac_len) || mac_len != HS256_BYTES) {
		free(tok);
		tok = NULL;
		goto out;
	}
	tok[hb + 1 + pb] = '.';
	b64url_encode(mac, HS256_BYTES, tok + hb + 1 + pb + 1);
	tok[total] = '\0';
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return tok;
}
