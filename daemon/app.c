/* app.c - the running daemon: start every part in order, reload, tick, shut down */
#include "aupd/api.h"
#include "aupd/app.h"
#include "aupd/log.h"
#include "aupd/privs.h"
#include "aupd/ratelimit.h"
#include "aupd/tokens.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct app *the_app;

struct app *
app_of(struct http_req *req)
{
	return the_app;
}

bool
app_ready(struct app *app, const char **why)
{
	if (atomic_load(&app->draining)) {
		*why = "shutting down";
		return false;
	}
	if (!writer_healthy(app->writer)) {
		*why = "storage is not taking writes (disk full or I/O errors)";
		return false;
	}
	*why = NULL;
	return true;
}

static int
authenticate(void *ctx, const char *token, size_t len, struct principal *who)
{
	struct app *app = ctx;

	return token_authenticate_cached(app->tokens, app->pool, token, len, who);
}

/* audit.require_justification: auditors and operators say why they ask. */
static void
authorized(void *ctx, struct http_req *req)
{
	struct app *app = ctx;
	const struct principal *who = http_principal(req);
	const char *j = http_header(req, "X-Justification");
	int retry;

	if (!ratelimit_take(app->ratelimit, who->token_id, &retry)) {
		char s[16];

		snprintf(s, sizeof(s), "%d", retry);
		http_add_header(req, "Retry-After", s);
		http_problem(req, 429, "rate-limited", NULL,
			     "token '%s' sent more than %u requests per second "
			     "(limits.rate_per_token); retry after %d s",
			     who->name, app->cfg->rate_per_token, retry);
		return;
	}
	if (!app->cfg->require_justification || who->role == ROLE_INGEST)
		return;
	if (!j || !*j)
		http_problem(req, 428, "justification-required", NULL,
			     "this daemon requires an X-Justification header on auditor and "
			     "operator requests (audit.require_justification)");
}

static void
access_recorded(struct writer_job *job)
{
	struct http_req *req = job->arg;

	if (job->status < 0)
		log_err("cannot record an access in the ledger: %s", job->error);
	http_gate_result(req, job->status);
	writer_job_free(job);
	http_resume(req);
}

/*
 * Every request made with an auditor or operator token becomes an "access"
 * ledger record; when possible the answer waits until the record is stored.
 */
static bool
record_access(void *ctx, struct http_req *req, bool can_wait)
{
	struct app *app = ctx;
	const struct principal *who = http_principal(req);
	const char *just = http_header(req, "X-Justification"), *why;
	struct writer_job *job;
	struct strbuf m;

	if (!who->name[0] || who->role == ROLE_INGEST)
		return false;
	sb_init(&m);
	sb_adds(&m, ",\"token\":");
	json_quote(&m, who->name);
	sb_addf(&m, ",\"role\":\"%s\",\"method\":", role_name(who->role));
	json_quote(&m, http_method(req));
	sb_adds(&m, ",\"target\":");
	json_quote(&m, http_target(req));
	sb_addf(&m, ",\"status\":%d", http_status(req));
	if (just) {
		char *cut = xstrndup(just, strnlen(just, 1024));

		sb_adds(&m, ",\"justification\":");
		json_quote(&m, cut);
		free(cut);
	}
	sb_addc(&m, '}');
	job = xcalloc(1, sizeof(*job));
	job->kind = JOB_RECORD;
	job->rec_kind = xstrdup("access");
	job->rec_tenant = who->tenant_bound ? xstrdup(who->tenant) : NULL;
	job->rec_members = sb_detach(&m, NULL);
	atomic_fetch_add(&app->metrics.access_records, 1);
	if (!can_wait) {
		if (writer_submit(app->writer, job, &why) < 0) {
			log_err("cannot record an access in the ledger: %s", why);
			writer_job_free(job);
		}
		return false;
	}
	job->done = access_recorded;
	job->arg = req;
	http_gate_wait(req);
	if (writer_submit(app->writer, job, &why) < 0) {
		log_err("cannot record an access in the ledger: %s", why);
		writer_job_free(job);
		http_gate_result(req, -1);
		http_resume(req);
	}
	return true;
}

