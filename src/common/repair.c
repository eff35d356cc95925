/*
 * repair: verify and quarantine.  See repair.h.
 *
 * The log is walked with rs_wal_read, which stops at the first bad record;
 * the walk resumes just past it (past a bad record, or at the record after
 * a gap), so one run finds every fault whether or not it repairs them.
 * Each resumption reopens the database: cheap next to the rarity of
 * faults, and it keeps the reader the one place that decides what a good
 * record is.
 */
#include "repair.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "seal.h"
#include "snapshot.h"
#include "util.h"
#include "wal.h"

struct verify {
	const char *path;
	const struct rs_keyring *keys;  /* NULL: checksums only */
	bool repair;
	struct rs_db *db;               /* read-write when repairing */
	struct rs_verify_report *rep;
};

const char *rs_fault_kind_name(enum rs_fault_kind kind)
{
	switch (kind) {
	case RS_FAULT_SNAPSHOT: return "snapshot";
	case RS_FAULT_RECORD: return "record";
	case RS_FAULT_GAP: return "gap";
	}
	return "?";
}

static void add_fault(struct verify *v, enum rs_fault_kind kind, int64_t ref,
		      int64_t ref_end, const char *reason, bool repaired)
{
	struct rs_verify_report *rep = v->rep;
	struct rs_fault *f;

	rep->faults++;
	if (repaired)
		rep->repaired++;
	if (rep->nlist == RS_VERIFY_MAX_LISTED)
		return;
	if (!rep->list) {
		rep->list = calloc(RS_VERIFY_MAX_LISTED, sizeof(*rep->list));
		if (!rep->list)
			return;         /* counted, just not listed */
	}
	f = &rep->list[rep->nlist++];
	f->kind = kind;
	f->ref = ref;
	f->ref_end = ref_end;
	rs_copy_text(f->reason, sizeof(f->reason), reason);
	f->repaired = repaired;
}

static int sql_fail(struct verify *v, struct rs_err *err, const char *what)
{
	return rs_err_set(err, "cannot %s in '%s': %s", what, v->path,
			  sqlite3_errmsg(v->db->handle));
}

/* Run `sql` with ?1, ?2, ?3 bound to a, b, c and ?4 to text, as far as
 * the statement uses them.  0 or -1 (the caller reports). */
