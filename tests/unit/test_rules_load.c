/* test_rules_load.c - the rules loader: every kind of error with its position, files and versions */
#include "policytest.h"

#include <openssl/evp.h>
#include <sys/stat.h>

/* Loads `yaml` with opts; returns the diagnostics (the load must fail). */
static struct diag_list
load_errors(const char *yaml, const struct ruleset_opts *opts)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "r.yaml");
	const char *paths[1] = {path};
	struct diag_list dl = {0};
	struct ruleset *rs;

	tu_write(path, yaml);
	rs = ruleset_load(paths, 1, opts, &dl);
	ck_assert_msg(rs == NULL, "the rules loaded:\n%s", yaml);
	ck_assert_uint_gt(dl.n, 0);
	tu_rmtree(dir);
	free(dir);
	return dl;
}

static bool
has_error(const struct diag_list *dl, int line, int col, const char *part)
{
	for (size_t i = 0; i < dl->n; i++)
		if (dl->v[i].line == line && dl->v[i].col == col && strstr(dl->v[i].msg, part))
			return true;
	return false;
}

static void
dump(const struct diag_list *dl)
{
	char line[1024];

	for (size_t i = 0; i < dl->n; i++) {
		aupd_error_format(&dl->v[i], line, sizeof(line));
		fprintf(stderr, "  %s\n", line);
	}
}

static void
expect_error_opts(const char *yaml, const struct ruleset_opts *opts, int line, int col,
		  const char *part)
{
	struct diag_list dl = load_errors(yaml, opts);

	if (!has_error(&dl, line, col, part)) {
		dump(&dl);
		ck_abort_msg("no error '%s' at %d:%d for:\n%s", part, line, col, yaml);
	}
	for (size_t i = 0; i < dl.n; i++)
		ck_assert_msg(strstr(dl.v[i].file, "r.yaml") != NULL, "diagnostic without its file");
	diag_list_free(&dl);
}

static void
expect_error(const char *yaml, int line, int col, const char *part)
{
	expect_error_opts(yaml, NULL, line, col, part);
}

START_TEST(top_level)
{
	expect_error("lsts: {}\n", 1, 1, "unknown top-level key 'lsts' (did you mean 'lists'?)");
	expect_error("version: 2\n", 1, 10, "unsupported version '2'");
	expect_error("rules: {a: 1}\n", 1, 8, "rules must be a list, not a mapping");
	expect_error("- a\n", 1, 1, "a rules file must be a mapping");
	expect_error("rules: [\n", 2, 1, "invalid YAML");
	expect_error("a: &x [1]\nb: *x\n", 1, 4, "aliases are not supported");
}
END_TEST

START_TEST(rule_fields)
{
	expect_error("rules:\n  - id: r\n    wehn: {}\n", 3, 5,
		     "unknown rule key 'wehn' (did you mean 'when'?)");
	expect_error("rules:\n  - id: r\n    effect: denny\n", 3, 13,
		     "unknown effect 'denny' (did you mean 'deny'?)");
	expect_error("rules:\n  - id: r\n    severity: hgh\n", 3, 15,
		     "unknown severity 'hgh' (did you mean 'high'?)");
	expect_error("rules:\n  - id: r\n    mode: shadw\n", 3, 11,
		     "unknown mode 'shadw' (did you mean 'shadow'?)");
	expect_error("rules:\n  - id: \"a b\"\n", 2, 9, "bad rule id 'a b'");
	expect_error("rules:\n  - description: no id\n", 2, 5, "a rule needs an id");
	expect_error("rules:\n  - id: r\n    tags: x\n", 3, 11, "tags must be a list");
	expect_error("rules:\n  - id: r\n  - id: r\n", 3, 9, "duplicate id 'r' (first used at");
	expect_error("rules:\n  - id: r\nescalations:\n  - id: r\n    level: notice\n"
		     "    threshold: {count: 1, window: 1h}\n",
		     4, 9, "duplicate id 'r'");
}
END_TEST

