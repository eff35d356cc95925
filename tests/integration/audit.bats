#!/usr/bin/env bats
# The responder's audit records: each security event leaves the right
# record, chained, and the chain verifies.

load helpers

# records [WHERE]: "action|outcome|actor|target" per audit record, oldest first.
records() {
	sqlite3 "$DB" "SELECT action, outcome, actor, target FROM audit ${1:-} ORDER BY seq"
}

# there WHERE: is there such a record now?  (For wait_for, which runs it
# again and again.)
there() {
	[ -n "$(records "$1" 2>/dev/null)" ]
}

# has_record ACTION [OUTCOME [ACTOR]]: wait until such a record is there.
has_record() {
	local where="WHERE action = '$1'"
	[ -n "${2:-}" ] && where+=" AND outcome = '$2'"
	[ -n "${3:-}" ] && where+=" AND actor = '$3'"
	wait_for 5 there "$where"
}

@test "audit: a denial, a wrong key and a purge each leave their record; an admin's read does not" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	rs_conf persistence.sync=always
	rs_start
	req_viewer GET /api/status
	assert_error 403 forbidden
	req GET /api/status -H 'X-API-Key: not-a-key'
	assert_error 401 unauthorized
	req_admin GET /api/status
	assert_code 200
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' --data '{"prefix":"jobs:"}'
	assert_code 200
	# sync = always: each record is committed before its answer
	run records
	assert_output_has "auth.denied|denied|key:viewer|/api/status" \
		"auth.failure|denied|ip:127.0.0.1|/api/status" \
		"cache.purge|success|key:admin|prefix:jobs:"
	[ -z "$(records "WHERE action = 'admin.request'")" ]
	# the request id ties the record to the access log
	rid=$(sqlite3 "$DB" "SELECT request_id FROM audit WHERE action = 'cache.purge'")
	grep -q "\"request_id\":\"$rid\".*\"path\":\"/api/cache/purge\"" "$T/access.log"
	# never the key itself
	! sqlite3 "$DB" "SELECT * FROM audit" | grep -q -e "$ADMIN_KEY" -e "$VIEWER_KEY"
}

@test "audit: a 429 and a CORS violation are recorded once a minute per client, not per request" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	rs_conf persistence.sync=always ratelimit.enabled=true ratelimit.requests_per_second=1 \
		ratelimit.burst=2 "cors.allowed_origins=https://app.example.com"
	rs_start
	# one curl, one connection: separate processes would let the bucket
	# refill on a busy machine
	urls=()
	for i in 1 2 3 4 5 6 7 8; do urls+=(-o /dev/null "$RS_URL/api/cache/stats"); done
	codes=$(curl -sS -w '%{http_code} ' -H "X-API-Key: $VIEWER_KEY" "${urls[@]}")
	[[ $codes == *429* ]] || { echo "codes: $codes"; false; }
	for i in 1 2 3; do
		req OPTIONS /api/cache/stats -H 'Origin: https://evil.example.org' \
			-H 'Access-Control-Request-Method: GET'
	done
	assert_error 403 cors_refused
	[ "$(records "WHERE action = 'ratelimit.block'" | wc -l)" = 1 ]
	[ "$(records "WHERE action = 'cors.violation'" | wc -l)" = 1 ]
	run records "WHERE action IN ('ratelimit.block', 'cors.violation')"
	assert_output_has "ratelimit.block|denied|key:viewer|/api/cache/stats" \
		"cors.violation|denied|ip:127.0.0.1|/api/cache/stats"
	d=$(sqlite3 "$DB" "SELECT details FROM audit WHERE action = 'cors.violation'")
	jq -e '.origin == "https://evil.example.org" and .reason == "origin"' <<<"$d"
}

@test "audit: a breaker transition and a reload are the responder's own records" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	fake_start FAKE
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE"
	rs_start
	rctl breaker open hwa
	has_record breaker.transition success system
	run records "WHERE action = 'breaker.transition'"
	assert_output_has "breaker.transition|success|system|hwa"
	d=$(sqlite3 "$DB" "SELECT details FROM audit WHERE action = 'breaker.transition'")
	jq -e '.from == "closed" and .to == "forced_open" and (.by | startswith("root") or length > 0)' <<<"$d"
	old=$(sha256sum <"$CONF" | cut -d' ' -f1)
	rs_conf log.level=notice
	new=$(sha256sum <"$CONF" | cut -d' ' -f1)
	kill -HUP "$FCGI_PID"
	has_record config.reload success system
	d=$(sqlite3 "$DB" "SELECT details FROM audit WHERE action = 'config.reload'")
	jq -e --arg o "$old" --arg n "$new" '.old_sha256 == $o and .new_sha256 == $n' <<<"$d"
}

@test "audit: [audit] enabled = false writes nothing; the chain of what was written verifies" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	rs_conf audit.enabled=false
	rs_start
	req_viewer GET /api/status
	assert_error 403 forbidden
	sleep 0.5
	[ "$(sqlite3 "$DB" "SELECT count(*) FROM audit")" = 0 ]
}
