#!/usr/bin/env bats
# The HWA routes and the upstream path behind them: cache, single-flight,
# stale answers, breaker, retries and their budget, the pool, endpoint
# ejection, through nginx + resync-fcgi + the fake HWA server
# (tests/fakehwa), which misbehaves on command.

load helpers

JOBQ=/twsd/api/v2/plan/current/job/query
INFO=/twsd/api/v2/engine/info
JOB=0AAAAAAAAAAAAB5C.LOAD_LEDGER

# up_start [SECTION.KEY=VALUE ...]: a fake HWA on $FAKE, the responder's
# [upstream hwa] on it, retries quick, then nginx + resync-fcgi.
up_start() {
	fake_start FAKE
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE" \
		"upstream hwa.health_check_path=$INFO" \
		retry.base=10ms retry.cap=50ms "$@"
	rs_start
}

# plan_calls PORT: calls to /twsd/api/v2/plan... the fake on PORT has seen.
plan_calls() {
	curl -sf "http://127.0.0.1:$1/_stats" |
		jq '[.paths | to_entries[] | select(.key | startswith("/twsd/api/v2/plan")) | .value] | add // 0'
}

@test "HWA routes: each answers from the upstream once, then from the cache" {
	up_start
	for route in /api/system/status /api/workstations/status /api/jobs/status \
		/api/jobs/$JOB /api/workstations /api/workstations/FTA_LNX01 /api/plan/jobstreams; do
		req_viewer GET "$route"
		assert_code 200
		assert_header X-Cache MISS
		echo "$output" | jq -e . >/dev/null
		req_viewer GET "$route"
		assert_code 200
		assert_header X-Cache HIT
		assert_header_matches Age '^[0-9]+$'
	done
	[ "$(fake_calls "$FAKE" "$JOBQ")" = 1 ]
	req_viewer GET /api/jobs/status
	assert_jq '.[1].status == "ABEND"'
	req_viewer GET /api/jobs/$JOB
	assert_jq '.returnCode == 12'
	grep -q '"path":"/api/jobs/status".*"cache":"MISS".*"upstream_ms":' "$T/access.log"
	grep '"path":"/api/jobs/status".*"cache":"HIT"' "$T/access.log" | grep -vq upstream_ms
}

@test "HWA routes: a key is needed; ids are checked; an unknown job is 404" {
	up_start
	req GET /api/jobs/status
	assert_code 401
	req_viewer GET /api/jobs/..secret
	assert_error 400 bad_request
	assert_output_has '"message":"id:'
	req_viewer GET '/api/workstations/a%2fb'
	assert_error 400 bad_request
	assert_output_has '"message":"name:'
	req_viewer GET /api/jobs/NO_SUCH_JOB
	assert_error 404 not_found
	req_viewer POST /api/jobs/status
	assert_code 405
}

@test "[route]: path, TTL and enabled come from the configuration" {
	up_start "route jobs_status.path=$INFO" "route jobs_status.method=GET" \
		"route jobs_status.ttl=1s" "route jobstreams.enabled=false"
	req_viewer GET /api/jobs/status
	assert_code 200
	assert_jq '.engineType == "distributed"'
	[ "$(fake_calls "$FAKE" "$INFO")" -ge 1 ]
	before=$(fake_calls "$FAKE" "$INFO")
	sleep 1.2
	req_viewer GET /api/jobs/status
	assert_header X-Cache MISS
	[ "$(fake_calls "$FAKE" "$INFO")" -gt "$before" ]
	req_viewer GET /api/plan/jobstreams
	assert_error 404 not_found
}

@test "single-flight: 20 concurrent misses reach the upstream once" {
	up_start
	fault "$FAKE" "mode=latency&ms=400&path=$JOBQ"
	pids=()
	for i in $(seq 1 20); do
		curl -s -o "$T/sf.$i" -w '%{http_code}\n' -H "X-API-Key: $VIEWER_KEY" \
			"$RS_URL/api/jobs/status" >"$T/sf.$i.code" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq 1 20); do [ "$(cat "$T/sf.$i.code")" = 200 ]; done
	[ "$(fake_calls "$FAKE" "$JOBQ")" = 1 ]
}

