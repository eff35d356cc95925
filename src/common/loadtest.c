/*
 * loadtest: the engine (see loadtest.h).
 *
 * Each worker thread owns a libcurl multi handle and a set of slots (easy
 * handles): in the closed model a slot is a user, in the open model a
 * connection's worth of concurrency.  Results are kept per worker and
 * merged at the end, except the per-second series, which the clock
 * thread must read while the run goes on: that is a small ring of
 * lock-free histograms, one per second, that the clock thread folds into
 * rows two seconds later and clears for reuse.
 */
#include "loadtest.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define DEFAULT_MAX_THREADS 8
#define RING 4                       /* seconds live in the ring */
#define BODY_KEEP_MAX (1 << 20)      /* bytes kept for expect_body */
#define STOP_GRACE_MAX_NS 5000000000LL
#define TICK_NS 100000000LL          /* the clock thread's period */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct sec_slot {
	_Atomic int64_t second;          /* which second it holds; -1 free */
	_Atomic uint64_t requests, errors;
	struct rs_hist h;
};

struct worker;

struct slot {
	struct worker *w;
	CURL *easy;
	bool busy;
	unsigned req;                    /* the request definition */
	int64_t intended_ns, sent_ns, ready_ns;
	uint64_t bytes;
	char *resp;                      /* kept only when expect_body is set */
	size_t resp_len, resp_cap;
	bool keep_body;
	/* expanded per request when the definition has ${NAME}s */
	char *url, *body;
	size_t url_cap, body_cap, url_len, body_len;
	struct curl_slist *headers;      /* own list when expanded, else borrowed */
	bool own_headers;
	bool spawned;                    /* closed: the user has started */
	unsigned configured;             /* 1 + the request the handle is set up for; 0 none */
	int64_t spawn_ns;
};

struct worker {
	struct rs_lt_run *run;
	unsigned id;
	pthread_t th;
	CURLM *multi;
	int epfd;                        /* the sockets libcurl asks us to watch */
	unsigned char *fds;              /* per descriptor: FD_* below */
	size_t nfds;
	int64_t curl_due_ns;             /* libcurl's timer: when it wants a call; -1 none */
	struct slot *slots;
	unsigned nslots, inflight;
	unsigned *free_slots, nfree;     /* open model: idle slots */
	struct rs_lt_stats total;
	struct rs_lt_stats *per_req;
	uint64_t next;                   /* open: this worker's next schedule index */
	uint64_t late, unsent, intended, unfinished;
	_Atomic uint64_t answered, failed_requests;   /* for the progress line */
	unsigned seed;
	char *scratch;
	size_t scratch_cap;
	struct rs_err err;
	bool failed;
};

struct rs_lt_run {
	const struct rs_lt_scenario *sc;
	struct rs_lt_settings st;
	unsigned nthreads;
	struct worker *w;
	/* per request definition: the URL and headers when they hold no
	 * ${NAME} (built once, shared read-only by every slot) */
	char **urls;
	struct curl_slist **headers;
	unsigned *cumulative;            /* weights, for the pick */
	unsigned weight_total;
	int64_t t0_ns, end_ns;
	atomic_bool stop;
	atomic_bool interrupted;         /* rs_lt_stop was called */
	atomic_bool over;
	_Atomic uint64_t started;        /* requests started, for the bound */
	_Atomic uint64_t row;            /* the next variables row */
	atomic_uint users;
	struct sec_slot ring[RING];
	pthread_t clock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned running;                /* workers not yet finished */
	bool go;                         /* t0 is set: the workers may start */
	int64_t finished_ns;
	struct rs_lt_second *seconds;
	size_t nseconds, cap_seconds;
	struct rs_lt_progress progress;
	int64_t started_ms;
};

/* ---- small helpers ----------------------------------------------------------- */

static void stats_init(struct rs_lt_stats *s)
{
	memset(s, 0, sizeof(*s));
	rs_hist_init(&s->latency);
	rs_hist_init(&s->uncorrected);
}

static void stats_merge(struct rs_lt_stats *dst, const struct rs_lt_stats *src)
{
	dst->requests += src->requests;
	dst->bytes += src->bytes;
	dst->http2 += src->http2;
	for (int i = 0; i < RS_LT_NERRORS; i++)
		dst->errors[i] += src->errors[i];
	rs_hist_merge(&dst->latency, &src->latency);
	rs_hist_merge(&dst->uncorrected, &src->uncorrected);
}

