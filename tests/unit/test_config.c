/* test_config.c - the daemon's YAML configuration loader (contract section 2) */
#include "aupd/config.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "/etc/aupd/aupd.yaml"

/* Every diagnostic as "FILE:LINE:COL: error: MSG" lines, for failure messages. */
static const char *
diags_text(const struct diag_list *dl)
{
	static char out[8192];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < dl->n && n < sizeof(out) - 1; i++) {
		char line[1024];

		aupd_error_format(&dl->v[i], line, sizeof(line));
		n += (size_t)snprintf(out + n, sizeof(out) - n, "\n  %s", line);
	}
	return dl->n ? out : " (none)";
}

static struct config *
load_ok(const char *yaml)
{
	struct diag_list dl = {0};
	struct config *cfg = config_load_buf(NAME, yaml, strlen(yaml), &dl);

	ck_assert_msg(cfg != NULL && dl.n == 0, "valid configuration rejected:%s\n---\n%s",
		      diags_text(&dl), yaml);
	diag_list_free(&dl);
	return cfg;
}

/* Is there a diagnostic at exactly LINE:COL whose text holds `part`? */
static bool
has_diag(const struct diag_list *dl, int line, int col, const char *part)
{
	char want[64];

	snprintf(want, sizeof(want), NAME ":%d:%d: error: ", line, col);
	for (size_t i = 0; i < dl->n; i++) {
		char text[1024];

		aupd_error_format(&dl->v[i], text, sizeof(text));
		if (!strncmp(text, want, strlen(want)) && strstr(text + strlen(want), part))
			return true;
	}
	return false;
}

/* The configuration is refused, and one of its errors is at LINE:COL and says `part`. */
static void
load_err(const char *yaml, int line, int col, const char *part)
{
	struct diag_list dl = {0};
	struct config *cfg = config_load_buf(NAME, yaml, strlen(yaml), &dl);

	ck_assert_msg(cfg == NULL, "invalid configuration accepted:\n%s", yaml);
	ck_assert_msg(has_diag(&dl, line, col, part), "no error %d:%d '%s' for\n%s\ngot:%s", line,
		      col, part, yaml, diags_text(&dl));
	diag_list_free(&dl);
}

static void
check_defaults(const struct config *c)
{
	/* contract section 2 */
	ck_assert_str_eq(c->listen_host, "127.0.0.1");
	ck_assert_uint_eq(c->listen_port, 8443);
	ck_assert(!c->listen_ipv6);
	ck_assert(c->listen_loopback);
	ck_assert(c->tls_enabled);
	ck_assert_ptr_null(c->tls_cert);
	ck_assert_ptr_null(c->tls_key);
	ck_assert_str_eq(c->state_dir, "/var/lib/aupd");
	ck_assert_uint_eq(c->n_rules, 1);
	ck_assert_str_eq(c->rules[0], "/etc/aupd/rules.d");
	ck_assert_int_eq(c->default_effect, EFFECT_ALLOW);
	ck_assert_uint_eq(c->max_body, 8ULL << 20);
	ck_assert_uint_eq(c->max_batch, 10000);
	ck_assert_uint_eq(c->checkpoint_every, 1000);
	ck_assert_int_eq(c->checkpoint_interval_us, 60 * AUPD_USEC);
	ck_assert_uint_eq(c->n_notifiers, 0);
	ck_assert_ptr_null(config_notifier(c, "compliance"));
	/* the daemon's own defaults (daemon/config.c, etc/aupd.yaml) */
	ck_assert_int_eq(c->log_level, LOG_LVL_INFO);
	ck_assert_uint_eq(c->max_connections, 1024);
	ck_assert_uint_eq(c->max_connections_per_ip, 0);
	ck_assert_int_eq(c->connection_timeout_us, 30 * AUPD_USEC);
	ck_assert_uint_eq(c->connection_memory, 32u << 10);
	ck_assert_uint_eq(c->queue_events, 100000);
	ck_assert_uint_eq(c->http_threads, 2);
	ck_assert_uint_eq(c->rate_per_token, 0); /* no limit */
	ck_assert(!c->require_justification);
	ck_assert_ptr_null(c->user);
}

