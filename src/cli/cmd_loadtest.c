/*
 * resyncctl loadtest: load a web service (resync-fcgi behind its web
 * server, or anything HTTP) and report latency, throughput and errors;
 * thresholds make it a CI gate.  The engine, the scenario reader and the
 * reports are in src/common/loadtest.h; this file parses options, shows
 * progress and writes the reports where asked.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd.h"
#include "loadtest.h"
#include "pool.h"
#include "util.h"

#define PROGRESS_MS 1000

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Every value given for a repeatable option, in order. */
#define EACH_OPT(ctx, option, v)                                                 \
	for (size_t i_ = 0; i_ < (ctx)->nopts; i_++)                             \
		if (strcmp((ctx)->opts[i_].opt->name, (option)) == 0 &&          \
		    ((v) = (ctx)->opts[i_].value, 1))

static int opt_uint(struct cmd_ctx *ctx, const char *name, uint64_t max, uint64_t *out,
		    bool *given)
{
	const char *v = cmd_opt(ctx, name), *why;
	int64_t n;

	*given = v != NULL;
	if (!v)
		return 0;
	if (rs_parse_int64(v, &n, &why) < 0 || n < 1 || (uint64_t)n > max)
		return cmd_usage_error(ctx, "invalid --%s '%s': a whole number from 1 to %llu", name,
				       v, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

static int opt_rate(struct cmd_ctx *ctx, const char *name, double *out, bool *given)
{
	const char *v = cmd_opt(ctx, name);
	char *end;
	double d;

	*given = v != NULL;
	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d > 0) || d > 1e7)
		return cmd_usage_error(ctx, "invalid --%s '%s': a number per second above 0", name, v);
	*out = d;
	return 0;
}

static int opt_duration(struct cmd_ctx *ctx, const char *name, int64_t *out, bool *given)
{
	const char *v = cmd_opt(ctx, name), *why;
	int64_t ms;

	*given = v != NULL;
	if (!v)
		return 0;
	if (rs_parse_duration_ms(v, &ms, &why) < 0)
		return cmd_usage_error(ctx, "invalid --%s '%s': %s (e.g. 30s, 5m)", name, v, why);
	*out = ms;
	return 0;
}

/* "1s" or "1s-3s" */
static int opt_think(struct cmd_ctx *ctx, struct rs_lt_settings *st, bool *given)
{
	const char *v = cmd_opt(ctx, "think-time"), *why;
	char lo[32];
	const char *dash;
	int64_t a, b;

	*given = v != NULL;
	if (!v)
		return 0;
	dash = strchr(v, '-');
	if (!dash) {
		if (rs_parse_duration_ms(v, &a, &why) < 0)
			goto bad;
		st->think_min_ms = st->think_max_ms = a;
		return 0;
	}
	if ((size_t)(dash - v) >= sizeof(lo))
		goto bad;
	memcpy(lo, v, (size_t)(dash - v));
	lo[dash - v] = '\0';
	if (rs_parse_duration_ms(lo, &a, &why) < 0 || rs_parse_duration_ms(dash + 1, &b, &why) < 0 ||
	    b < a)
		goto bad;
	st->think_min_ms = a;
	st->think_max_ms = b;
	return 0;
bad:
	return cmd_usage_error(ctx, "invalid --think-time '%s': a duration or a range such as 1s-3s", v);
}

