/*
 * resync-fcgi: the FastCGI responder (resync-fcgi(8)).
 *
 * main: options, configuration, the socket, the threads, and signals.
 * Signals are blocked in every thread and taken by this one with
 * sigtimedwait, so a handler never runs in a worker and the libfcgi
 * handlers (see ../shared/BASELINES.md) are never installed: ours are set
 * before FCGX_Init, which only installs its own where none is set.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "util.h"
#include "validate.h"

#define DEFAULT_CONFIG RS_SYSCONFDIR "/resync/resync.conf"
#define LISTEN_BACKLOG 1024
#define SD_LISTEN_FDS_START 3
/* After shutdown_timeout with requests still running: the last flush's
 * own limit. */
#define FINAL_FLUSH_MS 2000

enum { EXIT_INVALID = 1, EXIT_TROUBLE = 2 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: resync-fcgi [-c FILE] [-l unix:PATH | HOST:PORT] [-t N] [--check]\n"
		"\n"
		"The Resync FastCGI responder.  Without --listen it serves the socket\n"
		"[server] listen names, else one passed by systemd (LISTEN_FDS) or on\n"
		"fd 0 (spawn-fcgi, Apache, lighttpd); started as CGI it answers one request.\n"
		"\n"
		"  -c, --config FILE    configuration (default $RESYNC_CONFIG, then\n"
		"                       " DEFAULT_CONFIG ")\n"
		"  -l, --listen ADDR    listen on unix:/PATH or HOST:PORT\n"
		"  -t, --threads N      worker threads (default: [server] threads,\n"
		"                       0 there = twice the CPUs)\n"
		"      --check          validate the configuration and exit\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n"
		"\n"
		"Signals: TERM/INT drain and exit, HUP reloads the configuration,\n"
		"USR1 reopens the log files.  See resync-fcgi(8).\n");
}

static void print_diags(const struct rs_diags *d, bool errors_only)
{
	struct rs_buf line;

	rs_buf_init(&line, 1 << 16);
	for (size_t i = 0; i < d->n; i++) {
		if (errors_only && d->v[i].sev != RS_SEV_ERROR)
			continue;
		rs_buf_reset(&line);
		rs_diag_format_text(&d->v[i], &line);
		if (errors_only)
			RS_LOG(RS_LOG_ERROR, NULL, "%s", rs_buf_str(&line));
		else
			fprintf(stderr, "%s\n", rs_buf_str(&line));
	}
	rs_buf_free(&line);
}

/* Load and validate; NULL when it cannot be used.  With `log` the problems
 * are log lines (a reload), else they go to stderr (start-up). */
static struct rs_config *load_config(const char *path, bool log, int *why)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_diags diags;
	struct rs_config *cfg;

	rs_diags_init(&diags);
	cfg = rs_config_load(path, NULL, &diags, &err);
	if (!cfg) {
		if (log)
			RS_LOG(RS_LOG_ERROR, NULL, "cannot reload: %s", err.msg);
		else
			fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		*why = EXIT_TROUBLE;
		rs_diags_free(&diags);
		return NULL;
	}
	rs_config_check(cfg, &diags);
	rs_diags_sort(&diags);
	/* as CGI every request would repeat the warnings: errors only */
	print_diags(&diags, log || getenv("GATEWAY_INTERFACE"));
	if (diags.errors) {
		if (log)
			RS_LOG(RS_LOG_ERROR, NULL, "not reloading: '%s' has %zu error%s; "
			       "the running configuration is kept", path, diags.errors,
			       diags.errors == 1 ? "" : "s");
		else
			fprintf(stderr, "resync-fcgi: invalid configuration '%s' "
				"(%zu error%s): refusing to start\n", path, diags.errors,
				diags.errors == 1 ? "" : "s");
		rs_config_free(cfg);
		cfg = NULL;
		*why = EXIT_INVALID;
	}
	rs_diags_free(&diags);
	return cfg;
}

/* A relative log path is relative to the configuration file's directory,
 * as [persistence] db is, not to wherever the process was started. */
