/* config.c - load and validate the daemon's YAML configuration */
#include "aupd/config.h"
#include "aupd/yamldoc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_BYTES (1u << 20)

struct config *
config_new_default(void)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->listen_host = xstrdup("127.0.0.1");
	cfg->listen_port = 8443;
	cfg->listen_loopback = true;
	cfg->tls_enabled = true;
	cfg->state_dir = xstrdup("/var/lib/aupd");
	cfg->rules = xcalloc(1, sizeof(char *));
	cfg->rules[0] = xstrdup("/etc/aupd/rules.d");
	cfg->n_rules = 1;
	cfg->rules_defaulted = true;
	cfg->default_effect = EFFECT_ALLOW;
	cfg->max_body = 8u << 20;
	cfg->max_batch = 10000;
	cfg->max_connections = 1024;
	cfg->max_connections_per_ip = 0;
	cfg->connection_timeout_us = 30 * AUPD_USEC;
	/*
	 * libmicrohttpd zeroes the whole buffer for every request on a kept-alive
	 * connection: 64 KiB cost 5% of single-event throughput against 32 KiB
	 * (five A/B runs), for no gain with 1000-event batches.
	 */
	cfg->connection_memory = 32u << 10;
	cfg->queue_events = 100000;
	cfg->http_threads = 2;
	cfg->keys_in_memory = 1u << 20;
	cfg->checkpoint_every = 1000;
	cfg->checkpoint_interval_us = 60 * AUPD_USEC;
	cfg->log_level = LOG_LVL_INFO;
	return cfg;
}

static void
free_rules(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		free(cfg->rules[i]);
	free(cfg->rules);
	cfg->rules = NULL;
	cfg->n_rules = 0;
}

void
config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->listen_host);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->state_dir);
	free(cfg->user);
	free_rules(cfg);
	for (size_t i = 0; i < cfg->n_notifiers; i++) {
		struct notifier_conf *n = &cfg->notifiers[i];

		free(n->name);
		free(n->url);
		free(n->secret_file);
		free(n->ca_file);
	}
	free(cfg->notifiers);
	free(cfg);
}

const struct notifier_conf *
config_notifier(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_notifiers; i++)
		if (!strcmp(cfg->notifiers[i].name, name))
			return &cfg->notifiers[i];
	return NULL;
}

char *
config_db_path(const struct config *cfg)
{
	return path_join(cfg->state_dir, "aupd.db");
}

int
config_parse_listen(const char *s, char **host, uint16_t *port, bool *ipv6, bool *loopback,
		    const char **why)
{
	const char *colon, *hs, *he;
	unsigned char addr[16];
	int64_t p;
	char *h;

	*why = "listen must be host:port, e.g. 127.0.0.1:8443 or [::1]:8443";
	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return -1;
		hs = s + 1;
		colon = he + 1;
		*ipv6 = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -1; /* a bare IPv6 address needs brackets */
		hs = s;
		he = colon;
		*ipv6 = false;
	}
	if (parse_i64(colon + 1, 0, 65535, &p) < 0) {
		*why = "listen port must be a number from 0 (any free port) to 65535";
		return -1;
	}
	h = xstrndup(hs, (size_t)(he - hs));
	if (!*ipv6 && !strcmp(h, "localhost")) {
		free(h);
		h = xstrdup("127.0.0.1");
	}
	if (inet_pton(*ipv6 ? AF_INET6 : AF_INET, h, addr) != 1) {
		*why = *ipv6 ? "listen host is not an IPv6 address"
			     : "listen host must be an IPv4 address, localhost, or [IPv6]";
		free(h);
		return -1;
	}
	if (*ipv6)
		*loopback = !memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
	else
		*loopback = addr[0] == 127;
	*host = h;
	*port = (uint16_t)p;
	*why = NULL;
	return 0;
}

struct loader {
	struct ydoc yd;
	struct diag_list *dl;
	struct config *cfg;
	const char *base; /* directory for relative paths, or NULL */
};

static char *
resolve_path(struct loader *ld, const char *s)
{
	if (s[0] == '/' || !ld->base)
		return xstrdup(s);
	return path_join(ld->base, s);
}

