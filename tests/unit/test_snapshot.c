/*
 * test_snapshot: cache images in the database.  What is taken loads back
 * identical (key, value, stored and expiry times); rows past their windows
 * are skipped at load; a changed, missing or reordered row or an
 * incomplete header is found by verify and passed over by load; gc keeps
 * the newest valid image and says how far the log may be truncated; a take
 * while writers run finishes and verifies.  Each test has a temp directory
 * of its own.
 *
 * Take, verify and load times are printed as TAP comments, never asserted.
 * RS_SNAPSHOT_BENCH_N raises the entry count of the round trip (default
 * 20 000 entries of 200-byte values), e.g. RS_SNAPSHOT_BENCH_N=1000000.
 */
#include "cache.h"
#include "db.h"
#include "snapshot.h"
#include "tap.h"
#include "testcache.h"
#include "testlib.h"
#include "testsql.h"
#include "util.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDTRIP_N_DEFAULT 20000
#define VALUE_BYTES 200
#define T0_MS 1700000000000LL        /* the injected clock's start */
#define LONG_TTL_MS (24 * RS_MS_PER_HOUR)
#define SHORT_TTL_MS 1000
#define MAX_LISTED 16
#define WRITER_THREADS 4
#define WRITER_KEYS 6000
#define WRITER_MAX_ENTRIES 4000
#define RETENTION_MS (7 * RS_MS_PER_DAY)

/* ---- helpers ------------------------------------------------------------- */

static _Atomic int64_t clk = T0_MS;

static int64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&clk);
}

static struct rs_cache *mk_cache(uint64_t max_entries, bool fake)
{
	struct rs_cache_options o = {
		.num_shards = 8,
		.max_entries = max_entries,
		.max_memory_bytes = max_entries * 1024 + 16 * RS_MIB,
		.default_ttl_ms = LONG_TTL_MS,
		.clock_ms = fake ? fake_clock : NULL,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c = NULL;

