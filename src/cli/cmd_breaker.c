/*
 * resyncctl breaker: look at and steer the circuit breakers.
 *
 * Like `cache`, every verb works on the database, never on a responder:
 * list, show and history read the `breaker` tables (opened read-only, so
 * the database must exist); open, close, disable and reset write a
 * command into the breaker's row, which a running responder polls for
 * and applies within a second, and set the row's state, so that `show`
 * answers at once with or without a responder.  A breaker is known when
 * the configuration defines it ([breaker NAME], or the implicit one of an
 * [upstream NAME] that no [breaker] without routes covers) or when the
 * table has a row for it.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "breaker.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "util.h"
#include "xalloc.h"

#define HISTORY_LIMIT_DEFAULT 20

/* Only these sections' errors stop a breaker command: one typo in an
 * unrelated section must not keep an operator from opening a breaker. */
static const char *const sections[] = { "persistence", "breaker", NULL };

struct known {
	char name[RS_BREAKER_NAME_MAX];
	const char *upstream;           /* NULL: not in the configuration */
	bool implicit;                  /* an [upstream]'s own breaker */
	const struct rs_breaker_row *row;  /* NULL: never saved */
};

struct run {
	struct cmd_ctx *ctx;
	struct rs_config *cfg;
	const char *db_path;            /* --db, else [persistence] db */
	bool db_exists;
	struct rs_breaker_row *rows;    /* the table, by name */
	size_t nrows;
	struct known *k;                /* configured and saved, by name */
	size_t nk;
};

/* ---- what is known ----------------------------------------------------- */

static struct known *find(struct run *r, const char *name)
{
	for (size_t i = 0; i < r->nk; i++)
		if (strcmp(r->k[i].name, name) == 0)
			return &r->k[i];
	return NULL;
}

static struct known *add(struct run *r, const char *name)
{
	struct known *k = find(r, name);

	if (k)
		return k;
	r->k = xrealloc(r->k, (r->nk + 1) * sizeof(*r->k));
	k = memset(&r->k[r->nk++], 0, sizeof(*k));
	rs_copy_text(k->name, sizeof(k->name), name);
	return k;
}

static const char *conf_str(const struct rs_conf_section *s, const char *key)
{
	const struct rs_conf_value *v = rs_conf_get(s, key);

	return v && v->ok ? v->str : NULL;
}

static bool is_type(const struct rs_conf_section *s, const char *type)
{
	return s->name && strcmp(s->schema->name, type) == 0;
}

/* Does a [breaker] without routes guard every call to `upstream`? */
static bool covered(const struct rs_config *cfg, const char *upstream)
{
	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);
		const struct rs_conf_value *routes;
		const char *up;

		if (!is_type(s, "breaker"))
			continue;
		up = conf_str(s, "upstream");
		routes = rs_conf_get(s, "routes");
		if (up && strcmp(up, upstream) == 0 && (!routes || routes->nitems == 0))
			return true;
	}
	return false;
}

static void add_configured(struct run *r)
{
	size_t i, n = rs_config_nsections(r->cfg);

	for (i = 0; i < n; i++) {
		const struct rs_conf_section *s = rs_config_section_at(r->cfg, i);

		if (is_type(s, "breaker"))
			add(r, s->name)->upstream = conf_str(s, "upstream");
	}
	/* After the named ones: an explicit [breaker X] wins over the
	 * implicit breaker of an [upstream X]. */
	for (i = 0; i < n; i++) {
		const struct rs_conf_section *s = rs_config_section_at(r->cfg, i);
		struct known *k;

		if (!is_type(s, "upstream") || covered(r->cfg, s->name) || find(r, s->name))
			continue;
		k = add(r, s->name);
		k->upstream = s->name;
		k->implicit = true;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct known *)a)->name, ((const struct known *)b)->name);
}

