/*
 * lt_scenario: what `resyncctl loadtest` sends (see loadtest.h): scenario
 * files in INI or JSON, --url/--header/--threshold, the variables CSV and
 * the ${NAME} expansion done per request.
 *
 * Both file forms go through one setter per key (set_setting, set_request)
 * on the value as text, so they accept exactly the same things and give
 * the same messages; only where a message points differs ("s.ini:12:
 * [request a] weight" or "s.json: requests[0].weight").
 */
#include "loadtest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "util.h"

#define VARS_FILE_MAX (64 << 20)
#define VARS_ROWS_MAX 10000000
#define SCENARIO_FILE_MAX (4 << 20)
#define WEIGHT_MAX 1000000

/* ---- where a message points --------------------------------------------------- */

struct loc {
	struct rs_lt_scenario *sc;
	const char *file;
	char at[160];              /* "s.ini:12: [request a]" or "s.json: requests[0]" */
	char sep;                  /* between `at` and a key: ' ' (INI) or '.' (JSON) */
	struct rs_err *err;
};

static int fail(const struct loc *l, const char *key, const char *fmt, ...) RS_PRINTF(3, 4);
static int fail(const struct loc *l, const char *key, const char *fmt, ...)
{
	char msg[RS_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		return rs_err_set(l->err, "%s%c%s: %s", l->at, l->sep, key, msg);
	return rs_err_set(l->err, "%s: %s", l->at, msg);
}

/* ---- values ------------------------------------------------------------------- */

static int parse_uint(const struct loc *l, const char *key, const char *v, uint64_t max,
		      uint64_t *out)
{
	int64_t n;
	const char *why;

	if (rs_parse_int64(v, &n, &why) < 0 || n < 1 || (uint64_t)n > max)
		return fail(l, key, "'%s' is not a whole number from 1 to %llu", v,
			    (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

static int parse_rate(const struct loc *l, const char *key, const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d > 0) || d > 1e7)
		return fail(l, key, "'%s' is not a number per second above 0", v);
	*out = d;
	return 0;
}

static int parse_dur(const struct loc *l, const char *key, const char *v, bool zero_ok,
		     int64_t *out)
{
	const char *why;

	if (rs_parse_duration_ms(v, out, &why) < 0)
		return fail(l, key, "'%s': %s (e.g. 500ms, 30s, 5m)", v, why);
	if (!zero_ok && *out <= 0)
		return fail(l, key, "must be above 0");
	return 0;
}

static int parse_bool(const struct loc *l, const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return fail(l, key, "'%s' is not true or false", v);
	return 0;
}

static bool is_http_url(const char *s)
{
	return (!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8]);
}

static bool is_token_char(int c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

static int set_template(struct rs_lt_template *t, const char *text)
{
	char *d = strdup(text);

	if (!d)
		return -1;
	free(t->text);
	t->text = d;
	t->has_vars = strstr(text, "${") != NULL;
	return 0;
}

/* "Name: value", the name an HTTP token; -1 with a reason. */
static const char *header_problem(const char *h)
{
	const char *c = strchr(h, ':');

	if (!c || c == h)
		return "expected 'Name: value'";
	for (const char *p = h; p < c; p++)
		if (!is_token_char((unsigned char)*p))
			return "the name holds a character a header name cannot have";
	for (const char *p = h; *p; p++)
		if (*p == '\r' || *p == '\n')
			return "a header cannot hold a line break";
	return NULL;
}

/* ---- thresholds --------------------------------------------------------------- */

static const struct {
	const char *name;
	enum rs_lt_metric m;
} metrics[] = {
	{ "p99.9", RS_LT_P999 }, { "p50", RS_LT_P50 }, { "p90", RS_LT_P90 },
	{ "p95", RS_LT_P95 }, { "p99", RS_LT_P99 }, { "max", RS_LT_MAX },
	{ "mean", RS_LT_MEAN }, { "error_rate", RS_LT_ERROR_RATE }, { "errors", RS_LT_ERRORS },
	{ "rps", RS_LT_RPS },
};

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int rs_lt_threshold_parse(const char *text, struct rs_lt_threshold *t, struct rs_err *err)
{
	/* the last colon: a request named after a URL holds some */
	const char *p = skip_space(text), *colon = strrchr(text, ':');
	char *end, *request = NULL;
	size_t i;
	double v;

	memset(t, 0, sizeof(*t));
	if (colon) {
		const char *e = colon;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == p || !(request = strndup(p, (size_t)(e - p))))
			goto bad;
		p = skip_space(colon + 1);
	}
	for (i = 0; i < RS_ARRAY_SIZE(metrics); i++)
		if (!strncmp(p, metrics[i].name, strlen(metrics[i].name)))
			break;
	if (i == RS_ARRAY_SIZE(metrics))
		goto bad;
	t->metric = metrics[i].m;
	p = skip_space(p + strlen(metrics[i].name));
	if (p[0] == '<' && p[1] == '=')
		t->op = RS_LT_LE, p += 2;
	else if (p[0] == '>' && p[1] == '=')
		t->op = RS_LT_GE, p += 2;
	else if (p[0] == '<')
		t->op = RS_LT_LT, p++;
	else if (p[0] == '>')
		t->op = RS_LT_GT, p++;
	else
		goto bad;
	p = skip_space(p);
	errno = 0;
	v = strtod(p, &end);
	if (errno || end == p || !isfinite(v) || v < 0)
		goto bad;
	p = end;
	if (t->metric <= RS_LT_MEAN) {
		double unit = !strncmp(p, "us", 2) ? 1 : !strncmp(p, "ms", 2) ? 1e3
			: *p == 's' ? 1e6 : 0;
		if (!unit)
			goto bad;
		p += *p == 's' ? 1 : 2;
		v *= unit;
	} else if (t->metric == RS_LT_ERROR_RATE && *p == '%') {
		p++;
	}
	if (*skip_space(p))
		goto bad;
	t->value = v;
	t->request = request;
	if (!(t->text = strdup(text))) {
		free(request);
		t->request = NULL;
		return rs_err_set(err, "out of memory");
	}
	return 0;
bad:
	free(request);
	t->request = NULL;
	return rs_err_set(err, "invalid threshold '%s': expected [REQUEST:]METRIC OP VALUE such as "
			  "p95<200ms, error_rate<1%%, rps>500 (metrics p50 p90 p95 p99 p99.9 max "
			  "mean error_rate errors rps; OP < <= > >=)", text);
}

int rs_lt_scenario_add_threshold(struct rs_lt_scenario *sc, const char *text, struct rs_err *err)
{
	if (sc->nthresholds == RS_LT_MAX_THRESHOLDS)
		return rs_err_set(err, "too many thresholds: at most %d", RS_LT_MAX_THRESHOLDS);
	if (rs_lt_threshold_parse(text, &sc->thresholds[sc->nthresholds], err) < 0)
		return -1;
	sc->nthresholds++;
	return 0;
}

/* ---- the scenario's settings and requests ------------------------------------- */

void rs_lt_scenario_init(struct rs_lt_scenario *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->settings.model = RS_LT_CLOSED;
	sc->settings.users = 10;
	sc->settings.connections = 64;
	sc->settings.timeout_ms = 10000;
}

static void template_free(struct rs_lt_template *t)
{
	free(t->text);
	t->text = NULL;
}

void rs_lt_scenario_free(struct rs_lt_scenario *sc)
{
	for (unsigned i = 0; i < sc->nrequests; i++) {
		struct rs_lt_request *r = &sc->requests[i];
		free(r->name);
		free(r->method);
		template_free(&r->path);
		template_free(&r->body);
		for (unsigned h = 0; h < r->nheaders; h++)
			template_free(&r->headers[h]);
		free(r->expect_body);
	}
	for (unsigned i = 0; i < sc->nthresholds; i++) {
		free(sc->thresholds[i].text);
		free(sc->thresholds[i].request);
	}
	for (size_t r = 0; r < sc->nrows; r++) {
		for (unsigned c = 0; c < sc->nvars; c++)
			free(sc->var_rows[r][c]);
		free(sc->var_rows[r]);
	}
	free(sc->var_rows);
	for (unsigned c = 0; c < sc->nvars; c++)
		free(sc->var_names[c]);
	free(sc->var_names);
	free(sc->vars_file);
	free(sc->base_url);
	memset(sc, 0, sizeof(*sc));
}

/* Settings a file may set only once (threshold repeats). */
static const struct {
	const char *key;
	unsigned bit;
} setting_bits[] = {
	{ "model", RS_LT_SET_MODEL }, { "users", RS_LT_SET_USERS },
	{ "spawn_rate", RS_LT_SET_SPAWN_RATE }, { "think_time", RS_LT_SET_THINK },
	{ "rate", RS_LT_SET_RATE }, { "ramp", RS_LT_SET_RAMP },
	{ "connections", RS_LT_SET_CONNECTIONS }, { "duration", RS_LT_SET_DURATION },
	{ "requests", RS_LT_SET_REQUESTS }, { "threads", RS_LT_SET_THREADS },
	{ "timeout", RS_LT_SET_TIMEOUT }, { "http2", RS_LT_SET_HTTP2 },
	{ "insecure", RS_LT_SET_INSECURE },
};

static int set_think(const struct loc *l, const char *v, struct rs_lt_settings *st)
{
	const char *dash = strchr(v, '-');
	char lo[32];

	if (!dash) {
		if (parse_dur(l, "think_time", v, true, &st->think_min_ms) < 0)
			return -1;
		st->think_max_ms = st->think_min_ms;
		return 0;
	}
	if ((size_t)(dash - v) >= sizeof(lo))
		return fail(l, "think_time", "'%s' is not a duration or a range such as 1s-3s", v);
	memcpy(lo, v, (size_t)(dash - v));
	lo[dash - v] = '\0';
	if (parse_dur(l, "think_time", lo, true, &st->think_min_ms) ||
	    parse_dur(l, "think_time", dash + 1, true, &st->think_max_ms))
		return -1;
	if (st->think_max_ms < st->think_min_ms)
		return fail(l, "think_time", "'%s': the range ends before it starts", v);
	return 0;
}

/* One [scenario] key.  *vars_out gets the variables path (not yet read). */
static int set_setting(struct loc *l, const char *key, const char *v, char **vars_out)
{
	struct rs_lt_scenario *sc = l->sc;
	struct rs_lt_settings *st = &sc->settings;
	uint64_t n = 0;
	int rc;

	for (size_t i = 0; i < RS_ARRAY_SIZE(setting_bits); i++) {
		if (strcmp(key, setting_bits[i].key))
			continue;
		if (sc->set_mask & setting_bits[i].bit)
			return fail(l, key, "set twice");
		sc->set_mask |= setting_bits[i].bit;
	}
	if (!strcmp(key, "base_url")) {
		if (!is_http_url(v))
			return fail(l, key, "'%s' is not an http:// or https:// URL", v);
		free(sc->base_url);
		return (sc->base_url = strdup(v)) ? 0 : fail(l, key, "out of memory");
	}
	if (!strcmp(key, "model")) {
		if (!strcmp(v, "closed"))
			st->model = RS_LT_CLOSED;
		else if (!strcmp(v, "open"))
			st->model = RS_LT_OPEN;
		else
			return fail(l, key, "'%s' is not closed or open", v);
		return 0;
	}
	if (!strcmp(key, "users")) {
		if ((rc = parse_uint(l, key, v, 1000000, &n)) == 0)
			st->users = (unsigned)n;
		return rc;
	}
	if (!strcmp(key, "spawn_rate"))
		return parse_rate(l, key, v, &st->spawn_rate);
	if (!strcmp(key, "think_time"))
		return set_think(l, v, st);
	if (!strcmp(key, "rate")) {
		if ((rc = parse_rate(l, key, v, &st->rate)) == 0 && !(sc->set_mask & RS_LT_SET_MODEL))
			st->model = RS_LT_OPEN;
		return rc;
	}
	if (!strcmp(key, "ramp"))
		return parse_dur(l, key, v, true, &st->ramp_ms);
	if (!strcmp(key, "connections")) {
		if ((rc = parse_uint(l, key, v, 100000, &n)) == 0)
			st->connections = (unsigned)n;
		return rc;
	}
	if (!strcmp(key, "duration"))
		return parse_dur(l, key, v, false, &st->duration_ms);
	if (!strcmp(key, "requests"))
		return parse_uint(l, key, v, UINT64_MAX / 4, &st->requests);
	if (!strcmp(key, "threads")) {
		if ((rc = parse_uint(l, key, v, 64, &n)) == 0)
			st->threads = (unsigned)n;
		return rc;
	}
	if (!strcmp(key, "timeout"))
		return parse_dur(l, key, v, false, &st->timeout_ms);
	if (!strcmp(key, "http2"))
		return parse_bool(l, key, v, &st->http2);
	if (!strcmp(key, "insecure"))
		return parse_bool(l, key, v, &st->insecure);
	if (!strcmp(key, "variables")) {
		if (*vars_out)
			return fail(l, key, "set twice");
		return (*vars_out = strdup(v)) ? 0 : fail(l, key, "out of memory");
	}
	if (!strcmp(key, "threshold")) {
		struct rs_err e = RS_ERR_INIT;
		if (rs_lt_scenario_add_threshold(sc, v, &e) < 0)
			return fail(l, key, "%s", e.msg);
		return 0;
	}
	return fail(l, key, "unknown setting (base_url, model, users, spawn_rate, think_time, "
		    "rate, ramp, connections, duration, requests, threads, timeout, http2, "
		    "insecure, variables, threshold)");
}

static struct rs_lt_request *new_request(struct loc *l, const char *name)
{
	struct rs_lt_scenario *sc = l->sc;
	struct rs_lt_request *r;

	if (sc->nrequests == RS_LT_MAX_REQUESTS) {
		fail(l, NULL, "too many requests: at most %d", RS_LT_MAX_REQUESTS);
		return NULL;
	}
	for (unsigned i = 0; name && i < sc->nrequests; i++)
		if (!strcmp(sc->requests[i].name, name)) {
			fail(l, NULL, "a second request named '%s'", name);
			return NULL;
		}
	r = &sc->requests[sc->nrequests];
	memset(r, 0, sizeof(*r));
	r->weight = 1;
	if ((name && !(r->name = strdup(name))) || !(r->method = strdup("GET"))) {
		free(r->name);
		r->name = NULL;
		fail(l, NULL, "out of memory");
		return NULL;
	}
	sc->nrequests++;
	return r;
}

/* Bits for keys a request may set only once. */
static int set_request(struct loc *l, struct rs_lt_request *r, unsigned *seen, const char *key,
		       const char *v)
{
	static const char *const once[] = { "method", "path", "weight", "body", "expect_status",
					    "expect_body", "name" };
	uint64_t n = 0;

	for (unsigned i = 0; i < RS_ARRAY_SIZE(once); i++)
		if (!strcmp(key, once[i])) {
			if (*seen & (1u << i))
				return fail(l, key, "set twice");
			*seen |= 1u << i;
		}
	if (!strcmp(key, "method")) {
		if (!*v || strlen(v) > 16)
			return fail(l, key, "'%s' is not an HTTP method", v);
		for (const char *p = v; *p; p++)
			if (!isupper((unsigned char)*p))
				return fail(l, key, "'%s' is not an HTTP method (upper case letters)", v);
		free(r->method);
		return (r->method = strdup(v)) ? 0 : fail(l, key, "out of memory");
	}
	if (!strcmp(key, "path")) {
		if (v[0] != '/' && !is_http_url(v))
			return fail(l, key, "'%s' is neither a path starting with '/' nor an "
				    "http(s) URL", v);
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p <= ' ')
				return fail(l, key, "a path cannot hold spaces or control characters");
		return set_template(&r->path, v) ? fail(l, key, "out of memory") : 0;
	}
	if (!strcmp(key, "weight")) {
		if (parse_uint(l, key, v, WEIGHT_MAX, &n) < 0)
			return -1;
		r->weight = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "header")) {
		const char *why = header_problem(v);
		if (why)
			return fail(l, key, "'%s': %s", v, why);
		if (r->nheaders == RS_LT_MAX_HEADERS)
			return fail(l, key, "too many headers: at most %d", RS_LT_MAX_HEADERS);
		if (set_template(&r->headers[r->nheaders], v))
			return fail(l, key, "out of memory");
		r->nheaders++;
		return 0;
	}
	if (!strcmp(key, "body"))
		return set_template(&r->body, v) ? fail(l, key, "out of memory") : 0;
	if (!strcmp(key, "expect_status")) {
		if (parse_uint(l, key, v, 599, &n) < 0 || n < 100)
			return fail(l, key, "'%s' is not an HTTP status (100 to 599)", v);
		r->expect_status = (int)n;
		return 0;
	}
	if (!strcmp(key, "expect_body")) {
		if (!*v)
			return fail(l, key, "empty");
		free(r->expect_body);
		return (r->expect_body = strdup(v)) ? 0 : fail(l, key, "out of memory");
	}
	return fail(l, key, "unknown key (method, path, weight, header, body, expect_status, "
		    "expect_body)");
}

