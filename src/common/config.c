/*
 * Loading resync.conf.  Files are read line by line through ini.c; each
 * key = value is checked against the schema at once, so a run reports
 * every problem with its file and line.  After a section header that is
 * unknown, keys are skipped silently until the next header: one typo in a
 * header should give one error, not one per key below it.
 *
 * include = PATTERN is textual: the included file continues the current
 * section until it opens its own, and the including file's section resumes
 * after it.  Relative paths (include, path values) resolve against the
 * directory of the file that names them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ini.h"
#include "util.h"

#define MAX_INCLUDE_DEPTH 16
#define MAX_LIST_ITEMS 256
#define MAX_SECRET_BYTES (64 * 1024)

extern char **environ;

struct file_ent {
	char *display;   /* as shown in messages */
	char *dir;       /* base for relative paths */
};

struct rs_config {
	char *path;
	struct file_ent *files;
	size_t nfiles;
	struct rs_conf_section **sections;
	size_t nsections;
	const char *environment;  /* points into a value or a static string */
	char *env_override;
	struct rs_diags *diags;
	const char *stack[MAX_INCLUDE_DEPTH + 1];  /* realpaths being read */
	size_t depth;
};

/* ---- small helpers ------------------------------------------------------ */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *join_path(const char *dir, const char *path)
{
	char *out;

	if (path[0] == '/' || !dir || strcmp(dir, ".") == 0)
		return strdup(path);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		return NULL;
	return out;
}

static const struct file_ent *intern_file(struct rs_config *cfg,
					  const char *display, const char *dir)
{
	struct file_ent *v;

	for (size_t i = 0; i < cfg->nfiles; i++)
		if (strcmp(cfg->files[i].display, display) == 0)
			return &cfg->files[i];
	v = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cfg->files = v;
	v[cfg->nfiles].display = strdup(display);
	v[cfg->nfiles].dir = strdup(dir);
	if (!v[cfg->nfiles].display || !v[cfg->nfiles].dir) {
		free(v[cfg->nfiles].display);
		free(v[cfg->nfiles].dir);
		return NULL;
	}
	return &cfg->files[cfg->nfiles++];
}

/* A file's base directory, looked up by its interned display name. */
static const char *file_dir(const struct rs_config *cfg, const char *display)
{
	for (size_t i = 0; display && i < cfg->nfiles; i++)
		if (cfg->files[i].display == display)
			return cfg->files[i].dir;
	return ".";
}

static void mangle(const char *s, char *out, size_t n)
{
	size_t i = 0;

	for (; *s && i + 1 < n; s++)
		out[i++] = isalnum((unsigned char)*s) ?
			(char)toupper((unsigned char)*s) : '_';
	out[i] = '\0';
}

void rs_conf_env_name(const char *section, const char *name, const char *key,
		      char *buf, size_t n)
{
	char s[64], m[128], k[64];

	mangle(section, s, sizeof(s));
	mangle(key, k, sizeof(k));
	if (name) {
		mangle(name, m, sizeof(m));
		snprintf(buf, n, "RESYNC_%s_%s_%s", s, m, k);
	} else {
		snprintf(buf, n, "RESYNC_%s_%s", s, k);
	}
}

void rs_conf_section_label(const struct rs_conf_section *sec, char *buf,
			   size_t n)
{
	if (sec->name)
		snprintf(buf, n, "%s %s", sec->schema->name, sec->name);
	else
		snprintf(buf, n, "%s", sec->schema->name);
}

struct rs_where rs_conf_where(const struct rs_config *cfg,
			      const struct rs_conf_section *sec,
			      const struct rs_conf_value *val)
{
	struct rs_where w = { cfg->path, 0, NULL };

	if (val && val->source == RS_SRC_ENV) {
		w.file = NULL;
		w.env = val->env;
	} else if (val && val->source == RS_SRC_FILE) {
		w.file = val->file;
		w.line = val->line;
	} else if (sec && sec->file) {
		w.file = sec->file;
		w.line = sec->line;
	} else if (sec) {
		/* A section only the environment made: name a variable. */
		for (size_t i = 0; i < sec->nvalues; i++)
			if (sec->values[i].source == RS_SRC_ENV) {
				w.file = NULL;
				w.env = sec->values[i].env;
				break;
			}
	}
	return w;
}

void rs_conf_vreport(const struct rs_config *cfg, struct rs_diags *d,
		     enum rs_severity sev, const struct rs_conf_section *sec,
		     const struct rs_conf_value *val, const char *key,
		     const char *fmt, va_list ap)
{
	struct rs_where w = rs_conf_where(cfg, sec, val);
	char label[160], msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	rs_conf_section_label(sec, label, sizeof(label));
	rs_diag_add(d, sev, &w, label, key ? key : (val ? val->key->name : NULL),
		    "%s", msg);
}