/* The table's rows, read-only, each added to the known breakers. */
static int load_rows(struct run *r)
{
	struct rs_db_options ro = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db;
	int rc;

	if (rs_db_open(&db, r->db_path, &ro, &err)) {
		cmd_error(r->ctx, "%s", err.msg);
		return CMD_FAIL;
	}
	rc = rs_breaker_db_list(db, &r->rows, &r->nrows, &err);
	rs_db_close(db);
	if (rc) {
		cmd_error(r->ctx, "%s", err.msg);
		return CMD_FAIL;
	}
	for (size_t i = 0; i < r->nrows; i++)
		add(r, r->rows[i].name)->row = &r->rows[i];
	return CMD_OK;
}

/* The configuration, the table when there is a database, and the merged
 * list of known breakers.  CMD_OK or the exit code (message printed);
 * call finish after either way. */
static int setup(struct cmd_ctx *ctx, struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	r->cfg = cmd_load_config(ctx, sections);
	if (!r->cfg)
		return CMD_FAIL;
	r->db_path = ctx->g.db ? ctx->g.db : rs_config_str(r->cfg, "persistence", "db");
	r->db_exists = access(r->db_path, F_OK) == 0;
	add_configured(r);
	if (r->db_exists && load_rows(r) != CMD_OK)
		return CMD_FAIL;
	if (r->nk)
		qsort(r->k, r->nk, sizeof(*r->k), by_name);
	return CMD_OK;
}

static int finish(struct run *r, int rc)
{
	free(r->k);
	rs_breaker_rows_free(r->rows, r->nrows);
	rs_config_free(r->cfg);
	return rc;
}

/* The read verbs, like the cache's, refuse to run without a database. */
static int need_db(struct run *r)
{
	if (r->db_exists)
		return CMD_OK;
	cmd_error(r->ctx, "cannot open '%s': %s", r->db_path, strerror(ENOENT));
	return CMD_FAIL;
}

/* The breaker named on the command line, or NULL after saying which are
 * known. */
static const struct known *lookup(struct run *r, const char *name)
{
	const struct known *k = find(r, name);
	size_t len = 0, i;
	char *list;

	if (k)
		return k;
	for (i = 0; i < r->nk; i++)
		len += strlen(r->k[i].name) + 2;
	list = xcalloc(len + 1, 1);
	for (i = 0; i < r->nk; i++) {
		strcat(list, i ? ", " : "");
		strcat(list, r->k[i].name);
	}
	if (r->nk)
		cmd_error(r->ctx, "unknown breaker '%s'; known breakers: %s", name, list);
	else
		cmd_error(r->ctx, "unknown breaker '%s'; no breaker is configured in '%s' or saved in '%s'",
			  name, rs_config_path(r->cfg), r->db_path);
	free(list);
	return NULL;
}

/* ---- showing a breaker ---------------------------------------------------- */

static json_t *json_time(int64_t ms)
{
	char t[32];

	if (ms <= 0)
		return json_null();
	rs_format_utc(ms, t, sizeof(t));
	return json_string(t);
}

