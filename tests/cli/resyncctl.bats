#!/usr/bin/env bats
# resyncctl itself: help, version, dispatch (prefixes, typos), global options
# and exit status, independent of what any one command does.

load helpers

# ---- help -----------------------------------------------------------------------

@test "resyncctl: --help lists the commands and the global options, exit 0" {
	run --separate-stderr rctl --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "usage: resyncctl [global options] <command> [<args>]" \
		"config-validate" "--config FILE" "--db FILE" "--json" "--quiet" \
		"--verbose" "--version"
}

@test "resyncctl: -h is the same as --help" {
	run rctl --help
	long=$output
	run rctl -h
	assert_status 0
	[ "$output" = "$long" ] || { echo "-h and --help differ: $output" >&2; false; }
}

@test "resyncctl: help alone prints the top-level help, exit 0" {
	run rctl help
	assert_status 0
	assert_output_has "usage: resyncctl [global options] <command> [<args>]"
}

@test "resyncctl: config-validate --help prints its usage and options, exit 0" {
	run --separate-stderr rctl config-validate --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has \
		"usage: resyncctl config-validate [--format FORMAT] [--strict] [--environment ENV] [--print] [FILE|-]..." \
		"--format FORMAT" "--strict" "--environment ENV" "--print"
}

@test "resyncctl: config-validate -h is the same as --help" {
	run rctl config-validate --help
	long=$output
	run rctl config-validate -h
	assert_status 0
	[ "$output" = "$long" ] || { echo "-h and --help differ: $output" >&2; false; }
}

@test "resyncctl: --help before the command describes the command" {
	run rctl --help config-validate
	assert_status 0
	assert_output_has "usage: resyncctl config-validate "
}

@test "resyncctl: help config-validate prints the command's help" {
	run rctl config-validate --help
	long=$output
	run rctl help config-validate
	assert_status 0
	[ "$output" = "$long" ] || { echo "help config-validate differs from --help: $output" >&2; false; }
}

@test "resyncctl: help of an unknown command exits 2" {
	run --separate-stderr rctl help frobnicate
	assert_status 2
	assert_stderr_has "resyncctl: unknown command 'frobnicate'"
}

# ---- version --------------------------------------------------------------------

@test "resyncctl: --version prints 'resyncctl (resync) X.Y.Z', exit 0" {
	run --separate-stderr rctl --version
	assert_status 0
	assert_empty "$stderr"
	[[ "$output" =~ ^resyncctl\ \(resync\)\ [0-9]+\.[0-9]+\.[0-9]+$ ]] ||
		{ echo "expected 'resyncctl (resync) X.Y.Z', got: $output" >&2; false; }
}

@test "resyncctl: -V prints the version of configure.ac" {
	version=$(sed -n 's/^AC_INIT(\[resync\], *\[\([^]]*\)\].*/\1/p' "$RS_TOP_SRCDIR/configure.ac")
	[ -n "$version" ] || skip "no AC_INIT version in configure.ac"
	run rctl -V
	assert_status 0
	[ "$output" = "resyncctl (resync) $version" ] ||
		{ echo "expected 'resyncctl (resync) $version', got: $output" >&2; false; }
}

# ---- dispatch ---------------------------------------------------------------------

@test "resyncctl: no command prints the usage on stderr and exits 2" {
	run --separate-stderr rctl
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "usage: resyncctl [global options] <command> [<args>]"
	run --separate-stderr rctl -q
	assert_status 2
	assert_stderr_has "usage: resyncctl"
}

@test "resyncctl: an unknown command gets a did-you-mean and exits 2" {
	run --separate-stderr rctl config-valdate
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: unknown command 'config-valdate'; did you mean: config-validate"
	assert_stderr_has "Try 'resyncctl --help'."
}

@test "resyncctl: an unknown command far from every command gets no hint" {
	run --separate-stderr rctl frobnicate
	assert_status 2
	assert_stderr_has "resyncctl: unknown command 'frobnicate'"
	if grep -qF "did you mean" <<<"$stderr"; then
		echo "expected no hint, got: $stderr" >&2
		false
	fi
}

@test "resyncctl: a unique prefix runs the command" {
	clean_conf c.conf
	run rctl config c.conf
	assert_status 0
	assert_output_has "c.conf: OK (environment development)"
	run rctl con --format json c.conf
	assert_status 0
	assert_jq '.valid == true'
}

# ---- options ------------------------------------------------------------------------

@test "resyncctl: an unknown global option exits 2" {
	run --separate-stderr rctl --frobnicate config-validate
	assert_status 2
	assert_stderr_has "resyncctl: unknown option '--frobnicate'"
	assert_stderr_has "Try 'resyncctl --help'."
	run --separate-stderr rctl -x config-validate
	assert_status 2
	assert_stderr_has "resyncctl: unknown option '-x'"
}

@test "resyncctl: a command's option before the command is refused" {
	run --separate-stderr rctl --format json config-validate
	assert_status 2
	assert_stderr_has "unknown option '--format'"
}

@test "resyncctl: global options are accepted after the command" {
	clean_conf c.conf
	run rctl config-validate --config c.conf -q
	assert_status 0
	assert_empty "$output"
	run rctl config-validate --json -c c.conf
	assert_status 0
	assert_jq '.files[0].file == "c.conf"'
}

@test "resyncctl: option arguments may be attached, flags bundled" {
	clean_conf c.conf
	run rctl --config=c.conf config-validate --format=json
	assert_status 0
	assert_jq '.files[0].file == "c.conf"'
	run rctl -cc.conf config-validate -fjson
	assert_status 0
	assert_jq '.valid == true'
	cp "$FIXTURES/good.conf" .
	run rctl config-validate -qs good.conf
	assert_status 1
	assert_output_has "good.conf: 0 errors, 1 warning"
}

@test "resyncctl: '--' ends the options" {
	clean_conf ./-c.conf
	run rctl config-validate -- -c.conf
	assert_status 0
	assert_output_has "-c.conf: OK"
}

# ---- documentation ---------------------------------------------------------------------

@test "resyncctl: every command has a man page whose SYNOPSIS is its usage" {
	run rctl --help
	commands=$(sed -n '/^commands:/,/^$/{s/^  \([a-z][a-z-]*\) .*/\1/p}' <<<"$output")
	[ -n "$commands" ] || { echo "no commands in: $output" >&2; false; }
	for cmd in $commands; do
		page="$RS_TOP_SRCDIR/man/resyncctl-$cmd.1"
		[ -f "$page" ] || { echo "missing man page $page" >&2; false; }
		usage=$(rctl "$cmd" --help | sed -n 's/^usage: //p')
		synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH /{/^\./d;p}' "$page" |
			sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g')
		# The command's own line; verbs add one each (test_cmd checks those).
		grep -qxF "$usage" <<<"$synopsis" ||
			{ printf 'SYNOPSIS of %s:\n%s\nhas no line:\n  %s\n' "$page" "$synopsis" "$usage" >&2; false; }
		sed 's/\\-/-/g' "$RS_TOP_SRCDIR/man/resyncctl.1" | grep -qF "resyncctl-$cmd" ||
			{ echo "resyncctl.1 does not refer to resyncctl-$cmd" >&2; false; }
	done
}
