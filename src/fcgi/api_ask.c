/*
 * api_ask: POST /api/ask (role operator), the assistant's question to the
 * language model of [upstream llm] (libresync's ask module).  Without an
 * LLM configured the route answers 404, as if it were not there.
 */
#include "log.h"
#include "server.h"
#include "util.h"

void api_ask(struct req *r)
{
	struct rs_ask_request q;
	struct rs_ask_result res;
	json_t *body;
	int rc;

	if (!r->srv->ask) {
		req_error(r, 404, "not_found", "no such resource");
		return;
	}
	/* the route table has checked both fields (router.c) */
	if (!(body = req_json_body(r)))
		return;
	q.prompt = json_string_value(json_object_get(body, "prompt"));
	q.model = json_string_value(json_object_get(body, "model"));
	int64_t deadline = rs_monotonic_ms() + r->conf->request_timeout_ms -
			   req_elapsed_us(r) / 1000;
	rc = rs_ask(r->srv->ask, &q, r->id, deadline, &res);
	json_decref(body);
	r->stage_us[STAGE_UPSTREAM] += res.upstream_us;
	if (rc) {
		RS_LOG(res.breaker_open ? RS_LOG_DEBUG : RS_LOG_WARNING, r->id, "ask: %s", res.detail);
		req_upstream_error(r, res.http_status, res.breaker_open, res.retry_after_ms,
				   res.message);
		return;
	}
	req_json(r, 200, res.answer);
}