static json_t *json_text(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* When an OPEN breaker lets trial calls through, as its row last said. */
static int64_t open_until(const struct known *k, const struct rs_breaker_info *in)
{
	if (!k->row || in->state != RS_BREAKER_OPEN || in->retry_after_ms <= 0)
		return 0;
	return k->row->updated_ms + in->retry_after_ms;
}

#define SET(j, key, v) json_object_set_new((j), (key), (v))
#define NUM(v) json_integer((json_int_t)(v))

static json_t *breaker_json(const struct known *k)
{
	const struct rs_breaker_row *row = k->row;
	struct rs_breaker_info in = { .state = RS_BREAKER_CLOSED };
	json_t *j = json_object();

	if (row)
		rs_breaker_row_info(row, &in);
	SET(j, "name", json_string(k->name));
	SET(j, "state", json_string(rs_breaker_state_name(in.state)));
	SET(j, "configured", json_boolean(k->upstream != NULL));
	SET(j, "upstream", json_text(k->upstream));
	SET(j, "implicit", json_boolean(k->implicit));
	SET(j, "saved", json_boolean(row != NULL));
	SET(j, "since", json_time(row ? row->since_ms : 0));
	SET(j, "updated", json_time(row ? row->updated_ms : 0));
	SET(j, "origin", json_text(row ? row->origin : NULL));
	SET(j, "open_until", json_time(open_until(k, &in)));
	SET(j, "calls", NUM(in.calls));
	SET(j, "successes", NUM(in.successes));
	SET(j, "failures", NUM(in.failures));
	SET(j, "ignored", NUM(in.ignored));
	SET(j, "slow", NUM(in.slow));
	SET(j, "rejected", NUM(in.rejected));
	SET(j, "window_calls", NUM(in.window_calls));
	SET(j, "window_failures", NUM(in.window_failures));
	SET(j, "window_slow", NUM(in.window_slow));
	SET(j, "consecutive_failures", NUM(in.consecutive_failures));
	SET(j, "opened", NUM(in.opened));
	SET(j, "half_opened", NUM(in.half_opened));
	SET(j, "closed", NUM(in.closed));
	SET(j, "events_dropped", NUM(in.events_dropped));
	SET(j, "command", row && row->command ?
		json_string(rs_breaker_command_name(row->command)) : json_null());
	SET(j, "command_actor", json_text(row ? row->command_actor : NULL));
	SET(j, "generation", NUM(row ? row->generation : 0));
	return j;
}

/* Two units at most: "42s", "4m59s", "2h05m". */
static void human(int64_t ms, char *buf, size_t n)
{
	int64_t s = (ms + 999) / 1000;

	if (s < 60)
		snprintf(buf, n, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
}

/* What the list's NOTE column says. */
static void note(const struct known *k, const struct rs_breaker_info *in,
		 char *buf, size_t n)
{
	int64_t until = open_until(k, in), now = rs_now_ms();
	char d[32];

	buf[0] = '\0';
	if (!k->row) {
		snprintf(buf, n, "no data yet");
	} else if (until > now) {
		human(until - now, d, sizeof(d));
		snprintf(buf, n, "trial calls in %s", d);
	} else if ((in->state == RS_BREAKER_FORCED_OPEN || in->state == RS_BREAKER_DISABLED) &&
		   k->row->command_actor[0]) {
		snprintf(buf, n, "by %s", k->row->command_actor);
	}
	if (!k->upstream)
		snprintf(buf + strlen(buf), n - strlen(buf), "%snot in the configuration",
			 buf[0] ? "; " : "");
}

static void list_text(const struct run *r)
{
	char since[32], nb[160];

	if (r->nk && r->ctx->g.verbosity >= 0)
		printf("%-20s %-12s %-20s %10s %10s %10s  %s\n", "NAME", "STATE", "SINCE",
		       "CALLS", "FAILURES", "REJECTED", "NOTE");
	for (size_t i = 0; i < r->nk; i++) {
		const struct known *k = &r->k[i];
		struct rs_breaker_info in = { .state = RS_BREAKER_CLOSED };

		if (k->row)
			rs_breaker_row_info(k->row, &in);
		rs_format_utc(k->row ? k->row->since_ms : 0, since, sizeof(since));
		note(k, &in, nb, sizeof(nb));
		if (k->row)
			printf("%-20s %-12s %-20s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "  %s\n",
			       k->name, rs_breaker_state_name(in.state), since, in.calls,
			       in.failures, in.rejected, nb);
		else
			printf("%-20s %-12s %-20s %10s %10s %10s  %s\n", k->name,
			       rs_breaker_state_name(in.state), since, "-", "-", "-", nb);
	}
}

static void show_text(const struct known *k)
{
	const struct rs_breaker_row *row = k->row;
	struct rs_breaker_info in = { .state = RS_BREAKER_CLOSED };
	char t[32], d[32];
	int64_t until;

	printf("breaker      %s\n", k->name);
	if (k->upstream)
		printf("upstream     %s%s\n", k->upstream,
		       k->implicit ? " (the upstream's own breaker)" : "");
	else
		printf("upstream     - (not in the configuration)\n");
	if (!row) {
		printf("state        closed (no data yet: no responder has saved it)\n");
		return;
	}
	rs_breaker_row_info(row, &in);
	until = open_until(k, &in);
	rs_format_utc(row->since_ms, t, sizeof(t));
	printf("state        %s since %s", rs_breaker_state_name(in.state), t);
	if (until > rs_now_ms()) {
		human(until - rs_now_ms(), d, sizeof(d));
		printf(" (trial calls in %s)", d);
	}
	rs_format_utc(row->updated_ms, t, sizeof(t));
	printf("\nupdated      %s by %s\n", t, row->origin);
	printf("calls        %" PRIu64 ": %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64
	       " ignored, %" PRIu64 " slow; %" PRIu64 " rejected\n", in.calls, in.successes,
	       in.failures, in.ignored, in.slow, in.rejected);
	printf("window       %u calls, %u failed, %u slow; %u consecutive failures\n",
	       in.window_calls, in.window_failures, in.window_slow, in.consecutive_failures);
	printf("transitions  opened %" PRIu64 ", half-opened %" PRIu64 ", closed %" PRIu64 "\n",
	       in.opened, in.half_opened, in.closed);
	if (row->command)
		printf("command      %s by %s (generation %" PRId64 ")\n",
		       rs_breaker_command_name(row->command),
		       row->command_actor[0] ? row->command_actor : "-", row->generation);
}

/* ---- list, show, history ---------------------------------------------------- */

static int run_list(struct cmd_ctx *ctx)
{
	struct run r;
	int rc;

	if ((rc = setup(ctx, &r)) != CMD_OK || (rc = need_db(&r)) != CMD_OK)
		return finish(&r, rc);
	if (ctx->g.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < r.nk; i++)
			json_array_append_new(arr, breaker_json(&r.k[i]));
		cmd_print_json(json_pack("{s:o}", "breakers", arr));
	} else {
		list_text(&r);
	}
	return finish(&r, CMD_OK);
}

static int run_show(struct cmd_ctx *ctx)
{
	const struct known *k;
	struct run r;
	int rc;

	if ((rc = setup(ctx, &r)) != CMD_OK || (rc = need_db(&r)) != CMD_OK)
		return finish(&r, rc);
	if (!(k = lookup(&r, ctx->argv[0])))
		return finish(&r, CMD_FAIL);
	if (ctx->g.json)
		cmd_print_json(breaker_json(k));
	else
		show_text(k);
	return finish(&r, CMD_OK);
}

static void history_out(struct cmd_ctx *ctx, const char *name,
			const struct rs_breaker_event *ev, size_t n)
{
	json_t *arr = ctx->g.json ? json_array() : NULL;
	char t[32];

	if (!arr && n && ctx->g.verbosity >= 0)
		printf("%-20s %-12s %-12s %-24s %s\n", "TIME", "FROM", "TO", "ACTOR", "REASON");
	for (size_t i = 0; i < n; i++) {
		const char *from = rs_breaker_state_name(ev[i].from);
		const char *to = rs_breaker_state_name(ev[i].to);

		rs_format_utc(ev[i].time_ms, t, sizeof(t));
		if (arr)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:s}",
				"time", t, "from", from, "to", to,
				"actor", json_text(ev[i].actor), "reason", ev[i].reason));
		else
			printf("%-20s %-12s %-12s %-24s %s\n", t, from, to,
			       ev[i].actor[0] ? ev[i].actor : "-", ev[i].reason);
	}
	if (arr)
		cmd_print_json(json_pack("{s:s,s:o}", "name", name, "events", arr));
	else if (!n && ctx->g.verbosity >= 0)
		cmd_error(ctx, "breaker '%s' has no events yet", name);
}

