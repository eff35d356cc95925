/*
 * pool: leased CURL easy handles, one connection each (see pool.h).
 */
#include "pool.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Lifetime jitter: up to 1/40 (2.5%) of max_lifetime is taken off each
 * connection's lifetime, as HikariCP does. */
#define LIFETIME_JITTER_DIV 40

struct conn {
	CURL *h;
	struct rs_pool *pool;
	size_t ep;
	int sockets;                      /* open sockets (0 or 1) */
	int64_t opened_ms;                /* when its socket was opened */
	int64_t lifetime_ms;              /* jittered max_lifetime */
	int64_t idle_since_ms, leased_ms;
	enum rs_pool_close_reason closing;/* set before curl_easy_cleanup */
	unsigned closed_in_transfer;      /* closed by libcurl during one */
	bool leak_reported;
	char request_id[RS_POOL_REQUEST_ID_MAX];
	struct conn *next, *prev;         /* idle list of ep, or leased list */
	/* per transfer */
	struct rs_http_response *resp;
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers;
};

struct endpoint {
	char *url;
	struct conn *idle;                /* most recently used first */
	unsigned open, in_use;
};

struct rs_pool {
	struct rs_pool_options o;         /* strings copied below */
	char *name, *ca_file, *tls_cert, *tls_key, *username, *password;
	char *auth_header;                /* "Authorization: Bearer ..." or NULL */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t lock;             /* everything below */
	pthread_cond_t freed;             /* a handle came back or was closed */
	struct endpoint ep[RS_POOL_MAX_ENDPOINTS];
	size_t nep;
	struct conn *leased;
	unsigned open, in_use, waiting;
	uint64_t next_ticket, serving;    /* FIFO order of waiters */
	uint64_t hits, misses, creations, exhaustions, requests, errors, leaks;
	uint64_t closures[RS_POOL_CLOSE_NREASONS];
	uint64_t rng;

	struct rs_hist acquire_wait_us, request_us;
};

static const char *const close_names[RS_POOL_CLOSE_NREASONS] = {
	"idle", "lifetime", "error", "remote", "rebalance", "shutdown",
};

const char *rs_pool_close_reason_name(enum rs_pool_close_reason r)
{
	return (unsigned)r < RS_POOL_CLOSE_NREASONS ? close_names[r] : "unknown";
}

int rs_pool_global_init(struct rs_err *err)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK)
		return rs_err_set(err, "cannot initialise libcurl: %s",
				  curl_easy_strerror(rc));
	return 0;
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
	struct rs_pool *p = arg;

	(void)h;
	(void)a;
	pthread_mutex_lock(&p->share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	struct rs_pool *p = arg;

	(void)h;
	pthread_mutex_unlock(&p->share_locks[d]);
}

static char *dup_or_null(const char *s, bool *failed)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*failed = true;
	return d;
}

int rs_pool_new(struct rs_pool **out, const struct rs_pool_options *o,
		struct rs_err *err)
{
	struct rs_pool *p;
	bool failed = false;

	*out = NULL;
	if (o->nendpoints < 1 || o->nendpoints > RS_POOL_MAX_ENDPOINTS)
		return rs_err_set(err, "upstream %s: %zu endpoints (1 to %d allowed)",
				  o->name, o->nendpoints, RS_POOL_MAX_ENDPOINTS);
	if (!(p = calloc(1, sizeof(*p))))
		return rs_err_set(err, "out of memory");
	p->o = *o;
	p->name = dup_or_null(o->name, &failed);
	p->ca_file = dup_or_null(o->ca_file, &failed);
	p->tls_cert = dup_or_null(o->tls_cert, &failed);
	p->tls_key = dup_or_null(o->tls_key, &failed);
	p->username = dup_or_null(o->username, &failed);
	p->password = dup_or_null(o->password, &failed);
	if (o->bearer_token && asprintf(&p->auth_header, "Authorization: Bearer %s",
					 o->bearer_token) < 0) {
		p->auth_header = NULL;
		failed = true;
	}
	p->nep = o->nendpoints;
	for (size_t i = 0; i < p->nep; i++)
		p->ep[i].url = dup_or_null(o->urls[i], &failed);
	if (!p->o.max_per_endpoint || p->o.max_per_endpoint > p->o.max_size)
		p->o.max_per_endpoint = p->o.max_size;
	p->rng = (uint64_t)rs_monotonic_us() * 0x9E3779B97F4A7C15ULL | 1;
	pthread_mutex_init(&p->lock, NULL);
	/* waits are timed on the monotonic clock (rs_deadline_after) */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->share_locks[i], NULL);
	rs_hist_init(&p->acquire_wait_us);
	rs_hist_init(&p->request_us);
	if (!failed && (p->share = curl_share_init())) {
		curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
		curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
		curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
		curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	} else {
		failed = true;
	}
	if (failed) {
		rs_pool_free(p);
		return rs_err_set(err, "out of memory");
	}
	*out = p;
	return 0;
}

