#!/usr/bin/env bats
# resyncctl breaker, as an operator runs it: every verb's output (text and
# --json) and exit status, the breakers the configuration defines (named
# and implicit) next to those the database holds, state kept from one call
# to the next, and the history.  Each test works on its own r.conf and
# t.db in $BATS_TEST_TMPDIR; rows a responder would save are written with
# the sqlite3 CLI.

load helpers
# helpers.bash's setup, kept to be called from this file's own.
eval "helpers_$(declare -f setup)"

# Three upstreams: hwa has only a routes breaker, so it keeps its implicit
# one; pay is covered by pay-main (no routes), so it has none of its own.
config() {
	conf r.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	[upstream billing]
	url = https://billing.example.com
	[upstream pay]
	url = https://pay.example.com
	[breaker pay-main]
	upstream = pay
	[breaker hwa-jobs]
	upstream = hwa
	routes = jobs_status
	[persistence]
	db = t.db
	EOF
}

# brk ARGS...: resyncctl -c r.conf breaker ARGS...
brk() {
	rctl -c r.conf breaker "$@"
}

# A database with the breaker tables and no rows.
new_db() {
	brk open hwa >/dev/null
	sql "DELETE FROM breaker; DELETE FROM breaker_event;"
}

sql() {
	sqlite3 "$BATS_TEST_TMPDIR/t.db" "$@"
}

# saved NAME STATE: the row a responder would write, with counters.
saved() {
	sql "INSERT INTO breaker (name, state, since_ms, updated_ms, origin, info, generation)
	     VALUES ('$1', '$2', 1795450000000, $(($(date +%s) * 1000)), 'resync-fcgi/812@web1',
	     '{\"retry_after_ms\":42000,\"calls\":1200,\"successes\":1100,\"failures\":90,\"ignored\":10,\"slow\":3,\"rejected\":17,\"window_calls\":20,\"window_failures\":12,\"opened\":2,\"half_opened\":1,\"closed\":1}',
	     0)"
}

same() {
	if [ "$2" != "$3" ]; then
		printf '%s: expected:\n%s\ngot:\n%s\n' "$1" "$2" "$3" >&2
		return 1
	fi
}

setup() {
	helpers_setup || return 1
	config
	new_db
}

# ---- the command itself ------------------------------------------------------

@test "breaker: --help lists every verb, exit 0" {
	run --separate-stderr rctl breaker --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "usage: resyncctl breaker <command> [options]"
	for verb in list show open close disable reset history; do
		assert_output_matches "^  $verb +[a-z]"
	done
}

@test "breaker: no verb is a usage error" {
	run --separate-stderr brk
	assert_status 2
	assert_stderr_has "resyncctl: breaker: missing command"
}

@test "breaker: an unknown verb gets the near candidates" {
	run --separate-stderr brk lsit
	assert_status 2
	assert_stderr_has "resyncctl: breaker: unknown command 'lsit'; did you mean: list"
}

@test "breaker: a verb without its NAME is a usage error" {
	run --separate-stderr brk show
	assert_status 2
	assert_stderr_has "missing argument"
	assert_stderr_has "usage: resyncctl breaker show NAME"
}

# ---- list ----------------------------------------------------------------------

@test "breaker list: configured, implicit and saved breakers, by name" {
	saved old-one open
	run --separate-stderr brk list
	assert_status 0
	assert_empty "$stderr"
	assert_output_matches '^NAME +STATE +SINCE +CALLS +FAILURES +REJECTED +NOTE$'
	names=$(awk 'NR > 1 { print $1 }' <<<"$output" | paste -sd' ')
	same "names" "billing hwa hwa-jobs old-one pay-main" "$names"
	assert_output_matches '^billing +closed +- +- +- +-  no data yet$'
	assert_output_matches '^hwa +closed +- .*no data yet$'
	assert_output_matches '^old-one +open +2026-11-23T16:06:40Z +1200 +90 +17  trial calls in [0-9]+s; not in the configuration$'
	assert_output_lacks "pay "
}

