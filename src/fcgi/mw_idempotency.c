/*
 * mw_idempotency: step 6 of the chain, Idempotency-Key on POST, PUT,
 * PATCH and DELETE (src/common/idempotency.h keeps the keys in SQLite, so
 * they survive a restart and hold across processes sharing the file).
 *
 * Runs after the input checks, so an invalid request never claims a key.
 * The key is scoped to the client (API key name, JWT subject, or address
 * when anonymous) and bound to a fingerprint of the request: SHA-256 over
 * method, path, query and body.  Outcomes:
 *   new       the handler runs; its answer is stored for [idempotency]
 *             ttl, unless it is a 5xx or larger than max_response, which
 *             release the key so the client may try again
 *   replay    the stored status and body, with Idempotent-Replayed: true
 *   running   409 idempotency_conflict (the first is still running)
 *   mismatch  422 idempotency_mismatch (the key was used for another
 *             request)
 * The replayed answer carries this request's own id, security and rate
 * limit headers: only the status, content type and body are stored.
 */
#include <openssl/evp.h>
#include <string.h>

#include "idempotency.h"
#include "log.h"
#include "server.h"
#include "util.h"

static bool unsafe(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	       strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

static int fingerprint(const struct req *r, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const char *q = r->query ? r->query : "";
	/* NUL separators: ("a", "bc") and ("ab", "c") differ */
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(c, r->method, strlen(r->method) + 1) &&
		 EVP_DigestUpdate(c, r->path, strlen(r->path) + 1) &&
		 EVP_DigestUpdate(c, q, strlen(q) + 1) &&
		 (!r->body_len || EVP_DigestUpdate(c, r->body, r->body_len)) &&
		 EVP_DigestFinal_ex(c, out, NULL);

	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

static struct rs_db *writer(struct req *r, struct rs_err *err)
{
	struct worker *w = r->worker;
	struct rs_db_options o = { .sync = RS_DB_SYNC_NORMAL };

	if (!w->wdb && rs_db_open(&w->wdb, r->srv->db_path, &o, err) < 0)
		return NULL;
	return w->wdb;
}

static void unavailable(struct req *r, const struct rs_err *err)
{
	RS_LOG(RS_LOG_ERROR, r->id, "Idempotency-Key: %s", err->msg);
	/* reopen next time: the file may have been replaced */
	if (r->worker->wdb) {
		rs_db_close(r->worker->wdb);
		r->worker->wdb = NULL;
	}
	req_error(r, 503, "service_unavailable",
		  "the Idempotency-Key could not be checked; try again");
}

int idempotency_begin(struct req *r)
{
	const char *key = r->p.idempotency_key;
	struct rs_err err = RS_ERR_INIT;
	struct rs_idem_response resp = { 0 };
	enum rs_idem_outcome out;

	if (!key || !unsafe(r->method))
		return 0;
	if (!rs_idem_key_valid(key)) {
		req_json(r, 400, json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "code", "bad_request",
					   "message", "Idempotency-Key: must be 1 to 255 printable ASCII characters",
					   "field", "Idempotency-Key", "request_id", r->id));
		return -1;
	}
	req_client(r, r->idem_scope, sizeof(r->idem_scope));
	if (fingerprint(r, r->idem_fp) < 0) {
		req_error(r, 500, "internal_error", "the request could not be fingerprinted");
		return -1;
	}

	int64_t t0 = rs_monotonic_us();
	struct rs_db *db = writer(r, &err);
	int rc = db ? rs_idem_begin(db, r->idem_scope, key, r->idem_fp, rs_now_ms(),
				    r->conf->idem_ttl_ms, r->conf->idem_lock_ms, &out, &resp, &err)
		    : -1;
	r->stage_us[STAGE_DATABASE] += rs_monotonic_us() - t0;
	if (rc < 0) {
		unavailable(r, &err);
		return -1;
	}
	switch (out) {
	case RS_IDEM_NEW:
		r->idem_claimed = true;
		return 0;
	case RS_IDEM_REPLAY:
		rs_buf_free(&r->out);
		rs_buf_init(&r->out, RESPONSE_MAX);
		if (rs_buf_append(&r->out, resp.body, resp.body_len) < 0) {
			req_error(r, 500, "internal_error", "the stored answer could not be replayed");
		} else {
			r->status = resp.status;
			if (resp.headers[0])
				req_add_header_str(r, resp.headers);
			req_add_header_str(r, "Idempotent-Replayed: true");
		}
		rs_idem_response_free(&resp);
		return -1;
	case RS_IDEM_RUNNING:
		audit_request(r, "idempotency.conflict", RS_AUDIT_DENIED, r->route_name,
			      json_pack("{s:s,s:s}", "key", key, "reason", "running"));
		req_error(r, 409, "idempotency_conflict",
			  "a request with this Idempotency-Key is still being processed");
		return -1;
	case RS_IDEM_MISMATCH:
	default:
		audit_request(r, "idempotency.conflict", RS_AUDIT_DENIED, r->route_name,
			      json_pack("{s:s,s:s}", "key", key, "reason", "mismatch"));
		req_error(r, 422, "idempotency_mismatch",
			  "this Idempotency-Key was used for a different request");
		return -1;
	}
}

void idempotency_end(struct req *r)
{
	struct rs_err err = RS_ERR_INIT;
	const char *key = r->p.idempotency_key;
	char ctype[160] = "";
	int rc;

	if (!r->idem_claimed)
		return;
	r->idem_claimed = false;
	int64_t t0 = rs_monotonic_us();
	struct rs_db *db = writer(r, &err);
	if (!db) {
		rc = -1;
	} else if (r->status >= 500 || r->out.len > (size_t)r->conf->idem_max_response) {
		rc = rs_idem_release(db, r->idem_scope, key, r->idem_fp, &err);
	} else {
		if (r->content_type)
			snprintf(ctype, sizeof(ctype), "Content-Type: %s", r->content_type);
		rc = rs_idem_finish(db, r->idem_scope, key, r->idem_fp, r->status, ctype,
				    r->out.data ? r->out.data : "", r->out.len, rs_now_ms(),
				    r->conf->idem_ttl_ms, &err);
	}
	r->stage_us[STAGE_DATABASE] += rs_monotonic_us() - t0;
	/* the answer stands; the key then stays claimed until lock_timeout */
	if (rc < 0)
		RS_LOG(RS_LOG_ERROR, r->id, "Idempotency-Key: storing the answer: %s", err.msg);
}

void idempotency_prune(struct server *s, struct rs_db **db)
{
	struct rs_err err = RS_ERR_INIT;
	struct rs_db_options o = { .sync = RS_DB_SYNC_NORMAL };
	uint64_t removed = 0;

	if (!*db && rs_db_open(db, s->db_path, &o, &err) < 0) {
		RS_LOG(RS_LOG_WARNING, NULL, "pruning Idempotency-Keys: %s", err.msg);
		return;
	}
	if (rs_idem_prune(*db, rs_now_ms(), &removed, &err) < 0) {
		RS_LOG(RS_LOG_WARNING, NULL, "pruning Idempotency-Keys: %s", err.msg);
		rs_db_close(*db);
		*db = NULL;
	} else if (removed) {
		RS_LOG(RS_LOG_DEBUG, NULL, "pruned %llu expired Idempotency-Keys",
		       (unsigned long long)removed);
	}
}
