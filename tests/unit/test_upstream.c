/* The upstream call path against a real HTTP server: tests/fakehwa/fakehwa,
 * started here as a child process and told over its control endpoints to
 * hang, fail or slow down.  Covers the pool (reuse under 8 threads,
 * exhaustion, idle closing), retries, the circuit breaker, health probes
 * and round robin over two servers.  Skips when fakehwa is not built.
 *
 * Where things are: $FAKEHWA, else $RS_TOP_BUILDDIR/tests/fakehwa/fakehwa,
 * else ./tests/fakehwa/fakehwa; fixtures $RS_TOP_SRCDIR/tests/fixtures/hwa,
 * else ./tests/fixtures/hwa.  The servers are killed at exit, on a bail
 * out and by the watchdog; if this process dies any other way they get
 * SIGTERM from the kernel (PR_SET_PDEATHSIG). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "pool.h"
#include "upstream.h"
#include "util.h"

#include "tap.h"
#include "testlib.h"

#define INFO_PATH "/twsd/api/v2/engine/info"
#define HANG_PATH "/twsd/api/v2/plan/current/job/HANG"
#define MAX_RESPONSE (1024 * 1024)
#define THREADS 8
#define CALLS_PER_THREAD 200
#define CHURN_THREADS 4
#define CHURN_CALLS 20
#define MISS_SLACK 4               /* misses allowed beyond max_size */
#define START_WAIT_MS 5000         /* for a server's port file */
#define WATCHDOG_S 300             /* generous: valgrind is slow */

struct server {
	pid_t pid;
	int port;
	char base[64];                 /* http://127.0.0.1:PORT */
	char portfile[TEST_PATH_MAX];
};

static struct server srv[2];
static struct tmpdir tmp;
static bool tmp_made;
static char fakehwa[TEST_PATH_MAX], fixtures[TEST_PATH_MAX];

/* ---- time ---- */

static void msleep(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the fake servers ---- */

static void stop_server(struct server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(s->pid, &status, WNOHANG) != 0) {
			s->pid = 0;
			return;
		}
		msleep(10);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

static void cleanup(void)
{
	for (size_t i = 0; i < RS_ARRAY_SIZE(srv); i++)
		stop_server(&srv[i]);
	if (tmp_made) {
		remove_tmpdir(&tmp);
		tmp_made = false;
	}
}

static void watchdog(int sig)
{
	static const char msg[] = "Bail out! test_upstream: watchdog fired, something hangs\n";

	(void)sig;
	for (size_t i = 0; i < RS_ARRAY_SIZE(srv); i++)
		if (srv[i].pid > 0)
			kill(srv[i].pid, SIGKILL);
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

static void bail(const char *fmt, ...) RS_PRINTF(1, 2);
static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(2);                       /* cleanup() runs: no orphan server */
}

static void start_server(struct server *s, const char *name)
{
	char *argv[] = { fakehwa, "-q", "-d", fixtures, "--port-file",
			 s->portfile, NULL };
	pid_t parent = getpid();
	int status;

	snprintf(s->portfile, sizeof(s->portfile), "%s/%s.port", tmp.path, name);
	fflush(stdout);
	s->pid = fork();
	if (s->pid < 0)
		bail("fork: %s", strerror(errno));
	if (s->pid == 0) {
		/* Only async-signal-safe calls until execv. */
		int fd = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		if (fd >= 0)
			dup2(fd, STDOUT_FILENO);   /* stdout is the TAP stream */
		execv(fakehwa, argv);
		_exit(127);
	}
	for (int64_t t0 = rs_monotonic_ms(); rs_monotonic_ms() - t0 < START_WAIT_MS;) {
		FILE *f = fopen(s->portfile, "r");

		if (f) {
			int port = 0;

			if (fscanf(f, "%d", &port) == 1 && port > 0) {
				fclose(f);
				s->port = port;
				snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", port);
				return;
			}
			fclose(f);
		}
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			bail("fakehwa %s exited (status 0x%x) before listening", fakehwa,
			     (unsigned)status);
		}
		msleep(10);
	}
	bail("fakehwa %s wrote no port file %s within %d ms", fakehwa, s->portfile,
	     START_WAIT_MS);
}

