#!/usr/bin/env bats
# etc/prometheus/resync-alerts.yml: promtool accepts the rules and passes
# their unit tests (resync-alerts.test.yml), and every metric, label and
# selected label value the rules use is in the /metrics of a real
# resync-fcgi behind nginx.  That way the rules cannot drift from the code.
# The promtool tests skip when promtool (Debian: the prometheus package) is
# not installed.  The drift test needs only the responder.

load helpers

rules() {
	echo "$RS_TOP_SRCDIR/etc/prometheus/resync-alerts.yml"
}

need_promtool() {
	command -v promtool >/dev/null ||
		skip "promtool is not installed (Debian: apt-get install prometheus)"
}

# rule_exprs FILE: the expr fields of a rules file, one-line or block
# scalars (| or >), one line each as written.
rule_exprs() {
	awk '
	block {
		if ($0 ~ /^[ \t]*$/) next
		match($0, /^ */)
		if (ind < 0) ind = RLENGTH
		if (RLENGTH >= ind) { print; next }
		block = 0
	}
	/^[ \t]*(- )?expr:/ {
		v = $0
		sub(/^[ \t]*(- )?expr:[ \t]*/, "", v)
		if (v ~ /^[|>]/) { block = 1; ind = -1 } else print v
	}' "$1"
}

# metric_names FILE: the resync_* names the rules file uses, in exprs and
# annotations (comments left out).
metric_names() {
	grep -v '^[[:space:]]*#' "$1" | grep -oE '\bresync_[a-z0-9_]+' | sort -u
}

# scrape: $metrics, the /metrics of a running responder after requests on
# a few routes, so that the per-route families have samples.
scrape() {
	rs_start
	for _ in 1 2 3; do req GET /api/health/live; done
	req_viewer GET /metrics
	req_viewer GET /metrics
	assert_code 200
	metrics=$output
}

@test "alert rules: promtool check rules accepts resync-alerts.yml" {
	need_promtool
	run promtool check rules "$(rules)"
	assert_status 0
	assert_output_has SUCCESS
}

@test "alert rules: promtool test rules passes resync-alerts.test.yml" {
	need_promtool
	run promtool test rules "$RS_TOP_SRCDIR/etc/prometheus/resync-alerts.test.yml"
	assert_status 0
	assert_output_has SUCCESS
}

@test "alert rules: every metric they use is in the /metrics of a running resync-fcgi" {
	local -a names missing=()
	local n

	mapfile -t names < <(metric_names "$(rules)")
	# A broken extraction must not pass for want of names.
	[ "${#names[@]}" -ge 10 ] ||
		{ echo "found only ${#names[@]} metric names in $(rules): ${names[*]}" >&2; false; }
	# The expressions name their metrics too (not only the annotations).
	[ "$(rule_exprs "$(rules)" | grep -c 'resync_')" -ge 10 ] ||
		{ echo "the expr fields of $(rules) could not be read:" >&2; rule_exprs "$(rules)" >&2; false; }
	scrape
	for n in "${names[@]}"; do
		grep -qE "^$n[{ ]" <<<"$metrics" || missing+=("$n")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		printf 'used in %s but not exported by resync-fcgi:\n' "$(rules)" >&2
		printf '  %s\n' "${missing[@]}" >&2
		false
	fi
}

@test "alert rules: the labels and values their expressions select are in /metrics" {
	local exprs l v op alts missing=() meta='[].[*+?()^$\{}]'

	exprs=$(rule_exprs "$(rules)")
	[ -n "$exprs" ] || { echo "no expr fields found in $(rules)" >&2; false; }
	scrape
	# Labels in by (...) and on (...); job and instance are the scrape's own.
	for l in $(grep -oE '\b(by|on) *\([^)]*\)' <<<"$exprs" | sed 's/.*(//; s/)//; s/,/ /g'); do
		case $l in job | instance) continue ;; esac
		grep -qE "[{,]$l=\"" <<<"$metrics" || missing+=("label $l")
	done
	# Matchers: the label must exist; with = or =~, each literal value
	# (regex alternatives without metacharacters) must be exported, or the
	# alert could never fire.
	while IFS= read -r m; do
		[[ $m =~ ^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)\"(.*)\"$ ]] || continue
		l=${BASH_REMATCH[1]} op=${BASH_REMATCH[2]} v=${BASH_REMATCH[3]}
		case $l in job | instance) continue ;; esac
		grep -qE "[{,]$l=\"" <<<"$metrics" || { missing+=("label $l"); continue; }
		case $op in = | =~) ;; *) continue ;; esac
		IFS='|' read -ra alts <<<"$v"
		for v in "${alts[@]}"; do
			[[ $v =~ $meta ]] && continue
			grep -qF "$l=\"$v\"" <<<"$metrics" || missing+=("$l=\"$v\"")
		done
	done < <(grep -oE '[a-zA-Z_][a-zA-Z0-9_]*(=~|!~|!=|=)"[^"]*"' <<<"$exprs")
	if [ "${#missing[@]}" -gt 0 ]; then
		printf 'selected in %s but not in /metrics:\n' "$(rules)" >&2
		printf '  %s\n' "${missing[@]}" | sort -u >&2
		false
	fi
}
