/*
 * test_db: opening, creating, migrating and refusing database files, each
 * test in a temp directory of its own.
 */
#include "db.h"
#include "tap.h"
#include "testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_TEST_MS 200

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The whole file in *out (malloc'd), its size in *len. */
static int slurp_bytes(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long size;
	char *buf;

	*out = NULL;
	*len = 0;
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -1;
	}
	buf = malloc((size_t)size + 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		fclose(f);
		return -1;
	}
	buf[size] = '\0';
	fclose(f);
	*out = buf;
	*len = (size_t)size;
	return 0;
}

static int write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ret;

	if (!f)
		return -1;
	ret = fwrite(data, 1, len, f) == len ? 0 : -1;
	if (fclose(f))
		ret = -1;
	return ret;
}

static long long query_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First column of the first row, malloc'd; NULL if none. */
static char *query_text(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int is_hex32(const char *s)
{
	size_t i;

	if (!s || strlen(s) != 32)
		return 0;
	for (i = 0; i < 32; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

/* "2026-11-23T14:05:01Z" */
static int is_rfc3339_utc(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	if (!s || strlen(s) != strlen(shape))
		return 0;
	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return 0;
	}
	return 1;
}

static void test_fresh_and_reopen(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], version[32];
	char *id, *id2, *v;

	if (!ok(make_tmpdir(&t, "fresh") == 0, "fresh: make temp dir"))
		return;
	join(path, &t, "resync.db");

	ok(rs_db_schema_version() >= 2,
	   "schema version of this build has the cache log (>= 2)");
	snprintf(version, sizeof(version), "%d", rs_db_schema_version());
	is_int(rs_db_open(&db, path, NULL, &err), 0, "fresh: open creates");
	if (!db) {
		printf("#   %s\n", err.msg);
		remove_tmpdir(&t);
		return;
	}
	ok(exists(path), "fresh: file created");
	is_int(db->schema_version, rs_db_schema_version(),
	       "fresh: struct says the build's version");
	v = query_text(db->handle, "PRAGMA journal_mode");
	is_str(v, "wal", "fresh: journal mode is WAL");
	free(v);
	is_int(query_int(db->handle, "PRAGMA user_version"),
	       rs_db_schema_version(), "fresh: user_version is the build's");
	is_int(query_int(db->handle, "PRAGMA busy_timeout"), 5000,
	       "fresh: default busy timeout 5000 ms");
	is_int(query_int(db->handle, "PRAGMA synchronous"), 2,
	       "fresh: default synchronous is FULL");
	is_int(query_int(db->handle, "PRAGMA foreign_keys"), 1,
	       "fresh: foreign keys on");
	v = rs_db_meta_get(db, "schema_version", &err);
	is_str(v, version, "fresh: meta schema_version is the build's");
	free(v);
	id = rs_db_meta_get(db, "instance_id", &err);
	ok(is_hex32(id), "fresh: instance_id is 32 hex characters");
	v = rs_db_meta_get(db, "created_at", &err);
	ok(is_rfc3339_utc(v), "fresh: created_at is RFC 3339 UTC");
	if (!is_rfc3339_utc(v))
		printf("#   got \"%s\"\n", v ? v : "(null)");
	free(v);
	rs_db_close(db);

	db = NULL;
	is_int(rs_db_open(&db, path, NULL, &err), 0, "reopen: open again");
	id2 = db ? rs_db_meta_get(db, "instance_id", &err) : NULL;
	is_str(id2, id, "reopen: same instance_id");
	is_int(db ? db->schema_version : -1, rs_db_schema_version(),
	       "reopen: still the build's version");
	is_int(db ? query_int(db->handle, "SELECT count(*) FROM meta") : -1, 3,
	       "reopen: meta rows not duplicated");
	rs_db_close(db);
	free(id2);

	db = NULL;
	{
		struct rs_db_options o = { .flags = RS_DB_READONLY };

		is_int(rs_db_open(&db, path, &o, &err), 0,
		       "read-only: open works");
		id2 = db ? rs_db_meta_get(db, "instance_id", &err) : NULL;
		is_str(id2, id, "read-only: reads meta");
		free(id2);
		is_int(db ? rs_db_meta_set(db, "x", "y", &err) : 0, -1,
		       "read-only: writes fail");
		has_str(err.msg, "readonly", "read-only: sqlite says why");
		rs_db_close(db);
	}

	/* A reader next to a writer, as resyncctl beside resync-fcgi. */
	{
		struct rs_db_options ro = { .flags = RS_DB_READONLY };
		struct rs_db *w = NULL, *r = NULL;

		rs_db_open(&w, path, NULL, &err);
		is_int(w ? rs_db_meta_set(w, "note", "hello", &err) : -1, 0,
		       "read-only beside writer: writer writes");
		is_int(rs_db_open(&r, path, &ro, &err), 0,
		       "read-only beside writer: open works");
		v = r ? rs_db_meta_get(r, "note", &err) : NULL;
		is_str(v, "hello", "read-only beside writer: sees the write");
		free(v);
		rs_db_close(r);
		rs_db_close(w);
	}
	free(id);
	remove_tmpdir(&t);
}

static void test_options(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options o = {
		.busy_timeout_ms = 1234,
		.sync = RS_DB_SYNC_NORMAL,
	};
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX];

	if (!ok(make_tmpdir(&t, "options") == 0, "options: make temp dir"))
		return;
	join(path, &t, "o.db");
	is_int(rs_db_open(&db, path, &o, &err), 0, "options: open");
	is_int(db ? query_int(db->handle, "PRAGMA busy_timeout") : -1, 1234,
	       "options: busy timeout honoured");
	is_int(db ? query_int(db->handle, "PRAGMA synchronous") : -1, 1,
	       "options: synchronous NORMAL");
	rs_db_close(db);

	db = NULL;
	o.sync = RS_DB_SYNC_OFF;
	rs_db_open(&db, path, &o, &err);
	is_int(db ? query_int(db->handle, "PRAGMA synchronous") : -1, 0,
	       "options: synchronous OFF");
	rs_db_close(db);

	db = NULL;
	o.sync = (enum rs_db_sync)17;
	is_int(rs_db_open(&db, path, &o, &err), -1,
	       "options: bad synchronous refused");
	ok(db == NULL, "options: *out NULL on failure");

	rs_db_close(NULL);
	ok(1, "close: NULL is a no-op");
	remove_tmpdir(&t);
}

