/*
 * wal: the cache write-ahead log, the `cache_log` table of the database.
 *
 * Every cache mutation (set, delete, purge) is one record: seq, time,
 * origin (who wrote it: a responder's instance id, or "resyncctl"), op,
 * key, value, the entry's stored and expiry times, and a checksum over all
 * of them.  One writer thread owns the SQLite write connection and commits
 * queued records in groups (group commit is what makes durable writes
 * fast: one fsync per group, not per record).
 *
 *   sync = always  rs_wal_append returns once the record's group is
 *                  committed; a failed commit fails the append (never
 *                  acknowledged).  kill -9 loses no acknowledged write.
 *   sync = batch   rs_wal_append returns at once; a commit happens at
 *                  latest sync_interval_ms after the oldest queued record
 *                  was appended, or as soon as max_group records wait.
 *   sync = off     nothing is written (memory only): no database is
 *                  opened, no thread started, appends only count.
 *
 * Seq numbers are assigned by the writer inside its BEGIN IMMEDIATE
 * transaction (max(seq) + 1, + 2 ...), so several processes (a responder
 * and resyncctl) may write one log and still produce one gapless sequence.
 * A record's seq is fixed only when its group commits; a rolled back
 * group leaves no hole.
 *
 * Faults: when a commit fails (disk full, I/O error, database locked past
 * the busy timeout) the log turns degraded (rs_wal_stats) and the writer
 * retries with backoff (10 ms doubling to 1 s).  With sync = batch the
 * records stay queued and are retried.  With sync = always the records of
 * the failed group are dropped and their appends fail: they were never
 * acknowledged, so nothing promised is lost, and a caller told "failed"
 * must not later find the write applied.  The queue is bounded
 * (queue_max): an append that finds it full fails at once instead of
 * growing memory.  The next successful commit clears degraded.
 *
 * Reading (replay after a snapshot, following other processes' records,
 * verification) works on a database path without a writer, in seq order,
 * one row at a time, checking each record's checksum and that seq has no
 * gaps; the first bad record stops the read and is reported (seq,
 * reason), as Redis's aof-load-truncated does.
 *
 * All functions are thread-safe on one struct rs_wal; one mutex guards
 * the queue, the counters and the error text, and is never held across
 * database I/O.  Records passed in are copied; records passed to
 * callbacks are borrowed for the call.
 */
#ifndef RS_WAL_H
#define RS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RS_WAL_SYNC_INTERVAL_DEFAULT_MS 100
#define RS_WAL_MAX_GROUP_DEFAULT 1000
#define RS_WAL_QUEUE_MAX_DEFAULT 100000
#define RS_WAL_GIVE_UP_DEFAULT_MS 5000

enum rs_wal_op { RS_WAL_SET = 1, RS_WAL_DELETE = 2, RS_WAL_PURGE = 3 };

enum rs_wal_sync { RS_WAL_SYNC_ALWAYS, RS_WAL_SYNC_BATCH, RS_WAL_SYNC_OFF };
/* "always", "batch", "off": the names [persistence] sync takes. */
const char *rs_wal_sync_name(enum rs_wal_sync sync);

struct rs_wal_record {
	int64_t seq;            /* assigned by the database; 0 when appending */
	int64_t time_ms;        /* when it was appended; 0 = now */
	const char *origin;     /* NULL when appending = the wal's origin */
	enum rs_wal_op op;
	const void *key;        /* SET, DELETE: the key; PURGE: the prefix */
	size_t klen;            /* (PURGE with klen 0 = everything) */
	/* SET only; ignored for DELETE and PURGE.  Appending a SET with val
	 * NULL stores an empty value.  Read back, val is NULL only when the
	 * record has no value (never for a good SET), non-NULL when it has
	 * one, even an empty one. */
	const void *val;
	size_t vlen;
	int64_t stored_ms, expires_ms;  /* SET only (0 otherwise) */
	/* SET only: the id of the key the value is sealed with (seal.h),
	 * NULL when it is plaintext.  The log stores the value as given:
	 * sealing and opening are the caller's (the store's). */
	const char *key_id;
	uint32_t checksum;      /* CRC-32C of every other field, seq included */
};

struct rs_wal_options {
	const char *db_path;
	enum rs_wal_sync sync;
	int64_t sync_interval_ms;   /* batch: longest time to a commit; 0 = 100 */
	size_t max_group;           /* records per transaction; 0 = 1000 */
	size_t queue_max;           /* queued records at most; 0 = 100000 */
	const char *origin;         /* written with every record; required */
	/* How long one commit attempt waits for another process's write
	 * lock (SQLite busy timeout); 0 = the database default (5 s). */
	int busy_timeout_ms;
	/* Flush and close stop retrying after this long of continuous
	 * commit failure; 0 = 5000. */
	int64_t give_up_ms;
};

struct rs_wal;

/* Open the database (creating and migrating it as rs_db_open does) and
 * start the writer thread (neither for sync = off).  *out is freed by
 * rs_wal_close. */
