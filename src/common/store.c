/*
 * store: cache + log + snapshots.  See store.h.
 *
 * Quirks, on purpose:
 *  - Purge needs every key at once.  Rather than taking all 256 stripes
 *    (ThreadSanitizer cannot track more than 64 held locks, and the store
 *    must stay testable under it), a writer-preferring rwlock, the gate,
 *    is held shared by every per-key mutation and exclusively by purge:
 *    the same exclusion, with at most two locks held.
 *  - The stripe hash is plain FNV-1a, unseeded.  It only picks a lock: keys
 *    crafted to share a stripe serialise their writers, nothing worse (the
 *    cache's own table uses a seeded hash).
 *  - With sync = always a record commits while its stripe is held.  That is
 *    the point: the next write to the key cannot be applied (or logged)
 *    before this one is known to have committed or failed.
 *  - Sizes are checked against the cache's options before logging, so an
 *    entry the cache must refuse never reaches the log.  The cache's exact
 *    test includes its header and malloc rounding, which only it knows; an
 *    entry refused for those few bytes (or for lack of room under heavy
 *    concurrent eviction) is undone with a logged delete.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "seal.h"
#include "util.h"

#define STORE_STRIPES 256          /* power of two */
#define SHOWN_KEY_MAX 64           /* bytes of a key quoted in errors */

struct rs_store {
	char *db_path;
	char *origin;
	enum rs_wal_sync sync;
	int64_t snapshot_retention_ms, wal_retention_ms;
	/* The cache's limits, as rs_cache_new resolves them. */
	size_t max_key, max_value;
	uint64_t max_memory;
	int64_t default_ttl_ms;
	int64_t max_stale_ms;           /* the longer stale window */
	struct rs_cache_options cache_opt;  /* for restore's staging cache */
	int64_t (*clock_ms)(void *arg);
	void *clock_arg;

	struct rs_cache *cache;
	struct rs_wal *wal;
	struct rs_keyring *keys;        /* NULL = values in plaintext */

	/* Lock order: follow_lock, gate, one stripe. */
	pthread_mutex_t follow_lock;    /* guards last_seen; serialises
					 * follow, snapshot and gc */
	int64_t last_seen;              /* the log is applied up to here */

	/* Shared by set and delete (with their key's stripe), exclusive for
	 * purge and for the snapshot's flush + catch-up: holding it
	 * exclusively means no mutation is half done and none can start. */
	pthread_rwlock_t gate;
	bool gate_ok;                   /* initialised, for store_free */
	pthread_mutex_t stripe[STORE_STRIPES];
};

/* ---- helpers ------------------------------------------------------------- */

static int shown_len(size_t klen)
{
	return (int)(klen > SHOWN_KEY_MAX ? SHOWN_KEY_MAX : klen);
}

static const char *shown_more(size_t klen)
{
	return klen > SHOWN_KEY_MAX ? "..." : "";
}

static int64_t now_ms(const struct rs_store *s)
{
	return s->clock_ms ? s->clock_ms(s->clock_arg) : rs_now_ms();
}

static size_t stripe_of(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32)) & (STORE_STRIPES - 1);
}

/* One key's writes: the gate shared, then its stripe. */
static pthread_mutex_t *lock_key(struct rs_store *s, const void *key,
				 size_t klen)
{
	pthread_mutex_t *m = &s->stripe[stripe_of(key, klen)];

	pthread_rwlock_rdlock(&s->gate);
	pthread_mutex_lock(m);
	return m;
}

static void unlock_key(struct rs_store *s, pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	pthread_rwlock_unlock(&s->gate);
}

static void lock_all(struct rs_store *s)
{
	pthread_rwlock_wrlock(&s->gate);
}

static void unlock_all(struct rs_store *s)
{
	pthread_rwlock_unlock(&s->gate);
}

