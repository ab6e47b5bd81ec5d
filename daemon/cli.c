/* cli.c - shared helpers for the subcommands */
#include "aupd/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("aupd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool
cli_is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int
cli_subcommand(int argc, char **argv, const char *cmd, const char *choices, const char *usage)
{
	if (argc < 2) {
		cli_error("%s: name a subcommand: %s (see 'aupd %s --help')", cmd, choices, cmd);
		return 2;
	}
	if (cli_is_help(argv[1])) {
		fputs(usage, stdout);
		return 0;
	}
	return -1;
}

void
cli_bad_option(const char *cmd, int c, char **argv)
{
	char shortopt[3] = {'-', (char)optopt, 0};
	/* a missing value, or an unknown long option: the argument as given */
	const char *opt = c == ':' || !optopt ? argv[optind - 1] : shortopt;
	char help[64];

	snprintf(help, sizeof(help), "%s", cmd);
	help[strcspn(help, " ")] = 0;
	if (c == '?' && optopt && !strncmp(argv[optind - 1], "--", 2))
		/* a known long option given a value it does not take (--help=x) */
		cli_error("%s: option '%s' takes no value (see 'aupd %s --help')", cmd,
			  argv[optind - 1], help);
	else if (c == ':')
		cli_error("%s: option '%s' needs a value (see 'aupd %s --help')", cmd, opt, help);
	else
		cli_error("%s: unknown option '%s' (see 'aupd %s --help')", cmd, opt, help);
}

int
cli_option(int argc, char **argv, int *i, const char *name, const char *shortname,
       const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (!strncmp(a, name, n) && a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (strcmp(a, name) != 0 && (!shortname || strcmp(a, shortname) != 0))
		return 0;
	if (*i + 1 >= argc) {
		cli_error("%s needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

void
cli_print_diags(const struct diag_list *dl)
{
	char line[1024];

	for (size_t i = 0; i < dl->n; i++) {
		aupd_error_format(&dl->v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
}

struct config *
cli_load_config(const char *path)
{
	struct diag_list dl = {0};
	struct config *cfg = config_load(path, &dl);

	if (!cfg)
		cli_print_diags(&dl);
	diag_list_free(&dl);
	return cfg;
}
