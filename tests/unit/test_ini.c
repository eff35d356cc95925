/* The line lexer: sections, keys, values, quotes, comments, lists. */
#include <string.h>

#include "ini.h"
#include "tap.h"

static struct rs_ini_line parse(const char *text, char *buf, size_t n)
{
	struct rs_ini_line l;

	snprintf(buf, n, "%s", text);
	rs_ini_parse_line(buf, &l);
	return l;
}

static void error_line(const char *text, const char *reason)
{
	char buf[256], name[300];
	struct rs_ini_line l = parse(text, buf, sizeof(buf));

	snprintf(name, sizeof(name), "'%s' is an error", text);
	is_int(l.kind, RS_INI_ERROR, name);
	snprintf(name, sizeof(name), "'%s' reason", text);
	has_str(l.error, reason, name);
}

static void unquote(const char *in, const char *want)
{
	char buf[256], name[300];
	const char *why = NULL;

	snprintf(buf, sizeof(buf), "%s", in);
	snprintf(name, sizeof(name), "unquote %s", in);
	if (rs_ini_unquote(buf, &why) < 0) {
		ok(0, name);
		printf("#   rejected: %s\n", why);
		return;
	}
	is_str(buf, want, name);
}

int main(void)
{
	char buf[512];
	struct rs_ini_line l;
	char *items[8];
	size_t n;
	const char *why;

	l = parse("", buf, sizeof(buf));
	is_int(l.kind, RS_INI_BLANK, "empty line is blank");
	l = parse("   # comment", buf, sizeof(buf));
	is_int(l.kind, RS_INI_BLANK, "# comment is blank");
	l = parse("; comment", buf, sizeof(buf));
	is_int(l.kind, RS_INI_BLANK, "; comment is blank");

	l = parse("[cache]", buf, sizeof(buf));
	ok(l.kind == RS_INI_SECTION && strcmp(l.section, "cache") == 0 && !l.name,
	   "[cache] is an unnamed section");
	l = parse("  [ upstream  hwa ]  # main", buf, sizeof(buf));
	ok(l.kind == RS_INI_SECTION && strcmp(l.section, "upstream") == 0 &&
	   l.name && strcmp(l.name, "hwa") == 0, "[ upstream  hwa ] is named hwa");
	l = parse("[key \"ops-team\"]", buf, sizeof(buf));
	ok(l.kind == RS_INI_SECTION && l.name && strcmp(l.name, "ops-team") == 0,
	   "quoted section name");
	error_line("[cache", "missing ']'");
	error_line("[]", "empty section");
	error_line("[Cache]", "invalid section type");
	error_line("[upstream a b]", "invalid section name");
	error_line("[cache] x", "unexpected text");

	l = parse("ttl = 30s", buf, sizeof(buf));
	ok(l.kind == RS_INI_KEYVAL && strcmp(l.key, "ttl") == 0 &&
	   strcmp(l.value, "30s") == 0, "key = value");
	l = parse("ttl=30s   # five minutes is better", buf, sizeof(buf));
	is_str(l.value, "30s", "trailing comment after whitespace is dropped");
	l = parse("url = https://h/x#frag", buf, sizeof(buf));
	is_str(l.value, "https://h/x#frag", "# without whitespace before it is kept");
	l = parse("name = \"a # b\" # c", buf, sizeof(buf));
	is_str(l.value, "\"a # b\"", "# inside quotes is kept, quotes kept for later");
	l = parse("empty =", buf, sizeof(buf));
	ok(l.kind == RS_INI_KEYVAL && strcmp(l.value, "") == 0, "empty value");
	l = parse("k = v\r\n", buf, sizeof(buf));
	is_str(l.value, "v", "CRLF line ending");
	error_line("just words", "expected 'key = value'");
	error_line(" = 3", "missing key");
	error_line("Max = 3", "lower_snake_case");
	error_line("k = \"open", "unterminated");

	unquote("plain", "plain");
	unquote("\"a \\\"b\\\" \\\\ \\n\"", "a \"b\" \\ \n");
	unquote("'lit\\eral'", "lit\\eral");
	unquote("\"\"", "");
	snprintf(buf, sizeof(buf), "\"a\" b");
	ok(rs_ini_unquote(buf, &why) < 0, "text after closing quote rejected");
	snprintf(buf, sizeof(buf), "\"\\x\"");
	ok(rs_ini_unquote(buf, &why) < 0, "unknown escape rejected");

	snprintf(buf, sizeof(buf), "a, b ,\"c,d\", 'e'");
	ok(rs_ini_split_list(buf, items, 8, &n, &why) == 0 && n == 4, "list of 4");
	is_str(items[0], "a", "item 1");
	is_str(items[1], "b", "item 2 trimmed");
	is_str(items[2], "c,d", "quoted comma stays in the item");
	is_str(items[3], "e", "single-quoted item");
	snprintf(buf, sizeof(buf), "   ");
	ok(rs_ini_split_list(buf, items, 8, &n, &why) == 0 && n == 0, "blank list is empty");
	snprintf(buf, sizeof(buf), "a,,b");
	ok(rs_ini_split_list(buf, items, 8, &n, &why) < 0, "empty item rejected");
	snprintf(buf, sizeof(buf), "a,");
	ok(rs_ini_split_list(buf, items, 8, &n, &why) < 0, "trailing comma rejected");
	snprintf(buf, sizeof(buf), "a,b,c");
	ok(rs_ini_split_list(buf, items, 2, &n, &why) < 0, "too many items rejected");

	{
		static char big[RS_INI_LINE_MAX + 16];

		memset(big, 'a', sizeof(big) - 1);
		big[0] = 'k';
		big[1] = '=';
		rs_ini_parse_line(big, &l);
		is_int(l.kind, RS_INI_ERROR, "overlong line is an error, not truncated");
	}
	ok(rs_ini_valid_name("ops-team.1") && !rs_ini_valid_name("-x") &&
	   !rs_ini_valid_name("a/b"), "section name rules");
	return tap_done();
}
