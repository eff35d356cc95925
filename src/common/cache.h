/*
 * cache: the sharded, bounded, in-memory TTL cache in front of the HWA API.
 *
 * Keys are byte strings up to max_key_bytes (at most 1 KiB), values byte
 * strings up to max_value_bytes.  Each entry carries an absolute expiry
 * (wall-clock ms): reading never extends it, and rs_cache_set_at lets
 * recovery restore an entry with its original expiry, never a fresh one
 * (the Python original had both bugs).
 *
 * Bounds: the number of entries never exceeds max_entries and the bytes
 * accounted never exceed max_memory_bytes, at any moment, whatever the mix
 * of concurrent calls.  An entry's bytes are measured, not guessed: the
 * entry is one allocation (header + key + value) and its size is
 * malloc_usable_size() of it plus RS_CACHE_INDEX_BYTES_PER_ENTRY, its
 * share of the shard's bucket array and expiry heap.  The cache-wide
 * `bytes` is exactly the sum of its live entries' sizes (plus, for an
 * instant, the room a set in progress has reserved).  A set that would
 * break a bound first evicts, in this order: entries past their stale
 * windows, then least recently used (across all shards: recency is a
 * cache-wide tick).  Background eviction
 * (rs_cache_evict_background, run by a housekeeping thread) starts at the
 * high-water mark and works down to the low-water mark, harder while the
 * insertion rate is high, so writers rarely evict themselves.
 *
 * Stale windows (Varnish grace, nginx proxy_cache_use_stale): past its TTL
 * an entry is kept for max(stale_while_revalidate, stale_if_error) more.
 * A get may ask for stale entries from either window; a stale hit inside
 * the revalidate window hands out one refresh ticket at a time (the caller
 * that gets it refreshes the entry, everyone else is served stale).  The
 * ticket is returned by the next set of the key, or lapses after
 * min(RS_CACHE_REFRESH_TICKET_MS, stale_while_revalidate) so a refresher
 * that died does not leave the entry without one.
 *
 * Concurrency: one mutex per shard guards that shard's table, LRU list,
 * expiry heap, in-flight loads and counters; the cache-wide entry and byte
 * counters are atomics, reserved by compare-and-swap before an entry is
 * linked.  A thread holds at most one shard lock at a time.  No lock is
 * held while a loader runs or while memory is copied out for a snapshot
 * writer's I/O.  All functions are thread-safe except rs_cache_new and
 * rs_cache_free.
 *
 * Profile (rs_cache_profile): lock-free histograms of microseconds.
 * Every shard lock acquisition of the public calls (the statistics
 * readers' excepted) records its wait; one taken without waiting costs
 * no clock read and no shared write (its shard counts it as a 0 us wait).
 * The durations of get, set, set_at, delete and get_or_load are sampled:
 * one call in profile_every (default 8), chosen at random per thread, is
 * timed and recorded, because timing every call (two clock reads of
 * ~30 ns each in a VM, and a record into counters all threads share) cost
 * 8-13% of get and set throughput on one thread and ~25% on two
 * (bench_cache's in-memory loop).  Set profile_every to 1 for every
 * call.  The slow-operation check, when slow_op_us is set, does time every
 * call (the two clock reads: 5-8% on one thread); a call over it (purge
 * included) is counted and logged as one warning, after its locks are
 * released.
 *
 * Ownership: values returned in struct rs_cache_value, items and stats
 * are copies the caller frees with the matching _free.
 */
#ifndef RS_CACHE_H
#define RS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "histogram.h"

#define RS_CACHE_MAX_KEY_BYTES 1024
#define RS_CACHE_DEFAULT_SHARDS 32
#define RS_CACHE_MAX_SHARDS 65536
#define RS_CACHE_DEFAULT_MAX_VALUE_BYTES (1024 * 1024)
/* Values are at most this large whatever the options say, so an entry's
 * size always fits in 32 bits. */
#define RS_CACHE_MAX_VALUE_BYTES_LIMIT (1024 * 1024 * 1024)
#define RS_CACHE_DEFAULT_HIGH_WATER 0.90
#define RS_CACHE_DEFAULT_LOW_WATER 0.80
/* Longest a refresh ticket stays out before another caller gets one. */
#define RS_CACHE_REFRESH_TICKET_MS 30000
/* Charged per entry for its slots in the shard's bucket array and expiry
 * heap.  Both arrays double when full, so each holds between one and two
 * slots per entry while the shard grows; the charge is the upper bound.
 * They never shrink: after mass deletion the arrays keep the slots of the
 * shard's high point, at most 4 pointers per max_entries in all. */
#define RS_CACHE_INDEX_BYTES_PER_ENTRY (4 * sizeof(void *))
/* Calls timed for the op-time histograms: one in this many. */
#define RS_CACHE_DEFAULT_PROFILE_EVERY 8
#define RS_CACHE_MAX_PROFILE_EVERY 65536

struct rs_cache;