/* What rs_cache_set would refuse whatever the cache holds. */
static int check_entry(const struct rs_store *s, const void *key, size_t klen,
		       const void *val, size_t vlen, bool is_set,
		       struct rs_err *err)
{
	if (!key || klen == 0)
		return rs_err_set(err, "key is empty");
	if (klen > s->max_key)
		return rs_err_set(err,
				  "key '%.*s%s' is %zu bytes, at most %zu allowed",
				  shown_len(klen), (const char *)key,
				  shown_more(klen), klen, s->max_key);
	if (!is_set)
		return 0;
	if (!val && vlen)
		return rs_err_set(err, "value of '%.*s%s' is NULL",
				  shown_len(klen), (const char *)key,
				  shown_more(klen));
	if (vlen > s->max_value)
		return rs_err_set(err,
				  "value of '%.*s%s' is %zu bytes, at most %zu allowed",
				  shown_len(klen), (const char *)key,
				  shown_more(klen), vlen, s->max_value);
	if ((uint64_t)klen + vlen + RS_CACHE_INDEX_BYTES_PER_ENTRY >
	    s->max_memory)
		return rs_err_set(err,
				  "entry for '%.*s%s' needs more than max_memory_bytes (%" PRIu64
				  "): key %zu bytes, value %zu bytes",
				  shown_len(klen), (const char *)key,
				  shown_more(klen), s->max_memory, klen, vlen);
	return 0;
}

/* ---- applying log records ------------------------------------------------ */

struct apply {
	struct rs_store *s;
	bool all_held;                  /* the caller holds the gate
					 * exclusively */
	uint64_t applied, expired, rejected;
	char rejected_reason[256];
	/* A sealed value that did not open stops the read: its seq, why,
	 * and whether its key was there (then the value was tampered with:
	 * a bad record, not a configuration error). */
	int64_t stop_seq;
	struct rs_err stop_err;
	bool forged;
};

/* Open a sealed SET's value into *plain (NULL for plaintext records). */
static int open_value(const struct rs_store *s, const struct rs_wal_record *r,
		      void **plain, size_t *plen, bool *forged,
		      struct rs_err *err)
{
	*plain = NULL;
	*plen = r->vlen;
	if (!r->key_id)
		return 0;
	if (!s->keys)
		return rs_err_set(err,
				  "cache log in '%s': seq %" PRId64 " is sealed with key %s, and no encryption key file is configured",
				  s->db_path, r->seq, r->key_id);
	if (rs_unseal(s->keys, r->key_id, r->key, r->klen, r->val, r->vlen,
		      plain, plen, err)) {
		*forged = rs_keyring_has(s->keys, r->key_id);
		rs_err_prefix(err, "cache log in '%s': seq %" PRId64, s->db_path,
			      r->seq);
		return -1;
	}
	return 0;
}

/* A set the cache refused must not leave an older value behind: the log
 * says the key was overwritten, and a live set that failed removed it
 * too, so recovery and memory end alike. */
static void apply_set(struct apply *a, const struct rs_wal_record *r,
		      const void *val, size_t vlen)
{
	struct rs_err err = RS_ERR_INIT;
	int rc;

	rc = rs_cache_set_at(a->s->cache, r->key, r->klen, val, vlen,
			     r->stored_ms, r->expires_ms, &err);
	if (rc == 1) {
		a->expired++;
	} else if (rc < 0) {
		rs_cache_delete(a->s->cache, r->key, r->klen);
		if (a->rejected++ == 0)
			snprintf(a->rejected_reason,
				 sizeof(a->rejected_reason),
				 "seq %" PRId64 ": %.*s", r->seq,
				 (int)sizeof(a->rejected_reason) / 2,
				 err.msg);
	}
}

