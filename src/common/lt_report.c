/*
 * lt_report: what `resyncctl loadtest` found, for people (text, HTML) and
 * programs (JSON, CSV), and the thresholds' verdicts (see loadtest.h).
 *
 * The HTML page draws its charts as inline SVG computed here, so it
 * needs nothing but a browser: no script, no stylesheet or font fetched.
 */
#include "loadtest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const error_names[RS_LT_NERRORS] = {
	"connect", "timeout", "status", "body", "io",
};

const char *rs_lt_error_name(enum rs_lt_error e)
{
	return (unsigned)e < RS_LT_NERRORS ? error_names[e] : "unknown";
}

uint64_t rs_lt_stats_errors(const struct rs_lt_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < RS_LT_NERRORS; i++)
		n += s->errors[i];
	return n;
}

void rs_lt_result_free(struct rs_lt_result *r)
{
	free(r->per_request);
	free(r->seconds);
	r->per_request = NULL;
	r->seconds = NULL;
	r->nrequests = 0;
	r->nseconds = 0;
}

static double seconds(const struct rs_lt_result *r)
{
	return (double)r->elapsed_us / 1e6;
}

static double stats_rps(const struct rs_lt_result *r, const struct rs_lt_stats *s)
{
	return r->elapsed_us > 0 ? (double)s->requests / seconds(r) : 0;
}

double rs_lt_rps(const struct rs_lt_result *r)
{
	return stats_rps(r, &r->total);
}

double rs_lt_error_rate(const struct rs_lt_stats *s)
{
	return s->requests ? 100.0 * (double)rs_lt_stats_errors(s) / (double)s->requests : 0;
}

/* ---- thresholds --------------------------------------------------------------- */

static const struct rs_lt_stats *stats_of(const struct rs_lt_scenario *sc,
					  const struct rs_lt_result *r, const char *request)
{
	if (!request)
		return &r->total;
	for (unsigned i = 0; i < sc->nrequests && i < r->nrequests; i++)
		if (!strcmp(sc->requests[i].name, request))
			return &r->per_request[i];
	return NULL;
}

static double metric_value(const struct rs_lt_result *r, const struct rs_lt_stats *s,
			   enum rs_lt_metric m)
{
	switch (m) {
	case RS_LT_P50: return (double)rs_hist_percentile(&s->latency, 50);
	case RS_LT_P90: return (double)rs_hist_percentile(&s->latency, 90);
	case RS_LT_P95: return (double)rs_hist_percentile(&s->latency, 95);
	case RS_LT_P99: return (double)rs_hist_percentile(&s->latency, 99);
	case RS_LT_P999: return (double)rs_hist_percentile(&s->latency, 99.9);
	case RS_LT_MAX: return (double)rs_hist_max(&s->latency);
	case RS_LT_MEAN: return rs_hist_mean(&s->latency);
	case RS_LT_ERROR_RATE: return rs_lt_error_rate(s);
	case RS_LT_ERRORS: return (double)rs_lt_stats_errors(s);
	case RS_LT_RPS: return stats_rps(r, s);
	}
	return NAN;
}

unsigned rs_lt_thresholds_eval(const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
			       struct rs_lt_verdict *v)
{
	unsigned failed = 0;

	for (unsigned i = 0; i < sc->nthresholds; i++) {
		const struct rs_lt_threshold *t = &sc->thresholds[i];
		const struct rs_lt_stats *s = stats_of(sc, r, t->request);
		double a = s ? metric_value(r, s, t->metric) : NAN;
		bool pass = false;

		if (!isnan(a)) {
			switch (t->op) {
			case RS_LT_LT: pass = a < t->value; break;
			case RS_LT_LE: pass = a <= t->value; break;
			case RS_LT_GT: pass = a > t->value; break;
			case RS_LT_GE: pass = a >= t->value; break;
			}
		}
		v[i] = (struct rs_lt_verdict){ t, a, pass };
		failed += !pass;
	}
	return failed;
}

/* ---- formatting --------------------------------------------------------------- */

static void fmt_us(double us, char *buf, size_t n)
{
	if (isnan(us))
		snprintf(buf, n, "-");
	else if (us < 1000)
		snprintf(buf, n, "%.0fus", us);
	else if (us < 1e6)
		snprintf(buf, n, "%.*fms", us < 1e4 ? 2 : 1, us / 1e3);
	else
		snprintf(buf, n, "%.2fs", us / 1e6);
}

