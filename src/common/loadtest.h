/*
 * loadtest: the engine of `resyncctl loadtest`, its scenario and its
 * report.
 *
 * A scenario is weighted requests against a base URL (struct rs_lt_scenario,
 * from --url options or a file: lt_scenario.c).  The engine (loadtest.c)
 * runs it with libcurl's multi interface, one multi handle per thread
 * (libcurl's connection cache cannot be shared between threads), either
 *
 *   closed: N users, started at spawn_rate per second, each sending its
 *           next request when the last one was answered (plus think time),
 *           as Locust does; or
 *   open:   requests at a fixed rate (ramped up over `ramp`), each due at
 *           its intended time; latency is measured from that time, so a
 *           stalled server shows in the percentiles instead of silently
 *           slowing the generator down (coordinated omission corrected, as
 *           wrk2 does).  The uncorrected latency (from the actual send) is
 *           kept beside it.
 *
 * Results (struct rs_lt_result) hold latency histograms (histogram.h,
 * microseconds) overall and per request name, errors by kind and a
 * per-second series; lt_report.c writes them as text, JSON, CSV and a
 * self-contained HTML page, and evaluates thresholds.
 *
 * Library code: errors are returned in err, never printed.
 */
#ifndef RS_LOADTEST_H
#define RS_LOADTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "histogram.h"

/* ---- the scenario ----------------------------------------------------------- */

#define RS_LT_MAX_REQUESTS 64      /* request definitions in one scenario */
#define RS_LT_MAX_HEADERS 16       /* headers of one request */
#define RS_LT_MAX_THRESHOLDS 32

/* A string that may hold ${NAME} references to the columns of the
 * variables file (rs_lt_expand). */
struct rs_lt_template {
	char *text;                /* as written; NULL: absent */
	bool has_vars;             /* holds a ${NAME}: expanded per request */
};

struct rs_lt_request {
	char *name;                /* for reports: "health"; default "METHOD path" */
	char *method;              /* "GET" */
	struct rs_lt_template path;   /* "/api/jobs/${job}", appended to base_url;
					 * or an absolute http(s) URL */
	struct rs_lt_template headers[RS_LT_MAX_HEADERS];   /* "X-API-Key: ..." */
	unsigned nheaders;
	struct rs_lt_template body;   /* text == NULL: no body */
	unsigned weight;           /* relative frequency, >= 1 */
	int expect_status;         /* 0: any 2xx or 3xx is a success */
	char *expect_body;         /* substring the body must hold, or NULL */
};

enum rs_lt_metric {
	RS_LT_P50, RS_LT_P90, RS_LT_P95, RS_LT_P99, RS_LT_P999,
	RS_LT_MAX, RS_LT_MEAN,               /* latency, microseconds */
	RS_LT_ERROR_RATE,                    /* percent of requests */
	RS_LT_ERRORS,                        /* a count */
	RS_LT_RPS,                           /* answered requests per second */
};
enum rs_lt_op { RS_LT_LT, RS_LT_LE, RS_LT_GT, RS_LT_GE };

struct rs_lt_threshold {
	char *text;                /* as given: "p95<200ms" */
	enum rs_lt_metric metric;
	enum rs_lt_op op;
	double value;              /* microseconds, percent, count or req/s */
	char *request;             /* only this request name ("health:p95<50ms"), or NULL */
};

enum rs_lt_model { RS_LT_CLOSED, RS_LT_OPEN };

/* How to run; a scenario file may set any of these, options override. */
struct rs_lt_settings {
	enum rs_lt_model model;
	unsigned users;            /* closed: virtual users */
	double spawn_rate;         /* closed: users started per second (0: all at once) */
	int64_t think_min_ms, think_max_ms;   /* closed: pause after each answer */
	double rate;               /* open: requests per second */
	int64_t ramp_ms;           /* open: from 0 to rate over this long */
	unsigned connections;      /* open: at most this many in flight */
	int64_t duration_ms;       /* 0: until `requests` are done */
	uint64_t requests;         /* 0: until `duration` is over */
	unsigned threads;          /* 0: one per CPU, at most 8 */
	int64_t timeout_ms;        /* per request */
	bool http2;                /* HTTP/2 when the server offers it (h2c or TLS ALPN) */
	bool insecure;             /* do not verify TLS certificates */
};

struct rs_lt_scenario {
	char *base_url;            /* "http://127.0.0.1:8080", or NULL (absolute paths) */
	struct rs_lt_request requests[RS_LT_MAX_REQUESTS];
	unsigned nrequests;
	struct rs_lt_threshold thresholds[RS_LT_MAX_THRESHOLDS];
	unsigned nthresholds;
	/* variables: a CSV file with a header line; request i of the run uses
	 * row i mod nrows */
	char *vars_file;
	char **var_names;          /* nvars column names */
	unsigned nvars;
	char ***var_rows;          /* nrows x nvars values */
	size_t nrows;
	struct rs_lt_settings settings;
	unsigned set_mask;         /* which settings the file set (RS_LT_SET_*) */
};

