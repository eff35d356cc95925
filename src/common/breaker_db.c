/*
 * breaker_db: the `breaker` and `breaker_event` tables (migration 6), see
 * breaker.h.
 *
 * Each write is one BEGIN IMMEDIATE transaction, so a responder's save and
 * resyncctl's command never interleave.  A save never touches command,
 * command_actor or generation: those belong to resyncctl, and a responder
 * that overwrote them could lose a command it has not applied yet.  Every
 * write that adds events trims the breaker's history to the newest
 * RS_BREAKER_DB_EVENTS_MAX in the same transaction.
 */
#include "breaker.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* `origin` of a row resyncctl wrote last. */
#define CLI_ORIGIN "resyncctl"
#define BREAKER_SCHEMA_VERSION 6

/* ---- the info JSON --------------------------------------------------------- */

enum ftype { F_U32, F_U64, F_I64 };

#define FIELD(n, t) { #n, offsetof(struct rs_breaker_info, n), t }
static const struct field {
	const char *key;
	size_t off;
	enum ftype type;
} fields[] = {
	FIELD(retry_after_ms, F_I64),
	FIELD(window_calls, F_U32),
	FIELD(window_failures, F_U32),
	FIELD(window_slow, F_U32),
	FIELD(consecutive_failures, F_U32),
	FIELD(calls, F_U64),
	FIELD(successes, F_U64),
	FIELD(failures, F_U64),
	FIELD(ignored, F_U64),
	FIELD(slow, F_U64),
	FIELD(rejected, F_U64),
	FIELD(opened, F_U64),
	FIELD(half_opened, F_U64),
	FIELD(closed, F_U64),
	FIELD(events_dropped, F_U64),
};
#undef FIELD

static char *info_json(const struct rs_breaker_info *info)
{
	const char *base = (const char *)info;
	json_t *j = json_object();
	json_int_t v;
	char *text;

	for (size_t i = 0; j && i < RS_ARRAY_SIZE(fields); i++) {
		const void *p = base + fields[i].off;

		if (fields[i].type == F_U32)
			v = *(const unsigned *)p;
		else if (fields[i].type == F_U64)
			v = (json_int_t)*(const uint64_t *)p;
		else
			v = *(const int64_t *)p;
		json_object_set_new(j, fields[i].key, json_integer(v));
	}
	text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	return text;
}

int rs_breaker_row_info(const struct rs_breaker_row *row,
			struct rs_breaker_info *out)
{
	char *base = (char *)out;
	json_t *j;

