/*
 * test_idempotency: the Idempotency-Key store on a driven clock, in a temp
 * database of its own: every outcome of begin, replay of a response with
 * NUL bytes, scopes, expiry at its boundary, abandoned claims, release,
 * prune, key validation, argument errors, and threads with connections of
 * their own racing to claim one key.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "idempotency.h"
#include "tap.h"
#include "testlib.h"
#include "testsql.h"

#define T0 1795450743000LL        /* a wall-clock start far from 0 */
#define TTL_MS (24 * 3600 * 1000LL)
#define LOCK_MS 60000LL
#define SCOPE "key:alice"
#define RACE_THREADS 4
#define RACE_ROUNDS 100
#define HELD_MS 300               /* how long the write lock is held */

static struct tmpdir tdir;

/* ---- helpers ----------------------------------------------------------------- */

static struct rs_db *db_open(const char *name, char *path)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;

	join(path, &tdir, name);
	if (rs_db_open(&db, path, NULL, &err)) {
		printf("# rs_db_open: %s\n", err.msg);
		exit(2);
	}
	return db;
}

#define FINGERPRINTS 16
static unsigned char fingerprints[FINGERPRINTS][RS_IDEM_FINGERPRINT_LEN];

/* Filled before any test (and any thread) runs, read-only after. */
static void make_fingerprints(void)
{
	for (int s = 0; s < FINGERPRINTS; s++)
		for (int i = 0; i < RS_IDEM_FINGERPRINT_LEN; i++)
			fingerprints[s][i] = (unsigned char)(s * 31 + i);
}

/* A fingerprint that differs for each seed 0..15. */
static const unsigned char *fp(int seed)
{
	return fingerprints[seed % FINGERPRINTS];
}

/* The outcome, or -1 on error (shown as a TAP comment).  A response is
 * freed unless the caller asked for it. */
static int begin_at(struct rs_db *db, const char *scope, const char *key,
		    int seed, int64_t now_ms, int64_t ttl_ms, int64_t lock_ms,
		    struct rs_idem_response *keep)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	enum rs_idem_outcome out;

	int rc;

	/* On an error r is zeroed, so the caller's copy is safe to read. */
	rc = rs_idem_begin(db, scope, key, fp(seed), now_ms, ttl_ms, lock_ms,
			   &out, &r, &err);
	if (rc)
		printf("#   begin '%s': %s\n", key, err.msg);
	if (keep)
		*keep = r;
	else
		rs_idem_response_free(&r);
	return rc ? -1 : (int)out;
}

static int begin(struct rs_db *db, const char *key, int seed, int64_t now_ms)
{
	return begin_at(db, SCOPE, key, seed, now_ms, TTL_MS, LOCK_MS, NULL);
}

static int finish(struct rs_db *db, const char *key, int seed, int status,
		  const char *headers, const void *body, size_t len,
		  int64_t now_ms, int64_t ttl_ms, struct rs_err *err)
{
	return rs_idem_finish(db, SCOPE, key, fp(seed), status, headers, body,
			      len, now_ms, ttl_ms, err);
}

static long long rows(const char *path)
{
	return sql_int(path, "SELECT count(*) FROM idempotency");
}

/* ---- schema ------------------------------------------------------------------ */

static void test_schema(void)
{
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("schema.db", path);

	ok(rs_db_schema_version() >= 7, "schema: the build has migration 7");
	is_int(db->schema_version, rs_db_schema_version(), "schema: a new database is at the build's version");
	is_int(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
			     " ('idempotency', 'idempotency_expires')"), 2,
	       "schema: table idempotency and its expiry index exist");
	is_int(sql_int(path, "SELECT count(*) FROM pragma_table_info('idempotency')"
			     " WHERE name IN ('scope', 'key', 'fingerprint', 'state',"
			     " 'created_ms', 'expires_ms', 'status', 'headers', 'body')"), 9,
	       "schema: every column is there");
	ok(sql(path, "INSERT INTO idempotency (scope, key, fingerprint, state,"
		     " created_ms, expires_ms) VALUES ('s', 'k', x'00', 'running', 1, 2)") != 0,
	   "schema: a fingerprint of other than 32 bytes is refused");
	ok(sql(path, "INSERT INTO idempotency (scope, key, fingerprint, state,"
		     " created_ms, expires_ms) VALUES ('s', 'k', zeroblob(32), 'odd', 1, 2)") != 0,
	   "schema: an unknown state is refused");
	rs_db_close(db);
}

