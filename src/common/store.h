/*
 * store: the cache made durable: an rs_cache in memory, the cache log
 * (wal) and snapshots (snapshot) in the database, tied together.
 *
 * Open = recovery: the newest snapshot that verifies is loaded, then every
 * log record after its last_seq is replayed (expired entries are skipped
 * and keep their original expiry); a bad record stops the replay and is
 * reported, never a crash, and the store still opens.  A missing database
 * is created (nothing to recover).  Every mutation through the store is
 * logged, then applied in memory, under a lock stripe of its key, so
 * memory and the log always agree on the order of writes to one key.  A
 * set carries its stored and expiry times in the record, so recovery
 * restores the same times as memory had.  With sync = always a set
 * returns only after its record is committed, and a failed commit leaves
 * memory untouched and fails the call.  A key or value the cache would
 * refuse (empty or too long, over max_memory_bytes) is refused before
 * anything is logged.
 *
 * Other processes (resyncctl) write to the same log; rs_store_follow
 * applies their records (seq order, own origin skipped), so a purge made
 * from the shell reaches a running responder.  So `origin` must be unique
 * among the processes that write the log while this store is open.  Two
 * processes writing the same key within one follow interval may end in
 * memory in the order they were applied here rather than in seq order;
 * the log's order wins at the next recovery (a cache may serve either).
 *
 * sync = off is memory only: no database is opened or created, nothing is
 * recovered, follow and gc do nothing, a snapshot is an error.
 *
 * Locks (inside the opaque struct), in the order they are taken: a follow
 * mutex guards the last seq seen and serialises follow, snapshot and gc;
 * a writer-preferring rwlock, the gate, is held shared by set and delete
 * and exclusively by purge and by a snapshot's catch-up; one mutex per key
 * stripe (256, a hash of the key) orders the log and memory for its keys.
 * With sync = always a stripe is held while its record commits, so writers
 * of other keys in that stripe wait for the commit too, and a purge waits
 * for the commits in flight.
 *
 * Reads go straight to the cache (rs_store_cache), no lock of the store.
 * Every function is thread-safe except rs_store_open and rs_store_close.
 */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "snapshot.h"
#include "wal.h"

struct rs_store;

struct rs_store_options {
	const char *db_path;            /* required unless sync = off */
	enum rs_wal_sync sync;
	int64_t sync_interval_ms;       /* 0 = wal default */
	/* How long a commit waits for another process's write lock; 0 = the
	 * database default (5 s).  With sync = always a set fails after it. */
	int busy_timeout_ms;
	const char *origin;             /* this process: instance id or "resyncctl" */
	struct rs_cache_options cache;  /* clock included: recovery uses it */
	int64_t snapshot_retention_ms;  /* for rs_store_gc; >= 0 */
	int64_t wal_retention_ms;       /* for rs_store_gc; >= 0 */
	/* Seal values in the log and snapshots with the keys in this file
	 * (seal.h); NULL = plaintext. */
	const char *encryption_key_file;
};

struct rs_config;
/* Fill *o from [cache] and [persistence] of a loaded configuration, with
 * the per-environment defaults of the key and value limits; strings are
 * borrowed from cfg (and origin). */
void rs_store_options_from_config(const struct rs_config *cfg,
				  const char *origin,
				  struct rs_store_options *o);

struct rs_store_recovery {
	struct rs_snapshot_load_report snapshot;
	struct rs_wal_read_report log;  /* stopped/bad_seq/reason: a bad record */
	uint64_t replayed;              /* log records applied (expired and
					 * rejected sets included) */
	uint64_t expired;               /* sets skipped: already past windows */
	uint64_t rejected;              /* sets the cache refused (the key is
					 * removed, as the live set did) */
	char rejected_reason[256];      /* the cache's error for the first one */
	int64_t last_seq;               /* memory holds the log up to here */
	int64_t took_ms;                /* monotonic, snapshot load + replay */
};

/* *rec (may be NULL) is filled even when open fails part-way. */
int rs_store_open(struct rs_store **out, const struct rs_store_options *opt,
		  struct rs_store_recovery *rec, struct rs_err *err);