static curl_socket_t on_open(void *arg, curlsocktype purpose,
			     struct curl_sockaddr *a)
{
	struct conn *c = arg;
	curl_socket_t fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		return fd;
	c->sockets++;
	c->opened_ms = rs_monotonic_ms();
	pthread_mutex_lock(&c->pool->lock);
	c->pool->creations++;
	pthread_mutex_unlock(&c->pool->lock);
	return fd;
}

/* libcurl closes a connection itself when the server dropped it or a
 * transfer broke it; we close it on purpose only through close_conn,
 * which sets `closing` first. */
static int on_close(void *arg, curl_socket_t fd)
{
	struct conn *c = arg;
	enum rs_pool_close_reason why = c->closing;

	c->sockets--;
	/* inside a transfer: counted when it ends, as an error if it failed,
	 * else as the server's doing (a kept-alive connection it dropped) */
	if (c->resp) {
		c->closed_in_transfer++;
		return close(fd);
	}
	pthread_mutex_lock(&c->pool->lock);
	c->pool->closures[why]++;
	pthread_mutex_unlock(&c->pool->lock);
	c->closing = RS_POOL_CLOSE_REMOTE;
	return close(fd);
}

static uint64_t next_random(struct rs_pool *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

/* Called with p->lock held; the handle is set up outside it. */
static struct conn *conn_alloc(struct rs_pool *p, size_t ep)
{
	struct conn *c = calloc(1, sizeof(*c));
	int64_t jitter = p->o.max_lifetime_ms / LIFETIME_JITTER_DIV;

	if (!c)
		return NULL;
	c->pool = p;
	c->ep = ep;
	c->closing = RS_POOL_CLOSE_REMOTE;
	c->lifetime_ms = p->o.max_lifetime_ms -
			 (jitter > 0 ? (int64_t)(next_random(p) % (uint64_t)jitter) : 0);
	return c;
}

static int conn_init_handle(struct rs_pool *p, struct conn *c)
{
	CURL *h = curl_easy_init();

	if (!h)
		return -1;
	c->h = h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SHARE, p->share);
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)p->o.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, p->o.tcp_keepalive ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p->o.verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p->o.verify_tls ? 2L : 0L);
	if (p->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_file);
	if (p->tls_cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, p->tls_cert);
	if (p->tls_key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, p->tls_key);
	if (p->username) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, p->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, p->password ? p->password : "");
	}
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	return 0;
}

/* Close c (not in any list) and count why. */
static void conn_close(struct conn *c, enum rs_pool_close_reason why)
{
	c->closing = why;
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c);
}

/* Take c out of the list whose head is *list (an endpoint's idle list or
 * the pool's leased list). */