	memset(out, 0, sizeof(*out));
	rs_copy_text(out->name, sizeof(out->name), row->name);
	out->state = row->state;
	out->state_since_ms = row->since_ms;
	if (!row->info_json)
		return 0;
	j = json_loads(row->info_json, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	for (size_t i = 0; i < RS_ARRAY_SIZE(fields); i++) {
		json_int_t v = json_integer_value(json_object_get(j, fields[i].key));
		void *p = base + fields[i].off;

		if (fields[i].type == F_U32)
			*(unsigned *)p = v < 0 ? 0 : (unsigned)v;
		else if (fields[i].type == F_U64)
			*(uint64_t *)p = v < 0 ? 0 : (uint64_t)v;
		else
			*(int64_t *)p = v;
	}
	json_decref(j);
	return 0;
}

/* ---- statements ------------------------------------------------------------ */

/* "database 'PATH': cannot WHAT breaker 'NAME': <sqlite message>" */
static int db_fail(struct rs_db *db, struct rs_err *err, const char *what,
		   const char *name)
{
	return rs_err_set(err, "database '%s': cannot %s breaker '%s': %s",
			  db->path, what, name, sqlite3_errmsg(db->handle));
}

static int prepare(struct rs_db *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(db->handle, sql, -1, st, NULL) == SQLITE_OK ? 0 : -1;
}

/* Bind a string, NULL for NULL or "". */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Run a prepared statement that returns no rows, and finalize it. */
static int step_done(sqlite3_stmt *st)
{
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void column_text(sqlite3_stmt *st, int col, char *dst, size_t n)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	rs_copy_text(dst, n, s ? (const char *)s : "");
}

static int begin(struct rs_db *db)
{
	return sqlite3_exec(db->handle, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
		       SQLITE_OK ? 0 : -1;
}

static int commit(struct rs_db *db)
{
	return sqlite3_exec(db->handle, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ?
		       0 : -1;
}

/* After err has taken sqlite's message, which ROLLBACK would replace. */
static void rollback(struct rs_db *db)
{
	sqlite3_exec(db->handle, "ROLLBACK", NULL, NULL, NULL);
}

static int insert_event(struct rs_db *db, const struct rs_breaker_event *e)
{
	sqlite3_stmt *st = NULL;

	if (prepare(db, "INSERT INTO breaker_event"
			" (name, time_ms, from_state, to_state, reason, actor)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st))
		return -1;
	sqlite3_bind_text(st, 1, e->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, e->time_ms);
	sqlite3_bind_text(st, 3, rs_breaker_state_name(e->from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rs_breaker_state_name(e->to), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->reason, -1, SQLITE_TRANSIENT);
	bind_text(st, 6, e->actor);
	return step_done(st);
}

/* Keep the newest RS_BREAKER_DB_EVENTS_MAX events of `name`. */
static int trim_events(struct rs_db *db, const char *name)
{
	sqlite3_stmt *st = NULL;

	if (prepare(db, "DELETE FROM breaker_event WHERE name = ?1 AND seq <="
			" (SELECT seq FROM breaker_event WHERE name = ?1"
			"  ORDER BY seq DESC LIMIT 1 OFFSET ?2)", &st))
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, RS_BREAKER_DB_EVENTS_MAX);
	return step_done(st);
}

/* Insert events and trim the history of each breaker they name. */
static int add_events(struct rs_db *db, const struct rs_breaker_event *ev,
		      size_t nev)
{
	for (size_t i = 0; i < nev; i++)
		if (insert_event(db, &ev[i]))
			return -1;
	for (size_t i = 0; i < nev; i++) {
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(ev[k].name, ev[i].name) == 0;
		if (!seen && trim_events(db, ev[i].name))
			return -1;
	}
	return 0;
}

/* ---- save ------------------------------------------------------------------ */

static int upsert_state(struct rs_db *db, const char *origin,
			const struct rs_breaker_info *info, const char *json)
{
	sqlite3_stmt *st = NULL;

	if (prepare(db, "INSERT INTO breaker"
			" (name, state, since_ms, updated_ms, origin, info)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			" ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
			" since_ms = excluded.since_ms, updated_ms = excluded.updated_ms,"
			" origin = excluded.origin, info = excluded.info", &st))
		return -1;
	sqlite3_bind_text(st, 1, info->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, rs_breaker_state_name(info->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, info->state_since_ms);
	sqlite3_bind_int64(st, 4, rs_now_ms());
	sqlite3_bind_text(st, 5, origin, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, json, -1, SQLITE_TRANSIENT);
	return step_done(st);
}

int rs_breaker_db_save(struct rs_db *db, const char *origin,
		       const struct rs_breaker_info *info,
		       const struct rs_breaker_event *ev, size_t nev,
		       struct rs_err *err)
{
	char *json;
	int rc = -1;

	if (!info->name[0] || !origin || !*origin)
		return rs_err_set(err, "database '%s': cannot save a breaker without a name and an origin",
				  db->path);
	json = info_json(info);
	if (!json)
		return rs_err_errno(err, ENOMEM, "database '%s': cannot save breaker '%s'",
				    db->path, info->name);
	if (begin(db)) {
		db_fail(db, err, "save", info->name);
		goto out;
	}
	if (upsert_state(db, origin, info, json) || add_events(db, ev, nev) ||
	    commit(db)) {
		db_fail(db, err, "save", info->name);
		rollback(db);
		goto out;
	}
	rc = 0;
out:
	free(json);
	return rc;
}

/* ---- reading rows ---------------------------------------------------------- */

#define ROW_COLUMNS "name, state, since_ms, updated_ms, origin, info," \
	" command, command_actor, generation"

static int read_row(struct rs_db *db, sqlite3_stmt *st, struct rs_breaker_row *row,
		    struct rs_err *err)
{
	const unsigned char *state = sqlite3_column_text(st, 1);
	const unsigned char *info = sqlite3_column_text(st, 5);
	const unsigned char *cmd = sqlite3_column_text(st, 6);

	memset(row, 0, sizeof(*row));
	column_text(st, 0, row->name, sizeof(row->name));
	if (rs_breaker_state_parse((const char *)state, &row->state))
		return rs_err_set(err, "database '%s': breaker '%s' has an unknown state '%s'",
				  db->path, row->name, state ? (const char *)state : "");
	row->since_ms = sqlite3_column_int64(st, 2);
	row->updated_ms = sqlite3_column_int64(st, 3);
	column_text(st, 4, row->origin, sizeof(row->origin));
	row->command = RS_BREAKER_CMD_NONE;
	if (cmd && rs_breaker_command_parse((const char *)cmd, &row->command))
		return rs_err_set(err, "database '%s': breaker '%s' has an unknown command '%s'",
				  db->path, row->name, (const char *)cmd);
	column_text(st, 7, row->command_actor, sizeof(row->command_actor));
	row->generation = sqlite3_column_int64(st, 8);
	if (info && !(row->info_json = strdup((const char *)info)))
		return rs_err_errno(err, ENOMEM, "database '%s': cannot read breaker '%s'",
				    db->path, row->name);
	return 0;
}

void rs_breaker_rows_free(struct rs_breaker_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		free(rows[i].info_json);
	free(rows);
}

int rs_breaker_db_list(struct rs_db *db, struct rs_breaker_row **rows,
		       size_t *n, struct rs_err *err)
{
	struct rs_breaker_row *v = NULL, *grown;
	sqlite3_stmt *st = NULL;
	size_t cap = 0, k = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (db->schema_version < BREAKER_SCHEMA_VERSION)
		return 0;
	if (prepare(db, "SELECT " ROW_COLUMNS " FROM breaker ORDER BY name", &st))
		return db_fail(db, err, "list", "*");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown) {
				rs_err_errno(err, ENOMEM, "database '%s': cannot list breakers",
					     db->path);
				goto fail;
			}
			v = grown;
		}
		if (read_row(db, st, &v[k], err)) {
			free(v[k].info_json);
			goto fail;
		}
		k++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "list", "*");
		goto fail;
	}
	sqlite3_finalize(st);
	*rows = k ? v : NULL;
	if (!k)
		free(v);
	*n = k;
	return 0;
fail:
	sqlite3_finalize(st);
	rs_breaker_rows_free(v, k);
	return -1;
}

int rs_breaker_db_get(struct rs_db *db, const char *name,
		      struct rs_breaker_row *row, struct rs_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -1;

	memset(row, 0, sizeof(*row));
	if (db->schema_version < BREAKER_SCHEMA_VERSION)
		return 1;
	if (prepare(db, "SELECT " ROW_COLUMNS " FROM breaker WHERE name = ?1", &st))
		return db_fail(db, err, "read", name);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = read_row(db, st, row, err) ? -1 : 0;
	else if (rc == SQLITE_DONE)
		ret = 1;
	else
		db_fail(db, err, "read", name);
	if (ret < 0) {
		free(row->info_json);
		row->info_json = NULL;
	}
	sqlite3_finalize(st);
	return ret;
}

/* ---- commands -------------------------------------------------------------- */

static enum rs_breaker_state command_state(enum rs_breaker_command cmd)
{
	switch (cmd) {
	case RS_BREAKER_CMD_OPEN: return RS_BREAKER_FORCED_OPEN;
	case RS_BREAKER_CMD_DISABLE: return RS_BREAKER_DISABLED;
	default: return RS_BREAKER_CLOSED;
	}
}

/* The row's state and since, CLOSED and -1 when it has no row.  A state
 * that does not parse counts as CLOSED: a command is how an operator
 * mends such a row. */
static int current_state(struct rs_db *db, const char *name,
			 enum rs_breaker_state *state, int64_t *since_ms)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*state = RS_BREAKER_CLOSED;
	*since_ms = -1;
	if (prepare(db, "SELECT state, since_ms FROM breaker WHERE name = ?1", &st))
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (rs_breaker_state_parse((const char *)sqlite3_column_text(st, 0), state))
			*state = RS_BREAKER_CLOSED;
		*since_ms = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int upsert_command(struct rs_db *db, const char *name,
			  enum rs_breaker_command cmd, const char *actor,
			  enum rs_breaker_state to, int64_t since_ms, int64_t now_ms)
{
	sqlite3_stmt *st = NULL;

	/* A reset clears the counters: the info goes with them. */
	if (prepare(db, "INSERT INTO breaker (name, state, since_ms, updated_ms, origin,"
			" info, command, command_actor, generation)"
			" VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, 1)"
			" ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
			" since_ms = excluded.since_ms, updated_ms = excluded.updated_ms,"
			" origin = excluded.origin,"
			" info = CASE WHEN ?8 THEN NULL ELSE info END,"
			" command = excluded.command, command_actor = excluded.command_actor,"
			" generation = generation + 1", &st))
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, rs_breaker_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, since_ms);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_text(st, 5, CLI_ORIGIN, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rs_breaker_command_name(cmd), -1, SQLITE_STATIC);
	bind_text(st, 7, actor);
	sqlite3_bind_int(st, 8, cmd == RS_BREAKER_CMD_RESET);
	return step_done(st);
}

static int command_tx(struct rs_db *db, const char *name,
		      enum rs_breaker_command cmd, const char *actor, int64_t now_ms)
{
	struct rs_breaker_event e = { .time_ms = now_ms };
	int64_t since;

