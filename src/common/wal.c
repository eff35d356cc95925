/*
 * wal: the cache write-ahead log (see wal.h for the contract).
 *
 * Checksum: CRC-32C (crc32c.h).  It covers this canonical encoding
 * of a record, whatever SQLite's column types: every integer is 8 bytes,
 * little-endian, two's complement for signed values, and every byte
 * string is preceded by its length as such an integer:
 *
 *	time_ms,
 *	len(origin), origin bytes (no NUL),
 *	op,
 *	len(key), key bytes,
 *	value present (1 byte: 1 or 0), len(value), value bytes,
 *	stored_ms, expires_ms          (0 when the column is NULL),
 *	len(key_id), key_id bytes      (only for a sealed value: plaintext
 *	                                records keep the encoding they had
 *	                                before encryption existed),
 *	seq
 *
 * The lengths make the encoding unambiguous (a byte moved from the key to
 * the value changes it); the presence byte tells an empty value from
 * none.  Seq comes last because it is the one field not known until the
 * group's transaction: the appender runs the CRC over the rest in its own
 * thread, and the writer, the one serial stage, only folds in 8 bytes
 * (the CRC was ~11% of the writer's time with seq first).  The stored
 * checksum is the CRC as an unsigned 32-bit INTEGER.
 *
 * Deliberate quirks:
 *  - Seq is not AUTOINCREMENT: the writer reads max(seq) inside its
 *    BEGIN IMMEDIATE transaction and numbers the group itself, because the
 *    checksum covers seq and must be computed before the INSERT.  The
 *    IMMEDIATE lock is what serialises several writing processes.
 *  - Hence rs_wal_truncate always keeps the newest record: max(seq) of an
 *    empty table would restart the log at 1.
 *  - The queued records of a group in flight stay on the queue (counted
 *    in `queued`) until their commit succeeds: with sync = batch a failed
 *    group is simply tried again, in the same order, with fresh seqs.
 */
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "db.h"
#include "histogram.h"
#include "log.h"
#include "util.h"

#define WAL_RETRY_MIN_MS 10
#define WAL_RETRY_MAX_MS 1000
#define WAL_ROW_OVERHEAD_BYTES 128  /* SQLite record header, integers */

/* An appender blocked in rs_wal_append (sync = always), on its stack. */
struct waiter {
	bool done;
	int rc;
	int64_t seq;
	char msg[RS_ERR_MSG_MAX];
};

#define WAL_KEY_ID_MAX 32           /* seal.h's ids are 16 characters */

/* One queued record: one allocation, immutable once queued except for
 * `next`, so the writer reads it without the lock. */
struct item {
	struct item *next;
	uint64_t ticket;            /* append order, for rs_wal_flush */
	int64_t queued_ms;          /* monotonic, for the batch interval */
	int64_t time_ms, stored_ms, expires_ms;
	enum rs_wal_op op;
	uint32_t crc;               /* CRC state of all fields but seq */
	bool has_val;
	char key_id[WAL_KEY_ID_MAX];    /* "" = plaintext value */
	size_t klen, vlen, olen;
	struct waiter *waiter;      /* sync = always: who waits for it */
	unsigned char data[];       /* key, value, origin and a NUL */
};

struct rs_wal {
	/* Set at open, read-only after. */
	enum rs_wal_sync sync;
	int64_t interval_ms, give_up_ms;
	size_t max_group, queue_max;
	uint64_t max_record_bytes;
	char *path, *origin;

	/* The writer thread's alone between open and close. */
	struct rs_db *db;
	sqlite3_stmt *begin_st, *max_st, *insert_st, *commit_st, *rollback_st;
	struct item **group;        /* max_group slots */
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;       /* guards everything below */
	pthread_cond_t work;        /* writer: records, flush, stop */
	pthread_cond_t done;        /* appenders, flushers: an attempt ended */
	struct item *head, *tail;
	uint64_t nqueued;
	uint64_t last_ticket;       /* handed out */
	uint64_t done_ticket;       /* every ticket <= it committed or failed */
	unsigned flushers;          /* batch: commit now, do not wait */
	bool stopping;
	int64_t stop_ms;            /* monotonic */
	int64_t retry_at_ms;        /* monotonic; 0 = not backing off */
	int64_t backoff_ms;
	int64_t failing_since_ms;   /* monotonic; 0 = last commit succeeded */
	uint64_t lost;              /* given up on while closing */
	struct rs_wal_stats st;     /* queued, degraded_ms filled on read */

