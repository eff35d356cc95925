/* resyncctl loadtest's scenario reader, thresholds and reports (the
 * engine is tested against real servers in tests/integration/loadtest.bats). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadtest.h"
#include "pool.h"
#include "tap.h"
#include "testlib.h"

static struct tmpdir tmp;

static const char *put(const char *name, const char *text)
{
	static char path[TEST_PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp.path, name);
	if (!(f = fopen(path, "w"))) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load text as a scenario file; the error message, or NULL on success
 * (sc is left loaded either way, freed by the caller). */
static const char *load(struct rs_lt_scenario *sc, const char *name, const char *text)
{
	static struct rs_err err;

	err = (struct rs_err)RS_ERR_INIT;
	rs_lt_scenario_init(sc);
	if (rs_lt_scenario_load(sc, put(name, text), &err) == 0 &&
	    rs_lt_scenario_check(sc, &err) == 0)
		return NULL;
	return err.msg;
}

static void load_fails(const char *name, const char *text, const char *want, const char *what)
{
	struct rs_lt_scenario sc;
	const char *msg = load(&sc, name, text);

	has_str(msg, want, what);
	rs_lt_scenario_free(&sc);
}

static char *expand(const struct rs_lt_scenario *sc, const struct rs_lt_template *t, size_t row)
{
	static char *buf;
	static size_t cap;
	size_t len;

	if (rs_lt_expand(t, sc, row, &buf, &cap, &len) < 0)
		return NULL;
	return buf;
}

static const char *threshold_error(const char *text)
{
	static struct rs_err err;
	struct rs_lt_threshold t;

	err = (struct rs_err)RS_ERR_INIT;
	if (rs_lt_threshold_parse(text, &t, &err) == 0) {
		free(t.text);
		free(t.request);
		return NULL;
	}
	return err.msg;
}

