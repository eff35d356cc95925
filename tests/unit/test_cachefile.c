/*
 * test_cachefile: cache exports as JSON and NDJSON.  What is written reads
 * back byte for byte in both formats (binary keys and values, empty ones,
 * unicode); the exact layout of both formats; hand-written files with
 * members in any order, odd whitespace and unknown members; every kind of
 * malformed file fails with a message naming the entry or line; every
 * prefix of an export is refused as truncated (JSON) or read as far as
 * its complete lines (NDJSON); the callback's stop value comes back; auto
 * detection; a full device; 200 000 entries streamed through a pipe.
 */
#include "cachefile.h"
#include "tap.h"
#include "testlib.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0_MS 1700000000000LL
#define MAX_LINE_BYTES (1024 * 1024)
#define RANDOM_N 2000
#define STREAM_N 200000
#define BIG_VALUE_BYTES (300 * 1000)

#define S(lit) lit, sizeof(lit) - 1

struct kv {
	const char *k;
	size_t klen;
	const char *v;
	size_t vlen;
};

static const struct kv samples[] = {
	{ S("plain"), S("value") },
	{ S(""), S("") },
	{ S("nul\0key"), S("v\0\0") },
	{ S("\xff\xfe"), S("\xc0\x80") },                  /* invalid, overlong NUL */
	{ S("\xed\xa0\x80"), S("\xf4\x90\x80\x80") },      /* surrogate, > U+10FFFF */
	{ S("caf\xc3\xa9"), S("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf") },
	{ S("quote\"back\\slash/"), S("tab\tnl\nrc\r") },
	{ S("ctl\x01"), S("del\x7f") },
	{ S("cut\xe6\x97"), S("x") },                      /* truncated sequence */
	{ S("\x80"), S("\x00\x01") },                      /* one and two base64 pads */
	{ S("\xe0\x9f\xbf"), S("\xf0\x8f\xbf\xbf") },      /* overlong 3 and 4 bytes */
};

/* ---- helpers ------------------------------------------------------------- */

/* Deterministic bytes (xorshift). */
static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct want {
	struct rs_cachefile_entry *e;
	size_t n;
	size_t seen, bad;
	size_t first_bad;
};

static int check_cb(void *arg, const struct rs_cachefile_entry *e)
{
	struct want *w = arg;
	const struct rs_cachefile_entry *x = w->seen < w->n ? &w->e[w->seen] : NULL;

	if (!x || e->klen != x->klen || e->vlen != x->vlen ||
	    (e->klen && memcmp(e->key, x->key, e->klen)) ||
	    (e->vlen && memcmp(e->val, x->val, e->vlen)) || e->stored_ms != x->stored_ms ||
	    e->expires_ms != x->expires_ms || !e->key || !e->val) {
		if (!w->bad++)
			w->first_bad = w->seen;
	}
	w->seen++;
	return 0;
}

static int count_cb(void *arg, const struct rs_cachefile_entry *e)
{
	(void)e;
	++*(size_t *)arg;
	return 0;
}

/* Write all of es in fmt to a new memory buffer (malloc'd, *len set). */
static char *export_mem(enum rs_cachefile_format fmt, const struct rs_cachefile_entry *es,
			size_t n, size_t *len)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_cachefile_writer *w;
	char *buf = NULL;
	size_t sz = 0;
	FILE *f = open_memstream(&buf, &sz);
	int rc = 0;

	if (!f)
		return NULL;
	if (rs_cachefile_writer_new(&w, f, fmt, T0_MS, &err) < 0) {
		rc = -1;
	} else {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = rs_cachefile_write(w, &es[i], &err);
		if (rc == 0)
			rc = rs_cachefile_writer_finish(w, &err);
		else
			rs_cachefile_writer_abort(w);
	}
	fclose(f);
	if (rc < 0) {
		printf("#   export failed: %s\n", err.msg);
		free(buf);
		return NULL;
	}
	*len = sz;
	return buf;
}

/* A FILE reading the first len bytes of s. */
static FILE *mem_file(const char *s, size_t len)
{
	if (len == 0)
		return fopen("/dev/null", "r");
	return fmemopen((void *)s, len, "r");
}

/* Read len bytes of s, counting entries; the rc. */
static int read_mem(const char *s, size_t len, enum rs_cachefile_format fmt,
		    size_t max_line, size_t *count, struct rs_cachefile_report *rep,
		    struct rs_err *err)
{
	FILE *f = mem_file(s, len);
	int rc;

	*count = 0;
	if (!f)
		return -99;
	rc = rs_cachefile_read(f, fmt, max_line, count_cb, count, rep, err);
	fclose(f);
	return rc;
}

static struct rs_cachefile_entry entry_of(const struct kv *s, int64_t stored, int64_t expires)
{
	struct rs_cachefile_entry e = { s->k, s->klen, s->v, s->vlen, stored, expires };

	return e;
}

/* ---- round trips --------------------------------------------------------- */