static void
request_done(void *ctx, struct http_req *req)
{
	struct app *app = ctx;
	const struct route *r = http_route(req);

	metrics_observe(&app->metrics, (size_t)(r - app_routes), http_status(req),
			time_mono_us() - http_started_us(req));
	if (r->handler == api_post_events && http_status(req) == 413)
		metrics_reject(&app->metrics, REJECT_TOO_LARGE, 1);
	else if (r->handler == api_post_events && http_status(req) == 401)
		metrics_reject(&app->metrics, REJECT_AUTH, 1);
}

static void
log_diags(const struct diag_list *dl, size_t from)
{
	for (size_t i = from; i < dl->n; i++) {
		char line[1024];

		aupd_error_format(&dl->v[i], line, sizeof(line));
		log_err("%s", line);
	}
}

struct ruleset *
app_load_rules(struct app *app, struct diag_list *dl)
{
	const struct config *cfg = app->cfg;
	const char **names = xcalloc(cfg->n_notifiers + 1, sizeof(char *));
	struct ruleset_opts opts = {.notifiers = names, .n_notifiers = cfg->n_notifiers};
	size_t before = dl->n, n_paths;
	struct ruleset *rs;
	const char *note;

	for (size_t i = 0; i < cfg->n_notifiers; i++)
		names[i] = cfg->notifiers[i].name;
	n_paths = config_rules_to_load(cfg, &note);
	if (note) {
		/*
		 * Starting (or running) without rules is allowed; a reload must
		 * not drop the rules in force because the directory went away.
		 */
		struct ruleset *cur = app->writer ? writer_rules(app->writer) : NULL;
		bool had_files = cur && ruleset_n_files(cur) > 0;

		ruleset_unref(cur);
		if (had_files) {
			diag_add(dl, cfg->rules[0], 0, 0,
				 "cannot open: %s (the default rules directory; the configuration "
				 "names no rules)",
				 strerror(ENOENT));
			free(names);
			log_diags(dl, before);
			return NULL;
		}
		log_warn("rules: %s: %s", cfg->rules[0], note);
	}
	rs = ruleset_load((const char *const *)cfg->rules, n_paths, &opts, dl);
	free(names);
	if (!rs)
		log_diags(dl, before);
	return rs;
}

static void
log_listening(struct app *app)
{
	const struct config *cfg = app->cfg;
	const char *br = cfg->listen_ipv6 ? "[" : "", *ket = cfg->listen_ipv6 ? "]" : "";

	if (cfg->tls_enabled)
		log_notice("listening on https://%s%s%s:%u (TLS certificate %s, SHA-256 "
			   "fingerprint %s)",
			   br, cfg->listen_host, ket, http_port(app->http), app->tls.cert_path,
			   app->tls.fingerprint);
	else
		log_warn("listening on http://%s%s%s:%u without TLS (tls.enabled: false)", br,
			 cfg->listen_host, ket, http_port(app->http));
}

