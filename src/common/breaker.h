/*
 * breaker: circuit breakers in front of upstream calls (Resilience4j's
 * model; the seed's CircuitBreakerManager used pybreaker's simple mode).
 *
 * States: CLOSED (calls flow, outcomes recorded), OPEN (calls refused
 * until open_duration has passed), HALF_OPEN (half_open_calls trial calls
 * let through; all succeeding closes, any failing reopens), and the two an
 * operator sets: FORCED_OPEN (every call refused until closed or reset)
 * and DISABLED (every call let through, nothing recorded).
 *
 * What opens a CLOSED breaker depends on `window`:
 *   CONSECUTIVE  fail_max failures in a row (a success resets the count);
 *   COUNT        over the last window_size calls, or
 *   TIME         over the calls of the last window_duration (one-second
 *                buckets), once the window holds minimum_calls calls:
 *                failure rate >= failure_rate_threshold percent, or (when
 *                slow_call_ms > 0) slow-call rate >= slow_call_rate_threshold.
 * A call slower than slow_call_ms is slow whatever its outcome; in
 * HALF_OPEN a slow trial counts as failed when the slow-call rule is on.
 *
 * Outcomes: rs_breaker_classify maps an HTTP status / error kind to
 * SUCCESS, FAILURE or IGNORED.  Transport errors (connect, timeout, tls,
 * reset, partial) and statuses >= 500 and 429 are failures, other
 * statuses successes, unless listed in `exclude` ("503", "5xx",
 * "timeout"), which makes them IGNORED: not recorded, and a half-open
 * permit they held is handed back.
 *
 * Time is passed in (now_ms, monotonic milliseconds) so tests drive it.
 * All functions taking a struct rs_breaker * are thread-safe (one mutex
 * per breaker, held for O(1) work, never during I/O).
 *
 * Every transition is counted, and queued as a struct rs_breaker_event
 * (bounded queue: the oldest is dropped, and counted, when a reader is
 * late) for the responder to log, audit and persist; rs_breaker_take_events
 * drains it.
 *
 * Persistence (the `breaker` and `breaker_event` tables, migration 6):
 * rs_breaker_db_* below.  The responder saves each breaker's state with its
 * events about once a second and loads it at start-up, so an open breaker
 * stays open across a restart.  resyncctl writes commands (open, close,
 * disable, reset) into the `breaker` row with a higher `generation`; the
 * responder polls rows every second and applies commands it has not seen.
 */
#ifndef RS_BREAKER_H
#define RS_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "err.h"

#define RS_BREAKER_NAME_MAX 64
#define RS_BREAKER_REASON_MAX 96
#define RS_BREAKER_EVENT_QUEUE 64
/* Events kept per breaker in the breaker_event table; older ones are
 * deleted by the write that goes past it. */
#define RS_BREAKER_DB_EVENTS_MAX 1000

enum rs_breaker_state {
	RS_BREAKER_CLOSED,
	RS_BREAKER_OPEN,
	RS_BREAKER_HALF_OPEN,
	RS_BREAKER_FORCED_OPEN,
	RS_BREAKER_DISABLED,
};

enum rs_breaker_window {
	RS_BREAKER_CONSECUTIVE,
	RS_BREAKER_COUNT,
	RS_BREAKER_TIME,
};

enum rs_breaker_outcome {
	RS_BREAKER_SUCCESS,
	RS_BREAKER_FAILURE,
	RS_BREAKER_IGNORED,
};

/* Kinds of transport error an upstream call can end with (0 = none: the
 * call got an HTTP status). */
enum rs_call_error {
	RS_CALL_OK = 0,
	RS_CALL_CONNECT,      /* could not connect (refused, DNS, no route) */
	RS_CALL_TIMEOUT,      /* connect or transfer timed out */
	RS_CALL_TLS,          /* handshake or verification failed */
	RS_CALL_RESET,        /* connection reset / closed mid-answer */
	RS_CALL_PARTIAL,      /* body shorter than announced, or malformed */
	RS_CALL_EXHAUSTED,    /* no pooled connection within the wait; local,
			       * never counted by a breaker */
};