START_TEST(empty_file_gives_defaults)
{
	struct config *c = load_ok("");

	check_defaults(c);
	ck_assert_str_eq(c->path, NAME);
	config_free(c);
}
END_TEST

START_TEST(comment_only_file_gives_defaults)
{
	struct config *c = load_ok("# aupd configuration\n\n   # every key has a default\n");

	check_defaults(c);
	config_free(c);
	c = load_ok("---\n# only a document marker\n");
	check_defaults(c);
	config_free(c);
}
END_TEST

START_TEST(built_in_defaults)
{
	struct config *c = config_new_default();
	char *db = config_db_path(c);

	check_defaults(c);
	ck_assert_str_eq(db, "/var/lib/aupd/aupd.db");
	free(db);
	config_free(c);
	config_free(NULL);
}
END_TEST

START_TEST(every_key_is_read)
{
	struct config *c = load_ok("listen: '[::1]:9443'\n"
				   "tls:\n"
				   "  cert: certs/cert.pem\n"
				   "  key: /etc/ssl/private/key.pem\n"
				   "  enabled: true\n"
				   "state_dir: state\n"
				   "rules: [rules.d, /srv/more-rules.yaml]\n"
				   "default_effect: flag\n"
				   "limits:\n"
				   "  max_body: 512KiB\n"
				   "  max_batch: 5\n"
				   "  max_connections: 10\n"
				   "  max_connections_per_ip: 3\n"
				   "  connection_timeout: 2m\n"
				   "  connection_memory: 128KiB\n"
				   "  queue_events: 500\n"
				   "  http_threads: 4\n"
				   "  rate_per_token: 50\n"
				   "  rate_burst: 200\n"
				   "checkpoint:\n"
				   "  every: 10\n"
				   "  interval: 5m\n"
				   "notifiers:\n"
				   "  compliance:\n"
				   "    url: https://hooks.example.org/aupd\n"
				   "    secret_file: compliance.secret\n"
				   "    ca_file: /etc/aupd/hooks-ca.pem\n"
				   "    timeout: 10s\n"
				   "  ops:\n"
				   "    url: http://127.0.0.1:9000/hook\n"
				   "    secret_file: /etc/aupd/ops.secret\n"
				   "audit:\n"
				   "  require_justification: true\n"
				   "user: aupd\n"
				   "log_level: debug\n");
	const struct notifier_conf *n;

	ck_assert_str_eq(c->listen_host, "::1");
	ck_assert_uint_eq(c->listen_port, 9443);
	ck_assert(c->listen_ipv6);
	ck_assert(c->listen_loopback);
	ck_assert(c->tls_enabled);
	ck_assert_str_eq(c->tls_cert, "/etc/aupd/certs/cert.pem");
	ck_assert_str_eq(c->tls_key, "/etc/ssl/private/key.pem");
	ck_assert_str_eq(c->state_dir, "/etc/aupd/state");
	ck_assert_uint_eq(c->n_rules, 2);
	ck_assert_str_eq(c->rules[0], "/etc/aupd/rules.d");
	ck_assert_str_eq(c->rules[1], "/srv/more-rules.yaml");
	ck_assert_int_eq(c->default_effect, EFFECT_FLAG);
	ck_assert_uint_eq(c->max_body, 512 * 1024);
	ck_assert_uint_eq(c->max_batch, 5);
	ck_assert_uint_eq(c->max_connections, 10);
	ck_assert_uint_eq(c->max_connections_per_ip, 3);
	ck_assert_int_eq(c->connection_timeout_us, 120 * AUPD_USEC);
	ck_assert_uint_eq(c->connection_memory, 128 * 1024);
	ck_assert_uint_eq(c->queue_events, 500);
	ck_assert_uint_eq(c->http_threads, 4);
	ck_assert_uint_eq(c->rate_per_token, 50);
	ck_assert_uint_eq(c->rate_burst, 200);
	ck_assert(c->require_justification);
	ck_assert_str_eq(c->user, "aupd");
	ck_assert_uint_eq(c->checkpoint_every, 10);
	ck_assert_int_eq(c->checkpoint_interval_us, 300 * AUPD_USEC);
	ck_assert_int_eq(c->log_level, LOG_LVL_DEBUG);
	ck_assert_uint_eq(c->n_notifiers, 2);
	n = config_notifier(c, "compliance");
	ck_assert_ptr_nonnull(n);
	ck_assert_str_eq(n->url, "https://hooks.example.org/aupd");
	ck_assert_str_eq(n->secret_file, "/etc/aupd/compliance.secret");
	ck_assert_str_eq(n->ca_file, "/etc/aupd/hooks-ca.pem");
	ck_assert_int_eq(n->timeout_us, 10 * AUPD_USEC);
	n = config_notifier(c, "ops");
	ck_assert_ptr_nonnull(n);
	ck_assert_str_eq(n->url, "http://127.0.0.1:9000/hook");
	ck_assert_str_eq(n->secret_file, "/etc/aupd/ops.secret");
	ck_assert_ptr_null(n->ca_file);
	ck_assert_int_eq(n->timeout_us, 5 * AUPD_USEC); /* the documented default */
	ck_assert_ptr_null(config_notifier(c, "nobody"));
	config_free(c);
}
END_TEST

