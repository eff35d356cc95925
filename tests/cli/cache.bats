#!/usr/bin/env bats
# resyncctl cache, as an operator runs it against a database: every verb's
# output (text and --json) and exit status, persistence from one call to
# the next, export and import, and corruption made with the sqlite3 CLI
# that verify must name and --repair must quarantine.  Most tests work on
# $BATS_TEST_TMPDIR/t.db through --db, which needs no configuration file.

load helpers

# cache ARGS...: resyncctl --db t.db cache ARGS...
cache() {
	rctl --db "$BATS_TEST_TMPDIR/t.db" cache "$@"
}

# sql STATEMENT...: sqlite3 on t.db.
sql() {
	sqlite3 "$BATS_TEST_TMPDIR/t.db" "$@"
}

# keys: the stored keys, one a line, in list order.
keys() {
	rctl --db "$BATS_TEST_TMPDIR/t.db" --json cache list --limit 0 |
		jq -r '.entries[].key'
}

# entries [DB]: the entries of `list --json` as one line of JSON.
entries() {
	rctl --db "${1:-$BATS_TEST_TMPDIR/t.db}" --json cache list --limit 0 |
		jq -c .entries
}

# same WHAT EXPECTED GOT: fail with both when they differ.
same() {
	if [ "$2" != "$3" ]; then
		printf '%s: expected:\n%s\ngot:\n%s\n' "$1" "$2" "$3" >&2
		return 1
	fi
}

now_ms() {
	echo $(($(date +%s) * 1000))
}

# ---- the command itself ------------------------------------------------------

@test "cache: no verb is a usage error that lists the verbs" {
	run --separate-stderr rctl --db t.db cache
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: cache: missing command"
	assert_stderr_has "  snapshots "
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
}

@test "cache: --help lists every verb, exit 0" {
	run --separate-stderr rctl cache --help
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "usage: resyncctl cache <command> [options]"
	for verb in stats get set delete purge list snapshot snapshots restore \
		verify gc export import; do
		assert_output_matches "^  $verb +[a-z]"
	done
}

@test "cache: a verb's --help shows its usage and options" {
	run rctl cache set --help
	assert_status 0
	assert_output_has "usage: resyncctl cache set [--ttl DURATION] KEY (VALUE | --file FILE)" \
		"-t, --ttl DURATION" "-f, --file FILE"
}

@test "cache: an unknown verb is refused with the near candidates" {
	run --separate-stderr cache lst
	assert_status 2
	assert_stderr_has "resyncctl: cache: unknown command 'lst'; did you mean: list"
	run --separate-stderr cache frobnicate
	assert_status 2
	assert_stderr_has "resyncctl: cache: unknown command 'frobnicate'"
}

@test "cache: verbs may be abbreviated; an ambiguous prefix names both" {
	cache set a 1
	run --separate-stderr cache sn
	assert_status 2
	assert_stderr_has "ambiguous command 'sn'; it could be: snapshot snapshots"
	run cache ver
	assert_status 0
	assert_output_has "ok: no faults"
	run cache g a
	assert_status 2
	assert_output_has "ambiguous command 'g'; it could be: get gc"
	run cache ge a
	assert_status 0
	[ "$output" = 1 ] || { echo "cache ge a printed: $output" >&2; false; }
	# "snapshot" is a whole name, not a prefix of "snapshots".
	run cache snapshot
	assert_status 0
	assert_output_has "snapshot 1:"
}

# ---- set and get -------------------------------------------------------------

@test "cache: set then get gives back the value byte for byte" {
	run --separate-stderr cache set greeting hello
	assert_status 0
	assert_empty "$output"
	assert_empty "$stderr"
	cache get greeting >out
	printf 'hello' >want
	cmp want out
	run --separate-stderr cache get greeting
	assert_status 0
	assert_empty "$stderr"
	[ "$output" = hello ] || { echo "got: $output" >&2; false; }
}

@test "cache: values set by one call are read by the next; set replaces" {
	cache set k1 one
	cache set k2 two
	cache set k1 uno
	run cache get k1
	assert_status 0
	[ "$output" = uno ] || { echo "k1: $output" >&2; false; }
	run cache get k2
	[ "$output" = two ] || { echo "k2: $output" >&2; false; }
	same keys "$(printf 'k1\nk2')" "$(keys)"
}

@test "cache: set --file stores the file as is (newlines, NUL, non-UTF-8)" {
	printf 'line 1\nline 2\n\n' >text
	printf 'a\000b\377\376 \\x\n' >bin
	cache set --file text t
	cache set -f bin b
	cache get t >got.text
	cache get b >got.bin
	cmp text got.text
	cmp bin got.bin
}

@test "cache: set --file - reads the value from standard input" {
	printf 'from\nstdin' | cache set --file - s
	cache get s >out
	printf 'from\nstdin' >want
	cmp want out
}

@test "cache: an empty value is stored" {
	cache set empty ''
	cache get empty >out
	[ ! -s out ] || { echo "expected an empty value" >&2; false; }
	run cache --json get empty
	assert_jq '.value == "" and .status == "hit"'
}

@test "cache: get of a key not cached exits 1 with a message on stderr" {
	cache set there 1
	run --separate-stderr cache get nope
	assert_status 1
	assert_empty "$output"
	assert_stderr_has "resyncctl: cache get: 'nope' is not cached"
	run --separate-stderr rctl -q --db t.db cache get nope
	assert_status 1
	assert_empty "$output"
	assert_empty "$stderr"
}

@test "cache: get --json gives status, value and times" {
	cache set --ttl 90s k v1
	run --separate-stderr cache --json get k
	assert_status 0
	assert_jq '.key == "k" and .status == "hit" and .value == "v1"'
	assert_jq '.expires_ms - .stored_ms == 90000'
	assert_jq '.ttl_ms > 0 and .ttl_ms <= 90000'
	now=$(now_ms)
	assert_jq ".stored_ms > $now - 60000 and .stored_ms < $now + 60000"
	run --separate-stderr cache --json get missing
	assert_status 1
	assert_jq '. == {"key": "missing", "status": "miss"}'
}

@test "cache: get --json shows a value that is not UTF-8 as base64" {
	printf '\377\000\001' >bin
	cache set -f bin b
	run cache --json get b
	assert_status 0
	assert_jq '.value_base64 == "/wAB" and (has("value") | not)'
}

@test "cache: --ttl sets the time to live; without it [cache] ttl (5m) applies" {
	cache set --ttl 2h long v
	cache set -t 1500ms short v
	cache set plain v
	run cache --json list
	assert_jq '.entries | map({(.key): (.expires_ms - .stored_ms)}) | add ==
		{"long": 7200000, "plain": 300000, "short": 1500}'
}

