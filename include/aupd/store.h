/* store.h - SQLite storage: schema and migrations, connections, prepared statements */
#ifndef AUPD_STORE_H
#define AUPD_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "aupd/util.h"

#define STORE_SCHEMA_VERSION 5

/*
 * Indexes by tenant lead with the record's epoch, seq >> STORE_EPOCH_SHIFT
 * (16384 records), so that a commit inserts into the last epoch's pages only
 * instead of one page per tenant anywhere in the index.  A query by tenant
 * seeks each epoch in turn.  The SQL text spells the shift as "seq >> 14":
 * an expression index is used only by a query that writes it the same way.
 */
#define STORE_EPOCH_SHIFT 14

/* Statements prepared once per connection, on first use. */
enum stmt_id {
	ST_HEAD,            /* seq, hash of the last ledger record */
	ST_LEDGER_INSERT,   /* seq, kind, tenant, time, body, hash */
	ST_LEDGER_GET,      /* one record by seq */
	ST_LEDGER_RANGE,    /* records seq >= ? ORDER BY seq */
	ST_EVENT_INSERT,    /* seq, key, tenant, id, actor, action, verdict, time */
	ST_RULE_INSERT,     /* rule, seq */
	ST_CHECKPOINT_INSERT,
	ST_CHECKPOINT_LAST,
	ST_TOKEN_BY_HASH,
	ST_OBLIGATION_OPEN,
	ST_OBLIGATION_CLOSE,
	ST_META_GET,
	ST_META_SET,
	ST_COUNT_
};

#define STORE_CACHE 32

/* One SQLite connection with its statement cache; used by one thread at a time. */
struct dbconn {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT_];
	struct {
		const char *sql; /* the literal's address is the key */
		sqlite3_stmt *st;
	} cache[STORE_CACHE];
	size_t n_cache;
	char *path;
	bool readonly;
};

enum store_open_flags {
	/*
	 * Create the file (0600) and the schema when missing; check an existing
	 * file's header first.  Only for the process's first connection to the
	 * file (see store.c: a stray close() would drop SQLite's locks).
	 */
	STORE_CREATE = 1 << 0,
	STORE_READONLY = 1 << 1, /* a read-only connection (queries, verify) */
	STORE_NO_MIGRATE = 1 << 2,
};

/*
 * Opens `path` in WAL mode with synchronous=FULL and a busy timeout; with
 * STORE_CREATE, creates it and applies forward migrations up to
 * STORE_SCHEMA_VERSION.  A database newer than this build, one that is not
 * an aupd database, or one SQLite finds corrupt is refused with a message
 * naming the file.  NULL with `err` set on failure.
 */
struct dbconn *store_open(const char *path, unsigned flags, struct aupd_error *err);
void store_close(struct dbconn *c);
/*
 * Wraps SQLite's page cache so that a commit does not scan it for pages past
 * the end of the database when there can be none (pcache.c).  store_open()
 * calls it; it takes effect only before SQLite's first use in the process.
 */
void store_pcache_install(void);
/* Over the process: what the wrapper saw. */
struct store_pcache_counts {
	unsigned long skipped;	    /* truncations that could drop nothing */
	unsigned long passed;	    /* truncations passed on to the default cache */
	unsigned long temp_renames; /* pages renamed to the pending-byte page */
};
void store_pcache_counts(struct store_pcache_counts *out);
/*
 * Makes the default VFS one that gathers a WAL's frame writes into one
 * write per commit (walbuf.c).  store_open() calls it.
 */
void store_walbuf_install(void);
/* Over the process: writes SQLite made to WAL files, and writes passed to the file system. */
void store_walbuf_counts(unsigned long *writes, unsigned long *flushes);
/* The database file's full path as SQLite resolved it ("" for a memory database). */
const char *store_path(const struct dbconn *c);
/*
 * Applies forward migrations up to `version` only (store_open applies them
 * all): for tests of the migrations themselves.
 */
int store_migrate_to(struct dbconn *c, int version, struct aupd_error *err);

/* The prepared statement `id`, reset and with bindings cleared; NULL on error (err set). */
sqlite3_stmt *store_stmt(struct dbconn *c, enum stmt_id id, struct aupd_error *err);

/*
 * A statement for an SQL string literal, prepared on first use and kept on
 * the connection (keyed by the literal's address), reset and with bindings
 * cleared.  Reset it when done; never finalize it.  NULL with `err`.
 */
sqlite3_stmt *store_cached(struct dbconn *c, const char *sql, struct aupd_error *err);

/* Runs SQL without results; -1 with err ("context: sqlite message"). */
int store_exec(struct dbconn *c, const char *sql, struct aupd_error *err);
/* Fills err from the connection's last error, prefixed by `what`. */
int store_fail(struct dbconn *c, struct aupd_error *err, const char *what);

int store_begin_immediate(struct dbconn *c, struct aupd_error *err);
int store_commit(struct dbconn *c, struct aupd_error *err);
void store_rollback(struct dbconn *c);

/* meta table: a small key/value store.  get returns a malloc'd string or NULL. */
char *store_meta_get(struct dbconn *c, const char *key);
int store_meta_set(struct dbconn *c, const char *key, const char *value, struct aupd_error *err);

/* 64-bit idempotency key of (tenant, id): the first 8 bytes of SHA-256(tenant NUL id). */
int64_t store_event_key(const char *tenant, const char *id);

/* A fixed-size pool of read-only connections shared by request threads. */
struct store_pool;
struct store_pool *store_pool_new(const char *path, unsigned size, struct aupd_error *err);
/* Blocks until a connection is free. */
struct dbconn *store_pool_get(struct store_pool *p);
void store_pool_put(struct store_pool *p, struct dbconn *c);
void store_pool_free(struct store_pool *p);

#endif
