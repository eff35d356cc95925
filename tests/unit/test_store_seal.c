/*
 * test_store_seal: the store with [persistence] encryption_key_file.
 * Values reach the cache log and snapshots only sealed (no plaintext in
 * any value column nor anywhere in the database file, each sealed value
 * RS_SEAL_OVERHEAD bytes longer, the current key's id beside it; deletes
 * and purges carry no id), and come back in plaintext after a reopen, from
 * the log alone or from a snapshot plus the records after it, and after a
 * restore.  Rotation: a new first key seals what follows while the old
 * one still opens what it sealed; without the old key the open fails
 * naming its id for as long as recovery needs a snapshot or record it
 * sealed, and works once a snapshot with the new key and gc have taken
 * them out of the way.  No key file, or one without the key, fails the
 * open with a message naming the key id; a key file others may read is
 * refused before the database is touched.  Values moved between keys are
 * found (checksum mismatch, or with the checksum recomputed, a seal that
 * does not authenticate) and never served under the other key.  A
 * plaintext database keeps working once a key file is configured.  A
 * follower with the key applies sealed records; one without it stops at
 * the first, says why, and does not skip it.  Each test has a temp
 * directory of its own.
 */
#include "crc32c.h"
#include "repair.h"
#include "seal.h"
#include "store.h"
#include "tap.h"
#include "testlib.h"
#include "testsql.h"
#include "teststore.h"
#include "util.h"
#include "wal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ENTRIES 10000
#define MAX_MEMORY (16 * RS_MIB)
#define HEX_CHARS (2 * RS_SEAL_KEY_BYTES)
#define GC_WAIT_US 5000              /* so records and snapshots are older
				      * than "now" for gc with retention 0 */
#define MAX_COPIED 16                /* log records a test rewrites */
#define SMALL_MAX 256                /* their keys, values, origins */
#define MSG_MAX RS_ERR_MSG_MAX

/* In every value, never in a key: the plaintext must not reach the
 * database with a key file configured. */
#define MARKER "SECRET"

/* Key seeds: the key bytes are derived from them (key_hex). */
enum { K1 = 1, K2 = 2, K3 = 3 };

/* ---- helpers ------------------------------------------------------------- */

static void key_hex(char out[HEX_CHARS + 1], unsigned seed)
{
	for (unsigned i = 0; i < RS_SEAL_KEY_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x",
			 (seed * 131 + i * 7 + 1) & 0xffu);
}

/* Write t/name holding the keys of seeds[0..n) (the first current), with
 * `mode`; its path goes to path.  Rewrites an existing file in place. */
static bool write_keyfile(char *path, const struct tmpdir *t,
			  const char *name, const unsigned *seeds, size_t n,
			  mode_t mode)
{
	char text[RS_SEAL_MAX_KEYS * (HEX_CHARS + 1) + 64];
	size_t len;
	ssize_t w;
	int fd;

	len = (size_t)snprintf(text, sizeof(text), "# resync test keys\n");
	for (size_t i = 0; i < n; i++) {
		key_hex(text + len, seeds[i]);
		len += HEX_CHARS;
		text[len++] = '\n';
	}
	join(path, t, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		printf("#   cannot create '%s'\n", path);
		return false;
	}
	w = write(fd, text, len);
	if (w != (ssize_t)len || fchmod(fd, mode) < 0) {
		printf("#   cannot write '%s'\n", path);
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* The current key's id of a key file, as the store will record it. */
static void ring_id(const char *keyfile, char id[RS_SEAL_ID_CHARS + 1])
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_keyring *k = NULL;

	strcpy(id, "(no key)");
	if (rs_keyring_load(&k, keyfile, &err)) {
		printf("#   rs_keyring_load: %s\n", err.msg);
		return;
	}
	snprintf(id, RS_SEAL_ID_CHARS + 1, "%s", rs_keyring_current_id(k));
	rs_keyring_free(k);
}

/* store_opts with a smaller cache, sealing with keyfile (NULL: none). */
static struct rs_store_options opts(const char *path, enum rs_wal_sync sync,
				    const char *origin, const char *keyfile)
{
	struct rs_store_options o = store_opts(path, sync, origin);

	o.encryption_key_file = keyfile;
	o.cache.max_entries = MAX_ENTRIES;
	o.cache.max_memory_bytes = MAX_MEMORY;
	return o;
}

/* An open that should fail: true with its message in msg, false (and
 * the store closed again) when it opened. */
static bool open_fails(const struct rs_store_options *o, char msg[MSG_MAX])
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_store *s = NULL;

	if (rs_store_open(&s, o, NULL, &err) == 0) {
		printf("#   expected rs_store_open to fail; it opened\n");
		close_store(s);
		snprintf(msg, MSG_MAX, "(opened)");
		return false;
	}
	snprintf(msg, MSG_MAX, "%s", err.msg);
	return true;
}

/* The first column of the first row as text into out: "(null)" for
 * NULL, "(no row)" when there is none. */
static const char *sql_text(const char *path, const char *q, char *out,
			    size_t n)
{
	sqlite3_stmt *st;
	sqlite3 *h = NULL;

	snprintf(out, n, "(no row)");
	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(st, 0);

			snprintf(out, n, "%s", t ? (const char *)t : "(null)");
		}
		sqlite3_finalize(st);
	} else {
		printf("#   sql \"%s\": %s\n", q, sqlite3_errmsg(h));
	}
	sqlite3_close(h);
	return out;
}

/* How many rows of q (its first column a blob) hold needle; -1 on an
 * error. */
static long long rows_holding(const char *path, const char *q,
			      const char *needle)
{
	sqlite3_stmt *st;
	sqlite3 *h = NULL;
	long long n = 0;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h, q, -1, &st, NULL) != SQLITE_OK) {
		printf("#   sql \"%s\": %s\n", q, sqlite3_errmsg(h));
		sqlite3_close(h);
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);

		if (b && memmem(b, (size_t)len, needle, strlen(needle)))
			n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Does the file (absent: no) hold needle anywhere? */