void rs_conf_report(const struct rs_config *cfg, struct rs_diags *d,
		    enum rs_severity sev, const struct rs_conf_section *sec,
		    const struct rs_conf_value *val, const char *key,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rs_conf_vreport(cfg, d, sev, sec, val, key, fmt, ap);
	va_end(ap);
}

/* A problem with a value, reported while loading. */
static void diag_val(struct rs_config *cfg, enum rs_severity sev,
		     const struct rs_conf_section *sec,
		     const struct rs_conf_value *val, const char *fmt, ...)
	RS_PRINTF(5, 6);

static void diag_val(struct rs_config *cfg, enum rs_severity sev,
		     const struct rs_conf_section *sec,
		     const struct rs_conf_value *val, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rs_conf_vreport(cfg, cfg->diags, sev, sec, val, NULL, fmt, ap);
	va_end(ap);
}

/* ---- sections and values ------------------------------------------------ */

static struct rs_conf_section *find_section(const struct rs_config *cfg,
					    const char *type, const char *name)
{
	for (size_t i = 0; i < cfg->nsections; i++) {
		struct rs_conf_section *s = cfg->sections[i];

		if (strcmp(s->schema->name, type) != 0)
			continue;
		if ((!name && !s->name) ||
		    (name && s->name && strcmp(name, s->name) == 0))
			return s;
	}
	return NULL;
}

static struct rs_conf_section *add_section(struct rs_config *cfg,
					   const struct rs_schema_section *schema,
					   const char *name, const char *file,
					   int line)
{
	struct rs_conf_section **v, *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->schema = schema;
	s->name = xstrdup(name);
	s->file = file;
	s->line = line;
	v = realloc(cfg->sections, (cfg->nsections + 1) * sizeof(*v));
	if (!v || (name && !s->name)) {
		free(s->name);
		free(s);
		return NULL;
	}
	cfg->sections = v;
	v[cfg->nsections++] = s;
	return s;
}

