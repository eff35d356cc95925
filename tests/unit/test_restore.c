/*
 * test_restore: the store's bulk operations.  rs_store_set_at keeps the
 * times it is given and logs nothing for an entry already past its
 * windows; rs_store_flush commits a batch log at once; rs_store_restore
 * makes the cache what a snapshot holds, for this store, after a reopen
 * and for another store following the log, and changes nothing when the
 * snapshot is missing, incomplete or corrupt; a restore bigger than the
 * store's bulk flush works with sync = batch; rs_store_options_from_config
 * maps a loaded configuration, with the per-environment key and value
 * limits.  Each test has a temp directory of its own.
 */
#include "store.h"
#include "tap.h"
#include "test_confutil.h"
#include "testcache.h"
#include "testlib.h"
#include "testsql.h"
#include "teststore.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHORT_TTL_MS 1000
#define STALE_MS 10000
#define BIG_N 25000                  /* > the store's bulk flush (10 000) */
#define SLOW_INTERVAL_MS 60000       /* batch: no commit before a flush */

/* ---- helpers ------------------------------------------------------------- */

static bool has_times(struct rs_store *s, const char *k, int64_t stored_ms,
		      int64_t expires_ms)
{
	struct rs_cache_value m = { 0 };
	char *got = get_str(s, k, &m);
	bool same = got && m.stored_ms == stored_ms &&
		    m.expires_ms == expires_ms;

	if (!same)
		printf("#   %s: expected stored %" PRId64 " expires %" PRId64
		       ", got %s stored %" PRId64 " expires %" PRId64 "\n",
		       k, stored_ms, expires_ms, got ? "it" : "nothing",
		       m.stored_ms, m.expires_ms);
	free(got);
	return same;
}

static long long log_rows(const char *path)
{
	return sql_int(path, "SELECT count(*) FROM cache_log");
}

/* ---- set_at, flush ------------------------------------------------------- */

static void test_set_at(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	long long rows;
	int rc;

	if (!dir_for(&t, "restore-setat", path))
		return;
	clk = T0_MS;
	o = store_opts(path, RS_WAL_SYNC_ALWAYS, "one");
	o.cache.stale_if_error_ms = STALE_MS;
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "set_at: open");
		goto out;
	}
	rc = rs_store_set_at(s, "k", 1, "v", 1, T0_MS - 5000, T0_MS + 60000,
			     &err);
	is_int(rc, 0, "set_at: stored");
	ok(has_times(s, "k", T0_MS - 5000, T0_MS + 60000),
	   "set_at: with the given stored and expiry times");
	rc = rs_store_set_at(s, "stale", 5, "v", 1, T0_MS - 20000,
			     T0_MS - STALE_MS + 1, &err);
	is_int(rc, 0, "set_at: expired but inside a stale window is stored");
	ok(has_times(s, "stale", T0_MS - 20000, T0_MS - STALE_MS + 1),
	   "set_at: with its times");
	is_int(log_rows(path), 2, "set_at: both logged");

	rows = log_rows(path);
	rc = rs_store_set_at(s, "gone", 4, "v", 1, T0_MS - 20000,
			     T0_MS - STALE_MS, &err);
	is_int(rc, 1, "set_at: past its windows returns 1");
	ok(absent(s, "gone"), "set_at: and stores nothing");
	is_int(log_rows(path), rows, "set_at: and logs nothing");
	rc = rs_store_set_at(s, "", 0, "v", 1, T0_MS, T0_MS + 1, &err);
	ok(rc == -1 && log_rows(path) == rows,
	   "set_at: an empty key is refused, nothing logged");
	ok(err.code != EIO, "set_at: a refusal is not a log failure");
	close_store(s);

	/* Same clock: "stale" is one ms from the end of its window. */
	s = open_store(&o, NULL);
	ok(s != NULL, "set_at: reopen");
	ok(has_times(s, "k", T0_MS - 5000, T0_MS + 60000),
	   "set_at: the same times after a reopen");
	ok(has_times(s, "stale", T0_MS - 20000, T0_MS - STALE_MS + 1),
	   "set_at: the stale one too");
	ok(absent(s, "gone"), "set_at: the refused one stays away");
	close_store(s);
out:
	clk = T0_MS;
	remove_tmpdir(&t);
}

