/* rules_load_more.c - load escalations, exemptions and tests (everything that refers to rules) */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const escalation_keys[] = {"id",    "description", "when",  "threshold",
					      "level", "cooldown",    "notify"};
static const char *const threshold_keys[] = {"count", "by", "window"};
static const char *const exemption_keys[] = {"id", "rules", "when", "expires", "reason"};
static const char *const test_keys[] = {"name", "events", "expect", "default_effect"};
static const char *const expect_keys[] = {"id", "tenant", "verdict", "rules", "alerts"};
static const char *const level_names[] = {"notice", "warning", "critical", "suspend"};

static size_t
seq_len(yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static const struct rule *
find_rule(struct loader *ld, const char *id)
{
	for (size_t i = 0; i < ld->rs->n_rules; i++)
		if (!strcmp(ld->rs->rules[i].id, id))
			return &ld->rs->rules[i];
	return NULL;
}

/* A rule id that must name a loaded rule; NULL after a diagnostic. */
static const struct rule *
rule_ref(struct loader *ld, yaml_node_t *n)
{
	const char *s = loader_str(ld, n, "a rule id"), *best;
	const char **ids;
	const struct rule *r;

	if (!s)
		return NULL;
	if ((r = find_rule(ld, s)))
		return r;
	for (size_t i = 0; i < ld->n_broken; i++)
		if (!strcmp(ld->broken[i], s))
			return NULL; /* its own errors are reported */
	ids = xcalloc(ld->rs->n_rules + 1, sizeof(*ids));
	for (size_t i = 0; i < ld->rs->n_rules; i++)
		ids[i] = ld->rs->rules[i].id;
	best = suggest_word(s, ids, ld->rs->n_rules);
	if (best)
		ydiag(ld->dl, ld->yd, n, "unknown rule '%s' (did you mean '%s'?)", s, best);
	else
		ydiag(ld->dl, ld->yd, n, "unknown rule '%s'", s);
	free(ids);
	return NULL;
}

/* ---- escalations ---- */

static bool
load_notify(struct loader *ld, yaml_node_t *n, struct escalation *e)
{
	const struct ruleset_opts *o = ld->opts;
	bool ok = true;

	if (!loader_seq(ld, n, "notify"))
		return false;
	e->notify = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*e->notify));
	YSEQ_FOREACH(ld->yd, n, it) {
		yaml_node_t *item = ydoc_node(ld->yd, *it);
		const char *s = loader_str(ld, item, "a notifier name");
		bool known = !o || !o->notifiers;

		if (!s) {
			ok = false;
			continue;
		}
		for (size_t i = 0; !known && i < o->n_notifiers; i++)
			known = !strcmp(o->notifiers[i], s);
		if (!known) {
			const char *best = suggest_word(s, (const char *const *)o->notifiers,
							o->n_notifiers);

			if (best)
				ydiag(ld->dl, ld->yd, item,
				      "unknown notifier '%s' (did you mean '%s'?)", s, best);
			else
				ydiag(ld->dl, ld->yd, item,
				      "unknown notifier '%s'; notifiers are defined under notifiers: "
				      "in the configuration",
				      s);
			ok = false;
			continue;
		}
		e->notify[e->n_notify++] = arena_strdup(&ld->rs->arena, s);
	}
	return ok;
}