static void value_clear(struct rs_conf_value *v)
{
	free(v->env);
	free(v->secret_file);
	free(v->raw);
	free(v->str);
	for (size_t i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

static struct rs_conf_value *section_value(struct rs_conf_section *s,
					   const struct rs_schema_key *k)
{
	for (size_t i = 0; i < s->nvalues; i++)
		if (s->values[i].key == k)
			return &s->values[i];
	return NULL;
}

/* A slot for key k in s: the existing value (cleared), or a new one. */
static struct rs_conf_value *value_slot(struct rs_conf_section *s,
					const struct rs_schema_key *k)
{
	struct rs_conf_value *v = section_value(s, k);

	if (v) {
		value_clear(v);
		v->key = k;
		return v;
	}
	if (s->nvalues == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;

		v = realloc(s->values, cap * sizeof(*v));
		if (!v)
			return NULL;
		s->values = v;
		s->cap = cap;
	}
	v = &s->values[s->nvalues++];
	memset(v, 0, sizeof(*v));
	v->key = k;
	return v;
}

/* ---- typed parsing -------------------------------------------------------- */

static bool matches(const char *pattern, const char *s)
{
	regex_t re;
	bool ok;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static bool valid_url(const char *s, const char **why)
{
	const char *p, *host, *end;

	if (strncmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		p = s + 8;
	else {
		*why = "expected an http:// or https:// URL";
		return false;
	}
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			*why = "URL contains a space or control character";
			return false;
		}
	host = p;
	end = p + strcspn(p, "/?#");
	if (memchr(host, '@', (size_t)(end - host))) {
		*why = "credentials in the URL; use username and password_file";
		return false;
	}
	if (*host == '[') {
		end = strchr(host, ']');
		if (!end) {
			*why = "unterminated IPv6 address in URL";
			return false;
		}
		p = end + 1;
	} else {
		while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#')
			p++;
		if (p == host) {
			*why = "URL has no host";
			return false;
		}
	}
	if (*p == ':') {
		long port = 0;

		p++;
		if (!isdigit((unsigned char)*p)) {
			*why = "URL port is not a number";
			return false;
		}
		while (isdigit((unsigned char)*p) && port <= 65535)
			port = port * 10 + (*p++ - '0');
		if (port < 1 || port > 65535) {
			*why = "URL port out of range (1-65535)";
			return false;
		}
	}
	if (*p && *p != '/' && *p != '?') {
		*why = "malformed URL";
		return false;
	}
	return true;
}

static void bound_error(struct rs_config *cfg, struct rs_conf_section *sec,
			struct rs_conf_value *v, bool low)
{
	const struct rs_schema_key *k = v->key;
	char b[64];

	rs_schema_format_number(k->type, low ? k->min : k->max, b, sizeof(b));
	diag_val(cfg, RS_SEV_ERROR, sec, v, "'%s' is too %s (%s %s)", v->raw,
		 low ? "small" : "large", low ? "minimum" : "maximum", b);
}

static void enum_error(struct rs_config *cfg, struct rs_conf_section *sec,
		       struct rs_conf_value *v)
{
	char best[64] = "", list[512];
	size_t bestd = SIZE_MAX;
	const char *p = v->key->values;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		char cand[64];

		snprintf(cand, sizeof(cand), "%.*s", (int)len, p);
		if (rs_is_near(v->raw, cand) &&
		    rs_edit_distance(v->raw, cand) < bestd) {
			bestd = rs_edit_distance(v->raw, cand);
			snprintf(best, sizeof(best), "%s", cand);
		}
		p = bar ? bar + 1 : NULL;
	}
	list[0] = '\0';
	for (const char *c = v->key->values; *c; c++) {
		size_t n = strlen(list);

		if (n + 3 >= sizeof(list))
			break;
		if (*c == '|')
			memcpy(list + n, ", ", 3);
		else {
			list[n] = *c;
			list[n + 1] = '\0';
		}
	}
	if (best[0])
		diag_val(cfg, RS_SEV_ERROR, sec, v,
			 "unknown value '%s' (did you mean '%s'? one of: %s)",
			 v->raw, best, list);
	else
		diag_val(cfg, RS_SEV_ERROR, sec, v,
			 "unknown value '%s' (one of: %s)", v->raw, list);
}

/* Parse v->raw according to its key's type; on failure report it and
 * leave v->ok false. */
static void parse_value(struct rs_config *cfg, struct rs_conf_section *sec,
			struct rs_conf_value *v)
{
	const struct rs_schema_key *k = v->key;
	const char *why = NULL;
	bool b;

	v->ok = false;
	switch (k->type) {
	case RS_T_INT:
		if (rs_parse_int64(v->raw, &v->num, &why) < 0)
			goto bad;
		goto bounds;
	case RS_T_DURATION:
		if (rs_parse_duration_ms(v->raw, &v->num, &why) < 0)
			goto bad;
		goto bounds;
	case RS_T_SIZE:
		if (rs_parse_size(v->raw, &v->num, &why) < 0)
			goto bad;
		goto bounds;
	case RS_T_BOOL:
		if (rs_parse_bool(v->raw, &b, &why) < 0)
			goto bad;
		v->num = b;
		break;
	case RS_T_ENUM:
		v->num = rs_schema_enum_index(k, v->raw);
		if (v->num < 0) {
			enum_error(cfg, sec, v);
			return;
		}
		break;
	case RS_T_URL:
		if (!valid_url(v->raw, &why)) {
			const char *at = strchr(v->raw, '@');

			/* Never echo a password: show only what follows it. */
			if (at) {
				diag_val(cfg, RS_SEV_ERROR, sec, v,
					 "invalid url '<redacted>@%s': %s",
					 at + 1, why);
				return;
			}
			goto bad;
		}
		break;
	case RS_T_PATH:
		if (!*v->raw) {
			why = "empty path";
			goto bad;
		}
		v->str = join_path(v->source == RS_SRC_FILE ?
					   file_dir(cfg, v->file) : ".",
				   v->raw);
		if (!v->str) {
			why = "out of memory";
			goto bad;
		}
		v->ok = true;
		return;
	case RS_T_REGEX: {
		regex_t re;
		char msg[256];
		int rc = regcomp(&re, v->raw, REG_EXTENDED | REG_NOSUB);

		if (rc != 0) {
			regerror(rc, &re, msg, sizeof(msg));
			diag_val(cfg, RS_SEV_ERROR, sec, v,
				 "invalid regular expression '%s': %s", v->raw,
				 msg);
			return;
		}
		regfree(&re);
		break;
	}
	case RS_T_LIST: {
		char *copy = strdup(v->raw), *items[MAX_LIST_ITEMS];
		size_t n = 0;

		if (!copy || rs_ini_split_list(copy, items, MAX_LIST_ITEMS, &n,
					       &why) < 0) {
			free(copy);
			if (!why)
				why = "out of memory";
			goto bad;
		}
		v->items = calloc(n ? n : 1, sizeof(char *));
		for (size_t i = 0; v->items && i < n; i++) {
			if (k->pattern && !matches(k->pattern, items[i])) {
				diag_val(cfg, RS_SEV_ERROR, sec, v,
					 "invalid list item '%s'", items[i]);
				free(copy);
				return;
			}
			if ((k->flags & RS_K_URL_ITEMS) && !valid_url(items[i], &why)) {
				const char *at = strchr(items[i], '@');

				/* never echo a password */
				diag_val(cfg, RS_SEV_ERROR, sec, v, "invalid url '%s%s': %s",
					 at ? "<redacted>@" : "", at ? at + 1 : items[i], why);
				free(copy);
				return;
			}
			v->items[v->nitems] = strdup(items[i]);
			if (!v->items[v->nitems])
				break;
			v->nitems++;
		}
		free(copy);
		if (v->nitems != n) {
			why = "out of memory";
			goto bad;
		}
		v->ok = true;
		return;
	}
	case RS_T_STRING:
		if (k->pattern && !matches(k->pattern, v->raw)) {
			if (k->flags & RS_K_SECRET)
				diag_val(cfg, RS_SEV_ERROR, sec, v,
					 "invalid value");
			else
				diag_val(cfg, RS_SEV_ERROR, sec, v,
					 "invalid value '%s' (must match %s)",
					 v->raw, k->pattern);
			return;
		}
		break;
	}
	v->str = strdup(v->raw);
	v->ok = v->str != NULL;
	return;
bounds:
	if ((k->min || k->max) && v->num < k->min) {
		bound_error(cfg, sec, v, true);
		return;
	}
	if ((k->min || k->max) && v->num > k->max) {
		bound_error(cfg, sec, v, false);
		return;
	}
	v->ok = true;
	return;
bad:
	if (k->flags & RS_K_SECRET)
		diag_val(cfg, RS_SEV_ERROR, sec, v, "invalid value: %s", why);
	else
		diag_val(cfg, RS_SEV_ERROR, sec, v, "invalid %s '%s': %s",
			 rs_type_name(k->type), v->raw, why);
}

/* Read a secret from a file: at most 64 KiB, one trailing newline
 * dropped.  Returns a malloc'd string or NULL with *why set. */
static char *read_secret(const char *path, char *why, size_t n)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t len;

	if (!f) {
		snprintf(why, n, "cannot read secret file '%s': %s", path,
			 strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_SECRET_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(why, n, "out of memory");
		return NULL;
	}
	len = fread(buf, 1, MAX_SECRET_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(why, n, "cannot read secret file '%s': %s", path,
			 strerror(errno));
		goto fail;
	}
	if (len > MAX_SECRET_BYTES) {
		snprintf(why, n, "secret file '%s' is larger than 64KB", path);
		goto fail;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(why, n, "secret file '%s' contains a NUL byte", path);
		goto fail;
	}
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (!len) {
		snprintf(why, n, "secret file '%s' is empty", path);
		goto fail;
	}
	fclose(f);
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

/* Store one setting.  `is_file` means the raw text is the path of a file
 * holding the secret value of `k` (KEY_file). */
static void set_value(struct rs_config *cfg, struct rs_conf_section *sec,
		      const struct rs_schema_key *k, const char *raw,
		      bool is_file, enum rs_source src, const char *file,
		      int line, const char *env)
{
	struct rs_conf_value *old = section_value(sec, k), *v;
	char *path = NULL, *secret = NULL, why[512];

	if (old && src == RS_SRC_FILE && old->source == RS_SRC_FILE &&
	    old->file == file) {
		struct rs_where w = { file, line, NULL };
		char label[160];
		const char *was = old->secret_file ? "_file" : "";

		rs_conf_section_label(sec, label, sizeof(label));
		if ((old->secret_file != NULL) != is_file)
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &w, label, k->name,
				    "both %s and %s_file are set (line %d sets %s%s)",
				    k->name, k->name, old->line, k->name, was);
		else
			rs_diag_add(cfg->diags, RS_SEV_WARNING, &w, label,
				    k->name,
				    "set again; overrides the value from line %d",
				    old->line);
	}
	if (is_file) {
		path = join_path(src == RS_SRC_FILE ? file_dir(cfg, file) : ".",
				 raw);
		secret = path ? read_secret(path, why, sizeof(why)) : NULL;
		if (!secret) {
			struct rs_where w = { file, line, env };
			char label[160];

			rs_conf_section_label(sec, label, sizeof(label));
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &w, label,
				    k->name, "%s", path ? why : "out of memory");
			free(path);
			return;
		}
	}
	v = value_slot(sec, k);
	if (!v) {
		free(path);
		free(secret);
		return;
	}
	v->source = src;
	v->file = file;
	v->line = line;
	v->env = xstrdup(env);
	v->secret_file = path;
	v->raw = secret ? secret : strdup(raw);
	if (!v->raw)
		return;
	parse_value(cfg, sec, v);
}

/* ---- files ---------------------------------------------------------------- */

static void load_stream(struct rs_config *cfg, FILE *f, const char *display,
			struct rs_conf_section *sec);

static void include_one(struct rs_config *cfg, const char *path,
			const struct rs_where *at, struct rs_conf_section *sec)
{
	char real[PATH_MAX];
	const struct file_ent *fe;
	struct stat st;
	char *dir;
	FILE *f;

	if (!realpath(path, real)) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, at, NULL, "include",
			    "cannot open '%s': %s", path, strerror(errno));
		return;
	}
	for (size_t i = 0; i < cfg->depth; i++)
		if (strcmp(cfg->stack[i], real) == 0) {
			rs_diag_add(cfg->diags, RS_SEV_ERROR, at, NULL,
				    "include",
				    "'%s' includes itself (include cycle)",
				    path);
			return;
		}
	if (cfg->depth >= MAX_INCLUDE_DEPTH) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, at, NULL, "include",
			    "includes nested more than %d deep",
			    MAX_INCLUDE_DEPTH);
		return;
	}
	f = fopen(path, "r");
	if (!f) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, at, NULL, "include",
			    "cannot open '%s': %s", path, strerror(errno));
		return;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, at, NULL, "include",
			    "'%s' is a directory (use '%s/*.conf')", path, path);
		fclose(f);
		return;
	}
	dir = rs_path_dirname(path);
	fe = dir ? intern_file(cfg, path, dir) : NULL;
	free(dir);
	if (fe) {
		cfg->stack[cfg->depth++] = real;
		load_stream(cfg, f, fe->display, sec);
		cfg->depth--;
	}
	fclose(f);
}

