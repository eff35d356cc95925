/*
 * fields: see fields.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fields.h"
#include "util.h"

#define QUERY_VALUE_MAX 1024

static int fail(struct rs_field_error *e, int status, const char *field,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct rs_field_error *e, int status, const char *field,
		const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	e->status = status;
	rs_copy_text(e->field, sizeof(e->field), field);
	snprintf(e->message, sizeof(e->message), "%s: %s", e->field, why);
	return -1;
}

/* Characters of valid UTF-8, or -1 when s is not valid UTF-8. */
static long utf8_chars(const char *s, size_t len)
{
	long n = 0;

	for (size_t i = 0; i < len; n++) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!k || i + k > len)
			return -1;
		for (size_t j = 1; j < k; j++)
			if (((unsigned char)s[i + j] >> 6) != 2)
				return -1;
		i += k;
	}
	return n;
}

static const struct rs_field *find(const struct rs_fields *f, enum rs_field_in in,
				   const char *name, size_t len)
{
	for (const struct rs_field *d = f ? f->list : NULL; d && d->name; d++)
		if (d->in == in && strlen(d->name) == len && strncmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

static bool enum_has(const char *values, const char *s)
{
	size_t n = strlen(s);

	for (const char *p = values; p && *p;) {
		size_t len = strcspn(p, "|");
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		p += len + (p[len] == '|');
	}
	return false;
}

/* A string value of d, len bytes (may hold NUL when from JSON).  A rule
 * broken in a well-formed body is 422; anywhere else the request itself is
 * malformed: 400. */
static int check_string(const struct rs_field *d, const char *s, size_t len,
			struct rs_field_error *e)
{
	int rule = d->in == RS_IN_BODY ? 422 : 400;

	if (strlen(s) != len)
		return fail(e, rule, d->name, "must not contain NUL characters");
	if (d->type == RS_F_BOOL) {
		if (rs_fields_bool(s) < 0)
			return fail(e, 400, d->name, "must be true or false");
		return 0;
	}
	if (d->type == RS_F_ENUM) {
		if (!enum_has(d->values, s))
			return fail(e, rule, d->name, "must be one of %s", d->values);
		return 0;
	}
	long chars = utf8_chars(s, len);
	if (chars < 0)
		return fail(e, 400, d->name, "is not valid UTF-8");
	if ((d->min && (size_t)chars < d->min) || (d->max && (size_t)chars > d->max)) {
		if (d->min && d->max)
			return fail(e, rule, d->name, "must be %zu to %zu characters", d->min, d->max);
		if (d->max)
			return fail(e, rule, d->name, "must be at most %zu characters", d->max);
		return fail(e, rule, d->name, "must be at least %zu characters", d->min);
	}
	if (d->valid && !d->valid(s))
		return fail(e, rule, d->name, "must be %s", d->rule ? d->rule : "well formed");
	return 0;
}

/* Percent-decode src (n bytes) into dst (cap bytes); -1 on a bad escape
 * or when it does not fit.  '+' is a space, as forms send it. */
static int decode(const char *src, size_t n, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = rs_hex_value(src[i + 1]), lo = rs_hex_value(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return (int)o;
}

int rs_fields_check_query(const struct rs_fields *f, const char *query,
			  struct rs_field_error *e)
{
	char value[QUERY_VALUE_MAX];
	const struct rs_field *seen[16];
	size_t nseen = 0;

	for (const char *p = query; p && *p;) {
		size_t len = strcspn(p, "&");
		size_t nlen = strcspn(p, "=&");
		if (len == 0) {
			p++;
			continue;
		}
		char name[64];
		int dn = decode(p, nlen, name, sizeof(name));
		const struct rs_field *d = dn >= 0 ? find(f, RS_IN_QUERY, name, (size_t)dn) : NULL;
		if (!d)
			return fail(e, 400, "query", "unknown parameter \"%.48s\"",
				    dn >= 0 ? name : "(undecodable)");
		for (size_t i = 0; i < nseen; i++)
			if (seen[i] == d)
				return fail(e, 400, d->name, "is given more than once");
		if (nseen < RS_ARRAY_SIZE(seen))
			seen[nseen++] = d;
		const char *v = nlen < len ? p + nlen + 1 : p + len;
		size_t vlen = nlen < len ? len - nlen - 1 : 0;
		int vn = decode(v, vlen, value, sizeof(value));
		if (vn < 0)
			return fail(e, 400, d->name, "has a bad percent-escape or is too long");
		if (check_string(d, value, (size_t)vn, e) < 0)
			return -1;
		p += len + (p[len] == '&');
	}
	for (const struct rs_field *d = f ? f->list : NULL; d && d->name; d++) {
		bool given = false;
		if (d->in != RS_IN_QUERY || !d->required)
			continue;
		for (size_t i = 0; i < nseen; i++)
			given |= seen[i] == d;
		if (!given)
			return fail(e, 400, d->name, "is required");
	}
	return 0;
}

int rs_fields_check_body(const struct rs_fields *f, const json_t *body,
			 struct rs_field_error *e)
{
	const char *k;
	json_t *v;
	int given = 0;

	json_object_foreach((json_t *)body, k, v) {
		const struct rs_field *d = find(f, RS_IN_BODY, k, strlen(k));
		if (!d)
			return fail(e, 400, "body", "unknown field \"%.48s\"", k);
		if (d->type == RS_F_BOOL) {
			if (!json_is_boolean(v))
				return fail(e, 400, d->name, "must be a boolean");
			continue;
		}
		if (!json_is_string(v))
			return fail(e, 400, d->name, "must be a string");
		if (check_string(d, json_string_value(v), json_string_length(v), e) < 0)
			return -1;
		if (f->one_of && enum_has(f->one_of, d->name))
			given++;
	}
	for (const struct rs_field *d = f ? f->list : NULL; d && d->name; d++)
		if (d->in == RS_IN_BODY && d->required && !json_object_get(body, d->name))
			return fail(e, 400, d->name, "is required");
	if (f && f->one_of && given != 1)
		return fail(e, 400, "body", "give exactly one of %s", f->one_of);
	return 0;
}

int rs_fields_check_path(const struct rs_fields *f, const char *param,
			 struct rs_field_error *e)
{
	char value[QUERY_VALUE_MAX];

	for (const struct rs_field *d = f ? f->list : NULL; d && d->name; d++) {
		if (d->in != RS_IN_PATH)
			continue;
		/* ids are checked raw: an escape in an id is never legitimate
		 * and decoding first would let "%2e%2e" through as ".." */
		if (!param || strlen(param) >= sizeof(value))
			return fail(e, 400, d->name, "is missing or too long");
		if (strchr(param, '%'))
			return fail(e, 400, d->name, "must not be percent-encoded");
		return check_string(d, param, strlen(param), e);
	}
	return 0;
}

bool rs_fields_want_body(const struct rs_fields *f)
{
	for (const struct rs_field *d = f ? f->list : NULL; d && d->name; d++)
		if (d->in == RS_IN_BODY)
			return true;
	return false;
}

const char *rs_query_value(const char *query, const char *name, char *buf, size_t n)
{
	size_t want = strlen(name);

	for (const char *p = query; p && *p;) {
		size_t len = strcspn(p, "&");
		size_t nlen = strcspn(p, "=&");
		if (nlen == want && strncmp(p, name, want) == 0) {
			const char *v = nlen < len ? p + nlen + 1 : p + len;
			size_t vlen = nlen < len ? len - nlen - 1 : 0;
			return decode(v, vlen, buf, n) >= 0 ? buf : NULL;
		}
		p += len + (p[len] == '&');
	}
	return NULL;
}

int rs_fields_bool(const char *s)
{
	static const char *const yes[] = { "", "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < RS_ARRAY_SIZE(yes); i++)
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
	for (size_t i = 0; i < RS_ARRAY_SIZE(no); i++)
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	return -1;
}