static int apply_record(void *arg, const struct rs_wal_record *r)
{
	struct apply *a = arg;
	struct rs_store *s = a->s;
	pthread_mutex_t *m = NULL;
	void *plain = NULL;
	size_t plen = 0;

	if (r->op == RS_WAL_SET &&
	    open_value(s, r, &plain, &plen, &a->forged, &a->stop_err)) {
		a->stop_seq = r->seq;
		return 1;
	}
	if (!a->all_held) {
		if (r->op == RS_WAL_PURGE)
			lock_all(s);
		else
			m = lock_key(s, r->key, r->klen);
	}
	switch (r->op) {
	case RS_WAL_SET:
		apply_set(a, r, plain ? plain : r->val, plen);
		break;
	case RS_WAL_DELETE:
		rs_cache_delete(s->cache, r->key, r->klen);
		break;
	case RS_WAL_PURGE:
		rs_cache_purge(s->cache, r->key, r->klen);
		break;
	}
	if (!a->all_held) {
		if (m)
			unlock_key(s, m);
		else
			unlock_all(s);
	}
	free(plain);
	a->applied++;
	return 0;
}

/* Apply other origins' records after last_seen; the caller holds
 * follow_lock (and the gate exclusively when all_held).  0 with *rep
 * telling whether a bad record stopped it, -1 when the log cannot be
 * read. */
static int follow_locked(struct rs_store *s, bool all_held, uint64_t *applied,
			 struct rs_wal_read_report *rep, struct rs_err *err)
{
	struct apply a = { .s = s, .all_held = all_held, .stop_err = RS_ERR_INIT };
	int rc;

	rc = rs_wal_read(s->db_path, s->last_seen, s->origin, apply_record, &a,
			 rep, err);
	/* Also after an error: what was delivered has been applied; a
	 * value that did not open was not, and is tried again. */
	if (rc > 0)
		rep->last_seq = a.stop_seq - 1;
	if (rep->last_seq > s->last_seen)
		s->last_seen = rep->last_seq;
	if (applied)
		*applied = a.applied;
	if (rc > 0)
		*err = a.stop_err;
	return rc ? -1 : 0;
}

/* ---- open, close --------------------------------------------------------- */

static void store_free(struct rs_store *s)
{
	size_t i;

	if (!s)
		return;
	rs_cache_free(s->cache);
	rs_keyring_free(s->keys);
	for (i = 0; i < STORE_STRIPES; i++)
		pthread_mutex_destroy(&s->stripe[i]);
	if (s->gate_ok)
		pthread_rwlock_destroy(&s->gate);
	pthread_mutex_destroy(&s->follow_lock);
	free(s->origin);
	free(s->db_path);
	free(s);
}

static int recover(struct rs_store *s, struct rs_store_recovery *rec,
		   struct rs_err *err)
{
	struct apply a = { .s = s, .stop_err = RS_ERR_INIT };
	int64_t start = rs_monotonic_ms();
	int rc, ret = -1;

	if (rs_snapshot_load(s->db_path, s->keys, 0, s->cache, &rec->snapshot,
			     err))
		goto out;
	rc = rs_wal_read(s->db_path, rec->snapshot.last_seq, NULL, apply_record,
			 &a, &rec->log, err);
	if (rc > 0) {
		rec->log.last_seq = a.stop_seq - 1;
		/* A value whose key is missing fails the open: a config
		 * error, and serving without it would hand out an older
		 * value.  One that does not authenticate with its key was
		 * altered: a bad record, reported, replay stops there
		 * (verify --repair quarantines it with the key at hand). */
		if (!a.forged) {
			*err = a.stop_err;
			goto out;
		}
		rec->log.stopped = true;
		rec->log.gap = false;
		rec->log.bad_seq = a.stop_seq;
		rs_copy_text(rec->log.reason, sizeof(rec->log.reason),
			  "sealed value does not authenticate");
	} else if (rc) {
		goto out;
	}
	ret = 0;
out:
	rec->replayed = a.applied;
	rec->expired = a.expired;
	rec->rejected = a.rejected;
	rs_copy_text(rec->rejected_reason, sizeof(rec->rejected_reason),
		  a.rejected_reason);
	rec->last_seq = rec->log.last_seq ? rec->log.last_seq :
					    rec->snapshot.last_seq;
	rec->took_ms = rs_monotonic_ms() - start;
	return ret;
}