static const char *
want_string(struct loader *ld, yaml_node_t *v, const char *key)
{
	const char *s = ynode_str(v);

	if (!s || ynode_is_null(v) || (ynode_plain(v) && ynode_bool(v) >= 0)) {
		ydiag(ld->dl, &ld->yd, v, "%s must be a string, not %s", key, ynode_describe(v));
		return NULL;
	}
	if (!*s) {
		ydiag(ld->dl, &ld->yd, v, "%s must not be empty", key);
		return NULL;
	}
	return s;
}

static void
set_path(struct loader *ld, yaml_node_t *v, const char *key, char **dst)
{
	const char *s = want_string(ld, v, key);

	if (!s)
		return;
	free(*dst);
	*dst = resolve_path(ld, s);
}

static void
set_bool(struct loader *ld, yaml_node_t *v, const char *key, bool *dst)
{
	int b = ynode_bool(v);

	if (b < 0) {
		ydiag(ld->dl, &ld->yd, v, "%s must be true or false, not %s", key,
		      ynode_describe(v));
		return;
	}
	*dst = b;
}

static void
set_duration(struct loader *ld, yaml_node_t *v, const char *key, int64_t min_us, int64_t *dst)
{
	const char *s = ynode_str(v), *why;
	int64_t us;

	if (!s || v->type != YAML_SCALAR_NODE) {
		ydiag(ld->dl, &ld->yd, v, "%s must be a duration such as 60s, 24h or 90d, not %s",
		      key, ynode_describe(v));
		return;
	}
	if (duration_parse(s, &us, &why) < 0) {
		ydiag(ld->dl, &ld->yd, v, "%s: '%s' is %s", key, s, why);
		return;
	}
	if (us < min_us) {
		char buf[32];

		duration_format(min_us, buf, sizeof(buf));
		ydiag(ld->dl, &ld->yd, v, "%s must be at least %s", key, buf);
		return;
	}
	*dst = us;
}

static void
set_size(struct loader *ld, yaml_node_t *v, const char *key, uint64_t min, uint64_t max,
	 uint64_t *dst)
{
	const char *s = ynode_str(v), *why;
	uint64_t n;

	if (!s || v->type != YAML_SCALAR_NODE) {
		ydiag(ld->dl, &ld->yd, v, "%s must be a size such as 8MiB, not %s", key,
		      ynode_describe(v));
		return;
	}
	if (size_parse(s, &n, &why) < 0) {
		ydiag(ld->dl, &ld->yd, v, "%s: '%s' is %s", key, s, why);
		return;
	}
	if (n < min || n > max) {
		ydiag(ld->dl, &ld->yd, v, "%s must be between %llu and %llu bytes", key,
		      (unsigned long long)min, (unsigned long long)max);
		return;
	}
	*dst = n;
}

static void
set_u32(struct loader *ld, yaml_node_t *v, const char *key, int64_t min, int64_t max,
	uint32_t *dst)
{
	int64_t n;

	if (ynode_i64(v, min, max, &n) < 0) {
		if (v->type == YAML_SCALAR_NODE && ynode_i64(v, INT64_MIN, INT64_MAX, &n) == 0)
			ydiag(ld->dl, &ld->yd, v, "%s must be between %lld and %lld", key,
			      (long long)min, (long long)max);
		else
			ydiag(ld->dl, &ld->yd, v, "%s must be a whole number, not %s", key,
			      ynode_describe(v));
		return;
	}
	*dst = (uint32_t)n;
}

static bool
want_map(struct loader *ld, yaml_node_t *v, const char *key)
{
	if (v->type != YAML_MAPPING_NODE) {
		ydiag(ld->dl, &ld->yd, v, "%s must be a mapping, not %s", key, ynode_describe(v));
		return false;
	}
	return true;
}

static void
load_tls(struct loader *ld, yaml_node_t *map)
{
	static const char *const keys[] = {"cert", "key", "enabled"};
	yaml_node_t *v;

	if (!want_map(ld, map, "tls"))
		return;
	ymap_check_keys(&ld->yd, map, keys, AUPD_ARRAY_LEN(keys), "tls", ld->dl);
	if ((v = ymap_get(&ld->yd, map, "cert", NULL)))
		set_path(ld, v, "tls.cert", &ld->cfg->tls_cert);
	if ((v = ymap_get(&ld->yd, map, "key", NULL)))
		set_path(ld, v, "tls.key", &ld->cfg->tls_key);
	if ((v = ymap_get(&ld->yd, map, "enabled", NULL)))
		set_bool(ld, v, "tls.enabled", &ld->cfg->tls_enabled);
	if (!!ld->cfg->tls_cert != !!ld->cfg->tls_key)
		ydiag(ld->dl, &ld->yd, map,
		      "tls.cert and tls.key go together: give both, or neither for a generated "
		      "self-signed pair");
}

