/* Origin patterns, methods and headers of the CORS policy, and the
 * monitor's bounded counters and once-a-minute reporting. */
#include <stdio.h>
#include <string.h>

#include "cors.h"
#include "tap.h"

int main(void)
{
	char *origins[] = { "https://app.example.com", "https://*.dash.example.com",
			    "http://localhost:8080", "https://*.ports.example.com:8443" };
	char *methods[] = { "GET", "POST" };
	char *headers[] = { "Content-Type", "X-API-Key", "Idempotency-Key" };
	struct rs_cors_policy p = { origins, 4, methods, 2, headers, 3, false, 600000 };
	char bad[32];

	/* exact */
	ok(rs_cors_origin_allowed(&p, "https://app.example.com"), "exact origin");
	ok(rs_cors_origin_allowed(&p, "HTTPS://APP.EXAMPLE.COM"), "case-insensitive");
	ok(!rs_cors_origin_allowed(&p, "http://app.example.com"), "other scheme refused");
	ok(!rs_cors_origin_allowed(&p, "https://app.example.com:444"), "other port refused");
	ok(!rs_cors_origin_allowed(&p, "https://app.example.com.evil.com"), "suffix trick refused");
	ok(!rs_cors_origin_allowed(&p, "https://evilapp.example.com"), "prefix trick refused");
	ok(rs_cors_origin_allowed(&p, "http://localhost:8080"), "exact with port");
	ok(!rs_cors_origin_allowed(&p, "http://localhost"), "port required when listed");

	/* patterns */
	ok(rs_cors_origin_allowed(&p, "https://a.dash.example.com"), "one label");
	ok(rs_cors_origin_allowed(&p, "https://a.b.dash.example.com"), "two labels");
	ok(!rs_cors_origin_allowed(&p, "https://dash.example.com"), "bare domain refused");
	ok(!rs_cors_origin_allowed(&p, "https://.dash.example.com"), "empty label refused");
	ok(!rs_cors_origin_allowed(&p, "https://evildash.example.com"), "label glued to suffix refused");
	ok(!rs_cors_origin_allowed(&p, "http://a.dash.example.com"), "pattern keeps its scheme");
	ok(!rs_cors_origin_allowed(&p, "https://a.dash.example.com:8443"), "pattern keeps its port");
	ok(rs_cors_origin_allowed(&p, "https://x.ports.example.com:8443"), "pattern with port");
	ok(!rs_cors_origin_allowed(&p, "https://x.ports.example.com"), "pattern with port needs it");

	/* malformed origins are never allowed, even with "*" */
	char *star[] = { "*" };
	struct rs_cors_policy any = { star, 1, methods, 2, headers, 3, false, 0 };
	ok(rs_cors_any_origin(&any) && !rs_cors_any_origin(&p), "any-origin detected");
	ok(rs_cors_origin_allowed(&any, "https://whatever.example.org"), "star allows a valid origin");
	ok(!rs_cors_origin_allowed(&any, "null"), "null refused");
	ok(!rs_cors_origin_allowed(&any, "https://a.example.com/path"), "path refused");
	ok(!rs_cors_origin_allowed(&any, "https://a.example.com\r\nSet-Cookie: x"), "CRLF refused");
	ok(!rs_cors_origin_allowed(&any, "https://a.example.com:123456"), "long port refused");
	ok(!rs_cors_origin_allowed(&any, "ftp://a.example.com"), "ftp refused");
	ok(!rs_cors_origin_allowed(&any, "https://"), "no host refused");
	ok(!rs_cors_origin_allowed(&any, "https://a..b"), "empty label refused");
	ok(!rs_cors_origin_allowed(&any, NULL), "absent refused");
	char huge[300];
	memset(huge, 'a', sizeof(huge) - 1);
	memcpy(huge, "https://", 8);
	huge[sizeof(huge) - 1] = '\0';
	ok(!rs_cors_origin_valid(huge), "oversized origin refused");

	/* methods and headers */
	ok(rs_cors_method_allowed(&p, "POST"), "listed method");
	ok(rs_cors_method_allowed(&p, "HEAD"), "safelisted method");
	ok(!rs_cors_method_allowed(&p, "DELETE"), "unlisted method");
	ok(rs_cors_headers_allowed(&p, "x-api-key, content-type", bad, sizeof(bad)), "listed headers, any case");
	ok(rs_cors_headers_allowed(&p, "", bad, sizeof(bad)), "no headers requested");
	ok(!rs_cors_headers_allowed(&p, "X-API-Key,X-Evil", bad, sizeof(bad)), "unlisted header");
	is_str(bad, "X-Evil", "the refused header is named");
	ok(!rs_cors_headers_allowed(&p, "x-api-keyx", bad, sizeof(bad)), "no prefix match");

	/* monitor */
	static struct rs_cors_monitor m;
	struct rs_cors_origin_count snap[RS_CORS_ORIGINS + 2];
	uint64_t since = 0;
	int64_t now = 1000LL * 60000;
	rs_cors_monitor_init(&m);
	int reports = 0;
	for (int i = 0; i < 10; i++)
		reports += rs_cors_monitor_record(&m, "https://evil.example", RS_CORS_BAD_ORIGIN,
						  now + i, &since);
	is_int(reports, 1, "one report a minute");
	ok(rs_cors_monitor_record(&m, "https://evil.example", RS_CORS_BAD_METHOD, now + 60000,
				  &since) && since == 10, "next minute reports the count since");
	char name[64];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "https://o%d.example", i);
		rs_cors_monitor_record(&m, name, RS_CORS_BAD_ORIGIN, now, &since);
	}
	rs_cors_monitor_record(&m, "javascript:alert(1)", RS_CORS_BAD_ORIGIN, now, &since);
	size_t n = rs_cors_monitor_snapshot(&m, snap, RS_CORS_ORIGINS + 2);
	ok(n <= RS_CORS_ORIGINS + 2, "bounded label set");
	is_str(snap[0].origin, "https://evil.example", "first origin kept");
	is_int(snap[0].count[RS_CORS_BAD_ORIGIN], 10, "origin violations counted");
	is_int(snap[0].count[RS_CORS_BAD_METHOD], 1, "method violations counted");
	uint64_t other = 0, invalid = 0, total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t c = snap[i].count[0] + snap[i].count[1] + snap[i].count[2];
		total += c;
		if (strcmp(snap[i].origin, "other") == 0)
			other = c;
		if (strcmp(snap[i].origin, "invalid") == 0)
			invalid = c;
	}
	is_int(other, 200 - (RS_CORS_ORIGINS - 1), "overflow counted as other");
	is_int(invalid, 1, "malformed counted as invalid");
	is_int(total, 10 + 1 + 200 + 1, "nothing lost");
	rs_cors_monitor_destroy(&m);
	return tap_done();
}