static void do_include(struct rs_config *cfg, const char *raw,
		       const char *display, int line,
		       struct rs_conf_section *sec)
{
	struct rs_where at = { display, line, NULL };
	char *pattern, *copy = strdup(raw);
	const char *why = NULL;
	glob_t g;
	int rc;

	if (!copy || rs_ini_unquote(copy, &why) < 0 || !*copy) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, "include",
			    "%s", why ? why : "empty include path");
		free(copy);
		return;
	}
	pattern = join_path(file_dir(cfg, display), copy);
	free(copy);
	if (!pattern)
		return;
	if (!strpbrk(pattern, "*?[")) {
		include_one(cfg, pattern, &at, sec);
		free(pattern);
		return;
	}
	rc = glob(pattern, 0, NULL, &g);
	if (rc == 0)
		for (size_t i = 0; i < g.gl_pathc; i++)
			include_one(cfg, g.gl_pathv[i], &at, sec);
	else if (rc != GLOB_NOMATCH)
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, "include",
			    "cannot expand '%s'", pattern);
	if (rc == 0 || rc == GLOB_NOMATCH)
		globfree(&g);
	free(pattern);
}

static void on_section(struct rs_config *cfg, const struct rs_ini_line *l,
		       const char *display, int line,
		       struct rs_conf_section **cur, bool *skip)
{
	struct rs_where at = { display, line, NULL };
	const struct rs_schema_section *ss = rs_schema_section(l->section);

