/*
 * breaker: the circuit breaker state machine (see breaker.h).
 *
 * Deliberate quirks:
 *  - The time-driven transitions (OPEN -> HALF_OPEN once open_duration has
 *    passed, HALF_OPEN -> OPEN past max_wait_in_half_open) are taken
 *    lazily by the next acquire, record or info, so a breaker needs no
 *    timer thread; the responder's once-a-second info keeps them timely.
 *  - rs_breaker_record carries no token tying it to its acquire, so an
 *    outcome is judged by the state the call ends in.  In HALF_OPEN an
 *    outcome arriving while no trial permit is out belongs to a call
 *    admitted before, and changes nothing but the totals.
 *  - A COUNT window judges once it holds min(minimum_calls, window_size)
 *    calls, as Resilience4j does: a window smaller than minimum_calls
 *    could otherwise never open.
 *  - The TIME window keeps one bucket per whole second; a window_duration
 *    that is not whole seconds is rounded down (to one bucket at least).
 *    Moving it on clears the buckets it leaves behind: amortised O(1),
 *    since each bucket is cleared at most once per second that passes.
 *  - Operator commands always queue an event, even when the state stays
 *    (close on a closed breaker): the event is the audit record.  The
 *    transition counters count real changes of state only.
 */
#include "breaker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define OUT_FAILED 1u
#define OUT_SLOW 2u
#define PCT 100u

struct bucket {
	unsigned calls, failures, slow;
};

struct rs_breaker {
	struct rs_breaker_options o;    /* fixed at rs_breaker_new */
	pthread_mutex_t mu;             /* guards everything below */

	enum rs_breaker_state state;
	int64_t since_mono_ms, since_wall_ms;
	int64_t open_until_ms;          /* OPEN: monotonic */
	unsigned trials_issued;         /* HALF_OPEN: permits handed out */
	unsigned trials_ok;             /* HALF_OPEN: trials that succeeded */

	/* the window (CONSECUTIVE: `consecutive` only) */
	unsigned consecutive;
	unsigned win_calls, win_failures, win_slow;
	unsigned char *ring;            /* COUNT: OUT_ flags of each call */
	unsigned ring_next, ring_len;
	struct bucket *buckets;         /* TIME: bucket sec % nbuckets */
	unsigned nbuckets;
	int64_t head_sec;               /* the newest second with a bucket */
	bool time_started;

	uint64_t calls, successes, failures, ignored, slow, rejected;
	uint64_t opened, half_opened, closed, events_dropped;

	struct rs_breaker_event q[RS_BREAKER_EVENT_QUEUE];
	size_t qhead, qlen;
};

/* ---- names ----------------------------------------------------------------- */

static const char *const state_names[] = {
	[RS_BREAKER_CLOSED] = "closed",
	[RS_BREAKER_OPEN] = "open",
	[RS_BREAKER_HALF_OPEN] = "half_open",
	[RS_BREAKER_FORCED_OPEN] = "forced_open",
	[RS_BREAKER_DISABLED] = "disabled",
};

static const char *const command_names[] = {
	[RS_BREAKER_CMD_NONE] = "none",
	[RS_BREAKER_CMD_OPEN] = "open",
	[RS_BREAKER_CMD_CLOSE] = "close",
	[RS_BREAKER_CMD_DISABLE] = "disable",
	[RS_BREAKER_CMD_RESET] = "reset",
};

static const char *const call_error_names[] = {
	[RS_CALL_OK] = "ok",
	[RS_CALL_CONNECT] = "connect",
	[RS_CALL_TIMEOUT] = "timeout",
	[RS_CALL_TLS] = "tls",
	[RS_CALL_RESET] = "reset",
	[RS_CALL_PARTIAL] = "partial",
	[RS_CALL_EXHAUSTED] = "exhausted",
};

const char *rs_breaker_state_name(enum rs_breaker_state s)
{
	return (unsigned)s < RS_ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

int rs_breaker_state_parse(const char *s, enum rs_breaker_state *out)
{
	for (size_t i = 0; s && i < RS_ARRAY_SIZE(state_names); i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum rs_breaker_state)i;
			return 0;
		}
	return -1;
}

