/*
 * test_repair: `resyncctl cache verify [--repair]` underneath.  Databases
 * are built with the store (sync = always unless said otherwise, an
 * injected clock) and damaged with SQL behind its back: a corrupt record,
 * several in a row and spread out, records deleted (a gap), records with
 * an unknown op or a set without a value, a corrupt or incomplete
 * snapshot, a log truncated past a snapshot that is then corrupted.
 * Verify alone finds every fault in one run and changes nothing; repair
 * moves each fault into the quarantine (a record with every column), after
 * which verify is clean and recovery and follow go past it.  Each test
 * has a temp directory of its own.
 */
#include "repair.h"
#include "store.h"
#include "tap.h"
#include "testlib.h"
#include "testsql.h"
#include "teststore.h"
#include "util.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANY_BAD (RS_VERIFY_MAX_LISTED + 5)
#define LIST_TEXT_MAX 256

/* ---- helpers ------------------------------------------------------------- */

/* The store at path with store_opts' options. */
static struct rs_store *open_path(const char *path, enum rs_wal_sync sync,
				  const char *origin,
				  struct rs_store_recovery *rec)
{
	struct rs_store_options o = store_opts(path, sync, origin);

	return open_store(&o, rec);
}

static void key_of(char *k, size_t n, int i)
{
	snprintf(k, n, "k%d", i);
}

static void set_key(struct rs_store *s, int i)
{
	struct rs_err err = RS_ERR_INIT;
	char k[32], v[32];

	key_of(k, sizeof(k), i);
	snprintf(v, sizeof(v), "value-%d", i);
	if (rs_store_set(s, k, strlen(k), v, strlen(v), -1, &err))
		printf("#   set %s: %s\n", k, err.msg);
}

/* Keys k<from>..k<to>, one record each (seqs from..to on a fresh log). */
static void set_keys(struct rs_store *s, int from, int to)
{
	for (int i = from; i <= to; i++)
		set_key(s, i);
}

/* A fresh database with k1..kn at seqs 1..n. */
static int build(const char *path, int n)
{
	struct rs_store *s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);

	if (!s)
		return -1;
	set_keys(s, 1, n);
	close_store(s);
	return 0;
}

/* Which of k<from>..k<to> the store holds with their values; says which
 * one is wrong. */
static bool has_keys(struct rs_store *s, int from, int to)
{
	struct rs_cache_value v;
	char k[32], want[32];
	bool good;

	for (int i = from; s && i <= to; i++) {
		key_of(k, sizeof(k), i);
		snprintf(want, sizeof(want), "value-%d", i);
		if (rs_cache_get(rs_store_cache(s), k, strlen(k), 0, &v) !=
		    RS_CACHE_HIT) {
			printf("#   %s: expected \"%s\", got nothing\n", k, want);
			return false;
		}
		good = strcmp(v.data, want) == 0;
		if (!good)
			printf("#   %s: expected \"%s\", got \"%s\"\n", k, want,
			       (char *)v.data);
		rs_cache_value_free(&v);
		if (!good)
			return false;
	}
	return s != NULL;
}

static bool lacks_keys(struct rs_store *s, int from, int to)
{
	char k[32];

	for (int i = from; s && i <= to; i++) {
		key_of(k, sizeof(k), i);
		if (rs_cache_get(rs_store_cache(s), k, strlen(k), 0, NULL) !=
		    RS_CACHE_MISS) {
			printf("#   %s: expected absent, found it\n", k);
			return false;
		}
	}
	return s != NULL;
}

static int verify(const char *path, bool repair, struct rs_verify_report *rep)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = rs_cache_verify(path, NULL, repair, rep, &err);

	if (rc)
		printf("#   rs_cache_verify: %s\n", err.msg);
	return rc;
}

/* The listed faults as "kind ref-ref_end[*]" joined by ", " (* when
 * repaired), e.g. "record 6-6*, gap 8-9*". */
static const char *listed(const struct rs_verify_report *rep)
{
	static char buf[LIST_TEXT_MAX];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < rep->nlist && len < sizeof(buf); i++) {
		const struct rs_fault *f = &rep->list[i];

		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"%s%s %" PRId64 "-%" PRId64 "%s",
					i ? ", " : "",
					rs_fault_kind_name(f->kind), f->ref,
					f->ref_end, f->repaired ? "*" : "");
	}
	return buf;
}

