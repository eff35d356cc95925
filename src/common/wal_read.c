/*
 * wal_read: reading the cache log without a writer (replay, following
 * other processes' records, verification) and truncating it.  See wal.h.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util.h"
#include "wal.h"

#define WAL_SCHEMA_VERSION 2        /* the migration that made cache_log */

/* The row as a record; *op is the column as stored, which may not fit
 * the enum.  Pointers are SQLite's, valid until the next step. */
static void row_record(sqlite3_stmt *st, struct rs_wal_record *r,
		       int64_t *op, int64_t *checksum)
{
	const unsigned char *origin;

	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(st, 0);
	r->time_ms = sqlite3_column_int64(st, 1);
	origin = sqlite3_column_text(st, 2);
	r->origin = origin ? (const char *)origin : "";
	*op = sqlite3_column_int64(st, 3);
	r->op = *op >= RS_WAL_SET && *op <= RS_WAL_PURGE ? (enum rs_wal_op)*op :
							  (enum rs_wal_op)0;
	/* blob before bytes, as SQLite asks; an empty BLOB reads as NULL. */
	r->key = sqlite3_column_blob(st, 4);
	r->klen = (size_t)sqlite3_column_bytes(st, 4);
	if (!r->key)
		r->key = "";
	if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
		r->val = sqlite3_column_blob(st, 5);
		r->vlen = (size_t)sqlite3_column_bytes(st, 5);
		if (!r->val)
			r->val = "";
	}
	r->stored_ms = sqlite3_column_int64(st, 6);
	r->expires_ms = sqlite3_column_int64(st, 7);
	*checksum = sqlite3_column_int64(st, 8);
	r->checksum = (uint32_t)*checksum;
	r->key_id = (const char *)sqlite3_column_text(st, 9);
}

/* NULL when the record itself is good, else why not; continuity is
 * checked apart (check_gap). */
static const char *verify_record(const struct rs_wal_record *r, int64_t op,
				 int64_t checksum, char *buf, size_t len)
{
	struct rs_wal_record c = *r;

	/* An op out of the enum's range is checksummed as stored, so a
	 * record from a newer build verifies and is reported by its op. */
	c.op = (enum rs_wal_op)(int)op;
	if (op < INT32_MIN || op > INT32_MAX ||
	    checksum != (int64_t)rs_wal_checksum(&c))
		return "checksum mismatch";
	if (op < RS_WAL_SET || op > RS_WAL_PURGE) {
		snprintf(buf, len, "unknown op %" PRId64, op);
		return buf;
	}
	if (op == RS_WAL_SET && !r->val)
		return "set without value";
	return NULL;
}

/* 1 when the quarantine accounts for every seq in [from, to] (verify
 * --repair moved those records aside, or recorded them missing), 0 when
 * not, -1 on a database error.  Only asked on a gap, which is rare. */
