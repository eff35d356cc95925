/*
 * audit: see audit.h.  The writer is a thread over a bounded FIFO of
 * owned records; a batch is one BEGIN IMMEDIATE transaction that reads the
 * head, chains and inserts.  Verification walks the table in seq order
 * with one statement and looks further only at the first break, to say
 * what kind it is.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "audit.h"
#include "util.h"

#define BATCH_MAX 256
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

static const unsigned char zero_hash[RS_AUDIT_HASH_BYTES];

static const char *const outcome_names[] = { "success", "denied", "failure" };

const char *rs_audit_outcome_name(enum rs_audit_outcome o)
{
	return (unsigned)o < RS_ARRAY_SIZE(outcome_names) ? outcome_names[o] : "failure";
}

int rs_audit_outcome_parse(const char *s, enum rs_audit_outcome *out)
{
	for (size_t i = 0; s && i < RS_ARRAY_SIZE(outcome_names); i++)
		if (strcmp(s, outcome_names[i]) == 0) {
			*out = (enum rs_audit_outcome)i;
			return 0;
		}
	return -1;
}

const char *rs_audit_break_name(enum rs_audit_break b)
{
	static const char *const names[] = {
		"intact", "modified", "deleted", "inserted", "reordered", "truncated", "unknown key",
	};
	return (unsigned)b < RS_ARRAY_SIZE(names) ? names[b] : "modified";
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void rs_audit_record_free(struct rs_audit_record *r)
{
	if (!r)
		return;
	free(r->actor);
	free(r->source);
	free(r->action);
	free(r->target);
	free(r->request_id);
	free(r->details);
	r->actor = r->source = r->action = r->target = r->request_id = r->details = NULL;
}

/* ---- hashing ---------------------------------------------------------------- */

static void put_field(EVP_MD_CTX *c, const void *p, size_t n)
{
	unsigned char len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	EVP_DigestUpdate(c, len, sizeof(len));
	if (n)
		EVP_DigestUpdate(c, p, n);
}

static void put_str(EVP_MD_CTX *c, const char *s)
{
	put_field(c, s ? s : "", s ? strlen(s) : 0);
}

static void put_int(EVP_MD_CTX *c, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);

	put_field(c, buf, (size_t)n);
}

/* SHA-256 of prev_hash || the canonical encoding: the message the chain
 * hashes.  With a key, the HMAC is taken over this digest, so a record is
 * read once whatever the mode. */
static int digest(const struct rs_audit_record *r, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);

	if (ok) {
		EVP_DigestUpdate(c, r->prev_hash, RS_AUDIT_HASH_BYTES);
		put_int(c, r->seq);
		put_int(c, r->time_us);
		put_str(c, r->actor);
		put_str(c, r->source);
		put_str(c, r->action);
		put_str(c, r->target);
		put_str(c, rs_audit_outcome_name(r->outcome));
		put_str(c, r->request_id);
		put_str(c, r->details);
		put_str(c, r->key_id);
		ok = EVP_DigestFinal_ex(c, out, NULL);
	}
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

int rs_audit_hash(const struct rs_keyring *keys, const struct rs_audit_record *r,
		  unsigned char out[RS_AUDIT_HASH_BYTES], struct rs_err *err)
{
	unsigned char d[32];

	if (digest(r, d) < 0)
		return rs_err_set(err, "SHA-256 failed");
	if (!r->key_id[0]) {
		memcpy(out, d, sizeof(d));
		return 0;
	}
	if (!keys)
		return rs_err_set(err, "record %lld was chained with key %s and no key file is given",
				  (long long)r->seq, r->key_id);
	return rs_keyring_hmac(keys, r->key_id, d, sizeof(d), out, NULL, err);
}

/* ---- JSON --------------------------------------------------------------------- */

static void fmt_time(int64_t us, char *buf, size_t n)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%06dZ", (int)(us % 1000000));
}

json_t *rs_audit_record_json(const struct rs_audit_record *r)
{
	char when[40], prev[65], hash[65];
	json_t *details = json_loads(r->details ? r->details : "{}", 0, NULL);

	fmt_time(r->time_us, when, sizeof(when));
	rs_hex_encode(r->prev_hash, RS_AUDIT_HASH_BYTES, prev);
	rs_hex_encode(r->hash, RS_AUDIT_HASH_BYTES, hash);
	return json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s}",
			 "seq", (json_int_t)r->seq, "time", when, "time_us", (json_int_t)r->time_us,
			 "actor", r->actor ? r->actor : "", "source", r->source ? r->source : "",
			 "action", r->action ? r->action : "", "target", r->target ? r->target : "",
			 "outcome", rs_audit_outcome_name(r->outcome),
			 "request_id", r->request_id ? r->request_id : "",
			 "details", details ? details : json_object(), "key_id", r->key_id,
			 "prev_hash", prev, "hash", hash);
}

static int hex32(const char *s, unsigned char out[32])
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		int hi = rs_hex_value(s[2 * i]), lo = rs_hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static char *dup_str(const json_t *j, const char *name, bool *bad)
{
	const json_t *v = json_object_get(j, name);

	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return strdup(json_string_value(v));
}

