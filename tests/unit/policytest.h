/* policytest.h - helpers shared by the policy suites: load rules from text, judge JSON events */
#ifndef AUPD_POLICYTEST_H
#define AUPD_POLICYTEST_H

#include "aupd/event.h"
#include "aupd/policy.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes `yaml` to a fresh directory as `name` and loads it; the diagnostics go to *dl. */
static inline struct ruleset *
pt_try_load(const char *name, const char *yaml, struct diag_list *dl)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, name);
	const char *paths[1] = {path};
	struct ruleset *rs;

	tu_write(path, yaml);
	rs = ruleset_load(paths, 1, NULL, dl);
	tu_rmtree(dir);
	free(dir);
	return rs;
}

/* Loads rules that must load; prints the diagnostics otherwise. */
static inline struct ruleset *
pt_load(const char *yaml)
{
	struct diag_list dl = {0};
	struct ruleset *rs = pt_try_load("rules.yaml", yaml, &dl);
	char line[1024];

	for (size_t i = 0; i < dl.n; i++) {
		aupd_error_format(&dl.v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	ck_assert_msg(rs != NULL, "the rules did not load (%zu errors)", dl.n);
	diag_list_free(&dl);
	return rs;
}

/* Parses and validates an event that must be valid; event_clear() it. */
static inline void
pt_event(struct event *ev, const char *json)
{
	json_error_t jerr;
	struct event_problem prob;
	json_t *doc = json_loads(json, 0, &jerr);

	ck_assert_msg(doc != NULL, "bad test JSON: %s: %s", jerr.text, json);
	ck_assert_msg(event_from_json(doc, ev, &prob) == 0, "invalid test event: %s (%s): %s",
		      prob.detail, prob.pointer, json);
	json_decref(doc);
}

/*
 * Judges one event given as JSON; clear *v with verdict_clear().  The event
 * is gone on return: the strings of the obligations *v opens are not to be
 * read (judge with pt_event() and policy_eval() for that).
 */
static inline enum effect
pt_eval(const struct ruleset *rs, struct policy_state *st, const char *json, struct verdict *v)
{
	struct event ev;

	pt_event(&ev, json);
	policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, v);
	event_clear(&ev);
	return v->verdict;
}

/* The match of `rule` in v, or NULL. */
static inline const struct match *
pt_match(const struct verdict *v, const char *rule)
{
	for (size_t i = 0; i < v->n_matched; i++)
		if (!strcmp(v->matched[i].rule, rule))
			return &v->matched[i];
	return NULL;
}

/* Judges an event and returns whether `rule` fired (shadow or exempted included). */
static inline bool
pt_fires(const struct ruleset *rs, struct policy_state *st, const char *json, const char *rule)
{
	struct verdict v;
	bool fired;

	pt_eval(rs, st, json, &v);
	fired = pt_match(&v, rule) != NULL;
	verdict_clear(&v);
	return fired;
}

/* A minimal valid event with the given extra members (JSON text without braces, or ""). */
static inline const char *
pt_ev(const char *id, const char *time, const char *extra)
{
	static char bufs[4][4096];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]),
		 "{\"id\":\"%s\",\"time\":\"%s\",\"tenant\":\"t1\",\"actor\":\"a1\","
		 "\"action\":\"data.read\"%s%s}",
		 id, time, *extra ? "," : "", extra);
	return b;
}

#endif
