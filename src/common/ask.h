/*
 * ask: the assistant's question to a language model (the seed's LLMRequest),
 * forwarded to an OpenAI-compatible chat completions API, the [upstream
 * llm], through the same pool and breaker as HWA calls.  Not retried: a
 * completion is not idempotent (it costs, and may differ).
 *
 * The request body is {"prompt": "...", "model": "..."}: prompt 1 to 10000
 * characters (Unicode code points), model 1 to 100 of [A-Za-z0-9-_/.],
 * nothing else.  The upstream gets
 *   {"model": M, "messages": [{"role": "system", "content": SYSTEM},
 *                             {"role": "user", "content": PROMPT}]}
 * at [route ask] path (default /v1/chat/completions), and the answer is
 *   {"answer": choices[0].message.content, "model": M, "usage": {...}}.
 *
 * Without an [upstream llm] (or the upstream a [route ask] names) the
 * feature is off: rs_ask_new sets *out to NULL and the API has no /api/ask.
 */
#ifndef RS_ASK_H
#define RS_ASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "upstream.h"

#define RS_ASK_ROUTE "ask"
#define RS_ASK_UPSTREAM "llm"
#define RS_ASK_PROMPT_MAX 10000
#define RS_ASK_MODEL_MAX 100

struct rs_ask;

int rs_ask_new(struct rs_ask **out, const struct rs_config *cfg,
	       struct rs_upstreams *ups, struct rs_err *err);
void rs_ask_free(struct rs_ask *a);

struct rs_ask_request {
	const char *prompt, *model;      /* borrowed from the body */
};

/* A model name: letters, digits, '-', '_', '/' and '.' (the responder's
 * route table declares the rest of a question's rules). */
bool rs_ask_model_valid(const char *m);

struct rs_ask_result {
	json_t *answer;                  /* new reference on success */
	int http_status;                 /* 502, 503, 504 on failure */
	bool breaker_open;
	int64_t retry_after_ms;          /* -1 unknown */
	char message[160];               /* for the client */
	char detail[256];                /* for the log */
	int64_t upstream_us;
};

/* 0 with res->answer, or -1 with res->http_status and message. */
int rs_ask(struct rs_ask *a, const struct rs_ask_request *q,
	   const char *request_id, int64_t deadline_ms, struct rs_ask_result *res);

#endif
