#!/usr/bin/env bats
# resync-fcgi behind a web server with its shipped etc/ snippet, as an HTTP
# client sees it: every endpoint with its roles, the headers on every
# answer (errors included), request ids, compression, the body limit,
# request timeouts, and resyncctl's changes reaching the running
# responder.  Each test starts its own web server and resync-fcgi
# (helpers.bash).
#
# This file runs three times: as http.bats behind nginx, and through the
# symlinks http-apache.bats behind Apache (mod_proxy_fcgi) and
# http-lighttpd.bats behind lighttpd; helpers.bash picks the server
# ($RS_WEB) from the file name, and every test of the last two skips when
# their server is not installed (nginx is required).  What the responder
# does is checked the same behind all three; a test about the web server
# itself (its own error pages, its limits) says which server it is for,
# and where a server legitimately differs the assertion says why.

load helpers

VERSION=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$RS_TOP_SRCDIR/configure.ac")

# not_cached KEY: resyncctl's database no longer has KEY (get exits 1).
not_cached() {
	local rc=0

	rctl -q cache get "$1" >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 1 ]
}

# assert_cached KEY...: each KEY is still in the database.
assert_cached() {
	local k

	for k in "$@"; do
		if ! rctl -q cache get "$k" >/dev/null 2>&1; then
			echo "expected '$k' to be still cached; resyncctl cache get says it is not" >&2
			return 1
		fi
	done
}

# assert_gone KEY...: each KEY leaves the database within 2 s.
assert_gone() {
	local k

	for k in "$@"; do
		wait_for 2 not_cached "$k" ||
			{ echo "expected '$k' to be purged from the database" >&2; return 1; }
	done
}

# stats_entries: the responder's cache entries (/api/cache/stats).
stats_entries() {
	req_viewer GET /api/cache/stats >/dev/null && jq -r .entries <<<"$output"
}

entries_are() {
	[ "$(stats_entries)" = "$1" ]
}

# cache_keys KEY...: resyncctl cache set KEY value-of-KEY, for each.
cache_keys() {
	local k

	for k in "$@"; do
		rctl cache set "$k" "value of $k"
	done
}

# ---- health --------------------------------------------------------------------

@test "health/live: 200 {\"status\":\"alive\"} with the API headers and a generated request id" {
	rs_start
	req GET /api/health/live
	assert_code 200
	assert_api_headers
	assert_jq '. == {"status": "alive"}'
	assert_header_matches X-Request-ID '^[0-9a-f]{32}$'
	# Plain HTTP: no HSTS (the CGI tests check HTTPS=on).
	assert_no_header Strict-Transport-Security
}

@test "HEAD is answered wherever GET is, with the same headers and no body" {
	rs_start
	req GET /api/health/live
	len=$(header Content-Length)
	get_bytes=$body_bytes
	req HEAD /api/health/live
	assert_code 200
	assert_header Content-Type "application/json; charset=utf-8"
	assert_header X-Frame-Options DENY
	if [ "$RS_WEB" = apache ]; then
		# Apache's mod_proxy_fcgi does not pass the responder's
		# Content-Length on (GET answers come chunked, see
		# assert_api_headers), so its HEAD answers have none either;
		# when one is there it must be the GET body's length.
		[ -z "${HDR[content-length]+set}" ] || assert_header Content-Length "$get_bytes"
	else
		assert_header Content-Length "$len"
	fi
	assert_header_matches X-Request-ID '^[0-9a-f]{32}$'
	req HEAD /api/cache/stats -H "X-API-Key: $VIEWER_KEY"
	assert_code 200
	assert_header Cache-Control no-store
	req HEAD /api/nope
	assert_code 404
	# That nothing follows the headers is checked in CGI mode (process.bats).
}

@test "health: overall status, version, uptime and every component" {
	rs_start
	req GET /api/health
	assert_code 200
	assert_api_headers
	assert_jq '.status == "healthy" or .status == "degraded"'
	assert_jq ".version == \"$VERSION\""
	assert_jq '(.uptime_s | type == "number" and . >= 0) and (.response_time_ms | type == "number")'
	assert_jq '.components.database.status == "healthy" and (.components.database.response_time_ms | type == "number")'
	assert_jq '.components.cache | (.status | type == "string") and (.entries | type == "number")
		and (.bytes | type == "number") and (.memory_used_pct | type == "number")'
	assert_jq '.components.persistence.status == "healthy" and .components.persistence.sync == "batch"'
	assert_jq '.components.upstreams.hwa.status | IN("healthy", "unhealthy", "unknown")'
}