int rs_store_open(struct rs_store **out, const struct rs_store_options *opt,
		  struct rs_store_recovery *rec, struct rs_err *err)
{
	struct rs_store_recovery local;
	pthread_rwlockattr_t ga;
	struct rs_wal_options wo;
	struct rs_store *s;
	size_t i;

	*out = NULL;
	if (!rec)
		rec = &local;
	memset(rec, 0, sizeof(*rec));
	if (!opt)
		return rs_err_set(err, "no store options given");
	if (opt->snapshot_retention_ms < 0 || opt->wal_retention_ms < 0)
		return rs_err_set(err,
				  "store retention times must not be negative");
	s = calloc(1, sizeof(*s));
	if (!s)
		return rs_err_set(err, "out of memory");
	pthread_mutex_init(&s->follow_lock, NULL);
	for (i = 0; i < STORE_STRIPES; i++)
		pthread_mutex_init(&s->stripe[i], NULL);
	/* Writer-preferring: under a steady stream of sets a purge (or a
	 * snapshot's catch-up) must still get its turn. */
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(&ga,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&s->gate, &ga) != 0) {
		pthread_rwlockattr_destroy(&ga);
		rs_err_set(err, "cannot create the store's locks");
		goto fail;
	}
	pthread_rwlockattr_destroy(&ga);
	s->gate_ok = true;
	s->sync = opt->sync;
	s->snapshot_retention_ms = opt->snapshot_retention_ms;
	s->wal_retention_ms = opt->wal_retention_ms;
	s->max_key = opt->cache.max_key_bytes ? opt->cache.max_key_bytes :
						RS_CACHE_MAX_KEY_BYTES;
	s->max_value = opt->cache.max_value_bytes ?
			       opt->cache.max_value_bytes :
			       RS_CACHE_DEFAULT_MAX_VALUE_BYTES;
	s->max_memory = opt->cache.max_memory_bytes;
	s->default_ttl_ms = opt->cache.default_ttl_ms;
	s->max_stale_ms = opt->cache.stale_while_revalidate_ms >
					  opt->cache.stale_if_error_ms ?
				  opt->cache.stale_while_revalidate_ms :
				  opt->cache.stale_if_error_ms;
	s->clock_ms = opt->cache.clock_ms;
	s->cache_opt = opt->cache;
	s->clock_arg = opt->cache.clock_arg;
	s->origin = strdup(opt->origin ? opt->origin : "");
	s->db_path = strdup(opt->db_path ? opt->db_path : "");
	if (!s->origin || !s->db_path) {
		rs_err_set(err, "out of memory");
		goto fail;
	}
	if (rs_cache_new(&s->cache, &opt->cache, err))
		goto fail;
	if (opt->encryption_key_file && *opt->encryption_key_file &&
	    opt->sync != RS_WAL_SYNC_OFF &&
	    rs_keyring_load(&s->keys, opt->encryption_key_file, err))
		goto fail;

	/* The wal first: it creates and migrates a missing database, which
	 * the read-only snapshot load and log read need.  Nothing is
	 * appended before recovery has finished. */
	wo = (struct rs_wal_options){
		.db_path = opt->db_path,
		.sync = opt->sync,
		.sync_interval_ms = opt->sync_interval_ms,
		.origin = opt->origin,
		.busy_timeout_ms = opt->busy_timeout_ms,
	};
	if (rs_wal_open(&s->wal, &wo, err))
		goto fail;
	if (s->sync != RS_WAL_SYNC_OFF) {
		if (recover(s, rec, err))
			goto fail;
		s->last_seen = rec->last_seq;
	}
	*out = s;
	return 0;

fail:
	rs_wal_close(s->wal, NULL);
	store_free(s);
	return -1;
}

int rs_store_close(struct rs_store *s, struct rs_err *err)
{
	int ret;

	if (!s)
		return 0;
	ret = rs_wal_close(s->wal, err);
	store_free(s);
	return ret;
}

struct rs_cache *rs_store_cache(struct rs_store *s)
{
	return s->cache;
}

void rs_store_wal_stats(struct rs_store *s, struct rs_wal_stats *out)
{
	rs_wal_get_stats(s->wal, out);
}

