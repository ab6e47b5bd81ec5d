/* eval_bench.c - the policy layer alone: generate event streams, time evaluation, measure windows */
#include "aupd/event.h"
#include "aupd/policy.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
	"usage: eval_bench --generate N --out FILE [--span-hours H] [--seed S]\n"
	"       eval_bench --rules DIR --input FILE [--repeat R]\n"
	"\n"
	"--generate writes N realistic events as NDJSON (tenants, actors, face, video,\n"
	"data and storage actions, datasets of the sample rules), times spread over H hours.\n"
	"--rules/--input parses the events first, then times policy_eval over all of them\n"
	"on one thread (the parse is not timed), then measures peak RSS and bytes per\n"
	"window entry while streaming (parse, judge, free one event at a time).\n";

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *
pick(const char *const *v, const unsigned *weights, size_t n)
{
	unsigned total = 0, r;

	for (size_t i = 0; i < n; i++)
		total += weights[i];
	r = (unsigned)(rnd() % total);
	for (size_t i = 0; i < n; i++) {
		if (r < weights[i])
			return v[i];
		r -= weights[i];
	}
	return v[n - 1];
}

/*
 * A mostly compliant stream, as real telemetry is: purposes match what the
 * data was collected for, face searches name their case, quotas are rarely
 * exceeded; a few percent of events break a rule.
 */
