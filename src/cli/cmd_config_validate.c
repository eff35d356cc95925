/*
 * resyncctl config-validate: check configuration files against the schema
 * and the cross-field and environment rules, reporting every problem.
 * Writes nothing, opens no database or socket: safe to run anywhere (CI).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "schema.h"
#include "validate.h"
#include "xalloc.h"

enum format { FMT_TEXT, FMT_JSON, FMT_GITHUB };

struct run {
	const struct cmd_ctx *ctx;
	enum format fmt;
	bool strict, print;
	const char *environment;
	json_t *jfiles;
	int rc;
};

static const char *source_name(enum rs_source s)
{
	switch (s) {
	case RS_SRC_FILE: return "file";
	case RS_SRC_ENV: return "env";
	default: return "default";
	}
}

/* A value as it would be written in resync.conf, quoted when needed. */
static void put_scalar(struct rs_buf *b, const char *s)
{
	bool plain = *s && !strpbrk(s, "\"'#;\\\n\t,") && s[0] != ' ' &&
		     s[strlen(s) - 1] != ' ';

	if (plain) {
		rs_buf_puts(b, s);
		return;
	}
	rs_buf_putc(b, '"');
	for (; *s; s++) {
		switch (*s) {
		case '"': rs_buf_puts(b, "\\\""); break;
		case '\\': rs_buf_puts(b, "\\\\"); break;
		case '\n': rs_buf_puts(b, "\\n"); break;
		case '\t': rs_buf_puts(b, "\\t"); break;
		default: rs_buf_putc(b, *s);
		}
	}
	rs_buf_putc(b, '"');
}

static void put_value(struct rs_buf *b, const struct rs_conf_value *v)
{
	if (v->key->flags & RS_K_SECRET) {
		rs_buf_puts(b, "<redacted>");
	} else if (v->key->type == RS_T_LIST && v->ok) {
		for (size_t i = 0; i < v->nitems; i++) {
			if (i)
				rs_buf_puts(b, ", ");
			put_scalar(b, v->items[i]);
		}
	} else {
		put_scalar(b, v->raw);
	}
}

static void put_origin(struct rs_buf *b, const struct rs_conf_value *v)
{
	if (v->secret_file)
		rs_buf_printf(b, "from file %s, ", v->secret_file);
	if (v->source == RS_SRC_FILE)
		rs_buf_printf(b, "%s:%d", v->file, v->line);
	else if (v->source == RS_SRC_ENV)
		rs_buf_printf(b, "env %s", v->env);
	else
		rs_buf_puts(b, "default");
}

/* Sections in schema order, then in the order they appear. */
static void each_section(const struct rs_config *cfg,
			 void (*fn)(const struct rs_conf_section *, void *),
			 void *arg)
{
	for (size_t t = 0; t < rs_schema_nsections; t++)
		for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
			const struct rs_conf_section *s = rs_config_section_at(cfg, i);

			if (s->schema == &rs_schema_sections[t])
				fn(s, arg);
		}
}

static void print_section_text(const struct rs_conf_section *s, void *arg)
{
	struct rs_buf *b = arg;
	char label[160];

	rs_conf_section_label(s, label, sizeof(label));
	rs_buf_printf(b, "\n[%s]\n", label);
	for (size_t k = 0; k < rs_schema_nkeys; k++) {
		const struct rs_schema_key *key = &rs_schema_keys[k];
		const struct rs_conf_value *v;
		struct rs_buf line;

		if (strcmp(key->section, s->schema->name) != 0)
			continue;
		v = rs_conf_get(s, key->name);
		if (!v) {
			rs_buf_printf(b, "# %s is not set\n", key->name);
			continue;
		}
		rs_buf_init(&line, 1 << 20);
		rs_buf_printf(&line, "%s = ", key->name);
		put_value(&line, v);
		rs_buf_printf(b, "%-40s # ", rs_buf_str(&line));
		put_origin(b, v);
		rs_buf_puts(b, v->ok ? "\n" : " (invalid)\n");
		rs_buf_free(&line);
	}
}

