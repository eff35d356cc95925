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
#include "wal.h"

/* The cache's counters and bounds, and with `shards` the per-shard
 * figures ("shards": [{entries, bytes, gets, sets}]). */
json_t *rs_stats_cache_json(const struct rs_cache_stats *cs, bool shards);
/* The log writer's figures; `sync` is its mode name. */
json_t *rs_stats_wal_json(const struct rs_wal_stats *ws, const char *sync);

/* Replace this origin's row with `doc` (not stolen). */
int rs_stats_publish(struct rs_db *db, const char *origin, const json_t *doc,
		     struct rs_err *err);

/* Every published row updated at or after since_ms, newest first, as an
 * array of {"origin","pid","updated_ms","stats":{...}}; an empty array
 * when there are none (or no stats table yet).  NULL with err on a
 * database error. */
json_t *rs_stats_read(struct rs_db *db, int64_t since_ms, struct rs_err *err);

#endif
