/*
 * config: resync.conf loaded into memory, with every value traced to where
 * it came from.
 *
 * rs_config_load reads a file (and its includes), applies RESYNC_* environment
 * overrides and KEY_file secrets, parses every value against the schema,
 * and fills in defaults, so afterwards each unnamed section exists and
 * every key with a default has a value.  Problems inside the configuration
 * (syntax, unknown keys, bad values, unreadable includes or secret files)
 * are collected in a struct rs_diags; only a main file that cannot be read
 * at all fails the call.  Cross-field and environment rules are in
 * validate.h.
 *
 * The config owns everything reachable from it; sections and values are
 * read-only for callers and live until rs_config_free.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "err.h"
#include "schema.h"

enum rs_source {
	RS_SRC_DEFAULT,
	RS_SRC_FILE,
	RS_SRC_ENV,
};

struct rs_conf_value {
	const struct rs_schema_key *key;
	enum rs_source source;
	const char *file;       /* RS_SRC_FILE: where it was set (interned) */
	int line;
	char *env;              /* RS_SRC_ENV: the variable's name */
	char *secret_file;      /* value was read from this KEY_file */
	char *raw;              /* the value as written (secrets: the secret) */
	bool ok;                /* parsed and within bounds */
	int64_t num;            /* int; duration ms; size bytes; bool; enum index */
	char *str;              /* string, url, regex, enum name; path resolved */
	char **items;           /* RS_T_LIST */
	size_t nitems;
};

struct rs_conf_section {
	const struct rs_schema_section *schema;
	char *name;             /* NULL for unnamed sections */
	const char *file;       /* header location; NULL when not in any file */
	int line;
	struct rs_conf_value *values;
	size_t nvalues, cap;
};

struct rs_config;

struct rs_config_options {
	/* Check as this environment instead of [server] environment. */
	const char *environment;
	/* RESYNC_* variables are read from here; NULL = the process's. */
	char *const *envp;
	bool ignore_env;
};

/* Load `path` ("-" reads standard input, shown as "<stdin>").  Returns NULL
 * with err set only when the file cannot be opened or read; everything else
 * is reported in `diags`. */
struct rs_config *rs_config_load(const char *path,
				 const struct rs_config_options *opt,
				 struct rs_diags *diags, struct rs_err *err);
void rs_config_free(struct rs_config *cfg);

const char *rs_config_path(const struct rs_config *cfg);
/* Every file read, the main one first, then includes in the order read. */
size_t rs_config_nfiles(const struct rs_config *cfg);
const char *rs_config_file_at(const struct rs_config *cfg, size_t i);
/* development, test or production, after any override. */
const char *rs_config_environment(const struct rs_config *cfg);
bool rs_config_is_production(const struct rs_config *cfg);

size_t rs_config_nsections(const struct rs_config *cfg);
const struct rs_conf_section *rs_config_section_at(const struct rs_config *cfg,
						   size_t i);
/* `name` NULL for unnamed sections. */
const struct rs_conf_section *rs_config_find(const struct rs_config *cfg,
					     const char *type, const char *name);
/* The value of `key` in `sec`, or NULL when unset and without default. */
const struct rs_conf_value *rs_conf_get(const struct rs_conf_section *sec,
					const char *key);

/* Shortcuts for keys of unnamed sections: the value, the schema default
 * when the value did not parse, or 0 / NULL when unset without default.
 * A (section, key) not in the schema is a programming error and aborts. */
int64_t rs_config_num(const struct rs_config *cfg, const char *section,
		      const char *key);
const char *rs_config_str(const struct rs_config *cfg, const char *section,
			  const char *key);

/* "upstream hwa" / "cache": how sections are named in messages. */
void rs_conf_section_label(const struct rs_conf_section *sec, char *buf,
			   size_t n);

/* The environment variable that overrides `key` of a section:
 * RESYNC_UPSTREAM_HWA_URL. */
void rs_conf_env_name(const char *section, const char *name, const char *key,
		      char *buf, size_t n);

/* Add a diagnostic about `val` (or, when val is NULL, about `key` of
 * `sec`), placed where the value was set, or else at its section. */
void rs_conf_report(const struct rs_config *cfg, struct rs_diags *d,
		    enum rs_severity sev, const struct rs_conf_section *sec,
		    const struct rs_conf_value *val, const char *key,
		    const char *fmt, ...) RS_PRINTF(7, 8);
void rs_conf_vreport(const struct rs_config *cfg, struct rs_diags *d,
		     enum rs_severity sev, const struct rs_conf_section *sec,
		     const struct rs_conf_value *val, const char *key,
		     const char *fmt, va_list ap) RS_PRINTF(7, 0);

/* Where a value (or, for defaults, its section) is, for diagnostics. */
struct rs_where rs_conf_where(const struct rs_config *cfg,
			      const struct rs_conf_section *sec,
			      const struct rs_conf_value *val);

#endif