	if (rs_cache_new(&c, &o, &err))
		printf("#   rs_cache_new: %s\n", err.msg);
	return c;
}

static size_t key_of(char *buf, size_t n, unsigned i)
{
	return (size_t)snprintf(buf, n, "key:%08u", i);
}

/* VALUE_BYTES bytes, every byte value (NULs too), different per i and g. */
static void value_of(unsigned char *v, unsigned i, unsigned g)
{
	size_t j;

	for (j = 0; j < VALUE_BYTES; j++)
		v[j] = (unsigned char)(i * 131u + j * 7u + g);
}

/* n entries key:00000000 ..., generation g; every `short_every`th one
 * (0 = none) lives SHORT_TTL_MS.  The clock ticks between sets so stored
 * times differ.  Returns how many were stored. */
static unsigned fill(struct rs_cache *c, unsigned n, unsigned g,
		     unsigned short_every)
{
	unsigned char v[VALUE_BYTES];
	struct rs_err err = RS_ERR_INIT;
	char k[32];
	unsigned i, stored = 0;
	size_t klen;

	for (i = 0; i < n; i++) {
		klen = key_of(k, sizeof(k), i);
		value_of(v, i, g);
		if (i % 64 == 0)
			atomic_fetch_add(&clk, 1);
		if (rs_cache_set(c, k, klen, v, sizeof(v),
				 short_every && i % short_every == 0 ?
					 SHORT_TTL_MS : LONG_TTL_MS,
				 &err) == 0)
			stored++;
		else
			printf("#   set %s: %s\n", k, err.msg);
	}
	return stored;
}


static bool same_cache(struct rs_cache *a, struct rs_cache *b)
{
	struct dump x, y;
	int r;

	if (dump_cache(a, &x))
		return false;
	if (dump_cache(b, &y)) {
		dump_free(&x);
		return false;
	}
	r = same_dump(&x, &y) ? 0 : -1;
	dump_free(&x);
	dump_free(&y);
	return r == 0;
}


static int sqlf(const char *path, const char *fmt, ...) RS_PRINTF(2, 3);

static int sqlf(const char *path, const char *fmt, ...)
{
	char q[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	return sql(path, q);
}

static long long rows_of(const char *path, int64_t id)
{
	char q[128];

	snprintf(q, sizeof(q),
		 "SELECT count(*) FROM cache_snapshot_row"
		 " WHERE snapshot_id = %" PRId64, id);
	return sql_int(path, q);
}

/* Flip the low bit of one byte in the middle of a row's value, as a bad
 * disk block would. */
static int flip_value_byte(const char *path, int64_t id, int64_t idx)
{
	sqlite3_stmt *get = NULL, *put = NULL;
	unsigned char *v = NULL;
	sqlite3 *h = NULL;
	int n = 0, ret = -1;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h,
			       "SELECT value FROM cache_snapshot_row"
			       " WHERE snapshot_id = ?1 AND idx = ?2",
			       -1, &get, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(get, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(get, 2, idx) != SQLITE_OK ||
	    sqlite3_step(get) != SQLITE_ROW)
		goto out;
	n = sqlite3_column_bytes(get, 0);
	if (n <= 0 || !(v = malloc((size_t)n)))
		goto out;
	memcpy(v, sqlite3_column_blob(get, 0), (size_t)n);
	v[n / 2] ^= 1;
	if (sqlite3_prepare_v2(h,
			       "UPDATE cache_snapshot_row SET value = ?3"
			       " WHERE snapshot_id = ?1 AND idx = ?2",
			       -1, &put, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(put, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(put, 2, idx) != SQLITE_OK ||
	    sqlite3_bind_blob(put, 3, v, n, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(put) != SQLITE_DONE)
		goto out;
	ret = 0;
out:
	if (ret)
		printf("#   cannot flip a byte: %s\n", sqlite3_errmsg(h));
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	sqlite3_close(h);
	free(v);
	return ret;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t take(const char *path, struct rs_cache *c, int64_t last_seq)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_snapshot_info info;

	if (rs_snapshot_take(path, NULL, c, last_seq, &info, &err)) {
		printf("#   take: %s\n", err.msg);
		return 0;
	}
	return info.id;
}

struct listed {
	struct rs_snapshot_info v[MAX_LISTED];
	int n, stop_after;
};

static int collect(void *arg, const struct rs_snapshot_info *info)
{
	struct listed *l = arg;

	if (l->n < MAX_LISTED)
		l->v[l->n++] = *info;
	return l->stop_after && l->n == l->stop_after ? 5 : 0;
}

static int list(const char *path, struct listed *l)
{
	struct rs_err err = RS_ERR_INIT;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = rs_snapshot_list(path, collect, l, &err);
	if (rc < 0)
		printf("#   list: %s\n", err.msg);
	return rc;
}

static struct rs_snapshot_check verify(const char *path, int64_t id)
{
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;

	if (rs_snapshot_verify(path, NULL, id, &check, &err))
		printf("#   verify %" PRId64 ": %s\n", id, err.msg);
	return check;
}


/* The encoding documented at the top of snapshot.c, written out again
 * over the stored rows; -1 when they cannot be read. */
static int64_t reference_checksum(const char *path, int64_t id)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	uint32_t c = 0xffffffffu;
	uint64_t rows = 0, bytes = 0;
	int64_t ret = -1, time_ms = 0, last_seq = 0;
	size_t k, v;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h,
			       "SELECT time_ms, last_seq FROM cache_snapshot"
			       " WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	time_ms = sqlite3_column_int64(st, 0);
	last_seq = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(h,
			       "SELECT idx, key, value, stored_ms, expires_ms"
			       " FROM cache_snapshot_row WHERE snapshot_id = ?1"
			       " ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		c = ref_crc32c_u64(c, (uint64_t)sqlite3_column_int64(st, 0));
		k = (size_t)sqlite3_column_bytes(st, 1);
		c = ref_crc32c_u64(c, k);
		c = ref_crc32c(c, sqlite3_column_blob(st, 1), k);
		v = (size_t)sqlite3_column_bytes(st, 2);
		c = ref_crc32c_u64(c, v);
		c = ref_crc32c(c, sqlite3_column_blob(st, 2), v);
		c = ref_crc32c_u64(c, (uint64_t)sqlite3_column_int64(st, 3));
		c = ref_crc32c_u64(c, (uint64_t)sqlite3_column_int64(st, 4));
		rows++;
		bytes += k + v;
	}
	c = ref_crc32c_u64(c, (uint64_t)id);
	c = ref_crc32c_u64(c, (uint64_t)time_ms);
	c = ref_crc32c_u64(c, (uint64_t)last_seq);
	c = ref_crc32c_u64(c, rows);
	c = ref_crc32c_u64(c, bytes);
	ret = (int64_t)(uint32_t)~c;
out:
	sqlite3_finalize(st);
	sqlite3_close(h);
	return ret;
}

/* ---- round trip ---------------------------------------------------------- */

static unsigned roundtrip_n(void)
{
	const char *s = getenv("RS_SNAPSHOT_BENCH_N");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v > 0 ? (unsigned)v : ROUNDTRIP_N_DEFAULT;
}

static void test_roundtrip(void)
{
	static const unsigned char odd_key[] = { 'b', 0, 'i', 0xff, 'n' };
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_info info;
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a, *b;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	struct listed l;
	unsigned n = roundtrip_n(), stored;
	uint64_t bytes;
	double t0, t_take, t_verify, t_load;

	make_tmpdir(&t, "snapshot-roundtrip");
	join(path, &t, "resync.db");
	atomic_store(&clk, T0_MS);
	a = mk_cache(n + 2, true);
	b = mk_cache(n + 2, true);
	stored = fill(a, n, 0, 0);
	/* Binary-safe keys and an empty value. */
	rs_cache_set(a, odd_key, sizeof(odd_key), "", 0, -1, &err);
	rs_cache_set(a, "empty", 5, "", 0, -1, &err);
	is_int(stored, n, "round trip: the cache holds every entry");
	bytes = (uint64_t)n * (strlen("key:00000000") + VALUE_BYTES) +
		sizeof(odd_key) + 5;

	t0 = now_s();
	ok(rs_snapshot_take(path, NULL, a, 42, &info, &err) == 0, "take: succeeds");
	t_take = now_s() - t0;
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	ok(info.id > 0, "take: the snapshot has an id");
	is_int(info.entries, n + 2, "take: entries counts every entry");
	is_int(info.bytes, bytes, "take: bytes is key + value bytes");
	is_int(info.last_seq, 42, "take: records the last log seq");
	ok(info.complete, "take: the snapshot is complete");
	ok(info.time_ms > 0, "take: records the time");
	is_int(reference_checksum(path, info.id), info.checksum,
	       "take: the checksum follows the documented encoding");

	is_int(list(path, &l), 0, "list: succeeds");
	is_int(l.n, 1, "list: one snapshot");
	ok(l.n == 1 && l.v[0].id == info.id && l.v[0].entries == n + 2 &&
		   l.v[0].checksum == info.checksum && l.v[0].complete,
	   "list: the header as take reported it");

	t0 = now_s();
	check = verify(path, info.id);
	t_verify = now_s() - t0;
	ok(check.ok, "verify: a fresh snapshot verifies");
	is_str(check.reason, "", "verify: no reason when it verifies");

	t0 = now_s();
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == 0, "load: succeeds");
	t_load = now_s() - t0;
	is_int(rep.loaded_id, info.id, "load: the newest snapshot");
	is_int(rep.last_seq, 42, "load: returns the last log seq");
	is_int(rep.entries, n + 2, "load: stores every row");
	ok(rep.expired == 0 && rep.rejected == 0 && rep.skipped == 0 &&
		   rep.incomplete == 0,
	   "load: nothing expired, rejected or skipped");
	ok(same_cache(a, b),
	   "load: key, value, stored and expiry times all identical");

	printf("# %u entries of %d-byte values: take %.3f s (%.0f rows/s),"
	       " verify %.3f s, load %.3f s (verify + store)\n",
	       n + 2, VALUE_BYTES, t_take, (n + 2) / t_take, t_verify, t_load);
	rs_cache_free(a);
	rs_cache_free(b);
	remove_tmpdir(&t);
}

/* Rows past their windows at load time are counted, not stored; rows the
 * cache refuses are counted with the cache's reason. */
static void test_expired_and_rejected(void)
{
	struct rs_snapshot_load_report rep;
	struct rs_cache_options o = {
		.num_shards = 4,
		.max_entries = 1000,
		.max_memory_bytes = 16 * RS_MIB,
		.default_ttl_ms = LONG_TTL_MS,
		.max_value_bytes = VALUE_BYTES - 1,
		.clock_ms = fake_clock,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a, *b, *small = NULL;
	struct dump d;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	size_t i, longs = 0;
	bool all_long = true;

	make_tmpdir(&t, "snapshot-expired");
	join(path, &t, "resync.db");
	atomic_store(&clk, T0_MS);
	a = mk_cache(1000, true);
	b = mk_cache(1000, true);
	fill(a, 200, 1, 2);         /* every other one lives 1 s */
	ok(take(path, a, 7) > 0, "expired: take");

	/* Past the short entries' expiry (no stale windows), before the
	 * long ones'. */
	atomic_fetch_add(&clk, 5 * SHORT_TTL_MS);
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == 0, "expired: load");
	is_int(rep.entries, 100, "expired: the live half is stored");
	is_int(rep.expired, 100, "expired: the expired half is counted");
	is_int(rep.rejected, 0, "expired: none rejected");
	dump_cache(b, &d);
	for (i = 0; i < d.n; i++) {
		if (d.v[i].expires_ms - d.v[i].stored_ms != LONG_TTL_MS)
			all_long = false;
		else
			longs++;
	}
	ok(d.n == 100 && all_long && longs == 100,
	   "expired: only long-lived entries came back, expiry unchanged");
	dump_free(&d);

	/* A cache with a smaller value limit refuses every row. */
	rs_cache_new(&small, &o, &err);
	ok(small && rs_snapshot_load(path, NULL, 0, small, &rep, &err) == 0,
	   "rejected: load into a stricter cache");
	is_int(rep.entries, 0, "rejected: nothing stored");
	/* The cache checks limits before expiry: expired rows may count
	 * as either. */
	ok(rep.rejected >= 100 && rep.rejected + rep.expired == 200,
	   "rejected: every live row is counted as rejected");
	has_str(rep.rejected_reason, "value of 'key:",
		"rejected: the cache's reason names the key");

	rs_cache_free(small);
	rs_cache_free(a);
	rs_cache_free(b);
	remove_tmpdir(&t);
}

static void test_list_order(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	struct listed l;
	int64_t ids[3];
	int i;

	make_tmpdir(&t, "snapshot-list");
	join(path, &t, "resync.db");
	a = mk_cache(100, true);
	fill(a, 10, 0, 0);
	for (i = 0; i < 3; i++)
		ids[i] = take(path, a, 10 * (i + 1));
	ok(ids[0] > 0 && ids[0] < ids[1] && ids[1] < ids[2],
	   "list: ids grow with every take");
	is_int(list(path, &l), 0, "list: succeeds");
	ok(l.n == 3 && l.v[0].id == ids[2] && l.v[1].id == ids[1] &&
		   l.v[2].id == ids[0],
	   "list: newest first");
	ok(l.n == 3 && l.v[0].last_seq == 30 && l.v[2].last_seq == 10,
	   "list: each with its last seq");
	l.stop_after = 1;
	memset(l.v, 0, sizeof(l.v));
	l.n = 0;
	is_int(rs_snapshot_list(path, collect, &l, &err), 5,
	       "list: a callback's non-zero return stops and is returned");
	is_int(l.n, 1, "list: no call after the stop");

	/* An id is never handed out twice, even after the newest went. */
	ok(rs_snapshot_delete(path, ids[2], &err) == 0, "list: delete newest");
	ok(take(path, a, 40) > ids[2], "list: the next take gets a new id");
	rs_cache_free(a);
	remove_tmpdir(&t);
}

/* ---- corruption ---------------------------------------------------------- */

/* Three snapshots of three generations of the same keys; dumps[i] is the
 * cache as snapshot ids[i] saw it. */
struct three {
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	int64_t ids[3];
	struct dump dumps[3];
	struct rs_cache *a;
};

static void three_setup(struct three *s, const char *name)
{
	int i;

	memset(s, 0, sizeof(*s));
	make_tmpdir(&s->t, name);
	join(s->path, &s->t, "resync.db");
	atomic_store(&clk, T0_MS);
	s->a = mk_cache(1000, true);
	for (i = 0; i < 3; i++) {
		fill(s->a, 100, (unsigned)i, 0);
		s->ids[i] = take(s->path, s->a, 100 * (i + 1));
		dump_cache(s->a, &s->dumps[i]);
	}
}

static void three_teardown(struct three *s)
{
	int i;

	for (i = 0; i < 3; i++)
		dump_free(&s->dumps[i]);
	rs_cache_free(s->a);
	remove_tmpdir(&s->t);
}

static bool holds(struct rs_cache *c, const struct dump *want)
{
	struct dump got;
	int r;

	if (dump_cache(c, &got))
		return false;
	r = same_dump(want, &got) ? 0 : -1;
	dump_free(&got);
	return r == 0;
}

static void test_changed_value(void)
{
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *b;
	struct three s;
	char want[64];

	three_setup(&s, "snapshot-value");
	ok(flip_value_byte(s.path, s.ids[2], 37) == 0,
	   "changed value: flip one bit of one value");
	check = verify(s.path, s.ids[2]);
	ok(!check.ok, "changed value: verify fails");
	is_str(check.reason, "checksum mismatch",
	       "changed value: verify says checksum mismatch");
	ok(verify(s.path, s.ids[1]).ok, "changed value: the older one verifies");

	b = mk_cache(1000, true);
	ok(rs_snapshot_load(s.path, NULL, 0, b, &rep, &err) == 0,
	   "changed value: load(0) succeeds");
	is_int(rep.loaded_id, s.ids[1], "changed value: falls back to the previous one");
	is_int(rep.last_seq, 200, "changed value: with that one's last seq");
	is_int(rep.skipped, 1, "changed value: one snapshot skipped");
	snprintf(want, sizeof(want), "snapshot %" PRId64 ": checksum mismatch",
		 s.ids[2]);
	is_str(rep.skipped_reason, want, "changed value: says which and why");
	ok(holds(b, &s.dumps[1]),
	   "changed value: the cache holds the previous image exactly");
	rs_cache_free(b);

	b = mk_cache(1000, true);
	ok(rs_snapshot_load(s.path, NULL, s.ids[2], b, &rep, &err) == -1,
	   "changed value: loading it by id is an error");
	snprintf(want, sizeof(want), "cannot load snapshot %" PRId64, s.ids[2]);
	has_str(err.msg, want, "changed value: the error names the snapshot");
	has_str(err.msg, "checksum mismatch", "changed value: and the reason");
	has_str(err.msg, s.path, "changed value: and the database");
	ok(holds(b, &(struct dump){ 0 }) && rep.loaded_id == 0,
	   "changed value: nothing was stored");
	rs_cache_free(b);
	three_teardown(&s);
}

static void test_missing_and_swapped_rows(void)
{
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *b;
	struct three s;

	three_setup(&s, "snapshot-rows");
	sqlf(s.path,
	     "DELETE FROM cache_snapshot_row WHERE snapshot_id = %" PRId64
	     " AND idx = 50",
	     s.ids[2]);
	check = verify(s.path, s.ids[2]);
	ok(!check.ok, "missing row: verify fails");
	is_str(check.reason, "99 rows, header says 100",
	       "missing row: verify counts the rows");

	sqlf(s.path,
	     "UPDATE cache_snapshot_row SET idx = -1 WHERE snapshot_id = %" PRId64
	     " AND idx = 3;"
	     "UPDATE cache_snapshot_row SET idx = 3 WHERE snapshot_id = %" PRId64
	     " AND idx = 4;"
	     "UPDATE cache_snapshot_row SET idx = 4 WHERE snapshot_id = %" PRId64
	     " AND idx = -1;",
	     s.ids[1], s.ids[1], s.ids[1]);
	check = verify(s.path, s.ids[1]);
	ok(!check.ok, "swapped rows: verify fails");
	is_str(check.reason, "checksum mismatch",
	       "swapped rows: verify says checksum mismatch");

	/* The header's last_seq decides where replay starts: covered. */
	sqlf(s.path, "UPDATE cache_snapshot SET last_seq = 5 WHERE id = %" PRId64,
	     s.ids[0]);
	is_str(verify(s.path, s.ids[0]).reason, "checksum mismatch",
	       "changed last_seq: verify says checksum mismatch");

	b = mk_cache(1000, true);
	ok(rs_snapshot_load(s.path, NULL, 0, b, &rep, &err) == 0,
	   "all corrupt: load(0) is not an error");
	ok(rep.loaded_id == 0 && rep.last_seq == 0 && rep.entries == 0,
	   "all corrupt: nothing loaded, replay from the start");
	is_int(rep.skipped, 3, "all corrupt: three skipped");
	has_str(rep.skipped_reason, "rows, header says",
		"all corrupt: the newest one's reason");
	rs_cache_free(b);
	three_teardown(&s);
}

static void test_incomplete(void)
{
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *b;
	struct three s;
	struct listed l;

	three_setup(&s, "snapshot-incomplete");
	sqlf(s.path, "UPDATE cache_snapshot SET state = 'writing' WHERE id = %" PRId64,
	     s.ids[2]);
	check = verify(s.path, s.ids[2]);
	ok(!check.ok, "incomplete: verify fails");
	is_str(check.reason, "incomplete (state 'writing')",
	       "incomplete: verify says so");
	list(s.path, &l);
	ok(l.n == 3 && !l.v[0].complete && l.v[1].complete,
	   "incomplete: list shows it as incomplete");

	b = mk_cache(1000, true);
	ok(rs_snapshot_load(s.path, NULL, 0, b, &rep, &err) == 0,
	   "incomplete: load(0) succeeds");
	is_int(rep.loaded_id, s.ids[1], "incomplete: passed over for the previous one");
	ok(rep.incomplete == 1 && rep.skipped == 0,
	   "incomplete: counted as incomplete, not as corrupt");
	ok(holds(b, &s.dumps[1]), "incomplete: the previous image loaded");
	rs_cache_free(b);

	b = mk_cache(1000, true);
	ok(rs_snapshot_load(s.path, NULL, s.ids[2], b, &rep, &err) == -1,
	   "incomplete: loading it by id is an error");
	has_str(err.msg, "incomplete (state 'writing')", "incomplete: says why");
	rs_cache_free(b);

	sqlf(s.path, "UPDATE cache_snapshot SET state = 'bogus' WHERE id = %" PRId64,
	     s.ids[1]);
	is_str(verify(s.path, s.ids[1]).reason, "unknown state 'bogus'",
	       "unknown state: verify names it");
	three_teardown(&s);
}

static void test_no_snapshots(void)
{
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_check check;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *b;
	struct rs_db *db = NULL;
	char path[TEST_PATH_MAX], want[TEST_PATH_MAX + 64];
	struct tmpdir t;
	struct listed l;

	make_tmpdir(&t, "snapshot-none");
	join(path, &t, "resync.db");
	rs_db_open(&db, path, NULL, &err);
	rs_db_close(db);
	b = mk_cache(100, true);

	is_int(list(path, &l), 0, "none: list succeeds");
	is_int(l.n, 0, "none: list is empty");
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == 0,
	   "none: load(0) is not an error");
	ok(rep.loaded_id == 0 && rep.last_seq == 0 && rep.skipped == 0,
	   "none: nothing loaded");
	ok(rs_snapshot_verify(path, NULL, 9, &check, &err) == -1,
	   "none: verify of an unknown id is an error");
	snprintf(want, sizeof(want), "no snapshot 9 in '%s'", path);
	is_str(err.msg, want, "none: the error names the id and database");
	is_str(check.reason, "no snapshot 9", "none: so does the reason");
	ok(rs_snapshot_load(path, NULL, 9, b, &rep, &err) == -1,
	   "none: load of an unknown id is an error");
	is_str(err.msg, want, "none: the load error names the id");

	/* A database from before migration 3, opened read-only. */
	sql(path, "DROP TABLE cache_snapshot; DROP TABLE cache_snapshot_row;"
		  " UPDATE meta SET value = '2' WHERE key = 'schema_version';"
		  " PRAGMA user_version = 2;");
	is_int(list(path, &l), 0, "schema 2: list succeeds");
	is_int(l.n, 0, "schema 2: no snapshots");
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == 0 && rep.loaded_id == 0,
	   "schema 2: load(0) loads nothing, no error");
	is_int(sql_int(path, "PRAGMA user_version"), 2,
	       "schema 2: reading did not migrate it");

	/* A database nothing has created yet: read-only opens refuse. */
	join(path, &t, "missing.db");
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == -1,
	   "missing database: load is an error");
	has_str(err.msg, "missing.db", "missing database: names the path");
	ok(access(path, F_OK) != 0, "missing database: not created");
	rs_cache_free(b);
	remove_tmpdir(&t);
}

