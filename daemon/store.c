/* store.c - SQLite storage: schema and migrations, connections, prepared statements */
#include "aupd/store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUPD_APPLICATION_ID 0x61757064 /* "aupd" */

/*
 * Forward migrations: migrations[i] takes the schema from version i to i+1.
 * Never edit one that has shipped; append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1: the ledger, its checkpoints, the event index, tokens, obligations */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE ledger ("
	"  seq INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  tenant TEXT,"
	"  time INTEGER NOT NULL,"
	"  body BLOB NOT NULL,"
	"  hash BLOB NOT NULL);"
	"CREATE TABLE checkpoints ("
	"  seq INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  signature BLOB NOT NULL,"
	"  key_id TEXT NOT NULL);"
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY,"
	"  key INTEGER NOT NULL,"
	"  tenant TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  verdict INTEGER NOT NULL,"
	"  time INTEGER NOT NULL);"
	"CREATE INDEX events_key ON events (key);"
	"CREATE INDEX events_tenant ON events (tenant, seq);"
	"CREATE INDEX events_tenant_actor ON events (tenant, actor, seq);"
	"CREATE INDEX events_flagged ON events (verdict, seq) WHERE verdict > 0;"
	"CREATE TABLE verdict_rules ("
	"  rule TEXT NOT NULL,"
	"  tenant TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  PRIMARY KEY (rule, tenant, seq)) WITHOUT ROWID;"
	"CREATE INDEX verdict_rules_seq ON verdict_rules (rule, seq);"
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  role TEXT NOT NULL,"
	"  tenant TEXT,"
	"  hash BLOB NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL,"
	"  revoked INTEGER);"
	"CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked IS NULL;"
	"CREATE TABLE obligations ("
	"  rule TEXT NOT NULL,"
	"  tenant TEXT NOT NULL,"
	"  resource TEXT NOT NULL,"
	"  deadline INTEGER NOT NULL,"
	"  opened_by TEXT NOT NULL,"
	"  effect INTEGER NOT NULL,"
	"  severity INTEGER NOT NULL,"
	"  shadow INTEGER NOT NULL,"
	"  opened_seq INTEGER NOT NULL,"
	"  PRIMARY KEY (rule, tenant, resource)) WITHOUT ROWID;"
	"CREATE TABLE alerts ("
	"  id TEXT PRIMARY KEY,"
	"  escalation TEXT NOT NULL,"
	"  group_key TEXT NOT NULL,"
	"  grp TEXT NOT NULL,"
	"  tenant TEXT,"
	"  level TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  notify TEXT NOT NULL,"
	"  opened_seq INTEGER NOT NULL,"
	"  opened_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  first_time INTEGER NOT NULL,"
	"  last_time INTEGER NOT NULL,"
	"  cooldown_from INTEGER NOT NULL,"
	"  cooldown_until INTEGER NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  seqs TEXT NOT NULL,"
	"  last_seq INTEGER NOT NULL);"
	"CREATE INDEX alerts_group ON alerts (escalation, group_key, opened_seq);"
	"CREATE INDEX alerts_opened ON alerts (opened_seq);"
	"CREATE TABLE alert_history ("
	"  alert_id TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  token TEXT,"
	"  note TEXT,"
	"  PRIMARY KEY (alert_id, seq)) WITHOUT ROWID;"
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  delivery TEXT NOT NULL UNIQUE,"
	"  alert_id TEXT NOT NULL,"
	"  notifier TEXT NOT NULL,"
	"  event TEXT NOT NULL,"
	"  body BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  last_status INTEGER,"
	"  delivered INTEGER);"
	"CREATE INDEX outbox_due ON outbox (next_attempt) WHERE delivered IS NULL;"
	"CREATE INDEX outbox_alert ON outbox (alert_id, id);",
	/*
	 * 1 -> 2: the idempotency index leaves the events table; keys of recent
	 * events stay in memory and reach event_keys in sorted bulk merges.
	 */
	"DROP INDEX events_key;"
	"CREATE TABLE event_keys ("
	"  key INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  PRIMARY KEY (key, seq)) WITHOUT ROWID;"
	"INSERT INTO event_keys (key, seq) SELECT key, seq FROM events WHERE key != 0 "
	"  ORDER BY key, seq;"
	"INSERT OR REPLACE INTO meta (key, value) "
	"  SELECT 'keys_merged_seq', coalesce(max(seq), 0) FROM events;",
	/*
	 * 2 -> 3: no (tenant, actor, seq) index.  Every commit dirtied one page
	 * of it per active actor; queries by tenant and actor now walk the
	 * tenant's index and test the actor.
	 */
	"DROP INDEX events_tenant_actor;",
	/*
	 * 3 -> 4: obligations keyed by the seq of the verdict that opened them
	 * (and the rule), so opening one appends instead of inserting at a
	 * random place in a (rule, tenant, resource) tree: half the events of a
	 * biometric stream open one.  The policy layer finds them by resource in
	 * memory and hands their seq back to close them.
	 */
	"CREATE TABLE obligations_by_seq ("
	"  opened_seq INTEGER NOT NULL,"
	"  rule TEXT NOT NULL,"
	"  tenant TEXT NOT NULL,"
	"  resource TEXT NOT NULL,"
	"  deadline INTEGER NOT NULL,"
	"  opened_by TEXT NOT NULL,"
	"  effect INTEGER NOT NULL,"
	"  severity INTEGER NOT NULL,"
	"  shadow INTEGER NOT NULL,"
	"  PRIMARY KEY (opened_seq, rule)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO obligations_by_seq SELECT opened_seq, rule, tenant, resource, "
	"  deadline, opened_by, effect, severity, shadow FROM obligations ORDER BY opened_seq, rule;"
	"DROP TABLE obligations;"
	"ALTER TABLE obligations_by_seq RENAME TO obligations;",
	/*
	 * 4 -> 5: no index keyed by tenant first.  With thousands of tenants
	 * every commit dirtied one leaf of (tenant, seq) and of (rule, tenant,
	 * seq) per tenant in it, anywhere in ever larger trees: raw SQLite lost
	 * half its insert rate by a million records.  Both now lead with the
	 * epoch, seq >> 14 (see STORE_EPOCH_SHIFT), and rule matches are keyed
	 * by seq, so inserts stay within the newest pages.
	 */
	"DROP INDEX events_tenant;"
	"CREATE INDEX events_tenant ON events (seq >> 14, tenant, seq);"
	"CREATE TABLE verdict_rules_by_seq ("
	"  seq INTEGER NOT NULL,"
	"  rule TEXT NOT NULL,"
	"  tenant TEXT NOT NULL,"
	"  PRIMARY KEY (seq, rule)) WITHOUT ROWID;"
	"INSERT INTO verdict_rules_by_seq (seq, rule, tenant) "
	"  SELECT seq, rule, tenant FROM verdict_rules ORDER BY seq, rule;"
	"DROP TABLE verdict_rules;"
	"ALTER TABLE verdict_rules_by_seq RENAME TO verdict_rules;"
	"CREATE INDEX verdict_rules_rule ON verdict_rules (rule, seq);"
	"CREATE INDEX verdict_rules_tenant ON verdict_rules (seq >> 14, rule, tenant, seq);",
};

