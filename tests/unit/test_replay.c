/* test_replay.c - the command line: aupd replay, aupd rules check and aupd rules test */
#include "policytest.h"

#include <sys/wait.h>

static char *dir;

static void
setup(void)
{
	dir = tu_tmpdir();
}

static void
teardown(void)
{
	tu_rmtree(dir);
	free(dir);
}

static char *
slurp(const char *path)
{
	struct aupd_error err;
	size_t len;
	char *s = file_read_all(path, 64u << 20, &len, &err);

	ck_assert_msg(s != NULL, "%s", err.msg);
	s[len] = '\0'; /* file_read_all leaves an empty file's buffer unterminated */
	return s;
}

/* Runs `aupd ARGS` (a shell fragment) in dir; fills *out and *err (free them); returns the exit status. */
static int
run(const char *args, char **out, char **err)
{
	const char *bin = getenv("AUPD_BIN");
	char cmd[8192];
	int rc;

	ck_assert_msg(bin != NULL, "AUPD_BIN is not set");
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s >out.txt 2>err.txt", dir, bin, args);
	rc = system(cmd);
	ck_assert(rc != -1 && WIFEXITED(rc));
	*out = slurp(tu_path(dir, "out.txt"));
	*err = slurp(tu_path(dir, "err.txt"));
	if (WEXITSTATUS(rc) >= 128) /* killed (a sanitizer's abort, say): show why */
		fprintf(stderr, "aupd %s: status %d\n%s\n", args, WEXITSTATUS(rc), *err);
	return WEXITSTATUS(rc);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Line i (0-based) of s as a JSON object (decref it). */
static json_t *
json_line(const char *s, size_t i)
{
	json_error_t jerr;
	json_t *j;

	while (i-- > 0) {
		s = strchr(s, '\n');
		ck_assert_ptr_nonnull(s);
		s++;
	}
	j = json_loadb(s, strcspn(s, "\n"), 0, &jerr);
	ck_assert_msg(j != NULL, "line is not JSON: %s", jerr.text);
	return j;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	ck_assert_msg(s != NULL, "no string %s", key);
	return s;
}

static const char *rules =
	"rules:\n"
	"  - id: cap\n"
	"    limit: {sum: quantity, window: 1h, max: 10}\n"
	"  - id: ret\n"
	"    severity: high\n"
	"    when: {resource.classification: biometric}\n"
	"    retention: {age_of: resource.created, max: 1d, track: {deleted_by: {action: data.delete}}}\n";

#define EV(id, time, extra)                                                                    \
	"{\"id\":\"" id "\",\"time\":\"" time "\",\"tenant\":\"t\",\"actor\":\"a\","             \
	"\"action\":\"data.read\"" extra "}\n"

START_TEST(replay_verdicts)
{
	char *out, *err;
	json_t *j;
	int rc;

	tu_write(tu_path(dir, "rules.yaml"), rules);
	tu_write(tu_path(dir, "events.ndjson"),
		 EV("e1", "2026-01-15T10:00:00Z", ",\"quantity\":6")	      /* 1 */
		 "\n"							      /* 2: blank */
		 EV("e2", "2026-01-15T10:10:00+01:00", ",\"quantity\":6")    /* 3: 09:10Z */
		 EV("e3", "2026-01-15T10:20:00Z", ",\"quantity\":6")	      /* 4 */
		 "{\"id\": nope}\n"					      /* 5 */
		 EV("e4", "2026-01-15T10:30:00Z", ",\"bogus\":1")	      /* 6 */
		 EV("e3", "2026-01-15T10:20:00Z", ",\"quantity\":99"));    /* 7: resent */
	rc = run("replay --rules rules.yaml events.ndjson", &out, &err);
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(count_lines(out), 4);
	ck_assert_msg(strstr(err, "events.ndjson:5: error: invalid JSON") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "events.ndjson:6: error: unknown field 'bogus'") != NULL &&
			      strstr(err, "(at /bogus)") != NULL,
		      "%s", err);
	ck_assert_uint_eq(count_lines(err), 2);

	j = json_line(out, 0);
	ck_assert_str_eq(jstr(j, "id"), "e1");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 1);
	ck_assert_str_eq(jstr(j, "verdict"), "allow");
	ck_assert_str_eq(jstr(j, "decided_at"), "2026-01-15T10:00:00.000Z");
	ck_assert(json_is_false(json_object_get(j, "duplicate")));
	ck_assert(strncmp(jstr(j, "rules_version"), "sha256:", 7) == 0);
	json_decref(j);
	/* e2 is earlier (09:10Z): its window (08:10, 09:10] holds only itself */
	j = json_line(out, 1);
	ck_assert_str_eq(jstr(j, "verdict"), "allow");
	ck_assert_str_eq(jstr(j, "decided_at"), "2026-01-15T09:10:00.000Z");
	json_decref(j);
	/* e3 at 10:20: (09:20, 10:20] holds e1 and itself (e2 at 09:10 is outside): 12 > 10 */
	j = json_line(out, 2);
	ck_assert_str_eq(jstr(j, "verdict"), "deny");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 3);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "matched"), 0), "message"),
			 "t: 12 in 1h, over 10");
	json_decref(j);
	/* the resend: the original verdict, not judged or counted again */
	j = json_line(out, 3);
	ck_assert_str_eq(jstr(j, "id"), "e3");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 3);
	ck_assert_str_eq(jstr(j, "verdict"), "deny");
	ck_assert(json_is_true(json_object_get(j, "duplicate")));
	json_decref(j);
	free(out);
	free(err);
}
END_TEST