static const char *log_path(const struct rs_config *cfg, const char *v,
			    char *buf, size_t n)
{
	const char *cf = rs_config_path(cfg);
	const char *slash = cf ? strrchr(cf, '/') : NULL;

	if (!v || v[0] == '/' || strcmp(v, "stderr") == 0 || strcmp(v, "off") == 0 ||
	    strcmp(v, "syslog") == 0 || !slash)
		return v;
	snprintf(buf, n, "%.*s/%s", (int)(slash - cf), cf, v);
	return buf;
}

static int setup_logs(const struct rs_config *cfg, struct rs_err *err)
{
	char obuf[4096], abuf[4096];
	const char *out = log_path(cfg, rs_config_str(cfg, "log", "output"), obuf, sizeof(obuf));
	struct rs_log_options o = {
		.level = (enum rs_log_level)rs_log_level_parse(rs_config_str(cfg, "log", "level")),
		.format = strcmp(rs_config_str(cfg, "log", "format"), "json") == 0
				  ? RS_LOG_JSON : RS_LOG_TEXT,
		.target = strcmp(out, "stderr") == 0 ? RS_LOG_STDERR
			  : strcmp(out, "syslog") == 0 ? RS_LOG_SYSLOG : RS_LOG_FILE,
		.path = out,
		.ident = "resync-fcgi",
		.syslog_facility = rs_log_facility(rs_config_str(cfg, "log", "syslog_facility")),
	};
	if ((int)o.level < 0)
		o.level = RS_LOG_INFO;
	if (rs_log_setup(&o, err) < 0)
		return -1;
	return accesslog_setup(log_path(cfg, rs_config_str(cfg, "log", "access_log"), abuf,
					sizeof(abuf)), err);
}

/* ---- sockets --------------------------------------------------------- */

