/* JWT: known-answer vectors computed outside this code (openssl CLI, RFC
 * 7515 A.1), every reason a token is refused, strict base64url, the size
 * cap, and rs_jwt_looks_like.  Tokens with odd headers are built here with
 * a separate encoder and HMAC, not with rs_jwt_sign. */
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tap.h"
#include "jwt.h"
#include "util.h"

#define SECRET "resync-test-secret-0123456789abcdef"
#define NOW_S 1700000000LL
#define NOW_MS (NOW_S * 1000)

static const unsigned char *secret = (const unsigned char *)SECRET;

/* printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url, the payload likewise,
 * and the signature from
 *   printf '%s.%s' "$H" "$P" | openssl dgst -sha256 -hmac "$SECRET" -binary */
static const char kat_payload[] =
	"{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"resync\",\"aud\":\"api\","
	"\"iat\":1700000000,\"exp\":4102444800}";
static const char kat_token[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	"eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiIsImlzcyI6InJlc3luYyIsImF1ZCI6ImFwaSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ."
	"NecNDKPGfgQTVTyf9i_RuDs6Okl49IOMbVxXfBB6KSo";
/* The jwt.io example: same method, secret "your-256-bit-secret". */
static const char jwtio_payload[] =
	"{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}";
static const char jwtio_token[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
	"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
/* RFC 7515 appendix A.1: header {"typ":"JWT",\r\n "alg":"HS256"}, exp
 * 1300819380, the key given there as a JWK. */
static const char rfc_token[] =
	"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
	"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const unsigned char rfc_key[] = {
	0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65,
	0x77, 0x7b, 0xa6, 0x8f, 0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28,
	0xa9, 0x0f, 0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf, 0xd3, 0xfb, 0x5a, 0x92,
	0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22,
	0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5,
	0x67, 0xd0, 0x80, 0xa3,
};

/* --- building tokens by hand --------------------------------------------- */

static const char b64u[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Appends the unpadded base64url of in[0..n) at out; returns the end. */
static char *enc(char *out, const unsigned char *in, size_t n)
{
	size_t i = 0;

	for (; i + 3 <= n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 | in[i + 1] << 8 | in[i + 2];

		*out++ = b64u[v >> 18 & 63];
		*out++ = b64u[v >> 12 & 63];
		*out++ = b64u[v >> 6 & 63];
		*out++ = b64u[v & 63];
	}
	if (n - i == 1) {
		*out++ = b64u[in[i] >> 2];
		*out++ = b64u[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		*out++ = b64u[in[i] >> 2];
		*out++ = b64u[(in[i] & 3) << 4 | in[i + 1] >> 4];
		*out++ = b64u[(in[i + 1] & 15) << 2];
	}
	*out = '\0';
	return out;
}

/* header.payload.HMAC-SHA256(key) in a malloc'd string. */
static char *make(const char *header, const char *payload, const char *key)
{
	size_t hn = strlen(header), pn = strlen(payload);
	char *tok = malloc((hn + pn) * 2 + 64), *p;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	p = enc(tok, (const unsigned char *)header, hn);
	*p++ = '.';
	p = enc(p, (const unsigned char *)payload, pn);
	HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)tok,
	     (size_t)(p - tok), mac, &mac_len);
	*p++ = '.';
	enc(p, mac, mac_len);
	return tok;
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static struct rs_jwt_options opts(void)
{
	struct rs_jwt_options o = { secret, strlen(SECRET), NULL, NULL, 30000 };

	return o;
}

/* Verifies a token built from header and payload at NOW_MS. */
static enum rs_jwt_error check_hp(const char *header, const char *payload,
				  const struct rs_jwt_options *o)
{
	char *tok = make(header, payload, SECRET);
	struct rs_jwt_claims c;
	enum rs_jwt_error e = rs_jwt_verify(tok, o, NOW_MS, &c);

	free(tok);
	return e;
}

static enum rs_jwt_error check_p(const char *payload, const struct rs_jwt_options *o)
{
	return check_hp(HS256, payload, o);
}

#define is_jwt(got, want, name)                                              \
	do {                                                                 \
		enum rs_jwt_error g2_ = (got), w2_ = (want);                 \
		if (!ok(g2_ == w2_, name))                                   \
			printf("#   expected %s, got %s\n",                  \
			       rs_jwt_error_name(w2_), rs_jwt_error_name(g2_)); \
	} while (0)

/* Index of the part'th '.'-separated part's start. */
static size_t part_start(const char *tok, int part)
{
	const char *p = tok;

	while (part-- > 0)
		p = strchr(p, '.') + 1;
	return (size_t)(p - tok);
}

/* Flips one bit of decoded byte b of a part by changing the one encoded
 * character that holds it alone (b % 3 must not be 1). */
static char *flip_byte(const char *tok, int part, size_t b)
{
	char *t = strdup(tok);
	size_t k = (b * 8 + 5) / 6, at = part_start(t, part) + k;

	t[at] = b64u[(strchr(b64u, t[at]) - b64u) ^ 1];
	return t;
}

/* --- tests ---------------------------------------------------------------- */

static void test_known_answers(void)
{
	struct rs_jwt_options o = opts();
	struct rs_jwt_claims c;
	char *t;

	t = rs_jwt_sign(kat_payload, secret, strlen(SECRET));
	is_str(t, kat_token, "sign: matches the token made with the openssl CLI");
	free(t);
	t = rs_jwt_sign(jwtio_payload, (const unsigned char *)"your-256-bit-secret", 19);
	is_str(t, jwtio_token, "sign: matches the jwt.io example");
	free(t);
	t = make(HS256, kat_payload, SECRET);
	is_str(t, kat_token, "test encoder agrees with the openssl CLI too");
	free(t);

	o.issuer = "resync";
	o.audience = "api";
	is_jwt(rs_jwt_verify(kat_token, &o, NOW_MS, &c), RS_JWT_OK,
	       "verify: the openssl-made token is good");
	is_str(c.subject, "alice", "verify: sub copied");
	is_str(c.role, "admin", "verify: role copied");
	is_int(c.exp_ms, 4102444800LL * 1000, "verify: exp in ms");
	is_int(c.iat_ms, NOW_MS, "verify: iat in ms");
	is_int(c.nbf_ms, 0, "verify: nbf 0 when absent");

	o = opts();
	o.secret = rfc_key;
	o.secret_len = sizeof(rfc_key);
	o.leeway_ms = 0;
	is_jwt(rs_jwt_verify(rfc_token, &o, 1300819379000LL, &c), RS_JWT_OK,
	       "verify: RFC 7515 A.1 example, a second before exp");
	ok(c.subject[0] == '\0' && c.role[0] == '\0' && c.exp_ms == 1300819380000LL,
	   "verify: RFC example: no sub, no role, exp read");
	is_jwt(rs_jwt_verify(rfc_token, &o, 1300819380000LL, &c), RS_JWT_EXPIRED,
	       "verify: RFC example expires at exp exactly");
	o.secret = (const unsigned char *)"your-256-bit-secret";
	o.secret_len = 19;
	is_jwt(rs_jwt_verify(jwtio_token, &o, NOW_MS, &c), RS_JWT_NO_EXP,
	       "verify: jwt.io example signs right but has no exp");
}

static void test_signature(void)
{
	struct rs_jwt_options o = opts();
	struct rs_jwt_claims c;
	const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"abcdefgh\"}";
	char *good = make(hdr, kat_payload, SECRET), *t;
	size_t b, sig = part_start(good, 2);

	is_jwt(rs_jwt_verify(good, &o, NOW_MS, &c), RS_JWT_OK, "signature: base token good");

	b = (size_t)(strstr(hdr, "abcdefgh") - hdr) + 2;
	b += b % 3 == 1;
	t = flip_byte(good, 0, b);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: one char changed in the header");
	free(t);

	b = (size_t)(strstr(kat_payload, "alice") - kat_payload) + 1;
	b += b % 3 == 1;
	t = flip_byte(good, 1, b);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: one char changed in the payload");
	ok(c.subject[0] == '\0' && c.exp_ms == 0, "signature: claims left zeroed on failure");
	free(t);

	t = strdup(good);
	t[sig] = t[sig] == 'A' ? 'B' : 'A';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: first char of the signature changed");
	free(t);

	/* The 43rd character holds 4 signature bits and 2 zero bits. */
	t = strdup(good);
	t[strlen(t) - 1] = b64u[(strchr(b64u, t[strlen(t) - 1]) - b64u) ^ 4];
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: last char changed in a signature bit");
	free(t);
	t = strdup(good);
	t[strlen(t) - 1] = b64u[(strchr(b64u, t[strlen(t) - 1]) - b64u) ^ 1];
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_MALFORMED,
	       "signature: non-zero trailing bits refused (no second spelling)");
	free(t);

	t = strdup(good);
	t[strlen(t) - 3] = '\0';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: a 40-char signature (30 bytes) refused");
	t[sig] = '\0';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: an empty signature with alg HS256 refused");
	free(t);

	t = make(HS256, kat_payload, "another-secret");
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: signed with another secret");
	free(t);

	o.secret_len = 0;
	is_jwt(rs_jwt_verify(good, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: an empty secret fails closed");
	o.secret = NULL;
	o.secret_len = strlen(SECRET);
	is_jwt(rs_jwt_verify(good, &o, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: a NULL secret fails closed");
	is_jwt(rs_jwt_verify(good, NULL, NOW_MS, &c), RS_JWT_SIGNATURE,
	       "signature: NULL options fail closed");
	free(good);
}

static void test_header(void)
{
	struct rs_jwt_options o = opts();
	const char *p = "{\"sub\":\"a\",\"exp\":4102444800}";
	const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
	char tok[256], *q;

	q = enc(tok, (const unsigned char *)none, strlen(none));
	*q++ = '.';
	q = enc(q, (const unsigned char *)p, strlen(p));
	*q++ = '.';
	*q = '\0';
	is_jwt(rs_jwt_verify(tok, &o, NOW_MS, NULL), RS_JWT_ALG,
	       "header: alg none with an empty signature");
	is_jwt(check_hp("{\"alg\":\"none\"}", p, &o), RS_JWT_ALG,
	       "header: alg none even with an HMAC signature");
	is_jwt(check_hp("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", p, &o), RS_JWT_ALG,
	       "header: alg HS512");
	is_jwt(check_hp("{\"alg\":\"RS256\"}", p, &o), RS_JWT_ALG, "header: alg RS256");
	is_jwt(check_hp("{\"alg\":\"hs256\"}", p, &o), RS_JWT_ALG,
	       "header: alg compared exactly (hs256)");
	is_jwt(check_hp("{\"alg\":\"HS256 \"}", p, &o), RS_JWT_ALG,
	       "header: alg compared exactly (trailing space)");
	is_jwt(check_hp("{\"typ\":\"JWT\"}", p, &o), RS_JWT_ALG, "header: alg missing");
	is_jwt(check_hp("{\"alg\":null}", p, &o), RS_JWT_ALG, "header: alg null");
	is_jwt(check_hp("{\"alg\":[\"HS256\"]}", p, &o), RS_JWT_ALG, "header: alg an array");
	is_jwt(check_hp("{\"alg\":\"HS256\"}", p, &o), RS_JWT_OK, "header: typ may be absent");
	is_jwt(check_hp("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", p, &o), RS_JWT_MALFORMED,
	       "header: typ not JWT");
	is_jwt(check_hp("{\"alg\":\"HS256\",\"typ\":1}", p, &o), RS_JWT_MALFORMED,
	       "header: typ not a string");
	is_jwt(check_hp("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, &o), RS_JWT_MALFORMED,
	       "header: crit refused (no extensions understood)");
	is_jwt(check_hp("{\"alg\":\"HS256\",\"kid\":\"x\",\"jku\":\"http://evil\"}", p, &o),
	       RS_JWT_OK, "header: kid and jku ignored");
	is_jwt(check_hp("[\"alg\",\"HS256\"]", p, &o), RS_JWT_MALFORMED,
	       "header: an array, not an object");
	is_jwt(check_hp("\"HS256\"", p, &o), RS_JWT_MALFORMED, "header: a string");
	is_jwt(check_hp("{\"alg\":\"none\",\"alg\":\"HS256\"}", p, &o), RS_JWT_MALFORMED,
	       "header: duplicate alg");
	is_jwt(check_hp("{\"alg\":\"HS256\"", p, &o), RS_JWT_MALFORMED,
	       "header: truncated JSON");
	is_jwt(check_hp("{\"alg\":\"HS256\"} x", p, &o), RS_JWT_MALFORMED,
	       "header: JSON with trailing garbage");
}

static void test_shape(void)
{
	struct rs_jwt_options o = opts();
	size_t n = strlen(kat_token), pay = part_start(kat_token, 1);
	char t[1024];

	is_jwt(rs_jwt_verify(NULL, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: NULL");
	is_jwt(rs_jwt_verify("", &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: empty");
	is_jwt(rs_jwt_verify("..", &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: two dots only");
	snprintf(t, sizeof(t), "%.*s", (int)(pay - 1), kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: 1 part");
	snprintf(t, sizeof(t), "%.*s", (int)(part_start(kat_token, 2) - 1), kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: 2 parts");
	snprintf(t, sizeof(t), "%s.%s", kat_token, "AAAA");
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: 4 parts");
	snprintf(t, sizeof(t), "%s.", kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: trailing dot");
	snprintf(t, sizeof(t), "%s ", kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: trailing space");
	snprintf(t, sizeof(t), "%s\n", kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: trailing newline");
	snprintf(t, sizeof(t), " %s", kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: leading space");
	snprintf(t, sizeof(t), "%s=", kat_token);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "shape: '=' padding on the signature");
	/* the payload part is 126 chars: "==" pads it to a multiple of 4 */
	snprintf(t, sizeof(t), "%.*s==%s", (int)(part_start(kat_token, 2) - 1), kat_token,
		 kat_token + part_start(kat_token, 2) - 1);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "shape: '=' padding on the payload");
	snprintf(t, sizeof(t), "%.*sA%s", (int)(pay - 1), kat_token, kat_token + pay - 1);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "shape: header of impossible length (len % 4 == 1)");

	strcpy(t, kat_token);
	t[pay + 3] = '+';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "shape: '+' (standard base64) refused");
	t[pay + 3] = '/';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: '/' refused");
	t[pay + 3] = '%';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: '%' refused");
	t[pay + 3] = (char)0xc3;
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: a high byte refused");
	strcpy(t, kat_token);
	t[n - 5] = ' ';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "shape: a space inside the signature");
	strcpy(t, kat_token);
	t[0] = '\0';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "shape: cut at a NUL");

	is_jwt(check_p("[{\"exp\":4102444800}]", &o), RS_JWT_MALFORMED, "payload: an array");
	is_jwt(check_p("", &o), RS_JWT_MALFORMED, "payload: empty");
	is_jwt(check_p("{\"exp\":4102444800} {}", &o), RS_JWT_MALFORMED,
	       "payload: JSON with trailing garbage");
	is_jwt(check_p("{\"exp\":4102444800,\"exp\":4102444800}", &o), RS_JWT_MALFORMED,
	       "payload: duplicate keys");
	is_jwt(check_p("{\"exp\":4102444800,\"sub\":\"a\",\"sub\":\"admin\"}", &o),
	       RS_JWT_MALFORMED, "payload: duplicate sub");
	is_jwt(check_p("{\"exp\":4102444800,\"sub\":\"a\\u0000b\"}", &o), RS_JWT_MALFORMED,
	       "payload: a NUL inside sub refused");
	is_jwt(check_p("{\"exp\":4102444800,\"sub\":\"\xff\"}", &o), RS_JWT_MALFORMED,
	       "payload: invalid UTF-8 refused");
}

static void test_size(void)
{
	struct rs_jwt_options o = opts();
	char payload[RS_JWT_MAX_LEN + 64], *last = NULL, *t;
	size_t fill = 0;

	/* Grow a filler claim until rs_jwt_sign refuses: the last token it
	 * made is the largest allowed. */
	for (;;) {
		snprintf(payload, sizeof(payload), "{\"exp\":4102444800,\"x\":\"%0*d\"}",
			 (int)fill, 0);
		t = rs_jwt_sign(payload, secret, strlen(SECRET));
		if (!t)
			break;
		free(last);
		last = t;
		fill++;
	}
	ok(last && strlen(last) <= RS_JWT_MAX_LEN && strlen(last) > RS_JWT_MAX_LEN - 4,
	   "size: sign goes up to RS_JWT_MAX_LEN");
	is_jwt(rs_jwt_verify(last, &o, NOW_MS, NULL), RS_JWT_OK, "size: the largest token verifies");
	free(last);
	t = make(HS256, payload, SECRET);
	ok(strlen(t) > RS_JWT_MAX_LEN, "size: one more filler byte goes over");
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED,
	       "size: a validly signed token over RS_JWT_MAX_LEN refused");
	free(t);

	t = malloc(1 << 20);
	memset(t, 'A', (1 << 20) - 1);
	t[(1 << 20) - 1] = '\0';
	t[100] = t[200] = '.';
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, NULL), RS_JWT_MALFORMED, "size: a 1 MB token refused");
	free(t);

	/* deep nesting: jansson's depth limit, no stack blow-up */
	memset(payload, '[', 5000);
	payload[5000] = '\0';
	is_jwt(check_p(payload, &o), RS_JWT_MALFORMED, "size: 5000 nested arrays refused");
}

static void test_times(void)
{
	struct rs_jwt_options o = opts();
	struct rs_jwt_claims c;
	char p[256], *t;

#define AT(fmt, ...) (snprintf(p, sizeof(p), fmt, __VA_ARGS__), p)
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S - 60), &o), RS_JWT_EXPIRED,
	       "exp: a minute ago, leeway 30 s: expired");
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S - 10), &o), RS_JWT_OK,
	       "exp: 10 s ago is within the leeway");
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S - 30), &o), RS_JWT_EXPIRED,
	       "exp: exactly the leeway ago: expired");
	o.leeway_ms = 0;
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S), &o), RS_JWT_EXPIRED,
	       "exp: now, no leeway: expired (must be before exp)");
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S + 1), &o), RS_JWT_OK,
	       "exp: a second ahead, no leeway: good");
	o.leeway_ms = -60000;
	is_jwt(check_p(AT("{\"exp\":%lld}", NOW_S + 1), &o), RS_JWT_OK,
	       "exp: a negative leeway counts as 0");
	o.leeway_ms = 0;

	t = make(HS256, AT("{\"exp\":%lld.5}", NOW_S), SECRET);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS + 400, &c), RS_JWT_OK,
	       "exp: a fraction of a second counts (400 ms before x.5)");
	is_int(c.exp_ms, NOW_MS + 500, "exp: 1700000000.5 s is ...500 ms");
	is_jwt(rs_jwt_verify(t, &o, NOW_MS + 500, &c), RS_JWT_EXPIRED,
	       "exp: and expires at x.5");
	free(t);
	o.leeway_ms = 30000;

	is_jwt(check_p("{\"sub\":\"a\"}", &o), RS_JWT_NO_EXP, "exp: missing");
	is_jwt(check_p("{}", &o), RS_JWT_NO_EXP, "exp: empty payload has none");
	is_jwt(check_p("{\"exp\":\"4102444800\"}", &o), RS_JWT_MALFORMED, "exp: a string");
	is_jwt(check_p("{\"exp\":null}", &o), RS_JWT_MALFORMED, "exp: null");
	is_jwt(check_p("{\"exp\":true}", &o), RS_JWT_MALFORMED, "exp: a boolean");
	is_jwt(check_p("{\"exp\":9223372036854775807}", &o), RS_JWT_OK,
	       "exp: INT64_MAX seconds saturates, no overflow");
	is_jwt(check_p("{\"exp\":1e300}", &o), RS_JWT_OK, "exp: 1e300 saturates");
	is_jwt(check_p("{\"exp\":-9223372036854775807}", &o), RS_JWT_EXPIRED,
	       "exp: hugely negative is expired");
	is_jwt(check_p("{\"exp\":99999999999999999999}", &o), RS_JWT_MALFORMED,
	       "exp: an integer beyond 64 bits refused by the parser");

	is_jwt(check_p(AT("{\"exp\":4102444800,\"nbf\":%lld}", NOW_S + 60), &o),
	       RS_JWT_NOT_YET, "nbf: a minute ahead, leeway 30 s: not yet");
	is_jwt(check_p(AT("{\"exp\":4102444800,\"nbf\":%lld}", NOW_S + 10), &o),
	       RS_JWT_OK, "nbf: 10 s ahead is within the leeway");
	is_jwt(check_p(AT("{\"exp\":4102444800,\"nbf\":%lld}", NOW_S + 30), &o),
	       RS_JWT_OK, "nbf: exactly the leeway ahead is good");
	is_jwt(check_p("{\"exp\":4102444800,\"nbf\":\"0\"}", &o), RS_JWT_MALFORMED,
	       "nbf: a string");
	is_jwt(check_p("{\"exp\":4102444800,\"iat\":\"0\"}", &o), RS_JWT_MALFORMED,
	       "iat: a string");
	t = make(HS256, AT("{\"exp\":4102444800,\"nbf\":%lld,\"iat\":%lld}", NOW_S - 5,
			   NOW_S - 6), SECRET);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_OK, "nbf: in the past is good");
	ok(c.nbf_ms == NOW_MS - 5000 && c.iat_ms == NOW_MS - 6000, "nbf, iat: copied in ms");
	free(t);
