/*
 * conf: the responder's view of a loaded configuration, swapped whole on
 * SIGHUP.  Requests hold a reference, so the old view lives until the last
 * request that started under it ends.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "util.h"

/* Clock skew allowed between the token's issuer and us. */
#define JWT_LEEWAY_MS 30000

static int load_keys(struct srv_conf *c, struct rs_err *err)
{
	size_t n = 0;

	for (size_t i = 0; i < rs_config_nsections(c->cfg); i++)
		if (strcmp(rs_config_section_at(c->cfg, i)->schema->name, "key") == 0)
			n++;
	if (n == 0)
		return 0;
	c->keys = calloc(n, sizeof(*c->keys));
	if (!c->keys)
		return rs_err_set(err, "out of memory");
	for (size_t i = 0; i < rs_config_nsections(c->cfg); i++) {
		const struct rs_conf_section *sec = rs_config_section_at(c->cfg, i);
		if (strcmp(sec->schema->name, "key") != 0)
			continue;
		const struct rs_conf_value *h = rs_conf_get(sec, "hash");
		const struct rs_conf_value *role = rs_conf_get(sec, "role");
		const struct rs_conf_value *exp = rs_conf_get(sec, "expires");
		const struct rs_conf_value *rot = rs_conf_get(sec, "rotated");
		const struct rs_conf_value *made = rs_conf_get(sec, "created");
		/* validation already refused bad keys; skip rather than trust */
		if (!h || !h->ok || !h->str || strlen(h->str) != 64 || !role || !role->ok)
			continue;
		struct api_key *k = &c->keys[c->nkeys];
		for (size_t j = 0; j < 32; j++)
			k->hash[j] = (unsigned char)(rs_hex_value(h->str[2 * j]) << 4 |
						     rs_hex_value(h->str[2 * j + 1]));
		k->role = (enum role)(ROLE_VIEWER + role->num);
		k->times.expires_ms = exp && exp->ok ? rs_parse_utc_ms(exp->str) : 0;
		k->times.rotated_ms = rot && rot->ok ? rs_parse_utc_ms(rot->str) : 0;
		k->times.created_ms = made && made->ok ? rs_parse_utc_ms(made->str) : 0;
		k->name = sec->name;
		c->nkeys++;
		if (rs_apikey_state(&k->times, rs_now_ms(), c->key_grace_ms,
				    c->key_rotation_ms) == RS_KEY_DUE)
			RS_LOG(RS_LOG_WARNING, NULL,
			       "API key %s was created on %s: due for rotation ([auth] key_rotation_interval); see resyncctl-key(1)",
			       k->name, made->str);
	}
	return 0;
}

static void list_of(const struct rs_conf_section *sec, const char *key,
		    char *const **items, size_t *n)
{
	const struct rs_conf_value *v = sec ? rs_conf_get(sec, key) : NULL;

	*items = v && v->ok ? v->items : NULL;
	*n = v && v->ok ? v->nitems : 0;
}

static void load_cors(struct srv_conf *c)
{
	const struct rs_conf_section *sec = rs_config_find(c->cfg, "cors", NULL);
	struct rs_cors_policy *p = &c->cors;

	list_of(sec, "allowed_origins", &p->origins, &p->norigins);
	list_of(sec, "allowed_methods", &p->methods, &p->nmethods);
	list_of(sec, "allowed_headers", &p->headers, &p->nheaders);
	p->credentials = rs_config_num(c->cfg, "cors", "allow_credentials") != 0;
	p->max_age_ms = rs_config_num(c->cfg, "cors", "max_age");
}

struct srv_conf *srv_conf_new(struct rs_config *cfg, struct rs_err *err)
{
	struct srv_conf *c = calloc(1, sizeof(*c));

	if (!c) {
		rs_err_set(err, "out of memory");
		return NULL;
	}
	c->cfg = cfg;
	c->loaded_ms = rs_now_ms();
	c->max_body = rs_config_num(cfg, "server", "max_body");
	c->request_timeout_ms = rs_config_num(cfg, "server", "request_timeout");
	c->slow_request_ms = rs_config_num(cfg, "server", "slow_request_threshold");
	c->shutdown_timeout_ms = rs_config_num(cfg, "server", "shutdown_timeout");
	c->compress_min = rs_config_num(cfg, "server", "compress_min_size");
	c->max_json_depth = (int)rs_config_num(cfg, "server", "max_json_depth");
	const char *re = rs_config_str(cfg, "server", "request_id_pattern");
	c->request_id_re_ok = re && regcomp(&c->request_id_re, re,
					    REG_EXTENDED | REG_NOSUB) == 0;
	const char *secret = rs_config_str(cfg, "auth", "jwt_secret");
	if (secret && *secret) {
		c->jwt.secret = (const unsigned char *)secret;
		c->jwt.secret_len = strlen(secret);
		c->jwt.issuer = rs_config_str(cfg, "auth", "jwt_issuer");
		c->jwt.audience = rs_config_str(cfg, "auth", "jwt_audience");
		c->jwt.leeway_ms = JWT_LEEWAY_MS;
	}
	load_cors(c);
	c->idem_ttl_ms = rs_config_num(cfg, "idempotency", "ttl");
	c->idem_lock_ms = rs_config_num(cfg, "idempotency", "lock_timeout");
	c->idem_max_response = rs_config_num(cfg, "idempotency", "max_response");
	c->rl_on = rs_config_num(cfg, "ratelimit", "enabled") != 0;
	c->rl_rate[RL_READ] = (double)rs_config_num(cfg, "ratelimit", "requests_per_second");
	c->rl_burst[RL_READ] = (uint32_t)rs_config_num(cfg, "ratelimit", "burst");
	c->rl_rate[RL_WRITE] = (double)rs_config_num(cfg, "ratelimit", "write_requests_per_second");
	c->rl_burst[RL_WRITE] = (uint32_t)rs_config_num(cfg, "ratelimit", "write_burst");
	c->key_grace_ms = rs_config_num(cfg, "auth", "key_grace");
	c->key_rotation_ms = rs_config_num(cfg, "auth", "key_rotation_interval");
	if (load_keys(c, err) < 0) {
		c->cfg = NULL;   /* the caller keeps cfg on failure */
		srv_conf_free(c);
		return NULL;
	}
	return c;
}

void srv_conf_free(struct srv_conf *c)
{
	if (!c)
		return;
	if (c->request_id_re_ok)
		regfree(&c->request_id_re);
	free(c->keys);
	rs_config_free(c->cfg);
	free(c);
}

struct srv_conf *conf_get(struct server *s)
{
	pthread_mutex_lock(&s->conf_lock);
	struct srv_conf *c = s->conf;
	c->refs++;
	pthread_mutex_unlock(&s->conf_lock);
	return c;
}

void conf_put(struct server *s, struct srv_conf *c)
{
	pthread_mutex_lock(&s->conf_lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&s->conf_lock);
	if (last)
		srv_conf_free(c);
}
