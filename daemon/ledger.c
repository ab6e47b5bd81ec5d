/* ledger.c - the append-only hash-chained ledger, signed checkpoints, verification */
#include "aupd/ledger.h"
#include "aupd/policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX_PEM 65536

static int
fill_public(struct ledger_key *k, struct aupd_error *err)
{
	unsigned char raw[64], md[SHA256_DIGEST_LENGTH];
	size_t rawlen = sizeof(raw);
	BIO *bio;
	char *data;
	long n;

	if (EVP_PKEY_get_raw_public_key(k->pub, raw, &rawlen) != 1) {
		aupd_error_set(err, "the ledger key is not an Ed25519 key");
		return -1;
	}
	aupd_sha256(raw, rawlen, NULL, 0, md);
	hex_encode(md, 16, k->key_id);
	bio = BIO_new(BIO_s_mem());
	if (!bio || PEM_write_bio_PUBKEY(bio, k->pub) != 1) {
		BIO_free(bio);
		aupd_error_set(err, "cannot encode the ledger public key");
		return -1;
	}
	n = BIO_get_mem_data(bio, &data);
	free(k->pub_pem);
	k->pub_pem = xstrndup(data, (size_t)n);
	BIO_free(bio);
	return 0;
}

static EVP_PKEY *
pem_private(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return k;
}

int
ledger_key_load_public(const char *pem, size_t len, struct ledger_key *k, struct aupd_error *err)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);

	memset(k, 0, sizeof(*k));
	k->pub = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!k->pub || EVP_PKEY_get_id(k->pub) != EVP_PKEY_ED25519) {
		aupd_error_set(err, "not an Ed25519 public key in PEM form");
		ledger_key_free(k);
		return -1;
	}
	if (fill_public(k, err) < 0) {
		ledger_key_free(k);
		return -1;
	}
	return 0;
}

int
ledger_key_load_or_create(const char *state_dir, struct ledger_key *k, struct aupd_error *err)
{
	char *key_path = path_join(state_dir, "ledger.key");
	char *pub_path = path_join(state_dir, "ledger.pub.pem");
	char *pem = NULL;
	size_t len;
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (access(key_path, F_OK) == 0) {
		pem = file_read_all(key_path, KEY_MAX_PEM, &len, err);
		if (!pem)
			goto out;
		k->priv = pem_private(pem, len);
		if (!k->priv || EVP_PKEY_get_id(k->priv) != EVP_PKEY_ED25519) {
			aupd_error_set(err, "%s holds no Ed25519 private key in PEM form", key_path);
			goto out;
		}
	} else {
		BIO *bio = BIO_new(BIO_s_mem());
		char *data;
		long n;

		k->priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		if (!bio || !k->priv ||
		    PEM_write_bio_PrivateKey(bio, k->priv, NULL, NULL, 0, NULL, NULL) != 1) {
			BIO_free(bio);
			aupd_error_set(err, "cannot generate the ledger signing key");
			goto out;
		}
		n = BIO_get_mem_data(bio, &data);
		rc = file_write_atomic(key_path, data, (size_t)n, 0600, err);
		OPENSSL_cleanse(data, (size_t)n);
		BIO_free(bio);
		if (rc < 0)
			goto out;
		rc = -1;
	}
	k->pub = k->priv;
	EVP_PKEY_up_ref(k->pub);
	if (fill_public(k, err) < 0)
		goto out;
	/* (re)write the public key beside it, so auditors can always take a copy */
	if (file_write_atomic(pub_path, k->pub_pem, strlen(k->pub_pem), 0644, err) < 0)
		goto out;
	rc = 0;
out:
	if (pem) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	if (rc < 0)
		ledger_key_free(k);
	free(key_path);
	free(pub_path);
	return rc;
}

void
ledger_key_free(struct ledger_key *k)
{
	EVP_PKEY_free(k->priv);
	EVP_PKEY_free(k->pub);
	free(k->pub_pem);
	memset(k, 0, sizeof(*k));
}

