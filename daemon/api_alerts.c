/* api_alerts.c - alerts: GET /v1/alerts, GET /v1/alerts/{id}, ack and resolve */
#include "aupd/alerts.h"
#include "aupd/api.h"
#include "aupd/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOTE_MAX 2000

static const char *const alert_columns[] = {
	"id",	  "escalation", "level",      "state",	   "tenant",   "group", "count",
	"first_time", "last_time", "opened_at", "updated_at", "opened_seq", "last_seq", NULL};

static void
csv_alert(struct strbuf *sb, json_t *a)
{
	char *grp = json_dumps(json_object_get(a, "group"), JSON_COMPACT | JSON_SORT_KEYS);
	char n1[24], n2[24], n3[24];

	snprintf(n1, sizeof(n1), "%lld", (long long)json_integer_value(json_object_get(a, "count")));
	snprintf(n2, sizeof(n2), "%lld",
		 (long long)json_integer_value(json_object_get(a, "opened_seq")));
	snprintf(n3, sizeof(n3), "%lld", (long long)json_integer_value(json_object_get(a, "last_seq")));
	csv_field(sb, json_string_value(json_object_get(a, "id")), true);
	csv_field(sb, json_string_value(json_object_get(a, "escalation")), false);
	csv_field(sb, json_string_value(json_object_get(a, "level")), false);
	csv_field(sb, json_string_value(json_object_get(a, "state")), false);
	csv_field(sb, json_string_value(json_object_get(a, "tenant")), false);
	csv_field(sb, grp, false);
	csv_field(sb, n1, false);
	csv_field(sb, json_string_value(json_object_get(a, "first_time")), false);
	csv_field(sb, json_string_value(json_object_get(a, "last_time")), false);
	csv_field(sb, json_string_value(json_object_get(a, "opened_at")), false);
	csv_field(sb, json_string_value(json_object_get(a, "updated_at")), false);
	csv_field(sb, n2, false);
	csv_field(sb, n3, false);
	sb_adds(sb, "\r\n");
	free(grp);
}