@test "stale-if-error: a failing upstream gets the stale answer with a Warning" {
	up_start cache.stale_if_error=1m "route jobs_status.ttl=1s" retry.attempts=1
	req_viewer GET /api/jobs/status
	assert_header X-Cache MISS
	fault "$FAKE" "mode=status&status=500"
	sleep 1.2
	req_viewer GET /api/jobs/status
	assert_code 200
	assert_header X-Cache STALE
	assert_header_matches Warning '^111 '
	assert_jq '.[1].status == "ABEND"'
	grep -q 'answered HTTP 500' "$T/resync.log"
}

@test "stale-while-revalidate: the stale answer at once, one refresh behind it" {
	up_start cache.stale_while_revalidate=30s "route jobs_status.ttl=1s"
	req_viewer GET /api/jobs/status
	assert_header X-Cache MISS
	fault "$FAKE" "mode=latency&ms=1000&path=$JOBQ"
	sleep 1.2
	t0=$(now_ms)
	for _ in 1 2 3; do
		req_viewer GET /api/jobs/status
		assert_code 200
		assert_header X-Cache STALE
		assert_header_matches Warning '^110 '
	done
	took=$(($(now_ms) - t0))
	[ "$took" -lt 900 ] || { echo "the stale answers took $took ms" >&2; false; }
	# one refresh, whatever the number of stale answers
	wait_for 5 eval 'req_viewer GET /api/jobs/status && [ "${HDR[x-cache]}" = HIT ]'
	[ "$(fake_calls "$FAKE" "$JOBQ")" = 2 ]
}

@test "breaker: down -> stale -> open -> 503 once stale runs out -> half-open -> closed" {
	up_start cache.stale_if_error=2s "route jobs_status.ttl=1s" retry.attempts=1 \
		"breaker hwa.upstream=hwa" "breaker hwa.fail_max=3" "breaker hwa.open_duration=3s"
	req_viewer GET /api/jobs/status
	assert_header X-Cache MISS
	fault "$FAKE" "mode=status&status=503"
	sleep 1.1
	for _ in 1 2 3; do
		req_viewer GET /api/jobs/status
		assert_code 200
		assert_header X-Cache STALE
	done
	# open: the upstream is not called any more
	calls=$(fake_calls "$FAKE" "$JOBQ")
	req_viewer GET /api/jobs/status
	assert_header X-Cache STALE
	[ "$(fake_calls "$FAKE" "$JOBQ")" = "$calls" ]
	req_viewer GET /api/health -H "X-API-Key: $VIEWER_KEY"
	assert_jq '.components.upstreams.hwa.breaker == "open" and .status == "degraded"'
	# the stale window runs out: 503 with Retry-After
	sleep 2
	req_viewer GET /api/jobs/status
	assert_error 503 circuit_open
	assert_header_matches Retry-After '^[0-9]+$'
	# the upstream recovers; after open_duration one trial closes the breaker
	fault "$FAKE" "mode=none"
	wait_for 5 eval 'req_viewer GET /api/jobs/status && [ "$code" = 200 ]'
	assert_header X-Cache MISS
	req_viewer GET /metrics
	assert_output_matches '^resync_breaker_state\{breaker="hwa",state="closed"\} 1$'
	assert_output_matches '^resync_breaker_transitions_total\{breaker="hwa",to="open"\} 1$'
	# transitions are logged within a second
	wait_for 3 grep -q 'circuit breaker hwa: closed -> open' "$T/resync.log"
	wait_for 3 grep -q 'circuit breaker hwa: half_open -> closed' "$T/resync.log"
}

@test "retries: two 503s then an answer; a 500 is not retried" {
	up_start retry.attempts=3
	fault "$FAKE" "mode=status&status=503&count=2"
	req_viewer GET /api/jobs/status
	assert_code 200
	[ "$(fake_calls "$FAKE" "$JOBQ")" = 3 ]
	fault "$FAKE" "mode=status&status=500&path=/twsd/api/v2/plan/current/job/$JOB"
	req_viewer GET /api/jobs/$JOB
	assert_error 502 bad_gateway
	[ "$(fake_calls "$FAKE" "/twsd/api/v2/plan/current/job/$JOB")" = 1 ]
}

