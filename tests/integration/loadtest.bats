#!/usr/bin/env bats
# resyncctl loadtest against a fakehwa (known delays, stalls, hangs) and
# against resync-fcgi behind nginx: both models, thresholds and exit
# codes, the reports, scenario errors, and that the percentiles are right.

load helpers

INFO=/twsd/api/v2/engine/info

lt() {
	"$RESYNCCTL" loadtest "$@"
}

# stall_for PORT SECONDS MS: after SECONDS, every request the fake gets
# for the next MS milliseconds waits MS; runs in the background.
stall_later() {
	(sleep "$2" && fault "$1" "mode=latency&ms=$3" && sleep "$(awk "BEGIN{print $3/1000}")" &&
		fault "$1" "mode=none") 3>&- &
}

@test "loadtest: the closed model against a fake with a fixed 100 ms delay reports it within 5%" {
	fake_start HWA
	fault "$HWA" "mode=latency&ms=100"
	run lt --url "http://127.0.0.1:$HWA$INFO" --users 8 -d 3s --json out.json
	assert_status 0
	jq -e '.total.requests >= 150 and .total.errors == 0' out.json
	# every request took 100 ms plus what the machine adds; the tail is
	# where a shared machine's hiccups land
	jq -e '.total.latency.p50_us >= 100000 and .total.latency.p50_us <= 105000' out.json
	jq -e '.total.latency.p90_us >= 100000 and .total.latency.p90_us <= 105000' out.json
	jq -e '.total.latency.p99_us >= 100000 and .total.latency.p99_us <= 120000' out.json
	# 8 users, 10 requests each per second
	jq -e '.total.rps >= 70 and .total.rps <= 81' out.json
}

@test "loadtest: the open model keeps its rate, and with --requests stops by itself" {
	fake_start HWA
	run lt --url "http://127.0.0.1:$HWA$INFO" --rate 200 -n 300 --json out.json
	assert_status 0
	jq -e '.total.requests == 300 and .total.errors == 0' out.json
	jq -e '.elapsed_s >= 1.4 and .elapsed_s <= 2.5' out.json
	jq -e '.open_model.late == 0 and .open_model.unsent == 0' out.json
}

@test "loadtest: a 1 s stall in an open-model run shows in p99; the closed model hides it" {
	fake_start HWA
	stall_later "$HWA" 1 1000
	run lt --url "http://127.0.0.1:$HWA$INFO" --rate 200 --connections 2 -d 4s --json open.json
	assert_status 0
	# corrected: the requests due during the stall waited for it
	jq -e '.total.latency.p99_us >= 500000' open.json
	# uncorrected: only the two in flight saw it
	jq -e '.open_model.uncorrected.p99_us < 500000' open.json
	sleep 1.2
	stall_later "$HWA" 1 1000
	run lt --url "http://127.0.0.1:$HWA$INFO" --users 2 -d 4s --json closed.json
	assert_status 0
	jq -e '.total.requests > 400 and .total.latency.p99_us < 500000 and .total.latency.max_us >= 900000' closed.json
}

@test "loadtest: thresholds pass with exit 0 and fail with exit 1, one line each" {
	fake_start HWA
	url=http://127.0.0.1:$HWA$INFO
	run lt --url "$url" --users 2 -n 200 --threshold 'p95<2s' --threshold 'error_rate<1%'
	assert_status 0
	assert_output_has "PASS p95<2s" "PASS error_rate<1%"
	run lt --url "$url" --users 2 -n 200 --threshold 'p95<1us' --threshold 'rps>100000000'
	assert_status 1
	assert_output_has "FAIL p95<1us" "FAIL rps>100000000"
	fault "$HWA" "mode=status&status=503"
	run lt --url "$url" --users 2 -n 50 --threshold 'error_rate<1%' -q
	assert_status 1
	assert_output_has "threshold failed: error_rate<1%"
	run lt --url "$url" --users 2 -n 10 --threshold 'p95 < fast'
	assert_status 2
	assert_output_has "invalid threshold"
}

@test "loadtest: a server that hangs gives timeouts, not a hung run; a closed port is exit 2" {
	fake_start HWA
	url=http://127.0.0.1:$HWA$INFO
	lt --url "$url" -n 1 >/dev/null
	fault "$HWA" "mode=hang"
	start=$(now_ms)
	run lt --url "$url" --users 4 -d 2s --timeout 500ms --json out.json
	assert_status 0
	[ $(($(now_ms) - start)) -lt 6000 ]
	jq -e '.errors.timeout >= 4 and .total.requests == .errors.timeout' out.json
	run lt --url "http://127.0.0.1:$(free_port)/" -n 1
	assert_status 2
	assert_output_has "cannot reach"
}

@test "loadtest: --json, --csv and --html are written and well formed" {
	fake_start HWA
	run lt --url "http://127.0.0.1:$HWA$INFO" --users 4 -d 2s --json r.json --csv r.csv --html r.html
	assert_status 0
	jq -e '.parameters and .total.requests > 0 and (.series | length) >= 1 and .passed == true' r.json
	head -1 r.csv | grep -q '^second,requests,errors,rps,p50_ms'
	[ "$(wc -l <r.csv)" -ge 2 ]
	grep -q '<svg' r.html
	! grep -q 'src="http\|href="http' r.html
	# a report on standard output keeps it to itself
	run lt --url "http://127.0.0.1:$HWA$INFO" --users 1 -n 5 --json -
	assert_status 0
	jq -e '.total.requests == 5' <<<"$output"
	# the global --json prints the same document instead of the summary
	run "$RESYNCCTL" --json loadtest --url "http://127.0.0.1:$HWA$INFO" --users 1 -n 5
	assert_status 0
	jq -e '.total.requests == 5' <<<"$output"
}