/* ---- control requests (plain libcurl, not the pool under test) ---- */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	return rs_buf_append(arg, data, size * n) ? 0 : size * n;
}

/* GET base + pathq; the body (malloc'd) of a 200, else bail out. */
static char *control(const struct server *s, const char *pathq)
{
	char url[512];
	struct rs_buf b;
	CURL *h = curl_easy_init();
	CURLcode rc;
	long status = 0;

	if (!h)
		bail("curl_easy_init failed");
	rs_buf_init(&b, 1 << 20);
	snprintf(url, sizeof(url), "%s%s", s->base, pathq);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK || status != 200) {
		printf("# %s: %s, HTTP %ld: %s\n", url, curl_easy_strerror(rc), status,
		       rs_buf_str(&b));
		rs_buf_free(&b);
		bail("control request %s failed", url);
	}
	return rs_buf_detach(&b);
}

static void fault(const struct server *s, const char *query)
{
	char pathq[256];

	snprintf(pathq, sizeof(pathq), "/_fault?%s", query);
	free(control(s, pathq));
}

static void reset(const struct server *s)
{
	free(control(s, "/_reset"));
}

struct fstats {
	long long requests, connections, open_connections, faults_applied;
	long long info;                /* requests for INFO_PATH */
};

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static void server_stats(const struct server *s, struct fstats *st)
{
	char *body = control(s, "/_stats");
	json_error_t jerr;
	json_t *root = json_loads(body, 0, &jerr);

	if (!json_is_object(root))
		bail("/_stats: not a JSON object: %s", body);
	st->requests = jint(root, "requests");
	st->connections = jint(root, "connections");
	st->open_connections = jint(root, "open_connections");
	st->faults_applied = jint(root, "faults_applied");
	st->info = jint(json_object_get(root, "paths"), INFO_PATH);
	if (st->info < 0)
		st->info = 0;           /* not asked for since the reset */
	json_decref(root);
	free(body);
}

/* ---- configuration ---- */

static struct rs_upstreams *upstreams(const char *name, const char *fmt, ...)
	RS_PRINTF(2, 3);
static struct rs_upstreams *upstreams(const char *name, const char *fmt, ...)
{
	static char *const empty_env[] = { NULL };
	struct rs_config_options opt = { NULL, empty_env, false };
	struct rs_err err = RS_ERR_INIT;
	struct rs_upstreams *ups;
	struct rs_config *cfg;
	struct rs_diags d;
	char path[TEST_PATH_MAX];
	va_list ap;
	FILE *f;

	join(path, &tmp, name);
	if (!(f = fopen(path, "w")))
		bail("%s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	rs_diags_init(&d);
	if (!(cfg = rs_config_load(path, &opt, &d, &err)))
		bail("load %s: %s", path, err.msg);
	if (d.errors) {
		for (size_t i = 0; i < d.n; i++)
			printf("#   %s: line %d: %s\n", name, d.v[i].line, d.v[i].msg);
		bail("%s: %zu configuration errors", name, d.errors);
	}
	if (rs_upstreams_new(&ups, cfg, MAX_RESPONSE, &err))
		bail("rs_upstreams_new from %s: %s", name, err.msg);
	/* upstreams copy what they keep: the config may go at once */
	rs_config_free(cfg);
	rs_diags_free(&d);
	return ups;
}

/* ---- calls ---- */

static int call(struct rs_upstreams *ups, struct rs_upstream *u,
		struct rs_breaker *b, const char *path, bool idempotent,
		int64_t within_ms, struct rs_call_result *res)
{
	struct rs_call c = {
		"GET", path, NULL, 0, idempotent, "test-upstream",
		rs_monotonic_ms() + within_ms,
	};

	return rs_upstream_call(ups, u, b, &c, res);
}

/* Is the body engine/info's JSON? */
static bool info_body(const struct rs_buf *body)
{
	json_error_t jerr;
	json_t *root;
	bool good;

	if (!body->data)
		return false;
	root = json_loadb(body->data, body->len, 0, &jerr);
	good = json_is_object(root) &&
	       json_is_string(json_object_get(root, "engineVersion"));
	json_decref(root);
	return good;
}

static const char *why(const struct rs_call_result *r)
{
	return r->message[0] ? r->message : "-";
}

/* Threads that make `calls` engine/info calls each, started together. */
struct worker {
	pthread_t tid;
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_breaker *b;
	pthread_barrier_t *start;
	int calls, good;
	char problem[400];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct rs_call_result res;