int
ledger_head_read(struct dbconn *c, struct ledger_head *h, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(c, ST_HEAD, err);
	int rc;

	if (!st)
		return -1;
	memset(h, 0, sizeof(*h));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		h->seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != LEDGER_HASH_LEN) {
			sqlite3_reset(st);
			aupd_error_set(err, "%s: ledger record %lld has a malformed hash", c->path,
				       (long long)h->seq);
			return -1;
		}
		memcpy(h->hash, sqlite3_column_blob(st, 1), LEDGER_HASH_LEN);
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return store_fail(c, err, "cannot read the ledger head");
	}
	sqlite3_reset(st);
	return 0;
}

void
ledger_body_begin(struct strbuf *sb, int64_t seq, const char *kind, aupd_time t,
		  const char *tenant)
{
	char ts[40];

	time_format_us(t, ts, sizeof(ts));
	sb_addf(sb, "{\"seq\":%lld,\"kind\":\"%s\",\"time\":\"%s\"", (long long)seq, kind, ts);
	if (tenant) {
		sb_adds(sb, ",\"tenant\":");
		json_quote(sb, tenant);
	}
}

static void
chain_hash(const unsigned char prev[LEDGER_HASH_LEN], const void *body, size_t len,
	   unsigned char out[LEDGER_HASH_LEN])
{
	aupd_sha256(prev, LEDGER_HASH_LEN, body, len, out);
}