@test "retries: a 429's Retry-After is waited out, or passed on when it is too long" {
	up_start retry.attempts=2
	fault "$FAKE" "mode=status&status=429&retry_after=1&count=1"
	t0=$(now_ms)
	req_viewer GET /api/jobs/status
	took=$(($(now_ms) - t0))
	assert_code 200
	[ "$took" -ge 900 ] || { echo "the retry came after $took ms, not 1 s" >&2; false; }
	[ "$(fake_calls "$FAKE" "$JOBQ")" = 2 ]
	# past the request's deadline: no retry, the client is told when
	fault "$FAKE" "mode=status&status=503&retry_after=120&path=/twsd/api/v2/plan/current/job/R1"
	req_viewer GET /api/jobs/R1
	assert_error 503 upstream_unavailable
	assert_header Retry-After 120
	[ "$(fake_calls "$FAKE" /twsd/api/v2/plan/current/job/R1)" = 1 ]
}

@test "retry budget: under a 100% failure rate retries stay within the budget" {
	up_start retry.attempts=3 retry.budget_percent=10 retry.budget_min_per_second=0 \
		"upstream hwa.max_fails=0" "breaker hwa.upstream=hwa" "breaker hwa.fail_max=1000"
	fault "$FAKE" "mode=status&status=503&path=/twsd/api/v2/plan/current/job/J"
	for i in $(seq 1 20); do
		req_viewer GET /api/jobs/J$i
		assert_code 503
	done
	total=0
	for i in $(seq 1 20); do
		total=$((total + $(fake_calls "$FAKE" "/twsd/api/v2/plan/current/job/J$i")))
	done
	# 20 calls, and at most 10% of them retried (not 40 more)
	[ "$total" -ge 20 ] && [ "$total" -le 22 ] || { echo "upstream saw $total calls" >&2; false; }
	req_viewer GET /metrics
	assert_output_matches '^resync_upstream_retries_total\{upstream="hwa",outcome="denied"\} [1-9][0-9]*$'
}

@test "pool exhausted: a clear 503 at once, no hang" {
	up_start pool.max_size=1 pool.min_size=1 pool.connection_timeout=300ms \
		server.request_timeout=5s retry.attempts=1
	fault "$FAKE" "mode=hang&path=$JOBQ"
	curl -s -o /dev/null -H "X-API-Key: $VIEWER_KEY" --max-time 10 "$RS_URL/api/jobs/status" &
	wait_for 5 eval '[ "$(fake_calls "$FAKE" "$JOBQ")" = 1 ]'
	t0=$(now_ms)
	req_viewer GET /api/system/status
	took=$(($(now_ms) - t0))
	assert_error 503 upstream_unavailable
	assert_output_has 'too many requests to the HWA service'
	[ "$took" -lt 3000 ] || { echo "the 503 took $took ms" >&2; false; }
	grep -q 'pool exhausted' "$T/resync.log"
	req_viewer GET /metrics
	assert_output_matches '^resync_upstream_pool_exhaustions_total\{upstream="hwa"\} [1-9]'
}

@test "a slow upstream: 504 after request_timeout, and slow calls open the breaker" {
	up_start "upstream hwa.request_timeout=300ms" retry.attempts=1 \
		"breaker hwa.upstream=hwa" "breaker hwa.window=count" "breaker hwa.window_size=4" \
		"breaker hwa.minimum_calls=2" "breaker hwa.slow_call_duration=100ms" \
		"breaker hwa.slow_call_rate_threshold=50" "breaker hwa.failure_rate_threshold=100"
	fault "$FAKE" "mode=latency&ms=2000&path=/twsd/api/v2/plan/current/job/S1"
	req_viewer GET /api/jobs/S1
	assert_error 504 upstream_timeout
	fault "$FAKE" "mode=latency&ms=200"
	req_viewer GET /api/jobs/$JOB
	assert_code 200
	req_viewer GET /api/jobs/S2
	assert_error 503 circuit_open
}

