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

/*
 * True when the request's token may see `tenant`; otherwise answers 403
 * and returns false.
 */
bool api_tenant_allowed(struct http_req *req, const char *tenant);

#endif