static unsigned pick_request(struct rs_lt_run *run, unsigned *seed)
{
	if (run->sc->nrequests == 1)
		return 0;
	unsigned x = (unsigned)rand_r(seed) % run->weight_total;
	unsigned lo = 0, hi = run->sc->nrequests - 1;

	while (lo < hi) {          /* the first cumulative weight above x */
		unsigned mid = (lo + hi) / 2;
		if (run->cumulative[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Base URL and path joined, or the absolute path alone. */
static char *join_url(const char *base, const char *path)
{
	size_t nb = base ? strlen(base) : 0, np = strlen(path);
	char *u;

	if (!base || !strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
		return strdup(path);
	while (nb && base[nb - 1] == '/')
		nb--;
	if (!(u = malloc(nb + np + 1)))
		return NULL;
	memcpy(u, base, nb);
	memcpy(u + nb, path, np + 1);
	return u;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = size * n;

	s->bytes += len;
	if (s->keep_body && s->resp_len < BODY_KEEP_MAX) {
		size_t take = len < BODY_KEEP_MAX - s->resp_len ? len : BODY_KEEP_MAX - s->resp_len;
		if (s->resp_len + take + 1 > s->resp_cap) {
			size_t cap = (s->resp_len + take + 1) * 2;
			char *r = realloc(s->resp, cap);
			if (!r)
				return 0;       /* an I/O error for this request */
			s->resp = r;
			s->resp_cap = cap;
		}
		memcpy(s->resp + s->resp_len, p, take);
		s->resp_len += take;
		s->resp[s->resp_len] = '\0';
	}
	return len;
}

/* ---- the schedule ------------------------------------------------------------- */

/* Open model: when request number g (0, 1, ... across all workers) is
 * due, from the start.  With a ramp the rate grows linearly from 0, so
 * the count by time t is rate t^2 / 2 ramp until the ramp ends. */
static int64_t due_ns(const struct rs_lt_settings *st, uint64_t g)
{
	double ramp_s = (double)st->ramp_ms / 1000.0, t;
	double ramp_count = st->rate * ramp_s / 2.0;

	if (ramp_s > 0 && (double)g < ramp_count)
		t = sqrt(2.0 * ramp_s * (double)g / st->rate);
	else
		t = ramp_s + ((double)g - (ramp_s > 0 ? ramp_count : 0)) / st->rate;
	return (int64_t)(t * 1e9);
}

static int64_t think_ns(struct worker *w)
{
	const struct rs_lt_settings *st = &w->run->st;
	int64_t lo = st->think_min_ms, hi = st->think_max_ms;

	if (hi <= 0)
		return 0;
	if (hi > lo)
		lo += (int64_t)((uint64_t)rand_r(&w->seed) % (uint64_t)(hi - lo + 1));
	return lo * 1000000LL;
}

/* Claim one request of the bound; false when the run has them all. */
static bool claim(struct rs_lt_run *run)
{
	if (!run->st.requests)
		return true;
	return atomic_fetch_add(&run->started, 1) < run->st.requests;
}

/* ---- sending ------------------------------------------------------------------ */

static int set_request(struct worker *w, struct slot *s, unsigned ri)
{
	struct rs_lt_run *run = w->run;
	const struct rs_lt_request *rq = &run->sc->requests[ri];
	CURL *e = s->easy;
	uint64_t row = 0;
	const char *url = run->urls[ri];
	bool vars = rq->path.has_vars || rq->body.has_vars;

	for (unsigned i = 0; i < rq->nheaders; i++)
		vars = vars || rq->headers[i].has_vars;
	s->req = ri;
	s->keep_body = rq->expect_body != NULL;
	s->resp_len = 0;
	s->bytes = 0;
	/* the same fixed request again: the handle keeps its options */
	if (!vars && s->configured == ri + 1)
		return 0;
	s->configured = 0;
	if (vars)
		row = atomic_fetch_add_explicit(&run->row, 1, memory_order_relaxed);
	if (rq->path.has_vars) {
		size_t len;
		if (rs_lt_expand(&rq->path, run->sc, row, &w->scratch, &w->scratch_cap, &len) < 0)
			return -1;
		free(s->url);
		if (!(s->url = join_url(run->sc->base_url, w->scratch)))
			return -1;
		url = s->url;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (s->own_headers)
		curl_slist_free_all(s->headers);
	s->headers = run->headers[ri];
	s->own_headers = false;
	bool hvars = false;
	for (unsigned i = 0; i < rq->nheaders; i++)
		hvars = hvars || rq->headers[i].has_vars;
	if (hvars) {
		struct curl_slist *l = NULL, *n;
		for (unsigned i = 0; i < rq->nheaders; i++) {
			size_t len;
			if (rs_lt_expand(&rq->headers[i], run->sc, row, &w->scratch, &w->scratch_cap,
					 &len) < 0 || !(n = curl_slist_append(l, w->scratch))) {
				curl_slist_free_all(l);
				s->headers = NULL;
				return -1;
			}
			l = n;
		}
		if (!(n = curl_slist_append(l, "Expect:"))) {
			curl_slist_free_all(l);
			s->headers = NULL;
			return -1;
		}
		s->headers = n;
		s->own_headers = true;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);

	const char *body = rq->body.text;
	size_t body_len = body ? strlen(body) : 0;
	if (rq->body.has_vars) {
		size_t len;
		if (rs_lt_expand(&rq->body, run->sc, row, &s->body, &s->body_cap, &len) < 0)
			return -1;
		body = s->body;
		body_len = len;
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
	if (!strcmp(rq->method, "GET") && !body) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (body) {
			/* not copied: the text lives in the scenario or in s->body
			 * until the request is done */
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		} else {
			curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		}
		if (strcmp(rq->method, "POST") || !body)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	if (!vars)
		s->configured = ri + 1;
	return 0;
}

static int start_one(struct worker *w, struct slot *s, int64_t intended, int64_t now)
{
	unsigned ri = pick_request(w->run, &w->seed);

	if (set_request(w, s, ri) < 0) {
		rs_err_set(&w->err, "out of memory");
		w->failed = true;
		return -1;
	}
	s->intended_ns = intended;
	s->sent_ns = now;
	if (curl_multi_add_handle(w->multi, s->easy) != CURLM_OK) {
		rs_err_set(&w->err, "cannot start a request");
		w->failed = true;
		return -1;
	}
	s->busy = true;
	w->inflight++;
	return 0;
}

/* ---- answers ------------------------------------------------------------------ */

static enum rs_lt_error classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return RS_LT_ERR_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return RS_LT_ERR_TIMEOUT;
	default:
		return RS_LT_ERR_IO;
	}
}

static void record(struct worker *w, struct slot *s, int err, bool h2, int64_t now)
{
	struct rs_lt_run *run = w->run;
	uint64_t lat = (uint64_t)((now - s->intended_ns) / 1000);
	uint64_t unc = (uint64_t)((now - s->sent_ns) / 1000);
	struct rs_lt_stats *t[2] = { &w->total, &w->per_req[s->req] };

	for (int i = 0; i < 2; i++) {
		t[i]->requests++;
		t[i]->bytes += s->bytes;
		t[i]->http2 += h2;
		if (err >= 0)
			t[i]->errors[err]++;
		rs_hist_record(&t[i]->latency, lat);
		if (run->st.model == RS_LT_OPEN)
			rs_hist_record(&t[i]->uncorrected, unc);
	}
	atomic_fetch_add_explicit(&w->answered, 1, memory_order_relaxed);
	if (err >= 0)
		atomic_fetch_add_explicit(&w->failed_requests, 1, memory_order_relaxed);
	int64_t sec = (now - run->t0_ns) / 1000000000LL;
	if (sec < 0)
		sec = 0;
	struct sec_slot *r = &run->ring[sec % RING];
	/* a slot the clock has not handed over yet holds an older second:
	 * such a straggler is dropped from the series (not from the totals) */
	if (atomic_load_explicit(&r->second, memory_order_acquire) != sec)
		return;
	atomic_fetch_add_explicit(&r->requests, 1, memory_order_relaxed);
	if (err >= 0)
		atomic_fetch_add_explicit(&r->errors, 1, memory_order_relaxed);
	rs_hist_record(&r->h, lat);
}

static void done(struct worker *w, CURL *e, CURLcode rc, int64_t now)
{
	struct slot *s = NULL;
	const struct rs_lt_request *rq;
	long status = 0, version = 0;
	int err = -1;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
	curl_multi_remove_handle(w->multi, e);
	s->busy = false;
	w->inflight--;
	rq = &w->run->sc->requests[s->req];
	if (rc != CURLE_OK) {
		err = classify(rc);
	} else {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
		if (rq->expect_status ? status != rq->expect_status : (status < 200 || status >= 400))
			err = RS_LT_ERR_STATUS;
		else if (rq->expect_body && (!s->resp || !strstr(s->resp, rq->expect_body)))
			err = RS_LT_ERR_BODY;
	}
	if (s->sent_ns - s->intended_ns > (int64_t)RS_LT_LATE_US * 1000)
		w->late++;
	record(w, s, err, version == CURL_HTTP_VERSION_2_0, now);
	s->ready_ns = now + (w->run->st.model == RS_LT_CLOSED ? think_ns(w) : 0);
	if (w->run->st.model == RS_LT_OPEN)
		w->free_slots[w->nfree++] = (unsigned)(s - w->slots);
}

static void drain(struct worker *w)
{
	CURLMsg *m;
	int left;
	int64_t now = now_ns();

	while ((m = curl_multi_info_read(w->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			done(w, m->easy_handle, m->data.result, now);
}

/* ---- libcurl's sockets and timer, on epoll ------------------------------------- */

/* libcurl tells which sockets to watch for what; epoll makes each wait
 * cost what is ready, not how many connections there are (poll() over
 * every socket was most of the generator's time). */
/* What epoll holds for a descriptor.  A kept-alive connection goes idle
 * (CURL_POLL_REMOVE) and busy again for every request: it stays
 * registered while idle ("parked"), so the next request costs no
 * epoll_ctl when it wants the same events.  An event on a parked socket
 * (the server closed it) unregisters it; libcurl's close callback forgets
 * it, so a new socket with the same number is registered afresh. */
enum { FD_REG = 1, FD_IN = 2, FD_OUT = 4, FD_ACTIVE = 8 };

static unsigned char *fd_state(struct worker *w, curl_socket_t fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= w->nfds) {
		size_t n = (size_t)fd * 2 + 64;
		unsigned char *f = realloc(w->fds, n);
		if (!f)
			return NULL;
		memset(f + w->nfds, 0, n - w->nfds);
		w->fds = f;
		w->nfds = n;
	}
	return &w->fds[fd];
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct worker *w = arg;
	struct epoll_event ev = { 0 };
	unsigned char *st = fd_state(w, fd), want;

	(void)e;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		if (st)
			*st &= (unsigned char)~FD_ACTIVE;
		else
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	want = (unsigned char)((what & CURL_POLL_IN ? FD_IN : 0) | (what & CURL_POLL_OUT ? FD_OUT : 0));
	ev.events = (want & FD_IN ? EPOLLIN : 0) | (want & FD_OUT ? EPOLLOUT : 0);
	ev.data.fd = fd;
	if (!st) {         /* no memory for the table: plain calls */
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
			epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
		return 0;
	}
	if (!(*st & FD_REG)) {
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
		    (errno != EEXIST || epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
			return 0;
	} else if ((*st & (FD_IN | FD_OUT)) != want &&
		   epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
		*st = 0;
		return 0;
	}
	*st = (unsigned char)(FD_REG | FD_ACTIVE | want);
	return 0;
}

static int on_close(void *arg, curl_socket_t fd)
{
	struct worker *w = arg;

	/* closing removes it from epoll; its number may come back */
	if (fd >= 0 && (size_t)fd < w->nfds)
		w->fds[fd] = 0;
	return close(fd);
}

static int on_timer(CURLM *m, long ms, void *arg)
{
	struct worker *w = arg;

	(void)m;
	w->curl_due_ns = ms < 0 ? -1 : now_ns() + (int64_t)ms * 1000000LL;
	return 0;
}

/* Wait until `until` (monotonic ns) at most, handing libcurl what became
 * ready and its timeouts; then collect the finished requests. */
static void pump(struct worker *w, int64_t until)
{
	struct epoll_event evs[64];
	int running, n;
	int64_t now = now_ns();

	if (w->curl_due_ns >= 0 && w->curl_due_ns < until)
		until = w->curl_due_ns;
	int64_t wait_ns = until - now;
	if (wait_ns < 0)
		wait_ns = 0;
	/* to the microsecond: an open-model request sent up to a millisecond
	 * late (epoll_wait's unit) would add that to every corrected latency */
	static atomic_bool no_pwait2;      /* a kernel before 5.11 (or valgrind) */
	struct timespec ts = { wait_ns / 1000000000LL, wait_ns % 1000000000LL };
	n = -1;
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed) &&
	    (n = epoll_pwait2(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), &ts, NULL)) < 0 &&
	    errno == ENOSYS)
		atomic_store(&no_pwait2, true);
	if (n < 0 && atomic_load_explicit(&no_pwait2, memory_order_relaxed))
		n = epoll_wait(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])),
			       (int)((wait_ns + 999999) / 1000000));
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd >= 0 && (size_t)fd < w->nfds && (w->fds[fd] & FD_REG) &&
		    !(w->fds[fd] & FD_ACTIVE)) {
			/* parked, and something happened: libcurl will find
			 * out at its next use; stop watching it meanwhile */
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
			w->fds[fd] = 0;
			continue;
		}
		int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(w->multi, fd, flags, &running);
	}
	if (w->curl_due_ns >= 0 && now_ns() >= w->curl_due_ns) {
		w->curl_due_ns = -1;
		curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	drain(w);
}

/* ---- the worker loop ----------------------------------------------------------- */

/* Start what is due; the time of the next thing to do (or INT64_MAX). */
static int64_t closed_tick(struct worker *w, int64_t now, bool stopping)
{
	struct rs_lt_run *run = w->run;
	int64_t next = INT64_MAX;

	for (unsigned i = 0; i < w->nslots; i++) {
		struct slot *s = &w->slots[i];
		if (s->busy)
			continue;
		if (!s->spawned) {
			if (stopping)
				continue;
			if (s->spawn_ns > now) {
				next = s->spawn_ns < next ? s->spawn_ns : next;
				continue;
			}
			s->spawned = true;
			s->ready_ns = now;
			atomic_fetch_add(&run->users, 1);
		}
		if (stopping)
			continue;
		if (s->ready_ns > now) {
			next = s->ready_ns < next ? s->ready_ns : next;
			continue;
		}
		if (!claim(run)) {
			atomic_store(&run->stop, true);
			break;
		}
		if (start_one(w, s, now, now) < 0)
			break;
	}
	return next;
}

static int64_t open_tick(struct worker *w, int64_t now, bool stopping)
{
	struct rs_lt_run *run = w->run;
	unsigned T = run->nthreads;

	while (!stopping) {
		uint64_t g = w->next * T + w->id;
		int64_t due = run->t0_ns + due_ns(&run->st, g);
		if (due > now)
			return due;
		if (due >= run->end_ns)
			return INT64_MAX;
		if (!w->nfree)
			return INT64_MAX;          /* behind: a slot's answer wakes us */
		if (!claim(run)) {
			atomic_store(&run->stop, true);
			return INT64_MAX;
		}
		struct slot *s = &w->slots[w->free_slots[--w->nfree]];
		if (start_one(w, s, due, now) < 0)
			return INT64_MAX;
		w->next++;
		w->intended++;
	}
	return INT64_MAX;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rs_lt_run *run = w->run;
	int64_t stop_at = 0;
	bool stopping = false;

	/* wake up when a request is due, not up to 50 us later (the default
	 * timer slack): that would be added to every corrected latency */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	/* the clock starts once every thread is there: a thread still being
	 * created would find its first requests late */
	pthread_mutex_lock(&run->lock);
	while (!run->go)
		pthread_cond_wait(&run->cond, &run->lock);
	pthread_mutex_unlock(&run->lock);

	for (;;) {
		int64_t now = now_ns(), next;

		if (!stopping && (atomic_load(&run->stop) || now >= run->end_ns)) {
			stopping = true;
			stop_at = now;
		}
		if (w->failed)
			break;
		if (stopping) {
			int64_t grace = run->st.timeout_ms * 1000000LL;
			if (grace > STOP_GRACE_MAX_NS)
				grace = STOP_GRACE_MAX_NS;
			if (!w->inflight || now - stop_at > grace)
				break;
		}
		next = run->st.model == RS_LT_CLOSED ? closed_tick(w, now, stopping)
						      : open_tick(w, now, stopping);
		if (w->failed)
			break;
		if (!stopping && !w->inflight && run->st.requests &&
		    atomic_load(&run->started) >= run->st.requests)
			atomic_store(&run->stop, true);
		if (next > run->end_ns && !stopping)
			next = run->end_ns;
		now = now_ns();
		if (next - now > TICK_NS)
			next = now + TICK_NS;
		pump(w, next);
	}
	/* what is still in flight did not finish in the grace */
	for (unsigned i = 0; i < w->nslots; i++)
		if (w->slots[i].busy) {
			curl_multi_remove_handle(w->multi, w->slots[i].easy);
			w->slots[i].busy = false;
			w->unfinished++;
		}
	if (run->st.model == RS_LT_OPEN) {
		/* due before the end but never sent: the generator fell behind */
		unsigned T = run->nthreads;
		for (;; w->next++) {
			uint64_t g = w->next * T + w->id;
			int64_t due = run->t0_ns + due_ns(&run->st, g);
			/* one due in the last moment before the end was not
			 * "left behind" */
			int64_t end = stop_at < run->end_ns ? stop_at : run->end_ns;
			if (due >= end - (int64_t)RS_LT_LATE_US * 1000)
				break;
			if (run->st.requests && g >= run->st.requests)
				break;
			w->unsent++;
			w->intended++;
		}
	}
	pthread_mutex_lock(&run->lock);
	if (--run->running == 0) {
		run->finished_ns = now_ns();
		atomic_store(&run->stop, true);
	}
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

/* ---- the clock: the per-second series and the end ------------------------------ */

static void fold_second(struct rs_lt_run *run, int64_t sec)
{
	struct sec_slot *r = &run->ring[sec % RING];
	struct rs_lt_second row = { 0 };

	if (atomic_load(&r->second) == sec) {
		row.requests = atomic_load(&r->requests);
		row.errors = atomic_load(&r->errors);
		row.p50_us = rs_hist_percentile(&r->h, 50);
		row.p90_us = rs_hist_percentile(&r->h, 90);
		row.p95_us = rs_hist_percentile(&r->h, 95);
		row.p99_us = rs_hist_percentile(&r->h, 99);
		row.max_us = rs_hist_max(&r->h);
		row.mean_us = rs_hist_mean(&r->h);
	}
	row.users = atomic_load(&run->users);
	/* hand the slot to the second that will use it next */
	atomic_store(&r->second, -1);
	atomic_store(&r->requests, 0);
	atomic_store(&r->errors, 0);
	rs_hist_init(&r->h);
	atomic_store_explicit(&r->second, sec + RING, memory_order_release);

	pthread_mutex_lock(&run->lock);
	if (run->nseconds == run->cap_seconds) {
		size_t cap = run->cap_seconds ? run->cap_seconds * 2 : 64;
		struct rs_lt_second *n = realloc(run->seconds, cap * sizeof(*n));
		if (n) {
			run->seconds = n;
			run->cap_seconds = cap;
		}
	}
	if (run->nseconds < run->cap_seconds)
		run->seconds[run->nseconds++] = row;
	run->progress.rps = (double)row.requests;
	run->progress.p95_us = row.p95_us;
	pthread_mutex_unlock(&run->lock);
}

static void *clock_main(void *arg)
{
	struct rs_lt_run *run = arg;
	int64_t folded = 0;          /* seconds folded so far */

	for (;;) {
		struct timespec ts = { 0, TICK_NS };
		nanosleep(&ts, NULL);
		int64_t now = now_ns();
		bool over;
		pthread_mutex_lock(&run->lock);
		over = run->running == 0;
		pthread_mutex_unlock(&run->lock);
		/* a second is folded once the next one is over too, so late
		 * recorders have had a full second */
		int64_t cur = (now - run->t0_ns) / 1000000000LL;
		int64_t upto = over ? cur + 1 : cur - 1;
		/* the series holds whole seconds of the run: a last part-second
		 * (or the grace for stragglers) would show as a drop in req/s */
		int64_t end = run->finished_ns < run->end_ns ? run->finished_ns : run->end_ns;
		while (folded < upto) {
			if (over && (folded + 1) * 1000000000LL > end - run->t0_ns)
				break;
			fold_second(run, folded++);
		}
		pthread_mutex_lock(&run->lock);
		uint64_t req = 0, errs = 0;
		for (unsigned i = 0; i < run->nthreads; i++) {
			req += atomic_load_explicit(&run->w[i].answered, memory_order_relaxed);
			errs += atomic_load_explicit(&run->w[i].failed_requests, memory_order_relaxed);
		}
		run->progress.elapsed_ms = (now - run->t0_ns) / 1000000;
		run->progress.requests = req;
		run->progress.errors = errs;
		run->progress.users = atomic_load(&run->users);
		if (over)
			atomic_store(&run->over, true);
		pthread_cond_broadcast(&run->cond);
		pthread_mutex_unlock(&run->lock);
		if (over)
			return NULL;
	}
}

/* ---- start, wait, finish -------------------------------------------------------- */

static CURL *new_easy(const struct rs_lt_settings *st, struct slot *s)
{
	CURL *e = curl_easy_init();

	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)st->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(st->timeout_ms < 10000 ? st->timeout_ms : 10000));
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 st->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "resyncctl-loadtest");
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* the target itself, never a proxy from the environment (which
	 * libcurl would also look up on every request) */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (s->w) {
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, s->w);
	}
	if (st->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return e;
}