static void test_files(void)
{
	struct rs_lt_scenario a, b;
	const char *ini =
		"# the same scenario twice\n"
		"[scenario]\n"
		"base_url = http://127.0.0.1:8080\n"
		"users = 100\n"
		"spawn_rate = 12.5\n"
		"think_time = 1s-2s\n"
		"duration = 5m\n"
		"requests = 1000\n"
		"threads = 3\n"
		"timeout = 2s\n"
		"http2 = true\n"
		"variables = v.csv\n"
		"threshold = p95<200ms\n"
		"threshold = health:error_rate<1%\n"
		"\n"
		"[request health]\n"
		"path = /api/health\n"
		"weight = 5\n"
		"header = X-API-Key: ${key}\n"
		"expect_status = 200\n"
		"[request ask]\n"
		"method = POST\n"
		"path = /api/ask\n"
		"body = \"{\\\"q\\\": \\\"${q}\\\"}\"\n"
		"expect_body = answer\n";
	const char *json =
		"{\"scenario\": {\"base_url\": \"http://127.0.0.1:8080\", \"users\": 100,"
		" \"spawn_rate\": 12.5, \"think_time\": \"1s-2s\", \"duration\": \"5m\","
		" \"requests\": 1000, \"threads\": 3, \"timeout\": \"2s\", \"http2\": true,"
		" \"variables\": \"v.csv\", \"threshold\": [\"p95<200ms\", \"health:error_rate<1%\"]},"
		" \"requests\": [{\"name\": \"health\", \"path\": \"/api/health\", \"weight\": 5,"
		" \"headers\": {\"X-API-Key\": \"${key}\"}, \"expect_status\": 200},"
		" {\"name\": \"ask\", \"method\": \"POST\", \"path\": \"/api/ask\","
		" \"body\": {\"q\": \"${q}\"}, \"expect_body\": \"answer\"}]}";

	put("v.csv", "key,q\r\nk1,\"why, \"\"really\"\"?\"\r\nk2,\"two\nlines\"\r\n");
	is_str(load(&a, "s.ini", ini), NULL, "an INI scenario loads");
	is_str(load(&b, "s.json", json), NULL, "the same scenario in JSON loads");
	ok(a.settings.users == 100 && b.settings.users == 100 && a.settings.model == RS_LT_CLOSED,
	   "users, closed model");
	ok(a.settings.spawn_rate == 12.5 && b.settings.spawn_rate == 12.5, "spawn rate");
	ok(a.settings.think_min_ms == 1000 && a.settings.think_max_ms == 2000 &&
	   b.settings.think_max_ms == 2000, "think time range");
	ok(a.settings.duration_ms == 300000 && b.settings.duration_ms == 300000 &&
	   a.settings.requests == 1000 && b.settings.requests == 1000, "bounds");
	ok(a.settings.threads == 3 && a.settings.timeout_ms == 2000 && a.settings.http2 &&
	   b.settings.http2, "threads, timeout, http2");
	ok(a.set_mask == b.set_mask && (a.set_mask & RS_LT_SET_USERS) &&
	   !(a.set_mask & RS_LT_SET_RATE), "the same settings marked as set");
	ok(a.nrequests == 2 && b.nrequests == 2, "two requests each");
	is_str(a.requests[0].name, "health", "first request's name");
	is_str(b.requests[1].method, "POST", "method");
	ok(a.requests[0].weight == 5 && b.requests[0].weight == 5 && a.requests[1].weight == 1,
	   "weights, default 1");
	is_str(a.requests[0].headers[0].text, "X-API-Key: ${key}", "INI header");
	is_str(b.requests[0].headers[0].text, "X-API-Key: ${key}", "JSON header object");
	ok(a.requests[0].headers[0].has_vars && !a.requests[0].path.has_vars, "has_vars");
	is_str(a.requests[1].body.text, "{\"q\": \"${q}\"}", "INI body unquoted");
	is_str(b.requests[1].body.text, "{\"q\":\"${q}\"}", "JSON body object serialised");
	ok(a.requests[0].expect_status == 200 && !a.requests[1].expect_status, "expect_status");
	is_str(b.requests[1].expect_body, "answer", "expect_body");
	ok(a.nthresholds == 2 && b.nthresholds == 2, "thresholds");
	is_str(a.thresholds[1].request, "health", "a threshold's request");
	ok(a.nvars == 2 && a.nrows == 2, "variables: 2 columns, 2 rows");
	is_str(a.var_rows[0][1], "why, \"really\"?", "a quoted field with a comma and quotes");
	is_str(a.var_rows[1][1], "two\nlines", "a quoted field with a newline");
	is_str(expand(&a, &a.requests[0].headers[0], 0), "X-API-Key: k1", "expand row 0");
	is_str(expand(&a, &a.requests[0].headers[0], 3), "X-API-Key: k2", "expand wraps");
	is_str(expand(&a, &b.requests[1].body, 0), "{\"q\":\"why, \"really\"?\"}", "expand a body");
	struct rs_lt_template lit = { "a $${key} $x ${", true };
	is_str(expand(&a, &lit, 0), "a ${key} $x ${", "$${ and a lone $ stay literal");
	struct rs_lt_template none = { "/plain", false };
	is_str(expand(&a, &none, 0), "/plain", "no variables");
	rs_lt_scenario_free(&a);
	rs_lt_scenario_free(&b);

	/* open model from rate, and ramp */
	is_str(load(&a, "o.ini", "[scenario]\nbase_url = https://h\nrate = 250.5\nramp = 10s\n"
		    "connections = 8\nduration = 1m\n[request r]\npath = /x\n"), NULL, "open model");
	ok(a.settings.model == RS_LT_OPEN && a.settings.rate == 250.5 &&
	   a.settings.ramp_ms == 10000 && a.settings.connections == 8, "rate, ramp, connections");
	rs_lt_scenario_free(&a);
}

