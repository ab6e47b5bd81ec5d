/* tokens.c - API tokens: creation, revocation, listing, authentication */
#include "aupd/tokens.h"
#include "aupd/ledger.h"
#include "aupd/policy.h"

#include "aupd/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MARKER_LEN 8
#define CACHE_SLOTS 64 /* direct-mapped by the first byte of the hash */

static int tokens_changed(struct dbconn *c, struct aupd_error *err);

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
	return 0; /* no cache holds a token before it exists: nothing to tell */

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
	return tokens_changed(c, err) < 0 ? 2 : 0;

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

/* The token whose secret hashes to `md`: 0, 1 or -1 as token_authenticate(). */
static int
lookup_hash(struct dbconn *c, const unsigned char md[SHA256_DIGEST_LENGTH], struct principal *who)
{
	sqlite3_stmt *st;
	int rc, result = 1;

	if (!(st = store_stmt(c, ST_TOKEN_BY_HASH, NULL)))
		return -1;
	sqlite3_bind_blob(st, 1, md, SHA256_DIGEST_LENGTH, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *stored = sqlite3_column_blob(st, 4);
		enum role role;

		if (sqlite3_column_bytes(st, 4) == SHA256_DIGEST_LENGTH &&
		    ct_equal(stored, md, SHA256_DIGEST_LENGTH) &&
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

int
token_authenticate(struct dbconn *c, const char *secret, size_t len, struct principal *who)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (len == 0 || len > TOKEN_MAX_LEN)
		return 1;
	aupd_sha256(secret, len, NULL, 0, md);
	return lookup_hash(c, md, who);
}

struct cache_entry {
	bool used;
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t marker; /* the marker's value before the token was read */
	int64_t until;	 /* monotonic time it is forgotten at */
	struct principal who;
};

struct token_cache {
	pthread_mutex_t mu;
	int fd; /* the marker file; -1: no caching */
	int64_t ttl_us;
	/* the last reading of the marker (under mu) */
	bool marker_ok; /* read whole, and still the file `aupd token` writes */
	uint64_t marker;
	int64_t read_at; /* monotonic time just before that reading */
	struct cache_entry e[CACHE_SLOTS];
};

static char *
marker_path(const char *db_path)
{
	return xasprintf("%s%s", db_path, TOKEN_MARKER_SUFFIX);
}

/* A new value for the marker: any value it did not hold before will do. */
static void
marker_value(unsigned char v[MARKER_LEN])
{
	if (RAND_bytes(v, MARKER_LEN) != 1) {
		int64_t t = time_mono_us() ^ ((int64_t)getpid() << 40);

		memcpy(v, &t, MARKER_LEN);
	}
}

/*
 * Tells running daemons that tokens changed (token_cache_new made the
 * marker; with no daemon ever started there is none, and nothing to tell).
 * 0, or -1 with `err` saying what a running daemon may still do.
 */
static int
tokens_changed(struct dbconn *c, struct aupd_error *err)
{
	const char *db = store_path(c);
	unsigned char v[MARKER_LEN];
	const char *failed = NULL; /* "open" or "write" */
	char *path;
	int fd, e = 0, rc = 0;

	if (!*db)
		return 0;
	path = marker_path(db);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		failed = "open";
		e = errno;
	}
	if (fd >= 0) {
		marker_value(v);
		if (pwrite(fd, v, MARKER_LEN, 0) != MARKER_LEN) {
			failed = "write";
			e = errno;
		}
		close(fd);
	}
	if (failed) {
		aupd_error_set(err, "cannot %s %s (%s): a running aupd may accept the tokens it "
			       "checked before this change for up to %s more",
			       failed, path, strerror(e), TOKEN_CACHE_TTL_TEXT);
		rc = -1;
	}
	free(path);
	/*
	 * A daemon may take TOKEN_MARKER_CHECK_US to read the marker again (or
	 * to notice it is gone, and stop keeping tokens): after twice that,
	 * every request it takes sees the change.
	 */
	if (rc == 0) {
		struct timespec ts = {0, 2 * TOKEN_MARKER_CHECK_US * 1000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			continue; /* sleep the rest */
	}
	return rc;
}

struct token_cache *
token_cache_new(const char *db_path, int64_t ttl_us)
{
	struct token_cache *tc = xcalloc(1, sizeof(*tc));
	char *path = marker_path(db_path);
	unsigned char v[MARKER_LEN];

	pthread_mutex_init(&tc->mu, NULL);
	tc->ttl_us = ttl_us;
	tc->read_at = time_mono_us() - TOKEN_MARKER_CHECK_US; /* the first request reads it */
	marker_value(v);
	/* read with pread(), not mapped: a file cut short must not be a SIGBUS */
	tc->fd = *db_path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (tc->fd >= 0 && pwrite(tc->fd, v, MARKER_LEN, 0) != MARKER_LEN) {
		int e = errno;

		close(tc->fd);
		tc->fd = -1;
		errno = e;
	}
	if (tc->fd < 0)
		log_warn("%s: %s; every request reads its token from the database", path,
			 strerror(errno));
	free(path);
	return tc;
}

void
token_cache_free(struct token_cache *tc)
{
	if (!tc)
		return;
	if (tc->fd >= 0)
		close(tc->fd);
	pthread_mutex_destroy(&tc->mu);
	OPENSSL_cleanse(tc, sizeof(*tc));
	free(tc);
}

int
token_authenticate_cached(struct token_cache *tc, struct store_pool *pool, const char *secret,
			  size_t len, struct principal *who)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct cache_entry *e;
	struct dbconn *c;
	uint64_t marker;
	int64_t now;
	bool cache;
	int rc;

	if (len == 0 || len > TOKEN_MAX_LEN)
		return 1;
	aupd_sha256(secret, len, NULL, 0, md);
	e = &tc->e[md[0] % CACHE_SLOTS];
	now = time_mono_us();
	pthread_mutex_lock(&tc->mu);
	/*
	 * Read before the database: a change after this is seen next time.  A
	 * marker deleted or renamed over since the start is not the file
	 * `aupd token` writes: no caching then.
	 */
	if (tc->fd >= 0 && now - tc->read_at >= TOKEN_MARKER_CHECK_US) {
		struct stat st;

		tc->marker_ok = pread(tc->fd, &tc->marker, MARKER_LEN, 0) == MARKER_LEN &&
				fstat(tc->fd, &st) == 0 && st.st_nlink > 0;
		tc->read_at = now;
	}
	cache = tc->marker_ok; /* never set without the marker */
	marker = tc->marker;
	if (cache && e->used && e->marker == marker && now < e->until &&
	    ct_equal(e->md, md, sizeof(md))) {
		*who = e->who;
		pthread_mutex_unlock(&tc->mu);
		return 0;
	}
	pthread_mutex_unlock(&tc->mu);
	c = store_pool_get(pool);
	rc = lookup_hash(c, md, who);
	store_pool_put(pool, c);
	if (rc == 0 && cache) {
		pthread_mutex_lock(&tc->mu);
		e->used = true;
		memcpy(e->md, md, sizeof(md));
		e->marker = marker;
		e->until = now + tc->ttl_us;
		e->who = *who;
		pthread_mutex_unlock(&tc->mu);
	}
	return rc;
}