@test "health: a dead upstream makes it degraded (200); the probe's error only for a key holder" {
	rs_conf "upstream hwa.url=http://127.0.0.1:1/twsd"
	rs_start
	wait_for 5 eval 'req GET /api/health && [[ "$output" == *"\"hwa\":{\"status\":\"unhealthy\""* ]]'
	assert_code 200
	assert_jq '.status == "degraded"'
	assert_jq '.components.upstreams.hwa | has("error") | not'
	req GET /api/health -H "X-API-Key: $VIEWER_KEY"
	assert_code 200
	assert_jq '.components.upstreams.hwa.error | test("127.0.0.1")'
}

@test "health/ready: 200 {\"status\":\"ready\"}" {
	rs_start
	req GET /api/health/ready
	assert_code 200
	assert_api_headers
	assert_jq '. == {"status": "ready"}'
}

# ---- status and roles ------------------------------------------------------------

@test "status: 401 with WWW-Authenticate without a key or with an unknown one, 403 for a viewer" {
	rs_start
	req GET /api/status
	assert_error 401 unauthorized
	assert_header_matches WWW-Authenticate '^Bearer'
	req GET /api/status -H "X-API-Key: $(rand_hex 32)"
	assert_error 401 unauthorized
	req GET /api/status -H "Authorization: Bearer $(rand_hex 32)"
	assert_error 401 unauthorized
	req_viewer GET /api/status
	assert_error 403 forbidden
	assert_header Cache-Control no-store
}

@test "status: the admin gets the process figures, the limits and the configuration, not to be stored" {
	rs_conf server.max_body=64KB server.request_timeout=7s
	rs_start
	req_admin GET /api/status
	assert_code 200
	assert_api_headers
	assert_header Cache-Control no-store
	assert_jq ".pid == $FCGI_PID"
	assert_jq '.started_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)$")'
	assert_jq '.uptime_s >= 0'
	assert_jq '.threads.total == 4 and .threads.busy >= 1 and .threads.busy <= 4'
	assert_jq '.requests.accepted >= 2 and .requests.active >= 1 and .requests.max_active >= 1
		and .requests.slow == 0 and .requests.timed_out == 0'
	assert_jq '.limits | .max_body == 65536 and .request_timeout_ms == 7000
		and .slow_request_threshold_ms == 1000 and .shutdown_timeout_ms == 10000'
	assert_jq ".config.path == \"$CONF\" and .config.environment == \"test\"
		and .config.reloads == 0 and .config.reload_failures == 0"
	assert_jq '.config.loaded_at | type == "string"'
	# The same key as a bearer token.
	req GET /api/status -H "Authorization: Bearer $ADMIN_KEY"
	assert_code 200
	assert_header Cache-Control no-store
}

@test "status: an expired key is refused" {
	rs_conf "key admin.expires=2020-01-01"
	rs_start
	req_admin GET /api/status
	assert_error 401 unauthorized
}

# ---- cache stats -----------------------------------------------------------------

@test "cache stats: a viewer reads the statistics of the cache resyncctl filled; anonymous gets 401" {
	rs_conf
	cache_keys jobs:a jobs:b
	rs_start
	req GET /api/cache/stats
	assert_error 401 unauthorized
	req_viewer GET /api/cache/stats
	assert_code 200
	assert_api_headers
	assert_header Cache-Control no-store
	assert_jq '.entries == 2 and .bytes > 0'
	assert_jq 'has("hits") and has("misses") and has("hit_rate") and has("evictions")
		and (has("shards") or has("num_shards")) and has("persistence")'
}

# ---- purge -----------------------------------------------------------------------

