/*
 * fakehwa: a stand-in for the HCL Workload Automation REST API, for the
 * integration tests and the demo.  It serves the JSON files of a fixture
 * tree (tests/fixtures/hwa) as the nginx of tests/integration/helpers.bash
 * does, and can be told over HTTP to misbehave: delay, fail, reset, hang,
 * cut a body short, close.  tests/fixtures/hwa/README.md documents the
 * command line and the control endpoints.
 *
 * Deliberate quirks:
 *  - every method gets the file (HWA's .../query calls are POSTs); request
 *    bodies are read and thrown away, unless --record keeps them for its
 *    line (record.c);
 *  - --accept-any answers 200 {} where there is no file, for any method:
 *    a webhook receiver needs no fixture per URL;
 *  - the control endpoints /_fault, /_stats and /_reset are never faulted,
 *    counted or recorded, and a connection is counted from its first other
 *    request, so polling /_stats does not disturb what it reads;
 *  - one detached thread per connection and blocking I/O, no event loop:
 *    simple, and a hanging connection cannot stall the others.
 *
 * Ownership: a connection's thread owns its struct conn and frees it; a
 * struct response owns its body.  Everything shared (the fault and the
 * counters) is in `state`, under state.lock; `opt` and `recorder` are
 * read-only once the server runs (the recorder locks its own writes).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "record.h"

/* Plain numbers: the error messages quote them with STR(). */
#define MAX_HEAD_BYTES 16384
#define MAX_BODY_BYTES 1048576
/* A fixture bigger than this is a mistake, not a test. */
#define MAX_FILE_BYTES (16 * 1024 * 1024)
#define MAX_STAT_PATHS 256
#define MAX_STAT_PATH_BYTES 512	/* with the NUL; longer paths count as other */
#define MAX_PREFIX_BYTES 512	/* with the NUL */
#define MAX_LATENCY_MS 3600000
#define MAX_COUNT 1000000000
#define MAX_RETRY_AFTER_S 86400
#define MIN_STATUS 400
#define MAX_STATUS 599
#define DEFAULT_LATENCY_MS 1000
#define DEFAULT_STATUS 503
/* nginx's keepalive_timeout: clients see the idle closes they saw behind nginx. */
#define IDLE_TIMEOUT_MS 75000
#define LINGER_MS 1000
#define ACCEPT_BACKOFF_MS 10
/* Each of the 1000+ threads needs little: buffers live on the heap. */
#define THREAD_STACK_BYTES (256 * 1024)
#define DEFAULT_LISTEN "127.0.0.1:0"
#define DEFAULT_DIR "tests/fixtures/hwa"

#define STR_(x) #x
#define STR(x) STR_(x)

static const char usage_text[] =
	"usage: fakehwa [-l HOST:PORT] [-d DIR] [--port-file FILE] [--record FILE]\n"
	"               [--accept-any] [-q] [-h]\n"
	"  -l, --listen HOST:PORT  where to listen (default " DEFAULT_LISTEN
	"; port 0: any free port)\n"
	"  -d, --dir DIR           the fixture root (default " DEFAULT_DIR ")\n"
	"      --port-file FILE    write the port listened on to FILE\n"
	"      --record FILE       append one JSON line per request to FILE (created,\n"
	"                          never truncated): time_ms, method, path, query,\n"
	"                          content_type, body (parsed when JSON, else a\n"
	"                          string), fault, status; not the control endpoints\n"
	"      --accept-any        a path with no fixture gets 200 {} instead of 404\n"
	"                          (any method; faults still apply)\n"
	"  -q, --quiet             no log line per request\n"
	"  -h, --help              this help\n"
	"Control endpoints: /_fault?mode=MODE[&ms=N][&status=N][&retry_after=S]\n"
	"[&count=N][&path=PREFIX],\n"
	"/_stats, /_reset (tests/fixtures/hwa/README.md).\n"
	"Exit status: 0 on SIGTERM or SIGINT; 1 when it cannot listen, write the\n"
	"port file or open the record file; 2 on a bad argument.\n";

static struct {
	char host[256];
	char port[24];
	const char *dir;
	const char *port_file;
	const char *record_file;
	bool accept_any;
	bool quiet;
} opt = { .dir = DEFAULT_DIR };

/* --record's file; NULL without it.  Set before the threads start. */
static struct recorder *recorder;

