/* log.h - one-line log messages on stderr with syslog level prefixes for journald */
#ifndef AUPD_LOG_H
#define AUPD_LOG_H

enum log_level {
	LOG_LVL_ALERT = 1,
	LOG_LVL_CRIT = 2,
	LOG_LVL_ERR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/*
 * Lines go to stderr as "<N>message" (the prefix journald reads) unless
 * stderr is a terminal, where they read "TIME LEVEL: message".  Thread-safe:
 * each line is one write(2).  Never pass secrets.
 */
void log_init(enum log_level max_level);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