	*cur = NULL;
	*skip = true;
	if (!ss) {
		const char *near = rs_schema_suggest_section(l->section);

		if (near)
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, l->section,
				    NULL, "unknown section (did you mean [%s]?)",
				    near);
		else
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, l->section,
				    NULL, "unknown section");
		return;
	}
	if (ss->named && !l->name) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, l->section, NULL,
			    "section needs a name, e.g. [%s %s]", ss->name,
			    strcmp(ss->name, "key") == 0 ? "ops-team" : "hwa");
		return;
	}
	if (!ss->named && l->name) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, l->section, NULL,
			    "section takes no name ('%s')", l->name);
		return;
	}
	*cur = find_section(cfg, ss->name, l->name);
	if (!*cur)
		*cur = add_section(cfg, ss, l->name, display, line);
	else if (!(*cur)->file) {
		(*cur)->file = display;
		(*cur)->line = line;
	}
	*skip = false;
}

static void on_keyval(struct rs_config *cfg, struct rs_ini_line *l,
		      const char *display, int line,
		      struct rs_conf_section *cur, bool skip)
{
	struct rs_where at = { display, line, NULL };
	const struct rs_schema_key *k;
	size_t klen = strlen(l->key);
	bool is_file = false;
	char label[160];
	const char *why = NULL;

