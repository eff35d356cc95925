# Shared set-up for the resyncctl bats tests (bats-core >= 1.5).
#
# Every test runs in its own empty directory (BATS_TEST_TMPDIR) with no
# RESYNC_* variable inherited from the caller, so tests share no state and
# can run in parallel.  RESYNCCTL names the binary under test (make check
# sets it), RS_TOP_SRCDIR the source tree.

bats_require_minimum_version 1.5.0

: "${RS_TOP_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${RESYNCCTL:=$RS_TOP_SRCDIR/src/cli/resyncctl}"
FIXTURES="$RS_TOP_SRCDIR/tests/fixtures/config"

setup() {
	local v

	for v in $(compgen -e); do
		case "$v" in RESYNC_*) unset "$v" ;; esac
	done
	if [ ! -x "$RESYNCCTL" ]; then
		echo "RESYNCCTL='$RESYNCCTL' is not an executable; build src/cli/resyncctl first" >&2
		return 1
	fi
	cd "$BATS_TEST_TMPDIR" || return 1
}

# The binary under test.
rctl() {
	"$RESYNCCTL" "$@"
}

# conf FILE: write standard input to FILE (line numbers in assertions count
# from the first line of the here-document).
conf() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
}

# secret FILE CONTENT [MODE]: a secret file, mode 600 unless told.
secret() {
	mkdir -p "$(dirname "$1")"
	printf '%s\n' "$2" >"$1"
	chmod "${3:-600}" "$1"
}

# A configuration that draws no warning in development: the only rule a
# configuration of defaults breaks is the missing audit HMAC key.
clean_conf() {
	secret "$(dirname "$1")/audit.key" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	conf "$1" <<-'EOF'
	[audit]
	key_file = audit.key
	EOF
}

# ---- assertions: each says what it expected and what it got --------------

assert_status() {
	if [ "$status" -ne "$1" ]; then
		printf 'expected exit status %s, got %s; output:\n%s\n' \
			"$1" "$status" "$output" >&2
		return 1
	fi
}

# assert_output_has STRING...: each STRING occurs in $output, as is.
assert_output_has() {
	local s

	for s in "$@"; do
		if ! grep -qF -- "$s" <<<"$output"; then
			printf 'expected the output to contain:\n  %s\ngot:\n%s\n' \
				"$s" "$output" >&2
			return 1
		fi
	done
}

# assert_output_lacks STRING...: no STRING occurs in $output.
assert_output_lacks() {
	local s

	for s in "$@"; do
		if grep -qF -- "$s" <<<"$output"; then
			printf 'expected the output NOT to contain:\n  %s\ngot:\n%s\n' \
				"$s" "$output" >&2
			return 1
		fi
	done
}

# assert_output_matches ERE: some line of $output matches.
assert_output_matches() {
	if ! grep -qE -- "$1" <<<"$output"; then
		printf 'expected a line of the output to match:\n  %s\ngot:\n%s\n' \
			"$1" "$output" >&2
		return 1
	fi
}

# assert_stderr_has STRING: for `run --separate-stderr`.
assert_stderr_has() {
	if ! grep -qF -- "$1" <<<"$stderr"; then
		printf 'expected standard error to contain:\n  %s\ngot:\n%s\n' \
			"$1" "$stderr" >&2
		return 1
	fi
}

assert_empty() {
	if [ -n "$1" ]; then
		printf 'expected nothing, got:\n%s\n' "$1" >&2
		return 1
	fi
}

# assert_count N STRING: STRING occurs on exactly N lines of $output.
assert_count() {
	local n

	n=$(grep -cF -- "$2" <<<"$output" || true)
	if [ "$n" -ne "$1" ]; then
		printf 'expected %s line(s) containing:\n  %s\ngot %s in:\n%s\n' \
			"$1" "$2" "$n" "$output" >&2
		return 1
	fi
}

# assert_jq FILTER: jq -e FILTER holds for $output (a JSON document).
assert_jq() {
	if ! jq -e "$1" <<<"$output" >/dev/null; then
		printf 'expected the JSON output to satisfy:\n  %s\ngot:\n%s\n' \
			"$1" "$output" >&2
		return 1
	fi
}