/* The first column of the first row as text (malloc'd), NULL when none. */
static char *sql_text(const char *path, const char *q)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	const unsigned char *t;
	char *r = NULL;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h, q, -1, &st, NULL) != SQLITE_OK)
		printf("#   sql \"%s\": %s\n", q, sqlite3_errmsg(h));
	else if (sqlite3_step(st) == SQLITE_ROW &&
		 (t = sqlite3_column_text(st, 0)) != NULL)
		r = strdup((const char *)t);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return r;
}

/* Insert a log row by hand with a correct checksum (a buggy or newer
 * writer); columns named, as migration 4 added key_id. */
static void insert_raw(const char *path, int64_t seq, int op, const char *val)
{
	struct rs_wal_record r = {
		.seq = seq, .time_ms = 1, .origin = "x",
		.op = (enum rs_wal_op)op, .key = "k", .klen = 1,
		.val = val, .vlen = val ? strlen(val) : 0,
	};
	char q[512];

	snprintf(q, sizeof(q),
		 "INSERT INTO cache_log (seq, time_ms, origin, op, key, value,"
		 " stored_ms, expires_ms, checksum) VALUES (%" PRId64
		 ", 1, 'x', %d, X'6b', %s%s%s, 0, 0, %u)",
		 seq, op, val ? "CAST('" : "", val ? val : "NULL",
		 val ? "' AS BLOB)" : "", rs_wal_checksum(&r));
	sql(path, q);
}

/* ---- a clean database ---------------------------------------------------- */

static void test_clean(void)
{
	struct rs_verify_report rep = { 0 };
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	int64_t id1, id2;

	if (!dir_for(&t, "repair-clean", path))
		return;
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	set_keys(s, 1, 3);
	id1 = take_snapshot(s);
	set_keys(s, 4, 6);
	id2 = take_snapshot(s);
	set_keys(s, 7, 10);
	close_store(s);
	ok(s && id1 > 0 && id2 > id1, "clean: two snapshots taken");

	is_int(verify(path, false, &rep), 0, "clean: verify succeeds");
	is_int(rep.faults, 0, "clean: no fault");
	is_int(rep.nlist, 0, "clean: none listed");
	is_int(rep.records, 10, "clean: every record counted");
	is_int(rep.first_seq, 1, "clean: first seq");
	is_int(rep.last_seq, 10, "clean: last seq");
	is_int(rep.snapshots, 2, "clean: both snapshots checked");
	is_int(rep.snapshots_ok, 2, "clean: both valid");
	is_int(rep.snapshots_incomplete + rep.snapshots_quarantined, 0,
	       "clean: none incomplete or quarantined");
	is_int(rep.base_seq, 6, "clean: base_seq is the newest one's last_seq");
	is_int(rep.quarantine_rows + rep.repaired, 0,
	       "clean: empty quarantine, nothing repaired");
	rs_verify_report_free(&rep);

	is_int(verify(path, true, &rep), 0, "clean: repair succeeds");
	ok(rep.faults == 0 && rep.repaired == 0 && rep.quarantine_rows == 0,
	   "clean: repair has nothing to do");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 10,
	       "clean: repair leaves the log alone");
	rs_verify_report_free(&rep);
	remove_tmpdir(&t);
}

static void test_empty(void)
{
	struct rs_verify_report rep = { 0 };
	char path[TEST_PATH_MAX];
	struct tmpdir t;

	if (!dir_for(&t, "repair-empty", path))
		return;
	build(path, 0);
	is_int(verify(path, false, &rep), 0, "empty: verify succeeds");
	ok(rep.faults == 0 && rep.records == 0 && rep.first_seq == 0 &&
	   rep.last_seq == 0 && rep.snapshots == 0 && rep.base_seq == 0,
	   "empty: nothing found, seqs 0");
	rs_verify_report_free(&rep);
	remove_tmpdir(&t);
}

/* ---- records ------------------------------------------------------------- */

#define ROW_COLUMNS(time) \
	"quote(key) || '|' || quote(value) || '|' || checksum || '|' || op" \
	" || '|' || origin || '|' || stored_ms || '|' || expires_ms" \
	" || '|' || " time " || '|' || quote(key_id)"