static bool file_holds(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	bool found;

	if (!f)
		return false;
	for (;;) {
		if (cap - len < 65536) {
			char *p = realloc(buf, cap + 1048576);

			if (!p)
				break;
			buf = p;
			cap += 1048576;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	found = buf && memmem(buf, len, needle, strlen(needle));
	free(buf);
	return found;
}

/* Neither the database nor its -wal file holds needle. */
static bool db_files_lack(const char *path, const char *needle)
{
	char wal[TEST_PATH_MAX];

	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (file_holds(path, needle) || file_holds(wal, needle)) {
		printf("#   \"%s\" found in '%s' or its -wal file\n", needle,
		       path);
		return false;
	}
	return true;
}

/* cache_log's key_id of the newest set of key k, as text. */
static const char *log_key_id(const char *path, const char *k, char *out,
			      size_t n)
{
	char q[256];

	snprintf(q, sizeof(q),
		 "SELECT key_id FROM cache_log WHERE op = 1"
		 " AND CAST(key AS TEXT) = '%s' ORDER BY seq DESC LIMIT 1", k);
	return sql_text(path, q, out, n);
}

/* Length of the value of the newest set of key k in the log. */
static long long log_value_len(const char *path, const char *k)
{
	char q[256];

	snprintf(q, sizeof(q),
		 "SELECT length(value) FROM cache_log WHERE op = 1"
		 " AND CAST(key AS TEXT) = '%s' ORDER BY seq DESC LIMIT 1",
		 k);
	return sql_int(path, q);
}

static const char *snap_key_id(const char *path, int64_t id, char *out,
			       size_t n)
{
	char q[128];

	snprintf(q, sizeof(q), "SELECT key_id FROM cache_snapshot WHERE id = %"
		 PRId64, id);
	return sql_text(path, q, out, n);
}

static long long count_id(const char *path, const char *table,
			  const char *id)
{
	char q[256];

	snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE key_id = '%s'",
		 table, id);
	return sql_int(path, q);
}

/* ---- rewriting log records behind the store's back ---------------------- */

struct copied {
	struct rs_wal_record r;
	char origin[SMALL_MAX], key[SMALL_MAX];
	unsigned char val[SMALL_MAX];
	char key_id[RS_SEAL_ID_CHARS + 8];
};

struct copies {
	struct copied c[MAX_COPIED];
	size_t n;
};

static void copy_text(char *dst, size_t n, const void *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int copy_cb(void *arg, const struct rs_wal_record *r)
{
	struct copies *cs = arg;
	struct copied *c;

	if (cs->n == MAX_COPIED || r->klen >= SMALL_MAX ||
	    r->vlen > SMALL_MAX)
		return 1;
	c = &cs->c[cs->n++];
	c->r = *r;
	copy_text(c->origin, sizeof(c->origin), r->origin, strlen(r->origin));
	copy_text(c->key, sizeof(c->key), r->key, r->klen);
	if (r->val)
		memcpy(c->val, r->val, r->vlen);
	c->r.origin = c->origin;
	c->r.key = c->key;
	c->r.val = r->val ? c->val : NULL;
	if (r->key_id) {
		copy_text(c->key_id, sizeof(c->key_id), r->key_id,
			  strlen(r->key_id));
		c->r.key_id = c->key_id;
	}
	return 0;
}

/* Every record of the log, copied. */
static bool read_log(const char *path, struct copies *cs)
{
	struct rs_wal_read_report rep;
	struct rs_err err = RS_ERR_INIT;

	cs->n = 0;
	if (rs_wal_read(path, 0, NULL, copy_cb, cs, &rep, &err) != 0 ||
	    rep.stopped) {
		printf("#   read the log: %s%s\n", err.msg, rep.reason);
		return false;
	}
	return true;
}

/* Store c's value, key_id and a checksum recomputed over them: what
 * someone with write access to the database and the (public) CRC can
 * do.  The log's checksum then passes; only the seal can object. */
static bool rewrite(const char *path, const struct copied *c)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *h = NULL;
	bool done;

	sqlite3_open(path, &h);
	sqlite3_busy_timeout(h, STORE_BUSY_TIMEOUT_MS);
	done = sqlite3_prepare_v2(h,
				  "UPDATE cache_log SET value = ?1, key_id = ?2,"
				  " checksum = ?3 WHERE seq = ?4",
				  -1, &st, NULL) == SQLITE_OK &&
	       sqlite3_bind_blob(st, 1, c->r.val, (int)c->r.vlen,
				 SQLITE_STATIC) == SQLITE_OK &&
	       (c->r.key_id ?
			sqlite3_bind_text(st, 2, c->r.key_id, -1,
					  SQLITE_STATIC) :
			sqlite3_bind_null(st, 2)) == SQLITE_OK &&
	       sqlite3_bind_int64(st, 3, (int64_t)rs_wal_checksum(&c->r)) ==
		       SQLITE_OK &&
	       sqlite3_bind_int64(st, 4, c->r.seq) == SQLITE_OK &&
	       sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(h) == 1;
	if (!done)
		printf("#   rewrite seq %" PRId64 ": %s\n", c->r.seq,
		       sqlite3_errmsg(h));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return done;
}

static void swap_values(struct copied *a, struct copied *b)
{
	unsigned char tmp[SMALL_MAX];
	size_t tlen = a->r.vlen;

	memcpy(tmp, a->val, a->r.vlen);
	memcpy(a->val, b->val, b->r.vlen);
	a->r.vlen = b->r.vlen;
	memcpy(b->val, tmp, tlen);
	b->r.vlen = tlen;
}

/* ---- the log ------------------------------------------------------------- */

static void test_log_sealed(enum rs_wal_sync sync, const char *name,
			    const char *dir)
{
	static const char *const keys[] = { "alpha", "beta", "gamma", "e" };
	static const char *const vals[] = {
		"SECRET value of alpha, long enough to spot",
		"SECRET beta",
		"SECRET gamma: \x01\x02 binary-ish bytes",
		"",
	};
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], title[160];
	char id[RS_SEAL_ID_CHARS + 1], got[64];
	const unsigned seeds[] = { K1 };
	struct rs_store *s;
	struct tmpdir t;
	uint64_t removed = 0;
	bool lens = true, ids = true, plain = true;

	if (!dir_for(&t, dir, path))
		return;
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600)) {
		ok(0, "log: key file written");
		goto out;
	}
	ring_id(kf, id);
	o = opts(path, sync, "one", kf);
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "log: open with a key file");
		goto out;
	}
	for (size_t i = 0; i < 4; i++)
		set_str(s, keys[i], vals[i], -1);
	del_str(s, "beta");
	rs_store_purge(s, "zz", 2, &removed, &err);
	rs_store_purge(s, NULL, 0, &removed, &err);   /* everything */
	set_str(s, "alpha", vals[0], -1);
	set_str(s, "gamma", vals[2], -1);
	set_str(s, "e", vals[3], -1);
	if (rs_store_flush(s, &err))
		printf("#   flush: %s\n", err.msg);

	snprintf(title, sizeof(title), "log (%s): gets return the plaintext",
		 name);
	ok(has_value(s, "alpha", vals[0]) && has_value(s, "gamma", vals[2]) &&
	   has_value(s, "e", "") && absent(s, "beta"), title);

	for (size_t i = 0; i < 4; i++) {
		long long len = log_value_len(path, keys[i]);

		if (len != (long long)(strlen(vals[i]) + RS_SEAL_OVERHEAD)) {
			printf("#   %s: logged %lld bytes, expected %zu + %d\n",
			       keys[i], len, strlen(vals[i]), RS_SEAL_OVERHEAD);
			lens = false;
		}
		if (strcmp(log_key_id(path, keys[i], got, sizeof(got)), id)) {
			printf("#   %s: key_id \"%s\", expected \"%s\"\n",
			       keys[i], got, id);
			ids = false;
		}
		if (*vals[i] && rows_holding(path,
					     "SELECT value FROM cache_log",
					     vals[i]) != 0) {
			printf("#   the plaintext of %s is in cache_log\n",
			       keys[i]);
			plain = false;
		}
	}
	snprintf(title, sizeof(title),
		 "log (%s): each sealed value is the plaintext + %d bytes", name,
		 RS_SEAL_OVERHEAD);
	ok(lens, title);
	snprintf(title, sizeof(title),
		 "log (%s): each set's key_id is the key file's current id",
		 name);
	ok(ids, title);
	snprintf(title, sizeof(title),
		 "log (%s): no plaintext value in cache_log.value", name);
	ok(plain && rows_holding(path, "SELECT value FROM cache_log",
				 MARKER) == 0, title);
	snprintf(title, sizeof(title),
		 "log (%s): every set has a key_id, no delete or purge has one",
		 name);
	ok(sql_int(path, "SELECT count(*) FROM cache_log"
			 " WHERE op = 1 AND key_id IS NULL") == 0 &&
	   sql_int(path, "SELECT count(*) FROM cache_log WHERE op != 1") == 3 &&
	   sql_int(path, "SELECT count(*) FROM cache_log"
			 " WHERE op != 1 AND key_id IS NOT NULL") == 0, title);
	snprintf(title, sizeof(title),
		 "log (%s): the database files hold no plaintext", name);
	ok(db_files_lack(path, MARKER), title);
	close_store(s);
	ok(db_files_lack(path, MARKER), "log: nor after close");

	s = open_store(&o, &rec);
	snprintf(title, sizeof(title),
		 "log (%s): reopen with the same key file replays all 10", name);
	ok(s && !rec.log.stopped && rec.replayed == 10, title);
	snprintf(title, sizeof(title), "log (%s): everything is back", name);
	ok(has_value(s, "alpha", vals[0]) && has_value(s, "gamma", vals[2]) &&
	   has_value(s, "e", "") && absent(s, "beta"), title);
	close_store(s);