static int listen_unix(struct server *s, const char *path, struct rs_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return rs_err_set(err, "socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	/* a socket file left by a previous run is replaced; anything else
	 * at that path is not ours to remove */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return rs_err_set(err, "'%s' exists and is not a socket", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rs_err_errno(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		int e = errno;
		close(fd);
		return rs_err_errno(err, e, "cannot listen on '%s'", path);
	}
	s->unix_path = strdup(path);
	return fd;
}

static int listen_tcp(const char *spec, struct rs_err *err)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	int fd = -1, e = 0, one = 1;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return rs_err_set(err, "bad listen address '%s': use unix:/PATH or HOST:PORT", spec);
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[') {   /* [::1]:9000 */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (gai)
		return rs_err_set(err, "cannot resolve '%s': %s", spec, gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTEN_BACKLOG) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rs_err_errno(err, e, "cannot listen on '%s'", spec);
	return fd;
}

static bool is_listening_socket(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* The listening socket, or -1 for CGI; -2 with err on failure. */
static int choose_socket(struct server *s, const char *spec, struct rs_err *err)
{
	if (spec && *spec) {
		int fd = strncmp(spec, "unix:", 5) == 0 ? listen_unix(s, spec + 5, err)
							: listen_tcp(spec, err);
		return fd < 0 ? -2 : fd;
	}
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	if (fds && pid && atol(pid) == (long)getpid()) {
		if (atoi(fds) != 1) {
			rs_err_set(err, "systemd passed %s sockets; resync-fcgi takes one", fds);
			return -2;
		}
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		return SD_LISTEN_FDS_START;
	}
	if (is_listening_socket(STDIN_FILENO))
		return STDIN_FILENO;
	if (getenv("GATEWAY_INTERFACE") || getenv("REQUEST_METHOD"))
		return -1;
	rs_err_set(err, "no FastCGI socket: give --listen unix:/PATH or HOST:PORT, "
		   "set [server] listen, or start it from spawn-fcgi, systemd or a web server");
	return -2;
}

/* ---- reload -------------------------------------------------------------- */

/* Has any [upstream], [breaker] or [route] section changed (added,
 * removed, or a value)? */
static bool named_changed(const struct rs_config *a, const struct rs_config *b,
			  const char *type)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct rs_config *x = pass ? b : a, *y = pass ? a : b;

		for (size_t i = 0; i < rs_config_nsections(x); i++) {
			const struct rs_conf_section *sx = rs_config_section_at(x, i), *sy;

			if (strcmp(sx->schema->name, type) != 0)
				continue;
			if (!(sy = rs_config_find(y, type, sx->name)))
				return true;
			for (size_t k = 0; k < rs_schema_nkeys; k++) {
				const struct rs_schema_key *key = &rs_schema_keys[k];
				if (strcmp(key->section, type) != 0)
					continue;
				const struct rs_conf_value *va = rs_conf_get(sx, key->name),
					*vb = rs_conf_get(sy, key->name);
				if (strcmp(va && va->raw ? va->raw : "", vb && vb->raw ? vb->raw : ""))
					return true;
			}
		}
	}
	return false;
}

/* Keys read once at start: a change is reported, not applied. */
static void report_restart_keys(const struct rs_config *old, const struct rs_config *nu)
{
	static const char *const sections[] = { "cache", "persistence", "pool", "retry" };
	static const char *const server_keys[] = { "listen", "threads" };

	static const char *const named[] = { "upstream", "breaker", "route" };

	for (size_t i = 0; i < RS_ARRAY_SIZE(named); i++)
		if (named_changed(old, nu, named[i]))
			RS_LOG(RS_LOG_WARNING, NULL, "[%s] sections changed: they need a restart; "
			       "the running ones are kept", named[i]);
	for (size_t k = 0; k < rs_schema_nkeys; k++) {
		const struct rs_schema_key *key = &rs_schema_keys[k];
		bool restart = false;
		for (size_t i = 0; i < RS_ARRAY_SIZE(sections); i++)
			restart |= strcmp(key->section, sections[i]) == 0;
		for (size_t i = 0; i < RS_ARRAY_SIZE(server_keys); i++)
			restart |= strcmp(key->section, "server") == 0 &&
				   strcmp(key->name, server_keys[i]) == 0;
		if (!restart)
			continue;
		const struct rs_conf_value *a = rs_conf_get(rs_config_find(old, key->section, NULL), key->name);
		const struct rs_conf_value *b = rs_conf_get(rs_config_find(nu, key->section, NULL), key->name);
		const char *va = a && a->raw ? a->raw : "", *vb = b && b->raw ? b->raw : "";
		if (strcmp(va, vb) != 0)
			RS_LOG(RS_LOG_WARNING, NULL, "[%s] %s changed: it needs a restart; "
			       "the running value is kept", key->section, key->name);
	}
}

/* The SHA-256 of a configuration file in hex ("-" when unreadable): the
 * audit record of a reload names the file's old and new contents. */
static void file_sha256(const char *path, char out[65])
{
	unsigned char md[32];
	char buf[65536];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	FILE *f = path ? fopen(path, "rb") : NULL;
	bool ok = c && f && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	size_t n;

	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(c, buf, n);
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(c, md, NULL);
	if (ok)
		rs_hex_encode(md, sizeof(md), out);
	else
		strcpy(out, "-");
	if (f)
		fclose(f);
	EVP_MD_CTX_free(c);
}

static void audit_reload(struct server *s, bool ok, const char *why)
{
	char now[65];

	file_sha256(s->config_path, now);
	audit_system(s, "config.reload", ok ? RS_AUDIT_SUCCESS : RS_AUDIT_FAILURE, s->config_path,
		     json_pack("{s:s,s:s,s:s?}", "old_sha256", s->config_sha256,
			       "new_sha256", now, "error", why));
	if (ok)
		memcpy(s->config_sha256, now, sizeof(now));
}

static void reload(struct server *s)
{
	struct rs_err err = RS_ERR_INIT;
	int why = 0;
	struct rs_config *cfg = load_config(s->config_path, true, &why);

	if (!cfg) {
		atomic_fetch_add(&s->reload_failures, 1);
		audit_reload(s, false, "the configuration has errors");
		return;
	}
	struct srv_conf *old = conf_get(s);
	report_restart_keys(old->cfg, cfg);
	conf_put(s, old);
	if (setup_logs(cfg, &err) < 0)
		RS_LOG(RS_LOG_ERROR, NULL, "reload: %s; the previous log target is kept", err.msg);
	struct srv_conf *c = srv_conf_new(cfg, &err);
	if (!c) {
		RS_LOG(RS_LOG_ERROR, NULL, "reload failed: %s", err.msg);
		rs_config_free(cfg);
		atomic_fetch_add(&s->reload_failures, 1);
		audit_reload(s, false, err.msg);
		return;
	}
	c->refs = 1;
	pthread_mutex_lock(&s->conf_lock);
	old = s->conf;
	s->conf = c;
	pthread_mutex_unlock(&s->conf_lock);
	conf_put(s, old);
	atomic_fetch_add(&s->reloads, 1);
	RS_LOG(RS_LOG_NOTICE, NULL, "configuration reloaded from %s", s->config_path);
	audit_reload(s, true, NULL);
}

/* ---- main -------------------------------------------------------------- */

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)(2 * n) : 2;
}

