/*
 * test_breaker: the circuit breaker state machine on a driven clock (every
 * transition of every window type, thresholds at and just below their
 * limits, half-open permits, commands, restore, the event queue, threads),
 * its options from the configuration, and its tables in a temp database.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "db.h"
#include "tap.h"
#include "test_confutil.h"
#include "testsql.h"
#include "util.h"

#define T0 1000000          /* a monotonic start far from 0 */
#define OPEN_MS 30000
#define ACTOR "alice via resyncctl"

#define S RS_BREAKER_SUCCESS
#define F RS_BREAKER_FAILURE
#define I RS_BREAKER_IGNORED

/* ---- helpers ----------------------------------------------------------------- */

static struct rs_breaker_options opts(enum rs_breaker_window w)
{
	struct rs_breaker_options o;

	rs_breaker_options_default(&o, "hwa");
	o.window = w;
	o.open_ms = OPEN_MS;
	return o;
}

static struct rs_breaker *mk(const struct rs_breaker_options *o)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker *b = NULL;

	if (rs_breaker_new(&b, o, &err)) {
		printf("# rs_breaker_new: %s\n", err.msg);
		exit(2);
	}
	return b;
}

static enum rs_breaker_state state(struct rs_breaker *b, int64_t now)
{
	struct rs_breaker_info in;

	rs_breaker_info(b, now, &in);
	return in.state;
}

static struct rs_breaker_info info(struct rs_breaker *b, int64_t now)
{
	struct rs_breaker_info in;

	rs_breaker_info(b, now, &in);
	return in;
}

/* A call through the breaker: acquire, then record when let through. */
static bool call(struct rs_breaker *b, int64_t now, enum rs_breaker_outcome out,
		 int64_t dur)
{
	if (!rs_breaker_acquire(b, now, NULL))
		return false;
	rs_breaker_record(b, now, out, dur);
	return true;
}

static void calls(struct rs_breaker *b, int64_t now, enum rs_breaker_outcome out,
		  int n)
{
	for (int i = 0; i < n; i++)
		call(b, now, out, 1);
}

#define is_state(b, now, want, name)                                              \
	do {                                                                      \
		enum rs_breaker_state g__ = state((b), (now));                    \
		if (!ok(g__ == (want), name))                                     \
			printf("#   expected %s, got %s\n",                       \
			       rs_breaker_state_name(want), rs_breaker_state_name(g__)); \
	} while (0)

/* The queued events, which are taken. */
static size_t events(struct rs_breaker *b, struct rs_breaker_event *ev)
{
	return rs_breaker_take_events(b, ev, RS_BREAKER_EVENT_QUEUE);
}

/* ---- names, options ------------------------------------------------------------ */

static void test_names(void)
{
	enum rs_breaker_state s;
	enum rs_breaker_command c;

	is_str(rs_breaker_state_name(RS_BREAKER_HALF_OPEN), "half_open", "state name half_open");
	is_str(rs_breaker_state_name(RS_BREAKER_FORCED_OPEN), "forced_open", "state name forced_open");
	ok(rs_breaker_state_parse("disabled", &s) == 0 && s == RS_BREAKER_DISABLED,
	   "state parse disabled");
	ok(rs_breaker_state_parse("Open", &s) < 0, "state parse is exact");
	ok(rs_breaker_state_parse(NULL, &s) < 0, "state parse of NULL fails");
	is_str(rs_breaker_command_name(RS_BREAKER_CMD_DISABLE), "disable", "command name");
	ok(rs_breaker_command_parse("reset", &c) == 0 && c == RS_BREAKER_CMD_RESET,
	   "command parse reset");
	ok(rs_breaker_command_parse("none", &c) < 0, "'none' is no command");
	is_str(rs_call_error_name(RS_CALL_TIMEOUT), "timeout", "call error name");
	is_str(rs_call_error_name(RS_CALL_EXHAUSTED), "exhausted", "call error exhausted");
}

static void test_defaults(void)
{
	struct rs_breaker_options o;
	struct rs_err err = RS_ERR_INIT;

	rs_breaker_options_default(&o, "hwa");
	is_str(o.name, "hwa", "default: name");
	ok(o.window == RS_BREAKER_CONSECUTIVE, "default: window consecutive");
	is_int(o.fail_max, 5, "default: fail_max 5");
	is_int(o.window_size, 100, "default: window_size 100");
	is_int(o.window_ms, 60000, "default: window_duration 60s");
	is_int(o.failure_rate_pct, 50, "default: failure rate 50%");
	is_int(o.slow_call_ms, 0, "default: slow calls off");
	is_int(o.slow_call_rate_pct, 100, "default: slow-call rate 100%");
	is_int(o.minimum_calls, 10, "default: minimum_calls 10");
	is_int(o.open_ms, 60000, "default: open_duration 60s");
	is_int(o.half_open_calls, 1, "default: one trial call");
	is_int(o.max_wait_half_open_ms, 0, "default: wait for the trials");
	ok(o.nexclude_status == 0 && !o.exclude_class && !o.exclude_errors,
	   "default: nothing excluded");
	ok(rs_breaker_options_from_conf(&o, "up", NULL, &err) == 0 &&
	   strcmp(o.name, "up") == 0 && o.fail_max == 5,
	   "from_conf without a section: the defaults under the name");
}

