/*
 * cachefile: the export format is described in cachefile.h.
 *
 * Writing needs no JSON library: strings are chosen to need only the
 * two-byte escapes (\" \\ \t \n \r), so they are escaped here, straight
 * into the FILE.
 *
 * Reading is the part with quirks.  jansson has no streaming parser, so
 * the outer object (the JSON format's document, or the NDJSON header) is
 * scanned here a byte at a time: member names and the values of members
 * other than "entries" are cut out as raw JSON text (strings, escapes and
 * nesting tracked, at most RS_CACHEFILE_MEMBER_MAX_BYTES) and decoded
 * with json_loadb.  Each element of "entries" is parsed by jansson
 * itself through json_load_callback with JSON_DISABLE_EOF_CHECK, fed one
 * byte per call: jansson stops right after an object's closing brace,
 * and since it never holds more than the byte it asked for, nothing
 * past the entry is consumed.  Feeding through reader_next also counts
 * lines and caps the entry at max_line_bytes.  NDJSON entry lines are
 * read whole (capped) and decoded with json_loadb.
 */
#include "cachefile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"

#define FORMAT_NAME "resync-cache"
#define FORMAT_VERSION 1

/* Framing of one entry at its largest: {"key_base64":"","value_base64":
 * "","stored_ms":,"expires_ms":} is 62 bytes, two int64s at most 40. */
#define ENTRY_OVERHEAD_BYTES 128
/* Raw bytes encoded per write; a multiple of 3 so only the last chunk
 * pads. */
#define B64_CHUNK_BYTES 768
/* How much of a bad "format" value or member name an error repeats. */
#define QUOTE_MAX_CHARS 64

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int rs_cachefile_format_parse(const char *name, enum rs_cachefile_format *out)
{
	if (!name)
		return -1;
	if (strcmp(name, "json") == 0)
		*out = RS_CACHEFILE_JSON;
	else if (strcmp(name, "ndjson") == 0)
		*out = RS_CACHEFILE_NDJSON;
	else if (strcmp(name, "auto") == 0)
		*out = RS_CACHEFILE_AUTO;
	else
		return -1;
	return 0;
}

const char *rs_cachefile_format_name(enum rs_cachefile_format fmt)
{
	switch (fmt) {
	case RS_CACHEFILE_JSON:
		return "json";
	case RS_CACHEFILE_NDJSON:
		return "ndjson";
	case RS_CACHEFILE_AUTO:
		break;
	}
	return "auto";
}

/* Both string and base64 forms take at most 2n + 2 bytes, quotes
 * included (base64: 4 * ceil(n / 3) <= 2n + 2 for every n). */
static size_t field_max(size_t n)
{
	return n > (SIZE_MAX - 4) / 2 ? SIZE_MAX : 2 * n + 4;
}

size_t rs_cachefile_entry_max_bytes(size_t klen, size_t vlen)
{
	size_t k = field_max(klen), v = field_max(vlen);

	if (k > SIZE_MAX - v || k + v > SIZE_MAX - ENTRY_OVERHEAD_BYTES)
		return SIZE_MAX;
	return k + v + ENTRY_OVERHEAD_BYTES;
}

/* ---- writing ------------------------------------------------------------ */

struct rs_cachefile_writer {
	FILE *f;
	enum rs_cachefile_format fmt;
	uint64_t entries;
	int errnum;                 /* the first write failure, 0 while fine */
};

static void put(struct rs_cachefile_writer *w, const void *p, size_t n)
{
	if (w->errnum || n == 0)
		return;
	errno = 0;
	if (fwrite(p, 1, n, w->f) != n)
		w->errnum = errno ? errno : EIO;
}

static void put_str(struct rs_cachefile_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_int(struct rs_cachefile_writer *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	put(w, num, (size_t)n);
}

/* Valid UTF-8 (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF) whose only control characters are tab, newline and carriage
 * return, so the JSON string needs no six-byte \u escapes. */
static bool is_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t more;

		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return false;
			i++;
			continue;
		}
		if (c < 0xc2)
			return false;           /* continuation, or overlong */
		if (c < 0xe0) {
			more = 1;
		} else if (c < 0xf0) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;      /* overlong */
			else if (c == 0xed)
				hi = 0x9f;      /* surrogates */
		} else if (c < 0xf5) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;      /* overlong */
			else if (c == 0xf4)
				hi = 0x8f;      /* above U+10FFFF */
		} else {
			return false;
		}
		if (n - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		i += more + 1;
	}
	return true;
}

