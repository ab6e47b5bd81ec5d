/* test_walbuf.c - the WAL-buffering VFS: fewer writes, and every commit still where readers look */
#include "aupd/store.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static sqlite3 *
open_db(const char *path)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	/* the VFS SQLite picked for it is the wrapper */
	ck_assert_str_eq(sqlite3_vfs_find(NULL)->zName, "aupd-walbuf");
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* Inserts n rows of `size` bytes, numbered from `first`. */
static void
insert_rows(sqlite3 *db, long long first, int n, int size)
{
	sqlite3_stmt *st;
	char *blob = malloc((size_t)size);

	memset(blob, 'x', (size_t)size);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO t (k, v) VALUES (?, ?)", -1, &st, NULL),
			 SQLITE_OK);
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, first + i);
		sqlite3_bind_blob(st, 2, blob, size, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	free(blob);
}

static int frames_last;

static int
on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)arg;
	(void)db;
	(void)name;
	frames_last = frames;
	return SQLITE_OK;
}

/*
 * SQLite writes a frame as two writes (header, page): a commit reaches the
 * file system in one write, or one per 96 KiB when larger.
 */
START_TEST(a_commit_is_one_write)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	unsigned long w0, f0, w1, f1;
	int before;
	sqlite3 *db;

	store_walbuf_install();
	db = open_db(path);
	tu_sql_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			"CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	sqlite3_wal_hook(db, on_wal, NULL);
	insert_rows(db, 0, 10, 100);
	for (int big = 0; big < 2; big++) {
		before = frames_last;
		store_walbuf_counts(&w0, &f0);
		tu_sql_exec(db, "BEGIN");
		/* 12 pages, or 100 (400 KiB: more than one buffer) */
		insert_rows(db, 1000 + big * 1000, big ? 100 : 12, 3000);
		tu_sql_exec(db, "COMMIT");
		store_walbuf_counts(&w1, &f1);
		ck_assert_int_ge(frames_last - before, big ? 100 : 12);
		ck_assert_uint_ge(w1 - w0, 2 * (unsigned long)(frames_last - before));
		if (big)
			ck_assert_uint_le(f1 - f0, 6); /* 400 KiB in 96 KiB writes */
		else
			ck_assert_uint_eq(f1 - f0, 1);
	}
	ck_assert_int_eq(tu_sql_int(db, "SELECT count(*) FROM t"), 122);
	tu_sql_integrity_ok(db);
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * With synchronous = OFF nothing is ever synced, so only the flushes at a
 * commit (after its commit frame, before a lock change) put its frames in
 * the file: another connection must
 * read each commit at once, through WAL restarts and checkpoints, and a
 * fresh one must find the same database after both closed.
 */
START_TEST(other_connections_read_every_commit)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	sqlite3 *db, *other;
	unsigned seed = 11;
	long long rows = 0, next = 0, bytes = 0;

	store_walbuf_install();
	db = open_db(path);
	tu_sql_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = 20;"
			"CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	other = open_db(path);
	for (int tx = 0; tx < 400; tx++) {
		int n = 1 + (int)(rand_r(&seed) % 40);
		int size = tx % 17 == 0 ? 6000 : 50 + (int)(rand_r(&seed) % 900);

		tu_sql_exec(db, "BEGIN");
		insert_rows(db, next, n, size);
		if (tx % 7 == 3) {
			/* some of it deleted again: pages rewritten within the transaction */
			char sql[96];

			snprintf(sql, sizeof(sql), "DELETE FROM t WHERE k >= %lld AND k < %lld", next,
				 next + n / 2);
			tu_sql_exec(db, sql);
			rows -= n / 2;
			bytes -= (long long)(n / 2) * size;
		}
		if (tx % 11 == 5) {
			tu_sql_exec(db, "SAVEPOINT s");
			insert_rows(db, next + n, 5, 2000);
			tu_sql_exec(db, "ROLLBACK TO s; RELEASE s");
		}
		tu_sql_exec(db, "COMMIT");
		rows += n;
		bytes += (long long)n * size;
		next += n + 5;
		ck_assert_int_eq(tu_sql_int(other, "SELECT count(*) FROM t"), rows);
		ck_assert_int_eq(tu_sql_int(other, "SELECT sum(length(v)) FROM t"), bytes);
		if (tx % 50 == 49)
			/* everything copied: the next commit starts the WAL over from its header */
			tu_sql_exec(other, "PRAGMA wal_checkpoint(RESTART)");
		else if (tx % 13 == 0)
			tu_sql_exec(other, "PRAGMA wal_checkpoint(PASSIVE)");
	}
	tu_sql_integrity_ok(other);
	sqlite3_close(other);
	sqlite3_close(db);
	db = open_db(path);
	ck_assert_int_eq(tu_sql_int(db, "SELECT count(*) FROM t"), rows);
	ck_assert_int_eq(tu_sql_int(db, "SELECT sum(length(v)) FROM t"), bytes);
	tu_sql_integrity_ok(db);
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * A writer killed at any moment keeps every commit whose COMMIT returned
 * (synchronous = FULL: the buffer is written before the sync): the child
 * reports each one through a pipe before it is killed mid-stream.
 */
