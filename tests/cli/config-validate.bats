#!/usr/bin/env bats
# resyncctl config-validate, as a user and a CI job run it: what it reports
# (file:line, severity, section, key, message), in which format, and with
# which exit status.  Line numbers in the assertions count from the first
# line of each here-document.

load helpers

teardown() {
	# The read-only test leaves a directory bats could not clean up.
	chmod -R u+w "$BATS_TEST_TMPDIR" 2>/dev/null || true
}

# policy FILE WHERE SUBJECT: the rule reported at WHERE ("p.conf:3") about
# SUBJECT ("[log] level: debug logging") is an error in production and only
# a warning in development.
policy() {
	run rctl config-validate --environment production "$1"
	assert_status 1
	assert_output_has "$2: error: $3"
	run rctl config-validate --environment development "$1"
	assert_status 0
	assert_output_has "$2: warning: $3"
	assert_output_lacks "$2: error: $3"
}

# ---- verdicts and exit status ----------------------------------------------

@test "config-validate: a file without problems exits 0 with an OK summary" {
	clean_conf c.conf
	run rctl config-validate c.conf
	assert_status 0
	[ "$output" = "c.conf: OK (environment development)" ] ||
		{ echo "expected only the OK summary, got: $output" >&2; false; }
}

@test "config-validate: warnings alone exit 0 and are counted in the summary" {
	cp "$FIXTURES/good.conf" .
	run rctl config-validate good.conf
	assert_status 0
	assert_output_has "good.conf: warning: [audit] key_file: not set" \
		"good.conf: 0 errors, 1 warning (environment development)"
}

@test "config-validate: errors exit 1 and every one is reported with file:line" {
	cp "$FIXTURES/bad.conf" .
	run rctl config-validate bad.conf
	assert_status 1
	assert_output_has \
		"bad.conf:4: error: [cache] ttl: invalid duration '5': missing unit" \
		"bad.conf:7: error: [pool] max_size: max_size (2) is smaller than min_size (3)" \
		"bad.conf: 2 errors, 1 warning (environment development)"
}

@test "config-validate: -q prints nothing for a valid file" {
	clean_conf c.conf
	run rctl -q config-validate c.conf
	assert_status 0
	assert_empty "$output"
}

@test "config-validate: -q still prints the problems and summary of an invalid file" {
	cp "$FIXTURES/bad.conf" .
	run rctl config-validate -q bad.conf
	assert_status 1
	assert_output_has "bad.conf:4: error:" "bad.conf: 2 errors, 1 warning"
}

@test "config-validate: --strict makes a file with only warnings exit 1" {
	cp "$FIXTURES/good.conf" .
	run rctl config-validate --strict good.conf
	assert_status 1
	assert_output_has "good.conf: warning: [audit] key_file: not set"
	run rctl config-validate -s good.conf
	assert_status 1
}

@test "config-validate: --strict accepts a file without warnings" {
	clean_conf c.conf
	run rctl config-validate --strict c.conf
	assert_status 0
	assert_output_has "c.conf: OK"
}

# ---- syntax -------------------------------------------------------------------

@test "config-validate: a section header without ']' is a syntax error" {
	conf x.conf <<-'EOF'
	# comment
	[cache
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: malformed section header: missing ']'"
}

@test "config-validate: a line without '=' is a syntax error" {
	conf x.conf <<-'EOF'
	[cache]
	ttl 5m
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: expected 'key = value' or '[section]'"
}

@test "config-validate: a key before any section is an error" {
	conf x.conf <<-'EOF'
	ttl = 5m
	[cache]
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: ttl: key outside any section"
}

@test "config-validate: an unterminated quote is a syntax error" {
	conf x.conf <<-'EOF'
	[auth]
	jwt_issuer = "https://sso.example.com
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: unterminated quoted string"
}

@test "config-validate: a key name that is not lower_snake_case is a syntax error" {
	conf x.conf <<-'EOF'
	[cache]
	Max-Entries = 10
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: invalid key name (keys are lower_snake_case)"
}

@test "config-validate: every problem of a file is reported in one run" {
	conf x.conf <<-'EOF'
	[cache
	novalue
	[cache]
	ttl = 5
	num_shards = 3
	[log]
	level = loud
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error:" "x.conf:2: error:" "x.conf:4: error:" \
		"x.conf:5: error:" "x.conf:7: error:" \
		"x.conf: 5 errors, 1 warning (environment development)"
}

@test "config-validate: keys after a malformed section header are not put in the previous section" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 5m
	[pool
	min_size = 3
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: malformed section header: missing ']'"
	assert_output_lacks "[cache] min_size"
	assert_output_has "x.conf: 1 error,"
}

@test "config-validate: comments, quoting, escapes and lists are understood" {
	clean_conf c.conf
	conf x.conf <<-'EOF'
	; a comment
	[server]   # a comment after a header
	listen = 127.0.0.1:9000   # a trailing comment
	[auth]
	jwt_issuer = "a \"quoted\" # value"  ; another comment
	jwt_audience = 'lit\eral'
	[log]
	output = /var/log/resync#1.log
	[cors]
	allowed_headers = "X-A", 'X-B', X-C
	[audit]
	key_file = audit.key
	EOF
	run rctl config-validate --print x.conf
	assert_status 0
	assert_output_has "x.conf: OK" \
		"listen = 127.0.0.1:9000" \
		'jwt_issuer = "a \"quoted\" # value"' \
		'jwt_audience = "lit\\eral"' \
		'output = "/var/log/resync#1.log"' \
		"allowed_headers = X-A, X-B, X-C"
}

# ---- unknown sections and keys ------------------------------------------------

@test "config-validate: an unknown section gets a did-you-mean hint" {
	conf x.conf <<-'EOF'
	[caches]
	ttl = 5m
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: [caches]: unknown section (did you mean [cache]?)"
}

@test "config-validate: keys below an unknown section are not reported one by one" {
	conf x.conf <<-'EOF'
	[frobnicator]
	ttl = 5m
	bogus = 1
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: [frobnicator]: unknown section"
	assert_output_lacks "did you mean" "x.conf:2:" "x.conf:3:"
}

@test "config-validate: two letters swapped still get a did-you-mean hint" {
	conf x.conf <<-'EOF'
	[cahce]
	[log]
	level = debgu
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: [cahce]: unknown section (did you mean [cache]?)" \
		"x.conf:3: error: [log] level: unknown value 'debgu' (did you mean 'debug'?"
}

@test "config-validate: an unknown key gets a did-you-mean hint" {
	conf x.conf <<-'EOF'
	[cache]
	tll = 5m
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] tll: unknown key (did you mean 'ttl'?)"
}

@test "config-validate: an unknown key far from every known one gets no hint" {
	conf x.conf <<-'EOF'
	[pool]
	colour = blue
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [pool] colour: unknown key"
	assert_output_lacks "did you mean"
}

@test "config-validate: KEY_file is only accepted for secret keys" {
	conf x.conf <<-'EOF'
	[cache]
	ttl_file = ttl.txt
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] ttl_file: unknown key"
}

# ---- values against their types -------------------------------------------------

@test "config-validate: an integer key refuses a word" {
	conf x.conf <<-'EOF'
	[cache]
	max_entries = lots
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] max_entries: invalid integer 'lots': expected an integer"
}