START_TEST(conditions)
{
	expect_error("rules:\n  - id: r\n    when: {action: {in: $nope}}\n", 3, 25,
		     "unknown list '$nope'");
	expect_error("lists: {acts: [a]}\nrules:\n  - id: r\n    when: {action: {in: $act}}\n", 4,
		     25, "unknown list '$act' (did you mean '$acts'?)");
	expect_error("rules:\n  - id: r\n    when: {actor: {regex: \"a(\"}}\n", 3, 27,
		     "bad regex 'a(':");
	expect_error("rules:\n  - id: r\n    when: {actor: {gtee: 1}}\n", 3, 20,
		     "unknown operator 'gtee' (did you mean 'gte'?)");
	expect_error("rules:\n  - id: r\n    when: {tennant: x}\n", 3, 12,
		     "unknown field 'tennant' (did you mean 'tenant'?)");
	expect_error("rules:\n  - id: r\n    when: {resources.id: x}\n", 3, 12,
		     "did you mean 'resource.id'?");
	expect_error("rules:\n  - id: r\n    when: {resource: x}\n", 3, 12,
		     "'resource' needs a field name");
	expect_error("rules:\n  - id: r\n    when: {attributes.: x}\n", 3, 12, "empty name");
	expect_error("rules:\n  - id: r\n    when: {verdict: deny}\n", 3, 12,
		     "only available in escalations");
	expect_error("rules:\n  - id: r\n    when: {quantity: {gt: many}}\n", 3, 27,
		     "quantity compares with numbers");
	expect_error("rules:\n  - id: r\n    when: {time: {gt: yesterday}}\n", 3, 23,
		     "RFC 3339");
	expect_error("rules:\n  - id: r\n    when: {time.hour: 24}\n", 3, 23,
		     "time.hour is a whole number from 0 to 23");
	expect_error("rules:\n  - id: r\n    when: {time.weekday: saturday}\n", 3, 26,
		     "unknown weekday 'saturday'");
	expect_error("rules:\n  - id: r\n    when: {actor: {eq: [a, b]}}\n", 3, 24,
		     "eq takes a single value; use in:");
	expect_error("rules:\n  - id: r\n    when: {actor: {exists: maybe}}\n", 3, 28,
		     "exists takes true or false");
	expect_error("rules:\n  - id: r\n    when: {actor: ~}\n", 3, 19, "to test for a missing");
	expect_error("rules:\n  - id: r\n    when: [a]\n", 3, 11, "a condition must be a mapping");
	expect_error("rules:\n  - id: r\n    when: {any: {tenant: a}}\n", 3, 17,
		     "any takes a list of conditions");
	expect_error("rules:\n  - id: r\n    when: {actor: {in: [[a]]}}\n", 3, 25,
		     "expected a single value");
	expect_error("rules:\n  - id: r\n    when: {actor: {gt: 1, gt: 2}}\n", 3, 27,
		     "duplicate operator 'gt'");
}
END_TEST

START_TEST(datasets)
{
	expect_error("datasets:\n  visa: {classification: biometric}\nrules:\n  - id: r\n"
		     "    when: {resource.dataset: vsa}\n",
		     5, 30, "unknown dataset 'vsa' (did you mean 'visa'?)");
	expect_error("datasets:\n  visa: {classification: biometric}\nrules:\n  - id: r\n"
		     "    when: {resource.dataset: {in: [visa, nope]}}\n",
		     5, 42, "unknown dataset 'nope'");
	expect_error("datasets:\n  d: {created: yesterday}\n", 2, 16,
		     "resource.created of dataset 'd'");
	expect_error("datasets:\n  d: {id: x}\n", 2, 7, "cannot set resource.id");
	expect_error("datasets:\n  d: [a]\n", 2, 6, "must be a mapping");
}
END_TEST

