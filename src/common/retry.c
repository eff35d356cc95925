/*
 * retry: backoff, retryability, Retry-After and the retry budget.
 *
 * Deliberate quirks:
 *  - Decorrelated jitter restarts from base when n <= 1, so a struct
 *    rs_backoff reused for a new request does not carry the old delays.
 *  - Retry-After accepts delta-seconds and IMF-fixdate only (not the
 *    obsolete RFC 850 and asctime forms), ignores optional whitespace
 *    around the value (RFC 9110 5.5), and is clamped to RETRY_AFTER_MAX_MS
 *    so one bad header cannot park a request for years.
 *  - The budget files a time older than its window (a thread that read
 *    the clock before another) under the oldest second still in the
 *    window, so nothing counted is ever lost.
 */
#include "retry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* Mirrors the [retry] defaults in schema.c; test_retry checks the two
 * agree, so a change to one shows up as a failing test. */
#define RETRY_DEFAULT_ATTEMPTS 3
#define RETRY_DEFAULT_BASE_MS (1 * RS_MS_PER_SEC)
#define RETRY_DEFAULT_CAP_MS (10 * RS_MS_PER_SEC)
#define RETRY_DEFAULT_BUDGET_PERCENT 20
#define RETRY_DEFAULT_BUDGET_MIN_PER_SECOND 3
#define RETRY_DEFAULT_BUDGET_WINDOW_MS (10 * RS_MS_PER_SEC)

#define RETRY_MIN_DELAY_MS 1
#define RETRY_AFTER_MAX_MS RS_MS_PER_DAY
#define BUDGET_WINDOW_MIN_MS RS_MS_PER_SEC
#define BUDGET_WINDOW_MAX_MS (600 * RS_MS_PER_SEC)

/* The schema's "full|decorrelated" order. */
#define JITTER_INDEX_DECORRELATED 1

void rs_retry_options_default(struct rs_retry_options *o)
{
	memset(o, 0, sizeof(*o));
	o->attempts = RETRY_DEFAULT_ATTEMPTS;
	o->base_ms = RETRY_DEFAULT_BASE_MS;
	o->cap_ms = RETRY_DEFAULT_CAP_MS;
	o->jitter = RS_JITTER_FULL;
	o->per_try_timeout_ms = 0;
	o->budget_percent = RETRY_DEFAULT_BUDGET_PERCENT;
	o->budget_min_per_second = RETRY_DEFAULT_BUDGET_MIN_PER_SECOND;
	o->budget_window_ms = RETRY_DEFAULT_BUDGET_WINDOW_MS;
}

void rs_retry_options_from_config(struct rs_retry_options *o,
				  const struct rs_config *cfg)
{
	rs_retry_options_default(o);
	if (!cfg)
		return;
	/* The schema bounds every key, so the casts cannot truncate. */
	o->attempts = (unsigned)rs_config_num(cfg, "retry", "attempts");
	o->base_ms = rs_config_num(cfg, "retry", "base");
	o->cap_ms = rs_config_num(cfg, "retry", "cap");
	o->jitter = rs_config_num(cfg, "retry", "jitter") ==
				    JITTER_INDEX_DECORRELATED
			    ? RS_JITTER_DECORRELATED : RS_JITTER_FULL;
	o->per_try_timeout_ms = rs_config_num(cfg, "retry", "per_try_timeout");
	o->budget_percent = (unsigned)rs_config_num(cfg, "retry", "budget_percent");
	o->budget_min_per_second =
		(unsigned)rs_config_num(cfg, "retry", "budget_min_per_second");
	o->budget_window_ms = rs_config_num(cfg, "retry", "budget_window");
}

/* --- backoff ------------------------------------------------------------ */

/* splitmix64's finaliser: spreads a weak seed (a small integer, a clock
 * reading) over all 64 bits, since xorshift's first outputs from a sparse
 * state are poor. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t thread_bits(void)
{
	pthread_t self = pthread_self();
	uint64_t v = 0;

	/* pthread_t is opaque (a struct on some systems): take its bytes. */
	memcpy(&v, &self, sizeof(self) < sizeof(v) ? sizeof(self) : sizeof(v));
	return v;
}

