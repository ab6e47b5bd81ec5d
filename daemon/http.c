/* http.c - the HTTPS server: libmicrohttpd glue, routing, authentication, problem+json */
#include "aupd/http.h"
#include "aupd/log.h"
#include "aupd/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PARAMS 4
#define MAX_QUERY_ARGS 32

struct http_server {
	struct MHD_Daemon *mhd;
	const struct config *cfg;
	const struct route *routes;
	size_t n_routes;
	struct http_hooks hooks;
	atomic_uint active;
	pthread_mutex_t suspend_mu;
	uint16_t port;
	MHD_socket quiesced_fd; /* the listen socket after http_quiesce; closed by http_stop */
};

enum suspend_state {
	SUSP_NONE = 0,
	SUSP_REQUESTED, /* handler asked; MHD_suspend_connection not called yet */
	SUSP_SUSPENDED, /* the connection sleeps in MHD */
	SUSP_WOKEN,     /* http_resume() came; on_resume is due */
};

struct out_header {
	char *name;
	char *value;
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const struct route *route;
	const char *method;
	char *path;   /* percent-decoded */
	char *target; /* path?query as received */
	char *params[MAX_PARAMS];
	size_t n_params;
	char *qnames[MAX_QUERY_ARGS + 1];
	char *qvalues[MAX_QUERY_ARGS];
	size_t n_query;
	bool query_overflow;
	struct strbuf body;
	bool body_too_big;
	uint64_t discarded;
	bool expects_body;
	struct principal who;
	int status;
	struct MHD_Response *resp;
	struct out_header *hdrs;
	size_t n_hdrs;
	enum suspend_state susp;
	http_handler on_resume;
	bool gated;
	int gate_status;
	void *data;
	void (*data_free)(void *);
	int64_t started_us;
};

static const struct {
	int status;
	const char *title;
} titles[] = {
	{200, "OK"},
	{201, "Created"},
	{202, "Accepted"},
	{204, "No Content"},
	{207, "Multi-Status"},
	{400, "Bad Request"},
	{401, "Unauthorized"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{406, "Not Acceptable"},
	{409, "Conflict"},
	{411, "Length Required"},
	{413, "Content Too Large"},
	{414, "URI Too Long"},
	{415, "Unsupported Media Type"},
	{422, "Unprocessable Content"},
	{428, "Precondition Required"},
	{429, "Too Many Requests"},
	{431, "Request Header Fields Too Large"},
	{500, "Internal Server Error"},
	{503, "Service Unavailable"},
};

const char *
http_status_title(int status)
{
	for (size_t i = 0; i < AUPD_ARRAY_LEN(titles); i++)
		if (titles[i].status == status)
			return titles[i].title;
	return "Error";
}

/* ---- URL handling ---- */

static int
hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL for a bad escape or an encoded NUL. */
static char *
pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			hi = i + 1 < len ? hexdigit(s[i + 1]) : -1;
			lo = i + 2 < len ? hexdigit(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The unescape callback: leave MHD's strings as they arrived; we decode per segment. */
static size_t
unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/*
 * Matches a raw (still percent-encoded) path against a pattern; on success
 * the decoded "{}" segments are stored in req->params.
 */
static bool
route_match(struct http_req *req, const char *pattern, const char *raw, bool store)
{
	const char *p = pattern, *r = raw;
	size_t n = 0;

	while (*p && *r) {
		if (p[0] == '{' && p[1] == '}') {
			const char *end = strchr(r, '/');
			size_t len = end ? (size_t)(end - r) : strlen(r);

			if (len == 0 || n >= MAX_PARAMS)
				goto no;
			if (store) {
				req->params[n] = pct_decode(r, len);
				if (!req->params[n])
					goto no;
			}
			n++;
			p += 2;
			r += len;
			continue;
		}
		if (*p != *r)
			goto no;
		p++;
		r++;
	}
	if (*p || *r)
		goto no;
	if (store)
		req->n_params = n;
	return true;
no:
	if (store) {
		for (size_t i = 0; i < n && i < MAX_PARAMS; i++) {
			free(req->params[i]);
			req->params[i] = NULL;
		}
	}
	return false;
}

static enum MHD_Result
collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct http_req *req = cls;
	char *k, *v;

	if (!*key)
		return MHD_YES; /* "?&a=1": an empty part names nothing */
	if (req->n_query >= MAX_QUERY_ARGS) {
		req->query_overflow = true;
		return MHD_NO;
	}
	k = pct_decode(key, strlen(key));
	v = value ? pct_decode(value, strlen(value)) : xstrdup("");
	if (!k || !v) {
		free(k);
		free(v);
		req->query_overflow = true;
		return MHD_NO;
	}
	req->qnames[req->n_query] = k;
	req->qvalues[req->n_query] = v;
	req->n_query++;
	return MHD_YES;
}

static enum MHD_Result
rebuild_target(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct strbuf *sb = cls;

	sb_addc(sb, sb->len ? '&' : '?');
	sb_adds(sb, key);
	if (value) {
		sb_addc(sb, '=');
		sb_adds(sb, value);
	}
	return MHD_YES;
}

/* ---- responses ---- */

static void
set_response(struct http_req *req, int status, struct MHD_Response *resp)
{
	if (req->resp) {
		/* a second answer is a bug in a handler: keep the first */
		log_err("internal: second response (%d) for %s %s", status, req->method, req->path);
		MHD_destroy_response(resp);
		return;
	}
	for (size_t i = 0; i < req->n_hdrs; i++)
		MHD_add_response_header(resp, req->hdrs[i].name, req->hdrs[i].value);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	req->resp = resp;
	req->status = status;
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	req->hdrs = xrealloc(req->hdrs, (req->n_hdrs + 1) * sizeof(*req->hdrs));
	req->hdrs[req->n_hdrs].name = xstrdup(name);
	req->hdrs[req->n_hdrs].value = xstrdup(value);
	req->n_hdrs++;
}

void
http_respond(struct http_req *req, int status, const char *content_type, const void *body,
	     size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

	if (content_type)
		MHD_add_response_header(r, "Content-Type", content_type);
	set_response(req, status, r);
}

void
http_respond_take(struct http_req *req, int status, const char *content_type, char *body,
		  size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);

	if (content_type)
		MHD_add_response_header(r, "Content-Type", content_type);
	set_response(req, status, r);
}