int rs_audit_record_from_json(const json_t *j, struct rs_audit_record *r,
			      struct rs_err *err)
{
	bool bad = false;
	const json_t *seq = json_object_get(j, "seq"), *t = json_object_get(j, "time_us"),
		*d = json_object_get(j, "details"), *k = json_object_get(j, "key_id");

	memset(r, 0, sizeof(*r));
	if (!json_is_integer(seq) || !json_is_integer(t))
		return rs_err_set(err, "seq and time_us must be integers");
	r->seq = json_integer_value(seq);
	r->time_us = json_integer_value(t);
	r->actor = dup_str(j, "actor", &bad);
	r->source = dup_str(j, "source", &bad);
	r->action = dup_str(j, "action", &bad);
	r->target = dup_str(j, "target", &bad);
	r->request_id = dup_str(j, "request_id", &bad);
	if (bad) {
		rs_audit_record_free(r);
		return rs_err_set(err, "record %lld: a text field is missing or not a string",
				  (long long)r->seq);
	}
	if (!json_is_object(d) || !json_is_string(k) ||
	    strlen(json_string_value(k)) > RS_SEAL_ID_CHARS ||
	    rs_audit_outcome_parse(json_string_value(json_object_get(j, "outcome")), &r->outcome) < 0 ||
	    hex32(json_string_value(json_object_get(j, "prev_hash")), r->prev_hash) < 0 ||
	    hex32(json_string_value(json_object_get(j, "hash")), r->hash) < 0) {
		rs_audit_record_free(r);
		return rs_err_set(err, "record %lld: details, key_id, outcome or a hash is malformed",
				  (long long)r->seq);
	}
	strcpy(r->key_id, json_string_value(k));
	r->details = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
	if (!r->details) {
		rs_audit_record_free(r);
		return rs_err_set(err, "out of memory");
	}
	return 0;
}

/* ---- rows --------------------------------------------------------------------- */

#define COLUMNS "seq, time_us, actor, source, action, target, outcome, request_id, details, " \
		"key_id, prev_hash, hash"

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

static void blob32(sqlite3_stmt *st, int i, unsigned char out[32])
{
	const void *b = sqlite3_column_blob(st, i);

	if (b && sqlite3_column_bytes(st, i) == 32)
		memcpy(out, b, 32);
	else
		memset(out, 0, 32);
}

/* The row of st into r (freed first). */
static int row(sqlite3_stmt *st, struct rs_audit_record *r)
{
	const unsigned char *k = sqlite3_column_text(st, 9);

	rs_audit_record_free(r);
	r->seq = sqlite3_column_int64(st, 0);
	r->time_us = sqlite3_column_int64(st, 1);
	r->actor = col_dup(st, 2);
	r->source = col_dup(st, 3);
	r->action = col_dup(st, 4);
	r->target = col_dup(st, 5);
	if (rs_audit_outcome_parse((const char *)sqlite3_column_text(st, 6), &r->outcome) < 0)
		r->outcome = RS_AUDIT_FAILURE;
	r->request_id = col_dup(st, 7);
	r->details = col_dup(st, 8);
	rs_copy_text(r->key_id, sizeof(r->key_id), k ? (const char *)k : "");
	blob32(st, 10, r->prev_hash);
	blob32(st, 11, r->hash);
	return r->actor && r->source && r->action && r->target && r->request_id && r->details
	       ? 0 : -1;
}

static int db_fail(struct rs_db *db, struct rs_err *err, const char *what)
{
	return rs_err_set(err, "database '%s': %s: %s", db->path, what,
			  sqlite3_errmsg(db->handle));
}

