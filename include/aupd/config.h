/* config.h - the daemon's YAML configuration (contract section 2) */
#ifndef AUPD_CONFIG_H
#define AUPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/log.h"
#include "aupd/types.h"
#include "aupd/util.h"

#define AUPD_DEFAULT_CONFIG "/etc/aupd/aupd.yaml"

struct notifier_conf {
	char *name;
	char *url;
	char *secret_file;
	char *ca_file; /* NULL: the system's trust store */
	int64_t timeout_us;
	int line;
};

struct config {
	char *path; /* the file it came from, or NULL for built-in defaults */

	char *listen_host; /* numeric address, without brackets */
	uint16_t listen_port;
	bool listen_ipv6;
	bool listen_loopback;

	bool tls_enabled;
	char *tls_cert; /* both NULL: generated in state_dir */
	char *tls_key;

	char *state_dir;
	char **rules;
	size_t n_rules;
	bool rules_defaulted; /* no rules: key; see config_rules_to_load() */
	enum effect default_effect;

	uint64_t max_body;
	uint32_t max_batch;
	uint32_t max_connections;
	uint32_t max_connections_per_ip;
	int64_t connection_timeout_us;
	uint64_t connection_memory;
	uint32_t queue_events; /* events waiting for the writer before 503 */
	uint32_t http_threads;
	uint32_t keys_in_memory; /* recent idempotency keys held before a bulk merge */

	uint32_t checkpoint_every;
	int64_t checkpoint_interval_us;

	struct notifier_conf *notifiers;
	size_t n_notifiers;

	bool require_justification; /* audit.require_justification */
	char *user;                 /* started as root: drop to this user after binding */
	uint32_t rate_per_token;    /* requests per second per token; 0: no limit */
	uint32_t rate_burst;

	enum log_level log_level;
};

/* A configuration holding every default; never NULL. */
struct config *config_new_default(void);

/*
 * Loads `path`.  Every problem is added to `dl` as FILE:LINE:COL diagnostics;
 * on any problem NULL is returned.  Relative paths in the file are resolved
 * against the file's directory.  The caller owns the result.
 */
struct config *config_load(const char *path, struct diag_list *dl);
/* As config_load(), from memory; `name` labels diagnostics and anchors relative paths. */
struct config *config_load_buf(const char *name, const char *buf, size_t len,
			       struct diag_list *dl);
/*
 * How many of cfg->rules to load: all of them, except that the default
 * directory (no rules: key in the file) is left out while it does not exist,
 * so that an empty configuration starts with no rules. *note is then set to
 * say so (for a warning), else NULL.
 */
size_t config_rules_to_load(const struct config *cfg, const char **note);
void config_free(struct config *cfg);

/* The notifier called `name`, or NULL. */
const struct notifier_conf *config_notifier(const struct config *cfg, const char *name);

/* "host:port", "[v6]:port"; fills host (numeric), port, and flags.  -1 with `why`. */
int config_parse_listen(const char *s, char **host, uint16_t *port, bool *ipv6, bool *loopback,
			const char **why);

/* Paths inside state_dir (new strings). */
char *config_db_path(const struct config *cfg);

#endif
