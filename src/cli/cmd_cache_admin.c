/*
 * resyncctl cache: the verbs that look after the database as a whole:
 * stats, snapshot, snapshots, restore, verify, gc, export, import.  The
 * entry-level verbs and the shared setup are in cmd_cache.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_run.h"
#include "cachefile.h"
#include "config.h"
#include "repair.h"
#include "seal.h"
#include "snapshot.h"
#include "stats.h"
#include "util.h"
#include "xalloc.h"

/* Entries between flushes of an import: well under the log's queue
 * bound. */
#define IMPORT_FLUSH_EVERY 10000

static uint64_t file_size(const char *path, const char *suffix)
{
	char buf[4096];
	struct stat st;

	snprintf(buf, sizeof(buf), "%s%s", path, suffix);
	return stat(buf, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- stats --------------------------------------------------------------- */

struct snap_summary {
	uint64_t count;
	struct rs_snapshot_info newest;     /* newest complete one */
};

static int summarise(void *arg, const struct rs_snapshot_info *info)
{
	struct snap_summary *s = arg;

	s->count++;
	if (info->complete && !s->newest.id)
		s->newest = *info;
	return 0;
}

static json_t *stats_json(struct cache_run *r, const struct rs_cache_stats *cs,
			  const struct snap_summary *snaps, uint64_t dbsize)
{
	const struct rs_store_recovery *rec = &r->rec;
	json_t *j = json_object(), *js = json_object(), *jr = json_object(),
	       *sh = json_array();

	json_object_set_new(j, "database", json_string(r->so.db_path));
	json_object_set_new(j, "database_bytes", json_integer((json_int_t)dbsize));
	json_object_set_new(j, "entries", json_integer((json_int_t)cs->entries));
	json_object_set_new(j, "bytes", json_integer((json_int_t)cs->bytes));
	json_object_set_new(j, "max_entries", json_integer((json_int_t)cs->max_entries));
	json_object_set_new(j, "max_memory_bytes", json_integer((json_int_t)cs->max_memory_bytes));
	json_object_set_new(j, "num_shards", json_integer((json_int_t)cs->num_shards));
	json_object_set_new(j, "hot_shards", json_integer((json_int_t)cs->hot_shards));
	json_object_set_new(js, "count", json_integer((json_int_t)snaps->count));
	if (snaps->newest.id) {
		json_object_set_new(js, "newest_id", json_integer(snaps->newest.id));
		json_object_set_new(js, "newest_time_ms", json_integer(snaps->newest.time_ms));
		json_object_set_new(js, "newest_last_seq", json_integer(snaps->newest.last_seq));
		json_object_set_new(js, "newest_entries", json_integer((json_int_t)snaps->newest.entries));
	}
	json_object_set_new(j, "snapshots", js);
	json_object_set_new(jr, "snapshot_id", json_integer(rec->snapshot.loaded_id));
	json_object_set_new(jr, "snapshot_entries", json_integer((json_int_t)rec->snapshot.entries));
	json_object_set_new(jr, "snapshots_skipped", json_integer(rec->snapshot.skipped));
	json_object_set_new(jr, "log_records", json_integer((json_int_t)rec->replayed));
	json_object_set_new(jr, "log_first_seq", json_integer(rec->log.first_seq));
	json_object_set_new(jr, "last_seq", json_integer(rec->last_seq));
	json_object_set_new(jr, "expired", json_integer((json_int_t)(rec->expired + rec->snapshot.expired)));
	json_object_set_new(jr, "rejected", json_integer((json_int_t)(rec->rejected + rec->snapshot.rejected)));
	json_object_set_new(jr, "log_stopped", json_boolean(rec->log.stopped));
	if (rec->log.stopped) {
		json_object_set_new(jr, "bad_seq", json_integer(rec->log.bad_seq));
		json_object_set_new(jr, "reason", json_string(rec->log.reason));
	}
	json_object_set_new(jr, "took_ms", json_integer(rec->took_ms));
	json_object_set_new(j, "recovery", jr);
	for (size_t i = 0; i < cs->num_shards; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "entries", json_integer((json_int_t)cs->shards[i].entries));
		json_object_set_new(e, "bytes", json_integer((json_int_t)cs->shards[i].bytes));
		json_array_append_new(sh, e);
	}
	json_object_set_new(j, "shards", sh);
	return j;
}

static void stats_text(struct cache_run *r, const struct rs_cache_stats *cs,
		       const struct snap_summary *snaps, uint64_t dbsize)
{
	const struct rs_store_recovery *rec = &r->rec;
	char a[32], b[32], t[32];

	cache_fmt_size(dbsize, a, sizeof(a));
	printf("database     %s (%s)\n", r->so.db_path, a);
	printf("entries      %" PRIu64 " of %" PRIu64 "\n", cs->entries, cs->max_entries);
	cache_fmt_size(cs->bytes, a, sizeof(a));
	cache_fmt_size(cs->max_memory_bytes, b, sizeof(b));
	printf("memory       %s of %s\n", a, b);
	printf("shards       %zu (%zu hot)\n", cs->num_shards, cs->hot_shards);
	if (snaps->newest.id) {
		rs_format_utc(snaps->newest.time_ms, t, sizeof(t));
		printf("snapshots    %" PRIu64 "; newest complete: %" PRId64 " at %s, %" PRIu64
		       " entries, log seq %" PRId64 "\n",
		       snaps->count, snaps->newest.id, t, snaps->newest.entries,
		       snaps->newest.last_seq);
	} else {
		printf("snapshots    %" PRIu64 "; none complete\n", snaps->count);
	}
	printf("log          %" PRIu64 " records replayed after the snapshot, up to seq %" PRId64 "\n",
	       rec->replayed, rec->last_seq);
	printf("recovered in %" PRId64 " ms\n", rec->took_ms);
	if (r->ctx->g.verbosity > 0) {
		printf("\n%-6s %10s %12s\n", "SHARD", "ENTRIES", "BYTES");
		for (size_t i = 0; i < cs->num_shards; i++)
			printf("%-6zu %10" PRIu64 " %12" PRIu64 "\n", i,
			       cs->shards[i].entries, cs->shards[i].bytes);
	}
}

static void live_text(const json_t *rows)
{
	size_t i;
	json_t *row;

	json_array_foreach(rows, i, row) {
		const json_t *c = json_object_get(json_object_get(row, "stats"), "cache");
		const json_t *sv = json_object_get(json_object_get(row, "stats"), "server");
		printf("responder    %s (pid %" JSON_INTEGER_FORMAT "): %" JSON_INTEGER_FORMAT
		       " entries, %" JSON_INTEGER_FORMAT " hits, %" JSON_INTEGER_FORMAT
		       " misses, hit rate %.1f%%, %" JSON_INTEGER_FORMAT " requests\n",
		       json_string_value(json_object_get(row, "origin")),
		       json_integer_value(json_object_get(row, "pid")),
		       json_integer_value(json_object_get(c, "entries")),
		       json_integer_value(json_object_get(c, "hits")),
		       json_integer_value(json_object_get(c, "misses")),
		       100.0 * json_real_value(json_object_get(c, "hit_rate")),
		       json_integer_value(json_object_get(json_object_get(sv, "requests"),
							  "accepted")));
	}
}

static int run_stats(struct cmd_ctx *ctx)
{
	struct snap_summary snaps = { 0 };
	struct rs_err err = RS_ERR_INIT;
	struct rs_cache_stats cs;
	struct cache_run r;
	uint64_t dbsize;
	int rc;

	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_snapshot_list(r.so.db_path, summarise, &snaps, &err) ||
	    rs_cache_stats(rs_store_cache(r.store), &cs, &err))
		return cache_fail(&r, &err);
	dbsize = file_size(r.so.db_path, "") + file_size(r.so.db_path, "-wal");
	json_t *live = cmd_live_stats(r.so.db_path);
	if (ctx->g.json) {
		json_t *j = stats_json(&r, &cs, &snaps, dbsize);
		json_object_set_new(j, "responders", live ? json_incref(live) : json_array());
		cmd_print_json(j);
	} else {
		stats_text(&r, &cs, &snaps, dbsize);
		if (live)
			live_text(live);
	}
	json_decref(live);
	rs_cache_stats_free(&cs);
	return cache_finish(&r, CMD_OK);
}

