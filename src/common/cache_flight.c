/* cache_flight: single-flight get-or-load (see cache.h). */
#include "cache_int.h"

/* --- single flight -------------------------------------------------------- */

static struct flight *find_flight(struct shard *s, uint64_t h,
				  const void *key, size_t klen)
{
	struct flight *f;

	for (f = s->flights; f; f = f->next)
		if (f->hash == h && f->klen == klen &&
		    memcmp(f->key, key, klen) == 0)
			return f;
	return NULL;
}

static void unlink_flight(struct shard *s, struct flight *f)
{
	struct flight **pp = &s->flights;

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
}

static void free_flight(struct flight *f)
{
	if (!f)
		return;
	pthread_cond_destroy(&f->cond);
	free(f->val);
	free(f);
}

/* What a finished flight means for one of its callers, under s->lock. */
static int flight_result(struct rs_cache *c, struct shard *s,
			 struct flight *f, struct rs_cache_value *out,
			 struct entry **dead, struct rs_err *err)
{
	int st;

	if (f->ok) {
		if (out) {
			out->data = malloc(f->vlen + 1);
			if (!out->data)
				return rs_err_set(err, "out of memory");
			memcpy(out->data, f->val, f->vlen + 1);
			out->len = f->vlen;
			out->stored_ms = f->stored_ms;
			out->expires_ms = f->expires_ms;
		}
		return RS_CACHE_MISS;
	}
	st = cache_lookup_locked(c, s, f->hash, f->key, f->klen,
			   RS_CACHE_ALLOW_ERROR, now_ms(c), false, out, dead);
	if (st == RS_CACHE_STALE)
		return st;
	if (st < 0)
		return rs_err_set(err, "out of memory");
	rs_err_set(err, "%s", f->msg);
	err->code = f->code;
	return -1;
}

/* A waiter's side: s is locked and f->refs counts us. */
static int wait_flight(struct rs_cache *c, struct shard *s, struct flight *f,
		       int64_t wait_ms, struct rs_cache_value *out,
		       struct entry **dead, struct flight **gone,
		       struct rs_err *err)
{
	struct timespec ts;
	int rc = 0, st;

	rs_deadline_after(&ts, CLOCK_MONOTONIC, wait_ms);
	while (!f->done && rc == 0)
		rc = pthread_cond_timedwait(&f->cond, &s->lock, &ts);
	if (f->done) {
		st = flight_result(c, s, f, out, dead, err);
	} else {
		s->n.load_timeouts++;
		st = rs_err_set(err,
				"timed out waiting for the load of '%.*s%s'",
				shown_len(f->klen), f->key,
				shown_more(f->klen));
	}
	if (--f->refs == 0)
		*gone = f;
	return st;
}

/* The leader's side, no lock held: run the loader, store and publish. */
static int lead_flight(struct rs_cache *c, struct shard *s, struct flight *f,
		       rs_cache_loader load, void *arg, struct op *op,
		       struct rs_cache_value *out, struct rs_err *err)
{
	struct rs_err lerr = RS_ERR_INIT;
	struct entry *dead = NULL;
	struct flight *gone = NULL;
	void *val = NULL;
	char *copy = NULL;
	size_t vlen = 0;
	int64_t ttl = -1, now;
	uint64_t t0;
	int rc, st;