static void test_flush(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], k[16];
	struct rs_store *s;
	struct tmpdir t;
	int i, rc;

	if (!dir_for(&t, "restore-flush", path))
		return;
	o = store_opts(path, RS_WAL_SYNC_BATCH, "one");
	o.sync_interval_ms = SLOW_INTERVAL_MS;
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "flush: open");
		goto out;
	}
	for (i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "f%d", i);
		set_str(s, k, "v", -1);
	}
	is_int(log_rows(path), 0, "flush: batch records wait for the interval");
	rc = rs_store_flush(s, &err);
	if (rc)
		printf("#   flush: %s\n", err.msg);
	is_int(rc, 0, "flush: succeeds");
	is_int(log_rows(path), 5,
	       "flush: afterwards another connection sees every record");
	is_int(rs_store_flush(s, &err), 0, "flush: with nothing queued too");
	close_store(s);
out:
	remove_tmpdir(&t);
}

/* ---- restore ------------------------------------------------------------- */

static void failed_restore(struct rs_store *s, const char *path, int64_t id,
			   const struct dump *want, const char *name,
			   const char *needle)
{
	struct rs_store_restore_report rep;
	struct rs_err err = RS_ERR_INIT;
	long long rows = log_rows(path);
	char title[160];
	int rc;

	memset(&rep, 0xff, sizeof(rep));
	rc = rs_store_restore(s, id, &rep, &err);
	snprintf(title, sizeof(title), "restore %s: fails", name);
	is_int(rc, -1, title);
	snprintf(title, sizeof(title), "restore %s: says why", name);
	has_str(err.msg, needle, title);
	snprintf(title, sizeof(title), "restore %s: the contents are unchanged",
		 name);
	ok(same_as(want, s), title);
	snprintf(title, sizeof(title), "restore %s: nothing logged", name);
	is_int(log_rows(path), rows, title);
	snprintf(title, sizeof(title), "restore %s: nothing counted", name);
	ok(rep.entries == 0, title);
}

static void test_restore(void)
{
	struct rs_store_restore_report rep;
	struct rs_store_options oa, of;
	struct rs_store_recovery rec;
	struct rs_err err = RS_ERR_INIT;
	struct dump snap = { 0 }, now = { 0 };
	char path[TEST_PATH_MAX], q[256];
	struct rs_store *a = NULL, *f = NULL;
	struct tmpdir t;
	int64_t id = -1, bad;
	uint64_t applied = 0;
	int rc;

	if (!dir_for(&t, "restore", path))
		return;
	clk = T0_MS;
	oa = store_opts(path, RS_WAL_SYNC_ALWAYS, "a");
	of = store_opts(path, RS_WAL_SYNC_ALWAYS, "f");
	a = open_store(&oa, NULL);
	f = open_store(&of, NULL);
	if (!a || !f) {
		ok(0, "restore: open two stores");
		goto out;
	}
	set_str(a, "A", "a-old", -1);
	set_str(a, "B", "b", -1);
	set_str(a, "C", "c", -1);
	{
		struct rs_snapshot_info info;

		rc = rs_store_snapshot(a, &info, &err);
		if (rc)
			printf("#   snapshot: %s\n", err.msg);
		id = info.id;
	}
	is_int(id, 1, "restore: snapshot 1 taken");
	dump_cache(rs_store_cache(a), &snap);
	clk += 500;
	rs_store_delete(a, "B", 1, NULL, &err);
	set_str(a, "D", "d", -1);
	set_str(a, "A", "a-new", -1);
	rc = rs_store_follow(f, &applied, &err);
	ok(rc == 0 && has_value(f, "D", "d") && has_value(f, "A", "a-new"),
	   "restore: the follower holds the changes before the restore");

	memset(&rep, 0xff, sizeof(rep));
	rc = rs_store_restore(a, id, &rep, &err);
	if (rc)
		printf("#   restore: %s\n", err.msg);
	is_int(rc, 0, "restore: succeeds");
	is_int(rep.entries, 3, "restore: three entries restored");
	ok(rep.expired == 0 && rep.rejected == 0,
	   "restore: none expired or refused");
	ok(has_value(a, "A", "a-old") && has_value(a, "B", "b") &&
	   has_value(a, "C", "c") && absent(a, "D"),
	   "restore: exactly A (old), B, C, no D");
	ok(same_as(&snap, a), "restore: what the snapshot held, times included");

	rc = rs_store_follow(f, &applied, &err);
	if (rc)
		printf("#   follow: %s\n", err.msg);
	ok(rc == 0 && applied == 4,
	   "restore: the follower reads the purge and three sets");
	ok(same_as(&snap, f), "restore: and ends with the same contents");

	close_store(a);
	a = open_store(&oa, &rec);
	ok(a && !rec.log.stopped, "restore: reopen");
	ok(same_as(&snap, a), "restore: the same contents after a reopen");

	/* Failures change nothing. */
	if (!a)
		goto out;
	dump_cache(rs_store_cache(a), &now);
	failed_restore(a, path, 99, &now, "of a missing id", "no snapshot 99");
	failed_restore(a, path, 0, &now, "of id 0", "no snapshot 0");
	bad = -1;
	{
		struct rs_snapshot_info info;

		if (rs_store_snapshot(a, &info, &err) == 0)
			bad = info.id;
	}
	snprintf(q, sizeof(q), "UPDATE cache_snapshot SET state = 'writing'"
			       " WHERE id = %" PRId64, bad);
	sql(path, q);
	failed_restore(a, path, bad, &now, "of an incomplete one", "incomplete");
	snprintf(q, sizeof(q), "UPDATE cache_snapshot SET state = 'complete'"
			       " WHERE id = %" PRId64 ";"
			       " UPDATE cache_snapshot_row"
			       " SET value = CAST(upper(CAST(value AS TEXT)) AS BLOB)"
			       " WHERE snapshot_id = %" PRId64, bad, bad);
	sql(path, q);
	failed_restore(a, path, bad, &now, "of a corrupt one", "checksum mismatch");
	/* The valid one still restores after them. */
	rc = rs_store_restore(a, id, &rep, &err);
	ok(rc == 0 && same_as(&snap, a), "restore: snapshot 1 again, unharmed");
out:
	dump_free(&snap);
	dump_free(&now);
	close_store(a);
	close_store(f);
	remove_tmpdir(&t);
}

