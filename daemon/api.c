/* api.c - the route table and the small endpoints: health and readiness */
#include "aupd/app.h"

static void
get_healthz(struct http_req *req)
{
	http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void
get_readyz(struct http_req *req)
{
	struct app *app = app_of(req);

	if (app_ready(app))
		http_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
	else
		http_problem(req, 503, "not-ready", NULL, "shutting down");
}

const struct route app_routes[] = {
	{"GET", "/healthz", ROUTE_PUBLIC, get_healthz, "healthz"},
	{"GET", "/readyz", ROUTE_PUBLIC, get_readyz, "readyz"},
};
const size_t app_n_routes = sizeof(app_routes) / sizeof(app_routes[0]);