const char *rs_breaker_command_name(enum rs_breaker_command c)
{
	return (unsigned)c < RS_ARRAY_SIZE(command_names) ? command_names[c] : "unknown";
}

int rs_breaker_command_parse(const char *s, enum rs_breaker_command *out)
{
	/* From 1: "none" is not a command anyone can give. */
	for (size_t i = 1; s && i < RS_ARRAY_SIZE(command_names); i++)
		if (strcmp(s, command_names[i]) == 0) {
			*out = (enum rs_breaker_command)i;
			return 0;
		}
	return -1;
}

const char *rs_call_error_name(enum rs_call_error e)
{
	return (unsigned)e < RS_ARRAY_SIZE(call_error_names) ? call_error_names[e] : "unknown";
}

/* ---- options ----------------------------------------------------------------- */

/* A [breaker] key's schema default, in its unit; 0 when it has none. */
static int64_t schema_default(const char *key)
{
	const struct rs_schema_key *k = rs_schema_key("breaker", key);
	const char *why;
	int64_t v = 0;

	if (!k || !k->def)
		return 0;
	if (k->type == RS_T_DURATION)
		rs_parse_duration_ms(k->def, &v, &why);
	else if (k->type == RS_T_ENUM)
		v = rs_schema_enum_index(k, k->def);
	else
		rs_parse_int64(k->def, &v, &why);
	return v < 0 ? 0 : v;
}

void rs_breaker_options_default(struct rs_breaker_options *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	rs_copy_text(o->name, sizeof(o->name), name ? name : "");
	o->window = (enum rs_breaker_window)schema_default("window");
	o->fail_max = (unsigned)schema_default("fail_max");
	o->window_size = (unsigned)schema_default("window_size");
	o->window_ms = schema_default("window_duration");
	o->failure_rate_pct = (unsigned)schema_default("failure_rate_threshold");
	o->slow_call_ms = schema_default("slow_call_duration");
	o->slow_call_rate_pct = (unsigned)schema_default("slow_call_rate_threshold");
	o->minimum_calls = (unsigned)schema_default("minimum_calls");
	o->open_ms = schema_default("open_duration");
	o->half_open_calls = (unsigned)schema_default("half_open_calls");
	o->max_wait_half_open_ms = schema_default("max_wait_in_half_open");
}

int rs_breaker_exclude_add(struct rs_breaker_options *o, const char *item,
			   struct rs_err *err)
{
	size_t len = item ? strlen(item) : 0;
	const char *why;
	int64_t status;

	if (len == 3 && item[0] >= '1' && item[0] <= '5' &&
	    strcmp(item + 1, "xx") == 0) {
		o->exclude_class |= 1u << (item[0] - '0');
		return 0;
	}
	if (len == 3 && rs_parse_int64(item, &status, &why) == 0 &&
	    status >= 100 && status <= 599) {
		if (o->nexclude_status == RS_ARRAY_SIZE(o->exclude_status))
			return rs_err_set(err, "'%s' is one status code too many (at most %zu)",
					  item, RS_ARRAY_SIZE(o->exclude_status));
		o->exclude_status[o->nexclude_status++] = (unsigned short)status;
		return 0;
	}
	for (unsigned e = RS_CALL_CONNECT; e < RS_CALL_EXHAUSTED; e++)
		if (item && strcmp(item, call_error_names[e]) == 0) {
			o->exclude_errors |= 1u << e;
			return 0;
		}
	return rs_err_set(err,
			  "'%s' is not a status code (503), a class (5xx) or an error kind (connect, timeout, tls, reset, partial)",
			  item ? item : "");
}

/* The value of `key` when it is set and parsed, else `def`. */
static int64_t conf_num(const struct rs_conf_section *sec, const char *key,
			int64_t def)
{
	const struct rs_conf_value *v = rs_conf_get(sec, key);

	return v && v->ok ? v->num : def;
}

int rs_breaker_options_from_conf(struct rs_breaker_options *o, const char *name,
				 const struct rs_conf_section *sec,
				 struct rs_err *err)
{
	const struct rs_conf_value *ex;