/* Entries in the snapshot that expired since, by the injected clock. */
static void test_restore_expired(void)
{
	struct rs_store_restore_report rep;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;
	int64_t id = -1;
	int rc;

	if (!dir_for(&t, "restore-expired", path))
		return;
	clk = T0_MS;
	o = store_opts(path, RS_WAL_SYNC_ALWAYS, "one");
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "expired: open");
		goto out;
	}
	set_str(s, "short1", "x", SHORT_TTL_MS);
	set_str(s, "short2", "x", SHORT_TTL_MS);
	set_str(s, "long", "y", LONG_TTL_MS);
	{
		struct rs_snapshot_info info;

		if (rs_store_snapshot(s, &info, &err) == 0)
			id = info.id;
		else
			printf("#   snapshot: %s\n", err.msg);
	}
	clk += 5 * SHORT_TTL_MS;
	rc = rs_store_restore(s, id, &rep, &err);
	if (rc)
		printf("#   restore: %s\n", err.msg);
	is_int(rc, 0, "expired: restore succeeds");
	is_int(rep.entries, 1, "expired: only the live entry restored");
	is_int(rep.expired, 2, "expired: the two expired ones counted");
	ok(absent(s, "short1") && absent(s, "short2") &&
	   has_times(s, "long", T0_MS, T0_MS + LONG_TTL_MS),
	   "expired: the live one with its original times, the others gone");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log WHERE op = 1"),
	       3 + 1, "expired: only the live entry logged again");
	close_store(s);
out:
	clk = T0_MS;
	remove_tmpdir(&t);
}

