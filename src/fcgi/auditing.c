/*
 * auditing: the responder's records in the audit log (src/common/audit.h).
 *
 * [audit] enabled opens the writer at start (restart to change its
 * settings); key_file is the HMAC keyring.  With sync = always a record is
 * committed before the request that caused it is answered (the append
 * waits); otherwise it is queued.  [audit] on_full: block waits for room;
 * fail marks the request, which is then answered 503 audit_unavailable
 * whatever it would have been, so no event is ever dropped silently.
 *
 * Who: "key:NAME" or "jwt:SUB" when the request authenticated, else
 * "ip:ADDR"; the responder's own events (breakers, reloads) are "system".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "seal.h"
#include "server.h"
#include "util.h"

int auditing_start(struct server *s, const struct rs_config *cfg, struct rs_err *err)
{
	struct rs_audit_options o = { 0 };
	const char *key_file = rs_config_str(cfg, "audit", "key_file");

	if (!rs_config_num(cfg, "audit", "enabled"))
		return 0;
	if (key_file && rs_keyring_load(&s->audit_keys, key_file, err) < 0) {
		rs_err_prefix(err, "[audit] key_file");
		return -1;
	}
	o.db_path = s->db_path;
	o.keys = s->audit_keys;
	o.queue_size = (unsigned)rs_config_num(cfg, "audit", "queue_size");
	o.fail_when_full = strcmp(rs_config_str(cfg, "audit", "on_full"), "fail") == 0;
	o.sync_always = s->sync == RS_WAL_SYNC_ALWAYS;
	o.syslog = rs_config_num(cfg, "audit", "syslog") != 0;
	o.syslog_facility = rs_log_facility(rs_config_str(cfg, "audit", "syslog_facility"));
	if (rs_audit_open(&s->audit, &o, err) < 0) {
		rs_err_prefix(err, "the audit log");
		return -1;
	}
	if (!s->audit_keys)
		RS_LOG(RS_LOG_WARNING, NULL, "the audit log is chained with plain SHA-256: set [audit] key_file");
	return 0;
}

void auditing_stop(struct server *s)
{
	rs_audit_close(s->audit);
	s->audit = NULL;
	rs_keyring_free(s->audit_keys);
	s->audit_keys = NULL;
}

static int append(struct server *s, const struct rs_audit_event *ev, const char *rid)
{
	struct rs_err err = RS_ERR_INIT;

	if (!s->audit)
		return 0;
	if (rs_audit_append(s->audit, ev, NULL, &err) == 0)
		return 0;
	RS_LOG(RS_LOG_ERROR, rid, "audit record %s not written: %s", ev->action, err.msg);
	return -1;
}

void audit_request(struct req *r, const char *action, enum rs_audit_outcome o,
		   const char *target, json_t *details)
{
	char actor[RS_RL_NAME_MAX];
	const char *addr = r->remote_addr ? r->remote_addr : "-";

	req_client(r, actor, sizeof(actor));
	struct rs_audit_event ev = {
		.actor = actor, .source = addr, .action = action,
		.target = target ? target : r->path, .request_id = r->id,
		.outcome = o, .details = details,
	};
	if (append(r->srv, &ev, r->id) < 0)
		r->audit_failed = true;
	json_decref(details);
}

void audit_system(struct server *s, const char *action, enum rs_audit_outcome o,
		  const char *target, json_t *details)
{
	struct rs_audit_event ev = {
		.actor = "system", .source = s->origin, .action = action,
		.target = target, .outcome = o, .details = details,
	};
	append(s, &ev, NULL);
	json_decref(details);
}

void audit_stats_json(struct server *s, json_t *into)
{
	struct rs_audit_stats st;

	if (!s->audit) {
		json_object_set_new(into, "audit", json_pack("{s:b}", "enabled", 0));
		return;
	}
	rs_audit_stats(s->audit, &st);
	json_object_set_new(into, "audit", json_pack(
		"{s:b,s:I,s:I,s:I,s:I,s:i,s:i,s:I,s:b,s:s?}", "enabled", 1,
		"appended", (json_int_t)st.appended, "written", (json_int_t)st.written,
		"failed_commits", (json_int_t)st.failed_commits, "refused", (json_int_t)st.refused,
		"queued", (int)st.queued, "queue_size", (int)st.queue_size,
		"last_seq", (json_int_t)st.last_seq, "degraded", st.degraded,
		"last_error", st.last_error[0] ? st.last_error : NULL));
}

int audit_metrics(struct server *s, struct rs_buf *b)
{
	struct rs_audit_stats st = { 0 };

	if (s->audit)
		rs_audit_stats(s->audit, &st);
	return rs_buf_printf(b,
		"# HELP resync_audit_records_total audit records written\n"
		"# TYPE resync_audit_records_total counter\n"
		"resync_audit_records_total %llu\n"
		"# HELP resync_audit_queue_depth audit records waiting to be written\n"
		"# TYPE resync_audit_queue_depth gauge\n"
		"resync_audit_queue_depth %u\n"
		"# HELP resync_audit_queue_size [audit] queue_size\n"
		"# TYPE resync_audit_queue_size gauge\n"
		"resync_audit_queue_size %u\n"
		"# HELP resync_audit_refused_total audit records refused because the queue was full (on_full = fail)\n"
		"# TYPE resync_audit_refused_total counter\n"
		"resync_audit_refused_total %llu\n"
		"# HELP resync_audit_commit_failures_total failed audit commits (retried)\n"
		"# TYPE resync_audit_commit_failures_total counter\n"
		"resync_audit_commit_failures_total %llu\n"
		"# HELP resync_audit_degraded 1 when the last audit commit failed\n"
		"# TYPE resync_audit_degraded gauge\n"
		"resync_audit_degraded %d\n"
		"# HELP resync_audit_commits_total audit commits that wrote records (records_total / commits_total: records per commit)\n"
		"# TYPE resync_audit_commits_total counter\n"
		"resync_audit_commits_total %llu\n",
		(unsigned long long)st.written, st.queued, st.queue_size,
		(unsigned long long)st.refused, (unsigned long long)st.failed_commits,
		st.degraded ? 1 : 0, (unsigned long long)st.batches);
}
