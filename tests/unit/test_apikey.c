/* API keys: generation, hashing, and the windows of a key's life
 * (expiry, rotation grace, due for rotation). */
#include <ctype.h>
#include <string.h>

#include "apikey.h"
#include "tap.h"
#include "util.h"

#define DAY (24LL * 3600 * 1000)

int main(void)
{
	struct rs_err err = RS_ERR_INIT;
	char a[RS_APIKEY_HEX], b[RS_APIKEY_HEX], h[RS_APIKEY_HEX];
	bool hex = true;

	ok(rs_apikey_generate(a, &err) == 0 && rs_apikey_generate(b, &err) == 0, "two keys");
	is_int(strlen(a), 64, "64 digits");
	for (const char *p = a; *p; p++)
		hex &= isxdigit((unsigned char)*p) && !isupper((unsigned char)*p);
	ok(hex, "lowercase hex");
	ok(strcmp(a, b) != 0, "every key is new");
	rs_apikey_hash("abc", h);
	is_str(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	       "SHA-256 as hex (FIPS 180-2 test vector)");

	int64_t t0 = rs_parse_utc_ms("2026-01-01");
	is_int(t0, 1767225600000LL, "a date is its UTC midnight");
	is_int(rs_parse_utc_ms("2026-01-01T12:30:15Z") - t0, (12 * 3600 + 30 * 60 + 15) * 1000LL,
	       "a time with seconds");
	is_int(rs_parse_utc_ms("2026-01-01T12:30Z") - t0, (12 * 3600 + 30 * 60) * 1000LL,
	       "a time without seconds");
	is_int(rs_parse_utc_ms("2026-01-01T12:30"), 0, "no Z: refused");
	is_int(rs_parse_utc_ms("yesterday"), 0, "not a time");
	is_int(rs_parse_utc_ms("2026-01-01x"), 0, "trailing text refused");

	struct rs_key_times plain = { 0, 0, 0 };
	int64_t grace = 7 * DAY, every = 30 * DAY;
	is_int(rs_apikey_state(&plain, t0, grace, every), RS_KEY_ACTIVE, "no times: active");

	struct rs_key_times made = { t0, 0, 0 };
	is_int(rs_apikey_state(&made, t0 + every - 1, grace, every), RS_KEY_ACTIVE,
	       "a millisecond before the interval: active");
	is_int(rs_apikey_state(&made, t0 + every, grace, every), RS_KEY_DUE,
	       "at the interval: due for rotation");
	is_int(rs_apikey_state(&made, t0 + every, grace, 0), RS_KEY_ACTIVE,
	       "no interval: never due");

	struct rs_key_times rot = { t0, 0, t0 + DAY };
	is_int(rs_apikey_state(&rot, t0 + DAY, grace, every), RS_KEY_GRACE, "rotated: grace");
	is_int(rs_apikey_retired_ms(&rot, grace), t0 + DAY + grace, "retired at rotated + grace");
	is_int(rs_apikey_state(&rot, t0 + DAY + grace - 1, grace, every), RS_KEY_GRACE,
	       "last millisecond of grace");
	is_int(rs_apikey_state(&rot, t0 + DAY + grace, grace, every), RS_KEY_RETIRED,
	       "grace over: retired");
	is_int(rs_apikey_state(&rot, t0 + DAY, 0, every), RS_KEY_RETIRED, "no grace: retired at once");
	is_int(rs_apikey_retired_ms(&made, grace), 0, "not rotated: no retirement");

	struct rs_key_times exp = { t0, t0 + 2 * DAY, t0 + DAY };
	is_int(rs_apikey_state(&exp, t0 + 2 * DAY - 1, grace, every), RS_KEY_GRACE,
	       "before expiry: its rotation state");
	is_int(rs_apikey_state(&exp, t0 + 2 * DAY, grace, every), RS_KEY_EXPIRED,
	       "expiry wins over grace");
	is_str(rs_apikey_state_name(RS_KEY_DUE), "due for rotation", "state names");
	return tap_done();
}
