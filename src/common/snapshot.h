/*
 * snapshot: point-in-time images of the cache in the database, so a
 * restart loads the newest valid image and replays only the cache log
 * records after it.
 *
 * Tables (migration 3):
 *   cache_snapshot      id, time_ms, last_seq (the newest log record the
 *                       image includes), entries, bytes, checksum, state
 *                       ('writing' until complete, then 'complete')
 *   cache_snapshot_row  snapshot_id, idx, key, value, stored_ms, expires_ms
 *
 * Ids grow with every snapshot taken and are never reused, so "newest"
 * means the highest id (the wall clock may step back; ids do not).
 *
 * Consistency: the caller reads the last committed log seq L, then the
 * image is copied one shard at a time (rs_cache_shard_copy), so writers
 * wait for at most one shard, and no cache lock is held during database
 * I/O.  The image holds everything up to L and maybe some later writes;
 * replaying every record after L in order over it gives the exact state,
 * because set, delete and purge are last-writer-wins per key.  Since the
 * shards are copied at different moments, an image may hold a few more
 * entries than max_entries (or bytes than max_memory_bytes) ever held at
 * once; loading it then evicts as any set does, and the bounds hold.
 *
 * The checksum is CRC-32C over the rows in idx order (each field framed
 * with its length, idx included), then over the header's id, time_ms,
 * last_seq, entries and bytes, so a changed, missing or reordered row and
 * a changed last_seq (which decides where replay starts) are all found.
 * The encoding is described at the top of snapshot.c.  A snapshot whose
 * checksum or counts do not match is corrupt: loading falls back to the
 * previous one and says so.
 *
 * Durability: take commits the header with state 'writing' before any
 * row, then rows in transactions of about 10 000, and sets 'complete' in
 * the last one.  A crash mid-way leaves an incomplete snapshot that load
 * passes over and gc removes once it is RS_SNAPSHOT_INCOMPLETE_MAX_AGE_MS
 * old (a younger one may still be being written by another process).
 *
 * Every call opens its own connection to db_path and closes it before
 * returning, so calls are thread-safe and may run in any process next to
 * the cache log's writer.  list, verify and load open the database
 * read-only: it must exist and be initialised (see rs_db_open), and one
 * whose schema predates migration 3 reads as having no snapshots.  take
 * creates and migrates the database as rs_db_open does; gc and delete
 * migrate it but do not create it.  Errors name the database path and the
 * snapshot id.
 */
#ifndef RS_SNAPSHOT_H
#define RS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"

/* gc removes incomplete snapshots older than this (a take that crashed);
 * a take running longer than this would lose its snapshot to gc. */
#define RS_SNAPSHOT_INCOMPLETE_MAX_AGE_MS (60 * 60 * 1000LL)

/* The state `resyncctl cache verify --repair` gives a corrupt snapshot
 * (repair.h): load passes over it without counting it as corrupt, verify
 * names it, gc collects it as any old snapshot. */
#define RS_SNAPSHOT_STATE_QUARANTINED "quarantined"

struct rs_snapshot_info {
	int64_t id;
	int64_t time_ms;            /* wall clock when the take started */
	int64_t last_seq;
	uint64_t entries;           /* 0 while incomplete */
	uint64_t bytes;             /* key + value bytes stored */
	uint32_t checksum;
	bool complete;              /* state is 'complete' */
	bool quarantined;           /* state is 'quarantined' */
};

/* Encryption at rest: with a keyring (seal.h), take seals every value with
 * the current key (the cache key as associated data) and records the key's
 * id in the header, which the checksum then covers; the checksum is over
 * the stored, sealed bytes, so verify needs no key.  Load opens the values
 * with the key of that id: a snapshot sealed with a key the keyring lacks
 * (or with no keyring) is an error naming the id, never skipped for an
 * older one and never loaded as garbage.  A NULL keyring takes plaintext
 * snapshots. */

/* Write an image of `c` that includes the log up to last_seq (>= 0); fills
 * *info (may be NULL).  Entries already past their stale windows when
 * their shard is copied are left out.  On error nothing is left behind:
 * the partial snapshot is deleted (best effort: if even that fails, it
 * stays incomplete until gc), *info is zeroed and -1 returned with err. */
struct rs_keyring;
int rs_snapshot_take(const char *db_path, const struct rs_keyring *keys,
		     struct rs_cache *c, int64_t last_seq,
		     struct rs_snapshot_info *info, struct rs_err *err);

