/* cache: expiry, stale windows, both bounds, eviction order, accounting,
 * limits, purge, sweep, background eviction, statistics, single flight,
 * the profile and the slow-operation log.  Time is an injected clock
 * except where threads wait for real (the profile always times for real:
 * it reads the monotonic clock, not the injected one). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "tap.h"
#include "testlib.h"

static _Atomic int64_t clk;

static int64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&clk);
}

static struct rs_cache_options opts(void)
{
	struct rs_cache_options o = {
		.num_shards = 4,
		.max_entries = 10000,
		.max_memory_bytes = 64 * 1024 * 1024,
		.default_ttl_ms = 1000,
		.clock_ms = fake_clock,
	};

	return o;
}

static struct rs_cache *mk(const struct rs_cache_options *o)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c;

	if (rs_cache_new(&c, o, &err) < 0) {
		printf("# rs_cache_new: %s\n", err.msg);
		return NULL;
	}
	return c;
}

static int set_s(struct rs_cache *c, const char *k, const char *v,
		 int64_t ttl)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = rs_cache_set(c, k, strlen(k), v, strlen(v), ttl, &err);

	if (rc < 0)
		printf("# set '%s': %s\n", k, err.msg);
	return rc;
}

static int get_s(struct rs_cache *c, const char *k, unsigned allow,
		 struct rs_cache_value *v)
{
	return rs_cache_get(c, k, strlen(k), allow, v);
}

/* HIT or STALE status of k, freeing the copy. */
static int status(struct rs_cache *c, const char *k, unsigned allow)
{
	struct rs_cache_value v;
	int st = get_s(c, k, allow, &v);

	rs_cache_value_free(&v);
	return st;
}

static struct rs_cache_stats stats(struct rs_cache *c)
{
	struct rs_cache_stats s;

	if (rs_cache_stats(c, &s, NULL) < 0)
		memset(&s, 0, sizeof(s));
	return s;
}

/* Does every way of counting the bytes agree?  The global counter, the
 * shards' sums, and the accounted sizes of the entries copied out.  Each
 * entry's size is its allocation (at least header-less key + value + two
 * NULs) plus the index share, and not much more. */
static int accounting_agrees(struct rs_cache *c, const char *what)
{
	struct rs_cache_stats s = stats(c);
	uint64_t shard_e = 0, shard_b = 0, item_e = 0, item_b = 0;
	struct rs_cache_item *it;
	size_t i, j, n;
	int good = 1;

	for (i = 0; i < s.num_shards; i++) {
		shard_e += s.shards[i].entries;
		shard_b += s.shards[i].bytes;
		if (rs_cache_shard_copy(c, i, &it, &n, NULL) < 0)
			return 0;
		for (j = 0; j < n; j++) {
			size_t floor = it[j].klen + it[j].vlen + 2 +
				       RS_CACHE_INDEX_BYTES_PER_ENTRY;

			if (it[j].bytes < floor || it[j].bytes > floor + 256) {
				printf("# %s: '%s' accounted %zu, floor %zu\n",
				       what, (char *)it[j].key, it[j].bytes,
				       floor);
				good = 0;
			}
			item_b += it[j].bytes;
		}
		item_e += n;
		rs_cache_items_free(it, n);
	}
	if (s.bytes != shard_b || s.bytes != item_b || s.entries != shard_e ||
	    s.entries != item_e) {
		printf("# %s: bytes %llu shards %llu items %llu; entries %llu "
		       "shards %llu items %llu\n", what,
		       (unsigned long long)s.bytes,
		       (unsigned long long)shard_b, (unsigned long long)item_b,
		       (unsigned long long)s.entries,
		       (unsigned long long)shard_e,
		       (unsigned long long)item_e);
		good = 0;
	}
	rs_cache_stats_free(&s);
	return good;
}

static void test_options(void)
{
	struct rs_cache_options o = opts();
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c;

	o.num_shards = 3;
	ok(rs_cache_new(&c, &o, &err) < 0, "options: 3 shards refused");
	has_str(err.msg, "num_shards is 3, must be a power of two",
		"options: names num_shards");
	o = opts();
	o.max_key_bytes = 2000;
	ok(rs_cache_new(&c, &o, &err) < 0, "options: 2000-byte keys refused");
	has_str(err.msg, "max_key_bytes is 2000, at most 1024 allowed",
		"options: names max_key_bytes");
	o = opts();
	o.high_water = 0.5;
	o.low_water = 0.7;
	ok(rs_cache_new(&c, &o, &err) < 0, "options: low above high refused");
	has_str(err.msg, "need 0 < low < high", "options: names water marks");
}

static void test_expiry(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c = mk(&o);
	struct rs_cache_value v;
	int64_t t;
	int hits = 0, same = 1;
	struct rs_cache_stats s;

	atomic_store(&clk, 1000);
	set_s(c, "a", "alpha", 500);
	for (t = 1000; t < 1500; t += 7) {
		atomic_store(&clk, t);
		hits += get_s(c, "a", 0, &v) == RS_CACHE_HIT;
		same &= v.expires_ms == 1500 && v.stored_ms == 1000;
		rs_cache_value_free(&v);
	}
	atomic_store(&clk, 1499);
	is_int(status(c, "a", 0), RS_CACHE_HIT, "expiry: hit at t+ttl-1");
	is_int(hits, (1500 - 1000 + 6) / 7, "expiry: every get before t+ttl hits");
	ok(same, "expiry: 72 gets leave expiry and stored time alone");
	atomic_store(&clk, 1500);
	is_int(status(c, "a", 0), RS_CACHE_MISS,
	       "expiry: miss at t+ttl despite the reads");
	s = stats(c);
	is_int(s.expirations, 1, "expiry: lazy expiry counted");
	is_int(s.entries, 0, "expiry: expired entry removed on read");
	rs_cache_stats_free(&s);

	atomic_store(&clk, 0);
	set_s(c, "d", "default", -1);
	set_s(c, "p", "per-set", 50);
	get_s(c, "d", 0, &v);
	is_int(v.expires_ms, 1000, "expiry: default TTL applies");
	is_str(v.data, "default", "expiry: value copied");
	is_int(v.len, 7, "expiry: value length");
	rs_cache_value_free(&v);
	get_s(c, "p", 0, &v);
	is_int(v.expires_ms, 50, "expiry: per-set TTL overrides");
	rs_cache_value_free(&v);
	atomic_store(&clk, 60);
	is_int(status(c, "p", 0), RS_CACHE_MISS, "expiry: short TTL gone");
	is_int(status(c, "d", 0), RS_CACHE_HIT, "expiry: default TTL still fresh");
	rs_cache_free(c);
}

