/*
 * test_log: the process-wide logger, through files in a temp directory.
 *
 * The logger is global, so the checks run in order in one process; the
 * first one looks at the state before any rs_log_setup.
 */
#include "log.h"
#include "tap.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define N_THREADS 4
#define LINES_PER_THREAD 1000
#define LINE_MAX_BYTES 8192

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int log_to_file(const char *path, enum rs_log_format format,
		       enum rs_log_level level, struct rs_err *err)
{
	struct rs_log_options o = {
		.level = level,
		.format = format,
		.target = RS_LOG_FILE,
		.path = path,
		.ident = "resync-fcgi",
	};

	return rs_log_setup(&o, err);
}

/* stderr redirected into a file, for the lines that go there. */
static int capture_stderr(const char *path)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

static void restore_stderr(int saved)
{
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

static int evaluated;

static int count_evaluation(void)
{
	return ++evaluated;
}

/* "2026-11-23T14:05:01.123456Z" at the start of s */
static int is_timestamp(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return 0;
	}
	return 1;
}

static void test_level_names(void)
{
	is_int(rs_log_level_parse("debug"), RS_LOG_DEBUG, "parse: debug");
	is_int(rs_log_level_parse("info"), RS_LOG_INFO, "parse: info");
	is_int(rs_log_level_parse("notice"), RS_LOG_NOTICE, "parse: notice");
	is_int(rs_log_level_parse("warning"), RS_LOG_WARNING,
	       "parse: warning");
	is_int(rs_log_level_parse("warn"), RS_LOG_WARNING,
	       "parse: warn is an alias of warning");
	is_int(rs_log_level_parse("error"), RS_LOG_ERROR, "parse: error");
	is_int(rs_log_level_parse("fatal"), -1, "parse: unknown name is -1");
	is_int(rs_log_level_parse(""), -1, "parse: empty name is -1");
	is_int(rs_log_level_parse("INFO"), -1, "parse: names are lowercase");
	is_int(rs_log_level_parse(NULL), -1, "parse: NULL is -1");
	is_str(rs_log_level_name(RS_LOG_WARNING), "warning",
	       "name: warning");
	is_str(rs_log_level_name(RS_LOG_DEBUG), "debug", "name: debug");
	is_str(rs_log_level_name((enum rs_log_level)42), "unknown",
	       "name: a bad level is unknown");
}

/* Must run before any rs_log_setup. */
static void test_default_is_stderr_text_info(void)
{
	struct tmpdir t;
	char path[TEST_PATH_MAX], want[128];
	char *out;
	int saved;

	if (!ok(make_tmpdir(&t, "default") == 0, "default: make temp dir"))
		return;
	join(path, &t, "stderr");
	is_int(rs_log_min_level, RS_LOG_INFO, "default: level is info");
	saved = capture_stderr(path);
	RS_LOG(RS_LOG_INFO, NULL, "hello %s", "default");
	RS_LOG(RS_LOG_DEBUG, NULL, "hidden debug line");
	restore_stderr(saved);

	out = slurp(path);
	snprintf(want, sizeof(want), " resync[%ld]: info: hello default\n",
		 (long)getpid());
	has_str(out, want, "default: info line on stderr, ident resync");
	ok(out && is_timestamp(out), "default: line starts with a timestamp");
	ok(out && !strstr(out, "hidden"), "default: no debug line");
	is_int(count_lines(out), 1, "default: exactly one line");
	free(out);
	remove_tmpdir(&t);
}

static void test_level_filtering(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	char *out;

	if (!ok(make_tmpdir(&t, "filter") == 0, "filter: make temp dir"))
		return;
	join(path, &t, "f.log");
	is_int(log_to_file(path, RS_LOG_TEXT, RS_LOG_INFO, &err), 0,
	       "filter: set up file at info");
	evaluated = 0;
	RS_LOG(RS_LOG_DEBUG, NULL, "debug %d", count_evaluation());
	is_int(evaluated, 0,
	       "filter: below the level arguments are not evaluated");
	RS_LOG(RS_LOG_INFO, NULL, "info %d", count_evaluation());
	is_int(evaluated, 1, "filter: at the level arguments are evaluated");
	rs_log_write(RS_LOG_DEBUG, NULL, "direct debug");
	RS_LOG(RS_LOG_ERROR, NULL, "an error");

	out = slurp(path);
	ok(out && !strstr(out, "debug"), "filter: no debug line in the file");
	has_str(out, "info: info 1\n", "filter: info line written");
	has_str(out, "error: an error\n", "filter: error line written");
	is_int(count_lines(out), 2, "filter: two lines");
	free(out);

	is_int(log_to_file(path, RS_LOG_TEXT, RS_LOG_ERROR, &err), 0,
	       "filter: set up file at error");
	RS_LOG(RS_LOG_WARNING, NULL, "a warning");
	out = slurp(path);
	ok(out && !strstr(out, "a warning"),
	   "filter: no warning line at level error");
	free(out);

	rs_log_shutdown();
	remove_tmpdir(&t);
}

