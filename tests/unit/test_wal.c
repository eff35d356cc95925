/*
 * test_wal: the cache write-ahead log: what goes in comes out, in one
 * gapless sequence, whoever writes it; corruption and gaps stop a read at
 * the right record; commit failures degrade the log and fail (always) or
 * keep (batch) the records.  Each test has a temp directory of its own.
 * Commit throughput is printed as TAP comments, never asserted.
 */
#include "db.h"
#include "histogram.h"
#include "tap.h"
#include "testlib.h"
#include "testsql.h"
#include "util.h"
#include "wal.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_STEP_US 5000
#define POLL_LIMIT_MS 2000
#define BUSY_TEST_MS 50          /* commits stall this long on a lock */
#define GOT_MAX_BYTES 256

/* ---- helpers ------------------------------------------------------------- */

struct got_rec {
	int64_t seq, time_ms, stored_ms, expires_ms;
	int op;
	char origin[64];
	unsigned char key[GOT_MAX_BYTES], val[GOT_MAX_BYTES];
	size_t klen, vlen;
	bool has_val;
};

/* What a read delivered; stop_after > 0 makes the callback return 7 after
 * that many records. */
struct got {
	struct got_rec *r;
	size_t n, cap;
	size_t stop_after;
};

static int collect(void *arg, const struct rs_wal_record *rec)
{
	struct got *g = arg;
	struct got_rec *x;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 64;
		struct got_rec *p = realloc(g->r, cap * sizeof(*p));

		if (!p)
			return -1;
		g->r = p;
		g->cap = cap;
	}
	x = &g->r[g->n++];
	memset(x, 0, sizeof(*x));
	x->seq = rec->seq;
	x->time_ms = rec->time_ms;
	x->stored_ms = rec->stored_ms;
	x->expires_ms = rec->expires_ms;
	x->op = (int)rec->op;
	snprintf(x->origin, sizeof(x->origin), "%s", rec->origin);
	x->klen = rec->klen < GOT_MAX_BYTES ? rec->klen : GOT_MAX_BYTES;
	memcpy(x->key, rec->key, x->klen);
	x->has_val = rec->val != NULL;
	x->vlen = rec->vlen < GOT_MAX_BYTES ? rec->vlen : GOT_MAX_BYTES;
	if (rec->val)
		memcpy(x->val, rec->val, x->vlen);
	if (g->stop_after && g->n == g->stop_after)
		return 7;
	return 0;
}

static void got_free(struct got *g)
{
	free(g->r);
	memset(g, 0, sizeof(*g));
}

/* Read everything after `after` into a fresh *g; the call's return. */
static int read_log(const char *path, int64_t after, const char *skip,
		    struct got *g, struct rs_wal_read_report *rep)
{
	struct rs_err err = RS_ERR_INIT;
	int rc;

	got_free(g);
	rc = rs_wal_read(path, after, skip, collect, g, rep, &err);
	if (rc < 0)
		printf("#   read: %s\n", err.msg);
	return rc;
}

static bool seqs_continuous(const struct got *g, int64_t first)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->r[i].seq != first + (int64_t)i) {
			printf("#   record %zu has seq %" PRId64
			       ", expected %" PRId64 "\n",
			       i, g->r[i].seq, first + (int64_t)i);
			return false;
		}
	return true;
}

static bool key_is(const struct got_rec *r, const char *key)
{
	return r->klen == strlen(key) && memcmp(r->key, key, r->klen) == 0;
}

