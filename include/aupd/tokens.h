/* tokens.h - API tokens: creation, revocation, listing, authentication */
#ifndef AUPD_TOKENS_H
#define AUPD_TOKENS_H

#include <stdbool.h>
#include <stdio.h>

#include "aupd/http.h"
#include "aupd/store.h"
#include "aupd/types.h"

#define TOKEN_SECRET_LEN 48 /* "aupd_" and 43 base64url characters (256 bits) */
#define TOKEN_MAX_LEN 256

/* Is this a valid token name (1-64 of A-Z a-z 0-9 . _ -)? */
bool token_name_valid(const char *name);
/* Is this a valid tenant (1-128 printable characters)? */
bool tenant_valid(const char *tenant);

/*
 * Creates a token and its ledger record in one transaction.  The secret
 * (NUL-terminated, TOKEN_SECRET_LEN chars) is written to `secret` and is
 * never stored: only its SHA-256 is.  Returns 0, 1 when an active token has
 * that name, or -1 with `err`.
 */
int token_create(struct dbconn *c, const char *name, enum role role, const char *tenant,
		 char secret[TOKEN_SECRET_LEN + 1], struct aupd_error *err);
/*
 * Revokes the active token `name` (with a ledger record).  0; 1 when there is
 * none; 2 when it is revoked but the marker could not be rewritten, so that
 * a running daemon may accept it for up to TOKEN_CACHE_TTL_TEXT more (`err`
 * says why); -1 on error (nothing changed).  It returns only twice
 * TOKEN_MARKER_CHECK_US after revoking (see below): a command's call, not a
 * request thread's.
 */
int token_revoke(struct dbconn *c, const char *name, struct aupd_error *err);
/* Prints the tokens as a table (active ones, or all with `all`). */
int token_list(struct dbconn *c, bool all, FILE *out, struct aupd_error *err);
/*
 * Looks a presented secret up (by its hash, compared in constant time).
 * 0 with `who` filled, 1 when unknown or revoked, -1 when the lookup failed.
 */
int token_authenticate(struct dbconn *c, const char *secret, size_t len, struct principal *who);

/*
 * Tokens a running daemon has checked, so that most requests need no
 * database read.  token_revoke() rewrites a marker file next to the
 * database (TOKEN_MARKER_SUFFIX, 8 random bytes), from any process; the
 * cache reads it again when a request comes TOKEN_MARKER_CHECK_US or more
 * after its last reading, and forgets everything when it changed.
 * token_revoke() returns only after twice that, so that no request that
 * comes after it returned is let in with the revoked token.  An entry is
 * also forgotten `ttl_us` after it was read, in case a marker write was
 * lost.  Only tokens found valid are kept.  Without the marker (it cannot be
 * created), there is no caching.  `db_path` is store_path() of the database.
 */
#define TOKEN_MARKER_SUFFIX "-tokens-changed"
#define TOKEN_MARKER_CHECK_US 10000 /* two system calls per 10 ms, not per request */
#define TOKEN_CACHE_TTL_US 1000000 /* the daemon's ttl_us */
#define TOKEN_CACHE_TTL_TEXT "a second"
struct token_cache;
struct token_cache *token_cache_new(const char *db_path, int64_t ttl_us);
void token_cache_free(struct token_cache *tc);
/* token_authenticate() through the cache, with a connection of `pool` on a miss. */
int token_authenticate_cached(struct token_cache *tc, struct store_pool *pool, const char *secret,
			      size_t len, struct principal *who);

#endif
