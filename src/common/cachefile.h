/*
 * cachefile: the cache's entries as a JSON or NDJSON file, for
 * `resyncctl cache export` and `import`.  Both sides stream: the writer
 * emits each entry as it is given, the reader calls back per entry, and
 * neither holds the file or more than one entry in memory.  The module
 * knows nothing of the cache; the caller feeds and consumes entries.
 *
 * An entry is one JSON object:
 *   {"key":"...","value":"...","stored_ms":N,"expires_ms":N}
 * Keys and values are byte strings.  One that is valid UTF-8 (no
 * overlongs, surrogates or code points above U+10FFFF) with no control
 * character other than tab, newline and carriage return is written as a
 * JSON string under "key" / "value", its non-ASCII characters as raw
 * UTF-8; anything else is written as base64 (standard alphabet, padded)
 * under "key_base64" / "value_base64".  That rule keeps every encoded
 * field within twice its raw size (see rs_cachefile_entry_max_bytes).
 * stored_ms and expires_ms are integers, wall-clock ms since the epoch,
 * both required and >= 0 (stored_ms <= expires_ms is not checked).
 * Reading, exactly one of "key" / "key_base64" and one of "value" /
 * "value_base64" must be present; a string may hold any UTF-8 (\u0000
 * included) whatever the writer would have chosen; base64 must be
 * canonical (no whitespace, padded to a multiple of 4, zero pad bits);
 * other members of an entry are ignored.
 *
 * JSON format, one entry per line:
 *   {"format":"resync-cache","version":1,"exported_ms":N,"entries":[
 *   {...},
 *   {...}
 *   ]}
 * ("entries":[\n]} when empty), then a newline.  Reading, members may
 * come in any order with any whitespace; unknown members are ignored
 * (each value at most RS_CACHEFILE_MEMBER_MAX_BYTES of JSON text);
 * "format" must be "resync-cache", "version" 1 when present,
 * "exported_ms" an integer >= 0 when present, "entries" an array of
 * entry objects, and only whitespace may follow the closing brace.
 * Quirk of streaming: members after "entries" are checked only once the
 * entries are delivered, so a file with "format" missing or wrong after
 * its entries fails only at the end.  The writer always puts "format"
 * first.
 *
 * NDJSON format: a header object {"format":"resync-cache","version":1,
 * "exported_ms":N} (the same members and rules, no "entries"), the rest
 * of its line blank, then one entry object per line.  Blank lines are
 * ignored; the last line may lack its newline.  NDJSON cannot tell a
 * file cut at a line boundary from a shorter export; the JSON format
 * can (its closing "]}" is missing).
 *
 * Detection (RS_CACHEFILE_AUTO): the reader scans the first object's
 * members itself, one at a time.  Meeting "entries" makes it the JSON
 * format, the object closing without one makes it NDJSON.  So detection
 * never needs lookahead or a seekable FILE, and does not care how the
 * header is laid out over lines.  An explicit format refuses the other.
 *
 * Memory: the reader holds one entry at a time, bounded by
 * max_line_bytes of its text (an NDJSON line without its newline, or one
 * element of the JSON entries array), and one header member bounded by
 * RS_CACHEFILE_MEMBER_MAX_BYTES.  The writer holds no buffers beyond the
 * FILE's own.
 *
 * Errors name the spot: "entry 3: ..." (JSON format, 1-based over the
 * entries array), "line 7: ..." (NDJSON, 1-based over the file's lines,
 * blank lines included), "line 2: ..." for a fault in the JSON format's
 * header, "truncated: ..." when the file ends early.
 *
 * The FILE is always the caller's: neither side opens, closes or seeks
 * it.  Not thread-safe per writer or read; separate ones are independent.
 */
#ifndef RS_CACHEFILE_H
#define RS_CACHEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* Longest JSON text of one header member's value (or name) the reader
 * accepts; unknown members are decoded and dropped, so this is the most
 * the header ever holds at once. */