static void test_restore_big(void)
{
	struct rs_store_restore_report rep;
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_snapshot_info info = { 0 };
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], k[16];
	struct dump snap = { 0 };
	struct rs_store *s;
	struct tmpdir t;
	uint64_t removed = 0;
	int64_t t0;
	int i, rc, failed = 0;

	if (!dir_for(&t, "restore-big", path))
		return;
	o = store_opts(path, RS_WAL_SYNC_BATCH, "one");
	o.sync_interval_ms = 10;
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "big: open");
		goto out;
	}
	for (i = 0; i < BIG_N; i++) {
		snprintf(k, sizeof(k), "b%05d", i);
		failed += rs_store_set(s, k, strlen(k), k, strlen(k), -1, &err) != 0;
		if (i % 10000 == 9999 && rs_store_flush(s, &err))
			failed++;
	}
	is_int(failed, 0, "big: every set accepted");
	if (rs_store_snapshot(s, &info, &err))
		printf("#   snapshot: %s\n", err.msg);
	is_int(info.entries, BIG_N, "big: the snapshot holds them all");
	dump_cache(rs_store_cache(s), &snap);
	rs_store_purge(s, NULL, 0, &removed, &err);
	is_int(removed, BIG_N, "big: purged");
	t0 = rs_monotonic_ms();
	rc = rs_store_restore(s, info.id, &rep, &err);
	if (rc)
		printf("#   restore: %s\n", err.msg);
	printf("# restore of %d entries (batch): %" PRId64 " ms\n", BIG_N,
	       rs_monotonic_ms() - t0);
	is_int(rc, 0, "big: restore succeeds");
	is_int(rep.entries, BIG_N, "big: every entry restored");
	ok(same_as(&snap, s), "big: the contents are the snapshot's");
	is_int(log_rows(path), 2 * BIG_N + 2,
	       "big: every set, the purge and the restore's purge are committed");
	close_store(s);
	s = open_store(&o, &rec);
	ok(s && !rec.log.stopped && same_as(&snap, s),
	   "big: the same after a reopen");
	close_store(s);
out:
	dump_free(&snap);
	remove_tmpdir(&t);
}

static void test_restore_off(void)
{
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX];
	struct rs_store *s;
	struct tmpdir t;

	if (!dir_for(&t, "restore-off", path))
		return;
	o = store_opts(path, RS_WAL_SYNC_OFF, "one");
	s = open_store(&o, NULL);
	ok(s && rs_store_restore(s, 1, NULL, &err) == -1,
	   "off: restore is refused");
	has_str(err.msg, "sync = off", "off: and says why");
	ok(s && rs_store_flush(s, &err) == 0, "off: flush is a no-op");
	close_store(s);
	remove_tmpdir(&t);
}

/* ---- options from a configuration ---------------------------------------- */

static struct rs_config *config(const char *text, const char *environment)
{
	struct rs_diags d;
	struct rs_config *cfg = load("resync.conf", text, NULL, environment,
				     false, &d);

	if (d.errors || find_diag(&d, "unknown key"))
		dump_diags(&d);
	rs_diags_free(&d);
	return cfg;
}

static void test_options_defaults(void)
{
	static const char origin[] = "node-1";
	struct rs_store_options o;
	struct rs_config *cfg;
	char want[TEST_PATH_MAX];

	cfg = config("[server]\nenvironment = production\n"
		     "[persistence]\ndb = var/resync.db\n", NULL);
	memset(&o, 0xff, sizeof(o));
	rs_store_options_from_config(cfg, origin, &o);
	is_int(o.cache.max_key_bytes, 1000, "options: production max_key_bytes");
	is_int(o.cache.max_value_bytes, RS_MIB,
	       "options: production max_value_bytes 1 MiB");
	is_int(o.sync, RS_WAL_SYNC_BATCH, "options: sync defaults to batch");
	is_int(o.sync_interval_ms, 100, "options: sync_interval default");
	is_int(o.cache.default_ttl_ms, 300000, "options: ttl default 300 s");
	is_int(o.cache.stale_while_revalidate_ms + o.cache.stale_if_error_ms, 0,
	       "options: no stale windows by default");
	is_int(o.snapshot_retention_ms, 7 * RS_MS_PER_DAY,
	       "options: snapshot_retention default 7 d");
	is_int(o.wal_retention_ms, RS_MS_PER_HOUR,
	       "options: wal_retention default 1 h");
	is_int(o.cache.num_shards, 32, "options: num_shards default");
	is_int(o.cache.max_entries, 500000, "options: max_entries default");
	is_int(o.cache.max_memory_bytes, 256 * RS_MIB,
	       "options: max_memory default 256 MiB");
	ok(o.encryption_key_file == NULL,
	   "options: encryption_key_file NULL when unset");
	ok(o.origin == origin, "options: origin borrowed");
	snprintf(want, sizeof(want), "%s/var/resync.db", tdir);
	is_str(o.db_path, want, "options: db path resolved");
	ok(o.busy_timeout_ms == 0 && o.cache.clock_ms == NULL,
	   "options: the rest zeroed");
	rs_config_free(cfg);

	cfg = config("[persistence]\ndb = var/resync.db\n", NULL);
	rs_store_options_from_config(cfg, origin, &o);
	is_int(o.cache.max_key_bytes, 1024, "options: development max_key_bytes");
	is_int(o.cache.max_value_bytes, 10 * RS_MIB,
	       "options: development max_value_bytes 10 MiB");
	rs_config_free(cfg);

	cfg = config("[persistence]\ndb = var/resync.db\n", "test");
	rs_store_options_from_config(cfg, origin, &o);
	ok(o.cache.max_key_bytes == 1024 && o.cache.max_value_bytes == 10 * RS_MIB,
	   "options: test environment has the looser defaults too");
	rs_config_free(cfg);
}

