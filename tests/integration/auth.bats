#!/usr/bin/env bats
# API keys through nginx: roles, expiry, rotation with its grace period
# JWT, CORS, rate limits, idempotency.

load helpers

# key_conf NAME KEY ROLE [K=V ...]: a [key NAME] with the hash of KEY.
key_conf() {
	local name=$1 key=$2 role=$3
	shift 3
	local kv=("key $name.hash=$(sha256 "$key")" "key $name.role=$role")
	for a in "$@"; do kv+=("key $name.$a"); done
	rs_conf "${kv[@]}"
}

@test "keys: a rotated key works in its grace period, with a Warning saying until when" {
	OLD=$(rand_hex 32)
	rotated=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
	until=$(date -u -d "$rotated + 7 days" +%Y-%m-%dT%H:%M:%S)
	key_conf old "$OLD" viewer "rotated=$rotated"
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $OLD"
	assert_code 200
	assert_header_matches Warning "^299 resync \"this API key was rotated; it stops working at $until"
	grep -q 'rotated key old used in its grace period' "$T/resync.log"
	# a key not rotated has no Warning
	req_viewer GET /api/cache/stats
	assert_code 200
	assert_no_header Warning
}

@test "keys: a rotated key past its grace, and an expired key, are 401 like any unknown key" {
	OLD=$(rand_hex 32) GONE=$(rand_hex 32)
	key_conf old "$OLD" admin "rotated=2020-01-01"
	key_conf gone "$GONE" admin "expires=2020-01-01"
	rs_conf auth.key_grace=7d
	rs_start
	req GET /api/status -H "X-API-Key: $OLD"
	assert_error 401 unauthorized
	assert_output_lacks rotated
	req GET /api/status -H "Authorization: Bearer $GONE"
	assert_error 401 unauthorized
	grep -q 'key old is rotated and its grace is over' "$T/resync.log"
}

@test "keys: [auth] key_grace = 0 retires a rotated key at once" {
	OLD=$(rand_hex 32)
	key_conf old "$OLD" viewer "rotated=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)"
	rs_conf auth.key_grace=0
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $OLD"
	assert_error 401 unauthorized
}

@test "keys: resyncctl key generate makes a key resync-fcgi accepts, with its role" {
	out=$(rctl -q key generate --role operator ops)
	NEW=$(head -1 <<<"$out")
	rs_conf "key ops.hash=$(sed -n 's/^hash = //p' <<<"$out")" "key ops.role=operator"
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $NEW"
	assert_code 200
	req GET /api/status -H "X-API-Key: $NEW"
	assert_error 403 forbidden
}

# ---- JWT bearer tokens ------------------------------------------------------

b64url() {
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# jwt PAYLOAD [HEADER] [SECRET]: an HS256 token, signed with openssl.
jwt() {
	local h p s
	h=$(printf %s "${2:-{\"alg\":\"HS256\",\"typ\":\"JWT\"}}" | b64url)
	p=$(printf %s "$1" | b64url)
	s=$(printf %s "$h.$p" | openssl dgst -sha256 -hmac "${3:-$SECRET}" -binary | b64url)
	echo "$h.$p.$s"
}

jwt_start() {
	command -v openssl >/dev/null || skip "openssl is not installed"
	SECRET=$(rand_hex 32)
	NOW=$(date +%s)
	rs_conf "auth.jwt_secret=$SECRET" auth.jwt_issuer=https://idp.example.com \
		auth.jwt_audience=resync "$@"
	rs_start
}

claims() {
	printf '{"iss":"https://idp.example.com","aud":"resync","sub":"alice","exp":%s%s}' \
		"$((NOW + 300))" "$1"
}

@test "JWT: a valid token's role claim is the role; the subject names it in the access log" {
	jwt_start
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_code 200
	req GET /api/status -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_error 403 forbidden
	req GET /api/status -H "Authorization: Bearer $(jwt "$(claims ',"role":"admin"')")"
	assert_code 200
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims)")"
	assert_error 403 forbidden
	grep -q '"key":"jwt:alice"' "$T/access.log"
}

