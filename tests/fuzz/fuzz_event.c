/* fuzz_event.c - libFuzzer target: request bodies through the event parser and validator */
#include "aupd/event.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int fmt = BODY_JSON; fmt <= BODY_NDJSON; fmt++) {
		struct body_item *items;
		struct aupd_error err;
		size_t n;
		bool single, too_many;

		if (body_split((const char *)data, size, (enum body_format)fmt, 64, &items, &n, &single,
			       &too_many, &err) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct event_problem prob;
			struct event ev;

			if (!items[i].json)
				continue;
			if (event_from_json(items[i].json, &ev, &prob) == 0) {
				/* every accessor must be safe on a validated event */
				(void)event_resource(&ev, "id");
				(void)event_resource(&ev, "dataset");
				event_clear(&ev);
			} else if (strlen(prob.detail) == 0) {
				__builtin_trap(); /* a rejection always says why */
			}
		}
		body_items_free(items, n);
	}
	return 0;
}