struct rs_cache_options {
	size_t num_shards;                 /* power of two; 0 = 32 */
	uint64_t max_entries;              /* > 0, < 2^32 */
	uint64_t max_memory_bytes;         /* > 0 */
	int64_t default_ttl_ms;            /* > 0 */
	int64_t stale_while_revalidate_ms; /* >= 0 */
	int64_t stale_if_error_ms;         /* >= 0 */
	size_t max_key_bytes;              /* 0 = RS_CACHE_MAX_KEY_BYTES */
	size_t max_value_bytes;            /* 0 = 1 MiB; at most 1 GiB */
	/* Background eviction starts above high_water * bound and stops at
	 * low_water * bound; 0 = 0.90 and 0.80; 0 < low < high <= 1. */
	double high_water, low_water;
	/* Wall clock in ms; NULL = real time.  Tests inject their own.
	 * Expiry runs on it; the profile does not (it reads the monotonic
	 * clock). */
	int64_t (*clock_ms)(void *arg);
	void *clock_arg;
	/* A get, set, set_at, delete, purge or get_or_load (loader
	 * included) taking longer than this many microseconds logs one
	 * warning through rs_log_write, e.g. "slow cache set: 12.3 ms (lock
	 * wait 11.9 ms) key 'jobs:ABC'", the key escaped and cut to 64
	 * characters, and counts in slow_ops; 0 = off, >= 0. */
	int64_t slow_op_us;
	/* The op-time histograms record one call in this many, at random;
	 * a power of two up to 65536; 0 = 8; 1 = every call. */
	unsigned profile_every;
};

/* What a lookup found. */
enum rs_cache_status {
	RS_CACHE_MISS,
	RS_CACHE_HIT,      /* fresh */
	RS_CACHE_STALE,    /* past its TTL, inside an allowed stale window */
};

/* Which stale entries a lookup accepts (bit set). */
enum {
	RS_CACHE_ALLOW_REVALIDATE = 1 << 0, /* within stale_while_revalidate */
	RS_CACHE_ALLOW_ERROR = 1 << 1,      /* within stale_if_error */
};

struct rs_cache_value {
	void *data;            /* malloc'd copy, NUL-terminated for convenience */
	size_t len;
	int64_t stored_ms;     /* when it was set */
	int64_t expires_ms;    /* absolute expiry (end of freshness) */
	bool refresh;          /* STALE in the revalidate window: this caller
				* holds the refresh ticket and should refresh */
};

void rs_cache_value_free(struct rs_cache_value *v);

int rs_cache_new(struct rs_cache **out, const struct rs_cache_options *opt,
		 struct rs_err *err);
/* No call on c may be in progress (nor a load in flight). */
void rs_cache_free(struct rs_cache *c);

/* Look up; never changes the entry's expiry (it does update LRU order).
 * Returns an enum rs_cache_status; `out` (may be NULL) is filled for HIT
 * and STALE.  An entry found past all its windows is removed (lazy
 * expiry).  A bad key is a MISS; -1 only when the copy cannot be
 * allocated. */
int rs_cache_get(struct rs_cache *c, const void *key, size_t klen,
		 unsigned allow_stale, struct rs_cache_value *out);

/* Store with a TTL (ttl_ms < 0: the default).  0, or -1 with err set for a
 * key or value over its limit or an entry that cannot fit even in an empty
 * cache (nothing is evicted then), for "out of memory", or when
 * concurrent writers kept taking the room evicted for it (a bounded number
 * of rounds).  ttl_ms 0 with no stale windows stores nothing: 1, as
 * rs_cache_set_at. */
int rs_cache_set(struct rs_cache *c, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t ttl_ms,
		 struct rs_err *err);

/* Store with absolute times (recovery, replication).  An entry already past
 * its stale windows is not stored and 1 is returned (an older entry for the
 * key is removed: the write superseded it); else as rs_cache_set. */
int rs_cache_set_at(struct rs_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, int64_t stored_ms,
		    int64_t expires_ms, struct rs_err *err);

/* 1 when an entry was removed, 0 when there was none. */
int rs_cache_delete(struct rs_cache *c, const void *key, size_t klen);

/* Remove every entry whose key starts with prefix (plen 0: all); returns
 * how many. */
uint64_t rs_cache_purge(struct rs_cache *c, const void *prefix, size_t plen);

/* Single-flight get-or-load.  A fresh hit returns HIT.  Otherwise one
 * caller per key runs `load` (without any lock held); concurrent callers
 * for the same key wait up to wait_ms for its result and share it.  A
 * successful load is stored (with the TTL the loader sets; < 0 = default)
 * and returned as MISS.  When the load fails and an entry inside
 * stale_if_error exists it is returned as STALE; otherwise -1 with err
 * (the loader's message and code, shared with every waiter, or "timed out
 * waiting for ...").  Waiters that
 * time out leave the load running; a stale_while_revalidate entry is not
 * served here (the caller asked for a fresh value).
 *
 * The loader gets the key NUL-terminated (klen excludes the NUL) and
 * *ttl_ms preset to -1; it returns 0 with *val a malloc'd buffer the cache
 * takes over (frees), or -1 with err set.  A loaded value that cannot be
 * stored (too large) is still returned, just not cached (counted in
 * `rejected`). */
