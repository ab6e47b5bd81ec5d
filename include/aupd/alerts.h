/* alerts.h - alerts raised by escalations: lifecycle, ledger records, webhook outbox */
#ifndef AUPD_ALERTS_H
#define AUPD_ALERTS_H

#include <jansson.h>
#include <stdbool.h>

#include "aupd/ledger.h"
#include "aupd/policy.h"
#include "aupd/store.h"

/* What the writer lends the alert code inside its transaction. */
struct alert_tx {
	struct dbconn *db;
	struct ledger_head *head;
	struct strbuf *scratch; /* reusable buffers */
	struct strbuf *members;
	long long opened;  /* counters for the caller */
	long long updated;
};

/*
 * A verdict at `seq` (time `t`) counted toward an escalation.  Within the
 * cooldown of an unresolved alert of its group, it updates that alert;
 * otherwise, when it met the threshold (hit->crossed), it opens one.  Writes the ledger record, the alert row, its history
 * and one outbox row per notifier; logs one line.  Inside the write
 * transaction; 0 or -1 with `err`.
 */
int alerts_on_hit(struct alert_tx *tx, const struct escalation_hit *hit, int64_t seq, aupd_time t,
		  struct aupd_error *err);

/*
 * Moves an alert through its lifecycle: "ack" (open -> acknowledged) or
 * "resolve" (open or acknowledged -> resolved), with the operator's note.
 * Returns 0 (and the new alert document in *doc), 404 when there is no such
 * alert, 403 when it belongs to another tenant than scope_tenant (or to none)
 * while scope_tenant is set, 409 when the state does not allow it, or -1 on a
 * storage error.
 */
int alerts_change(struct alert_tx *tx, const char *id, const char *action, const char *note,
		  const char *token, const char *scope_tenant, char **doc, struct aupd_error *err);

/* The alert document of a row read by "SELECT " ALERT_COLUMNS; new reference. */
#define ALERT_COLUMNS                                                                         \
	"id, escalation, grp, tenant, level, state, notify, opened_seq, opened_at, updated_at, " \
	"first_time, last_time, count, seqs, last_seq, cooldown_until"
json_t *alert_doc(sqlite3_stmt *st);

/* One alert with its history and deliveries, or NULL when there is none. */
json_t *alerts_get(struct dbconn *c, const char *id);

/* ---- the outbox, as the notifier sees it ---- */

struct outbox_row {
	int64_t id;
	char *delivery;
	char *alert_id;
	char *notifier;
	char *event;
	char *body;
	size_t body_len;
	int attempts;
};

void outbox_row_clear(struct outbox_row *r);
/* Up to `max` undelivered rows due at `now`, oldest first. */
size_t outbox_due(struct dbconn *c, aupd_time now, struct outbox_row *rows, size_t max,
		  struct aupd_error *err);
/*
 * Records a delivery attempt (inside the write transaction): delivered
 * (with a "delivery" ledger record), or failed with the next attempt time.
 * Nothing happens when the row's delivery id changed meanwhile (its content
 * was superseded and goes out again under the new id).
 */
int outbox_record(struct alert_tx *tx, int64_t id, const char *delivery, bool delivered,
		  int http_status, const char *error, aupd_time next_attempt,
		  struct aupd_error *err);
/* Undelivered rows (the webhook backlog). */
long long outbox_backlog(struct dbconn *c);

#endif