static int open_wal(struct rs_wal **w, const char *path,
		    enum rs_wal_sync sync, const char *origin,
		    const struct rs_wal_options *more)
{
	struct rs_wal_options o = { 0 };
	struct rs_err err = RS_ERR_INIT;

	if (more)
		o = *more;
	o.db_path = path;
	o.sync = sync;
	o.origin = origin;
	if (rs_wal_open(w, &o, &err)) {
		printf("#   open: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int append_kv(struct rs_wal *w, const char *origin, const char *key,
		     const char *val, int64_t *seq, struct rs_err *err)
{
	struct rs_wal_record r = {
		.origin = origin,
		.op = RS_WAL_SET,
		.key = key,
		.klen = strlen(key),
		.val = val,
		.vlen = strlen(val),
		.stored_ms = 1000,
		.expires_ms = 2000,
	};

	return rs_wal_append(w, &r, seq, err);
}


/* A second connection holding the write lock, as another process would. */
static sqlite3 *block_writers(const char *path)
{
	sqlite3 *h = NULL;

	if (sqlite3_open(path, &h) != SQLITE_OK ||
	    sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		    SQLITE_OK) {
		printf("#   cannot block '%s': %s\n", path, sqlite3_errmsg(h));
		sqlite3_close(h);
		return NULL;
	}
	return h;
}

static void unblock_writers(sqlite3 *h)
{
	if (!h)
		return;
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(h);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	usleep((useconds_t)us);
}

/* A database with the schema but no wal open on it. */
static int make_db(const char *path)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;

	if (rs_db_open(&db, path, NULL, &err)) {
		printf("#   %s\n", err.msg);
		return -1;
	}
	rs_db_close(db);
	return 0;
}

/* ---- checksum ----------------------------------------------------------- */


/* The encoding documented at the top of wal.c, written out again. */
static uint32_t reference_checksum(const struct rs_wal_record *r)
{
	unsigned char present = r->val != NULL;
	uint32_t c = 0xffffffffu;

	c = ref_crc32c_u64(c, (uint64_t)r->time_ms);
	c = ref_crc32c_u64(c, strlen(r->origin));
	c = ref_crc32c(c, r->origin, strlen(r->origin));
	c = ref_crc32c_u64(c, (uint64_t)r->op);
	c = ref_crc32c_u64(c, r->klen);
	c = ref_crc32c(c, r->key, r->klen);
	c = ref_crc32c(c, &present, 1);
	c = ref_crc32c_u64(c, present ? r->vlen : 0);
	if (present)
		c = ref_crc32c(c, r->val, r->vlen);
	c = ref_crc32c_u64(c, (uint64_t)r->stored_ms);
	c = ref_crc32c_u64(c, (uint64_t)r->expires_ms);
	c = ref_crc32c_u64(c, (uint64_t)r->seq);
	return ~c;
}

static void test_checksum(void)
{
	static const unsigned char val[] = "v\0al\xff ue that spans more than eight bytes";
	struct rs_wal_record r = {
		.seq = 41,
		.time_ms = 1700000000123,
		.origin = "resyncctl",
		.op = RS_WAL_SET,
		.key = "k\0y",
		.klen = 3,
		.val = val,
		.vlen = sizeof(val) - 1,
		.stored_ms = -5,
		.expires_ms = 1700000060123,
	};
	uint32_t a, b;

	is_int(~ref_crc32c(0xffffffffu, "123456789", 9), 0xE3069283u,
	       "checksum: reference CRC-32C of \"123456789\" is 0xE3069283");
	is_int(rs_wal_checksum(&r), reference_checksum(&r),
	       "checksum: matches the documented encoding");
	a = rs_wal_checksum(&r);
	r.seq = 42;
	ok(rs_wal_checksum(&r) != a, "checksum: covers seq");
	r.seq = 41;
	r.vlen = 0;
	a = rs_wal_checksum(&r);
	r.val = NULL;
	b = rs_wal_checksum(&r);
	ok(a != b, "checksum: empty value differs from no value");
	is_int(b, reference_checksum(&r), "checksum: no value as documented");
	r.key = "k\0";
	r.klen = 2;
	r.val = "y";
	r.vlen = 1;
	ok(rs_wal_checksum(&r) != reference_checksum(&(struct rs_wal_record){
			.seq = 41, .time_ms = 1700000000123,
			.origin = "resyncctl", .op = RS_WAL_SET,
			.key = "k\0y", .klen = 3, .val = "", .vlen = 0,
			.stored_ms = -5, .expires_ms = 1700000060123 }),
	   "checksum: a byte moved from key to value changes it");
}

/* ---- round trip ----------------------------------------------------------- */

static void test_roundtrip(void)
{
	static const unsigned char bkey[] = { 'a', 0, 'b', 0xff };
	static const unsigned char bval[] = { 0, 1, 0, '{', '}', 0 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	int64_t before = rs_now_ms();
	struct rs_wal_record recs[] = {
		{ .op = RS_WAL_SET, .key = bkey, .klen = sizeof(bkey),
		  .val = bval, .vlen = sizeof(bval), .stored_ms = 111,
		  .expires_ms = 222 },
		{ .op = RS_WAL_SET, .key = "empty", .klen = 5, .val = NULL,
		  .vlen = 0, .stored_ms = 3, .expires_ms = 4 },
		{ .op = RS_WAL_DELETE, .key = bkey, .klen = sizeof(bkey),
		  .val = "ignored", .vlen = 7, .stored_ms = 9 },
		{ .op = RS_WAL_PURGE, .key = "user:", .klen = 5 },
		{ .op = RS_WAL_PURGE, .key = NULL, .klen = 0,
		  .origin = "resyncctl", .time_ms = 12345 },
	};
	size_t i;

	if (!ok(make_tmpdir(&t, "wal-roundtrip") == 0, "roundtrip: temp dir"))
		return;
	join(path, &t, "r.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "node-a", NULL)) {
		ok(0, "roundtrip: open");
		remove_tmpdir(&t);
		return;
	}
	for (i = 0; i < RS_ARRAY_SIZE(recs); i++)
		if (rs_wal_append(w, &recs[i], NULL, &err))
			printf("#   append %zu: %s\n", i, err.msg);
	is_int(rs_wal_flush(w, &err), 0, "roundtrip: flush");
	rs_wal_get_stats(w, &st);
	is_int(st.appended, 5, "roundtrip: stats appended 5");
	is_int(st.committed, 5, "roundtrip: stats committed 5");
	is_int(st.queued, 0, "roundtrip: stats nothing queued after flush");
	is_int(st.last_seq, 5, "roundtrip: stats last_seq 5");
	ok(st.groups >= 1 && st.groups <= 5, "roundtrip: stats groups 1..5");
	ok(!st.degraded && st.commit_failures == 0,
	   "roundtrip: not degraded, no failures");

	is_int(read_log(path, 0, NULL, &g, &rep), 0, "roundtrip: read");
	is_int(g.n, 5, "roundtrip: five records back");
	ok(!rep.stopped, "roundtrip: no bad record");
	is_int(rep.records, 5, "roundtrip: report counts five");
	is_int(rep.first_seq, 1, "roundtrip: first seq 1");
	is_int(rep.last_seq, 5, "roundtrip: last seq 5");
	ok(g.n == 5 && seqs_continuous(&g, 1), "roundtrip: seqs 1..5");
	if (g.n == 5) {
		struct got_rec *r = g.r;

		ok(r[0].op == RS_WAL_SET && r[0].klen == sizeof(bkey) &&
			   memcmp(r[0].key, bkey, sizeof(bkey)) == 0,
		   "roundtrip: binary key with NUL bytes");
		ok(r[0].has_val && r[0].vlen == sizeof(bval) &&
			   memcmp(r[0].val, bval, sizeof(bval)) == 0,
		   "roundtrip: binary value with NUL bytes");
		ok(r[0].stored_ms == 111 && r[0].expires_ms == 222,
		   "roundtrip: stored and expiry times");
		is_str(r[0].origin, "node-a", "roundtrip: the wal's origin");
		ok(r[0].time_ms >= before && r[0].time_ms <= rs_now_ms(),
		   "roundtrip: time 0 means now");
		ok(r[1].op == RS_WAL_SET && r[1].has_val && r[1].vlen == 0,
		   "roundtrip: empty value is a value");
		ok(r[2].op == RS_WAL_DELETE && !r[2].has_val &&
			   r[2].stored_ms == 0,
		   "roundtrip: delete has no value, times 0");
		ok(r[3].op == RS_WAL_PURGE && key_is(&r[3], "user:"),
		   "roundtrip: purge with prefix");
		ok(r[4].op == RS_WAL_PURGE && r[4].klen == 0,
		   "roundtrip: purge everything (empty prefix)");
		is_str(r[4].origin, "resyncctl",
		       "roundtrip: per-record origin");
		is_int(r[4].time_ms, 12345, "roundtrip: given time kept");
	}
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"
			     " WHERE seq = 2 AND value IS NOT NULL"),
	       1, "roundtrip: empty value stored as a BLOB, not NULL");

	{
		struct rs_wal_record bad = { .op = (enum rs_wal_op)9 };

		is_int(rs_wal_append(w, &bad, NULL, &err), -1,
		       "roundtrip: invalid op refused");
		is_str(err.msg, "invalid cache log op 9",
		       "roundtrip: message names the op");
	}
	is_int(rs_wal_close(w, &err), 0, "roundtrip: close");

	/* The callback can stop the read with a value of its own. */
	got_free(&g);
	g.stop_after = 3;
	is_int(rs_wal_read(path, 0, NULL, collect, &g, &rep, &err), 7,
	       "roundtrip: callback's non-zero return is returned");
	is_int(g.n, 3, "roundtrip: and stops the read");
	got_free(&g);
	remove_tmpdir(&t);
}

