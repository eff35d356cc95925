/*
 * request: one HTTP request as the web server handed it over (FastCGI
 * parameters, or the CGI environment), and the response built for it.
 *
 * The response is built whole in memory and written at once (worker.c),
 * so the watchdog can still replace it with a 504 until the moment it is
 * sent, and Content-Length is always known.  Bodies are capped by
 * [server] max_body on the way in and by RESPONSE_MAX on the way out.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "server.h"
#include "util.h"

#define READ_CHUNK 16384

const char *req_param(const struct req *r, const char *name)
{
	if (r->fcgi)
		return FCGX_GetParam(name, r->envp);
	return getenv(name);
}

void req_scan(struct req *r)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
#define P(n, f) { n "=", offsetof(struct req, p.f) }
		P("REQUEST_URI", request_uri), P("REQUEST_METHOD", request_method),
		P("QUERY_STRING", query_string), P("HTTPS", https),
		P("REQUEST_SCHEME", request_scheme), P("REMOTE_ADDR", remote_addr),
		P("CONTENT_LENGTH", content_length), P("CONTENT_TYPE", content_type),
		P("HTTP_X_REQUEST_ID", request_id), P("HTTP_X_API_KEY", api_key),
		P("HTTP_AUTHORIZATION", authorization),
		P("HTTP_ACCEPT_ENCODING", accept_encoding), P("HTTP_ORIGIN", origin),
		P("HTTP_HOST", host),
		P("HTTP_ACCESS_CONTROL_REQUEST_METHOD", acr_method),
		P("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", acr_headers),
		P("HTTP_IDEMPOTENCY_KEY", idempotency_key),
#undef P
	};
	static size_t lens[RS_ARRAY_SIZE(want)];

	if (!lens[0])   /* benign race: every thread writes the same values */
		for (size_t i = 0; i < RS_ARRAY_SIZE(want); i++)
			lens[i] = strlen(want[i].name);
	for (char **e = r->envp; e && *e; e++) {
		const char *v = *e;
		/* every wanted name starts with one of these */
		if (v[0] != 'R' && v[0] != 'Q' && v[0] != 'H' && v[0] != 'C')
			continue;
		for (size_t i = 0; i < RS_ARRAY_SIZE(want); i++)
			if (strncmp(v, want[i].name, lens[i]) == 0) {
				*(const char **)((char *)r + want[i].off) = v + lens[i];
				break;
			}
	}
}

static size_t read_some(struct req *r, char *p, size_t n)
{
	if (r->fcgi) {
		int got = FCGX_GetStr(p, (int)n, r->fcgi->in);
		return got > 0 ? (size_t)got : 0;
	}
	return fread(p, 1, n, stdin);
}

int req_read_body(struct req *r)
{
	const char *cl = r->p.content_length;
	char *end;
	unsigned long long want;

	if (!cl || !*cl)
		return 0;
	errno = 0;
	want = strtoull(cl, &end, 10);
	if (errno || *end || !isdigit((unsigned char)*cl))
		return 400;
	if (want == 0)
		return 0;
	if (want > (unsigned long long)r->conf->max_body)
		return 413;
	r->body = malloc((size_t)want + 1);
	if (!r->body)
		return 500;
	while (r->body_len < want) {
		size_t chunk = (size_t)want - r->body_len;
		if (chunk > READ_CHUNK)
			chunk = READ_CHUNK;
		size_t got = read_some(r, r->body + r->body_len, chunk);
		if (got == 0)
			break;
		r->body_len += got;
	}
	r->body[r->body_len] = '\0';
	return r->body_len == want ? 0 : 400;
}

void req_add_header(struct req *r, const char *fmt, ...)
{
	size_t mark = r->headers.len;
	va_list ap;

	va_start(ap, fmt);
	/* a header that does not fit whole is left out whole */
	if (rs_buf_vprintf(&r->headers, fmt, ap) < 0 ||
	    rs_buf_append(&r->headers, "\r\n", 2) < 0) {
		r->headers.len = mark;
		if (r->headers.data)
			r->headers.data[mark] = '\0';
	}
	va_end(ap);
}

void req_add_header_str(struct req *r, const char *line)
{
	size_t mark = r->headers.len;

	if (rs_buf_puts(&r->headers, line) < 0 ||
	    rs_buf_append(&r->headers, "\r\n", 2) < 0) {
		r->headers.len = mark;
		if (r->headers.data)
			r->headers.data[mark] = '\0';
	}
}

void req_upstream_error(struct req *r, int status, bool breaker_open,
			int64_t retry_after_ms, const char *message)
{
	if (retry_after_ms >= 0)
		req_add_header(r, "Retry-After: %lld", (long long)((retry_after_ms + 999) / 1000));
	req_error(r, status,
		  status == 404 ? "not_found" :
		  status == 400 ? "bad_request" :
		  breaker_open ? "circuit_open" :
		  status == 504 ? "upstream_timeout" :
		  status == 503 ? "upstream_unavailable" : "bad_gateway",
		  "%s", message);
}

