/* test_escalate.c - escalations: thresholds in exact windows, groups, the four rule fields */
#include "policytest.h"

#define MIN (60 * AUPD_USEC)

/* Keeps the entries that met their threshold (hits); the rest are matches below it. */
static size_t
crossed_only(struct escalation_hit *h, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (h[i].crossed)
			h[k++] = h[i];
		else
			escalation_hit_clear(&h[i]);
	}
	return k;
}

/* Judges an event and feeds its verdict to the escalations; returns the hits' count. */
static size_t
feed(const struct ruleset *rs, struct policy_state *st, const char *json, int64_t seq,
     unsigned flags, struct escalation_hit **hits)
{
	struct event ev;
	struct verdict v;
	size_t n;

	pt_event(&ev, json);
	policy_eval(rs, st, &ev, EFFECT_ALLOW, flags, &v);
	n = crossed_only(*hits, policy_escalate(rs, st, &ev, NULL, &v, seq, ev.time, flags, hits));
	verdict_clear(&v);
	event_clear(&ev);
	return n;
}

static void
hits_free(struct escalation_hit *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		escalation_hit_clear(&h[i]);
	free(h);
}

/* How many hits escalation `id` got from one event. */
static bool
hit(const char *id, struct escalation_hit *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(h[i].escalation, id))
			return true;
	return false;
}

static const char *
at(const char *id, const char *tenant, const char *time, const char *actor)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]),
		 "{\"id\":\"%s\",\"time\":\"%s\",\"tenant\":\"%s\",\"actor\":\"%s\","
		 "\"action\":\"data.read\"}",
		 id, time, tenant, actor);
	return b;
}

START_TEST(threshold_at_window_edge)
{
	struct ruleset *rs = pt_load("rules:\n  - {id: r, severity: high, when: {actor: bad}}\n"
				     "escalations:\n"
				     "  - id: e\n"
				     "    when: {verdict: deny, severity: high}\n"
				     "    threshold: {count: 3, window: 1h}\n"
				     "    level: critical\n"
				     "    notify: [compliance]\n");
	struct policy_state *st = policy_state_new();
	struct escalation_hit *h;

	ck_assert_uint_eq(feed(rs, st, at("1", "t", "2026-01-15T10:00:00Z", "bad"), 1, 0, &h), 0);
	free(h);
	ck_assert_uint_eq(feed(rs, st, at("2", "t", "2026-01-15T10:30:00Z", "bad"), 2, 0, &h), 0);
	free(h);
	/* an allowed verdict does not count */
	ck_assert_uint_eq(feed(rs, st, at("3", "t", "2026-01-15T10:40:00Z", "ok"), 3, 0, &h), 0);
	free(h);
	/* at exactly 11:00 the 10:00 verdict has left the window (10:00, 11:00] */
	ck_assert_uint_eq(feed(rs, st, at("4", "t", "2026-01-15T11:00:00Z", "bad"), 4, 0, &h), 0);
	free(h);
	/* 10:59:59.999999 arrives late: (09:59:59.999999, 10:59:59.999999] holds 1, 2 and itself */
	ck_assert_uint_eq(feed(rs, st, at("5", "t", "2026-01-15T10:59:59.999999Z", "bad"), 5, 0, &h),
			  1);
	ck_assert_str_eq(h[0].escalation, "e");
	ck_assert_int_eq(h[0].level, LEVEL_CRITICAL);
	ck_assert_uint_eq(h[0].count, 3);
	ck_assert_uint_eq(h[0].n_seqs, 3);
	ck_assert_int_eq(h[0].seqs[0], 1);
	ck_assert_int_eq(h[0].seqs[1], 2);
	ck_assert_int_eq(h[0].seqs[2], 5);
	ck_assert_str_eq(h[0].group_key, "t");
	ck_assert_str_eq(json_string_value(json_object_get(h[0].group, "tenant")), "t");
	ck_assert_uint_eq(h[0].n_notify, 1);
	ck_assert_str_eq(h[0].notify[0], "compliance");
	ck_assert_int_eq(h[0].window_us, 60 * MIN);
	ck_assert_int_eq(h[0].cooldown_us, 60 * MIN); /* default: the window */
	ck_assert_int_lt(h[0].first, h[0].last);
	hits_free(h, 1);
	/* 11:05 in order: (10:05, 11:05] holds 2, 5, 4 and itself */
	ck_assert_uint_eq(feed(rs, st, at("6", "t", "2026-01-15T11:05:00Z", "bad"), 6, 0, &h), 1);
	ck_assert_uint_eq(h[0].count, 4);
	hits_free(h, 1);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(groups)
{
	struct ruleset *rs = pt_load("rules:\n  - {id: r, when: {actor: {glob: \"bad*\"}}}\n"
				     "escalations:\n"
				     "  - {id: per-tenant, threshold: {count: 2, window: 1h},"
				     " when: {verdict: deny}, level: notice}\n"
				     "  - {id: per-actor, threshold: {count: 2, window: 1h, by: [tenant, actor]},"
				     " when: {verdict: deny}, level: warning}\n"
				     "  - {id: global, threshold: {count: 3, window: 1h, by: []},"
				     " when: {verdict: deny}, level: warning}\n");
	struct policy_state *st = policy_state_new();
	struct escalation_hit *h;
	size_t n;

	n = feed(rs, st, at("1", "a", "2026-01-15T10:00:00Z", "bad1"), 1, 0, &h);
	ck_assert_uint_eq(n, 0);
	free(h);
	n = feed(rs, st, at("2", "b", "2026-01-15T10:01:00Z", "bad1"), 2, 0, &h);
	ck_assert_uint_eq(n, 0);
	free(h);
	n = feed(rs, st, at("3", "a", "2026-01-15T10:02:00Z", "bad2"), 3, 0, &h);
	ck_assert(hit("per-tenant", h, n));
	ck_assert(!hit("per-actor", h, n));
	ck_assert(hit("global", h, n));
	for (size_t i = 0; i < n; i++)
		if (!strcmp(h[i].escalation, "global"))
			ck_assert_str_eq(h[i].group_key, "");
	hits_free(h, n);
	n = feed(rs, st, at("4", "a", "2026-01-15T10:03:00Z", "bad2"), 4, 0, &h);
	ck_assert(hit("per-actor", h, n));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(h[i].escalation, "per-actor") != 0)
			continue;
		ck_assert_str_eq(h[i].group_key, "a\x1f" "bad2");
		ck_assert_str_eq(json_string_value(json_object_get(h[i].group, "actor")), "bad2");
	}
	hits_free(h, n);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/*
 * "A verdict counts once toward an escalation when its when holds for the
 * verdict's own fields together with at least one of its enforcing,
 * unexempted matched rules."
 */