static void
load_limits(struct loader *ld, yaml_node_t *map)
{
	static const char *const keys[] = {"max_body",	      "max_batch",
					   "max_connections", "max_connections_per_ip",
					   "connection_timeout", "connection_memory",
					   "queue_events",    "http_threads",
					   "rate_per_token",  "rate_burst",
					   "keys_in_memory"};
	struct config *c = ld->cfg;
	yaml_node_t *v;

	if (!want_map(ld, map, "limits"))
		return;
	ymap_check_keys(&ld->yd, map, keys, AUPD_ARRAY_LEN(keys), "limits", ld->dl);
	if ((v = ymap_get(&ld->yd, map, "max_body", NULL)))
		set_size(ld, v, "limits.max_body", 1024, 1ULL << 30, &c->max_body);
	if ((v = ymap_get(&ld->yd, map, "max_batch", NULL)))
		set_u32(ld, v, "limits.max_batch", 1, 1000000, &c->max_batch);
	if ((v = ymap_get(&ld->yd, map, "max_connections", NULL)))
		set_u32(ld, v, "limits.max_connections", 1, 1000000, &c->max_connections);
	if ((v = ymap_get(&ld->yd, map, "max_connections_per_ip", NULL)))
		set_u32(ld, v, "limits.max_connections_per_ip", 0, 1000000,
			&c->max_connections_per_ip);
	if ((v = ymap_get(&ld->yd, map, "connection_timeout", NULL)))
		set_duration(ld, v, "limits.connection_timeout", AUPD_USEC,
			     &c->connection_timeout_us);
	if ((v = ymap_get(&ld->yd, map, "connection_memory", NULL)))
		set_size(ld, v, "limits.connection_memory", 8192, 16u << 20,
			 &c->connection_memory);
	if ((v = ymap_get(&ld->yd, map, "queue_events", NULL)))
		set_u32(ld, v, "limits.queue_events", 1, 100000000, &c->queue_events);
	if ((v = ymap_get(&ld->yd, map, "http_threads", NULL)))
		set_u32(ld, v, "limits.http_threads", 1, 64, &c->http_threads);
	if ((v = ymap_get(&ld->yd, map, "rate_per_token", NULL)))
		set_u32(ld, v, "limits.rate_per_token", 0, 10000000, &c->rate_per_token);
	if ((v = ymap_get(&ld->yd, map, "keys_in_memory", NULL)))
		set_u32(ld, v, "limits.keys_in_memory", 1, 100000000, &c->keys_in_memory);
	if ((v = ymap_get(&ld->yd, map, "rate_burst", NULL)))
		set_u32(ld, v, "limits.rate_burst", 0, 10000000, &c->rate_burst);
}

static void
load_checkpoint(struct loader *ld, yaml_node_t *map)
{
	static const char *const keys[] = {"every", "interval"};
	yaml_node_t *v;

	if (!want_map(ld, map, "checkpoint"))
		return;
	ymap_check_keys(&ld->yd, map, keys, AUPD_ARRAY_LEN(keys), "checkpoint", ld->dl);
	if ((v = ymap_get(&ld->yd, map, "every", NULL)))
		set_u32(ld, v, "checkpoint.every", 1, 100000000, &ld->cfg->checkpoint_every);
	if ((v = ymap_get(&ld->yd, map, "interval", NULL)))
		set_duration(ld, v, "checkpoint.interval", AUPD_USEC,
			     &ld->cfg->checkpoint_interval_us);
}

