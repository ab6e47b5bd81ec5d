/* log.c - one-line log messages on stderr with syslog level prefixes for journald */
#include "aupd/log.h"
#include "aupd/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level max_level = LOG_LVL_INFO;
static int human = -1;

void
log_init(enum log_level lvl)
{
	max_level = lvl;
	human = isatty(2) && !getenv("JOURNAL_STREAM");
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = {"emerg", "alert", "crit", "error",
					    "warning", "notice", "info", "debug"};
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (lvl > max_level)
		return;
	if (human < 0)
		human = isatty(2) && !getenv("JOURNAL_STREAM");
	if (human) {
		char ts[40];

		time_format_ms(time_now(), ts, sizeof(ts));
		n = (size_t)snprintf(line, sizeof(line), "%s %s: ", ts, names[lvl]);
	} else {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)lvl);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	/* one record per line: fold embedded newlines */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	if (write(2, line, n) < 0) {
		/* stderr is gone; nothing sensible to do */
	}
}