@test "cache: set with both VALUE and --file, or neither, is a usage error" {
	echo x >f
	run --separate-stderr cache set k v --file f
	assert_status 2
	assert_stderr_has "resyncctl: cache set: give the value or --file, not both"
	run --separate-stderr cache set k
	assert_status 2
	assert_stderr_has "resyncctl: cache set: no value: give VALUE or --file FILE"
	run --separate-stderr cache set
	assert_status 2
	assert_stderr_has "missing argument"
	[ ! -e t.db ] || { echo "a usage error created t.db" >&2; false; }
}

@test "cache: a bad --ttl is a usage error" {
	run --separate-stderr cache set --ttl 5 k v
	assert_status 2
	assert_stderr_has "resyncctl: cache set: bad --ttl '5': missing unit"
	run --separate-stderr cache set --ttl 5x k v
	assert_status 2
	assert_stderr_has "bad --ttl '5x': unknown unit"
	run --separate-stderr cache set --ttl -5s k v
	assert_status 2
	assert_stderr_has "bad --ttl '-5s'"
	run --separate-stderr cache set --ttl 0s k v
	assert_status 2
	assert_stderr_has "bad --ttl '0s': must be 1s to 30d"
	run --separate-stderr cache set --ttl 0 k v
	assert_status 2
	assert_stderr_has "bad --ttl '0': must be 1s to 30d"
	run --separate-stderr cache set --ttl 31d k v
	assert_status 2
	assert_stderr_has "bad --ttl '31d': must be 1s to 30d"
	[ ! -e t.db ] || { echo "a usage error created t.db" >&2; false; }
}

@test "cache: a key over the limit is refused with a message naming it" {
	long=$(printf 'k%.0s' {1..1025})
	run --separate-stderr cache set "$long" v
	assert_status 2
	assert_stderr_has "resyncctl: cache set: key 'kkkkkkkkkk"
	assert_stderr_has "is 1025 bytes, at most 1024 allowed"
	run --separate-stderr cache set '' v
	assert_status 2
	assert_stderr_has "key is empty"
	cache set "${long:1}" v
	same "stored keys" "${long:1}" "$(keys)"
}

@test "cache: a value over [cache] max_value_size is refused, from --file too" {
	conf small.conf <<-'EOF'
	[cache]
	max_value_size = 1KB
	EOF
	head -c 1025 /dev/zero >big
	head -c 1024 /dev/zero >fits
	run --separate-stderr rctl -c small.conf --db t.db cache set -f big k
	assert_status 2
	assert_stderr_has "'big' is larger than the largest value allowed (1024 bytes)"
	run --separate-stderr rctl -c small.conf --db t.db cache set k "$(printf 'a%.0s' {1..1025})"
	assert_status 2
	assert_stderr_has "value of 'k' is 1025 bytes, at most 1024 allowed"
	rctl -c small.conf --db t.db cache set -f fits k
	cache get k >out
	cmp fits out
}

# ---- delete and purge ----------------------------------------------------------

@test "cache: delete removes a key; a missing one is logged anyway with a note" {
	cache set a 1
	cache set b 2
	run --separate-stderr cache delete a
	assert_status 0
	assert_empty "$output"
	assert_empty "$stderr"
	run cache get a
	assert_status 1
	same "keys" b "$(keys)"
	run --separate-stderr cache delete a
	assert_status 0
	assert_stderr_has "resyncctl: cache delete: 'a' was not in the stored cache; the delete is logged for running responders"
	run --separate-stderr cache --json delete b
	assert_status 0
	assert_jq '. == {"key": "b", "deleted": true}'
	run --separate-stderr cache --json delete b
	assert_status 0
	assert_empty "$stderr"
	assert_jq '. == {"key": "b", "deleted": false}'
}

@test "cache: purge --all removes every entry" {
	cache set a 1
	cache set b 2
	cache set c/d 3
	run --separate-stderr cache purge --all
	assert_status 0
	[ "$output" = "purged 3 entries" ] || { echo "got: $output" >&2; false; }
	same "keys" "" "$(keys)"
	run cache --json purge -a
	assert_jq '. == {"purged": 0}'
}

@test "cache: purge --prefix removes only the keys that start with it" {
	for k in hwa/plan/1 hwa/plan/2 hwa/planet hwa/job/1 other; do
		cache set "$k" v
	done
	run cache purge --prefix hwa/plan/
	assert_status 0
	[ "$output" = "purged 2 entries" ] || { echo "got: $output" >&2; false; }
	same "keys" "$(printf 'hwa/job/1\nhwa/planet\nother')" "$(keys)"
	run cache --json purge -p hwa/
	assert_jq '.purged == 2'
	same "keys" other "$(keys)"
}

@test "cache: purge with neither, both or an empty prefix is a usage error" {
	cache set a 1
	run --separate-stderr cache purge
	assert_status 2
	assert_stderr_has "give exactly one of --all and --prefix PREFIX"
	run --separate-stderr cache purge --all --prefix a
	assert_status 2
	assert_stderr_has "give exactly one of --all and --prefix PREFIX"
	run --separate-stderr cache purge --prefix ''
	assert_status 2
	assert_stderr_has "empty --prefix; use --all to purge everything"
	same "keys" a "$(keys)"
}

# ---- list ----------------------------------------------------------------------

@test "cache: list shows size, TTL and key in bytewise key order" {
	for k in b a/2 ab a a/10 B; do
		cache set --ttl 1h "$k" "value-$k"
	done
	run --separate-stderr cache list
	assert_status 0
	assert_empty "$stderr"
	[ "${lines[0]}" = "SIZE       TTL          KEY" ] ||
		{ echo "header: ${lines[0]}" >&2; false; }
	same "keys in order" "$(printf 'B\na\na/10\na/2\nab\nb')" \
		"$(printf '%s\n' "${lines[@]:1}" | awk '{ print $NF }')"
	assert_output_matches '^7 B +(59m5[0-9]s|1h00m) +a$'
	assert_output_matches '^10 B +(59m5[0-9]s|1h00m) +a/10$'
}

@test "cache: list --prefix shows only the keys under it" {
	for k in a a/1 a/2 b/1; do cache set "$k" v; done
	run cache list --prefix a/
	assert_status 0
	assert_count 1 " a/1"
	assert_count 1 " a/2"
	assert_output_lacks " b/1"
	[ "${#lines[@]}" -eq 3 ] || { echo "expected header + 2: $output" >&2; false; }
	run cache --json list -p b
	assert_jq '[.entries[].key] == ["b/1"] and .total == 1'
}