/* Operator commands (resyncctl breaker VERB). */
enum rs_breaker_command {
	RS_BREAKER_CMD_NONE,
	RS_BREAKER_CMD_OPEN,      /* -> FORCED_OPEN */
	RS_BREAKER_CMD_CLOSE,     /* -> CLOSED, window kept */
	RS_BREAKER_CMD_DISABLE,   /* -> DISABLED */
	RS_BREAKER_CMD_RESET,     /* -> CLOSED, window and counters cleared */
};

struct rs_breaker_options {
	char name[RS_BREAKER_NAME_MAX];
	enum rs_breaker_window window;
	unsigned fail_max;
	unsigned window_size;             /* COUNT: calls */
	int64_t window_ms;                /* TIME: span, whole seconds */
	unsigned failure_rate_pct;        /* 1..100 */
	int64_t slow_call_ms;             /* 0 = off */
	unsigned slow_call_rate_pct;      /* 1..100 */
	unsigned minimum_calls;
	int64_t open_ms;
	unsigned half_open_calls;
	int64_t max_wait_half_open_ms;    /* 0 = wait for the trials */
	/* exclude: statuses (exact or class) and error kinds */
	unsigned short exclude_status[16];
	size_t nexclude_status;
	unsigned exclude_class;           /* bit c set: cxx excluded (1..5) */
	unsigned exclude_errors;          /* bit (1 << enum rs_call_error) */
};

struct rs_breaker_event {
	char name[RS_BREAKER_NAME_MAX];
	int64_t time_ms;                  /* wall clock, for logs and the table */
	enum rs_breaker_state from, to;
	char reason[RS_BREAKER_REASON_MAX]; /* "failure rate 60% >= 50% over 20 calls" */
	char actor[RS_BREAKER_NAME_MAX];    /* "" = the breaker itself */
};

struct rs_breaker_info {
	char name[RS_BREAKER_NAME_MAX];
	enum rs_breaker_state state;
	int64_t state_since_ms;           /* wall clock of the last transition */
	int64_t retry_after_ms;           /* OPEN: ms until trial calls; else 0 */
	/* the current window (CONSECUTIVE: consecutive_failures only) */
	unsigned window_calls, window_failures, window_slow;
	unsigned consecutive_failures;
	/* since start (or reset); calls = successes + failures + ignored,
	 * the calls that ended (none while DISABLED) */
	uint64_t calls, successes, failures, ignored, slow, rejected;
	uint64_t opened, half_opened, closed;  /* transitions into each */
	uint64_t events_dropped;
};

struct rs_breaker;

/* Fill opts from a [breaker NAME] section's values, or defaults for an
 * upstream's implicit breaker: see rs_breaker_options_default and the
 * parse helper below. */
void rs_breaker_options_default(struct rs_breaker_options *o, const char *name);
/* From a [breaker NAME] section (every key; defaults for unset ones come
 * from the schema via the section's values, else rs_breaker_options_default);
 * sec NULL gives the defaults under `name` (an upstream's implicit
 * breaker).  -1 with err naming the section and item on a bad exclude. */
int rs_breaker_options_from_conf(struct rs_breaker_options *o, const char *name,
				 const struct rs_conf_section *sec,
				 struct rs_err *err);
/* Parse one `exclude` item ("503", "5xx", "timeout") into o; -1 with err
 * naming the item when it is not one. */
int rs_breaker_exclude_add(struct rs_breaker_options *o, const char *item,
			   struct rs_err *err);

int rs_breaker_new(struct rs_breaker **out, const struct rs_breaker_options *o,
		   struct rs_err *err);
void rs_breaker_free(struct rs_breaker *b);
const char *rs_breaker_name(const struct rs_breaker *b);

/* May a call go ahead now?  true: go, and report its end with
 * rs_breaker_record (exactly once).  false: refused (counted); when
 * retry_after_ms is not NULL it gets the ms until the breaker may let a
 * trial through (0 when unknown, as FORCED_OPEN). */
bool rs_breaker_acquire(struct rs_breaker *b, int64_t now_ms,
			int64_t *retry_after_ms);
/* Report the end of a call rs_breaker_acquire admitted. */
void rs_breaker_record(struct rs_breaker *b, int64_t now_ms,
		       enum rs_breaker_outcome outcome, int64_t duration_ms);
