/* test_store.c - schema migrations, the idempotency index (event keys), obligations by seq */
#include "aupd/eventkeys.h"
#include "aupd/store.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
insert_event(struct dbconn *c, int64_t seq, const char *tenant, const char *id)
{
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_prepare_v2(c->db,
					    "INSERT INTO events (seq, key, tenant, id, actor, action, "
					    "verdict, time) VALUES (?, ?, ?, ?, 'a', 'x.y', 0, 0)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, store_event_key(tenant, id));
	sqlite3_bind_text(st, 3, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static int64_t
count(struct dbconn *c, const char *sql)
{
	return tu_sql_int(c->db, sql);
}

/* Stores event `prefix``i` at seq and adds its key. */
static void
add_key(struct dbconn *c, struct eventkeys *ek, const char *prefix, int i, int64_t seq)
{
	char id[32];

	snprintf(id, sizeof(id), "%s%d", prefix, i);
	insert_event(c, seq, "t", id);
	eventkeys_add(ek, store_event_key("t", id), seq);
}

/* The seq of event `prefix``i` as eventkeys_find() sees it. */
static int64_t
find_key(struct dbconn *c, struct eventkeys *ek, const char *prefix, int i)
{
	struct aupd_error err;
	char id[32];

	snprintf(id, sizeof(id), "%s%d", prefix, i);
	return eventkeys_find(ek, c, store_event_key("t", id), "t", id, &err);
}

/*
 * Runs merge steps until event_keys holds `rows` rows: a merge begins with
 * steps that group its keys and write nothing, then writes a slice a step.
 */
static void
merge_until_rows(struct dbconn *c, struct eventkeys *ek, long long rows)
{
	struct aupd_error err;

	for (int i = 0; i < 1000 && count(c, "SELECT count(*) FROM event_keys") < rows; i++)
		ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), rows);
}

/*
 * What the writer does between batches: every merge slice that is due, or
 * else a slice of a filter rebuild if one goes on.  True when that ended a
 * rebuild.
 */
static bool
between_batches(struct dbconn *c, struct eventkeys *ek)
{
	struct aupd_error err;
	bool merged = false;

	while (eventkeys_merge_due(ek)) {
		ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
		merged = true;
	}
	if (merged || !eventkeys_rebuild_due(ek))
		return false;
	ck_assert_int_eq(eventkeys_rebuild(ek, c, &err), 0);
	return !eventkeys_rebuild_due(ek);
}

START_TEST(migrations_from_1_move_keys_out_of_events)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "aupd.db");
	struct aupd_error err;
	struct dbconn *c = store_open(path, STORE_CREATE | STORE_NO_MIGRATE, &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(store_migrate_to(c, 1, &err), 0);
	insert_event(c, 1, "a", "e1");
	insert_event(c, 2, "b", "e1");
	insert_event(c, 5, "a", "e2");
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master WHERE name = 'events_key'"), 1);
	store_close(c);

	c = store_open(path, STORE_CREATE, &err);
	ck_assert_msg(c != NULL, "%s", err.msg);
	ck_assert_int_eq(count(c, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master WHERE name = 'events_key'"), 0);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master "
				  "WHERE name = 'events_tenant_actor'"),
			 0);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 3);
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 5);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(keys_found_in_memory_and_after_merges)
{
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;
	char id[32];

	ck_assert_ptr_nonnull(c);
	ek = eventkeys_load(c, 4, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= 10; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		insert_event(c, i, "t", id);
		eventkeys_add(ek, store_event_key("t", id), i);
		/* a merge goes a slice (here one key) at a time, between batches */
		while (eventkeys_merge_due(ek))
			ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
		if (i == 6) {
			/* a merge half done: its keys are found in memory and in storage */
			snprintf(id, sizeof(id), "e%d", i + 1);
			insert_event(c, i + 1, "t", id);
			eventkeys_add(ek, store_event_key("t", id), i + 1);
			snprintf(id, sizeof(id), "e%d", i + 2);
			insert_event(c, i + 2, "t", id);
			eventkeys_add(ek, store_event_key("t", id), i + 2);
			ck_assert(eventkeys_merge_due(ek));
			merge_until_rows(c, ek, 6);
			for (int k = 1; k <= 8; k++) {
				snprintf(id, sizeof(id), "e%d", k);
				ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", id), "t", id,
								&err),
						 k);
			}
			/* not merged until the last slice: a restart reloads them */
			ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
						  "WHERE key = 'keys_merged_seq'"),
					 4);
			while (eventkeys_merge_due(ek))
				ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
			i += 2;
		}
	}
	/* e1..e8 were merged in two rounds of 4; e9 and e10 are only in memory */
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 8);
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 8);
	for (int i = 1; i <= 10; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", id), "t", id, &err), i);
	}
	ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", "e11"), "t", "e11", &err), 0);
	ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("u", "e1"), "u", "e1", &err), 0);
	/* a key that matches but names another event (a hash collision) is not a hit */
	ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", "e3"), "t", "e4", &err), 0);
	eventkeys_free(ek);
	/* a restart finds both kinds again */
	ek = eventkeys_load(c, 4, &err);
	for (int i = 1; i <= 10; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", id), "t", id, &err), i);
	}
	eventkeys_free(ek);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * The table of recent keys keeps seqs as 32-bit distances from a base: a seq
 * 2^32 or more past it (billions of ledger records with no event between)
 * is still found, makes a merge due at once, and after the merge the table
 * holds seqs past the new base again.
 */