static bool
valid_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void
load_notifiers(struct loader *ld, yaml_node_t *map)
{
	static const char *const keys[] = {"url", "secret_file", "ca_file", "timeout"};
	struct config *c = ld->cfg;

	if (!want_map(ld, map, "notifiers"))
		return;
	c->notifiers = xcalloc((size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start),
			       sizeof(*c->notifiers));
	YMAP_FOREACH(&ld->yd, map, p) {
		yaml_node_t *k = ydoc_node(&ld->yd, p->key), *v = ydoc_node(&ld->yd, p->value), *f;
		const char *name = ynode_str(k);
		struct notifier_conf *n;
		char what[96];

		if (!name || !valid_name(name)) {
			ydiag(ld->dl, &ld->yd, k,
			      "notifier names are 1-64 of A-Z a-z 0-9 . _ -, not %s",
			      name ? "this" : ynode_describe(k));
			continue;
		}
		if (config_notifier(c, name)) {
			ydiag(ld->dl, &ld->yd, k, "duplicate notifier '%s'", name);
			continue;
		}
		snprintf(what, sizeof(what), "notifiers.%s", name);
		if (!want_map(ld, v, what))
			continue;
		n = &c->notifiers[c->n_notifiers++];
		n->name = xstrdup(name);
		n->timeout_us = 5 * AUPD_USEC;
		n->line = ynode_line(k);
		ymap_check_keys(&ld->yd, v, keys, AUPD_ARRAY_LEN(keys), "notifier", ld->dl);
		if ((f = ymap_get(&ld->yd, v, "url", NULL))) {
			const char *url = want_string(ld, f, "url");

			if (url && strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
				ydiag(ld->dl, &ld->yd, f, "url must start with https:// or http://");
			else if (url)
				n->url = xstrdup(url);
		} else {
			ydiag(ld->dl, &ld->yd, v, "notifier '%s' has no url", name);
		}
		if ((f = ymap_get(&ld->yd, v, "secret_file", NULL)))
			set_path(ld, f, "secret_file", &n->secret_file);
		else
			ydiag(ld->dl, &ld->yd, v,
			      "notifier '%s' has no secret_file (the HMAC key for X-Aupd-Signature)",
			      name);
		if ((f = ymap_get(&ld->yd, v, "ca_file", NULL)))
			set_path(ld, f, "ca_file", &n->ca_file);
		if ((f = ymap_get(&ld->yd, v, "timeout", NULL)))
			set_duration(ld, f, "timeout", 1000, &n->timeout_us);
	}
}

static void
load_audit(struct loader *ld, yaml_node_t *map)
{
	static const char *const keys[] = {"require_justification"};
	yaml_node_t *v;

	if (!want_map(ld, map, "audit"))
		return;
	ymap_check_keys(&ld->yd, map, keys, AUPD_ARRAY_LEN(keys), "audit", ld->dl);
	if ((v = ymap_get(&ld->yd, map, "require_justification", NULL)))
		set_bool(ld, v, "audit.require_justification", &ld->cfg->require_justification);
}

static void
load_rules(struct loader *ld, yaml_node_t *v)
{
	struct config *c = ld->cfg;

	if (v->type == YAML_SCALAR_NODE) {
		const char *s = want_string(ld, v, "rules");

		if (!s)
			return;
		free_rules(c);
		c->rules_defaulted = false;
		c->rules = xcalloc(1, sizeof(char *));
		c->rules[0] = resolve_path(ld, s);
		c->n_rules = 1;
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		ydiag(ld->dl, &ld->yd, v, "rules must be a list of files or directories, not %s",
		      ynode_describe(v));
		return;
	}
	free_rules(c);
	c->rules_defaulted = false;
	c->rules = xcalloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1,
			   sizeof(char *));
	YSEQ_FOREACH(&ld->yd, v, it) {
		yaml_node_t *item = ydoc_node(&ld->yd, *it);
		const char *s = want_string(ld, item, "each rules entry");

		if (s)
			c->rules[c->n_rules++] = resolve_path(ld, s);
	}
}

