/* keyfilter.h - a Bloom filter over stored event keys: most new events skip the index lookup */
#ifndef AUPD_KEYFILTER_H
#define AUPD_KEYFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/store.h"

struct keyfilter;

/*
 * Builds the filter from every key in the events table (one index scan).
 * Sized for twice the keys stored, at 16 bits a key (false positives about
 * 0.05%).  NULL with `err`.
 */
struct keyfilter *keyfilter_load(struct dbconn *c, struct aupd_error *err);
void keyfilter_free(struct keyfilter *kf);
/* False: the key was never added, so no stored event has it.  True: look it up. */
bool keyfilter_maybe(const struct keyfilter *kf, int64_t key);
void keyfilter_add(struct keyfilter *kf, int64_t key);
/* True when so many keys were added that it should be rebuilt larger. */
bool keyfilter_full(const struct keyfilter *kf);

#endif