static void test_from_conf(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker_options o;
	struct rs_diags d;
	struct rs_config *cfg;
	const struct rs_conf_section *sec;

	cfg = load("b.conf",
		   "[upstream hwa]\nurl = https://hwa.example.com\n"
		   "[breaker jobs]\nupstream = hwa\nwindow = time\n"
		   "window_duration = 30s\nfailure_rate_threshold = 40\n"
		   "slow_call_duration = 2s\nslow_call_rate_threshold = 80\n"
		   "minimum_calls = 7\nopen_duration = 90s\nhalf_open_calls = 3\n"
		   "max_wait_in_half_open = 10s\nwindow_size = 50\nfail_max = 9\n"
		   "exclude = 503, 4xx, timeout\n"
		   "[breaker lots]\nupstream = hwa\n"
		   "exclude = 500,501,502,503,504,505,506,507,508,509,510,511,512,513,514,515,516\n",
		   NULL, NULL, false, &d);
	is_int(d.errors, 0, "from_conf: the configuration loads clean");
	ok(!find_diag(&d, "exclude"), "from_conf: the exclude items pass the schema");
	if (d.n)
		dump_diags(&d);
	sec = rs_config_find(cfg, "breaker", "jobs");
	is_int(rs_breaker_options_from_conf(&o, "jobs", sec, &err), 0, "from_conf: ok");
	ok(o.window == RS_BREAKER_TIME, "from_conf: window = time (enum index)");
	is_int(o.window_ms, 30000, "from_conf: window_duration in ms");
	is_int(o.failure_rate_pct, 40, "from_conf: failure rate");
	is_int(o.slow_call_ms, 2000, "from_conf: slow_call_duration");
	is_int(o.slow_call_rate_pct, 80, "from_conf: slow-call rate");
	is_int(o.minimum_calls, 7, "from_conf: minimum_calls");
	is_int(o.open_ms, 90000, "from_conf: open_duration");
	is_int(o.half_open_calls, 3, "from_conf: half_open_calls");
	is_int(o.max_wait_half_open_ms, 10000, "from_conf: max_wait_in_half_open");
	is_int(o.window_size, 50, "from_conf: window_size");
	is_int(o.fail_max, 9, "from_conf: fail_max");
	ok(o.nexclude_status == 1 && o.exclude_status[0] == 503, "from_conf: exclude 503");
	ok(o.exclude_class == (1u << 4), "from_conf: exclude 4xx");
	ok(o.exclude_errors == (1u << RS_CALL_TIMEOUT), "from_conf: exclude timeout");

	sec = rs_config_find(cfg, "breaker", "lots");
	is_int(rs_breaker_options_from_conf(&o, "lots", sec, &err), -1,
	       "from_conf: 17 status codes refused");
	has_str(err.msg, "[breaker lots] exclude: '516' is one status code too many (at most 16)",
		"from_conf: the error names the section and item");
	rs_config_free(cfg);
	rs_diags_free(&d);
}

static void test_exclude_add(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker_options o;

	rs_breaker_options_default(&o, "x");
	ok(rs_breaker_exclude_add(&o, "404", &err) == 0 && o.nexclude_status == 1,
	   "exclude: a status");
	ok(rs_breaker_exclude_add(&o, "5xx", &err) == 0 && o.exclude_class == 1u << 5,
	   "exclude: a class");
	ok(rs_breaker_exclude_add(&o, "connect", &err) == 0 &&
	   o.exclude_errors == 1u << RS_CALL_CONNECT, "exclude: an error kind");
	is_int(rs_breaker_exclude_add(&o, "exhausted", &err), -1,
	       "exclude: exhausted is never counted anyway, so not an item");
	is_int(rs_breaker_exclude_add(&o, "600", &err), -1, "exclude: 600 refused");
	is_int(rs_breaker_exclude_add(&o, "6xx", &err), -1, "exclude: 6xx refused");
	is_int(rs_breaker_exclude_add(&o, "50", &err), -1, "exclude: 50 refused");
	has_str(err.msg, "'50' is not a status code (503), a class (5xx)", "exclude: error names the item");
}

static void test_new_refuses(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_COUNT);
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker *b;

	o.window_size = 0;
	is_int(rs_breaker_new(&b, &o, &err), -1, "new: window_size 0 refused");
	has_str(err.msg, "breaker 'hwa': window_size must be at least 1", "new: says why");
	ok(b == NULL, "new: *out NULL on failure");
	o = opts(RS_BREAKER_TIME);
	o.window_ms = 999;
	is_int(rs_breaker_new(&b, &o, &err), -1, "new: a sub-second time window refused");
	o = opts(RS_BREAKER_CONSECUTIVE);
	o.name[0] = '\0';
	is_int(rs_breaker_new(&b, &o, &err), -1, "new: a nameless breaker refused");
}

/* ---- classify -------------------------------------------------------------------- */

static void test_classify(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_CONSECUTIVE);
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker *b = mk(&o), *x;

	ok(rs_breaker_classify(b, 500, RS_CALL_OK) == F, "classify: 500 fails");
	ok(rs_breaker_classify(b, 503, RS_CALL_OK) == F, "classify: 503 fails");
	ok(rs_breaker_classify(b, 599, RS_CALL_OK) == F, "classify: 599 fails");
	ok(rs_breaker_classify(b, 429, RS_CALL_OK) == F, "classify: 429 fails");
	ok(rs_breaker_classify(b, 404, RS_CALL_OK) == S, "classify: 404 succeeds");
	ok(rs_breaker_classify(b, 400, RS_CALL_OK) == S, "classify: 400 succeeds");
	ok(rs_breaker_classify(b, 200, RS_CALL_OK) == S, "classify: 200 succeeds");
	ok(rs_breaker_classify(b, 304, RS_CALL_OK) == S, "classify: 304 succeeds");
	for (enum rs_call_error e = RS_CALL_CONNECT; e <= RS_CALL_PARTIAL; e++) {
		char name[64];

		snprintf(name, sizeof(name), "classify: transport error %s fails",
			 rs_call_error_name(e));
		ok(rs_breaker_classify(b, 0, e) == F, name);
	}
	ok(rs_breaker_classify(b, 0, RS_CALL_EXHAUSTED) == I,
	   "classify: RS_CALL_EXHAUSTED is IGNORED");

	rs_breaker_exclude_add(&o, "503", &err);
	rs_breaker_exclude_add(&o, "4xx", &err);
	rs_breaker_exclude_add(&o, "timeout", &err);
	x = mk(&o);
	ok(rs_breaker_classify(x, 503, RS_CALL_OK) == I, "classify: excluded 503 ignored");
	ok(rs_breaker_classify(x, 502, RS_CALL_OK) == F, "classify: 502 still fails");
	ok(rs_breaker_classify(x, 404, RS_CALL_OK) == I, "classify: 4xx class ignored");
	ok(rs_breaker_classify(x, 429, RS_CALL_OK) == I, "classify: 429 in 4xx ignored");
	ok(rs_breaker_classify(x, 0, RS_CALL_TIMEOUT) == I, "classify: excluded timeout ignored");
	ok(rs_breaker_classify(x, 0, RS_CALL_CONNECT) == F, "classify: connect still fails");
	rs_breaker_free(x);
	rs_breaker_free(b);
}

/* ---- windows ---------------------------------------------------------------------- */