START_TEST(replay_overdue_and_stdin)
{
	char *out, *err;
	json_t *j;

	tu_write(tu_path(dir, "rules.yaml"), rules);
	tu_write(tu_path(dir, "events.ndjson"),
		 EV("o1", "2026-01-15T10:00:00Z",
		    ",\"resource\":{\"id\":\"b1\",\"classification\":\"biometric\","
		    "\"created\":\"2026-01-15T00:00:00Z\"}")
		 EV("o2", "2026-01-15T11:00:00Z",
		    ",\"resource\":{\"id\":\"b2\",\"classification\":\"biometric\","
		    "\"created\":\"2026-01-15T00:00:00Z\"}")
		 "{\"id\":\"d2\",\"time\":\"2026-01-15T12:00:00Z\",\"tenant\":\"t\",\"actor\":\"a\","
		 "\"action\":\"data.delete\",\"resource\":{\"id\":\"b2\"}}\n"
		 EV("late", "2026-01-16T00:00:00Z", ""));
	ck_assert_int_eq(run("replay --rules=rules.yaml --format ndjson - < events.ndjson", &out,
			     &err),
			 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(count_lines(out), 5);
	/* b1's deadline (2026-01-16T00:00:00Z) has come when "late" arrives; b2 was deleted */
	j = json_line(out, 3);
	ck_assert_str_eq(jstr(j, "kind"), "retention-overdue");
	ck_assert_str_eq(jstr(json_object_get(j, "resource"), "id"), "b1");
	ck_assert_str_eq(jstr(j, "opened_by"), "o1");
	ck_assert_str_eq(jstr(j, "deadline"), "2026-01-16T00:00:00.000Z");
	ck_assert_str_eq(jstr(j, "decided_at"), "2026-01-16T00:00:00.000Z");
	ck_assert_str_eq(jstr(j, "verdict"), "deny");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 4);
	json_decref(j);
	j = json_line(out, 4);
	ck_assert_str_eq(jstr(j, "id"), "late");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 5);
	json_decref(j);
	free(out);
	free(err);
}
END_TEST

START_TEST(replay_matches_the_evaluator)
{
	const char *paths[1];
	struct diag_list dl = {0};
	struct ruleset *rs;
	struct policy_state *st = policy_state_new();
	struct strbuf want, events;
	char *out, *err, path[4096];
	char *src = getenv("AUPD_SOURCE_DIR");
	static const char *const actions[] = {"face.search", "face.enroll", "data.read",
					       "data.export", "video.index"};
	static const char *const datasets[] = {"visa-photos", "border-crossings",
						"benefits-claims", "cctv-archive"};
	static const char *const purposes[] = {"visa-processing", "fraud-review",
						"case-investigation", "benefits-audit"};

	ck_assert_ptr_nonnull(src);
	snprintf(path, sizeof(path), "%s/rules", src);
	paths[0] = path;
	rs = ruleset_load(paths, 1, NULL, &dl);
	ck_assert_ptr_nonnull(rs);
	sb_init(&want);
	sb_init(&events);
	srand(7);
	for (int i = 0; i < 6000; i++) {
		char line[1024], tm[40];
		struct event ev;
		struct verdict v;
		aupd_time t = 1768471200LL * AUPD_USEC + (int64_t)i * 20 * AUPD_USEC -
			      (int64_t)(rand() % 600) * AUPD_USEC;

		time_format_us(t, tm, sizeof(tm));
		snprintf(line, sizeof(line),
			 "{\"id\":\"e%d\",\"time\":\"%s\",\"tenant\":\"tenant-%d\",\"actor\":\"a%d\","
			 "\"action\":\"%s\",\"purpose\":\"%s\",\"quantity\":%d,"
			 "\"resource\":{\"dataset\":\"%s\"},\"attributes\":{\"video_hours\":%d%s}}",
			 i, tm, rand() % 3, rand() % 5, actions[rand() % 5], purposes[rand() % 4],
			 rand() % 120, datasets[rand() % 4], rand() % 30,
			 rand() % 2 ? ",\"case\":\"C-1\"" : "");
		sb_adds(&events, line);
		sb_addc(&events, '\n');
		pt_event(&ev, line);
		policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, &v);
		verdict_encode(&want, &ev, &v, i + 1, ruleset_version(rs), ev.time, false);
		sb_addc(&want, '\n');
		verdict_clear(&v);
		event_clear(&ev);
	}
	tu_write(tu_path(dir, "events.ndjson"), events.buf);
	snprintf(path, sizeof(path), "replay --rules '%s/rules' events.ndjson", src);
	ck_assert_int_eq(run(path, &out, &err), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(strlen(out), want.len);
	ck_assert(memcmp(out, want.buf, want.len) == 0);
	/* not every verdict is allow: the sample rules did fire */
	ck_assert(strstr(out, "\"verdict\":\"deny\"") != NULL);
	ck_assert(strstr(out, "\"verdict\":\"flag\"") != NULL);
	free(out);
	free(err);
	/* on one thread, or with two parser threads, the output is the same */
	snprintf(path, sizeof(path), "replay --rules '%s/rules' events.ndjson", src);
	for (int parsers = 0; parsers <= 2; parsers += 2) {
		setenv("AUPD_REPLAY_PARSERS", parsers ? "2" : "0", 1);
		ck_assert_int_eq(run(path, &out, &err), 0);
		unsetenv("AUPD_REPLAY_PARSERS");
		ck_assert_uint_eq(strlen(out), want.len);
		ck_assert(memcmp(out, want.buf, want.len) == 0);
		free(out);
		free(err);
	}
	sb_free(&want);
	sb_free(&events);
	policy_state_free(st);
	ruleset_unref(rs);
}
END_TEST

