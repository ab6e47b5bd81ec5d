/* api.c - the route table, tenant scoping, and the health endpoints */
#include "aupd/api.h"

#include <string.h>

#define R_INGEST ROUTE_ROLE_INGEST
#define R_READ (ROUTE_ROLE_AUDITOR | ROUTE_ROLE_OPERATOR)
#define R_OPERATE ROUTE_ROLE_OPERATOR

bool
api_tenant_allowed(struct http_req *req, const char *tenant)
{
	const struct principal *who = http_principal(req);

	if (!who->tenant_bound || (tenant && !strcmp(tenant, who->tenant)))
		return true;
	http_problem(req, 403, "forbidden-tenant", NULL,
		     "token '%s' is bound to tenant '%s' and may not see tenant '%s'", who->name,
		     who->tenant, tenant ? tenant : "(all)");
	return false;
}

bool
api_check_query(struct http_req *req, const char *const *allowed)
{
	const char *const *names = http_query_names(req);

	for (size_t i = 0; names[i]; i++) {
		bool ok = false;
		size_t n = 0;

		for (; allowed[n]; n++)
			if (!strcmp(names[i], allowed[n]))
				ok = true;
		if (!ok) {
			const char *s = suggest_word(names[i], allowed, n);

			http_problem(req, 400, "bad-query", NULL, "unknown query parameter '%s'%s%s%s",
				     names[i], s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
			return false;
		}
	}
	return true;
}

static void
get_healthz(struct http_req *req)
{
	http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void
get_readyz(struct http_req *req)
{
	const char *why;

	if (app_ready(app_of(req), &why))
		http_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
	else
		http_problem(req, 503, "not-ready", NULL, "%s", why);
}

const struct route app_routes[] = {
	{"GET", "/healthz", ROUTE_PUBLIC, get_healthz, "healthz"},
	{"GET", "/readyz", ROUTE_PUBLIC, get_readyz, "readyz"},
	{"POST", "/v1/events", R_INGEST | ROUTE_BODY, api_post_events, "events_post"},
	{"GET", "/v1/events/{}/{}", R_READ, api_get_event, "event_get"},
	{"GET", "/v1/rules", R_READ, api_get_rules, "rules_get"},
	{"POST", "/v1/rules/reload", R_OPERATE | ROUTE_BODY, api_post_rules_reload, "rules_reload"},
	{"GET", "/v1/verdicts", R_READ, api_get_verdicts, "verdicts"},
	{"GET", "/v1/reports/summary", R_READ, api_get_summary, "summary"},
	{"GET", "/v1/audit/head", R_READ, api_get_audit_head, "audit_head"},
	{"GET", "/v1/audit/log", R_READ, api_get_audit_log, "audit_log"},
	{"GET", "/v1/alerts", R_READ, api_get_alerts, "alerts"},
	{"GET", "/v1/alerts/{}", R_READ, api_get_alert, "alert_get"},
	{"POST", "/v1/alerts/{}/ack", R_OPERATE | ROUTE_BODY, api_post_alert_ack, "alert_ack"},
	{"POST", "/v1/alerts/{}/resolve", R_OPERATE | ROUTE_BODY, api_post_alert_resolve,
	 "alert_resolve"},
	{"GET", "/metrics", R_READ, api_get_metrics, "metrics"},
};
const size_t app_n_routes = sizeof(app_routes) / sizeof(app_routes[0]);