static void test_corrupt_record(void)
{
	struct rs_verify_report rep = { 0 }, again = { 0 };
	struct rs_store_recovery rec;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], *before = NULL, *moved = NULL;
	struct rs_store *s = NULL, *b = NULL;
	struct tmpdir t;
	uint64_t applied = 0;
	int rc;

	if (!dir_for(&t, "repair-record", path))
		return;
	build(path, 10);
	sql(path, "UPDATE cache_log SET value = X'00' WHERE seq = 6");
	before = sql_text(path, "SELECT " ROW_COLUMNS("time_ms")
				" FROM cache_log WHERE seq = 6");
	ok(before != NULL, "record: the damaged row is there");
	/* A follower that is running while the damage is found. */
	b = open_path(path, RS_WAL_SYNC_ALWAYS, "b", &rec);
	ok(b && rec.log.stopped && rec.log.bad_seq == 6,
	   "record: before the repair, recovery stops at seq 6");

	is_int(verify(path, false, &rep), 0, "record: verify succeeds");
	is_int(rep.faults, 1, "record: one fault");
	is_str(listed(&rep), "record 6-6", "record: listed with its seq");
	is_str(rep.nlist ? rep.list[0].reason : NULL, "checksum mismatch",
	       "record: the reason");
	is_int(rep.records, 9, "record: the other nine are good");
	is_int(rep.first_seq, 1, "record: first seq");
	is_int(rep.last_seq, 10, "record: last seq goes past the bad one");
	is_int(rep.repaired, 0, "record: verify alone repairs nothing");
	is_int(verify(path, false, &again), 0, "record: verify again");
	ok(again.faults == 1 && again.records == 9 &&
	   strcmp(listed(&again), "record 6-6") == 0,
	   "record: the same answer the second time");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 10,
	       "record: verify left the log as it was");
	is_int(sql_int(path, "SELECT count(*) FROM cache_quarantine"), 0,
	       "record: and the quarantine empty");
	rs_verify_report_free(&rep);
	rs_verify_report_free(&again);

	is_int(verify(path, true, &rep), 0, "record: repair succeeds");
	ok(rep.faults == 1 && rep.repaired == 1,
	   "record: one fault, repaired");
	is_str(listed(&rep), "record 6-6*", "record: listed as repaired");
	is_int(rep.quarantine_rows, 1, "record: one quarantine row");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log WHERE seq = 6"), 0,
	       "record: gone from the log");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 9,
	       "record: the rest of the log stays");
	is_int(sql_int(path, "SELECT count(*) FROM cache_quarantine WHERE"
			     " source = 'log' AND ref = 6 AND ref_end = 6 AND"
			     " reason = 'checksum mismatch' AND time_ms > 0"),
	       1, "record: quarantined as source 'log', its seq, the reason");
	moved = sql_text(path, "SELECT " ROW_COLUMNS("log_time_ms")
			       " FROM cache_quarantine WHERE ref = 6");
	is_str(moved, before,
	       "record: moved with every column as it was in the log");
	rs_verify_report_free(&rep);

	is_int(verify(path, false, &rep), 0, "record: verify after repair");
	is_int(rep.faults, 0, "record: clean after the repair");
	ok(rep.records == 9 && rep.quarantine_rows == 1,
	   "record: nine records, one quarantine row");
	rs_verify_report_free(&rep);

	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && !rec.log.stopped, "record: recovery reads past the quarantined seq");
	is_int(rec.replayed, 9, "record: every other record replayed");
	is_int(rec.last_seq, 10, "record: up to the end of the log");
	ok(has_keys(s, 1, 5) && has_keys(s, 7, 10),
	   "record: the keys written before and after it are there");
	ok(lacks_keys(s, 6, 6), "record: the quarantined write is lost");
	close_store(s);

	rc = b ? rs_store_follow(b, &applied, &err) : -1;
	if (rc)
		printf("#   follow: %s\n", err.msg);
	ok(rc == 0, "record: a follower stopped at it goes on after the repair");
	is_int(applied, 4, "record: and applies the four records after it");
	ok(has_keys(b, 7, 10), "record: which reach its memory");
	close_store(b);
	free(before);
	free(moved);
	remove_tmpdir(&t);
}