/* ---- mutations ----------------------------------------------------------- */

/* Log the set in *r, then apply it; the caller holds the key's stripe. */
static int set_locked(struct rs_store *s, const struct rs_wal_record *r,
		      struct rs_err *err)
{
	struct rs_wal_record undo = {
		.op = RS_WAL_DELETE,
		.key = r->key,
		.klen = r->klen,
	};
	struct rs_wal_record logged = *r;
	char key_id[RS_SEAL_ID_CHARS + 1];
	void *sealed = NULL;
	int rc;

	/* The log gets the sealed value, memory the plain one. */
	if (s->keys && s->sync != RS_WAL_SYNC_OFF) {
		if (rs_seal(s->keys, r->key, r->klen, r->val, r->vlen, &sealed,
			    &logged.vlen, key_id, err))
			return -1;
		logged.val = sealed;
		logged.key_id = key_id;
	}
	rc = rs_wal_append(s->wal, &logged, NULL, err);
	free(sealed);
	if (rc) {
		rs_err_prefix(err, "cannot log the set of '%.*s%s'",
			      shown_len(r->klen), (const char *)r->key,
			      shown_more(r->klen));
		if (err)
			err->code = EIO;
		return -1;
	}
	if (rs_cache_set_at(s->cache, r->key, r->klen, r->val, r->vlen,
			    r->stored_ms, r->expires_ms, err) < 0) {
		/* Logged but not stored: make both say "gone".  Should the
		 * delete fail to commit too, recovery may store the value the
		 * caller was told failed; that takes two faults in a row. */
		rs_cache_delete(s->cache, r->key, r->klen);
		rs_wal_append(s->wal, &undo, NULL, NULL);
		return -1;
	}
	return 0;
}

int rs_store_set(struct rs_store *s, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t ttl_ms,
		 struct rs_err *err)
{
	struct rs_wal_record r = {
		.op = RS_WAL_SET,
		.key = key,
		.klen = klen,
		.val = val,
		.vlen = vlen,
	};
	pthread_mutex_t *m;
	int ret;

	if (check_entry(s, key, klen, val, vlen, true, err))
		return -1;
	m = lock_key(s, key, klen);
	/* Stamped under the stripe, so a later write to the key never
	 * carries an earlier stored time. */
	r.stored_ms = now_ms(s);
	r.expires_ms = rs_sat_add(r.stored_ms, ttl_ms < 0 ? s->default_ttl_ms :
							 ttl_ms);
	ret = set_locked(s, &r, err);
	unlock_key(s, m);
	return ret;
}

int rs_store_set_at(struct rs_store *s, const void *key, size_t klen,
		    const void *val, size_t vlen, int64_t stored_ms,
		    int64_t expires_ms, struct rs_err *err)
{
	struct rs_wal_record r = {
		.op = RS_WAL_SET,
		.key = key,
		.klen = klen,
		.val = val,
		.vlen = vlen,
		.stored_ms = stored_ms,
		.expires_ms = expires_ms,
	};
	pthread_mutex_t *m;
	int ret;

	if (check_entry(s, key, klen, val, vlen, true, err))
		return -1;
	/* Not worth a log record: the cache would drop it at once, and
	 * recovery would skip it. */
	if (now_ms(s) >= rs_sat_add(expires_ms, s->max_stale_ms))
		return 1;
	m = lock_key(s, key, klen);
	ret = set_locked(s, &r, err);
	unlock_key(s, m);
	return ret;
}

int rs_store_delete(struct rs_store *s, const void *key, size_t klen,
		    int *deleted, struct rs_err *err)
{
	struct rs_wal_record r = {
		.op = RS_WAL_DELETE,
		.key = key,
		.klen = klen,
	};
	pthread_mutex_t *m;
	int gone;

	if (deleted)
		*deleted = 0;
	if (check_entry(s, key, klen, NULL, 0, false, err))
		return -1;
	m = lock_key(s, key, klen);
	if (rs_wal_append(s->wal, &r, NULL, err)) {
		unlock_key(s, m);
		rs_err_prefix(err, "cannot log the delete of '%.*s%s'",
			      shown_len(klen), (const char *)key,
			      shown_more(klen));
		if (err)
			err->code = EIO;
		return -1;
	}
	gone = rs_cache_delete(s->cache, key, klen);
	unlock_key(s, m);
	if (deleted)
		*deleted = gone;
	return 0;
}