static void test_text_format(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX], want[256];
	char *out, *second;

	if (!ok(make_tmpdir(&t, "text") == 0, "text: make temp dir"))
		return;
	join(path, &t, "t.log");
	is_int(log_to_file(path, RS_LOG_TEXT, RS_LOG_DEBUG, &err), 0,
	       "text: set up");
	RS_LOG(RS_LOG_WARNING, "req-1", "disk %d%% full", 91);
	RS_LOG(RS_LOG_DEBUG, NULL, "two\nlines\tand\x01 a bell");
	rs_log_shutdown();

	out = slurp(path);
	ok(out && is_timestamp(out), "text: starts with a UTC timestamp");
	ok(out && out[27] == ' ', "text: a space after the timestamp");
	snprintf(want, sizeof(want),
		 "Z resync-fcgi[%ld]: warning: [req-1] disk 91%% full\n",
		 (long)getpid());
	has_str(out, want, "text: ident, pid, level, request id, message");
	is_int(count_lines(out), 2,
	       "text: a newline in a message stays one line");
	second = out ? strchr(out, '\n') : NULL;
	second = second ? second + 1 : NULL;
	ok(second && is_timestamp(second), "text: second line has a timestamp");
	snprintf(want, sizeof(want),
		 "Z resync-fcgi[%ld]: debug: two\\nlines\tand\\x01 a bell\n",
		 (long)getpid());
	has_str(second, want,
		"text: no [rid] without one, control characters escaped");
	free(out);
	remove_tmpdir(&t);
}

static void test_json_format(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX], want[256];
	char *out, *second;

	if (!ok(make_tmpdir(&t, "json") == 0, "json: make temp dir"))
		return;
	join(path, &t, "j.log");
	is_int(log_to_file(path, RS_LOG_JSON, RS_LOG_INFO, &err), 0,
	       "json: set up");
	RS_LOG(RS_LOG_WARNING, "r\"1\n", "say \"hi\"\nback\\slash\ttab\x01");
	RS_LOG(RS_LOG_INFO, NULL, "plain");
	rs_log_shutdown();

	out = slurp(path);
	is_int(count_lines(out), 2, "json: one object per line");
	ok(out && strncmp(out, "{\"time\":\"", 9) == 0,
	   "json: starts with the time key");
	ok(out && is_timestamp(out + 9) && out[9 + 27] == '"',
	   "json: time is an RFC 3339 UTC timestamp");
	has_str(out, "\",\"level\":\"warning\",", "json: level");
	has_str(out, ",\"ident\":\"resync-fcgi\",", "json: ident");
	snprintf(want, sizeof(want), ",\"pid\":%ld,", (long)getpid());
	has_str(out, want, "json: pid is a number");
	has_str(out, ",\"request_id\":\"r\\\"1\\n\",",
		"json: request id escaped");
	has_str(out,
		",\"msg\":\"say \\\"hi\\\"\\nback\\\\slash\\ttab\\u0001\"}\n",
		"json: message escaped and last");
	second = out ? strchr(out, '\n') : NULL;
	second = second ? second + 1 : NULL;
	ok(second && !strstr(second, "request_id"),
	   "json: no request_id without one");
	has_str(second, ",\"msg\":\"plain\"}\n", "json: second line message");
	free(out);
	remove_tmpdir(&t);
}