#undef AT
}

static void test_iss_aud(void)
{
	struct rs_jwt_options o = opts();

	o.issuer = "resync";
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":\"resync\"}", &o), RS_JWT_OK,
	       "iss: matches");
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":\"evil\"}", &o), RS_JWT_ISSUER, "iss: wrong");
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":\"resyncx\"}", &o), RS_JWT_ISSUER,
	       "iss: a longer string is wrong");
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":\"resyn\"}", &o), RS_JWT_ISSUER,
	       "iss: a prefix is wrong");
	is_jwt(check_p("{\"exp\":4102444800}", &o), RS_JWT_ISSUER, "iss: missing when required");
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":[\"resync\"]}", &o), RS_JWT_MALFORMED,
	       "iss: an array");
	o.issuer = NULL;
	is_jwt(check_p("{\"exp\":4102444800,\"iss\":\"anyone\"}", &o), RS_JWT_OK,
	       "iss: any when not required");

	o.audience = "api";
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":\"api\"}", &o), RS_JWT_OK, "aud: string match");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":[\"web\",\"api\"]}", &o), RS_JWT_OK,
	       "aud: array match");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":\"web\"}", &o), RS_JWT_AUDIENCE,
	       "aud: string mismatch");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":[\"web\",\"apis\"]}", &o), RS_JWT_AUDIENCE,
	       "aud: array mismatch");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":[]}", &o), RS_JWT_AUDIENCE,
	       "aud: empty array");
	is_jwt(check_p("{\"exp\":4102444800}", &o), RS_JWT_AUDIENCE, "aud: missing when required");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":[\"api\",1]}", &o), RS_JWT_MALFORMED,
	       "aud: array with a non-string");
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":{\"api\":1}}", &o), RS_JWT_MALFORMED,
	       "aud: an object");
	o.audience = NULL;
	is_jwt(check_p("{\"exp\":4102444800,\"aud\":\"web\"}", &o), RS_JWT_OK,
	       "aud: any when not required");
}