enum rs_breaker_outcome rs_breaker_classify(const struct rs_breaker *b,
					    long http_status,
					    enum rs_call_error error);

/* Apply an operator command; actor names who ("alice via resyncctl"). */
void rs_breaker_command(struct rs_breaker *b, enum rs_breaker_command cmd,
			const char *actor, int64_t now_ms);
/* Restore a persisted state at start-up (OPEN keeps its remaining open
 * time, measured from since_wall_ms); no event is queued. */
void rs_breaker_restore(struct rs_breaker *b, enum rs_breaker_state state,
			int64_t since_wall_ms, int64_t now_ms);

void rs_breaker_info(struct rs_breaker *b, int64_t now_ms,
		     struct rs_breaker_info *out);
/* Move up to max queued events into out; returns how many. */
size_t rs_breaker_take_events(struct rs_breaker *b, struct rs_breaker_event *out,
			      size_t max);

const char *rs_breaker_state_name(enum rs_breaker_state s);  /* "closed", "half_open" ... */
int rs_breaker_state_parse(const char *s, enum rs_breaker_state *out);
const char *rs_breaker_command_name(enum rs_breaker_command c); /* "open" ... */
int rs_breaker_command_parse(const char *s, enum rs_breaker_command *out);
const char *rs_call_error_name(enum rs_call_error e);        /* "connect" ... */

/*
 * Persistence.  Table `breaker`: name PK, state, since_ms, updated_ms,
 * origin (who wrote last: a responder's instance id or "resyncctl"),
 * info JSON (the counters of rs_breaker_info), command (pending operator
 * command name or NULL), command_actor, generation (incremented by every
 * command write).  Table `breaker_event`: seq PK, name, time_ms,
 * from_state, to_state, reason, actor.
 */
struct rs_breaker_row {
	char name[RS_BREAKER_NAME_MAX];
	enum rs_breaker_state state;
	int64_t since_ms, updated_ms;
	char origin[64];
	char *info_json;                  /* malloc'd or NULL */
	enum rs_breaker_command command;
	char command_actor[RS_BREAKER_NAME_MAX];
	int64_t generation;
};
void rs_breaker_rows_free(struct rs_breaker_row *rows, size_t n);
/* The info a row holds: name, state, since and the counters of its info
 * JSON (retry_after_ms as it was when the row was saved).  -1 when the
 * JSON is malformed (the counters are then left 0). */
int rs_breaker_row_info(const struct rs_breaker_row *row,
			struct rs_breaker_info *out);

/* Write a responder's current state (and its events) in one transaction;
 * the row's command/generation are left as they are. */
int rs_breaker_db_save(struct rs_db *db, const char *origin,
		       const struct rs_breaker_info *info,
		       const struct rs_breaker_event *ev, size_t nev,
		       struct rs_err *err);
/* Every row, ordered by name (*rows NULL when n is 0; free them with
 * rs_breaker_rows_free).  A database older than migration 6 has none. */
int rs_breaker_db_list(struct rs_db *db, struct rs_breaker_row **rows,
		       size_t *n, struct rs_err *err);
/* One row; 0 found, 1 absent, -1 error.  On 0 the caller frees
 * row->info_json. */
int rs_breaker_db_get(struct rs_db *db, const char *name,
		      struct rs_breaker_row *row, struct rs_err *err);
/* Record an operator command for the responder to apply (creating the row
 * when no responder has written one yet) and an event with the actor; the
 * row's state is updated to what the command leads to, so `breaker show`
 * answers correctly with no responder running.  now_ms is wall-clock
 * time (the row's since/updated and the event's time). */
int rs_breaker_db_command(struct rs_db *db, const char *name,
			  enum rs_breaker_command cmd, const char *actor,
			  int64_t now_ms, struct rs_err *err);
/* Events of one breaker, newest first, at most limit (0: all); *ev is
 * malloc'd (NULL when n is 0) and the caller frees it. */
int rs_breaker_db_history(struct rs_db *db, const char *name, size_t limit,
			  struct rs_breaker_event **ev, size_t *n,
			  struct rs_err *err);

#endif