out:
	remove_tmpdir(&t);
}

/* ---- snapshots ------------------------------------------------------------ */

static void test_snapshot_sealed(void)
{
	static const char *const keys[] = { "a", "b", "c" };
	static const char *const vals[] = { "SECRET a-value", "SECRET bb",
					    "SECRET ccc ccc" };
	struct rs_store_restore_report rrep;
	struct rs_snapshot_check check;
	struct rs_verify_report v;
	struct rs_store_recovery rec;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], q[256];
	char id[RS_SEAL_ID_CHARS + 1], got[64];
	const unsigned seeds[] = { K1 };
	struct rs_store *s;
	struct tmpdir t;
	int64_t snap;
	long long sealed_len = 0;

	if (!dir_for(&t, "seal-snapshot", path))
		return;
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600))
		goto out;
	ring_id(kf, id);
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	s = open_store(&o, NULL);
	if (!s) {
		ok(0, "snapshot: open");
		goto out;
	}
	for (size_t i = 0; i < 3; i++) {
		set_str(s, keys[i], vals[i], -1);
		sealed_len += (long long)(strlen(vals[i]) + RS_SEAL_OVERHEAD);
	}
	snap = take_snapshot(s);
	ok(snap > 0, "snapshot: taken");
	is_str(snap_key_id(path, snap, got, sizeof(got)), id,
	       "snapshot: cache_snapshot.key_id is the current key's id");
	snprintf(q, sizeof(q), "SELECT value FROM cache_snapshot_row"
			       " WHERE snapshot_id = %" PRId64, snap);
	is_int(rows_holding(path, q, MARKER), 0,
	       "snapshot: no row holds a plaintext value");
	snprintf(q, sizeof(q), "SELECT sum(length(value)) FROM cache_snapshot_row"
			       " WHERE snapshot_id = %" PRId64, snap);
	is_int(sql_int(path, q), sealed_len,
	       "snapshot: each row is the plaintext + the seal's overhead");
	snprintf(q, sizeof(q), "SELECT bytes FROM cache_snapshot WHERE id = %"
			       PRId64, snap);
	is_int(sql_int(path, q), sealed_len + 3,
	       "snapshot: its bytes count the keys and the sealed values");
	memset(&check, 0, sizeof(check));
	ok(rs_snapshot_verify(path, NULL, snap, &check, &err) == 0 && check.ok,
	   "snapshot: verifies without a key (checksum over the sealed bytes)");

	/* The tail after the snapshot. */
	clk += 1000;
	set_str(s, "d", "SECRET d after the snapshot", -1);
	del_str(s, "a");
	close_store(s);
	ok(db_files_lack(path, MARKER), "snapshot: the database holds no plaintext");

	s = open_store(&o, &rec);
	ok(s && rec.snapshot.loaded_id == snap && rec.snapshot.entries == 3 &&
	   rec.replayed == 2 && !rec.log.stopped,
	   "snapshot: reopen loads the sealed snapshot and replays the tail");
	ok(absent(s, "a") && has_value(s, "b", vals[1]) &&
	   has_value(s, "c", vals[2]) &&
	   has_value(s, "d", "SECRET d after the snapshot"),
	   "snapshot: snapshot + tail give the plaintext values");
	if (!s)
		goto out;

	memset(&rrep, 0, sizeof(rrep));
	if (rs_store_restore(s, snap, &rrep, &err))
		printf("#   restore: %s\n", err.msg);
	ok(rrep.entries == 3 && has_value(s, "a", vals[0]) && absent(s, "d"),
	   "snapshot: restore of a sealed snapshot gives its plaintext back");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"
			     " WHERE op = 1 AND key_id IS NULL"), 0,
	       "snapshot: and logs the restored entries sealed");
	close_store(s);
	s = open_store(&o, NULL);
	ok(has_value(s, "a", vals[0]) && absent(s, "d"),
	   "snapshot: the restore survives a reopen");
	close_store(s);
	ok(db_files_lack(path, MARKER), "snapshot: still no plaintext on disk");

	memset(&v, 0, sizeof(v));
	ok(rs_cache_verify(path, NULL, false, &v, &err) == 0 && v.faults == 0 &&
	   v.snapshots_ok == 1 && v.records > 0,
	   "snapshot: verify checks everything without a key, no faults");
	rs_verify_report_free(&v);