static void free_run(struct rs_lt_run *run)
{
	if (!run)
		return;
	for (unsigned i = 0; run->w && i < run->nthreads; i++) {
		struct worker *w = &run->w[i];
		for (unsigned k = 0; w->slots && k < w->nslots; k++) {
			struct slot *s = &w->slots[k];
			if (s->easy)
				curl_easy_cleanup(s->easy);
			if (s->own_headers)
				curl_slist_free_all(s->headers);
			free(s->resp);
			free(s->url);
			free(s->body);
		}
		if (w->multi)
			curl_multi_cleanup(w->multi);
		if (w->epfd >= 0)
			close(w->epfd);
		free(w->slots);
		free(w->free_slots);
		free(w->per_req);
		free(w->scratch);
		free(w->fds);
	}
	for (unsigned i = 0; i < run->sc->nrequests; i++) {
		if (run->urls)
			free(run->urls[i]);
		if (run->headers)
			curl_slist_free_all(run->headers[i]);
	}
	free(run->urls);
	free(run->headers);
	free(run->cumulative);
	free(run->w);
	free(run->seconds);
	pthread_mutex_destroy(&run->lock);
	pthread_cond_destroy(&run->cond);
	free(run);
}

/* One request to the first URL before anything starts: an unreachable
 * target is a usage problem, not a run full of connect errors. */
