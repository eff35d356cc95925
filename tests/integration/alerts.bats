#!/usr/bin/env bats
# Incidents and the alert webhook: a local receiver (fakehwa --record)
# gets one notification per incident, deduplicated while it lasts, and a
# resolved one when it ends; requests never wait for it.

load helpers

# hook_start: a webhook receiver recording each POST to $T/hook.jsonl; sets
# HOOK (its port).
hook_start() {
	local pf=$T/hook.port
	"$RS_TOP_BUILDDIR/tests/fakehwa/fakehwa" -q --accept-any --record "$T/hook.jsonl" \
		-d "$T" --port-file "$pf" >"$T/hook.log" 2>&1 3>&- &
	FAKE_PIDS+=($!)
	wait_for 5 test -s "$pf" || return 1
	HOOK=$(cat "$pf")
}

# at_least N STATUS: true once N notifications with STATUS came (for
# wait_for, which runs it again and again).
at_least() {
	[ "$(posts "$2")" -ge "$1" ]
}

# posts [STATUS]: the notifications received (with that status).
posts() {
	[ -f "$T/hook.jsonl" ] || { echo 0; return; }
	jq -c --arg s "${1:-}" 'select($s == "" or .body.status == $s)' "$T/hook.jsonl" | wc -l
}

@test "alerts: an open breaker is one notification however long it lasts, then one resolved" {
	hook_start
	fake_start FAKE
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE" "alerts.webhook_url=http://127.0.0.1:$HOOK/hook" \
		alerts.repeat_interval=1h
	rs_start
	rctl breaker open hwa
	wait_for 5 at_least 1 firing
	# the incident goes on: checked every second, sent once
	sleep 3
	[ "$(posts firing)" = 1 ]
	line=$(head -1 "$T/hook.jsonl")
	jq -e '.method == "POST" and .path == "/hook" and .content_type == "application/json"
		and .body.status == "firing" and .body.name == "breaker_open:hwa"
		and .body.severity == "critical" and (.body.summary | test("hwa is forced_open"))
		and (.body.source | startswith("resync-fcgi@")) and (.body.time | test("Z$"))
		and .body.details.breaker == "hwa"' <<<"$line"
	req_viewer GET /metrics
	n=$(sed -n 's/^resync_alert_notifications_total{result="deduplicated"} //p' <<<"$output")
	[ "$n" -ge 2 ]
	grep -q '^resync_alert_notifications_total{result="sent"} 1$' <<<"$output"
	grep -q '^resync_incidents_firing 1$' <<<"$output"
	grep -q 'incident breaker_open:hwa: circuit breaker hwa is forced_open' "$T/resync.log"
	rctl breaker close hwa
	wait_for 5 at_least 1 resolved
	sleep 1.5
	[ "$(posts)" = 2 ]
	jq -e 'select(.body.status == "resolved") | .body.name == "breaker_open:hwa"' "$T/hook.jsonl"
	grep -q 'incident breaker_open:hwa is over' "$T/resync.log"
}

@test "alerts: a dead or stalled webhook never slows a request; failures are counted" {
	hook_start
	fake_start FAKE
	fault "$HOOK" "mode=hang"
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE" "alerts.webhook_url=http://127.0.0.1:$HOOK/hook" \
		alerts.timeout=500ms
	rs_start
	rctl breaker open hwa
	sleep 1.5
	# the sender is stuck on the hanging receiver: requests are not.  The
	# responder's own times (access log) say so; a waiting request would
	# take the webhook's 500 ms timeout at least.
	for i in 1 2 3 4 5; do
		req GET /api/health/ready
		assert_code 200
	done
	slow=$(jq -s '[.[] | select(.path == "/api/health/ready" and .duration_ms >= 400)] | length' \
		"$T/access.log")
	[ "$slow" = 0 ]
	wait_for 5 bash -c "curl -s -H 'X-API-Key: $VIEWER_KEY' '$RS_URL/metrics' |
		grep -q '^resync_alert_notifications_total{result=\"failed\"} [1-9]'"
}

@test "alerts: without [alerts] webhook_url incidents are still logged" {
	fake_start FAKE
	rs_conf "upstream hwa.url=http://127.0.0.1:$FAKE"
	rs_start
	rctl breaker open hwa
	wait_for 5 grep -q 'incident breaker_open:hwa' "$T/resync.log"
	req_viewer GET /metrics
	grep -q '^resync_incidents_firing 1$' <<<"$output"
	grep -q '^resync_alert_notifications_total{result="sent"} 0$' <<<"$output"
}
