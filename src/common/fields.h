/*
 * fields: declared request parameters, and the checks of a request
 * against them.
 *
 * Each route of the responder lists what it takes (router.c): query
 * parameters, JSON body fields and its path parameter, each with a type,
 * length bounds in characters, an optional pattern check and, for enums,
 * the values allowed.  Anything not declared is refused, so a handler only
 * ever sees input someone decided to accept.
 *
 * The outcome follows RFC 9110: 400 when the request is malformed (an
 * unknown or repeated parameter, a wrong JSON type, a required field
 * missing, a bad percent-escape, a path or query value breaking its
 * rule), 422 when a well-formed JSON body breaks a rule (too long, not
 * matching, not one of the values).  The error names
 * the field and says what it wants; it never echoes the value, which may
 * be hostile.
 */
#ifndef RS_FIELDS_H
#define RS_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum rs_field_in { RS_IN_QUERY, RS_IN_BODY, RS_IN_PATH };
enum rs_field_type { RS_F_STRING, RS_F_BOOL, RS_F_ENUM };

struct rs_field {
	const char *name;
	enum rs_field_in in;
	enum rs_field_type type;
	bool required;
	size_t min, max;            /* RS_F_STRING: characters (UTF-8); 0 = no bound */
	bool (*valid)(const char *s);   /* the pattern, or NULL */
	const char *rule;           /* what valid wants, for the message */
	const char *values;         /* RS_F_ENUM: "a|b|c" */
};

/* A route's declaration: fields end with a NULL name; one_of, when set
 * ("key|prefix|scope"), says exactly one of those body fields is given. */
struct rs_fields {
	const struct rs_field *list;
	const char *one_of;
};

struct rs_field_error {
	int status;                 /* 400 or 422 */
	char field[64];
	char message[256];          /* "FIELD: what is wrong" */
};

/* Query string (raw, NULL or "" for none) against the RS_IN_QUERY
 * fields.  0, or -1 with *e filled. */
int rs_fields_check_query(const struct rs_fields *f, const char *query,
			  struct rs_field_error *e);
/* A JSON object body against the RS_IN_BODY fields. */
int rs_fields_check_body(const struct rs_fields *f, const json_t *body,
			 struct rs_field_error *e);
/* The path parameter (the raw segment) against the RS_IN_PATH field. */
int rs_fields_check_path(const struct rs_fields *f, const char *param,
			 struct rs_field_error *e);
/* Does the declaration take a body at all? */
bool rs_fields_want_body(const struct rs_fields *f);

/* The value of a query parameter, percent-decoded into buf (n bytes);
 * NULL when absent or undecodable.  For handlers, after the check. */
const char *rs_query_value(const char *query, const char *name, char *buf, size_t n);
/* "1", "true", "yes", "on" / "0", "false", "no", "off" (any case), or ""
 * for a bare flag (true); -1 for anything else. */
int rs_fields_bool(const char *s);

#endif