static void test_consecutive(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_CONSECUTIVE);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker_info in;
	struct rs_breaker *b;
	int64_t retry = -1, t = T0;

	o.fail_max = 3;
	b = mk(&o);
	calls(b, t, F, 2);
	call(b, t, S, 1);
	is_int(info(b, t).consecutive_failures, 0, "consecutive: a success resets the count");
	calls(b, t, F, 2);
	is_state(b, t, RS_BREAKER_CLOSED, "consecutive: fail_max - 1 failures: closed");
	is_int(info(b, t).consecutive_failures, 2, "consecutive: count 2");
	is_int(events(b, ev), 0, "consecutive: no event yet");
	call(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "consecutive: fail_max failures open it");
	ok(events(b, ev) == 1 && ev[0].from == RS_BREAKER_CLOSED && ev[0].to == RS_BREAKER_OPEN,
	   "consecutive: closed -> open event");
	is_str(ev[0].reason, "3 consecutive failures", "consecutive: the reason");
	is_str(ev[0].actor, "", "consecutive: the breaker itself is the actor");
	is_str(ev[0].name, "hwa", "consecutive: event names the breaker");
	ok(ev[0].time_ms > 1700000000000LL, "consecutive: event time is wall-clock");

	ok(!rs_breaker_acquire(b, t + 1000, &retry), "open: a call is refused");
	is_int(retry, OPEN_MS - 1000, "open: retry_after is the open time left");
	is_int(info(b, t + 1000).retry_after_ms, OPEN_MS - 1000, "open: info's retry_after");
	ok(!rs_breaker_acquire(b, t + OPEN_MS - 1, &retry) && retry == 1,
	   "open: still refused 1 ms before open_duration");
	ok(rs_breaker_acquire(b, t + OPEN_MS, &retry) && retry == 0,
	   "open: a trial call goes at open_duration");
	is_state(b, t + OPEN_MS, RS_BREAKER_HALF_OPEN, "open -> half_open");
	ok(!rs_breaker_acquire(b, t + OPEN_MS, NULL), "half_open: a second caller is refused");
	rs_breaker_record(b, t + OPEN_MS, S, 5);
	is_state(b, t + OPEN_MS, RS_BREAKER_CLOSED, "half_open -> closed on a good trial");
	in = info(b, t + OPEN_MS);
	is_int(in.consecutive_failures, 0, "closed again: the count starts over");
	ok(in.opened == 1 && in.half_opened == 1 && in.closed == 1,
	   "transition counters: one of each");
	is_int(in.rejected, 3, "rejected: the three refused calls");
	is_int(in.calls, 7, "calls: every call that ended");
	ok(in.failures == 5 && in.successes == 2, "failures and successes counted");
	ok(events(b, ev) == 2 && ev[0].to == RS_BREAKER_HALF_OPEN && ev[1].to == RS_BREAKER_CLOSED,
	   "events: open -> half_open -> closed, oldest first");
	is_str(ev[0].reason, "open_duration 30s passed", "half_open reason");
	is_str(ev[1].reason, "1 of 1 trial calls succeeded", "closed reason");

	/* Open again, and a failed trial reopens it for a full open_duration. */
	t += 100000;
	calls(b, t, F, 3);
	ok(rs_breaker_acquire(b, t + OPEN_MS, NULL), "reopen: trial admitted");
	rs_breaker_record(b, t + OPEN_MS, F, 5);
	is_state(b, t + OPEN_MS, RS_BREAKER_OPEN, "half_open -> open on a failed trial");
	ok(!rs_breaker_acquire(b, t + 2 * OPEN_MS - 1, &retry) && retry == 1,
	   "reopened: a full open_duration from the failed trial");
	events(b, ev);
	rs_breaker_free(b);
}

static void test_count_window(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_COUNT);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker *b;
	int64_t t = T0;

	o.window_size = 10;
	o.minimum_calls = 10;
	o.failure_rate_pct = 50;
	b = mk(&o);
	calls(b, t, F, 9);
	is_state(b, t, RS_BREAKER_CLOSED, "count: 9 failures < minimum_calls 10: closed");
	is_int(info(b, t).window_calls, 9, "count: window holds 9");
	rs_breaker_free(b);

	/* Exactly at the threshold: 5 of 10. */
	b = mk(&o);
	calls(b, t, S, 5);
	calls(b, t, F, 4);
	is_state(b, t, RS_BREAKER_CLOSED, "count: 4 of 9: closed");
	calls(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "count: 5 of 10 = 50% >= 50% opens");
	ok(events(b, ev) == 1, "count: one event");
	is_str(ev[0].reason, "failure rate 50% >= 50% over 10 calls", "count: reason");
	rs_breaker_free(b);

	/* Just below, and the ring sliding. */
	b = mk(&o);
	calls(b, t, F, 4);
	calls(b, t, S, 6);
	is_state(b, t, RS_BREAKER_CLOSED, "count: 4 of 10 = 40% < 50%: closed");
	calls(b, t, S, 4);
	ok(info(b, t).window_calls == 10 && info(b, t).window_failures == 0,
	   "count: the oldest calls slide out of the ring");
	calls(b, t, F, 4);
	is_state(b, t, RS_BREAKER_CLOSED, "count: 4 failures of the last 10: closed");
	calls(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "count: the 5th failure of the last 10 opens");
	calls(b, t, I, 1);
	ok(rs_breaker_acquire(b, t + OPEN_MS, NULL), "count: trial admitted");
	rs_breaker_record(b, t + OPEN_MS, S, 1);
	is_state(b, t + OPEN_MS, RS_BREAKER_CLOSED, "count: closed after the trial");
	is_int(info(b, t + OPEN_MS).window_calls, 0, "count: closing from half_open starts a new window");
	rs_breaker_free(b);

	/* A window smaller than minimum_calls judges once full. */
	o.window_size = 4;
	o.minimum_calls = 100;
	b = mk(&o);
	calls(b, t, F, 3);
	is_state(b, t, RS_BREAKER_CLOSED, "count: 3 in a window of 4: closed");
	calls(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "count: minimum_calls capped at window_size");
	rs_breaker_free(b);

	/* IGNORED outcomes do not enter the window. */
	o.window_size = 10;
	o.minimum_calls = 2;
	b = mk(&o);
	calls(b, t, I, 20);
	ok(info(b, t).window_calls == 0 && info(b, t).ignored == 20,
	   "count: ignored calls are counted but not windowed");
	calls(b, t, S, 1);
	calls(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "count: minimum_calls 2: 1 of 2 opens");
	rs_breaker_free(b);
}