typedef int (*rs_cache_loader)(void *arg, const void *key, size_t klen,
			       void **val, size_t *vlen, int64_t *ttl_ms,
			       struct rs_err *err);
int rs_cache_get_or_load(struct rs_cache *c, const void *key, size_t klen,
			 rs_cache_loader load, void *arg, int64_t wait_ms,
			 struct rs_cache_value *out, struct rs_err *err);

/* Housekeeping, bounded work: remove entries past their stale windows,
 * visiting at most max_per_shard entries per shard per call, earliest
 * deadline first (so every visit finds one); returns how many were
 * removed. */
uint64_t rs_cache_sweep(struct rs_cache *c, size_t max_per_shard);

/* Adaptive eviction towards the low-water mark; returns entries evicted.
 * Starts only when entries or bytes are above the high-water mark, then
 * keeps going on later calls until both are at or below the low-water
 * mark.  Work per call: 256 entries * (1 + insertion rate per s / 1000),
 * doubled above the midpoint between high water and the bound, at most
 * 16384.  The insertion rate is an EWMA (time constant 5 s of the cache's
 * clock) updated by this function and rs_cache_stats. */
uint64_t rs_cache_evict_background(struct rs_cache *c);

/* A copy of one shard's live entries (those not past their stale windows),
 * for snapshots: taken under that shard's lock only, so writers to other
 * shards never wait.  Least recently used first, so storing the items in
 * order rebuilds the recency order.  *items is NULL when *n is 0. */
struct rs_cache_item {
	void *key;             /* malloc'd, NUL-terminated */
	size_t klen;
	void *val;             /* malloc'd, NUL-terminated */
	size_t vlen;
	int64_t stored_ms, expires_ms;
	size_t bytes;          /* what the entry is accounted as */
};
size_t rs_cache_num_shards(const struct rs_cache *c);
int rs_cache_shard_copy(struct rs_cache *c, size_t shard,
			struct rs_cache_item **items, size_t *n,
			struct rs_err *err);
void rs_cache_items_free(struct rs_cache_item *items, size_t n);

struct rs_cache_shard_stats {
	uint64_t entries, bytes, gets, sets;
};

struct rs_cache_stats {
	uint64_t hits, misses, stale_hits;
	uint64_t sets, deletes, purged;
	uint64_t expirations;              /* removed by sweep or lazily */
	uint64_t evictions_expired;        /* evicted for room, past windows */
	uint64_t evictions_lru;            /* evicted for room, still live */
	uint64_t writer_evictions;         /* of those, done by a set itself */
	uint64_t rejected;                 /* sets refused (too large, bad key) */
	uint64_t no_room;                  /* sets that gave up evicting */
	uint64_t refresh_tickets;          /* refresh tickets handed out */
	uint64_t loads, load_failures, load_waits, load_timeouts;
	/* The bounded counters; with writes in progress they include the room
	 * reserved by sets not yet linked, so they can exceed the shards' sum
	 * for an instant, never the bounds. */
	uint64_t entries, bytes;
	uint64_t max_entries, max_memory_bytes;
	size_t num_shards;
	size_t hot_shards;                 /* shards taking > 2x their share of
					    * gets + sets (0 below 1000 ops) */
	double insert_rate_per_s;          /* EWMA of sets per second */
	struct rs_cache_shard_stats *shards;  /* num_shards, malloc'd */
};
int rs_cache_stats(struct rs_cache *c, struct rs_cache_stats *out,
		   struct rs_err *err);
void rs_cache_stats_free(struct rs_cache_stats *s);

/* Where the time goes, in microseconds, since rs_cache_new.  The op-time
 * histograms hold a sample of one call in sample_every (multiply their
 * counts by it to estimate calls): get_us of rs_cache_get; set_us of
 * rs_cache_set and rs_cache_set_at; delete_us of rs_cache_delete;
 * load_us of rs_cache_get_or_load, hit or miss, the loader's run (or the
 * wait for another caller's) included; each call's whole duration, bad
 * keys too.  lock_wait_us is not sampled: one value per shard lock
 * acquisition by any call but rs_cache_stats and rs_cache_profile, 0 when
 * the lock was free (a get, delete or new set takes one; a purge one per
 * shard; a get_or_load that loads three: look up, store, publish).
 * Purges are timed only for slow_ops.  slow_ops: calls over slow_op_us
 * (none while that is off). */
struct rs_cache_profile {
	struct rs_hist get_us, set_us, delete_us, load_us, lock_wait_us;
	uint64_t slow_ops;
	unsigned sample_every;             /* profile_every */
};

/* Copy the profile into *out, which is overwritten entirely (it need not
 * be initialised).  The struct holds five histograms, about 90 KB: callers
 * malloc it, not put it on a thread's stack.  Lock-free: calls in progress
 * may be half in it (each histogram's counters are exact, the set of them
 * is not a snapshot). */
void rs_cache_profile(struct rs_cache *c, struct rs_cache_profile *out);

#endif
