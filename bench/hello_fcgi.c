/*
 * hello_fcgi: the baseline of bench/http.  The smallest honest threaded
 * libfcgi responder: N threads on FCGX_Accept_r, every request answered
 * with the same 150-byte JSON body.  Whatever resync-fcgi does on top of
 * this (routing, headers, auth, logging, the cache) is what bench/http
 * measures as a ratio against it, behind the same nginx in the same run.
 *
 * usage: hello_fcgi -l unix:PATH|HOST:PORT [-t THREADS]
 *        (default threads: twice the online CPUs, as resync-fcgi's default)
 *
 * SIGTERM/SIGINT remove a unix socket and exit 0 at once, even when idle:
 * the handlers are installed before FCGX_Init, whose own SIGTERM handler
 * only sets a flag that is looked at after the next connection arrives.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernel caps this at net.core.somaxconn.  It must cover the most
 * connections nginx can have waiting for a thread (bench/http goes to 1000
 * client connections): with fastcgi_keep_conn off every request is a new
 * connection, and a unix socket whose queue is full refuses at once (EAGAIN),
 * which nginx turns into a 502. */
#define LISTEN_BACKLOG 4096
#define MAX_THREADS 1024

#define BODY \
	"{\"status\":\"ok\",\"service\":\"hello_fcgi\",\"version\":\"0.1.0\"," \
	"\"message\":\"a minimal libfcgi responder, the baseline of bench/http\"," \
	"\"pad\":\"xxxxxxxxxxxxxxxxx\"}"
#define BODY_LEN 150
_Static_assert(sizeof(BODY) - 1 == BODY_LEN, "the body must be 150 bytes");

#define STR_(x) #x
#define STR(x) STR_(x)
static const char response[] =
	"Status: 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: " STR(BODY_LEN) "\r\n"
	"\r\n" BODY;

static int listen_fd = -1;
static char unix_path[4096];	/* empty for TCP */

static void on_term(int sig)
{
	(void)sig;
	if (unix_path[0])
		unlink(unix_path);	/* async-signal-safe */
	_exit(0);
}

static void *worker(void *arg)
{
	FCGX_Request req;

	(void)arg;
	if (FCGX_InitRequest(&req, listen_fd, 0) != 0) {
		fprintf(stderr, "hello_fcgi: FCGX_InitRequest failed\n");
		exit(2);
	}
	/* Linux accept() is thread-safe: no accept mutex. */
	while (FCGX_Accept_r(&req) >= 0)
		FCGX_PutStr(response, (int)sizeof(response) - 1, req.out);
	FCGX_Free(&req, 1);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hello_fcgi -l unix:PATH|HOST:PORT [-t THREADS]\n");
}

int main(int argc, char **argv)
{
	const char *listen_arg = NULL, *bind_path;
	long nthreads = 2 * sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t tids[MAX_THREADS];
	struct sigaction sa;
	struct stat st;
	int opt;

	while ((opt = getopt(argc, argv, "l:t:h")) != -1) {
		switch (opt) {
		case 'l':
			listen_arg = optarg;
			break;
		case 't': {
			char *end;

			errno = 0;
			nthreads = strtol(optarg, &end, 10);
			if (errno || *end || nthreads < 1 || nthreads > MAX_THREADS) {
				fprintf(stderr, "hello_fcgi: -t: 1..%d threads\n", MAX_THREADS);
				return 2;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!listen_arg || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (nthreads < 1)
		nthreads = 2;

	bind_path = listen_arg;
	if (strncmp(listen_arg, "unix:", 5) == 0) {
		bind_path = listen_arg + 5;
		if (bind_path[0] != '/' || strlen(bind_path) >= sizeof(unix_path)) {
			fprintf(stderr, "hello_fcgi: unix:PATH needs an absolute path\n");
			return 2;
		}
		memcpy(unix_path, bind_path, strlen(bind_path) + 1);
		/* Replace a stale socket, never any other kind of file. */
		if (lstat(unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(unix_path);
	} else if (!strchr(listen_arg, ':')) {
		fprintf(stderr, "hello_fcgi: -l unix:PATH or HOST:PORT\n");
		return 2;
	}

	/* Before FCGX_Init, so that it keeps ours (see the comment at the top). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (FCGX_Init() != 0) {
		fprintf(stderr, "hello_fcgi: FCGX_Init failed\n");
		return 2;
	}
	listen_fd = FCGX_OpenSocket(bind_path, LISTEN_BACKLOG);
	if (listen_fd < 0) {
		fprintf(stderr, "hello_fcgi: cannot listen on %s: %s\n", listen_arg,
			strerror(errno));
		return 2;
	}
	for (long i = 0; i < nthreads; i++) {
		int rc = pthread_create(&tids[i], NULL, worker, NULL);

		if (rc != 0) {
			fprintf(stderr, "hello_fcgi: pthread_create: %s\n", strerror(rc));
			return 2;
		}
	}
	fprintf(stderr, "hello_fcgi: listening on %s with %ld threads\n", listen_arg,
		nthreads);
	for (long i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	if (unix_path[0])
		unlink(unix_path);
	return 0;
}