int rs_store_purge(struct rs_store *s, const void *prefix, size_t plen,
		   uint64_t *removed, struct rs_err *err)
{
	struct rs_wal_record r = {
		.op = RS_WAL_PURGE,
		.key = prefix,
		.klen = plen,
	};
	uint64_t n;

	if (removed)
		*removed = 0;
	if (plen && !prefix)
		return rs_err_set(err, "purge prefix is NULL");
	lock_all(s);
	if (rs_wal_append(s->wal, &r, NULL, err)) {
		unlock_all(s);
		rs_err_prefix(err, "cannot log the purge");
		if (err)
			err->code = EIO;
		return -1;
	}
	n = rs_cache_purge(s->cache, prefix, plen);
	unlock_all(s);
	if (removed)
		*removed = n;
	return 0;
}

/* ---- following, snapshots, gc -------------------------------------------- */

static int bad_record(struct rs_store *s, const struct rs_wal_read_report *rep,
		      struct rs_err *err)
{
	return rs_err_set(err,
			  "cache log in '%s': bad record at seq %" PRId64
			  ": %s; applied up to seq %" PRId64,
			  s->db_path, rep->bad_seq, rep->reason, s->last_seen);
}

int rs_store_follow(struct rs_store *s, uint64_t *applied, struct rs_err *err)
{
	struct rs_wal_read_report rep;
	int ret;

	if (applied)
		*applied = 0;
	if (s->sync == RS_WAL_SYNC_OFF)
		return 0;
	pthread_mutex_lock(&s->follow_lock);
	ret = follow_locked(s, false, applied, &rep, err);
	if (ret == 0 && rep.stopped)
		ret = bad_record(s, &rep, err);
	pthread_mutex_unlock(&s->follow_lock);
	return ret;
}

/*
 * The image must hold every log record up to the last_seq it claims.  Our
 * own records are in memory from the moment they are appended (the key's
 * locks are held from append to apply), but other processes' records only
 * once follow has applied them, and seqs interleave: reading our own
 * highest committed seq (rs_wal_stats) and claiming it could skip their
 * records below it forever.  So, with the gate held exclusively (no
 * mutation of ours is half done, none can start): flush our queue, then
 * follow to the end of the log; everything up to the last record follow
 * read is now in memory, ours included (it reads them too, skipping them),
 * and that is last_seq.
 * If follow stops at a bad record, last_seq is the one before it: still
 * true, and recovery stops there anyway.
 *
 * The gate is released before the copy: holding it through the copy would
 * stop every writer for the whole snapshot.  Writes made during the copy
 * have seqs after last_seq and are replayed over the image at recovery;
 * the image may already hold some of them, which is harmless because set,
 * delete and purge are last-writer-wins per key (snapshot.h).  The first,
 * unlocked follow only shortens the locked one.
 */
int rs_store_snapshot(struct rs_store *s, struct rs_snapshot_info *info,
		      struct rs_err *err)
{
	struct rs_wal_read_report rep;
	int64_t last_seq;
	int rc;

	if (info)
		memset(info, 0, sizeof(*info));
	if (s->sync == RS_WAL_SYNC_OFF)
		return rs_err_set(err,
				  "no snapshot taken: persistence is off (sync = off)");
	pthread_mutex_lock(&s->follow_lock);
	if (follow_locked(s, false, NULL, &rep, err))
		goto fail;
	lock_all(s);
	rc = rs_wal_flush(s->wal, err);
	if (rc == 0)
		rc = follow_locked(s, true, NULL, &rep, err);
	last_seq = s->last_seen;
	unlock_all(s);
	if (rc)
		goto fail;
	pthread_mutex_unlock(&s->follow_lock);
	return rs_snapshot_take(s->db_path, s->keys, s->cache, last_seq, info,
				err);

fail:
	pthread_mutex_unlock(&s->follow_lock);
	rs_err_prefix(err, "no snapshot taken");
	return -1;
}