static int open_store(struct server *s, const struct rs_config *cfg, struct rs_err *err)
{
	struct rs_store_options so;
	struct rs_store_recovery rec;
	char host[64] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(s->origin, sizeof(s->origin), "resync-fcgi/%ld@%s", (long)getpid(), host);
	rs_store_options_from_config(cfg, s->origin, &so);
	s->sync = so.sync;
	s->max_key = so.cache.max_key_bytes ? so.cache.max_key_bytes : RS_CACHE_MAX_KEY_BYTES;
	s->db_path = so.db_path ? strdup(so.db_path) : NULL;
	if (rs_store_open(&s->store, &so, &rec, err) < 0)
		return -1;
	if (s->sync != RS_WAL_SYNC_OFF)
		RS_LOG(getenv("GATEWAY_INTERFACE") ? RS_LOG_DEBUG : RS_LOG_INFO, NULL,
		       "cache recovered from %s: %llu entries from snapshot %lld, "
		       "%llu log records replayed, up to seq %lld, in %lld ms%s%s",
		       s->db_path, (unsigned long long)rec.snapshot.entries,
		       (long long)rec.snapshot.loaded_id, (unsigned long long)rec.replayed,
		       (long long)rec.last_seq, (long long)rec.took_ms,
		       rec.log.stopped ? "; the log stops at a bad record: " : "",
		       rec.log.stopped ? rec.log.reason : "");
	return 0;
}

/* The upstreams and the HWA routes over them; after the store, whose
 * cache the routes fill. */
static int upstreams_init(struct server *s, const struct rs_config *cfg,
			  struct rs_err *err)
{
	struct rs_store_options so;

	rs_store_options_from_config(cfg, s->origin, &so);
	if (rs_upstreams_new(&s->ups, cfg, so.cache.max_value_bytes ?
			     so.cache.max_value_bytes : (size_t)RS_MIB, err) < 0)
		return -1;
	if (rs_hwa_new(&s->hwa, cfg, s->ups, rs_store_cache(s->store), err) < 0 ||
	    rs_ask_new(&s->ask, cfg, s->ups, err) < 0)
		return -1;
	if (breakers_load(s, err) < 0)
		return -1;
	return alerts_start(s, cfg, err);
}

struct flush_job {
	struct rs_store *store;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	int rc;
};

