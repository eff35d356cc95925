/*
 * test_wal_crash: kill -9 loses no acknowledged write (issue 4).
 *
 * Twenty times: a child opens a wal with sync = always on a fresh database
 * and appends from several threads, writing "<seq> <key>" to a pipe after
 * each rs_wal_append that returned 0; the parent kills it with SIGKILL
 * after a random 20-150 ms, then reads the log.  Every acknowledged record
 * must be there under its seq, and the read must find no bad record: a
 * SQLite transaction is either in the file or not, so a torn tail cannot
 * happen.  RS_CRASH_SEED=N repeats a run (the seed is printed).
 */
#include "tap.h"
#include "testcrash.h"
#include "testlib.h"
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 20
#define KILL_MIN_MS 20
#define KILL_SPAN_MS 131          /* 20..150 ms */
#define CHILD_THREADS 3
#define READY_LIMIT_MS 10000      /* valgrind makes the child's start slow */
#define KEY_MAX 32

/* ---- the child --------------------------------------------------------- */

struct child_ctx {
	struct rs_wal *w;
	int fd;
	int id;
};

static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t r;

	/* One write per line: under PIPE_BUF, so lines of several threads
	 * never interleave. */
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

static void *child_thread(void *p)
{
	struct child_ctx *c = p;
	struct rs_err err = RS_ERR_INIT;
	char key[KEY_MAX], line[128], val[200];
	int64_t seq;
	long i;
	int n;

	memset(val, 'v', sizeof(val));
	for (i = 0;; i++) {
		struct rs_wal_record r = {
			.op = RS_WAL_SET,
			.key = key,
			.val = val,
			.vlen = sizeof(val),
			.expires_ms = 1,
		};

		snprintf(key, sizeof(key), "t%d-%ld", c->id, i);
		r.klen = strlen(key);
		if (rs_wal_append(c->w, &r, &seq, &err)) {
			n = snprintf(line, sizeof(line), "fail %s\n", err.msg);
			write_all(c->fd, line, (size_t)n);
			_exit(3);
		}
		n = snprintf(line, sizeof(line), "%" PRId64 " %s\n", seq, key);
		write_all(c->fd, line, (size_t)n);
	}
	return NULL;
}

static void run_child(const char *path, int fd)
{
	struct rs_wal_options o = {
		.db_path = path,
		.sync = RS_WAL_SYNC_ALWAYS,
		.origin = "crash-child",
	};
	struct child_ctx ctx[CHILD_THREADS];
	pthread_t th[CHILD_THREADS];
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal *w = NULL;
	int i;

	if (rs_wal_open(&w, &o, &err)) {
		dprintf(fd, "fail %s\n", err.msg);
		_exit(2);
	}
	write_all(fd, "ready\n", 6);
	for (i = 0; i < CHILD_THREADS; i++) {
		ctx[i] = (struct child_ctx){ .w = w, .fd = fd, .id = i };
		pthread_create(&th[i], NULL, child_thread, &ctx[i]);
	}
	for (i = 0; i < CHILD_THREADS; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------- */



/* The log as read back: keys by seq (seq 1 at index 0). */
struct log_copy {
	char (*key)[KEY_MAX];
	size_t n, cap;
	bool continuous;
};

static int keep(void *arg, const struct rs_wal_record *rec)
{
	struct log_copy *l = arg;

	if (rec->seq != (int64_t)l->n + 1)
		l->continuous = false;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		char(*k)[KEY_MAX] = realloc(l->key, cap * sizeof(*k));

		if (!k)
			return -1;
		l->key = k;
		l->cap = cap;
	}
	snprintf(l->key[l->n], KEY_MAX, "%.*s",
		 (int)(rec->klen < KEY_MAX ? rec->klen : KEY_MAX - 1),
		 (const char *)rec->key);
	l->n++;
	return 0;
}

/* Every "<seq> <key>" line must be in the log; *acked counts them. */
static bool check_acks(const struct crash_out *o, const struct log_copy *l,
		       size_t *acked)
{
	char *line, *save = NULL, *end;
	long long seq;
	bool good = true;

	*acked = 0;
	for (line = strtok_r(o->buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "ready") == 0)
			continue;
		if (strncmp(line, "fail ", 5) == 0) {
			printf("#   child failed: %s\n", line + 5);
			good = false;
			continue;
		}
		seq = strtoll(line, &end, 10);
		if (*end != ' ' || seq < 1) {
			printf("#   bad line from child: \"%s\"\n", line);
			good = false;
			continue;
		}
		(*acked)++;
		if ((size_t)seq > l->n) {
			printf("#   acknowledged seq %lld (%s) missing: the log ends at %zu\n",
			       seq, end + 1, l->n);
			good = false;
		} else if (strcmp(l->key[seq - 1], end + 1) != 0) {
			printf("#   seq %lld: acknowledged key %s, log has %s\n",
			       seq, end + 1, l->key[seq - 1]);
			good = false;
		}
	}
	return good;
}

