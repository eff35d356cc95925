/*
 * retry: when and how long to wait before retrying an upstream call
 * (the seed's retry_with_backoff, AWS "exponential backoff and jitter"),
 * and a retry budget (Finagle / Linkerd) so retries cannot multiply the
 * load on an upstream that is already failing.
 *
 * Backoff before retry n (n = 1 for the first retry):
 *   full          random in [0, min(cap, base * 2^(n-1))]
 *   decorrelated  min(cap, random in [base, prev * 3]), prev starting at base
 * Both are floored at 1 ms.
 *
 * Retryable: only idempotent requests (the caller says), and only for
 * connect errors, timeouts, resets, partial bodies, 502, 503, 504 and 429.
 * A Retry-After on 429/503 (delta-seconds or an HTTP date) replaces the
 * computed backoff when it is longer; a retry is never started when the
 * backoff would end past the request's deadline.
 *
 * Budget: calls and retries are counted in one-second buckets over
 * budget_window.  A retry may go ahead when
 *   retries_in_window < budget_min_per_second * window_seconds
 *                       + calls_in_window * budget_percent / 100
 * (budget_percent 0 disables retries entirely).  Thread-safe (one mutex,
 * O(window seconds) work).  Time is passed in (monotonic ms) for tests.
 */
#ifndef RS_RETRY_H
#define RS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "breaker.h"
#include "config.h"
#include "err.h"

enum rs_retry_jitter { RS_JITTER_FULL, RS_JITTER_DECORRELATED };

struct rs_retry_options {
	unsigned attempts;            /* tries, the first included; >= 1 */
	int64_t base_ms, cap_ms;
	enum rs_retry_jitter jitter;
	int64_t per_try_timeout_ms;   /* 0 = the upstream's request_timeout */
	unsigned budget_percent;      /* 0..100 */
	unsigned budget_min_per_second;
	int64_t budget_window_ms;     /* whole seconds, 1 s .. 600 s */
};

void rs_retry_options_default(struct rs_retry_options *o);
/* From the [retry] section of cfg (schema defaults for unset keys). */
void rs_retry_options_from_config(struct rs_retry_options *o,
				  const struct rs_config *cfg);

/* The backoff state of one request's sequence of tries. */
struct rs_backoff {
	int64_t prev_ms;              /* decorrelated: the last delay */
	uint64_t rng;                 /* xorshift64 state; never 0 */
};
/* seed 0 = seeded from the clock and the thread */
void rs_backoff_init(struct rs_backoff *b, uint64_t seed);
/* Delay before retry n (1-based) per the options' jitter. */
int64_t rs_backoff_next(struct rs_backoff *b, const struct rs_retry_options *o,
			unsigned n);

/* Is this outcome worth another try (for an idempotent request)? */
bool rs_retry_retryable(long http_status, enum rs_call_error error);

/* Parse a Retry-After value: delta-seconds or an IMF-fixdate (RFC 9110),
 * relative to now_wall_ms.  Returns ms >= 0, or -1 when unparsable. */
int64_t rs_retry_after_parse(const char *value, int64_t now_wall_ms);

struct rs_retry_budget;
int rs_retry_budget_new(struct rs_retry_budget **out,
			const struct rs_retry_options *o, struct rs_err *err);
void rs_retry_budget_free(struct rs_retry_budget *b);
/* Count one original call (not a retry). */
void rs_retry_budget_call(struct rs_retry_budget *b, int64_t now_ms);
/* May a retry go ahead?  true: counted as a retry; false: counted as
 * denied. */
bool rs_retry_budget_try(struct rs_retry_budget *b, int64_t now_ms);

struct rs_retry_budget_stats {
	uint64_t calls, retries, denied;       /* since start */
	uint64_t window_calls, window_retries; /* in the current window */
};
void rs_retry_budget_stats(struct rs_retry_budget *b, int64_t now_ms,
			   struct rs_retry_budget_stats *out);

#endif
