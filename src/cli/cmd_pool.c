/*
 * resyncctl pool: the upstream connection pools.
 *   stats [NAME]     what running responders published (connections,
 *                    reuse, closures, latency, endpoints)
 *   check [NAME]     connect to every endpoint now, as a health check does
 *   validate         the seed's ConnectionPoolValidator on the configuration,
 *                    with its recommended values
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "upstream.h"
#include "util.h"
#include "schema.h"
#include "validate.h"
#include "xalloc.h"

static const char *const sections[] = { "pool", "upstream", "breaker", "retry",
					"persistence", "cache", NULL };

/* NAME, if given, must be a configured [upstream]: CMD_OK or CMD_FAIL. */
static int check_name(struct cmd_ctx *ctx, const struct rs_config *cfg,
		      const char *name)
{
	char known[512] = "";
	size_t len = 0;

	if (!name || rs_config_find(cfg, "upstream", name))
		return CMD_OK;
	for (size_t i = 0; i < rs_config_nsections(cfg) && len < sizeof(known); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);
		if (strcmp(s->schema->name, "upstream") == 0)
			len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
						len ? ", " : "", s->name);
	}
	cmd_error(ctx, "no [upstream %s] in %s (configured: %s)", name,
		  rs_config_path(cfg), known[0] ? known : "none");
	return CMD_FAIL;
}

/* ---- stats ---------------------------------------------------------------- */

