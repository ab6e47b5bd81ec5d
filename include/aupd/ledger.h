/* ledger.h - the append-only hash-chained ledger, signed checkpoints, verification */
#ifndef AUPD_LEDGER_H
#define AUPD_LEDGER_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "aupd/store.h"
#include "aupd/util.h"

#define LEDGER_HASH_LEN 32
#define LEDGER_SIG_LEN 64

/* The last record: its seq (0 for an empty ledger) and hash (32 zero bytes then). */
struct ledger_head {
	int64_t seq;
	unsigned char hash[LEDGER_HASH_LEN];
};

/* An Ed25519 key: private part optional (verification needs only the public one). */
struct ledger_key {
	EVP_PKEY *priv;
	EVP_PKEY *pub;
	char key_id[2 * 16 + 1]; /* hex of the first 16 bytes of SHA-256(raw public key) */
	char *pub_pem;
};

/*
 * Loads state_dir/ledger.key, or creates it (0600) with ledger.pub.pem
 * (0644) beside it on first start.  0, or -1 with `err` naming the file.
 */
int ledger_key_load_or_create(const char *state_dir, struct ledger_key *k, struct aupd_error *err);
/* Loads a PEM public key (SubjectPublicKeyInfo, Ed25519). */
int ledger_key_load_public(const char *pem, size_t len, struct ledger_key *k,
			   struct aupd_error *err);
void ledger_key_free(struct ledger_key *k);

/* Reads the head; call inside the write transaction so other writers' appends are seen. */
int ledger_head_read(struct dbconn *c, struct ledger_head *h, struct aupd_error *err);

/*
 * Starts a record body: {"seq":N,"kind":"KIND","time":"T"[,"tenant":"X"]
 * The caller appends its members (each starting with a comma) and the
 * closing brace.  `tenant` may be NULL for records about no tenant.
 */
void ledger_body_begin(struct strbuf *sb, int64_t seq, const char *kind, aupd_time t,
		       const char *tenant);

/*
 * Appends one record at h->seq + 1 (the body must have been begun with that
 * seq): computes SHA-256(h->hash || body), inserts, and advances `h`.
 * Must run inside a write transaction.
 */
int ledger_append(struct dbconn *c, struct ledger_head *h, const char *kind, const char *tenant,
		  aupd_time t, const char *body, size_t len, struct aupd_error *err);

/*
 * Appends a record whose body is the standard header followed by `members`
 * (which starts with a comma and ends with the closing brace, or is "}").
 * `scratch` is a reusable buffer.
 */
int ledger_append_members(struct dbconn *c, struct ledger_head *h, const char *kind,
			  const char *tenant, aupd_time t, const char *members,
			  struct strbuf *scratch, struct aupd_error *err);

/* The bytes a checkpoint signs. */
void ledger_checkpoint_message(struct strbuf *sb, int64_t seq,
			       const unsigned char hash[LEDGER_HASH_LEN], aupd_time t);
/* Signs and stores a checkpoint of `h` (inside the write transaction). */
int ledger_checkpoint(struct dbconn *c, const struct ledger_head *h, aupd_time t,
		      const struct ledger_key *k, struct aupd_error *err);

/* ---- verification: the same checks for a database file and for an exported log ---- */

struct ledger_verifier {
	const struct ledger_key *key; /* NULL: signatures cannot be checked */
	struct ledger_head head;
	struct lv_checkpoint {
		int64_t seq;
		unsigned char hash[LEDGER_HASH_LEN];
		aupd_time time;
		unsigned char sig[LEDGER_SIG_LEN];
		size_t sig_len;
		char key_id[40];
	} *cps;
	size_t n_cps, cap_cps, next_cp;
	int64_t n_records;
	int64_t n_opaque;
	size_t n_checked;
	int64_t bad_seq; /* first bad seq, 0 while all is well */
	char why[400];
	struct strbuf scratch;
};

void lv_init(struct ledger_verifier *lv, const struct ledger_key *key);
void lv_free(struct ledger_verifier *lv);
/* Checkpoints must be added before the records, in ascending seq order. */
int lv_add_checkpoint(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		      size_t hash_len, aupd_time t, const unsigned char *sig, size_t sig_len,
		      const char *key_id);
/*
 * Checks the next record (records must come in seq order): continuity of
 * seq, the hash over the previous hash and the body, the body's header
 * against seq/kind/tenant/time, and any checkpoint at this seq.  0, or -1
 * with bad_seq and why set (and every later call fails too).
 */
int lv_record(struct ledger_verifier *lv, int64_t seq, const char *kind, const char *tenant,
	      aupd_time t, const void *body, size_t len, const unsigned char *hash,
	      size_t hash_len);
/*
 * A record whose content the reader may not see (another tenant's, in a
 * scoped export): its hash is taken as given, so the chain continues.
 */
int lv_record_opaque(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		     size_t hash_len);
/* A checkpoint met in a stream, right after the record it covers. */
int lv_checkpoint_here(struct ledger_verifier *lv, int64_t seq, const unsigned char *hash,
		       size_t hash_len, aupd_time t, const unsigned char *sig, size_t sig_len,
		       const char *key_id);
/* After the last record: checkpoints past the end mean a truncated ledger. */
int lv_finish(struct ledger_verifier *lv);
/* Verifies a whole database file; prints nothing.  0 when intact. */
int ledger_verify_db(struct dbconn *c, struct ledger_verifier *lv, struct aupd_error *err);

#endif
