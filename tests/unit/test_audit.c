/* The audit log: the chain, each kind of tampering, key rotation, the
 * anchor, prune with its checkpoint, export, queries, and the writer under
 * threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "tap.h"
#include "testlib.h"
#include "testsql.h"

static struct tmpdir tdir;
static struct rs_keyring *ring_a, *ring_ba, *ring_b;

static struct rs_db *db_open(const char *name, char *path)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;

	join(path, &tdir, name);
	if (rs_db_open(&db, path, NULL, &err)) {
		printf("# rs_db_open: %s\n", err.msg);
		exit(2);
	}
	return db;
}

static void add(struct rs_db *db, const struct rs_keyring *k, int i, int64_t t_us)
{
	struct rs_err err = RS_ERR_INIT;
	char target[32];
	json_t *d = json_pack("{s:i,s:s}", "n", i, "b", "x");

	snprintf(target, sizeof(target), "t%d", i);
	struct rs_audit_event ev = {
		.actor = i % 3 ? "key:ops" : "jwt:alice", .source = "10.0.0.1",
		.action = i % 2 ? "auth.failure" : "cache.purge", .target = target,
		.request_id = "rid", .outcome = i % 2 ? RS_AUDIT_DENIED : RS_AUDIT_SUCCESS,
		.details = d, .time_us = t_us,
	};
	if (rs_audit_append_db(db, k, &ev, NULL, &err) < 0)
		printf("# append: %s\n", err.msg);
	json_decref(d);
}

static struct rs_audit_verify_result check(struct rs_db *db, const struct rs_keyring *k)
{
	struct rs_audit_verify_result res;
	struct rs_err err = RS_ERR_INIT;

	if (rs_audit_verify(db, k, 0, 0, NULL, &res, &err) < 0)
		printf("# verify: %s\n", err.msg);
	return res;
}

/* A fresh log of n records with ring k. */
static struct rs_db *fresh(const char *name, char *path, const struct rs_keyring *k, int n)
{
	struct rs_db *db = db_open(name, path);

	for (int i = 1; i <= n; i++)
		add(db, k, i, 1000000LL * i);
	return db;
}

static int count_cb(const struct rs_audit_record *r, void *arg)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

static int query_count(struct rs_db *db, struct rs_audit_filter f)
{
	struct rs_err err = RS_ERR_INIT;
	int n = 0;

	if (rs_audit_query(db, &f, count_cb, &n, &err) < 0)
		printf("# query: %s\n", err.msg);
	return n;
}

static struct rs_audit *shared;

static void *appender(void *arg)
{
	(void)arg;
	for (int i = 0; i < 250; i++) {
		struct rs_err err = RS_ERR_INIT;
		struct rs_audit_event ev = { .actor = "system", .action = "t", .outcome = RS_AUDIT_SUCCESS };
		if (rs_audit_append(shared, &ev, NULL, &err) < 0)
			printf("# append: %s\n", err.msg);
	}
	return NULL;
}