static void test_sub_role(void)
{
	struct rs_jwt_options o = opts();
	struct rs_jwt_claims c;
	char p[512], *t;

	snprintf(p, sizeof(p), "{\"exp\":4102444800,\"sub\":\"%0*d\",\"role\":\"%0*d\"}",
		 RS_JWT_SUBJECT_MAX - 1, 0, RS_JWT_ROLE_MAX - 1, 0);
	t = make(HS256, p, SECRET);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_OK, "sub, role: longest that fit");
	ok(strlen(c.subject) == RS_JWT_SUBJECT_MAX - 1 && strlen(c.role) == RS_JWT_ROLE_MAX - 1,
	   "sub, role: copied whole");
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":4102444800,\"sub\":\"%0*d\"}", RS_JWT_SUBJECT_MAX, 0);
	is_jwt(check_p(p, &o), RS_JWT_MALFORMED, "sub: too long");
	snprintf(p, sizeof(p), "{\"exp\":4102444800,\"role\":\"%0*d\"}", RS_JWT_ROLE_MAX, 0);
	is_jwt(check_p(p, &o), RS_JWT_MALFORMED, "role: too long");
	is_jwt(check_p("{\"exp\":4102444800,\"sub\":42}", &o), RS_JWT_MALFORMED, "sub: a number");
	is_jwt(check_p("{\"exp\":4102444800,\"role\":[\"admin\"]}", &o), RS_JWT_MALFORMED,
	       "role: an array");
	t = make(HS256, "{\"exp\":4102444800,\"sub\":\"\\u00e9\"}", SECRET);
	is_jwt(rs_jwt_verify(t, &o, NOW_MS, &c), RS_JWT_OK, "sub: an escaped non-ASCII char");
	is_str(c.subject, "\xc3\xa9", "sub: decoded to UTF-8");
	free(t);
}

