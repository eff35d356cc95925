/*
 * audit: the tamper-evident audit log, in the `audit` table (migration 8).
 *
 * Records are appended, never changed.  Each has a seq (1, 2, ... with no
 * gaps except where a prune removed the oldest), a UTC time in
 * microseconds, an actor, a source, an action, a target, an outcome, the
 * request id, details (a JSON object, stored in canonical form: sorted
 * keys, compact), the id of the key that chained it, prev_hash and hash:
 *
 *   hash = HMAC-SHA256(key, prev_hash || canonical encoding of the record)
 *
 * or plain SHA-256 of the same bytes when no key is configured
 * (development only: anyone who can write the database can then rewrite
 * the chain; config-validate says so).  prev_hash of the first record is
 * 32 zero bytes.  The canonical encoding is, for each field in the order
 * seq, time_us, actor, source, action, target, outcome, request_id,
 * details, key_id: its length as 8 bytes big-endian, then its bytes
 * (integers as decimal text), so no two records encode alike.
 *
 * Keys come from [audit] key_file, a keyring file as for the cache seal
 * (seal.h: one 64-hex-digit key per line, the first current); each record
 * stores its key's id, so a key can be rotated (new key first, the old
 * one kept below it) and old records still verify.
 *
 * Actors: "key:NAME" (an API key), "jwt:SUB", "ip:ADDR" (anonymous),
 * "unix:USER" (resyncctl), "system" (the responder itself).  Actions are
 * dotted names: auth.failure, auth.denied, auth.rotated_key, admin.request,
 * ratelimit.block, cors.violation, idempotency.conflict,
 * validation.failure, config.reload, breaker.transition, cache.purge,
 * audit.prune, and "cli.<command>" (cli.cache.restore, ...) for
 * resyncctl's mutating commands.
 *
 * Pruning deletes the oldest records and appends a checkpoint record
 * (action audit.prune) whose details carry the seq and hash of the last
 * record deleted, so the chain that remains still verifies from its first
 * record; the checkpoint is itself chained.  A chain alone cannot show
 * that its newest records were cut off: rs_audit_head gives (seq, hash)
 * to be kept elsewhere, and verify with that anchor detects truncation.
 *
 * Threads: a struct rs_audit (the writer) may be used by any number of
 * threads; the reading functions take a struct rs_db used by one thread.
 * Library code: errors are returned in err, never printed.
 */
#ifndef RS_AUDIT_H
#define RS_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "err.h"
#include "seal.h"

#define RS_AUDIT_HASH_BYTES 32
#define RS_AUDIT_SCHEMA_VERSION 8

enum rs_audit_outcome { RS_AUDIT_SUCCESS, RS_AUDIT_DENIED, RS_AUDIT_FAILURE };
/* "success", "denied", "failure" */
const char *rs_audit_outcome_name(enum rs_audit_outcome o);
int rs_audit_outcome_parse(const char *s, enum rs_audit_outcome *out);

/* What to record; strings are borrowed for the call (NULL = ""), details
 * a JSON object or NULL (borrowed, copied). */
struct rs_audit_event {
	const char *actor, *source, *action, *target, *request_id;
	enum rs_audit_outcome outcome;
	const json_t *details;
	int64_t time_us;            /* 0 = now */
};

struct rs_audit_record {
	int64_t seq;
	int64_t time_us;
	char *actor, *source, *action, *target, *request_id;
	char *details;              /* canonical JSON object text */
	enum rs_audit_outcome outcome;
	char key_id[RS_SEAL_ID_CHARS + 1];   /* "" = plain SHA-256 */
	unsigned char prev_hash[RS_AUDIT_HASH_BYTES], hash[RS_AUDIT_HASH_BYTES];
};
void rs_audit_record_free(struct rs_audit_record *r);
/* The record as a JSON object (hashes in hex, time as RFC 3339 with
 * microseconds and as time_us): what --json and the export print. */
json_t *rs_audit_record_json(const struct rs_audit_record *r);
/* Back from that object (the export reader); -1 with err naming the field. */
int rs_audit_record_from_json(const json_t *j, struct rs_audit_record *r,
			      struct rs_err *err);
/* The hash r should have, from its fields and prev_hash; keys NULL (or
 * r->key_id "") is plain SHA-256.  -1 when r->key_id is not in keys. */
int rs_audit_hash(const struct rs_keyring *keys, const struct rs_audit_record *r,
		  unsigned char out[RS_AUDIT_HASH_BYTES], struct rs_err *err);

/* ---- writing -------------------------------------------------------------- */

struct rs_audit_options {
	const char *db_path;
	const struct rs_keyring *keys;   /* borrowed; NULL: plain SHA-256 */
	unsigned queue_size;             /* records waiting, at most */
	bool fail_when_full;             /* [audit] on_full = fail (else block) */
	bool sync_always;                /* append returns once committed */
	bool syslog;                     /* also send each record to syslog */
	int syslog_facility;             /* LOG_AUTHPRIV, ... */
};

struct rs_audit;

/* Open the database (migrating it) and start the writer thread, which
 * appends queued records in batches, one transaction each, chaining them
 * on the newest record in the table (other processes may append too:
 * each batch is a BEGIN IMMEDIATE that reads the head first). */
int rs_audit_open(struct rs_audit **out, const struct rs_audit_options *o,
		  struct rs_err *err);