static void test_many_records(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;

	if (!dir_for(&t, "repair-many", path))
		return;
	build(path, 15);
	sql(path, "UPDATE cache_log SET value = X'00'"
		  " WHERE seq IN (3, 4, 5, 8, 12, 15)");
	is_int(verify(path, false, &rep), 0, "several: verify succeeds");
	is_int(rep.faults, 6, "several: every bad record found in one run");
	is_str(listed(&rep),
	       "record 3-3, record 4-4, record 5-5, record 8-8, record 12-12,"
	       " record 15-15",
	       "several: in a row and spread out, listed in order");
	is_int(rep.records, 9, "several: the nine good ones counted");
	is_int(rep.last_seq, 15, "several: up to the last (bad) record");
	rs_verify_report_free(&rep);

	is_int(verify(path, true, &rep), 0, "several: repair succeeds");
	ok(rep.faults == 6 && rep.repaired == 6 && rep.quarantine_rows == 6,
	   "several: all six repaired, six quarantine rows");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 9,
	       "several: nine records left in the log");
	rs_verify_report_free(&rep);
	is_int(verify(path, false, &rep), 0, "several: verify again");
	is_int(rep.faults, 0, "several: clean after the repair");
	rs_verify_report_free(&rep);
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && !rec.log.stopped && rec.replayed == 9,
	   "several: recovery replays the nine good records");
	ok(has_keys(s, 1, 2) && has_keys(s, 6, 7) && has_keys(s, 9, 11) &&
	   has_keys(s, 13, 14), "several: every good key back");
	close_store(s);
	remove_tmpdir(&t);
}

static void test_bad_op_and_no_value(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;

	if (!dir_for(&t, "repair-op", path))
		return;
	build(path, 10);
	insert_raw(path, 11, 7, "v");
	insert_raw(path, 12, RS_WAL_SET, NULL);
	/* The store takes writes after them: seqs 13 and 14. */
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && rec.log.stopped && rec.log.bad_seq == 11,
	   "bad op: recovery stops at the unknown op");
	set_keys(s, 13, 14);
	close_store(s);

	is_int(verify(path, false, &rep), 0, "bad op: verify succeeds");
	is_str(listed(&rep), "record 11-11, record 12-12",
	       "bad op: both are record faults");
	is_str(rep.nlist > 0 ? rep.list[0].reason : NULL, "unknown op 7",
	       "bad op: reason names the op");
	is_str(rep.nlist > 1 ? rep.list[1].reason : NULL, "set without value",
	       "set without value: reason");
	is_int(rep.records, 12, "bad op: twelve good records");
	rs_verify_report_free(&rep);

	is_int(verify(path, true, &rep), 0, "bad op: repair succeeds");
	is_int(rep.repaired, 2, "bad op: both repaired");
	is_int(sql_int(path, "SELECT count(*) FROM cache_quarantine WHERE"
			     " op = 7 AND ref = 11 AND value = CAST('v' AS BLOB)"),
	       1, "bad op: the row quarantined with its op and value");
	is_int(sql_int(path, "SELECT count(*) FROM cache_quarantine WHERE"
			     " op = 1 AND ref = 12 AND value IS NULL"),
	       1, "set without value: quarantined, value still NULL");
	rs_verify_report_free(&rep);
	is_int(verify(path, false, &rep), 0, "bad op: verify again");
	is_int(rep.faults, 0, "bad op: clean after the repair");
	rs_verify_report_free(&rep);
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && !rec.log.stopped && rec.replayed == 12,
	   "bad op: recovery goes past both");
	ok(has_keys(s, 1, 10) && has_keys(s, 13, 14),
	   "bad op: the writes after them are recovered");
	close_store(s);
	remove_tmpdir(&t);
}

/* ---- gaps ---------------------------------------------------------------- */