struct app *
app_start(struct config *cfg, int *exit_status)
{
	struct app *app = xcalloc(1, sizeof(*app));
	struct diag_list dl = {0};
	struct ruleset *rules;
	struct aupd_error err = {0};
	int listen_fd = -1;

	app->cfg = cfg;
	pthread_mutex_init(&app->reload_mu, NULL);
	the_app = app;
	curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread starts */

	/* what may need root: configured TLS key, webhook secrets, the port */
	if (cfg->tls_enabled && cfg->tls_cert &&
	    tls_load_or_generate(cfg, &app->tls, &err) < 0) {
		log_err("TLS: %s", err.msg);
		goto err_free;
	}
	app->notifier = notifier_new(cfg, &err);
	if (!app->notifier) {
		log_err("cannot start: %s", err.msg);
		goto err_tls;
	}
	if (privs_root() && cfg->user) {
		if ((listen_fd = http_listen_socket(cfg, &err)) < 0 || privs_drop(cfg, &err) < 0) {
			log_err("cannot start: %s", err.msg);
			goto err_notifier;
		}
	} else if (privs_root() && !cfg->listen_loopback) {
		/* a root process reachable from the network: refuse */
		log_err("cannot start: refusing to run as root while listening on %s%s%s:%u, "
			"which is not a loopback address: set `user:` in the configuration to the "
			"account to switch to after binding (the systemd unit runs as user aupd)",
			cfg->listen_ipv6 ? "[" : "", cfg->listen_host, cfg->listen_ipv6 ? "]" : "",
			(unsigned)cfg->listen_port);
		goto err_notifier;
	} else if (privs_root()) {
		log_warn("running as root: set `user:` in the configuration to drop to an "
			 "unprivileged account after binding (the systemd unit runs as user aupd); "
			 "as root without it aupd only listens on loopback addresses");
	}

	if (mkdir_p(cfg->state_dir, 0700, &err) < 0) {
		log_err("state_dir: %s", err.msg);
		goto err_notifier;
	}
	app->db_path = config_db_path(cfg);
	if (ledger_key_load_or_create(cfg->state_dir, &app->key, &err) < 0) {
		log_err("ledger key: %s", err.msg);
		goto err_notifier;
	}
	rules = app_load_rules(app, &dl);
	diag_list_free(&dl);
	if (!rules) {
		log_err("cannot start: the rules do not load (see the errors above)");
		goto err_key;
	}
	log_info("loaded %zu rules from %zu files (%s)", ruleset_n_rules(rules),
		 ruleset_n_files(rules), ruleset_version(rules));
	app->writer = writer_start(cfg, app->db_path, &app->key, rules, &err);
	if (!app->writer) {
		log_err("cannot start: %s", err.msg);
		goto err_key;
	}
	if (notifier_run(app->notifier, app->db_path, app->writer, &err) < 0) {
		log_err("cannot start: %s", err.msg);
		goto err_writer;
	}
	app->pool = store_pool_new(app->db_path, cfg->http_threads + 2, &err);
	if (!app->pool) {
		log_err("cannot start: %s", err.msg);
		goto err_writer;
	}
	{
		/* the path as SQLite resolved it, as `aupd token` finds it */
		struct dbconn *c = store_pool_get(app->pool);

		app->tokens = token_cache_new(store_path(c), TOKEN_CACHE_TTL_US);
		store_pool_put(app->pool, c);
	}
	app->ratelimit = ratelimit_new(cfg->rate_per_token, cfg->rate_burst);
	if (cfg->tls_enabled && !app->tls.cert_pem) {
		if (tls_load_or_generate(cfg, &app->tls, &err) < 0) {
			log_err("TLS: %s", err.msg);
			goto err_pool;
		}
		if (app->tls.generated)
			log_notice("generated a self-signed TLS certificate in %s",
				   app->tls.cert_path);
	}
	app->http = http_start(cfg, listen_fd, app->tls.cert_pem, app->tls.key_pem, app_routes,
			       app_n_routes,
			       &(struct http_hooks){.ctx = app,
						    .authenticate = authenticate,
						    .authorized = authorized,
						    .before_send = record_access,
						    .request_done = request_done},
			       &err);
	listen_fd = -1; /* http_start owns it now, even when it failed */
	if (!app->http) {
		log_err("%s", err.msg);
		goto err_pool;
	}
	log_listening(app);
	return app;

err_pool:
	ratelimit_free(app->ratelimit);
	token_cache_free(app->tokens);
	store_pool_free(app->pool);
err_writer:
	notifier_stop(app->notifier);
	app->notifier = NULL;
	writer_free(app->writer);
err_key:
	ledger_key_free(&app->key);
err_notifier:
	notifier_stop(app->notifier);
err_tls:
	tls_material_free(&app->tls);
err_free:
	/* a lock or a busy port may pass; a bad file or setting will not */
	*exit_status = err.temporary ? APP_EXIT_TEMPFAIL : 1;
	if (listen_fd >= 0)
		close(listen_fd);
	free(app->db_path);
	pthread_mutex_destroy(&app->reload_mu);
	the_app = NULL;
	free(app);
	curl_global_cleanup();
	return NULL;
}

