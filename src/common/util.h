/*
 * util: small parsers and formatters every module uses.
 *
 * Durations are integers of milliseconds and sizes integers of bytes, so
 * callers never juggle units: the unit lives in the variable's name
 * (ttl_ms, max_memory_bytes) and in the config value ("30s", "256MB").
 * Parsers are strict: the whole string must be consumed, overflow is an
 * error, and a failure returns -1 with a short static reason in *why
 * (lowercase, suitable after "invalid duration '...': ").
 */
#ifndef RS_UTIL_H
#define RS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RS_MS_PER_SEC 1000LL
#define RS_MS_PER_MIN (60 * RS_MS_PER_SEC)
#define RS_MS_PER_HOUR (60 * RS_MS_PER_MIN)
#define RS_MS_PER_DAY (24 * RS_MS_PER_HOUR)
#define RS_KIB 1024LL
#define RS_MIB (1024 * RS_KIB)
#define RS_GIB (1024 * RS_MIB)

#define RS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Decimal integer, optional sign, no spaces. */
int rs_parse_int64(const char *s, int64_t *out, const char **why);

/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
int rs_parse_bool(const char *s, bool *out, const char **why);

/* "250ms", "30s", "5m", "1h", "7d", or sums such as "1h30m"; "0" alone
 * needs no unit.  Result in milliseconds. */
int rs_parse_duration_ms(const char *s, int64_t *out_ms, const char **why);

/* "512KB", "256MB", "1GB", "64B" (binary multiples; KiB/MiB/GiB/TiB
 * accepted too); "0" alone needs no unit.  Result in bytes. */
int rs_parse_size(const char *s, int64_t *out_bytes, const char **why);

/* Shortest exact spelling: 300000 -> "5m", 1500 -> "1500ms", 5400000 ->
 * "90m". */
void rs_format_duration(int64_t ms, char *buf, size_t n);
/* 268435456 -> "256MB", 1536 -> "1536B" (only exact multiples scale). */
void rs_format_size(int64_t bytes, char *buf, size_t n);

/* Levenshtein distance, for "did you mean" hints; strings longer than 64
 * bytes compare as far apart. */
size_t rs_edit_distance(const char *a, const char *b);

/* True when `a` is close enough to `b` to be offered as a correction. */
bool rs_is_near(const char *typed, const char *candidate);

bool rs_is_power_of_two(uint64_t v);

/* The directory part of `path` ("." when it has none, "/" for "/x"), as a
 * malloc'd string; NULL when out of memory. */
char *rs_path_dirname(const char *path);

/* Copy src into dst (n > 0 bytes), cut short if need be, always
 * NUL-terminated: for fixed-size reason and message fields. */
void rs_copy_text(char *dst, size_t n, const char *src);

/* "2027-01-31" or "2027-01-31T12:00[:00]Z" (UTC) as wall-clock
 * milliseconds; 0 when s is not such a time. */
int64_t rs_parse_utc_ms(const char *s);

/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void rs_hex_encode(const void *bytes, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int rs_hex_value(char c);

/* a + b, saturating at INT64_MIN / INT64_MAX (times plus durations).
 * Inline: the cache's lookups compute deadlines with it. */
static inline int64_t rs_sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

/* Current time. */
int64_t rs_now_ms(void);           /* CLOCK_REALTIME */
int64_t rs_monotonic_ms(void);     /* CLOCK_MONOTONIC */
int64_t rs_monotonic_us(void);

/* Now on `clock` + ms (< 0 counts as 0), for pthread_cond_timedwait and
 * pthread_timedjoin_np. */
void rs_deadline_after(struct timespec *ts, clockid_t clock, int64_t ms);

/* "2026-11-23T14:05:01Z" for a wall-clock time in ms; "-" when ms <= 0. */
void rs_format_utc(int64_t ms, char *buf, size_t n);

/* The whole of path ("-": standard input), NUL-terminated (the NUL not in
 * *len), at most max bytes; the caller frees it.  NULL with err on
 * failure: err->code EFBIG when the file is larger than max. */
struct rs_err;
char *rs_read_file(const char *path, size_t max, size_t *len, struct rs_err *err);

#endif
