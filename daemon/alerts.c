/* alerts.c - alerts raised by escalations: lifecycle, ledger records, webhook outbox */
#include "aupd/alerts.h"
#include "aupd/log.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

static int
fail(struct dbconn *c, struct aupd_error *err, sqlite3_stmt *st, const char *what)
{
	store_fail(c, err, what);
	sqlite3_reset(st);
	return -1;
}

/* Statements on the write path are prepared once per connection (store_cached). */
static int
prepare(struct dbconn *c, const char *sql, sqlite3_stmt **st, struct aupd_error *err)
{
	*st = store_cached(c, sql, err);
	return *st ? 0 : -1;
}

static void
time_json(json_t *doc, const char *key, aupd_time t)
{
	char buf[40];

	time_format_ms(t, buf, sizeof(buf));
	json_object_set_new(doc, key, json_string(buf));
}

json_t *
alert_doc(sqlite3_stmt *st)
{
	json_t *doc = json_object();
	const char *tenant = (const char *)sqlite3_column_text(st, 3);

	json_object_set_new(doc, "id", json_string((const char *)sqlite3_column_text(st, 0)));
	json_object_set_new(doc, "escalation",
			    json_string((const char *)sqlite3_column_text(st, 1)));
	json_object_set_new(doc, "level", json_string((const char *)sqlite3_column_text(st, 4)));
	json_object_set_new(doc, "state", json_string((const char *)sqlite3_column_text(st, 5)));
	json_object_set_new(doc, "tenant", tenant ? json_string(tenant) : json_null());
	json_object_set_new(doc, "group",
			    json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL));
	json_object_set_new(doc, "count", json_integer(sqlite3_column_int64(st, 12)));
	json_object_set_new(doc, "seqs", json_loads((const char *)sqlite3_column_text(st, 13), 0, NULL));
	json_object_set_new(doc, "opened_seq", json_integer(sqlite3_column_int64(st, 7)));
	json_object_set_new(doc, "last_seq", json_integer(sqlite3_column_int64(st, 14)));
	time_json(doc, "first_time", sqlite3_column_int64(st, 10));
	time_json(doc, "last_time", sqlite3_column_int64(st, 11));
	time_json(doc, "cooldown_until", sqlite3_column_int64(st, 15));
	time_json(doc, "opened_at", sqlite3_column_int64(st, 8));
	time_json(doc, "updated_at", sqlite3_column_int64(st, 9));
	json_object_set_new(doc, "notify", json_loads((const char *)sqlite3_column_text(st, 6), 0, NULL));
	return doc;
}

static json_t *
load_doc(struct dbconn *c, const char *id, struct aupd_error *err)
{
	sqlite3_stmt *st;
	json_t *doc = NULL;

	if (prepare(c, "SELECT " ALERT_COLUMNS " FROM alerts WHERE id = ?", &st, err) < 0)
		return NULL;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		doc = alert_doc(st);
	else
		store_fail(c, err, "cannot read an alert");
	sqlite3_reset(st);
	return doc;
}

