/*
 * snapshot: cache images in the database (see snapshot.h for the
 * contract).
 *
 * Checksum: CRC-32C (crc32c.h) over this canonical encoding, whatever
 * SQLite's column types: every integer is 8 bytes, little-endian, two's
 * complement for signed values, and every byte string is preceded by its
 * length as such an integer:
 *
 *	for each row, in idx order:
 *		idx,
 *		len(key), key bytes,
 *		len(value), value bytes,
 *		stored_ms, expires_ms
 *	then, once:
 *		id, time_ms, last_seq, entries, bytes
 *
 * idx is in every row, so each row's position is covered, not only the
 * order in which rows come back (a renumbered row fails).  The header
 * fields come last because entries and bytes are known only after the
 * last row; they are covered at all so that a changed last_seq, which
 * decides where replay starts, is found like a changed row.  The state column is not
 * covered: it is checked by itself, first.  The stored checksum is the CRC
 * as an unsigned 32-bit INTEGER.
 *
 * Deliberate quirks:
 *  - take commits the header before the first row, in a transaction of its
 *    own, so a crash mid-way leaves an incomplete snapshot anyone can see
 *    (and gc removes), not rows nothing points to.
 *  - Rows are committed every SNAPSHOT_ROWS_PER_TXN: one transaction for
 *    a million rows would hold the write lock for seconds and stall the
 *    cache log's writer, whose sync = always appends wait on commits;
 *    10 000 rows per commit already give most of the batched insert rate
 *    (BASELINES.md: ~552 k rows/s against ~376 k at 1 000).  SQLite's
 *    busy handler polls rather than queues, so a writer may still miss
 *    several gaps: during a 1 M-row take one waited 13-18 ms on average,
 *    at most 0.13-0.64 s (sleeping between transactions did not help).
 *  - Shards are copied with a write transaction open: the copy takes one
 *    shard lock and does no I/O, and the cache never waits on the
 *    database under a lock, so the order cannot deadlock.
 *  - time_ms is the wall clock, not the cache's (injectable) clock:
 *    retention is about the age of what is in the database.
 */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "db.h"
#include "seal.h"
#include "util.h"

#define SNAPSHOT_SCHEMA_VERSION 3   /* the migration that made the tables */
#define SNAPSHOT_ROWS_PER_TXN 10000
#define SNAPSHOT_STATE_MAX 32       /* longer states are corrupt anyway */

static const char state_writing[] = "writing";
static const char state_complete[] = "complete";
static const char state_quarantined[] = RS_SNAPSHOT_STATE_QUARANTINED;

struct header {
	int64_t id, time_ms, last_seq;
	int64_t entries, bytes, checksum;  /* as stored: may be garbage */
	char state[SNAPSHOT_STATE_MAX];
	char key_id[SNAPSHOT_STATE_MAX];   /* "" = values in plaintext */
};

/* One row; the pointers are SQLite's or the cache item's, borrowed. */
struct row {
	int64_t idx;
	const void *key, *val;
	size_t klen, vlen;
	int64_t stored_ms, expires_ms;
};

/* "<what>: <sqlite message>"; always -1. */
static int sql_fail(struct rs_db *db, struct rs_err *err, const char *fmt, ...)
	RS_PRINTF(3, 4);