/* ---- reading files ------------------------------------------------------------ */

/* path relative to the directory of `base` (a scenario file). */
static char *beside(const char *base, const char *path)
{
	const char *slash = strrchr(base, '/');
	char *out;

	if (path[0] == '/' || !slash || !strcmp(base, "-"))
		return strdup(path);
	size_t dl = (size_t)(slash - base) + 1;
	if (!(out = malloc(dl + strlen(path) + 1)))
		return NULL;
	memcpy(out, base, dl);
	strcpy(out + dl, path);
	return out;
}

static int load_ini(struct loc *l, char *text)
{
	struct rs_lt_request *req = NULL;
	unsigned seen = 0;
	bool in_scenario = false;
	char *vars = NULL, *line = text, *next;
	int lineno = 0, rc = 0, req_line = 0;

	for (; line && rc == 0; line = next) {
		struct rs_ini_line il;
		const char *why;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[n - 1] = '\0';
		if (strlen(line) >= RS_INI_LINE_MAX) {
			snprintf(l->at, sizeof(l->at), "%s:%d", l->file, lineno);
			rc = fail(l, NULL, "line longer than %d bytes", RS_INI_LINE_MAX - 1);
			break;
		}
		rs_ini_parse_line(line, &il);
		if (il.kind == RS_INI_BLANK)
			continue;
		if (il.kind == RS_INI_ERROR) {
			snprintf(l->at, sizeof(l->at), "%s:%d", l->file, lineno);
			rc = fail(l, NULL, "%s", il.error);
			break;
		}
		if (il.kind == RS_INI_SECTION) {
			if (req && !req->path.text) {
				snprintf(l->at, sizeof(l->at), "%s:%d", l->file, req_line);
				rc = fail(l, NULL, "[request %s] has no path", req->name);
				break;
			}
			snprintf(l->at, sizeof(l->at), "%s:%d", l->file, lineno);
			req = NULL;
			in_scenario = false;
			if (!strcmp(il.section, "scenario") && !il.name) {
				in_scenario = true;
			} else if (!strcmp(il.section, "request") && il.name) {
				seen = 0;
				req_line = lineno;
				if (!(req = new_request(l, il.name)))
					rc = -1;
			} else {
				rc = fail(l, NULL, "unknown section [%s%s%s]: [scenario] or "
					  "[request NAME]", il.section, il.name ? " " : "",
					  il.name ? il.name : "");
			}
			continue;
		}
		/* a key = value */
		if (req)
			snprintf(l->at, sizeof(l->at), "%s:%d: [request %s]", l->file, lineno, req->name);
		else
			snprintf(l->at, sizeof(l->at), "%s:%d: [scenario]", l->file, lineno);
		if (!req && !in_scenario) {
			snprintf(l->at, sizeof(l->at), "%s:%d", l->file, lineno);
			rc = fail(l, NULL, "'%s' outside a section: put it under [scenario] or "
				  "[request NAME]", il.key);
			break;
		}
		if (rs_ini_unquote(il.value, &why) < 0) {
			rc = fail(l, il.key, "%s", why);
			break;
		}
		rc = req ? set_request(l, req, &seen, il.key, il.value)
			 : set_setting(l, il.key, il.value, &vars);
	}
	if (rc == 0 && req && !req->path.text) {
		snprintf(l->at, sizeof(l->at), "%s:%d", l->file, req_line);
		rc = fail(l, NULL, "[request %s] has no path", req->name);
	}
	if (rc == 0 && vars) {
		char *p = beside(l->file, vars);
		rc = p ? rs_lt_scenario_load_vars(l->sc, p, l->err) : rs_err_set(l->err, "out of memory");
		free(p);
	}
	free(vars);
	return rc;
}

