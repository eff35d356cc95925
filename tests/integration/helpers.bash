# Shared set-up for the resync-fcgi integration tests (bats-core >= 1.5).
#
# Each test gets its own directory (BATS_TEST_TMPDIR, "$T" below) holding
# its configuration, database, logs, FastCGI socket and web-server prefix,
# and its own free localhost ports, so tests share no state.  A test writes
# its configuration with rs_conf, then starts the responder behind a real
# web server:
#
#   rs_conf server.max_body=1KB       # section.key=value overrides
#   rs_start                          # web server + resync-fcgi, waits for /live
#   req GET /api/health/live          # sets $code, $headers, $output
#   assert_code 200
#
# The web server is $RS_WEB, named by the test file: http-apache.bats is
# behind Apache (mod_proxy_fcgi), http-lighttpd.bats behind lighttpd, any
# other file (http.bats, process.bats) behind nginx; the two extra files
# are symlinks to http.bats, so one suite runs behind all three.  In a file
# whose server is not installed every test skips (not for nginx, which the
# integration tests need).  A test may pick another server for itself with
# "local RS_WEB=apache" before rs_start (which then skips when Apache is not
# installed).  Every web server gets a copy of its etc/ snippet with the
# socket path replaced.  An nginx also serves tests/fixtures/hwa on
# $HWA_PORT, the configured [upstream hwa]: the front nginx itself, or an
# nginx of its own (rs_start_hwa) beside Apache or lighttpd.  teardown
# stops everything and, when the test failed, shows the logs.
#
# make check sets RS_TOP_SRCDIR, RS_TOP_BUILDDIR and RESYNCCTL.

bats_require_minimum_version 1.5.0

: "${RS_TOP_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${RS_TOP_BUILDDIR:=$RS_TOP_SRCDIR}"
: "${RESYNCCTL:=$RS_TOP_BUILDDIR/src/cli/resyncctl}"
: "${RS_FCGI:=$RS_TOP_BUILDDIR/src/fcgi/resync-fcgi}"

# The assertions (assert_status, assert_output_has, assert_jq, ...) are
# resyncctl's; setup and teardown below replace its setup.
source "$(dirname "${BASH_SOURCE[0]}")/../cli/helpers.bash"

# The web server in front of the responder, from the test file's name (not
# resolved: the symlinks are the point).
case ${BATS_TEST_FILENAME##*/} in
*-apache.bats) RS_WEB=apache ;;
*-lighttpd.bats) RS_WEB=lighttpd ;;
*) RS_WEB=nginx ;;
esac

# The keys are the same for every test of a file: making them costs
# process starts, and they hold no state.
setup_file() {
	ADMIN_KEY=$(rand_hex 32)
	VIEWER_KEY=$(rand_hex 32)
	ADMIN_HASH=$(sha256 "$ADMIN_KEY")
	VIEWER_HASH=$(sha256 "$VIEWER_KEY")
	AUDIT_KEY=$(rand_hex 32)
	export ADMIN_KEY VIEWER_KEY ADMIN_HASH VIEWER_HASH AUDIT_KEY
}

setup() {
	local v

	for v in $(compgen -e); do
		case "$v" in RESYNC_* | LISTEN_* | GATEWAY_INTERFACE | REQUEST_METHOD) unset "$v" ;; esac
	done
	for v in "$RS_FCGI" "$RESYNCCTL"; do
		if [ ! -x "$v" ]; then
			echo "'$v' is not an executable; build it first" >&2
			return 1
		fi
	done
	command -v curl >/dev/null || { echo "curl is not installed" >&2; return 1; }
	command -v jq >/dev/null || { echo "jq is not installed" >&2; return 1; }
	if [ "$RS_WEB" != nginx ]; then
		v=$(web_installed "$RS_WEB") ||
			skip "$v: ${BATS_TEST_FILENAME##*/} runs the tests behind $RS_WEB"
	fi
	T=$BATS_TEST_TMPDIR
	cd "$T" || return 1
	CONF=$T/resync.conf
	DB=$T/resync.db
	SOCK=$T/fcgi.sock
	HTTP_PORT=$(free_port)
	HWA_PORT=$(free_port)
	RS_URL=http://127.0.0.1:$HTTP_PORT
	FCGI_PID='' NGINX_PID='' APACHE_PID='' LIGHTTPD_PID='' LOCK_PID='' LOCK_FD=''
	FCGI_ADDR='' RS_CHUNKED='' NGINX_FRONT=''
	SOCK_DIR=''
	FAKE_PIDS=()
	RS_OVERRIDES=()
}