static void test_file_errors(void)
{
	load_fails("e1.ini", "[scenario]\nusers = 2\n[request a]\npath = /x\nweight = lots\n",
		   "e1.ini:5: [request a] weight: 'lots' is not a whole number", "a bad weight, line 5");
	load_fails("e2.ini", "[scenario]\nusers = 0\n", "e2.ini:2: [scenario] users:", "users 0");
	load_fails("e3.ini", "[scenario]\nuser = 2\n", "e3.ini:2: [scenario] user: unknown setting",
		   "an unknown setting");
	load_fails("e4.ini", "[request a]\nmethod = GET\n[request b]\npath = /b\n",
		   "e4.ini:1: [request a] has no path", "a request without a path, at its header");
	load_fails("e5.ini", "[request a]\npath = /a\n", "needs a base_url", "a relative path alone");
	load_fails("e6.ini", "[scenario]\nbase_url = ftp://x\n", "not an http:// or https:// URL",
		   "base_url scheme");
	load_fails("e7.ini", "[scenario]\nduration = soon\n", "e7.ini:2: [scenario] duration:",
		   "a bad duration");
	load_fails("e8.ini", "[scenario]\nusers = 2\nusers = 3\n", "set twice", "a repeated setting");
	load_fails("e9.ini", "[hello]\n", "e9.ini:1: unknown section [hello]", "an unknown section");
	load_fails("e10.ini", "users = 2\n", "e10.ini:1: 'users' outside a section", "a key before any section");
	load_fails("e11.ini", "[scenario]\nbase_url = http://h\n[request a]\npath = /x\n"
		   "header = no colon here\n", "e11.ini:5: [request a] header: 'no colon here'",
		   "a header without a colon");
	load_fails("e12.ini", "[scenario]\nbase_url = http://h\nthreshold = p95<<2\n[request a]\n"
		   "path = /x\n", "e12.ini:3: [scenario] threshold: invalid threshold", "a bad threshold");
	load_fails("e13.ini", "[scenario]\nbase_url = http://h\n[request a]\npath = /x/${job}\n",
		   "request 'a': unknown variable '${job}': give a variables file", "an unknown variable");
	load_fails("e14.ini", "[scenario]\nbase_url = http://h\nthreshold = b:p95<1s\n[request a]\n"
		   "path = /x\n", "no request named 'b'", "a threshold for a missing request");
	load_fails("e15.ini", "[request a]\npath = /x\n[request a]\npath = /y\n",
		   "a second request named 'a'", "two requests with one name");
	load_fails("e16.ini", "[request a]\npath = x\n", "neither a path starting with '/'",
		   "a path without a slash");
	load_fails("e17.ini", "[request a]\nmethod = get\npath = /x\n", "not an HTTP method",
		   "a lower-case method");
	load_fails("e18.ini", "[scenario]\nmodel = sideways\n", "not closed or open", "a bad model");
	load_fails("e19.ini", "[request a]\nexpect_status = 99\npath = /x\n", "not an HTTP status",
		   "a bad expect_status");
	load_fails("e20.ini", "[scenario\n", "e20.ini:1:", "a malformed header line");
	load_fails("j1.json", "{\"scenario\": {\"users\": \"many\"}}", "j1.json: scenario.users:",
		   "JSON: a bad setting names its path");
	load_fails("j2.json", "{\"requests\": [{\"path\": \"/a\"}, {\"path\": \"/b\", \"weight\": 0}]}",
		   "j2.json: requests[1].weight:", "JSON: a bad weight names the request");
	load_fails("j3.json", "{\"requests\": [\n{\"path\": }]}", "j3.json:2:", "JSON syntax: the line");
	load_fails("j4.json", "{\"scenario\": {}, \"extra\": 1}", "unknown key \"extra\"", "JSON: an unknown key");
	load_fails("j5.json", "{\"requests\": [{\"name\": \"a\"}]}", "requests[0]: has no path",
		   "JSON: a request without a path");
	load_fails("v1.ini", "[scenario]\nvariables = nope.csv\n", "cannot open", "a missing variables file");
	put("v2.csv", "a,b\n1,2\n3\n");
	load_fails("v2.ini", "[scenario]\nvariables = v2.csv\n", "v2.csv:3: 1 fields, the header has 2",
		   "a ragged CSV row");
	put("v3.csv", "a,1b\n1,2\n");
	load_fails("v3.ini", "[scenario]\nvariables = v3.csv\n", "v3.csv:1: column '1b'", "a bad column name");
	put("v4.csv", "a\n");
	load_fails("v4.ini", "[scenario]\nvariables = v4.csv\n", "no rows", "a header without rows");
	put("v5.csv", "a\n\"open\n");
	load_fails("v5.ini", "[scenario]\nvariables = v5.csv\n", "not closed", "an unclosed quote");
}

