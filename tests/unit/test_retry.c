/* Retries: backoff bounds and spread, what is retryable, Retry-After, the
 * retry budget (alone and under threads), and options from resync.conf. */
#include <pthread.h>
#include <stdlib.h>

#include "tap.h"
#include "test_confutil.h"
#include "retry.h"
#include "util.h"

#define SAMPLES 20000

static struct rs_retry_options opts(int64_t base_ms, int64_t cap_ms,
				    enum rs_retry_jitter jitter)
{
	struct rs_retry_options o;

	rs_retry_options_default(&o);
	o.base_ms = base_ms;
	o.cap_ms = cap_ms;
	o.jitter = jitter;
	return o;
}

static void test_defaults(void)
{
	struct rs_retry_options o;

	rs_retry_options_default(&o);
	ok(o.attempts == 3 && o.base_ms == 1000 && o.cap_ms == 10000 &&
	   o.jitter == RS_JITTER_FULL && o.per_try_timeout_ms == 0,
	   "defaults: 3 tries, base 1s, cap 10s, full jitter, per-try 0");
	ok(o.budget_percent == 20 && o.budget_min_per_second == 3 &&
	   o.budget_window_ms == 10000,
	   "defaults: budget 20% + 3/s over 10s");
}

/* Samples of retry n for a fresh full-jitter sequence; checks bounds,
 * spread and mean against the ceiling min(cap, base * 2^(n-1)). */
static void check_full(int64_t base, int64_t cap, unsigned n, int64_t ceiling)
{
	struct rs_retry_options o = opts(base, cap, RS_JITTER_FULL);
	struct rs_backoff b;
	int64_t lo = INT64_MAX, hi = 0, d;
	double sum = 0, mean;
	int out = 0;
	char name[128];

	rs_backoff_init(&b, 12345 + n);
	for (int i = 0; i < SAMPLES; i++) {
		d = rs_backoff_next(&b, &o, n);
		out += d < 1 || d > ceiling;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += (double)d;
	}
	mean = sum / SAMPLES;
	snprintf(name, sizeof(name), "full n=%u: %d samples in [1, %lld]", n,
		 SAMPLES, (long long)ceiling);
	if (!ok(out == 0, name))
		printf("#   %d outside, min %lld max %lld\n", out, (long long)lo,
		       (long long)hi);
	snprintf(name, sizeof(name), "full n=%u: spread over the range", n);
	if (!ok(lo < ceiling / 10 + 1 && hi > ceiling - ceiling / 10, name))
		printf("#   min %lld max %lld\n", (long long)lo, (long long)hi);
	snprintf(name, sizeof(name), "full n=%u: mean near %lld", n,
		 (long long)(ceiling / 2));
	if (!ok(mean > ceiling * 0.47 && mean < ceiling * 0.53, name))
		printf("#   mean %.1f\n", mean);
}

static void test_full_jitter(void)
{
	static const int64_t ceilings[] = { 1000, 2000, 4000, 8000, 10000, 10000 };
	struct rs_retry_options o = opts(1000, 10000, RS_JITTER_FULL);
	struct rs_backoff a, b, c;
	bool same = true, differ = false;

	for (unsigned n = 1; n <= 6; n++)
		check_full(1000, 10000, n, ceilings[n - 1]);

	rs_backoff_init(&a, 42);
	rs_backoff_init(&b, 42);
	for (int i = 0; i < 100; i++)
		same &= rs_backoff_next(&a, &o, 3) == rs_backoff_next(&b, &o, 3);
	ok(same, "full: the same seed gives the same delays");

	rs_backoff_init(&a, 0);
	rs_backoff_init(&b, 0);
	ok(a.rng != 0 && b.rng != 0, "seed 0: a nonzero xorshift state");
	for (int i = 0; i < 100; i++)
		differ |= rs_backoff_next(&a, &o, 4) != rs_backoff_next(&b, &o, 4);
	ok(differ, "seed 0: two sequences started back to back differ");

	o = opts(1, 1, RS_JITTER_FULL);
	rs_backoff_init(&c, 7);
	same = true;
	for (int i = 0; i < 1000; i++)
		same &= rs_backoff_next(&c, &o, 1) == 1;
	ok(same, "full: a draw of 0 is floored at 1 ms");
	o = opts(0, 0, RS_JITTER_FULL);
	is_int(rs_backoff_next(&c, &o, 1), 1, "full: base and cap 0 still give 1 ms");
	o = opts(1000, 10000, RS_JITTER_FULL);
	same = true;
	for (int i = 0; i < 1000; i++)
		same &= rs_backoff_next(&c, &o, 0) <= 1000;
	ok(same, "full: n 0 is taken as the first retry");
}

