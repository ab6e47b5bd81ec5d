/* keyfilter.c - a Bloom filter over stored event keys: most new events skip the index lookup */
#include "aupd/keyfilter.h"
#include "aupd/util.h"

#include <stdlib.h>

#define HASHES 6
#define BITS_PER_KEY 16
/*
 * The smallest filter: 512 bytes.  At the default limits.keys_in_memory the
 * filter starts at 4 MiB anyway (room for twice the keys stored plus those
 * kept in memory); only a small setting, as in tests, gets one this small,
 * and then it is rebuilt (larger) as soon as it is full.
 */
#define MIN_BITS (1ULL << 12)

struct keyfilter {
	uint64_t *words;
	uint64_t mask; /* bits - 1 (a power of two) */
	uint64_t keys;
	uint64_t capacity;
};

/*
 * Event keys are already uniform (the first 8 bytes of a SHA-256), so the
 * probe positions come from the key itself by double hashing.
 */
static uint64_t
probe(int64_t key, int i)
{
	uint64_t h1 = (uint64_t)key, h2 = ((uint64_t)key >> 32 | (uint64_t)key << 32) | 1;

	return h1 + (uint64_t)i * h2;
}

bool
keyfilter_maybe(const struct keyfilter *kf, int64_t key)
{
	for (int i = 0; i < HASHES; i++) {
		uint64_t b = probe(key, i) & kf->mask;

		if (!(kf->words[b >> 6] & (1ULL << (b & 63))))
			return false;
	}
	return true;
}

void
keyfilter_add(struct keyfilter *kf, int64_t key)
{
	for (int i = 0; i < HASHES; i++) {
		uint64_t b = probe(key, i) & kf->mask;

		kf->words[b >> 6] |= 1ULL << (b & 63);
	}
	kf->keys++;
}

uint64_t
keyfilter_keys(const struct keyfilter *kf)
{
	return kf->keys;
}

bool
keyfilter_full(const struct keyfilter *kf)
{
	return kf->keys > kf->capacity;
}

struct keyfilter *
keyfilter_new(uint64_t n)
{
	struct keyfilter *kf = xcalloc(1, sizeof(*kf));
	uint64_t bits = MIN_BITS;

	while (bits < 2 * n * BITS_PER_KEY)
		bits <<= 1;
	kf->mask = bits - 1;
	kf->capacity = bits / BITS_PER_KEY;
	kf->words = xcalloc(bits / 64, sizeof(uint64_t));
	return kf;
}

void
keyfilter_free(struct keyfilter *kf)
{
	if (!kf)
		return;
	free(kf->words);
	free(kf);
}