static void check_roundtrip(const char *label, enum rs_cachefile_format fmt,
			    enum rs_cachefile_format read_as, struct rs_cachefile_entry *es,
			    size_t n)
{
	struct rs_cachefile_report rep;
	struct rs_err err = RS_ERR_INIT;
	struct want w = { es, n, 0, 0, 0 };
	char name[160];
	size_t len = 0;
	char *text = export_mem(fmt, es, n, &len);
	FILE *f;
	int rc;

	snprintf(name, sizeof(name), "%s: export written", label);
	if (!ok(text != NULL, name))
		return;
	f = mem_file(text, len);
	rc = rs_cachefile_read(f, read_as, MAX_LINE_BYTES, check_cb, &w, &rep, &err);
	fclose(f);
	snprintf(name, sizeof(name), "%s: read succeeds", label);
	if (!ok(rc == 0, name))
		printf("#   rc %d: %s\n", rc, err.msg);
	snprintf(name, sizeof(name), "%s: every entry comes back identical, in order", label);
	if (!ok(w.seen == n && w.bad == 0, name))
		printf("#   %zu of %zu seen, %zu differ (first at %zu)\n", w.seen, n, w.bad,
		       w.first_bad);
	snprintf(name, sizeof(name), "%s: report", label);
	if (!ok(rep.format == fmt && rep.entries == n && rep.exported_ms == T0_MS, name))
		printf("#   format %s, entries %" PRIu64 ", exported_ms %" PRId64 "\n",
		       rs_cachefile_format_name(rep.format), rep.entries, rep.exported_ms);
	if (fmt == RS_CACHEFILE_JSON) {
		json_error_t jerr;
		json_t *doc = json_loadb(text, len, 0, &jerr);

		snprintf(name, sizeof(name), "%s: the export is one valid JSON document", label);
		if (!ok(doc && json_array_size(json_object_get(doc, "entries")) == n, name))
			printf("#   %s\n", doc ? "wrong entry count" : jerr.text);
		json_decref(doc);
	}
	free(text);
}

static void test_roundtrip(void)
{
	size_t ns = RS_ARRAY_SIZE(samples), n = ns + RANDOM_N + 2;
	struct rs_cachefile_entry *es = calloc(n, sizeof(*es));
	unsigned char **bufs = calloc(n, sizeof(*bufs));
	char *big_text = malloc(BIG_VALUE_BYTES);
	unsigned char *big_bin = malloc(BIG_VALUE_BYTES);

	for (size_t i = 0; i < ns; i++)
		es[i] = entry_of(&samples[i], (int64_t)i, (int64_t)i * 1000);
	/* Random lengths and bytes: some pure ASCII, some UTF-8, some binary. */
	for (size_t i = ns; i < ns + RANDOM_N; i++) {
		size_t klen = next_rand() % 40, vlen = next_rand() % 400;
		unsigned char *b = malloc(klen + vlen + 1);
		int kind = (int)(next_rand() % 3);

		for (size_t k = 0; k < klen + vlen; k++) {
			uint64_t r = next_rand();

			b[k] = kind == 0 ? (unsigned char)(' ' + r % 95)
			     : kind == 1 ? (unsigned char)(r % 256)
			     : (unsigned char)(r % 2 ? (unsigned char)('a' + r % 26) : (unsigned char)"\t\n\"\\"[r % 4]);
		}
		bufs[i] = b;
		es[i] = (struct rs_cachefile_entry){ b, klen, b + klen, vlen,
						     (int64_t)(next_rand() >> 1),
						     (int64_t)(next_rand() % 1000) };
	}
	for (size_t k = 0; k < BIG_VALUE_BYTES; k++) {
		big_bin[k] = (unsigned char)next_rand();
		big_text[k] = "ab\xc3\xa9\"\\\n"[k % 7];
	}
	big_text[BIG_VALUE_BYTES - 1] = 'z';               /* not mid-character */
	es[n - 2] = (struct rs_cachefile_entry){ "big-binary", 10, big_bin, BIG_VALUE_BYTES,
						 INT64_MAX, 0 };
	es[n - 1] = (struct rs_cachefile_entry){ "big-text", 8, big_text, BIG_VALUE_BYTES, 0,
						 INT64_MAX };

	check_roundtrip("json", RS_CACHEFILE_JSON, RS_CACHEFILE_JSON, es, n);
	check_roundtrip("ndjson", RS_CACHEFILE_NDJSON, RS_CACHEFILE_NDJSON, es, n);
	check_roundtrip("json, auto", RS_CACHEFILE_JSON, RS_CACHEFILE_AUTO, es, n);
	check_roundtrip("ndjson, auto", RS_CACHEFILE_NDJSON, RS_CACHEFILE_AUTO, es, n);
	check_roundtrip("json, empty", RS_CACHEFILE_JSON, RS_CACHEFILE_AUTO, es, 0);
	check_roundtrip("ndjson, empty", RS_CACHEFILE_NDJSON, RS_CACHEFILE_AUTO, es, 0);
	check_roundtrip("json, one entry", RS_CACHEFILE_JSON, RS_CACHEFILE_AUTO, es, 1);

	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(big_bin);
	free(big_text);
	free(es);
}

/* ---- the written layout ---------------------------------------------------- */

static void test_layout(void)
{
	static const struct kv two[] = { { S("a"), S("1") }, { S("\0"), S("b") } };
	struct rs_cachefile_entry es[2] = { entry_of(&two[0], 1, 2), entry_of(&two[1], 3, 4) };
	size_t len;
	char *t;

	t = export_mem(RS_CACHEFILE_JSON, es, 2, &len);
	is_str(t, "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":1700000000000,"
		  "\"entries\":[\n"
		  "{\"key\":\"a\",\"value\":\"1\",\"stored_ms\":1,\"expires_ms\":2},\n"
		  "{\"key_base64\":\"AA==\",\"value\":\"b\",\"stored_ms\":3,\"expires_ms\":4}\n"
		  "]}\n", "json layout: one entry per line");
	free(t);
	t = export_mem(RS_CACHEFILE_JSON, es, 0, &len);
	is_str(t, "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":1700000000000,"
		  "\"entries\":[\n]}\n", "json layout: empty export");
	free(t);
	t = export_mem(RS_CACHEFILE_NDJSON, es, 2, &len);
	is_str(t, "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":1700000000000}\n"
		  "{\"key\":\"a\",\"value\":\"1\",\"stored_ms\":1,\"expires_ms\":2}\n"
		  "{\"key_base64\":\"AA==\",\"value\":\"b\",\"stored_ms\":3,\"expires_ms\":4}\n",
	       "ndjson layout: header line, then one entry per line");
	free(t);
	t = export_mem(RS_CACHEFILE_NDJSON, es, 0, &len);
	is_str(t, "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":1700000000000}\n",
	       "ndjson layout: empty export is the header alone");
	free(t);

	/* Which form each sample takes. */
	{
		static const struct { struct kv s; const char *want; } forms[] = {
			{ { S("caf\xc3\xa9"), S("\xf0\x9f\x98\x80") },
			  "{\"key\":\"caf\xc3\xa9\",\"value\":\"\xf0\x9f\x98\x80\"" },
			{ { S("q\"b\\"), S("t\tn\nr\r/") },
			  "{\"key\":\"q\\\"b\\\\\",\"value\":\"t\\tn\\nr\\r/\"" },
			{ { S(""), S("") }, "{\"key\":\"\",\"value\":\"\"" },
			{ { S("ctl\x01"), S("\x7f") }, "{\"key_base64\":\"Y3RsAQ==\",\"value\":\"\x7f\"" },
			{ { S("\xc0\x80"), S("\xed\xa0\x80") },
			  "{\"key_base64\":\"wIA=\",\"value_base64\":\"7aCA\"" },
			{ { S("a\0b"), S("\xf4\x90\x80\x80") },
			  "{\"key_base64\":\"YQBi\",\"value_base64\":\"9JCAgA==\"" },
		};

		for (size_t i = 0; i < RS_ARRAY_SIZE(forms); i++) {
			struct rs_cachefile_entry e = entry_of(&forms[i].s, 5, 6);
			char name[64];

			t = export_mem(RS_CACHEFILE_NDJSON, &e, 1, &len);
			snprintf(name, sizeof(name), "string or base64 form, sample %zu", i + 1);
			has_str(t, forms[i].want, name);
			free(t);
		}
	}
}

