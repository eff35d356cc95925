/*
 * log: the process-wide logger behind RS_LOG.
 *
 * A line is formatted on the caller's stack, without a lock, and written
 * with one write(2) (or one syslog() call), so lines from several threads
 * never interleave.  `logger.lock` guards only the target: a writer holds
 * it long enough to copy the target and to perform a pending reopen.
 *
 * Deliberate quirks:
 *  - Once a log file has been opened its descriptor number stays reserved
 *    for the life of the process.  Reopening and switching files dup the
 *    new file onto that number, and switching away from the file (or
 *    rs_log_shutdown) parks it on stderr instead of closing it.  A thread
 *    that copied the number just before therefore never writes into a
 *    descriptor the process has since reused for something else.
 *  - Control characters in the message, request id and ident are escaped
 *    in text lines too, so a client-supplied request id cannot forge lines.
 *  - Truncation keeps escapes and UTF-8 sequences whole, and a truncated
 *    JSON line is still one valid object.
 *  - rs_log_write preserves errno, so `RS_LOG(...); return -errno;` works.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192          /* bytes per line, newline included */
#define LOG_IDENT_MAX 64           /* bytes of ident kept, NUL included */
#define LOG_TIME_MAX 32            /* "2026-11-23T14:05:01.123456Z" + NUL */
#define LOG_FILE_MODE 0640
#define LOG_DEFAULT_IDENT "resync"
#define LOG_TRUNC_MARK "..."
/* Room kept free for the longest ending: mark, closing '"}', '\n', NUL. */
#define LOG_END_RESERVE sizeof(LOG_TRUNC_MARK "\"}\n")

volatile int rs_log_min_level = RS_LOG_INFO;

/* Set by rs_log_reopen (maybe in a signal handler), cleared under the lock
 * by the writer that performs the reopen. */
static volatile sig_atomic_t reopen_pending;

/* The target.  `lock` guards every field. */
static struct {
	pthread_mutex_t lock;
	enum rs_log_format format;
	enum rs_log_target target;
	int fd;                    /* reserved file descriptor, or -1 */
	char *path;                /* RS_LOG_FILE: what a reopen opens */
	char ident[LOG_IDENT_MAX];
} logger = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.format = RS_LOG_TEXT,
	.target = RS_LOG_STDERR,
	.fd = -1,
	.path = NULL,
	.ident = LOG_DEFAULT_IDENT,
};

/* openlog() keeps this pointer, so it is rewritten only between closelog()
 * and openlog() (glibc's closelog forgets the pointer). */
static char syslog_ident[LOG_IDENT_MAX];

/* What a writer copies out of `logger`. */
struct target {
	enum rs_log_format format;
	enum rs_log_target target;
	int fd;
	char ident[LOG_IDENT_MAX];
};

/* A line under construction: `cap` stops short of the buffer's end so the
 * ending always fits. */
struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	size_t cap;
	int truncated;
};

static const char *const level_names[] = {
	[RS_LOG_DEBUG] = "debug",
	[RS_LOG_INFO] = "info",
	[RS_LOG_NOTICE] = "notice",
	[RS_LOG_WARNING] = "warning",
	[RS_LOG_ERROR] = "error",
};

static const int syslog_priorities[] = {
	[RS_LOG_DEBUG] = LOG_DEBUG,
	[RS_LOG_INFO] = LOG_INFO,
	[RS_LOG_NOTICE] = LOG_NOTICE,
	[RS_LOG_WARNING] = LOG_WARNING,
	[RS_LOG_ERROR] = LOG_ERR,
};

#define N_LEVELS (sizeof(level_names) / sizeof(level_names[0]))

static int level_valid(int level)
{
	return level >= 0 && (size_t)level < N_LEVELS;
}

int rs_log_level_parse(const char *name)
{
	size_t i;

	if (!name)
		return -1;
	for (i = 0; i < N_LEVELS; i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcmp(name, "warn") == 0)
		return RS_LOG_WARNING;
	return -1;
}

const char *rs_log_level_name(enum rs_log_level level)
{
	return level_valid((int)level) ? level_names[level] : "unknown";
}

static void copy_trunc(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* dup `from` onto `to`, keeping close-on-exec on `to` (dup2 clears it). */
static int dup_onto(int from, int to)
{
	int r;

	if (from == to)
		return 0;
#if defined(__linux__) && defined(_GNU_SOURCE)
	do
		r = dup3(from, to, O_CLOEXEC);
	while (r < 0 && (errno == EINTR || errno == EBUSY));
	return r < 0 ? -1 : 0;
#else
	do
		r = dup2(from, to);
	while (r < 0 && (errno == EINTR || errno == EBUSY));
	if (r < 0)
		return -1;
	return fcntl(to, F_SETFD, FD_CLOEXEC) < 0 ? -1 : 0;
#endif
}

/* Returns the new descriptor, or -1 with errno set.  The descriptor is
 * kept above stderr: if 0-2 were closed, the log file must not become
 * what a later write to stderr (or a child's stdin) reaches. */
static int open_log_file(const char *path)
{
	int fd, moved, e;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
		  LOG_FILE_MODE);
	if (fd < 0 || fd > STDERR_FILENO)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	e = errno;
	close(fd);
	errno = e;
	return moved;
}

