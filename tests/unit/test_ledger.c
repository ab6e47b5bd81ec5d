/* test_ledger.c - the hash-chained ledger, signed checkpoints, the verifier, and the store */
#include "aupd/ledger.h"
#include "aupd/store.h"
#include "aupd/tokens.h"
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 (1768471200LL * AUPD_USEC) /* 2026-01-15T10:00:00Z */
#define N_RECORDS 10

/* A temp state directory with a database and a signing key. */
struct fx {
	char *dir;
	char db[4096];
	struct ledger_key key;
};

static void
fx_open(struct fx *f)
{
	struct aupd_error err = {0};

	memset(f, 0, sizeof(*f));
	f->dir = tu_tmpdir();
	snprintf(f->db, sizeof(f->db), "%s/aupd.db", f->dir);
	ck_assert_msg(ledger_key_load_or_create(f->dir, &f->key, &err) == 0, "%s", err.msg);
}

static void
fx_close(struct fx *f)
{
	ledger_key_free(&f->key);
	tu_rmtree(f->dir);
	free(f->dir);
}

static struct dbconn *
open_rw(const char *path)
{
	struct aupd_error err = {0};
	struct dbconn *c = store_open(path, STORE_CREATE, &err);

	ck_assert_msg(c != NULL, "store_open: %s", err.msg);
	return c;
}

static const char *
kind_of(int64_t seq)
{
	return seq % 3 == 0 ? "token" : "verdict";
}

static const char *
tenant_of(int64_t seq)
{
	return seq % 3 == 0 ? NULL : seq % 2 ? "agency-a" : "agency-b";
}

/* Appends one record in its own transaction; checkpoints it when `cp`. */
static void
append_one(struct dbconn *c, const struct ledger_key *k, const char *members, bool cp)
{
	struct aupd_error err = {0};
	struct ledger_head h;
	struct strbuf sb;
	int64_t seq;

	ck_assert_int_eq(store_begin_immediate(c, &err), 0);
	ck_assert_msg(ledger_head_read(c, &h, &err) == 0, "%s", err.msg);
	seq = h.seq + 1;
	sb_init(&sb);
	ledger_body_begin(&sb, seq, kind_of(seq), T0 + seq * AUPD_USEC, tenant_of(seq));
	sb_adds(&sb, members);
	ck_assert_msg(ledger_append(c, &h, kind_of(seq), tenant_of(seq), T0 + seq * AUPD_USEC,
				    sb.buf, sb.len, &err) == 0,
		      "%s", err.msg);
	ck_assert_int_eq(h.seq, seq);
	sb_free(&sb);
	if (cp)
		ck_assert_msg(ledger_checkpoint(c, &h, T0 + seq * AUPD_USEC + 500, k, &err) == 0,
			      "%s", err.msg);
	ck_assert_msg(store_commit(c, &err) == 0, "%s", err.msg);
}

/* N_RECORDS records, checkpoints at 4 and 8. */
static void
build(struct fx *f)
{
	struct dbconn *c = open_rw(f->db);

	for (int64_t seq = 1; seq <= N_RECORDS; seq++) {
		char m[128];

		snprintf(m, sizeof(m), ",\"n\":%lld,\"note\":\"record number %lld\"}", (long long)seq,
			 (long long)seq);
		append_one(c, &f->key, m, seq == 4 || seq == 8);
	}
	store_close(c);
}

/* Runs the verifier over the database; the caller lv_free()s. */
static void
verify(struct fx *f, const struct ledger_key *key, struct ledger_verifier *lv)
{
	struct aupd_error err = {0};
	struct dbconn *c = store_open(f->db, STORE_READONLY, &err);

	ck_assert_msg(c != NULL, "%s", err.msg);
	lv_init(lv, key);
	ck_assert_msg(ledger_verify_db(c, lv, &err) == 0, "%s", err.msg);
	store_close(c);
}

/* The verifier names `seq` as the first bad record, with a reason holding `part`. */
static void
expect_bad(struct fx *f, int64_t seq, const char *part)
{
	struct ledger_verifier lv;

	verify(f, &f->key, &lv);
	ck_assert_msg(lv.bad_seq == seq, "bad_seq %lld, expected %lld (%s)", (long long)lv.bad_seq,
		      (long long)seq, lv.bad_seq ? lv.why : "verified intact");
	ck_assert_msg(strstr(lv.why, part) != NULL, "reason '%s' lacks '%s'", lv.why, part);
	lv_free(&lv);
}

