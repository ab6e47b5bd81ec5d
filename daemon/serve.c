/* serve.c - aupd serve: start-up, signals, reload, graceful shutdown */
#include "aupd/app.h"
#include "aupd/cli.h"
#include "aupd/log.h"
#include "aupd/tls.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

/* The systemd notify protocol: one datagram to $NOTIFY_SOCKET. */
void
sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || !*path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("cannot notify systemd: %s", strerror(errno));
	close(fd);
}

static const char serve_usage[] =
	"usage: aupd serve [--config FILE]\n"
	"\n"
	"Runs the daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads the rules.\n"
	"\n"
	"  -c, --config FILE   configuration file (default " AUPD_DEFAULT_CONFIG ")\n"
	"  -h, --help          show this help\n";

static void
install_signals(sigset_t *orig)
{
	struct sigaction sa = {0};
	sigset_t block;

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* only the main thread takes these: threads started later inherit the block */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, orig);
}

static void
main_loop(struct app *app, const sigset_t *orig)
{
	sigset_t wait_mask = *orig;

	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGHUP);
	while (!stop_requested) {
		struct timespec ts = {.tv_sec = 1};

		ppoll(NULL, 0, &ts, &wait_mask);
		if (reload_requested) {
			reload_requested = 0;
			sd_notify_msg("RELOADING=1");
			app_reload(app, "SIGHUP");
			sd_notify_msg("READY=1");
		}
		app_tick(app);
	}
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = AUPD_DEFAULT_CONFIG;
	struct config *cfg;
	struct app *app;
	sigset_t orig;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			fputs(serve_usage, stdout);
			return 0;
		default:
			cli_bad_option("serve", c, argv);
			return 2;
		}
	}
	if (optind < argc) {
		cli_error("serve: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	cfg = cli_load_config(config_path);
	if (!cfg)
		return 1;
	log_init(cfg->log_level);
	install_signals(&orig);
	app = app_start(cfg, &rc);
	if (!app) {
		config_free(cfg);
		return rc;
	}
	sd_notify_msg("READY=1");
	main_loop(app, &orig);
	sd_notify_msg("STOPPING=1");
	rc = app_shutdown(app);
	return rc;
}
