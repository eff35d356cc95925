/*
 * resyncctl cache: look into and repair the cache's persistent state.
 *
 * Every verb works on the database, never on a responder's memory: it
 * recovers the cache from the newest snapshot and the log (as a responder
 * does at start), acts, and for a mutation appends log records, which a
 * running responder applies within a second (it follows the log).  So the
 * same commands work with the responder up or down, and nothing either
 * writes is lost.  The store is opened with sync = batch and flushed
 * before exit: a mutation reported done is committed.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_run.h"
#include "cachefile.h"
#include "cmd.h"
#include "config.h"
#include "repair.h"
#include "schema.h"
#include "store.h"
#include "util.h"
#include "xalloc.h"

/* What a key or value shown in text output is cut to. */
#define SHOWN_MAX 200
#define LIST_LIMIT_DEFAULT 1000

static const char *const sections[] = { "cache", "persistence", "server", NULL };

/* ---- output helpers ------------------------------------------------------ */

/* Printable ASCII as is, anything else as \xNN, cut at SHOWN_MAX. */
void cache_put_bytes(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n && i < SHOWN_MAX; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			fputc(s[i], f);
		else
			fprintf(f, "\\x%02x", s[i]);
	}
	if (n > SHOWN_MAX)
		fputs("...", f);
}

/* obj[name] = the bytes as a string when they are UTF-8 text without NUL,
 * else obj[name_base64] = base64 of them. */
void cache_set_bytes(json_t *obj, const char *name, const void *p, size_t n)
{
	json_t *s = memchr(p, '\0', n) ? NULL : json_stringn(p, n);
	char key[64];
	unsigned char *b64;

	if (s) {
		json_object_set_new(obj, name, s);
		return;
	}
	b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock(b64, p, (int)n);
	snprintf(key, sizeof(key), "%s_base64", name);
	json_object_set_new(obj, key, json_string((char *)b64));
	free(b64);
}

void cache_fmt_size(uint64_t bytes, char *buf, size_t n)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, n, "%" PRIu64 " B", bytes);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f %s", v, unit[u]);
}

/* Two units at most, for people: "850ms", "42s", "4m59s", "2h05m", "3d04h". */
static void human_duration(int64_t ms, char *buf, size_t n)
{
	int64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, n, "%" PRId64 "ms", ms);
	else if (s < 60)
		snprintf(buf, n, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, n, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
}

void cache_fmt_ttl(int64_t expires_ms, int64_t now, char *buf, size_t n)
{
	char d[32];

	if (expires_ms > now) {
		human_duration(expires_ms - now, buf, n);
	} else {
		human_duration(now - expires_ms, d, sizeof(d));
		snprintf(buf, n, "stale %s", d);
	}
}

/* ---- setting up ---------------------------------------------------------- */

int cache_setup(struct cmd_ctx *ctx, struct cache_run *r)
{
	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	r->cfg = cmd_load_config(ctx, sections);
	if (!r->cfg)
		return CMD_FAIL;
	snprintf(r->origin, sizeof(r->origin), "resyncctl/%ld", (long)getpid());
	rs_store_options_from_config(r->cfg, r->origin, &r->so);
	if (ctx->g.db) {
		r->so.db_path = ctx->g.db;
	} else if (r->so.sync == RS_WAL_SYNC_OFF) {
		cmd_error(ctx, "persistence is off ([persistence] sync = off in '%s'): "
			  "the cache lives only in the responder's memory; give --db FILE to work on a database",
			  rs_config_path(r->cfg));
		return CMD_FAIL;
	}
	/* Bulk verbs need appends that do not wait one commit each; every
	 * verb flushes before it reports success. */
	r->so.sync = RS_WAL_SYNC_BATCH;
	return CMD_OK;
}

int cache_need_db(struct cache_run *r)
{
	if (access(r->so.db_path, F_OK) == 0)
		return CMD_OK;
	cmd_error(r->ctx, "cannot open '%s': %s", r->so.db_path, strerror(errno));
	return CMD_FAIL;
}