	if (current_state(db, name, &e.from, &since))
		return -1;
	e.to = command_state(cmd);
	/* since is the time of the last change of state. */
	if (since < 0 || e.from != e.to)
		since = now_ms;
	rs_copy_text(e.name, sizeof(e.name), name);
	snprintf(e.reason, sizeof(e.reason), "operator command '%s'",
		 rs_breaker_command_name(cmd));
	rs_copy_text(e.actor, sizeof(e.actor), actor ? actor : "");
	if (upsert_command(db, name, cmd, actor, e.to, since, now_ms) ||
	    add_events(db, &e, 1))
		return -1;
	return 0;
}

int rs_breaker_db_command(struct rs_db *db, const char *name,
			  enum rs_breaker_command cmd, const char *actor,
			  int64_t now_ms, struct rs_err *err)
{
	if (!name || !*name || strlen(name) >= RS_BREAKER_NAME_MAX)
		return rs_err_set(err, "database '%s': invalid breaker name '%s'",
				  db->path, name ? name : "");
	if (cmd <= RS_BREAKER_CMD_NONE || cmd > RS_BREAKER_CMD_RESET)
		return rs_err_set(err, "database '%s': breaker '%s': no command given",
				  db->path, name);
	if (begin(db))
		return db_fail(db, err, "command", name);
	if (command_tx(db, name, cmd, actor, now_ms) || commit(db)) {
		db_fail(db, err, "command", name);
		rollback(db);
		return -1;
	}
	return 0;
}

/* ---- history --------------------------------------------------------------- */

static int read_event(struct rs_db *db, sqlite3_stmt *st, struct rs_breaker_event *e,
		      struct rs_err *err)
{
	const char *from = (const char *)sqlite3_column_text(st, 2);
	const char *to = (const char *)sqlite3_column_text(st, 3);

