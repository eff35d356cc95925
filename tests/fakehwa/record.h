/*
 * record: fakehwa's --record FILE.  One JSON line per request is appended
 * to FILE, so that a test using fakehwa as a webhook receiver (or as HWA)
 * can check what was sent to it:
 *
 *   {"time_ms":1718000000123,"method":"POST","path":"/hook","query":"",
 *    "content_type":"application/json","body":{"a":1},"fault":null,
 *    "status":200}
 *
 * (one line in the file).  "body" is the body parsed as JSON when it is
 * JSON (any value, re-encoded compactly by jansson), else the body as a
 * JSON string; the texts (method, path, query, content_type, a non-JSON
 * body) have each byte that is not part of valid UTF-8 replaced by U+FFFD,
 * and jansson escapes quotes, backslashes and control characters.
 *
 * Contract: recorder_new opens FILE for appending (created when missing,
 * never truncated) and must be called before any thread starts (it seeds
 * jansson's hash function); recorder_free closes it.  recorder_write may be
 * called from any thread: each line is one write(2) on an O_APPEND
 * descriptor under the recorder's own lock, so lines never interleave, and
 * it is in the file when recorder_write returns (there is no user-space
 * buffer), so a test polling FILE sees only whole lines.
 */
#ifndef FAKEHWA_RECORD_H
#define FAKEHWA_RECORD_H

#include <stddef.h>

struct recorder;

/* What one line says; every pointer is borrowed for the call only. */
struct record {
	long long time_ms;	/* when the request head was read; ms since the epoch */
	const char *method;
	const char *path;	/* percent-decoded, without the query */
	const char *query;	/* as sent; "" when none */
	const char *content_type;	/* NULL: no Content-Type header */
	const char *body;	/* body_len bytes, any bytes; may be NULL when 0 */
	size_t body_len;
	const char *fault;	/* the fault mode applied; NULL: none */
	unsigned long status;	/* the status sent; 0: none was (reset, hang) */
};

/* NULL with errno set when FILE cannot be opened. */
struct recorder *recorder_new(const char *file);

/* 0, or -1 with errno set (ENOMEM, or the write's error). */
int recorder_write(struct recorder *rec, const struct record *r);

void recorder_free(struct recorder *rec);

#endif