/* ---- sync modes ------------------------------------------------------------ */

static void test_always(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	int64_t seq = -1;

	if (!ok(make_tmpdir(&t, "wal-always") == 0, "always: temp dir"))
		return;
	join(path, &t, "a.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", NULL)) {
		ok(0, "always: open");
		remove_tmpdir(&t);
		return;
	}
	is_int(append_kv(w, NULL, "k1", "v1", &seq, &err), 0,
	       "always: append");
	is_int(seq, 1, "always: returns seq 1");
	is_int(read_log(path, 0, NULL, &g, &rep), 0,
	       "always: a second reader reads at once");
	ok(g.n == 1 && key_is(&g.r[0], "k1"), "always: and sees the record");
	is_int(append_kv(w, NULL, "k2", "v2", &seq, &err), 0,
	       "always: append again");
	is_int(seq, 2, "always: returns seq 2");
	is_int(read_log(path, 1, NULL, &g, &rep), 0, "always: read after 1");
	ok(g.n == 1 && g.r[0].seq == 2 && key_is(&g.r[0], "k2"),
	   "always: sees only the second");
	is_int(rs_wal_close(w, &err), 0, "always: close");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_batch_interval(void)
{
	struct rs_wal_options more = { .sync_interval_ms = 50 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[32];
	double t0, took = -1;
	int64_t seq = -1;
	int i;

	if (!ok(make_tmpdir(&t, "wal-batch") == 0, "batch: temp dir"))
		return;
	join(path, &t, "b.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", &more)) {
		ok(0, "batch: open");
		remove_tmpdir(&t);
		return;
	}
	t0 = now_s();
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		append_kv(w, NULL, key, "v", &seq, &err);
	}
	is_int(seq, 0, "batch: append sets seq 0");
	while (now_s() - t0 < POLL_LIMIT_MS / 1000.0) {
		if (sql_int(path, "SELECT count(*) FROM cache_log") == 3) {
			took = now_s() - t0;
			break;
		}
		sleep_us(POLL_STEP_US);
	}
	ok(took >= 0, "batch: committed within the interval without a flush");
	printf("# batch: 3 records visible after %.0f ms (interval 50 ms)\n",
	       took * 1000);
	is_int(read_log(path, 0, NULL, &g, &rep), 0, "batch: read");
	ok(g.n == 3 && seqs_continuous(&g, 1), "batch: seqs 1..3");
	rs_wal_get_stats(w, &st);
	is_int(st.groups, 1, "batch: one group for the three");
	is_int(rs_wal_close(w, &err), 0, "batch: close");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_off(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], absent[TEST_PATH_MAX];
	int64_t seq = -1;
	int i, fails = 0;

	if (!ok(make_tmpdir(&t, "wal-off") == 0, "off: temp dir"))
		return;
	join(path, &t, "o.db");
	join(absent, &t, "never.db");
	make_db(path);
	if (open_wal(&w, path, RS_WAL_SYNC_OFF, "n1", NULL)) {
		ok(0, "off: open");
		remove_tmpdir(&t);
		return;
	}
	for (i = 0; i < 10; i++)
		fails += append_kv(w, NULL, "k", "v", &seq, &err) != 0;
	is_int(fails, 0, "off: appends return 0");
	is_int(seq, 0, "off: seq 0");
	is_int(rs_wal_flush(w, &err), 0, "off: flush is a no-op");
	rs_wal_get_stats(w, &st);
	is_int(st.appended, 10, "off: appends still counted");
	is_int(st.committed, 0, "off: nothing committed");
	is_int(rs_wal_close(w, &err), 0, "off: close");
	is_int(read_log(path, 0, NULL, &g, &rep), 0, "off: read");
	is_int(g.n, 0, "off: table empty");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 0,
	       "off: no rows at all");

	w = NULL;
	is_int(open_wal(&w, absent, RS_WAL_SYNC_OFF, "n1", NULL), 0,
	       "off: opens without a database");
	rs_wal_close(w, &err);
	ok(access(absent, F_OK) != 0, "off: and creates none");
	got_free(&g);
	remove_tmpdir(&t);
}

/* ---- reading -------------------------------------------------------------- */