@test "config-validate: a boolean key refuses anything but true/false/yes/no/on/off/1/0" {
	conf x.conf <<-'EOF'
	[ratelimit]
	enabled = maybe
	[audit]
	syslog = Off
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [ratelimit] enabled: invalid boolean 'maybe': expected true or false"
	assert_output_lacks "x.conf:4:"
}

@test "config-validate: a duration without its unit is refused" {
	conf x.conf <<-'EOF'
	[cache]
	cleanup_interval = 30
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] cleanup_interval: invalid duration '30': missing unit (use ms, s, m, h or d, e.g. 30s)"
}

@test "config-validate: a size with an unknown unit is refused" {
	conf x.conf <<-'EOF'
	[cache]
	max_memory = 12XB
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] max_memory: invalid size '12XB': unknown unit"
}

@test "config-validate: durations add up and sizes are binary multiples" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 1h30m
	max_memory = 1GB
	cleanup_interval = 250ms
	EOF
	run rctl --json config-validate --print x.conf
	assert_status 0
	assert_jq '.files[0].effective[] | select(.section == "cache") | .keys |
		.ttl.value == 5400000 and .ttl.unit == "ms" and
		.max_memory.value == 1073741824 and .max_memory.unit == "bytes" and
		.cleanup_interval.value == 250'
}

@test "config-validate: an enum value near a valid one gets a suggestion and the list" {
	conf x.conf <<-'EOF'
	[log]
	level = debg
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [log] level: unknown value 'debg' (did you mean 'debug'? one of: debug, info, notice, warning, error)"
}

@test "config-validate: a url must be http:// or https://" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = ftp://hwa.example.com
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [upstream hwa] url: invalid url 'ftp://hwa.example.com': expected an http:// or https:// URL"
}

@test "config-validate: a url with a user name or a bad port is refused" {
	conf x.conf <<-'EOF'
	[upstream a]
	url = https://resync@hwa.example.com
	[upstream b]
	url = https://hwa.example.com:99999
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [upstream a] url: invalid url '<redacted>@hwa.example.com': credentials in the URL; use username and password_file" \
		"x.conf:4: error: [upstream b] url: invalid url 'https://hwa.example.com:99999': URL port out of range (1-65535)"
}

@test "config-validate: a url with user:password is refused as credentials, without echoing the password" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://resync:Pa55-in-url@hwa.example.com
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [upstream hwa] url:" "credentials in the URL"
	assert_output_lacks "Pa55-in-url"
}

@test "config-validate: a regex key refuses an expression that does not compile" {
	conf x.conf <<-'EOF'
	[server]
	request_id_pattern = ([a-
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [server] request_id_pattern: invalid regular expression '([a-'"
}

@test "config-validate: every list item must match the key's pattern" {
	conf x.conf <<-'EOF'
	[cors]
	allowed_origins = https://app.example.com, ftp://files.example.com
	allowed_methods = GET, post
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cors] allowed_origins: invalid list item 'ftp://files.example.com'" \
		"x.conf:3: error: [cors] allowed_methods: invalid list item 'post'"
}

@test "config-validate: an empty list item is refused" {
	conf x.conf <<-'EOF'
	[cors]
	allowed_methods = GET,,POST
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cors] allowed_methods: invalid list 'GET,,POST': empty list item"
}

@test "config-validate: a string must match the key's pattern" {
	conf x.conf <<-'EOF'
	[key ops]
	hash = ABC123
	role = viewer
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [key ops] hash: invalid value 'ABC123' (must match ^[0-9a-f]{64}\$)"
}

