/* cli.h - the aupd subcommands (contract section 1) */
#ifndef AUPD_CLI_H
#define AUPD_CLI_H

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

#endif