/* Call cb for every snapshot, newest first, incomplete ones included.  cb
 * returns 0 to go on, non-zero to stop (that value is returned).  -1 with
 * err when the database cannot be read. */
int rs_snapshot_list(const char *db_path,
		     int (*cb)(void *arg, const struct rs_snapshot_info *info),
		     void *arg, struct rs_err *err);

struct rs_snapshot_check {
	bool ok;
	bool incomplete;            /* state 'writing': not corrupt (yet) */
	char reason[256];           /* "checksum mismatch", "12 rows, header says 13",
				     * "11520 bytes, header says 11519",
				     * "incomplete (state 'writing')",
				     * "unknown state 'x'", "quarantined",
				     * "no snapshot 7",
				     * "row 12 does not authenticate with key K" */
};

/* Recompute snapshot `id`'s checksum and counts, streaming its rows;
 * with `keys` holding the key a snapshot was sealed with, also open every
 * sealed value (a row rewritten with a recomputed checksum is caught only
 * so).  Loading does the same check with its keys, so such a snapshot is
 * skipped for an older one, as a corrupt one is.
 * Returns 0 with check->ok telling the verdict, or -1 when it cannot be
 * read at all: no such id (err and reason say "no snapshot ID in 'PATH'"
 * and "no snapshot ID") or a database error. */
int rs_snapshot_verify(const char *db_path, const struct rs_keyring *keys,
		       int64_t id, struct rs_snapshot_check *check,
		       struct rs_err *err);

struct rs_snapshot_load_report {
	int64_t loaded_id;          /* 0 when none could be loaded */
	int64_t last_seq;           /* replay the log after this; 0 = all */
	uint64_t entries;           /* stored into the cache (some may have
				     * been evicted by later rows since) */
	uint64_t expired;           /* rows skipped: past their windows */
	uint64_t rejected;          /* rows the cache refused (bounds) */
	char rejected_reason[256];  /* the cache's error for the first one */
	int skipped;                /* corrupt snapshots passed over */
	char skipped_reason[256];   /* why the newest one was passed over:
				     * "snapshot 9: checksum mismatch" */
	int incomplete;             /* incomplete snapshots passed over (a
				     * take that crashed or is running);
				     * not counted in skipped */
	int quarantined;            /* quarantined snapshots passed over;
				     * not counted in skipped */
};

/* Load snapshot `id` into `c` (empty it first: the caller's choice); with
 * id 0, the newest complete snapshot that verifies, falling back to older
 * ones.  A snapshot is verified before anything is stored from it, in the
 * same read transaction, so a gc or delete elsewhere cannot change it in
 * between; memory use does not grow with its size.  Rows are stored with
 * rs_cache_set_at in idx order (each shard's least recently used first).
 * No usable snapshot with id 0 is not an error: loaded_id = 0,
 * last_seq = 0.  An explicit id that does not exist, is incomplete or does
 * not verify is: -1 with err saying why, nothing stored.  On a database
 * error while storing, -1 and the cache may hold part of the image. */
int rs_snapshot_load(const char *db_path, const struct rs_keyring *keys,
		     int64_t id, struct rs_cache *c,
		     struct rs_snapshot_load_report *report,
		     struct rs_err *err);

/* Collect old snapshots.  Complete snapshots are verified newest first
 * until one passes: that one, the newest valid, is kept however old, and
 * so is every snapshot newer than it (when none passes, every complete
 * snapshot is kept: there is nothing better to fall back to).  Of the
 * older ones, those with time_ms before now_ms - retention_ms are
 * deleted.  Incomplete snapshots older than
 * RS_SNAPSHOT_INCOMPLETE_MAX_AGE_MS are deleted whatever their place.
 * *removed (may be NULL) gets how many were deleted; *keep_seq (may be
 * NULL) the smallest last_seq among the complete snapshots still kept, 0
 * when there are none: the log may be truncated up to it. */
int rs_snapshot_gc(const char *db_path, int64_t now_ms, int64_t retention_ms,
		   uint64_t *removed, int64_t *keep_seq, struct rs_err *err);

/* Delete one snapshot, rows and header in one transaction; -1 with err
 * "no snapshot ID in 'PATH'" when there is none. */
int rs_snapshot_delete(const char *db_path, int64_t id, struct rs_err *err);

#endif