static void test_time_window(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_TIME);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker *b;
	int64_t t = T0;

	o.window_ms = 10000;
	o.minimum_calls = 4;
	o.failure_rate_pct = 50;
	b = mk(&o);
	calls(b, t, F, 3);
	is_state(b, t, RS_BREAKER_CLOSED, "time: 3 failures < minimum_calls 4: closed");
	is_int(info(b, t + 9999).window_calls, 3, "time: still in the window at 9.999s");
	is_int(info(b, t + 10000).window_calls, 0, "time: gone after window_duration");
	calls(b, t + 10000, F, 1);
	is_state(b, t + 10000, RS_BREAKER_CLOSED, "time: expired failures do not count");

	/* Seconds expire one by one. */
	t += 20000;
	calls(b, t, S, 2);
	calls(b, t + 5000, S, 1);
	calls(b, t + 5000, F, 1);
	is_int(info(b, t + 9999).window_calls, 4, "time: 4 calls over two seconds");
	is_int(info(b, t + 10000).window_calls, 2, "time: the first second left, the sixth stays");
	is_state(b, t + 10000, RS_BREAKER_CLOSED, "time: 1 of 2 under minimum: closed");
	calls(b, t + 10000, S, 2);
	is_state(b, t + 10000, RS_BREAKER_CLOSED, "time: 1 of 4 = 25% < 50%: closed");
	calls(b, t + 10000, F, 1);
	is_state(b, t + 10000, RS_BREAKER_CLOSED, "time: 2 of 5 = 40% < 50%: closed");
	calls(b, t + 10000, F, 1);
	is_state(b, t + 10000, RS_BREAKER_OPEN, "time: 3 of 6 = 50% opens");
	ok(events(b, ev) == 1, "time: one event");
	is_str(ev[0].reason, "failure rate 50% >= 50% over 6 calls", "time: reason");

	/* Half-open and back, on the same clock. */
	ok(!rs_breaker_acquire(b, t + 10000 + OPEN_MS - 1, NULL), "time: open refuses");
	ok(rs_breaker_acquire(b, t + 10000 + OPEN_MS, NULL), "time: trial admitted");
	rs_breaker_record(b, t + 10000 + OPEN_MS, S, 1);
	is_state(b, t + 10000 + OPEN_MS, RS_BREAKER_CLOSED, "time: closed after the trial");
	is_int(info(b, t + 10000 + OPEN_MS).window_calls, 0, "time: a new window");

	/* A clock read a little earlier on another thread counts as now. */
	t += 100000;
	calls(b, t, S, 1);
	calls(b, t - 3000, S, 1);
	is_int(info(b, t).window_calls, 2, "time: an earlier time counts in the head second");
	rs_breaker_free(b);
}

static void test_slow_calls(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_COUNT);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker *b;
	int64_t t = T0;

	o.window_size = 10;
	o.minimum_calls = 10;
	o.failure_rate_pct = 100;
	o.slow_call_ms = 1000;
	o.slow_call_rate_pct = 50;
	b = mk(&o);
	for (int i = 0; i < 10; i++)
		call(b, t, S, 1000);
	ok(info(b, t).slow == 0 && state(b, t) == RS_BREAKER_CLOSED,
	   "slow: exactly slow_call_duration is not slow");
	for (int i = 0; i < 4; i++)
		call(b, t, S, 1001);
	ok(info(b, t).window_slow == 4 && state(b, t) == RS_BREAKER_CLOSED,
	   "slow: 4 of 10 slow = 40% < 50%: closed");
	call(b, t, S, 1001);
	is_state(b, t, RS_BREAKER_OPEN, "slow: 5 of 10 slow = 50% opens");
	ok(events(b, ev) == 1, "slow: one event");
	is_str(ev[0].reason, "slow-call rate 50% >= 50% over 10 calls", "slow: reason");
	is_int(info(b, t).slow, 5, "slow: counted in the totals");

	/* In half-open a slow trial fails. */
	ok(rs_breaker_acquire(b, t + OPEN_MS, NULL), "slow: trial admitted");
	rs_breaker_record(b, t + OPEN_MS, S, 1500);
	is_state(b, t + OPEN_MS, RS_BREAKER_OPEN, "slow: a slow trial reopens");
	ok(events(b, ev) == 2, "slow: half_open and open events");
	is_str(ev[1].reason, "trial call slow (1500 ms > 1000 ms)", "slow: trial reason");
	rs_breaker_free(b);

	/* Off, slow calls are not even counted. */
	o.slow_call_ms = 0;
	b = mk(&o);
	calls(b, t, S, 1);
	call(b, t, S, 999999);
	is_int(info(b, t).slow, 0, "slow: slow_call_duration 0 turns it off");
	rs_breaker_free(b);
}

/* ---- half-open ------------------------------------------------------------------------ */

/* A breaker of `permits` trial calls, opened at T0 and due at T0 + OPEN_MS. */
static struct rs_breaker *opened(unsigned permits, int64_t max_wait)
{
	struct rs_breaker_options o = opts(RS_BREAKER_CONSECUTIVE);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker *b;

	o.fail_max = 1;
	o.half_open_calls = permits;
	o.max_wait_half_open_ms = max_wait;
	b = mk(&o);
	call(b, T0, F, 1);
	events(b, ev);
	return b;
}

static void test_half_open_permits(void)
{
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	int64_t t = T0 + OPEN_MS, retry = -1;
	struct rs_breaker *b = opened(3, 0);
	uint64_t rejected;

	ok(rs_breaker_acquire(b, t, NULL) && rs_breaker_acquire(b, t, NULL) &&
	   rs_breaker_acquire(b, t, NULL), "half_open: 3 permits handed out");
	rejected = info(b, t).rejected;
	ok(!rs_breaker_acquire(b, t, &retry), "half_open: a 4th caller is refused while they run");
	is_int(retry, 0, "half_open: refused with retry_after 0 (unknown)");
	is_int(info(b, t).rejected, rejected + 1, "half_open: the refusal is counted");
	rs_breaker_record(b, t, I, 1);
	ok(rs_breaker_acquire(b, t, NULL), "half_open: an ignored trial hands its permit back");
	ok(!rs_breaker_acquire(b, t, NULL), "half_open: only the one handed back");
	rs_breaker_record(b, t, S, 1);
	rs_breaker_record(b, t, S, 1);
	is_state(b, t, RS_BREAKER_HALF_OPEN, "half_open: 2 of 3 successes: still half_open");
	ok(!rs_breaker_acquire(b, t, NULL), "half_open: no new permit after successes");
	rs_breaker_record(b, t, S, 1);
	is_state(b, t, RS_BREAKER_CLOSED, "half_open: all 3 trials succeeded: closed");
	ok(events(b, ev) == 2, "half_open: two events");
	is_str(ev[1].reason, "3 of 3 trial calls succeeded", "half_open: reason");
	rs_breaker_free(b);

	b = opened(3, 0);
	ok(rs_breaker_acquire(b, t, NULL) && rs_breaker_acquire(b, t, NULL),
	   "half_open: 2 trials out");
	rs_breaker_record(b, t, S, 1);
	rs_breaker_record(b, t, F, 1);
	is_state(b, t, RS_BREAKER_OPEN, "half_open: any failed trial reopens");
	ok(events(b, ev) == 2, "half_open: events to half_open and back");
	is_str(ev[1].reason, "trial call failed", "half_open: failure reason");
	rs_breaker_free(b);

	/* A call admitted before it opened ends during half-open. */
	b = opened(2, 0);
	rs_breaker_acquire(b, t, NULL);
	rs_breaker_record(b, t, S, 1);
	rs_breaker_record(b, t, F, 1);   /* no permit out: from before */
	is_state(b, t, RS_BREAKER_HALF_OPEN, "half_open: an outcome with no permit out changes nothing");
	rs_breaker_free(b);
}

