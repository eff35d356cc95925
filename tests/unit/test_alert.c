/*
 * test_alert: the incident notifier against an in-process HTTP receiver (a
 * thread on 127.0.0.1, port 0) that records each request and answers 200,
 * answers 500, or stalls.  Covers the generic and Slack payloads, dedup
 * and its repeat count, resolve, the rate limit, the retry, transport
 * errors, a stalled webhook (fire stays fast, free stays bounded), a full
 * queue, option checks, the URL's secrets kept out of errors, and fire
 * from several threads.
 *
 * Asynchronous effects are waited for by polling with a deadline; the one
 * deliberate wait is for the repeat interval to pass.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "util.h"

#include "tap.h"

#define WAIT_MS 10000              /* generous: valgrind is slow */
#define POLL_MS 5
#define MAX_BODIES 64
#define CONN_BUF 65536
#define SECRET "SECRETTOKEN"
#define HOOK_PATH "/services/T000/B000/" SECRET
#define SOURCE "resync-fcgi@test:1"
#define FAST_FIRE_US 50000         /* a fire call must take less */
#define STALL_TIMEOUT_MS 300
#define FREE_SLACK_MS 400          /* free may take timeout_ms plus this */
#define REPEAT_MS 300
#define BURST 100
#define THREADS 4
#define FIRES_PER_THREAD 500

/* ---- time ---------------------------------------------------------------------- */

static void msleep(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- the receiver ---------------------------------------------------------------- */

enum mode { ANSWER_200, ANSWER_500, STALL };

struct receiver {
	int lfd, port;
	char url[128];
	pthread_t thread;
	pthread_mutex_t lock;          /* guards everything below */
	enum mode mode;
	bool stop;
	unsigned requests, connections;
	char *body[MAX_BODIES];
	char request_line[256], content_type[128];
};

static bool stopping(struct receiver *r)
{
	bool s;

	pthread_mutex_lock(&r->lock);
	s = r->stop;
	pthread_mutex_unlock(&r->lock);
	return s;
}

/* Read what is there, waiting in short polls so stop is noticed; <= 0 on
 * EOF, error or stop. */
static ssize_t read_some(struct receiver *r, int fd, char *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (!stopping(r)) {
		int rc = poll(&pfd, 1, 20);

		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc > 0)
			return read(fd, p, n);
	}
	return -1;
}

/* Header value of name in the NUL-terminated header block, copied. */
static void header(const char *head, const char *name, char *out, size_t n)
{
	const char *p = strcasestr(head, name), *end;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	while (*p == ' ')
		p++;
	end = strstr(p, "\r\n");
	snprintf(out, n, "%.*s", (int)(end ? end - p : (ptrdiff_t)strlen(p)), p);
}

/* Requests on one keep-alive connection until the client closes it. */
static void serve(struct receiver *r, int fd, char *buf)
{
	size_t len = 0;

	for (;;) {
		char *hend, head[4096], cl[32], junk[256];
		size_t hlen, clen;
		ssize_t n;
		enum mode mode;
		const char *answer;

		while (!(hend = memmem(buf, len, "\r\n\r\n", 4))) {
			if (len == CONN_BUF ||
			    (n = read_some(r, fd, buf + len, CONN_BUF - len)) <= 0)
				return;
			len += (size_t)n;
		}
		hlen = (size_t)(hend + 4 - buf);
		snprintf(head, sizeof(head), "%.*s", (int)hlen, buf);
		header(head, "\r\nContent-Length:", cl, sizeof(cl));
		clen = strtoul(cl, NULL, 10);
		if (hlen + clen > CONN_BUF)
			return;
		while (len < hlen + clen) {
			if ((n = read_some(r, fd, buf + len, CONN_BUF - len)) <= 0)
				return;
			len += (size_t)n;
		}
		pthread_mutex_lock(&r->lock);
		if (r->requests < MAX_BODIES)
			r->body[r->requests] = strndup(buf + hlen, clen);
		r->requests++;
		header(head, "", r->request_line, sizeof(r->request_line));
		header(head, "\r\nContent-Type:", r->content_type, sizeof(r->content_type));
		mode = r->mode;
		pthread_mutex_unlock(&r->lock);
		memmove(buf, buf + hlen + clen, len - hlen - clen);
		len -= hlen + clen;
		if (mode == STALL) {
			/* say nothing until the client gives up and closes */
			while (read_some(r, fd, junk, sizeof(junk)) > 0)
				;
			return;
		}
		answer = mode == ANSWER_500 ?
			"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n" :
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		if (send(fd, answer, strlen(answer), MSG_NOSIGNAL) < 0)
			return;
	}
}

