/* cli_rules.c - aupd rules check|test and aupd replay: the rules engine from the command line */
#include "aupd/cli.h"
#include "aupd/config.h"
#include "aupd/event.h"
#include "aupd/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MAX_LINE (8u << 20)

static const char rules_usage[] =
	"usage: aupd rules check [--config FILE] FILE|DIR...\n"
	"       aupd rules test [--config FILE] FILE|DIR...\n"
	"\n"
	"check  loads and validates rule files (a directory contributes its *.yaml files in\n"
	"       name order) and prints every error as FILE:LINE:COL: error: MESSAGE.\n"
	"test   runs the tests: cases of the files against the loaded rules and prints\n"
	"       each failure, then 'N passed, N failed'.\n"
	"\n"
	"  -c, --config FILE   also check notify: names against this configuration's\n"
	"                      notifiers; without FILE|DIR, use its rules: paths\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 success, 1 errors or failed tests, 2 bad usage.\n";

static const char replay_usage[] =
	"usage: aupd replay --rules FILE|DIR [--rules ...] [--format ndjson]\n"
	"                   [--default-effect allow|flag|deny] EVENTS.ndjson\n"
	"\n"
	"Judges events offline with fresh in-memory state and prints one verdict JSON per\n"
	"line: seq counts 1, 2, 3... and decided_at is the event's own time, so the output\n"
	"is reproducible.  EVENTS is NDJSON, one event per line ('-' reads stdin).  Before\n"
	"each event, a retention-overdue record is printed for every deletion obligation\n"
	"whose deadline is at or before that event's time (decided_at: that event's time).\n"
	"A resent event (same tenant and id)\n"
	"prints its original verdict with \"duplicate\": true.  A line that is not a valid\n"
	"event is reported on stderr as EVENTS:LINE: error: DETAIL and skipped.\n"
	"\n"
	"  -r, --rules FILE|DIR      rule files or directories (repeatable)\n"
	"  -f, --format ndjson       the input format (only ndjson)\n"
	"  -d, --default-effect E    verdict when no rule fires (default allow)\n"
	"  -h, --help                show this help\n"
	"\n"
	"Exit status: 0 success, 1 rules that do not load or bad event lines, 2 bad usage.\n";

static bool
is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/*
 * Matches "--name VALUE", "--name=VALUE" or "-s VALUE" at argv[*i]; sets
 * *val, advances *i past a separate value.  -1 when the value is missing.
 */
