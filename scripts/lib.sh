# Shared by the scripts in scripts/: dependency lists and helpers.
# shellcheck shell=bash

# Debian 12 packages to build Resync.
BUILD_DEPS=(build-essential autoconf automake libtool pkg-config
	libfcgi-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev
	libssl-dev zlib1g-dev)
# ... and to run its tests.
TEST_DEPS=(bats jq sqlite3 valgrind clang)
# ... and to run the demo (scripts/demo): resync-fcgi behind nginx.
DEMO_DEPS=(nginx-light curl jq)
# ... and for tests/integration: nginx, and Apache and lighttpd (their tests
# are skipped without them), spawn-fcgi for the fd 0 start.
INTEGRATION_DEPS=(nginx-light apache2 lighttpd curl spawn-fcgi jq sqlite3 openssl)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"; fi
}

# Install Debian packages that are missing; does nothing when all are there,
# so it is idempotent and works offline once installed.
install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
	say "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# Web servers start on port 80 when installed; the demo and tests run
	# their own on free ports, so keep the packages' services from starting
	# (a failed start would leave a package unconfigured).
	local policy=/usr/sbin/policy-rc.d made=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null &&
			as_root chmod 755 "$policy" && made=1
	fi
	local rc=0
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || rc=$?
	[ -z "$made" ] || as_root rm -f "$policy"
	return $rc
}

# promtool, which checks etc/prometheus/resync-alerts.yml, comes in
# Debian's prometheus package with the whole server, a web UI and a
# service; take the one binary out of the package instead (about 4 s).
# Not fatal: the rule tests skip without it.
install_promtool() {
	command -v promtool >/dev/null && return 0
	local d
	d=$(mktemp -d) || return 0
	say "installing promtool (from Debian's prometheus package)"
	if (cd "$d" && apt-get download -q prometheus >/dev/null 2>&1 &&
		dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool); then
		as_root install -m 755 "$d/usr/bin/promtool" /usr/local/bin/promtool
	else
		say "promtool could not be installed; the alert-rule tests will skip"
	fi
	rm -rf "$d"
}

# Configure (once) and build in the source tree.
build() {
	local top=$1
	cd "$top" || die "cannot cd to $top"
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf"
		autoreconf -fi >/dev/null
	fi
	if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
		say "configure"
		./configure -q ${RESYNC_CONFIGURE_FLAGS:-}
	fi
	say "make"
	make -j"$(nproc)" -s
}