static bool
load_threshold(struct loader *ld, yaml_node_t *keynode, yaml_node_t *t, struct escalation *e)
{
	yaml_node_t *n;
	int64_t count;
	bool ok = true;

	if (!loader_map(ld, t, "threshold"))
		return false;
	if (ymap_check_keys(ld->yd, t, threshold_keys, AUPD_ARRAY_LEN(threshold_keys),
			    "threshold", ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, t, "count", NULL))) {
		ydiag(ld->dl, ld->yd, keynode, "threshold needs count (verdicts in the window)");
		ok = false;
	} else if (ynode_i64(n, 1, 100000000, &count) < 0) {
		ydiag(ld->dl, ld->yd, n, "count must be a whole number >= 1, not %s",
		      ynode_str(n) ? ynode_str(n) : ynode_describe(n));
		ok = false;
	} else {
		e->count = (size_t)count;
	}
	if (!(n = ymap_get(ld->yd, t, "window", NULL))) {
		ydiag(ld->dl, ld->yd, keynode, "threshold needs a window (e.g. window: 1h)");
		ok = false;
	} else if (loader_duration(ld, n, "window", &e->window) < 0) {
		ok = false;
	}
	if ((n = ymap_get(ld->yd, t, "by", NULL))) {
		size_t k = 0;
		bool bad = false;

		if (n->type == YAML_SCALAR_NODE && !ynode_is_null(n)) {
			e->by = arena_alloc(&ld->rs->arena, sizeof(*e->by));
			bad = path_compile(ld, n, PCTX_ESCALATION, e->by) < 0;
			k = 1;
		} else if (loader_seq(ld, n, "by")) {
			e->by = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*e->by));
			YSEQ_FOREACH(ld->yd, n, it) {
				if (path_compile(ld, ydoc_node(ld->yd, *it), PCTX_ESCALATION,
						 &e->by[k]) < 0)
					bad = true;
				else
					k++;
			}
		} else {
			bad = true;
		}
		e->n_by = k;
		ok &= !bad;
	} else {
		loader_default_by(ld, &e->by, &e->n_by);
	}
	return ok;
}

static bool
load_escalation(struct loader *ld, yaml_node_t *item, struct escalation *e)
{
	yaml_node_t *n, *k;
	bool ok = true;

	e->file = ld->yd->file;
	e->line = ynode_line(item);
	if (!loader_map(ld, item, "an escalation"))
		return false;
	if (ymap_check_keys(ld->yd, item, escalation_keys, AUPD_ARRAY_LEN(escalation_keys),
			    "escalation", ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "id", NULL))) {
		ydiag(ld->dl, ld->yd, item, "an escalation needs an id");
		ok = false;
	} else if (!loader_id(ld, n, "escalation", &e->id)) {
		ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "description", NULL))) {
		const char *s = loader_str(ld, n, "description");

		if (s)
			e->description = arena_strdup(&ld->rs->arena, s);
		else
			ok = false;
	}
	ld->pctx = PCTX_ESCALATION;
	if ((n = ymap_get(ld->yd, item, "when", NULL)) && !(e->when = cond_compile(ld, n)))
		ok = false;
	ld->pctx = PCTX_EVENT;
	e->names_rule_fields = cond_names_rule_fields(e->when);
	if (!(n = ymap_get(ld->yd, item, "threshold", &k))) {
		ydiag(ld->dl, ld->yd, item,
		      "an escalation needs a threshold ({count: 5, window: 1h, by: [tenant]})");
		ok = false;
	} else if (!load_threshold(ld, k, n, e)) {
		ok = false;
	}
	if (!(n = ymap_get(ld->yd, item, "level", NULL))) {
		ydiag(ld->dl, ld->yd, item,
		      "an escalation needs a level (notice, warning, critical or suspend)");
		ok = false;
	} else {
		const char *s = loader_str(ld, n, "level"), *best;
		bool found = false;

		for (size_t i = 0; s && i < AUPD_ARRAY_LEN(level_names); i++) {
			if (!strcmp(s, level_names[i])) {
				e->level = (enum alert_level)i;
				found = true;
			}
		}
		if (s && !found) {
			best = suggest_word(s, level_names, AUPD_ARRAY_LEN(level_names));
			if (best)
				ydiag(ld->dl, ld->yd, n, "unknown level '%s' (did you mean '%s'?)", s,
				      best);
			else
				ydiag(ld->dl, ld->yd, n,
				      "unknown level '%s'; levels are notice, warning, critical, "
				      "suspend",
				      s);
		}
		ok &= found;
	}
	e->cooldown = e->window;
	if ((n = ymap_get(ld->yd, item, "cooldown", NULL))) {
		const char *s = ynode_str(n), *why;

		if (s && !strcmp(s, "0")) {
			e->cooldown = 0;
		} else if (!s || n->type != YAML_SCALAR_NODE || duration_parse(s, &e->cooldown, &why) < 0) {
			ydiag(ld->dl, ld->yd, n, "bad duration '%s' for cooldown",
			      s ? s : ynode_describe(n));
			ok = false;
		}
	}
	if ((n = ymap_get(ld->yd, item, "notify", NULL)) && !load_notify(ld, n, e))
		ok = false;
	return ok;
}

