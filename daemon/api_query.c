/* api_query.c - GET /v1/verdicts (filters, cursor paging, CSV) and GET /v1/reports/summary */
#include "aupd/api.h"
#include "aupd/log.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

/* ---- shared query helpers ---- */

int
api_query_time(struct http_req *req, const char *name, aupd_time *out, bool *set)
{
	const char *v = http_query(req, name), *why;

	*set = false;
	if (!v)
		return 0;
	if (time_parse_rfc3339(v, strlen(v), out, &why) < 0) {
		http_problem(req, 400, "bad-query", NULL, "%s: %s", name, why);
		return -1;
	}
	*set = true;
	return 0;
}

int
api_query_limit(struct http_req *req, int64_t *out)
{
	const char *v = http_query(req, "limit");

	*out = PAGE_DEFAULT;
	if (v && parse_i64(v, 1, PAGE_MAX, out) < 0) {
		http_problem(req, 400, "bad-query", NULL, "limit must be 1 to %d, not '%s'", PAGE_MAX,
			     v);
		return -1;
	}
	return 0;
}

/* Cursors are opaque to clients: "c" and the last seq of the page, in hex. */
void
api_cursor_format(int64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "c%llx", (unsigned long long)seq);
}

int
api_cursor_parse(struct http_req *req, int64_t *out)
{
	const char *v = http_query(req, "cursor");
	char *end;
	unsigned long long n;

	*out = 0;
	if (!v || !*v)
		return 0;
	if (v[0] == 'c' && v[1]) {
		n = strtoull(v + 1, &end, 16);
		if (!*end && n <= INT64_MAX) {
			*out = (int64_t)n;
			return 0;
		}
	}
	http_problem(req, 400, "bad-query", NULL,
		     "cursor '%s' is not one this server gave out (use next_cursor as it is)", v);
	return -1;
}

void
api_respond_page(struct http_req *req, json_t *items, bool more, int64_t last,
		 const char *const *columns, void (*row)(struct strbuf *sb, json_t *item))
{
	char next[32] = "";

	if (more)
		api_cursor_format(last, next, sizeof(next));
	if (api_wants_csv(req)) {
		struct strbuf sb;
		json_t *it;
		size_t i, len;
		char *body;

		sb_init(&sb);
		for (i = 0; columns[i]; i++)
			csv_field(&sb, columns[i], i == 0);
		sb_adds(&sb, "\r\n");
		json_array_foreach(items, i, it)
			row(&sb, it);
		json_decref(items);
		if (more)
			http_add_header(req, "X-Next-Cursor", next);
		body = sb_detach(&sb, &len);
		http_respond_take(req, 200, "text/csv; charset=utf-8; header=present", body, len);
		return;
	}
	http_respond_json(req, 200,
			  json_pack("{s:o, s:o}", "items", items, "next_cursor",
				    more ? json_string(next) : json_null()));
}

bool
api_wants_csv(struct http_req *req)
{
	const char *a = http_header(req, "Accept");

	return a && strstr(a, "text/csv");
}

/* Appends one CSV field per RFC 4180 (quoted when it holds a comma, quote, CR or LF). */
void
csv_field(struct strbuf *sb, const char *s, bool first)
{
	if (!first)
		sb_addc(sb, ',');
	if (!s)
		return;
	if (!s[strcspn(s, ",\"\r\n")]) {
		sb_adds(sb, s);
		return;
	}
	sb_addc(sb, '"');
	for (; *s; s++) {
		if (*s == '"')
			sb_addc(sb, '"');
		sb_addc(sb, *s);
	}
	sb_addc(sb, '"');
}

/* ---- the query builder: WHERE clauses with their bound values ---- */

struct q {
	struct strbuf sql;
	const char *text[12];
	int64_t num[12];
	bool is_text[12];
	int n;
};

static void
q_text(struct q *q, const char *clause, const char *v)
{
	sb_adds(&q->sql, clause);
	q->text[q->n] = v;
	q->is_text[q->n++] = true;
}

static void
q_num(struct q *q, const char *clause, int64_t v)
{
	sb_adds(&q->sql, clause);
	q->num[q->n] = v;
	q->is_text[q->n++] = false;
}