	pthread_barrier_wait(w->start);
	for (int i = 0; i < w->calls; i++) {
		int rc = call(w->ups, w->u, w->b, INFO_PATH, true, 5000, &res);

		if (rc == 0 && res.status == 200 && info_body(&res.body))
			w->good++;
		else if (!w->problem[0])
			snprintf(w->problem, sizeof(w->problem),
				 "call %d: rc %d, HTTP %ld, error %s, tries %u: %s", i, rc,
				 res.status, rs_call_error_name(res.error), res.tries, why(&res));
		rs_buf_free(&res.body);
	}
	return NULL;
}

/* Run n workers of `calls` each; the calls that got engine/info's JSON. */
static int run_workers(struct rs_upstreams *ups, struct rs_upstream *u,
		       struct rs_breaker *b, int n, int calls)
{
	struct worker w[THREADS];
	pthread_barrier_t start;
	int good = 0;

	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		w[i] = (struct worker){ .ups = ups, .u = u, .b = b, .start = &start,
					.calls = calls };
		if (pthread_create(&w[i].tid, NULL, work, &w[i]))
			bail("pthread_create failed");
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].tid, NULL);
		good += w[i].good;
		if (w[i].problem[0])
			printf("#   thread %d: %s\n", i, w[i].problem);
	}
	pthread_barrier_destroy(&start);
	return good;
}

/* ---- the cases ---- */

static void test_reuse(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_upstream_info in;
	struct fstats st;
	int64_t t0;
	int good;

	reset(&srv[0]);
	ups = upstreams("reuse.conf",
			"[upstream hwa]\nurl = %s\n[pool]\nmax_size = 4\nmin_size = 1\n",
			srv[0].base);
	u = rs_upstreams_find(ups, "hwa");
	ok(u != NULL, "reuse: [upstream hwa] exists");
	if (!u)
		bail("no upstream hwa");
	t0 = rs_monotonic_ms();
	good = run_workers(ups, u, rs_upstreams_breaker(ups, u, NULL), THREADS,
			   CALLS_PER_THREAD);
	printf("# reuse: %d calls in %lld ms\n", THREADS * CALLS_PER_THREAD,
	       (long long)(rs_monotonic_ms() - t0));
	is_int(good, THREADS * CALLS_PER_THREAD,
	       "reuse: 8 threads x 200 GETs all got 200 and engine/info's JSON");

	rs_upstream_info(u, &in);
	printf("# reuse: requests %llu hits %llu misses %llu creations %llu open %u\n",
	       (unsigned long long)in.pool.requests, (unsigned long long)in.pool.hits,
	       (unsigned long long)in.pool.misses, (unsigned long long)in.pool.creations,
	       in.pool.open);
	is_int(in.pool.requests, THREADS * CALLS_PER_THREAD,
	       "reuse: pool counted every request");
	is_int(in.pool.hits + in.pool.misses, in.pool.requests,
	       "reuse: hits + misses == requests");
	ok(in.pool.open >= 1 && in.pool.open <= 4, "reuse: 1 <= open <= max_size 4");
	is_int(in.pool.in_use, 0, "reuse: nothing in use afterwards");
	is_int(in.pool.waiting, 0, "reuse: nobody waiting afterwards");
	is_int(in.pool.exhaustions, 0,
	       "reuse: no exhaustion (connection_timeout 20s covers the queue)");
	ok(in.pool.misses <= 4 + MISS_SLACK &&
	   in.pool.hits >= in.pool.requests - 4 - MISS_SLACK,
	   "reuse: connections reused (misses <= max_size + 4)");
	is_int(in.calls, THREADS * CALLS_PER_THREAD, "reuse: upstream counted every call");
	is_int(in.retries, 0, "reuse: no retries");

	server_stats(&srv[0], &st);
	is_int(st.requests, THREADS * CALLS_PER_THREAD,
	       "reuse: the server got exactly 1600 requests");
	ok(st.connections >= 1 && st.connections <= 4 + MISS_SLACK,
	   "reuse: the server saw at most max_size + 4 connections");
	printf("#   server connections %lld\n", st.connections);
	rs_upstreams_free(ups);
}

