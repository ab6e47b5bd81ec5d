/* cli_ledger.c - aupd verify and aupd token: the ledger and tokens from the command line */
#include "aupd/cli.h"
#include "aupd/config.h"
#include "aupd/ledger.h"
#include "aupd/tokens.h"
#include "aupd/verify_remote.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PUBKEY_MAX 65536

static const char verify_usage[] =
	"usage: aupd verify --db FILE [--key PUBKEY.pem]\n"
	"       aupd verify --url URL --token TOKEN --key PUBKEY.pem [--cacert FILE]\n"
	"\n"
	"Recomputes the ledger's hash chain and checks every signed checkpoint.\n"
	"Exit status 0 when intact; 1 naming the first bad record otherwise.\n"
	"\n"
	"  --db FILE        the daemon's database (state_dir/aupd.db); safe while it runs\n"
	"  --key FILE       the ledger's public key (default: ledger.pub.pem beside the\n"
	"                   database); give an independently kept copy for a real audit\n"
	"  --url URL        a running daemon's base URL (https://host:port): checks its\n"
	"                   ledger over GET /v1/audit/log exactly as --db checks a file\n"
	"  --token TOKEN    an auditor token for --url (or env AUPD_TOKEN)\n"
	"  --cacert FILE    trust this certificate or CA for --url (e.g. the daemon's\n"
	"                   generated state_dir/tls/cert.pem)\n"
	"  -h, --help       show this help\n";

static int
load_key_file(const char *path, struct ledger_key *k)
{
	struct aupd_error err;
	size_t len;
	char *pem = file_read_all(path, PUBKEY_MAX, &len, &err);
	int rc;

	if (!pem) {
		cli_error("verify: %s", err.msg);
		return -1;
	}
	rc = ledger_key_load_public(pem, len, k, &err);
	free(pem);
	if (rc < 0)
		cli_error("verify: %s: %s", path, err.msg);
	return rc;
}

void
verify_print_result(const struct ledger_verifier *lv, const char *source, bool signatures)
{
	char hex[2 * LEDGER_HASH_LEN + 1];

	if (lv->bad_seq) {
		fprintf(stderr, "aupd: verify: %s: first bad record is seq %lld: %s\n", source,
			(long long)lv->bad_seq, lv->why);
		return;
	}
	hex_encode(lv->head.hash, LEDGER_HASH_LEN, hex);
	printf("ok: %lld records (seq %lld..%lld), %zu checkpoints %s, head %s", (long long)lv->n_records,
	       lv->n_records ? (long long)(lv->head.seq - lv->n_records + 1) : 0LL,
	       (long long)lv->head.seq, lv->n_checked,
	       signatures ? "with valid signatures" : "matching the chain (signatures NOT checked)",
	       hex);
	if (lv->n_opaque)
		printf(" (%lld records of other tenants checked only through the chain)",
		       (long long)lv->n_opaque);
	putchar('\n');
}

static int
verify_db(const char *db_path, const char *key_path)
{
	struct ledger_key key = {0};
	struct ledger_verifier lv;
	struct aupd_error err;
	struct dbconn *c;
	char *beside = NULL;
	bool have_key = false;
	int rc = 1;

	if (!key_path) {
		char *dir = xstrdup(db_path), *slash = strrchr(dir, '/');

		if (slash)
			*slash = '\0';
		beside = path_join(slash ? dir : ".", "ledger.pub.pem");
		free(dir);
		if (access(beside, R_OK) == 0)
			key_path = beside;
		else
			fprintf(stderr, "aupd: verify: note: no --key and no %s: checkpoint "
					"signatures cannot be checked\n",
				beside);
	}
	if (key_path) {
		if (load_key_file(key_path, &key) < 0) {
			free(beside);
			return 1;
		}
		have_key = true;
	}
	c = store_open(db_path, STORE_READONLY, &err);
	if (!c) {
		cli_error("verify: %s", err.msg);
		goto out;
	}
	lv_init(&lv, have_key ? &key : NULL);
	if (ledger_verify_db(c, &lv, &err) < 0) {
		cli_error("verify: %s", err.msg);
	} else {
		verify_print_result(&lv, db_path, have_key);
		rc = lv.bad_seq ? 1 : 0;
	}
	lv_free(&lv);
	store_close(c);
out:
	ledger_key_free(&key);
	free(beside);
	return rc;
}

int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},	  {"key", required_argument, NULL, 'k'},
		{"url", required_argument, NULL, 'u'},	  {"token", required_argument, NULL, 't'},
		{"cacert", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = NULL, *key = NULL, *url = NULL, *token = NULL, *cacert = NULL;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'u':
			url = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'c':
			cacert = optarg;
			break;
		case 'h':
			fputs(verify_usage, stdout);
			return 0;
		default:
			cli_bad_option("verify", c, argv);
			return 2;
		}
	}
	if (optind < argc) {
		cli_error("verify: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!!db == !!url) {
		cli_error("verify: give either --db FILE or --url URL");
		return 2;
	}
	if (db)
		return verify_db(db, key);
	if (!token)
		token = getenv("AUPD_TOKEN");
	if (!token || !key) {
		cli_error("verify: --url needs --token (or AUPD_TOKEN) and --key");
		return 2;
	}
	return verify_remote(url, token, key, cacert);
}

