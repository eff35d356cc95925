#include "cmd.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "stats.h"
#include "util.h"
#include "validate.h"
#include "xalloc.h"

static const struct cmd_option global_options[] = {
	{ "config", 'c', "FILE", "configuration file (default $RESYNC_CONFIG, then " RS_DEFAULT_CONFIG ")" },
	{ "db", 0, "FILE", "database file (default: [persistence] db of the configuration)" },
	{ "json", 0, NULL, "machine-readable JSON output" },
	{ "quiet", 'q', NULL, "print only problems" },
	{ "verbose", 'v', NULL, "print more detail" },
	{ "help", 'h', NULL, "show help and exit" },
	{ "version", 'V', NULL, "show the version and exit" },
	{ NULL, 0, NULL, NULL },
};

static void verror(const char *path, const char *fmt, va_list ap)
{
	fputs("resyncctl: ", stderr);
	if (path && *path)
		fprintf(stderr, "%s: ", path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cmd_error(const struct cmd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(ctx ? ctx->path : NULL, fmt, ap);
	va_end(ap);
}

int cmd_usage_error(const struct cmd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(ctx->path, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'resyncctl %s%s--help'.\n", ctx->path,
		ctx->path[0] ? " " : "");
	return CMD_FAIL;
}

const char *cmd_opt(const struct cmd_ctx *ctx, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < ctx->nopts; i++)
		if (strcmp(ctx->opts[i].opt->name, name) == 0)
			v = ctx->opts[i].value;
	return v;
}

bool cmd_flag(const struct cmd_ctx *ctx, const char *name)
{
	return cmd_opt(ctx, name) != NULL;
}

const char *cmd_config_path(const struct cmd_ctx *ctx)
{
	const char *env = getenv("RESYNC_CONFIG");

	if (ctx->g.config)
		return ctx->g.config;
	if (env && *env)
		return env;
	return RS_DEFAULT_CONFIG;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; s && list && *list; list++)
		if (strncmp(s, *list, strlen(*list)) == 0 &&
		    (s[strlen(*list)] == '\0' || s[strlen(*list)] == ' '))
			return true;
	return false;
}

