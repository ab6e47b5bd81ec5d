/* api.h - the HTTP endpoints (one api_*.c per group) and what they share */
#ifndef AUPD_API_H
#define AUPD_API_H

#include "aupd/app.h"
#include "aupd/http.h"
#include "aupd/policy.h"
#include "aupd/store.h"
#include "aupd/writer.h"

/* api_events.c */
void api_post_events(struct http_req *req);
void api_get_event(struct http_req *req);

/* api_rules.c */
void api_get_rules(struct http_req *req);
void api_post_rules_reload(struct http_req *req);

/* api_audit.c */
void api_get_audit_head(struct http_req *req);
void api_get_audit_log(struct http_req *req);

/* api_query.c */
void api_get_verdicts(struct http_req *req);
void api_get_summary(struct http_req *req);

/* api_metrics.c */
void api_get_metrics(struct http_req *req);
/* api_alerts.c */
void api_get_alerts(struct http_req *req);
void api_get_alert(struct http_req *req);
void api_post_alert_ack(struct http_req *req);
void api_post_alert_resolve(struct http_req *req);
/* alert gauges for /metrics */
void api_metrics_alerts(struct strbuf *sb, struct app *app);

/*
 * True when the request's token may see `tenant`; otherwise answers 403
 * and returns false.
 */
bool api_tenant_allowed(struct http_req *req, const char *tenant);
/* True when every query argument is in the NULL-terminated `allowed`; else answers 400. */
bool api_check_query(struct http_req *req, const char *const *allowed);

/* Query helpers shared by the list endpoints (api_query.c). */
int api_query_time(struct http_req *req, const char *name, aupd_time *out, bool *set);
int api_query_limit(struct http_req *req, int64_t *out);
int api_cursor_parse(struct http_req *req, int64_t *out);
void api_cursor_format(int64_t seq, char *buf, size_t len);
bool api_wants_csv(struct http_req *req);
/*
 * Answers one page of a list: {"items": [...], "next_cursor"} as JSON, or, for
 * Accept: text/csv, a header row of `columns` and one `row` per item (the
 * cursor in X-Next-Cursor).  Takes the reference to `items`.
 */
void api_respond_page(struct http_req *req, json_t *items, bool more, int64_t last,
		      const char *const *columns, void (*row)(struct strbuf *sb, json_t *item));
/* Appends one RFC 4180 field (preceded by a comma unless first). */
void csv_field(struct strbuf *sb, const char *s, bool first);

#endif