	/* Lock-free (rs_hist's relaxed atomics), not under lock: the
	 * successful group commits' time (what st.commit_us_total adds up)
	 * and, with sync = always, each committed append's wait from queueing
	 * to its group's commit.  Microseconds; empty with sync = off. */
	struct rs_hist commit_us, append_wait_us;
};

/* The CRC state over every field but seq (and the checksum). */
static uint32_t crc_without_seq(const struct rs_wal_record *rec)
{
	const char *origin = rec->origin ? rec->origin : "";
	unsigned char present = rec->val != NULL;
	uint32_t crc = RS_CRC32C_INIT;

	crc = rs_crc32c_u64(crc, (uint64_t)rec->time_ms);
	crc = rs_crc32c_lenbytes(crc, origin, strlen(origin));
	crc = rs_crc32c_u64(crc, (uint64_t)(int64_t)rec->op);
	crc = rs_crc32c_lenbytes(crc, rec->key, rec->klen);
	crc = rs_crc32c_update(crc, &present, 1);
	crc = rs_crc32c_lenbytes(crc, rec->val, present ? rec->vlen : 0);
	crc = rs_crc32c_u64(crc, (uint64_t)rec->stored_ms);
	crc = rs_crc32c_u64(crc, (uint64_t)rec->expires_ms);
	if (rec->key_id)
		crc = rs_crc32c_lenbytes(crc, rec->key_id, strlen(rec->key_id));
	return crc;
}

static uint32_t crc_with_seq(uint32_t state, int64_t seq)
{
	return ~rs_crc32c_u64(state, (uint64_t)seq);
}

uint32_t rs_wal_checksum(const struct rs_wal_record *rec)
{
	return crc_with_seq(crc_without_seq(rec), rec->seq);
}

/* ---- the queue (callers hold w->lock) ------------------------------------ */

static void wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t at_ms)
{
	struct timespec ts = {
		.tv_sec = at_ms / 1000,
		.tv_nsec = (at_ms % 1000) * 1000000,
	};

	pthread_cond_timedwait(c, m, &ts);
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t elapsed_us(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* Messages are for people: a cut tail is better than none. */
static void free_chain(struct item *it)
{
	struct item *next;

	for (; it; it = next) {
		next = it->next;
		free(it);
	}
}

/* Unlink the first n records, which are resolved now, and return them
 * for freeing outside the lock.  Their waiters, if any, are told `msg`
 * (NULL = committed). */
static struct item *unlink_first(struct rs_wal *w, uint64_t n,
				 const char *msg)
{
	struct item *chain = w->head, *it = w->head, *last = NULL;
	uint64_t i;

	for (i = 0; i < n && it; i++, it = it->next) {
		last = it;
		if (it->waiter && msg) {
			it->waiter->rc = -1;
			rs_copy_text(it->waiter->msg, sizeof(it->waiter->msg),
				  msg);
			it->waiter->done = true;
		}
	}
	if (!last)
		return NULL;
	w->head = last->next;
	if (!w->head)
		w->tail = NULL;
	last->next = NULL;
	w->nqueued -= i;
	w->done_ticket = last->ticket;
	return chain;
}

/* When the writer should next commit (monotonic ms; <= now = at once). */
static int64_t next_commit_at(const struct rs_wal *w)
{
	int64_t at = w->retry_at_ms;

	if (w->sync == RS_WAL_SYNC_BATCH && !w->stopping && !w->flushers &&
	    w->nqueued < w->max_group)
		at = max64(at, w->head->queued_ms + w->interval_ms);
	return at;
}

static size_t take_group(struct rs_wal *w)
{
	struct item *it;
	size_t n = 0;

	for (it = w->head; it && n < w->max_group; it = it->next)
		w->group[n++] = it;
	return n;
}

static struct item *group_committed(struct rs_wal *w, size_t n,
				    int64_t base, int64_t us)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct waiter *wt = w->group[i]->waiter;

		if (wt) {
			wt->rc = 0;
			wt->seq = base + 1 + (int64_t)i;
			wt->done = true;
		}
	}
	w->st.committed += n;
	w->st.groups++;
	w->st.last_seq = base + (int64_t)n;
	w->st.commit_us_total += (uint64_t)us;
	if ((uint64_t)us > w->st.commit_us_max)
		w->st.commit_us_max = (uint64_t)us;
	rs_hist_record(&w->commit_us, (uint64_t)us);
	/* Logged on the transitions only, so one line each way however
	 * long an outage lasts; the lock is held for that one write, a
	 * rare event. */
	if (w->st.degraded)
		rs_log_write(RS_LOG_INFO, NULL,
			     "cache log '%s' commits again after %" PRIu64
			     " failed attempts", w->path, w->st.commit_failures);
	w->st.degraded = false;
	w->failing_since_ms = 0;
	w->backoff_ms = 0;
	w->retry_at_ms = 0;
	return unlink_first(w, n, NULL);
}

