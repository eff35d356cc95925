/*
 * cache_int.h: the cache's private layout and the helpers its files share
 * (cache.c: table, bounds, get/set; cache_flight.c: single-flight loads;
 * cache_maint.c: sweep, background eviction, snapshots copies, stats and
 * the profile).
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

#include "histogram.h"
#include "util.h"

#define BUCKETS_INITIAL 16
/* Rounds of "reserve, else evict the deficit" a set makes before it gives
 * up: each round evicts what the bound lacks, so only writers that keep
 * taking the freed room can exhaust them. */
#define SET_ROUNDS_MAX 100
#define KEY_SHOWN_MAX 64           /* key bytes quoted in a message */
/* A key in a log line: at most KEY_SHOWN_MAX characters, "..." and NUL. */
#define KEY_LOGGED_BYTES (KEY_SHOWN_MAX + 4)
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
	int code;                  /* and its err->code */
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
	/* Acquisitions that did not wait, i.e. lock_wait_us's zeros:
	 * counted here, by whoever holds lock (a plain load and store, no
	 * atomic add), instead of in the shared histogram, so the common
	 * uncontended case writes no cache-wide cache line; read without
	 * the lock by rs_cache_profile. */
	_Atomic uint64_t lock_fast;
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

	/* The profile (rs_cache_profile): lock-free histograms of
	 * microseconds, recorded without any lock (rs_hist's relaxed
	 * atomics).  lock_wait_us holds only the acquisitions that waited;
	 * the others are counted in each shard's lock_fast.  slow_op_us and
	 * sample_mask are set at creation, read-only after. */
	int64_t slow_op_us;                /* 0 = no slow-operation log */
	uint32_t sample_mask;              /* profile_every - 1 */
	_Atomic uint64_t slow_ops;
	struct rs_hist get_us, set_us, delete_us, load_us, lock_wait_us;

	pthread_mutex_t rate_lock;         /* guards the fields below */
	double rate_per_s;
	int64_t rate_ms;
	uint64_t rate_sets;
	bool rate_known, bg_active;
};

/* --- small helpers -------------------------------------------------------- */

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
	return rs_sat_add(e->expires_ms, e->refresh_ms);
}

static inline void set_refresh_until(struct entry *e, int64_t at)
{
	int64_t d = at - e->expires_ms;

	e->refresh_ms = d > INT32_MAX ? INT32_MAX :
			d < INT32_MIN ? INT32_MIN : (int32_t)d;
}

static inline int64_t deadline_of(const struct rs_cache *c, const struct entry *e)
{
	return rs_sat_add(e->expires_ms, c->max_stale_ms);
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

/* Monotonic microseconds, for the profile: clock_ms is the wall clock
 * expiry runs on (tests stop it), not a stopwatch. */
static inline uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Lock without measuring: only for the statistics readers, so reading
 * the profile does not change it. */
static inline void lock(struct shard *s)
{
	pthread_mutex_lock(&s->lock);
}

/* Every other shard lock acquisition: try first, so an uncontended one
 * costs no clock read (a zero in the profile, counted in the shard);
 * only one that has to wait is timed.  The wait is added to *wait_us,
 * the calling operation's total for the slow-operation log. */
static inline void lock_timed(struct rs_cache *c, struct shard *s,
			      uint64_t *wait_us)
{
	uint64_t t0, us;

	if (pthread_mutex_trylock(&s->lock) == 0) {
		atomic_store_explicit(&s->lock_fast,
				      atomic_load_explicit(&s->lock_fast,
							   memory_order_relaxed) + 1,
				      memory_order_relaxed);
		return;
	}
	t0 = mono_us();
	pthread_mutex_lock(&s->lock);
	us = mono_us() - t0;
	rs_hist_record(&c->lock_wait_us, us);
	*wait_us += us;
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

/* The calling thread's sampling state (xorshift32; 0 = not seeded yet):
 * per thread, so choosing costs no shared write. */
extern _Thread_local uint32_t cache_sample_rng;

/* Is this call one of the 1 in profile_every the op-time histograms take?
 * At random, not every n-th: a counter would alias with any periodic mix
 * of calls (get, set, get, set ... and every 8th call is always a set). */
static inline bool sample_call(const struct rs_cache *c)
{
	uint32_t x = cache_sample_rng;

	if (!c->sample_mask)
		return true;
	if (!x)  /* seeded from the thread-local's own address */
		x = (uint32_t)(((uintptr_t)&cache_sample_rng >> 4) *
			       2654435761u) | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	cache_sample_rng = x;
	return (x & c->sample_mask) == 0;
}

/* What one public call measures of itself, for the profile and the
 * slow-operation log. */
struct op {
	const char *name;          /* "get", "set" ... as logged */
	const char *key_is;        /* "key"; "prefix" for purge */
	struct rs_hist *hist;      /* sampled: record the time here */
	bool timed;                /* sampled, or slow_op_us is on */
	uint64_t start_us;         /* mono_us() at entry, when timed */
	uint64_t lock_wait_us;     /* summed over its shard lock waits */
	uint64_t loader_us;        /* get_or_load: the loader ran this long */
	uint64_t load_wait_us;     /* get_or_load: waited for another's load */
};

/* Start timing a call for histogram h (NULL: none, for purge).  An
 * unsampled call with slow_op_us off reads no clock at all. */
static inline void op_start(struct rs_cache *c, struct op *op,
			    const char *name, struct rs_hist *h)
{
	*op = (struct op){ .name = name, .key_is = "key" };
	if (h && sample_call(c))
		op->hist = h;
	op->timed = op->hist || c->slow_op_us;
	if (op->timed)
		op->start_us = mono_us();
}

/* Record the call's time if sampled and, past slow_op_us, count and log
 * it.  No shard lock may be held. */
void cache_op_done(struct rs_cache *c, const struct op *op, const void *key,
		   size_t klen);

uint32_t cache_key_hash(const struct rs_cache *c, const void *key,
			size_t klen);
void cache_publish(struct shard *s, const struct rs_cache *c);
struct entry *cache_find(const struct rs_cache *c, const struct shard *s,
			 uint64_t h, const void *key, size_t klen);
void cache_drop(struct rs_cache *c, struct shard *s, struct entry *e,
		struct entry **dead);
uint64_t cache_evict(struct rs_cache *c, uint64_t want_e, uint64_t want_b,
		     uint64_t max_n, int64_t now, bool writer,
		     uint64_t *wait_us);
int cache_copy_out(const struct entry *e, struct rs_cache_value *out);
int cache_lookup_locked(struct rs_cache *c, struct shard *s, uint64_t h,
			const void *key, size_t klen, unsigned allow,
			int64_t now, bool count, struct rs_cache_value *out,
			struct entry **dead);
int cache_store(struct rs_cache *c, const void *key, size_t klen,
		const void *val, size_t vlen, int64_t stored_ms,
		int64_t expires_ms, int64_t now, uint64_t *wait_us,
		struct rs_err *err);
int cache_check_key(struct rs_cache *c, const void *key, size_t klen,
		    struct rs_err *err);
void cache_touch(struct rs_cache *c, struct shard *s, struct entry *e);
uint64_t cache_next_tick(struct rs_cache *c);

#endif
