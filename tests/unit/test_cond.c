/* test_cond.c - conditions: every operator, paths, lists, missing fields, datasets (policy/cond.c) */
#include "policytest.h"

#define T0 "2026-01-15T10:00:00Z" /* a Thursday */

/* Whether a rule `when: WHEN` (after the top-level PREFIX) fires for an event with EXTRA members. */
static bool
holds_in(const char *prefix, const char *when, const char *time, const char *extra)
{
	char yaml[8192];
	struct ruleset *rs;
	struct policy_state *st;
	bool fired;

	snprintf(yaml, sizeof(yaml), "%s\nrules:\n  - id: r\n    when: %s\n", prefix, when);
	rs = pt_load(yaml);
	st = policy_state_new();
	fired = pt_fires(rs, st, pt_ev("e1", time, extra), "r");
	policy_state_free(st);
	ruleset_unref(rs);
	return fired;
}

static bool
holds(const char *when, const char *extra)
{
	return holds_in("", when, T0, extra);
}

START_TEST(eq_strings)
{
	ck_assert(holds("{tenant: t1}", ""));
	ck_assert(!holds("{tenant: t2}", ""));
	ck_assert(holds("{tenant: {eq: t1}}", ""));
	ck_assert(holds("{action: data.read, actor: a1}", ""));
	ck_assert(!holds("{action: data.read, actor: a2}", ""));
	/* case matters */
	ck_assert(!holds("{tenant: T1}", ""));
	/* a missing field is never equal */
	ck_assert(!holds("{purpose: x}", ""));
	ck_assert(!holds("{resource.id: x}", ""));
	ck_assert(!holds("{attributes.case: x}", ""));
	ck_assert(holds("{purpose: case-work}", "\"purpose\":\"case-work\""));
	/* a number written in the rule still equals the string field */
	ck_assert(holds("{tenant: 42}", "\"tenant\":\"42\""));
}
END_TEST

START_TEST(eq_numbers_and_booleans)
{
	ck_assert(holds("{quantity: 5}", "\"quantity\":5"));
	ck_assert(holds("{quantity: 5}", "\"quantity\":5.0"));
	ck_assert(holds("{quantity: 5.5}", "\"quantity\":5.5"));
	ck_assert(!holds("{quantity: 5}", "\"quantity\":5.5"));
	/* quantity defaults to 1 */
	ck_assert(holds("{quantity: 1}", ""));
	ck_assert(holds("{attributes.n: 3}", "\"attributes\":{\"n\":3}"));
	ck_assert(holds("{attributes.n: 3}", "\"attributes\":{\"n\":3.0}"));
	ck_assert(!holds("{attributes.n: 3}", "\"attributes\":{\"n\":4}"));
	ck_assert(holds("{attributes.n: \"3\"}", "\"attributes\":{\"n\":3}"));
	ck_assert(holds("{attributes.hold: true}", "\"attributes\":{\"hold\":true}"));
	ck_assert(!holds("{attributes.hold: true}", "\"attributes\":{\"hold\":false}"));
	ck_assert(holds("{attributes.hold: false}", "\"attributes\":{\"hold\":false}"));
	/* null counts as missing */
	ck_assert(!holds("{attributes.hold: {exists: true}}", "\"attributes\":{\"hold\":null}"));
	ck_assert(holds("{attributes.hold: {ne: true}}", "\"attributes\":{\"hold\":null}"));
	/* nested attributes */
	ck_assert(holds("{attributes.a.b.c: deep}",
			"\"attributes\":{\"a\":{\"b\":{\"c\":\"deep\"}}}"));
	ck_assert(!holds("{attributes.a.b.c: deep}", "\"attributes\":{\"a\":{\"b\":\"deep\"}}"));
	/* an object or array equals nothing but exists */
	ck_assert(!holds("{attributes.a: x}", "\"attributes\":{\"a\":[\"x\"]}"));
	ck_assert(holds("{attributes.a: {exists: true}}", "\"attributes\":{\"a\":[\"x\"]}"));
}
END_TEST

START_TEST(ne_and_missing)
{
	ck_assert(!holds("{tenant: {ne: t1}}", ""));
	ck_assert(holds("{tenant: {ne: t2}}", ""));
	/* a missing field makes ne true */
	ck_assert(holds("{purpose: {ne: x}}", ""));
	ck_assert(holds("{attributes.case: {ne: x}}", ""));
	ck_assert(holds("{quantity: {ne: 2}}", "\"quantity\":3"));
}
END_TEST

