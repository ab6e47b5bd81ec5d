/* ruletest.c - run the `tests:` cases of rule files against the loaded ruleset */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

size_t
ruleset_n_tests(const struct ruleset *rs)
{
	return rs->n_tests;
}

/* What one test event got. */
struct outcome {
	const char *id;
	const char *tenant;
	bool judged;
	enum effect verdict;
	const char **rules; /* enforcing, unexempted rules that fired */
	size_t n_rules;
	const char **alerts; /* escalations whose threshold the verdict met */
	size_t n_alerts;
};

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
rules_text(struct strbuf *sb, const char *const *rules, size_t n)
{
	sb_addc(sb, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_adds(sb, ", ");
		sb_adds(sb, rules[i]);
	}
	sb_addc(sb, ']');
}

static bool
same_rules(const char **a, size_t na, const char **b, size_t nb)
{
	const char **x = xcalloc(na + 1, sizeof(*x)), **y = xcalloc(nb + 1, sizeof(*y));
	size_t nx = 0, ny = 0;
	bool same = true;

	/* compared as sets */
	for (size_t i = 0; i < na; i++)
		x[nx++] = a[i];
	for (size_t i = 0; i < nb; i++)
		y[ny++] = b[i];
	qsort(x, nx, sizeof(*x), str_cmp);
	qsort(y, ny, sizeof(*y), str_cmp);
	for (size_t i = 0, j = 0; i < nx || j < ny;) {
		if (i < nx && i > 0 && !strcmp(x[i], x[i - 1])) {
			i++;
			continue;
		}
		if (j < ny && j > 0 && !strcmp(y[j], y[j - 1])) {
			j++;
			continue;
		}
		if (i >= nx || j >= ny || strcmp(x[i], y[j]) != 0) {
			same = false;
			break;
		}
		i++;
		j++;
	}
	free(x);
	free(y);
	return same;
}

static void
judge(const struct ruleset *rs, struct policy_state *st, const struct rule_test *t,
      struct outcome *out, size_t k, struct event *ev)
{
	struct escalation_hit *hits;
	struct verdict v;
	size_t n;

	/* a resent event (same tenant and id) is not judged again */
	for (size_t j = 0; j < k; j++) {
		if (out[j].judged && !strcmp(out[j].id, ev->id) &&
		    !strcmp(out[j].tenant, ev->tenant)) {
			out[k] = out[j];
			out[k].rules = xcalloc(out[j].n_rules + 1, sizeof(*out[k].rules));
			memcpy(out[k].rules, out[j].rules, out[j].n_rules * sizeof(*out[k].rules));
			/* a resend is not recorded again: it counts toward no escalation */
			out[k].alerts = xcalloc(1, sizeof(*out[k].alerts));
			out[k].n_alerts = 0;
			return;
		}
	}
	policy_eval(rs, st, ev, t->default_effect, 0, &v);
	out[k].judged = true;
	out[k].verdict = v.verdict;
	out[k].rules = xcalloc(v.n_matched + 1, sizeof(*out[k].rules));
	for (size_t i = 0; i < v.n_matched; i++)
		if (!v.matched[i].shadow && !v.matched[i].exempted)
			out[k].rules[out[k].n_rules++] = v.matched[i].rule;
	n = policy_escalate(rs, st, ev, NULL, &v, (int64_t)k + 1, ev->time, 0, &hits);
	out[k].alerts = xcalloc(n + 1, sizeof(*out[k].alerts));
	for (size_t i = 0; i < n; i++) {
		if (hits[i].crossed)
			out[k].alerts[out[k].n_alerts++] = hits[i].escalation;
		escalation_hit_clear(&hits[i]);
	}
	free(hits);
	verdict_clear(&v);
}

bool
ruleset_test_run(const struct ruleset *rs, size_t i, struct strbuf *report)
{
	const struct rule_test *t = &rs->tests[i];
	struct policy_state *st = policy_state_new();
	struct outcome *out = xcalloc(t->n_events + 1, sizeof(*out));
	struct event *evs = xcalloc(t->n_events + 1, sizeof(*evs));
	bool ok = true;

	for (size_t k = 0; k < t->n_events; k++) {
		struct event_problem prob;
		const char *id = json_string_value(json_object_get(t->events[k], "id"));

		out[k].id = id ? id : "?";
		if (event_from_json(t->events[k], &evs[k], &prob) < 0) {
			sb_addf(report, "%s:%d: test '%s': event %s (line %d) is invalid: %s", t->file,
				t->line, t->name, out[k].id, t->event_lines[k], prob.detail);
			if (prob.pointer[0])
				sb_addf(report, " (at %s)", prob.pointer);
			sb_addc(report, '\n');
			ok = false;
			continue;
		}
		out[k].tenant = evs[k].tenant;
		judge(rs, st, t, out, k, &evs[k]);
	}
	for (size_t x = 0; x < t->n_expect; x++) {
		const struct test_expect *e = &t->expect[x];
		const struct outcome *o = NULL;
		bool verdict_ok, rules_ok, alerts_ok;

		for (size_t k = 0; k < t->n_events && !o; k++)
			if (out[k].judged && !strcmp(out[k].id, e->id) &&
			    (!e->tenant || !strcmp(out[k].tenant, e->tenant)))
				o = &out[k];
		if (!o)
			continue; /* the event was invalid, already reported */
		verdict_ok = !e->has_verdict || e->verdict == o->verdict;
		rules_ok = !e->has_rules || same_rules(e->rules, e->n_rules, o->rules, o->n_rules);
		alerts_ok = !e->has_alerts ||
			    same_rules(e->alerts, e->n_alerts, o->alerts, o->n_alerts);
		if (verdict_ok && rules_ok && alerts_ok)
			continue;
		ok = false;
		sb_addf(report, "%s:%d: test '%s': event %s: expected", t->file, t->line, t->name,
			e->id);
		if (e->has_verdict)
			sb_addf(report, " verdict %s", effect_name(e->verdict));
		if (e->has_rules) {
			sb_adds(report, e->has_verdict ? ", rules " : " rules ");
			rules_text(report, e->rules, e->n_rules);
		}
		if (e->has_alerts) {
			sb_adds(report, e->has_verdict || e->has_rules ? ", alerts " : " alerts ");
			rules_text(report, e->alerts, e->n_alerts);
		}
		sb_addf(report, "; got verdict %s, rules ", effect_name(o->verdict));
		rules_text(report, o->rules, o->n_rules);
		if (e->has_alerts) {
			sb_adds(report, ", alerts ");
			rules_text(report, o->alerts, o->n_alerts);
		}
		sb_addc(report, '\n');
	}
	for (size_t k = 0; k < t->n_events; k++) {
		free(out[k].rules);
		free(out[k].alerts);
		event_clear(&evs[k]);
	}
	free(out);
	free(evs);
	policy_state_free(st);
	return ok;
}