void
http_respond_json(struct http_req *req, int status, json_t *doc)
{
	struct strbuf sb;
	char *s;
	size_t len;

	sb_init(&sb);
	s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII * 0);
	json_decref(doc);
	if (!s) {
		http_problem(req, 500, "internal", NULL, "cannot encode the response");
		return;
	}
	sb_adds(&sb, s);
	sb_addc(&sb, '\n');
	free(s);
	s = sb_detach(&sb, &len);
	http_respond_take(req, status, "application/json", s, len);
}

json_t *
http_problem_doc(int status, const char *slug, const char *detail)
{
	char type[96];

	snprintf(type, sizeof(type), "urn:aupd:problem:%s", slug);
	return json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", http_status_title(status),
			 "status", status, "detail", detail);
}

void
http_problem(struct http_req *req, int status, const char *slug, json_t *extra, const char *fmt,
	     ...)
{
	char detail[1024];
	va_list ap;
	json_t *doc;
	char *s;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	doc = http_problem_doc(status, slug, detail);
	if (extra) {
		json_object_update(doc, extra);
		json_decref(extra);
	}
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		s = xstrdup("{\"type\":\"urn:aupd:problem:internal\",\"status\":500}");
	http_respond_take(req, status, "application/problem+json", s, strlen(s));
}

struct stream {
	http_fill_fn fill;
	void *state;
	void (*free_state)(void *);
};

static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	long n = st->fill(st->state, buf, max);

	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n;
}

static void
stream_free(void *cls)
{
	struct stream *st = cls;

	if (st->free_state)
		st->free_state(st->state);
	free(st);
}

void
http_respond_stream(struct http_req *req, int status, const char *content_type, http_fill_fn fill,
		    void *state, void (*free_state)(void *))
{
	struct stream *st = xmalloc(sizeof(*st));
	struct MHD_Response *r;

	st->fill = fill;
	st->state = state;
	st->free_state = free_state;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, st,
					      stream_free);
	MHD_add_response_header(r, "Content-Type", content_type);
	set_response(req, status, r);
}

/* ---- suspend / resume ---- */

