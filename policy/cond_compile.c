/* cond_compile.c - compile `when` conditions, operands and lists from YAML, checking everything */
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"eq", "ne",  "in",  "not_in", "gt",   "gte",
				       "lt", "lte", "exists", "glob",	"regex"};

static const char *const weekday_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

int
path_compile(struct loader *ld, yaml_node_t *n, enum path_ctx ctx, struct path *out)
{
	const char *s = ynode_str(n);
	char why[400];

	if (!s || ynode_is_null(n) || !*s) {
		ydiag(ld->dl, ld->yd, n, "a field name must be a string, not %s",
		      ynode_describe(n));
		return -1;
	}
	if (path_parse(s, ctx, &ld->rs->arena, out, why, sizeof(why)) < 0) {
		ydiag(ld->dl, ld->yd, n, "%s", why);
		return -1;
	}
	loader_intern_key(ld, out);
	return 0;
}

static int
name_operand(struct loader *ld, yaml_node_t *n, const char *s, const char *what,
	     const char *const *names, size_t count)
{
	const char *best;

	for (size_t i = 0; i < count; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	best = suggest_word(s, names, count);
	if (best)
		ydiag(ld->dl, ld->yd, n, "unknown %s '%s' (did you mean '%s'?)", what, s, best);
	else
		ydiag(ld->dl, ld->yd, n, "unknown %s '%s'", what, s);
	return -1;
}

static bool
names_dataset(const struct path *p)
{
	return p && p->kind == P_RESOURCE && !strcmp(p->key, "dataset");
}

int
operand_compile(struct loader *ld, yaml_node_t *n, const struct path *p, enum cond_op op,
		struct operand *out)
{
	static const char *const effects[] = {"allow", "flag", "deny"};
	static const char *const sevs[] = {"info", "low", "medium", "high", "critical"};
	const char *s = ynode_str(n), *why;
	bool ordering = op == OP_GT || op == OP_GTE || op == OP_LT || op == OP_LTE;
	char *end;

	memset(out, 0, sizeof(*out));
	out->b = -1;
	out->rank = -1;
	if (!s || n->type != YAML_SCALAR_NODE || ynode_is_null(n)) {
		ydiag(ld->dl, ld->yd, n, "expected a single value (a string or a number), not %s",
		      ynode_describe(n));
		return -1;
	}
	out->s = arena_strdup(&ld->rs->arena, s);
	if (ynode_number(n, &out->num) == 0) {
		out->num_ok = out->plain_num = true;
	} else if (*s) {
		double d = strtod(s, &end);

		if (!*end && ((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.')) {
			out->num_ok = true;
			out->num = d;
		}
	}
	out->time_ok = time_parse_rfc3339(s, strlen(s), &out->t, &why) == 0;
	if (ynode_plain(n))
		out->b = ynode_bool(n);
	else if (!strcmp(s, "true") || !strcmp(s, "false"))
		out->b = s[0] == 't';
	if (!p)
		return 0;
	switch (p->kind) {
	case P_VERDICT:
	case P_EFFECT:
		out->rank = name_operand(ld, n, s, "effect", effects, 3);
		return out->rank < 0 ? -1 : 0;
	case P_SEVERITY:
		out->rank = name_operand(ld, n, s, "severity", sevs, 5);
		return out->rank < 0 ? -1 : 0;
	case P_TIME_WEEKDAY:
		for (size_t i = 0; i < AUPD_ARRAY_LEN(weekday_names); i++)
			if (!strcmp(s, weekday_names[i]))
				return 0;
		ydiag(ld->dl, ld->yd, n,
		      "unknown weekday '%s'; time.weekday is one of mon tue wed thu fri sat sun "
		      "(UTC)",
		      s);
		return -1;
	case P_TIME_HOUR:
		if (!out->num_ok || out->num != (int)out->num || out->num < 0 || out->num > 23) {
			ydiag(ld->dl, ld->yd, n, "time.hour is a whole number from 0 to 23 (UTC), not '%s'",
			      s);
			return -1;
		}
		return 0;
	case P_QUANTITY:
		if (!out->num_ok) {
			ydiag(ld->dl, ld->yd, n, "quantity compares with numbers, not '%s'", s);
			return -1;
		}
		return 0;
	case P_TIME:
		if (!out->time_ok) {
			ydiag(ld->dl, ld->yd, n, "time compares with RFC 3339 times such as "
						 "2026-01-15T10:00:00Z, not '%s'", s);
			return -1;
		}
		return 0;
	case P_RESOURCE:
		if (ordering && !strcmp(p->key, "created") && !out->time_ok) {
			ydiag(ld->dl, ld->yd, n,
			      "resource.created compares with RFC 3339 times such as "
			      "2026-01-15T10:00:00Z, not '%s'",
			      s);
			return -1;
		}
		if (!ordering && names_dataset(p) && ld->rs->n_datasets &&
		    !strmap_has(&ld->rs->dataset_map, s)) {
			const char *best = suggest_word(s, ld->rs->dataset_map.lkeys,
							ld->rs->dataset_map.n);

			if (best)
				ydiag(ld->dl, ld->yd, n,
				      "unknown dataset '%s' (did you mean '%s'?); datasets are "
				      "declared under datasets:",
				      s, best);
			else
				ydiag(ld->dl, ld->yd, n,
				      "unknown dataset '%s'; datasets are declared under datasets:", s);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

const struct oplist *
loader_list(struct loader *ld, const char *name)
{
	for (size_t i = 0; i < ld->n_lists; i++)
		if (!strcmp(ld->lists[i]->name + 1, name))
			return ld->lists[i];
	return NULL;
}

static bool
is_list_ref(yaml_node_t *n)
{
	const char *s = ynode_str(n);

	return s && ynode_plain(n) && s[0] == '$';
}

static void
oplist_index(struct loader *ld, struct oplist *l)
{
	const char **keys = xcalloc(l->n + 1, sizeof(*keys));

	for (size_t i = 0; i < l->n; i++) {
		keys[i] = l->items[i].s;
		l->any_num |= l->items[i].num_ok;
	}
	strmap_build(&l->set, &ld->rs->arena, keys, NULL, l->n);
	free(keys);
}

const struct oplist *
oplist_compile(struct loader *ld, yaml_node_t *n, const struct path *p, enum cond_op op)
{
	struct oplist *l;
	size_t i = 0;
	bool bad = false;

	if (is_list_ref(n)) {
		const char *name = ynode_str(n) + 1;
		const struct oplist *found = loader_list(ld, name);

		if (!found) {
			const char **names = xcalloc(ld->n_lists + 1, sizeof(*names));
			const char *best;

			for (size_t k = 0; k < ld->n_lists; k++)
				names[k] = ld->lists[k]->name + 1;
			best = suggest_word(name, names, ld->n_lists);
			if (best)
				ydiag(ld->dl, ld->yd, n, "unknown list '$%s' (did you mean '$%s'?)",
				      name, best);
			else
				ydiag(ld->dl, ld->yd, n,
				      "unknown list '$%s'; lists are declared under lists:", name);
			free(names);
			return NULL;
		}
		if (names_dataset(p) && ld->rs->n_datasets) {
			for (size_t k = 0; k < found->n; k++) {
				if (!strmap_has(&ld->rs->dataset_map, found->items[k].s)) {
					ydiag(ld->dl, ld->yd, n,
					      "list '$%s' names '%s', which is not a declared dataset",
					      name, found->items[k].s);
					return NULL;
				}
			}
		}
		return found;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		ydiag(ld->dl, ld->yd, n, "expected a list ([a, b] or $name), not %s",
		      ynode_describe(n));
		return NULL;
	}
	l = arena_alloc(&ld->rs->arena, sizeof(*l));
	l->items = arena_alloc(&ld->rs->arena,
			       ((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) +
				1) * sizeof(*l->items));
	YSEQ_FOREACH(ld->yd, n, it) {
		yaml_node_t *item = ydoc_node(ld->yd, *it);

		if (is_list_ref(item)) {
			ydiag(ld->dl, ld->yd, item,
			      "a list cannot hold another list ('%s'); write its items here or use "
			      "any: [...]",
			      ynode_str(item));
			bad = true;
			continue;
		}
		if (operand_compile(ld, item, p, op, &l->items[i]) < 0) {
			bad = true;
			continue;
		}
		i++;
	}
	l->n = i;
	if (bad)
		return NULL;
	oplist_index(ld, l);
	return l;
}

static struct cond *
cond_new(struct loader *ld, enum cond_kind kind, size_t n_kids)
{
	struct cond *c = arena_alloc(&ld->rs->arena, sizeof(*c));

	c->kind = kind;
	if (n_kids)
		c->kids = arena_alloc(&ld->rs->arena, n_kids * sizeof(*c->kids));
	return c;
}

static int
op_lookup(struct loader *ld, yaml_node_t *k)
{
	const char *s = ynode_str(k), *best;

	if (!s) {
		ydiag(ld->dl, ld->yd, k, "an operator must be a name, not %s", ynode_describe(k));
		return -1;
	}
	for (size_t i = 0; i < AUPD_ARRAY_LEN(op_names); i++)
		if (!strcmp(s, op_names[i]))
			return (int)i;
	best = suggest_word(s, op_names, AUPD_ARRAY_LEN(op_names));
	if (best)
		ydiag(ld->dl, ld->yd, k, "unknown operator '%s' (did you mean '%s'?)", s, best);
	else
		ydiag(ld->dl, ld->yd, k,
		      "unknown operator '%s'; operators are eq ne in not_in gt gte lt lte exists "
		      "glob regex",
		      s);
	return -1;
}

static struct cond *
op_compile(struct loader *ld, const struct path *p, enum cond_op op, yaml_node_t *v)
{
	struct cond *c = cond_new(ld, C_TEST, 0);
	const char *s;
	int b, rc;

	c->path = *p;
	c->op = op;
	switch (op) {
	case OP_EQ:
	case OP_NE:
		if (is_list_ref(v) || v->type == YAML_SEQUENCE_NODE) {
			ydiag(ld->dl, ld->yd, v, "%s takes a single value; use %s for a list",
			      op_names[op], op == OP_EQ ? "in:" : "not_in:");
			return NULL;
		}
		return operand_compile(ld, v, p, op, &c->arg) < 0 ? NULL : c;
	case OP_IN:
	case OP_NOT_IN:
		c->list = oplist_compile(ld, v, p, op);
		return c->list ? c : NULL;
	case OP_GT:
	case OP_GTE:
	case OP_LT:
	case OP_LTE:
		if (p->kind == P_RULE || p->kind == P_TAGS || p->kind == P_TIME_WEEKDAY) {
			ydiag(ld->dl, ld->yd, v, "%s cannot be ordered with %s%s", p->text,
			      op_names[op],
			      p->kind == P_TIME_WEEKDAY ? "; use in: [sat, sun]" : "");
			return NULL;
		}
		return operand_compile(ld, v, p, op, &c->arg) < 0 ? NULL : c;
	case OP_EXISTS:
		if ((b = ynode_bool(v)) < 0) {
			ydiag(ld->dl, ld->yd, v, "exists takes true or false, not %s",
			      ynode_describe(v));
			return NULL;
		}
		c->exists = b;
		return c;
	case OP_GLOB:
	case OP_REGEX:
		s = ynode_str(v);
		if (!s || v->type != YAML_SCALAR_NODE || ynode_is_null(v)) {
			ydiag(ld->dl, ld->yd, v, "%s takes a pattern string, not %s", op_names[op],
			      ynode_describe(v));
			return NULL;
		}
		c->arg.s = arena_strdup(&ld->rs->arena, s);
		c->arg.b = c->arg.rank = -1;
		if (op == OP_GLOB)
			return c;
		c->re = xmalloc(sizeof(*c->re));
		if ((rc = regcomp(c->re, s, REG_EXTENDED | REG_NOSUB)) != 0) {
			char msg[256];

			regerror(rc, c->re, msg, sizeof(msg));
			ydiag(ld->dl, ld->yd, v, "bad regex '%s': %s", s, msg);
			free(c->re);
			c->re = NULL;
			return NULL;
		}
		ruleset_keep_regex(ld->rs, c->re);
		return c;
	}
	return NULL;
}

static struct cond *
field_compile(struct loader *ld, const struct path *p, yaml_node_t *v)
{
	struct cond *all;
	size_t n, i = 0;
	bool bad = false;

	if (v->type == YAML_SEQUENCE_NODE || is_list_ref(v))
		return op_compile(ld, p, OP_IN, v);
	if (v->type == YAML_SCALAR_NODE) {
		if (ynode_is_null(v)) {
			ydiag(ld->dl, ld->yd, v,
			      "%s has no value; to test for a missing field write %s: {exists: "
			      "false}",
			      p->text, p->text);
			return NULL;
		}
		return op_compile(ld, p, OP_EQ, v);
	}
	n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	if (n == 0) {
		ydiag(ld->dl, ld->yd, v, "%s: {} names no operator", p->text);
		return NULL;
	}
	all = cond_new(ld, C_ALL, n);
	YMAP_FOREACH(ld->yd, v, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key);
		int op = op_lookup(ld, k);
		struct cond *c;

		if (op < 0) {
			bad = true;
			continue;
		}
		for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < pair; q++) {
			const char *other = ynode_str(ydoc_node(ld->yd, q->key));

			if (other && !strcmp(other, op_names[op])) {
				ydiag(ld->dl, ld->yd, k, "duplicate operator '%s'", op_names[op]);
				bad = true;
			}
		}
		c = op_compile(ld, p, (enum cond_op)op, ydoc_node(ld->yd, pair->value));
		if (!c)
			bad = true;
		else
			all->kids[i++] = c;
	}
	if (bad)
		return NULL;
	all->n_kids = i;
	return i == 1 ? all->kids[0] : all;
}

static struct cond *cond_body(struct loader *ld, yaml_node_t *node);

struct cond *
cond_compile(struct loader *ld, yaml_node_t *node)
{
	struct cond *all;

	if (!node || node->type != YAML_MAPPING_NODE) {
		ydiag(ld->dl, ld->yd, node,
		      "a condition must be a mapping (field: value, or all/any/not), not %s",
		      ynode_describe(node));
		return NULL;
	}
	if (loader_depth_enter(ld, node) < 0)
		return NULL;
	all = cond_body(ld, node);
	ld->depth--;
	return all;
}

static struct cond *
cond_body(struct loader *ld, yaml_node_t *node)
{
	struct cond *all;
	size_t n, i = 0;
	bool bad = false;

	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n == 0)
		return cond_new(ld, C_TRUE, 0);
	all = cond_new(ld, C_ALL, n);
	YMAP_FOREACH(ld->yd, node, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key);
		yaml_node_t *v = ydoc_node(ld->yd, pair->value);
		const char *key = ynode_str(k);
		struct cond *c = NULL;
		struct path p;

		for (yaml_node_pair_t *q = node->data.mapping.pairs.start; key && q < pair; q++) {
			const char *other = ynode_str(ydoc_node(ld->yd, q->key));

			if (other && !strcmp(other, key)) {
				ydiag(ld->dl, ld->yd, k,
				      "duplicate key '%s' in a condition (combine the tests: "
				      "%s: {gte: 1, lt: 5}, or use all: [...])",
				      key, key);
				bad = true;
			}
		}
		if (key && (!strcmp(key, "all") || !strcmp(key, "any"))) {
			size_t m = 0;

			if (v->type != YAML_SEQUENCE_NODE) {
				ydiag(ld->dl, ld->yd, v, "%s takes a list of conditions, not %s", key,
				      ynode_describe(v));
				bad = true;
				continue;
			}
			c = cond_new(ld, key[1] == 'l' ? C_ALL : C_ANY,
				     (size_t)(v->data.sequence.items.top -
					      v->data.sequence.items.start));
			YSEQ_FOREACH(ld->yd, v, it) {
				struct cond *kid = cond_compile(ld, ydoc_node(ld->yd, *it));

				if (!kid)
					bad = true;
				else
					c->kids[m++] = kid;
			}
			c->n_kids = m;
		} else if (key && !strcmp(key, "not")) {
			struct cond *kid = cond_compile(ld, v);

			if (!kid) {
				bad = true;
				continue;
			}
			c = cond_new(ld, C_NOT, 1);
			c->kids[0] = kid;
			c->n_kids = 1;
		} else {
			if (path_compile(ld, k, ld->pctx, &p) < 0) {
				bad = true;
				continue;
			}
			c = field_compile(ld, &p, v);
			if (!c) {
				bad = true;
				continue;
			}
		}
		all->kids[i++] = c;
	}
	if (bad)
		return NULL;
	all->n_kids = i;
	return i == 1 ? all->kids[0] : all;
}