static struct item *group_failed(struct rs_wal *w, size_t n, const char *why)
{
	int64_t now = rs_monotonic_ms();
	struct rs_err closed;

	w->st.commit_failures++;
	if (!w->st.degraded)
		rs_log_write(RS_LOG_WARNING, NULL,
			     "cache log '%s' degraded: commit failed: %s; memory keeps serving, retrying",
			     w->path, why);
	w->st.degraded = true;
	rs_copy_text(w->st.last_error, sizeof(w->st.last_error), why);
	if (!w->failing_since_ms)
		w->failing_since_ms = now;
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : WAL_RETRY_MIN_MS;
	if (w->backoff_ms > WAL_RETRY_MAX_MS)
		w->backoff_ms = WAL_RETRY_MAX_MS;
	w->retry_at_ms = now + w->backoff_ms;

	if (w->stopping &&
	    now - max64(w->failing_since_ms, w->stop_ms) >= w->give_up_ms) {
		w->lost = w->nqueued;
		rs_err_set(&closed,
			   "the cache log was closed before the record was committed: %s",
			   why);
		return unlink_first(w, w->nqueued, closed.msg);
	}
	if (w->sync == RS_WAL_SYNC_ALWAYS) {
		w->st.dropped += n;
		return unlink_first(w, n, why);
	}
	return NULL;
}

/* ---- the writer thread ---------------------------------------------------- */

static int bind_item(struct rs_wal *w, const struct item *it, int64_t seq,
		     uint32_t checksum)
{
	sqlite3_stmt *st = w->insert_st;
	const unsigned char *val = it->data + it->klen;
	const char *origin = (const char *)val + it->vlen;
	bool set = it->op == RS_WAL_SET;

	if (sqlite3_bind_int64(st, 1, seq) ||
	    sqlite3_bind_int64(st, 2, it->time_ms) ||
	    sqlite3_bind_text64(st, 3, origin, it->olen, SQLITE_STATIC,
				SQLITE_UTF8) ||
	    sqlite3_bind_int(st, 4, (int)it->op) ||
	    /* data is never NULL, so an empty key is an empty BLOB, which
	     * NOT NULL accepts, and an empty value is not NULL. */
	    sqlite3_bind_blob64(st, 5, it->data, it->klen, SQLITE_STATIC) ||
	    (it->has_val ?
		     sqlite3_bind_blob64(st, 6, val, it->vlen, SQLITE_STATIC) :
		     sqlite3_bind_null(st, 6)) ||
	    (set ? sqlite3_bind_int64(st, 7, it->stored_ms) :
		   sqlite3_bind_null(st, 7)) ||
	    (set ? sqlite3_bind_int64(st, 8, it->expires_ms) :
		   sqlite3_bind_null(st, 8)) ||
	    sqlite3_bind_int64(st, 9, (int64_t)checksum) ||
	    (it->key_id[0] ?
		     sqlite3_bind_text(st, 10, it->key_id, -1, SQLITE_STATIC) :
		     sqlite3_bind_null(st, 10)))
		return -1;
	return 0;
}

