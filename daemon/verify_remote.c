/* verify_remote.c - aupd verify --url: check a running daemon's ledger over its API */
#include "aupd/verify_remote.h"
#include "aupd/cli.h"

int
verify_remote(const char *url, const char *token, const char *key_path, const char *cacert)
{
	cli_error("verify --url: not available in this build");
	return 2;
}