int rs_store_gc(struct rs_store *s, uint64_t *snapshots_removed,
		int64_t *records_removed, struct rs_err *err)
{
	int64_t now = rs_now_ms(), keep_seq = 0, upto, n = 0;
	uint64_t removed = 0;
	int ret = -1;

	if (snapshots_removed)
		*snapshots_removed = 0;
	if (records_removed)
		*records_removed = 0;
	if (s->sync == RS_WAL_SYNC_OFF)
		return 0;
	/* Held so last_seen cannot move under us; gc is rare and slow
	 * anyway, and follow waiting for it loses nothing. */
	pthread_mutex_lock(&s->follow_lock);
	if (rs_snapshot_gc(s->db_path, now, s->snapshot_retention_ms,
			   &removed, &keep_seq, err))
		goto out;
	/* Never past what this store has applied: follow needs the records
	 * after last_seen to be there, without a gap. */
	upto = keep_seq < s->last_seen ? keep_seq : s->last_seen;
	if (upto > 0) {
		n = rs_wal_truncate(s->db_path, upto,
				    now - s->wal_retention_ms, err);
		if (n < 0)
			goto out;
	}
	ret = 0;
out:
	pthread_mutex_unlock(&s->follow_lock);
	if (snapshots_removed)
		*snapshots_removed = removed;
	if (records_removed)
		*records_removed = n > 0 ? n : 0;
	return ret;
}

int rs_store_flush(struct rs_store *s, struct rs_err *err)
{
	return rs_wal_flush(s->wal, err);
}

/* Records of a restore or import between flushes: well under the wal's
 * queue bound, so sync = batch never refuses an append for a full queue. */
#define STORE_BULK_FLUSH 10000

/* Log and apply every item of one staged shard; the caller holds the gate
 * exclusively. */
static int restore_items(struct rs_store *s, struct rs_cache_item *items,
			 size_t n, struct rs_store_restore_report *rep,
			 struct rs_err *err)
{
	struct rs_wal_record r = { .op = RS_WAL_SET };
	size_t i;

	for (i = 0; i < n; i++) {
		r.key = items[i].key;
		r.klen = items[i].klen;
		r.val = items[i].val;
		r.vlen = items[i].vlen;
		r.stored_ms = items[i].stored_ms;
		r.expires_ms = items[i].expires_ms;
		if (set_locked(s, &r, err))
			return -1;
		if (++rep->entries % STORE_BULK_FLUSH == 0 &&
		    rs_wal_flush(s->wal, err))
			return -1;
	}
	return 0;
}

/*
 * The snapshot is staged in a cache of its own first: loading verifies it
 * before anything is changed, and a snapshot that cannot be loaded leaves
 * the store as it was.  Then, with the gate held exclusively (no other
 * mutation of this process interleaves): a purge of everything and one set
 * per entry with its original times, all logged, so a responder following
 * the log ends with the same contents.
 */