START_TEST(listen_forms)
{
	struct config *c;

	c = load_ok("listen: 0.0.0.0:443\n");
	ck_assert_str_eq(c->listen_host, "0.0.0.0");
	ck_assert_uint_eq(c->listen_port, 443);
	ck_assert(!c->listen_ipv6 && !c->listen_loopback);
	config_free(c);

	c = load_ok("listen: localhost:8443\n");
	ck_assert_str_eq(c->listen_host, "127.0.0.1");
	ck_assert_uint_eq(c->listen_port, 8443);
	ck_assert(!c->listen_ipv6 && c->listen_loopback);
	config_free(c);

	c = load_ok("listen: 127.0.0.1:0\n");
	ck_assert_uint_eq(c->listen_port, 0);
	ck_assert(c->listen_loopback);
	config_free(c);

	c = load_ok("listen: 127.10.0.1:65535\n");
	ck_assert_uint_eq(c->listen_port, 65535);
	ck_assert(c->listen_loopback);
	config_free(c);

	c = load_ok("listen: \"[::1]:8443\"\n");
	ck_assert_str_eq(c->listen_host, "::1");
	ck_assert(c->listen_ipv6 && c->listen_loopback);
	config_free(c);

	c = load_ok("listen: '[::]:8443'\n");
	ck_assert_str_eq(c->listen_host, "::");
	ck_assert(c->listen_ipv6 && !c->listen_loopback);
	config_free(c);

	c = load_ok("listen: '[2001:db8::7]:0'\n");
	ck_assert_str_eq(c->listen_host, "2001:db8::7");
	ck_assert_uint_eq(c->listen_port, 0);
	ck_assert(c->listen_ipv6 && !c->listen_loopback);
	config_free(c);
}
END_TEST

START_TEST(tls_forms)
{
	struct config *c;

	/* plain HTTP on loopback is allowed */
	c = load_ok("tls: {enabled: false}\n");
	ck_assert(!c->tls_enabled);
	config_free(c);
	c = load_ok("listen: '[::1]:8080'\ntls:\n  enabled: false\n");
	ck_assert(!c->tls_enabled);
	config_free(c);
	c = load_ok("listen: 127.0.0.5:1\ntls:\n  enabled: off\n");
	ck_assert(!c->tls_enabled);
	config_free(c);
	c = load_ok("listen: 0.0.0.0:443\ntls:\n  enabled: yes\n");
	ck_assert(c->tls_enabled);
	config_free(c);
	/* both cert and key */
	c = load_ok("tls:\n  cert: /a/cert.pem\n  key: /a/key.pem\n");
	ck_assert_str_eq(c->tls_cert, "/a/cert.pem");
	ck_assert_str_eq(c->tls_key, "/a/key.pem");
	config_free(c);
}
END_TEST