static uint64_t clock_seed(void)
{
	/* Two sequences started by one thread within one clock tick would
	 * otherwise share their delays. */
	static _Atomic uint64_t counter;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
	       mix64(thread_bits()) ^
	       mix64(atomic_fetch_add_explicit(&counter, 1,
					       memory_order_relaxed));
}

void rs_backoff_init(struct rs_backoff *b, uint64_t seed)
{
	b->prev_ms = 0;
	b->rng = mix64(seed ? seed : clock_seed());
	if (b->rng == 0)   /* xorshift's one fixed point */
		b->rng = 0x9e3779b97f4a7c15ULL;
}

static uint64_t next_random(struct rs_backoff *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

/* Uniform in [lo, hi], 0 <= lo <= hi, so the span fits in 64 bits.  The
 * modulo bias is at most (hi - lo) / 2^64: invisible at millisecond
 * delays. */
static int64_t random_between(struct rs_backoff *b, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;

	return lo + (int64_t)(next_random(b) % span);
}

/* min(cap, base * 2^shift) without ever forming a product that overflows;
 * base and cap >= 1. */
static int64_t exp_ceiling(int64_t base, int64_t cap, unsigned shift)
{
	if (base >= cap || shift >= 63 || base > (cap >> shift))
		return cap;
	return base << shift;
}

static int64_t backoff_full(struct rs_backoff *b, int64_t base, int64_t cap,
			    unsigned n)
{
	return random_between(b, 0, exp_ceiling(base, cap, n - 1));
}

static int64_t backoff_decorrelated(struct rs_backoff *b, int64_t base,
				    int64_t cap, unsigned n)
{
	int64_t prev = n <= 1 || b->prev_ms < base ? base : b->prev_ms;
	int64_t hi = prev > INT64_MAX / 3 ? INT64_MAX : prev * 3;
	int64_t d = random_between(b, base, hi);

	return d < cap ? d : cap;
}

int64_t rs_backoff_next(struct rs_backoff *b, const struct rs_retry_options *o,
			unsigned n)
{
	int64_t base = o->base_ms > RETRY_MIN_DELAY_MS ? o->base_ms
						       : RETRY_MIN_DELAY_MS;
	int64_t cap = o->cap_ms > RETRY_MIN_DELAY_MS ? o->cap_ms
						     : RETRY_MIN_DELAY_MS;
	int64_t d;

	if (n == 0)
		n = 1;
	if (o->jitter == RS_JITTER_DECORRELATED)
		d = backoff_decorrelated(b, base, cap, n);
	else
		d = backoff_full(b, base, cap, n);
	if (d < RETRY_MIN_DELAY_MS)
		d = RETRY_MIN_DELAY_MS;
	b->prev_ms = d;
	return d;
}

/* --- what is retryable ---------------------------------------------------- */

bool rs_retry_retryable(long http_status, enum rs_call_error error)
{
	switch (error) {
	case RS_CALL_OK:
		break;
	case RS_CALL_CONNECT:
	case RS_CALL_TIMEOUT:
	case RS_CALL_RESET:
	case RS_CALL_PARTIAL:
		return true;
	case RS_CALL_TLS:        /* the same handshake fails the same way */
	case RS_CALL_EXHAUSTED:  /* local: another try only queues again */
	default:
		return false;
	}
	/* 500 and 501 say the request itself failed; these say "not now". */
	return http_status == 429 || http_status == 502 || http_status == 503 ||
	       http_status == 504;
}

/* --- Retry-After ---------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* The length of s without trailing optional whitespace. */
static size_t trimmed_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n;
}

static int64_t parse_delta_seconds(const char *s, size_t len)
{
	const int64_t max_s = RETRY_AFTER_MAX_MS / RS_MS_PER_SEC;
	int64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		/* Keep reading after the bound so junk still fails. */
		if (v <= max_s)
			v = v * 10 + (s[i] - '0');
	}
	return (v > max_s ? max_s : v) * RS_MS_PER_SEC;
}

/* Exactly `width` digits at s; the text after them, or NULL. */
static const char *take_digits(const char *s, int width, int *out)
{
	int v = 0;

	for (int i = 0; i < width; i++) {
		if (!is_digit(s[i]))
			return NULL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return s + width;
}

/* `word` at s (case-sensitive, as RFC 9110 makes HTTP-date); the text
 * after it, or NULL. */
static const char *take_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	return strncmp(s, word, n) == 0 ? s + n : NULL;
}

