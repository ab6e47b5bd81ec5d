/* api_rules.c - GET /v1/rules and POST /v1/rules/reload */
#include "aupd/api.h"
#include "aupd/log.h"

#include <stdlib.h>
#include <string.h>

void
api_get_rules(struct http_req *req)
{
	struct app *app = app_of(req);
	struct ruleset *rs = writer_rules(app->writer);
	json_t *doc = ruleset_describe(rs);
	char loaded[40];

	time_format_ms(writer_rules_loaded_at(app->writer), loaded, sizeof(loaded));
	json_object_set_new(doc, "loaded_at", json_string(loaded));
	ruleset_unref(rs);
	http_respond_json(req, 200, doc);
}

struct reload_req {
	struct writer_job *job;
};

static void
reload_req_free(void *p)
{
	struct reload_req *rr = p;

	writer_job_free(rr->job);
	free(rr);
}

static void
reload_resumed(struct http_req *req)
{
	struct reload_req *rr = http_data(req);
	struct app *app = app_of(req);
	struct ruleset *rs;
	json_t *doc;
	char loaded[40];

	if (rr->job->status < 0) {
		http_add_header(req, "Retry-After", "1");
		http_problem(req, 503, "storage-unavailable", NULL,
			     "the reload was not recorded, so the rules in force stay: %s",
			     rr->job->error);
		return;
	}
	rs = writer_rules(app->writer);
	time_format_ms(writer_rules_loaded_at(app->writer), loaded, sizeof(loaded));
	doc = json_pack("{s:s, s:s, s:I, s:I}", "rules_version", ruleset_version(rs), "loaded_at",
			loaded, "rules", (json_int_t)ruleset_n_rules(rs), "seq",
			(json_int_t)rr->job->seq);
	log_notice("reloaded rules (api, token %s): %zu rules, %s", http_principal(req)->name,
		   ruleset_n_rules(rs), ruleset_version(rs));
	ruleset_unref(rs);
	http_respond_json(req, 200, doc);
}

static void
reload_committed(struct writer_job *job)
{
	http_resume(job->arg);
}

void
api_post_rules_reload(struct http_req *req)
{
	struct app *app = app_of(req);
	struct diag_list dl = {0};
	struct reload_req *rr;
	struct ruleset *rs;
	const char *why;

	if (http_principal(req)->tenant_bound) {
		http_problem(req, 403, "forbidden-tenant", NULL,
			     "token '%s' is bound to tenant '%s'; the rules apply to every tenant, so "
			     "only a token bound to none may reload them",
			     http_principal(req)->name, http_principal(req)->tenant);
		return;
	}
	pthread_mutex_lock(&app->reload_mu);
	rs = app_load_rules(app, &dl);
	pthread_mutex_unlock(&app->reload_mu);
	if (!rs) {
		json_t *errors = json_array();

		for (size_t i = 0; i < dl.n; i++) {
			char line[1024];

			aupd_error_format(&dl.v[i], line, sizeof(line));
			json_array_append_new(errors, json_string(line));
		}
		http_problem(req, 422, "rules-invalid", json_pack("{s:o}", "errors", errors),
			     "%zu error%s in the rules; the rules in force stay", dl.n,
			     dl.n == 1 ? "" : "s");
		diag_list_free(&dl);
		return;
	}
	rr = xcalloc(1, sizeof(*rr));
	rr->job = xcalloc(1, sizeof(*rr->job));
	rr->job->kind = JOB_RELOAD;
	rr->job->rules = rs;
	rr->job->reason = xasprintf("api (token %s)", http_principal(req)->name);
	rr->job->done = reload_committed;
	rr->job->arg = req;
	http_set_data(req, rr, reload_req_free);
	http_suspend(req, reload_resumed);
	if (writer_submit(app->writer, rr->job, &why) < 0) {
		rr->job->status = -1;
		snprintf(rr->job->error, sizeof(rr->job->error), "%s", why);
		http_resume(req);
	}
}