static void unlink_conn(struct conn **list, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void push_front(struct conn **list, struct conn *c)
{
	c->prev = NULL;
	c->next = *list;
	if (*list)
		(*list)->prev = c;
	*list = c;
}

/* An idle handle of another endpoint, to close for room; lock held. */
static struct conn *take_other_idle(struct rs_pool *p, size_t ep)
{
	for (size_t i = 0; i < p->nep; i++) {
		struct conn *c = p->ep[i].idle;

		if (i == ep || !c)
			continue;
		while (c->next)         /* the least recently used */
			c = c->next;
		unlink_conn(&p->ep[i].idle, c);
		p->ep[i].open--;
		p->open--;
		return c;
	}
	return NULL;
}

static void release(struct rs_pool *p, struct conn *c,
		    enum rs_pool_close_reason why);

static void lease(struct rs_pool *p, struct conn *c, const char *rid,
		  int64_t now_ms)
{
	p->ep[c->ep].in_use++;
	p->in_use++;
	c->leased_ms = now_ms;
	c->leak_reported = false;
	rs_copy_text(c->request_id, sizeof(c->request_id), rid ? rid : "");
	push_front(&p->leased, c);
}

/* Lease a handle for ep by deadline_ms; NULL when none came in time
 * (*exhausted) or on out of memory.  Waiters sleep on one condition
 * variable and each wake-up re-checks: no strict FIFO, but every waiter
 * gives up at its own deadline, so none waits unbounded. */
static struct conn *acquire(struct rs_pool *p, size_t ep, const char *rid,
			    int64_t deadline_ms, bool warm, bool *exhausted,
			    unsigned *in_use)
{
	struct endpoint *e = &p->ep[ep];
	struct conn *c = NULL, *victim = NULL;
	bool fresh = false;

	*exhausted = false;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (warm && p->open >= p->o.min_size)
			break;
		if (!warm && (c = e->idle)) {
			unlink_conn(&e->idle, c);
			break;
		}
		if (e->open < p->o.max_per_endpoint &&
		    (p->open < p->o.max_size ||
		     (victim = take_other_idle(p, ep)))) {
			if (!(c = conn_alloc(p, ep)))
				break;
			e->open++;
			p->open++;
			fresh = true;
			break;
		}
		int64_t now = rs_monotonic_ms();
		if (warm)
			break;
		if (now >= deadline_ms) {
			*exhausted = true;
			p->exhaustions++;
			break;
		}
		struct timespec ts;
		rs_deadline_after(&ts, CLOCK_MONOTONIC, deadline_ms - now);
		p->waiting++;
		pthread_cond_timedwait(&p->freed, &p->lock, &ts);
		p->waiting--;
	}
	if (c)
		lease(p, c, rid, rs_monotonic_ms());
	*in_use = p->in_use;
	pthread_mutex_unlock(&p->lock);
	if (victim)
		conn_close(victim, RS_POOL_CLOSE_REBALANCE);
	if (c && fresh && conn_init_handle(p, c)) {
		release(p, c, RS_POOL_CLOSE_ERROR);
		return NULL;
	}
	return c;
}

/* Hand c back: kept idle when keep is RS_POOL_CLOSE_NREASONS and it is
 * within its lifetime, else closed for that reason. */
static void release(struct rs_pool *p, struct conn *c,
		    enum rs_pool_close_reason why)
{
	int64_t now = rs_monotonic_ms();
	bool keep = why == RS_POOL_CLOSE_NREASONS;

	if (keep && c->sockets > 0 && now - c->opened_ms >= c->lifetime_ms) {
		keep = false;
		why = RS_POOL_CLOSE_LIFETIME;
	}
	pthread_mutex_lock(&p->lock);
	unlink_conn(&p->leased, c);
	p->ep[c->ep].in_use--;
	p->in_use--;
	if (keep) {
		c->idle_since_ms = now;
		push_front(&p->ep[c->ep].idle, c);
	} else {
		p->ep[c->ep].open--;
		p->open--;
	}
	pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->lock);
	if (!keep)
		conn_close(c, why);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct conn *c = arg;

	if (rs_buf_append(&c->resp->body, data, n))
		return 0;       /* over max_response_bytes: abort the transfer */
	(void)size;
	return n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct conn *c = arg;
	static const char name[] = "retry-after:";
	size_t len = n, skip = sizeof(name) - 1;

	(void)size;
	if (len > skip && strncasecmp(data, name, skip) == 0) {
		while (skip < len && (data[skip] == ' ' || data[skip] == '\t'))
			skip++;
		while (len > skip && (data[len - 1] == '\r' || data[len - 1] == '\n' ||
				      data[len - 1] == ' '))
			len--;
		if (len - skip < sizeof(c->resp->retry_after)) {
			memcpy(c->resp->retry_after, data + skip, len - skip);
			c->resp->retry_after[len - skip] = '\0';
		}
	}
	return n;
}

