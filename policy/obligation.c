/* obligation.c - open deletion obligations of retention rules: by key, and by deadline */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * A rule id shared by the obligations naming it: half a million open
 * obligations name a handful of rules.  Tenants are not interned: with
 * thousands of them, finding a tenant's shared copy costs a cache miss per
 * obligation opened, more than a copy in the node costs in memory.
 */
struct istr {
	uint64_t h;
	uint32_t refs;
	uint32_t len;
	char s[];
};

/*
 * One open obligation in one allocation: the interned rule id, and the
 * tenant, the resource id and the opening event's id after the header.  The
 * map's hash is not kept: it is recomputed from the key when the obligation
 * goes.
 */
struct obl_node {
	int64_t opened_seq;
	struct istr *rule;
	uint32_t heap_idx;
	uint32_t rid_len;
	uint16_t tenant_len;
	uint8_t effect;
	uint8_t severity;
	bool shadow;
	char strs[]; /* tenant '\0' resource_id '\0' opened_by '\0' */
};

static inline const char *
node_rid(const struct obl_node *n)
{
	return n->strs + n->tenant_len + 1;
}

static inline const char *
node_opened_by(const struct obl_node *n)
{
	return node_rid(n) + n->rid_len + 1;
}

/* What node_size() gave for a filled node. */
static size_t
node_bytes(const struct obl_node *n)
{
	return offsetof(struct obl_node, strs) + n->tenant_len + n->rid_len +
	       strlen(node_opened_by(n)) + 3;
}

static uint32_t
key_hash(const struct istr *rule, uint64_t tenant_h, uint64_t rid_h)
{
	uint64_t h = rule->h;

	h = h * 0x9e3779b97f4a7c15ULL + tenant_h;
	h = (h ^ (h >> 31)) * 0xff51afd7ed558ccdULL + rid_h;
	h ^= h >> 29;
	return htab_hash(h);
}

void
obl_init(struct obl_table *t)
{
	memset(t, 0, sizeof(*t));
}

/* The interned copy of s[0..len), or NULL. */
static struct istr *
istr_find(const struct obl_table *t, const char *s, size_t len, uint64_t h, size_t *slot)
{
	uint32_t sh = htab_hash(h);

	if (!t->strs.cap)
		return NULL;
	for (size_t i = htab_start(&t->strs, sh); t->strs.slots[i].h;
	     i = (i + 1) & (t->strs.cap - 1)) {
		struct istr *is = t->strs.slots[i].p;

		if (t->strs.slots[i].h == sh && is->len == len && !memcmp(is->s, s, len)) {
			if (slot)
				*slot = i;
			return is;
		}
	}
	return NULL;
}

/* The interned s with one more reference. */
static struct istr *
istr_get(struct obl_table *t, const char *s, size_t len, uint64_t h)
{
	struct istr *is = istr_find(t, s, len, h, NULL);

	if (!is) {
		is = xmalloc(sizeof(*is) + len + 1);
		is->h = h;
		is->refs = 0;
		is->len = (uint32_t)len;
		memcpy(is->s, s, len);
		is->s[len] = '\0';
		htab_insert(&t->strs, htab_hash(h), is);
	}
	is->refs++;
	return is;
}

/* istr_get(), without the lookup when the caller already found it (`known`). */
static struct istr *
istr_hold(struct obl_table *t, struct istr *known, const char *s, size_t len, uint64_t h)
{
	if (!known)
		return istr_get(t, s, len, h);
	known->refs++;
	return known;
}

static void
istr_put(struct obl_table *t, struct istr *is)
{
	size_t slot;

	if (--is->refs > 0)
		return;
	if (istr_find(t, is->s, is->len, is->h, &slot))
		htab_remove_at(&t->strs, slot);
	free(is);
}

/* One allocation holds the four strings; `rule` points at it (obligation_clear). */
static void
obligation_fill(struct obligation *dst, const char *rule, size_t rl, const char *tenant,
		size_t tl, const char *rid, size_t il, const char *by, size_t bl)
{
	char *p = xmalloc(rl + tl + il + bl + 4);

	dst->rule = p;
	memcpy(p, rule, rl + 1);
	p += rl + 1;
	dst->tenant = p;
	memcpy(p, tenant, tl + 1);
	p += tl + 1;
	dst->resource_id = p;
	memcpy(p, rid, il + 1);
	p += il + 1;
	dst->opened_by = p;
	memcpy(p, by, bl + 1);
	dst->owned = true;
}