/* Warnings about what recovery met, on stderr. */
static void recovery_notes(struct cache_run *r)
{
	const struct rs_store_recovery *rec = &r->rec;

	if (r->ctx->g.verbosity < 0)
		return;
	if (rec->snapshot.skipped)
		cmd_error(r->ctx, "warning: %d corrupt snapshot(s) passed over (%s); run 'resyncctl cache verify'",
			  rec->snapshot.skipped, rec->snapshot.skipped_reason);
	if (rec->log.stopped)
		cmd_error(r->ctx, "warning: the cache log stops at seq %" PRId64 ": %s; "
			  "records after it are not applied (run 'resyncctl cache verify --repair')",
			  rec->log.bad_seq, rec->log.reason);
	if (rec->rejected)
		cmd_error(r->ctx, "warning: %" PRIu64 " entries refused by the cache's bounds (%s)",
			  rec->rejected, rec->rejected_reason);
}

int cache_open(struct cmd_ctx *ctx, struct cache_run *r, enum open_mode mode)
{
	int rc = cache_setup(ctx, r);

	return rc == CMD_OK ? cache_open_store(r, mode) : rc;
}

int cache_open_store(struct cache_run *r, enum open_mode mode)
{
	struct rs_err err = RS_ERR_INIT;

	if (mode == NEED_DB && cache_need_db(r) != CMD_OK)
		return CMD_FAIL;
	if (rs_store_open(&r->store, &r->so, &r->rec, &err)) {
		cmd_error(r->ctx, "%s", err.msg);
		return CMD_FAIL;
	}
	recovery_notes(r);
	return CMD_OK;
}

/* Close (committing what is queued) and free; a failed commit turns a
 * success into a failure. */