static void test_decorrelated(void)
{
	enum { SEQS = 5000, STEPS = 8 };
	struct rs_retry_options o = opts(100, 5000, RS_JITTER_DECORRELATED);
	struct rs_backoff b;
	double mean[STEPS + 1] = { 0 };
	int out = 0;
	int64_t d, capped = 0;

	for (int s = 0; s < SEQS; s++) {
		rs_backoff_init(&b, (uint64_t)s + 1);
		for (unsigned n = 1; n <= STEPS; n++) {
			d = rs_backoff_next(&b, &o, n);
			out += d < 100 || d > 5000;
			capped += d == 5000;
			mean[n] += (double)d / SEQS;
		}
	}
	if (!ok(out == 0, "decorrelated: every delay in [base, cap]"))
		printf("#   %d outside\n", out);
	if (!ok(mean[1] > 180 && mean[1] < 220, "decorrelated: first delay averages 2 x base"))
		printf("#   mean %.1f\n", mean[1]);
	if (!ok(mean[1] < mean[2] && mean[2] < mean[3] && mean[3] < mean[4],
		"decorrelated: delays grow from try to try"))
		printf("#   means %.0f %.0f %.0f %.0f\n", mean[1], mean[2], mean[3],
		       mean[4]);
	if (!ok(mean[STEPS] > mean[4] && capped > 0,
		"decorrelated: later delays keep growing and reach the cap"))
		printf("#   mean at %d: %.0f, capped %lld\n", STEPS, mean[STEPS],
		       (long long)capped);

	rs_backoff_init(&b, 3);
	for (int i = 0; i < 20; i++)
		rs_backoff_next(&b, &o, (unsigned)i + 1);
	d = rs_backoff_next(&b, &o, 1);
	ok(d >= 100 && d <= 300, "decorrelated: retry 1 restarts from base");

	o = opts(8000, 5000, RS_JITTER_DECORRELATED);
	is_int(rs_backoff_next(&b, &o, 1), 5000, "decorrelated: base above cap gives cap");
}

static void test_overflow(void)
{
	struct rs_retry_options o = opts(1000, 10 * RS_MS_PER_MIN, RS_JITTER_FULL);
	static const unsigned ns[] = { 30, 62, 63, 64, 65, 100, 1000, 100000,
				       UINT32_MAX };
	struct rs_backoff b;
	int64_t d, hi = 0;
	int out = 0;

	rs_backoff_init(&b, 99);
	for (size_t k = 0; k < RS_ARRAY_SIZE(ns); k++)
		for (int i = 0; i < 2000; i++) {
			d = rs_backoff_next(&b, &o, ns[k]);
			out += d < 1 || d > 10 * RS_MS_PER_MIN;
			hi = d > hi ? d : hi;
		}
	is_int(out, 0, "full: n up to 2^32-1 with cap 10 min stays in [1, cap]");
	ok(hi > 9 * RS_MS_PER_MIN, "full: large n uses the cap as ceiling, not a wrapped product");

	o = opts(INT64_MAX / 2, INT64_MAX, RS_JITTER_FULL);
	out = 0;
	for (unsigned n = 1; n < 200; n++) {
		d = rs_backoff_next(&b, &o, n);
		out += d < 1;
	}
	is_int(out, 0, "full: base near INT64_MAX does not wrap negative");

	o = opts(INT64_MAX / 2, INT64_MAX, RS_JITTER_DECORRELATED);
	out = 0;
	for (unsigned n = 1; n < 200; n++) {
		d = rs_backoff_next(&b, &o, n);
		out += d < INT64_MAX / 2;
	}
	is_int(out, 0, "decorrelated: prev * 3 past INT64_MAX stays in [base, cap]");

	o = opts(1000, 10 * RS_MS_PER_MIN, RS_JITTER_DECORRELATED);
	out = 0;
	for (unsigned n = 1; n <= 1000; n++) {
		d = rs_backoff_next(&b, &o, n);
		out += d < 1000 || d > 10 * RS_MS_PER_MIN;
	}
	is_int(out, 0, "decorrelated: 1000 retries stay in [base, cap]");
}

