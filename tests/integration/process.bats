#!/usr/bin/env bats
# resync-fcgi as a process: its command line, --check, the ways it gets its
# socket (--listen, spawn-fcgi's fd 0, systemd socket activation, plain
# CGI), its signals (SIGHUP reload, SIGUSR1 log reopening, SIGTERM drain),
# and its logs.  helpers.bash starts the servers.  The HTTP API behind
# Apache and lighttpd is http.bats again, as http-apache.bats and
# http-lighttpd.bats.

load helpers

VERSION=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$RS_TOP_SRCDIR/configure.ac")

# status_is FILTER: GET /api/status as admin satisfies jq FILTER.
status_is() {
	req_admin GET /api/status >/dev/null && jq -e "$1" <<<"$output" >/dev/null
}

# padded_purge N: a valid purge body of N bytes or more ({"key":"k"} and blanks).
padded_purge() {
	printf '{"key":"k"%*s}' "$1" ''
}

# cgi VAR=VALUE...: run resync-fcgi as a CGI program with only these
# variables (besides the CGI basics), standard input from $T/cgi.in when it
# exists.  Sets $status, $stderr, $headers (the CGI header lines), $output
# (the body; its bytes in $T/resp.body).
cgi() {
	local in=/dev/null n

	[ -f "$T/cgi.in" ] && in=$T/cgi.in
	[ -f "$CONF" ] || rs_conf
	status=0
	env -i PATH="$PATH" GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 \
		SERVER_SOFTWARE=bats SERVER_NAME=localhost SERVER_PORT=80 \
		REMOTE_ADDR=127.0.0.1 REMOTE_PORT=40000 "$@" \
		"$RS_FCGI" --config "$CONF" <"$in" >"$T/cgi.out" 2>"$T/cgi.err" || status=$?
	stderr=$(cat "$T/cgi.err")
	# Bytes up to and including the blank line that ends the headers.
	n=$(LC_ALL=C awk '{ n += length($0) + 1 } /^\r?$/ { print n; f = 1; exit }
		END { if (!f) print -1 }' "$T/cgi.out")
	if [ "$n" -lt 0 ]; then
		printf 'no blank line after the CGI headers; standard output:\n%s\nstandard error:\n%s\n' \
			"$(cat "$T/cgi.out")" "$stderr" >&2
		return 1
	fi
	head -c "$n" "$T/cgi.out" >"$T/resp.head"
	tail -c +"$((n + 1))" "$T/cgi.out" >"$T/resp.body"
	parse_headers "$T/resp.head"
	read_body "$T/resp.body"
	body_bytes=$(wc -c <"$T/resp.body")
}

# assert_cgi_status "200 OK": the first CGI header line is Status: ...
assert_cgi_status() {
	local first

	first=${headers%%$'\n'*}
	if [ "$first" != "Status: $1" ]; then
		printf 'expected the first line "Status: %s", got "%s"\n' "$1" "$first" >&2
		show_response
		printf 'standard error:\n%s\n' "$stderr" >&2
		return 1
	fi
	code=${1%% *}
}

# ---- command line ----------------------------------------------------------------

@test "--help prints the usage on stdout, exit 0" {
	run --separate-stderr "$RS_FCGI" --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "resync-fcgi" "--config" "--listen" "--threads" "--check" "--version"
	run -0 "$RS_FCGI" -h
}

@test "--version prints the name and version, exit 0" {
	run --separate-stderr "$RS_FCGI" --version
	assert_status 0
	assert_output_has "resync-fcgi" "$VERSION"
	run -0 "$RS_FCGI" -V
	assert_output_has "$VERSION"
}

@test "an unknown option or a bad --threads is a usage error, exit 2" {
	run --separate-stderr "$RS_FCGI" --frobnicate
	assert_status 2
	assert_stderr_has "frobnicate"
	rs_conf
	for n in 0 1025 lots; do
		run --separate-stderr "$RS_FCGI" --config "$CONF" --threads "$n" --listen "unix:$SOCK"
		assert_status 2
		[ ! -e "$SOCK" ] || { echo "--threads $n created the socket" >&2; false; }
	done
}

@test "--check: a valid configuration exits 0" {
	rs_conf
	run "$RS_FCGI" --check --config "$CONF"
	assert_status 0
	assert_output_has "OK (environment test)"
	assert_output_lacks "error"
}

@test "--check: an invalid configuration exits 1 with config-validate's diagnostics" {
	rs_conf server.threads=lots
	run --separate-stderr "$RS_FCGI" --check --config "$CONF"
	assert_status 1
	assert_stderr_has "$CONF:$(grep -n '^threads' "$CONF" | cut -d: -f1): error: [server] threads: invalid integer 'lots'"
	want=$("$RESYNCCTL" config-validate "$CONF" 2>&1 | grep ': error: ')
	assert_stderr_has "$want"
	RESYNC_CONFIG=$CONF run --separate-stderr "$RS_FCGI" --check
	assert_status 1
}

@test "--check: a configuration that cannot be read exits 2" {
	run --separate-stderr "$RS_FCGI" --check --config "$T/nope.conf"
	assert_status 2
	assert_stderr_has "nope.conf"
}

@test "an invalid configuration: refuses to start, exit 1, no socket" {
	rs_conf "key viewer.role=superuser"
	run --separate-stderr "$RS_FCGI" --config "$CONF" --listen "unix:$SOCK"
	assert_status 1
	assert_stderr_has "$CONF:"
	assert_stderr_has "error: [key viewer] role"
	[ ! -e "$SOCK" ] || { echo "the socket was created" >&2; false; }
}

@test "no socket and no CGI environment: exit 2 naming --listen" {
	rs_conf
	run --separate-stderr "$RS_FCGI" --config "$CONF" </dev/null
	assert_status 2
	assert_stderr_has "--listen"
}

@test "a database that cannot be opened: exit 2" {
	rs_conf persistence.db=/nonexistent/dir/resync.db
	run --separate-stderr "$RS_FCGI" --config "$CONF" --listen "unix:$SOCK"
	assert_status 2
	[ ! -e "$SOCK" ] || { echo "the socket was left behind" >&2; false; }
}

@test "--threads sets the worker threads" {
	rs_start --threads 3
	req_admin GET /api/status
	assert_code 200
	assert_jq '.threads.total == 3'
}

@test "--listen HOST:PORT serves FastCGI over TCP" {
	FCGI_ADDR=127.0.0.1:$(free_port)
	rs_start
	req GET /api/health/live
	assert_code 200
	assert_jq '. == {"status": "alive"}'
}

@test "a stale socket file left by a killed responder is replaced" {
	rs_start
	kill -KILL "$FCGI_PID"
	wait "$FCGI_PID" || true
	[ -S "$SOCK" ] || { echo "kill -9 removed the socket?" >&2; false; }
	rs_start_fcgi
	wait_for 5 answers_live
	req GET /api/health/live
	assert_code 200
}

@test "fd 0: started by spawn-fcgi on its socket, serves behind nginx" {
	command -v spawn-fcgi >/dev/null || skip "spawn-fcgi is not installed"
	rs_conf
	rs_start_nginx
	rs_start_cmd spawn-fcgi -n -s "$SOCK" -M 0666 -- "$RS_FCGI" --config "$CONF"
	wait_for 10 answers_live
	req GET /api/health/live
	assert_code 200
	assert_api_headers
}

@test "systemd socket activation: LISTEN_FDS=1 and LISTEN_PID on fd 3" {
	command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
	rs_conf
	rs_start_nginx
	rs_start_cmd systemd-socket-activate -l "$SOCK" -- "$RS_FCGI" --config "$CONF"
	wait_for 10 answers_live
	req GET /api/health/live
	assert_code 200
	req_admin GET /api/status
	assert_jq ".pid == $FCGI_PID"
}

# ---- SIGHUP ----------------------------------------------------------------------

@test "SIGHUP with a valid configuration: a new max_body applies to the next request" {
	rs_conf server.max_body=1KB
	rs_start
	body=$(padded_purge 2000)
	purge "$body"
	assert_error 413 payload_too_large
	rs_conf server.max_body=4KB
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reloads == 1'
	status_is '.limits.max_body == 4096 and .config.reload_failures == 0'
	purge "$body"
	assert_code 200
	assert_jq '.purged == 0'
	alive "$FCGI_PID"
}

@test "SIGHUP with an invalid configuration: logged as an error, the old one kept" {
	rs_conf server.max_body=1KB
	rs_start
	rs_conf server.max_body=banana
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reload_failures == 1'
	status_is '.config.reloads == 0 and .limits.max_body == 1024'
	wait_for 2 grep -qi 'error' "$T/resync.log"
	grep -i 'error' "$T/resync.log" | grep -q 'max_body' ||
		{ echo "expected the error logged to name max_body" >&2; cat "$T/resync.log" >&2; false; }
	req GET /api/health/live
	assert_code 200
	purge "$(padded_purge 2000)"
	assert_error 413 payload_too_large
	# Fixed: the next SIGHUP loads it.
	rs_conf server.max_body=4KB
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reloads == 1 and .limits.max_body == 4096'
}

@test "SIGHUP: keys added or removed take effect without a restart" {
	rs_start
	new=$(rand_hex 32)
	req GET /api/status -H "X-API-Key: $new"
	assert_error 401 unauthorized
	req_viewer GET /api/cache/stats
	assert_code 200
	rs_conf "key ops.hash=$(sha256 "$new")" "key ops.role=admin" "key viewer.hash=" "key viewer.role="
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reloads == 1'
	req GET /api/status -H "X-API-Key: $new"
	assert_code 200
	req_viewer GET /api/cache/stats
	assert_error 401 unauthorized
}

@test "SIGHUP: a setting that needs a restart keeps its value and the log says so" {
	rs_start
	rs_conf server.threads=2
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reloads == 1'
	status_is '.threads.total == 4'
	wait_for 2 grep -q 'needs a restart' "$T/resync.log"
	grep 'needs a restart' "$T/resync.log" | grep -q threads ||
		{ echo "expected the log to name threads" >&2; cat "$T/resync.log" >&2; false; }
}

# ---- logs ------------------------------------------------------------------------

@test "access log: one JSON line per request with its fields" {
	rs_start
	req_admin GET /api/status -H 'X-Request-ID: access-1'
	assert_code 200
	req GET /api/nope -H 'X-Request-ID: access-2'
	wait_for 2 grep -q '"access-2"' "$T/access.log"
	line=$(grep '"access-1"' "$T/access.log")
	[ "$(wc -l <<<"$line")" -eq 1 ] || { echo "expected one line for access-1: $line" >&2; false; }
	output=$line
	assert_jq '.request_id == "access-1" and .method == "GET" and .path == "/api/status"
		and .status == 200 and .bytes > 0 and (.duration_ms | type == "number")
		and .key == "admin" and (.time | type == "string") and has("cache")'
	output=$(grep '"access-2"' "$T/access.log")
	assert_jq '.status == 404 and .path == "/api/nope" and (.key == null or .key == "" or .key == "-")'
}

@test "SIGUSR1 reopens the log and the access log after they were moved" {
	rs_start
	req GET /api/health/live -H 'X-Request-ID: before-rotate'
	wait_for 2 grep -q before-rotate "$T/access.log"
	mv "$T/access.log" "$T/access.log.1"
	mv "$T/resync.log" "$T/resync.log.1"
	kill -USR1 "$FCGI_PID"
	sleep 0.2
	req GET /api/health/live -H 'X-Request-ID: after-rotate'
	assert_code 200
	wait_for 3 grep -q after-rotate "$T/access.log"
	! grep -q after-rotate "$T/access.log.1" ||
		{ echo "the moved access log got the new line" >&2; false; }
	# Something for the main log: a reload.
	kill -HUP "$FCGI_PID"
	wait_for 3 status_is '.config.reloads == 1'
	wait_for 3 test -s "$T/resync.log"
}

@test "a slow request is logged as a warning with its request id" {
	rs_conf server.slow_request_threshold=200ms server.request_timeout=30s persistence.sync=always
	rctl cache set jobs:a v
	rs_start
	db_lock
	(curl -sS --max-time 20 -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		-H 'X-Request-ID: slow-1' --data-binary '{"key":"jobs:a"}' \
		-o "$T/slow.body" -w '%{http_code}' "$RS_URL/api/cache/purge" >"$T/slow.code") 3>&- &
	cpid=$!
	sleep 0.6
	db_unlock
	wait "$cpid"
	[ "$(cat "$T/slow.code")" = 200 ] || { echo "slow request: $(cat "$T/slow.code") $(cat "$T/slow.body")" >&2; false; }
	wait_for 2 grep -q slow-1 "$T/resync.log"
	grep slow-1 "$T/resync.log" | grep -qi 'warn' ||
		{ echo "expected a warning line naming slow-1:" >&2; cat "$T/resync.log" >&2; false; }
	status_is '.requests.slow >= 1'
}

# ---- SIGTERM and SIGINT ----------------------------------------------------------

@test "SIGTERM on an idle responder: exit 0 at once, socket removed" {
	rs_start
	start=$(now_ms)
	kill -TERM "$FCGI_PID"
	wait_for 3 eval '! alive "$FCGI_PID"'
	rc=0
	wait "$FCGI_PID" || rc=$?
	took=$(($(now_ms) - start))
	FCGI_PID=
	[ "$rc" -eq 0 ] || { echo "exit status $rc" >&2; false; }
	[ "$took" -le 2000 ] || { echo "exit took ${took} ms" >&2; false; }
	[ ! -e "$SOCK" ] || { echo "the socket file is still there" >&2; false; }
}

@test "SIGINT: exit 0, socket removed" {
	rs_start
	kill -INT "$FCGI_PID"
	wait_for 3 eval '! alive "$FCGI_PID"'
	rc=0
	wait "$FCGI_PID" || rc=$?
	FCGI_PID=
	[ "$rc" -eq 0 ] || { echo "exit status $rc" >&2; false; }
	[ ! -e "$SOCK" ] || { echo "the socket file is still there" >&2; false; }
}

@test "SIGTERM drains: the request in flight completes, then exit 0 and the socket is removed" {
	rs_conf server.request_timeout=30s persistence.sync=always
	rctl cache set jobs:a v
	rs_start
	db_lock
	(curl -sS --max-time 20 -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		--data-binary '{"key":"jobs:a"}' -o "$T/slow.body" -w '%{http_code}' \
		"$RS_URL/api/cache/purge" >"$T/slow.code") 3>&- &
	cpid=$!
	# In flight: this status request and the purge.
	wait_for 3 status_is '.requests.active >= 2'
	kill -TERM "$FCGI_PID"
	sleep 0.5
	alive "$FCGI_PID" || { echo "resync-fcgi exited with a request in flight" >&2; false; }
	db_unlock
	wait "$cpid" || true
	[ "$(cat "$T/slow.code")" = 200 ] ||
		{ echo "the request in flight got: $(cat "$T/slow.code") $(cat "$T/slow.body")" >&2; false; }
	jq -e '.purged == 1' "$T/slow.body" >/dev/null
	wait_for 5 eval '! alive "$FCGI_PID"'
	rc=0
	wait "$FCGI_PID" || rc=$?
	FCGI_PID=
	[ "$rc" -eq 0 ] || { echo "exit status $rc" >&2; false; }
	[ ! -e "$SOCK" ] || { echo "the socket file is still there" >&2; false; }
	run rctl -q cache get jobs:a
	assert_status 1
}

@test "SIGTERM: a request that outlives shutdown_timeout does not hold the exit" {
	rs_conf server.request_timeout=30s server.shutdown_timeout=1s persistence.sync=always
	rctl cache set jobs:a v
	rs_start
	db_lock
	(curl -sS --max-time 20 -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		--data-binary '{"key":"jobs:a"}' -o /dev/null "$RS_URL/api/cache/purge" || true) 3>&- &
	wait_for 3 status_is '.requests.active >= 2'
	start=$(now_ms)
	kill -TERM "$FCGI_PID"
	wait_for 4 eval '! alive "$FCGI_PID"'
	took=$(($(now_ms) - start))
	[ "$took" -ge 800 ] && [ "$took" -le 3000 ] ||
		{ echo "exit took ${took} ms; expected about shutdown_timeout (1 s)" >&2; false; }
	[ ! -e "$SOCK" ] || { echo "the socket file is still there" >&2; false; }
}

# ---- CGI -------------------------------------------------------------------------

@test "CGI: a GET is answered on stdout: Status, the API headers, a blank line, JSON; exit 0" {
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/health/live
	assert_status 0
	assert_cgi_status "200 OK"
	assert_api_headers
	assert_no_header Strict-Transport-Security
	assert_jq '. == {"status": "alive"}'
}

@test "CGI: HEAD gets the headers of GET and no body" {
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/health/live
	len=$(header Content-Length)
	cgi REQUEST_METHOD=HEAD REQUEST_URI=/api/health/live
	assert_status 0
	assert_cgi_status "200 OK"
	assert_header Content-Type "application/json; charset=utf-8"
	assert_header Content-Length "$len"
	[ "$body_bytes" -eq 0 ] || { echo "HEAD got a body: $output" >&2; false; }
}

@test "CGI: HTTPS=on adds Strict-Transport-Security" {
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/health/live HTTPS=on
	assert_status 0
	assert_cgi_status "200 OK"
	assert_header Strict-Transport-Security "max-age=31536000; includeSubDomains"
}

@test "CGI: errors: 404 JSON, 401 with WWW-Authenticate, the inbound request id kept" {
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/nope HTTP_X_REQUEST_ID=cgi-404
	assert_status 0
	assert_cgi_status "404 Not Found"
	assert_error 404 not_found
	assert_header X-Request-ID cgi-404
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/status
	assert_cgi_status "401 Unauthorized"
	assert_error 401 unauthorized
	assert_header_matches WWW-Authenticate '^Bearer'
}

@test "CGI: the admin key from HTTP_X_API_KEY or HTTP_AUTHORIZATION" {
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/status HTTP_X_API_KEY="$ADMIN_KEY"
	assert_cgi_status "200 OK"
	assert_header Cache-Control no-store
	assert_jq '.config.environment == "test"'
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/status HTTP_AUTHORIZATION="Bearer $ADMIN_KEY"
	assert_cgi_status "200 OK"
}

@test "CGI: a POST purge reads CONTENT_LENGTH bytes of stdin and is in the database at exit" {
	rs_conf
	rctl cache set jobs:a v
	rctl cache set jobs:b v
	body='{"key":"jobs:a"}'
	# Anything past CONTENT_LENGTH is not part of the body.
	printf '%sTRAILING GARBAGE' "$body" >"$T/cgi.in"
	cgi REQUEST_METHOD=POST REQUEST_URI=/api/cache/purge CONTENT_TYPE=application/json \
		CONTENT_LENGTH="${#body}" HTTP_X_API_KEY="$ADMIN_KEY"
	assert_status 0
	assert_cgi_status "200 OK"
	assert_api_headers
	assert_jq '.purged == 1 and .key == "jobs:a"'
	run rctl -q cache get jobs:a
	assert_status 1
	run rctl cache get jobs:b
	assert_status 0
	# The cache a CGI run sees is the stored one.
	cgi REQUEST_METHOD=GET REQUEST_URI=/api/cache/stats HTTP_X_API_KEY="$VIEWER_KEY"
	assert_cgi_status "200 OK"
	assert_jq '.entries == 1'
}

@test "CGI: a POST body over max_body is 413, a non-JSON one 415" {
	rs_conf server.max_body=1KB
	head -c 2000 /dev/zero | tr '\0' ' ' >"$T/cgi.in"
	cgi REQUEST_METHOD=POST REQUEST_URI=/api/cache/purge CONTENT_TYPE=application/json \
		CONTENT_LENGTH=2000 HTTP_X_API_KEY="$ADMIN_KEY"
	assert_status 0
	assert_cgi_status "413 Payload Too Large"
	assert_error 413 payload_too_large
	printf 'key=a' >"$T/cgi.in"
	cgi REQUEST_METHOD=POST REQUEST_URI=/api/cache/purge CONTENT_TYPE=text/plain \
		CONTENT_LENGTH=5 HTTP_X_API_KEY="$ADMIN_KEY"
	assert_cgi_status "415 Unsupported Media Type"
	assert_error 415 unsupported_media_type
}
