/*
 * resyncctl's dispatch table and parser: every entry has a man page whose
 * SYNOPSIS matches its usage, and the parser enforces declarations,
 * prefixes and global options before a handler runs.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cmd.h"
#include "tap.h"
#include "testlib.h"


/* The SYNOPSIS section as plain lines: font escapes dropped, "\-" -> "-",
 * requests (.nf, .B ...) dropped, whitespace squeezed. */
static char *synopsis(const char *man)
{
	const char *p = strstr(man, "\n.SH SYNOPSIS");
	struct rs_buf b;

	if (!p)
		return NULL;
	p = strchr(p + 1, '\n');
	rs_buf_init(&b, 1 << 20);
	while (p && *++p && strncmp(p, ".SH", 3) != 0) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		bool space = false;

		if (*p != '.') {
			for (size_t i = 0; i < len; i++) {
				if (p[i] == '\\' && i + 1 < len && p[i + 1] == 'f') {
					i += 2;
					continue;
				}
				char c = p[i];

				if (p[i] == '\\' && i + 1 < len && p[i + 1] == '-') {
					c = '-';
					i++;
				} else if (p[i] == '\\' && i + 1 < len && p[i + 1] == '&') {
					i++;
					continue;
				}
				if (isspace((unsigned char)c)) {
					space = true;
					continue;
				}
				if (space && b.len && b.data[b.len - 1] != '\n')
					rs_buf_putc(&b, ' ');
				space = false;
				rs_buf_putc(&b, c);
			}
			rs_buf_putc(&b, '\n');
		}
		p = eol;
	}
	return rs_buf_detach(&b);
}

static void check_entry(const char *page, const char *man, const struct cmd_entry *e)
{
	char *syn = synopsis(man), want[1024], name[1200];

	snprintf(want, sizeof(want), "resyncctl %s\n", e->usage);
	snprintf(name, sizeof(name), "%s SYNOPSIS has 'resyncctl %s'", page, e->usage);
	if (!ok(syn && strstr(syn, want), name))
		printf("#   SYNOPSIS reads:\n%s", syn ? syn : "(none)\n");
	free(syn);
	for (size_t i = 0; e->subs && e->subs[i]; i++)
		check_entry(page, man, e->subs[i]);
}

static void test_man_pages(void)
{
	const char *src = getenv("RS_TOP_SRCDIR");
	char path[4096], name[300], *top, *man;

	if (!src || !*src)
		src = ".";
	snprintf(path, sizeof(path), "%s/man/resyncctl.1", src);
	top = slurp(path);
	ok(top != NULL, "man/resyncctl.1 exists");
	/* Read roff's "\-" as "-". */
	for (char *r = top, *w = top; r && *r; r++) {
		if (r[0] == '\\' && r[1] == '-')
			r++;
		*w++ = *r;
		if (!r[1])
			*w = '\0';
	}
	for (size_t i = 0; cmd_table[i]; i++) {
		const struct cmd_entry *e = cmd_table[i];

		snprintf(path, sizeof(path), "%s/man/resyncctl-%s.1", src, e->name);
		man = slurp(path);
		snprintf(name, sizeof(name), "man/resyncctl-%s.1 exists", e->name);
		ok(man != NULL, name);
		if (man)
			check_entry(path, man, e);
		snprintf(name, sizeof(name), "resyncctl.1 lists %s", e->name);
		ok(top && strstr(top, e->name), name);
		snprintf(name, sizeof(name), "%s has a summary and usage starting with its name", e->name);
		ok(e->summary && *e->summary &&
		   strncmp(e->usage, e->name, strlen(e->name)) == 0, name);
		free(man);
	}
	free(top);
}

/* ---- the parser, on a table of its own ---------------------------------- */

static struct {
	int calls;
	int argc;
	char args[4][32];
	char mode[32];
	bool flag, json;
	int verbosity;
	char config[64];
} seen;

static int record(struct cmd_ctx *ctx)
{
	const char *m = cmd_opt(ctx, "mode");

	seen.calls++;
	seen.argc = ctx->argc;
	for (int i = 0; i < ctx->argc && i < 4; i++)
		snprintf(seen.args[i], sizeof(seen.args[i]), "%s", ctx->argv[i]);
	snprintf(seen.mode, sizeof(seen.mode), "%s", m ? m : "");
	seen.flag = cmd_flag(ctx, "flag");
	seen.json = ctx->g.json;
	seen.verbosity = ctx->g.verbosity;
	snprintf(seen.config, sizeof(seen.config), "%s", ctx->g.config ? ctx->g.config : "");
	return 7;
}