struct holder {
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_breaker *b;
	int rc;
	enum rs_call_error error;
	unsigned tries;
	int64_t elapsed_ms;
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	struct rs_call_result res;
	int64_t t0 = rs_monotonic_ms();

	h->rc = call(h->ups, h->u, h->b, HANG_PATH, true, 2000, &res);
	h->elapsed_ms = rs_monotonic_ms() - t0;
	h->error = res.error;
	h->tries = res.tries;
	rs_buf_free(&res.body);
	return NULL;
}

static void test_exhaustion(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream_info in;
	struct rs_breaker_info bi;
	struct rs_call_result res;
	struct holder h = { 0 };
	struct fstats st;
	pthread_t tid;
	bool held = false;
	int64_t t0, el, cpu;
	int rc;

	reset(&srv[0]);
	ups = upstreams("exhaust.conf",
			"[upstream hwa]\nurl = %s\n[pool]\nmax_size = 1\nmin_size = 1\n"
			"connection_timeout = 100ms\n", srv[0].base);
	h.ups = ups;
	h.u = rs_upstreams_find(ups, "hwa");
	h.b = rs_upstreams_breaker(ups, h.u, NULL);
	fault(&srv[0], "mode=hang&path=" HANG_PATH);
	if (pthread_create(&tid, NULL, hold, &h))
		bail("pthread_create failed");

	/* until the hanging request holds the only connection */
	for (t0 = rs_monotonic_ms(); rs_monotonic_ms() - t0 < 1500; msleep(5)) {
		rs_upstream_info(h.u, &in);
		if (in.pool.in_use != 1)
			continue;
		server_stats(&srv[0], &st);
		if (st.faults_applied == 1) {
			held = true;
			break;
		}
	}
	ok(held, "exhaustion: the hanging call holds the only connection");

	t0 = rs_monotonic_ms();
	cpu = thread_cpu_ms();
	rc = call(ups, h.u, h.b, INFO_PATH, true, 5000, &res);
	cpu = thread_cpu_ms() - cpu;
	el = rs_monotonic_ms() - t0;
	printf("# exhaustion: refused after %lld ms (%lld ms of CPU): %s\n",
	       (long long)el, (long long)cpu, why(&res));
	is_int(rc, -1, "exhaustion: the call fails");
	is_str(rs_call_error_name(res.error), rs_call_error_name(RS_CALL_EXHAUSTED),
	       "exhaustion: error is RS_CALL_EXHAUSTED");
	has_str(res.message, "pool exhausted", "exhaustion: message says pool exhausted");
	ok(el >= 90 && el <= 1000,
	   "exhaustion: refused after connection_timeout 100ms (90..1000 ms), not the deadline");
	ok(cpu <= el / 2, "exhaustion: the waiting caller sleeps, it does not spin");
	is_int(res.tries, 1, "exhaustion: not retried");
	rs_upstream_info(h.u, &in);
	is_int(in.pool.exhaustions, 1, "exhaustion: counted once by the pool");
	rs_breaker_info(h.b, rs_monotonic_ms(), &bi);
	ok(bi.failures == 0 && bi.ignored == 1,
	   "exhaustion: ignored by the breaker, not a failure");
	server_stats(&srv[0], &st);
	is_int(st.info, 0, "exhaustion: the refused call never reached the server");

	fault(&srv[0], "mode=none");
	pthread_join(tid, NULL);
	printf("# exhaustion: the hanging call ended after %lld ms: rc %d, %s\n",
	       (long long)h.elapsed_ms, h.rc, rs_call_error_name(h.error));
	ok(h.rc == -1 && h.error == RS_CALL_TIMEOUT,
	   "exhaustion: the hanging call times out");
	ok(h.elapsed_ms >= 1900 && h.elapsed_ms <= 3000,
	   "exhaustion: ... at its deadline of 2 s");

	rc = call(ups, h.u, h.b, INFO_PATH, true, 5000, &res);
	ok(rc == 0 && res.status == 200 && info_body(&res.body),
	   "exhaustion: a later call succeeds");
	if (rc)
		printf("#   %s\n", why(&res));
	rs_buf_free(&res.body);
	rs_upstream_info(h.u, &in);
	is_int(in.pool.closures[RS_POOL_CLOSE_ERROR], 1,
	       "exhaustion: the timed-out connection was closed (reason error)");
	ok(in.pool.in_use == 0 && in.pool.open <= 1, "exhaustion: pool back to idle");
	rs_upstreams_free(ups);
}