enum fault_mode {
	FAULT_NONE, FAULT_LATENCY, FAULT_STATUS, FAULT_RESET, FAULT_HANG,
	FAULT_PARTIAL, FAULT_CLOSE
};

static const char *const fault_names[] = {
	[FAULT_NONE] = "none", [FAULT_LATENCY] = "latency",
	[FAULT_STATUS] = "status", [FAULT_RESET] = "reset",
	[FAULT_HANG] = "hang", [FAULT_PARTIAL] = "partial",
	[FAULT_CLOSE] = "close",
};
#define NFAULTS (sizeof fault_names / sizeof fault_names[0])
#define MODES_WANTED "none, latency, status, reset, hang, partial or close"

/* What a faulted request gets. */
struct fault_action {
	enum fault_mode mode;
	unsigned long ms;	/* latency */
	unsigned long status;	/* status */
	unsigned long retry_after;	/* status: Retry-After seconds; 0 none */
};

struct fault {
	struct fault_action act;
	unsigned long count;	/* requests left before it clears; 0: until changed */
	char prefix[MAX_PREFIX_BYTES];	/* "" matches every path */
};

struct path_count {
	char path[MAX_STAT_PATH_BYTES];
	unsigned long n;
};

/* Shared by all connections; every field under lock. */
static struct {
	pthread_mutex_t lock;
	struct fault fault;
	unsigned long requests, connections, open_connections, faults_applied;
	unsigned long other_paths;
	/* Bumped by /_reset, so that a connection open across a reset counts
	 * in "connections" again when it next makes a request. */
	unsigned long generation;
	size_t npaths;
	struct path_count paths[MAX_STAT_PATHS];
} state = { .lock = PTHREAD_MUTEX_INITIALIZER, .generation = 1 };

enum close_how { CLOSE_NOW, CLOSE_LINGER, CLOSE_RESET };

/* One client connection, owned by its thread. */
struct conn {
	int fd;
	bool counted;		/* in state.open_connections */
	unsigned long generation;	/* last counted in state.connections */
	enum close_how close_how;
	size_t len;		/* bytes in buf */
	size_t used;		/* bytes of buf that belong to the current request */
	char buf[MAX_HEAD_BYTES];
};

/* All but body point into its connection's buffer. */
struct request {
	const char *method;
	char *path;		/* percent-decoded, without the query */
	char *query;		/* "" when there is none */
	const char *content_type;	/* NULL when there is none */
	unsigned long content_length;
	char *body;		/* malloc'd, owned (conn_main frees it); only
				 * with --record, else NULL */
	size_t body_len;
	bool keep_alive;
	bool expect_continue;
	bool chunked;
	bool head;
	struct timespec start;
	long long time_ms;	/* start on the wall clock, for --record */
};

struct response {
	unsigned long status;
	char *body;		/* malloc'd, owned: response_free */
	size_t len;
	unsigned long retry_after;	/* seconds; 0: no Retry-After */
};

static int sig_pipe[2] = { -1, -1 };

/* ---- small helpers ------------------------------------------------------- */

static _Noreturn void out_of_memory(void)
{
	fputs("fakehwa: out of memory\n", stderr);
	abort();
}

static struct timespec now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static double ms_since(struct timespec t0)
{
	struct timespec t = now();

	return (double)(t.tv_sec - t0.tv_sec) * 1e3 +
		(double)(t.tv_nsec - t0.tv_nsec) / 1e6;
}