static int run(struct verify *v, const char *sql, int64_t a, int64_t b,
	       int64_t c, const char *text)
{
	const int64_t num[3] = { a, b, c };
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, i, n;

	if (sqlite3_prepare_v2(v->db->handle, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	n = sqlite3_bind_parameter_count(st);
	for (i = 1; i <= n && rc == SQLITE_OK; i++)
		rc = i <= 3 ? sqlite3_bind_int64(st, i, num[i - 1]) :
			      sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Run the statements of one repair as one transaction. */
static int repair_txn(struct verify *v, const char *const *sql, int64_t a,
		      int64_t b, int64_t c, const char *text,
		      struct rs_err *err)
{
	if (rs_db_exec(v->db, "BEGIN IMMEDIATE", err))
		return -1;
	for (; *sql; sql++) {
		if (run(v, *sql, a, b, c, text)) {
			sql_fail(v, err, "write the cache quarantine");
			rs_db_exec(v->db, "ROLLBACK", NULL);
			return -1;
		}
	}
	return rs_db_exec(v->db, "COMMIT", err);
}

static int quarantine_snapshot(struct verify *v, int64_t id,
			       const char *reason, struct rs_err *err)
{
	static const char *const sql[] = {
		"UPDATE cache_snapshot SET state = '"
		RS_SNAPSHOT_STATE_QUARANTINED "' WHERE id = ?1",
		"INSERT INTO cache_quarantine (time_ms, source, ref, ref_end,"
		" reason) VALUES (?3, 'snapshot', ?1, ?1, ?4)",
		NULL,
	};

	return repair_txn(v, sql, id, 0, rs_now_ms(), reason, err);
}

/* The record moves as it was, every column, so nothing is lost to the
 * operator who wants to look at it. */
static int quarantine_record(struct verify *v, int64_t seq,
			     const char *reason, struct rs_err *err)
{
	static const char *const sql[] = {
		"INSERT INTO cache_quarantine (time_ms, source, ref, ref_end,"
		" reason, origin, op, key, value, stored_ms, expires_ms,"
		" checksum, key_id, log_time_ms)"
		" SELECT ?3, 'log', seq, seq, ?4, origin, op, key, value,"
		" stored_ms, expires_ms, checksum, key_id, time_ms"
		" FROM cache_log WHERE seq = ?1",
		"DELETE FROM cache_log WHERE seq = ?1",
		NULL,
	};

	return repair_txn(v, sql, seq, 0, rs_now_ms(), reason, err);
}

static int quarantine_gap(struct verify *v, int64_t from, int64_t to,
			  const char *reason, struct rs_err *err)
{
	static const char *const sql[] = {
		"INSERT INTO cache_quarantine (time_ms, source, ref, ref_end,"
		" reason) VALUES (?3, 'log', ?1, ?2, ?4)",
		NULL,
	};

	return repair_txn(v, sql, from, to, rs_now_ms(), reason, err);
}

/* ---- snapshots ------------------------------------------------------------ */

struct list {
	struct rs_snapshot_info *info;
	size_t n, cap;
};

static int collect(void *arg, const struct rs_snapshot_info *info)
{
	struct list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct rs_snapshot_info *p = realloc(l->info, cap * sizeof(*p));

		if (!p)
			return -2;
		l->info = p;
		l->cap = cap;
	}
	l->info[l->n++] = *info;
	return 0;
}

/* Newest first, so the first good one sets base_seq, as recovery would
 * pick it. */
static int verify_snapshots(struct verify *v, struct rs_err *err)
{
	struct rs_verify_report *rep = v->rep;
	struct rs_snapshot_check check;
	struct rs_snapshot_info *info;
	struct list l = { 0 };
	int rc, ret = -1;
	size_t i;

	rc = rs_snapshot_list(v->path, collect, &l, err);
	if (rc == -2)
		rs_err_set(err, "out of memory");
	if (rc)
		goto out;
	for (i = 0; i < l.n; i++) {
		info = &l.info[i];
		if (info->quarantined) {
			rep->snapshots_quarantined++;
			continue;
		}
		/* Gone in between (a gc elsewhere) is not a fault. */
		if (rs_snapshot_verify(v->path, v->keys, info->id, &check, err)) {
			if (strncmp(check.reason, "no snapshot", 11) == 0)
				continue;
			goto out;
		}
		if (check.incomplete) {
			rep->snapshots_incomplete++;
			continue;
		}
		rep->snapshots++;
		if (check.ok) {
			if (rep->snapshots_ok++ == 0)
				rep->base_seq = info->last_seq;
			continue;
		}
		if (v->repair &&
		    quarantine_snapshot(v, info->id, check.reason, err))
			goto out;
		add_fault(v, RS_FAULT_SNAPSHOT, info->id, info->id,
			  check.reason, v->repair);
	}
	ret = 0;
out:
	free(l.info);
	return ret;
}

/* ---- the log -------------------------------------------------------------- */

static int64_t query_int(struct verify *v, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = NULL;
	int64_t val = dflt;

	if (sqlite3_prepare_v2(v->db->handle, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		val = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return val;
}

/* With a keyring, a sealed value must open too.  The first that does not
 * stops the read: its seq and why, and whether repair may take it (a
 * missing key is the configuration's fault, not the record's). */
struct sealed_check {
	const struct rs_keyring *keys;
	int64_t seq;
	bool repairable;
	char reason[256];
};

static int check_sealed(void *arg, const struct rs_wal_record *r)
{
	struct sealed_check *c = arg;
	struct rs_err err = RS_ERR_INIT;
	void *plain = NULL;
	size_t plen;

	if (!r->key_id || r->op != RS_WAL_SET)
		return 0;
	if (!rs_keyring_has(c->keys, r->key_id)) {
		snprintf(c->reason, sizeof(c->reason),
			 "sealed with key %.*s, which is not in the key file",
			 RS_SEAL_ID_CHARS, r->key_id);
		c->repairable = false;
	} else if (rs_unseal(c->keys, r->key_id, r->key, r->klen, r->val,
			     r->vlen, &plain, &plen, &err)) {
		rs_copy_text(c->reason, sizeof(c->reason),
			  "sealed value does not authenticate");
		c->repairable = true;
	} else {
		free(plain);
		return 0;
	}
	c->seq = r->seq;
	return 1;
}

/*
 * Where the walk starts: recovery replays after base_seq and needs the
 * record base_seq + 1 (or a quarantine entry for it).  Records at or
 * below base_seq are checked too when the log still has them, so the walk
 * starts at the log's first record if that is earlier.
 */
static int verify_log(struct verify *v, struct rs_err *err)
{
	struct rs_verify_report *rep = v->rep;
	struct sealed_check sc = { .keys = v->keys };
	struct rs_wal_read_report r;
	int64_t after, first, from;
	char reason[320];
	bool fix;
	int rc;

	if (v->db->schema_version < 2)
		return 0;
	first = query_int(v, "SELECT min(seq) FROM cache_log", 0);
	if (!first)
		return 0;
	after = first - 1 < rep->base_seq ? first - 1 : rep->base_seq;
	for (;;) {
		rc = rs_wal_read(v->path, after, NULL,
				 v->keys ? check_sealed : NULL, &sc, &r, err);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			/* Counted as read, but it is the fault. */
			r.records--;
			r.last_seq = sc.seq - 1;
			r.stopped = true;
			r.gap = false;
			r.bad_seq = sc.seq;
			rs_copy_text(r.reason, sizeof(r.reason), sc.reason);
		}
		rep->records += r.records;
		if (r.first_seq && !rep->first_seq)
			rep->first_seq = r.first_seq;
		if (r.last_seq > rep->last_seq)
			rep->last_seq = r.last_seq;
		if (!r.stopped)
			return 0;
		if (r.gap) {
			from = (r.last_seq ? r.last_seq : after) + 1;
			snprintf(reason, sizeof(reason), "missing (%s)",
				 r.reason);
			if (v->repair &&
			    quarantine_gap(v, from, r.bad_seq - 1, reason, err))
				return -1;
			add_fault(v, RS_FAULT_GAP, from, r.bad_seq - 1, reason,
				  v->repair);
			after = r.bad_seq - 1;
			continue;
		}
		fix = v->repair && (rc == 0 || sc.repairable);
		if (fix && quarantine_record(v, r.bad_seq, r.reason, err))
			return -1;
		add_fault(v, RS_FAULT_RECORD, r.bad_seq, r.bad_seq, r.reason,
			  fix);
		if (r.bad_seq > rep->last_seq)
			rep->last_seq = r.bad_seq;
		after = r.bad_seq;
	}
}

int rs_cache_verify(const char *db_path, const struct rs_keyring *keys,
		    bool repair, struct rs_verify_report *report,
		    struct rs_err *err)
{
	struct rs_db_options o = {
		.flags = repair ? RS_DB_NOCREATE : RS_DB_READONLY,
	};
	struct verify v = {
		.path = db_path, .keys = keys, .repair = repair, .rep = report,
	};
	int ret = -1;

	memset(report, 0, sizeof(*report));
	/* Read-write opens migrate: a repair needs the quarantine table. */
	if (rs_db_open(&v.db, db_path, &o, err))
		return -1;
	if (verify_snapshots(&v, err) || verify_log(&v, err))
		goto out;
	if (v.db->schema_version >= RS_DB_QUARANTINE_VERSION)
		report->quarantine_rows = (uint64_t)query_int(
			&v, "SELECT count(*) FROM cache_quarantine", 0);
	ret = 0;
out:
	rs_db_close(v.db);
	return ret;
}

void rs_verify_report_free(struct rs_verify_report *report)
{
	if (!report)
		return;
	free(report->list);
	report->list = NULL;
	report->nlist = 0;
}
