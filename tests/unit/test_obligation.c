/* test_obligation.c - the table of open deletion obligations: keys, deadlines, shared strings (policy/obligation.c) */
#include "../../policy/policy_int.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct obligation
ob(const char *rule, const char *tenant, const char *rid, aupd_time deadline, const char *by)
{
	struct obligation o = {.op = OBL_OPEN, .rule = (char *)rule, .tenant = (char *)tenant,
			       .resource_id = (char *)rid, .deadline = deadline,
			       .opened_by = (char *)by, .effect = EFFECT_DENY,
			       .severity = SEV_HIGH};
	return o;
}

START_TEST(keys_are_rule_tenant_resource)
{
	struct obl_table t;
	struct obligation o, out;

	obl_init(&t);
	o = ob("ret", "t", "r1", 10, "e1");
	ck_assert(obl_open(&t, &o));
	ck_assert(!obl_open(&t, &o)); /* open already */
	o = ob("ret", "u", "r1", 10, "e2");
	ck_assert(obl_open(&t, &o));
	o = ob("ret2", "t", "r1", 10, "e3");
	ck_assert(obl_open(&t, &o));
	o = ob("ret", "t", "r10", 10, "e4");
	ck_assert(obl_open(&t, &o));
	/* a key that is a prefix of another, and the empty resource id */
	o = ob("ret", "t", "r", 10, "e5");
	ck_assert(obl_open(&t, &o));
	o = ob("ret", "t", "", 10, NULL);
	ck_assert(obl_open(&t, &o));
	/* tenant and resource id split differently over the same bytes */
	o = ob("ret", "ab", "c", 10, "e6");
	ck_assert(obl_open(&t, &o));
	o = ob("ret", "a", "bc", 10, "e7");
	ck_assert(obl_open(&t, &o));
	ck_assert_uint_eq(obl_count(&t), 8);
	ck_assert_ptr_null(obl_find(&t, "ret", "abc", ""));
	ck_assert_ptr_null(obl_find(&t, "ret", "a", "b"));
	obl_discharge(&t, obl_find(&t, "ret", "a", "bc"), &out);
	ck_assert_str_eq(out.tenant, "a");
	ck_assert_str_eq(out.resource_id, "bc");
	ck_assert_str_eq(out.opened_by, "e7");
	obligation_clear(&out);
	ck_assert_ptr_nonnull(obl_find(&t, "ret", "ab", "c"));
	ck_assert_uint_eq(obl_count(&t), 7);
	ck_assert_ptr_nonnull(obl_find(&t, "ret", "t", "r1"));
	ck_assert_ptr_nonnull(obl_find(&t, "ret", "t", ""));
	ck_assert_ptr_null(obl_find(&t, "ret", "t", "r2"));
	ck_assert_ptr_null(obl_find(&t, "ret", "v", "r1"));
	ck_assert_ptr_null(obl_find(&t, "other", "t", "r1"));
	ck_assert_ptr_null(obl_find(&t, "re", "t", "r1"));
	obl_free_all(&t);
	ck_assert_uint_eq(obl_count(&t), 0);
}
END_TEST

START_TEST(discharge_gives_an_owned_copy)
{
	struct obl_table t;
	struct obligation o, out;
	char rule[8] = "ret", tenant[8] = "t", rid[8] = "r1", by[8] = "e1";

	obl_init(&t);
	o = ob(rule, tenant, rid, 42, by);
	o.shadow = true;
	o.effect = EFFECT_FLAG;
	o.severity = SEV_LOW;
	ck_assert(obl_open(&t, &o));
	/* the table keeps its own copies */
	memset(rule, 'x', 7);
	memset(tenant, 'x', 7);
	memset(rid, 'x', 7);
	memset(by, 'x', 7);
	obl_discharge(&t, obl_find(&t, "ret", "t", "r1"), &out);
	ck_assert_int_eq(out.op, OBL_DISCHARGE);
	ck_assert_str_eq(out.rule, "ret");
	ck_assert_str_eq(out.tenant, "t");
	ck_assert_str_eq(out.resource_id, "r1");
	ck_assert_str_eq(out.opened_by, "e1");
	ck_assert_int_eq(out.deadline, 42);
	ck_assert_int_eq(out.effect, EFFECT_FLAG);
	ck_assert_int_eq(out.severity, SEV_LOW);
	ck_assert(out.shadow);
	obligation_clear(&out);
	ck_assert_ptr_null(out.rule);
	ck_assert_uint_eq(obl_count(&t), 0);
	/* the rule and tenant it named are no longer held */
	ck_assert_uint_eq(t.strs.n, 0);
	ck_assert_ptr_null(obl_find(&t, "ret", "t", "r1"));
	obl_free_all(&t);
}
END_TEST

