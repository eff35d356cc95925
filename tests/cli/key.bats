#!/usr/bin/env bats
# resyncctl key generate: a new API key and its [key NAME] section.

load helpers

@test "key generate: a key, and a section whose hash is the key's SHA-256" {
	run --separate-stderr rctl key generate --role operator oncall
	assert_status 0
	key=$(sed -n 2p <<<"$output")
	[[ "$key" =~ ^[0-9a-f]{64}$ ]] || { echo "not a key: $key" >&2; false; }
	hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
	assert_output_has "[key oncall]" "hash = $hash" "role = operator"
	assert_output_lacks "expires"
	# created: now, in UTC
	created=$(sed -n 's/^created = //p' <<<"$output")
	[[ $created =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]
	(( $(date -u -d "$created" +%s) >= $(date -u +%s) - 60 ))
}

@test "key generate: config-validate warns about a key older than [auth] key_rotation_interval" {
	rctl -q key generate ci | sed 1d >keys.conf
	run rctl config-validate keys.conf
	assert_status 0
	assert_output_lacks "key_rotation_interval"
	sed -i 's/^created = .*/created = 2020-01-01/' keys.conf
	run rctl config-validate keys.conf
	assert_status 0
	assert_output_has "[key ci] created: the key is older than [auth] key_rotation_interval (30d)"
	printf 'rotated = 2020-02-01\n' >>keys.conf
	run rctl config-validate keys.conf
	assert_output_has "the key's grace period is over: remove its section"
}

@test "key generate: the section it prints is a valid configuration" {
	run --separate-stderr rctl -q key generate --expires 2030-01-31T12:00:00Z ci
	assert_status 0
	sed 1d <<<"$output" >keys.conf
	run rctl config-validate keys.conf
	assert_status 0
	grep -qx 'expires = 2030-01-31T12:00:00Z' keys.conf
	grep -qx 'role = viewer' keys.conf
}

@test "key generate: every key is new" {
	a=$(rctl -q key generate a | head -1)
	b=$(rctl -q key generate a | head -1)
	[ -n "$a" ] && [ "$a" != "$b" ]
}

@test "key generate: --json" {
	run --separate-stderr rctl --json key generate -r admin -e 2031-02-03 ops
	assert_status 0
	assert_jq '.name == "ops" and .role == "admin" and .expires == "2031-02-03" and (.created | test("Z$"))'
	key=$(jq -r .key <<<"$output")
	[ "$(jq -r .hash <<<"$output")" = "$(printf %s "$key" | sha256sum | cut -d' ' -f1)" ]
}

@test "key generate: a bad name, role or date, or no name, is a usage error" {
	run --separate-stderr rctl key generate 'two words'
	assert_status 2
	assert_stderr_has "invalid key name 'two words'"
	run --separate-stderr rctl key generate "$(printf 'k%.0s' $(seq 65))"
	assert_status 2
	assert_stderr_has "invalid key name"
	run --separate-stderr rctl key generate -r root x
	assert_status 2
	assert_stderr_has "invalid role 'root'"
	run --separate-stderr rctl key generate -e tomorrow x
	assert_status 2
	assert_stderr_has "invalid expiry 'tomorrow'"
	run --separate-stderr rctl key generate
	assert_status 2
	assert_empty "$output"
}