static void gap_case(const char *name, int from, int to)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], q[256], want[64], title[128];
	struct rs_store *s = NULL, *b = NULL;
	struct tmpdir t;
	uint64_t applied = 0;
	int rc, n = to - from + 1;

	if (!dir_for(&t, "repair-gap", path))
		return;
	build(path, 12);
	snprintf(q, sizeof(q), "DELETE FROM cache_log WHERE seq BETWEEN %d AND %d",
		 from, to);
	sql(path, q);
	b = open_path(path, RS_WAL_SYNC_ALWAYS, "b", &rec);
	snprintf(title, sizeof(title), "%s: recovery stops at the gap", name);
	ok(b && rec.log.stopped && rec.log.gap && rec.log.bad_seq == to + 1,
	   title);

	verify(path, false, &rep);
	snprintf(want, sizeof(want), "gap %d-%d", from, to);
	snprintf(title, sizeof(title), "%s: a gap fault naming the range", name);
	is_str(listed(&rep), want, title);
	snprintf(want, sizeof(want), "gap: seq %d follows %d", to + 1, from - 1);
	snprintf(title, sizeof(title), "%s: reason says missing and why", name);
	ok(rep.nlist == 1 && strstr(rep.list[0].reason, "missing") &&
	   strstr(rep.list[0].reason, want), title);
	if (rep.nlist)
		printf("#   reason: %s\n", rep.list[0].reason);
	snprintf(title, sizeof(title), "%s: the records on both sides counted",
		 name);
	ok(rep.faults == 1 && rep.records == (uint64_t)(12 - n) &&
	   rep.first_seq == 1 && rep.last_seq == 12, title);
	rs_verify_report_free(&rep);

	verify(path, true, &rep);
	snprintf(title, sizeof(title), "%s: repaired", name);
	ok(rep.faults == 1 && rep.repaired == 1 && rep.quarantine_rows == 1,
	   title);
	snprintf(q, sizeof(q),
		 "SELECT count(*) FROM cache_quarantine WHERE source = 'log'"
		 " AND ref = %d AND ref_end = %d AND key IS NULL", from, to);
	snprintf(title, sizeof(title), "%s: the missing range recorded", name);
	is_int(sql_int(path, q), 1, title);
	rs_verify_report_free(&rep);
	verify(path, false, &rep);
	snprintf(title, sizeof(title), "%s: clean after the repair", name);
	ok(rep.faults == 0 && rep.records == (uint64_t)(12 - n), title);
	rs_verify_report_free(&rep);

	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	snprintf(title, sizeof(title), "%s: recovery goes past it", name);
	ok(s && !rec.log.stopped && rec.replayed == (uint64_t)(12 - n) &&
	   has_keys(s, 1, from - 1) && has_keys(s, to + 1, 12), title);
	close_store(s);
	rc = b ? rs_store_follow(b, &applied, &err) : -1;
	if (rc)
		printf("#   follow: %s\n", err.msg);
	snprintf(title, sizeof(title), "%s: follow goes past it", name);
	ok(rc == 0 && applied == (uint64_t)(12 - to) && has_keys(b, to + 1, 12),
	   title);
	close_store(b);
	remove_tmpdir(&t);
}

static void test_gaps(void)
{
	gap_case("gap of 1", 5, 5);
	gap_case("gap of 4", 4, 7);
}

/* A hole right before a corrupt record: the record's own fault must not
 * hide the gap, or a second run finds what the first one missed. */
static void test_gap_then_bad_record(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;

	if (!dir_for(&t, "repair-gapbad", path))
		return;
	build(path, 10);
	sql(path, "DELETE FROM cache_log WHERE seq = 5;"
		  " UPDATE cache_log SET value = X'00' WHERE seq = 6");
	verify(path, false, &rep);
	is_str(listed(&rep), "gap 5-5, record 6-6",
	       "gap then bad record: both found in one run");
	rs_verify_report_free(&rep);
	verify(path, true, &rep);
	rs_verify_report_free(&rep);
	verify(path, false, &rep);
	is_int(rep.faults, 0, "gap then bad record: clean after one repair");
	if (rep.faults)
		printf("#   the second run found: %s\n", listed(&rep));
	rs_verify_report_free(&rep);
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && !rec.log.stopped && has_keys(s, 7, 10),
	   "gap then bad record: recovery goes past both after one repair");
	close_store(s);
	remove_tmpdir(&t);
}

/* ---- snapshots ----------------------------------------------------------- */

