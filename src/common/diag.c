#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_diags_init(struct rs_diags *d)
{
	memset(d, 0, sizeof(*d));
}

static void diag_clear(struct rs_diag *g)
{
	free(g->file);
	free(g->env);
	free(g->section);
	free(g->key);
	free(g->msg);
}

void rs_diags_free(struct rs_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		diag_clear(&d->v[i]);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static char *dup_or_null(const char *s, int *fail)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		*fail = 1;
	return p;
}

void rs_diag_add(struct rs_diags *d, enum rs_severity sev,
		 const struct rs_where *where, const char *section,
		 const char *key, const char *fmt, ...)
{
	struct rs_diag g = { .sev = sev };
	char msg[1024];
	int fail = 0;
	va_list ap;

	if (sev == RS_SEV_ERROR)
		d->errors++;
	else
		d->warnings++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (where) {
		g.file = dup_or_null(where->file, &fail);
		g.line = where->line;
		g.env = dup_or_null(where->env, &fail);
	}
	g.section = dup_or_null(section, &fail);
	g.key = dup_or_null(key, &fail);
	g.msg = dup_or_null(msg, &fail);
	if (!fail && d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct rs_diag *v = realloc(d->v, cap * sizeof(*v));

		if (v) {
			d->v = v;
			d->cap = cap;
		} else {
			fail = 1;
		}
	}
	if (fail) {
		diag_clear(&g);
		return;
	}
	d->v[d->n++] = g;
}

static int file_rank(const struct rs_diags *d, const char *file)
{
	if (!file)
		return -1;  /* environment problems first: they override files */
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].file && strcmp(d->v[i].file, file) == 0)
			return (int)i;
	return 0;
}

void rs_diags_sort(struct rs_diags *d)
{
	/* Insertion sort: lists are short and it is stable. */
	for (size_t i = 1; i < d->n; i++) {
		struct rs_diag g = d->v[i];
		int rank = file_rank(d, g.file);
		size_t j = i;

		while (j > 0) {
			struct rs_diag *p = &d->v[j - 1];
			int prank = file_rank(d, p->file);

			if (prank < rank || (prank == rank && p->line <= g.line))
				break;
			d->v[j] = *p;
			j--;
		}
		d->v[j] = g;
	}
}

const char *rs_severity_name(enum rs_severity sev)
{
	return sev == RS_SEV_ERROR ? "error" : "warning";
}

static int put_subject(const struct rs_diag *g, struct rs_buf *out)
{
	int rc = 0;

	if (g->section)
		rc |= rs_buf_printf(out, "[%s]%s", g->section, g->key ? " " : ": ");
	if (g->key)
		rc |= rs_buf_printf(out, "%s: ", g->key);
	return rc;
}

int rs_diag_format_text(const struct rs_diag *g, struct rs_buf *out)
{
	int rc = 0;

	if (g->env)
		rc |= rs_buf_printf(out, "environment %s: ", g->env);
	else if (g->file && g->line > 0)
		rc |= rs_buf_printf(out, "%s:%d: ", g->file, g->line);
	else if (g->file)
		rc |= rs_buf_printf(out, "%s: ", g->file);
	rc |= rs_buf_printf(out, "%s: ", rs_severity_name(g->sev));
	rc |= put_subject(g, out);
	rc |= rs_buf_puts(out, g->msg);
	return rc ? -1 : 0;
}

/* GitHub workflow commands escape % CR LF in data and also : , in
 * properties. */
static int gh_escape(struct rs_buf *out, const char *s, int property)
{
	int rc = 0;

	for (; *s; s++) {
		switch (*s) {
		case '%': rc |= rs_buf_puts(out, "%25"); break;
		case '\r': rc |= rs_buf_puts(out, "%0D"); break;
		case '\n': rc |= rs_buf_puts(out, "%0A"); break;
		case ':':
			rc |= property ? rs_buf_puts(out, "%3A") : rs_buf_putc(out, ':');
			break;
		case ',':
			rc |= property ? rs_buf_puts(out, "%2C") : rs_buf_putc(out, ',');
			break;
		default: rc |= rs_buf_putc(out, *s);
		}
	}
	return rc;
}

int rs_diag_format_github(const struct rs_diag *g, struct rs_buf *out)
{
	struct rs_buf props, title, msg;
	int rc = 0;

	rs_buf_init(&props, 8192);
	rs_buf_init(&title, 4096);
	rs_buf_init(&msg, 4096);
	if (g->file) {
		rc |= rs_buf_puts(&props, "file=");
		rc |= gh_escape(&props, g->file, 1);
		if (g->line > 0)
			rc |= rs_buf_printf(&props, ",line=%d", g->line);
	}
	if (g->section) {
		rc |= rs_buf_printf(&title, "[%s]", g->section);
		if (g->key)
			rc |= rs_buf_printf(&title, " %s", g->key);
		rc |= rs_buf_puts(&props, props.len ? ",title=" : "title=");
		rc |= gh_escape(&props, rs_buf_str(&title), 1);
	}
	if (g->env)
		rc |= rs_buf_printf(&msg, "environment %s: ", g->env);
	rc |= rs_buf_puts(&msg, g->msg);
	rc |= rs_buf_printf(out, "::%s%s%s::", rs_severity_name(g->sev),
			    props.len ? " " : "", rs_buf_str(&props));
	rc |= gh_escape(out, rs_buf_str(&msg), 0);
	rs_buf_free(&props);
	rs_buf_free(&title);
	rs_buf_free(&msg);
	return rc ? -1 : 0;
}
