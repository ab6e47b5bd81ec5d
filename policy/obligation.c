/* obligation.c - open deletion obligations of retention rules: by key, and by deadline */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

struct obl_node {
	uint64_t hash;
	size_t heap_idx;
	uint64_t order; /* opening order: ties of deadline pop in it */
	struct obligation o;
};

static uint64_t
obl_hash(const char *rule, const char *tenant, const char *rid)
{
	uint64_t h = hash_str(rule);

	h = h * 31 + hash_str(tenant);
	h = h * 31 + hash_str(rid);
	return h ? h : 1;
}

void
obl_init(struct obl_table *t)
{
	memset(t, 0, sizeof(*t));
}

void
obligation_copy(struct obligation *dst, const struct obligation *src)
{
	*dst = *src;
	dst->rule = xstrdup(src->rule);
	dst->tenant = xstrdup(src->tenant);
	dst->resource_id = xstrdup(src->resource_id);
	dst->opened_by = xstrdup(src->opened_by ? src->opened_by : "");
}

void
obligation_clear(struct obligation *o)
{
	if (!o)
		return;
	free(o->rule);
	free(o->tenant);
	free(o->resource_id);
	free(o->opened_by);
	memset(o, 0, sizeof(*o));
}

static void
node_free(struct obl_node *n)
{
	obligation_clear(&n->o);
	free(n);
}

void
obl_free_all(struct obl_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		node_free(t->heap[i]);
	free(t->heap);
	htab_free(&t->map);
	obl_init(t);
}

static size_t
slot_of(struct obl_table *t, const char *rule, const char *tenant, const char *rid, uint64_t h)
{
	if (!t->map.cap)
		return SIZE_MAX;
	for (size_t i = htab_start(&t->map, h); t->map.slots[i].h; i = (i + 1) & (t->map.cap - 1)) {
		struct obl_node *n = t->map.slots[i].p;

		if (t->map.slots[i].h == h && !strcmp(n->o.rule, rule) &&
		    !strcmp(n->o.tenant, tenant) && !strcmp(n->o.resource_id, rid))
			return i;
	}
	return SIZE_MAX;
}

struct obl_node *
obl_find(struct obl_table *t, const char *rule, const char *tenant, const char *rid)
{
	size_t i = slot_of(t, rule, tenant, rid, obl_hash(rule, tenant, rid));

	return i == SIZE_MAX ? NULL : t->map.slots[i].p;
}

static bool
before(const struct obl_node *a, const struct obl_node *b)
{
	if (a->o.deadline != b->o.deadline)
		return a->o.deadline < b->o.deadline;
	return a->order < b->order;
}

static void
heap_set(struct obl_table *t, size_t i, struct obl_node *n)
{
	t->heap[i] = n;
	n->heap_idx = i;
}

static void
sift_up(struct obl_table *t, size_t i)
{
	struct obl_node *n = t->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(n, t->heap[parent]))
			break;
		heap_set(t, i, t->heap[parent]);
		i = parent;
	}
	heap_set(t, i, n);
}

static void
sift_down(struct obl_table *t, size_t i)
{
	struct obl_node *n = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= t->n)
			break;
		if (c + 1 < t->n && before(t->heap[c + 1], t->heap[c]))
			c++;
		if (!before(t->heap[c], n))
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, n);
}

/* Takes n out of the heap and the map; the caller owns it. */
static void
unlink_node(struct obl_table *t, struct obl_node *n)
{
	size_t i = n->heap_idx;
	size_t slot = slot_of(t, n->o.rule, n->o.tenant, n->o.resource_id, n->hash);

	if (slot != SIZE_MAX)
		htab_remove_at(&t->map, slot);
	t->n--;
	if (i != t->n) {
		struct obl_node *moved = t->heap[t->n];

		heap_set(t, i, moved);
		sift_down(t, i);
		sift_up(t, moved->heap_idx);
	}
}

struct obl_node *
obl_open(struct obl_table *t, const struct obligation *o)
{
	struct obl_node *n = xcalloc(1, sizeof(*n));

	obligation_copy(&n->o, o);
	n->o.op = OBL_OPEN;
	n->hash = obl_hash(o->rule, o->tenant, o->resource_id);
	n->order = t->next_order++;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->heap = xrealloc(t->heap, t->cap * sizeof(*t->heap));
	}
	heap_set(t, t->n++, n);
	sift_up(t, t->n - 1);
	htab_insert(&t->map, n->hash, n);
	return n;
}

void
obl_discharge(struct obl_table *t, struct obl_node *n, struct obligation *out)
{
	unlink_node(t, n);
	*out = n->o;
	out->op = OBL_DISCHARGE;
	free(n);
}

size_t
obl_take_due(struct obl_table *t, aupd_time now, struct obligation **out)
{
	size_t k = 0, cap = 0;

	*out = NULL;
	while (t->n > 0 && t->heap[0]->o.deadline <= now) {
		struct obl_node *n = t->heap[0];

		unlink_node(t, n);
		if (k == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[k++] = n->o;
		free(n);
	}
	return k;
}

size_t
obl_count(const struct obl_table *t)
{
	return t->n;
}
