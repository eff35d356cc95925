/* Durations, sizes, integers, booleans, edit distance, buf. */
#include <stdlib.h>

#include <errno.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "tap.h"
#include "testlib.h"
#include "util.h"

static void duration_ok(const char *s, long long want)
{
	int64_t v = -1;
	const char *why = NULL;
	char name[128];

	snprintf(name, sizeof(name), "duration '%s' = %lld ms", s, want);
	if (rs_parse_duration_ms(s, &v, &why) < 0) {
		ok(0, name);
		printf("#   rejected: %s\n", why);
		return;
	}
	is_int(v, want, name);
}

static void duration_bad(const char *s, const char *reason)
{
	int64_t v;
	const char *why = NULL;
	char name[128];

	snprintf(name, sizeof(name), "duration '%s' rejected", s);
	ok(rs_parse_duration_ms(s, &v, &why) < 0, name);
	snprintf(name, sizeof(name), "duration '%s' reason", s);
	has_str(why, reason, name);
}

static void size_ok(const char *s, long long want)
{
	int64_t v = -1;
	const char *why = NULL;
	char name[128];

	snprintf(name, sizeof(name), "size '%s' = %lld", s, want);
	if (rs_parse_size(s, &v, &why) < 0) {
		ok(0, name);
		printf("#   rejected: %s\n", why);
		return;
	}
	is_int(v, want, name);
}

static void size_bad(const char *s, const char *reason)
{
	int64_t v;
	const char *why = NULL;
	char name[128];

	snprintf(name, sizeof(name), "size '%s' rejected", s);
	ok(rs_parse_size(s, &v, &why) < 0, name);
	snprintf(name, sizeof(name), "size '%s' reason", s);
	has_str(why, reason, name);
}

static void fmt_roundtrip(void)
{
	static const long long ms[] = { 0, 1, 250, 1000, 1500, 30000, 300000,
					3600000, 5400000, 86400000, 604800000 };
	static const long long bytes[] = { 0, 1, 1023, 1024, 1536, 524288,
					   268435456, 1073741824 };
	char buf[64], name[128];

	for (size_t i = 0; i < RS_ARRAY_SIZE(ms); i++) {
		int64_t back = -1;
		const char *why;

		rs_format_duration(ms[i], buf, sizeof(buf));
		snprintf(name, sizeof(name), "format_duration %lld -> '%s' parses back", ms[i], buf);
		ok(rs_parse_duration_ms(buf, &back, &why) == 0 && back == ms[i], name);
	}
	for (size_t i = 0; i < RS_ARRAY_SIZE(bytes); i++) {
		int64_t back = -1;
		const char *why;

		rs_format_size(bytes[i], buf, sizeof(buf));
		snprintf(name, sizeof(name), "format_size %lld -> '%s' parses back", bytes[i], buf);
		ok(rs_parse_size(buf, &back, &why) == 0 && back == bytes[i], name);
	}
	rs_format_duration(300000, buf, sizeof(buf));
	is_str(buf, "5m", "300000 ms formats as 5m");
	rs_format_duration(1500, buf, sizeof(buf));
	is_str(buf, "1500ms", "1500 ms formats as 1500ms");
	rs_format_size(268435456, buf, sizeof(buf));
	is_str(buf, "256MB", "256 MiB formats as 256MB");
}

static void test_buf(void)
{
	struct rs_buf b;
	char *s;

	rs_buf_init(&b, 10);
	is_str(rs_buf_str(&b), "", "empty buf reads as empty string");
	ok(rs_buf_puts(&b, "hello") == 0, "append within cap");
	ok(rs_buf_printf(&b, "%d", 1234) == 0, "printf within cap");
	is_str(rs_buf_str(&b), "hello1234", "contents");
	ok(rs_buf_puts(&b, "xx") < 0, "append over the cap fails");
	is_str(rs_buf_str(&b), "hello1234", "failed append leaves contents unchanged");
	ok(rs_buf_putc(&b, '!') == 0, "append up to exactly the cap");
	s = rs_buf_detach(&b);
	is_str(s, "hello1234!", "detach hands over the string");
	is_int(b.len, 0, "detached buf is empty");
	free(s);
	rs_buf_free(&b);
}

static void test_hex(void)
{
	const unsigned char b[] = { 0x00, 0x0f, 0xa5, 0xff };
	char out[2 * sizeof(b) + 1];

	memset(out, 'x', sizeof(out));
	rs_hex_encode(b, sizeof(b), out);
	is_str(out, "000fa5ff", "hex encode: lowercase, two digits a byte, NUL-terminated");
	rs_hex_encode(b, 0, out);
	is_str(out, "", "hex encode of nothing is empty");
	is_int(rs_hex_value('0'), 0, "hex value 0");
	is_int(rs_hex_value('9'), 9, "hex value 9");
	is_int(rs_hex_value('a'), 10, "hex value a");
	is_int(rs_hex_value('F'), 15, "hex value F");
	is_int(rs_hex_value('g'), -1, "g is not a hex digit");
	is_int(rs_hex_value(' '), -1, "space is not a hex digit");
}

