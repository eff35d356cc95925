#include "ini.h"

#include <ctype.h>
#include <string.h>

static char *skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static void rtrim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		s[--n] = '\0';
}

bool rs_ini_valid_key(const char *s)
{
	if (!s || !islower((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '_')
			return false;
	return true;
}

bool rs_ini_valid_name(const char *s)
{
	size_t n = 0;

	if (!s || !isalnum((unsigned char)*s))
		return false;
	for (; *s; s++, n++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return n <= 64;
}

/* The first character of `stops` in s that is outside quotes, or the end
 * of s; *open tells whether a quote was left unterminated. */
static char *scan_unquoted(char *s, const char *stops, bool *open)
{
	char quote = 0;

	for (; *s; s++) {
		if (quote) {
			if (quote == '"' && *s == '\\' && s[1])
				s++;
			else if (*s == quote)
				quote = 0;
		} else if (*s == '"' || *s == '\'') {
			quote = *s;
		} else if (strchr(stops, *s)) {
			break;
		}
	}
	*open = quote != 0;
	return s;
}

/* Cut a trailing comment (a # or ; after whitespace, outside quotes) and
 * check the quotes balance. */
static const char *strip_comment(char *v)
{
	bool open = false;

	for (char *p = v;; p++) {
		p = scan_unquoted(p, "#;", &open);
		if (!*p)
			break;
		if (p > v && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	if (open)
		return "unterminated quoted string";
	rtrim(v);
	return NULL;
}

void rs_ini_parse_line(char *line, struct rs_ini_line *out)
{
	char *p, *end, *eq;

	memset(out, 0, sizeof(*out));
	if (strlen(line) > RS_INI_LINE_MAX) {
		out->kind = RS_INI_ERROR;
		out->error = "line too long";
		return;
	}
	rtrim(line);
	p = skip_ws(line);
	/* A UTF-8 byte order mark at the start of a file is harmless. */
	if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
	    (unsigned char)p[2] == 0xBF)
		p = skip_ws(p + 3);
	if (!*p || *p == '#' || *p == ';') {
		out->kind = RS_INI_BLANK;
		return;
	}
	if (*p == '[') {
		end = strchr(p, ']');
		out->kind = RS_INI_ERROR;
		out->header = true;
		if (!end) {
			out->error = "malformed section header: missing ']'";
			return;
		}
		if (*skip_ws(end + 1) && *skip_ws(end + 1) != '#' &&
		    *skip_ws(end + 1) != ';') {
			out->error = "unexpected text after section header";
			return;
		}
		*end = '\0';
		p = skip_ws(p + 1);
		rtrim(p);
		out->section = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p) {
			*p++ = '\0';
			p = skip_ws(p);
			if (*p == '"' && strlen(p) >= 2 && p[strlen(p) - 1] == '"') {
				p[strlen(p) - 1] = '\0';
				p++;
			}
			out->name = p;
		}
		if (!*out->section) {
			out->error = "empty section header";
			return;
		}
		if (!rs_ini_valid_key(out->section)) {
			out->error = "invalid section type (use lowercase letters, digits and '_')";
			return;
		}
		if (out->name && !rs_ini_valid_name(out->name)) {
			out->error = "invalid section name (use letters, digits, '.', '_' and '-', at most 64)";
			return;
		}
		out->kind = RS_INI_SECTION;
		return;
	}
	eq = strchr(p, '=');
	out->kind = RS_INI_ERROR;
	if (!eq) {
		out->error = "expected 'key = value' or '[section]'";
		return;
	}
	*eq = '\0';
	rtrim(p);
	out->key = p;
	if (!*p) {
		out->error = "missing key before '='";
		return;
	}
	if (!rs_ini_valid_key(p)) {
		out->error = "invalid key name (keys are lower_snake_case)";
		return;
	}
	out->value = skip_ws(eq + 1);
	out->error = strip_comment(out->value);
	if (out->error)
		return;
	out->kind = RS_INI_KEYVAL;
}

/* Decode one quoted or bare token in place; `s` is trimmed already. */
int rs_ini_unquote(char *s, const char **why)
{
	size_t n = strlen(s);
	char *r, *w;

	if (n == 0 || (s[0] != '"' && s[0] != '\''))
		return 0;
	if (s[0] == '\'') {
		char *close = strchr(s + 1, '\'');

		if (!close) {
			*why = "unterminated quoted string";
			return -1;
		}
		if (close[1]) {
			*why = "unexpected text after closing quote";
			return -1;
		}
		memmove(s, s + 1, (size_t)(close - s - 1));
		s[close - s - 1] = '\0';
		return 0;
	}
	for (r = s + 1, w = s; *r && *r != '"'; r++) {
		if (*r == '\\') {
			r++;
			switch (*r) {
			case '"': *w++ = '"'; break;
			case '\\': *w++ = '\\'; break;
			case 'n': *w++ = '\n'; break;
			case 't': *w++ = '\t'; break;
			default:
				*why = "unknown escape in quoted string (use \\\" \\\\ \\n \\t)";
				return -1;
			}
		} else {
			*w++ = *r;
		}
	}
	if (*r != '"') {
		*why = "unterminated quoted string";
		return -1;
	}
	if (r[1]) {
		*why = "unexpected text after closing quote";
		return -1;
	}
	*w = '\0';
	return 0;
}

int rs_ini_split_list(char *value, char **items, size_t max, size_t *n,
		      const char **why)
{
	char *p = skip_ws(value);

	*n = 0;
	if (!*p)
		return 0;
	for (;;) {
		char *start = p;
		bool open;

		p = scan_unquoted(p, ",", &open);
		bool more = *p == ',';

		*p = '\0';
		start = skip_ws(start);
		rtrim(start);
		if (!*start) {
			*why = "empty list item";
			return -1;
		}
		if (*n == max) {
			*why = "too many list items";
			return -1;
		}
		if (rs_ini_unquote(start, why) < 0)
			return -1;
		items[(*n)++] = start;
		if (!more)
			return 0;
		p = skip_ws(p + 1);
		if (!*p) {
			*why = "empty list item";
			return -1;
		}
	}
}
