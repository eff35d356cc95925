/*
 * testcrash.h: the SIGKILL crash-test harness.  A child process writes
 * durably and reports each acknowledged write on a pipe; the parent kills
 * it at a random moment and then checks that every acknowledged write
 * survived.  This runs the child, the clock and the kill.
 */
#ifndef RS_TESTCRASH_H
#define RS_TESTCRASH_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* Everything the child wrote, NUL-terminated. */
struct crash_out {
	char *buf;
	size_t len, cap;
};

/* Read what the child wrote until deadline_ms (monotonic; -1 = until
 * EOF) or until `until` has been seen. */
static inline void crash_drain(int fd, struct crash_out *o,
			       int64_t deadline_ms, const char *until)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;
	int left;

	for (;;) {
		if (until && o->buf &&
		    memmem(o->buf, o->len, until, strlen(until)))
			return;
		left = -1;
		if (deadline_ms >= 0) {
			int64_t d = deadline_ms - rs_monotonic_ms();

			if (d <= 0)
				return;
			left = (int)d;
		}
		if (poll(&p, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (!p.revents)
			continue;
		if (o->cap - o->len < 4096) {
			char *nb = realloc(o->buf, o->cap + 65536);

			if (!nb)
				return;
			o->buf = nb;
			o->cap += 65536;
		}
		r = read(fd, o->buf + o->len, o->cap - o->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		o->len += (size_t)r;
		o->buf[o->len] = '\0';
	}
}

/* Fork child(path, fd); wait up to ready_ms for it to write "ready\n"
 * (the clock starts once its database exists, so the kill hits a writer,
 * not a migration), let it run kill_ms more, SIGKILL it, reap it into
 * *status and collect all it wrote into *out.  *ready says whether it got
 * ready.  -1 when the pipe or fork failed (nothing to reap). */
static inline int crash_kill_child(void (*child)(const char *path, int fd),
				   const char *path, int64_t ready_ms,
				   int kill_ms, struct crash_out *out,
				   bool *ready, int *status)
{
	int fds[2];
	pid_t pid;

	*ready = false;
	if (pipe(fds))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child(path, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	crash_drain(fds[0], out, rs_monotonic_ms() + ready_ms, "ready\n");
	*ready = out->buf && strstr(out->buf, "ready\n");
	if (*ready)
		crash_drain(fds[0], out, rs_monotonic_ms() + kill_ms, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	crash_drain(fds[0], out, -1, NULL);
	close(fds[0]);
	return 0;
}

#endif
