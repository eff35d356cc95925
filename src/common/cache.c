/*
 * cache: see cache.h for the contract.
 *
 * Each shard owns a chained hash table (doubles at load factor 1), an
 * intrusive LRU list (head = most recent), a binary min-heap of its entries
 * by expiry, its in-flight loads and its counters, all under its mutex.
 * The cache-wide entry and byte counters are atomics that a writer reserves
 * room in (compare-and-swap against the bound) before it links an entry,
 * so they never exceed the bounds, not even for an instant.
 *
 * Deliberate quirks:
 *  - Recency is a cache-wide tick (one atomic increment per touch), not the
 *    clock, so LRU order is exact across shards whatever the clock's
 *    resolution.  Each shard publishes its LRU tail's tick and its earliest
 *    deadline in relaxed atomics: an evicting thread picks a victim shard
 *    without taking any lock, then locks only that one.  The hints may be
 *    a little out of date; the victim is then merely nearly the oldest.
 *  - Eviction and the sweep walk the expiry heap, not the LRU list, so an
 *    entry past its windows is found wherever recency left it.
 *  - Entries are freed after their shard lock is dropped; the global
 *    counters drop as the entry is unlinked, so for a moment the process
 *    holds a little more memory than is accounted.
 */
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

/* --- hashing -------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                             \
	do {                                                                 \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);    \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                       \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                       \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);    \
	} while (0)

/* SipHash-1-3 (Aumasson & Bernstein; the variant Rust and Python use for
 * hash tables): keyed, so clients that choose keys cannot aim them all at
 * one bucket without knowing the per-cache seed. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data,
			  size_t len)
{
	const unsigned char *p = data;
	const unsigned char *end = p + (len & ~(size_t)7);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i;

	for (; p != end; p += 8) {
		memcpy(&m, p, sizeof(m));
		m = le64toh(m);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t key_hash(const struct rs_cache *c, const void *key,
			 size_t klen)
{
	return (uint32_t)siphash13(c->sip_k0, c->sip_k1, key, klen);
}

static int seed_hash(struct rs_cache *c, struct rs_err *err)
{
	uint64_t k[2];
	size_t got = 0;
	ssize_t n;
	int fd, e;

	while (got < sizeof(k)) {
		n = getrandom((char *)k + got, sizeof(k) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(k)) {
		/* getrandom can be missing (old kernel) or filtered. */
		fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return rs_err_errno(err, errno,
					    "cannot seed the cache hash");
		got = 0;
		errno = 0;
		while (got < sizeof(k)) {
			n = read(fd, (char *)k + got, sizeof(k) - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		e = errno;
		close(fd);
		if (got < sizeof(k))
			return rs_err_errno(err, e ? e : EIO,
					    "cannot read '/dev/urandom'");
	}
	c->sip_k0 = k[0];
	c->sip_k1 = k[1];
	return 0;
}

/* --- small helpers -------------------------------------------------------- */

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t now_ms(const struct rs_cache *c)
{
	return c->clock_ms ? c->clock_ms(c->clock_arg) : rs_now_ms();
}

static int shown_len(size_t klen)
{
	return (int)(klen > KEY_SHOWN_MAX ? KEY_SHOWN_MAX : klen);
}

static const char *shown_more(size_t klen)
{
	return klen > KEY_SHOWN_MAX ? "..." : "";
}

static const char *key_of(const struct entry *e)
{
	return e->data;
}

static const char *val_of(const struct entry *e)
{
	return e->data + e->klen + 1;
}

static uint32_t entry_bytes(const struct entry *e)
{
	return (uint32_t)(malloc_usable_size((void *)e) +
			  RS_CACHE_INDEX_BYTES_PER_ENTRY);
}

static int64_t stored_of(const struct entry *e)
{
	return e->expires_ms - (int64_t)e->age_ms;
}

static int64_t refresh_until(const struct entry *e)
{
	return sat_add(e->expires_ms, e->refresh_ms);
}

static void set_refresh_until(struct entry *e, int64_t at)
{
	int64_t d = at - e->expires_ms;

	e->refresh_ms = d > INT32_MAX ? INT32_MAX :
			d < INT32_MIN ? INT32_MIN : (int32_t)d;
}

static int64_t deadline_of(const struct rs_cache *c, const struct entry *e)
{
	return sat_add(e->expires_ms, c->max_stale_ms);
}

static struct shard *shard_of(struct rs_cache *c, uint64_t h)
{
	return &c->shards[h & (c->nshards - 1)];
}

static size_t bucket_of(const struct rs_cache *c, const struct shard *s,
			uint64_t h)
{
	return (size_t)(h >> c->shard_bits) & (s->nbuckets - 1);
}

static void lock(struct shard *s)
{
	pthread_mutex_lock(&s->lock);
}

static void unlock(struct shard *s)
{
	pthread_mutex_unlock(&s->lock);
}

static void free_chain(struct entry *e)
{
	struct entry *next;

	for (; e; e = next) {
		next = e->hnext;
		free(e);
	}
}

/* --- the bounded counters ------------------------------------------------- */