static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	struct pollfd pfd = { .fd = r->lfd, .events = POLLIN };
	char *buf = malloc(CONN_BUF);

	while (buf && !stopping(r)) {
		int fd;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		fd = accept(r->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&r->lock);
		r->connections++;
		pthread_mutex_unlock(&r->lock);
		serve(r, fd, buf);
		close(fd);
	}
	free(buf);
	return NULL;
}

/* A listening socket on 127.0.0.1, port 0; its port, or -1. */
static int listen_any(int *fd_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*fd_out = fd;
	return ntohs(sa.sin_port);
}

static void recv_start(struct receiver *r, enum mode mode)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	pthread_mutex_init(&r->lock, NULL);
	r->port = listen_any(&r->lfd);
	if (r->port < 0 || pthread_create(&r->thread, NULL, receiver_main, r) != 0) {
		printf("Bail out! cannot start the receiver: %s\n", strerror(errno));
		exit(2);
	}
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d" HOOK_PATH, r->port);
}

static void recv_stop(struct receiver *r)
{
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	close(r->lfd);
	for (unsigned i = 0; i < MAX_BODIES; i++)
		free(r->body[i]);
	pthread_mutex_destroy(&r->lock);
}

static unsigned recv_requests(struct receiver *r)
{
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = r->requests;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static unsigned recv_connections(struct receiver *r)
{
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = r->connections;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Request i's body as JSON (caller decrefs), or NULL with a diagnostic. */
static json_t *recv_json(struct receiver *r, unsigned i)
{
	json_error_t je;
	json_t *j = NULL;

	pthread_mutex_lock(&r->lock);
	if (i < r->requests && i < MAX_BODIES && r->body[i])
		j = json_loads(r->body[i], 0, &je);
	if (!j)
		printf("#   request %u: no JSON body (%s)\n", i,
		       i < MAX_BODIES && r->body[i] ? r->body[i] : "none");
	pthread_mutex_unlock(&r->lock);
	return j;
}

static bool wait_requests(struct receiver *r, unsigned n)
{
	int64_t end = rs_monotonic_ms() + WAIT_MS;

	while (recv_requests(r) < n && rs_monotonic_ms() < end)
		msleep(POLL_MS);
	return recv_requests(r) >= n;
}

/* ---- alerter helpers --------------------------------------------------------- */

static struct rs_alert_options options(const struct receiver *r)
{
	struct rs_alert_options o;

	rs_alert_options_default(&o);
	o.url = r->url;
	o.source = SOURCE;
	o.timeout_ms = 2000;
	o.repeat_interval_ms = REPEAT_MS;
	o.max_per_minute = 0;
	o.queue_size = 16;
	return o;
}

static struct rs_alerter *mk(const struct rs_alert_options *o)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_alerter *a = NULL;

	if (rs_alerter_new(&a, o, &err) < 0) {
		printf("Bail out! rs_alerter_new: %s\n", err.msg);
		exit(2);
	}
	return a;
}

/* Wait until everything queued has been sent or given up; the stats. */
static struct rs_alert_stats settle(struct rs_alerter *a)
{
	int64_t end = rs_monotonic_ms() + WAIT_MS;
	struct rs_alert_stats st;

	for (;;) {
		rs_alert_stats(a, &st);
		if ((st.pending == 0 && st.sent + st.failed == st.queued) ||
		    rs_monotonic_ms() >= end)
			return st;
		msleep(POLL_MS);
	}
}

static json_t *details(void)
{
	return json_pack("{s:s, s:i, s:b}", "breaker", "hwa", "failures", 5, "open", 1);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_options(void)
{
	struct receiver r = { .url = "http://127.0.0.1:9" HOOK_PATH };
	struct rs_alert_options o = options(&r);
	struct rs_err err = RS_ERR_INIT;
	struct rs_alerter *a = NULL;
	enum rs_alert_format f;

	o.url = NULL;
	ok(rs_alerter_new(&a, &o, &err) < 0 && !a, "options: no url refused");
	has_str(err.msg, "no webhook url", "options: no url named");
	o.url = "";
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: empty url refused");
	o.url = "ftp://user:pw" SECRET "@files.example.com/hook/" SECRET;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: ftp:// refused");
	has_str(err.msg, "files.example.com", "options: ftp error names the host");
	ok(!strstr(err.msg, SECRET), "options: ftp error keeps the secrets out");
	o.url = "http://";
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: url without host refused");
	o.url = "hooks.example.com/" SECRET;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: url without scheme refused");
	ok(!strstr(err.msg, SECRET), "options: bad url not echoed");
	o.url = r.url;
	o.queue_size = 0;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: zero queue refused");
	has_str(err.msg, "queue size", "options: zero queue named");
	o.queue_size = RS_ALERT_QUEUE_MAX + 1;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: huge queue refused");
	o.queue_size = 4;
	o.timeout_ms = 0;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: zero timeout refused");
	o.timeout_ms = 1000;
	o.max_per_minute = RS_ALERT_PER_MINUTE_MAX + 1;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: huge max_per_minute refused");
	o.max_per_minute = 0;
	o.repeat_interval_ms = -1;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: negative repeat interval refused");
	o.repeat_interval_ms = 0;
	o.format = (enum rs_alert_format)7;
	ok(rs_alerter_new(&a, &o, &err) < 0, "options: unknown format refused");
	o.format = RS_ALERT_SLACK;
	o.url = "HTTPS://hooks.example.com/" SECRET;
	ok(rs_alerter_new(&a, &o, &err) == 0 && a, "options: HTTPS:// accepted");
	rs_alerter_free(a);

	is_str(rs_alert_format_name(RS_ALERT_SLACK), "slack", "format name slack");
	ok(rs_alert_format_parse("generic", &f) == 0 && f == RS_ALERT_GENERIC,
	   "format parse generic");
	ok(rs_alert_format_parse("Slack", &f) < 0, "format parse is exact");

	/* alerts switched off: every call accepts NULL */
	{
		struct rs_alert_stats st;

		rs_alert_fire(NULL, "x", "info", "y", NULL);
		rs_alert_resolve(NULL, "x", NULL);
		rs_alert_stats(NULL, &st);
		rs_alerter_free(NULL);
		ok(st.fired == 0 && st.last_error[0] == '\0', "a NULL alerter does nothing");
	}
}

static void test_one_fire(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	json_t *d = details(), *b;
	const char *t;

	recv_start(&r, ANSWER_200);
	o = options(&r);
	a = mk(&o);
	rs_alert_fire(a, "breaker_open:hwa", "critical", "breaker hwa opened", d);
	json_decref(d);            /* borrowed: the alerter has its own copy */
	st = settle(a);
	is_int(st.fired, 1, "one fire: fired 1");
	is_int(st.sent, 1, "one fire: sent 1");
	is_int(recv_requests(&r), 1, "one fire: exactly one POST");
	is_str(r.request_line, "POST " HOOK_PATH " HTTP/1.1", "one fire: POST to the path");
	is_str(r.content_type, "application/json", "one fire: Content-Type");
	b = recv_json(&r, 0);
	is_str(jstr(b, "status"), "firing", "one fire: status firing");
	is_str(jstr(b, "name"), "breaker_open:hwa", "one fire: name");
	is_str(jstr(b, "severity"), "critical", "one fire: severity");
	is_str(jstr(b, "summary"), "breaker hwa opened", "one fire: summary");
	is_str(jstr(b, "source"), SOURCE, "one fire: source");
	is_int(jint(b, "repeats"), 0, "one fire: repeats 0");
	t = jstr(b, "time");
	ok(t && strlen(t) == 20 && t[4] == '-' && t[10] == 'T' && t[19] == 'Z',
	   "one fire: time is RFC 3339 UTC");
	if (t)
		printf("#   time %s\n", t);
	is_int(jint(json_object_get(b, "details"), "failures"), 5, "one fire: details copied");
	is_str(jstr(json_object_get(b, "details"), "breaker"), "hwa", "one fire: details string");
	is_int(json_object_size(b), 8, "one fire: eight fields");
	json_decref(b);
	rs_alerter_free(a);
	recv_stop(&r);
}

static void test_dedup_resolve(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	int64_t t0, burst_ms, first_done;
	json_t *b;

	recv_start(&r, ANSWER_200);
	o = options(&r);
	a = mk(&o);
	t0 = rs_monotonic_ms();
	rs_alert_fire(a, "error_rate", "warning", "error rate 12%", NULL);
	first_done = rs_monotonic_ms();
	for (int i = 1; i < BURST; i++)
		rs_alert_fire(a, "error_rate", "warning", "error rate 12%", NULL);
	burst_ms = rs_monotonic_ms() - t0;
	ok(burst_ms < REPEAT_MS, "dedup: the burst fits in the repeat interval");
	printf("#   %d fires took %lld ms\n", BURST, (long long)burst_ms);
	rs_alert_stats(a, &st);
	is_int(st.deduplicated, BURST - 1, "dedup: 99 deduplicated at once");
	st = settle(a);
	is_int(st.queued, 1, "dedup: one notification queued");
	is_int(recv_requests(&r), 1, "dedup: exactly one POST for the burst");

	/* the one deliberate wait: for the repeat interval to pass */
	t0 = first_done + REPEAT_MS + 5 - rs_monotonic_ms();
	if (t0 > 0)
		msleep(t0);
	rs_alert_fire(a, "error_rate", "warning", "error rate 15%", NULL);
	st = settle(a);
	is_int(recv_requests(&r), 2, "dedup: after the interval one more POST");
	b = recv_json(&r, 1);
	is_str(jstr(b, "summary"), "error rate 15%", "dedup: the new summary");
	is_int(jint(b, "repeats"), BURST - 1, "dedup: repeats counts the folded fires");
	json_decref(b);

	rs_alert_resolve(a, "error_rate", "error rate back to 1%");
	st = settle(a);
	is_int(st.resolved, 1, "resolve: one resolved notice queued");
	is_int(recv_requests(&r), 3, "resolve: one POST");
	b = recv_json(&r, 2);
	is_str(jstr(b, "status"), "resolved", "resolve: status resolved");
	is_str(jstr(b, "name"), "error_rate", "resolve: name");
	is_str(jstr(b, "severity"), "warning", "resolve: the incident's severity");
	is_str(jstr(b, "summary"), "error rate back to 1%", "resolve: summary");
	json_decref(b);

	/* nothing more to resolve: decided on the spot, nothing queued */
	rs_alert_resolve(a, "error_rate", NULL);
	rs_alert_resolve(a, "never_fired", NULL);
	rs_alert_stats(a, &st);
	is_int(st.queued, 3, "resolve twice or unfired: nothing queued");
	is_int(st.pending, 0, "resolve twice or unfired: nothing pending");

	/* a new incident after resolve is sent at once, inside the interval */
	rs_alert_fire(a, "error_rate", "critical", "error rate 40%", NULL);
	st = settle(a);
	is_int(recv_requests(&r), 4, "refire after resolve: sent at once");
	b = recv_json(&r, 3);
	is_int(jint(b, "repeats"), 0, "refire after resolve: repeats 0");
	json_decref(b);
	is_int(st.sent, 4, "dedup: four sent");
	is_int(st.fired, BURST + 2, "dedup: every fire counted");
	is_int(recv_connections(&r), 1, "one kept-alive connection for every POST");
	rs_alerter_free(a);
	recv_stop(&r);
}

static void test_slack(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	json_t *d = details(), *b, *blocks, *v;
	size_t i;
	bool field = false, name = false;

	recv_start(&r, ANSWER_200);
	o = options(&r);
	o.format = RS_ALERT_SLACK;
	a = mk(&o);
	rs_alert_fire(a, "cache_log", "critical", "log commits fail <db> & retry", d);
	json_decref(d);
	settle(a);
	b = recv_json(&r, 0);
	is_str(jstr(b, "text"),
	       "[FIRING] critical: log commits fail &lt;db&gt; &amp; retry (" SOURCE ")",
	       "slack: text, escaped");
	blocks = json_object_get(b, "blocks");
	ok(json_is_array(blocks) && json_array_size(blocks) == 3,
	   "slack: three blocks (headline, facts, details)");
	json_array_foreach(blocks, i, v) {
		json_t *f, *fields = json_object_get(v, "fields");
		size_t k;

		ok(!strcmp(jstr(v, "type") ? jstr(v, "type") : "", "section"),
		   "slack: a section block");
		json_array_foreach(fields, k, f) {
			const char *text = jstr(f, "text");

			field |= text && !strcmp(text, "*failures*\n5");
			name |= text && !strcmp(text, "*name*\ncache_log");
		}
	}
	ok(field, "slack: a detail as a field");
	ok(name, "slack: the name as a field");
	json_decref(b);
	rs_alert_resolve(a, "cache_log", "commits succeed again");
	settle(a);
	b = recv_json(&r, 1);
	is_str(jstr(b, "text"), "[RESOLVED] critical: commits succeed again (" SOURCE ")",
	       "slack: resolved text");
	json_decref(b);
	rs_alerter_free(a);
	recv_stop(&r);
}

static void test_rate_limit(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	char name[32];

	recv_start(&r, ANSWER_200);
	o = options(&r);
	o.max_per_minute = 3;
	a = mk(&o);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "incident_%d", i);
		rs_alert_fire(a, name, "warning", "something", NULL);
	}
	rs_alert_stats(a, &st);
	is_int(st.rate_limited, 2, "rate limit: 2 rate_limited");
	st = settle(a);
	is_int(st.sent, 3, "rate limit: 3 sent");
	is_int(recv_requests(&r), 3, "rate limit: 3 POSTs");
	/* a limited name never fired, so has nothing to resolve; a sent one
	 * is resolved although the budget is spent */
	rs_alert_resolve(a, "incident_4", NULL);
	rs_alert_resolve(a, "incident_0", NULL);
	st = settle(a);
	is_int(st.resolved, 1, "rate limit: only the sent one resolves");
	is_int(recv_requests(&r), 4, "rate limit: resolved notices are not limited");
	rs_alerter_free(a);
	recv_stop(&r);
}

