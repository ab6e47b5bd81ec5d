/* verify_remote.c - aupd verify --url: check a running daemon's ledger over its API */
#include "aupd/verify_remote.h"
#include "aupd/cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (64u << 20)

struct remote {
	struct ledger_verifier lv;
	const struct ledger_key *key;
	struct strbuf buf; /* bytes not yet split into lines */
	bool header_seen;
	bool failed;       /* a protocol problem (not a bad record) */
	char why[512];
	long lines;
};

static int
hexfield(json_t *obj, const char *name, unsigned char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, name));

	return s ? hex_decode(s, out, len) : -1;
}

static void
protocol_error(struct remote *r, const char *fmt, const char *detail)
{
	if (r->failed)
		return;
	r->failed = true;
	snprintf(r->why, sizeof(r->why), fmt, detail);
}

static void
one_line(struct remote *r, const char *line, size_t len)
{
	unsigned char hash[LEDGER_HASH_LEN], sig[LEDGER_SIG_LEN];
	json_error_t jerr;
	json_t *doc, *v;

	r->lines++;
	doc = json_loadb(line, len, 0, &jerr);
	if (!doc) {
		protocol_error(r, "the log is not NDJSON: %s", jerr.text);
		return;
	}
	if ((v = json_object_get(doc, "log"))) {
		unsigned char prev[LEDGER_HASH_LEN];
		const char *kid = json_string_value(json_object_get(v, "key_id"));

		r->header_seen = true;
		if (hexfield(v, "prev_hash", prev, sizeof(prev)) < 0)
			protocol_error(r, "the log header has no prev_hash%s", "");
		else if (json_integer_value(json_object_get(v, "from")) != 1)
			protocol_error(r, "the log does not start at seq 1%s", "");
		else if (kid && strcmp(kid, r->key->key_id) != 0)
			protocol_error(r, "the daemon signs with key %s, not with the given key", kid);
	} else if (!r->header_seen) {
		protocol_error(r, "the log has no header line%s", "");
	} else if ((v = json_object_get(doc, "checkpoint"))) {
		const char *s = json_string_value(json_object_get(v, "signature"));
		size_t slen = s ? strlen(s) / 2 : 0;

		if (hexfield(v, "hash", hash, sizeof(hash)) < 0 || !s || slen > sizeof(sig) ||
		    hex_decode(s, sig, slen) < 0)
			protocol_error(r, "a checkpoint line is malformed%s", "");
		else
			lv_checkpoint_here(&r->lv, json_integer_value(json_object_get(v, "seq")), hash,
					   sizeof(hash),
					   json_integer_value(json_object_get(v, "time_us")), sig, slen,
					   json_string_value(json_object_get(v, "key_id")));
	} else {
		int64_t seq = json_integer_value(json_object_get(doc, "seq"));
		json_t *body = json_object_get(doc, "body");

		if (hexfield(doc, "hash", hash, sizeof(hash)) < 0)
			protocol_error(r, "a record line has no hash%s", "");
		else if (json_is_true(json_object_get(doc, "redacted")))
			lv_record_opaque(&r->lv, seq, hash, sizeof(hash));
		else if (!json_is_string(body))
			protocol_error(r, "a record line has no body%s", "");
		else
			lv_record(&r->lv, seq, json_string_value(json_object_get(doc, "kind")),
				  json_string_value(json_object_get(doc, "tenant")),
				  json_integer_value(json_object_get(doc, "time_us")),
				  json_string_value(body), json_string_length(body), hash,
				  sizeof(hash));
	}
	json_decref(doc);
}

static size_t
on_data(char *data, size_t size, size_t n, void *arg)
{
	struct remote *r = arg;
	size_t len = size * n, start = 0;

	sb_add(&r->buf, data, len);
	for (size_t i = 0; i < r->buf.len; i++) {
		if (r->buf.buf[i] == '\n') {
			if (i > start && !r->failed && !r->lv.bad_seq)
				one_line(r, r->buf.buf + start, i - start);
			start = i + 1;
		}
	}
	memmove(r->buf.buf, r->buf.buf + start, r->buf.len - start);
	r->buf.len -= start;
	r->buf.buf[r->buf.len] = '\0';
	if (r->buf.len > LINE_MAX_BYTES) {
		protocol_error(r, "a log line is longer than 64 MiB%s", "");
		return 0;
	}
	return len;
}

int
verify_remote(const char *url, const char *token, const char *key_path, const char *cacert)
{
	struct remote r = {0};
	struct ledger_key key;
	struct aupd_error err;
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *full, *auth, *pem;
	size_t len, ulen = strlen(url);
	long status = 0;
	CURLcode cc;
	CURL *curl;
	int rc = 1;

	pem = file_read_all(key_path, 65536, &len, &err);
	if (!pem) {
		cli_error("verify: %s", err.msg);
		return 1;
	}
	if (ledger_key_load_public(pem, len, &key, &err) < 0) {
		free(pem);
		cli_error("verify: %s: %s", key_path, err.msg);
		return 1;
	}
	free(pem);
	r.key = &key;
	lv_init(&r.lv, &key);
	sb_init(&r.buf);
	while (ulen && url[ulen - 1] == '/')
		ulen--;
	full = xasprintf("%.*s/v1/audit/log?from=1", (int)ulen, url);
	auth = xasprintf("Authorization: Bearer %s", token);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/x-ndjson");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, full);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r.failed)) {
		cli_error("verify: %s: %s", full, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (status != 200) {
		cli_error("verify: %s answered %ld: %.300s", full, status, r.buf.buf ? r.buf.buf : "");
	} else if (r.failed) {
		cli_error("verify: %s: %s", url, r.why);
	} else {
		if (r.buf.len && !r.lv.bad_seq)
			one_line(&r, r.buf.buf, r.buf.len);
		if (!r.header_seen && !r.failed)
			protocol_error(&r, "the log is empty%s", "");
		if (r.failed) {
			cli_error("verify: %s: %s", url, r.why);
		} else {
			lv_finish(&r.lv);
			verify_print_result(&r.lv, url, true);
			rc = r.lv.bad_seq ? 1 : 0;
		}
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	curl_global_cleanup();
	free(full);
	OPENSSL_cleanse(auth, strlen(auth));
	free(auth);
	lv_free(&r.lv);
	sb_free(&r.buf);
	ledger_key_free(&key);
	return rc;
}
