/* bare_server.c - the baseline: libmicrohttpd over HTTPS reading a body and answering fixed JSON */
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aupd/tls.h"
#include "aupd/util.h"

/*
 * Same daemon flags, thread pool, TLS priorities and certificate as aupd; it
 * reads the whole request body and answers a small fixed JSON document.  With
 * --parse it also parses the body with jansson (the "server + JSON" figure).
 */
static const char reply[] = "{\"status\":\"ok\",\"accepted\":1}\n";
static int parse;

struct body {
	struct strbuf sb;
};

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	  const char *version, const char *data, size_t *size, void **ctx)
{
	struct body *b = *ctx;
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!b) {
		b = xcalloc(1, sizeof(*b));
		*ctx = b;
		return MHD_YES;
	}
	if (*size) {
		sb_add(&b->sb, data, *size);
		*size = 0;
		return MHD_YES;
	}
	if (parse) {
		json_t *j = json_loadb(b->sb.buf ? b->sb.buf : "", b->sb.len, 0, NULL);

		json_decref(j);
	}
	r = MHD_create_response_from_buffer(sizeof(reply) - 1, (void *)reply, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

static void
done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t)
{
	struct body *b = *ctx;

	if (b) {
		sb_free(&b->sb);
		free(b);
	}
	*ctx = NULL;
}

int
main(int argc, char **argv)
{
	struct aupd_error err;
	char *cert, *key;
	size_t len;
	struct MHD_Daemon *d;
	int port;
	sigset_t set;
	int sig;

	if (argc < 4) {
		fprintf(stderr, "usage: bare_server PORT CERT.pem KEY.pem [--parse]\n");
		return 2;
	}
	port = atoi(argv[1]);
	parse = argc > 4 && !strcmp(argv[4], "--parse");
	if (!(cert = file_read_all(argv[2], 1 << 20, &len, &err)) ||
	    !(key = file_read_all(argv[3], 1 << 20, &len, &err))) {
		fprintf(stderr, "bare_server: %s\n", err.msg);
		return 1;
	}
	d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_TLS | MHD_USE_ITC, (uint16_t)port,
			     NULL, NULL, on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2,
			     MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
			     MHD_OPTION_HTTPS_PRIORITIES, tls_priorities, MHD_OPTION_NOTIFY_COMPLETED,
			     done, NULL, MHD_OPTION_CONNECTION_LIMIT, 1024, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bare_server: cannot listen on %d\n", port);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
