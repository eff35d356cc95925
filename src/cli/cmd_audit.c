/*
 * resyncctl audit: read, verify, export and prune the audit log (the
 * `audit` table; src/common/audit.h does the work).  Reads open the
 * database read-only; prune writes, and records itself in the log (actor
 * unix:USER) through the library's checkpoint.  [audit] key_file is the
 * keyring the chain is checked with.
 */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "seal.h"
#include "util.h"

#define LIST_LIMIT_DEFAULT 100
#define TAIL_LINES_DEFAULT 10
#define TAIL_POLL_NS 200000000L     /* how often tail -f looks for new records */
#define STATS_TOP_DEFAULT 10

static const char *const sections[] = { "persistence", "audit", NULL };

struct run {
	struct cmd_ctx *ctx;
	struct rs_config *cfg;
	struct rs_db *db;
	struct rs_keyring *keys;
};

static void finish(struct run *r)
{
	rs_db_close(r->db);
	rs_keyring_free(r->keys);
	rs_config_free(r->cfg);
}

/* The configuration, the keyring and the database (read-only unless
 * write).  CMD_OK or the exit code, message printed; finish after. */
static int start(struct run *r, struct cmd_ctx *ctx, bool write)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options ro = { .flags = RS_DB_READONLY | RS_DB_NOCREATE };

	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	if (!(r->cfg = cmd_load_config(ctx, sections)))
		return CMD_FAIL;
	const char *key_file = rs_config_str(r->cfg, "audit", "key_file");
	if (key_file && rs_keyring_load(&r->keys, key_file, &err) < 0) {
		cmd_error(ctx, "[audit] key_file: %s", err.msg);
		return CMD_FAIL;
	}
	const char *path = ctx->g.db ? ctx->g.db : rs_config_str(r->cfg, "persistence", "db");
	if (rs_db_open(&r->db, path, write ? NULL : &ro, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		return CMD_FAIL;
	}
	if (r->db->schema_version < RS_AUDIT_SCHEMA_VERSION) {
		cmd_error(ctx, "database '%s' has no audit log yet (schema version %d)", path,
			  r->db->schema_version);
		return CMD_FAIL;
	}
	return CMD_OK;
}

/* RFC 3339 (or a date) or a relative "-24h" / "7d" meaning that long ago;
 * microseconds, or -1. */
static int64_t parse_time(const char *s)
{
	int64_t ms;
	const char *why;

	if (!s || !*s)
		return -1;
	if ((ms = rs_parse_utc_ms(s)) > 0)
		return ms * 1000;
	if (rs_parse_duration_ms(s[0] == '-' ? s + 1 : s, &ms, &why) == 0)
		return (rs_now_ms() - ms) * 1000;
	return -1;
}

static int time_opt(struct cmd_ctx *ctx, const char *name, int64_t *out)
{
	const char *v = cmd_opt(ctx, name);

	*out = 0;
	if (!v)
		return 0;
	if ((*out = parse_time(v)) < 0)
		return cmd_usage_error(ctx, "invalid --%s '%s': RFC 3339 (2026-11-23T10:00:00Z), "
				       "a date, or a time ago such as 24h or 7d", name, v);
	return 0;
}

static int print_one(const struct rs_audit_record *rec, void *arg)
{
	struct run *r = arg;

	if (r->ctx->g.json) {
		json_t *j = rs_audit_record_json(rec);
		char *s = json_dumps(j, JSON_COMPACT);
		if (s)
			puts(s);
		free(s);
		json_decref(j);
		return 0;
	}
	json_t *j = rs_audit_record_json(rec);
	printf("%-7lld %s  %-8s %-24s %-22s %s %s\n", (long long)rec->seq,
	       json_string_value(json_object_get(j, "time")), rs_audit_outcome_name(rec->outcome),
	       rec->action, rec->actor, rec->target, rec->details);
	json_decref(j);
	return 0;
}