static void test_max_wait(void)
{
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	int64_t t = T0 + OPEN_MS;
	struct rs_breaker *b = opened(2, 5000);

	ok(rs_breaker_acquire(b, t, NULL), "max_wait: one trial out");
	rs_breaker_record(b, t + 100, S, 1);
	is_state(b, t + 4999, RS_BREAKER_HALF_OPEN, "max_wait: half_open until the wait is over");
	is_state(b, t + 5000, RS_BREAKER_OPEN, "max_wait: trials unfinished at the wait: open");
	ok(events(b, ev) == 2 && ev[1].from == RS_BREAKER_HALF_OPEN, "max_wait: event");
	is_str(ev[1].reason, "1 of 2 trial calls succeeded within max_wait_in_half_open 5s",
	       "max_wait: reason");
	ok(!rs_breaker_acquire(b, t + 5000 + OPEN_MS - 1, NULL),
	   "max_wait: open for a full open_duration");
	rs_breaker_free(b);

	b = opened(1, 0);
	ok(rs_breaker_acquire(b, t, NULL), "no max_wait: one trial out");
	is_state(b, t + 3600000, RS_BREAKER_HALF_OPEN, "no max_wait: waits for the trial");
	rs_breaker_free(b);
}

/* ---- operators, restore, events -------------------------------------------------------- */

static void test_commands(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_COUNT);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker_info in;
	struct rs_breaker *b;
	int64_t t = T0, retry = -1;

	o.window_size = 10;
	o.minimum_calls = 10;
	b = mk(&o);
	calls(b, t, F, 3);
	calls(b, t, S, 2);
	rs_breaker_command(b, RS_BREAKER_CMD_OPEN, ACTOR, t);
	is_state(b, t, RS_BREAKER_FORCED_OPEN, "command open: forced_open");
	ok(!rs_breaker_acquire(b, t + 10 * OPEN_MS, &retry) && retry == 0,
	   "forced_open: refused forever, retry_after 0");
	ok(events(b, ev) == 1 && ev[0].to == RS_BREAKER_FORCED_OPEN, "command open: event");
	is_str(ev[0].actor, ACTOR, "command open: event has the actor");
	is_str(ev[0].reason, "operator command 'open'", "command open: reason");

	rs_breaker_command(b, RS_BREAKER_CMD_CLOSE, ACTOR, t);
	in = info(b, t);
	ok(in.state == RS_BREAKER_CLOSED && in.window_calls == 5 && in.window_failures == 3,
	   "command close: closed, the window kept");
	ok(events(b, ev) == 1 && ev[0].from == RS_BREAKER_FORCED_OPEN &&
	   ev[0].to == RS_BREAKER_CLOSED, "command close: event");

	rs_breaker_command(b, RS_BREAKER_CMD_DISABLE, ACTOR, t);
	is_state(b, t, RS_BREAKER_DISABLED, "command disable: disabled");
	in = info(b, t);
	calls(b, t, F, 50);
	ok(info(b, t).calls == in.calls && info(b, t).window_calls == in.window_calls,
	   "disabled: every call goes, nothing recorded");
	is_state(b, t, RS_BREAKER_DISABLED, "disabled: failures do not open it");
	events(b, ev);

	rs_breaker_command(b, RS_BREAKER_CMD_RESET, "bob via resyncctl", t);
	in = info(b, t);
	ok(in.state == RS_BREAKER_CLOSED && in.window_calls == 0 && in.calls == 0 &&
	   in.failures == 0 && in.rejected == 0, "command reset: closed, window and counters cleared");
	is_int(in.closed, 1, "command reset: the transition to closed counted after the clear");
	ok(events(b, ev) == 1 && ev[0].from == RS_BREAKER_DISABLED, "command reset: event");
	is_str(ev[0].actor, "bob via resyncctl", "command reset: actor");

	rs_breaker_command(b, RS_BREAKER_CMD_CLOSE, ACTOR, t);
	ok(events(b, ev) == 1 && ev[0].from == RS_BREAKER_CLOSED && ev[0].to == RS_BREAKER_CLOSED,
	   "a command that changes nothing is still an event (the audit)");
	is_int(info(b, t).closed, 1, "... but not a transition");
	rs_breaker_command(b, RS_BREAKER_CMD_NONE, ACTOR, t);
	is_int(events(b, ev), 0, "RS_BREAKER_CMD_NONE does nothing");

	/* Closing an open breaker by hand. */
	calls(b, t, F, 10);
	is_state(b, t, RS_BREAKER_OPEN, "open again");
	rs_breaker_command(b, RS_BREAKER_CMD_CLOSE, ACTOR, t);
	ok(rs_breaker_acquire(b, t, NULL), "command close on open: calls go at once");
	rs_breaker_free(b);
}

