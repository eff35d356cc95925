#!/usr/bin/env bats
# resyncctl audit: list, show, head, verify (and what each tampering
# looks like), export, prune.

load helpers

SEED=${RS_TOP_BUILDDIR:-$RS_TOP_SRCDIR}/tests/cli/audit_seed

setup_log() {
	secret audit.key "$(printf 'ab%.0s' $(seq 32))"
	conf resync.conf <<-EOF
	[persistence]
	db = audit.db
	[audit]
	key_file = audit.key
	EOF
	"$SEED" audit.db audit.key "${1:-20}"
}

actl() {
	rctl -c resync.conf audit "$@"
}

teardown() {
	# a tail -f a failed test left running would hold bats open
	[ -z "${FOLLOWER:-}" ] || kill -KILL "$FOLLOWER" 2>/dev/null || true
}

@test "audit: an untouched log verifies; list, show and head read it" {
	setup_log 20
	run actl verify
	assert_status 0
	assert_output_has "intact: 20 records checked"
	run actl list
	assert_status 0
	[ "${#lines[@]}" = 20 ]
	run actl list --actor jwt:alice --outcome success
	[ "${#lines[@]}" = 3 ]
	run actl --json list --action 'auth.*' --limit 2
	[ "${#lines[@]}" = 2 ]
	jq -e -s '(map(.action == "auth.failure") | all) and .[1].seq == 19' <<<"$output"
	run actl search t17
	[ "${#lines[@]}" = 1 ]
	run actl --json show 7
	assert_status 0
	assert_jq '.seq == 7 and .actor == "key:ops" and .details.n == 7 and (.hash | length) == 64'
	run actl show 99
	assert_status 1
	run actl head
	[[ $output =~ ^20:[0-9a-f]{64}$ ]]
	run actl list --since 5m
	[ "${#lines[@]}" -ge 5 ] && [ "${#lines[@]}" -le 6 ]
	run actl list --since yesterday-ish
	assert_status 2
}

@test "audit: verify names the seq and the kind of each tampering, exit 1" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	setup_log 20
	cp audit.db pristine.db
	sqlite3 audit.db "UPDATE audit SET details = '{\"n\":70}' WHERE seq = 7"
	run actl verify
	assert_status 1
	assert_output_has "broken at seq 7: modified"
	cp pristine.db audit.db
	sqlite3 audit.db "DELETE FROM audit WHERE seq = 9"
	run actl verify
	assert_status 1
	assert_output_has "broken at seq 10: deleted"
	cp pristine.db audit.db
	sqlite3 audit.db "UPDATE audit SET seq = -1 WHERE seq = 12; UPDATE audit SET seq = 12 WHERE seq = 13; UPDATE audit SET seq = 13 WHERE seq = -1"
	run actl verify
	assert_status 1
	assert_output_has "broken at seq 12: reordered"
	cp pristine.db audit.db
	sqlite3 audit.db "UPDATE audit SET seq = seq + 100 WHERE seq >= 15; UPDATE audit SET seq = seq - 99 WHERE seq >= 115;
		INSERT INTO audit SELECT 15, time_us, 'key:evil', source, action, target, outcome, request_id, details, key_id,
		(SELECT hash FROM audit WHERE seq = 14), zeroblob(32) FROM audit WHERE seq = 14"
	run actl verify
	assert_status 1
	assert_output_has "broken at seq 15: inserted"
	# a different key file: the records' key is unknown
	cp pristine.db audit.db
	secret audit.key "$(printf 'cd%.0s' $(seq 32))"
	run actl verify
	assert_status 1
	assert_output_has "unknown key"
}

@test "audit: head as an anchor catches a cut log; export verifies alone; prune keeps the chain" {
	command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
	setup_log 30
	anchor=$(actl head)
	sqlite3 audit.db "DELETE FROM audit WHERE seq > 25"
	run actl verify
	assert_status 0
	run actl verify --head "$anchor"
	assert_status 1
	assert_output_has "truncated"
	run actl verify --head "nonsense"
	assert_status 2
	# prune refuses records never exported
	run actl prune --before 10m
	assert_status 1
	assert_output_has "exported"
	actl export -o all.jsonl
	[ "$(wc -l <all.jsonl)" = 25 ]
	run actl verify --file all.jsonl
	assert_status 0
	assert_output_has "intact: 25 records"
	sed 's/"n":3}/"n":33}/' all.jsonl >edited.jsonl
	run actl verify --file edited.jsonl
	assert_status 1
	assert_output_has "seq 3: modified"
	run actl prune --before 10m
	assert_status 0
	assert_output_has "records pruned"
	run actl verify
	assert_status 0
	run actl --json show "$(actl head | cut -d: -f1)"
	assert_jq '.action == "audit.prune" and (.actor | startswith("unix:")) and .details.removed > 0'
	actl export --format csv -o all.csv
	head -1 all.csv | grep -q '^seq,time,time_us,actor'
}