static void fmt_dur_ms(int64_t ms, char *buf, size_t n)
{
	if (ms % 60000 == 0 && ms)
		snprintf(buf, n, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, n, "%lldms", (long long)ms);
}

/* A verdict's actual value in the threshold's own unit. */
static void fmt_actual(const struct rs_lt_verdict *v, char *buf, size_t n)
{
	double a = v->actual;

	if (isnan(a))
		snprintf(buf, n, "no such request");
	else if (v->threshold->metric <= RS_LT_MEAN)
		fmt_us(a, buf, n);
	else if (v->threshold->metric == RS_LT_ERROR_RATE)
		snprintf(buf, n, "%.2f%%", a);
	else if (v->threshold->metric == RS_LT_ERRORS)
		snprintf(buf, n, "%.0f", a);
	else
		snprintf(buf, n, "%.1f req/s", a);
}

static const char *model_name(enum rs_lt_model m)
{
	return m == RS_LT_OPEN ? "open" : "closed";
}

static void describe_model(const struct rs_lt_settings *st, char *buf, size_t n)
{
	char a[32], b[32];

	if (st->model == RS_LT_OPEN) {
		fmt_dur_ms(st->ramp_ms, a, sizeof(a));
		snprintf(buf, n, "open model: %.1f req/s%s%s, at most %u in flight", st->rate,
			 st->ramp_ms ? " reached over " : "", st->ramp_ms ? a : "", st->connections);
	} else {
		fmt_dur_ms(st->think_min_ms, a, sizeof(a));
		fmt_dur_ms(st->think_max_ms, b, sizeof(b));
		int k = snprintf(buf, n, "closed model: %u users", st->users);
		if (k > 0 && (size_t)k < n && st->spawn_rate > 0)
			k += snprintf(buf + k, n - (size_t)k, ", started %.1f/s", st->spawn_rate);
		if (k > 0 && (size_t)k < n && st->think_max_ms > 0)
			snprintf(buf + k, n - (size_t)k, ", think %s%s%s", a,
				 st->think_max_ms != st->think_min_ms ? "-" : "",
				 st->think_max_ms != st->think_min_ms ? b : "");
	}
}

static void describe_bound(const struct rs_lt_settings *st, char *buf, size_t n)
{
	char d[32];

	fmt_dur_ms(st->duration_ms, d, sizeof(d));
	if (st->duration_ms && st->requests)
		snprintf(buf, n, "%s or %llu requests", d, (unsigned long long)st->requests);
	else if (st->duration_ms)
		snprintf(buf, n, "%s", d);
	else
		snprintf(buf, n, "%llu requests", (unsigned long long)st->requests);
}

/* ---- text ----------------------------------------------------------------------- */

/* p50 p90 p95 p99 p99.9 max mean stdev, formatted: a summary row's cells */
static void latency_cells(const struct rs_lt_stats *s, char v[8][16])
{
	const struct rs_hist *h = &s->latency;

	fmt_us((double)rs_hist_percentile(h, 50), v[0], 16);
	fmt_us((double)rs_hist_percentile(h, 90), v[1], 16);
	fmt_us((double)rs_hist_percentile(h, 95), v[2], 16);
	fmt_us((double)rs_hist_percentile(h, 99), v[3], 16);
	fmt_us((double)rs_hist_percentile(h, 99.9), v[4], 16);
	fmt_us((double)rs_hist_max(h), v[5], 16);
	fmt_us(rs_hist_mean(h), v[6], 16);
	fmt_us(rs_hist_stdev(h), v[7], 16);
}