/* After the before_send hook's work finished: a failure replaces the response. */
static void
gate_resumed(struct http_req *req)
{
	if (req->gate_status >= 0)
		return;
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	http_add_header(req, "Retry-After", "1");
	http_problem(req, 503, "storage-unavailable", NULL,
		     "this request could not be recorded in the ledger, so it is not answered");
}

void
http_suspend(struct http_req *req, http_handler on_resume)
{
	pthread_mutex_lock(&req->srv->suspend_mu);
	req->on_resume = on_resume;
	req->susp = SUSP_REQUESTED;
	pthread_mutex_unlock(&req->srv->suspend_mu);
}

void
http_resume(struct http_req *req)
{
	struct http_server *srv = req->srv;

	pthread_mutex_lock(&srv->suspend_mu);
	if (req->susp == SUSP_SUSPENDED) {
		req->susp = SUSP_WOKEN;
		MHD_resume_connection(req->conn);
	} else {
		req->susp = SUSP_WOKEN; /* not asleep yet: on_access will not suspend */
	}
	pthread_mutex_unlock(&srv->suspend_mu);
}

/* ---- accessors ---- */

const char *http_method(const struct http_req *req) { return req->method; }
const char *http_path(const struct http_req *req) { return req->path; }
const char *http_target(const struct http_req *req) { return req->target; }
const struct route *http_route(const struct http_req *req) { return req->route; }
const struct principal *http_principal(const struct http_req *req) { return &req->who; }
int http_status(const struct http_req *req) { return req->status; }
int64_t http_started_us(const struct http_req *req) { return req->started_us; }
void *http_data(const struct http_req *req) { return req->data; }

const char *
http_param(const struct http_req *req, size_t i)
{
	return i < req->n_params ? req->params[i] : NULL;
}

const char *
http_query(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_query; i++)
		if (!strcmp(req->qnames[i], name))
			return req->qvalues[i];
	return NULL;
}

const char *const *
http_query_names(const struct http_req *req)
{
	return (const char *const *)req->qnames;
}

const char *
http_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_body(const struct http_req *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.buf ? req->body.buf : "";
}

void
http_set_data(struct http_req *req, void *data, void (*free_fn)(void *))
{
	req->data = data;
	req->data_free = free_fn;
}

/* ---- the request lifecycle ---- */

static void
req_free(struct http_req *req)
{
	if (req->data_free)
		req->data_free(req->data);
	for (size_t i = 0; i < req->n_params; i++)
		free(req->params[i]);
	for (size_t i = 0; i < req->n_query; i++) {
		free(req->qnames[i]);
		free(req->qvalues[i]);
	}
	for (size_t i = 0; i < req->n_hdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	free(req->hdrs);
	if (req->resp)
		MHD_destroy_response(req->resp);
	sb_free(&req->body);
	free(req->path);
	free(req->target);
	free(req);
}

/* The token of an "Authorization: Bearer TOKEN" header, or NULL. */
static const char *
bearer(const char *h, size_t *len)
{
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	*len = strlen(h);
	while (*len && h[*len - 1] == ' ')
		(*len)--;
	return h;
}

/*
 * A request refused before its route is known (400, 404, 405) is still made
 * with a token when one is sent: learn whose it is, so that the before_send
 * hook records an auditor's or operator's request like any other, and let the
 * authorized hook apply the token's rate limit and justification rule (it may
 * answer 429 or 428 itself).  Called before the refusal is answered.
 */
static void
identify(struct http_req *req)
{
	struct http_server *srv = req->srv;
	size_t len;
	const char *h = bearer(http_header(req, "Authorization"), &len);

	if (!h || !srv->hooks.authenticate)
		return;
	if (srv->hooks.authenticate(srv->hooks.ctx, h, len, &req->who) != 0)
		memset(&req->who, 0, sizeof(req->who));
	else if (srv->hooks.authorized)
		srv->hooks.authorized(srv->hooks.ctx, req);
}

/* Finds the route; answers 404 or 405 itself when there is none. */
static void
find_route(struct http_req *req, const char *raw_path)
{
	struct http_server *srv = req->srv;
	const char *method = strcmp(req->method, "HEAD") ? req->method : "GET";
	struct strbuf allow;

	sb_init(&allow);
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *r = &srv->routes[i];

		if (!route_match(req, r->pattern, raw_path, false))
			continue;
		if (!strcmp(r->method, method)) {
			if (route_match(req, r->pattern, raw_path, true))
				req->route = r;
			break;
		}
		if (!strstr(allow.buf ? allow.buf : "", r->method)) {
			if (allow.len)
				sb_adds(&allow, ", ");
			sb_adds(&allow, r->method);
		}
	}
	if (!req->route)
		identify(req);
	if (req->resp) {
		/* answered by identify() (429, 428) */
	} else if (!req->route && allow.len) {
		if (strstr(allow.buf, "GET"))
			sb_adds(&allow, ", HEAD");
		http_add_header(req, "Allow", allow.buf);
		http_problem(req, 405, "method-not-allowed", NULL, "%s is not allowed on %s (allowed: %s)",
			     req->method, req->path, allow.buf);
	} else if (!req->route) {
		http_problem(req, 404, "not-found", NULL, "no resource at %s", req->path);
	}
	sb_free(&allow);
}

