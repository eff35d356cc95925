/*
 * breakers: the responder's side of the `breaker` table.
 *
 * At start-up each breaker takes the state its row holds (an open breaker
 * stays open across a restart) and the row's command generation as seen.
 * Then, every second from the housekeeping thread: transitions are
 * logged and saved with their events; operator commands resyncctl wrote
 * (a row whose generation went up) are applied; a breaker's counters are
 * saved at least every SAVE_EVERY_MS so `resyncctl breaker show` is
 * current.  Several responders on one database each apply a command once.
 * With sync = off there is no database: transitions are only logged.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "util.h"

#define SAVE_EVERY_MS 5000
#define EVENTS_PER_SYNC RS_BREAKER_EVENT_QUEUE

struct seen {
	int64_t generation;
	int64_t saved_ms;
};

static struct seen *seen;          /* one per breaker, housekeeping only */
static size_t nseen;

static struct rs_breaker_row *find_row(struct rs_breaker_row *rows, size_t n,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

int breakers_load(struct server *s, struct rs_err *err)
{
	struct rs_db_options o = { .flags = RS_DB_NOCREATE };
	struct rs_breaker_row *rows = NULL;
	struct rs_db *db = NULL;
	size_t n = 0, nb = rs_upstreams_nbreakers(s->ups);
	int64_t now = rs_monotonic_ms();

	if (!nb)
		return 0;
	if (!(seen = calloc(nb, sizeof(*seen))))
		return rs_err_set(err, "out of memory");
	nseen = nb;
	if (s->sync == RS_WAL_SYNC_OFF)
		return 0;
	if (rs_db_open(&db, s->db_path, &o, err) < 0 ||
	    rs_breaker_db_list(db, &rows, &n, err) < 0) {
		rs_db_close(db);
		return -1;
	}
	for (size_t i = 0; i < nb; i++) {
		struct rs_breaker *b = rs_upstreams_breaker_at(s->ups, i);
		struct rs_breaker_row *row = find_row(rows, n, rs_breaker_name(b));

		if (!row)
			continue;
		seen[i].generation = row->generation;
		rs_breaker_restore(b, row->state, row->since_ms, now);
		if (row->state != RS_BREAKER_CLOSED)
			RS_LOG(RS_LOG_NOTICE, NULL, "circuit breaker %s starts %s, as saved",
			       row->name, rs_breaker_state_name(row->state));
	}
	rs_breaker_rows_free(rows, n);
	rs_db_close(db);
	return 0;
}

static void log_events(struct server *s, const struct rs_breaker_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		RS_LOG(ev[i].to == RS_BREAKER_CLOSED ? RS_LOG_NOTICE : RS_LOG_WARNING, NULL,
		       "circuit breaker %s: %s -> %s (%s%s%s)", ev[i].name,
		       rs_breaker_state_name(ev[i].from), rs_breaker_state_name(ev[i].to),
		       ev[i].reason, ev[i].actor[0] ? ", by " : "", ev[i].actor);
		audit_system(s, "breaker.transition", RS_AUDIT_SUCCESS, ev[i].name,
			     json_pack("{s:s,s:s,s:s,s:s?}", "from", rs_breaker_state_name(ev[i].from),
				       "to", rs_breaker_state_name(ev[i].to), "reason", ev[i].reason,
				       "by", ev[i].actor[0] ? ev[i].actor : NULL));
	}
}

/* Log breaker i's queued transitions and, with a database, save its
 * state with them (when there are any, or when force).  Events taken but
 * not saved are logged, not retried: the state saved next is still
 * right. */
static int flush(struct server *s, struct rs_db *db, size_t i, int64_t now,
		 bool force, struct rs_err *err)
{
	struct rs_breaker *b = rs_upstreams_breaker_at(s->ups, i);
	struct rs_breaker_event ev[EVENTS_PER_SYNC];
	size_t n = rs_breaker_take_events(b, ev, EVENTS_PER_SYNC);
	struct rs_breaker_info bi;

	log_events(s, ev, n);
	if (!db || (!n && !force))
		return 0;
	rs_breaker_info(b, now, &bi);
	if (rs_breaker_db_save(db, s->origin, &bi, ev, n, err) < 0)
		return -1;
	seen[i].saved_ms = now;
	return 0;
}

/* Apply commands newer than what we saw; 0 or -1 with err. */
static int apply_commands(struct server *s, struct rs_db *db, struct rs_err *err)
{
	struct rs_breaker_row *rows = NULL;
	size_t n = 0;
	int64_t now = rs_monotonic_ms();
	int rc = 0;

	if (rs_breaker_db_list(db, &rows, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < nseen; i++) {
		struct rs_breaker *b = rs_upstreams_breaker_at(s->ups, i);
		struct rs_breaker_row *row = find_row(rows, n, rs_breaker_name(b));
		struct rs_breaker_event ev[EVENTS_PER_SYNC];

		if (!row || row->generation <= seen[i].generation)
			continue;
		seen[i].generation = row->generation;
		if (row->command == RS_BREAKER_CMD_NONE)
			continue;
		/* transitions before the command are saved as usual; the
		 * command's own event resyncctl wrote itself: log ours only */
		if (flush(s, db, i, now, false, err) < 0)
			rc = -1;
		rs_breaker_command(b, row->command, row->command_actor, now);
		log_events(s, ev, rs_breaker_take_events(b, ev, EVENTS_PER_SYNC));
		seen[i].saved_ms = 0;      /* save the new state now */
	}
	rs_breaker_rows_free(rows, n);
	return rc;
}

int breakers_sync(struct server *s, struct rs_db *db, struct rs_err *err)
{
	int64_t now = rs_monotonic_ms();
	int rc = db ? apply_commands(s, db, err) : 0;

	for (size_t i = 0; i < nseen; i++) {
		bool due = !seen[i].saved_ms || now - seen[i].saved_ms >= SAVE_EVERY_MS;

		if (flush(s, db, i, now, due, err) < 0)
			rc = -1;
	}
	return rc;
}

void breakers_free(void)
{
	free(seen);
	seen = NULL;
	nseen = 0;
}
