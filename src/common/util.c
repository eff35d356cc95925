#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "err.h"

int rs_parse_int64(const char *s, int64_t *out, const char **why)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s)) {
		*why = "expected an integer";
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end) {
		*why = "expected an integer";
		return -1;
	}
	if (errno == ERANGE) {
		*why = "integer out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int rs_parse_bool(const char *s, bool *out, const char **why)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < RS_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	*why = "expected true or false";
	return -1;
}

struct unit {
	const char *name;
	int64_t mult;
};

/* Parse "<digits><unit>" repeatedly; shared by durations and sizes. */
static int parse_units(const char *s, const struct unit *units, size_t nunits,
		       int64_t *out, const char *missing, const char **why)
{
	int64_t total = 0;
	const char *p = s;

	if (!s || !*s) {
		*why = "empty value";
		return -1;
	}
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	while (*p) {
		int64_t num = 0;
		const char *u;
		size_t ulen, i;

		if (!isdigit((unsigned char)*p)) {
			*why = *p == '-' ? "must not be negative" : "expected a number";
			return -1;
		}
		while (isdigit((unsigned char)*p)) {
			if (num > (INT64_MAX - 9) / 10) {
				*why = "value too large";
				return -1;
			}
			num = num * 10 + (*p++ - '0');
		}
		u = p;
		while (*p && isalpha((unsigned char)*p))
			p++;
		ulen = (size_t)(p - u);
		if (ulen == 0) {
			*why = missing;
			return -1;
		}
		for (i = 0; i < nunits; i++)
			if (strlen(units[i].name) == ulen &&
			    strncasecmp(units[i].name, u, ulen) == 0)
				break;
		if (i == nunits) {
			*why = "unknown unit";
			return -1;
		}
		if (num > (INT64_MAX - total) / units[i].mult) {
			*why = "value too large";
			return -1;
		}
		total += num * units[i].mult;
	}
	*out = total;
	return 0;
}

int rs_parse_duration_ms(const char *s, int64_t *out_ms, const char **why)
{
	static const struct unit units[] = {
		{ "ms", 1 },
		{ "s", RS_MS_PER_SEC },
		{ "m", RS_MS_PER_MIN },
		{ "h", RS_MS_PER_HOUR },
		{ "d", RS_MS_PER_DAY },
	};
	return parse_units(s, units, RS_ARRAY_SIZE(units), out_ms,
			   "missing unit (use ms, s, m, h or d, e.g. 30s)", why);
}

int rs_parse_size(const char *s, int64_t *out_bytes, const char **why)
{
	static const struct unit units[] = {
		{ "B", 1 },
		{ "KB", RS_KIB },	{ "KiB", RS_KIB },
		{ "MB", RS_MIB },	{ "MiB", RS_MIB },
		{ "GB", RS_GIB },	{ "GiB", RS_GIB },
		{ "TB", 1024 * RS_GIB }, { "TiB", 1024 * RS_GIB },
	};
	return parse_units(s, units, RS_ARRAY_SIZE(units), out_bytes,
			   "missing unit (use B, KB, MB or GB, e.g. 256MB)", why);
}

void rs_format_duration(int64_t ms, char *buf, size_t n)
{
	static const struct unit units[] = {
		{ "d", RS_MS_PER_DAY },
		{ "h", RS_MS_PER_HOUR },
		{ "m", RS_MS_PER_MIN },
		{ "s", RS_MS_PER_SEC },
	};

	if (ms == 0) {
		snprintf(buf, n, "0");
		return;
	}
	for (size_t i = 0; i < RS_ARRAY_SIZE(units); i++)
		if (ms % units[i].mult == 0) {
			snprintf(buf, n, "%lld%s", (long long)(ms / units[i].mult),
				 units[i].name);
			return;
		}
	snprintf(buf, n, "%lldms", (long long)ms);
}

void rs_format_size(int64_t bytes, char *buf, size_t n)
{
	static const struct unit units[] = {
		{ "TB", 1024 * RS_GIB },
		{ "GB", RS_GIB },
		{ "MB", RS_MIB },
		{ "KB", RS_KIB },
	};

	if (bytes == 0) {
		snprintf(buf, n, "0");
		return;
	}
	for (size_t i = 0; i < RS_ARRAY_SIZE(units); i++)
		if (bytes % units[i].mult == 0) {
			snprintf(buf, n, "%lld%s",
				 (long long)(bytes / units[i].mult), units[i].name);
			return;
		}
	snprintf(buf, n, "%lldB", (long long)bytes);
}

/* Optimal string alignment distance: Levenshtein plus adjacent
 * transpositions, the commonest typo ("cahce"). */
size_t rs_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[65][65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

bool rs_is_near(const char *typed, const char *candidate)
{
	size_t d = rs_edit_distance(typed, candidate);
	size_t len = strlen(candidate);

	/* One typo in a short word, up to a third of a long one; a typed
	 * word that is a prefix or suffix of the candidate also counts
	 * ("timeout" for "request_timeout"). */
	if (d <= 1 || (len >= 6 && d <= len / 3))
		return true;
	if (strlen(typed) >= 4 && strstr(candidate, typed))
		return true;
	return false;
}

bool rs_is_power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

char *rs_path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rs_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t rs_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t rs_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void rs_deadline_after(struct timespec *ts, clockid_t clock, int64_t ms)
{
	clock_gettime(clock, ts);
	if (ms < 0)
		ms = 0;
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void rs_format_utc(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&t, &tm) ||
	    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "-");
}

void rs_copy_text(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

void rs_hex_encode(const void *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = bytes;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int rs_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int64_t rs_parse_utc_ms(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	const char *end = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
	if (end && *end == 'T') {
		const char *e2 = strptime(end + 1, "%H:%M", &tm);
		if (e2 && *e2 == ':')
			e2 = strptime(e2 + 1, "%S", &tm);
		end = e2 && *e2 == 'Z' ? e2 + 1 : NULL;
	}
	if (!end || *end)
		return 0;
	return (int64_t)timegm(&tm) * RS_MS_PER_SEC;
}

char *rs_read_file(const char *path, size_t max, size_t *len, struct rs_err *err)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		rs_err_errno(err, errno, "cannot open '%s'", path);
		return NULL;
	}
	do {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 16384;
			char *b = realloc(buf, cap + 1);
			if (!b) {
				rs_err_errno(err, ENOMEM, "cannot read '%s'", path);
				goto fail;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			rs_err_set(err, "'%s' is larger than %zu bytes", path, max);
			if (err)
				err->code = EFBIG;
			goto fail;
		}
	} while (got > 0);
	if (ferror(f)) {
		rs_err_errno(err, errno, "cannot read '%s'", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}