int
ledger_append(struct dbconn *c, struct ledger_head *h, const char *kind, const char *tenant,
	      aupd_time t, const char *body, size_t len, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(c, ST_LEDGER_INSERT, err);
	unsigned char hash[LEDGER_HASH_LEN];
	int rc;

	if (!st)
		return -1;
	chain_hash(h->hash, body, len, hash);
	sqlite3_bind_int64(st, 1, h->seq + 1);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (tenant)
		sqlite3_bind_text(st, 3, tenant, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_blob(st, 5, body, (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, hash, LEDGER_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot append to the ledger");
	h->seq++;
	memcpy(h->hash, hash, LEDGER_HASH_LEN);
	return 0;
}

int
ledger_append_members(struct dbconn *c, struct ledger_head *h, const char *kind,
		      const char *tenant, aupd_time t, const char *members, struct strbuf *scratch,
		      struct aupd_error *err)
{
	sb_reset(scratch);
	ledger_body_begin(scratch, h->seq + 1, kind, t, tenant);
	sb_adds(scratch, members);
	return ledger_append(c, h, kind, tenant, t, scratch->buf, scratch->len, err);
}

void
ledger_checkpoint_message(struct strbuf *sb, int64_t seq, const unsigned char hash[LEDGER_HASH_LEN],
			  aupd_time t)
{
	char hex[2 * LEDGER_HASH_LEN + 1], ts[40];

	hex_encode(hash, LEDGER_HASH_LEN, hex);
	time_format_us(t, ts, sizeof(ts));
	sb_addf(sb, "aupd-checkpoint-v1\n%lld\n%s\n%s\n", (long long)seq, hex, ts);
}

int
ledger_checkpoint(struct dbconn *c, const struct ledger_head *h, aupd_time t,
		  const struct ledger_key *k, struct aupd_error *err)
{
	unsigned char sig[LEDGER_SIG_LEN];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct strbuf msg;
	sqlite3_stmt *st;
	int rc;

	sb_init(&msg);
	ledger_checkpoint_message(&msg, h->seq, h->hash, t);
	rc = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->priv) == 1 &&
	     EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg.buf, msg.len) == 1;
	EVP_MD_CTX_free(ctx);
	sb_free(&msg);
	if (!rc) {
		aupd_error_set(err, "cannot sign a ledger checkpoint");
		return -1;
	}
	if (!(st = store_stmt(c, ST_CHECKPOINT_INSERT, err)))
		return -1;
	sqlite3_bind_int64(st, 1, h->seq);
	sqlite3_bind_blob(st, 2, h->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t);
	sqlite3_bind_blob(st, 4, sig, (int)siglen, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, k->key_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot store a ledger checkpoint");
	return 0;
}

/* ---- verification ---- */

void
lv_init(struct ledger_verifier *lv, const struct ledger_key *key)
{
	memset(lv, 0, sizeof(*lv));
	lv->key = key;
	sb_init(&lv->scratch);
}

void
lv_free(struct ledger_verifier *lv)
{
	free(lv->cps);
	sb_free(&lv->scratch);
	lv->cps = NULL;
}

static int
lv_bad(struct ledger_verifier *lv, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
lv_bad(struct ledger_verifier *lv, int64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (lv->bad_seq)
		return -1;
	lv->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(lv->why, sizeof(lv->why), fmt, ap);
	va_end(ap);
	return -1;
}

int
lv_add_checkpoint(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		  size_t hash_len, aupd_time t, const unsigned char *sig, size_t sig_len,
		  const char *key_id)
{
	struct lv_checkpoint *cp;

	if (hash_len != LEDGER_HASH_LEN || sig_len > LEDGER_SIG_LEN)
		return lv_bad(lv, seq, "checkpoint at seq %lld is malformed (hash or signature "
				       "length)",
			      (long long)seq);
	if (lv->n_cps && lv->cps[lv->n_cps - 1].seq >= seq)
		return lv_bad(lv, seq, "checkpoints out of order at seq %lld", (long long)seq);
	if (lv->n_cps == lv->cap_cps) {
		lv->cap_cps = lv->cap_cps ? lv->cap_cps * 2 : 64;
		lv->cps = xrealloc(lv->cps, lv->cap_cps * sizeof(*lv->cps));
	}
	cp = &lv->cps[lv->n_cps++];
	cp->seq = seq;
	memcpy(cp->hash, hash, LEDGER_HASH_LEN);
	cp->time = t;
	memcpy(cp->sig, sig, sig_len);
	cp->sig_len = sig_len;
	snprintf(cp->key_id, sizeof(cp->key_id), "%s", key_id ? key_id : "");
	return 0;
}

static int
check_checkpoint(struct ledger_verifier *lv, const struct lv_checkpoint *cp)
{
	EVP_MD_CTX *ctx;
	int ok;

	if (memcmp(cp->hash, lv->head.hash, LEDGER_HASH_LEN) != 0)
		return lv_bad(lv, cp->seq,
			      "checkpoint at seq %lld does not match the chain (the hash it signs "
			      "differs from the recomputed one)",
			      (long long)cp->seq);
	if (!lv->key)
		return 0;
	if (cp->key_id[0] && strcmp(cp->key_id, lv->key->key_id) != 0)
		return lv_bad(lv, cp->seq,
			      "checkpoint at seq %lld was signed by key %s, not by the given key %s",
			      (long long)cp->seq, cp->key_id, lv->key->key_id);
	sb_reset(&lv->scratch);
	ledger_checkpoint_message(&lv->scratch, cp->seq, cp->hash, cp->time);
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, lv->key->pub) == 1 &&
	     EVP_DigestVerify(ctx, cp->sig, cp->sig_len, (const unsigned char *)lv->scratch.buf,
			      lv->scratch.len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return lv_bad(lv, cp->seq, "checkpoint at seq %lld has an invalid signature",
			      (long long)cp->seq);
	return 0;
}

int
lv_record(struct ledger_verifier *lv, int64_t seq, const char *kind, const char *tenant,
	  aupd_time t, const void *body, size_t len, const unsigned char *hash, size_t hash_len)
{
	unsigned char want[LEDGER_HASH_LEN];

	if (lv->bad_seq)
		return -1;
	if (seq != lv->head.seq + 1) {
		if (seq > lv->head.seq + 1)
			return lv_bad(lv, lv->head.seq + 1,
				      "record %lld is missing (the next stored record is %lld)",
				      (long long)(lv->head.seq + 1), (long long)seq);
		return lv_bad(lv, lv->head.seq + 1, "records out of order: %lld after %lld",
			      (long long)seq, (long long)lv->head.seq);
	}
	sb_reset(&lv->scratch);
	ledger_body_begin(&lv->scratch, seq, kind ? kind : "", t, tenant);
	if (len < lv->scratch.len || memcmp(body, lv->scratch.buf, lv->scratch.len) != 0 ||
	    (len > lv->scratch.len && ((const char *)body)[lv->scratch.len] != ',' &&
	     ((const char *)body)[lv->scratch.len] != '}') ||
	    /* a tenant in the bytes but none in the column */
	    (!tenant && len >= lv->scratch.len + 10 &&
	     !memcmp((const char *)body + lv->scratch.len, ",\"tenant\":", 10)))
		return lv_bad(lv, seq,
			      "record %lld: its stored seq, kind, tenant or time differ from the "
			      "hashed bytes",
			      (long long)seq);
	chain_hash(lv->head.hash, body, len, want);
	if (hash_len != LEDGER_HASH_LEN || memcmp(want, hash, LEDGER_HASH_LEN) != 0)
		return lv_bad(lv, seq,
			      "record %lld: hash mismatch (its bytes or the previous record were "
			      "changed)",
			      (long long)seq);
	lv->head.seq = seq;
	memcpy(lv->head.hash, want, LEDGER_HASH_LEN);
	lv->n_records++;
	while (lv->next_cp < lv->n_cps && lv->cps[lv->next_cp].seq <= seq) {
		const struct lv_checkpoint *cp = &lv->cps[lv->next_cp++];

		if (cp->seq < seq)
			return lv_bad(lv, cp->seq, "checkpoint at seq %lld has no record",
				      (long long)cp->seq);
		if (check_checkpoint(lv, cp) < 0)
			return -1;
		lv->n_checked++;
	}
	return 0;
}

int
lv_record_opaque(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		 size_t hash_len)
{
	if (lv->bad_seq)
		return -1;
	if (seq != lv->head.seq + 1)
		return lv_bad(lv, lv->head.seq + 1, "record %lld is missing (the next record is %lld)",
			      (long long)(lv->head.seq + 1), (long long)seq);
	if (hash_len != LEDGER_HASH_LEN)
		return lv_bad(lv, seq, "record %lld: malformed hash", (long long)seq);
	lv->head.seq = seq;
	memcpy(lv->head.hash, hash, LEDGER_HASH_LEN);
	lv->n_records++;
	lv->n_opaque++;
	return 0;
}

int
lv_checkpoint_here(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		   size_t hash_len, aupd_time t, const unsigned char *sig, size_t sig_len,
		   const char *key_id)
{
	struct lv_checkpoint cp = {.seq = seq, .time = t};

	if (lv->bad_seq)
		return -1;
	if (seq != lv->head.seq)
		return lv_bad(lv, seq, "checkpoint at seq %lld is out of place (after record %lld)",
			      (long long)seq, (long long)lv->head.seq);
	if (hash_len != LEDGER_HASH_LEN || sig_len > LEDGER_SIG_LEN)
		return lv_bad(lv, seq, "checkpoint at seq %lld is malformed", (long long)seq);
	memcpy(cp.hash, hash, LEDGER_HASH_LEN);
	memcpy(cp.sig, sig, sig_len);
	cp.sig_len = sig_len;
	snprintf(cp.key_id, sizeof(cp.key_id), "%s", key_id ? key_id : "");
	if (check_checkpoint(lv, &cp) < 0)
		return -1;
	lv->n_checked++;
	return 0;
}

int
lv_finish(struct ledger_verifier *lv)
{
	if (lv->bad_seq)
		return -1;
	if (lv->next_cp < lv->n_cps)
		return lv_bad(lv, lv->head.seq + 1,
			      "the ledger ends at seq %lld but a signed checkpoint covers seq %lld: "
			      "records %lld..%lld were removed",
			      (long long)lv->head.seq, (long long)lv->cps[lv->next_cp].seq,
			      (long long)lv->head.seq + 1, (long long)lv->cps[lv->n_cps - 1].seq);
	return 0;
}

int
ledger_verify_db(struct dbconn *c, struct ledger_verifier *lv, struct aupd_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db,
			       "SELECT seq, hash, time, signature, key_id FROM checkpoints "
			       "ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot read checkpoints");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		lv_add_checkpoint(lv, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
				  (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 2),
				  sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3),
				  (const char *)sqlite3_column_text(st, 4));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot read checkpoints");
	if (sqlite3_prepare_v2(c->db,
			       "SELECT seq, kind, tenant, time, body, hash FROM ledger ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot read the ledger");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (lv_record(lv, sqlite3_column_int64(st, 0),
			      (const char *)sqlite3_column_text(st, 1),
			      (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3),
			      sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4),
			      sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5)) < 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return store_fail(c, err, "cannot read the ledger");
	}
	sqlite3_finalize(st);
	lv_finish(lv);
	return 0;
}