@test "purge: by key removes that key from the responder and the database" {
	rs_conf
	cache_keys jobs:a jobs:b workstations:w1
	rs_start
	purge '{"key":"jobs:a"}'
	assert_code 200
	assert_api_headers
	assert_header Cache-Control no-store
	assert_jq '.purged == 1 and .key == "jobs:a"'
	assert_gone jobs:a
	assert_cached jobs:b workstations:w1
	purge '{"key":"jobs:a"}'
	assert_code 200
	assert_jq '.purged == 0 and .key == "jobs:a"'
	entries_are 2
}

@test "purge: by prefix removes the keys that start with it" {
	rs_conf
	cache_keys plan:1 plan:2 planet jobs:1
	rs_start
	purge '{"prefix":"plan:"}'
	assert_code 200
	assert_jq '.purged == 2 and .prefix == "plan:"'
	assert_gone plan:1 plan:2
	assert_cached planet jobs:1
	entries_are 2
}

@test "purge: scope jobs, workstations and system" {
	rs_conf
	cache_keys jobs:1 jobs:2 workstations:A workstations:B plan:p other
	rs_start
	purge '{"scope":"workstations"}'
	assert_code 200
	assert_jq '.purged == 2 and .scope == "workstations"'
	assert_gone workstations:A workstations:B
	assert_cached jobs:1 jobs:2 plan:p other
	purge '{"scope":"jobs"}'
	assert_code 200
	assert_jq '.purged == 2 and .scope == "jobs"'
	assert_gone jobs:1 jobs:2
	assert_cached plan:p other
	purge '{"scope":"system"}'
	assert_code 200
	assert_jq '.purged == 2 and .scope == "system"'
	assert_gone plan:p other
	entries_are 0
}

@test "purge: needs the operator role: 401 anonymous, 403 viewer, nothing purged; /api/status needs admin" {
	OPS_KEY=$(rand_hex 32)
	rs_conf "key ops.hash=$(sha256 "$OPS_KEY")" "key ops.role=operator"
	cache_keys jobs:a
	rs_start
	req GET /api/status
	assert_error 401 unauthorized
	req_viewer GET /api/status
	assert_error 403 forbidden
	req GET /api/status -H "X-API-Key: $OPS_KEY"
	assert_error 403 forbidden
	assert_output_has 'admin role'
	req_admin GET /api/status
	assert_code 200
	req POST /api/cache/purge -H 'Content-Type: application/json' --data-binary '{"scope":"system"}'
	assert_error 401 unauthorized
	req_viewer POST /api/cache/purge -H 'Content-Type: application/json' --data-binary '{"scope":"system"}'
	assert_error 403 forbidden
	assert_cached jobs:a
	entries_are 1
	req POST /api/cache/purge -H "X-API-Key: $OPS_KEY" -H 'Content-Type: application/json' \
		--data-binary '{"key":"jobs:a"}'
	assert_code 200
	assert_jq '.purged == 1'
}

@test "purge: an object that is not exactly one selector is 400 bad_request" {
	rs_conf
	cache_keys jobs:a
	rs_start
	bad=0
	for body in '{}' '{"key":1}' '{"key":"a","prefix":"b"}' \
		'{"scope":"jobs","key":"jobs:a"}' '{"kee":"jobs:a"}' '{"prefix":["jobs:"]}'; do
		purge "$body"
		assert_error 400 bad_request 2>/dev/null ||
			{ echo "body $body: got $code $output" >&2; bad=1; }
	done
	[ "$bad" -eq 0 ]
	# well formed, but not a scope there is: 422, naming the field
	purge '{"scope":"bogus"}'
	assert_error 422 validation_failed
	assert_jq '.error.field == "scope"'
	# JSON that is not an object: 400, as bad_request or invalid_json.
	for body in '[]' 'null' '"jobs"' '1'; do
		purge "$body"
		{ assert_error 400 bad_request 2>/dev/null || assert_error 400 invalid_json 2>/dev/null; } ||
			{ echo "body $body: got $code $output" >&2; bad=1; }
	done
	[ "$bad" -eq 0 ]
	assert_cached jobs:a
}