static void print_section_json(const struct rs_conf_section *s, void *arg)
{
	json_t *arr = arg, *keys = json_object(), *js = json_object();

	json_object_set_new(js, "section", json_string(s->schema->name));
	if (s->name)
		json_object_set_new(js, "name", json_string(s->name));
	for (size_t k = 0; k < rs_schema_nkeys; k++) {
		const struct rs_conf_value *v;
		json_t *jv, *val;
		struct rs_buf origin;

		if (strcmp(rs_schema_keys[k].section, s->schema->name) != 0 ||
		    !(v = rs_conf_get(s, rs_schema_keys[k].name)))
			continue;
		jv = json_object();

		if (v->key->flags & RS_K_SECRET)
			val = json_string("<redacted>");
		else if (v->key->type == RS_T_LIST && v->ok) {
			val = json_array();
			for (size_t j = 0; j < v->nitems; j++)
				json_array_append_new(val, json_string(v->items[j]));
		} else if (v->ok && (v->key->type == RS_T_INT ||
				     v->key->type == RS_T_DURATION ||
				     v->key->type == RS_T_SIZE)) {
			val = json_integer(v->num);
		} else if (v->ok && v->key->type == RS_T_BOOL) {
			val = json_boolean(v->num);
		} else {
			val = json_string(v->ok && v->str ? v->str : v->raw);
		}
		json_object_set_new(jv, "value", val ? val : json_null());
		if (v->key->type == RS_T_DURATION)
			json_object_set_new(jv, "unit", json_string("ms"));
		else if (v->key->type == RS_T_SIZE)
			json_object_set_new(jv, "unit", json_string("bytes"));
		json_object_set_new(jv, "source", json_string(source_name(v->source)));
		rs_buf_init(&origin, 8192);
		put_origin(&origin, v);
		json_object_set_new(jv, "origin", json_string(rs_buf_str(&origin)));
		rs_buf_free(&origin);
		json_object_set_new(jv, "valid", json_boolean(v->ok));
		json_object_set_new(keys, v->key->name, jv);
	}
	json_object_set_new(js, "keys", keys);
	json_array_append_new(arr, js);
}

static json_t *diag_json(const struct rs_diag *g)
{
	json_t *j = json_object();

	json_object_set_new(j, "severity", json_string(rs_severity_name(g->sev)));
	json_object_set_new(j, "file", g->file ? json_string(g->file) : json_null());
	json_object_set_new(j, "line", g->line ? json_integer(g->line) : json_null());
	if (g->env)
		json_object_set_new(j, "env", json_string(g->env));
	json_object_set_new(j, "section", g->section ? json_string(g->section) : json_null());
	json_object_set_new(j, "key", g->key ? json_string(g->key) : json_null());
	json_object_set_new(j, "message", json_string(g->msg));
	return j;
}

static void check_file(struct run *r, const char *path)
{
	struct rs_config_options opt = { .environment = r->environment };
	struct rs_err err = RS_ERR_INIT;
	struct rs_diags diags;
	struct rs_config *cfg;
	struct rs_buf out;
	bool bad;

	rs_diags_init(&diags);
	cfg = rs_config_load(path, &opt, &diags, &err);
	if (!cfg) {
		if (r->fmt == FMT_JSON) {
			json_t *jf = json_object();

			json_object_set_new(jf, "file", json_string(path));
			json_object_set_new(jf, "error", json_string(err.msg));
			json_array_append_new(r->jfiles, jf);
		}
		cmd_error(r->ctx, "%s", err.msg);
		r->rc = CMD_FAIL;
		rs_diags_free(&diags);
		return;
	}
	rs_config_check(cfg, &diags);
	rs_diags_sort(&diags);
	bad = diags.errors || (r->strict && diags.warnings);
	if (bad && r->rc == CMD_OK)
		r->rc = CMD_BAD;

	rs_buf_init(&out, 64 << 20);
	if (r->fmt == FMT_JSON) {
		json_t *jf = json_object(), *jd = json_array();

		for (size_t i = 0; i < diags.n; i++)
			json_array_append_new(jd, diag_json(&diags.v[i]));
		json_object_set_new(jf, "file", json_string(rs_config_path(cfg)));
		json_object_set_new(jf, "environment",
				    json_string(rs_config_environment(cfg)));
		json_object_set_new(jf, "valid", json_boolean(!bad));
		json_object_set_new(jf, "errors", json_integer((json_int_t)diags.errors));
		json_object_set_new(jf, "warnings", json_integer((json_int_t)diags.warnings));
		json_object_set_new(jf, "diagnostics", jd);
		jd = json_array();
		for (size_t i = 1; i < rs_config_nfiles(cfg); i++)
			json_array_append_new(jd, json_string(rs_config_file_at(cfg, i)));
		json_object_set_new(jf, "includes", jd);
		if (r->print) {
			json_t *secs = json_array();

			each_section(cfg, print_section_json, secs);
			json_object_set_new(jf, "effective", secs);
		}
		json_array_append_new(r->jfiles, jf);
	} else {
		for (size_t i = 0; i < diags.n; i++) {
			if (r->fmt == FMT_GITHUB)
				rs_diag_format_github(&diags.v[i], &out);
			else
				rs_diag_format_text(&diags.v[i], &out);
			rs_buf_putc(&out, '\n');
		}
		if (r->ctx->g.verbosity >= 0 || bad) {
			if (!diags.errors && !diags.warnings)
				rs_buf_printf(&out, "%s: OK (environment %s)\n",
					      rs_config_path(cfg),
					      rs_config_environment(cfg));
			else
				rs_buf_printf(&out, "%s: %zu error%s, %zu warning%s (environment %s)\n",
					      rs_config_path(cfg), diags.errors,
					      diags.errors == 1 ? "" : "s",
					      diags.warnings,
					      diags.warnings == 1 ? "" : "s",
					      rs_config_environment(cfg));
		}
		if (r->ctx->g.verbosity > 0)
			for (size_t i = 1; i < rs_config_nfiles(cfg); i++)
				rs_buf_printf(&out, "%s: included %s\n",
					      rs_config_path(cfg),
					      rs_config_file_at(cfg, i));
		if (r->print) {
			rs_buf_printf(&out, "# effective configuration of %s (environment %s)\n",
				      rs_config_path(cfg), rs_config_environment(cfg));
			each_section(cfg, print_section_text, &out);
		}
		fputs(rs_buf_str(&out), stdout);
	}
	rs_buf_free(&out);
	rs_config_free(cfg);
	rs_diags_free(&diags);
}