/* ---- gc, delete ---------------------------------------------------------- */

static bool listed_ids(const char *path, const int64_t *want, int n)
{
	struct listed l;
	int i;

	if (list(path, &l) < 0 || l.n != n) {
		printf("#   %d snapshots listed, expected %d\n", l.n, n);
		return false;
	}
	for (i = 0; i < n; i++)
		if (l.v[i].id != want[i]) {
			printf("#   listed #%d is %" PRId64 ", expected %" PRId64 "\n",
			       i, l.v[i].id, want[i]);
			return false;
		}
	return true;
}

static void test_gc(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	int64_t s1, s2, s3, w_old, w_young, s5, s6, keep_seq, future;
	uint64_t removed;

	make_tmpdir(&t, "snapshot-gc");
	join(path, &t, "resync.db");
	a = mk_cache(100, true);
	fill(a, 20, 0, 0);
	s1 = take(path, a, 10);
	s2 = take(path, a, 20);
	s3 = take(path, a, 30);
	w_old = take(path, a, 35);
	flip_value_byte(path, s3, 4);
	sqlf(path, "UPDATE cache_snapshot SET state = 'writing' WHERE id = %" PRId64,
	     w_old);
	/* Ten days on, everything taken above is past a 7-day retention. */
	future = rs_now_ms() + 10 * RS_MS_PER_DAY;
	sqlf(path,
	     "INSERT INTO cache_snapshot (time_ms, last_seq, entries, bytes,"
	     " checksum, state) VALUES (%" PRId64 ", 36, 0, 0, 0, 'writing')",
	     (int64_t)(future - 10 * RS_MS_PER_MIN));
	w_young = sql_int(path, "SELECT max(id) FROM cache_snapshot");

	ok(rs_snapshot_gc(path, future, RETENTION_MS, &removed, &keep_seq,
			  &err) == 0,
	   "gc: succeeds");
	is_int(removed, 2, "gc: two removed (the oldest, the stale incomplete)");
	ok(listed_ids(path, (int64_t[]){ w_young, s3, s2 }, 3),
	   "gc: keeps the newest valid however old, what is newer, the young incomplete");
	ok(rows_of(path, s1) == 0 && rows_of(path, w_old) == 0,
	   "gc: the removed snapshots' rows are gone too");
	is_int(keep_seq, 20, "gc: keep_seq is the oldest kept complete one's");

	/* Within retention nothing complete goes. */
	s5 = take(path, a, 50);
	s6 = take(path, a, 60);
	ok(rs_snapshot_gc(path, rs_now_ms(), RETENTION_MS, &removed, &keep_seq,
			  &err) == 0 && removed == 0,
	   "gc: within retention nothing is removed");
	is_int(keep_seq, 20, "gc: keep_seq unchanged");

	ok(rs_snapshot_gc(path, future, RETENTION_MS, &removed, &keep_seq,
			  &err) == 0,
	   "gc: again, ten days on");
	is_int(removed, 3, "gc: everything older than the newest valid goes");
	ok(listed_ids(path, (int64_t[]){ s6, w_young }, 2),
	   "gc: the newest valid and the young incomplete stay");
	is_int(keep_seq, 60, "gc: keep_seq follows");
	(void)s5;

	ok(rs_snapshot_delete(path, s6, &err) == 0, "gc: delete the last complete");
	ok(rs_snapshot_gc(path, future, RETENTION_MS, &removed, &keep_seq,
			  &err) == 0 && removed == 0,
	   "gc: no complete snapshot, nothing to do");
	is_int(keep_seq, 0, "gc: keep_seq 0 when none is kept");

	/* When none verifies, nothing complete is removed. */
	s1 = take(path, a, 70);
	s2 = take(path, a, 80);
	flip_value_byte(path, s1, 0);
	flip_value_byte(path, s2, 0);
	ok(rs_snapshot_gc(path, future, RETENTION_MS, &removed, &keep_seq,
			  &err) == 0 && removed == 0,
	   "gc: none valid, the corrupt ones are kept for repair");
	is_int(keep_seq, 70, "gc: keep_seq still bounds the log");

	ok(rs_snapshot_gc(path, future, -1, &removed, &keep_seq, &err) == -1,
	   "gc: a negative retention is an error");
	rs_cache_free(a);
	remove_tmpdir(&t);
}