static enum rs_call_error classify(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return RS_CALL_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return RS_CALL_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CLIENTCERT:
		return RS_CALL_TLS;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return RS_CALL_RESET;
	default:
		return RS_CALL_PARTIAL;
	}
}

static void set_request(struct rs_pool *p, struct conn *c,
			const struct rs_http_request *req, int64_t timeout_ms,
			char *url, size_t urlsz)
{
	CURL *h = c->h;
	char hdr[RS_POOL_REQUEST_ID_MAX + 16];

	snprintf(url, urlsz, "%s%s", p->ep[c->ep].url, req->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	c->headers = curl_slist_append(NULL, "Accept: application/json");
	if (p->auth_header)
		c->headers = curl_slist_append(c->headers, p->auth_header);
	if (req->request_id && req->request_id[0]) {
		snprintf(hdr, sizeof(hdr), "X-Request-ID: %s", req->request_id);
		c->headers = curl_slist_append(c->headers, hdr);
	}
	if (strcmp(req->method, "POST") == 0) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %.60s",
			 req->content_type ? req->content_type : "application/json");
		c->headers = curl_slist_append(c->headers, hdr);
		curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body ? req->body_len : 0));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(req->method, "HEAD") == 0 ? 1L : 0L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
}

static int perform(struct rs_pool *p, size_t ep,
		   const struct rs_http_request *req, int64_t deadline_ms,
		   bool warm, struct rs_http_response *resp)
{
	int64_t start_us = rs_monotonic_us(), lease_deadline, now;
	struct conn *c;
	bool exhausted;
	char url[2048];
	CURLcode rc;
	long connects = 0;

	memset(resp, 0, sizeof(*resp));
	rs_buf_init(&resp->body, p->o.max_response_bytes);
	lease_deadline = rs_sat_add(rs_monotonic_ms(), p->o.connection_timeout_ms);
	if (lease_deadline > deadline_ms)
		lease_deadline = deadline_ms;
	unsigned in_use;
	c = acquire(p, ep, req->request_id, lease_deadline, warm, &exhausted, &in_use);
	now = rs_monotonic_us();
	resp->wait_us = now - start_us;
	rs_hist_record(&p->acquire_wait_us, (uint64_t)resp->wait_us);
	if (!c && warm) {
		resp->error = RS_CALL_EXHAUSTED;
		snprintf(resp->message, sizeof(resp->message), "warm");
		return 1;
	}
	if (!c) {
		resp->error = exhausted ? RS_CALL_EXHAUSTED : RS_CALL_CONNECT;
		snprintf(resp->message, sizeof(resp->message), exhausted ?
			 "upstream %s: pool exhausted: no free connection within %lld ms (%u of max_size %u in use)" :
			 "upstream %s: cannot set up a connection: out of memory",
			 p->name, (long long)((now - start_us) / 1000),
			 in_use, p->o.max_size);
		return -1;
	}
	c->resp = resp;
	c->errbuf[0] = '\0';
	int64_t timeout = req->timeout_ms;
	if (timeout <= 0 || timeout > deadline_ms - now / 1000)
		timeout = deadline_ms - now / 1000;
	set_request(p, c, req, timeout, url, sizeof(url));
	rc = timeout > 0 ? curl_easy_perform(c->h) : CURLE_OPERATION_TIMEDOUT;
	resp->duration_us = rs_monotonic_us() - now;
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	c->resp = NULL;
	unsigned closed = c->closed_in_transfer;
	c->closed_in_transfer = 0;
	curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &connects);
	resp->reused = rc == CURLE_OK && connects == 0;
	rs_hist_record(&p->request_us, (uint64_t)resp->duration_us);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &resp->status);
	else {
		resp->error = rc == CURLE_WRITE_ERROR ? RS_CALL_PARTIAL : classify(rc);
		snprintf(resp->message, sizeof(resp->message), "upstream %.32s: %.96s: %.100s",
			 p->name, url, rc == CURLE_WRITE_ERROR ?
			 "answer larger than the largest cacheable value" :
			 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	}
	pthread_mutex_lock(&p->lock);
	p->closures[rc == CURLE_OK ? RS_POOL_CLOSE_REMOTE : RS_POOL_CLOSE_ERROR] += closed;
	p->requests++;
	p->errors += rc != CURLE_OK;
	if (resp->reused)
		p->hits++;
	else
		p->misses++;
	pthread_mutex_unlock(&p->lock);
	release(p, c, rc == CURLE_OK ? RS_POOL_CLOSE_NREASONS : RS_POOL_CLOSE_ERROR);
	return rc == CURLE_OK ? 0 : -1;
}

