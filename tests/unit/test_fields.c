/* Declared request input: query strings, JSON bodies and path parameters
 * against their fields; 400 for malformed input, 422 for a broken rule in
 * a body; the field is always named. */
#include <ctype.h>
#include <string.h>

#include "fields.h"
#include "tap.h"

static bool lower(const char *s)
{
	for (; *s; s++)
		if (!islower((unsigned char)*s))
			return false;
	return true;
}

static const struct rs_field list[] = {
	{ .name = "verbose", .in = RS_IN_QUERY, .type = RS_F_BOOL },
	{ .name = "tag", .in = RS_IN_QUERY, .type = RS_F_STRING, .max = 8, .valid = lower,
	  .rule = "lowercase letters" },
	{ .name = "need", .in = RS_IN_QUERY, .type = RS_F_ENUM, .values = "a|bb" },
	{ .name = "id", .in = RS_IN_PATH, .type = RS_F_STRING, .min = 1, .max = 4, .valid = lower,
	  .rule = "lowercase letters" },
	{ .name = "text", .in = RS_IN_BODY, .type = RS_F_STRING, .required = true, .min = 1, .max = 3 },
	{ .name = "flag", .in = RS_IN_BODY, .type = RS_F_BOOL },
	{ .name = "key", .in = RS_IN_BODY, .type = RS_F_STRING },
	{ .name = "prefix", .in = RS_IN_BODY, .type = RS_F_STRING },
	{ 0 },
};
static const struct rs_fields f = { list, NULL };
static const struct rs_fields one = { list, "key|prefix" };

static int body(const struct rs_fields *spec, const char *text, struct rs_field_error *e)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc = j ? rs_fields_check_body(spec, j, e) : -2;
	json_decref(j);
	return rc;
}

int main(void)
{
	struct rs_field_error e;
	char buf[64];

	/* query */
	ok(rs_fields_check_query(&f, NULL, &e) == 0, "no query");
	ok(rs_fields_check_query(&f, "", &e) == 0, "empty query");
	ok(rs_fields_check_query(&f, "verbose=1&tag=abc&need=bb", &e) == 0, "declared parameters");
	ok(rs_fields_check_query(&f, "verbose&&tag=a%62c", &e) == 0, "bare flag, empty pair, escape");
	ok(rs_fields_check_query(&f, "nope=1", &e) < 0 && e.status == 400, "unknown parameter");
	is_str(e.field, "query", "named as query");
	has_str(e.message, "nope", "message names it");
	ok(rs_fields_check_query(&f, "verbose=1&verbose=0", &e) < 0 && e.status == 400, "repeated");
	is_str(e.field, "verbose", "repeated one named");
	ok(rs_fields_check_query(&f, "verbose=maybe", &e) < 0 && e.status == 400, "bad boolean");
	ok(rs_fields_check_query(&f, "tag=ABC", &e) < 0 && e.status == 400, "rule broken in a query is 400");
	has_str(e.message, "lowercase letters", "says what it wants");
	ok(rs_fields_check_query(&f, "tag=abcdefghi", &e) < 0, "too long");
	ok(rs_fields_check_query(&f, "need=c", &e) < 0, "not one of the values");
	ok(rs_fields_check_query(&f, "tag=%zz", &e) < 0 && e.status == 400, "bad escape");
	ok(rs_fields_check_query(&f, "tag=ab%", &e) < 0, "truncated escape");
	ok(rs_fields_check_query(&f, "tag=a%00b", &e) < 0, "NUL refused");
	ok(rs_fields_check_query(&f, "tag=%ff", &e) < 0, "invalid UTF-8 refused");
	is_str(rs_query_value("a=1&tag=x%20y&b", "tag", buf, sizeof(buf)), "x y", "value decoded");
	ok(rs_query_value("a=1", "tag", buf, sizeof(buf)) == NULL, "absent value");
	is_str(rs_query_value("b", "b", buf, sizeof(buf)), "", "bare flag value");
	is_int(rs_fields_bool(""), 1, "bare flag is true");
	is_int(rs_fields_bool("OFF"), 0, "off");
	is_int(rs_fields_bool("2"), -1, "2 is not a boolean");

	/* path */
	ok(rs_fields_check_path(&f, "abc", &e) == 0, "good id");
	ok(rs_fields_check_path(&f, "ABC", &e) < 0 && e.status == 400, "rule broken in a path is 400");
	is_str(e.field, "id", "named as id");
	ok(rs_fields_check_path(&f, "abcde", &e) < 0, "id too long");
	ok(rs_fields_check_path(&f, "%61", &e) < 0, "escaped id refused");
	ok(rs_fields_check_path(&f, NULL, &e) < 0, "missing id refused");

	/* body */
	ok(body(&f, "{\"text\":\"abc\",\"flag\":true}", &e) == 0, "good body");
	ok(body(&f, "{\"text\":\"\\u00e9\\u00e9\\u00e9\"}", &e) == 0, "length in characters, not bytes");
	ok(body(&f, "{\"text\":\"abcd\"}", &e) < 0 && e.status == 422, "too long in a body is 422");
	is_str(e.field, "text", "named");
	has_str(e.message, "1 to 3 characters", "says the bounds");
	ok(body(&f, "{\"flag\":true}", &e) < 0 && e.status == 400, "required missing is 400");
	has_str(e.message, "text: is required", "says it is required");
	ok(body(&f, "{\"text\":1}", &e) < 0 && e.status == 400, "wrong type is 400");
	ok(body(&f, "{\"text\":\"a\",\"flag\":\"yes\"}", &e) < 0 && e.status == 400, "boolean must be JSON true/false");
	ok(body(&f, "{\"text\":\"a\",\"evil\":1}", &e) < 0 && e.status == 400, "unknown field is 400");
	has_str(e.message, "evil", "names the unknown field");
	ok(body(&f, "{\"text\":\"a\",\"verbose\":true}", &e) < 0, "a query field is not a body field");
	ok(body(&one, "{\"text\":\"a\",\"key\":\"k\"}", &e) == 0, "one of");
	ok(body(&one, "{\"text\":\"a\"}", &e) < 0 && e.status == 400, "none of one_of");
	ok(body(&one, "{\"text\":\"a\",\"key\":\"k\",\"prefix\":\"p\"}", &e) < 0, "two of one_of");
	has_str(e.message, "exactly one of key|prefix", "says which");
	ok(rs_fields_want_body(&f), "takes a body");
	ok(!rs_fields_want_body(NULL), "no declaration takes nothing");
	ok(rs_fields_check_query(NULL, "x=1", &e) < 0, "no declaration: any parameter refused");
	return tap_done();
}
