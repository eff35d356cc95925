/*
 * bench_cache: how fast the cache and its log are, each against a baseline
 * measured in the same run on the same machine (these machines are noisy:
 * only ratios within one run mean anything).
 *
 *   1. get and set ops/s, 1 and 2 threads (in memory);
 *   2. durable writes: the cache log with sync = batch and sync = always
 *      (8 appending threads, so group commit can work) against raw SQLite
 *      inserts in 1000-row transactions with synchronous = FULL into a
 *      table of the same shape (target: batch >= 0.8x);
 *   3. recovery: replaying N log records into an empty cache, and a store
 *      reopening from a snapshot of N entries plus a log tail (target for
 *      1 000 000: < 2 s);
 *   4. memory: RSS growth per entry against the payload for 200-byte values
 *      (target <= 1.5x).
 *
 * usage: bench_cache [-n ENTRIES] [-d DIR]     (default 1000000, $TMPDIR)
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "store.h"
#include "util.h"
#include "wal.h"

#define VALUE_BYTES 200
#define KEY_FMT "job:%08d"

static long n_entries = 1000000;
static char dir[512];
static char value[VALUE_BYTES + 1];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_cache: %s: %s\n", what, msg);
	exit(2);
}

static struct rs_cache *new_cache(uint64_t entries, uint64_t bytes)
{
	struct rs_cache_options o = {
		.num_shards = 32, .max_entries = entries,
		.max_memory_bytes = bytes, .default_ttl_ms = 3600 * 1000,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c;

	if (rs_cache_new(&c, &o, &err) < 0)
		die("cache", err.msg);
	return c;
}

/* ---- 1. in-memory get/set ------------------------------------------------- */

struct op_arg {
	struct rs_cache *c;
	int id, nthreads;
	long ops;
	int do_set;
};

static void *op_thread(void *p)
{
	struct op_arg *a = p;
	char key[32];
	unsigned seed = (unsigned)a->id * 7919u + 1;

	for (long i = 0; i < a->ops; i++) {
		int k = (int)(rand_r(&seed) % 100000);
		int klen = snprintf(key, sizeof(key), KEY_FMT, k);

		if (a->do_set) {
			if (rs_cache_set(a->c, key, (size_t)klen, value, VALUE_BYTES, -1, NULL) < 0)
				die("set", "failed");
		} else {
			struct rs_cache_value v = { 0 };

			if (rs_cache_get(a->c, key, (size_t)klen, 0, &v) != RS_CACHE_MISS)
				rs_cache_value_free(&v);
		}
	}
	return NULL;
}

