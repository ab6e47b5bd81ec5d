/* fuzz_eval.c - libFuzzer target: condition evaluation, windows and verdicts over event streams */
#include "aupd/event.h"
#include "aupd/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct ruleset *rs;

/* A ruleset that exercises every operator and rule kind. */
static const char rules_yaml[] =
	"version: 1\n"
	"lists:\n"
	"  face: [face.search, face.match]\n"
	"datasets:\n"
	"  visa: {classification: biometric, collected_for: visa-processing}\n"
	"rules:\n"
	"  - id: cap\n"
	"    when: {action: {in: $face}}\n"
	"    limit: {sum: quantity, by: [tenant, actor], window: 1h, max: 10}\n"
	"  - id: count\n"
	"    when: {any: [{actor: {glob: 'a*'}}, {purpose: {regex: '^case-[0-9]+$'}}]}\n"
	"    limit: {window: 10m, max: 3}\n"
	"  - id: ret\n"
	"    when: {resource.classification: biometric}\n"
	"    retention: {age_of: resource.created, max: 30d, track: {deleted_by: {action: data.delete}}}\n"
	"  - id: reuse\n"
	"    when: {resource.classification: biometric}\n"
	"    reuse: {allowed: {visa-processing: [visa-processing]}, unknown: deny}\n"
	"  - id: plain\n"
	"    effect: flag\n"
	"    mode: shadow\n"
	"    when: {all: [{quantity: {gte: 100, lt: 1e12}}, {not: {tenant: {ne: t1}}},\n"
	"                 {attributes.a.b: {exists: true}}, {time: {gt: '2020-01-01T00:00:00Z'}},\n"
	"                 {resource.id: {not_in: [x, y]}}]}\n"
	"escalations:\n"
	"  - id: esc\n"
	"    when: {verdict: deny}\n"
	"    threshold: {count: 2, by: [tenant], window: 1h}\n"
	"    level: warning\n"
	"exemptions:\n"
	"  - id: ex\n"
	"    rules: [cap]\n"
	"    when: {tenant: t2}\n"
	"    expires: 2030-01-01T00:00:00Z\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64];
	struct diag_list dl = {0};
	const char *paths[1] = {path};
	FILE *f;

	snprintf(path, sizeof(path), "/dev/shm/aupd-fuzz-eval-%d.yaml", (int)getpid());
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(rules_yaml, f);
	fclose(f);
	rs = ruleset_load(paths, 1, NULL, &dl);
	unlink(path);
	if (!rs) {
		for (size_t i = 0; i < dl.n; i++)
			fprintf(stderr, "%s:%d:%d: %s\n", dl.v[i].file, dl.v[i].line, dl.v[i].col,
				dl.v[i].msg);
		abort();
	}
	diag_list_free(&dl);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_state *st = policy_state_new();
	struct body_item *items;
	struct aupd_error err;
	struct strbuf sb;
	size_t n;
	bool single, too_many;

	sb_init(&sb);
	if (body_split((const char *)data, size, BODY_NDJSON, 256, &items, &n, &single, &too_many,
		       &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct escalation_hit *hits = NULL;
			struct event_problem prob;
			struct obligation *obs = NULL;
			struct event ev;
			struct verdict v;
			size_t nh, no;

			if (body_item_event(&items[i], &ev, &prob) < 0)
				continue;
			policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, &v);
			sb_reset(&sb);
			verdict_encode(&sb, &ev, &v, (int64_t)i + 1, ruleset_version(rs), ev.time, false);
			nh = policy_escalate(rs, st, &ev, NULL, &v, (int64_t)i + 1, ev.time, 0, &hits);
			for (size_t h = 0; h < nh; h++)
				escalation_hit_clear(&hits[h]);
			free(hits);
			verdict_clear(&v);
			no = policy_take_overdue(st, ev.time, &obs);
			for (size_t o = 0; o < no; o++) {
				struct verdict ov;

				policy_overdue_verdict(rs, &obs[o], &ov);
				sb_reset(&sb);
				overdue_encode(&sb, &obs[o], &ov, 1, ruleset_version(rs), ev.time);
				verdict_clear(&ov);
				obligation_clear(&obs[o]);
			}
			free(obs);
			event_clear(&ev);
		}
		body_items_free(items, n);
	}
	sb_free(&sb);
	policy_state_free(st);
	return 0;
}