int rs_pool_perform(struct rs_pool *p, size_t ep,
		    const struct rs_http_request *req, int64_t deadline_ms,
		    struct rs_http_response *resp)
{
	return perform(p, ep, req, deadline_ms, false, resp);
}

int rs_pool_warm(struct rs_pool *p, size_t ep, const struct rs_http_request *req,
		 int64_t deadline_ms, struct rs_http_response *resp)
{
	return perform(p, ep, req, deadline_ms, true, resp);
}

void rs_pool_maintain(struct rs_pool *p, int64_t now_ms)
{
	struct conn *doomed = NULL, *c, *next;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nep; i++) {
		/* idle lists are most recent first: expire from the tail */
		for (c = p->ep[i].idle; c; c = next) {
			next = c->next;
			bool old = c->sockets > 0 && now_ms - c->opened_ms >= c->lifetime_ms;
			bool idle = now_ms - c->idle_since_ms >= p->o.idle_timeout_ms &&
				    p->open > p->o.min_size;
			if (!old && !idle)
				continue;
			unlink_conn(&p->ep[i].idle, c);
			p->ep[i].open--;
			p->open--;
			c->closing = old ? RS_POOL_CLOSE_LIFETIME : RS_POOL_CLOSE_IDLE;
			c->next = doomed;
			doomed = c;
		}
	}
	if (p->o.leak_detection_ms > 0)
		for (c = p->leased; c; c = c->next) {
			if (c->leak_reported || now_ms - c->leased_ms < p->o.leak_detection_ms)
				continue;
			c->leak_reported = true;
			p->leaks++;
			RS_LOG(RS_LOG_WARNING, c->request_id[0] ? c->request_id : NULL,
			       "upstream %s: connection to %s held for %lld ms (leak_detection_threshold %lld ms)",
			       p->name, p->ep[c->ep].url, (long long)(now_ms - c->leased_ms),
			       (long long)p->o.leak_detection_ms);
		}
	if (doomed)
		pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->lock);
	for (c = doomed; c; c = next) {
		next = c->next;
		conn_close(c, c->closing);
	}
}

void rs_pool_stats(struct rs_pool *p, struct rs_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	out->hits = p->hits;
	out->misses = p->misses;
	out->creations = p->creations;
	out->exhaustions = p->exhaustions;
	out->requests = p->requests;
	out->errors = p->errors;
	out->leaks = p->leaks;
	memcpy(out->closures, p->closures, sizeof(out->closures));
	out->open = p->open;
	out->in_use = p->in_use;
	out->idle = p->open - p->in_use;
	out->waiting = p->waiting;
	out->max_size = p->o.max_size;
	out->min_size = p->o.min_size;
	out->nendpoints = p->nep;
	for (size_t i = 0; i < p->nep; i++) {
		out->endpoint[i].url = p->ep[i].url;
		out->endpoint[i].open = p->ep[i].open;
		out->endpoint[i].in_use = p->ep[i].in_use;
	}
	pthread_mutex_unlock(&p->lock);
	out->acquire_wait_us = &p->acquire_wait_us;
	out->request_us = &p->request_us;
}

unsigned rs_pool_in_use(struct rs_pool *p, size_t ep)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = ep < p->nep ? p->ep[ep].in_use : 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void rs_pool_free(struct rs_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nep; i++) {
		struct conn *c, *next;

		for (c = p->ep[i].idle; c; c = next) {
			next = c->next;
			conn_close(c, RS_POOL_CLOSE_SHUTDOWN);
		}
		free(p->ep[i].url);
	}
	if (p->share)
		curl_share_cleanup(p->share);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->share_locks[i]);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->name);
	free(p->ca_file);
	free(p->tls_cert);
	free(p->tls_key);
	free(p->username);
	if (p->password) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	if (p->auth_header) {
		explicit_bzero(p->auth_header, strlen(p->auth_header));
		free(p->auth_header);
	}
	free(p);
}