void
load_escalations(struct loader *ld, yaml_node_t *seq)
{
	struct ruleset *rs = ld->rs;
	struct escalation *grown;

	if (!loader_seq(ld, seq, "escalations"))
		return;
	grown = arena_alloc(&rs->arena, (rs->n_escs + seq_len(seq) + 1) * sizeof(*grown));
	if (rs->n_escs)
		memcpy(grown, rs->escs, rs->n_escs * sizeof(*grown));
	rs->escs = grown;
	YSEQ_FOREACH(ld->yd, seq, it) {
		struct escalation *e = &rs->escs[rs->n_escs];

		if (load_escalation(ld, ydoc_node(ld->yd, *it), e)) {
			rs->n_escs++;
			if (e->window > rs->max_window)
				rs->max_window = e->window;
		} else {
			memset(e, 0, sizeof(*e));
		}
	}
}

/* ---- exemptions ---- */

static void
link_exemption(struct loader *ld, const struct exemption *x, struct rule *r)
{
	const struct exemption **grown =
		arena_alloc(&ld->rs->arena, (r->n_exemptions + 1) * sizeof(*grown));

	if (r->n_exemptions)
		memcpy(grown, r->exemptions, r->n_exemptions * sizeof(*grown));
	grown[r->n_exemptions++] = x;
	r->exemptions = grown;
}

static bool
load_exemption(struct loader *ld, yaml_node_t *item, struct exemption *x)
{
	yaml_node_t *n;
	bool ok = true;

	x->file = ld->yd->file;
	x->line = ynode_line(item);
	if (!loader_map(ld, item, "an exemption"))
		return false;
	if (ymap_check_keys(ld->yd, item, exemption_keys, AUPD_ARRAY_LEN(exemption_keys),
			    "exemption", ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "id", NULL))) {
		ydiag(ld->dl, ld->yd, item, "an exemption needs an id");
		ok = false;
	} else if (!loader_id(ld, n, "exemption", &x->id)) {
		ok = false;
	}
	if (!(n = ymap_get(ld->yd, item, "rules", NULL))) {
		ydiag(ld->dl, ld->yd, item, "an exemption needs rules: [the rule ids it covers]");
		ok = false;
	} else if (n->type == YAML_SCALAR_NODE && !ynode_is_null(n)) {
		const struct rule *r = rule_ref(ld, n);

		x->rules = arena_alloc(&ld->rs->arena, sizeof(*x->rules));
		if (r)
			x->rules[x->n_rules++] = r->id;
		ok &= r != NULL;
	} else if (loader_seq(ld, n, "rules")) {
		x->rules = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*x->rules));
		YSEQ_FOREACH(ld->yd, n, it) {
			const struct rule *r = rule_ref(ld, ydoc_node(ld->yd, *it));

			if (r)
				x->rules[x->n_rules++] = r->id;
			else
				ok = false;
		}
	} else {
		ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "when", NULL)) && !(x->when = cond_compile(ld, n)))
		ok = false;
	if ((n = ymap_get(ld->yd, item, "expires", NULL))) {
		const char *s = loader_str(ld, n, "expires"), *why;

		if (!s) {
			ok = false;
		} else if (time_parse_rfc3339(s, strlen(s), &x->expires, &why) < 0) {
			ydiag(ld->dl, ld->yd, n, "expires: %s", why);
			ok = false;
		} else {
			x->has_expires = true;
		}
	}
	if ((n = ymap_get(ld->yd, item, "reason", NULL))) {
		const char *s = loader_str(ld, n, "reason");

		if (s)
			x->reason = arena_strdup(&ld->rs->arena, s);
		else
			ok = false;
	}
	return ok;
}