START_TEST(due_in_deadline_then_opening_order)
{
	struct obl_table t;
	struct obligation o, *due;
	size_t n;

	obl_init(&t);
	o = ob("ret", "t", "c", 30, "3");
	obl_open(&t, &o);
	o = ob("ret", "t", "a", 10, "1");
	obl_open(&t, &o);
	o = ob("ret", "t", "b2", 20, "2b");
	obl_open(&t, &o);
	o = ob("ret", "t", "b1", 20, "2a");
	obl_open(&t, &o);
	ck_assert_uint_eq(obl_take_due(&t, 9, &due), 0);
	free(due);
	n = obl_take_due(&t, 20, &due);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(due[0].resource_id, "a");
	ck_assert_str_eq(due[1].resource_id, "b2"); /* same deadline: opened first */
	ck_assert_str_eq(due[2].resource_id, "b1");
	ck_assert_str_eq(due[2].opened_by, "2a");
	ck_assert_int_eq(due[2].op, OBL_OPEN);
	for (size_t i = 0; i < n; i++)
		obligation_clear(&due[i]);
	free(due);
	ck_assert_uint_eq(obl_count(&t), 1);
	ck_assert_ptr_nonnull(obl_find(&t, "ret", "t", "c"));
	obl_free_all(&t);
}
END_TEST

/* Many obligations of few tenants, removed in a mixed order, agree with a plain array. */
START_TEST(many_against_a_model)
{
	enum { N = 20000 };
	struct obl_table t;
	char rid[32], tenant[16], *open = calloc(N, 1);
	size_t left = 0;
	unsigned x = 12345;

	obl_init(&t);
	for (int i = 0; i < N; i++) {
		struct obligation o;

		snprintf(rid, sizeof(rid), "blob://store/%d", i);
		snprintf(tenant, sizeof(tenant), "tenant-%d", i % 37);
		o = ob(i % 2 ? "biometric-retention" : "cctv-retention", tenant, rid,
		       (aupd_time)(i * 7919 % 1000), "ev");
		ck_assert(obl_open(&t, &o));
		open[i] = 1;
		left++;
	}
	ck_assert_uint_eq(t.strs.n, 2); /* the rule ids, each held once */
	/* the node with its strings (about 80 bytes), its heap slot and its share of the map */
	ck_assert_msg(obl_bytes(&t) / N <= 160, "%zu bytes per obligation", obl_bytes(&t) / N);
	for (int k = 0; k < N; k++) {
		int i;
		struct obl_node *nd;
		struct obligation out;

		x = x * 1103515245 + 12345;
		i = (int)((x >> 8) % N);
		snprintf(rid, sizeof(rid), "blob://store/%d", i);
		snprintf(tenant, sizeof(tenant), "tenant-%d", i % 37);
		nd = obl_find(&t, i % 2 ? "biometric-retention" : "cctv-retention", tenant, rid);
		ck_assert_int_eq(nd != NULL, open[i]);
		if (!nd)
			continue;
		obl_discharge(&t, nd, &out);
		ck_assert_str_eq(out.resource_id, rid);
		ck_assert_str_eq(out.tenant, tenant);
		obligation_clear(&out);
		open[i] = 0;
		left--;
	}
	ck_assert_uint_eq(obl_count(&t), left);
	{
		struct obligation *due;
		size_t n = obl_take_due(&t, 1000, &due);

		ck_assert_uint_eq(n, left);
		for (size_t i = 0; i < n; i++) {
			if (i)
				ck_assert_int_le(due[i - 1].deadline, due[i].deadline);
			obligation_clear(&due[i]);
		}
		free(due);
	}
	ck_assert_uint_eq(obl_count(&t), 0);
	ck_assert_uint_eq(t.strs.n, 0);
	obl_free_all(&t);
	free(open);
}
END_TEST

