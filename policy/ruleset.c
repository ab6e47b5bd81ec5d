/* ruleset.c - the compiled ruleset: lifetime, accessors, description, and the action index */
#include "policy_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const rule_kind_names[] = {"plain", "limit", "retention", "reuse"};

struct ruleset *
ruleset_ref(struct ruleset *rs)
{
	if (rs)
		atomic_fetch_add(&rs->refs, 1);
	return rs;
}

void
ruleset_free(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n_files; i++) {
		free(rs->files[i].path);
		free(rs->files[i].bytes);
	}
	free(rs->files);
	for (size_t i = 0; i < rs->n_regexes; i++) {
		regfree(rs->regexes[i]);
		free(rs->regexes[i]);
	}
	free(rs->regexes);
	for (size_t i = 0; i < rs->n_tests; i++)
		for (size_t j = 0; j < rs->tests[i].n_events; j++)
			json_decref(rs->tests[i].events[j]);
	arena_free(&rs->arena);
	free(rs);
}

void
ruleset_unref(struct ruleset *rs)
{
	if (rs && atomic_fetch_sub(&rs->refs, 1) == 1)
		ruleset_free(rs);
}

const char *
ruleset_version(const struct ruleset *rs)
{
	return rs->version;
}

size_t
ruleset_n_files(const struct ruleset *rs)
{
	return rs->n_files;
}

const char *
ruleset_file_path(const struct ruleset *rs, size_t i)
{
	return i < rs->n_files ? rs->files[i].path : NULL;
}

const unsigned char *
ruleset_file_bytes(const struct ruleset *rs, size_t i, size_t *len)
{
	if (i >= rs->n_files) {
		*len = 0;
		return NULL;
	}
	*len = rs->files[i].len;
	return rs->files[i].bytes;
}

size_t
ruleset_n_rules(const struct ruleset *rs)
{
	return rs->n_rules;
}

size_t
ruleset_n_escalations(const struct ruleset *rs)
{
	return rs->n_escs;
}

size_t
ruleset_n_exemptions(const struct ruleset *rs)
{
	return rs->n_exs;
}

int64_t
ruleset_max_window(const struct ruleset *rs)
{
	return rs->max_window;
}

const struct rule *
ruleset_rule(const struct ruleset *rs, const char *id)
{
	for (size_t i = 0; i < rs->n_rules; i++)
		if (!strcmp(rs->rules[i].id, id))
			return &rs->rules[i];
	return NULL;
}

static json_t *
strings_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *
by_json(const struct path *by, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(by[i].text));
	return a;
}