/* ---- snapshot, snapshots, restore, gc ------------------------------------ */

static json_t *snapshot_json(const struct rs_snapshot_info *info)
{
	json_t *j = json_object();

	json_object_set_new(j, "id", json_integer(info->id));
	json_object_set_new(j, "time_ms", json_integer(info->time_ms));
	json_object_set_new(j, "last_seq", json_integer(info->last_seq));
	json_object_set_new(j, "entries", json_integer((json_int_t)info->entries));
	json_object_set_new(j, "bytes", json_integer((json_int_t)info->bytes));
	json_object_set_new(j, "state", json_string(info->quarantined ? "quarantined" :
						    info->complete ? "complete" : "incomplete"));
	return j;
}

static int run_snapshot(struct cmd_ctx *ctx)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_snapshot_info info;
	struct cache_run r;
	char size[32];
	int rc;

	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_store_snapshot(r.store, &info, &err))
		return cache_fail(&r, &err);
	if (ctx->g.json) {
		cmd_print_json(snapshot_json(&info));
	} else if (ctx->g.verbosity >= 0) {
		cache_fmt_size(info.bytes, size, sizeof(size));
		printf("snapshot %" PRId64 ": %" PRIu64 " entries, %s, log seq %" PRId64 "\n",
		       info.id, info.entries, size, info.last_seq);
	}
	return cache_finish(&r, CMD_OK);
}