	rs_breaker_options_default(o, name);
	if (!sec)
		return 0;
	o->window = (enum rs_breaker_window)conf_num(sec, "window", o->window);
	o->fail_max = (unsigned)conf_num(sec, "fail_max", o->fail_max);
	o->window_size = (unsigned)conf_num(sec, "window_size", o->window_size);
	o->window_ms = conf_num(sec, "window_duration", o->window_ms);
	o->failure_rate_pct = (unsigned)conf_num(sec, "failure_rate_threshold",
						 o->failure_rate_pct);
	o->slow_call_ms = conf_num(sec, "slow_call_duration", o->slow_call_ms);
	o->slow_call_rate_pct = (unsigned)conf_num(sec, "slow_call_rate_threshold",
						   o->slow_call_rate_pct);
	o->minimum_calls = (unsigned)conf_num(sec, "minimum_calls", o->minimum_calls);
	o->open_ms = conf_num(sec, "open_duration", o->open_ms);
	o->half_open_calls = (unsigned)conf_num(sec, "half_open_calls",
						o->half_open_calls);
	o->max_wait_half_open_ms = conf_num(sec, "max_wait_in_half_open",
					    o->max_wait_half_open_ms);
	ex = rs_conf_get(sec, "exclude");
	for (size_t i = 0; ex && ex->ok && i < ex->nitems; i++)
		if (rs_breaker_exclude_add(o, ex->items[i], err)) {
			rs_err_prefix(err, "[breaker %s] exclude", name);
			return -1;
		}
	return 0;
}

static int check_options(const struct rs_breaker_options *o, struct rs_err *err)
{
	const char *bad = NULL;

	if (!o->name[0])
		return rs_err_set(err, "a breaker needs a name");
	if ((unsigned)o->window > RS_BREAKER_TIME)
		bad = "window is not consecutive, count or time";
	else if (o->window == RS_BREAKER_CONSECUTIVE && o->fail_max < 1)
		bad = "fail_max must be at least 1";
	else if (o->window == RS_BREAKER_COUNT && o->window_size < 1)
		bad = "window_size must be at least 1";
	else if (o->window == RS_BREAKER_TIME && o->window_ms < RS_MS_PER_SEC)
		bad = "window_duration must be at least 1s";
	else if (o->failure_rate_pct < 1 || o->failure_rate_pct > PCT ||
		 o->slow_call_rate_pct < 1 || o->slow_call_rate_pct > PCT)
		bad = "rate thresholds must be 1 to 100 percent";
	else if (o->half_open_calls < 1)
		bad = "half_open_calls must be at least 1";
	else if (o->open_ms < 0 || o->slow_call_ms < 0 ||
		 o->max_wait_half_open_ms < 0)
		bad = "durations must not be negative";
	return bad ? rs_err_set(err, "breaker '%s': %s", o->name, bad) : 0;
}

/* ---- life ---------------------------------------------------------------------- */

int rs_breaker_new(struct rs_breaker **out, const struct rs_breaker_options *o,
		   struct rs_err *err)
{
	struct rs_breaker *b;

	*out = NULL;
	if (check_options(o, err))
		return -1;
	b = calloc(1, sizeof(*b));
	if (!b)
		return rs_err_errno(err, ENOMEM, "breaker '%s'", o->name);
	b->o = *o;
	if (o->window == RS_BREAKER_COUNT)
		b->ring = calloc(o->window_size, 1);
	if (o->window == RS_BREAKER_TIME) {
		b->nbuckets = (unsigned)(o->window_ms / RS_MS_PER_SEC);
		b->buckets = calloc(b->nbuckets, sizeof(*b->buckets));
	}
	if ((o->window == RS_BREAKER_COUNT && !b->ring) ||
	    (o->window == RS_BREAKER_TIME && !b->buckets)) {
		rs_breaker_free(b);
		return rs_err_errno(err, ENOMEM, "breaker '%s'", o->name);
	}
	if (pthread_mutex_init(&b->mu, NULL)) {
		free(b->ring);
		free(b->buckets);
		free(b);
		return rs_err_set(err, "breaker '%s': cannot create its mutex", o->name);
	}
	b->state = RS_BREAKER_CLOSED;
	b->since_wall_ms = rs_now_ms();
	*out = b;
	return 0;
}

