/* The HTTP metrics and their Prometheus text: counters by route, method
 * and status, histogram buckets, and the bounded label set. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"
#include "tap.h"

static char *render(struct rs_metrics *m)
{
	struct rs_buf b;

	rs_buf_init(&b, 1 << 20);
	if (rs_metrics_render(m, &b) < 0) {
		rs_buf_free(&b);
		return NULL;
	}
	return rs_buf_detach(&b);
}

int main(void)
{
	static const char *const routes[] = { "/api/health", "/metrics" };
	struct rs_err err = RS_ERR_INIT;
	struct rs_metrics *m = rs_metrics_new(routes, 2, &err);
	char *text;

	ok(m != NULL, "new");
	rs_metrics_observe(m, 0, "GET", 200, 800);
	rs_metrics_observe(m, 0, "GET", 200, 3000);
	rs_metrics_observe(m, 0, "HEAD", 503, 20000);
	rs_metrics_observe(m, 1, "BREW", 418, 100);          /* odd method, odd status */
	rs_metrics_observe(m, 99, "GET", 404, 100);          /* out of range: unmatched */
	rs_metrics_in_flight(m, 1);
	is_int(rs_metrics_route_count(m, 0), 3, "route count");
	is_int(rs_metrics_route_count(m, 2), 1, "unmatched count");

	text = render(m);
	ok(text != NULL, "render");
	has_str(text, "# TYPE resync_http_requests_total counter\n", "counter type line");
	has_str(text, "resync_http_requests_total{route=\"/api/health\",method=\"GET\",status=\"200\"} 2\n",
		"GET 200 counted twice");
	has_str(text, "resync_http_requests_total{route=\"/api/health\",method=\"HEAD\",status=\"503\"} 1\n",
		"HEAD 503");
	has_str(text, "resync_http_requests_total{route=\"/metrics\",method=\"OTHER\",status=\"4xx\"} 1\n",
		"unknown method and status fold into OTHER and their class");
	has_str(text, "resync_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n",
		"an out-of-range route is unmatched");
	has_str(text, "resync_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"0.001\"} 1\n",
		"0.8 ms in the 1 ms bucket");
	has_str(text, "resync_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"0.005\"} 2\n",
		"3 ms in the 5 ms bucket, cumulative");
	has_str(text, "resync_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"+Inf\"} 3\n",
		"+Inf holds all");
	has_str(text, "resync_http_request_duration_seconds_count{route=\"/api/health\"} 3\n", "count");
	has_str(text, "resync_http_request_duration_seconds_sum{route=\"/api/health\"} 0.023800\n", "sum in seconds");
	has_str(text, "resync_http_requests_in_flight 1\n", "in flight");
	ok(strstr(text, "status=\"200\"} 0") == NULL, "zero counters are not printed");
	free(text);

	struct rs_buf b;
	rs_buf_init(&b, 1024);
	rs_prom_sample(&b, "x_total", "counter", "an x", "a=\"b\"", 3);
	is_str(rs_buf_str(&b), "# HELP x_total an x\n# TYPE x_total counter\nx_total{a=\"b\"} 3\n",
	       "one sample with labels");
	rs_buf_free(&b);
	rs_buf_init(&b, 16);
	ok(rs_metrics_render(m, &b) < 0, "a capped buffer fails the render, not overflows");
	rs_buf_free(&b);
	rs_metrics_free(m);
	return tap_done();
}
