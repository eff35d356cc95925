/*
 * log: the one logging module of libresync and resync-fcgi.
 *
 * Lines go to stderr, a file, or syslog, as plain text or as JSON lines.
 * RS_LOG below the active level costs one comparison: the macro tests the
 * level before the arguments are evaluated (as redis' serverLog).  Every
 * call is thread-safe; one line is written with one write(2) so lines from
 * several threads never interleave.  A line longer than 8 KiB is cut and
 * ends in "..." (a JSON line stays a valid object).  rs_log_reopen() is
 * what a SIGUSR1 handler asks for (it is async-signal-safe only in that it
 * sets a flag: the file is reopened by the next rs_log_write call).
 *
 * Messages for a CLI user are not log lines: resyncctl prints those itself.
 */
#ifndef RS_LOG_H
#define RS_LOG_H

#include "err.h"

enum rs_log_level {
	RS_LOG_DEBUG,
	RS_LOG_INFO,
	RS_LOG_NOTICE,
	RS_LOG_WARNING,
	RS_LOG_ERROR,
};

enum rs_log_format { RS_LOG_TEXT, RS_LOG_JSON };

enum rs_log_target { RS_LOG_STDERR, RS_LOG_FILE, RS_LOG_SYSLOG };

struct rs_log_options {
	enum rs_log_level level;
	enum rs_log_format format;
	enum rs_log_target target;
	const char *path;       /* RS_LOG_FILE: file to append to */
	const char *ident;      /* program name in lines and syslog; NULL =
				   "resync"; cut to 63 bytes */
	int syslog_facility;    /* LOG_DAEMON, LOG_LOCAL0 ... (syslog.h);
				   0 = LOG_USER */
};

/* Configure the process-wide logger.  Before the first call lines go to
 * stderr as text at level info.  Returns 0, or -1 with err set when the
 * file cannot be opened (the previous target is then kept). */
int rs_log_setup(const struct rs_log_options *opt, struct rs_err *err);

/* Close the file / syslog connection; later lines go to stderr in the
 * same format and at the same level.  (The file's descriptor number is
 * kept, pointing at stderr, so a thread logging at that moment never
 * writes into a descriptor the process reuses.) */
void rs_log_shutdown(void);

/* Ask for the log file to be reopened (logrotate); safe in a signal
 * handler. */
void rs_log_reopen(void);

/* The active level; set by rs_log_setup, read by RS_LOG. */
extern volatile int rs_log_min_level;

/* Name <-> level, for config and the CLI: "debug", "info", "notice",
 * "warning" (or "warn"), "error".  rs_log_level_parse returns -1 for an
 * unknown name; rs_log_level_name returns "unknown" for a bad level. */
int rs_log_level_parse(const char *name);

/* A syslog facility by the name the schema allows ("authpriv",
 * "local0", ...); LOG_DAEMON for anything else. */
int rs_log_facility(const char *name);
const char *rs_log_level_name(enum rs_log_level level);

/* One log line.  `rid` is the request id (may be NULL): text lines show it
 * as "[rid]", JSON lines as "request_id".  errno is preserved.  Prefer the
 * RS_LOG macro. */
void rs_log_write(enum rs_log_level level, const char *rid, const char *fmt,
		  ...) RS_PRINTF(3, 4);

#define RS_LOG(level, rid, ...)                                    \
	do {                                                       \
		if ((int)(level) >= rs_log_min_level)              \
			rs_log_write((level), (rid), __VA_ARGS__); \
	} while (0)

#endif