START_TEST(keys_found_across_seq_gaps)
{
	static const int64_t seqs[] = {3, 4, (1LL << 32) + 3, (1LL << 32) + 4, (5LL << 32) + 1};
	/* far fewer keys than merge_every: due only when a seq is too far past the base */
	static const bool due[] = {false, false, true, false, true};
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;
	size_t n = sizeof(seqs) / sizeof(seqs[0]);

	ck_assert_ptr_nonnull(c);
	ek = eventkeys_load(c, 1000, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 0; i < (int)n; i++) {
		add_key(c, ek, "g", i, seqs[i]);
		ck_assert_int_eq(eventkeys_merge_due(ek), due[i]);
		for (int k = 0; k <= i; k++)
			ck_assert_int_eq(find_key(c, ek, "g", k), seqs[k]);
		if (i == 2) { /* the merge takes all three; the next seq is 1 past its base */
			between_batches(c, ek);
			ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 3);
		}
	}
	between_batches(c, ek);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 5);
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 seqs[n - 1]);
	for (int k = 0; k < (int)n; k++)
		ck_assert_int_eq(find_key(c, ek, "g", k), seqs[k]);
	/* a key that matches but names another event is still no hit */
	ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", "g4"), "t", "g0", &err), 0);
	eventkeys_free(ek);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static int
key_order(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * A merge writes its keys in key order, slice by slice, so that each page
 * of the index is visited once: after every slice the index holds exactly
 * the smallest keys of the merge.  (The keys are grouped by their top bits
 * when the merge starts and each group is sorted before its first slice.)
 * With 1024 keys a slice is 4 keys, written one at a time; with 10 240 it
 * is 40: one statement of 32 rows, then 8 of one.
 */
static void
check_merge_order(int every)
{
	int n = every + 400;
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;
	int64_t *sorted = malloc((size_t)n * sizeof(*sorted));
	char id[32], sql[128];
	int64_t merged = 0, slices = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(store_exec(c, "BEGIN", &err), 0);
	for (int i = 1; i <= every; i++) {
		snprintf(id, sizeof(id), "o%d", i);
		insert_event(c, i, "t", id);
	}
	ck_assert_int_eq(store_exec(c, "COMMIT", &err), 0);
	ek = eventkeys_load(c, (uint32_t)every, &err);
	ck_assert_ptr_nonnull(ek);
	ck_assert(eventkeys_merge_due(ek)); /* the events stored above, loaded as recent ones */
	for (int i = 1; i <= every; i++) {
		snprintf(id, sizeof(id), "o%d", i);
		sorted[i - 1] = store_event_key("t", id);
	}
	qsort(sorted, (size_t)every, sizeof(*sorted), key_order);
	for (int i = every + 1; i <= n; i++) {
		if (merged < every) {
			/* the merge runs while keys keep coming: one step per event here */
			ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
			slices++;
			merged = count(c, "SELECT count(*) FROM event_keys");
			if (merged > 0) { /* 0 while the first steps group the keys */
				snprintf(sql, sizeof(sql), "SELECT count(*) FROM event_keys WHERE key <= %lld",
					 (long long)sorted[merged - 1]);
				ck_assert_int_eq(count(c, sql), merged);
			}
		}
		snprintf(id, sizeof(id), "o%d", i);
		insert_event(c, i, "t", id);
		eventkeys_add(ek, store_event_key("t", id), i);
	}
	ck_assert_int_eq(merged, every);
	ck_assert_int_eq(slices, 64 + 256); /* steps grouping the keys, then slices */
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 every);
	for (int i = 1; i <= n; i++) {
		snprintf(id, sizeof(id), "o%d", i);
		ck_assert_int_eq(eventkeys_find(ek, c, store_event_key("t", id), "t", id, &err), i);
	}
	eventkeys_free(ek);
	free(sorted);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}