/* ---- keys -------------------------------------------------------------------- */

static void test_keys(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	enum rs_idem_outcome out;
	char path[TEST_PATH_MAX], k255[RS_IDEM_KEY_MAX + 1], k256[RS_IDEM_KEY_MAX + 2];
	struct rs_db *db = db_open("keys.db", path);
	static const char *const bad[] = {
		"", "a b", "a\tb", "a\x01", "\x7f", "caf\xc3\xa9", "k\n",
	};

	memset(k255, 'k', RS_IDEM_KEY_MAX);
	k255[RS_IDEM_KEY_MAX] = '\0';
	memset(k256, 'k', RS_IDEM_KEY_MAX + 1);
	k256[RS_IDEM_KEY_MAX + 1] = '\0';

	ok(rs_idem_key_valid("a"), "keys: one character is valid");
	ok(rs_idem_key_valid("!~\"8e2f-4c1a_b7:x=y/z"), "keys: printable ASCII from ! to ~ is valid");
	ok(rs_idem_key_valid(k255), "keys: 255 characters are valid");
	ok(!rs_idem_key_valid(k256), "keys: 256 characters are not");
	ok(!rs_idem_key_valid(NULL), "keys: NULL is not");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[80];

		snprintf(name, sizeof(name), "keys: bad key %zu is not valid", i);
		ok(!rs_idem_key_valid(bad[i]), name);
	}

	is_int(rs_idem_begin(db, SCOPE, "", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err),
	       -1, "keys: begin refuses an empty key");
	has_str(err.msg, "invalid idempotency key", "keys: saying the key is invalid");
	is_int(rs_idem_begin(db, SCOPE, k256, fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err),
	       -1, "keys: begin refuses 256 characters");
	is_int(rs_idem_begin(db, SCOPE, "a b", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err),
	       -1, "keys: begin refuses a space");
	is_int(rs_idem_begin(db, SCOPE, "a\x01", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err),
	       -1, "keys: begin refuses a control character");
	ok(out == RS_IDEM_RUNNING && r.body == NULL && r.headers == NULL,
	   "keys: a refused begin leaves RUNNING and an empty response");
	is_int(rs_idem_finish(db, SCOPE, "a b", fp(1), 200, NULL, NULL, 0, T0, TTL_MS, &err),
	       -1, "keys: finish refuses an invalid key");
	is_int(rs_idem_release(db, SCOPE, "\x7f", fp(1), &err), -1,
	       "keys: release refuses an invalid key");
	is_int(rows(path), 0, "keys: nothing was stored");
	is_int(begin(db, k255, 1, T0), RS_IDEM_NEW, "keys: a 255-character key is claimed");
	rs_db_close(db);
}

/* ---- the life of one key ----------------------------------------------------- */