static json_t *
duration_json(int64_t us)
{
	char buf[40];

	duration_format(us, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
rule_json(const struct rule *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "kind", json_string(rule_kind_names[r->kind]));
	json_object_set_new(o, "effect", json_string(effect_name(r->effect)));
	json_object_set_new(o, "severity", json_string(severity_name(r->severity)));
	json_object_set_new(o, "mode", json_string(r->shadow ? "shadow" : "enforce"));
	json_object_set_new(o, "tags", strings_json(r->tags, r->n_tags));
	json_object_set_new(o, "description", r->description ? json_string(r->description)
							     : json_null());
	json_object_set_new(o, "file", json_string(r->file));
	json_object_set_new(o, "line", json_integer(r->line));
	if (r->kind == RK_LIMIT) {
		json_t *l = json_object();

		json_object_set_new(l, "sum", json_string(r->limit.count ? "count"
									 : r->limit.sum.text));
		json_object_set_new(l, "by", by_json(r->limit.by, r->limit.n_by));
		json_object_set_new(l, "window", json_string(r->limit.window_text));
		json_object_set_new(l, "max", r->limit.max < 9e15 && r->limit.max == floor(r->limit.max)
						      ? json_integer((json_int_t)r->limit.max)
						      : json_real(r->limit.max));
		json_object_set_new(o, "limit", l);
	} else if (r->kind == RK_RETENTION) {
		json_t *l = json_object();

		json_object_set_new(l, "age_of", json_string(r->retention.age_of.text));
		json_object_set_new(l, "max", json_string(r->retention.max_text));
		json_object_set_new(l, "track", json_boolean(r->retention.track));
		json_object_set_new(o, "retention", l);
	}
	return o;
}

json_t *
ruleset_describe(const struct ruleset *rs)
{
	json_t *o = json_object(), *files = json_array(), *rules = json_array();
	json_t *escs = json_array(), *exs = json_array();

	json_object_set_new(o, "rules_version", json_string(rs->version));
	for (size_t i = 0; i < rs->n_files; i++)
		json_array_append_new(files, json_string(rs->files[i].path));
	json_object_set_new(o, "files", files);
	for (size_t i = 0; i < rs->n_rules; i++)
		json_array_append_new(rules, rule_json(&rs->rules[i]));
	json_object_set_new(o, "rules", rules);
	for (size_t i = 0; i < rs->n_escs; i++) {
		const struct escalation *e = &rs->escs[i];
		json_t *x = json_object(), *t = json_object();

		json_object_set_new(x, "id", json_string(e->id));
		json_object_set_new(x, "level", json_string(level_name(e->level)));
		json_object_set_new(t, "count", json_integer((json_int_t)e->count));
		json_object_set_new(t, "by", by_json(e->by, e->n_by));
		json_object_set_new(t, "window", duration_json(e->window));
		json_object_set_new(x, "threshold", t);
		json_object_set_new(x, "cooldown", duration_json(e->cooldown));
		json_object_set_new(x, "notify", strings_json(e->notify, e->n_notify));
		json_object_set_new(x, "description", e->description ? json_string(e->description)
								     : json_null());
		json_array_append_new(escs, x);
	}
	json_object_set_new(o, "escalations", escs);
	for (size_t i = 0; i < rs->n_exs; i++) {
		const struct exemption *e = &rs->exs[i];
		json_t *x = json_object();
		char buf[40];

		json_object_set_new(x, "id", json_string(e->id));
		json_object_set_new(x, "rules", strings_json(e->rules, e->n_rules));
		if (e->has_expires) {
			time_format_ms(e->expires, buf, sizeof(buf));
			json_object_set_new(x, "expires", json_string(buf));
		} else {
			json_object_set_new(x, "expires", json_null());
		}
		json_object_set_new(x, "reason", e->reason ? json_string(e->reason) : json_null());
		json_array_append_new(exs, x);
	}
	json_object_set_new(o, "exemptions", exs);
	return o;
}

/* ---- the action index ---- */

struct pinset {
	const char **v;
	size_t n, cap;
};

static void
pin_add(struct pinset *p, const char *s)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i], s))
			return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = s;
}

/*
 * Adds to `p` every action an event must have for `c` to hold; false when
 * the condition does not pin the action (it may hold for any action).
 */
static bool
pins(const struct cond *c, struct pinset *p)
{
	if (!c)
		return false;
	switch (c->kind) {
	case C_FALSE:
		return true;
	case C_TEST:
		if (c->path.kind != P_ACTION)
			return false;
		if (c->op == OP_EQ) {
			pin_add(p, c->arg.s);
			return true;
		}
		if (c->op == OP_IN) {
			for (size_t i = 0; i < c->list->n; i++)
				pin_add(p, c->list->items[i].s);
			return true;
		}
		return false;
	case C_ALL:
		/* any one pinning conjunct is a superset of the matching actions */
		for (size_t i = 0; i < c->n_kids; i++) {
			struct pinset one = {0};

			if (pins(c->kids[i], &one)) {
				for (size_t j = 0; j < one.n; j++)
					pin_add(p, one.v[j]);
				free(one.v);
				return true;
			}
			free(one.v);
		}
		return false;
	case C_ANY:
		for (size_t i = 0; i < c->n_kids; i++)
			if (!pins(c->kids[i], p))
				return false;
		return true;
	default:
		return false;
	}
}

static bool
rule_pins(const struct rule *r, struct pinset *p)
{
	if (!pins(r->when, p))
		return false;
	if (r->kind == RK_RETENTION && r->retention.track)
		return pins(r->retention.deleted_by, p);
	return true;
}

/* Every action literal compared by equality or membership anywhere in c. */
static void
named_actions(const struct cond *c, struct pinset *p)
{
	if (!c)
		return;
	if (c->kind == C_TEST) {
		if (c->path.kind != P_ACTION)
			return;
		if (c->op == OP_EQ || c->op == OP_NE)
			pin_add(p, c->arg.s);
		if (c->op == OP_IN || c->op == OP_NOT_IN)
			for (size_t i = 0; i < c->list->n; i++)
				pin_add(p, c->list->items[i].s);
		return;
	}
	for (size_t i = 0; i < c->n_kids; i++)
		named_actions(c->kids[i], p);
}