@test "loadtest: scenario files with weights, variables and expectations; errors name the line" {
	fake_start HWA
	cat >jobs.csv <<-'EOF'
	job
	0AAAAAAAAAAAAB5C.LOAD_LEDGER
	EOF
	cat >s.ini <<-EOF
	[scenario]
	base_url = http://127.0.0.1:$HWA
	users = 2
	requests = 300
	variables = jobs.csv
	threshold = info:p95<2s

	[request info]
	path = $INFO
	weight = 2
	expect_body = "engineVersion"

	[request job]
	path = /twsd/api/v2/plan/current/job/\${job}
	header = X-Test: \${job}
	expect_status = 200

	[request missing]
	path = /nothing/here
	weight = 1
	EOF
	run lt --json s.json s.ini
	assert_status 0
	jq -e '.total.requests == 300' s.json
	jq -e '(.requests | map({(.name): .}) | add) as $r
		| $r.info.errors == 0 and $r.job.errors == 0 and $r.missing.errors == $r.missing.requests
		and $r.info.requests > $r.job.requests' s.json
	jq -e '.errors.status == .requests[2].requests' s.json
	printf '[scenario]\nusers = 2\n[request a]\npath = /x\nweight = lots\n' >bad.ini
	run lt bad.ini
	assert_status 2
	assert_output_has "bad.ini:5:"
	printf '[request a]\npath = /x/${nope}\n' >vars.ini
	run lt --base-url "http://127.0.0.1:$HWA" -n 1 vars.ini
	assert_status 2
	assert_output_has "nope"
}

@test "loadtest: usage errors exit 2 naming the problem" {
	run lt --users 2 -d 1s
	assert_status 2
	assert_output_has "nothing to request"
	run lt --url http://127.0.0.1:1/ --users 2 --rate 5 -d 1s
	assert_status 2
	assert_output_has "cannot be used together"
	run lt --url http://127.0.0.1:1/ --users 2
	assert_status 2
	assert_output_has "needs a bound"
	run lt --url ftp://127.0.0.1/ -n 1
	assert_status 2
	run lt --url http://127.0.0.1:1/ --users 0 -n 1
	assert_status 2
}

@test "loadtest: the seed's scenario, shortened, against resync-fcgi behind nginx" {
	rs_start
	run lt --base-url "$RS_URL" -H "X-API-Key: $VIEWER_KEY" --users 20 --spawn-rate 40 -d 3s \
		--threads 2 --json seed.json "$RS_TOP_SRCDIR/etc/loadtest-seed.ini"
	assert_status 0
	jq -e '.total.requests > 100 and .total.errors == 0 and (.requests | length) == 3' seed.json
	jq -e '.thresholds | length == 2 and all(.pass)' seed.json
}

# tls_nginx PORT: an nginx on PORT with a self-signed certificate, HTTP/2
# offered by ALPN, answering /h with 200; teardown stops it.
tls_nginx() {
	local n=$T/h2
	mkdir -p "$n"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n/key.pem" -out "$n/cert.pem" \
		-subj /CN=localhost -days 1 2>/dev/null || return 1
	cat >"$n/nginx.conf" <<-CONF
	daemon off;
	worker_processes 1;
	pid $n/nginx.pid;
	error_log $n/error.log;
	$([ "$(id -u)" = 0 ] && echo "user root;")
	events { worker_connections 1024; }
	http {
		access_log off;
		server {
			listen 127.0.0.1:$1 ssl http2;
			ssl_certificate $n/cert.pem;
			ssl_certificate_key $n/key.pem;
			location = /h { return 200 'ok'; }
		}
	}
	CONF
	"$(nginx_bin)" -p "$n" -c "$n/nginx.conf" 3>&- &
	FAKE_PIDS+=($!)
	wait_for 5 tls_listening "$1"
}

tls_listening() {
	(exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

@test "loadtest: --http2 speaks HTTP/2 where TLS offers it; without it HTTP/1.1; an unverified certificate is exit 2" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	nginx_bin >/dev/null || skip "nginx is not installed"
	port=$(free_port)
	tls_nginx "$port"
	url=https://127.0.0.1:$port/h
	run lt --url "$url" --http2 -k --users 4 -n 100 --json h2.json
	assert_status 0
	jq -e '.total.requests == 100 and .total.errors == 0 and .total.http2_answers == 100' h2.json
	assert_output_has "HTTP/2: 100 of the answers"
	run lt --url "$url" -k --users 2 -n 20 --json h1.json
	assert_status 0
	jq -e '.total.errors == 0 and .total.http2_answers == 0' h1.json
	run lt --url "$url" --users 1 -n 1
	assert_status 2
	assert_output_has "cannot reach"
}

@test "loadtest: SIGINT stops a run early and it still reports; a terminal gets a progress line" {
	fake_start HWA
	url=http://127.0.0.1:$HWA$INFO
	"$RESYNCCTL" loadtest --url "$url" --users 2 -d 60s --json int.json >int.out 2>int.err &
	pid=$!
	sleep 1.5
	kill -INT "$pid"
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null || { kill -KILL "$pid"; echo "still running 5 s after SIGINT" >&2; false; }
	run wait "$pid"
	assert_status 0
	grep -q "interrupted" int.out
	jq -e '.interrupted == true and .total.requests > 0 and .elapsed_s < 10' int.json
	# no progress line when standard error is not a terminal
	[ ! -s int.err ]
	command -v script >/dev/null || skip "script (bsdutils) is not installed"
	script -qec "$RESYNCCTL loadtest --url $url --users 2 -d 2500ms" /dev/null >tty.out
	grep -q "req/s  p95" tty.out
}
