/* testutil.h - helpers shared by the Check suites */
#ifndef AUPD_TESTUTIL_H
#define AUPD_TESTUTIL_H

#include <check.h>
#include <stddef.h>

/* A fresh empty directory under $TMPDIR (removed by tu_rmtree); caller frees. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* Writes a file (creating it); aborts the test on failure. */
void tu_write(const char *path, const char *text);
/* path_join into a static rotating buffer (valid for a few calls). */
const char *tu_path(const char *dir, const char *name);
/* Runs a suite and returns the process exit status. */
int tu_run(Suite *s);

#endif
