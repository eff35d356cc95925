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