out:
	remove_tmpdir(&t);
}

/* ---- rotation ------------------------------------------------------------- */

static void test_rotation(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options ox, oy, oz, o1;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], kf2[TEST_PATH_MAX],
		kf1[TEST_PATH_MAX], msg[MSG_MAX], got[64];
	char id1[RS_SEAL_ID_CHARS + 1], id2[RS_SEAL_ID_CHARS + 1];
	const unsigned only1[] = { K1 }, both[] = { K2, K1 }, only2[] = { K2 };
	struct rs_store *x = NULL, *y = NULL, *s;
	struct tmpdir t;
	int64_t s1, s2, s3, s4, removed_records = 0;
	uint64_t applied = 0, removed_snaps = 0;

	if (!dir_for(&t, "seal-rotation", path))
		return;
	clk = T0_MS;
	/* kf is "the" key file, rewritten as an operator would; kf1 and kf2
	 * hold one key each. */
	if (!write_keyfile(kf, &t, "k.key", only1, 1, 0600) ||
	    !write_keyfile(kf1, &t, "k1.key", only1, 1, 0600) ||
	    !write_keyfile(kf2, &t, "k2.key", only2, 1, 0600))
		goto out;
	ring_id(kf1, id1);
	ring_id(kf2, id2);
	ok(strcmp(id1, id2) != 0, "rotation: two keys, two ids");

	/* x: a process started before the rotation, keeping [k1]. */
	ox = opts(path, RS_WAL_SYNC_ALWAYS, "x", kf);
	x = open_store(&ox, NULL);
	if (!x) {
		ok(0, "rotation: open with [k1]");
		goto out;
	}
	set_str(x, "a1", "SECRET a1", -1);
	s1 = take_snapshot(x);
	is_str(snap_key_id(path, s1, got, sizeof(got)), id1,
	       "rotation: snapshot 1 sealed with k1");

	/* The rotation: the new key first, the old one second. */
	if (!write_keyfile(kf, &t, "k.key", both, 2, 0600))
		goto out;
	oy = opts(path, RS_WAL_SYNC_ALWAYS, "y", kf);
	y = open_store(&oy, &rec);
	ok(y && rec.snapshot.loaded_id == s1 && has_value(y, "a1", "SECRET a1"),
	   "rotation: [k2, k1] recovers what k1 sealed");
	if (!y)
		goto out;
	set_str(y, "b", "SECRET b", -1);
	is_str(log_key_id(path, "b", got, sizeof(got)), id2,
	       "rotation: new records are sealed with k2");

	/* Without k1, snapshot 1 cannot be opened. */
	oz = opts(path, RS_WAL_SYNC_ALWAYS, "z", kf2);
	ok(open_fails(&oz, msg), "rotation: [k2] alone fails while snapshot 1 is needed");
	has_str(msg, id1, "rotation: the message names k1's id");
	has_str(msg, "not in the key file", "rotation: and says it is missing");
	has_str(msg, "snapshot 1", "rotation: and names the snapshot");

	s2 = take_snapshot(y);
	is_str(snap_key_id(path, s2, got, sizeof(got)), id2,
	       "rotation: the snapshot after it is sealed with k2");
	s = open_store(&oz, &rec);
	ok(s && rec.snapshot.loaded_id == s2 && has_value(s, "a1", "SECRET a1") &&
	   has_value(s, "b", "SECRET b"),
	   "rotation: [k2] alone then recovers from the new snapshot");
	close_store(s);

	/* x still seals with k1 after that snapshot: recovery needs k1 for
	 * that record, and a [k1]-only follower cannot read k2's. */
	set_str(x, "a2", "SECRET a2", -1);
	ok(open_fails(&oz, msg), "rotation: a k1 record after the snapshot: [k2] fails");
	has_str(msg, id1, "rotation: naming k1's id");
	has_str(msg, "cache log", "rotation: and the log");
	has_str(msg, "not in the key file", "rotation: as missing from the key file");
	ok(rs_store_follow(x, &applied, &err) == -1,
	   "rotation: a follower with only [k1] stops at a k2 record");
	has_str(err.msg, id2, "rotation: naming k2's id");
	ok(rs_store_follow(y, &applied, &err) == 0 && applied == 1 &&
	   has_value(y, "a2", "SECRET a2"),
	   "rotation: a follower with [k2, k1] applies the k1 record");
	s3 = take_snapshot(y);
	close_store(x);
	x = NULL;
	close_store(y);
	y = NULL;

	s = open_store(&oz, &rec);
	ok(s && rec.snapshot.loaded_id == s3 && has_value(s, "a2", "SECRET a2") &&
	   has_value(s, "a1", "SECRET a1") && has_value(s, "b", "SECRET b"),
	   "rotation: after a new snapshot [k2] alone recovers everything");
	ok(s && rs_store_restore(s, s1, NULL, &err) == -1 &&
	   strstr(err.msg, id1) && strstr(err.msg, "not in the key file"),
	   "rotation: restoring snapshot 1 without k1 fails, naming k1's id");
	ok(has_value(s, "a2", "SECRET a2"), "rotation: and changes nothing");
	close_store(s);

	/* gc with no retention takes out what k1 sealed; the log's newest
	 * record stays (wal.h) and may still be k1's until the next write. */
	oz.snapshot_retention_ms = 0;
	oz.wal_retention_ms = 0;
	s = open_store(&oz, NULL);
	if (!s)
		goto out;
	usleep(GC_WAIT_US);
	if (rs_store_gc(s, &removed_snaps, &removed_records, &err))
		printf("#   gc: %s\n", err.msg);
	ok(removed_snaps == 2 && count_id(path, "cache_snapshot", id1) == 0,
	   "rotation: gc removes the snapshot sealed with k1");
	is_int(count_id(path, "cache_log", id1), 1,
	       "rotation: the log's newest record, k1's, is kept");
	set_str(s, "c", "SECRET c", -1);
	s4 = take_snapshot(s);
	usleep(GC_WAIT_US);
	if (rs_store_gc(s, &removed_snaps, &removed_records, &err))
		printf("#   gc: %s\n", err.msg);
	close_store(s);
	ok(s4 > s3 && count_id(path, "cache_log", id1) == 0 &&
	   count_id(path, "cache_snapshot", id1) == 0,
	   "rotation: after another write, snapshot and gc nothing of k1 is left");
	/* The operator removes k1 from the key file. */
	if (!write_keyfile(kf, &t, "k.key", only2, 1, 0600))
		goto out;
	s = open_store(&oy, &rec);
	ok(s && rec.snapshot.loaded_id == s4 && has_value(s, "a1", "SECRET a1") &&
	   has_value(s, "a2", "SECRET a2") && has_value(s, "b", "SECRET b") &&
	   has_value(s, "c", "SECRET c"),
	   "rotation: the key file without k1 recovers everything");
	close_store(s);

	/* And the old key alone cannot read the new data. */
	o1 = opts(path, RS_WAL_SYNC_ALWAYS, "z", kf1);
	ok(open_fails(&o1, msg), "rotation: [k1] alone fails now");
	has_str(msg, id2, "rotation: naming k2's id");
	ok(db_files_lack(path, MARKER), "rotation: no plaintext on disk");