static bool reserve_one(_Atomic uint64_t *ctr, uint64_t n, uint64_t max)
{
	uint64_t cur = atomic_load_explicit(ctr, memory_order_relaxed);

	do {
		if (n > max || cur > max - n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(ctr, &cur, cur + n,
							memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

/* Take room for ne entries and nb bytes, both or neither. */
static bool reserve(struct rs_cache *c, uint64_t ne, uint64_t nb)
{
	if (ne && !reserve_one(&c->entries, ne, c->max_entries))
		return false;
	if (nb && !reserve_one(&c->bytes, nb, c->max_bytes)) {
		if (ne)
			atomic_fetch_sub_explicit(&c->entries, ne,
						  memory_order_relaxed);
		return false;
	}
	return true;
}

static void release(struct rs_cache *c, uint64_t ne, uint64_t nb)
{
	atomic_fetch_sub_explicit(&c->entries, ne, memory_order_relaxed);
	atomic_fetch_sub_explicit(&c->bytes, nb, memory_order_relaxed);
}

/* --- one shard: table, LRU, heap; all under s->lock ----------------------- */

static void publish(struct shard *s, const struct rs_cache *c)
{
	atomic_store_explicit(&s->tail_tick,
			      s->tail ? s->tail->tick : UINT64_MAX,
			      memory_order_relaxed);
	atomic_store_explicit(&s->min_deadline_ms,
			      s->heap_len ? deadline_of(c, s->heap[0])
					  : INT64_MAX,
			      memory_order_relaxed);
}

static struct entry *find(const struct rs_cache *c, const struct shard *s,
			  uint64_t h, const void *key, size_t klen)
{
	struct entry *e = s->buckets[bucket_of(c, s, h)];

	for (; e; e = e->hnext)
		if (e->hash == h && e->klen == klen &&
		    memcmp(key_of(e), key, klen) == 0)
			return e;
	return NULL;
}

static void heap_set(struct shard *s, uint32_t i, struct entry *e)
{
	s->heap[i] = e;
	e->heap_idx = i;
}

static void heap_up(struct shard *s, uint32_t i)
{
	struct entry *e = s->heap[i];
	uint32_t p;

	while (i > 0) {
		p = (i - 1) / 2;
		if (s->heap[p]->expires_ms <= e->expires_ms)
			break;
		heap_set(s, i, s->heap[p]);
		i = p;
	}
	heap_set(s, i, e);
}

static void heap_down(struct shard *s, uint32_t i)
{
	struct entry *e = s->heap[i];
	uint32_t l, m;

	for (;;) {
		l = 2 * i + 1;
		if (l >= s->heap_len)
			break;
		m = l;
		if (l + 1 < s->heap_len &&
		    s->heap[l + 1]->expires_ms < s->heap[l]->expires_ms)
			m = l + 1;
		if (s->heap[m]->expires_ms >= e->expires_ms)
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, e);
}

/* Make room for one more heap slot; the only step of linking that can fail,
 * so it is done before any room is reserved. */
static int heap_make_room(struct shard *s)
{
	struct entry **h;
	uint32_t cap;

	if (s->heap_len < s->heap_cap)
		return 0;
	if (s->heap_cap > UINT32_MAX / 2)
		return -1;
	cap = s->heap_cap ? s->heap_cap * 2 : BUCKETS_INITIAL;
	h = realloc(s->heap, cap * sizeof(*h));
	if (!h)
		return -1;
	s->heap = h;
	s->heap_cap = cap;
	return 0;
}

/* A failed grow only lengthens the chains, so it is not an error. */
static void grow_buckets(const struct rs_cache *c, struct shard *s)
{
	size_t nb = s->nbuckets * 2, i, j;
	struct entry **b, *e, *next;

	if (nb > SIZE_MAX / sizeof(*b) || !(b = calloc(nb, sizeof(*b))))
		return;
	for (i = 0; i < s->nbuckets; i++) {
		for (e = s->buckets[i]; e; e = next) {
			next = e->hnext;
			j = (size_t)(e->hash >> c->shard_bits) & (nb - 1);
			e->hnext = b[j];
			b[j] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

static void lru_unlink(struct shard *s, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct shard *s, struct entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	else
		s->tail = e;
	s->head = e;
}

/* Needs heap_make_room() first. */
static void link_entry(const struct rs_cache *c, struct shard *s,
		       struct entry *e)
{
	size_t b = bucket_of(c, s, e->hash);

	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	lru_push(s, e);
	heap_set(s, s->heap_len++, e);
	heap_up(s, e->heap_idx);
	s->entries++;
	s->bytes += entry_bytes(e);
	if (s->entries > s->nbuckets)
		grow_buckets(c, s);
}

/* Unlink from the shard; the caller releases the global counters and
 * frees the entry after unlocking. */
static void detach(const struct rs_cache *c, struct shard *s,
		   struct entry *e)
{
	struct entry **pp = &s->buckets[bucket_of(c, s, e->hash)];
	struct entry *last;
	uint32_t i = e->heap_idx;

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(s, e);
	last = s->heap[--s->heap_len];
	if (i < s->heap_len) {
		heap_set(s, i, last);
		heap_up(s, i);
		heap_down(s, last->heap_idx);
	}
	s->entries--;
	s->bytes -= entry_bytes(e);
	e->hnext = NULL;
}

/* Detach, release the room and queue e on *dead for freeing. */
static void drop(struct rs_cache *c, struct shard *s, struct entry *e,
		 struct entry **dead)
{
	detach(c, s, e);
	release(c, 1, entry_bytes(e));
	e->hnext = *dead;
	*dead = e;
}

static uint64_t next_tick(struct rs_cache *c)
{
	return atomic_fetch_add_explicit(&c->tick, 1, memory_order_relaxed);
}

static void touch(struct rs_cache *c, struct shard *s, struct entry *e)
{
	e->tick = next_tick(c);
	if (s->head != e) {
		lru_unlink(s, e);
		lru_push(s, e);
	}
}

/* --- eviction ------------------------------------------------------------- */

/* Evict until `want_e` entries and `want_b` bytes have been freed, at most
 * `max_n` entries: entries past their windows first, from any shard, then
 * the least recently used of the whole cache.  One shard lock at a time. */
static uint64_t evict(struct rs_cache *c, uint64_t want_e, uint64_t want_b,
		      uint64_t max_n, int64_t now, bool writer)
{
	uint64_t got_e = 0, got_b = 0, tt, best_tick;
	struct shard *s, *best;
	struct entry *e, *dead;
	size_t i, empty = 0;

#define WANTED() ((got_e < want_e || got_b < want_b) && got_e < max_n)
	for (i = 0; i < c->nshards && WANTED(); i++) {
		s = &c->shards[i];
		if (atomic_load_explicit(&s->min_deadline_ms,
					 memory_order_relaxed) > now)
			continue;
		dead = NULL;
		lock(s);
		while (WANTED() && s->heap_len &&
		       deadline_of(c, s->heap[0]) <= now) {
			e = s->heap[0];
			got_e++;
			got_b += entry_bytes(e);
			drop(c, s, e, &dead);
			s->n.evictions_expired++;
			if (writer)
				s->n.writer_evictions++;
		}
		publish(s, c);
		unlock(s);
		free_chain(dead);
	}
	/* An empty victim means another thread got there first; its hint is
	 * then fresh, so a few retries settle it. */
	while (WANTED() && empty < 2 * c->nshards) {
		best = NULL;
		best_tick = UINT64_MAX;
		for (i = 0; i < c->nshards; i++) {
			tt = atomic_load_explicit(&c->shards[i].tail_tick,
						  memory_order_relaxed);
			if (tt < best_tick) {
				best_tick = tt;
				best = &c->shards[i];
			}
		}
		if (!best)
			break;
		dead = NULL;
		lock(best);
		e = best->tail;
		if (e) {
			got_e++;
			got_b += entry_bytes(e);
			if (deadline_of(c, e) <= now)
				best->n.evictions_expired++;
			else
				best->n.evictions_lru++;
			if (writer)
				best->n.writer_evictions++;
			drop(c, best, e, &dead);
		} else {
			empty++;
		}
		publish(best, c);
		unlock(best);
		free_chain(dead);
	}
#undef WANTED
	return got_e;
}

/* --- lookup --------------------------------------------------------------- */

static int copy_out(const struct entry *e, struct rs_cache_value *out)
{
	if (!out)
		return 0;
	out->data = malloc((size_t)e->vlen + 1);
	if (!out->data)
		return -1;
	memcpy(out->data, val_of(e), (size_t)e->vlen + 1);
	out->len = e->vlen;
	out->stored_ms = stored_of(e);
	out->expires_ms = e->expires_ms;
	out->refresh = false;
	return 0;
}

/* The heart of get, under s->lock.  `count` is false for the second look
 * a failed load takes, so one call is one get in the statistics. */
static int lookup_locked(struct rs_cache *c, struct shard *s, uint64_t h,
			 const void *key, size_t klen, unsigned allow,
			 int64_t now, bool count, struct rs_cache_value *out,
			 struct entry **dead)
{
	struct entry *e = find(c, s, h, key, klen);
	int st = RS_CACHE_MISS;
	bool ticket = false;
	int64_t past;

	if (count)
		s->n.gets++;
	if (!e)
		goto miss;
	if (now >= deadline_of(c, e)) {
		drop(c, s, e, dead);
		s->n.expirations++;
		publish(s, c);
		goto miss;
	}
	if (now < e->expires_ms) {
		st = RS_CACHE_HIT;
	} else {
		past = now - e->expires_ms;
		if ((allow & RS_CACHE_ALLOW_REVALIDATE) && past < c->swr_ms) {
			st = RS_CACHE_STALE;
			ticket = now >= refresh_until(e);
		} else if ((allow & RS_CACHE_ALLOW_ERROR) &&
			   past < c->sie_ms) {
			st = RS_CACHE_STALE;
		} else {
			goto miss;
		}
	}
	if (copy_out(e, out) < 0)
		return -1;
	if (ticket) {
		set_refresh_until(e, sat_add(now,
			c->swr_ms < RS_CACHE_REFRESH_TICKET_MS ?
			c->swr_ms : RS_CACHE_REFRESH_TICKET_MS));
		s->n.refresh_tickets++;
		if (out)
			out->refresh = true;
	}
	touch(c, s, e);
	publish(s, c);
	if (count) {
		if (st == RS_CACHE_HIT)
			s->n.hits++;
		else
			s->n.stale_hits++;
	}
	return st;
miss:
	if (count)
		s->n.misses++;
	return RS_CACHE_MISS;
}

void rs_cache_value_free(struct rs_cache_value *v)
{
	if (!v)
		return;
	free(v->data);
	v->data = NULL;
	v->len = 0;
}

int rs_cache_get(struct rs_cache *c, const void *key, size_t klen,
		 unsigned allow_stale, struct rs_cache_value *out)
{
	struct entry *dead = NULL;
	struct shard *s;
	uint64_t h;
	int st;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!key || klen == 0 || klen > c->max_key)
		return RS_CACHE_MISS;
	h = key_hash(c, key, klen);
	s = shard_of(c, h);
	lock(s);
	st = lookup_locked(c, s, h, key, klen, allow_stale, now_ms(c), true,
			   out, &dead);
	unlock(s);
	free_chain(dead);
	return st;
}

/* --- store ---------------------------------------------------------------- */

static int check_key(struct rs_cache *c, const void *key, size_t klen,
		     struct rs_err *err)
{
	if (!key || klen == 0)
		return rs_err_set(err, "key is empty");
	if (klen > c->max_key)
		return rs_err_set(err, "key is %zu bytes, at most %zu allowed",
				  klen, c->max_key);
	return 0;
}

static int check_value(struct rs_cache *c, const void *key, size_t klen,
		       const void *val, size_t vlen, struct rs_err *err)
{
	if (!val && vlen)
		return rs_err_set(err, "value of '%.*s%s' is NULL",
				  shown_len(klen), (const char *)key,
				  shown_more(klen));
	if (vlen > c->max_value)
		return rs_err_set(err,
				  "value of '%.*s%s' is %zu bytes, at most %zu allowed",
				  shown_len(klen), (const char *)key,
				  shown_more(klen), vlen, c->max_value);
	return 0;
}

/* Remove key's entry, if any, without counting it as a delete. */
static void remove_key(struct rs_cache *c, const void *key, size_t klen)
{
	uint64_t h = key_hash(c, key, klen);
	struct shard *s = shard_of(c, h);
	struct entry *e, *dead = NULL;

	lock(s);
	e = find(c, s, h, key, klen);
	if (e) {
		drop(c, s, e, &dead);
		publish(s, c);
	}
	unlock(s);
	free_chain(dead);
}

/* Store with absolute times: 0 stored, 1 already past its windows at
 * `now`, -1.  The caller reads the clock once, so a set with a short TTL
 * cannot expire between computing its expiry and checking it. */
static int store(struct rs_cache *c, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t stored_ms,
		 int64_t expires_ms, int64_t now, struct rs_err *err)
{
	size_t hdr = offsetof(struct entry, data);
	uint64_t ne, nb, cur_e, cur_b, want_e, want_b;
	struct entry *e, *old, *dead;
	struct shard *s;
	int round;

	if (check_key(c, key, klen, err) < 0 ||
	    check_value(c, key, klen, val, vlen, err) < 0)
		goto rejected;
	if (now >= sat_add(expires_ms, c->max_stale_ms)) {
		remove_key(c, key, klen);
		return 1;
	}
	/* The allocation is at least this large: refuse before trying. */
	if (hdr + klen + vlen + 2 + RS_CACHE_INDEX_BYTES_PER_ENTRY >
	    c->max_bytes)
		goto too_big;
	e = malloc(hdr + klen + vlen + 2);
	if (!e)
		return rs_err_set(err, "out of memory");
	memset(e, 0, hdr);
	memcpy(e->data, key, klen);
	e->data[klen] = '\0';
	if (vlen)
		memcpy(e->data + klen + 1, val, vlen);
	e->data[klen + 1 + vlen] = '\0';
	e->klen = (uint16_t)klen;
	e->vlen = (uint32_t)vlen;
	e->hash = key_hash(c, key, klen);
	e->expires_ms = expires_ms;
	e->age_ms = stored_ms > expires_ms ? 0 :
		    expires_ms - stored_ms > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)(expires_ms - stored_ms);
	e->refresh_ms = INT32_MIN;      /* no ticket out */
	if (entry_bytes(e) > c->max_bytes) {
		free(e);
		goto too_big;
	}
	s = shard_of(c, e->hash);
	for (round = 0;; round++) {
		lock(s);
		old = find(c, s, e->hash, key, klen);
		ne = old ? 0 : 1;
		nb = old ? (entry_bytes(e) > entry_bytes(old) ? entry_bytes(e) - entry_bytes(old) : 0)
			 : entry_bytes(e);
		if (!old && heap_make_room(s) < 0) {
			unlock(s);
			free(e);
			return rs_err_set(err, "out of memory");
		}
		if (reserve(c, ne, nb))
			break;
		unlock(s);
		if (round == SET_ROUNDS_MAX) {
			rs_err_set(err,
				   "no room for '%.*s%s' (%u bytes) after %d eviction rounds",
				   shown_len(klen), (const char *)key,
				   shown_more(klen), entry_bytes(e), round);
			free(e);
			atomic_fetch_add_explicit(&c->no_room, 1,
						  memory_order_relaxed);
			return -1;
		}
		cur_e = atomic_load_explicit(&c->entries, memory_order_relaxed);
		cur_b = atomic_load_explicit(&c->bytes, memory_order_relaxed);
		want_e = cur_e + ne > c->max_entries ?
			 cur_e + ne - c->max_entries : 0;
		want_b = cur_b + nb > c->max_bytes ?
			 cur_b + nb - c->max_bytes : 0;
		if ((want_e || want_b) &&
		    evict(c, want_e, want_b, UINT64_MAX, now, true) == 0)
			sched_yield();  /* the room is in other sets' hands */
	}
	/* Room is reserved and s is locked. */
	dead = NULL;
	if (old) {
		detach(c, s, old);
		if (entry_bytes(old) > entry_bytes(e))
			atomic_fetch_sub_explicit(&c->bytes,
						  entry_bytes(old) - entry_bytes(e),
						  memory_order_relaxed);
		dead = old;
	}
	e->tick = next_tick(c);
	link_entry(c, s, e);
	s->n.sets++;
	publish(s, c);
	unlock(s);
	free_chain(dead);
	atomic_fetch_add_explicit(&c->sets_total, 1, memory_order_relaxed);
	return 0;

too_big:
	rs_err_set(err,
		   "entry for '%.*s%s' needs more than max_memory_bytes (%llu): key %zu bytes, value %zu bytes",
		   shown_len(klen), (const char *)key, shown_more(klen),
		   (unsigned long long)c->max_bytes, klen, vlen);
rejected:
	atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
	return -1;
}

int rs_cache_set(struct rs_cache *c, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t ttl_ms,
		 struct rs_err *err)
{
	int64_t now = now_ms(c);

	if (ttl_ms < 0)
		ttl_ms = c->default_ttl_ms;
	return store(c, key, klen, val, vlen, now, sat_add(now, ttl_ms), now,
		     err);
}

int rs_cache_set_at(struct rs_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, int64_t stored_ms,
		    int64_t expires_ms, struct rs_err *err)
{
	return store(c, key, klen, val, vlen, stored_ms, expires_ms, now_ms(c),
		     err);
}

int rs_cache_delete(struct rs_cache *c, const void *key, size_t klen)
{
	struct entry *e, *dead = NULL;
	struct shard *s;
	uint64_t h;

	if (!key || klen == 0 || klen > c->max_key)
		return 0;
	h = key_hash(c, key, klen);
	s = shard_of(c, h);
	lock(s);
	e = find(c, s, h, key, klen);
	if (e) {
		drop(c, s, e, &dead);
		s->n.deletes++;
		publish(s, c);
	}
	unlock(s);
	free_chain(dead);
	return e ? 1 : 0;
}

uint64_t rs_cache_purge(struct rs_cache *c, const void *prefix, size_t plen)
{
	struct entry *e, *next, *dead;
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];

		dead = NULL;
		lock(s);
		for (e = s->head; e; e = next) {
			next = e->next;
			if (plen && (e->klen < plen ||
				     memcmp(key_of(e), prefix, plen) != 0))
				continue;
			drop(c, s, e, &dead);
			s->n.purged++;
			n++;
		}
		publish(s, c);
		unlock(s);
		free_chain(dead);
	}
	return n;
}

/* --- single flight -------------------------------------------------------- */

static struct flight *find_flight(struct shard *s, uint64_t h,
				  const void *key, size_t klen)
{
	struct flight *f;

	for (f = s->flights; f; f = f->next)
		if (f->hash == h && f->klen == klen &&
		    memcmp(f->key, key, klen) == 0)
			return f;
	return NULL;
}

static void unlink_flight(struct shard *s, struct flight *f)
{
	struct flight **pp = &s->flights;

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
}

static void free_flight(struct flight *f)
{
	if (!f)
		return;
	pthread_cond_destroy(&f->cond);
	free(f->val);
	free(f);
}

/* What a finished flight means for one of its callers, under s->lock. */
static int flight_result(struct rs_cache *c, struct shard *s,
			 struct flight *f, struct rs_cache_value *out,
			 struct entry **dead, struct rs_err *err)
{
	int st;

	if (f->ok) {
		if (out) {
			out->data = malloc(f->vlen + 1);
			if (!out->data)
				return rs_err_set(err, "out of memory");
			memcpy(out->data, f->val, f->vlen + 1);
			out->len = f->vlen;
			out->stored_ms = f->stored_ms;
			out->expires_ms = f->expires_ms;
		}
		return RS_CACHE_MISS;
	}
	st = lookup_locked(c, s, f->hash, f->key, f->klen,
			   RS_CACHE_ALLOW_ERROR, now_ms(c), false, out, dead);
	if (st == RS_CACHE_STALE)
		return st;
	if (st < 0)
		return rs_err_set(err, "out of memory");
	return rs_err_set(err, "%s", f->msg);
}

static void deadline_in(struct timespec *ts, int64_t wait_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (wait_ms < 0)
		wait_ms = 0;
	ts->tv_sec += (time_t)(wait_ms / 1000);
	ts->tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A waiter's side: s is locked and f->refs counts us. */
static int wait_flight(struct rs_cache *c, struct shard *s, struct flight *f,
		       int64_t wait_ms, struct rs_cache_value *out,
		       struct entry **dead, struct flight **gone,
		       struct rs_err *err)
{
	struct timespec ts;
	int rc = 0, st;

	deadline_in(&ts, wait_ms);
	while (!f->done && rc == 0)
		rc = pthread_cond_timedwait(&f->cond, &s->lock, &ts);
	if (f->done) {
		st = flight_result(c, s, f, out, dead, err);
	} else {
		s->n.load_timeouts++;
		st = rs_err_set(err,
				"timed out waiting for the load of '%.*s%s'",
				shown_len(f->klen), f->key,
				shown_more(f->klen));
	}
	if (--f->refs == 0)
		*gone = f;
	return st;
}

/* The leader's side, no lock held: run the loader, store and publish. */
static int lead_flight(struct rs_cache *c, struct shard *s, struct flight *f,
		       rs_cache_loader load, void *arg,
		       struct rs_cache_value *out, struct rs_err *err)
{
	struct rs_err lerr = RS_ERR_INIT;
	struct entry *dead = NULL;
	struct flight *gone = NULL;
	void *val = NULL;
	char *copy = NULL;
	size_t vlen = 0;
	int64_t ttl = -1, now;
	int rc, st;

	rc = load(arg, f->key, f->klen, &val, &vlen, &ttl, &lerr);
	if (rc == 0 && !val && vlen)
		rc = rs_err_set(&lerr,
				"the loader of '%.*s%s' returned no value",
				shown_len(f->klen), f->key,
				shown_more(f->klen));
	if (rc == 0) {
		now = now_ms(c);
		if (ttl < 0)
			ttl = c->default_ttl_ms;
		f->stored_ms = now;
		f->expires_ms = sat_add(now, ttl);
		/* Still served when it cannot be cached (counted). */
		store(c, f->key, f->klen, val, vlen, f->stored_ms,
		      f->expires_ms, now, NULL);
		copy = malloc(vlen + 1);
		if (copy) {
			if (vlen)
				memcpy(copy, val, vlen);
			copy[vlen] = '\0';
		} else {
			rc = rs_err_set(&lerr, "out of memory");
		}
	} else if (!lerr.msg[0]) {
		rs_err_set(&lerr, "loading '%.*s%s' failed",
			   shown_len(f->klen), f->key, shown_more(f->klen));
	}
	free(val);

	lock(s);
	f->done = true;
	f->ok = rc == 0;
	f->val = copy;
	f->vlen = vlen;
	if (!f->ok) {
		memcpy(f->msg, lerr.msg, sizeof(f->msg));
		s->n.load_failures++;
	}
	unlink_flight(s, f);
	pthread_cond_broadcast(&f->cond);
	st = flight_result(c, s, f, out, &dead, err);
	if (--f->refs == 0)
		gone = f;
	unlock(s);
	free_chain(dead);
	free_flight(gone);
	return st;
}

int rs_cache_get_or_load(struct rs_cache *c, const void *key, size_t klen,
			 rs_cache_loader load, void *arg, int64_t wait_ms,
			 struct rs_cache_value *out, struct rs_err *err)
{
	struct entry *dead = NULL;
	struct flight *f, *gone = NULL;
	struct shard *s;
	uint64_t h;
	int st;

	if (out)
		memset(out, 0, sizeof(*out));
	if (check_key(c, key, klen, err) < 0)
		return -1;
	if (!load)
		return rs_err_set(err, "no loader for '%.*s%s'",
				  shown_len(klen), (const char *)key,
				  shown_more(klen));
	h = key_hash(c, key, klen);
	s = shard_of(c, h);
	lock(s);
	st = lookup_locked(c, s, h, key, klen, 0, now_ms(c), true, out, &dead);
	if (st != RS_CACHE_MISS) {
		unlock(s);
		free_chain(dead);
		if (st < 0)
			return rs_err_set(err, "out of memory");
		return st;
	}
	f = find_flight(s, h, key, klen);
	if (f) {
		f->refs++;
		s->n.load_waits++;
		st = wait_flight(c, s, f, wait_ms, out, &dead, &gone, err);
		unlock(s);
		free_chain(dead);
		free_flight(gone);
		return st;
	}
	f = calloc(1, sizeof(*f) + klen + 1);
	if (!f || pthread_cond_init(&f->cond, &c->condattr) != 0) {
		unlock(s);
		free_chain(dead);
		free(f);
		return rs_err_set(err, "out of memory");
	}
	f->hash = h;
	f->klen = klen;
	memcpy(f->key, key, klen);
	f->refs = 1;
	f->next = s->flights;
	s->flights = f;
	s->n.loads++;
	unlock(s);
	free_chain(dead);
	return lead_flight(c, s, f, load, arg, out, err);
}

/* --- housekeeping --------------------------------------------------------- */

uint64_t rs_cache_sweep(struct rs_cache *c, size_t max_per_shard)
{
	int64_t now = now_ms(c);
	struct entry *dead;
	uint64_t n = 0;
	size_t i, k;

	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];

		if (atomic_load_explicit(&s->min_deadline_ms,
					 memory_order_relaxed) > now)
			continue;
		dead = NULL;
		lock(s);
		for (k = 0; k < max_per_shard && s->heap_len &&
			    deadline_of(c, s->heap[0]) <= now; k++) {
			drop(c, s, s->heap[0], &dead);
			s->n.expirations++;
			n++;
		}
		publish(s, c);
		unlock(s);
		free_chain(dead);
	}
	return n;
}

/* Fold the sets since the last call into the EWMA; under rate_lock.  The
 * weight dt / (dt + tau) approximates 1 - exp(-dt / tau) without libm. */
static void update_rate(struct rs_cache *c, int64_t now)
{
	uint64_t sets = atomic_load_explicit(&c->sets_total,
					     memory_order_relaxed);
	double dt = (double)(now - c->rate_ms), inst, w;

	if (dt <= 0)
		return;
	inst = (double)(sets - c->rate_sets) * 1000.0 / dt;
	w = c->rate_known ? dt / (dt + RATE_TAU_MS) : 1.0;
	c->rate_per_s += w * (inst - c->rate_per_s);
	c->rate_known = true;
	c->rate_ms = now;
	c->rate_sets = sets;
}

static uint64_t water(uint64_t bound, double frac)
{
	return (uint64_t)((double)bound * frac);
}

uint64_t rs_cache_evict_background(struct rs_cache *c)
{
	int64_t now = now_ms(c);
	uint64_t e, b, low_e, low_b, mid_e, mid_b, batch, n;
	double rate, mid = (c->high_water + 1.0) / 2;

	e = atomic_load_explicit(&c->entries, memory_order_relaxed);
	b = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	low_e = water(c->max_entries, c->low_water);
	low_b = water(c->max_bytes, c->low_water);
	pthread_mutex_lock(&c->rate_lock);
	update_rate(c, now);
	rate = c->rate_per_s;
	if (e > water(c->max_entries, c->high_water) ||
	    b > water(c->max_bytes, c->high_water))
		c->bg_active = true;
	else if (e <= low_e && b <= low_b)
		c->bg_active = false;
	if (!c->bg_active) {
		pthread_mutex_unlock(&c->rate_lock);
		return 0;
	}
	pthread_mutex_unlock(&c->rate_lock);

	batch = (uint64_t)(BG_BATCH_BASE * (1.0 + rate / BG_RATE_UNIT));
	mid_e = water(c->max_entries, mid);
	mid_b = water(c->max_bytes, mid);
	if (e > mid_e || b > mid_b)
		batch *= 2;
	if (batch > BG_BATCH_MAX)
		batch = BG_BATCH_MAX;
	n = evict(c, e > low_e ? e - low_e : 0, b > low_b ? b - low_b : 0,
		  batch, now, false);

	e = atomic_load_explicit(&c->entries, memory_order_relaxed);
	b = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	if (e <= low_e && b <= low_b) {
		pthread_mutex_lock(&c->rate_lock);
		c->bg_active = false;
		pthread_mutex_unlock(&c->rate_lock);
	}
	return n;
}

/* --- snapshots and statistics --------------------------------------------- */

size_t rs_cache_num_shards(const struct rs_cache *c)
{
	return c->nshards;
}

void rs_cache_items_free(struct rs_cache_item *items, size_t n)
{
	size_t i;

	if (!items)
		return;
	for (i = 0; i < n; i++) {
		free(items[i].key);
		free(items[i].val);
	}
	free(items);
}

static void *dup_nul(const char *p, size_t len)
{
	char *d = malloc(len + 1);

	if (d)
		memcpy(d, p, len + 1);  /* entries keep the NUL */
	return d;
}

int rs_cache_shard_copy(struct rs_cache *c, size_t shard,
			struct rs_cache_item **items, size_t *n,
			struct rs_err *err)
{
	struct rs_cache_item *it = NULL, *t;
	int64_t now = now_ms(c);
	struct shard *s;
	struct entry *e;
	size_t k = 0;

	*items = NULL;
	*n = 0;
	if (shard >= c->nshards)
		return rs_err_set(err, "no shard %zu: the cache has %zu",
				  shard, c->nshards);
	s = &c->shards[shard];
	lock(s);
	if (s->entries) {
		it = calloc(s->entries, sizeof(*it));
		if (!it)
			goto oom;
	}
	for (e = s->tail; e; e = e->prev) {
		if (now >= deadline_of(c, e))
			continue;
		t = &it[k];
		t->key = dup_nul(key_of(e), e->klen);
		t->val = dup_nul(val_of(e), e->vlen);
		k++;
		if (!t->key || !t->val)
			goto oom;
		t->klen = e->klen;
		t->vlen = e->vlen;
		t->stored_ms = stored_of(e);
		t->expires_ms = e->expires_ms;
		t->bytes = entry_bytes(e);
	}
	unlock(s);
	if (k == 0) {
		free(it);
		it = NULL;
	}
	*items = it;
	*n = k;
	return 0;
oom:
	unlock(s);
	rs_cache_items_free(it, k);
	return rs_err_set(err, "out of memory");
}

static void add_counters(struct counters *sum, const struct counters *n)
{
	sum->gets += n->gets;
	sum->sets += n->sets;
	sum->hits += n->hits;
	sum->misses += n->misses;
	sum->stale_hits += n->stale_hits;
	sum->deletes += n->deletes;
	sum->purged += n->purged;
	sum->expirations += n->expirations;
	sum->evictions_expired += n->evictions_expired;
	sum->evictions_lru += n->evictions_lru;
	sum->writer_evictions += n->writer_evictions;
	sum->refresh_tickets += n->refresh_tickets;
	sum->loads += n->loads;
	sum->load_failures += n->load_failures;
	sum->load_waits += n->load_waits;
	sum->load_timeouts += n->load_timeouts;
}

int rs_cache_stats(struct rs_cache *c, struct rs_cache_stats *out,
		   struct rs_err *err)
{
	struct counters sum = { 0 };
	uint64_t ops = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->shards = calloc(c->nshards, sizeof(*out->shards));
	if (!out->shards)
		return rs_err_set(err, "out of memory");
	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];
		struct rs_cache_shard_stats *o = &out->shards[i];

		lock(s);
		add_counters(&sum, &s->n);
		o->entries = s->entries;
		o->bytes = s->bytes;
		o->gets = s->n.gets;
		o->sets = s->n.sets;
		unlock(s);
		ops += o->gets + o->sets;
	}
	/* A shard is hot when it takes more than HOT_SHARD_FACTOR times the
	 * mean, i.e. ops * nshards > factor * total. */
	if (ops >= HOT_SHARD_MIN_OPS)
		for (i = 0; i < c->nshards; i++)
			if ((out->shards[i].gets + out->shards[i].sets) *
			    c->nshards > HOT_SHARD_FACTOR * ops)
				out->hot_shards++;
	out->hits = sum.hits;
	out->misses = sum.misses;
	out->stale_hits = sum.stale_hits;
	out->sets = sum.sets;
	out->deletes = sum.deletes;
	out->purged = sum.purged;
	out->expirations = sum.expirations;
	out->evictions_expired = sum.evictions_expired;
	out->evictions_lru = sum.evictions_lru;
	out->writer_evictions = sum.writer_evictions;
	out->refresh_tickets = sum.refresh_tickets;
	out->loads = sum.loads;
	out->load_failures = sum.load_failures;
	out->load_waits = sum.load_waits;
	out->load_timeouts = sum.load_timeouts;
	out->rejected = atomic_load_explicit(&c->rejected,
					     memory_order_relaxed);
	out->no_room = atomic_load_explicit(&c->no_room, memory_order_relaxed);
	out->entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	out->max_entries = c->max_entries;
	out->max_memory_bytes = c->max_bytes;
	out->num_shards = c->nshards;
	pthread_mutex_lock(&c->rate_lock);
	update_rate(c, now_ms(c));
	out->insert_rate_per_s = c->rate_per_s;
	pthread_mutex_unlock(&c->rate_lock);
	return 0;
}