static void test_set_at(void)
{
	struct rs_cache_options o = opts();
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c = mk(&o);
	struct rs_cache_value v;

	atomic_store(&clk, 10000);
	is_int(rs_cache_set_at(c, "old", 3, "x", 1, 1000, 5000, &err), 1,
	       "set_at: expired entry not stored, returns 1");
	is_int(status(c, "old", RS_CACHE_ALLOW_ERROR), RS_CACHE_MISS,
	       "set_at: expired entry absent");
	set_s(c, "old", "older value", -1);
	is_int(rs_cache_set_at(c, "old", 3, "x", 1, 1000, 5000, &err), 1,
	       "set_at: expired write over a live entry returns 1");
	is_int(status(c, "old", 0), RS_CACHE_MISS,
	       "set_at: the superseded entry is gone");
	is_int(rs_cache_set_at(c, "fut", 3, "y", 1, 9000, 20000, &err), 0,
	       "set_at: future expiry stored");
	get_s(c, "fut", 0, &v);
	is_int(v.expires_ms, 20000, "set_at: expiry kept exactly");
	is_int(v.stored_ms, 9000, "set_at: stored time kept exactly");
	rs_cache_value_free(&v);
	rs_cache_free(c);

	o.stale_if_error_ms = 5000;
	c = mk(&o);
	is_int(rs_cache_set_at(c, "st", 2, "z", 1, 1000, 6000, &err), 0,
	       "set_at: past TTL but inside stale_if_error stored");
	is_int(status(c, "st", 0), RS_CACHE_MISS, "set_at: not fresh");
	is_int(status(c, "st", RS_CACHE_ALLOW_ERROR), RS_CACHE_STALE,
	       "set_at: served stale on error");
	rs_cache_free(c);
}