static void test_delete(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a;
	char path[TEST_PATH_MAX], want[TEST_PATH_MAX + 64];
	struct tmpdir t;
	int64_t s1, s2;

	make_tmpdir(&t, "snapshot-delete");
	join(path, &t, "resync.db");
	a = mk_cache(100, true);
	fill(a, 20, 0, 0);
	s1 = take(path, a, 1);
	s2 = take(path, a, 2);
	ok(rs_snapshot_delete(path, s1, &err) == 0, "delete: succeeds");
	ok(listed_ids(path, (int64_t[]){ s2 }, 1), "delete: the other stays");
	is_int(rows_of(path, s1), 0, "delete: its rows are gone");
	is_int(rows_of(path, s2), 20, "delete: the other's rows stay");
	ok(rs_snapshot_delete(path, 999, &err) == -1,
	   "delete: an unknown id is an error");
	snprintf(want, sizeof(want), "no snapshot 999 in '%s'", path);
	is_str(err.msg, want, "delete: names the id and the database");
	join(path, &t, "missing.db");
	ok(rs_snapshot_delete(path, 1, &err) == -1 && access(path, F_OK) != 0,
	   "delete: a missing database is an error, not created");
	rs_cache_free(a);
	remove_tmpdir(&t);
}

/* ---- take under load, take failures --------------------------------------- */