START_TEST(in_and_not_in)
{
	const char *lists = "lists:\n  acts: [data.read, data.write]\n  none: []\n";

	ck_assert(holds("{action: {in: [data.write, data.read]}}", ""));
	ck_assert(!holds("{action: {in: [data.write]}}", ""));
	ck_assert(holds("{action: [data.write, data.read]}", ""));
	ck_assert(holds_in(lists, "{action: {in: $acts}}", T0, ""));
	ck_assert(holds_in(lists, "{action: $acts}", T0, ""));
	ck_assert(!holds_in(lists, "{action: {not_in: $acts}}", T0, ""));
	ck_assert(holds_in(lists, "{action: {not_in: $none}}", T0, ""));
	ck_assert(!holds_in(lists, "{action: {in: $none}}", T0, ""));
	ck_assert(!holds("{action: {in: []}}", ""));
	ck_assert(holds("{action: {not_in: []}}", ""));
	/* missing: in false, not_in true */
	ck_assert(!holds("{purpose: {in: [a, b]}}", ""));
	ck_assert(holds("{purpose: {not_in: [a, b]}}", ""));
	/* numbers in lists */
	ck_assert(holds("{quantity: {in: [1, 2, 3]}}", "\"quantity\":2"));
	ck_assert(!holds("{quantity: {in: [1, 3]}}", "\"quantity\":2"));
	/* a long list goes through the hashed set */
	ck_assert(holds("{actor: {in: [b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, a1]}}", ""));
	ck_assert(!holds("{actor: {in: [b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, a2]}}", ""));
	/* a quoted "$" is a literal string */
	ck_assert(holds("{actor: \"$x\"}", "\"actor\":\"$x\""));
}
END_TEST

START_TEST(ordering_numbers)
{
	ck_assert(holds("{quantity: {gt: 10}}", "\"quantity\":11"));
	ck_assert(!holds("{quantity: {gt: 10}}", "\"quantity\":10"));
	ck_assert(holds("{quantity: {gte: 10}}", "\"quantity\":10"));
	ck_assert(!holds("{quantity: {gte: 10}}", "\"quantity\":9.999"));
	ck_assert(holds("{quantity: {lt: 10}}", "\"quantity\":9.999"));
	ck_assert(!holds("{quantity: {lt: 10}}", "\"quantity\":10"));
	ck_assert(holds("{quantity: {lte: 10}}", "\"quantity\":10"));
	ck_assert(holds("{quantity: {gte: 5, lt: 10}}", "\"quantity\":7"));
	ck_assert(!holds("{quantity: {gte: 5, lt: 10}}", "\"quantity\":10"));
	ck_assert(holds("{quantity: {gt: 1e14}}", "\"quantity\":1e15"));
	/* numbers compare as numbers, not as text: 9 < 10 */
	ck_assert(holds("{attributes.n: {lt: 10}}", "\"attributes\":{\"n\":9}"));
	/* a string field that reads as a number, against a number */
	ck_assert(holds("{resource.size: {lt: 10}}", "\"resource\":{\"size\":\"9\"}"));
	ck_assert(!holds("{resource.size: {gt: 10}}", "\"resource\":{\"size\":\"abc\"}"));
	/* missing: every ordering is false */
	ck_assert(!holds("{attributes.n: {gt: 0}}", ""));
	ck_assert(!holds("{attributes.n: {gte: 0}}", ""));
	ck_assert(!holds("{attributes.n: {lt: 0}}", ""));
	ck_assert(!holds("{attributes.n: {lte: 0}}", ""));
	/* booleans do not order */
	ck_assert(!holds("{attributes.b: {gt: 0}}", "\"attributes\":{\"b\":true}"));
}
END_TEST

