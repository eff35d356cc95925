/*
 * housekeeping: the responder's periodic work, off the request path.
 *
 * One thread ticks every TICK_MS and runs what is due: background eviction
 * (every tick), following the log for resyncctl's mutations and publishing
 * stats (every second), the expiry sweep ([cache] cleanup_interval), a
 * snapshot then gc ([persistence] snapshot_interval), and pool
 * maintenance (idle and old connections, leaks: every second).  A second
 * thread runs the upstreams' active health checks every [pool]
 * health_check_interval, so a dead upstream's connect timeout never delays
 * following the log.  Failures
 * are logged once when they start and once when they end, not every tick.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "util.h"

#define TICK_MS 100
#define FOLLOW_EVERY_MS 1000
#define PUBLISH_EVERY_MS 1000
#define SWEEP_PER_SHARD 1024
#define MAINTAIN_EVERY_MS 1000
#define BREAKERS_EVERY_MS 1000
#define ALERTS_EVERY_MS 1000
#define PRUNE_EVERY_MS 60000

static pthread_t hk_thread, probe_thread;
static bool hk_running, probe_running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static bool stopping;

/* Sleep up to ms; false when asked to stop. */
static bool nap(int64_t ms)
{
	struct timespec until;
	bool stop;

	rs_deadline_after(&until, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&stop_lock);
	if (!stopping)
		pthread_cond_timedwait(&stop_cond, &stop_lock, &until);
	stop = stopping;
	pthread_mutex_unlock(&stop_lock);
	return !stop;
}

/* Log a failing periodic task when it starts failing and when it recovers. */
static void track(bool *failing, int rc, const char *what, const struct rs_err *err)
{
	if (rc < 0 && !*failing)
		RS_LOG(RS_LOG_ERROR, NULL, "%s failed: %s", what, err->msg);
	else if (rc == 0 && *failing)
		RS_LOG(RS_LOG_NOTICE, NULL, "%s works again", what);
	*failing = rc < 0;
}

static void publish(struct server *s, struct rs_db **db, bool *failing)
{
	struct rs_err err = RS_ERR_INIT;
	int rc = -1;

	/* stats are rewritten every second: no fsync each time */
	struct rs_db_options o = { .sync = RS_DB_SYNC_NORMAL };
	if (!*db && rs_db_open(db, s->db_path, &o, &err) < 0) {
		track(failing, -1, "publishing stats", &err);
		return;
	}
	json_t *doc = server_stats_json(s);
	if (doc)
		rc = rs_stats_publish(*db, s->origin, doc, &err);
	else
		rs_err_set(&err, "out of memory");
	json_decref(doc);
	track(failing, rc, "publishing stats", &err);
}