/* rs_cachefile_entry_max_bytes bounds the worst cases, and a reader given
 * exactly that bound reads them back. */
static void test_max_bytes(void)
{
	static char quotes[1000], ctl[1000];
	static const struct kv worst[] = {
		{ quotes, sizeof(quotes), ctl, sizeof(ctl) },
		{ S("\x80"), S("\x80") },
		{ S("\x80\x80"), S("\"") },
		{ S(""), S("") },
		{ ctl, 1, ctl, 4 },
	};
	bool within = true, reads = true;

	memset(quotes, '"', sizeof(quotes));
	memset(ctl, 1, sizeof(ctl));
	for (size_t i = 0; i < RS_ARRAY_SIZE(worst); i++) {
		struct rs_cachefile_entry e = entry_of(&worst[i], INT64_MAX, INT64_MAX);
		size_t bound = rs_cachefile_entry_max_bytes(e.klen, e.vlen), len, count;
		struct rs_err err = RS_ERR_INIT;
		char *t = export_mem(RS_CACHEFILE_NDJSON, &e, 1, &len);
		char *line = t ? strchr(t, '\n') + 1 : NULL;

		if (!t || strlen(line) - 1 > bound) {
			within = false;
			printf("#   sample %zu: %zu bytes, bound %zu\n", i + 1,
			       t ? strlen(line) - 1 : 0, bound);
		}
		if (t && (read_mem(t, len, RS_CACHEFILE_NDJSON, bound, &count, NULL, &err) != 0 ||
			  count != 1)) {
			reads = false;
			printf("#   sample %zu: %s\n", i + 1, err.msg);
		}
		free(t);
	}
	ok(within, "entry_max_bytes bounds the worst-case encodings");
	ok(reads, "a reader capped at entry_max_bytes reads them");
	is_int(rs_cachefile_entry_max_bytes(SIZE_MAX / 2, 10) == SIZE_MAX, 1,
	       "entry_max_bytes saturates");
}

/* ---- hand-written files ---------------------------------------------------- */

static void test_handwritten(void)
{
	static const char doc[] =
		"\n\t {  \"note\" : \"brackets ] } [ { and an \\\"escaped\\\" quote\",\r\n"
		"  \"meta\":{\"a\":[1,2,{\"b\":\"}]\\\\\\\"[\"}],\"c\":null , \"d\" : {}},\n"
		"  \"list\" : [ [], [[ ]], \"]\" ] ,\"n\" : -1.5e3 , \"t\":true,\"f\":false,\n"
		"  \"entries\"\n:\n[\n\n"
		"   { \"value\" : \"v1\", \"expires_ms\" : 2,\n\"key\":\"k1\", \"stored_ms\":1 }\n"
		"  ,{\"stored_ms\":3,\"key\":\"caf\\u00e9 \\ud83d\\ude00\",\"value_base64\":\"AAEC\","
		"\"expires_ms\":4, \"extra\": [1, {\"x\": \"}\"}]}\n"
		"  , {\"key\":\"a\\u0000b\",\"value\":\"\",\"stored_ms\":0,\"expires_ms\":0}"
		"  ]  ,\n  \"version\" :1, \"exported_ms\": 42, \"z\": \"\\\\\" ,\n"
		"  \"format\":\"resync-cache\"\n}\n\n \t\n";
	static const struct kv got_want[] = {
		{ S("k1"), S("v1") },
		{ S("caf\xc3\xa9 \xf0\x9f\x98\x80"), S("\0\1\2") },
		{ S("a\0b"), S("") },
	};
	struct rs_cachefile_entry es[3] = { entry_of(&got_want[0], 1, 2),
					    entry_of(&got_want[1], 3, 4),
					    entry_of(&got_want[2], 0, 0) };
	struct want w = { es, 3, 0, 0, 0 };
	struct rs_cachefile_report rep;
	struct rs_err err = RS_ERR_INIT;
	FILE *f = mem_file(doc, sizeof(doc) - 1);
	int rc = rs_cachefile_read(f, RS_CACHEFILE_AUTO, 4096, check_cb, &w, &rep, &err);

	fclose(f);
	if (!ok(rc == 0, "hand-written json: members reordered, odd spacing, unknown members"))
		printf("#   rc %d: %s\n", rc, err.msg);
	if (!ok(w.seen == 3 && w.bad == 0, "hand-written json: its three entries, decoded"))
		printf("#   %zu seen, %zu differ (first at %zu)\n", w.seen, w.bad, w.first_bad);
	ok(rep.format == RS_CACHEFILE_JSON && rep.exported_ms == 42 && rep.entries == 3,
	   "hand-written json: report");

	/* NDJSON with blank lines, CRLF, a last line without newline, an
	 * unknown header member and no exported_ms. */
	{
		static const char nd[] =
			"\n  {\"version\":1, \"x\":{\"entries\":[]}, \"format\":\"resync-cache\"}  \r\n"
			"\n"
			"{\"key\":\"k\",\"value\":\"v\",\"stored_ms\":1,\"expires_ms\":2}\r\n"
			"   \n"
			"{\"key\":\"k2\",\"value\":\"v2\",\"stored_ms\":1,\"expires_ms\":2}";
		size_t count;

		rc = read_mem(nd, sizeof(nd) - 1, RS_CACHEFILE_AUTO, 4096, &count, &rep, &err);
		if (!ok(rc == 0 && count == 2, "hand-written ndjson: blank lines, CRLF, no last newline"))
			printf("#   rc %d, %zu entries: %s\n", rc, count, err.msg);
		ok(rep.format == RS_CACHEFILE_NDJSON && rep.exported_ms == -1,
		   "hand-written ndjson: detected, no exported_ms is -1");
	}
}