START_TEST(replay_usage)
{
	char *out, *err;

	tu_write(tu_path(dir, "rules.yaml"), rules);
	tu_write(tu_path(dir, "e.ndjson"), EV("x", "2026-01-15T10:00:00Z", ""));
	ck_assert_int_eq(run("replay --help", &out, &err), 0);
	ck_assert(strstr(out, "usage: aupd replay") != NULL);
	free(out), free(err);
	ck_assert_int_eq(run("replay e.ndjson", &out, &err), 2);
	ck_assert(strstr(err, "--rules") != NULL);
	free(out), free(err);
	ck_assert_int_eq(run("replay --rules rules.yaml --format csv e.ndjson", &out, &err), 2);
	free(out), free(err);
	ck_assert_int_eq(run("replay --rules rules.yaml --frobnicate e.ndjson", &out, &err), 2);
	free(out), free(err);
	ck_assert_int_eq(run("replay --rules rules.yaml --default-effect maybe e.ndjson", &out,
			     &err),
			 2);
	free(out), free(err);
	ck_assert_int_eq(run("replay --rules rules.yaml --default-effect deny e.ndjson", &out,
			     &err),
			 0);
	ck_assert(strstr(out, "\"verdict\":\"deny\"") != NULL);
	free(out), free(err);
	ck_assert_int_eq(run("replay --rules rules.yaml missing.ndjson", &out, &err), 1);
	free(out), free(err);
	tu_write(tu_path(dir, "bad.yaml"), "rules: [{id: x, wehn: {}}]\n");
	ck_assert_int_eq(run("replay --rules bad.yaml e.ndjson", &out, &err), 1);
	ck_assert(strstr(err, "bad.yaml:1:17: error: unknown rule key 'wehn'") != NULL);
	free(out), free(err);
}
END_TEST