static void test_restore(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_CONSECUTIVE);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	struct rs_breaker_info in;
	struct rs_breaker *b = mk(&o);
	int64_t t = T0, since = rs_now_ms() - 20000, retry = -1;

	rs_breaker_restore(b, RS_BREAKER_OPEN, since, t);
	in = info(b, t);
	ok(in.state == RS_BREAKER_OPEN, "restore: open");
	ok(in.retry_after_ms <= OPEN_MS - 20000 && in.retry_after_ms > OPEN_MS - 20000 - 1000,
	   "restore: open keeps its remaining time");
	if (in.retry_after_ms > OPEN_MS - 20000 || in.retry_after_ms <= OPEN_MS - 21000)
		printf("#   retry_after_ms %lld\n", (long long)in.retry_after_ms);
	is_int(in.state_since_ms, since, "restore: since is the saved wall time");
	is_int(events(b, ev), 0, "restore: no event");
	is_int(in.opened, 0, "restore: not a transition");
	ok(!rs_breaker_acquire(b, t + 9000, &retry) && retry > 0, "restore: refused");
	ok(rs_breaker_acquire(b, t + OPEN_MS - 20000, NULL), "restore: trials when the time is up");
	rs_breaker_free(b);

	b = mk(&o);
	rs_breaker_restore(b, RS_BREAKER_OPEN, rs_now_ms() - 10 * OPEN_MS, t);
	ok(rs_breaker_acquire(b, t, NULL), "restore: long open: a trial at once");
	is_state(b, t, RS_BREAKER_HALF_OPEN, "restore: long open: half_open");
	rs_breaker_free(b);

	b = mk(&o);
	rs_breaker_restore(b, RS_BREAKER_OPEN, rs_now_ms() + 3600000, t);
	is_int(info(b, t).retry_after_ms, OPEN_MS,
	       "restore: a since in the future gives the full open_duration, no more");
	rs_breaker_free(b);

	b = mk(&o);
	rs_breaker_restore(b, RS_BREAKER_FORCED_OPEN, rs_now_ms(), t);
	ok(!rs_breaker_acquire(b, t + 10 * OPEN_MS, NULL), "restore: forced_open stays");
	rs_breaker_restore(b, RS_BREAKER_DISABLED, rs_now_ms(), t);
	is_state(b, t, RS_BREAKER_DISABLED, "restore: disabled");
	rs_breaker_restore(b, RS_BREAKER_HALF_OPEN, rs_now_ms(), t);
	ok(rs_breaker_acquire(b, t, NULL) && !rs_breaker_acquire(b, t, NULL),
	   "restore: half_open with fresh permits");
	is_int(events(b, ev), 0, "restore: never an event");
	rs_breaker_free(b);
}

static void test_event_queue(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_CONSECUTIVE);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE + 8];
	struct rs_breaker *b = mk(&o);
	char actor[32];
	size_t n;

	for (int i = 0; i < RS_BREAKER_EVENT_QUEUE + 36; i++) {
		snprintf(actor, sizeof(actor), "op%d", i);
		rs_breaker_command(b, i % 2 ? RS_BREAKER_CMD_CLOSE : RS_BREAKER_CMD_OPEN,
				   actor, T0);
	}
	is_int(info(b, T0).events_dropped, 36, "queue: overflow drops are counted");
	n = rs_breaker_take_events(b, ev, 10);
	is_int(n, 10, "queue: take at most max");
	is_str(ev[0].actor, "op36", "queue: the oldest were dropped, the oldest kept comes first");
	n = rs_breaker_take_events(b, ev, RS_BREAKER_EVENT_QUEUE + 8);
	is_int(n, RS_BREAKER_EVENT_QUEUE - 10, "queue: the rest");
	is_str(ev[n - 1].actor, "op99", "queue: the newest last");
	is_int(rs_breaker_take_events(b, ev, 8), 0, "queue: empty after taking");
	rs_breaker_free(b);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 100000

struct worker {
	struct rs_breaker *b;
	_Atomic int64_t *clock;
	unsigned seed;
	uint64_t admitted, refused, ok, failed, ignored;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		int64_t now = atomic_fetch_add(w->clock, 1);
		unsigned r = rand_r(&w->seed) % 100;
		enum rs_breaker_outcome out = r < 30 ? F : r < 35 ? I : S;

		if (!rs_breaker_acquire(w->b, now, NULL)) {
			w->refused++;
			continue;
		}
		w->admitted++;
		rs_breaker_record(w->b, now, out, r);
		w->failed += out == F;
		w->ok += out == S;
		w->ignored += out == I;
	}
	return NULL;
}

static void test_threads(void)
{
	struct rs_breaker_options o = opts(RS_BREAKER_COUNT);
	struct rs_breaker_event ev[RS_BREAKER_EVENT_QUEUE];
	_Atomic int64_t clock = T0;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct rs_breaker_info in;
	uint64_t admitted = 0, refused = 0, okc = 0, failed = 0, ignored = 0;
	size_t taken = 0, n;
	struct rs_breaker *b;

	o.window_size = 50;
	o.minimum_calls = 20;
	o.failure_rate_pct = 40;
	o.open_ms = 20;
	o.half_open_calls = 3;
	o.slow_call_ms = 90;
	o.slow_call_rate_pct = 100;
	b = mk(&o);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .b = b, .clock = &clock, .seed = (unsigned)i + 1 };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		admitted += w[i].admitted;
		refused += w[i].refused;
		okc += w[i].ok;
		failed += w[i].failed;
		ignored += w[i].ignored;
	}
	in = info(b, atomic_load(&clock));
	is_int(admitted + refused, (uint64_t)THREADS * PER_THREAD, "threads: every call answered");
	is_int(in.calls, admitted, "threads: calls = the calls admitted");
	is_int(in.rejected, refused, "threads: rejected = the calls refused");
	is_int(in.successes, okc, "threads: successes add up");
	is_int(in.failures, failed, "threads: failures add up");
	is_int(in.ignored, ignored, "threads: ignored add up");
	is_int(in.successes + in.failures + in.ignored, in.calls, "threads: calls = S + F + I");
	ok(in.opened > 0 && in.closed > 0, "threads: it opened and closed along the way");
	while ((n = rs_breaker_take_events(b, ev, RS_BREAKER_EVENT_QUEUE)) > 0)
		taken += n;
	is_int(taken + in.events_dropped, in.opened + in.half_opened + in.closed,
	       "threads: every transition queued or counted as dropped");
	rs_breaker_free(b);
}

/* ---- persistence ---------------------------------------------------------------------- */

static struct rs_db *db_open(const char *name, char *path)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;

	snprintf(path, TEST_PATH_MAX, "%s/%s", tdir, name);
	if (rs_db_open(&db, path, NULL, &err)) {
		printf("# rs_db_open: %s\n", err.msg);
		exit(2);
	}
	return db;
}

static struct rs_breaker_event event(const char *name, int64_t t,
				     enum rs_breaker_state from,
				     enum rs_breaker_state to, const char *reason)
{
	struct rs_breaker_event e;

	memset(&e, 0, sizeof(e));
	rs_copy_text(e.name, sizeof(e.name), name);
	e.time_ms = t;
	e.from = from;
	e.to = to;
	rs_copy_text(e.reason, sizeof(e.reason), reason);
	return e;
}

