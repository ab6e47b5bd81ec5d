/* app.h - the running daemon: everything `aupd serve` owns, and its life cycle */
#ifndef AUPD_APP_H
#define AUPD_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "aupd/config.h"
#include "aupd/http.h"
#include "aupd/ledger.h"
#include "aupd/metrics.h"
#include "aupd/notify.h"
#include "aupd/store.h"
#include "aupd/tls.h"
#include "aupd/tokens.h"
#include "aupd/writer.h"

struct app {
	struct config *cfg;
	char *db_path;
	struct tls_material tls;
	struct ledger_key key;
	struct writer *writer;
	struct notifier *notifier;
	struct store_pool *pool;
	struct token_cache *tokens;
	struct ratelimit *ratelimit;
	struct http_server *http;
	pthread_mutex_t reload_mu; /* one reload at a time */
	atomic_bool draining;
	struct metrics metrics;
};

/* Exit status of a start that failed for a reason that may pass (EX_TEMPFAIL). */
#define APP_EXIT_TEMPFAIL 75

/*
 * Starts every part of the daemon per `cfg` (taking ownership of it) and
 * starts listening.  NULL after logging the reason when any part fails;
 * *exit_status is then 1 for a lasting cause (bad configuration, rules or
 * database: systemd does not restart) or APP_EXIT_TEMPFAIL for one that may
 * pass (the database locked by another process, the port in use).
 */
struct app *app_start(struct config *cfg, int *exit_status);

/*
 * Loads the rules from the configured paths.  On success returns a new
 * ruleset reference; on failure logs every error, adds them to `dl`, and
 * returns NULL (the rules in force stay).
 */
struct ruleset *app_load_rules(struct app *app, struct diag_list *dl);
/*
 * Reloads the rules and waits until the switch is recorded (SIGHUP path).
 * 0, or -1 with the errors logged.
 */
int app_reload(struct app *app, const char *why);
/* Periodic work from the main loop (about once a second). */
void app_tick(struct app *app);
/* Stops accepting, finishes requests in flight, closes everything; returns the exit status. */
int app_shutdown(struct app *app);
/* True when rules are loaded, storage takes writes, and the daemon is not draining. */
bool app_ready(struct app *app, const char **why);

/* Sends one message over the systemd notify protocol (no-op without $NOTIFY_SOCKET). */
void sd_notify_msg(const char *msg);

/* The route table (api.c). */
extern const struct route app_routes[];
extern const size_t app_n_routes;
/* The app a request belongs to. */
struct app *app_of(struct http_req *req);

#endif
