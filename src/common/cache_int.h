/*
 * cache_int.h: the cache's private layout and the helpers its files share
 * (cache.c: table, bounds, get/set; cache_flight.c: single-flight loads;
 * cache_maint.c: sweep, background eviction, snapshots copies, stats).
 * Not part of libresync's public face: only cache*.c include it.
 */
#ifndef RS_CACHE_INT_H
#define RS_CACHE_INT_H

#include "cache.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define BUCKETS_INITIAL 16
/* Rounds of "reserve, else evict the deficit" a set makes before it gives
 * up: each round evicts what the bound lacks, so only writers that keep
 * taking the freed room can exhaust them. */
#define SET_ROUNDS_MAX 100
#define KEY_SHOWN_MAX 64           /* key bytes quoted in a message */
#define HOT_SHARD_MIN_OPS 1000
#define HOT_SHARD_FACTOR 2
#define BG_BATCH_BASE 256
#define BG_BATCH_MAX 16384
#define BG_RATE_UNIT 1000.0        /* sets/s that add one base batch */
#define RATE_TAU_MS 5000.0         /* EWMA time constant */

/* 62 bytes before the data: with a short key and a 200-byte value the
 * allocation stays within glibc's 288-byte chunk (memory per entry is what
 * the cache's bound and the 1.5x-payload target are about).  Hence
 * the 32-bit fields: the hash keeps its low 32 bits (shard and bucket bits
 * come from them), the stored time is kept as its distance to the expiry
 * (TTLs are under 49 days), the refresh ticket's end as an offset from the
 * expiry, and the accounted size is recomputed (malloc_usable_size is fixed
 * for the life of an allocation). */
struct entry {
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* LRU list, head = most recent */
	uint64_t tick;             /* recency, from rs_cache.tick */
	int64_t expires_ms;
	uint32_t hash;
	uint32_t age_ms;           /* expires_ms - stored_ms */
	int32_t refresh_ms;        /* ticket out until expires_ms + refresh_ms */
	uint32_t heap_idx;
	uint32_t vlen;
	uint16_t klen;
	char data[];               /* key, NUL, value, NUL */
};
_Static_assert(offsetof(struct entry, data) <= 64,
	       "the entry header must stay within 64 bytes");

/* One load in progress; lives in its shard's list until done, and until
 * the last of the leader and its waiters lets go (refs). */
struct flight {
	struct flight *next;
	uint64_t hash;
	pthread_cond_t cond;
	unsigned refs;
	bool done, ok;
	char *val;                 /* NUL-terminated copy when ok */
	size_t vlen;
	int64_t stored_ms, expires_ms;
	char msg[RS_ERR_MSG_MAX];  /* the loader's error when !ok */
	size_t klen;
	char key[];
};

struct counters {
	uint64_t gets, sets, hits, misses, stale_hits, deletes, purged;
	uint64_t expirations, evictions_expired, evictions_lru;
	uint64_t writer_evictions, refresh_tickets;
	uint64_t loads, load_failures, load_waits, load_timeouts;
};

struct shard {
	/* Aligned so two shards' locks never share a cache line. */
	_Alignas(64) pthread_mutex_t lock;
	/* Everything below is guarded by lock, except the two hints. */
	struct entry **buckets;
	size_t nbuckets;           /* power of two */
	struct entry *head, *tail;
	struct entry **heap;       /* min-heap by expires_ms */
	uint32_t heap_len, heap_cap;
	struct flight *flights;
	uint64_t entries, bytes;
	struct counters n;
	/* Written under lock, read without it by evicting threads. */
	_Atomic uint64_t tail_tick;        /* UINT64_MAX when empty */
	_Atomic int64_t min_deadline_ms;   /* INT64_MAX when empty */
};

struct rs_cache {
	struct shard *shards;
	size_t nshards;
	unsigned shard_bits;
	uint64_t max_entries, max_bytes;
	int64_t default_ttl_ms, swr_ms, sie_ms, max_stale_ms;
	size_t max_key, max_value;
	double high_water, low_water;
	int64_t (*clock_ms)(void *arg);
	void *clock_arg;
	uint64_t sip_k0, sip_k1;
	pthread_condattr_t condattr;       /* CLOCK_MONOTONIC */

