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
#include "cache_int.h"

#include <stdio.h>

#include "log.h"

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

uint32_t cache_key_hash(const struct rs_cache *c, const void *key,
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

void cache_publish(struct shard *s, const struct rs_cache *c)
{
	atomic_store_explicit(&s->tail_tick,
			      s->tail ? s->tail->tick : UINT64_MAX,
			      memory_order_relaxed);
	atomic_store_explicit(&s->min_deadline_ms,
			      s->heap_len ? deadline_of(c, s->heap[0])
					  : INT64_MAX,
			      memory_order_relaxed);
}

struct entry *cache_find(const struct rs_cache *c, const struct shard *s,
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
void cache_drop(struct rs_cache *c, struct shard *s, struct entry *e,
		struct entry **dead)
{
	detach(c, s, e);
	release(c, 1, entry_bytes(e));
	e->hnext = *dead;
	*dead = e;
}

uint64_t cache_next_tick(struct rs_cache *c)
{
	return atomic_fetch_add_explicit(&c->tick, 1, memory_order_relaxed);
}

void cache_touch(struct rs_cache *c, struct shard *s, struct entry *e)
{
	e->tick = cache_next_tick(c);
	if (s->head != e) {
		lru_unlink(s, e);
		lru_push(s, e);
	}
}

/* --- eviction ------------------------------------------------------------- */

/* Evict until `want_e` entries and `want_b` bytes have been freed, at most
 * `max_n` entries: entries past their windows first, from any shard, then
 * the least recently used of the whole cache.  One shard lock at a time. */
uint64_t cache_evict(struct rs_cache *c, uint64_t want_e, uint64_t want_b,
		     uint64_t max_n, int64_t now, bool writer,
		     uint64_t *wait_us)
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
		lock_timed(c, s, wait_us);
		while (WANTED() && s->heap_len &&
		       deadline_of(c, s->heap[0]) <= now) {
			e = s->heap[0];
			got_e++;
			got_b += entry_bytes(e);
			cache_drop(c, s, e, &dead);
			s->n.evictions_expired++;
			if (writer)
				s->n.writer_evictions++;
		}
		cache_publish(s, c);
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
		lock_timed(c, best, wait_us);
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
			cache_drop(c, best, e, &dead);
		} else {
			empty++;
		}
		cache_publish(best, c);
		unlock(best);
		free_chain(dead);
	}
#undef WANTED
	return got_e;
}

/* --- lookup --------------------------------------------------------------- */

int cache_copy_out(const struct entry *e, struct rs_cache_value *out)
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
int cache_lookup_locked(struct rs_cache *c, struct shard *s, uint64_t h,
			const void *key, size_t klen, unsigned allow,
			int64_t now, bool count, struct rs_cache_value *out,
			struct entry **dead)
{
	struct entry *e = cache_find(c, s, h, key, klen);
	int st = RS_CACHE_MISS;
	bool ticket = false;
	int64_t past;

	if (count)
		s->n.gets++;
	if (!e)
		goto miss;
	if (now >= deadline_of(c, e)) {
		cache_drop(c, s, e, dead);
		s->n.expirations++;
		cache_publish(s, c);
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
	if (cache_copy_out(e, out) < 0)
		return -1;
	if (ticket) {
		set_refresh_until(e, rs_sat_add(now,
			c->swr_ms < RS_CACHE_REFRESH_TICKET_MS ?
			c->swr_ms : RS_CACHE_REFRESH_TICKET_MS));
		s->n.refresh_tickets++;
		if (out)
			out->refresh = true;
	}
	cache_touch(c, s, e);
	cache_publish(s, c);
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
	struct op op;
	uint64_t h;
	int st = RS_CACHE_MISS;

	op_start(c, &op, "get", &c->get_us);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!key || klen == 0 || klen > c->max_key)
		goto done;
	h = cache_key_hash(c, key, klen);
	s = shard_of(c, h);
	lock_timed(c, s, &op.lock_wait_us);
	st = cache_lookup_locked(c, s, h, key, klen, allow_stale, now_ms(c), true,
			   out, &dead);
	unlock(s);
	free_chain(dead);
done:
	cache_op_done(c, &op, key, klen);
	return st;
}