	if (strcmp(l->key, "include") == 0) {
		do_include(cfg, l->value, display, line, cur);
		return;
	}
	if (skip)
		return;
	if (!cur) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, l->key,
			    "key outside any section");
		return;
	}
	rs_conf_section_label(cur, label, sizeof(label));
	k = rs_schema_key(cur->schema->name, l->key);
	if (!k && klen > 5 && strcmp(l->key + klen - 5, "_file") == 0) {
		char base[128];

		snprintf(base, sizeof(base), "%.*s", (int)(klen - 5), l->key);
		k = rs_schema_key(cur->schema->name, base);
		if (k && !(k->flags & RS_K_SECRET))
			k = NULL;
		is_file = k != NULL;
	}
	if (!k) {
		const char *near = rs_schema_suggest_key(cur->schema->name,
							 l->key);

		if (near)
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, label, l->key,
				    "unknown key (did you mean '%s'?)", near);
		else
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, label, l->key,
				    "unknown key");
		return;
	}
	if (k->type != RS_T_LIST && rs_ini_unquote(l->value, &why) < 0) {
		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, label, l->key, "%s",
			    why);
		return;
	}
	set_value(cfg, cur, k, l->value, is_file, RS_SRC_FILE, display, line,
		  NULL);
}

static void load_stream(struct rs_config *cfg, FILE *f, const char *display,
			struct rs_conf_section *sec)
{
	struct rs_conf_section *cur = sec;
	bool skip = false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0;

	while ((len = getline(&line, &cap, f)) >= 0) {
		struct rs_where at = { display, ++lineno, NULL };
		struct rs_ini_line l;

		if ((size_t)len != strlen(line)) {
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, NULL,
				    "line contains a NUL byte (binary file?)");
			continue;
		}
		rs_ini_parse_line(line, &l);
		switch (l.kind) {
		case RS_INI_BLANK:
			break;
		case RS_INI_ERROR:
			rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, NULL,
				    "%s", l.error);
			/* Keys under a broken header belong to no section
			 * we know: skip them, as after an unknown one. */
			if (l.header) {
				cur = NULL;
				skip = true;
			}
			break;
		case RS_INI_SECTION:
			on_section(cfg, &l, display, lineno, &cur, &skip);
			break;
		case RS_INI_KEYVAL:
			on_keyval(cfg, &l, display, lineno, cur, skip);
			break;
		}
	}
	if (ferror(f)) {
		struct rs_where at = { display, 0, NULL };

		rs_diag_add(cfg->diags, RS_SEV_ERROR, &at, NULL, NULL,
			    "read error: %s", strerror(errno));
	}
	free(line);
}

