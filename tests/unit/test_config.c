/* Loading resync.conf: sections, values, types, includes, environment
 * overrides, secrets from files, and where every problem is reported. */
#include "tap.h"
#include "test_confutil.h"
#include "util.h"

/* One diagnostic containing `needle`, at `line` of the main file (line 0
 * = any), with severity `sev`. */
static void expect(const struct rs_diags *d, const char *needle, int line,
		   enum rs_severity sev, const char *name)
{
	const struct rs_diag *g = find_diag(d, needle);

	if (!ok(g && (line == 0 || g->line == line) && g->sev == sev, name)) {
		printf("#   wanted %s at line %d containing \"%s\"\n",
		       rs_severity_name(sev), line, needle);
		dump_diags(d);
	}
}

static void test_values(void)
{
	struct rs_diags d;
	struct rs_config *cfg = load("v.conf",
		"# comment\n"
		"[server]\n"
		"environment = test ; trailing\n"
		"listen = \"127.0.0.1:9000\"\n"
		"[cache]\n"
		"ttl = 1h30m\n"
		"max_memory = 512KB\n"
		"[upstream hwa]\n"
		"url = https://hwa.example.com:31116/twsd\n"
		"verify_tls = no\n"
		"[cors]\n"
		"allowed_origins = https://a.example.com, \"https://*.example.com\"\n"
		"[persistence]\n"
		"db = var/resync.db\n",
		NULL, NULL, false, &d);
	const struct rs_conf_section *up = rs_config_find(cfg, "upstream", "hwa");
	const struct rs_conf_section *cors = rs_config_find(cfg, "cors", NULL);
	const struct rs_conf_value *v;
	char want[TEST_PATH_MAX];

	is_int(d.errors + d.warnings, 0, "a clean file has no diagnostics");
	dump_diags(&d);
	is_str(rs_config_environment(cfg), "test", "environment read from [server]");
	is_str(rs_config_str(cfg, "server", "listen"), "127.0.0.1:9000", "quoted string unquoted");
	is_int(rs_config_num(cfg, "cache", "ttl"), 5400000, "duration 1h30m");
	is_int(rs_config_num(cfg, "cache", "max_memory"), 524288, "size 512KB");
	ok(up != NULL, "named section [upstream hwa] exists");
	v = up ? rs_conf_get(up, "verify_tls") : NULL;
	ok(v && v->ok && v->num == 0 && v->line == 10, "bool no = false, line 10");
	v = up ? rs_conf_get(up, "connect_timeout") : NULL;
	ok(v && v->source == RS_SRC_DEFAULT && v->num == 5000, "named section gets defaults");
	v = rs_conf_get(cors, "allowed_origins");
	ok(v && v->nitems == 2 && strcmp(v->items[1], "https://*.example.com") == 0,
	   "list with a quoted item");
	snprintf(want, sizeof(want), "%s/var/resync.db", tdir);
	is_str(rs_config_str(cfg, "persistence", "db"), want,
	       "relative path resolves against the config file's directory");
	v = rs_conf_get(rs_config_find(cfg, "server", NULL), "listen");
	ok(v && v->source == RS_SRC_FILE && v->line == 4 &&
	   strcmp(v->file, rs_config_path(cfg)) == 0, "value remembers file:line");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_errors(void)
{
	struct rs_diags d;
	struct rs_config *cfg = load("e.conf",
		"orphan = 1\n"                 /* 1 */
		"[cache\n"                     /* 2 */
		"[cahce]\n"                    /* 3 */
		"ttl = 5s\n"                   /* 4: skipped, under bad section */
		"[cache]\n"                    /* 5 */
		"tll = 5s\n"                   /* 6 */
		"num_shards = 0\n"             /* 7 */
		"max_entries = lots\n"         /* 8 */
		"cleanup_interval = 30\n"      /* 9 */
		"ttl = 5s\n"                   /* 10 */
		"ttl = 6s\n"                   /* 11 */
		"[upstream]\n"                 /* 12 */
		"[pool main]\n"                /* 13 */
		"[upstream x]\n"               /* 14 */
		"url = ftp://x\n"              /* 15 */
		"verify_tls = maybe\n"         /* 16 */
		"[persistence]\n"              /* 17 */
		"sync = alway\n"               /* 18 */
		"[server]\n"                   /* 19 */
		"request_id_pattern = ([a-z\n" /* 20 */
		"listen = not a socket\n"      /* 21 */
		"max_body = 10GB\n"            /* 22 */
		"[cors]\n"                     /* 23 */
		"allowed_methods = GET, post\n" /* 24 */
		"allowed_origins = a,,b\n"     /* 25 */
		"[log]\n"                      /* 26 */
		"level = \"debug\" extra\n",   /* 27 */
		NULL, NULL, false, &d);

	expect(&d, "key outside any section", 1, RS_SEV_ERROR, "key before any section");
	expect(&d, "missing ']'", 2, RS_SEV_ERROR, "unterminated header");
	expect(&d, "unknown section (did you mean [cache]?)", 3, RS_SEV_ERROR, "unknown section with hint");
	ok(!find_diag(&d, "line 4"), "keys under an unknown section are not reported again");
	expect(&d, "unknown key (did you mean 'ttl'?)", 6, RS_SEV_ERROR, "unknown key with hint");
	expect(&d, "too small (minimum 1)", 7, RS_SEV_ERROR, "int below minimum");
	expect(&d, "invalid integer 'lots'", 8, RS_SEV_ERROR, "not an integer");
	expect(&d, "missing unit", 9, RS_SEV_ERROR, "duration without unit");
	expect(&d, "overrides the value from line 10", 11, RS_SEV_WARNING, "duplicate key warns");
	is_int(rs_config_num(cfg, "cache", "ttl"), 6000, "the later duplicate wins");
	expect(&d, "needs a name", 12, RS_SEV_ERROR, "named section without name");
	expect(&d, "takes no name", 13, RS_SEV_ERROR, "unnamed section with a name");
	expect(&d, "expected an http:// or https:// URL", 15, RS_SEV_ERROR, "bad url scheme");
	expect(&d, "expected true or false", 16, RS_SEV_ERROR, "bad bool");
	expect(&d, "did you mean 'always'?", 18, RS_SEV_ERROR, "enum with hint");
	expect(&d, "invalid regular expression", 20, RS_SEV_ERROR, "bad regex");
	expect(&d, "must match", 21, RS_SEV_ERROR, "string pattern");
	expect(&d, "too large (maximum 1GB)", 22, RS_SEV_ERROR, "size above maximum");
	expect(&d, "invalid list item 'post'", 24, RS_SEV_ERROR, "list item pattern");
	expect(&d, "empty list item", 25, RS_SEV_ERROR, "empty list item");
	expect(&d, "unexpected text after closing quote", 27, RS_SEV_ERROR, "text after quote");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_include(void)
{
	struct rs_diags d;
	struct rs_config *cfg;
	const struct rs_conf_value *v;

	mkdir(strcat(strcpy((char[TEST_PATH_MAX]){ 0 }, tdir), "/conf.d"), 0755);
	put_file("conf.d/10-cache.conf", "ttl = 10s\n[pool]\nmax_size = 40\n", 0644);
	put_file("conf.d/20-up.conf", "[upstream hwa]\nurl = http://h:1\n", 0644);
	put_file("conf.d/loop.inc", "include = ../main.conf\n", 0644);
	cfg = load("main.conf",
		   "[cache]\n"
		   "include = conf.d/*.conf\n"
		   "max_entries = 100\n"
		   "include = missing.conf\n"
		   "include = conf.d/nomatch-*.conf\n"
		   "include = conf.d/loop.inc\n",
		   NULL, NULL, false, &d);
	is_int(rs_config_num(cfg, "cache", "ttl"), 10000,
	       "an included file continues the including section");
	is_int(rs_config_num(cfg, "pool", "max_size"), 40, "included file opens its own section");
	is_int(rs_config_num(cfg, "cache", "max_entries"), 100,
	       "the including file's section resumes after the include");
	ok(rs_config_find(cfg, "upstream", "hwa") != NULL, "glob includes every match");
	v = rs_conf_get(rs_config_find(cfg, "pool", NULL), "max_size");
	ok(v && strstr(v->file, "conf.d/10-cache.conf") && v->line == 3,
	   "a value from an include names the included file and line");
	expect(&d, "cannot open", 4, RS_SEV_ERROR, "missing include is an error at its line");
	ok(!find_diag(&d, "nomatch"), "a glob with no match is not an error");
	expect(&d, "include cycle", 0, RS_SEV_ERROR, "include cycle detected");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_env(void)
{
	struct rs_diags d;
	struct rs_config *cfg;
	const struct rs_conf_section *s;
	const struct rs_conf_value *v;
	char fileenv[TEST_PATH_MAX + 64];
	const char *secret = put_file("hwa.pw", "s3cret\n", 0600);

	snprintf(fileenv, sizeof(fileenv), "RESYNC_UPSTREAM_HWA_PASSWORD_FILE=%s", secret);
	{
		char *envp[] = {
			"RESYNC_CACHE_TTL=2m",
			"RESYNC_UPSTREAM_HWA_URL=https://env.example.com",
			"RESYNC_UPSTREAM_HWA_CONNECT_TIMEOUT=3s",
			"RESYNC_UPSTREAM_HWA_USERNAME=ops",
			fileenv,
			"RESYNC_UPSTREAM_BACKUP_HOST_URL=https://b.example.com",
			"RESYNC_KEY_OPS_TEAM_ROLE=viewer",
			"RESYNC_SERVER_ENVIRONMENT=production",
			"RESYNC_CONFIG=/ignored",
			"RESYNC_NONSENSE=1",
			"PATH=/usr/bin",
			NULL,
		};

		cfg = load("env.conf", "[cache]\nttl = 10s\n[key ops-team]\nrole = admin\n",
			   envp, NULL, false, &d);
	}
	v = rs_conf_get(rs_config_find(cfg, "cache", NULL), "ttl");
	ok(v && v->num == 120000 && v->source == RS_SRC_ENV &&
	   strcmp(v->env, "RESYNC_CACHE_TTL") == 0, "RESYNC_CACHE_TTL overrides the file");
	s = rs_config_find(cfg, "upstream", "hwa");
	ok(s && s->file == NULL, "RESYNC_UPSTREAM_HWA_URL creates [upstream hwa]");
	v = s ? rs_conf_get(s, "connect_timeout") : NULL;
	ok(v && v->num == 3000, "multi-word key: RESYNC_UPSTREAM_HWA_CONNECT_TIMEOUT");
	v = s ? rs_conf_get(s, "password") : NULL;
	ok(v && v->ok && strcmp(v->raw, "s3cret") == 0 && v->secret_file,
	   "RESYNC_..._PASSWORD_FILE reads the secret, newline dropped");
	s = rs_config_find(cfg, "upstream", "backup_host");
	ok(s && rs_conf_get(s, "url"), "multi-word section name from the environment");
	v = rs_conf_get(rs_config_find(cfg, "key", "ops-team"), "role");
	ok(v && v->source == RS_SRC_ENV && strcmp(v->str, "viewer") == 0,
	   "RESYNC_KEY_OPS_TEAM_ROLE matches the existing [key ops-team]");
	is_str(rs_config_environment(cfg), "production", "environment from the environment");
	expect(&d, "unknown configuration variable", 0, RS_SEV_WARNING,
	       "an unknown RESYNC_ variable warns");
	ok(d.warnings == 1 && d.errors == 0, "RESYNC_CONFIG and PATH are not reported");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_secrets(void)
{
	struct rs_diags d;
	struct rs_config *cfg;
	const struct rs_conf_value *v;

	put_file("jwt.key", "0123456789abcdef0123456789abcdef\n", 0600);
	put_file("empty.key", "", 0600);
	cfg = load("s.conf",
		   "[auth]\n"
		   "jwt_secret_file = jwt.key\n"
		   "[upstream a]\n"
		   "url = https://a\n"
		   "password_file = nope.pw\n"
		   "[upstream b]\n"
		   "url = https://b\n"
		   "password_file = empty.key\n"
		   "[upstream c]\n"
		   "url = https://c\n"
		   "password = inline\n"
		   "password_file = jwt.key\n"
		   "[cache]\n"
		   "ttl_file = x\n",
		   NULL, NULL, false, &d);
	v = rs_conf_get(rs_config_find(cfg, "auth", NULL), "jwt_secret");
	ok(v && v->ok && strcmp(v->raw, "0123456789abcdef0123456789abcdef") == 0,
	   "KEY_file relative to the config's directory");
	expect(&d, "cannot read secret file", 5, RS_SEV_ERROR, "missing secret file");
	expect(&d, "is empty", 8, RS_SEV_ERROR, "empty secret file");
	expect(&d, "both password and password_file", 12, RS_SEV_ERROR, "KEY and KEY_file both set");
	expect(&d, "unknown key", 14, RS_SEV_ERROR, "_file only exists for secret keys");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_stdin_and_missing(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_diags d;
	char path[TEST_PATH_MAX];

	rs_diags_init(&d);
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tdir);
	ok(rs_config_load(path, NULL, &d, &err) == NULL, "a missing file fails the load");
	has_str(err.msg, "does-not-exist.conf", "the error names the file");
	has_str(err.msg, "No such file", "and says why");
	ok(rs_config_load(tdir, NULL, &d, &err) == NULL, "a directory fails the load");
	has_str(err.msg, "Is a directory", "and says so");
	rs_diags_free(&d);
}

static void test_binary(void)
{
	struct rs_diags d;
	struct rs_config *cfg;
	static const char junk[] = "[cache]\nttl = 1s\x00\x01\xff\n\x7f\x45LF\x02\n";
	char path[TEST_PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/bin.conf", tdir);
	f = fopen(path, "w");
	fwrite(junk, 1, sizeof(junk) - 1, f);
	fclose(f);
	rs_diags_init(&d);
	cfg = rs_config_load(path, &(struct rs_config_options){ .ignore_env = true }, &d, NULL);
	ok(cfg && d.errors >= 2, "binary junk is reported, not a crash");
	expect(&d, "NUL byte", 2, RS_SEV_ERROR, "NUL byte named");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

int main(void)
{
	tdir_make();
	test_values();
	test_errors();
	test_include();
	test_env();
	test_secrets();
	test_stdin_and_missing();
	test_binary();
	tdir_remove();
	return tap_done();
}