START_TEST(rules_as_single_string)
{
	struct config *c = load_ok("rules: /srv/aupd/rules.yaml\n");

	ck_assert_uint_eq(c->n_rules, 1);
	ck_assert_str_eq(c->rules[0], "/srv/aupd/rules.yaml");
	config_free(c);
	c = load_ok("rules: local-rules\n");
	ck_assert_uint_eq(c->n_rules, 1);
	ck_assert_str_eq(c->rules[0], "/etc/aupd/local-rules");
	config_free(c);
	c = load_ok("rules:\n  - /a\n  - b/c.yaml\n  - /d\n");
	ck_assert_uint_eq(c->n_rules, 3);
	ck_assert_str_eq(c->rules[0], "/a");
	ck_assert_str_eq(c->rules[1], "/etc/aupd/b/c.yaml");
	ck_assert_str_eq(c->rules[2], "/d");
	config_free(c);
}
END_TEST

START_TEST(default_effect_and_log_levels)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} levels[] = {
		{"error", LOG_LVL_ERR},	  {"warning", LOG_LVL_WARNING}, {"notice", LOG_LVL_NOTICE},
		{"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG},
	};
	struct config *c;
	char yaml[64];

	c = load_ok("default_effect: deny\n");
	ck_assert_int_eq(c->default_effect, EFFECT_DENY);
	config_free(c);
	c = load_ok("default_effect: allow\n");
	ck_assert_int_eq(c->default_effect, EFFECT_ALLOW);
	config_free(c);
	for (size_t i = 0; i < AUPD_ARRAY_LEN(levels); i++) {
		snprintf(yaml, sizeof(yaml), "log_level: %s\n", levels[i].name);
		c = load_ok(yaml);
		ck_assert_int_eq(c->log_level, levels[i].lvl);
		config_free(c);
	}
}
END_TEST

START_TEST(relative_paths_from_a_real_file)
{
	char *dir = tu_tmpdir();
	char *sub = malloc(strlen(dir) + 16);
	struct diag_list dl = {0};
	struct config *c;
	char want[4096];

	sprintf(sub, "%s/etc", dir);
	ck_assert_int_eq(mkdir_p(sub, 0755, NULL), 0);
	tu_write(tu_path(sub, "aupd.yaml"), "state_dir: state\n"
					    "rules: rules.d\n"
					    "tls:\n  cert: tls/c.pem\n  key: /abs/k.pem\n"
					    "notifiers:\n  n:\n    url: https://x/y\n"
					    "    secret_file: n.secret\n    ca_file: ca/ca.pem\n");
	c = config_load(tu_path(sub, "aupd.yaml"), &dl);
	ck_assert_msg(c != NULL, "rejected:%s", diags_text(&dl));
	snprintf(want, sizeof(want), "%s/state", sub);
	ck_assert_str_eq(c->state_dir, want);
	snprintf(want, sizeof(want), "%s/rules.d", sub);
	ck_assert_str_eq(c->rules[0], want);
	snprintf(want, sizeof(want), "%s/tls/c.pem", sub);
	ck_assert_str_eq(c->tls_cert, want);
	ck_assert_str_eq(c->tls_key, "/abs/k.pem");
	snprintf(want, sizeof(want), "%s/n.secret", sub);
	ck_assert_str_eq(c->notifiers[0].secret_file, want);
	snprintf(want, sizeof(want), "%s/ca/ca.pem", sub);
	ck_assert_str_eq(c->notifiers[0].ca_file, want);
	snprintf(want, sizeof(want), "%s/state/aupd.db", sub);
	{
		char *db = config_db_path(c);

		ck_assert_str_eq(db, want);
		free(db);
	}
	config_free(c);

	/* an empty file on disk */
	tu_write(tu_path(sub, "empty.yaml"), "");
	c = config_load(tu_path(sub, "empty.yaml"), &dl);
	ck_assert_msg(c != NULL, "rejected:%s", diags_text(&dl));
	check_defaults(c);
	config_free(c);

	/* a missing file names its path */
	ck_assert_ptr_null(config_load(tu_path(sub, "missing.yaml"), &dl));
	ck_assert_uint_eq(dl.n, 1);
	ck_assert_ptr_nonnull(strstr(dl.v[0].msg, "missing.yaml"));
	diag_list_free(&dl);
	tu_rmtree(dir);
	free(sub);
	free(dir);
}
END_TEST

