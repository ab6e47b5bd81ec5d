/* keyfilter.h - a Bloom filter over stored event keys: most new events skip the index lookup */
#ifndef AUPD_KEYFILTER_H
#define AUPD_KEYFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


struct keyfilter;

/*
 * An empty filter sized for twice `keys` keys, at 16 bits a key (false
 * positives about 0.05% when full).
 */
struct keyfilter *keyfilter_new(uint64_t keys);
void keyfilter_free(struct keyfilter *kf);
/* False: the key was never added, so no stored event has it.  True: look it up. */
bool keyfilter_maybe(const struct keyfilter *kf, int64_t key);
void keyfilter_add(struct keyfilter *kf, int64_t key);
/* How many keys were added (a key added twice counts twice). */
uint64_t keyfilter_keys(const struct keyfilter *kf);
/* True when so many keys were added that it should be rebuilt larger. */
bool keyfilter_full(const struct keyfilter *kf);

#endif