static void test_after_and_skip(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[32];
	size_t i;
	bool all_b = true;

	if (!ok(make_tmpdir(&t, "wal-read") == 0, "read: temp dir"))
		return;
	join(path, &t, "r.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "a", NULL)) {
		ok(0, "read: open");
		remove_tmpdir(&t);
		return;
	}
	for (i = 1; i <= 10; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		append_kv(w, i % 2 ? "a" : "b", key, "v", NULL, &err);
	}
	rs_wal_close(w, &err);

	is_int(read_log(path, 4, NULL, &g, &rep), 0, "read: after seq 4");
	ok(g.n == 6 && seqs_continuous(&g, 5), "read: seqs 5..10");
	ok(g.n && key_is(&g.r[0], "k5"), "read: starting with k5");
	is_int(read_log(path, 10, NULL, &g, &rep), 0, "read: after the end");
	ok(g.n == 0 && !rep.stopped, "read: nothing, no fault");
	is_int(rep.last_seq, 0, "read: last_seq 0 when nothing read");

	is_int(read_log(path, 0, "a", &g, &rep), 0, "read: skip origin a");
	is_int(g.n, 5, "read: five records of b");
	for (i = 0; i < g.n; i++)
		all_b = all_b && strcmp(g.r[i].origin, "b") == 0;
	ok(all_b, "read: all of them b's");
	is_int(rep.records, 5, "read: report: 5 delivered");
	is_int(rep.skipped, 5, "read: report: 5 skipped");
	is_int(rep.last_seq, 10,
	       "read: last_seq counts skipped records (a follower's next after_seq)");

	/* A database older than the log reads as empty. */
	{
		char old[TEST_PATH_MAX];

		join(old, &t, "v1.db");
		sql(old, "CREATE TABLE meta (key TEXT PRIMARY KEY,"
			 " value TEXT NOT NULL) WITHOUT ROWID;"
			 "INSERT INTO meta VALUES ('schema_version', '1');"
			 "PRAGMA user_version = 1;");
		is_int(read_log(old, 0, NULL, &g, &rep), 0,
		       "read: schema 1 database reads");
		ok(g.n == 0 && !rep.stopped, "read: as empty");
		is_int(sql_int(old, "PRAGMA user_version"), 1,
		       "read: and is not migrated");
	}
	{
		char absent[TEST_PATH_MAX];

		join(absent, &t, "absent.db");
		is_int(rs_wal_read(absent, 0, NULL, collect, &g, &rep, &err),
		       -1, "read: missing database is an error");
		has_str(err.msg, absent, "read: naming the path");
	}
	got_free(&g);
	remove_tmpdir(&t);
}

static void fill(const char *path, int n)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal *w = NULL;
	char key[32], val[32];
	int i;

	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", NULL))
		return;
	for (i = 1; i <= n; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		append_kv(w, NULL, key, val, NULL, &err);
	}
	if (rs_wal_close(w, &err))
		printf("#   fill: %s\n", err.msg);
}

/* Insert a row by hand with a correct checksum, as a buggy or newer
 * writer might. */
static void insert_raw(const char *path, int64_t seq, int op,
		       const char *val)
{
	struct rs_wal_record r = {
		.seq = seq, .time_ms = 1, .origin = "x",
		.op = (enum rs_wal_op)op, .key = "k", .klen = 1,
		.val = val, .vlen = val ? strlen(val) : 0,
	};
	char q[512];

	snprintf(q, sizeof(q),
		 "INSERT INTO cache_log (seq, time_ms, origin, op, key, value, stored_ms, expires_ms, checksum) VALUES (%" PRId64
		 ", 1, 'x', %d, X'6b', %s%s%s, 0, 0, %u)",
		 seq, op, val ? "CAST('" : "", val ? val : "NULL",
		 val ? "' AS BLOB)" : "", rs_wal_checksum(&r));
	sql(path, q);
}

