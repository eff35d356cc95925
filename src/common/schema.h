/*
 * schema: the one table of every configuration section and key.
 *
 * The same table drives parsing (types, bounds), validation, the effective
 * configuration printed by `config-validate --print`, environment overrides,
 * and the KEYS section of resync.conf(5), which a unit test regenerates and
 * compares so the page cannot drift from the code.  Adding a key = one row
 * in schema.c, then `make update-man` and a line in etc/resync.conf.example.
 *
 * Bounds are in the type's unit (milliseconds for durations, bytes for
 * sizes); min == max == 0 means unbounded.
 */
#ifndef RS_SCHEMA_H
#define RS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rs_type {
	RS_T_STRING,
	RS_T_INT,
	RS_T_BOOL,
	RS_T_DURATION,  /* milliseconds */
	RS_T_SIZE,      /* bytes */
	RS_T_ENUM,
	RS_T_LIST,      /* comma-separated strings */
	RS_T_URL,       /* http:// or https:// */
	RS_T_PATH,      /* relative paths resolve against the config file's dir */
	RS_T_REGEX,     /* POSIX extended regular expression */
};

enum rs_key_flags {
	RS_K_REQUIRED = 1 << 0,   /* a named section must set it */
	RS_K_SECRET = 1 << 1,     /* value redacted; may come from KEY_file */
	RS_K_SECRET_PATH = 1 << 2, /* a path to secret material: perms checked */
	RS_K_MUST_EXIST = 1 << 3, /* RS_T_PATH: the file must be readable now */
	RS_K_URL_ITEMS = 1 << 4,  /* RS_T_LIST: every item is checked as RS_T_URL */
	RS_K_KEYRING = 1 << 5,    /* RS_K_SECRET_PATH to a keyring (seal.h), loaded to check it */
};

struct rs_schema_section {
	const char *name;
	bool named;               /* [upstream NAME] vs [cache] */
	const char *doc;
};

struct rs_schema_key {
	const char *section;
	const char *name;
	enum rs_type type;
	const char *def;          /* default as written in a file; NULL = unset */
	int64_t min, max;
	const char *values;       /* RS_T_ENUM: "a|b|c" */
	const char *pattern;      /* strings and list items must match (ERE) */
	unsigned flags;
	const char *doc;          /* one line */
};

extern const struct rs_schema_section rs_schema_sections[];
extern const size_t rs_schema_nsections;
extern const struct rs_schema_key rs_schema_keys[];
extern const size_t rs_schema_nkeys;

const struct rs_schema_section *rs_schema_section(const char *name);
const struct rs_schema_key *rs_schema_key(const char *section, const char *key);

/* The closest known section / key of `section` to a misspelt one, or NULL. */
const char *rs_schema_suggest_section(const char *name);
const char *rs_schema_suggest_key(const char *section, const char *key);

/* Index of `value` in an enum key's values, or -1. */
int rs_schema_enum_index(const struct rs_schema_key *k, const char *value);

/* "string", "duration", ... */
const char *rs_type_name(enum rs_type t);

/* Format a bound / value of a numeric type in its unit ("30s", "256MB",
 * "42"). */
void rs_schema_format_number(enum rs_type t, int64_t v, char *buf, size_t n);

#endif