/* ---- the results --------------------------------------------------------------- */

enum rs_lt_error {
	RS_LT_ERR_CONNECT,         /* could not connect or resolve */
	RS_LT_ERR_TIMEOUT,         /* no complete answer within timeout */
	RS_LT_ERR_STATUS,          /* an unexpected status */
	RS_LT_ERR_BODY,            /* the body lacks expect_body */
	RS_LT_ERR_IO,              /* reset, malformed answer, anything else */
	RS_LT_NERRORS,
};
const char *rs_lt_error_name(enum rs_lt_error e);   /* "connect", "timeout", ... */

struct rs_lt_stats {
	uint64_t requests;         /* answered or failed */
	uint64_t errors[RS_LT_NERRORS];
	uint64_t bytes;            /* response bytes received */
	uint64_t http2;            /* answers that came over HTTP/2 */
	struct rs_hist latency;    /* corrected (open) or plain (closed), us, every request */
	struct rs_hist uncorrected;   /* open model: from the actual send */
};
uint64_t rs_lt_stats_errors(const struct rs_lt_stats *s);   /* sum of errors[] */

/* One second of the run, by completion time. */
struct rs_lt_second {
	uint64_t requests, errors;
	uint64_t p50_us, p90_us, p95_us, p99_us, max_us;
	double mean_us;
	unsigned users;            /* closed: users running at the end of it */
};

struct rs_lt_result {
	struct rs_lt_settings settings;    /* as run (threads resolved) */
	int64_t started_ms;                /* wall clock, for reports */
	int64_t elapsed_us;                /* from the first send to the end */
	bool interrupted;                  /* stopped by rs_lt_stop */
	struct rs_lt_stats total;
	struct rs_lt_stats *per_request;   /* nrequests, in scenario order */
	unsigned nrequests;
	struct rs_lt_second *seconds;      /* the series: whole seconds only */
	size_t nseconds;
	/* open model */
	uint64_t late;                     /* sent > RS_LT_LATE_US after their time */
	uint64_t unsent;                   /* due but never sent before the end */
	uint64_t unfinished;               /* in flight when the run ended */
	uint64_t intended;                 /* requests the schedule called for */
};
#define RS_LT_LATE_US 10000

void rs_lt_result_free(struct rs_lt_result *r);
double rs_lt_rps(const struct rs_lt_result *r);          /* answered per second */
double rs_lt_error_rate(const struct rs_lt_stats *s);    /* percent */

/* ---- scenarios (lt_scenario.c) ------------------------------------------------- */

/* Bits of rs_lt_scenario.set_mask: which settings a scenario file set. */
enum {
	RS_LT_SET_MODEL = 1 << 0, RS_LT_SET_USERS = 1 << 1, RS_LT_SET_SPAWN_RATE = 1 << 2,
	RS_LT_SET_THINK = 1 << 3, RS_LT_SET_RATE = 1 << 4, RS_LT_SET_RAMP = 1 << 5,
	RS_LT_SET_CONNECTIONS = 1 << 6, RS_LT_SET_DURATION = 1 << 7,
	RS_LT_SET_REQUESTS = 1 << 8, RS_LT_SET_THREADS = 1 << 9, RS_LT_SET_TIMEOUT = 1 << 10,
	RS_LT_SET_HTTP2 = 1 << 11, RS_LT_SET_INSECURE = 1 << 12,
};

/* Empty scenario, settings at their defaults: closed model, 10 users,
 * spawn_rate 0 (all at once), no think time, 64 connections, timeout 10 s,
 * threads 0, no duration and no request bound (the caller must give one). */
void rs_lt_scenario_init(struct rs_lt_scenario *sc);
void rs_lt_scenario_free(struct rs_lt_scenario *sc);

/* Read a scenario file, INI (resync.conf's syntax) or JSON (a file whose
 * first non-blank character is '{').  Adds its requests, thresholds and
 * settings to sc.  Errors name the file and line ("s.ini:12: [request
 * health] weight: ..."; JSON: jansson's line).  "-" reads stdin. */
int rs_lt_scenario_load(struct rs_lt_scenario *sc, const char *path, struct rs_err *err);
/* --url: one more request, GET of this absolute http(s) URL, weight 1. */
int rs_lt_scenario_add_url(struct rs_lt_scenario *sc, const char *url, struct rs_err *err);
/* -H "Name: value": added to every request (after the scenario's own). */
int rs_lt_scenario_add_header(struct rs_lt_scenario *sc, const char *header,
			      struct rs_err *err);