/* The scenario's settings, then the options over them. */
static int settings(struct cmd_ctx *ctx, const struct rs_lt_scenario *sc, struct rs_lt_settings *st)
{
	bool g_users, g_spawn, g_think, g_rate, g_ramp, g_conns, g_dur, g_req, g_thr, g_to;
	uint64_t users = 0, conns = 0, reqs = 0, threads = 0;

	*st = sc->settings;
	if (opt_uint(ctx, "users", 1000000, &users, &g_users) ||
	    opt_rate(ctx, "spawn-rate", &st->spawn_rate, &g_spawn) ||
	    opt_think(ctx, st, &g_think) ||
	    opt_rate(ctx, "rate", &st->rate, &g_rate) ||
	    opt_duration(ctx, "ramp", &st->ramp_ms, &g_ramp) ||
	    opt_uint(ctx, "connections", 100000, &conns, &g_conns) ||
	    opt_duration(ctx, "duration", &st->duration_ms, &g_dur) ||
	    opt_uint(ctx, "requests", UINT64_MAX / 4, &reqs, &g_req) ||
	    opt_uint(ctx, "threads", 64, &threads, &g_thr) ||
	    opt_duration(ctx, "timeout", &st->timeout_ms, &g_to))
		return -1;
	if (g_users && g_rate)
		return cmd_usage_error(ctx, "--users (closed model) and --rate (open model) "
				       "cannot be used together"), -1;
	if ((g_users || g_spawn || g_think) && (g_ramp || g_conns) && !g_rate)
		return cmd_usage_error(ctx, "--ramp and --connections belong to the open model (--rate)"), -1;
	if (g_users) {
		st->users = (unsigned)users;
		st->model = RS_LT_CLOSED;
	}
	if (g_rate)
		st->model = RS_LT_OPEN;
	if (st->model == RS_LT_OPEN && (g_spawn || g_think))
		return cmd_usage_error(ctx, "--spawn-rate and --think-time belong to the closed "
				       "model (--users)"), -1;
	if (g_conns)
		st->connections = (unsigned)conns;
	if (g_req)
		st->requests = reqs;
	if (g_thr)
		st->threads = (unsigned)threads;
	if (cmd_flag(ctx, "http2"))
		st->http2 = true;
	if (cmd_flag(ctx, "insecure"))
		st->insecure = true;
	if (g_dur && st->duration_ms <= 0)
		return cmd_usage_error(ctx, "--duration must be above 0"), -1;
	if (!st->duration_ms && !st->requests)
		return cmd_usage_error(ctx, "a run needs a bound: --duration, --requests, or both"), -1;
	return 0;
}

