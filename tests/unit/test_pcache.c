/* test_pcache.c - the page-cache wrapper: skipped truncations lose no data */
#include "aupd/store.h"
#include "testutil.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS 6000

/* Every committed key, read by `db`, is in the model, and no other. */
static void
matches_model(sqlite3 *db, const unsigned char *in)
{
	sqlite3_stmt *st;
	long n = 0, want = 0;

	for (int k = 0; k < KEYS; k++)
		want += in[k];
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT k FROM t ORDER BY h", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int k = sqlite3_column_int(st, 0);

		ck_assert_msg(k >= 0 && k < KEYS && in[k], "key %d should not be there", k);
		n++;
	}
	sqlite3_finalize(st);
	ck_assert_int_eq(n, want);
}

/* A page of the cache that must be there (fetched and unpinned again). */
static void
present(const sqlite3_pcache_methods2 *m, sqlite3_pcache *pc, unsigned key)
{
	sqlite3_pcache_page *pg = m->xFetch(pc, key, 0);

	ck_assert_msg(pg != NULL, "page %u is gone", key);
	m->xUnpin(pc, pg, 0);
}

static void
absent(const sqlite3_pcache_methods2 *m, sqlite3_pcache *pc, unsigned key)
{
	ck_assert_msg(m->xFetch(pc, key, 0) == NULL, "page %u is still there", key);
}

/* Truncates at `limit` and checks whether the wrapper skipped it or passed it on. */
static void
truncate_expect(const sqlite3_pcache_methods2 *m, sqlite3_pcache *pc, unsigned limit,
		bool skip)
{
	struct store_pcache_counts a, b;

	store_pcache_counts(&a);
	m->xTruncate(pc, limit);
	store_pcache_counts(&b);
	ck_assert_msg(b.skipped == a.skipped + skip && b.passed == a.passed + !skip,
		      "truncate at %u: %s expected", limit, skip ? "skip" : "pass");
}

/*
 * The wrapper through the page-cache interface itself, for a page size:
 * what it skips, and that a truncation it must pass on does drop the pages.
 */
static void
wrapper_calls(const sqlite3_pcache_methods2 *m, int page_size)
{
	const unsigned temp = 0x40000000u / (unsigned)page_size + 1; /* the pending-byte page */
	sqlite3_pcache *pc = m->xCreate(page_size, 64, 1);
	sqlite3_pcache_page *pg;

	ck_assert_ptr_nonnull(pc);
	m->xCachesize(pc, 100);
	for (unsigned k = 1; k <= 10; k++)
		m->xUnpin(pc, m->xFetch(pc, k, 2), 0);
	/* nothing past 10: skipped, and the pages stay */
	truncate_expect(m, pc, 11, true);
	present(m, pc, 10);
	/* page 5 renamed through the temporary number and back: still nothing past 10 */
	pg = m->xFetch(pc, 5, 0);
	m->xRekey(pc, pg, 5, temp);
	m->xRekey(pc, pg, temp, 5);
	m->xUnpin(pc, pg, 0);
	truncate_expect(m, pc, 11, true);
	present(m, pc, 5);
	/* a page left under the temporary number must go */
	pg = m->xFetch(pc, 6, 0);
	m->xRekey(pc, pg, 6, temp);
	m->xUnpin(pc, pg, 0);
	truncate_expect(m, pc, 11, false);
	absent(m, pc, temp);
	/* one discarded under it: the wrapper cannot know, so it passes the next one on */
	pg = m->xFetch(pc, 9, 0);
	m->xRekey(pc, pg, 9, temp);
	m->xUnpin(pc, pg, 1);
	absent(m, pc, temp);
	truncate_expect(m, pc, 11, false);
	truncate_expect(m, pc, 11, true);
	/* the temporary page fetched for real (a corrupt database asks for it) */
	m->xUnpin(pc, m->xFetch(pc, temp, 2), 0);
	truncate_expect(m, pc, 11, false);
	absent(m, pc, temp);
	/* a page created past the limit must go too */
	m->xUnpin(pc, m->xFetch(pc, 20, 2), 0);
	truncate_expect(m, pc, 15, false);
	absent(m, pc, 20);
	truncate_expect(m, pc, 15, true);
	/* and one renamed past it */
	pg = m->xFetch(pc, 7, 0);
	m->xRekey(pc, pg, 7, 30);
	m->xUnpin(pc, pg, 0);
	truncate_expect(m, pc, 15, false);
	absent(m, pc, 30);
	present(m, pc, 10);
	/* a truncation below pages that are there is passed on, and drops them */
	truncate_expect(m, pc, 9, false);
	absent(m, pc, 10);
	present(m, pc, 8);
	ck_assert_int_eq(m->xPagecount(pc), 6); /* 1-5 and 8 */
	m->xDestroy(pc);
}