/* A JSON scalar as the text an INI file would hold. */
static int json_text(const struct loc *l, const char *key, const json_t *v, char *buf, size_t n,
		     const char **out)
{
	if (json_is_string(v))
		*out = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v)), *out = buf;
	else if (json_is_real(v))
		snprintf(buf, n, "%.17g", json_real_value(v)), *out = buf;
	else if (json_is_boolean(v))
		*out = json_is_true(v) ? "true" : "false";
	else
		return fail(l, key, "must be a string, a number or a boolean");
	return 0;
}

static int load_json(struct loc *l, const char *text)
{
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je), *v, *reqs;
	const char *key, *s;
	char buf[64], *vars = NULL;
	int rc = 0;

	if (!doc)
		return rs_err_set(l->err, "%s:%d: %s", l->file, je.line, je.text);
	snprintf(l->at, sizeof(l->at), "%s:", l->file);
	l->sep = ' ';
	if (!json_is_object(doc)) {
		rc = fail(l, NULL, "a scenario is a JSON object with \"scenario\" and \"requests\"");
		goto out;
	}
	json_object_foreach(doc, key, v)
		if (strcmp(key, "scenario") && strcmp(key, "requests")) {
			snprintf(l->at, sizeof(l->at), "%s", l->file);
			rc = fail(l, NULL, "unknown key \"%s\": \"scenario\" or \"requests\"", key);
			goto out;
		}
	snprintf(l->at, sizeof(l->at), "%s: scenario", l->file);
	l->sep = '.';
	v = json_object_get(doc, "scenario");
	if (v && !json_is_object(v)) {
		rc = fail(l, NULL, "must be an object");
		goto out;
	}
	json_t *sv;
	json_object_foreach(v, key, sv) {
		if (!strcmp(key, "threshold") && json_is_array(sv)) {
			size_t i;
			json_t *t;
			json_array_foreach(sv, i, t) {
				if (json_text(l, key, t, buf, sizeof(buf), &s) ||
				    set_setting(l, key, s, &vars)) {
					rc = -1;
					goto out;
				}
			}
			continue;
		}
		if (json_text(l, key, sv, buf, sizeof(buf), &s) || set_setting(l, key, s, &vars)) {
			rc = -1;
			goto out;
		}
	}
	reqs = json_object_get(doc, "requests");
	if (reqs && !json_is_array(reqs)) {
		snprintf(l->at, sizeof(l->at), "%s: requests", l->file);
		rc = fail(l, NULL, "must be an array of request objects");
		goto out;
	}
	size_t i;
	json_t *rq;
	json_array_foreach(reqs, i, rq) {
		snprintf(l->at, sizeof(l->at), "%s: requests[%zu]", l->file, i);
		if (!json_is_object(rq)) {
			rc = fail(l, NULL, "must be an object");
			goto out;
		}
		json_t *name = json_object_get(rq, "name");
		if (name && !json_is_string(name)) {
			rc = fail(l, "name", "must be a string");
			goto out;
		}
		struct rs_lt_request *r = new_request(l, name ? json_string_value(name) : NULL);
		unsigned seen = 1u << 6;  /* "name" handled */
		if (!r) {
			rc = -1;
			goto out;
		}
		json_object_foreach(rq, key, sv) {
			if (!strcmp(key, "name"))
				continue;
			if (!strcmp(key, "headers")) {
				if (json_is_array(sv)) {
					size_t k;
					json_t *h;
					json_array_foreach(sv, k, h) {
						if (!json_is_string(h)) {
							rc = fail(l, key, "a list of \"Name: value\" strings");
							goto out;
						}
						if (set_request(l, r, &seen, "header", json_string_value(h))) {
							rc = -1;
							goto out;
						}
					}
				} else if (json_is_object(sv)) {
					const char *hn;
					json_t *hv;
					json_object_foreach(sv, hn, hv) {
						char line[RS_INI_LINE_MAX];
						if (json_text(l, key, hv, buf, sizeof(buf), &s)) {
							rc = -1;
							goto out;
						}
						snprintf(line, sizeof(line), "%s: %s", hn, s);
						if (set_request(l, r, &seen, "header", line)) {
							rc = -1;
							goto out;
						}
					}
				} else {
					rc = fail(l, key, "a list of \"Name: value\" strings or an object");
					goto out;
				}
				continue;
			}
			if (!strcmp(key, "body") && (json_is_object(sv) || json_is_array(sv))) {
				char *b = json_dumps(sv, JSON_COMPACT);
				rc = b ? set_request(l, r, &seen, key, b) : fail(l, key, "out of memory");
				free(b);
				if (rc)
					goto out;
				continue;
			}
			if (json_text(l, key, sv, buf, sizeof(buf), &s) ||
			    set_request(l, r, &seen, key, s)) {
				rc = -1;
				goto out;
			}
		}
		if (!r->path.text) {
			rc = fail(l, NULL, "has no path");
			goto out;
		}
		if (!r->name) {
			char nm[64];
			snprintf(nm, sizeof(nm), "request%zu", i + 1);
			if (!(r->name = strdup(nm))) {
				rc = fail(l, NULL, "out of memory");
				goto out;
			}
		}
	}
	if (vars) {
		char *p = beside(l->file, vars);
		rc = p ? rs_lt_scenario_load_vars(l->sc, p, l->err) : rs_err_set(l->err, "out of memory");
		free(p);
	}