void rs_cache_stats_free(struct rs_cache_stats *s)
{
	if (!s)
		return;
	free(s->shards);
	s->shards = NULL;
}

/* --- life cycle ----------------------------------------------------------- */

static int check_options(const struct rs_cache_options *o, struct rs_err *err)
{
	double high = o->high_water ? o->high_water
				    : RS_CACHE_DEFAULT_HIGH_WATER;
	double low = o->low_water ? o->low_water : RS_CACHE_DEFAULT_LOW_WATER;

	if (o->num_shards && (!rs_is_power_of_two(o->num_shards) ||
			      o->num_shards > RS_CACHE_MAX_SHARDS))
		return rs_err_set(err,
				  "num_shards is %zu, must be a power of two up to %d",
				  o->num_shards, RS_CACHE_MAX_SHARDS);
	if (o->max_entries == 0 || o->max_entries > UINT32_MAX)
		return rs_err_set(err,
				  "max_entries is %llu, must be 1 to %llu",
				  (unsigned long long)o->max_entries,
				  (unsigned long long)UINT32_MAX);
	if (o->max_memory_bytes == 0)
		return rs_err_set(err, "max_memory_bytes must be positive");
	if (o->default_ttl_ms <= 0)
		return rs_err_set(err,
				  "default_ttl_ms is %lld, must be positive",
				  (long long)o->default_ttl_ms);
	if (o->stale_while_revalidate_ms < 0 || o->stale_if_error_ms < 0)
		return rs_err_set(err, "stale windows must not be negative");
	if (o->max_key_bytes > RS_CACHE_MAX_KEY_BYTES)
		return rs_err_set(err,
				  "max_key_bytes is %zu, at most %d allowed",
				  o->max_key_bytes, RS_CACHE_MAX_KEY_BYTES);
	if (o->max_value_bytes > RS_CACHE_MAX_VALUE_BYTES_LIMIT)
		return rs_err_set(err,
				  "max_value_bytes is %zu, at most %d allowed",
				  o->max_value_bytes,
				  RS_CACHE_MAX_VALUE_BYTES_LIMIT);
	if (!(low > 0 && low < high && high <= 1))
		return rs_err_set(err,
				  "water marks are low %g, high %g; need 0 < low < high <= 1",
				  low, high);
	return 0;
}