START_TEST(rules_check)
{
	char *out, *err;

	tu_write(tu_path(dir, "a.yaml"), "rules:\n  - id: r1\n  - id: r2\nescalations:\n"
					 "  - {id: e, threshold: {count: 1, window: 1h}, level: notice,"
					 " notify: [compliance]}\n");
	tu_write(tu_path(dir, "b.yaml"), "exemptions:\n  - {id: x, rules: [r1]}\n");
	ck_assert_int_eq(run("rules check a.yaml b.yaml", &out, &err), 0);
	ck_assert_msg(strncmp(out, "OK: 2 rules, 1 escalation, 1 exemption in 2 files (sha256:",
			      58) == 0,
		      "%s", out);
	ck_assert_str_eq(err, "");
	free(out), free(err);

	tu_write(tu_path(dir, "c.yaml"), "rules:\n  - id: r3\n    severity: hgh\n    mode: x\n");
	ck_assert_int_eq(run("rules check a.yaml c.yaml", &out, &err), 1);
	ck_assert_str_eq(out, "");
	ck_assert(strstr(err, "c.yaml:3:15: error: unknown severity 'hgh' (did you mean 'high'?)\n"));
	ck_assert(strstr(err, "c.yaml:4:11: error: unknown mode 'x'"));
	ck_assert_uint_eq(count_lines(err), 2);
	free(out), free(err);

	tu_write(tu_path(dir, "aupd.yaml"), "notifiers:\n  oncall:\n    url: https://h.example/x\n"
					    "    secret_file: s\n");
	ck_assert_int_eq(run("rules check --config aupd.yaml a.yaml", &out, &err), 1);
	ck_assert(strstr(err, "unknown notifier 'compliance'"));
	free(out), free(err);
	/* without FILE|DIR, the configuration's rules: (more paths than arguments) */
	tu_write(tu_path(dir, "aupd2.yaml"), "rules: [a.yaml, b.yaml, a2.yaml, b2.yaml]\n"
					     "notifiers:\n  compliance:\n    url: https://h.example/x\n"
					     "    secret_file: s\n");
	tu_write(tu_path(dir, "a2.yaml"), "rules:\n  - id: r5\n");
	tu_write(tu_path(dir, "b2.yaml"), "rules:\n  - id: r6\n");
	ck_assert_int_eq(run("rules check -c aupd2.yaml", &out, &err), 0);
	ck_assert_msg(strncmp(out, "OK: 4 rules, 1 escalation, 1 exemption in 4 files", 48) == 0,
		      "%s", out);
	free(out), free(err);
	ck_assert_int_eq(run("rules check", &out, &err), 2);
	free(out), free(err);
	ck_assert_int_eq(run("rules check --bogus a.yaml", &out, &err), 2);
	free(out), free(err);
	ck_assert_int_eq(run("rules lint a.yaml", &out, &err), 2);
	free(out), free(err);
	ck_assert_int_eq(run("rules check --help", &out, &err), 0);
	ck_assert(strstr(out, "usage: aupd rules check"));
	free(out), free(err);
}
END_TEST

START_TEST(rules_test)
{
	char *out, *err;
	const char *last;

	tu_write(tu_path(dir, "ok.yaml"),
		 "rules:\n  - {id: r, when: {actor: bad}}\n"
		 "tests:\n"
		 "  - name: bad actors are denied\n"
		 "    events:\n"
		 "      - {id: 1, time: 2026-01-15T10:00:00Z, tenant: 7, actor: bad, action: x.y}\n"
		 "      - {id: 2, time: 2026-01-15T10:00:00Z, tenant: 7, actor: ok, action: x.y}\n"
		 "    expect:\n"
		 "      - {id: 1, verdict: deny, rules: [r]}\n"
		 "      - {id: 2, verdict: allow}\n"
		 "  - name: default effect\n"
		 "    default_effect: flag\n"
		 "    events: [{id: 3, time: 2026-01-15T10:00:00Z, tenant: t, actor: ok, action: x.y}]\n"
		 "    expect: [{id: 3, verdict: flag, rules: []}]\n");
	ck_assert_int_eq(run("rules test ok.yaml", &out, &err), 0);
	ck_assert_str_eq(out, "2 passed, 0 failed\n");
	free(out), free(err);

	tu_write(tu_path(dir, "bad.yaml"),
		 "tests:\n"
		 "  - name: wrong expectation\n"
		 "    events:\n"
		 "      - {id: 4, time: 2026-01-15T10:00:00Z, tenant: t, actor: bad, action: x.y}\n"
		 "    expect: [{id: 4, verdict: allow, rules: [r]}]\n"
		 "  - name: broken event\n"
		 "    events:\n"
		 "      - {id: 5, time: yesterday, tenant: t, actor: bad, action: x.y}\n"
		 "    expect: [{id: 5, verdict: deny}]\n");
	ck_assert_int_eq(run("rules test ok.yaml bad.yaml", &out, &err), 1);
	ck_assert_msg(strstr(out, "bad.yaml:2: test 'wrong expectation': event 4: expected verdict "
				  "allow, rules [r]; got verdict deny, rules [r]\n"),
		      "%s", out);
	ck_assert_msg(strstr(out, "bad.yaml:6: test 'broken event': event 5 (line 8) is invalid: "
				  "time: not an RFC 3339"),
		      "%s", out);
	ck_assert(strstr(out, "(at /time)"));
	last = out + strlen(out) - 1;
	while (last > out && last[-1] != '\n')
		last--;
	ck_assert_str_eq(last, "2 passed, 2 failed\n");
	free(out), free(err);
}
END_TEST

static Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("replay");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, replay_verdicts);
	tcase_add_test(tc, replay_overdue_and_stdin);
	tcase_add_test(tc, replay_matches_the_evaluator);
	tcase_add_test(tc, replay_usage);
	tcase_add_test(tc, rules_check);
	tcase_add_test(tc, rules_test);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(replay_suite());
}
