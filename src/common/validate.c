#include "validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apikey.h"
#include "ask.h"
#include "hwa.h"
#include "seal.h"
#include "util.h"

struct check {
	const struct rs_config *cfg;
	struct rs_diags *diags;
	enum rs_severity policy;  /* production: error; otherwise: warning */
};

static void report(struct check *c, enum rs_severity sev,
		   const struct rs_conf_section *sec,
		   const struct rs_conf_value *val, const char *key,
		   const char *fmt, ...) RS_PRINTF(6, 7);

static void report(struct check *c, enum rs_severity sev,
		   const struct rs_conf_section *sec,
		   const struct rs_conf_value *val, const char *key,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rs_conf_vreport(c->cfg, c->diags, sev, sec, val, key, fmt, ap);
	va_end(ap);
}

/* The value of key in sec when it parsed, else NULL. */
static const struct rs_conf_value *get(const struct rs_conf_section *sec,
				       const char *key)
{
	const struct rs_conf_value *v = sec ? rs_conf_get(sec, key) : NULL;

	return v && v->ok ? v : NULL;
}

static const struct rs_conf_section *unnamed(struct check *c, const char *type)
{
	return rs_config_find(c->cfg, type, NULL);
}

/* Of two values, the one an operator set (to point the message at it). */
static const struct rs_conf_value *blame(const struct rs_conf_value *a,
					 const struct rs_conf_value *b)
{
	if (a->source == RS_SRC_DEFAULT && b->source != RS_SRC_DEFAULT)
		return b;
	return a;
}

static void fmt_dur(int64_t ms, char *buf, size_t n)
{
	rs_format_duration(ms, buf, n);
}

static void check_required(struct check *c, const struct rs_conf_section *sec)
{
	for (size_t i = 0; i < rs_schema_nkeys; i++) {
		const struct rs_schema_key *k = &rs_schema_keys[i];

		if (strcmp(k->section, sec->schema->name) != 0 ||
		    !(k->flags & RS_K_REQUIRED) || rs_conf_get(sec, k->name))
			continue;
		report(c, RS_SEV_ERROR, sec, NULL, NULL,
		       "missing required key '%s' (%s)", k->name, k->doc);
	}
}

static void check_pool(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "pool");
	const struct rs_conf_value *min = get(s, "min_size"),
		*max = get(s, "max_size"), *idle = get(s, "idle_timeout"),
		*life = get(s, "max_lifetime"),
		*hc = get(s, "health_check_interval");
	char a[32], b[32];

	if (min && max && max->num < min->num)
		report(c, RS_SEV_ERROR, s, blame(max, min), NULL,
		       "max_size (%lld) is smaller than min_size (%lld)",
		       (long long)max->num, (long long)min->num);
	if (idle && life && life->num <= idle->num) {
		fmt_dur(life->num, a, sizeof(a));
		fmt_dur(idle->num, b, sizeof(b));
		report(c, RS_SEV_ERROR, s, blame(life, idle), NULL,
		       "max_lifetime (%s) must be longer than idle_timeout (%s)",
		       a, b);
	}
	if (idle && hc && hc->num >= idle->num) {
		fmt_dur(hc->num, a, sizeof(a));
		fmt_dur(idle->num, b, sizeof(b));
		report(c, RS_SEV_WARNING, s, blame(hc, idle), NULL,
		       "health_check_interval (%s) is not shorter than idle_timeout (%s): idle connections are closed before they are checked",
		       a, b);
	}
}

static void check_cache(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "cache");
	const struct rs_conf_value *shards = get(s, "num_shards"),
		*entries = get(s, "max_entries"), *mem = get(s, "max_memory");
	char a[32];

	if (shards && !rs_is_power_of_two((uint64_t)shards->num))
		report(c, RS_SEV_ERROR, s, shards, NULL,
		       "%lld is not a power of two (use 16, 32, 64 ...)",
		       (long long)shards->num);
	if (shards && entries && shards->num > entries->num)
		report(c, RS_SEV_ERROR, s, blame(shards, entries), NULL,
		       "num_shards (%lld) is larger than max_entries (%lld)",
		       (long long)shards->num, (long long)entries->num);
	if (entries && mem &&
	    mem->num / entries->num < RS_CACHE_MIN_ENTRY_BYTES) {
		rs_format_size(mem->num, a, sizeof(a));
		report(c, RS_SEV_WARNING, s, blame(mem, entries), NULL,
		       "max_memory (%s) cannot hold max_entries (%lld) entries of even %d bytes: max_memory will always be the bound that applies",
		       a, (long long)entries->num, RS_CACHE_MIN_ENTRY_BYTES);
	}
}