void
load_exemptions(struct loader *ld, yaml_node_t *seq)
{
	struct ruleset *rs = ld->rs;
	struct exemption *grown;

	if (!loader_seq(ld, seq, "exemptions"))
		return;
	/* rules keep pointers to exemptions: the array is sized once, over every file */
	if (!rs->exs) {
		size_t total = 0;

		for (size_t i = 0; i < ld->n_files; i++) {
			yaml_node_t *root, *v;

			if (!ld->files[i].parsed || !(root = ydoc_root(&ld->files[i].yd)))
				continue;
			v = ymap_get(&ld->files[i].yd, root, "exemptions", NULL);
			if (v && v->type == YAML_SEQUENCE_NODE)
				total += seq_len(v);
		}
		rs->exs = arena_alloc(&rs->arena, (total + 1) * sizeof(*rs->exs));
	}
	grown = rs->exs;
	YSEQ_FOREACH(ld->yd, seq, it) {
		struct exemption *x = &grown[rs->n_exs];

		if (!load_exemption(ld, ydoc_node(ld->yd, *it), x)) {
			memset(x, 0, sizeof(*x));
			continue;
		}
		rs->n_exs++;
		for (size_t i = 0; i < x->n_rules; i++)
			link_exemption(ld, x, (struct rule *)find_rule(ld, x->rules[i]));
	}
}

/* ---- tests ---- */

/* An escalation id that must name a loaded escalation; NULL after a diagnostic. */
static const char *
escalation_ref(struct loader *ld, yaml_node_t *n)
{
	const char *s = loader_str(ld, n, "an escalation id"), *best;
	const char **ids;

	if (!s)
		return NULL;
	for (size_t i = 0; i < ld->rs->n_escs; i++)
		if (!strcmp(ld->rs->escs[i].id, s))
			return ld->rs->escs[i].id;
	ids = xcalloc(ld->rs->n_escs + 1, sizeof(*ids));
	for (size_t i = 0; i < ld->rs->n_escs; i++)
		ids[i] = ld->rs->escs[i].id;
	best = suggest_word(s, ids, ld->rs->n_escs);
	if (best)
		ydiag(ld->dl, ld->yd, n, "unknown escalation '%s' (did you mean '%s'?)", s, best);
	else
		ydiag(ld->dl, ld->yd, n, "unknown escalation '%s'", s);
	free(ids);
	return NULL;
}

enum jmode {
	J_NATURAL, /* YAML typing: null, booleans, numbers, strings */
	J_STRING,  /* scalars become strings whatever they look like */
};

static json_t *to_json(struct loader *ld, yaml_node_t *n, enum jmode mode);

static json_t *
scalar_json(yaml_node_t *n, enum jmode mode)
{
	const char *s = ynode_str(n);
	double d;
	int64_t i;
	int b;

	if (mode == J_STRING || !ynode_plain(n))
		return json_string(s);
	if (ynode_is_null(n))
		return json_null();
	if ((b = ynode_bool(n)) >= 0)
		return json_boolean(b);
	if (ynode_i64(n, INT64_MIN, INT64_MAX, &i) == 0)
		return json_integer(i);
	if (ynode_number(n, &d) == 0)
		return json_real(d);
	return json_string(s);
}