out:
	free(vars);
	json_decref(doc);
	return rc;
}

int rs_lt_scenario_load(struct rs_lt_scenario *sc, const char *path, struct rs_err *err)
{
	size_t len;
	char *text = rs_read_file(path, SCENARIO_FILE_MAX, &len, err);
	struct loc l = { sc, strcmp(path, "-") ? path : "(stdin)", "", ' ', err };
	const char *p;
	int rc;

	if (!text)
		return -1;
	if (memchr(text, '\0', len)) {
		free(text);
		return rs_err_set(err, "'%s' is not a text file", path);
	}
	for (p = text; isspace((unsigned char)*p); p++)
		;
	rc = *p == '{' ? load_json(&l, text) : load_ini(&l, text);
	free(text);
	return rc;
}

int rs_lt_scenario_add_url(struct rs_lt_scenario *sc, const char *url, struct rs_err *err)
{
	struct loc l = { sc, "--url", "--url", ' ', err };
	char name[160];
	unsigned seen = 0;

	if (!is_http_url(url))
		return rs_err_set(err, "not an http:// or https:// URL");
	snprintf(name, sizeof(name), "GET %s", url);
	for (unsigned i = 0; i < sc->nrequests; i++)
		if (!strcmp(sc->requests[i].name, name))
			return rs_err_set(err, "given twice");
	struct rs_lt_request *r = new_request(&l, name);
	if (!r)
		return -1;
	if (set_request(&l, r, &seen, "path", url) < 0) {
		/* the message names the URL already */
		sc->nrequests--;
		free(r->name);
		free(r->method);
		return rs_err_set(err, "%s", err->msg + strlen("--url path: "));
	}
	return 0;
}

