/* main.c - the aupd command: dispatch to subcommands */
#include "aupd/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: aupd COMMAND [OPTIONS]\n"
	"\n"
	"An acceptable-use policy daemon: judges tenants' usage events against YAML rules\n"
	"and keeps every verdict in a hash-chained, signed ledger.\n"
	"\n"
	"commands:\n"
	"  serve [--config FILE]                run the daemon in the foreground\n"
	"  rules check FILE|DIR...              load and validate rules\n"
	"  rules test FILE|DIR...               run the tests: sections of rule files\n"
	"  replay --rules FILE|DIR EVENTS       judge NDJSON events offline\n"
	"  verify --db FILE [--key PUB]         check the ledger's chain and signatures\n"
	"  token create|list|revoke ...         manage API tokens\n"
	"  version                              print the version\n"
	"\n"
	"'aupd COMMAND --help' describes each command.\n";

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		cli_error("name a command: serve, rules, replay, verify, token or version "
			  "(see 'aupd --help')");
		return 2;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			puts("usage: aupd version\n\nPrints the version of aupd.");
			return 0;
		}
		if (argc > 2) {
			cli_error("version takes no arguments");
			return 2;
		}
		printf("aupd %s\n", AUPD_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(cmd, "rules"))
		return cmd_rules(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(cmd, "token"))
		return cmd_token(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try 'aupd --help')", cmd);
	return 2;
}