static void test_db_save_list_get(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker_info in = { .name = "hwa" }, back;
	struct rs_breaker_event ev[2], *hist = NULL;
	struct rs_breaker_row *rows = NULL, row;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("save.db", path);
	size_t n = 0;

	/* Later migrations may follow 6 (the build's version is checked
	 * by the test of the newest one); this one only needs to be in. */
	is_int(db->schema_version, rs_db_schema_version(),
	       "db: opened at the build's schema version");
	ok(rs_db_schema_version() >= 6, "db: the build has migration 6");
	is_int(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
			     " ('breaker', 'breaker_event', 'breaker_event_name_seq')"), 3,
	       "db: tables breaker, breaker_event and the index exist");
	ok(rs_breaker_db_list(db, &rows, &n, &err) == 0 && n == 0 && rows == NULL,
	   "db: list of nothing");

	in.state = RS_BREAKER_OPEN;
	in.state_since_ms = 1795450743000LL;
	in.retry_after_ms = 12345;
	in.window_calls = 20;
	in.window_failures = 12;
	in.calls = 5000000000ULL;
	in.failures = 77;
	in.rejected = 9;
	in.opened = 2;
	ev[0] = event("hwa", 1795450742000LL, RS_BREAKER_CLOSED, RS_BREAKER_OPEN,
		      "failure rate 60% >= 50% over 20 calls");
	ev[1] = event("hwa", 1795450743000LL, RS_BREAKER_HALF_OPEN, RS_BREAKER_OPEN,
		      "trial call failed");
	is_int(rs_breaker_db_save(db, "resync-fcgi/1@web1", &in, ev, 2, &err), 0, "db: save");
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	ok(rs_breaker_db_list(db, &rows, &n, &err) == 0 && n == 1, "db: list has the row");
	if (n == 1) {
		is_str(rows[0].name, "hwa", "db: row name");
		ok(rows[0].state == RS_BREAKER_OPEN, "db: row state");
		is_int(rows[0].since_ms, 1795450743000LL, "db: row since");
		ok(rows[0].updated_ms >= rs_now_ms() - 10000, "db: row updated now");
		is_str(rows[0].origin, "resync-fcgi/1@web1", "db: row origin");
		ok(rows[0].command == RS_BREAKER_CMD_NONE && rows[0].generation == 0,
		   "db: no command, generation 0");
		ok(rs_breaker_row_info(&rows[0], &back) == 0, "db: info JSON parses");
		ok(back.calls == 5000000000ULL && back.failures == 77 && back.rejected == 9 &&
		   back.opened == 2 && back.window_calls == 20 && back.window_failures == 12 &&
		   back.retry_after_ms == 12345 && back.state == RS_BREAKER_OPEN,
		   "db: counters round-trip");
	}
	rs_breaker_rows_free(rows, n);

	is_int(rs_breaker_db_get(db, "hwa", &row, &err), 0, "db: get finds it");
	ok(row.state == RS_BREAKER_OPEN && row.info_json != NULL, "db: get's row");
	free(row.info_json);
	is_int(rs_breaker_db_get(db, "nope", &row, &err), 1, "db: get of an absent one is 1");

	is_int(rs_breaker_db_history(db, "hwa", 20, &hist, &n, &err), 0, "db: history");
	ok(n == 2 && hist[0].from == RS_BREAKER_HALF_OPEN && hist[1].to == RS_BREAKER_OPEN,
	   "db: history newest first");
	if (n == 2) {
		is_str(hist[1].reason, "failure rate 60% >= 50% over 20 calls", "db: event reason");
		is_int(hist[1].time_ms, 1795450742000LL, "db: event time");
		is_str(hist[1].actor, "", "db: no actor is empty");
		is_str(hist[1].name, "hwa", "db: event name");
	}
	free(hist);
	ok(rs_breaker_db_history(db, "hwa", 1, &hist, &n, &err) == 0 && n == 1 &&
	   hist[0].from == RS_BREAKER_HALF_OPEN, "db: history limit 1: the newest");
	free(hist);
	ok(rs_breaker_db_history(db, "other", 5, &hist, &n, &err) == 0 && n == 0 && !hist,
	   "db: history of another breaker is empty");

	/* A second save replaces the state and adds events. */
	in.state = RS_BREAKER_CLOSED;
	in.calls = 1;
	is_int(rs_breaker_db_save(db, "resync-fcgi/2@web2", &in, NULL, 0, &err), 0,
	       "db: save again without events");
	ok(rs_breaker_db_get(db, "hwa", &row, &err) == 0 && row.state == RS_BREAKER_CLOSED &&
	   strcmp(row.origin, "resync-fcgi/2@web2") == 0, "db: the newer save wins");
	free(row.info_json);
	rs_db_close(db);
}

static void test_db_command(void)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker_info in = { .name = "hwa" };
	struct rs_breaker_event *hist = NULL;
	struct rs_breaker_row row;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("cmd.db", path);
	size_t n = 0;

	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_OPEN, ACTOR, 1000, &err), 0,
	       "command: on a missing row");
	is_int(rs_breaker_db_get(db, "hwa", &row, &err), 0, "command: created the row");
	ok(row.state == RS_BREAKER_FORCED_OPEN && row.command == RS_BREAKER_CMD_OPEN &&
	   row.generation == 1 && row.since_ms == 1000 && row.updated_ms == 1000,
	   "command: forced_open, command open, generation 1");
	is_str(row.command_actor, ACTOR, "command: the actor");
	is_str(row.origin, "resyncctl", "command: origin resyncctl");
	ok(row.info_json == NULL, "command: no counters yet");
	free(row.info_json);
	ok(rs_breaker_db_history(db, "hwa", 0, &hist, &n, &err) == 0 && n == 1 &&
	   hist[0].from == RS_BREAKER_CLOSED && hist[0].to == RS_BREAKER_FORCED_OPEN,
	   "command: an event closed -> forced_open");
	if (n == 1) {
		is_str(hist[0].actor, ACTOR, "command: event actor");
		is_str(hist[0].reason, "operator command 'open'", "command: event reason");
		is_int(hist[0].time_ms, 1000, "command: event time");
	}
	free(hist);

	/* A responder's save leaves the command for it to apply. */
	in.state = RS_BREAKER_CLOSED;
	in.state_since_ms = 500;
	in.calls = 42;
	is_int(rs_breaker_db_save(db, "resync-fcgi/9@h", &in, NULL, 0, &err), 0,
	       "command: a responder saves");
	ok(rs_breaker_db_get(db, "hwa", &row, &err) == 0 && row.command == RS_BREAKER_CMD_OPEN &&
	   row.generation == 1 && strcmp(row.command_actor, ACTOR) == 0,
	   "command: save does not clobber the command or generation");
	free(row.info_json);

	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_CLOSE, "bob via resyncctl",
				     2000, &err), 0, "command: close");
	ok(rs_breaker_db_get(db, "hwa", &row, &err) == 0 && row.generation == 2 &&
	   row.command == RS_BREAKER_CMD_CLOSE && row.state == RS_BREAKER_CLOSED &&
	   row.since_ms == 500 && row.info_json != NULL,
	   "command: close on closed keeps since and counters, generation 2");
	free(row.info_json);
	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_DISABLE, ACTOR, 3000, &err), 0,
	       "command: disable");
	ok(rs_breaker_db_get(db, "hwa", &row, &err) == 0 && row.state == RS_BREAKER_DISABLED &&
	   row.since_ms == 3000 && row.generation == 3, "command: disabled since 3000");
	free(row.info_json);
	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_RESET, ACTOR, 4000, &err), 0,
	       "command: reset");
	ok(rs_breaker_db_get(db, "hwa", &row, &err) == 0 && row.state == RS_BREAKER_CLOSED &&
	   row.command == RS_BREAKER_CMD_RESET && row.generation == 4 && row.info_json == NULL,
	   "command: reset clears the counters");
	free(row.info_json);
	ok(rs_breaker_db_history(db, "hwa", 0, &hist, &n, &err) == 0 && n == 4 &&
	   hist[0].to == RS_BREAKER_CLOSED && hist[0].from == RS_BREAKER_DISABLED &&
	   hist[3].to == RS_BREAKER_FORCED_OPEN, "command: four events, newest first");
	free(hist);

	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_NONE, ACTOR, 1, &err), -1,
	       "command: NONE refused");
	is_int(rs_breaker_db_command(db, "", RS_BREAKER_CMD_OPEN, ACTOR, 1, &err), -1,
	       "command: an empty name refused");
	has_str(err.msg, "database '", "command: the error names the database");
	rs_db_close(db);

	/* Errors name the database and the breaker. */
	{
		struct rs_db_options ro = { .flags = RS_DB_READONLY };

		rs_db_open(&db, path, &ro, &err);
		is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_OPEN, ACTOR, 1, &err), -1,
		       "command: on a read-only database fails");
		has_str(err.msg, "cannot command breaker 'hwa'", "command: error names the breaker");
		has_str(err.msg, path, "command: error names the database file");
		rs_db_close(db);
	}
}