START_TEST(killed_writer_keeps_every_commit)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	long long acked = -1, v;
	int fds[2];
	pid_t pid;
	sqlite3 *db;

	store_walbuf_install();
	db = open_db(path);
	tu_sql_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
	sqlite3_close(db);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		db = open_db(path);
		tu_sql_exec(db, "PRAGMA synchronous = FULL");
		for (long long tx = 0;; tx++) {
			tu_sql_exec(db, "BEGIN");
			insert_rows(db, tx * 100, 1 + (int)(tx % 30), 700);
			tu_sql_exec(db, "COMMIT");
			if (write(fds[1], &tx, sizeof(tx)) != sizeof(tx))
				_exit(1);
		}
	}
	close(fds[1]);
	while (acked < 150 && read(fds[0], &v, sizeof(v)) == sizeof(v))
		acked = v;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(fds[0], &v, sizeof(v)) == sizeof(v))
		acked = v; /* reported before the kill landed */
	close(fds[0]);
	ck_assert_int_ge(acked, 150);
	db = open_db(path);
	tu_sql_integrity_ok(db);
	for (long long tx = 0; tx <= acked; tx++) {
		char sql[96];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE k >= %lld AND k < %lld",
			 tx * 100, tx * 100 + 100);
		ck_assert_int_eq(tu_sql_int(db, sql), 1 + tx % 30);
	}
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* Reopens the database: intact, with the other connection's 400 rows, and `total` rows in all (-1: not checked). */
static void
check_other_commit(const char *path, int total)
{
	sqlite3 *c = open_db(path);

	tu_sql_integrity_ok(c);
	if (total >= 0)
		ck_assert_int_eq(tu_sql_int(c, "SELECT count(*) FROM t"), total);
	ck_assert_int_eq(tu_sql_int(c, "SELECT count(*) FROM t WHERE k > 5000 AND v = zeroblob(1500)"),
			 400);
	sqlite3_close(c);
}

/*
 * A transaction that spilled pages to the WAL and was rolled back leaves
 * frames past the end; another connection then commits at the same place.
 * The first connection's next write must not put its old frames over them.
 */
START_TEST(rolled_back_frames_stay_out_of_commits)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	sqlite3 *a, *b;

	store_walbuf_install();
	a = open_db(path);
	tu_sql_exec(a, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		       "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); INSERT INTO t VALUES (0, 'x');"
		       "PRAGMA cache_size = 10");
	b = open_db(path);
	tu_sql_exec(a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE "
		       "i < 200) INSERT INTO t SELECT 1000 + i, randomblob(1500) FROM n; ROLLBACK");
	tu_sql_exec(b, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE "
		       "i < 400) INSERT INTO t SELECT 5000 + i, zeroblob(1500) FROM n; COMMIT");
	tu_sql_exec(a, "INSERT INTO t VALUES (1, 'y')");
	sqlite3_close(a);
	sqlite3_close(b);
	check_other_commit(path, 402);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * In exclusive locking mode no shm lock is taken or given up, so frames of
 * a rolled-back transaction that spilled pages can still be buffered when
 * the connection leaves that mode with a statement open; they must reach
 * the file before another connection can commit where they are.
 */
