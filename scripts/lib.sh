# Shared by the scripts in scripts/: dependency lists and helpers.
# shellcheck shell=bash

# Debian 12 packages to build Resync.
BUILD_DEPS=(build-essential autoconf automake libtool pkg-config
	libfcgi-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev
	libssl-dev zlib1g-dev)
# ... and to run its tests.
TEST_DEPS=(bats jq sqlite3 valgrind clang)

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
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
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