static void put_text(struct rs_cachefile_writer *w, const unsigned char *p, size_t n)
{
	size_t run = 0;

	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		const char *esc;

		switch (p[i]) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		put(w, p + run, i - run);
		put(w, esc, 2);
		run = i + 1;
	}
	put(w, p + run, n - run);
	put(w, "\"", 1);
}

static void put_base64(struct rs_cachefile_writer *w, const unsigned char *p, size_t n)
{
	char out[B64_CHUNK_BYTES / 3 * 4];

	put(w, "\"", 1);
	while (n > 0) {
		size_t take = n < B64_CHUNK_BYTES ? n : B64_CHUNK_BYTES, o = 0, i;

		for (i = 0; i + 3 <= take; i += 3) {
			uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

			out[o++] = b64_alphabet[v >> 18];
			out[o++] = b64_alphabet[(v >> 12) & 63];
			out[o++] = b64_alphabet[(v >> 6) & 63];
			out[o++] = b64_alphabet[v & 63];
		}
		if (i < take) {
			uint32_t v = (uint32_t)p[i] << 16;

			if (i + 1 < take)
				v |= (uint32_t)p[i + 1] << 8;
			out[o++] = b64_alphabet[v >> 18];
			out[o++] = b64_alphabet[(v >> 12) & 63];
			out[o++] = i + 1 < take ? b64_alphabet[(v >> 6) & 63] : '=';
			out[o++] = '=';
		}
		put(w, out, o);
		p += take;
		n -= take;
	}
	put(w, "\"", 1);
}

/* "name":"text" or "name_base64":"...". */
static void put_field(struct rs_cachefile_writer *w, const char *name,
		      const void *data, size_t len)
{
	const unsigned char *p = len ? data : (const unsigned char *)"";

	put(w, "\"", 1);
	put_str(w, name);
	if (is_text(p, len)) {
		put(w, "\":", 2);
		put_text(w, p, len);
	} else {
		put_str(w, "_base64\":");
		put_base64(w, p, len);
	}
}

static int write_failed(struct rs_cachefile_writer *w, struct rs_err *err)
{
	return rs_err_errno(err, w->errnum, "write failed");
}

int rs_cachefile_writer_new(struct rs_cachefile_writer **out, FILE *f,
			    enum rs_cachefile_format fmt, int64_t exported_ms,
			    struct rs_err *err)
{
	struct rs_cachefile_writer *w;

	*out = NULL;
	if (!f)
		return rs_err_set(err, "no file to export to");
	if (fmt != RS_CACHEFILE_JSON && fmt != RS_CACHEFILE_NDJSON)
		return rs_err_set(err, "the export format must be json or ndjson, not %s",
				  rs_cachefile_format_name(fmt));
	if (exported_ms < 0)
		return rs_err_set(err, "invalid export time %" PRId64 " ms", exported_ms);
	w = calloc(1, sizeof(*w));
	if (!w)
		return rs_err_errno(err, ENOMEM, "cannot start the export");
	w->f = f;
	w->fmt = fmt;
	put_str(w, "{\"format\":\"" FORMAT_NAME "\",\"version\":");
	put_int(w, FORMAT_VERSION);
	put_str(w, ",\"exported_ms\":");
	put_int(w, exported_ms);
	put_str(w, fmt == RS_CACHEFILE_JSON ? ",\"entries\":[\n" : "}\n");
	if (w->errnum) {
		write_failed(w, err);
		free(w);
		return -1;
	}
	*out = w;
	return 0;
}

