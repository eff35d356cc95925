/* cache under fire: 8 threads of random gets, sets, deletes, loads, sweeps,
 * background evictions and the odd purge on 500 keys with tight bounds,
 * while a sampler checks the bounds continuously.  Every value names its
 * key, writer, writer's counter and size, so at the end each entry left in
 * the cache is checked against what its writer really wrote (the model).
 * The operations per second are reported, not judged. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cache.h"
#include "tap.h"
#include "util.h"

#define THREADS 8
#ifndef OPS_PER_THREAD
#define OPS_PER_THREAD 20000
#endif
#define KEYS 500
#define MAX_ENTRIES 300
#define MAX_MEMORY_BYTES (256 * 1024)
#define VALUE_MIN 32               /* room for the self-description */
#define VALUE_MAX 2000
#define LOAD_WAIT_MS 5000

struct worker {
	pthread_t tid;
	int id;
	struct rs_cache *c;
	uint64_t rng;
	unsigned issued;           /* values made so far */
	int *issued_key;           /* counter -> key it was made for */
	char *buf;
	/* What this thread did and saw. */
	uint64_t gets, loads, sets_ok, set_errors, load_errors, timeouts;
	uint64_t bad_reads;
	char first_problem[RS_ERR_MSG_MAX + 64];
};

static struct rs_cache *cache;
static atomic_bool done;
static _Atomic int64_t ops_done;

/* The cache's clock advances with the work done, OPS_PER_MS operations a
 * millisecond, not with real time: an entry lives some hundreds of
 * operations before eviction pushes it out, so TTLs of 5 ms to 1 s split
 * between expiring and being evicted, natively, under ThreadSanitizer and
 * under valgrind alike.  (Load waits still use real time.) */
#define OPS_PER_MS 4
#define CLOCK_START_MS 1000000
static int64_t stress_clock(void *arg)
{
	(void)arg;
	return CLOCK_START_MS + atomic_load(&ops_done) / OPS_PER_MS;
}

static uint64_t next_rand(struct worker *w)
{
	/* xorshift64* */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ULL;
}

static unsigned below(struct worker *w, unsigned n)
{
	return (unsigned)(next_rand(w) >> 33) % n;
}

static void problem(struct worker *w, const char *what, const char *detail)
{
	if (!w->first_problem[0])
		snprintf(w->first_problem, sizeof(w->first_problem), "%s: %s",
			 what, detail);
}

/* "K<key>/W<writer>/N<counter>/S<size>/" then padding to exactly size. */
static size_t make_value(struct worker *w, int key)
{
	size_t size = VALUE_MIN + below(w, VALUE_MAX - VALUE_MIN + 1);
	unsigned n = w->issued++;
	int h;

	w->issued_key[n] = key;
	h = snprintf(w->buf, VALUE_MAX + 1, "K%d/W%d/N%u/S%zu/", key, w->id,
		     n, size);
	memset(w->buf + h, 'a' + (int)(n % 26), size - (size_t)h);
	w->buf[size] = '\0';
	return size;
}

/* 0 when v is a well-formed value for key; *writer and *n from it. */
static int parse_value(const char *v, size_t len, int key, int *writer,
		       unsigned *n)
{
	unsigned size;
	int k, used = 0;
	size_t i;

	if (sscanf(v, "K%d/W%d/N%u/S%u/%n", &k, writer, n, &size,
		   &used) != 4 || used == 0)
		return -1;
	if (k != key || *writer < 0 || *writer >= THREADS || size != len ||
	    v[len] != '\0')
		return -1;
	for (i = (size_t)used; i < len; i++)
		if (v[i] != 'a' + (int)(*n % 26))
			return -1;
	return 0;
}

static void check_read(struct worker *w, int key, int st,
		       const struct rs_cache_value *v)
{
	unsigned n;
	int writer;

	if (st == RS_CACHE_MISS && !v->data)
		return;
	if (!v->data || parse_value(v->data, v->len, key, &writer, &n) < 0) {
		w->bad_reads++;
		problem(w, "bad read", v->data ? (char *)v->data : "(none)");
	}
}

static int loader(void *arg, const void *key, size_t klen, void **val,
		  size_t *vlen, int64_t *ttl_ms, struct rs_err *err)
{
	struct worker *w = arg;
	int k = atoi((const char *)key + 1);

	(void)klen;
	if (below(w, 10) == 0)
		return rs_err_set(err, "upstream failed for key %d", k);
	if (below(w, 20) == 0) {
		/* Give other threads time to pile up as waiters. */
		struct timespec ts = { 0, 200 * 1000 };

		nanosleep(&ts, NULL);
	}
	*vlen = make_value(w, k);
	*val = strdup(w->buf);
	if (!*val)
		return rs_err_set(err, "out of memory");
	*ttl_ms = 50 + below(w, 200);
	return 0;
}

