/*
 * metrics: the HTTP request metrics of resync-fcgi and the Prometheus text
 * exposition format (version 0.0.4) they and the other figures are
 * written in.
 *
 * Requests are counted by route (the router's pattern, never the raw path,
 * so a scanner cannot grow the label set), method and status, and timed
 * per route in a histogram.  Recording is lock-free (relaxed atomics):
 * any thread may call rs_metrics_observe at any time.  Route names are
 * borrowed and must outlive the struct; route index `nroutes` is
 * "unmatched" (404s and 405s without a route).
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct rs_metrics;

struct rs_metrics *rs_metrics_new(const char *const *routes, size_t nroutes,
				  struct rs_err *err);
void rs_metrics_free(struct rs_metrics *m);

/* One finished request; an unknown method counts as "OTHER", a status
 * outside the tracked set as its class ("2xx" ... "5xx"). */
void rs_metrics_observe(struct rs_metrics *m, size_t route, const char *method,
			int status, uint64_t duration_us);
/* Requests running now: +1 / -1. */
void rs_metrics_in_flight(struct rs_metrics *m, int delta);

/* Requests counted so far with this route (all methods and statuses). */
uint64_t rs_metrics_route_count(const struct rs_metrics *m, size_t route);

/* Append resync_http_requests_total, resync_http_request_duration_seconds
 * and resync_http_requests_in_flight.  -1 when out cannot grow. */
int rs_metrics_render(const struct rs_metrics *m, struct rs_buf *out);

/* One sample with its HELP and TYPE lines; type is "counter" or "gauge";
 * labels is NULL or the inside of the braces (`name="x"`). */
int rs_prom_sample(struct rs_buf *out, const char *name, const char *type,
		   const char *help, const char *labels, double value);

#endif
