/*
 * bench_audit: how fast the audit log takes and checks records, against
 * a baseline measured in the same run on the same machine (these machines
 * are noisy: only ratios within one run mean anything).
 *
 *   1. durable appends: rs_audit_append with sync = always (each call
 *      returns once its record is committed) from T threads (default
 *      resync-fcgi's worker count, 2 x CPUs), so the writer's batches
 *      group-commit them; and with sync off (queued, timed until the
 *      writer has drained);
 *   2. the baselines: raw SQLite inserts of the same rows into a table of
 *      the same shape, with the same pragmas and precomputed hashes (no
 *      hashing, no queue), committing as many rows at a time as the
 *      sync = always run did (target: sync = always >= 0.7x of it), and
 *      256 at a time (the writer's largest batch);
 *   3. verify: rs_audit_verify over the records of step 1 (target:
 *      >= 200 000 records/s).
 *
 * usage: bench_audit [-n RECORDS] [-t THREADS] [-r ROUNDS] [-d DIR]
 *        (default 200000, 2 x CPUs, 3, $TMPDIR)
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "db.h"
#include "seal.h"
#include "util.h"

#define BATCH 256
#define MAX_ROUNDS 15

static long n_records = 200000;
static int n_threads;          /* default: resync-fcgi's own, 2 x CPUs */
static int n_rounds = 3;
static char dir[512];
static struct rs_keyring *ring;
static json_t *details;
static double last_batch;      /* records per commit in the last sync=always run */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_audit: %s: %s\n", what, msg);
	exit(2);
}

static void db_path(char *out, size_t n, const char *name, int round)
{
	snprintf(out, n, "%s/bench_audit.%d.%s.db", dir, (int)getpid(), name);
	(void)round;
}

static void remove_db(const char *path)
{
	char p[700];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
			double t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- 1. appends through the writer ------------------------------------------- */

struct app {
	struct rs_audit *a;
	long n;
	int id;
};

static void *appender(void *p)
{
	struct app *ap = p;
	char rid[32];

	for (long i = 0; i < ap->n; i++) {
		struct rs_err err = RS_ERR_INIT;
		snprintf(rid, sizeof(rid), "%08x%08lx", (unsigned)ap->id, (unsigned long)i);
		struct rs_audit_event ev = {
			.actor = "key:ops", .source = "127.0.0.1", .action = "auth.denied",
			.target = "/api/cache/purge", .request_id = rid,
			.outcome = RS_AUDIT_DENIED, .details = details,
		};
		if (rs_audit_append(ap->a, &ev, NULL, &err) < 0)
			die("append", err.msg);
	}
	return NULL;
}

static double run_writer(const char *path, bool sync_always)
{
	struct rs_audit_options o = {
		.db_path = path, .keys = ring, .queue_size = 4096, .sync_always = sync_always,
	};
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit *a;
	pthread_t th[256];
	struct app ap[256];
	double t0;

	remove_db(path);
	if (rs_audit_open(&a, &o, &err) < 0)
		die("open", err.msg);
	t0 = now_s();
	for (int i = 0; i < n_threads; i++) {
		ap[i] = (struct app){ a, n_records / n_threads + (i < n_records % n_threads), i };
		if (pthread_create(&th[i], NULL, appender, &ap[i]) != 0)
			die("thread", strerror(errno));
	}
	for (int i = 0; i < n_threads; i++)
		pthread_join(th[i], NULL);
	struct rs_audit_stats st;
	rs_audit_stats(a, &st);
	rs_audit_close(a);        /* writes what is queued */
	double rate = (double)n_records / (now_s() - t0);
	if (sync_always)
		last_batch = st.batches ? (double)st.written / (double)st.batches : 0;
	return rate;
}

/* ---- 2. the raw SQLite baseline ------------------------------------------------- */

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "failed");
}

