/* fuzz_rules.c - libFuzzer target: the rules loader and compiler */
#include "aupd/policy.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const notifiers[] = {"compliance"};
	struct ruleset_opts opts = {.notifiers = notifiers, .n_notifiers = 1};
	struct diag_list dl = {0};
	const char *paths[1] = {path};
	struct ruleset *rs;
	int fd;

	if (!path[0])
		snprintf(path, sizeof(path), "/dev/shm/aupd-fuzz-rules-%d.yaml", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	rs = ruleset_load(paths, 1, &opts, &dl);
	if (!rs == (dl.n == 0))
		__builtin_trap();
	if (rs) {
		json_t *d = ruleset_describe(rs);

		json_decref(d);
		ruleset_unref(rs);
	}
	diag_list_free(&dl);
	return 0;
}
