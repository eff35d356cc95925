/* Cross-field rules and what each environment allows. */
#include "tap.h"
#include "test_confutil.h"

static struct rs_diags d;

static struct rs_config *check(const char *text, const char *environment)
{
	rs_diags_free(&d);
	return load("v.conf", text, NULL, environment, true, &d);
}

static void has(const char *needle, enum rs_severity sev, int line,
		const char *name)
{
	const struct rs_diag *g = find_diag(&d, needle);

	if (!ok(g && g->sev == sev && (line < 0 || g->line == line), name)) {
		printf("#   wanted %s at line %d containing \"%s\"\n",
		       rs_severity_name(sev), line, needle);
		dump_diags(&d);
	}
}

static void hasnt(const char *needle, const char *name)
{
	if (!ok(!find_diag(&d, needle), name))
		dump_diags(&d);
}

/* Run text in production (want error) and development (want warning). */
static void policy(const char *text, const char *needle, const char *name)
{
	char n[200];

	rs_config_free(check(text, "production"));
	snprintf(n, sizeof(n), "production: %s is an error", name);
	has(needle, RS_SEV_ERROR, -1, n);
	rs_config_free(check(text, "development"));
	snprintf(n, sizeof(n), "development: %s is a warning", name);
	has(needle, RS_SEV_WARNING, -1, n);
}

