#!/usr/bin/env bats
# resyncctl pool, as an operator runs it: the three verbs' output (text and
# --json) and exit status.  validate and check need only a configuration:
# check's endpoints are a closed port (127.0.0.1:1, refused at once) or a
# tests/fakehwa server this file starts on a port of its own choosing;
# stats reads rows that responders would publish, written with the sqlite3
# CLI.  Each test works in its own $BATS_TEST_TMPDIR.

load helpers
# helpers.bash's setup, kept to be called from this file's own.
eval "helpers_$(declare -f setup)"

: "${RS_TOP_BUILDDIR:=$RS_TOP_SRCDIR}"
FAKEHWA="$RS_TOP_BUILDDIR/tests/fakehwa/fakehwa"

setup() {
	helpers_setup || return 1
	FAKE_PID=''
	config
}

teardown() {
	if [ -n "$FAKE_PID" ]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
}

# Two upstreams whose endpoints nobody listens on.
config() {
	conf r.conf <<-'EOF'
	[upstream hwa]
	url = http://127.0.0.1:1
	connect_timeout = 2s
	[upstream billing]
	url = http://127.0.0.1:1/billing
	connect_timeout = 2s
	[persistence]
	db = t.db
	EOF
}

# pool ARGS...: resyncctl -c r.conf pool ARGS...
pool() {
	rctl -c r.conf pool "$@"
}

sql() {
	sqlite3 "$BATS_TEST_TMPDIR/t.db" "$@"
}

now_ms() {
	echo $(($(date +%s) * 1000))
}

# has_json: $output is exactly one JSON document.  Call it before
# assert_jq, which alone passes on an empty output (jq -e exits 0 when
# there is no input at all).
has_json() {
	if ! jq -s -e 'length == 1' <<<"$output" >/dev/null 2>&1; then
		printf 'expected one JSON document, got:\n%s\n' "$output" >&2
		return 1
	fi
}

# ---- the fake HWA server -------------------------------------------------

# fake_start: a fakehwa serving ./www (where /health answers 200 and
# anything else 404) on a free port, its port in FAKE_PORT; teardown stops
# it.  The port comes from fakehwa's --port-file: nothing to race for.
fake_start() {
	local i

	if [ ! -x "$FAKEHWA" ]; then
		echo "FAKEHWA='$FAKEHWA' is not an executable; build tests/fakehwa/fakehwa first" >&2
		return 1
	fi
	mkdir -p www
	printf '{"status":"ok"}\n' >www/health
	"$FAKEHWA" -q -d www --port-file port >fake.log 2>&1 3>&- &
	FAKE_PID=$!
	for i in $(seq 1 200); do
		[ -s port ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s port ]; then
		echo "fakehwa did not start; its output:" >&2
		cat fake.log >&2
		return 1
	fi
	FAKE_PORT=$(cat port)
}

# fake_fault QUERY: make the fake misbehave ("mode=status&status=503"),
# over bash's /dev/tcp (no curl needed).
fake_fault() {
	local reply

	exec 5<>"/dev/tcp/127.0.0.1/$FAKE_PORT" || return 1
	printf 'GET /_fault?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&5
	reply=$(cat <&5)
	exec 5<&-
	if ! grep -qF '{"ok":true}' <<<"$reply"; then
		printf 'fakehwa refused the fault %s:\n%s\n' "$1" "$reply" >&2
		return 1
	fi
}

# fake_conf: r.conf with upstreams on the fake: "base" checks the base URL,
# "health" a path that answers 200, "missing" one that answers 404.
fake_conf() {
	conf r.conf <<-EOF
	[upstream base]
	url = http://127.0.0.1:$FAKE_PORT
	[upstream health]
	url = http://127.0.0.1:$FAKE_PORT
	health_check_path = /health
	[upstream missing]
	url = http://127.0.0.1:$FAKE_PORT
	health_check_path = /missing
	EOF
}

# ---- what responders publish ---------------------------------------------

