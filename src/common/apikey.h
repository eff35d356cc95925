/*
 * apikey: making API keys.  A key is 32 random bytes (RAND_bytes) written
 * as 64 lowercase hex digits; resync.conf stores only its SHA-256, also as
 * hex ([key NAME] hash), which is what resync-fcgi compares a presented
 * key's hash with.
 */
#ifndef RS_APIKEY_H
#define RS_APIKEY_H

#include <stddef.h>

#include "err.h"

#define RS_APIKEY_BYTES 32
#define RS_APIKEY_HEX (2 * RS_APIKEY_BYTES + 1)   /* with the NUL */

/* A new key; -1 with err when the system has no randomness to give. */
int rs_apikey_generate(char key[RS_APIKEY_HEX], struct rs_err *err);
/* SHA-256 of key as 64 hex digits. */
void rs_apikey_hash(const char *key, char hash[RS_APIKEY_HEX]);

#endif