void rs_breaker_free(struct rs_breaker *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->ring);
	free(b->buckets);
	free(b);
}

const char *rs_breaker_name(const struct rs_breaker *b)
{
	return b->o.name;
}

/* ---- the window ---------------------------------------------------------------- */

static void window_clear(struct rs_breaker *b)
{
	b->consecutive = 0;
	b->win_calls = b->win_failures = b->win_slow = 0;
	if (b->ring)
		memset(b->ring, 0, b->o.window_size);
	b->ring_next = b->ring_len = 0;
	if (b->buckets)
		memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
	b->time_started = false;
}

static void bucket_drop(struct rs_breaker *b, struct bucket *k)
{
	b->win_calls -= k->calls;
	b->win_failures -= k->failures;
	b->win_slow -= k->slow;
	memset(k, 0, sizeof(*k));
}

static int64_t floor_div(int64_t a, int64_t d)
{
	return a / d - (a % d != 0 && (a < 0) != (d < 0));
}

/* Move the TIME window's head to now, clearing the seconds that fell out.
 * A time before the head (callers on other threads read the clock a
 * little earlier) counts in the head's second. */
static void time_advance(struct rs_breaker *b, int64_t now_ms)
{
	int64_t sec = floor_div(now_ms, RS_MS_PER_SEC), s;
	int64_t n = b->nbuckets;

	if (!b->buckets)
		return;
	if (!b->time_started) {
		b->time_started = true;
		b->head_sec = sec;
		return;
	}
	if (sec <= b->head_sec)
		return;
	if (sec - b->head_sec >= n) {
		memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
		b->win_calls = b->win_failures = b->win_slow = 0;
	} else {
		for (s = b->head_sec + 1; s <= sec; s++)
			bucket_drop(b, &b->buckets[(s % n + n) % n]);
	}
	b->head_sec = sec;
}

static void window_push(struct rs_breaker *b, unsigned flags, int64_t now_ms)
{
	unsigned failed = (flags & OUT_FAILED) != 0, slow = (flags & OUT_SLOW) != 0;

	b->consecutive = failed ? b->consecutive + 1 : 0;
	if (b->o.window == RS_BREAKER_COUNT) {
		if (b->ring_len == b->o.window_size) {
			unsigned old = b->ring[b->ring_next];

			b->win_calls--;
			b->win_failures -= (old & OUT_FAILED) != 0;
			b->win_slow -= (old & OUT_SLOW) != 0;
		} else {
			b->ring_len++;
		}
		b->ring[b->ring_next] = (unsigned char)flags;
		b->ring_next = (b->ring_next + 1) % b->o.window_size;
	} else if (b->o.window == RS_BREAKER_TIME) {
		int64_t n = b->nbuckets;
		struct bucket *k;

		time_advance(b, now_ms);
		k = &b->buckets[(b->head_sec % n + n) % n];
		k->calls++;
		k->failures += failed;
		k->slow += slow;
	} else {
		return;
	}
	b->win_calls++;
	b->win_failures += failed;
	b->win_slow += slow;
}

/* Should a CLOSED breaker open?  true with the reason. */
static bool window_trips(const struct rs_breaker *b, char *reason, size_t n)
{
	const struct rs_breaker_options *o = &b->o;
	unsigned min = o->minimum_calls, calls = b->win_calls;

	if (o->window == RS_BREAKER_CONSECUTIVE) {
		if (b->consecutive < o->fail_max)
			return false;
		snprintf(reason, n, "%u consecutive failures", b->consecutive);
		return true;
	}
	if (o->window == RS_BREAKER_COUNT && min > o->window_size)
		min = o->window_size;
	if (calls == 0 || calls < min)
		return false;
	if ((uint64_t)b->win_failures * PCT >= (uint64_t)o->failure_rate_pct * calls) {
		snprintf(reason, n, "failure rate %u%% >= %u%% over %u calls",
			 (unsigned)((uint64_t)b->win_failures * PCT / calls),
			 o->failure_rate_pct, calls);
		return true;
	}
	if (o->slow_call_ms > 0 &&
	    (uint64_t)b->win_slow * PCT >= (uint64_t)o->slow_call_rate_pct * calls) {
		snprintf(reason, n, "slow-call rate %u%% >= %u%% over %u calls",
			 (unsigned)((uint64_t)b->win_slow * PCT / calls),
			 o->slow_call_rate_pct, calls);
		return true;
	}
	return false;
}