int main(void)
{
	char path[1024];
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit_verify_result res;
	unsigned char ka[2][32], h[32];
	int64_t seq;

	if (make_tmpdir(&tdir, "audit") < 0)
		return 2;
	memset(ka[0], 0xbb, 32);
	memset(ka[1], 0xaa, 32);
	rs_keyring_from_keys(&ring_a, &ka[1], 1, &err);
	rs_keyring_from_keys(&ring_ba, ka, 2, &err);
	rs_keyring_from_keys(&ring_b, ka, 1, &err);

	/* an untouched chain verifies, with and without a key */
	struct rs_db *db = fresh("plain.db", path, NULL, 300);
	res = check(db, NULL);
	ok(res.why == RS_AUDIT_INTACT && res.checked == 300 && res.last_seq == 300, "plain chain intact");
	rs_db_close(db);
	db = fresh("keyed.db", path, ring_a, 300);
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_INTACT && res.checked == 300, "HMAC chain intact");
	/* rotation: a ring with a new key first still verifies the old */
	res = check(db, ring_ba);
	ok(res.why == RS_AUDIT_INTACT, "rotated ring verifies old records");
	add(db, ring_ba, 301, 301000000);
	res = check(db, ring_ba);
	ok(res.why == RS_AUDIT_INTACT && res.checked == 301, "records of both keys verify");
	res = check(db, ring_b);
	ok(res.why == RS_AUDIT_UNKNOWN_KEY && res.bad_seq == 1, "the old key gone: unknown key");
	res = check(db, NULL);
	ok(res.why == RS_AUDIT_UNKNOWN_KEY, "no ring at all: unknown key");
	rs_db_close(db);

	/* modified */
	db = fresh("mod.db", path, ring_a, 50);
	sql(path, "UPDATE audit SET details = '{\"b\":\"y\",\"n\":17}' WHERE seq = 17");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_MODIFIED && res.bad_seq == 17, "an edited row is modified at its seq");
	has_str(res.detail, "17", "the detail names it");
	rs_db_close(db);

	/* deleted */
	db = fresh("del.db", path, ring_a, 50);
	sql(path, "DELETE FROM audit WHERE seq = 20");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_DELETED && res.bad_seq == 21, "a deleted row is found at the gap");
	rs_db_close(db);

	/* reordered: two rows swap places */
	db = fresh("swap.db", path, ring_a, 50);
	sql(path, "UPDATE audit SET seq = -1 WHERE seq = 30; UPDATE audit SET seq = 30 WHERE seq = 31;"
		  " UPDATE audit SET seq = 31 WHERE seq = -1");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_REORDERED && res.bad_seq == 30, "swapped rows are reordered");
	rs_db_close(db);

	/* inserted: a forged row in the middle, the rest renumbered */
	db = fresh("ins.db", path, ring_a, 50);
	sql(path, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 40; UPDATE audit SET seq = seq - 999 WHERE seq >= 1040;"
		  " INSERT INTO audit SELECT 40, time_us, 'key:evil', source, action, target, outcome,"
		  " request_id, details, key_id, (SELECT hash FROM audit WHERE seq = 39), zeroblob(32)"
		  " FROM audit WHERE seq = 39");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_INSERTED && res.bad_seq == 40, "a forged row is inserted");
	rs_db_close(db);

	/* the anchor shows a cut log */
	db = fresh("cut.db", path, ring_a, 50);
	ok(rs_audit_head(db, &seq, h, &err) == 0 && seq == 50, "head");
	ok(rs_audit_verify(db, ring_a, 0, seq, h, &res, &err) == 0 && res.why == RS_AUDIT_INTACT,
	   "intact with its anchor");
	sql(path, "DELETE FROM audit WHERE seq > 45");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_INTACT, "a cut chain alone looks intact");
	rs_audit_verify(db, ring_a, 0, seq, h, &res, &err);
	ok(res.why == RS_AUDIT_TRUNCATED && res.bad_seq == 50, "the anchor finds the cut");
	rs_db_close(db);

	/* prune: refused before export, then the checkpoint keeps it verifying */
	db = fresh("prune.db", path, ring_a, 100);
	uint64_t removed = 9;
	ok(rs_audit_prune(db, ring_a, 40500000, false, "unix:root", &removed, &err) < 0 &&
	   err.code == EPERM && removed == 0, "prune refused before export");
	char exp[1024];
	join(exp, &tdir, "export.jsonl");
	FILE *f = fopen(exp, "w");
	uint64_t n = 0;
	ok(rs_audit_export(db, f, RS_AUDIT_JSONL, 0, &n, &err) == 0 && n == 100, "export 100");
	fclose(f);
	ok(rs_audit_prune(db, ring_a, 40500000, false, "unix:root", &removed, &err) == 0 &&
	   removed == 40, "prune after export");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_INTACT && res.checked == 61 && res.last_seq == 101,
	   "the pruned log verifies with its checkpoint");
	sql(path, "DELETE FROM audit WHERE action = 'audit.prune'");
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_DELETED && res.bad_seq == 41, "without the checkpoint: deleted");
	rs_db_close(db);

	/* the export verifies alone; an edited line does not */
	f = fopen(exp, "r");
	ok(rs_audit_verify_export(f, ring_a, 0, NULL, &res, &err) == 0 &&
	   res.why == RS_AUDIT_INTACT && res.checked == 100, "the export verifies");
	fclose(f);
	char *text = slurp(exp);
	char *p = strstr(text, "\"n\":7}");
	if (p)
		p[4] = '8';
	char edited[1024];
	join(edited, &tdir, "edited.jsonl");
	f = fopen(edited, "w");
	fputs(text, f);
	fclose(f);
	free(text);
	f = fopen(edited, "r");
	rs_audit_verify_export(f, ring_a, 0, NULL, &res, &err);
	fclose(f);
	ok(p && res.why == RS_AUDIT_MODIFIED && res.bad_seq == 7, "an edited export line is found");

	/* queries */
	db = fresh("query.db", path, NULL, 60);
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1 }), 60, "all");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = RS_AUDIT_DENIED }), 30, "by outcome");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .actor = "jwt:alice" }), 20, "by actor");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .action = "auth.*" }), 30, "by action prefix");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .action = "auth" }), 0, "action exact");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .since_us = 11000000,
							 .until_us = 21000000 }), 10, "by time");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .text = "t59" }), 1, "by text");
	is_int(query_count(db, (struct rs_audit_filter){ .outcome = -1, .limit = 5 }), 5, "limit");

	/* the summary: 60 records, i at i seconds; key:ops unless i % 3 == 0 */
	json_t *sum = rs_audit_summary(db, 0, 0, 0, &err);
	ok(sum && json_integer_value(json_object_get(sum, "total")) == 60 &&
	   json_integer_value(json_object_get(sum, "first_seq")) == 1 &&
	   json_integer_value(json_object_get(sum, "last_seq")) == 60, "summary: total and seqs");
	json_t *actors = json_object_get(sum, "by_actor");
	ok(json_array_size(actors) == 2 &&
	   !strcmp(json_string_value(json_object_get(json_array_get(actors, 0), "name")), "key:ops") &&
	   json_integer_value(json_object_get(json_array_get(actors, 0), "count")) == 40 &&
	   json_integer_value(json_object_get(json_array_get(actors, 1), "count")) == 20,
	   "summary: actors, most first");
	/* a tie is ordered by name */
	json_t *oc = json_object_get(sum, "by_outcome");
	ok(json_array_size(oc) == 2 &&
	   !strcmp(json_string_value(json_object_get(json_array_get(oc, 0), "name")), "denied"),
	   "summary: a tie in name order");
	json_decref(sum);
	sum = rs_audit_summary(db, 11000000, 21000000, 1, &err);
	ok(sum && json_integer_value(json_object_get(sum, "total")) == 10 &&
	   json_integer_value(json_object_get(sum, "first_seq")) == 11 &&
	   json_array_size(json_object_get(sum, "by_action")) == 1, "summary: a period, top 1");
	json_decref(sum);
	sum = rs_audit_summary(db, 1000000000, 0, 0, &err);
	ok(sum && json_integer_value(json_object_get(sum, "total")) == 0 &&
	   json_array_size(json_object_get(sum, "by_actor")) == 0, "summary: an empty period");
	json_decref(sum);
	rs_db_close(db);

	/* the writer: four threads, every append committed before it returns */
	join(path, &tdir, "writer.db");
	struct rs_audit_options o = { .db_path = path, .keys = ring_a, .queue_size = 64,
				      .sync_always = true };
	ok(rs_audit_open(&shared, &o, &err) == 0, "writer open");
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, appender, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct rs_audit_stats st;
	rs_audit_stats(shared, &st);
	is_int(st.written, 1000, "1000 written");
	is_int(st.last_seq, 1000, "last seq 1000");
	/* another process (resyncctl) appends between batches */
	db = db_open("writer.db", path);
	add(db, ring_a, 1, 0);
	struct rs_audit_event ev = { .actor = "system", .action = "t" };
	ok(rs_audit_append(shared, &ev, &seq, &err) == 0 && seq == 1002, "the writer chains after it");
	rs_audit_close(shared);
	res = check(db, ring_a);
	ok(res.why == RS_AUDIT_INTACT && res.checked == 1002, "interleaved writers keep one chain");
	rs_db_close(db);

	/* a full queue in fail mode refuses at once */
	join(path, &tdir, "full.db");
	db = db_open("full.db", path);
	struct rs_audit_options fo = { .db_path = path, .queue_size = 2, .fail_when_full = true };
	ok(rs_audit_open(&shared, &fo, &err) == 0, "fail-mode writer");
	rs_db_exec(db, "BEGIN IMMEDIATE", &err);
	int refused = 0;
	for (int i = 0; i < 10; i++) {
		struct rs_err e2 = RS_ERR_INIT;
		if (rs_audit_append(shared, &ev, NULL, &e2) < 0 && e2.code == EAGAIN)
			refused++;
	}
	/* the writer is stuck on the lock: two queued, the rest refused */
	is_int(refused, 8, "a full queue refuses with EAGAIN");
	rs_db_exec(db, "COMMIT", &err);
	rs_audit_close(shared);
	is_int(sql_int(path, "SELECT count(*) FROM audit"), 10 - refused, "what was queued was written");
	rs_db_close(db);

	rs_keyring_free(ring_a);
	rs_keyring_free(ring_ba);
	rs_keyring_free(ring_b);
	remove_tmpdir(&tdir);
	return tap_done();
}