static const struct cond cond_true = {.kind = C_TRUE};
static const struct cond cond_false = {.kind = C_FALSE};

/*
 * c for events whose action is `action`, with its tests of the action by
 * equality and membership decided: cond_true, cond_false, c itself when
 * nothing changed, or a new tree in the arena sharing c's unchanged parts.
 * A NULL action stands for any action that no such test names.
 */
static const struct cond *
fold_action(struct arena *a, const struct cond *c, const char *action)
{
	const struct cond **kids;
	struct cond *n;
	size_t k = 0;
	bool changed = false, in_any = c->kind == C_ANY;

	switch (c->kind) {
	case C_TRUE:
		return &cond_true;
	case C_FALSE:
		return &cond_false;
	case C_TEST:
		if (c->path.kind != P_ACTION)
			return c;
		switch (c->op) {
		case OP_EQ:
			return action && !strcmp(action, c->arg.s) ? &cond_true : &cond_false;
		case OP_NE:
			return action && !strcmp(action, c->arg.s) ? &cond_false : &cond_true;
		case OP_IN:
			return action && strmap_has(&c->list->set, action) ? &cond_true : &cond_false;
		case OP_NOT_IN:
			return action && strmap_has(&c->list->set, action) ? &cond_false : &cond_true;
		default:
			return c;
		}
	case C_NOT: {
		const struct cond *kid = fold_action(a, c->kids[0], action);

		if (kid->kind == C_TRUE)
			return &cond_false;
		if (kid->kind == C_FALSE)
			return &cond_true;
		if (kid == c->kids[0])
			return c;
		n = arena_alloc(a, sizeof(*n));
		*n = *c;
		n->kids = arena_alloc(a, sizeof(*n->kids));
		n->kids[0] = (struct cond *)kid;
		return n;
	}
	case C_ALL:
	case C_ANY:
		break;
	}
	kids = xcalloc(c->n_kids + 1, sizeof(*kids));
	for (size_t i = 0; i < c->n_kids; i++) {
		const struct cond *kid = fold_action(a, c->kids[i], action);

		changed |= kid != c->kids[i];
		/* all: a false conjunct decides, a true one drops out; any: the reverse */
		if (kid->kind == (in_any ? C_TRUE : C_FALSE)) {
			free(kids);
			return in_any ? &cond_true : &cond_false;
		}
		if (kid->kind == (in_any ? C_FALSE : C_TRUE))
			continue;
		kids[k++] = kid;
	}
	if (!changed) {
		free(kids);
		return c;
	}
	if (k == 0) {
		free(kids);
		return in_any ? &cond_false : &cond_true;
	}
	if (k == 1) {
		n = (struct cond *)kids[0];
		free(kids);
		return n;
	}
	n = arena_alloc(a, sizeof(*n));
	*n = *c;
	n->kids = arena_alloc(a, k * sizeof(*n->kids));
	memcpy(n->kids, kids, k * sizeof(*kids));
	n->n_kids = k;
	free(kids);
	return n;
}

/*
 * The candidates for `action` (NULL: an action the index does not know)
 * among rules idx[0..n), with their conditions folded for it; rules that
 * cannot act on such an event are left out.
 */
static void
candidates_build(struct ruleset *rs, struct candidates *cd, const uint32_t *idx, size_t n,
		 const char *action)
{
	uint32_t *out = arena_alloc(&rs->arena, (n + 1) * sizeof(*out));
	const struct cond **when = arena_alloc(&rs->arena, (n + 1) * sizeof(*when));
	const struct cond **del = arena_alloc(&rs->arena, (n + 1) * sizeof(*del));
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		const struct rule *r = &rs->rules[idx[i]];
		const struct cond *w = r->when ? fold_action(&rs->arena, r->when, action) : NULL;
		const struct cond *d = NULL;

		if (r->kind == RK_RETENTION && r->retention.track)
			d = fold_action(&rs->arena, r->retention.deleted_by, action);
		if (w && w->kind == C_FALSE && (!d || d->kind == C_FALSE))
			continue; /* neither fires nor discharges nor feeds a window */
		out[m] = idx[i];
		when[m] = w && w->kind == C_TRUE ? NULL : w;
		del[m] = d;
		m++;
	}
	cd->idx = out;
	cd->when = when;
	cd->deleted_by = del;
	cd->n = m;
}

