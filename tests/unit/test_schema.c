/*
 * The schema table: every default parses within its bounds, the table is
 * well formed, resync.conf(5) documents exactly what the table holds, and
 * etc/resync.conf.example shows every key.
 *
 * With --write-man FILE it regenerates the KEYS section of the man page
 * instead (make update-man).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "schema.h"
#include "tap.h"
#include "testlib.h"
#include "util.h"

#define BEGIN_MARK ".\\\" BEGIN GENERATED KEYS (make update-man)\n"
#define END_MARK ".\\\" END GENERATED KEYS\n"

static void roff_text(struct rs_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			rs_buf_puts(b, "\\e");
		else if (*s == '-')
			rs_buf_puts(b, "\\-");
		else
			rs_buf_putc(b, *s);
	}
}

static void gen_keys(struct rs_buf *b)
{
	for (size_t si = 0; si < rs_schema_nsections; si++) {
		const struct rs_schema_section *s = &rs_schema_sections[si];
		char env[160];

		rs_buf_printf(b, ".SS \"[%s%s]\"\n", s->name, s->named ? " \\fINAME\\fP" : "");
		roff_text(b, s->doc);
		rs_buf_puts(b, ".\n");
		for (size_t ki = 0; ki < rs_schema_nkeys; ki++) {
			const struct rs_schema_key *k = &rs_schema_keys[ki];

			if (strcmp(k->section, s->name) != 0)
				continue;
			rs_buf_printf(b, ".TP\n\\fB%s\\fP = \\fI", k->name);
			if (k->type == RS_T_ENUM) {
				for (const char *c = k->values; *c; c++)
					rs_buf_puts(b, *c == '|' ? "\\fP | \\fI" : (char[]){ *c, 0 });
			} else {
				rs_buf_puts(b, rs_type_name(k->type));
			}
			rs_buf_puts(b, "\\fP");
			if (k->flags & RS_K_REQUIRED)
				rs_buf_puts(b, " (required)");
			else if (k->def && *k->def) {
				const char *def = k->def;

				rs_buf_puts(b, " (default \\fB");
				/* The page must not depend on ./configure's
				 * prefix. */
				if (strncmp(def, RS_LOCALSTATEDIR, strlen(RS_LOCALSTATEDIR)) == 0) {
					rs_buf_puts(b, "\\fIlocalstatedir\\fB");
					def += strlen(RS_LOCALSTATEDIR);
				}
				roff_text(b, def);
				rs_buf_puts(b, "\\fP)");
			}
			rs_buf_puts(b, "\n");
			roff_text(b, k->doc);
			rs_buf_puts(b, ".\n");
			if (k->min || k->max) {
				char lo[32], hi[32];

				rs_schema_format_number(k->type, k->min, lo, sizeof(lo));
				rs_schema_format_number(k->type, k->max, hi, sizeof(hi));
				rs_buf_printf(b, "From %s to %s.\n", lo, hi);
			}
			if (k->pattern) {
				rs_buf_puts(b, "Must match \\fB");
				roff_text(b, k->pattern);
				rs_buf_puts(b, "\\fP.\n");
			}
			if (k->flags & RS_K_SECRET)
				rs_buf_printf(b, "A secret: give it as \\fB%s_file\\fP = \\fIFILE\\fP or in the environment; production refuses it written inline.\n",
					      k->name);
			if (k->flags & RS_K_SECRET_PATH)
				rs_buf_puts(b, "The file must exist; production refuses it when its group or others have any access.\n");
			if (k->flags & RS_K_MUST_EXIST)
				rs_buf_puts(b, "The file must exist and be readable.\n");
			rs_conf_env_name(s->name, s->named ? "NAME" : NULL, k->name,
					 env, sizeof(env));
			rs_buf_puts(b, "Environment: \\fB\\%");
			roff_text(b, env);
			rs_buf_puts(b, (k->flags & RS_K_SECRET) ? "\\fP (or \\fB\\%" : "\\fP.\n");
			if (k->flags & RS_K_SECRET) {
				roff_text(b, env);
				rs_buf_puts(b, "_FILE\\fP).\n");
			}
		}
	}
}

