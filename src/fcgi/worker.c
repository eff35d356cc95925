/*
 * worker: the threads that accept FastCGI requests, the watchdog that
 * answers overdue ones with 504, and the one-shot CGI mode.
 *
 * request_timeout, as php-fpm's request_terminate_timeout but without
 * killing anything: a thread cannot be stopped safely, so the watchdog
 * writes the 504 on the request's stream and closes it (libfcgi sends
 * END_REQUEST on close), and the worker's own answer, when it comes, is
 * dropped.  Every write of an answer happens under the worker slot's lock
 * with `answered` checked, so exactly one answer is sent.  The worker
 * stays busy until its handler returns; the handlers bound their own waits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "util.h"

#define WATCHDOG_TICK_MS 50

extern char **environ;

static pthread_t watchdog_thread;
static atomic_bool watchdog_stop;
static bool watchdog_running;

/* Under the worker slot's lock.  FastCGI: no flush here, FCGX_Finish_r
 * sends what is left with END_REQUEST in one write (the watchdog no
 * longer touches a stream once `answered` is set). */
static void put_wire(struct req *r, const struct rs_buf *wire)
{
	if (r->fcgi) {
		FCGX_PutStr(wire->data, (int)wire->len, r->fcgi->out);
	} else {
		fwrite(wire->data, 1, wire->len, stdout);
		fflush(stdout);
	}
}

/* Write the 504 for r (under w->lock, not yet answered). */
static void answer_timeout(struct worker *w, struct req *r)
{
	struct req t;
	struct rs_buf wire;

	memset(&t, 0, sizeof(t));
	t.srv = r->srv;
	t.conf = r->conf;
	t.fcgi = r->fcgi;
	t.envp = r->envp;
	t.https = r->https;
	t.head = r->head;
	memcpy(t.id, r->id, sizeof(t.id));
	rs_buf_init(&t.out, 1u << 16);
	rs_buf_init(&t.headers, REQ_HEADERS_MAX);
	req_begin_headers(&t);
	req_error(&t, 504, "timeout", "the request took longer than %lld ms",
		  (long long)r->conf->request_timeout_ms);
	rs_buf_init(&wire, 1u << 20);
	if (req_render(&t, &wire) == 0)
		put_wire(&t, &wire);
	if (r->fcgi) {
		FCGX_FClose(r->fcgi->err);
		FCGX_FClose(r->fcgi->out);
		/* nginx without keep_conn finishes the response on EOF, not
		 * on END_REQUEST: end our side now, not when the worker is done */
		shutdown(r->fcgi->ipcFd, SHUT_WR);
	} else {
		close(STDOUT_FILENO);
	}
	rs_buf_free(&wire);
	req_free(&t);
	w->answered = true;
	atomic_fetch_add(&r->srv->timed_out, 1);
	RS_LOG(RS_LOG_WARNING, r->id, "request timeout: %s %s still running after %lld ms; answered 504",
	       r->method, r->path, (long long)r->conf->request_timeout_ms);
}

static void *watchdog_main(void *arg)
{
	struct server *s = arg;
	struct timespec tick = { 0, WATCHDOG_TICK_MS * 1000000L };

	while (!atomic_load(&watchdog_stop)) {
		nanosleep(&tick, NULL);
		int64_t now = rs_monotonic_us();
		for (unsigned i = 0; i < s->nthreads; i++) {
			struct worker *w = &s->workers[i];
			pthread_mutex_lock(&w->lock);
			struct req *r = w->cur;
			if (r && !w->answered &&
			    now - r->start_us >= r->conf->request_timeout_ms * 1000)
				answer_timeout(w, r);
			pthread_mutex_unlock(&w->lock);
		}
	}
	return NULL;
}

static void parse_target(struct req *r)
{
	const char *uri;
	size_t n;

	req_scan(r);
	uri = r->p.request_uri;
	r->method = r->p.request_method;
	if (!r->method || !*r->method)
		r->method = "GET";
	if (uri && *uri) {
		n = strcspn(uri, "?#");
		if (n >= sizeof(r->path))
			n = sizeof(r->path) - 1;
		memcpy(r->path, uri, n);
		r->path[n] = '\0';
	} else {
		const char *sn = req_param(r, "SCRIPT_NAME");
		const char *pi = req_param(r, "PATH_INFO");
		snprintf(r->path, sizeof(r->path), "%s%s", sn ? sn : "", pi ? pi : "");
	}
	r->query = r->p.query_string;
	r->https = (r->p.https && strcasecmp(r->p.https, "on") == 0) ||
		   (r->p.request_scheme && strcasecmp(r->p.request_scheme, "https") == 0);
	r->remote_addr = r->p.remote_addr;
}

static void note_active(struct server *s, int delta)
{
	if (delta > 0) {
		unsigned now = atomic_fetch_add(&s->active, 1) + 1;
		unsigned max = atomic_load(&s->max_active);
		while (now > max && !atomic_compare_exchange_weak(&s->max_active, &max, now))
			;
	} else {
		atomic_fetch_sub(&s->active, 1);
	}
	rs_metrics_in_flight(s->metrics, delta);
}

/* Answer one request: from w->fcgi, or the CGI environment when fcgi is
 * NULL. */