static void check_retry(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "retry");
	const struct rs_conf_value *base = get(s, "base"), *cap = get(s, "cap");
	char a[32], b[32];

	const struct rs_conf_value *win = get(s, "budget_window");
	if (win && win->num % RS_MS_PER_SEC)
		report(c, RS_SEV_ERROR, s, win, NULL,
		       "budget_window must be a whole number of seconds");
	if (base && cap && cap->num < base->num) {
		fmt_dur(cap->num, a, sizeof(a));
		fmt_dur(base->num, b, sizeof(b));
		report(c, RS_SEV_ERROR, s, blame(cap, base), NULL,
		       "cap (%s) is smaller than base (%s)", a, b);
	}
}

static void check_persistence(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "persistence");
	const struct rs_conf_value *iv = get(s, "snapshot_interval"),
		*keep = get(s, "snapshot_retention");
	char a[32], b[32];

	if (iv && keep && keep->num < iv->num) {
		fmt_dur(keep->num, a, sizeof(a));
		fmt_dur(iv->num, b, sizeof(b));
		report(c, RS_SEV_WARNING, s, blame(keep, iv), NULL,
		       "snapshot_retention (%s) is shorter than snapshot_interval (%s): only the newest snapshot will ever be kept",
		       a, b);
	}
}

static void suggest_upstream(const struct rs_config *cfg, const char *name,
			     char *out, size_t n)
{
	size_t bestd = SIZE_MAX;

	out[0] = '\0';
	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);

		if (strcmp(s->schema->name, "upstream") == 0 &&
		    rs_is_near(name, s->name) &&
		    rs_edit_distance(name, s->name) < bestd) {
			bestd = rs_edit_distance(name, s->name);
			snprintf(out, n, "%s", s->name);
		}
	}
}

static void check_upstream_ref(struct check *c, const struct rs_conf_section *s,
			       const struct rs_conf_value *up);

static void check_breaker(struct check *c, const struct rs_conf_section *s)
{
	const struct rs_conf_value *routes = get(s, "routes");

	check_upstream_ref(c, s, get(s, "upstream"));
	for (size_t i = 0; routes && i < routes->nitems; i++)
		if (!rs_route_known(routes->items[i]))
			report(c, RS_SEV_ERROR, s, routes, NULL,
			       "unknown route '%s' (known: %s)", routes->items[i],
			       rs_route_names());
}

static void check_upstream(struct check *c, const struct rs_conf_section *s)
{
	const struct rs_conf_value *v;

	if (get(s, "tls_cert") && !rs_conf_get(s, "tls_key"))
		report(c, RS_SEV_ERROR, s, get(s, "tls_cert"), NULL,
		       "tls_cert is set without tls_key");
	if (get(s, "tls_key") && !rs_conf_get(s, "tls_cert"))
		report(c, RS_SEV_ERROR, s, get(s, "tls_key"), NULL,
		       "tls_key is set without tls_cert");
	if (get(s, "password") && !rs_conf_get(s, "username"))
		report(c, RS_SEV_ERROR, s, get(s, "password"), NULL,
		       "password is set without username");
	v = get(s, "verify_tls");
	if (v && !v->num)
		report(c, c->policy, s, v, NULL,
		       "TLS verification is off: anyone on the path can impersonate the upstream");
	v = get(s, "url");
	for (size_t i = 0; v && i < v->nitems; i++)
		if (strncmp(v->items[i], "http://", 7) == 0 && get(s, "password")) {
			report(c, c->policy, s, v, NULL,
			       "credentials would be sent over plain http:// to %s",
			       v->items[i]);
			break;
		}
	const struct rs_conf_value *w = get(s, "weights");
	if (v && w && w->nitems && w->nitems != v->nitems)
		report(c, RS_SEV_ERROR, s, w, NULL,
		       "%zu weights for %zu endpoints: give one weight per url",
		       w->nitems, v->nitems);
}

static void check_upstream_ref(struct check *c, const struct rs_conf_section *s,
			       const struct rs_conf_value *up)
{
	char near[80];

	if (!up || rs_config_find(c->cfg, "upstream", up->str))
		return;
	suggest_upstream(c->cfg, up->str, near, sizeof(near));
	if (near[0])
		report(c, RS_SEV_ERROR, s, up, NULL,
		       "no [upstream %s] is configured (did you mean '%s'?)",
		       up->str, near);
	else
		report(c, RS_SEV_ERROR, s, up, NULL,
		       "no [upstream %s] is configured", up->str);
}

