/*
 * db: open the Resync SQLite database and keep its schema current.
 *
 * Deliberate quirks:
 *  - The schema version lives in meta.schema_version and is mirrored in
 *    PRAGMA user_version.  The larger of the two counts, so a database a
 *    newer build has touched is never written by an older one.
 *  - Nothing is written before the version has been checked: the version
 *    is read first, and only then is the journal switched to WAL.
 *  - Each migration reads the version again inside its BEGIN IMMEDIATE
 *    transaction: two processes opening a fresh database at once must not
 *    both run migration 1.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define DB_BUSY_TIMEOUT_DEFAULT_MS 5000
#define DB_INSTANCE_ID_BYTES 16    /* 32 hex characters */
#define DB_RANDOM_DEVICE "/dev/urandom"

struct migration {
	int version;
	const char *sql;
	/* A step SQL cannot do (random bytes, the clock), run after `sql`
	 * in the same transaction; NULL for most migrations. */
	int (*post)(struct rs_db *db, struct rs_err *err);
};

static int seed_meta(struct rs_db *db, struct rs_err *err);

/*
 * The schema, one row per version.  To change it, append one row:
 *
 *	{ .version = N + 1, .sql = "ALTER TABLE ...; CREATE INDEX ...;" },
 *
 * and nothing else: rs_db_schema_version() and rs_db_open follow the
 * table.  Versions run 1, 2, 3 ... in order without gaps.  Never edit a
 * row once it has been released: databases in the field have run it.
 * `sql` may hold several statements; it must not BEGIN or COMMIT.
 */