/* Contention on one connection: every call either gets its answer or is
 * refused with RS_CALL_EXHAUSTED, and the counters add up. */
struct churner {
	pthread_t tid;
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	pthread_barrier_t *start;
	int answered, exhausted, other;
	char problem[400];
};

static void *churn(void *arg)
{
	struct churner *w = arg;
	struct rs_call_result res;

	pthread_barrier_wait(w->start);
	for (int i = 0; i < CHURN_CALLS; i++) {
		int rc = call(w->ups, w->u, NULL, INFO_PATH, true, 5000, &res);

		if (rc == 0 && res.status == 200)
			w->answered++;
		else if (rc == -1 && res.error == RS_CALL_EXHAUSTED &&
			 strstr(res.message, "pool exhausted"))
			w->exhausted++;
		else if (w->other++ == 0)
			snprintf(w->problem, sizeof(w->problem),
				 "call %d: rc %d, HTTP %ld, error %s: %s", i, rc,
				 res.status, rs_call_error_name(res.error), why(&res));
		rs_buf_free(&res.body);
	}
	return NULL;
}

static void test_contention(void)
{
	struct churner w[CHURN_THREADS];
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_upstream_info in;
	pthread_barrier_t start;
	struct fstats st;
	int answered = 0, exhausted = 0, other = 0;

	reset(&srv[0]);
	ups = upstreams("contention.conf",
			"[upstream hwa]\nurl = %s\n[pool]\nmax_size = 1\nmin_size = 1\n"
			"connection_timeout = 1ms\n", srv[0].base);
	u = rs_upstreams_find(ups, "hwa");
	/* each answer holds the connection 5 ms, far past the 1 ms wait */
	fault(&srv[0], "mode=latency&ms=5&path=" INFO_PATH);
	pthread_barrier_init(&start, NULL, CHURN_THREADS);
	for (int i = 0; i < CHURN_THREADS; i++) {
		w[i] = (struct churner){ .ups = ups, .u = u, .start = &start };
		if (pthread_create(&w[i].tid, NULL, churn, &w[i]))
			bail("pthread_create failed");
	}
	for (int i = 0; i < CHURN_THREADS; i++) {
		pthread_join(w[i].tid, NULL);
		answered += w[i].answered;
		exhausted += w[i].exhausted;
		other += w[i].other;
		if (w[i].problem[0])
			printf("#   thread %d: %s\n", i, w[i].problem);
	}
	pthread_barrier_destroy(&start);
	fault(&srv[0], "mode=none");
	printf("# contention: %d answered, %d exhausted, %d other\n", answered,
	       exhausted, other);
	is_int(other, 0, "contention: every call answered or refused as exhausted");
	ok(answered >= 1 && exhausted >= 1, "contention: ... and both happened");
	rs_upstream_info(u, &in);
	is_int(in.pool.requests, answered, "contention: pool requests == answered calls");
	is_int(in.pool.exhaustions, exhausted, "contention: pool exhaustions == refused calls");
	ok(in.pool.in_use == 0 && in.pool.waiting == 0 && in.pool.open <= 1,
	   "contention: nothing in use or waiting afterwards, open <= 1");
	server_stats(&srv[0], &st);
	is_int(st.requests, answered, "contention: the server got only the answered calls");
	rs_upstreams_free(ups);
}