struct snap_print {
	struct cmd_ctx *ctx;
	json_t *arr;
	size_t n;
};

static int print_snapshot(void *arg, const struct rs_snapshot_info *info)
{
	struct snap_print *p = arg;
	char t[32], size[32];

	if (p->arr) {
		json_array_append_new(p->arr, snapshot_json(info));
		return 0;
	}
	if (p->n++ == 0 && p->ctx->g.verbosity >= 0)
		printf("%-6s %-20s %10s %10s %10s  %s\n", "ID", "TIME", "ENTRIES", "SIZE",
		       "LOG SEQ", "STATE");
	rs_format_utc(info->time_ms, t, sizeof(t));
	cache_fmt_size(info->bytes, size, sizeof(size));
	printf("%-6" PRId64 " %-20s %10" PRIu64 " %10s %10" PRId64 "  %s\n", info->id, t,
	       info->entries, size, info->last_seq,
	       info->quarantined ? "quarantined" : info->complete ? "complete" : "incomplete");
	return 0;
}

static int run_snapshots(struct cmd_ctx *ctx)
{
	struct snap_print p = { .ctx = ctx };
	struct rs_err err = RS_ERR_INIT;
	struct cache_run r;
	int rc;

	if ((rc = cache_setup(ctx, &r)) != CMD_OK || (rc = cache_need_db(&r)) != CMD_OK)
		return cache_finish(&r, rc);
	if (ctx->g.json)
		p.arr = json_array();
	if (rs_snapshot_list(r.so.db_path, print_snapshot, &p, &err)) {
		json_decref(p.arr);
		return cache_fail(&r, &err);
	}
	if (p.arr) {
		json_t *doc = json_object();

		json_object_set_new(doc, "snapshots", p.arr);
		cmd_print_json(doc);
	}
	return cache_finish(&r, CMD_OK);
}

static int run_restore(struct cmd_ctx *ctx)
{
	struct rs_store_restore_report rep;
	struct rs_err err = RS_ERR_INIT;
	const char *why = NULL;
	struct cache_run r;
	int64_t id;
	int rc;

	if (rs_parse_int64(ctx->argv[0], &id, &why) || id <= 0)
		return cmd_usage_error(ctx, "bad snapshot id '%s': %s", ctx->argv[0],
				       why ? why : "ids are positive (see resyncctl cache snapshots)");
	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_store_restore(r.store, id, &rep, &err))
		return cache_fail(&r, &err);
	rc = cache_finish(&r, CMD_OK);
	if (rc == CMD_OK && ctx->g.json) {
		json_t *j = json_object();

		json_object_set_new(j, "snapshot", json_integer(id));
		json_object_set_new(j, "entries", json_integer((json_int_t)rep.entries));
		json_object_set_new(j, "expired", json_integer((json_int_t)rep.expired));
		json_object_set_new(j, "rejected", json_integer((json_int_t)rep.rejected));
		cmd_print_json(j);
	} else if (rc == CMD_OK && ctx->g.verbosity >= 0) {
		printf("restored snapshot %" PRId64 ": %" PRIu64 " entries (%" PRIu64
		       " past their windows left out, %" PRIu64 " refused by the bounds)\n",
		       id, rep.entries, rep.expired, rep.rejected);
	}
	return rc;
}

