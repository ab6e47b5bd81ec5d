/* eventkeys.h - which (tenant, id) pairs are stored: the idempotency index, kept cheap to grow */
#ifndef AUPD_EVENTKEYS_H
#define AUPD_EVENTKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "aupd/store.h"

/*
 * Every stored event has a 64-bit key (store_event_key).  A B-tree keyed by
 * it takes one random page per event, which at millions of records makes
 * every commit rewrite thousands of pages.  So the keys of recent events
 * live in memory (they are also in the events table, in seq order) and go
 * into the event_keys table in bulk, sorted, every so many events;
 * a Bloom filter in front spares new events both lookups.
 *
 * The sequencer adds and merges; request threads may look up concurrently.
 */
struct eventkeys;

/*
 * Loads the filter and the recent keys (events after the last merge); keys
 * are merged every `merge_every` events (limits.keys_in_memory).  NULL with
 * `err`.
 */
struct eventkeys *eventkeys_load(struct dbconn *c, uint32_t merge_every, struct aupd_error *err);
void eventkeys_free(struct eventkeys *ek);

/*
 * The seq of the stored event (tenant, id) with this key, or 0 when none is
 * stored; -1 on a storage error.  `c` is the caller's own connection.
 */
int64_t eventkeys_find(struct eventkeys *ek, struct dbconn *c, int64_t key, const char *tenant,
		       const char *id, struct aupd_error *err);
/* The sequencer stored an event (inside its transaction). */
void eventkeys_add(struct eventkeys *ek, int64_t key, int64_t seq);
/*
 * True when enough recent keys gathered for a merge, or a merge in progress
 * is due its next slice (it keeps pace with the keys added meanwhile).
 */
bool eventkeys_merge_due(const struct eventkeys *ek);
/*
 * The next step of a merge of the recent keys into event_keys (the
 * sequencer, between batches): the first call sets the keys to merge aside,
 * 64 steps group them by their top bits, then 256 slices write them sorted,
 * each in a transaction of its own; the last records keys_merged_seq and
 * drops them from memory.  Until then its keys are found in memory.  0, or
 * -1 with `err` (nothing changed).
 */
int eventkeys_merge(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err);
/*
 * True while a larger Bloom filter is being built (a merge starts one when
 * the filter is full).
 */
bool eventkeys_rebuild_due(const struct eventkeys *ek);
/*
 * Adds the next slice of stored keys to the filter being built (event_keys
 * in key order, then the events not merged when it started; 8,192 keys a
 * slice at the default limits.keys_in_memory, 1/128 of it in general), and
 * puts it in use after the last; the sequencer calls it between batches.
 * Until then the full filter answers (only with more false positives).  0,
 * or -1 with `err` (the slice is read again next time).
 */
int eventkeys_rebuild(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err);
/* After a failed commit: reloads the recent keys from storage. */
int eventkeys_reload(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err);

#endif