/* ---- transitions --------------------------------------------------------------- */

static void queue_event(struct rs_breaker *b, enum rs_breaker_state from,
			enum rs_breaker_state to, int64_t wall_ms,
			const char *reason, const char *actor)
{
	struct rs_breaker_event *e;

	if (b->qlen == RS_BREAKER_EVENT_QUEUE) {
		/* Nobody took them in time: the oldest goes. */
		b->qhead = (b->qhead + 1) % RS_BREAKER_EVENT_QUEUE;
		b->qlen--;
		b->events_dropped++;
	}
	e = &b->q[(b->qhead + b->qlen++) % RS_BREAKER_EVENT_QUEUE];
	rs_copy_text(e->name, sizeof(e->name), b->o.name);
	e->time_ms = wall_ms;
	e->from = from;
	e->to = to;
	rs_copy_text(e->reason, sizeof(e->reason), reason);
	rs_copy_text(e->actor, sizeof(e->actor), actor ? actor : "");
}

static void count_transition(struct rs_breaker *b, enum rs_breaker_state to)
{
	if (to == RS_BREAKER_OPEN)
		b->opened++;
	else if (to == RS_BREAKER_HALF_OPEN)
		b->half_opened++;
	else if (to == RS_BREAKER_CLOSED)
		b->closed++;
}

/* Enter `to`; actor NULL for the breaker's own transitions, which are
 * made only on a real change of state. */
static void transition(struct rs_breaker *b, enum rs_breaker_state to,
		       int64_t now_ms, const char *reason, const char *actor)
{
	enum rs_breaker_state from = b->state;
	int64_t wall = rs_now_ms();

	if (from == to && !actor)
		return;
	if (from != to) {
		b->state = to;
		b->since_mono_ms = now_ms;
		b->since_wall_ms = wall;
		b->trials_issued = b->trials_ok = 0;
		if (to == RS_BREAKER_OPEN)
			b->open_until_ms = rs_sat_add(now_ms, b->o.open_ms);
		count_transition(b, to);
	}
	queue_event(b, from, to, wall, reason, actor);
}

static void trip(struct rs_breaker *b, int64_t now_ms, const char *reason)
{
	transition(b, RS_BREAKER_OPEN, now_ms, reason, NULL);
}

/* The transitions time alone brings. */
static void tick(struct rs_breaker *b, int64_t now_ms)
{
	char reason[RS_BREAKER_REASON_MAX], d[32];

	if (b->state == RS_BREAKER_OPEN && now_ms >= b->open_until_ms) {
		rs_format_duration(b->o.open_ms, d, sizeof(d));
		snprintf(reason, sizeof(reason), "open_duration %s passed", d);
		transition(b, RS_BREAKER_HALF_OPEN, now_ms, reason, NULL);
	} else if (b->state == RS_BREAKER_HALF_OPEN && b->o.max_wait_half_open_ms > 0 &&
		   now_ms - b->since_mono_ms >= b->o.max_wait_half_open_ms) {
		rs_format_duration(b->o.max_wait_half_open_ms, d, sizeof(d));
		snprintf(reason, sizeof(reason),
			 "%u of %u trial calls succeeded within max_wait_in_half_open %s",
			 b->trials_ok, b->o.half_open_calls, d);
		trip(b, now_ms, reason);
	}
	if (b->o.window == RS_BREAKER_TIME)
		time_advance(b, now_ms);
}

/* ---- calls --------------------------------------------------------------------- */