int cache_finish(struct cache_run *r, int rc)
{
	struct rs_err err = RS_ERR_INIT;

	if (r->store && rs_store_close(r->store, &err)) {
		cmd_error(r->ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	r->store = NULL;
	rs_config_free(r->cfg);
	r->cfg = NULL;
	return rc;
}

int cache_fail(struct cache_run *r, const struct rs_err *err)
{
	cmd_error(r->ctx, "%s", err->msg);
	return cache_finish(r, CMD_FAIL);
}

/* ---- get, set, delete, purge --------------------------------------------- */

static int run_get(struct cmd_ctx *ctx)
{
	const char *key = ctx->argv[0];
	struct rs_cache_value v = { 0 };
	struct cache_run r;
	int st, rc;

	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	st = rs_cache_get(rs_store_cache(r.store), key, strlen(key),
			  RS_CACHE_ALLOW_REVALIDATE | RS_CACHE_ALLOW_ERROR, &v);
	if (st < 0) {
		cmd_error(ctx, "out of memory");
		return cache_finish(&r, CMD_FAIL);
	}
	if (st == RS_CACHE_MISS) {
		if (ctx->g.json) {
			json_t *j = json_object();

			cache_set_bytes(j, "key", key, strlen(key));
			json_object_set_new(j, "status", json_string("miss"));
			cmd_print_json(j);
		} else if (ctx->g.verbosity >= 0) {
			cmd_error(ctx, "'%s' is not cached", key);
		}
		return cache_finish(&r, CMD_BAD);
	}
	if (ctx->g.json) {
		json_t *j = json_object();

		cache_set_bytes(j, "key", key, strlen(key));
		json_object_set_new(j, "status", json_string(st == RS_CACHE_HIT ? "hit" : "stale"));
		cache_set_bytes(j, "value", v.data, v.len);
		json_object_set_new(j, "stored_ms", json_integer(v.stored_ms));
		json_object_set_new(j, "expires_ms", json_integer(v.expires_ms));
		json_object_set_new(j, "ttl_ms", json_integer(v.expires_ms - rs_now_ms()));
		cmd_print_json(j);
	} else {
		/* The bytes as stored, for `> file`; a newline only for a
		 * person at a terminal. */
		fwrite(v.data, 1, v.len, stdout);
		if (isatty(STDOUT_FILENO) && (v.len == 0 || ((char *)v.data)[v.len - 1] != '\n'))
			fputc('\n', stdout);
		if (st == RS_CACHE_STALE && ctx->g.verbosity >= 0) {
			char ago[32];

			human_duration(rs_now_ms() - v.expires_ms, ago, sizeof(ago));
			cmd_error(ctx, "warning: '%s' is stale (expired %s ago)", key, ago);
		}
	}
	rs_cache_value_free(&v);
	return cache_finish(&r, CMD_OK);
}

/* The value of `set`: the argument, or --file's contents (at most limit
 * bytes, "-" = standard input).  NULL (message printed) on failure. */
static char *read_value(struct cmd_ctx *ctx, const char *path, size_t limit,
			size_t *len)
{
	struct rs_err err = RS_ERR_INIT;
	char *buf = rs_read_file(path, limit, len, &err);

	if (!buf && err.code == EFBIG)
		cmd_error(ctx, "'%s' is larger than the largest value allowed (%zu bytes)", path,
			  limit);
	else if (!buf)
		cmd_error(ctx, "%s", err.msg);
	return buf;
}

static int run_set(struct cmd_ctx *ctx)
{
	const struct rs_schema_key *ttl_key = rs_schema_key("cache", "ttl");
	const char *key = ctx->argv[0], *file = cmd_opt(ctx, "file"),
		   *ttl_s = cmd_opt(ctx, "ttl"), *why = NULL;
	struct rs_err err = RS_ERR_INIT;
	char lo[32], hi[32];
	int64_t ttl = -1;
	struct cache_run r;
	char *val = NULL;
	size_t vlen = 0;
	int rc;

	if (!file == (ctx->argc < 2))
		return cmd_usage_error(ctx, file ? "give the value or --file, not both" :
					    "no value: give VALUE or --file FILE");
	if (ttl_s && rs_parse_duration_ms(ttl_s, &ttl, &why))
		return cmd_usage_error(ctx, "bad --ttl '%s': %s", ttl_s, why);
	/* The bounds of [cache] ttl: the cache keeps an entry's age in 32
	 * bits of ms, so its TTL cannot go much past 49 days anyway. */
	if (ttl_s && (ttl < ttl_key->min || ttl > ttl_key->max)) {
		rs_format_duration(ttl_key->min, lo, sizeof(lo));
		rs_format_duration(ttl_key->max, hi, sizeof(hi));
		return cmd_usage_error(ctx, "bad --ttl '%s': must be %s to %s", ttl_s, lo, hi);
	}
	/* The value first: a missing file must not leave a new database. */
	if ((rc = cache_setup(ctx, &r)) != CMD_OK)
		return cache_finish(&r, rc);
	if (file) {
		val = read_value(ctx, file, r.so.cache.max_value_bytes, &vlen);
		if (!val)
			return cache_finish(&r, CMD_FAIL);
	}
	if ((rc = cache_open_store(&r, MAY_CREATE)) != CMD_OK) {
		free(val);
		return cache_finish(&r, rc);
	}
	rc = rs_store_set(r.store, key, strlen(key), file ? val : ctx->argv[1],
			  file ? vlen : strlen(ctx->argv[1]), ttl, &err);
	free(val);
	if (rc)
		return cache_fail(&r, &err);
	return cache_finish(&r, CMD_OK);
}

static int run_delete(struct cmd_ctx *ctx)
{
	const char *key = ctx->argv[0];
	struct rs_err err = RS_ERR_INIT;
	struct cache_run r;
	int rc, gone;

	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_store_delete(r.store, key, strlen(key), &gone, &err))
		return cache_fail(&r, &err);
	rc = cache_finish(&r, CMD_OK);
	if (rc == CMD_OK && ctx->g.json) {
		json_t *j = json_object();

		cache_set_bytes(j, "key", key, strlen(key));
		json_object_set_new(j, "deleted", json_boolean(gone));
		cmd_print_json(j);
	} else if (rc == CMD_OK && !gone && ctx->g.verbosity >= 0) {
		/* Logged anyway: a responder may still hold it. */
		cmd_error(ctx, "'%s' was not in the stored cache; the delete is logged for running responders", key);
	}
	return rc;
}

static int run_purge(struct cmd_ctx *ctx)
{
	const char *prefix = cmd_opt(ctx, "prefix");
	struct rs_err err = RS_ERR_INIT;
	bool all = cmd_flag(ctx, "all");
	struct cache_run r;
	uint64_t n;
	int rc;

	if (all == (prefix != NULL))
		return cmd_usage_error(ctx, "give exactly one of --all and --prefix PREFIX");
	if (prefix && !*prefix)
		return cmd_usage_error(ctx, "empty --prefix; use --all to purge everything");
	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_store_purge(r.store, prefix, prefix ? strlen(prefix) : 0, &n, &err))
		return cache_fail(&r, &err);
	rc = cache_finish(&r, CMD_OK);
	if (rc == CMD_OK && ctx->g.json) {
		json_t *j = json_object();

		json_object_set_new(j, "purged", json_integer((json_int_t)n));
		cmd_print_json(j);
	} else if (rc == CMD_OK && ctx->g.verbosity >= 0) {
		printf("purged %" PRIu64 " entries\n", n);
	}
	return rc;
}

