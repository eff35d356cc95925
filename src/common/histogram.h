/*
 * histogram: a latency histogram with log-linear buckets (as HdrHistogram):
 * exact below 128, then 64 sub-buckets per power of two, so any recorded
 * value is known to within 1/128 (0.8%) of itself, from 1 us to 2^40 us
 * (12 days), in constant memory (2240 counters).
 *
 * Recording is lock-free (relaxed atomics), so threads can share one
 * histogram; reads taken while others record see a consistent-enough
 * picture (each counter is exact, the set of them is not a snapshot).
 * Values are unsigned integers in whatever unit the caller picks; Resync
 * records microseconds.
 */
#ifndef RS_HISTOGRAM_H
#define RS_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define RS_HIST_SUB_BITS 7                        /* 128 exact values */
#define RS_HIST_MAX_BITS 40                       /* values up to 2^40 */
#define RS_HIST_BUCKETS \
	((1 << RS_HIST_SUB_BITS) + \
	 (RS_HIST_MAX_BITS - RS_HIST_SUB_BITS) * (1 << (RS_HIST_SUB_BITS - 1)))

struct rs_hist {
	_Atomic uint64_t counts[RS_HIST_BUCKETS];
	_Atomic uint64_t total;
	_Atomic uint64_t sum;
	_Atomic uint64_t min, max;
};

void rs_hist_init(struct rs_hist *h);
void rs_hist_record(struct rs_hist *h, uint64_t value);
/* Add src's counts into dst (per-thread histograms merged for a report). */
void rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src);

uint64_t rs_hist_count(const struct rs_hist *h);
uint64_t rs_hist_min(const struct rs_hist *h);   /* 0 when empty */
uint64_t rs_hist_max(const struct rs_hist *h);
double rs_hist_mean(const struct rs_hist *h);
double rs_hist_stdev(const struct rs_hist *h);   /* from bucket midpoints */

/* The value at percentile p (0..100): the smallest value v such that at
 * least p% of recorded values are <= v, within the bucket precision and
 * never above the recorded maximum.  0 when empty. */
uint64_t rs_hist_percentile(const struct rs_hist *h, double p);

/* How many recorded values are <= v (for Prometheus "le" buckets); exact
 * when v is a bucket's upper bound, else counts v's whole bucket. */
uint64_t rs_hist_count_le(const struct rs_hist *h, uint64_t v);

/* Bucket layout, for exporters: index of a value, and the range of values
 * a bucket holds. */
int rs_hist_index(uint64_t value);
uint64_t rs_hist_bucket_low(int index);
uint64_t rs_hist_bucket_high(int index);

#endif