/* ---- environment ---------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Apply one RESYNC_* variable; returns false when nothing matches. */
static bool apply_env(struct rs_config *cfg, const char *var, const char *val)
{
	const char *rest0 = var + strlen("RESYNC_");

	for (size_t si = 0; si < rs_schema_nsections; si++) {
		const struct rs_schema_section *ss = &rs_schema_sections[si];
		const struct rs_schema_key *best = NULL;
		struct rs_conf_section *bestsec = NULL;
		char prefix[64], bestname[128] = "";
		bool best_file = false;
		size_t plen;

		mangle(ss->name, prefix, sizeof(prefix));
		plen = strlen(prefix);
		if (strncmp(rest0, prefix, plen) != 0 || rest0[plen] != '_')
			continue;
		const char *rest = rest0 + plen + 1;

		for (size_t ki = 0; ki < rs_schema_nkeys; ki++) {
			const struct rs_schema_key *k = &rs_schema_keys[ki];

			if (strcmp(k->section, ss->name) != 0)
				continue;
			for (int as_file = 0; as_file < 2; as_file++) {
				char kname[96], suffix[100];
				size_t mlen;

				if (as_file && !(k->flags & RS_K_SECRET))
					continue;
				mangle(k->name, kname, sizeof(kname));
				if (as_file)
					strcat(kname, "_FILE");
				if (!ss->named) {
					if (strcmp(rest, kname) == 0) {
						best = k;
						best_file = as_file;
					}
					continue;
				}
				snprintf(suffix, sizeof(suffix), "_%s", kname);
				if (!ends_with(rest, suffix))
					continue;
				mlen = strlen(rest) - strlen(suffix);
				if (mlen == 0 || mlen >= sizeof(bestname))
					continue;
				/* Prefer a section that exists, then the
				 * longest key: RESYNC_UPSTREAM_HWA_CONNECT_TIMEOUT
				 * is hwa's connect_timeout. */
				char m[128];
				struct rs_conf_section *found = NULL;

				snprintf(m, sizeof(m), "%.*s", (int)mlen, rest);
				mangle(m, m, sizeof(m));
				for (size_t i = 0; i < cfg->nsections; i++) {
					char mm[128];
					struct rs_conf_section *s = cfg->sections[i];

					if (s->schema != ss)
						continue;
					mangle(s->name, mm, sizeof(mm));
					if (strcmp(mm, m) == 0)
						found = s;
				}
				if (best && (bestsec && !found))
					continue;
				if (best && (!!bestsec == !!found) &&
				    strlen(best->name) + best_file * 5 >=
					    strlen(k->name) + (size_t)as_file * 5)
					continue;
				best = k;
				best_file = as_file;
				bestsec = found;
				snprintf(bestname, sizeof(bestname), "%s", m);
			}
		}
		if (!best)
			continue;
		if (!ss->named) {
			bestsec = find_section(cfg, ss->name, NULL);
			if (!bestsec)
				bestsec = add_section(cfg, ss, NULL, NULL, 0);
		} else if (!bestsec) {
			for (char *c = bestname; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (!rs_ini_valid_name(bestname)) {
				struct rs_where w = { NULL, 0, var };

				rs_diag_add(cfg->diags, RS_SEV_ERROR, &w, NULL,
					    NULL, "invalid section name '%s'",
					    bestname);
				return true;
			}
			bestsec = add_section(cfg, ss, bestname, NULL, 0);
		}
		if (bestsec)
			set_value(cfg, bestsec, best, val, best_file,
				  RS_SRC_ENV, NULL, 0, var);
		return true;
	}
	return false;
}

static void load_env(struct rs_config *cfg, char *const *envp)
{
	for (; envp && *envp; envp++) {
		const char *eq = strchr(*envp, '=');
		char var[256];

		if (!eq || strncmp(*envp, "RESYNC_", 7) != 0)
			continue;
		snprintf(var, sizeof(var), "%.*s", (int)(eq - *envp), *envp);
		if (strcmp(var, "RESYNC_CONFIG") == 0)
			continue;
		if (!apply_env(cfg, var, eq + 1)) {
			struct rs_where w = { NULL, 0, var };

			rs_diag_add(cfg->diags, RS_SEV_WARNING, &w, NULL, NULL,
				    "unknown configuration variable, ignored");
		}
	}
}

/* ---- defaults and the public API ---------------------------------------- */

static void fill_defaults(struct rs_config *cfg)
{
	for (size_t i = 0; i < rs_schema_nsections; i++) {
		const struct rs_schema_section *ss = &rs_schema_sections[i];

		if (!ss->named && !find_section(cfg, ss->name, NULL))
			add_section(cfg, ss, NULL, NULL, 0);
	}
	for (size_t i = 0; i < cfg->nsections; i++) {
		struct rs_conf_section *s = cfg->sections[i];

		for (size_t ki = 0; ki < rs_schema_nkeys; ki++) {
			const struct rs_schema_key *k = &rs_schema_keys[ki];
			struct rs_conf_value *v;

			if (strcmp(k->section, s->schema->name) != 0 || !k->def ||
			    section_value(s, k))
				continue;
			v = value_slot(s, k);
			if (!v)
				continue;
			v->source = RS_SRC_DEFAULT;
			v->raw = strdup(k->def);
			if (v->raw)
				parse_value(cfg, s, v);
		}
	}
}

struct rs_config *rs_config_load(const char *path,
				 const struct rs_config_options *opt,
				 struct rs_diags *diags, struct rs_err *err)
{
	static const struct rs_config_options defaults;
	struct rs_config *cfg;
	const struct file_ent *fe;
	bool is_stdin = strcmp(path, "-") == 0;
	char real[PATH_MAX], *dir;
	FILE *f;

	if (!opt)
		opt = &defaults;
	f = is_stdin ? stdin : fopen(path, "r");
	if (!f) {
		rs_err_errno(err, errno, "cannot open '%s'", path);
		return NULL;
	}
	if (!is_stdin) {
		struct stat st;

		if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
			fclose(f);
			rs_err_set(err, "cannot read '%s': Is a directory", path);
			return NULL;
		}
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		if (!is_stdin)
			fclose(f);
		rs_err_set(err, "out of memory");
		return NULL;
	}
	cfg->diags = diags;
	cfg->path = strdup(is_stdin ? "<stdin>" : path);
	dir = is_stdin ? strdup(".") : rs_path_dirname(path);
	fe = (cfg->path && dir) ? intern_file(cfg, cfg->path, dir) : NULL;
	free(dir);
	if (!fe) {
		if (!is_stdin)
			fclose(f);
		rs_config_free(cfg);
		rs_err_set(err, "out of memory");
		return NULL;
	}
	if (!is_stdin && realpath(path, real))
		cfg->stack[cfg->depth++] = real;
	load_stream(cfg, f, fe->display, NULL);
	cfg->depth = 0;
	if (!is_stdin)
		fclose(f);
	if (!opt->ignore_env)
		load_env(cfg, opt->envp ? opt->envp : environ);
	fill_defaults(cfg);

	if (opt->environment) {
		cfg->env_override = strdup(opt->environment);
		cfg->environment = cfg->env_override;
	}
	if (!cfg->environment) {
		const struct rs_conf_section *s = rs_config_find(cfg, "server", NULL);
		const struct rs_conf_value *v = s ? rs_conf_get(s, "environment") : NULL;

		cfg->environment = v && v->ok ? v->str : "development";
	}
	cfg->diags = NULL;
	return cfg;
}

