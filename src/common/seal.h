/*
 * seal: encryption at rest of cache values (in the cache log and in
 * snapshots) with AES-256-GCM from OpenSSL libcrypto.
 *
 * A keyring holds 1..RS_SEAL_MAX_KEYS keys.  The first is the current key:
 * rs_seal always uses it.  The others are older keys still accepted by
 * rs_unseal, so an operator rotates by putting a new key first in the key
 * file, taking a new snapshot (which re-seals every value with the new
 * key), and later removing the old line.  Each key is known by an id, the
 * first 8 bytes of SHA-256("resync-seal-key-id" || key) in lowercase hex:
 * derived, so ids never reveal a key and need no managing.  Callers store
 * the id beside each sealed value.
 *
 * A sealed value is nonce (12 random bytes) || ciphertext (as long as the
 * plaintext) || GCM tag (16 bytes).  Random 96-bit nonces keep the chance
 * of a repeat negligible up to about 2^32 seals per key (NIST SP 800-38D),
 * which is one more reason to rotate.  The aad is authenticated but not
 * stored: callers pass the cache key, so a sealed value moved to another
 * key no longer opens.
 *
 * Contract: rs_keyring_load/_from_keys return a keyring the caller frees
 * with rs_keyring_free, which wipes the key bytes.  A keyring is read-only
 * once built, so any number of threads may seal and unseal with it at once
 * without a lock.  rs_seal and rs_unseal return malloc'd buffers the
 * caller frees; on error they return -1, fill err and leave the output
 * pointer NULL.  rs_unseal never returns unauthenticated bytes.
 */
#ifndef RS_SEAL_H
#define RS_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define RS_SEAL_KEY_BYTES 32
#define RS_SEAL_NONCE_BYTES 12
#define RS_SEAL_TAG_BYTES 16
#define RS_SEAL_OVERHEAD (RS_SEAL_NONCE_BYTES + RS_SEAL_TAG_BYTES)
#define RS_SEAL_ID_CHARS 16      /* key id: 16 lowercase hex chars + NUL */
#define RS_SEAL_MAX_KEYS 16
#define RS_SEAL_KEY_FILE_MAX_BYTES (64 * 1024)

struct rs_keyring;

/* Read a key file.  Format: one key per line, 64 hex digits (32 bytes,
 * either case); blank lines and lines starting with '#' are ignored;
 * surrounding whitespace (CRLF included) is ignored.  The first key is the
 * current one.  Errors (-1, err set, *out NULL) name the path and, where
 * there is one, the line: cannot open or read, a file larger than
 * RS_SEAL_KEY_FILE_MAX_BYTES, a line that is not exactly 64 hex digits,
 * no key at all, more than RS_SEAL_MAX_KEYS keys, the same key twice, and
 * a file readable or writable by group or others ("'PATH' is readable by
 * others (mode 0644); chmod 600 it").  Every temporary copy of the key
 * bytes is wiped. */
int rs_keyring_load(struct rs_keyring **out, const char *path,
		    struct rs_err *err);

/* Build from raw keys (tests, and a future env/secret source); keys[0] is
 * current.  Errors: n is 0 or above RS_SEAL_MAX_KEYS, or a key repeats.
 * The caller's key array is not wiped. */
int rs_keyring_from_keys(struct rs_keyring **out,
			 const unsigned char (*keys)[RS_SEAL_KEY_BYTES],
			 size_t n, struct rs_err *err);

/* Wipes the keys and frees; NULL is fine. */
void rs_keyring_free(struct rs_keyring *k);

/* The current key's id (borrowed, lives as long as k). */
const char *rs_keyring_current_id(const struct rs_keyring *k);

/* Whether a key with exactly this id is in the ring (NULL: false). */
bool rs_keyring_has(const struct rs_keyring *k, const char *id);

size_t rs_keyring_count(const struct rs_keyring *k);

/* Seal plain (plen bytes; plain may be NULL when plen is 0) with the
 * current key: *out gets nonce || ciphertext || tag, malloc'd, and
 * *olen = plen + RS_SEAL_OVERHEAD.  aad (NULL with aadlen 0 for none) is
 * authenticated, not stored.  key_id, if not NULL, receives the current
 * key's id.  -1 with err when plen + RS_SEAL_OVERHEAD overflows, on
 * allocation failure or an OpenSSL failure. */
int rs_seal(const struct rs_keyring *k, const void *aad, size_t aadlen,
	    const void *plain, size_t plen, void **out, size_t *olen,
	    char key_id[RS_SEAL_ID_CHARS + 1], struct rs_err *err);

/* Open a value sealed with key key_id: checks the tag and returns the
 * plaintext in *plain (malloc'd, NUL-terminated for convenience; *plen
 * excludes the NUL).  Errors: "value sealed with key ID, which is not in
 * the key file"; an input shorter than RS_SEAL_OVERHEAD or a failed tag is
 * "value sealed with key ID does not authenticate (wrong key or
 * corrupted)"; a key_id that is not 16 lowercase hex chars is "value has a
 * malformed key id" (the stored id is not echoed then). */
int rs_unseal(const struct rs_keyring *k, const char *key_id,
	      const void *aad, size_t aadlen, const void *sealed, size_t slen,
	      void **plain, size_t *plen, struct rs_err *err);

/* HMAC-SHA256 of data with the key key_id (NULL: the current key), for
 * the audit chain; id_out (may be NULL) gets the key's id.  -1 when the
 * key is not in the ring. */
int rs_keyring_hmac(const struct rs_keyring *k, const char *key_id, const void *data,
		    size_t n, unsigned char out[32], char id_out[RS_SEAL_ID_CHARS + 1],
		    struct rs_err *err);

#endif