static void text_row(FILE *f, const char *name, const struct rs_lt_result *r,
		     const struct rs_lt_stats *s, int w)
{
	char v[8][16];

	latency_cells(s, v);
	fprintf(f, "  %-*s %9llu %7llu %9.1f %8s %8s %8s %8s %8s %8s %8s %8s\n", w, name,
		(unsigned long long)s->requests, (unsigned long long)rs_lt_stats_errors(s),
		stats_rps(r, s), v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

void rs_lt_report_text(FILE *f, const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
		       const struct rs_lt_verdict *v, unsigned nv)
{
	const struct rs_lt_settings *st = &r->settings;
	char model[160], bound[96], to[32];
	int w = 5;

	describe_model(st, model, sizeof(model));
	describe_bound(st, bound, sizeof(bound));
	fmt_dur_ms(st->timeout_ms, to, sizeof(to));
	fprintf(f, "%s; %s, %u threads, timeout %s%s\n", model, bound, st->threads, to,
		st->http2 ? ", HTTP/2 where offered" : "");
	if (sc->base_url)
		fprintf(f, "target: %s\n", sc->base_url);
	fprintf(f, "ran %.2f s%s\n\n", seconds(r),
		r->interrupted ? " (interrupted: the figures cover what ran)" : "");
	for (unsigned i = 0; i < sc->nrequests; i++) {
		int n = (int)strlen(sc->requests[i].name);
		w = n > w ? n : w;
	}
	w = w > 48 ? 48 : w;
	fprintf(f, "  %-*s %9s %7s %9s %8s %8s %8s %8s %8s %8s %8s %8s\n", w, "name", "requests",
		"errors", "req/s", "p50", "p90", "p95", "p99", "p99.9", "max", "mean", "stdev");
	if (sc->nrequests > 1)
		for (unsigned i = 0; i < sc->nrequests && i < r->nrequests; i++)
			text_row(f, sc->requests[i].name, r, &r->per_request[i], w);
	text_row(f, "total", r, &r->total, w);

	if (r->total.http2)
		fprintf(f, "\nHTTP/2: %llu of the answers\n", (unsigned long long)r->total.http2);
	if (rs_lt_stats_errors(&r->total)) {
		fprintf(f, "\nerrors:");
		for (int k = 0; k < RS_LT_NERRORS; k++)
			if (r->total.errors[k])
				fprintf(f, " %s %llu", error_names[k], (unsigned long long)r->total.errors[k]);
		fprintf(f, " (%.2f%% of requests)\n", rs_lt_error_rate(&r->total));
	}
	if (st->model == RS_LT_OPEN) {
		char u[4][16];
		const struct rs_hist *h = &r->total.uncorrected;
		fmt_us((double)rs_hist_percentile(h, 50), u[0], 16);
		fmt_us((double)rs_hist_percentile(h, 95), u[1], 16);
		fmt_us((double)rs_hist_percentile(h, 99), u[2], 16);
		fmt_us((double)rs_hist_max(h), u[3], 16);
		fprintf(f, "\nlatency above is from each request's intended send time "
			"(coordinated omission corrected);\nuncorrected, from the actual send: "
			"p50 %s  p95 %s  p99 %s  max %s\n", u[0], u[1], u[2], u[3]);
		fprintf(f, "schedule: %llu intended, late %llu (sent more than %d ms after their "
			"time), unsent %llu, unfinished %llu\n", (unsigned long long)r->intended,
			(unsigned long long)r->late, RS_LT_LATE_US / 1000,
			(unsigned long long)r->unsent, (unsigned long long)r->unfinished);
		if (r->intended && (r->late + r->unsent) * 100 > r->intended)
			fprintf(f, "WARNING: the generator could not keep the rate: %.1f%% of the "
				"requests were late or never sent (more --connections or --threads, "
				"or a lower --rate)\n",
				100.0 * (double)(r->late + r->unsent) / (double)r->intended);
	} else if (r->unfinished) {
		fprintf(f, "\nunfinished when the run ended: %llu\n", (unsigned long long)r->unfinished);
	}
	if (nv)
		fprintf(f, "\n");
	for (unsigned i = 0; i < nv; i++) {
		char a[48];
		fmt_actual(&v[i], a, sizeof(a));
		fprintf(f, "%s %s (actual %s)\n", v[i].pass ? "PASS" : "FAIL", v[i].threshold->text, a);
	}
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *latency_json(const struct rs_hist *h)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}",
			 "min_us", (json_int_t)rs_hist_min(h),
			 "p50_us", (json_int_t)rs_hist_percentile(h, 50),
			 "p90_us", (json_int_t)rs_hist_percentile(h, 90),
			 "p95_us", (json_int_t)rs_hist_percentile(h, 95),
			 "p99_us", (json_int_t)rs_hist_percentile(h, 99),
			 "p999_us", (json_int_t)rs_hist_percentile(h, 99.9),
			 "max_us", (json_int_t)rs_hist_max(h),
			 "mean_us", rs_hist_mean(h), "stdev_us", rs_hist_stdev(h));
}