static void test_truncation(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	char *big, *out;
	size_t len;

	if (!ok(make_tmpdir(&t, "trunc") == 0, "truncate: make temp dir"))
		return;
	big = malloc(20001);
	if (!big)
		return;
	memset(big, 'x', 20000);
	big[20000] = '\0';
	big[5000] = '"';         /* escapes must not be split either */

	join(path, &t, "text.log");
	log_to_file(path, RS_LOG_TEXT, RS_LOG_INFO, &err);
	RS_LOG(RS_LOG_INFO, "rid", "%s", big);
	out = slurp(path);
	len = out ? strlen(out) : 0;
	ok(len > 8000 && len <= LINE_MAX_BYTES,
	   "truncate: text line cut to at most 8 KiB");
	ok(out && ends_with(out, "xx...\n"), "truncate: text line ends in ...");
	is_int(count_lines(out), 1, "truncate: still one text line");
	free(out);

	join(path, &t, "json.log");
	log_to_file(path, RS_LOG_JSON, RS_LOG_INFO, &err);
	RS_LOG(RS_LOG_INFO, "rid", "%s", big);
	rs_log_shutdown();
	out = slurp(path);
	len = out ? strlen(out) : 0;
	ok(len > 8000 && len <= LINE_MAX_BYTES,
	   "truncate: JSON line cut to at most 8 KiB");
	ok(out && ends_with(out, "xx...\"}\n"),
	   "truncate: JSON line still closes its object");
	has_str(out, "xx\\\"xx", "truncate: escape kept whole");
	free(out);
	free(big);
	remove_tmpdir(&t);
}

static void test_reopen_after_rename(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX], rotated[TEST_PATH_MAX];
	struct stat st;
	char *out;

	if (!ok(make_tmpdir(&t, "reopen") == 0, "reopen: make temp dir"))
		return;
	join(path, &t, "resync.log");
	join(rotated, &t, "resync.log.1");
	is_int(log_to_file(path, RS_LOG_TEXT, RS_LOG_INFO, &err), 0,
	       "reopen: set up");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640,
	   "reopen: log file created with mode 0640");
	RS_LOG(RS_LOG_INFO, NULL, "before rotation");
	ok(rename(path, rotated) == 0, "reopen: rename like logrotate");
	RS_LOG(RS_LOG_INFO, NULL, "after rename, before reopen");
	rs_log_reopen();
	RS_LOG(RS_LOG_INFO, NULL, "after reopen");

	out = slurp(path);
	has_str(out, "info: after reopen\n",
		"reopen: new file has the new line");
	ok(out && !strstr(out, "before"), "reopen: new file has no old lines");
	is_int(count_lines(out), 1, "reopen: new file has one line");
	free(out);
	out = slurp(rotated);
	has_str(out, "info: before rotation\n",
		"reopen: rotated file kept its line");
	has_str(out, "info: after rename, before reopen\n",
		"reopen: lines go to the old file until the reopen");
	ok(out && !strstr(out, "after reopen"),
	   "reopen: rotated file gets nothing after the reopen");
	free(out);

	/* A reopen that fails keeps writing to the file it had. */
	ok(rename(path, rotated) == 0 && mkdir(path, 0700) == 0,
	   "reopen: rotate again and block the path with a directory");
	rs_log_reopen();
	RS_LOG(RS_LOG_INFO, NULL, "still logging");
	out = slurp(rotated);
	has_str(out, "info: still logging\n",
		"reopen: failed reopen keeps the old file");
	has_str(out, "error: cannot reopen log file '",
		"reopen: failed reopen is logged to the old file");
	has_str(out, "resync.log': Is a directory\n",
		"reopen: the failure names the file and the reason");
	free(out);

	rs_log_shutdown();
	remove_tmpdir(&t);
}

static void test_bad_path(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char good[TEST_PATH_MAX], bad[TEST_PATH_MAX], want[TEST_PATH_MAX + 64];
	char *out;

	if (!ok(make_tmpdir(&t, "badpath") == 0, "bad path: make temp dir"))
		return;
	join(good, &t, "good.log");
	join(bad, &t, "missing/x.log");
	is_int(log_to_file(good, RS_LOG_TEXT, RS_LOG_INFO, &err), 0,
	       "bad path: set up a good file first");
	is_int(log_to_file(bad, RS_LOG_JSON, RS_LOG_DEBUG, &err), -1,
	       "bad path: set up fails");
	snprintf(want, sizeof(want),
		 "cannot open log file '%s': No such file or directory", bad);
	is_str(err.msg, want, "bad path: message names the file and reason");
	is_int(err.code, ENOENT, "bad path: errno recorded");
	is_int(rs_log_min_level, RS_LOG_INFO, "bad path: level unchanged");
	RS_LOG(RS_LOG_INFO, NULL, "kept");
	out = slurp(good);
	has_str(out, "resync-fcgi[", "bad path: previous target kept (text)");
	has_str(out, "info: kept\n",
		"bad path: line went to the previous file");
	free(out);

	rs_err_clear(&err);
	is_int(rs_log_setup(NULL, &err), -1, "bad options: NULL refused");
	{
		struct rs_log_options o = {
			.level = (enum rs_log_level)9,
			.target = RS_LOG_STDERR,
		};

		is_int(rs_log_setup(&o, &err), -1,
		       "bad options: level out of range refused");
		is_str(err.msg, "invalid log level 9",
		       "bad options: message names the level");
	}
	{
		struct rs_log_options o = { .target = RS_LOG_FILE };

		is_int(rs_log_setup(&o, &err), -1,
		       "bad options: file target without a path refused");
	}

	rs_log_shutdown();
	remove_tmpdir(&t);
}