static long long wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec t = { .tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* Decimal digits only, at most max. */
static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long n = 0, d;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		d = (unsigned long)(*s - '0');
		if (n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* In place, as nginx does before try_files.  %00 is refused: it would cut
 * the path short of what was checked. */
static bool url_decode(char *s)
{
	char *out = s;
	int hi, lo;

	for (; *s; s++) {
		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		hi = hex_value(s[1]);
		lo = hi < 0 ? -1 : hex_value(s[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return false;
		*out++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*out = '\0';
	return true;
}

/* Whether the comma-separated header value has token (any case). */
static bool has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	while (*value) {
		value += strspn(value, " \t,");
		if (strncasecmp(value, token, n) == 0 &&
		    (value[n] == '\0' || strchr(" \t,", value[n])))
			return true;
		value += strcspn(value, ",");
	}
	return false;
}

static bool send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* ---- responses ----------------------------------------------------------- */

static void response_free(struct response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* A body written with stdio: r owns it once json_end has run. */
static FILE *json_begin(struct response *r, unsigned long status)
{
	FILE *f = open_memstream(&r->body, &r->len);

	if (!f)
		out_of_memory();
	r->status = status;
	return f;
}

static void json_end(FILE *f)
{
	if (fclose(f) != 0)
		out_of_memory();
}

/* Bytes from 0x80 pass as they are: right for UTF-8 paths. */
static void json_string(FILE *f, const char *s)
{
	unsigned char ch;

	fputc('"', f);
	for (; *s; s++) {
		ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void ok_response(struct response *r)
{
	FILE *f = json_begin(r, 200);

	fputs("{\"ok\":true}", f);
	json_end(f);
}

/* An error in HWA's style: {"messages":["..."]}. */
__attribute__((format(printf, 3, 4)))
static void error_response(struct response *r, unsigned long status,
			   const char *fmt, ...)
{
	char *msg = NULL;
	size_t len;
	FILE *m = open_memstream(&msg, &len), *f;
	va_list ap;

	if (!m)
		out_of_memory();
	va_start(ap, fmt);
	vfprintf(m, fmt, ap);
	va_end(ap);
	json_end(m);
	f = json_begin(r, status);
	fputs("{\"messages\":[", f);
	json_string(f, msg);
	fputs("]}", f);
	json_end(f);
	free(msg);
}

static const char *reason(unsigned long status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* The Content-Length is always the whole body's; body_bytes of it are
 * sent (0 for HEAD, half for the partial fault). */
static bool send_response(int fd, const struct response *r, bool keep_alive,
			  size_t body_bytes)
{
	char head[320], retry[48] = "";
	int n;

	if (r->retry_after)
		snprintf(retry, sizeof retry, "Retry-After: %lu\r\n", r->retry_after);
	n = snprintf(head, sizeof head,
		     "HTTP/1.1 %lu %s\r\n"
		     "Server: fakehwa\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n"
		     "%s"
		     "Connection: %s\r\n\r\n",
		     r->status, reason(r->status), r->len, retry,
		     keep_alive ? "keep-alive" : "close");

	return send_all(fd, head, (size_t)n) && send_all(fd, r->body, body_bytes);
}

/* ---- fixture files --------------------------------------------------------- */

/* O_NONBLOCK: a FIFO in the tree must not block the thread. */
static int open_regular(const char *name)
{
	struct stat st;
	int fd = open(name, O_RDONLY | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;
	close(fd);
	return -1;
}

static bool read_file(int fd, struct response *r)
{
	struct stat st;
	size_t size, len = 0;
	ssize_t n;
	char *body;

	if (fstat(fd, &st) != 0 || st.st_size > MAX_FILE_BYTES)
		return false;
	size = (size_t)st.st_size;
	body = malloc(size ? size : 1);
	if (!body)
		out_of_memory();
	while (len < size) {
		n = read(fd, body + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(body);
			return false;
		}
		if (n == 0)	/* it shrank: serve what there is */
			break;
		len += (size_t)n;
	}
	r->status = 200;
	r->body = body;
	r->len = len;
	return true;
}

/* DIR/PATH when it is a regular file, else DIR/PATH.json, read afresh on
 * every request so that a test may change the fixtures under a running
 * server. */
static void file_response(const char *path, struct response *r)
{
	char name[PATH_MAX];
	int fd = -1, n;

	n = snprintf(name, sizeof name, "%s%s", opt.dir, path);
	if (n > 0 && (size_t)n < sizeof name)
		fd = open_regular(name);
	if (fd < 0) {
		n = snprintf(name, sizeof name, "%s%s.json", opt.dir, path);
		if (n > 0 && (size_t)n < sizeof name)
			fd = open_regular(name);
	}
	if (fd < 0 && opt.accept_any) {
		r->status = 200;
		r->body = strdup("{}");
		if (!r->body)
			out_of_memory();
		r->len = strlen(r->body);
		return;
	}
	if (fd < 0) {
		error_response(r, 404, "not found: %s", path);
		return;
	}
	if (!read_file(fd, r))
		error_response(r, 500, "cannot read %s", name);
	close(fd);
}

/* ---- shared state: the fault and the counters ---------------------------- */

/* Under state.lock. */
static void count_path(const char *path)
{
	size_t i;

	for (i = 0; i < state.npaths; i++) {
		if (strcmp(state.paths[i].path, path) == 0) {
			state.paths[i].n++;
			return;
		}
	}
	if (state.npaths == MAX_STAT_PATHS || strlen(path) >= MAX_STAT_PATH_BYTES) {
		state.other_paths++;
		return;
	}
	strcpy(state.paths[i].path, path);
	state.paths[i].n = 1;
	state.npaths++;
}

/* Counts a non-control request and takes the fault it gets, in one
 * critical section, so that count=N faults exactly N requests however many
 * run at once. */
static struct fault_action account(struct conn *c, const char *path)
{
	struct fault_action a = { .mode = FAULT_NONE };
	struct fault *f = &state.fault;

	pthread_mutex_lock(&state.lock);
	if (!c->counted) {
		c->counted = true;
		state.open_connections++;
	}
	if (c->generation != state.generation) {
		c->generation = state.generation;
		state.connections++;
	}
	state.requests++;
	count_path(path);
	if (f->act.mode != FAULT_NONE &&
	    strncmp(path, f->prefix, strlen(f->prefix)) == 0) {
		a = f->act;
		state.faults_applied++;
		if (f->count > 0 && --f->count == 0)
			memset(f, 0, sizeof *f);
	}
	pthread_mutex_unlock(&state.lock);
	return a;
}

static void fault_json(FILE *f, const struct fault *ft)
{
	fprintf(f, "{\"mode\":\"%s\",\"ms\":%lu,\"status\":%lu,\"count\":%lu,\"path\":",
		fault_names[ft->act.mode], ft->act.ms, ft->act.status, ft->count);
	json_string(f, ft->prefix);
	fputc('}', f);
}

/* Written into memory under the lock: no socket I/O while holding it. */
static void stats_response(struct response *r)
{
	FILE *f = json_begin(r, 200);
	size_t i;

	pthread_mutex_lock(&state.lock);
	fprintf(f, "{\"requests\":%lu,\"connections\":%lu,\"open_connections\":%lu,"
		"\"faults_applied\":%lu,\"paths\":{",
		state.requests, state.connections, state.open_connections,
		state.faults_applied);
	for (i = 0; i < state.npaths; i++) {
		if (i > 0)
			fputc(',', f);
		json_string(f, state.paths[i].path);
		fprintf(f, ":%lu", state.paths[i].n);
	}
	fprintf(f, "},\"other_paths\":%lu,\"fault\":", state.other_paths);
	fault_json(f, &state.fault);
	fputc('}', f);
	pthread_mutex_unlock(&state.lock);
	json_end(f);
}

/* open_connections is a gauge of what is open now: it stays. */
static void reset_response(struct response *r)
{
	pthread_mutex_lock(&state.lock);
	state.requests = state.connections = state.faults_applied = 0;
	state.other_paths = 0;
	state.npaths = 0;
	state.generation++;
	memset(&state.fault, 0, sizeof state.fault);
	pthread_mutex_unlock(&state.lock);
	ok_response(r);
}

/* Sets one /_fault parameter; NULL, or what the value should have been. */
static const char *fault_param(const char *key, char *val, struct fault *f,
			       bool *have_mode)
{
	size_t i;

	if (!url_decode(val))
		return "a value without bad percent-escapes";
	if (strcmp(key, "mode") == 0) {
		for (i = 0; i < NFAULTS; i++) {
			if (strcmp(val, fault_names[i]) == 0) {
				f->act.mode = (enum fault_mode)i;
				*have_mode = true;
				return NULL;
			}
		}
		return MODES_WANTED;
	}
	if (strcmp(key, "ms") == 0)
		return parse_ulong(val, MAX_LATENCY_MS, &f->act.ms) ? NULL :
			"milliseconds, 0 to " STR(MAX_LATENCY_MS);
	if (strcmp(key, "status") == 0)
		return parse_ulong(val, MAX_STATUS, &f->act.status) &&
			f->act.status >= MIN_STATUS ? NULL :
			"an HTTP status, " STR(MIN_STATUS) " to " STR(MAX_STATUS);
	if (strcmp(key, "retry_after") == 0)
		return parse_ulong(val, MAX_RETRY_AFTER_S, &f->act.retry_after) ? NULL :
			"seconds, 0 (none) to " STR(MAX_RETRY_AFTER_S);
	if (strcmp(key, "count") == 0)
		return parse_ulong(val, MAX_COUNT, &f->count) ? NULL :
			"a number of requests, 0 (no limit) to " STR(MAX_COUNT);
	if (strcmp(key, "path") == 0) {
		if (val[0] != '/' || strlen(val) >= sizeof f->prefix)
			return "a path prefix starting with /, under "
				STR(MAX_PREFIX_BYTES) " bytes";
		strcpy(f->prefix, val);
		return NULL;
	}
	return "one of mode, ms, status, retry_after, count, path";
}

/* /_fault?mode=MODE[&ms=N][&status=N][&retry_after=S][&count=N][&path=PREFIX] replaces the
 * fault.  The query is taken apart in place. */
static void fault_response(char *query, struct response *r)
{
	struct fault f = { .act = { .ms = DEFAULT_LATENCY_MS,
				    .status = DEFAULT_STATUS } };
	bool have_mode = false;
	char *p = query, *val, *key;
	const char *wanted;

	while ((val = strsep(&p, "&"))) {
		key = strsep(&val, "=");
		if (!*key)
			continue;
		wanted = fault_param(key, val ? val : key + strlen(key), &f, &have_mode);
		if (wanted) {
			error_response(r, 400, "bad parameter '%s': want %s", key, wanted);
			return;
		}
	}
	if (!have_mode) {
		error_response(r, 400, "missing parameter 'mode': want " MODES_WANTED);
		return;
	}
	pthread_mutex_lock(&state.lock);
	state.fault = f;
	pthread_mutex_unlock(&state.lock);
	ok_response(r);
}

/* Answers the control endpoints; false for any other path. */
static bool control_response(struct request *q, struct response *r)
{
	if (strcmp(q->path, "/_fault") == 0)
		fault_response(q->query, r);
	else if (strcmp(q->path, "/_stats") == 0)
		stats_response(r);
	else if (strcmp(q->path, "/_reset") == 0)
		reset_response(r);
	else
		return false;
	return true;
}

/* ---- one connection -------------------------------------------------------- */

/* The length of the head at the start of buf, through its blank line; 0
 * while it is incomplete.  Bare LFs are taken too (a hand-typed request). */
static size_t head_length(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The head's length; 0 when the client closed or idled out first, -1 when
 * the head does not fit in the buffer. */
static long read_head(struct conn *c)
{
	size_t end;
	ssize_t n;

	for (;;) {
		end = head_length(c->buf, c->len);
		if (end > 0)
			return (long)end;
		if (c->len == sizeof c->buf)
			return -1;
		n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
	}
}

static void chop_cr(char *line)
{
	size_t n = strlen(line);

	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';
}

static const char *parse_header(char *line, struct request *q)
{
	char *value = strchr(line, ':'), *end;

	if (!value || value == line)
		return "malformed header line";
	*value++ = '\0';
	value += strspn(value, " \t");
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (strcasecmp(line, "Content-Length") == 0) {
		if (!parse_ulong(value, ULONG_MAX, &q->content_length))
			return "bad Content-Length";
	} else if (strcasecmp(line, "Content-Type") == 0) {
		q->content_type = value;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		q->chunked = true;
	} else if (strcasecmp(line, "Connection") == 0) {
		if (has_token(value, "close"))
			q->keep_alive = false;
		else if (has_token(value, "keep-alive"))
			q->keep_alive = true;
	} else if (strcasecmp(line, "Expect") == 0) {
		q->expect_continue = strcasecmp(value, "100-continue") == 0;
	}
	return NULL;
}

/* head is the NUL-terminated request head, taken apart in place.  NULL, or
 * why the request is bad. */
static const char *parse_head(char *head, struct request *q)
{
	char *p = head, *line = strsep(&p, "\n"), *query;
	const char *err;

	chop_cr(line);
	q->method = strsep(&line, " ");
	q->path = strsep(&line, " ");
	if (!*q->method || !q->path || !line || strchr(line, ' '))
		return "malformed request line";
	if (strcmp(line, "HTTP/1.1") == 0)
		q->keep_alive = true;
	else if (strcmp(line, "HTTP/1.0") != 0)
		return "unsupported HTTP version";
	while ((line = strsep(&p, "\n"))) {
		chop_cr(line);
		if (*line && (err = parse_header(line, q)))
			return err;
	}
	query = strchr(q->path, '?');
	if (query)
		*query++ = '\0';
	q->query = query ? query : q->path + strlen(q->path);
	if (!url_decode(q->path))
		return "bad percent-escape in the path";
	if (q->path[0] != '/' || strstr(q->path, ".."))
		return "the path must start with / and not contain ..";
	q->head = strcmp(q->method, "HEAD") == 0;
	return NULL;
}

/* Answers a request that will not be read further, and ends the connection. */
static bool refuse(struct conn *c, unsigned long status, const char *why)
{
	struct response r = { 0 };

	error_response(&r, status, "%s", why);
	send_response(c->fd, &r, false, r.len);
	response_free(&r);
	if (!opt.quiet)
		fprintf(stderr, "fakehwa: refused: %lu %s\n", status, why);
	c->close_how = CLOSE_LINGER;
	return false;
}

/* Reads the request body: the bytes of it already in buf, then the rest
 * from the socket, never reading past it (a pipelined request may follow).
 * With --record it is kept in q->body, else dropped. */
static bool read_body(struct conn *c, size_t head_len, struct request *q)
{
	size_t in_buf = c->len - head_len;
	unsigned long left = q->content_length;
	char sink[4096], *to;
	size_t want;
	ssize_t n;

	if (in_buf > left)
		in_buf = left;
	if (recorder) {
		q->body = malloc(left ? left : 1);
		if (!q->body)
			out_of_memory();
		memcpy(q->body, c->buf + head_len, in_buf);
		q->body_len = in_buf;
	}
	c->used = head_len + in_buf;
	left -= in_buf;
	while (left > 0) {
		to = q->body ? q->body + q->body_len : sink;
		want = q->body || left < sizeof sink ? left : sizeof sink;
		n = read(c->fd, to, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		if (q->body)
			q->body_len += (size_t)n;
		left -= (unsigned long)n;
	}
	return true;
}

/* The next request into q; false when the connection is done (the client
 * left, or the request was refused here). */
static bool read_request(struct conn *c, struct request *q)
{
	static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
	long end = read_head(c);
	const char *err;

	memset(q, 0, sizeof *q);
	q->start = now();
	q->time_ms = wall_ms();
	if (end == 0)
		return false;
	if (end < 0)
		return refuse(c, 431, "request head over " STR(MAX_HEAD_BYTES) " bytes");
	if (memchr(c->buf, '\0', (size_t)end))
		return refuse(c, 400, "NUL byte in the request head");
	c->buf[end - 1] = '\0';
	err = parse_head(c->buf, q);
	if (err)
		return refuse(c, 400, err);
	if (q->chunked)
		return refuse(c, 411, "chunked request bodies are not supported: send Content-Length");
	if (q->content_length > MAX_BODY_BYTES)
		return refuse(c, 413, "request body over " STR(MAX_BODY_BYTES) " bytes");
	if (q->expect_continue && q->content_length > 0 &&
	    !send_all(c->fd, go_on, sizeof go_on - 1))
		return false;
	return read_body(c, (size_t)end, q);
}

/* Never answer: wait for the client to give up.  Whatever it still sends
 * is drained, so that only its close wakes the thread for good. */
static void hang(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char sink[512];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		n = read(fd, sink, sizeof sink);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

/* The answer to a non-control request under fault f; false when the fault
 * leaves nothing to send (reset, hang: the caller hangs, after recording). */
static bool faulted_response(struct conn *c, const struct request *q,
			     const struct fault_action *f, struct response *r)
{
	switch (f->mode) {
	case FAULT_RESET:
		c->close_how = CLOSE_RESET;
		return false;
	case FAULT_HANG:
		return false;
	case FAULT_STATUS:
		error_response(r, f->status, "injected status %lu", f->status);
		r->retry_after = f->retry_after;
		return true;
	case FAULT_LATENCY:
		sleep_ms(f->ms);
		break;
	default:
		break;
	}
	file_response(q->path, r);
	return true;
}

static void log_request(const struct request *q, unsigned long status,
			enum fault_mode mode)
{
	char st[24] = "-";

	if (opt.quiet)
		return;
	if (status)
		snprintf(st, sizeof st, "%lu", status);
	fprintf(stderr, "fakehwa: %s %s %s%s%s %.1fms\n", q->method, q->path, st,
		mode ? " fault=" : "", mode ? fault_names[mode] : "",
		ms_since(q->start));
}

/* One --record line; status 0 when none is sent.  Written before the
 * answer goes out, so that a client that has its answer finds the line. */
static void record_request(const struct request *q, enum fault_mode mode,
			   unsigned long status)
{
	struct record rec = {
		.time_ms = q->time_ms, .method = q->method, .path = q->path,
		.query = q->query, .content_type = q->content_type,
		.body = q->body, .body_len = q->body_len,
		.fault = mode == FAULT_NONE ? NULL : fault_names[mode],
		.status = status,
	};

	if (recorder && recorder_write(recorder, &rec) != 0)
		fprintf(stderr, "fakehwa: cannot record %s %s in '%s': %s\n",
			q->method, q->path, opt.record_file, strerror(errno));
}

/* Answers q; whether the connection stays open for another request. */
static bool handle(struct conn *c, struct request *q)
{
	struct response r = { 0 };
	struct fault_action f = { .mode = FAULT_NONE };
	bool keep = q->keep_alive;
	size_t body_bytes;

	if (!control_response(q, &r)) {
		f = account(c, q->path);
		if (!faulted_response(c, q, &f, &r)) {
			record_request(q, f.mode, 0);
			if (f.mode == FAULT_HANG)
				hang(c->fd);
			log_request(q, 0, f.mode);
			return false;
		}
		record_request(q, f.mode, r.status);
	}
	if (f.mode == FAULT_CLOSE || f.mode == FAULT_PARTIAL)
		keep = false;
	body_bytes = q->head ? 0 : f.mode == FAULT_PARTIAL ? r.len / 2 : r.len;
	if (!send_response(c->fd, &r, keep, body_bytes))
		keep = false;
	log_request(q, r.status, f.mode);
	response_free(&r);
	return keep;
}

/* Drops the request just answered; a pipelined one moves to the front. */
static void next_request(struct conn *c)
{
	memmove(c->buf, c->buf + c->used, c->len - c->used);
	c->len -= c->used;
	c->used = 0;
}

/* Closing with unread request bytes in the socket sends an RST, which can
 * destroy the error answer before the client reads it (RFC 9112 9.6; curl
 * sending 2 MB lost 1 in 12 of the 413s without this): stop sending, then
 * drain what the client still sends, for a while. */
static void linger_close(int fd)
{
	struct timespec start = now();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char sink[512];
	double left;

	shutdown(fd, SHUT_WR);
	for (;;) {
		left = LINGER_MS - ms_since(start);
		if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
			return;
		if (read(fd, sink, sizeof sink) <= 0)
			return;
	}
}

static void conn_end(struct conn *c)
{
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	if (c->close_how == CLOSE_RESET)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
	else if (c->close_how == CLOSE_LINGER)
		linger_close(c->fd);
	close(c->fd);
	if (c->counted) {
		pthread_mutex_lock(&state.lock);
		state.open_connections--;
		pthread_mutex_unlock(&state.lock);
	}
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct request q;
	bool more;

	do {
		more = read_request(c, &q) && handle(c, &q);
		free(q.body);
		if (more)
			next_request(c);
	} while (more);
	conn_end(c);
	return NULL;
}

/* ---- the listener ------------------------------------------------------------ */

static void conn_socket_options(int fd)
{
	struct timeval idle = { .tv_sec = IDLE_TIMEOUT_MS / 1000,
				.tv_usec = (IDLE_TIMEOUT_MS % 1000) * 1000 };
	int one = 1;

	/* Headers and body go in two writes: without this, Nagle holds the
	 * body back until the client's delayed ACK, 40 ms a response. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof idle);
}

static void accept_one(int lfd, const pthread_attr_t *attr)
{
	struct conn *c;
	pthread_t t;
	int fd = accept(lfd, NULL, NULL), err;

	if (fd < 0) {
		/* Out of descriptors: the listener stays readable, so wait
		 * rather than spin. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			fprintf(stderr, "fakehwa: accept: %s\n", strerror(errno));
			sleep_ms(ACCEPT_BACKOFF_MS);
		}
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	conn_socket_options(fd);
	err = pthread_create(&t, attr, conn_main, c);
	if (err) {
		fprintf(stderr, "fakehwa: cannot start a thread: %s\n", strerror(err));
		close(fd);
		free(c);
	}
}

/* Accepts connections until SIGTERM or SIGINT, one detached thread each. */
static void serve(int lfd)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
			       { .fd = sig_pipe[0], .events = POLLIN } };
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fakehwa: poll: %s\n", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents)
			accept_one(lfd, &attr);
	}
	pthread_attr_destroy(&attr);
}

/* "127.0.0.1:PORT" or "[::1]:PORT" for the log, and the port. */
static bool bound_address(int fd, char *where, size_t size, unsigned long *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv,
			sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0 ||
	    !parse_ulong(serv, 65535, port))
		return false;
	snprintf(where, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, serv);
	return true;
}

static int listen_socket(void)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, one = 1, err = 0, rc;

	rc = getaddrinfo(opt.host, opt.port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "fakehwa: cannot resolve '%s': %s\n", opt.host,
			gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, SOMAXCONN) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "fakehwa: cannot listen on %s:%s: %s\n", opt.host,
			opt.port, strerror(err));
	else	/* poll may call a connection ready that is gone by accept */
		fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Through FILE.tmp, so that a reader polling for FILE never sees half a
 * number. */
static bool write_port_file(const char *file, unsigned long port)
{
	char tmp[PATH_MAX];
	FILE *f;
	bool ok;
	int err;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", file) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	f = fopen(tmp, "w");
	if (!f)
		goto fail;
	ok = fprintf(f, "%lu\n", port) > 0;
	if (fclose(f) != 0 || !ok || rename(tmp, file) != 0) {
		err = errno;
		unlink(tmp);
		errno = err;
		goto fail;
	}
	return true;
fail:
	fprintf(stderr, "fakehwa: cannot write '%s': %s\n", file, strerror(errno));
	return false;
}

/* One descriptor per connection: the usual soft limit of 1024 would stop us
 * short of 1000 clients.  Best effort. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_signal(int sig)
{
	int saved = errno;
	ssize_t n = write(sig_pipe[1], "", 1);

	(void)sig;
	(void)n;
	errno = saved;
}

/* SIGTERM and SIGINT wake serve() through a pipe; installed before the
 * port file exists, so that a test may signal as soon as it sees it. */
static bool setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };

	if (pipe(sig_pipe) != 0) {
		fprintf(stderr, "fakehwa: pipe: %s\n", strerror(errno));
		return false;
	}
	fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
	sigemptyset(&sa.sa_mask);
	sigemptyset(&ign.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	return true;
}

/* ---- the command line ----------------------------------------------------------- */

static bool parse_listen(const char *spec)
{
	const char *colon = strrchr(spec, ':'), *host = spec;
	unsigned long port;
	size_t n;

	if (!colon || !parse_ulong(colon + 1, 65535, &port))
		return false;
	n = (size_t)(colon - spec);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof opt.host)
		return false;
	memcpy(opt.host, host, n);
	opt.host[n] = '\0';
	snprintf(opt.port, sizeof opt.port, "%lu", port);
	return true;
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("fakehwa: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_text, stderr);
	return 2;
}

/* 0 to run; else the exit status (2: usage error, 0: --help). */
static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "dir", required_argument, NULL, 'd' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "record", required_argument, NULL, 'R' },
		{ "accept-any", no_argument, NULL, 'A' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = DEFAULT_LISTEN;
	struct stat st;
	int ch;

	while ((ch = getopt_long(argc, argv, "l:d:qh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 'd': opt.dir = optarg; break;
		case 'P': opt.port_file = optarg; break;
		case 'R': opt.record_file = optarg; break;
		case 'A': opt.accept_any = true; break;
		case 'q': opt.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return -1;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!parse_listen(listen_spec))
		return usage_error("bad -l '%s': want HOST:PORT", listen_spec);
	if (stat(opt.dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return usage_error("fixture root '%s' is not a directory", opt.dir);
	return 0;
}

int main(int argc, char **argv)
{
	char where[NI_MAXHOST + 16];
	unsigned long port;
	int lfd, rc = parse_args(argc, argv);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	/* Before listening: a test waiting for the port file sees the exit. */
	if (opt.record_file && !(recorder = recorder_new(opt.record_file))) {
		fprintf(stderr, "fakehwa: cannot open the record file '%s': %s\n",
			opt.record_file, strerror(errno));
		return 1;
	}
	raise_nofile_limit();
	if (!setup_signals())
		return 1;
	lfd = listen_socket();
	if (lfd < 0)
		return 1;
	if (!bound_address(lfd, where, sizeof where, &port)) {
		fprintf(stderr, "fakehwa: getsockname: %s\n", strerror(errno));
		close(lfd);
		return 1;
	}
	fprintf(stderr, "fakehwa: listening on %s\n", where);
	if (opt.port_file && !write_port_file(opt.port_file, port)) {
		close(lfd);
		return 1;
	}
	serve(lfd);
	close(lfd);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	/* The recorder is left to the exit to close: a connection thread may
	 * still be writing a line to it. */
	return 0;
}
