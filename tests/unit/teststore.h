/*
 * teststore.h: driving a durable store in tests: an injected clock, the
 * options the store tests share, open and close, set/delete/purge/get by C
 * string with failures reported as TAP comments, and whole-store checks.
 * Static inline, include freely; it brings in tap.h (dir_for reports with
 * ok()), so like tap.h it belongs in the test program's one .c file.
 */
#ifndef RS_TESTSTORE_H
#define RS_TESTSTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "tap.h"
#include "testcache.h"
#include "testlib.h"
#include "util.h"

#define T0_MS 1700000000000LL        /* the injected clock's start */
#define LONG_TTL_MS (24 * RS_MS_PER_HOUR)

/* store_opts' cache and database limits; a test that needs others sets
 * them in the options it gets back. */
#define STORE_NUM_SHARDS 4
#define STORE_MAX_ENTRIES 100000
#define STORE_MAX_MEMORY (64 * RS_MIB)
#define STORE_BUSY_TIMEOUT_MS 2000

/* The injected clock: fake_clock reads clk, a test sets and advances it.
 * Atomic, so threads may read it while the test moves it. */
static _Atomic int64_t clk = T0_MS;

static inline int64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&clk);
}

/* Options for a store at path on fake_clock, TTL LONG_TTL_MS by default. */
static inline struct rs_store_options store_opts(const char *path,
						 enum rs_wal_sync sync,
						 const char *origin)
{
	struct rs_store_options o = {
		.db_path = path,
		.sync = sync,
		.origin = origin,
		.busy_timeout_ms = STORE_BUSY_TIMEOUT_MS,
		.snapshot_retention_ms = 7 * RS_MS_PER_DAY,
		.wal_retention_ms = RS_MS_PER_HOUR,
		.cache = {
			.num_shards = STORE_NUM_SHARDS,
			.max_entries = STORE_MAX_ENTRIES,
			.max_memory_bytes = STORE_MAX_MEMORY,
			.default_ttl_ms = LONG_TTL_MS,
			.clock_ms = fake_clock,
		},
	};

	return o;
}

/* The open store, NULL (and why, as a comment) when it does not open. */
static inline struct rs_store *open_store(const struct rs_store_options *o,
					  struct rs_store_recovery *rec)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_store *s = NULL;

	if (rs_store_open(&s, o, rec, &err))
		printf("#   rs_store_open: %s\n", err.msg);
	return s;
}

/* NULL is fine. */
static inline void close_store(struct rs_store *s)
{
	struct rs_err err = RS_ERR_INIT;

	if (s && rs_store_close(s, &err))
		printf("#   rs_store_close: %s\n", err.msg);
}

/* ttl_ms < 0: the default TTL. */
static inline int set_str(struct rs_store *s, const char *k, const char *v,
			  int64_t ttl_ms)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = rs_store_set(s, k, strlen(k), v, strlen(v), ttl_ms, &err);

	if (rc)
		printf("#   set %s: %s\n", k, err.msg);
	return rc;
}

static inline int del_str(struct rs_store *s, const char *k)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = rs_store_delete(s, k, strlen(k), NULL, &err);

	if (rc)
		printf("#   delete %s: %s\n", k, err.msg);
	return rc;
}

static inline int purge_str(struct rs_store *s, const char *prefix)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = rs_store_purge(s, prefix, strlen(prefix), NULL, &err);

	if (rc)
		printf("#   purge %s: %s\n", prefix, err.msg);
	return rc;
}

/* The new snapshot's id, -1 when it fails. */
static inline int64_t take_snapshot(struct rs_store *s)
{
	struct rs_snapshot_info info;
	struct rs_err err = RS_ERR_INIT;

	if (rs_store_snapshot(s, &info, &err)) {
		printf("#   snapshot: %s\n", err.msg);
		return -1;
	}
	return info.id;
}

/* The value of k as a malloc'd string, NULL when absent (or s is NULL);
 * fresh or inside a stale window.  *meta (may be NULL) gets its times. */
static inline char *get_str(struct rs_store *s, const char *k,
			    struct rs_cache_value *meta)
{
	struct rs_cache_value v;
	int st;

	if (!s)
		return NULL;
	st = rs_cache_get(rs_store_cache(s), k, strlen(k),
			  RS_CACHE_ALLOW_REVALIDATE | RS_CACHE_ALLOW_ERROR, &v);
	if (st != RS_CACHE_HIT && st != RS_CACHE_STALE)
		return NULL;
	if (meta)
		*meta = (struct rs_cache_value){ .stored_ms = v.stored_ms,
						 .expires_ms = v.expires_ms };
	return v.data;
}

static inline bool has_value(struct rs_store *s, const char *k,
			     const char *want)
{
	char *got = get_str(s, k, NULL);
	bool same = got && strcmp(got, want) == 0;

	if (!same)
		printf("#   %s: expected \"%s\", got \"%s\"\n", k, want,
		       got ? got : "(absent)");
	free(got);
	return same;
}

/* k is not there; false when s is NULL. */
static inline bool absent(struct rs_store *s, const char *k)
{
	char *got = get_str(s, k, NULL);

	if (got)
		printf("#   %s: expected absent, got \"%s\"\n", k, got);
	free(got);
	return s && !got;
}

/* Does the store hold exactly what `want` holds, times included? */
static inline bool same_as(const struct dump *want, struct rs_store *s)
{
	struct dump now;
	bool same;

	if (!s || dump_cache(rs_store_cache(s), &now))
		return false;
	same = same_dump(want, &now);
	dump_free(&now);
	return same;
}

/* A temp directory named for the test, path its resync.db; a failed
 * check named `name` when it cannot be made. */
static inline bool dir_for(struct tmpdir *t, const char *name, char *path)
{
	if (make_tmpdir(t, name)) {
		ok(0, name);
		return false;
	}
	join(path, t, "resync.db");
	return true;
}

#endif