static int probe(const struct rs_lt_run *run, struct rs_err *err)
{
	struct slot s = { 0 };
	CURL *e = new_easy(&run->st, &s);
	CURLcode rc;
	char msg[CURL_ERROR_SIZE] = "";
	char *url = NULL, *path = NULL;
	size_t cap = 0, len;
	for (unsigned i = 0; !url && i < run->sc->nrequests; i++)
		url = run->urls[i] ? strdup(run->urls[i]) : NULL;
	/* every path has a ${NAME}: the first as row 0 makes it */
	if (!url && rs_lt_expand(&run->sc->requests[0].path, run->sc, 0, &path, &cap, &len) == 0)
		url = join_url(run->sc->base_url, path);
	free(path);
	if (!e || !url) {
		if (e)
			curl_easy_cleanup(e);
		free(url);
		return rs_err_set(err, e ? "out of memory" : "cannot initialise libcurl");
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, msg);
	/* a connection (and TLS handshake) only: a server that takes its
	 * time to answer is reachable, and what the run is there to measure */
	curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	free(s.resp);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_OPERATION_TIMEDOUT ||
	    rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
	    rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
		rs_err_set(err, "cannot reach %s: %s", url, *msg ? msg : curl_easy_strerror(rc));
		err->code = ECONNREFUSED;
		free(url);
		return -1;
	}
	free(url);
	return 0;
}