void
obligation_clear(struct obligation *o)
{
	if (!o)
		return;
	if (o->owned)
		free(o->rule); /* the four strings are one allocation */
	memset(o, 0, sizeof(*o));
}

/* Copies n (due at `deadline`) out as an owned obligation with op `op`. */
static void
node_export(const struct obl_node *n, aupd_time deadline, enum obligation_op op,
	    struct obligation *out)
{
	const char *by = node_opened_by(n);

	memset(out, 0, sizeof(*out));
	out->op = op;
	out->deadline = deadline;
	out->opened_seq = n->opened_seq;
	out->effect = (enum effect)n->effect;
	out->severity = (enum severity)n->severity;
	out->shadow = n->shadow;
	obligation_fill(out, n->rule->s, n->rule->len, n->strs, n->tenant_len, node_rid(n),
			n->rid_len, by, strlen(by));
}

static void
node_free(struct obl_table *t, struct obl_node *n)
{
	istr_put(t, n->rule);
	sizepool_free(&t->pool, n, node_bytes(n));
}

void
obl_free_all(struct obl_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (!sizepool_pooled(node_bytes(t->heap[i].n)))
			free(t->heap[i].n); /* malloc's: the others go with the pool's chunks */
	sizepool_release(&t->pool);
	for (size_t i = 0; i < t->strs.cap; i++)
		if (t->strs.slots[i].h)
			free(t->strs.slots[i].p);
	free(t->heap);
	htab_free(&t->map);
	htab_free(&t->old);
	htab_free(&t->strs);
	obl_init(t);
}

static void
okey_init_rule(const struct obl_table *t, struct obl_key *k, const char *rule, size_t rl,
	       uint64_t rh, const char *tenant, const char *rid)
{
	k->rule = rule;
	k->tenant = tenant;
	k->rid = rid;
	k->rl = rl;
	k->tl = strlen(tenant);
	k->il = strlen(rid);
	k->rh = rh;
	k->irule = istr_find(t, rule, k->rl, k->rh, NULL);
	k->th = k->ih = 0;
	k->node = NULL;
}

static void
okey_init(const struct obl_table *t, struct obl_key *k, const char *rule, const char *tenant,
	  const char *rid)
{
	size_t rl = strlen(rule);

	okey_init_rule(t, k, rule, rl, hash_bytes(rule, rl), tenant, rid);
}

static size_t
node_size(const struct obl_key *k, size_t bl)
{
	return offsetof(struct obl_node, strs) + k->tl + k->il + bl + 3;
}

/* The key's hash in the map (its tenant's and resource id's hashes computed once). */
static uint32_t
okey_hash(struct obl_key *k, const struct istr *rule)
{
	if (!k->th)
		k->th = hash_bytes(k->tenant, k->tl);
	if (!k->ih)
		k->ih = hash_bytes(k->rid, k->il);
	return key_hash(rule, k->th, k->ih);
}

static bool
okey_is(const struct obl_node *n, const struct obl_key *k)
{
	return n->rule == k->irule && n->tenant_len == k->tl && n->rid_len == k->il &&
	       !memcmp(n->strs, k->tenant, k->tl) && !memcmp(node_rid(n), k->rid, k->il);
}

/*
 * Below this many slots the map grows all at once; from it on, by moving
 * MAP_MOVE_STEP slots of the outgrown map at each opening.  Growing 4 M
 * entries at once took 0.4 s, a pause for every client.  The new map has
 * room for the old one's entries and as many again; the move ends after a
 * sixteenth of that many openings (each moving about 16 entries), and
 * meanwhile a key not in the new map is looked for in the old one too.
 */
#define MAP_MOVE_MIN (1u << 16)
#define MAP_MOVE_STEP 32

/* Moves the next `k` slots of the outgrown map, and frees it once all are moved. */
static void
map_move(struct obl_table *t, size_t k)
{
	for (; k && t->mig < t->old.cap; k--, t->mig++) {
		const struct hslot *s = &t->old.slots[t->mig];

		if (s->h && s->p)
			htab_insert(&t->map, s->h, s->p);
	}
	if (t->mig == t->old.cap)
		htab_free(&t->old);
}

static void
map_insert(struct obl_table *t, uint32_t h, struct obl_node *n)
{
	if (!t->old.slots && t->map.cap >= MAP_MOVE_MIN && (t->map.n + 1) * 2 > t->map.cap) {
		t->old = t->map;
		t->map.cap = 2 * t->old.cap;
		t->map.slots = xcalloc_table(t->map.cap, sizeof(*t->map.slots));
		t->map.n = 0;
		t->mig = 0;
	}
	if (t->old.slots)
		map_move(t, MAP_MOVE_STEP);
	htab_insert(&t->map, h, n);
}