int main(void)
{
	int64_t i;
	bool b;
	const char *why;

	duration_ok("250ms", 250);
	duration_ok("30s", 30000);
	duration_ok("5m", 300000);
	duration_ok("1h", 3600000);
	duration_ok("7d", 604800000);
	duration_ok("1h30m", 5400000);
	duration_ok("0", 0);
	duration_ok("3600S", 3600000);
	duration_bad("30", "missing unit");
	duration_bad("", "empty");
	duration_bad("5 m", "missing unit");
	duration_bad("-5s", "negative");
	duration_bad("5w", "unknown unit");
	duration_bad("s", "expected a number");
	duration_bad("99999999999999999999d", "too large");
	duration_bad("9999999999999999d", "too large");

	size_ok("512KB", 512 * 1024);
	size_ok("256MB", 268435456);
	size_ok("1GB", 1073741824);
	size_ok("64B", 64);
	size_ok("2MiB", 2097152);
	size_ok("0", 0);
	size_bad("256", "missing unit");
	size_bad("12XB", "unknown unit");
	size_bad("99999999TB", "too large");

	ok(rs_parse_int64("42", &i, &why) == 0 && i == 42, "int 42");
	ok(rs_parse_int64("-7", &i, &why) == 0 && i == -7, "int -7");
	ok(rs_parse_int64("4x", &i, &why) < 0, "int 4x rejected");
	ok(rs_parse_int64(" 4", &i, &why) < 0, "int with leading space rejected");
	ok(rs_parse_int64("", &i, &why) < 0, "empty int rejected");
	ok(rs_parse_int64("99999999999999999999", &i, &why) < 0, "int overflow rejected");
	has_str(why, "range", "overflow reason");

	ok(rs_parse_bool("yes", &b, &why) == 0 && b, "bool yes");
	ok(rs_parse_bool("OFF", &b, &why) == 0 && !b, "bool OFF");
	ok(rs_parse_bool("1", &b, &why) == 0 && b, "bool 1");
	ok(rs_parse_bool("maybe", &b, &why) < 0, "bool maybe rejected");

	fmt_roundtrip();

	is_int(rs_edit_distance("kitten", "sitting"), 3, "edit distance kitten/sitting");
	is_int(rs_edit_distance("", "abc"), 3, "edit distance from empty");
	ok(rs_is_near("max_entrys", "max_entries"), "max_entrys is near max_entries");
	ok(rs_is_near("upstrem", "upstream"), "upstrem is near upstream");
	is_int(rs_edit_distance("cahce", "cache"), 1, "a transposition counts as one edit");
	ok(rs_is_near("cahce", "cache"), "cahce is near cache");
	ok(!rs_is_near("foo", "persistence"), "foo is not near persistence");
	ok(rs_is_power_of_two(32) && !rs_is_power_of_two(24) && !rs_is_power_of_two(0),
	   "power of two");
	ok(rs_monotonic_ms() > 0 && rs_now_ms() > 1600000000000LL, "clocks");

	test_buf();
	test_hex();
	is_int(rs_crc32c_final(rs_crc32c_update(RS_CRC32C_INIT, "123456789", 9)),
	       0xE3069283u, "CRC-32C check value of \"123456789\"");
	is_int(rs_crc32c_final(rs_crc32c_update(rs_crc32c_update(RS_CRC32C_INIT, "1234", 4), "56789", 5)),
	       0xE3069283u, "CRC-32C is incremental");
	/* rs_read_file */
	struct tmpdir td;
	char path[TEST_PATH_MAX];
	struct rs_err err = RS_ERR_INIT;
	size_t len = 9;
	if (make_tmpdir(&td, "util") == 0) {
		snprintf(path, sizeof(path), "%s/f", td.path);
		FILE *f = fopen(path, "w");
		for (int k = 0; k < 5000; k++)
			fputs("0123456789", f);
		fclose(f);
		char *data = rs_read_file(path, 50000, &len, &err);
		ok(data && len == 50000 && data[50000] == '\0' && !memcmp(data + 49990, "0123456789", 10),
		   "rs_read_file: a file at the limit, NUL-terminated");
		free(data);
		ok(!rs_read_file(path, 49999, &len, &err) && err.code == EFBIG &&
		   strstr(err.msg, "larger than 49999 bytes"), "rs_read_file: one byte over is EFBIG");
		snprintf(path, sizeof(path), "%s/none", td.path);
		ok(!rs_read_file(path, 10, &len, &err) && err.code == ENOENT &&
		   strstr(err.msg, "cannot open"), "rs_read_file: a missing file");
		ok(!rs_read_file(td.path, 10, &len, &err), "rs_read_file: a directory");
		remove_tmpdir(&td);
	}
	return tap_done();
}
