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

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
		      msg ? msg : "?");
}

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

static long long
one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
integrity_ok(sqlite3 *db)
{
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
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
	exec_ok(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		    "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	sqlite3_wal_hook(db, on_wal, NULL);
	insert_rows(db, 0, 10, 100);
	for (int big = 0; big < 2; big++) {
		before = frames_last;
		store_walbuf_counts(&w0, &f0);
		exec_ok(db, "BEGIN");
		/* 12 pages, or 100 (400 KiB: more than one buffer) */
		insert_rows(db, 1000 + big * 1000, big ? 100 : 12, 3000);
		exec_ok(db, "COMMIT");
		store_walbuf_counts(&w1, &f1);
		ck_assert_int_ge(frames_last - before, big ? 100 : 12);
		ck_assert_uint_ge(w1 - w0, 2 * (unsigned long)(frames_last - before));
		if (big)
			ck_assert_uint_le(f1 - f0, 6); /* 400 KiB in 96 KiB writes */
		else
			ck_assert_uint_eq(f1 - f0, 1);
	}
	ck_assert_int_eq(one_int(db, "SELECT count(*) FROM t"), 122);
	integrity_ok(db);
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/*
 * With synchronous = OFF nothing is ever synced, so only the flush after a
 * commit frame puts a commit's frames in the file: another connection must
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
	exec_ok(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = 20;"
		    "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	other = open_db(path);
	for (int tx = 0; tx < 400; tx++) {
		int n = 1 + (int)(rand_r(&seed) % 40);
		int size = tx % 17 == 0 ? 6000 : 50 + (int)(rand_r(&seed) % 900);

		exec_ok(db, "BEGIN");
		insert_rows(db, next, n, size);
		if (tx % 7 == 3) {
			/* some of it deleted again: pages rewritten within the transaction */
			char sql[96];

			snprintf(sql, sizeof(sql), "DELETE FROM t WHERE k >= %lld AND k < %lld", next,
				 next + n / 2);
			exec_ok(db, sql);
			rows -= n / 2;
			bytes -= (long long)(n / 2) * size;
		}
		if (tx % 11 == 5) {
			exec_ok(db, "SAVEPOINT s");
			insert_rows(db, next + n, 5, 2000);
			exec_ok(db, "ROLLBACK TO s; RELEASE s");
		}
		exec_ok(db, "COMMIT");
		rows += n;
		bytes += (long long)n * size;
		next += n + 5;
		ck_assert_int_eq(one_int(other, "SELECT count(*) FROM t"), rows);
		ck_assert_int_eq(one_int(other, "SELECT sum(length(v)) FROM t"), bytes);
		if (tx % 50 == 49)
			/* everything copied: the next commit starts the WAL over from its header */
			exec_ok(other, "PRAGMA wal_checkpoint(RESTART)");
		else if (tx % 13 == 0)
			exec_ok(other, "PRAGMA wal_checkpoint(PASSIVE)");
	}
	integrity_ok(other);
	sqlite3_close(other);
	sqlite3_close(db);
	db = open_db(path);
	ck_assert_int_eq(one_int(db, "SELECT count(*) FROM t"), rows);
	ck_assert_int_eq(one_int(db, "SELECT sum(length(v)) FROM t"), bytes);
	integrity_ok(db);
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
	exec_ok(db, "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
	sqlite3_close(db);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		db = open_db(path);
		exec_ok(db, "PRAGMA synchronous = FULL");
		for (long long tx = 0;; tx++) {
			exec_ok(db, "BEGIN");
			insert_rows(db, tx * 100, 1 + (int)(tx % 30), 700);
			exec_ok(db, "COMMIT");
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
	integrity_ok(db);
	for (long long tx = 0; tx <= acked; tx++) {
		char sql[96];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE k >= %lld AND k < %lld",
			 tx * 100, tx * 100 + 100);
		ck_assert_int_eq(one_int(db, sql), 1 + tx % 30);
	}
	sqlite3_close(db);
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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(walbuf_suite());
}