@test "config-validate: a value below the key's minimum is too small" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 500ms
	[ratelimit]
	burst = 0
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] ttl: '500ms' is too small (minimum 1s)" \
		"x.conf:4: error: [ratelimit] burst: '0' is too small (minimum 1)"
}

@test "config-validate: a value above the key's maximum is too large" {
	conf x.conf <<-'EOF'
	[cache]
	max_memory = 2TB
	[retry]
	attempts = 11
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] max_memory: '2TB' is too large (maximum 1TB)" \
		"x.conf:4: error: [retry] attempts: '11' is too large (maximum 10)"
}

# ---- sections -----------------------------------------------------------------

@test "config-validate: a named section without a name is an error" {
	conf x.conf <<-'EOF'
	[upstream]
	url = https://hwa.example.com
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: [upstream]: section needs a name, e.g. [upstream hwa]"
}

@test "config-validate: an unnamed section with a name is an error" {
	conf x.conf <<-'EOF'
	[pool main]
	min_size = 3
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:1: error: [pool]: section takes no name ('main')"
}

@test "config-validate: a named section without a required key is reported at its header" {
	conf x.conf <<-'EOF'
	# comment
	[key ops-team]
	role = viewer
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [key ops-team]: missing required key 'hash'"
}

# ---- includes -------------------------------------------------------------------

@test "config-validate: a relative include resolves against the including file, textually" {
	mkdir -p etc/conf.d
	conf etc/resync.conf <<-'EOF'
	[cache]
	include = conf.d/cache.conf
	max_entries = 1000
	EOF
	conf etc/conf.d/cache.conf <<-'EOF'
	ttl = 10m
	[pool]
	min_size = 2
	EOF
	mkdir elsewhere && cd elsewhere
	run rctl config-validate --print ../etc/resync.conf
	assert_status 0
	assert_output_matches '^ttl = 10m +# \.\./etc/conf\.d/cache\.conf:1$'
	assert_output_matches '^min_size = 2 +# \.\./etc/conf\.d/cache\.conf:3$'
	assert_output_matches '^max_entries = 1000 +# \.\./etc/resync\.conf:3$'
}

