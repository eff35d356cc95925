/*
 * buf: a growable byte buffer with a hard size cap (as curl's dynbuf), so
 * no input can grow memory without bound.  The contents are always NUL
 * terminated.  The struct is owned by the caller; rs_buf_free releases the
 * data, rs_buf_detach hands it over (caller frees).
 */
#ifndef RS_BUF_H
#define RS_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct rs_buf {
	char *data;     /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;     /* appends beyond this fail */
};

void rs_buf_init(struct rs_buf *b, size_t max);
void rs_buf_free(struct rs_buf *b);
void rs_buf_reset(struct rs_buf *b);
/* Steal the contents ("" when empty); the buffer is left empty. */
char *rs_buf_detach(struct rs_buf *b);

/* 0, or -1 (out of memory or over the cap; the buffer is unchanged). */
int rs_buf_append(struct rs_buf *b, const void *p, size_t n);
int rs_buf_puts(struct rs_buf *b, const char *s);
int rs_buf_putc(struct rs_buf *b, char c);
int rs_buf_printf(struct rs_buf *b, const char *fmt, ...) RS_PRINTF(2, 3);
int rs_buf_vprintf(struct rs_buf *b, const char *fmt, va_list ap)
	RS_PRINTF(2, 0);

/* The contents, "" when empty; borrowed. */
const char *rs_buf_str(const struct rs_buf *b);

#endif