static int check_settings(const struct rs_lt_settings *st, struct rs_err *err)
{
	if (!st->duration_ms && !st->requests)
		return rs_err_set(err, "a run needs a bound: a duration, a request count, or both");
	if (st->model == RS_LT_CLOSED && !st->users)
		return rs_err_set(err, "the closed model needs at least one user");
	if (st->model == RS_LT_OPEN && !(st->rate > 0))
		return rs_err_set(err, "the open model needs a rate above 0");
	if (st->model == RS_LT_OPEN && !st->connections)
		return rs_err_set(err, "the open model needs at least one connection");
	if (st->timeout_ms <= 0)
		return rs_err_set(err, "the request timeout must be above 0");
	if (st->threads > MAX_THREADS)
		return rs_err_set(err, "at most %d threads", MAX_THREADS);
	return 0;
}

static int setup_worker(struct rs_lt_run *run, struct worker *w, unsigned id, unsigned nslots)
{
	w->run = run;
	w->id = id;
	w->seed = (unsigned)(now_ns() ^ (id * 2654435761u));
	w->nslots = nslots;
	stats_init(&w->total);
	w->curl_due_ns = -1;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(w->multi = curl_multi_init()) ||
	    !(w->slots = calloc(nslots ? nslots : 1, sizeof(*w->slots))) ||
	    !(w->free_slots = calloc(nslots ? nslots : 1, sizeof(*w->free_slots))) ||
	    !(w->per_req = calloc(run->sc->nrequests, sizeof(*w->per_req))))
		return -1;
	for (unsigned i = 0; i < run->sc->nrequests; i++)
		stats_init(&w->per_req[i]);
	/* the multi handle's connection cache is what keeps connections
	 * alive between requests */
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)nslots + 4);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
	for (unsigned k = 0; k < nslots; k++) {
		struct slot *s = &w->slots[k];
		s->w = w;
		if (!(s->easy = new_easy(&run->st, s)))
			return -1;
		if (run->st.model == RS_LT_CLOSED) {
			uint64_t user = (uint64_t)k * run->nthreads + id;   /* global user number */
			s->spawn_ns = run->st.spawn_rate > 0
				? (int64_t)((double)user * 1e9 / run->st.spawn_rate) : 0;
		} else {
			w->free_slots[w->nfree++] = k;
		}
	}
	return 0;
}