static int run_gc(struct cmd_ctx *ctx)
{
	struct rs_err err = RS_ERR_INIT;
	uint64_t snaps;
	struct cache_run r;
	int64_t records;
	int rc;

	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (rs_store_gc(r.store, &snaps, &records, &err))
		return cache_fail(&r, &err);
	if (ctx->g.json) {
		json_t *j = json_object();

		json_object_set_new(j, "snapshots_removed", json_integer((json_int_t)snaps));
		json_object_set_new(j, "log_records_removed", json_integer(records));
		cmd_print_json(j);
	} else if (ctx->g.verbosity >= 0) {
		printf("removed %" PRIu64 " snapshots and %" PRId64 " log records\n", snaps,
		       records);
	}
	return cache_finish(&r, CMD_OK);
}

/* ---- verify --------------------------------------------------------------- */

static void verify_text(const struct rs_verify_report *v, bool repair, bool quiet)
{
	for (size_t i = 0; i < v->nlist; i++) {
		const struct rs_fault *f = &v->list[i];

		if (f->kind == RS_FAULT_SNAPSHOT)
			printf("snapshot %" PRId64 ": %s", f->ref, f->reason);
		else if (f->ref == f->ref_end)
			printf("log seq %" PRId64 ": %s", f->ref, f->reason);
		else
			printf("log seq %" PRId64 "..%" PRId64 ": %s", f->ref, f->ref_end,
			       f->reason);
		printf("%s\n", !f->repaired ? "" :
			       f->kind == RS_FAULT_GAP ? " (recorded in the quarantine)" :
			       f->kind == RS_FAULT_SNAPSHOT ? " (quarantined)" :
							      " (moved to the quarantine)");
	}
	if (v->faults > v->nlist)
		printf("... and %" PRIu64 " more\n", v->faults - v->nlist);
	if (quiet)
		return;
	printf("snapshots: %" PRIu64 " checked, %" PRIu64 " good, %" PRIu64 " incomplete, %" PRIu64
	       " quarantined before\n", v->snapshots, v->snapshots_ok, v->snapshots_incomplete,
	       v->snapshots_quarantined);
	printf("log: %" PRIu64 " good records", v->records);
	if (v->first_seq)
		printf(", seq %" PRId64 "..%" PRId64, v->first_seq, v->last_seq);
	printf("; replay starts after seq %" PRId64 "\n", v->base_seq);
	if (!v->faults)
		printf("ok: no faults\n");
	else if (repair)
		printf("%" PRIu64 " faults, %" PRIu64 " repaired; %" PRIu64 " rows in the quarantine\n",
		       v->faults, v->repaired, v->quarantine_rows);
	else
		printf("%" PRIu64 " faults; 'resyncctl cache verify --repair' quarantines them\n",
		       v->faults);
}

static json_t *verify_json(const struct rs_verify_report *v)
{
	json_t *j = json_object(), *arr = json_array();

	for (size_t i = 0; i < v->nlist; i++) {
		json_t *f = json_object();

		json_object_set_new(f, "kind", json_string(rs_fault_kind_name(v->list[i].kind)));
		json_object_set_new(f, "ref", json_integer(v->list[i].ref));
		json_object_set_new(f, "ref_end", json_integer(v->list[i].ref_end));
		json_object_set_new(f, "reason", json_string(v->list[i].reason));
		json_object_set_new(f, "repaired", json_boolean(v->list[i].repaired));
		json_array_append_new(arr, f);
	}
	json_object_set_new(j, "ok", json_boolean(v->faults == 0));
	json_object_set_new(j, "faults", json_integer((json_int_t)v->faults));
	json_object_set_new(j, "repaired", json_integer((json_int_t)v->repaired));
	json_object_set_new(j, "list", arr);
	json_object_set_new(j, "snapshots", json_integer((json_int_t)v->snapshots));
	json_object_set_new(j, "snapshots_ok", json_integer((json_int_t)v->snapshots_ok));
	json_object_set_new(j, "snapshots_incomplete", json_integer((json_int_t)v->snapshots_incomplete));
	json_object_set_new(j, "snapshots_quarantined", json_integer((json_int_t)v->snapshots_quarantined));
	json_object_set_new(j, "records", json_integer((json_int_t)v->records));
	json_object_set_new(j, "first_seq", json_integer(v->first_seq));
	json_object_set_new(j, "last_seq", json_integer(v->last_seq));
	json_object_set_new(j, "base_seq", json_integer(v->base_seq));
	json_object_set_new(j, "quarantine_rows", json_integer((json_int_t)v->quarantine_rows));
	return j;
}