int main(void)
{
	const char *good_key, *loose_key;

	tdir_make();
	rs_diags_init(&d);
	good_key = put_file("audit.key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0600);
	(void)good_key;
	loose_key = put_file("loose.key", "k", 0644);
	(void)loose_key;

	/* A production configuration that breaks no rule. */
	put_file("hwa.pw", "pw", 0600);
	put_file("jwt", "0123456789abcdef0123456789abcdef", 0600);
	rs_config_free(check(
		"[server]\nenvironment = production\n"
		"[upstream hwa]\nurl = https://hwa:31116\nusername = u\npassword_file = hwa.pw\n"
		"[breaker hwa]\nupstream = hwa\n"
		"[auth]\njwt_secret_file = jwt\n"
		"[audit]\nkey_file = audit.key\n"
		"[key ops]\nrole = admin\nhash = 0000000000000000000000000000000000000000000000000000000000000000\n"
		"[cors]\nallowed_origins = https://app.example.com\nallow_credentials = true\n",
		NULL));
	if (!ok(d.errors == 0 && d.warnings == 0, "a sound production config is clean"))
		dump_diags(&d);

	/* Required keys are reported at the section header. */
	rs_config_free(check("[cache]\n[upstream hwa]\nusername = x\n[key k]\n", NULL));
	has("missing required key 'url'", RS_SEV_ERROR, 2, "upstream without url");
	has("missing required key 'hash'", RS_SEV_ERROR, 4, "key without hash");
	has("missing required key 'role'", RS_SEV_ERROR, 4, "key without role");

	/* The seed's ConnectionPoolValidator. */
	rs_config_free(check("[pool]\nmin_size = 10\nmax_size = 5\nidle_timeout = 2h\nmax_lifetime = 1h\nhealth_check_interval = 3h\n", NULL));
	has("max_size (5) is smaller than min_size (10)", RS_SEV_ERROR, 3, "pool max < min");
	has("max_lifetime (1h) must be longer than idle_timeout (2h)", RS_SEV_ERROR, 5, "pool lifetime <= idle");
	has("health_check_interval (3h) is not shorter", RS_SEV_WARNING, 6, "health check interval warns");
	rs_config_free(check("[pool]\nmin_size = 0\n", NULL));
	has("too small (minimum 1)", RS_SEV_ERROR, 2, "pool min_size >= 1");
	rs_config_free(check("[pool]\nconnection_timeout = 0\n", NULL));
	has("too small", RS_SEV_ERROR, 2, "pool timeouts > 0");

	/* Cache consistency. */
	rs_config_free(check("[cache]\nnum_shards = 48\n", NULL));
	has("48 is not a power of two", RS_SEV_ERROR, 2, "shards power of two");
	rs_config_free(check("[cache]\nmax_entries = 8\nnum_shards = 16\n", NULL));
	has("num_shards (16) is larger than max_entries (8)", RS_SEV_ERROR, 3, "shards > entries");
	rs_config_free(check("[cache]\nmax_memory = 1MB\n", NULL));
	has("cannot hold max_entries", RS_SEV_WARNING, 2, "memory vs entries");
	rs_config_free(check("[cache]\nttl = 0\n", NULL));
	has("too small", RS_SEV_ERROR, 2, "ttl > 0");

	/* Retry, persistence. */
	rs_config_free(check("[retry]\nbase = 5s\ncap = 1s\n", NULL));
	has("cap (1s) is smaller than base (5s)", RS_SEV_ERROR, 3, "retry cap < base");
	rs_config_free(check("[persistence]\nsnapshot_interval = 1h\nsnapshot_retention = 10m\n", NULL));
	has("snapshot_retention (10m) is shorter", RS_SEV_WARNING, 3, "retention < interval");

	/* References between sections. */
	rs_config_free(check("[upstream hwa]\nurl = https://h\n[breaker b]\nupstream = hwz\n", NULL));
	has("no [upstream hwz] is configured (did you mean 'hwa'?)", RS_SEV_ERROR, 4, "breaker to unknown upstream");
	rs_config_free(check("[key a]\nrole = viewer\nhash = 1111111111111111111111111111111111111111111111111111111111111111\n"
			     "[key b]\nrole = admin\nhash = 1111111111111111111111111111111111111111111111111111111111111111\n", NULL));
	has("same hash as [key a]", RS_SEV_ERROR, 6, "duplicate key hash");
	rs_config_free(check("[upstream u]\nurl = https://h\ntls_cert = v.conf\npassword_file = hwa.pw\n", NULL));
	has("tls_cert is set without tls_key", RS_SEV_ERROR, 3, "cert without key");
	has("password is set without username", RS_SEV_ERROR, 4, "password without username");
	rs_config_free(check("[upstream u]\nurl = https://h\nca_file = nowhere.pem\n", NULL));
	has("cannot read", RS_SEV_ERROR, 3, "ca_file must exist");

	/* What production refuses and development warns about. */
	policy("[cors]\nallowed_origins = *\nallow_credentials = true\n",
	       "wildcard origin '*' together with allow_credentials", "wildcard CORS with credentials");
	policy("[upstream u]\nurl = https://h\nusername = u\npassword = inline\n",
	       "secret written inline; use password_file or RESYNC_UPSTREAM_U_PASSWORD", "an inline secret");
	policy("[upstream u]\nurl = https://h\nusername = u\npassword_file = loose.key\n",
	       "is accessible by group or others (mode 0644)", "a secret file readable by others");
	/* keyrings: what the loader refuses, the processes refuse to start with */
	rs_config_free(check("[audit]\nkey_file = loose.key\n", "development"));
	has("is readable by others (mode 0644); chmod 600 it", RS_SEV_ERROR, 2,
	    "a keyring readable by others is an error even in development");
	put_file("short.key", "0123456789abcdef\n", 0600);
	rs_config_free(check("[audit]\nkey_file = short.key\n", "development"));
	has("line 1", RS_SEV_ERROR, 2, "a keyring line that is not 64 hex digits is an error");
	rs_config_free(check("[persistence]\nencryption_key_file = short.key\n", "development"));
	has("line 1", RS_SEV_ERROR, 2, "so is one in the cache's encryption_key_file");
	policy("[upstream u]\nurl = https://h\nverify_tls = false\n", "TLS verification is off", "TLS verification off");
	policy("[upstream u]\nurl = http://h\nusername = u\npassword_file = hwa.pw\n",
	       "plain http://", "credentials over plain http");
	policy("[audit]\nenabled = false\n", "the audit log is off", "audit off");
	policy("[audit]\n", "chained with plain SHA-256", "audit without a key");
	policy("[log]\nlevel = debug\n", "debug logging", "debug logging");
	put_file("short", "tooshort", 0600);
	policy("[auth]\njwt_secret_file = short\n", "weak secret: 8 bytes", "a weak JWT secret");
	policy("[ratelimit]\nenabled = false\n", "rate limits are off", "rate limits off");
	put_file("hook", "http://alerts.example.com/hook", 0600);
	policy("[alerts]\nwebhook_url_file = hook\n", "the webhook is plain http", "a plain-http webhook");
	rs_config_free(check("[server]\nrequest_timeout = 5m\n[idempotency]\nlock_timeout = 1m\n", "development"));
	has("lock_timeout (1m) must be longer than [server] request_timeout (5m)", RS_SEV_ERROR, 4,
	    "an Idempotency-Key claim shorter than a request is an error");
	rs_config_free(check("[cors]\nallowed_origins = *, https://a.example.com\n", "production"));
	has("the other origins listed have no effect", RS_SEV_WARNING, 2, "'*' with other origins warns");
	hasnt("allow_credentials", "'*' without credentials is allowed");

	/* --environment overrides [server] environment, both ways. */
	rs_config_free(check("[server]\nenvironment = production\n[log]\nlevel = debug\n", "development"));
	has("debug logging", RS_SEV_WARNING, 4, "--environment development relaxes a production file");
	rs_config_free(check("[server]\nenvironment = test\n[log]\nlevel = debug\n", NULL));
	has("debug logging", RS_SEV_WARNING, 4, "test environment warns like development");

	rs_diags_free(&d);
	tdir_remove();
	return tap_done();
}