static void test_retry(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;

	recv_start(&r, ANSWER_500);
	o = options(&r);
	a = mk(&o);
	rs_alert_fire(a, "persistence", "critical", "database degraded", NULL);
	st = settle(a);
	is_int(st.failed, 1, "500: failed counted once");
	is_int(st.retried, 1, "500: retried once");
	is_int(st.sent, 0, "500: nothing sent");
	is_int(recv_requests(&r), 2, "500: two POSTs seen");
	has_str(st.last_error, "HTTP 500", "500: last_error has the status");
	has_str(st.last_error, "127.0.0.1", "500: last_error names the host");
	ok(!strstr(st.last_error, SECRET), "500: last_error keeps the path out");
	ok(st.last_error_ms > 0, "500: last_error_ms set");
	printf("#   last_error: %s\n", st.last_error);
	rs_alerter_free(a);
	recv_stop(&r);
}

static void test_transport_error(void)
{
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	struct receiver r = { 0 };
	int fd, port = listen_any(&fd);

	/* a port nobody listens on: take one, then give it back */
	ok(port > 0, "refused: got a free port");
	close(fd);
	snprintf(r.url, sizeof(r.url), "http://user:pw%s@127.0.0.1:%d" HOOK_PATH, SECRET, port);
	o = options(&r);
	a = mk(&o);
	rs_alert_fire(a, "persistence", "critical", "database degraded", NULL);
	st = settle(a);
	is_int(st.failed, 1, "refused: failed counted");
	is_int(st.retried, 1, "refused: retried once");
	has_str(st.last_error, "POST to 127.0.0.1: ", "refused: last_error names the host");
	ok(!strstr(st.last_error, SECRET), "refused: no secret in last_error");
	printf("#   last_error: %s\n", st.last_error);
	rs_alerter_free(a);
}