static void *flush_main(void *arg)
{
	struct flush_job *j = arg;
	int rc = rs_store_flush(j->store, NULL);

	pthread_mutex_lock(&j->lock);
	j->rc = rc;
	j->done = true;
	pthread_cond_signal(&j->done_cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* rs_store_flush, given up after ms: 0, or -1 (failed or still waiting;
 * the job is then left to the process's exit). */
static int flush_bounded(struct rs_store *store, int ms)
{
	static struct flush_job j = { .lock = PTHREAD_MUTEX_INITIALIZER,
				      .done_cond = PTHREAD_COND_INITIALIZER };
	struct timespec until;
	pthread_t t;
	int rc = 0;

	j.store = store;
	if (pthread_create(&t, NULL, flush_main, &j) != 0)
		return -1;
	pthread_detach(t);
	rs_deadline_after(&until, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&j.lock);
	while (!j.done && rc == 0)
		rc = pthread_cond_timedwait(&j.done_cond, &j.lock, &until);
	rc = j.done ? j.rc : -1;
	pthread_mutex_unlock(&j.lock);
	return rc;
}

static void nothing(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct server srv;
	struct server *s = &srv;
	const char *config = getenv("RESYNC_CONFIG"), *listen_spec = NULL;
	long threads = -1;
	bool check = false;
	struct rs_err err = RS_ERR_INIT;
	int opt, why = 0, rc = EXIT_TROUBLE;

	while ((opt = getopt_long(argc, argv, "c:l:t:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'l': listen_spec = optarg; break;
		case 't': {
			char *end;
			threads = strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > 1024) {
				fprintf(stderr, "resync-fcgi: --threads: '%s' is not a number from 1 to 1024\n",
					optarg);
				return EXIT_TROUBLE;
			}
			break;
		}
		case 'C': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("resync-fcgi (resync) %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return EXIT_TROUBLE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "resync-fcgi: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_TROUBLE;
	}
	if (listen_spec && strncmp(listen_spec, "unix:/", 6) != 0 && !strchr(listen_spec, ':')) {
		fprintf(stderr, "resync-fcgi: --listen: '%s': use unix:/PATH or HOST:PORT\n",
			listen_spec);
		return EXIT_TROUBLE;
	}
	if (!config || !*config)
		config = DEFAULT_CONFIG;
	s->config_path = config;

	struct rs_config *cfg = load_config(config, false, &why);
	if (!cfg)
		return why;
	if (check) {
		printf("%s: OK (environment %s)\n", config, rs_config_environment(cfg));
		rs_config_free(cfg);
		return 0;
	}

	/* signals: ours before FCGX_Init, all blocked so only main takes them */
	sigset_t sigs;
	sigemptyset(&sigs);
	int handled[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE };
	struct sigaction sa = { .sa_handler = nothing };
	for (size_t i = 0; i < RS_ARRAY_SIZE(handled); i++) {
		sigaddset(&sigs, handled[i]);
		sigaction(handled[i], &sa, NULL);
	}
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (setup_logs(cfg, &err) < 0) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		rs_config_free(cfg);
		return EXIT_TROUBLE;
	}
	pthread_mutex_init(&s->conf_lock, NULL);
	s->started_ms = rs_now_ms();
	s->listen_fd = -1;
	if (!listen_spec)
		listen_spec = rs_config_str(cfg, "server", "listen");
	int fd = choose_socket(s, listen_spec, &err);
	if (fd == -2) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		rs_config_free(cfg);
		return EXIT_TROUBLE;
	}
	s->listen_fd = fd;
	if (threads < 0)
		threads = rs_config_num(cfg, "server", "threads");
	s->nthreads = threads > 0 ? (unsigned)threads : default_threads();

	const char *names[32];
	for (size_t i = 0; i < nroutes && i < RS_ARRAY_SIZE(names); i++)
		names[i] = routes[i].pattern;
	s->metrics = rs_metrics_new(names, nroutes, &err);
	rs_cors_monitor_init(&s->cors_mon);
	if (!s->metrics || rs_pool_global_init(&err) < 0 ||
	    rs_ratelimit_new(&s->rl, (size_t)rs_config_num(cfg, "ratelimit", "max_clients"),
			     &err) < 0) {
		fprintf(stderr, "resync-fcgi: cannot initialise: %s\n",
			s->metrics ? err.msg : "out of memory");
		goto out_cfg;
	}
	if (open_store(s, cfg, &err) < 0) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		RS_LOG(RS_LOG_ERROR, NULL, "cannot start: %s", err.msg);
		goto out_cfg;
	}
	/* breakers restored at start are audited as they are saved */
	file_sha256(s->config_path, s->config_sha256);
	if (auditing_start(s, cfg, &err) < 0 || upstreams_init(s, cfg, &err) < 0) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		RS_LOG(RS_LOG_ERROR, NULL, "cannot start: %s", err.msg);
		goto out_store;
	}
	s->conf = srv_conf_new(cfg, &err);
	if (!s->conf) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		goto out_store;
	}
	cfg = NULL;   /* owned by s->conf now */
	s->conf->refs = 1;

	if (fd == -1) {
		/* plain CGI: one request, then flush and exit */
		rc = serve_cgi(s) < 0 ? EXIT_TROUBLE : 0;
		goto out_store;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "resync-fcgi: cannot initialise libfcgi\n");
		goto out_store;
	}
	signal(SIGPIPE, SIG_IGN);   /* FCGX_Init may have replaced it */
	if (workers_start(s, &err) < 0 || housekeeping_start(s, &err) < 0) {
		fprintf(stderr, "resync-fcgi: %s\n", err.msg);
		goto out_store;
	}
	RS_LOG(RS_LOG_NOTICE, NULL, "resync-fcgi %s ready: %u threads on %s", PACKAGE_VERSION,
	       s->nthreads, listen_spec && *listen_spec ? listen_spec
			    : fd == STDIN_FILENO ? "fd 0" : "the systemd socket");

	for (;;) {
		int sig = sigwaitinfo(&sigs, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			reload(s);
		else if (sig == SIGUSR1) {
			rs_log_reopen();
			accesslog_reopen();
			RS_LOG(RS_LOG_NOTICE, NULL, "log files reopened");
		}
	}

	int64_t grace = s->conf->shutdown_timeout_ms;
	RS_LOG(RS_LOG_NOTICE, NULL, "shutting down: finishing %u requests in flight (up to %lld ms)",
	       atomic_load(&s->active), (long long)grace);
	unsigned left = workers_stop(s, grace);
	if (s->unix_path)
		unlink(s->unix_path);
	if (left) {
		/* The stragglers still use the store, and what holds them (a
		 * locked database) may hold the housekeeping thread and a flush
		 * too: flush for a bounded time, then leave without freeing. */
		RS_LOG(RS_LOG_WARNING, NULL, "%u requests still running after %lld ms; exiting anyway",
		       left, (long long)grace);
		housekeeping_signal_stop();
		/* with sync = always every acknowledged write is committed
		 * already: only batch has records waiting */
		if (s->sync == RS_WAL_SYNC_BATCH && flush_bounded(s->store, FINAL_FLUSH_MS) < 0)
			RS_LOG(RS_LOG_ERROR, NULL, "the cache log could not be flushed within %d ms",
			       FINAL_FLUSH_MS);
		rs_log_shutdown();
		_exit(0);
	}
	housekeeping_stop(s);
	rc = 0;
out_store:
	/* the routes fill the store's cache: gone before it is */
	alerts_stop();
	auditing_stop(s);
	rs_hwa_free(s->hwa);
	rs_ask_free(s->ask);
	rs_upstreams_free(s->ups);
	breakers_free();
	s->hwa = NULL;
	s->ask = NULL;
	s->ups = NULL;
	if (s->store && rs_store_close(s->store, &err) < 0) {
		RS_LOG(RS_LOG_ERROR, NULL, "closing the cache log: %s", err.msg);
		rc = EXIT_TROUBLE;
	}
	if (rc == 0 && fd != -1)
		RS_LOG(RS_LOG_NOTICE, NULL, "stopped");
out_cfg:
	if (s->unix_path && rc != 0)
		unlink(s->unix_path);
	free(s->unix_path);
	rs_config_free(cfg);
	if (s->conf)
		srv_conf_free(s->conf);
	rs_metrics_free(s->metrics);
	rs_ratelimit_free(s->rl);
	rs_cors_monitor_destroy(&s->cors_mon);
	free(s->db_path);
	curl_global_cleanup();
	rs_log_shutdown();
	return rc;
}