int rs_wal_open(struct rs_wal **out, const struct rs_wal_options *opt,
		struct rs_err *err);

/* Flush what is queued, retrying failed commits for at most give_up_ms of
 * continuous failure, stop the writer and close.  Returns 0, or -1 with
 * err naming how many records were left uncommitted and why.  The wal is
 * freed either way; a NULL w is a no-op.  No other call on w may run
 * during or after it (appends still waiting in it are answered first). */
int rs_wal_close(struct rs_wal *w, struct rs_err *err);

/* Queue one record (copied).  With sync = always, wait until it is
 * committed and set *seq (seq may be NULL); otherwise *seq is 0.  -1 with
 * err when the record is invalid, the queue is full, the wal is closing
 * or (always) the commit failed; such a record is not in the log. */
int rs_wal_append(struct rs_wal *w, const struct rs_wal_record *rec,
		  int64_t *seq, struct rs_err *err);

/* Wait until every record queued before the call is committed (with
 * sync = batch the writer commits at once rather than at the interval).
 * -1 with err when the writer has been failing for give_up_ms; the records
 * stay queued.  With sync = always, records whose commit failed were
 * already reported to their appenders and do not fail the flush. */
int rs_wal_flush(struct rs_wal *w, struct rs_err *err);

struct rs_wal_stats {
	uint64_t appended;          /* accepted into the queue (off: counted) */
	uint64_t committed, groups, commit_failures;
	uint64_t rejected;          /* appends refused: queue full, closing */
	uint64_t dropped;           /* always: failed commits, appends failed */
	uint64_t queued;            /* waiting now, the group in flight too */
	int64_t last_seq;           /* highest this wal committed; 0 = none */
	bool degraded;              /* the last commit failed */
	int64_t degraded_ms;        /* for how long now; 0 when not degraded */
	uint64_t commit_us_total;   /* time in successful group commits */
	uint64_t commit_us_max;     /* (BEGIN to COMMIT, fsync included) */
	char last_error[RS_ERR_MSG_MAX]; /* of the last failed commit; kept */
};
void rs_wal_get_stats(struct rs_wal *w, struct rs_wal_stats *out);

/* Latency histograms in microseconds (histogram.h), copied into the
 * caller's (each may be NULL; overwritten, need no rs_hist_init):
 * commit_us, each successful group commit, BEGIN IMMEDIATE to COMMIT done,
 * fsync included (count = groups); append_wait_us, with sync = always, each
 * acknowledged append's wait for its group's commit (failed appends are
 * not in it).  Both stay empty with sync = off. */
struct rs_hist;
void rs_wal_get_profile(struct rs_wal *w, struct rs_hist *commit_us,
			struct rs_hist *append_wait_us);

/* ---- reading, without a writer ------------------------------------------ */

struct rs_wal_read_report {
	uint64_t records;           /* good records delivered to the callback */
	uint64_t skipped;           /* good records of skip_origin */
	/* The first and last good records read, skipped ones included, so
	 * a follower passes last_seq as the next call's after_seq; 0 when
	 * none. */
	int64_t first_seq, last_seq;
	bool stopped;               /* a bad record ended the read */
	bool gap;                   /* ...a gap before it (records missing),
				     * the record itself may be good */
	int64_t bad_seq;            /* its seq */
	char reason[256];           /* "checksum mismatch", "gap: seq 41 follows 39" ... */
};

/* Call cb for each record with seq > after_seq, in order, skipping those
 * whose origin equals skip_origin (NULL = none) after they have been
 * verified.  The records must be consecutive, the first one after_seq + 1
 * (so reading from 0 a log whose start was truncated, when no snapshot
 * covers the records before it, is a gap: they are lost).  cb returns 0 to go on, non-zero to stop (that
 * value is returned).  A bad record (checksum mismatch, gap, unknown op,
 * set without value) stops the read with report->stopped set; that is not
 * an error of the call (returns 0).  A gap the quarantine accounts for
 * (records `resyncctl cache verify --repair` moved aside or recorded as
 * missing, see repair.h) is not a fault.  A database whose schema predates the
 * log reads as empty.  Errors opening or reading the database return -1
 * with err. */
int rs_wal_read(const char *db_path, int64_t after_seq,
		const char *skip_origin,
		int (*cb)(void *arg, const struct rs_wal_record *rec),
		void *arg, struct rs_wal_read_report *report,
		struct rs_err *err);

/* Delete records with seq <= upto_seq and time before older_than_ms
 * (records a snapshot covers, past retention), except the newest record
 * of the log, which is always kept: the next seq is max(seq) + 1, and an
 * empty log would start again at 1 behind every follower's back.  Returns
 * how many were deleted, or -1.  The database must exist. */
int64_t rs_wal_truncate(const char *db_path, int64_t upto_seq,
			int64_t older_than_ms, struct rs_err *err);

/* CRC-32C of a record: every field but the checksum, seq included, so a
 * record moved to another seq does not verify.  The encoding is described
 * at the top of wal.c. */
uint32_t rs_wal_checksum(const struct rs_wal_record *rec);

#endif
