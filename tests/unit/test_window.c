/* test_window.c - exact sliding windows: edges, late events, recount against brute force (policy/window.c) */
#include "../../policy/policy_int.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

#define H (3600 * AUPD_USEC)
#define T0 ((aupd_time)1768471200 * AUPD_USEC) /* 2026-01-15T10:00:00Z */

static double
add(struct window *w, const char *key, aupd_time t, double amount)
{
	return window_add(w, key, strlen(key), t, amount, 0)->running;
}

START_TEST(edge_is_exclusive)
{
	struct window *w = window_new(H, false);

	ck_assert_double_eq(add(w, "g", T0, 1), 1);
	/* an entry at exactly t - W is outside (t - W, t] */
	ck_assert_double_eq(add(w, "g", T0 + H, 1), 1);
	window_free(w);

	w = window_new(H, false);
	add(w, "g", T0, 1);
	/* one microsecond later it is inside */
	ck_assert_double_eq(add(w, "g", T0 + H - 1, 1), 2);
	ck_assert_double_eq(add(w, "g", T0 + H, 1), 2);
	ck_assert_double_eq(add(w, "g", T0 + 2 * H - 1, 1), 2);
	ck_assert_double_eq(add(w, "g", T0 + 2 * H - 1, 1), 3); /* equal times all count */
	window_free(w);
}
END_TEST

START_TEST(groups_are_separate)
{
	struct window *w = window_new(H, false);

	ck_assert_double_eq(add(w, "a", T0, 5), 5);
	ck_assert_double_eq(add(w, "b", T0, 7), 7);
	ck_assert_double_eq(add(w, "a", T0 + 1, 5), 10);
	ck_assert_double_eq(add(w, "", T0, 1), 1); /* the empty group of missing fields */
	ck_assert_double_eq(add(w, "a\x1f" "b", T0, 1), 1);
	window_free(w);
}
END_TEST

START_TEST(late_events)
{
	struct window *w = window_new(H, false);

	add(w, "g", T0 + 30 * 60 * AUPD_USEC, 1);	     /* 10:30 */
	add(w, "g", T0 + 50 * 60 * AUPD_USEC, 1);	     /* 10:50 */
	/* 10:00 arrives late: its window (09:00, 10:00] holds only itself */
	ck_assert_double_eq(add(w, "g", T0, 1), 1);
	/* 09:40 arrives later still: (08:40, 09:40] is itself */
	ck_assert_double_eq(add(w, "g", T0 - 20 * 60 * AUPD_USEC, 1), 1);
	/* 10:35 late: (09:35, 10:35] holds 09:40, 10:00, 10:30 and itself */
	ck_assert_double_eq(add(w, "g", T0 + 35 * 60 * AUPD_USEC, 1), 4);
	/* back in order at 11:00: (10:00, 11:00] holds 10:30, 10:35, 10:50 and itself */
	ck_assert_double_eq(add(w, "g", T0 + H, 1), 4);
	window_free(w);
}
END_TEST

START_TEST(huge_amounts)
{
	struct window *w = window_new(H, false);

	ck_assert_double_eq(add(w, "g", T0, 1e15), 1e15);
	ck_assert_double_eq(add(w, "g", T0 + 1, 1e15), 2e15);
	ck_assert_double_eq(add(w, "g", T0 + H + 1, 1), 1); /* both left the window */
	window_free(w);
}
END_TEST

START_TEST(seqs_in_time_order)
{
	struct window *w = window_new(H, true);
	struct wgroup *g;
	int64_t *seqs, first, last;
	size_t n;

	window_add(w, "g", 1, T0 + 10, 1, 1);
	window_add(w, "g", 1, T0 + 30, 1, 2);
	g = window_add(w, "g", 1, T0 + 20, 1, 3); /* late */
	g = window_add(w, "g", 1, T0 + 40, 1, 4);
	seqs = window_seqs(w, g, &n, &first, &last);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(seqs[0], 1);
	ck_assert_int_eq(seqs[1], 3);
	ck_assert_int_eq(seqs[2], 2);
	ck_assert_int_eq(seqs[3], 4);
	ck_assert_int_eq(first, T0 + 10);
	ck_assert_int_eq(last, T0 + 40);
	free(seqs);
	window_free(w);
}
END_TEST

struct rec {
	int group;
	aupd_time t;
	double amount;
};

/* Brute force: the sum of the accepted events of the group with time in (t - W, t]. */
static double
recount(const struct rec *v, size_t n, int group, aupd_time t, int64_t W)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i].group == group && v[i].t > t - W && v[i].t <= t)
			s += v[i].amount;
	return s;
}