@test "breaker list: --json parses, with stable fields" {
	saved hwa open
	run --separate-stderr brk --json list
	assert_status 0
	assert_jq '.breakers | length == 4'
	assert_jq '[.breakers[].name] == ["billing","hwa","hwa-jobs","pay-main"]'
	assert_jq '.breakers[0] | .state == "closed" and .saved == false and .since == null and .configured and .implicit and .upstream == "billing"'
	assert_jq '.breakers[1] | .state == "open" and .saved and .calls == 1200 and .failures == 90 and .rejected == 17 and .origin == "resync-fcgi/812@web1"'
	assert_jq '.breakers[1].since | test("^2026-11-23T16:06:40Z$")'
	assert_jq '.breakers[1].open_until | test("Z$")'
	assert_jq '.breakers[2] | .name == "hwa-jobs" and .implicit == false and .upstream == "hwa"'
}

@test "breaker list: -q leaves out the header" {
	run brk -q list
	assert_status 0
	assert_output_lacks "NAME"
	assert_count 1 "pay-main"
}

@test "breaker list: --db alone, no configuration, lists the saved ones" {
	saved hwa closed
	run --separate-stderr rctl --db t.db breaker list
	assert_status 0
	assert_output_matches '^hwa +closed .*not in the configuration$'
	assert_output_lacks "billing"
}

@test "breaker list: a missing database is an error and is not created" {
	rm -f t.db t.db-wal t.db-shm
	run --separate-stderr brk list
	assert_status 2
	assert_stderr_has "resyncctl: breaker list: cannot open '"
	assert_stderr_has "t.db': No such file or directory"
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
	run --separate-stderr brk show hwa
	assert_status 2
	run --separate-stderr brk history hwa
	assert_status 2
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
}

# ---- show ------------------------------------------------------------------------

@test "breaker show: a saved breaker, text" {
	saved hwa open
	run --separate-stderr brk show hwa
	assert_status 0
	assert_output_has "breaker      hwa" \
		"upstream     hwa (the upstream's own breaker)" \
		"updated      " "by resync-fcgi/812@web1" \
		"calls        1200: 1100 succeeded, 90 failed, 10 ignored, 3 slow; 17 rejected" \
		"window       20 calls, 12 failed, 0 slow; 0 consecutive failures" \
		"transitions  opened 2, half-opened 1, closed 1"
	assert_output_matches '^state        open since 2026-11-23T16:06:40Z \(trial calls in [0-9]+s\)$'
}

@test "breaker show: configured but never saved is closed, no data yet" {
	run --separate-stderr brk show pay-main
	assert_status 0
	assert_output_has "upstream     pay" "state        closed (no data yet"
	run brk --json show pay-main
	assert_status 0
	assert_jq '.name == "pay-main" and .state == "closed" and .saved == false and .calls == 0 and .command == null and .generation == 0'
}

@test "breaker show: an unknown name is exit 2 and lists the known ones" {
	run --separate-stderr brk show hwb
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: breaker show: unknown breaker 'hwb'; known breakers: billing, hwa, hwa-jobs, pay-main"
	# The implicit breaker of a covered upstream does not exist.
	run --separate-stderr brk show pay
	assert_status 2
}

@test "breaker show: with nothing configured or saved, says so" {
	run --separate-stderr rctl --db t.db breaker show hwa
	assert_status 2
	assert_stderr_has "unknown breaker 'hwa'; no breaker is configured"
}

# ---- the commands -------------------------------------------------------------------

@test "breaker open: forced open, recorded with the actor, kept across invocations" {
	me="$(id -un) via resyncctl"
	run --separate-stderr brk open hwa
	assert_status 0
	assert_empty "$stderr"
	same "open's line" \
		"breaker 'hwa' opened: closed -> forced_open, by $me; a running responder applies it within a second" \
		"$output"
	run brk --json show hwa
	assert_jq ".state == \"forced_open\" and .command == \"open\" and .command_actor == \"$me\" and .generation == 1 and .origin == \"resyncctl\""
	run brk list
	assert_output_matches "^hwa +forced_open +20[0-9-]+T[0-9:]+Z +0 +0 +0  by $me$"
	[ "$(sql "SELECT state || ' ' || command || ' ' || generation FROM breaker WHERE name = 'hwa'")" = "forced_open open 1" ]
}

@test "breaker close, disable, reset: each sets the state and bumps the generation" {
	saved hwa open
	run brk close hwa
	assert_status 0
	assert_output_has "breaker 'hwa' closed: open -> closed, by "
	run brk disable hwa
	assert_output_has "breaker 'hwa' disabled: closed -> disabled"
	run brk --json show hwa
	assert_jq '.state == "disabled" and .generation == 2 and .calls == 1200'
	run brk reset hwa
	assert_output_has "breaker 'hwa' reset (counters cleared): disabled -> closed"
	run brk --json show hwa
	assert_jq '.state == "closed" and .command == "reset" and .generation == 3 and .calls == 0'
}

