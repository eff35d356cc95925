#!/usr/bin/env bats
# tests/fakehwa/fakehwa, the fake HWA server, alone: the fixtures it serves,
# its HTTP framing, each fault mode of /_fault, /_stats, /_reset, --record
# and --accept-any, its command line and signals.  Each test starts its own server on a port the
# kernel picks (-l 127.0.0.1:0), read from its --port-file.

load helpers

: "${FAKEHWA:=$RS_TOP_BUILDDIR/tests/fakehwa/fakehwa}"
FIXTURES=$RS_TOP_SRCDIR/tests/fixtures/hwa
INFO=/twsd/api/v2/engine/info
INFO_FILE=$FIXTURES/twsd/api/v2/engine/info.json
JOBQ=/twsd/api/v2/plan/current/job/query
JOBQ_FILE=$FIXTURES/twsd/api/v2/plan/current/job/query.json

# helpers.bash's set-up is for resync-fcgi behind a web server: this file
# needs none of it.
setup_file() { :; }

setup() {
	if [ ! -x "$FAKEHWA" ]; then
		echo "'$FAKEHWA' is not an executable; build it first (make tests/fakehwa/fakehwa)" >&2
		return 1
	fi
	command -v curl >/dev/null || { echo "curl is not installed" >&2; return 1; }
	command -v jq >/dev/null || { echo "jq is not installed" >&2; return 1; }
	T=$BATS_TEST_TMPDIR
	cd "$T" || return 1
	FAKE_PID='' PORT='' RS_URL=''
}

teardown() {
	stop_pid "$FAKE_PID" TERM
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		show_log "fakehwa stderr" "$T/fakehwa.err"
	fi
	return 0
}

# fake_start [ARGS...]: fakehwa on the fixtures (ARGS may name others with
# -d) and a free port; waits for its port file.  Sets PORT and RS_URL, which
# req (helpers.bash) uses.
fake_start() {
	rm -f "$T/port"
	"$FAKEHWA" -d "$FIXTURES" --port-file "$T/port" "$@" \
		</dev/null 2>"$T/fakehwa.err" 3>&- &
	FAKE_PID=$!
	wait_for 10 port_written || return 1
	PORT=$(<"$T/port")
	RS_URL=http://127.0.0.1:$PORT
}

port_written() {
	alive "$FAKE_PID" || return 99
	[ -s "$T/port" ]
}

# fault QUERY: set the fault with GET /_fault?QUERY.
fault() {
	req GET "/_fault?$1" || return 1
	if [ "$code $output" != '200 {"ok":true}' ]; then
		printf 'expected /_fault?%s to answer 200 {"ok":true}, got %s %s\n' \
			"$1" "$code" "$output" >&2
		return 1
	fi
}

stats_hold() {
	req GET /_stats >/dev/null 2>&1 && jq -e "$1" <<<"$output" >/dev/null 2>&1
}

# assert_stats FILTER: /_stats satisfies jq FILTER within 10 s (a closed
# connection leaves open_connections when the server notices).
assert_stats() {
	if ! wait_for 10 stats_hold "$1" 2>/dev/null; then
		printf 'expected /_stats to satisfy:\n  %s\ngot:\n%s\n' "$1" "$output" >&2
		return 1
	fi
}

# assert_same_file GOT EXPECTED
assert_same_file() {
	if ! cmp -s "$1" "$2"; then
		printf 'expected the body to be %s; got:\n%s\n' "$2" "$(head -c 500 "$1")" >&2
		return 1
	fi
}

# raw BYTES: BYTES (printf %b escapes: \r, \n, \0) sent on one new
# connection; $output is what comes back until the server closes (5 s at
# most).
raw() {
	local fd

	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	printf '%b' "$1" >&"$fd"
	output=$(timeout 5 cat <&"$fd")
	exec {fd}<&-
}

not_alive() {
	! alive "$1"
}

# ---- serving the fixtures ---------------------------------------------------

@test "GET serves the fixture file as application/json" {
	fake_start
	req GET "$INFO"
	assert_code 200
	assert_header Content-Type application/json
	assert_header Content-Length "$(wc -c <"$INFO_FILE")"
	assert_same_file "$T/resp.body" "$INFO_FILE"
}

@test "POST to a .../query path gets the same file, its body ignored" {
	fake_start
	req POST "$JOBQ" -H 'Content-Type: application/json' \
		--data-binary '{"filters":{"jobInPlanFilter":{"status":["ABEND"]}}}'
	assert_code 200
	assert_same_file "$T/resp.body" "$JOBQ_FILE"
	req PUT "$JOBQ" --data-binary 'x'
	assert_code 200
}

