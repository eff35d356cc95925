/*
 * resyncctl key generate: a new API key, and the [key NAME] lines for
 * resync.conf with its hash.  The key is printed once and kept nowhere.
 */
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "apikey.h"
#include "cmd.h"
#include "ini.h"
#include "schema.h"
#include "util.h"

/* Checked against the schema's own rules for [key] role and expires. */
static bool schema_accepts(const char *key, const char *value)
{
	const struct rs_schema_key *k = rs_schema_key("key", key);
	regex_t re;
	bool ok;

	if (k->type == RS_T_ENUM)
		return rs_schema_enum_index(k, value) >= 0;
	if (regcomp(&re, k->pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&re, value, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static int run_generate(struct cmd_ctx *ctx)
{
	const char *name = ctx->argv[0];
	const char *role = cmd_opt(ctx, "role") ? cmd_opt(ctx, "role") : "viewer";
	const char *expires = cmd_opt(ctx, "expires");
	char key[RS_APIKEY_HEX], hash[RS_APIKEY_HEX], created[32];
	struct rs_err err = RS_ERR_INIT;

	/* the name the configuration reader will accept in [key NAME] */
	if (!rs_ini_valid_name(name))
		return cmd_usage_error(ctx, "invalid key name '%s': letters, digits, '.', '_' "
				       "and '-', starting with a letter or digit, at most 64", name);
	if (!schema_accepts("role", role))
		return cmd_usage_error(ctx, "invalid role '%s': viewer, operator or admin", role);
	if (expires && !schema_accepts("expires", expires))
		return cmd_usage_error(ctx, "invalid expiry '%s': YYYY-MM-DD or "
				       "YYYY-MM-DDTHH:MM:SSZ (UTC)", expires);
	if (rs_apikey_generate(key, &err) < 0) {
		cmd_error(ctx, "%s", err.msg);
		return CMD_FAIL;
	}
	rs_apikey_hash(key, hash);
	rs_format_utc(rs_now_ms(), created, sizeof(created));
	if (ctx->g.json) {
		cmd_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?}", "name", name, "key", key,
					 "hash", hash, "role", role, "created", created,
					 "expires", expires));
	} else {
		if (ctx->g.verbosity >= 0)
			printf("# The key (give it to its user; it is shown only now):\n");
		printf("%s\n", key);
		if (ctx->g.verbosity >= 0)
			printf("\n# For resync.conf (only the hash is stored):\n");
		printf("[key %s]\nhash = %s\nrole = %s\ncreated = %s\n", name, hash, role, created);
		if (expires)
			printf("expires = %s\n", expires);
	}
	explicit_bzero(key, sizeof(key));
	return CMD_OK;
}

static const struct cmd_option generate_options[] = {
	{ "role", 'r', "ROLE", "viewer (the default), operator or admin" },
	{ "expires", 'e', "DATE", "UTC expiry, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ" },
	{ NULL, 0, NULL, NULL },
};

static const struct cmd_option no_options[] = { { NULL, 0, NULL, NULL } };

static const struct cmd_entry key_generate = {
	.name = "generate",
	.usage = "key generate [--role ROLE] [--expires DATE] NAME",
	.summary = "make a new API key and print its [key NAME] section",
	.description =
		"Prints a new key (64 hex digits from the system's random number\n"
		"generator), then the [key NAME] section to add to resync.conf, which\n"
		"holds only the key's SHA-256.  The key is shown once and stored nowhere.\n"
		"A running resync-fcgi takes the new section on SIGHUP.",
	.options = generate_options,
	.min_args = 1,
	.max_args = 1,
	.run = run_generate,
};

static const struct cmd_entry *const key_verbs[] = { &key_generate, NULL };

const struct cmd_entry cmd_key = {
	.name = "key",
	.usage = "key <command> [options]",
	.summary = "make API keys for resync-fcgi",
	.description =
		"API keys are given to resync-fcgi as X-API-Key or Authorization:\n"
		"Bearer; resync.conf holds their SHA-256 in [key NAME] sections.",
	.options = no_options,
	.min_args = 0,
	.max_args = 0,
	.subs = key_verbs,
};
