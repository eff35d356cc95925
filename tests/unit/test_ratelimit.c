/* Token buckets: burst, refill, headers' figures, reporting once a minute,
 * reloads, the bounded table and concurrent takers. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"
#include "tap.h"

#define SEC 1000000LL

static struct rs_ratelimit *shared;
static _Atomic unsigned long shared_allowed;

static void *taker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		struct rs_rl_verdict v;
		/* no refill: time stands still */
		rs_ratelimit_take(shared, "read:hot", 1, 1000, 5 * SEC, 0, &v);
		if (v.allowed)
			shared_allowed++;
	}
	return NULL;
}

int main(void)
{
	struct rs_ratelimit *rl;
	struct rs_err err = RS_ERR_INIT;
	struct rs_rl_verdict v;
	struct rs_rl_stats st;
	int64_t t = 100 * SEC;

	ok(rs_ratelimit_new(&rl, 1000, &err) == 0, "create");

	/* a fresh client has the whole burst */
	int allowed = 0;
	for (int i = 0; i < 25; i++) {
		rs_ratelimit_take(rl, "read:alice", 10, 20, t, 0, &v);
		allowed += v.allowed;
		if (i == 0) {
			is_int(v.limit, 20, "limit is the burst");
			is_int(v.remaining, 19, "one token taken");
			is_int(v.reset_ms, 100, "full again in 1/rate");
		}
	}
	is_int(allowed, 20, "burst of 20 then refused");
	ok(!v.allowed, "the 25th is refused");
	is_int(v.remaining, 0, "nothing remains");
	is_int(v.retry_after_ms, 100, "one token back in 100 ms at 10/s");
	is_int(v.reset_ms, 2000, "full again in 2 s");

	/* refill: 0.35 s at 10/s gives 3 tokens */
	t += 350000;
	allowed = 0;
	for (int i = 0; i < 5; i++) {
		rs_ratelimit_take(rl, "read:alice", 10, 20, t, 0, &v);
		allowed += v.allowed;
	}
	is_int(allowed, 3, "3 tokens after 350 ms");
	ok(v.retry_after_ms > 0 && v.retry_after_ms <= 100, "retry after under 100 ms");

	/* clients are independent */
	rs_ratelimit_take(rl, "read:bob", 10, 20, t, 0, &v);
	ok(v.allowed && v.remaining == 19, "another client has its own bucket");
	rs_ratelimit_take(rl, "write:alice", 1, 2, t, 0, &v);
	ok(v.allowed && v.remaining == 1, "another class has its own bucket");

	/* after a long pause the bucket is full again, not more */
	t += 3600 * SEC;
	rs_ratelimit_take(rl, "read:alice", 10, 20, t, 0, &v);
	is_int(v.remaining, 19, "refill stops at the burst");

	/* a reload that lowers the burst caps the level at once */
	rs_ratelimit_take(rl, "read:alice", 10, 5, t, 0, &v);
	is_int(v.limit, 5, "new limit");
	is_int(v.remaining, 4, "level capped by the new burst");

	/* reporting: once per client per wall-clock minute */
	struct rs_ratelimit *r2;
	ok(rs_ratelimit_new(&r2, 16, &err) == 0, "second table");
	int64_t now_ms = 1000LL * 60000 + 5;
	int reports = 0;
	for (int i = 0; i < 50; i++) {
		rs_ratelimit_take(r2, "x", 0.001, 1, t, now_ms, &v);
		reports += v.report;
	}
	is_int(reports, 1, "49 refusals, one report");
	rs_ratelimit_take(r2, "x", 0.001, 1, t, now_ms + 60000, &v);
	ok(v.report && v.refused_before == 49, "next minute reports the 49 of the last");
	rs_ratelimit_take(r2, "x", 0.001, 1, t, now_ms + 60001, &v);
	ok(!v.report, "then quiet again");

	/* bounded: a flood of names that all stay empty fills the table and
	 * evicts the least recently used, which only ever admits again */
	rs_ratelimit_take(r2, "victim", 0.001, 1, t, now_ms, &v);
	ok(v.allowed, "victim's one token");
	char name[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "flood%d", i);
		rs_ratelimit_take(r2, name, 0.001, 1, t + i * 1000, now_ms, &v);
	}
	rs_ratelimit_stats(r2, t + 10000LL * 1000 + SEC, &st);
	ok(st.capacity >= 16 && st.capacity <= 1024, "capacity stays bounded");
	ok(st.evicted > 0, "a full table evicts");
	is_int(st.allowed + st.limited, 50 + 2 + 1 + 10000, "every take counted");
	is_int(st.clients, st.capacity, "every slot holds an empty bucket");
	rs_ratelimit_take(r2, "victim", 0.001, 1, t + 10000LL * 1000, now_ms, &v);
	ok(v.allowed, "the evicted victim starts full again");

	/* a name longer than the slot: still one bucket, and distinct from a
	 * name sharing its first 95 bytes */
	char longa[200], longb[200];
	memset(longa, 'a', 199);
	longa[199] = '\0';
	memcpy(longb, longa, sizeof(longb));
	longb[198] = 'b';
	struct rs_ratelimit *r3;
	ok(rs_ratelimit_new(&r3, 64, &err) == 0, "third table");
	rs_ratelimit_take(r3, longa, 1, 2, t, 0, &v);
	rs_ratelimit_take(r3, longa, 1, 2, t, 0, &v);
	ok(v.allowed && v.remaining == 0, "long name keeps its bucket");
	rs_ratelimit_take(r3, longb, 1, 2, t, 0, &v);
	ok(v.allowed && v.remaining == 1, "a different long name has another");
	rs_ratelimit_stats(r3, t, &st);
	is_int(st.clients, 2, "two clients");

	/* threads: 4 x 20000 takes against a burst of 1000 with no refill
	 * admit exactly 1000 */
	ok(rs_ratelimit_new(&shared, 64, &err) == 0, "shared table");
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, taker, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	is_int(shared_allowed, 1000, "exactly the burst admitted across threads");

	rs_ratelimit_free(shared);
	rs_ratelimit_free(r3);
	rs_ratelimit_free(r2);
	rs_ratelimit_free(rl);
	return tap_done();
}