@test "audit: tail prints the newest records; tail -f prints what another process writes, and exits 0 on SIGINT" {
	setup_log 12
	run actl tail
	assert_status 0
	[ "${#lines[@]}" = 10 ]
	[[ ${lines[0]} == "3 "* ]] && [[ ${lines[9]} == "12 "* ]]
	run actl --json tail -n 2 --action 'cache.*'
	jq -e -s 'map(.seq) == [10, 12]' <<<"$output"
	run actl tail -n nope
	assert_status 2

	# resyncctl itself in the background (not a function's subshell), so
	# the signals reach it
	"$RESYNCCTL" -c resync.conf audit --json tail -f -n 0 --outcome success >follow.out 2>follow.err &
	FOLLOWER=$!
	sleep 0.5
	"$SEED" audit.db audit.key 3 cache.restore     # records 13 (denied), 14, 15 (denied)
	rctl -c resync.conf cache set job:1 one          # record 16, success
	for _ in $(seq 50); do
		[ "$(wc -l <follow.out)" -ge 2 ] && break
		sleep 0.1
	done
	kill -INT "$FOLLOWER"
	for _ in $(seq 50); do
		kill -0 "$FOLLOWER" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$FOLLOWER" 2>/dev/null || { echo "tail -f is still running 5 s after SIGINT" >&2; false; }
	run wait "$FOLLOWER"
	FOLLOWER=
	assert_status 0
	[ ! -s follow.err ]
	jq -e -s 'map(.seq) == [14, 16] and .[1].action == "cli.cache.set"' follow.out
}

@test "audit: stats counts by action, outcome and actor over a period" {
	setup_log 20
	run actl --json stats
	assert_status 0
	assert_jq '.total == 20 and .first_seq == 1 and .last_seq == 20'
	assert_jq '.by_outcome == [{"name": "denied", "count": 10}, {"name": "success", "count": 10}]'
	assert_jq '(.by_actor | map({(.name): .count}) | add) == {"key:ops": 14, "jwt:alice": 6}'
	assert_jq '(.by_action | map(.name) | sort) == ["auth.failure", "cache.purge"]'
	# records i are N - i minutes old: the last 5 minutes hold 16..20 (or 15..20)
	run actl --json stats --since 5m --top 1
	assert_jq '.total >= 5 and .total <= 6 and .last_seq == 20 and (.by_actor | length) == 1'
	run actl stats
	assert_status 0
	assert_output_has "20 records, seq 1 to 20" "ACTION" "auth.failure" "OUTCOME" "ACTOR" "key:ops"
	run actl stats --top -1
	assert_status 2
}

@test "audit: resyncctl's mutating commands record themselves, with the unix user; reads do not" {
	setup_log 0
	me=$(id -un)
	rctl -c resync.conf cache set job:1 one
	rctl -c resync.conf cache get job:1 >/dev/null
	run rctl -c resync.conf cache delete job:missing    # exit 1: nothing to delete
	deleted=$status
	rctl -c resync.conf cache purge --prefix job: >/dev/null
	run rctl -c resync.conf cache set                   # usage: never ran
	assert_status 2
	run rctl -c resync.conf breaker open nosuch         # ran, failed
	assert_status 2
	rctl -c resync.conf cache verify >/dev/null
	rctl -c resync.conf cache verify --repair >/dev/null
	run actl --json list
	assert_status 0
	jq -e -s --arg me "unix:$me" --argjson d "$deleted" '
		map(.action) == ["cli.cache.set", "cli.cache.delete", "cli.cache.purge",
				 "cli.breaker.open", "cli.cache.verify"]
		and (map(.actor == $me and .source == "local") | all)
		and .[0].target == "job:1" and .[0].outcome == "success"
		and .[0].details.args == ["job:1"] and .[0].details.args_not_recorded == 1
		and .[1].details.exit == $d
		and .[2].details.options == {"prefix": "job:"}
		and .[3].outcome == "failure" and .[3].details.exit == 2 and .[3].target == "nosuch"
		and .[4].details.options == {"repair": true}' <<<"$output"
	run actl verify
	assert_status 0
}

@test "audit: a command's record is cut to 256 bytes per argument, and off with [audit] enabled = false" {
	setup_log 0
	big=$(printf 'x%.0s' $(seq 1000))
	run rctl -c resync.conf cache delete "$big"
	run actl --json show 1
	assert_jq '(.details.args[0] | length) == 256 and (.target | length) == 256'
	# the value cache set stores is not recorded
	rctl -c resync.conf cache set job:v 'the value'
	run actl search 'the value'
	assert_status 0
	[ -z "$output" ]
	printf '[audit]\nenabled = false\n' >>resync.conf
	rctl -c resync.conf cache set job:2 two
	run actl --json head
	assert_jq '.seq == 2'
}

@test "audit: a command whose record cannot be written says so and keeps its exit status" {
	setup_log 0
	secret other.key "$(printf 'ef%.0s' $(seq 32))"
	sed -i 's/^key_file = audit.key/key_file = other.key/' resync.conf
	rctl -c resync.conf cache set job:1 one          # chained with other.key
	sed -i 's/^key_file = other.key/key_file = missing.key/' resync.conf
	run rctl -c resync.conf cache set job:2 two
	assert_status 0
	assert_output_has "not recorded in the audit log"
	run rctl -c resync.conf cache get job:2
	assert_output_has "two"
}