int rs_lt_scenario_add_header(struct rs_lt_scenario *sc, const char *header, struct rs_err *err)
{
	const char *why = header_problem(header);

	if (why)
		return rs_err_set(err, "%s", why);
	/* to the requests there are: the caller adds headers last */
	for (unsigned i = 0; i < sc->nrequests; i++) {
		struct rs_lt_request *r = &sc->requests[i];
		if (r->nheaders == RS_LT_MAX_HEADERS)
			return rs_err_set(err, "request '%s' has too many headers: at most %d", r->name,
					  RS_LT_MAX_HEADERS);
		if (set_template(&r->headers[r->nheaders], header))
			return rs_err_set(err, "out of memory");
		r->nheaders++;
	}
	return 0;
}

/* ---- variables ---------------------------------------------------------------- */

struct csv {
	const char *p, *end, *path;
	int line;
};

/* The next field into *out (allocated); *eol true when it ended its row.
 * 1 on a field, 0 at the end of the input, -1 on an error. */
static int csv_field(struct csv *c, char **out, bool *eol, struct rs_err *err)
{
	size_t cap = 32, n = 0;
	char *f;

	if (c->p >= c->end)
		return 0;
	if (!(f = malloc(cap)))
		return rs_err_set(err, "out of memory");
	bool quoted = *c->p == '"';
	int start = c->line;
	if (quoted)
		c->p++;
	for (;;) {
		char ch;
		if (c->p >= c->end) {
			if (quoted) {
				free(f);
				return rs_err_set(err, "%s:%d: a quoted field is not closed", c->path, start);
			}
			*eol = true;
			break;
		}
		ch = *c->p++;
		if (quoted && ch == '"') {
			if (c->p < c->end && *c->p == '"') {
				c->p++;
			} else {
				quoted = false;
				if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
					free(f);
					return rs_err_set(err, "%s:%d: text after a closing quote", c->path,
							  c->line);
				}
				continue;
			}
		} else if (!quoted && ch == ',') {
			*eol = false;
			break;
		} else if (!quoted && (ch == '\n' || ch == '\r')) {
			if (ch == '\r' && c->p < c->end && *c->p == '\n')
				c->p++;
			c->line++;
			*eol = true;
			break;
		} else if (ch == '\n') {
			c->line++;
		}
		if (n + 2 > cap) {
			char *g = realloc(f, cap *= 2);
			if (!g) {
				free(f);
				return rs_err_set(err, "out of memory");
			}
			f = g;
		}
		f[n++] = ch;
	}
	f[n] = '\0';
	*out = f;
	return 1;
}