/* ---- malformed files ------------------------------------------------------- */

#define HDR "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":5,\"entries\":["
#define NDH "{\"format\":\"resync-cache\",\"version\":1,\"exported_ms\":5}\n"
#define E1 "{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}"

static const struct bad {
	const char *what;
	const char *text;
	enum rs_cachefile_format fmt;
	size_t delivered;
	const char *msg;
} bads[] = {
	{ "empty file", "", RS_CACHEFILE_AUTO, 0, "not a resync cache export: the file is empty" },
	{ "whitespace only", " \n\t", RS_CACHEFILE_AUTO, 0, "the file is empty" },
	{ "not JSON", "hello", RS_CACHEFILE_AUTO, 0, "not a resync cache export: expected '{'" },
	{ "an array", "[]", RS_CACHEFILE_AUTO, 0, "not a resync cache export" },
	{ "missing format", "{\"version\":1,\"entries\":[]}", RS_CACHEFILE_AUTO, 0,
	  "not a resync cache export: no \"format\" member" },
	{ "empty object", "{}", RS_CACHEFILE_AUTO, 0, "not a resync cache export" },
	{ "wrong format", "{\"format\":\"other\",\"entries\":[]}", RS_CACHEFILE_AUTO, 0,
	  "not a resync cache export: \"format\" is \"other\"" },
	{ "format not a string", "{\"format\":1,\"entries\":[]}", RS_CACHEFILE_AUTO, 0,
	  "\"format\" is not a string" },
	{ "format after entries, wrong", "{\"entries\":[" E1 "],\"format\":\"x\"}",
	  RS_CACHEFILE_AUTO, 1, "not a resync cache export" },
	{ "no format at all, after entries", "{\"entries\":[" E1 "]}", RS_CACHEFILE_AUTO, 1,
	  "no \"format\" member" },
	{ "version 2", "{\"format\":\"resync-cache\",\"version\":2,\"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "unsupported export version 2" },
	{ "version a string", "{\"format\":\"resync-cache\",\"version\":\"1\",\"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "\"version\" must be an integer" },
	{ "exported_ms negative", "{\"format\":\"resync-cache\",\"exported_ms\":-1,\"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "\"exported_ms\" must be an integer >= 0" },
	{ "duplicate format",
	  "{\"format\":\"resync-cache\",\"format\":\"resync-cache\",\"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "line 1: duplicate \"format\" member" },
	{ "duplicate entries", HDR "],\"entries\":[]}", RS_CACHEFILE_AUTO, 0,
	  "duplicate \"entries\" member" },
	{ "trailing garbage", HDR "\n]}\nx", RS_CACHEFILE_AUTO, 0,
	  "line 3: data after the end of the document" },
	{ "a second document", HDR "]} {}", RS_CACHEFILE_AUTO, 0, "data after the end" },
	{ "entries an object", "{\"format\":\"resync-cache\",\"entries\":{}}", RS_CACHEFILE_AUTO,
	  0, "\"entries\" must be an array" },
	{ "entries a string", "{\"format\":\"resync-cache\",\"entries\":\"[]\"}",
	  RS_CACHEFILE_AUTO, 0, "\"entries\" must be an array" },
	{ "entry a number", HDR "1]}", RS_CACHEFILE_AUTO, 0, "entry 1: expected an object" },
	{ "entry an array", HDR E1 ",[]]}", RS_CACHEFILE_AUTO, 1, "entry 2: expected an object" },
	{ "trailing comma in entries", HDR E1 ",]}", RS_CACHEFILE_AUTO, 1,
	  "entry 2: expected an object" },
	{ "missing comma in entries", HDR E1 E1 "]}", RS_CACHEFILE_AUTO, 1,
	  "expected ',' or ']' after entry 1" },
	{ "missing key", HDR E1 ",\n{\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 1, "entry 2: missing \"key\" (or \"key_base64\")" },
	{ "missing value", HDR "{\"key\":\"a\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: missing \"value\"" },
	{ "both key and key_base64",
	  HDR "{\"key\":\"a\",\"key_base64\":\"YQ==\",\"value\":\"b\",\"stored_ms\":1,"
	  "\"expires_ms\":2}]}", RS_CACHEFILE_AUTO, 0,
	  "entry 1: both \"key\" and \"key_base64\"" },
	{ "both value and value_base64",
	  HDR "{\"key\":\"a\",\"value_base64\":\"\",\"value\":\"b\",\"stored_ms\":1,"
	  "\"expires_ms\":2}]}", RS_CACHEFILE_AUTO, 0, "entry 1: both \"value\"" },
	{ "key a number", HDR "{\"key\":1,\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"key\" must be a string" },
	{ "base64 bad length",
	  HDR "{\"key_base64\":\"YQ=\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"key_base64\" is not valid base64" },
	{ "base64 bad character",
	  HDR "{\"key\":\"k\",\"value_base64\":\"Y*==\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"value_base64\" is not valid base64" },
	{ "base64 padding inside",
	  HDR "{\"key_base64\":\"YQ==YQ==\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "is not valid base64" },
	{ "base64 pad bits set",
	  HDR "{\"key_base64\":\"YR==\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "is not valid base64" },
	{ "base64 with a space",
	  HDR "{\"key_base64\":\"YW Jj\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "is not valid base64" },
	{ "base64 with '=' then data",
	  HDR "{\"key_base64\":\"Y=Jj\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "is not valid base64" },
	{ "time a string",
	  HDR E1 "," E1 ",{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":1,\"expires_ms\":\"2\"}]}",
	  RS_CACHEFILE_AUTO, 2, "entry 3: \"expires_ms\" must be an integer" },
	{ "time a real", HDR "{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":1.5,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"stored_ms\" must be an integer" },
	{ "time null", HDR "{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":null,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"stored_ms\" must be an integer" },
	{ "time missing", HDR "{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":1}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: missing \"expires_ms\"" },
	{ "time negative", HDR "{\"key\":\"a\",\"value\":\"b\",\"stored_ms\":-1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: \"stored_ms\" must not be negative" },
	{ "invalid JSON in an entry", HDR "\n" E1 ",\n{\"key\":\"a\",,}]}", RS_CACHEFILE_AUTO, 1,
	  "entry 2: invalid JSON at line 3" },
	{ "invalid UTF-8 in an entry", HDR "{\"key\":\"\xff\",\"value\":\"b\",\"stored_ms\":1,"
	  "\"expires_ms\":2}]}", RS_CACHEFILE_AUTO, 0, "entry 1: invalid JSON" },
	{ "entry over the line cap", HDR "{\"key\":\"a\",\"value\":\"0123456789012345678901234567"
	  "890123456789012345678901234567890123456789\",\"stored_ms\":1,\"expires_ms\":2}]}",
	  RS_CACHEFILE_AUTO, 0, "entry 1: longer than 96 bytes" },
	{ "missing colon", "{\"format\" \"resync-cache\"}", RS_CACHEFILE_AUTO, 0,
	  "line 1: expected ':'" },
	{ "member name not a string", "{format:1}", RS_CACHEFILE_AUTO, 0,
	  "line 1: expected a member name" },
	{ "missing member value", "{\"format\":,\"entries\":[]}", RS_CACHEFILE_AUTO, 0,
	  "line 1: expected a value" },
	{ "bad unknown member", "{\"format\":\"resync-cache\",\"x\":[1,}", RS_CACHEFILE_AUTO, 0,
	  "line 1: invalid JSON in the \"x\" member" },
	{ "bad scalar", "{\"format\":\"resync-cache\",\"x\":tru,\"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "invalid JSON in the \"x\" member" },
	{ "bad member name", "{\"a\\q\":1}", RS_CACHEFILE_AUTO, 0,
	  "line 1: invalid JSON in a member name" },
	{ "missing comma in the header", "{\"format\":\"resync-cache\" \"entries\":[]}",
	  RS_CACHEFILE_AUTO, 0, "expected ',' or '}' in the header" },
	{ "ndjson as json", NDH E1 "\n", RS_CACHEFILE_JSON, 0,
	  "the \"entries\" member is missing" },
	{ "json as ndjson", HDR "]}\n", RS_CACHEFILE_NDJSON, 0,
	  "a JSON-format export, not NDJSON" },
	{ "ndjson header without format", "{\"version\":1}\n" E1 "\n", RS_CACHEFILE_AUTO, 0,
	  "not a resync cache export: no \"format\" member" },
	{ "ndjson version 2", "{\"format\":\"resync-cache\",\"version\":2}\n" E1 "\n",
	  RS_CACHEFILE_AUTO, 0, "unsupported export version 2" },
	{ "ndjson control byte", NDH "\n\x01\n", RS_CACHEFILE_AUTO, 0, "line 3: invalid JSON" },
	{ "ndjson garbage last line", NDH "\n{\"a\":1}}", RS_CACHEFILE_AUTO, 0,
	  "line 3: invalid JSON" },
	{ "ndjson data after the header", "{\"format\":\"resync-cache\"} " E1 "\n",
	  RS_CACHEFILE_AUTO, 0, "line 1: data after the header on its line" },
	{ "ndjson line too long", NDH E1 "\n" E1 "\n{\"key\":\"a\",\"value\":\"01234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\","
	  "\"stored_ms\":1,\"expires_ms\":2}\n", RS_CACHEFILE_AUTO, 2,
	  "line 4: longer than 96 bytes" },
	{ "ndjson bad line", NDH E1 "\n\n{\"key\":\"a\",\"value\":}\n" E1 "\n", RS_CACHEFILE_AUTO,
	  1, "line 4: invalid JSON: " },
	{ "ndjson bad entry after blank lines", NDH "\n\n" E1 "\n\n{\"key\":\"a\",\"stored_ms\":1,"
	  "\"expires_ms\":2}\n", RS_CACHEFILE_AUTO, 1, "line 6: missing \"value\"" },
	{ "ndjson entry an array", NDH "[1]\n", RS_CACHEFILE_AUTO, 0,
	  "line 2: an entry must be an object" },
	{ "ndjson entry a number", NDH "7\n", RS_CACHEFILE_AUTO, 0,
	  "line 2: an entry must be an object" },
	{ "ndjson two entries on a line", NDH "{\"key\":\"a\"}{\"key\":\"b\"}\n", RS_CACHEFILE_AUTO, 0,
	  "line 2: invalid JSON" },
	{ "ndjson last line cut", NDH E1 "\n{\"key\":\"a\",\"val", RS_CACHEFILE_AUTO, 1,
	  "truncated: line 3 is incomplete" },
	{ "json cut in the header", "{\"format\":\"resync-cache\",\"version\":1",
	  RS_CACHEFILE_AUTO, 0, "truncated: the header object is not closed" },
	{ "json cut between entries", HDR E1 ",\n", RS_CACHEFILE_AUTO, 1,
	  "truncated: the entries array is not closed" },
	{ "json cut in an entry", HDR E1 ",\n{\"key\":\"a\",\"value\":\"b\",\"st",
	  RS_CACHEFILE_AUTO, 1, "truncated: entry 2 is incomplete" },
	{ "json cut after entries", HDR E1 "]", RS_CACHEFILE_AUTO, 1,
	  "truncated: the header object is not closed" },
};

static void test_malformed(void)
{
	for (size_t i = 0; i < RS_ARRAY_SIZE(bads); i++) {
		const struct bad *b = &bads[i];
		struct rs_err err = RS_ERR_INIT;
		size_t count;
		char name[160];
		int rc = read_mem(b->text, strlen(b->text), b->fmt, 96, &count, NULL, &err);

		snprintf(name, sizeof(name), "malformed: %s: refused", b->what);
		if (!ok(rc == -1, name))
			printf("#   rc %d\n", rc);
		snprintf(name, sizeof(name), "malformed: %s: says why", b->what);
		has_str(err.msg, b->msg, name);
		snprintf(name, sizeof(name), "malformed: %s: %zu entries delivered first", b->what,
			 b->delivered);
		is_int(count, b->delivered, name);
	}

	/* Header members up to the cap are read and dropped, longer ones
	 * refused. */
	for (int over = 0; over <= 1; over++) {
		size_t n = RS_CACHEFILE_MEMBER_MAX_BYTES + (over ? 1 : 0), pre, count;
		char *t = malloc(n + 128);
		struct rs_err err = RS_ERR_INIT;
		int rc;

		strcpy(t, "{\"format\":\"resync-cache\",\"x\":[");
		pre = strlen(t);
		memset(t + pre, ' ', n - 2);
		strcpy(t + pre + n - 2, "]}\n");
		rc = read_mem(t, strlen(t), RS_CACHEFILE_AUTO, 96, &count, NULL, &err);
		if (!over) {
			if (!ok(rc == 0, "header member of 64 KiB: read"))
				printf("#   %s\n", err.msg);
		} else {
			ok(rc == -1, "header member over 64 KiB: refused");
			has_str(err.msg, "line 1: a header member longer than 65536 bytes",
				"header member over 64 KiB: says so");
		}
		free(t);
	}
}

/* Every prefix of an export: the JSON format refuses each as truncated,
 * NDJSON reads each as far as its complete lines. */
static void test_truncation(void)
{
	static const struct kv three[] = {
		{ S("k\xc3\xa9y"), S("\xe6\x97\xa5 value") }, { S("\0\1"), S("") },
		{ S("x"), S("y\"\\") },
	};
	struct rs_cachefile_entry es[3] = { entry_of(&three[0], 1, 22),
					    entry_of(&three[1], 333, 4444),
					    entry_of(&three[2], 5, 6) };
	size_t len, bad = 0, count;
	char *t = export_mem(RS_CACHEFILE_JSON, es, 3, &len);
	struct rs_err err = RS_ERR_INIT;

	/* The document ends "]}\n": only the final newline may go. */
	for (size_t cut = 0; t && cut < len - 1; cut++) {
		int rc = read_mem(t, cut, RS_CACHEFILE_AUTO, 4096, &count, NULL, &err);

		if (rc != -1 || (cut > 0 && !strstr(err.msg, "truncated"))) {
			if (!bad++)
				printf("#   cut at %zu: rc %d, \"%s\"\n", cut, rc, err.msg);
		}
	}
	if (!ok(t && bad == 0, "json: every prefix is refused as truncated"))
		printf("#   %zu prefixes wrong\n", bad);
	ok(t && read_mem(t, len - 1, RS_CACHEFILE_AUTO, 4096, &count, NULL, &err) == 0 &&
	   count == 3, "json: the document without its final newline reads");
	free(t);

	t = export_mem(RS_CACHEFILE_NDJSON, es, 3, &len);
	bad = 0;
	for (size_t cut = 0; t && cut <= len; cut++) {
		size_t lines = 0, header_end = (size_t)(strchr(t, '\n') - t);
		bool whole = cut >= header_end && (t[cut - 1] == '\n' || t[cut - 1] == '}');
		int rc;

		for (size_t k = header_end + 1; k < cut; k++)
			if (t[k] == '}' && (k + 1 == len || t[k + 1] == '\n'))
				lines++;
		rc = read_mem(t, cut, RS_CACHEFILE_AUTO, 4096, &count, NULL, &err);
		if (whole ? rc != 0 || count != lines
			  : rc != -1 || (cut > 0 && !strstr(err.msg, "truncated"))) {
			if (!bad++)
				printf("#   cut at %zu: rc %d, %zu entries (want %zu), \"%s\"\n", cut,
				       rc, count, lines, rc ? err.msg : "");
		}
	}
	if (!ok(t && bad == 0, "ndjson: each prefix reads its complete lines or is truncated"))
		printf("#   %zu prefixes wrong\n", bad);
	free(t);
}

/* ---- the callback, detection ------------------------------------------------ */

struct stopper {
	size_t seen, stop_at;
};

static int stop_cb(void *arg, const struct rs_cachefile_entry *e)
{
	struct stopper *s = arg;

	(void)e;
	return ++s->seen == s->stop_at ? 7 : 0;
}

static void test_stop_and_detect(void)
{
	static const struct kv one = { S("k"), S("v") };
	struct rs_cachefile_entry es[10];
	enum rs_cachefile_format fmts[] = { RS_CACHEFILE_JSON, RS_CACHEFILE_NDJSON };

	for (size_t i = 0; i < 10; i++)
		es[i] = entry_of(&one, (int64_t)i, (int64_t)i);
	for (size_t i = 0; i < 2; i++) {
		struct rs_cachefile_report rep;
		struct rs_err err = RS_ERR_INIT;
		struct stopper s = { 0, 5 };
		size_t len;
		char *t = export_mem(fmts[i], es, 10, &len);
		FILE *f = mem_file(t, len);
		char name[96];
		int rc = rs_cachefile_read(f, RS_CACHEFILE_AUTO, 4096, stop_cb, &s, &rep, &err);

		fclose(f);
		snprintf(name, sizeof(name), "%s: the callback's stop value is returned",
			 rs_cachefile_format_name(fmts[i]));
		is_int(rc, 7, name);
		snprintf(name, sizeof(name), "%s: reading stops there",
			 rs_cachefile_format_name(fmts[i]));
		ok(s.seen == 5 && rep.entries == 5 && err.msg[0] == '\0', name);
		snprintf(name, sizeof(name), "%s: auto detection", rs_cachefile_format_name(fmts[i]));
		ok(rep.format == fmts[i], name);
		free(t);
	}

	/* A pretty-printed JSON export whose header spans lines is still JSON;
	 * an NDJSON header with the members in another order is NDJSON. */
	{
		static const char pretty[] = "{\n  \"format\": \"resync-cache\",\n  \"version\": 1,\n"
					     "  \"entries\": [\n    " E1 "\n  ]\n}\n";
		static const char nd[] = "{\"exported_ms\":9,\"format\":\"resync-cache\"}\n" E1 "\n";
		struct rs_cachefile_report rep;
		struct rs_err err = RS_ERR_INIT;
		size_t count;

		ok(read_mem(pretty, sizeof(pretty) - 1, RS_CACHEFILE_AUTO, 4096, &count, &rep,
			    &err) == 0 && count == 1 && rep.format == RS_CACHEFILE_JSON,
		   "auto: pretty-printed json is json");
		ok(read_mem(nd, sizeof(nd) - 1, RS_CACHEFILE_AUTO, 4096, &count, &rep, &err) == 0 &&
		   count == 1 && rep.format == RS_CACHEFILE_NDJSON && rep.exported_ms == 9,
		   "auto: reordered ndjson header is ndjson");
		ok(read_mem(nd, sizeof(nd) - 1, RS_CACHEFILE_NDJSON, 4096, &count, &rep, &err) == 0 &&
		   count == 1, "explicit ndjson reads ndjson");
		ok(read_mem(pretty, sizeof(pretty) - 1, RS_CACHEFILE_JSON, 4096, &count, &rep,
			    &err) == 0 && count == 1, "explicit json reads json");
	}
}

/* ---- the writer's own errors ------------------------------------------------ */

static void test_writer_errors(void)
{
	static const struct kv one = { S("k"), S("v") };
	static char big[100000];
	enum rs_cachefile_format fmt;
	struct rs_cachefile_writer *w = NULL;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cachefile_entry e = entry_of(&one, 1, 2);
	char *buf = NULL;
	size_t sz = 0;
	FILE *f;
	int rc;

	ok(rs_cachefile_format_parse("json", &fmt) == 0 && fmt == RS_CACHEFILE_JSON &&
	   rs_cachefile_format_parse("ndjson", &fmt) == 0 && fmt == RS_CACHEFILE_NDJSON &&
	   rs_cachefile_format_parse("auto", &fmt) == 0 && fmt == RS_CACHEFILE_AUTO,
	   "format names parse");
	fmt = RS_CACHEFILE_JSON;
	ok(rs_cachefile_format_parse("JSON", &fmt) == -1 &&
	   rs_cachefile_format_parse("xml", &fmt) == -1 &&
	   rs_cachefile_format_parse("", &fmt) == -1 && fmt == RS_CACHEFILE_JSON,
	   "unknown format names are -1");
	is_str(rs_cachefile_format_name(RS_CACHEFILE_NDJSON), "ndjson", "format name");

	f = open_memstream(&buf, &sz);
	rc = rs_cachefile_writer_new(&w, f, RS_CACHEFILE_AUTO, 0, &err);
	ok(rc == -1 && w == NULL, "writer: AUTO is refused");
	has_str(err.msg, "the export format must be json or ndjson", "writer: AUTO: says why");
	ok(rs_cachefile_writer_new(&w, f, RS_CACHEFILE_JSON, -1, &err) == -1,
	   "writer: a negative export time is refused");

	rc = rs_cachefile_writer_new(&w, f, RS_CACHEFILE_NDJSON, 0, &err);
	ok(rc == 0 && w, "writer: ndjson starts");
	fflush(f);
	{
		size_t before = sz;

		e.stored_ms = -3;
		rc = rs_cachefile_write(w, &e, &err);
		ok(rc == -1, "writer: negative stored_ms is refused");
		has_str(err.msg, "entry 1: stored_ms is negative (-3)", "writer: names the entry");
		e.stored_ms = 1;
		e.expires_ms = -1;
		ok(rs_cachefile_write(w, &e, &err) == -1, "writer: negative expires_ms is refused");
		e.expires_ms = 2;
		e.key = NULL;
		ok(rs_cachefile_write(w, &e, &err) == -1, "writer: NULL key with a length is refused");
		e.key = "k";
		fflush(f);
		is_int(sz, before, "writer: nothing written for refused entries");
		ok(rs_cachefile_write(w, &e, &err) == 0 && rs_cachefile_writer_count(w) == 1,
		   "writer: goes on after a refused entry");
	}
	ok(rs_cachefile_writer_finish(w, &err) == 0, "writer: finishes");
	fclose(f);
	free(buf);
	rs_cachefile_writer_abort(NULL);

	/* A full device: the error shows at finish, or at a write once stdio's
	 * buffer has had to go out. */
	f = fopen("/dev/full", "w");
	if (!ok(f != NULL, "open /dev/full"))
		return;
	rc = rs_cachefile_writer_new(&w, f, RS_CACHEFILE_JSON, T0_MS, &err);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = rs_cachefile_write(w, &e, &err);
	ok(rc == 0, "/dev/full: buffered writes succeed");
	rc = rs_cachefile_writer_finish(w, &err);
	ok(rc == -1, "/dev/full: finish fails");
	has_str(err.msg, "write failed: No space left on device", "/dev/full: finish says why");
	is_int(err.code, ENOSPC, "/dev/full: err.code is ENOSPC");
	fclose(f);

	f = fopen("/dev/full", "w");
	rs_err_clear(&err);
	rc = rs_cachefile_writer_new(&w, f, RS_CACHEFILE_NDJSON, T0_MS, &err);
	memset(big, 'x', sizeof(big));
	e.val = big;
	e.vlen = sizeof(big);
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = rs_cachefile_write(w, &e, &err);
	ok(rc == -1, "/dev/full: a write past the buffer fails");
	has_str(err.msg, "write failed: No space left on device", "/dev/full: write says why");
	ok(rs_cachefile_write(w, &e, &err) == -1, "/dev/full: later writes fail too");
	ok(rs_cachefile_writer_finish(w, &err) == -1, "/dev/full: and so does finish");
	fclose(f);

	/* Reader argument checks. */
	{
		size_t count;

		ok(read_mem("{}", 2, RS_CACHEFILE_AUTO, 0, &count, NULL, &err) == -1,
		   "reader: a zero line cap is refused");
		ok(rs_cachefile_read(NULL, RS_CACHEFILE_AUTO, 10, count_cb, &count, NULL, &err) == -1,
		   "reader: no file is refused");
	}
}

/* ---- streaming ------------------------------------------------------------ */

struct producer {
	FILE *f;
	enum rs_cachefile_format fmt;
	int rc;
	char msg[RS_ERR_MSG_MAX];
};

static void stream_entry(size_t i, char *k, char *v, struct rs_cachefile_entry *e)
{
	int kl = snprintf(k, 32, "key-%zu", i);
	int vl = snprintf(v, 64, "value %zu %s", i, i % 3 ? "text" : "");

	if (i % 5 == 0)
		v[vl / 2] = '\0';          /* binary: goes as base64 */
	*e = (struct rs_cachefile_entry){ k, (size_t)kl, v, (size_t)vl, (int64_t)i,
					  (int64_t)i + 1000 };
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct rs_err err = RS_ERR_INIT;
	struct rs_cachefile_writer *w;
	char k[32], v[64];

	p->rc = rs_cachefile_writer_new(&w, p->f, p->fmt, T0_MS, &err);
	for (size_t i = 0; i < STREAM_N && p->rc == 0; i++) {
		struct rs_cachefile_entry e;

		stream_entry(i, k, v, &e);
		p->rc = rs_cachefile_write(w, &e, &err);
	}
	if (p->rc == 0)
		p->rc = rs_cachefile_writer_finish(w, &err);
	else if (w)
		rs_cachefile_writer_abort(w);
	snprintf(p->msg, sizeof(p->msg), "%s", err.msg);
	fclose(p->f);
	return NULL;
}

struct consumer {
	size_t seen, bad;
};

static int consume(void *arg, const struct rs_cachefile_entry *got)
{
	struct consumer *c = arg;
	struct rs_cachefile_entry e;
	char k[32], v[64];

	stream_entry(c->seen++, k, v, &e);
	if (got->klen != e.klen || got->vlen != e.vlen || memcmp(got->key, e.key, e.klen) ||
	    memcmp(got->val, e.val, e.vlen) || got->stored_ms != e.stored_ms ||
	    got->expires_ms != e.expires_ms)
		c->bad++;
	return 0;
}

static void test_streaming(void)
{
	enum rs_cachefile_format fmts[] = { RS_CACHEFILE_JSON, RS_CACHEFILE_NDJSON };

	for (size_t i = 0; i < 2; i++) {
		struct producer p = { NULL, fmts[i], -1, "" };
		struct consumer c = { 0, 0 };
		struct rs_cachefile_report rep;
		struct rs_err err = RS_ERR_INIT;
		pthread_t th;
		int fds[2], rc;
		FILE *in;
		char name[96];

		if (!ok(pipe(fds) == 0, "pipe"))
			return;
		p.f = fdopen(fds[1], "w");
		in = fdopen(fds[0], "r");
		pthread_create(&th, NULL, produce, &p);
		rc = rs_cachefile_read(in, RS_CACHEFILE_AUTO, 1024, consume, &c, &rep, &err);
		pthread_join(th, NULL);
		fclose(in);
		snprintf(name, sizeof(name), "%s through a pipe: writer succeeds",
			 rs_cachefile_format_name(fmts[i]));
		if (!ok(p.rc == 0, name))
			printf("#   %s\n", p.msg);
		snprintf(name, sizeof(name), "%s through a pipe: reader succeeds",
			 rs_cachefile_format_name(fmts[i]));
		if (!ok(rc == 0, name))
			printf("#   %s\n", err.msg);
		snprintf(name, sizeof(name), "%s through a pipe: all %d entries, in order, intact",
			 rs_cachefile_format_name(fmts[i]), STREAM_N);
		if (!ok(c.seen == STREAM_N && c.bad == 0 && rep.entries == STREAM_N &&
			rep.format == fmts[i], name))
			printf("#   %zu seen, %zu differ\n", c.seen, c.bad);
	}
}

int main(void)
{
	test_layout();
	test_roundtrip();
	test_max_bytes();
	test_handwritten();
	test_malformed();
	test_truncation();
	test_stop_and_detect();
	test_writer_errors();
	test_streaming();
	return tap_done();
}