static void test_stale(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache_value v;
	struct rs_cache *c;
	struct rs_cache_stats s;
	int st;

	o.stale_while_revalidate_ms = 1000;
	o.stale_if_error_ms = 5000;
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "k", "v1", 100);
	atomic_store(&clk, 150);
	is_int(status(c, "k", 0), RS_CACHE_MISS,
	       "stale: past TTL a plain get misses");
	st = get_s(c, "k", RS_CACHE_ALLOW_REVALIDATE, &v);
	is_int(st, RS_CACHE_STALE, "stale: revalidate window serves stale");
	ok(v.refresh, "stale: first caller gets the refresh ticket");
	is_str(v.data, "v1", "stale: stale value");
	rs_cache_value_free(&v);
	get_s(c, "k", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(!v.refresh, "stale: second caller gets no ticket");
	rs_cache_value_free(&v);
	get_s(c, "k", RS_CACHE_ALLOW_ERROR, &v);
	ok(!v.refresh, "stale: error window never hands out tickets");
	rs_cache_value_free(&v);
	atomic_store(&clk, 1100);
	is_int(status(c, "k", RS_CACHE_ALLOW_REVALIDATE), RS_CACHE_MISS,
	       "stale: revalidate window ends at expiry + window");
	is_int(status(c, "k", RS_CACHE_ALLOW_ERROR), RS_CACHE_STALE,
	       "stale: error window still serves");
	atomic_store(&clk, 5099);
	is_int(status(c, "k", RS_CACHE_ALLOW_ERROR | RS_CACHE_ALLOW_REVALIDATE),
	       RS_CACHE_STALE, "stale: last ms of the error window");
	atomic_store(&clk, 5100);
	is_int(status(c, "k", RS_CACHE_ALLOW_ERROR), RS_CACHE_MISS,
	       "stale: past both windows misses");
	s = stats(c);
	is_int(s.entries, 0, "stale: entry past both windows removed");
	is_int(s.stale_hits, 5, "stale: stale hits counted");
	is_int(s.refresh_tickets, 1, "stale: one ticket handed out");
	rs_cache_stats_free(&s);

	/* A set returns the ticket. */
	atomic_store(&clk, 10000);
	set_s(c, "r", "old", 100);
	atomic_store(&clk, 10150);
	get_s(c, "r", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(v.refresh, "ticket: taken");
	rs_cache_value_free(&v);
	set_s(c, "r", "new", 100);
	get_s(c, "r", RS_CACHE_ALLOW_REVALIDATE, &v);
	is_str(v.data, "new", "ticket: the refresher's set is served");
	ok(!v.refresh, "ticket: fresh hits carry no ticket");
	rs_cache_value_free(&v);
	atomic_store(&clk, 10300);
	get_s(c, "r", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(v.refresh, "ticket: the set made a new ticket available");
	rs_cache_value_free(&v);
	rs_cache_free(c);

	/* A refresher that never comes back does not starve the entry. */
	o.stale_while_revalidate_ms = 120000;
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "slow", "v", 100);
	atomic_store(&clk, 200);
	get_s(c, "slow", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(v.refresh, "ticket lapse: taken");
	rs_cache_value_free(&v);
	atomic_store(&clk, 200 + RS_CACHE_REFRESH_TICKET_MS - 1);
	get_s(c, "slow", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(!v.refresh, "ticket lapse: still out just before the timeout");
	rs_cache_value_free(&v);
	atomic_store(&clk, 200 + RS_CACHE_REFRESH_TICKET_MS);
	get_s(c, "slow", RS_CACHE_ALLOW_REVALIDATE, &v);
	ok(v.refresh, "ticket lapse: handed out again after the timeout");
	rs_cache_value_free(&v);
	rs_cache_free(c);
}

static void test_entry_bound(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;
	char k[32];
	int i, j, over = 0, present_hot = 0, present_new = 0, present_mid = 0;

	o.max_entries = 100;
	c = mk(&o);
	atomic_store(&clk, 0);
	for (i = 0; i < 1000; i++) {
		if (i >= 100)
			for (j = 0; j < 10; j++) {
				snprintf(k, sizeof(k), "k%d", j);
				status(c, k, 0);
			}
		snprintf(k, sizeof(k), "k%d", i);
		set_s(c, k, "value", -1);
		s = stats(c);
		over += s.entries > 100;
		rs_cache_stats_free(&s);
	}
	is_int(over, 0, "entry bound: never above 100 while inserting 1000");
	s = stats(c);
	is_int(s.entries, 100, "entry bound: full at the end");
	is_int(s.evictions_lru, 900, "entry bound: 900 LRU evictions");
	is_int(s.writer_evictions, 900, "entry bound: all done by writers");
	rs_cache_stats_free(&s);
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		if (status(c, k, 0) != RS_CACHE_HIT)
			continue;
		if (i < 10)
			present_hot++;
		else if (i >= 910)
			present_new++;
		else
			present_mid++;
	}
	is_int(present_hot, 10, "LRU: the 10 keys read all along survive");
	is_int(present_new, 90, "LRU: the 90 newest keys survive");
	is_int(present_mid, 0, "LRU: everything older was evicted");
	ok(accounting_agrees(c, "entry bound"), "entry bound: accounting agrees");
	rs_cache_free(c);
}

static void test_memory_bound(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;
	unsigned seed = 12345;
	char k[32], *val = malloc(3001);
	int i, over = 0, agree = 1;
	size_t n;

	o.max_memory_bytes = 64 * 1024;
	c = mk(&o);
	atomic_store(&clk, 0);
	memset(val, 'v', 3000);
	for (i = 0; i < 500; i++) {
		seed = seed * 1103515245 + 12345;
		n = 100 + (seed >> 8) % 2901;
		snprintf(k, sizeof(k), "mem%d", i % 200);
		rs_cache_set(c, k, strlen(k), val, n, -1, NULL);
		s = stats(c);
		over += s.bytes > o.max_memory_bytes;
		rs_cache_stats_free(&s);
		if (i % 50 == 0)
			agree &= accounting_agrees(c, "memory bound");
	}
	is_int(over, 0, "memory bound: never above 64 KiB over 500 sets");
	ok(agree, "memory bound: bytes equal the entries' sizes throughout");
	s = stats(c);
	ok(s.bytes > o.max_memory_bytes / 2,
	   "memory bound: the cache is actually used");
	ok(s.evictions_lru > 0, "memory bound: evicted for room");
	rs_cache_stats_free(&s);
	ok(accounting_agrees(c, "memory end"), "memory bound: accounting at end");
	free(val);
	rs_cache_free(c);
}

static void test_expired_first(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;

	o.max_entries = 4;
	o.num_shards = 2;
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "a", "1", -1);
	set_s(c, "b", "2", -1);
	set_s(c, "c", "3", -1);
	set_s(c, "d", "4", 10);   /* most recent, but short-lived */
	atomic_store(&clk, 20);
	set_s(c, "e", "5", -1);
	is_int(status(c, "d", 0), RS_CACHE_MISS,
	       "eviction order: the expired entry went first");
	is_int(status(c, "a", 0), RS_CACHE_HIT,
	       "eviction order: the least recently used live one stayed");
	s = stats(c);
	is_int(s.evictions_expired, 1, "eviction order: counted as expired");
	is_int(s.evictions_lru, 0, "eviction order: no LRU eviction yet");
	rs_cache_stats_free(&s);
	set_s(c, "f", "6", -1);
	is_int(status(c, "b", 0), RS_CACHE_MISS,
	       "eviction order: then the least recently used (b; a was read)");
	s = stats(c);
	is_int(s.evictions_lru, 1, "eviction order: counted as LRU");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

static void test_replace(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c = mk(&o);
	struct rs_cache_stats s;
	uint64_t small, big;
	char val[2001];

	memset(val, 'x', 2000);
	val[2000] = '\0';
	atomic_store(&clk, 0);
	set_s(c, "k", "x", -1);
	s = stats(c);
	small = s.bytes;
	rs_cache_stats_free(&s);
	set_s(c, "k", val, -1);
	s = stats(c);
	big = s.bytes;
	is_int(s.entries, 1, "replace: still one entry");
	rs_cache_stats_free(&s);
	ok(big >= small + 1999, "replace: bytes grow with the value");
	ok(accounting_agrees(c, "replace up"), "replace: accounting after growth");
	set_s(c, "k", "y", -1);
	s = stats(c);
	is_int(s.bytes, small, "replace: bytes shrink back");
	is_int(s.sets, 3, "replace: three sets counted");
	rs_cache_stats_free(&s);
	ok(accounting_agrees(c, "replace down"), "replace: accounting after shrink");
	rs_cache_free(c);
}

static void test_limits(void)
{
	struct rs_cache_options o = opts();
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache *c;
	struct rs_cache_stats s;
	char key[1100], *big = calloc(1, 8000);

	memset(key, 'k', sizeof(key));
	c = mk(&o);
	atomic_store(&clk, 0);
	ok(rs_cache_set(c, "", 0, "v", 1, -1, &err) < 0, "limits: empty key refused");
	is_str(err.msg, "key is empty", "limits: empty key message");
	ok(rs_cache_set(c, key, 1025, "v", 1, -1, &err) < 0,
	   "limits: 1025-byte key refused");
	is_str(err.msg, "key is 1025 bytes, at most 1024 allowed",
	       "limits: key message names both sizes");
	is_int(rs_cache_set(c, key, 1024, "v", 1, -1, &err), 0,
	       "limits: 1024-byte key stored");
	is_int(rs_cache_get(c, key, 1024, 0, NULL), RS_CACHE_HIT,
	       "limits: 1024-byte key found");
	rs_cache_free(c);

	o.max_key_bytes = 16;
	o.max_value_bytes = 100;
	o.max_memory_bytes = 4096;
	c = mk(&o);
	ok(rs_cache_set(c, key, 17, "v", 1, -1, &err) < 0,
	   "limits: key over a configured limit refused");
	is_str(err.msg, "key is 17 bytes, at most 16 allowed",
	       "limits: configured key limit named");
	ok(rs_cache_set(c, "k", 1, big, 101, -1, &err) < 0,
	   "limits: value over the limit refused");
	is_str(err.msg, "value of 'k' is 101 bytes, at most 100 allowed",
	       "limits: value message names key and both sizes");
	rs_cache_free(c);

	o.max_key_bytes = 0;
	o.max_value_bytes = 0;
	c = mk(&o);
	set_s(c, "keep", "me", -1);
	ok(rs_cache_set(c, key, 200, big, 5000, -1, &err) < 0,
	   "limits: entry larger than max_memory refused");
	has_str(err.msg, "needs more than max_memory_bytes (4096)",
		"limits: entry message names the bound");
	has_str(err.msg, "value 5000 bytes", "limits: entry message names the size");
	has_str(err.msg, "kkkkkkkk...'", "limits: long keys truncated in messages");
	s = stats(c);
	is_int(s.entries, 1, "limits: nothing evicted for a hopeless entry");
	is_int(s.rejected, 1, "limits: rejected counted");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
	free(big);
}

static void test_delete_purge(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c = mk(&o);
	struct rs_cache_stats s;

	atomic_store(&clk, 0);
	set_s(c, "user:1", "a", -1);
	set_s(c, "user:2", "b", -1);
	set_s(c, "user:3", "c", -1);
	set_s(c, "item:1", "d", -1);
	set_s(c, "item:2", "e", -1);
	set_s(c, "use", "f", -1);
	is_int(rs_cache_delete(c, "user:1", 6), 1, "delete: removes");
	is_int(rs_cache_delete(c, "user:1", 6), 0, "delete: absent key is 0");
	is_int(rs_cache_purge(c, "user:", 5), 2, "purge: by prefix");
	is_int(status(c, "use", 0), RS_CACHE_HIT, "purge: shorter key kept");
	is_int(status(c, "item:2", 0), RS_CACHE_HIT, "purge: other prefix kept");
	is_int(rs_cache_purge(c, NULL, 0), 3, "purge: all");
	s = stats(c);
	is_int(s.entries, 0, "purge: empty");
	is_int(s.bytes, 0, "purge: no bytes left");
	is_int(s.deletes, 1, "purge: deletes counted");
	is_int(s.purged, 5, "purge: purged counted");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

static void test_sweep(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c = mk(&o);
	struct rs_cache_stats s;
	uint64_t n, total = 0, most = 0;
	char k[32];
	int i, calls = 0;

	atomic_store(&clk, 0);
	for (i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "short%d", i);
		set_s(c, k, "v", 10);
	}
	for (i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "long%d", i);
		set_s(c, k, "v", 100000);
	}
	is_int(rs_cache_sweep(c, 1), 0, "sweep: nothing expired yet");
	atomic_store(&clk, 100);
	while ((n = rs_cache_sweep(c, 1)) > 0 && calls < 100) {
		total += n;
		most = n > most ? n : most;
		calls++;
	}
	ok(most <= 4 && most >= 1, "sweep: at most one per shard per call");
	is_int(total, 40, "sweep: all expired entries removed in the end");
	ok(calls >= 10, "sweep: spread over several calls");
	s = stats(c);
	is_int(s.entries, 5, "sweep: live entries kept");
	is_int(s.expirations, 40, "sweep: expirations counted");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

static void fill(struct rs_cache *c, const char *prefix, int from, int to)
{
	char k[32];
	int i;

	for (i = from; i < to; i++) {
		snprintf(k, sizeof(k), "%s%d", prefix, i);
		set_s(c, k, "value", -1);
	}
}

static void test_background(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;
	uint64_t n;

	o.max_entries = 100;
	c = mk(&o);
	atomic_store(&clk, 0);
	fill(c, "bg", 0, 85);
	is_int(rs_cache_evict_background(c), 0,
	       "background: idle between low and high water");
	fill(c, "bg", 85, 95);
	n = rs_cache_evict_background(c);
	s = stats(c);
	is_int(s.entries, 80, "background: down to low water from above high");
	is_int(n, 15, "background: returns the entries evicted");
	is_int(s.writer_evictions, 0, "background: writers did not evict");
	rs_cache_stats_free(&s);
	is_int(rs_cache_evict_background(c), 0, "background: stops at low water");
	fill(c, "bg2-", 0, 8);
	is_int(rs_cache_evict_background(c), 0,
	       "background: does not restart below high water");
	ok(accounting_agrees(c, "background"), "background: accounting agrees");
	rs_cache_free(c);

	/* Bytes alone can trigger it. */
	o = opts();
	o.max_memory_bytes = 64 * 1024;
	c = mk(&o);
	fill(c, "mem", 0, 5000);
	s = stats(c);
	ok(s.bytes > 0.9 * 64 * 1024, "background: bytes above high water");
	rs_cache_stats_free(&s);
	rs_cache_evict_background(c);
	s = stats(c);
	ok(s.bytes <= 0.8 * 64 * 1024, "background: bytes down to low water");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

/* 9400 sets spread over `span_ms` (between high water and the midpoint to
 * the bound, so the pressure factor stays out), then one background call:
 * returns what it evicted (from 9400 towards 1000 entries). */
static uint64_t evict_after(int64_t span_ms, double *rate)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;
	uint64_t n;
	char k[32];
	int i;

	o.max_entries = 10000;
	o.high_water = 0.9;
	o.low_water = 0.1;
	atomic_store(&clk, 0);
	c = mk(&o);
	for (i = 0; i < 9400; i++) {
		atomic_store(&clk, span_ms * i / 9400);
		snprintf(k, sizeof(k), "r%d", i);
		set_s(c, k, "v", 10000000);
	}
	atomic_store(&clk, span_ms);
	n = rs_cache_evict_background(c);
	s = stats(c);
	*rate = s.insert_rate_per_s;
	rs_cache_stats_free(&s);
	rs_cache_free(c);
	return n;
}

static void test_adaptive(void)
{
	double slow_rate, fast_rate;
	uint64_t slow = evict_after(940000, &slow_rate);
	uint64_t fast = evict_after(1000, &fast_rate);

	ok(slow_rate > 9 && slow_rate < 11, "adaptive: 10 sets/s measured");
	ok(fast_rate > 9000 && fast_rate < 10000, "adaptive: 9400 sets/s measured");
	is_int(slow, 258, "adaptive: base batch at a low insertion rate");
	is_int(fast, 2662, "adaptive: 10.4x the batch at 9400 sets/s");
}

static void test_stats(void)
{
	struct rs_cache_options o = opts();
	struct rs_cache *c;
	struct rs_cache_stats s;
	char k[32];
	int i, j;

	o.stale_while_revalidate_ms = 1000;
	o.num_shards = 8;
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "a", "1", 100);
	set_s(c, "b", "2", 100);
	status(c, "a", 0);
	status(c, "x", 0);
	atomic_store(&clk, 200);
	status(c, "a", RS_CACHE_ALLOW_REVALIDATE);
	rs_cache_delete(c, "b", 1);
	s = stats(c);
	is_int(s.hits, 1, "stats: hits");
	is_int(s.misses, 1, "stats: misses");
	is_int(s.stale_hits, 1, "stats: stale hits");
	is_int(s.sets, 2, "stats: sets");
	is_int(s.deletes, 1, "stats: deletes");
	is_int(s.num_shards, 8, "stats: shards");
	is_int(s.max_entries, 10000, "stats: bound reported");
	is_int(s.hot_shards, 0, "stats: no hot shard below 1000 operations");
	rs_cache_stats_free(&s);

	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "u%d", i);
		set_s(c, k, "v", -1);
		for (j = 0; j < 20; j++)
			status(c, k, 0);
	}
	s = stats(c);
	is_int(s.hot_shards, 0, "stats: a uniform load has no hot shard");
	rs_cache_stats_free(&s);
	for (i = 0; i < 3000; i++)
		status(c, "u7", 0);
	s = stats(c);
	is_int(s.hot_shards, 1, "stats: a skewed key makes its shard hot");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