#define RS_CACHEFILE_MEMBER_MAX_BYTES (64 * 1024)

enum rs_cachefile_format { RS_CACHEFILE_AUTO, RS_CACHEFILE_JSON, RS_CACHEFILE_NDJSON };

/* "json", "ndjson" or "auto" (only the reader accepts AUTO); -1 for
 * anything else, *out untouched. */
int rs_cachefile_format_parse(const char *name, enum rs_cachefile_format *out);
/* "json", "ndjson", "auto"; static. */
const char *rs_cachefile_format_name(enum rs_cachefile_format fmt);

struct rs_cachefile_entry {
	const void *key;            /* may be NULL when klen is 0 */
	size_t klen;
	const void *val;            /* may be NULL when vlen is 0 */
	size_t vlen;
	int64_t stored_ms, expires_ms;
};

/* The most bytes an entry with a klen-byte key and a vlen-byte value
 * takes in either format, newline and separator excluded (saturates at
 * SIZE_MAX).  Pass it for the largest key and value the cache allows as
 * rs_cachefile_read's max_line_bytes, and every export reads back. */
size_t rs_cachefile_entry_max_bytes(size_t klen, size_t vlen);

struct rs_cachefile_writer;

/* Start an export to f: fmt JSON or NDJSON (AUTO is an error),
 * exported_ms >= 0.  Writes the header at once.  The FILE stays the
 * caller's; it must outlive the writer.  0, or -1 with err and *out
 * NULL. */
int rs_cachefile_writer_new(struct rs_cachefile_writer **out, FILE *f,
			    enum rs_cachefile_format fmt, int64_t exported_ms,
			    struct rs_err *err);

/* Append one entry (borrowed for the call).  -1 with err for an invalid
 * entry ("entry 3: stored_ms is negative"), nothing written, or when a
 * write has failed ("write failed: No space left on device"; stdio
 * buffers, so a failure may show only at finish).  After -1 the writer
 * is still valid for finish or abort. */
int rs_cachefile_write(struct rs_cachefile_writer *w,
		       const struct rs_cachefile_entry *e, struct rs_err *err);

/* The number of entries written so far. */
uint64_t rs_cachefile_writer_count(const struct rs_cachefile_writer *w);

/* Write the trailer, fflush, check ferror; frees w whatever happens.
 * 0, or -1 with err ("write failed: No space left on device"), also when
 * any earlier write failed.  The file is complete only after 0 (and the
 * caller's own fclose or fsync succeeding). */
int rs_cachefile_writer_finish(struct rs_cachefile_writer *w, struct rs_err *err);

/* Free w without writing the trailer, leaving a file readers reject as
 * truncated (JSON format).  NULL is fine. */
void rs_cachefile_writer_abort(struct rs_cachefile_writer *w);

struct rs_cachefile_report {
	enum rs_cachefile_format format;   /* as detected; AUTO if not yet */
	int64_t exported_ms;               /* -1 when absent or not yet read */
	uint64_t entries;                  /* delivered to cb, a stopping
					    * call included */
};

/* Read an export from f's current position to its end, calling cb for
 * each entry in file order (the entry and its bytes are borrowed for the
 * call).  fmt is the expected format or AUTO.  max_line_bytes (> 0)
 * bounds one entry's text, see above.  cb returns 0 to go on, anything
 * else to stop: that value is returned as is, err untouched.  A
 * malformed or unreadable file is -1 with err ("entry 3: \"expires_ms\"
 * must be an integer", "line 7: invalid JSON: ...", "truncated: the
 * entries array is not closed"); entries before the fault have already
 * been delivered, the caller decides what to make of them.  report (may
 * be NULL) is filled as far as reading got, whatever the result. */
int rs_cachefile_read(FILE *f, enum rs_cachefile_format fmt, size_t max_line_bytes,
		      int (*cb)(void *arg, const struct rs_cachefile_entry *e),
		      void *arg, struct rs_cachefile_report *report,
		      struct rs_err *err);

#endif