static void test_retries(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_upstream_info in;
	struct rs_call_result res;
	struct fstats st;
	int64_t t0, el;
	int rc;

	reset(&srv[0]);
	ups = upstreams("retry.conf",
			"[upstream hwa]\nurl = %s\n[retry]\nattempts = 3\nbase = 1ms\ncap = 2ms\n",
			srv[0].base);
	u = rs_upstreams_find(ups, "hwa");

	fault(&srv[0], "mode=status&status=503&count=2");
	t0 = rs_monotonic_ms();
	rc = call(ups, u, rs_upstreams_breaker(ups, u, NULL), INFO_PATH, true, 5000, &res);
	el = rs_monotonic_ms() - t0;
	ok(rc == 0 && res.status == 200 && info_body(&res.body),
	   "retries: two 503s then the answer");
	if (rc || res.status != 200)
		printf("#   rc %d, HTTP %ld: %s\n", rc, res.status, why(&res));
	is_int(res.tries, 3, "retries: tries == 3");
	ok(el < 1000, "retries: backoff from [retry] base 1ms / cap 2ms");
	printf("#   3 tries in %lld ms\n", (long long)el);
	rs_buf_free(&res.body);
	server_stats(&srv[0], &st);
	ok(st.requests == 3 && st.faults_applied == 2,
	   "retries: the server got 3 requests, 2 of them faulted");
	rs_upstream_info(u, &in);
	is_int(in.retries, 2, "retries: upstream counted 2 retries");

	fault(&srv[0], "mode=status&status=500");
	rc = call(ups, u, rs_upstreams_breaker(ups, u, NULL), INFO_PATH, true, 5000, &res);
	ok(rc == 0 && res.status == 500, "retries: a 500 is an answer (rc 0, HTTP 500)");
	is_int(res.tries, 1, "retries: a 500 is not retried");
	rs_buf_free(&res.body);

	fault(&srv[0], "mode=status&status=503");
	rc = call(ups, u, rs_upstreams_breaker(ups, u, NULL), INFO_PATH, false, 5000, &res);
	ok(rc == 0 && res.status == 503 && res.tries == 1,
	   "retries: a non-idempotent call is not retried, even on 503");
	rs_buf_free(&res.body);
	server_stats(&srv[0], &st);
	is_int(st.requests, 5, "retries: the server got 5 requests in all");
	fault(&srv[0], "mode=none");
	rs_upstreams_free(ups);
}

static void test_breaker(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_breaker *b;
	struct rs_breaker_info bi;
	struct rs_call_result res;
	struct fstats st;
	int rc1, rc2, rc;
	long s1, s2;

	reset(&srv[0]);
	ups = upstreams("breaker.conf",
			"[upstream hwa]\nurl = %s\n"
			"[breaker hwa]\nupstream = hwa\nfail_max = 2\nopen_duration = 200ms\n",
			srv[0].base);
	u = rs_upstreams_find(ups, "hwa");
	b = rs_upstreams_breaker(ups, u, NULL);
	is_str(b ? rs_breaker_name(b) : NULL, "hwa", "breaker: [breaker hwa] guards the upstream");
	if (!b)
		bail("no breaker");

	fault(&srv[0], "mode=status&status=500");
	rc1 = call(ups, u, b, INFO_PATH, true, 5000, &res);
	s1 = res.status;
	rs_buf_free(&res.body);
	rc2 = call(ups, u, b, INFO_PATH, true, 5000, &res);
	s2 = res.status;
	rs_buf_free(&res.body);
	ok(rc1 == 0 && s1 == 500 && rc2 == 0 && s2 == 500,
	   "breaker: two calls get the 500s");
	rc = call(ups, u, b, INFO_PATH, true, 5000, &res);
	is_int(rc, -1, "breaker: the third call fails");
	ok(res.breaker_open && res.status == 0 && res.tries == 0,
	   "breaker: ... refused by the open breaker, no try made");
	ok(res.retry_after_ms > 0 && res.retry_after_ms <= 200,
	   "breaker: ... with retry_after within open_duration");
	has_str(res.message, "circuit breaker hwa is open", "breaker: ... and says so");
	rs_buf_free(&res.body);
	server_stats(&srv[0], &st);
	is_int(st.requests, 2, "breaker: the refused call never reached the server");
	rs_breaker_info(b, rs_monotonic_ms(), &bi);
	ok(bi.state == RS_BREAKER_OPEN && bi.opened == 1 && bi.rejected == 1,
	   "breaker: open, opened once, one call rejected");

	msleep(250);
	fault(&srv[0], "mode=none");
	rc = call(ups, u, b, INFO_PATH, true, 5000, &res);
	ok(rc == 0 && res.status == 200 && !res.breaker_open && info_body(&res.body),
	   "breaker: after open_duration a trial call succeeds");
	if (rc)
		printf("#   %s\n", why(&res));
	rs_buf_free(&res.body);
	rs_breaker_info(b, rs_monotonic_ms(), &bi);
	is_str(rs_breaker_state_name(bi.state), rs_breaker_state_name(RS_BREAKER_CLOSED),
	       "breaker: closed again");
	rs_upstreams_free(ups);
}

