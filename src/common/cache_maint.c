/* cache_maint: housekeeping (sweep, adaptive background eviction),
 * shard copies for snapshots, statistics (see cache.h). */
#include "cache_int.h"

/* --- housekeeping --------------------------------------------------------- */

uint64_t rs_cache_sweep(struct rs_cache *c, size_t max_per_shard)
{
	int64_t now = now_ms(c);
	struct entry *dead;
	uint64_t n = 0, wait_us = 0;
	size_t i, k;

	for (i = 0; i < c->nshards; i++) {
		struct shard *s = &c->shards[i];

		if (atomic_load_explicit(&s->min_deadline_ms,
					 memory_order_relaxed) > now)
			continue;
		dead = NULL;
		lock_timed(c, s, &wait_us);
		for (k = 0; k < max_per_shard && s->heap_len &&
			    deadline_of(c, s->heap[0]) <= now; k++) {
			cache_drop(c, s, s->heap[0], &dead);
			s->n.expirations++;
			n++;
		}
		cache_publish(s, c);
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
	uint64_t e, b, low_e, low_b, mid_e, mid_b, batch, n, wait_us = 0;
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
	n = cache_evict(c, e > low_e ? e - low_e : 0, b > low_b ? b - low_b : 0,
		  batch, now, false, &wait_us);

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
	uint64_t wait_us = 0;
	struct shard *s;
	struct entry *e;
	size_t k = 0;

	*items = NULL;
	*n = 0;
	if (shard >= c->nshards)
		return rs_err_set(err, "no shard %zu: the cache has %zu",
				  shard, c->nshards);
	s = &c->shards[shard];
	lock_timed(c, s, &wait_us);
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


/* --- the profile ---------------------------------------------------------- */

static void copy_hist(struct rs_hist *dst, const struct rs_hist *src)
{
	rs_hist_init(dst);
	rs_hist_merge(dst, src);
}

/* Add n zeros to h, which only the caller sees: the uncontended lock
 * acquisitions the shards counted instead of recording. */
static void add_zeros(struct rs_hist *h, uint64_t n)
{
	if (!n)
		return;
	atomic_fetch_add_explicit(&h->counts[rs_hist_index(0)], n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&h->total, n, memory_order_relaxed);
	atomic_store_explicit(&h->min, 0, memory_order_relaxed);
}

void rs_cache_profile(struct rs_cache *c, struct rs_cache_profile *out)
{
	uint64_t fast = 0;
	size_t i;

	for (i = 0; i < c->nshards; i++)
		fast += atomic_load_explicit(&c->shards[i].lock_fast,
					     memory_order_relaxed);
	copy_hist(&out->get_us, &c->get_us);
	copy_hist(&out->set_us, &c->set_us);
	copy_hist(&out->delete_us, &c->delete_us);
	copy_hist(&out->load_us, &c->load_us);
	copy_hist(&out->lock_wait_us, &c->lock_wait_us);
	add_zeros(&out->lock_wait_us, fast);
	out->slow_ops = atomic_load_explicit(&c->slow_ops,
					     memory_order_relaxed);
	out->sample_every = c->sample_mask + 1;
}