/* One row; *nf fields in *fields (allocated); 0 at the end of input. */
static int csv_row(struct csv *c, char ***fields, unsigned *nf, struct rs_err *err)
{
	char **v = NULL, *f = NULL;
	unsigned n = 0;
	bool eol = false;
	int rc;

	*fields = NULL;
	*nf = 0;
	while (!eol && (rc = csv_field(c, &f, &eol, err)) == 1) {
		char **g = realloc(v, (n + 1) * sizeof(*v));
		if (!g || n >= 1024) {
			free(f);
			rc = g ? rs_err_set(err, "%s:%d: more than 1024 fields", c->path, c->line)
			       : rs_err_set(err, "out of memory");
			v = g ? g : v;
			goto fail;
		}
		v = g;
		v[n++] = f;
	}
	if (!eol && rc < 0)
		goto fail;
	*fields = v;
	*nf = n;
	return n ? 1 : 0;
fail:
	while (n)
		free(v[--n]);
	free(v);
	return -1;
}

static void free_row(char **f, unsigned n)
{
	while (n)
		free(f[--n]);
	free(f);
}

int rs_lt_scenario_load_vars(struct rs_lt_scenario *sc, const char *path, struct rs_err *err)
{
	size_t len;
	char *text = rs_read_file(path, VARS_FILE_MAX, &len, err), **f = NULL;
	struct csv c = { text, text + (text ? len : 0), path, 1 };
	unsigned nf;
	int rc;

	if (!text)
		return -1;
	if (sc->nvars) {
		free(text);
		return rs_err_set(err, "%s: a scenario has one variables file", path);
	}
	if ((rc = csv_row(&c, &f, &nf, err)) <= 0) {
		free(text);
		return rc < 0 ? -1 : rs_err_set(err, "%s: empty: a header line of column names is needed", path);
	}
	for (unsigned i = 0; i < nf; i++) {
		bool ok = *f[i] && (isalpha((unsigned char)*f[i]) || *f[i] == '_');
		for (const char *p = f[i]; ok && *p; p++)
			ok = isalnum((unsigned char)*p) || *p == '_';
		for (unsigned k = 0; ok && k < i; k++)
			ok = strcmp(f[i], f[k]) != 0;
		if (!ok) {
			rs_err_set(err, "%s:1: column '%s': names are letters, digits and '_', not "
				   "starting with a digit, each once", path, f[i]);
			free_row(f, nf);
			free(text);
			return -1;
		}
	}
	sc->var_names = f;
	sc->nvars = nf;
	size_t cap = 0;
	for (;;) {
		int line = c.line;
		char **row;
		unsigned n;
		if ((rc = csv_row(&c, &row, &n, err)) < 0)
			goto fail;
		if (rc == 0)
			break;
		if (n == 1 && !*row[0]) {       /* a blank line */
			free_row(row, n);
			continue;
		}
		if (n != nf) {
			rs_err_set(err, "%s:%d: %u fields, the header has %u", path, line, n, nf);
			free_row(row, n);
			goto fail;
		}
		if (sc->nrows == VARS_ROWS_MAX) {
			rs_err_set(err, "%s: more than %d rows", path, VARS_ROWS_MAX);
			free_row(row, n);
			goto fail;
		}
		if (sc->nrows == cap) {
			cap = cap ? cap * 2 : 64;
			char ***g = realloc(sc->var_rows, cap * sizeof(*g));
			if (!g) {
				rs_err_set(err, "out of memory");
				free_row(row, n);
				goto fail;
			}
			sc->var_rows = g;
		}
		sc->var_rows[sc->nrows++] = row;
	}
	if (!sc->nrows) {
		rs_err_set(err, "%s: no rows after the header", path);
		goto fail;
	}
	free(text);
	if (!(sc->vars_file = strdup(path)))
		return rs_err_set(err, "out of memory");
	return 0;
fail:
	free(text);
	for (size_t r = 0; r < sc->nrows; r++)
		free_row(sc->var_rows[r], nf);
	free(sc->var_rows);
	free_row(sc->var_names, nf);
	sc->var_rows = NULL;
	sc->var_names = NULL;
	sc->nrows = 0;
	sc->nvars = 0;
	return -1;
}