static const char *srcdir(void)
{
	const char *d = getenv("RS_TOP_SRCDIR");

	return d && *d ? d : ".";
}

static int write_man(const char *path)
{
	char *text = slurp(path), *begin, *end;
	struct rs_buf gen;
	FILE *f;

	if (!text || !(begin = strstr(text, BEGIN_MARK)) || !(end = strstr(text, END_MARK))) {
		fprintf(stderr, "%s: cannot read it or find the GENERATED KEYS markers\n", path);
		free(text);
		return 2;
	}
	rs_buf_init(&gen, 1 << 20);
	gen_keys(&gen);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		return 2;
	}
	fwrite(text, 1, (size_t)(begin - text) + strlen(BEGIN_MARK), f);
	fputs(rs_buf_str(&gen), f);
	fputs(end, f);
	fclose(f);
	rs_buf_free(&gen);
	free(text);
	return 0;
}

static void test_man_page(void)
{
	char path[4096], *text, *begin, *end;
	struct rs_buf gen;

	snprintf(path, sizeof(path), "%s/man/resync.conf.5", srcdir());
	text = slurp(path);
	ok(text != NULL, "man/resync.conf.5 is readable");
	begin = text ? strstr(text, BEGIN_MARK) : NULL;
	end = text ? strstr(text, END_MARK) : NULL;
	ok(begin && end && end > begin, "resync.conf.5 has the GENERATED KEYS markers");
	if (!begin || !end || end < begin) {
		free(text);
		return;
	}
	begin += strlen(BEGIN_MARK);
	*end = '\0';
	rs_buf_init(&gen, 1 << 20);
	gen_keys(&gen);
	if (!ok(strcmp(begin, rs_buf_str(&gen)) == 0,
		"resync.conf.5 KEYS section matches the schema table")) {
		const char *a = begin, *g = rs_buf_str(&gen);
		int line = 1;

		while (*a && *a == *g) {
			if (*a == '\n')
				line++;
			a++;
			g++;
		}
		printf("#   first difference at line %d of the generated section; run 'make update-man'\n", line);
	}
	rs_buf_free(&gen);
	free(text);
}

/* Every schema key appears in the example as "key =" or "# key =" under its
 * section (a commented "# [section]" header counts). */
static void test_example(void)
{
	char path[4096], *text, *line, *save = NULL, section[64] = "";
	char seen[512][96];
	size_t nseen = 0;

	snprintf(path, sizeof(path), "%s/etc/resync.conf.example", srcdir());
	text = slurp(path);
	ok(text != NULL, "etc/resync.conf.example is readable");
	if (!text)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line, key[64];
		size_t n = 0;

		while (*p == '#' || *p == ' ' || *p == ';' || *p == '\t')
			p++;
		if (*p == '[') {
			p++;
			while (isalpha((unsigned char)p[n]) || p[n] == '_')
				n++;
			snprintf(section, sizeof(section), "%.*s", (int)n, p);
			continue;
		}
		while (islower((unsigned char)p[n]) || isdigit((unsigned char)p[n]) || p[n] == '_')
			n++;
		if (!n || n >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		p += n;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=' || nseen == RS_ARRAY_SIZE(seen))
			continue;
		if (strlen(key) > 5 && strcmp(key + strlen(key) - 5, "_file") == 0) {
			const struct rs_schema_key *k;

			key[strlen(key) - 5] = '\0';
			k = rs_schema_key(section, key);
			if (!k || !(k->flags & RS_K_SECRET))
				strcat(key, "_file");
		}
		snprintf(seen[nseen++], sizeof(seen[0]), "%s/%s", section, key);
	}
	for (size_t i = 0; i < rs_schema_nkeys; i++) {
		char want[96], name[160];
		bool found = false;

		snprintf(want, sizeof(want), "%s/%s", rs_schema_keys[i].section,
			 rs_schema_keys[i].name);
		for (size_t j = 0; j < nseen && !found; j++)
			found = strcmp(seen[j], want) == 0;
		snprintf(name, sizeof(name), "example documents [%s] %s",
			 rs_schema_keys[i].section, rs_schema_keys[i].name);
		ok(found, name);
	}
	free(text);
}