static void
q_bind(struct q *q, sqlite3_stmt *st)
{
	for (int i = 0; i < q->n; i++) {
		if (q->is_text[i])
			sqlite3_bind_text(st, i + 1, q->text[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, q->num[i]);
	}
}

/* The tenant a query is about: the token's own when bound (403 on another), else the filter. */
static int
scope_tenant(struct http_req *req, const char **tenant)
{
	const struct principal *who = http_principal(req);

	*tenant = http_query(req, "tenant");
	if (who->tenant_bound) {
		if (*tenant && strcmp(*tenant, who->tenant) != 0)
			return api_tenant_allowed(req, *tenant) ? 0 : -1;
		*tenant = who->tenant;
	}
	return 0;
}

_Static_assert(STORE_EPOCH_SHIFT == 14, "the SQL text below spells the epoch as seq >> 14");

/* ---- GET /v1/verdicts ---- */

/* The epoch of the newest event: where a query by tenant stops. */
#define LAST_EPOCH_SQL "SELECT coalesce(max(seq), 0) >> 14 FROM events"

static int
last_epoch(struct dbconn *c, int64_t *out)
{
	static const char sql[] = LAST_EPOCH_SQL;
	sqlite3_stmt *st = store_cached(c, sql, NULL);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static const char *const verdict_columns[] = {
	"seq",	    "decided_at", "tenant",	"id",	 "time",  "actor",	   "action",
	"purpose", "resource",   "dataset", "verdict", "rules", "rules_version", NULL};

static void
csv_row(struct strbuf *sb, json_t *item)
{
	json_t *ev = json_object_get(item, "event");
	json_t *res = json_object_get(ev ? ev : item, "resource");
	json_t *m;
	struct strbuf rules;
	size_t i;
	char seq[24];

	sb_init(&rules);
	json_array_foreach(json_object_get(item, "matched"), i, m) {
		const char *ex = json_string_value(json_object_get(m, "exempted"));

		if (rules.len)
			sb_addc(&rules, ';');
		sb_adds(&rules, json_string_value(json_object_get(m, "rule")));
		if (json_is_true(json_object_get(m, "shadow")))
			sb_adds(&rules, "(shadow)");
		if (ex)
			sb_addf(&rules, "(exempted:%s)", ex);
	}
	snprintf(seq, sizeof(seq), "%lld", (long long)json_integer_value(json_object_get(item, "seq")));
	csv_field(sb, seq, true);
	csv_field(sb, json_string_value(json_object_get(item, "decided_at")), false);
	csv_field(sb, json_string_value(json_object_get(item, "tenant")), false);
	csv_field(sb, json_string_value(json_object_get(item, "id")), false);
	csv_field(sb, json_string_value(json_object_get(ev ? ev : item, ev ? "time" : "deadline")),
		  false);
	csv_field(sb, json_string_value(json_object_get(ev, "actor")), false);
	csv_field(sb, json_string_value(json_object_get(ev, "action")), false);
	csv_field(sb, json_string_value(json_object_get(ev, "purpose")), false);
	csv_field(sb, json_string_value(json_object_get(res, "id")), false);
	csv_field(sb, json_string_value(json_object_get(res, "dataset")), false);
	csv_field(sb, json_string_value(json_object_get(item, "verdict")), false);
	csv_field(sb, rules.buf ? rules.buf : "", false);
	csv_field(sb, json_string_value(json_object_get(item, "rules_version")), false);
	sb_adds(sb, "\r\n");
	sb_free(&rules);
}

void
api_get_verdicts(struct http_req *req)
{
	static const char *const params[] = {"tenant", "actor", "action", "rule", "verdict",
					     "since",  "until", "limit",  "cursor", NULL};
	struct app *app = app_of(req);
	const char *tenant, *actor = http_query(req, "actor"), *action = http_query(req, "action");
	const char *rule = http_query(req, "rule"), *verdict_s = http_query(req, "verdict");
	aupd_time since, until;
	bool has_since, has_until;
	enum effect verdict;
	int64_t limit, cursor, last = 0, epoch, epoch_hi = 0;
	struct q q = {0};
	struct dbconn *c;
	sqlite3_stmt *st = NULL;
	json_t *items;
	int rc, n = 0, epoch_param = -1;
	bool more = false;

	if (!api_check_query(req, params) || scope_tenant(req, &tenant) < 0 ||
	    api_query_time(req, "since", &since, &has_since) < 0 ||
	    api_query_time(req, "until", &until, &has_until) < 0 || api_query_limit(req, &limit) < 0 ||
	    api_cursor_parse(req, &cursor) < 0)
		return;
	if (verdict_s && effect_parse(verdict_s, &verdict) < 0) {
		http_problem(req, 400, "bad-query", NULL, "verdict must be allow, flag or deny, not '%s'",
			     verdict_s);
		return;
	}
	/*
	 * With a tenant the query seeks the indexes that lead with the epoch
	 * (seq >> 14, see STORE_EPOCH_SHIFT): one run of the statement per
	 * epoch, from the cursor's up, until the page is full.  Each run comes
	 * in seq order, so the page does too.  The runs read separate
	 * snapshots; none skips a row, because one writer commits seqs in
	 * order and the last epoch is read before the first run.  Every epoch
	 * costs a seek, empty ones too: a tenant with no events at 10 M
	 * records costs 610 of them (10-25 ms on the bench machine).
	 */
	sb_init(&q.sql);
	if (rule) {
		sb_adds(&q.sql, "SELECT l.seq, l.body FROM verdict_rules r JOIN events e ON e.seq = r.seq "
				"JOIN ledger l ON l.seq = r.seq WHERE r.rule = ?");
		q.text[q.n] = rule;
		q.is_text[q.n++] = true;
		q_num(&q, " AND r.seq > ?", cursor);
		if (tenant) {
			q_text(&q, " AND r.tenant = ?", tenant);
			epoch_param = q.n;
			q_num(&q, " AND r.seq >> 14 = ?", 0);
		}
	} else {
		sb_adds(&q.sql, "SELECT l.seq, l.body FROM events e JOIN ledger l ON l.seq = e.seq "
				"WHERE e.seq > ?");
		q.num[q.n] = cursor;
		q.is_text[q.n++] = false;
		if (tenant) {
			q_text(&q, " AND e.tenant = ?", tenant);
			epoch_param = q.n;
			q_num(&q, " AND e.seq >> 14 = ?", 0);
		}
	}
	if (actor)
		q_text(&q, " AND e.actor = ?", actor);
	if (action)
		q_text(&q, " AND e.action = ?", action);
	if (verdict_s)
		q_num(&q, verdict > EFFECT_ALLOW ? " AND e.verdict = ? AND e.verdict > 0"
						 : " AND e.verdict = ?",
		      verdict);
	if (has_since)
		q_num(&q, " AND e.time >= ?", since);
	if (has_until)
		q_num(&q, " AND e.time < ?", until);
	q_num(&q, rule ? " ORDER BY r.seq LIMIT ?" : " ORDER BY e.seq LIMIT ?", limit + 1);

	c = store_pool_get(app->pool);
	if (sqlite3_prepare_v2(c->db, q.sql.buf, -1, &st, NULL) != SQLITE_OK ||
	    (epoch_param >= 0 && last_epoch(c, &epoch_hi) < 0)) {
		log_err("verdicts query: %s", sqlite3_errmsg(c->db));
		sqlite3_finalize(st);
		store_pool_put(app->pool, c);
		sb_free(&q.sql);
		http_problem(req, 503, "storage-unavailable", NULL, "cannot query verdicts");
		return;
	}
	q_bind(&q, st);
	items = json_array();
	epoch = epoch_param >= 0 ? cursor >> STORE_EPOCH_SHIFT : 0; /* seq > cursor */
	if (epoch_param < 0)
		epoch_hi = epoch;
	rc = SQLITE_DONE;
	for (; epoch <= epoch_hi && rc == SQLITE_DONE && !more; epoch++) {
		if (epoch_param >= 0) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, epoch_param + 1, epoch);
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			json_t *body, *item;

			if (n == limit) {
				more = true;
				break;
			}
			body = json_loadb(sqlite3_column_blob(st, 1),
					  (size_t)sqlite3_column_bytes(st, 1), 0, NULL);
			item = json_object_get(body, "verdict");
			if (item)
				json_object_set(item, "event", json_object_get(body, "event"));
			else
				item = json_object_get(body, "overdue"); /* a retention-overdue record */
			if (item)
				json_array_append(items, item);
			json_decref(body);
			last = sqlite3_column_int64(st, 0);
			n++;
		}
	}
	sqlite3_finalize(st);
	store_pool_put(app->pool, c);
	sb_free(&q.sql);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_decref(items);
		http_problem(req, 503, "storage-unavailable", NULL, "cannot query verdicts");
		return;
	}
	api_respond_page(req, items, more, last, verdict_columns, csv_row);
}