int rs_lt_start(struct rs_lt_run **out, const struct rs_lt_scenario *sc,
		const struct rs_lt_settings *st, struct rs_err *err)
{
	struct rs_lt_run *run;
	unsigned conc;

	*out = NULL;
	if (check_settings(st, err) < 0)
		return -1;
	if (!sc->nrequests)
		return rs_err_set(err, "nothing to request: give --url or a scenario");
	if (!(run = calloc(1, sizeof(*run))))
		return rs_err_set(err, "out of memory");
	run->sc = sc;
	run->st = *st;
	pthread_mutex_init(&run->lock, NULL);
	pthread_cond_init(&run->cond, NULL);
	conc = st->model == RS_LT_CLOSED ? st->users : st->connections;
	if (!run->st.threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		run->st.threads = n < 1 ? 1 : n > DEFAULT_MAX_THREADS ? DEFAULT_MAX_THREADS : (unsigned)n;
	}
	if (run->st.threads > conc)
		run->st.threads = conc;
	run->nthreads = run->st.threads;
	if (!(run->urls = calloc(sc->nrequests, sizeof(*run->urls))) ||
	    !(run->headers = calloc(sc->nrequests, sizeof(*run->headers))) ||
	    !(run->cumulative = calloc(sc->nrequests, sizeof(*run->cumulative))) ||
	    !(run->w = calloc(run->nthreads, sizeof(*run->w))))
		goto oom;
	for (unsigned i = 0; i < run->nthreads; i++)
		run->w[i].epfd = -1;
	for (unsigned i = 0; i < sc->nrequests; i++) {
		const struct rs_lt_request *rq = &sc->requests[i];
		run->weight_total += rq->weight ? rq->weight : 1;
		run->cumulative[i] = run->weight_total;
		if (!rq->path.has_vars && !(run->urls[i] = join_url(sc->base_url, rq->path.text)))
			goto oom;
		struct curl_slist *l = NULL, *n;
		bool vars = false;
		for (unsigned h = 0; h < rq->nheaders; h++)
			vars = vars || rq->headers[h].has_vars;
		for (unsigned h = 0; !vars && h < rq->nheaders; h++) {
			if (!(n = curl_slist_append(l, rq->headers[h].text))) {
				curl_slist_free_all(l);
				goto oom;
			}
			l = n;
		}
		/* no "Expect: 100-continue" round trip before bodies */
		if (!vars) {
			if (!(n = curl_slist_append(l, "Expect:"))) {
				curl_slist_free_all(l);
				goto oom;
			}
			run->headers[i] = n;
		}
	}
	if (probe(run, err) < 0) {
		free_run(run);
		return -1;
	}
	for (unsigned i = 0; i < run->nthreads; i++) {
		unsigned share = conc / run->nthreads + (i < conc % run->nthreads ? 1 : 0);
		if (setup_worker(run, &run->w[i], i, share) < 0)
			goto oom;
	}
	for (int i = 0; i < RING; i++) {
		rs_hist_init(&run->ring[i].h);
		atomic_store(&run->ring[i].second, i);
	}
	run->running = run->nthreads;
	for (unsigned i = 0; i < run->nthreads; i++) {
		if (pthread_create(&run->w[i].th, NULL, worker_main, &run->w[i]) != 0) {
			/* the ones started stop at once; joined before freeing */
			atomic_store(&run->stop, true);
			pthread_mutex_lock(&run->lock);
			run->running -= run->nthreads - i;
			run->go = true;
			pthread_cond_broadcast(&run->cond);
			pthread_mutex_unlock(&run->lock);
			for (unsigned k = 0; k < i; k++)
				pthread_join(run->w[k].th, NULL);
			free_run(run);
			return rs_err_set(err, "cannot start a thread");
		}
	}
	pthread_mutex_lock(&run->lock);
	run->started_ms = rs_now_ms();
	run->t0_ns = now_ns();
	run->end_ns = st->duration_ms ? run->t0_ns + st->duration_ms * 1000000LL : INT64_MAX;
	run->go = true;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
	if (pthread_create(&run->clock, NULL, clock_main, run) != 0) {
		atomic_store(&run->stop, true);
		for (unsigned k = 0; k < run->nthreads; k++)
			pthread_join(run->w[k].th, NULL);
		free_run(run);
		return rs_err_set(err, "cannot start a thread");
	}
	*out = run;
	return 0;
oom:
	free_run(run);
	return rs_err_set(err, "out of memory");
}