teardown() {
	local v

	db_unlock
	stop_pid "$NGINX_PID" TERM
	stop_pid "$APACHE_PID" TERM
	stop_pid "$LIGHTTPD_PID" TERM
	stop_pid "$FCGI_PID" TERM
	for v in "${FAKE_PIDS[@]}"; do stop_pid "$v" TERM; done
	[ -z "$SOCK_DIR" ] || rm -rf "$SOCK_DIR"
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		show_log "resync-fcgi stderr" "$T/fcgi.err"
		show_log "resync-fcgi stdout" "$T/fcgi.out"
		show_log "[log] output" "$T/resync.log"
		show_log "[log] access_log" "$T/access.log"
		show_log "nginx error log" "$T/nginx/error.log"
		show_log "apache error log" "$T/apache/error.log"
		show_log "lighttpd error log" "$T/lighttpd/error.log"
		show_log "resync.conf" "$CONF"
	fi
	return 0
}

show_log() {
	[ -s "$2" ] || return 0
	printf -- '--- %s (%s), last lines:\n' "$1" "$2" >&2
	tail -n 30 "$2" >&2
}

rand_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

sha256() {
	printf %s "$1" | sha256sum | cut -d' ' -f1
}

# free_port: a localhost TCP port nobody listens on, picked at random so
# that tests running in parallel rarely pick the same one.
free_port() {
	local p

	for _ in $(seq 1 100); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# alive PID: the process runs (a zombie does not count).
alive() {
	[ -n "$1" ] && [ -e "/proc/$1" ] &&
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_pid PID SIGNAL: signal PID and wait up to 5 s for it, then KILL.
stop_pid() {
	[ -n "$1" ] || return 0
	kill -"$2" "$1" 2>/dev/null || true
	for _ in $(seq 1 250); do
		alive "$1" || break
		sleep 0.02
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}

# wait_for SECONDS COMMAND...: retry COMMAND every 50 ms until it succeeds
# or SECONDS have passed (then fail, saying what was waited for).  A
# COMMAND exiting 99 means it never will: wait_for fails at once.
wait_for() {
	local now=${EPOCHREALTIME/[.,]/} s=$1 rc
	local deadline=$((now + $1 * 1000000))

	shift
	while :; do
		rc=0
		"$@" || rc=$?
		[ "$rc" -ne 0 ] || return 0
		[ "$rc" -ne 99 ] || return 1
		if [ "${EPOCHREALTIME/[.,]/}" -gt "$deadline" ]; then
			echo "gave up after ${s}s waiting for: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# now_ms: milliseconds since the epoch.
now_ms() {
	local us=${EPOCHREALTIME/[.,]/}

	echo $((us / 1000))
}

# ---- configuration ---------------------------------------------------------

# rs_conf [SECTION.KEY=VALUE ...]: write $CONF: environment test, the
# database, logs and audit key in $T, an admin and a viewer key, [upstream
# hwa] on the fixture server, rate limits off (tests send bursts; the
# security tests turn them on); each argument sets (or, with an empty value,
# removes) one key.  A SECTION with a space ("key admin") is quoted by the
# caller.  The overrides are kept, so rs_conf with no argument rewrites the
# same file and rs_conf A=B adds to them.
rs_conf() {
	local -A val=()
	local -a order=()
	local kv sk sec key sections s

	RS_OVERRIDES+=("$@")
	[ -f "$T/audit.key" ] || (umask 077 && printf '%s\n' "$AUDIT_KEY" >"$T/audit.key")
	for kv in server.environment=test server.threads=4 \
		persistence.db=resync.db log.output="$T/resync.log" log.level=info \
		log.access_log="$T/access.log" audit.key_file=audit.key \
		ratelimit.enabled=false \
		"key admin.hash=$ADMIN_HASH" "key admin.role=admin" \
		"key viewer.hash=$VIEWER_HASH" "key viewer.role=viewer" \
		"upstream hwa.url=http://127.0.0.1:$HWA_PORT" \
		"${RS_OVERRIDES[@]}"; do
		sk=${kv%%=*}
		[ -n "${val[$sk]+set}" ] || order+=("$sk")
		val[$sk]=${kv#*=}
	done
	sections=()
	for sk in "${order[@]}"; do
		# A section whose keys were all removed is left out.
		[ -n "${val[$sk]}" ] || continue
		sec=${sk%.*}
		for s in "${sections[@]}"; do [ "$s" = "$sec" ] && continue 2; done
		sections+=("$sec")
	done
	{
		for sec in "${sections[@]}"; do
			printf '[%s]\n' "$sec"
			for sk in "${order[@]}"; do
				[ "${sk%.*}" = "$sec" ] || continue
				key=${sk##*.}
				[ -n "${val[$sk]}" ] && printf '%s = %s\n' "$key" "${val[$sk]}"
			done
			echo
		done
	} >"$CONF.new"
	mv "$CONF.new" "$CONF"
}

# rctl ARGS...: resyncctl on the test's configuration.
rctl() {
	"$RESYNCCTL" -c "$CONF" "$@"
}

# ---- the fake HWA server (tests/fakehwa) -----------------------------------

# fake_start VAR [FIXTURES]: start a fakehwa on a free port serving
# tests/fixtures/FIXTURES (default hwa), its port in $VAR; teardown stops it.
fake_start() {
	local pf=$T/fake.$1.port

	"$RS_TOP_BUILDDIR/tests/fakehwa/fakehwa" -q -d "$RS_TOP_SRCDIR/tests/fixtures/${2:-hwa}" \
		--port-file "$pf" >"$T/fake.$1.log" 2>&1 3>&- &
	FAKE_PIDS+=($!)
	wait_for 5 test -s "$pf" || return 1
	printf -v "$1" '%s' "$(cat "$pf")"
}

# fault PORT QUERY: set the fake on PORT misbehaving ("mode=status&status=503").
fault() {
	curl -sf "http://127.0.0.1:$1/_fault?$2" >/dev/null
}

# fake_calls PORT PATH: how many requests for PATH the fake on PORT has seen.
fake_calls() {
	curl -sf "http://127.0.0.1:$1/_stats" | jq --arg p "$2" '.paths[$p] // 0'
}

# ---- the responder ---------------------------------------------------------

# rs_start_fcgi [ARGS...]: start resync-fcgi on $FCGI_ADDR (default
# unix:$SOCK; a test may set 127.0.0.1:PORT) in the background and wait
# for its socket.  Without a prior rs_conf, the default configuration.
rs_start_fcgi() {
	[ -f "$CONF" ] || rs_conf
	: "${FCGI_ADDR:=unix:$SOCK}"
	# The socket gets 0666 & ~umask: 0666 lets a web server running as
	# another user (Apache's www-data) connect.
	(umask 000 && exec "$RS_FCGI" --config "$CONF" --listen "$FCGI_ADDR" "$@") \
		>"$T/fcgi.out" 2>"$T/fcgi.err" 3>&- &
	FCGI_PID=$!
	if ! wait_for 10 fcgi_listening; then
		echo "resync-fcgi did not listen on $FCGI_ADDR" >&2
		return 1
	fi
}

# rs_start_cmd COMMAND...: as rs_start_fcgi, for a command that starts the
# responder another way (spawn-fcgi, systemd-socket-activate), whose pid
# becomes the responder's.
rs_start_cmd() {
	[ -f "$CONF" ] || rs_conf
	FCGI_ADDR=unix:$SOCK
	(umask 000 && exec "$@") >"$T/fcgi.out" 2>"$T/fcgi.err" 3>&- &
	FCGI_PID=$!
	wait_for 10 fcgi_listening
}

fcgi_listening() {
	if ! alive "$FCGI_PID"; then
		echo "resync-fcgi exited before listening" >&2
		return 99
	fi
	case $FCGI_ADDR in
	unix:*) [ -S "${FCGI_ADDR#unix:}" ] ;;
	*) (exec 9<>"/dev/tcp/${FCGI_ADDR%:*}/${FCGI_ADDR##*:}") 2>/dev/null ;;
	esac
}

# ---- the web servers -----------------------------------------------------------

nginx_bin() {
	command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }
}

apache_bin() {
	command -v apache2 || command -v httpd ||
		{ [ -x /usr/sbin/apache2 ] && echo /usr/sbin/apache2; }
}

# apache_modules: the directory of Apache's modules (Debian's, else Red
# Hat's).
apache_modules() {
	local d

	for d in /usr/lib/apache2/modules /usr/lib64/httpd/modules /usr/lib/httpd/modules; do
		[ -d "$d" ] && break
	done
	echo "$d"
}

lighttpd_bin() {
	command -v lighttpd || { [ -x /usr/sbin/lighttpd ] && echo /usr/sbin/lighttpd; }
}

# web_installed SERVER: SERVER (nginx, apache or lighttpd) can be started;
# else say why on standard output and fail.
web_installed() {
	case $1 in
	nginx) nginx_bin >/dev/null || { echo "nginx is not installed"; return 1; } ;;
	apache)
		apache_bin >/dev/null || { echo "apache2 is not installed"; return 1; }
		[ -f "$(apache_modules)/mod_proxy_fcgi.so" ] ||
			{ echo "mod_proxy_fcgi is not installed"; return 1; }
		;;
	lighttpd) lighttpd_bin >/dev/null || { echo "lighttpd is not installed"; return 1; } ;;
	*) echo "unknown web server '$1'"; return 1 ;;
	esac
}