static void test_corrupt_snapshot(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	char path[TEST_PATH_MAX], q[256];
	struct rs_store *s;
	struct tmpdir t;
	int64_t id1, id2;

	if (!dir_for(&t, "repair-snap", path))
		return;
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	set_keys(s, 1, 5);
	id1 = take_snapshot(s);
	set_keys(s, 6, 8);
	id2 = take_snapshot(s);
	set_keys(s, 9, 10);
	close_store(s);
	/* Same length, so the counts hold and only the checksum tells. */
	snprintf(q, sizeof(q), "UPDATE cache_snapshot_row"
			       " SET value = CAST(upper(CAST(value AS TEXT)) AS BLOB)"
			       " WHERE snapshot_id = %" PRId64 " AND idx = 0",
		 id2);
	sql(path, q);

	is_int(verify(path, false, &rep), 0, "snapshot: verify succeeds");
	is_int(rep.faults, 1, "snapshot: one fault");
	snprintf(q, sizeof(q), "snapshot %" PRId64 "-%" PRId64, id2, id2);
	is_str(listed(&rep), q, "snapshot: listed with its id");
	is_str(rep.nlist ? rep.list[0].reason : NULL, "checksum mismatch",
	       "snapshot: the reason");
	ok(rep.snapshots == 2 && rep.snapshots_ok == 1,
	   "snapshot: two checked, one valid");
	is_int(rep.base_seq, 5, "snapshot: base_seq from the older valid one");
	is_int(rep.records, 10, "snapshot: the log is fine");
	rs_verify_report_free(&rep);
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && rec.snapshot.skipped == 1 && rec.snapshot.loaded_id == id1,
	   "snapshot: before the repair, recovery passes over it as corrupt");
	close_store(s);

	is_int(verify(path, true, &rep), 0, "snapshot: repair succeeds");
	ok(rep.faults == 1 && rep.repaired == 1 && rep.quarantine_rows == 1,
	   "snapshot: repaired, one quarantine row");
	rs_verify_report_free(&rep);
	snprintf(q, sizeof(q), "SELECT state FROM cache_snapshot WHERE id = %" PRId64,
		 id2);
	{
		char *state = sql_text(path, q);

		is_str(state, "quarantined", "snapshot: its state is 'quarantined'");
		free(state);
	}
	snprintf(q, sizeof(q),
		 "SELECT count(*) FROM cache_quarantine WHERE source = 'snapshot'"
		 " AND ref = %" PRId64 " AND ref_end = %" PRId64, id2, id2);
	is_int(sql_int(path, q), 1, "snapshot: a 'snapshot' quarantine row names it");
	snprintf(q, sizeof(q), "SELECT count(*) FROM cache_snapshot_row"
			       " WHERE snapshot_id = %" PRId64, id2);
	is_int(sql_int(path, q), 8, "snapshot: its rows are left in place");

	is_int(verify(path, false, &rep), 0, "snapshot: verify again");
	is_int(rep.faults, 0, "snapshot: no longer a fault");
	is_int(rep.snapshots_quarantined, 1, "snapshot: counted as quarantined");
	ok(rep.snapshots == 1 && rep.snapshots_ok == 1 && rep.base_seq == 5,
	   "snapshot: the older one is the base");
	rs_verify_report_free(&rep);

	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s != NULL, "snapshot: recovery after the repair");
	is_int(rec.snapshot.skipped, 0, "snapshot: passed over silently");
	is_int(rec.snapshot.quarantined, 1, "snapshot: counted as quarantined");
	is_int(rec.snapshot.loaded_id, id1, "snapshot: the older one is loaded");
	ok(!rec.log.stopped && rec.replayed == 5 && has_keys(s, 1, 10),
	   "snapshot: the log after it replayed, every key back");
	close_store(s);
	remove_tmpdir(&t);
}

static void test_incomplete_snapshot(void)
{
	struct rs_verify_report rep = { 0 };
	char path[TEST_PATH_MAX], q[256];
	struct rs_store *s;
	struct tmpdir t;
	int64_t id;

	if (!dir_for(&t, "repair-incomplete", path))
		return;
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	set_keys(s, 1, 4);
	id = take_snapshot(s);
	close_store(s);
	snprintf(q, sizeof(q), "UPDATE cache_snapshot SET state = 'writing'"
			       " WHERE id = %" PRId64, id);
	sql(path, q);
	is_int(verify(path, true, &rep), 0, "incomplete: verify --repair succeeds");
	is_int(rep.snapshots_incomplete, 1, "incomplete: counted");
	ok(rep.faults == 0 && rep.snapshots == 0,
	   "incomplete: not a fault, not a checked snapshot");
	is_int(rep.base_seq, 0, "incomplete: not a base");
	is_int(rep.quarantine_rows, 0, "incomplete: nothing quarantined");
	snprintf(q, sizeof(q), "SELECT count(*) FROM cache_snapshot"
			       " WHERE id = %" PRId64 " AND state = 'writing'",
		 id);
	is_int(sql_int(path, q), 1, "incomplete: left as it was");
	rs_verify_report_free(&rep);
	remove_tmpdir(&t);
}