static double run_raw(const char *path, long batch)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned char prev[32] = { 0 }, hash[32];
	char rid[32], *det = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	double t0;

	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	/* what rs_db_open sets for a writer (db.c) */
	exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;"
		 "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time_us INTEGER NOT NULL,"
		 " actor TEXT NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL,"
		 " target TEXT NOT NULL, outcome TEXT NOT NULL CHECK (outcome IN"
		 " ('success', 'denied', 'failure')), request_id TEXT NOT NULL,"
		 " details TEXT NOT NULL, key_id TEXT NOT NULL,"
		 " prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
		 " hash BLOB NOT NULL CHECK (length(hash) = 32));"
		 "CREATE INDEX audit_time ON audit (time_us);");
	if (sqlite3_prepare_v2(db, "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st,
			       NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	memset(hash, 0x5a, sizeof(hash));
	t0 = now_s();
	for (long i = 0; i < n_records; i++) {
		if (i % batch == 0)
			exec(db, "BEGIN IMMEDIATE");
		snprintf(rid, sizeof(rid), "%016lx", (unsigned long)i);
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_int64(st, 2, rs_now_ms() * 1000);
		sqlite3_bind_text(st, 3, "key:ops", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, "127.0.0.1", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, "auth.denied", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, "/api/cache/purge", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, "denied", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, rid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, det, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 10, "0123456789abcdef", -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 11, prev, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 12, hash, 32, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % batch == batch - 1 || i == n_records - 1)
			exec(db, "COMMIT");
	}
	double rate = (double)n_records / (now_s() - t0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(det);
	remove_db(path);
	return rate;
}

/* ---- 3. verify ---------------------------------------------------------------------- */

static double run_verify(const char *path)
{
	struct rs_db_options ro = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };
	struct rs_audit_verify_result res;
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db;
	double t0;

	if (rs_db_open(&db, path, &ro, &err) < 0)
		die("open", err.msg);
	t0 = now_s();
	if (rs_audit_verify(db, ring, 0, 0, NULL, &res, &err) < 0)
		die("verify", err.msg);
	double took = now_s() - t0;
	rs_db_close(db);
	if (res.why != RS_AUDIT_INTACT || res.checked != (uint64_t)n_records)
		die("verify", "the chain written by the benchmark does not verify");
	return (double)res.checked / took;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_audit [-n RECORDS] [-t THREADS] [-r ROUNDS] [-d DIR]\n");
	exit(2);
}

static long num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	unsigned char key[32];
	struct rs_err err = RS_ERR_INIT;
	double sync_r[MAX_ROUNDS], async_r[MAX_ROUNDS], raw_r[MAX_ROUNDS], ver_r[MAX_ROUNDS],
		raw256_r[MAX_ROUNDS], per_commit[MAX_ROUNDS], ratio_r[MAX_ROUNDS];
	char path[600], rawpath[600];
	int c;

	snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	n_threads = cpus > 0 && cpus < 128 ? 2 * (int)cpus : 4;
	while ((c = getopt(argc, argv, "n:t:r:d:")) != -1) {
		switch (c) {
		case 'n': n_records = num_arg(optarg, 1000, 100000000); break;
		case 't': n_threads = (int)num_arg(optarg, 1, 256); break;
		case 'r': n_rounds = (int)num_arg(optarg, 1, MAX_ROUNDS); break;
		case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	memset(key, 0xa5, sizeof(key));
	if (rs_keyring_from_keys(&ring, &key, 1, &err) < 0)
		die("keyring", err.msg);
	details = json_pack("{s:i,s:s}", "status", 403, "method", "POST");
	db_path(path, sizeof(path), "audit", 0);
	db_path(rawpath, sizeof(rawpath), "raw", 0);

	printf("## audit log: %ld records, %d appending threads, HMAC-SHA256, %d rounds, in %s\n",
	       n_records, n_threads, n_rounds, dir);
	for (int r = 0; r < n_rounds; r++) {
		/* With sync = always a commit carries the records whose callers
		 * are waiting: the baseline commits as many rows each, so the
		 * ratio is the writer's own cost (queue, HMAC, encoding); the
		 * 256-row baseline shows what waiting for durability costs. */
		sync_r[r] = run_writer(path, true);
		per_commit[r] = last_batch;
		long b = (long)(last_batch + 0.5);
		raw_r[r] = run_raw(rawpath, b < 1 ? 1 : b);
		raw256_r[r] = run_raw(rawpath, BATCH);
		ratio_r[r] = sync_r[r] / raw_r[r];
		ver_r[r] = run_verify(path);
		async_r[r] = run_writer(path, false);
		printf("round %d: sync=always %8.0f rec/s, %.0f per commit; raw SQLite, as many per commit "
		       "%8.0f rec/s: %.2fx; raw, 256 per commit %8.0f rec/s; sync off %8.0f rec/s; "
		       "verify %8.0f rec/s\n", r + 1, sync_r[r], last_batch, raw_r[r],
		       sync_r[r] / raw_r[r], raw256_r[r], async_r[r], ver_r[r]);
	}
	remove_db(path);
	double s = median(sync_r, n_rounds), w = median(raw_r, n_rounds),
		a = median(async_r, n_rounds), v = median(ver_r, n_rounds),
		w256 = median(raw256_r, n_rounds), pc = median(per_commit, n_rounds),
		ratio = median(ratio_r, n_rounds);
	/* the verdict on the rounds' own ratios: each pairs two runs made
	 * back to back, which the machine's drift between rounds spares */
	printf("\nmedian: sync=always %.0f rec/s (%.0f records per commit), raw SQLite with as many "
	       "rows per commit %.0f rec/s; median of the rounds' ratios %.2fx (target >= 0.70: %s)\n",
	       s, pc, w, ratio, ratio >= 0.7 ? "met" : "NOT met");
	printf("median: raw SQLite with 256 rows per commit %.0f rec/s: sync=always is %.2fx of it, "
	       "sync off %.0f rec/s is %.2fx\n", w256, s / w256, a, a / w256);
	printf("median: verify %.0f records/s (target >= 200000: %s)\n", v,
	       v >= 200000 ? "met" : "NOT met");
	json_decref(details);
	rs_keyring_free(ring);
	return 0;
}