out:
	close_store(x);
	close_store(y);
	remove_tmpdir(&t);
}

/* ---- a missing key -------------------------------------------------------- */

static void test_missing_key(void)
{
	struct rs_store_options o, none, other;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], kf3[TEST_PATH_MAX],
		msg[MSG_MAX];
	char id[RS_SEAL_ID_CHARS + 1];
	const unsigned seeds[] = { K1 }, wrong[] = { K3 };
	struct rs_store *s;
	struct tmpdir t;
	long long rows;

	if (!dir_for(&t, "seal-missing", path))
		return;
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600) ||
	    !write_keyfile(kf3, &t, "k3.key", wrong, 1, 0600))
		goto out;
	ring_id(kf, id);
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	none = opts(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	other = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf3);
	s = open_store(&o, NULL);
	if (!s)
		goto out;
	set_str(s, "k", "SECRET v", -1);
	close_store(s);
	rows = sql_int(path, "SELECT count(*) FROM cache_log");

	ok(open_fails(&none, msg), "missing key: no key file, sealed log: open fails");
	has_str(msg, id, "missing key: names the key id");
	has_str(msg, "no encryption key file is configured",
		"missing key: says no key file is configured");
	has_str(msg, "seq 1", "missing key: names the record");
	has_str(msg, path, "missing key: names the database");
	none.encryption_key_file = "";
	ok(open_fails(&none, msg), "missing key: an empty key file setting is none");
	has_str(msg, "no encryption key file is configured",
		"missing key: the same message");
	ok(open_fails(&other, msg), "missing key: another key: open fails");
	has_str(msg, id, "missing key: names the key id");
	has_str(msg, "not in the key file", "missing key: says it is not in the key file");
	is_int(sql_int(path, "SELECT count(*) FROM cache_log"), rows,
	       "missing key: failed opens append nothing");

	/* The same with the value in a snapshot (the log tail is empty). */
	s = open_store(&o, NULL);
	ok(s && take_snapshot(s) == 1, "missing key: snapshot 1 taken");
	close_store(s);
	none.encryption_key_file = NULL;
	ok(open_fails(&none, msg), "missing key: sealed snapshot, no key file: fails");
	has_str(msg, "snapshot 1", "missing key: names the snapshot");
	has_str(msg, id, "missing key: and the key id");
	has_str(msg, "no encryption key file is configured",
		"missing key: and that none is configured");
	ok(open_fails(&other, msg), "missing key: sealed snapshot, another key: fails");
	has_str(msg, "not in the key file", "missing key: not in the key file");
	has_str(msg, id, "missing key: naming the id");
out:
	remove_tmpdir(&t);
}

/* ---- values moved between keys ------------------------------------------- */

/* o's database with two sealed records, a (seq 1) and b (seq 2). */
static bool two_records(const struct rs_store_options *o)
{
	struct rs_store *s = open_store(o, NULL);

	if (!s)
		return false;
	set_str(s, "a", "SECRET-of-a", -1);
	set_str(s, "b", "SECRET-of-b", -1);
	close_store(s);
	return true;
}

/* Recompute snapshot id's checksum after its rows were edited, as
 * snapshot.c does (rows in idx order, then the header), so that only the
 * seal can tell the edit. */