_Static_assert(STORE_EPOCH_SHIFT == 14, "migration 4 -> 5 spells the epoch as seq >> 14");

static const char *const stmt_sql[ST_COUNT_] = {
	[ST_HEAD] = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
	[ST_LEDGER_INSERT] =
		"INSERT INTO ledger (seq, kind, tenant, time, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
	[ST_LEDGER_GET] = "SELECT seq, kind, tenant, time, body, hash FROM ledger WHERE seq = ?",
	[ST_LEDGER_RANGE] = "SELECT seq, kind, tenant, time, body, hash FROM ledger "
			    "WHERE seq >= ? ORDER BY seq",
	[ST_EVENT_INSERT] = "INSERT INTO events (seq, key, tenant, id, actor, action, verdict, time) "
			    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_RULE_INSERT] = "INSERT OR IGNORE INTO verdict_rules (rule, tenant, seq) VALUES (?, ?, ?)",
	[ST_CHECKPOINT_INSERT] = "INSERT INTO checkpoints (seq, hash, time, signature, key_id) "
				 "VALUES (?, ?, ?, ?, ?)",
	[ST_CHECKPOINT_LAST] = "SELECT seq, hash, time, signature, key_id FROM checkpoints "
			       "ORDER BY seq DESC LIMIT 1",
	[ST_TOKEN_BY_HASH] = "SELECT id, name, role, tenant, hash FROM tokens "
			     "WHERE hash = ? AND revoked IS NULL",
	[ST_OBLIGATION_OPEN] =
		"INSERT INTO obligations (opened_seq, rule, tenant, resource, deadline, opened_by, "
		"effect, severity, shadow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_OBLIGATION_CLOSE] = "DELETE FROM obligations WHERE opened_seq = ? AND rule = ?",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
};