START_TEST(leaving_exclusive_mode_leaves_nothing_behind)
{
	char *dir = tu_tmpdir();
	const char *path = tu_path(dir, "t.db");
	sqlite3 *a, *b;
	sqlite3_stmt *rd;

	store_walbuf_install();
	a = open_db(path);
	tu_sql_exec(a, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		       "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE TABLE s (x);"
		       "INSERT INTO s VALUES (1), (2), (3); INSERT INTO t VALUES (0, 'x');"
		       "PRAGMA locking_mode = EXCLUSIVE; PRAGMA cache_size = 10");
	ck_assert_int_eq(sqlite3_prepare_v2(a, "SELECT x FROM s", -1, &rd, NULL), SQLITE_OK);
	tu_sql_exec(a, "BEGIN");
	ck_assert_int_eq(sqlite3_step(rd), SQLITE_ROW); /* held open across the rest */
	tu_sql_exec(a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
		       "INSERT INTO t SELECT 1000 + i, randomblob(1500) FROM n; ROLLBACK");
	tu_sql_exec(a, "PRAGMA locking_mode = NORMAL; BEGIN IMMEDIATE; COMMIT");
	sqlite3_finalize(rd);
	b = open_db(path);
	tu_sql_exec(b, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE "
		       "i < 400) INSERT INTO t SELECT 5000 + i, zeroblob(1500) FROM n; COMMIT");
	ck_assert_int_eq(tu_sql_int(a, "SELECT count(*) FROM t"), 401);
	tu_sql_exec(a, "INSERT INTO t VALUES (1, 'y')");
	sqlite3_close(a);
	sqlite3_close(b);
	check_other_commit(path, -1);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * A process that ends right after COMMIT, without closing (a crash), keeps
 * its commits with synchronous NORMAL or OFF too, in shared or exclusive
 * locking mode (no shared WAL index: no shm lock or barrier calls).  One
 * transaction spills pages and writes some again, so SQLite rewrites its
 * frame headers after the commit frame; the last one rewrites nothing.
 */
START_TEST(a_crash_after_commit_keeps_it)
{
	/* exclusive mode before the WAL is opened: its index in heap memory */
	static const char *const setups[] = {
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF",
		"PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
		"PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF",
	};
	char *dir = tu_tmpdir();

	store_walbuf_install();
	for (int s = 0; s < 4; s++) {
		char path[600];
		sqlite3 *db;
		pid_t pid;
		int status;

		snprintf(path, sizeof(path), "%s/t%d.db", dir, s);
		db = open_db(path);
		tu_sql_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); INSERT INTO t VALUES (0, 'x')");
		sqlite3_close(db);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			db = open_db(path);
			tu_sql_exec(db, setups[s]);
			tu_sql_exec(db, "PRAGMA cache_size = 10; BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 "
					"UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO t SELECT i, "
					"randomblob(1500) FROM n; UPDATE t SET v = zeroblob(1500) WHERE k "
					"BETWEEN 1 AND 33; COMMIT");
			/* and one with nothing rewritten: its commit frame is its last write */
			tu_sql_exec(db, "INSERT INTO t VALUES (1000, 'z')");
			free(dir); /* the connection stays open: that is the point */
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		db = open_db(path);
		tu_sql_integrity_ok(db);
		ck_assert_msg(tu_sql_int(db, "SELECT count(*) FROM t") == 102, "%s: %lld rows", setups[s],
			      tu_sql_int(db, "SELECT count(*) FROM t"));
		ck_assert_int_eq(tu_sql_int(db, "SELECT count(*) FROM t WHERE v = zeroblob(1500)"), 33);
		sqlite3_close(db);
	}
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * A spy VFS above the wrapper keeps a copy of every byte SQLite wrote to
 * the WAL; after every sync and every statement that ends a transaction,
 * the file must hold all of them, with any synchronous setting, and with
 * syncs padded to sector boundaries (psow=0).
 */
static sqlite3_vfs *spy_below, spy_vfs;
static sqlite3_io_methods spy_methods, spy_db_methods;
static const sqlite3_io_methods *spy_wrapped, *spy_db_wrapped;
static unsigned char *shadow, *written;
static size_t shadow_len;
static char spy_wal[512];
static int spy_missing;

static void
spy_check(void)
{
	FILE *f = fopen(spy_wal, "rb");
	unsigned char *file = calloc(1, shadow_len + 1);
	size_t n = f ? fread(file, 1, shadow_len, f) : 0;

	for (size_t i = 0; i < shadow_len; i++)
		if (written[i] && (i >= n || file[i] != shadow[i])) {
			spy_missing++;
			break;
		}
	if (f)
		fclose(f);
	free(file);
}

static int
spy_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 ofst)
{
	size_t end = (size_t)ofst + (size_t)amt;

	if (end > shadow_len) {
		shadow = realloc(shadow, end);
		written = realloc(written, end);
		memset(written + shadow_len, 0, end - shadow_len);
		shadow_len = end;
	}
	memcpy(shadow + ofst, data, (size_t)amt);
	memset(written + ofst, 1, (size_t)amt);
	return spy_wrapped->xWrite(file, data, amt, ofst);
}

static int
spy_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	if ((size_t)size < shadow_len)
		shadow_len = (size_t)size;
	return spy_wrapped->xTruncate(file, size);
}