# A responder's published figures: upstreams hwa (two endpoints, one down)
# and billing, as rs_stats_upstreams_json writes them.
STATS='{"upstreams":[
 {"name":"hwa","strategy":"round_robin","calls":100,"retries":5,"retries_denied":1,"panics":0,
  "pool":{"open":12,"in_use":3,"idle":9,"waiting":0,"min_size":3,"max_size":30,
   "hits":90,"misses":10,"creations":11,"exhaustions":2,"requests":100,"errors":1,"leaks":1,
   "closures":{"idle":4,"lifetime":3,"error":1,"remote":2,"rebalance":0,"shutdown":0},
   "acquire_wait_ms":{"count":100,"p50":0.01,"p95":0.02,"p99":0.3,"max":1},
   "request_ms":{"count":100,"p50":38.2,"p95":121,"p99":310.44,"max":400}},
  "endpoints":[
   {"url":"http://hwa1.example.com","state":"up","weight":1,"calls":60,"failures":1,
    "ejections":0,"consecutive_failures":0,"last_check":"2026-11-23T10:00:00Z",
    "last_check_latency_ms":4,"last_error":""},
   {"url":"http://hwa2.example.com","state":"down","weight":1,"calls":40,"failures":9,
    "ejections":1,"consecutive_failures":3,"last_check":"2026-11-23T10:00:00Z",
    "last_check_latency_ms":null,"last_error":"HTTP 503 from http://hwa2.example.com/health"}]},
 {"name":"billing","strategy":"least_connections","calls":7,"retries":0,"retries_denied":0,"panics":0,
  "pool":{"open":1,"in_use":0,"idle":1,"waiting":0,"min_size":3,"max_size":30,
   "hits":0,"misses":0,"creations":1,"exhaustions":0,"requests":7,"errors":0,"leaks":0,
   "closures":{"idle":0,"lifetime":0,"error":0,"remote":0,"rebalance":0,"shutdown":0},
   "acquire_wait_ms":{"count":0,"p50":0,"p95":0,"p99":0,"max":0},
   "request_ms":{"count":0,"p50":0,"p95":0,"p99":0,"max":0}},
  "endpoints":[
   {"url":"http://billing.example.com","state":"up","weight":1,"calls":7,"failures":0,
    "ejections":0,"consecutive_failures":0,"last_check":null,
    "last_check_latency_ms":null,"last_error":""}]}]}'

# new_db: t.db with its tables and no stats row.
new_db() {
	rctl --db "$BATS_TEST_TMPDIR/t.db" cache set k v >/dev/null
	sql "DELETE FROM stats"
}

# published ORIGIN UPDATED_MS [JSON]: the row responder ORIGIN would write.
published() {
	sql "INSERT INTO stats (origin, pid, updated_ms, json)
	     VALUES ('$1', 812, $2, '${3:-$STATS}')"
}

# ---- the command itself ----------------------------------------------------

@test "pool: --help lists the three verbs, exit 0" {
	run --separate-stderr rctl pool --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "usage: resyncctl pool <command> [options]"
	for verb in stats check validate; do
		assert_output_matches "^  $verb +[a-z]"
	done
}

@test "pool: each verb's --help shows its usage, exit 0" {
	run rctl pool stats --help
	assert_status 0
	assert_output_has "usage: resyncctl pool stats [NAME]"
	run rctl pool check --help
	assert_status 0
	assert_output_has "usage: resyncctl pool check [NAME]"
	run rctl pool validate --help
	assert_status 0
	assert_output_has "usage: resyncctl pool validate"
}

@test "pool: no verb is a usage error" {
	run --separate-stderr pool
	assert_status 2
	assert_stderr_has "resyncctl: pool: missing command"
}

@test "pool: an unknown verb is a usage error, exit 2" {
	run --separate-stderr pool frobnicate
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool: unknown command 'frobnicate'"
	assert_stderr_has "Try 'resyncctl pool --help'."
}

@test "pool: extra arguments are usage errors" {
	run --separate-stderr pool validate extra
	assert_status 2
	run --separate-stderr pool check hwa billing
	assert_status 2
	run --separate-stderr pool stats hwa billing
	assert_status 2
}

@test "pool: verbs may be abbreviated" {
	run pool val
	assert_status 0
	assert_output_has "pool settings are valid"
}

# ---- validate --------------------------------------------------------------