@test "HEAD gets the headers with the file's Content-Length and no body" {
	fake_start
	req HEAD "$INFO"
	assert_code 200
	assert_header Content-Length "$(wc -c <"$INFO_FILE")"
	assert_empty "$output"
}

@test "DIR/PATH is served as is when it is a file, else DIR/PATH.json, read on every request" {
	mkdir -p "$T/fx/dir"
	echo '{"file":"plain"}' >"$T/fx/plain"
	echo '{"file":"plain.json"}' >"$T/fx/plain.json"
	echo '{"file":"dir.json"}' >"$T/fx/dir.json"
	echo '{"v":1}' >"$T/fx/changing.json"
	fake_start -d "$T/fx"
	req GET /plain
	assert_jq '.file == "plain"'
	req GET /dir
	assert_jq '.file == "dir.json"'
	req GET '/changing?ignored=1'
	assert_jq '.v == 1'
	echo '{"v":2}' >"$T/fx/changing.json.new"
	mv "$T/fx/changing.json.new" "$T/fx/changing.json"
	req GET /changing
	assert_jq '.v == 2'
}

@test "a missing path is 404 with an HWA-style messages array" {
	fake_start
	req GET /twsd/api/v2/no/such/thing
	assert_code 404
	assert_header Content-Type application/json
	assert_jq '.messages == ["not found: /twsd/api/v2/no/such/thing"]'
}

@test "a path with .., a %00 or not starting with / is 400" {
	fake_start
	req GET /twsd/../twsd/api/v2/engine/info --path-as-is
	assert_code 400
	assert_jq '.messages[0] | contains("..")'
	req GET /twsd/%2e%2e/twsd/api/v2/engine/info
	assert_code 400
	req GET /twsd/api%00/v2/engine/info
	assert_code 400
	raw 'GET twsd/api/v2/engine/info HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_output_has 'HTTP/1.1 400 Bad Request'
	raw 'GET /twsd/api/v2/engine\0/info HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_output_has 'HTTP/1.1 400 Bad Request' 'NUL'
}

# ---- HTTP framing -------------------------------------------------------------

@test "keep-alive: two URLs in one curl share one connection" {
	fake_start
	run -0 curl -sS -m 10 -o /dev/null -o /dev/null -w '%{num_connects} ' \
		"$RS_URL$INFO" "$RS_URL$JOBQ"
	if [ "$output" != "1 0 " ]; then
		printf 'expected connects "1 0 " (the second reuses the first), got "%s"\n' "$output" >&2
		return 1
	fi
	assert_stats '.requests == 2 and .connections == 1'
}

@test "HTTP/1.0 without keep-alive gets Connection: close" {
	fake_start
	req GET "$INFO" --http1.0
	assert_code 200
	assert_header Connection close
}

# The first body looks like a request line: taken for one, it would be a
# 400.  The second is longer than the buffer: the server must read the rest
# of it from the socket, and no further.
@test "pipelined requests with bodies are answered in order" {
	local big

	fake_start
	printf -v big '%*s' 100000 ''
	raw "POST $JOBQ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na b\r\n$(
		)POST $JOBQ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n$big$(
		)GET /nope HTTP/1.1\r\nHost: x\r\n\r\n$(
		)GET $INFO HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	run grep -oE 'HTTP/1\.1 [0-9]{3}' <<<"$output"
	if [ "$output" != $'HTTP/1.1 200\nHTTP/1.1 200\nHTTP/1.1 404\nHTTP/1.1 200' ]; then
		printf 'expected the status lines 200, 200, 404, 200; got:\n%s\n' "$output" >&2
		return 1
	fi
}

@test "a body larger than one read is skipped and the connection kept" {
	fake_start
	head -c 300000 /dev/zero >"$T/body"
	run -0 curl -sS -m 10 -H 'Expect:' --data-binary @"$T/body" \
		-o /dev/null -w '%{http_code} %{num_connects} ' "$RS_URL$JOBQ" \
		--next -o /dev/null -w '%{http_code} %{num_connects} ' "$RS_URL$INFO"
	if [ "$output" != "200 1 200 0 " ]; then
		printf 'expected "200 1 200 0 " (status, new connections), got "%s"\n' "$output" >&2
		return 1
	fi
}