static void *work(void *p)
{
	static const int64_t ttls[] = { -1, 5, 20, 100, 1000 };
	struct worker *w = p;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_value v;
	char key[16], prefix[8];
	int i, k, r, st;
	size_t len;

	for (i = 0; i < OPS_PER_THREAD; i++) {
		atomic_fetch_add(&ops_done, 1);
		k = (int)below(w, KEYS);
		snprintf(key, sizeof(key), "K%d", k);
		r = (int)below(w, 1000);
		if (r < 400) {
			st = rs_cache_get(w->c, key, strlen(key), below(w, 4),
					  &v);
			w->gets++;
			check_read(w, k, st, &v);
			rs_cache_value_free(&v);
		} else if (r < 700) {
			len = make_value(w, k);
			rs_err_clear(&err);
			st = rs_cache_set(w->c, key, strlen(key), w->buf, len,
					  ttls[below(w, RS_ARRAY_SIZE(ttls))],
					  &err);
			if (st == 0) {
				w->sets_ok++;
			} else {
				/* 1 (expired on arrival) cannot happen with a
				 * positive TTL: an error too. */
				w->set_errors++;
				problem(w, st > 0 ? "set returned 1" : "set",
					err.msg);
			}
		} else if (r < 780) {
			rs_cache_delete(w->c, key, strlen(key));
		} else if (r < 950) {
			rs_err_clear(&err);
			st = rs_cache_get_or_load(w->c, key, strlen(key),
						  loader, w, LOAD_WAIT_MS, &v,
						  &err);
			w->loads++;
			if (st < 0 && strstr(err.msg, "timed out"))
				w->timeouts++;
			else if (st < 0 &&
				 !strstr(err.msg, "upstream failed for key"))
				problem(w, "load", err.msg);
			if (st < 0)
				w->load_errors++;
			else
				check_read(w, k, st, &v);
			rs_cache_value_free(&v);
		} else if (r < 980) {
			rs_cache_sweep(w->c, 8);
		} else if (r < 998) {
			rs_cache_evict_background(w->c);
		} else {
			snprintf(prefix, sizeof(prefix), "K%d", 10 + below(w, 40));
			rs_cache_purge(w->c, prefix, strlen(prefix));
		}
	}
	return NULL;
}

struct sampler {
	pthread_t tid;
	uint64_t samples, over_entries, over_bytes;
	uint64_t max_entries_seen, max_bytes_seen;
};

static void *sample(void *p)
{
	struct sampler *s = p;
	struct rs_cache_stats st;

	while (!atomic_load(&done)) {
		if (rs_cache_stats(cache, &st, NULL) < 0)
			continue;
		s->samples++;
		s->over_entries += st.entries > MAX_ENTRIES;
		s->over_bytes += st.bytes > MAX_MEMORY_BYTES;
		if (st.entries > s->max_entries_seen)
			s->max_entries_seen = st.entries;
		if (st.bytes > s->max_bytes_seen)
			s->max_bytes_seen = st.bytes;
		rs_cache_stats_free(&st);
		/* Let the workers run: under valgrind, which runs one thread
		 * at a time, a spinning sampler starves them. */
		sched_yield();
	}
	return NULL;
}

/* Every entry left must be a value its writer made for that key. */
static void check_model(struct worker *ws)
{
	uint64_t items = 0, item_bytes = 0, bad = 0, shard_e = 0, shard_b = 0;
	struct rs_cache_stats st;
	struct rs_cache_item *it;
	size_t i, j, n;
	unsigned cnt;
	int writer, k;

	for (i = 0; i < rs_cache_num_shards(cache); i++) {
		if (rs_cache_shard_copy(cache, i, &it, &n, NULL) < 0) {
			bad++;
			continue;
		}
		for (j = 0; j < n; j++) {
			k = atoi((char *)it[j].key + 1);
			if (parse_value(it[j].val, it[j].vlen, k, &writer,
					&cnt) < 0 ||
			    cnt >= ws[writer].issued ||
			    ws[writer].issued_key[cnt] != k) {
				if (!bad)
					printf("# not in the model: %s = %.60s\n",
					       (char *)it[j].key,
					       (char *)it[j].val);
				bad++;
			}
			item_bytes += it[j].bytes;
		}
		items += n;
		rs_cache_items_free(it, n);
	}
	is_int(bad, 0, "model: every entry is a value its writer set for its key");
	rs_cache_stats(cache, &st, NULL);
	for (i = 0; i < st.num_shards; i++) {
		shard_e += st.shards[i].entries;
		shard_b += st.shards[i].bytes;
	}
	is_int(st.entries, items, "model: entries == items copied from all shards");
	is_int(st.bytes, item_bytes, "model: bytes == sum of the items' sizes");
	is_int(shard_e, items, "model: shard entry counts add up");
	is_int(shard_b, item_bytes, "model: shard byte counts add up");
	printf("# end: %llu entries, %llu bytes\n", (unsigned long long)items,
	       (unsigned long long)item_bytes);
	rs_cache_stats_free(&st);
}

