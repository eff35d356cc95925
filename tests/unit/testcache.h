/*
 * testcache.h: compare whole caches in tests: every live entry, sorted by
 * key, read through the shard copies snapshots use.
 */
#ifndef RS_TESTCACHE_H
#define RS_TESTCACHE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

struct kv {
	unsigned char *key, *val;
	size_t klen, vlen;
	int64_t stored_ms, expires_ms;
};

struct dump {
	struct kv *v;
	size_t n;
};

static inline int cmp_kv(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int r = memcmp(x->key, y->key, n);

	if (r)
		return r;
	return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static inline void dump_free(struct dump *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].key);
		free(d->v[i].val);
	}
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* Every live entry, by key, through the shard copies snapshots use. */
static inline int dump_cache(struct rs_cache *c, struct dump *d)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_item *items;
	size_t s, i, n;
	struct kv *p;

	d->v = NULL;
	d->n = 0;
	for (s = 0; s < rs_cache_num_shards(c); s++) {
		if (rs_cache_shard_copy(c, s, &items, &n, &err)) {
			printf("#   shard copy: %s\n", err.msg);
			return -1;
		}
		p = n ? realloc(d->v, (d->n + n) * sizeof(*p)) : d->v;
		if (n && !p) {
			rs_cache_items_free(items, n);
			return -1;
		}
		d->v = p;
		for (i = 0; i < n; i++) {
			struct kv *x = &d->v[d->n++];

			x->key = items[i].key;
			x->val = items[i].val;
			x->klen = items[i].klen;
			x->vlen = items[i].vlen;
			x->stored_ms = items[i].stored_ms;
			x->expires_ms = items[i].expires_ms;
			items[i].key = items[i].val = NULL;
		}
		rs_cache_items_free(items, n);
	}
	if (d->n)
		qsort(d->v, d->n, sizeof(*d->v), cmp_kv);
	return 0;
}

/* true when equal, else says where they differ. */
static inline bool same_dump(const struct dump *a, const struct dump *b)
{
	size_t i;

	if (a->n != b->n) {
		printf("#   expected %zu entries, got %zu\n", a->n, b->n);
		return false;
	}
	for (i = 0; i < a->n; i++) {
		const struct kv *x = &a->v[i], *y = &b->v[i];

		if (x->klen != y->klen || memcmp(x->key, y->key, x->klen)) {
			printf("#   entry %zu: expected key '%s', got '%s'\n", i,
			       (const char *)x->key, (const char *)y->key);
			return false;
		}
		if (x->vlen != y->vlen || memcmp(x->val, y->val, x->vlen) ||
		    x->stored_ms != y->stored_ms ||
		    x->expires_ms != y->expires_ms) {
			printf("#   '%s': expected %zu bytes stored %" PRId64
			       " expires %" PRId64 ", got %zu bytes stored %" PRId64
			       " expires %" PRId64 "\n",
			       (const char *)x->key, x->vlen, x->stored_ms,
			       x->expires_ms, y->vlen, y->stored_ms,
			       y->expires_ms);
			return false;
		}
	}
	return true;
}

#endif