static void test_corruption(void)
{
	struct rs_wal_read_report rep;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];

	if (!ok(make_tmpdir(&t, "wal-corrupt") == 0, "corrupt: temp dir"))
		return;
	join(path, &t, "c.db");
	fill(path, 10);

	/* "value-5" with one byte changed. */
	sql(path, "UPDATE cache_log SET value = CAST('valuE-5' AS BLOB)"
		  " WHERE seq = 5");
	is_int(read_log(path, 0, NULL, &g, &rep), 0,
	       "corrupt value: the read itself succeeds");
	ok(rep.stopped, "corrupt value: read stopped");
	is_int(rep.bad_seq, 5, "corrupt value: at seq 5");
	is_str(rep.reason, "checksum mismatch", "corrupt value: reason");
	is_int(g.n, 4, "corrupt value: exactly 4 records delivered");
	is_int(rep.last_seq, 4, "corrupt value: last good seq 4");

	sql(path, "UPDATE cache_log SET value = CAST('value-5' AS BLOB)"
		  " WHERE seq = 5; UPDATE cache_log SET time_ms = time_ms + 1"
		  " WHERE seq = 7");
	read_log(path, 0, NULL, &g, &rep);
	ok(rep.stopped && rep.bad_seq == 7 && g.n == 6,
	   "corrupt time: stops at 7 after 6 records");
	sql(path, "UPDATE cache_log SET time_ms = time_ms - 1 WHERE seq = 7");

	sql(path, "DELETE FROM cache_log WHERE seq = 5");
	read_log(path, 0, NULL, &g, &rep);
	ok(rep.stopped, "gap: read stopped");
	is_int(rep.bad_seq, 6, "gap: at the record after the hole");
	is_str(rep.reason, "gap: seq 6 follows 4", "gap: reason");
	is_int(g.n, 4, "gap: 4 records delivered");

	read_log(path, 3, NULL, &g, &rep);
	is_str(rep.reason, "gap: seq 6 follows 4",
	       "gap: found after after_seq too");
	read_log(path, 4, NULL, &g, &rep);
	is_str(rep.reason, "gap: seq 6 follows 4",
	       "gap: first record must be after_seq + 1");
	is_int(g.n, 0, "gap: nothing delivered");
	read_log(path, 5, NULL, &g, &rep);
	ok(!rep.stopped && g.n == 5,
	   "gap: after_seq past the hole reads the rest");

	read_log(path, 0, "n1", &g, &rep);
	ok(rep.stopped && rep.bad_seq == 6 && rep.skipped == 4,
	   "gap: found when every record is skipped too");

	insert_raw(path, 11, 7, "v");
	read_log(path, 9, NULL, &g, &rep);
	ok(rep.stopped && rep.bad_seq == 11 && g.n == 1,
	   "unknown op: stops at 11");
	is_str(rep.reason, "unknown op 7", "unknown op: reason");

	sql(path, "DELETE FROM cache_log WHERE seq = 11");
	insert_raw(path, 11, RS_WAL_SET, NULL);
	read_log(path, 9, NULL, &g, &rep);
	ok(rep.stopped && rep.bad_seq == 11, "set without value: stops at 11");
	is_str(rep.reason, "set without value", "set without value: reason");

	sql(path, "DELETE FROM cache_log WHERE seq = 11");
	sql(path, "UPDATE cache_log SET seq = 11 WHERE seq = 10");
	read_log(path, 9, NULL, &g, &rep);
	ok(rep.stopped && rep.gap && rep.bad_seq == 11,
	   "moved record: the hole it left is reported first");
	read_log(path, 10, NULL, &g, &rep);
	ok(rep.stopped && !rep.gap && rep.bad_seq == 11 &&
		   strcmp(rep.reason, "checksum mismatch") == 0,
	   "moved record: checksum covers seq");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_truncate(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], absent[TEST_PATH_MAX];
	int64_t seq = 0;
	int i;

	if (!ok(make_tmpdir(&t, "wal-trunc") == 0, "truncate: temp dir"))
		return;
	join(path, &t, "t.db");
	join(absent, &t, "absent.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", NULL)) {
		ok(0, "truncate: open");
		remove_tmpdir(&t);
		return;
	}
	for (i = 1; i <= 10; i++) {
		struct rs_wal_record r = {
			.op = RS_WAL_DELETE, .key = "k", .klen = 1,
			.time_ms = 1000 + i,
		};

		rs_wal_append(w, &r, &seq, &err);
	}
	is_int(rs_wal_truncate(path, 5, 1004, &err), 3,
	       "truncate: only records old enough (seq 1..3)");
	is_int(rs_wal_truncate(path, 5, 1004, &err), 0,
	       "truncate: again deletes nothing");
	is_int(rs_wal_truncate(path, 5, 99999, &err), 2,
	       "truncate: up to seq 5");
	is_int(rs_wal_truncate(path, 100, 99999, &err), 4,
	       "truncate: everything but the newest record");
	is_int(sql_int(path, "SELECT seq FROM cache_log"), 10,
	       "truncate: the newest (seq 10) kept");
	is_int(append_kv(w, NULL, "after", "v", &seq, &err), 0,
	       "truncate: append after");
	is_int(seq, 11, "truncate: seq goes on at 11, not 1");
	read_log(path, 9, NULL, &g, &rep);
	ok(g.n == 2 && !rep.stopped && rep.first_seq == 10,
	   "truncate: the log reads after 9 without a gap report");
	read_log(path, 0, NULL, &g, &rep);
	ok(g.n == 0 && rep.stopped && rep.gap && rep.bad_seq == 10,
	   "truncate: read from 0, the records truncated are a gap");
	is_str(rep.reason, "gap: the log starts at seq 10",
	       "truncate: the gap's reason");
	rs_wal_close(w, &err);

	is_int(rs_wal_truncate(absent, 1, 1, &err), -1,
	       "truncate: missing database is an error");
	has_str(err.msg, absent, "truncate: naming the path");
	ok(access(absent, F_OK) != 0, "truncate: and creates nothing");
	got_free(&g);
	remove_tmpdir(&t);
}

/* ---- several writers ----------------------------------------------------- */

struct writer_arg {
	struct rs_wal *w;
	const char *origin;
	int n, failures;
	int64_t last_seq;
	bool ordered;              /* always: each seq above the previous */
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;
	struct rs_err err = RS_ERR_INIT;
	char key[32];
	int64_t seq, prev = 0;
	int i;

	a->ordered = true;
	for (i = 0; i < a->n; i++) {
		snprintf(key, sizeof(key), "%s-%d", a->origin, i);
		if (append_kv(a->w, NULL, key, "v", &seq, &err)) {
			a->failures++;
			continue;
		}
		if (seq <= prev)
			a->ordered = false;
		prev = seq;
	}
	a->last_seq = prev;
	return NULL;
}

/* Each origin's records in its own order, keys "<origin>-0", "-1"... */
static bool origin_in_order(const struct got *g, const char *origin, int n)
{
	char key[32];
	size_t i;
	int next = 0;

	for (i = 0; i < g->n; i++) {
		if (strcmp(g->r[i].origin, origin) != 0)
			continue;
		snprintf(key, sizeof(key), "%s-%d", origin, next);
		if (!key_is(&g->r[i], key))
			return false;
		next++;
	}
	return next == n;
}