static void
load_root(struct loader *ld, yaml_node_t *root)
{
	static const char *const keys[] = {"listen",	"tls",	     "state_dir",  "rules",
					   "default_effect", "limits", "checkpoint", "notifiers",
					   "audit",	"user",	     "log_level"};
	static const char *const levels[] = {"error", "warning", "notice", "info", "debug"};
	struct config *c = ld->cfg;
	yaml_node_t *v;
	const char *s, *why;

	if (!root || ynode_is_null(root))
		return; /* an empty file: every default */
	if (root->type != YAML_MAPPING_NODE) {
		ydiag(ld->dl, &ld->yd, root, "the configuration must be a mapping, not %s",
		      ynode_describe(root));
		return;
	}
	ymap_check_keys(&ld->yd, root, keys, AUPD_ARRAY_LEN(keys), "configuration", ld->dl);
	if ((v = ymap_get(&ld->yd, root, "listen", NULL)) && (s = want_string(ld, v, "listen"))) {
		char *host;

		if (config_parse_listen(s, &host, &c->listen_port, &c->listen_ipv6,
					&c->listen_loopback, &why) < 0) {
			ydiag(ld->dl, &ld->yd, v, "%s (got '%s')", why, s);
		} else {
			free(c->listen_host);
			c->listen_host = host;
		}
	}
	if ((v = ymap_get(&ld->yd, root, "tls", NULL)))
		load_tls(ld, v);
	if ((v = ymap_get(&ld->yd, root, "state_dir", NULL)))
		set_path(ld, v, "state_dir", &c->state_dir);
	if ((v = ymap_get(&ld->yd, root, "rules", NULL)))
		load_rules(ld, v);
	if ((v = ymap_get(&ld->yd, root, "default_effect", NULL)) &&
	    (s = want_string(ld, v, "default_effect")) && effect_parse(s, &c->default_effect) < 0)
		ydiag(ld->dl, &ld->yd, v, "default_effect must be allow, flag or deny, not '%s'", s);
	if ((v = ymap_get(&ld->yd, root, "limits", NULL)))
		load_limits(ld, v);
	if ((v = ymap_get(&ld->yd, root, "checkpoint", NULL)))
		load_checkpoint(ld, v);
	if ((v = ymap_get(&ld->yd, root, "notifiers", NULL)))
		load_notifiers(ld, v);
	if ((v = ymap_get(&ld->yd, root, "audit", NULL)))
		load_audit(ld, v);
	if ((v = ymap_get(&ld->yd, root, "user", NULL)) && (s = want_string(ld, v, "user")))
		c->user = xstrdup(s);
	if ((v = ymap_get(&ld->yd, root, "log_level", NULL)) && (s = want_string(ld, v, "log_level"))) {
		size_t i;

		for (i = 0; i < AUPD_ARRAY_LEN(levels); i++)
			if (!strcmp(s, levels[i]))
				break;
		if (i == AUPD_ARRAY_LEN(levels))
			ydiag(ld->dl, &ld->yd, v,
			      "log_level must be error, warning, notice, info or debug, not '%s'", s);
		else
			c->log_level = (enum log_level)(LOG_LVL_ERR + (int)i);
	}
	if (!c->tls_enabled && !c->listen_loopback) {
		v = ymap_get(&ld->yd, root, "tls", NULL);
		ydiag(ld->dl, &ld->yd, v ? v : root,
		      "tls.enabled: false is only allowed when listen is a loopback address "
		      "(127.0.0.0/8 or [::1]); plain HTTP would expose tokens and events");
	}
}

struct config *
config_load_buf(const char *name, const char *buf, size_t len, struct diag_list *dl)
{
	struct loader ld = {.dl = dl};
	size_t before = dl->n;
	char *base = NULL;
	const char *slash = strrchr(name, '/');

	if (slash)
		base = xstrndup(name, slash == name ? 1 : (size_t)(slash - name));
	ld.base = base;
	ld.cfg = config_new_default();
	ld.cfg->path = xstrdup(name);
	if (ydoc_load(&ld.yd, name, buf, len, dl) == 0)
		load_root(&ld, ydoc_root(&ld.yd));
	ydoc_free(&ld.yd);
	free(base);
	if (dl->n > before) {
		config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

struct config *
config_load(const char *path, struct diag_list *dl)
{
	struct aupd_error err;
	struct config *cfg;
	size_t len;
	char *buf = file_read_all(path, CONFIG_MAX_BYTES, &len, &err);

	if (!buf) {
		diag_add(dl, NULL, 0, 0, "%s", err.msg);
		return NULL;
	}
	cfg = config_load_buf(path, buf, len, dl);
	free(buf);
	return cfg;
}

size_t
config_rules_to_load(const struct config *cfg, const char **note)
{
	struct stat sb;

	*note = NULL;
	if (cfg->rules_defaulted && cfg->n_rules == 1 && stat(cfg->rules[0], &sb) < 0 &&
	    errno == ENOENT) {
		*note = "the default rules directory does not exist and the configuration "
			"names no rules: running with no rules (every verdict is default_effect)";
		return 0;
	}
	return cfg->n_rules;
}