struct writer_arg {
	struct rs_cache *c;
	atomic_bool *stop;
	unsigned seed;
	unsigned long sets;
};

/* Values say which key they belong to: a row that mixes two entries (a
 * torn copy) does not decode. */
static size_t tagged_value(char *v, size_t n, const char *key, unsigned long k)
{
	int len = snprintf(v, n, "{\"key\":\"%s\",\"n\":%lu,\"pad\":\"", key, k);
	size_t i = (size_t)len, pad = 20 + k % 150;

	for (; i < (size_t)len + pad && i + 3 < n; i++)
		v[i] = (char)('a' + i % 26);
	v[i++] = '"';
	v[i++] = '}';
	return i;
}

static bool decodes(const void *key, size_t klen, const void *val, size_t vlen)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "{\"key\":\"%.*s\",", (int)klen,
			 (const char *)key);

	return n > 0 && vlen > (size_t)n + 2 && memcmp(val, head, (size_t)n) == 0 &&
	       ((const char *)val)[vlen - 1] == '}';
}

static void *writer(void *p)
{
	struct writer_arg *w = p;
	struct rs_err err = RS_ERR_INIT;
	char k[32], v[256];
	unsigned r;

	while (!atomic_load(w->stop)) {
		r = (unsigned)rand_r(&w->seed);
		key_of(k, sizeof(k), r % WRITER_KEYS);
		if (r % 10 == 0)
			rs_cache_delete(w->c, k, strlen(k));
		else
			rs_cache_set(w->c, k, strlen(k), v,
				     tagged_value(v, sizeof(v), k, w->sets),
				     -1, &err);
		w->sets++;
	}
	return NULL;
}