static int
spy_sync(sqlite3_file *file, int flags)
{
	int rc = spy_wrapped->xSync(file, flags);

	spy_check();
	return rc;
}

/* right before a commit is published in the WAL index: its frames must be in the file */
static void
spy_barrier(sqlite3_file *file)
{
	spy_db_wrapped->xShmBarrier(file);
	if (spy_wrapped)
		spy_check();
}

static int
spy_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out)
{
	int rc = spy_below->xOpen(spy_below, name, file, flags, out);

	(void)vfs;
	if (rc == SQLITE_OK && (flags & SQLITE_OPEN_MAIN_DB) && !spy_db_wrapped) {
		spy_db_wrapped = file->pMethods;
		spy_db_methods = *file->pMethods;
		spy_db_methods.xShmBarrier = spy_barrier;
		file->pMethods = &spy_db_methods;
	}
	if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && !spy_wrapped) {
		snprintf(spy_wal, sizeof(spy_wal), "%s", name);
		spy_wrapped = file->pMethods;
		spy_methods = *file->pMethods;
		spy_methods.xWrite = spy_write;
		spy_methods.xTruncate = spy_truncate;
		spy_methods.xSync = spy_sync;
		file->pMethods = &spy_methods;
	}
	return rc;
}

static void
exec_checked(sqlite3 *db, const char *sql)
{
	tu_sql_exec(db, sql);
	spy_check();
}

START_TEST(the_file_holds_what_sqlite_wrote)
{
	static const char *const modes[] = {"OFF", "NORMAL", "FULL", "FULL"};
	char *dir = tu_tmpdir();

	store_walbuf_install();
	spy_below = sqlite3_vfs_find(NULL);
	spy_vfs = *spy_below;
	spy_vfs.zName = "spy";
	spy_vfs.xOpen = spy_open;
	ck_assert_int_eq(sqlite3_vfs_register(&spy_vfs, 0), SQLITE_OK);
	for (int m = 0; m < 4; m++) {
		char uri[600], sql[128];
		sqlite3 *a, *b;

		snprintf(uri, sizeof(uri), "file:%s/t%d.db?vfs=spy%s", dir, m, m == 3 ? "&psow=0" : "");
		spy_wrapped = spy_db_wrapped = NULL;
		shadow_len = 0;
		spy_missing = 0;
		ck_assert_int_eq(sqlite3_open_v2(uri, &a, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
							      SQLITE_OPEN_URI, NULL),
				 SQLITE_OK);
		snprintf(sql, sizeof(sql),
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA cache_size = 10",
			 modes[m]);
		tu_sql_exec(a, sql);
		ck_assert_int_eq(sqlite3_open_v2(uri, &b, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL),
				 SQLITE_OK);
		sqlite3_busy_timeout(b, 5000);
		exec_checked(a, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
		for (int round = 0; round < 3; round++) {
			/* spilled pages written again: their headers rewritten at commit */
			exec_checked(a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
					"FROM n WHERE i < 60) INSERT INTO t SELECT NULL, randomblob(1500) "
					"FROM n; UPDATE t SET v = zeroblob(1500) WHERE k % 7 = 0; COMMIT");
			exec_checked(a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
					"FROM n WHERE i < 60) INSERT INTO t SELECT NULL, randomblob(1500) "
					"FROM n; ROLLBACK");
			exec_checked(a, "INSERT INTO t VALUES (NULL, 1)");
			exec_checked(b, "PRAGMA wal_checkpoint(RESTART)");
			exec_checked(a, "INSERT INTO t VALUES (NULL, 2)");
		}
		ck_assert_msg(spy_missing == 0, "synchronous=%s%s: %d checks found bytes missing",
			      modes[m], m == 3 ? " psow=0" : "", spy_missing);
		sqlite3_close(b);
		sqlite3_close(a);
	}
	sqlite3_vfs_unregister(&spy_vfs);
	free(shadow);
	free(written);
	shadow = written = NULL;
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *
walbuf_suite(void)
{
	Suite *s = suite_create("walbuf");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_commit_is_one_write);
	tcase_add_test(tc, other_connections_read_every_commit);
	tcase_add_test(tc, killed_writer_keeps_every_commit);
	tcase_add_test(tc, rolled_back_frames_stay_out_of_commits);
	tcase_add_test(tc, a_crash_after_commit_keeps_it);
	tcase_add_test(tc, leaving_exclusive_mode_leaves_nothing_behind);
	tcase_add_test(tc, the_file_holds_what_sqlite_wrote);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(walbuf_suite());
}
