#!/usr/bin/env bats
# API keys through nginx: roles, expiry, rotation with its grace period
# (and, as issue 6 lands, JWT, CORS, rate limits, idempotency).

load helpers

# key_conf NAME KEY ROLE [K=V ...]: a [key NAME] with the hash of KEY.
key_conf() {
	local name=$1 key=$2 role=$3
	shift 3
	local kv=("key $name.hash=$(sha256 "$key")" "key $name.role=$role")
	for a in "$@"; do kv+=("key $name.$a"); done
	rs_conf "${kv[@]}"
}

@test "keys: a rotated key works in its grace period, with a Warning saying until when" {
	OLD=$(rand_hex 32)
	rotated=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
	until=$(date -u -d "$rotated + 7 days" +%Y-%m-%dT%H:%M:%S)
	key_conf old "$OLD" viewer "rotated=$rotated"
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $OLD"
	assert_code 200
	assert_header_matches Warning "^299 resync \"this API key was rotated; it stops working at $until"
	grep -q 'rotated key old used in its grace period' "$T/resync.log"
	# a key not rotated has no Warning
	req_viewer GET /api/cache/stats
	assert_code 200
	assert_no_header Warning
}

@test "keys: a rotated key past its grace, and an expired key, are 401 like any unknown key" {
	OLD=$(rand_hex 32) GONE=$(rand_hex 32)
	key_conf old "$OLD" admin "rotated=2020-01-01"
	key_conf gone "$GONE" admin "expires=2020-01-01"
	rs_conf auth.key_grace=7d
	rs_start
	req GET /api/status -H "X-API-Key: $OLD"
	assert_error 401 unauthorized
	assert_output_lacks rotated
	req GET /api/status -H "Authorization: Bearer $GONE"
	assert_error 401 unauthorized
	grep -q 'key old was rotated and its grace is over' "$T/resync.log"
}

@test "keys: [auth] key_grace = 0 retires a rotated key at once" {
	OLD=$(rand_hex 32)
	key_conf old "$OLD" viewer "rotated=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)"
	rs_conf auth.key_grace=0
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $OLD"
	assert_error 401 unauthorized
}

@test "keys: resyncctl key generate makes a key resync-fcgi accepts, with its role" {
	out=$(rctl -q key generate --role operator ops)
	NEW=$(head -1 <<<"$out")
	rs_conf "key ops.hash=$(sed -n 's/^hash = //p' <<<"$out")" "key ops.role=operator"
	rs_start
	req GET /api/cache/stats -H "X-API-Key: $NEW"
	assert_code 200
	req GET /api/status -H "X-API-Key: $NEW"
	assert_error 403 forbidden
}

# ---- JWT bearer tokens ------------------------------------------------------

b64url() {
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# jwt PAYLOAD [HEADER] [SECRET]: an HS256 token, signed with openssl.
jwt() {
	local h p s
	h=$(printf %s "${2:-{\"alg\":\"HS256\",\"typ\":\"JWT\"}}" | b64url)
	p=$(printf %s "$1" | b64url)
	s=$(printf %s "$h.$p" | openssl dgst -sha256 -hmac "${3:-$SECRET}" -binary | b64url)
	echo "$h.$p.$s"
}

jwt_start() {
	command -v openssl >/dev/null || skip "openssl is not installed"
	SECRET=$(rand_hex 32)
	NOW=$(date +%s)
	rs_conf "auth.jwt_secret=$SECRET" auth.jwt_issuer=https://idp.example.com \
		auth.jwt_audience=resync "$@"
	rs_start
}

claims() {
	printf '{"iss":"https://idp.example.com","aud":"resync","sub":"alice","exp":%s%s}' \
		"$((NOW + 300))" "$1"
}

@test "JWT: a valid token's role claim is the role; the subject names it in the access log" {
	jwt_start
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_code 200
	req GET /api/status -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_error 403 forbidden
	req GET /api/status -H "Authorization: Bearer $(jwt "$(claims ',"role":"admin"')")"
	assert_code 200
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims)")"
	assert_error 403 forbidden
	grep -q '"key":"jwt:alice"' "$T/access.log"
}

@test "JWT: bad signature, expired, not yet valid, wrong issuer or audience, alg none: one 401 for all" {
	jwt_start
	bad=(
		"$(jwt "$(claims ',"role":"admin"')" '' wrong-secret)"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"resync\",\"exp\":$((NOW - 120)),\"role\":\"admin\"}")"
		"$(jwt "$(claims ",\"nbf\":$((NOW + 600)),\"role\":\"admin\"")")"
		"$(jwt "{\"iss\":\"https://evil.example.com\",\"aud\":\"resync\",\"exp\":$((NOW + 300)),\"role\":\"admin\"}")"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"other\",\"exp\":$((NOW + 300)),\"role\":\"admin\"}")"
		"$(jwt "{\"iss\":\"https://idp.example.com\",\"aud\":\"resync\",\"role\":\"admin\"}")"
		"$(printf %s '{"alg":"none","typ":"JWT"}' | b64url).$(claims ',"role":"admin"' | b64url)."
	)
	for t in "${bad[@]}"; do
		req GET /api/status -H "Authorization: Bearer $t"
		assert_error 401 unauthorized
		assert_output_has '"message":"authentication required"'
	done
	for why in "bad signature" expired "not yet valid" "wrong issuer" "wrong audience" "no expiry"; do
		grep -q "JWT refused from 127.0.0.1: $why" "$T/resync.log" ||
			{ echo "no log line for: $why" >&2; false; }
	done
}

@test "JWT: without [auth] jwt_secret a token is just an unknown key" {
	SECRET=$(rand_hex 32) NOW=$(date +%s)
	rs_start
	req GET /api/cache/stats -H "Authorization: Bearer $(jwt "$(claims ',"role":"viewer"')")"
	assert_error 401 unauthorized
}