static struct obl_node *
okey_find(const struct obl_table *t, struct obl_key *k)
{
	uint32_t h;

	if (!k->irule || !t->map.cap)
		return NULL;
	h = okey_hash(k, k->irule);
	for (size_t i = htab_start(&t->map, h); t->map.slots[i].h;
	     i = (i + 1) & (t->map.cap - 1))
		if (t->map.slots[i].h == h && okey_is(t->map.slots[i].p, k))
			return t->map.slots[i].p;
	if (t->old.slots)
		for (size_t i = htab_start(&t->old, h); t->old.slots[i].h;
		     i = (i + 1) & (t->old.cap - 1))
			if (i >= t->mig && t->old.slots[i].h == h && t->old.slots[i].p &&
			    okey_is(t->old.slots[i].p, k))
				return t->old.slots[i].p;
	return NULL;
}

struct obl_node *
obl_find(struct obl_table *t, const char *rule, const char *tenant, const char *rid)
{
	struct obl_key k;

	okey_init(t, &k, rule, tenant, rid);
	return okey_find(t, &k);
}

/*
 * The heap orders entries by what they hold: it reads no node.  A node's
 * heap_idx, written for every entry a climb moves, is a store to a random
 * node among half a million: a cache miss that held up every later store.
 * Those writes wait in idx_pend and are done together, when it fills or
 * before anything reads a heap_idx.
 */
static bool
before(const struct obl_hent *a, const struct obl_hent *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->order < b->order;
}

static void
idx_flush(struct obl_table *t)
{
	for (size_t k = 0; k < t->n_idx_pend; k++)
		t->idx_pend[k].n->heap_idx = t->idx_pend[k].i;
	t->n_idx_pend = 0;
}

static void
heap_set(struct obl_table *t, size_t i, struct obl_hent e)
{
	t->heap[i] = e;
	if (t->n_idx_pend == AUPD_ARRAY_LEN(t->idx_pend))
		idx_flush(t);
	t->idx_pend[t->n_idx_pend].n = e.n;
	t->idx_pend[t->n_idx_pend++].i = (uint32_t)i;
}

/* Both return where the entry ended. */
static size_t
sift_up(struct obl_table *t, size_t i)
{
	struct obl_hent e = t->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(&e, &t->heap[parent]))
			break;
		heap_set(t, i, t->heap[parent]);
		i = parent;
	}
	heap_set(t, i, e);
	return i;
}

static size_t
sift_down(struct obl_table *t, size_t i)
{
	struct obl_hent e = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= t->n)
			break;
		if (c + 1 < t->n && before(&t->heap[c + 1], &t->heap[c]))
			c++;
		if (!before(&t->heap[c], &e))
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, e);
	return i;
}

/* Takes n out of the heap and the map; the caller frees it with node_free(). */
static void
unlink_node(struct obl_table *t, struct obl_node *n)
{
	size_t i;

	idx_flush(t);
	i = n->heap_idx;
	uint32_t h = key_hash(n->rule, hash_bytes(n->strs, n->tenant_len),
			      hash_bytes(node_rid(n), n->rid_len));
	bool found = false;

	for (size_t s = htab_start(&t->map, h); t->map.slots[s].h;
	     s = (s + 1) & (t->map.cap - 1)) {
		if (t->map.slots[s].p == n) {
			htab_remove_at(&t->map, s);
			found = true;
			break;
		}
	}
	if (!found && t->old.slots) {
		/* not moved yet: left in place without its node, the chain unbroken */
		for (size_t s = htab_start(&t->old, h); t->old.slots[s].h;
		     s = (s + 1) & (t->old.cap - 1)) {
			if (s >= t->mig && t->old.slots[s].p == n) {
				t->old.slots[s].p = NULL;
				break;
			}
		}
	}
	t->n--;
	if (i != t->n) {
		heap_set(t, i, t->heap[t->n]);
		sift_up(t, sift_down(t, i));
	}
	if (t->old.slots) /* a move goes on while only discharges and expiries come */
		map_move(t, MAP_MOVE_STEP);
}

