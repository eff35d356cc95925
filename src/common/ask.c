/*
 * ask: one question to the LLM upstream (see ask.h).
 */
#include "ask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DEFAULT_PATH "/v1/chat/completions"
#define SYSTEM_PROMPT \
	"You are Resync, an assistant for operators of HCL Workload Automation. " \
	"Answer briefly and precisely."

struct rs_ask {
	struct rs_upstreams *ups;
	struct rs_upstream *u;
	struct rs_breaker *b;
	char *path;
};

int rs_ask_new(struct rs_ask **out, const struct rs_config *cfg,
	       struct rs_upstreams *ups, struct rs_err *err)
{
	const struct rs_conf_section *s = rs_config_find(cfg, "route", RS_ASK_ROUTE);
	const struct rs_conf_value *v;
	const char *up = RS_ASK_UPSTREAM, *path = DEFAULT_PATH;
	struct rs_ask *a;

	*out = NULL;
	if (s && (v = rs_conf_get(s, "enabled")) && !v->num)
		return 0;
	if (s && (v = rs_conf_get(s, "upstream")) && v->str)
		up = v->str;
	if (s && (v = rs_conf_get(s, "path")) && v->str)
		path = v->str;
	if (!rs_upstreams_find(ups, up)) {
		if (s)
			return rs_err_set(err, "[route %s]: no [upstream %s] is configured",
					  RS_ASK_ROUTE, up);
		return 0;        /* no LLM configured: the feature is off */
	}
	if (!(a = calloc(1, sizeof(*a))) || !(a->path = strdup(path))) {
		free(a);
		return rs_err_set(err, "out of memory");
	}
	a->ups = ups;
	a->u = rs_upstreams_find(ups, up);
	a->b = rs_upstreams_breaker(ups, a->u, RS_ASK_ROUTE);
	*out = a;
	return 0;
}

void rs_ask_free(struct rs_ask *a)
{
	if (!a)
		return;
	free(a->path);
	free(a);
}

bool rs_ask_model_valid(const char *m)
{
	for (; *m; m++)
		if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') ||
		      (*m >= '0' && *m <= '9') || strchr("-_/.", *m)))
			return false;
	return true;
}

static int failed(struct rs_ask_result *res, int status, const char *client,
		  const char *detail)
{
	res->http_status = status;
	rs_copy_text(res->message, sizeof(res->message), client);
	rs_copy_text(res->detail, sizeof(res->detail), detail);
	return -1;
}

/* choices[0].message.content, or NULL */
static json_t *answer_of(const json_t *doc)
{
	json_t *c = json_object_get(json_object_get(json_array_get(
		json_object_get(doc, "choices"), 0), "message"), "content");

	return json_is_string(c) ? c : NULL;
}

int rs_ask(struct rs_ask *a, const struct rs_ask_request *q,
	   const char *request_id, int64_t deadline_ms, struct rs_ask_result *res)
{
	struct rs_call_result cr;
	char detail[256];
	json_t *req, *doc;
	char *body;
	int rc;

	memset(res, 0, sizeof(*res));
	res->retry_after_ms = -1;
	req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}]}", "model", q->model, "messages",
			"role", "system", "content", SYSTEM_PROMPT,
			"role", "user", "content", q->prompt);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return failed(res, 503, "out of memory", "out of memory");
	struct rs_call call = {
		"POST", a->path, body, strlen(body), false, request_id, deadline_ms,
	};
	rc = rs_upstream_call(a->ups, a->u, a->b, &call, &cr);
	free(body);
	res->upstream_us = cr.upstream_us;
	res->retry_after_ms = cr.retry_after_ms;
	res->breaker_open = cr.breaker_open;
	if (rc) {
		char msg[sizeof(res->message)];
		int status = rs_call_failure(&cr, "language model", msg, sizeof(msg));

		rs_buf_free(&cr.body);
		return failed(res, status, msg, cr.message);
	}
	if (cr.status < 200 || cr.status > 299) {
		snprintf(detail, sizeof(detail), "upstream %s answered HTTP %ld for %.100s",
			 rs_upstream_name(a->u), cr.status, a->path);
		rs_buf_free(&cr.body);
		return failed(res, cr.status == 429 || cr.status == 503 ? 503 : 502,
			      "the language model answered with an error", detail);
	}
	doc = json_loadb(cr.body.data ? cr.body.data : "", cr.body.len, 0, NULL);
	rs_buf_free(&cr.body);
	json_t *text = doc ? answer_of(doc) : NULL;
	if (!text) {
		json_decref(doc);
		snprintf(detail, sizeof(detail), "upstream %s: no choices[0].message.content in the answer",
			 rs_upstream_name(a->u));
		return failed(res, 502, "the language model answered in an unknown format", detail);
	}
	res->answer = json_pack("{s:O,s:s,s:O?}", "answer", text, "model",
				json_is_string(json_object_get(doc, "model")) ?
				json_string_value(json_object_get(doc, "model")) : q->model,
				"usage", json_object_get(doc, "usage"));
	json_decref(doc);
	return res->answer ? 0 : failed(res, 503, "out of memory", "out of memory");
}