static void
random_stream(unsigned seed, int64_t W, int64_t jitter, bool fractional, size_t n)
{
	static const char *const keys[] = {"alpha", "beta", "gamma", "delta"};
	struct window *w = window_new(W, false);
	struct rec *v = calloc(n, sizeof(*v));
	aupd_time clock = T0;

	srand(seed);
	for (size_t i = 0; i < n; i++) {
		double got, want;

		/* time moves on by 0 to W/8; each event is up to `jitter` late */
		clock += (int64_t)((double)rand() / RAND_MAX * (double)(W / 8));
		v[i].t = clock - (jitter ? (int64_t)((double)rand() / RAND_MAX * (double)jitter) : 0);
		if (rand() % 50 == 0)
			v[i].t = clock; /* exact ties with other events */
		v[i].group = rand() % 4;
		v[i].amount = fractional ? (double)(rand() % 1000) / 7.0 : (double)(rand() % 100);
		got = add(w, keys[v[i].group], v[i].t, v[i].amount);
		want = recount(v, i + 1, v[i].group, v[i].t, W);
		if (fractional)
			ck_assert_msg(fabs(got - want) <= 1e-9 * (want > 1 ? want : 1),
				      "seed %u event %zu: window total %.12g, recount %.12g", seed, i,
				      got, want);
		else
			ck_assert_msg(got == want, "seed %u event %zu: window total %.17g, recount %.17g",
				      seed, i, got, want);
	}
	free(v);
	window_free(w);
}

/*
 * Like random_stream, over 64 groups, with sweeps at the current time between
 * events: a sweep may free or trim only what no later event (at most
 * `jitter` late, below the slack) can count, so every total stays exact;
 * and a sweep far ahead leaves nothing.  With long_keys, group g's key is
 * 13 * g bytes longer: groups of every size made, grown, trimmed and freed.
 */
static void
random_stream_swept(unsigned seed, int64_t W, int64_t jitter, size_t n, bool long_keys)
{
	struct window *w = window_new(W, false);
	struct rec *v = calloc(n, sizeof(*v));
	aupd_time clock = T0;
	char key[1024];

	srand(seed);
	for (size_t i = 0; i < n; i++) {
		double got, want;

		clock += (int64_t)((double)rand() / RAND_MAX * (double)(W / 4));
		v[i].t = clock - (jitter ? (int64_t)((double)rand() / RAND_MAX * (double)jitter) : 0);
		v[i].group = rand() % 64;
		v[i].amount = (double)(rand() % 100);
		snprintf(key, sizeof(key), "g%d", v[i].group);
		if (long_keys) {
			size_t len = strlen(key);

			memset(key + len, 'a' + v[i].group % 26, (size_t)v[i].group * 13);
			key[len + (size_t)v[i].group * 13] = '\0';
		}
		got = add(w, key, v[i].t, v[i].amount);
		want = recount(v, i + 1, v[i].group, v[i].t, W);
		ck_assert_msg(got == want, "seed %u event %zu: window total %.17g, recount %.17g",
			      seed, i, got, want);
		if (rand() % 8 == 0)
			window_sweep(w, clock, (size_t)(rand() % 64));
	}
	window_sweep(w, clock + 2 * W + 2 * H + 1, 100000);
	ck_assert_uint_eq(window_entries(w, NULL), 0);
	ck_assert_uint_eq(w->groups.n, 0);
	free(v);
	window_free(w);
}

START_TEST(random_swept)
{
	for (unsigned seed = 300; seed < 306; seed++) {
		random_stream_swept(seed, 10 * AUPD_USEC, 0, 3000, false);
		random_stream_swept(seed + 100, H, 55 * 60 * AUPD_USEC, 3000, false);
		random_stream_swept(seed + 200, 6 * H, 5 * H, 3000, false);
		random_stream_swept(seed + 300, H, 55 * 60 * AUPD_USEC, 3000, true);
	}
}
END_TEST

START_TEST(random_in_order)
{
	random_stream(1, 10 * AUPD_USEC, 0, false, 3000);
	random_stream(2, H, 0, false, 3000);
}
END_TEST

START_TEST(random_out_of_order)
{
	/* jitter below the slack (max(W, 1h)): windows stay exact */
	for (unsigned seed = 10; seed < 16; seed++) {
		random_stream(seed, 10 * AUPD_USEC, 50 * 60 * AUPD_USEC, false, 2500);
		random_stream(seed + 100, H, 55 * 60 * AUPD_USEC, false, 2500);
		random_stream(seed + 200, 6 * H, 5 * H, false, 2500);
	}
}
END_TEST

START_TEST(random_fractional)
{
	random_stream(42, H, 30 * 60 * AUPD_USEC, true, 4000);
	random_stream(43, 5 * AUPD_USEC, 0, true, 4000);
}
END_TEST