static void
authenticate(struct http_req *req)
{
	struct http_server *srv = req->srv;
	const char *h = http_header(req, "Authorization"), *tok;
	unsigned need = req->route->flags &
			(ROUTE_ROLE_INGEST | ROUTE_ROLE_AUDITOR | ROUTE_ROLE_OPERATOR);
	size_t len;
	int rc;

	if (req->route->flags & ROUTE_PUBLIC)
		return;
	if (!(tok = bearer(h, &len))) {
		http_add_header(req, "WWW-Authenticate", "Bearer realm=\"aupd\"");
		http_problem(req, 401, "unauthorized", NULL,
			     h ? "the Authorization header must be 'Bearer TOKEN'"
			       : "this endpoint needs an Authorization: Bearer TOKEN header");
		return;
	}
	rc = srv->hooks.authenticate ? srv->hooks.authenticate(srv->hooks.ctx, tok, len, &req->who)
				     : 1;
	if (rc < 0) {
		http_add_header(req, "Retry-After", "1");
		http_problem(req, 503, "unavailable", NULL, "cannot check the token right now");
		return;
	}
	if (rc > 0) {
		http_add_header(req, "WWW-Authenticate", "Bearer realm=\"aupd\", error=\"invalid_token\"");
		http_problem(req, 401, "unauthorized", NULL, "unknown or revoked token");
		return;
	}
	if (!(need & (ROUTE_ROLE_INGEST << req->who.role))) {
		http_problem(req, 403, "forbidden", NULL,
			     "token '%s' has role %s, which may not %s %s", req->who.name,
			     role_name(req->who.role), req->method, req->path);
		return;
	}
	if (srv->hooks.authorized)
		srv->hooks.authorized(srv->hooks.ctx, req);
}

static void
begin(struct http_req *req, const char *url)
{
	struct http_server *srv = req->srv;
	const char *cl = http_header(req, "Content-Length");
	const char *te = http_header(req, "Transfer-Encoding");
	struct strbuf sb;

	sb_init(&sb);
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, rebuild_target, &sb);
	free(req->target);
	req->target = xasprintf("%s%s", url, sb.buf ? sb.buf : "");
	sb_free(&sb);

	req->path = pct_decode(url, strlen(url));
	if (!req->path) {
		req->path = xstrdup(url);
		identify(req);
		if (!req->resp)
			http_problem(req, 400, "bad-request", NULL,
				     "the path has an invalid %%-escape");
		return;
	}
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, req);
	if (req->query_overflow) {
		identify(req);
		if (!req->resp)
			http_problem(req, 400, "bad-request", NULL,
				     "the query has more than %d arguments or an invalid %%-escape",
				     MAX_QUERY_ARGS);
		return;
	}
	find_route(req, url);
	if (req->resp)
		return;
	authenticate(req);
	if (req->resp)
		return;
	req->expects_body = req->route->flags & ROUTE_BODY;
	if (req->expects_body && cl) {
		int64_t n;

		if (parse_i64(cl, 0, INT64_MAX, &n) == 0 && (uint64_t)n > srv->cfg->max_body)
			http_problem(req, 413, "too-large", NULL,
				     "the body is %lld bytes; limits.max_body is %llu", (long long)n,
				     (unsigned long long)srv->cfg->max_body);
	} else if (req->expects_body && !te) {
		/* no Content-Length and not chunked: an empty body, which handlers reject */
	}
}