	memset(e, 0, sizeof(*e));
	column_text(st, 0, e->name, sizeof(e->name));
	e->time_ms = sqlite3_column_int64(st, 1);
	if (rs_breaker_state_parse(from, &e->from))
		return rs_err_set(err, "database '%s': an event of breaker '%s' has an unknown state '%s'",
				  db->path, e->name, from ? from : "");
	if (rs_breaker_state_parse(to, &e->to))
		return rs_err_set(err, "database '%s': an event of breaker '%s' has an unknown state '%s'",
				  db->path, e->name, to ? to : "");
	column_text(st, 4, e->reason, sizeof(e->reason));
	column_text(st, 5, e->actor, sizeof(e->actor));
	return 0;
}

int rs_breaker_db_history(struct rs_db *db, const char *name, size_t limit,
			  struct rs_breaker_event **ev, size_t *n,
			  struct rs_err *err)
{
	struct rs_breaker_event *v = NULL, *grown;
	sqlite3_stmt *st = NULL;
	size_t cap = 0, k = 0;
	int rc;

	*ev = NULL;
	*n = 0;
	if (db->schema_version < BREAKER_SCHEMA_VERSION)
		return 0;
	if (prepare(db, "SELECT name, time_ms, from_state, to_state, reason, actor"
			" FROM breaker_event WHERE name = ?1 ORDER BY seq DESC LIMIT ?2", &st))
		return db_fail(db, err, "read the history of", name);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	/* A negative LIMIT is SQLite's "no limit". */
	sqlite3_bind_int64(st, 2, limit == 0 || (uint64_t)limit > (uint64_t)INT64_MAX ? -1 : (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? 2 * cap : 32;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown) {
				rs_err_errno(err, ENOMEM, "database '%s': cannot read the history of breaker '%s'",
					     db->path, name);
				goto fail;
			}
			v = grown;
		}
		if (read_event(db, st, &v[k], err))
			goto fail;
		k++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "read the history of", name);
		goto fail;
	}
	sqlite3_finalize(st);
	if (!k)
		free(v);
	*ev = k ? v : NULL;
	*n = k;
	return 0;
fail:
	sqlite3_finalize(st);
	free(v);
	return -1;
}