static void one_round(int round, size_t *total_acked)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_wal_read_report rep;
	struct log_copy l = { .continuous = true };
	struct crash_out o = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX], name[128];
	int status = 0, kill_ms, rc;
	size_t acked = 0;
	bool ready, good;

	kill_ms = KILL_MIN_MS + rand() % KILL_SPAN_MS;
	snprintf(name, sizeof(name), "crash %d (kill after %d ms)", round,
		 kill_ms);
	if (make_tmpdir(&t, "wal-crash")) {
		ok(0, name);
		return;
	}
	join(path, &t, "crash.db");
	if (crash_kill_child(run_child, path, READY_LIMIT_MS, kill_ms, &o,
			     &ready, &status) < 0) {
		ok(0, name);
		remove_tmpdir(&t);
		return;
	}

	rc = rs_wal_read(path, 0, NULL, keep, &l, &rep, &err);
	if (rc)
		printf("#   read: %s\n", err.msg);
	good = ready && rc == 0 && !rep.stopped && l.continuous &&
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
	if (!ready)
		printf("#   the child never became ready\n");
	if (rep.stopped)
		printf("#   read stopped at seq %" PRId64 ": %s\n", rep.bad_seq,
		       rep.reason);
	if (!WIFSIGNALED(status))
		printf("#   the child exited by itself (status %d)\n", status);
	if (o.buf && !check_acks(&o, &l, &acked))
		good = false;
	ok(good, name);
	printf("#   %zu acknowledged, %zu in the log\n", acked, l.n);
	*total_acked += acked;

	/* After the crash the database takes writes at max(seq) + 1. */
	if (round == 0 && good) {
		struct rs_wal_options wo = {
			.db_path = path,
			.sync = RS_WAL_SYNC_ALWAYS,
			.origin = "after-crash",
		};
		struct rs_wal_record r = { .op = RS_WAL_PURGE };
		struct rs_wal *w = NULL;
		int64_t seq = 0;

		if (rs_wal_open(&w, &wo, &err) == 0) {
			rs_wal_append(w, &r, &seq, &err);
			rs_wal_close(w, &err);
		}
		is_int(seq, (int64_t)l.n + 1,
		       "after a crash: appends go on at max(seq) + 1");
	}
	free(l.key);
	free(o.buf);
	remove_tmpdir(&t);
}

int main(void)
{
	const char *env = getenv("RS_CRASH_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) :
			      (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t total = 0;
	int i;

	umask(022);
	/* A child killed while writing must not kill us by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	printf("# RS_CRASH_SEED=%u\n", seed);
	srand(seed);
	for (i = 0; i < ROUNDS; i++)
		one_round(i, &total);
	ok(total > 0, "crash: the children acknowledged writes at all");
	printf("# %zu acknowledged writes checked over %d kills\n", total,
	       ROUNDS);
	return tap_done();
}