@test "breaker open: --json and -q" {
	run --separate-stderr brk --json open billing
	assert_status 0
	assert_jq '.name == "billing" and .command == "open" and .from == "closed" and .to == "forced_open" and .generation == 1 and (.actor | endswith(" via resyncctl"))'
	run --separate-stderr brk -q close billing
	assert_status 0
	assert_empty "$output"
	assert_empty "$stderr"
}

@test "breaker open: an unknown name is exit 2 and writes nothing" {
	run --separate-stderr brk open nope
	assert_status 2
	assert_stderr_has "resyncctl: breaker open: unknown breaker 'nope'; known breakers: billing, hwa, hwa-jobs, pay-main"
	[ "$(sql "SELECT count(*) FROM breaker")" = 0 ]
}

@test "breaker open: creates the database when there is none" {
	rm -f t.db t.db-wal t.db-shm
	run brk open hwa-jobs
	assert_status 0
	run brk --json show hwa-jobs
	assert_status 0
	assert_jq '.state == "forced_open"'
}

@test "breaker open: a database that cannot be opened is exit 2, naming it" {
	run --separate-stderr brk --db nowhere/t.db open hwa
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: breaker open: cannot open database 'nowhere/t.db': directory 'nowhere' does not exist"
}

@test "breaker list: a file that is not a database is exit 2, naming it" {
	echo "not a database" >junk.db
	run --separate-stderr brk --db junk.db list
	assert_status 2
	assert_stderr_has "resyncctl: breaker list: 'junk.db' is not a SQLite database"
}

@test "breaker: verbs may be abbreviated" {
	run brk sh hwa
	assert_status 0
	assert_output_has "breaker      hwa"
	run brk di hwa
	assert_status 0
	assert_output_has "disabled"
}

# ---- history ----------------------------------------------------------------------------

@test "breaker history: newest first, with actors" {
	brk open hwa >/dev/null
	brk close hwa >/dev/null
	brk reset hwa >/dev/null
	run --separate-stderr brk history hwa
	assert_status 0
	assert_output_matches '^TIME +FROM +TO +ACTOR +REASON$'
	reasons=$(awk 'NR > 1 { print $NF }' <<<"$output" | paste -sd' ')
	same "history order" "'reset' 'close' 'open'" "$reasons"
	assert_output_matches "^20[0-9-]+T[0-9:]+Z +closed +forced_open +$(id -un) via resyncctl +operator command 'open'$"
}

@test "breaker history: --limit, default 20, 0 for all" {
	for i in $(seq 1 13); do
		brk open hwa >/dev/null
		brk close hwa >/dev/null
	done
	run brk --json history hwa
	assert_jq '.name == "hwa" and (.events | length) == 20'
	assert_jq '.events[0].reason == "operator command '"'close'"'" and .events[0].from == "forced_open"'
	run brk --json history hwa --limit 3
	assert_jq '(.events | length) == 3'
	run brk --json history hwa --limit 0
	assert_jq '(.events | length) == 26'
	run brk -q history hwa -n 2
	[ "$(wc -l <<<"$output")" -eq 2 ] || { echo "got: $output" >&2; false; }
	run --separate-stderr brk history hwa --limit -1
	assert_status 2
	assert_stderr_has "bad --limit '-1'"
}

@test "breaker history: the breaker's own transitions have no actor" {
	saved hwa open
	sql "INSERT INTO breaker_event (name, time_ms, from_state, to_state, reason, actor)
	     VALUES ('hwa', 1795450000000, 'closed', 'open', 'failure rate 60% >= 50% over 20 calls', NULL)"
	run brk history hwa
	assert_output_matches '^2026-11-23T16:06:40Z +closed +open +- +failure rate 60% >= 50% over 20 calls$'
	run brk --json history hwa
	assert_jq '.events[0] | .actor == null and .from == "closed" and .to == "open" and (.time | test("^2026-11-23T16:06:40Z$"))'
}

@test "breaker history: none yet is exit 0 with a note" {
	run --separate-stderr brk history billing
	assert_status 0
	assert_empty "$output"
	assert_stderr_has "breaker 'billing' has no events yet"
	run --separate-stderr brk --json history billing
	assert_jq '.events == []'
}