bool rs_breaker_acquire(struct rs_breaker *b, int64_t now_ms,
			int64_t *retry_after_ms)
{
	int64_t retry = 0;
	bool go = false;

	pthread_mutex_lock(&b->mu);
	tick(b, now_ms);
	switch (b->state) {
	case RS_BREAKER_CLOSED:
	case RS_BREAKER_DISABLED:
		go = true;
		break;
	case RS_BREAKER_HALF_OPEN:
		go = b->trials_issued < b->o.half_open_calls;
		b->trials_issued += go;
		break;
	case RS_BREAKER_OPEN:
		retry = b->open_until_ms - now_ms;
		break;
	case RS_BREAKER_FORCED_OPEN:
		break;
	}
	if (!go)
		b->rejected++;
	pthread_mutex_unlock(&b->mu);
	if (retry_after_ms)
		*retry_after_ms = go ? 0 : retry;
	return go;
}

static void count_outcome(struct rs_breaker *b, enum rs_breaker_outcome outcome,
			  bool slow)
{
	b->calls++;
	if (outcome == RS_BREAKER_IGNORED) {
		b->ignored++;
		return;
	}
	if (outcome == RS_BREAKER_FAILURE)
		b->failures++;
	else
		b->successes++;
	b->slow += slow;
}

static void record_closed(struct rs_breaker *b, int64_t now_ms,
			  enum rs_breaker_outcome outcome, bool slow)
{
	char reason[RS_BREAKER_REASON_MAX];

	if (outcome == RS_BREAKER_IGNORED)
		return;
	window_push(b, (outcome == RS_BREAKER_FAILURE ? OUT_FAILED : 0) |
			       (slow ? OUT_SLOW : 0), now_ms);
	if (window_trips(b, reason, sizeof(reason)))
		trip(b, now_ms, reason);
}

static void record_trial(struct rs_breaker *b, int64_t now_ms,
			 enum rs_breaker_outcome outcome, bool slow,
			 int64_t duration_ms)
{
	char reason[RS_BREAKER_REASON_MAX];

	if (b->trials_issued == b->trials_ok)
		return;         /* no trial out: a call from before */
	if (outcome == RS_BREAKER_IGNORED) {
		b->trials_issued--;
		return;
	}
	if (outcome == RS_BREAKER_FAILURE) {
		trip(b, now_ms, "trial call failed");
		return;
	}
	if (slow) {
		snprintf(reason, sizeof(reason), "trial call slow (%lld ms > %lld ms)",
			 (long long)duration_ms, (long long)b->o.slow_call_ms);
		trip(b, now_ms, reason);
		return;
	}
	if (++b->trials_ok < b->o.half_open_calls)
		return;
	snprintf(reason, sizeof(reason), "%u of %u trial calls succeeded",
		 b->trials_ok, b->o.half_open_calls);
	window_clear(b);
	transition(b, RS_BREAKER_CLOSED, now_ms, reason, NULL);
}

void rs_breaker_record(struct rs_breaker *b, int64_t now_ms,
		       enum rs_breaker_outcome outcome, int64_t duration_ms)
{
	bool slow;

	pthread_mutex_lock(&b->mu);
	tick(b, now_ms);
	slow = outcome != RS_BREAKER_IGNORED && b->o.slow_call_ms > 0 &&
	       duration_ms > b->o.slow_call_ms;
	if (b->state != RS_BREAKER_DISABLED)
		count_outcome(b, outcome, slow);
	if (b->state == RS_BREAKER_CLOSED)
		record_closed(b, now_ms, outcome, slow);
	else if (b->state == RS_BREAKER_HALF_OPEN)
		record_trial(b, now_ms, outcome, slow, duration_ms);
	pthread_mutex_unlock(&b->mu);
}

static bool status_excluded(const struct rs_breaker_options *o, long status)
{
	if (status >= 100 && status <= 599 && (o->exclude_class & (1u << (status / 100))))
		return true;
	for (size_t i = 0; i < o->nexclude_status; i++)
		if (o->exclude_status[i] == status)
			return true;
	return false;
}

enum rs_breaker_outcome rs_breaker_classify(const struct rs_breaker *b,
					    long http_status,
					    enum rs_call_error error)
{
	const struct rs_breaker_options *o = &b->o;

	if (error == RS_CALL_EXHAUSTED)
		return RS_BREAKER_IGNORED;
	if (error != RS_CALL_OK)
		return (unsigned)error < 32 && (o->exclude_errors & (1u << error)) ?
			       RS_BREAKER_IGNORED : RS_BREAKER_FAILURE;
	if (status_excluded(o, http_status))
		return RS_BREAKER_IGNORED;
	return http_status >= 500 || http_status == 429 ? RS_BREAKER_FAILURE :
							  RS_BREAKER_SUCCESS;
}

