/* htab.c - hashing, open-addressing pointer tables, and immutable string maps */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t
rotl(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static inline uint64_t
mix(uint64_t k)
{
	k *= 0x87c37b91114253d5ULL;
	k = rotl(k, 31);
	return k * 0x4cf5ad432745937fULL;
}

uint64_t
hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
	uint64_t k;

	while (len >= 8) {
		memcpy(&k, p, 8);
		h = rotl(h ^ mix(k), 27) * 5 + 0x52dce729;
		p += 8;
		len -= 8;
	}
	if (len) {
		/*
		 * 1 to 7 bytes, read without a variable-length copy: two
		 * overlapping 4-byte words, or first, middle and last byte;
		 * either covers every byte (len is mixed in above).
		 */
		if (len >= 4) {
			uint32_t a, b;

			memcpy(&a, p, 4);
			memcpy(&b, p + len - 4, 4);
			k = a | (uint64_t)b << 32;
		} else {
			k = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
		}
		h ^= mix(k);
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static size_t
htab_place(struct hslot *slots, size_t cap, struct hslot item)
{
	size_t i = (size_t)item.h & (cap - 1);

	while (slots[i].h)
		i = (i + 1) & (cap - 1);
	slots[i] = item;
	return i;
}

size_t
htab_insert(struct htab *t, uint32_t h, void *p)
{
	if ((t->n + 1) * 2 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct hslot *slots = xcalloc_table(cap, sizeof(*slots));

		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i].h)
				htab_place(slots, cap, t->slots[i]);
		xfree_table(t->slots, t->cap, sizeof(*t->slots));
		t->slots = slots;
		t->cap = cap;
	}
	t->n++;
	return htab_place(t->slots, t->cap, (struct hslot){.h = h, .p = p});
}

bool
htab_remove_at(struct htab *t, size_t i)
{
	size_t mask = t->cap - 1, hole = i, j = i;
	bool refilled = false;

	t->slots[i] = (struct hslot){0};
	t->n--;
	/* backward-shift deletion keeps every probe chain unbroken */
	for (;;) {
		j = (j + 1) & mask;
		if (!t->slots[j].h)
			break;
		size_t k = htab_start(t, t->slots[j].h);
		bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);

		if (stays)
			continue;
		t->slots[hole] = t->slots[j];
		t->slots[j] = (struct hslot){0};
		if (hole == i)
			refilled = true;
		hole = j;
	}
	return refilled;
}

void
htab_free(struct htab *t)
{
	xfree_table(t->slots, t->cap, sizeof(*t->slots));
	t->slots = NULL;
	t->cap = t->n = 0;
}

void
strmap_build(struct strmap *m, struct arena *a, const char *const *keys, void *const *vals,
	     size_t n)
{
	memset(m, 0, sizeof(*m));
	m->lkeys = arena_alloc(a, (n + 1) * sizeof(*m->lkeys));
	m->lvals = arena_alloc(a, (n + 1) * sizeof(*m->lvals));
	if (n > STRMAP_LINEAR) {
		m->cap = 16;
		while (m->cap < n * 2)
			m->cap *= 2;
		m->keys = arena_alloc(a, m->cap * sizeof(*m->keys));
		m->vals = arena_alloc(a, m->cap * sizeof(*m->vals));
		m->hashes = arena_alloc(a, m->cap * sizeof(*m->hashes));
	}
	for (size_t i = 0; i < n; i++) {
		void *v = vals ? vals[i] : NULL;

		if (m->cap) {
			uint64_t h = hash_str(keys[i]);
			size_t j = (size_t)(h ^ (h >> 29)) & (m->cap - 1);
			bool dup = false;

			while (m->keys[j] && !dup) {
				dup = m->hashes[j] == h && !strcmp(m->keys[j], keys[i]);
				j = (j + 1) & (m->cap - 1);
			}
			if (dup)
				continue;
			m->keys[j] = keys[i];
			m->vals[j] = v;
			m->hashes[j] = h;
		} else {
			bool dup = false;

			for (size_t j = 0; j < m->n && !dup; j++)
				dup = !strcmp(m->lkeys[j], keys[i]);
			if (dup)
				continue;
		}
		m->lkeys[m->n] = keys[i];
		m->lvals[m->n] = v;
		m->n++;
	}
}

void *
strmap_get(const struct strmap *m, const char *key, bool *found)
{
	if (found)
		*found = false;
	if (!m->cap) {
		for (size_t i = 0; i < m->n; i++) {
			if (m->lkeys[i][0] == key[0] && !strcmp(m->lkeys[i], key)) {
				if (found)
					*found = true;
				return m->lvals[i];
			}
		}
		return NULL;
	}
	uint64_t h = hash_str(key);
	size_t j = (size_t)(h ^ (h >> 29)) & (m->cap - 1);

	while (m->keys[j]) {
		if (m->hashes[j] == h && !strcmp(m->keys[j], key)) {
			if (found)
				*found = true;
			return m->vals[j];
		}
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}