static void fmt_us(uint64_t us, char *buf, size_t n)
{
	if (us < 1000)
		snprintf(buf, n, "%lluus", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.1fms", (double)us / 1000.0);
	else
		snprintf(buf, n, "%.2fs", (double)us / 1e6);
}

static void raise_fd_limit(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max : (rlim_t)want + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static FILE *open_out(struct cmd_ctx *ctx, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (!f)
		cmd_error(ctx, "cannot write '%s': %s", path, strerror(errno));
	return f;
}

static int close_out(struct cmd_ctx *ctx, FILE *f, const char *path)
{
	int bad = ferror(f);

	if (f == stdout)
		bad = fflush(f) != 0 || bad;
	else
		bad = fclose(f) != 0 || bad;
	if (bad) {
		cmd_error(ctx, "writing '%s' failed", path);
		return -1;
	}
	return 0;
}

/* --json, --csv and --html; -1 when one could not be written. */
static int write_reports(struct cmd_ctx *ctx, const struct rs_lt_scenario *sc,
			 const struct rs_lt_result *r, const struct rs_lt_verdict *v, unsigned nv)
{
	const char *path;
	FILE *f;
	int rc = 0;

	if ((path = cmd_opt(ctx, "json"))) {
		json_t *doc = rs_lt_report_json(sc, r, v, nv);
		if (!doc) {
			cmd_error(ctx, "out of memory");
			rc = -1;
		} else if ((f = open_out(ctx, path))) {
			json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', f);
			rc |= close_out(ctx, f, path);
		} else {
			rc = -1;
		}
		json_decref(doc);
	}
	if ((path = cmd_opt(ctx, "csv"))) {
		if ((f = open_out(ctx, path)))
			rc |= rs_lt_report_csv(f, r) | close_out(ctx, f, path);
		else
			rc = -1;
	}
	if ((path = cmd_opt(ctx, "html"))) {
		if ((f = open_out(ctx, path)))
			rc |= rs_lt_report_html(f, sc, r, v, nv) | close_out(ctx, f, path);
		else
			rc = -1;
	}
	return rc ? -1 : 0;
}

/* A report written to standard output takes it: the summary stays out. */
static bool report_to_stdout(struct cmd_ctx *ctx)
{
	static const char *const names[] = { "json", "csv", "html" };

	for (size_t i = 0; i < 3; i++) {
		const char *v = cmd_opt(ctx, names[i]);
		if (v && !strcmp(v, "-"))
			return true;
	}
	return false;
}

static int run_loadtest(struct cmd_ctx *ctx)
{
	struct rs_lt_scenario sc;
	struct rs_lt_settings st;
	struct rs_lt_result res;
	struct rs_lt_run *run = NULL;
	struct rs_err err = RS_ERR_INIT;
	struct rs_lt_verdict *v = NULL;
	const char *val, *base = cmd_opt(ctx, "base-url"), *vars = cmd_opt(ctx, "vars");
	bool progress = ctx->g.verbosity >= 0 && isatty(STDERR_FILENO);
	int rc = CMD_FAIL;

	rs_lt_scenario_init(&sc);
	if (ctx->argc && rs_lt_scenario_load(&sc, ctx->argv[0], &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		goto out;
	}
	EACH_OPT(ctx, "url", val)
		if (rs_lt_scenario_add_url(&sc, val, &err) < 0) {
			cmd_usage_error(ctx, "--url '%s': %s", val, err.msg);
			goto out;
		}
	if (base) {
		free(sc.base_url);
		if (!(sc.base_url = strdup(base))) {
			cmd_error(ctx, "out of memory");
			goto out;
		}
	}
	EACH_OPT(ctx, "header", val)
		if (rs_lt_scenario_add_header(&sc, val, &err) < 0) {
			cmd_usage_error(ctx, "--header '%s': %s", val, err.msg);
			goto out;
		}
	EACH_OPT(ctx, "threshold", val)
		if (rs_lt_scenario_add_threshold(&sc, val, &err) < 0) {
			cmd_usage_error(ctx, "%s", err.msg);
			goto out;
		}
	if (vars && rs_lt_scenario_load_vars(&sc, vars, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		goto out;
	}
	if (!sc.nrequests) {
		cmd_usage_error(ctx, "nothing to request: give --url URL or a SCENARIO file");
		goto out;
	}
	if (rs_lt_scenario_check(&sc, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		goto out;
	}
	if (settings(ctx, &sc, &st) < 0)
		goto out;
	raise_fd_limit(st.model == RS_LT_CLOSED ? st.users : st.connections);
	signal(SIGPIPE, SIG_IGN);
	if (rs_pool_global_init(&err) < 0 || rs_lt_start(&run, &sc, &st, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct rs_lt_progress p;
	bool stopping = false;
	int64_t shown = 0;
	while (!rs_lt_wait(run, interrupted && !stopping ? 0 : PROGRESS_MS / 5, &p)) {
		if (interrupted && !stopping) {
			rs_lt_stop(run);
			stopping = true;
		}
		if (progress && p.elapsed_ms / PROGRESS_MS != shown) {
			char p95[32];
			shown = p.elapsed_ms / PROGRESS_MS;
			fmt_us(p.p95_us, p95, sizeof(p95));
			fprintf(stderr, "\r\033[K%4llds  %8.0f req/s  p95 %-8s  %llu requests  %llu errors",
				(long long)(p.elapsed_ms / 1000), p.rps, p95,
				(unsigned long long)p.requests, (unsigned long long)p.errors);
			if (st.model == RS_LT_CLOSED)
				fprintf(stderr, "  %u users", p.users);
			fflush(stderr);
		}
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	rs_lt_finish(run, &res);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);

	v = calloc(sc.nthresholds ? sc.nthresholds : 1, sizeof(*v));
	unsigned failed = v ? rs_lt_thresholds_eval(&sc, &res, v) : sc.nthresholds;
	if (ctx->g.json && !cmd_opt(ctx, "json")) {
		json_t *doc = rs_lt_report_json(&sc, &res, v, v ? sc.nthresholds : 0);
		if (doc)
			cmd_print_json(doc);
	} else if (ctx->g.verbosity >= 0 && !report_to_stdout(ctx)) {
		rs_lt_report_text(stdout, &sc, &res, v, v ? sc.nthresholds : 0);
	} else {
		for (unsigned i = 0; v && i < sc.nthresholds; i++)
			if (!v[i].pass)
				cmd_error(ctx, "threshold failed: %s", v[i].threshold->text);
	}
	fflush(stdout);
	rc = failed ? CMD_BAD : CMD_OK;
	if (write_reports(ctx, &sc, &res, v, v ? sc.nthresholds : 0) < 0)
		rc = CMD_FAIL;
	rs_lt_result_free(&res);
out:
	free(v);
	rs_lt_scenario_free(&sc);
	return rc;
}

static const struct cmd_option options[] = {
	{ "url", 'u', "URL", "request URL (repeatable: each gets an equal share)" },
	{ "base-url", 0, "URL", "prefix of the scenario's paths (overrides its base_url)" },
	{ "header", 'H', "'NAME: VALUE'", "add a header to every request (repeatable)" },
	{ "vars", 0, "CSV", "variables for ${NAME} in paths, headers and bodies" },
	{ "users", 0, "N", "closed model: N users, each waiting for its answer (default 10)" },
	{ "spawn-rate", 0, "R", "closed model: users started per second (default: all at once)" },
	{ "think-time", 0, "T[-T]", "closed model: pause after each answer, or a random one in a range" },
	{ "rate", 'r', "R", "open model: R requests per second, latency from their intended time" },
	{ "ramp", 0, "D", "open model: grow the rate from 0 over D" },
	{ "connections", 0, "N", "open model: at most N requests in flight (default 64)" },
	{ "duration", 'd', "D", "stop after D (30s, 5m)" },
	{ "requests", 'n', "N", "stop after N requests" },
	{ "threads", 't', "N", "generator threads (default: one per CPU, at most 8)" },
	{ "timeout", 0, "D", "per request (default 10s); a later answer is a timeout error" },
	{ "http2", 0, NULL, "use HTTP/2 where the server offers it (TLS ALPN)" },
	{ "insecure", 'k', NULL, "do not verify TLS certificates" },
	{ "threshold", 0, "EXPR", "pass/fail rule, e.g. 'p95<200ms', 'error_rate<1%', 'rps>500' (repeatable)" },
	{ "json", 0, "FILE", "write the full results as JSON ('-': standard output)" },
	{ "csv", 0, "FILE", "write the per-second series as CSV" },
	{ "html", 0, "FILE", "write a self-contained HTML report with charts" },
	{ 0 },
};

const struct cmd_entry cmd_loadtest = {
	.name = "loadtest",
	.usage = "loadtest [options] [SCENARIO]",
	.summary = "load an HTTP service and check latency, throughput and errors",
	.description =
		"Sends the requests of SCENARIO (an INI or JSON file) and/or --url, either as\n"
		"--users N closed-loop users or at an open --rate, bounded by --duration\n"
		"and/or --requests (Ctrl-C stops early and still reports). Prints a summary\n"
		"with corrected percentiles; --threshold rules make it a CI gate.\n"
		"exit status: 0 every threshold passed, 1 a threshold failed, 2 usage error,\n"
		"unreachable target or a report that could not be written",
	.options = options,
	.max_args = 1,
	.run = run_loadtest,
};