static json_t *errors_json(const struct rs_lt_stats *s)
{
	json_t *o = json_object();

	for (int k = 0; o && k < RS_LT_NERRORS; k++)
		json_object_set_new(o, error_names[k], json_integer((json_int_t)s->errors[k]));
	return o;
}

static json_t *stats_json(const struct rs_lt_result *r, const struct rs_lt_stats *s)
{
	return json_pack("{s:I,s:I,s:f,s:f,s:I,s:I,s:o,s:o}",
			 "requests", (json_int_t)s->requests,
			 "errors", (json_int_t)rs_lt_stats_errors(s),
			 "error_rate", rs_lt_error_rate(s), "rps", stats_rps(r, s),
			 "bytes", (json_int_t)s->bytes, "http2_answers", (json_int_t)s->http2,
			 "errors_by_kind", errors_json(s),
			 "latency", latency_json(&s->latency));
}

json_t *rs_lt_report_json(const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
			  const struct rs_lt_verdict *v, unsigned nv)
{
	const struct rs_lt_settings *st = &r->settings;
	json_t *doc, *reqs = json_array(), *defs = json_array(), *series = json_array(),
		*ths = json_array();
	char started[40];
	bool passed = true;

	if (!reqs || !defs || !series || !ths)
		goto oom;
	for (unsigned i = 0; i < sc->nrequests; i++) {
		const struct rs_lt_request *q = &sc->requests[i];
		json_array_append_new(defs, json_pack("{s:s,s:s,s:s,s:i}", "name", q->name,
						      "method", q->method, "path", q->path.text,
						      "weight", (int)q->weight));
		if (i < r->nrequests) {
			json_t *o = stats_json(r, &r->per_request[i]);
			if (o)
				json_object_set_new(o, "name", json_string(q->name));
			json_array_append_new(reqs, o);
		}
	}
	for (size_t i = 0; i < r->nseconds; i++) {
		const struct rs_lt_second *s = &r->seconds[i];
		json_array_append_new(series, json_pack(
			"{s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:f,s:i}", "second", (json_int_t)i,
			"requests", (json_int_t)s->requests, "errors", (json_int_t)s->errors,
			"rps", (double)s->requests, "p50_us", (json_int_t)s->p50_us,
			"p90_us", (json_int_t)s->p90_us, "p95_us", (json_int_t)s->p95_us,
			"p99_us", (json_int_t)s->p99_us, "max_us", (json_int_t)s->max_us,
			"mean_us", s->mean_us, "users", (int)s->users));
	}
	for (unsigned i = 0; i < nv; i++) {
		passed = passed && v[i].pass;
		json_array_append_new(ths, json_pack("{s:s,s:o,s:b}", "threshold", v[i].threshold->text,
						     "actual", isnan(v[i].actual) ? json_null()
						     : json_real(v[i].actual), "pass", v[i].pass));
	}
	rs_format_utc(r->started_ms, started, sizeof(started));
	doc = json_pack("{s:{s:s,s:i,s:f,s:I,s:I,s:f,s:I,s:i,s:I,s:I,s:i,s:I,s:b,s:s?,s:o},"
			"s:s,s:f,s:b,s:o,s:o,s:o,s:o,s:o,s:b}",
			"parameters",
			"model", model_name(st->model), "users", (int)st->users,
			"spawn_rate", st->spawn_rate, "think_min_ms", (json_int_t)st->think_min_ms,
			"think_max_ms", (json_int_t)st->think_max_ms, "rate", st->rate,
			"ramp_ms", (json_int_t)st->ramp_ms, "connections", (int)st->connections,
			"duration_ms", (json_int_t)st->duration_ms, "requests", (json_int_t)st->requests,
			"threads", (int)st->threads, "timeout_ms", (json_int_t)st->timeout_ms,
			"http2", st->http2, "base_url", sc->base_url, "scenario", defs,
			"started", started, "elapsed_s", seconds(r), "interrupted", r->interrupted,
			"total", stats_json(r, &r->total), "requests", reqs,
			"errors", errors_json(&r->total), "series", series, "thresholds", ths,
			"passed", passed);
	if (doc && st->model == RS_LT_OPEN)
		json_object_set_new(doc, "open_model", json_pack(
			"{s:o,s:I,s:I,s:I,s:I}", "uncorrected", latency_json(&r->total.uncorrected),
			"late", (json_int_t)r->late, "unsent", (json_int_t)r->unsent,
			"unfinished", (json_int_t)r->unfinished, "intended", (json_int_t)r->intended));
	else if (doc)
		json_object_set_new(doc, "unfinished", json_integer((json_int_t)r->unfinished));
	return doc;
oom:
	json_decref(reqs);
	json_decref(defs);
	json_decref(series);
	json_decref(ths);
	return NULL;
}