static int sql_fail(struct rs_db *db, struct rs_err *err, const char *fmt, ...)
{
	char what[RS_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rs_err_set(err, "%s: %s", what, sqlite3_errmsg(db->handle));
}

static int open_db(struct rs_db **db, const char *path, unsigned flags,
		   struct rs_err *err)
{
	struct rs_db_options o = { .flags = flags };

	return rs_db_open(db, path, &o, err);
}

static bool has_tables(const struct rs_db *db)
{
	return db->schema_version >= SNAPSHOT_SCHEMA_VERSION;
}

static int exec(struct rs_db *db, const char *sql)
{
	return sqlite3_exec(db->handle, sql, NULL, NULL, NULL) == SQLITE_OK ?
		       0 : -1;
}

static void rollback(struct rs_db *db)
{
	if (!sqlite3_get_autocommit(db->handle))
		exec(db, "ROLLBACK");
}

static uint32_t crc_row(uint32_t crc, const struct row *r)
{
	crc = rs_crc32c_u64(crc, (uint64_t)r->idx);
	crc = rs_crc32c_lenbytes(crc, r->key, r->klen);
	crc = rs_crc32c_lenbytes(crc, r->val, r->vlen);
	crc = rs_crc32c_u64(crc, (uint64_t)r->stored_ms);
	return rs_crc32c_u64(crc, (uint64_t)r->expires_ms);
}

static uint32_t crc_header(uint32_t crc, const struct header *h)
{
	crc = rs_crc32c_u64(crc, (uint64_t)h->id);
	crc = rs_crc32c_u64(crc, (uint64_t)h->time_ms);
	crc = rs_crc32c_u64(crc, (uint64_t)h->last_seq);
	crc = rs_crc32c_u64(crc, (uint64_t)h->entries);
	crc = rs_crc32c_u64(crc, (uint64_t)h->bytes);
	/* Only when sealed, so plaintext snapshots keep their checksums. */
	if (h->key_id[0])
		crc = rs_crc32c_lenbytes(crc, h->key_id, strlen(h->key_id));
	return crc;
}

/* key_id came with migration 4; a read-only open of an older database
 * (never migrated) reads it as NULL. */
#define HEADER_COLUMNS "id, time_ms, last_seq, entries, bytes, checksum, state, "
#define HEADER_SQL(db, rest) \
	((db)->schema_version >= RS_DB_QUARANTINE_VERSION ? \
		 "SELECT " HEADER_COLUMNS "key_id" rest : \
		 "SELECT " HEADER_COLUMNS "NULL" rest)

static void column_header(sqlite3_stmt *st, struct header *h)
{
	const unsigned char *state;

	h->id = sqlite3_column_int64(st, 0);
	h->time_ms = sqlite3_column_int64(st, 1);
	h->last_seq = sqlite3_column_int64(st, 2);
	h->entries = sqlite3_column_int64(st, 3);
	h->bytes = sqlite3_column_int64(st, 4);
	h->checksum = sqlite3_column_int64(st, 5);
	state = sqlite3_column_text(st, 6);
	rs_copy_text(h->state, sizeof(h->state), state ? (const char *)state : "");
	state = sqlite3_column_text(st, 7);
	rs_copy_text(h->key_id, sizeof(h->key_id), state ? (const char *)state : "");
}

static void header_info(const struct header *h, struct rs_snapshot_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = h->id;
	info->time_ms = h->time_ms;
	info->last_seq = h->last_seq;
	info->entries = (uint64_t)h->entries;
	info->bytes = (uint64_t)h->bytes;
	info->checksum = (uint32_t)h->checksum;
	info->complete = strcmp(h->state, state_complete) == 0;
	info->quarantined = strcmp(h->state, state_quarantined) == 0;
}

/* 1 when snapshot `id` exists (*h filled), 0 when not, -1 on error. */
static int read_header(struct rs_db *db, int64_t id, struct header *h,
		       struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	memset(h, 0, sizeof(*h));
	if (!has_tables(db))
		return 0;
	if (sqlite3_prepare_v2(db->handle,
			       HEADER_SQL(db, " FROM cache_snapshot WHERE id = ?1"),
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sql_fail(db, err, "cannot read snapshot %" PRId64 " in '%s'",
			 id, db->path);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		column_header(st, h);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		sql_fail(db, err, "cannot read snapshot %" PRId64 " in '%s'",
			 id, db->path);
	}
out:
	sqlite3_finalize(st);
	return ret;
}

/* Call fn for every row of snapshot `id` in idx order; fn returns
 * non-zero to stop (that value is returned).  Nothing is buffered: memory
 * stays flat whatever the snapshot's size. */
static int scan_rows(struct rs_db *db, int64_t id,
		     int (*fn)(void *arg, const struct row *r), void *arg,
		     struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	struct row r;
	int rc, ret = -1;

	if (sqlite3_prepare_v2(db->handle,
			       "SELECT idx, key, value, stored_ms, expires_ms"
			       " FROM cache_snapshot_row"
			       " WHERE snapshot_id = ?1 ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.idx = sqlite3_column_int64(st, 0);
		/* blob before bytes, as SQLite asks; an empty BLOB reads
		 * as NULL. */
		r.key = sqlite3_column_blob(st, 1);
		r.klen = (size_t)sqlite3_column_bytes(st, 1);
		r.val = sqlite3_column_blob(st, 2);
		r.vlen = (size_t)sqlite3_column_bytes(st, 2);
		if ((!r.key && r.klen) || (!r.val && r.vlen)) {
			rs_err_errno(err, ENOMEM,
				     "cannot read snapshot %" PRId64 " in '%s'",
				     id, db->path);
			goto out;
		}
		if (!r.key)
			r.key = "";
		if (!r.val)
			r.val = "";
		r.stored_ms = sqlite3_column_int64(st, 3);
		r.expires_ms = sqlite3_column_int64(st, 4);
		if ((rc = fn(arg, &r)) != 0) {
			ret = rc;
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto fail;
	ret = 0;
	goto out;
fail:
	sql_fail(db, err, "cannot read snapshot %" PRId64 " in '%s'", id,
		 db->path);
out:
	sqlite3_finalize(st);
	return ret;
}

struct tally {
	uint32_t crc;
	uint64_t rows, bytes;
	/* with a key: every sealed value must open, not just checksum */
	const struct rs_keyring *keys;
	const char *key_id;
	int64_t bad_idx;                /* first row that did not; -1 none */
};

static int tally_row(void *arg, const struct row *r)
{
	struct tally *t = arg;

	t->crc = crc_row(t->crc, r);
	t->rows++;
	t->bytes += r->klen + r->vlen;
	if (t->keys && t->bad_idx < 0) {
		void *plain = NULL;
		size_t plen;
		if (rs_unseal(t->keys, t->key_id, r->key, r->klen, r->val, r->vlen,
			      &plain, &plen, NULL))
			t->bad_idx = r->idx;
		free(plain);
	}
	return 0;
}

/* The verdict on snapshot *h in check; -1 only when it cannot be read.
 * With keys that hold the snapshot's key, each sealed value must also
 * authenticate: the checksum covers the sealed bytes, so a row rewritten
 * with a recomputed checksum is caught only here. */
static int check_snapshot(struct rs_db *db, const struct header *h,
			  const struct rs_keyring *keys,
			  struct rs_snapshot_check *check, struct rs_err *err)
{
	struct tally t = { .crc = RS_CRC32C_INIT, .bad_idx = -1 };
	uint32_t crc;

	if (h->key_id[0] && keys && rs_keyring_has(keys, h->key_id)) {
		t.keys = keys;
		t.key_id = h->key_id;
	}

	memset(check, 0, sizeof(*check));
	if (strcmp(h->state, state_writing) == 0) {
		check->incomplete = true;
		snprintf(check->reason, sizeof(check->reason),
			 "incomplete (state '%s')", h->state);
		return 0;
	}
	if (strcmp(h->state, state_quarantined) == 0) {
		rs_copy_text(check->reason, sizeof(check->reason), "quarantined");
		return 0;
	}
	if (strcmp(h->state, state_complete) != 0) {
		snprintf(check->reason, sizeof(check->reason),
			 "unknown state '%s'", h->state);
		return 0;
	}
	if (scan_rows(db, h->id, tally_row, &t, err))
		return -1;
	crc = rs_crc32c_final(crc_header(t.crc, h));
	if (h->entries < 0 || t.rows != (uint64_t)h->entries)
		snprintf(check->reason, sizeof(check->reason),
			 "%" PRIu64 " rows, header says %" PRId64, t.rows,
			 h->entries);
	else if (h->bytes < 0 || t.bytes != (uint64_t)h->bytes)
		snprintf(check->reason, sizeof(check->reason),
			 "%" PRIu64 " bytes, header says %" PRId64, t.bytes,
			 h->bytes);
	else if (h->checksum != (int64_t)crc)
		rs_copy_text(check->reason, sizeof(check->reason),
			  "checksum mismatch");
	else if (t.bad_idx >= 0)
		snprintf(check->reason, sizeof(check->reason),
			 "row %" PRId64 " does not authenticate with key %s",
			 t.bad_idx, h->key_id);
	else
		check->ok = true;
	return 0;
}

/* Rows and header in one transaction.  0 when none was there. */
static int remove_snapshot(struct rs_db *db, int64_t id, int *changes,
			   struct rs_err *err)
{
	sqlite3_stmt *rows = NULL, *head = NULL;
	int ret = -1;

	*changes = 0;
	if (exec(db, "BEGIN IMMEDIATE"))
		goto fail;
	if (sqlite3_prepare_v2(db->handle,
			       "DELETE FROM cache_snapshot_row"
			       " WHERE snapshot_id = ?1",
			       -1, &rows, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(rows, 1, id) != SQLITE_OK ||
	    sqlite3_step(rows) != SQLITE_DONE ||
	    sqlite3_prepare_v2(db->handle,
			       "DELETE FROM cache_snapshot WHERE id = ?1", -1,
			       &head, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(head, 1, id) != SQLITE_OK ||
	    sqlite3_step(head) != SQLITE_DONE)
		goto fail;
	*changes = sqlite3_changes(db->handle);
	if (exec(db, "COMMIT"))
		goto fail;
	ret = 0;
	goto out;
fail:
	/* The message is taken before ROLLBACK replaces sqlite's. */
	sql_fail(db, err, "cannot delete snapshot %" PRId64 " in '%s'", id,
		 db->path);
	rollback(db);
	*changes = 0;
out:
	sqlite3_finalize(rows);
	sqlite3_finalize(head);
	return ret;
}

/* ---- take ---------------------------------------------------------------- */

struct writer {
	struct rs_db *db;
	const struct rs_keyring *keys;  /* NULL = plaintext */
	sqlite3_stmt *insert;
	struct header h;
	uint32_t crc;
	uint64_t in_txn;            /* rows since the last commit */
};

static int begin_header(struct writer *w, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(w->db->handle,
			       "INSERT INTO cache_snapshot (time_ms, last_seq,"
			       " entries, bytes, checksum, state, key_id)"
			       " VALUES (?1, ?2, 0, 0, 0, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, w->h.time_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, w->h.last_seq) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, state_writing, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    (w->h.key_id[0] ?
		     sqlite3_bind_text(st, 4, w->h.key_id, -1, SQLITE_STATIC) :
		     sqlite3_bind_null(st, 4)) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		sql_fail(w->db, err, "cannot start a snapshot in '%s'",
			 w->db->path);
	else
		ret = 0;
	w->h.id = sqlite3_last_insert_rowid(w->db->handle);
	sqlite3_finalize(st);
	return ret;
}

static int write_row(struct writer *w, const struct row *r,
		     struct rs_err *err)
{
	sqlite3_stmt *st = w->insert;
	int rc;

	/* SQLITE_STATIC: the item outlives the step. */
	if (sqlite3_bind_int64(st, 2, r->idx) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, r->key, (int)r->klen, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_blob(st, 4, r->val, (int)r->vlen, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, r->stored_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, r->expires_ms) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto fail;
	w->crc = crc_row(w->crc, r);
	w->h.entries++;
	w->h.bytes += (int64_t)(r->klen + r->vlen);
	if (++w->in_txn < SNAPSHOT_ROWS_PER_TXN)
		return 0;
	w->in_txn = 0;
	if (exec(w->db, "COMMIT") || exec(w->db, "BEGIN IMMEDIATE"))
		goto fail;
	return 0;
fail:
	return sql_fail(w->db, err,
			"cannot write snapshot %" PRId64 " to '%s'", w->h.id,
			w->db->path);
}

static int write_shards(struct writer *w, struct rs_cache *c,
			struct rs_err *err)
{
	struct rs_cache_item *items;
	size_t nshards = rs_cache_num_shards(c), shard, n, i;
	struct row r;
	int ret = 0;

	for (shard = 0; shard < nshards && !ret; shard++) {
		if (rs_cache_shard_copy(c, shard, &items, &n, err)) {
			rs_err_prefix(err,
				      "cannot copy the cache for snapshot %" PRId64,
				      w->h.id);
			return -1;
		}
		for (i = 0; i < n && !ret; i++) {
			void *sealed = NULL;

			r.idx = w->h.entries;
			r.key = items[i].key;
			r.klen = items[i].klen;
			r.val = items[i].val;
			r.vlen = items[i].vlen;
			r.stored_ms = items[i].stored_ms;
			r.expires_ms = items[i].expires_ms;
			if (w->keys) {
				ret = rs_seal(w->keys, r.key, r.klen, r.val,
					      r.vlen, &sealed, &r.vlen, NULL,
					      err);
				r.val = sealed;
			}
			if (!ret)
				ret = write_row(w, &r, err);
			free(sealed);
		}
		rs_cache_items_free(items, n);
	}
	return ret;
}

/* The header's counts and checksum, and 'complete', in the last rows'
 * transaction. */
static int finish_header(struct writer *w, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	w->h.checksum = rs_crc32c_final(crc_header(w->crc, &w->h));
	if (sqlite3_prepare_v2(w->db->handle,
			       "UPDATE cache_snapshot SET entries = ?2,"
			       " bytes = ?3, checksum = ?4, state = ?5"
			       " WHERE id = ?1 AND state = ?6",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, w->h.id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, w->h.entries) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, w->h.bytes) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, w->h.checksum) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, state_complete, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_text(st, 6, state_writing, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		sql_fail(w->db, err,
			 "cannot write snapshot %" PRId64 " to '%s'", w->h.id,
			 w->db->path);
		goto out;
	}
	/* A gc elsewhere may have taken a take that ran past
	 * RS_SNAPSHOT_INCOMPLETE_MAX_AGE_MS for a crashed one. */
	if (sqlite3_changes(w->db->handle) != 1) {
		rs_err_set(err,
			   "snapshot %" PRId64 " in '%s' was deleted while it was being written",
			   w->h.id, w->db->path);
		goto out;
	}
	if (exec(w->db, "COMMIT")) {
		sql_fail(w->db, err,
			 "cannot write snapshot %" PRId64 " to '%s'", w->h.id,
			 w->db->path);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

int rs_snapshot_take(const char *db_path, const struct rs_keyring *keys,
		     struct rs_cache *c, int64_t last_seq,
		     struct rs_snapshot_info *info, struct rs_err *err)
{
	struct writer w = { .crc = RS_CRC32C_INIT, .keys = keys };
	struct rs_err ignored = RS_ERR_INIT;
	int changes, ret = -1;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!c)
		return rs_err_set(err, "no cache to take a snapshot of");
	if (last_seq < 0)
		return rs_err_set(err, "invalid last log seq %" PRId64,
				  last_seq);
	if (open_db(&w.db, db_path, 0, err)) {
		rs_err_prefix(err, "cannot take a snapshot");
		return -1;
	}
	w.h.time_ms = rs_now_ms();
	w.h.last_seq = last_seq;
	if (keys)
		rs_copy_text(w.h.key_id, sizeof(w.h.key_id),
			  rs_keyring_current_id(keys));
	if (begin_header(&w, err))
		goto out;
	if (sqlite3_prepare_v2(w.db->handle,
			       "INSERT INTO cache_snapshot_row (snapshot_id,"
			       " idx, key, value, stored_ms, expires_ms)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       -1, &w.insert, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(w.insert, 1, w.h.id) != SQLITE_OK ||
	    exec(w.db, "BEGIN IMMEDIATE")) {
		sql_fail(w.db, err,
			 "cannot write snapshot %" PRId64 " to '%s'", w.h.id,
			 w.db->path);
		goto discard;
	}
	if (write_shards(&w, c, err) || finish_header(&w, err))
		goto discard;
	rs_copy_text(w.h.state, sizeof(w.h.state), state_complete);
	if (info)
		header_info(&w.h, info);
	ret = 0;
	goto out;
discard:
	rollback(w.db);
	/* Best effort: when this fails too (disk full, I/O error), the
	 * snapshot stays incomplete and gc removes it. */
	remove_snapshot(w.db, w.h.id, &changes, &ignored);
out:
	sqlite3_finalize(w.insert);
	rs_db_close(w.db);
	return ret;
}

/* ---- list, verify --------------------------------------------------------- */

int rs_snapshot_list(const char *db_path,
		     int (*cb)(void *arg, const struct rs_snapshot_info *info),
		     void *arg, struct rs_err *err)
{
	struct rs_snapshot_info info;
	struct rs_db *db = NULL;
	sqlite3_stmt *st = NULL;
	struct header h;
	int rc, ret = -1;

	if (!cb)
		return rs_err_set(err, "no callback for the snapshot list");
	if (open_db(&db, db_path, RS_DB_READONLY, err))
		return -1;
	if (!has_tables(db)) {
		ret = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(db->handle,
			       HEADER_SQL(db, " FROM cache_snapshot ORDER BY id DESC"),
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		column_header(st, &h);
		header_info(&h, &info);
		if ((rc = cb(arg, &info)) != 0) {
			ret = rc;
			goto out;
		}
	}
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
fail:
	sql_fail(db, err, "cannot list the snapshots in '%s'", db_path);
out:
	sqlite3_finalize(st);
	rs_db_close(db);
	return ret;
}

static int no_snapshot(struct rs_err *err, int64_t id, const char *path)
{
	return rs_err_set(err, "no snapshot %" PRId64 " in '%s'", id, path);
}

int rs_snapshot_verify(const char *db_path, const struct rs_keyring *keys,
		       int64_t id, struct rs_snapshot_check *check,
		       struct rs_err *err)
{
	struct rs_snapshot_check local;
	struct rs_db *db = NULL;
	struct header h;
	int found, ret = -1;

	if (!check)
		check = &local;
	memset(check, 0, sizeof(*check));
	if (open_db(&db, db_path, RS_DB_READONLY, err))
		return -1;
	/* Header and rows from one read transaction: a delete elsewhere
	 * in between must not look like missing rows. */
	if (exec(db, "BEGIN")) {
		sql_fail(db, err, "cannot read the snapshots in '%s'", db_path);
		goto out;
	}
	found = read_header(db, id, &h, err);
	if (found == 0) {
		snprintf(check->reason, sizeof(check->reason),
			 "no snapshot %" PRId64, id);
		no_snapshot(err, id, db_path);
	} else if (found == 1) {
		ret = check_snapshot(db, &h, keys, check, err);
	}
	rollback(db);
out:
	rs_db_close(db);
	return ret;
}

/* ---- load ---------------------------------------------------------------- */

struct loader {
	struct rs_cache *c;
	const struct rs_keyring *keys;
	const char *key_id;             /* NULL: rows in plaintext */
	struct rs_snapshot_load_report *report;
	struct rs_err *err;             /* a row that does not open */
};

static int store_row(void *arg, const struct row *r)
{
	struct loader *l = arg;
	struct rs_err why = RS_ERR_INIT;
	const void *val = r->val;
	size_t vlen = r->vlen;
	void *plain = NULL;
	int rc;

	/* The checksum already passed, so a value that does not open was
	 * sealed with another key of the same id: stop, never store it. */
	if (l->key_id) {
		if (rs_unseal(l->keys, l->key_id, r->key, r->klen, r->val,
			      r->vlen, &plain, &vlen, l->err))
			return -2;
		val = plain;
	}
	rc = rs_cache_set_at(l->c, r->key, r->klen, val, vlen,
			     r->stored_ms, r->expires_ms, &why);
	free(plain);
	if (rc == 0) {
		l->report->entries++;
	} else if (rc == 1) {
		l->report->expired++;
	} else {
		if (l->report->rejected++ == 0)
			rs_copy_text(l->report->rejected_reason,
				  sizeof(l->report->rejected_reason), why.msg);
	}
	return 0;
}

/* A sealed snapshot needs its key before anything is stored. */
static int check_key(const struct rs_db *db, const struct header *h,
		     const struct rs_keyring *keys, struct rs_err *err)
{
	if (!h->key_id[0] || (keys && rs_keyring_has(keys, h->key_id)))
		return 0;
	if (!keys)
		return rs_err_set(err,
				  "snapshot %" PRId64 " in '%s' is sealed with key %s, and no encryption key file is configured",
				  h->id, db->path, h->key_id);
	return rs_err_set(err,
			  "snapshot %" PRId64 " in '%s' is sealed with key %s, which is not in the key file",
			  h->id, db->path, h->key_id);
}

static int load_rows(struct rs_db *db, const struct header *h,
		     const struct rs_keyring *keys, struct rs_cache *c,
		     struct rs_snapshot_load_report *report,
		     struct rs_err *err)
{
	struct loader l = {
		.c = c,
		.keys = keys,
		.key_id = h->key_id[0] ? h->key_id : NULL,
		.report = report,
		.err = err,
	};
	int rc;

	if (check_key(db, h, keys, err))
		return -1;
	rc = scan_rows(db, h->id, store_row, &l, err);
	if (rc == -2)
		rs_err_prefix(err, "cannot load snapshot %" PRId64 " from '%s'",
			      h->id, db->path);
	if (rc)
		return -1;
	report->loaded_id = h->id;
	report->last_seq = h->last_seq;
	return 0;
}

/* "snapshot ID: REASON", the reason cut short rather than the id. */
static void name_reason(char *dst, size_t n, int64_t id, const char *reason)
{
	int len = snprintf(dst, n, "snapshot %" PRId64 ": ", id);

	if (len > 0 && (size_t)len < n)
		rs_copy_text(dst + len, n - (size_t)len, reason);
}

/* The newest complete snapshot that verifies, in *h; 1 when one does, 0
 * when none. */
static int pick_newest(struct rs_db *db, struct header *h,
		       const struct rs_keyring *keys,
		       struct rs_snapshot_load_report *report,
		       struct rs_err *err)
{
	struct rs_snapshot_check check;
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	if (sqlite3_prepare_v2(db->handle,
			       HEADER_SQL(db, " FROM cache_snapshot ORDER BY id DESC"),
			       -1, &st, NULL) != SQLITE_OK) {
		sql_fail(db, err, "cannot list the snapshots in '%s'",
			 db->path);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		column_header(st, h);
		if (strcmp(h->state, state_writing) == 0) {
			report->incomplete++;
			continue;
		}
		if (strcmp(h->state, state_quarantined) == 0) {
			report->quarantined++;
			continue;
		}
		if (check_snapshot(db, h, keys, &check, err))
			goto out;
		if (check.ok) {
			ret = 1;
			goto out;
		}
		if (report->skipped++ == 0)
			name_reason(report->skipped_reason,
				    sizeof(report->skipped_reason), h->id,
				    check.reason);
	}
	if (rc != SQLITE_DONE)
		sql_fail(db, err, "cannot list the snapshots in '%s'",
			 db->path);
	else
		ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

int rs_snapshot_load(const char *db_path, const struct rs_keyring *keys,
		     int64_t id, struct rs_cache *c,
		     struct rs_snapshot_load_report *report,
		     struct rs_err *err)
{
	struct rs_snapshot_load_report local;
	struct rs_snapshot_check check;
	struct rs_db *db = NULL;
	struct header h;
	int found, ret = -1;

	if (!report)
		report = &local;
	memset(report, 0, sizeof(*report));
	if (!c)
		return rs_err_set(err, "no cache to load a snapshot into");
	if (id < 0)
		return no_snapshot(err, id, db_path);
	if (open_db(&db, db_path, RS_DB_READONLY, err))
		return -1;
	if (!has_tables(db)) {
		ret = id ? no_snapshot(err, id, db_path) : 0;
		goto out;
	}
	/* One read transaction for choosing, verifying and storing. */
	if (exec(db, "BEGIN")) {
		sql_fail(db, err, "cannot read the snapshots in '%s'", db_path);
		goto out;
	}
	if (id == 0) {
		found = pick_newest(db, &h, keys, report, err);
		if (found < 0)
			goto out;
		ret = found ? load_rows(db, &h, keys, c, report, err) : 0;
		goto out;
	}
	found = read_header(db, id, &h, err);
	if (found < 0)
		goto out;
	if (!found) {
		no_snapshot(err, id, db_path);
		goto out;
	}
	if (check_snapshot(db, &h, keys, &check, err))
		goto out;
	if (!check.ok) {
		rs_err_set(err, "cannot load snapshot %" PRId64 " from '%s': %s",
			   id, db_path, check.reason);
		goto out;
	}
	ret = load_rows(db, &h, keys, c, report, err);
out:
	if (db)
		rollback(db);
	rs_db_close(db);
	if (ret)
		report->loaded_id = report->last_seq = 0;
	return ret;
}

/* ---- gc, delete ----------------------------------------------------------- */

/* The id of the newest complete snapshot that verifies, 0 when none. */
static int newest_valid(struct rs_db *db, int64_t *keeper, struct rs_err *err)
{
	struct rs_snapshot_check check;
	sqlite3_stmt *st = NULL;
	struct header h;
	int rc, ret = -1;

	*keeper = 0;
	if (sqlite3_prepare_v2(db->handle,
			       HEADER_SQL(db, " FROM cache_snapshot WHERE state <> ?1"
			       " ORDER BY id DESC"),
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, state_writing, -1, SQLITE_STATIC) !=
		    SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		column_header(st, &h);
		if (check_snapshot(db, &h, NULL, &check, err))
			goto out;
		if (check.ok) {
			*keeper = h.id;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	ret = 0;
	goto out;
fail:
	sql_fail(db, err, "cannot list the snapshots in '%s'", db->path);
out:
	sqlite3_finalize(st);
	return ret;
}

/* One snapshot gc should delete: *id, or 0 when none is left. */
static int next_victim(struct rs_db *db, int64_t now_ms, int64_t retention_ms,
		       int64_t keeper, int64_t *id, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	*id = 0;
	/* Computed here in 64 bits rather than in SQL, where an
	 * overflowing subtraction turns into a REAL. */
	if (sqlite3_prepare_v2(db->handle,
			       "SELECT id FROM cache_snapshot"
			       " WHERE (state = ?1 AND time_ms < ?2)"
			       " OR (state <> ?1 AND id < ?3 AND time_ms < ?4)"
			       " LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, state_writing, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 2,
			       now_ms - RS_SNAPSHOT_INCOMPLETE_MAX_AGE_MS) !=
		    SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, keeper) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, now_ms - retention_ms) != SQLITE_OK) {
		sql_fail(db, err, "cannot list the snapshots in '%s'",
			 db->path);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		sql_fail(db, err, "cannot list the snapshots in '%s'",
			 db->path);
	else
		ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

static int min_kept_seq(struct rs_db *db, int64_t *keep_seq,
			struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	*keep_seq = 0;
	if (sqlite3_prepare_v2(db->handle,
			       "SELECT min(last_seq) FROM cache_snapshot"
			       " WHERE state = ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, state_complete, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sql_fail(db, err, "cannot list the snapshots in '%s'",
			 db->path);
		goto out;
	}
	/* min() of no rows is NULL, which reads as 0. */
	*keep_seq = sqlite3_column_int64(st, 0);
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

int rs_snapshot_gc(const char *db_path, int64_t now_ms, int64_t retention_ms,
		   uint64_t *removed, int64_t *keep_seq, struct rs_err *err)
{
	struct rs_db *db = NULL;
	int64_t keeper, victim, seq;
	uint64_t n = 0;
	int changes, ret = -1;

	if (removed)
		*removed = 0;
	if (keep_seq)
		*keep_seq = 0;
	if (retention_ms < 0 || now_ms < 0)
		return rs_err_set(err,
				  "invalid snapshot retention %" PRId64
				  " ms at time %" PRId64,
				  retention_ms, now_ms);
	if (open_db(&db, db_path, RS_DB_NOCREATE, err))
		return -1;
	/* Verification is the expensive part: only the newest complete
	 * snapshots are read, and only until one passes. */
	if (newest_valid(db, &keeper, err))
		goto out;
	for (;;) {
		if (next_victim(db, now_ms, retention_ms, keeper, &victim,
				err))
			goto out;
		if (!victim)
			break;
		if (remove_snapshot(db, victim, &changes, err))
			goto out;
		n += (uint64_t)changes;
	}
	if (min_kept_seq(db, &seq, err))
		goto out;
	if (keep_seq)
		*keep_seq = seq;
	ret = 0;
out:
	if (removed)
		*removed = n;
	rs_db_close(db);
	return ret;
}

int rs_snapshot_delete(const char *db_path, int64_t id, struct rs_err *err)
{
	struct rs_db *db = NULL;
	int changes, ret = -1;

	if (open_db(&db, db_path, RS_DB_NOCREATE, err))
		return -1;
	if (remove_snapshot(db, id, &changes, err) == 0) {
		if (changes)
			ret = 0;
		else
			no_snapshot(err, id, db_path);
	}
	rs_db_close(db);
	return ret;
}