START_TEST(merge_writes_keys_in_order)
{
	check_merge_order(1024);
	check_merge_order(10240);
}
END_TEST

/*
 * A failed commit reloads the recent keys from storage (eventkeys_reload)
 * while a merge may be half done: the merge still completes, every key
 * stays findable, and afterwards only the keys past the merge count
 * towards the next one.
 */
/* A reload (after a failed commit) while a merge groups its keys, or once it wrote a slice. */
static void
check_reload_during_merge(bool after_a_slice)
{
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;

	ck_assert_ptr_nonnull(c);
	ek = eventkeys_load(c, 4, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= 6; i++) {
		add_key(c, ek, "r", i, i);
		if (i == 4) { /* the merge of r1..r4 starts: one step, or one slice */
			ck_assert(eventkeys_merge_due(ek));
			if (after_a_slice)
				merge_until_rows(c, ek, 1);
			else
				ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0);
		}
	}
	ck_assert_int_eq(eventkeys_reload(ek, c, &err), 0);
	between_batches(c, ek);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 4);
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 4);
	for (int i = 1; i <= 6; i++)
		ck_assert_int_eq(find_key(c, ek, "r", i), i);
	/* r5 and r6 are the only keys left in memory: two more make the next merge due */
	for (int i = 7; i <= 8; i++) {
		ck_assert(!eventkeys_merge_due(ek));
		add_key(c, ek, "r", i, i);
	}
	ck_assert(eventkeys_merge_due(ek));
	eventkeys_free(ek);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}

START_TEST(reload_during_merge)
{
	check_reload_during_merge(false);
	check_reload_during_merge(true);
}
END_TEST

/*
 * The Bloom filter in front of the index is rebuilt, larger, once it is
 * full, a slice at a time between batches while events keep coming.  The
 * keys in memory when it starts, those stored while it goes on (in memory,
 * or merged meanwhile) and those it reads from the index must all be in
 * the new filter, or their events would be taken for new ones.  (A small
 * limits.keys_in_memory gets a small filter and small slices: here it fills
 * after 256 keys, then 1,024, and each rebuild takes dozens of slices.)
 */