/* Queue one record.  A full queue blocks until there is room, or with
 * fail_when_full returns -1 (err->code EAGAIN) at once.  With sync_always
 * it returns once the record is committed; -1 (err->code EIO) when the
 * commit failed.  *seq (may be NULL) gets the record's seq when known
 * (sync_always), else 0. */
int rs_audit_append(struct rs_audit *a, const struct rs_audit_event *ev,
		    int64_t *seq, struct rs_err *err);
struct rs_audit_stats {
	uint64_t appended, written, failed_commits, refused;   /* refused: queue full, fail mode */
	uint64_t batches;                /* commits that wrote records: written/batches
					  * is how many a commit carries */
	unsigned queued, queue_size;
	int64_t last_seq;
	bool degraded;                   /* the last commit failed */
	char last_error[RS_ERR_MSG_MAX];
};
void rs_audit_stats(struct rs_audit *a, struct rs_audit_stats *st);
/* Write what is queued, stop the thread, close. */
void rs_audit_close(struct rs_audit *a);

/* For a process without a writer (resyncctl): one record, appended and
 * committed in its own transaction on db. */
int rs_audit_append_db(struct rs_db *db, const struct rs_keyring *keys,
		       const struct rs_audit_event *ev, int64_t *seq,
		       struct rs_err *err);

/* ---- reading -------------------------------------------------------------- */

struct rs_audit_filter {
	int64_t since_us, until_us;      /* 0 = unbounded; until is exclusive */
	int64_t from_seq;                /* records with seq >= this; 0 = all */
	const char *actor, *action;      /* exact; action also "prefix.*" */
	const char *text;                /* substring of any text field or details */
	int outcome;                     /* enum rs_audit_outcome, or -1 = any */
	uint64_t limit;                  /* 0 = no limit */
	bool newest_first;
};
/* cb returns 0 to go on, anything else to stop (returned by query). */
typedef int (*rs_audit_cb)(const struct rs_audit_record *r, void *arg);
int rs_audit_query(struct rs_db *db, const struct rs_audit_filter *f,
		   rs_audit_cb cb, void *arg, struct rs_err *err);
/* *found false when there is no such seq. */
int rs_audit_get(struct rs_db *db, int64_t seq, struct rs_audit_record *r,
		 bool *found, struct rs_err *err);
/* The newest record's seq and hash; seq 0 (hash zeros) when empty. */
int rs_audit_head(struct rs_db *db, int64_t *seq,
		  unsigned char hash[RS_AUDIT_HASH_BYTES], struct rs_err *err);

/* Counts over a period (since_us/until_us as in the filter, 0 =
 * unbounded): a JSON object {"total", "first_seq", "last_seq",
 * "by_action", "by_outcome", "by_actor"}, each "by_" an array of
 * {"name", "count"} ordered by count (most first, then name), at most top
 * entries each (0 = all).  NULL with err on failure; the caller owns it. */
json_t *rs_audit_summary(struct rs_db *db, int64_t since_us, int64_t until_us,
			 unsigned top, struct rs_err *err);

enum rs_audit_break {
	RS_AUDIT_INTACT,
	RS_AUDIT_MODIFIED,      /* a record's fields no longer give its hash */
	RS_AUDIT_DELETED,       /* a seq is missing and no checkpoint accounts for it */
	RS_AUDIT_INSERTED,      /* a record that does not belong between its neighbours */
	RS_AUDIT_REORDERED,     /* records out of their chain order */
	RS_AUDIT_TRUNCATED,     /* the anchor's seq or hash is not in the log */
	RS_AUDIT_UNKNOWN_KEY,   /* chained with a key id not in the keyring */
};
const char *rs_audit_break_name(enum rs_audit_break b);

struct rs_audit_verify_result {
	uint64_t checked;
	enum rs_audit_break why;
	int64_t bad_seq;                 /* the first broken record; 0 when intact */
	char detail[256];
	int64_t last_seq;
	unsigned char last_hash[RS_AUDIT_HASH_BYTES];
	int64_t took_us;
};
/* Recompute the chain from from_seq (0 = the first record); with an
 * anchor (anchor_seq > 0) also check that the log holds that seq with
 * that hash.  Returns 0 whether or not the chain is intact (see res->why);
 * -1 only when the check itself could not run. */
int rs_audit_verify(struct rs_db *db, const struct rs_keyring *keys,
		    int64_t from_seq, int64_t anchor_seq,
		    const unsigned char *anchor_hash,
		    struct rs_audit_verify_result *res, struct rs_err *err);
/* The same over an export in JSON lines, read from in. */
int rs_audit_verify_export(FILE *in, const struct rs_keyring *keys,
			   int64_t anchor_seq, const unsigned char *anchor_hash,
			   struct rs_audit_verify_result *res, struct rs_err *err);

enum rs_audit_format { RS_AUDIT_JSONL, RS_AUDIT_CSV };
/* Stream records (with since_us, 0 = all) to out; records the newest seq
 * exported in meta (audit.exported_seq) once everything was written. */
int rs_audit_export(struct rs_db *db, FILE *out, enum rs_audit_format fmt,
		    int64_t since_us, uint64_t *n, struct rs_err *err);
/* Delete the records older than before_us and append the checkpoint
 * (actor given).  Refuses (-1, err->code EPERM) to delete a record not
 * yet exported unless force.  *removed gets the count. */
int rs_audit_prune(struct rs_db *db, const struct rs_keyring *keys,
		   int64_t before_us, bool force, const char *actor,
		   uint64_t *removed, struct rs_err *err);

#endif
