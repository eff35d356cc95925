/*
 * ratelimit: see ratelimit.h.  Each shard is an open-addressed table probed
 * linearly over a short window; slots are never emptied, only reused, so
 * probing needs no tombstones.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define SHARDS 16
#define PROBE 16

struct bucket {
	uint64_t hash;              /* 0: never used */
	char name[RS_RL_NAME_MAX];
	double tokens;
	double rate;                /* as of the last take, to judge fullness */
	int64_t last_us;
	uint32_t burst;
	int64_t minute;             /* wall-clock minute of the last report */
	uint64_t refused;           /* refusals since that report */
};

struct shard {
	pthread_mutex_t lock;
	struct bucket *slots;
	size_t mask;
};

struct rs_ratelimit {
	struct shard shards[SHARDS];
	size_t per_shard;
	atomic_uint_least64_t allowed, limited, evicted;
};

/* FNV-1a, never 0 (0 marks an unused slot). */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

int rs_ratelimit_new(struct rs_ratelimit **out, size_t max_clients,
		     struct rs_err *err)
{
	struct rs_ratelimit *rl = calloc(1, sizeof(*rl));
	size_t n = 16;

	*out = NULL;
	if (!rl)
		return rs_err_set(err, "out of memory");
	while (n < max_clients / SHARDS && n < ((size_t)1 << 24))
		n <<= 1;
	rl->per_shard = n;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &rl->shards[i];
		/* calloc'd pages are touched only when clients arrive */
		s->slots = calloc(n, sizeof(*s->slots));
		s->mask = n - 1;
		if (!s->slots || pthread_mutex_init(&s->lock, NULL)) {
			free(s->slots);
			s->slots = NULL;
			rs_ratelimit_free(rl);
			return rs_err_set(err, "out of memory for %zu rate-limit buckets",
					  max_clients);
		}
	}
	*out = rl;
	return 0;
}

void rs_ratelimit_free(struct rs_ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		if (!rl->shards[i].slots)
			break;
		pthread_mutex_destroy(&rl->shards[i].lock);
		free(rl->shards[i].slots);
	}
	free(rl);
}

/* Tokens in b at now_us, not above its burst. */
static double level(const struct bucket *b, int64_t now_us)
{
	double t = b->tokens;

	if (now_us > b->last_us)
		t += (double)(now_us - b->last_us) * b->rate / 1e6;
	return t > b->burst ? b->burst : t;
}

static bool is_full(const struct bucket *b, int64_t now_us)
{
	return !b->hash || level(b, now_us) >= b->burst;
}

static bool same_name(const struct bucket *b, uint64_t h, const char *name)
{
	return b->hash == h && strncmp(b->name, name, sizeof(b->name) - 1) == 0;
}

/* The bucket for name in s (under its lock), made fresh if need be. */
static struct bucket *find(struct rs_ratelimit *rl, struct shard *s, uint64_t h,
			   const char *name, double rate, uint32_t burst,
			   int64_t now_us)
{
	struct bucket *reuse = NULL, *oldest = NULL;

	for (size_t i = 0; i < PROBE && i <= s->mask; i++) {
		struct bucket *b = &s->slots[(h + i) & s->mask];

		if (same_name(b, h, name))
			return b;
		if (!reuse && is_full(b, now_us))
			reuse = b;
		if (!oldest || b->last_us < oldest->last_us)
			oldest = b;
	}
	if (!reuse) {
		reuse = oldest;
		atomic_fetch_add_explicit(&rl->evicted, 1, memory_order_relaxed);
	}
	memset(reuse, 0, sizeof(*reuse));
	reuse->hash = h;
	strncpy(reuse->name, name, sizeof(reuse->name) - 1);
	reuse->tokens = burst;
	reuse->rate = rate;
	reuse->burst = burst;
	reuse->last_us = now_us;
	return reuse;
}

static int64_t ms_for(double tokens, double rate)
{
	return tokens <= 0 ? 0 : (int64_t)ceil(tokens / rate * 1000.0);
}

void rs_ratelimit_take(struct rs_ratelimit *rl, const char *client,
		       double rate, uint32_t burst, int64_t now_us,
		       int64_t now_ms, struct rs_rl_verdict *v)
{
	uint64_t h = name_hash(client);
	struct shard *s = &rl->shards[(h >> 56) % SHARDS];

	if (rate <= 0)
		rate = 1e-9;    /* a zero rate never refills; avoid dividing by 0 */
	if (!burst)
		burst = 1;
	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&s->lock);
	struct bucket *b = find(rl, s, h, client, rate, burst, now_us);
	/* rate and burst may have changed with a reload: the level so far
	 * was earned at the old rate, the cap is the new burst */
	double t = level(b, now_us);
	b->rate = rate;
	b->burst = burst;
	if (t > burst)
		t = burst;
	if (now_us > b->last_us)
		b->last_us = now_us;
	if (t >= 1.0) {
		t -= 1.0;
		v->allowed = true;
	} else {
		int64_t minute = now_ms / 60000;
		v->retry_after_ms = ms_for(1.0 - t, rate);
		if (b->minute != minute) {
			v->report = true;
			v->refused_before = b->refused;
			b->refused = 0;
			b->minute = minute;
		}
		b->refused++;
	}
	b->tokens = t;
	v->limit = burst;
	v->remaining = (uint32_t)floor(t);
	v->reset_ms = ms_for((double)burst - t, rate);
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(v->allowed ? &rl->allowed : &rl->limited, 1,
				  memory_order_relaxed);
}

void rs_ratelimit_stats(struct rs_ratelimit *rl, int64_t now_us,
			struct rs_rl_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->allowed = atomic_load(&rl->allowed);
	st->limited = atomic_load(&rl->limited);
	st->evicted = atomic_load(&rl->evicted);
	st->capacity = rl->per_shard * SHARDS;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &rl->shards[i];
		pthread_mutex_lock(&s->lock);
		for (size_t j = 0; j <= s->mask; j++)
			st->clients += !is_full(&s->slots[j], now_us);
		pthread_mutex_unlock(&s->lock);
	}
}
