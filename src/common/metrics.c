/*
 * metrics: per-route request counters and latency histograms, rendered as
 * Prometheus text.  Statuses are kept in a fixed table of the codes the
 * responder answers with, so a counter is one array slot and recording
 * needs no lock and no allocation.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "util.h"

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH",
				       "DELETE", "OPTIONS", "OTHER" };
#define NMETHODS RS_ARRAY_SIZE(methods)

static const int statuses[] = { 200, 201, 202, 204, 304, 400, 401, 403, 404,
				405, 409, 413, 415, 422, 429, 500, 502, 503,
				504 };
#define NSTATUS RS_ARRAY_SIZE(statuses)
/* then one slot per class, 1xx..5xx, for anything else */
#define NSLOTS (NSTATUS + 5)

/* Bucket bounds in microseconds: Prometheus' defaults plus 1 ms and 2.5 ms,
 * since a cached answer takes well under 5 ms. */
static const uint64_t bounds_us[] = { 1000, 2500, 5000, 10000, 25000, 50000,
				      100000, 250000, 500000, 1000000,
				      2500000, 5000000, 10000000 };

struct route_metrics {
	_Atomic uint64_t count[NMETHODS][NSLOTS];
	struct rs_hist latency;
};

struct rs_metrics {
	const char *const *names;
	size_t nroutes;              /* + 1 for "unmatched" */
	_Atomic int64_t in_flight;
	struct route_metrics *r;
};

struct rs_metrics *rs_metrics_new(const char *const *routes, size_t nroutes,
				  struct rs_err *err)
{
	struct rs_metrics *m = calloc(1, sizeof(*m));
	if (m)
		m->r = calloc(nroutes + 1, sizeof(*m->r));
	if (!m || !m->r) {
		free(m);
		rs_err_set(err, "out of memory");
		return NULL;
	}
	m->names = routes;
	m->nroutes = nroutes;
	for (size_t i = 0; i <= nroutes; i++)
		rs_hist_init(&m->r[i].latency);
	return m;
}

void rs_metrics_free(struct rs_metrics *m)
{
	if (!m)
		return;
	free(m->r);
	free(m);
}

static size_t method_slot(const char *method)
{
	for (size_t i = 0; method && i + 1 < NMETHODS; i++)
		if (strcmp(methods[i], method) == 0)
			return i;
	return NMETHODS - 1;
}

static size_t status_slot(int status)
{
	for (size_t i = 0; i < NSTATUS; i++)
		if (statuses[i] == status)
			return i;
	int cls = status / 100;
	if (cls < 1 || cls > 5)
		cls = 5;
	return NSTATUS + (size_t)(cls - 1);
}

void rs_metrics_observe(struct rs_metrics *m, size_t route, const char *method,
			int status, uint64_t duration_us)
{
	if (route > m->nroutes)
		route = m->nroutes;
	struct route_metrics *r = &m->r[route];
	atomic_fetch_add_explicit(&r->count[method_slot(method)][status_slot(status)],
				  1, memory_order_relaxed);
	rs_hist_record(&r->latency, duration_us);
}

void rs_metrics_in_flight(struct rs_metrics *m, int delta)
{
	atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

uint64_t rs_metrics_route_count(const struct rs_metrics *m, size_t route)
{
	if (route > m->nroutes)
		route = m->nroutes;
	return rs_hist_count(&m->r[route].latency);
}

static const char *route_name(const struct rs_metrics *m, size_t i)
{
	return i < m->nroutes ? m->names[i] : "unmatched";
}

static int put_header(struct rs_buf *out, const char *name, const char *type,
		      const char *help)
{
	return rs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			     type);
}

int rs_metrics_render(const struct rs_metrics *m, struct rs_buf *out)
{
	int rc = put_header(out, "resync_http_requests_total", "counter",
			    "HTTP requests answered, by route, method and status");
	for (size_t i = 0; i <= m->nroutes && rc == 0; i++)
		for (size_t j = 0; j < NMETHODS && rc == 0; j++)
			for (size_t k = 0; k < NSLOTS && rc == 0; k++) {
				uint64_t n = atomic_load_explicit(&m->r[i].count[j][k],
								  memory_order_relaxed);
				if (n == 0)
					continue;
				char st[8];
				if (k < NSTATUS)
					snprintf(st, sizeof(st), "%d", statuses[k]);
				else
					snprintf(st, sizeof(st), "%zuxx", k - NSTATUS + 1);
				rc = rs_buf_printf(out,
					"resync_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
					route_name(m, i), methods[j], st,
					(unsigned long long)n);
			}
	if (rc == 0)
		rc = put_header(out, "resync_http_request_duration_seconds",
				"histogram", "time from request start to answer, by route");
	for (size_t i = 0; i <= m->nroutes && rc == 0; i++) {
		const struct rs_hist *h = &m->r[i].latency;
		uint64_t total = rs_hist_count(h);
		if (total == 0)
			continue;
		const char *name = route_name(m, i);
		for (size_t b = 0; b < RS_ARRAY_SIZE(bounds_us) && rc == 0; b++)
			rc = rs_buf_printf(out,
				"resync_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				name, (double)bounds_us[b] / 1e6,
				(unsigned long long)rs_hist_count_le(h, bounds_us[b]));
		if (rc == 0)
			rc = rs_buf_printf(out,
				"resync_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
				"resync_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
				"resync_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
				name, (unsigned long long)total, name,
				(double)atomic_load_explicit(&h->sum, memory_order_relaxed) / 1e6,
				name, (unsigned long long)total);
	}
	if (rc == 0)
		rc = rs_prom_sample(out, "resync_http_requests_in_flight", "gauge",
				    "requests being answered now", NULL,
				    (double)atomic_load_explicit(&m->in_flight,
								 memory_order_relaxed));
	return rc;
}

int rs_prom_sample(struct rs_buf *out, const char *name, const char *type,
		   const char *help, const char *labels, double value)
{
	if (put_header(out, name, type, help) < 0)
		return -1;
	if (labels)
		return rs_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
	return rs_buf_printf(out, "%s %.17g\n", name, value);
}