/* One of `names` (three letters each) at s: its index in *out. */
static const char *take_name(const char *s, const char *const names[],
			     int count, int *out)
{
	for (int i = 0; i < count; i++)
		if (strncmp(s, names[i], 3) == 0) {
			*out = i;
			return s + 3;
		}
	return NULL;
}

static const char *const day_names[] = { "Mon", "Tue", "Wed", "Thu", "Fri",
					 "Sat", "Sun" };
static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec" };

static int days_in_month(int year, int month0)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month0 == 1 && leap ? 29 : days[month0];
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" into tm; the text after it, or NULL.
 * Each step yields NULL on a mismatch and later steps pass it on. */
static const char *take_imf_fixdate(const char *s, struct tm *tm)
{
	int wday, mday = 0, mon = 0, year = 0, hour = 0, min = 0, sec = 0;

	s = take_name(s, day_names, 7, &wday);
	s = s ? take_word(s, ", ") : NULL;
	s = s ? take_digits(s, 2, &mday) : NULL;
	s = s ? take_word(s, " ") : NULL;
	s = s ? take_name(s, month_names, 12, &mon) : NULL;
	s = s ? take_word(s, " ") : NULL;
	s = s ? take_digits(s, 4, &year) : NULL;
	s = s ? take_word(s, " ") : NULL;
	s = s ? take_digits(s, 2, &hour) : NULL;
	s = s ? take_word(s, ":") : NULL;
	s = s ? take_digits(s, 2, &min) : NULL;
	s = s ? take_word(s, ":") : NULL;
	s = s ? take_digits(s, 2, &sec) : NULL;
	s = s ? take_word(s, " GMT") : NULL;
	/* 60: a leap second, which timegm folds into the next minute */
	if (!s || mday < 1 || mday > days_in_month(year, mon) || hour > 23 ||
	    min > 59 || sec > 60)
		return NULL;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = year - 1900;
	tm->tm_mon = mon;
	tm->tm_mday = mday;
	tm->tm_hour = hour;
	tm->tm_min = min;
	tm->tm_sec = sec;
	return s;
}

static int64_t parse_http_date(const char *s, size_t len, int64_t now_wall_ms)
{
	struct tm tm;
	const char *end = take_imf_fixdate(s, &tm);
	int64_t at_ms, wait_ms;

	if (!end || (size_t)(end - s) != len)
		return -1;
	at_ms = (int64_t)timegm(&tm) * RS_MS_PER_SEC;
	wait_ms = at_ms - now_wall_ms;
	if (wait_ms < 0)
		return 0;
	return wait_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : wait_ms;
}

int64_t rs_retry_after_parse(const char *value, int64_t now_wall_ms)
{
	const char *s;
	size_t len;

	if (!value)
		return -1;
	s = skip_ows(value);
	len = trimmed_len(s);
	if (len > 0 && is_digit(s[0]))
		return parse_delta_seconds(s, len);
	return parse_http_date(s, len, now_wall_ms);
}

/* --- the budget ----------------------------------------------------------- */

struct bucket {
	uint64_t calls, retries;
};

/*
 * ring[s mod nbuckets] holds second s for every s in
 * (head_sec - nbuckets, head_sec]; window_calls and window_retries are the
 * sums over the ring, kept as running totals.  lock guards every field
 * below it; the ones above are set by rs_retry_budget_new only.
 */
struct rs_retry_budget {
	size_t nbuckets;              /* window seconds */
	unsigned percent;
	uint64_t min_in_window;       /* min_per_second * window seconds */

	pthread_mutex_t lock;
	struct bucket *ring;
	bool started;                 /* head_sec is meaningful */
	int64_t head_sec;
	uint64_t window_calls, window_retries;
	uint64_t calls, retries, denied;
};

static int check_budget_options(const struct rs_retry_options *o,
				struct rs_err *err)
{
	char got[32];

	if (o->budget_window_ms < BUDGET_WINDOW_MIN_MS ||
	    o->budget_window_ms > BUDGET_WINDOW_MAX_MS ||
	    o->budget_window_ms % RS_MS_PER_SEC != 0) {
		rs_format_duration(o->budget_window_ms, got, sizeof(got));
		return rs_err_set(err, "retry budget_window '%s' is not a whole "
				  "number of seconds from 1s to 10m", got);
	}
	if (o->budget_percent > 100)
		return rs_err_set(err, "retry budget_percent %u is above 100",
				  o->budget_percent);
	return 0;
}

