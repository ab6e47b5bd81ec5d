/* api_events.c - POST /v1/events (ingest) and GET /v1/events/{tenant}/{id} */
#include "aupd/api.h"
#include "aupd/eventkeys.h"
#include "aupd/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Per-request ingest state: every body item is either a problem or an event sent to the writer. */
struct ingest {
	size_t n_items;
	struct event_problem *probs; /* probs[i].status != 0: item i was rejected */
	size_t *slot;                /* otherwise: its index in job->items */
	bool single;
	bool busy; /* refused because the write queue was full */
	struct writer_job *job;
};

static void
ingest_free(void *p)
{
	struct ingest *in = p;

	if (!in)
		return;
	free(in->probs);
	free(in->slot);
	writer_job_free(in->job);
	free(in);
}

/* application/json or application/x-ndjson (parameters such as charset allowed). */
static int
body_format(const char *ct, enum body_format *fmt)
{
	size_t n;

	if (!ct)
		return -1;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, ";");
	while (n && ct[n - 1] == ' ')
		n--;
	if (n == 16 && !strncasecmp(ct, "application/json", 16))
		*fmt = BODY_JSON;
	else if ((n == 20 && !strncasecmp(ct, "application/x-ndjson", 20)) ||
		 (n == 18 && !strncasecmp(ct, "application/ndjson", 18)))
		*fmt = BODY_NDJSON;
	else
		return -1;
	return 0;
}

static void
append_problem(struct strbuf *sb, const struct event_problem *p, size_t index)
{
	char type[64];

	snprintf(type, sizeof(type), "urn:aupd:problem:%s",
		 p->status == 403 ? "forbidden-tenant" : "invalid-event");
	sb_adds(sb, "{\"type\":");
	json_quote(sb, type);
	sb_adds(sb, ",\"title\":");
	json_quote(sb, http_status_title(p->status));
	sb_addf(sb, ",\"status\":%d,\"detail\":", p->status);
	json_quote(sb, p->detail);
	sb_adds(sb, ",\"pointer\":");
	json_quote(sb, p->pointer);
	sb_addf(sb, ",\"index\":%zu}", index);
}

static void
respond_results(struct http_req *req, struct ingest *in)
{
	struct strbuf sb;
	size_t accepted = 0, rejected = 0;
	char *body;
	size_t len;

	if (in->job && in->job->status < 0) {
		if (!in->busy)
			metrics_reject(&app_of(req)->metrics, REJECT_STORAGE, (long long)in->n_items);
		http_add_header(req, "Retry-After", "1");
		http_problem(req, 503, "storage-unavailable", NULL,
			     "nothing from this request was stored: %s", in->job->error);
		return;
	}
	if (in->single && in->probs[0].status) {
		const struct event_problem *p = &in->probs[0];

		metrics_reject(&app_of(req)->metrics, p->status == 403 ? REJECT_TENANT : REJECT_INVALID,
			       1);
		http_problem(req, p->status, p->status == 403 ? "forbidden-tenant" : "invalid-event",
			     json_pack("{s:s}", "pointer", p->pointer), "%s", p->detail);
		return;
	}
	sb_init(&sb);
	sb_adds(&sb, "{\"results\":[");
	for (size_t i = 0; i < in->n_items; i++) {
		if (i)
			sb_addc(&sb, ',');
		if (in->probs[i].status) {
			append_problem(&sb, &in->probs[i], i);
			metrics_reject(&app_of(req)->metrics,
				       in->probs[i].status == 403 ? REJECT_TENANT : REJECT_INVALID, 1);
			rejected++;
		} else {
			const struct ingest_item *it = &in->job->items[in->slot[i]];

			sb_add(&sb, it->verdict_doc, it->doc_len);
			accepted++;
		}
	}
	sb_addf(&sb, "],\"accepted\":%zu,\"rejected\":%zu}\n", accepted, rejected);
	body = sb_detach(&sb, &len);
	http_respond_take(req, 200, "application/json", body, len);
}

static void
ingest_resumed(struct http_req *req)
{
	respond_results(req, http_data(req));
}

static void
ingest_committed(struct writer_job *job)
{
	http_resume(job->arg);
}

