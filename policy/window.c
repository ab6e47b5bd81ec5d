/* window.c - exact sliding windows per group: time-sorted rings with a movable running sum */
#include "policy_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIN_MIN_SLACK (3600 * AUPD_USEC)
#define EXACT_LIMIT 9007199254740992.0 /* 2^53: integers above this lose precision */

/* Where the entries start: after the key, 8-aligned. */
static inline size_t
ring_off(uint32_t keylen)
{
	return (offsetof(struct wgroup, key) + keylen + 1 + 7) & ~(size_t)7;
}

static inline size_t
entry_size(bool with_seqs)
{
	return sizeof(struct wentry) + (with_seqs ? sizeof(int64_t) : 0);
}

static inline size_t
group_size(uint32_t keylen, uint32_t cap, bool with_seqs)
{
	return ring_off(keylen) + (size_t)cap * entry_size(with_seqs);
}

static inline struct wentry *
ring(const struct wgroup *g)
{
	return (struct wentry *)((char *)g + ring_off(g->keylen));
}

static inline struct wentry *
at(const struct wgroup *g, uint32_t i)
{
	return &ring(g)[(g->head + i) & (g->cap - 1)];
}

/*
 * A group's slot keeps in aux the time of its oldest entry in whole
 * seconds, rounded down (0 before 1970, 2^32 - 1 at most): a lower bound,
 * from which the sweep tells a group it has nothing to do for without
 * reading it.
 */
