/* fuzz_config.c - libFuzzer target: the YAML configuration loader */
#include "aupd/config.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag_list dl = {0};
	struct config *cfg = config_load_buf("/fuzz/aupd.yaml", (const char *)data, size, &dl);

	/* exactly one of: a configuration, or at least one positioned error */
	if (!cfg == (dl.n == 0))
		__builtin_trap();
	config_free(cfg);
	diag_list_free(&dl);
	return 0;
}