@test "Expect: 100-continue gets 100 Continue before the body is sent" {
	fake_start
	run -0 curl -sS -v -m 10 -o /dev/null -H 'Expect: 100-continue' \
		--data-binary '{"a":1}' "$RS_URL$JOBQ"
	assert_output_has '< HTTP/1.1 100 Continue' '< HTTP/1.1 200 OK'
}

@test "a head over 16 KiB is 431, a body over 1 MiB 413, a chunked body 411" {
	local big

	fake_start
	printf -v big '%*s' 17000 ''
	req GET "$INFO" -H "X-Big: ${big// /a}"
	assert_code 431
	assert_jq '.messages[0] | contains("head")'
	head -c 1048576 /dev/zero >"$T/body"
	req POST "$JOBQ" --data-binary @"$T/body"
	assert_code 200
	echo >>"$T/body"
	req POST "$JOBQ" --data-binary @"$T/body"
	assert_code 413
	run -0 curl -sS -m 10 -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' \
		--data-binary @"$T/body" "$RS_URL$JOBQ"
	[ "$output" = 413 ] || { echo "expected 413 with Expect: 100-continue, got $output" >&2; return 1; }
	req POST "$JOBQ" -H 'Transfer-Encoding: chunked' --data-binary x
	assert_code 411
	assert_jq '.messages[0] | contains("chunked")'
}

# ---- faults -------------------------------------------------------------------------

@test "latency: the answer comes ms later, whole" {
	local t0 took

	fake_start
	fault 'mode=latency&ms=300'
	t0=$(now_ms)
	req GET "$INFO"
	took=$(($(now_ms) - t0))
	assert_code 200
	assert_same_file "$T/resp.body" "$INFO_FILE"
	if [ "$took" -lt 250 ]; then
		echo "expected the answer after 300 ms (at least 250), got it after $took ms" >&2
		return 1
	fi
	assert_stats '.faults_applied == 1 and .fault.mode == "latency" and .fault.ms == 300'
}

@test "status: the injected status comes back with an HWA error body" {
	fake_start
	fault 'mode=status&status=503'
	req GET "$INFO"
	assert_code 503
	assert_header Content-Type application/json
	assert_jq '.messages == ["injected status 503"]'
	fault 'mode=status'
	req POST "$JOBQ" --data-binary '{}'
	assert_code 503
}

# Exit 56 only: a plain close without an answer is exit 52, "empty reply",
# and must not pass for an RST.
@test "reset: the connection is reset without an answer" {
	fake_start
	fault 'mode=reset'
	run curl -sS -m 10 -o /dev/null "$RS_URL$INFO"
	assert_status 56
	assert_output_has 'reset by peer'
}

@test "hang: never answers, while other requests and the control endpoints are answered" {
	local bg

	fake_start
	fault "mode=hang&path=$INFO"
	run curl -sS -m 1 -o /dev/null "$RS_URL$INFO"
	assert_status 28
	req POST "$JOBQ"
	assert_code 200
	# One hanging in the background: the others go on, and its thread
	# notices when it goes.
	curl -sS -m 60 -o /dev/null "$RS_URL$INFO" </dev/null >/dev/null 2>&1 3>&- &
	bg=$!
	assert_stats '.open_connections == 1 and .requests == 3'
	req GET /twsd/api/v2/plan/current/job/0AAAAAAAAAAAAB5C.LOAD_LEDGER
	assert_code 200
	fault 'mode=none'
	kill "$bg"
	wait "$bg" || true
	assert_stats '.open_connections == 0'
}

@test "partial: the full Content-Length, half the body, then close" {
	local size got

	fake_start
	fault 'mode=partial'
	size=$(wc -c <"$INFO_FILE")
	run curl -sS -m 10 -o "$T/body" "$RS_URL$INFO"
	assert_status 18
	got=$(wc -c <"$T/body")
	if [ "$got" -ne $((size / 2)) ]; then
		echo "expected $((size / 2)) of the $size bytes, got $got" >&2
		return 1
	fi
}

@test "close: a whole answer with Connection: close, then a new connection" {
	fake_start
	fault 'mode=close'
	req GET "$INFO"
	assert_code 200
	assert_header Connection close
	assert_same_file "$T/resp.body" "$INFO_FILE"
	run -0 curl -sS -m 10 -o /dev/null -o /dev/null -w '%{num_connects} ' \
		"$RS_URL$INFO" "$RS_URL$INFO"
	[ "$output" = "1 1 " ] || { echo "expected connects \"1 1 \", got \"$output\"" >&2; return 1; }
}