static void test_retryable(void)
{
	static const struct {
		long status;
		enum rs_call_error error;
		bool want;
		const char *name;
	} cases[] = {
		{ 0, RS_CALL_CONNECT, true, "connect error" },
		{ 0, RS_CALL_TIMEOUT, true, "timeout" },
		{ 0, RS_CALL_RESET, true, "reset" },
		{ 0, RS_CALL_PARTIAL, true, "partial body" },
		{ 0, RS_CALL_TLS, false, "tls error" },
		{ 0, RS_CALL_EXHAUSTED, false, "pool exhausted" },
		{ 500, RS_CALL_OK, false, "500" },
		{ 501, RS_CALL_OK, false, "501" },
		{ 502, RS_CALL_OK, true, "502" },
		{ 503, RS_CALL_OK, true, "503" },
		{ 504, RS_CALL_OK, true, "504" },
		{ 429, RS_CALL_OK, true, "429" },
		{ 200, RS_CALL_OK, false, "200" },
		{ 404, RS_CALL_OK, false, "404" },
		{ 505, RS_CALL_OK, false, "505" },
		{ 503, RS_CALL_TLS, false, "tls error whatever the status" },
		{ 200, RS_CALL_TIMEOUT, true, "timeout whatever the status" },
	};
	char name[96];

	for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
		snprintf(name, sizeof(name), "retryable: %s -> %s", cases[i].name,
			 cases[i].want ? "yes" : "no");
		is_int(rs_retry_retryable(cases[i].status, cases[i].error),
		       cases[i].want, name);
	}
}

static void test_retry_after(void)
{
	/* RFC 9110's example date, 784111777 s after the epoch */
	static const char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";
	const int64_t at = 784111777LL * 1000;
	static const struct {
		const char *value;
		int64_t want;
	} cases[] = {
		{ "120", 120000 },
		{ "0", 0 },
		{ "007", 7000 },
		{ " \t120 ", 120000 },
		{ "86400", RS_MS_PER_DAY },
		{ "86401", RS_MS_PER_DAY },
		{ "99999999999999999999999999", RS_MS_PER_DAY },
		{ "", -1 },
		{ "   ", -1 },
		{ "-5", -1 },
		{ "+5", -1 },
		{ "1.5", -1 },
		{ "120s", -1 },
		{ "12 0", -1 },
		{ "99999999999999999999999999x", -1 },
		{ "soon", -1 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT junk", -1 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", -1 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", -1 },
		{ "Sun Nov  6 08:49:37 1994", -1 },
		{ "sun, 06 nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 6 Nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:49", -1 },
		{ "Sun, 06 Nov 1994 24:00:00 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:60:00 GMT", -1 },
		{ "Sun, 00 Nov 1994 08:49:37 GMT", -1 },
		{ "Tue, 31 Feb 2023 00:00:00 GMT", -1 },
		{ "Wed, 29 Feb 2023 00:00:00 GMT", -1 },
		{ "Xyz, 06 Nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 06 Nvember 1994 08:49:37 GMT", -1 },
	};
	char name[128];

	is_int(rs_retry_after_parse(NULL, at), -1, "retry-after: NULL is unparsable");
	for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
		snprintf(name, sizeof(name), "retry-after: '%s'", cases[i].value);
		is_int(rs_retry_after_parse(cases[i].value, at), cases[i].want, name);
	}
	is_int(rs_retry_after_parse(date, at - 30000), 30000,
	       "retry-after: a date 30 s ahead is 30000 ms");
	is_int(rs_retry_after_parse(date, at - 1), 1,
	       "retry-after: a date 1 ms ahead is 1 ms");
	is_int(rs_retry_after_parse(date, at), 0, "retry-after: the date now is 0");
	is_int(rs_retry_after_parse(date, at + 1), 0, "retry-after: a date in the past is 0");
	is_int(rs_retry_after_parse(" Sun, 06 Nov 1994 08:49:37 GMT\t", at - 5000), 5000,
	       "retry-after: optional whitespace around a date");
	is_int(rs_retry_after_parse("Thu, 29 Feb 2024 00:00:00 GMT",
				    1709164800LL * 1000 - 2000), 2000,
	       "retry-after: 29 Feb of a leap year");
	is_int(rs_retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", at), RS_MS_PER_DAY,
	       "retry-after: a far date is bounded to a day");
	is_int(rs_retry_after_parse("Sat, 01 Jan 2000 00:00:00 GMT",
				    946684800LL * 1000 - 60000), 60000,
	       "retry-after: January parses (month names are not the locale's)");
}