/* Every rule, on its own `when` and `deleted_by`: what the index must agree with. */
static void
unindexed_build(struct ruleset *rs)
{
	struct candidates *cd = &rs->unindexed;
	uint32_t *idx = arena_alloc(&rs->arena, (rs->n_rules + 1) * sizeof(*idx));
	const struct cond **when = arena_alloc(&rs->arena, (rs->n_rules + 1) * sizeof(*when));
	const struct cond **del = arena_alloc(&rs->arena, (rs->n_rules + 1) * sizeof(*del));

	for (size_t i = 0; i < rs->n_rules; i++) {
		const struct rule *r = &rs->rules[i];

		idx[i] = (uint32_t)i;
		when[i] = r->when;
		del[i] = r->kind == RK_RETENTION && r->retention.track ? r->retention.deleted_by
								     : NULL;
	}
	cd->idx = idx;
	cd->when = when;
	cd->deleted_by = del;
	cd->n = rs->n_rules;
}

struct action_rules {
	const char *action;
	uint32_t *idx;
	size_t n, cap;
};

static struct action_rules *
action_rules_get(struct action_rules **acts, size_t *n_acts, const char *action)
{
	struct action_rules *a;

	for (size_t k = 0; k < *n_acts; k++)
		if (!strcmp((*acts)[k].action, action))
			return &(*acts)[k];
	*acts = xrealloc(*acts, (*n_acts + 1) * sizeof(**acts));
	a = &(*acts)[(*n_acts)++];
	memset(a, 0, sizeof(*a));
	a->action = action;
	return a;
}

/*
 * For each action that a rule pins or that any rule's condition names, the
 * rules that can act on an event with it (in ruleset order) with their
 * conditions folded for that action; `unpinned` serves every other action.
 */
void
ruleset_build_index(struct ruleset *rs)
{
	struct action_rules *acts = NULL;
	size_t n_acts = 0;
	uint32_t *unpinned = xcalloc(rs->n_rules + 1, sizeof(*unpinned));
	uint32_t *merged = xcalloc(rs->n_rules + 1, sizeof(*merged));
	size_t n_unpinned = 0;
	struct pinset named = {0};

	for (size_t i = 0; i < rs->n_rules; i++) {
		struct pinset p = {0};

		named_actions(rs->rules[i].when, &named);
		if (rs->rules[i].kind == RK_RETENTION)
			named_actions(rs->rules[i].retention.deleted_by, &named);
		if (!rule_pins(&rs->rules[i], &p)) {
			unpinned[n_unpinned++] = (uint32_t)i;
			free(p.v);
			continue;
		}
		for (size_t j = 0; j < p.n; j++) {
			struct action_rules *a = action_rules_get(&acts, &n_acts, p.v[j]);

			if (a->n == a->cap) {
				a->cap = a->cap ? a->cap * 2 : 8;
				a->idx = xrealloc(a->idx, a->cap * sizeof(*a->idx));
			}
			a->idx[a->n++] = (uint32_t)i;
		}
		free(p.v);
	}
	/* an action a test names but no rule pins has the unpinned rules, folded for it */
	for (size_t j = 0; j < named.n; j++)
		action_rules_get(&acts, &n_acts, named.v[j]);
	free(named.v);
	candidates_build(rs, &rs->unpinned, unpinned, n_unpinned, NULL);
	unindexed_build(rs);

	const char **keys = xcalloc(n_acts + 1, sizeof(*keys));
	void **vals = xcalloc(n_acts + 1, sizeof(*vals));

	for (size_t k = 0; k < n_acts; k++) {
		struct candidates *c = arena_alloc(&rs->arena, sizeof(*c));
		size_t a = 0, b = 0, m = 0;

		/* both lists are in ruleset order: merge them */
		while (a < acts[k].n || b < n_unpinned) {
			if (b >= n_unpinned || (a < acts[k].n && acts[k].idx[a] < unpinned[b]))
				merged[m++] = acts[k].idx[a++];
			else
				merged[m++] = unpinned[b++];
		}
		candidates_build(rs, c, merged, m, acts[k].action);
		keys[k] = acts[k].action;
		vals[k] = c;
		free(acts[k].idx);
	}
	strmap_build(&rs->action_index, &rs->arena, keys, vals, n_acts);
	free(keys);
	free(vals);
	free(acts);
	free(unpinned);
	free(merged);
}
