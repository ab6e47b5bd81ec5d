/* cli_rules.c - aupd rules check and aupd rules test: validate rule files and run their tests */
#include "aupd/cli.h"
#include "aupd/config.h"
#include "aupd/event.h"
#include "aupd/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	bool from_config = false;
	int rc;

	if ((rc = cli_subcommand(argc, argv, "rules", "check or test", rules_usage)) >= 0)
		return rc;
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

		if (cli_is_help(argv[i])) {
			fputs(rules_usage, stdout);
			free(paths);
			return 0;
		}
		if ((m = cli_option(argc, argv, &i, "--config", "-c", &val)) < 0) {
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
		if (!(cfg = cli_load_config(config))) {
			free(paths);
			return 1;
		}
		names = xcalloc(cfg->n_notifiers + 1, sizeof(*names));
		for (size_t i = 0; i < cfg->n_notifiers; i++)
			names[i] = cfg->notifiers[i].name;
		opts.notifiers = names;
		opts.n_notifiers = cfg->n_notifiers;
		if (n_paths == 0) {
			const char *note;
			size_t n = config_rules_to_load(cfg, &note);

			if (note)
				fprintf(stderr, "%s: warning: %s\n", cfg->rules[0], note);
			paths = xrealloc(paths, (cfg->n_rules + 1) * sizeof(*paths));
			for (size_t i = 0; i < n; i++)
				paths[n_paths++] = cfg->rules[i];
			from_config = true;
		}
	}
	if (n_paths == 0 && !from_config) {
		cli_error("rules %s: name at least one rule file or directory (see 'aupd rules --help')",
			  sub);
		free(paths);
		return 2;
	}
	rs = ruleset_load(paths, n_paths, &opts, &dl);
	if (!rs) {
		cli_print_diags(&dl);
		/* the summary line comes last all the same: no test could run */
		if (!strcmp(sub, "test")) {
			cli_error("rules test: the rules do not load (%zu error%s); no test ran",
				  dl.n, dl.n == 1 ? "" : "s");
			printf("0 passed, 0 failed\n");
		}
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