int main(void)
{
	struct rs_cache_options o = {
		.num_shards = 8,
		.max_entries = MAX_ENTRIES,
		.max_memory_bytes = MAX_MEMORY_BYTES,
		.default_ttl_ms = 200,
		.stale_while_revalidate_ms = 50,
		.stale_if_error_ms = 100,
		.clock_ms = stress_clock,
	};
	struct worker ws[THREADS];
	struct sampler smp = { 0 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_stats st;
	uint64_t gets = 0, loads = 0, sets_ok = 0, set_errors = 0;
	uint64_t load_errors = 0, timeouts = 0, bad_reads = 0;
	int64_t t0, t1;
	double secs;
	int i, problems = 0;

	if (rs_cache_new(&cache, &o, &err) < 0) {
		ok(0, "cache created");
		printf("# %s\n", err.msg);
		return tap_done();
	}
	memset(ws, 0, sizeof(ws));
	pthread_create(&smp.tid, NULL, sample, &smp);
	t0 = rs_monotonic_ms();
	for (i = 0; i < THREADS; i++) {
		ws[i].id = i;
		ws[i].c = cache;
		ws[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^
			    (uint64_t)rs_now_ms();
		ws[i].issued_key = calloc(OPS_PER_THREAD, sizeof(int));
		ws[i].buf = malloc(VALUE_MAX + 1);
		pthread_create(&ws[i].tid, NULL, work, &ws[i]);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(ws[i].tid, NULL);
	t1 = rs_monotonic_ms();
	atomic_store(&done, true);
	pthread_join(smp.tid, NULL);

	secs = (double)(t1 - t0) / 1000.0;
	if (secs <= 0)
		secs = 0.001;
	printf("# %d threads x %d ops in %.3f s: %.0f ops/s\n", THREADS,
	       OPS_PER_THREAD, secs, THREADS * OPS_PER_THREAD / secs);
	for (i = 0; i < THREADS; i++) {
		gets += ws[i].gets;
		loads += ws[i].loads;
		sets_ok += ws[i].sets_ok;
		set_errors += ws[i].set_errors;
		load_errors += ws[i].load_errors;
		timeouts += ws[i].timeouts;
		bad_reads += ws[i].bad_reads;
		if (ws[i].first_problem[0]) {
			printf("# thread %d: %s\n", i, ws[i].first_problem);
			problems++;
		}
	}
	printf("# per thread totals: %llu gets, %llu loads (%llu failed), "
	       "%llu sets\n", (unsigned long long)gets,
	       (unsigned long long)loads, (unsigned long long)load_errors,
	       (unsigned long long)sets_ok);
	ok(smp.samples > 0, "sampler ran");
	printf("# %llu samples, peak %llu entries, %llu bytes\n",
	       (unsigned long long)smp.samples,
	       (unsigned long long)smp.max_entries_seen,
	       (unsigned long long)smp.max_bytes_seen);
	is_int(smp.over_entries, 0, "bounds: entries never above max_entries");
	is_int(smp.over_bytes, 0, "bounds: bytes never above max_memory_bytes");
	is_int(bad_reads, 0, "reads: every value read was a well-formed value of its key");
	is_int(set_errors, 0, "sets: none failed");
	is_int(problems, 0, "no unexpected errors");
	is_int(timeouts, 0, "loads: no waiter timed out");

	rs_cache_stats(cache, &st, NULL);
	printf("# sets %llu (ok %llu), loads %llu (%llu failed), waits %llu, "
	       "evictions expired %llu lru %llu (writers %llu), "
	       "expirations %llu, stale hits %llu, tickets %llu, no_room %llu\n",
	       (unsigned long long)st.sets, (unsigned long long)sets_ok,
	       (unsigned long long)st.loads,
	       (unsigned long long)st.load_failures,
	       (unsigned long long)st.load_waits,
	       (unsigned long long)st.evictions_expired,
	       (unsigned long long)st.evictions_lru,
	       (unsigned long long)st.writer_evictions,
	       (unsigned long long)st.expirations,
	       (unsigned long long)st.stale_hits,
	       (unsigned long long)st.refresh_tickets,
	       (unsigned long long)st.no_room);
	is_int(st.hits + st.misses + st.stale_hits, gets + loads,
	       "stats: one lookup counted per get and get_or_load");
	ok(st.sets >= sets_ok, "stats: every successful set counted");
	is_int(st.no_room, 0, "stats: no set gave up for room");
	ok(st.evictions_lru + st.evictions_expired > 0,
	   "stats: the bounds were actually tested");
	rs_cache_stats_free(&st);

	/* The workers are done, so time stands still: nothing crosses its
	 * deadline between the sweep and the copy. */
	rs_cache_sweep(cache, SIZE_MAX);
	check_model(ws);

	rs_cache_free(cache);
	for (i = 0; i < THREADS; i++) {
		free(ws[i].issued_key);
		free(ws[i].buf);
	}
	return tap_done();
}