START_TEST(old_entries_are_dropped)
{
	struct window *w = window_new(H, false);
	size_t bytes;

	for (int i = 0; i < 1000; i++)
		add(w, "g", T0 + (int64_t)i * 60 * AUPD_USEC, 1);
	/* kept: the window (1h) and the slack (max(W, 1h)) behind it */
	ck_assert_uint_le(window_entries(w, &bytes), 121);
	ck_assert_uint_ge(window_entries(w, &bytes), 119);
	window_free(w);
}
END_TEST

START_TEST(later_than_the_slack)
{
	struct window *w = window_new(H, false);
	size_t n;

	for (int i = 0; i < 600; i++)
		add(w, "g", T0 + (int64_t)i * 60 * AUPD_USEC, 1);
	n = window_entries(w, NULL);
	/* 10 hours late: the entries it would need are gone; it counts what is left */
	ck_assert_double_eq(add(w, "g", T0 + 30 * 60 * AUPD_USEC, 1), 1);
	ck_assert_uint_eq(window_entries(w, NULL), n + 1);
	/* and in-order events go on exactly */
	ck_assert_double_eq(add(w, "g", T0 + 600 * 60 * AUPD_USEC, 1), 60);
	window_free(w);
}
END_TEST

START_TEST(sweep_frees_idle_groups)
{
	struct window *w = window_new(H, false);
	char key[32];

	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "tenant-%d", i);
		add(w, key, T0 + i, 1);
	}
	add(w, "busy", T0 + 3 * H, 1);
	ck_assert_uint_eq(w->groups.n, 5001);
	/* not idle yet: an event up to the slack late may still need them */
	window_sweep(w, T0 + 2 * H - 1, 100000);
	ck_assert_uint_eq(w->groups.n, 5001);
	window_sweep(w, T0 + 2 * H + 5000, 100000);
	ck_assert_uint_eq(w->groups.n, 1);
	ck_assert_uint_eq(window_entries(w, NULL), 1);
	ck_assert_double_eq(add(w, "busy", T0 + 3 * H + 1, 1), 2);
	ck_assert_double_eq(add(w, "tenant-7", T0 + 3 * H, 1), 1);
	window_free(w);
}
END_TEST

/*
 * The sweep trims a group that no longer gets events, to the microsecond:
 * it skips groups from what their slot records (the oldest entry's second),
 * and that must never skip one with something to drop.
 */
START_TEST(sweep_trims_groups_exactly)
{
	struct window *w = window_new(H, false);
	aupd_time half = AUPD_USEC / 2;

	/* one event a minute for three hours: the last two hours are kept (window and slack) */
	for (int i = 0; i <= 180; i++)
		add(w, "busy", T0 + (int64_t)i * 60 * AUPD_USEC, 1);
	ck_assert_uint_eq(window_entries(w, NULL), 120);
	/* half an hour later, the oldest half hour of them is past the slack */
	window_sweep(w, T0 + 3 * H + H / 2, 100000);
	ck_assert_uint_eq(window_entries(w, NULL), 90);
	ck_assert_uint_eq(w->groups.n, 1);
	window_free(w);

	/* entries half a second into a second: the sweep's limit meets them exactly */
	w = window_new(H, false);
	add(w, "g", T0 + half, 1);
	add(w, "g", T0 + H + half, 1);
	window_sweep(w, T0 + half - 1 + 2 * H, 100000);
	ck_assert_uint_eq(window_entries(w, NULL), 2);
	window_sweep(w, T0 + half + 2 * H, 100000);
	ck_assert_uint_eq(window_entries(w, NULL), 1);
	/* and the group goes when its newest entry is past the slack */
	window_sweep(w, T0 + H + half - 1 + 2 * H, 100000);
	ck_assert_uint_eq(w->groups.n, 1);
	window_sweep(w, T0 + H + half + 2 * H, 100000);
	ck_assert_uint_eq(w->groups.n, 0);
	ck_assert_uint_eq(window_entries(w, NULL), 0);
	window_free(w);
}
END_TEST

START_TEST(bytes_per_entry)
{
	struct window *w = window_new(24 * H, false);
	size_t bytes, n;

	/* 100 groups of 1000 events inside one day */
	for (int i = 0; i < 100000; i++) {
		char key[16];

		snprintf(key, sizeof(key), "t%d", i % 100);
		add(w, key, T0 + (int64_t)i * AUPD_USEC, 1);
	}
	n = window_entries(w, &bytes);
	ck_assert_uint_eq(n, 100000);
	ck_assert_msg(bytes / n <= 40, "%zu bytes per entry", bytes / n);
	window_free(w);
}
END_TEST

