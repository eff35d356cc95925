/*
 * validate: the rules that span keys and sections, and the rules of the
 * `environment` setting.  rs_config_load has already checked each value on
 * its own; rs_config_check adds what only the whole configuration shows:
 * required keys, the seed's ConnectionPoolValidator rules, cache and retry
 * consistency, references between sections, and what production refuses
 * (wildcard CORS with credentials, inline or weak secrets, secret files
 * readable by others, TLS verification off, audit off, debug logging).
 * In production those are errors; in development and test, warnings.
 *
 * It reads files only to check that they exist and who may read them; it
 * writes nothing and opens no database or socket.  resyncctl
 * config-validate and resync-fcgi --check both call it.
 */
#ifndef RS_VALIDATE_H
#define RS_VALIDATE_H

#include "config.h"
#include "diag.h"

void rs_config_check(const struct rs_config *cfg, struct rs_diags *diags);

/* Smallest cache entry footprint assumed by the max_memory/max_entries
 * consistency check: entry header plus a short key and value. */
#define RS_CACHE_MIN_ENTRY_BYTES 128

/* Shortest JWT HS256 key production accepts (RFC 7518 3.2: the key must be
 * at least as long as the hash output). */
#define RS_MIN_SECRET_BYTES 32

#endif