@test "pool validate: good settings: exit 0, no recommendation" {
	run --separate-stderr pool validate
	assert_status 0
	assert_empty "$stderr"
	[ "$output" = "r.conf: pool settings are valid" ] ||
		{ echo "got: $output" >&2; false; }
}

@test "pool validate: leaves out other sections' diagnostics" {
	# config-validate warns that [audit] key_file is not set; this is no
	# pool setting.
	run --separate-stderr rctl -c r.conf config-validate
	assert_output_has "[audit] key_file"
	run --separate-stderr pool validate
	assert_status 0
	assert_output_lacks "audit" "key_file"
}

@test "pool validate: max_size below min_size names max_size and fails" {
	conf r.conf <<-'EOF'
	[pool]
	max_size = 2
	min_size = 5
	[upstream hwa]
	url = http://127.0.0.1:1
	EOF
	run pool validate
	[ "$status" -ne 0 ] || { echo "exit 0; output: $output" >&2; false; }
	assert_output_has "r.conf:2: error: [pool] max_size: max_size (2) is smaller than min_size (5)"
}

@test "pool validate: max_size below min_size is reported by validate, exit 1" {
	conf r.conf <<-'EOF'
	[pool]
	max_size = 2
	min_size = 5
	[upstream hwa]
	url = http://127.0.0.1:1
	EOF
	run --separate-stderr pool validate
	assert_status 1
	assert_output_has "[pool] max_size: max_size (2) is smaller than min_size (5)" \
		"r.conf: pool settings have errors"
	run --separate-stderr rctl -c r.conf --json pool validate
	assert_status 1
	has_json
	assert_jq '.ok == false'
	assert_jq 'any(.diagnostics[]; .severity == "error" and .section == "pool" and .key == "max_size")'
}

@test "pool validate: a value that does not parse is reported, exit 1" {
	conf r.conf <<-'EOF'
	[pool]
	idle_timeout = soon
	EOF
	run --separate-stderr pool validate
	assert_status 1
	assert_output_has "[pool] idle_timeout" "pool settings have errors"
}

@test "pool validate: a value other than the seed's is a recommendation, exit 0" {
	conf r.conf <<-'EOF'
	[pool]
	idle_timeout = 300s
	[upstream hwa]
	url = http://127.0.0.1:1
	EOF
	run --separate-stderr pool validate
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "recommendation: [pool] idle_timeout = 150s (now 5m): idle connections released sooner" \
		"r.conf: pool settings are valid"
	assert_count 1 "recommendation:"
}

@test "pool validate: every seed value differing is recommended (a larger max_size is not)" {
	conf r.conf <<-'EOF'
	[pool]
	min_size = 2
	max_size = 20
	idle_timeout = 100s
	connection_timeout = 5s
	health_check_interval = 10s
	max_lifetime = 2h
	EOF
	run pool validate
	assert_status 0
	assert_output_has \
		"recommendation: [pool] min_size = 3 (now 2): fewer connections to open at start-up" \
		"recommendation: [pool] max_size = 30 (now 20): room for peak load" \
		"recommendation: [pool] idle_timeout = 150s (now 100s): idle connections released sooner" \
		"recommendation: [pool] connection_timeout = 20s (now 5s): a full pool reported sooner" \
		"recommendation: [pool] health_check_interval = 30s (now 10s): a dead endpoint noticed sooner" \
		"recommendation: [pool] max_lifetime = 1h (now 2h): fewer reconnections"
	assert_count 6 "recommendation:"
}

@test "pool validate: an environment override counts as the setting" {
	RESYNC_POOL_MIN_SIZE=4 run pool validate
	assert_status 0
	assert_output_has "recommendation: [pool] min_size = 3 (now 4)"
}

@test "pool validate: max_size below [server] threads is a recommendation" {
	conf r.conf <<-'EOF'
	[server]
	threads = 64
	[upstream hwa]
	url = http://127.0.0.1:1
	EOF
	run pool validate
	assert_status 0
	assert_output_has "recommendation: [pool] max_size = 64 (now 30): at least one connection per worker thread"
	conf r.conf <<-'EOF'
	[server]
	threads = 8
	EOF
	run pool validate
	assert_status 0
	assert_output_lacks "recommendation:"
}

