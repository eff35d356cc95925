/*
 * db: the one SQLite database that holds all persistent Resync state.
 *
 * rs_db_open opens (and, unless read-only, creates) the database file in WAL
 * journal mode with a busy timeout, then brings its schema up to date by
 * running the numbered migrations this build knows, each in its own
 * transaction, recording the version in the `meta` table.  A database whose
 * schema is newer than this build is refused with a clear error and left
 * untouched.  Read-only opens never migrate; they refuse a database that
 * has no schema yet or one that is newer than this build.
 *
 * The struct rs_db is owned by the caller and freed with rs_db_close.  One
 * rs_db is used by one thread at a time (SQLite's serialized mode is not
 * relied on); each thread that needs the database opens its own.
 */
#ifndef RS_DB_H
#define RS_DB_H

#include <sqlite3.h>
#include <stdint.h>

#include "err.h"

enum rs_db_flags {
	RS_DB_READONLY = 1 << 0,   /* open existing, no writes, no migration */
	RS_DB_NOCREATE = 1 << 1,   /* fail if the file does not exist */
};

/* RS_DB_SYNC_DEFAULT (0) means FULL: a zeroed options struct is durable. */
enum rs_db_sync {
	RS_DB_SYNC_DEFAULT,
	RS_DB_SYNC_OFF,
	RS_DB_SYNC_NORMAL,
	RS_DB_SYNC_FULL,
};

struct rs_db_options {
	unsigned flags;              /* enum rs_db_flags */
	int busy_timeout_ms;         /* 0 = default (5000) */
	enum rs_db_sync sync;        /* PRAGMA synchronous */
};

struct rs_db {
	sqlite3 *handle;             /* borrowed by callers for their queries */
	char *path;
	int schema_version;          /* after open: what the file now has */
};

/* The migration that added the cache quarantine and sealed-value key ids
 * (cache_log.key_id, cache_snapshot.key_id): a database below it has
 * neither. */
#define RS_DB_QUARANTINE_VERSION 4

/* The schema version this build creates and understands. */
int rs_db_schema_version(void);

/* Open `path` (NULL options = defaults).  A missing parent directory is an
 * error naming it; none is created.  Returns 0 and sets *out, or -1 with
 * *out NULL and err set, e.g.
 *   "cannot open database 'PATH': directory 'DIR' does not exist"
 *   "'PATH' is not a SQLite database"
 *   "database 'PATH' has schema version 9, newer than this build supports
 *    (7); upgrade resync"
 *   "database 'PATH' is not initialised (run a resync command that writes
 *    to it first)" (read-only open of a database with no schema)
 *   "migration N failed: ..." */
int rs_db_open(struct rs_db **out, const char *path,
	       const struct rs_db_options *opt, struct rs_err *err);

void rs_db_close(struct rs_db *db);

/* `meta` table access (key/value text).  rs_db_meta_get returns a malloc'd
 * string the caller frees, or NULL when the key is absent or on error.  It
 * clears err first, so NULL with an empty err->msg means "absent". */
char *rs_db_meta_get(struct rs_db *db, const char *key, struct rs_err *err);
int rs_db_meta_set(struct rs_db *db, const char *key, const char *value,
		   struct rs_err *err);

/* Run SQL with no result rows (several statements allowed); the error
 * reads "database 'PATH': <sqlite message>". */
int rs_db_exec(struct rs_db *db, const char *sql, struct rs_err *err);

#endif