static void test_thresholds(void)
{
	struct rs_lt_threshold t;
	struct rs_err err = RS_ERR_INIT;

	ok(rs_lt_threshold_parse("p95<200ms", &t, &err) == 0 && t.metric == RS_LT_P95 &&
	   t.op == RS_LT_LT && t.value == 200000 && !t.request, "p95<200ms");
	free(t.text);
	ok(rs_lt_threshold_parse(" p99.9 <= 1.5s ", &t, &err) == 0 && t.metric == RS_LT_P999 &&
	   t.op == RS_LT_LE && t.value == 1500000, "p99.9 <= 1.5s with spaces");
	free(t.text);
	ok(rs_lt_threshold_parse("error_rate<1%", &t, &err) == 0 && t.metric == RS_LT_ERROR_RATE &&
	   t.value == 1, "error_rate<1%");
	free(t.text);
	ok(rs_lt_threshold_parse("rps>=500.5", &t, &err) == 0 && t.metric == RS_LT_RPS &&
	   t.op == RS_LT_GE && t.value == 500.5, "rps>=500.5");
	free(t.text);
	ok(rs_lt_threshold_parse("GET http://h:80/x:mean>250us", &t, &err) == 0 &&
	   t.metric == RS_LT_MEAN && t.op == RS_LT_GT && t.value == 250 && t.request &&
	   !strcmp(t.request, "GET http://h:80/x"), "a request named after a URL");
	free(t.text);
	free(t.request);
	ok(rs_lt_threshold_parse("errors<1", &t, &err) == 0 && t.metric == RS_LT_ERRORS, "errors<1");
	free(t.text);
	has_str(threshold_error("p95<200"), "invalid threshold 'p95<200'", "latency needs a unit");
	has_str(threshold_error("p96<2ms"), "invalid threshold", "an unknown metric");
	has_str(threshold_error("p95=2ms"), "invalid threshold", "an unknown operator");
	has_str(threshold_error("p95<2ms extra"), "invalid threshold", "trailing text");
	has_str(threshold_error(":p95<2ms"), "invalid threshold", "an empty request name");
	has_str(threshold_error("rps>-5"), "invalid threshold", "a negative value");
}

/* A result by hand: 1000 requests of 5 ms and 10 of 200 ms over 2 s,
 * 10 of them errors (timeouts), split over two requests. */