/* The log truncated past the snapshots, the newest one then corrupted:
 * the records it covered are missing from where the older base (or seq
 * 1) leaves off. */
static void truncated_case(const char *name, bool older)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	char path[TEST_PATH_MAX], q[256], title[160];
	struct rs_store *s;
	struct tmpdir t;
	int64_t id = -1, base = older ? 2 : 0;

	if (!dir_for(&t, "repair-trunc", path))
		return;
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	set_keys(s, 1, 2);
	if (older)
		take_snapshot(s);
	set_keys(s, 3, 5);
	id = take_snapshot(s);
	set_keys(s, 6, 10);
	close_store(s);
	sql(path, "DELETE FROM cache_log WHERE seq <= 5");

	verify(path, false, &rep);
	snprintf(title, sizeof(title), "%s: truncation alone is no fault", name);
	ok(rep.faults == 0 && rep.base_seq == 5 && rep.first_seq == 6 &&
	   rep.records == 5, title);
	rs_verify_report_free(&rep);

	snprintf(q, sizeof(q), "UPDATE cache_snapshot_row SET stored_ms = 1"
			       " WHERE snapshot_id = %" PRId64 " AND idx = 1",
		 id);
	sql(path, q);
	verify(path, false, &rep);
	snprintf(q, sizeof(q), "snapshot %" PRId64 "-%" PRId64 ", gap %" PRId64
			       "-5", id, id, base + 1);
	snprintf(title, sizeof(title),
		 "%s: the snapshot, then a gap from base + 1 to the log's start",
		 name);
	is_str(listed(&rep), q, title);
	snprintf(title, sizeof(title), "%s: base_seq from what is left", name);
	is_int(rep.base_seq, base, title);
	snprintf(title, sizeof(title), "%s: the log's records still counted", name);
	ok(rep.records == 5 && rep.first_seq == 6 && rep.last_seq == 10, title);
	rs_verify_report_free(&rep);

	verify(path, true, &rep);
	snprintf(title, sizeof(title), "%s: both repaired", name);
	ok(rep.faults == 2 && rep.repaired == 2 && rep.quarantine_rows == 2,
	   title);
	rs_verify_report_free(&rep);
	verify(path, false, &rep);
	snprintf(title, sizeof(title), "%s: clean after the repair", name);
	ok(rep.faults == 0 && rep.snapshots_quarantined == 1 &&
	   rep.base_seq == base && rep.records == 5, title);
	rs_verify_report_free(&rep);

	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	snprintf(title, sizeof(title),
		 "%s: recovery falls back %s and reads past the gap", name,
		 older ? "to the older snapshot" : "to the log");
	ok(s && rec.snapshot.skipped == 0 && rec.snapshot.quarantined == 1 &&
	   (older ? rec.snapshot.loaded_id > 0 : rec.snapshot.loaded_id == 0) &&
	   !rec.log.stopped && rec.replayed == 5, title);
	snprintf(title, sizeof(title), "%s: what is left is recovered", name);
	ok(has_keys(s, 6, 10) && (older ? has_keys(s, 1, 2) : lacks_keys(s, 1, 2)),
	   title);
	close_store(s);
	remove_tmpdir(&t);
}

static void test_truncated(void)
{
	truncated_case("truncated, only snapshot", false);
	truncated_case("truncated, older snapshot", true);
}

/* ---- many faults, errors ------------------------------------------------- */