static struct rs_retry_budget *budget(unsigned percent, unsigned min_per_s,
				      int64_t window_ms)
{
	struct rs_retry_options o;
	struct rs_retry_budget *b;
	struct rs_err err = RS_ERR_INIT;

	rs_retry_options_default(&o);
	o.budget_percent = percent;
	o.budget_min_per_second = min_per_s;
	o.budget_window_ms = window_ms;
	if (rs_retry_budget_new(&b, &o, &err) < 0) {
		printf("# rs_retry_budget_new: %s\n", err.msg);
		exit(2);
	}
	return b;
}

/* Tries at now_ms until one is denied (at most max); how many went ahead. */
static int tries_allowed(struct rs_retry_budget *b, int64_t now_ms, int max)
{
	int n = 0;

	while (n < max && rs_retry_budget_try(b, now_ms))
		n++;
	return n;
}

static void test_budget_percent(void)
{
	struct rs_retry_budget *b = budget(20, 0, 10000);
	struct rs_retry_budget_stats st;

	ok(!rs_retry_budget_try(b, 0), "budget: no calls and min 0 allows no retry");
	for (int i = 0; i < 100; i++)
		rs_retry_budget_call(b, 500 + i);
	is_int(tries_allowed(b, 900, 1000), 20, "budget: 100 calls at 20% allow exactly 20 retries");
	ok(!rs_retry_budget_try(b, 950), "budget: and the next is denied");
	rs_retry_budget_stats(b, 999, &st);
	ok(st.calls == 100 && st.retries == 20 && st.denied == 3 &&
	   st.window_calls == 100 && st.window_retries == 20,
	   "budget stats: calls 100, retries 20, denied 3, all in the window");
	if (st.denied != 3)
		printf("#   calls %llu retries %llu denied %llu window %llu/%llu\n",
		       (unsigned long long)st.calls, (unsigned long long)st.retries,
		       (unsigned long long)st.denied,
		       (unsigned long long)st.window_calls,
		       (unsigned long long)st.window_retries);
	rs_retry_budget_stats(b, 10999, &st);
	ok(st.calls == 100 && st.window_calls == 0 && st.window_retries == 0,
	   "budget stats: the window empties once it has slid past");
	rs_retry_budget_free(b);
}

static void test_budget_min(void)
{
	struct rs_retry_budget *b = budget(20, 3, 10000);
	struct rs_retry_budget_stats st;

	is_int(tries_allowed(b, 0, 1000), 30, "budget: min 3/s over 10 s allows 30 with no calls");
	ok(!rs_retry_budget_try(b, 9999), "budget: still spent at the window's last ms");
	is_int(tries_allowed(b, 10000, 1000), 30,
	       "budget: a window later the slide frees them again");
	rs_retry_budget_stats(b, 10000, &st);
	ok(st.calls == 0 && st.retries == 60 && st.denied == 3 &&
	   st.window_retries == 30,
	   "budget stats: 60 retries, 3 denied, 30 in the window");
	rs_retry_budget_free(b);

	b = budget(0, 100, 10000);
	for (int i = 0; i < 1000; i++)
		rs_retry_budget_call(b, i);
	ok(!rs_retry_budget_try(b, 1000), "budget: percent 0 never allows a retry");
	rs_retry_budget_stats(b, 1000, &st);
	ok(st.retries == 0 && st.denied == 1, "budget: percent 0 counts the denial");
	rs_retry_budget_free(b);
}