static json_t *
map_json(struct loader *ld, yaml_node_t *n, enum jmode mode, bool event)
{
	json_t *obj = json_object();

	YMAP_FOREACH(ld->yd, n, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key), *v = ydoc_node(ld->yd, pair->value);
		const char *key = ynode_str(k);
		enum jmode vm = mode;
		json_t *val;

		if (!key || k->type != YAML_SCALAR_NODE) {
			ydiag(ld->dl, ld->yd, k, "keys must be strings, not %s", ynode_describe(k));
			continue;
		}
		if (json_object_get(obj, key)) {
			ydiag(ld->dl, ld->yd, k, "duplicate key '%s'", key);
			continue;
		}
		if (event) {
			/* the event's string fields stay strings even when written as numbers */
			static const char *const strs[] = {"id",     "tenant",	"actor",
							   "action", "purpose", "time"};

			vm = J_NATURAL;
			for (size_t i = 0; i < AUPD_ARRAY_LEN(strs); i++)
				if (!strcmp(key, strs[i]))
					vm = J_STRING;
			if (!strcmp(key, "quantity") && v->type == YAML_SCALAR_NODE) {
				/* a number, even when quoted; anything else is left to validation */
				const char *q = ynode_str(v);
				char *end;
				double d = strtod(q, &end);

				if (*q && !*end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == '-' ||
						    *q == '+')) {
					json_object_set_new(obj, key, json_real(d));
					continue;
				}
			}
			if (!strcmp(key, "resource") && v->type == YAML_MAPPING_NODE) {
				val = map_json(ld, v, J_STRING, false);
				json_object_set_new(obj, key, val);
				continue;
			}
		}
		if (vm == J_STRING && v->type != YAML_SCALAR_NODE)
			vm = J_NATURAL;
		if ((val = to_json(ld, v, vm)))
			json_object_set_new(obj, key, val);
	}
	return obj;
}

static json_t *
to_json(struct loader *ld, yaml_node_t *n, enum jmode mode)
{
	json_t *out = NULL;

	if (loader_depth_enter(ld, n) < 0)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		out = scalar_json(n, mode);
		break;
	case YAML_SEQUENCE_NODE:
		out = json_array();
		YSEQ_FOREACH(ld->yd, n, it) {
			json_t *v = to_json(ld, ydoc_node(ld->yd, *it), mode);

			if (v)
				json_array_append_new(out, v);
		}
		break;
	case YAML_MAPPING_NODE:
		out = map_json(ld, n, mode, false);
		break;
	default:
		break;
	}
	ld->depth--;
	return out;
}

static bool
load_expect(struct loader *ld, yaml_node_t *item, struct rule_test *t, struct test_expect *x)
{
	yaml_node_t *n;
	size_t matches = 0;
	bool ok = true;

	x->line = ynode_line(item);
	if (!loader_map(ld, item, "an expect entry"))
		return false;
	if (ymap_check_keys(ld->yd, item, expect_keys, AUPD_ARRAY_LEN(expect_keys), "expect",
			    ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "id", NULL))) {
		ydiag(ld->dl, ld->yd, item, "an expect entry needs the id of one of the events");
		return false;
	}
	if (!(x->id = loader_str(ld, n, "id")))
		return false;
	x->id = arena_strdup(&ld->rs->arena, x->id);
	if ((n = ymap_get(ld->yd, item, "tenant", NULL))) {
		if (!(x->tenant = loader_str(ld, n, "tenant")))
			ok = false;
		else
			x->tenant = arena_strdup(&ld->rs->arena, x->tenant);
	}
	for (size_t i = 0; i < t->n_events; i++) {
		const char *id = json_string_value(json_object_get(t->events[i], "id"));
		const char *tenant = json_string_value(json_object_get(t->events[i], "tenant"));

		if (id && !strcmp(id, x->id) &&
		    (!x->tenant || (tenant && !strcmp(tenant, x->tenant))))
			matches++;
	}
	if (matches == 0) {
		ydiag(ld->dl, ld->yd, item, "expect names event '%s', which is not in this test's "
					    "events",
		      x->id);
		ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "verdict", NULL))) {
		if (loader_effect(ld, n, &x->verdict) < 0)
			ok = false;
		x->has_verdict = true;
	}
	if ((n = ymap_get(ld->yd, item, "rules", NULL))) {
		x->has_rules = true;
		if (!loader_seq(ld, n, "rules")) {
			ok = false;
		} else {
			x->rules = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*x->rules));
			YSEQ_FOREACH(ld->yd, n, it) {
				const struct rule *r = rule_ref(ld, ydoc_node(ld->yd, *it));

				if (r)
					x->rules[x->n_rules++] = r->id;
				else
					ok = false;
			}
		}
	}
	if ((n = ymap_get(ld->yd, item, "alerts", NULL))) {
		x->has_alerts = true;
		if (!loader_seq(ld, n, "alerts")) {
			ok = false;
		} else {
			x->alerts = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*x->alerts));
			YSEQ_FOREACH(ld->yd, n, it) {
				const char *e = escalation_ref(ld, ydoc_node(ld->yd, *it));

				if (e)
					x->alerts[x->n_alerts++] = e;
				else
					ok = false;
			}
		}
	}
	if (!x->has_verdict && !x->has_rules && !x->has_alerts) {
		ydiag(ld->dl, ld->yd, item, "an expect entry needs verdict, rules or alerts");
		ok = false;
	}
	return ok;
}