/* ---- list ---------------------------------------------------------------- */

struct listed {
	char *key;
	size_t klen, vlen;
	int64_t stored_ms, expires_ms;
};

static int cmp_listed(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static void print_list(struct cmd_ctx *ctx, struct listed *v, size_t n,
		       size_t total)
{
	int64_t now = rs_now_ms();
	char ttl[48], size[32];
	size_t i;

	if (ctx->g.json) {
		json_t *doc = json_object(), *arr = json_array();

		for (i = 0; i < n; i++) {
			json_t *e = json_object();

			cache_set_bytes(e, "key", v[i].key, v[i].klen);
			json_object_set_new(e, "bytes", json_integer((json_int_t)v[i].vlen));
			json_object_set_new(e, "stored_ms", json_integer(v[i].stored_ms));
			json_object_set_new(e, "expires_ms", json_integer(v[i].expires_ms));
			json_array_append_new(arr, e);
		}
		json_object_set_new(doc, "entries", arr);
		json_object_set_new(doc, "total", json_integer((json_int_t)total));
		json_object_set_new(doc, "truncated", json_boolean(n < total));
		cmd_print_json(doc);
		return;
	}
	if (n && ctx->g.verbosity >= 0)
		printf("%-10s %-12s %s\n", "SIZE", "TTL", "KEY");
	for (i = 0; i < n; i++) {
		cache_fmt_size(v[i].vlen, size, sizeof(size));
		cache_fmt_ttl(v[i].expires_ms, now, ttl, sizeof(ttl));
		printf("%-10s %-12s ", size, ttl);
		cache_put_bytes(stdout, v[i].key, v[i].klen);
		fputc('\n', stdout);
	}
	if (n < total && ctx->g.verbosity >= 0)
		cmd_error(ctx, "%zu of %zu entries shown; --limit 0 shows all", n, total);
}

static int run_list(struct cmd_ctx *ctx)
{
	const char *prefix = cmd_opt(ctx, "prefix"), *lim = cmd_opt(ctx, "limit"),
		   *why = NULL;
	size_t plen = prefix ? strlen(prefix) : 0, n = 0, cap = 0, shard, i, k;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_item *items;
	struct listed *v = NULL;
	int64_t limit = LIST_LIMIT_DEFAULT;
	struct rs_cache *c;
	struct cache_run r;
	int rc;

	if (lim && (rs_parse_int64(lim, &limit, &why) || limit < 0))
		return cmd_usage_error(ctx, "bad --limit '%s': %s", lim,
				       why ? why : "must be 0 (all) or more");
	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	c = rs_store_cache(r.store);
	for (shard = 0; shard < rs_cache_num_shards(c); shard++) {
		if (rs_cache_shard_copy(c, shard, &items, &k, &err))
			break;
		for (i = 0; i < k; i++) {
			if (items[i].klen < plen || memcmp(items[i].key, prefix, plen))
				continue;
			if (n == cap)
				v = xrealloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*v));
			v[n].key = items[i].key;
			items[i].key = NULL;   /* taken */
			v[n].klen = items[i].klen;
			v[n].vlen = items[i].vlen;
			v[n].stored_ms = items[i].stored_ms;
			v[n].expires_ms = items[i].expires_ms;
			n++;
		}
		rs_cache_items_free(items, k);
	}
	if (shard == rs_cache_num_shards(c)) {
		if (n)
			qsort(v, n, sizeof(*v), cmp_listed);
		print_list(ctx, v, limit == 0 || (size_t)limit > n ? n : (size_t)limit, n);
	} else {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	for (i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return cache_finish(&r, rc);
}

/* ---- the table ----------------------------------------------------------- */

static const struct cmd_option no_options[] = { { NULL, 0, NULL, NULL } };

static const struct cmd_option set_options[] = {
	{ "ttl", 't', "DURATION", "time to live (default: [cache] ttl), e.g. 90s, 5m, 2h" },
	{ "file", 'f', "FILE", "read the value from FILE ('-' = standard input)" },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_option purge_options[] = {
	{ "all", 'a', NULL, "remove every entry" },
	{ "prefix", 'p', "PREFIX", "remove the entries whose key starts with PREFIX" },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_option list_options[] = {
	{ "prefix", 'p', "PREFIX", "only keys starting with PREFIX" },
	{ "limit", 'n', "N", "show at most N entries, in key order (default 1000; 0 = all)" },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_entry cache_get = {
	.name = "get",
	.usage = "cache get KEY",
	.summary = "print a cached value",
	.description =
		"Prints the value stored for KEY, byte for byte (a newline is added only\n"
		"at a terminal). A stale entry, past its TTL but inside a stale window, is\n"
		"printed with a warning. With --json: the value, its status and times.\n"
		"exit status: 0 found, 1 not cached, 2 error",
	.options = no_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_get,
};

static const struct cmd_entry cache_set = {
	.name = "set",
	.usage = "cache set [--ttl DURATION] KEY (VALUE | --file FILE)",
	.summary = "store a value",
	.description =
		"Stores VALUE (or the contents of FILE) under KEY with the given TTL, as a\n"
		"record of the cache log: a running responder applies it within a second.\n"
		"Creates the database if there is none.",
	.options = set_options,
	.min_args = 1,
	.max_args = 2,
	.run = run_set,
	.audited = true,
	.audited_args = 1,
};

static const struct cmd_entry cache_delete = {
	.name = "delete",
	.usage = "cache delete KEY",
	.summary = "remove one entry",
	.description =
		"Removes KEY. The delete is logged even when the stored cache does not\n"
		"hold the key, so a responder that still has it drops it too.",
	.options = no_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_delete,
	.audited = true,
};

static const struct cmd_entry cache_purge = {
	.name = "purge",
	.usage = "cache purge (--all | --prefix PREFIX)",
	.summary = "remove every entry, or those under a key prefix",
	.options = purge_options,
	.min_args = 0,
	.max_args = 0,
	.run = run_purge,
	.audited = true,
};

static const struct cmd_entry cache_list = {
	.name = "list",
	.usage = "cache list [--prefix PREFIX] [--limit N]",
	.summary = "list keys with their value size and time to live",
	.options = list_options,
	.min_args = 0,
	.max_args = 0,
	.run = run_list,
};

static const struct cmd_entry *const cache_verbs[] = {
	&cache_stats, &cache_get, &cache_set, &cache_delete, &cache_purge,
	&cache_list, &cache_snapshot, &cache_snapshots, &cache_restore,
	&cache_verify, &cache_gc, &cache_export, &cache_import, NULL,
};

const struct cmd_entry cmd_cache = {
	.name = "cache",
	.usage = "cache <command> [options]",
	.summary = "inspect, change and repair the stored cache",
	.description =
		"Works on the database ([persistence] db, or --db FILE): the cache is\n"
		"recovered from the newest snapshot and the log, as a responder does at\n"
		"start. Changes are records of the cache log, which a running responder\n"
		"applies within a second; they are committed before the command returns.",
	.options = no_options,
	.min_args = 0,
	.max_args = 0,
	.subs = cache_verbs,
};