static void test_two_writers(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w1 = NULL, *w2 = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[32];
	int i;

	if (!ok(make_tmpdir(&t, "wal-two") == 0, "two writers: temp dir"))
		return;
	join(path, &t, "two.db");

	/* Batch, one thread, interleaved appends and small groups. */
	{
		struct rs_wal_options more = { .max_group = 7,
					       .sync_interval_ms = 5 };

		if (open_wal(&w1, path, RS_WAL_SYNC_BATCH, "responder",
			     &more) ||
		    open_wal(&w2, path, RS_WAL_SYNC_BATCH, "resyncctl",
			     &more)) {
			ok(0, "two writers: open");
			rs_wal_close(w1, &err);
			remove_tmpdir(&t);
			return;
		}
		for (i = 0; i < 200; i++) {
			snprintf(key, sizeof(key), "responder-%d", i);
			append_kv(w1, NULL, key, "v", NULL, &err);
			snprintf(key, sizeof(key), "resyncctl-%d", i);
			append_kv(w2, NULL, key, "v", NULL, &err);
			if (i % 50 == 0)
				sleep_us(2000);
		}
		is_int(rs_wal_close(w1, &err) + rs_wal_close(w2, &err), 0,
		       "two batch writers: close both");
		read_log(path, 0, NULL, &g, &rep);
		ok(g.n == 400 && !rep.stopped && seqs_continuous(&g, 1),
		   "two batch writers: one continuous sequence 1..400");
		ok(origin_in_order(&g, "responder", 200) &&
			   origin_in_order(&g, "resyncctl", 200),
		   "two batch writers: each origin's records in its order");
	}

	/* Always, one thread per wal, racing for the write lock. */
	{
		struct writer_arg a = { .origin = "ra", .n = 150 };
		struct writer_arg b = { .origin = "rb", .n = 150 };
		pthread_t ta, tb;

		if (open_wal(&a.w, path, RS_WAL_SYNC_ALWAYS, "ra", NULL) ||
		    open_wal(&b.w, path, RS_WAL_SYNC_ALWAYS, "rb", NULL)) {
			ok(0, "two always writers: open");
			rs_wal_close(a.w, &err);
			got_free(&g);
			remove_tmpdir(&t);
			return;
		}
		pthread_create(&ta, NULL, writer_thread, &a);
		pthread_create(&tb, NULL, writer_thread, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		is_int(a.failures + b.failures, 0,
		       "two always writers: no append failed");
		ok(a.ordered && b.ordered,
		   "two always writers: each sees rising seqs");
		rs_wal_close(a.w, &err);
		rs_wal_close(b.w, &err);
		read_log(path, 400, NULL, &g, &rep);
		ok(g.n == 300 && !rep.stopped && seqs_continuous(&g, 401),
		   "two always writers: continuous 401..700");
		ok(origin_in_order(&g, "ra", 150) &&
			   origin_in_order(&g, "rb", 150),
		   "two always writers: each origin in order");
		ok(a.last_seq <= 700 && b.last_seq <= 700 &&
			   (a.last_seq == 700 || b.last_seq == 700),
		   "two always writers: one of them wrote seq 700");
	}
	got_free(&g);
	remove_tmpdir(&t);
}

/* ---- faults ---------------------------------------------------------------- */

static bool wait_stats(struct rs_wal *w, bool degraded, uint64_t committed)
{
	struct rs_wal_stats st;
	double t0 = now_s();

	while (now_s() - t0 < POLL_LIMIT_MS / 1000.0) {
		rs_wal_get_stats(w, &st);
		if (st.degraded == degraded &&
		    (!committed || st.committed == committed))
			return true;
		sleep_us(POLL_STEP_US);
	}
	return false;
}

static void test_queue_full_and_recovery(void)
{
	struct rs_wal_options more = {
		.queue_max = 8, .max_group = 4, .sync_interval_ms = 10,
		.busy_timeout_ms = BUSY_TEST_MS,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[32];
	sqlite3 *blocker;
	int i, fails = 0;

	if (!ok(make_tmpdir(&t, "wal-full") == 0, "queue full: temp dir"))
		return;
	join(path, &t, "f.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", &more)) {
		ok(0, "queue full: open");
		remove_tmpdir(&t);
		return;
	}
	blocker = block_writers(path);
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		fails += append_kv(w, NULL, key, "v", NULL, &err) != 0;
	}
	is_int(fails, 0, "queue full: eight appends queue");
	is_int(append_kv(w, NULL, "k8", "v", NULL, &err), -1,
	       "queue full: the ninth fails at once");
	is_str(err.msg,
	       "cache log queue full (8 records): the database is not keeping up",
	       "queue full: message");
	ok(wait_stats(w, true, 0), "queue full: log turns degraded");
	rs_wal_get_stats(w, &st);
	ok(st.commit_failures >= 1, "degraded: commit failures counted");
	is_int(st.queued, 8, "degraded: records still queued");
	is_int(st.rejected, 1, "degraded: one append rejected");
	is_int(st.appended, 8, "degraded: eight appended");
	has_str(st.last_error, path, "degraded: error names the database");
	has_str(st.last_error, "database is locked",
		"degraded: and SQLite's reason");
	ok(st.degraded_ms >= 0, "degraded: duration reported");

	unblock_writers(blocker);
	ok(wait_stats(w, false, 8),
	   "recovery: degraded clears, the eight are committed");
	rs_wal_get_stats(w, &st);
	is_int(st.queued, 0, "recovery: queue empty");
	is_int(st.degraded_ms, 0, "recovery: degraded_ms back to 0");
	has_str(st.last_error, "database is locked",
		"recovery: last error kept for the record");
	is_int(append_kv(w, NULL, "k8", "v", NULL, &err), 0,
	       "recovery: appends accepted again");
	is_int(rs_wal_close(w, &err), 0, "recovery: close");
	read_log(path, 0, NULL, &g, &rep);
	ok(g.n == 9 && seqs_continuous(&g, 1) && !rep.stopped,
	   "recovery: nine records, seqs 1..9, no gap from the failures");
	ok(g.n == 9 && key_is(&g.r[0], "k0") && key_is(&g.r[8], "k8"),
	   "recovery: in append order");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_always_fails_while_locked(void)
{
	struct rs_wal_options more = { .busy_timeout_ms = BUSY_TEST_MS };
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	int64_t seq = -1;
	sqlite3 *blocker;
	size_t i;
	bool absent = true;

	if (!ok(make_tmpdir(&t, "wal-locked") == 0, "locked: temp dir"))
		return;
	join(path, &t, "l.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", &more)) {
		ok(0, "locked: open");
		remove_tmpdir(&t);
		return;
	}
	append_kv(w, NULL, "before", "v", &seq, &err);
	blocker = block_writers(path);
	is_int(append_kv(w, NULL, "lost", "v", &seq, &err), -1,
	       "locked: always append fails");
	is_int(seq, 0, "locked: no seq given");
	has_str(err.msg, path, "locked: error names the database");
	has_str(err.msg, "database is locked", "locked: and the reason");
	rs_wal_get_stats(w, &st);
	ok(st.degraded, "locked: degraded");
	is_int(st.dropped, 1, "locked: the record dropped");
	is_int(st.queued, 0, "locked: and not queued");
	unblock_writers(blocker);
	is_int(append_kv(w, NULL, "after", "v", &seq, &err), 0,
	       "locked: append after the lock goes");
	is_int(seq, 2, "locked: takes seq 2 (the failed one left no hole)");
	rs_wal_get_stats(w, &st);
	ok(!st.degraded, "locked: no longer degraded");
	rs_wal_close(w, &err);
	read_log(path, 0, NULL, &g, &rep);
	for (i = 0; i < g.n; i++)
		absent = absent && !key_is(&g.r[i], "lost");
	ok(g.n == 2 && absent, "locked: the failed record is not in the log");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_give_up(void)
{
	struct rs_wal_options more = {
		.busy_timeout_ms = 20, .give_up_ms = 300,
		.sync_interval_ms = 10,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	sqlite3 *blocker;
	double t0;
	int i;

	if (!ok(make_tmpdir(&t, "wal-giveup") == 0, "give up: temp dir"))
		return;
	join(path, &t, "g.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", &more)) {
		ok(0, "give up: open");
		remove_tmpdir(&t);
		return;
	}
	blocker = block_writers(path);
	for (i = 0; i < 3; i++)
		append_kv(w, NULL, "k", "v", NULL, &err);
	t0 = now_s();
	is_int(rs_wal_flush(w, &err), -1, "give up: flush fails");
	has_str(err.msg, "3 records still queued", "give up: flush says how many");
	has_str(err.msg, "database is locked", "give up: and why");
	ok(now_s() - t0 < 2.5, "give up: flush within a few retries");
	t0 = now_s();
	is_int(rs_wal_close(w, &err), -1, "give up: close fails");
	has_str(err.msg, "3 records not committed",
		"give up: close says how many were lost");
	has_str(err.msg, path, "give up: naming the database");
	ok(now_s() - t0 < 2.5, "give up: close is bounded");
	unblock_writers(blocker);
	read_log(path, 0, NULL, &g, &rep);
	is_int(g.n, 0, "give up: nothing half-written");
	got_free(&g);
	remove_tmpdir(&t);
}

static void test_close_flushes(void)
{
	struct rs_wal_options more = { .sync_interval_ms = 60000 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct rs_wal *w = NULL;
	struct got g = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[32];
	int i;

	if (!ok(make_tmpdir(&t, "wal-close") == 0, "close: temp dir"))
		return;
	join(path, &t, "c.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", &more)) {
		ok(0, "close: open");
		remove_tmpdir(&t);
		return;
	}
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		append_kv(w, NULL, key, "v", NULL, &err);
	}
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 0,
	       "close: nothing committed before the (1 min) interval");
	is_int(rs_wal_close(w, &err), 0, "close: succeeds");
	read_log(path, 0, NULL, &g, &rep);
	ok(g.n == 100 && seqs_continuous(&g, 1),
	   "close: the 100 batch records are committed");
	rs_wal_close(NULL, &err);
	ok(1, "close: NULL is a no-op");
	{
		struct rs_wal_options bad = { .db_path = path };

		w = NULL;
		is_int(rs_wal_open(&w, &bad, &err), -1,
		       "open: no origin refused");
		is_str(err.msg, "no origin given for the cache log",
		       "open: says so");
		ok(w == NULL, "open: *out NULL on failure");
	}
	got_free(&g);
	remove_tmpdir(&t);
}