START_TEST(ordering_strings_and_times)
{
	ck_assert(holds("{tenant: {gt: t0}}", ""));
	ck_assert(!holds("{tenant: {gt: t1}}", ""));
	ck_assert(holds("{tenant: {gte: t1}}", ""));
	ck_assert(holds("{tenant: {lt: u}}", ""));
	/* the event time against times */
	ck_assert(holds("{time: {gte: \"2026-01-15T10:00:00Z\"}}", ""));
	ck_assert(!holds("{time: {gt: \"2026-01-15T10:00:00Z\"}}", ""));
	ck_assert(holds("{time: {gt: \"2026-01-15T09:59:59.999999Z\"}}", ""));
	/* offsets are honoured: 11:00+01:00 is 10:00Z */
	ck_assert(holds("{time: {gte: \"2026-01-15T11:00:00+01:00\", lte: 2026-01-15T10:00:00Z}}",
			""));
	ck_assert(holds("{time: \"2026-01-15T05:00:00-05:00\"}", ""));
	/* resource.created */
	ck_assert(holds("{resource.created: {lt: 2025-01-01T00:00:00Z}}",
			"\"resource\":{\"created\":\"2024-06-01T00:00:00+02:00\"}"));
	ck_assert(!holds("{resource.created: {lt: 2025-01-01T00:00:00Z}}",
			 "\"resource\":{\"created\":\"2025-01-01T00:00:00Z\"}"));
	/* a string attribute that parses as a time compares as a time */
	ck_assert(holds("{attributes.since: {lt: 2026-01-01T00:00:00Z}}",
			"\"attributes\":{\"since\":\"2025-12-31T23:00:00-05:00\"}") == false);
	ck_assert(holds("{attributes.since: {lt: 2026-01-01T05:00:01Z}}",
			"\"attributes\":{\"since\":\"2025-12-31T23:59:59-05:00\"}"));
}
END_TEST

START_TEST(exists)
{
	ck_assert(holds("{purpose: {exists: false}}", ""));
	ck_assert(!holds("{purpose: {exists: true}}", ""));
	ck_assert(holds("{purpose: {exists: true}}", "\"purpose\":\"p\""));
	ck_assert(holds("{resource.id: {exists: true}}", "\"resource\":{\"id\":\"r\"}"));
	ck_assert(holds("{attributes.x.y: {exists: false}}", "\"attributes\":{\"x\":1}"));
	ck_assert(holds("{attributes.x: {exists: true}}", "\"attributes\":{\"x\":0}"));
	ck_assert(holds("{quantity: {exists: true}}", ""));
}
END_TEST

START_TEST(glob_and_regex)
{
	ck_assert(holds("{actor: {glob: \"a*\"}}", ""));
	ck_assert(holds("{actor: {glob: \"?1\"}}", ""));
	ck_assert(!holds("{actor: {glob: \"b*\"}}", ""));
	ck_assert(holds("{action: {glob: \"data.*\"}}", ""));
	ck_assert(holds("{actor: {glob: \"svc-[0-9]*\"}}", "\"actor\":\"svc-7x\""));
	ck_assert(!holds("{purpose: {glob: \"*\"}}", ""));
	ck_assert(holds("{actor: {regex: \"^a[0-9]+$\"}}", ""));
	ck_assert(!holds("{actor: {regex: \"^b\"}}", ""));
	ck_assert(holds("{actor: {regex: \"1\"}}", "")); /* unanchored: anywhere */
	ck_assert(!holds("{purpose: {regex: \".*\"}}", ""));
	ck_assert(holds("{quantity: {regex: \"^25$\"}}", "\"quantity\":25"));
	/* several operators in one map must all hold */
	ck_assert(holds("{actor: {glob: \"a*\", regex: \"1$\", ne: a2}}", ""));
	ck_assert(!holds("{actor: {glob: \"a*\", regex: \"2$\"}}", ""));
}
END_TEST

START_TEST(all_any_not)
{
	ck_assert(holds("{all: [{tenant: t1}, {actor: a1}]}", ""));
	ck_assert(!holds("{all: [{tenant: t1}, {actor: a2}]}", ""));
	ck_assert(holds("{any: [{tenant: t2}, {actor: a1}]}", ""));
	ck_assert(!holds("{any: [{tenant: t2}, {actor: a2}]}", ""));
	ck_assert(holds("{not: {tenant: t2}}", ""));
	ck_assert(!holds("{not: {tenant: t1}}", ""));
	ck_assert(holds("{all: []}", ""));
	ck_assert(!holds("{any: []}", ""));
	ck_assert(holds("{}", ""));
	/* nesting, and fields beside combinators */
	ck_assert(holds("{tenant: t1, any: [{not: {actor: a1}}, {all: [{action: data.read}]}]}",
			""));
	ck_assert(!holds("{tenant: t1, not: {any: [{actor: a1}, {actor: a2}]}}", ""));
}
END_TEST

