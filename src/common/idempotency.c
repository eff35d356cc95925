/*
 * idempotency: the `idempotency` table (migration 7), see idempotency.h.
 *
 * Deliberate quirks:
 *  - Each call prepares and finalizes its statements: only unsafe requests
 *    that carry a key come here, too few for a statement cache (and its
 *    ownership) to pay.
 *  - begin decides in C, inside BEGIN IMMEDIATE, rather than in one
 *    conditional upsert: the write lock is taken before the row is read,
 *    so the read and the claim cannot be split by another connection, and
 *    the rules (expired, abandoned, mismatch, running, done) stay readable
 *    in one place.  A replay holds the write lock only while it copies the
 *    response.
 *  - On an error begin leaves *out at RS_IDEM_RUNNING, the answer that runs
 *    nothing, for a caller that looks at *out anyway.
 */
#include "idempotency.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define STATE_RUNNING "running"
#define STATE_DONE "done"
#define KEY_CHAR_MIN 0x21          /* '!': space and controls are out */
#define KEY_CHAR_MAX 0x7e          /* '~': DEL and non-ASCII are out */
#define STATUS_MIN 100
#define STATUS_MAX 599

/* "database 'PATH': cannot WHAT idempotency key 'KEY': <sqlite message>".
 * The key is valid by then, so printable and safe to quote. */
static int db_fail(struct rs_db *db, struct rs_err *err, const char *what,
		   const char *key)
{
	return rs_err_set(err, "database '%s': cannot %s idempotency key '%s': %s",
			  db->path, what, key, sqlite3_errmsg(db->handle));
}

static int prepare(struct rs_db *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db->handle, sql, -1, st, NULL) == SQLITE_OK ?
		       0 : -1;
}

static int exec(struct rs_db *db, const char *sql)
{
	return sqlite3_exec(db->handle, sql, NULL, NULL, NULL) == SQLITE_OK ?
		       0 : -1;
}

/* The table exists from migration 7 on; a read-only open of an older file
 * does not migrate it. */
static int check_db(struct rs_db *db, struct rs_err *err)
{
	if (!db)
		return rs_err_set(err, "no database given");
	if (db->schema_version < RS_IDEM_SCHEMA_VERSION)
		return rs_err_set(err,
				  "database '%s' has schema version %d, too old for idempotency keys (needs %d)",
				  db->path, db->schema_version,
				  RS_IDEM_SCHEMA_VERSION);
	return 0;
}

/* What every per-key call needs.  The key is not quoted back: it failed
 * validation, so it may hold anything. */
static int check_claim(struct rs_db *db, const char *scope, const char *key,
		       const unsigned char *fingerprint, struct rs_err *err)
{
	if (check_db(db, err))
		return -1;
	if (!scope || !*scope)
		return rs_err_set(err, "database '%s': no idempotency scope given",
				  db->path);
	if (!rs_idem_key_valid(key))
		return rs_err_set(err,
				  "invalid idempotency key: it must be 1 to %d printable ASCII characters without spaces",
				  RS_IDEM_KEY_MAX);
	if (!fingerprint)
		return rs_err_set(err, "database '%s': no fingerprint given for idempotency key '%s'",
				  db->path, key);
	return 0;
}

/* ?1 scope, ?2 key: the first parameters of every statement on one row. */
static int bind_key(sqlite3_stmt *st, const char *scope, const char *key)
{
	return sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC) != SQLITE_OK ||
	       sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC) != SQLITE_OK ?
		       -1 : 0;
}

/* And ?3 the fingerprint, for the statements that name one claim. */
static int bind_claim(sqlite3_stmt *st, const char *scope, const char *key,
		      const unsigned char *fingerprint)
{
	return bind_key(st, scope, key) ||
	       sqlite3_bind_blob(st, 3, fingerprint, RS_IDEM_FINGERPRINT_LEN,
				 SQLITE_STATIC) != SQLITE_OK ? -1 : 0;
}

bool rs_idem_key_valid(const char *key)
{
	size_t n;

	if (!key)
		return false;
	for (n = 0; key[n]; n++)
		if (n == RS_IDEM_KEY_MAX ||
		    (unsigned char)key[n] < KEY_CHAR_MIN ||
		    (unsigned char)key[n] > KEY_CHAR_MAX)
			return false;
	return n > 0;
}