/* ---- throughput (printed, not asserted) ---------------------------------- */

/* Raw SQLite: the same rows in transactions of `group`, no checksum, no
 * queue; BASELINES.md says to compare ratios within one run. */
static double raw_rate(const char *path, const char *sync_pragma, int n,
		       int group, const char *val)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	char key[40];
	double t0;
	int i;

	if (make_db(path) || sqlite3_open(path, &h) != SQLITE_OK ||
	    sqlite3_exec(h, sync_pragma, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h,
			       "INSERT INTO cache_log (seq, time_ms, origin, op,"
			       " key, value, stored_ms, expires_ms, checksum)"
			       " VALUES (?1, 1, 'raw', 1, ?2, ?3, 1, 2, 0)",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return 0;
	}
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if (i % group == 0)
			sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		snprintf(key, sizeof(key), "key-%027d", i);
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_blob(st, 2, key, (int)strlen(key), SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, val, (int)strlen(val), SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_reset(st);
		if (i % group == group - 1 || i == n - 1)
			sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	}
	t0 = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n / t0;
}

static void test_throughput(void)
{
	struct rs_wal_options big = { .queue_max = 200000 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], key[40], val[201];
	double t0, secs;
	int i, n, fails = 0;

	if (!ok(make_tmpdir(&t, "wal-speed") == 0, "throughput: temp dir"))
		return;
	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';

	join(path, &t, "always1.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", NULL) == 0) {
		n = 300;
		t0 = now_s();
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "key-%027d", i);
			fails += append_kv(w, NULL, key, val, NULL, &err) != 0;
		}
		secs = now_s() - t0;
		printf("# throughput: always, 1 thread: %.0f records/s (%d in %.3f s)\n",
		       n / secs, n, secs);
		rs_wal_close(w, &err);
	}

	join(path, &t, "always8.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", NULL) == 0) {
		struct writer_arg a[8];
		pthread_t th[8];

		t0 = now_s();
		for (i = 0; i < 8; i++) {
			a[i] = (struct writer_arg){ .w = w, .origin = "t",
						    .n = 250 };
			pthread_create(&th[i], NULL, writer_thread, &a[i]);
		}
		for (i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			fails += a[i].failures;
		}
		secs = now_s() - t0;
		rs_wal_get_stats(w, &st);
		printf("# throughput: always, 8 threads: %.0f records/s (2000 in %.3f s, %" PRIu64
		       " groups)\n",
		       2000 / secs, secs, st.groups);
		rs_wal_close(w, &err);
	}

	join(path, &t, "batch.db");
	if (open_wal(&w, path, RS_WAL_SYNC_BATCH, "n1", &big) == 0) {
		n = 100000;
		t0 = now_s();
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "key-%027d", i);
			fails += append_kv(w, NULL, key, val, NULL, &err) != 0;
		}
		fails += rs_wal_flush(w, &err) != 0;
		secs = now_s() - t0;
		rs_wal_get_stats(w, &st);
		printf("# throughput: batch: %.0f records/s (%d in %.3f s, %" PRIu64
		       " groups, mean commit %.2f ms)\n",
		       n / secs, n, secs, st.groups,
		       st.groups ? st.commit_us_total / 1000.0 / st.groups : 0);
		rs_wal_close(w, &err);
	}
	join(path, &t, "raw1.db");
	printf("# baseline: raw SQLite, FULL, 1 row per transaction: %.0f rows/s\n",
	       raw_rate(path, "PRAGMA synchronous = FULL", 300, 1, val));
	join(path, &t, "raw1000f.db");
	printf("# baseline: raw SQLite, FULL, 1000 rows per transaction: %.0f rows/s\n",
	       raw_rate(path, "PRAGMA synchronous = FULL", 100000, 1000, val));
	join(path, &t, "raw1000n.db");
	printf("# baseline: raw SQLite, NORMAL, 1000 rows per transaction: %.0f rows/s\n",
	       raw_rate(path, "PRAGMA synchronous = NORMAL", 100000, 1000,
			val));
	is_int(fails, 0, "throughput: every append succeeded");
	remove_tmpdir(&t);
}