int rs_retry_budget_new(struct rs_retry_budget **out,
			const struct rs_retry_options *o, struct rs_err *err)
{
	struct rs_retry_budget *b;

	*out = NULL;
	if (check_budget_options(o, err) < 0)
		return -1;
	b = calloc(1, sizeof(*b));
	if (b)
		b->nbuckets = (size_t)(o->budget_window_ms / RS_MS_PER_SEC);
	if (b)
		b->ring = calloc(b->nbuckets, sizeof(*b->ring));
	if (!b || !b->ring) {
		free(b);
		return rs_err_set(err, "retry budget: out of memory");
	}
	b->percent = o->budget_percent;
	b->min_in_window = (uint64_t)o->budget_min_per_second * b->nbuckets;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

void rs_retry_budget_free(struct rs_retry_budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->ring);
	free(b);
}

static int64_t second_of(int64_t ms)
{
	/* floor, so a negative reading still falls in its own second */
	return ms >= 0 ? ms / RS_MS_PER_SEC : (ms + 1) / RS_MS_PER_SEC - 1;
}

static struct bucket *slot(struct rs_retry_budget *b, int64_t sec)
{
	int64_t n = (int64_t)b->nbuckets;

	return &b->ring[((sec % n) + n) % n];
}

static void clear_slot(struct rs_retry_budget *b, int64_t sec)
{
	struct bucket *k = slot(b, sec);

	b->window_calls -= k->calls;
	b->window_retries -= k->retries;
	k->calls = k->retries = 0;
}

/* Move the window's head to sec (lock held): at most nbuckets slots are
 * cleared however far time jumped. */
static void advance(struct rs_retry_budget *b, int64_t sec)
{
	int64_t n = (int64_t)b->nbuckets;

	if (!b->started) {
		b->started = true;
		b->head_sec = sec;
		return;
	}
	if (sec <= b->head_sec)
		return;
	if (sec - b->head_sec >= n) {
		memset(b->ring, 0, b->nbuckets * sizeof(*b->ring));
		b->window_calls = b->window_retries = 0;
	} else {
		for (int64_t s = b->head_sec + 1; s <= sec; s++)
			clear_slot(b, s);
	}
	b->head_sec = sec;
}

/* The bucket to count an event at now_ms in (lock held). */
static struct bucket *bucket_for(struct rs_retry_budget *b, int64_t now_ms)
{
	int64_t sec = second_of(now_ms);
	int64_t oldest;

	advance(b, sec);
	oldest = b->head_sec - (int64_t)b->nbuckets + 1;
	return slot(b, sec < oldest ? oldest : sec);
}

void rs_retry_budget_call(struct rs_retry_budget *b, int64_t now_ms)
{
	pthread_mutex_lock(&b->lock);
	bucket_for(b, now_ms)->calls++;
	b->window_calls++;
	b->calls++;
	pthread_mutex_unlock(&b->lock);
}

static bool budget_allows(const struct rs_retry_budget *b)
{
	if (b->percent == 0)
		return false;
	return b->window_retries <
	       b->min_in_window + b->window_calls * b->percent / 100;
}

bool rs_retry_budget_try(struct rs_retry_budget *b, int64_t now_ms)
{
	struct bucket *k;
	bool allowed;

	pthread_mutex_lock(&b->lock);
	k = bucket_for(b, now_ms);
	allowed = budget_allows(b);
	if (allowed) {
		k->retries++;
		b->window_retries++;
		b->retries++;
	} else {
		b->denied++;
	}
	pthread_mutex_unlock(&b->lock);
	return allowed;
}

void rs_retry_budget_stats(struct rs_retry_budget *b, int64_t now_ms,
			   struct rs_retry_budget_stats *out)
{
	pthread_mutex_lock(&b->lock);
	if (b->started)
		advance(b, second_of(now_ms));
	out->calls = b->calls;
	out->retries = b->retries;
	out->denied = b->denied;
	out->window_calls = b->window_calls;
	out->window_retries = b->window_retries;
	pthread_mutex_unlock(&b->lock);
}