@test "cache: list --limit cuts the list and says N of M shown; --limit 0 shows all" {
	for k in e d c b a; do cache set "$k" v; done
	run --separate-stderr cache list --limit 2
	assert_status 0
	same "shown" "$(printf 'a\nb')" "$(printf '%s\n' "${lines[@]:1}" | awk '{ print $NF }')"
	assert_stderr_has "resyncctl: cache list: 2 of 5 entries shown; --limit 0 shows all"
	run --separate-stderr cache list --limit 0
	assert_status 0
	assert_empty "$stderr"
	[ "${#lines[@]}" -eq 6 ] || { echo "expected header + 5: $output" >&2; false; }
	run --separate-stderr cache list -n 5
	assert_empty "$stderr"
	run --separate-stderr cache --json list -n 3
	assert_jq '(.entries | length) == 3 and .total == 5 and .truncated == true'
	run --separate-stderr cache --json list
	assert_jq '(.entries | length) == 5 and .total == 5 and .truncated == false'
}

@test "cache: list --limit must be a number, 0 or more" {
	cache set a 1
	run --separate-stderr cache list --limit -1
	assert_status 2
	assert_stderr_has "bad --limit '-1': must be 0 (all) or more"
	run --separate-stderr cache list --limit many
	assert_status 2
	assert_stderr_has "bad --limit 'many'"
}

@test "cache: list of an empty cache prints nothing; -q leaves out the header" {
	cache set a 1
	cache delete a
	run --separate-stderr cache list
	assert_status 0
	assert_empty "$output"
	assert_empty "$stderr"
	cache set a 1
	run rctl -q --db t.db cache list
	assert_status 0
	assert_output_matches '^1 B +[0-9]m[0-9]{2}s +a$'
	assert_output_lacks "SIZE"
}

@test "cache: list --json gives each entry's key, size and times" {
	cache set --ttl 10m k hello
	printf 'x' >v
	cache set -f v "$(printf 'k\377')"
	run --separate-stderr cache --json list
	assert_status 0
	assert_jq '.entries[0] | .key == "k" and .bytes == 5 and .expires_ms - .stored_ms == 600000'
	assert_jq '.entries[1] | .key_base64 == "a/8=" and .bytes == 1'
	run cache list
	assert_output_matches '^1 B +[0-9]m[0-9]{2}s +k\\xff$'
}

# ---- stats ---------------------------------------------------------------------

@test "cache: stats text shows entries, memory, shards, snapshots and log" {
	cache set a 1
	cache set b 2
	cache set c 3
	run --separate-stderr cache stats
	assert_status 0
	assert_empty "$stderr"
	assert_output_matches "^database     $BATS_TEST_TMPDIR/t.db \\([0-9.]+ (B|KiB|MiB)\\)$"
	assert_output_has "entries      3 of 500000" "shards       32 (0 hot)" \
		"snapshots    0; none complete" \
		"log          3 records replayed after the snapshot, up to seq 3"
	assert_output_matches '^memory       [0-9.]+ (B|KiB) of 256\.0 MiB$'
	assert_output_matches '^recovered in [0-9]+ ms$'
	cache snapshot
	cache set d 4
	run cache stats
	assert_output_matches '^snapshots    1; newest complete: 1 at 20[0-9-]{8}T[0-9:]{8}Z, 3 entries, log seq 3$'
	assert_output_has "entries      4 of 500000" \
		"log          1 records replayed after the snapshot, up to seq 4"
	run rctl -v --db t.db cache stats
	assert_output_matches '^SHARD +ENTRIES +BYTES$'
	assert_output_matches '^31 +[0-9]+ +[0-9]+$'
}

@test "cache: stats --json" {
	cache set a 1
	cache set b 2
	run --separate-stderr cache --json stats
	assert_status 0
	assert_jq ".database == \"$BATS_TEST_TMPDIR/t.db\" and .database_bytes > 0"
	assert_jq '.entries == 2 and .bytes > 0 and .max_entries == 500000'
	assert_jq '.max_memory_bytes == 268435456 and .num_shards == 32 and (.shards | length) == 32'
	assert_jq '([.shards[].entries] | add) == 2'
	assert_jq '.snapshots == {"count": 0}'
	assert_jq '.recovery | .snapshot_id == 0 and .log_records == 2 and .log_first_seq == 1
		and .last_seq == 2 and .log_stopped == false and (has("bad_seq") | not)'
	cache snapshot
	cache set c 3
	run cache --json stats
	assert_jq '.snapshots | .count == 1 and .newest_id == 1 and .newest_last_seq == 2 and .newest_entries == 2'
	assert_jq '.recovery | .snapshot_id == 1 and .snapshot_entries == 2 and .log_records == 1 and .last_seq == 3'
}

# ---- snapshots, restore, gc ----------------------------------------------------

@test "cache: snapshot takes one; snapshots lists them newest first" {
	run --separate-stderr cache snapshots
	assert_status 2
	assert_stderr_has "cannot open"
	cache set a 1
	cache set bb 22
	run cache snapshots
	assert_status 0
	assert_empty "$output"
	run --separate-stderr cache snapshot
	assert_status 0
	assert_empty "$stderr"
	[ "$output" = "snapshot 1: 2 entries, 6 B, log seq 2" ] || { echo "got: $output" >&2; false; }
	cache set c 3
	run cache --json snapshot
	assert_jq '.id == 2 and .last_seq == 3 and .entries == 3 and .bytes == 8 and .state == "complete"'
	run cache snapshots
	assert_status 0
	assert_output_matches '^ID +TIME +ENTRIES +SIZE +LOG SEQ +STATE$'
	assert_output_matches '^2 +20[0-9-]{8}T[0-9:]{8}Z +3 +8 B +3  complete$'
	assert_output_matches '^1 +20[0-9-]{8}T[0-9:]{8}Z +2 +6 B +2  complete$'
	[ "$(printf '%s\n' "${lines[@]:1}" | awk '{ print $1 }' | tr '\n' ' ')" = "2 1 " ] ||
		{ echo "not newest first: $output" >&2; false; }
	run cache --json snapshots
	assert_jq '[.snapshots[].id] == [2, 1] and .snapshots[1].entries == 2'
}

@test "cache: restore ID gives back exactly the snapshot's keys and values" {
	cache set a 1
	cache set b 2
	cache set --ttl 1h c 3
	cache snapshot
	want=$(entries)
	cache set b changed
	cache delete a
	cache set d 4
	cache purge --prefix c
	run --separate-stderr cache restore 1
	assert_status 0
	[ "$output" = "restored snapshot 1: 3 entries (0 past their windows left out, 0 refused by the bounds)" ] ||
		{ echo "got: $output" >&2; false; }
	same "entries after restore" "$want" "$(entries)"
	run cache get b
	[ "$output" = 2 ] || { echo "b: $output" >&2; false; }
	cache set e 5
	run cache --json restore 1
	assert_status 0
	assert_jq '. == {"snapshot": 1, "entries": 3, "expired": 0, "rejected": 0}'
	same "entries after the second restore" "$want" "$(entries)"
}

