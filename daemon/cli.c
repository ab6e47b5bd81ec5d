/* cli.c - shared helpers for the subcommands */
#include "aupd/cli.h"

#include <stdarg.h>
#include <stdio.h>

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