int rs_cachefile_write(struct rs_cachefile_writer *w,
		       const struct rs_cachefile_entry *e, struct rs_err *err)
{
	uint64_t n;

	if (!w || !e)
		return rs_err_set(err, "no writer or no entry to write");
	n = w->entries + 1;
	if (w->errnum)
		return write_failed(w, err);
	if ((!e->key && e->klen) || (!e->val && e->vlen))
		return rs_err_set(err, "entry %" PRIu64 ": no key or value bytes", n);
	if (e->stored_ms < 0)
		return rs_err_set(err, "entry %" PRIu64 ": stored_ms is negative (%" PRId64 ")",
				  n, e->stored_ms);
	if (e->expires_ms < 0)
		return rs_err_set(err, "entry %" PRIu64 ": expires_ms is negative (%" PRId64 ")",
				  n, e->expires_ms);
	if (w->fmt == RS_CACHEFILE_JSON && w->entries > 0)
		put(w, ",\n", 2);
	put(w, "{", 1);
	put_field(w, "key", e->key, e->klen);
	put(w, ",", 1);
	put_field(w, "value", e->val, e->vlen);
	put_str(w, ",\"stored_ms\":");
	put_int(w, e->stored_ms);
	put_str(w, ",\"expires_ms\":");
	put_int(w, e->expires_ms);
	put(w, "}", 1);
	if (w->fmt == RS_CACHEFILE_NDJSON)
		put(w, "\n", 1);
	w->entries = n;
	return w->errnum ? write_failed(w, err) : 0;
}

uint64_t rs_cachefile_writer_count(const struct rs_cachefile_writer *w)
{
	return w ? w->entries : 0;
}

int rs_cachefile_writer_finish(struct rs_cachefile_writer *w, struct rs_err *err)
{
	int rc = 0;

	if (!w)
		return rs_err_set(err, "no export to finish");
	if (w->fmt == RS_CACHEFILE_JSON)
		put_str(w, w->entries ? "\n]}\n" : "]}\n");
	if (!w->errnum) {
		errno = 0;
		if (fflush(w->f) != 0 || ferror(w->f))
			w->errnum = errno ? errno : EIO;
	}
	if (w->errnum)
		rc = write_failed(w, err);
	free(w);
	return rc;
}

void rs_cachefile_writer_abort(struct rs_cachefile_writer *w)
{
	free(w);
}

/* ---- reading ------------------------------------------------------------ */

struct reader {
	FILE *f;
	int back;                   /* a byte pushed back, or -1 */
	uint64_t line;              /* of the next byte, 1-based */
	bool eof;                   /* getc gave EOF (end or error) */
	int errnum;                 /* the read error, 0 if none */
	size_t budget;              /* bytes the current entry may still take */
	bool over;                  /* ... and it wanted more */

	enum rs_cachefile_format fmt;
	size_t max_line_bytes;
	int (*cb)(void *arg, const struct rs_cachefile_entry *e);
	void *arg;
	struct rs_cachefile_report *rep;
	struct rs_err *err;

	bool seen_format, seen_version, seen_exported, seen_entries;
	struct rs_buf tok;          /* a header member's text */
	struct rs_buf text;         /* an NDJSON line */
	unsigned char *kbuf, *vbuf; /* decoded base64 */
	size_t kcap, vcap;
};

static int fail(struct reader *rd, const char *fmt, ...) RS_PRINTF(2, 3);