static void test_lifecycle(void)
{
	static const unsigned char body[] = { 'a', 0, 'b', 0, 0, 'c', 0xff };
	static const char headers[] = "Location: /api/jobs/42\r\nX-Request-ID: r-1\r\n";
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("life.db", path);

	is_int(begin(db, "k1", 1, T0), RS_IDEM_NEW, "life: a new key is claimed");
	is_int(sql_int(path, "SELECT count(*) FROM idempotency WHERE key = 'k1'"
			     " AND state = 'running' AND created_ms = 1795450743000"
			     " AND expires_ms = 1795450743000 + 86400000"),
	       1, "life: the row is running, created now, expiring after the ttl");
	is_int(begin(db, "k1", 1, T0 + 5), RS_IDEM_RUNNING,
	       "life: a repeat while it runs is RUNNING");
	is_int(begin(db, "k1", 2, T0 + 5), RS_IDEM_MISMATCH,
	       "life: another request with the key while it runs is MISMATCH");

	is_int(finish(db, "k1", 2, 201, headers, body, sizeof(body), T0 + 10, TTL_MS, &err),
	       -1, "life: finish with another fingerprint is refused");
	has_str(err.msg, "no running claim", "life: as no running claim");
	rs_err_clear(&err);
	is_int(finish(db, "k1", 1, 201, headers, body, sizeof(body), T0 + 10, TTL_MS, &err),
	       0, "life: finish stores the response");
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	is_int(sql_int(path, "SELECT expires_ms - 1795450743010 FROM idempotency"
			     " WHERE key = 'k1' AND state = 'done'"),
	       TTL_MS, "life: done, expiring a ttl after the finish");

	memset(&r, 0, sizeof(r));
	is_int(begin_at(db, SCOPE, "k1", 1, T0 + 20, TTL_MS, LOCK_MS, &r), RS_IDEM_REPLAY,
	       "life: a repeat after the finish is REPLAY");
	is_int(r.status, 201, "life: replayed status");
	is_str(r.headers, headers, "life: replayed headers");
	is_int(r.body_len, sizeof(body), "life: replayed body length, NULs included");
	ok(r.body && memcmp(r.body, body, sizeof(body)) == 0, "life: replayed body bytes");
	ok(r.body && r.body[r.body_len] == '\0', "life: body NUL-terminated past its length");
	rs_idem_response_free(&r);
	ok(r.body == NULL && r.headers == NULL && r.body_len == 0,
	   "life: response_free zeroes it");
	rs_idem_response_free(NULL);

	memset(&r, 0xa5, sizeof(r));
	is_int(begin_at(db, SCOPE, "k1", 3, T0 + 30, TTL_MS, LOCK_MS, &r), RS_IDEM_MISMATCH,
	       "life: another request with the key after it is done is MISMATCH");
	ok(r.body == NULL && r.headers == NULL && r.status == 0,
	   "life: and no response is handed out");
	is_int(finish(db, "k1", 1, 200, NULL, NULL, 0, T0 + 40, TTL_MS, &err), -1,
	       "life: a second finish is refused");
	has_str(err.msg, "idempotency key 'k1'", "life: naming the key");
	has_str(err.msg, path, "life: and the database");
	is_int(begin_at(db, SCOPE, "k1", 1, T0 + 50, TTL_MS, LOCK_MS, &r), RS_IDEM_REPLAY,
	       "life: the second finish changed nothing");
	is_int(r.status, 201, "life: still the first status");
	rs_idem_response_free(&r);

	/* An empty response: no headers, no body. */
	is_int(begin(db, "k2", 1, T0), RS_IDEM_NEW, "empty: claimed");
	is_int(finish(db, "k2", 1, 204, NULL, NULL, 0, T0, TTL_MS, &err), 0,
	       "empty: finish with no headers and no body");
	is_int(begin_at(db, SCOPE, "k2", 1, T0 + 1, TTL_MS, LOCK_MS, &r), RS_IDEM_REPLAY,
	       "empty: replayed");
	ok(r.status == 204 && r.headers && !r.headers[0] && r.body && r.body_len == 0,
	   "empty: status 204, headers \"\", a body of 0 bytes");
	rs_idem_response_free(&r);

	/* Other scopes have keys of their own. */
	is_int(begin_at(db, "key:bob", "k1", 9, T0 + 60, TTL_MS, LOCK_MS, NULL), RS_IDEM_NEW,
	       "scope: the same key in another scope is NEW");
	is_int(begin_at(db, "10.0.0.7", "k1", 9, T0 + 60, TTL_MS, LOCK_MS, NULL), RS_IDEM_NEW,
	       "scope: and in a third");
	is_int(begin_at(db, "key:bob", "k1", 9, T0 + 61, TTL_MS, LOCK_MS, NULL), RS_IDEM_RUNNING,
	       "scope: which runs on its own");
	is_int(begin(db, "k1", 1, T0 + 62), RS_IDEM_REPLAY,
	       "scope: the first scope's key is still done");
	rs_db_close(db);
}

/* ---- time -------------------------------------------------------------------- */