static void test_shard_copy(void)
{
	struct rs_cache_options o = opts();
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_item *it;
	struct rs_cache *c;
	size_t i, j, n, total = 0;
	int good = 1;

	o.stale_if_error_ms = 100;
	c = mk(&o);
	atomic_store(&clk, 0);
	fill(c, "live", 0, 20);
	set_s(c, "gone", "v", 10);
	set_s(c, "stale", "v", 500);
	atomic_store(&clk, 550);   /* "stale" inside its window, "gone" past */
	for (i = 0; i < rs_cache_num_shards(c); i++) {
		if (rs_cache_shard_copy(c, i, &it, &n, &err) < 0)
			good = 0;
		for (j = 0; j < n; j++) {
			good &= strcmp(it[j].val, ((char *)it[j].key)[0] == 's' ?
				       "v" : "value") == 0;
			good &= strlen(it[j].key) == it[j].klen;
			good &= strcmp(it[j].key, "gone") != 0;
		}
		total += n;
		rs_cache_items_free(it, n);
	}
	ok(good, "shard copy: keys and values copied, past-window entry left out");
	is_int(total, 21, "shard copy: live and stale entries copied");
	ok(rs_cache_shard_copy(c, 99, &it, &n, &err) < 0,
	   "shard copy: bad index refused");
	is_str(err.msg, "no shard 99: the cache has 4", "shard copy: message");
	rs_cache_free(c);
}

