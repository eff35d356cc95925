/*
 * err: the error type every libresync function reports through.
 *
 * Library code never prints: a failing function returns a negative value
 * (or NULL) and fills the caller's struct rs_err with one line of text that
 * names the thing at fault (file:line, key, value, path).  Front ends decide
 * how to show it.  The message is lowercase and has no full stop, e.g.
 *   "cannot open 'var/resync.db': Permission denied".
 *
 * A NULL err is allowed everywhere: the message is then discarded.
 */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stddef.h>

#define RS_ERR_MSG_MAX 512

struct rs_err {
	int code;                  /* errno-style value when one applies, else 0 */
	char msg[RS_ERR_MSG_MAX];
};

#define RS_ERR_INIT { 0, { 0 } }

#if defined(__GNUC__)
#define RS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RS_PRINTF(fmt, args)
#endif

/* Set the message (printf-style); always returns -1 so callers can write
 * `return rs_err_set(err, ...);`. */
int rs_err_set(struct rs_err *err, const char *fmt, ...) RS_PRINTF(2, 3);

/* Like rs_err_set, appending ": strerror(errnum)" and recording errnum. */
int rs_err_errno(struct rs_err *err, int errnum, const char *fmt, ...)
	RS_PRINTF(3, 4);

/* Prefix an existing message: "<prefix>: <old message>". */
void rs_err_prefix(struct rs_err *err, const char *fmt, ...) RS_PRINTF(2, 3);

void rs_err_clear(struct rs_err *err);

#endif