/* Every stored row of snapshot id decodes; returns how many rows, -1 on
 * the first bad one. */
static long long check_rows(const char *path, int64_t id)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	long long n = 0;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h,
			       "SELECT key, value FROM cache_snapshot_row"
			       " WHERE snapshot_id = ?1 ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		n = -1;
	while (n >= 0 && sqlite3_step(st) == SQLITE_ROW) {
		const void *k = sqlite3_column_blob(st, 0);
		size_t kl = (size_t)sqlite3_column_bytes(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		size_t vl = (size_t)sqlite3_column_bytes(st, 1);

		if (!decodes(k, kl, v, vl)) {
			printf("#   row %lld does not decode\n", n);
			n = -1;
		} else {
			n++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static void test_take_while_writing(void)
{
	struct writer_arg args[WRITER_THREADS];
	pthread_t th[WRITER_THREADS];
	struct rs_snapshot_load_report rep;
	struct rs_snapshot_info info[3];
	struct rs_err err = RS_ERR_INIT;
	atomic_bool stop = false;
	struct rs_cache *a, *b;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	unsigned long sets = 0;
	bool taken = true, verified = true, decoded = true;
	struct dump d;
	size_t i;
	int k;

	make_tmpdir(&t, "snapshot-concurrent");
	join(path, &t, "resync.db");
	/* Real time: the writers and the take race for real. */
	a = mk_cache(WRITER_MAX_ENTRIES, false);
	for (k = 0; k < WRITER_THREADS; k++) {
		args[k] = (struct writer_arg){ .c = a, .stop = &stop,
					       .seed = (unsigned)k + 1 };
		pthread_create(&th[k], NULL, writer, &args[k]);
	}
	usleep(20000);
	for (k = 0; k < 3; k++) {
		if (rs_snapshot_take(path, NULL, a, k + 1, &info[k], &err)) {
			printf("#   take: %s\n", err.msg);
			taken = false;
			continue;
		}
		if (!verify(path, info[k].id).ok)
			verified = false;
		if (check_rows(path, info[k].id) != (long long)info[k].entries)
			decoded = false;
	}
	atomic_store(&stop, true);
	for (k = 0; k < WRITER_THREADS; k++) {
		pthread_join(th[k], NULL);
		sets += args[k].sets;
	}
	printf("# %lu writes by %d threads during 3 takes; entries %" PRIu64
	       ", %" PRIu64 ", %" PRIu64 "\n",
	       sets, WRITER_THREADS, info[0].entries, info[1].entries,
	       info[2].entries);
	ok(taken, "under load: three takes finish (no deadlock)");
	ok(verified, "under load: each verifies");
	ok(decoded, "under load: every row decodes to its own key");
	/* Shards are copied at different moments, so the image may hold a
	 * few more entries than the cache ever did at once. */
	ok(info[2].entries > 0 && info[2].entries <= WRITER_KEYS,
	   "under load: the image has entries");

	b = mk_cache(WRITER_MAX_ENTRIES, false);
	ok(rs_snapshot_load(path, NULL, 0, b, &rep, &err) == 0 &&
		   rep.loaded_id == info[2].id &&
		   rep.entries == info[2].entries,
	   "under load: the newest loads whole");
	dump_cache(b, &d);
	for (i = 0; i < d.n; i++)
		if (!decodes(d.v[i].key, d.v[i].klen, d.v[i].val, d.v[i].vlen))
			decoded = false;
	ok(decoded && d.n <= info[2].entries && d.n <= WRITER_MAX_ENTRIES,
	   "under load: every loaded entry decodes, within the bound");
	dump_free(&d);
	rs_cache_free(b);
	rs_cache_free(a);
	remove_tmpdir(&t);
}

static void test_take_errors(void)
{
	struct rs_snapshot_info info;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *a;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	struct listed l;
	FILE *f;

	make_tmpdir(&t, "snapshot-errors");
	a = mk_cache(30000, true);
	fill(a, 25000, 0, 0);

	join(path, &t, "no-such-dir/resync.db");
	ok(rs_snapshot_take(path, NULL, a, 1, &info, &err) == -1,
	   "unwritable: a missing directory fails");
	has_str(err.msg, "cannot take a snapshot: cannot open database",
		"unwritable: says what could not be done");
	has_str(err.msg, "does not exist", "unwritable: and why");
	ok(info.id == 0 && !info.complete, "unwritable: info is zeroed");

	join(path, &t, "garbage.db");
	f = fopen(path, "w");
	if (f) {
		fputs("this is not a database, just some text that is long enough"
		      " to have a header .......................................\n",
		      f);
		fclose(f);
	}
	ok(rs_snapshot_take(path, NULL, a, 1, &info, &err) == -1,
	   "not a database: fails");
	has_str(err.msg, "is not a SQLite database", "not a database: says so");

	ok(rs_snapshot_take(t.path, NULL, a, 1, &info, &err) == -1,
	   "a directory: fails");

	/* A fault in the middle of the rows (as a full disk would be),
	 * after two commits of rows: the partial snapshot is removed. */
	join(path, &t, "fault.db");
	ok(take(path, a, 1) > 0, "fault: a first snapshot");
	sql(path, "CREATE TRIGGER fault BEFORE INSERT ON cache_snapshot_row"
		  " WHEN NEW.idx = 22222"
		  " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
	ok(rs_snapshot_take(path, NULL, a, 2, &info, &err) == -1,
	   "fault: take fails");
	has_str(err.msg, "injected fault", "fault: passes SQLite's reason on");
	has_str(err.msg, "cannot write snapshot 2 to '",
		"fault: names the snapshot and database");
	list(path, &l);
	ok(l.n == 1 && l.v[0].id == 1, "fault: the partial snapshot is gone");
	is_int(sql_int(path, "SELECT count(*) FROM cache_snapshot_row"
			     " WHERE snapshot_id <> 1"),
	       0, "fault: with all its rows");

	ok(rs_snapshot_take(path, NULL, a, -1, &info, &err) == -1,
	   "bad seq: a negative last seq is refused");
	rs_cache_free(a);
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	test_roundtrip();
	test_expired_and_rejected();
	test_list_order();
	test_changed_value();
	test_missing_and_swapped_rows();
	test_incomplete();
	test_no_snapshots();
	test_gc();
	test_delete();
	test_take_while_writing();
	test_take_errors();
	return tap_done();
}
