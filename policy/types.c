/* types.c - names of effects, severities, alert levels and roles */
#include "aupd/types.h"
#include "aupd/util.h"

#include <string.h>

static const char *const effects[] = {"allow", "flag", "deny"};
static const char *const severities[] = {"info", "low", "medium", "high", "critical"};
static const char *const levels[] = {"notice", "warning", "critical", "suspend"};
static const char *const roles[] = {"ingest", "auditor", "operator"};

static int
lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

const char *effect_name(enum effect e) { return effects[e]; }
const char *severity_name(enum severity s) { return severities[s]; }
const char *level_name(enum alert_level l) { return levels[l]; }
const char *role_name(enum role r) { return roles[r]; }

int
effect_parse(const char *s, enum effect *out)
{
	int i = lookup(effects, AUPD_ARRAY_LEN(effects), s);

	if (i < 0)
		return -1;
	*out = (enum effect)i;
	return 0;
}

int
severity_parse(const char *s, enum severity *out)
{
	int i = lookup(severities, AUPD_ARRAY_LEN(severities), s);

	if (i < 0)
		return -1;
	*out = (enum severity)i;
	return 0;
}

int
level_parse(const char *s, enum alert_level *out)
{
	int i = lookup(levels, AUPD_ARRAY_LEN(levels), s);

	if (i < 0)
		return -1;
	*out = (enum alert_level)i;
	return 0;
}

int
role_parse(const char *s, enum role *out)
{
	int i = lookup(roles, AUPD_ARRAY_LEN(roles), s);

	if (i < 0)
		return -1;
	*out = (enum role)i;
	return 0;
}
