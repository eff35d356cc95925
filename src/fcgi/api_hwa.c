/*
 * api_hwa: the HWA questions (/api/jobs/status, /api/jobs/{id},
 * /api/workstations..., /api/system/status, /api/plan/jobstreams),
 * answered by libresync's hwa module from the cache or the HWA REST API.
 *
 * The body is the HWA answer as the upstream gave it.  X-Cache says where
 * it came from (HIT, MISS, STALE) and Age how old it is; a STALE answer,
 * served because the upstream failed or its breaker is open, also carries
 * a Warning.  With nothing to serve: 503 (breaker open, pool exhausted),
 * 502 or 504, with Retry-After when known.
 */
#include <string.h>

#include "log.h"
#include "server.h"
#include "util.h"

static void answer(struct req *r, enum rs_hwa_route route)
{
	struct rs_hwa_result res;
	int64_t t0 = rs_monotonic_us();
	int64_t deadline = rs_monotonic_ms() + r->conf->request_timeout_ms -
			   req_elapsed_us(r) / 1000;
	int rc;

	rc = rs_hwa_get(r->srv->hwa, route, r->path_param, r->id, deadline, &res);
	r->stage_us[STAGE_UPSTREAM] += res.upstream_us;
	r->stage_us[STAGE_CACHE] += rs_monotonic_us() - t0 - res.upstream_us;
	/* an open breaker's refusals would flood the log in an outage: its
	 * transitions are logged instead */
	if (res.detail[0])
		RS_LOG(res.breaker_open ? RS_LOG_DEBUG : rc ? RS_LOG_WARNING : RS_LOG_NOTICE,
		       r->id, "%s%s", res.detail, rc ? "" : "; serving the stale answer");
	if (rc) {
		req_upstream_error(r, res.http_status, res.breaker_open, res.retry_after_ms,
				   res.message);
		return;
	}
	static const char *const names[] = { "MISS", "HIT", "STALE" };
	r->cache_status = names[res.cache];
	req_add_header(r, "X-Cache: %s", r->cache_status);
	int64_t age = (rs_now_ms() - res.value.stored_ms) / 1000;
	req_add_header(r, "Age: %lld", (long long)(age > 0 ? age : 0));
	if (res.cache == RS_CACHE_STALE)
		req_add_header_str(r, res.revalidating ? "Warning: 110 resync \"Response is Stale\""
						      : "Warning: 111 resync \"Revalidation Failed\"");
	r->status = 200;
	rs_buf_reset(&r->out);
	if (rs_buf_append(&r->out, res.value.data, res.value.len) ||
	    rs_buf_putc(&r->out, '\n'))
		req_error(r, 500, "internal_error", "the answer is too large");
	rs_cache_value_free(&res.value);
}

void api_hwa_system_status(struct req *r) { answer(r, RS_HWA_SYSTEM_STATUS); }
void api_hwa_workstations_status(struct req *r) { answer(r, RS_HWA_WORKSTATIONS_STATUS); }
void api_hwa_jobs_status(struct req *r) { answer(r, RS_HWA_JOBS_STATUS); }
void api_hwa_job(struct req *r) { answer(r, RS_HWA_JOB); }
void api_hwa_workstations(struct req *r) { answer(r, RS_HWA_WORKSTATIONS); }
void api_hwa_workstation(struct req *r) { answer(r, RS_HWA_WORKSTATION); }
void api_hwa_jobstreams(struct req *r) { answer(r, RS_HWA_JOBSTREAMS); }