static const struct cmd_option opts[] = {
	{ "mode", 'm', "MODE", "a mode" },
	{ "flag", 'f', NULL, "a flag" },
	{ NULL, 0, NULL, NULL },
};
static const struct cmd_entry verb_show = { .name = "show", .usage = "thing show NAME", .summary = "show", .options = opts, .min_args = 1, .max_args = 1, .run = record };
static const struct cmd_entry verb_stats = { .name = "stats", .usage = "thing stats", .summary = "stats", .options = opts, .run = record };
static const struct cmd_entry *const verbs[] = { &verb_show, &verb_stats, NULL };
static const struct cmd_entry thing = { .name = "thing", .usage = "thing <command>", .summary = "things", .subs = verbs };
static const struct cmd_entry check = { .name = "check", .usage = "check [FILE]...", .summary = "check", .options = opts, .max_args = 2, .run = record };
static const struct cmd_entry checkout = { .name = "checkout", .usage = "checkout", .summary = "checkout", .run = record };
static const struct cmd_entry *const table[] = { &thing, &check, &checkout, NULL };

static int run(const char *line)
{
	char *argv[16], buf[512], *save = NULL;
	int argc = 0, rc;

	snprintf(buf, sizeof(buf), "resyncctl %s", line);
	for (char *t = strtok_r(buf, " ", &save); t && argc < 15; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	memset(&seen, 0, sizeof(seen));
	fflush(stdout);
	/* Usage errors and help go to stdout/stderr: keep TAP output clean. */
	{
		int out = dup(1), err = dup(2);
		FILE *devnull = fopen("/dev/null", "w");

		dup2(fileno(devnull), 1);
		dup2(fileno(devnull), 2);
		rc = cmd_dispatch(table, argc, argv);
		fflush(stdout);
		fflush(stderr);
		dup2(out, 1);
		dup2(err, 2);
		close(out);
		close(err);
		fclose(devnull);
	}
	return rc;
}

static void test_parser(void)
{
	is_int(run("check a b"), 7, "handler's exit code is returned");
	ok(seen.calls == 1 && seen.argc == 2 && strcmp(seen.args[1], "b") == 0, "positional args passed");
	is_int(run("check a b c"), CMD_FAIL, "too many args is a usage error");
	is_int(seen.calls, 0, "handler does not run on a usage error");
	is_int(run("check --mode=fast -f x"), 7, "--opt=value and a short flag");
	ok(strcmp(seen.mode, "fast") == 0 && seen.flag && seen.argc == 1, "option values seen by the handler");
	is_int(run("check -m slow"), 7, "short option with separate argument");
	is_str(seen.mode, "slow", "short option value");
	is_int(run("check -mquick"), 7, "short option with attached argument");
	is_str(seen.mode, "quick", "attached value");
	is_int(run("check --mode"), CMD_FAIL, "missing option argument");
	is_int(run("check --nope"), CMD_FAIL, "unknown option");
	is_int(run("check --flag=1"), CMD_FAIL, "argument given to a flag");
	is_int(run("--json -c my.conf check -qf -- -x"), 7, "global options before, -- ends options");
	ok(seen.json && strcmp(seen.config, "my.conf") == 0 && seen.verbosity == -1 &&
	   seen.flag && seen.argc == 1 && strcmp(seen.args[0], "-x") == 0, "globals and bundle parsed");
	is_int(run("check --json -v"), 7, "global options after the command");
	ok(seen.json && seen.verbosity == 1, "global options after the command are seen");
	is_int(run("--mode x check"), CMD_FAIL, "a command option before the command is refused");
	is_int(run("th sh name"), 7, "unique prefixes for command and verb");
	is_str(seen.args[0], "name", "verb argument");
	is_int(run("thing show"), CMD_FAIL, "missing verb argument");
	is_int(run("thing"), CMD_FAIL, "a command with verbs needs one");
	is_int(run("thing bogus"), CMD_FAIL, "unknown verb");
	is_int(run("che"), CMD_FAIL, "an ambiguous prefix is refused");
	is_int(run("chekc"), CMD_FAIL, "unknown command");
	is_int(run(""), CMD_FAIL, "no command is a usage error");
	is_int(run("--help"), CMD_OK, "--help exits 0");
	is_int(run("thing show --help"), CMD_OK, "--help at the verb level exits 0");
	is_int(seen.calls, 0, "--help does not run the handler");
	is_int(run("help check"), CMD_OK, "help COMMAND exits 0");
	is_int(run("--version"), CMD_OK, "--version exits 0");
}

int main(void)
{
	test_man_pages();
	test_parser();
	return tap_done();
}