START_TEST(unknown_keys)
{
	load_err("lisen: 127.0.0.1:1\n", 1, 1,
		 "unknown configuration key 'lisen' (did you mean 'listen'?)");
	load_err("state_dir: /x\nrulez: [/r]\n", 2, 1,
		 "unknown configuration key 'rulez' (did you mean 'rules'?)");
	load_err("tls:\n  enabeld: true\n", 2, 3, "unknown tls key 'enabeld' (did you mean 'enabled'?)");
	load_err("limits:\n  max_bodyy: 1MiB\n", 2, 3,
		 "unknown limits key 'max_bodyy' (did you mean 'max_body'?)");
	load_err("checkpoint:\n  intervall: 5s\n", 2, 3,
		 "unknown checkpoint key 'intervall' (did you mean 'interval'?)");
	load_err("notifiers:\n  hook:\n    url: https://h/x\n    secret_fil: /s\n", 4, 5,
		 "unknown notifier key 'secret_fil' (did you mean 'secret_file'?)");
	load_err("audit:\n  require_justificaton: true\n", 2, 3,
		 "unknown audit key 'require_justificaton' (did you mean 'require_justification'?)");
	load_err("limits:\n  rate_per_tokn: 5\n", 2, 3,
		 "unknown limits key 'rate_per_tokn' (did you mean 'rate_per_token'?)");
}
END_TEST

START_TEST(unknown_key_without_suggestion)
{
	struct diag_list dl = {0};
	const char *yaml = "frobnicate: 1\n";

	ck_assert_ptr_null(config_load_buf(NAME, yaml, strlen(yaml), &dl));
	ck_assert_msg(has_diag(&dl, 1, 1, "unknown configuration key 'frobnicate'"), "got:%s",
		      diags_text(&dl));
	ck_assert_msg(strstr(dl.v[0].msg, "did you mean") == NULL, "%s", dl.v[0].msg);
	diag_list_free(&dl);
}
END_TEST

START_TEST(wrong_types)
{
	load_err("listen: {host: a}\n", 1, 9, "listen must be a string, not a mapping");
	load_err("state_dir: [a, b]\n", 1, 12, "state_dir must be a string, not a list");
	load_err("state_dir: true\n", 1, 12, "state_dir must be a string, not a boolean");
	load_err("state_dir: ~\n", 1, 12, "state_dir must be a string, not null");
	load_err("state_dir: \"\"\n", 1, 12, "state_dir must not be empty");
	load_err("tls: 5\n", 1, 6, "tls must be a mapping, not a number");
	load_err("tls:\n  enabled: 1\n", 2, 12, "tls.enabled must be true or false, not a number");
	load_err("tls:\n  cert: [a]\n  key: /k\n", 2, 9, "tls.cert must be a string, not a list");
	load_err("limits: [1]\n", 1, 9, "limits must be a mapping, not a list");
	load_err("limits: true\n", 1, 9, "limits must be a mapping, not a boolean");
	load_err("limits:\n  max_body: {a: 1}\n", 2, 13,
		 "limits.max_body must be a size such as 8MiB, not a mapping");
	load_err("limits:\n  max_batch: lots\n", 2, 14,
		 "limits.max_batch must be a whole number, not a string");
	load_err("limits:\n  max_batch: 2.5\n", 2, 14, "limits.max_batch must be a whole number");
	load_err("checkpoint: 10\n", 1, 13, "checkpoint must be a mapping, not a number");
	load_err("checkpoint:\n  every: ten\n", 2, 10,
		 "checkpoint.every must be a whole number, not a string");
	load_err("checkpoint:\n  interval: [1s]\n", 2, 13,
		 "checkpoint.interval must be a duration such as 60s, 24h or 90d, not a list");
	load_err("notifiers: [a]\n", 1, 12, "notifiers must be a mapping, not a list");
	load_err("notifiers:\n  hook: https://x\n", 2, 9,
		 "notifiers.hook must be a mapping, not a string");
	load_err("rules: {a: 1}\n", 1, 8, "rules must be a list of files or directories, not a mapping");
	load_err("rules: [/a, [b]]\n", 1, 13, "each rules entry must be a string, not a list");
	load_err("default_effect: 3\n", 1, 17, "default_effect must be allow, flag or deny, not '3'");
	load_err("default_effect: block\n", 1, 17,
		 "default_effect must be allow, flag or deny, not 'block'");
	load_err("default_effect: [deny]\n", 1, 17, "default_effect must be a string, not a list");
	load_err("log_level: verbose\n", 1, 12,
		 "log_level must be error, warning, notice, info or debug, not 'verbose'");
	load_err("log_level: 7\n", 1, 12, "log_level must be error, warning, notice, info or debug");
	load_err("audit: yes\n", 1, 8, "audit must be a mapping, not a boolean");
	load_err("audit:\n  require_justification: maybe\n", 2, 26,
		 "audit.require_justification must be true or false, not a string");
	load_err("user: [aupd]\n", 1, 7, "user must be a string, not a list");
	load_err("user: ''\n", 1, 7, "user must not be empty");
	load_err("- listen\n- tls\n", 1, 1, "the configuration must be a mapping, not a list");
	load_err("just a string\n", 1, 1, "the configuration must be a mapping, not a string");
}
END_TEST