static void
delivery_id(char out[37])
{
	unsigned char b[16];
	char hex[33];

	RAND_bytes(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40; /* a version 4 UUID */
	b[8] = (b[8] & 0x3f) | 0x80;
	hex_encode(b, sizeof(b), hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/*
 * One outbox row per notifier.  An "alert.updated" that has not been tried
 * yet is rewritten with the newer state instead of queueing another: the
 * receiver gets the latest count without one delivery per verdict.
 */
static int
enqueue(struct alert_tx *tx, const char *alert_id, json_t *notify, const char *event,
	const char *body, aupd_time now, struct aupd_error *err)
{
	sqlite3_stmt *coalesce = NULL, *ins = NULL;
	json_t *n;
	size_t i;

	/*
	 * A coalesced row gets a new delivery id: its content changed, and a
	 * receiver may drop what repeats an id it has seen.  A delivery already
	 * in flight under the old id is not marked delivered (outbox_record
	 * matches the id), so the new content goes out too.
	 */
	if (prepare(tx->db,
		    "UPDATE outbox SET body = ?, delivery = ? WHERE alert_id = ? AND notifier = ? "
		    "AND event = ? AND delivered IS NULL AND attempts = 0",
		    &coalesce, err) < 0 ||
	    prepare(tx->db,
		    "INSERT INTO outbox (delivery, alert_id, notifier, event, body, created, "
		    "next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)",
		    &ins, err) < 0) {
		sqlite3_reset(coalesce);
		return -1;
	}
	json_array_foreach(notify, i, n) {
		const char *name = json_string_value(n);
		char did[37];

		if (!name)
			continue;
		delivery_id(did);
		if (!strcmp(event, "alert.updated")) {
			sqlite3_reset(coalesce);
			sqlite3_bind_text(coalesce, 1, body, -1, SQLITE_STATIC);
			sqlite3_bind_text(coalesce, 2, did, -1, SQLITE_STATIC);
			sqlite3_bind_text(coalesce, 3, alert_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(coalesce, 4, name, -1, SQLITE_STATIC);
			sqlite3_bind_text(coalesce, 5, event, -1, SQLITE_STATIC);
			if (sqlite3_step(coalesce) != SQLITE_DONE)
				goto err_db;
			if (sqlite3_changes(tx->db->db) > 0)
				continue;
		}
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, did, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, alert_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, event, -1, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 5, body, (int)strlen(body), SQLITE_STATIC);
		sqlite3_bind_int64(ins, 6, now);
		sqlite3_bind_int64(ins, 7, now);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto err_db;
	}
	sqlite3_reset(coalesce);
	sqlite3_reset(ins);
	return 0;

err_db:
	store_fail(tx->db, err, "cannot queue a webhook delivery");
	sqlite3_reset(coalesce);
	sqlite3_reset(ins);
	return -1;
}

/* The "alert" ledger record, the history row and the outbox rows of one change. */
static int
record_change(struct alert_tx *tx, json_t *doc, const char *action, const char *event,
	      const char *note, const char *token, aupd_time now, struct aupd_error *err)
{
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *tenant = json_string_value(json_object_get(doc, "tenant"));
	char *text = json_dumps(doc, JSON_COMPACT);
	sqlite3_stmt *st;
	int rc;

	sb_reset(tx->members);
	sb_adds(tx->members, ",\"action\":");
	json_quote(tx->members, action);
	if (token) {
		sb_adds(tx->members, ",\"token\":");
		json_quote(tx->members, token);
	}
	if (note) {
		sb_adds(tx->members, ",\"note\":");
		json_quote(tx->members, note);
	}
	sb_adds(tx->members, ",\"alert\":");
	sb_adds(tx->members, text);
	sb_addc(tx->members, '}');
	rc = ledger_append_members(tx->db, tx->head, "alert", tenant, now, tx->members->buf,
				   tx->scratch, err);
	if (rc == 0 && (rc = prepare(tx->db,
				     "INSERT INTO alert_history (alert_id, seq, action, time, token, "
				     "note) VALUES (?, ?, ?, ?, ?, ?)",
				     &st, err)) == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, tx->head->seq);
		sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		if (token)
			sqlite3_bind_text(st, 5, token, -1, SQLITE_STATIC);
		if (note)
			sqlite3_bind_text(st, 6, note, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(tx->db, err, NULL, "cannot store alert history");
		sqlite3_reset(st);
	}
	if (rc == 0)
		rc = enqueue(tx, id, json_object_get(doc, "notify"), event, text, now, err);
	free(text);
	return rc;
}

static enum log_level
level_log(const char *level)
{
	if (!strcmp(level, "suspend"))
		return LOG_LVL_ALERT;
	if (!strcmp(level, "critical"))
		return LOG_LVL_CRIT;
	if (!strcmp(level, "warning"))
		return LOG_LVL_WARNING;
	return LOG_LVL_NOTICE;
}

int
alerts_on_hit(struct alert_tx *tx, const struct escalation_hit *hit, int64_t seq, aupd_time t,
	      struct aupd_error *err)
{
	aupd_time now = time_now();
	sqlite3_stmt *st;
	char id[40] = "", *seqs, *grp, *notify;
	const char *tenant = json_string_value(json_object_get(hit->group, "tenant"));
	json_t *arr, *doc;
	bool update = false;
	int rc;

	/*
	 * The cooldown spans `cooldown` on either side of the verdict that opened
	 * an alert (by event time): verdicts inside it, late ones too, belong to
	 * that alert; a burst outside every such span opens its own.  Resolving
	 * an alert ends its cooldown: what comes after is a new alert.
	 */
	if (prepare(tx->db,
		    "SELECT id FROM alerts WHERE escalation = ? AND group_key = ? "
		    "AND cooldown_from <= ?3 AND cooldown_until > ?3 AND state != 'resolved' "
		    "ORDER BY opened_seq DESC LIMIT 1",
		    &st, err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, hit->escalation, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hit->group_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%s", sqlite3_column_text(st, 0));
		update = true;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return fail(tx->db, err, st, "cannot look up alerts");
	}
	sqlite3_reset(st);
	if (!update && !hit->crossed)
		return 0; /* below the threshold and outside every cooldown: nothing to say */

	if (update) {
		if (prepare(tx->db,
			    "UPDATE alerts SET count = count + 1, last_seq = max(last_seq, ?1), "
			    "first_time = min(first_time, ?2), last_time = max(last_time, ?2), "
			    "updated_at = ?3 WHERE id = ?4",
			    &st, err) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, t);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	} else {
		/* the alert is named after the seq of the record that opens it */
		snprintf(id, sizeof(id), "alert-%lld", (long long)(tx->head->seq + 1));
		arr = json_array();
		for (size_t i = 0; i < hit->n_seqs; i++)
			json_array_append_new(arr, json_integer(hit->seqs[i]));
		seqs = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		grp = json_dumps(hit->group, JSON_COMPACT | JSON_SORT_KEYS);
		arr = json_array();
		for (size_t i = 0; i < hit->n_notify; i++)
			json_array_append_new(arr, json_string(hit->notify[i]));
		notify = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		if (prepare(tx->db,
			    "INSERT INTO alerts (id, escalation, group_key, grp, tenant, level, state, "
			    "notify, opened_seq, opened_at, updated_at, first_time, last_time, "
			    "cooldown_until, count, seqs, last_seq, cooldown_from) VALUES (?, ?, ?, ?, ?, "
			    "?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    &st, err) < 0) {
			free(seqs);
			free(grp);
			free(notify);
			return -1;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, hit->escalation, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hit->group_key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, grp, -1, free);
		if (tenant)
			sqlite3_bind_text(st, 5, tenant, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, level_name(hit->level), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, notify, -1, free);
		sqlite3_bind_int64(st, 8, tx->head->seq + 1);
		sqlite3_bind_int64(st, 9, now);
		sqlite3_bind_int64(st, 10, now);
		sqlite3_bind_int64(st, 11, hit->first);
		sqlite3_bind_int64(st, 12, t);
		sqlite3_bind_int64(st, 13, t + hit->cooldown_us);
		sqlite3_bind_int64(st, 14, (sqlite3_int64)hit->count);
		sqlite3_bind_text(st, 15, seqs, -1, free);
		sqlite3_bind_int64(st, 16, seq);
		sqlite3_bind_int64(st, 17, t - hit->cooldown_us);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(tx->db, err, "cannot store an alert");
	if (!(doc = load_doc(tx->db, id, err)))
		return -1;
	rc = record_change(tx, doc, update ? "updated" : "opened",
			   update ? "alert.updated" : "alert.opened", NULL, NULL, now, err);
	if (rc == 0 && !update) {
		tx->opened++;
		log_msg(level_log(level_name(hit->level)),
			"alert %s opened: escalation %s, level %s, %zu verdicts in %llds for %s "
			"(verdict seq %lld)",
			id, hit->escalation, level_name(hit->level), hit->count,
			(long long)(hit->window_us / AUPD_USEC), hit->group_key[0] ? hit->group_key : "all",
			(long long)seq);
	} else if (rc == 0) {
		tx->updated++;
	}
	json_decref(doc);
	return rc;
}

int
alerts_change(struct alert_tx *tx, const char *id, const char *action, const char *note,
	      const char *token, const char *scope_tenant, char **out, struct aupd_error *err)
{
	bool ack = !strcmp(action, "ack");
	const char *to = ack ? "acknowledged" : "resolved";
	aupd_time now = time_now();
	char state[24] = "";
	bool forbidden = false;
	sqlite3_stmt *st;
	json_t *doc;
	int rc;

	if (prepare(tx->db, "SELECT state, tenant FROM alerts WHERE id = ?", &st, err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *tenant = (const char *)sqlite3_column_text(st, 1);

		if (scope_tenant && (!tenant || strcmp(tenant, scope_tenant) != 0))
			forbidden = true;
		snprintf(state, sizeof(state), "%s", sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(tx->db, err, "cannot read an alert");
	if (!state[0])
		return 404;
	if (forbidden)
		return 403;
	if ((ack && strcmp(state, "open") != 0) || (!ack && !strcmp(state, "resolved")))
		return 409;
	if (prepare(tx->db, "UPDATE alerts SET state = ?, updated_at = ? WHERE id = ?", &st, err) < 0)
		return -1;
	sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(tx->db, err, "cannot update an alert");
	if (!(doc = load_doc(tx->db, id, err)))
		return -1;
	rc = record_change(tx, doc, to, ack ? "alert.acknowledged" : "alert.resolved", note, token,
			   now, err);
	if (rc == 0) {
		log_notice("alert %s %s by token %s", id, to, token);
		*out = json_dumps(doc, JSON_COMPACT);
	}
	json_decref(doc);
	return rc;
}

json_t *
alerts_get(struct dbconn *c, const char *id)
{
	struct aupd_error err;
	sqlite3_stmt *st;
	json_t *doc, *hist, *del;

	doc = load_doc(c, id, &err);
	if (!doc)
		return NULL;
	hist = json_array();
	if (sqlite3_prepare_v2(c->db,
			       "SELECT seq, action, time, token, note FROM alert_history "
			       "WHERE alert_id = ? ORDER BY seq",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_t *h = json_pack("{s:I, s:s}", "seq",
					      (json_int_t)sqlite3_column_int64(st, 0), "action",
					      (const char *)sqlite3_column_text(st, 1));

			time_json(h, "time", sqlite3_column_int64(st, 2));
			if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				json_object_set_new(h, "token",
						    json_string((const char *)sqlite3_column_text(st, 3)));
			if (sqlite3_column_type(st, 4) != SQLITE_NULL)
				json_object_set_new(h, "note",
						    json_string((const char *)sqlite3_column_text(st, 4)));
			json_array_append_new(hist, h);
		}
		sqlite3_finalize(st);
	}
	del = json_array();
	if (sqlite3_prepare_v2(c->db,
			       "SELECT delivery, notifier, event, attempts, last_error, last_status, "
			       "delivered, next_attempt, created FROM outbox WHERE alert_id = ? "
			       "ORDER BY id",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "delivery",
					      (const char *)sqlite3_column_text(st, 0), "notifier",
					      (const char *)sqlite3_column_text(st, 1), "event",
					      (const char *)sqlite3_column_text(st, 2), "attempts",
					      (json_int_t)sqlite3_column_int64(st, 3));

			json_object_set_new(d, "last_error",
					    sqlite3_column_type(st, 4) == SQLITE_NULL
						    ? json_null()
						    : json_string((const char *)sqlite3_column_text(st, 4)));
			json_object_set_new(d, "last_status",
					    sqlite3_column_type(st, 5) == SQLITE_NULL
						    ? json_null()
						    : json_integer(sqlite3_column_int(st, 5)));
			if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
				time_json(d, "delivered_at", sqlite3_column_int64(st, 6));
			} else {
				json_object_set_new(d, "delivered_at", json_null());
				time_json(d, "next_attempt", sqlite3_column_int64(st, 7));
			}
			time_json(d, "created", sqlite3_column_int64(st, 8));
			json_array_append_new(del, d);
		}
		sqlite3_finalize(st);
	}
	json_object_set_new(doc, "history", hist);
	json_object_set_new(doc, "deliveries", del);
	return doc;
}

/* ---- outbox ---- */

void
outbox_row_clear(struct outbox_row *r)
{
	free(r->delivery);
	free(r->alert_id);
	free(r->notifier);
	free(r->event);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

size_t
outbox_due(struct dbconn *c, aupd_time now, struct outbox_row *rows, size_t max,
	   struct aupd_error *err)
{
	sqlite3_stmt *st;
	size_t n = 0;

	if (sqlite3_prepare_v2(c->db,
			       "SELECT id, delivery, alert_id, notifier, event, body, attempts "
			       "FROM outbox WHERE delivered IS NULL AND next_attempt <= ? "
			       "ORDER BY next_attempt, id LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK) {
		store_fail(c, err, "cannot read the outbox");
		return 0;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (n < max && sqlite3_step(st) == SQLITE_ROW) {
		struct outbox_row *r = &rows[n++];

		r->id = sqlite3_column_int64(st, 0);
		r->delivery = xstrdup((const char *)sqlite3_column_text(st, 1));
		r->alert_id = xstrdup((const char *)sqlite3_column_text(st, 2));
		r->notifier = xstrdup((const char *)sqlite3_column_text(st, 3));
		r->event = xstrdup((const char *)sqlite3_column_text(st, 4));
		r->body_len = (size_t)sqlite3_column_bytes(st, 5);
		r->body = xstrndup(sqlite3_column_blob(st, 5), r->body_len);
		r->attempts = sqlite3_column_int(st, 6);
	}
	sqlite3_finalize(st);
	return n;
}

int
outbox_record(struct alert_tx *tx, int64_t id, const char *delivery, bool delivered,
	      int http_status, const char *error, aupd_time next_attempt, struct aupd_error *err)
{
	aupd_time now = time_now();
	sqlite3_stmt *st;
	int rc;

	if (prepare(tx->db,
		    "UPDATE outbox SET attempts = attempts + 1, last_status = ?, last_error = ?, "
		    "delivered = ?, next_attempt = ? WHERE id = ? AND delivery = ? "
		    "AND delivered IS NULL RETURNING delivery, alert_id, notifier, event, attempts",
		    &st, err) < 0)
		return -1;
	if (http_status)
		sqlite3_bind_int(st, 1, http_status);
	if (error)
		sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
	if (delivered)
		sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, next_attempt);
	sqlite3_bind_int64(st, 5, id);
	sqlite3_bind_text(st, 6, delivery, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && delivered) {
		/* auditors can see that the receiver was told, and when */
		sb_reset(tx->members);
		sb_adds(tx->members, ",\"delivery\":");
		json_quote(tx->members, (const char *)sqlite3_column_text(st, 0));
		sb_adds(tx->members, ",\"alert\":");
		json_quote(tx->members, (const char *)sqlite3_column_text(st, 1));
		sb_adds(tx->members, ",\"notifier\":");
		json_quote(tx->members, (const char *)sqlite3_column_text(st, 2));
		sb_adds(tx->members, ",\"event\":");
		json_quote(tx->members, (const char *)sqlite3_column_text(st, 3));
		sb_addf(tx->members, ",\"status\":%d,\"attempts\":%d}", http_status,
			sqlite3_column_int(st, 4));
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
		return ledger_append_members(tx->db, tx->head, "delivery", NULL, now,
					     tx->members->buf, tx->scratch, err);
	}
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(tx->db, err, "cannot record a delivery attempt");
	return 0;
}

long long
outbox_backlog(struct dbconn *c)
{
	sqlite3_stmt *st;
	long long n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM outbox WHERE delivered IS NULL", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