static void test_newer_schema_refused(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options ro = { .flags = RS_DB_READONLY };
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], want[TEST_PATH_MAX + 128];
	char *before, *after;
	size_t before_len, after_len;

	if (!ok(make_tmpdir(&t, "newer") == 0, "newer: make temp dir"))
		return;
	join(path, &t, "n.db");
	rs_db_open(&db, path, NULL, &err);
	is_int(db ? rs_db_exec(db,
			       "UPDATE meta SET value = '999'"
			       " WHERE key = 'schema_version';"
			       "PRAGMA user_version = 999;",
			       &err) :
		    -1,
	       0, "newer: pretend a newer build wrote the file");
	rs_db_close(db);

	slurp_bytes(path, &before, &before_len);
	snprintf(want, sizeof(want),
		 "database '%s' has schema version 999, newer than this build supports (%d); upgrade resync",
		 path, rs_db_schema_version());
	db = NULL;
	is_int(rs_db_open(&db, path, NULL, &err), -1, "newer: open refused");
	is_str(err.msg, want, "newer: message names file and both versions");
	ok(db == NULL, "newer: no handle returned");
	rs_err_clear(&err);
	is_int(rs_db_open(&db, path, &ro, &err), -1,
	       "newer: read-only open refused too");
	is_str(err.msg, want, "newer: same message read-only");
	slurp_bytes(path, &after, &after_len);
	ok(before && after && before_len == after_len &&
		   memcmp(before, after, before_len) == 0,
	   "newer: file not modified");
	free(before);
	free(after);

	/* user_version alone is enough: a newer build may bump either. */
	{
		sqlite3 *h = NULL;

		sqlite3_open(path, &h);
		sqlite3_exec(h,
			     "UPDATE meta SET value = '1'"
			     " WHERE key = 'schema_version';"
			     "PRAGMA user_version = 99;",
			     NULL, NULL, NULL);
		sqlite3_close(h);
		is_int(rs_db_open(&db, path, NULL, &err), -1,
		       "newer: user_version alone refused");
		has_str(err.msg, "has schema version 99,",
			"newer: user_version counts");
	}
	remove_tmpdir(&t);
}