@test "endpoints: a failing one is ejected, calls go to the other, it returns" {
	fake_start FAKE
	fake_start FAKE2
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE, http://127.0.0.1:$FAKE2" \
		"upstream hwa.health_check_path=$INFO" "upstream hwa.max_fails=2" \
		"upstream hwa.fail_timeout=2s" "upstream hwa.slow_start=0" \
		retry.attempts=3 retry.base=10ms retry.cap=20ms \
		"breaker hwa.upstream=hwa" "breaker hwa.fail_max=1000"
	rs_start
	fault "$FAKE2" "mode=status&status=502&path=/twsd/api/v2/plan"
	for i in $(seq 1 10); do
		req_viewer GET /api/jobs/E$i
		assert_code 404      # answered by the good one: no such job there
	done
	bad=$(curl -sf "http://127.0.0.1:$FAKE2/_stats" | jq .faults_applied)
	[ "$bad" -le 3 ] || { echo "the failing endpoint got $bad calls" >&2; false; }
	grep -q "endpoint http://127.0.0.1:$FAKE2 ejected" "$T/resync.log"
	req_viewer GET /api/health
	assert_jq ".components.upstreams.hwa.endpoint_detail[1].state == \"ejected\""
	fault "$FAKE2" "mode=none"
	sleep 2.2
	for i in $(seq 11 16); do req_viewer GET /api/jobs/E$i; done
	[ "$(plan_calls "$FAKE2")" -gt "$bad" ]
}

@test "resyncctl breaker open reaches a running responder; close lets calls through" {
	up_start
	req_viewer GET /api/jobs/$JOB
	assert_code 200
	rctl breaker open hwa
	# a new id each time: a cached answer needs no upstream call
	n=0
	wait_for 5 eval 'req_viewer GET /api/jobs/X$((++n)) && [ "$code" = 503 ]'
	assert_error 503 circuit_open
	run rctl --json breaker show hwa
	assert_status 0
	assert_jq '.state == "forced_open"'
	rctl breaker close hwa
	wait_for 5 eval 'req_viewer GET /api/jobs/X$((++n)) && [ "$code" = 404 ]'
	wait_for 3 grep -q 'circuit breaker hwa: forced_open -> closed' "$T/resync.log"
}

@test "the breaker's state survives a restart" {
	up_start
	rctl breaker open hwa
	n=0
	wait_for 5 eval 'req_viewer GET /api/jobs/X$((++n)) && [ "$code" = 503 ]'
	stop_pid "$FCGI_PID" TERM
	rs_start_fcgi
	req_viewer GET /api/jobs/status
	assert_error 503 circuit_open
	wait_for 3 grep -q 'circuit breaker hwa starts forced_open, as saved' "$T/resync.log"
}

@test "a [breaker] with routes guards only those; the others keep the upstream's" {
	up_start retry.attempts=1 "breaker jobs.upstream=hwa" "breaker jobs.routes=jobs_status" \
		"breaker jobs.fail_max=1" "breaker jobs.open_duration=1m"
	fault "$FAKE" "mode=status&status=500&path=$JOBQ"
	req_viewer GET /api/jobs/status
	assert_error 502 bad_gateway
	req_viewer GET /api/jobs/status
	assert_error 503 circuit_open
	req_viewer GET /api/system/status
	assert_code 200
	req_viewer GET /metrics
	assert_output_matches '^resync_breaker_state\{breaker="jobs",state="open"\} 1$'
	assert_output_matches '^resync_breaker_state\{breaker="hwa",state="closed"\} 1$'
}

@test "pool: a connection held past leak_detection_threshold is logged with the request id" {
	up_start pool.leak_detection_threshold=300ms server.request_timeout=4s retry.attempts=1
	fault "$FAKE" "mode=hang&path=$JOBQ"
	curl -s -o /dev/null -H "X-API-Key: $VIEWER_KEY" -H 'X-Request-ID: leaky-1' \
		--max-time 6 "$RS_URL/api/jobs/status" &
	wait_for 5 grep -q '\[leaky-1\] upstream hwa: connection to http://127.0.0.1:[0-9]* held for' "$T/resync.log"
	req_viewer GET /metrics
	assert_output_matches '^resync_upstream_pool_leaks_total\{upstream="hwa"\} 1$'
}