static void recompute_snapshot_crc(const char *path, int64_t id)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	uint32_t crc = RS_CRC32C_INIT;
	char q[160];

	sqlite3_open(path, &h);
	sqlite3_prepare_v2(h, "SELECT idx, key, value, stored_ms, expires_ms FROM"
			   " cache_snapshot_row WHERE snapshot_id = ? ORDER BY idx",
			   -1, &st, NULL);
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		crc = rs_crc32c_u64(crc, (uint64_t)sqlite3_column_int64(st, 0));
		crc = rs_crc32c_lenbytes(crc, sqlite3_column_blob(st, 1),
					 (size_t)sqlite3_column_bytes(st, 1));
		crc = rs_crc32c_lenbytes(crc, sqlite3_column_blob(st, 2),
					 (size_t)sqlite3_column_bytes(st, 2));
		crc = rs_crc32c_u64(crc, (uint64_t)sqlite3_column_int64(st, 3));
		crc = rs_crc32c_u64(crc, (uint64_t)sqlite3_column_int64(st, 4));
	}
	sqlite3_finalize(st);
	sqlite3_prepare_v2(h, "SELECT id, time_ms, last_seq, entries, bytes, key_id"
			   " FROM cache_snapshot WHERE id = ?", -1, &st, NULL);
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < 5; i++)
			crc = rs_crc32c_u64(crc, (uint64_t)sqlite3_column_int64(st, i));
		const char *kid = (const char *)sqlite3_column_text(st, 5);
		if (kid && *kid)
			crc = rs_crc32c_lenbytes(crc, kid, strlen(kid));
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	snprintf(q, sizeof(q), "UPDATE cache_snapshot SET checksum = %lld WHERE id = %lld",
		 (long long)rs_crc32c_final(crc), (long long)id);
	sql(path, q);
}

/* Keys a and b logged, snapshot 1 taken, then its two rows' (sealed)
 * values swapped with SQL. */
static bool swapped_snapshot(const struct rs_store_options *o, const char *what)
{
	struct rs_store *s;
	char name[128];

	if (!two_records(o))
		return false;
	s = open_store(o, NULL);
	snprintf(name, sizeof(name), "%s: snapshot 1 taken", what);
	ok(s && take_snapshot(s) == 1, name);
	close_store(s);
	return sql(o->db_path, "CREATE TEMP TABLE sw AS SELECT key, value"
		   " FROM cache_snapshot_row WHERE snapshot_id = 1;"
		   " UPDATE cache_snapshot_row SET value = (SELECT value FROM sw"
		   " WHERE sw.key != cache_snapshot_row.key)"
		   " WHERE snapshot_id = 1") == 0;
}