static int
option(int argc, char **argv, int *i, const char *name, const char *shortname,
       const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (!strncmp(a, name, n) && a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (strcmp(a, name) != 0 && (!shortname || strcmp(a, shortname) != 0))
		return 0;
	if (*i + 1 >= argc) {
		cli_error("%s needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

static void
print_diags(const struct diag_list *dl)
{
	char line[1024];

	for (size_t i = 0; i < dl->n; i++) {
		aupd_error_format(&dl->v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
}

static const char *
plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int
rules_check(struct ruleset *rs)
{
	size_t nr = ruleset_n_rules(rs), ne = ruleset_n_escalations(rs);
	size_t nx = ruleset_n_exemptions(rs), nf = ruleset_n_files(rs);

	printf("OK: %zu %s, %zu %s, %zu %s in %zu %s (%s)\n", nr, plural(nr, "rule", "rules"), ne,
	       plural(ne, "escalation", "escalations"), nx, plural(nx, "exemption", "exemptions"),
	       nf, plural(nf, "file", "files"), ruleset_version(rs));
	return 0;
}

static int
rules_test(struct ruleset *rs)
{
	struct strbuf report;
	size_t passed = 0, failed = 0;

	sb_init(&report);
	for (size_t i = 0; i < ruleset_n_tests(rs); i++) {
		sb_reset(&report);
		if (ruleset_test_run(rs, i, &report)) {
			passed++;
		} else {
			failed++;
			fputs(report.buf ? report.buf : "", stdout);
		}
	}
	sb_free(&report);
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}

int
cmd_rules(int argc, char **argv)
{
	const char *config = NULL, *sub;
	const char **paths;
	const char **names = NULL;
	struct config *cfg = NULL;
	struct ruleset_opts opts = {0};
	struct diag_list dl = {0};
	struct ruleset *rs;
	size_t n_paths = 0;
	int rc;

	if (argc < 2 || is_help(argv[1])) {
		fputs(rules_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	if (strcmp(sub, "check") != 0 && strcmp(sub, "test") != 0) {
		cli_error("rules: unknown subcommand '%s' (check or test)", sub);
		return 2;
	}
	paths = calloc((size_t)argc + 1, sizeof(*paths));
	if (!paths)
		return 2;
	for (int i = 2; i < argc; i++) {
		const char *val;
		int m;

		if (is_help(argv[i])) {
			fputs(rules_usage, stdout);
			free(paths);
			return 0;
		}
		if ((m = option(argc, argv, &i, "--config", "-c", &val)) < 0) {
			free(paths);
			return 2;
		}
		if (m) {
			config = val;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("rules %s: unknown option '%s' (see aupd rules --help)", sub,
				  argv[i]);
			free(paths);
			return 2;
		}
		paths[n_paths++] = argv[i];
	}
	if (config) {
		if (!(cfg = config_load(config, &dl))) {
			print_diags(&dl);
			diag_list_free(&dl);
			free(paths);
			return 1;
		}
		names = calloc(cfg->n_notifiers + 1, sizeof(*names));
		for (size_t i = 0; names && i < cfg->n_notifiers; i++)
			names[i] = cfg->notifiers[i].name;
		opts.notifiers = names;
		opts.n_notifiers = cfg->n_notifiers;
		if (n_paths == 0)
			for (size_t i = 0; i < cfg->n_rules; i++)
				paths[n_paths++] = cfg->rules[i];
	}
	if (n_paths == 0) {
		cli_error("rules %s: name at least one rule file or directory", sub);
		fputs(rules_usage, stderr);
		free(paths);
		return 2;
	}
	rs = ruleset_load(paths, n_paths, &opts, &dl);
	if (!rs) {
		print_diags(&dl);
		rc = 1;
	} else {
		rc = !strcmp(sub, "check") ? rules_check(rs) : rules_test(rs);
	}
	ruleset_unref(rs);
	diag_list_free(&dl);
	free(names);
	config_free(cfg);
	free(paths);
	if (fflush(stdout) != 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		return 1;
	}
	return rc;
}

/* ---- replay ---- */

/* An event already judged, for resends: its verdict without the obligations. */
struct seen {
	struct seen *next;
	uint64_t hash;
	int64_t seq;
	aupd_time decided_at;
	struct verdict v;
	char key[];
};

struct seen_set {
	struct seen **buckets;
	size_t cap, n;
};

static uint64_t
fnv1a(const char *a, size_t alen, const char *b, size_t blen)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < alen; i++)
		h = (h ^ (unsigned char)a[i]) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (size_t i = 0; i < blen; i++)
		h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
	return h;
}

static struct seen *
seen_find(struct seen_set *s, const struct event *ev, uint64_t h)
{
	size_t tl = strlen(ev->tenant);

	if (!s->cap)
		return NULL;
	for (struct seen *e = s->buckets[h & (s->cap - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, ev->tenant) && !strcmp(e->key + tl + 1, ev->id))
			return e;
	return NULL;
}

static struct seen *
seen_add(struct seen_set *s, const struct event *ev, uint64_t h)
{
	size_t tl = strlen(ev->tenant), il = strlen(ev->id);
	struct seen *e;

	if (s->n >= s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct seen **b = xcalloc(cap, sizeof(*b));

		for (size_t i = 0; i < s->cap; i++) {
			for (struct seen *x = s->buckets[i], *next; x; x = next) {
				next = x->next;
				x->next = b[x->hash & (cap - 1)];
				b[x->hash & (cap - 1)] = x;
			}
		}
		free(s->buckets);
		s->buckets = b;
		s->cap = cap;
	}
	e = xcalloc(1, sizeof(*e) + tl + il + 2);
	e->hash = h;
	memcpy(e->key, ev->tenant, tl + 1);
	memcpy(e->key + tl + 1, ev->id, il + 1);
	e->next = s->buckets[h & (s->cap - 1)];
	s->buckets[h & (s->cap - 1)] = e;
	s->n++;
	return e;
}

static void
seen_free(struct seen_set *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		for (struct seen *x = s->buckets[i], *next; x; x = next) {
			next = x->next;
			verdict_clear(&x->v);
			free(x);
		}
	}
	free(s->buckets);
}

struct replay {
	struct ruleset *rs;
	struct policy_state *st;
	enum effect default_effect;
	struct seen_set seen;
	struct strbuf out;
	int64_t seq;
	const char *name;
	bool bad;
};

static void
emit_overdue(struct replay *r, aupd_time now)
{
	struct obligation *obs = NULL;
	size_t n = policy_take_overdue(r->st, now, &obs);

	for (size_t i = 0; i < n; i++) {
		struct verdict v;

		policy_overdue_verdict(r->rs, &obs[i], &v);
		/* recorded when noticed, as the daemon does: at the next event's time */
		overdue_encode(&r->out, &obs[i], &v, ++r->seq, ruleset_version(r->rs), now);
		sb_addc(&r->out, '\n');
		verdict_clear(&v);
		obligation_clear(&obs[i]);
	}
	free(obs);
}

static void
replay_line(struct replay *r, const char *line, size_t len, size_t lineno)
{
	struct event_problem prob;
	json_error_t jerr;
	struct event ev;
	struct verdict v;
	struct seen *s;
	json_t *doc;
	uint64_t h;

	doc = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!doc) {
		fprintf(stderr, "%s:%zu: error: invalid JSON: %s (column %d)\n", r->name, lineno,
			jerr.text, jerr.column);
		r->bad = true;
		return;
	}
	if (event_from_json(doc, &ev, &prob) < 0) {
		if (prob.pointer[0])
			fprintf(stderr, "%s:%zu: error: %s (at %s)\n", r->name, lineno, prob.detail,
				prob.pointer);
		else
			fprintf(stderr, "%s:%zu: error: %s\n", r->name, lineno, prob.detail);
		r->bad = true;
		json_decref(doc);
		return;
	}
	json_decref(doc);
	emit_overdue(r, ev.time);
	h = fnv1a(ev.tenant, strlen(ev.tenant), ev.id, strlen(ev.id));
	if ((s = seen_find(&r->seen, &ev, h))) {
		verdict_encode(&r->out, &ev, &s->v, s->seq, ruleset_version(r->rs), s->decided_at,
			       true);
		sb_addc(&r->out, '\n');
		event_clear(&ev);
		return;
	}
	policy_eval(r->rs, r->st, &ev, r->default_effect, 0, &v);
	verdict_encode(&r->out, &ev, &v, ++r->seq, ruleset_version(r->rs), ev.time, false);
	sb_addc(&r->out, '\n');
	s = seen_add(&r->seen, &ev, h);
	s->seq = r->seq;
	s->decided_at = ev.time;
	/* keep what a resend prints; obligations are not part of it */
	for (size_t i = 0; i < v.n_obligations; i++)
		obligation_clear(&v.obligations[i]);
	free(v.obligations);
	v.obligations = NULL;
	v.n_obligations = 0;
	s->v = v;
	event_clear(&ev);
}

static int
flush_out(struct replay *r)
{
	if (r->out.len && fwrite(r->out.buf, 1, r->out.len, stdout) != r->out.len)
		return -1;
	sb_reset(&r->out);
	return 0;
}

static int
replay_stream(struct replay *r, FILE *in)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, in)) >= 0) {
		size_t s = 0, e = (size_t)n;

		lineno++;
		while (s < e && (line[s] == ' ' || line[s] == '\t' || line[s] == '\r'))
			s++;
		while (e > s && (line[e - 1] == '\n' || line[e - 1] == '\r' || line[e - 1] == ' ' ||
				 line[e - 1] == '\t'))
			e--;
		if (s == e)
			continue;
		if (e - s > REPLAY_MAX_LINE) {
			fprintf(stderr, "%s:%zu: error: the line is longer than %u bytes\n", r->name,
				lineno, REPLAY_MAX_LINE);
			r->bad = true;
			continue;
		}
		replay_line(r, line + s, e - s, lineno);
		if (r->out.len >= (1u << 20) && flush_out(r) < 0) {
			rc = -1;
			break;
		}
	}
	if (ferror(in)) {
		cli_error("cannot read %s: %s", r->name, strerror(errno));
		r->bad = true;
	}
	free(line);
	if (rc == 0)
		rc = flush_out(r);
	return rc;
}

int
cmd_replay(int argc, char **argv)
{
	const char **paths = calloc((size_t)argc + 1, sizeof(*paths));
	const char *events = NULL, *format = "ndjson";
	struct replay r = {.default_effect = EFFECT_ALLOW};
	struct diag_list dl = {0};
	size_t n_paths = 0;
	FILE *in;
	int rc = 0;

	if (!paths)
		return 2;
	for (int i = 1; i < argc; i++) {
		const char *val;
		int m;

		if (is_help(argv[i])) {
			fputs(replay_usage, stdout);
			free(paths);
			return 0;
		}
		if ((m = option(argc, argv, &i, "--rules", "-r", &val)) > 0) {
			paths[n_paths++] = val;
		} else if (m == 0 && (m = option(argc, argv, &i, "--format", "-f", &val)) > 0) {
			format = val;
		} else if (m == 0 &&
			   (m = option(argc, argv, &i, "--default-effect", "-d", &val)) > 0) {
			if (effect_parse(val, &r.default_effect) < 0) {
				cli_error("replay: --default-effect is allow, flag or deny, not '%s'",
					  val);
				free(paths);
				return 2;
			}
		} else if (m < 0) {
			free(paths);
			return 2;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("replay: unknown option '%s' (see aupd replay --help)", argv[i]);
			free(paths);
			return 2;
		} else if (events) {
			cli_error("replay: one EVENTS file only ('%s' and '%s')", events, argv[i]);
			free(paths);
			return 2;
		} else {
			events = argv[i];
		}
	}
	if (strcmp(format, "ndjson") != 0) {
		cli_error("replay: unknown format '%s' (only ndjson)", format);
		free(paths);
		return 2;
	}
	if (n_paths == 0 || !events) {
		cli_error("replay: %s", n_paths == 0 ? "--rules FILE|DIR is required"
						     : "name the EVENTS file (or - for stdin)");
		fputs(replay_usage, stderr);
		free(paths);
		return 2;
	}
	if (!(r.rs = ruleset_load(paths, n_paths, NULL, &dl))) {
		print_diags(&dl);
		diag_list_free(&dl);
		free(paths);
		return 1;
	}
	free(paths);
	if (!strcmp(events, "-")) {
		in = stdin;
		r.name = "<stdin>";
	} else if (!(in = fopen(events, "r"))) {
		cli_error("cannot open %s: %s", events, strerror(errno));
		ruleset_unref(r.rs);
		return 1;
	} else {
		r.name = events;
	}
	r.st = policy_state_new();
	sb_init(&r.out);
	if (replay_stream(&r, in) < 0 || fflush(stdout) != 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		rc = 1;
	}
	if (in != stdin)
		fclose(in);
	if (r.bad)
		rc = 1;
	sb_free(&r.out);
	seen_free(&r.seen);
	policy_state_free(r.st);
	ruleset_unref(r.rs);
	return rc;
}