/*
 * Deadlines over some 300 hours (some before 1970, some on the hour, some
 * shared): openings, discharges, re-openings and takes at times that mostly
 * advance (and sometimes go back) agree with a model: each take returns
 * exactly the open obligations due by then, in deadline then opening order.
 */
START_TEST(due_over_many_hours_against_a_model)
{
	enum { N = 6000 };
	const aupd_time hour = 3600 * AUPD_USEC;
	struct obl_table t;
	struct model {
		aupd_time deadline;
		uint64_t order;
		bool open;
	} *m = calloc(N, sizeof(*m));
	int *want = malloc(N * sizeof(*want));
	char rid[32], tenant[16];
	uint64_t order = 0;
	aupd_time now = -20 * hour;
	uint64_t x = 4242;
	size_t left = 0, takes = 0, taken = 0, ties = 0;

	obl_init(&t);
	for (int step = 0; step < 40000; step++) {
		int i;
		struct obligation o;
		struct obl_node *nd;

		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		i = (int)(x % N);
		snprintf(rid, sizeof(rid), "r/%d", i);
		snprintf(tenant, sizeof(tenant), "t%d", i % 13);
		nd = obl_find(&t, "ret", tenant, rid);
		ck_assert_int_eq(nd != NULL, m[i].open);
		if (!nd) {
			/*
			 * Due from 20 hours before `now` to 280 after: a quarter
			 * exactly on an hour (so that many share a deadline and
			 * come out in opening order), the rest anywhere in it.
			 */
			aupd_time d = (now / hour + (aupd_time)((x >> 20) % 300) - 20) * hour;

			if ((x >> 40) % 4)
				d += (aupd_time)((x >> 8) % (uint64_t)hour);
			o = ob("ret", tenant, rid, d, "ev");
			ck_assert(obl_open(&t, &o));
			m[i] = (struct model){.deadline = d, .order = order++, .open = true};
			left++;
		} else if ((x >> 16) % 3 == 0) {
			struct obligation out;

			obl_discharge(&t, nd, &out);
			ck_assert_int_eq(out.deadline, m[i].deadline);
			obligation_clear(&out);
			m[i].open = false;
			left--;
		}
		if (step % 97 == 0) {
			struct obligation *due;
			size_t n, k = 0;

			/* mostly forward, by up to 3 hours; now and then back by one */
			now += (x >> 50) % 8 == 0 ? -hour : (aupd_time)((x >> 4) % (3 * (uint64_t)hour));
			for (int j = 0; j < N; j++)
				if (m[j].open && m[j].deadline <= now)
					want[k++] = j;
			/* the model's order: deadline, then opening (insertion sort: k is small) */
			for (size_t a = 1; a < k; a++) {
				int v = want[a];
				size_t b = a;

				for (; b > 0 && (m[want[b - 1]].deadline > m[v].deadline ||
						 (m[want[b - 1]].deadline == m[v].deadline &&
						  m[want[b - 1]].order > m[v].order));
				     b--)
					want[b] = want[b - 1];
				want[b] = v;
			}
			for (size_t a = 1; a < k; a++)
				ties += m[want[a]].deadline == m[want[a - 1]].deadline;
			n = obl_take_due(&t, now, &due);
			ck_assert_uint_eq(n, k);
			for (size_t a = 0; a < n; a++) {
				int j = atoi(due[a].resource_id + 2);

				ck_assert_int_eq(j, want[a]);
				ck_assert_int_eq(due[a].deadline, m[j].deadline);
				m[j].open = false;
				obligation_clear(&due[a]);
			}
			free(due);
			left -= n;
			taken += n;
			takes++;
			ck_assert_uint_eq(obl_count(&t), left);
		}
	}
	ck_assert_uint_gt(taken, 1500);
	ck_assert_uint_gt(ties, 200); /* taken together with the same deadline */
	ck_assert_uint_gt(left, 1000); /* and many still waiting */
	ck_assert_int_gt(now, 100 * hour); /* time went forward overall */
	obl_free_all(&t);
	free(m);
	free(want);
	ck_assert_uint_gt(takes, 400);
}
END_TEST