static void test_options_explicit(void)
{
	static const char *const envs[] = { "production", "development" };
	static const char *const syncs[][2] = {
		{ "always", "0" }, { "batch", "1" }, { "off", "2" },
	};
	struct rs_store_options o;
	struct rs_config *cfg;
	char text[1024], name[128];
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(envs); i++) {
		snprintf(text, sizeof(text),
			 "[server]\nenvironment = %s\n"
			 "[cache]\nmax_key_size = 500B\nmax_value_size = 2MB\n",
			 envs[i]);
		cfg = config(text, NULL);
		rs_store_options_from_config(cfg, "x", &o);
		snprintf(name, sizeof(name),
			 "options: explicit limits win in %s", envs[i]);
		ok(o.cache.max_key_bytes == 500 &&
		   o.cache.max_value_bytes == 2 * RS_MIB, name);
		rs_config_free(cfg);
	}
	/* Set to the production default outside production: still explicit. */
	cfg = config("[cache]\nmax_key_size = 1000B\nmax_value_size = 1MB\n",
		     "development");
	rs_store_options_from_config(cfg, "x", &o);
	ok(o.cache.max_key_bytes == 1000 && o.cache.max_value_bytes == RS_MIB,
	   "options: explicit values equal to production's still win");
	rs_config_free(cfg);

	for (i = 0; i < RS_ARRAY_SIZE(syncs); i++) {
		snprintf(text, sizeof(text), "[persistence]\nsync = %s\n",
			 syncs[i][0]);
		cfg = config(text, NULL);
		rs_store_options_from_config(cfg, "x", &o);
		snprintf(name, sizeof(name), "options: sync = %s", syncs[i][0]);
		is_int(o.sync, atoi(syncs[i][1]), name);
		rs_config_free(cfg);
	}
	ok(RS_WAL_SYNC_ALWAYS == 0 && RS_WAL_SYNC_BATCH == 1 &&
	   RS_WAL_SYNC_OFF == 2, "options: (the enum as the table assumes)");

	cfg = config("[cache]\nttl = 90s\nstale_while_revalidate = 5s\n"
		     "stale_if_error = 2m\nnum_shards = 64\nmax_entries = 1234\n"
		     "max_memory = 64MB\n"
		     "[persistence]\nsync_interval = 250ms\n"
		     "snapshot_retention = 2d\nwal_retention = 30m\n", NULL);
	rs_store_options_from_config(cfg, "x", &o);
	is_int(o.cache.default_ttl_ms, 90000, "options: ttl");
	is_int(o.cache.stale_while_revalidate_ms, 5000,
	       "options: stale_while_revalidate");
	is_int(o.cache.stale_if_error_ms, 120000, "options: stale_if_error");
	is_int(o.cache.num_shards, 64, "options: num_shards");
	is_int(o.cache.max_entries, 1234, "options: max_entries");
	is_int(o.cache.max_memory_bytes, 64 * RS_MIB, "options: max_memory");
	is_int(o.sync_interval_ms, 250, "options: sync_interval");
	is_int(o.snapshot_retention_ms, 2 * RS_MS_PER_DAY,
	       "options: snapshot_retention");
	is_int(o.wal_retention_ms, 30 * 60 * 1000, "options: wal_retention");
	rs_config_free(cfg);
}

int main(void)
{
	umask(022);
	tdir_make();
	test_set_at();
	test_flush();
	test_restore();
	test_restore_expired();
	test_restore_big();
	test_restore_off();
	test_options_defaults();
	test_options_explicit();
	tdir_remove();
	return tap_done();
}