@test "purge: a key or prefix longer than any key can be is 400, nothing purged" {
	rs_conf
	cache_keys jobs:a
	rs_start
	long=jobs:$(printf 'x%.0s' $(seq 1 1100))
	for sel in key prefix; do
		purge "{\"$sel\":\"$long\"}"
		assert_error 400 bad_request
		[[ "$output" == *"longer than 1024 bytes"* ]] || { echo "got $output" >&2; false; }
	done
	assert_cached jobs:a
}

@test "purge: a body that is not JSON is 400 invalid_json" {
	rs_start
	for body in '{"key":' 'key=a' '{"key":"a"}}' "{'key':'a'}"; do
		purge "$body"
		assert_error 400 invalid_json || { echo "body: $body" >&2; false; }
	done
}

@test "purge: JSON nested deeper than max_json_depth is refused with 400" {
	rs_conf server.max_json_depth=8
	rs_start
	deep=$(printf '[%.0s' {1..40})$(printf ']%.0s' {1..40})
	purge "{\"key\":$deep}"
	assert_code 400
	assert_api_headers
	assert_jq '.error.code == "invalid_json" or .error.code == "bad_request"'
}

@test "purge: a body that is not application/json is 415" {
	rs_conf
	cache_keys jobs:a
	rs_start
	req_admin POST /api/cache/purge -H 'Content-Type: text/plain' --data-binary '{"key":"jobs:a"}'
	assert_error 415 unsupported_media_type
	# curl's default for --data: application/x-www-form-urlencoded
	req_admin POST /api/cache/purge --data '{"key":"jobs:a"}'
	assert_error 415 unsupported_media_type
	assert_cached jobs:a
	# One Content-Type header: purge's own plus another would be two,
	# which nginx reduces to the first, Apache joins with a comma and
	# lighttpd refuses (400).
	req_admin POST /api/cache/purge -H 'Content-Type: application/json; charset=utf-8' \
		--data-binary '{"key":"jobs:a"}'
	assert_code 200
	assert_jq '.purged == 1'
}

# ---- errors of the router and the limits -----------------------------------------

@test "404: an unknown path is a JSON not_found error with the headers" {
	rs_start
	for path in /api/nope /api/health/livex /api/ /api/cache /api/cache/stats/x; do
		req GET "$path"
		assert_error 404 not_found || { echo "path: $path" >&2; false; }
	done
	# The query string is not part of the route, but a parameter the
	# route does not take is refused, by name.
	req GET '/api/health/live?verbose=1'
	assert_error 400 bad_request
	assert_jq '.error.field == "query" and (.error.message | contains("verbose"))'
	req_viewer GET '/api/cache/stats?shards=1'
	assert_code 200
	req_viewer GET '/api/cache/stats?shards=maybe'
	assert_error 400 bad_request
	assert_jq '.error.field == "shards"'
	req_viewer GET '/api/cache/stats?shards=1&shards=0'
	assert_error 400 bad_request
}

@test "405: a known path with another method names the allowed ones in Allow" {
	rs_start
	req DELETE /api/health/live
	assert_error 405 method_not_allowed
	assert_header Allow "GET, HEAD"
	req_admin POST /api/status -H 'Content-Type: application/json' --data-binary '{}'
	assert_error 405 method_not_allowed
	assert_header Allow "GET, HEAD"
	req_admin PUT /metrics
	assert_error 405 method_not_allowed
	assert_header Allow "GET, HEAD"
	req_admin GET /api/cache/purge
	assert_error 405 method_not_allowed
	assert_header_matches Allow '^POST$'
}

@test "413: a body over [server] max_body is refused as JSON; one at the limit is served" {
	rs_conf server.max_body=1KB
	cache_keys k
	rs_start
	big=$(printf '{"key":"%s"}' "$(printf 'a%.0s' {1..2000})")
	purge "$big"
	assert_error 413 payload_too_large
	# 8 + 1014 + 2 = 1024 bytes: at the limit.
	fits=$(printf '{"key":"%s"}' "$(printf 'a%.0s' {1..1014})")
	[ "${#fits}" -eq 1024 ]
	purge "$fits"
	assert_code 200
	assert_jq '.purged == 0'
}