# tls_start: an nginx serving the HWA fixtures over TLS on $TLS_PORT with a
# self-signed certificate for 127.0.0.1 ($T/tls.crt), which also requires a
# client certificate signed by it.
tls_start() {
	command -v openssl >/dev/null || skip "openssl is not installed"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" \
		2>/dev/null || return 1
	chmod 600 "$T/tls.key"
	TLS_PORT=$(free_port)
	mkdir -p "$T/tls/tmp"
	{
		[ "$(id -u)" -ne 0 ] || echo "user root;"
		cat <<-EOF
		daemon off;
		pid $T/tls/nginx.pid;
		error_log $T/tls/error.log;
		events { worker_connections 64; }
		http {
		    access_log off;
		    client_body_temp_path $T/tls/tmp;
		    server {
		        listen 127.0.0.1:$TLS_PORT ssl;
		        ssl_certificate $T/tls.crt;
		        ssl_certificate_key $T/tls.key;
		        ssl_verify_client on;
		        ssl_client_certificate $T/tls.crt;
		        root $RS_TOP_SRCDIR/tests/fixtures/hwa;
		        default_type application/json;
		        location / { try_files \$uri \$uri.json =404; error_page 405 =200 \$uri; }
		    }
		}
		EOF
	} >"$T/tls/nginx.conf"
	"$(nginx_bin)" -p "$T/tls" -c "$T/tls/nginx.conf" -e "$T/tls/error.log" </dev/null &
	FAKE_PIDS+=($!)
	wait_for 5 eval "(exec 9<>/dev/tcp/127.0.0.1/$TLS_PORT) 2>/dev/null"
}

@test "TLS: verified by default, ca_file for a private CA, client certificates; pool check names TLS problems" {
	tls_start
	rs_conf "upstream hwa.url=https://127.0.0.1:$TLS_PORT" "upstream hwa.health_check_path=$INFO"
	run rctl pool check
	assert_status 1
	assert_output_has 'DOWN  TLS: '
	rs_conf "upstream hwa.ca_file=$T/tls.crt"
	run rctl pool check
	assert_status 1
	assert_output_has 'HTTP 400'          # no client certificate
	rs_conf "upstream hwa.tls_cert=$T/tls.crt" "upstream hwa.tls_key=$T/tls.key"
	run rctl pool check
	assert_status 0
	rs_start
	req_viewer GET /api/jobs/$JOB
	assert_code 200
	assert_header X-Cache MISS
	rs_conf "upstream hwa.ca_file=" "upstream hwa.verify_tls=false"
	run rctl pool check
	assert_status 0
}

@test "pool figures: /metrics, /api/health and resyncctl pool stats" {
	up_start
	req_viewer GET /api/jobs/status
	req_viewer GET /api/jobs/$JOB
	req_viewer GET /metrics
	assert_output_matches '^resync_upstream_pool_connections\{upstream="hwa",state="open"\} [1-9]'
	assert_output_matches '^resync_upstream_requests_total\{upstream="hwa"\} [1-9]'
	assert_output_matches '^resync_upstream_endpoint_up\{upstream="hwa",endpoint="http://127.0.0.1:[0-9]+"\} 1$'
	assert_output_matches '^resync_upstream_request_seconds_count\{upstream="hwa"\} [1-9]'
	req GET /api/health
	assert_jq '.components.upstreams.hwa | .status == "healthy" and .breaker == "closed" and .pool.max_size == 30'
	assert_jq '.components.upstreams.hwa | has("endpoint_detail") | not'
	# published every second
	wait_for 5 eval 'run rctl --json pool stats hwa && [ "$status" = 0 ] &&
		jq -e ".[0].pool.requests >= 2" <<<"$output" >/dev/null'
	assert_jq '.[0].name == "hwa" and .[0].endpoints[0].state == "up"'
	run rctl pool stats
	assert_status 0
	assert_output_has 'upstream hwa'
	run rctl pool check
	assert_status 0
	assert_output_has 'up    HTTP 200'
}

@test "endpoints: strategy = weighted shares calls by weight" {
	fake_start FAKE
	fake_start FAKE2
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE, http://127.0.0.1:$FAKE2" \
		"upstream hwa.strategy=weighted" "upstream hwa.weights=3, 1" \
		"upstream hwa.health_check_path=$INFO"
	rs_start
	for i in $(seq 1 40); do
		req_viewer GET /api/jobs/W$i
		assert_code 404
	done
	a=$(plan_calls "$FAKE") b=$(plan_calls "$FAKE2")
	# smooth weighted round robin is exact: 30 and 10
	[ "$a" = 30 ] && [ "$b" = 10 ] || { echo "calls: $a and $b" >&2; false; }
}

