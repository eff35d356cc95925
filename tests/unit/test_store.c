/*
 * test_store: the durable cache.  What was set, deleted and purged comes
 * back after a reopen, from the log alone or from a snapshot plus the
 * records after it; expired entries stay gone and live ones keep their
 * original expiry; a corrupt record stops recovery where it is and is
 * reported; a store follows another process's records and not its own;
 * sync = always acknowledges only committed writes, fails the call and
 * leaves memory alone when the commit fails, and loses nothing under
 * kill -9 (ten rounds of a killed child); unstorable entries are never
 * logged; a snapshot never claims another process's records it has not
 * applied; gc drops old snapshots and the log they cover; concurrent
 * writers leave memory and the log in the same order.  Each test has a
 * temp directory of its own.
 *
 * Recovery time is printed as a TAP comment, never asserted.
 * RS_STORE_BENCH_N sets its entry count (default 20 000, half from a
 * snapshot, half from the log).  RS_CRASH_SEED=N repeats a crash run.
 */
#include "store.h"
#include "tap.h"
#include "testcache.h"
#include "testcrash.h"
#include "testlib.h"
#include "testsql.h"
#include "teststore.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHORT_TTL_MS 1000
#define MAX_ENTRIES 200000
#define MAX_MEMORY (256 * RS_MIB)
#define MAX_VALUE 4096
#define VALUE_BYTES 200
#define BENCH_N_DEFAULT 20000
#define BUSY_TIMEOUT_MS 50
#define CONC_THREADS 4
#define CONC_OPS 2000
#define CONC_KEYS 100
#define CONC_HOT_KEYS 4
#define CONC_BURSTS 8
#define CRASH_ROUNDS 10
#define KILL_MIN_MS 30
#define KILL_SPAN_MS 91              /* 30..120 ms */
#define READY_LIMIT_MS 10000         /* valgrind makes the child's start slow */

/* ---- helpers ------------------------------------------------------------- */

/* The same clock, but now and then it sleeps.  The store and the cache
 * read it inside their critical sections (a set reads it before logging,
 * the cache again while storing), so the sleeps widen exactly the windows
 * where a writer that let go of its key too early would be overtaken:
 * without them such a bug shows up in one run of many on two cores. */
static _Atomic unsigned jitter_calls;

static int64_t jittery_clock(void *arg)
{
	if (atomic_fetch_add(&jitter_calls, 1) % 2 == 0)
		usleep(20);
	return fake_clock(arg);
}

/* store_opts with a larger cache, a value limit and a short busy
 * timeout (a commit blocked by another connection's lock fails fast). */
static struct rs_store_options opts(const char *path, enum rs_wal_sync sync,
				    const char *origin)
{
	struct rs_store_options o = store_opts(path, sync, origin);

	o.busy_timeout_ms = BUSY_TIMEOUT_MS;
	o.cache.num_shards = 8;
	o.cache.max_entries = MAX_ENTRIES;
	o.cache.max_memory_bytes = MAX_MEMORY;
	o.cache.max_value_bytes = MAX_VALUE;
	return o;
}