void rs_idem_response_free(struct rs_idem_response *r)
{
	if (!r)
		return;
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- begin ----------------------------------------------------------------- */

/* Columns of the row begin reads. */
enum { C_STATE, C_FINGERPRINT, C_CREATED, C_EXPIRES, C_STATUS, C_HEADERS, C_BODY };

/* The stored response of a done row into *r (malloc'd). */
static int copy_response(struct rs_db *db, sqlite3_stmt *st, const char *key,
			 struct rs_idem_response *r, struct rs_err *err)
{
	const unsigned char *headers = sqlite3_column_text(st, C_HEADERS);
	const void *body;
	int status, n;

	if (sqlite3_column_type(st, C_STATUS) != SQLITE_INTEGER ||
	    (status = sqlite3_column_int(st, C_STATUS)) < STATUS_MIN ||
	    status > STATUS_MAX)
		return rs_err_set(err, "database '%s': idempotency key '%s' is done but has no valid status",
				  db->path, key);
	/* blob before bytes: the order SQLite documents as safe. */
	body = sqlite3_column_blob(st, C_BODY);
	n = sqlite3_column_bytes(st, C_BODY);
	r->headers = strdup(headers ? (const char *)headers : "");
	r->body = malloc((size_t)n + 1);
	if (!r->headers || !r->body) {
		rs_idem_response_free(r);
		return rs_err_errno(err, ENOMEM, "database '%s': cannot read idempotency key '%s'",
				    db->path, key);
	}
	if (n > 0)
		memcpy(r->body, body, (size_t)n);
	r->body[n] = '\0';
	r->body_len = (size_t)n;
	r->status = status;
	return 0;
}

/* What the row under the cursor means for a request with `fingerprint`;
 * *claim set when the row counts as absent (expired or abandoned). */
static int judge_row(struct rs_db *db, sqlite3_stmt *st, const char *key,
		     const unsigned char *fingerprint, int64_t now_ms,
		     int64_t lock_timeout_ms, bool *claim,
		     enum rs_idem_outcome *out, struct rs_idem_response *resp,
		     struct rs_err *err)
{
	const unsigned char *state = sqlite3_column_text(st, C_STATE);
	const void *fp = sqlite3_column_blob(st, C_FINGERPRINT);
	int fp_len = sqlite3_column_bytes(st, C_FINGERPRINT);
	int64_t created_ms = sqlite3_column_int64(st, C_CREATED);
	int64_t expires_ms = sqlite3_column_int64(st, C_EXPIRES);
	bool running, done;

	running = state && strcmp((const char *)state, STATE_RUNNING) == 0;
	done = state && strcmp((const char *)state, STATE_DONE) == 0;
	if (!running && !done)
		return rs_err_set(err, "database '%s': idempotency key '%s' has an unknown state '%s'",
				  db->path, key, state ? (const char *)state : "");
	*claim = expires_ms <= now_ms ||
		 (running && rs_sat_add(created_ms, lock_timeout_ms) <= now_ms);
	if (*claim)
		return 0;
	if (fp_len != RS_IDEM_FINGERPRINT_LEN ||
	    memcmp(fp, fingerprint, RS_IDEM_FINGERPRINT_LEN) != 0) {
		*out = RS_IDEM_MISMATCH;
		return 0;
	}
	if (running) {
		*out = RS_IDEM_RUNNING;
		return 0;
	}
	if (copy_response(db, st, key, resp, err))
		return -1;
	*out = RS_IDEM_REPLAY;
	return 0;
}

/* A fresh running row, over whatever row was there. */
static int claim_row(struct rs_db *db, const char *scope, const char *key,
		     const unsigned char *fingerprint, int64_t now_ms,
		     int64_t ttl_ms)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (prepare(db, "INSERT INTO idempotency (scope, key, fingerprint, state,"
			" created_ms, expires_ms) VALUES (?1, ?2, ?3, '" STATE_RUNNING "', ?4, ?5)"
			" ON CONFLICT (scope, key) DO UPDATE SET"
			" fingerprint = excluded.fingerprint, state = excluded.state,"
			" created_ms = excluded.created_ms, expires_ms = excluded.expires_ms,"
			" status = NULL, headers = NULL, body = NULL", &st) ||
	    bind_claim(st, scope, key, fingerprint) ||
	    sqlite3_bind_int64(st, 4, now_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, rs_sat_add(now_ms, ttl_ms)) != SQLITE_OK)
		rc = SQLITE_ERROR;
	else
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int rs_idem_begin(struct rs_db *db, const char *scope, const char *key,
		  const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		  int64_t now_ms, int64_t ttl_ms, int64_t lock_timeout_ms,
		  enum rs_idem_outcome *out, struct rs_idem_response *resp,
		  struct rs_err *err)
{
	enum rs_idem_outcome outcome = RS_IDEM_NEW;
	sqlite3_stmt *st = NULL;
	bool claim = true;
	int rc;

	*out = RS_IDEM_RUNNING;
	memset(resp, 0, sizeof(*resp));
	if (check_claim(db, scope, key, fingerprint, err))
		return -1;
	if (ttl_ms <= 0 || lock_timeout_ms <= 0)
		return rs_err_set(err, "database '%s': idempotency key '%s': ttl %lld ms and lock timeout %lld ms must be > 0",
				  db->path, key, (long long)ttl_ms,
				  (long long)lock_timeout_ms);

	if (exec(db, "BEGIN IMMEDIATE"))
		return db_fail(db, err, "claim", key);
	if (prepare(db, "SELECT state, fingerprint, created_ms, expires_ms,"
			" status, headers, body FROM idempotency"
			" WHERE scope = ?1 AND key = ?2", &st) ||
	    bind_key(st, scope, key)) {
		db_fail(db, err, "claim", key);
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (judge_row(db, st, key, fingerprint, now_ms, lock_timeout_ms,
			      &claim, &outcome, resp, err))
			goto fail;
	} else if (rc != SQLITE_DONE) {
		db_fail(db, err, "claim", key);
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((claim && claim_row(db, scope, key, fingerprint, now_ms, ttl_ms)) ||
	    exec(db, "COMMIT")) {
		db_fail(db, err, "claim", key);
		goto fail;
	}
	*out = claim ? RS_IDEM_NEW : outcome;
	return 0;

fail:
	/* After err has taken sqlite's message, which ROLLBACK would
	 * replace. */
	sqlite3_finalize(st);
	exec(db, "ROLLBACK");
	rs_idem_response_free(resp);
	return -1;
}

/* ---- finish, release, prune ------------------------------------------------ */

int rs_idem_finish(struct rs_db *db, const char *scope, const char *key,
		   const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		   int status, const char *headers, const void *body,
		   size_t body_len, int64_t now_ms, int64_t ttl_ms,
		   struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, changed;

	if (check_claim(db, scope, key, fingerprint, err))
		return -1;
	if (status < STATUS_MIN || status > STATUS_MAX)
		return rs_err_set(err, "database '%s': idempotency key '%s': invalid status %d",
				  db->path, key, status);
	if (!body && body_len)
		return rs_err_set(err, "database '%s': idempotency key '%s': no body given for %zu bytes",
				  db->path, key, body_len);
	if (ttl_ms <= 0)
		return rs_err_set(err, "database '%s': idempotency key '%s': ttl %lld ms must be > 0",
				  db->path, key, (long long)ttl_ms);

	/* An empty body is stored as a zero-length blob, never as the NULL
	 * that binding a NULL pointer would make: a done row always has
	 * its response, empty or not. */
	if (prepare(db, "UPDATE idempotency SET state = '" STATE_DONE "',"
			" status = ?4, headers = ?5, body = ?6, expires_ms = ?7"
			" WHERE scope = ?1 AND key = ?2 AND fingerprint = ?3"
			" AND state = '" STATE_RUNNING "'", &st) ||
	    bind_claim(st, scope, key, fingerprint) ||
	    sqlite3_bind_int(st, 4, status) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, headers ? headers : "", -1,
			      SQLITE_STATIC) != SQLITE_OK ||
	    (body_len ? sqlite3_bind_blob64(st, 6, body, body_len, SQLITE_STATIC) :
			sqlite3_bind_zeroblob(st, 6, 0)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, rs_sat_add(now_ms, ttl_ms)) != SQLITE_OK)
		rc = SQLITE_ERROR;
	else
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "finish", key);
		sqlite3_finalize(st);
		return -1;
	}
	changed = sqlite3_changes(db->handle);
	sqlite3_finalize(st);
	if (changed == 0)
		return rs_err_set(err, "database '%s': cannot finish idempotency key '%s': no running claim (released, or reclaimed as abandoned)",
				  db->path, key);
	return 0;
}

int rs_idem_release(struct rs_db *db, const char *scope, const char *key,
		    const unsigned char fingerprint[RS_IDEM_FINGERPRINT_LEN],
		    struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (check_claim(db, scope, key, fingerprint, err))
		return -1;
	if (prepare(db, "DELETE FROM idempotency WHERE scope = ?1 AND key = ?2"
			" AND fingerprint = ?3 AND state = '" STATE_RUNNING "'", &st) ||
	    bind_claim(st, scope, key, fingerprint))
		rc = SQLITE_ERROR;
	else
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		db_fail(db, err, "release", key);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int rs_idem_prune(struct rs_db *db, int64_t now_ms, uint64_t *removed,
		  struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (removed)
		*removed = 0;
	if (check_db(db, err))
		return -1;
	if (prepare(db, "DELETE FROM idempotency WHERE expires_ms <= ?1", &st) ||
	    sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK)
		rc = SQLITE_ERROR;
	else
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		rs_err_set(err, "database '%s': cannot prune idempotency keys: %s",
			   db->path, sqlite3_errmsg(db->handle));
	else if (removed)
		*removed = (uint64_t)sqlite3_changes(db->handle);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
