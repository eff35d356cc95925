/*
 * tap.h: a few macros that make a C test program speak TAP, so automake's
 * tap-driver counts every check.  A failing check says what it expected and
 * what it got.  Include in exactly one .c per test binary.
 *
 *   int main(void) { ok(1 + 1 == 2, "arith"); return tap_done(); }
 */
#ifndef RS_TAP_H
#define RS_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static int tap_ok(int cond, const char *file, int line, const char *name)
{
	++tap_n;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond) {
		++tap_failed;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, name) tap_ok(!!(cond), __FILE__, __LINE__, (name))

#define is_int(got, want, name)                                              \
	do {                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);     \
		if (!ok(g_ == w_, name))                                     \
			printf("#   expected %lld, got %lld\n", w_, g_);     \
	} while (0)

#define is_str(got, want, name)                                              \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		int same_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;     \
		if (!ok(same_, name))                                        \
			printf("#   expected \"%s\"\n#        got \"%s\"\n", \
			       w_ ? w_ : "(null)", g_ ? g_ : "(null)");      \
	} while (0)

#define has_str(haystack, needle, name)                                      \
	do {                                                                 \
		const char *h_ = (haystack), *n_ = (needle);                 \
		if (!ok(h_ && strstr(h_, n_), name))                         \
			printf("#   expected to contain \"%s\"\n#   got \"%s\"\n", \
			       n_, h_ ? h_ : "(null)");                      \
	} while (0)

static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
