/*
 * stats: the live figures of a running responder as JSON, and the
 * `stats` table it publishes them to so resyncctl can show what only the
 * responder knows (hits, misses, requests) without talking to it.
 *
 * One row per process (its origin), replaced on each publish; a row whose
 * updated_ms is old belongs to a responder that stopped.  JSON values
 * returned are new references the caller owns.
 */
#ifndef RS_STATS_H
#define RS_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "db.h"
#include "err.h"
#include "breaker.h"
#include "upstream.h"
#include "wal.h"

/* The cache's counters and bounds, and with `shards` the per-shard
 * figures ("shards": [{entries, bytes, gets, sets}]). */
json_t *rs_stats_cache_json(const struct rs_cache_stats *cs, bool shards);
/* The log writer's figures; `sync` is its mode name. */
json_t *rs_stats_wal_json(const struct rs_wal_stats *ws, const char *sync);

/* Every upstream: its endpoints, pool and retry figures, as an array of
 * {"name","strategy","calls","retries","retries_denied","panics",
 *  "pool":{...},"endpoints":[...]}.  Histograms are summarised in ms
 * (p50, p95, p99, max). */
json_t *rs_stats_upstreams_json(struct rs_upstreams *ups);
/* One breaker's figures ({"name","state","since",...}); the array of every
 * breaker of ups. */
json_t *rs_stats_breaker_json(const struct rs_breaker_info *bi);
json_t *rs_stats_breakers_json(struct rs_upstreams *ups);

/* Replace this origin's row with `doc` (not stolen). */
int rs_stats_publish(struct rs_db *db, const char *origin, const json_t *doc,
		     struct rs_err *err);

/* Every published row updated at or after since_ms, newest first, as an
 * array of {"origin","pid","updated_ms","stats":{...}}; an empty array
 * when there are none (or no stats table yet).  NULL with err on a
 * database error. */
json_t *rs_stats_read(struct rs_db *db, int64_t since_ms, struct rs_err *err);

#endif