@test "count=2 faults exactly the next two requests" {
	fake_start
	fault 'mode=status&status=500&count=2'
	run -0 curl -sS -m 10 -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} ' \
		"$RS_URL$INFO" "$RS_URL$INFO" "$RS_URL$INFO"
	[ "$output" = "500 500 200 " ] || { echo "expected \"500 500 200 \", got \"$output\"" >&2; return 1; }
	assert_stats '.faults_applied == 2 and .fault.mode == "none"'
}

@test "count=5 faults exactly five of 40 concurrent requests" {
	fake_start -q
	fault 'mode=status&status=503&count=5'
	run -0 curl -sS -m 30 --parallel --parallel-max 20 -o "$T/out/#1" --create-dirs \
		-w '%{http_code}\n' "$RS_URL$INFO?n=[1-40]"
	assert_count 5 503
	assert_count 35 200
	assert_stats '.requests == 40 and .faults_applied == 5'
}

@test "path= faults only the paths under the prefix" {
	fake_start
	fault 'mode=status&status=502&path=/twsd/api/v2/plan/'
	req POST "$JOBQ"
	assert_code 502
	req GET "$INFO"
	assert_code 200
	fault 'mode=status&status=502&path=%2Ftwsd%2Fapi%2Fv2%2Fengine'
	req GET "$INFO"
	assert_code 502
}

@test "the control endpoints are never faulted; /_fault takes POST too" {
	fake_start
	fault 'mode=reset'
	req GET /_stats
	assert_code 200
	req POST '/_fault?mode=status&status=504'
	assert_code 200
	req GET "$INFO"
	assert_code 504
	req POST /_reset
	assert_code 200
	req GET "$INFO"
	assert_code 200
}

@test "/_fault names the bad parameter with 400, and keeps the fault it had" {
	local q

	fake_start
	fault 'mode=status&status=503'
	for q in 'mode=bogus:mode' 'mode=latency&ms=abc:ms' 'mode=status&status=200:status' \
		'mode=status&status=600:status' 'mode=hang&count=-1:count' \
		'mode=hang&path=nope:path' 'mode=hang&cnt=2:cnt' 'mode=latency&ms=%zz:ms'; do
		req GET "/_fault?${q%:*}"
		assert_code 400
		assert_jq ".messages[0] | contains(\"'${q##*:}'\")"
	done
	req GET /_fault
	assert_code 400
	assert_jq '.messages[0] | startswith("missing parameter '\''mode'\''")'
	req GET "$INFO"
	assert_code 503
}

# ---- counters ------------------------------------------------------------------------

@test "/_stats counts requests, connections and paths, not the control endpoints" {
	fake_start
	assert_stats '.requests == 0 and .connections == 0 and .paths == {}'
	req GET "$INFO"
	req GET "$INFO"
	req POST "$JOBQ"
	req GET /nope
	fault 'mode=status&count=1'
	req GET /nope
	assert_stats ".requests == 5 and .connections == 5 and .open_connections == 0
		and .faults_applied == 1 and .other_paths == 0
		and .paths == {\"$INFO\": 2, \"$JOBQ\": 1, \"/nope\": 2}"
}

@test "/_stats keeps 256 paths and counts the rest as other_paths" {
	fake_start -q
	run -0 curl -sS -m 30 -o /dev/null "$RS_URL/p/[1-300]"
	assert_stats '.requests == 300 and .connections == 1 and (.paths | length) == 256
		and .other_paths == 44 and .paths["/p/256"] == 1 and .paths["/p/257"] == null'
}

@test "/_reset clears the counters and the fault" {
	fake_start
	req GET "$INFO"
	fault 'mode=status&path=/twsd'
	req GET "$INFO"
	req GET /_reset
	assert_code 200
	assert_jq '.ok == true'
	assert_stats '.requests == 0 and .connections == 0 and .faults_applied == 0
		and .paths == {} and .fault.mode == "none" and .fault.path == ""'
	req GET "$INFO"
	assert_code 200
}

@test "1000 connections at once are each served and held open" {
	local n=1000 hard fd i fds=()

	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt $((n + 100)) ]; then
		skip "the hard limit on open files ($hard) is too low for $n connections"
	fi
	ulimit -Sn "$hard"
	fake_start -q
	for ((i = 0; i < n; i++)); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' "$INFO" >&"$fd"
		fds+=("$fd")
	done
	assert_stats ".open_connections == $n and .requests == $n"
	req GET "$INFO"
	assert_code 200
	for fd in "${fds[@]}"; do exec {fd}<&-; done
	assert_stats '.open_connections == 0'
}