/* --- the profile ---------------------------------------------------------- */

/* key for a log line: bytes outside 0x20..0x7e, the quote and the
 * backslash as \xNN, at most KEY_SHOWN_MAX characters then "...", so a
 * binary or huge key can neither break the line nor bloat it. */
static void escape_key(char buf[KEY_LOGGED_BYTES], const void *key,
		       size_t klen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = key;
	size_t i, o = 0;

	for (i = 0; p && i < klen; i++) {
		bool plain = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' &&
			     p[i] != '\\';

		if (o + (plain ? 1 : 4) > KEY_SHOWN_MAX)
			break;
		if (plain) {
			buf[o++] = (char)p[i];
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[p[i] >> 4];
			buf[o++] = hex[p[i] & 15];
		}
	}
	if (p && i < klen) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

static double ms_of(uint64_t us)
{
	return (double)us / 1000.0;
}

/* A call over slow_op_us: counted always, logged unless warnings are off
 * (then the key is not even escaped). */
static void log_slow(struct rs_cache *c, const struct op *op, uint64_t us,
		     const void *key, size_t klen)
{
	char shown[KEY_LOGGED_BYTES], load[64] = "";

	atomic_fetch_add_explicit(&c->slow_ops, 1, memory_order_relaxed);
	if (RS_LOG_WARNING < rs_log_min_level)
		return;
	escape_key(shown, key, klen);
	if (op->loader_us)
		snprintf(load, sizeof(load), ", loader %.1f ms",
			 ms_of(op->loader_us));
	else if (op->load_wait_us)
		snprintf(load, sizeof(load),
			 ", waiting for another caller's load %.1f ms",
			 ms_of(op->load_wait_us));
	rs_log_write(RS_LOG_WARNING, NULL,
		     "slow cache %s: %.1f ms (lock wait %.1f ms%s) %s '%s'",
		     op->name, ms_of(us), ms_of(op->lock_wait_us), load,
		     op->key_is, shown);
}

_Thread_local uint32_t cache_sample_rng;

void cache_op_done(struct rs_cache *c, const struct op *op, const void *key,
		   size_t klen)
{
	uint64_t us;

	if (!op->timed)
		return;
	us = mono_us() - op->start_us;
	if (op->hist)
		rs_hist_record(op->hist, us);
	if (c->slow_op_us && us > (uint64_t)c->slow_op_us)
		log_slow(c, op, us, key, klen);
}

/* --- store ---------------------------------------------------------------- */

int cache_check_key(struct rs_cache *c, const void *key, size_t klen,
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
static void remove_key(struct rs_cache *c, const void *key, size_t klen,
		       uint64_t *wait_us)
{
	uint64_t h = cache_key_hash(c, key, klen);
	struct shard *s = shard_of(c, h);
	struct entry *e, *dead = NULL;

	lock_timed(c, s, wait_us);
	e = cache_find(c, s, h, key, klen);
	if (e) {
		cache_drop(c, s, e, &dead);
		cache_publish(s, c);
	}
	unlock(s);
	free_chain(dead);
}

/* Store with absolute times: 0 stored, 1 already past its windows at
 * `now`, -1.  The caller reads the clock once, so a set with a short TTL
 * cannot expire between computing its expiry and checking it. */
int cache_store(struct rs_cache *c, const void *key, size_t klen,
		const void *val, size_t vlen, int64_t stored_ms,
		int64_t expires_ms, int64_t now, uint64_t *wait_us,
		struct rs_err *err)
{
	size_t hdr = offsetof(struct entry, data);
	uint64_t ne, nb, cur_e, cur_b, want_e, want_b;
	struct entry *e, *old, *dead;
	struct shard *s;
	int round;

	if (cache_check_key(c, key, klen, err) < 0 ||
	    check_value(c, key, klen, val, vlen, err) < 0)
		goto rejected;
	if (now >= rs_sat_add(expires_ms, c->max_stale_ms)) {
		remove_key(c, key, klen, wait_us);
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
	e->hash = cache_key_hash(c, key, klen);
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
		lock_timed(c, s, wait_us);
		old = cache_find(c, s, e->hash, key, klen);
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
		    cache_evict(c, want_e, want_b, UINT64_MAX, now, true,
				wait_us) == 0)
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
	e->tick = cache_next_tick(c);
	link_entry(c, s, e);
	s->n.sets++;
	cache_publish(s, c);
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
	struct op op;
	int64_t now;
	int rc;

	op_start(c, &op, "set", &c->set_us);
	now = now_ms(c);
	if (ttl_ms < 0)
		ttl_ms = c->default_ttl_ms;
	rc = cache_store(c, key, klen, val, vlen, now, rs_sat_add(now, ttl_ms),
			 now, &op.lock_wait_us, err);
	cache_op_done(c, &op, key, klen);
	return rc;
}

int rs_cache_set_at(struct rs_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, int64_t stored_ms,
		    int64_t expires_ms, struct rs_err *err)
{
	struct op op;
	int rc;

	op_start(c, &op, "set_at", &c->set_us);
	rc = cache_store(c, key, klen, val, vlen, stored_ms, expires_ms,
			 now_ms(c), &op.lock_wait_us, err);
	cache_op_done(c, &op, key, klen);
	return rc;
}

int rs_cache_delete(struct rs_cache *c, const void *key, size_t klen)
{
	struct entry *e = NULL, *dead = NULL;
	struct shard *s;
	struct op op;
	uint64_t h;

	op_start(c, &op, "delete", &c->delete_us);
	if (!key || klen == 0 || klen > c->max_key)
		goto done;
	h = cache_key_hash(c, key, klen);
	s = shard_of(c, h);
	lock_timed(c, s, &op.lock_wait_us);
	e = cache_find(c, s, h, key, klen);
	if (e) {
		cache_drop(c, s, e, &dead);
		s->n.deletes++;
		cache_publish(s, c);
	}
	unlock(s);
	free_chain(dead);
done:
	cache_op_done(c, &op, key, klen);
	return e ? 1 : 0;
}

uint64_t rs_cache_purge(struct rs_cache *c, const void *prefix, size_t plen)
{
	struct entry *e, *next, *dead;
	uint64_t n = 0;
	struct op op;
	size_t i;

	op_start(c, &op, "purge", NULL);
	op.key_is = "prefix";
	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];

		dead = NULL;
		lock_timed(c, s, &op.lock_wait_us);
		for (e = s->head; e; e = next) {
			next = e->next;
			if (plen && (e->klen < plen ||
				     memcmp(key_of(e), prefix, plen) != 0))
				continue;
			cache_drop(c, s, e, &dead);
			s->n.purged++;
			n++;
		}
		cache_publish(s, c);
		unlock(s);
		free_chain(dead);
	}
	cache_op_done(c, &op, prefix, plen);
	return n;
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
	if (o->profile_every && (!rs_is_power_of_two(o->profile_every) ||
				 o->profile_every > RS_CACHE_MAX_PROFILE_EVERY))
		return rs_err_set(err,
				  "profile_every is %u, must be a power of two up to %d",
				  o->profile_every, RS_CACHE_MAX_PROFILE_EVERY);
	if (o->slow_op_us < 0)
		return rs_err_set(err,
				  "slow_op_us is %lld, must not be negative",
				  (long long)o->slow_op_us);
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
	c->slow_op_us = opt->slow_op_us;
	c->sample_mask = (opt->profile_every ? opt->profile_every :
			  RS_CACHE_DEFAULT_PROFILE_EVERY) - 1;
	rs_hist_init(&c->get_us);
	rs_hist_init(&c->set_us);
	rs_hist_init(&c->delete_us);
	rs_hist_init(&c->load_us);
	rs_hist_init(&c->lock_wait_us);
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