static double num(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static void stats_text(const char *origin, const json_t *u)
{
	const json_t *p = json_object_get(u, "pool"), *ep;
	const json_t *cl = json_object_get(p, "closures"), *rq = json_object_get(p, "request_ms"),
		*wt = json_object_get(p, "acquire_wait_ms");
	double hits = num(p, "hits"), misses = num(p, "misses");
	size_t i;

	size_t neps = json_array_size(json_object_get(u, "endpoints"));

	printf("upstream %s (responder %s): %s, %zu endpoint%s\n", str(u, "name"), origin,
	       str(u, "strategy"), neps, neps == 1 ? "" : "s");
	printf("  connections  open %.0f, in use %.0f, idle %.0f, waiting %.0f (min %.0f, max %.0f)\n",
	       num(p, "open"), num(p, "in_use"), num(p, "idle"), num(p, "waiting"),
	       num(p, "min_size"), num(p, "max_size"));
	printf("  reuse        hits %.0f, misses %.0f (%.1f%% reused), created %.0f, exhausted %.0f, leaks %.0f\n",
	       hits, misses, hits + misses > 0 ? 100 * hits / (hits + misses) : 0,
	       num(p, "creations"), num(p, "exhaustions"), num(p, "leaks"));
	printf("  closures     idle %.0f, lifetime %.0f, error %.0f, remote %.0f, rebalance %.0f, shutdown %.0f\n",
	       num(cl, "idle"), num(cl, "lifetime"), num(cl, "error"), num(cl, "remote"),
	       num(cl, "rebalance"), num(cl, "shutdown"));
	printf("  latency      request p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; wait p99 %.1f ms\n",
	       num(rq, "p50"), num(rq, "p95"), num(rq, "p99"), num(wt, "p99"));
	printf("  calls        %.0f, retries %.0f, retries refused by the budget %.0f\n",
	       num(u, "calls"), num(u, "retries"), num(u, "retries_denied"));
	json_array_foreach(json_object_get(u, "endpoints"), i, ep) {
		const char *err = str(ep, "last_error");
		printf("  endpoint     %s %s, %.0f calls, %.0f failures%s%s\n",
		       str(ep, "url"), str(ep, "state"), num(ep, "calls"), num(ep, "failures"),
		       *err ? ": " : "", err);
	}
}

static int run_stats(struct cmd_ctx *ctx)
{
	const char *name = ctx->argc ? ctx->argv[0] : NULL;
	struct rs_config *cfg = cmd_load_config(ctx, sections);
	json_t *live, *out, *row;
	size_t i, shown = 0;
	int rc;

	if (!cfg)
		return CMD_FAIL;
	if ((rc = check_name(ctx, cfg, name)) != CMD_OK) {
		rs_config_free(cfg);
		return rc;
	}
	live = cmd_live_stats(ctx->g.db ? ctx->g.db : rs_config_str(cfg, "persistence", "db"));
	out = json_array();
	json_array_foreach(live, i, row) {
		const char *origin = str(row, "origin");
		json_t *ups = json_object_get(json_object_get(row, "stats"), "upstreams"), *u;
		size_t k;

		json_array_foreach(ups, k, u) {
			if (name && strcmp(name, str(u, "name")))
				continue;
			json_t *copy = json_deep_copy(u);
			json_object_set_new(copy, "responder", json_string(origin));
			json_array_append_new(out, copy);
			if (!ctx->g.json)
				stats_text(origin, u);
			shown++;
		}
	}
	if (ctx->g.json)
		cmd_print_json(out);
	else
		json_decref(out);
	json_decref(live);
	if (!shown && json_array_size(live))
		cmd_error(ctx, "the running resync-fcgi publish no figures for [upstream %s] (restart them after adding it)",
			  name ? name : "");
	else if (!shown)
		cmd_error(ctx, "no running resync-fcgi has published pool figures to %s in the last 10 s",
			  ctx->g.db ? ctx->g.db : rs_config_str(cfg, "persistence", "db"));
	rs_config_free(cfg);
	return shown ? CMD_OK : CMD_BAD;
}

/* ---- check ---------------------------------------------------------------- */

static int run_check(struct cmd_ctx *ctx)
{
	const char *name = ctx->argc ? ctx->argv[0] : NULL;
	struct rs_config *cfg = cmd_load_config(ctx, sections);
	struct rs_upstreams *ups = NULL;
	struct rs_err err = RS_ERR_INIT;
	json_t *out = json_array();
	size_t down = 0, checked = 0;
	int rc = CMD_FAIL;

	if (!cfg)
		goto out;
	if ((rc = check_name(ctx, cfg, name)) != CMD_OK)
		goto out;
	rc = CMD_FAIL;
	if (rs_pool_global_init(&err) < 0 || rs_upstreams_new(&ups, cfg, RS_MIB, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		goto out;
	}
	if (rs_upstreams_count(ups) == 0) {
		cmd_error(ctx, "no [upstream] is configured in %s", rs_config_path(cfg));
		goto out;
	}
	for (size_t i = 0; i < rs_upstreams_count(ups); i++) {
		struct rs_upstream *u = rs_upstreams_at(ups, i);

		if (name && strcmp(name, rs_upstream_name(u)) != 0)
			continue;
		for (size_t k = 0; k < rs_upstream_nendpoints(u); k++) {
			struct rs_probe pr;

			rs_upstream_probe(u, k, &pr);
			checked++;
			down += !pr.ok;
			json_array_append_new(out, json_pack("{s:s,s:s,s:b,s:I,s:s?,s:I,s:s?}",
				"upstream", rs_upstream_name(u), "url", pr.url, "ok", pr.ok,
				"status", (json_int_t)pr.status,
				"error", pr.error ? rs_call_error_name(pr.error) : NULL,
				"latency_ms", (json_int_t)pr.latency_ms,
				"message", pr.message[0] ? pr.message : NULL));
			if (ctx->g.json)
				continue;
			if (pr.ok && ctx->g.verbosity >= 0)
				printf("%-12s %-40s up    HTTP %ld in %lld ms\n", rs_upstream_name(u),
				       pr.url, pr.status, (long long)pr.latency_ms);
			else if (!pr.ok)
				printf("%-12s %-40s DOWN  %s%s\n", rs_upstream_name(u), pr.url,
				       pr.error == RS_CALL_TLS ? "TLS: " : "", pr.message);
		}
	}
	if (ctx->g.json)
		cmd_print_json(json_incref(out));
	else if (ctx->g.verbosity >= 0)
		printf("%zu of %zu endpoints up\n", checked - down, checked);
	rc = down ? CMD_BAD : CMD_OK;
out:
	json_decref(out);
	rs_upstreams_free(ups);
	rs_config_free(cfg);
	return rc;
}

/* ---- validate ------------------------------------------------------------- */

/* The seed's tuned ConnectionPoolConfig. */
static const struct {
	const char *key;
	int64_t value;
	const char *why;
} seed[] = {
	{ "min_size", 3, "fewer connections to open at start-up" },
	{ "max_size", 30, "room for peak load" },
	{ "idle_timeout", 150 * RS_MS_PER_SEC, "idle connections released sooner" },
	{ "connection_timeout", 20 * RS_MS_PER_SEC, "a full pool reported sooner" },
	{ "health_check_interval", 30 * RS_MS_PER_SEC, "a dead endpoint noticed sooner" },
	{ "max_lifetime", RS_MS_PER_HOUR, "fewer reconnections" },
};

static bool pool_diag(const struct rs_diag *g)
{
	static const char *const prefixes[] = { "pool", "upstream ", "breaker ", "retry" };

	for (size_t i = 0; g->section && i < RS_ARRAY_SIZE(prefixes); i++)
		if (strncmp(g->section, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* Worker threads as resync-fcgi counts them (0 = twice the CPUs). */
static int64_t worker_threads(const struct rs_config *cfg)
{
	int64_t t = rs_config_num(cfg, "server", "threads");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return t > 0 ? t : 2 * (cpus > 0 ? cpus : 1);
}

static void recommend(struct cmd_ctx *ctx, json_t *jr, const char *key,
		      const char *have, const char *want, const char *why)
{
	json_array_append_new(jr, json_pack("{s:s,s:s,s:s,s:s}", "key", key,
		"value", have, "recommended", want, "why", why));
	if (!ctx->g.json)
		printf("recommendation: [pool] %s = %s (now %s): %s\n", key, want, have, why);
}

static int run_validate(struct cmd_ctx *ctx)
{
	const char *path = cmd_config_path(ctx);
	struct rs_err err = RS_ERR_INIT;
	struct rs_config *cfg;
	struct rs_diags diags;
	json_t *jd, *jr;
	size_t errors = 0;
	char have[32], want[32];

	/* every problem of the pool's sections is the report, not a reason
	 * to stop */
	rs_diags_init(&diags);
	if (!(cfg = rs_config_load(path, NULL, &diags, &err))) {
		cmd_error(ctx, "%s", err.msg);
		rs_diags_free(&diags);
		return CMD_FAIL;
	}
	rs_config_check(cfg, &diags);
	rs_diags_sort(&diags);
	jd = json_array();
	jr = json_array();
	for (size_t i = 0; i < diags.n; i++) {
		const struct rs_diag *g = &diags.v[i];
		struct rs_buf line;

		if (!pool_diag(g))
			continue;
		errors += g->sev == RS_SEV_ERROR;
		json_array_append_new(jd, json_pack("{s:s,s:s?,s:s?,s:s}", "severity",
			rs_severity_name(g->sev), "section", g->section, "key", g->key,
			"message", g->msg));
		if (ctx->g.json)
			continue;
		rs_buf_init(&line, 4096);
		rs_diag_format_text(g, &line);
		printf("%s\n", rs_buf_str(&line));
		rs_buf_free(&line);
	}
	int64_t threads = worker_threads(cfg);
	for (size_t i = 0; i < RS_ARRAY_SIZE(seed); i++) {
		const struct rs_schema_key *k = rs_schema_key("pool", seed[i].key);
		int64_t v = rs_config_num(cfg, "pool", seed[i].key), rec = seed[i].value;
		const char *why = seed[i].why;

		/* fewer connections than workers: requests queue for one */
		if (strcmp(seed[i].key, "max_size") == 0 && threads > rec) {
			rec = threads;
			why = "at least one connection per worker thread, so requests do not wait for one";
		}
		if (v == rec || (strcmp(seed[i].key, "max_size") == 0 && v > rec))
			continue;
		rs_schema_format_number(k->type, v, have, sizeof(have));
		rs_schema_format_number(k->type, rec, want, sizeof(want));
		recommend(ctx, jr, seed[i].key, have, want, why);
	}
	if (ctx->g.json)
		cmd_print_json(json_pack("{s:b,s:o,s:o}", "ok", errors == 0,
					 "diagnostics", jd, "recommendations", jr));
	else {
		json_decref(jd);
		json_decref(jr);
		if (ctx->g.verbosity >= 0)
			printf("%s: pool settings %s\n", path,
			       errors ? "have errors" : "are valid");
	}
	rs_diags_free(&diags);
	rs_config_free(cfg);
	return errors ? CMD_BAD : CMD_OK;
}

static const struct cmd_option no_options[] = { { NULL, 0, NULL, NULL } };

static const struct cmd_entry pool_stats = {
	.name = "stats", .usage = "pool stats [NAME]",
	.summary = "show live pool figures published by running responders",
	.description = "Connections open, in use, idle and waiting; reuse (hits and misses), "
	"closures by reason, request and wait latency, retries, and each "
	"endpoint's state, for every [upstream] (or NAME), as published every "
	"second by each running resync-fcgi.  Exit 1 when no responder has "
	"published in the last 10 seconds.",
	.options = no_options, .max_args = 1, .run = run_stats,
};

static const struct cmd_entry pool_check = {
	.name = "check", .usage = "pool check [NAME]",
	.summary = "connect to every endpoint now and report",
	.description = "Runs the health check of every endpoint of every [upstream] (or NAME) "
	"from this machine: health_check_path must answer 2xx, or without it "
	"the base URL below 500.  Prints each endpoint's status and latency, "
	"and TLS problems by name.  Exit 1 when any endpoint is down.",
	.options = no_options, .max_args = 1, .run = run_check,
};

static const struct cmd_entry pool_validate = {
	.name = "validate", .usage = "pool validate",
	.summary = "check the pool settings and compare them with the recommended ones",
	.description = "The connection-pool rules of config-validate ([pool], [upstream], "
	"[breaker], [retry]), then each [pool] setting that differs from the "
	"seed's tuned values, and max_size against [server] threads.  Exit 1 "
	"on an error; recommendations alone exit 0.",
	.options = no_options, .run = run_validate,
};

static const struct cmd_entry *const pool_verbs[] = {
	&pool_stats, &pool_check, &pool_validate, NULL,
};

const struct cmd_entry cmd_pool = {
	.name = "pool",
	.usage = "pool <command> [options]",
	.summary = "inspect and check the upstream connection pools",
	.description =
		"One pool per [upstream NAME] (libcurl connections, see resync.conf(5)).\n"
		"stats reads what running responders publish; check and validate work\n"
		"from the configuration alone.",
	.options = no_options,
	.min_args = 0,
	.max_args = 0,
	.subs = pool_verbs,
};