static void test_looks_like(void)
{
	static const struct {
		const char *s;
		bool want;
	} cases[] = {
		{ "a.b.c", true },
		{ "a.b.", true },          /* alg none: still a JWT, to be refused */
		{ "eyJh-_.eyJ0.abc_-09", true },
		{ "", false },
		{ "abc", false },
		{ "a.b", false },
		{ ".b.c", false },
		{ "a..c", false },
		{ "a.b.c.d", false },
		{ "a.b.c=", false },
		{ "a+b.c.d", false },
		{ "a b.c.d", false },
		{ "a.b.c ", false },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false },
	};
	char name[160];

	ok(rs_jwt_looks_like(kat_token), "looks like: the KAT token");
	ok(rs_jwt_looks_like(rfc_token), "looks like: the RFC token");
	ok(!rs_jwt_looks_like(NULL), "looks like: NULL is not");
	for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
		snprintf(name, sizeof(name), "looks like: '%s' %s", cases[i].s,
			 cases[i].want ? "is" : "is not");
		ok(rs_jwt_looks_like(cases[i].s) == cases[i].want, name);
	}
}

static void test_sign_errors(void)
{
	char *t;

	ok(!rs_jwt_sign("[1]", secret, 4), "sign: a JSON array refused");
	ok(!rs_jwt_sign("{\"a\":", secret, 4), "sign: bad JSON refused");
	ok(!rs_jwt_sign("{\"a\":1,\"a\":2}", secret, 4), "sign: duplicate keys refused");
	ok(!rs_jwt_sign("{}", secret, 0), "sign: an empty secret refused");
	ok(!rs_jwt_sign(NULL, secret, 4), "sign: NULL payload refused");
	t = rs_jwt_sign("{}", secret, 4);
	ok(t && rs_jwt_looks_like(t), "sign: {} makes a token");
	free(t);
}

static void test_names(void)
{
	static const char *const want[] = {
		"ok", "malformed", "algorithm not allowed", "bad signature", "expired",
		"not yet valid", "wrong issuer", "wrong audience", "no expiry",
	};

	for (int e = RS_JWT_OK; e <= RS_JWT_NO_EXP; e++)
		is_str(rs_jwt_error_name((enum rs_jwt_error)e), want[e], want[e]);
}

int main(void)
{
	test_known_answers();
	test_signature();
	test_header();
	test_shape();
	test_size();
	test_times();
	test_iss_aud();
	test_sub_role();
	test_looks_like();
	test_sign_errors();
	test_names();
	return tap_done();
}