int rs_store_restore(struct rs_store *s, int64_t id,
		     struct rs_store_restore_report *rep, struct rs_err *err)
{
	struct rs_store_restore_report local;
	struct rs_snapshot_load_report lrep;
	struct rs_wal_record purge = { .op = RS_WAL_PURGE };
	struct rs_cache_item *items = NULL;
	struct rs_cache *stage = NULL;
	size_t shard, n = 0;
	int ret = -1;

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (s->sync == RS_WAL_SYNC_OFF)
		return rs_err_set(err,
				  "nothing to restore from: persistence is off (sync = off)");
	if (id <= 0)
		return rs_err_set(err, "no snapshot %" PRId64 " in '%s'", id,
				  s->db_path);
	if (rs_cache_new(&stage, &s->cache_opt, err))
		return -1;
	if (rs_snapshot_load(s->db_path, s->keys, id, stage, &lrep, err))
		goto out;
	rep->expired = lrep.expired;
	rep->rejected = lrep.rejected;
	lock_all(s);
	if (rs_wal_append(s->wal, &purge, NULL, err)) {
		unlock_all(s);
		rs_err_prefix(err, "cannot log the purge before the restore");
		goto out;
	}
	rs_cache_purge(s->cache, NULL, 0);
	for (shard = 0; shard < rs_cache_num_shards(stage); shard++) {
		if (rs_cache_shard_copy(stage, shard, &items, &n, err) ||
		    restore_items(s, items, n, rep, err))
			break;
		rs_cache_items_free(items, n);
		items = NULL;
		n = 0;
	}
	unlock_all(s);
	if (shard < rs_cache_num_shards(stage)) {
		rs_err_prefix(err, "restore of snapshot %" PRId64
			      " stopped after %" PRIu64 " entries", id,
			      rep->entries);
		goto out;
	}
	if (rs_wal_flush(s->wal, err))
		goto out;
	ret = 0;
out:
	rs_cache_items_free(items, n);
	rs_cache_free(stage);
	return ret;
}

/* The seed's CacheConfig: production is stricter, so a key or value limit
 * left to its default is looser elsewhere. */
#define DEV_MAX_KEY_BYTES RS_CACHE_MAX_KEY_BYTES
#define DEV_MAX_VALUE_BYTES (10 * 1024 * 1024)

static bool is_default(const struct rs_config *cfg, const char *section,
		       const char *key)
{
	const struct rs_conf_section *sec = rs_config_find(cfg, section, NULL);
	const struct rs_conf_value *v = sec ? rs_conf_get(sec, key) : NULL;

	return !v || v->source == RS_SRC_DEFAULT;
}

void rs_store_options_from_config(const struct rs_config *cfg,
				  const char *origin,
				  struct rs_store_options *o)
{
	const char *sync = rs_config_str(cfg, "persistence", "sync");
	bool prod = rs_config_is_production(cfg);

	memset(o, 0, sizeof(*o));
	o->db_path = rs_config_str(cfg, "persistence", "db");
	o->sync = strcmp(sync, "always") == 0 ? RS_WAL_SYNC_ALWAYS :
		  strcmp(sync, "off") == 0    ? RS_WAL_SYNC_OFF :
						RS_WAL_SYNC_BATCH;
	o->sync_interval_ms = rs_config_num(cfg, "persistence", "sync_interval");
	o->origin = origin;
	o->snapshot_retention_ms =
		rs_config_num(cfg, "persistence", "snapshot_retention");
	o->wal_retention_ms = rs_config_num(cfg, "persistence", "wal_retention");
	o->encryption_key_file =
		rs_config_str(cfg, "persistence", "encryption_key_file");

	o->cache.num_shards = (size_t)rs_config_num(cfg, "cache", "num_shards");
	o->cache.max_entries = (uint64_t)rs_config_num(cfg, "cache", "max_entries");
	o->cache.max_memory_bytes =
		(uint64_t)rs_config_num(cfg, "cache", "max_memory");
	o->cache.default_ttl_ms = rs_config_num(cfg, "cache", "ttl");
	o->cache.stale_while_revalidate_ms =
		rs_config_num(cfg, "cache", "stale_while_revalidate");
	o->cache.stale_if_error_ms =
		rs_config_num(cfg, "cache", "stale_if_error");
	o->cache.max_key_bytes =
		!prod && is_default(cfg, "cache", "max_key_size") ?
			DEV_MAX_KEY_BYTES :
			(size_t)rs_config_num(cfg, "cache", "max_key_size");
	o->cache.slow_op_us =
		rs_config_num(cfg, "cache", "slow_op_threshold") * 1000;
	o->cache.max_value_bytes =
		!prod && is_default(cfg, "cache", "max_value_size") ?
			DEV_MAX_VALUE_BYTES :
			(size_t)rs_config_num(cfg, "cache", "max_value_size");
}