/* One transaction for w->group[0..n); *base is max(seq) before it.  No
 * lock held: the items are immutable and the statements the writer's. */
static int commit_group(struct rs_wal *w, size_t n, int64_t *base,
			char *why, size_t whylen)
{
	sqlite3 *h = w->db->handle;
	int64_t seq;
	size_t i;

	if (sqlite3_step(w->begin_st) != SQLITE_DONE)
		goto fail;
	sqlite3_reset(w->begin_st);
	if (sqlite3_step(w->max_st) != SQLITE_ROW)
		goto fail;
	seq = sqlite3_column_int64(w->max_st, 0);
	sqlite3_reset(w->max_st);
	*base = seq;
	for (i = 0; i < n; i++) {
		const struct item *it = w->group[i];

		seq++;
		if (bind_item(w, it, seq, crc_with_seq(it->crc, seq)) ||
		    sqlite3_step(w->insert_st) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(w->insert_st);
	}
	if (sqlite3_step(w->commit_st) != SQLITE_DONE)
		goto fail;
	sqlite3_reset(w->commit_st);
	return 0;

fail:
	/* The message is taken before the resets and ROLLBACK replace it. */
	snprintf(why, whylen,
		 "cannot commit %zu records to the cache log in '%s': %s", n,
		 w->path, sqlite3_errmsg(h));
	sqlite3_reset(w->begin_st);
	sqlite3_reset(w->max_st);
	sqlite3_reset(w->insert_st);
	sqlite3_reset(w->commit_st);
	if (!sqlite3_get_autocommit(h)) {
		sqlite3_step(w->rollback_st);
		sqlite3_reset(w->rollback_st);
	}
	return -1;
}

static void *writer_main(void *arg)
{
	struct rs_wal *w = arg;
	char why[RS_ERR_MSG_MAX];
	struct timespec t0;
	struct item *chain;
	int64_t at, base = 0, us;
	size_t n;
	int rc;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (!w->head) {
			if (w->stopping)
				break;
			pthread_cond_wait(&w->work, &w->lock);
			continue;
		}
		at = next_commit_at(w);
		if (at > rs_monotonic_ms()) {
			wait_until(&w->work, &w->lock, at);
			continue;
		}
		n = take_group(w);
		pthread_mutex_unlock(&w->lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = commit_group(w, n, &base, why, sizeof(why));
		us = elapsed_us(&t0);

		pthread_mutex_lock(&w->lock);
		chain = rc == 0 ? group_committed(w, n, base, us) :
				  group_failed(w, n, why);
		pthread_cond_broadcast(&w->done);
		if (chain) {
			pthread_mutex_unlock(&w->lock);
			free_chain(chain);
			pthread_mutex_lock(&w->lock);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- open, append, flush, close ------------------------------------------ */

static void wal_free(struct rs_wal *w)
{
	free_chain(w->head);
	sqlite3_finalize(w->begin_st);
	sqlite3_finalize(w->max_st);
	sqlite3_finalize(w->insert_st);
	sqlite3_finalize(w->commit_st);
	sqlite3_finalize(w->rollback_st);
	rs_db_close(w->db);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w->group);
	free(w->origin);
	free(w->path);
	free(w);
}

static int prepare(struct rs_wal *w, const char *sql, sqlite3_stmt **st,
		   struct rs_err *err)
{
	if (sqlite3_prepare_v3(w->db->handle, sql, -1,
			       SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK)
		return rs_err_set(err,
				  "cannot prepare the cache log statements for '%s': %s",
				  w->path, sqlite3_errmsg(w->db->handle));
	return 0;
}

static int open_db(struct rs_wal *w, int busy_timeout_ms, struct rs_err *err)
{
	/* FULL for always: an acknowledged record must survive power loss,
	 * so each commit syncs the WAL file.  NORMAL for batch: it promises
	 * only that a commit happens every interval, and NORMAL commits
	 * survive a process crash (kill -9), losing at most the commits
	 * since the last checkpoint on power loss, for no fsync per
	 * commit. */
	struct rs_db_options o = {
		.busy_timeout_ms = busy_timeout_ms,
		.sync = w->sync == RS_WAL_SYNC_ALWAYS ? RS_DB_SYNC_FULL :
							RS_DB_SYNC_NORMAL,
	};

	if (rs_db_open(&w->db, w->path, &o, err))
		return -1;
	if (prepare(w, "BEGIN IMMEDIATE", &w->begin_st, err) ||
	    /* Past what verify --repair moved to the quarantine too: a
	     * quarantined newest record's seq must not come back, or a
	     * snapshot or follower past it would skip the new record. */
	    prepare(w, "SELECT max(coalesce((SELECT max(seq) FROM cache_log), 0),"
		    " coalesce((SELECT max(ref_end) FROM cache_quarantine"
		    " WHERE source = 'log'), 0))",
		    &w->max_st, err) ||
	    prepare(w,
		    "INSERT INTO cache_log (seq, time_ms, origin, op, key,"
		    " value, stored_ms, expires_ms, checksum, key_id)"
		    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
		    &w->insert_st, err) ||
	    prepare(w, "COMMIT", &w->commit_st, err) ||
	    prepare(w, "ROLLBACK", &w->rollback_st, err))
		return -1;
	/* A record the database would refuse (SQLITE_TOOBIG) would fail
	 * its group for ever with sync = batch; refuse it at append. */
	w->max_record_bytes =
		(uint64_t)sqlite3_limit(w->db->handle, SQLITE_LIMIT_LENGTH, -1);
	return 0;
}

static int start_writer(struct rs_wal *w, struct rs_err *err)
{
	sigset_t all, old;
	int e;

	/* Signals belong to the front end's threads, whose loops check the
	 * flags the handlers set; one delivered here would go unnoticed. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return rs_err_errno(err, e,
				    "cannot start the cache log writer for '%s'",
				    w->path);
	w->started = true;
	return 0;
}

int rs_wal_open(struct rs_wal **out, const struct rs_wal_options *opt,
		struct rs_err *err)
{
	pthread_condattr_t ca;
	struct rs_wal *w;

	*out = NULL;
	if (!opt)
		return rs_err_set(err, "no cache log options given");
	if ((unsigned)opt->sync > RS_WAL_SYNC_OFF)
		return rs_err_set(err, "invalid cache log sync mode %d",
				  (int)opt->sync);
	if (!opt->origin || !*opt->origin)
		return rs_err_set(err, "no origin given for the cache log");
	if (opt->sync != RS_WAL_SYNC_OFF && (!opt->db_path || !*opt->db_path))
		return rs_err_set(err, "no database path given for the cache log");
	if (opt->sync_interval_ms < 0 || opt->give_up_ms < 0 ||
	    opt->busy_timeout_ms < 0)
		return rs_err_set(err,
				  "invalid cache log options: negative interval, give-up time or busy timeout");

	w = calloc(1, sizeof(*w));
	if (!w)
		return rs_err_errno(err, ENOMEM, "cannot open the cache log");
	w->sync = opt->sync;
	w->interval_ms = opt->sync_interval_ms ?
				 opt->sync_interval_ms :
				 RS_WAL_SYNC_INTERVAL_DEFAULT_MS;
	w->give_up_ms = opt->give_up_ms ? opt->give_up_ms :
					  RS_WAL_GIVE_UP_DEFAULT_MS;
	w->max_group = opt->max_group ? opt->max_group :
					RS_WAL_MAX_GROUP_DEFAULT;
	w->queue_max = opt->queue_max ? opt->queue_max :
					RS_WAL_QUEUE_MAX_DEFAULT;
	pthread_mutex_init(&w->lock, NULL);
	rs_hist_init(&w->commit_us);
	rs_hist_init(&w->append_wait_us);
	/* Deadlines are monotonic: a clock step must not stall a commit. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->work, &ca);
	pthread_cond_init(&w->done, &ca);
	pthread_condattr_destroy(&ca);

	w->origin = strdup(opt->origin);
	w->path = strdup(opt->db_path ? opt->db_path : "");
	if (!w->origin || !w->path) {
		rs_err_errno(err, ENOMEM, "cannot open the cache log");
		goto fail;
	}
	if (w->sync != RS_WAL_SYNC_OFF) {
		w->group = calloc(w->max_group, sizeof(*w->group));
		if (!w->group) {
			rs_err_errno(err, ENOMEM,
				     "cannot open the cache log in '%s'",
				     w->path);
			goto fail;
		}
		if (open_db(w, opt->busy_timeout_ms, err) ||
		    start_writer(w, err))
			goto fail;
	}
	*out = w;
	return 0;

fail:
	wal_free(w);
	return -1;
}

static struct item *new_item(const struct rs_wal *w,
			     const struct rs_wal_record *rec,
			     struct rs_err *err)
{
	const char *origin = rec->origin ? rec->origin : w->origin;
	bool set = rec->op == RS_WAL_SET;
	size_t vlen = set ? rec->vlen : 0;
	size_t olen = strlen(origin);
	struct item *it;

	if (rec->op != RS_WAL_SET && rec->op != RS_WAL_DELETE &&
	    rec->op != RS_WAL_PURGE) {
		rs_err_set(err, "invalid cache log op %d", (int)rec->op);
		return NULL;
	}
	if ((rec->klen && !rec->key) || (vlen && !rec->val)) {
		rs_err_set(err, "cache log record with a length but no data");
		return NULL;
	}
	if (set && rec->key_id &&
	    (!*rec->key_id || strlen(rec->key_id) >= WAL_KEY_ID_MAX)) {
		rs_err_set(err, "cache log record with an invalid key id");
		return NULL;
	}
	if (rec->klen > w->max_record_bytes ||
	    vlen > w->max_record_bytes - rec->klen ||
	    olen + WAL_ROW_OVERHEAD_BYTES >
		    w->max_record_bytes - rec->klen - vlen) {
		rs_err_set(err,
			   "cache log record of %zu bytes is larger than the database '%s' accepts (%" PRIu64
			   " bytes)",
			   rec->klen + vlen, w->path, w->max_record_bytes);
		return NULL;
	}
	it = malloc(sizeof(*it) + rec->klen + vlen + olen + 1);
	if (!it) {
		rs_err_errno(err, ENOMEM, "cannot queue a cache log record");
		return NULL;
	}
	memset(it, 0, sizeof(*it));
	it->time_ms = rec->time_ms ? rec->time_ms : rs_now_ms();
	it->op = rec->op;
	it->has_val = set;
	it->stored_ms = set ? rec->stored_ms : 0;
	it->expires_ms = set ? rec->expires_ms : 0;
	it->klen = rec->klen;
	it->vlen = vlen;
	it->olen = olen;
	if (set && rec->key_id)
		memcpy(it->key_id, rec->key_id, strlen(rec->key_id) + 1);
	if (rec->klen)
		memcpy(it->data, rec->key, rec->klen);
	if (vlen)
		memcpy(it->data + rec->klen, rec->val, vlen);
	memcpy(it->data + rec->klen + vlen, origin, olen + 1);
	it->crc = crc_without_seq(&(struct rs_wal_record){
		.time_ms = it->time_ms,
		.origin = origin,
		.op = it->op,
		.key = rec->key,
		.klen = rec->klen,
		.val = set ? (rec->val ? rec->val : "") : NULL,
		.vlen = vlen,
		.stored_ms = it->stored_ms,
		.expires_ms = it->expires_ms,
		.key_id = it->key_id[0] ? it->key_id : NULL,
	});
	return it;
}

int rs_wal_append(struct rs_wal *w, const struct rs_wal_record *rec,
		  int64_t *seq, struct rs_err *err)
{
	struct waiter wt = { .done = false };
	struct timespec t0 = { 0 };
	struct item *it;
	uint64_t queued;

	if (seq)
		*seq = 0;
	if (w->sync == RS_WAL_SYNC_OFF) {
		pthread_mutex_lock(&w->lock);
		w->st.appended++;
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	it = new_item(w, rec, err);
	if (!it)
		return -1;

	/* The wait starts with the queue's lock: the copy and checksum
	 * above are the appender's own work, not the log's. */
	if (w->sync == RS_WAL_SYNC_ALWAYS)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&w->lock);
	if (w->stopping || w->nqueued >= w->queue_max) {
		bool closing = w->stopping;

		queued = w->nqueued;
		w->st.rejected++;
		pthread_mutex_unlock(&w->lock);
		free(it);
		if (closing)
			return rs_err_set(err,
					  "the cache log in '%s' is closing",
					  w->path);
		return rs_err_set(err,
				  "cache log queue full (%" PRIu64
				  " records): the database is not keeping up",
				  queued);
	}
	it->ticket = ++w->last_ticket;
	it->queued_ms = rs_monotonic_ms();
	if (w->sync == RS_WAL_SYNC_ALWAYS)
		it->waiter = &wt;
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	w->nqueued++;
	w->st.appended++;
	/* batch: the writer sleeps until the oldest record's deadline, so
	 * only a first record or a full group needs to wake it. */
	if (w->sync == RS_WAL_SYNC_ALWAYS || w->nqueued == 1 ||
	    w->nqueued >= w->max_group)
		pthread_cond_signal(&w->work);
	if (w->sync == RS_WAL_SYNC_ALWAYS) {
		while (!wt.done)
			pthread_cond_wait(&w->done, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);

	/* `it` is the writer's now (freed once resolved); wt is ours. */
	if (w->sync == RS_WAL_SYNC_ALWAYS) {
		if (wt.rc)
			return rs_err_set(err, "%s", wt.msg);
		rs_hist_record(&w->append_wait_us, (uint64_t)elapsed_us(&t0));
		if (seq)
			*seq = wt.seq;
	}
	return 0;
}

int rs_wal_flush(struct rs_wal *w, struct rs_err *err)
{
	int64_t start, failing;
	uint64_t target, queued;
	int ret = 0;

	if (w->sync == RS_WAL_SYNC_OFF)
		return 0;
	pthread_mutex_lock(&w->lock);
	target = w->last_ticket;
	start = rs_monotonic_ms();
	w->flushers++;
	pthread_cond_signal(&w->work);
	/* The writer broadcasts `done` after every attempt, so the give-up
	 * test runs at least once per retry (backoff at most 1 s). */
	while (w->done_ticket < target) {
		failing = w->failing_since_ms ?
				  rs_monotonic_ms() -
					  max64(w->failing_since_ms, start) :
				  0;
		if (failing >= w->give_up_ms) {
			queued = w->nqueued;
			ret = rs_err_set(err,
					 "cannot flush the cache log: %" PRIu64
					 " records still queued after %" PRId64
					 " ms of failures: %s",
					 queued, failing, w->st.last_error);
			break;
		}
		pthread_cond_wait(&w->done, &w->lock);
	}
	w->flushers--;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int rs_wal_close(struct rs_wal *w, struct rs_err *err)
{
	int ret = 0;

	if (!w)
		return 0;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		w->stop_ms = rs_monotonic_ms();
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		/* The writer has exited: no lock needed from here. */
		if (w->lost)
			ret = rs_err_set(err,
					 "closing the cache log: %" PRIu64
					 " records not committed after %" PRId64
					 " ms of failures: %s",
					 w->lost, w->give_up_ms,
					 w->st.last_error);
	}
	wal_free(w);
	return ret;
}

void rs_wal_get_profile(struct rs_wal *w, struct rs_hist *commit_us,
			struct rs_hist *append_wait_us)
{
	if (commit_us) {
		rs_hist_init(commit_us);
		rs_hist_merge(commit_us, &w->commit_us);
	}
	if (append_wait_us) {
		rs_hist_init(append_wait_us);
		rs_hist_merge(append_wait_us, &w->append_wait_us);
	}
}

void rs_wal_get_stats(struct rs_wal *w, struct rs_wal_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->st;
	out->queued = w->nqueued;
	out->degraded_ms = w->failing_since_ms ?
				   rs_monotonic_ms() - w->failing_since_ms :
				   0;
	pthread_mutex_unlock(&w->lock);
}


const char *rs_wal_sync_name(enum rs_wal_sync sync)
{
	return sync == RS_WAL_SYNC_ALWAYS ? "always" :
	       sync == RS_WAL_SYNC_BATCH ? "batch" : "off";
}