static void test_stall_queue_full(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	int64_t slowest_us = 0, t, free_ms;
	char name[32];

	recv_start(&r, STALL);
	o = options(&r);
	o.timeout_ms = STALL_TIMEOUT_MS;
	o.queue_size = 2;
	a = mk(&o);
	rs_alert_fire(a, "latency_p95", "warning", "p95 2.5 s", NULL);
	ok(wait_requests(&r, 1), "stall: the sender is stuck in its POST");
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "stalled_%d", i);
		t = rs_monotonic_us();
		rs_alert_fire(a, name, "warning", "while stuck", NULL);
		t = rs_monotonic_us() - t;
		if (t > slowest_us)
			slowest_us = t;
	}
	ok(slowest_us < FAST_FIRE_US, "stall: fire returns at once while the sender is stuck");
	printf("#   slowest fire while stuck: %lld us\n", (long long)slowest_us);
	rs_alert_stats(a, &st);
	is_int(st.queued, 3, "queue full: the stuck one and 2 queued");
	is_int(st.dropped, 2, "queue full: 2 dropped");
	is_int(st.pending, 3, "queue full: 3 pending");
	t = rs_monotonic_ms();
	rs_alerter_free(a);
	free_ms = rs_monotonic_ms() - t;
	ok(free_ms <= STALL_TIMEOUT_MS + FREE_SLACK_MS,
	   "stall: free returns within about timeout_ms");
	printf("#   free took %lld ms (timeout %d ms)\n", (long long)free_ms, STALL_TIMEOUT_MS);
	recv_stop(&r);
}