static void make_result(struct rs_lt_scenario *sc, struct rs_lt_result *r, bool open)
{
	struct rs_err err = RS_ERR_INIT;

	rs_lt_scenario_init(sc);
	sc->base_url = strdup("http://127.0.0.1:8080");
	rs_lt_scenario_add_url(sc, "http://127.0.0.1:8080/a", &err);
	rs_lt_scenario_add_url(sc, "http://127.0.0.1:8080/<script>", &err);
	memset(r, 0, sizeof(*r));
	r->settings = sc->settings;
	r->settings.model = open ? RS_LT_OPEN : RS_LT_CLOSED;
	r->settings.rate = 505;
	r->settings.duration_ms = 2000;
	r->settings.threads = 2;
	r->elapsed_us = 2000000;
	r->started_ms = 1795000000000;
	r->nrequests = 2;
	r->per_request = calloc(2, sizeof(*r->per_request));
	rs_hist_init(&r->total.latency);
	rs_hist_init(&r->total.uncorrected);
	for (int i = 0; i < 2; i++) {
		rs_hist_init(&r->per_request[i].latency);
		rs_hist_init(&r->per_request[i].uncorrected);
	}
	for (int i = 0; i < 1010; i++) {
		uint64_t v = i < 1000 ? 5000 : 200000;
		struct rs_lt_stats *s = &r->per_request[i % 2];
		rs_hist_record(&r->total.latency, v);
		rs_hist_record(&s->latency, v);
		rs_hist_record(&r->total.uncorrected, 5000);
		r->total.requests++;
		s->requests++;
		if (i >= 1000) {
			r->total.errors[RS_LT_ERR_TIMEOUT]++;
			s->errors[RS_LT_ERR_TIMEOUT]++;
		}
	}
	r->nseconds = 2;
	r->seconds = calloc(2, sizeof(*r->seconds));
	r->seconds[0] = (struct rs_lt_second){ 600, 0, 5000, 5000, 5000, 5000, 5100, 5000.0, 0 };
	r->seconds[1] = (struct rs_lt_second){ 410, 10, 5000, 5000, 5000, 200000, 201000, 9000.0, 0 };
	r->intended = 1010;
	r->late = open ? 20 : 0;
}

static char *capture_text(const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
			  const struct rs_lt_verdict *v, unsigned nv, int what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (what == 0)
		rs_lt_report_text(f, sc, r, v, nv);
	else if (what == 1)
		rs_lt_report_csv(f, r);
	else
		rs_lt_report_html(f, sc, r, v, nv);
	fclose(f);
	return buf;
}