/* Groups grow and shrink in place of their one allocation: totals and seqs survive it. */
START_TEST(groups_grow_and_shrink)
{
	struct window *w = window_new(H, true);
	struct wgroup *g = NULL;
	int64_t *seqs, first, last;
	size_t n;
	char key[40];

	/* interleave two groups so that each resize happens with the other in the table */
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "a-key-long-enough-to-matter\x1f%d", i % 2);
		g = window_add(w, key, strlen(key), T0 + (int64_t)i * AUPD_USEC, 1, i);
		ck_assert_double_eq(g->running, i / 2 + 1);
		ck_assert_uint_eq(g->keylen, strlen(key));
		ck_assert_mem_eq(g->key, key, strlen(key) + 1);
	}
	seqs = window_seqs(w, g, &n, &first, &last);
	ck_assert_uint_eq(n, 150);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(seqs[i], (int64_t)(2 * i + 1));
	ck_assert_int_eq(first, T0 + AUPD_USEC);
	ck_assert_int_eq(last, T0 + 299 * AUPD_USEC);
	free(seqs);
	/* three hours on, the old entries go and the ring shrinks: one entry left */
	g = window_add(w, key, strlen(key), T0 + 3 * H, 1, 1000);
	ck_assert_double_eq(g->running, 1);
	ck_assert_uint_eq(g->n, 1);
	ck_assert_uint_le(g->cap, 16);
	seqs = window_seqs(w, g, &n, &first, &last);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(seqs[0], 1000);
	free(seqs);
	/* the other group is untouched */
	ck_assert_double_eq(add(w, "a-key-long-enough-to-matter\x1f" "0", T0 + 300 * AUPD_USEC, 1),
			    151);
	window_free(w);
}
END_TEST

/* Per-actor windows hold many groups of one entry: each costs one small allocation. */
START_TEST(single_entry_groups_are_small)
{
	struct window *w = window_new(H, false);
	size_t bytes, n;

	for (int i = 0; i < 50000; i++) {
		char key[40];

		snprintf(key, sizeof(key), "tenant-%d\x1f" "actor-%d", i % 2000, i);
		ck_assert_double_eq(add(w, key, T0 + i, 2), 2);
	}
	n = window_entries(w, &bytes);
	ck_assert_uint_eq(n, 50000);
	/* header, key and entry (88 bytes here) plus the table's share */
	ck_assert_msg(bytes / n <= 136, "%zu bytes per entry", bytes / n);
	window_free(w);
}
END_TEST

/*
 * The group hash reads every byte of a key and none past it: each key of
 * 0 to 40 bytes sits in a buffer of exactly its size (ASan would see a read
 * beyond), and changing any one byte, or the length, changes the hash.
 */
START_TEST(hash_reads_every_byte_and_no_more)
{
	unsigned seed = 12345;

	for (size_t len = 0; len <= 40; len++) {
		unsigned char *k = malloc(len ? len : 1);
		uint64_t h;

		for (size_t i = 0; i < len; i++)
			k[i] = (unsigned char)rand_r(&seed);
		h = hash_bytes(k, len);
		ck_assert_uint_ne(h, 0);
		ck_assert_uint_eq(hash_bytes(k, len), h);
		for (size_t i = 0; i < len; i++) {
			k[i] ^= 0x01;
			ck_assert_msg(hash_bytes(k, len) != h, "len %zu: byte %zu not read", len, i);
			k[i] ^= 0x80;
			ck_assert_msg(hash_bytes(k, len) != h, "len %zu: byte %zu not read", len, i);
			k[i] ^= 0x81;
		}
		if (len)
			ck_assert_msg(hash_bytes(k, len - 1) != h, "len %zu: length not mixed", len);
		free(k);
	}
}
END_TEST

static Suite *
window_suite(void)
{
	Suite *s = suite_create("window");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, hash_reads_every_byte_and_no_more);
	tcase_add_test(tc, edge_is_exclusive);
	tcase_add_test(tc, groups_are_separate);
	tcase_add_test(tc, late_events);
	tcase_add_test(tc, huge_amounts);
	tcase_add_test(tc, seqs_in_time_order);
	tcase_add_test(tc, random_in_order);
	tcase_add_test(tc, random_out_of_order);
	tcase_add_test(tc, random_fractional);
	tcase_add_test(tc, old_entries_are_dropped);
	tcase_add_test(tc, later_than_the_slack);
	tcase_add_test(tc, sweep_frees_idle_groups);
	tcase_add_test(tc, random_swept);
	tcase_add_test(tc, sweep_trims_groups_exactly);
	tcase_add_test(tc, bytes_per_entry);
	tcase_add_test(tc, groups_grow_and_shrink);
	tcase_add_test(tc, single_entry_groups_are_small);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(window_suite());
}