@test "cache: restore of a missing or bad id fails with exit 2 and changes nothing" {
	cache set a 1
	cache snapshot
	cache set b 2
	want=$(entries)
	run --separate-stderr cache restore 99
	assert_status 2
	assert_stderr_has "resyncctl: cache restore: no snapshot 99 in '$BATS_TEST_TMPDIR/t.db'"
	run --separate-stderr cache restore x
	assert_status 2
	assert_stderr_has "bad snapshot id 'x'"
	run --separate-stderr cache restore 0
	assert_status 2
	same "entries" "$want" "$(entries)"
}

@test "cache: restore of a snapshot that does not verify changes nothing" {
	cache set a v-a
	cache snapshot
	cache set b 2
	want=$(entries)
	sql "UPDATE cache_snapshot_row SET value = CAST('v-X' AS BLOB) WHERE snapshot_id = 1"
	run --separate-stderr cache restore 1
	assert_status 2
	assert_stderr_has "cannot load snapshot 1 from '$BATS_TEST_TMPDIR/t.db': checksum mismatch"
	same "entries" "$want" "$(entries)"
}

@test "cache: gc runs and keeps what is young" {
	cache set a 1
	cache snapshot
	cache set b 2
	cache snapshot
	run --separate-stderr cache gc
	assert_status 0
	assert_empty "$stderr"
	[ "$output" = "removed 0 snapshots and 0 log records" ] || { echo "got: $output" >&2; false; }
	run cache --json gc
	assert_status 0
	assert_jq '. == {"snapshots_removed": 0, "log_records_removed": 0}'
	[ "$(sql 'SELECT count(*) FROM cache_snapshot')" -eq 2 ]
	same "keys" "$(printf 'a\nb')" "$(keys)"
}

# ---- export and import -----------------------------------------------------------

@test "cache: export writes a JSON document to FILE, leaving no temporary file" {
	cache set a 1
	cache set b/x hello
	cache set --ttl 1h c 3
	run --separate-stderr cache export out.json
	assert_status 0
	assert_empty "$output"
	assert_stderr_has "exported 3 entries to out.json"
	ls -a >files
	! grep -q tmp files || { echo "temporary file left:" >&2; cat files >&2; false; }
	jq -e '.format == "resync-cache" and .version == 1 and (.exported_ms | type) == "number"' out.json
	jq -e '.entries | length == 3 and (map(.key) | sort) == ["a", "b/x", "c"]' out.json
	jq -e '.entries[] | select(.key == "b/x") | .value == "hello" and .expires_ms - .stored_ms == 300000' out.json
	jq -e '.entries[] | select(.key == "c") | .expires_ms - .stored_ms == 3600000' out.json
	[[ $(head -1 out.json) == '{"format":"resync-cache","version":1,"exported_ms":'* ]] ||
		{ echo "format is not first: $(head -1 out.json)" >&2; false; }
}

@test "cache: export --format ndjson writes a header line and one entry a line" {
	cache set a 1
	cache set b 2
	run --separate-stderr cache export --format ndjson out.ndjson
	assert_status 0
	assert_stderr_has "exported 2 entries to out.ndjson"
	[ "$(wc -l <out.ndjson)" -eq 3 ] || { cat out.ndjson >&2; false; }
	head -1 out.ndjson | jq -e '.format == "resync-cache" and .version == 1 and (has("entries") | not)'
	tail -n +2 out.ndjson | jq -s -e 'map(.key) | sort == ["a", "b"]'
	run --separate-stderr cache export --format xml out
	assert_status 2
	assert_stderr_has "unknown format 'xml' (use json or ndjson)"
}

@test "cache: export without FILE, or with -, writes to standard output" {
	cache set a 1
	run --separate-stderr cache export
	assert_status 0
	assert_empty "$stderr"
	assert_jq '.format == "resync-cache" and .entries == [.entries[0]] and .entries[0].key == "a"'
	run --separate-stderr cache export -f ndjson -
	assert_status 0
	[ "${#lines[@]}" -eq 2 ] || { echo "got: $output" >&2; false; }
}

@test "cache: import into a fresh database gives the same entries (json, ndjson, stdin)" {
	cache set a 1
	cache set b/x hello
	cache set --ttl 2h c 'with "quotes" and \ backslash'
	want=$(entries)
	cache export out.json
	cache export --format ndjson out.ndjson
	run --separate-stderr rctl --db j.db cache import out.json
	assert_status 0
	[ "$output" = "imported 3 entries (0 already expired left out, 0 refused)" ] ||
		{ echo "got: $output" >&2; false; }
	same "entries (json)" "$want" "$(entries j.db)"
	rctl --db n.db cache import out.ndjson
	same "entries (ndjson)" "$want" "$(entries n.db)"
	rctl --db s.db cache import - <out.json
	same "entries (stdin)" "$want" "$(entries s.db)"
	run rctl --db s.db --json cache import --format json out.json
	assert_status 0
	assert_jq '. == {"imported": 3, "expired": 0, "rejected": 0}'
	run rctl --db s.db cache get c
	[ "$output" = 'with "quotes" and \ backslash' ] || { echo "c: $output" >&2; false; }
}

@test "cache: binary keys and values round-trip through export and import (base64)" {
	printf 'v\377\376\000\001\n' >bin
	cache set -f bin "$(printf 'key\377')"
	cache set -f bin plain
	cache export out.json
	jq -e '.entries[] | select(.key == "plain") | .value_base64 == "dv/+AAEK"' out.json
	jq -e '[.entries[] | select(.key_base64 == "a2V5/w==")] | length == 1' out.json
	rctl --db new.db cache import out.json
	same "entries" "$(entries)" "$(entries new.db)"
	rctl --db new.db cache get plain >got
	cmp bin got
	rctl --db new.db cache get "$(printf 'key\377')" >got2
	cmp bin got2
}

@test "cache: import of a malformed file exits 2 and changes nothing" {
	cache set keep 1
	now=$(now_ms)
	cat >bad.json <<-EOF
	{"format":"resync-cache","version":1,"entries":[
	{"key":"new","value":"v","stored_ms":$now,"expires_ms":$((now + 600000))},
	{"key":"broken","stored_ms":$now,"expires_ms":$((now + 600000))}
	]}
	EOF
	want=$(entries)
	run --separate-stderr cache import bad.json
	assert_status 2
	assert_stderr_has "resyncctl: cache import: 'bad.json' not imported: entry 2: missing \"value\""
	same "entries" "$want" "$(entries)"
	head -c 100 bad.json >cut.json
	run --separate-stderr cache import cut.json
	assert_status 2
	assert_stderr_has "'cut.json' not imported: truncated"
	echo 'not json' >junk.json
	run --separate-stderr cache import junk.json
	assert_status 2
	same "entries" "$want" "$(entries)"
	run --separate-stderr cache import --format ndjson bad.json
	assert_status 2
	assert_stderr_has "a JSON-format export, not NDJSON"
	run --separate-stderr cache import missing.json
	assert_status 2
	assert_stderr_has "cannot open 'missing.json'"
	same "entries" "$want" "$(entries)"
}

