/* cli.h - the aupd subcommands (contract section 1) */
#ifndef AUPD_CLI_H
#define AUPD_CLI_H

#include <stdbool.h>

#include "aupd/config.h"
#include "aupd/util.h"

/*
 * Each takes the arguments after its own name (argv[0] is the subcommand)
 * and returns the process exit status: 0 success, 1 a failed check,
 * 2 bad usage.  Errors go to stderr, one line each.
 */
int cmd_serve(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_token(int argc, char **argv);

/* Prints "aupd: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True for --help and -h. */
bool cli_is_help(const char *arg);
/*
 * The start of a command with subcommands ("rules", "token"): with none
 * named, a one-line error and 2; with --help as the first, `usage` on stdout
 * and 0; otherwise -1, and the caller goes on with argv[1].
 */
int cli_subcommand(int argc, char **argv, const char *cmd, const char *choices,
		   const char *usage);

/*
 * After getopt_long (with opterr = 0 and an optstring starting with ':')
 * returned c, '?' or ':': prints the one-line error for the option at hand,
 * naming the command ("serve", "token create") and its --help.
 */
void cli_bad_option(const char *cmd, int c, char **argv);
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
/* Loads a configuration; on errors prints each (positioned) and returns NULL. */
struct config *cli_load_config(const char *path);

#endif