static void test_not_a_database(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options ro = { .flags = RS_DB_READONLY };
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], wal[TEST_PATH_MAX + 8];
	char want[TEST_PATH_MAX + 64], garbage[4096];
	char *after;
	size_t i, after_len;

	if (!ok(make_tmpdir(&t, "garbage") == 0, "garbage: make temp dir"))
		return;
	join(path, &t, "g.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = "this is not a database\n"[i % 23];
	write_file(path, garbage, sizeof(garbage));

	snprintf(want, sizeof(want), "'%s' is not a SQLite database", path);
	is_int(rs_db_open(&db, path, NULL, &err), -1, "garbage: open fails");
	is_str(err.msg, want, "garbage: says it is not a database");
	ok(db == NULL, "garbage: no handle returned");
	is_int(rs_db_open(&db, path, &ro, &err), -1,
	       "garbage: read-only open fails");
	is_str(err.msg, want, "garbage: same message read-only");
	slurp_bytes(path, &after, &after_len);
	ok(after && after_len == sizeof(garbage) &&
		   memcmp(after, garbage, sizeof(garbage)) == 0,
	   "garbage: file not modified");
	ok(!exists(wal), "garbage: no WAL file left behind");
	free(after);

	write_file(path, "hello\n", 6);
	is_int(rs_db_open(&db, path, NULL, &err), -1,
	       "garbage: short text file fails");
	is_str(err.msg, want, "garbage: short file not a database either");
	remove_tmpdir(&t);
}

static void test_missing_things(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options ro = { .flags = RS_DB_READONLY };
	struct rs_db_options nocreate = { .flags = RS_DB_NOCREATE };
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], dir[TEST_PATH_MAX];
	char want[2 * TEST_PATH_MAX + 128];
	struct stat st;

	if (!ok(make_tmpdir(&t, "missing") == 0, "missing: make temp dir"))
		return;
	join(dir, &t, "nope");
	join(path, &t, "nope/x.db");
	snprintf(want, sizeof(want),
		 "cannot open database '%s': directory '%s' does not exist",
		 path, dir);
	is_int(rs_db_open(&db, path, NULL, &err), -1,
	       "missing dir: open fails");
	is_str(err.msg, want, "missing dir: names path and directory");
	ok(!exists(dir), "missing dir: directory not created");

	join(path, &t, "absent.db");
	is_int(rs_db_open(&db, path, &ro, &err), -1,
	       "missing file: read-only open fails");
	snprintf(want, sizeof(want), "cannot open database '%s': ", path);
	has_str(err.msg, want, "missing file: read-only names the path");
	has_str(err.msg, "No such file or directory",
		"missing file: read-only says why");
	ok(!exists(path), "missing file: read-only creates nothing");
	is_int(rs_db_open(&db, path, &nocreate, &err), -1,
	       "missing file: NOCREATE open fails");
	has_str(err.msg, want, "missing file: NOCREATE names the path");
	ok(!exists(path), "missing file: NOCREATE creates nothing");

	join(path, &t, "empty.db");
	write_file(path, "", 0);
	snprintf(want, sizeof(want),
		 "database '%s' is not initialised (run a resync command that writes to it first)",
		 path);
	is_int(rs_db_open(&db, path, &ro, &err), -1,
	       "empty file: read-only open fails");
	is_str(err.msg, want, "empty file: says it is not initialised");
	ok(stat(path, &st) == 0 && st.st_size == 0,
	   "empty file: still empty");
	is_int(rs_db_open(&db, path, NULL, &err), 0,
	       "empty file: read-write open initialises it");
	is_int(db ? db->schema_version : -1, rs_db_schema_version(),
	       "empty file: now the build's version");
	rs_db_close(db);
	remove_tmpdir(&t);
}

