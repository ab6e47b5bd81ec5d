/* tokens.c - API tokens: creation, revocation, listing, authentication */
#include "aupd/tokens.h"
#include "aupd/ledger.h"
#include "aupd/policy.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

bool
token_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

bool
tenant_valid(const char *s)
{
	size_t chars = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if ((*p & 0xc0) != 0x80)
			chars++;
	}
	return chars >= 1 && chars <= 128;
}

static int
token_record(struct dbconn *c, const char *action, const char *name, const char *role,
	     const char *tenant, struct aupd_error *err)
{
	struct ledger_head h;
	struct strbuf m, scratch;
	int rc;

	if (ledger_head_read(c, &h, err) < 0)
		return -1;
	sb_init(&m);
	sb_init(&scratch);
	sb_adds(&m, ",\"action\":");
	json_quote(&m, action);
	sb_adds(&m, ",\"name\":");
	json_quote(&m, name);
	if (role) {
		sb_adds(&m, ",\"role\":");
		json_quote(&m, role);
	}
	sb_addc(&m, '}');
	rc = ledger_append_members(c, &h, "token", tenant, time_now(), m.buf, &scratch, err);
	sb_free(&m);
	sb_free(&scratch);
	return rc;
}

int
token_create(struct dbconn *c, const char *name, enum role role, const char *tenant,
	     char secret[TOKEN_SECRET_LEN + 1], struct aupd_error *err)
{
	unsigned char raw[32], md[SHA256_DIGEST_LENGTH];
	sqlite3_stmt *st = NULL;
	int rc;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		aupd_error_set(err, "the OpenSSL random generator failed");
		return -1;
	}
	unsigned char b64[48]; /* 44 characters and a NUL */

	/* base64url without padding: 32 bytes -> 43 characters */
	EVP_EncodeBlock(b64, raw, sizeof(raw));
	memcpy(secret, "aupd_", 5);
	for (int i = 0; i < 43; i++)
		secret[5 + i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	secret[TOKEN_SECRET_LEN] = '\0';
	OPENSSL_cleanse(b64, sizeof(b64));
	OPENSSL_cleanse(raw, sizeof(raw));
	aupd_sha256(secret, TOKEN_SECRET_LEN, NULL, 0, md);

	if (store_begin_immediate(c, err) < 0)
		goto err_wipe;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO tokens (name, role, tenant, hash, created) "
			       "VALUES (?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		store_fail(c, err, "cannot create a token");
		goto err_rollback;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role_name(role), -1, SQLITE_STATIC);
	if (tenant)
		sqlite3_bind_text(st, 3, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, md, sizeof(md), SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, time_now());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		store_rollback(c);
		OPENSSL_cleanse(secret, TOKEN_SECRET_LEN);
		return 1;
	}
	if (rc != SQLITE_DONE) {
		store_fail(c, err, "cannot create a token");
		goto err_rollback;
	}
	if (token_record(c, "create", name, role_name(role), tenant, err) < 0 ||
	    store_commit(c, err) < 0)
		goto err_rollback;
	return 0;

err_rollback:
	store_rollback(c);
err_wipe:
	OPENSSL_cleanse(secret, TOKEN_SECRET_LEN);
	return -1;
}

int
token_revoke(struct dbconn *c, const char *name, struct aupd_error *err)
{
	sqlite3_stmt *st = NULL;
	char *tenant = NULL;
	int rc, found = 0;

	if (store_begin_immediate(c, err) < 0)
		return -1;
	if (sqlite3_prepare_v2(c->db,
			       "UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL "
			       "RETURNING tenant",
			       -1, &st, NULL) != SQLITE_OK) {
		store_fail(c, err, "cannot revoke a token");
		goto err_rollback;
	}
	sqlite3_bind_int64(st, 1, time_now());
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		found = 1;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			tenant = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_fail(c, err, "cannot revoke a token");
		goto err_rollback;
	}
	if (!found) {
		store_rollback(c);
		return 1;
	}
	if (token_record(c, "revoke", name, NULL, tenant, err) < 0 || store_commit(c, err) < 0)
		goto err_rollback;
	free(tenant);
	return 0;

err_rollback:
	free(tenant);
	store_rollback(c);
	return -1;
}

int
token_list(struct dbconn *c, bool all, FILE *out, struct aupd_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db,
			       all ? "SELECT name, role, tenant, created, revoked FROM tokens "
				     "ORDER BY name, created"
				   : "SELECT name, role, tenant, created, revoked FROM tokens "
				     "WHERE revoked IS NULL ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot list tokens");
	fprintf(out, "%-24s %-9s %-24s %-24s%s\n", "NAME", "ROLE", "TENANT", "CREATED",
		all ? " REVOKED" : "");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char created[40], revoked[40] = "-";
		const char *tenant = (const char *)sqlite3_column_text(st, 2);

		time_format_ms(sqlite3_column_int64(st, 3), created, sizeof(created));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			time_format_ms(sqlite3_column_int64(st, 4), revoked, sizeof(revoked));
		fprintf(out, "%-24s %-9s %-24s %-24s%s%s\n", sqlite3_column_text(st, 0),
			sqlite3_column_text(st, 1), tenant ? tenant : "*", created,
			all ? " " : "", all ? revoked : "");
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot list tokens");
	return 0;
}

int
token_authenticate(struct dbconn *c, const char *secret, size_t len, struct principal *who)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	sqlite3_stmt *st;
	int rc, result = 1;

	if (len == 0 || len > TOKEN_MAX_LEN)
		return 1;
	aupd_sha256(secret, len, NULL, 0, md);
	if (!(st = store_stmt(c, ST_TOKEN_BY_HASH, NULL)))
		return -1;
	sqlite3_bind_blob(st, 1, md, sizeof(md), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *stored = sqlite3_column_blob(st, 4);
		enum role role;

		if (sqlite3_column_bytes(st, 4) == (int)sizeof(md) && ct_equal(stored, md, sizeof(md)) &&
		    role_parse((const char *)sqlite3_column_text(st, 2), &role) == 0) {
			memset(who, 0, sizeof(*who));
			who->token_id = sqlite3_column_int64(st, 0);
			snprintf(who->name, sizeof(who->name), "%s", sqlite3_column_text(st, 1));
			who->role = role;
			if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
				who->tenant_bound = true;
				snprintf(who->tenant, sizeof(who->tenant), "%s",
					 sqlite3_column_text(st, 3));
			}
			result = 0;
		}
	} else if (rc != SQLITE_DONE) {
		result = -1;
	}
	sqlite3_reset(st);
	return result;
}