/* --threshold TEXT; see rs_lt_threshold_parse. */
int rs_lt_scenario_add_threshold(struct rs_lt_scenario *sc, const char *text,
				 struct rs_err *err);
/* --vars FILE (or the scenario's `variables`): CSV with a header line of
 * column names ([A-Za-z_][A-Za-z0-9_]*), RFC 4180 quoting, at least one
 * row, every row as many fields as the header. */
int rs_lt_scenario_load_vars(struct rs_lt_scenario *sc, const char *path, struct rs_err *err);
/* Once everything is added: at least one request; every ${NAME} is a
 * column of the variables file; every threshold's request name exists;
 * every URL (base_url + path, or an absolute path) is http(s). */
int rs_lt_scenario_check(const struct rs_lt_scenario *sc, struct rs_err *err);

/* t with ${NAME} replaced by row `row` (mod nrows) of the variables, into
 * out (a NUL-terminated string of *len bytes, reallocated as needed: the
 * caller owns *out).  -1 only when out of memory. */
int rs_lt_expand(const struct rs_lt_template *t, const struct rs_lt_scenario *sc,
		 size_t row, char **out, size_t *cap, size_t *len);

/* "p95<200ms", "p99.9<=1s", "mean<50ms", "max<2s" (units us, ms, s),
 * "error_rate<1%", "errors==0" is not accepted (use errors<1),
 * "rps>500", optionally prefixed by a request name and ':'
 * ("health:p95<20ms").  -1 with err saying what is wrong. */
int rs_lt_threshold_parse(const char *text, struct rs_lt_threshold *t, struct rs_err *err);

/* ---- reports (lt_report.c) ------------------------------------------------------ */

struct rs_lt_verdict {
	const struct rs_lt_threshold *threshold;
	double actual;             /* in the threshold's unit (us, %, count, req/s) */
	bool pass;
};
/* Evaluate every threshold of sc against r into v (sc->nthresholds
 * entries); returns how many failed.  Latency thresholds use the
 * corrected latency. */
unsigned rs_lt_thresholds_eval(const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
			       struct rs_lt_verdict *v);

/* The final summary for people: parameters, overall and per-request
 * table (requests, errors, rps, p50 p90 p95 p99 p99.9 max mean stdev),
 * errors by kind, the uncorrected figures and late/unsent counts in the
 * open model, and one line per threshold ("PASS p95<200ms (actual
 * 12.3ms)"). */
void rs_lt_report_text(FILE *f, const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
		       const struct rs_lt_verdict *v, unsigned nv);
/* Everything above as one JSON document (NULL when out of memory). */
json_t *rs_lt_report_json(const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
			  const struct rs_lt_verdict *v, unsigned nv);
/* The per-second series: a header line, then one line per second. */
int rs_lt_report_csv(FILE *f, const struct rs_lt_result *r);
/* One self-contained HTML page (no external resources): the parameters,
 * the summary tables, inline SVG charts of throughput and of p50/p95/p99
 * over time, the latency histogram and the error breakdown. */
int rs_lt_report_html(FILE *f, const struct rs_lt_scenario *sc, const struct rs_lt_result *r,
		      const struct rs_lt_verdict *v, unsigned nv);

/* ---- running ------------------------------------------------------------------- */

struct rs_lt_run;

/* What the caller sees once a second while the run goes on (from
 * rs_lt_wait's thread). */
struct rs_lt_progress {
	int64_t elapsed_ms;
	uint64_t requests, errors;
	double rps;                /* over the last full second */
	uint64_t p95_us;           /* over the last full second */
	unsigned users;
};

/* Check the scenario and settings, probe the target once (a connect
 * failure: -1 with err->code ECONNREFUSED and a message naming the URL),
 * start the threads.  The scenario is borrowed until rs_lt_finish. */
int rs_lt_start(struct rs_lt_run **out, const struct rs_lt_scenario *sc,
		const struct rs_lt_settings *st, struct rs_err *err);
/* Wait up to timeout_ms for the run to end; fills *p with the latest
 * second.  Returns 1 when the run is over, 0 on timeout. */
int rs_lt_wait(struct rs_lt_run *run, int64_t timeout_ms, struct rs_lt_progress *p);
/* Ask the run to stop early (async-signal-safe: only sets a flag). */
void rs_lt_stop(struct rs_lt_run *run);
/* Join the threads and hand over the results (owned by the caller, freed
 * with rs_lt_result_free). */
void rs_lt_finish(struct rs_lt_run *run, struct rs_lt_result *out);

#endif