/* Flush the log and close; -1 when records could not be committed.  The
 * store is freed either way; no other call on it may be running. */
int rs_store_close(struct rs_store *s, struct rs_err *err);

/* The cache, borrowed, for reads. */
struct rs_cache *rs_store_cache(struct rs_store *s);

/* ttl_ms < 0: the cache's default_ttl_ms.  -1 with err when the entry is
 * refused (nothing logged), when it cannot be logged (memory untouched;
 * err->code is then EIO, so a bulk writer can tell a failing log, which
 * stops it, from one refused entry),
 * or, rarely, when the cache cannot make room for it after it was logged:
 * then the key is removed and a delete logged, so memory and the log still
 * agree. */
int rs_store_set(struct rs_store *s, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t ttl_ms,
		 struct rs_err *err);
/* A set with the entry's own times (import, restore): 1 when it is
 * already past its stale windows (nothing logged, nothing changed), else
 * as rs_store_set. */
int rs_store_set_at(struct rs_store *s, const void *key, size_t klen,
		    const void *val, size_t vlen, int64_t stored_ms,
		    int64_t expires_ms, struct rs_err *err);

/* Wait until every record this store has appended is committed (sync =
 * batch: at once rather than at the interval).  Bulk writers call it now
 * and then, so the log's bounded queue never fills. */
int rs_store_flush(struct rs_store *s, struct rs_err *err);

/* *deleted (may be NULL) says whether the key was in memory.  Logged even
 * when it was not: an evicted entry would otherwise come back at
 * recovery.  As for a set, err->code is EIO when the log failed, so a
 * caller can tell that from a key the cache refuses. */
int rs_store_delete(struct rs_store *s, const void *key, size_t klen,
		    int *deleted, struct rs_err *err);
/* plen 0 = everything. */
int rs_store_purge(struct rs_store *s, const void *prefix, size_t plen,
		   uint64_t *removed, struct rs_err *err);

/* Apply records other processes appended since the last call; *applied
 * (may be NULL) counts them.  A bad record stops it: -1 with err naming
 * its seq and reason, the good records before it applied; the next call
 * starts again at the bad one (verify --repair clears it). */
int rs_store_follow(struct rs_store *s, uint64_t *applied, struct rs_err *err);

/* Take a snapshot now.  It first applies other processes' records and
 * commits this store's own (mutations held off, briefly), so info->last_seq
 * names a point the image certainly includes; writers are not stopped
 * while the image is copied. */
int rs_store_snapshot(struct rs_store *s, struct rs_snapshot_info *info,
		      struct rs_err *err);

/* Collect snapshots past snapshot_retention (rs_snapshot_gc) and log
 * records covered by the oldest kept snapshot, older than wal_retention
 * and already seen by this store.  Ages are wall-clock (rs_now_ms), as
 * the database records them, not the cache's clock.  Both counts may be
 * NULL. */
int rs_store_gc(struct rs_store *s, uint64_t *snapshots_removed,
		int64_t *records_removed, struct rs_err *err);

struct rs_store_restore_report {
	uint64_t entries;               /* restored */
	uint64_t expired;               /* in the snapshot, past their windows */
	uint64_t rejected;              /* the cache refused (bounds) */
};

/* Make the cache what snapshot `id` holds: the snapshot is verified and
 * staged first (an unusable one changes nothing), then everything is
 * purged and each entry set with its original times, all of it logged so
 * that a responder following the log ends the same.  Mutations of this
 * process wait meanwhile.  With sync = always every entry is its own
 * commit: restore big snapshots with sync = batch (resyncctl does).  -1
 * with err when the snapshot cannot be loaded (nothing changed) or the log
 * fails part-way (what was logged stays: the cache then holds part of the
 * snapshot, and says so). */
int rs_store_restore(struct rs_store *s, int64_t id,
		     struct rs_store_restore_report *rep, struct rs_err *err);

void rs_store_wal_stats(struct rs_store *s, struct rs_wal_stats *out);

#endif