START_TEST(rule_kinds)
{
	expect_error("rules:\n  - id: r\n    limit: {max: 1}\n", 3, 5, "limit needs a window");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h}\n", 3, 5, "limit needs max");
	expect_error("rules:\n  - id: r\n    limit: {window: 1x, max: 1}\n", 3, 21,
		     "bad duration '1x'");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h, max: -1}\n", 3, 30,
		     "max must be a number >= 0");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h, max: 1, sum: tenant}\n", 3, 38,
		     "sum must be count, quantity");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h, max: 1, by: [tennant]}\n", 3, 38,
		     "unknown field 'tennant'");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h, max: 1, windw: 2h}\n", 3, 33,
		     "unknown limit key 'windw' (did you mean 'window'?)");
	expect_error("rules:\n  - id: r\n    limit: {window: 1h, max: 1}\n"
		     "    reuse: {allowed: {}}\n",
		     4, 5, "only one of limit, retention and reuse");
	expect_error("rules:\n  - id: r\n    retention: {max: 1d}\n", 3, 5, "retention needs age_of");
	expect_error("rules:\n  - id: r\n    retention: {age_of: tenant, max: 1d}\n", 3, 25,
		     "age_of must be a resource.NAME or attributes.NAME");
	expect_error("rules:\n  - id: r\n    retention: {age_of: resource.created, max: 1d, "
		     "track: {}}\n",
		     3, 59, "track needs deleted_by");
	expect_error("rules:\n  - id: r\n    reuse: {unknown: deny}\n", 3, 5, "reuse needs allowed");
	expect_error("rules:\n  - id: r\n    reuse: {allowed: {a: [b]}, unknown: maybe}\n", 3, 41,
		     "unknown unknown (deny or allow) 'maybe'");
	expect_error("rules:\n  - id: r\n    message: \"x {tenat}\"\n", 3, 14,
		     "unknown placeholder {tenat}");
	expect_error("rules:\n  - id: r\n    message: \"{limit.total}\"\n", 3, 14,
		     "only available in limit rules");
	expect_error("rules:\n  - id: r\n    message: \"x {tenant\"\n", 3, 14, "unclosed '{'");
}
END_TEST

START_TEST(escalations_exemptions_tests)
{
	static const char *const names[] = {"compliance", "oncall"};
	struct ruleset_opts opts = {.notifiers = names, .n_notifiers = 2};
	const char *esc = "escalations:\n  - id: e\n    threshold: {count: 1, window: 1h}\n"
			  "    level: notice\n    notify: [complance]\n";

	expect_error_opts(esc, &opts, 5, 14,
			  "unknown notifier 'complance' (did you mean 'compliance'?)");
	expect_error("escalations:\n  - id: e\n    threshold: {count: 1, window: 1h}\n"
		     "    level: warnin\n",
		     4, 12, "unknown level 'warnin' (did you mean 'warning'?)");
	expect_error("escalations:\n  - id: e\n    threshold: {count: 0, window: 1h}\n"
		     "    level: notice\n",
		     3, 24, "count must be a whole number >= 1");
	expect_error("escalations:\n  - id: e\n    threshold: {count: 1}\n    level: notice\n", 3,
		     5, "threshold needs a window");
	expect_error("escalations:\n  - id: e\n    level: notice\n", 2, 5,
		     "an escalation needs a threshold");
	expect_error("rules:\n  - id: r\nexemptions:\n  - id: x\n    rules: [q]\n", 5, 13,
		     "unknown rule 'q'");
	expect_error("rules:\n  - id: rule-1\nexemptions:\n  - id: x\n    rules: [rule-2]\n", 5, 13,
		     "unknown rule 'rule-2' (did you mean 'rule-1'?)");
	expect_error("rules:\n  - id: r\nexemptions:\n  - id: x\n    rules: [r]\n"
		     "    expires: soon\n",
		     6, 14, "expires:");
	expect_error("tests:\n  - name: t\n    events: [{id: a}]\n    expect: [{id: b, verdict: deny}]\n",
		     4, 14, "expect names event 'b'");
	expect_error("tests:\n  - name: t\n    events: [{id: a}]\n    expect: [{id: a}]\n", 4, 14,
		     "needs verdict, rules or alerts");
	expect_error("escalations:\n  - {id: esc, threshold: {count: 1, window: 1h}, level: notice}\n"
		     "tests:\n  - name: t\n    events: [{id: a}]\n"
		     "    expect: [{id: a, alerts: [ecs]}]\n",
		     6, 31, "unknown escalation 'ecs'");
	expect_error("tests:\n  - name: t\n    events: [{id: a}]\n"
		     "    expect: [{id: a, rules: [nope]}]\n",
		     4, 30, "unknown rule 'nope'");
	expect_error("tests:\n  - name: t\n    events: [{id: a}]\n"
		     "    expect: [{id: a, verdict: nope}]\n",
		     4, 31, "unknown effect 'nope'");
}
END_TEST