static int run_verify(struct cmd_ctx *ctx)
{
	struct rs_err err = RS_ERR_INIT;
	bool repair = cmd_flag(ctx, "repair");
	struct rs_keyring *keys = NULL;
	struct rs_verify_report v;
	struct cache_run r;
	int rc;

	if ((rc = cache_setup(ctx, &r)) != CMD_OK || (rc = cache_need_db(&r)) != CMD_OK)
		return cache_finish(&r, rc);
	/* With the configured key, sealed values are opened too; without
	 * one, checksums only. */
	if (r.so.encryption_key_file && *r.so.encryption_key_file &&
	    rs_keyring_load(&keys, r.so.encryption_key_file, &err))
		return cache_fail(&r, &err);
	rc = rs_cache_verify(r.so.db_path, keys, repair, &v, &err);
	rs_keyring_free(keys);
	if (rc) {
		rs_verify_report_free(&v);
		return cache_fail(&r, &err);
	}
	if (ctx->g.json)
		cmd_print_json(verify_json(&v));
	else
		verify_text(&v, repair, ctx->g.verbosity < 0);
	rc = v.faults ? CMD_BAD : CMD_OK;
	rs_verify_report_free(&v);
	return cache_finish(&r, rc);
}

/* ---- export, import ------------------------------------------------------- */

static int export_entries(struct rs_cache *c, struct rs_cachefile_writer *w,
			  uint64_t *n, struct rs_err *err)
{
	struct rs_cachefile_entry e;
	struct rs_cache_item *items;
	size_t shard, k, i;
	int rc = 0;

	for (shard = 0; shard < rs_cache_num_shards(c) && rc == 0; shard++) {
		if (rs_cache_shard_copy(c, shard, &items, &k, err))
			return -1;
		for (i = 0; i < k && rc == 0; i++) {
			e = (struct rs_cachefile_entry){
				.key = items[i].key, .klen = items[i].klen,
				.val = items[i].val, .vlen = items[i].vlen,
				.stored_ms = items[i].stored_ms,
				.expires_ms = items[i].expires_ms,
			};
			rc = rs_cachefile_write(w, &e, err);
			(*n) += rc == 0;
		}
		rs_cache_items_free(items, k);
	}
	return rc;
}

/* To FILE through a temporary file renamed into place, so a reader never
 * sees half an export and a failed one leaves no file behind. */
static int run_export(struct cmd_ctx *ctx)
{
	const char *fmt_s = cmd_opt(ctx, "format"), *path = ctx->argc ? ctx->argv[0] : "-";
	enum rs_cachefile_format fmt = RS_CACHEFILE_JSON;
	struct rs_cachefile_writer *w = NULL;
	struct rs_err err = RS_ERR_INIT;
	bool to_stdout = strcmp(path, "-") == 0;
	char *tmp = NULL;
	struct cache_run r;
	uint64_t n = 0;
	FILE *f = stdout;
	int rc;

	if (fmt_s && (rs_cachefile_format_parse(fmt_s, &fmt) || fmt == RS_CACHEFILE_AUTO))
		return cmd_usage_error(ctx, "unknown format '%s' (use json or ndjson)", fmt_s);
	if ((rc = cache_open(ctx, &r, NEED_DB)) != CMD_OK)
		return cache_finish(&r, rc);
	if (!to_stdout) {
		tmp = xmalloc(strlen(path) + 32);
		sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
		f = fopen(tmp, "wx");
		if (!f) {
			rs_err_errno(&err, errno, "cannot create '%s'", tmp);
			goto fail;
		}
	}
	if (rs_cachefile_writer_new(&w, f, fmt, rs_now_ms(), &err) ||
	    export_entries(rs_store_cache(r.store), w, &n, &err))
		goto fail;
	rc = rs_cachefile_writer_finish(w, &err);
	w = NULL;
	if (rc)
		goto fail;
	if (!to_stdout) {
		if (fsync(fileno(f)) || fclose(f)) {
			f = NULL;
			rs_err_errno(&err, errno, "cannot write '%s'", tmp);
			goto fail;
		}
		f = NULL;
		if (rename(tmp, path)) {
			rs_err_errno(&err, errno, "cannot rename '%s' to '%s'", tmp, path);
			goto fail;
		}
		if (ctx->g.json) {
			json_t *j = json_object();

			json_object_set_new(j, "exported", json_integer((json_int_t)n));
			json_object_set_new(j, "file", json_string(path));
			cmd_print_json(j);
		} else if (ctx->g.verbosity >= 0) {
			fprintf(stderr, "exported %" PRIu64 " entries to %s\n", n, path);
		}
	}
	free(tmp);
	return cache_finish(&r, CMD_OK);
fail:
	rs_cachefile_writer_abort(w);
	if (f && f != stdout)
		fclose(f);
	if (tmp)
		unlink(tmp);
	free(tmp);
	return cache_fail(&r, &err);
}