START_TEST(bad_durations)
{
	load_err("checkpoint:\n  interval: 60\n", 2, 13, "checkpoint.interval: '60' is");
	load_err("checkpoint:\n  interval: 60\n", 2, 13, "no unit");
	load_err("checkpoint:\n  interval: 5x\n", 2, 13, "checkpoint.interval: '5x' is not a duration");
	load_err("checkpoint:\n  interval: -1s\n", 2, 13,
		 "checkpoint.interval: '-1s' is not a duration");
	load_err("checkpoint:\n  interval: 500ms\n", 2, 13, "checkpoint.interval must be at least 1s");
	load_err("limits:\n  connection_timeout: 60\n", 2, 23, "limits.connection_timeout: '60' is");
	load_err("notifiers:\n  n:\n    url: https://x\n    secret_file: /s\n    timeout: 5x\n", 5,
		 14, "timeout: '5x' is not a duration");
	load_err("notifiers:\n  n:\n    url: https://x\n    secret_file: /s\n    timeout: 0s\n", 5,
		 14, "timeout must be at least 1ms");
}
END_TEST

START_TEST(bad_sizes)
{
	load_err("limits:\n  max_body: 8XB\n", 2, 13, "limits.max_body: '8XB' is not a size");
	load_err("limits:\n  max_body: abc\n", 2, 13, "limits.max_body: 'abc' is not a size");
	load_err("limits:\n  max_body: 100\n", 2, 13,
		 "limits.max_body must be between 1024 and 1073741824 bytes");
	load_err("limits:\n  max_body: 2GiB\n", 2, 13,
		 "limits.max_body must be between 1024 and 1073741824 bytes");
	load_err("limits:\n  connection_memory: 1KiB\n", 2, 22,
		 "limits.connection_memory must be between 8192 and 16777216 bytes");
}
END_TEST

START_TEST(out_of_range_numbers)
{
	load_err("limits:\n  max_batch: 0\n", 2, 14, "limits.max_batch must be between 1 and 1000000");
	load_err("limits:\n  max_batch: -5\n", 2, 14, "limits.max_batch must be between 1 and 1000000");
	load_err("limits:\n  max_batch: 1000001\n", 2, 14,
		 "limits.max_batch must be between 1 and 1000000");
	load_err("limits:\n  http_threads: 65\n", 2, 17, "limits.http_threads must be between 1 and 64");
	load_err("limits:\n  http_threads: 0\n", 2, 17, "limits.http_threads must be between 1 and 64");
	load_err("limits:\n  max_connections: 0\n", 2, 20, "limits.max_connections must be between 1");
	load_err("limits:\n  queue_events: 0\n", 2, 17, "limits.queue_events must be between 1");
	load_err("checkpoint:\n  every: 0\n", 2, 10, "checkpoint.every must be between 1 and 100000000");
	load_err("limits:\n  rate_burst: -1\n", 2, 15, "limits.rate_burst must be between 0");
	load_err("limits:\n  rate_per_token: -1\n", 2, 19, "limits.rate_per_token must be between 0");
}
END_TEST