static struct obligation
ob_n(int i, char *rid, size_t rl, char *tenant, size_t tl)
{
	snprintf(rid, rl, "blob://store/%d", i);
	snprintf(tenant, tl, "tenant-%d", i % 101);
	return ob(i % 3 ? "biometric-retention" : "cctv-retention", tenant, rid,
		  (aupd_time)(i * 7919 % 100000), "ev");
}

/* Open obligations as the two maps hold them: the new one's, and the unmoved ones of the old. */
static size_t
map_live(const struct obl_table *t)
{
	size_t n = t->map.n;

	for (size_t i = t->mig; t->old.slots && i < t->old.cap; i++)
		n += t->old.slots[i].h && t->old.slots[i].p;
	return n;
}

/*
 * A large map grows by moving a few slots at each opening: while entries
 * are split between the new map and the outgrown one, every find, opening
 * (of a new key, or again of a discharged one), discharge and expiry agrees
 * with a model, the two maps together hold each open obligation once, and
 * nothing is lost when a move ends.
 */
START_TEST(map_grows_in_steps_against_a_model)
{
	enum { N = 90000 };
	struct obl_table t;
	char rid[32], tenant[16], *open = calloc(N, 1);
	size_t left = 0, moving = 0, checked_moving = 0, moves_done = 0;
	unsigned x = 777;

	obl_init(&t);
	for (int i = 0; i < N; i++) {
		struct obligation o = ob_n(i, rid, sizeof(rid), tenant, sizeof(tenant));

		bool was_moving = t.old.slots != NULL;

		ck_assert(obl_open(&t, &o));
		open[i] = 1;
		left++;
		moving += t.old.slots != NULL;
		moves_done += was_moving && !t.old.slots;
		if (i % 97 == 0) { /* deadlines are 0..99 999: half of them pass by the end */
			struct obligation *due;
			size_t n = obl_take_due(&t, i / 2, &due);

			for (size_t k = 0; k < n; k++) {
				int j = atoi(due[k].resource_id + strlen("blob://store/"));

				ck_assert_int_eq(open[j], 1);
				open[j] = 0;
				left--;
				obligation_clear(&due[k]);
			}
			free(due);
		}
		if (t.old.slots && i % 64 == 0)
			ck_assert_uint_eq(map_live(&t), left);
		for (int r = 0; r < 2; r++) {
			int j;
			struct obl_node *nd;
			struct obligation out;

			x = x * 1103515245 + 12345;
			j = (int)((x >> 8) % (unsigned)(i + 1));
			o = ob_n(j, rid, sizeof(rid), tenant, sizeof(tenant));
			nd = obl_find(&t, o.rule, tenant, rid);
			ck_assert_int_eq(nd != NULL, open[j]);
			checked_moving += t.old.slots != NULL;
			if (nd && (x >> 4) % 3 == 0) {
				obl_discharge(&t, nd, &out);
				ck_assert_str_eq(out.resource_id, rid);
				obligation_clear(&out);
				open[j] = 0;
				left--;
			} else if (!nd && (x >> 4) % 2 == 0) {
				ck_assert(obl_open(&t, &o)); /* opened again */
				open[j] = 1;
				left++;
			} else if (nd) {
				ck_assert(!obl_open(&t, &o)); /* open already */
			}
		}
	}
	/* the map moved from 65 536 slots to 131 072 (at least), and the test ran during it */
	ck_assert_uint_gt(moving, 300);
	ck_assert_uint_gt(checked_moving, 600);
	ck_assert_msg(moves_done >= 1, "moving %zu checked %zu moves %zu", moving, checked_moving, moves_done);
	ck_assert_uint_eq(map_live(&t), left);
	ck_assert_uint_eq(obl_count(&t), left);
	for (int i = 0; i < N; i++) {
		struct obligation o = ob_n(i, rid, sizeof(rid), tenant, sizeof(tenant));

		ck_assert_int_eq(obl_find(&t, o.rule, tenant, rid) != NULL, open[i]);
	}
	{
		struct obligation *due;
		size_t n = obl_take_due(&t, 100000, &due);

		ck_assert_uint_eq(n, left);
		for (size_t i = 0; i < n; i++)
			obligation_clear(&due[i]);
		free(due);
	}
	ck_assert_uint_eq(obl_count(&t), 0);
	obl_free_all(&t);
	free(open);
}
END_TEST

