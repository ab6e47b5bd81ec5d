/* notify.h - webhook delivery: the durable outbox drained to signed HTTPS POSTs */
#ifndef AUPD_NOTIFY_H
#define AUPD_NOTIFY_H

#include "aupd/config.h"
#include "aupd/writer.h"

struct notifier;

/* Backoff after the n-th failed attempt (n >= 1): 1s doubling to 10 min, with jitter. */
int64_t notify_backoff_us(int attempts);

/*
 * Reads every notifier's secret_file (before privileges are dropped).
 * NULL with `err` naming the unreadable or empty secret.
 */
struct notifier *notifier_new(const struct config *cfg, struct aupd_error *err);
/*
 * Starts the delivery thread, which posts due outbox rows (at least once)
 * and records each attempt through the writer, so delivery never takes the
 * write lock from ingest.  -1 with `err`.
 */
int notifier_run(struct notifier *n, const char *db_path, struct writer *w,
		 struct aupd_error *err);
/* Stops the thread (a delivery in flight finishes or times out) and wipes the secrets. */
void notifier_stop(struct notifier *n);

#endif