@test "413: a body over nginx's own limit gets nginx's JSON 413 (elsewhere the responder's)" {
	rs_start
	head -c 3000000 /dev/zero | tr '\0' ' ' >big.json
	purge @big.json
	if [ "$RS_WEB" != nginx ]; then
		# The Apache and lighttpd snippets set no body limit of their
		# own (nginx's client_max_body_size 2m is a backstop): the 3 MB
		# reach the responder, which refuses them over its default
		# max_body (1MB) as it does any body over the limit.
		assert_error 413 payload_too_large
		return
	fi
	assert_code 413
	assert_header_matches Content-Type '^application/json'
	assert_header X-Frame-Options DENY
	assert_jq '.error.code == "payload_too_large"'
}

@test "nginx answers a JSON 503 with the headers when the responder is down" {
	only_behind nginx "the JSON 503 is the nginx snippet's error_page; Apache and lighttpd answer their own HTML 503"
	rs_start
	stop_pid "$FCGI_PID" TERM
	FCGI_PID=
	req GET /api/health/live
	assert_error 503 service_unavailable
}

# ---- request ids -----------------------------------------------------------------

@test "X-Request-ID: a valid inbound id is kept, in the header and in error bodies" {
	rs_start
	req GET /api/health/live -H 'X-Request-ID: client-req.42:a_b'
	assert_code 200
	assert_header X-Request-ID 'client-req.42:a_b'
	req GET /api/nope -H 'X-Request-ID: trace-77'
	assert_error 404 not_found
	assert_header X-Request-ID trace-77
	long=$(printf 'x%.0s' {1..128})
	req GET /api/health/live -H "X-Request-ID: $long"
	assert_header X-Request-ID "$long"
}

@test "X-Request-ID: an invalid inbound id is replaced by a new one" {
	rs_start
	for bad in 'has space' 'semi;colon' "$(printf 'x%.0s' {1..129})" '<script>' 'a/b'; do
		req GET /api/nope -H "X-Request-ID: $bad"
		assert_error 404 not_found
		assert_header_matches X-Request-ID '^[0-9a-f]{32}$' || { echo "inbound: $bad" >&2; false; }
	done
	req GET /api/health/live
	a=$(header X-Request-ID)
	req GET /api/health/live
	b=$(header X-Request-ID)
	[ "$a" != "$b" ] || { echo "two requests got the same id $a" >&2; false; }
}

# ---- compression -----------------------------------------------------------------

@test "gzip: an answer of compress_min_size or more is compressed when the client accepts gzip" {
	rs_conf server.compress_min_size=64B
	rs_start
	req_viewer GET /api/cache/stats -H 'Accept-Encoding: gzip'
	assert_code 200
	assert_api_headers
	assert_header Content-Encoding gzip
	assert_header_matches Vary 'Accept-Encoding'
	gzip -dc <"$T/resp.body" | jq -e '.entries == 0' >/dev/null ||
		{ echo "the body does not gunzip to the stats" >&2; false; }
	req_viewer GET /metrics -H 'Accept-Encoding: deflate, gzip;q=0.5'
	assert_code 200
	assert_header Content-Encoding gzip
	gzip -dc <"$T/resp.body" | grep -q '^resync_uptime_seconds' ||
		{ echo "/metrics does not gunzip to the metrics" >&2; false; }
}

@test "gzip: not without Accept-Encoding gzip, nor for small answers" {
	rs_conf server.compress_min_size=64B
	rs_start
	req_viewer GET /api/cache/stats
	assert_code 200
	assert_no_header Content-Encoding
	assert_jq '.entries == 0'
	for ae in identity 'gzip;q=0' 'br'; do
		req_viewer GET /api/cache/stats -H "Accept-Encoding: $ae"
		assert_no_header Content-Encoding || { echo "Accept-Encoding: $ae" >&2; false; }
		assert_jq '.entries == 0'
	done
	req GET /api/health/live -H 'Accept-Encoding: gzip'
	assert_code 200
	assert_no_header Content-Encoding
	assert_jq '. == {"status": "alive"}'
}

# ---- metrics ---------------------------------------------------------------------