static inline uint32_t
stamp(int64_t t)
{
	int64_t s = t / AUPD_USEC;

	return t <= 0 ? 0 : s >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static inline int64_t *
seq_at(const struct wgroup *g, uint32_t i)
{
	return &((int64_t *)(ring(g) + g->cap))[(g->head + i) & (g->cap - 1)];
}

struct window *
window_new(int64_t w, bool with_seqs)
{
	struct window *win = xcalloc(1, sizeof(*win));

	win->w = w;
	win->slack = w > WIN_MIN_SLACK ? w : WIN_MIN_SLACK;
	win->with_seqs = with_seqs;
	return win;
}

void
window_free(struct window *win)
{
	if (!win)
		return;
	for (size_t i = 0; i < win->groups.cap; i++)
		if (win->groups.slots[i].h)
			free(win->groups.slots[i].p);
	htab_free(&win->groups);
	free(win);
}

/* The group of `key` and its slot in the table; a new group has room for one entry. */
static struct wgroup *
group_get(struct window *win, const char *key, size_t keylen, size_t *slot)
{
	uint32_t h = htab_hash(hash_bytes(key, keylen));
	struct wgroup *g;

	if (keylen >= UINT32_MAX / 2)
		abort();
	if (win->groups.cap) {
		size_t mask = win->groups.cap - 1;

		for (size_t i = htab_start(&win->groups, h); win->groups.slots[i].h;
		     i = (i + 1) & mask) {
			g = win->groups.slots[i].p;
			if (win->groups.slots[i].h == h && g->keylen == keylen &&
			    !memcmp(g->key, key, keylen)) {
				*slot = i;
				return g;
			}
		}
	}
	g = xmalloc(group_size((uint32_t)keylen, 1, win->with_seqs));
	memset(g, 0, offsetof(struct wgroup, key));
	g->cap = 1;
	g->keylen = (uint32_t)keylen;
	memcpy(g->key, key, keylen);
	g->key[keylen] = '\0';
	*slot = htab_insert(&win->groups, h, g);
	return g;
}

/*
 * Moves the group into a fresh allocation with `cap` slots, the entries
 * first; the table's slot is pointed at it.
 */
static struct wgroup *
relayout(struct window *win, size_t slot, struct wgroup *g, uint32_t cap)
{
	struct wgroup *ng = xmalloc(group_size(g->keylen, cap, win->with_seqs));
	struct wentry *r;
	int64_t *seqs;

	memcpy(ng, g, offsetof(struct wgroup, key) + g->keylen + 1);
	ng->cap = cap;
	ng->head = 0;
	r = ring(ng);
	seqs = (int64_t *)(r + cap);
	for (uint32_t i = 0; i < g->n; i++) {
		r[i] = *at(g, i);
		if (win->with_seqs)
			seqs[i] = *seq_at(g, i);
	}
	free(g);
	win->groups.slots[slot].p = ng;
	return ng;
}

static struct wgroup *
insert_at(struct window *win, size_t slot, struct wgroup *g, uint32_t pos, int64_t t,
	  double amount, int64_t seq)
{
	bool with_seqs = win->with_seqs;

	if (g->n == g->cap) {
		if (g->cap >= UINT32_MAX / 2)
			abort();
		g = relayout(win, slot, g, g->cap * 2);
	}
	if (pos >= g->n / 2) {
		for (uint32_t i = g->n; i > pos; i--) {
			*at(g, i) = *at(g, i - 1);
			if (with_seqs)
				*seq_at(g, i) = *seq_at(g, i - 1);
		}
	} else {
		/* nearer the head: shift the older entries one slot back instead */
		g->head = (g->head - 1) & (g->cap - 1);
		for (uint32_t i = 0; i < pos; i++) {
			*at(g, i) = *at(g, i + 1);
			if (with_seqs)
				*seq_at(g, i) = *seq_at(g, i + 1);
		}
	}
	at(g, pos)->t = t;
	at(g, pos)->amount = amount;
	if (pos == 0)
		win->groups.slots[slot].aux = stamp(t);
	if (with_seqs)
		*seq_at(g, pos) = seq;
	g->n++;
	return g;
}

/* The first index in [a, b) whose time is > x, or b. */
static uint32_t
upper_bound(const struct wgroup *g, uint32_t a, uint32_t b, int64_t x)
{
	while (a < b) {
		uint32_t mid = a + (b - a) / 2;

		if (at(g, mid)->t <= x)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

static double
range_sum(const struct wgroup *g, uint32_t a, uint32_t b)
{
	double s = 0;

	for (uint32_t i = a; i < b; i++)
		s += at(g, i)->amount;
	return s;
}

/*
 * Positions [lo, hi) and the running sum on (t - W, t].  In order (the
 * common case) only lo moves, each entry crossing it once.  Otherwise the
 * new bounds are found by binary search and the sum is moved by the
 * entries between the old and new bounds, or recomputed when that is cheaper.
 */
static void
reposition(struct wgroup *g, int64_t t, int64_t w)
{
	int64_t edge = t - w;
	uint32_t nhi, nlo, dhi, dlo;

	if (t >= g->cur && g->hi == g->n) {
		while (g->lo < g->hi && at(g, g->lo)->t <= edge) {
			g->running -= at(g, g->lo)->amount;
			g->lo++;
			g->nsub++;
		}
		g->cur = t;
		return;
	}
	nhi = upper_bound(g, 0, g->n, t);
	nlo = upper_bound(g, 0, nhi, edge);
	dhi = nhi > g->hi ? nhi - g->hi : g->hi - nhi;
	dlo = nlo > g->lo ? nlo - g->lo : g->lo - nlo;
	if (dhi + dlo <= nhi - nlo) {
		if (nhi > g->hi) {
			g->running += range_sum(g, g->hi, nhi);
		} else {
			g->running -= range_sum(g, nhi, g->hi);
			g->nsub += g->hi - nhi;
		}
		if (nlo > g->lo) {
			g->running -= range_sum(g, g->lo, nlo);
			g->nsub += nlo - g->lo;
		} else {
			g->running += range_sum(g, nlo, g->lo);
		}
	} else {
		g->running = range_sum(g, nlo, nhi);
		g->nsub = 0;
	}
	g->lo = nlo;
	g->hi = nhi;
	g->cur = t;
}

/* Drops entries at or before `limit` that lie before the running window. */
static struct wgroup *
drop_old(struct window *win, size_t slot, struct wgroup *g, int64_t limit)
{
	uint32_t n = g->n;

	while (g->lo > 0 && at(g, 0)->t <= limit) {
		g->head = (g->head + 1) & (g->cap - 1);
		g->n--;
		g->lo--;
		g->hi--;
		win->entries--;
	}
	if (g->n != n)
		win->groups.slots[slot].aux = stamp(at(g, 0)->t);
	if (g->cap > 4 && g->n < g->cap / 4) {
		uint32_t cap = 4;

		while (cap < 2 * g->n)
			cap *= 2;
		g = relayout(win, slot, g, cap);
	}
	return g;
}

/* The newest entry's time; a group always holds at least one entry. */
static inline int64_t
newest(const struct wgroup *g)
{
	/* the ring's tail is often a cache line of its own: read it only when needed */
	return g->cur_is_newest ? g->cur : at(g, g->n - 1)->t;
}

struct wgroup *
window_add(struct window *win, const char *key, size_t keylen, int64_t t, double amount,
	   int64_t seq)
{
	size_t slot;
	struct wgroup *g = group_get(win, key, keylen, &slot);
	bool newest_t = g->n == 0 || t >= newest(g);

	if (g->n == 0) {
		g->lo = g->hi = 0;
		g->running = 0;
		g->nsub = 0;
		g->inexact = false;
		g->cur = t;
	}
	reposition(g, t, win->w);
	g = insert_at(win, slot, g, g->hi, t, amount, seq);
	g->hi++;
	g->running += amount;
	win->entries++;
	if (amount != floor(amount) || fabs(g->running) >= EXACT_LIMIT)
		g->inexact = true;
	if (g->inexact && g->nsub > 64 + (g->hi - g->lo)) {
		/* bound the rounding error that subtractions accumulate */
		g->running = range_sum(g, g->lo, g->hi);
		g->nsub = 0;
		if (fabs(g->running) < EXACT_LIMIT) {
			bool exact = true;

			for (uint32_t i = g->lo; i < g->hi && exact; i++)
				exact = at(g, i)->amount == floor(at(g, i)->amount);
			g->inexact = !exact;
		}
	}
	g->cur_is_newest = newest_t;
	/* the slot's aux tells, without reading the ring, whether anything is old enough */
	if (newest_t && g->lo > 0 &&
	    (int64_t)win->groups.slots[slot].aux * AUPD_USEC <= t - win->w - win->slack)
		g = drop_old(win, slot, g, t - win->w - win->slack);
	return g;
}

int64_t *
window_seqs(const struct window *win, const struct wgroup *g, size_t *n, int64_t *first,
	    int64_t *last)
{
	int64_t *out = xmalloc(((size_t)(g->hi - g->lo) + 1) * sizeof(*out));

	*n = g->hi - g->lo;
	for (uint32_t i = g->lo; i < g->hi; i++)
		out[i - g->lo] = win->with_seqs ? *seq_at(g, i) : 0;
	*first = g->hi > g->lo ? at(g, g->lo)->t : 0;
	*last = g->hi > g->lo ? at(g, g->hi - 1)->t : 0;
	return out;
}

static void
shrink_table(struct window *win)
{
	struct htab t = {0};

	for (size_t i = 0; i < win->groups.cap; i++) {
		if (win->groups.slots[i].h) {
			size_t j = htab_insert(&t, win->groups.slots[i].h, win->groups.slots[i].p);

			t.slots[j].aux = win->groups.slots[i].aux;
		}
	}
	htab_free(&win->groups);
	win->groups = t;
	win->sweep_pos = 0;
}

void
window_sweep(struct window *win, int64_t ref, size_t budget)
{
	int64_t limit = ref - win->w - win->slack;

	while (budget-- > 0 && win->groups.n > 0) {
		size_t i = win->sweep_pos & (win->groups.cap - 1);
		struct wgroup *g = win->groups.slots[i].p;

		/* a group whose oldest entry is after limit has nothing to drop */
		if (win->groups.slots[i].h && (int64_t)win->groups.slots[i].aux * AUPD_USEC <= limit) {
			if (newest(g) <= limit) {
				win->entries -= g->n;
				free(g);
				if (htab_remove_at(&win->groups, i))
					continue; /* another group moved into slot i */
			} else {
				drop_old(win, i, g, limit);
			}
		}
		win->sweep_pos = (i + 1) & (win->groups.cap - 1);
	}
	if (win->groups.cap > 64 && win->groups.n * 8 < win->groups.cap)
		shrink_table(win);
}

size_t
window_entries(const struct window *win, size_t *bytes)
{
	size_t b = sizeof(*win) + win->groups.cap * sizeof(struct hslot);

	for (size_t i = 0; i < win->groups.cap; i++) {
		const struct wgroup *g = win->groups.slots[i].p;

		if (win->groups.slots[i].h)
			b += group_size(g->keylen, g->cap, win->with_seqs);
	}
	if (bytes)
		*bytes = b;
	return win->entries;
}