static void test_expiry(void)
{
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("expiry.db", path);

	is_int(begin_at(db, SCOPE, "done", 1, T0, 1000, LOCK_MS, NULL), RS_IDEM_NEW,
	       "expiry: claimed with a ttl of 1s");
	is_int(finish(db, "done", 1, 200, "", "x", 1, T0 + 10, 1000, &err), 0,
	       "expiry: finished at +10ms");
	is_int(begin_at(db, SCOPE, "done", 1, T0 + 1009, 1000, LOCK_MS, NULL), RS_IDEM_REPLAY,
	       "expiry: replayed 1ms before it expires");
	is_int(begin_at(db, SCOPE, "done", 2, T0 + 1009, 1000, LOCK_MS, NULL), RS_IDEM_MISMATCH,
	       "expiry: and still guarded against other requests");
	is_int(begin_at(db, SCOPE, "done", 2, T0 + 1010, 1000, LOCK_MS, NULL), RS_IDEM_NEW,
	       "expiry: at its expiry the key is free, for any request");
	is_int(sql_int(path, "SELECT count(*) FROM idempotency WHERE key = 'done'"
			     " AND state = 'running' AND status IS NULL AND body IS NULL"
			     " AND created_ms = 1795450744010"), 1,
	       "expiry: the old response is gone from the new claim");

	is_int(begin_at(db, SCOPE, "run", 1, T0, 1000, LOCK_MS, NULL), RS_IDEM_NEW,
	       "expiry: a running claim with a ttl shorter than the lock timeout");
	is_int(begin_at(db, SCOPE, "run", 1, T0 + 999, 1000, LOCK_MS, NULL), RS_IDEM_RUNNING,
	       "expiry: running 1ms before it expires");
	is_int(begin_at(db, SCOPE, "run", 1, T0 + 1000, 1000, LOCK_MS, NULL), RS_IDEM_NEW,
	       "expiry: an expired running claim is claimed again");
	rs_db_close(db);
}

static void test_abandoned(void)
{
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("abandoned.db", path);

	is_int(begin_at(db, SCOPE, "a", 1, T0, TTL_MS, 5000, NULL), RS_IDEM_NEW,
	       "abandoned: claimed");
	is_int(begin_at(db, SCOPE, "a", 1, T0 + 4999, TTL_MS, 5000, NULL), RS_IDEM_RUNNING,
	       "abandoned: running 1ms before the lock timeout");
	is_int(begin_at(db, SCOPE, "a", 1, T0 + 5000, TTL_MS, 5000, NULL), RS_IDEM_NEW,
	       "abandoned: at the lock timeout the claim is taken over");
	is_int(begin_at(db, SCOPE, "a", 1, T0 + 5001, TTL_MS, 5000, NULL), RS_IDEM_RUNNING,
	       "abandoned: the new claim runs from its own start");

	/* Taken over by a different request: the old claimant can neither
	 * store its response nor drop the new claim. */
	is_int(begin_at(db, SCOPE, "b", 1, T0, TTL_MS, 5000, NULL), RS_IDEM_NEW,
	       "abandoned: claimed by request 1");
	is_int(begin_at(db, SCOPE, "b", 2, T0 + 5000, TTL_MS, 5000, NULL), RS_IDEM_NEW,
	       "abandoned: taken over by request 2 (not MISMATCH)");
	is_int(finish(db, "b", 1, 200, NULL, "late", 4, T0 + 5001, TTL_MS, &err), -1,
	       "abandoned: request 1's late finish is refused");
	is_int(rs_idem_release(db, SCOPE, "b", fp(1), &err), 0,
	       "abandoned: request 1's release is no error");
	is_int(begin_at(db, SCOPE, "b", 2, T0 + 5002, TTL_MS, 5000, NULL), RS_IDEM_RUNNING,
	       "abandoned: and request 2 still holds the key");

	/* The lock timeout is for running rows only. */
	is_int(finish(db, "b", 2, 200, NULL, "ok", 2, T0 + 5003, TTL_MS, &err), 0,
	       "abandoned: request 2 finishes");
	is_int(begin_at(db, SCOPE, "b", 2, T0 + 60000, TTL_MS, 5000, NULL), RS_IDEM_REPLAY,
	       "abandoned: a done row long past the lock timeout is replayed");
	is_int(begin_at(db, SCOPE, "b", 3, T0 + 60000, TTL_MS, 5000, NULL), RS_IDEM_MISMATCH,
	       "abandoned: and still guarded");
	rs_db_close(db);
}