static void handle(struct worker *w, FCGX_Request *fcgi)
{
	struct server *s = w->srv;
	struct req r;
	struct rs_buf wire;
	bool late;

	memset(&r, 0, sizeof(r));
	r.srv = s;
	r.worker = w;
	r.fcgi = fcgi;
	r.envp = fcgi ? fcgi->envp : environ;
	r.start_us = rs_monotonic_us();
	r.conf = conf_get(s);
	r.status = 200;
	r.route = -1;
	rs_buf_init(&r.out, RESPONSE_MAX);
	rs_buf_init(&r.headers, REQ_HEADERS_MAX);
	rs_buf_init(&wire, RESPONSE_MAX + REQ_HEADERS_MAX + 256);
	atomic_fetch_add(&s->accepted, 1);
	note_active(s, 1);
	parse_target(&r);
	req_begin(&r);

	pthread_mutex_lock(&w->lock);
	w->cur = &r;
	w->answered = false;
	pthread_mutex_unlock(&w->lock);

	serve(&r);
	if (req_render(&r, &wire) < 0) {
		rs_buf_reset(&wire);
		req_error(&r, 500, "internal_error", "the response is too large");
		req_render(&r, &wire);
	}

	pthread_mutex_lock(&w->lock);
	late = w->answered;
	if (!late) {
		put_wire(&r, &wire);
		w->answered = true;
	}
	w->cur = NULL;
	pthread_mutex_unlock(&w->lock);

	if (late) {
		r.status = 504;
		r.bytes_sent = 0;
	}
	serve_done(&r);
	note_active(s, -1);
	rs_buf_free(&wire);
	req_free(&r);
	conf_put(s, r.conf);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->srv;
	sigset_t all;

	/* signals are main's business (sigwait there) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	FCGX_InitRequest(&w->fcgi, s->listen_fd, 0);
	while (!atomic_load(&s->draining)) {
		int rc = FCGX_Accept_r(&w->fcgi);
		if (rc < 0) {
			if (atomic_load(&s->draining))
				break;
			RS_LOG(RS_LOG_ERROR, NULL, "accept failed: %s", strerror(-rc));
			struct timespec pause = { 0, 100 * 1000000L };
			nanosleep(&pause, NULL);
			continue;
		}
		handle(w, &w->fcgi);
		FCGX_Finish_r(&w->fcgi);
	}
	FCGX_Free(&w->fcgi, 1);
	return NULL;
}

static int watchdog_start(struct server *s, struct rs_err *err)
{
	atomic_store(&watchdog_stop, false);
	int rc = pthread_create(&watchdog_thread, NULL, watchdog_main, s);
	if (rc)
		return rs_err_errno(err, rc, "cannot start the watchdog thread");
	watchdog_running = true;
	return 0;
}

static void watchdog_join(void)
{
	if (!watchdog_running)
		return;
	atomic_store(&watchdog_stop, true);
	pthread_join(watchdog_thread, NULL);
	watchdog_running = false;
}

static int slots_new(struct server *s, unsigned n, struct rs_err *err)
{
	s->workers = calloc(n, sizeof(*s->workers));
	if (!s->workers)
		return rs_err_set(err, "out of memory");
	s->nthreads = n;
	for (unsigned i = 0; i < n; i++) {
		s->workers[i].srv = s;
		s->workers[i].index = i;
		pthread_mutex_init(&s->workers[i].lock, NULL);
	}
	return 0;
}

static void slots_free(struct server *s)
{
	for (unsigned i = 0; s->workers && i < s->nthreads; i++) {
		pthread_mutex_destroy(&s->workers[i].lock);
		if (s->workers[i].db)
			rs_db_close(s->workers[i].db);
		if (s->workers[i].wdb)
			rs_db_close(s->workers[i].wdb);
	}
	free(s->workers);
	s->workers = NULL;
}

int workers_start(struct server *s, struct rs_err *err)
{
	unsigned n = s->nthreads;

	if (slots_new(s, n, err) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		int rc = pthread_create(&s->workers[i].thread, NULL, worker_main,
					&s->workers[i]);
		if (rc) {
			s->nthreads = i;
			workers_stop(s, 0);
			return rs_err_errno(err, rc, "cannot start worker thread %u", i + 1);
		}
	}
	return watchdog_start(s, err);
}

unsigned workers_stop(struct server *s, int64_t timeout_ms)
{
	unsigned left = 0;
	struct timespec deadline;

	atomic_store(&s->draining, true);
	/* wakes every thread blocked in accept(2): it fails with EINVAL */
	if (s->listen_fd >= 0)
		shutdown(s->listen_fd, SHUT_RDWR);
	rs_deadline_after(&deadline, CLOCK_REALTIME, timeout_ms);
	for (unsigned i = 0; i < s->nthreads; i++)
		if (pthread_timedjoin_np(s->workers[i].thread, NULL, &deadline) != 0)
			left++;
	if (left == 0) {
		watchdog_join();
		slots_free(s);
	}
	/* else: threads still run; the process exits without freeing */
	return left;
}

int serve_cgi(struct server *s)
{
	struct rs_err err = RS_ERR_INIT;

	if (slots_new(s, 1, &err) < 0 || watchdog_start(s, &err) < 0) {
		RS_LOG(RS_LOG_ERROR, NULL, "%s", err.msg);
		return -1;
	}
	handle(&s->workers[0], NULL);
	watchdog_join();
	slots_free(s);
	return 0;
}