/* Raw SQL on the database file, as a tamperer would run it. */
static void
sql(struct fx *f, const char *fmt, ...)
{
	char q[1024];
	char *msg = NULL;
	sqlite3 *db;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(sqlite3_open(f->db, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, q, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", q, msg);
	sqlite3_close(db);
}

/* Reads a blob column of one row into a malloc'd buffer. */
static unsigned char *
get_blob(struct fx *f, const char *table, const char *col, int64_t seq, size_t *len)
{
	char q[256];
	sqlite3_stmt *st;
	unsigned char *out;
	sqlite3 *db;

	snprintf(q, sizeof(q), "SELECT %s FROM %s WHERE seq = %lld", col, table, (long long)seq);
	ck_assert_int_eq(sqlite3_open(f->db, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	*len = (size_t)sqlite3_column_bytes(st, 0);
	out = malloc(*len + 1);
	memcpy(out, sqlite3_column_blob(st, 0), *len);
	out[*len] = '\0';
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

static void
set_blob(struct fx *f, const char *table, const char *col, int64_t seq, const void *v, size_t len)
{
	char q[256];
	sqlite3_stmt *st;
	sqlite3 *db;

	snprintf(q, sizeof(q), "UPDATE %s SET %s = ? WHERE seq = %lld", table, col, (long long)seq);
	ck_assert_int_eq(sqlite3_open(f->db, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, v, (int)len, SQLITE_TRANSIENT);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	ck_assert_int_eq(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
flip_byte(struct fx *f, const char *table, const char *col, int64_t seq, size_t offset)
{
	size_t len;
	unsigned char *b = get_blob(f, table, col, seq, &len);

	ck_assert_uint_lt(offset, len);
	b[offset] ^= 0x01;
	set_blob(f, table, col, seq, b, len);
	free(b);
}

/* SHA-256(prev || body), computed with OpenSSL's streaming interface. */
static void
sha_chain(const unsigned char prev[32], const void *body, size_t len, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;

	ck_assert(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
	ck_assert(EVP_DigestUpdate(ctx, prev, 32) == 1);
	ck_assert(EVP_DigestUpdate(ctx, body, len) == 1);
	ck_assert(EVP_DigestFinal_ex(ctx, out, &n) == 1);
	ck_assert_uint_eq(n, 32);
	EVP_MD_CTX_free(ctx);
}

/* ---- appends and the chain ---- */

START_TEST(empty_ledger_head)
{
	static const unsigned char zero[32];
	struct aupd_error err = {0};
	struct ledger_head h;
	struct fx f;
	struct dbconn *c;

	fx_open(&f);
	c = open_rw(f.db);
	memset(&h, 0xff, sizeof(h));
	ck_assert_int_eq(ledger_head_read(c, &h, &err), 0);
	ck_assert_int_eq(h.seq, 0);
	ck_assert_mem_eq(h.hash, zero, 32);
	store_close(c);
	fx_close(&f);
}
END_TEST

START_TEST(appends_chain_correctly)
{
	unsigned char prev[32] = {0}, want[32];
	struct aupd_error err = {0};
	struct ledger_head h;
	sqlite3_stmt *st;
	int64_t n = 0;
	struct fx f;
	struct dbconn *c;
	sqlite3 *db;

	fx_open(&f);
	build(&f);
	ck_assert_int_eq(sqlite3_open(f.db, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT seq, kind, tenant, time, body, hash FROM "
						"ledger ORDER BY seq",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const void *body = sqlite3_column_blob(st, 4);
		size_t len = (size_t)sqlite3_column_bytes(st, 4);
		const char *tenant = (const char *)sqlite3_column_text(st, 2);
		json_t *doc = json_loadb(body, len, 0, NULL);

		n++;
		ck_assert_int_eq(seq, n);
		ck_assert_str_eq((const char *)sqlite3_column_text(st, 1), kind_of(seq));
		if (tenant_of(seq))
			ck_assert_str_eq(tenant, tenant_of(seq));
		else
			ck_assert_ptr_null(tenant);
		ck_assert_int_eq(sqlite3_column_int64(st, 3), T0 + seq * AUPD_USEC);
		/* the stored bytes are a JSON document naming their own seq, kind and tenant */
		ck_assert_ptr_nonnull(doc);
		ck_assert_int_eq(json_integer_value(json_object_get(doc, "seq")), seq);
		ck_assert_str_eq(json_string_value(json_object_get(doc, "kind")), kind_of(seq));
		if (tenant_of(seq))
			ck_assert_str_eq(json_string_value(json_object_get(doc, "tenant")),
					 tenant_of(seq));
		ck_assert_int_eq(json_integer_value(json_object_get(doc, "n")), seq);
		json_decref(doc);
		/* hash_n = SHA-256(hash_{n-1} || bytes_n), hash_0 = 32 zero bytes */
		sha_chain(prev, body, len, want);
		ck_assert_int_eq(sqlite3_column_bytes(st, 5), 32);
		ck_assert_mem_eq(sqlite3_column_blob(st, 5), want, 32);
		memcpy(prev, want, 32);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ck_assert_int_eq(n, N_RECORDS);

	c = open_rw(f.db);
	ck_assert_int_eq(ledger_head_read(c, &h, &err), 0);
	ck_assert_int_eq(h.seq, N_RECORDS);
	ck_assert_mem_eq(h.hash, prev, 32);
	store_close(c);
	fx_close(&f);
}
END_TEST

START_TEST(large_record_chains_correctly)
{
	unsigned char prev[32], want[32];
	struct aupd_error err = {0};
	struct ledger_head h;
	struct strbuf m;
	unsigned char *body, *hash;
	size_t len, hlen;
	struct fx f;
	struct dbconn *c;

	fx_open(&f);
	build(&f);
	c = open_rw(f.db);
	ck_assert_int_eq(ledger_head_read(c, &h, &err), 0);
	memcpy(prev, h.hash, 32);
	store_close(c);
	c = open_rw(f.db);
	sb_init(&m);
	sb_adds(&m, ",\"big\":\"");
	for (int i = 0; i < 20000; i++)
		sb_addc(&m, (char)('a' + i % 26));
	sb_adds(&m, "\"}");
	append_one(c, &f.key, m.buf, false);
	sb_free(&m);
	store_close(c);
	body = get_blob(&f, "ledger", "body", N_RECORDS + 1, &len);
	hash = get_blob(&f, "ledger", "hash", N_RECORDS + 1, &hlen);
	ck_assert_uint_gt(len, 20000);
	sha_chain(prev, body, len, want);
	ck_assert_uint_eq(hlen, 32);
	ck_assert_mem_eq(hash, want, 32);
	free(body);
	free(hash);
	fx_close(&f);
}
END_TEST

/* ---- keys and checkpoints ---- */

START_TEST(key_files_and_modes)
{
	struct aupd_error err = {0};
	struct ledger_key again, pub;
	unsigned char raw[32], md[32];
	char hex[33];
	size_t rawlen = sizeof(raw);
	struct stat st;
	size_t len;
	char *pem;
	struct fx f;

	fx_open(&f);
	ck_assert_int_eq(stat(tu_path(f.dir, "ledger.key"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat(tu_path(f.dir, "ledger.pub.pem"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
	/* key_id: hex of the first 16 bytes of SHA-256(raw public key) */
	ck_assert(EVP_PKEY_get_raw_public_key(f.key.pub, raw, &rawlen) == 1);
	ck_assert_uint_eq(rawlen, 32);
	SHA256(raw, rawlen, md);
	for (int i = 0; i < 16; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	ck_assert_str_eq(f.key.key_id, hex);
	/* the exported public key is the same key */
	pem = file_read_all(tu_path(f.dir, "ledger.pub.pem"), 65536, &len, &err);
	ck_assert_ptr_nonnull(pem);
	ck_assert_str_eq(pem, f.key.pub_pem);
	ck_assert_int_eq(ledger_key_load_public(pem, len, &pub, &err), 0);
	ck_assert_str_eq(pub.key_id, f.key.key_id);
	ck_assert_ptr_null(pub.priv);
	ledger_key_free(&pub);
	free(pem);
	/* reopening loads the same key */
	ck_assert_int_eq(ledger_key_load_or_create(f.dir, &again, &err), 0);
	ck_assert_str_eq(again.key_id, f.key.key_id);
	ck_assert_ptr_nonnull(again.priv);
	ledger_key_free(&again);
	ck_assert_int_eq(stat(tu_path(f.dir, "ledger.key"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	fx_close(&f);
}
END_TEST

START_TEST(bad_key_files)
{
	struct aupd_error err = {0};
	struct ledger_key k;
	char *dir = tu_tmpdir();

	tu_write(tu_path(dir, "ledger.key"), "not a key\n");
	ck_assert_int_eq(ledger_key_load_or_create(dir, &k, &err), -1);
	ck_assert_msg(strstr(err.msg, "ledger.key") != NULL, "%s", err.msg);
	ck_assert_int_eq(ledger_key_load_public("junk", 4, &k, &err), -1);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(checkpoints_sign_and_verify)
{
	struct strbuf msg;
	sqlite3_stmt *st;
	EVP_PKEY *pub;
	sqlite3 *db;
	FILE *fp;
	int n = 0;
	struct fx f;

	fx_open(&f);
	build(&f);
	fp = fopen(tu_path(f.dir, "ledger.pub.pem"), "r");
	ck_assert_ptr_nonnull(fp);
	pub = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	ck_assert_ptr_nonnull(pub);
	ck_assert_int_eq(sqlite3_open(f.db, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT c.seq, c.hash, c.time, c.signature, c.key_id, "
					    "l.hash FROM checkpoints c JOIN ledger l USING (seq) "
					    "ORDER BY seq",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		ck_assert_int_eq(seq, n == 0 ? 4 : 8);
		n++;
		/* it signs the chain's hash at its seq, with this key */
		ck_assert_int_eq(sqlite3_column_bytes(st, 1), 32);
		ck_assert_mem_eq(sqlite3_column_blob(st, 1), sqlite3_column_blob(st, 5), 32);
		ck_assert_str_eq((const char *)sqlite3_column_text(st, 4), f.key.key_id);
		ck_assert_int_eq(sqlite3_column_bytes(st, 3), 64);
		sb_init(&msg);
		ledger_checkpoint_message(&msg, seq, sqlite3_column_blob(st, 1),
					  sqlite3_column_int64(st, 2));
		ck_assert(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1);
		ck_assert_msg(EVP_DigestVerify(ctx, sqlite3_column_blob(st, 3), 64,
					       (const unsigned char *)msg.buf, msg.len) == 1,
			      "checkpoint %lld: the signature does not verify with ledger.pub.pem",
			      (long long)seq);
		/* the signed message covers seq, hash and time */
		ck_assert_msg(strstr(msg.buf, "2026-01-15T10:00:") != NULL, "%s", msg.buf);
		EVP_MD_CTX_free(ctx);
		sb_free(&msg);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	EVP_PKEY_free(pub);
	ck_assert_int_eq(n, 2);
	fx_close(&f);
}
END_TEST

/* ---- the verifier ---- */

START_TEST(intact_ledger_verifies)
{
	struct ledger_verifier lv;
	unsigned char *last;
	size_t len;
	struct fx f;

	fx_open(&f);
	build(&f);
	verify(&f, &f.key, &lv);
	ck_assert_msg(lv.bad_seq == 0, "intact ledger flagged at %lld: %s", (long long)lv.bad_seq,
		      lv.why);
	ck_assert_int_eq(lv.n_records, N_RECORDS);
	ck_assert_int_eq(lv.head.seq, N_RECORDS);
	ck_assert_uint_eq(lv.n_cps, 2);
	last = get_blob(&f, "ledger", "hash", N_RECORDS, &len);
	ck_assert_mem_eq(lv.head.hash, last, 32);
	free(last);
	lv_free(&lv);
	/* without a key the chain and the checkpoints' hashes are still checked */
	verify(&f, NULL, &lv);
	ck_assert_int_eq(lv.bad_seq, 0);
	lv_free(&lv);
	/* an empty ledger is intact too */
	sql(&f, "DELETE FROM checkpoints; DELETE FROM ledger");
	verify(&f, &f.key, &lv);
	ck_assert_int_eq(lv.bad_seq, 0);
	ck_assert_int_eq(lv.n_records, 0);
	lv_free(&lv);
	fx_close(&f);
}
END_TEST

START_TEST(flipped_body_byte)
{
	struct fx f;
	size_t len;
	unsigned char *b;

	fx_open(&f);
	build(&f);
	b = get_blob(&f, "ledger", "body", 5, &len);
	free(b);
	flip_byte(&f, "ledger", "body", 5, len - 4); /* inside the payload */
	expect_bad(&f, 5, "hash mismatch");
	fx_close(&f);
}
END_TEST

START_TEST(flipped_body_header_byte)
{
	struct fx f;
	size_t len;
	unsigned char *b;
	const char *t;

	fx_open(&f);
	build(&f);
	b = get_blob(&f, "ledger", "body", 6, &len);
	t = strstr((const char *)b, "\"time\":\"2026");
	ck_assert_ptr_nonnull(t);
	flip_byte(&f, "ledger", "body", 6, (size_t)(t - (const char *)b) + 12);
	free(b);
	expect_bad(&f, 6, "record 6");
	fx_close(&f);
}
END_TEST

START_TEST(flipped_stored_hash)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	flip_byte(&f, "ledger", "hash", 6, 31);
	expect_bad(&f, 6, "hash mismatch");
	fx_close(&f);
	fx_open(&f);
	build(&f);
	flip_byte(&f, "ledger", "hash", N_RECORDS, 0); /* the head */
	expect_bad(&f, N_RECORDS, "hash mismatch");
	fx_close(&f);
}
END_TEST

START_TEST(deleted_record)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "DELETE FROM ledger WHERE seq = 5");
	expect_bad(&f, 5, "record 5 is missing");
	fx_close(&f);
	/* the first record */
	fx_open(&f);
	build(&f);
	sql(&f, "DELETE FROM ledger WHERE seq = 1");
	expect_bad(&f, 1, "missing");
	fx_close(&f);
}
END_TEST

START_TEST(swapped_records)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET seq = -3 WHERE seq = 3;"
		"UPDATE ledger SET seq = 3 WHERE seq = 4;"
		"UPDATE ledger SET seq = 4 WHERE seq = -3");
	expect_bad(&f, 3, "record 3");
	fx_close(&f);
}
END_TEST

START_TEST(truncated_after_checkpoint)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	/* the checkpoint at 8 now lies beyond the end */
	sql(&f, "DELETE FROM ledger WHERE seq >= 7");
	expect_bad(&f, 7, "checkpoint");
	fx_close(&f);
	/* records 8..10 gone: the checkpoint at 8 has no record */
	fx_open(&f);
	build(&f);
	sql(&f, "DELETE FROM ledger WHERE seq >= 8");
	expect_bad(&f, 8, "checkpoint");
	fx_close(&f);
}
END_TEST

START_TEST(forged_checkpoint_hash)
{
	struct fx f;
	unsigned char *h;
	size_t len;

	fx_open(&f);
	build(&f);
	/* the checkpoint at 8 claims the hash of record 7 */
	h = get_blob(&f, "ledger", "hash", 7, &len);
	set_blob(&f, "checkpoints", "hash", 8, h, len);
	free(h);
	expect_bad(&f, 8, "does not match the chain");
	fx_close(&f);
	/* also found without a key */
	fx_open(&f);
	build(&f);
	flip_byte(&f, "checkpoints", "hash", 4, 3);
	{
		struct ledger_verifier lv;

		verify(&f, NULL, &lv);
		ck_assert_int_eq(lv.bad_seq, 4);
		lv_free(&lv);
	}
	fx_close(&f);
}
END_TEST

START_TEST(forged_checkpoint_signature)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	flip_byte(&f, "checkpoints", "signature", 8, 10);
	expect_bad(&f, 8, "invalid signature");
	fx_close(&f);
	/* a changed time is no longer what was signed */
	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE checkpoints SET time = time + 1 WHERE seq = 4");
	expect_bad(&f, 4, "invalid signature");
	fx_close(&f);
}
END_TEST

START_TEST(checkpoint_signed_by_another_key)
{
	struct aupd_error err = {0};
	struct ledger_key other;
	struct ledger_head h;
	struct dbconn *c;
	unsigned char *hash;
	char *odir = tu_tmpdir();
	size_t len;
	struct fx f;

	ck_assert_int_eq(ledger_key_load_or_create(odir, &other, &err), 0);
	ck_assert_str_ne(other.key_id, "");
	fx_open(&f);
	build(&f);
	ck_assert_str_ne(other.key_id, f.key.key_id);
	/* replace the checkpoint at 8 by one over the true hash, signed by another key */
	sql(&f, "DELETE FROM checkpoints WHERE seq = 8");
	hash = get_blob(&f, "ledger", "hash", 8, &len);
	h.seq = 8;
	memcpy(h.hash, hash, 32);
	free(hash);
	c = open_rw(f.db);
	ck_assert_int_eq(ledger_checkpoint(c, &h, T0 + 9 * AUPD_USEC, &other, &err), 0);
	store_close(c);
	expect_bad(&f, 8, "signed by key");
	/* and when it claims the right key id, its signature is wrong */
	sql(&f, "UPDATE checkpoints SET key_id = '%s' WHERE seq = 8", f.key.key_id);
	expect_bad(&f, 8, "invalid signature");
	ledger_key_free(&other);
	tu_rmtree(odir);
	free(odir);
	fx_close(&f);
}
END_TEST

START_TEST(changed_kind_column)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET kind = 'token' WHERE seq = 5");
	expect_bad(&f, 5, "record 5");
	fx_close(&f);
}
END_TEST

START_TEST(changed_tenant_column)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET tenant = 'agency-b' WHERE seq = 5");
	expect_bad(&f, 5, "record 5");
	fx_close(&f);
	/* a tenant given to a record about no tenant */
	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET tenant = 'agency-a' WHERE seq = 6");
	expect_bad(&f, 6, "record 6");
	fx_close(&f);
}
END_TEST

START_TEST(tenant_column_cleared)
{
	/* a record's tenant erased from its column no longer matches its hashed bytes */
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET tenant = NULL WHERE seq = 5");
	expect_bad(&f, 5, "record 5");
	fx_close(&f);
}
END_TEST

START_TEST(changed_time_column)
{
	struct fx f;

	fx_open(&f);
	build(&f);
	sql(&f, "UPDATE ledger SET time = time + 1 WHERE seq = 2");
	expect_bad(&f, 2, "record 2");
	fx_close(&f);
}
END_TEST

/* ---- the verifier fed by hand ---- */

START_TEST(lv_by_hand)
{
	static const unsigned char no_sig[1];
	unsigned char prev[32] = {0}, hashes[4][32], bad_hash[32];
	struct ledger_verifier lv;
	struct strbuf bodies[4];
	struct fx f;

	fx_open(&f);
	for (int i = 0; i < 4; i++) {
		sb_init(&bodies[i]);
		ledger_body_begin(&bodies[i], i + 1, "verdict", T0, "t");
		sb_adds(&bodies[i], "}");
		sha_chain(prev, bodies[i].buf, bodies[i].len, hashes[i]);
		memcpy(prev, hashes[i], 32);
	}
	/* in order: fine */
	lv_init(&lv, &f.key);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lv_record(&lv, i + 1, "verdict", "t", T0, bodies[i].buf,
					   bodies[i].len, hashes[i], 32),
				 0);
	ck_assert_int_eq(lv_finish(&lv), 0);
	ck_assert_int_eq(lv.n_records, 4);
	lv_free(&lv);
	/* a skipped record, and the first failure sticks */
	lv_init(&lv, &f.key);
	ck_assert_int_eq(lv_record(&lv, 1, "verdict", "t", T0, bodies[0].buf, bodies[0].len,
				   hashes[0], 32),
			 0);
	ck_assert_int_eq(lv_record(&lv, 3, "verdict", "t", T0, bodies[2].buf, bodies[2].len,
				   hashes[2], 32),
			 -1);
	ck_assert_int_eq(lv.bad_seq, 2);
	ck_assert_int_eq(lv_record(&lv, 4, "verdict", "t", T0, bodies[3].buf, bodies[3].len,
				   hashes[3], 32),
			 -1);
	ck_assert_int_eq(lv.bad_seq, 2);
	ck_assert_int_eq(lv_finish(&lv), -1);
	lv_free(&lv);
	/* a short hash */
	lv_init(&lv, &f.key);
	ck_assert_int_eq(lv_record(&lv, 1, "verdict", "t", T0, bodies[0].buf, bodies[0].len,
				   hashes[0], 31),
			 -1);
	ck_assert_int_eq(lv.bad_seq, 1);
	lv_free(&lv);
	/* a checkpoint past the last record */
	lv_init(&lv, NULL);
	memset(bad_hash, 7, sizeof(bad_hash));
	ck_assert_int_eq(lv_add_checkpoint(&lv, 3, hashes[2], 32, T0, (const unsigned char *)"", 0,
					   ""),
			 0);
	ck_assert_int_eq(lv_add_checkpoint(&lv, 9, bad_hash, 32, T0, (const unsigned char *)"", 0,
					   ""),
			 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lv_record(&lv, i + 1, "verdict", "t", T0, bodies[i].buf,
					   bodies[i].len, hashes[i], 32),
				 0);
	ck_assert_int_eq(lv_finish(&lv), -1);
	ck_assert_int_eq(lv.bad_seq, 5);
	lv_free(&lv);
	/* checkpoints out of order, or with a malformed hash */
	lv_init(&lv, NULL);
	ck_assert_int_eq(lv_add_checkpoint(&lv, 3, hashes[2], 32, T0, no_sig, 0, ""), 0);
	ck_assert_int_eq(lv_add_checkpoint(&lv, 2, hashes[1], 32, T0, no_sig, 0, ""), -1);
	lv_free(&lv);
	lv_init(&lv, NULL);
	ck_assert_int_eq(lv_add_checkpoint(&lv, 2, hashes[1], 16, T0, no_sig, 0, ""), -1);
	ck_assert_int_eq(lv.bad_seq, 2);
	lv_free(&lv);
	for (int i = 0; i < 4; i++)
		sb_free(&bodies[i]);
	fx_close(&f);
}
END_TEST

/* ---- the store ---- */

static int64_t
independent_key(const char *tenant, const char *id)
{
	size_t tl = strlen(tenant), il = strlen(id);
	unsigned char *buf = malloc(tl + il + 1), md[32];
	uint64_t k = 0;

	memcpy(buf, tenant, tl);
	buf[tl] = '\0';
	memcpy(buf + tl + 1, id, il);
	SHA256(buf, tl + il + 1, md);
	free(buf);
	for (int i = 0; i < 8; i++)
		k = k << 8 | md[i];
	return (int64_t)k;
}

START_TEST(event_key_stable_and_distinct)
{
	char *big = malloc(3001);

	ck_assert_int_eq(store_event_key("a", "bc"), store_event_key("a", "bc"));
	ck_assert_int_ne(store_event_key("a", "bc"), store_event_key("ab", "c"));
	ck_assert_int_ne(store_event_key("a", "b"), store_event_key("b", "a"));
	ck_assert_int_ne(store_event_key("", "ab"), store_event_key("ab", ""));
	/* stable across builds: the documented SHA-256(tenant NUL id) prefix */
	ck_assert_int_eq(store_event_key("agency-a", "evt-000123"),
			 independent_key("agency-a", "evt-000123"));
	ck_assert_int_eq(store_event_key("a", "bc"), independent_key("a", "bc"));
	memset(big, 'x', 3000);
	big[3000] = '\0';
	ck_assert_int_eq(store_event_key(big, "id"), independent_key(big, "id"));
	ck_assert_int_ne(store_event_key(big, "id"), store_event_key(big, "ie"));
	free(big);
}
END_TEST

static int
pragma(const char *path, const char *q)
{
	sqlite3_stmt *st;
	sqlite3 *db;
	int v = -1;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

START_TEST(store_schema_and_mode)
{
	struct aupd_error err = {0};
	struct stat st;
	struct dbconn *c;
	struct fx f;
	char other[4096];
	sqlite3 *db;

	fx_open(&f);
	c = open_rw(f.db);
	store_close(c);
	ck_assert_int_eq(stat(f.db, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(pragma(f.db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(pragma(f.db, "PRAGMA application_id"), 0x61757064);
	{
		sqlite3_stmt *q;
		const char *mode;

		ck_assert_int_eq(sqlite3_open(f.db, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL),
				 SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		mode = (const char *)sqlite3_column_text(q, 0);
		ck_assert_str_eq(mode, "wal");
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
	/* reopening an existing database keeps it */
	c = open_rw(f.db);
	store_close(c);
	ck_assert_int_eq(pragma(f.db, "SELECT count(*) FROM ledger"), 0);

	/* a database from a newer aupd is refused */
	sql(&f, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
	ck_assert_ptr_null(store_open(f.db, STORE_CREATE, &err));
	ck_assert_msg(strstr(err.msg, "newer") && strstr(err.msg, f.db), "%s", err.msg);

	/* a database that is not aupd's is refused, not migrated */
	snprintf(other, sizeof(other), "%s/other.db", f.dir);
	ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE x (a)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_ptr_null(store_open(other, STORE_CREATE, &err));
	ck_assert_msg(strstr(err.msg, "not an aupd database"), "%s", err.msg);
	ck_assert_int_eq(pragma(other, "SELECT count(*) FROM sqlite_master WHERE name = 'ledger'"),
			 0);

	/* a missing file opened read-only names its path */
	snprintf(other, sizeof(other), "%s/missing.db", f.dir);
	ck_assert_ptr_null(store_open(other, STORE_READONLY, &err));
	ck_assert_msg(strstr(err.msg, "missing.db"), "%s", err.msg);
	fx_close(&f);
}
END_TEST

START_TEST(meta_values)
{
	struct aupd_error err = {0};
	struct dbconn *c;
	char *v;
	struct fx f;

	fx_open(&f);
	c = open_rw(f.db);
	ck_assert_ptr_null(store_meta_get(c, "k"));
	ck_assert_int_eq(store_meta_set(c, "k", "one", &err), 0);
	ck_assert_int_eq(store_meta_set(c, "k", "two", &err), 0);
	v = store_meta_get(c, "k");
	ck_assert_str_eq(v, "two");
	free(v);
	store_close(c);
	fx_close(&f);
}
END_TEST

/* This test binary, for running a helper in a process of its own. */
static char self_path[4096];

/*
 * Opens the database with plain SQLite, reads meta `key`, closes: exit status
 * 0 when it holds `want`, 1 when it does not, 3 when the database cannot be read.
 */
static int
read_meta(const char *path, const char *key, const char *want)
{
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = 3;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) ==
		    SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_ROW &&
				     !strcmp((const char *)sqlite3_column_text(st, 0), want)
			     ? 0
			     : 1;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return rc;
}

/* Runs read_meta() in another process (this binary, run afresh), as another aupd would. */
static int
other_process_reads(const char *path, const char *key, const char *want)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(self_path, self_path, "--read-meta", path, key, want, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) <= 1,
		      "the reader process failed (status %d)", status);
	return WEXITSTATUS(status) == 0;
}

START_TEST(second_open_keeps_commits_visible_to_other_processes)
{
	/*
	 * The daemon opens the database more than once (writer, checkpointer);
	 * another process (aupd token create, aupd verify) opening and closing it
	 * meanwhile must not take the daemon's write-ahead log away from it.
	 */
	struct aupd_error err = {0};
	struct dbconn *c1, *c2;
	struct fx f;

	fx_open(&f);
	c1 = open_rw(f.db);
	ck_assert_int_eq(store_meta_set(c1, "a", "1", &err), 0);
	c2 = store_open(f.db, STORE_NO_MIGRATE, &err);
	ck_assert_msg(c2 != NULL, "%s", err.msg);
	ck_assert_msg(other_process_reads(f.db, "a", "1"),
		      "another process does not see the first commit");
	ck_assert_int_eq(store_meta_set(c1, "b", "2", &err), 0);
	ck_assert_msg(other_process_reads(f.db, "b", "2"),
		      "a commit made after another process closed the database is invisible to "
		      "other processes");
	store_close(c2);
	store_close(c1);
	fx_close(&f);
}
END_TEST

/* ---- tokens: their secrets and their ledger records ---- */

static json_t *
record_body(struct fx *f, int64_t seq, const char *kind)
{
	unsigned char *b;
	size_t len;
	json_t *doc;

	b = get_blob(f, "ledger", "body", seq, &len);
	doc = json_loadb((const char *)b, len, 0, NULL);
	free(b);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "kind")), kind);
	return doc;
}

START_TEST(token_secret_stays_in_its_buffer)
{
	struct {
		char secret[TOKEN_SECRET_LEN + 1];
		unsigned char guard[16];
	} out;
	struct aupd_error err = {0};
	struct dbconn *c;
	struct fx f;

	fx_open(&f);
	c = open_rw(f.db);
	for (int i = 0; i < 8; i++) {
		char name[16];

		memset(&out, 0x5a, sizeof(out));
		snprintf(name, sizeof(name), "t%d", i);
		ck_assert_msg(token_create(c, name, ROLE_INGEST, NULL, out.secret, &err) == 0, "%s",
			      err.msg);
		for (size_t j = 0; j < sizeof(out.guard); j++)
			ck_assert_msg(out.guard[j] == 0x5a,
				      "token_create wrote past the secret's %d-byte buffer (byte %zu "
				      "after it)",
				      TOKEN_SECRET_LEN + 1, j);
	}
	store_close(c);
	fx_close(&f);
}
END_TEST

START_TEST(token_create_authenticate_revoke)
{
	char secret[TOKEN_SECRET_LEN + 1 + 16], other[TOKEN_SECRET_LEN + 1 + 16], *stored;
	unsigned char md[32];
	struct aupd_error err = {0};
	struct ledger_verifier lv;
	struct principal who;
	struct dbconn *c;
	sqlite3_stmt *st;
	sqlite3 *db;
	json_t *doc;
	struct fx f;

	fx_open(&f);
	c = open_rw(f.db);
	ck_assert_int_eq(token_create(c, "ingest-a", ROLE_INGEST, "agency-a", secret, &err), 0);
	/* "aupd_" and 43 base64url characters */
	ck_assert_uint_eq(strlen(secret), TOKEN_SECRET_LEN);
	ck_assert_int_eq(strncmp(secret, "aupd_", 5), 0);
	ck_assert_uint_eq(strspn(secret + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					     "0123456789-_"),
			  TOKEN_SECRET_LEN - 5);
	/* a second active token of that name is refused */
	ck_assert_int_eq(token_create(c, "ingest-a", ROLE_AUDITOR, NULL, other, &err), 1);
	ck_assert_int_eq(token_authenticate(c, secret, strlen(secret), &who), 0);
	ck_assert_str_eq(who.name, "ingest-a");
	ck_assert_int_eq(who.role, ROLE_INGEST);
	ck_assert(who.tenant_bound);
	ck_assert_str_eq(who.tenant, "agency-a");
	ck_assert_int_eq(token_authenticate(c, secret, strlen(secret) - 1, &who), 1);
	ck_assert_int_eq(token_authenticate(c, "aupd_x", 6, &who), 1);
	/* only SHA-256(secret) is stored */
	SHA256((const unsigned char *)secret, strlen(secret), md);
	ck_assert_int_eq(sqlite3_open(f.db, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT hash FROM tokens WHERE name = 'ingest-a'", -1,
					    &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_bytes(st, 0), 32);
	ck_assert_mem_eq(sqlite3_column_blob(st, 0), md, 32);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* a ledger record, tenant included, and no secret in it */
	doc = record_body(&f, 1, "token");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "action")), "create");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "ingest-a");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "role")), "ingest");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "tenant")), "agency-a");
	stored = json_dumps(doc, 0);
	ck_assert_ptr_null(strstr(stored, secret + 5));
	free(stored);
	json_decref(doc);
	/* revocation */
	ck_assert_int_eq(token_revoke(c, "ingest-a", &err), 0);
	ck_assert_int_eq(token_authenticate(c, secret, strlen(secret), &who), 1);
	ck_assert_int_eq(token_revoke(c, "ingest-a", &err), 1);
	doc = record_body(&f, 2, "token");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "action")), "revoke");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "ingest-a");
	json_decref(doc);
	/* the name is free again */
	ck_assert_int_eq(token_create(c, "ingest-a", ROLE_AUDITOR, NULL, secret, &err), 0);
	store_close(c);
	verify(&f, &f.key, &lv);
	ck_assert_int_eq(lv.bad_seq, 0);
	ck_assert_int_eq(lv.n_records, 3);
	lv_free(&lv);
	fx_close(&f);
}
END_TEST

/* Deletes a token's row behind the cache's back: no marker change. */
static void
delete_token_row(const char *db_path, const char *name)
{
	char *sql = sqlite3_mprintf("DELETE FROM tokens WHERE name = %Q", name);
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sqlite3_free(sql);
}

/*
 * Waits out the time a cache may take to read the marker again: what
 * `aupd token revoke` waits after rewriting it.
 */
static void
marker_settle(void)
{
	usleep(2 * TOKEN_MARKER_CHECK_US);
}

/*
 * Replaces *tc with a new cache of time to live `ttl_us`, and creates the
 * token `name` (its secret in `secret`) and checks it once, so that the
 * cache holds it.
 */
static void
cache_one(struct token_cache **tc, int64_t ttl_us, struct dbconn *c, struct store_pool *pool,
	  const char *name, char secret[TOKEN_SECRET_LEN + 1])
{
	struct aupd_error err = {0};
	struct principal who;

	token_cache_free(*tc);
	*tc = token_cache_new(store_path(c), ttl_us);
	ck_assert_int_eq(token_create(c, name, ROLE_INGEST, NULL, secret, &err), 0);
	ck_assert_int_eq(token_authenticate_cached(*tc, pool, secret, strlen(secret), &who), 0);
}

START_TEST(token_cache_forgets_on_any_change)
{
	char a[TOKEN_SECRET_LEN + 1], b[TOKEN_SECRET_LEN + 1], path[4200];
	struct aupd_error err = {0};
	struct store_pool *pool;
	struct token_cache *tc, *nocache;
	struct principal who;
	struct dbconn *c;
	int64_t t0;
	int fd;
	struct fx f;

	fx_open(&f);
	c = open_rw(f.db);
	pool = store_pool_new(f.db, 2, &err);
	ck_assert_msg(pool != NULL, "%s", err.msg);
	tc = token_cache_new(store_path(c), 3600 * 1000000LL);
	snprintf(path, sizeof(path), "%s%s", store_path(c), TOKEN_MARKER_SUFFIX);
	ck_assert_int_eq(access(path, F_OK), 0);
	{
		/* creating tokens leaves the marker alone: no cache can hold them yet */
		char before[8], after[8];

		fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, before, 8, 0), 8);
		ck_assert_int_eq(token_create(c, "cache-a", ROLE_AUDITOR, "agency-a", a, &err), 0);
		ck_assert_int_eq(token_create(c, "cache-b", ROLE_INGEST, NULL, b, &err), 0);
		ck_assert_int_eq(pread(fd, after, 8, 0), 8);
		ck_assert(memcmp(before, after, 8) == 0);
		close(fd);
	}

	/* a hit answers what the database said */
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, strlen(a), &who), 0);
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, strlen(a), &who), 0);
	ck_assert_str_eq(who.name, "cache-a");
	ck_assert_int_eq(who.role, ROLE_AUDITOR);
	ck_assert(who.tenant_bound);
	ck_assert_str_eq(who.tenant, "agency-a");
	/* unknown secrets are never kept */
	ck_assert_int_eq(token_authenticate_cached(tc, pool, "aupd_x", 6, &who), 1);
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, strlen(a) - 1, &who), 1);
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, 0, &who), 1);

	/* the cache does answer: a row gone without the marker changing still passes */
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 0);
	delete_token_row(f.db, "cache-b");
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 0);
	ck_assert_str_eq(who.name, "cache-b");
	/* ... until anything changes the marker (another process, here) */
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "changed!", 8, 0), 8);
	close(fd);
	marker_settle();
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 1);

	/*
	 * A revocation is seen by the very next request, because token_revoke()
	 * waits out the cache's marker interval twice before it returns.
	 */
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, strlen(a), &who), 0);
	t0 = time_mono_us();
	ck_assert_int_eq(token_revoke(c, "cache-a", &err), 0);
	ck_assert_int_ge(time_mono_us() - t0, 2 * TOKEN_MARKER_CHECK_US);
	ck_assert_int_eq(token_authenticate_cached(tc, pool, a, strlen(a), &who), 1);

	/* with no time to live, every request reads the database */
	cache_one(&tc, 0, c, pool, "cache-c", b);
	delete_token_row(f.db, "cache-c");
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 1);

	/* a marker cut short: every request reads the database (and nothing crashes) */
	cache_one(&tc, 3600 * 1000000LL, c, pool, "cache-e", b);
	ck_assert_int_eq(truncate(path, 0), 0);
	marker_settle();
	delete_token_row(f.db, "cache-e");
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 1);

	/* a marker deleted while the daemon runs: no caching from then on */
	cache_one(&tc, 3600 * 1000000LL, c, pool, "cache-f", b);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(token_revoke(c, "cache-f", &err), 0); /* it waited */
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 1);

	/* a marker that cannot be written: the revocation holds, and says what may lag */
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(token_create(c, "cache-g", ROLE_INGEST, NULL, b, &err), 0);
	ck_assert_int_eq(token_revoke(c, "cache-g", &err), 2);
	ck_assert_msg(strstr(err.msg, "cannot open") && strstr(err.msg, "may accept"), "%s",
		      err.msg);
	ck_assert_int_eq(token_authenticate_cached(tc, pool, b, strlen(b), &who), 1);
	ck_assert_int_eq(rmdir(path), 0);

	/* without a marker (it cannot be made) there is no caching, and no error */
	snprintf(path, sizeof(path), "%s/no/such/dir/aupd.db", f.dir);
	nocache = token_cache_new(path, 3600 * 1000000LL);
	ck_assert_int_eq(token_create(c, "cache-d", ROLE_INGEST, NULL, b, &err), 0);
	ck_assert_int_eq(token_authenticate_cached(nocache, pool, b, strlen(b), &who), 0);
	delete_token_row(f.db, "cache-d");
	ck_assert_int_eq(token_authenticate_cached(nocache, pool, b, strlen(b), &who), 1);

	token_cache_free(nocache);
	token_cache_free(tc);
	store_pool_free(pool);
	store_close(c);
	fx_close(&f);
}
END_TEST