/* ---- CSV ------------------------------------------------------------------------- */

int rs_lt_report_csv(FILE *f, const struct rs_lt_result *r)
{
	fprintf(f, "second,requests,errors,rps,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,mean_ms,users\n");
	for (size_t i = 0; i < r->nseconds; i++) {
		const struct rs_lt_second *s = &r->seconds[i];
		fprintf(f, "%zu,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%u\n", i,
			(unsigned long long)s->requests, (unsigned long long)s->errors,
			(unsigned long long)s->requests, (double)s->p50_us / 1e3,
			(double)s->p90_us / 1e3, (double)s->p95_us / 1e3, (double)s->p99_us / 1e3,
			(double)s->max_us / 1e3, s->mean_us / 1e3, s->users);
	}
	return ferror(f) ? -1 : 0;
}

/* ---- HTML ------------------------------------------------------------------------ */

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* A round step for an axis from 0 to max with about 5 ticks. */
static double nice_step(double max)
{
	double raw = max / 5, mag, n;

	if (!(raw > 0) || !isfinite(raw))
		return 1;
	mag = pow(10, floor(log10(raw)));
	n = raw / mag;
	return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

#define CW 760          /* chart size */
#define CH 240
#define ML 64           /* margins */
#define MR 16
#define MT 16
#define MB 36

struct series {
	const char *label, *color;
	double *y;
};

/* A line chart of the per-second series: x is the second, y from 0. */
static void line_chart(FILE *f, const char *title, const char *unit, size_t n,
		       const struct series *s, int ns)
{
	double ymax = 0;

	for (int k = 0; k < ns; k++)
		for (size_t i = 0; i < n; i++)
			ymax = s[k].y[i] > ymax ? s[k].y[i] : ymax;
	double step = nice_step(ymax > 0 ? ymax : 1);
	double top = ceil((ymax > 0 ? ymax : 1) / step) * step;
	double pw = CW - ML - MR, ph = CH - MT - MB;
	double xs = n > 1 ? pw / (double)(n - 1) : 0;

	fprintf(f, "<h3>");
	esc(f, title);
	fprintf(f, "</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\">\n", CW, CH, CW, CH);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
		"stroke=\"#ccc\"/>\n", ML, MT, pw, ph);
	for (double t = 0; t <= top + step / 2; t += step) {
		double y = MT + ph - t / top * ph;
		fprintf(f, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" class=\"t\">%g</text>\n",
			ML, ML + pw, y, y, ML - 6, y + 4, t);
	}
	size_t xstep = n > 10 ? (n + 9) / 10 : 1;
	for (size_t i = 0; i < n; i += xstep)
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"t\">%zus</text>\n",
			ML + (double)i * xs, CH - MB + 16, i);
	fprintf(f, "<text x=\"12\" y=\"%d\" class=\"t\" transform=\"rotate(-90 12 %d)\" "
		"text-anchor=\"middle\">", MT + CH / 2 - MB / 2, MT + CH / 2 - MB / 2);
	esc(f, unit);
	fprintf(f, "</text>\n");
	for (int k = 0; k < ns; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s[k].color);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%.1f,%.1f ", ML + (double)i * xs, MT + ph - s[k].y[i] / top * ph);
		fprintf(f, "\"/>\n<text x=\"%d\" y=\"%d\" class=\"t\" fill=\"%s\">", ML + 10 + k * 110,
			CH - 6, s[k].color);
		esc(f, s[k].label);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
}

/* The latency histogram: the log-linear buckets summed into log-spaced
 * bins between the smallest and largest value seen. */