static void test_shutdown_goes_to_stderr(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct tmpdir t;
	char path[TEST_PATH_MAX], cap[TEST_PATH_MAX];
	char *out;
	int saved;

	if (!ok(make_tmpdir(&t, "shutdown") == 0, "shutdown: make temp dir"))
		return;
	join(path, &t, "s.log");
	join(cap, &t, "stderr");
	log_to_file(path, RS_LOG_TEXT, RS_LOG_INFO, &err);
	RS_LOG(RS_LOG_INFO, NULL, "into the file");
	rs_log_shutdown();
	saved = capture_stderr(cap);
	errno = ENOENT;
	RS_LOG(RS_LOG_NOTICE, NULL, "after shutdown");
	is_int(errno, ENOENT, "errno is preserved across a log call");
	restore_stderr(saved);

	out = slurp(cap);
	has_str(out, "notice: after shutdown\n",
		"shutdown: lines go to stderr");
	free(out);
	out = slurp(path);
	ok(out && !strstr(out, "after shutdown"),
	   "shutdown: nothing more in the file");
	free(out);
	remove_tmpdir(&t);
}

static void test_syslog_setup(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_log_options o = {
		.level = RS_LOG_ERROR,
		.format = RS_LOG_TEXT,
		.target = RS_LOG_SYSLOG,
		.ident = "resync-test",
		.syslog_facility = LOG_USER,
	};

	/* Only the setup: a test has no business writing the system log. */
	is_int(rs_log_setup(&o, &err), 0, "syslog: set up");
	rs_log_shutdown();
}

struct worker {
	int id;
};

static void *worker_main(void *arg)
{
	const struct worker *w = arg;
	char pad[301];
	int i;

	/* Long lines make an interleaving visible if there were one. */
	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (i = 0; i < LINES_PER_THREAD; i++)
		RS_LOG(RS_LOG_INFO, "rid", "thread %d line %d %s end", w->id,
		       i, pad);
	return NULL;
}

static void test_threads(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct worker workers[N_THREADS];
	pthread_t tids[N_THREADS];
	int seen[N_THREADS] = { 0 };
	struct tmpdir t;
	char path[TEST_PATH_MAX];
	char *out, *line, *next;
	int i, bad = 0, started = 0;

	if (!ok(make_tmpdir(&t, "threads") == 0, "threads: make temp dir"))
		return;
	join(path, &t, "threads.log");
	log_to_file(path, RS_LOG_TEXT, RS_LOG_INFO, &err);
	for (i = 0; i < N_THREADS; i++) {
		workers[i].id = i;
		if (pthread_create(&tids[i], NULL, worker_main,
				   &workers[i]) == 0)
			started++;
	}
	is_int(started, N_THREADS, "threads: started");
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	rs_log_shutdown();

	out = slurp(path);
	is_int(count_lines(out), N_THREADS * LINES_PER_THREAD,
	       "threads: every line written");
	for (line = out; line && *line; line = next) {
		int id, n, off = 0;

		next = strchr(line, '\n');
		if (!next)
			break;
		*next++ = '\0';
		if (!is_timestamp(line) ||
		    !strstr(line, "]: info: [rid] thread ") ||
		    !ends_with(line, " end") ||
		    sscanf(strstr(line, "thread "), "thread %d line %d %n",
			   &id, &n, &off) != 2 ||
		    off == 0 || id < 0 || id >= N_THREADS) {
			bad++;
			continue;
		}
		seen[id]++;
	}
	is_int(bad, 0, "threads: every line complete, none interleaved");
	for (i = 0; i < N_THREADS; i++)
		is_int(seen[i], LINES_PER_THREAD,
		       "threads: all lines of a thread");
	free(out);
	remove_tmpdir(&t);
}

int main(void)
{
	umask(022);
	test_default_is_stderr_text_info();
	test_level_names();
	test_level_filtering();
	test_text_format();
	test_json_format();
	test_truncation();
	test_reopen_after_rename();
	test_bad_path();
	test_shutdown_goes_to_stderr();
	test_syslog_setup();
	test_threads();
	return tap_done();
}