@test "pool validate: a warning is listed and does not fail" {
	conf r.conf <<-'EOF'
	[pool]
	health_check_interval = 200s
	EOF
	run --separate-stderr pool validate
	assert_status 0
	assert_output_has "r.conf:2: warning: [pool] health_check_interval: health_check_interval (200s) is not shorter than idle_timeout (150s)" \
		"r.conf: pool settings are valid"
	run --separate-stderr rctl -c r.conf --json pool validate
	assert_status 0
	has_json
	assert_jq '.ok == true'
	assert_jq '.diagnostics == [{"severity": "warning", "section": "pool",
		"key": "health_check_interval",
		"message": "health_check_interval (200s) is not shorter than idle_timeout (150s): idle connections are closed before they are checked"}]'
}

@test "pool validate: --json has ok, diagnostics and recommendations" {
	run --separate-stderr rctl -c r.conf --json pool validate
	assert_status 0
	has_json
	assert_empty "$stderr"
	assert_jq '. == {"ok": true, "diagnostics": [], "recommendations": []}'
	conf r.conf <<-'EOF'
	[pool]
	idle_timeout = 300s
	EOF
	run --separate-stderr rctl -c r.conf --json pool validate
	assert_status 0
	has_json
	assert_jq '(keys | sort) == ["diagnostics", "ok", "recommendations"]'
	assert_jq '.ok == true and .diagnostics == []'
	assert_jq '.recommendations == [{"key": "idle_timeout", "value": "5m",
		"recommended": "150s", "why": "idle connections released sooner"}]'
}

@test "pool validate: -q leaves out the last line, not the recommendations" {
	conf r.conf <<-'EOF'
	[pool]
	idle_timeout = 300s
	EOF
	run --separate-stderr rctl -q -c r.conf pool validate
	assert_status 0
	assert_output_has "recommendation: [pool] idle_timeout = 150s"
	assert_output_lacks "pool settings are valid"
}

@test "pool validate: a configuration that cannot be read is exit 2" {
	run --separate-stderr rctl -c nonexistent.conf pool validate
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool validate: cannot open 'nonexistent.conf'"
}

# ---- check -----------------------------------------------------------------

@test "pool check: an endpoint on a closed port is DOWN, exit 1" {
	run --separate-stderr pool check hwa
	assert_status 1
	assert_empty "$stderr"
	assert_output_matches '^hwa +http://127\.0\.0\.1:1 +DOWN  upstream hwa: http://127\.0\.0\.1:1: '
	assert_output_has "0 of 1 endpoints up"
	assert_count 1 "DOWN"
}

@test "pool check: every upstream's endpoints without NAME" {
	run --separate-stderr pool check
	assert_status 1
	assert_output_matches '^hwa +http://127\.0\.0\.1:1 +DOWN '
	assert_output_matches '^billing +http://127\.0\.0\.1:1/billing +DOWN '
	assert_output_has "0 of 2 endpoints up"
}

@test "pool check: NAME checks that upstream only" {
	run --separate-stderr pool check billing
	assert_status 1
	assert_output_matches '^billing +http://127\.0\.0\.1:1/billing +DOWN '
	assert_output_lacks "hwa"
	assert_output_has "0 of 1 endpoints up"
}

@test "pool check: --json gives each endpoint's result" {
	run --separate-stderr rctl -c r.conf --json pool check
	assert_status 1
	has_json
	assert_empty "$stderr"
	assert_jq 'length == 2'
	assert_jq '.[0].ok == false and .[0].error == "connect"'
	assert_jq '.[0].upstream == "hwa" and .[0].url == "http://127.0.0.1:1" and .[0].status == 0'
	assert_jq '.[0].message | test("^upstream hwa: http://127\\.0\\.0\\.1:1: ")'
	assert_jq 'all(.[]; (keys | sort) == ["error", "latency_ms", "message", "ok", "status", "upstream", "url"])'
	assert_jq '.[1].upstream == "billing" and .[1].error == "connect"'
}