static bool
load_test(struct loader *ld, yaml_node_t *item, struct rule_test *t)
{
	yaml_node_t *n;
	bool ok = true;

	t->file = ld->yd->file;
	t->line = ynode_line(item);
	t->default_effect = EFFECT_ALLOW;
	if (!loader_map(ld, item, "a test"))
		return false;
	if (ymap_check_keys(ld->yd, item, test_keys, AUPD_ARRAY_LEN(test_keys), "test", ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "name", NULL))) {
		ydiag(ld->dl, ld->yd, item, "a test needs a name");
		ok = false;
	} else if ((t->name = loader_str(ld, n, "name"))) {
		t->name = arena_strdup(&ld->rs->arena, t->name);
	} else {
		ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "default_effect", NULL)) &&
	    loader_effect(ld, n, &t->default_effect) < 0)
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "events", NULL))) {
		ydiag(ld->dl, ld->yd, item, "a test needs events");
		return false;
	}
	if (!loader_seq(ld, n, "events"))
		return false;
	t->events = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*t->events));
	t->event_lines = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*t->event_lines));
	YSEQ_FOREACH(ld->yd, n, it) {
		yaml_node_t *ev = ydoc_node(ld->yd, *it);

		if (!loader_map(ld, ev, "a test event")) {
			ok = false;
			continue;
		}
		t->event_lines[t->n_events] = ynode_line(ev);
		t->events[t->n_events++] = map_json(ld, ev, J_NATURAL, true);
	}
	if (!(n = ymap_get(ld->yd, item, "expect", NULL))) {
		ydiag(ld->dl, ld->yd, item, "a test needs expect: [{id, verdict, rules}...]");
		return false;
	}
	if (!loader_seq(ld, n, "expect"))
		return false;
	t->expect = arena_alloc(&ld->rs->arena, (seq_len(n) + 1) * sizeof(*t->expect));
	YSEQ_FOREACH(ld->yd, n, it) {
		if (load_expect(ld, ydoc_node(ld->yd, *it), t, &t->expect[t->n_expect]))
			t->n_expect++;
		else
			ok = false;
	}
	return ok;
}

void
load_tests(struct loader *ld, yaml_node_t *seq)
{
	struct ruleset *rs = ld->rs;
	struct rule_test *grown;

	if (!loader_seq(ld, seq, "tests"))
		return;
	grown = arena_alloc(&rs->arena, (rs->n_tests + seq_len(seq) + 1) * sizeof(*grown));
	if (rs->n_tests)
		memcpy(grown, rs->tests, rs->n_tests * sizeof(*grown));
	rs->tests = grown;
	YSEQ_FOREACH(ld->yd, seq, it) {
		struct rule_test *t = &rs->tests[rs->n_tests];

		/* counted even when broken, so that its events are freed */
		load_test(ld, ydoc_node(ld->yd, *it), t);
		rs->n_tests++;
	}
}