static int run_history(struct cmd_ctx *ctx)
{
	struct rs_db_options ro = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };
	const char *lim = cmd_opt(ctx, "limit"), *why = NULL;
	int64_t limit = HISTORY_LIMIT_DEFAULT;
	struct rs_breaker_event *ev = NULL;
	struct rs_err err = RS_ERR_INIT;
	const struct known *k;
	struct rs_db *db;
	struct run r;
	size_t n = 0;
	int rc;

	if (lim && (rs_parse_int64(lim, &limit, &why) || limit < 0))
		return cmd_usage_error(ctx, "bad --limit '%s': %s", lim,
				       why ? why : "must be 0 (all) or more");
	if ((rc = setup(ctx, &r)) != CMD_OK || (rc = need_db(&r)) != CMD_OK)
		return finish(&r, rc);
	if (!(k = lookup(&r, ctx->argv[0])))
		return finish(&r, CMD_FAIL);
	if (rs_db_open(&db, r.db_path, &ro, &err) == 0) {
		rc = rs_breaker_db_history(db, k->name, (size_t)limit, &ev, &n, &err);
		rs_db_close(db);
	} else {
		rc = -1;
	}
	if (rc) {
		cmd_error(ctx, "%s", err.msg);
		return finish(&r, CMD_FAIL);
	}
	history_out(ctx, k->name, ev, n);
	free(ev);
	return finish(&r, CMD_OK);
}

