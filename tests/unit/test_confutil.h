/* Shared by test_config.c and test_validate.c: write config text into a
 * fresh temp dir and load it. */
#ifndef RS_TEST_CONFUTIL_H
#define RS_TEST_CONFUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "validate.h"

#include "testlib.h"

static struct tmpdir tmp;
#define tdir (tmp.path)

static void tdir_make(void)
{
	if (make_tmpdir(&tmp, "config") < 0) {
		perror("mkdtemp");
		exit(2);
	}
}

static void tdir_remove(void)
{
	remove_tmpdir(&tmp);
}

/* Write `text` to tdir/name with `mode`; returns the path (static). */
static const char *put_file(const char *name, const char *text, mode_t mode)
{
	static char path[TEST_PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* Load `text` as tdir/name with only `envp` as environment; run the checks
 * too when `check`. */
static struct rs_config *load(const char *name, const char *text,
			      char *const *envp, const char *environment,
			      bool check, struct rs_diags *d)
{
	static char *const empty[] = { NULL };
	struct rs_config_options opt = { environment, envp ? envp : empty, false };
	struct rs_err err = RS_ERR_INIT;
	struct rs_config *cfg;
	char path[TEST_PATH_MAX];

	snprintf(path, sizeof(path), "%s", put_file(name, text, 0644));
	rs_diags_init(d);
	cfg = rs_config_load(path, &opt, d, &err);
	if (!cfg) {
		fprintf(stderr, "load %s: %s\n", path, err.msg);
		exit(2);
	}
	if (check)
		rs_config_check(cfg, d);
	return cfg;
}

/* The diagnostic whose message contains `needle`, or NULL. */
static const struct rs_diag *find_diag(const struct rs_diags *d,
				       const char *needle)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, needle))
			return &d->v[i];
	return NULL;
}

static void dump_diags(const struct rs_diags *d)
{
	struct rs_buf b;

	for (size_t i = 0; i < d->n; i++) {
		rs_buf_init(&b, 4096);
		rs_diag_format_text(&d->v[i], &b);
		printf("#   diag: %s\n", rs_buf_str(&b));
		rs_buf_free(&b);
	}
}

#endif