void rs_lt_stop(struct rs_lt_run *run)
{
	atomic_store(&run->interrupted, true);
	atomic_store(&run->stop, true);
}

int rs_lt_wait(struct rs_lt_run *run, int64_t timeout_ms, struct rs_lt_progress *p)
{
	struct timespec ts;
	int over;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&run->lock);
	while (!atomic_load(&run->over) &&
	       pthread_cond_timedwait(&run->cond, &run->lock, &ts) == 0)
		;
	over = atomic_load(&run->over);
	if (p)
		*p = run->progress;
	pthread_mutex_unlock(&run->lock);
	return over;
}

void rs_lt_finish(struct rs_lt_run *run, struct rs_lt_result *out)
{
	memset(out, 0, sizeof(*out));
	atomic_store(&run->stop, true);
	for (unsigned i = 0; i < run->nthreads; i++)
		pthread_join(run->w[i].th, NULL);
	pthread_join(run->clock, NULL);

	out->settings = run->st;
	out->started_ms = run->started_ms;
	int64_t end = run->finished_ns < run->end_ns ? run->finished_ns : run->end_ns;
	out->elapsed_us = (end - run->t0_ns) / 1000;
	out->interrupted = atomic_load(&run->interrupted) && run->finished_ns < run->end_ns;
	stats_init(&out->total);
	out->nrequests = run->sc->nrequests;
	out->per_request = calloc(out->nrequests, sizeof(*out->per_request));
	for (unsigned i = 0; out->per_request && i < out->nrequests; i++)
		stats_init(&out->per_request[i]);
	for (unsigned i = 0; i < run->nthreads; i++) {
		struct worker *w = &run->w[i];
		stats_merge(&out->total, &w->total);
		for (unsigned k = 0; out->per_request && k < out->nrequests; k++)
			stats_merge(&out->per_request[k], &w->per_req[k]);
		out->late += w->late;
		out->unsent += w->unsent;
		out->unfinished += w->unfinished;
		out->intended += w->intended;
	}
	if (!out->per_request)
		out->nrequests = 0;
	out->seconds = run->seconds;
	out->nseconds = run->nseconds;
	run->seconds = NULL;
	free_run(run);
}