static void test_reports(void)
{
	struct rs_lt_scenario sc;
	struct rs_lt_result r;
	struct rs_lt_verdict v[8];
	struct rs_err err = RS_ERR_INIT;
	char *s;

	make_result(&sc, &r, false);
	is_str(rs_lt_error_name(RS_LT_ERR_TIMEOUT), "timeout", "error names");
	is_int(rs_lt_stats_errors(&r.total), 10, "errors summed");
	ok(fabs(rs_lt_rps(&r) - 505) < 1e-9, "rps over the elapsed time");
	ok(fabs(rs_lt_error_rate(&r.total) - 100.0 * 10 / 1010) < 1e-9, "error rate in percent");

	rs_lt_scenario_add_threshold(&sc, "p50<6ms", &err);
	rs_lt_scenario_add_threshold(&sc, "p99.9<10ms", &err);
	rs_lt_scenario_add_threshold(&sc, "error_rate<1%", &err);
	rs_lt_scenario_add_threshold(&sc, "rps>500", &err);
	rs_lt_scenario_add_threshold(&sc, "GET http://127.0.0.1:8080/a:max<=5100us", &err);
	rs_lt_scenario_add_threshold(&sc, "errors>=10", &err);
	is_int(sc.nthresholds, 6, "six thresholds");
	is_int(rs_lt_thresholds_eval(&sc, &r, v), 2, "two fail");
	ok(v[0].pass && fabs(v[0].actual - 5000) <= 50, "p50 passes, about 5 ms");
	ok(!v[1].pass && v[1].actual >= 190000, "p99.9 fails, about 200 ms");
	ok(v[2].pass && fabs(v[2].actual - 100.0 * 10 / 1010) < 1e-9, "error_rate 0.99% passes <1%");
	ok(v[3].pass, "rps passes");
	ok(!v[4].pass && v[4].actual >= 190000, "a per-request threshold: request a's max");
	ok(v[5].pass && v[5].actual == 10, "errors>=10");

	s = capture_text(&sc, &r, v, 6, 0);
	has_str(s, "closed model: 10 users", "text: the model");
	has_str(s, "total", "text: the total row");
	has_str(s, "GET http://127.0.0.1:8080/a", "text: a per-request row");
	has_str(s, "errors: timeout 10", "text: errors by kind");
	has_str(s, "PASS p50<6ms (actual 5.", "text: a PASS line with the actual value");
	has_str(s, "FAIL p99.9<10ms (actual 19", "text: a FAIL line");
	has_str(s, "PASS error_rate<1% (actual 0.99%)", "text: a rate in percent");
	ok(!strstr(s, "uncorrected"), "text: no open-model lines in the closed model");
	free(s);

	json_t *j = rs_lt_report_json(&sc, &r, v, 6);
	char *dump = json_dumps(j, JSON_COMPACT);
	json_t *back = json_loads(dump, 0, NULL);
	ok(back != NULL, "JSON round-trips");
	is_int(json_integer_value(json_object_get(json_object_get(back, "total"), "requests")), 1010,
	       "JSON: total requests");
	is_int(json_integer_value(json_object_get(json_object_get(back, "errors"), "timeout")), 10,
	       "JSON: errors by kind");
	is_int(json_array_size(json_object_get(back, "requests")), 2, "JSON: per request");
	is_int(json_array_size(json_object_get(back, "series")), 2, "JSON: the series");
	ok(json_is_false(json_object_get(back, "passed")), "JSON: passed false");
	is_str(json_string_value(json_object_get(json_object_get(back, "parameters"), "model")),
	       "closed", "JSON: parameters");
	ok(!json_object_get(back, "open_model"), "JSON: no open_model in the closed model");
	is_str(json_string_value(json_object_get(back, "started")), "2026-11-18T11:06:40Z",
	       "JSON: the start time");
	free(dump);
	json_decref(j);
	json_decref(back);

	s = capture_text(&sc, &r, v, 6, 1);
	has_str(s, "second,requests,errors,rps,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,mean_ms,users\n"
		"0,600,0,600,5.000,", "CSV: the header and the first second");
	has_str(s, "\n1,410,10,410,", "CSV: the second second");
	free(s);

	s = capture_text(&sc, &r, v, 6, 2);
	has_str(s, "<!DOCTYPE html>", "HTML: a document");
	has_str(s, "<svg", "HTML: charts");
	has_str(s, "/&lt;script&gt;", "HTML: names escaped");
	ok(!strstr(s, "<script"), "HTML: no script at all");
	ok(!strstr(s, "nan") && !strstr(s, "inf\""), "HTML: no NaN coordinates");
	has_str(s, "class=\"fail\">FAIL", "HTML: thresholds");
	free(s);
	rs_lt_result_free(&r);
	rs_lt_scenario_free(&sc);

	/* the open model: the uncorrected figures and the warning */
	make_result(&sc, &r, true);
	s = capture_text(&sc, &r, NULL, 0, 0);
	has_str(s, "open model: 505.0 req/s", "open text: the rate");
	has_str(s, "uncorrected, from the actual send: p50 5.", "open text: uncorrected figures");
	has_str(s, "late 20", "open text: late count");
	has_str(s, "WARNING: the generator could not keep the rate", "open text: the warning above 1%");
	free(s);
	j = rs_lt_report_json(&sc, &r, NULL, 0);
	ok(json_integer_value(json_object_get(json_object_get(j, "open_model"), "late")) == 20 &&
	   json_is_true(json_object_get(j, "passed")), "open JSON: late, passed with no thresholds");
	json_decref(j);
	rs_lt_result_free(&r);
	rs_lt_scenario_free(&sc);

	/* an empty run: no requests, no seconds */
	rs_lt_scenario_init(&sc);
	rs_lt_scenario_add_url(&sc, "http://h/", &err);
	memset(&r, 0, sizeof(r));
	rs_hist_init(&r.total.latency);
	rs_hist_init(&r.total.uncorrected);
	ok(rs_lt_rps(&r) == 0 && rs_lt_error_rate(&r.total) == 0, "empty: no division by zero");
	s = capture_text(&sc, &r, NULL, 0, 2);
	ok(s && !strstr(s, "nan") && strstr(s, "No requests."), "empty HTML: no NaN, says so");
	free(s);
	rs_lt_scenario_free(&sc);
}