START_TEST(bad_listen)
{
	load_err("listen: 8443\n", 1, 9,
		 "listen must be host:port, e.g. 127.0.0.1:8443 or [::1]:8443 (got '8443')");
	load_err("listen: '::1:8443'\n", 1, 9, "listen must be host:port");
	load_err("listen: '[::1]'\n", 1, 9, "listen must be host:port");
	load_err("listen: host:99999\n", 1, 9,
		 "listen port must be a number from 0 (any free port) to 65535 (got 'host:99999')");
	load_err("listen: '127.0.0.1:'\n", 1, 9, "listen port must be a number");
	load_err("listen: '[::1]:https'\n", 1, 9, "listen port must be a number");
	load_err("listen: example.com:80\n", 1, 9,
		 "listen host must be an IPv4 address, localhost, or [IPv6] (got 'example.com:80')");
	load_err("listen: 256.1.1.1:80\n", 1, 9, "listen host must be an IPv4 address");
	load_err("listen: '[fe80::zz]:1'\n", 1, 9, "listen host is not an IPv6 address");
	load_err("listen: '[127.0.0.1]:80'\n", 1, 9, "listen host is not an IPv6 address");
}
END_TEST

START_TEST(tls_cert_and_key_together)
{
	load_err("tls:\n  cert: /c.pem\n", 2, 3, "tls.cert and tls.key go together");
	load_err("tls:\n  enabled: true\n  key: /k.pem\n", 2, 3, "tls.cert and tls.key go together");
}
END_TEST

START_TEST(plain_http_only_on_loopback)
{
	load_err("listen: 0.0.0.0:8443\ntls:\n  enabled: false\n", 3, 3,
		 "tls.enabled: false is only allowed when listen is a loopback address");
	load_err("listen: '[::]:8443'\ntls: {enabled: false}\n", 2, 6,
		 "tls.enabled: false is only allowed when listen is a loopback address");
	load_err("tls:\n  enabled: no\nlisten: 192.0.2.1:80\n", 2, 3,
		 "tls.enabled: false is only allowed when listen is a loopback address");
}
END_TEST

START_TEST(notifier_errors)
{
	load_err("notifiers:\n  hook:\n    secret_file: /s\n", 3, 5, "notifier 'hook' has no url");
	load_err("notifiers:\n  hook:\n    url: https://x/y\n", 3, 5,
		 "notifier 'hook' has no secret_file");
	load_err("notifiers:\n  hook:\n    url: ftp://x/y\n    secret_file: /s\n", 3, 10,
		 "url must start with https:// or http://");
	load_err("notifiers:\n  hook:\n    url: hooks.example.org\n    secret_file: /s\n", 3, 10,
		 "url must start with https:// or http://");
	load_err("notifiers:\n  'bad name':\n    url: https://x\n    secret_file: /s\n", 2, 3,
		 "notifier names are 1-64 of");
}
END_TEST

START_TEST(duplicate_keys)
{
	load_err("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", 2, 1,
		 "duplicate configuration key 'listen'");
	load_err("limits:\n  max_batch: 1\n  max_batch: 2\n", 3, 3, "duplicate limits key 'max_batch'");
	load_err("tls:\n  enabled: true\n  enabled: false\n", 3, 3, "duplicate tls key 'enabled'");
	load_err("notifiers:\n  a:\n    url: https://x\n    secret_file: /s\n"
		 "  a:\n    url: https://y\n    secret_file: /t\n",
		 5, 3, "duplicate notifier 'a'");
	load_err("notifiers:\n  a:\n    url: https://x\n    url: https://y\n    secret_file: /s\n", 4,
		 5, "duplicate notifier key 'url'");
}
END_TEST

START_TEST(invalid_yaml)
{
	load_err("a: b: c\n", 1, 5, "invalid YAML: mapping values are not allowed");
	load_err("listen: 127.0.0.1:1\nstate_dir: /x\ntls:\n  cert: a\n key: b\n", 5, 2,
		 "invalid YAML");
	load_err("tls:\n\tcert: x\n", 2, 1, "invalid YAML: found character that cannot start any token");
	load_err("listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", 3, 1,
		 "a second YAML document is not allowed");
}
END_TEST