/* ---- GET /v1/reports/summary ---- */

/*
 * One summary statement: SELECT `cols` over the events (joined to their rule
 * matches when `rules`), narrowed to a tenant and a time range.  A tenant is
 * found epoch by epoch (the tenant index leads with seq >> 14): a recursive
 * list of the epochs drives the join, so only that tenant's entries are read.
 */
static int
summary_query(struct dbconn *c, const char *cols, bool rules, const char *tenant, bool has_since,
	      aupd_time since, bool has_until, aupd_time until, const char *tail,
	      sqlite3_stmt **out)
{
	struct q q = {0};
	int rc;

	sb_init(&q.sql);
	if (tenant) {
		sb_addf(&q.sql,
			"WITH RECURSIVE ep(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM ep "
			"WHERE x < (" LAST_EPOCH_SQL ")) "
			"SELECT %s FROM ep CROSS JOIN events e%s WHERE e.seq >> 14 = ep.x",
			cols, rules ? " CROSS JOIN verdict_rules r ON r.seq = e.seq" : "");
		q_text(&q, " AND e.tenant = ?", tenant);
	} else {
		sb_addf(&q.sql, "SELECT %s FROM events e%s WHERE 1", cols,
			rules ? " JOIN verdict_rules r ON r.seq = e.seq" : "");
	}
	if (has_since)
		q_num(&q, " AND e.time >= ?", since);
	if (has_until)
		q_num(&q, " AND e.time < ?", until);
	sb_adds(&q.sql, tail);
	rc = sqlite3_prepare_v2(c->db, q.sql.buf, -1, out, NULL);
	if (rc == SQLITE_OK)
		q_bind(&q, *out);
	sb_free(&q.sql);
	return rc == SQLITE_OK ? 0 : -1;
}