@test "cache: import from standard input keeps the entries before a fault" {
	now=$(now_ms)
	cat >bad.ndjson <<-EOF
	{"format":"resync-cache","version":1}
	{"key":"first","value":"v","stored_ms":$now,"expires_ms":$((now + 600000))}
	{"key":"second","value_base64":"not base64!","stored_ms":$now,"expires_ms":$((now + 600000))}
	EOF
	run --separate-stderr cache import - <bad.ndjson
	assert_status 2
	assert_stderr_has "1 entries were imported before the error"
	assert_stderr_has "'-': line 3:"
	same "keys" first "$(keys)"
}

@test "cache: import refuses entries over the limits (exit 1) and leaves out expired ones" {
	now=$(now_ms)
	long=$(printf 'k%.0s' {1..1100})
	cat >in.json <<-EOF
	{"format":"resync-cache","entries":[
	{"key":"ok","value":"v","stored_ms":$now,"expires_ms":$((now + 600000))},
	{"key":"$long","value":"v","stored_ms":$now,"expires_ms":$((now + 600000))},
	{"key":"old","value":"v","stored_ms":$((now - 7200000)),"expires_ms":$((now - 3600000))}
	]}
	EOF
	run --separate-stderr cache import in.json
	assert_status 1
	[ "$output" = "imported 1 entries (1 already expired left out, 1 refused)" ] ||
		{ echo "got: $output" >&2; false; }
	assert_stderr_has "resyncctl: cache import: 1 entries refused; the first: key 'kkkk"
	assert_stderr_has "is 1100 bytes, at most 1024 allowed"
	same "keys" ok "$(keys)"
	run --separate-stderr cache --json import in.json
	assert_status 1
	assert_jq '. == {"imported": 1, "expired": 1, "rejected": 1}'
}

# ---- verify and repair --------------------------------------------------------------

@test "cache: verify of a clean database exits 0" {
	cache set a 1
	cache snapshot
	cache set b 2
	run --separate-stderr cache verify
	assert_status 0
	assert_empty "$stderr"
	assert_output_has \
		"snapshots: 1 checked, 1 good, 0 incomplete, 0 quarantined before" \
		"log: 2 good records, seq 1..2; replay starts after seq 1" \
		"ok: no faults"
	run cache --json verify
	assert_status 0
	assert_jq '.ok == true and .faults == 0 and .list == [] and .records == 2 and .base_seq == 1'
	run --separate-stderr rctl -q --db t.db cache verify
	assert_status 0
	assert_empty "$output"
}

@test "cache: verify names a log record whose value was corrupted" {
	for k in k1 k2 k3 k4 k5 k6; do cache set "$k" "v-$k"; done
	sql "UPDATE cache_log SET value = CAST('X' AS BLOB) WHERE seq = 4"
	run --separate-stderr cache verify
	assert_status 1
	assert_output_has "log seq 4: checksum mismatch" \
		"1 faults; 'resyncctl cache verify --repair' quarantines them"
	run cache --json verify
	assert_status 1
	assert_jq '.ok == false and .faults == 1 and .repaired == 0'
	assert_jq '.list == [{"kind": "record", "ref": 4, "ref_end": 4, "reason": "checksum mismatch", "repaired": false}]'
	# Recovery stops at the bad record and says so.
	run --separate-stderr cache list
	assert_status 0
	assert_stderr_has "warning: the cache log stops at seq 4: checksum mismatch"
	same "keys" "$(printf 'k1\nk2\nk3')" "$(printf '%s\n' "${lines[@]:1}" | awk '{ print $NF }')"
}

@test "cache: verify names a corrupt snapshot" {
	cache set k1 v-k1
	cache set k2 v-k2
	cache snapshot
	cache set k3 v-k3
	sql "UPDATE cache_snapshot_row SET value = CAST('v-XX' AS BLOB) WHERE snapshot_id = 1 AND idx = 0"
	run --separate-stderr cache verify
	assert_status 1
	assert_output_has "snapshot 1: checksum mismatch" \
		"snapshots: 1 checked, 0 good, 0 incomplete, 0 quarantined before"
	sql "UPDATE cache_snapshot_row SET value = CAST('longer' AS BLOB) WHERE snapshot_id = 1 AND idx = 0"
	run cache verify
	assert_status 1
	assert_output_matches '^snapshot 1: [0-9]+ bytes, header says [0-9]+$'
	run --separate-stderr cache list
	assert_stderr_has "warning: 1 corrupt snapshot(s) passed over"
}

@test "cache: verify names a gap left by a deleted log record" {
	for k in k1 k2 k3 k4 k5 k6; do cache set "$k" "v-$k"; done
	sql "DELETE FROM cache_log WHERE seq = 3"
	run --separate-stderr cache verify
	assert_status 1
	assert_output_has "log seq 3: missing (gap: seq 4 follows 2)"
	run cache --json verify
	assert_jq '.list[0] | .kind == "gap" and .ref == 3 and .ref_end == 3'
	sql "DELETE FROM cache_log WHERE seq = 4"
	run cache verify
	assert_status 1
	assert_output_has "log seq 3..4: missing (gap: seq 5 follows 2)"
}

@test "cache: verify --repair quarantines every fault; recovery is clean afterwards" {
	for k in k1 k2 k3; do cache set "$k" "v-$k"; done
	cache snapshot
	for k in k4 k5 k6 k7 k8; do cache set "$k" "v-$k"; done
	sql "UPDATE cache_snapshot_row SET value = CAST('v-XX' AS BLOB) WHERE snapshot_id = 1 AND idx = 0"
	sql "UPDATE cache_log SET value = CAST('X' AS BLOB) WHERE seq = 5"
	sql "DELETE FROM cache_log WHERE seq = 7"
	run cache verify
	assert_status 1
	assert_output_has "snapshot 1: checksum mismatch" "log seq 5: checksum mismatch" \
		"log seq 7: missing (gap: seq 8 follows 6)" "3 faults;"

	run --separate-stderr cache verify --repair
	assert_status 1
	assert_output_has "snapshot 1: checksum mismatch (quarantined)" \
		"log seq 5: checksum mismatch (moved to the quarantine)" \
		"log seq 7: missing (gap: seq 8 follows 6) (recorded in the quarantine)" \
		"3 faults, 3 repaired; 3 rows in the quarantine"

	run --separate-stderr cache verify
	assert_status 0
	assert_output_has "snapshots: 0 checked, 0 good, 0 incomplete, 1 quarantined before" \
		"ok: no faults"
	same "quarantine" "$(printf 'snapshot|1|1|checksum mismatch\nlog|5|5|checksum mismatch\nlog|7|7|missing (gap: seq 8 follows 6)')" \
		"$(sql 'SELECT source, ref, ref_end, reason FROM cache_quarantine ORDER BY id')"
	# The bad record is kept as it was; the snapshot's rows are left in place.
	same "quarantined record" "1|k5|X" \
		"$(sql "SELECT op, CAST(key AS TEXT), CAST(value AS TEXT) FROM cache_quarantine WHERE source = 'log' AND ref = 5")"
	[ "$(sql 'SELECT count(*) FROM cache_snapshot_row WHERE snapshot_id = 1')" -eq 3 ]
	[ "$(sql 'SELECT count(*) FROM cache_log WHERE seq = 5')" -eq 0 ]

	run --separate-stderr cache list --limit 0
	assert_status 0
	assert_empty "$stderr"
	same "keys" "$(printf 'k1\nk2\nk3\nk4\nk6\nk8')" \
		"$(printf '%s\n' "${lines[@]:1}" | awk '{ print $NF }')"
	run cache snapshots
	assert_output_matches '^1 .* quarantined$'

	# New writes after the repair are recovered too.
	cache set k9 v-k9
	run --separate-stderr cache get k9
	assert_status 0
	assert_empty "$stderr"
	run cache verify
	assert_status 0
}