@test "pool check: -q prints only what is down" {
	run --separate-stderr rctl -q -c r.conf pool check hwa
	assert_status 1
	assert_output_has "DOWN"
	assert_output_lacks "endpoints up"
}

@test "pool check: an unknown NAME is exit 2 and names the configured upstreams" {
	run --separate-stderr pool check nosuch
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool check: no [upstream nosuch] in r.conf (configured: hwa, billing)"
}

@test "pool check: a configuration without [upstream] is exit 2" {
	conf e.conf <<-'EOF'
	[pool]
	max_size = 40
	EOF
	run --separate-stderr rctl -c e.conf pool check
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool check: no [upstream] is configured in e.conf"
	run --separate-stderr rctl -c e.conf pool check hwa
	assert_status 2
	assert_stderr_has "no [upstream hwa] in e.conf (configured: none)"
}

@test "pool check: an error in the pool settings is exit 2" {
	conf r.conf <<-'EOF'
	[pool]
	max_size = 2
	min_size = 5
	[upstream hwa]
	url = http://127.0.0.1:1
	EOF
	run --separate-stderr pool check
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "max_size (2) is smaller than min_size (5)"
	assert_stderr_has "resyncctl: pool check: invalid configuration 'r.conf'"
}

@test "pool check: a server that answers: up below 500, health_check_path needs 2xx" {
	fake_start
	fake_conf
	run --separate-stderr pool check
	assert_status 1
	assert_output_matches "^base +http://127\\.0\\.0\\.1:$FAKE_PORT +up    HTTP 404 in [0-9]+ ms\$"
	assert_output_matches "^health +http://127\\.0\\.0\\.1:$FAKE_PORT +up    HTTP 200 in [0-9]+ ms\$"
	assert_output_matches "^missing +http://127\\.0\\.0\\.1:$FAKE_PORT +DOWN  HTTP 404 from http://127\\.0\\.0\\.1:$FAKE_PORT/missing\$"
	assert_output_has "2 of 3 endpoints up"
	run --separate-stderr rctl -c r.conf --json pool check
	assert_status 1
	has_json
	assert_jq 'map({(.upstream): [.ok, .status, .error]}) | add ==
		{"base": [true, 404, null], "health": [true, 200, null], "missing": [false, 404, null]}'
	assert_jq '.[0].message == null and (.[2].message | test("^HTTP 404 from "))'
}

@test "pool check: every endpoint up is exit 0" {
	fake_start
	fake_conf
	run --separate-stderr pool check health
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "1 of 1 endpoints up"
}

@test "pool check: a 5xx answer is DOWN even without health_check_path" {
	fake_start
	fake_conf
	fake_fault "mode=status&status=503"
	run --separate-stderr pool check base
	assert_status 1
	assert_output_matches "^base +http://127\\.0\\.0\\.1:$FAKE_PORT +DOWN  HTTP 503 from http://127\\.0\\.0\\.1:$FAKE_PORT\$"
}

@test "pool check: no answer within request_timeout is error timeout" {
	fake_start
	fake_fault "mode=hang"
	conf r.conf <<-EOF
	[upstream slow]
	url = http://127.0.0.1:$FAKE_PORT
	request_timeout = 300ms
	EOF
	run --separate-stderr rctl -c r.conf --json pool check
	assert_status 1
	has_json
	assert_jq '.[0].ok == false and .[0].error == "timeout" and .[0].status == 0'
}

# ---- stats -----------------------------------------------------------------

@test "pool stats: no responder: exit 1 and says none has published" {
	run --separate-stderr pool stats
	assert_status 1
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool stats: no running resync-fcgi has published pool figures to "
	assert_stderr_has "t.db in the last 10 s"
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
}

@test "pool stats: no responder, --json: [] and exit 1" {
	new_db
	run --separate-stderr rctl -c r.conf --json pool stats
	assert_status 1
	has_json
	assert_jq '. == []'
	assert_stderr_has "no running resync-fcgi has published pool figures"
}

@test "pool stats: a responder stopped over 10 s ago does not count" {
	new_db
	published resync-fcgi/7@old $(($(now_ms) - 60000))
	run --separate-stderr pool stats
	assert_status 1
	assert_empty "$output"
	assert_stderr_has "no running resync-fcgi has published pool figures"
}