/* Inserts k if the transaction sees it absent, else deletes it; cur follows. */
static void
toggle(sqlite3 *db, unsigned char *cur, int k)
{
	char sql[128];

	if (cur[k])
		snprintf(sql, sizeof(sql), "DELETE FROM t WHERE k = %d", k);
	else
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, randomblob(40), printf('%%.300c', 'x'))", k);
	tu_sql_exec(db, sql);
	cur[k] = !cur[k];
}

/*
 * Random keys in an index split pages out of order (the splits that rename
 * pages through the pending-byte page); rolled-back transactions that grew
 * the file, rolled-back savepoints and deletions make SQLite drop pages past
 * the end for real.  Whatever the wrapper skips, the data must be exactly
 * what was committed, seen by the writing connection and by a fresh one.
 */
START_TEST(skipped_truncations_lose_nothing)
{
	unsigned char *in = calloc(KEYS, 1), *cur = calloc(KEYS, 1), *sp = calloc(KEYS, 1);
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	struct store_pcache_counts before, after;
	sqlite3_pcache_methods2 m;
	sqlite3 *db, *other;
	unsigned seed = 7;

	store_pcache_install(); /* before SQLite's first use in this process */
	ck_assert_int_eq(sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &m), SQLITE_OK);
	ck_assert_int_eq(sqlite3_initialize(), SQLITE_OK);
	wrapper_calls(&m, 4096);
	wrapper_calls(&m, 1024);
	wrapper_calls(&m, 65536);

	store_pcache_counts(&before);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	tu_sql_exec(db, "PRAGMA journal_mode = WAL; PRAGMA cache_size = 400;"
			"CREATE TABLE t (k INTEGER PRIMARY KEY, h BLOB NOT NULL, v TEXT NOT NULL);"
			"CREATE INDEX t_h ON t (h)");
	for (int tx = 0; tx < 900; tx++) {
		memcpy(cur, in, KEYS);
		tu_sql_exec(db, "BEGIN");
		for (int i = 0; i < 6; i++)
			toggle(db, cur, (int)(rand_r(&seed) % KEYS));
		if (tx % 5 == 1) {
			/* a second half that is rolled back to the savepoint */
			memcpy(sp, cur, KEYS);
			tu_sql_exec(db, "SAVEPOINT s");
			for (int i = 0; i < 6; i++)
				toggle(db, cur, (int)(rand_r(&seed) % KEYS));
			tu_sql_exec(db, "ROLLBACK TO s; RELEASE s");
			memcpy(cur, sp, KEYS);
		} else {
			for (int i = 0; i < 6; i++)
				toggle(db, cur, (int)(rand_r(&seed) % KEYS));
		}
		if (tx % 7 == 3) {
			tu_sql_exec(db, "ROLLBACK");
			continue;
		}
		tu_sql_exec(db, "COMMIT");
		memcpy(in, cur, KEYS);
		if (tx % 150 == 149) {
			tu_sql_integrity_ok(db);
			matches_model(db, in);
		}
	}
	tu_sql_integrity_ok(db);
	matches_model(db, in);
	ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
	matches_model(other, in);
	tu_sql_integrity_ok(other);
	sqlite3_close(other);

	store_pcache_counts(&after);
	/*
	 * The splits did rename pages through the pending-byte page, the wrapper
	 * skipped truncations after them, and rollbacks still truncated for real.
	 */
	ck_assert_msg(after.temp_renames > before.temp_renames, "no page renamed");
	ck_assert_msg(after.skipped - before.skipped > 500, "%lu truncations skipped",
		      after.skipped - before.skipped);
	ck_assert_msg(after.passed > before.passed, "no truncation passed on");
	ck_assert_int_gt(tu_sql_int(db, "SELECT count(*) FROM t"), 1000);
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
	free(in);
	free(cur);
	free(sp);
}
END_TEST

static Suite *
pcache_suite(void)
{
	Suite *s = suite_create("pcache");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, skipped_truncations_lose_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(pcache_suite());
}
