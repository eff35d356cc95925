/* audit_seed DB KEYFILE|- N [ACTION]: append N chained records to DB's
 * audit log, as resync-fcgi would, for tests/cli/audit.bats (resyncctl
 * writes only its own commands and prune checkpoints).  Record i: actor key:ops or
 * jwt:alice, action auth.failure or cache.purge (or ACTION), target ti,
 * time now - (N - i) minutes. */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "util.h"

int main(int argc, char **argv)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db *db = NULL;
	struct rs_keyring *keys = NULL;

	if (argc < 4) {
		fprintf(stderr, "usage: audit_seed DB KEYFILE|- N [ACTION]\n");
		return 2;
	}
	int n = atoi(argv[3]);
	if (rs_db_open(&db, argv[1], NULL, &err) < 0 ||
	    (argv[2][0] != '-' && rs_keyring_load(&keys, argv[2], &err) < 0)) {
		fprintf(stderr, "audit_seed: %s\n", err.msg);
		return 2;
	}
	int64_t now = rs_now_ms() * 1000;
	for (int i = 1; i <= n; i++) {
		char target[32];
		json_t *d = json_pack("{s:i}", "n", i);
		snprintf(target, sizeof(target), "t%d", i);
		struct rs_audit_event ev = {
			.actor = i % 3 ? "key:ops" : "jwt:alice", .source = "10.0.0.1",
			.action = argc > 4 ? argv[4] : i % 2 ? "auth.failure" : "cache.purge",
			.target = target, .request_id = "rid",
			.outcome = i % 2 ? RS_AUDIT_DENIED : RS_AUDIT_SUCCESS, .details = d,
			.time_us = now - (int64_t)(n - i) * 60000000,
		};
		int rc = rs_audit_append_db(db, keys, &ev, NULL, &err);
		json_decref(d);
		if (rc < 0) {
			fprintf(stderr, "audit_seed: %s\n", err.msg);
			return 1;
		}
	}
	rs_keyring_free(keys);
	rs_db_close(db);
	return 0;
}
