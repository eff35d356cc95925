/*
 * testlib.h: helpers every C test uses: a private temp directory per test
 * program, and reading a whole file.  All static inline, include freely.
 */
#ifndef RS_TESTLIB_H
#define RS_TESTLIB_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_PATH_MAX 4096
#define TEST_DIR_MAX 1024          /* leaves room in a path for a name */

struct tmpdir {
	char path[TEST_DIR_MAX];
};

/* $TMPDIR (or /tmp)/resync-test-NAME.XXXXXX; 0 or -1. */
static inline int make_tmpdir(struct tmpdir *t, const char *name)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = "/tmp";
	snprintf(t->path, sizeof(t->path), "%s/resync-test-%s.XXXXXX", base,
		 name);
	return mkdtemp(t->path) ? 0 : -1;
}

static inline int remove_entry(const char *path, const struct stat *st,
			       int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* Remove the directory and everything below it. */
static inline void remove_tmpdir(struct tmpdir *t)
{
	nftw(t->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void join(char *out, const struct tmpdir *t, const char *name)
{
	snprintf(out, TEST_PATH_MAX, "%s/%s", t->path, name);
}

/* The whole file, NUL-terminated (malloc'd); NULL if it cannot be read. */
static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *p = realloc(buf, cap + 65536);

			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* Bit-at-a-time CRC-32C state update, independent of crc32c.c's tables,
 * to check checksums against. */
static inline uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return crc;
}

/* ref_crc32c over v as 8 little-endian bytes. */
static inline uint32_t ref_crc32c_u64(uint32_t crc, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return ref_crc32c(crc, b, 8);
}

#endif