static void test_probe(void)
{
	struct rs_upstreams *ups;
	struct rs_probe pr;

	ups = upstreams("probe.conf",
			"[upstream dead]\nurl = http://127.0.0.1:1\nconnect_timeout = 2s\n"
			"[upstream hwa]\nurl = %s\nhealth_check_path = " INFO_PATH "\n"
			"[upstream base]\nurl = %s/\n",
			srv[0].base, srv[0].base);

	rs_upstream_probe(rs_upstreams_find(ups, "dead"), 0, &pr);
	ok(!pr.ok, "probe: a dead endpoint is not ok");
	is_str(rs_call_error_name(pr.error), rs_call_error_name(RS_CALL_CONNECT),
	       "probe: ... error RS_CALL_CONNECT");
	is_int(pr.status, 0, "probe: ... no status");
	has_str(pr.message, "127.0.0.1:1", "probe: ... message names the endpoint");
	is_str(pr.url, "http://127.0.0.1:1", "probe: ... url is the endpoint's");

	rs_upstream_probe(rs_upstreams_find(ups, "hwa"), 0, &pr);
	ok(pr.ok && pr.status == 200 && pr.error == RS_CALL_OK,
	   "probe: the live endpoint's health_check_path is ok, 200");
	if (!pr.ok)
		printf("#   %s\n", pr.message);
	ok(pr.latency_ms >= 0 && pr.latency_ms < 2000, "probe: ... with a latency");

	/* no health_check_path: the base URL, any answer below 500 (a 404
	 * here); the trailing slash of the url is dropped */
	rs_upstream_probe(rs_upstreams_find(ups, "base"), 0, &pr);
	ok(pr.ok && pr.status == 404,
	   "probe: without health_check_path the base URL's 404 is ok");
	is_str(pr.url, srv[0].base, "probe: ... the url's trailing slash dropped");
	rs_upstreams_free(ups);
}

static void test_idle(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_upstream_info in;
	struct rs_call_result res;
	struct fstats st;
	uint64_t hits;
	int good, rc;

	reset(&srv[0]);
	ups = upstreams("idle.conf",
			"[upstream hwa]\nurl = %s\n[pool]\nmax_size = 4\nmin_size = 1\n"
			"idle_timeout = 1s\n", srv[0].base);
	u = rs_upstreams_find(ups, "hwa");
	/* 4 slow calls at once: 4 connections */
	fault(&srv[0], "mode=latency&ms=150&path=" INFO_PATH);
	good = run_workers(ups, u, NULL, 4, 1);
	fault(&srv[0], "mode=none");
	is_int(good, 4, "idle: 4 slow calls at once succeed");
	rs_upstream_info(u, &in);
	ok(in.pool.open == 4 && in.pool.idle == 4, "idle: ... leaving 4 idle connections");

	rs_upstreams_maintain(ups, rs_monotonic_ms());
	rs_upstream_info(u, &in);
	ok(in.pool.closures[RS_POOL_CLOSE_IDLE] == 0 && in.pool.open == 4,
	   "idle: maintain closes nothing before idle_timeout");

	msleep(1100);
	rs_upstreams_maintain(ups, rs_monotonic_ms());
	rs_upstream_info(u, &in);
	printf("# idle: closures idle %llu, open %u\n",
	       (unsigned long long)in.pool.closures[RS_POOL_CLOSE_IDLE], in.pool.open);
	ok(in.pool.closures[RS_POOL_CLOSE_IDLE] > 0,
	   "idle: maintain closed idle connections after idle_timeout");
	is_int(in.pool.closures[RS_POOL_CLOSE_IDLE], 3, "idle: ... the 3 above min_size");
	is_int(in.pool.open, 1, "idle: ... keeping min_size 1 open");
	for (int64_t t0 = rs_monotonic_ms(); rs_monotonic_ms() - t0 < 1000; msleep(10)) {
		server_stats(&srv[0], &st);
		if (st.open_connections == 1)
			break;
	}
	is_int(st.open_connections, 1, "idle: the server sees 1 connection left open");

	hits = in.pool.hits;
	rc = call(ups, u, NULL, INFO_PATH, true, 5000, &res);
	rs_upstream_info(u, &in);
	ok(rc == 0 && res.status == 200 && in.pool.hits == hits + 1,
	   "idle: the kept connection still serves, reused");
	rs_buf_free(&res.body);
	rs_upstreams_free(ups);
}