static void destroy_shard(struct shard *s)
{
	struct entry *e, *next;

	for (e = s->head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(s->buckets);
	free(s->heap);
	pthread_mutex_destroy(&s->lock);
}

int rs_cache_new(struct rs_cache **out, const struct rs_cache_options *opt,
		 struct rs_err *err)
{
	struct rs_cache *c;
	size_t i, j;

	*out = NULL;
	if (check_options(opt, err) < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return rs_err_set(err, "out of memory");
	c->nshards = opt->num_shards ? opt->num_shards
				     : RS_CACHE_DEFAULT_SHARDS;
	while (((size_t)1 << c->shard_bits) < c->nshards)
		c->shard_bits++;
	c->max_entries = opt->max_entries;
	c->max_bytes = opt->max_memory_bytes;
	c->default_ttl_ms = opt->default_ttl_ms;
	c->swr_ms = opt->stale_while_revalidate_ms;
	c->sie_ms = opt->stale_if_error_ms;
	c->max_stale_ms = c->swr_ms > c->sie_ms ? c->swr_ms : c->sie_ms;
	c->max_key = opt->max_key_bytes ? opt->max_key_bytes
					: RS_CACHE_MAX_KEY_BYTES;
	c->max_value = opt->max_value_bytes ? opt->max_value_bytes
					    : RS_CACHE_DEFAULT_MAX_VALUE_BYTES;
	c->high_water = opt->high_water ? opt->high_water
					: RS_CACHE_DEFAULT_HIGH_WATER;
	c->low_water = opt->low_water ? opt->low_water
				      : RS_CACHE_DEFAULT_LOW_WATER;
	c->clock_ms = opt->clock_ms;
	c->clock_arg = opt->clock_arg;
	if (seed_hash(c, err) < 0) {
		free(c);
		return -1;
	}
	if (pthread_condattr_init(&c->condattr) != 0) {
		free(c);
		return rs_err_set(err, "out of memory");
	}
	pthread_condattr_setclock(&c->condattr, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->rate_lock, NULL);
	c->rate_ms = now_ms(c);

	c->shards = aligned_alloc(_Alignof(struct shard),
				  c->nshards * sizeof(*c->shards));
	if (!c->shards)
		goto oom;
	memset(c->shards, 0, c->nshards * sizeof(*c->shards));
	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		atomic_init(&s->tail_tick, UINT64_MAX);
		atomic_init(&s->min_deadline_ms, INT64_MAX);
		s->nbuckets = BUCKETS_INITIAL;
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets) {
			for (j = 0; j <= i; j++)
				destroy_shard(&c->shards[j]);
			free(c->shards);
			goto oom;
		}
	}
	*out = c;
	return 0;
oom:
	pthread_mutex_destroy(&c->rate_lock);
	pthread_condattr_destroy(&c->condattr);
	free(c);
	return rs_err_set(err, "out of memory");
}

void rs_cache_free(struct rs_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nshards; i++)
		destroy_shard(&c->shards[i]);
	free(c->shards);
	pthread_mutex_destroy(&c->rate_lock);
	pthread_condattr_destroy(&c->condattr);
	free(c);
}