static void test_table(void)
{
	for (size_t i = 0; i < rs_schema_nkeys; i++) {
		const struct rs_schema_key *k = &rs_schema_keys[i];
		const char *d = k->doc;
		char name[160];
		bool good = rs_schema_section(k->section) && d && *d &&
			    d[strlen(d) - 1] != '.' &&
			    rs_schema_key(k->section, k->name) == k;

		snprintf(name, sizeof(name), "[%s] %s is well formed", k->section, k->name);
		if (k->type == RS_T_ENUM)
			good = good && k->values &&
			       (!k->def || rs_schema_enum_index(k, k->def) >= 0);
		if (k->flags & (RS_K_SECRET | RS_K_REQUIRED))
			good = good && !k->def;
		if (k->flags & RS_K_SECRET)
			good = good && k->type == RS_T_STRING;
		if (k->flags & (RS_K_SECRET_PATH | RS_K_MUST_EXIST))
			good = good && k->type == RS_T_PATH;
		ok(good, name);
	}
}

/* An empty file with no environment: every default parses, within its
 * bounds, with no diagnostics at all beyond the development notice. */
static void test_defaults(void)
{
	struct rs_config_options opt = { .ignore_env = true };
	struct rs_err err = RS_ERR_INIT;
	struct rs_diags d;
	struct rs_config *cfg;
	FILE *f = tmpfile();
	char path[64];

	rs_diags_init(&d);
	snprintf(path, sizeof(path), "/dev/fd/%d", fileno(f));
	cfg = rs_config_load(path, &opt, &d, &err);
	ok(cfg != NULL, "an empty file loads");
	is_int(d.errors + d.warnings, 0, "defaults produce no diagnostics");
	for (size_t i = 0; cfg && i < rs_config_nsections(cfg); i++) {
		const struct rs_conf_section *s = rs_config_section_at(cfg, i);

		for (size_t j = 0; j < s->nvalues; j++) {
			char name[160];

			snprintf(name, sizeof(name), "default of [%s] %s is valid",
				 s->schema->name, s->values[j].key->name);
			ok(s->values[j].ok && s->values[j].source == RS_SRC_DEFAULT, name);
		}
	}
	is_int(rs_config_num(cfg, "cache", "ttl"), 300000, "cache ttl default 300s");
	is_int(rs_config_num(cfg, "cache", "max_memory"), 256 * RS_MIB, "cache max_memory 256MB");
	is_int(rs_config_num(cfg, "cache", "max_entries"), 500000, "cache max_entries 500000");
	is_int(rs_config_num(cfg, "cache", "num_shards"), 32, "cache num_shards 32");
	is_int(rs_config_num(cfg, "pool", "min_size"), 3, "pool min_size 3 (seed)");
	is_int(rs_config_num(cfg, "pool", "max_size"), 30, "pool max_size 30 (seed)");
	is_int(rs_config_num(cfg, "pool", "idle_timeout"), 150000, "pool idle_timeout 150s (seed)");
	is_int(rs_config_num(cfg, "pool", "connection_timeout"), 20000, "pool connection_timeout 20s (seed)");
	is_int(rs_config_num(cfg, "pool", "health_check_interval"), 30000, "pool health_check_interval 30s (seed)");
	is_int(rs_config_num(cfg, "pool", "max_lifetime"), 3600000, "pool max_lifetime 1h (seed)");
	is_int(rs_config_num(cfg, "persistence", "snapshot_retention"), 7 * RS_MS_PER_DAY, "snapshot retention 7d");
	is_int(rs_config_num(cfg, "persistence", "wal_retention"), RS_MS_PER_HOUR, "wal retention 1h");
	is_str(rs_config_str(cfg, "persistence", "sync"), "batch", "sync default batch");
	ok(rs_config_str(cfg, "server", "listen") == NULL, "unset key without default reads NULL");
	rs_config_free(cfg);
	rs_diags_free(&d);
	fclose(f);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-man") == 0)
		return write_man(argv[2]);
	test_table();
	test_defaults();
	test_man_page();
	test_example();
	return tap_done();
}