START_TEST(four_rule_fields)
{
	struct ruleset *rs = pt_load(
		"rules:\n"
		"  - {id: high-flag, severity: high, effect: flag, tags: [bio, quota],"
		" when: {actor: {in: [x, y]}}}\n"
		"  - {id: med-deny, severity: medium, effect: deny, when: {actor: x}}\n"
		"  - {id: shadow-crit, severity: critical, mode: shadow, when: {actor: s}}\n"
		"  - {id: exempt-crit, severity: critical, when: {actor: s}}\n"
		"exemptions:\n  - {id: ex, rules: [exempt-crit]}\n"
		"escalations:\n"
		"  - {id: one-rule, when: {severity: high, effect: deny},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: verdict-and-rule, when: {verdict: deny, severity: high},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: crit, when: {severity: critical},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: no-rule-field, when: {verdict: allow},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: rule-absent, when: {rule: {exists: false}},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: not-tag, when: {tags: {ne: quota}},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: tag, when: {tags: bio, rule: high-flag},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: tag-in, when: {tags: {in: [zzz, quota]}},"
		" threshold: {count: 1, window: 1h}, level: notice}\n"
		"  - {id: ranked, when: {severity: {gte: medium}, effect: {lt: deny}},"
		" threshold: {count: 1, window: 1h}, level: notice}\n");
	struct policy_state *st = policy_state_new();
	struct escalation_hit *h;
	size_t n;

	/* x: high-flag and med-deny; the verdict is deny */
	n = feed(rs, st, at("1", "t", "2026-01-15T10:00:00Z", "x"), 1, 0, &h);
	/* no single rule is both high and deny */
	ck_assert(!hit("one-rule", h, n));
	/* verdict deny (the verdict's field) with high-flag (a rule's field) */
	ck_assert(hit("verdict-and-rule", h, n));
	ck_assert(!hit("crit", h, n));
	ck_assert(!hit("no-rule-field", h, n));
	ck_assert(!hit("rule-absent", h, n));
	/* med-deny has no tags, so "not quota" holds with it */
	ck_assert(hit("not-tag", h, n));
	ck_assert(hit("tag", h, n));
	ck_assert(hit("tag-in", h, n));
	ck_assert(hit("ranked", h, n)); /* high-flag: high >= medium, flag < deny */
	hits_free(h, n);

	/* s: only a shadow and an exempted rule fired: the verdict has no such rule */
	n = feed(rs, st, at("2", "t", "2026-01-15T10:00:00Z", "s"), 2, 0, &h);
	ck_assert(!hit("crit", h, n));
	/* ... so it matches only conditions naming none of the four fields */
	ck_assert(hit("no-rule-field", h, n));
	ck_assert(!hit("rule-absent", h, n));
	ck_assert(!hit("not-tag", h, n));
	hits_free(h, n);

	/* nothing fired at all: the same */
	n = feed(rs, st, at("3", "t", "2026-01-15T10:00:00Z", "nobody"), 3, 0, &h);
	ck_assert(hit("no-rule-field", h, n));
	ck_assert(!hit("rule-absent", h, n));
	hits_free(h, n);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(overdue_records_and_replay)
{
	struct ruleset *rs = pt_load(
		"rules:\n"
		"  - id: ret\n"
		"    severity: high\n"
		"    retention: {age_of: resource.created, max: 1d, track: {deleted_by: "
		"{action: data.delete}}}\n"
		"escalations:\n"
		"  - {id: overdue, when: {rule: ret, resource.id: {glob: \"blob*\"}},"
		" threshold: {count: 2, window: 1d}, level: warning}\n");
	struct policy_state *st = policy_state_new();
	struct obligation ob = {.op = OBL_OPEN, .rule = "ret", .tenant = "t",
				.resource_id = "blob1", .deadline = 1768471200LL * AUPD_USEC,
				.opened_by = "e", .effect = EFFECT_DENY, .severity = SEV_HIGH};
	struct escalation_hit *h;
	struct verdict v;
	size_t n;

	policy_overdue_verdict(rs, &ob, &v);
	n = policy_escalate(rs, st, NULL, &ob, &v, 10, ob.deadline, EVAL_REPLAY, &h);
	ck_assert_uint_eq(n, 0); /* replay feeds, never hits */
	free(h);
	ob.resource_id = "blob2";
	n = policy_escalate(rs, st, NULL, &ob, &v, 11, ob.deadline + 1, 0, &h);
	n = crossed_only(h, n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].count, 2);
	ck_assert_int_eq(h[0].seqs[0], 10);
	ck_assert_int_eq(h[0].seqs[1], 11);
	ck_assert_str_eq(h[0].group_key, "t");
	hits_free(h, n);
	ob.resource_id = "other";
	n = crossed_only(h, policy_escalate(rs, st, NULL, &ob, &v, 12, ob.deadline + 2, 0, &h));
	ck_assert_uint_eq(n, 0);
	free(h);
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(windows_survive_reload)
{
	const char *a = "rules:\n  - {id: r}\n"
			"escalations:\n  - {id: e, threshold: {count: 3, window: 1h}, level: notice}\n"
			"  - {id: gone, threshold: {count: 1, window: 1h}, level: notice}\n";
	const char *b = "rules:\n  - {id: r2}\n"
			"escalations:\n  - {id: e, threshold: {count: 3, window: 1h}, level: critical}\n";
	struct ruleset *ra = pt_load(a), *rb = pt_load(b);
	struct policy_state *st = policy_state_new();
	struct escalation_hit *h;
	size_t n;

	n = feed(ra, st, at("1", "t", "2026-01-15T10:00:00Z", "x"), 1, 0, &h);
	hits_free(h, n);
	n = feed(ra, st, at("2", "t", "2026-01-15T10:01:00Z", "x"), 2, 0, &h);
	hits_free(h, n);
	policy_state_retain(st, rb);
	n = feed(rb, st, at("3", "t", "2026-01-15T10:02:00Z", "x"), 3, 0, &h);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].count, 3);
	ck_assert_int_eq(h[0].level, LEVEL_CRITICAL);
	hits_free(h, n);
	policy_state_free(st);
	ruleset_unref(ra);
	ruleset_unref(rb);
}
END_TEST

static Suite *
escalate_suite(void)
{
	Suite *s = suite_create("escalate");
	TCase *tc = tcase_create("escalate");

	tcase_add_test(tc, threshold_at_window_edge);
	tcase_add_test(tc, groups);
	tcase_add_test(tc, four_rule_fields);
	tcase_add_test(tc, overdue_records_and_replay);
	tcase_add_test(tc, windows_survive_reload);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(escalate_suite());
}