START_TEST(yaml_aliases_rejected)
{
	load_err("state_dir: &a /x\nrules: *a\n", 1, 12, "YAML aliases are not supported");
	load_err("tls: &t {enabled: true}\nlimits: *t\n", 1, 6, "YAML aliases are not supported");
	/* an anchor used once is harmless */
	config_free(load_ok("state_dir: &a /x\n"));
}
END_TEST

START_TEST(several_errors_all_reported)
{
	const char *yaml = "lisen: 127.0.0.1:1\n"
			   "limits:\n"
			   "  max_body: 8XB\n"
			   "  max_batch: 0\n"
			   "checkpoint:\n"
			   "  interval: 60\n"
			   "default_effect: block\n";
	struct diag_list dl = {0};

	ck_assert_ptr_null(config_load_buf(NAME, yaml, strlen(yaml), &dl));
	ck_assert_msg(dl.n == 5, "expected 5 errors, got:%s", diags_text(&dl));
	ck_assert(has_diag(&dl, 1, 1, "unknown configuration key 'lisen'"));
	ck_assert(has_diag(&dl, 3, 13, "limits.max_body: '8XB' is not a size"));
	ck_assert(has_diag(&dl, 4, 14, "limits.max_batch must be between 1 and 1000000"));
	ck_assert(has_diag(&dl, 6, 13, "checkpoint.interval: '60' is"));
	ck_assert(has_diag(&dl, 7, 17, "default_effect must be allow, flag or deny"));
	diag_list_free(&dl);
}
END_TEST

START_TEST(parse_listen_directly)
{
	const char *why;
	char *host = NULL;
	uint16_t port;
	bool v6, lo;

	ck_assert_int_eq(config_parse_listen("[::1]:8443", &host, &port, &v6, &lo, &why), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 8443);
	ck_assert(v6 && lo);
	ck_assert_ptr_null(why);
	free(host);
	ck_assert_int_eq(config_parse_listen("8443", &host, &port, &v6, &lo, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_int_eq(config_parse_listen("1.2.3.4:-1", &host, &port, &v6, &lo, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "port"));
	ck_assert_int_eq(config_parse_listen("1.2.3.4:65536", &host, &port, &v6, &lo, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "port"));
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, empty_file_gives_defaults);
	tcase_add_test(tc, comment_only_file_gives_defaults);
	tcase_add_test(tc, built_in_defaults);
	tcase_add_test(tc, every_key_is_read);
	tcase_add_test(tc, listen_forms);
	tcase_add_test(tc, tls_forms);
	tcase_add_test(tc, rules_as_single_string);
	tcase_add_test(tc, default_effect_and_log_levels);
	tcase_add_test(tc, relative_paths_from_a_real_file);
	tcase_add_test(tc, parse_listen_directly);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, unknown_keys);
	tcase_add_test(tc, unknown_key_without_suggestion);
	tcase_add_test(tc, wrong_types);
	tcase_add_test(tc, bad_durations);
	tcase_add_test(tc, bad_sizes);
	tcase_add_test(tc, out_of_range_numbers);
	tcase_add_test(tc, bad_listen);
	tcase_add_test(tc, tls_cert_and_key_together);
	tcase_add_test(tc, plain_http_only_on_loopback);
	tcase_add_test(tc, notifier_errors);
	tcase_add_test(tc, duplicate_keys);
	tcase_add_test(tc, invalid_yaml);
	tcase_add_test(tc, yaml_aliases_rejected);
	tcase_add_test(tc, several_errors_all_reported);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* every temp dir of this run lives under one, removed even when a test failed */
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *base = malloc(strlen(tmp) + 32);
	int rc;

	sprintf(base, "%s/aupd-unit-XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror(base);
		return 1;
	}
	setenv("TMPDIR", base, 1);
	rc = tu_run(config_suite());
	tu_rmtree(base);
	free(base);
	return rc;
}