START_TEST(time_hour_and_weekday)
{
	/* 2026-01-15 is a Thursday */
	ck_assert(holds("{time.hour: 10}", ""));
	ck_assert(holds("{time.weekday: thu}", ""));
	ck_assert(holds_in("", "{time.hour: {lt: 6}}", "2026-01-15T05:59:59Z", ""));
	ck_assert(!holds_in("", "{time.hour: {lt: 6}}", "2026-01-15T06:00:00Z", ""));
	/* UTC: 21:30 in New York is 02:30 on Friday */
	ck_assert(holds_in("", "{time.hour: 2, time.weekday: fri}", "2026-01-15T21:30:00-05:00",
			   ""));
	ck_assert(holds_in("", "{time.weekday: {in: [sat, sun]}}", "2026-01-17T00:00:00Z", ""));
	ck_assert(holds_in("", "{time.weekday: sun}", "2026-01-18T23:59:59Z", ""));
	ck_assert(holds_in("", "{time.weekday: mon}", "2026-01-19T00:00:00Z", ""));
	/* before 1970 */
	ck_assert(holds_in("", "{time.weekday: wed, time.hour: 23}", "1969-12-31T23:00:00Z", ""));
}
END_TEST

START_TEST(datasets_fill_missing_fields)
{
	const char *ds = "datasets:\n"
			 "  visa:\n"
			 "    classification: biometric\n"
			 "    collected_for: visa-processing\n"
			 "    created: 2025-01-01T00:00:00Z\n";

	ck_assert(holds_in(ds, "{resource.classification: biometric}", T0,
			   "\"resource\":{\"dataset\":\"visa\"}"));
	/* the event's own value wins */
	ck_assert(!holds_in(ds, "{resource.classification: biometric}", T0,
			    "\"resource\":{\"dataset\":\"visa\",\"classification\":\"public\"}"));
	/* a dataset time compares as a time */
	ck_assert(holds_in(ds, "{resource.created: {lt: 2025-06-01T00:00:00Z}}", T0,
			   "\"resource\":{\"dataset\":\"visa\"}"));
	ck_assert(holds_in(ds, "{resource.collected_for: {exists: true}}", T0,
			   "\"resource\":{\"dataset\":\"visa\"}"));
	/* an undeclared dataset fills nothing */
	ck_assert(!holds_in(ds, "{resource.classification: {exists: true}}", T0,
			    "\"resource\":{\"dataset\":\"other\"}"));
	ck_assert(!holds_in(ds, "{resource.classification: {exists: true}}", T0, ""));
}
END_TEST

START_TEST(non_ascii)
{
	ck_assert(holds("{tenant: агентство-а}", "\"tenant\":\"агентство-а\""));
	ck_assert(!holds("{tenant: агентство-б}", "\"tenant\":\"агентство-а\""));
	ck_assert(holds("{actor: {glob: \"分析*\"}}", "\"actor\":\"分析員-7\""));
	ck_assert(holds("{actor: {regex: \"^分析\"}}", "\"actor\":\"分析員-7\""));
	ck_assert(holds("{attributes.ort: {in: [Zürich, Genève]}}",
			"\"attributes\":{\"ort\":\"Genève\"}"));
	ck_assert(holds("{resource.id: \"blob://фото/1.jpg\"}",
			"\"resource\":{\"id\":\"blob://фото/1.jpg\"}"));
}
END_TEST

static Suite *
cond_suite(void)
{
	Suite *s = suite_create("cond");
	TCase *tc = tcase_create("cond");

	tcase_add_test(tc, eq_strings);
	tcase_add_test(tc, eq_numbers_and_booleans);
	tcase_add_test(tc, ne_and_missing);
	tcase_add_test(tc, in_and_not_in);
	tcase_add_test(tc, ordering_numbers);
	tcase_add_test(tc, ordering_strings_and_times);
	tcase_add_test(tc, exists);
	tcase_add_test(tc, glob_and_regex);
	tcase_add_test(tc, all_any_not);
	tcase_add_test(tc, time_hour_and_weekday);
	tcase_add_test(tc, datasets_fill_missing_fields);
	tcase_add_test(tc, non_ascii);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(cond_suite());
}
