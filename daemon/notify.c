/* notify.c - webhook delivery: the durable outbox drained to signed HTTPS POSTs */
#include "aupd/notify.h"
#include "aupd/alerts.h"
#include "aupd/log.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 16
#define SECRET_MAX 4096
#define BACKOFF_BASE_US (1 * AUPD_USEC)
#define BACKOFF_CAP_US (600 * AUPD_USEC)

struct target {
	const struct notifier_conf *conf;
	unsigned char *secret;
	size_t secret_len;
	CURL *curl;
};

struct notifier {
	const struct config *cfg;
	struct writer *writer;
	struct dbconn *db;
	struct target *targets;
	size_t n_targets;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stopping;
	bool running;
	bool job_done;
};

int64_t
notify_backoff_us(int attempts)
{
	int64_t d = BACKOFF_BASE_US;
	uint32_t r;

	for (int i = 1; i < attempts && d < BACKOFF_CAP_US; i++)
		d *= 2;
	if (d > BACKOFF_CAP_US)
		d = BACKOFF_CAP_US;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	/* full jitter between half and all of the delay */
	return d / 2 + (int64_t)((double)r / UINT32_MAX * (double)(d / 2));
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static struct target *
find_target(struct notifier *n, const char *name)
{
	for (size_t i = 0; i < n->n_targets; i++)
		if (!strcmp(n->targets[i].conf->name, name))
			return &n->targets[i];
	return NULL;
}

/* One POST; 0 and the status on a 2xx, -1 with `error` otherwise. */
static int
deliver(struct target *t, const struct outbox_row *r, long *status, char *error, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], h_sig[160], h_del[80], h_ev[80], h_alert[120];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;

	HMAC(EVP_sha256(), t->secret, (int)t->secret_len, (const unsigned char *)r->body,
	     r->body_len, mac, &maclen);
	hex_encode(mac, maclen, hex);
	snprintf(h_sig, sizeof(h_sig), "X-Aupd-Signature: sha256=%s", hex);
	snprintf(h_del, sizeof(h_del), "X-Aupd-Delivery: %s", r->delivery);
	snprintf(h_ev, sizeof(h_ev), "X-Aupd-Event: %s", r->event);
	snprintf(h_alert, sizeof(h_alert), "X-Aupd-Alert: %s", r->alert_id);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, h_sig);
	hdrs = curl_slist_append(hdrs, h_del);
	hdrs = curl_slist_append(hdrs, h_ev);
	hdrs = curl_slist_append(hdrs, h_alert);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(t->curl);
	curl_slist_free_all(hdrs);
	*status = 0;
	if (cc != CURLE_OK) {
		snprintf(error, len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
		return -1;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, status);
	if (*status < 200 || *status > 299) {
		snprintf(error, len, "the receiver answered HTTP %ld", *status);
		return -1;
	}
	return 0;
}

static void
job_done(struct writer_job *job)
{
	struct notifier *n = job->arg;

	pthread_mutex_lock(&n->mu);
	n->job_done = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

/* Hands the attempt's outcome to the writer and waits until it is stored. */
static bool
record_attempt(struct notifier *n, const struct outbox_row *r, bool ok, long status,
	       const char *error)
{
	struct writer_job *job = xcalloc(1, sizeof(*job));
	const char *why;
	bool stored;

	job->kind = JOB_OUTBOX;
	job->outbox_id = r->id;
	job->delivery_id = xstrdup(r->delivery);
	job->delivered = ok;
	job->http_status = (int)status;
	job->delivery_error = ok ? NULL : xstrdup(error);
	job->next_attempt = time_now() + (ok ? 0 : notify_backoff_us(r->attempts + 1));
	job->done = job_done;
	job->arg = n;
	n->job_done = false;
	if (writer_submit(n->writer, job, &why) < 0) {
		writer_job_free(job);
		return false;
	}
	pthread_mutex_lock(&n->mu);
	while (!n->job_done)
		pthread_cond_wait(&n->cv, &n->mu);
	pthread_mutex_unlock(&n->mu);
	stored = job->status == 0;
	writer_job_free(job);
	return stored;
}

static void *
notifier_main(void *arg)
{
	struct notifier *n = arg;
	struct outbox_row rows[BATCH];

	memset(rows, 0, sizeof(rows));
	for (;;) {
		struct aupd_error err;
		size_t got;

		if (atomic_load(&n->stopping))
			break;
		got = outbox_due(n->db, time_now(), rows, BATCH, &err);
		for (size_t i = 0; i < got; i++) {
			struct target *t = find_target(n, rows[i].notifier);
			char error[CURL_ERROR_SIZE + 64] = "";
			long status = 0;
			bool ok;

			if (!atomic_load(&n->stopping)) {
				if (!t) {
					snprintf(error, sizeof(error),
						 "notifier '%s' is not in the configuration",
						 rows[i].notifier);
					ok = false;
				} else {
					ok = deliver(t, &rows[i], &status, error, sizeof(error)) == 0;
				}
				if (!ok)
					log_warn("webhook %s for %s to %s failed (attempt %d): %s",
						 rows[i].event, rows[i].alert_id, rows[i].notifier,
						 rows[i].attempts + 1, error);
				/*
				 * When the outcome cannot be stored the row stays due: it
				 * is sent again later under the same delivery id.
				 */
				record_attempt(n, &rows[i], ok, status, error);
			}
			outbox_row_clear(&rows[i]);
		}
		if (got == BATCH)
			continue;
		pthread_mutex_lock(&n->mu);
		if (!atomic_load(&n->stopping)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&n->cv, &n->mu, &ts);
		}
		pthread_mutex_unlock(&n->mu);
	}
	return NULL;
}