static int fail(struct reader *rd, const char *fmt, ...)
{
	char msg[RS_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rs_err_set(rd->err, "%s", msg);
}

/* The file ended (or could not be read) where `what` still needed more. */
static int cut_short(struct reader *rd, const char *what)
{
	if (rd->errnum)
		return rs_err_errno(rd->err, rd->errnum, "read failed at line %" PRIu64,
				    rd->line);
	return fail(rd, "truncated: %s", what);
}

static int no_memory(struct reader *rd)
{
	return rs_err_errno(rd->err, ENOMEM, "cannot read line %" PRIu64, rd->line);
}

static int reader_next(struct reader *rd)
{
	int c;

	if (rd->back >= 0) {
		c = rd->back;
		rd->back = -1;
	} else {
		if (rd->eof)
			return EOF;
		errno = 0;
		c = getc_unlocked(rd->f);
		if (c == EOF) {
			rd->eof = true;
			if (ferror(rd->f))
				rd->errnum = errno ? errno : EIO;
			return EOF;
		}
	}
	if (c == '\n')
		rd->line++;
	return c;
}

static void reader_unget(struct reader *rd, int c)
{
	if (c == EOF)
		return;
	rd->back = c;
	if (c == '\n')
		rd->line--;
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The next byte that is not JSON whitespace, consumed; or EOF. */
static int skip_space(struct reader *rd)
{
	int c;

	do
		c = reader_next(rd);
	while (is_space(c));
	return c;
}

/* jansson's input while it parses one entry: a byte per call, so it
 * never holds bytes past the entry's closing brace. */
static size_t feed_jansson(void *buffer, size_t buflen, void *data)
{
	struct reader *rd = data;
	int c;

	(void)buflen;
	if (rd->budget == 0) {
		rd->over = true;
		return 0;
	}
	c = reader_next(rd);
	if (c == EOF)
		return 0;
	rd->budget--;
	*(unsigned char *)buffer = (unsigned char)c;
	return 1;
}

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
	unsigned char *p;

	if (need <= *cap)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -1;
	*buf = p;
	*cap = need;
	return 0;
}

static int b64_value(unsigned char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

/* Canonical base64 (padded, no whitespace, zero pad bits) into out, which
 * has room for n / 4 * 3 bytes.  -1 if malformed. */
static int b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t *outlen)
{
	size_t o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		int a = b64_value(s[i]), b = b64_value(s[i + 1]), c, d;

		if (a < 0 || b < 0)
			return -1;
		if (last && s[i + 2] == '=' && s[i + 3] == '=') {
			if (b & 0x0f)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			break;
		}
		c = b64_value(s[i + 2]);
		if (c < 0)
			return -1;
		if (last && s[i + 3] == '=') {
			if (c & 0x03)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			out[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
			break;
		}
		d = b64_value(s[i + 3]);
		if (d < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
		out[o++] = (unsigned char)((c & 0x03) << 6 | d);
	}
	*outlen = o;
	return 0;
}

/* The bytes of "name" or "name_base64" in obj. */
static int entry_bytes(struct reader *rd, json_t *obj, const char *name,
		       unsigned char **buf, size_t *cap, const void **p, size_t *len,
		       const char *where)
{
	char b64name[32];
	json_t *s, *b;

	snprintf(b64name, sizeof(b64name), "%s_base64", name);
	s = json_object_get(obj, name);
	b = json_object_get(obj, b64name);
	if (s && b)
		return fail(rd, "%s: both \"%s\" and \"%s\"", where, name, b64name);
	if (!s && !b)
		return fail(rd, "%s: missing \"%s\" (or \"%s\")", where, name, b64name);
	if (s) {
		if (!json_is_string(s))
			return fail(rd, "%s: \"%s\" must be a string", where, name);
		*p = json_string_value(s);
		*len = json_string_length(s);
		return 0;
	}
	if (!json_is_string(b))
		return fail(rd, "%s: \"%s\" must be a string", where, b64name);
	if (grow(buf, cap, json_string_length(b) / 4 * 3 + 1) < 0)
		return no_memory(rd);
	if (b64_decode((const unsigned char *)json_string_value(b), json_string_length(b),
		       *buf, len) < 0)
		return fail(rd, "%s: \"%s\" is not valid base64", where, b64name);
	*p = *buf;
	return 0;
}

static int entry_time(struct reader *rd, json_t *obj, const char *name,
		      int64_t *out, const char *where)
{
	json_t *t = json_object_get(obj, name);

	if (!t)
		return fail(rd, "%s: missing \"%s\"", where, name);
	if (!json_is_integer(t))
		return fail(rd, "%s: \"%s\" must be an integer", where, name);
	if (json_integer_value(t) < 0)
		return fail(rd, "%s: \"%s\" must not be negative", where, name);
	*out = json_integer_value(t);
	return 0;
}

/* Check one parsed entry and hand it to the callback; where is "entry N"
 * or "line N" for messages. */
static int deliver(struct reader *rd, json_t *obj, const char *where)
{
	struct rs_cachefile_entry e;

	if (!json_is_object(obj))
		return fail(rd, "%s: an entry must be an object", where);
	if (entry_bytes(rd, obj, "key", &rd->kbuf, &rd->kcap, &e.key, &e.klen, where) < 0 ||
	    entry_bytes(rd, obj, "value", &rd->vbuf, &rd->vcap, &e.val, &e.vlen, where) < 0 ||
	    entry_time(rd, obj, "stored_ms", &e.stored_ms, where) < 0 ||
	    entry_time(rd, obj, "expires_ms", &e.expires_ms, where) < 0)
		return -1;
	rd->rep->entries++;
	return rd->cb(rd->arg, &e);
}

/* The JSON format's entries array; c is the first byte of its value. */
static int read_entries(struct reader *rd, int c)
{
	char where[48];

	if (c != '[')
		return fail(rd, "line %" PRIu64 ": \"entries\" must be an array", rd->line);
	c = skip_space(rd);
	if (c == ']')
		return 0;
	for (;;) {
		uint64_t n = rd->rep->entries + 1;
		json_error_t jerr;
		json_t *j;
		int rc;

		snprintf(where, sizeof(where), "entry %" PRIu64, n);
		if (c == EOF)
			return cut_short(rd, "the entries array is not closed");
		if (c != '{')
			return fail(rd, "%s: expected an object at line %" PRIu64, where, rd->line);
		reader_unget(rd, c);
		rd->budget = rd->max_line_bytes;
		rd->over = false;
		j = json_load_callback(feed_jansson, rd, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL,
				       &jerr);
		if (!j) {
			if (rd->over)
				return fail(rd, "%s: longer than %zu bytes (line %" PRIu64 ")",
					    where, rd->max_line_bytes, rd->line);
			if (rd->eof) {
				char what[64];

				snprintf(what, sizeof(what), "%s is incomplete", where);
				return cut_short(rd, what);
			}
			return fail(rd, "%s: invalid JSON at line %" PRIu64 ": %s", where,
				    rd->line, jerr.text);
		}
		rc = deliver(rd, j, where);
		json_decref(j);
		if (rc)
			return rc;
		c = skip_space(rd);
		if (c == ',') {
			c = skip_space(rd);
			continue;
		}
		if (c == ']')
			return 0;
		if (c == EOF)
			return cut_short(rd, "the entries array is not closed");
		return fail(rd, "line %" PRIu64 ": expected ',' or ']' after %s", rd->line, where);
	}
}

/* The raw JSON text of one value, whose first byte c is already read,
 * into rd->tok: a string, an object or array (brackets counted outside
 * strings, so a mismatch is left to the decoder), or a scalar up to the
 * next delimiter. */
static int scan_value(struct reader *rd, int c)
{
	bool in_str = false, esc = false;
	int depth = 0;

	rs_buf_reset(&rd->tok);
	if (c != '"' && c != '{' && c != '[') {
		while (c != EOF && !is_space(c) && c != ',' && c != '}' && c != ']' && c != ':') {
			if (rs_buf_putc(&rd->tok, (char)c) < 0)
				goto full;
			c = reader_next(rd);
		}
		reader_unget(rd, c);
		if (rd->tok.len == 0)
			return fail(rd, "line %" PRIu64 ": expected a value", rd->line);
		return 0;
	}
	for (;;) {
		if (rs_buf_putc(&rd->tok, (char)c) < 0)
			goto full;
		if (in_str) {
			if (esc) {
				esc = false;
			} else if (c == '\\') {
				esc = true;
			} else if (c == '"') {
				in_str = false;
				if (depth == 0)
					return 0;
			}
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && --depth == 0) {
			return 0;
		}
		c = reader_next(rd);
		if (c == EOF)
			return cut_short(rd, "the header object is not closed");
	}
full:
	if (rd->tok.len < rd->tok.max)
		return no_memory(rd);
	return fail(rd, "line %" PRIu64 ": a header member longer than %d bytes", rd->line,
		    RS_CACHEFILE_MEMBER_MAX_BYTES);
}

/* Decode rd->tok, the value of member `name` or (NULL) a member name;
 * NULL with err if it is not JSON. */
static json_t *decode_tok(struct reader *rd, const char *name)
{
	json_error_t jerr;
	json_t *j = json_loadb(rd->tok.data, rd->tok.len, JSON_DECODE_ANY, &jerr);

	if (!j && name)
		fail(rd, "line %" PRIu64 ": invalid JSON in the \"%.*s\" member: %s", rd->line,
		     QUOTE_MAX_CHARS, name, jerr.text);
	else if (!j)
		fail(rd, "line %" PRIu64 ": invalid JSON in a member name: %s", rd->line,
		     jerr.text);
	return j;
}

/* A header member other than "entries". */
static int header_member(struct reader *rd, const char *name, json_t *v)
{
	bool *seen = strcmp(name, "format") == 0 ? &rd->seen_format
		   : strcmp(name, "version") == 0 ? &rd->seen_version
		   : strcmp(name, "exported_ms") == 0 ? &rd->seen_exported : NULL;

	if (!seen)
		return 0;
	if (*seen)
		return fail(rd, "line %" PRIu64 ": duplicate \"%s\" member", rd->line, name);
	*seen = true;
	if (seen == &rd->seen_format) {
		if (!json_is_string(v))
			return fail(rd, "not a resync cache export: \"format\" is not a string");
		if (strcmp(json_string_value(v), FORMAT_NAME) != 0)
			return fail(rd, "not a resync cache export: \"format\" is \"%.*s\", "
				    "not \"" FORMAT_NAME "\"", QUOTE_MAX_CHARS,
				    json_string_value(v));
	} else if (seen == &rd->seen_version) {
		if (!json_is_integer(v))
			return fail(rd, "line %" PRIu64 ": \"version\" must be an integer",
				    rd->line);
		if (json_integer_value(v) != FORMAT_VERSION)
			return fail(rd, "unsupported export version %" JSON_INTEGER_FORMAT
				    " (this build reads version %d)", json_integer_value(v),
				    FORMAT_VERSION);
	} else {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return fail(rd, "line %" PRIu64 ": \"exported_ms\" must be an integer "
				    ">= 0", rd->line);
		rd->rep->exported_ms = json_integer_value(v);
	}
	return 0;
}

/* Whether the last line of a file (no newline after it) failed to decode
 * because it stops short: the decoder ran into its end, or it ends inside
 * a UTF-8 sequence. */
static bool cut_at_end(const struct rs_buf *line, const json_error_t *jerr)
{
	const unsigned char *p = (const unsigned char *)line->data;
	size_t n = line->len;

	if (json_error_code(jerr) == json_error_end_of_input_expected)
		return false;
	if (jerr->position >= 0 && (size_t)jerr->position >= n)
		return true;
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = p[n - back];

		if ((c & 0xc0) != 0x80)
			return (c >= 0xc0 && back < 2) || (c >= 0xe0 && back < 3) ||
			       (c >= 0xf0 && back < 4);
	}
	return false;
}

/* The rest of an NDJSON file after its header: one entry per line. */
static int read_lines(struct reader *rd)
{
	char where[48];

	for (;;) {
		uint64_t lineno = rd->line;
		bool newline = false, blank = true;
		json_error_t jerr;
		json_t *j;
		int c, rc;

		rs_buf_reset(&rd->text);
		while ((c = reader_next(rd)) != EOF) {
			if (c == '\n') {
				newline = true;
				break;
			}
			if (rs_buf_putc(&rd->text, (char)c) < 0) {
				if (rd->text.len < rd->text.max)
					return no_memory(rd);
				return fail(rd, "line %" PRIu64 ": longer than %zu bytes", lineno,
					    rd->max_line_bytes);
			}
			if (!is_space(c))
				blank = false;
		}
		if (rd->errnum)
			return cut_short(rd, "");
		if (blank) {
			if (!newline)
				return 0;
			continue;
		}
		j = json_loadb(rd->text.data, rd->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
			       &jerr);
		if (!j) {
			if (!newline && cut_at_end(&rd->text, &jerr))
				return fail(rd, "truncated: line %" PRIu64 " is incomplete (%s)",
					    lineno, jerr.text);
			return fail(rd, "line %" PRIu64 ": invalid JSON: %s", lineno, jerr.text);
		}
		snprintf(where, sizeof(where), "line %" PRIu64, lineno);
		rc = deliver(rd, j, where);
		json_decref(j);
		if (rc)
			return rc;
	}
}

/* After the outer object: the JSON format allows only whitespace to the
 * end, NDJSON only to the end of the header's line. */
static int read_after_header(struct reader *rd)
{
	int c;

	if (!rd->seen_format)
		return fail(rd, "not a resync cache export: no \"format\" member");
	if (rd->seen_entries) {
		c = skip_space(rd);
		if (rd->errnum)
			return cut_short(rd, "");
		if (c != EOF)
			return fail(rd, "line %" PRIu64 ": data after the end of the document",
				    rd->line);
		return 0;
	}
	if (rd->fmt == RS_CACHEFILE_JSON)
		return fail(rd, "the \"entries\" member is missing (an NDJSON export?)");
	rd->rep->format = RS_CACHEFILE_NDJSON;
	while ((c = reader_next(rd)) != '\n' && c != EOF)
		if (!is_space(c))
			return fail(rd, "line %" PRIu64 ": data after the header on its line",
				    rd->line);
	if (rd->errnum)
		return cut_short(rd, "");
	return read_lines(rd);
}

/* The outer object, member by member, and everything after it. */
static int read_export(struct reader *rd)
{
	int c = skip_space(rd);

	if (c == EOF)
		return rd->errnum ? cut_short(rd, "") : fail(rd, "not a resync cache export: "
							     "the file is empty");
	if (c != '{')
		return fail(rd, "not a resync cache export: expected '{' at line %" PRIu64,
			    rd->line);
	c = skip_space(rd);
	if (c == '}')
		return read_after_header(rd);
	for (;;) {
		const char *name;
		json_t *jname, *v;
		int rc;

		if (c == EOF)
			return cut_short(rd, "the header object is not closed");
		if (c != '"')
			return fail(rd, "line %" PRIu64 ": expected a member name", rd->line);
		if (scan_value(rd, c) < 0 || !(jname = decode_tok(rd, NULL)))
			return -1;
		name = json_string_value(jname);
		c = skip_space(rd);
		if (c != ':') {
			json_decref(jname);
			return c == EOF ? cut_short(rd, "the header object is not closed")
					: fail(rd, "line %" PRIu64 ": expected ':'", rd->line);
		}
		c = skip_space(rd);
		if (c == EOF) {
			rc = cut_short(rd, "the header object is not closed");
		} else if (strcmp(name, "entries") == 0) {
			if (rd->fmt == RS_CACHEFILE_NDJSON)
				rc = fail(rd, "line %" PRIu64 ": \"entries\" in the header: a "
					  "JSON-format export, not NDJSON", rd->line);
			else if (rd->seen_entries)
				rc = fail(rd, "line %" PRIu64 ": duplicate \"entries\" member",
					  rd->line);
			else {
				rd->seen_entries = true;
				rd->rep->format = RS_CACHEFILE_JSON;
				rc = read_entries(rd, c);
			}
		} else if (scan_value(rd, c) < 0 || !(v = decode_tok(rd, name))) {
			rc = -1;
		} else {
			rc = header_member(rd, name, v);
			json_decref(v);
		}
		json_decref(jname);
		if (rc)
			return rc;
		c = skip_space(rd);
		if (c == ',') {
			c = skip_space(rd);
			continue;
		}
		if (c == '}')
			return read_after_header(rd);
		if (c == EOF)
			return cut_short(rd, "the header object is not closed");
		return fail(rd, "line %" PRIu64 ": expected ',' or '}' in the header", rd->line);
	}
}

int rs_cachefile_read(FILE *f, enum rs_cachefile_format fmt, size_t max_line_bytes,
		      int (*cb)(void *arg, const struct rs_cachefile_entry *e),
		      void *arg, struct rs_cachefile_report *report,
		      struct rs_err *err)
{
	struct rs_cachefile_report ignored;
	struct reader rd;
	int rc;

	if (!report)
		report = &ignored;
	report->format = RS_CACHEFILE_AUTO;
	report->exported_ms = -1;
	report->entries = 0;
	if (!f || !cb)
		return rs_err_set(err, "no file to import or no callback");
	if (fmt != RS_CACHEFILE_AUTO && fmt != RS_CACHEFILE_JSON && fmt != RS_CACHEFILE_NDJSON)
		return rs_err_set(err, "unknown import format %d", (int)fmt);
	if (max_line_bytes == 0)
		return rs_err_set(err, "the longest entry allowed must be at least 1 byte");

	memset(&rd, 0, sizeof(rd));
	rd.f = f;
	rd.back = -1;
	rd.line = 1;
	rd.fmt = fmt;
	rd.max_line_bytes = max_line_bytes;
	rd.cb = cb;
	rd.arg = arg;
	rd.rep = report;
	rd.err = err;
	rs_buf_init(&rd.tok, RS_CACHEFILE_MEMBER_MAX_BYTES);
	rs_buf_init(&rd.text, max_line_bytes);

	flockfile(f);
	rc = read_export(&rd);
	funlockfile(f);

	free(rd.vbuf);
	free(rd.kbuf);
	rs_buf_free(&rd.text);
	rs_buf_free(&rd.tok);
	return rc;
}