static void test_db_cap(void)
{
	struct rs_breaker_event *ev = calloc(RS_BREAKER_DB_EVENTS_MAX + 5, sizeof(*ev)), *hist;
	struct rs_breaker_info in = { .name = "hwa" };
	struct rs_err err = RS_ERR_INIT;
	char path[TEST_PATH_MAX], reason[32];
	struct rs_db *db = db_open("cap.db", path);
	size_t n = 0;

	for (int i = 0; i < RS_BREAKER_DB_EVENTS_MAX + 5; i++) {
		snprintf(reason, sizeof(reason), "e%d", i);
		ev[i] = event("hwa", 1000 + i, RS_BREAKER_CLOSED, RS_BREAKER_OPEN, reason);
	}
	is_int(rs_breaker_db_save(db, "r", &in, ev, RS_BREAKER_DB_EVENTS_MAX + 5, &err), 0,
	       "cap: save 1005 events at once");
	is_int(sql_int(path, "SELECT count(*) FROM breaker_event WHERE name = 'hwa'"),
	       RS_BREAKER_DB_EVENTS_MAX, "cap: 1000 kept");
	ok(rs_breaker_db_history(db, "hwa", 0, &hist, &n, &err) == 0 &&
	   n == RS_BREAKER_DB_EVENTS_MAX, "cap: history 0 gives them all");
	if (n == RS_BREAKER_DB_EVENTS_MAX) {
		is_str(hist[0].reason, "e1004", "cap: the newest kept");
		is_str(hist[n - 1].reason, "e5", "cap: the oldest five went");
	}
	free(hist);
	/* Another breaker's history is not trimmed by this one's. */
	ev[0] = event("other", 1, RS_BREAKER_CLOSED, RS_BREAKER_OPEN, "o");
	strcpy(in.name, "other");
	rs_breaker_db_save(db, "r", &in, ev, 1, &err);
	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_OPEN, ACTOR, 9, &err), 0,
	       "cap: a command adds one more");
	is_int(sql_int(path, "SELECT count(*) FROM breaker_event WHERE name = 'hwa'"),
	       RS_BREAKER_DB_EVENTS_MAX, "cap: still 1000 after the command");
	is_int(sql_int(path, "SELECT count(*) FROM breaker_event WHERE name = 'other'"), 1,
	       "cap: other breakers keep theirs");
	free(ev);
	rs_db_close(db);
}

/* A database from before migration 6, opened read-only, has no breakers. */
static void test_db_old_schema(void)
{
	struct rs_db_options ro = { .flags = RS_DB_READONLY };
	struct rs_err err = RS_ERR_INIT;
	struct rs_breaker_event *hist;
	struct rs_breaker_row *rows, row;
	char path[TEST_PATH_MAX];
	struct rs_db *db = db_open("old.db", path);
	size_t n = 1;

	rs_db_close(db);
	/* Back to 5: also drop what migrations after 6 made, which the
	 * read-write open below creates again. */
	sql(path, "DROP TABLE breaker; DROP TABLE breaker_event;"
		  " DROP TABLE idempotency; DROP TABLE audit;"
		  " UPDATE meta SET value = '5' WHERE key = 'schema_version';"
		  " PRAGMA user_version = 5;");
	if (rs_db_open(&db, path, &ro, &err)) {
		ok(0, "old schema: open read-only");
		printf("#   %s\n", err.msg);
		return;
	}
	is_int(db->schema_version, 5, "old schema: version 5");
	ok(rs_breaker_db_list(db, &rows, &n, &err) == 0 && n == 0, "old schema: list empty");
	is_int(rs_breaker_db_get(db, "hwa", &row, &err), 1, "old schema: get absent");
	ok(rs_breaker_db_history(db, "hwa", 5, &hist, &n, &err) == 0 && n == 0,
	   "old schema: no history");
	rs_db_close(db);
	db = db_open("old.db", path);
	is_int(db->schema_version, rs_db_schema_version(),
	       "old schema: a read-write open migrates to the build's version");
	is_int(rs_breaker_db_command(db, "hwa", RS_BREAKER_CMD_OPEN, ACTOR, 1, &err), 0,
	       "old schema: migrated tables take commands");
	rs_db_close(db);
}

int main(void)
{
	tdir_make();
	test_names();
	test_defaults();
	test_from_conf();
	test_exclude_add();
	test_new_refuses();
	test_classify();
	test_consecutive();
	test_count_window();
	test_time_window();
	test_slow_calls();
	test_half_open_permits();
	test_max_wait();
	test_commands();
	test_restore();
	test_event_queue();
	test_threads();
	test_db_save_list_get();
	test_db_command();
	test_db_cap();
	test_db_old_schema();
	tdir_remove();
	return tap_done();
}