# only_behind SERVER REASON: skip the test unless $RS_WEB is SERVER; for
# what only SERVER does (its own error pages, its limits).
only_behind() {
	[ "$RS_WEB" = "$1" ] || skip "behind $1 only: $2"
}

# rs_start [ARGS...]: $RS_WEB and the fixture server (rs_start_web), then
# resync-fcgi ARGS..., then wait until /api/health/live answers 200 through
# the web server.
rs_start() {
	rs_start_web || return 1
	rs_start_fcgi "$@" || return 1
	wait_for 10 answers_live
}

# rs_start_web: $RS_WEB on $HTTP_PORT with its etc/ snippet and the HWA
# fixtures on $HWA_PORT; the responder is not started.
rs_start_web() {
	case $RS_WEB in
	nginx) rs_start_nginx ;;
	apache) rs_start_hwa && apache_start ;;
	lighttpd) rs_start_hwa && lighttpd_start ;;
	*) echo "unknown web server '$RS_WEB'" >&2; return 1 ;;
	esac
}

answers_live() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$RS_URL/api/health/live")" = 200 ]
}

# ---- nginx -------------------------------------------------------------------

# rs_start_nginx: nginx on $HTTP_PORT with etc/nginx/resync-fcgi.conf
# (socket replaced by $SOCK) and the HWA fixtures on $HWA_PORT.
rs_start_nginx() {
	nginx_start front
}

