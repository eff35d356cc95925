/* The latency histogram: bucket layout, precision, percentiles, merging,
 * and concurrent recording. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "histogram.h"
#include "tap.h"

static struct rs_hist shared;

static void *recorder(void *arg)
{
	(void)arg;
	for (uint64_t v = 1; v <= 100000; v++)
		rs_hist_record(&shared, v);
	return NULL;
}

int main(void)
{
	static struct rs_hist h, a, b;
	bool contiguous = true, precise = true;
	uint64_t worst_at = 0;
	double worst = 0;

	/* Layout: buckets tile the value range without gaps or overlaps. */
	for (int i = 1; i < RS_HIST_BUCKETS; i++)
		if (rs_hist_bucket_low(i) != rs_hist_bucket_high(i - 1) + 1)
			contiguous = false;
	ok(contiguous, "buckets are contiguous");
	ok(rs_hist_index(0) == 0 && rs_hist_index(127) == 127 && rs_hist_index(128) == 128,
	   "exact below 128");
	is_int(rs_hist_bucket_high(RS_HIST_BUCKETS - 1), (1ULL << RS_HIST_MAX_BITS) - 1,
	       "the last bucket ends at 2^40 - 1");
	is_int(rs_hist_index(1ULL << 50), RS_HIST_BUCKETS - 1, "larger values clamp to the last bucket");
	ok(RS_HIST_BUCKETS * sizeof(uint64_t) < 20000, "constant memory under 20 KB");

	/* Precision: every value from 1 us to 60 s is within 1% of its
	 * bucket's midpoint (checked on a dense sample). */
	for (uint64_t v = 1; v <= 60000000; v += 1 + v / 997) {
		int i = rs_hist_index(v);
		uint64_t mid = rs_hist_bucket_low(i) + (rs_hist_bucket_high(i) - rs_hist_bucket_low(i)) / 2;
		double err = fabs((double)mid - (double)v) / (double)v;

		if (v < rs_hist_bucket_low(i) || v > rs_hist_bucket_high(i))
			precise = false;
		if (err > worst) {
			worst = err;
			worst_at = v;
		}
	}
	ok(precise, "every value falls in its own bucket");
	if (!ok(worst <= 0.01, "relative error <= 1% from 1 us to 60 s"))
		printf("#   worst %.4f at %llu\n", worst, (unsigned long long)worst_at);

	/* Percentiles against a known distribution: 1..10000. */
	rs_hist_init(&h);
	is_int(rs_hist_percentile(&h, 99), 0, "empty histogram: percentile 0");
	is_int(rs_hist_count(&h), 0, "empty count");
	for (uint64_t v = 1; v <= 10000; v++)
		rs_hist_record(&h, v);
	is_int(rs_hist_count(&h), 10000, "count");
	is_int(rs_hist_min(&h), 1, "min");
	is_int(rs_hist_max(&h), 10000, "max");
	ok(fabs(rs_hist_mean(&h) - 5000.5) < 1e-9, "mean is exact");
	ok(fabs(rs_hist_stdev(&h) - 2886.75) / 2886.75 < 0.01, "stdev within 1%");
	{
		static const double ps[] = { 50, 90, 95, 99, 99.9 };

		for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
			double want = ps[i] * 100, got = (double)rs_hist_percentile(&h, ps[i]);
			char name[64];

			snprintf(name, sizeof(name), "p%g within 1%%", ps[i]);
			if (!ok(fabs(got - want) / want <= 0.01, name))
				printf("#   want %.0f got %.0f\n", want, got);
		}
	}
	is_int(rs_hist_percentile(&h, 100), 10000, "p100 is the max");
	is_int(rs_hist_count_le(&h, 127), 127, "count_le exact in the exact range");
	is_int(rs_hist_count_le(&h, 10000), 10000, "count_le at the max counts everything");

	/* A single huge outlier shows in p99.9 of a small sample, and the
	 * reported value never exceeds the max. */
	rs_hist_init(&a);
	for (int i = 0; i < 999; i++)
		rs_hist_record(&a, 100);
	rs_hist_record(&a, 1000000);
	is_int(rs_hist_percentile(&a, 99), 100, "p99 ignores one outlier in 1000");
	ok(llabs((long long)rs_hist_percentile(&a, 99.95) - 1000000) <= 10000,
	   "p99.95 shows the outlier");

	/* Merge. */
	rs_hist_init(&b);
	rs_hist_record(&b, 5);
	rs_hist_merge(&b, &a);
	is_int(rs_hist_count(&b), 1001, "merge adds counts");
	is_int(rs_hist_min(&b), 5, "merge keeps the smaller min");
	is_int(rs_hist_max(&b), 1000000, "merge takes the larger max");

	/* Concurrent recording loses nothing. */
	{
		pthread_t t[4];

		rs_hist_init(&shared);
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, recorder, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		is_int(rs_hist_count(&shared), 400000, "4 threads x 100000 records all counted");
		is_int(rs_hist_count_le(&shared, rs_hist_bucket_high(rs_hist_index(100000))), 400000,
		       "bucket counts add up to the total");
	}
	return tap_done();
}