static void histogram_chart(FILE *f, const struct rs_hist *h)
{
	enum { BINS = 40 };
	uint64_t lo = rs_hist_min(h), hi = rs_hist_max(h), bins[BINS] = { 0 }, top = 0;
	double pw = CW - ML - MR, ph = CH - MT - MB;

	fprintf(f, "<h3>Latency histogram</h3>\n");
	if (!rs_hist_count(h)) {
		fprintf(f, "<p>No requests.</p>\n");
		return;
	}
	lo = lo ? lo : 1;
	hi = hi > lo ? hi : lo + 1;
	double llo = log((double)lo), lspan = log((double)hi + 1) - llo;
	for (int i = 0; i < RS_HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		if (!c)
			continue;
		double mid = ((double)rs_hist_bucket_low(i) + (double)rs_hist_bucket_high(i)) / 2;
		int b = mid <= (double)lo ? 0 : (int)((log(mid) - llo) / lspan * BINS);
		b = b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
		bins[b] += c;
	}
	for (int b = 0; b < BINS; b++)
		top = bins[b] > top ? bins[b] : top;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\">\n", CW, CH, CW, CH);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
		"stroke=\"#ccc\"/>\n", ML, MT, pw, ph);
	double bw = pw / BINS;
	for (int b = 0; b < BINS; b++) {
		double bh = top ? (double)bins[b] / (double)top * ph : 0;
		if (bins[b])
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				"fill=\"#4a7bd0\"><title>%llu</title></rect>\n", ML + b * bw + 1,
				MT + ph - bh, bw - 2, bh, (unsigned long long)bins[b]);
	}
	for (int b = 0; b <= BINS; b += 8) {
		char lab[16];
		fmt_us(exp(llo + lspan * b / BINS), lab, sizeof(lab));
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"t\">%s</text>\n",
			ML + b * bw, CH - MB + 16, lab);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"t\">%llu</text>\n",
		ML - 6, MT + 10, (unsigned long long)top);
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"t\">latency (log scale); bar height: "
		"requests</text>\n</svg>\n", ML + 10, CH - 6);
}

static void errors_chart(FILE *f, const struct rs_lt_stats *s)
{
	uint64_t top = 0;

	fprintf(f, "<h3>Errors</h3>\n");
	if (!rs_lt_stats_errors(s)) {
		fprintf(f, "<p>No errors.</p>\n");
		return;
	}
	for (int k = 0; k < RS_LT_NERRORS; k++)
		top = s->errors[k] > top ? s->errors[k] : top;
	int hgt = RS_LT_NERRORS * 28 + 10;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\">\n", CW, hgt, CW, hgt);
	for (int k = 0; k < RS_LT_NERRORS; k++) {
		double w = top ? (double)s->errors[k] / (double)top * (CW - 220) : 0;
		fprintf(f, "<text x=\"90\" y=\"%d\" text-anchor=\"end\" class=\"t\">%s</text>"
			"<rect x=\"100\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"#d04a4a\"/>"
			"<text x=\"%.1f\" y=\"%d\" class=\"t\">%llu</text>\n", 20 + k * 28,
			error_names[k], 6 + k * 28, w, 106 + w, 20 + k * 28,
			(unsigned long long)s->errors[k]);
	}
	fprintf(f, "</svg>\n");
}

static void html_row(FILE *f, const char *name, const struct rs_lt_result *r,
		     const struct rs_lt_stats *s)
{
	char v[8][16];

	latency_cells(s, v);
	fprintf(f, "<tr><td>");
	esc(f, name);
	fprintf(f, "</td><td>%llu</td><td>%llu</td><td>%.1f</td>", (unsigned long long)s->requests,
		(unsigned long long)rs_lt_stats_errors(s), stats_rps(r, s));
	for (int i = 0; i < 8; i++)
		fprintf(f, "<td>%s</td>", v[i]);
	fprintf(f, "</tr>\n");
}