static void
queue(struct http_req *req)
{
	if (!req->resp) {
		log_err("internal: %s %s produced no response", req->method, req->path);
		http_problem(req, 500, "internal", NULL, "the request produced no response");
	}
	if (MHD_queue_response(req->conn, (unsigned)req->status, req->resp) != MHD_YES)
		log_debug("cannot queue a response for %s %s", req->method, req->path);
	MHD_destroy_response(req->resp);
	req->resp = NULL;
}

/* Suspends the connection if the handler asked; true when it now sleeps. */
static bool
sleep_if_asked(struct http_req *req)
{
	bool slept = false;

	pthread_mutex_lock(&req->srv->suspend_mu);
	if (req->susp == SUSP_REQUESTED) {
		req->susp = SUSP_SUSPENDED;
		MHD_suspend_connection(req->conn);
		slept = true;
	}
	pthread_mutex_unlock(&req->srv->suspend_mu);
	return slept;
}

void
http_gate_wait(struct http_req *req)
{
	http_suspend(req, gate_resumed);
}

void
http_gate_result(struct http_req *req, int status)
{
	req->gate_status = status;
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;

	if (!req) {
		req = xcalloc(1, sizeof(*req));
		req->srv = srv;
		req->conn = conn;
		req->method = method;
		req->started_us = time_mono_us();
		sb_init(&req->body);
		*con_cls = req;
		atomic_fetch_add(&srv->active, 1);
		begin(req, url);
		if (req->resp) {
			req->gated = true;
			if (srv->hooks.before_send)
				srv->hooks.before_send(srv->hooks.ctx, req, false);
			queue(req);
		}
		return MHD_YES;
	}
	if (req->status && !req->resp && req->susp == SUSP_NONE) {
		/* answered already (e.g. 413 mid-upload): drop the rest of the body */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (req->body_too_big) {
			/*
			 * libmicrohttpd sends no answer before the body has arrived:
			 * drop it and answer 413 at its end, or close the connection
			 * when a client keeps sending far past the limit.
			 */
			req->discarded += *upload_size;
			*upload_size = 0;
			return req->discarded > 4 * srv->cfg->max_body ? MHD_NO : MHD_YES;
		}
		if (req->expects_body) {
			if (req->body.len + *upload_size > srv->cfg->max_body) {
				req->body_too_big = true;
				req->discarded = req->body.len + *upload_size;
				sb_free(&req->body);
			} else {
				sb_add(&req->body, upload_data, *upload_size);
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}

	pthread_mutex_lock(&srv->suspend_mu);
	if (req->susp == SUSP_WOKEN) {
		req->susp = SUSP_NONE;
		pthread_mutex_unlock(&srv->suspend_mu);
		req->on_resume(req);
	} else if (req->body_too_big) {
		pthread_mutex_unlock(&srv->suspend_mu);
		http_problem(req, 413, "too-large", NULL,
			     "the body is larger than limits.max_body (%llu bytes)",
			     (unsigned long long)srv->cfg->max_body);
	} else {
		pthread_mutex_unlock(&srv->suspend_mu);
		req->route->handler(req);
	}
	for (;;) {
		if (sleep_if_asked(req))
			return MHD_YES;
		if (req->susp == SUSP_WOKEN) {
			/* woken before it slept: continue at once */
			req->susp = SUSP_NONE;
			req->on_resume(req);
			continue;
		}
		if (req->resp && !req->gated) {
			req->gated = true;
			if (srv->hooks.before_send && srv->hooks.before_send(srv->hooks.ctx, req, true))
				continue; /* it asked to wait (http_suspend) */
		}
		break;
	}
	queue(req);
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;

	if (!req)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
		req->status = 499; /* client went away */
	if (srv->hooks.request_done && req->route)
		srv->hooks.request_done(srv->hooks.ctx, req);
	log_debug("%s %s -> %d (%lld us)", req->method, req->path, req->status,
		  (long long)(time_mono_us() - req->started_us));
	req_free(req);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->active, 1);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_debug("http: %s", buf);
}

int
http_listen_socket(const struct config *cfg, struct aupd_error *err)
{
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	struct sockaddr *sa;
	socklen_t len;
	int fd, one = 1;

	if (cfg->listen_ipv6) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(cfg->listen_port);
		inet_pton(AF_INET6, cfg->listen_host, &a6.sin6_addr);
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(cfg->listen_port);
		inet_pton(AF_INET, cfg->listen_host, &a4.sin_addr);
		sa = (struct sockaddr *)&a4;
		len = sizeof(a4);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cfg->listen_ipv6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, 512) < 0)
		goto err;
	return fd;