static int run_config_validate(struct cmd_ctx *ctx)
{
	struct run r = { .ctx = ctx, .rc = CMD_OK };
	const char *fmt = cmd_opt(ctx, "format");
	const struct rs_schema_key *envkey = rs_schema_key("server", "environment");
	bool stdin_used = false;

	r.fmt = ctx->g.json ? FMT_JSON : FMT_TEXT;
	if (fmt && strcmp(fmt, "text") == 0)
		r.fmt = FMT_TEXT;
	else if (fmt && strcmp(fmt, "json") == 0)
		r.fmt = FMT_JSON;
	else if (fmt && strcmp(fmt, "github") == 0)
		r.fmt = FMT_GITHUB;
	else if (fmt)
		return cmd_usage_error(ctx, "unknown format '%s' (use text, json or github)", fmt);
	r.strict = cmd_flag(ctx, "strict");
	r.print = cmd_flag(ctx, "print");
	r.environment = cmd_opt(ctx, "environment");
	if (r.environment && rs_schema_enum_index(envkey, r.environment) < 0)
		return cmd_usage_error(ctx, "unknown environment '%s' (use development, test or production)",
				       r.environment);
	for (int i = 0; i < ctx->argc; i++)
		if (strcmp(ctx->argv[i], "-") == 0) {
			if (stdin_used)
				return cmd_usage_error(ctx, "standard input ('-') given twice");
			stdin_used = true;
		}
	r.jfiles = json_array();
	if (ctx->argc == 0)
		check_file(&r, cmd_config_path(ctx));
	for (int i = 0; i < ctx->argc; i++)
		check_file(&r, ctx->argv[i]);
	if (r.fmt == FMT_JSON) {
		json_t *doc = json_object();

		json_object_set_new(doc, "valid", json_boolean(r.rc == CMD_OK));
		json_object_set_new(doc, "files", r.jfiles);
		cmd_print_json(doc);
	} else {
		json_decref(r.jfiles);
	}
	return r.rc;
}

static const struct cmd_option options[] = {
	{ "format", 'f', "FORMAT", "text (default), json, or github (GitHub Actions annotations)" },
	{ "strict", 's', NULL, "warnings make the configuration invalid (exit 1)" },
	{ "environment", 'e', "ENV", "check as development, test or production instead of [server] environment" },
	{ "print", 'p', NULL, "print the effective configuration, with where each value came from (secrets redacted)" },
	{ NULL, 0, NULL, NULL },
};

const struct cmd_entry cmd_config_validate = {
	.name = "config-validate",
	.usage = "config-validate [--format FORMAT] [--strict] [--environment ENV] [--print] [FILE|-]...",
	.summary = "check configuration files and report every problem",
	.description =
		"Checks each FILE (default: --config, $RESYNC_CONFIG, then the installed\n"
		"resync.conf; '-' reads standard input) against the schema and the\n"
		"cross-field and environment rules, with RESYNC_* environment overrides\n"
		"applied. Every problem is reported as FILE:LINE: error|warning: [section] key: message.\n"
		"Writes nothing and opens no database or socket.\n"
		"exit status: 0 valid, 1 invalid, 2 a file could not be read or usage error",
	.options = options,
	.min_args = 0,
	.max_args = -1,
	.run = run_config_validate,
};
