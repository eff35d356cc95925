#include "histogram.h"

#include <math.h>
#include <string.h>

#define SUB_COUNT (1 << RS_HIST_SUB_BITS)       /* 128 */
#define HALF (SUB_COUNT / 2)                    /* 64 */

void rs_hist_init(struct rs_hist *h)
{
	for (int i = 0; i < RS_HIST_BUCKETS; i++)
		atomic_init(&h->counts[i], 0);
	atomic_init(&h->total, 0);
	atomic_init(&h->sum, 0);
	atomic_init(&h->min, UINT64_MAX);
	atomic_init(&h->max, 0);
}

int rs_hist_index(uint64_t v)
{
	int msb, shift;

	if (v < SUB_COUNT)
		return (int)v;
	if (v >> RS_HIST_MAX_BITS)
		return RS_HIST_BUCKETS - 1;
	msb = 63 - __builtin_clzll(v);
	shift = msb - (RS_HIST_SUB_BITS - 1);   /* v >> shift is in [64, 128) */
	return SUB_COUNT + (shift - 1) * HALF + (int)((v >> shift) - HALF);
}

uint64_t rs_hist_bucket_low(int i)
{
	int k, shift;

	if (i < SUB_COUNT)
		return (uint64_t)i;
	k = i - SUB_COUNT;
	shift = k / HALF + 1;
	return (uint64_t)(k % HALF + HALF) << shift;
}

uint64_t rs_hist_bucket_high(int i)
{
	int k, shift;

	if (i < SUB_COUNT)
		return (uint64_t)i;
	k = i - SUB_COUNT;
	shift = k / HALF + 1;
	return (((uint64_t)(k % HALF + HALF + 1)) << shift) - 1;
}

static uint64_t midpoint(int i)
{
	uint64_t lo = rs_hist_bucket_low(i), hi = rs_hist_bucket_high(i);

	return lo + (hi - lo) / 2;
}

static void atomic_min(_Atomic uint64_t *a, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);

	while (v < cur &&
	       !atomic_compare_exchange_weak_explicit(a, &cur, v,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static void atomic_max(_Atomic uint64_t *a, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);

	while (v > cur &&
	       !atomic_compare_exchange_weak_explicit(a, &cur, v,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

void rs_hist_record(struct rs_hist *h, uint64_t v)
{
	atomic_fetch_add_explicit(&h->counts[rs_hist_index(v)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&h->total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
	atomic_min(&h->min, v);
	atomic_max(&h->max, v);
}

void rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src)
{
	for (int i = 0; i < RS_HIST_BUCKETS; i++) {
		uint64_t n = atomic_load_explicit(&src->counts[i],
						  memory_order_relaxed);

		if (n)
			atomic_fetch_add_explicit(&dst->counts[i], n,
						  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&dst->total, rs_hist_count(src),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&dst->sum,
				  atomic_load_explicit(&src->sum, memory_order_relaxed),
				  memory_order_relaxed);
	if (rs_hist_count(src)) {
		atomic_min(&dst->min, rs_hist_min(src));
		atomic_max(&dst->max, rs_hist_max(src));
	}
}

uint64_t rs_hist_count(const struct rs_hist *h)
{
	return atomic_load_explicit(&h->total, memory_order_relaxed);
}

uint64_t rs_hist_min(const struct rs_hist *h)
{
	uint64_t v = atomic_load_explicit(&h->min, memory_order_relaxed);

	return v == UINT64_MAX ? 0 : v;
}

uint64_t rs_hist_max(const struct rs_hist *h)
{
	return atomic_load_explicit(&h->max, memory_order_relaxed);
}

double rs_hist_mean(const struct rs_hist *h)
{
	uint64_t n = rs_hist_count(h);

	return n ? (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / (double)n : 0.0;
}

double rs_hist_stdev(const struct rs_hist *h)
{
	double mean = rs_hist_mean(h), acc = 0;
	uint64_t n = 0;

	for (int i = 0; i < RS_HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		double d;

		if (!c)
			continue;
		d = (double)midpoint(i) - mean;
		acc += d * d * (double)c;
		n += c;
	}
	return n > 1 ? sqrt(acc / (double)n) : 0.0;
}

uint64_t rs_hist_percentile(const struct rs_hist *h, double p)
{
	uint64_t n = 0, want, seen = 0, max = rs_hist_max(h);

	for (int i = 0; i < RS_HIST_BUCKETS; i++)
		n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
	if (!n)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	want = (uint64_t)ceil(p / 100.0 * (double)n);
	if (want == 0)
		want = 1;
	for (int i = 0; i < RS_HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		if (seen >= want) {
			uint64_t v = midpoint(i);

			return v > max ? max : v;
		}
	}
	return max;
}

uint64_t rs_hist_count_le(const struct rs_hist *h, uint64_t v)
{
	int last = rs_hist_index(v);
	uint64_t n = 0;

	for (int i = 0; i <= last; i++)
		n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
	return n;
}