	_Atomic uint64_t entries, bytes;   /* the bounded counters */
	_Atomic uint64_t tick;
	_Atomic uint64_t sets_total, rejected, no_room;

	pthread_mutex_t rate_lock;         /* guards the fields below */
	double rate_per_s;
	int64_t rate_ms;
	uint64_t rate_sets;
	bool rate_known, bg_active;
};

/* --- small helpers -------------------------------------------------------- */

static inline int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static inline int64_t now_ms(const struct rs_cache *c)
{
	return c->clock_ms ? c->clock_ms(c->clock_arg) : rs_now_ms();
}

static inline int shown_len(size_t klen)
{
	return (int)(klen > KEY_SHOWN_MAX ? KEY_SHOWN_MAX : klen);
}

static inline const char *shown_more(size_t klen)
{
	return klen > KEY_SHOWN_MAX ? "..." : "";
}

static inline const char *key_of(const struct entry *e)
{
	return e->data;
}

static inline const char *val_of(const struct entry *e)
{
	return e->data + e->klen + 1;
}

static inline uint32_t entry_bytes(const struct entry *e)
{
	return (uint32_t)(malloc_usable_size((void *)e) +
			  RS_CACHE_INDEX_BYTES_PER_ENTRY);
}

static inline int64_t stored_of(const struct entry *e)
{
	return e->expires_ms - (int64_t)e->age_ms;
}

static inline int64_t refresh_until(const struct entry *e)
{
	return sat_add(e->expires_ms, e->refresh_ms);
}

static inline void set_refresh_until(struct entry *e, int64_t at)
{
	int64_t d = at - e->expires_ms;

	e->refresh_ms = d > INT32_MAX ? INT32_MAX :
			d < INT32_MIN ? INT32_MIN : (int32_t)d;
}

static inline int64_t deadline_of(const struct rs_cache *c, const struct entry *e)
{
	return sat_add(e->expires_ms, c->max_stale_ms);
}

static inline struct shard *shard_of(struct rs_cache *c, uint64_t h)
{
	return &c->shards[h & (c->nshards - 1)];
}

static inline size_t bucket_of(const struct rs_cache *c, const struct shard *s,
			uint64_t h)
{
	return (size_t)(h >> c->shard_bits) & (s->nbuckets - 1);
}

static inline void lock(struct shard *s)
{
	pthread_mutex_lock(&s->lock);
}

static inline void unlock(struct shard *s)
{
	pthread_mutex_unlock(&s->lock);
}

static inline void free_chain(struct entry *e)
{
	struct entry *next;

	for (; e; e = next) {
		next = e->hnext;
		free(e);
	}
}

/* --- shared between the cache files (cache.c) ---------------------------- */

uint32_t cache_key_hash(const struct rs_cache *c, const void *key,
			size_t klen);
void cache_publish(struct shard *s, const struct rs_cache *c);
struct entry *cache_find(const struct rs_cache *c, const struct shard *s,
			 uint64_t h, const void *key, size_t klen);
void cache_drop(struct rs_cache *c, struct shard *s, struct entry *e,
		struct entry **dead);
uint64_t cache_evict(struct rs_cache *c, uint64_t want_e, uint64_t want_b,
		     uint64_t max_n, int64_t now, bool writer);
int cache_copy_out(const struct entry *e, struct rs_cache_value *out);
int cache_lookup_locked(struct rs_cache *c, struct shard *s, uint64_t h,
			const void *key, size_t klen, unsigned allow,
			int64_t now, bool count, struct rs_cache_value *out,
			struct entry **dead);
int cache_store(struct rs_cache *c, const void *key, size_t klen,
		const void *val, size_t vlen, int64_t stored_ms,
		int64_t expires_ms, int64_t now, struct rs_err *err);
int cache_check_key(struct rs_cache *c, const void *key, size_t klen,
		    struct rs_err *err);
void cache_touch(struct rs_cache *c, struct shard *s, struct entry *e);
uint64_t cache_next_tick(struct rs_cache *c);

#endif