static const struct migration migrations[] = {
	{
		.version = 1,
		.sql = "CREATE TABLE meta (\n"
		       "	key TEXT PRIMARY KEY,\n"
		       "	value TEXT NOT NULL\n"
		       ") WITHOUT ROWID;",
		.post = seed_meta,
	},
	{
		/* The cache write-ahead log (wal.c).  No index besides the
		 * primary key: readers go in seq order, and a secondary
		 * index costs ~9x on batched inserts (BASELINES.md). */
		.version = 2,
		.sql = "CREATE TABLE cache_log (\n"
		       "	seq INTEGER PRIMARY KEY,\n"
		       "	time_ms INTEGER NOT NULL,\n"
		       "	origin TEXT NOT NULL,\n"
		       "	op INTEGER NOT NULL,\n"
		       "	key BLOB NOT NULL,\n"
		       "	value BLOB,\n"
		       "	stored_ms INTEGER,\n"
		       "	expires_ms INTEGER,\n"
		       "	checksum INTEGER NOT NULL\n"
		       ");",
	},
	{
		/* Cache snapshots (snapshot.c).  AUTOINCREMENT so an id
		 * is never handed out twice: "restore 12" must not find a
		 * newer image after 12 was deleted.  The rows are WITHOUT
		 * ROWID and keyed (snapshot_id, idx): a snapshot writes
		 * them in idx order, so every insert appends to the
		 * b-tree, and reading one snapshot is one range scan. */
		.version = 3,
		.sql = "CREATE TABLE cache_snapshot (\n"
		       "	id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
		       "	time_ms INTEGER NOT NULL,\n"
		       "	last_seq INTEGER NOT NULL,\n"
		       "	entries INTEGER NOT NULL,\n"
		       "	bytes INTEGER NOT NULL,\n"
		       "	checksum INTEGER NOT NULL,\n"
		       "	state TEXT NOT NULL\n"
		       ");\n"
		       "CREATE TABLE cache_snapshot_row (\n"
		       "	snapshot_id INTEGER NOT NULL,\n"
		       "	idx INTEGER NOT NULL,\n"
		       "	key BLOB NOT NULL,\n"
		       "	value BLOB NOT NULL,\n"
		       "	stored_ms INTEGER NOT NULL,\n"
		       "	expires_ms INTEGER NOT NULL,\n"
		       "	PRIMARY KEY (snapshot_id, idx)\n"
		       ") WITHOUT ROWID;",
	},
	{
		/* Encryption at rest (seal.c): the id of the key a value
		 * was sealed with, NULL for plaintext.  And the quarantine
		 * (repair.c), where `resyncctl cache verify --repair` moves
		 * what it takes out of use: a corrupt log record (its
		 * columns copied as they were), a range of missing log
		 * records, or a snapshot it marked 'quarantined' (rows left
		 * in place for gc).  Readers of the log accept a gap the
		 * quarantine accounts for.  [ref, ref_end] is the log seq
		 * range, or the snapshot id twice. */
		.version = 4,
		.sql = "ALTER TABLE cache_log ADD COLUMN key_id TEXT;\n"
		       "ALTER TABLE cache_snapshot ADD COLUMN key_id TEXT;\n"
		       "CREATE TABLE cache_quarantine (\n"
		       "	id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
		       "	time_ms INTEGER NOT NULL,\n"
		       "	source TEXT NOT NULL,\n"
		       "	ref INTEGER NOT NULL,\n"
		       "	ref_end INTEGER NOT NULL,\n"
		       "	reason TEXT NOT NULL,\n"
		       "	origin TEXT,\n"
		       "	op INTEGER,\n"
		       "	key BLOB,\n"
		       "	value BLOB,\n"
		       "	stored_ms INTEGER,\n"
		       "	expires_ms INTEGER,\n"
		       "	checksum INTEGER,\n"
		       "	key_id TEXT,\n"
		       "	log_time_ms INTEGER\n"
		       ");",
	},
	{
		/* What each running responder last published (stats.c), one
		 * row per process, for resyncctl to read: the figures only
		 * it has (hits, requests, threads), as a JSON object. */
		.version = 5,
		.sql = "CREATE TABLE stats (\n"
		       "	origin TEXT PRIMARY KEY,\n"
		       "	pid INTEGER NOT NULL,\n"
		       "	updated_ms INTEGER NOT NULL,\n"
		       "	json TEXT NOT NULL\n"
		       ");",
	},
	{
		/* Circuit breakers (breaker.h): each one's last saved state,
		 * the operator command resyncctl left for the responders
		 * (generation counts them, so each is applied once), and
		 * its transitions.  The index serves one breaker's history,
		 * newest first, and the trim to the newest events. */
		.version = 6,
		.sql = "CREATE TABLE breaker (\n"
		       "	name TEXT PRIMARY KEY,\n"
		       "	state TEXT NOT NULL,\n"
		       "	since_ms INTEGER NOT NULL,\n"
		       "	updated_ms INTEGER NOT NULL,\n"
		       "	origin TEXT NOT NULL,\n"
		       "	info TEXT,\n"
		       "	command TEXT,\n"
		       "	command_actor TEXT,\n"
		       "	generation INTEGER NOT NULL DEFAULT 0\n"
		       ");\n"
		       "CREATE TABLE breaker_event (\n"
		       "	seq INTEGER PRIMARY KEY,\n"
		       "	name TEXT NOT NULL,\n"
		       "	time_ms INTEGER NOT NULL,\n"
		       "	from_state TEXT NOT NULL,\n"
		       "	to_state TEXT NOT NULL,\n"
		       "	reason TEXT NOT NULL,\n"
		       "	actor TEXT\n"
		       ");\n"
		       "CREATE INDEX breaker_event_name_seq ON breaker_event (name, seq);",
	},
	{
		/* Idempotency-Key (idempotency.h): per scope (API key or
		 * client address) and key, the request's fingerprint, whether
		 * it is still running, and once done the response to replay.
		 * A rowid table, not WITHOUT ROWID: rows carry response
		 * bodies, too large for a b-tree keyed on the text primary
		 * key.  The index serves the prune of expired rows, which
		 * runs every few seconds. */
		.version = 7,
		.sql = "CREATE TABLE idempotency (\n"
		       "	scope TEXT NOT NULL,\n"
		       "	key TEXT NOT NULL,\n"
		       "	fingerprint BLOB NOT NULL"
		       " CHECK (length(fingerprint) = 32),\n"
		       "	state TEXT NOT NULL"
		       " CHECK (state IN ('running', 'done')),\n"
		       "	created_ms INTEGER NOT NULL,\n"
		       "	expires_ms INTEGER NOT NULL,\n"
		       "	status INTEGER,\n"
		       "	headers TEXT,\n"
		       "	body BLOB,\n"
		       "	PRIMARY KEY (scope, key)\n"
		       ");\n"
		       "CREATE INDEX idempotency_expires ON idempotency (expires_ms);",
	},
	{
		/* The audit log (audit.h): append-only, hash-chained.  seq is
		 * assigned by the writer inside its transaction (head + 1), so
		 * no AUTOINCREMENT; time_us serves list --since and prune
		 * --before. */
		.version = 8,
		.sql = "CREATE TABLE audit (\n"
		       "	seq INTEGER PRIMARY KEY,\n"
		       "	time_us INTEGER NOT NULL,\n"
		       "	actor TEXT NOT NULL,\n"
		       "	source TEXT NOT NULL,\n"
		       "	action TEXT NOT NULL,\n"
		       "	target TEXT NOT NULL,\n"
		       "	outcome TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),\n"
		       "	request_id TEXT NOT NULL,\n"
		       "	details TEXT NOT NULL,\n"
		       "	key_id TEXT NOT NULL,\n"
		       "	prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),\n"
		       "	hash BLOB NOT NULL CHECK (length(hash) = 32)\n"
		       ");\n"
		       "CREATE INDEX audit_time ON audit (time_us);",
	},
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

static const char *const sync_pragmas[] = {
	[RS_DB_SYNC_DEFAULT] = "PRAGMA synchronous = FULL",
	[RS_DB_SYNC_OFF] = "PRAGMA synchronous = OFF",
	[RS_DB_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[RS_DB_SYNC_FULL] = "PRAGMA synchronous = FULL",
};

#define N_SYNC_PRAGMAS (sizeof(sync_pragmas) / sizeof(sync_pragmas[0]))

int rs_db_schema_version(void)
{
	int max = 0;
	size_t i;

	for (i = 0; i < N_MIGRATIONS; i++)
		if (migrations[i].version > max)
			max = migrations[i].version;
	return max;
}

/* "<what>: <sqlite message>", except that a file that is not a database
 * gets a message of its own: SQLite's "file is not a database" does not
 * say which file. */
static int db_fail(struct rs_db *db, struct rs_err *err, const char *fmt, ...)
	RS_PRINTF(3, 4);

static int db_fail(struct rs_db *db, struct rs_err *err, const char *fmt, ...)
{
	char what[RS_ERR_MSG_MAX];
	va_list ap;

	if (sqlite3_errcode(db->handle) == SQLITE_NOTADB)
		return rs_err_set(err, "'%s' is not a SQLite database",
				  db->path);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rs_err_set(err, "%s: %s", what, sqlite3_errmsg(db->handle));
}

static int run_sql(struct rs_db *db, const char *sql, struct rs_err *err)
{
	if (sqlite3_exec(db->handle, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, "database '%s'", db->path);
	return 0;
}

/* One integer from the first row of `sql` (0 when there is no row). */
static int query_int(struct rs_db *db, const char *sql, int *out,
		     struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	if (sqlite3_prepare_v2(db->handle, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot read database '%s'", db->path);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE)
		db_fail(db, err, "cannot read database '%s'", db->path);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* 0 with *out malloc'd, or with *out NULL when the key is absent; -1 on
 * error. */
static int meta_get(struct rs_db *db, const char *key, char **out,
		    struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	*out = NULL;
	if (sqlite3_prepare_v2(db->handle,
			       "SELECT value FROM meta WHERE key = ?1", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		db_fail(db, err, "cannot read meta key '%s' in '%s'", key,
			db->path);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
	} else if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);

		*out = strdup(v ? (const char *)v : "");
		if (!*out)
			rs_err_errno(err, ENOMEM,
				     "cannot read meta key '%s' in '%s'", key,
				     db->path);
		else
			ret = 0;
	} else {
		db_fail(db, err, "cannot read meta key '%s' in '%s'", key,
			db->path);
	}
out:
	sqlite3_finalize(st);
	return ret;
}

static int meta_set(struct rs_db *db, const char *key, const char *value,
		    struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(db->handle,
			       "INSERT INTO meta (key, value) VALUES (?1, ?2)"
			       " ON CONFLICT (key) DO UPDATE"
			       " SET value = excluded.value",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		db_fail(db, err, "cannot set meta key '%s' in '%s'", key,
			db->path);
	else
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

static int read_version(struct rs_db *db, int *out, struct rs_err *err)
{
	int user_version, has_meta, version;
	char *text = NULL, *end;
	long v;

	*out = 0;
	/* The first read of the file: a garbage file fails here. */
	if (query_int(db, "PRAGMA user_version", &user_version, err) ||
	    query_int(db,
		      "SELECT count(*) FROM sqlite_master"
		      " WHERE type = 'table' AND name = 'meta'",
		      &has_meta, err))
		return -1;
	version = user_version;
	if (has_meta) {
		if (meta_get(db, "schema_version", &text, err))
			return -1;
		if (text) {
			errno = 0;
			v = strtol(text, &end, 10);
			if (errno || end == text || *end || v < 0 ||
			    v > INT_MAX) {
				rs_err_set(err,
					   "database '%s' has an invalid schema_version '%s' in table meta",
					   db->path, text);
				free(text);
				return -1;
			}
			free(text);
			if ((int)v > version)
				version = (int)v;
		}
	}
	*out = version;
	return 0;
}

static int refuse_newer(struct rs_db *db, int version, struct rs_err *err)
{
	return rs_err_set(err,
			  "database '%s' has schema version %d, newer than this build supports (%d); upgrade resync",
			  db->path, version, rs_db_schema_version());
}

static int read_random(unsigned char *buf, size_t len, struct rs_err *err)
{
	size_t got = 0;
	ssize_t r;
	int fd, e;

	fd = open(DB_RANDOM_DEVICE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rs_err_errno(err, errno, "cannot open '%s'",
				    DB_RANDOM_DEVICE);
	while (got < len) {
		r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? errno : EIO;
			close(fd);
			return rs_err_errno(err, e, "cannot read '%s'",
					    DB_RANDOM_DEVICE);
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

/* Migration 1: who this database is and when it was made. */
static int seed_meta(struct rs_db *db, struct rs_err *err)
{
	unsigned char raw[DB_INSTANCE_ID_BYTES];
	char id[2 * DB_INSTANCE_ID_BYTES + 1];
	char now[sizeof("2026-11-23T14:05:01Z")];
	struct tm tm;
	time_t t;

	if (read_random(raw, sizeof(raw), err))
		return -1;
	rs_hex_encode(raw, sizeof(raw), id);

	t = time(NULL);
	if (!gmtime_r(&t, &tm) ||
	    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return rs_err_set(err, "cannot format the current time");

	if (meta_set(db, "instance_id", id, err) ||
	    meta_set(db, "created_at", now, err))
		return -1;
	return 0;
}

static int set_version(struct rs_db *db, int version, struct rs_err *err)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d", version);
	if (meta_set(db, "schema_version", buf, err))
		return -1;
	snprintf(buf, sizeof(buf), "PRAGMA user_version = %d", version);
	return run_sql(db, buf, err);
}

/* Apply one migration unless another connection already has. */
static int migrate_one(struct rs_db *db, const struct migration *m,
		       int *version, struct rs_err *err)
{
	struct rs_err why = RS_ERR_INIT;
	int current;

	if (sqlite3_exec(db->handle, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return rs_err_set(err, "migration %d failed: %s", m->version,
				  sqlite3_errmsg(db->handle));
	if (read_version(db, &current, &why))
		goto fail;
	if (current > rs_db_schema_version()) {
		sqlite3_exec(db->handle, "ROLLBACK", NULL, NULL, NULL);
		return refuse_newer(db, current, err);
	}
	if (current < m->version) {
		if (sqlite3_exec(db->handle, m->sql, NULL, NULL, NULL) !=
		    SQLITE_OK) {
			rs_err_set(&why, "%s", sqlite3_errmsg(db->handle));
			goto fail;
		}
		if ((m->post && m->post(db, &why)) ||
		    set_version(db, m->version, &why))
			goto fail;
		current = m->version;
	}
	if (sqlite3_exec(db->handle, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		rs_err_set(&why, "%s", sqlite3_errmsg(db->handle));
		goto fail;
	}
	*version = current;
	return 0;

fail:
	/* The message is taken before ROLLBACK replaces sqlite's. */
	rs_err_set(err, "migration %d failed: %s", m->version, why.msg);
	sqlite3_exec(db->handle, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int migrate(struct rs_db *db, int *version, struct rs_err *err)
{
	size_t i;

	for (i = 0; i < N_MIGRATIONS; i++) {
		if (migrations[i].version <= *version)
			continue;
		if (migrate_one(db, &migrations[i], version, err))
			return -1;
	}
	return 0;
}

static int enable_wal(struct rs_db *db, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int ret = -1;

	if (sqlite3_prepare_v2(db->handle, "PRAGMA journal_mode = WAL", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		db_fail(db, err, "cannot switch database '%s' to WAL mode",
			db->path);
		goto out;
	}
	/* SQLite answers with the mode it is left in, which is not WAL
	 * where the file system cannot share memory (some network ones). */
	mode = sqlite3_column_text(st, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0) {
		rs_err_set(err,
			   "cannot switch database '%s' to WAL mode: journal mode is still '%s'",
			   db->path, mode ? (const char *)mode : "unknown");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* sqlite3_open_v2 says only "unable to open database file"; name the
 * missing directory or the system error instead. */
static int open_error(struct rs_db *db, struct rs_err *err)
{
	char *dir = rs_path_dirname(db->path);
	struct stat st;
	int sys_errno;

	if (!db->handle) {
		free(dir);
		return rs_err_errno(err, ENOMEM, "cannot open database '%s'",
				    db->path);
	}
	if (dir && stat(dir, &st) < 0) {
		int e = errno;

		if (e == ENOENT)
			rs_err_set(err,
				   "cannot open database '%s': directory '%s' does not exist",
				   db->path, dir);
		else
			rs_err_errno(err, e,
				     "cannot open database '%s': cannot access directory '%s'",
				     db->path, dir);
	} else if (dir && !S_ISDIR(st.st_mode)) {
		rs_err_set(err,
			   "cannot open database '%s': '%s' is not a directory",
			   db->path, dir);
	} else {
		sys_errno = sqlite3_system_errno(db->handle);
		if (sys_errno)
			rs_err_errno(err, sys_errno,
				     "cannot open database '%s': %s", db->path,
				     sqlite3_errmsg(db->handle));
		else
			rs_err_set(err, "cannot open database '%s': %s",
				   db->path, sqlite3_errmsg(db->handle));
	}
	free(dir);
	return -1;
}

int rs_db_open(struct rs_db **out, const char *path,
	       const struct rs_db_options *opt, struct rs_err *err)
{
	static const struct rs_db_options defaults;
	struct rs_db *db;
	int readonly, flags, version;

	*out = NULL;
	if (!opt)
		opt = &defaults;
	if (!path || !*path)
		return rs_err_set(err, "no database path given");
	if ((unsigned)opt->sync >= N_SYNC_PRAGMAS)
		return rs_err_set(err, "invalid synchronous setting %d",
				  (int)opt->sync);
	if (opt->busy_timeout_ms < 0)
		return rs_err_set(err, "invalid busy timeout %d ms",
				  opt->busy_timeout_ms);

	db = calloc(1, sizeof(*db));
	if (!db)
		return rs_err_errno(err, ENOMEM, "cannot open database '%s'",
				    path);
	db->path = strdup(path);
	if (!db->path) {
		rs_err_errno(err, ENOMEM, "cannot open database '%s'", path);
		goto fail;
	}

	readonly = (opt->flags & RS_DB_READONLY) != 0;
	flags = SQLITE_OPEN_NOMUTEX;
	if (readonly)
		flags |= SQLITE_OPEN_READONLY;
	else if (opt->flags & RS_DB_NOCREATE)
		flags |= SQLITE_OPEN_READWRITE;
	else
		flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db->handle, flags, NULL) != SQLITE_OK) {
		open_error(db, err);
		goto fail;
	}
	/* SQLite quietly opens a write-protected file read-only. */
	if (!readonly && sqlite3_db_readonly(db->handle, "main") == 1) {
		rs_err_set(err,
			   "cannot open database '%s' for writing: the file is read-only",
			   path);
		goto fail;
	}
	sqlite3_busy_timeout(db->handle,
			     opt->busy_timeout_ms ? opt->busy_timeout_ms :
						    DB_BUSY_TIMEOUT_DEFAULT_MS);

	if (read_version(db, &version, err))
		goto fail;
	if (version > rs_db_schema_version()) {
		refuse_newer(db, version, err);
		goto fail;
	}
	if (readonly && version == 0) {
		rs_err_set(err,
			   "database '%s' is not initialised (run a resync command that writes to it first)",
			   path);
		goto fail;
	}

	if ((!readonly && enable_wal(db, err)) ||
	    run_sql(db, sync_pragmas[opt->sync], err) ||
	    run_sql(db, "PRAGMA foreign_keys = ON", err))
		goto fail;
	if (!readonly && migrate(db, &version, err))
		goto fail;

	db->schema_version = version;
	*out = db;
	return 0;

fail:
	rs_db_close(db);
	return -1;
}

void rs_db_close(struct rs_db *db)
{
	if (!db)
		return;
	/* _v2: a statement a caller forgot to finalize delays the close
	 * instead of leaking the connection. */
	sqlite3_close_v2(db->handle);
	free(db->path);
	free(db);
}

char *rs_db_meta_get(struct rs_db *db, const char *key, struct rs_err *err)
{
	char *value;

	rs_err_clear(err);
	if (!db || !key) {
		rs_err_set(err, "no database or meta key given");
		return NULL;
	}
	meta_get(db, key, &value, err);
	return value;
}

int rs_db_meta_set(struct rs_db *db, const char *key, const char *value,
		   struct rs_err *err)
{
	if (!db || !key || !value)
		return rs_err_set(err, "no database, meta key or value given");
	return meta_set(db, key, value, err);
}

int rs_db_exec(struct rs_db *db, const char *sql, struct rs_err *err)
{
	if (!db || !sql)
		return rs_err_set(err, "no database or SQL given");
	return run_sql(db, sql, err);
}