static void check_route(struct check *c, const struct rs_conf_section *s)
{
	const struct rs_conf_value *up = get(s, "upstream");

	if (!rs_route_known(s->name)) {
		report(c, RS_SEV_ERROR, s, NULL, NULL,
		       "unknown route '%s' (known: %s)", s->name, rs_route_names());
		return;
	}
	if (up) {
		check_upstream_ref(c, s, up);
		return;
	}
	/* a route set up must have its default upstream */
	const char *def = strcmp(s->name, RS_ASK_ROUTE) == 0 ? RS_ASK_UPSTREAM : RS_HWA_UPSTREAM;
	if (!rs_config_find(c->cfg, "upstream", def))
		report(c, RS_SEV_ERROR, s, NULL, NULL,
		       "no [upstream %s] is configured for this route (or set upstream)", def);
}

/* A key's life: expired, retired or due keys are worth a word (the
 * responder refuses the first two, so they are only clutter). */
static void check_key_age(struct check *c, const struct rs_conf_section *s)
{
	const struct rs_conf_value *made = get(s, "created"), *exp = get(s, "expires"),
		*rot = get(s, "rotated");
	struct rs_key_times t = {
		made ? rs_parse_utc_ms(made->str) : 0, exp ? rs_parse_utc_ms(exp->str) : 0,
		rot ? rs_parse_utc_ms(rot->str) : 0,
	};
	int64_t every = rs_config_num(c->cfg, "auth", "key_rotation_interval");
	char d[32];

	switch (rs_apikey_state(&t, rs_now_ms(), rs_config_num(c->cfg, "auth", "key_grace"), every)) {
	case RS_KEY_DUE:
		fmt_dur(every, d, sizeof(d));
		report(c, RS_SEV_WARNING, s, made, NULL,
		       "the key is older than [auth] key_rotation_interval (%s): make a new one with "
		       "'resyncctl key generate' and set rotated on this one", d);
		break;
	case RS_KEY_EXPIRED:
		report(c, RS_SEV_WARNING, s, exp, NULL, "the key has expired: remove its section");
		break;
	case RS_KEY_RETIRED:
		report(c, RS_SEV_WARNING, s, rot, NULL,
		       "the key's grace period is over: remove its section");
		break;
	default:
		break;
	}
}

static void check_keys(struct check *c, const struct rs_conf_section *s,
		       size_t index)
{
	const struct rs_conf_value *h = get(s, "hash");

	check_key_age(c, s);
	if (!h)
		return;
	for (size_t i = 0; i < index; i++) {
		const struct rs_conf_section *o = rs_config_section_at(c->cfg, i);
		const struct rs_conf_value *oh;

		if (strcmp(o->schema->name, "key") != 0)
			continue;
		oh = get(o, "hash");
		if (oh && strcmp(oh->str, h->str) == 0)
			report(c, RS_SEV_ERROR, s, h, NULL,
			       "same hash as [key %s]: each key must be distinct",
			       o->name);
	}
}

static void check_cors(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "cors");
	const struct rs_conf_value *o = get(s, "allowed_origins"),
		*cred = get(s, "allow_credentials");
	bool star = false;

	for (size_t i = 0; o && i < o->nitems; i++)
		if (strcmp(o->items[i], "*") == 0)
			star = true;
	if (star && o->nitems > 1)
		report(c, RS_SEV_WARNING, s, o, NULL,
		       "'*' allows every origin; the other origins listed have no effect");
	if (star && cred && cred->num)
		report(c, c->policy, s, blame(cred, o), NULL,
		       "wildcard origin '*' together with allow_credentials = true lets any web site act with a user's credentials");
}

static void check_secret_file(struct check *c, const struct rs_conf_section *s,
			      const struct rs_conf_value *v, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		report(c, RS_SEV_ERROR, s, v, NULL, "cannot read '%s': %s", path,
		       strerror(errno));
		return;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		report(c, c->policy, s, v, NULL,
		       "secret file '%s' is accessible by group or others (mode %04o); chmod 600 it",
		       path, (unsigned)(st.st_mode & 07777));
}

/* The loader's own verdict, an error in every environment: the processes
 * refuse to start with a keyring it refuses (a loose mode included). */
static void check_keyring(struct check *c, const struct rs_conf_section *s,
			  const struct rs_conf_value *v)
{
	struct rs_keyring *k = NULL;
	struct rs_err err = RS_ERR_INIT;

	if (rs_keyring_load(&k, v->str, &err) < 0)
		report(c, RS_SEV_ERROR, s, v, NULL, "%s", err.msg);
	rs_keyring_free(k);
}