int
store_fail(struct dbconn *c, struct aupd_error *err, const char *what)
{
	int code = c->db ? sqlite3_errcode(c->db) & 0xff : 0;

	aupd_error_set(err, "%s: %s: %s", c->path, what, c->db ? sqlite3_errmsg(c->db) : "");
	if (err)
		err->temporary = code == SQLITE_BUSY || code == SQLITE_LOCKED;
	return -1;
}

int
store_exec(struct dbconn *c, const char *sql, struct aupd_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		aupd_error_set(err, "%s: %s", c->path, msg ? msg : sqlite3_errmsg(c->db));
		if (err)
			err->temporary = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

sqlite3_stmt *
store_stmt(struct dbconn *c, enum stmt_id id, struct aupd_error *err)
{
	sqlite3_stmt *st = c->stmts[id];

	if (!st) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &c->stmts[id], NULL) != SQLITE_OK) {
			store_fail(c, err, "cannot prepare a statement");
			return NULL;
		}
		return c->stmts[id];
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

sqlite3_stmt *
store_cached(struct dbconn *c, const char *sql, struct aupd_error *err)
{
	for (size_t i = 0; i < c->n_cache; i++) {
		if (c->cache[i].sql == sql) {
			sqlite3_reset(c->cache[i].st);
			sqlite3_clear_bindings(c->cache[i].st);
			return c->cache[i].st;
		}
	}
	if (c->n_cache == STORE_CACHE) {
		aupd_error_set(err, "%s: more than %d cached statements", c->path, STORE_CACHE);
		return NULL;
	}
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->cache[c->n_cache].st,
			       NULL) != SQLITE_OK) {
		store_fail(c, err, "cannot prepare a statement");
		return NULL;
	}
	c->cache[c->n_cache].sql = sql;
	return c->cache[c->n_cache++].st;
}

int
store_begin_immediate(struct dbconn *c, struct aupd_error *err)
{
	return store_exec(c, "BEGIN IMMEDIATE", err);
}

int
store_commit(struct dbconn *c, struct aupd_error *err)
{
	return store_exec(c, "COMMIT", err);
}