# ---- --record and --accept-any: a webhook receiver ------------------------------------

# rec_line N: $output is line N of $T/rec (which must have exactly $2 lines
# when given), for assert_jq.
rec_line() {
	local n

	n=$(wc -l <"$T/rec")
	if [ -n "${2:-}" ] && [ "$n" -ne "$2" ]; then
		printf 'expected %s lines in the record, got %s:\n%s\n' "$2" "$n" "$(cat "$T/rec")" >&2
		return 1
	fi
	output=$(sed -n "$1p" "$T/rec")
}

@test "--record: a JSON body is recorded parsed, with method, path, query, type, status" {
	local t0 t1

	echo '{"earlier":"line"}' >"$T/rec"
	fake_start --record "$T/rec" --accept-any
	t0=$(now_ms)
	req POST '/hook?token=a%20b' -H 'Content-Type: application/json' \
		--data-binary $'{ "incident": {"id": 7, "tags": ["x", "\u00e9"]},\n  "ok": true, "n": null }'
	t1=$(now_ms)
	assert_code 200
	rec_line 1 2
	assert_jq '. == {"earlier":"line"}'
	rec_line 2
	assert_jq ".time_ms >= $t0 and .time_ms <= $t1"
	assert_jq '.method == "POST" and .path == "/hook" and .query == "token=a%20b"
		and .content_type == "application/json" and .fault == null and .status == 200'
	assert_jq '.body == {"incident": {"id": 7, "tags": ["x", "é"]}, "ok": true, "n": null}'
}

@test "--record: a body that is not JSON is recorded as an escaped string" {
	# A quote, a backslash, a newline, a tab, a control byte, a byte that is
	# not UTF-8 (U+FFFD in the record), and a valid é.
	printf 'he said "hi" \\ back\nnext\tline\001 \377 \303\251' >"$T/body"
	fake_start --record "$T/rec" --accept-any
	req POST /hook -H 'Content-Type: text/plain' --data-binary @"$T/body"
	assert_code 200
	rec_line 1 1
	assert_output_has '"body":"he said \"hi\" \\ back\nnext\tline\u0001 '
	assert_jq '.content_type == "text/plain"'
	assert_jq '.body == "he said \"hi\" \\ back\nnext\tline\u0001 \ufffd é"'
	req GET /hook
	rec_line 2 2
	assert_jq '.method == "GET" and .body == "" and .content_type == null'
}

@test "--record: control endpoints are not recorded; faulted requests are, with the fault and the status sent" {
	fake_start --record "$T/rec"
	fault 'mode=status&status=502&count=1'
	req POST "$JOBQ" -H 'Content-Type: application/json' --data-binary '{"q":1}'
	assert_code 502
	req GET "$INFO"
	req GET /_stats
	req POST /_reset --data-binary '{"not":"recorded"}'
	fault 'mode=reset&count=1'
	run curl -sS -m 10 -o /dev/null "$RS_URL$INFO"
	assert_status 56
	fault 'mode=hang&count=1'
	run curl -sS -m 1 -o /dev/null -d 'h' "$RS_URL$JOBQ"
	assert_status 28
	req GET /nope
	assert_code 404
	rec_line 1 5
	assert_jq ".path == \"$JOBQ\" and .body == {\"q\":1} and .fault == \"status\" and .status == 502"
	rec_line 2
	assert_jq ".path == \"$INFO\" and .fault == null and .status == 200"
	rec_line 3
	assert_jq ".path == \"$INFO\" and .fault == \"reset\" and .status == null"
	rec_line 4
	assert_jq ".path == \"$JOBQ\" and .body == \"h\" and .fault == \"hang\" and .status == null"
	rec_line 5
	assert_jq '.path == "/nope" and .fault == null and .status == 404'
}

@test "--accept-any: a path without a fixture is 200 {}; fixtures and faults still apply" {
	fake_start
	req POST /anything --data-binary '{}'
	assert_code 404
	stop_pid "$FAKE_PID" TERM
	fake_start --accept-any
	req POST /anything/at/all -H 'Content-Type: application/json' --data-binary '{"a":1}'
	assert_code 200
	assert_header Content-Type application/json
	[ "$output" = '{}' ] || { echo "expected the body {}, got '$output'" >&2; return 1; }
	req GET /other
	assert_code 200
	req GET "$INFO"
	assert_same_file "$T/resp.body" "$INFO_FILE"
	fault 'mode=status&status=503&count=1'
	req POST /anything
	assert_code 503
}

