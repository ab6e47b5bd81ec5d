/* testutil.h - helpers shared by the Check suites */
#ifndef AUPD_TESTUTIL_H
#define AUPD_TESTUTIL_H

#include <check.h>
#include <sqlite3.h>
#include <stddef.h>

/* A fresh empty directory under $TMPDIR (removed by tu_rmtree); caller frees. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* Writes a file (creating it); aborts the test on failure. */
void tu_write(const char *path, const char *text);
/* path_join into a static rotating buffer (valid for a few calls). */
const char *tu_path(const char *dir, const char *name);
/* Runs SQL; fails the test with SQLite's message. */
void tu_sql_exec(sqlite3 *db, const char *sql);
/* The first column of the first row as an integer; -1 when there is no row. */
long long tu_sql_int(sqlite3 *db, const char *sql);
/* Fails the test unless PRAGMA integrity_check answers "ok". */
void tu_sql_integrity_ok(sqlite3 *db);
/* Runs a suite and returns the process exit status. */
int tu_run(Suite *s);

#endif