void
api_get_alerts(struct http_req *req)
{
	static const char *const params[] = {"state", "level",	"tenant", "escalation", "since",
					     "until", "limit", "cursor", NULL};
	struct app *app = app_of(req);
	const struct principal *who = http_principal(req);
	const char *state = http_query(req, "state"), *level = http_query(req, "level");
	const char *tenant = http_query(req, "tenant"), *esc = http_query(req, "escalation");
	aupd_time since, until;
	bool has_since, has_until;
	int64_t limit, cursor, last = 0;
	enum alert_level lv;
	struct strbuf sql;
	sqlite3_stmt *st;
	struct dbconn *c;
	json_t *items;
	int idx = 1, n = 0, rc;
	bool more = false;

	if (!api_check_query(req, params) || api_query_time(req, "since", &since, &has_since) < 0 ||
	    api_query_time(req, "until", &until, &has_until) < 0 || api_query_limit(req, &limit) < 0 ||
	    api_cursor_parse(req, &cursor) < 0)
		return;
	if (state && strcmp(state, "open") && strcmp(state, "acknowledged") &&
	    strcmp(state, "resolved")) {
		http_problem(req, 400, "bad-query", NULL,
			     "state must be open, acknowledged or resolved, not '%s'", state);
		return;
	}
	if (level && level_parse(level, &lv) < 0) {
		http_problem(req, 400, "bad-query", NULL,
			     "level must be notice, warning, critical or suspend, not '%s'", level);
		return;
	}
	if (who->tenant_bound) {
		if (tenant && !api_tenant_allowed(req, tenant))
			return;
		tenant = who->tenant;
	}
	sb_init(&sql);
	sb_adds(&sql, "SELECT " ALERT_COLUMNS " FROM alerts WHERE opened_seq > ?");
	if (state)
		sb_adds(&sql, " AND state = ?");
	if (level)
		sb_adds(&sql, " AND level = ?");
	if (tenant)
		sb_adds(&sql, " AND tenant = ?");
	if (esc)
		sb_adds(&sql, " AND escalation = ?");
	if (has_since)
		sb_adds(&sql, " AND opened_at >= ?");
	if (has_until)
		sb_adds(&sql, " AND opened_at < ?");
	sb_adds(&sql, " ORDER BY opened_seq LIMIT ?");
	c = store_pool_get(app->pool);
	if (sqlite3_prepare_v2(c->db, sql.buf, -1, &st, NULL) != SQLITE_OK) {
		log_err("alerts query: %s", sqlite3_errmsg(c->db));
		store_pool_put(app->pool, c);
		sb_free(&sql);
		http_problem(req, 503, "storage-unavailable", NULL, "cannot query alerts");
		return;
	}
	sb_free(&sql);
	sqlite3_bind_int64(st, idx++, cursor);
	if (state)
		sqlite3_bind_text(st, idx++, state, -1, SQLITE_STATIC);
	if (level)
		sqlite3_bind_text(st, idx++, level, -1, SQLITE_STATIC);
	if (tenant)
		sqlite3_bind_text(st, idx++, tenant, -1, SQLITE_STATIC);
	if (esc)
		sqlite3_bind_text(st, idx++, esc, -1, SQLITE_STATIC);
	if (has_since)
		sqlite3_bind_int64(st, idx++, since);
	if (has_until)
		sqlite3_bind_int64(st, idx++, until);
	sqlite3_bind_int64(st, idx++, limit + 1);
	items = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		json_array_append_new(items, alert_doc(st));
		last = sqlite3_column_int64(st, 7);
		n++;
	}
	sqlite3_finalize(st);
	store_pool_put(app->pool, c);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_decref(items);
		http_problem(req, 503, "storage-unavailable", NULL, "cannot query alerts");
		return;
	}
	api_respond_page(req, items, more, last, alert_columns, csv_alert);
}

/* 403 for an alert outside the tenant a token is bound to (or of no tenant). */
static void
alert_forbidden(struct http_req *req, const char *id)
{
	const struct principal *who = http_principal(req);

	http_problem(req, 403, "forbidden-tenant", NULL,
		     "token '%s' is bound to tenant '%s' and may not see alert '%s', "
		     "which is not that tenant's",
		     who->name, who->tenant, id);
}

void
api_get_alert(struct http_req *req)
{
	struct app *app = app_of(req);
	const struct principal *who = http_principal(req);
	struct dbconn *c = store_pool_get(app->pool);
	json_t *doc = alerts_get(c, http_param(req, 0));
	const char *tenant;

	store_pool_put(app->pool, c);
	if (!doc) {
		http_problem(req, 404, "not-found", NULL, "no alert '%s'", http_param(req, 0));
		return;
	}
	tenant = json_string_value(json_object_get(doc, "tenant"));
	if (who->tenant_bound && (!tenant || strcmp(tenant, who->tenant) != 0)) {
		alert_forbidden(req, http_param(req, 0));
		json_decref(doc);
		return;
	}
	http_respond_json(req, 200, doc);
}

static void
change_resumed(struct http_req *req)
{
	struct writer_job *job = http_data(req);

	if (job->status < 0) {
		http_add_header(req, "Retry-After", "1");
		http_problem(req, 503, "storage-unavailable", NULL,
			     "the change was not recorded: %s", job->error);
	} else if (job->alert_result == 403) {
		alert_forbidden(req, job->alert_id);
	} else if (job->alert_result == 404) {
		http_problem(req, 404, "not-found", NULL, "no alert '%s'", job->alert_id);
	} else if (job->alert_result == 409) {
		http_problem(req, 409, "alert-state", NULL,
			     "alert '%s' cannot be %s in its current state", job->alert_id,
			     !strcmp(job->alert_action, "ack") ? "acknowledged" : "resolved");
	} else {
		http_respond_take(req, 200, "application/json", job->alert_doc,
				  strlen(job->alert_doc));
		job->alert_doc = NULL;
	}
}