static void test_cli_pieces(void)
{
	struct rs_lt_scenario sc;
	struct rs_err err = RS_ERR_INIT;

	rs_lt_scenario_init(&sc);
	ok(rs_lt_scenario_add_url(&sc, "ftp://x/", &err) < 0, "--url: only http(s)");
	ok(rs_lt_scenario_add_url(&sc, "http://h/a", &err) == 0 &&
	   rs_lt_scenario_add_url(&sc, "http://h/a", &err) < 0, "--url twice is refused");
	ok(rs_lt_scenario_add_header(&sc, "X-A: 1", &err) == 0 && sc.requests[0].nheaders == 1,
	   "-H goes to every request");
	ok(rs_lt_scenario_add_header(&sc, "Bad Name: 1", &err) < 0, "-H: a bad name");
	ok(rs_lt_scenario_add_header(&sc, "X-A: 1\r\nX-B: 2", &err) < 0, "-H: no line breaks");
	ok(rs_lt_scenario_check(&sc, &err) == 0, "an absolute URL needs no base_url");
	rs_lt_scenario_free(&sc);
}

/* ---- the engine, against a small HTTP/1.1 server in this process ------------- */

static int srv_fd, srv_port;
static atomic_int srv_delay_ms;

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Content-Length: 11\r\n\r\n{\"ok\":true}";

	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		char *end;
		if (n <= 0)
			break;
		have += (size_t)n;
		/* GETs only: a request ends with its blank line */
		while ((end = memmem(buf, have, "\r\n\r\n", 4))) {
			size_t used = (size_t)(end + 4 - buf);
			int d = atomic_load(&srv_delay_ms);
			if (d) {
				struct timespec ts = { d / 1000, (d % 1000) * 1000000L };
				nanosleep(&ts, NULL);
			}
			if (write(fd, resp, sizeof(resp) - 1) < 0)
				goto out;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		if (have == sizeof(buf))
			break;
	}
out:
	close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(srv_fd, NULL, NULL);
		pthread_t t;
		if (c < 0)
			return NULL;
		if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c) == 0)
			pthread_detach(t);
		else
			close(c);
	}
}

static void start_server(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	pthread_t t;

	srv_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv_fd < 0 || bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(srv_fd, 128) < 0 || getsockname(srv_fd, (struct sockaddr *)&a, &len) < 0) {
		perror("server");
		exit(2);
	}
	srv_port = ntohs(a.sin_port);
	pthread_create(&t, NULL, serve, NULL);
	pthread_detach(t);
}

static int run(struct rs_lt_scenario *sc, struct rs_lt_settings *st, struct rs_lt_result *r,
	       int64_t stop_after_ms, struct rs_err *err)
{
	struct rs_lt_run *run;
	struct rs_lt_progress p;
	int64_t waited = 0;

	if (rs_lt_start(&run, sc, st, err) < 0)
		return -1;
	while (!rs_lt_wait(run, 50, &p)) {
		waited += 50;
		if (stop_after_ms && waited >= stop_after_ms)
			rs_lt_stop(run);
	}
	rs_lt_finish(run, r);
	return 0;
}