void rs_config_free(struct rs_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nsections; i++) {
		struct rs_conf_section *s = cfg->sections[i];

		for (size_t j = 0; j < s->nvalues; j++)
			value_clear(&s->values[j]);
		free(s->values);
		free(s->name);
		free(s);
	}
	free(cfg->sections);
	for (size_t i = 0; i < cfg->nfiles; i++) {
		free(cfg->files[i].display);
		free(cfg->files[i].dir);
	}
	free(cfg->files);
	free(cfg->env_override);
	free(cfg->path);
	free(cfg);
}

const char *rs_config_path(const struct rs_config *cfg)
{
	return cfg->path;
}

size_t rs_config_nfiles(const struct rs_config *cfg)
{
	return cfg->nfiles;
}

const char *rs_config_file_at(const struct rs_config *cfg, size_t i)
{
	return i < cfg->nfiles ? cfg->files[i].display : NULL;
}

const char *rs_config_environment(const struct rs_config *cfg)
{
	return cfg->environment;
}

bool rs_config_is_production(const struct rs_config *cfg)
{
	return strcmp(cfg->environment, "production") == 0;
}

size_t rs_config_nsections(const struct rs_config *cfg)
{
	return cfg->nsections;
}

const struct rs_conf_section *rs_config_section_at(const struct rs_config *cfg,
						   size_t i)
{
	return i < cfg->nsections ? cfg->sections[i] : NULL;
}

const struct rs_conf_section *rs_config_find(const struct rs_config *cfg,
					     const char *type, const char *name)
{
	return find_section(cfg, type, name);
}

const struct rs_conf_value *rs_conf_get(const struct rs_conf_section *sec,
					const char *key)
{
	for (size_t i = 0; i < sec->nvalues; i++)
		if (strcmp(sec->values[i].key->name, key) == 0)
			return &sec->values[i];
	return NULL;
}

static const struct rs_conf_value *must_get(const struct rs_config *cfg,
					    const char *section,
					    const char *key)
{
	const struct rs_conf_section *s = find_section(cfg, section, NULL);

	if (!rs_schema_key(section, key) || rs_schema_section(section)->named) {
		fprintf(stderr, "BUG: [%s] %s is not an unnamed-section key "
			"of the schema\n", section, key);
		abort();
	}
	return s ? rs_conf_get(s, key) : NULL;
}

int64_t rs_config_num(const struct rs_config *cfg, const char *section,
		      const char *key)
{
	const struct rs_conf_value *v = must_get(cfg, section, key);
	int64_t n = 0;
	const char *why;
	bool b;

	if (!v)
		return 0;
	if (v->ok)
		return v->num;
	/* Invalid values were reported; fall back to the default. */
	if (!v->key->def)
		return 0;
	switch (v->key->type) {
	case RS_T_DURATION: rs_parse_duration_ms(v->key->def, &n, &why); break;
	case RS_T_SIZE: rs_parse_size(v->key->def, &n, &why); break;
	case RS_T_BOOL: rs_parse_bool(v->key->def, &b, &why); n = b; break;
	case RS_T_ENUM: n = rs_schema_enum_index(v->key, v->key->def); break;
	default: rs_parse_int64(v->key->def, &n, &why); break;
	}
	return n;
}

const char *rs_config_str(const struct rs_config *cfg, const char *section,
			  const char *key)
{
	const struct rs_conf_value *v = must_get(cfg, section, key);

	if (!v)
		return NULL;
	return v->ok ? v->str : v->key->def;
}
