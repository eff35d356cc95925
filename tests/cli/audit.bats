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