/* --- single flight (real time) -------------------------------------------- */

struct loader_arg {
	atomic_int calls;
	int sleep_ms;
	bool fail;
	int64_t ttl_ms;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int loader(void *arg, const void *key, size_t klen, void **val,
		  size_t *vlen, int64_t *ttl_ms, struct rs_err *err)
{
	struct loader_arg *a = arg;

	atomic_fetch_add(&a->calls, 1);
	sleep_ms(a->sleep_ms);
	if (a->fail)
		return rs_err_set(err, "upstream refused '%.*s'", (int)klen,
				  (const char *)key);
	*val = strdup("loaded-value");
	*vlen = strlen("loaded-value");
	if (a->ttl_ms)
		*ttl_ms = a->ttl_ms;
	return 0;
}

struct sf_thread {
	pthread_t tid;
	struct rs_cache *c;
	struct loader_arg *la;
	pthread_barrier_t *bar;
	const char *key;
	int64_t wait_ms;
	int st;
	char got[64];
	struct rs_err err;
};

static void *sf_main(void *p)
{
	struct sf_thread *t = p;
	struct rs_cache_value v;

	if (t->bar)
		pthread_barrier_wait(t->bar);
	t->st = rs_cache_get_or_load(t->c, t->key, strlen(t->key), loader,
				     t->la, t->wait_ms, &v, &t->err);
	if (t->st >= 0)
		snprintf(t->got, sizeof(t->got), "%s", (char *)v.data);
	rs_cache_value_free(&v);
	return NULL;
}

static struct rs_cache *real_cache(void)
{
	struct rs_cache_options o = opts();

