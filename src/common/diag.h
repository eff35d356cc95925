/*
 * diag: a list of configuration problems, each with a severity and the
 * place it was found, so config-validate can report every problem in one
 * run instead of stopping at the first.
 *
 * A diagnostic owns copies of its strings, so the list outlives the config
 * that produced it.  On out-of-memory a diagnostic is dropped but still
 * counted, so a run can never look cleaner than it is.
 */
#ifndef RS_DIAG_H
#define RS_DIAG_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

enum rs_severity { RS_SEV_WARNING, RS_SEV_ERROR };

struct rs_diag {
	enum rs_severity sev;
	char *file;     /* config file, or NULL */
	int line;       /* 0 = the whole file / no line */
	char *env;      /* environment variable the value came from, or NULL */
	char *section;  /* "upstream hwa", or NULL */
	char *key;      /* or NULL */
	char *msg;
};

struct rs_diags {
	struct rs_diag *v;
	size_t n, cap;
	size_t errors, warnings;
};

/* Where a problem is: a file line, an environment variable, or neither. */
struct rs_where {
	const char *file;
	int line;
	const char *env;
};

void rs_diags_init(struct rs_diags *d);
void rs_diags_free(struct rs_diags *d);

void rs_diag_add(struct rs_diags *d, enum rs_severity sev,
		 const struct rs_where *where, const char *section,
		 const char *key, const char *fmt, ...) RS_PRINTF(6, 7);

/* Order by file (in order of first appearance), then line; stable. */
void rs_diags_sort(struct rs_diags *d);

const char *rs_severity_name(enum rs_severity sev);

/* "FILE:LINE: error: [section] key: message" */
int rs_diag_format_text(const struct rs_diag *g, struct rs_buf *out);
/* "::error file=FILE,line=LINE,title=[section] key::message" (GitHub
 * Actions workflow command, with its escaping). */
int rs_diag_format_github(const struct rs_diag *g, struct rs_buf *out);

#endif
