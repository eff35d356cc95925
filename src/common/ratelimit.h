/*
 * ratelimit: token buckets per client, in a bounded table shared by every
 * thread of a process.
 *
 * A bucket holds up to `burst` tokens and gains `rate` tokens a second; a
 * request takes one or is refused.  Clients are named by the caller (the
 * responder uses "CLASS:IDENTITY": the route class and the API key name,
 * JWT subject or client address).  Rate and burst come with each call, so
 * a configuration reload changes them without losing the buckets.
 *
 * The table has a fixed number of slots, chosen at creation, split into
 * shards with a lock each.  A bucket that has refilled to full is the same
 * as no bucket, so its slot is reused; when a probe window holds no such
 * slot the least recently used one is taken (counted as an eviction).  An
 * attacker cycling through identities can therefore push others out, which
 * only ever gives them a full bucket again: the table errs towards
 * admitting, never towards refusing someone who did nothing.
 *
 * Refusals are counted per bucket so that callers can log (and audit) them
 * once per client per minute instead of once per request.
 */
#ifndef RS_RATELIMIT_H
#define RS_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Client names longer than this are cut; the full name's hash still tells
 * them apart. */
#define RS_RL_NAME_MAX 96

struct rs_ratelimit;

struct rs_rl_verdict {
	bool allowed;
	uint32_t limit;             /* burst */
	uint32_t remaining;         /* whole tokens left after this request */
	int64_t reset_ms;           /* until the bucket is full again */
	int64_t retry_after_ms;     /* refused: until one token is back */
	/* Refused and the first refusal of this client in the current minute
	 * (wall clock): log it, with the refusals of the minute before. */
	bool report;
	uint64_t refused_before;
};

struct rs_rl_stats {
	uint64_t allowed, limited, evicted;
	size_t clients;             /* buckets in use (not yet full) */
	size_t capacity;
};

/* A table of about max_clients slots (rounded up to a power of two per
 * shard). */
int rs_ratelimit_new(struct rs_ratelimit **out, size_t max_clients,
		     struct rs_err *err);
void rs_ratelimit_free(struct rs_ratelimit *rl);

/* Take one token from client's bucket.  now_us is monotonic; now_ms is
 * wall-clock time, used only for the once-a-minute reporting. */
void rs_ratelimit_take(struct rs_ratelimit *rl, const char *client,
		       double rate, uint32_t burst, int64_t now_us,
		       int64_t now_ms, struct rs_rl_verdict *v);

void rs_ratelimit_stats(struct rs_ratelimit *rl, int64_t now_us,
			struct rs_rl_stats *st);

#endif