	/* Two clock reads per load, which is a miss going upstream anyway:
	 * the slow-operation log tells the loader's share from the cache's. */
	t0 = mono_us();
	rc = load(arg, f->key, f->klen, &val, &vlen, &ttl, &lerr);
	op->loader_us = mono_us() - t0;
	if (rc == 0 && !val && vlen)
		rc = rs_err_set(&lerr,
				"the loader of '%.*s%s' returned no value",
				shown_len(f->klen), f->key,
				shown_more(f->klen));
	if (rc == 0) {
		now = now_ms(c);
		if (ttl < 0)
			ttl = c->default_ttl_ms;
		f->stored_ms = now;
		f->expires_ms = rs_sat_add(now, ttl);
		/* Still served when it cannot be cached (counted). */
		cache_store(c, f->key, f->klen, val, vlen, f->stored_ms,
			    f->expires_ms, now, &op->lock_wait_us, NULL);
		copy = malloc(vlen + 1);
		if (copy) {
			if (vlen)
				memcpy(copy, val, vlen);
			copy[vlen] = '\0';
		} else {
			rc = rs_err_set(&lerr, "out of memory");
		}
	} else if (!lerr.msg[0]) {
		rs_err_set(&lerr, "loading '%.*s%s' failed",
			   shown_len(f->klen), f->key, shown_more(f->klen));
	}
	free(val);

	lock_timed(c, s, &op->lock_wait_us);
	f->done = true;
	f->ok = rc == 0;
	f->val = copy;
	f->vlen = vlen;
	if (!f->ok) {
		memcpy(f->msg, lerr.msg, sizeof(f->msg));
		f->code = lerr.code;
		s->n.load_failures++;
	}
	unlink_flight(s, f);
	pthread_cond_broadcast(&f->cond);
	st = flight_result(c, s, f, out, &dead, err);
	if (--f->refs == 0)
		gone = f;
	unlock(s);
	free_chain(dead);
	free_flight(gone);
	return st;
}

/* The call without its measurement (rs_cache_get_or_load times it). */
static int get_or_load(struct rs_cache *c, const void *key, size_t klen,
		       rs_cache_loader load, void *arg, int64_t wait_ms,
		       struct op *op, struct rs_cache_value *out,
		       struct rs_err *err)
{
	struct entry *dead = NULL;
	struct flight *f, *gone = NULL;
	struct shard *s;
	uint64_t h, t0;
	int st;

	if (cache_check_key(c, key, klen, err) < 0)
		return -1;
	if (!load)
		return rs_err_set(err, "no loader for '%.*s%s'",
				  shown_len(klen), (const char *)key,
				  shown_more(klen));
	h = cache_key_hash(c, key, klen);
	s = shard_of(c, h);
	lock_timed(c, s, &op->lock_wait_us);
	st = cache_lookup_locked(c, s, h, key, klen, 0, now_ms(c), true, out, &dead);
	if (st != RS_CACHE_MISS) {
		unlock(s);
		free_chain(dead);
		if (st < 0)
			return rs_err_set(err, "out of memory");
		return st;
	}
	f = find_flight(s, h, key, klen);
	if (f) {
		f->refs++;
		s->n.load_waits++;
		t0 = mono_us();
		st = wait_flight(c, s, f, wait_ms, out, &dead, &gone, err);
		op->load_wait_us = mono_us() - t0;
		unlock(s);
		free_chain(dead);
		free_flight(gone);
		return st;
	}
	f = calloc(1, sizeof(*f) + klen + 1);
	if (!f || pthread_cond_init(&f->cond, &c->condattr) != 0) {
		unlock(s);
		free_chain(dead);
		free(f);
		return rs_err_set(err, "out of memory");
	}
	f->hash = h;
	f->klen = klen;
	memcpy(f->key, key, klen);
	f->refs = 1;
	f->next = s->flights;
	s->flights = f;
	s->n.loads++;
	unlock(s);
	free_chain(dead);
	return lead_flight(c, s, f, load, arg, op, out, err);
}

int rs_cache_get_or_load(struct rs_cache *c, const void *key, size_t klen,
			 rs_cache_loader load, void *arg, int64_t wait_ms,
			 struct rs_cache_value *out, struct rs_err *err)
{
	struct op op;
	int st;

	op_start(c, &op, "get_or_load", &c->load_us);
	if (out)
		memset(out, 0, sizeof(*out));
	st = get_or_load(c, key, klen, load, arg, wait_ms, &op, out, err);
	cache_op_done(c, &op, key, klen);
	return st;
}

