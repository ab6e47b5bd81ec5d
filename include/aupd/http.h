/* http.h - the HTTPS server: libmicrohttpd glue, routing, authentication, problem+json */
#ifndef AUPD_HTTP_H
#define AUPD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/config.h"
#include "aupd/types.h"
#include "aupd/util.h"

struct http_server;
struct http_req;
struct MHD_Response;

/* Who made a request: filled by the server's authenticator. */
struct principal {
	int64_t token_id;
	char name[72];
	enum role role;
	bool tenant_bound;
	char tenant[132];
};

typedef void (*http_handler)(struct http_req *req);

enum route_flags {
	ROUTE_PUBLIC = 1 << 0,     /* no Authorization needed */
	ROUTE_BODY = 1 << 1,       /* reads a request body */
	ROUTE_ROLE_INGEST = 1 << 2, /* roles allowed to call it */
	ROUTE_ROLE_AUDITOR = 1 << 3,
	ROUTE_ROLE_OPERATOR = 1 << 4,
};

/* Patterns match path segments exactly; "{}" matches one non-empty segment. */
struct route {
	const char *method;
	const char *pattern;
	unsigned flags;
	http_handler handler;
	const char *name; /* label for metrics and logs, e.g. "events_post" */
};

/* What the server asks of the rest of the daemon.  Every callback is thread-safe. */
struct http_hooks {
	void *ctx;
	/*
	 * Resolves a bearer token: 0 with `who` filled, 1 for an unknown or
	 * revoked token, -1 when the lookup itself failed (answered 503).
	 */
	int (*authenticate)(void *ctx, const char *token, size_t len, struct principal *who);
	/* Called after the token and role were accepted; may answer the request itself. */
	void (*authorized)(void *ctx, struct http_req *req);
	/* Called once per finished request, after its response left. */
	void (*request_done)(void *ctx, struct http_req *req);
	/*
	 * Called once a response is ready and before it is sent.  When
	 * `can_wait` and the hook must finish something first (recording the
	 * access), it calls http_gate_wait(), later http_gate_result() and
	 * http_resume(), and returns true; otherwise it returns false.
	 */
	bool (*before_send)(void *ctx, struct http_req *req, bool can_wait);
};

/* For before_send hooks: hold the response until http_resume(). */
void http_gate_wait(struct http_req *req);
/* For before_send hooks: a negative status replaces the response with a 503. */
void http_gate_result(struct http_req *req, int status);

/*
 * Starts serving on `listen_fd` (from http_listen_socket(); -1 to bind here)
 * per `cfg` (TLS with the given PEM pair unless
 * tls.enabled is false).  `routes` must outlive the server.  NULL with
 * `err` set when the address cannot be bound or TLS cannot start.
 */
struct http_server *http_start(const struct config *cfg, int listen_fd, const char *cert_pem,
			       const char *key_pem, const struct route *routes, size_t n_routes,
			       const struct http_hooks *hooks, struct aupd_error *err);
/*
 * Binds and listens on cfg->listen (before privileges are dropped); the
 * descriptor goes to http_start().  -1 with `err` on failure.
 */
int http_listen_socket(const struct config *cfg, struct aupd_error *err);
/* The port actually bound (useful with port 0 in tests). */
uint16_t http_port(const struct http_server *srv);
/* Stops accepting new connections; requests in progress continue. */
void http_quiesce(struct http_server *srv);
/* Requests begun and not yet finished. */
unsigned http_active(const struct http_server *srv);
/* Closes every connection and frees the server; NULL is a no-op. */
void http_stop(struct http_server *srv);

/* ---- request accessors, for handlers ---- */

const char *http_method(const struct http_req *req);
const char *http_path(const struct http_req *req);
/* The path and query as received (for access records). */
const char *http_target(const struct http_req *req);
const struct route *http_route(const struct http_req *req);
/* The i-th "{}" segment of the route pattern, percent-decoded. */
const char *http_param(const struct http_req *req, size_t i);
/* A query argument (percent-decoded), or NULL; `present` tells "?a" from absent. */
const char *http_query(const struct http_req *req, const char *name);
/* Every query argument name, for rejecting unknown ones; NULL-terminated, owned by req. */
const char *const *http_query_names(const struct http_req *req);
const char *http_header(const struct http_req *req, const char *name);
const struct principal *http_principal(const struct http_req *req);
const char *http_body(const struct http_req *req, size_t *len);
int http_status(const struct http_req *req);
int64_t http_started_us(const struct http_req *req);

/* Per-request state owned by the handler, freed with `free_fn` when the request ends. */
void http_set_data(struct http_req *req, void *data, void (*free_fn)(void *));
void *http_data(const struct http_req *req);

/* ---- responses: each request gets exactly one ---- */

void http_respond(struct http_req *req, int status, const char *content_type, const void *body,
		  size_t len);
/* Takes ownership of `body` (a malloc'd buffer). */
void http_respond_take(struct http_req *req, int status, const char *content_type, char *body,
		       size_t len);
/* Encodes and steals the reference to `doc`. */
void http_respond_json(struct http_req *req, int status, json_t *doc);
/*
 * An RFC 9457 problem: type "urn:aupd:problem:SLUG", the status's title,
 * `detail` from the format, and extra members from `extra` (stolen, may be NULL).
 */
void http_problem(struct http_req *req, int status, const char *slug, json_t *extra,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A problem document (new reference), for embedding per item. */
json_t *http_problem_doc(int status, const char *slug, const char *detail);
/* Adds a header to the response about to be sent (before http_respond*). */
void http_add_header(struct http_req *req, const char *name, const char *value);
/*
 * A streamed response: `fill` is called with a buffer to fill and returns
 * bytes written, 0 at the end, or -1 on error (the connection is closed).
 */
typedef long (*http_fill_fn)(void *state, char *buf, size_t max);
void http_respond_stream(struct http_req *req, int status, const char *content_type,
			 http_fill_fn fill, void *state, void (*free_state)(void *));

/*
 * Suspends the request until http_resume(): the handler returns at once,
 * and `on_resume` runs in an HTTP thread and must respond.
 */
void http_suspend(struct http_req *req, http_handler on_resume);
/* Thread-safe: wakes a suspended request. */
void http_resume(struct http_req *req);

const char *http_status_title(int status);

#endif
