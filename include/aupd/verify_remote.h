/* verify_remote.h - aupd verify --url: check a running daemon's ledger over its API */
#ifndef AUPD_VERIFY_REMOTE_H
#define AUPD_VERIFY_REMOTE_H

#include "aupd/ledger.h"

/* Prints the one-line outcome of a verification ("ok: ..." on stdout, or the first bad seq). */
void verify_print_result(const struct ledger_verifier *lv, const char *source, bool signatures);

/* Returns the exit status: 0 intact, 1 a bad record or a failed request, 2 bad usage. */
int verify_remote(const char *url, const char *token, const char *key_path, const char *cacert);

#endif