START_TEST(every_error_is_reported)
{
	const char *yaml = "lsts: {}\n"			    /* 1 */
			   "rules:\n"				    /* 2 */
			   "  - id: r1\n"			    /* 3 */
			   "    severity: hgh\n"		    /* 4 */
			   "    when: {actor: {regex: \"(\"}}\n"    /* 5 */
			   "  - id: r2\n"			    /* 6 */
			   "    limit: {max: 5}\n"		    /* 7 */
			   "exemptions:\n"			    /* 8 */
			   "  - id: x\n"				    /* 9 */
			   "    rules: [r1, nope]\n";		    /* 10 */
	struct diag_list dl = load_errors(yaml, NULL);

	if (dl.n != 5)
		dump(&dl);
	ck_assert_uint_eq(dl.n, 5);
	ck_assert(has_error(&dl, 1, 1, "unknown top-level key"));
	ck_assert(has_error(&dl, 4, 15, "unknown severity"));
	ck_assert(has_error(&dl, 5, 27, "bad regex"));
	ck_assert(has_error(&dl, 7, 5, "limit needs a window"));
	ck_assert(has_error(&dl, 10, 17, "unknown rule 'nope'"));
	/* in file order */
	for (size_t i = 1; i < dl.n; i++)
		ck_assert_int_le(dl.v[i - 1].line, dl.v[i].line);
	diag_list_free(&dl);
}
END_TEST