static void test_meta_and_exec(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX], want[TEST_PATH_MAX + 64];
	char *v;

	if (!ok(make_tmpdir(&t, "meta") == 0, "meta: make temp dir"))
		return;
	join(path, &t, "m.db");
	if (!ok(rs_db_open(&db, path, NULL, &err) == 0, "meta: open")) {
		remove_tmpdir(&t);
		return;
	}
	is_int(rs_db_meta_set(db, "greeting", "it's \"quoted\" ü", &err), 0,
	       "meta: set");
	v = rs_db_meta_get(db, "greeting", &err);
	is_str(v, "it's \"quoted\" ü", "meta: get returns what was set");
	free(v);
	is_int(rs_db_meta_set(db, "greeting", "second", &err), 0,
	       "meta: set again");
	v = rs_db_meta_get(db, "greeting", &err);
	is_str(v, "second", "meta: set replaces");
	free(v);
	rs_err_set(&err, "stale message");
	v = rs_db_meta_get(db, "no such key", &err);
	ok(v == NULL, "meta: absent key is NULL");
	is_str(err.msg, "", "meta: absent key leaves err empty");

	is_int(rs_db_exec(db, "CREATE TABLE t (a); INSERT INTO t VALUES (1);",
			  &err),
	       0, "exec: several statements");
	is_int(query_int(db->handle, "SELECT a FROM t"), 1, "exec: ran them");
	is_int(rs_db_exec(db, "INSERT INTO nowhere VALUES (1)", &err), -1,
	       "exec: error returned");
	snprintf(want, sizeof(want), "database '%s': no such table: nowhere",
		 path);
	is_str(err.msg, want, "exec: message names the database");
	rs_db_close(db);
	remove_tmpdir(&t);
}

static void test_migration_failure(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	sqlite3 *h = NULL;

	if (!ok(make_tmpdir(&t, "migrate") == 0, "migration: make temp dir"))
		return;
	join(path, &t, "x.db");
	/* A file of someone else's with a table in migration 1's way. */
	sqlite3_open(path, &h);
	sqlite3_exec(h, "CREATE TABLE meta (key TEXT, value TEXT)", NULL,
		     NULL, NULL);
	sqlite3_close(h);

	is_int(rs_db_open(&db, path, NULL, &err), -1, "migration: open fails");
	is_str(err.msg, "migration 1 failed: table meta already exists",
	       "migration: message names the migration");
	h = NULL;
	sqlite3_open(path, &h);
	is_int(query_int(h, "PRAGMA user_version"), 0,
	       "migration: version not bumped");
	is_int(query_int(h, "SELECT count(*) FROM sqlite_master"), 1,
	       "migration: nothing else created");
	sqlite3_exec(h, "DROP TABLE meta; CREATE TABLE meta (x)", NULL, NULL,
		     NULL);
	sqlite3_close(h);
	is_int(rs_db_open(&db, path, NULL, &err), -1,
	       "migration: unreadable meta table refused");
	has_str(err.msg, "cannot read meta key 'schema_version' in '",
		"migration: message names the key");
	remove_tmpdir(&t);
}

static void test_busy_timeout(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options quick = {
		.busy_timeout_ms = BUSY_TIMEOUT_TEST_MS,
	};
	struct rs_db *a = NULL, *b = NULL;
	struct tmpdir t;
	char path[TEST_PATH_MAX];

	if (!ok(make_tmpdir(&t, "busy") == 0, "busy: make temp dir"))
		return;
	join(path, &t, "b.db");
	rs_db_open(&a, path, NULL, &err);
	is_int(a ? rs_db_exec(a, "BEGIN IMMEDIATE", &err) : -1, 0,
	       "busy: first connection takes the write lock");
	is_int(rs_db_open(&b, path, &quick, &err), 0,
	       "busy: second connection opens while locked");
	if (a && b) {
		is_int(rs_db_meta_set(b, "k", "v", &err), -1,
		       "busy: second connection's write fails");
		is_int(sqlite3_errcode(b->handle), SQLITE_BUSY,
		       "busy: with SQLITE_BUSY");
		has_str(err.msg, "database is locked", "busy: message says so");
		is_int(rs_db_exec(a, "COMMIT", &err), 0,
		       "busy: first connection commits");
		is_int(rs_db_meta_set(b, "k", "v", &err), 0,
		       "busy: then the write succeeds");
	}
	rs_db_close(b);
	rs_db_close(a);
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	test_fresh_and_reopen();
	test_options();
	test_newer_schema_refused();
	test_not_a_database();
	test_missing_things();
	test_meta_and_exec();
	test_migration_failure();
	test_busy_timeout();
	return tap_done();
}