@test "config-validate: -v lists the included files, in text and in JSON" {
	conf main.conf <<-'EOF'
	include = conf.d/*.conf
	EOF
	conf conf.d/10-cache.conf <<-'EOF'
	[cache]
	EOF
	conf conf.d/20-log.conf <<-'EOF'
	[log]
	EOF
	run rctl -v config-validate main.conf
	assert_status 0
	assert_output_has "main.conf: included conf.d/10-cache.conf" "main.conf: included conf.d/20-log.conf"
	run rctl config-validate main.conf
	assert_output_lacks "included"
	run rctl --json config-validate main.conf
	assert_status 0
	[ "$(jq -c '.files[0].includes' <<<"$output")" = '["conf.d/10-cache.conf","conf.d/20-log.conf"]' ]
}

@test "config-validate: a glob include reads every match and reports problems in the included file" {
	conf main.conf <<-'EOF'
	include = conf.d/*.conf
	include = nothing/*.conf
	EOF
	conf conf.d/10-cache.conf <<-'EOF'
	[cache]
	ttl = 10m
	EOF
	conf conf.d/20-log.conf <<-'EOF'
	[log]
	level = loud
	EOF
	conf conf.d/ignored.txt <<-'EOF'
	garbage
	EOF
	run rctl config-validate --print main.conf
	assert_status 1
	assert_output_matches '^ttl = 10m +# conf\.d/10-cache\.conf:2$'
	assert_output_has "conf.d/20-log.conf:2: error: [log] level: unknown value 'loud'"
	assert_output_has "main.conf: 1 error, 1 warning"
	assert_output_lacks "ignored.txt" "nothing/"
}

@test "config-validate: a missing include is an error at the include line" {
	conf sub/main.conf <<-'EOF'
	[cache]
	include = missing.conf
	EOF
	run rctl config-validate sub/main.conf
	assert_status 1
	assert_output_has "sub/main.conf:2: error: include: cannot open 'sub/missing.conf': No such file or directory"
}

@test "config-validate: an include cycle is an error, not a hang" {
	conf a.conf <<-'EOF'
	include = b.conf
	EOF
	conf b.conf <<-'EOF'
	# b includes a again
	include = a.conf
	EOF
	run timeout 10 "$RESYNCCTL" config-validate a.conf
	assert_status 1
	assert_output_has "b.conf:2: error: include:" "(include cycle)"
}

@test "config-validate: a file including itself is an include cycle" {
	conf self.conf <<-'EOF'
	include = self.conf
	EOF
	run timeout 10 "$RESYNCCTL" config-validate self.conf
	assert_status 1
	assert_output_has "self.conf:1: error: include: 'self.conf' includes itself (include cycle)"
}

@test "config-validate: including a directory is an error at the include line" {
	mkdir conf.d
	conf main.conf <<-'EOF'
	include = conf.d
	EOF
	run rctl config-validate main.conf
	assert_status 1
	assert_output_has "main.conf:1: error: include: 'conf.d' is a directory"
}

# ---- duplicates and secrets ------------------------------------------------------

@test "config-validate: a key set twice is a warning pointing at the earlier line" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 5m
	ttl = 6m
	EOF
	run rctl config-validate --print x.conf
	assert_status 0
	assert_output_has "x.conf:3: warning: [cache] ttl: set again; overrides the value from line 2"
	assert_output_matches '^ttl = 6m +# x\.conf:3$'
}

@test "config-validate: setting both KEY and KEY_file is an error" {
	secret jwt.secret "0123456789abcdef0123456789abcdef"
	conf x.conf <<-'EOF'
	[auth]
	jwt_secret = 0123456789abcdef0123456789abcdef
	jwt_secret_file = jwt.secret
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [auth] jwt_secret: both jwt_secret and jwt_secret_file are set (line 2 sets jwt_secret)"
}

@test "config-validate: a secret file that does not exist is an error" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	username = resync
	password_file = secrets/none
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:4: error: [upstream hwa] password: cannot read secret file 'secrets/none': No such file or directory"
}

@test "config-validate: an empty secret file is an error" {
	: >empty.secret
	chmod 600 empty.secret
	conf x.conf <<-'EOF'
	[auth]
	jwt_secret_file = empty.secret
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [auth] jwt_secret: secret file 'empty.secret' is empty"
}

@test "config-validate: a ca_file that cannot be read is an error" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	ca_file = certs/ca.pem
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [upstream hwa] ca_file: cannot read 'certs/ca.pem': No such file or directory"
}

# ---- cross-field rules ------------------------------------------------------------

@test "config-validate: pool max_size below min_size is an error" {
	conf x.conf <<-'EOF'
	[pool]
	min_size = 10
	max_size = 5
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [pool] max_size: max_size (5) is smaller than min_size (10)"
}

@test "config-validate: pool max_lifetime not longer than idle_timeout is an error" {
	conf x.conf <<-'EOF'
	[pool]
	idle_timeout = 60s
	max_lifetime = 1m
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [pool] max_lifetime: max_lifetime (1m) must be longer than idle_timeout (1m)"
}

@test "config-validate: a health check interval not shorter than idle_timeout is a warning" {
	conf x.conf <<-'EOF'
	[pool]
	idle_timeout = 20s
	max_lifetime = 1h
	health_check_interval = 30s
	EOF
	run rctl config-validate x.conf
	assert_status 0
	assert_output_has "x.conf:4: warning: [pool] health_check_interval: health_check_interval (30s) is not shorter than idle_timeout (20s)"
}

@test "config-validate: num_shards must be a power of two" {
	conf x.conf <<-'EOF'
	[cache]
	num_shards = 24
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] num_shards: 24 is not a power of two (use 16, 32, 64 ...)"
}

@test "config-validate: num_shards larger than max_entries is an error" {
	conf x.conf <<-'EOF'
	[cache]
	num_shards = 64
	max_entries = 32
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:2: error: [cache] num_shards: num_shards (64) is larger than max_entries (32)"
}

@test "config-validate: a max_memory too small for max_entries is a warning" {
	conf x.conf <<-'EOF'
	[cache]
	max_entries = 1000000
	max_memory = 64MB
	EOF
	run rctl config-validate x.conf
	assert_status 0
	assert_output_has "x.conf:3: warning: [cache] max_memory: max_memory (64MB) cannot hold max_entries (1000000) entries of even 128 bytes"
}

@test "config-validate: a retry cap below its base is an error" {
	conf x.conf <<-'EOF'
	[retry]
	base = 5s
	cap = 2s
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [retry] cap: cap (2s) is smaller than base (5s)"
}

@test "config-validate: a snapshot_retention shorter than snapshot_interval is a warning" {
	conf x.conf <<-'EOF'
	[persistence]
	snapshot_interval = 1h
	snapshot_retention = 30m
	EOF
	run rctl config-validate x.conf
	assert_status 0
	assert_output_has "x.conf:3: warning: [persistence] snapshot_retention: snapshot_retention (30m) is shorter than snapshot_interval (1h)"
}

@test "config-validate: a breaker bound to an unknown upstream is an error with a hint" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com:31116
	[breaker hwa]
	upstream = hwb
	[breaker other]
	upstream = zzz
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:4: error: [breaker hwa] upstream: no [upstream hwb] is configured (did you mean 'hwa'?)"
	assert_output_has "x.conf:6: error: [breaker other] upstream: no [upstream zzz] is configured"
	assert_count 1 "did you mean"
}

@test "config-validate: two API keys with the same hash are an error" {
	conf x.conf <<-'EOF'
	[key a]
	hash = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	role = admin
	[key b]
	hash = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	role = viewer
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:5: error: [key b] hash: same hash as [key a]: each key must be distinct"
	assert_output_lacks "x.conf:2: error"
}

@test "config-validate: tls_cert without tls_key is an error, and the reverse" {
	: >client.pem
	secret client.key "key"
	conf x.conf <<-'EOF'
	[upstream a]
	url = https://a.example.com
	tls_cert = client.pem
	[upstream b]
	url = https://b.example.com
	tls_key = client.key
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [upstream a] tls_cert: tls_cert is set without tls_key" \
		"x.conf:6: error: [upstream b] tls_key: tls_key is set without tls_cert"
}

@test "config-validate: a password without a username is an error" {
	secret hwa.password "pw"
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	password_file = hwa.password
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "x.conf:3: error: [upstream hwa] password: password is set without username"
}

@test "config-validate: '*' listed with other CORS origins is a warning" {
	conf x.conf <<-'EOF'
	[cors]
	allowed_origins = *, https://app.example.com
	EOF
	run rctl config-validate x.conf
	assert_status 0
	assert_output_has "x.conf:2: warning: [cors] allowed_origins: '*' allows every origin"
}

# ---- environment rules: errors in production, warnings in development ---------------

@test "config-validate: wildcard CORS with credentials is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[cors]
	allowed_origins = *
	allow_credentials = true
	EOF
	policy p.conf p.conf:3 "[cors] allow_credentials: wildcard origin '*' together with allow_credentials = true"
}

@test "config-validate: an inline secret is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	username = resync
	password = hunter2
	EOF
	policy p.conf p.conf:4 "[upstream hwa] password: secret written inline; use password_file or RESYNC_UPSTREAM_HWA_PASSWORD"
}

@test "config-validate: a secret file with mode 644 is an error in production, a warning in development" {
	secret secrets/hwa.password "pw" 644
	conf p.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	username = resync
	password_file = secrets/hwa.password
	EOF
	policy p.conf p.conf:4 "[upstream hwa] password: secret file 'secrets/hwa.password' is accessible by group or others (mode 0644); chmod 600 it"
}

@test "config-validate: an audit key_file readable by group is an error in every environment, as resync-fcgi refuses it" {
	secret audit.key "$(printf 'ab%.0s' $(seq 32))" 640
	conf p.conf <<-'EOF'
	[audit]
	key_file = audit.key
	EOF
	for env in production development; do
		run rctl config-validate --environment $env p.conf
		assert_status 1
		assert_output_has "p.conf:2: error: [audit] key_file: 'audit.key' is readable by group (mode 0640); chmod 600 it"
	done
}

@test "config-validate: an audit key_file that is not a keyring is an error naming the line" {
	printf '%s\n' "$(printf 'ab%.0s' $(seq 32))" "not-a-key" >k.key
	chmod 600 k.key
	conf p.conf <<-'EOF'
	[audit]
	key_file = k.key
	EOF
	run rctl config-validate p.conf
	assert_status 1
	assert_output_has "p.conf:2: error: [audit] key_file:" "line 2"
}

@test "config-validate: verify_tls = false is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	verify_tls = false
	EOF
	policy p.conf p.conf:3 "[upstream hwa] verify_tls: TLS verification is off"
}

@test "config-validate: a password over plain http is an error in production, a warning in development" {
	secret hwa.password "pw"
	conf p.conf <<-'EOF'
	[upstream hwa]
	url = http://hwa.example.com
	username = resync
	password_file = hwa.password
	EOF
	policy p.conf p.conf:2 "[upstream hwa] url: credentials would be sent over plain http://"
}

@test "config-validate: a disabled audit log is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[audit]
	enabled = false
	EOF
	policy p.conf p.conf:2 "[audit] enabled: the audit log is off"
}

@test "config-validate: a missing audit key_file is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[cache]
	ttl = 5m
	EOF
	policy p.conf p.conf "[audit] key_file: not set: audit records are chained with plain SHA-256"
}

@test "config-validate: debug logging is an error in production, a warning in development" {
	conf p.conf <<-'EOF'
	[log]
	level = debug
	EOF
	policy p.conf p.conf:2 "[log] level: debug logging can write request details and secrets to the log"
}

@test "config-validate: a weak jwt secret is an error in production, a warning in development" {
	secret jwt.secret "too-short"
	conf p.conf <<-'EOF'
	[auth]
	jwt_secret_file = jwt.secret
	EOF
	policy p.conf p.conf:2 "[auth] jwt_secret: weak secret: 9 bytes, at least 32 needed"
}

@test "config-validate: the test environment only warns, like development" {
	conf p.conf <<-'EOF'
	[server]
	environment = test
	[log]
	level = debug
	EOF
	run rctl config-validate p.conf
	assert_status 0
	assert_output_has "p.conf:4: warning: [log] level: debug logging" \
		"p.conf: 0 errors, 2 warnings (environment test)"
}

@test "config-validate: [server] environment = production applies the production rules" {
	conf p.conf <<-'EOF'
	[server]
	environment = production
	[log]
	level = debug
	EOF
	run rctl config-validate p.conf
	assert_status 1
	assert_output_has "p.conf:4: error: [log] level: debug logging" \
		"(environment production)"
}

@test "config-validate: --environment production checks a development file as production" {
	conf p.conf <<-'EOF'
	[server]
	environment = development
	[upstream hwa]
	url = https://hwa.example.com
	verify_tls = off
	EOF
	run rctl config-validate p.conf
	assert_status 0
	assert_output_has "p.conf:5: warning: [upstream hwa] verify_tls:" "(environment development)"
	run rctl config-validate -e production p.conf
	assert_status 1
	assert_output_has "p.conf:5: error: [upstream hwa] verify_tls:" "(environment production)"
}

@test "config-validate: --environment development relaxes a production file to warnings" {
	conf p.conf <<-'EOF'
	[server]
	environment = production
	[audit]
	enabled = no
	EOF
	run rctl config-validate p.conf
	assert_status 1
	assert_output_has "p.conf:4: error: [audit] enabled:"
	run rctl config-validate --environment development p.conf
	assert_status 0
	assert_output_has "p.conf:4: warning: [audit] enabled:" \
		"p.conf: 0 errors, 1 warning (environment development)"
}

# ---- formats ------------------------------------------------------------------------

@test "config-validate: --format json reports each file's diagnostics with line numbers" {
	cp "$FIXTURES/bad.conf" .
	run rctl config-validate --format json bad.conf
	assert_status 1
	assert_jq '.valid == false'
	assert_jq '.files | length == 1'
	assert_jq '.files[0] | .file == "bad.conf" and .valid == false and
		.environment == "development" and .errors == 2 and .warnings == 1'
	assert_jq '[.files[0].diagnostics[] | select(.severity == "error") | .line] == [4, 7]'
	assert_jq '.files[0].diagnostics[] | select(.line == 7) |
		.file == "bad.conf" and .section == "pool" and .key == "max_size" and
		.message == "max_size (2) is smaller than min_size (3)"'
	assert_jq '.files[0].diagnostics[] | select(.key == "key_file") |
		.severity == "warning" and .line == null'
}

@test "config-validate: --format json marks a valid file valid" {
	cp "$FIXTURES/good.conf" .
	run rctl config-validate -f json good.conf
	assert_status 0
	assert_jq '.valid == true and .files[0].valid == true and .files[0].errors == 0'
}

@test "config-validate: the global --json flag means --format json" {
	cp "$FIXTURES/bad.conf" .
	run rctl --json config-validate bad.conf
	assert_status 1
	assert_jq '.files[0].errors == 2'
	run rctl config-validate bad.conf --json
	assert_status 1
	assert_jq '.files[0].errors == 2'
}

@test "config-validate: an explicit --format wins over --json" {
	cp "$FIXTURES/bad.conf" .
	run rctl --json config-validate --format text bad.conf
	assert_status 1
	assert_output_has "bad.conf:4: error: [cache] ttl:"
}

@test "config-validate: --format json names the environment variable of a bad override" {
	clean_conf c.conf
	RESYNC_CACHE_TTL=10x run rctl config-validate --format json c.conf
	assert_status 1
	assert_jq '.files[0].diagnostics[0] | .env == "RESYNC_CACHE_TTL" and
		.file == null and .line == null and .section == "cache" and .key == "ttl"'
}

@test "config-validate: --format json reports an unreadable file in the document and exits 2" {
	cp "$FIXTURES/good.conf" .
	run --separate-stderr rctl config-validate --format json missing.conf good.conf
	assert_status 2
	assert_jq '.valid == false'
	assert_jq '.files[0] | .file == "missing.conf" and (.error | test("cannot open"))'
	assert_jq '.files[1] | .file == "good.conf" and .valid == true'
	assert_stderr_has "resyncctl: config-validate: cannot open 'missing.conf': No such file or directory"
}

@test "config-validate: --format github prints workflow annotations" {
	cp "$FIXTURES/bad.conf" .
	run rctl config-validate --format github bad.conf
	assert_status 1
	assert_output_has \
		"::error file=bad.conf,line=4,title=[cache] ttl::invalid duration '5': missing unit" \
		"::error file=bad.conf,line=7,title=[pool] max_size::max_size (2) is smaller than min_size (3)" \
		"::warning file=bad.conf,title=[audit] key_file::not set:"
	assert_output_lacks "bad.conf:4: error"
}

@test "config-validate: --format github escapes ':' and ',' in properties" {
	mkdir 'a,b:c'
	clean_conf 'a,b:c/x.conf'
	printf '[cache]\nttl = 5\n' >>'a,b:c/x.conf'
	run rctl config-validate --format github 'a,b:c/x.conf'
	assert_status 1
	assert_output_has "::error file=a%2Cb%3Ac/x.conf,line=4,title=[cache] ttl::invalid duration '5'"
}

# ---- --print -------------------------------------------------------------------------

@test "config-validate: --print shows where each value came from" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 10m
	EOF
	RESYNC_CACHE_MAX_ENTRIES=1000 run rctl config-validate --print x.conf
	assert_status 0
	assert_output_has "# effective configuration of x.conf (environment development)"
	assert_output_matches '^\[cache\]$'
	assert_output_matches '^ttl = 10m +# x\.conf:2$'
	assert_output_matches '^max_entries = 1000 +# env RESYNC_CACHE_MAX_ENTRIES$'
	assert_output_matches '^num_shards = 32 +# default$'
	assert_output_has "# listen is not set"
}

@test "config-validate: --print marks a rejected value invalid" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = forever
	EOF
	run rctl config-validate --print x.conf
	assert_status 1
	assert_output_matches '^ttl = forever +# x\.conf:2 \(invalid\)$'
}

@test "config-validate: secrets never appear in any output" {
	secret secrets/jwt.secret "jwt-S3CRET-value"
	secret secrets/hwa.password "hwa-S3CRET-value" 644
	conf x.conf <<-'EOF'
	[server]
	environment = production
	[auth]
	jwt_secret_file = secrets/jwt.secret
	[upstream hwa]
	url = http://hwa.example.com
	password_file = secrets/hwa.password
	[upstream two]
	url = https://two.example.com
	username = u
	password = "inline-S3CRET-value"
	EOF
	export RESYNC_UPSTREAM_ENV_PASSWORD=env-S3CRET-value
	export RESYNC_UPSTREAM_ENV_URL=https://env.example.com
	for args in "" "--print" "--format json --print" "--format github --print" "-q --strict"; do
		# shellcheck disable=SC2086
		run rctl config-validate $args x.conf
		assert_status 1
		assert_output_lacks "S3CRET"
	done
	run rctl config-validate --print x.conf
	assert_output_matches '^jwt_secret = <redacted> +# from file secrets/jwt\.secret, x\.conf:4$'
	assert_output_matches '^password = <redacted> +# x\.conf:11$'
	assert_output_matches '^password = <redacted> +# env RESYNC_UPSTREAM_ENV_PASSWORD$'
	run rctl config-validate --format json --print x.conf
	assert_jq '[.files[0].effective[] | .keys | (.password, .jwt_secret) | select(. != null) | .value] |
		length == 4 and all(. == "<redacted>")'
}

# ---- standard input and several files -----------------------------------------------------

@test "config-validate: '-' reads standard input, reported as <stdin>" {
	cp "$FIXTURES/bad.conf" .
	run rctl config-validate - <bad.conf
	assert_status 1
	assert_output_has "<stdin>:4: error: [cache] ttl: invalid duration '5'" \
		"<stdin>: 2 errors, 1 warning (environment development)"
}

@test "config-validate: a valid standard input exits 0" {
	cp "$FIXTURES/good.conf" .
	run rctl config-validate - <good.conf
	assert_status 0
	assert_output_has "<stdin>: 0 errors, 1 warning"
}

@test "config-validate: several files are all checked; one bad file makes the run exit 1" {
	cp "$FIXTURES/good.conf" "$FIXTURES/bad.conf" .
	run rctl config-validate good.conf bad.conf
	assert_status 1
	assert_output_has "good.conf: 0 errors, 1 warning (environment development)" \
		"bad.conf:4: error:" "bad.conf: 2 errors, 1 warning (environment development)"
	run rctl config-validate bad.conf good.conf
	assert_status 1
	assert_output_has "good.conf: 0 errors, 1 warning"
}

@test "config-validate: a file and standard input can be checked together" {
	cp "$FIXTURES/good.conf" "$FIXTURES/bad.conf" .
	run rctl config-validate good.conf - <bad.conf
	assert_status 1
	assert_output_has "good.conf: 0 errors" "<stdin>: 2 errors"
}

# ---- exit status 2 -----------------------------------------------------------------------

@test "config-validate: a missing file exits 2 with the reason on stderr" {
	run --separate-stderr rctl config-validate nope.conf
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: config-validate: cannot open 'nope.conf': No such file or directory"
}

@test "config-validate: a directory exits 2" {
	mkdir dir.conf
	run --separate-stderr rctl config-validate dir.conf
	assert_status 2
	assert_stderr_has "resyncctl: config-validate: cannot read 'dir.conf': Is a directory"
}

@test "config-validate: a missing file among good ones exits 2 and the others are still checked" {
	cp "$FIXTURES/good.conf" "$FIXTURES/bad.conf" .
	run rctl config-validate bad.conf nope.conf good.conf
	assert_status 2
	assert_output_has "cannot open 'nope.conf'" "bad.conf: 2 errors" "good.conf: 0 errors"
}

@test "config-validate: an unknown option is a usage error (exit 2)" {
	run --separate-stderr rctl config-validate --frobnicate x.conf
	assert_status 2
	assert_stderr_has "resyncctl: config-validate: unknown option '--frobnicate'"
	assert_stderr_has "Try 'resyncctl config-validate --help'."
}

@test "config-validate: an unknown --format is a usage error (exit 2)" {
	clean_conf c.conf
	run --separate-stderr rctl config-validate --format xml c.conf
	assert_status 2
	assert_empty "$output"
	assert_stderr_has "resyncctl: config-validate: unknown format 'xml' (use text, json or github)"
}

@test "config-validate: an unknown --environment is a usage error (exit 2)" {
	clean_conf c.conf
	run --separate-stderr rctl config-validate --environment staging c.conf
	assert_status 2
	assert_stderr_has "resyncctl: config-validate: unknown environment 'staging' (use development, test or production)"
}

@test "config-validate: '-' given twice is a usage error (exit 2)" {
	run --separate-stderr rctl config-validate - - </dev/null
	assert_status 2
	assert_stderr_has "resyncctl: config-validate: standard input ('-') given twice"
}

@test "config-validate: an option without its argument is a usage error (exit 2)" {
	run --separate-stderr rctl config-validate --format
	assert_status 2
	assert_stderr_has "option '--format' needs an argument (FORMAT)"
	run --separate-stderr rctl config-validate --strict=yes
	assert_status 2
	assert_stderr_has "option '--strict' takes no argument"
}

# ---- environment overrides ------------------------------------------------------------------

@test "config-validate: RESYNC_CACHE_TTL overrides the file" {
	conf x.conf <<-'EOF'
	[cache]
	ttl = 5m
	EOF
	RESYNC_CACHE_TTL=10m run rctl config-validate --print x.conf
	assert_status 0
	assert_output_matches '^ttl = 10m +# env RESYNC_CACHE_TTL$'
}

@test "config-validate: a bad override is reported against its variable" {
	clean_conf c.conf
	RESYNC_CACHE_TTL=10x run rctl config-validate c.conf
	assert_status 1
	assert_output_has "environment RESYNC_CACHE_TTL: error: [cache] ttl: invalid duration '10x': unknown unit"
}

@test "config-validate: RESYNC_UPSTREAM_HWA_URL creates the named section" {
	conf x.conf <<-'EOF'
	[breaker hwa]
	upstream = hwa
	EOF
	run rctl config-validate x.conf
	assert_status 1
	assert_output_has "no [upstream hwa] is configured"
	RESYNC_UPSTREAM_HWA_URL=https://hwa.example.com:31116 run rctl config-validate --print x.conf
	assert_status 0
	assert_output_matches '^\[upstream hwa\]$'
	assert_output_matches '^url = https://hwa\.example\.com:31116 +# env RESYNC_UPSTREAM_HWA_URL$'
}

@test "config-validate: RESYNC_UPSTREAM_HWA_PASSWORD_FILE reads the password from a file" {
	secret hwa.password "from-the-file"
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	username = resync
	EOF
	RESYNC_UPSTREAM_HWA_PASSWORD_FILE=hwa.password run rctl config-validate --print x.conf
	assert_status 0
	assert_output_matches '^password = <redacted> +# from file hwa\.password, env RESYNC_UPSTREAM_HWA_PASSWORD_FILE$'
	assert_output_lacks "from-the-file"
	RESYNC_UPSTREAM_HWA_PASSWORD_FILE=nowhere run rctl config-validate x.conf
	assert_status 1
	assert_output_has "environment RESYNC_UPSTREAM_HWA_PASSWORD_FILE: error: [upstream hwa] password: cannot read secret file 'nowhere'"
}

@test "config-validate: an override of an existing named section does not create a second one" {
	conf x.conf <<-'EOF'
	[upstream hwa]
	url = https://hwa.example.com
	EOF
	RESYNC_UPSTREAM_hwa_USERNAME=resync run rctl config-validate --print x.conf
	assert_status 0
	assert_count 1 "[upstream hwa]"
	assert_output_lacks "missing required key"
	assert_output_matches '^username = resync +# env RESYNC_UPSTREAM_hwa_USERNAME$'
}

@test "config-validate: an unknown RESYNC_ variable is a warning" {
	clean_conf c.conf
	RESYNC_CACHE_TLL=5m run rctl config-validate c.conf
	assert_status 0
	assert_output_has "environment RESYNC_CACHE_TLL: warning: unknown configuration variable, ignored"
	RESYNC_CACHE_TLL=5m run rctl config-validate --strict c.conf
	assert_status 1
}

@test "config-validate: RESYNC_CONFIG is not taken for an override" {
	clean_conf c.conf
	RESYNC_CONFIG=c.conf run rctl config-validate c.conf
	assert_status 0
	assert_output_lacks "RESYNC_CONFIG"
}

# ---- which file -----------------------------------------------------------------------------

@test "config-validate: without FILE it checks the --config file" {
	cp "$FIXTURES/bad.conf" .
	run rctl --config bad.conf config-validate
	assert_status 1
	assert_output_has "bad.conf:4: error:"
	run rctl config-validate -c bad.conf
	assert_status 1
	assert_output_has "bad.conf: 2 errors"
}

@test "config-validate: without FILE or --config it checks \$RESYNC_CONFIG" {
	cp "$FIXTURES/bad.conf" .
	RESYNC_CONFIG="$PWD/bad.conf" run rctl config-validate
	assert_status 1
	assert_output_has "$PWD/bad.conf:4: error:"
}

@test "config-validate: --config wins over \$RESYNC_CONFIG, and FILE over both" {
	cp "$FIXTURES/good.conf" "$FIXTURES/bad.conf" .
	RESYNC_CONFIG=bad.conf run rctl --config good.conf config-validate
	assert_status 0
	assert_output_has "good.conf: 0 errors"
	RESYNC_CONFIG=bad.conf run rctl --config bad.conf config-validate good.conf
	assert_status 0
	assert_output_lacks "bad.conf"
}

@test "config-validate: with neither it checks the installed resync.conf" {
	installed=$(rctl --help | sed -n 's/.*then \(.*resync\/resync\.conf\)).*/\1/p')
	[ -n "$installed" ] || { echo "no installed path in --help" >&2; false; }
	[ ! -e "$installed" ] || skip "$installed exists on this machine"
	run --separate-stderr rctl config-validate
	assert_status 2
	assert_stderr_has "cannot open '$installed'"
}

