/*
 * cache_run: what the `resyncctl cache` verbs share (cmd_cache.c defines
 * it): loading the configuration, opening the store, closing it so that
 * what was appended is committed, and showing keys, values, times and
 * sizes.
 */
#ifndef RS_CACHE_RUN_H
#define RS_CACHE_RUN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd.h"
#include "store.h"

struct cache_run {
	struct rs_config *cfg;
	/* From the configuration, db_path from --db if given; sync is
	 * batch (every verb flushes before it reports success). */
	struct rs_store_options so;
	char origin[64];                /* "resyncctl/PID" */
	struct cmd_ctx *ctx;
	struct rs_store *store;         /* after cache_open */
	struct rs_store_recovery rec;
};

enum open_mode {
	NEED_DB,        /* the database must exist */
	MAY_CREATE,     /* a missing one is created (set, import) */
};

/* Configuration and options only, no store; CMD_OK or the exit code (the
 * message printed).  Always call cache_finish after. */
int cache_setup(struct cmd_ctx *ctx, struct cache_run *r);
/* CMD_OK when r->so.db_path exists, else says so. */
int cache_need_db(struct cache_run *r);
/* Recover the store after cache_setup (warnings about what recovery met
 * go to stderr). */
int cache_open_store(struct cache_run *r, enum open_mode mode);
/* cache_setup, then cache_open_store. */
int cache_open(struct cmd_ctx *ctx, struct cache_run *r, enum open_mode mode);
/* Close the store (a failed final commit turns rc into CMD_FAIL, with the
 * message) and free; returns rc. */
int cache_finish(struct cache_run *r, int rc);
/* Print err, then cache_finish(r, CMD_FAIL). */
int cache_fail(struct cache_run *r, const struct rs_err *err);

/* Bytes for a terminal: printable ASCII as is, else \xNN, cut short. */
void cache_put_bytes(FILE *f, const void *p, size_t n);
/* obj[name] = the bytes as a JSON string when they are UTF-8 without NUL,
 * else obj[name_base64] = their base64. */
void cache_set_bytes(json_t *obj, const char *name, const void *p, size_t n);
/* "512 B", "11.8 MiB" */
void cache_fmt_size(uint64_t bytes, char *buf, size_t n);
/* "4m59s", or "stale 3s" once past expiry. */
void cache_fmt_ttl(int64_t expires_ms, int64_t now, char *buf, size_t n);

/* The verbs of cmd_cache_admin.c, for cmd_cache's table. */
extern const struct cmd_entry cache_stats, cache_snapshot, cache_snapshots,
	cache_restore, cache_verify, cache_gc, cache_export, cache_import;

#endif