struct importer {
	struct rs_store *store;
	uint64_t imported, expired, rejected;
	char first_reason[RS_ERR_MSG_MAX];
	struct rs_err *err;             /* a log failure: stops the import */
};

static int count_entry(void *arg, const struct rs_cachefile_entry *e)
{
	(void)arg;
	(void)e;
	return 0;
}

static int import_entry(void *arg, const struct rs_cachefile_entry *e)
{
	struct importer *im = arg;
	struct rs_err why = RS_ERR_INIT;
	int rc;

	rc = rs_store_set_at(im->store, e->key, e->klen, e->val, e->vlen, e->stored_ms,
			     e->expires_ms, &why);
	if (rc == 1) {
		im->expired++;
	} else if (rc == 0) {
		if (++im->imported % IMPORT_FLUSH_EVERY == 0 &&
		    rs_store_flush(im->store, im->err))
			return 1;
	} else if (why.code == EIO) {   /* the log is failing: stop */
		*im->err = why;
		return 1;
	} else if (im->rejected++ == 0) {
		snprintf(im->first_reason, sizeof(im->first_reason), "%s", why.msg);
	}
	return 0;
}

/* A regular file is read twice: once to check all of it, so a malformed
 * file changes nothing, then to import.  Standard input is read once:
 * entries before a malformed one are imported. */
static int run_import(struct cmd_ctx *ctx)
{
	const char *fmt_s = cmd_opt(ctx, "format"), *path = ctx->argv[0];
	enum rs_cachefile_format fmt = RS_CACHEFILE_AUTO;
	struct rs_cachefile_report rep;
	struct rs_err err = RS_ERR_INIT;
	bool from_stdin = strcmp(path, "-") == 0;
	struct importer im = { .err = &err };
	struct cache_run r;
	size_t max_line;
	struct stat st;
	FILE *f;
	int rc;

	if (fmt_s && rs_cachefile_format_parse(fmt_s, &fmt))
		return cmd_usage_error(ctx, "unknown format '%s' (use json or ndjson)", fmt_s);
	f = from_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		cmd_error(ctx, "cannot open '%s': %s", path, strerror(errno));
		return CMD_FAIL;
	}
	if ((rc = cache_setup(ctx, &r)) != CMD_OK)
		goto out;
	max_line = rs_cachefile_entry_max_bytes(r.so.cache.max_key_bytes,
						r.so.cache.max_value_bytes);
	/* Checked before the store is opened: a malformed file leaves no
	 * new database behind either. */
	if (!from_stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
		if (rs_cachefile_read(f, fmt, max_line, count_entry, NULL, &rep, &err)) {
			rs_err_prefix(&err, "'%s' not imported", path);
			goto fail;
		}
		rewind(f);
	}
	if ((rc = cache_open_store(&r, MAY_CREATE)) != CMD_OK)
		goto out;
	im.store = r.store;
	rc = rs_cachefile_read(f, fmt, max_line, import_entry, &im, &rep, &err);
	if (rc < 0)
		rs_err_prefix(&err, "'%s'", path);
	if (rc)
		goto fail;
	rc = cache_finish(&r, CMD_OK);
	if (rc == CMD_OK && im.rejected) {
		cmd_error(ctx, "%" PRIu64 " entries refused; the first: %s", im.rejected,
			  im.first_reason);
		rc = CMD_BAD;
	}
	if (ctx->g.json && rc != CMD_FAIL) {
		json_t *j = json_object();

		json_object_set_new(j, "imported", json_integer((json_int_t)im.imported));
		json_object_set_new(j, "expired", json_integer((json_int_t)im.expired));
		json_object_set_new(j, "rejected", json_integer((json_int_t)im.rejected));
		cmd_print_json(j);
	} else if (rc != CMD_FAIL && ctx->g.verbosity >= 0) {
		printf("imported %" PRIu64 " entries (%" PRIu64 " already expired left out, %"
		       PRIu64 " refused)\n", im.imported, im.expired, im.rejected);
	}
	goto out;