static void
change_committed(struct writer_job *job)
{
	http_resume(job->arg);
}

static void
job_free(void *p)
{
	writer_job_free(p);
}

static void
post_change(struct http_req *req, const char *action)
{
	struct app *app = app_of(req);
	const struct principal *who = http_principal(req);
	struct writer_job *job;
	const char *body, *note = NULL, *why;
	json_error_t jerr;
	json_t *doc = NULL;
	size_t len;

	body = http_body(req, &len);
	if (len) {
		const char *ct = http_header(req, "Content-Type");

		if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
			http_problem(req, 415, "unsupported-media-type", NULL,
				     "send {\"note\": \"...\"} as application/json");
			return;
		}
		doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc || !json_is_object(doc)) {
			json_decref(doc);
			http_problem(req, 400, "bad-request", NULL,
				     "the body must be a JSON object {\"note\": \"...\"}");
			return;
		}
		if (json_object_size(doc) > (json_object_get(doc, "note") ? 1u : 0u)) {
			json_decref(doc);
			http_problem(req, 400, "bad-request", json_pack("{s:s}", "pointer", ""),
				     "the only field is note");
			return;
		}
		if (json_object_get(doc, "note")) {
			note = json_string_value(json_object_get(doc, "note"));
			if (!note || strlen(note) > NOTE_MAX) {
				json_decref(doc);
				http_problem(req, 400, "bad-request",
					     json_pack("{s:s}", "pointer", "/note"),
					     "note must be a string of at most %d bytes", NOTE_MAX);
				return;
			}
		}
	}
	job = xcalloc(1, sizeof(*job));
	job->kind = JOB_ALERT;
	job->alert_id = xstrdup(http_param(req, 0));
	job->alert_action = xstrdup(action);
	job->note = note ? xstrdup(note) : NULL;
	job->token = xstrdup(who->name);
	job->scope_tenant = who->tenant_bound ? xstrdup(who->tenant) : NULL;
	job->done = change_committed;
	job->arg = req;
	json_decref(doc);
	http_set_data(req, job, job_free);
	http_suspend(req, change_resumed);
	if (writer_submit(app->writer, job, &why) < 0) {
		job->status = -1;
		snprintf(job->error, sizeof(job->error), "%s", why);
		http_resume(req);
	}
}

void
api_post_alert_ack(struct http_req *req)
{
	post_change(req, "ack");
}

void
api_post_alert_resolve(struct http_req *req)
{
	post_change(req, "resolve");
}

void
api_metrics_alerts(struct strbuf *sb, struct app *app)
{
	static const char *const levels[] = {"notice", "warning", "critical", "suspend"};
	long long open[4] = {0}, backlog;
	struct dbconn *c = store_pool_get(app->pool);
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(c->db,
			       "SELECT level, count(*) FROM alerts WHERE state != 'resolved' "
			       "GROUP BY level",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			enum alert_level l;

			if (level_parse((const char *)sqlite3_column_text(st, 0), &l) == 0)
				open[l] = sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
	}
	backlog = outbox_backlog(c);
	store_pool_put(app->pool, c);
	sb_adds(sb, "# HELP aupd_alerts_open Alerts not yet resolved, by level.\n"
		    "# TYPE aupd_alerts_open gauge\n");
	for (int i = 0; i < 4; i++)
		sb_addf(sb, "aupd_alerts_open{level=\"%s\"} %lld\n", levels[i], open[i]);
	sb_addf(sb, "# HELP aupd_webhook_backlog Webhook deliveries not yet accepted by their "
		    "receiver.\n# TYPE aupd_webhook_backlog gauge\naupd_webhook_backlog %lld\n",
		backlog);
}