static int quarantined(struct rs_db *db, sqlite3_stmt **st, int64_t from,
		       int64_t to)
{
	int64_t next = from, ref, end;
	int rc, ret = 0;

	if (db->schema_version < RS_DB_QUARANTINE_VERSION)
		return 0;
	if (!*st && sqlite3_prepare_v2(db->handle,
				       "SELECT ref, ref_end FROM cache_quarantine"
				       " WHERE source = 'log' AND ref_end >= ?1"
				       " AND ref <= ?2 ORDER BY ref",
				       -1, st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_reset(*st);
	if (sqlite3_bind_int64(*st, 1, from) != SQLITE_OK ||
	    sqlite3_bind_int64(*st, 2, to) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
		ref = sqlite3_column_int64(*st, 0);
		end = sqlite3_column_int64(*st, 1);
		if (ref > next)
			break;
		if (end >= next)
			next = end + 1;
		if (next > to) {
			ret = 1;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = -1;
	sqlite3_reset(*st);
	return ret;
}

int rs_wal_read(const char *db_path, int64_t after_seq,
		const char *skip_origin,
		int (*cb)(void *arg, const struct rs_wal_record *rec),
		void *arg, struct rs_wal_read_report *report,
		struct rs_err *err)
{
	struct rs_db_options o = { .flags = RS_DB_READONLY };
	struct rs_wal_read_report local;
	struct rs_wal_record r;
	sqlite3_stmt *st = NULL, *qst = NULL;
	struct rs_db *db = NULL;
	char buf[sizeof(report->reason)];
	const char *bad;
	int64_t prev = after_seq > 0 ? after_seq : 0, op, sum;
	int rc, q, ret = -1;

	if (!report)
		report = &local;
	memset(report, 0, sizeof(*report));
	if (rs_db_open(&db, db_path, &o, err))
		return -1;
	if (db->schema_version < WAL_SCHEMA_VERSION) {
		ret = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(db->handle,
			       db->schema_version >= RS_DB_QUARANTINE_VERSION ?
				       "SELECT seq, time_ms, origin, op, key, value,"
				       " stored_ms, expires_ms, checksum, key_id"
				       " FROM cache_log WHERE seq > ?1 ORDER BY seq" :
				       "SELECT seq, time_ms, origin, op, key, value,"
				       " stored_ms, expires_ms, checksum, NULL"
				       " FROM cache_log WHERE seq > ?1 ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, after_seq) != SQLITE_OK) {
		rs_err_set(err, "cannot read the cache log in '%s': %s",
			   db_path, sqlite3_errmsg(db->handle));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_record(st, &r, &op, &sum);
		bad = verify_record(&r, op, sum, buf, sizeof(buf));
		/* A gap before a bad record is reported first, so that
		 * resuming at the bad one finds both.  (A corrupt seq
		 * reads as a gap up to it, then as a bad record.) */
		if (r.seq != prev + 1) {
			q = r.seq > prev + 1 ?
				    quarantined(db, &qst, prev + 1, r.seq - 1) :
				    0;
			if (q < 0) {
				rs_err_set(err,
					   "cannot read the cache quarantine in '%s': %s",
					   db_path, sqlite3_errmsg(db->handle));
				goto out;
			}
			if (q == 0) {
				report->gap = true;
				if (prev)
					snprintf(buf, sizeof(buf),
						 "gap: seq %" PRId64
						 " follows %" PRId64,
						 r.seq, prev);
				else
					snprintf(buf, sizeof(buf),
						 "gap: the log starts at seq %" PRId64,
						 r.seq);
				bad = buf;
			}
		}
		if (bad) {
			report->stopped = true;
			report->bad_seq = r.seq;
			rs_copy_text(report->reason, sizeof(report->reason), bad);
			break;
		}
		prev = r.seq;
		if (!report->first_seq)
			report->first_seq = r.seq;
		report->last_seq = r.seq;
		/* After the continuity check: another origin's records
		 * must still be there for ours to be trusted. */
		if (skip_origin && strcmp(r.origin, skip_origin) == 0) {
			report->skipped++;
			continue;
		}
		report->records++;
		if (cb && (rc = cb(arg, &r)) != 0) {
			ret = rc;
			goto out;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rs_err_set(err, "cannot read the cache log in '%s': %s",
			   db_path, sqlite3_errmsg(db->handle));
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(qst);
	sqlite3_finalize(st);
	rs_db_close(db);
	return ret;
}

int64_t rs_wal_truncate(const char *db_path, int64_t upto_seq,
			int64_t older_than_ms, struct rs_err *err)
{
	struct rs_db_options o = { .flags = RS_DB_NOCREATE };
	sqlite3_stmt *st = NULL;
	struct rs_db *db = NULL;
	int64_t ret = -1;

	if (rs_db_open(&db, db_path, &o, err))
		return -1;
	if (sqlite3_prepare_v2(db->handle,
			       "DELETE FROM cache_log"
			       " WHERE seq <= ?1 AND time_ms < ?2"
			       " AND seq < (SELECT max(seq) FROM cache_log)",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, upto_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, older_than_ms) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		rs_err_set(err, "cannot truncate the cache log in '%s': %s",
			   db_path, sqlite3_errmsg(db->handle));
		goto out;
	}
	ret = sqlite3_changes(db->handle);
out:
	sqlite3_finalize(st);
	rs_db_close(db);
	return ret;
}
