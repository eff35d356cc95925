/*
 * record: the --record FILE of fakehwa (record.h has the line format and
 * the contract).  jansson does the JSON both ways: telling a JSON body from
 * any other needs a real parser, and its encoder already escapes strings.
 * It takes only valid UTF-8, hence utf8_text.
 */
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* U+FFFD REPLACEMENT CHARACTER, in UTF-8. */
#define REPLACEMENT "\xef\xbf\xbd"
#define REPLACEMENT_BYTES 3

struct recorder {
	int fd;			/* O_APPEND */
	pthread_mutex_t lock;	/* held across each line's write */
};

struct recorder *recorder_new(const char *file)
{
	struct recorder *rec = malloc(sizeof *rec);
	int err;

	if (!rec)
		return NULL;
	rec->fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (rec->fd < 0) {
		err = errno;
		free(rec);
		errno = err;
		return NULL;
	}
	pthread_mutex_init(&rec->lock, NULL);
	/* jansson seeds its hash function on first use, racily unless it was
	 * built with atomics: seed it now, before the connection threads. */
	json_object_seed(0);
	return rec;
}

void recorder_free(struct recorder *rec)
{
	if (!rec)
		return;
	close(rec->fd);
	pthread_mutex_destroy(&rec->lock);
	free(rec);
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF); 0 when none
 * starts there. */
static size_t utf8_length(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* n bytes as a JSON string, each byte that is not part of well-formed
 * UTF-8 replaced by U+FFFD: lossy, but a test reading the record gets
 * valid JSON whatever was sent, and a bad byte stays visible.  NUL bytes
 * are kept (jansson writes them as \u0000). */
static json_t *utf8_text(const char *s, size_t n)
{
	char *buf, *out;
	size_t i = 0, k;
	json_t *j;

	if (n > (SIZE_MAX - 1) / REPLACEMENT_BYTES)
		return NULL;
	out = buf = malloc(n * REPLACEMENT_BYTES + 1);
	if (!buf)
		return NULL;
	while (i < n) {
		k = utf8_length((const unsigned char *)s + i, n - i);
		if (k == 0) {
			memcpy(out, REPLACEMENT, REPLACEMENT_BYTES);
			out += REPLACEMENT_BYTES;
			i++;
		} else {
			memcpy(out, s + i, k);
			out += k;
			i += k;
		}
	}
	j = json_stringn(buf, (size_t)(out - buf));
	free(buf);
	return j;
}

static json_t *text_or_null(const char *s)
{
	return s ? utf8_text(s, strlen(s)) : json_null();
}

/* The body as JSON when jansson parses it whole (any value, \u0000 in
 * strings allowed); otherwise, and when empty, as a string.  What jansson
 * cannot hold (an integer past 64 bits, nesting past 2048) counts as not
 * JSON. */
static json_t *body_json(const char *body, size_t len)
{
	json_error_t err;
	json_t *j = NULL;

	if (len > 0)
		j = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	return j ? j : utf8_text(len > 0 ? body : "", len);
}

/* Takes v, even on failure; o may be NULL (then it fails). */
static bool put(json_t *o, const char *key, json_t *v)
{
	if (!o || !v) {
		json_decref(v);
		return false;
	}
	return json_object_set_new(o, key, v) == 0;
}

/* The record as one line with its newline, malloc'd; NULL when out of
 * memory. */
static char *record_line(const struct record *r, size_t *len)
{
	json_t *o = json_object();
	char *line = NULL;
	size_t n;
	bool ok;

	ok = put(o, "time_ms", json_integer(r->time_ms));
	ok = put(o, "method", utf8_text(r->method, strlen(r->method))) && ok;
	ok = put(o, "path", utf8_text(r->path, strlen(r->path))) && ok;
	ok = put(o, "query", utf8_text(r->query, strlen(r->query))) && ok;
	ok = put(o, "content_type", text_or_null(r->content_type)) && ok;
	ok = put(o, "body", body_json(r->body, r->body_len)) && ok;
	ok = put(o, "fault", text_or_null(r->fault)) && ok;
	ok = put(o, "status", r->status ? json_integer((json_int_t)r->status) :
		 json_null()) && ok;
	if (!ok)
		goto out;
	n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || !(line = malloc(n + 1)))
		goto out;
	if (json_dumpb(o, line, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
		free(line);
		line = NULL;
		goto out;
	}
	line[n] = '\n';
	*len = n + 1;
out:
	json_decref(o);
	return line;
}

int recorder_write(struct recorder *rec, const struct record *r)
{
	size_t left = 0;
	char *line = record_line(r, &left), *p = line;
	ssize_t n;
	int err = 0;

	if (!line) {
		errno = ENOMEM;
		return -1;
	}
	/* One write normally does it; should it come up short (a full
	 * disk), the lock still keeps the rest of the line next to its
	 * start. */
	pthread_mutex_lock(&rec->lock);
	while (left > 0) {
		n = write(rec->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	pthread_mutex_unlock(&rec->lock);
	free(line);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