# ---- the example and side effects -------------------------------------------------------------

@test "config-validate: the example configuration passes in production with its secret files" {
	cp "$RS_TOP_SRCDIR/etc/resync.conf.example" resync.conf
	secret secrets/hwa.password "hwa-password"
	secret secrets/jwt.secret "$(printf '%064d' 7)"
	secret secrets/audit.key "$(printf '%064d' 9)"
	mkdir elsewhere && cd elsewhere
	run rctl config-validate --environment production --strict ../resync.conf
	assert_status 0
	[ "$output" = "../resync.conf: OK (environment production)" ] ||
		{ echo "expected only the OK summary, got: $output" >&2; false; }
}

@test "config-validate: the example configuration without its secret files names each one" {
	cp "$RS_TOP_SRCDIR/etc/resync.conf.example" resync.conf
	run rctl config-validate resync.conf
	assert_status 1
	assert_output_has "cannot read secret file 'secrets/hwa.password'" \
		"cannot read secret file 'secrets/jwt.secret'" \
		"[audit] key_file: cannot open 'secrets/audit.key'"
}

@test "config-validate: writes nothing, even the database it names" {
	secret audit.key "$(printf '%064d' 7)"
	conf x.conf <<-'EOF'
	[persistence]
	db = var/resync.db
	[log]
	output = var/resync.log
	[audit]
	key_file = audit.key
	EOF
	before=$(ls -AlR --time-style=full-iso .)
	chmod -R a-w .
	run rctl config-validate --print x.conf
	assert_status 0
	run rctl config-validate --format json --strict x.conf
	assert_status 0
	chmod -R u+w .
	after=$(ls -AlR --time-style=full-iso .)
	[ "$before" = "$after" ] ||
		{ printf 'files changed:\nbefore:\n%s\nafter:\n%s\n' "$before" "$after" >&2; false; }
}
