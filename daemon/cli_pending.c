/* cli_pending.c - subcommands whose capability has not landed in this build */
#include "aupd/cli.h"

#include <stdio.h>
#include <string.h>

static int
pending(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
	}
	cli_error("%s: not available in this build", argv[0]);
	return 2;
}

int
cmd_rules(int argc, char **argv)
{
	return pending(argc, argv,
		       "usage: aupd rules check FILE|DIR...\n"
		       "       aupd rules test FILE|DIR...\n");
}

int
cmd_replay(int argc, char **argv)
{
	return pending(argc, argv,
		       "usage: aupd replay --rules FILE|DIR [--format ndjson] EVENTS.ndjson\n");
}