static int var_index(const struct rs_lt_scenario *sc, const char *name, size_t len)
{
	for (unsigned i = 0; i < sc->nvars; i++)
		if (strlen(sc->var_names[i]) == len && !memcmp(sc->var_names[i], name, len))
			return (int)i;
	return -1;
}

static int put(char **out, size_t *cap, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = (*len + n + 1) * 2;
		char *o = realloc(*out, c);
		if (!o)
			return -1;
		*out = o;
		*cap = c;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
	return 0;
}

int rs_lt_expand(const struct rs_lt_template *t, const struct rs_lt_scenario *sc, size_t row,
		 char **out, size_t *cap, size_t *len)
{
	const char *p = t->text ? t->text : "";

	*len = 0;
	if (put(out, cap, len, "", 0) < 0)
		return -1;
	while (*p) {
		const char *d = strchr(p, '$');
		if (!d)
			return put(out, cap, len, p, strlen(p));
		if (put(out, cap, len, p, (size_t)(d - p)) < 0)
			return -1;
		if (d[1] == '$' && d[2] == '{') {      /* "$${" is a literal "${" */
			if (put(out, cap, len, "${", 2) < 0)
				return -1;
			p = d + 3;
			continue;
		}
		const char *close = d[1] == '{' ? strchr(d + 2, '}') : NULL;
		int vi = close ? var_index(sc, d + 2, (size_t)(close - d - 2)) : -1;
		if (vi < 0 || !sc->nrows) {
			if (put(out, cap, len, d, 1) < 0)
				return -1;
			p = d + 1;
			continue;
		}
		const char *v = sc->var_rows[row % sc->nrows][vi];
		if (put(out, cap, len, v, strlen(v)) < 0)
			return -1;
		p = close + 1;
	}
	return 0;
}