START_TEST(filter_rebuild_keeps_every_key)
{
	enum { N = 3000 };
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;
	int rebuilds = 0, during = 0;

	ck_assert_ptr_nonnull(c);
	ek = eventkeys_load(c, 64, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= N; i++) {
		add_key(c, ek, "b", i, i);
		if (eventkeys_rebuild_due(ek))
			during++;
		rebuilds += between_batches(c, ek);
		/* a key stored a while ago, and one never stored, at every step */
		ck_assert_int_eq(find_key(c, ek, "b", (i + 1) / 2), (i + 1) / 2);
		ck_assert_int_eq(find_key(c, ek, "new", i), 0);
	}
	ck_assert_int_ge(rebuilds, 2);
	/* merge slices commit unsynced; every other commit is synced (FULL is 2) */
	ck_assert_int_eq(count(c, "PRAGMA synchronous"), 2);
	ck_assert_int_gt(during, 100);
	ck_assert_int_gt(count(c, "SELECT count(*) FROM event_keys"), N / 2);
	for (int i = 1; i <= N; i++)
		ck_assert_int_eq(find_key(c, ek, "b", i), i);
	eventkeys_free(ek);

	/* and a restart in the middle of one starts from what is stored */
	ek = eventkeys_load(c, 64, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= N; i++)
		ck_assert_int_eq(find_key(c, ek, "b", i), i);
	eventkeys_free(ek);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * The cases around a merge that a review listed as untested: a restart
 * halfway through one (its keys partly in the index, keys_merged_seq not
 * yet moved), a seq too far out for the table arriving while one goes on,
 * and the table of new keys growing while the merged one is set aside.
 */
START_TEST(merge_restart_far_and_growth)
{
	char *dir = tu_tmpdir();
	struct aupd_error err;
	struct dbconn *c = store_open(tu_path(dir, "aupd.db"), STORE_CREATE, &err);
	struct eventkeys *ek;
	int64_t far = (1LL << 32) + 100;

	ck_assert_ptr_nonnull(c);
	ek = eventkeys_load(c, 4, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= 6; i++)
		add_key(c, ek, "m", i, i);
	merge_until_rows(c, ek, 1); /* one slice of m1..m6 */
	eventkeys_free(ek);

	/* a restart: the merge begins again from what is stored */
	ek = eventkeys_load(c, 4, &err);
	ck_assert_ptr_nonnull(ek);
	for (int i = 1; i <= 6; i++)
		ck_assert_int_eq(find_key(c, ek, "m", i), i);
	ck_assert(eventkeys_merge_due(ek));
	merge_until_rows(c, ek, 2); /* m1..m6 again: the stored one, then one more */

	/* a far seq while that merge goes on: findable, and every merge due at once */
	add_key(c, ek, "f", 1, far);
	ck_assert_int_eq(find_key(c, ek, "f", 1), far);
	ck_assert(eventkeys_merge_due(ek));
	between_batches(c, ek);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM event_keys"), 7);
	ck_assert_int_eq(count(c, "SELECT CAST(value AS INTEGER) FROM meta "
				  "WHERE key = 'keys_merged_seq'"),
			 far);

	/* a merge set aside while the new table grows past its first size (1024 slots) */
	for (int i = 1; i <= 4; i++)
		add_key(c, ek, "g", i, far + i);
	ck_assert_int_eq(eventkeys_merge(ek, c, &err), 0); /* starts: g1..g4 set aside */
	for (int i = 5; i <= 1500; i++)
		add_key(c, ek, "g", i, far + i);
	for (int i = 1; i <= 1500; i++)
		ck_assert_int_eq(find_key(c, ek, "g", i), far + i);
	between_batches(c, ek);
	for (int i = 1; i <= 6; i++)
		ck_assert_int_eq(find_key(c, ek, "m", i), i);
	ck_assert_int_eq(find_key(c, ek, "f", 1), far);
	for (int i = 1; i <= 1500; i++)
		ck_assert_int_eq(find_key(c, ek, "g", i), far + i);
	eventkeys_free(ek);

	/* and after a restart, the same */
	ek = eventkeys_load(c, 4, &err);
	ck_assert_ptr_nonnull(ek);
	ck_assert_int_eq(find_key(c, ek, "f", 1), far);
	for (int i = 1; i <= 1500; i++)
		ck_assert_int_eq(find_key(c, ek, "g", i), far + i);
	eventkeys_free(ek);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(migration_4_keys_obligations_by_seq)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "aupd.db");
	struct aupd_error err;
	struct dbconn *c = store_open(path, STORE_CREATE | STORE_NO_MIGRATE, &err);
	sqlite3_stmt *st;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(store_migrate_to(c, 3, &err), 0);
	ck_assert_int_eq(store_exec(c,
				    "INSERT INTO obligations (rule, tenant, resource, deadline, "
				    "opened_by, effect, severity, shadow, opened_seq) VALUES "
				    "('keep', 't', 'r1', 100, 'e1', 2, 1, 0, 7),"
				    "('keep', 't', 'r2', 200, 'e2', 2, 1, 1, 9),"
				    "('other', 't', 'r1', 300, 'e1', 1, 0, 0, 7)",
				    &err),
			 0);
	store_close(c);

	c = store_open(path, STORE_CREATE, &err);
	ck_assert_msg(c != NULL, "%s", err.msg);
	ck_assert_int_eq(count(c, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM obligations"), 3);
	/* every column kept, now keyed by (opened_seq, rule) */
	ck_assert_int_eq(sqlite3_prepare_v2(c->db,
					    "SELECT rule, tenant, resource, deadline, opened_by, "
					    "effect, severity, shadow FROM obligations "
					    "WHERE opened_seq = 9 AND rule = 'keep'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "r2");
	ck_assert_int_eq(sqlite3_column_int64(st, 3), 200);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 4), "e2");
	ck_assert_int_eq(sqlite3_column_int(st, 7), 1);
	sqlite3_finalize(st);
	ck_assert_int_eq(store_exec(c, "DELETE FROM obligations WHERE opened_seq = 7 AND rule = 'other'",
				    &err),
			 0);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM obligations WHERE opened_seq = 7"), 1);
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* The query plan of `sql` is one step, and names `want`. */
static void
plan_is(struct dbconn *c, const char *sql, const char *want)
{
	char eqp[512];
	sqlite3_stmt *st;

	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_prepare_v2(c->db, eqp, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_msg(strstr((const char *)sqlite3_column_text(st, 3), want), "plan: %s",
		      sqlite3_column_text(st, 3));
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

START_TEST(migration_5_tenant_indexes_lead_with_the_epoch)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "aupd.db");
	struct aupd_error err;
	struct dbconn *c = store_open(path, STORE_CREATE | STORE_NO_MIGRATE, &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(store_migrate_to(c, 4, &err), 0);
	insert_event(c, 3, "t", "e3");
	insert_event(c, 20000, "u", "e20000");
	ck_assert_int_eq(store_exec(c,
				    "INSERT INTO verdict_rules (rule, tenant, seq) VALUES "
				    "('a', 't', 3), ('b', 't', 3), ('a', 'u', 20000)",
				    &err),
			 0);
	store_close(c);

	c = store_open(path, STORE_CREATE, &err);
	ck_assert_msg(c != NULL, "%s", err.msg);
	ck_assert_int_eq(count(c, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	/* every match kept, now keyed by (seq, rule) */
	ck_assert_int_eq(count(c, "SELECT count(*) FROM verdict_rules"), 3);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM verdict_rules WHERE seq = 3 AND rule = 'b' "
				  "AND tenant = 't'"),
			 1);
	/* the old rule index is gone, the new ones are there, keyed as described */
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master WHERE name = "
				  "'verdict_rules_seq'"),
			 0);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
				  "name IN ('events_tenant', 'verdict_rules_rule', "
				  "'verdict_rules_tenant')"),
			 3);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM sqlite_master WHERE name = 'verdict_rules' "
				  "AND sql LIKE '%PRIMARY KEY (seq, rule)%'"),
			 1);
	/* each index leads with the epoch expression (cid -2), then the named columns */
	ck_assert_int_eq(count(c, "SELECT count(*) FROM pragma_index_xinfo('events_tenant') "
				  "WHERE (seqno = 0 AND cid = -2) OR (seqno = 1 AND name = 'tenant') "
				  "OR (seqno = 2 AND name = 'seq')"),
			 3);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM pragma_index_xinfo('verdict_rules_tenant') "
				  "WHERE (seqno = 0 AND cid = -2) OR (seqno = 1 AND name = 'rule') "
				  "OR (seqno = 2 AND name = 'tenant') OR (seqno = 3 AND name = 'seq')"),
			 4);
	ck_assert_int_eq(count(c, "SELECT count(*) FROM pragma_index_xinfo('verdict_rules_rule') "
				  "WHERE (seqno = 0 AND name = 'rule') OR (seqno = 1 AND name = 'seq')"),
			 2);
	/* the queries by tenant find them through the epoch-led indexes, with no sort */
	plan_is(c,
		"SELECT seq FROM verdict_rules WHERE seq >> 14 = 1 AND rule = 'a' AND tenant = 'u' "
		"AND seq > 0 ORDER BY seq",
		"verdict_rules_tenant (<expr>=? AND rule=? AND tenant=?");
	ck_assert_int_eq(count(c, "SELECT seq FROM events WHERE seq >> 14 = 1 AND tenant = 'u'"),
			 20000);
	plan_is(c, "SELECT seq FROM events WHERE seq >> 14 = 1 AND tenant = 'u' AND seq > 0 "
		   "ORDER BY seq",
		"events_tenant (<expr>=? AND tenant=?");
	store_close(c);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, migrations_from_1_move_keys_out_of_events);
	tcase_add_test(tc, keys_found_in_memory_and_after_merges);
	tcase_add_test(tc, keys_found_across_seq_gaps);
	tcase_add_test(tc, merge_writes_keys_in_order);
	tcase_add_test(tc, reload_during_merge);
	tcase_add_test(tc, filter_rebuild_keeps_every_key);
	tcase_add_test(tc, merge_restart_far_and_growth);
	tcase_add_test(tc, migration_4_keys_obligations_by_seq);
	tcase_add_test(tc, migration_5_tenant_indexes_lead_with_the_epoch);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(suite());
}
