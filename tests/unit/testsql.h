/*
 * testsql.h: poke at a test database behind the library's back (corrupt a
 * row, count rows) with the sqlite3 C API.  Errors go to a TAP comment, so
 * the checks after them fail with a reason.
 */
#ifndef RS_TESTSQL_H
#define RS_TESTSQL_H

#include <sqlite3.h>
#include <stdio.h>

static inline int sql(const char *path, const char *q)
{
	sqlite3 *h = NULL;
	int rc;

	sqlite3_open(path, &h);
	sqlite3_busy_timeout(h, 2000);
	rc = sqlite3_exec(h, q, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		printf("#   sql \"%s\": %s\n", q, sqlite3_errmsg(h));
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The first column of the first row, or -1. */
static inline long long sql_int(const char *path, const char *q)
{
	sqlite3_stmt *st;
	sqlite3 *h = NULL;
	long long v = -1;

	sqlite3_open(path, &h);
	if (sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	} else {
		printf("#   sql \"%s\": %s\n", q, sqlite3_errmsg(h));
	}
	sqlite3_close(h);
	return v;
}

#endif
