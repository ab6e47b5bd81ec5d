/* privs.h - running as root only long enough to bind, then as the configured user */
#ifndef AUPD_PRIVS_H
#define AUPD_PRIVS_H

#include <stdbool.h>

#include "aupd/config.h"

/* True when the process runs as root (and so must drop to cfg->user). */
bool privs_root(void);
/*
 * Started as root with `user:` set: creates state_dir, hands it (and what
 * is in it) to cfg->user, and switches the process to that user and its
 * groups for good.  -1 with `err` when the user does not exist or is root.
 */
int privs_drop(const struct config *cfg, struct aupd_error *err);

#endif