/* The options list, search and tail share: -1 after a usage error. */
static int parse_filter(struct cmd_ctx *ctx, struct rs_audit_filter *f, uint64_t limit)
{
	const char *o = cmd_opt(ctx, "outcome"), *lim = cmd_opt(ctx, "limit");
	int64_t n;
	const char *why;
	enum rs_audit_outcome oc;

	memset(f, 0, sizeof(*f));
	f->outcome = -1;
	f->limit = limit;
	if (time_opt(ctx, "since", &f->since_us) || time_opt(ctx, "until", &f->until_us))
		return -1;
	if (o && rs_audit_outcome_parse(o, &oc) < 0)
		return cmd_usage_error(ctx, "invalid --outcome '%s': success, denied or failure", o), -1;
	if (o)
		f->outcome = (int)oc;
	if (lim && (rs_parse_int64(lim, &n, &why) < 0 || n < 0))
		return cmd_usage_error(ctx, "invalid --limit '%s': a count, 0 for all", lim), -1;
	if (lim)
		f->limit = (uint64_t)n;
	f->actor = cmd_opt(ctx, "actor");
	f->action = cmd_opt(ctx, "action");
	return 0;
}

static int run_list(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit_filter f;

	if (parse_filter(ctx, &f, LIST_LIMIT_DEFAULT) < 0)
		return CMD_FAIL;
	if (ctx->argc == 1)
		f.text = ctx->argv[0];   /* search */
	int rc = start(&r, ctx, false);
	if (rc == CMD_OK && rs_audit_query(r.db, &f, print_one, &r, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	finish(&r);
	return rc;
}

static volatile sig_atomic_t stop_following;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_following = 1;
}

struct tail_state {
	struct run *r;
	int64_t last;     /* the newest seq printed */
};

static int tail_one(const struct rs_audit_record *rec, void *arg)
{
	struct tail_state *t = arg;

	if (rec->seq > t->last)
		t->last = rec->seq;
	return print_one(rec, t->r);
}

/* The newest records, then (with -f) each new one as it is committed,
 * whichever process wrote it, until SIGINT or SIGTERM. */
static int run_tail(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit_filter f;
	struct tail_state t = { &r, 0 };
	unsigned char h[RS_AUDIT_HASH_BYTES];
	int64_t head;
	struct sigaction sa;

	if (parse_filter(ctx, &f, TAIL_LINES_DEFAULT) < 0)
		return CMD_FAIL;
	int rc = start(&r, ctx, false);
	/* the head first: records after it are the new ones, even those the
	 * filter does not show; -n 0 shows only those */
	if (rc == CMD_OK && (rs_audit_head(r.db, &head, h, &err) < 0 ||
			     (f.limit && rs_audit_query(r.db, &f, tail_one, &t, &err) < 0))) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	if (rc != CMD_OK || !cmd_flag(ctx, "follow")) {
		finish(&r);
		return rc;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;   /* no SA_RESTART: the sleep ends at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	f.limit = 0;
	f.since_us = f.until_us = 0;
	if (t.last < head)
		t.last = head;
	while (!stop_following) {
		struct timespec ts = { 0, TAIL_POLL_NS };
		fflush(stdout);
		nanosleep(&ts, NULL);
		if (stop_following)
			break;
		/* seqs are given in commit order (each batch holds the write
		 * lock while it reads the head), so nothing new can appear at
		 * or below a head already read */
		if (rs_audit_head(r.db, &head, h, &err) < 0) {
			cmd_error(ctx, "%s", err.msg);
			rc = CMD_FAIL;
			break;
		}
		if (head <= t.last)
			continue;
		f.from_seq = t.last + 1;
		if (rs_audit_query(r.db, &f, tail_one, &t, &err) < 0) {
			cmd_error(ctx, "%s", err.msg);
			rc = CMD_FAIL;
			break;
		}
		if (t.last < head)
			t.last = head;
	}
	fflush(stdout);
	finish(&r);
	return rc;
}

static int run_stats(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	int64_t since, until, top = STATS_TOP_DEFAULT;
	const char *tops = cmd_opt(ctx, "top"), *why;
	json_t *sum = NULL;

	if (time_opt(ctx, "since", &since) || time_opt(ctx, "until", &until))
		return CMD_FAIL;
	if (tops && (rs_parse_int64(tops, &top, &why) < 0 || top < 0 || top > 1000000))
		return cmd_usage_error(ctx, "invalid --top '%s': a count, 0 for all", tops);
	int rc = start(&r, ctx, false);
	if (rc == CMD_OK && !(sum = rs_audit_summary(r.db, since, until, (unsigned)top, &err))) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	if (sum && ctx->g.json) {
		cmd_print_json(sum);
	} else if (sum) {
		static const char *const groups[] = { "by_action", "by_outcome", "by_actor" };
		static const char *const titles[] = { "ACTION", "OUTCOME", "ACTOR" };
		printf("%lld records", (long long)json_integer_value(json_object_get(sum, "total")));
		if (json_integer_value(json_object_get(sum, "total")))
			printf(", seq %lld to %lld",
			       (long long)json_integer_value(json_object_get(sum, "first_seq")),
			       (long long)json_integer_value(json_object_get(sum, "last_seq")));
		printf("\n");
		for (size_t i = 0; i < 3; i++) {
			json_t *g = json_object_get(sum, groups[i]), *e;
			size_t k;
			if (!json_array_size(g))
				continue;
			printf("\n%-32s %10s\n", titles[i], "COUNT");
			json_array_foreach(g, k, e)
				printf("%-32s %10lld\n", json_string_value(json_object_get(e, "name")),
				       (long long)json_integer_value(json_object_get(e, "count")));
		}
		json_decref(sum);
	}
	finish(&r);
	return rc;
}

static int parse_seq(struct cmd_ctx *ctx, const char *s, int64_t *seq)
{
	const char *why;

	if (rs_parse_int64(s, seq, &why) < 0 || *seq < 1)
		return cmd_usage_error(ctx, "invalid seq '%s': a record number from 1", s);
	return 0;
}

static int run_show(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit_record rec;
	bool found = false;
	int64_t seq;

	if (parse_seq(ctx, ctx->argv[0], &seq))
		return CMD_FAIL;
	int rc = start(&r, ctx, false);
	if (rc == CMD_OK && rs_audit_get(r.db, seq, &rec, &found, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	} else if (rc == CMD_OK && !found) {
		cmd_error(ctx, "no record %lld", (long long)seq);
		rc = CMD_BAD;
	} else if (rc == CMD_OK) {
		json_t *j = rs_audit_record_json(&rec);
		if (ctx->g.json) {
			cmd_print_json(j);
		} else {
			const char *k;
			json_t *v;
			json_object_foreach(j, k, v) {
				char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				printf("%-11s %s\n", k, s ? s : json_string_value(v));
				free(s);
			}
			json_decref(j);
		}
		rs_audit_record_free(&rec);
	}
	finish(&r);
	return rc;
}

static int run_head(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	unsigned char h[RS_AUDIT_HASH_BYTES];
	char hex[65];
	int64_t seq;

	int rc = start(&r, ctx, false);
	if (rc == CMD_OK && rs_audit_head(r.db, &seq, h, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	} else if (rc == CMD_OK) {
		rs_hex_encode(h, sizeof(h), hex);
		if (ctx->g.json)
			cmd_print_json(json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "hash", hex));
		else
			printf("%lld:%s\n", (long long)seq, hex);
	}
	finish(&r);
	return rc;
}

static int run_verify(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	struct rs_audit_verify_result res;
	const char *from = cmd_opt(ctx, "from"), *head = cmd_opt(ctx, "head"),
		*file = cmd_opt(ctx, "file");
	int64_t from_seq = 0, anchor = 0;
	unsigned char ah[32];
	int rc;

	if (from && parse_seq(ctx, from, &from_seq))
		return CMD_FAIL;
	if (head) {
		const char *colon = strchr(head, ':');
		char seqs[24];
		bool good = colon && (size_t)(colon - head) < sizeof(seqs) && strlen(colon + 1) == 64;
		for (int i = 0; good && i < 32; i++) {
			int hi = rs_hex_value(colon[1 + 2 * i]), lo = rs_hex_value(colon[2 + 2 * i]);
			good = hi >= 0 && lo >= 0;
			ah[i] = (unsigned char)(hi << 4 | lo);
		}
		if (good) {
			memcpy(seqs, head, (size_t)(colon - head));
			seqs[colon - head] = '\0';
			good = parse_seq(ctx, seqs, &anchor) == 0;
			if (!good)
				return CMD_FAIL;
		}
		if (!good)
			return cmd_usage_error(ctx, "invalid --head '%s': SEQ:HASH as 'audit head' prints it", head);
	}
	if (file) {
		/* an export is checked alone: only the keyring is needed */
		memset(&r, 0, sizeof(r));
		r.ctx = ctx;
		if (!(r.cfg = cmd_load_config(ctx, sections)))
			return CMD_FAIL;
		const char *key_file = rs_config_str(r.cfg, "audit", "key_file");
		FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		rc = CMD_OK;
		if (key_file && rs_keyring_load(&r.keys, key_file, &err) < 0) {
			cmd_error(ctx, "[audit] key_file: %s", err.msg);
			rc = CMD_FAIL;
		} else if (!in) {
			cmd_error(ctx, "cannot open '%s': %s", file, strerror(errno));
			rc = CMD_FAIL;
		} else if (rs_audit_verify_export(in, r.keys, anchor, head ? ah : NULL, &res, &err) < 0) {
			cmd_error(ctx, "%s: %s", file, err.msg);
			rc = CMD_FAIL;
		}
		if (in && in != stdin)
			fclose(in);
	} else {
		rc = start(&r, ctx, false);
		if (rc == CMD_OK &&
		    rs_audit_verify(r.db, r.keys, from_seq, anchor, head ? ah : NULL, &res, &err) < 0) {
			cmd_error(ctx, "%s", err.msg);
			rc = CMD_FAIL;
		}
	}
	if (rc == CMD_OK) {
		bool intact = res.why == RS_AUDIT_INTACT;
		double secs = (double)res.took_us / 1e6;
		if (ctx->g.json) {
			char last[65];
			rs_hex_encode(res.last_hash, 32, last);
			cmd_print_json(json_pack("{s:b,s:I,s:s,s:I,s:s,s:I,s:s,s:f}", "intact", intact,
						 "checked", (json_int_t)res.checked,
						 "break", rs_audit_break_name(res.why),
						 "bad_seq", (json_int_t)res.bad_seq, "detail", res.detail,
						 "last_seq", (json_int_t)res.last_seq, "last_hash", last,
						 "seconds", secs));
		} else if (intact) {
			if (ctx->g.verbosity >= 0)
				printf("intact: %llu records checked in %.3f s, up to seq %lld\n",
				       (unsigned long long)res.checked, secs, (long long)res.last_seq);
		} else {
			printf("broken at seq %lld: %s: %s (%llu records checked before it in %.3f s)\n",
			       (long long)res.bad_seq, rs_audit_break_name(res.why), res.detail,
			       (unsigned long long)res.checked, secs);
		}
		rc = intact ? CMD_OK : CMD_BAD;
	}
	finish(&r);
	return rc;
}

static int run_export(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	const char *fmt = cmd_opt(ctx, "format"), *out = cmd_opt(ctx, "output");
	int64_t since;
	uint64_t n = 0;

	if (fmt && strcmp(fmt, "jsonl") && strcmp(fmt, "csv"))
		return cmd_usage_error(ctx, "invalid --format '%s': jsonl or csv", fmt);
	if (time_opt(ctx, "since", &since))
		return CMD_FAIL;
	/* writes: the exported mark in meta */
	int rc = start(&r, ctx, true);
	FILE *f = NULL;
	if (rc == CMD_OK && !(f = out ? fopen(out, "w") : stdout)) {
		cmd_error(ctx, "cannot write '%s': %s", out, strerror(errno));
		rc = CMD_FAIL;
	}
	if (rc == CMD_OK && rs_audit_export(r.db, f, fmt && !strcmp(fmt, "csv") ? RS_AUDIT_CSV
						: RS_AUDIT_JSONL, since, &n, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		rc = CMD_FAIL;
	}
	if (f && f != stdout && fclose(f) != 0 && rc == CMD_OK) {
		cmd_error(ctx, "writing '%s': %s", out, strerror(errno));
		rc = CMD_FAIL;
	}
	if (rc == CMD_OK && out && ctx->g.verbosity >= 0)
		fprintf(stderr, "%llu records exported to %s\n", (unsigned long long)n, out);
	finish(&r);
	return rc;
}

static int run_prune(struct cmd_ctx *ctx)
{
	struct run r;
	struct rs_err err = RS_ERR_INIT;
	struct passwd *pw = getpwuid(geteuid());
	char actor[96];
	int64_t before;
	uint64_t removed = 0;

	if (time_opt(ctx, "before", &before))
		return CMD_FAIL;
	if (!before)
		return cmd_usage_error(ctx, "--before is required");
	snprintf(actor, sizeof(actor), "unix:%s", pw ? pw->pw_name : "unknown");
	int rc = start(&r, ctx, true);
	if (rc == CMD_OK &&
	    rs_audit_prune(r.db, r.keys, before, cmd_flag(ctx, "force"), actor, &removed, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		rc = err.code == EPERM ? CMD_BAD : CMD_FAIL;
	}
	if (rc == CMD_OK) {
		if (ctx->g.json)
			cmd_print_json(json_pack("{s:I}", "removed", (json_int_t)removed));
		else if (ctx->g.verbosity >= 0)
			printf("%llu records pruned%s\n", (unsigned long long)removed,
			       removed ? "; a checkpoint record keeps the chain verifiable" : "");
	}
	finish(&r);
	return rc;
}

/* ---- the record of a mutating command ------------------------------------ */

#define ARG_MAX_CHARS 256     /* a cache value can be large; its start is enough */

/* s's length cut to ARG_MAX_CHARS bytes, backing off to a UTF-8
 * character boundary */
static size_t clip_len(const char *s)
{
	size_t n = strlen(s);

	if (n > ARG_MAX_CHARS)
		for (n = ARG_MAX_CHARS; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--)
			;
	return n;
}

static json_t *clipped(const char *s)
{
	json_t *j = json_stringn(s, clip_len(s));
	return j ? j : json_string("(not UTF-8)");
}

void cmd_audit_command(const struct cmd_ctx *ctx, int rc)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_config *cfg;
	struct rs_keyring *keys = NULL;
	struct rs_db *db = NULL;
	struct rs_db_options wo = { .flags = RS_DB_NOCREATE };
	struct passwd *pw = getpwuid(geteuid());
	const char *sudo = getenv("SUDO_USER");
	char actor[96], action[160];
	json_t *details, *args, *opts;

	/* a configuration the command could not use was reported by it */
	if (!(cfg = cmd_load_config_quietly(ctx, sections))) {
		if (rc == CMD_OK)
			cmd_error(ctx, "not recorded in the audit log: invalid [persistence] or "
				  "[audit] settings (see resyncctl config-validate)");
		return;
	}
	if (!rs_config_num(cfg, "audit", "enabled")) {
		rs_config_free(cfg);
		return;
	}
	const char *key_file = rs_config_str(cfg, "audit", "key_file");
	const char *path = ctx->g.db ? ctx->g.db : rs_config_str(cfg, "persistence", "db");
	if (key_file && rs_keyring_load(&keys, key_file, &err) < 0) {
		cmd_error(ctx, "not recorded in the audit log: [audit] key_file: %s", err.msg);
		goto out;
	}
	if (rs_db_open(&db, path, &wo, &err) < 0) {
		/* no database: the command failed before it could change one */
		if (rc == CMD_OK)
			cmd_error(ctx, "not recorded in the audit log: %s", err.msg);
		goto out;
	}
	snprintf(actor, sizeof(actor), "unix:%s", pw ? pw->pw_name : "unknown");
	snprintf(action, sizeof(action), "cli.%s", ctx->path);
	for (char *c = action; *c; c++)
		if (*c == ' ')
			*c = '.';
	details = json_object();
	args = json_array();
	opts = json_object();
	int kept = ctx->entry->audited_args && ctx->entry->audited_args < ctx->argc
		? ctx->entry->audited_args : ctx->argc;
	for (int i = 0; i < kept; i++)
		json_array_append_new(args, clipped(ctx->argv[i]));
	if (kept < ctx->argc)
		json_object_set_new(details, "args_not_recorded", json_integer(ctx->argc - kept));
	for (size_t i = 0; i < ctx->nopts; i++)
		json_object_set_new(opts, ctx->opts[i].opt->name,
				    ctx->opts[i].opt->arg ? clipped(ctx->opts[i].value) : json_true());
	json_object_set_new(details, "exit", json_integer(rc));
	json_object_set_new(details, "args", args);
	json_object_set_new(details, "options", opts);
	if (sudo && *sudo)
		json_object_set_new(details, "sudo_user", clipped(sudo));
	struct rs_audit_event ev = {
		.actor = actor, .source = "local", .action = action,
		.target = ctx->argc ? ctx->argv[0] : "",
		.outcome = rc == CMD_OK ? RS_AUDIT_SUCCESS : RS_AUDIT_FAILURE,
		.details = details,
	};
	char target[ARG_MAX_CHARS + 1];
	if (ctx->argc) {
		size_t n = clip_len(ctx->argv[0]);
		memcpy(target, ctx->argv[0], n);
		target[n] = '\0';
		ev.target = target;
	}
	if (rs_audit_append_db(db, keys, &ev, NULL, &err) < 0)
		cmd_error(ctx, "not recorded in the audit log: %s", err.msg);
	json_decref(details);
out:
	rs_db_close(db);
	rs_keyring_free(keys);
	rs_config_free(cfg);
}

static const struct cmd_option no_options[] = { { 0 } };
static const struct cmd_option list_options[] = {
	{ "since", 0, "TIME", "records at or after TIME (RFC 3339, a date, or 24h / 7d ago)" },
	{ "until", 0, "TIME", "records before TIME" },
	{ "actor", 0, "ACTOR", "only this actor (key:NAME, jwt:SUB, ip:ADDR, unix:USER, system)" },
	{ "action", 0, "ACTION", "only this action, or a family such as auth.*" },
	{ "outcome", 0, "OUTCOME", "success, denied or failure" },
	{ "limit", 'n', "N", "the newest N (default 100; 0: all)" },
	{ 0 },
};
static const struct cmd_option tail_options[] = {
	{ "follow", 'f', NULL, "keep printing new records as they are written (until Ctrl-C)" },
	{ "limit", 'n', "N", "start with the newest N (default 10; 0: only new ones)" },
	{ "actor", 0, "ACTOR", "only this actor" },
	{ "action", 0, "ACTION", "only this action, or a family such as auth.*" },
	{ "outcome", 0, "OUTCOME", "success, denied or failure" },
	{ 0 },
};
static const struct cmd_option stats_options[] = {
	{ "since", 0, "TIME", "records at or after TIME (default: all)" },
	{ "until", 0, "TIME", "records before TIME" },
	{ "top", 0, "N", "at most N rows per table (default 10; 0: all)" },
	{ 0 },
};
static const struct cmd_option verify_options[] = {
	{ "from", 0, "SEQ", "start at this record, trusting its link to the one before" },
	{ "head", 0, "SEQ:HASH", "an anchor from 'audit head': also detects a cut log" },
	{ "file", 'f', "EXPORT", "verify a JSON-lines export instead of the database" },
	{ 0 },
};
static const struct cmd_option export_options[] = {
	{ "format", 0, "FORMAT", "jsonl (the default) or csv" },
	{ "since", 0, "TIME", "records at or after TIME" },
	{ "output", 'o', "FILE", "write to FILE instead of standard output" },
	{ 0 },
};
static const struct cmd_option prune_options[] = {
	{ "before", 0, "TIME", "delete the records older than TIME (required)" },
	{ "force", 0, NULL, "also records never exported" },
	{ 0 },
};

static const struct cmd_entry audit_list = {
	.name = "list", .usage = "audit list [--since T] [--until T] [--actor A] [--action X] [--outcome O] [--limit N]",
	.summary = "records, oldest first", .options = list_options, .run = run_list,
};
static const struct cmd_entry audit_search = {
	.name = "search", .usage = "audit search TEXT [list options]",
	.summary = "records with TEXT in any field or their details",
	.options = list_options, .min_args = 1, .max_args = 1, .run = run_list,
};
static const struct cmd_entry audit_tail = {
	.name = "tail", .usage = "audit tail [-f] [-n N] [--actor A] [--action X] [--outcome O]",
	.summary = "the newest records; with -f, new ones as they are written",
	.description =
		"Prints the newest N records, then with --follow looks for new ones every\n"
		"200 ms, whichever process writes them, until interrupted (exit 0).",
	.options = tail_options, .run = run_tail,
};
static const struct cmd_entry audit_stats = {
	.name = "stats", .usage = "audit stats [--since T] [--until T] [--top N]",
	.summary = "record counts by action, outcome and actor over a period",
	.options = stats_options, .run = run_stats,
};
static const struct cmd_entry audit_show = {
	.name = "show", .usage = "audit show SEQ", .summary = "one record, every field",
	.options = no_options, .min_args = 1, .max_args = 1, .run = run_show,
};
static const struct cmd_entry audit_head = {
	.name = "head", .usage = "audit head",
	.summary = "the newest record's SEQ:HASH, an anchor to keep elsewhere",
	.options = no_options, .run = run_head,
};
static const struct cmd_entry audit_verify = {
	.name = "verify", .usage = "audit verify [--from SEQ] [--head SEQ:HASH] [--file EXPORT]",
	.summary = "recompute the hash chain; exit 1 naming the first broken record",
	.options = verify_options, .run = run_verify,
};
static const struct cmd_entry audit_export = {
	.name = "export", .usage = "audit export [--format jsonl|csv] [--since T] [-o FILE]",
	.summary = "every record with its hashes, streamed", .options = export_options,
	.run = run_export, .audited = true,
};
static const struct cmd_entry audit_prune = {
	.name = "prune", .usage = "audit prune --before T [--force]",
	.summary = "delete old records, leaving a checkpoint; refuses unexported ones",
	.options = prune_options, .run = run_prune,
};

static const struct cmd_entry *const audit_verbs[] = {
	&audit_list, &audit_search, &audit_tail, &audit_show, &audit_stats, &audit_head, &audit_verify,
	&audit_export, &audit_prune, NULL,
};

const struct cmd_entry cmd_audit = {
	.name = "audit",
	.usage = "audit <command> [options]",
	.summary = "read, verify, export and prune the tamper-evident audit log",
	.description =
		"Works on the database ([persistence] db, or --db FILE) with the keyring of\n"
		"[audit] key_file. exit status: 0 ok, 1 a broken chain, a missing record or\n"
		"a refused prune, 2 error",
	.options = no_options,
	.subs = audit_verbs,
};
