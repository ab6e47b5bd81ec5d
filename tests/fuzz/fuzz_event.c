/*
 * fuzz_event.c - libFuzzer target: request bodies through the event parser and validator,
 * and the scanner held to the jansson path's answers on the same text
 */
#include "aupd/event.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever the scanner accepts, jansson and the validator accept with the same values. */
static void
scanner_agrees(const char *text, size_t len)
{
	struct event fast, slow;
	struct event_problem prob;
	json_t *doc;

	if (event_scan(text, len, &fast) < 0)
		return;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!doc || event_from_json(doc, &slow, &prob) < 0)
		__builtin_trap(); /* the scanner took what the contract refuses */
	if (!event_equal(&fast, &slow))
		__builtin_trap(); /* ... or read it differently */
	if (!event_attrs_consistent(&fast))
		__builtin_trap(); /* its quick view of the attributes says otherwise */
	event_clear(&slow);
	event_clear(&fast);
	json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scanner_agrees((const char *)data, size);
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

			if (body_item_event(&items[i], &ev, &prob) == 0) {
				/* every accessor must be safe on a validated event */
				(void)event_resource(&ev, "id");
				(void)event_resource(&ev, "dataset");
				(void)event_attributes(&ev);
				event_clear(&ev);
			} else if (strlen(prob.detail) == 0) {
				__builtin_trap(); /* a rejection always says why */
			}
		}
		body_items_free(items, n);
	}
	return 0;
}
