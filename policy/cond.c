/* cond.c - evaluate compiled conditions against an event or a verdict */
#include "policy_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

static bool
str_number(const char *s, double *out)
{
	char *end;

	if (!*s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.'))
		return false;
	*out = strtod(s, &end);
	return !*end;
}

static bool
eq_text(const char *s, const struct operand *o)
{
	return s[0] == o->s[0] && !strcmp(s, o->s);
}

static bool
eq_value(const struct value *v, const struct operand *o)
{
	switch (v->k) {
	case V_STR:
	case V_RANK:
		return eq_text(v->s, o);
	case V_TIME:
		return o->time_ok ? v->t == o->t : eq_text(v->s, o);
	case V_NUM:
		return o->num_ok && v->n == o->num;
	case V_BOOL:
		return o->b >= 0 && v->b == (o->b == 1);
	case V_TAGS:
		for (size_t i = 0; i < v->n_tags; i++)
			if (!strcmp(v->tags[i], o->s))
				return true;
		return false;
	default:
		return false;
	}
}

static bool
in_list(const struct value *v, const struct oplist *l)
{
	switch (v->k) {
	case V_STR:
	case V_RANK:
		return strmap_has(&l->set, v->s);
	case V_TAGS:
		for (size_t i = 0; i < v->n_tags; i++)
			if (strmap_has(&l->set, v->tags[i]))
				return true;
		return false;
	case V_MISSING:
	case V_JSON:
		return false;
	default:
		for (size_t i = 0; i < l->n; i++)
			if (eq_value(v, &l->items[i]))
				return true;
		return false;
	}
}

static int
cmp3(double a, double b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

/* Orders v against o into *res (-1, 0, 1); false when they do not compare. */
static bool
order_value(const struct value *v, const struct operand *o, int *res)
{
	double d;
	aupd_time t;
	const char *why;

	switch (v->k) {
	case V_NUM:
		if (!o->num_ok)
			return false;
		*res = cmp3(v->n, o->num);
		return true;
	case V_TIME:
		if (!o->time_ok)
			return false;
		*res = v->t < o->t ? -1 : v->t > o->t;
		return true;
	case V_RANK:
		if (o->rank < 0)
			return false;
		*res = v->rank < o->rank ? -1 : v->rank > o->rank;
		return true;
	case V_STR:
		if (o->plain_num) {
			if (!str_number(v->s, &d))
				return false;
			*res = cmp3(d, o->num);
			return true;
		}
		if (o->time_ok && time_parse_rfc3339(v->s, strlen(v->s), &t, &why) == 0) {
			*res = t < o->t ? -1 : t > o->t;
			return true;
		}
		*res = strcmp(v->s, o->s);
		*res = *res < 0 ? -1 : *res > 0;
		return true;
	default:
		return false;
	}
}

typedef bool (*text_pred)(const struct cond *c, const char *s);

static bool
glob_pred(const struct cond *c, const char *s)
{
	return fnmatch(c->arg.s, s, 0) == 0;
}

static bool
regex_pred(const struct cond *c, const char *s)
{
	return regexec(c->re, s, 0, NULL, 0) == 0;
}

/* glob and regex look at the value's text; for tags, at any tag. */
static bool
match_text(const struct cond *c, const struct value *v, text_pred pred)
{
	struct strbuf sb;
	bool r;

	switch (v->k) {
	case V_STR:
	case V_TIME:
	case V_RANK:
		return pred(c, v->s);
	case V_TAGS:
		for (size_t i = 0; i < v->n_tags; i++)
			if (pred(c, v->tags[i]))
				return true;
		return false;
	case V_NUM:
	case V_BOOL:
		sb_init(&sb);
		value_render(v, &sb);
		r = pred(c, sb.buf ? sb.buf : "");
		sb_free(&sb);
		return r;
	default:
		return false;
	}
}

static bool
test(const struct cond *c, struct evctx *ctx)
{
	struct value v;
	int r;

	path_get(&c->path, ctx, &v);
	if (c->op == OP_EXISTS)
		return (v.k != V_MISSING) == c->exists;
	if (v.k == V_MISSING)
		return c->op == OP_NE || c->op == OP_NOT_IN;
	switch (c->op) {
	case OP_EQ:
		return eq_value(&v, &c->arg);
	case OP_NE:
		return !eq_value(&v, &c->arg);
	case OP_IN:
		return in_list(&v, c->list);
	case OP_NOT_IN:
		return !in_list(&v, c->list);
	case OP_GT:
		return order_value(&v, &c->arg, &r) && r > 0;
	case OP_GTE:
		return order_value(&v, &c->arg, &r) && r >= 0;
	case OP_LT:
		return order_value(&v, &c->arg, &r) && r < 0;
	case OP_LTE:
		return order_value(&v, &c->arg, &r) && r <= 0;
	case OP_GLOB:
		return match_text(c, &v, glob_pred);
	case OP_REGEX:
		return match_text(c, &v, regex_pred);
	case OP_EXISTS:
		break;
	}
	return false;
}

bool
cond_eval(const struct cond *c, struct evctx *ctx)
{
	switch (c->kind) {
	case C_TRUE:
		return true;
	case C_FALSE:
		return false;
	case C_ALL:
		for (size_t i = 0; i < c->n_kids; i++)
			if (!cond_eval(c->kids[i], ctx))
				return false;
		return true;
	case C_ANY:
		for (size_t i = 0; i < c->n_kids; i++)
			if (cond_eval(c->kids[i], ctx))
				return true;
		return false;
	case C_NOT:
		return !cond_eval(c->kids[0], ctx);
	case C_TEST:
		return test(c, ctx);
	}
	return false;
}

bool
cond_names_rule_fields(const struct cond *c)
{
	if (!c)
		return false;
	if (c->kind == C_TEST)
		return path_is_rule_field(c->path.kind);
	for (size_t i = 0; i < c->n_kids; i++)
		if (cond_names_rule_fields(c->kids[i]))
			return true;
	return false;
}
