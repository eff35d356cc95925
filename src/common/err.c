#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rs_err_set(struct rs_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = 0;
	return -1;
}

int rs_err_errno(struct rs_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	if (n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
			 strerror(errnum));
	err->code = errnum;
	return -1;
}

void rs_err_prefix(struct rs_err *err, const char *fmt, ...)
{
	char prefix[RS_ERR_MSG_MAX];
	char old[RS_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation is fine: a long message keeps its start. */
	size_t n = strlen(prefix);

	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 3);
	strncat(err->msg, old, sizeof(err->msg) - n - 3);
}

void rs_err_clear(struct rs_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