# rs_start_hwa: an nginx with the HWA fixtures on $HWA_PORT only, for
# Apache and lighttpd.  Without nginx, nothing answers there: the
# responder's [upstream hwa] is down, which the tests behind those servers
# allow (the health tests take "degraded").
rs_start_hwa() {
	if ! nginx_bin >/dev/null; then
		echo "nginx is not installed: no HWA fixture server on $HWA_PORT" >&2
		return 0
	fi
	nginx_start
}

# nginx_start [front]: nginx with the HWA fixtures and, with "front",
# resync-fcgi.conf.
nginx_start() {
	local n=$T/nginx bin

	NGINX_FRONT=${1:-}
	bin=$(nginx_bin) || { echo "nginx is not installed" >&2; return 1; }
	mkdir -p "$n/tmp"
	sed "s|unix:/run/resync/resync-fcgi.sock|${FCGI_ADDR:-unix:$SOCK}|g" \
		"$RS_TOP_SRCDIR/etc/nginx/resync-fcgi.conf" >"$n/resync-fcgi.conf"
	# "include fastcgi_params" is relative to nginx.conf's directory.
	cp /etc/nginx/fastcgi_params "$n/fastcgi_params"
	for _ in 1 2 3; do
		nginx_conf >"$n/nginx.conf"
		"$bin" -p "$n" -c "$n/nginx.conf" -e "$n/error.log" \
			</dev/null >"$n/stdout" 2>&1 3>&- &
		NGINX_PID=$!
		if wait_for 5 nginx_listening; then
			return 0
		fi
		stop_pid "$NGINX_PID" TERM
		NGINX_PID=
		grep -q 'Address already in use' "$n/error.log" "$n/stdout" 2>/dev/null || break
		# Lost a race for a port: pick again.
		if [ -n "$NGINX_FRONT" ]; then
			HTTP_PORT=$(free_port)
			RS_URL=http://127.0.0.1:$HTTP_PORT
		fi
		if [ -f "$CONF" ]; then
			sed -i "s|127.0.0.1:$HWA_PORT/|127.0.0.1:PORT/|" "$CONF"
			HWA_PORT=$(free_port)
			sed -i "s|127.0.0.1:PORT/|127.0.0.1:$HWA_PORT/|" "$CONF"
		else
			HWA_PORT=$(free_port)
		fi
	done
	echo "nginx did not start; its output:" >&2
	cat "$n/stdout" "$n/error.log" >&2 2>/dev/null
	return 1
}