static void test_release(void)
{
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("release.db", path);

	is_int(begin(db, "r", 1, T0), RS_IDEM_NEW, "release: claimed");
	is_int(rs_idem_release(db, SCOPE, "r", fp(2), &err), 0,
	       "release: with another fingerprint is no error");
	is_int(begin(db, "r", 1, T0 + 1), RS_IDEM_RUNNING, "release: but keeps the claim");
	is_int(rs_idem_release(db, SCOPE, "r", fp(1), &err), 0, "release: by its claimant");
	is_int(rows(path), 0, "release: the row is gone");
	is_int(begin(db, "r", 2, T0 + 2), RS_IDEM_NEW,
	       "release: the key is free again, for any request");
	is_int(rs_idem_release(db, SCOPE, "absent", fp(1), &err), 0,
	       "release: of a key never claimed is no error");
	is_int(finish(db, "r", 2, 200, NULL, NULL, 0, T0 + 3, TTL_MS, &err), 0,
	       "release: finished");
	is_int(rs_idem_release(db, SCOPE, "r", fp(2), &err), 0,
	       "release: of a done key is no error");
	is_int(begin(db, "r", 2, T0 + 4), RS_IDEM_REPLAY, "release: but leaves the response");
	rs_db_close(db);
}

static void test_prune(void)
{
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("prune.db", path);
	uint64_t removed = 99;

	begin_at(db, SCOPE, "p1", 1, T0, 100, LOCK_MS, NULL);
	finish(db, "p1", 1, 200, NULL, "x", 1, T0, 100, &err);     /* done, T0+100 */
	begin_at(db, SCOPE, "p2", 1, T0, 200, LOCK_MS, NULL);      /* running, T0+200 */
	begin_at(db, "key:bob", "p3", 1, T0, 201, LOCK_MS, NULL);  /* T0+201 */
	begin_at(db, SCOPE, "p4", 1, T0, TTL_MS, LOCK_MS, NULL);
	is_int(rows(path), 4, "prune: four rows");

	is_int(rs_idem_prune(db, T0 + 99, &removed, &err), 0, "prune: before any expiry");
	is_int(removed, 0, "prune: removes nothing");
	is_int(rs_idem_prune(db, T0 + 200, &removed, &err), 0, "prune: at T0+200");
	is_int(removed, 2, "prune: removes the done and the running row expired by then");
	is_int(sql_int(path, "SELECT count(*) FROM idempotency WHERE key IN ('p3', 'p4')"), 2,
	       "prune: and only those");
	is_int(rows(path), 2, "prune: two rows left");
	is_int(rs_idem_prune(db, T0 + 200, &removed, &err), 0, "prune: again");
	is_int(removed, 0, "prune: removes nothing more");
	is_int(rs_idem_prune(db, T0 + TTL_MS, NULL, &err), 0, "prune: a NULL count is allowed");
	is_int(rows(path), 0, "prune: and everything expired is gone");
	rs_db_close(db);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_errors(void)
{
	struct rs_db_options ro = { .flags = RS_DB_READONLY };
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	enum rs_idem_outcome out;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("errors.db", path);
	uint64_t removed = 5;

	is_int(rs_idem_begin(db, SCOPE, "e", fp(1), T0, 0, LOCK_MS, &out, &r, &err), -1,
	       "errors: a ttl of 0 is refused");
	has_str(err.msg, "ttl 0 ms", "errors: saying so");
	is_int(rs_idem_begin(db, SCOPE, "e", fp(1), T0, TTL_MS, -1, &out, &r, &err), -1,
	       "errors: a negative lock timeout is refused");
	is_int(rs_idem_begin(db, "", "e", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err), -1,
	       "errors: an empty scope is refused");
	has_str(err.msg, "no idempotency scope", "errors: saying so");
	is_int(rs_idem_begin(db, NULL, "e", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err), -1,
	       "errors: a NULL scope is refused");
	is_int(rs_idem_begin(db, SCOPE, "e", NULL, T0, TTL_MS, LOCK_MS, &out, &r, &err), -1,
	       "errors: a NULL fingerprint is refused");
	is_int(rows(path), 0, "errors: nothing stored so far");

	is_int(begin(db, "e", 1, T0), RS_IDEM_NEW, "errors: claimed");
	is_int(finish(db, "e", 1, 99, NULL, NULL, 0, T0, TTL_MS, &err), -1,
	       "errors: status 99 is refused");
	has_str(err.msg, "invalid status 99", "errors: naming it");
	is_int(finish(db, "e", 1, 600, NULL, NULL, 0, T0, TTL_MS, &err), -1,
	       "errors: status 600 is refused");
	is_int(finish(db, "e", 1, 200, NULL, NULL, 5, T0, TTL_MS, &err), -1,
	       "errors: a NULL body of 5 bytes is refused");
	is_int(finish(db, "e", 1, 200, NULL, "x", 1, T0, 0, &err), -1,
	       "errors: finish with a ttl of 0 is refused");
	is_int(begin(db, "e", 1, T0 + 1), RS_IDEM_RUNNING, "errors: the claim is still running");

	/* A file from before migration 7, opened read-only (no migration). */
	rs_db_close(db);
	sql(path, "DROP TABLE idempotency; DROP TABLE audit;"
		  " UPDATE meta SET value = '6' WHERE key = 'schema_version';"
		  " PRAGMA user_version = 6;");
	db = NULL;
	if (rs_db_open(&db, path, &ro, &err)) {
		ok(0, "old schema: open read-only");
		printf("#   %s\n", err.msg);
		return;
	}
	is_int(rs_idem_begin(db, SCOPE, "e", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err), -1,
	       "old schema: begin is an error");
	has_str(err.msg, "schema version 6, too old for idempotency keys",
		"old schema: saying the schema is too old");
	is_int(rs_idem_prune(db, T0, &removed, &err), -1, "old schema: prune is an error");
	is_int(removed, 0, "old schema: having removed nothing");
	rs_db_close(db);
}

/* ---- threads ----------------------------------------------------------------- */

struct racer {
	const char *path;
	pthread_barrier_t *start;
	int outcome[RACE_ROUNDS];    /* enum rs_idem_outcome, -1 on error */
	char error[RS_ERR_MSG_MAX];
};

/* One connection per thread, as db.h requires; each round all threads
 * leave the barrier together and claim the round's key. */
static void *race(void *arg)
{
	struct racer *me = arg;
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	enum rs_idem_outcome out;
	struct rs_db *db = NULL;
	char key[32];

	if (rs_db_open(&db, me->path, NULL, &err))
		snprintf(me->error, sizeof(me->error), "%s", err.msg);
	for (int i = 0; i < RACE_ROUNDS; i++) {
		pthread_barrier_wait(me->start);
		me->outcome[i] = -1;
		if (!db)
			continue;
		snprintf(key, sizeof(key), "race-%d", i);
		if (rs_idem_begin(db, SCOPE, key, fp(1), T0, TTL_MS, LOCK_MS,
				  &out, &r, &err)) {
			snprintf(me->error, sizeof(me->error), "%s", err.msg);
			continue;
		}
		rs_idem_response_free(&r);
		me->outcome[i] = (int)out;
	}
	rs_db_close(db);
	return NULL;
}

static void test_race(void)
{
	static struct racer racers[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	pthread_barrier_t start;
	char path[TEST_PATH_MAX];
	int rounds_one_new = 0, errors = 0, others_running = 1;

	/* Created (and migrated) before the threads start. */
	rs_db_close(db_open("race.db", path));
	pthread_barrier_init(&start, NULL, RACE_THREADS);
	for (int t = 0; t < RACE_THREADS; t++) {
		racers[t].path = path;
		racers[t].start = &start;
		pthread_create(&th[t], NULL, race, &racers[t]);
	}
	for (int t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&start);

	for (int i = 0; i < RACE_ROUNDS; i++) {
		int news = 0;

		for (int t = 0; t < RACE_THREADS; t++) {
			int o = racers[t].outcome[i];

			news += o == RS_IDEM_NEW;
			errors += o < 0;
			if (o != RS_IDEM_NEW && o != RS_IDEM_RUNNING)
				others_running = 0;
		}
		rounds_one_new += news == 1;
	}
	for (int t = 0; t < RACE_THREADS; t++)
		if (racers[t].error[0])
			printf("#   thread %d: %s\n", t, racers[t].error);
	is_int(errors, 0, "race: no begin failed");
	is_int(rounds_one_new, RACE_ROUNDS,
	       "race: in every round exactly one thread got NEW");
	ok(others_running, "race: and the others RUNNING");
	is_int(rows(path), RACE_ROUNDS, "race: one row per key");
}

/* The same race made certain: a third connection holds the write lock
 * while the threads start their begin, so all of them are inside it at
 * once when the lock is let go.  A claim that read the row before taking
 * the lock would let every one of them see the key free. */
struct waiter {
	const char *path;
	pthread_barrier_t *ready;
	int outcome;
	char error[RS_ERR_MSG_MAX];
};

static void *wait_and_claim(void *arg)
{
	struct waiter *me = arg;
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response r;
	enum rs_idem_outcome out;
	struct rs_db *db = NULL;

	me->outcome = -1;
	if (rs_db_open(&db, me->path, NULL, &err))
		snprintf(me->error, sizeof(me->error), "%s", err.msg);
	pthread_barrier_wait(me->ready);
	if (!db)
		return NULL;
	if (rs_idem_begin(db, SCOPE, "held", fp(1), T0, TTL_MS, LOCK_MS, &out, &r, &err))
		snprintf(me->error, sizeof(me->error), "%s", err.msg);
	else
		me->outcome = (int)out;
	rs_idem_response_free(&r);
	rs_db_close(db);
	return NULL;
}

static void test_race_held(void)
{
	static struct waiter waiters[RACE_THREADS];
	struct rs_err err = RS_ERR_INIT;
	pthread_t th[RACE_THREADS];
	pthread_barrier_t ready;
	char path[TEST_PATH_MAX];
	struct rs_db *blocker = db_open("held.db", path);
	int news = 0, running = 0;

	if (rs_db_exec(blocker, "BEGIN IMMEDIATE", &err)) {
		ok(0, "held: the blocker takes the write lock");
		printf("#   %s\n", err.msg);
		rs_db_close(blocker);
		return;
	}
	pthread_barrier_init(&ready, NULL, RACE_THREADS + 1);
	for (int t = 0; t < RACE_THREADS; t++) {
		waiters[t].path = path;
		waiters[t].ready = &ready;
		pthread_create(&th[t], NULL, wait_and_claim, &waiters[t]);
	}
	pthread_barrier_wait(&ready);
	/* Well inside the 5s busy timeout the threads wait with. */
	usleep(HELD_MS * 1000);
	is_int(rs_db_exec(blocker, "COMMIT", &err), 0, "held: the blocker lets go");
	for (int t = 0; t < RACE_THREADS; t++) {
		pthread_join(th[t], NULL);
		if (waiters[t].error[0])
			printf("#   thread %d: %s\n", t, waiters[t].error);
		news += waiters[t].outcome == RS_IDEM_NEW;
		running += waiters[t].outcome == RS_IDEM_RUNNING;
	}
	pthread_barrier_destroy(&ready);
	is_int(news, 1, "held: exactly one thread got NEW");
	is_int(running, RACE_THREADS - 1, "held: the others RUNNING");
	rs_db_close(blocker);
}

int main(void)
{
	if (make_tmpdir(&tdir, "idempotency") < 0) {
		perror("mkdtemp");
		return 2;
	}
	make_fingerprints();
	test_schema();
	test_keys();
	test_lifecycle();
	test_expiry();
	test_abandoned();
	test_release();
	test_prune();
	test_errors();
	test_race();
	test_race_held();
	remove_tmpdir(&tdir);
	return tap_done();
}