/* ---- operators, restore, info, events -------------------------------------------- */

static void reset_counters(struct rs_breaker *b)
{
	b->calls = b->successes = b->failures = b->ignored = b->slow = 0;
	b->rejected = b->opened = b->half_opened = b->closed = 0;
	b->events_dropped = 0;
}

void rs_breaker_command(struct rs_breaker *b, enum rs_breaker_command cmd,
			const char *actor, int64_t now_ms)
{
	static const enum rs_breaker_state to[] = {
		[RS_BREAKER_CMD_OPEN] = RS_BREAKER_FORCED_OPEN,
		[RS_BREAKER_CMD_CLOSE] = RS_BREAKER_CLOSED,
		[RS_BREAKER_CMD_DISABLE] = RS_BREAKER_DISABLED,
		[RS_BREAKER_CMD_RESET] = RS_BREAKER_CLOSED,
	};
	char reason[RS_BREAKER_REASON_MAX];

	if (cmd <= RS_BREAKER_CMD_NONE || (unsigned)cmd >= RS_ARRAY_SIZE(to))
		return;
	snprintf(reason, sizeof(reason), "operator command '%s'",
		 rs_breaker_command_name(cmd));
	pthread_mutex_lock(&b->mu);
	if (cmd == RS_BREAKER_CMD_RESET) {
		window_clear(b);
		reset_counters(b);
	}
	transition(b, to[cmd], now_ms, reason, actor ? actor : "");
	pthread_mutex_unlock(&b->mu);
}

void rs_breaker_restore(struct rs_breaker *b, enum rs_breaker_state state,
			int64_t since_wall_ms, int64_t now_ms)
{
	int64_t elapsed = rs_now_ms() - since_wall_ms;

	if ((unsigned)state > RS_BREAKER_DISABLED)
		return;
	/* A since in the future (a clock set back) gives no time off. */
	if (elapsed < 0)
		elapsed = 0;
	pthread_mutex_lock(&b->mu);
	b->state = state;
	b->since_wall_ms = since_wall_ms;
	b->since_mono_ms = state == RS_BREAKER_OPEN ? now_ms - elapsed : now_ms;
	b->trials_issued = b->trials_ok = 0;
	if (state == RS_BREAKER_OPEN)
		b->open_until_ms = elapsed >= b->o.open_ms ? now_ms :
				   now_ms + (b->o.open_ms - elapsed);
	pthread_mutex_unlock(&b->mu);
}

void rs_breaker_info(struct rs_breaker *b, int64_t now_ms,
		     struct rs_breaker_info *out)
{
	memset(out, 0, sizeof(*out));
	rs_copy_text(out->name, sizeof(out->name), b->o.name);
	pthread_mutex_lock(&b->mu);
	tick(b, now_ms);
	out->state = b->state;
	out->state_since_ms = b->since_wall_ms;
	if (b->state == RS_BREAKER_OPEN && b->open_until_ms > now_ms)
		out->retry_after_ms = b->open_until_ms - now_ms;
	out->window_calls = b->win_calls;
	out->window_failures = b->win_failures;
	out->window_slow = b->win_slow;
	out->consecutive_failures = b->consecutive;
	out->calls = b->calls;
	out->successes = b->successes;
	out->failures = b->failures;
	out->ignored = b->ignored;
	out->slow = b->slow;
	out->rejected = b->rejected;
	out->opened = b->opened;
	out->half_opened = b->half_opened;
	out->closed = b->closed;
	out->events_dropped = b->events_dropped;
	pthread_mutex_unlock(&b->mu);
}

size_t rs_breaker_take_events(struct rs_breaker *b, struct rs_breaker_event *out,
			      size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&b->mu);
	while (n < max && b->qlen) {
		out[n++] = b->q[b->qhead];
		b->qhead = (b->qhead + 1) % RS_BREAKER_EVENT_QUEUE;
		b->qlen--;
	}
	pthread_mutex_unlock(&b->mu);
	return n;
}