/* ---- tokens ---- */

static const char token_usage[] =
	"usage: aupd token create --name NAME --role ingest|auditor|operator [--tenant TENANT]\n"
	"                         [--config FILE]\n"
	"       aupd token list [--all] [--config FILE]\n"
	"       aupd token revoke NAME [--config FILE]\n"
	"\n"
	"Manages API tokens in the database of the configured state_dir; works while the\n"
	"daemon runs, and takes effect at once.  `create` prints the secret alone on one\n"
	"line: it is shown once, and only its SHA-256 is stored.\n"
	"\n"
	"  --name NAME      1-64 of A-Z a-z 0-9 . _ -\n"
	"  --role ROLE      ingest (POST events), auditor (read), operator (read, reload, alerts)\n"
	"  --tenant TENANT  bind the token to one tenant\n"
	"  --all            list revoked tokens too\n"
	"  -c, --config FILE  configuration (default " AUPD_DEFAULT_CONFIG ")\n";

static struct dbconn *
open_state_db(const char *config_path)
{
	struct aupd_error err;
	struct config *cfg = cli_load_config(config_path);
	struct dbconn *c = NULL;
	char *path;

	if (!cfg)
		return NULL;
	if (mkdir_p(cfg->state_dir, 0700, &err) < 0) {
		cli_error("token: %s", err.msg);
		config_free(cfg);
		return NULL;
	}
	path = config_db_path(cfg);
	c = store_open(path, STORE_CREATE, &err);
	if (!c)
		cli_error("token: %s", err.msg);
	free(path);
	config_free(cfg);
	return c;
}

int
cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},	  {"role", required_argument, NULL, 'r'},
		{"tenant", required_argument, NULL, 't'}, {"config", required_argument, NULL, 'c'},
		{"all", no_argument, NULL, 'a'},	  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = NULL, *role_s = NULL, *tenant = NULL;
	const char *config_path = AUPD_DEFAULT_CONFIG, *sub;
	struct aupd_error err;
	struct dbconn *db;
	bool all = false;
	enum role role;
	int c, rc = 1;

	if ((rc = cli_subcommand(argc, argv, "token", "create, list or revoke", token_usage)) >= 0)
		return rc;
	sub = argv[1];
	if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke")) {
		cli_error("token: unknown subcommand '%s' (create, list or revoke)", sub);
		return 2;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'r':
			role_s = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			fputs(token_usage, stdout);
			return 0;
		default: {
			char cmd[16];

			snprintf(cmd, sizeof(cmd), "token %s", sub); /* create, list or revoke */
			cli_bad_option(cmd, c, argv + 1);
			return 2;
		}
		}
	}
	argc--;
	argv++;
	if (!strcmp(sub, "create")) {
		if (optind < argc || !name || !role_s) {
			cli_error("token create: needs --name and --role (and no other arguments)");
			return 2;
		}
		if (!token_name_valid(name)) {
			cli_error("token create: --name must be 1-64 of A-Z a-z 0-9 . _ -");
			return 2;
		}
		if (role_parse(role_s, &role) < 0) {
			cli_error("token create: --role must be ingest, auditor or operator");
			return 2;
		}
		if (tenant && !tenant_valid(tenant)) {
			cli_error("token create: --tenant must be 1-128 printable characters");
			return 2;
		}
	} else if (!strcmp(sub, "revoke")) {
		if (optind != argc - 1 || name || role_s || tenant) {
			cli_error("token revoke: needs exactly one NAME");
			return 2;
		}
		name = argv[optind];
	} else if (optind < argc || name || role_s || tenant) {
		cli_error("token list: takes only --all and --config");
		return 2;
	}
	if (!(db = open_state_db(config_path)))
		return 1;
	if (!strcmp(sub, "create")) {
		char secret[TOKEN_SECRET_LEN + 1];

		rc = token_create(db, name, role, tenant, secret, &err);
		if (rc == 0) {
			printf("%s\n", secret);
			fflush(stdout);
			OPENSSL_cleanse(secret, sizeof(secret));
		} else if (rc > 0) {
			cli_error("token create: a token named '%s' exists (revoke it first)", name);
		} else {
			cli_error("token create: %s", err.msg);
		}
		rc = rc ? 1 : 0;
	} else if (!strcmp(sub, "revoke")) {
		rc = token_revoke(db, name, &err);
		if (rc == 1)
			cli_error("token revoke: no active token named '%s'", name);
		else if (rc == 2)
			cli_error("token revoke: '%s' is revoked in the database, but %s", name,
				  err.msg);
		else if (rc < 0)
			cli_error("token revoke: %s", err.msg);
		rc = rc ? 1 : 0;
	} else {
		rc = token_list(db, all, stdout, &err);
		if (rc < 0)
			cli_error("token list: %s", err.msg);
		rc = rc ? 1 : 0;
	}
	store_close(db);
	return rc;
}