fail:
	if (im.imported && ctx->g.verbosity >= 0)
		cmd_error(ctx, "%" PRIu64 " entries were imported before the error", im.imported);
	rc = cache_fail(&r, &err);
out:
	if (f != stdin)
		fclose(f);
	return rc;
}

/* ---- the table ----------------------------------------------------------- */

static const struct cmd_option no_options[] = { { NULL, 0, NULL, NULL } };

static const struct cmd_option verify_options[] = {
	{ "repair", 'r', NULL, "move what is corrupt into the quarantine so recovery starts cleanly" },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_option format_options[] = {
	{ "format", 'f', "FORMAT", "json (default for export; import detects it) or ndjson" },
	{ NULL, 0, NULL, NULL },
};

const struct cmd_entry cache_stats = {
	.name = "stats",
	.usage = "cache stats",
	.summary = "entries, memory, snapshots and log of the stored cache",
	.description = "With -v, also each shard's entries and bytes.",
	.options = no_options,
	.run = run_stats,
};

const struct cmd_entry cache_snapshot = {
	.name = "snapshot",
	.usage = "cache snapshot",
	.summary = "take a snapshot now",
	.options = no_options,
	.run = run_snapshot,
	.audited = true,
};

const struct cmd_entry cache_snapshots = {
	.name = "snapshots",
	.usage = "cache snapshots",
	.summary = "list the snapshots, newest first",
	.options = no_options,
	.run = run_snapshots,
};

const struct cmd_entry cache_restore = {
	.name = "restore",
	.usage = "cache restore ID",
	.summary = "make the cache what snapshot ID holds",
	.description =
		"Verifies snapshot ID, then purges the cache and sets every entry of the\n"
		"snapshot with its original times, all as log records, so a running\n"
		"responder ends with the same contents. A snapshot that does not verify\n"
		"changes nothing.",
	.options = no_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_restore,
	.audited = true,
};

const struct cmd_entry cache_verify = {
	.name = "verify",
	.usage = "cache verify [--repair]",
	.summary = "check every snapshot and log record; --repair quarantines faults",
	.description =
		"Checks every snapshot's checksum and counts, every log record's checksum\n"
		"and the log's seq continuity, naming each fault. --repair moves corrupt\n"
		"records into the cache_quarantine table, records missing ones there and\n"
		"marks corrupt snapshots quarantined, so recovery starts cleanly.\n"
		"exit status: 0 no faults, 1 faults found (repaired with --repair), 2 error",
	.options = verify_options,
	.run = run_verify,
	.audited_with = "repair",
};

const struct cmd_entry cache_gc = {
	.name = "gc",
	.usage = "cache gc",
	.summary = "collect old snapshots and log records now",
	.description =
		"Removes snapshots older than [persistence] snapshot_retention (keeping the\n"
		"newest valid one) and log records a kept snapshot covers that are older\n"
		"than wal_retention.",
	.options = no_options,
	.run = run_gc,
	.audited = true,
};

const struct cmd_entry cache_export = {
	.name = "export",
	.usage = "cache export [--format FORMAT] [FILE]",
	.summary = "write every entry as JSON or NDJSON",
	.description =
		"Writes to FILE (replaced atomically) or standard output. Keys and values\n"
		"that are not UTF-8 text are written base64 (\"key_base64\", \"value_base64\").",
	.options = format_options,
	.min_args = 0,
	.max_args = 1,
	.run = run_export,
};

const struct cmd_entry cache_import = {
	.name = "import",
	.usage = "cache import [--format FORMAT] FILE",
	.summary = "set every entry of an export",
	.description =
		"Sets each entry with its own times; entries already past their stale\n"
		"windows are left out. A malformed FILE changes nothing ('-' reads standard\n"
		"input, where entries before the fault are kept).\n"
		"exit status: 0 imported, 1 some entries refused (too large), 2 error",
	.options = format_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_import,
	.audited = true,
};