/* Make `fd` the log file, on the reserved number when there is one. */
static void install_fd_locked(int fd)
{
	if (logger.fd >= 0 && dup_onto(fd, logger.fd) == 0) {
		close(fd);
		return;
	}
	/* No number yet, or the dup failed: then give up the race-free
	 * swap rather than the new file. */
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = fd;
}

/* Stop writing to the file without freeing its number (see the top). */
static void park_fd_locked(void)
{
	if (logger.fd < 0)
		return;
	if (dup_onto(STDERR_FILENO, logger.fd) < 0) {
		close(logger.fd);
		logger.fd = -1;
	}
}

static void reopen_locked(struct rs_err *err)
{
	int fd;

	if (logger.target != RS_LOG_FILE || !logger.path)
		return;
	fd = open_log_file(logger.path);
	if (fd < 0) {
		/* Keep the old file: its lines are better than none. */
		rs_err_errno(err, errno, "cannot reopen log file '%s'",
			     logger.path);
		return;
	}
	install_fd_locked(fd);
}

int rs_log_setup(const struct rs_log_options *opt, struct rs_err *err)
{
	const char *ident;
	char *path = NULL;
	int fd = -1;

	if (!opt)
		return rs_err_set(err, "no log options given");
	if (!level_valid((int)opt->level))
		return rs_err_set(err, "invalid log level %d", (int)opt->level);
	if (opt->format != RS_LOG_TEXT && opt->format != RS_LOG_JSON)
		return rs_err_set(err, "invalid log format %d",
				  (int)opt->format);
	if (opt->target != RS_LOG_STDERR && opt->target != RS_LOG_FILE &&
	    opt->target != RS_LOG_SYSLOG)
		return rs_err_set(err, "invalid log target %d",
				  (int)opt->target);

	if (opt->target == RS_LOG_FILE) {
		if (!opt->path || !*opt->path)
			return rs_err_set(err, "no log file path given");
		path = strdup(opt->path);
		if (!path)
			return rs_err_errno(err, ENOMEM,
					    "cannot open log file '%s'",
					    opt->path);
		fd = open_log_file(path);
		if (fd < 0) {
			int e = errno;

			free(path);
			return rs_err_errno(err, e, "cannot open log file '%s'",
					    opt->path);
		}
	}
	ident = opt->ident && *opt->ident ? opt->ident : LOG_DEFAULT_IDENT;

	pthread_mutex_lock(&logger.lock);
	if (logger.target == RS_LOG_SYSLOG)
		closelog();
	if (opt->target == RS_LOG_FILE)
		install_fd_locked(fd);
	else
		park_fd_locked();
	free(logger.path);
	logger.path = path;
	copy_trunc(logger.ident, sizeof(logger.ident), ident);
	if (opt->target == RS_LOG_SYSLOG) {
		copy_trunc(syslog_ident, sizeof(syslog_ident), ident);
		openlog(syslog_ident, LOG_PID | LOG_NDELAY,
			opt->syslog_facility);
	}
	logger.format = opt->format;
	logger.target = opt->target;
	pthread_mutex_unlock(&logger.lock);

	rs_log_min_level = (int)opt->level;
	return 0;
}

void rs_log_shutdown(void)
{
	pthread_mutex_lock(&logger.lock);
	if (logger.target == RS_LOG_SYSLOG)
		closelog();
	park_fd_locked();
	free(logger.path);
	logger.path = NULL;
	logger.target = RS_LOG_STDERR;
	pthread_mutex_unlock(&logger.lock);
}

void rs_log_reopen(void)
{
	reopen_pending = 1;
}

static void put_raw(struct line *l, const char *s)
{
	size_t n = strlen(s);

	/* All or nothing: a half-written key would break a JSON line. */
	if (l->truncated || n > l->cap - l->len) {
		l->truncated = 1;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* The escape for byte `c`, or 0 when it goes out as it is.  JSON needs
 * quotes, backslashes and all control characters escaped; text only the
 * control characters that would end or garble the line. */
static size_t escape_byte(unsigned char c, int json, char *out, size_t size)
{
	switch (c) {
	case '"':
	case '\\':
		if (!json)
			return 0;
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		if (!json)
			return 0;
		memcpy(out, "\\t", 2);
		return 2;
	default:
		break;
	}
	if (json && c < 0x20)
		return (size_t)snprintf(out, size, "\\u%04x", c);
	if (!json && (c < 0x20 || c == 0x7f))
		return (size_t)snprintf(out, size, "\\x%02x", c);
	return 0;
}

/* Length of the UTF-8 sequence starting at `p` (1 for a stray byte),
 * never past the terminating NUL. */
static size_t utf8_seq_len(const unsigned char *p)
{
	size_t n, i;

	if (p[0] < 0xc0)
		n = 1;
	else if (p[0] < 0xe0)
		n = 2;
	else if (p[0] < 0xf0)
		n = 3;
	else if (p[0] < 0xf8)
		n = 4;
	else
		n = 1;
	for (i = 1; i < n; i++)
		if (p[i] == '\0')
			return i;
	return n;
}

static void put_escaped(struct line *l, const char *s, int json)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];

	while (*p && !l->truncated) {
		const char *out = esc;
		size_t n, used;

		n = escape_byte(*p, json, esc, sizeof(esc));
		used = 1;
		if (n == 0) {
			out = (const char *)p;
			n = used = utf8_seq_len(p);
		}
		if (n > l->cap - l->len) {
			l->truncated = 1;
			break;
		}
		memcpy(l->buf + l->len, out, n);
		l->len += n;
		p += used;
	}
}

