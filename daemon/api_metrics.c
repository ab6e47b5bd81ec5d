/* api_metrics.c - GET /metrics in the Prometheus text format */
#include "aupd/api.h"

#include <stdlib.h>

static void
counter(struct strbuf *sb, const char *name, const char *help, long long v)
{
	sb_addf(sb, "# HELP %s %s\n# TYPE %s counter\n%s %lld\n", name, help, name, name, v);
}

static void
gauge(struct strbuf *sb, const char *name, const char *help, long long v)
{
	sb_addf(sb, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

static void
route_histograms(struct strbuf *sb, struct app *app)
{
	sb_adds(sb, "# HELP aupd_http_request_duration_seconds Time from the request's first byte "
		    "to its response, by route.\n"
		    "# TYPE aupd_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r < app_n_routes && r < METRICS_MAX_ROUTES; r++) {
		struct route_metrics *m = &app->metrics.routes[r];
		const char *name = app_routes[r].name;
		long long cum = 0;

		for (size_t b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
			cum += atomic_load(&m->buckets[b]);
			sb_addf(sb,
				"aupd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
				"%lld\n",
				name, (double)metrics_latency_bounds[b] / 1e6, cum);
		}
		cum += atomic_load(&m->buckets[METRICS_LATENCY_BUCKETS]);
		sb_addf(sb, "aupd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lld\n",
			name, cum);
		sb_addf(sb, "aupd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
			(double)atomic_load(&m->sum_us) / 1e6);
		sb_addf(sb, "aupd_http_request_duration_seconds_count{route=\"%s\"} %lld\n", name,
			atomic_load(&m->count));
	}
	sb_adds(sb, "# HELP aupd_http_responses_total Responses by route and status class.\n"
		    "# TYPE aupd_http_responses_total counter\n");
	for (size_t r = 0; r < app_n_routes && r < METRICS_MAX_ROUTES; r++)
		for (int c = 1; c <= 5; c++)
			sb_addf(sb, "aupd_http_responses_total{route=\"%s\",code=\"%dxx\"} %lld\n",
				app_routes[r].name, c, atomic_load(&app->metrics.routes[r].status[c]));
}

void
api_get_metrics(struct http_req *req)
{
	struct app *app = app_of(req);
	struct writer_stats *ws = writer_stats(app->writer);
	struct ruleset *rs = writer_rules(app->writer);
	static const char *const bucket_le[] = {"1", "10", "100", "1000", "10000", "100000",
						"1000000", "+Inf"};
	struct strbuf sb;
	long long cum = 0;
	char *body;
	size_t len;

	sb_init(&sb);
	counter(&sb, "aupd_events_accepted_total", "Events judged and stored.",
		atomic_load(&ws->events_accepted));
	counter(&sb, "aupd_events_duplicate_total",
		"Events resent with a (tenant, id) already stored, answered with the original verdict.",
		atomic_load(&ws->events_duplicate));
	sb_adds(&sb, "# HELP aupd_events_rejected_total Events or requests refused, by reason.\n"
		     "# TYPE aupd_events_rejected_total counter\n");
	for (int i = 0; i < REJECT_COUNT_; i++)
		sb_addf(&sb, "aupd_events_rejected_total{reason=\"%s\"} %lld\n",
			metrics_reject_name((enum reject_reason)i),
			atomic_load(&app->metrics.rejected[i]));
	sb_adds(&sb, "# HELP aupd_verdicts_total Verdicts recorded, by effect.\n"
		     "# TYPE aupd_verdicts_total counter\n");
	for (int e = EFFECT_ALLOW; e <= EFFECT_DENY; e++)
		sb_addf(&sb, "aupd_verdicts_total{verdict=\"%s\"} %lld\n", effect_name((enum effect)e),
			atomic_load(&ws->verdicts[e]));
	route_histograms(&sb, app);
	sb_adds(&sb, "# HELP aupd_commit_batch_events Events per group commit.\n"
		     "# TYPE aupd_commit_batch_events histogram\n");
	for (int b = 0; b < 8; b++) {
		cum += atomic_load(&ws->batch_buckets[b]);
		sb_addf(&sb, "aupd_commit_batch_events_bucket{le=\"%s\"} %lld\n", bucket_le[b], cum);
	}
	sb_addf(&sb, "aupd_commit_batch_events_sum %lld\naupd_commit_batch_events_count %lld\n",
		atomic_load(&ws->batch_events_sum), cum);
	counter(&sb, "aupd_commits_total", "Group commits.", atomic_load(&ws->commits));
	counter(&sb, "aupd_commit_failures_total", "Group commits that failed (nothing stored).",
		atomic_load(&ws->commit_failures));
	counter(&sb, "aupd_queue_full_total", "Ingest requests refused with 503 (queue full).",
		atomic_load(&ws->queue_full));
	gauge(&sb, "aupd_queue_events", "Events waiting for the writer.", writer_queued(app->writer));
	gauge(&sb, "aupd_ledger_seq", "The last ledger record's seq.", atomic_load(&ws->head_seq));
	counter(&sb, "aupd_ledger_records_total", "Ledger records appended by this process.",
		atomic_load(&ws->records));
	counter(&sb, "aupd_access_records_total", "Auditor and operator requests recorded.",
		atomic_load(&app->metrics.access_records));
	counter(&sb, "aupd_retention_overdue_total", "Retention-overdue records written.",
		atomic_load(&ws->overdue_recorded));
	gauge(&sb, "aupd_window_entries", "Events held in the rules' and escalations' sliding windows.",
	      atomic_load(&ws->window_entries));
	gauge(&sb, "aupd_window_bytes", "Memory those windows use, estimated.",
	      atomic_load(&ws->window_bytes));
	gauge(&sb, "aupd_obligations_open", "Open deletion obligations (retention track).",
	      atomic_load(&ws->obligations));
	gauge(&sb, "aupd_storage_healthy", "1 while storage takes writes.",
	      writer_healthy(app->writer));
	api_metrics_alerts(&sb, app);
	sb_addf(&sb, "# HELP aupd_rules_info The ruleset in force.\n# TYPE aupd_rules_info gauge\n"
		     "aupd_rules_info{version=\"%s\",rules=\"%zu\"} 1\n",
		ruleset_version(rs), ruleset_n_rules(rs));
	ruleset_unref(rs);
	body = sb_detach(&sb, &len);
	http_respond_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
