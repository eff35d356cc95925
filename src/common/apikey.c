/*
 * apikey: see apikey.h.
 */
#include "apikey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

#include "util.h"

int rs_apikey_generate(char key[RS_APIKEY_HEX], struct rs_err *err)
{
	unsigned char b[RS_APIKEY_BYTES];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return rs_err_set(err, "cannot make a key: the system's random number generator failed");
	rs_hex_encode(b, sizeof(b), key);
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

void rs_apikey_hash(const char *key, char hash[RS_APIKEY_HEX])
{
	unsigned char h[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)key, strlen(key), h);
	rs_hex_encode(h, sizeof(h), hash);
}

int64_t rs_apikey_retired_ms(const struct rs_key_times *t, int64_t grace_ms)
{
	return t->rotated_ms ? rs_sat_add(t->rotated_ms, grace_ms) : 0;
}

enum rs_key_state rs_apikey_state(const struct rs_key_times *t, int64_t now_ms,
				  int64_t grace_ms, int64_t rotation_interval_ms)
{
	if (t->expires_ms && now_ms >= t->expires_ms)
		return RS_KEY_EXPIRED;
	if (t->rotated_ms)
		return now_ms >= rs_apikey_retired_ms(t, grace_ms) ? RS_KEY_RETIRED
								    : RS_KEY_GRACE;
	if (t->created_ms && rotation_interval_ms > 0 &&
	    now_ms >= rs_sat_add(t->created_ms, rotation_interval_ms))
		return RS_KEY_DUE;
	return RS_KEY_ACTIVE;
}

const char *rs_apikey_state_name(enum rs_key_state s)
{
	static const char *const names[] = {
		"active", "due for rotation", "in its grace period", "retired", "expired",
	};
	return (unsigned)s < RS_ARRAY_SIZE(names) ? names[s] : "active";
}