@test "JWT: bad signature, expired, not yet valid, wrong issuer or audience, alg none: one 401 for all" {
	jwt_start
	bad=(
		"$(jwt "$(claims ',"role":"admin"')" '' wrong-secret)"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"resync\",\"exp\":$((NOW - 120)),\"role\":\"admin\"}")"
		"$(jwt "$(claims ",\"nbf\":$((NOW + 600)),\"role\":\"admin\"")")"
		"$(jwt "{\"iss\":\"https://evil.example.com\",\"aud\":\"resync\",\"exp\":$((NOW + 300)),\"role\":\"admin\"}")"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"other\",\"exp\":$((NOW + 300)),\"role\":\"admin\"}")"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"resync\",\"role\":\"admin\"}")"
		"$(printf %s '{"alg":"none","typ":"JWT"}' | b64url).$(claims ',"role":"admin"' | b64url)."
	)
	for t in "${bad[@]}"; do
		req GET /api/status -H "Authorization: Bearer $t"
		assert_error 401 unauthorized
		assert_output_has '"message":"authentication required"'
	done
	for why in "bad signature" expired "not yet valid" "wrong issuer" "wrong audience" "no expiry"; do
		grep -q "JWT refused from 127.0.0.1: $why" "$T/resync.log" ||
			{ echo "no log line for: $why" >&2; false; }
	done
}

@test "JWT: without [auth] jwt_secret a token is just an unknown key" {
	SECRET=$(rand_hex 32) NOW=$(date +%s)
	rs_start
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_error 401 unauthorized
}

# ---- CORS ----------------------------------------------------------------

cors_conf() {
	rs_conf "cors.allowed_origins=https://app.example.com, https://*.dash.example.com" \
		"cors.allowed_methods=GET, POST" "cors.max_age=5m"
}

@test "CORS: an allowed origin's preflight gets the policy; the actual request gets Allow-Origin" {
	cors_conf
	rs_start
	req OPTIONS /api/cache/purge -H 'Origin: https://a.dash.example.com' \
		-H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: content-type, x-api-key'
	assert_code 204
	assert_header Access-Control-Allow-Origin https://a.dash.example.com
	assert_header Access-Control-Allow-Methods 'GET, HEAD, POST'
	assert_header_matches Access-Control-Allow-Headers 'X-API-Key'
	assert_header Access-Control-Max-Age 300
	assert_no_header Access-Control-Allow-Credentials
	assert_header_matches Vary '^Origin'
	req_viewer GET /api/cache/stats -H 'Origin: https://app.example.com'
	assert_code 200
	assert_header Access-Control-Allow-Origin https://app.example.com
	assert_header_matches Access-Control-Expose-Headers 'X-Request-ID.*RateLimit-Remaining'
	assert_header Vary Origin
	# a request from our own origin is not cross-origin
	req_viewer GET /api/cache/stats -H "Origin: http://127.0.0.1:$HTTP_PORT"
	assert_code 200
	assert_no_header Access-Control-Allow-Origin
}

@test "CORS: a refused origin, method or header gets 403 and no CORS headers; /metrics counts it" {
	cors_conf
	rs_start
	req OPTIONS /api/cache/stats -H 'Origin: https://evil.example.org' \
		-H 'Access-Control-Request-Method: GET'
	assert_error 403 cors_refused
	assert_no_header Access-Control-Allow-Origin
	req OPTIONS /api/cache/purge -H 'Origin: https://app.example.com' \
		-H 'Access-Control-Request-Method: DELETE'
	assert_error 403 cors_refused
	req OPTIONS /api/cache/purge -H 'Origin: https://app.example.com' \
		-H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: X-Evil'
	assert_error 403 cors_refused
	# pattern tricks
	req OPTIONS /api/cache/stats -H 'Origin: https://dash.example.com.evil.org' \
		-H 'Access-Control-Request-Method: GET'
	assert_error 403 cors_refused
	# a read from a refused origin is answered without CORS headers (the
	# browser hides it); a write is refused outright
	req_viewer GET /api/cache/stats -H 'Origin: https://evil.example.org'
	assert_code 200
	assert_no_header Access-Control-Allow-Origin
	req_admin POST /api/cache/purge -H 'Origin: https://evil.example.org' \
		-H 'Content-Type: application/json' -d '{"prefix":"x"}'
	assert_error 403 cors_refused
	req_viewer GET /metrics
	grep -q '^resync_cors_violations_total{origin="https://evil.example.org",reason="origin"} 3$' <<<"$output"
	grep -q '^resync_cors_violations_total{origin="https://app.example.com",reason="method"} 1$' <<<"$output"
	grep -q '^resync_cors_violations_total{origin="https://app.example.com",reason="header"} 1$' <<<"$output"
	grep -q '^resync_cors_preflights_total{result="refused"} 4$' <<<"$output"
	# logged once per origin per minute, not per request
	[ "$(grep -c 'CORS violation from https://evil.example.org' "$T/resync.log")" = 1 ]
}

