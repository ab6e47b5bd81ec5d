/* types.h - the small enumerations shared by every layer: effects, severities, levels */
#ifndef AUPD_TYPES_H
#define AUPD_TYPES_H

/* Ordered: a stronger effect compares greater. */
enum effect {
	EFFECT_ALLOW = 0,
	EFFECT_FLAG = 1,
	EFFECT_DENY = 2,
};

enum severity {
	SEV_INFO = 0,
	SEV_LOW,
	SEV_MEDIUM,
	SEV_HIGH,
	SEV_CRITICAL,
};

enum alert_level {
	LEVEL_NOTICE = 0,
	LEVEL_WARNING,
	LEVEL_CRITICAL,
	LEVEL_SUSPEND,
};

enum role {
	ROLE_INGEST = 0,
	ROLE_AUDITOR,
	ROLE_OPERATOR,
};

const char *effect_name(enum effect e);
const char *severity_name(enum severity s);
const char *level_name(enum alert_level l);
const char *role_name(enum role r);
/* Parsers return 0 and fill *out, or -1 for an unknown name. */
int effect_parse(const char *s, enum effect *out);
int severity_parse(const char *s, enum severity *out);
int level_parse(const char *s, enum alert_level *out);
int role_parse(const char *s, enum role *out);

#endif