static void test_tampered(void)
{
	struct rs_store_recovery rec;
	struct rs_verify_report v;
	struct rs_store_options o;
	struct rs_err err = RS_ERR_INIT;
	struct copies *cs = calloc(1, sizeof(*cs));
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX];
	char id[RS_SEAL_ID_CHARS + 1];
	const unsigned seeds[] = { K1 };
	struct rs_store *s;
	struct tmpdir t;

	if (!cs || !dir_for(&t, "seal-tamper", path)) {
		free(cs);
		return;
	}
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600))
		goto out;
	ring_id(kf, id);

	/* 1. Values swapped with SQL: the checksums no longer match. */
	join(path, &t, "swap.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	if (!two_records(&o))
		goto out;
	sql(path, "CREATE TEMP TABLE sw AS SELECT seq, value FROM cache_log;"
		  " UPDATE cache_log SET value = (SELECT value FROM sw"
		  " WHERE sw.seq = 3 - cache_log.seq) WHERE seq IN (1, 2)");
	s = open_store(&o, &rec);
	ok(s && rec.log.stopped && rec.log.bad_seq == 1 &&
	   strstr(rec.log.reason, "checksum mismatch"),
	   "swap: recovery stops at seq 1, checksum mismatch");
	ok(absent(s, "a") && absent(s, "b"),
	   "swap: neither key serves the other's value");
	close_store(s);
	memset(&v, 0, sizeof(v));
	ok(rs_cache_verify(path, NULL, false, &v, &err) == 0 && v.faults == 2 &&
	   v.nlist == 2 && strstr(v.list[0].reason, "checksum mismatch") &&
	   strstr(v.list[1].reason, "checksum mismatch"),
	   "swap: verify (no key) reports both records: checksum mismatch");
	rs_verify_report_free(&v);

	/* 2. Swapped with the checksums recomputed: only the seal, whose
	 * associated data is the cache key, can tell. */
	join(path, &t, "swap-crc.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	if (!two_records(&o) || !read_log(path, cs) || cs->n != 2)
		goto out;
	swap_values(&cs->c[0], &cs->c[1]);
	rewrite(path, &cs->c[0]);
	rewrite(path, &cs->c[1]);
	memset(&v, 0, sizeof(v));
	ok(rs_cache_verify(path, NULL, false, &v, &err) == 0 && v.faults == 0,
	   "swap with checksums: the log's checksums pass");
	rs_verify_report_free(&v);
	s = open_store(&o, &rec);
	ok(s && rec.log.stopped && rec.log.bad_seq == 1 &&
	   strcmp(rec.log.reason, "sealed value does not authenticate") == 0,
	   "swap with checksums: the store opens, recovery stops at seq 1");
	ok(s && !has_value(s, "a", "SECRET-of-b") &&
	   !has_value(s, "b", "SECRET-of-a"),
	   "swap with checksums: no key serves the other's value");
	close_store(s);
	{
		struct rs_keyring *ring = NULL;

		ok(rs_keyring_load(&ring, kf, &err) == 0,
		   "swap with checksums: the key file loads");
		memset(&v, 0, sizeof(v));
		ok(rs_cache_verify(path, ring, false, &v, &err) == 0 &&
		   v.faults == 2 && v.nlist == 2 &&
		   strcmp(v.list[0].reason,
			  "sealed value does not authenticate") == 0,
		   "swap with checksums: verify with the key finds both");
		rs_verify_report_free(&v);
		ok(rs_cache_verify(path, ring, true, &v, &err) == 0 &&
		   v.repaired == 2,
		   "swap with checksums: repair quarantines both");
		rs_verify_report_free(&v);
		ok(rs_cache_verify(path, ring, false, &v, &err) == 0 &&
		   v.faults == 0,
		   "swap with checksums: then verify is clean");
		rs_verify_report_free(&v);
		rs_keyring_free(ring);
	}
	s = open_store(&o, &rec);
	ok(s && !rec.log.stopped && absent(s, "a") && absent(s, "b"),
	   "swap with checksums: after repair the store opens cleanly");
	close_store(s);

	/* 3. One flipped bit in the ciphertext, checksum recomputed. */
	join(path, &t, "flip.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	if (!two_records(&o) || !read_log(path, cs) || cs->n != 2)
		goto out;
	cs->c[1].val[RS_SEAL_NONCE_BYTES] ^= 0x01;
	rewrite(path, &cs->c[1]);
	s = open_store(&o, &rec);
	ok(s && rec.log.stopped && rec.log.bad_seq == 2 && absent(s, "b"),
	   "flipped bit: recovery stops at it, b is not served");
	close_store(s);

	/* 4. A sealed snapshot's rows swapped: its checksum fails, and
	 * recovery falls back to the log, which has both. */
	join(path, &t, "snap.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	if (!swapped_snapshot(&o, "snapshot swap"))
		goto out;
	s = open_store(&o, &rec);
	ok(s && rec.snapshot.skipped == 1 && rec.snapshot.loaded_id == 0,
	   "snapshot swap: the snapshot is passed over");
	ok(has_value(s, "a", "SECRET-of-a") && has_value(s, "b", "SECRET-of-b"),
	   "snapshot swap: the log gives each key its own value");
	close_store(s);

	/* 5. The same, with the snapshot's checksum recomputed: only the
	 * seal can tell.  Verify with the key names the row; recovery skips
	 * the snapshot as it would a corrupt one. */
	join(path, &t, "snap-crc.db");
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	if (!swapped_snapshot(&o, "snapshot swap with checksum"))
		goto out;
	recompute_snapshot_crc(path, 1);
	{
		struct rs_snapshot_check check;
		struct rs_keyring *ring = NULL;

		ok(rs_snapshot_verify(path, NULL, 1, &check, &err) == 0 && check.ok,
		   "snapshot swap with checksum: without the key the checksum passes");
		ok(rs_keyring_load(&ring, kf, &err) == 0 &&
		   rs_snapshot_verify(path, ring, 1, &check, &err) == 0 && !check.ok &&
		   strstr(check.reason, "does not authenticate with key"),
		   "snapshot swap with checksum: with the key verify names the row");
		memset(&v, 0, sizeof(v));
		ok(rs_cache_verify(path, ring, false, &v, &err) == 0 && v.faults >= 1,
		   "snapshot swap with checksum: cache verify with the key reports it");
		rs_verify_report_free(&v);
		rs_keyring_free(ring);
	}
	s = open_store(&o, &rec);
	ok(s && rec.snapshot.skipped == 1 && rec.snapshot.loaded_id == 0 &&
	   strstr(rec.snapshot.skipped_reason, "does not authenticate"),
	   "snapshot swap with checksum: recovery passes the snapshot over");
	ok(has_value(s, "a", "SECRET-of-a") && has_value(s, "b", "SECRET-of-b"),
	   "snapshot swap with checksum: the log gives each key its own value");
	close_store(s);
out:
	free(cs);
	remove_tmpdir(&t);
}

/* ---- a plaintext database, then a key ------------------------------------ */

static void test_plaintext_then_key(void)
{
	struct rs_store_recovery rec;
	struct rs_store_options plain, keyed;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], msg[MSG_MAX], got[64],
		q[128], wal[TEST_PATH_MAX + 8];
	char id[RS_SEAL_ID_CHARS + 1];
	const unsigned seeds[] = { K1 };
	struct rs_store *s;
	struct tmpdir t;
	int64_t s1, s2;

	if (!dir_for(&t, "seal-plain", path))
		return;
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600))
		goto out;
	ring_id(kf, id);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	plain = opts(path, RS_WAL_SYNC_ALWAYS, "one", NULL);
	keyed = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	s = open_store(&plain, NULL);
	if (!s)
		goto out;
	set_str(s, "p1", "plain p1", -1);
	s1 = take_snapshot(s);
	set_str(s, "p2", "plain p2", -1);
	close_store(s);
	is_str(snap_key_id(path, s1, got, sizeof(got)), "(null)",
	       "plaintext: without a key, the snapshot has no key_id");
	is_int(log_value_len(path, "p1"), strlen("plain p1"),
	       "plaintext: and the log holds the value as is");
	/* The checks that find no plaintext elsewhere do find it here. */
	ok(rows_holding(path, "SELECT value FROM cache_log", "plain p") == 2 &&
	   (file_holds(path, "plain p1") || file_holds(wal, "plain p1")),
	   "plaintext: (control) the plaintext checks find it in this one");

	s = open_store(&keyed, &rec);
	ok(s && rec.snapshot.loaded_id == s1 && rec.replayed == 1 &&
	   has_value(s, "p1", "plain p1") && has_value(s, "p2", "plain p2"),
	   "plaintext: opened with a key file, old snapshot and records read");
	if (!s)
		goto out;
	set_str(s, "s1", "SECRET s1", -1);
	close_store(s);
	ok(sql_int(path, "SELECT count(*) FROM cache_log WHERE key_id IS NULL"
			 " AND CAST(key AS TEXT) IN ('p1', 'p2')") == 2,
	   "plaintext: the old records keep a NULL key_id");
	is_str(log_key_id(path, "s1", got, sizeof(got)), id,
	       "plaintext: the new record is sealed with the key");
	is_int(log_value_len(path, "s1"), strlen("SECRET s1") + RS_SEAL_OVERHEAD,
	       "plaintext: and is as long as a sealed value");
	is_int(rows_holding(path, "SELECT value FROM cache_log", MARKER), 0,
	       "plaintext: its plaintext is not in the log");

	s = open_store(&keyed, &rec);
	ok(s && has_value(s, "p1", "plain p1") && has_value(s, "p2", "plain p2") &&
	   has_value(s, "s1", "SECRET s1"),
	   "plaintext: a mixed log recovers with the key");
	s2 = take_snapshot(s);
	close_store(s);
	is_str(snap_key_id(path, s2, got, sizeof(got)), id,
	       "plaintext: the next snapshot is sealed");
	snprintf(q, sizeof(q), "SELECT value FROM cache_snapshot_row"
			       " WHERE snapshot_id = %" PRId64, s2);
	is_int(rows_holding(path, q, "plain p"), 0,
	       "plaintext: even the old values are sealed in it");
	ok(open_fails(&plain, msg),
	   "plaintext: without the key file the database no longer opens");
	has_str(msg, id, "plaintext: naming the key id");
out:
	remove_tmpdir(&t);
}