/* ---- profile -------------------------------------------------------------- */

#define PROFILE_THREADS 4
#define PROFILE_APPENDS 50          /* per thread */

static void test_profile(void)
{
	struct rs_wal_options more = { .busy_timeout_ms = BUSY_TEST_MS };
	struct rs_hist *commit = malloc(sizeof(*commit));
	struct rs_hist *wait = malloc(sizeof(*wait));
	struct writer_arg a[PROFILE_THREADS];
	pthread_t tid[PROFILE_THREADS];
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_stats st;
	struct rs_wal *w = NULL;
	struct tmpdir t = { "" };
	char path[TEST_PATH_MAX], off[TEST_PATH_MAX];
	uint64_t n = PROFILE_THREADS * PROFILE_APPENDS;
	sqlite3 *blocker;
	int64_t seq;
	int i;

	if (!ok(commit && wait && make_tmpdir(&t, "wal-profile") == 0,
		"profile: temp dir"))
		goto out;
	join(path, &t, "p.db");
	join(off, &t, "off.db");
	if (open_wal(&w, path, RS_WAL_SYNC_ALWAYS, "n1", &more)) {
		ok(0, "profile: open");
		goto out;
	}
	for (i = 0; i < PROFILE_THREADS; i++) {
		a[i] = (struct writer_arg){ .w = w, .origin = "p",
					    .n = PROFILE_APPENDS };
		pthread_create(&tid[i], NULL, writer_thread, &a[i]);
	}
	for (i = 0; i < PROFILE_THREADS; i++)
		pthread_join(tid[i], NULL);
	rs_wal_get_stats(w, &st);
	rs_wal_get_profile(w, commit, wait);
	is_int(st.committed, n, "profile: every append committed");
	is_int(rs_hist_count(commit), st.groups,
	       "profile: one commit time per group");
	is_int(rs_hist_count(wait), n,
	       "profile: one commit wait per always append");
	is_int(rs_hist_max(commit), st.commit_us_max,
	       "profile: the slowest commit as the stats have it");
	is_int(atomic_load(&commit->sum), st.commit_us_total,
	       "profile: commit times add up to the stats' total");
	ok(rs_hist_min(wait) >= rs_hist_min(commit),
	   "profile: no append waited less than a commit takes");
	printf("#   %" PRIu64 " appends in %" PRIu64
	       " groups; commit p50 %" PRIu64 " us, wait p50 %" PRIu64
	       " us, p99 %" PRIu64 " us\n", n, st.groups,
	       rs_hist_percentile(commit, 50), rs_hist_percentile(wait, 50),
	       rs_hist_percentile(wait, 99));

	blocker = block_writers(path);
	is_int(append_kv(w, NULL, "lost", "v", &seq, &err), -1,
	       "profile: an append fails while the database is locked");
	unblock_writers(blocker);
	rs_wal_get_profile(w, NULL, wait);
	is_int(rs_hist_count(wait), n, "profile: a failed append is no wait");
	rs_wal_get_profile(w, commit, NULL);
	is_int(rs_hist_count(commit), st.groups,
	       "profile: a failed commit is no commit time");
	rs_wal_close(w, &err);

	w = NULL;
	if (open_wal(&w, off, RS_WAL_SYNC_OFF, "n1", NULL) == 0) {
		for (i = 0; i < 10; i++)
			append_kv(w, NULL, "k", "v", &seq, &err);
		rs_wal_get_profile(w, commit, wait);
		ok(rs_hist_count(commit) == 0 && rs_hist_count(wait) == 0,
		   "profile: both empty with sync = off");
		rs_wal_close(w, &err);
	}
out:
	free(commit);
	free(wait);
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	test_checksum();
	test_roundtrip();
	test_always();
	test_batch_interval();
	test_off();
	test_after_and_skip();
	test_corruption();
	test_truncate();
	test_two_writers();
	test_queue_full_and_recovery();
	test_always_fails_while_locked();
	test_give_up();
	test_close_flushes();
	test_throughput();
	test_profile();
	return tap_done();
}
