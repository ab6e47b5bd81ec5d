/* path.c - field paths of conditions, group keys and messages: parse once, resolve per event */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum path_kind kind;
	bool esc_only;
} path_names[] = {
	{"id", P_ID, false},
	{"tenant", P_TENANT, false},
	{"actor", P_ACTOR, false},
	{"action", P_ACTION, false},
	{"purpose", P_PURPOSE, false},
	{"quantity", P_QUANTITY, false},
	{"time", P_TIME, false},
	{"time.hour", P_TIME_HOUR, false},
	{"time.weekday", P_TIME_WEEKDAY, false},
	{"verdict", P_VERDICT, true},
	{"rule", P_RULE, true},
	{"severity", P_SEVERITY, true},
	{"effect", P_EFFECT, true},
	{"tags", P_TAGS, true},
};

static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};


/* 1 + where an event keeps the string a path of this kind reads; 0 for the other kinds. */
static unsigned short
event_string_offset(enum path_kind k)
{
	switch (k) {
	case P_ID:
		return 1 + offsetof(struct event, id);
	case P_TENANT:
		return 1 + offsetof(struct event, tenant);
	case P_ACTOR:
		return 1 + offsetof(struct event, actor);
	case P_ACTION:
		return 1 + offsetof(struct event, action);
	case P_PURPOSE:
		return 1 + offsetof(struct event, purpose);
	default:
		return 0;
	}
}

/* A did-you-mean for an unknown path, into buf; "" when nothing is close. */
static void
suggest_path(const char *s, enum path_ctx ctx, char *buf, size_t len)
{
	static const char *const prefixes[] = {"resource", "attributes", "time"};
	const char *names[AUPD_ARRAY_LEN(path_names) + 2];
	const char *dot = strchr(s, '.'), *best;
	size_t n = 0;

	buf[0] = '\0';
	if (dot) {
		char head[64];

		snprintf(head, sizeof(head), "%.*s", (int)(dot - s), s);
		best = suggest_word(head, prefixes, AUPD_ARRAY_LEN(prefixes));
		if (best && strcmp(best, "time") != 0)
			snprintf(buf, len, " (did you mean '%s%s'?)", best, dot);
		else if (best)
			snprintf(buf, len, " (did you mean 'time.hour' or 'time.weekday'?)");
		return;
	}
	for (size_t i = 0; i < AUPD_ARRAY_LEN(path_names); i++)
		if (ctx == PCTX_ESCALATION || !path_names[i].esc_only)
			names[n++] = path_names[i].name;
	names[n++] = "resource";
	names[n++] = "attributes";
	best = suggest_word(s, names, n);
	if (best && !strcmp(best, "resource"))
		snprintf(buf, len, " (did you mean 'resource.%s'?)", s);
	else if (best && !strcmp(best, "attributes"))
		snprintf(buf, len, " (did you mean 'attributes.%s'?)", s);
	else if (best)
		snprintf(buf, len, " (did you mean '%s'?)", best);
}

int
path_parse(const char *s, enum path_ctx ctx, struct arena *a, struct path *out, char *why,
	   size_t whylen)
{
	char hint[160];

	memset(out, 0, sizeof(*out));
	out->key_id = -1;
	out->text = arena_strdup(a, s);
	for (size_t i = 0; i < AUPD_ARRAY_LEN(path_names); i++) {
		if (strcmp(s, path_names[i].name) != 0)
			continue;
		if (path_names[i].esc_only && ctx != PCTX_ESCALATION) {
			snprintf(why, whylen,
				 "'%s' is a field of verdicts, only available in escalations", s);
			return -1;
		}
		out->kind = path_names[i].kind;
		out->ev_off = event_string_offset(out->kind);
		return 0;
	}
	if (!strcmp(s, "resource") || !strcmp(s, "attributes")) {
		snprintf(why, whylen, "'%s' needs a field name, e.g. %s", s,
			 s[0] == 'r' ? "resource.classification" : "attributes.region");
		return -1;
	}
	if (!strncmp(s, "resource.", 9)) {
		if (!event_resource_key_valid(s + 9)) {
			snprintf(why, whylen,
				 "bad field '%s': resource field names are 1-64 of A-Z a-z 0-9 _ -",
				 s);
			return -1;
		}
		out->kind = P_RESOURCE;
		out->key = out->text + 9;
		out->created = !strcmp(out->key, "created");
		return 0;
	}
	if (!strncmp(s, "attributes.", 11)) {
		const char *p = s + 11;
		size_t n = 1;

		for (const char *q = p; *q; q++)
			n += *q == '.';
		out->segs = arena_alloc(a, n * sizeof(*out->segs));
		for (size_t i = 0; i < n; i++) {
			const char *e = strchr(p, '.');
			size_t len = e ? (size_t)(e - p) : strlen(p);

			if (len == 0) {
				snprintf(why, whylen, "bad field '%s': an empty name between dots", s);
				return -1;
			}
			out->segs[i] = arena_strndup(a, p, len);
			p += len + 1;
		}
		out->n_segs = n;
		out->kind = P_ATTR;
		return 0;
	}
	suggest_path(s, ctx, hint, sizeof(hint));
	snprintf(why, whylen,
		 "unknown field '%s'%s; fields are id, tenant, actor, action, purpose, quantity, "
		 "time, time.hour, time.weekday, resource.NAME, attributes.NAME%s",
		 s, hint,
		 ctx == PCTX_ESCALATION ? ", verdict, rule, severity, effect, tags" : "");
	return -1;
}