static void format_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%06ldZ", (long)(ts.tv_nsec / 1000));
}

/*
 * Build the whole line.  Only the request id and the message can be long,
 * and both are JSON strings, so wherever truncation stops the line is
 * inside a string that the ending closes.
 */
static void build_line(struct line *l, const struct target *t,
		       enum rs_log_level level, const char *rid,
		       const char *msg, int msg_truncated)
{
	int json = t->format == RS_LOG_JSON;
	int to_syslog = t->target == RS_LOG_SYSLOG;
	char num[32];
	char now[LOG_TIME_MAX];

	l->len = 0;
	l->cap = sizeof(l->buf) - LOG_END_RESERVE;
	l->truncated = 0;
	snprintf(num, sizeof(num), "%ld", (long)getpid());

	if (json) {
		format_time(now, sizeof(now));
		put_raw(l, "{\"time\":\"");
		put_raw(l, now);
		put_raw(l, "\",\"level\":\"");
		put_raw(l, level_names[level]);
		put_raw(l, "\",\"ident\":\"");
		put_escaped(l, t->ident, 1);
		put_raw(l, "\",\"pid\":");
		put_raw(l, num);
		if (rid) {
			put_raw(l, ",\"request_id\":\"");
			put_escaped(l, rid, 1);
			put_raw(l, "\",\"msg\":\"");
		} else {
			put_raw(l, ",\"msg\":\"");
		}
		put_escaped(l, msg, 1);
	} else {
		/* syslog stamps time, ident and pid itself */
		if (!to_syslog) {
			format_time(now, sizeof(now));
			put_raw(l, now);
			put_raw(l, " ");
			put_escaped(l, t->ident, 0);
			put_raw(l, "[");
			put_raw(l, num);
			put_raw(l, "]: ");
		}
		put_raw(l, level_names[level]);
		put_raw(l, ": ");
		if (rid) {
			put_raw(l, "[");
			put_escaped(l, rid, 0);
			put_raw(l, "] ");
		}
		put_escaped(l, msg, 0);
	}

	/* The ending fits: cap left LOG_END_RESERVE bytes for it. */
	if (l->truncated || msg_truncated) {
		memcpy(l->buf + l->len, LOG_TRUNC_MARK, strlen(LOG_TRUNC_MARK));
		l->len += strlen(LOG_TRUNC_MARK);
	}
	if (json) {
		memcpy(l->buf + l->len, "\"}", 2);
		l->len += 2;
	}
	if (!to_syslog)
		l->buf[l->len++] = '\n';
	l->buf[l->len] = '\0';
}

static void emit(const struct target *t, enum rs_log_level level,
		 const struct line *l)
{
	ssize_t r;
	int fd;

	if (t->target == RS_LOG_SYSLOG) {
		syslog(syslog_priorities[level], "%s", l->buf);
		return;
	}
	fd = t->target == RS_LOG_FILE && t->fd >= 0 ? t->fd : STDERR_FILENO;
	/* One write keeps the line whole; a short write (disk full) has no
	 * better remedy than losing the rest, and no one to report to. */
	do
		r = write(fd, l->buf, l->len);
	while (r < 0 && errno == EINTR);
}

void rs_log_write(enum rs_log_level level, const char *rid, const char *fmt,
		  ...)
{
	struct rs_err reopen_err = RS_ERR_INIT;
	char msg[LOG_LINE_MAX];
	struct line line;
	struct target t;
	int saved_errno = errno;
	va_list ap;
	int n;

	if ((int)level < rs_log_min_level)
		return;
	if (!level_valid((int)level))
		level = RS_LOG_ERROR;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';

	pthread_mutex_lock(&logger.lock);
	if (reopen_pending) {
		reopen_pending = 0;
		reopen_locked(&reopen_err);
	}
	t.format = logger.format;
	t.target = logger.target;
	t.fd = logger.fd;
	memcpy(t.ident, logger.ident, sizeof(t.ident));
	pthread_mutex_unlock(&logger.lock);

	/* Reported to the old file, which is still the target. */
	if (reopen_err.msg[0])
		rs_log_write(RS_LOG_ERROR, NULL, "%s", reopen_err.msg);

	build_line(&line, &t, level, rid, msg, n >= (int)sizeof(msg));
	emit(&t, level, &line);
	errno = saved_errno;
}

int rs_log_facility(const char *name)
{
	static const struct { const char *n; int f; } map[] = {
		{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV }, { "daemon", LOG_DAEMON },
		{ "user", LOG_USER }, { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
		{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].f;
	return LOG_DAEMON;
}