@test "pool stats: --db names the database read" {
	run --separate-stderr rctl -c r.conf --db other.db pool stats
	assert_status 1
	assert_stderr_has "published pool figures to other.db in the last 10 s"
}

@test "pool stats: an unknown NAME is exit 2 and names the configured upstreams" {
	new_db
	published resync-fcgi/812@web1 "$(now_ms)"
	run --separate-stderr pool stats nosuch
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: pool stats: no [upstream nosuch] in r.conf (configured: hwa, billing)"
}

@test "pool stats: a live responder's figures, every upstream" {
	new_db
	published resync-fcgi/812@web1 "$(now_ms)"
	published resync-fcgi/7@old $(($(now_ms) - 60000))
	run --separate-stderr pool stats
	assert_status 0
	assert_empty "$stderr"
	want="upstream hwa (responder resync-fcgi/812@web1): round_robin, 2 endpoints
  connections  open 12, in use 3, idle 9, waiting 0 (min 3, max 30)
  reuse        hits 90, misses 10 (90.0% reused), created 11, exhausted 2, leaks 1
  closures     idle 4, lifetime 3, error 1, remote 2, rebalance 0, shutdown 0
  latency      request p50 38.2 ms, p95 121.0 ms, p99 310.4 ms; wait p99 0.3 ms
  calls        100, retries 5, retries refused by the budget 1
  endpoint     http://hwa1.example.com up, 60 calls, 1 failures
  endpoint     http://hwa2.example.com down, 40 calls, 9 failures: HTTP 503 from http://hwa2.example.com/health
upstream billing (responder resync-fcgi/812@web1): least_connections, 1 endpoint
  connections  open 1, in use 0, idle 1, waiting 0 (min 3, max 30)
  reuse        hits 0, misses 0 (0.0% reused), created 1, exhausted 0, leaks 0
  closures     idle 0, lifetime 0, error 0, remote 0, rebalance 0, shutdown 0
  latency      request p50 0.0 ms, p95 0.0 ms, p99 0.0 ms; wait p99 0.0 ms
  calls        7, retries 0, retries refused by the budget 0
  endpoint     http://billing.example.com up, 7 calls, 0 failures"
	if [ "$output" != "$want" ]; then
		printf 'expected:\n%s\ngot:\n%s\n' "$want" "$output" >&2
		false
	fi
}

@test "pool stats: NAME shows that upstream, for each live responder" {
	new_db
	published resync-fcgi/812@web1 "$(now_ms)"
	published resync-fcgi/913@web2 "$(now_ms)"
	run --separate-stderr pool stats hwa
	assert_status 0
	assert_count 1 "upstream hwa (responder resync-fcgi/812@web1)"
	assert_count 1 "upstream hwa (responder resync-fcgi/913@web2)"
	assert_output_lacks "billing"
}

@test "pool stats: --json: the published objects, with the responder" {
	new_db
	published resync-fcgi/812@web1 "$(now_ms)"
	run --separate-stderr rctl -c r.conf --json pool stats
	assert_status 0
	has_json
	assert_empty "$stderr"
	assert_jq 'map(.name) == ["hwa", "billing"]'
	assert_jq 'all(.[]; .responder == "resync-fcgi/812@web1")'
	assert_jq '.[0].pool.closures == {"idle": 4, "lifetime": 3, "error": 1,
		"remote": 2, "rebalance": 0, "shutdown": 0}'
	assert_jq '.[0].pool.hits == 90 and .[0].pool.request_ms.p99 == 310.44'
	assert_jq '.[0].endpoints[1] | .state == "down" and .last_check_latency_ms == null'
	run --separate-stderr rctl -c r.conf --json pool stats billing
	assert_status 0
	has_json
	assert_jq 'length == 1 and .[0].name == "billing"'
}

@test "pool stats: a configured upstream no responder publishes is exit 1" {
	new_db
	published resync-fcgi/812@web1 "$(now_ms)" '{"upstreams":[]}'
	run --separate-stderr pool stats hwa
	assert_status 1
	assert_empty "$output"
	assert_stderr_has "no running resync-fcgi has published pool figures"
}