static struct obl_node *
okey_open(struct obl_table *t, struct obl_key *k, const struct obligation *o)
{
	const char *by = o->opened_by ? o->opened_by : "";
	size_t bl = strlen(by);
	struct obl_node *n;
	char *p;

	/* tenants are at most 128 characters (event validation): 16 bits hold them */
	if (k->il > UINT32_MAX / 2 || k->tl > UINT16_MAX || t->n >= UINT32_MAX)
		abort();
	n = k->node ? k->node : sizepool_alloc(&t->pool, node_size(k, bl));
	k->node = NULL;
	n->rule = istr_hold(t, k->irule, k->rule, k->rl, k->rh);
	n->opened_seq = o->opened_seq;
	n->tenant_len = (uint16_t)k->tl;
	n->rid_len = (uint32_t)k->il;
	n->effect = (uint8_t)o->effect;
	n->severity = (uint8_t)o->severity;
	n->shadow = o->shadow;
	p = n->strs;
	memcpy(p, k->tenant, k->tl + 1);
	p += k->tl + 1;
	memcpy(p, k->rid, k->il + 1);
	p += k->il + 1;
	memcpy(p, by, bl + 1);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->heap = xrealloc(t->heap, t->cap * sizeof(*t->heap));
	}
	heap_set(t, t->n++,
		 (struct obl_hent){.deadline = o->deadline, .order = t->next_order++, .n = n});
	sift_up(t, t->n - 1);
	map_insert(t, okey_hash(k, n->rule), n);
	return n;
}

bool
obl_open(struct obl_table *t, const struct obligation *o)
{
	struct obl_key k;

	okey_init(t, &k, o->rule, o->tenant, o->resource_id);
	return obl_open_finish(t, &k, o);
}

void
obl_open_prepare(struct obl_table *t, const struct obligation *o, size_t rule_len,
		 uint64_t rule_hash, struct obl_key *k)
{
	uint32_t h;

	okey_init_rule(t, k, o->rule, rule_len, rule_hash, o->tenant, o->resource_id);
	/*
	 * Most keys are new: their node is allocated now and its lines fetched
	 * for writing, so that filling it does not stall on them.
	 */
	k->node = sizepool_alloc(&t->pool, node_size(k, strlen(o->opened_by ? o->opened_by : "")));
	__builtin_prefetch(k->node, 1);
	__builtin_prefetch((char *)k->node + 64, 1);
	if (!k->irule || !t->map.cap)
		return;
	h = okey_hash(k, k->irule);
	__builtin_prefetch(&t->map.slots[htab_start(&t->map, h)]);
	if (t->old.slots) /* during a move, a new key is looked for there too */
		__builtin_prefetch(&t->old.slots[htab_start(&t->old, h)]);
}

bool
obl_open_finish(struct obl_table *t, struct obl_key *k, const struct obligation *o)
{
	if (okey_find(t, k)) {
		if (k->node) /* obl_open() prepares none */
			sizepool_free(&t->pool, k->node,
				      node_size(k, strlen(o->opened_by ? o->opened_by : "")));
		k->node = NULL;
		return false;
	}
	okey_open(t, k, o);
	return true;
}

void
obl_discharge(struct obl_table *t, struct obl_node *n, struct obligation *out)
{
	aupd_time deadline;

	idx_flush(t);
	deadline = t->heap[n->heap_idx].deadline;
	unlink_node(t, n);
	node_export(n, deadline, OBL_DISCHARGE, out);
	node_free(t, n);
}

size_t
obl_take_due(struct obl_table *t, aupd_time now, struct obligation **out)
{
	size_t k = 0, cap = 0;

	*out = NULL;
	while (t->n > 0 && t->heap[0].deadline <= now) {
		struct obl_node *n = t->heap[0].n;
		aupd_time deadline = t->heap[0].deadline;

		unlink_node(t, n);
		if (k == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		node_export(n, deadline, OBL_OPEN, &(*out)[k++]);
		node_free(t, n);
	}
	return k;
}

size_t
obl_count(const struct obl_table *t)
{
	return t->n;
}

size_t
obl_bytes(const struct obl_table *t)
{
	size_t b = t->cap * sizeof(*t->heap) +
		   (t->map.cap + t->old.cap + t->strs.cap) * sizeof(struct hslot);

	for (size_t i = 0; i < t->n; i++)
		b += node_bytes(t->heap[i].n);
	for (size_t i = 0; i < t->strs.cap; i++)
		if (t->strs.slots[i].h)
			b += sizeof(struct istr) + ((struct istr *)t->strs.slots[i].p)->len + 1;
	return b;
}