/* ---- the key file itself --------------------------------------------------- */

static void test_key_file_mode(void)
{
	struct rs_store_options o;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], missing[TEST_PATH_MAX],
		msg[MSG_MAX];
	const unsigned seeds[] = { K1 };
	struct tmpdir t;

	if (!dir_for(&t, "seal-mode", path))
		return;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0644))
		goto out;
	o = opts(path, RS_WAL_SYNC_ALWAYS, "one", kf);
	ok(open_fails(&o, msg), "mode: a key file with mode 0644 is refused");
	has_str(msg, "is readable by others (mode 0644); chmod 600 it",
		"mode: with the seal module's message");
	has_str(msg, kf, "mode: naming the file");
	ok(access(path, F_OK) != 0, "mode: the database is not created");

	chmod(kf, 0640);
	ok(open_fails(&o, msg), "mode: 0640 is refused");
	has_str(msg, "is readable by group (mode 0640)", "mode: group");

	join(missing, &t, "nope.key");
	o.encryption_key_file = missing;
	ok(open_fails(&o, msg), "mode: a missing key file is refused");
	has_str(msg, "cannot open", "mode: cannot open it");
	has_str(msg, missing, "mode: naming it");
	ok(access(path, F_OK) != 0, "mode: still no database");
out:
	remove_tmpdir(&t);
}

/* ---- following ------------------------------------------------------------ */

static void test_follow(void)
{
	struct rs_store_options oa, of, on, ow;
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], kf[TEST_PATH_MAX], kf3[TEST_PATH_MAX],
		first[MSG_MAX];
	char id[RS_SEAL_ID_CHARS + 1];
	const unsigned seeds[] = { K1 }, wrong[] = { K3 };
	struct rs_store *a = NULL, *f = NULL, *n = NULL, *w = NULL;
	struct tmpdir t;
	uint64_t applied = 0;
	int rc;

	if (!dir_for(&t, "seal-follow", path))
		return;
	clk = T0_MS;
	if (!write_keyfile(kf, &t, "k.key", seeds, 1, 0600) ||
	    !write_keyfile(kf3, &t, "k3.key", wrong, 1, 0600))
		goto out;
	ring_id(kf, id);
	oa = opts(path, RS_WAL_SYNC_ALWAYS, "a", kf);
	of = opts(path, RS_WAL_SYNC_BATCH, "f", kf);
	on = opts(path, RS_WAL_SYNC_BATCH, "n", NULL);
	ow = opts(path, RS_WAL_SYNC_BATCH, "w", kf3);
	/* All open before anything is sealed: n and w could not open after. */
	a = open_store(&oa, NULL);
	f = open_store(&of, NULL);
	n = open_store(&on, NULL);
	w = open_store(&ow, NULL);
	if (!a || !f || !n || !w) {
		ok(0, "follow: open four stores");
		goto out;
	}
	del_str(a, "gone");                 /* no value, nothing sealed */
	set_str(a, "x", "SECRET x", -1);
	set_str(a, "y", "SECRET y", -1);

	rc = rs_store_follow(f, &applied, &err);
	if (rc)
		printf("#   follow: %s\n", err.msg);
	ok(rc == 0 && applied == 3, "follow: the same key file applies all three");
	ok(has_value(f, "x", "SECRET x") && has_value(f, "y", "SECRET y"),
	   "follow: in plaintext");

	rc = rs_store_follow(n, &applied, &err);
	ok(rc == -1, "follow: without a key file it fails");
	has_str(err.msg, id, "follow: naming the key id");
	has_str(err.msg, "no encryption key file is configured",
		"follow: and that none is configured");
	has_str(err.msg, "seq 2", "follow: and the first sealed record");
	is_int(applied, 1, "follow: the delete before it is applied");
	ok(absent(n, "x"), "follow: the sealed value is not");
	snprintf(first, sizeof(first), "%s", err.msg);
	rc = rs_store_follow(n, &applied, &err);
	ok(rc == -1 && applied == 0, "follow: the next call fails again, nothing applied");
	is_str(err.msg, first, "follow: at the same record: it does not advance");
	set_str(a, "z", "SECRET z", -1);
	rc = rs_store_follow(n, &applied, &err);
	ok(rc == -1 && applied == 0 && absent(n, "z") && absent(n, "y"),
	   "follow: nor skip to later records");

	rc = rs_store_follow(w, &applied, &err);
	ok(rc == -1, "follow: with another key it fails");
	has_str(err.msg, "not in the key file", "follow: not in the key file");
	has_str(err.msg, id, "follow: naming the key id");

	rc = rs_store_follow(f, &applied, &err);
	ok(rc == 0 && applied == 1 && has_value(f, "z", "SECRET z"),
	   "follow: the keyed follower goes on");
	ok(rs_store_snapshot(n, NULL, &err) == -1 &&
	   strstr(err.msg, "no snapshot taken"),
	   "follow: the keyless store cannot take a snapshot past it");
	ok(db_files_lack(path, MARKER), "follow: no plaintext on disk");
out:
	close_store(w);
	close_store(n);
	close_store(f);
	close_store(a);
	remove_tmpdir(&t);
}

int main(void)
{
	test_log_sealed(RS_WAL_SYNC_ALWAYS, "always", "seal-log-always");
	test_log_sealed(RS_WAL_SYNC_BATCH, "batch", "seal-log-batch");
	test_snapshot_sealed();
	test_rotation();
	test_missing_key();
	test_tampered();
	test_plaintext_then_key();
	test_key_file_mode();
	test_follow();
	return tap_done();
}