/*
 * Past HUGE_TABLE_MIN bytes a hash table lives in its own mapping: growing
 * into one, out of one into a larger one, and removals that refill slots
 * keep every item findable (and valgrind sees no stray access).
 */
START_TEST(htab_grows_through_large_tables)
{
	enum { N = 140000 }; /* 16-byte slots: 4 MiB from 65 536 items, 8 MiB at the end */
	struct htab t = {0};
	uint32_t *hs = malloc(N * sizeof(*hs));
	unsigned x = 99;

	for (uintptr_t i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		hs[i] = (x >> 3) | 1; /* never 0: 0 marks an empty slot */
		htab_insert(&t, hs[i], (void *)(i + 1));
	}
	ck_assert_uint_ge(t.cap * sizeof(*t.slots), HUGE_TABLE_MIN);
	/* remove the even ones, then every odd one must still be there */
	for (uintptr_t i = 0; i < N; i += 2) {
		size_t s = htab_start(&t, hs[i]);

		while (t.slots[s].p != (void *)(i + 1)) {
			ck_assert_uint_ne(t.slots[s].h, 0);
			s = (s + 1) & (t.cap - 1);
		}
		htab_remove_at(&t, s);
	}
	ck_assert_uint_eq(t.n, N / 2);
	for (uintptr_t i = 1; i < N; i += 2) {
		size_t s = htab_start(&t, hs[i]);

		while (t.slots[s].p != (void *)(i + 1)) {
			ck_assert_uint_ne(t.slots[s].h, 0);
			s = (s + 1) & (t.cap - 1);
		}
	}
	htab_free(&t);
	free(hs);
}
END_TEST

START_TEST(handed_out_obligations_own_their_strings)
{
	struct obligation o = ob("r", "t", "id", 1, NULL), c;
	struct obl_table t;

	obl_init(&t);
	ck_assert(obl_open(&t, &o));
	obl_discharge(&t, obl_find(&t, "r", "t", "id"), &c);
	ck_assert(c.owned);
	ck_assert_str_eq(c.rule, "r");
	ck_assert_str_eq(c.tenant, "t");
	ck_assert_str_eq(c.resource_id, "id");
	ck_assert_str_eq(c.opened_by, "");
	ck_assert_int_eq(c.deadline, 1);
	obligation_clear(&c); /* valgrind: nothing leaks */
	obligation_clear(NULL);
	/* a borrowed one is left alone (ASan: freeing a literal would abort) */
	ck_assert(!o.owned);
	obligation_clear(&o);
	ck_assert_ptr_null(o.rule);
	obl_free_all(&t);
}
END_TEST

/* a string of n bytes from a seed, different for every (seed, n) */
static char *
fill(char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (seed * 31 + i * 7) % 26);
	buf[n] = '\0';
	return buf;
}

