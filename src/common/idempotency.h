/*
 * idempotency: the Idempotency-Key store (draft-ietf-httpapi-idempotency-
 * key-header, as Stripe does it), in the `idempotency` table (migration 7).
 *
 * The responder computes, for an unsafe request that carries a key, a
 * fingerprint (SHA-256 over method, path, query and body) and a scope (the
 * API key name, or the client address when anonymous), and asks
 * rs_idem_begin what to do.  Keys are per scope: two clients using the same
 * key never see each other's rows.  A row is in one of two states:
 *
 *   running  claimed by a request that has not finished; a repeat gets
 *            RS_IDEM_RUNNING (409), a different request with the key
 *            RS_IDEM_MISMATCH (422)
 *   done     holds the response; a repeat with the same fingerprint gets
 *            RS_IDEM_REPLAY and the stored response, a different request
 *            RS_IDEM_MISMATCH
 *
 * A row whose expires_ms has passed is treated as absent: begin claims the
 * key afresh, and rs_idem_prune deletes such rows.  A running row older
 * than lock_timeout_ms is taken to be left over by a crashed process and is
 * treated as absent too, whatever its fingerprint, so a crash cannot block
 * a key until it expires.  lock_timeout_ms must therefore be longer than a
 * request can run; a request still running past it may find its claim
 * taken (its finish then fails, see below).
 *
 * The claim is one BEGIN IMMEDIATE transaction: threads (each with its own
 * struct rs_db) and processes sharing the file may race on one key, and
 * exactly one of them must get RS_IDEM_NEW.  finish and release are single
 * statements that touch only a running row with the caller's fingerprint,
 * so a request whose abandoned claim was reclaimed by a different request
 * cannot overwrite or drop the newer claim.
 *
 * Times are wall-clock milliseconds from the caller (the processes sharing
 * the file share the clock).  All functions return 0, or -1 with err set
 * ("database 'PATH': ..."), and never print.  A struct rs_idem_response
 * filled by rs_idem_begin is the caller's, freed with rs_idem_response_free.
 */
#ifndef RS_IDEMPOTENCY_H
#define RS_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

#define RS_IDEM_KEY_MAX 255           /* bytes, after the caller unquotes it */
#define RS_IDEM_FINGERPRINT_LEN 32    /* SHA-256 */
#define RS_IDEM_SCHEMA_VERSION 7      /* the migration that made the table */

enum rs_idem_outcome {
	RS_IDEM_NEW,       /* claimed: run the request, then rs_idem_finish or rs_idem_release */
	RS_IDEM_REPLAY,    /* done before with the same fingerprint: *resp filled */
	RS_IDEM_RUNNING,   /* another request with this key is still running: 409 */
	RS_IDEM_MISMATCH,  /* the key was used for a different request: 422 */
};

/* A stored response.  headers is never NULL ("" when none were stored);
 * body is never NULL either and holds body_len bytes, which may include
 * NULs, followed by a NUL that body_len does not count. */
struct rs_idem_response {
	int status;
	char *headers;
	unsigned char *body;
	size_t body_len;
};

/* 1 to RS_IDEM_KEY_MAX printable ASCII characters (0x21..0x7e): no space,
 * no control character, nothing outside ASCII.  NULL is not valid. */
bool rs_idem_key_valid(const char *key);

/* Claim `key` in `scope` for the request with `fingerprint`, or say why
 * not, in *out.  A new claim expires at now_ms + ttl_ms.  On RS_IDEM_REPLAY
 * *resp is filled (the caller frees it); on every other outcome, and on
 * error, *resp is zeroed.  On error *out is RS_IDEM_RUNNING, which runs
 * nothing.  ttl_ms and lock_timeout_ms must be > 0, scope non-empty and
 * the key valid (rs_idem_key_valid). */
int rs_idem_begin(struct rs_db *db, const char *scope, const char *key,
		  const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		  int64_t now_ms, int64_t ttl_ms, int64_t lock_timeout_ms,
		  enum rs_idem_outcome *out, struct rs_idem_response *resp,
		  struct rs_err *err);

/* Store the response of a claimed request and mark it done; it is then
 * replayed until now_ms + ttl_ms.  headers may be NULL (none), body NULL
 * only when body_len is 0.  status must be 100..599.  An error when the
 * claim is gone (released, or reclaimed as abandoned): "no running claim". */
int rs_idem_finish(struct rs_db *db, const char *scope, const char *key,
		   const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		   int status, const char *headers, const void *body,
		   size_t body_len, int64_t now_ms, int64_t ttl_ms,
		   struct rs_err *err);

/* Drop a claim without storing a response, so the key can be used again
 * (the request failed before the handler, or with a retryable 5xx).  No
 * running claim with this fingerprint is not an error: there is nothing
 * left to release. */
int rs_idem_release(struct rs_db *db, const char *scope, const char *key,
		    const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		    struct rs_err *err);

/* Delete the rows expired at now_ms (expires_ms <= now_ms); the number
 * deleted in *removed (may be NULL). */
int rs_idem_prune(struct rs_db *db, int64_t now_ms, uint64_t *removed,
		  struct rs_err *err);

/* Free what the response holds and zero it; NULL is allowed. */
void rs_idem_response_free(struct rs_idem_response *r);

#endif