static void test_engine(void)
{
	struct rs_lt_scenario sc;
	struct rs_lt_settings st;
	struct rs_lt_result r;
	struct rs_err err = RS_ERR_INIT;
	char url[64];

	start_server();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/a", srv_port);
	rs_lt_scenario_init(&sc);
	rs_lt_scenario_add_url(&sc, url, &err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/b", srv_port);
	rs_lt_scenario_add_url(&sc, url, &err);
	sc.requests[1].weight = 3;

	/* closed model, a request bound */
	st = sc.settings;
	st.users = 4;
	st.threads = 2;
	st.requests = 400;
	ok(run(&sc, &st, &r, 0, &err) == 0, "closed run");
	is_int(r.total.requests, 400, "closed: exactly the bound");
	is_int(rs_lt_stats_errors(&r.total), 0, "closed: no errors");
	is_int(r.per_request[0].requests + r.per_request[1].requests, 400, "per request adds up");
	ok(r.per_request[1].requests > 2 * r.per_request[0].requests, "weights 1:3 honoured");
	ok(r.total.bytes == 400 * 11, "response bytes counted");
	ok(!r.interrupted && r.settings.threads == 2, "not interrupted; threads as asked");
	rs_lt_result_free(&r);

	/* a fixed server delay shows in the percentiles */
	atomic_store(&srv_delay_ms, 20);
	st.requests = 60;
	ok(run(&sc, &st, &r, 0, &err) == 0, "delayed run");
	ok(rs_hist_percentile(&r.total.latency, 50) >= 20000 &&
	   rs_hist_percentile(&r.total.latency, 50) <= 26000, "p50 is the 20 ms delay");
	rs_lt_result_free(&r);
	atomic_store(&srv_delay_ms, 0);

	/* open model: the schedule is kept */
	st = sc.settings;
	st.model = RS_LT_OPEN;
	st.rate = 400;
	st.connections = 8;
	st.duration_ms = 1500;
	ok(run(&sc, &st, &r, 0, &err) == 0, "open run");
	ok(r.total.requests >= 590 && r.total.requests <= 601, "open: 400/s for 1.5 s");
	ok(r.intended >= r.total.requests && r.unsent == 0, "open: nothing left unsent");
	ok(rs_hist_count(&r.total.uncorrected) == r.total.requests, "open: uncorrected recorded");
	ok(r.nseconds == 1 && r.seconds[0].requests >= 395 && r.seconds[0].requests <= 405,
	   "open: one full second in the series, 400 requests");
	rs_lt_result_free(&r);

	/* an unexpected status is an error of its kind */
	sc.requests[0].expect_status = 201;
	sc.requests[1].expect_status = 201;
	st = sc.settings;
	st.users = 2;
	st.requests = 50;
	ok(run(&sc, &st, &r, 0, &err) == 0 && r.total.errors[RS_LT_ERR_STATUS] == 50,
	   "expect_status: every answer a status error");
	rs_lt_result_free(&r);
	sc.requests[1].expect_body = strdup("nothing like it");
	sc.requests[0].expect_status = sc.requests[1].expect_status = 0;
	ok(run(&sc, &st, &r, 0, &err) == 0 && r.per_request[1].errors[RS_LT_ERR_BODY] ==
	   r.per_request[1].requests && !rs_lt_stats_errors(&r.per_request[0]), "expect_body");
	rs_lt_result_free(&r);

	/* stopped early: still a result */
	st.requests = 0;
	st.duration_ms = 20000;
	ok(run(&sc, &st, &r, 300, &err) == 0 && r.interrupted && r.elapsed_us < 3000000 &&
	   r.total.requests > 0, "rs_lt_stop ends a run early, interrupted");
	rs_lt_result_free(&r);
	rs_lt_scenario_free(&sc);

	/* a port nobody listens on */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	rs_lt_scenario_init(&sc);
	rs_lt_scenario_add_url(&sc, url, &err);
	st = sc.settings;
	st.requests = 1;
	ok(run(&sc, &st, &r, 0, &err) < 0 && err.code == ECONNREFUSED &&
	   strstr(err.msg, "cannot reach"), "an unreachable target: ECONNREFUSED at start");
	st.requests = 0;
	ok(run(&sc, &st, &r, 0, &err) < 0 && strstr(err.msg, "bound"), "no bound: refused");
	rs_lt_scenario_free(&sc);
}

int main(void)
{
	if (make_tmpdir(&tmp, "loadtest") < 0)
		return 2;
	test_files();
	test_file_errors();
	test_thresholds();
	test_reports();
	test_cli_pieces();
	struct rs_err err = RS_ERR_INIT;
	if (rs_pool_global_init(&err) < 0)
		return 2;
	test_engine();
	remove_tmpdir(&tmp);
	return tap_done();
}