int rs_audit_head(struct rs_db *db, int64_t *seq, unsigned char hash[RS_AUDIT_HASH_BYTES],
		  struct rs_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*seq = 0;
	memset(hash, 0, RS_AUDIT_HASH_BYTES);
	if (sqlite3_prepare_v2(db->handle, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot read the audit head");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		blob32(st, 1, hash);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, err, "cannot read the audit head");
}

/* Fill r from ev (owned copies), key_id and time; seq and hashes later. */
static int from_event(const struct rs_audit_event *ev, struct rs_audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->time_us = ev->time_us ? ev->time_us : now_us();
	r->actor = strdup(ev->actor ? ev->actor : "");
	r->source = strdup(ev->source ? ev->source : "");
	r->action = strdup(ev->action ? ev->action : "");
	r->target = strdup(ev->target ? ev->target : "");
	r->request_id = strdup(ev->request_id ? ev->request_id : "");
	r->outcome = ev->outcome;
	r->details = ev->details && json_is_object(ev->details)
		     ? json_dumps(ev->details, JSON_SORT_KEYS | JSON_COMPACT) : strdup("{}");
	if (!r->actor || !r->source || !r->action || !r->target || !r->request_id || !r->details) {
		rs_audit_record_free(r);
		return -1;
	}
	return 0;
}

/* Chain and insert records inside the caller's transaction. */
static int insert_chained(struct rs_db *db, const struct rs_keyring *keys,
			  struct rs_audit_record **recs, size_t n, struct rs_err *err)
{
	int64_t seq;
	unsigned char prev[32];
	sqlite3_stmt *st;

	if (rs_audit_head(db, &seq, prev, err) < 0)
		return -1;
	if (sqlite3_prepare_v2(db->handle, "INSERT INTO audit (" COLUMNS ") VALUES "
			       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot write the audit log");
	for (size_t i = 0; i < n; i++) {
		struct rs_audit_record *r = recs[i];

		r->seq = ++seq;
		memcpy(r->prev_hash, prev, 32);
		/* the key id is part of what is hashed */
		rs_copy_text(r->key_id, sizeof(r->key_id), keys ? rs_keyring_current_id(keys) : "");
		if (rs_audit_hash(keys, r, r->hash, err) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
		memcpy(prev, r->hash, 32);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, r->seq);
		sqlite3_bind_int64(st, 2, r->time_us);
		sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->source, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->target, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, rs_audit_outcome_name(r->outcome), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, r->request_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, r->details, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 10, r->key_id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 11, r->prev_hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 12, r->hash, 32, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_fail(db, err, "cannot write the audit log");
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

static int write_batch(struct rs_db *db, const struct rs_keyring *keys,
		       struct rs_audit_record **recs, size_t n, struct rs_err *err)
{
	if (rs_db_exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (insert_chained(db, keys, recs, n, err) < 0 || rs_db_exec(db, "COMMIT", err) < 0) {
		struct rs_err ignored = RS_ERR_INIT;
		rs_db_exec(db, "ROLLBACK", &ignored);
		return -1;
	}
	return 0;
}

int rs_audit_append_db(struct rs_db *db, const struct rs_keyring *keys,
		       const struct rs_audit_event *ev, int64_t *seq, struct rs_err *err)
{
	struct rs_audit_record r, *p = &r;
	int rc;

	if (from_event(ev, &r) < 0)
		return rs_err_set(err, "out of memory");
	rc = write_batch(db, keys, &p, 1, err);
	if (rc == 0 && seq)
		*seq = r.seq;
	rs_audit_record_free(&r);
	return rc;
}

/* ---- the writer --------------------------------------------------------------- */

struct item {
	struct rs_audit_record rec;
	struct item *next;
	int state;                  /* 0 queued, 1 written, -1 failed */
	bool waited;                /* a sync appender owns it and frees it */
	sem_t done;                 /* waited: posted once state is set */
};

struct rs_audit {
	struct rs_audit_options o;
	struct rs_db *db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, room;
	struct item *head, *tail;
	unsigned queued;
	bool stop;
	struct rs_audit_stats st;
};

static void syslog_record(const struct rs_audit *a, const struct rs_audit_record *r)
{
	if (!a->o.syslog)
		return;
	syslog(a->o.syslog_facility | LOG_NOTICE,
	       "audit seq=%lld actor=%s action=%s outcome=%s target=%s request_id=%s",
	       (long long)r->seq, r->actor, r->action, rs_audit_outcome_name(r->outcome),
	       r->target, r->request_id[0] ? r->request_id : "-");
}

static void *writer_main(void *arg)
{
	struct rs_audit *a = arg;
	struct rs_audit_record *recs[BATCH_MAX];
	int64_t backoff = RETRY_MIN_MS;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->work, &a->lock);
		if (!a->head)
			break;
		size_t n = 0;
		for (struct item *it = a->head; it && n < BATCH_MAX; it = it->next) {
			recs[n] = &it->rec;
			n++;
		}
		pthread_mutex_unlock(&a->lock);
		struct rs_err err = RS_ERR_INIT;
		int rc = write_batch(a->db, a->o.keys, recs, n, &err);
		pthread_mutex_lock(&a->lock);
		if (rc < 0) {
			a->st.failed_commits++;
			a->st.degraded = true;
			rs_copy_text(a->st.last_error, sizeof(a->st.last_error), err.msg);
		}
		bool give_up = rc < 0 && a->stop;
		struct item *wake[BATCH_MAX];
		size_t nwake = 0;
		if (rc == 0 || a->o.sync_always || give_up) {
			/* written; or failed with a waiter told (sync), or at
			 * close: out of the queue either way */
			for (size_t i = 0; i < n; i++) {
				struct item *it = a->head;
				a->head = it->next;
				a->queued--;
				if (rc == 0) {
					a->st.written++;
					a->st.last_seq = it->rec.seq;
					syslog_record(a, &it->rec);
				}
				it->state = rc == 0 ? 1 : -1;
				if (it->waited) {
					wake[nwake++] = it;
				} else {
					rs_audit_record_free(&it->rec);
					free(it);
				}
			}
			if (!a->head)
				a->tail = NULL;
			if (rc == 0) {
				a->st.batches++;
				a->st.degraded = false;
				backoff = RETRY_MIN_MS;
			}
			pthread_cond_broadcast(&a->room);
		}
		if (nwake) {
			/* each appender alone, and outside the lock: a woken
			 * appender would otherwise block on it at once */
			pthread_mutex_unlock(&a->lock);
			for (size_t i = 0; i < nwake; i++)
				sem_post(&wake[i]->done);
			pthread_mutex_lock(&a->lock);
		}
		if (rc < 0 && !a->o.sync_always && !give_up) {
			/* kept in order for the retry: nothing is lost while
			 * the database recovers */
			struct timespec ts;
			rs_deadline_after(&ts, CLOCK_REALTIME, backoff);
			pthread_cond_timedwait(&a->work, &a->lock, &ts);
			backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int rs_audit_open(struct rs_audit **out, const struct rs_audit_options *o,
		  struct rs_err *err)
{
	struct rs_audit *a = calloc(1, sizeof(*a));
	struct rs_db_options dbo = { .sync = o->sync_always ? RS_DB_SYNC_FULL : RS_DB_SYNC_NORMAL };

	*out = NULL;
	if (!a)
		return rs_err_set(err, "out of memory");
	a->o = *o;
	if (!a->o.queue_size)
		a->o.queue_size = 4096;
	a->st.queue_size = a->o.queue_size;
	if (rs_db_open(&a->db, o->db_path, &dbo, err) < 0) {
		free(a);
		return -1;
	}
	unsigned char h[32];
	if (rs_audit_head(a->db, &a->st.last_seq, h, err) < 0) {
		rs_db_close(a->db);
		free(a);
		return -1;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->room, NULL);
	if (a->o.syslog)
		openlog("resync-audit", LOG_PID | LOG_NDELAY, a->o.syslog_facility);
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		rs_db_close(a->db);
		free(a);
		return rs_err_set(err, "cannot start the audit writer thread");
	}
	*out = a;
	return 0;
}

int rs_audit_append(struct rs_audit *a, const struct rs_audit_event *ev,
		    int64_t *seq, struct rs_err *err)
{
	struct item *it = calloc(1, sizeof(*it));
	int rc = 0;

	if (seq)
		*seq = 0;
	if (!it || from_event(ev, &it->rec) < 0) {
		free(it);
		return rs_err_set(err, "out of memory");
	}
	it->waited = a->o.sync_always;
	if (it->waited && sem_init(&it->done, 0, 0) < 0) {
		rs_audit_record_free(&it->rec);
		free(it);
		return rs_err_errno(err, errno, "cannot queue the audit record");
	}
	pthread_mutex_lock(&a->lock);
	a->st.appended++;
	while (a->queued >= a->o.queue_size && !a->o.fail_when_full)
		pthread_cond_wait(&a->room, &a->lock);
	if (a->queued >= a->o.queue_size) {
		a->st.refused++;
		pthread_mutex_unlock(&a->lock);
		if (it->waited)
			sem_destroy(&it->done);
		rs_audit_record_free(&it->rec);
		free(it);
		rs_err_set(err, "the audit queue is full (%u records)", a->o.queue_size);
		err->code = EAGAIN;
		return -1;
	}
	if (a->tail)
		a->tail->next = it;
	else
		a->head = it;
	a->tail = it;
	a->queued++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
	if (!it->waited)
		return 0;
	/* the writer posts once it set state and let go of the item */
	while (sem_wait(&it->done) < 0 && errno == EINTR)
		;
	if (it->state < 0) {
		pthread_mutex_lock(&a->lock);
		rs_err_set(err, "the audit record was not committed: %s", a->st.last_error);
		pthread_mutex_unlock(&a->lock);
		err->code = EIO;
		rc = -1;
	} else if (seq) {
		*seq = it->rec.seq;
	}
	sem_destroy(&it->done);
	rs_audit_record_free(&it->rec);
	free(it);
	return rc;
}

void rs_audit_stats(struct rs_audit *a, struct rs_audit_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->queued = a->queued;
	pthread_mutex_unlock(&a->lock);
}

void rs_audit_close(struct rs_audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->room);
	rs_db_close(a->db);
	free(a);
}

/* ---- reading ------------------------------------------------------------------ */

int rs_audit_query(struct rs_db *db, const struct rs_audit_filter *f,
		   rs_audit_cb cb, void *arg, struct rs_err *err)
{
	char sql[1024];
	sqlite3_stmt *st;
	struct rs_audit_record r = { 0 };
	int rc = 0, step;
	size_t prefix = f->action ? strlen(f->action) : 0;
	bool action_prefix = prefix >= 2 && strcmp(f->action + prefix - 2, ".*") == 0;

	/* every clause is there; an absent filter binds a value that makes it
	 * true, so the statement's text never depends on input */
	snprintf(sql, sizeof(sql),
		 "SELECT * FROM (SELECT " COLUMNS " FROM audit WHERE seq >= ?1"
		 " AND (?2 = 0 OR time_us >= ?2) AND (?3 = 0 OR time_us < ?3)"
		 " AND (?4 IS NULL OR actor = ?4)"
		 " AND (?5 IS NULL OR %s)"
		 " AND (?6 IS NULL OR outcome = ?6)"
		 " AND (?7 IS NULL OR instr(actor, ?7) OR instr(source, ?7) OR instr(action, ?7)"
		 "      OR instr(target, ?7) OR instr(request_id, ?7) OR instr(details, ?7))"
		 " ORDER BY seq %s LIMIT ?8) ORDER BY seq %s",
		 action_prefix ? "substr(action, 1, length(?5)) = ?5" : "action = ?5",
		 f->newest_first || f->limit ? "DESC" : "ASC", f->newest_first ? "DESC" : "ASC");
	if (sqlite3_prepare_v2(db->handle, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot read the audit log");
	sqlite3_bind_int64(st, 1, f->from_seq);
	sqlite3_bind_int64(st, 2, f->since_us);
	sqlite3_bind_int64(st, 3, f->until_us);
	if (f->actor)
		sqlite3_bind_text(st, 4, f->actor, -1, SQLITE_STATIC);
	if (f->action)
		sqlite3_bind_text(st, 5, f->action, action_prefix ? (int)prefix - 1 : -1,
				  SQLITE_STATIC);
	if (f->outcome >= 0)
		sqlite3_bind_text(st, 6, rs_audit_outcome_name((enum rs_audit_outcome)f->outcome),
				  -1, SQLITE_STATIC);
	if (f->text)
		sqlite3_bind_text(st, 7, f->text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, f->limit ? (int64_t)f->limit : -1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (row(st, &r) < 0) {
			rc = rs_err_set(err, "out of memory");
			break;
		}
		if ((rc = cb(&r, arg)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail(db, err, "cannot read the audit log");
	rs_audit_record_free(&r);
	sqlite3_finalize(st);
	return rc;
}

/* One "by_" array: count(*) grouped by a column of the period's records. */
static json_t *summary_group(struct rs_db *db, const char *column, int64_t since_us,
			     int64_t until_us, unsigned top, struct rs_err *err)
{
	char sql[256];
	sqlite3_stmt *st;
	json_t *arr = json_array();
	int step;

	/* column is one of three literals below, never input */
	snprintf(sql, sizeof(sql),
		 "SELECT %s, count(*) AS n FROM audit WHERE (?1 = 0 OR time_us >= ?1)"
		 " AND (?2 = 0 OR time_us < ?2) GROUP BY %s ORDER BY n DESC, %s LIMIT ?3",
		 column, column, column);
	if (!arr || sqlite3_prepare_v2(db->handle, sql, -1, &st, NULL) != SQLITE_OK) {
		json_decref(arr);
		db_fail(db, err, "cannot read the audit log");
		return NULL;
	}
	sqlite3_bind_int64(st, 1, since_us);
	sqlite3_bind_int64(st, 2, until_us);
	sqlite3_bind_int64(st, 3, top ? (int64_t)top : -1);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 0);
		if (json_array_append_new(arr, json_pack("{s:s,s:I}", "name",
							 name ? (const char *)name : "",
							 "count", (json_int_t)sqlite3_column_int64(st, 1))) < 0) {
			step = SQLITE_NOMEM;
			break;
		}
	}
	if (step != SQLITE_DONE) {
		json_decref(arr);
		arr = NULL;
		if (step == SQLITE_NOMEM)
			rs_err_set(err, "out of memory");
		else
			db_fail(db, err, "cannot read the audit log");
	}
	sqlite3_finalize(st);
	return arr;
}

json_t *rs_audit_summary(struct rs_db *db, int64_t since_us, int64_t until_us,
			 unsigned top, struct rs_err *err)
{
	static const char *const columns[] = { "action", "outcome", "actor" };
	static const char *const names[] = { "by_action", "by_outcome", "by_actor" };
	sqlite3_stmt *st;
	json_t *out;
	bool ok;

	/* one read transaction, so the total and the groups agree */
	if (rs_db_exec(db, "BEGIN", err) < 0)
		return NULL;
	if (sqlite3_prepare_v2(db->handle,
			       "SELECT count(*), min(seq), max(seq) FROM audit"
			       " WHERE (?1 = 0 OR time_us >= ?1) AND (?2 = 0 OR time_us < ?2)",
			       -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, err, "cannot read the audit log");
		rs_db_exec(db, "ROLLBACK", NULL);
		return NULL;
	}
	sqlite3_bind_int64(st, 1, since_us);
	sqlite3_bind_int64(st, 2, until_us);
	ok = sqlite3_step(st) == SQLITE_ROW;
	out = ok ? json_pack("{s:I,s:I,s:I}", "total", (json_int_t)sqlite3_column_int64(st, 0),
			     "first_seq", (json_int_t)sqlite3_column_int64(st, 1),
			     "last_seq", (json_int_t)sqlite3_column_int64(st, 2)) : NULL;
	if (!ok)
		db_fail(db, err, "cannot read the audit log");
	else if (!out)
		rs_err_set(err, "out of memory");
	sqlite3_finalize(st);
	for (size_t i = 0; out && i < 3; i++) {
		json_t *g = summary_group(db, columns[i], since_us, until_us, top, err);
		if (!g || json_object_set_new(out, names[i], g) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	rs_db_exec(db, "ROLLBACK", NULL);
	return out;
}

int rs_audit_get(struct rs_db *db, int64_t seq, struct rs_audit_record *r,
		 bool *found, struct rs_err *err)
{
	sqlite3_stmt *st;
	int step, rc = 0;

	memset(r, 0, sizeof(*r));
	*found = false;
	if (sqlite3_prepare_v2(db->handle, "SELECT " COLUMNS " FROM audit WHERE seq = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot read the audit log");
	sqlite3_bind_int64(st, 1, seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*found = true;
		if (row(st, r) < 0)
			rc = rs_err_set(err, "out of memory");
	} else if (step != SQLITE_DONE) {
		rc = db_fail(db, err, "cannot read the audit log");
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- verification ------------------------------------------------------------- */

static int broken(struct rs_audit_verify_result *res, enum rs_audit_break why, int64_t seq,
		  const char *fmt, ...) RS_PRINTF(4, 5);

static int broken(struct rs_audit_verify_result *res, enum rs_audit_break why, int64_t seq,
		  const char *fmt, ...)
{
	va_list ap;

	res->why = why;
	res->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return 1;
}

/* The seq of the record whose stored hash is h, or 0. */
static int64_t seq_of_hash(struct rs_db *db, const unsigned char h[32])
{
	sqlite3_stmt *st;
	int64_t seq = 0;

	if (sqlite3_prepare_v2(db->handle, "SELECT seq FROM audit WHERE hash = ? LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return seq;
}

/* Does the record after seq link to h?  (Then the record at seq does not
 * belong: it was put in.) */
static bool next_links_to(struct rs_db *db, int64_t seq, const unsigned char h[32])
{
	sqlite3_stmt *st;
	bool yes = false;

	if (sqlite3_prepare_v2(db->handle, "SELECT prev_hash FROM audit WHERE seq > ? ORDER BY seq "
			       "LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 0);
		yes = b && sqlite3_column_bytes(st, 0) == 32 && memcmp(b, h, 32) == 0;
	}
	sqlite3_finalize(st);
	return yes;
}

/* A first record after a prune: its prev_hash must be the one the newest
 * checkpoint covering it names. */
static bool checkpoint_covers(struct rs_db *db, int64_t first_seq, const unsigned char prev[32])
{
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_prepare_v2(db->handle, "SELECT details FROM audit WHERE action = 'audit.prune' "
			       "ORDER BY seq DESC", -1, &st, NULL) != SQLITE_OK)
		return false;
	while (!ok && sqlite3_step(st) == SQLITE_ROW) {
		json_t *d = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		unsigned char h[32];
		ok = d && json_integer_value(json_object_get(d, "pruned_through_seq")) == first_seq - 1 &&
		     hex32(json_string_value(json_object_get(d, "last_hash")), h) == 0 &&
		     memcmp(h, prev, 32) == 0;
		json_decref(d);
	}
	sqlite3_finalize(st);
	return ok;
}

/* One record against the chain so far.  1 with res filled on a break. */
static int check_one(struct rs_db *db, const struct rs_keyring *keys,
		     const struct rs_audit_record *r, const unsigned char expect_prev[32],
		     int64_t prev_seq, bool first, struct rs_audit_verify_result *res)
{
	unsigned char h[32];
	struct rs_err err = RS_ERR_INIT;

	if (r->key_id[0] && (!keys || !rs_keyring_has(keys, r->key_id)))
		return broken(res, RS_AUDIT_UNKNOWN_KEY, r->seq,
			      "record %lld was chained with key %s, which is not in the key file",
			      (long long)r->seq, r->key_id);
	if (!first && memcmp(r->prev_hash, expect_prev, 32) != 0) {
		int64_t at = db ? seq_of_hash(db, r->prev_hash) : 0;
		if (r->seq > prev_seq + 1)
			return broken(res, RS_AUDIT_DELETED, r->seq,
				      "records %lld to %lld are missing", (long long)prev_seq + 1,
				      (long long)r->seq - 1);
		if (at > r->seq)
			return broken(res, RS_AUDIT_REORDERED, r->seq,
				      "record %lld follows record %lld in the chain, not %lld",
				      (long long)r->seq, (long long)at, (long long)prev_seq);
		if (at && at < prev_seq)
			return broken(res, RS_AUDIT_INSERTED, prev_seq,
				      "record %lld does not belong: %lld follows %lld",
				      (long long)prev_seq, (long long)r->seq, (long long)at);
		return broken(res, RS_AUDIT_MODIFIED, r->seq,
			      "record %lld's prev_hash is not the hash of record %lld",
			      (long long)r->seq, (long long)prev_seq);
	}
	if (rs_audit_hash(keys, r, h, &err) < 0 || memcmp(h, r->hash, 32) != 0) {
		if (db && next_links_to(db, r->seq, expect_prev) && !first)
			return broken(res, RS_AUDIT_INSERTED, r->seq,
				      "record %lld does not belong: the next one follows %lld",
				      (long long)r->seq, (long long)prev_seq);
		return broken(res, RS_AUDIT_MODIFIED, r->seq,
			      "record %lld does not match its hash (a field was changed)",
			      (long long)r->seq);
	}
	return 0;
}

static void finish(struct rs_audit_verify_result *res, int64_t t0)
{
	res->took_us = rs_monotonic_us() - t0;
}

int rs_audit_verify(struct rs_db *db, const struct rs_keyring *keys,
		    int64_t from_seq, int64_t anchor_seq, const unsigned char *anchor_hash,
		    struct rs_audit_verify_result *res, struct rs_err *err)
{
	int64_t t0 = rs_monotonic_us();
	sqlite3_stmt *st;
	struct rs_audit_record r = { 0 };
	unsigned char prev[32];
	int64_t prev_seq = 0;
	bool first = true;
	int step;

	memset(res, 0, sizeof(*res));
	memcpy(prev, zero_hash, 32);
	if (sqlite3_prepare_v2(db->handle, "SELECT " COLUMNS " FROM audit WHERE seq >= ? ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "cannot read the audit log");
	sqlite3_bind_int64(st, 1, from_seq);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (row(st, &r) < 0) {
			sqlite3_finalize(st);
			rs_audit_record_free(&r);
			return rs_err_set(err, "out of memory");
		}
		if (first && from_seq == 0 && (r.seq != 1 || memcmp(r.prev_hash, zero_hash, 32))) {
			if (!checkpoint_covers(db, r.seq, r.prev_hash)) {
				broken(res, RS_AUDIT_DELETED, r.seq,
				       "the log starts at record %lld and no prune checkpoint accounts for the records before",
				       (long long)r.seq);
				break;
			}
		}
		/* from a seq in the middle, that record's own prev_hash is
		 * taken on trust */
		if (check_one(db, keys, &r, first ? r.prev_hash : prev, prev_seq, false, res))
			break;
		res->checked++;
		memcpy(prev, r.hash, 32);
		prev_seq = r.seq;
		first = false;
	}
	sqlite3_finalize(st);
	rs_audit_record_free(&r);
	if (res->why == RS_AUDIT_INTACT && step != SQLITE_DONE)
		return db_fail(db, err, "cannot read the audit log");
	res->last_seq = prev_seq;
	memcpy(res->last_hash, prev, 32);
	if (res->why == RS_AUDIT_INTACT && anchor_seq > 0) {
		bool found = false;
		struct rs_audit_record a;
		if (rs_audit_get(db, anchor_seq, &a, &found, err) < 0)
			return -1;
		if (!found)
			broken(res, RS_AUDIT_TRUNCATED, anchor_seq,
			       "the anchor's record %lld is not in the log (it ends at %lld)",
			       (long long)anchor_seq, (long long)prev_seq);
		else if (!anchor_hash || memcmp(a.hash, anchor_hash, 32) != 0)
			broken(res, RS_AUDIT_TRUNCATED, anchor_seq,
			       "record %lld does not have the anchor's hash: the log was cut and rewritten",
			       (long long)anchor_seq);
		rs_audit_record_free(&a);
	}
	finish(res, t0);
	return 0;
}

int rs_audit_verify_export(FILE *in, const struct rs_keyring *keys,
			   int64_t anchor_seq, const unsigned char *anchor_hash,
			   struct rs_audit_verify_result *res, struct rs_err *err)
{
	int64_t t0 = rs_monotonic_us();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned char prev[32];
	int64_t prev_seq = 0, lineno = 0;
	bool first = true, anchor_seen = false;

	memset(res, 0, sizeof(*res));
	memcpy(prev, zero_hash, 32);
	while ((n = getline(&line, &cap, in)) > 0) {
		struct rs_audit_record r;
		json_error_t je;
		json_t *j;

		lineno++;
		if (n == 1 && line[0] == '\n')
			continue;
		if (!(j = json_loads(line, 0, &je))) {
			free(line);
			return rs_err_set(err, "line %lld: not JSON: %s", (long long)lineno, je.text);
		}
		if (rs_audit_record_from_json(j, &r, err) < 0) {
			json_decref(j);
			free(line);
			rs_err_prefix(err, "line %lld", (long long)lineno);
			return -1;
		}
		json_decref(j);
		/* an export of a pruned log starts after the checkpoint's
		 * records: its first prev_hash is taken on trust unless the
		 * export starts at record 1 */
		int rc = check_one(NULL, keys, &r, first ? (r.seq == 1 ? zero_hash : r.prev_hash) : prev,
				   prev_seq, false, res);
		if (rc == 0 && anchor_seq == r.seq)
			anchor_seen = anchor_hash && memcmp(r.hash, anchor_hash, 32) == 0;
		if (rc == 0) {
			res->checked++;
			memcpy(prev, r.hash, 32);
			prev_seq = r.seq;
			first = false;
		}
		rs_audit_record_free(&r);
		if (rc)
			break;
	}
	free(line);
	if (ferror(in))
		return rs_err_errno(err, errno, "reading the export");
	res->last_seq = prev_seq;
	memcpy(res->last_hash, prev, 32);
	if (res->why == RS_AUDIT_INTACT && anchor_seq > 0 && !anchor_seen)
		broken(res, RS_AUDIT_TRUNCATED, anchor_seq,
		       "the export does not hold the anchor's record %lld with its hash",
		       (long long)anchor_seq);
	finish(res, t0);
	return 0;
}

/* ---- export and prune --------------------------------------------------------- */

static void csv_field(FILE *out, const char *s, bool last)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
	fputs(last ? "\r\n" : ",", out);
}

struct export_ctx {
	FILE *out;
	enum rs_audit_format fmt;
	uint64_t n;
	int64_t last_seq;
};

static int export_one(const struct rs_audit_record *r, void *arg)
{
	struct export_ctx *x = arg;

	if (x->fmt == RS_AUDIT_JSONL) {
		json_t *j = rs_audit_record_json(r);
		if (!j || json_dumpf(j, x->out, JSON_COMPACT) < 0) {
			json_decref(j);
			return -1;
		}
		json_decref(j);
		fputc('\n', x->out);
	} else {
		char seq[24], t[24], when[40], prev[65], hash[65];
		snprintf(seq, sizeof(seq), "%lld", (long long)r->seq);
		snprintf(t, sizeof(t), "%lld", (long long)r->time_us);
		fmt_time(r->time_us, when, sizeof(when));
		rs_hex_encode(r->prev_hash, 32, prev);
		rs_hex_encode(r->hash, 32, hash);
		const char *f[] = { seq, when, t, r->actor, r->source, r->action, r->target,
				    rs_audit_outcome_name(r->outcome), r->request_id, r->details,
				    r->key_id, prev, hash };
		for (size_t i = 0; i < RS_ARRAY_SIZE(f); i++)
			csv_field(x->out, f[i], i + 1 == RS_ARRAY_SIZE(f));
	}
	x->n++;
	x->last_seq = r->seq;
	return ferror(x->out) ? -1 : 0;
}

int rs_audit_export(struct rs_db *db, FILE *out, enum rs_audit_format fmt,
		    int64_t since_us, uint64_t *n, struct rs_err *err)
{
	struct export_ctx x = { out, fmt, 0, 0 };
	struct rs_audit_filter f = { .since_us = since_us, .outcome = -1 };
	char seq[24];

	if (fmt == RS_AUDIT_CSV)
		fputs("seq,time,time_us,actor,source,action,target,outcome,request_id,details,"
		      "key_id,prev_hash,hash\r\n", out);
	int rc = rs_audit_query(db, &f, export_one, &x, err);
	*n = x.n;
	if (rc > 0 || fflush(out) != 0 || ferror(out))
		return rs_err_errno(err, errno ? errno : EIO, "writing the export");
	if (rc < 0)
		return -1;
	/* only once everything is out: prune trusts this mark */
	char *old = rs_db_meta_get(db, "audit.exported_seq", err);
	int64_t before = old ? strtoll(old, NULL, 10) : 0;
	free(old);
	if (x.last_seq > before) {
		snprintf(seq, sizeof(seq), "%lld", (long long)x.last_seq);
		if (rs_db_meta_set(db, "audit.exported_seq", seq, err) < 0)
			return -1;
	}
	return 0;
}

int rs_audit_prune(struct rs_db *db, const struct rs_keyring *keys,
		   int64_t before_us, bool force, const char *actor,
		   uint64_t *removed, struct rs_err *err)
{
	sqlite3_stmt *st;
	int64_t last = 0;
	unsigned char last_hash[32] = { 0 };
	char hex[65], when[40];

	*removed = 0;
	if (rs_db_exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (sqlite3_prepare_v2(db->handle, "SELECT count(*), max(seq) FROM audit WHERE time_us < ?",
			       -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, err, "cannot read the audit log");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, before_us);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*removed = (uint64_t)sqlite3_column_int64(st, 0);
		last = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (!*removed) {
		struct rs_err ignored = RS_ERR_INIT;
		rs_db_exec(db, "ROLLBACK", &ignored);
		return 0;
	}
	char *ex = rs_db_meta_get(db, "audit.exported_seq", err);
	int64_t exported = ex ? strtoll(ex, NULL, 10) : 0;
	free(ex);
	if (last > exported && !force) {
		rs_err_set(err, "records up to %lld would be pruned, but only up to %lld were exported "
			   "(export them first, or force)", (long long)last, (long long)exported);
		err->code = EPERM;
		*removed = 0;
		goto fail;
	}
	bool found = false;
	struct rs_audit_record lr;
	if (rs_audit_get(db, last, &lr, &found, err) < 0)
		goto fail;
	memcpy(last_hash, lr.hash, 32);
	rs_audit_record_free(&lr);
	rs_hex_encode(last_hash, 32, hex);
	fmt_time(before_us, when, sizeof(when));
	json_t *d = json_pack("{s:I,s:s,s:I,s:s}", "pruned_through_seq", (json_int_t)last,
			      "last_hash", hex, "removed", (json_int_t)*removed, "before", when);
	struct rs_audit_event ev = { .actor = actor, .source = "resyncctl", .action = "audit.prune",
				     .target = "audit", .outcome = RS_AUDIT_SUCCESS, .details = d };
	struct rs_audit_record r, *p = &r;
	int rc = from_event(&ev, &r);
	json_decref(d);
	if (rc < 0) {
		rs_err_set(err, "out of memory");
		goto fail;
	}
	/* the checkpoint first, chained on the newest record: then the seqs
	 * go on whatever the prune takes, and the first record left links
	 * to last_hash */
	rc = insert_chained(db, keys, &p, 1, err);
	rs_audit_record_free(&r);
	if (rc < 0)
		goto fail;
	if (sqlite3_prepare_v2(db->handle, "DELETE FROM audit WHERE seq <= ?", -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, err, "cannot prune the audit log");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, last);
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_fail(db, err, "cannot prune the audit log");
		goto fail;
	}
	if (rs_db_exec(db, "COMMIT", err) < 0)
		goto fail;
	return 0;
fail:;
	struct rs_err ignored = RS_ERR_INIT;
	rs_db_exec(db, "ROLLBACK", &ignored);
	return -1;
}