@test "CORS: OPTIONS without a preflight lists the methods; unknown paths are 404" {
	rs_start
	req OPTIONS /api/cache/purge
	assert_code 204
	assert_header Allow 'POST, OPTIONS'
	req OPTIONS /api/nothing -H 'Origin: https://app.example.com' \
		-H 'Access-Control-Request-Method: GET'
	assert_error 404 not_found
}

# ---- rate limits -----------------------------------------------------------

# burst N PATH [CURL ARGS...]: N requests over one connection, quickly
# (one curl: a process per request would let buckets refill); $codes gets
# the statuses, space-separated.
burst() {
	local n=$1 path=$2 urls=()
	shift 2
	for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "$RS_URL$path"); done
	codes=$(curl -sS --max-time 20 -w '%{http_code} ' "$@" "${urls[@]}")
	codes=${codes% }
}

@test "rate limit: the burst passes with RateLimit headers, then 429 with Retry-After, then recovery" {
	rs_conf ratelimit.enabled=true ratelimit.requests_per_second=1 ratelimit.burst=3
	rs_start
	req_viewer GET /api/cache/stats
	assert_code 200
	assert_header RateLimit-Limit 3
	assert_header RateLimit-Remaining 2
	assert_header_matches RateLimit-Reset '^1$'
	burst 4 /api/cache/stats -H "X-API-Key: $VIEWER_KEY" -D "$T/burst.head"
	# two tokens left; a third may have come back if the machine is slow
	[[ $codes =~ ^200\ 200\ (200|429)\ 429$ ]] || { echo "codes: $codes"; false; }
	# the headers of the last answer, a 429
	parse_headers "$T/burst.head"
	assert_header Retry-After 1
	assert_header RateLimit-Remaining 0
	assert_header_matches RateLimit-Reset '^[23]$'
	# another client (the admin key) has its own bucket
	req_admin GET /api/cache/stats
	assert_code 200
	# probes are never limited
	req GET /api/health/live
	assert_code 200
	assert_no_header RateLimit-Limit
	sleep 1.1
	req_viewer GET /api/cache/stats
	assert_code 200
	req_admin GET /metrics
	grep -Eq '^resync_ratelimit_requests_total\{class="read",result="limited"\} [23]$' <<<"$output"
	# logged once a minute per client, not per refusal
	[ "$(grep -c 'rate limit: key:viewer refused' "$T/resync.log")" = 1 ]
}

@test "rate limit: writes have their own smaller bucket; failed logins cost the address" {
	rs_conf ratelimit.enabled=true ratelimit.write_requests_per_second=1 ratelimit.write_burst=2 \
		ratelimit.requests_per_second=1 ratelimit.burst=3
	rs_start
	burst 3 /api/cache/purge -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		-d '{"prefix":"x"}'
	[[ $codes == "200 200 429" ]] || { echo "codes: $codes"; false; }
	req_admin GET /api/cache/stats
	assert_code 200
	# wrong keys: 401 while the address has tokens, then 429
	burst 5 /api/cache/stats -H "X-API-Key: wrong"
	[[ $codes == "401 401 401 429 429" ]] || { echo "codes: $codes"; false; }
}

# ---- idempotency -----------------------------------------------------------

purge_key() {
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' \
		-H "Idempotency-Key: $1" --data-binary "$2"
}