static void test_odd_text(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;
	char longname[300];
	json_t *b;

	recv_start(&r, ANSWER_200);
	o = options(&r);
	a = mk(&o);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	rs_alert_fire(a, "bad_utf8", NULL, "caf\xe9 \xc3\xa9t\xc3\xa9\n", NULL);
	rs_alert_fire(a, longname, "info", "a long name", NULL);
	st = settle(a);
	is_int(st.sent, 2, "odd text: both sent");
	b = recv_json(&r, 0);
	is_str(jstr(b, "summary"), "caf? \xc3\xa9t\xc3\xa9?", "odd text: bad bytes replaced");
	is_str(jstr(b, "severity"), "warning", "odd text: default severity");
	json_decref(b);
	b = recv_json(&r, 1);
	is_int(jstr(b, "name") ? strlen(jstr(b, "name")) : 0, RS_ALERT_NAME_MAX - 1,
	       "odd text: a long name is cut");
	json_decref(b);
	/* the cut name still deduplicates and resolves */
	rs_alert_fire(a, longname, "info", "again", NULL);
	rs_alert_resolve(a, longname, NULL);
	st = settle(a);
	is_int(st.deduplicated, 1, "odd text: a long name deduplicates");
	is_int(st.resolved, 1, "odd text: a long name resolves");
	rs_alerter_free(a);
	recv_stop(&r);
}

