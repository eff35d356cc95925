/*
 * cmd: resyncctl's dispatch table and option parser.
 *
 * Adding a subcommand:
 *   1. src/cli/cmd_<name>.c exporting `const struct cmd_entry cmd_<name>`
 *      (verbs such as `cache verify` are entries in its .subs);
 *   2. one line in the table in src/cli/table.c;
 *   3. the file in src_cli_libresyncctl_a_SOURCES in Makefile.am;
 *   4. man/resyncctl-<name>.1 whose SYNOPSIS lines read
 *      "resyncctl <usage>" for the entry and each verb (tests/unit/test_cmd
 *      fails when the page is missing or differs), added to dist_man1_MANS;
 *   5. tests/cli/<name>.bats, added to cli_tests.
 *
 * The parser enforces each entry's declaration (its options, whether they
 * take an argument, min/max positional arguments) before the handler runs,
 * so handlers never re-check argc.  Commands and verbs may be abbreviated
 * to a unique prefix; an unknown one lists the near candidates.  Global
 * options (--config, --db, --json, -q, -v) are accepted before or after the
 * command.
 */
#ifndef RS_CMD_H
#define RS_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum cmd_exit {
	CMD_OK = 0,       /* done; the checked thing is good */
	CMD_BAD = 1,      /* the checked thing is bad (invalid config ...) */
	CMD_FAIL = 2,     /* usage or operational error */
};

struct cmd_option {
	const char *name;       /* long name, without "--"; NULL ends a list */
	char short_name;        /* 0 = none */
	const char *arg;        /* argument name for help ("FILE"), NULL = flag */
	const char *help;
};

struct cmd_ctx;

struct cmd_entry {
	const char *name;
	const char *usage;      /* "config-validate [options] [FILE|-]..." */
	const char *summary;    /* one line for the command list */
	const char *description;/* a paragraph for --help, or NULL */
	const struct cmd_option *options;
	int min_args, max_args; /* max_args -1 = no limit */
	int (*run)(struct cmd_ctx *ctx);
	const struct cmd_entry *const *subs;  /* verbs, NULL-terminated */
	bool audited;           /* changes Resync's state: recorded in the audit log */
	const char *audited_with;  /* ... only when this option is given */
	int audited_args;       /* the positional arguments recorded: the first N
				 * (0: all); a value to store is nobody's business */
};

struct cmd_global {
	const char *config;     /* --config */
	const char *db;         /* --db */
	bool json;
	int verbosity;          /* -1 quiet, 0 normal, 1+ verbose */
};

struct cmd_optval {
	const struct cmd_option *opt;
	const char *value;      /* "" for flags */
};

struct cmd_ctx {
	struct cmd_global g;
	const struct cmd_entry *entry;
	char path[128];         /* "config-validate", "cache purge" */
	int argc;               /* positional arguments */
	char **argv;
	struct cmd_optval *opts;
	size_t nopts;
};

extern const struct cmd_entry *const cmd_table[];

/* Parse argv and run the command from `table`; returns the exit code. */
int cmd_dispatch(const struct cmd_entry *const *table, int argc, char **argv);

/* The last value given for option `name`, "" for a flag given, or NULL. */
const char *cmd_opt(const struct cmd_ctx *ctx, const char *name);
bool cmd_flag(const struct cmd_ctx *ctx, const char *name);

/* The config file to use: --config, $RESYNC_CONFIG, or the installed one. */
const char *cmd_config_path(const struct cmd_ctx *ctx);

/* "resyncctl: <path>: message" on stderr. */
void cmd_error(const struct cmd_ctx *ctx, const char *fmt, ...) RS_PRINTF(2, 3);
/* As cmd_error, then "Try 'resyncctl <path> --help'."; returns CMD_FAIL. */
int cmd_usage_error(const struct cmd_ctx *ctx, const char *fmt, ...)
	RS_PRINTF(2, 3);

/* Load the configuration for a command that acts on Resync's state:
 * cmd_config_path's file; when that is the installed default, missing,
 * and --db was given, the built-in defaults instead (so `--db FILE` works
 * without a configuration).  Errors in the sections the command reads
 * (`sections`, NULL-terminated) are printed and fail it; problems
 * elsewhere are left to config-validate.  NULL (message printed) or the
 * configuration the caller frees with rs_config_free. */
struct rs_config;
struct rs_config *cmd_load_config(const struct cmd_ctx *ctx,
				  const char *const *sections);

/* As cmd_load_config, printing nothing: NULL when the configuration
 * cannot be used. */
struct rs_config *cmd_load_config_quietly(const struct cmd_ctx *ctx,
					  const char *const *sections);

/* After an audited command ran with exit code rc: append its cli.<command>
 * record (actor unix:USER) to the database's audit log.  Says on stderr
 * when that failed; the exit code stays the command's (cmd_audit.c). */
void cmd_audit_command(const struct cmd_ctx *ctx, int rc);

/* Print a JSON document (indented, newline-terminated) to stdout and
 * release it. */
struct json_t;
void cmd_print_json(struct json_t *doc);

/* What running responders published to db_path's stats table in the last
 * few seconds (an array of rs_stats_read rows), or NULL when there is none
 * or the database cannot be read: callers report without it. */
struct json_t *cmd_live_stats(const char *db_path);

#define RS_DEFAULT_CONFIG RS_SYSCONFDIR "/resync/resync.conf"

#endif