@test "metrics: Prometheus text with request counters by route, method and status" {
	rs_start
	for i in 1 2 3; do req GET /api/health/live; done
	req GET /api/nope
	req GET /metrics
	assert_error 401 unauthorized
	req_viewer GET /metrics
	assert_code 200
	assert_api_headers 'text/plain; version=0.0.4; charset=utf-8'
	assert_output_has '# TYPE resync_http_requests_total counter' \
		'# TYPE resync_http_request_duration_seconds histogram' \
		'resync_http_requests_in_flight' 'resync_http_slow_requests_total' \
		'resync_http_request_timeouts_total' 'resync_cache_' \
		'resync_persistence_degraded' 'resync_uptime_seconds' \
		"resync_build_info{version=\"$VERSION\"} 1"
	assert_output_matches '^resync_http_request_duration_seconds_bucket\{.*le="\+Inf".*\} [0-9]+'
	assert_output_matches '^resync_http_request_duration_seconds_count\{.*route="/api/health/live".*\} [0-9]+'
	live=$(grep '^resync_http_requests_total{' <<<"$output" | grep 'route="/api/health/live"' |
		grep 'method="GET"' | grep 'status="200"' | awk '{ print $NF }')
	[ -n "$live" ] && [ "$live" -ge 4 ] ||
		{ echo "expected >= 4 GET /api/health/live 200 in resync_http_requests_total, got '$live'" >&2; false; }
	assert_output_matches '^resync_http_requests_total\{.*status="404".*\} [1-9]'
	assert_output_matches '^resync_http_requests_total\{.*status="401".*\} [1-9]'
}

# ---- resyncctl and the running responder -----------------------------------------

@test "a resyncctl cache set or delete reaches the running responder within a second" {
	rs_start
	entries_are 0
	start=$(now_ms)
	rctl cache set jobs:new v
	wait_for 2 entries_are 1
	took=$(($(now_ms) - start))
	[ "$took" -le 1500 ] || { echo "the set took ${took} ms to reach the responder" >&2; false; }
	rctl cache set jobs:other v
	wait_for 2 entries_are 2
	rctl cache delete jobs:other
	wait_for 2 entries_are 1
	purge '{"key":"jobs:new"}'
	assert_code 200
	assert_jq '.purged == 1'
}

# ---- request timeout -------------------------------------------------------------

@test "request timeout: a request past request_timeout is answered 504 timeout at once" {
	rs_conf server.request_timeout=1s persistence.sync=always
	cache_keys jobs:a
	rs_start
	db_lock
	start=$(now_ms)
	purge '{"key":"jobs:a"}'
	took=$(($(now_ms) - start))
	assert_error 504 timeout
	[ "$took" -ge 900 ] && [ "$took" -le 2500 ] ||
		{ echo "the 504 came after ${took} ms; expected about 1000" >&2; false; }
	db_unlock
	req GET /api/health/live
	assert_code 200
	req_admin GET /api/status
	assert_jq '.requests.timed_out == 1'
	req_viewer GET /metrics
	assert_output_matches '^resync_http_request_timeouts_total(\{[^}]*\})? 1$'
}

# ---- the demo upstream -----------------------------------------------------------

@test "the HWA fixture server answers GETs and POSTed queries with the recorded JSON" {
	# The fixture server is an nginx whatever the front server: beside
	# Apache and lighttpd, one of its own (rs_start_hwa).
	if [ "$RS_WEB" = nginx ]; then
		rs_start_nginx
	else
		why=$(web_installed nginx) || skip "$why: no HWA fixture server"
		rs_start_hwa
	fi
	hwa=http://127.0.0.1:$HWA_PORT/twsd/api/v2
	run curl -sS -f "$hwa/engine/info"
	assert_status 0
	assert_jq '.engineType == "distributed" and .masterWorkstation == "MASTERAGT"'
	run curl -sS -f -X POST -H 'Content-Type: application/json' -H 'How-Many: 500' \
		--data '{"filters":{"jobStreamInPlanFilter":{"jobStreamName":"*"}}}' \
		"$hwa/plan/current/jobstream/query"
	assert_status 0
	assert_jq '.[0].key.workstationKey.name == "MASTERAGT"'
	run curl -sS -f "$hwa/plan/current/job/0AAAAAAAAAAAAB5C.LOAD_LEDGER"
	assert_status 0
	assert_jq '.status == "ABEND" and .returnCode == 12'
}