static double run_ops(struct rs_cache *c, int nthreads, int do_set, long ops)
{
	pthread_t t[8];
	struct op_arg a[8];
	double t0 = now_s();

	for (int i = 0; i < nthreads; i++) {
		a[i] = (struct op_arg){ c, i, nthreads, ops / nthreads, do_set };
		pthread_create(&t[i], NULL, op_thread, &a[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	return (double)ops / (now_s() - t0);
}

static void bench_memory_ops(void)
{
	struct rs_cache *c = new_cache(1000000, 1024LL * 1024 * 1024);
	long ops = 2000000;

	printf("## in-memory operations (100000 keys, 200-byte values)\n");
	for (int n = 1; n <= 2; n++) {
		double set = run_ops(c, n, 1, ops);
		double get = run_ops(c, n, 0, ops);

		printf("set  %d thread%s  %10.0f ops/s\n", n, n > 1 ? "s" : " ", set);
		printf("get  %d thread%s  %10.0f ops/s\n", n, n > 1 ? "s" : " ", get);
	}
	rs_cache_free(c);
}

/* ---- 2. durable writes ---------------------------------------------------- */

static double raw_sqlite(long rows)
{
	char path[600], key[32];
	sqlite3 *db;
	sqlite3_stmt *st;
	double t0;

	snprintf(path, sizeof(path), "%s/raw.db", dir);
	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("sqlite", sqlite3_errmsg(db));
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		     "CREATE TABLE cache_log (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
		     " origin TEXT NOT NULL, op INTEGER NOT NULL, key BLOB NOT NULL, value BLOB,"
		     " stored_ms INTEGER, expires_ms INTEGER, checksum INTEGER NOT NULL)",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO cache_log VALUES (?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	t0 = now_s();
	for (long i = 0; i < rows; i++) {
		int klen = snprintf(key, sizeof(key), KEY_FMT, (int)i);

		if (i % 1000 == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_int64(st, 2, 1);
		sqlite3_bind_text(st, 3, "bench", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, 1);
		sqlite3_bind_blob(st, 5, key, klen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, value, VALUE_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, 1);
		sqlite3_bind_int64(st, 8, 2);
		sqlite3_bind_int64(st, 9, 12345);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % 1000 == 999 || i == rows - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	t0 = now_s() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (double)rows / t0;
}

struct wal_arg {
	struct rs_wal *w;
	long from, count;
};

static void *append_thread(void *p)
{
	struct wal_arg *a = p;
	struct rs_err err = RS_ERR_INIT;
	char key[32];

	for (long i = a->from; i < a->from + a->count; i++) {
		int klen = snprintf(key, sizeof(key), KEY_FMT, (int)i);
		struct rs_wal_record r = {
			.op = RS_WAL_SET, .key = key, .klen = (size_t)klen,
			.val = value, .vlen = VALUE_BYTES,
			.stored_ms = 1, .expires_ms = INT64_MAX / 2,
		};
		int64_t seq;

		while (rs_wal_append(a->w, &r, &seq, &err) < 0) {
			if (!strstr(err.msg, "queue full"))
				die("append", err.msg);
			usleep(1000);
		}
	}
	return NULL;
}

static double wal_run(const char *name, enum rs_wal_sync sync, int nthreads, long rows)
{
	struct rs_wal_options o = { .sync = sync, .origin = "bench" };
	struct rs_err err = RS_ERR_INIT;
	struct wal_arg a[8];
	pthread_t t[8];
	char path[600];
	struct rs_wal *w;
	double t0;

	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	unlink(path);
	o.db_path = path;
	if (rs_wal_open(&w, &o, &err) < 0)
		die("wal", err.msg);
	t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		a[i] = (struct wal_arg){ w, i * (rows / nthreads), rows / nthreads };
		pthread_create(&t[i], NULL, append_thread, &a[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	if (rs_wal_flush(w, &err) < 0)
		die("flush", err.msg);
	t0 = now_s() - t0;
	if (rs_wal_close(w, &err) < 0)
		die("close", err.msg);
	return (double)(rows / nthreads * nthreads) / t0;
}

static void bench_durable(void)
{
	long rows = n_entries < 200000 ? n_entries : 200000;
	double raw = raw_sqlite(rows);
	double batch = wal_run("batch", RS_WAL_SYNC_BATCH, 1, rows);
	double always = wal_run("always", RS_WAL_SYNC_ALWAYS, 8, rows / 10);

	printf("\n## durable writes (%ld records, 200-byte values)\n", rows);
	printf("raw SQLite, 1000 rows/txn, FULL  %10.0f rows/s  (baseline)\n", raw);
	printf("cache log, sync = batch          %10.0f rows/s  ratio %.2f (target >= 0.80)\n",
	       batch, batch / raw);
	printf("cache log, sync = always, 8 thr  %10.0f rows/s  ratio %.2f\n",
	       always, always / raw);
}

/* ---- 3. recovery from the log ------------------------------------------- */

static int replay_one(void *arg, const struct rs_wal_record *r)
{
	struct rs_cache *c = arg;

	if (r->op == RS_WAL_SET)
		rs_cache_set_at(c, r->key, r->klen, r->val, r->vlen,
				r->stored_ms, r->expires_ms, NULL);
	return 0;
}

static void bench_recovery(void)
{
	struct rs_wal_options o = { .sync = RS_WAL_SYNC_BATCH, .origin = "bench", .max_group = 10000 };
	struct rs_wal_read_report rep;
	struct rs_err err = RS_ERR_INIT;
	struct wal_arg a;
	struct rs_cache *c;
	struct rs_wal *w;
	char path[600];
	double t0, took;

	snprintf(path, sizeof(path), "%s/recovery.db", dir);
	unlink(path);
	o.db_path = path;
	if (rs_wal_open(&w, &o, &err) < 0)
		die("wal", err.msg);
	a = (struct wal_arg){ w, 0, n_entries };
	append_thread(&a);
	if (rs_wal_close(w, &err) < 0)
		die("close", err.msg);
	c = new_cache((uint64_t)n_entries * 2, 4096LL * 1024 * 1024);
	t0 = now_s();
	if (rs_wal_read(path, 0, NULL, replay_one, c, &rep, &err) < 0)
		die("replay", err.msg);
	took = now_s() - t0;
	printf("\n## recovery: replay %ld log records into an empty cache\n", n_entries);
	printf("replayed %llu records in %.2f s (%.0f records/s)%s\n",
	       (unsigned long long)rep.records, took, (double)rep.records / took,
	       n_entries >= 1000000 ? (took < 2.0 ? "  target < 2 s: met" : "  target < 2 s: MISSED") : "");
	rs_cache_free(c);
}

static void bench_store_recovery(void)
{
	struct rs_store_options o = {
		.sync = RS_WAL_SYNC_BATCH, .origin = "bench",
		.cache = { .num_shards = 32, .max_entries = (uint64_t)n_entries * 2,
			   .max_memory_bytes = 4096LL * 1024 * 1024,
			   .default_ttl_ms = 3600 * 1000 },
	};
	struct rs_store_recovery rec;
	struct rs_snapshot_info info;
	struct rs_err err = RS_ERR_INIT;
	struct rs_store *st;
	long tail = n_entries / 100;
	char path[600], key[32];
	double t0, took;

	snprintf(path, sizeof(path), "%s/store.db", dir);
	unlink(path);
	o.db_path = path;
	if (rs_store_open(&st, &o, &rec, &err) < 0)
		die("store", err.msg);
	for (long i = 0; i < n_entries + tail; i++) {
		int klen = snprintf(key, sizeof(key), KEY_FMT, (int)i);

		/* A full log queue is backpressure: wait for the writer. */
		while (rs_store_set(st, key, (size_t)klen, value, VALUE_BYTES, -1, &err) < 0) {
			if (!strstr(err.msg, "queue full"))
				die("store set", err.msg);
			usleep(1000);
		}
		if (i == n_entries - 1) {
			t0 = now_s();
			if (rs_store_snapshot(st, &info, &err) < 0)
				die("snapshot", err.msg);
			printf("snapshot of %llu entries taken in %.2f s\n",
			       (unsigned long long)info.entries, now_s() - t0);
		}
	}
	if (rs_store_close(st, &err) < 0)
		die("store close", err.msg);
	t0 = now_s();
	if (rs_store_open(&st, &o, &rec, &err) < 0)
		die("store reopen", err.msg);
	took = now_s() - t0;
	printf("store reopened in %.2f s: %llu entries from snapshot %lld, %llu log records replayed%s\n",
	       took, (unsigned long long)rec.snapshot.entries,
	       (long long)rec.snapshot.loaded_id, (unsigned long long)rec.replayed,
	       n_entries >= 1000000 ? (took < 2.0 ? "  target < 2 s: met" : "  target < 2 s: MISSED") : "");
	rs_store_close(st, &err);
}

/* ---- 4. memory per entry --------------------------------------------------- */

static void bench_memory(void)
{
	struct rs_cache_stats st;
	struct rs_cache *c;
	long before, after;
	char key[32];
	double payload = 0;

	before = rss_kb();
	c = new_cache((uint64_t)n_entries, 4096LL * 1024 * 1024);
	for (long i = 0; i < n_entries; i++) {
		int klen = snprintf(key, sizeof(key), KEY_FMT, (int)i);

		if (rs_cache_set(c, key, (size_t)klen, value, VALUE_BYTES, -1, NULL) < 0)
			die("set", "failed");
		payload += klen + VALUE_BYTES;
	}
	after = rss_kb();
	rs_cache_stats(c, &st, NULL);
	printf("\n## memory: %ld entries of 200-byte values\n", n_entries);
	printf("payload %.1f MB, RSS growth %.1f MB: %.2fx payload (target <= 1.50)\n",
	       payload / 1048576, (double)(after - before) / 1024,
	       (double)(after - before) * 1024 / payload);
	printf("accounted bytes %.1f MB: %.2fx payload\n", (double)st.bytes / 1048576,
	       (double)st.bytes / payload);
	rs_cache_stats_free(&st);
	rs_cache_free(c);
}

int main(int argc, char **argv)
{
	const char *t = getenv("TMPDIR");
	int opt;

	snprintf(dir, sizeof(dir), "%s", t && *t ? t : "/tmp");
	while ((opt = getopt(argc, argv, "n:d:")) != -1) {
		if (opt == 'n')
			n_entries = atol(optarg);
		else if (opt == 'd')
			snprintf(dir, sizeof(dir), "%s", optarg);
		else {
			fprintf(stderr, "usage: bench_cache [-n ENTRIES] [-d DIR]\n");
			return 2;
		}
	}
	if (n_entries < 1000)
		n_entries = 1000;
	memset(value, 'v', VALUE_BYTES);
	printf("# bench_cache: %ld entries, scratch in %s\n", n_entries, dir);
	bench_memory();
	bench_memory_ops();
	bench_durable();
	bench_recovery();
	bench_store_recovery();
	return 0;
}