static int
generate(long n, const char *out, double span_hours)
{
	static const char *const actions[] = {"face.search", "face.match",   "face.enroll",
					      "data.read",   "data.export",  "data.delete",
					      "video.index", "storage.write"};
	static const unsigned aw[] = {20, 4, 2, 30, 2, 4, 6, 32};
	static const struct {
		const char *dataset, *purpose;
	} data[] = {
		{"visa-photos", "visa-processing"},	 {"border-crossings", "border-crossing"},
		{"benefits-claims", "benefits-administration"}, {"cctv-archive", "public-safety"},
		{"", "analytics"},
	};
	static const unsigned dw[] = {25, 15, 15, 10, 35};
	static const char *const odd_purposes[] = {"case-investigation", "marketing", "fraud-review"};
	const aupd_time start = 1795600000LL * AUPD_USEC; /* 2026-11-25 */
	const double step = span_hours * 3600.0 * AUPD_USEC / (double)n;
	FILE *f = fopen(out, "w");
	char ts[40], created[40];

	if (!f) {
		perror(out);
		return 1;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	for (long i = 0; i < n; i++) {
		aupd_time t = start + (aupd_time)(step * (double)i);
		const char *action = pick(actions, aw, 8);
		unsigned d = 0, r = (unsigned)(rnd() % 100);
		const char *purpose;
		long tenant = (long)(rnd() % 2000), actor = (long)(rnd() % 20000);

		for (unsigned acc = dw[0]; r >= acc && d < 4; acc += dw[++d])
			;
		purpose = rnd() % 100 < 3 ? odd_purposes[rnd() % 3] : data[d].purpose;
		time_format_ms(t, ts, sizeof(ts));
		time_format_ms(t - (aupd_time)(rnd() % (120ULL * 86400)) * AUPD_USEC, created,
			       sizeof(created));
		fprintf(f,
			"{\"id\":\"ev-%ld\",\"time\":\"%s\",\"tenant\":\"tenant-%ld\","
			"\"actor\":\"actor-%ld\",\"action\":\"%s\",\"purpose\":\"%s\"",
			i, ts, tenant, actor, action, purpose);
		fprintf(f, ",\"resource\":{\"id\":\"blob://store/%llu\",\"created\":\"%s\"",
			(unsigned long long)(rnd() % 5000000), created);
		if (*data[d].dataset)
			fprintf(f, ",\"dataset\":\"%s\"", data[d].dataset);
		fprintf(f, "},\"quantity\":%u", (unsigned)(1 + rnd() % 4));
		if (rnd() % 100 < 95)
			fprintf(f, ",\"attributes\":{\"case\":\"C-%u\",\"region\":\"eu-1\"}",
				(unsigned)(rnd() % 5000));
		fputs("}\n", f);
	}
	fclose(f);
	return 0;
}

static long
rss_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

static double
now_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ruleset *
load_rules(const char *dir)
{
	const char *paths[1] = {dir};
	struct diag_list dl = {0};
	struct ruleset *rs = ruleset_load(paths, 1, NULL, &dl);

	for (size_t i = 0; i < dl.n; i++) {
		char line[1024];

		aupd_error_format(&dl.v[i], line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	diag_list_free(&dl);
	return rs;
}

static int
parse_line(const char *line, size_t len, struct event *ev)
{
	struct event_problem prob;

	return event_parse(line, len, ev, &prob, NULL) == EVENT_PARSE_OK ? 0 : -1;
}

static int
bench(const char *rules, const char *input, int repeat)
{
	struct ruleset *rs = load_rules(rules);
	struct event *evs = NULL;
	size_t n = 0, entries, bytes;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	long verdicts[3] = {0}, fired = 0;
	double t0, t1, w0, w1;
	FILE *f;

	if (!rs)
		return 1;
	/* first, streaming: what the windows themselves cost in memory */
	{
		struct policy_state *st = policy_state_new();
		long before = rss_kb("VmRSS:");

		f = fopen(input, "r");
		while (f && (len = getline(&line, &lcap, f)) > 0) {
			struct event ev;
			struct verdict v;

			if (parse_line(line, (size_t)len, &ev) < 0)
				continue;
			policy_eval(rs, st, &ev, EFFECT_ALLOW, 0, &v);
			verdict_clear(&v);
			event_clear(&ev);
		}
		if (f)
			fclose(f);
		entries = policy_state_window_entries(st, &bytes);
		printf("windows: %zu entries, %zu bytes (%.1f bytes per entry); RSS grew %ld KiB "
		       "(%.1f bytes per entry); peak RSS %ld KiB\n",
		       entries, bytes, entries ? (double)bytes / (double)entries : 0.0,
		       rss_kb("VmRSS:") - before,
		       entries ? (double)(rss_kb("VmRSS:") - before) * 1024.0 / (double)entries : 0.0,
		       rss_kb("VmHWM:"));
		policy_state_free(st);
	}
	/*
	 * Then throughput: events are parsed in chunks of 256 (the size of a
	 * batch in flight, as in the daemon where a verdict follows its parse
	 * while the event is in cache) and only policy_eval is timed.
	 */
	for (int r = 0; r < repeat; r++) {
		struct policy_state *st = policy_state_new();
		double cpu = 0;

		n = 0;
		if (!(f = fopen(input, "r"))) {
			perror(input);
			return 1;
		}
		w0 = now_s(CLOCK_MONOTONIC);
		for (;;) {
			size_t got = 0;

			if (!evs)
				evs = xcalloc(256, sizeof(*evs));
			while (got < 256 && (len = getline(&line, &lcap, f)) > 0)
				if (parse_line(line, (size_t)len, &evs[got]) == 0)
					got++;
			if (got == 0)
				break;
			t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
			for (size_t i = 0; i < got; i++) {
				struct verdict v;

				policy_eval(rs, st, &evs[i], EFFECT_ALLOW, 0, &v);
				verdicts[v.verdict]++;
				fired += (long)v.n_matched;
				verdict_clear(&v);
			}
			t1 = now_s(CLOCK_THREAD_CPUTIME_ID);
			cpu += t1 - t0;
			for (size_t i = 0; i < got; i++)
				event_clear(&evs[i]);
			n += got;
		}
		fclose(f);
		w1 = now_s(CLOCK_MONOTONIC);
		entries = policy_state_window_entries(st, &bytes);
		printf("evaluation: %.0f events/s on one core (%zu events, evaluation cpu %.3f s, "
		       "with parsing %.3f s wall); verdicts allow %ld flag %ld deny %ld; rules fired "
		       "%ld; window entries %zu\n",
		       (double)n / cpu, n, cpu, w1 - w0, verdicts[0], verdicts[1], verdicts[2], fired,
		       entries);
		policy_state_free(st);
		memset(verdicts, 0, sizeof(verdicts));
		fired = 0;
	}
	free(evs);

	free(line);
	ruleset_unref(rs);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"generate", required_argument, NULL, 'g'}, {"out", required_argument, NULL, 'o'},
		{"span-hours", required_argument, NULL, 's'}, {"seed", required_argument, NULL, 'S'},
		{"rules", required_argument, NULL, 'r'},    {"input", required_argument, NULL, 'i'},
		{"repeat", required_argument, NULL, 'R'},   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL, *rules = NULL, *input = NULL;
	long gen = 0;
	double span = 12;
	int c, repeat = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			gen = atol(optarg);
			break;
		case 'o':
			out = optarg;
			break;
		case 's':
			span = atof(optarg);
			break;
		case 'S':
			rng_state = strtoull(optarg, NULL, 10) | 1;
			break;
		case 'r':
			rules = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case 'R':
			repeat = atoi(optarg);
			break;
		default:
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (gen > 0 && out)
		return generate(gen, out, span);
	if (rules && input)
		return bench(rules, input, repeat > 0 ? repeat : 1);
	fputs(usage, stderr);
	return 2;
}