static void test_max_listed(void)
{
	struct rs_verify_report rep = { 0 };
	char path[TEST_PATH_MAX], q[256];
	struct rs_store *s;
	struct tmpdir t;
	int64_t t0;

	if (!dir_for(&t, "repair-maxlisted", path))
		return;
	s = open_path(path, RS_WAL_SYNC_BATCH, "one", NULL);
	set_keys(s, 1, MANY_BAD + 5);
	close_store(s);
	snprintf(q, sizeof(q), "UPDATE cache_log SET value = X'00'"
			       " WHERE seq BETWEEN 3 AND %d", MANY_BAD + 2);
	sql(path, q);
	t0 = rs_monotonic_ms();
	is_int(verify(path, false, &rep), 0, "max listed: verify succeeds");
	printf("# verify of %d faults: %" PRId64 " ms\n", MANY_BAD,
	       rs_monotonic_ms() - t0);
	is_int(rep.faults, MANY_BAD, "max listed: every fault counted");
	is_int(rep.nlist, RS_VERIFY_MAX_LISTED, "max listed: only so many listed");
	ok(rep.nlist == RS_VERIFY_MAX_LISTED && rep.list[0].ref == 3 &&
	   rep.list[RS_VERIFY_MAX_LISTED - 1].ref == RS_VERIFY_MAX_LISTED + 2,
	   "max listed: the first ones, in order");
	is_int(rep.records, 5, "max listed: the good records counted");
	rs_verify_report_free(&rep);
	ok(rep.list == NULL && rep.nlist == 0, "report free: clears the list");

	t0 = rs_monotonic_ms();
	is_int(verify(path, true, &rep), 0, "max listed: repair succeeds");
	printf("# repair of %d faults: %" PRId64 " ms\n", MANY_BAD,
	       rs_monotonic_ms() - t0);
	ok(rep.faults == MANY_BAD && rep.repaired == MANY_BAD &&
	   rep.quarantine_rows == MANY_BAD,
	   "max listed: every fault repaired, listed or not");
	rs_verify_report_free(&rep);
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), 5,
	       "max listed: the five good records stay");
	remove_tmpdir(&t);
}

static void test_errors(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct tmpdir t;

	if (!dir_for(&t, "repair-errors", path))
		return;
	is_int(rs_cache_verify(path, NULL, false, &rep, &err), -1,
	       "errors: a missing database fails");
	has_str(err.msg, path, "errors: naming it");
	ok(access(path, F_OK) != 0, "errors: and creates nothing");
	err = (struct rs_err)RS_ERR_INIT;
	is_int(rs_cache_verify(path, NULL, true, &rep, &err), -1,
	       "errors: repair of a missing database fails");
	has_str(err.msg, path, "errors: naming it too");
	ok(access(path, F_OK) != 0, "errors: and repair creates nothing");
	rs_verify_report_free(&rep);
	memset(&rep, 0, sizeof(rep));
	rs_verify_report_free(&rep);
	rs_verify_report_free(NULL);
	ok(rep.list == NULL && rep.nlist == 0,
	   "errors: freeing a zeroed report (or NULL) is fine");
	is_str(rs_fault_kind_name(RS_FAULT_GAP), "gap", "kind name: gap");
	is_str(rs_fault_kind_name(RS_FAULT_SNAPSHOT), "snapshot",
	       "kind name: snapshot");
	remove_tmpdir(&t);
}

/* ---- what a repair leaves for the writers after it ----------------------- */

/* The last record of the log quarantined: its seq must not be handed out
 * again, or a snapshot (or a follower) that already covers that seq
 * passes over the new record. */
static void test_last_record_seq(void)
{
	struct rs_verify_report rep = { 0 };
	struct rs_store_recovery rec;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	long long seq;
	int64_t id;

	if (!dir_for(&t, "repair-lastseq", path))
		return;
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	set_keys(s, 1, 10);
	id = take_snapshot(s);
	close_store(s);
	sql(path, "UPDATE cache_log SET value = X'00' WHERE seq = 10");
	verify(path, true, &rep);
	ok(rep.faults == 1 && rep.repaired == 1 && rep.snapshots_ok == 1,
	   "last record: quarantined, the snapshot over it is fine");
	rs_verify_report_free(&rep);

	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && rec.snapshot.loaded_id == id, "last record: reopen from the snapshot");
	if (s && rs_store_set(s, "after", 5, "x", 1, -1, &err))
		printf("#   set: %s\n", err.msg);
	close_store(s);
	seq = sql_int(path, "SELECT seq FROM cache_log"
			    " WHERE key = CAST('after' AS BLOB)");
	if (!ok(seq > 10,
		"last record: a new record does not reuse the quarantined seq 10"))
		printf("#   expected a seq above 10, got %lld\n", seq);
	s = open_path(path, RS_WAL_SYNC_ALWAYS, "one", &rec);
	ok(s && rs_cache_get(rs_store_cache(s), "after", 5, 0, NULL) ==
			RS_CACHE_HIT,
	   "last record: a write after the repair survives a restart");
	close_store(s);
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	test_clean();
	test_empty();
	test_corrupt_record();
	test_many_records();
	test_bad_op_and_no_value();
	test_gaps();
	test_gap_then_bad_record();
	test_corrupt_snapshot();
	test_incomplete_snapshot();
	test_truncated();
	test_max_listed();
	test_errors();
	test_last_record_seq();
	return tap_done();
}
