#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_buf_init(struct rs_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void rs_buf_free(struct rs_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void rs_buf_reset(struct rs_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *rs_buf_detach(struct rs_buf *b)
{
	char *p = b->data ? b->data : strdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

static int reserve(struct rs_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int rs_buf_append(struct rs_buf *b, const void *p, size_t n)
{
	if (reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int rs_buf_puts(struct rs_buf *b, const char *s)
{
	return rs_buf_append(b, s, strlen(s));
}

int rs_buf_putc(struct rs_buf *b, char c)
{
	return rs_buf_append(b, &c, 1);
}

int rs_buf_vprintf(struct rs_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	/* one pass when it fits in the room already there (the common case
	 * for a buffer reused line after line), else measure, grow, write */
	va_copy(ap2, ap);
	if (b->data) {
		size_t room = b->cap - b->len;
		n = vsnprintf(b->data + b->len, room, fmt, ap2);
		va_end(ap2);
		if (n >= 0 && (size_t)n < room) {
			if ((size_t)n > b->max - b->len) {
				b->data[b->len] = '\0';
				return -1;
			}
			b->len += (size_t)n;
			return 0;
		}
		b->data[b->len] = '\0';
	} else {
		n = vsnprintf(NULL, 0, fmt, ap2);
		va_end(ap2);
	}
	if (n < 0 || reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int rs_buf_printf(struct rs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rs_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *rs_buf_str(const struct rs_buf *b)
{
	return b->data ? b->data : "";
}