	o.clock_ms = NULL;
	o.default_ttl_ms = 60000;
	return mk(&o);
}

static void test_single_flight(void)
{
	struct rs_cache *c = real_cache();
	struct loader_arg la = { .sleep_ms = 100 };
	struct sf_thread t[8];
	pthread_barrier_t bar;
	struct rs_cache_stats s;
	int i, good = 0;

	pthread_barrier_init(&bar, NULL, 8);
	for (i = 0; i < 8; i++) {
		t[i] = (struct sf_thread){ .c = c, .la = &la, .bar = &bar,
					   .key = "sf", .wait_ms = 5000 };
		pthread_create(&t[i].tid, NULL, sf_main, &t[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i].tid, NULL);
		good += t[i].st >= 0 && strcmp(t[i].got, "loaded-value") == 0;
	}
	pthread_barrier_destroy(&bar);
	is_int(atomic_load(&la.calls), 1, "single flight: one loader call for 8");
	is_int(good, 8, "single flight: all 8 got the value");
	s = stats(c);
	is_int(s.loads, 1, "single flight: one load counted");
	is_int(s.load_waits + s.hits, 7, "single flight: 7 waited (or hit)");
	ok(s.load_waits >= 1, "single flight: waiters shared the result");
	rs_cache_stats_free(&s);
	is_int(status(c, "sf", 0), RS_CACHE_HIT, "single flight: result cached");
	rs_cache_free(c);
}

static void test_load_failures(void)
{
	struct rs_cache_options o = opts();
	struct loader_arg fail = { .fail = true }, good = { .ttl_ms = 5000 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_value v;
	struct rs_cache *c;
	struct rs_cache_stats s;
	int st;

	o.stale_if_error_ms = 60000;
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "k", "old", 100);
	atomic_store(&clk, 200);
	st = rs_cache_get_or_load(c, "k", 1, loader, &fail, 1000, &v, &err);
	is_int(st, RS_CACHE_STALE, "load failure: stale_if_error entry served");
	is_str(v.data, "old", "load failure: the stale value");
	is_int(atomic_load(&fail.calls), 1, "load failure: loader was tried");
	rs_cache_value_free(&v);
	st = rs_cache_get_or_load(c, "none", 4, loader, &fail, 1000, &v, &err);
	is_int(st, -1, "load failure: no entry, an error");
	is_str(err.msg, "upstream refused 'none'", "load failure: loader's message");
	ok(v.data == NULL, "load failure: nothing returned");
	st = rs_cache_get_or_load(c, "new", 3, loader, &good, 1000, &v, &err);
	is_int(st, RS_CACHE_MISS, "load: a loaded value is a MISS");
	is_int(v.expires_ms - v.stored_ms, 5000, "load: the loader's TTL applies");
	rs_cache_value_free(&v);
	st = rs_cache_get_or_load(c, "new", 3, loader, &good, 1000, &v, &err);
	is_int(st, RS_CACHE_HIT, "load: then a HIT");
	is_int(atomic_load(&good.calls), 1, "load: not loaded twice");
	rs_cache_value_free(&v);
	s = stats(c);
	is_int(s.load_failures, 2, "load failure: counted");
	rs_cache_stats_free(&s);
	rs_cache_free(c);
}

static void wait_for_loads(struct rs_cache *c, uint64_t n)
{
	struct rs_cache_stats s;
	int i;

	for (i = 0; i < 1000; i++) {
		s = stats(c);
		rs_cache_stats_free(&s);
		if (s.loads >= n)
			return;
		sleep_ms(1);
	}
}

static void test_load_waits(void)
{
	struct rs_cache *c = real_cache();
	struct loader_arg slow = { .sleep_ms = 300 };
	struct loader_arg failing = { .sleep_ms = 100, .fail = true };
	struct sf_thread lead = { .c = c, .la = &slow, .key = "slow",
				  .wait_ms = 5000 };
	struct sf_thread waiter = { .c = c, .la = &slow, .key = "slow",
				    .wait_ms = 50 };
	struct rs_cache_stats s;

	pthread_create(&lead.tid, NULL, sf_main, &lead);
	wait_for_loads(c, 1);
	sf_main(&waiter);
	is_int(waiter.st, -1, "wait timeout: the waiter gives up");
	is_str(waiter.err.msg, "timed out waiting for the load of 'slow'",
	       "wait timeout: message names the key");
	pthread_join(lead.tid, NULL);
	is_str(lead.got, "loaded-value", "wait timeout: the leader still loads");
	s = stats(c);
	is_int(s.load_timeouts, 1, "wait timeout: counted");
	rs_cache_stats_free(&s);

	lead = (struct sf_thread){ .c = c, .la = &failing, .key = "bad",
				   .wait_ms = 5000 };
	waiter = lead;
	pthread_create(&lead.tid, NULL, sf_main, &lead);
	wait_for_loads(c, 2);
	sf_main(&waiter);
	pthread_join(lead.tid, NULL);
	is_int(waiter.st, -1, "failed load: the waiter fails too");
	is_str(waiter.err.msg, "upstream refused 'bad'",
	       "failed load: the waiter gets the loader's message");
	is_int(atomic_load(&failing.calls), 1, "failed load: loaded once");
	rs_cache_free(c);
}

/* ---- profile ------------------------------------------------------------ */

static struct rs_cache_profile *profile(struct rs_cache *c)
{
	struct rs_cache_profile *p = malloc(sizeof(*p));