# Bodies of 20 KB, so that lines written in pieces would interleave.
@test "--record: 50 concurrent POSTs give 50 whole lines" {
	local i pad pids=() line n=0

	fake_start -q --record "$T/rec" --accept-any
	printf -v pad '%*s' 20000 ''
	for ((i = 1; i <= 50; i++)); do
		printf '{"n":%d,"pad":"%s"}' "$i" "${pad// /x}" >"$T/body.$i"
		curl -sS -m 30 -o /dev/null -H 'Content-Type: application/json' \
			--data-binary @"$T/body.$i" "$RS_URL/hook/$i" </dev/null 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || { echo "a curl (pid $i) failed" >&2; return 1; }
	done
	while IFS= read -r line; do
		n=$((n + 1))
		jq -c . <<<"$line" >/dev/null ||
			{ printf 'line %d is not JSON: %.200s...\n' "$n" "$line" >&2; return 1; }
	done <"$T/rec"
	[ "$n" -eq 50 ] || { echo "expected 50 lines, got $n" >&2; return 1; }
	output=$(jq -sc '[.[] | select(.path == "/hook/\(.body.n)"
		and (.body.pad | length) == 20000) | .body.n] | sort' "$T/rec")
	[ "$output" = "[$(seq -s, 1 50)]" ] ||
		{ echo "expected the bodies 1 to 50, each once with its path, got $output" >&2; return 1; }
}

@test "--record: a file that cannot be opened is exit 1, naming it, before listening" {
	run --separate-stderr "$FAKEHWA" -d "$FIXTURES" --port-file "$T/port" \
		--record "$T/no/such/dir/rec"
	assert_status 1
	assert_stderr_has "fakehwa: cannot open the record file '$T/no/such/dir/rec': No such file or directory"
	[ ! -e "$T/port" ] || { echo "the port file was written" >&2; return 1; }
}

# ---- the command line and signals ------------------------------------------------------

@test "it says where it listens and logs one line per request; -q keeps quiet" {
	fake_start
	[[ $PORT =~ ^[0-9]+$ ]] || { echo "expected a port number in the port file, got '$PORT'" >&2; return 1; }
	[ ! -e "$T/port.tmp" ] || { echo "port.tmp was left behind" >&2; return 1; }
	fault 'mode=status&count=1'
	req GET "$INFO"
	req GET /nope
	output=$(<"$T/fakehwa.err")
	assert_output_has "fakehwa: listening on 127.0.0.1:$PORT"
	assert_output_matches "^fakehwa: GET $INFO 503 fault=status [0-9.]+ms\$"
	assert_output_matches '^fakehwa: GET /nope 404 [0-9.]+ms$'
	stop_pid "$FAKE_PID" TERM
	fake_start -q
	req GET "$INFO"
	output=$(<"$T/fakehwa.err")
	assert_output_has "fakehwa: listening on"
	assert_output_lacks "$INFO"
}

@test "-h prints the usage on stdout, exit 0; bad arguments print it on stderr, exit 2" {
	run --separate-stderr "$FAKEHWA" -h
	assert_status 0
	assert_output_has 'usage: fakehwa' '--port-file' '--record FILE' '--accept-any' \
		'1 when it cannot listen, write the'
	for args in '--bogus' '-l nonsense' '-l 127.0.0.1:99999' "-d $T/none" 'extra'; do
		# shellcheck disable=SC2086 # split on purpose
		run --separate-stderr "$FAKEHWA" $args
		assert_status 2
		assert_stderr_has 'usage: fakehwa'
	done
	assert_stderr_has 'unexpected argument'
}

@test "SIGTERM and SIGINT end it promptly with status 0, even with a request hanging" {
	local sig rc bg

	for sig in TERM INT; do
		fake_start
		fault 'mode=hang'
		curl -sS -m 60 -o /dev/null "$RS_URL$INFO" </dev/null >/dev/null 2>&1 3>&- &
		bg=$!
		assert_stats '.open_connections == 1'
		kill -"$sig" "$FAKE_PID"
		wait_for 5 not_alive "$FAKE_PID"
		rc=0
		wait "$FAKE_PID" || rc=$?
		FAKE_PID=
		kill "$bg" 2>/dev/null || true
		wait "$bg" || true
		[ "$rc" -eq 0 ] || { echo "expected exit 0 on SIG$sig, got $rc" >&2; return 1; }
	done
}