int rs_lt_report_html(FILE *f, const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
		      const struct rs_lt_verdict *v, unsigned nv)
{
	const struct rs_lt_settings *st = &r->settings;
	char model[160], bound[96], started[40];
	size_t n = r->nseconds;
	double *buf = calloc(n ? n * 5 : 1, sizeof(double));

	if (!buf)
		return -1;
	describe_model(st, model, sizeof(model));
	describe_bound(st, bound, sizeof(bound));
	rs_format_utc(r->started_ms, started, sizeof(started));
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<title>resyncctl loadtest %s</title>\n<style>\n"
		"body{font-family:sans-serif;margin:2em;color:#222}"
		"table{border-collapse:collapse;margin:1em 0}"
		"td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
		"td:first-child,th:first-child{text-align:left}"
		".pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}"
		".t{font-size:11px;fill:#555}.warn{color:#b26a00}\n"
		"</style>\n</head>\n<body>\n<h1>Load test, %s</h1>\n", started, started);
	fprintf(f, "<h2>Parameters</h2>\n<table>\n<tr><th>model</th><td>");
	esc(f, model);
	fprintf(f, "</td></tr>\n<tr><th>bound</th><td>%s</td></tr>\n<tr><th>threads</th><td>%u"
		"</td></tr>\n<tr><th>timeout</th><td>%lld ms</td></tr>\n", bound, st->threads,
		(long long)st->timeout_ms);
	if (sc->base_url) {
		fprintf(f, "<tr><th>target</th><td>");
		esc(f, sc->base_url);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "<tr><th>ran</th><td>%.2f s%s</td></tr>\n</table>\n", seconds(r),
		r->interrupted ? " (interrupted)" : "");
	fprintf(f, "<table>\n<tr><th>request</th><th>method</th><th>path</th><th>weight</th></tr>\n");
	for (unsigned i = 0; i < sc->nrequests; i++) {
		fprintf(f, "<tr><td>");
		esc(f, sc->requests[i].name);
		fprintf(f, "</td><td>");
		esc(f, sc->requests[i].method);
		fprintf(f, "</td><td>");
		esc(f, sc->requests[i].path.text);
		fprintf(f, "</td><td>%u</td></tr>\n", sc->requests[i].weight);
	}
	fprintf(f, "</table>\n");
	if (nv) {
		fprintf(f, "<h2>Thresholds</h2>\n<table>\n");
		for (unsigned i = 0; i < nv; i++) {
			char a[48];
			fmt_actual(&v[i], a, sizeof(a));
			fprintf(f, "<tr><td class=\"%s\">%s</td><td>", v[i].pass ? "pass" : "fail",
				v[i].pass ? "PASS" : "FAIL");
			esc(f, v[i].threshold->text);
			fprintf(f, "</td><td>%s</td></tr>\n", a);
		}
		fprintf(f, "</table>\n");
	}
	fprintf(f, "<h2>Summary</h2>\n<table>\n<tr><th>name</th><th>requests</th><th>errors</th>"
		"<th>req/s</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th>"
		"<th>max</th><th>mean</th><th>stdev</th></tr>\n");
	if (sc->nrequests > 1)
		for (unsigned i = 0; i < sc->nrequests && i < r->nrequests; i++)
			html_row(f, sc->requests[i].name, r, &r->per_request[i]);
	html_row(f, "total", r, &r->total);
	fprintf(f, "</table>\n");
	if (st->model == RS_LT_OPEN) {
		fprintf(f, "<p>Latency is measured from each request's intended send time "
			"(coordinated omission corrected). Schedule: %llu intended, %llu late, "
			"%llu unsent, %llu unfinished.</p>\n", (unsigned long long)r->intended,
			(unsigned long long)r->late, (unsigned long long)r->unsent,
			(unsigned long long)r->unfinished);
		if (r->intended && (r->late + r->unsent) * 100 > r->intended)
			fprintf(f, "<p class=\"warn\">The generator could not keep the rate.</p>\n");
	}

	fprintf(f, "<h2>Over time</h2>\n");
	if (!n) {
		fprintf(f, "<p>The run was shorter than a second: no series.</p>\n");
	} else {
		double *rps = buf, *err = buf + n, *p50 = buf + 2 * n, *p95 = buf + 3 * n,
			*p99 = buf + 4 * n;
		for (size_t i = 0; i < n; i++) {
			rps[i] = (double)r->seconds[i].requests;
			err[i] = (double)r->seconds[i].errors;
			p50[i] = (double)r->seconds[i].p50_us / 1e3;
			p95[i] = (double)r->seconds[i].p95_us / 1e3;
			p99[i] = (double)r->seconds[i].p99_us / 1e3;
		}
		struct series thr[] = { { "requests/s", "#4a7bd0", rps }, { "errors/s", "#d04a4a", err } };
		struct series lat[] = { { "p50", "#1a7f37", p50 }, { "p95", "#e0a000", p95 },
					{ "p99", "#d04a4a", p99 } };
		line_chart(f, "Throughput", "per second", n, thr, 2);
		line_chart(f, "Latency percentiles", "ms", n, lat, 3);
	}
	histogram_chart(f, &r->total.latency);
	errors_chart(f, &r->total);
	fprintf(f, "</body>\n</html>\n");
	free(buf);
	return ferror(f) ? -1 : 0;
}
