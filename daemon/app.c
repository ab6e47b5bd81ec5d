/* app.c - the running daemon: start every part, tick, shut down in order */
#include "aupd/app.h"
#include "aupd/log.h"

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
app_ready(struct app *app)
{
	return !atomic_load(&app->draining);
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
app_start(struct config *cfg)
{
	struct app *app = xcalloc(1, sizeof(*app));
	struct aupd_error err;

	app->cfg = cfg;
	the_app = app;
	if (mkdir_p(cfg->state_dir, 0700, &err) < 0) {
		log_err("state_dir: %s", err.msg);
		goto err_free;
	}
	if (cfg->tls_enabled) {
		if (tls_load_or_generate(cfg, &app->tls, &err) < 0) {
			log_err("TLS: %s", err.msg);
			goto err_free;
		}
		if (app->tls.generated)
			log_notice("generated a self-signed TLS certificate in %s",
				   app->tls.cert_path);
	}
	app->http = http_start(cfg, app->tls.cert_pem, app->tls.key_pem, app_routes, app_n_routes,
			       &(struct http_hooks){.ctx = app}, &err);
	if (!app->http) {
		log_err("%s", err.msg);
		goto err_tls;
	}
	log_listening(app);
	return app;

err_tls:
	tls_material_free(&app->tls);
err_free:
	the_app = NULL;
	free(app);
	return NULL;
}

int
app_reload(struct app *app, const char *why, void *result)
{
	log_info("reload requested (%s): no rules engine in this build", why);
	return 0;
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
	http_stop(app->http);
	tls_material_free(&app->tls);
	config_free(app->cfg);
	the_app = NULL;
	free(app);
	log_notice("stopped");
	return 0;
}
