/* test_eval.c - judging events: rule kinds, verdicts, exemptions, messages, obligations, state */
#include "policytest.h"

#include <math.h>

#define T0 "2026-01-15T10:00:00Z"

START_TEST(effects_combine)
{
	struct ruleset *rs = pt_load("rules:\n"
				     "  - {id: f, effect: flag, when: {actor: a1}}\n"
				     "  - {id: d, effect: deny, when: {actor: a1, purpose: p}}\n"
				     "  - {id: al, effect: allow, when: {actor: a2}}\n"
				     "  - {id: sh, effect: deny, mode: shadow, when: {actor: a3}}\n");
	struct policy_state *st = policy_state_new();
	struct event ev;
	struct verdict v;

	ck_assert_int_eq(pt_eval(rs, st, pt_ev("1", T0, ""), &v), EFFECT_FLAG);
	ck_assert_uint_eq(v.n_matched, 1);
	verdict_clear(&v);
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("2", T0, "\"purpose\":\"p\""), &v), EFFECT_DENY);
	/* matched in ruleset order */
	ck_assert_uint_eq(v.n_matched, 2);
	ck_assert_str_eq(v.matched[0].rule, "f");
	ck_assert_str_eq(v.matched[1].rule, "d");
	verdict_clear(&v);

	/* an enforcing allow rule that fired wins over default_effect */
	pt_event(&ev, pt_ev("3", T0, "\"actor\":\"a2\""));
	policy_eval(rs, st, &ev, EFFECT_DENY, 0, &v);
	ck_assert_int_eq(v.verdict, EFFECT_ALLOW);
	verdict_clear(&v);
	event_clear(&ev);
	/* nothing fired: default_effect */
	pt_event(&ev, pt_ev("4", T0, "\"actor\":\"zz\""));
	policy_eval(rs, st, &ev, EFFECT_FLAG, 0, &v);
	ck_assert_int_eq(v.verdict, EFFECT_FLAG);
	ck_assert_uint_eq(v.n_matched, 0);
	ck_assert_ptr_null(v.matched);
	verdict_clear(&v);
	event_clear(&ev);
	/* a shadow rule is listed and changes nothing */
	pt_event(&ev, pt_ev("5", T0, "\"actor\":\"a3\""));
	policy_eval(rs, st, &ev, EFFECT_FLAG, 0, &v);
	ck_assert_int_eq(v.verdict, EFFECT_FLAG);
	ck_assert_uint_eq(v.n_matched, 1);
	ck_assert(v.matched[0].shadow);
	ck_assert_ptr_null(v.matched[0].exempted);
	verdict_clear(&v);
	event_clear(&ev);

	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(exemptions)
{
	struct ruleset *rs =
		pt_load("rules:\n"
			"  - {id: r, when: {action: data.read}}\n"
			"  - {id: other, effect: flag, when: {action: data.read}}\n"
			"exemptions:\n"
			"  - {id: x-expired, rules: [r], expires: 2026-01-01T00:00:00Z}\n"
			"  - {id: x-case, rules: [r], when: {attributes.case: C1},\n"
			"     expires: 2026-02-01T00:00:00Z}\n"
			"  - {id: x-any, rules: [r, other], when: {attributes.case: {exists: true}}}\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;

	/* no case: nothing covers r */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("1", T0, ""), &v), EFFECT_DENY);
	ck_assert_ptr_null(pt_match(&v, "r")->exempted);
	verdict_clear(&v);
	/* case C1 before its expiry: the first covering exemption in order is named */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("2", T0, "\"attributes\":{\"case\":\"C1\"}"), &v),
			 EFFECT_ALLOW);
	ck_assert_str_eq(pt_match(&v, "r")->exempted, "x-case");
	ck_assert_str_eq(pt_match(&v, "other")->exempted, "x-any");
	verdict_clear(&v);
	/* at the expiry itself x-case no longer covers; x-any (no end) still does */
	ck_assert_int_eq(pt_eval(rs, st,
				 pt_ev("3", "2026-02-01T00:00:00Z", "\"attributes\":{\"case\":\"C1\"}"),
				 &v),
			 EFFECT_ALLOW);
	ck_assert_str_eq(pt_match(&v, "r")->exempted, "x-any");
	verdict_clear(&v);
	/* before its expiry, x-expired (no when) covers every event; "other" still flags */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("4", "2025-12-31T23:59:59Z", ""), &v), EFFECT_FLAG);
	ck_assert_str_eq(pt_match(&v, "r")->exempted, "x-expired");
	ck_assert_ptr_null(pt_match(&v, "other")->exempted);
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(exempted_events_still_count)
{
	struct ruleset *rs = pt_load("rules:\n"
				     "  - id: cap\n"
				     "    limit: {window: 1h, max: 2}\n"
				     "exemptions:\n"
				     "  - {id: x, rules: [cap], when: {actor: vip}}\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;

	ck_assert_int_eq(pt_eval(rs, st, pt_ev("1", T0, "\"actor\":\"vip\""), &v), EFFECT_ALLOW);
	verdict_clear(&v);
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("2", T0, "\"actor\":\"vip\""), &v), EFFECT_ALLOW);
	verdict_clear(&v);
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("3", T0, "\"actor\":\"vip\""), &v), EFFECT_ALLOW);
	ck_assert_str_eq(pt_match(&v, "cap")->exempted, "x");
	verdict_clear(&v);
	/* the tenant's window holds the three exempted events: this is the fourth */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("4", T0, ""), &v), EFFECT_DENY);
	ck_assert_str_eq(pt_match(&v, "cap")->message, "t1: 4 in 1h, over 2");
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(limits)
{
	struct ruleset *rs = pt_load(
		"rules:\n"
		"  - id: q\n"
		"    limit: {sum: quantity, window: 1h, max: 1.5e15}\n"
		"    message: \"{tenant} {limit.total}/{limit.max} in {limit.window}\"\n"
		"  - id: by2\n"
		"    effect: flag\n"
		"    limit: {by: [tenant, attributes.region], window: 1h, max: 1}\n"
		"  - id: hours\n"
		"    effect: flag\n"
		"    limit: {sum: attributes.hours, by: [], window: 1h, max: 10}\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;

	ck_assert_int_eq(pt_eval(rs, st, pt_ev("1", T0, "\"quantity\":1e15"), &v), EFFECT_ALLOW);
	verdict_clear(&v);
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("2", T0, "\"quantity\":1e15"), &v), EFFECT_DENY);
	ck_assert_str_eq(pt_match(&v, "q")->message, "t1 2000000000000000/1500000000000000 in 1h");
	/* by2: the first event without a region groups under the empty value */
	ck_assert_ptr_nonnull(pt_match(&v, "by2"));
	verdict_clear(&v);
	/* a region has its own group */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("3", T0, "\"quantity\":0,"
						       "\"attributes\":{\"region\":\"eu\"}"),
				 &v),
			 EFFECT_DENY); /* q: 2e15 still in the window */
	ck_assert_ptr_null(pt_match(&v, "by2"));
	verdict_clear(&v);
	/* another tenant, same region: its own group */
	ck_assert_int_eq(pt_eval(rs, st, pt_ev("4", T0, "\"tenant\":\"t2\","
						       "\"attributes\":{\"region\":\"eu\"}"),
				 &v),
			 EFFECT_ALLOW);
	verdict_clear(&v);
	/* hours: a missing field adds 0; strings that read as numbers count */
	ck_assert(!pt_fires(rs, st, pt_ev("5", T0, "\"attributes\":{\"hours\":6}"), "hours"));
	ck_assert(!pt_fires(rs, st, pt_ev("6", T0, "\"attributes\":{\"hours\":\"4\"}"), "hours"));
	ck_assert(!pt_fires(rs, st, pt_ev("7", T0, "\"attributes\":{\"hours\":\"x\"}"), "hours"));
	ck_assert(pt_fires(rs, st, pt_ev("8", T0, "\"attributes\":{\"hours\":0.5}"), "hours"));
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(limit_window_edge_via_eval)
{
	struct ruleset *rs = pt_load("rules:\n  - id: c\n    limit: {window: 24h, max: 1}\n");
	struct policy_state *st = policy_state_new();

	ck_assert(!pt_fires(rs, st, pt_ev("1", "2026-01-15T10:00:00Z", ""), "c"));
	/* exactly 24h later the first event is outside */
	ck_assert(!pt_fires(rs, st, pt_ev("2", "2026-01-16T10:00:00Z", ""), "c"));
	/* a late event 1us after the first sees it and itself */
	ck_assert(pt_fires(rs, st, pt_ev("3", "2026-01-15T10:00:00.000001Z", ""), "c"));
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/*
 * A retention rule's generated message names the resource id.  It must not
 * take the per-event slot of another resource field: here the reuse rule
 * after it must still read collected_for, and the message the id.
 */
START_TEST(retention_message_keeps_resource_fields_apart)
{
	struct ruleset *rs = pt_load("rules:\n"
				     "  - id: old\n"
				     "    retention: {age_of: resource.created, max: 1d}\n"
				     "  - id: purpose-bound\n"
				     "    reuse: {allowed: {visa-processing: [visa-processing]}}\n");
	struct policy_state *st = policy_state_new();
	const struct match *m;
	struct verdict v;

	pt_eval(rs, st,
		pt_ev("1", T0, "\"purpose\":\"visa-processing\",\"resource\":{\"id\":\"r-77\","
			       "\"created\":\"2020-01-01T00:00:00Z\","
			       "\"collected_for\":\"visa-processing\"}"),
		&v);
	ck_assert_ptr_nonnull(m = pt_match(&v, "old"));
	ck_assert_msg(strncmp(m->message, "r-77 is older than", 18) == 0, "%s", m->message);
	ck_assert_ptr_null(pt_match(&v, "purpose-bound"));
	ck_assert_uint_eq(v.n_matched, 1);
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/* The same verdict, matches (with messages and exemptions) and obligations. */
static void
same_verdict(const struct verdict *a, const struct verdict *b, const char *what)
{
	ck_assert_msg(a->verdict == b->verdict, "%s: verdict", what);
	ck_assert_msg(a->n_matched == b->n_matched, "%s: %zu against %zu matches", what,
		      a->n_matched, b->n_matched);
	for (size_t k = 0; k < a->n_matched; k++) {
		ck_assert_str_eq(a->matched[k].rule, b->matched[k].rule);
		ck_assert_str_eq(a->matched[k].message, b->matched[k].message);
		ck_assert(!a->matched[k].exempted == !b->matched[k].exempted);
	}
	ck_assert_msg(a->n_obligations == b->n_obligations, "%s: obligations", what);
	for (size_t k = 0; k < a->n_obligations; k++) {
		ck_assert_int_eq(a->obligations[k].op, b->obligations[k].op);
		ck_assert_str_eq(a->obligations[k].rule, b->obligations[k].rule);
		ck_assert_str_eq(a->obligations[k].resource_id, b->obligations[k].resource_id);
		ck_assert_int_eq(a->obligations[k].deadline, b->obligations[k].deadline);
	}
}

/*
 * The per-event cache of resource fields changes no verdict, match, message
 * or obligation: the same random events judged through it and around it
 * (EVAL_UNCACHED), by rules of every kind that read resource fields, with
 * generated messages and templates, datasets that supply fields or not.
 */
START_TEST(resource_cache_changes_nothing)
{
	static const char *fields[] = {"id", "created", "dataset", "classification",
				       "collected_for"};
	static const char *values[][4] = {
		{"r-1", "r-2", "r-3", "r-4"},
		{"2020-01-01T00:00:00Z", "2026-01-15T09:00:00Z", "2026-01-01T00:00:00Z",
		 "2025-12-01T00:00:00Z"},
		{"visa", "cctv", "plain", "unknown"},
		{"biometric", "video", "personal", "public"},
		{"visa-processing", "public-safety", "analytics", "border"},
	};
	static const char *actions[] = {"data.read", "data.delete", "face.search"};
	struct ruleset *rs = pt_load(
		"datasets:\n"
		"  visa: {classification: biometric, collected_for: visa-processing, "
		"created: \"2025-06-01T00:00:00Z\"}\n"
		"  cctv: {classification: video, collected_for: public-safety}\n"
		"  plain: {owner: nobody}\n"
		"rules:\n"
		"  - id: ret-generated\n"
		"    when: {resource.classification: biometric}\n"
		"    retention: {age_of: resource.created, max: 30d, "
		"track: {deleted_by: {action: data.delete}}}\n"
		"  - id: ret-untracked\n"
		"    retention: {age_of: resource.created, max: 300d}\n"
		"  - id: by-dataset\n"
		"    effect: flag\n"
		"    limit: {by: [resource.dataset], window: 1h, max: 3}\n"
		"  - id: by-class\n"
		"    effect: flag\n"
		"    when: {resource.collected_for: {exists: true}}\n"
		"    limit: {by: [tenant, resource.classification], window: 1h, max: 2}\n"
		"  - id: templated\n"
		"    effect: flag\n"
		"    when: {any: [{resource.id: r-2}, {resource.classification: video}]}\n"
		"    message: \"{resource.id}/{resource.collected_for}/{resource.classification}/"
		"{resource.dataset}/{resource.created}\"\n"
		"  - id: purpose-bound\n"
		"    reuse: {allowed: {visa-processing: [visa-processing], public-safety: "
		"[public-safety, analytics]}}\n"
		"  - id: purpose-unknown-ok\n"
		"    effect: flag\n"
		"    reuse: {allowed: {border: [border]}, unknown: allow}\n");
	struct policy_state *a = policy_state_new(), *b = policy_state_new();
	unsigned seed = 11;

	for (int i = 0; i < 3000; i++) {
		char json[1024], res[700] = "";
		size_t n = 0;
		struct verdict va, vb;
		struct event ev;

		for (size_t f = 0; f < AUPD_ARRAY_LEN(fields); f++) {
			if (rand_r(&seed) % 3 == 0)
				continue;
			n += (size_t)snprintf(res + n, sizeof(res) - n, "%s\"%s\":\"%s\"",
					      n ? "," : "", fields[f], values[f][rand_r(&seed) % 4]);
		}
		snprintf(json, sizeof(json),
			 "{\"id\":\"%d\",\"time\":\"2026-01-15T10:%02d:%02dZ\",\"tenant\":\"t%u\","
			 "\"actor\":\"a\",\"action\":\"%s\",\"purpose\":\"%s\",\"resource\":{%s}}",
			 i, i / 60 % 60, i % 60, rand_r(&seed) % 3, actions[rand_r(&seed) % 3],
			 values[4][rand_r(&seed) % 4], res);
		pt_event(&ev, json);
		policy_eval(rs, a, &ev, EFFECT_ALLOW, 0, &va);
		policy_eval(rs, b, &ev, EFFECT_ALLOW, EVAL_UNCACHED, &vb);
		same_verdict(&va, &vb, json);
		verdict_clear(&va);
		verdict_clear(&vb);
		event_clear(&ev);
	}
	policy_state_free(a);
	policy_state_free(b);
	ruleset_unref(rs);
}
END_TEST

/*
 * The action index and its folded conditions change nothing: random events
 * judged by the sample rules through the index and around it
 * (EVAL_UNINDEXED, every rule on its own `when`) give the same verdicts.
 */
START_TEST(sample_rules_index_changes_nothing)
{
	static const char *const actions[] = {
		"face.search", "face.match", "face.verify", "face.enroll", "data.read",
		"data.export", "data.bulk-read", "data.delete", "data.purge", "video.index",
		"storage.write", "other.thing"};
	static const char *const datasets[] = {"visa-photos", "border-crossings",
					       "benefits-claims", "cctv-archive", "no-such"};
	static const char *const purposes[] = {"visa-processing", "fraud-review",
					       "public-safety", "benefits-administration",
					       "analytics"};
	static const char *const classes[] = {"biometric", "video", "personal", "public"};
	const char *paths[1];
	struct diag_list dl = {0};
	struct policy_state *a = policy_state_new(), *b = policy_state_new();
	struct ruleset *rs;
	char dir[4096];
	unsigned seed = 5;
	long fired = 0;

	ck_assert_ptr_nonnull(getenv("AUPD_SOURCE_DIR"));
	snprintf(dir, sizeof(dir), "%s/rules", getenv("AUPD_SOURCE_DIR"));
	paths[0] = dir;
	rs = ruleset_load(paths, 1, NULL, &dl);
	ck_assert_ptr_nonnull(rs);
	for (int i = 0; i < 4000; i++) {
		char json[1024], res[400] = "", what[32];
		struct verdict va, vb;
		struct event ev;
		size_t n = 0;

		if (rand_r(&seed) % 4)
			n += (size_t)snprintf(res + n, sizeof(res) - n, "\"id\":\"r-%u\"",
					      rand_r(&seed) % 50);
		if (rand_r(&seed) % 2)
			n += (size_t)snprintf(res + n, sizeof(res) - n, "%s\"dataset\":\"%s\"",
					      n ? "," : "", datasets[rand_r(&seed) % 5]);
		if (rand_r(&seed) % 3 == 0)
			n += (size_t)snprintf(res + n, sizeof(res) - n,
					      "%s\"classification\":\"%s\"", n ? "," : "",
					      classes[rand_r(&seed) % 4]);
		if (rand_r(&seed) % 2)
			n += (size_t)snprintf(res + n, sizeof(res) - n,
					      "%s\"created\":\"2025-%02u-10T00:00:00Z\"", n ? "," : "",
					      1 + rand_r(&seed) % 12);
		snprintf(json, sizeof(json),
			 "{\"id\":\"%d\",\"time\":\"2026-01-%02dT%02d:%02d:00Z\",\"tenant\":\"t%u\","
			 "\"actor\":\"a%u\",\"action\":\"%s\",\"purpose\":\"%s\",\"quantity\":%u,"
			 "\"resource\":{%s},\"attributes\":{%s\"video_hours\":%u}}",
			 i, 10 + i / 1440, i / 60 % 24, i % 60, rand_r(&seed) % 3,
			 rand_r(&seed) % 4, actions[rand_r(&seed) % 12], purposes[rand_r(&seed) % 5],
			 1 + rand_r(&seed) % 120, res, rand_r(&seed) % 2 ? "\"case\":\"C-1\"," : "",
			 rand_r(&seed) % 30);
		pt_event(&ev, json);
		policy_eval(rs, a, &ev, EFFECT_ALLOW, 0, &va);
		policy_eval(rs, b, &ev, EFFECT_ALLOW, EVAL_UNINDEXED, &vb);
		snprintf(what, sizeof(what), "event %d", i);
		same_verdict(&va, &vb, what);
		fired += (long)va.n_matched;
		verdict_clear(&va);
		verdict_clear(&vb);
		event_clear(&ev);
	}
	ck_assert_msg(fired > 400, "only %ld rules fired: the events miss the rules", fired);
	policy_state_free(a);
	policy_state_free(b);
	ruleset_unref(rs);
}
END_TEST

START_TEST(reuse)
{
	struct ruleset *rs = pt_load("lists:\n  visa_ok: [visa-processing, fraud-review]\n"
				     "rules:\n"
				     "  - id: deny-unknown\n"
				     "    reuse:\n"
				     "      allowed: {visa-processing: $visa_ok, border: [border], "
				     "empty: []}\n"
				     "  - id: allow-unknown\n"
				     "    effect: flag\n"
				     "    reuse: {allowed: {visa-processing: [visa-processing]}, "
				     "unknown: allow}\n");
	struct policy_state *st = policy_state_new();
	const char *cf_visa = "\"resource\":{\"collected_for\":\"visa-processing\"}";
	char buf[512];

	snprintf(buf, sizeof(buf), "%s,\"purpose\":\"fraud-review\"", cf_visa);
	ck_assert(!pt_fires(rs, st, pt_ev("1", T0, buf), "deny-unknown"));
	ck_assert(pt_fires(rs, st, pt_ev("1", T0, buf), "allow-unknown"));
	snprintf(buf, sizeof(buf), "%s,\"purpose\":\"case-investigation\"", cf_visa);
	ck_assert(pt_fires(rs, st, pt_ev("2", T0, buf), "deny-unknown"));
	/* the collection purpose itself must be listed */
	ck_assert(pt_fires(rs, st,
			   pt_ev("3", T0, "\"resource\":{\"collected_for\":\"empty\"},"
					  "\"purpose\":\"empty\""),
			   "deny-unknown"));
	ck_assert(!pt_fires(rs, st,
			    pt_ev("3", T0, "\"resource\":{\"collected_for\":\"border\"},"
					   "\"purpose\":\"border\""),
			    "deny-unknown"));
	/* a collected_for that is not a key allows nothing */
	ck_assert(pt_fires(rs, st,
			   pt_ev("4", T0, "\"resource\":{\"collected_for\":\"tax\"},"
					  "\"purpose\":\"visa-processing\""),
			   "deny-unknown"));
	/* missing purpose or collected_for: unknown decides */
	ck_assert(pt_fires(rs, st, pt_ev("5", T0, cf_visa), "deny-unknown"));
	ck_assert(!pt_fires(rs, st, pt_ev("5", T0, cf_visa), "allow-unknown"));
	ck_assert(pt_fires(rs, st, pt_ev("6", T0, "\"purpose\":\"x\""), "deny-unknown"));
	ck_assert(!pt_fires(rs, st, pt_ev("6", T0, "\"purpose\":\"x\""), "allow-unknown"));
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(messages)
{
	struct ruleset *rs = pt_load(
		"datasets:\n  visa: {collected_for: visa-processing}\n"
		"rules:\n"
		"  - id: m1\n"
		"    when: {action: data.read}\n"
		"    message: \"{tenant}/{actor} {attributes.case} [{purpose}] {{literal}} "
		"{resource.collected_for} {quantity} {time.weekday} {rule}\"\n"
		"  - {id: m2, description: Described, when: {action: data.read}}\n"
		"  - {id: m3, when: {action: data.read}}\n"
		"  - id: m4\n"
		"    reuse: {allowed: {}}\n"
		"  - id: m5\n"
		"    when: {action: data.read}\n"
		"    message: \"{attributes.n}|{attributes.z}|{attributes.big}|{attributes.f}\"\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;

	pt_eval(rs, st,
		pt_ev("1", T0, "\"tenant\":\"агентство\",\"attributes\":{\"case\":\"C-1\","
			       "\"n\":-3,\"z\":0,\"big\":1e20,\"f\":-0.25},"
			       "\"resource\":{\"dataset\":\"visa\"},\"quantity\":2.5"),
		&v);
	ck_assert_str_eq(pt_match(&v, "m1")->message,
			 "агентство/a1 C-1 [] {literal} visa-processing 2.5 thu m1");
	ck_assert_str_eq(pt_match(&v, "m2")->message, "Described");
	ck_assert_str_eq(pt_match(&v, "m3")->message, "rule m3 matched");
	ck_assert_str_eq(pt_match(&v, "m4")->message,
			 "visa-processing data used without a declared purpose");
	ck_assert_str_eq(pt_match(&v, "m5")->message, "-3|0|1e+20|-0.25");
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(action_index)
{
	struct ruleset *rs = pt_load("rules:\n"
				     "  - {id: a, when: {action: face.search}}\n"
				     "  - {id: b, when: {action: {in: [face.search, face.match]}}}\n"
				     "  - {id: c, when: {any: [{action: face.match}, {action: x.y}]}}\n"
				     "  - {id: d, when: {action: {glob: \"face.*\"}}}\n"
				     "  - {id: e, when: {tenant: t1}}\n"
				     "  - {id: f, when: {all: [{tenant: t1}, {action: face.match}]}}\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;

	pt_eval(rs, st, pt_ev("1", T0, "\"action\":\"face.match\""), &v);
	ck_assert_uint_eq(v.n_matched, 5);
	ck_assert_str_eq(v.matched[0].rule, "b");
	ck_assert_str_eq(v.matched[1].rule, "c");
	ck_assert_str_eq(v.matched[2].rule, "d");
	ck_assert_str_eq(v.matched[3].rule, "e");
	ck_assert_str_eq(v.matched[4].rule, "f");
	verdict_clear(&v);
	pt_eval(rs, st, pt_ev("2", T0, "\"action\":\"face.search\""), &v);
	ck_assert_uint_eq(v.n_matched, 4); /* a b d e */
	verdict_clear(&v);
	pt_eval(rs, st, pt_ev("3", T0, "\"action\":\"other.thing\""), &v);
	ck_assert_uint_eq(v.n_matched, 1); /* e */
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

static const char *retention_rules =
	"rules:\n"
	"  - id: ret\n"
	"    severity: high\n"
	"    when: {resource.classification: biometric}\n"
	"    retention:\n"
	"      age_of: resource.created\n"
	"      max: 10d\n"
	"      track: {deleted_by: {action: data.delete}}\n"
	"  - id: ret-shadow\n"
	"    mode: shadow\n"
	"    effect: flag\n"
	"    when: {resource.classification: video}\n"
	"    retention: {age_of: attributes.recorded, max: 1d, track: {deleted_by: "
	"{action: data.delete}}}\n";

static const char *
bio(const char *id, const char *time, const char *tenant, const char *rid, const char *created,
    const char *action)
{
	static char bufs[4][1024];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]),
		 "{\"id\":\"%s\",\"time\":\"%s\",\"tenant\":\"%s\",\"actor\":\"a\",\"action\":\"%s\","
		 "\"resource\":{\"classification\":\"biometric\",\"id\":\"%s\"%s%s%s}}",
		 id, time, tenant, action, rid, created ? ",\"created\":\"" : "",
		 created ? created : "", created ? "\"" : "");
	return b;
}

/*
 * The index decides tests of the action ahead of time, for each action a
 * rule names and for every other one: each form of test, alone and nested,
 * gives what evaluating it on the event gives.
 */
START_TEST(action_tests_decided_ahead)
{
	struct ruleset *rs = pt_load(
		"rules:\n"
		"  - {id: ne, when: {action: {ne: data.delete}}}\n"
		"  - {id: not-in, when: {action: {not_in: [data.delete, data.purge]}}}\n"
		"  - {id: not, when: {not: {action: {in: [face.search, face.match]}}}}\n"
		"  - {id: any, when: {any: [{action: face.match}, {tenant: t2}]}}\n"
		"  - {id: all, when: {all: [{action: {ne: face.match}}, {tenant: t1}]}}\n"
		"  - {id: glob, when: {all: [{action: {glob: \"data.*\"}}, {action: {ne: data.purge}}]}}\n"
		"  - {id: never, when: {all: [{action: face.match}, {action: face.search}]}}\n"
		"  - {id: lim, when: {action: {ne: face.match}}, limit: {window: 1h, max: 1}}\n");
	struct policy_state *st = policy_state_new();
	static const struct {
		const char *action, *tenant;
		const char *fired; /* rule ids, in order, joined by ' ' */
	} cases[] = {
		{"data.read", "t1", "ne not-in not all glob"},
		{"data.delete", "t1", "not all glob lim"},
		{"data.purge", "t1", "ne not all lim"},
		{"face.match", "t1", "ne not-in any"},
		{"face.search", "t1", "ne not-in all lim"},
		{"face.search", "t2", "ne not-in any"},
		{"other.thing", "t2", "ne not-in not any lim"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char ev[512], got[256] = "";
		struct verdict v;

		snprintf(ev, sizeof(ev),
			 "{\"id\":\"e%zu\",\"time\":\"2026-01-15T10:00:%02zuZ\",\"tenant\":\"%s\","
			 "\"actor\":\"a\",\"action\":\"%s\"}",
			 i, i, cases[i].tenant, cases[i].action);
		pt_eval(rs, st, ev, &v);
		for (size_t k = 0; k < v.n_matched; k++) {
			if (k)
				strcat(got, " ");
			strcat(got, v.matched[k].rule);
		}
		ck_assert_msg(!strcmp(got, cases[i].fired), "%s/%s: fired '%s', expected '%s'",
			      cases[i].action, cases[i].tenant, got, cases[i].fired);
		verdict_clear(&v);
	}
	/* lim's window took every event but face.match's */
	ck_assert_uint_eq(policy_state_window_entries(st, NULL), 6);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/* Judges `event`: no rule fires, no obligation opens, the verdict is allow. */
static void
expect_nothing(struct ruleset *rs, struct policy_state *st, const char *event)
{
	struct verdict v;

	pt_eval(rs, st, event, &v);
	ck_assert_msg(v.n_matched == 0, "%s: %zu rules fired", event, v.n_matched);
	ck_assert_msg(v.n_obligations == 0, "%s: %zu obligations", event, v.n_obligations);
	ck_assert_int_eq(v.verdict, EFFECT_ALLOW);
	verdict_clear(&v);
}

START_TEST(retention_fires_after_max)
{
	struct ruleset *rs = pt_load(retention_rules);
	struct policy_state *st = policy_state_new();
	struct verdict v;
	struct event ev;

	/* exactly max old: not more than max */
	pt_event(&ev, bio("1", "2026-01-11T00:00:00Z", "t", "r1", "2026-01-01T00:00:00Z", "data.read"));
	policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, &v);
	ck_assert_ptr_null(pt_match(&v, "ret"));
	ck_assert_uint_eq(v.n_obligations, 1);
	ck_assert_int_eq(v.obligations[0].op, OBL_OPEN);
	ck_assert_str_eq(v.obligations[0].rule, "ret");
	ck_assert_str_eq(v.obligations[0].resource_id, "r1");
	ck_assert_str_eq(v.obligations[0].opened_by, "1");
	ck_assert_int_eq(v.obligations[0].severity, SEV_HIGH);
	/* an opened obligation borrows the event's strings: nothing copied per event */
	ck_assert(!v.obligations[0].owned);
	ck_assert_ptr_eq(v.obligations[0].tenant, ev.tenant);
	ck_assert_ptr_eq(v.obligations[0].opened_by, ev.id);
	verdict_clear(&v); /* ASan: a borrowed string is not freed here... */
	ck_assert_str_eq(ev.tenant, "t");
	event_clear(&ev); /* ...but with its event */
	pt_eval(rs, st,
		bio("2", "2026-01-11T00:00:00.000001Z", "t", "r1", "2026-01-01T00:00:00Z", "data.read"),
		&v);
	ck_assert_int_eq(v.verdict, EFFECT_DENY);
	ck_assert_ptr_nonnull(pt_match(&v, "ret"));
	ck_assert_uint_eq(v.n_obligations, 0); /* already open */
	verdict_clear(&v);
	/* no created: no firing, no obligation */
	expect_nothing(rs, st, bio("3", "2027-01-01T00:00:00Z", "t", "r2", NULL, "data.read"));
	/* an unparseable attribute time: the same */
	expect_nothing(rs, st,
		       "{\"id\":\"4\",\"time\":\"2027-01-01T00:00:00Z\",\"tenant\":\"t\","
		       "\"actor\":\"a\",\"action\":\"data.read\",\"resource\":{\"classification\":"
		       "\"video\",\"id\":\"v\"},\"attributes\":{\"recorded\":\"last week\"}}");
	/* old, but no resource.id: a tracked rule does not fire either (contract section 7) */
	expect_nothing(rs, st,
		       "{\"id\":\"5\",\"time\":\"2027-01-01T00:00:00Z\",\"tenant\":\"t\","
		       "\"actor\":\"a\",\"action\":\"data.read\",\"resource\":{\"classification\":"
		       "\"biometric\",\"created\":\"2026-01-01T00:00:00Z\"}}");
	ck_assert_uint_eq(policy_obligation_count(st), 1);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(retention_obligations)
{
	struct ruleset *rs = pt_load(retention_rules);
	struct policy_state *st = policy_state_new();
	struct obligation *due;
	struct verdict v;
	struct strbuf sb;
	size_t n;

	/* three resources: deadlines Jan 11, Jan 12, Jan 13 (opened out of order), at seqs 3, 1, 2 */
	policy_next_seq(st, 3);
	pt_eval(rs, st, bio("o3", "2026-01-05T00:00:00Z", "t", "r3", "2026-01-03T00:00:00Z", "data.read"),
		&v);
	ck_assert_int_eq(v.obligations[0].opened_seq, 3);
	verdict_clear(&v);
	policy_next_seq(st, 1);
	pt_eval(rs, st, bio("o1", "2026-01-05T00:00:00Z", "t", "r1", "2026-01-01T00:00:00Z", "data.read"),
		&v);
	verdict_clear(&v);
	policy_next_seq(st, 2);
	pt_eval(rs, st, bio("o2", "2026-01-05T00:00:00Z", "t", "r2", "2026-01-02T00:00:00Z", "data.read"),
		&v);
	verdict_clear(&v);
	policy_next_seq(st, 4);
	/* same resource id in another tenant: its own obligation */
	pt_eval(rs, st, bio("o4", "2026-01-05T00:00:00Z", "u", "r2", "2026-01-02T00:00:00Z", "data.read"),
		&v);
	verdict_clear(&v);
	ck_assert_uint_eq(policy_obligation_count(st), 4);

	/* a deletion by another tenant does not discharge t's obligation */
	pt_eval(rs, st, bio("d0", "2026-01-06T00:00:00Z", "x", "r2", NULL, "data.delete"), &v);
	ck_assert_uint_eq(v.n_obligations, 0);
	verdict_clear(&v);
	/* deleting r2 in t discharges it, and the deletion itself never fires */
	pt_eval(rs, st, bio("d1", "2026-01-20T00:00:00Z", "t", "r2", "2026-01-02T00:00:00Z", "data.delete"),
		&v);
	ck_assert_uint_eq(v.n_matched, 0);
	ck_assert_uint_eq(v.n_obligations, 1);
	ck_assert_int_eq(v.obligations[0].op, OBL_DISCHARGE);
	ck_assert_str_eq(v.obligations[0].tenant, "t");
	ck_assert_str_eq(v.obligations[0].resource_id, "r2");
	ck_assert_str_eq(v.obligations[0].opened_by, "o2");
	ck_assert_int_eq(v.obligations[0].opened_seq, 2); /* its key in storage */
	verdict_clear(&v);
	ck_assert_uint_eq(policy_obligation_count(st), 3);

	/* nothing is due before the first deadline */
	ck_assert_uint_eq(policy_take_overdue(st, 1768089599999999LL, &due), 0); /* Jan 10 23:59:59.999999 */
	free(due);
	n = policy_take_overdue(st, 1768262400LL * AUPD_USEC, &due); /* Jan 13 00:00:00: <= now */
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(due[0].resource_id, "r1");
	ck_assert_str_eq(due[1].resource_id, "r2");
	ck_assert_str_eq(due[1].tenant, "u");
	ck_assert_str_eq(due[2].resource_id, "r3");
	ck_assert_int_eq(due[0].opened_seq, 1);
	ck_assert_int_eq(due[1].opened_seq, 4);
	ck_assert_int_eq(due[2].opened_seq, 3);
	ck_assert_int_le(due[0].deadline, due[1].deadline);

	policy_overdue_verdict(rs, &due[0], &v);
	ck_assert_int_eq(v.verdict, EFFECT_DENY);
	ck_assert_uint_eq(v.n_matched, 1);
	ck_assert_str_eq(v.matched[0].rule, "ret");
	ck_assert_str_eq(v.matched[0].message,
			 "r1 of tenant t was not deleted by 2026-01-11T00:00:00.000Z (rule ret)");
	sb_init(&sb);
	overdue_encode(&sb, &due[0], &v, 7, "sha256:x", due[0].deadline);
	ck_assert_str_eq(sb.buf,
			 "{\"kind\":\"retention-overdue\",\"tenant\":\"t\",\"resource\":{\"id\":\"r1\"},"
			 "\"rule\":\"ret\",\"deadline\":\"2026-01-11T00:00:00.000Z\","
			 "\"opened_by\":\"o1\",\"seq\":7,\"verdict\":\"deny\",\"matched\":[{\"rule\":"
			 "\"ret\",\"effect\":\"deny\",\"severity\":\"high\",\"shadow\":false,"
			 "\"message\":\"r1 of tenant t was not deleted by 2026-01-11T00:00:00.000Z "
			 "(rule ret)\"}],\"rules_version\":\"sha256:x\",\"decided_at\":"
			 "\"2026-01-11T00:00:00.000Z\"}");
	sb_free(&sb);
	verdict_clear(&v);
	for (size_t i = 0; i < n; i++)
		obligation_clear(&due[i]);
	free(due);
	ck_assert_uint_eq(policy_obligation_count(st), 0);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/*
 * One event opening several obligations (more than are deferred at once):
 * listed in rule order, and those already open left out, wherever they are.
 */
START_TEST(retention_opens_in_rule_order)
{
	struct strbuf y;
	struct ruleset *rs;
	struct policy_state *st = policy_state_new();
	struct verdict v;
	char act[16];

	sb_init(&y);
	sb_adds(&y, "rules:\n");
	for (int k = 1; k <= 6; k++) {
		sb_addf(&y,
			"  - id: ret%d\n"
			"    when: {resource.classification: biometric}\n"
			"    retention:\n"
			"      age_of: resource.created\n"
			"      max: 10d\n"
			"      track: {deleted_by: {action: del-%d}}\n",
			k, k);
	}
	rs = pt_load(y.buf);
	sb_free(&y);
	pt_eval(rs, st, bio("e1", "2026-01-05T00:00:00Z", "t", "r", "2026-01-01T00:00:00Z", "data.read"),
		&v);
	ck_assert_uint_eq(v.n_obligations, 6);
	for (int k = 1; k <= 6; k++) {
		char id[8];

		snprintf(id, sizeof(id), "ret%d", k);
		ck_assert_str_eq(v.obligations[k - 1].rule, id);
		ck_assert_int_eq(v.obligations[k - 1].op, OBL_OPEN);
	}
	verdict_clear(&v);
	ck_assert_uint_eq(policy_obligation_count(st), 6);
	/* the same resource again: everything is open already */
	expect_nothing(rs, st,
		       bio("e2", "2026-01-06T00:00:00Z", "t", "r", "2026-01-01T00:00:00Z", "data.read"));
	/* deletions discharge ret1, ret4 and ret6 */
	for (int k = 1; k <= 6; k += k == 1 ? 3 : 2) {
		snprintf(act, sizeof(act), "del-%d", k);
		pt_eval(rs, st, bio("d", "2026-01-07T00:00:00Z", "t", "r", NULL, act), &v);
		ck_assert_uint_eq(v.n_obligations, 1);
		ck_assert_int_eq(v.obligations[0].op, OBL_DISCHARGE);
		verdict_clear(&v);
	}
	ck_assert_uint_eq(policy_obligation_count(st), 3);
	/* opens ret1, ret4 and ret6 again, and leaves out the three between */
	pt_eval(rs, st, bio("e3", "2026-01-08T00:00:00Z", "t", "r", "2026-01-02T00:00:00Z", "data.read"),
		&v);
	ck_assert_uint_eq(v.n_obligations, 3);
	ck_assert_str_eq(v.obligations[0].rule, "ret1");
	ck_assert_str_eq(v.obligations[1].rule, "ret4");
	ck_assert_str_eq(v.obligations[2].rule, "ret6");
	verdict_clear(&v);
	ck_assert_uint_eq(policy_obligation_count(st), 6);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(retention_replay_and_restore)
{
	struct ruleset *rs = pt_load(retention_rules);
	struct policy_state *st = policy_state_new();
	struct obligation o = {.op = OBL_OPEN, .rule = "ret-shadow", .tenant = "t",
			       .resource_id = "cam-1", .deadline = 1000, .opened_by = "e9",
			       .effect = EFFECT_FLAG, .severity = SEV_LOW, .shadow = true};
	struct obligation *due;
	struct event ev;
	struct verdict v;

	pt_event(&ev, bio("1", "2026-01-05T00:00:00Z", "t", "r1", "2025-01-01T00:00:00Z", "data.read"));
	policy_eval(rs, st, &ev, EFFECT_ALLOW, EVAL_REPLAY, &v);
	/* replay judges but leaves obligations to storage */
	ck_assert_int_eq(v.verdict, EFFECT_DENY);
	ck_assert_uint_eq(v.n_obligations, 0);
	verdict_clear(&v);
	event_clear(&ev);
	ck_assert_uint_eq(policy_obligation_count(st), 0);

	policy_obligation_restore(st, &o);
	policy_obligation_restore(st, &o); /* twice is once */
	ck_assert_uint_eq(policy_obligation_count(st), 1);
	ck_assert_uint_eq(policy_take_overdue(st, 1000, &due), 1);
	ck_assert_str_eq(due[0].opened_by, "e9");
	policy_overdue_verdict(rs, &due[0], &v);
	/* a shadow rule's overdue record is kept, and allows */
	ck_assert_int_eq(v.verdict, EFFECT_ALLOW);
	ck_assert(v.matched[0].shadow);
	ck_assert_int_eq(v.matched[0].effect, EFFECT_FLAG);
	verdict_clear(&v);
	obligation_clear(&due[0]);
	free(due);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(state_survives_reload)
{
	struct ruleset *a = pt_load("rules:\n"
				    "  - {id: keep, limit: {window: 1h, max: 2}}\n"
				    "  - {id: rewindowed, limit: {window: 1h, max: 2}}\n"
				    "  - {id: dropped, limit: {window: 1h, max: 2}}\n");
	struct ruleset *b = pt_load("rules:\n"
				    "  - {id: new, limit: {window: 1h, max: 2}}\n"
				    "  - {id: keep, effect: flag, limit: {window: 1h, max: 2}}\n"
				    "  - {id: rewindowed, limit: {window: 2h, max: 2}}\n");
	struct policy_state *st = policy_state_new();
	struct verdict v;
	size_t bytes;

	for (int i = 0; i < 2; i++) {
		pt_eval(a, st, pt_ev("x", T0, ""), &v);
		ck_assert_uint_eq(v.n_matched, 0);
		verdict_clear(&v);
	}
	ck_assert_uint_eq(policy_state_window_entries(st, &bytes), 6);
	policy_state_retain(st, b);
	ck_assert_uint_eq(policy_state_window_entries(st, &bytes), 2);
	pt_eval(b, st, pt_ev("y", T0, ""), &v);
	/* keep has its two earlier events: the third fires; the others start empty */
	ck_assert_uint_eq(v.n_matched, 1);
	ck_assert_str_eq(v.matched[0].rule, "keep");
	ck_assert_int_eq(v.verdict, EFFECT_FLAG);
	verdict_clear(&v);
	/* back to the first ruleset without an explicit retain: bound on use */
	pt_eval(a, st, pt_ev("z", T0, ""), &v);
	ck_assert_uint_eq(v.n_matched, 1); /* keep: 4 */
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(a);
	ruleset_unref(b);
}
END_TEST

START_TEST(encoding)
{
	struct ruleset *rs = pt_load("rules:\n  - {id: r, effect: flag, message: \"q\\\"\\\\\\t\\u0001é\"}\n"
				     "exemptions:\n  - {id: x, rules: [r], when: {actor: vip}}\n");
	struct policy_state *st = policy_state_new();
	struct strbuf sb;
	struct event ev;
	struct verdict v;

	sb_init(&sb);
	pt_event(&ev, "{\"id\":\"e-1\",\"time\":\"2026-01-15T10:00:00.4129Z\",\"tenant\":\"агент\","
		      "\"actor\":\"vip\",\"action\":\"data.read\"}");
	policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, &v);
	verdict_encode(&sb, &ev, &v, 48211, "sha256:9f", ev.time, false);
	ck_assert_str_eq(sb.buf,
			 "{\"tenant\":\"агент\",\"id\":\"e-1\",\"seq\":48211,\"verdict\":\"allow\","
			 "\"matched\":[{\"rule\":\"r\",\"effect\":\"flag\",\"severity\":\"medium\","
			 "\"shadow\":false,\"message\":\"q\\\"\\\\\\t\\u0001é\",\"exempted\":\"x\"}],"
			 "\"rules_version\":\"sha256:9f\",\"decided_at\":\"2026-01-15T10:00:00.412Z\","
			 "\"duplicate\":false}");
	json_t *parsed = json_loads(sb.buf, 0, NULL);
	ck_assert_ptr_nonnull(parsed);
	json_decref(parsed);
	verdict_clear(&v);
	event_clear(&ev);

	sb_reset(&sb);
	json_quote(&sb, "a\x7f\n\x1f\xff\xc3(z");
	ck_assert_str_eq(sb.buf, "\"a\x7f\\n\\u001f\\ufffd\\ufffd(z\"");
	sb_free(&sb);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

/*
 * json_quote() skips 8 plain bytes at a time: every character that needs
 * escaping, or is not ASCII, must be caught at every offset within the word.
 * The quoted text must decode (jansson) to exactly the input.
 */
START_TEST(json_quote_round_trips_at_every_offset)
{
	static const char *const special[] = {"\x01", "\x1f", "\"", "\\", "\n", "\t", "\x7f",
					      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "~"};
	struct strbuf sb = {0};
	char in[64];

	for (size_t len = 0; len <= 24; len++)
		for (size_t pos = 0; pos <= len; pos++)
			for (size_t k = 0; k < AUPD_ARRAY_LEN(special); k++) {
				json_t *out;

				memset(in, 'a', len);
				in[len] = '\0';
				memmove(in + pos + strlen(special[k]), in + pos, len - pos + 1);
				memcpy(in + pos, special[k], strlen(special[k]));
				sb_reset(&sb);
				json_quote(&sb, in);
				out = json_loads(sb.buf, JSON_DECODE_ANY, NULL);
				ck_assert_msg(out && json_is_string(out), "len %zu pos %zu: %s", len, pos,
					      sb.buf);
				ck_assert_str_eq(json_string_value(out), in);
				if (special[k][0] == ' ' || special[k][0] == '~' || special[k][0] == '\x7f')
					ck_assert_uint_eq(sb.len, strlen(in) + 2); /* nothing escaped */
				json_decref(out);
			}
	sb_free(&sb);
}
END_TEST

/* One event with a wild client time must not make other tenants' groups look idle. */
START_TEST(sweep_ignores_one_wild_time)
{
	struct ruleset *rs = pt_load("rules:\n  - id: all\n    effect: flag\n"
				     "    limit: {window: 24h, max: 0}\n"
				     "    message: \"{limit.total}\"\n");
	struct policy_state *st = policy_state_new();
	char id[32], tm[40];
	struct verdict v;

	for (int i = 1; i <= 2000; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		time_format_us(1768471200LL * AUPD_USEC + (int64_t)i * AUPD_USEC, tm, sizeof(tm));
		if (i == 768) /* the third sample of the sweep (every 256 evaluations) */
			pt_eval(rs, st, "{\"id\":\"wild\",\"time\":\"2036-01-01T00:00:00Z\","
					"\"tenant\":\"b\",\"actor\":\"x\",\"action\":\"data.read\"}",
				&v);
		else
			pt_eval(rs, st, pt_ev(id, tm, ""), &v);
		verdict_clear(&v);
	}
	pt_eval(rs, st, pt_ev("last", "2026-01-15T11:00:00Z", ""), &v);
	/* tenant t1's 1999 events and this one: nothing was swept */
	ck_assert_str_eq(v.matched[0].message, "2000");
	verdict_clear(&v);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

static Suite *
eval_suite(void)
{
	Suite *s = suite_create("eval");
	TCase *tc = tcase_create("eval");

	tcase_add_test(tc, effects_combine);
	tcase_add_test(tc, exemptions);
	tcase_add_test(tc, exempted_events_still_count);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, limit_window_edge_via_eval);
	tcase_add_test(tc, reuse);
	tcase_add_test(tc, retention_message_keeps_resource_fields_apart);
	tcase_add_test(tc, resource_cache_changes_nothing);
	tcase_add_test(tc, sample_rules_index_changes_nothing);
	tcase_add_test(tc, messages);
	tcase_add_test(tc, action_index);
	tcase_add_test(tc, action_tests_decided_ahead);
	tcase_add_test(tc, retention_fires_after_max);
	tcase_add_test(tc, retention_obligations);
	tcase_add_test(tc, retention_opens_in_rule_order);
	tcase_add_test(tc, retention_replay_and_restore);
	tcase_add_test(tc, state_survives_reload);
	tcase_add_test(tc, encoding);
	tcase_add_test(tc, json_quote_round_trips_at_every_offset);
	tcase_add_test(tc, sweep_ignores_one_wild_time);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(eval_suite());
}