static Suite *
ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("chain");

	tcase_add_test(tc, empty_ledger_head);
	tcase_add_test(tc, appends_chain_correctly);
	tcase_add_test(tc, large_record_chains_correctly);
	tcase_add_test(tc, key_files_and_modes);
	tcase_add_test(tc, bad_key_files);
	tcase_add_test(tc, checkpoints_sign_and_verify);
	suite_add_tcase(s, tc);

	tc = tcase_create("verifier");
	tcase_add_test(tc, intact_ledger_verifies);
	tcase_add_test(tc, flipped_body_byte);
	tcase_add_test(tc, flipped_body_header_byte);
	tcase_add_test(tc, flipped_stored_hash);
	tcase_add_test(tc, deleted_record);
	tcase_add_test(tc, swapped_records);
	tcase_add_test(tc, truncated_after_checkpoint);
	tcase_add_test(tc, forged_checkpoint_hash);
	tcase_add_test(tc, forged_checkpoint_signature);
	tcase_add_test(tc, checkpoint_signed_by_another_key);
	tcase_add_test(tc, changed_kind_column);
	tcase_add_test(tc, changed_tenant_column);
	tcase_add_test(tc, tenant_column_cleared);
	tcase_add_test(tc, changed_time_column);
	tcase_add_test(tc, lv_by_hand);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_test(tc, event_key_stable_and_distinct);
	tcase_add_test(tc, store_schema_and_mode);
	tcase_add_test(tc, meta_values);
	tcase_add_test(tc, second_open_keeps_commits_visible_to_other_processes);
	suite_add_tcase(s, tc);

	tc = tcase_create("tokens");
	tcase_add_test(tc, token_secret_stays_in_its_buffer);
	tcase_add_test(tc, token_create_authenticate_revoke);
	tcase_add_test(tc, token_cache_forgets_on_any_change);
	suite_add_tcase(s, tc);
	return s;
}

int
main(int argc, char **argv)
{
	/* every temp dir of this run lives under one, removed even when a test failed */
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *base;
	int rc;

	if (argc == 5 && !strcmp(argv[1], "--read-meta"))
		return read_meta(argv[2], argv[3], argv[4]);
	if (!realpath(argv[0], self_path))
		snprintf(self_path, sizeof(self_path), "%s", argv[0]);
	base = malloc(strlen(tmp) + 32);
	sprintf(base, "%s/aupd-unit-XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror(base);
		return 1;
	}
	setenv("TMPDIR", base, 1);
	rc = tu_run(ledger_suite());
	tu_rmtree(base);
	free(base);
	return rc;
}
