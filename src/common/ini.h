/*
 * ini: the lexical layer of resync.conf, one line at a time.
 *
 * rs_ini_parse_line classifies a line and splits it in place (the pointers
 * it returns point into the caller's line).  Values keep their quotes at
 * this stage, because whether a comma separates list items depends on the
 * key's type, which only the schema knows; rs_ini_unquote and
 * rs_ini_split_list decode them once the type is known.
 *
 * Syntax:
 *   # comment            ; comment
 *   [section]            [section name]
 *   key = value          key = "quoted \"value\""   key = 'literal'
 *   key = a, b, "c,d"    (lists)
 *   key = value  # trailing comment (after whitespace, outside quotes)
 */
#ifndef RS_INI_H
#define RS_INI_H

#include <stdbool.h>
#include <stddef.h>

enum rs_ini_kind {
	RS_INI_BLANK,     /* empty or comment */
	RS_INI_SECTION,
	RS_INI_KEYVAL,
	RS_INI_ERROR,
};

struct rs_ini_line {
	enum rs_ini_kind kind;
	char *section;      /* RS_INI_SECTION: "upstream" */
	char *name;         /* RS_INI_SECTION: "hwa", or NULL */
	char *key;          /* RS_INI_KEYVAL */
	char *value;        /* RS_INI_KEYVAL: raw, trimmed, quotes kept */
	const char *error;  /* RS_INI_ERROR: static reason */
	bool header;        /* the line is a section header, maybe malformed */
};

/* Longest line accepted; longer lines are an error, not truncated. */
#define RS_INI_LINE_MAX 8192

void rs_ini_parse_line(char *line, struct rs_ini_line *out);

/* Decode a scalar value in place: strips one level of quotes and
 * resolves escapes in "..." (\" \\ \n \t).  Returns 0, or -1 with a static
 * reason. */
int rs_ini_unquote(char *value, const char **why);

/* Split a list value in place on commas outside quotes, trimming and
 * unquoting each item.  Fills items[] (at most max) and *n.  An empty value
 * is an empty list; an empty item ("a,,b") is an error. */
int rs_ini_split_list(char *value, char **items, size_t max, size_t *n,
		      const char **why);

/* True for names of the form [a-z][a-z0-9_]* (keys and section types). */
bool rs_ini_valid_key(const char *s);
/* True for section names: [A-Za-z0-9][A-Za-z0-9._-]* up to 64 bytes. */
bool rs_ini_valid_name(const char *s);

#endif