struct reload_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void
reload_done(struct writer_job *job)
{
	struct reload_wait *rw = job->arg;

	pthread_mutex_lock(&rw->mu);
	rw->done = true;
	pthread_cond_signal(&rw->cv);
	pthread_mutex_unlock(&rw->mu);
}

int
app_reload(struct app *app, const char *why)
{
	struct reload_wait rw = {.done = false};
	struct diag_list dl = {0};
	struct writer_job *job;
	struct ruleset *rs;
	const char *qwhy;
	int rc = -1;

	pthread_mutex_lock(&app->reload_mu);
	rs = app_load_rules(app, &dl);
	diag_list_free(&dl);
	if (!rs) {
		log_err("reload (%s) failed: the rules in force stay", why);
		goto out;
	}
	job = xcalloc(1, sizeof(*job));
	job->kind = JOB_RELOAD;
	job->rules = rs;
	job->reason = xstrdup(why);
	job->done = reload_done;
	job->arg = &rw;
	pthread_mutex_init(&rw.mu, NULL);
	pthread_cond_init(&rw.cv, NULL);
	if (writer_submit(app->writer, job, &qwhy) < 0) {
		log_err("reload (%s) failed: %s", why, qwhy);
		writer_job_free(job);
	} else {
		pthread_mutex_lock(&rw.mu);
		while (!rw.done)
			pthread_cond_wait(&rw.cv, &rw.mu);
		pthread_mutex_unlock(&rw.mu);
		if (job->status == 0) {
			struct ruleset *now = writer_rules(app->writer);

			log_notice("reloaded rules (%s): %zu rules, %s, ledger seq %lld", why,
				   ruleset_n_rules(now), ruleset_version(now), (long long)job->seq);
			ruleset_unref(now);
			rc = 0;
		} else {
			log_err("reload (%s) failed: %s", why, job->error);
		}
		writer_job_free(job);
	}
	pthread_cond_destroy(&rw.cv);
	pthread_mutex_destroy(&rw.mu);
out:
	pthread_mutex_unlock(&app->reload_mu);
	return rc;
}

void
app_tick(struct app *app)
{
}

int
app_shutdown(struct app *app)
{
	int64_t deadline;

	log_notice("shutting down: finishing requests in flight");
	atomic_store(&app->draining, true);
	http_quiesce(app->http);
	deadline = time_mono_us() + app->cfg->connection_timeout_us + 5 * AUPD_USEC;
	while (http_active(app->http) > 0 && time_mono_us() < deadline)
		usleep(10000);
	if (http_active(app->http) > 0)
		log_warn("%u requests still open at shutdown; closing them",
			 http_active(app->http));
	/* the writer answers what is queued before it stops; then connections close */
	notifier_stop(app->notifier);
	writer_stop(app->writer);
	http_stop(app->http);
	token_cache_free(app->tokens);
	store_pool_free(app->pool);
	writer_free(app->writer);
	ratelimit_free(app->ratelimit);
	tls_material_free(&app->tls);
	ledger_key_free(&app->key);
	free(app->db_path);
	pthread_mutex_destroy(&app->reload_mu);
	config_free(app->cfg);
	the_app = NULL;
	free(app);
	curl_global_cleanup();
	log_notice("stopped");
	return 0;
}