	if (p)
		rs_cache_profile(c, p);
	return p;
}

static void test_profile_counts(void)
{
	struct rs_cache_options o = opts();
	struct loader_arg la = { 0 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_profile *p;
	struct rs_cache_value v;
	struct rs_cache_stats s;
	struct rs_cache *c;
	char key[32], big[2048];
	uint64_t locks;
	int i;

	o.profile_every = 1;
	o.max_value_bytes = 1024;
	c = mk(&o);
	atomic_store(&clk, 0);
	memset(big, 'b', sizeof(big));
	for (i = 0; i < 10; i++) {              /* 10 sets, one lock each */
		snprintf(key, sizeof(key), "k%d", i);
		set_s(c, key, "v", -1);
	}
	for (i = 0; i < 20; i++)                /* 20 gets, one lock each */
		status(c, i % 2 ? "k1" : "none", 0);
	status(c, "", 0);                       /* a get, no lock */
	for (i = 0; i < 5; i++) {               /* 5 deletes, one lock each */
		snprintf(key, sizeof(key), "k%d", i);
		rs_cache_delete(c, key, strlen(key));
	}
	/* set_at: stored (one lock); past its windows (one, to remove). */
	rs_cache_set_at(c, "at", 2, "v", 1, 0, 500, &err);
	rs_cache_set_at(c, "k9", 2, "v", 1, -2000, -1000, &err);
	/* A set refused before locking. */
	rs_cache_set(c, "big", 3, big, sizeof(big), -1, &err);
	rs_cache_purge(c, "k", 1);              /* one lock per shard: 4 */
	/* A load: look up, store, publish (3 locks); then a hit (1). */
	rs_cache_get_or_load(c, "ld", 2, loader, &la, 1000, &v, &err);
	rs_cache_value_free(&v);
	rs_cache_get_or_load(c, "ld", 2, loader, &la, 1000, &v, &err);
	rs_cache_value_free(&v);
	locks = 10 + 20 + 5 + 2 + 4 + 3 + 1;

	s = stats(c);
	rs_cache_stats_free(&s);
	p = profile(c);
	if (!ok(p != NULL, "profile: copied"))
		goto out;
	is_int(p->sample_every, 1, "profile: every call with profile_every 1");
	is_int(rs_hist_count(&p->get_us), 21, "profile: one get time per get");
	is_int(rs_hist_count(&p->set_us), 13,
	       "profile: one set time per set and set_at, refused ones too");
	is_int(rs_hist_count(&p->delete_us), 5,
	       "profile: one delete time per delete");
	is_int(rs_hist_count(&p->load_us), 2,
	       "profile: one load time per get_or_load, hit or miss");
	is_int(rs_hist_count(&p->lock_wait_us), locks,
	       "profile: one lock wait per shard lock the calls took (not stats')");
	is_int(rs_hist_count_le(&p->lock_wait_us, 0), locks,
	       "profile: single-threaded, every lock was free (0 us)");
	is_int(p->slow_ops, 0, "profile: no slow operations while that is off");
	ok(rs_hist_max(&p->get_us) < 1000000,
	   "profile: op times are microseconds of the real clock");
	free(p);
	p = profile(c);
	if (p)
		is_int(rs_hist_count(&p->lock_wait_us), locks,
		       "profile: reading it takes no counted lock");
out:
	free(p);
	rs_cache_free(c);
}

static void test_profile_sampled(void)
{
	struct rs_cache_options o = opts();
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_profile *p;
	struct rs_cache *c;
	uint64_t n;
	int i;

	o.profile_every = 3;
	ok(rs_cache_new(&c, &o, &err) < 0, "profile: profile_every 3 refused");
	has_str(err.msg, "profile_every is 3, must be a power of two",
		"profile: names profile_every");
	o = opts();
	o.slow_op_us = -1;
	ok(rs_cache_new(&c, &o, &err) < 0, "profile: negative slow_op_us refused");
	has_str(err.msg, "slow_op_us is -1", "profile: names slow_op_us");

	o = opts();
	c = mk(&o);
	atomic_store(&clk, 0);
	set_s(c, "k", "v", -1);
	/* get, set, get, set ...: a counter taking every 8th call would
	 * only ever see one of the two. */
	for (i = 0; i < 8000; i++) {
		status(c, "k", 0);
		set_s(c, "k", "v", -1);
	}
	p = profile(c);
	if (!ok(p != NULL, "sampled: copied"))
		goto out;
	is_int(p->sample_every, 8, "sampled: one call in 8 by default");
	n = rs_hist_count(&p->get_us);
	ok(n > 700 && n < 1300, "sampled: about 1 get in 8 timed");
	printf("#   %llu of 8000 gets timed\n", (unsigned long long)n);
	n = rs_hist_count(&p->set_us);
	ok(n > 700 && n < 1300, "sampled: about 1 set in 8, interleaved");
	printf("#   %llu of 8001 sets timed\n", (unsigned long long)n);
	is_int(rs_hist_count(&p->lock_wait_us), 16001,
	       "sampled: lock waits are not sampled");
out:
	free(p);
	rs_cache_free(c);
}

struct hammer {
	pthread_t tid;
	struct rs_cache *c;
	int n;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < h->n; i++) {
		if (i % 4 == 0)
			set_s(h->c, "hot", "v", -1);
		else
			status(h->c, "hot", 0);
	}
	return NULL;
}

static void test_profile_contended(void)
{
	struct rs_cache_options o = opts();
	struct hammer h[4];
	struct rs_cache_profile *p;
	struct rs_cache *c;
	int i;

	o.num_shards = 1;
	o.profile_every = 1;
	c = mk(&o);
	atomic_store(&clk, 0);
	for (i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .c = c, .n = 20000 };
		pthread_create(&h[i].tid, NULL, hammer_main, &h[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(h[i].tid, NULL);
	p = profile(c);
	if (p) {
		is_int(rs_hist_count(&p->lock_wait_us), 80000,
		       "contended: every acquisition counted, waited or not");
		is_int(rs_hist_count(&p->get_us) + rs_hist_count(&p->set_us),
		       80000, "contended: every call timed");
		printf("#   lock waits: %llu of 80000 over 0 us, max %llu us\n",
		       (unsigned long long)(80000 -
			       rs_hist_count_le(&p->lock_wait_us, 0)),
		       (unsigned long long)rs_hist_max(&p->lock_wait_us));
	}
	free(p);
	rs_cache_free(c);
}

static int log_to(const char *path)
{
	struct rs_log_options lo = {
		.level = RS_LOG_INFO,
		.target = RS_LOG_FILE,
		.path = path,
	};
	struct rs_err err = RS_ERR_INIT;

	if (rs_log_setup(&lo, &err) < 0) {
		printf("#   log setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The first line of text containing `what`, cut at its end; "" if none. */
static const char *line_with(char *text, const char *what)
{
	char *p = text ? strstr(text, what) : NULL, *end;

	if (!p)
		return "";
	while (p > text && p[-1] != '\n')
		p--;
	end = strchr(p, '\n');
	if (end)
		*end = '\0';
	return p;
}

static void test_slow_ops(void)
{
	struct rs_cache_options o = opts();
	struct loader_arg la = { .sleep_ms = 5 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_profile *p = NULL;
	struct rs_cache_value v;
	char path[TEST_PATH_MAX], key[200], *text = NULL;
	size_t big_len = 1024 * 1024;
	char *big = calloc(1, big_len);
	const char *line;
	struct tmpdir t = { "" };
	struct rs_cache *c;
	int i;

	if (!ok(big && make_tmpdir(&t, "cache-slow") == 0, "slow: temp dir"))
		goto done;
	join(path, &t, "log");
	if (log_to(path) < 0)
		goto done;

	/* Off: nothing logged, however slow. */
	o.max_value_bytes = big_len;
	c = mk(&o);
	atomic_store(&clk, 0);
	rs_cache_set(c, "b", 1, big, big_len, -1, &err);
	rs_cache_get_or_load(c, "ld", 2, loader, &la, 1000, &v, &err);
	rs_cache_value_free(&v);
	p = profile(c);
	if (p)
		is_int(p->slow_ops, 0, "slow: none counted with slow_op_us 0");
	free(p);
	rs_cache_free(c);
	text = slurp(path);
	is_str(text, "", "slow: nothing logged with slow_op_us 0");
	free(text);

	/* 1 ms: the loader's 5 ms make the load slow. */
	o.slow_op_us = 1000;
	c = mk(&o);
	rs_cache_get_or_load(c, "jobs:ABC", 8, loader, &la, 1000, &v, &err);
	rs_cache_value_free(&v);
	p = profile(c);
	if (p)
		ok(p->slow_ops >= 1, "slow: the load counted");
	free(p);
	rs_cache_free(c);
	text = slurp(path);
	line = line_with(text, "slow cache get_or_load: ");
	has_str(line, "warning: slow cache get_or_load: ",
		"slow: logged as a warning");
	has_str(line, " ms (lock wait ", "slow: with its time and lock wait");
	has_str(line, ", loader ", "slow: and the loader's share");
	has_str(line, ") key 'jobs:ABC'", "slow: and the key");
	free(text);

	/* 1 us: copying 1 MiB in or out is slow; a binary, long key is
	 * escaped and cut. */
	o.slow_op_us = 1;
	c = mk(&o);
	memset(key, 'x', sizeof(key));
	memcpy(key, "bin\x01\xff'\\", 7);
	rs_cache_set(c, key, sizeof(key), big, big_len, -1, &err);
	rs_cache_get(c, key, sizeof(key), 0, &v);
	rs_cache_value_free(&v);
	for (i = 0; i < 1000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "p:%d", i);
		set_s(c, k, "v", -1);
	}
	rs_cache_purge(c, "p:", 2);
	p = profile(c);
	if (p)
		ok(p->slow_ops >= 3, "slow: set, get and purge counted");
	free(p);
	rs_cache_free(c);
	text = slurp(path);
	line = line_with(text, "slow cache set: ");
	has_str(line, "key 'bin\\x01\\xff\\x27\\x5cxxx",
		"slow: key bytes outside printable ASCII, quote and backslash as \\xNN");
	ok(strstr(line, "xxx...'") &&
	   strlen(strstr(line, "key '") + 5) == 64 + 4,
	   "slow: key cut to 64 characters and \"...\"");
	printf("#   %s\n", line);
	free(text);
	text = slurp(path);
	has_str(line_with(text, "slow cache get: "), "key 'bin\\x01",
		"slow: a slow get logged");
	free(text);
	text = slurp(path);
	has_str(line_with(text, "slow cache purge: "), "prefix 'p:'",
		"slow: a slow purge names its prefix");
	free(text);
	text = NULL;
done:
	rs_log_shutdown();
	free(big);
	remove_tmpdir(&t);
}

int main(void)
{
	test_options();
	test_expiry();
	test_set_at();
	test_stale();
	test_entry_bound();
	test_memory_bound();
	test_expired_first();
	test_replace();
	test_limits();
	test_delete_purge();
	test_sweep();
	test_background();
	test_adaptive();
	test_stats();
	test_shard_copy();
	test_single_flight();
	test_load_failures();
	test_load_waits();
	test_profile_counts();
	test_profile_sampled();
	test_profile_contended();
	test_slow_ops();
	return tap_done();
}