static int count_cb(void *arg, const struct rs_wal_record *r)
{
	(void)r;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Good records in the log, -1 when it cannot be read. */
static long long log_records(const char *path)
{
	struct rs_err err = RS_ERR_INIT;
	uint64_t n = 0;

	if (rs_wal_read(path, 0, NULL, count_cb, &n, NULL, &err)) {
		printf("#   rs_wal_read: %s\n", err.msg);
		return -1;
	}
	return (long long)n;
}

static void value_of(unsigned char *v, unsigned i, unsigned g)
{
	size_t j;

	/* Every byte value, NULs too. */
	for (j = 0; j < VALUE_BYTES; j++)
		v[j] = (unsigned char)(i * 131u + j * 7u + g);
}

/* ---- recovery ------------------------------------------------------------ */

static void test_log_only(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_store *s;
	struct dump before = { 0 };
	unsigned char v[VALUE_BYTES];
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct tmpdir t;
	int deleted = -1;
	uint64_t removed = 0;

	if (make_tmpdir(&t, "store-log")) {
		ok(0, "log only: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_BATCH, "one");
	s = open_store(&o, &rec);
	ok(s != NULL,
	   "open: a missing database is created, nothing to recover");
	if (!s)
		goto out;
	is_int(rec.snapshot.loaded_id + (int64_t)rec.replayed + rec.last_seq,
	       0, "open: an empty database recovers nothing");
	value_of(v, 1, 0);
	set_str(s, "a", "1", -1);
	set_str(s, "b", "2", 5 * SHORT_TTL_MS);
	rs_store_set(s, "bin", 3, v, sizeof(v), -1, &err);
	set_str(s, "p:1", "x", -1);
	set_str(s, "p:2", "y", -1);
	set_str(s, "a", "1-again", -1);
	rs_store_delete(s, "b", 1, &deleted, &err);
	is_int(deleted, 1, "delete: says the key was there");
	rs_store_delete(s, "nope", 4, &deleted, &err);
	is_int(deleted, 0, "delete: says the key was not there");
	rs_store_purge(s, "p:", 2, &removed, &err);
	is_int(removed, 2, "purge: counts what it removed");
	set_str(s, "p:3", "after the purge", -1);
	dump_cache(rs_store_cache(s), &before);
	is_int(before.n, 3, "before close: a, bin, p:3 and nothing else");
	close_store(s);

	s = open_store(&o, &rec);
	ok(s != NULL, "reopen after set/delete/purge");
	if (!s)
		goto out;
	is_int(rec.snapshot.loaded_id, 0, "reopen: no snapshot, log only");
	is_int(rec.replayed, 10, "reopen: every record replayed");
	is_int(rec.last_seq, 10, "reopen: recovered up to the last seq");
	ok(!rec.log.stopped, "reopen: no bad record");
	ok(same_as(&before, s), "reopen: same contents, times included");
	ok(has_value(s, "a", "1-again") && absent(s, "b") && absent(s, "p:1"),
	   "reopen: last writer wins per key, delete and purge hold");
	close_store(s);
out:
	dump_free(&before);
	remove_tmpdir(&t);
}

static void test_snapshot_then_log(void)
{
	struct rs_store_recovery rec;
	struct rs_snapshot_info info;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct dump before = { 0 };
	char path[TEST_PATH_MAX], k[32];
	struct rs_store *s;
	struct tmpdir t;
	int i, rc;

	if (make_tmpdir(&t, "store-snap")) {
		ok(0, "snapshot: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_BATCH, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "snapshot: open");
		goto out;
	}
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		set_str(s, k, k, -1);
	}
	rc = rs_store_snapshot(s, &info, &err);
	if (rc)
		printf("#   snapshot: %s\n", err.msg);
	ok(rc == 0 && info.complete, "snapshot: taken");
	is_int(info.last_seq, 100,
	       "snapshot: last_seq is the last record, flushed");
	is_int(info.entries, 100, "snapshot: holds every entry");
	/* 7 records after it. */
	set_str(s, "k000", "changed", -1);
	set_str(s, "new", "n", -1);
	del_str(s, "k001");
	purge_str(s, "k09");
	set_str(s, "k095", "back", -1);
	del_str(s, "absent");
	set_str(s, "k002", "changed", SHORT_TTL_MS);
	dump_cache(rs_store_cache(s), &before);
	close_store(s);

	s = open_store(&o, &rec);
	ok(s != NULL, "snapshot: reopen");
	if (!s)
		goto out;
	is_int(rec.snapshot.loaded_id, info.id,
	       "reopen: the snapshot is loaded");
	is_int(rec.snapshot.entries, 100, "reopen: all of its entries");
	is_int(rec.replayed, 7,
	       "reopen: only the records after it are replayed");
	is_int(rec.log.first_seq, 101,
	       "reopen: replay starts after its last_seq");
	ok(same_as(&before, s), "reopen: snapshot + log = what memory held");
	ok(rec.took_ms >= 0, "reopen: took_ms measured");
	close_store(s);
out:
	dump_free(&before);
	remove_tmpdir(&t);
}

/* b's records interleave with a's; a snapshot of a must not claim a seq
 * past records of b it has not applied. */
static void test_snapshot_other_origin(void)
{
	struct rs_store_recovery rec;
	struct rs_snapshot_info info = { 0 };
	struct rs_store_options oa, ob;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *a = NULL, *b = NULL, *c = NULL;
	struct tmpdir t;
	int rc;

	if (make_tmpdir(&t, "store-snap-other")) {
		ok(0, "snapshot, other origin: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	oa = opts(path, RS_WAL_SYNC_BATCH, "a");
	ob = opts(path, RS_WAL_SYNC_ALWAYS, "b");
	a = open_store(&oa, NULL);
	b = open_store(&ob, NULL);
	if (!a || !b) {
		ok(0, "snapshot, other origin: open two stores");
		goto out;
	}
	set_str(b, "from-b", "1", -1);          /* seq 1, a has not followed */
	set_str(a, "from-a", "2", -1);          /* queued, seq 2 at commit */
	rc = rs_store_snapshot(a, &info, &err);
	if (rc)
		printf("#   snapshot: %s\n", err.msg);
	ok(rc == 0, "snapshot, other origin: taken");
	is_int(info.last_seq, 2, "snapshot, other origin: claims both records");
	ok(has_value(a, "from-b", "1"),
	   "snapshot, other origin: b's record applied before the image");
	is_int(info.entries, 2, "snapshot, other origin: the image holds both");
	close_store(b);
	b = NULL;
	close_store(a);
	a = NULL;
	c = open_store(&ob, &rec);
	ok(c && rec.snapshot.loaded_id == info.id && rec.replayed == 0 &&
	   has_value(c, "from-b", "1") && has_value(c, "from-a", "2"),
	   "snapshot, other origin: recovery from it has both");
out:
	close_store(a);
	close_store(b);
	close_store(c);
	remove_tmpdir(&t);
}

static void test_expiry(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_value m1 = { 0 }, m2 = { 0 }, a1 = { 0 }, a2 = { 0 };
	char path[TEST_PATH_MAX], *v;
	struct rs_store *s;
	struct tmpdir t;

	if (make_tmpdir(&t, "store-expiry")) {
		ok(0, "expiry: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	atomic_store(&clk, T0_MS);
	o = opts(path, RS_WAL_SYNC_BATCH, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "expiry: open");
		goto out;
	}
	/* Two of each: one in the snapshot, one only in the log. */
	set_str(s, "snap-short", "x", SHORT_TTL_MS);
	set_str(s, "snap-long", "y", 10 * SHORT_TTL_MS);
	if (rs_store_snapshot(s, NULL, &err))
		printf("#   snapshot: %s\n", err.msg);
	atomic_fetch_add(&clk, 100);
	set_str(s, "log-short", "x", SHORT_TTL_MS);
	set_str(s, "log-long", "y", 10 * SHORT_TTL_MS);
	free(get_str(s, "snap-long", &m1));
	free(get_str(s, "log-long", &a1));
	close_store(s);

	/* Closed for 5 s: the short ones expired meanwhile. */
	atomic_fetch_add(&clk, 5 * SHORT_TTL_MS);
	s = open_store(&o, &rec);
	ok(s != NULL, "expiry: reopen later");
	if (!s)
		goto out;
	ok(absent(s, "snap-short") && absent(s, "log-short"),
	   "expiry: entries that expired while closed do not come back");
	is_int(rec.snapshot.expired, 1,
	       "expiry: the snapshot's expired row is skipped");
	is_int(rec.expired, 1, "expiry: the log's expired set is counted");
	v = get_str(s, "snap-long", &m2);
	ok(v && m2.expires_ms == m1.expires_ms && m2.stored_ms == m1.stored_ms,
	   "expiry: from the snapshot, a live entry keeps its original expiry");
	free(v);
	v = get_str(s, "log-long", &a2);
	ok(v && a2.expires_ms == a1.expires_ms && a2.stored_ms == a1.stored_ms,
	   "expiry: from the log, a live entry keeps its original expiry");
	if (!v || a2.expires_ms != a1.expires_ms)
		printf("#   expected expiry %" PRId64 ", got %" PRId64 "\n",
		       a1.expires_ms, a2.expires_ms);
	is_int(a2.expires_ms, T0_MS + 100 + 10 * SHORT_TTL_MS,
	       "expiry: stored + TTL of the original set, not a fresh TTL");
	free(v);
	close_store(s);
out:
	remove_tmpdir(&t);
}

static void test_corrupt_record(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], k[16];
	struct rs_store *s;
	struct tmpdir t;
	bool before = true, after = true;
	uint64_t applied = 99;
	int i, rc;

	if (make_tmpdir(&t, "store-corrupt")) {
		ok(0, "corrupt: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_BATCH, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "corrupt: open");
		goto out;
	}
	for (i = 1; i <= 10; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		set_str(s, k, k, -1);
	}
	close_store(s);
	sql(path, "UPDATE cache_log SET value = X'00' WHERE seq = 6");

	s = open_store(&o, &rec);
	ok(s != NULL, "corrupt: the store still opens");
	if (!s)
		goto out;
	ok(rec.log.stopped, "corrupt: recovery reports it stopped");
	is_int(rec.log.bad_seq, 6, "corrupt: the report names the bad seq");
	is_str(rec.log.reason, "checksum mismatch", "corrupt: and the reason");
	is_int(rec.replayed, 5, "corrupt: the records before it replayed");
	for (i = 1; i <= 10; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		if (i < 6)
			before = has_value(s, k, k) && before;
		else
			after = absent(s, k) && after;
	}
	ok(before, "corrupt: records before the bad one recovered");
	ok(after, "corrupt: nothing from the bad one on");
	is_int(rec.last_seq, 5, "corrupt: recovered up to the seq before it");
	rc = rs_store_follow(s, &applied, &err);
	ok(rc == -1, "corrupt: follow fails on the bad record");
	has_str(err.msg, "seq 6: checksum mismatch",
	        "corrupt: follow's error names seq and reason");
	is_int(applied, 0, "corrupt: follow applied nothing");
	ok(set_str(s, "later", "w", -1) == 0,
	   "corrupt: the store takes writes");
	close_store(s);
out:
	remove_tmpdir(&t);
}

/* ---- follow, sync = always, failures ------------------------------------- */

static void test_follow(void)
{
	struct rs_store_options oa, ob;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_stats st = { 0 };
	char path[TEST_PATH_MAX];
	struct rs_store *a = NULL, *b = NULL;
	struct tmpdir t;
	uint64_t applied = 0, sets_before;
	int rc;

	if (make_tmpdir(&t, "store-follow")) {
		ok(0, "follow: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	oa = opts(path, RS_WAL_SYNC_ALWAYS, "a");
	ob = opts(path, RS_WAL_SYNC_ALWAYS, "b");
	a = open_store(&oa, NULL);
	b = open_store(&ob, NULL);
	if (!a || !b) {
		ok(0, "follow: open two stores on one database");
		goto out;
	}
	set_str(a, "own", "a's", -1);
	set_str(a, "p:a", "a's, purged by b", -1);
	set_str(b, "x", "from b", -1);
	set_str(b, "y", "from b", -1);
	del_str(b, "x");
	purge_str(b, "p:");
	set_str(a, "own2", "a's", -1);
	set_str(b, "z", "from b", -1);
	rs_cache_stats(rs_store_cache(a), &st, &err);
	sets_before = st.sets;
	rs_cache_stats_free(&st);

	rc = rs_store_follow(a, &applied, &err);
	if (rc)
		printf("#   follow: %s\n", err.msg);
	ok(rc == 0, "follow: reads the log");
	is_int(applied, 5, "follow: applies b's 5 records, not a's own 3");
	rs_cache_stats(rs_store_cache(a), &st, &err);
	is_int(st.sets - sets_before, 3,
	       "follow: a's own sets are not re-applied");
	rs_cache_stats_free(&st);
	ok(has_value(a, "y", "from b") && has_value(a, "z", "from b") &&
	   absent(a, "x"), "follow: b's sets and deletes reach a");
	ok(absent(a, "p:a"), "follow: b's purge reaches a");
	ok(has_value(a, "own", "a's") && has_value(a, "own2", "a's"),
	   "follow: a's own entries stay");
	rs_store_follow(a, &applied, &err);
	is_int(applied, 0, "follow: a second call finds nothing new");
	set_str(b, "w", "later", -1);
	rs_store_follow(a, &applied, &err);
	ok(applied == 1 && has_value(a, "w", "later"),
	   "follow: picks up where it stopped");
out:
	close_store(a);
	close_store(b);
	remove_tmpdir(&t);
}

struct find {
	const char *key;
	bool found;
};

static int find_cb(void *arg, const struct rs_wal_record *r)
{
	struct find *f = arg;

	if (r->klen == strlen(f->key) && memcmp(r->key, f->key, r->klen) == 0)
		f->found = true;
	return 0;
}

static void test_always_committed(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct find f = { .key = "durable" };
	struct rs_store *s;
	struct tmpdir t;

	if (make_tmpdir(&t, "store-always")) {
		ok(0, "always: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "always: open");
		goto out;
	}
	ok(set_str(s, "durable", "v", -1) == 0, "always: set returns");
	ok(rs_wal_read(path, 0, NULL, find_cb, &f, NULL, &err) == 0 && f.found,
	   "always: another reader sees the record as soon as set returns");
	close_store(s);
out:
	remove_tmpdir(&t);
}

static void test_write_failure(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_stats ws;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	sqlite3 *h = NULL;
	struct tmpdir t;
	uint64_t removed = 99;
	int deleted = 99, rc;

	if (make_tmpdir(&t, "store-fail")) {
		ok(0, "failure: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "failure: open");
		goto out;
	}
	set_str(s, "k", "v1", -1);
	/* Another connection holds the write lock past the busy timeout. */
	if (sqlite3_open(path, &h) != SQLITE_OK ||
	    sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		ok(0, "failure: lock the database");
		goto out_close;
	}
	rc = rs_store_set(s, "k", 1, "v2", 2, -1, &err);
	ok(rc == -1, "failure: set fails when its commit fails");
	has_str(err.msg, "cannot log the set of 'k'",
	        "failure: the error names the key");
	is_int(err.code, EIO, "failure: and says the log failed (EIO)");
	printf("#   %s\n", err.msg);
	ok(has_value(s, "k", "v1"), "failure: memory keeps the old value");
	rc = rs_store_set(s, "new", 3, "v", 1, -1, &err);
	ok(rc == -1 && absent(s, "new"), "failure: a new key is not in memory");
	rc = rs_store_delete(s, "k", 1, &deleted, &err);
	ok(rc == -1 && deleted == 0 && has_value(s, "k", "v1"),
	   "failure: a failed delete leaves the key");
	rc = rs_store_purge(s, NULL, 0, &removed, &err);
	ok(rc == -1 && removed == 0 && has_value(s, "k", "v1"),
	   "failure: a failed purge leaves everything");
	rs_store_wal_stats(s, &ws);
	ok(ws.dropped >= 4 && ws.degraded,
	   "failure: the log counts them and is degraded");
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	h = NULL;
	ok(set_str(s, "k", "v3", -1) == 0 && has_value(s, "k", "v3"),
	   "failure: writes succeed again once the lock is gone");
	close_store(s);
	s = open_store(&o, NULL);
	ok(s && has_value(s, "k", "v3") && absent(s, "new"),
	   "failure: after reopen, failed writes are nowhere");
out_close:
	if (h)
		sqlite3_close(h);
	close_store(s);
out:
	remove_tmpdir(&t);
}

static void test_refused(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_stats ws;
	char path[TEST_PATH_MAX], *big, longkey[RS_CACHE_MAX_KEY_BYTES + 2];
	struct rs_store *s;
	struct tmpdir t;
	int rc;

	if (make_tmpdir(&t, "store-refused")) {
		ok(0, "refused: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one");
	o.cache.max_memory_bytes = 4 * MAX_VALUE;
	o.cache.max_value_bytes = 8 * MAX_VALUE;
	s = open_store(&o, NULL);
	big = calloc(1, 8 * MAX_VALUE + 1);
	if (!s || !big) {
		ok(0, "refused: open");
		goto out;
	}
	set_str(s, "k", "small", -1);
	rc = rs_store_set(s, "k", 1, big, 8 * MAX_VALUE + 1, -1, &err);
	ok(rc == -1, "refused: a value over max_value_bytes");
	has_str(err.msg, "at most 32768 allowed", "refused: says the limit");
	rc = rs_store_set(s, "k", 1, big, 4 * MAX_VALUE, -1, &err);
	ok(rc == -1, "refused: an entry over max_memory_bytes");
	has_str(err.msg, "max_memory_bytes", "refused: says which bound");
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	ok(rs_store_set(s, longkey, strlen(longkey), "v", 1, -1, &err) == -1,
	   "refused: a key over max_key_bytes");
	ok(rs_store_set(s, "", 0, "v", 1, -1, &err) == -1,
	   "refused: an empty key");
	ok(rs_store_delete(s, "", 0, NULL, &err) == -1,
	   "refused: delete of an empty key");
	ok(has_value(s, "k", "small"), "refused: the old value stays");
	rs_store_wal_stats(s, &ws);
	is_int(ws.appended, 1, "refused: nothing was appended to the log");
	is_int(log_records(path), 1, "refused: no log record written");
	close_store(s);
out:
	free(big);
	remove_tmpdir(&t);
}

/* An entry within the sizes the store checks but a few bytes too large
 * for the cache (its header and malloc rounding): logged, refused by the
 * cache, undone with a logged delete, so memory and recovery agree. */
static void test_refused_after_logging(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], *big;
	struct rs_store *s;
	struct tmpdir t;
	size_t vlen;
	int rc;

	if (make_tmpdir(&t, "store-undo")) {
		ok(0, "undo: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one");
	o.cache.max_memory_bytes = 4 * MAX_VALUE;
	o.cache.max_value_bytes = 8 * MAX_VALUE;
	vlen = 4 * MAX_VALUE - 1 - RS_CACHE_INDEX_BYTES_PER_ENTRY;
	s = open_store(&o, NULL);
	big = calloc(1, vlen);
	if (!s || !big) {
		ok(0, "undo: open");
		goto out;
	}
	set_str(s, "k", "old", -1);
	rc = rs_store_set(s, "k", 1, big, vlen, -1, &err);
	ok(rc == -1, "undo: the cache refuses what the store let through");
	has_str(err.msg, "max_memory_bytes", "undo: with the cache's reason");
	ok(absent(s, "k"), "undo: the old value is gone from memory");
	is_int(log_records(path), 3, "undo: set, refused set, delete logged");
	close_store(s);
	s = open_store(&o, &rec);
	ok(s && absent(s, "k"), "undo: recovery agrees: the key is gone");
	is_int(rec.rejected, 1, "undo: recovery counts the refused set");
	has_str(rec.rejected_reason, "seq 2: ", "undo: and names its seq");
	close_store(s);
out:
	free(big);
	remove_tmpdir(&t);
}

static void test_sync_off(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	uint64_t applied = 9;

	if (make_tmpdir(&t, "store-off")) {
		ok(0, "off: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_OFF, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "off: open");
		goto out;
	}
	ok(set_str(s, "k", "v", -1) == 0 && has_value(s, "k", "v"),
	   "off: sets apply to memory");
	ok(rs_store_follow(s, &applied, &err) == 0 && applied == 0,
	   "off: follow does nothing");
	ok(rs_store_snapshot(s, NULL, &err) == -1,
	   "off: a snapshot is refused");
	has_str(err.msg, "sync = off", "off: and says why");
	ok(access(path, F_OK) != 0, "off: no database is created");
	close_store(s);
out:
	remove_tmpdir(&t);
}

/* ---- gc ------------------------------------------------------------------ */

static int count_snap(void *arg, const struct rs_snapshot_info *info)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

static void test_gc(void)
{
	struct rs_store_recovery rec;
	struct rs_snapshot_info info[3];
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct dump before = { 0 };
	char path[TEST_PATH_MAX], k[16];
	struct rs_store *s;
	struct tmpdir t;
	uint64_t snaps = 0;
	int64_t records = 0;
	int i, j, left = 0, rc;

	if (make_tmpdir(&t, "store-gc")) {
		ok(0, "gc: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	/* always: the records after the last snapshot are committed when
	 * gc runs, so the log's newest record (always kept) is one of them. */
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one");
	o.snapshot_retention_ms = 0;
	o.wal_retention_ms = 0;
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "gc: open");
		goto out;
	}
	for (j = 0; j < 3; j++) {
		for (i = 0; i < 10; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			set_str(s, k, j == 0 ? "one" : j == 1 ? "two" : "three",
				-1);
		}
		if (rs_store_snapshot(s, &info[j], &err))
			printf("#   snapshot: %s\n", err.msg);
	}
	set_str(s, "after", "1", -1);
	set_str(s, "after", "2", -1);
	del_str(s, "k0");
	/* Ages are whole ms: make every record and snapshot older than now. */
	usleep(20000);
	rc = rs_store_gc(s, &snaps, &records, &err);
	if (rc)
		printf("#   gc: %s\n", err.msg);
	ok(rc == 0, "gc: runs");
	is_int(snaps, 2, "gc: removes the snapshots past retention");
	rs_snapshot_list(path, count_snap, &left, &err);
	is_int(left, 1, "gc: keeps the newest valid one");
	is_int(records, info[2].last_seq,
	       "gc: truncates the log up to the kept snapshot");
	is_int(sql_int(path, "SELECT min(seq) FROM cache_log"),
	       info[2].last_seq + 1, "gc: the log starts right after it");
	dump_cache(rs_store_cache(s), &before);
	close_store(s);

	s = open_store(&o, &rec);
	ok(s != NULL, "gc: reopen");
	if (!s)
		goto out;
	is_int(rec.snapshot.loaded_id, info[2].id,
	       "gc: recovery loads the kept snapshot");
	is_int(rec.replayed, 3, "gc: and replays the records after it");
	ok(!rec.log.stopped, "gc: with no gap");
	ok(same_as(&before, s), "gc: same contents after gc and reopen");
	close_store(s);
out:
	dump_free(&before);
	remove_tmpdir(&t);
}

/* ---- concurrency --------------------------------------------------------- */

struct worker {
	struct rs_store *s;
	unsigned seed;
	int ops;
	int failures;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct rs_err err = RS_ERR_INIT;
	unsigned char v[VALUE_BYTES];
	char k[16];
	int i, r, key;

	for (i = 0; i < w->ops; i++) {
		r = rand_r(&w->seed);
		/* Half the writes on a few hot keys, so threads collide on
		 * one key often: that is where order can go wrong. */
		key = (r >> 4) % (r & 8 ? CONC_HOT_KEYS : CONC_KEYS);
		snprintf(k, sizeof(k), "c%02d", key);
		if (r % 1000 == 0) {
			if (rs_store_purge(w->s, "c1", 2, NULL, &err))
				w->failures++;
		} else if (r % 3 == 0) {
			if (rs_store_delete(w->s, k, strlen(k), NULL, &err))
				w->failures++;
		} else {
			value_of(v, (unsigned)key, (unsigned)r);
			/* Differing TTLs: the expiry must match too. */
			if (rs_store_set(w->s, k, strlen(k), v,
					 (size_t)(r % VALUE_BYTES), LONG_TTL_MS + r % 1000,
					 &err))
				w->failures++;
		}
		if (i % 64 == 0)
			atomic_fetch_add(&clk, 1);
	}
	return NULL;
}

/* The writes are cut into bursts with a close and reopen after each:
 * only the last write to each key decides the contents, so every burst is
 * another chance to catch memory and the log disagreeing on the order. */
static void test_concurrent(void)
{
	struct rs_store_recovery rec;
	struct rs_snapshot_info info = { 0 };
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct worker w[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	struct dump before = { 0 };
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	int b, i, failures = 0, snap_rc = -1, same = 0;
	int64_t loaded = -1;

	if (make_tmpdir(&t, "store-conc")) {
		ok(0, "concurrent: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_BATCH, "one");
	o.sync_interval_ms = 5;
	o.cache.clock_ms = jittery_clock;
	s = open_store(&o, NULL);
	for (i = 0; i < CONC_THREADS; i++)
		w[i] = (struct worker){ .seed = 1234u + (unsigned)i,
					.ops = CONC_OPS / CONC_BURSTS };
	for (b = 0; s && b < CONC_BURSTS; b++) {
		for (i = 0; i < CONC_THREADS; i++) {
			w[i].s = s;
			pthread_create(&th[i], NULL, worker_main, &w[i]);
		}
		/* A snapshot in the middle of one: the image is taken
		 * while the writers run, recovery must still end exactly
		 * where memory is. */
		if (b == CONC_BURSTS / 2) {
			usleep(2000);
			snap_rc = rs_store_snapshot(s, &info, &err);
			if (snap_rc)
				printf("#   snapshot: %s\n", err.msg);
		}
		for (i = 0; i < CONC_THREADS; i++)
			pthread_join(th[i], NULL);
		dump_cache(rs_store_cache(s), &before);
		close_store(s);
		s = open_store(&o, &rec);
		if (s && same_as(&before, s))
			same++;
		else
			printf("#   burst %d: reopened contents differ\n", b);
		dump_free(&before);
		loaded = rec.snapshot.loaded_id;
	}
	for (i = 0; i < CONC_THREADS; i++)
		failures += w[i].failures;
	is_int(failures, 0, "concurrent: every write succeeded");
	ok(snap_rc == 0, "concurrent: a snapshot taken while writers run");
	printf("#   snapshot %" PRId64 " at seq %" PRId64 ", %" PRIu64
	       " records replayed at the last reopen\n",
	       rec.snapshot.loaded_id, rec.snapshot.last_seq, rec.replayed);
	is_int(loaded, info.id, "concurrent: recovery loads the snapshot");
	is_int(rec.last_seq, CONC_THREADS * CONC_OPS,
	       "concurrent: every write is a record");
	is_int(same, CONC_BURSTS,
	       "concurrent: each burst reopens to what memory held at close");
	close_store(s);
	remove_tmpdir(&t);
}

/* ---- crash --------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t r;

	while (len) {
		r = write(fd, buf, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(4);
		buf += r;
		len -= (size_t)r;
	}
}

static void crash_value(char *buf, size_t n, long i)
{
	snprintf(buf, n, "value-%ld-%0100ld", i, i * 7919);
}

static void run_child(const char *path, int fd)
{
	struct rs_store_options o = opts(path, RS_WAL_SYNC_ALWAYS, "child");
	struct rs_err err = RS_ERR_INIT;
	struct rs_store *s = NULL;
	char key[32], val[160], line[64];
	long i;
	int n;

	o.cache.clock_ms = NULL;
	if (rs_store_open(&s, &o, NULL, &err)) {
		dprintf(fd, "fail %s\n", err.msg);
		_exit(2);
	}
	write_all(fd, "ready\n", 6);
	for (i = 0;; i++) {
		snprintf(key, sizeof(key), "k%ld", i);
		crash_value(val, sizeof(val), i);
		if (rs_store_set(s, key, strlen(key), val, strlen(val), -1,
				 &err)) {
			dprintf(fd, "fail %s\n", err.msg);
			_exit(3);
		}
		n = snprintf(line, sizeof(line), "%ld\n", i);
		write_all(fd, line, (size_t)n);
	}
}


static void crash_round(int round, size_t *total)
{
	struct rs_store_options o;
	struct rs_store_recovery rec;
	struct crash_out out = { 0 };
	char path[TEST_PATH_MAX], name[96], key[32], want[160], *line, *save;
	char *end;
	struct rs_store *s = NULL;
	struct tmpdir t;
	int status = 0, kill_ms;
	size_t acked = 0, missing = 0;
	bool ready, good;
	long i;

	kill_ms = KILL_MIN_MS + rand() % KILL_SPAN_MS;
	snprintf(name, sizeof(name),
		 "crash %d (kill after %d ms): every acknowledged set recovered",
		 round, kill_ms);
	if (make_tmpdir(&t, "store-crash")) {
		ok(0, name);
		return;
	}
	join(path, &t, "resync.db");
	if (crash_kill_child(run_child, path, READY_LIMIT_MS, kill_ms, &out,
			     &ready, &status) < 0) {
		ok(0, name);
		remove_tmpdir(&t);
		return;
	}

	o = opts(path, RS_WAL_SYNC_BATCH, "parent");
	o.cache.clock_ms = NULL;
	s = open_store(&o, &rec);
	good = ready && s && !rec.log.stopped && WIFSIGNALED(status) &&
	       WTERMSIG(status) == SIGKILL;
	if (!ready)
		printf("#   the child never became ready\n");
	if (rec.log.stopped)
		printf("#   recovery stopped at seq %" PRId64 ": %s\n",
		       rec.log.bad_seq, rec.log.reason);
	for (line = out.buf ? strtok_r(out.buf, "\n", &save) : NULL;
	     s && line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "ready") == 0)
			continue;
		if (strncmp(line, "fail ", 5) == 0) {
			printf("#   child failed: %s\n", line + 5);
			good = false;
			continue;
		}
		i = strtol(line, &end, 10);
		if (*end) {
			printf("#   bad line from the child: \"%s\"\n", line);
			good = false;
			continue;
		}
		acked++;
		snprintf(key, sizeof(key), "k%ld", i);
		crash_value(want, sizeof(want), i);
		if (!has_value(s, key, want))
			missing++;
	}
	if (missing)
		good = false;
	ok(good, name);
	printf("#   %zu acknowledged, %" PRIu64 " recovered records\n", acked,
	       rec.replayed);
	*total += acked;
	close_store(s);
	free(out.buf);
	remove_tmpdir(&t);
}

static void test_crash(void)
{
	const char *env = getenv("RS_CRASH_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) :
			      (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t total = 0;
	int i;

	printf("# RS_CRASH_SEED=%u\n", seed);
	srand(seed);
	for (i = 0; i < CRASH_ROUNDS; i++)
		crash_round(i, &total);
	ok(total > 0, "crash: the children acknowledged writes at all");
}

/* ---- recovery time ------------------------------------------------------- */

static void test_recovery_time(void)
{
	const char *env = getenv("RS_STORE_BENCH_N");
	unsigned n = env ? (unsigned)strtoul(env, NULL, 10) : BENCH_N_DEFAULT;
	struct rs_store_recovery rec;
	struct rs_snapshot_info info;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	unsigned char v[VALUE_BYTES];
	char path[TEST_PATH_MAX], k[32];
	struct rs_store *s;
	struct tmpdir t;
	int64_t t0;
	unsigned i, failed = 0;

	if (n < 2 || n > MAX_ENTRIES)
		n = BENCH_N_DEFAULT;
	if (make_tmpdir(&t, "store-bench")) {
		ok(0, "recovery time: temp dir");
		return;
	}
	join(path, &t, "resync.db");
	o = opts(path, RS_WAL_SYNC_BATCH, "bench");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "recovery time: open");
		goto out;
	}
	t0 = rs_monotonic_ms();
	for (i = 0; i < n; i++) {
		if (i == n / 2 && rs_store_snapshot(s, &info, &err))
			printf("#   snapshot: %s\n", err.msg);
		snprintf(k, sizeof(k), "key:%08u", i);
		value_of(v, i, 0);
		if (rs_store_set(s, k, strlen(k), v, sizeof(v), -1, &err))
			failed++;
	}
	close_store(s);
	printf("# %u sets (batch) and a snapshot at half: %" PRId64 " ms\n", n,
	       rs_monotonic_ms() - t0);

	s = open_store(&o, &rec);
	ok(s && failed == 0, "recovery time: reopen");
	if (!s)
		goto out;
	is_int(rec.snapshot.entries + rec.replayed, n,
	       "recovery time: every entry from the snapshot or the log");
	printf("# recovery of %u entries (%" PRIu64 " from snapshot %" PRId64
	       ", %" PRIu64 " from the log): %" PRId64 " ms\n",
	       n, rec.snapshot.entries, rec.snapshot.loaded_id, rec.replayed,
	       rec.took_ms);
	close_store(s);
out:
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	/* A child killed while writing must not kill us by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	test_log_only();
	test_snapshot_then_log();
	test_snapshot_other_origin();
	test_expiry();
	test_corrupt_record();
	test_follow();
	test_always_committed();
	test_write_failure();
	test_refused();
	test_refused_after_logging();
	test_sync_off();
	test_gc();
	test_concurrent();
	test_recovery_time();
	/* Last, and with no store open: fork() copies only this thread. */
	test_crash();
	return tap_done();
}