struct worker {
	struct rs_alerter *a;
	int id;
	bool resolve;
};

static void *fire_many(void *arg)
{
	struct worker *w = arg;
	struct rs_alert_stats st;
	char name[32];

	for (int i = 0; i < FIRES_PER_THREAD; i++) {
		snprintf(name, sizeof(name), "n%d", w->resolve ? (w->id + i) % 8 : 0);
		rs_alert_fire(w->a, name, "warning", "concurrent", NULL);
		if (w->resolve && i % 7 == 0)
			rs_alert_resolve(w->a, name, NULL);
		if (i % 50 == 0)
			rs_alert_stats(w->a, &st);
	}
	return NULL;
}

static void run_threads(struct rs_alerter *a, bool resolve)
{
	pthread_t th[THREADS];
	struct worker w[THREADS];

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ a, i, resolve };
		pthread_create(&th[i], NULL, fire_many, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
}

static void test_threads(void)
{
	struct receiver r;
	struct rs_alert_options o;
	struct rs_alerter *a;
	struct rs_alert_stats st;

	recv_start(&r, ANSWER_200);
	o = options(&r);
	o.repeat_interval_ms = RS_MS_PER_HOUR;
	o.queue_size = RS_ALERT_QUEUE_MAX;
	a = mk(&o);
	run_threads(a, false);
	st = settle(a);
	is_int(st.queued, 1, "threads, one name: one notification");
	is_int(st.deduplicated, THREADS * FIRES_PER_THREAD - 1,
	       "threads, one name: the rest deduplicated");
	rs_alerter_free(a);

	a = mk(&o);
	run_threads(a, true);
	st = settle(a);
	is_int(st.fired, THREADS * FIRES_PER_THREAD, "threads: every fire counted");
	is_int(st.fired, st.queued - st.resolved + st.deduplicated + st.rate_limited + st.dropped,
	       "threads: each fire queued or counted once");
	ok(st.resolved > 0, "threads: some resolved");
	is_int(st.sent, st.queued, "threads: everything sent");
	is_int(recv_requests(&r), 1 + st.queued, "threads: every notification POSTed");
	rs_alerter_free(a);
	recv_stop(&r);
}

int main(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		printf("Bail out! curl_global_init failed\n");
		return 2;
	}
	test_options();
	test_one_fire();
	test_dedup_resolve();
	test_slack();
	test_rate_limit();
	test_retry();
	test_transport_error();
	test_stall_queue_full();
	test_odd_text();
	test_threads();
	curl_global_cleanup();
	return tap_done();
}