void req_json(struct req *r, int status, json_t *body)
{
	rs_buf_reset(&r->out);
	r->status = status;
	r->content_type = NULL;
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(body);
	if (!s || rs_buf_puts(&r->out, s) < 0 || rs_buf_putc(&r->out, '\n') < 0) {
		rs_buf_reset(&r->out);
		r->status = 500;
		rs_buf_puts(&r->out, "{\"error\":{\"code\":\"internal_error\","
				     "\"message\":\"the response could not be built\"}}\n");
	}
	free(s);
}

void req_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	req_json(r, status, json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code,
				      "message", msg, "request_id", r->id));
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

/* Does Accept-Encoding allow gzip?  "gzip;q=0" refuses it. */
static bool accepts_gzip(const struct req *r)
{
	const char *ae = r->p.accept_encoding;

	for (const char *p = ae; p && (p = strcasestr(p, "gzip")); p += 4) {
		const char *q = p + 4;
		while (*q == ' ')
			q++;
		if (*q == ';') {
			const char *v = strstr(q, "q=");
			if (v && strtod(v + 2, NULL) == 0.0)
				return false;
		}
		if (*q == ',' || *q == ';' || *q == '\0')
			return true;
	}
	return false;
}

static int gzip_into(const char *in, size_t n, struct rs_buf *out)
{
	z_stream z;
	int rc = -1;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t bound = deflateBound(&z, (uLong)n);
	char *tmp = malloc(bound);
	if (tmp) {
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = (uInt)n;
		z.next_out = (Bytef *)tmp;
		z.avail_out = (uInt)bound;
		if (deflate(&z, Z_FINISH) == Z_STREAM_END)
			rc = rs_buf_append(out, tmp, z.total_out);
	}
	free(tmp);
	deflateEnd(&z);
	return rc;
}

int req_render(struct req *r, struct rs_buf *wire)
{
	struct rs_buf gz;
	const char *body = r->out.data ? r->out.data : "";
	size_t blen = r->out.len;
	bool compress = false;
	int rc = 0;

	rs_buf_init(&gz, RESPONSE_MAX);
	if (r->conf->compress_min > 0 && blen >= (size_t)r->conf->compress_min) {
		req_add_header(r, "Vary: Accept-Encoding");
		if (accepts_gzip(r) && gzip_into(body, blen, &gz) == 0) {
			compress = true;
			body = gz.data;
			blen = gz.len;
		}
	}
	/* one snprintf on the stack: the wire buffer is empty here, and
	 * rs_buf_printf would measure first */
	char head[256];
	int n = r->status == 204
		/* no body, and RFC 9110 forbids a Content-Length on a 204 */
		? snprintf(head, sizeof(head), "Status: 204 No Content\r\n")
		: snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\n"
			   "Content-Length: %zu\r\n", r->status, reason(r->status),
			   r->content_type ? r->content_type
					   : "application/json; charset=utf-8",
			   blen);
	rc |= n > 0 && (size_t)n < sizeof(head) ? rs_buf_append(wire, head, (size_t)n) : -1;
	if (compress)
		rc |= rs_buf_puts(wire, "Content-Encoding: gzip\r\n");
	rc |= rs_buf_append(wire, r->headers.data ? r->headers.data : "", r->headers.len);
	rc |= rs_buf_puts(wire, "\r\n");
	if (!r->head)
		rc |= rs_buf_append(wire, body, blen);
	r->bytes_sent = blen;
	rs_buf_free(&gz);
	return rc < 0 ? -1 : 0;
}

void req_free(struct req *r)
{
	rs_buf_free(&r->headers);
	free(r->body);
	r->body = NULL;
	json_decref(r->json);
	r->json = NULL;
	rs_buf_free(&r->out);
}

int64_t req_elapsed_us(const struct req *r)
{
	return rs_monotonic_us() - r->start_us;
}

/* Deepest nesting of the JSON text, counted outside strings; a cheap
 * pass that keeps a hostile body from making the parser recurse deep. */
static int json_depth(const char *p, size_t n)
{
	int depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

json_t *req_json_body(struct req *r)
{
	const char *ct = r->p.content_type;
	json_error_t jerr;

	if (r->json)
		return json_incref(r->json);
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		req_error(r, 415, "unsupported_media_type",
			  "the request body must be application/json");
		return NULL;
	}
	if (r->body_len == 0) {
		req_error(r, 400, "bad_request", "the request needs a JSON body");
		return NULL;
	}
	if (json_depth(r->body, r->body_len) > r->conf->max_json_depth) {
		req_error(r, 400, "invalid_json",
			  "the JSON body is nested deeper than %d levels",
			  r->conf->max_json_depth);
		return NULL;
	}
	json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		req_error(r, 400, "invalid_json", "invalid JSON at line %d column %d: %s",
			  jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		req_error(r, 400, "invalid_json", "the JSON body must be an object");
		return NULL;
	}
	return j;
}

void req_client(const struct req *r, char *buf, size_t n)
{
	if (r->authenticated && r->key_name)
		/* JWT subjects come as "jwt:SUB" already */
		snprintf(buf, n, "%s%s", strncmp(r->key_name, "jwt:", 4) == 0 ? "" : "key:",
			 r->key_name);
	else
		snprintf(buf, n, "ip:%s", r->remote_addr ? r->remote_addr : "-");
}
