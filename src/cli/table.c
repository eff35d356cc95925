/* The resyncctl command table; see the checklist in cmd.h. */
#include "cmd.h"

extern const struct cmd_entry cmd_audit;
extern const struct cmd_entry cmd_breaker;
extern const struct cmd_entry cmd_cache;
extern const struct cmd_entry cmd_config_validate;
extern const struct cmd_entry cmd_key;
extern const struct cmd_entry cmd_loadtest;
extern const struct cmd_entry cmd_pool;

const struct cmd_entry *const cmd_table[] = {
	&cmd_audit,
	&cmd_breaker,
	&cmd_cache,
	&cmd_config_validate,
	&cmd_key,
	&cmd_loadtest,
	&cmd_pool,
	NULL,
};
