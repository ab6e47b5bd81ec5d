/* cli_rules.h - helpers shared by the rules and replay subcommands */
#ifndef AUPD_CLI_RULES_H
#define AUPD_CLI_RULES_H

#include <stdbool.h>

#include "aupd/util.h"

/* True for --help and -h. */
bool cli_is_help(const char *arg);
/*
 * Matches "--name VALUE", "--name=VALUE" or "SHORT VALUE" (shortname may be
 * NULL) at argv[*i]: 1 with *val set and *i past a separate value, 0 when
 * argv[*i] is another argument, -1 (after an error line) when the value is
 * missing.
 */
int cli_option(int argc, char **argv, int *i, const char *name, const char *shortname,
	       const char **val);
/* Prints each diagnostic as one "FILE:LINE:COL: error: MESSAGE" line on stderr. */
void cli_print_diags(const struct diag_list *dl);

#endif