static void test_round_robin(void)
{
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_upstream_info in;
	struct fstats a, b;
	int good;

	reset(&srv[0]);
	reset(&srv[1]);
	ups = upstreams("rr.conf",
			"[upstream hwa]\nurl = %s, %s\nstrategy = round_robin\n",
			srv[0].base, srv[1].base);
	u = rs_upstreams_find(ups, "hwa");
	good = run_workers(ups, u, rs_upstreams_breaker(ups, u, NULL), 4, 25);
	is_int(good, 100, "round robin: 100 calls over two endpoints succeed");
	server_stats(&srv[0], &a);
	server_stats(&srv[1], &b);
	printf("# round robin: %lld / %lld\n", a.requests, b.requests);
	ok(a.requests == 50 && b.requests == 50, "round robin: the servers got 50 and 50");
	rs_upstream_info(u, &in);
	ok(in.nendpoints == 2 && in.endpoint[0].calls == 50 && in.endpoint[1].calls == 50,
	   "round robin: endpoint calls 50 and 50");
	rs_upstreams_free(ups);
}

static void find_paths(void)
{
	const char *env = getenv("FAKEHWA"), *build = getenv("RS_TOP_BUILDDIR"),
		   *src = getenv("RS_TOP_SRCDIR");

	if (env && *env)
		snprintf(fakehwa, sizeof(fakehwa), "%s", env);
	else if (build && *build)
		snprintf(fakehwa, sizeof(fakehwa), "%s/tests/fakehwa/fakehwa", build);
	else
		snprintf(fakehwa, sizeof(fakehwa), "./tests/fakehwa/fakehwa");
	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/hwa",
		 src && *src ? src : ".");
}

int main(void)
{
	struct rs_err err = RS_ERR_INIT;
	char probe[TEST_PATH_MAX + 32];
	struct {
		const char *name;
		void (*run)(void);
	} cases[] = {
		{ "reuse", test_reuse },
		{ "exhaustion", test_exhaustion },
		{ "contention", test_contention },
		{ "retries", test_retries },
		{ "breaker", test_breaker },
		{ "probe", test_probe },
		{ "idle", test_idle },
		{ "round robin", test_round_robin },
	};
	int64_t start = rs_monotonic_ms();

	find_paths();
	if (access(fakehwa, X_OK) != 0) {
		printf("1..0 # SKIP fakehwa not built\n");
		return 0;
	}
	snprintf(probe, sizeof(probe), "%s%s.json", fixtures, INFO_PATH);
	if (access(probe, R_OK) != 0) {
		printf("Bail out! no HWA fixtures at %s\n", fixtures);
		return 2;
	}
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG_S);
	json_object_seed(0);           /* before threads, as jansson asks */
	if (rs_pool_global_init(&err))
		bail("%s", err.msg);
	if (make_tmpdir(&tmp, "upstream") < 0)
		bail("mkdtemp: %s", strerror(errno));
	tmp_made = true;
	atexit(cleanup);
	start_server(&srv[0], "a");
	start_server(&srv[1], "b");
	printf("# fakehwa %s on ports %d and %d\n", fakehwa, srv[0].port, srv[1].port);

	for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
		int64_t t0 = rs_monotonic_ms();

		cases[i].run();
		printf("# %s: %lld ms\n", cases[i].name, (long long)(rs_monotonic_ms() - t0));
	}
	cleanup();
	curl_global_cleanup();
	printf("# total %lld ms\n", (long long)(rs_monotonic_ms() - start));
	return tap_done();
}
