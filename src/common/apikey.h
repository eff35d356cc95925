/*
 * apikey: making API keys.  A key is 32 random bytes (RAND_bytes) written
 * as 64 lowercase hex digits; resync.conf stores only its SHA-256, also as
 * hex ([key NAME] hash), which is what resync-fcgi compares a presented
 * key's hash with.
 *
 * A key's life, from its section's times ([key] created, expires,
 * rotated) and [auth] key_grace and key_rotation_interval: active; due
 * for rotation once older than the interval (it still works: operators
 * are told); in its grace period once rotated, until rotated + grace;
 * then retired; expired from its expiry on, whatever else holds.
 */
#ifndef RS_APIKEY_H
#define RS_APIKEY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RS_APIKEY_BYTES 32
#define RS_APIKEY_HEX (2 * RS_APIKEY_BYTES + 1)   /* with the NUL */

/* A new key; -1 with err when the system has no randomness to give. */
int rs_apikey_generate(char key[RS_APIKEY_HEX], struct rs_err *err);
/* SHA-256 of key as 64 hex digits. */
void rs_apikey_hash(const char *key, char hash[RS_APIKEY_HEX]);

enum rs_key_state { RS_KEY_ACTIVE, RS_KEY_DUE, RS_KEY_GRACE, RS_KEY_RETIRED, RS_KEY_EXPIRED };

/* Wall-clock milliseconds; 0 = not set. */
struct rs_key_times {
	int64_t created_ms, expires_ms, rotated_ms;
};

enum rs_key_state rs_apikey_state(const struct rs_key_times *t, int64_t now_ms,
				  int64_t grace_ms, int64_t rotation_interval_ms);
/* "active", "due for rotation", ... */
const char *rs_apikey_state_name(enum rs_key_state s);
/* When a rotated key stops working (rotated + grace); 0 when not rotated. */
int64_t rs_apikey_retired_ms(const struct rs_key_times *t, int64_t grace_ms);

#endif