static void test_budget_time(void)
{
	struct rs_retry_budget *b = budget(100, 0, 5000);
	struct rs_retry_budget_stats st;

	/* 10 calls in each of seconds 0..9 */
	for (int64_t s = 0; s < 10; s++)
		for (int i = 0; i < 10; i++)
			rs_retry_budget_call(b, s * 1000 + i * 90);
	rs_retry_budget_stats(b, 9500, &st);
	is_int(st.window_calls, 50, "budget: a 5 s window holds the last 5 seconds' calls");
	rs_retry_budget_stats(b, 12000, &st);
	is_int(st.window_calls, 20, "budget: 3 s later it holds 2 of them");
	rs_retry_budget_call(b, 12000);
	rs_retry_budget_call(b, 12999);
	rs_retry_budget_call(b, 12500);
	rs_retry_budget_stats(b, 12999, &st);
	is_int(st.window_calls, 23, "budget: the same second repeated counts in one bucket");
	rs_retry_budget_call(b, 11500);
	rs_retry_budget_stats(b, 12999, &st);
	is_int(st.window_calls, 24, "budget: a slightly earlier time still counts");
	rs_retry_budget_call(b, 1000);
	rs_retry_budget_stats(b, 12999, &st);
	ok(st.window_calls == 25 && st.calls == 105,
	   "budget: a time older than the window is kept, in its oldest second");
	rs_retry_budget_stats(b, 12999 + 100000, &st);
	ok(st.window_calls == 0 && st.window_retries == 0 && st.calls == 105,
	   "budget: a jump of many windows clears every bucket");
	ok(!rs_retry_budget_try(b, 113000), "budget: so a retry has no calls to ride on");
	rs_retry_budget_call(b, 113000);
	ok(rs_retry_budget_try(b, 113000), "budget: until a call comes in");
	rs_retry_budget_call(b, 113000 + 5999);
	rs_retry_budget_stats(b, 113000 + 5999, &st);
	ok(st.window_calls == 1 && st.window_retries == 0,
	   "budget: a jump just over a window leaves only the new second");
	rs_retry_budget_free(b);

	b = budget(50, 0, 1000);
	for (int i = 0; i < 4; i++)
		rs_retry_budget_call(b, -1500);
	is_int(tries_allowed(b, -1001, 10), 2, "budget: negative times fall in their own second");
	is_int(tries_allowed(b, -1000, 10), 0, "budget: -1000 ms is a later second than -1500");
	rs_retry_budget_free(b);
}

static void test_budget_errors(void)
{
	struct rs_retry_options o;
	struct rs_retry_budget *b = (struct rs_retry_budget *)&o;
	struct rs_err err = RS_ERR_INIT;

	rs_retry_options_default(&o);
	o.budget_window_ms = 500;
	ok(rs_retry_budget_new(&b, &o, &err) < 0 && b == NULL,
	   "budget: a window under a second is refused");
	has_str(err.msg, "budget_window '500ms'", "budget: the error names the value");
	o.budget_window_ms = 1500;
	ok(rs_retry_budget_new(&b, &o, &err) < 0, "budget: a window of 1.5 s is refused");
	o.budget_window_ms = 601000;
	ok(rs_retry_budget_new(&b, &o, &err) < 0, "budget: a window over 10 min is refused");
	o.budget_window_ms = 600000;
	o.budget_percent = 101;
	ok(rs_retry_budget_new(&b, &o, &err) < 0, "budget: percent 101 is refused");
	has_str(err.msg, "budget_percent 101", "budget: the error names the percent");
	o.budget_percent = 100;
	ok(rs_retry_budget_new(&b, &o, &err) == 0 && b, "budget: 10 min at 100% is fine");
	rs_retry_budget_free(b);
	rs_retry_budget_free(NULL);
}

/* --- four threads on one budget ---------------------------------------- */

enum { THREADS = 4, ITERATIONS = 100000 };

struct worker {
	struct rs_retry_budget *b;
	int64_t offset_ms;
	uint64_t allowed, denied;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	/* Threads run 0..300 ms apart on a clock moving 1 ms a step, so
	 * windows slide under them and times reach the budget out of order. */
	for (int i = 0; i < ITERATIONS; i++) {
		int64_t now = w->offset_ms + i / 4;

		rs_retry_budget_call(w->b, now);
		if (rs_retry_budget_try(w->b, now))
			w->allowed++;
		else
			w->denied++;
	}
	return NULL;
}