@test "idempotency: a repeat replays the stored answer; another body is 422; keys are per client" {
	# always: the purge's log record is written before it is answered, so
	# resyncctl's writes below come after it in the log
	rs_conf persistence.sync=always
	rs_start
	rctl -q cache set jobs:a '{"x":1}'
	purge_key k1 '{"prefix":"jobs:"}'
	assert_code 200
	assert_no_header Idempotent-Replayed
	first=$output
	rctl -q cache set jobs:b '{"x":2}'
	# the same request again: the stored answer (purged 1), not a new purge
	purge_key k1 '{"prefix":"jobs:"}'
	assert_code 200
	assert_header Idempotent-Replayed true
	[ "$output" = "$first" ]
	rctl cache get jobs:b >/dev/null
	# the same key for another request
	purge_key k1 '{"prefix":"workstations:"}'
	assert_error 422 idempotency_mismatch
	# another client's k1 is its own
	rs_conf "key ops.hash=$(sha256 opskey-0123456789abcdef)" "key ops.role=admin"
	kill -HUP "$FCGI_PID"
	sleep 0.5
	req POST /api/cache/purge -H 'X-API-Key: opskey-0123456789abcdef' \
		-H 'Content-Type: application/json' -H 'Idempotency-Key: k1' --data '{"prefix":"jobs:"}'
	assert_code 200
	assert_no_header Idempotent-Replayed
	assert_jq '.purged | type == "number"'
	# a bad key is refused by name
	purge_key "$(printf 'k%.0s' $(seq 256))" '{"prefix":"jobs:"}'
	assert_error 400 bad_request
	assert_jq '.error.field == "Idempotency-Key"'
	# GET ignores the header
	req_viewer GET /api/cache/stats -H 'Idempotency-Key: k1'
	assert_code 200
}

@test "idempotency: a repeat while the first still runs is 409; a 5xx releases the key; keys expire" {
	fake_start LLM llm
	rs_conf "upstream llm.url=http://127.0.0.1:$LLM" idempotency.ttl=2s
	rs_start
	fault "$LLM" "mode=latency&ms=1500"
	ask='{"prompt":"why did LOAD_LEDGER fail?","model":"m"}'
	curl -s -o "$T/first.json" -w '%{http_code}' -X POST -H "X-API-Key: $ADMIN_KEY" \
		-H 'Content-Type: application/json' -H 'Idempotency-Key: q1' --data "$ask" \
		"$RS_URL/api/ask" >"$T/first.code" &
	first=$!
	sleep 0.5
	req_admin POST /api/ask -H 'Content-Type: application/json' -H 'Idempotency-Key: q1' --data "$ask"
	assert_error 409 idempotency_conflict
	wait "$first"
	[ "$(cat "$T/first.code")" = 200 ]
	req_admin POST /api/ask -H 'Content-Type: application/json' -H 'Idempotency-Key: q1' --data "$ask"
	assert_code 200
	assert_header Idempotent-Replayed true
	# after the ttl the key is new: the LLM is asked again
	sleep 2.1
	req_admin POST /api/ask -H 'Content-Type: application/json' -H 'Idempotency-Key: q1' --data "$ask"
	assert_code 200
	assert_no_header Idempotent-Replayed
	# a failure is not stored: the retry reaches the LLM again
	fault "$LLM" "mode=status&status=500"
	req_admin POST /api/ask -H 'Content-Type: application/json' -H 'Idempotency-Key: q2' --data "$ask"
	[ "$code" -ge 500 ]
	fault "$LLM" "mode=none"
	req_admin POST /api/ask -H 'Content-Type: application/json' -H 'Idempotency-Key: q2' --data "$ask"
	assert_code 200
	assert_no_header Idempotent-Replayed
}

# ---- input validation --------------------------------------------------------

@test "validation: unknown, repeated or malformed input is 400, a broken rule in a body 422, naming the field" {
	rs_start
	req_viewer GET '/api/cache/stats?shard=1'
	assert_error 400 bad_request
	assert_jq '.error.field == "query" and (.error.message | contains("shard"))'
	req_viewer GET '/api/jobs/status?x=%zz'
	assert_error 400 bad_request
	req_viewer GET '/api/jobs/%2e%2e'
	assert_error 400 bad_request
	assert_jq '.error.field == "id"'
	req_viewer GET '/api/jobs/..secret'
	assert_error 400 bad_request
	assert_jq '.error.field == "id"'
	req_viewer GET "/api/workstations/$(printf 'w%.0s' $(seq 129))"
	assert_error 400 bad_request
	assert_jq '.error.field == "name"'
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' --data '{"key":"'"$(printf 'k%.0s' $(seq 4097))"'"}'
	assert_error 422 validation_failed
	assert_jq '.error.field == "key" and (.error.message | contains("4096"))'
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' --data '{"prefix":"a\u0000b"}'
	assert_error 400 invalid_json
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' \
		--data "{\"prefix\":\"'; DROP TABLE users; --\"}"
	assert_code 200
	req_viewer GET /api/health/ready --data 'x'
	assert_error 400 bad_request
	assert_jq '.error.field == "body"'
}