/* The first ${NAME} of t that is not a column, into name; false if none. */
static bool unknown_var(const struct rs_lt_template *t, const struct rs_lt_scenario *sc,
			char *name, size_t n)
{
	const char *p = t->text;

	while (p && (p = strstr(p, "${"))) {
		if (p > t->text && p[-1] == '$') {
			p += 2;
			continue;
		}
		const char *close = strchr(p + 2, '}');
		if (!close) {
			snprintf(name, n, "%s", p);
			return true;
		}
		if (var_index(sc, p + 2, (size_t)(close - p - 2)) < 0) {
			snprintf(name, n, "%.*s", (int)(close - p - 2), p + 2);
			return true;
		}
		p = close + 1;
	}
	return false;
}

int rs_lt_scenario_check(const struct rs_lt_scenario *sc, struct rs_err *err)
{
	char name[128];

	if (!sc->nrequests)
		return rs_err_set(err, "nothing to request: no --url and no [request] in the scenario");
	for (unsigned i = 0; i < sc->nrequests; i++) {
		const struct rs_lt_request *r = &sc->requests[i];
		const struct rs_lt_template *ts[RS_LT_MAX_HEADERS + 2] = { &r->path, &r->body };
		unsigned nt = 2;
		for (unsigned h = 0; h < r->nheaders; h++)
			ts[nt++] = &r->headers[h];
		for (unsigned k = 0; k < nt; k++)
			if (ts[k]->has_vars && unknown_var(ts[k], sc, name, sizeof(name)))
				return rs_err_set(err, "request '%s': unknown variable '${%s}'%s", r->name,
						  name, sc->nvars ? " (not a column of the variables file)"
						  : ": give a variables file (--vars or variables =)");
		if (!is_http_url(r->path.text) && !sc->base_url)
			return rs_err_set(err, "request '%s': path '%s' needs a base_url (--base-url "
					  "or base_url = in the scenario)", r->name, r->path.text);
	}
	for (unsigned i = 0; i < sc->nthresholds; i++) {
		const struct rs_lt_threshold *t = &sc->thresholds[i];
		bool found = !t->request;
		for (unsigned k = 0; !found && k < sc->nrequests; k++)
			found = !strcmp(sc->requests[k].name, t->request);
		if (!found)
			return rs_err_set(err, "threshold '%s': no request named '%s'", t->text,
					  t->request);
	}
	return 0;
}