void
api_post_events(struct http_req *req)
{
	struct app *app = app_of(req);
	const struct principal *who = http_principal(req);
	struct body_item *items;
	struct aupd_error err;
	enum body_format fmt;
	struct ingest *in;
	size_t n, len, n_ok = 0;
	bool too_many;
	const char *body = http_body(req, &len), *why;

	if (body_format(http_header(req, "Content-Type"), &fmt) < 0) {
		metrics_reject(&app->metrics, REJECT_MEDIA, 1);
		http_problem(req, 415, "unsupported-media-type", NULL,
			     "send events as application/json (one event or an array) or "
			     "application/x-ndjson");
		return;
	}
	if (len == 0) {
		metrics_reject(&app->metrics, REJECT_PARSE, 1);
		http_problem(req, 400, "bad-request", NULL, "the body is empty");
		return;
	}
	in = xcalloc(1, sizeof(*in));
	http_set_data(req, in, ingest_free);
	if (body_split(body, len, fmt, app->cfg->max_batch, &items, &n, &in->single, &too_many,
		       &err) < 0) {
		if (!too_many) /* 413s are counted when the request ends, wherever they came from */
			metrics_reject(&app->metrics, REJECT_PARSE, 1);
		if (too_many)
			http_problem(req, 413, "batch-too-large", NULL, "%s", err.msg);
		else
			http_problem(req, 400, "bad-request", NULL, "%s", err.msg);
		return;
	}
	in->n_items = n;
	in->probs = xcalloc(n, sizeof(*in->probs));
	in->slot = xcalloc(n, sizeof(*in->slot));
	in->job = xcalloc(1, sizeof(*in->job));
	in->job->kind = JOB_EVENTS;
	in->job->items = xcalloc(n, sizeof(*in->job->items));
	for (size_t i = 0; i < n; i++) {
		struct ingest_item *it = &in->job->items[n_ok];

		if (body_item_event(&items[i], &it->ev, &in->probs[i]) < 0)
			continue;
		it->raw = items[i].raw; /* points into the request body, which outlives the job */
		it->raw_len = items[i].raw_len;
		it->key = store_event_key(it->ev.tenant, it->ev.id);
		if (who->tenant_bound && strcmp(it->ev.tenant, who->tenant) != 0) {
			in->probs[i].status = 403;
			snprintf(in->probs[i].pointer, sizeof(in->probs[i].pointer), "/tenant");
			snprintf(in->probs[i].detail, sizeof(in->probs[i].detail),
				 "token '%s' may only send events for tenant '%s'", who->name,
				 who->tenant);
			event_clear(&it->ev);
			continue;
		}
		in->slot[i] = n_ok++;
	}
	body_items_free(items, n);
	in->job->n_items = n_ok;
	if (n_ok == 0) {
		respond_results(req, in);
		return;
	}
	in->job->done = ingest_committed;
	in->job->arg = req;
	http_suspend(req, ingest_resumed);
	if (writer_submit(app->writer, in->job, &why) < 0) {
		/* not queued: answer at once instead of sleeping */
		if (strstr(why, "queue is full")) {
			metrics_reject(&app->metrics, REJECT_BUSY, (long long)n_ok);
			in->busy = true;
		}
		http_resume(req);
		in->job->status = -1;
		snprintf(in->job->error, sizeof(in->job->error), "%s", why);
	}
}

void
api_get_event(struct http_req *req)
{
	struct app *app = app_of(req);
	const char *tenant = http_param(req, 0), *id = http_param(req, 1);
	const struct principal *who = http_principal(req);
	struct aupd_error err;
	struct dbconn *c;
	sqlite3_stmt *st;
	int64_t seq = 0;
	json_t *body = NULL;

	if (!api_tenant_allowed(req, tenant))
		return;
	c = store_pool_get(app->pool);
	seq = eventkeys_find(writer_event_keys(app->writer), c, store_event_key(tenant, id), tenant,
			     id, &err);
	if (seq < 0)
		goto err_db;
	if (seq) {
		if (!(st = store_stmt(c, ST_LEDGER_GET, NULL)))
			goto err_db;
		sqlite3_bind_int64(st, 1, seq);
		if (sqlite3_step(st) == SQLITE_ROW)
			body = json_loadb(sqlite3_column_blob(st, 4),
					  (size_t)sqlite3_column_bytes(st, 4), 0, NULL);
		sqlite3_reset(st);
	}
	store_pool_put(app->pool, c);
	if (!seq) {
		http_problem(req, 404, "not-found", NULL, "no event '%s' of tenant '%s' is stored", id,
			     tenant);
		return;
	}
	if (!body) {
		http_problem(req, 500, "internal", NULL, "ledger record %lld is unreadable",
			     (long long)seq);
		return;
	}
	(void)who;
	http_respond_json(req, 200,
			  json_pack("{s:I, s:O, s:O}", "seq", (json_int_t)seq, "event",
				    json_object_get(body, "event"), "verdict",
				    json_object_get(body, "verdict")));
	json_decref(body);
	return;

err_db:
	log_err("event lookup: %s", sqlite3_errmsg(c->db));
	store_pool_put(app->pool, c);
	http_problem(req, 503, "storage-unavailable", NULL, "cannot read the event store");
}