@test "cache: verify --repair --json reports what it repaired" {
	for k in k1 k2 k3 k4; do cache set "$k" v; done
	sql "UPDATE cache_log SET value = CAST('X' AS BLOB) WHERE seq = 2"
	run --separate-stderr cache --json verify --repair
	assert_status 1
	assert_jq '.ok == false and .faults == 1 and .repaired == 1 and .quarantine_rows == 1'
	assert_jq '.list[0] | .kind == "record" and .ref == 2 and .repaired == true'
	run cache --json verify
	assert_status 0
	assert_jq '.ok == true and .quarantine_rows == 1 and .records == 3'
}

# ---- configuration ------------------------------------------------------------------

@test "cache: a configuration file gives the database and the default TTL (--config)" {
	conf r.conf <<-EOF
	[persistence]
	db = $BATS_TEST_TMPDIR/conf.db
	[cache]
	ttl = 90s
	EOF
	run --separate-stderr rctl --config r.conf cache set k v
	assert_status 0
	assert_empty "$stderr"
	[ -f conf.db ] || { echo "conf.db not created" >&2; false; }
	run rctl --config r.conf --json cache get k
	assert_status 0
	assert_jq '.value == "v" and .expires_ms - .stored_ms == 90000'
	run rctl -c r.conf cache stats
	assert_output_has "database     $BATS_TEST_TMPDIR/conf.db"
	# --db wins over [persistence] db.
	rctl -c r.conf --db other.db cache set k2 v
	run rctl --db other.db --json cache get k2
	assert_jq '.expires_ms - .stored_ms == 90000'
	run rctl -c r.conf cache get k2
	assert_status 1
}

@test "cache: RESYNC_CONFIG names the configuration file" {
	conf r.conf <<-EOF
	[persistence]
	db = $BATS_TEST_TMPDIR/env.db
	[cache]
	ttl = 2m
	EOF
	RESYNC_CONFIG=r.conf rctl cache set k v
	[ -f env.db ] || { echo "env.db not created" >&2; false; }
	run env RESYNC_CONFIG=r.conf "$RESYNCCTL" --json cache get k
	assert_status 0
	assert_jq '.expires_ms - .stored_ms == 120000'
	RESYNC_CONFIG=r.conf RESYNC_CACHE_TTL=1h rctl cache set k2 v
	run rctl --db env.db --json cache get k2
	assert_jq '.expires_ms - .stored_ms == 3600000'
}

@test "cache: [cache] stale_if_error keeps an expired entry, shown as stale" {
	conf stale.conf <<-'EOF'
	[cache]
	stale_if_error = 10m
	EOF
	now=$(now_ms)
	cat >in.json <<-EOF
	{"format":"resync-cache","entries":[
	{"key":"old","value":"v","stored_ms":$((now - 120000)),"expires_ms":$((now - 60000))}
	]}
	EOF
	run rctl -c stale.conf --db t.db cache import in.json
	assert_status 0
	assert_output_has "imported 1 entries (0 already expired left out"
	run --separate-stderr rctl -c stale.conf --db t.db cache get old
	assert_status 0
	[ "$output" = v ] || { echo "got: $output" >&2; false; }
	assert_stderr_has "warning: 'old' is stale (expired 1m0"
	run --separate-stderr rctl -c stale.conf --db t.db --json cache get old
	assert_jq '.status == "stale" and .ttl_ms < 0'
	run rctl -c stale.conf --db t.db cache list
	assert_output_matches '^1 B +stale 1m0[0-9]s +old$'
	# Without the stale window the entry is past its time.
	run --separate-stderr cache get old
	assert_status 1
}

@test "cache: configuration problems fail the command with exit 2" {
	conf bad.conf <<-'EOF'
	[cache]
	ttl = 5
	EOF
	run --separate-stderr rctl -c bad.conf --db t.db cache list
	assert_status 2
	assert_stderr_has "bad.conf:2: error: [cache] ttl"
	assert_stderr_has "resyncctl: cache list: invalid configuration 'bad.conf'"
	run --separate-stderr rctl -c missing.conf --db t.db cache list
	assert_status 2
	assert_stderr_has "cannot open 'missing.conf'"
	conf off.conf <<-'EOF'
	[persistence]
	sync = off
	EOF
	run --separate-stderr rctl -c off.conf cache list
	assert_status 2
	assert_stderr_has "persistence is off ([persistence] sync = off in 'off.conf')"
	rctl -c off.conf --db t.db cache set k v
	run rctl -c off.conf --db t.db cache get k
	assert_status 0
}

# ---- a database that is not there ------------------------------------------------------

@test "cache: commands other than set and import need the database and do not create it" {
	for verb in "get k" list stats verify "verify --repair" snapshots snapshot \
		"delete k" "purge --all" "restore 1" gc export; do
		run --separate-stderr rctl --db nope.db cache $verb
		assert_status 2
		assert_stderr_has "resyncctl: cache ${verb%% *}: cannot open 'nope.db': No such file or directory"
		[ ! -e nope.db ] || { echo "cache $verb created nope.db" >&2; false; }
	done
	ls -a >files
	! grep -q nope files || { echo "left behind:" >&2; cat files >&2; false; }
}

@test "cache: set creates the database, but not its directory" {
	run --separate-stderr rctl --db no/such/dir/t.db cache set k v
	assert_status 2
	assert_stderr_has "directory 'no/such/dir' does not exist"
	[ ! -e no ] || { echo "created no/" >&2; false; }
	rctl --db fresh.db cache set k v
	[ -f fresh.db ]
}