/*
 * Nodes come from the table's own chunks by size, and the largest from
 * malloc (obligation.c): keys and event ids of every length, opened through
 * the prepared path and the plain one, discharged, reopened over freed
 * nodes of other sizes, handed out and freed with the table.  Every string
 * must come back as it went in (ASan poisons a freed node; valgrind and
 * LSan see the rest).
 */
START_TEST(nodes_of_every_size_keep_their_strings)
{
	enum { N = 240 };
	static char tenants[N][130], rids[N][1000], bys[N][300];
	struct obl_table t;
	struct obligation o, out, *due;
	bool open[N] = {0};
	size_t n_open = 0, n_due;

	obl_init(&t);
	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < N; i++) {
			if (open[i])
				continue;
			fill(tenants[i], 1 + i % 128, i);
			fill(rids[i], (i * 37 + round * 101) % 997, i + 1000);
			fill(bys[i], (i * 13 + round * 29) % 290, i + 2000 + round);
			o = ob("retention", tenants[i], rids[i], 1000 + i, bys[i]);
			if (i % 2) {
				struct obl_key k;

				obl_open_prepare(&t, &o, 9, hash_bytes("retention", 9), &k);
				ck_assert(obl_open_finish(&t, &k, &o));
				/* a prepared node for a key already open goes back */
				obl_open_prepare(&t, &o, 9, hash_bytes("retention", 9), &k);
				ck_assert(!obl_open_finish(&t, &k, &o));
			} else {
				ck_assert(obl_open(&t, &o));
				ck_assert(!obl_open(&t, &o));
			}
			open[i] = true;
			n_open++;
		}
		ck_assert_uint_eq(obl_count(&t), n_open);
		/* a third of them, a different third each round, are deleted */
		for (unsigned i = round; i < N; i += 3) {
			struct obl_node *nd = obl_find(&t, "retention", tenants[i], rids[i]);

			ck_assert_ptr_nonnull(nd);
			obl_discharge(&t, nd, &out);
			ck_assert_str_eq(out.tenant, tenants[i]);
			ck_assert_str_eq(out.resource_id, rids[i]);
			ck_assert_str_eq(out.opened_by, bys[i]);
			ck_assert_int_eq(out.deadline, 1000 + i);
			obligation_clear(&out);
			open[i] = false;
			n_open--;
		}
	}
	/* half of what is left falls due; the rest goes with the table */
	n_due = obl_take_due(&t, 1000 + N / 2 - 1, &due);
	for (size_t j = 0; j < n_due; j++) {
		unsigned i = (unsigned)(due[j].deadline - 1000);

		ck_assert(open[i]);
		ck_assert_str_eq(due[j].tenant, tenants[i]);
		ck_assert_str_eq(due[j].resource_id, rids[i]);
		ck_assert_str_eq(due[j].opened_by, bys[i]);
		open[i] = false;
		n_open--;
		obligation_clear(&due[j]);
	}
	free(due);
	ck_assert_uint_gt(n_due, 0);
	for (unsigned i = 0; i < N; i++)
		ck_assert_int_eq(obl_find(&t, "retention", tenants[i], rids[i]) != NULL, open[i]);
	ck_assert_uint_eq(obl_count(&t), n_open);
	ck_assert_uint_gt(n_open, 0);
	obl_free_all(&t);
}
END_TEST

static Suite *
obligation_suite(void)
{
	Suite *s = suite_create("obligation");
	TCase *tc = tcase_create("obligation");

	tcase_add_test(tc, keys_are_rule_tenant_resource);
	tcase_add_test(tc, discharge_gives_an_owned_copy);
	tcase_add_test(tc, due_in_deadline_then_opening_order);
	tcase_add_test(tc, many_against_a_model);
	tcase_add_test(tc, due_over_many_hours_against_a_model);
	tcase_add_test(tc, map_grows_in_steps_against_a_model);
	tcase_add_test(tc, handed_out_obligations_own_their_strings);
	tcase_add_test(tc, htab_grows_through_large_tables);
	tcase_add_test(tc, nodes_of_every_size_keep_their_strings);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(obligation_suite());
}