static struct rs_config *load_config(const struct cmd_ctx *ctx, const char *const *sections,
				     bool quiet)
{
	const char *path = cmd_config_path(ctx);
	struct rs_err err = RS_ERR_INIT;
	struct rs_config *cfg;
	struct rs_diags diags;
	struct rs_buf line;
	size_t i, bad = 0;

	if (ctx->g.db && strcmp(path, RS_DEFAULT_CONFIG) == 0 &&
	    access(path, F_OK) < 0 && errno == ENOENT)
		path = "/dev/null";
	rs_diags_init(&diags);
	cfg = rs_config_load(path, NULL, &diags, &err);
	if (!cfg) {
		if (!quiet)
			cmd_error(ctx, "%s", err.msg);
		rs_diags_free(&diags);
		return NULL;
	}
	rs_config_check(cfg, &diags);
	rs_diags_sort(&diags);
	rs_buf_init(&line, 1 << 20);
	for (i = 0; i < diags.n; i++) {
		if (diags.v[i].sev != RS_SEV_ERROR ||
		    !in_list(diags.v[i].section, sections))
			continue;
		bad++;
		if (quiet)
			continue;
		rs_buf_reset(&line);
		rs_diag_format_text(&diags.v[i], &line);
		fprintf(stderr, "%s\n", rs_buf_str(&line));
	}
	rs_buf_free(&line);
	rs_diags_free(&diags);
	if (bad) {
		if (!quiet)
			cmd_error(ctx, "invalid configuration '%s' (see resyncctl config-validate)",
				  path);
		rs_config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct rs_config *cmd_load_config(const struct cmd_ctx *ctx, const char *const *sections)
{
	return load_config(ctx, sections, false);
}

struct rs_config *cmd_load_config_quietly(const struct cmd_ctx *ctx,
					  const char *const *sections)
{
	return load_config(ctx, sections, true);
}

void cmd_print_json(struct json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(doc);
}

/* ---- help ------------------------------------------------------------------- */

static void print_options(FILE *out, const struct cmd_option *o)
{
	for (; o && o->name; o++) {
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name,
				 o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-24s %s\n", left, o->help);
	}
}

static void print_main_help(FILE *out, const struct cmd_entry *const *table)
{
	fputs("usage: resyncctl [global options] <command> [<args>]\n\n"
	      "The operator's toolkit for Resync, the HCL Workload Automation assistant.\n\n"
	      "commands:\n", out);
	for (size_t i = 0; table[i]; i++)
		fprintf(out, "  %-18s %s\n", table[i]->name, table[i]->summary);
	fputs("\nglobal options:\n", out);
	print_options(out, global_options);
	fputs("\nCommands may be abbreviated to a unique prefix.\n"
	      "'resyncctl <command> --help' describes a command; man resyncctl(1) has the rest.\n"
	      "exit status: 0 ok, 1 the checked thing is bad, 2 usage or operational error\n",
	      out);
}

static void print_entry_help(FILE *out, const struct cmd_entry *e)
{
	fprintf(out, "usage: resyncctl %s\n\n%s\n", e->usage, e->summary);
	if (e->description)
		fprintf(out, "\n%s\n", e->description);
	if (e->subs) {
		fputs("\ncommands:\n", out);
		for (size_t i = 0; e->subs[i]; i++)
			fprintf(out, "  %-18s %s\n", e->subs[i]->name,
				e->subs[i]->summary);
	}
	if (e->options && e->options->name) {
		fputs("\noptions:\n", out);
		print_options(out, e->options);
	}
	fputs("\nglobal options: --config FILE, --db FILE, --json, -q, -v, -h (see resyncctl --help)\n",
	      out);
}

/* ---- lookup ----------------------------------------------------------------- */

/* Exact name, else a unique prefix.  On failure prints the candidates and
 * returns NULL. */
static const struct cmd_entry *find_entry(const struct cmd_entry *const *table,
					  const char *name, const char *path)
{
	const struct cmd_entry *match = NULL;
	size_t nmatch = 0, nlen = strlen(name);
	const char *pfx = path && *path ? path : NULL;

	for (size_t i = 0; table[i]; i++) {
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
		if (strncmp(table[i]->name, name, nlen) == 0) {
			match = table[i];
			nmatch++;
		}
	}
	if (nmatch == 1)
		return match;
	fprintf(stderr, "resyncctl: %s%s%s command '%s'", pfx ? pfx : "",
		pfx ? ": " : "", nmatch ? "ambiguous" : "unknown", name);
	if (nmatch) {
		fputs("; it could be:", stderr);
		for (size_t i = 0; table[i]; i++)
			if (strncmp(table[i]->name, name, nlen) == 0)
				fprintf(stderr, " %s", table[i]->name);
	} else {
		const char *sep = "; did you mean:";

		for (size_t i = 0; table[i]; i++)
			if (rs_is_near(name, table[i]->name)) {
				fprintf(stderr, "%s %s", sep, table[i]->name);
				sep = ",";
			}
	}
	fprintf(stderr, "\nTry 'resyncctl %s%s--help'.\n", pfx ? pfx : "",
		pfx ? " " : "");
	return NULL;
}

static const struct cmd_option *find_long(const struct cmd_option *o,
					  const char *name, size_t len)
{
	for (; o && o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

static const struct cmd_option *find_short(const struct cmd_option *o, char c)
{
	for (; o && o->name; o++)
		if (o->short_name == c)
			return o;
	return NULL;
}

static void set_global(struct cmd_ctx *ctx, const struct cmd_option *o,
		       const char *value)
{
	if (strcmp(o->name, "config") == 0)
		ctx->g.config = value;
	else if (strcmp(o->name, "db") == 0)
		ctx->g.db = value;
	else if (strcmp(o->name, "json") == 0)
		ctx->g.json = true;
	else if (strcmp(o->name, "quiet") == 0)
		ctx->g.verbosity = -1;
	else if (strcmp(o->name, "verbose") == 0)
		ctx->g.verbosity = ctx->g.verbosity < 0 ? 1 : ctx->g.verbosity + 1;
}

enum { PARSE_OK, PARSE_HELP, PARSE_VERSION, PARSE_FAIL };

static bool is_global(const struct cmd_option *o)
{
	for (const struct cmd_option *g = global_options; g->name; g++)
		if (g == o)
			return true;
	return false;
}

/* Note one option given on the command line. */
static int record(struct cmd_ctx *ctx, const struct cmd_option *o,
		  const char *value)
{
	if (strcmp(o->name, "help") == 0)
		return PARSE_HELP;
	if (strcmp(o->name, "version") == 0)
		return PARSE_VERSION;
	if (is_global(o)) {
		set_global(ctx, o, value);
		return PARSE_OK;
	}
	ctx->opts = xrealloc(ctx->opts, (ctx->nopts + 1) * sizeof(*ctx->opts));
	ctx->opts[ctx->nopts++] = (struct cmd_optval){ o, value };
	return PARSE_OK;
}

/* Take one option at argv[*i] (for the entry `e`, or only global ones when
 * e is NULL).  Returns a PARSE_ value. */
static int take_option(struct cmd_ctx *ctx, const struct cmd_entry *e,
		       int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	const struct cmd_option *o, *own = e ? e->options : NULL;
	const char *value = NULL;

	if (arg[1] == '-') {
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);

		o = find_long(own, name, len);
		if (!o)
			o = find_long(global_options, name, len);
		if (!o) {
			cmd_usage_error(ctx, "unknown option '--%.*s'", (int)len,
					name);
			return PARSE_FAIL;
		}
		if (eq && !o->arg) {
			cmd_usage_error(ctx, "option '--%s' takes no argument",
					o->name);
			return PARSE_FAIL;
		}
		if (o->arg)
			value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
	} else {
		/* A bundle of short flags (-qv), the last may take a value. */
		for (const char *c = arg + 1;; c++) {
			int rc;

			o = find_short(own, *c);
			if (!o)
				o = find_short(global_options, *c);
			if (!o) {
				cmd_usage_error(ctx, "unknown option '-%c'", *c);
				return PARSE_FAIL;
			}
			if (o->arg) {
				value = c[1] ? c + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
				break;
			}
			if (!c[1])
				break;
			rc = record(ctx, o, "");
			if (rc != PARSE_OK)
				return rc;
		}
	}
	if (o->arg && !value) {
		cmd_usage_error(ctx, "option '--%s' needs an argument (%s)",
				o->name, o->arg);
		return PARSE_FAIL;
	}
	return record(ctx, o, value ? value : "");
}

static void append_path(struct cmd_ctx *ctx, const char *name)
{
	size_t n = strlen(ctx->path);

	snprintf(ctx->path + n, sizeof(ctx->path) - n, "%s%s", n ? " " : "",
		 name);
}

static int version(void)
{
	printf("resyncctl (resync) %s\n", PACKAGE_VERSION);
	return CMD_OK;
}

int cmd_dispatch(const struct cmd_entry *const *table, int argc, char **argv)
{
	struct cmd_ctx ctx;
	const struct cmd_entry *e = NULL;
	const struct cmd_entry *const *level = table;
	bool only_args = false, want_help = false;
	int i, rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.argv = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!only_args && strcmp(a, "--") == 0) {
			only_args = true;
			continue;
		}
		if (!only_args && a[0] == '-' && a[1]) {
			rc = take_option(&ctx, e, argc, argv, &i);
			if (rc == PARSE_FAIL) {
				rc = CMD_FAIL;
				goto out;
			}
			if (rc == PARSE_VERSION) {
				rc = version();
				goto out;
			}
			if (rc == PARSE_HELP)
				want_help = true;
			continue;
		}
		/* The first words name the command, then its verb. */
		if (ctx.argc == 0 && level && !only_args) {
			if (!e && strcmp(a, "help") == 0) {
				want_help = true;
				continue;
			}
			if (!e || e->subs) {
				const struct cmd_entry *next = find_entry(level, a, ctx.path);

				if (!next) {
					rc = CMD_FAIL;
					goto out;
				}
				if (ctx.nopts) {
					rc = cmd_usage_error(&ctx, "options must follow the command");
					goto out;
				}
				e = next;
				append_path(&ctx, e->name);
				level = e->subs;
				continue;
			}
		}
		ctx.argv[ctx.argc++] = argv[i];
	}
	if (want_help) {
		if (e)
			print_entry_help(stdout, e);
		else
			print_main_help(stdout, table);
		rc = CMD_OK;
		goto out;
	}
	if (!e) {
		print_main_help(stderr, table);
		rc = CMD_FAIL;
		goto out;
	}
	if (!e->run) {
		rc = cmd_usage_error(&ctx, "missing command (one of the commands below)");
		print_entry_help(stderr, e);
		goto out;
	}
	if (ctx.argc < e->min_args) {
		rc = cmd_usage_error(&ctx, "missing argument\nusage: resyncctl %s",
				     e->usage);
		goto out;
	}
	if (e->max_args >= 0 && ctx.argc > e->max_args) {
		rc = cmd_usage_error(&ctx, "unexpected argument '%s'\nusage: resyncctl %s",
				     ctx.argv[e->max_args], e->usage);
		goto out;
	}
	ctx.entry = e;
	rc = e->run(&ctx);
	if (e->audited || (e->audited_with && cmd_flag(&ctx, e->audited_with)))
		cmd_audit_command(&ctx, rc);
out:
	free(ctx.opts);
	free(ctx.argv);
	return rc;
}

/* A responder publishes every second; older rows are from one that stopped. */
#define LIVE_STATS_MAX_AGE_MS 10000

json_t *cmd_live_stats(const char *db_path)
{
	struct rs_db_options o = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };
	struct rs_db *db;
	json_t *rows = NULL;

	if (rs_db_open(&db, db_path, &o, NULL) < 0)
		return NULL;
	rows = rs_stats_read(db, rs_now_ms() - LIVE_STATS_MAX_AGE_MS, NULL);
	rs_db_close(db);
	if (rows && json_array_size(rows) == 0) {
		json_decref(rows);
		rows = NULL;
	}
	return rows;
}