static void test_budget_threads(void)
{
	struct rs_retry_budget *b = budget(20, 3, 2000);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct rs_retry_budget_stats st;
	uint64_t allowed = 0, denied = 0;

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ b, i * 100, 0, 0 };
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		allowed += w[i].allowed;
		denied += w[i].denied;
	}
	rs_retry_budget_stats(b, 0, &st);
	is_int(st.calls, THREADS * ITERATIONS, "threads: every call counted");
	is_int(st.retries, allowed, "threads: retries = the tries that went ahead");
	is_int(st.denied, denied, "threads: denied = the tries refused");
	is_int(st.retries + st.denied, THREADS * ITERATIONS, "threads: every try counted once");
	ok(allowed > 0 && denied > 0, "threads: the budget both allowed and denied");
	ok(st.window_calls <= st.calls && st.window_retries <= st.retries,
	   "threads: the window never holds more than the totals");
	rs_retry_budget_free(b);
}

/* --- options from resync.conf ------------------------------------------ */

static bool same_options(const struct rs_retry_options *a,
			 const struct rs_retry_options *b)
{
	return a->attempts == b->attempts && a->base_ms == b->base_ms &&
	       a->cap_ms == b->cap_ms && a->jitter == b->jitter &&
	       a->per_try_timeout_ms == b->per_try_timeout_ms &&
	       a->budget_percent == b->budget_percent &&
	       a->budget_min_per_second == b->budget_min_per_second &&
	       a->budget_window_ms == b->budget_window_ms;
}

static void test_config(void)
{
	struct rs_diags d;
	struct rs_config *cfg;
	struct rs_retry_options o, def;

	cfg = load("retry.conf",
		   "[retry]\n"
		   "attempts = 5\n"
		   "base = 200ms\n"
		   "cap = 30s\n"
		   "jitter = decorrelated\n"
		   "per_try_timeout = 2s\n"
		   "budget_percent = 50\n"
		   "budget_min_per_second = 7\n"
		   "budget_window = 1m\n",
		   NULL, NULL, false, &d);
	if (!ok(d.errors == 0 && !find_diag(&d, "retry"), "config: [retry] loads cleanly"))
		dump_diags(&d);
	rs_retry_options_from_config(&o, cfg);
	ok(o.attempts == 5 && o.base_ms == 200 && o.cap_ms == 30000 &&
	   o.jitter == RS_JITTER_DECORRELATED && o.per_try_timeout_ms == 2000,
	   "config: attempts, base, cap, jitter, per_try_timeout read");
	ok(o.budget_percent == 50 && o.budget_min_per_second == 7 &&
	   o.budget_window_ms == 60000, "config: budget keys read");
	rs_config_free(cfg);
	rs_diags_free(&d);

	cfg = load("none.conf", "[cache]\nttl = 1m\n", NULL, NULL, false, &d);
	rs_retry_options_from_config(&o, cfg);
	rs_retry_options_default(&def);
	ok(same_options(&o, &def),
	   "config: no [retry] gives the defaults (schema and retry.c agree)");
	rs_config_free(cfg);
	rs_diags_free(&d);

	cfg = load("full.conf", "[retry]\njitter = full\nattempts = 1\n", NULL, NULL,
		   false, &d);
	rs_retry_options_from_config(&o, cfg);
	ok(o.jitter == RS_JITTER_FULL && o.attempts == 1 && o.cap_ms == 10000,
	   "config: jitter full, attempts 1, unset cap defaulted");
	rs_config_free(cfg);
	rs_diags_free(&d);

	rs_retry_options_from_config(&o, NULL);
	ok(same_options(&o, &def), "config: NULL config gives the defaults");
}

int main(void)
{
	tdir_make();
	test_defaults();
	test_full_jitter();
	test_decorrelated();
	test_overflow();
	test_retryable();
	test_retry_after();
	test_budget_percent();
	test_budget_min();
	test_budget_time();
	test_budget_errors();
	test_budget_threads();
	test_config();
	tdir_remove();
	return tap_done();
}