@test "cache: inputs are checked before a database is created" {
	printf '{"format":"resync-cache","version":1,"entries":[{"key":"a"}]}' >bad.json
	run --separate-stderr rctl --db fresh.db cache import bad.json
	assert_status 2
	assert_stderr_has "'bad.json' not imported"
	[ ! -e fresh.db ] || { echo "a refused import created fresh.db" >&2; false; }
	run --separate-stderr rctl --db fresh.db cache set --file nofile k
	assert_status 2
	assert_stderr_has "cannot open 'nofile'"
	[ ! -e fresh.db ] || { echo "a missing --file created fresh.db" >&2; false; }
}

@test "cache: export to FILE with --json reports what it wrote as JSON" {
	cache set a 1
	cache set b 2
	run --separate-stderr rctl --db "$BATS_TEST_TMPDIR/t.db" --json cache export out.json
	assert_status 0
	assert_jq '.exported == 2 and .file == "out.json"'
	[ "$(jq '.entries | length' out.json)" = 2 ]
}

# ---- encryption at rest ------------------------------------------------------

# new_key FILE: one fresh key, 64 hex digits, mode 600.
new_key() {
	openssl rand -hex 32 >"$1"
	chmod 600 "$1"
}

# key_id FILE: the id of FILE's first key, derived as seal.h says: the
# first 8 bytes of SHA-256("resync-seal-key-id" || key), in hex.
key_id() {
	{ printf 'resync-seal-key-id'; grep -v '^#' "$1" | head -n 1 | xxd -r -p; } |
		openssl dgst -sha256 -r | cut -c1-16
}

# sealed_conf [KEYFILE]: s.conf, with t.db sealed with KEYFILE (k.key, a
# new key, by default).
sealed_conf() {
	local kf=${1:-k.key}

	[ -f "$kf" ] || new_key "$kf"
	conf s.conf <<-EOF
	[persistence]
	db = $BATS_TEST_TMPDIR/t.db
	encryption_key_file = $BATS_TEST_TMPDIR/$kf
	EOF
}

# scache ARGS...: resyncctl -c s.conf cache ARGS... (with the key).
scache() {
	rctl -c "$BATS_TEST_TMPDIR/s.conf" cache "$@"
}

# no_plaintext STRING: STRING is in no file of the database.
no_plaintext() {
	if cat t.db t.db-wal 2>/dev/null | grep -aqF -- "$1"; then
		echo "'$1' found in the database files" >&2
		return 1
	fi
}

@test "cache: with encryption_key_file set and get give back the plaintext" {
	sealed_conf
	run --separate-stderr scache set greeting 'SECRET hello'
	assert_status 0
	assert_empty "$stderr"
	run --separate-stderr scache get greeting
	assert_status 0
	assert_empty "$stderr"
	[ "$output" = 'SECRET hello' ] || { echo "got: $output" >&2; false; }
	printf 'SECRET\000\377 bytes\n' >bin
	scache set -f bin b
	scache get b >got.bin
	cmp bin got.bin
	run scache --json get greeting
	assert_jq '.value == "SECRET hello" and .status == "hit"'
}

@test "cache: with encryption_key_file the database holds no plaintext, records and snapshots name the key id" {
	sealed_conf
	id=$(key_id k.key)
	scache set a 'SECRET value a'
	scache set b 'SECRET bb'
	scache delete b
	run scache snapshot
	assert_status 0
	assert_output_has "snapshot 1: 1 entries"
	scache set c 'SECRET after the snapshot'
	scache purge --prefix zz
	no_plaintext SECRET
	same "log rows holding the plaintext" 0 \
		"$(sql "SELECT count(*) FROM cache_log WHERE instr(value, CAST('SECRET' AS BLOB)) > 0")"
	same "snapshot rows holding the plaintext" 0 \
		"$(sql "SELECT count(*) FROM cache_snapshot_row WHERE instr(value, CAST('SECRET' AS BLOB)) > 0")"
	same "key ids of the sets" "$id" \
		"$(sql "SELECT DISTINCT key_id FROM cache_log WHERE op = 1")"
	same "sets without a key id" 0 \
		"$(sql "SELECT count(*) FROM cache_log WHERE op = 1 AND key_id IS NULL")"
	same "deletes and purges with a key id" "2|0" \
		"$(sql "SELECT count(*), count(key_id) FROM cache_log WHERE op != 1")"
	same "sealed length of a (14 bytes + 28)" 42 \
		"$(sql "SELECT length(value) FROM cache_log WHERE key = CAST('a' AS BLOB)")"
	same "the snapshot's key id" "$id" \
		"$(sql "SELECT key_id FROM cache_snapshot WHERE id = 1")"
	run scache get c
	[ "$output" = 'SECRET after the snapshot' ] || { echo "c: $output" >&2; false; }
}

@test "cache: a sealed database with --db alone (no key) fails with exit 2 naming the key id" {
	sealed_conf
	id=$(key_id k.key)
	scache set a 'SECRET a'
	rows=$(sql "SELECT count(*) FROM cache_log")
	for verb in "get a" list stats export "set x y" "delete a" snapshot; do
		run --separate-stderr cache $verb
		assert_status 2
		assert_empty "$output"
		assert_stderr_has "resyncctl: cache ${verb%% *}: cache log in '$BATS_TEST_TMPDIR/t.db': seq 1 is sealed with key $id, and no encryption key file is configured"
	done
	same "records after the failed commands" "$rows" "$(sql "SELECT count(*) FROM cache_log")"
	same "snapshots after the failed commands" 0 "$(sql "SELECT count(*) FROM cache_snapshot")"
	# From a snapshot: the snapshot is named.
	scache snapshot
	run --separate-stderr cache get a
	assert_status 2
	assert_stderr_has "snapshot 1 in '$BATS_TEST_TMPDIR/t.db' is sealed with key $id, and no encryption key file is configured"
	# Another key: not in the key file.
	new_key other.key
	sealed_conf other.key
	run --separate-stderr scache get a
	assert_status 2
	assert_stderr_has "is sealed with key $id, which is not in the key file"
}

@test "cache: export of a sealed database gives the plaintext; import into it seals" {
	sealed_conf
	scache set a 'SECRET a'
	printf 'SECRET\000bin' >bin
	scache set -f bin b
	run --separate-stderr scache export out.json
	assert_status 0
	same "a in the export" 'SECRET a' "$(jq -r '.entries[] | select(.key == "a") | .value' out.json)"
	same "b in the export" "$(base64 <bin)" \
		"$(jq -r '.entries[] | select(.key == "b") | .value_base64' out.json)"
	# Into a plain database, and back into a new sealed one.
	rctl --db plain.db cache import out.json
	run rctl --db plain.db cache get a
	[ "$output" = 'SECRET a' ] || { echo "plain.db a: $output" >&2; false; }
	rm -f t.db t.db-wal t.db-shm
	run scache import out.json
	assert_status 0
	assert_output_has "imported 2 entries"
	no_plaintext SECRET
	same "sets without a key id after the import" 0 \
		"$(sql "SELECT count(*) FROM cache_log WHERE op = 1 AND key_id IS NULL")"
	scache get b >got.bin
	cmp bin got.bin
}