static void check_values(struct check *c, const struct rs_conf_section *s)
{
	for (size_t i = 0; i < s->nvalues; i++) {
		const struct rs_conf_value *v = &s->values[i];
		const struct rs_schema_key *k = v->key;
		char env[160];

		if (!v->ok)
			continue;
		if ((k->flags & RS_K_SECRET) && v->source == RS_SRC_FILE &&
		    !v->secret_file) {
			rs_conf_env_name(s->schema->name, s->name, k->name, env,
					 sizeof(env));
			report(c, c->policy, s, v, NULL,
			       "secret written inline; use %s_file or %s",
			       k->name, env);
		}
		if ((k->flags & RS_K_SECRET) && v->secret_file)
			check_secret_file(c, s, v, v->secret_file);
		if (k->flags & RS_K_KEYRING)
			check_keyring(c, s, v);
		else if (k->flags & RS_K_SECRET_PATH)
			check_secret_file(c, s, v, v->str);
		else if ((k->flags & RS_K_MUST_EXIST) && access(v->str, R_OK) < 0)
			report(c, RS_SEV_ERROR, s, v, NULL, "cannot read '%s': %s",
			       v->str, strerror(errno));
	}
}

static void check_auth(struct check *c)
{
	const struct rs_conf_section *s = unnamed(c, "auth");
	const struct rs_conf_value *v = get(s, "jwt_secret");

	if (v && strlen(v->str) < RS_MIN_SECRET_BYTES)
		report(c, c->policy, s, v, NULL,
		       "weak secret: %zu bytes, at least %d needed (e.g. openssl rand -hex 32)",
		       strlen(v->str), RS_MIN_SECRET_BYTES);
}

/* The door: rate limits, Idempotency-Keys and the alert webhook. */
static void check_door(struct check *c)
{
	const struct rs_conf_section *rl = unnamed(c, "ratelimit"), *id = unnamed(c, "idempotency"),
		*srv = unnamed(c, "server"), *al = unnamed(c, "alerts");
	const struct rs_conf_value *en = get(rl, "enabled"), *lock = get(id, "lock_timeout"),
		*timeout = get(srv, "request_timeout"), *url = get(al, "webhook_url");
	char a[32], b[32];

	if (en && !en->num)
		report(c, c->policy, rl, en, NULL,
		       "rate limits are off: one client can take every worker");
	/* a claim must outlive the request holding it, or a slow request's
	 * key is taken over while it still runs */
	if (lock && timeout && lock->num <= timeout->num) {
		fmt_dur(lock->num, a, sizeof(a));
		fmt_dur(timeout->num, b, sizeof(b));
		const struct rs_conf_value *at = blame(lock, timeout);
		report(c, RS_SEV_ERROR, at == lock ? id : srv, at, NULL,
		       "[idempotency] lock_timeout (%s) must be longer than [server] request_timeout (%s)",
		       a, b);
	}
	if (url && strncmp(url->str, "http://", 7) == 0)
		report(c, c->policy, al, url, NULL,
		       "the webhook is plain http: its URL and the incidents cross the network unencrypted");
}

static void check_audit_log(struct check *c)
{
	const struct rs_conf_section *a = unnamed(c, "audit"),
		*l = unnamed(c, "log");
	const struct rs_conf_value *en = get(a, "enabled"),
		*level = get(l, "level");

	if (en && !en->num)
		report(c, c->policy, a, en, NULL,
		       "the audit log is off: security events will not be recorded");
	else if (!rs_conf_get(a, "key_file"))
		report(c, c->policy, a, NULL, "key_file",
		       "not set: audit records are chained with plain SHA-256, so anyone who can write the database can rewrite them undetected");
	if (level && strcmp(level->str, "debug") == 0)
		report(c, c->policy, l, level, NULL,
		       "debug logging can write request details and secrets to the log");
}

void rs_config_check(const struct rs_config *cfg, struct rs_diags *diags)
{
	struct check c = {
		cfg, diags,
		rs_config_is_production(cfg) ? RS_SEV_ERROR : RS_SEV_WARNING,
	};

	for (size_t i = 0; i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);
		const char *type = s->schema->name;

		if (s->schema->named)
			check_required(&c, s);
		check_values(&c, s);
		if (strcmp(type, "breaker") == 0)
			check_breaker(&c, s);
		else if (strcmp(type, "upstream") == 0)
			check_upstream(&c, s);
		else if (strcmp(type, "route") == 0)
			check_route(&c, s);
		else if (strcmp(type, "key") == 0)
			check_keys(&c, s, i);
	}
	check_pool(&c);
	check_cache(&c);
	check_retry(&c);
	check_persistence(&c);
	check_cors(&c);
	check_auth(&c);
	check_door(&c);
	check_audit_log(&c);
}