static void
sha256_hex(const char *a, const char *b, char out[72])
{
	unsigned char d[32];
	unsigned n;
	char hex[65];
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, a, strlen(a));
	EVP_DigestUpdate(md, b, strlen(b));
	EVP_DigestFinal_ex(md, d, &n);
	EVP_MD_CTX_free(md);
	hex_encode(d, 32, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

START_TEST(directories_and_versions)
{
	char *dir = tu_tmpdir();
	const char *a = "rules:\n  - id: ra\n", *b = "rules:\n  - id: rb\n";
	const char *paths[1] = {dir};
	struct diag_list dl = {0};
	struct ruleset *rs;
	char want[72];
	json_t *desc;

	tu_write(tu_path(dir, "b.yaml"), b);
	tu_write(tu_path(dir, "a.yaml"), a);
	tu_write(tu_path(dir, "c.txt"), "not rules");
	tu_write(tu_path(dir, ".hidden.yaml"), "garbage: [");
	ck_assert_int_eq(mkdir(tu_path(dir, "sub.yaml"), 0700), 0);
	rs = ruleset_load(paths, 1, NULL, &dl);
	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(ruleset_n_files(rs), 2);
	ck_assert(strstr(ruleset_file_path(rs, 0), "/a.yaml") != NULL);
	ck_assert(strstr(ruleset_file_path(rs, 1), "/b.yaml") != NULL);
	sha256_hex(a, b, want);
	ck_assert_str_eq(ruleset_version(rs), want);
	desc = ruleset_describe(rs);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(desc, "rules"), 0), "id")),
			 "ra");
	json_decref(desc);
	ruleset_unref(rs);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(duplicate_ids_across_files)
{
	char *dir = tu_tmpdir();
	const char *paths[1] = {dir};
	struct diag_list dl = {0};

	tu_write(tu_path(dir, "a.yaml"), "rules:\n  - id: r\n");
	tu_write(tu_path(dir, "b.yaml"), "\nrules:\n  - id: r\n");
	ck_assert_ptr_null(ruleset_load(paths, 1, NULL, &dl));
	ck_assert_uint_eq(dl.n, 1);
	ck_assert(strstr(dl.v[0].file, "b.yaml") != NULL);
	ck_assert_int_eq(dl.v[0].line, 3);
	ck_assert_int_eq(dl.v[0].col, 9);
	ck_assert(strstr(dl.v[0].msg, "a.yaml:2") != NULL);
	diag_list_free(&dl);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(files_missing_or_too_large)
{
	char *dir = tu_tmpdir();
	const char *big = tu_path(dir, "big.yaml");
	const char *paths[2] = {tu_path(dir, "missing.yaml"), big};
	struct diag_list dl = {0};
	FILE *f = fopen(big, "w");

	for (int i = 0; i < (4 << 20) / 64 + 1; i++)
		fprintf(f, "# %061d\n", i);
	fclose(f);
	ck_assert_ptr_null(ruleset_load(paths, 2, NULL, &dl));
	ck_assert_uint_eq(dl.n, 2);
	for (size_t i = 0; i < 2; i++) {
		if (strstr(dl.v[i].file, "missing.yaml"))
			ck_assert(strstr(dl.v[i].msg, "cannot open"));
		else
			ck_assert(strstr(dl.v[i].file, "big.yaml") && strstr(dl.v[i].msg, "larger than"));
	}
	diag_list_free(&dl);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(defaults)
{
	struct ruleset *rs = pt_load("rules:\n  - id: q\n    limit: {window: 1h, max: 3}\n"
				     "  - id: c\n");
	json_t *d = ruleset_describe(rs), *r0, *r1;

	r0 = json_array_get(json_object_get(d, "rules"), 0);
	r1 = json_array_get(json_object_get(d, "rules"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(r0, "kind")), "limit");
	ck_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(json_object_get(r0, "limit"), "by"), 0)),
			 "tenant");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r0, "limit"), "sum")),
			 "count");
	ck_assert_str_eq(json_string_value(json_object_get(r1, "kind")), "plain");
	ck_assert_str_eq(json_string_value(json_object_get(r1, "effect")), "deny");
	ck_assert_str_eq(json_string_value(json_object_get(r1, "severity")), "medium");
	ck_assert_str_eq(json_string_value(json_object_get(r1, "mode")), "enforce");
	ck_assert_int_eq(ruleset_max_window(rs), 3600 * AUPD_USEC);
	json_decref(d);
	ruleset_unref(rs);

	/* an empty file is an empty ruleset */
	rs = pt_load("");
	ck_assert_uint_eq(ruleset_n_rules(rs), 0);
	ruleset_unref(rs);
	rs = pt_load("# only a comment\n");
	ruleset_unref(rs);
}
END_TEST

static Suite *
load_suite(void)
{
	Suite *s = suite_create("rules_load");
	TCase *tc = tcase_create("rules_load");

	tcase_add_test(tc, top_level);
	tcase_add_test(tc, rule_fields);
	tcase_add_test(tc, conditions);
	tcase_add_test(tc, datasets);
	tcase_add_test(tc, rule_kinds);
	tcase_add_test(tc, escalations_exemptions_tests);
	tcase_add_test(tc, every_error_is_reported);
	tcase_add_test(tc, directories_and_versions);
	tcase_add_test(tc, duplicate_ids_across_files);
	tcase_add_test(tc, files_missing_or_too_large);
	tcase_add_test(tc, defaults);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(load_suite());
}