void
store_rollback(struct dbconn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
pragma_int(struct dbconn *c, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int migrate_locked(struct dbconn *c, int target, struct aupd_error *err);

static int
migrate(struct dbconn *c, int target, struct aupd_error *err)
{
	int version, app_id, tables, rc;

	if (pragma_int(c, "PRAGMA user_version", &version) < 0 ||
	    pragma_int(c, "PRAGMA application_id", &app_id) < 0 ||
	    pragma_int(c, "SELECT count(*) FROM sqlite_master", &tables) < 0)
		return store_fail(c, err, "cannot read the schema (not a database, or corrupt?)");
	if (app_id != AUPD_APPLICATION_ID && (app_id != 0 || tables > 0)) {
		aupd_error_set(err, "%s is not an aupd database", c->path);
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION) {
		aupd_error_set(err,
			       "%s has schema version %d, newer than this aupd (%d): upgrade aupd",
			       c->path, version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version >= target)
		return 0;
	if (c->readonly) {
		aupd_error_set(err, "%s has schema version %d; start aupd serve once to migrate it",
			       c->path, version);
		return -1;
	}
	/*
	 * A migration may sort millions of rows (CREATE INDEX, INSERT ... ORDER
	 * BY): let the sorter spill to temporary files (SQLITE_TMPDIR, TMPDIR or
	 * /var/tmp) instead of holding it all in memory, as the connection's
	 * temp_store = MEMORY would.
	 */
	if (store_exec(c, "PRAGMA temp_store = FILE", err) < 0)
		return -1;
	rc = migrate_locked(c, target, err);
	if (store_exec(c, "PRAGMA temp_store = MEMORY", rc < 0 ? NULL : err) < 0)
		rc = -1;
	return rc;
}

static int
migrate_locked(struct dbconn *c, int target, struct aupd_error *err)
{
	int version;

	if (store_begin_immediate(c, err) < 0)
		return -1;
	/* re-read inside the write lock: another process may have migrated meanwhile */
	if (pragma_int(c, "PRAGMA user_version", &version) < 0)
		goto err_rollback;
	for (int v = version; v < target; v++) {
		char sql[64];

		if (store_exec(c, migrations[v], err) < 0)
			goto err_rollback_quiet;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(c, sql, err) < 0)
			goto err_rollback_quiet;
	}
	if (store_exec(c, "PRAGMA application_id = 1635086436", err) < 0 ||
	    store_commit(c, err) < 0)
		goto err_rollback_quiet;
	return 0;

err_rollback:
	store_fail(c, err, "cannot migrate the schema");
err_rollback_quiet:
	store_rollback(c);
	return -1;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Before opening an existing file for writing: is it an SQLite database,
 * and is it as long as its header says?  Opening a damaged file read-write
 * could let SQLite change it further (a checkpoint on close, a size hint).
 */
static int
precheck(const char *path, struct aupd_error *err)
{
	unsigned char h[100];
	struct stat st, wst;
	uint64_t page, pages;
	bool has_wal;
	char *wal;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0; /* absent: created below, or reported by SQLite */
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n < (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
		aupd_error_set(err, "%s is not an SQLite database, or its header is damaged; see "
				    "docs/operations.md (recovery)",
			       path);
		return -1;
	}
	page = (uint64_t)h[16] << 8 | h[17];
	if (page == 1)
		page = 65536;
	pages = be32(h + 28);
	/*
	 * With a WAL beside it, a checkpoint cut short by a crash may have written
	 * the new header before the pages it counts: the WAL still holds them, and
	 * SQLite's recovery finishes the job.  Only a file without one is judged.
	 */
	wal = xasprintf("%s-wal", path);
	has_wal = stat(wal, &wst) == 0 && wst.st_size > 0;
	free(wal);
	if (!has_wal && pages && be32(h + 24) == be32(h + 92) &&
	    (uint64_t)st.st_size < pages * page) {
		aupd_error_set(err,
			       "%s is truncated: %lld bytes, where its header says %llu; the file "
			       "was left as it is; see docs/operations.md (recovery)",
			       path, (long long)st.st_size, (unsigned long long)(pages * page));
		return -1;
	}
	return 0;
}

/* No WAL beside the file, and its directory cannot be written to. */
static bool
read_only_media(const char *path)
{
	char *wal = xasprintf("%s-wal", path), *dir = xstrdup(path), *slash = strrchr(dir, '/');
	bool ro;

	if (slash)
		*slash = '\0';
	ro = access(wal, F_OK) < 0 && access(slash ? dir : ".", W_OK) < 0;
	free(wal);
	free(dir);
	return ro;
}

int
store_migrate_to(struct dbconn *c, int version, struct aupd_error *err)
{
	return migrate(c, version, err);
}

struct dbconn *
store_open(const char *path, unsigned flags, struct aupd_error *err)
{
	struct dbconn *c = xcalloc(1, sizeof(*c));
	int oflags = SQLITE_OPEN_NOMUTEX;

	store_pcache_install();
	store_walbuf_install();
	c->path = xstrdup(path);
	c->readonly = flags & STORE_READONLY;
	if (c->readonly) {
		oflags |= SQLITE_OPEN_READONLY;
		if (access(path, F_OK) < 0) {
			aupd_error_set(err, "cannot open %s: %s", path, strerror(errno));
			goto err_free;
		}
	} else {
		oflags |= SQLITE_OPEN_READWRITE;
		/*
		 * Only the process's first connection may open() the file itself:
		 * closing any descriptor of a file drops every POSIX lock this
		 * process holds on it, SQLite's included (and another process could
		 * then take the WAL for abandoned and delete it).
		 */
		if ((flags & STORE_CREATE) && precheck(path, err) < 0)
			goto err_free;
		if (flags & STORE_CREATE) {
			/* create it ourselves so it is 0600 from the first byte */
			int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

			if (fd < 0) {
				aupd_error_set(err, "cannot create %s: %s", path, strerror(errno));
				goto err_free;
			}
			close(fd);
		}
	}
	if (c->readonly && read_only_media(path)) {
		/*
		 * A read-only copy (a mounted backup, a snapshot) without a WAL:
		 * SQLite could not create its shared-memory file beside it, and
		 * nothing can change the file, so it is opened as immutable.
		 */
		char *uri = xasprintf("file:%s?immutable=1", path);
		int rc = sqlite3_open_v2(uri, &c->db, oflags | SQLITE_OPEN_URI, NULL);

		free(uri);
		if (rc != SQLITE_OK) {
			store_fail(c, err, "cannot open the database");
			goto err_free;
		}
	} else if (sqlite3_open_v2(path, &c->db, oflags, NULL) != SQLITE_OK) {
		store_fail(c, err, "cannot open the database");
		goto err_free;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 5000);
	if (!c->readonly) {
		if (store_exec(c, "PRAGMA journal_mode = WAL", err) < 0)
			goto err_free;
		if (store_exec(c, "PRAGMA synchronous = FULL", err) < 0)
			goto err_free;
	}
	if (store_exec(c, "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY", err) < 0)
		goto err_free;
	if (!(flags & STORE_NO_MIGRATE) && migrate(c, STORE_SCHEMA_VERSION, err) < 0)
		goto err_free;
	return c;

err_free:
	store_close(c);
	return NULL;
}

const char *
store_path(const struct dbconn *c)
{
	const char *p = sqlite3_db_filename(c->db, "main");

	return p ? p : "";
}

void
store_close(struct dbconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(c->stmts[i]);
	for (size_t i = 0; i < c->n_cache; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close_v2(c->db);
	free(c->path);
	free(c);
}

char *
store_meta_get(struct dbconn *c, const char *key)
{
	sqlite3_stmt *st = store_stmt(c, ST_META_GET, NULL);
	char *v = NULL;

	if (!st)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return v;
}

int
store_meta_set(struct dbconn *c, const char *key, const char *value, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(c, ST_META_SET, err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot write meta");
	return 0;
}

int64_t
store_event_key(const char *tenant, const char *id)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t k = 0;

	/* the tenant, its terminating NUL, the id */
	aupd_sha256(tenant, strlen(tenant) + 1, id, strlen(id), md);
	for (int i = 0; i < 8; i++)
		k = k << 8 | md[i];
	return (int64_t)k;
}

struct store_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dbconn **free;
	unsigned n_free;
	unsigned size;
};

struct store_pool *
store_pool_new(const char *path, unsigned size, struct aupd_error *err)
{
	struct store_pool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->free = xcalloc(size, sizeof(*p->free));
	p->size = size;
	for (unsigned i = 0; i < size; i++) {
		struct dbconn *c = store_open(path, STORE_READONLY, err);

		if (!c) {
			store_pool_free(p);
			return NULL;
		}
		p->free[p->n_free++] = c;
	}
	return p;
}

struct dbconn *
store_pool_get(struct store_pool *p)
{
	struct dbconn *c;

	pthread_mutex_lock(&p->mu);
	while (p->n_free == 0)
		pthread_cond_wait(&p->cv, &p->mu);
	c = p->free[--p->n_free];
	pthread_mutex_unlock(&p->mu);
	return c;
}

void
store_pool_put(struct store_pool *p, struct dbconn *c)
{
	pthread_mutex_lock(&p->mu);
	p->free[p->n_free++] = c;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
store_pool_free(struct store_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_free; i++)
		store_close(p->free[i]);
	free(p->free);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