err:
	one = errno;
	aupd_error_set(err, "cannot listen on %s%s%s:%u: %s", cfg->listen_ipv6 ? "[" : "",
		       cfg->listen_host, cfg->listen_ipv6 ? "]" : "", cfg->listen_port,
		       strerror(one));
	err->temporary = one == EADDRINUSE;
	if (fd >= 0)
		close(fd);
	return -1;
}

struct http_server *
http_start(const struct config *cfg, int listen_fd, const char *cert_pem, const char *key_pem,
	   const struct route *routes, size_t n_routes, const struct http_hooks *hooks,
	   struct aupd_error *err)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	struct sockaddr *sa;
	/*
	 * poll(), not epoll: libmicrohttpd 0.9.75's MHD_quiesce_daemon() races its
	 * own epoll workers over removing the listen socket from the epoll set and
	 * aborts the process when it loses ("Failed to remove listen FD from epoll
	 * set"); seen at about one shutdown in 35, and within 5,000 rounds of
	 * start, quiesce and stop.  poll() has no such race, and with the bench's
	 * 32 connections on 2 threads it costs the same daemon CPU per request
	 * (57-59 us per single event, 19-21 ms per 1,000-event batch, either way).
	 */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;

	srv->cfg = cfg;
	srv->quiesced_fd = MHD_INVALID_SOCKET;
	srv->routes = routes;
	srv->n_routes = n_routes;
	if (hooks)
		srv->hooks = *hooks;
	pthread_mutex_init(&srv->suspend_mu, NULL);
	if (cfg->listen_ipv6) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(cfg->listen_port);
		inet_pton(AF_INET6, cfg->listen_host, &a6.sin6_addr);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(cfg->listen_port);
		inet_pton(AF_INET, cfg->listen_host, &a4.sin_addr);
		sa = (struct sockaddr *)&a4;
	}
	if (cfg->tls_enabled)
		flags |= MHD_USE_TLS;

	struct MHD_OptionItem opts[16];
	size_t n = 0;

	if (listen_fd >= 0)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL};
	else
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, sa};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_none,
					    NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
					    NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
					    (intptr_t)(cfg->connection_timeout_us / AUPD_USEC), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
					    (intptr_t)cfg->connection_memory, NULL};
	if (cfg->max_connections_per_ip)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
						    cfg->max_connections_per_ip, NULL};
	if (cfg->http_threads > 1)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads,
						    NULL};
	if (cfg->tls_enabled) {
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
						    (void *)tls_priorities};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	srv->mhd = MHD_start_daemon(flags, cfg->listen_port, NULL, NULL, on_access, srv,
				    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!srv->mhd) {
		if (listen_fd >= 0)
			close(listen_fd);
		aupd_error_set(err,
			       "cannot listen on %s%s%s:%u (address in use, not local, or TLS "
			       "material rejected)",
			       cfg->listen_ipv6 ? "[" : "", cfg->listen_host,
			       cfg->listen_ipv6 ? "]" : "", cfg->listen_port);
		err->temporary = 1;
		pthread_mutex_destroy(&srv->suspend_mu);
		free(srv);
		return NULL;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : cfg->listen_port;
	return srv;
}

uint16_t
http_port(const struct http_server *srv)
{
	return srv->port;
}

void
http_quiesce(struct http_server *srv)
{
	if (srv->quiesced_fd != MHD_INVALID_SOCKET)
		return;
	srv->quiesced_fd = MHD_quiesce_daemon(srv->mhd);
	/*
	 * The worker threads may still hold the socket, so it is closed only
	 * after they stop; shutting it down now ends listening, so that new
	 * connections are refused at once instead of waiting in the backlog.
	 */
	if (srv->quiesced_fd != MHD_INVALID_SOCKET)
		shutdown(srv->quiesced_fd, SHUT_RDWR);
}

unsigned
http_active(const struct http_server *srv)
{
	return atomic_load(&((struct http_server *)srv)->active);
}

void
http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->mhd);
	if (srv->quiesced_fd != MHD_INVALID_SOCKET)
		close(srv->quiesced_fd);
	pthread_mutex_destroy(&srv->suspend_mu);
	free(srv);
}