/* ---- open, close, disable, reset --------------------------------------------- */

/* "<user> via resyncctl", the user being who runs it (the effective one:
 * under sudo, root, as sudo's own log says). */
static void actor(char *buf, size_t n)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name && *pw->pw_name)
		snprintf(buf, n, "%s via resyncctl", pw->pw_name);
	else
		snprintf(buf, n, "uid %ld via resyncctl", (long)geteuid());
}

static void command_out(struct cmd_ctx *ctx, enum rs_breaker_command cmd,
			const char *name, enum rs_breaker_state from,
			const struct rs_breaker_row *row)
{
	static const char *const done[] = {
		[RS_BREAKER_CMD_OPEN] = "opened",
		[RS_BREAKER_CMD_CLOSE] = "closed",
		[RS_BREAKER_CMD_DISABLE] = "disabled",
		[RS_BREAKER_CMD_RESET] = "reset (counters cleared)",
	};

	if (ctx->g.json) {
		cmd_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name", name,
			"command", rs_breaker_command_name(cmd),
			"from", rs_breaker_state_name(from), "to", rs_breaker_state_name(row->state),
			"actor", row->command_actor, "generation", (json_int_t)row->generation));
		return;
	}
	if (ctx->g.verbosity < 0)
		return;
	printf("breaker '%s' %s: %s -> %s, by %s; a running responder applies it within a second\n",
	       name, done[cmd], rs_breaker_state_name(from), rs_breaker_state_name(row->state),
	       row->command_actor);
}

static int run_command(struct cmd_ctx *ctx, enum rs_breaker_command cmd)
{
	struct rs_breaker_row after;
	struct rs_err err = RS_ERR_INIT;
	enum rs_breaker_state from;
	const struct known *k;
	struct rs_db *db;
	char who[RS_BREAKER_NAME_MAX];
	struct run r;
	int rc;

	if ((rc = setup(ctx, &r)) != CMD_OK)
		return finish(&r, rc);
	if (!(k = lookup(&r, ctx->argv[0])))
		return finish(&r, CMD_FAIL);
	from = k->row ? k->row->state : RS_BREAKER_CLOSED;
	actor(who, sizeof(who));
	/* Read-write: creates the database, or brings it to migration 6. */
	if (rs_db_open(&db, r.db_path, NULL, &err)) {
		cmd_error(ctx, "%s", err.msg);
		return finish(&r, CMD_FAIL);
	}
	rc = rs_breaker_db_command(db, k->name, cmd, who, rs_now_ms(), &err);
	if (rc == 0)
		rc = rs_breaker_db_get(db, k->name, &after, &err) == 0 ? 0 : -1;
	rs_db_close(db);
	if (rc) {
		cmd_error(ctx, "%s", err.msg[0] ? err.msg : "the command's row went missing");
		return finish(&r, CMD_FAIL);
	}
	command_out(ctx, cmd, k->name, from, &after);
	free(after.info_json);
	return finish(&r, CMD_OK);
}