/* The event's dataset, named `name` (its resource.dataset), looked up once per event. */
static const struct dataset *
ctx_dataset_named(struct evctx *c, const char *name)
{
	if (!c->ds_done) {
		c->ds_done = true;
		if (c->rs->n_datasets && name)
			c->ds = strmap_get(&c->rs->dataset_map, name, NULL);
	}
	return c->ds;
}

static const struct dataset *
ctx_dataset(struct evctx *c)
{
	return c->ds_done ? c->ds : ctx_dataset_named(c, event_resource(c->ev, "dataset"));
}

const char *
ctx_resource(struct evctx *c, const char *key)
{
	const struct dataset *ds;
	const char *v;

	if (!c->ev)
		return c->ob && !strcmp(key, "id") ? c->ob->resource_id : NULL;
	if ((v = event_resource(c->ev, key)))
		return v;
	if ((ds = ctx_dataset(c)))
		return kv_lookup(ds->fields, ds->n_fields, key);
	return NULL;
}

/*
 * Every resource field the rules name, resolved in one pass: the event's
 * own fields matched against the names (a handful of each), then the
 * dataset's values, looked up when the rules were loaded, for the rest.
 */
void
ctx_resolve(struct evctx *c)
{
	const struct ruleset *rs = c->rs;
	const struct event *ev = c->ev;
	const struct dataset *ds;

	c->res_done = true;
	if (!ev) {
		c->res[RES_KEY_ID] = c->ob ? c->ob->resource_id : NULL;
		return;
	}
	for (size_t i = 0; i < ev->n_resource; i++) {
		const char *k = ev->resource[i].key;

		for (size_t j = 0; j < rs->n_res_keys; j++) {
			const char *n = rs->res_keys[j];

			/* names are 1-64 bytes: n[1] and k[1] are there, if only as '\0' */
			if (n[0] == k[0] && n[1] == k[1] && !strcmp(n, k)) {
				c->res[j] = ev->resource[i].val;
				break;
			}
		}
	}
	if (!(ds = ctx_dataset_named(c, c->res[RES_KEY_DATASET])))
		return;
	for (size_t j = 0; j < rs->n_res_keys; j++)
		if (!c->res[j])
			c->res[j] = ds->res[j];
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void
resource_value(const struct path *p, struct evctx *c, struct value *out)
{
	const struct dataset *ds;

	if (c->ev && p->created) {
		if (c->ev->has_created) {
			out->k = V_TIME;
			out->s = ctx_resource_id(c, p->key, p->key_id);
			out->t = c->ev->resource_created;
			return;
		}
		if ((ds = ctx_dataset(c)) && ds->has_created) {
			out->k = V_TIME;
			out->s = ctx_resource_id(c, p->key, p->key_id); /* the dataset's */
			out->t = ds->created;
		}
		return;
	}
	if ((out->s = ctx_resource_id(c, p->key, p->key_id)))
		out->k = V_STR;
}

static void
attr_value(const struct path *p, const json_t *j, struct value *out)
{
	for (size_t i = 0; i < p->n_segs && j; i++)
		j = json_is_object(j) ? json_object_get(j, p->segs[i]) : NULL;
	if (!j)
		return;
	switch (json_typeof(j)) {
	case JSON_STRING:
		out->k = V_STR;
		out->s = json_string_value(j);
		break;
	case JSON_INTEGER:
		out->k = V_NUM;
		out->n = (double)json_integer_value(j);
		break;
	case JSON_REAL:
		out->k = V_NUM;
		out->n = json_real_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		out->k = V_BOOL;
		out->b = json_is_true(j);
		break;
	case JSON_NULL:
		break; /* null counts as missing */
	default:
		out->k = V_JSON;
		out->j = j;
		break;
	}
}

/*
 * attributes.NAME answered from what the scanner noted, without parsing the
 * attributes: true when answered (out set, or left missing), false when the
 * value needs the parsed object.
 */
static bool
attr_scanned(const struct path *p, const struct event *ev, struct value *out)
{
	if (ev->attributes || p->n_segs != 1)
		return false;
	for (size_t i = 0; i < ev->n_attrs; i++) {
		const struct attr_member *a = &ev->attrs[i];

		if (strcmp(a->key, p->segs[0]) != 0)
			continue;
		switch (a->kind) {
		case ATTR_STRING:
			out->k = V_STR;
			out->s = a->text;
			return true;
		case ATTR_NUMBER:
			out->k = V_NUM;
			out->n = strtod(a->text, NULL); /* as jansson reads it: no exponent, <= 18 digits */
			return true;
		case ATTR_TRUE:
		case ATTR_FALSE:
			out->k = V_BOOL;
			out->b = a->kind == ATTR_TRUE;
			return true;
		case ATTR_NULL:
			return true; /* null counts as missing */
		case ATTR_OTHER:
			return false;
		}
	}
	return ev->attrs_all; /* absent, if the scanner saw every member */
}

void
path_get_slow(const struct path *p, struct evctx *c, struct value *out)
{
	const struct event *ev = c->ev;
	int64_t secs;

	out->k = V_MISSING;
	switch (p->kind) {
	case P_ID:
		out->s = ev ? ev->id : NULL;
		break;
	case P_TENANT:
		out->s = ev ? ev->tenant : c->ob ? c->ob->tenant : NULL;
		break;
	case P_ACTOR:
		out->s = ev ? ev->actor : NULL;
		break;
	case P_ACTION:
		out->s = ev ? ev->action : NULL;
		break;
	case P_PURPOSE:
		out->s = ev ? ev->purpose : NULL;
		break;
	case P_QUANTITY:
		if (ev) {
			out->k = V_NUM;
			out->n = ev->quantity;
		}
		return;
	case P_TIME:
		if (ev) {
			out->k = V_TIME;
			out->s = ev->time_str;
			out->t = ev->time;
		}
		return;
	case P_TIME_HOUR:
		if (ev) {
			secs = floor_div(ev->time, AUPD_USEC);
			out->k = V_NUM;
			out->n = (double)((secs - floor_div(secs, 86400) * 86400) / 3600);
		}
		return;
	case P_TIME_WEEKDAY:
		if (ev) {
			int64_t days = floor_div(floor_div(ev->time, AUPD_USEC), 86400);

			/* 1970-01-01 was a Thursday */
			out->s = weekdays[(days + 3 - floor_div(days + 3, 7) * 7)];
		}
		break;
	case P_RESOURCE:
		resource_value(p, c, out);
		return;
	case P_ATTR:
		if (ev && !attr_scanned(p, ev, out) && event_attributes(ev))
			attr_value(p, event_attributes(ev), out);
		return;
	case P_VERDICT:
		if (c->v) {
			out->k = V_RANK;
			out->s = effect_name(c->v->verdict);
			out->rank = (int)c->v->verdict;
		}
		return;
	case P_RULE:
		out->s = c->m ? c->m->rule : NULL;
		break;
	case P_SEVERITY:
		if (c->m) {
			out->k = V_RANK;
			out->s = severity_name(c->m->severity);
			out->rank = (int)c->m->severity;
		}
		return;
	case P_EFFECT:
		if (c->m) {
			out->k = V_RANK;
			out->s = effect_name(c->m->effect);
			out->rank = (int)c->m->effect;
		}
		return;
	case P_TAGS:
		if (c->m && c->m->n_tags) {
			out->k = V_TAGS;
			out->tags = c->m->tags;
			out->n_tags = c->m->n_tags;
		}
		return;
	}
	if (out->s)
		out->k = V_STR;
}

void
number_format(double d, char *buf, size_t len)
{
	if (d == floor(d) && fabs(d) < 1e18 && len >= 21) {
		/* integral: the common case in messages, without printf */
		char tmp[24], *p = tmp + sizeof(tmp);
		long long v = (long long)d;
		unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

		*--p = '\0';
		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (v < 0)
			*--p = '-';
		memcpy(buf, p, (size_t)(tmp + sizeof(tmp) - p));
		return;
	}
	snprintf(buf, len, "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, len, "%.17g", d);
}

void
value_render(const struct value *v, struct strbuf *sb)
{
	char num[40];
	char *js;

	switch (v->k) {
	case V_MISSING:
		break;
	case V_STR:
	case V_TIME:
	case V_RANK:
		sb_adds(sb, v->s);
		break;
	case V_NUM:
		number_format(v->n, num, sizeof(num));
		sb_adds(sb, num);
		break;
	case V_BOOL:
		sb_adds(sb, v->b ? "true" : "false");
		break;
	case V_TAGS:
		for (size_t i = 0; i < v->n_tags; i++) {
			if (i)
				sb_addc(sb, ',');
			sb_adds(sb, v->tags[i]);
		}
		break;
	case V_JSON:
		js = json_dumps(v->j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (js)
			sb_adds(sb, js);
		free(js);
		break;
	}
}

double
value_amount(const struct value *v)
{
	char *end;
	double d;

	if (v->k == V_NUM)
		return isfinite(v->n) ? v->n : 0;
	if (v->k != V_STR || !*v->s)
		return 0;
	d = strtod(v->s, &end);
	if (*end || !isfinite(d))
		return 0;
	return d;
}

void
group_key(const struct path *by, size_t n_by, struct evctx *c, struct strbuf *sb)
{
	struct value v;

	sb_reset(sb);
	sb_grow(sb, 64);
	for (size_t i = 0; i < n_by; i++) {
		if (i)
			sb_addc(sb, '\x1f');
		path_get(&by[i], c, &v);
		value_render(&v, sb);
	}
}