@test "cache: verify and snapshots need no key; verify still finds values moved between keys" {
	sealed_conf
	scache set a 'SECRET a'
	scache set b 'SECRET b'
	scache snapshot
	run --separate-stderr cache verify
	assert_status 0
	assert_empty "$stderr"
	assert_output_has "snapshots: 1 checked, 1 good" "log: 2 good records" "ok: no faults"
	run --separate-stderr cache snapshots
	assert_status 0
	assert_output_matches '^1 +[0-9T:-]+Z +2 .* complete$'
	sql "CREATE TEMP TABLE sw AS SELECT seq, value FROM cache_log;
	     UPDATE cache_log SET value = (SELECT value FROM sw WHERE sw.seq = 3 - cache_log.seq)"
	run cache verify
	assert_status 1
	assert_output_has "log seq 1: checksum mismatch" "log seq 2: checksum mismatch"
	run cache verify --repair
	assert_status 1
	assert_output_has "2 faults, 2 repaired"
	same "quarantined records with their key id" "2|$(key_id k.key)" \
		"$(sql "SELECT count(*), max(key_id) FROM cache_quarantine WHERE source = 'log'")"
	run scache verify
	assert_status 0
}

@test "cache: rotation: a new first key and a snapshot, then the old key can go" {
	new_key k1.key
	new_key k2.key
	id1=$(key_id k1.key)
	id2=$(key_id k2.key)
	cp k1.key k.key
	sealed_conf k.key
	scache set a 'SECRET a'
	scache snapshot
	# The new key first, the old one still there.
	cat k2.key k1.key >k.key
	run --separate-stderr scache get a
	assert_status 0
	[ "$output" = 'SECRET a' ] || { echo "a with [k2, k1]: $output" >&2; false; }
	scache set b 'SECRET b'
	same "b's key id" "$id2" "$(sql "SELECT key_id FROM cache_log WHERE key = CAST('b' AS BLOB)")"
	# Without k1 before the new snapshot: snapshot 1 needs it.
	sealed_conf k2.key
	run --separate-stderr scache get a
	assert_status 2
	assert_stderr_has "snapshot 1 in '$BATS_TEST_TMPDIR/t.db' is sealed with key $id1, which is not in the key file"
	sealed_conf k.key
	run scache snapshot
	assert_status 0
	assert_output_has "snapshot 2:"
	same "snapshot 2's key id" "$id2" "$(sql "SELECT key_id FROM cache_snapshot WHERE id = 2")"
	# Now k1 can go.
	cp k2.key k.key
	run scache get a
	assert_status 0
	[ "$output" = 'SECRET a' ] || { echo "a with [k2]: $output" >&2; false; }
	run scache get b
	[ "$output" = 'SECRET b' ] || { echo "b with [k2]: $output" >&2; false; }
	# ...except for restoring a snapshot it sealed.
	run --separate-stderr scache restore 1
	assert_status 2
	assert_stderr_has "snapshot 1 in '$BATS_TEST_TMPDIR/t.db' is sealed with key $id1, which is not in the key file"
	no_plaintext SECRET
}

@test "cache: a key file that group or others can read is refused before the database is created" {
	sealed_conf
	chmod 644 k.key
	run --separate-stderr scache set a 'SECRET a'
	assert_status 2
	assert_stderr_has "[persistence] encryption_key_file: '$BATS_TEST_TMPDIR/k.key' is readable by others (mode 0644); chmod 600 it"
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
	chmod 640 k.key
	run --separate-stderr scache set a 'SECRET a'
	assert_status 2
	assert_stderr_has "is readable by group (mode 0640); chmod 600 it"
	echo 'not a key' >bad.key
	chmod 600 bad.key
	sealed_conf bad.key
	run --separate-stderr scache set a 'SECRET a'
	assert_status 2
	assert_stderr_has "bad.key"
	[ ! -e t.db ] || { echo "t.db was created" >&2; false; }
}

@test "cache: a relative encryption_key_file is taken from the configuration file's directory" {
	mkdir etc
	new_key etc/k.key
	conf etc/r.conf <<-'EOF'
	[persistence]
	db = t.db
	encryption_key_file = k.key
	EOF
	rctl -c etc/r.conf cache set a 'SECRET a'
	[ -f etc/t.db ] || { echo "etc/t.db not created" >&2; false; }
	same "a's key id" "$(key_id etc/k.key)" \
		"$(sqlite3 etc/t.db "SELECT key_id FROM cache_log WHERE seq = 1")"
	run rctl -c etc/r.conf cache get a
	assert_status 0
	[ "$output" = 'SECRET a' ] || { echo "got: $output" >&2; false; }
}

@test "cache: a database written without a key keeps working once a key file is configured" {
	cache set p 'plain p'
	cache snapshot
	sealed_conf
	run --separate-stderr scache get p
	assert_status 0
	[ "$output" = 'plain p' ] || { echo "p: $output" >&2; false; }
	scache set s 'SECRET s'
	same "key ids of p and s" "|$(key_id k.key)" \
		"$(sql "SELECT group_concat(coalesce(key_id, ''), '|') FROM (SELECT key_id FROM cache_log WHERE op = 1 ORDER BY seq)")"
	run scache get s
	[ "$output" = 'SECRET s' ] || { echo "s: $output" >&2; false; }
	run --separate-stderr cache get p
	assert_status 2
	assert_stderr_has "no encryption key file is configured"
}

@test "cache stats: shows what a running responder published, not a stopped one's" {
	cache set k v >/dev/null
	now=$(now_ms)
	sql "INSERT INTO stats VALUES ('resync-fcgi/1@a', 1, $now,
	       '{\"server\":{\"requests\":{\"accepted\":42}},\"cache\":{\"entries\":7,\"hits\":5,\"misses\":1,\"hit_rate\":0.8333}}');
	     INSERT INTO stats VALUES ('resync-fcgi/2@b', 2, $((now - 60000)), '{}');"
	run cache stats
	[ "$status" -eq 0 ]
	[[ "$output" == *"responder    resync-fcgi/1@a (pid 1): 7 entries, 5 hits, 1 misses, hit rate 83.3%, 42 requests"* ]]
	[[ "$output" != *"resync-fcgi/2@b"* ]]
	run rctl --db "$BATS_TEST_TMPDIR/t.db" --json cache stats
	[ "$(jq -c '[.responders[].origin]' <<<"$output")" = '["resync-fcgi/1@a"]' ]
	[ "$(jq '.responders[0].stats.cache.hits' <<<"$output")" = 5 ]
}

@test "cache stats: no responder: an empty responders list" {
	cache set k v >/dev/null
	run rctl --db "$BATS_TEST_TMPDIR/t.db" --json cache stats
	[ "$status" -eq 0 ]
	[ "$(jq -c .responders <<<"$output")" = '[]' ]
}