static void *hk_main(void *arg)
{
	struct server *s = arg;
	struct rs_cache *cache = rs_store_cache(s->store);
	struct rs_db *db = NULL;
	bool durable = s->sync != RS_WAL_SYNC_OFF;
	bool follow_failing = false, snap_failing = false, gc_failing = false,
	     publish_failing = false, breaker_failing = false;
	struct srv_conf *c = conf_get(s);
	int64_t cleanup_ms = rs_config_num(c->cfg, "cache", "cleanup_interval");
	int64_t snapshot_ms = rs_config_num(c->cfg, "persistence", "snapshot_interval");
	conf_put(s, c);
	int64_t now = rs_monotonic_ms();
	int64_t next_follow = now + FOLLOW_EVERY_MS, next_publish = now,
		next_sweep = now + cleanup_ms, next_snapshot = now + snapshot_ms,
		next_maintain = now + MAINTAIN_EVERY_MS, next_breakers = now,
		next_alerts = now + ALERTS_EVERY_MS, next_prune = now + PRUNE_EVERY_MS;
	struct rs_db *idb = NULL;   /* for the Idempotency-Keys */

	while (nap(TICK_MS)) {
		struct rs_err err = RS_ERR_INIT;
		now = rs_monotonic_ms();
		rs_cache_evict_background(cache);
		if (now >= next_maintain) {
			rs_upstreams_maintain(s->ups, now);
			next_maintain = now + MAINTAIN_EVERY_MS;
		}
		if (now >= next_prune) {
			idempotency_prune(s, &idb);
			next_prune = now + PRUNE_EVERY_MS;
		}
		if (now >= next_alerts) {
			alerts_check(s);
			next_alerts = now + ALERTS_EVERY_MS;
		}
		if (now >= next_breakers) {
			if (durable && !db) {
				struct rs_db_options o = { .sync = RS_DB_SYNC_NORMAL };
				if (rs_db_open(&db, s->db_path, &o, &err) < 0)
					track(&breaker_failing, -1, "saving circuit breakers", &err);
			}
			if (!durable || db)
				track(&breaker_failing, breakers_sync(s, db, &err),
				      "saving circuit breakers", &err);
			next_breakers = now + BREAKERS_EVERY_MS;
		}
		if (now >= next_sweep) {
			uint64_t n = rs_cache_sweep(cache, SWEEP_PER_SHARD);
			if (n)
				RS_LOG(RS_LOG_DEBUG, NULL, "sweep removed %llu expired entries",
				       (unsigned long long)n);
			next_sweep = now + cleanup_ms;
		}
		if (!durable)
			continue;
		if (now >= next_follow) {
			uint64_t applied = 0;
			int rc = rs_store_follow(s->store, &applied, &err);
			track(&follow_failing, rc, "following the cache log", &err);
			if (applied)
				RS_LOG(RS_LOG_INFO, NULL, "applied %llu cache log records of other processes",
				       (unsigned long long)applied);
			next_follow = now + FOLLOW_EVERY_MS;
		}
		if (now >= next_snapshot) {
			struct rs_snapshot_info info;
			int64_t t0 = rs_monotonic_ms();
			int rc = rs_store_snapshot(s->store, &info, &err);
			track(&snap_failing, rc, "taking a cache snapshot", &err);
			if (rc == 0) {
				RS_LOG(RS_LOG_INFO, NULL, "snapshot %lld: %llu entries, log seq %lld, %lld ms",
				       (long long)info.id, (unsigned long long)info.entries,
				       (long long)info.last_seq, (long long)(rs_monotonic_ms() - t0));
				uint64_t snaps = 0;
				int64_t recs = 0;
				rc = rs_store_gc(s->store, &snaps, &recs, &err);
				track(&gc_failing, rc, "collecting old snapshots and log records", &err);
			}
			next_snapshot = rs_monotonic_ms() + snapshot_ms;
		}
		if (now >= next_publish) {
			publish(s, &db, &publish_failing);
			next_publish = now + PUBLISH_EVERY_MS;
		}
	}
	if (idb)
		rs_db_close(idb);
	if (db) {
		/* the last transitions, so a restart starts where we stopped */
		struct rs_err err = RS_ERR_INIT;
		breakers_sync(s, db, &err);
		rs_db_close(db);
	}
	return NULL;
}

static void *probe_main(void *arg)
{
	struct server *s = arg;

	do {
		struct srv_conf *c = conf_get(s);
		int64_t every = rs_config_num(c->cfg, "pool", "health_check_interval");

		conf_put(s, c);
		rs_upstreams_check(s->ups);
		if (!nap(every))
			break;
	} while (1);
	return NULL;
}

int housekeeping_start(struct server *s, struct rs_err *err)
{
	int rc;

	stopping = false;
	if ((rc = pthread_create(&hk_thread, NULL, hk_main, s)))
		return rs_err_errno(err, rc, "cannot start the housekeeping thread");
	hk_running = true;
	if (rs_upstreams_count(s->ups)) {
		if ((rc = pthread_create(&probe_thread, NULL, probe_main, s)))
			return rs_err_errno(err, rc, "cannot start the health-check thread");
		probe_running = true;
	}
	return 0;
}

void housekeeping_signal_stop(void)
{
	pthread_mutex_lock(&stop_lock);
	stopping = true;
	pthread_cond_broadcast(&stop_cond);
	pthread_mutex_unlock(&stop_lock);
}

void housekeeping_stop(struct server *s)
{
	(void)s;
	housekeeping_signal_stop();
	if (hk_running)
		pthread_join(hk_thread, NULL);
	/* a probe in flight ends within its own timeout */
	if (probe_running)
		pthread_join(probe_thread, NULL);
	hk_running = probe_running = false;
}
