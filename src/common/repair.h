/*
 * repair: check everything the cache keeps in the database (every
 * snapshot, every log record, the log's continuity) and, when asked, take
 * what is corrupt out of use so that recovery starts cleanly again:
 * `resyncctl cache verify [--repair]`, what redis-check-aof --fix is to an
 * AOF.
 *
 * Faults, in the order they are found:
 *   snapshot   a complete snapshot whose checksum or counts do not match,
 *              or whose state is unknown (rs_snapshot_verify);
 *   record     a log record that fails its checksum, has an unknown op,
 *              or is a set without a value; with a keyring, also a sealed
 *              value that does not authenticate (altered, checksum and
 *              all), or one sealed with a key the keyring lacks (named,
 *              never repaired: supply the key);
 *   gap        log records missing: between two records, or between the
 *              newest usable snapshot and the first record of the log
 *              (the log was truncated past what any snapshot still
 *              covers), so recovery would stop there.
 * Incomplete snapshots (a take in progress, or one that crashed: gc
 * removes it) and what an earlier repair quarantined are counted, not
 * faults.
 *
 * Repair, each fault in its own transaction so a concurrent writer waits
 * briefly:
 *   snapshot   its state becomes 'quarantined' (rows left in place, gc
 *              collects them with age) and a quarantine row names it;
 *   record     the row is moved into cache_quarantine as it was (every
 *              column) and deleted from the log;
 *   gap        a quarantine row records the missing range.
 * Readers of the log accept a gap the quarantine accounts for, so after a
 * repair recovery and followers go past it, and verify finds nothing.  A
 * quarantined record's write is lost; its key may hold an older value
 * until it is written again.  Nothing is deleted outright: the quarantine
 * keeps the bad rows for inspection.
 *
 * Works on a database path, any process, responder running or not; it
 * opens its own connections.  Errors name the database.
 */
#ifndef RS_REPAIR_H
#define RS_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Faults listed in a report at most; all are counted and repaired. */
#define RS_VERIFY_MAX_LISTED 1000

enum rs_fault_kind {
	RS_FAULT_SNAPSHOT,
	RS_FAULT_RECORD,
	RS_FAULT_GAP,
};

struct rs_fault {
	enum rs_fault_kind kind;
	int64_t ref, ref_end;       /* snapshot id twice, or the log seqs */
	char reason[256];           /* "checksum mismatch", "missing" ... */
	bool repaired;
};

struct rs_verify_report {
	uint64_t snapshots;             /* complete ones checked */
	uint64_t snapshots_ok;
	uint64_t snapshots_incomplete;  /* passed over, not faults */
	uint64_t snapshots_quarantined; /* by an earlier repair */
	int64_t base_seq;               /* last seq of the newest valid
					 * snapshot: replay starts after it */
	uint64_t records;               /* good log records */
	int64_t first_seq, last_seq;    /* of the log; 0 when empty */
	uint64_t quarantine_rows;       /* in the quarantine after the run */
	uint64_t faults, repaired;
	struct rs_fault *list;          /* the first RS_VERIFY_MAX_LISTED */
	size_t nlist;
};

/* Check the database at db_path; with `repair`, quarantine every fault.
 * 0 with the report filled (report->faults says whether it is healthy;
 * after a repair the repaired ones are no longer faults of the database,
 * but the report still lists them), -1 with err when the database cannot
 * be read or a repair cannot be written (what was repaired before stays
 * repaired).  The database must exist. */
struct rs_keyring;
/* keys (may be NULL: checksums only) opens each sealed log value. */
int rs_cache_verify(const char *db_path, const struct rs_keyring *keys,
		    bool repair, struct rs_verify_report *report,
		    struct rs_err *err);
void rs_verify_report_free(struct rs_verify_report *report);

const char *rs_fault_kind_name(enum rs_fault_kind kind);

#endif
