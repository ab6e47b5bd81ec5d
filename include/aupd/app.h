/* app.h - the running daemon: everything `aupd serve` owns, and its life cycle */
#ifndef AUPD_APP_H
#define AUPD_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "aupd/config.h"
#include "aupd/http.h"
#include "aupd/tls.h"

struct app {
	struct config *cfg;
	struct tls_material tls;
	struct http_server *http;
	atomic_bool draining;
};

/*
 * Starts every part of the daemon per `cfg` (taking ownership of it) and
 * starts listening.  NULL after logging the reason when any part fails.
 */
struct app *app_start(struct config *cfg);
/* Reloads the rules; `why` labels the log line.  0, or -1 with the errors logged. */
int app_reload(struct app *app, const char *why, void *result);
/* Periodic work from the main loop (about once a second). */
void app_tick(struct app *app);
/* Stops accepting, finishes requests in flight, closes everything; returns the exit status. */
int app_shutdown(struct app *app);
/* True when rules are loaded and the database takes writes. */
bool app_ready(struct app *app);

/* Sends one message over the systemd notify protocol (no-op without $NOTIFY_SOCKET). */
void sd_notify_msg(const char *msg);

/* The route table (api.c). */
extern const struct route app_routes[];
extern const size_t app_n_routes;
/* The app a request belongs to. */
struct app *app_of(struct http_req *req);

#endif