void
api_get_summary(struct http_req *req)
{
	static const char *const params[] = {"tenant", "since", "until", NULL};
	struct app *app = app_of(req);
	const char *tenant;
	aupd_time since, until;
	bool has_since, has_until;
	json_t *by_verdict, *by_rule, *by_day, *day = NULL;
	long long total = 0, cur_day = -1;
	struct dbconn *c;
	sqlite3_stmt *st;
	char buf[40];

	if (!api_check_query(req, params) || scope_tenant(req, &tenant) < 0 ||
	    api_query_time(req, "since", &since, &has_since) < 0 ||
	    api_query_time(req, "until", &until, &has_until) < 0)
		return;
	by_verdict = json_pack("{s:i, s:i, s:i}", "allow", 0, "flag", 0, "deny", 0);
	by_rule = json_object();
	by_day = json_array();
	c = store_pool_get(app->pool);
	/* per verdict */
	if (summary_query(c, "e.verdict, count(*)", false, tenant, has_since, since, has_until,
			  until, " GROUP BY e.verdict", &st) < 0)
		goto err_db;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int v = sqlite3_column_int(st, 0);
		long long n = sqlite3_column_int64(st, 1);

		if (v >= EFFECT_ALLOW && v <= EFFECT_DENY)
			json_object_set_new(by_verdict, effect_name((enum effect)v), json_integer(n));
		total += n;
	}
	sqlite3_finalize(st);
	/* per rule: how often each rule fired (shadow and exempted matches included) */
	if (summary_query(c, "r.rule, count(*)", true, tenant, has_since, since, has_until, until,
			  " GROUP BY r.rule ORDER BY r.rule", &st) < 0)
		goto err_db;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_object_set_new(by_rule, (const char *)sqlite3_column_text(st, 0),
				    json_integer(sqlite3_column_int64(st, 1)));
	sqlite3_finalize(st);
	/* per day (UTC, by the events' time) */
	if (summary_query(c,
			  "e.time / 86400000000 - (e.time < 0 AND e.time % 86400000000 != 0), "
			  "e.verdict, count(*)",
			  false, tenant, has_since, since, has_until, until,
			  " GROUP BY 1, 2 ORDER BY 1, 2", &st) < 0)
		goto err_db;
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long d = sqlite3_column_int64(st, 0);
		int v = sqlite3_column_int(st, 1);
		long long n = sqlite3_column_int64(st, 2);

		if (d != cur_day) {
			time_format_ms(d * 86400 * AUPD_USEC, buf, sizeof(buf));
			buf[10] = '\0';
			day = json_pack("{s:s, s:i, s:i, s:i, s:i}", "day", buf, "total", 0, "allow",
					0, "flag", 0, "deny", 0);
			json_array_append_new(by_day, day);
			cur_day = d;
		}
		if (v >= EFFECT_ALLOW && v <= EFFECT_DENY)
			json_object_set_new(day, effect_name((enum effect)v), json_integer(n));
		json_object_set_new(day, "total",
				    json_integer(json_integer_value(json_object_get(day, "total")) + n));
	}
	sqlite3_finalize(st);
	store_pool_put(app->pool, c);
	{
		json_t *doc = json_pack("{s:o, s:I, s:o, s:o, s:o}", "tenant",
					tenant ? json_string(tenant) : json_null(), "total",
					(json_int_t)total, "by_verdict", by_verdict, "by_rule", by_rule,
					"by_day", by_day);

		if (has_since) {
			time_format_ms(since, buf, sizeof(buf));
			json_object_set_new(doc, "since", json_string(buf));
		}
		if (has_until) {
			time_format_ms(until, buf, sizeof(buf));
			json_object_set_new(doc, "until", json_string(buf));
		}
		http_respond_json(req, 200, doc);
	}
	return;

err_db:
	log_err("summary query: %s", sqlite3_errmsg(c->db));
	store_pool_put(app->pool, c);
	json_decref(by_verdict);
	json_decref(by_rule);
	json_decref(by_day);
	http_problem(req, 503, "storage-unavailable", NULL, "cannot compute the summary");
}