static int run_open(struct cmd_ctx *ctx)
{
	return run_command(ctx, RS_BREAKER_CMD_OPEN);
}

static int run_close(struct cmd_ctx *ctx)
{
	return run_command(ctx, RS_BREAKER_CMD_CLOSE);
}

static int run_disable(struct cmd_ctx *ctx)
{
	return run_command(ctx, RS_BREAKER_CMD_DISABLE);
}

static int run_reset(struct cmd_ctx *ctx)
{
	return run_command(ctx, RS_BREAKER_CMD_RESET);
}

/* ---- the table ------------------------------------------------------------- */

static const struct cmd_option no_options[] = { { NULL, 0, NULL, NULL } };

static const struct cmd_option history_options[] = {
	{ "limit", 'n', "N", "show the newest N events (default 20; 0 = all kept)" },
	{ NULL, 0, NULL, NULL },
};

#define NAMED(verb, sum, desc, fn, mutates) {                             \
	.name = verb, .usage = "breaker " verb " NAME", .summary = sum,    \
	.description = desc, .options = no_options, .min_args = 1,         \
	.max_args = 1, .run = fn, .audited = mutates }

static const struct cmd_entry breaker_list = {
	.name = "list",
	.usage = "breaker list",
	.summary = "every breaker, configured or saved, with its state",
	.description =
		"Lists the breakers of the configuration ([breaker NAME], and the implicit\n"
		"one of each [upstream NAME] that no [breaker] without routes covers) and\n"
		"those saved in the database. One never saved shows as closed, no data yet.",
	.options = no_options,
	.run = run_list,
};

static const struct cmd_entry breaker_show = NAMED("show",
	"one breaker's state, counters and last command", NULL, run_show, false);

static const struct cmd_entry breaker_open = NAMED("open",
	"force a breaker open: every call refused until closed or reset",
	"Writes the command into the database; a running responder applies it within\n"
	"a second, and it stays open across restarts until closed or reset.",
	run_open, true);

static const struct cmd_entry breaker_close = NAMED("close",
	"close a breaker, keeping its window",
	"Closes the breaker (from forced open, open, half-open or disabled); calls\n"
	"flow again and are judged against the window it had.", run_close, true);

static const struct cmd_entry breaker_disable = NAMED("disable",
	"let every call through and record nothing",
	"A disabled breaker neither refuses nor counts calls until closed or reset.",
	run_disable, true);

static const struct cmd_entry breaker_reset = NAMED("reset",
	"close a breaker and clear its window and counters", NULL, run_reset, true);

static const struct cmd_entry breaker_history = {
	.name = "history",
	.usage = "breaker history NAME [--limit N]",
	.summary = "a breaker's transitions and commands, newest first",
	.description = "The database keeps the newest 1000 events of each breaker.",
	.options = history_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_history,
};

static const struct cmd_entry *const breaker_verbs[] = {
	&breaker_list, &breaker_show, &breaker_open, &breaker_close,
	&breaker_disable, &breaker_reset, &breaker_history, NULL,
};

const struct cmd_entry cmd_breaker = {
	.name = "breaker",
	.usage = "breaker <command> [options]",
	.summary = "show and steer the circuit breakers in front of the upstreams",
	.description =
		"Works on the database ([persistence] db, or --db FILE): the state each\n"
		"responder saves every second, and operator commands, which a running\n"
		"responder applies within a second. exit status: 0 ok, 2 error (an\n"
		"unknown breaker, no database)",
	.options = no_options,
	.min_args = 0,
	.max_args = 0,
	.subs = breaker_verbs,
};