static void
free_targets(struct notifier *n)
{
	for (size_t i = 0; i < n->n_targets; i++) {
		struct target *t = &n->targets[i];

		if (t->secret) {
			OPENSSL_cleanse(t->secret, t->secret_len);
			free(t->secret);
		}
		if (t->curl)
			curl_easy_cleanup(t->curl);
	}
	free(n->targets);
	n->targets = NULL;
	n->n_targets = 0;
}

static int
load_target(struct target *t, const struct notifier_conf *c, struct aupd_error *err)
{
	struct aupd_error rerr;
	size_t len;
	char *s = file_read_all(c->secret_file, SECRET_MAX, &len, &rerr);
	long conn_ms = c->timeout_us / 1000 < 10000 ? (long)(c->timeout_us / 1000) : 10000;

	t->conf = c;
	if (!s) {
		aupd_error_set(err, "notifier '%s': %s", c->name, rerr.msg);
		return -1;
	}
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		s[--len] = '\0';
	if (len == 0) {
		free(s);
		aupd_error_set(err, "notifier '%s': %s is empty", c->name, c->secret_file);
		return -1;
	}
	t->secret = (unsigned char *)s;
	t->secret_len = len;
	t->curl = curl_easy_init();
	curl_easy_setopt(t->curl, CURLOPT_URL, c->url);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)(c->timeout_us / 1000));
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, conn_ms);
	curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(t->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "aupd/" AUPD_VERSION);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, discard);
	if (c->ca_file)
		curl_easy_setopt(t->curl, CURLOPT_CAINFO, c->ca_file);
	if (!strncmp(c->url, "http://", 7))
		log_warn("notifier '%s' posts to %s without TLS: alerts are signed but readable on "
			 "the way",
			 c->name, c->url);
	return 0;
}

struct notifier *
notifier_new(const struct config *cfg, struct aupd_error *err)
{
	struct notifier *n = xcalloc(1, sizeof(*n));

	n->cfg = cfg;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	n->targets = xcalloc(cfg->n_notifiers + 1, sizeof(*n->targets));
	for (size_t i = 0; i < cfg->n_notifiers; i++) {
		n->n_targets++;
		if (load_target(&n->targets[i], &cfg->notifiers[i], err) < 0) {
			notifier_stop(n);
			return NULL;
		}
	}
	return n;
}

int
notifier_run(struct notifier *n, const char *db_path, struct writer *w, struct aupd_error *err)
{
	n->writer = w;
	n->db = store_open(db_path, STORE_READONLY | STORE_NO_MIGRATE, err);
	if (!n->db)
		return -1;
	if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
		aupd_error_set(err, "cannot start the webhook thread");
		return -1;
	}
	n->running = true;
	return 0;
}

void
notifier_stop(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	atomic_store(&n->stopping, true);
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	if (n->running)
		pthread_join(n->thread, NULL);
	store_close(n->db);
	free_targets(n);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
}