@test "endpoints: strategy = least_connections avoids the busy one" {
	fake_start FAKE
	fake_start FAKE2
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE, http://127.0.0.1:$FAKE2" \
		"upstream hwa.strategy=least_connections" \
		"upstream hwa.health_check_path=$INFO" retry.attempts=1
	rs_start
	fault "$FAKE" "mode=hang&path=/twsd/api/v2/plan/current/job/HANG"
	fault "$FAKE2" "mode=hang&path=/twsd/api/v2/plan/current/job/HANG"
	# one hanging call holds a connection to one endpoint...
	curl -s -o /dev/null -H "X-API-Key: $VIEWER_KEY" --max-time 5 "$RS_URL/api/jobs/HANG" &
	wait_for 5 eval '[ $(( $(plan_calls "$FAKE") + $(plan_calls "$FAKE2") )) = 1 ]'
	if [ "$(plan_calls "$FAKE")" = 1 ]; then busy=$FAKE idle=$FAKE2; else busy=$FAKE2 idle=$FAKE; fi
	# ...so every other call goes to the other one
	for i in $(seq 1 6); do
		req_viewer GET /api/jobs/L$i
		assert_code 404
	done
	[ "$(plan_calls "$busy")" = 1 ] && [ "$(plan_calls "$idle")" = 6 ]
}

# ---- POST /api/ask ---------------------------------------------------------

ask() {
	req_admin POST /api/ask -H 'Content-Type: application/json' --data-binary "$1"
}

@test "ask: without an [upstream llm] there is no /api/ask" {
	up_start
	ask '{"prompt":"why did LOAD_LEDGER fail?","model":"granite"}'
	assert_error 404 not_found
}

@test "ask: the LLM's answer, for operators, with the seed's validation" {
	fake_start LLM llm
	TOKEN=$(rand_hex 16)
	up_start "upstream llm.url=http://127.0.0.1:$LLM" "upstream llm.bearer_token=$TOKEN"
	ask '{"prompt":"why did LOAD_LEDGER fail?","model":"ibm/granite-3.1-8b"}'
	assert_code 200
	assert_jq '(.answer | test("ABEND")) and .model == "granite-3.1-8b-instruct" and .usage.total_tokens == 73'
	req_viewer POST /api/ask -H 'Content-Type: application/json' --data '{"prompt":"x","model":"m"}'
	assert_error 403 forbidden
	ask '{"prompt":"","model":"m"}'
	assert_error 422 validation_failed
	assert_output_has '"message":"prompt:'
	ask '{"prompt":"hi","model":"bad model!"}'
	assert_error 422 validation_failed
	assert_output_has '"message":"model:'
	ask "{\"prompt\":\"hi\",\"model\":\"$(printf 'm%.0s' $(seq 101))\"}"
	assert_error 422 validation_failed
	ask "{\"prompt\":\"$(printf 'é%.0s' $(seq 10001))\",\"model\":\"m\"}"
	assert_error 422 validation_failed
	ask "{\"prompt\":\"$(printf 'é%.0s' $(seq 10000))\",\"model\":\"m\"}"
	assert_code 200
	ask '{"model":"m"}'
	assert_error 400 bad_request
	assert_output_has '"message":"prompt: is required'
	ask '{"prompt":"hi","model":"m","temperature":2}'
	assert_error 400 bad_request
	ask '{"prompt":42,"model":"m"}'
	assert_error 400 bad_request
	# the token is sent, never logged
	! grep -q "$TOKEN" "$T/resync.log" "$T/access.log"
}

@test "ask: a completion is not retried; a failing LLM is a 502/503 JSON error" {
	fake_start LLM llm
	up_start "upstream llm.url=http://127.0.0.1:$LLM" retry.attempts=3
	fault "$LLM" "mode=status&status=503&count=1"
	ask '{"prompt":"hi","model":"m"}'
	assert_error 503 upstream_unavailable
	[ "$(fake_calls "$LLM" /v1/chat/completions)" = 1 ]
	# (libcurl itself tries once more when a kept-alive connection turns
	# out dead before any answer byte, so a single reset is not enough)
	fault "$LLM" "mode=reset"
	ask '{"prompt":"hi","model":"m"}'
	assert_error 502 bad_gateway
	fault "$LLM" "mode=none"
	ask '{"prompt":"hi","model":"m"}'
	assert_code 200
}
