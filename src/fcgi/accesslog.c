/*
 * accesslog: one JSON line per request, written with one write(2) so
 * lines from several workers never interleave.
 *
 * As in log.c, a file's descriptor number is kept for the process's life:
 * a reopen (SIGUSR1, logrotate) dups the new file onto it, so a worker
 * that read the number a moment before never writes into a descriptor
 * since reused for something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

#define ACCESS_FILE_MODE 0640

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fd = STDERR_FILENO;   /* where lines go; -1 = off */
static int reserved = -1;        /* the file's descriptor number, once used */
static char *path;               /* when a file */
static volatile sig_atomic_t reopen_pending;

static int open_file(const char *p)
{
	return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, ACCESS_FILE_MODE);
}

/* Put nfd at the reserved number (taking it the first time); under lock. */
static void install(int nfd)
{
	if (reserved < 0) {
		reserved = nfd;
		return;
	}
	dup3(nfd, reserved, O_CLOEXEC);
	close(nfd);
}

int accesslog_setup(const char *target, struct rs_err *err)
{
	bool off = target && strcmp(target, "off") == 0;
	bool file = target && !off && strcmp(target, "stderr") != 0;
	int nfd = -1;

	if (file && (nfd = open_file(target)) < 0)
		return rs_err_errno(err, errno, "cannot open access log '%s'", target);
	char *p = file ? strdup(target) : NULL;
	pthread_mutex_lock(&lock);
	if (file) {
		install(nfd);
		fd = reserved;
	} else {
		fd = off ? -1 : STDERR_FILENO;
	}
	free(path);
	path = p;
	pthread_mutex_unlock(&lock);
	return 0;
}

void accesslog_reopen(void)
{
	reopen_pending = 1;
}

static int current_fd(void)
{
	pthread_mutex_lock(&lock);
	if (reopen_pending) {
		reopen_pending = 0;
		int nfd = path ? open_file(path) : -1;
		if (nfd >= 0)
			install(nfd);
	}
	int f = fd;
	pthread_mutex_unlock(&lock);
	return f;
}

void accesslog_write(const struct req *r)
{
	int f = current_fd();
	char when[32];

	if (f < 0)
		return;
	rs_format_utc(rs_now_ms(), when, sizeof(when));
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I,s:f,s:s?,s:s?,s:s?}",
			      "time", when, "request_id", r->id,
			      "method", r->method, "path", r->path,
			      "status", r->status, "bytes", (json_int_t)r->bytes_sent,
			      "duration_ms", req_elapsed_us(r) / 1e3,
			      "key", r->key_name, "cache", r->cache_status,
			      "remote_addr", r->remote_addr);
	/* only where an upstream was called: most lines have none */
	if (j && r->stage_us[STAGE_UPSTREAM])
		json_object_set_new(j, "upstream_ms",
				    json_real((double)r->stage_us[STAGE_UPSTREAM] / 1e3));
	char *line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(j);
	if (!line)
		return;
	size_t n = strlen(line);
	line[n] = '\n';   /* json_dumps leaves room: replace the NUL */
	ssize_t w = write(f, line, n + 1);
	(void)w;
	free(line);
}