nginx_listening() {
	alive "$NGINX_PID" || return 99
	{ [ -z "$NGINX_FRONT" ] || (exec 9<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; } &&
		(exec 9<>"/dev/tcp/127.0.0.1/$HWA_PORT") 2>/dev/null
}

nginx_conf() {
	local n=$T/nginx

	# Run as root, nginx would switch its workers to nobody, who cannot
	# reach the socket under $T (mode 700).
	[ "$(id -u)" -ne 0 ] || echo "user root;"
	cat <<-EOF
	daemon off;
	worker_processes 1;
	pid $n/nginx.pid;
	error_log $n/error.log notice;
	events { worker_connections 256; }
	http {
	    default_type application/octet-stream;
	    access_log $n/access.log;
	    client_body_temp_path $n/tmp/body;
	    fastcgi_temp_path $n/tmp/fastcgi;
	    proxy_temp_path $n/tmp/proxy;
	    uwsgi_temp_path $n/tmp/uwsgi;
	    scgi_temp_path $n/tmp/scgi;
	EOF
	[ -z "$NGINX_FRONT" ] || cat <<-EOF
	    server {
	        listen 127.0.0.1:$HTTP_PORT;
	        server_name localhost;
	        include resync-fcgi.conf;
	    }
	EOF
	cat <<-EOF
	    # The demo HWA upstream: tests/fixtures/hwa/README.md.
	    server {
	        listen 127.0.0.1:$HWA_PORT;
	        server_name localhost;
	        root $RS_TOP_SRCDIR/tests/fixtures/hwa;
	        default_type application/json;
	        location / {
	            try_files \$uri \$uri.json =404;
	            error_page 405 =200 \$uri;
	        }
	    }
	}
	EOF
}

# ---- Apache and lighttpd -----------------------------------------------------

# apache_start: Apache (mod_proxy_fcgi, one process, -X) on $HTTP_PORT with
# etc/apache/resync-fcgi.conf; skips the test when Apache is not installed.
apache_start() {
	local a=$T/apache

	web_prepare apache || return 1
	RS_CHUNKED=1
	web_start apache2 "$a" APACHE_PID apache_write_conf "$WEB_BIN" -d "$a" -f "$a/httpd.conf" -X
}

# web_prepare NAME (apache or lighttpd): skips the test when NAME is not
# installed; else sets WEB_BIN and writes $T/NAME/resync-fcgi.conf, the
# shipped etc/NAME/resync-fcgi.conf with $SOCK for its socket.  Not in a
# subshell: skip must end the test.
web_prepare() {
	local name=$1 why snippet=$RS_TOP_SRCDIR/etc/$1/resync-fcgi.conf

	why=$(web_installed "$name") || skip "$why"
	WEB_BIN=$("${name}_bin")
	[ -f "$snippet" ] || { echo "etc/$name/resync-fcgi.conf is missing" >&2; return 1; }
	web_server_socket
	mkdir -p "$T/$name/htdocs"
	sed "s|/run/resync/resync-fcgi.sock|$SOCK|g" "$snippet" >"$T/$name/resync-fcgi.conf"
}

apache_write_conf() {
	apache_conf >"$T/apache/httpd.conf"
}

apache_conf() {
	local a=$T/apache mods m

	mods=$(apache_modules)
	echo "ServerRoot \"$a\""
	echo "DefaultRuntimeDir \"$a\""
	echo "PidFile \"$a/httpd.pid\""
	echo "ErrorLog \"$a/error.log\""
	echo "LogLevel warn proxy_fcgi:info"
	echo "Listen 127.0.0.1:$HTTP_PORT"
	echo "ServerName localhost"
	for m in mpm_event authz_core authz_host proxy proxy_fcgi headers \
		setenvif env rewrite; do
		[ -f "$mods/mod_$m.so" ] &&
			echo "LoadModule ${m}_module $mods/mod_$m.so"
	done
	if [ "$(id -u)" -eq 0 ]; then
		# Apache refuses to serve as root; www-data reaches the
		# socket in $SOCK_DIR (see web_server_socket).
		echo "User www-data"
		echo "Group www-data"
	fi
	echo "DocumentRoot \"$a/htdocs\""
	echo "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common"
	echo "CustomLog \"$a/access.log\" common"
	echo "Include \"$a/resync-fcgi.conf\""
}

# lighttpd_start: lighttpd -D on $HTTP_PORT with
# etc/lighttpd/resync-fcgi.conf; skips the test when lighttpd is not
# installed.
lighttpd_start() {
	local l=$T/lighttpd

	web_prepare lighttpd || return 1
	web_start lighttpd "$l" LIGHTTPD_PID lighttpd_write_conf "$WEB_BIN" -D -f "$l/lighttpd.conf"
}

lighttpd_write_conf() {
	local l=$T/lighttpd

	cat >"$l/lighttpd.conf" <<-EOF
	server.document-root = "$l/htdocs"
	server.bind = "127.0.0.1"
	server.port = $HTTP_PORT
	server.pid-file = "$l/lighttpd.pid"
	server.errorlog = "$l/error.log"
	include "$l/resync-fcgi.conf"
	EOF
}

# web_start NAME DIR PIDVAR WRITE_CONF CMD...: WRITE_CONF writes the
# server's configuration for $HTTP_PORT, CMD runs in the background with
# its pid in PIDVAR until it listens; when it lost its port to a race
# (web_port_taken picks another), again, three times at most.
web_start() {
	local name=$1 dir=$2 pidvar=$3 conf=$4 _

	shift 4
	for _ in 1 2 3; do
		"$conf"
		"$@" </dev/null >"$dir/stdout" 2>&1 3>&- &
		printf -v "$pidvar" %s "$!"
		wait_for 10 port_listening "${!pidvar}" && return 0
		stop_pid "${!pidvar}" TERM
		printf -v "$pidvar" %s ''
		web_port_taken "$dir/stdout" "$dir/error.log" || break
	done
	echo "$name did not start:" >&2
	cat "$dir/stdout" "$dir/error.log" >&2 2>/dev/null
	return 1
}

# web_port_taken LOG...: the server could not bind $HTTP_PORT, which
# free_port saw free (another test, or an outgoing connection's local
# port, took it since): pick another.
web_port_taken() {
	grep -q 'Address already in use' "$@" 2>/dev/null || return 1
	HTTP_PORT=$(free_port)
	RS_URL=http://127.0.0.1:$HTTP_PORT
}

port_listening() {
	alive "$1" || return 99
	(exec 9<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null
}

# web_server_socket: a web server that drops root (Apache's www-data)
# cannot enter $T (mode 700): the socket goes in a directory of its own
# that others may enter.  Removed by teardown.
web_server_socket() {
	[ "$(id -u)" -eq 0 ] || return 0
	SOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/resync-it.XXXXXX")
	chmod 755 "$SOCK_DIR"
	SOCK=$SOCK_DIR/fcgi.sock
}

# ---- HTTP --------------------------------------------------------------------
# Process starts are slow on the test machines (~10 ms each, ~50 ms for
# curl or jq): the helpers below parse in bash and spawn curl alone.

# req METHOD PATH [CURL-ARGS...]: one request to $RS_URL.  Sets $code (the
# HTTP status), $headers (the last header block, without CRs), HDR (its
# fields by lower-case name), $output (the body as text; the bytes are in
# $T/resp.body) and $body_bytes.  Fails only when curl gets no answer.
req() {
	local method=$1 path=$2 m w

	shift 2
	rm -f "$T/resp.body" "$T/resp.head"
	# curl --head writes the headers where the body would go.
	if [ "$method" = HEAD ]; then m=(--head -o /dev/null); else m=(-X "$method" -o "$T/resp.body"); fi
	w=$(curl -sS --max-time 20 -H 'Expect:' "${m[@]}" -D "$T/resp.head" \
		-w '%{http_code} %{size_download}' "$@" "$RS_URL$path") || {
		echo "curl $method $RS_URL$path: no answer (exit $?)" >&2
		return 1
	}
	code=${w%% *}
	body_bytes=${w#* }
	parse_headers "$T/resp.head"
	read_body "$T/resp.body"
}

# parse_headers FILE: $headers and HDR from the last header block of FILE.
parse_headers() {
	local line name value

	declare -gA HDR=()
	headers=
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		case $line in HTTP/*) HDR=() headers= ;; esac
		[ -n "$line" ] || continue
		headers+=$line$'\n'
		case $line in
		*:*)
			name=${line%%:*}
			value=${line#*:}
			value=${value#"${value%%[! $'\t']*}"}
			[ -n "${HDR[${name,,}]+set}" ] || HDR[${name,,}]=$value
			;;
		esac
	done <"$1"
}

# read_body FILE: $output from FILE (empty when there is none).
read_body() {
	output=
	[ -f "$1" ] || return 0
	IFS= read -r -d '' output <"$1" || true
}

# The request helpers for the roles.
req_admin() {
	local method=$1 path=$2

	shift 2
	req "$method" "$path" -H "X-API-Key: $ADMIN_KEY" "$@"
}

req_viewer() {
	local method=$1 path=$2

	shift 2
	req "$method" "$path" -H "X-API-Key: $VIEWER_KEY" "$@"
}

# purge JSON [CURL-ARGS...]: POST /api/cache/purge as admin.
purge() {
	local body=$1

	shift
	req_admin POST /api/cache/purge -H 'Content-Type: application/json' \
		--data-binary "$body" "$@"
}

# header NAME: the value of response header NAME (the first one), or nothing.
header() {
	printf '%s\n' "${HDR[${1,,}]-}"
}

show_response() {
	printf 'headers:\n%s\nbody:\n%s\n' "$headers" "$output" >&2
}

assert_code() {
	if [ "$code" != "$1" ]; then
		printf 'expected HTTP status %s, got %s\n' "$1" "$code" >&2
		show_response
		return 1
	fi
}

# assert_header NAME VALUE: the response has header NAME: VALUE exactly.
assert_header() {
	local got=${HDR[${1,,}]-}

	if [ -z "${HDR[${1,,}]+set}" ] || [ "$got" != "$2" ]; then
		printf 'expected header %s: %s\ngot: %s\n' "$1" "$2" "${got:-(none)}" >&2
		show_response
		return 1
	fi
}

# assert_header_matches NAME ERE
assert_header_matches() {
	local got=${HDR[${1,,}]-}

	if [ -z "${HDR[${1,,}]+set}" ] || ! [[ $got =~ $2 ]]; then
		printf 'expected header %s to match %s\ngot: %s\n' "$1" "$2" "${got:-(none)}" >&2
		show_response
		return 1
	fi
}

assert_no_header() {
	if [ -n "${HDR[${1,,}]+set}" ]; then
		printf 'expected no %s header\n' "$1" >&2
		show_response
		return 1
	fi
}

# assert_api_headers [CONTENT-TYPE]: what every answer of the API carries:
# content type (JSON unless told), a Content-Length equal to the body's,
# an X-Request-ID and the security headers.
assert_api_headers() {
	assert_header Content-Type "${1:-application/json; charset=utf-8}" || return 1
	assert_header_matches X-Request-ID '^[A-Za-z0-9._:-]{1,128}$' || return 1
	assert_header X-Content-Type-Options nosniff || return 1
	assert_header X-Frame-Options DENY || return 1
	assert_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" || return 1
	assert_header Referrer-Policy no-referrer || return 1
	# Apache's mod_proxy_fcgi drops the responder's Content-Length and
	# sends the body chunked.
	if [ "${body_bytes:-0}" -gt 0 ] &&
		! { [ -n "${RS_CHUNKED:-}" ] && [ "${HDR[transfer-encoding]-}" = chunked ]; }; then
		assert_header Content-Length "$body_bytes" || return 1
	fi
}

# assert_error STATUS CODE: an API error answer: HTTP STATUS, the error
# object with CODE, a message, and the request id of the X-Request-ID header.
assert_error() {
	assert_code "$1" || return 1
	assert_api_headers || return 1
	if ! jq -e --arg c "$2" --arg id "${HDR[x-request-id]-}" '
		.error.code == $c and (.error.message | type == "string" and length > 0)
		and .error.request_id == $id and (keys == ["error"])' \
		<<<"$output" >/dev/null 2>&1; then
		printf 'expected an error object with code %s and the X-Request-ID\n' "$2" >&2
		show_response
		return 1
	fi
}

# ---- the database lock ---------------------------------------------------------

# db_lock: hold SQLite's write lock on $DB from a sqlite3 process (BEGIN
# IMMEDIATE) until db_unlock, so that a write by the responder blocks.
db_lock() {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	mkfifo "$T/lock.fifo"
	sqlite3 "$DB" <"$T/lock.fifo" >"$T/lock.out" 2>&1 3>&- &
	LOCK_PID=$!
	exec {LOCK_FD}>"$T/lock.fifo"
	echo '.timeout 5000' >&"$LOCK_FD"
	echo 'BEGIN IMMEDIATE;' >&"$LOCK_FD"
	wait_for 5 db_locked
}

db_locked() {
	! sqlite3 "$DB" '.timeout 0' 'BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1
}

db_unlock() {
	[ -n "${LOCK_FD:-}" ] || return 0
	echo 'ROLLBACK;' >&"$LOCK_FD" 2>/dev/null || true
	exec {LOCK_FD}>&-
	LOCK_FD=
	stop_pid "$LOCK_PID" TERM
	LOCK_PID=
}
