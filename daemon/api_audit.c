/* api_audit.c - GET /v1/audit/head and GET /v1/audit/log (the ledger for outside verifiers) */
#include "aupd/api.h"
#include "aupd/log.h"

#include <stdlib.h>
#include <string.h>

static void
add_hex(struct strbuf *sb, const void *bytes, size_t len)
{
	char hex[2 * 64 + 1];

	if (len > 64)
		len = 64;
	hex_encode(bytes, len, hex);
	sb_addc(sb, '"');
	sb_adds(sb, hex);
	sb_addc(sb, '"');
}

/* {"seq", "hash", "time", "time_us", "signature", "key_id" of a checkpoint row; unclosed. */
static void
add_checkpoint(struct strbuf *sb, sqlite3_stmt *st, int col)
{
	char ts[40];

	time_format_us(sqlite3_column_int64(st, col + 2), ts, sizeof(ts));
	sb_addf(sb, "{\"seq\":%lld,\"hash\":", (long long)sqlite3_column_int64(st, col));
	add_hex(sb, sqlite3_column_blob(st, col + 1), (size_t)sqlite3_column_bytes(st, col + 1));
	sb_addf(sb, ",\"time\":\"%s\",\"time_us\":%lld,\"signature\":", ts,
		(long long)sqlite3_column_int64(st, col + 2));
	add_hex(sb, sqlite3_column_blob(st, col + 3), (size_t)sqlite3_column_bytes(st, col + 3));
	sb_adds(sb, ",\"key_id\":");
	json_quote(sb, (const char *)sqlite3_column_text(st, col + 4));
}

void
api_get_audit_head(struct http_req *req)
{
	struct app *app = app_of(req);
	struct dbconn *c = store_pool_get(app->pool);
	struct ledger_head h;
	struct aupd_error err;
	sqlite3_stmt *st;
	struct strbuf sb;
	char *body;
	size_t len;

	sb_init(&sb);
	/* one read transaction: the head and the checkpoint come from the same snapshot */
	if (store_exec(c, "BEGIN", &err) < 0 || ledger_head_read(c, &h, &err) < 0 ||
	    !(st = store_stmt(c, ST_CHECKPOINT_LAST, &err))) {
		store_exec(c, "ROLLBACK", &err);
		store_pool_put(app->pool, c);
		sb_free(&sb);
		log_err("audit head: %s", err.msg);
		http_problem(req, 503, "storage-unavailable", NULL, "cannot read the ledger");
		return;
	}
	sb_addf(&sb, "{\"seq\":%lld,\"hash\":", (long long)h.seq);
	add_hex(&sb, h.hash, LEDGER_HASH_LEN);
	sb_adds(&sb, ",\"checkpoint\":");
	if (sqlite3_step(st) == SQLITE_ROW) {
		add_checkpoint(&sb, st, 0);
		/* the public key itself, so the answer is self-describing */
		sb_adds(&sb, ",\"key\":");
		json_quote(&sb, app->key.pub_pem);
		sb_addc(&sb, '}');
	} else {
		sb_adds(&sb, "null");
	}
	sqlite3_reset(st);
	store_exec(c, "COMMIT", &err);
	store_pool_put(app->pool, c);
	sb_adds(&sb, "}\n");
	body = sb_detach(&sb, &len);
	http_respond_take(req, 200, "application/json", body, len);
}

/* ---- the log, streamed: one read snapshot, rows turned into lines as the client reads ---- */

struct log_stream {
	struct dbconn *db;
	sqlite3_stmt *rec;
	sqlite3_stmt *cps;
	bool cp_pending; /* cps holds a row not yet written */
	bool cps_done;
	bool rec_done;
	bool scoped;
	char tenant[132];
	struct strbuf line;
	size_t off; /* bytes of `line` already sent */
};

static void
log_stream_free(void *p)
{
	struct log_stream *ls = p;

	sqlite3_finalize(ls->rec);
	sqlite3_finalize(ls->cps);
	if (ls->db)
		sqlite3_exec(ls->db->db, "COMMIT", NULL, NULL, NULL);
	store_close(ls->db);
	sb_free(&ls->line);
	free(ls);
}

static void
next_checkpoint(struct log_stream *ls)
{
	if (ls->cps_done || ls->cp_pending)
		return;
	if (sqlite3_step(ls->cps) == SQLITE_ROW)
		ls->cp_pending = true;
	else
		ls->cps_done = true;
}

/* Fills ls->line with the next line(s); false at the end. */
static bool
next_lines(struct log_stream *ls)
{
	sqlite3_stmt *st = ls->rec;
	const char *tenant;
	int64_t seq;
	char ts[40];

	sb_reset(&ls->line);
	ls->off = 0;
	if (ls->rec_done)
		return false;
	if (sqlite3_step(st) != SQLITE_ROW) {
		ls->rec_done = true;
		return false;
	}
	seq = sqlite3_column_int64(st, 0);
	tenant = (const char *)sqlite3_column_text(st, 2);
	if (ls->scoped && (!tenant || strcmp(tenant, ls->tenant) != 0)) {
		/* another tenant's record: only what the chain needs */
		sb_addf(&ls->line, "{\"seq\":%lld,\"hash\":", (long long)seq);
		add_hex(&ls->line, sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5));
		sb_adds(&ls->line, ",\"redacted\":true}\n");
	} else {
		time_format_us(sqlite3_column_int64(st, 3), ts, sizeof(ts));
		sb_addf(&ls->line, "{\"seq\":%lld,\"kind\":", (long long)seq);
		json_quote(&ls->line, (const char *)sqlite3_column_text(st, 1));
		sb_adds(&ls->line, ",\"tenant\":");
		if (tenant)
			json_quote(&ls->line, tenant);
		else
			sb_adds(&ls->line, "null");
		sb_addf(&ls->line, ",\"time\":\"%s\",\"time_us\":%lld,\"hash\":", ts,
			(long long)sqlite3_column_int64(st, 3));
		add_hex(&ls->line, sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5));
		sb_adds(&ls->line, ",\"body\":");
		{
			char *text = xstrndup(sqlite3_column_blob(st, 4),
					      (size_t)sqlite3_column_bytes(st, 4));

			json_quote(&ls->line, text);
			free(text);
		}
		sb_adds(&ls->line, "}\n");
	}
	next_checkpoint(ls);
	while (ls->cp_pending && sqlite3_column_int64(ls->cps, 0) <= seq) {
		if (sqlite3_column_int64(ls->cps, 0) == seq) {
			sb_adds(&ls->line, "{\"checkpoint\":");
			add_checkpoint(&ls->line, ls->cps, 0);
			sb_adds(&ls->line, "}}\n");
		}
		ls->cp_pending = false;
		next_checkpoint(ls);
	}
	return true;
}

static long
log_fill(void *state, char *buf, size_t max)
{
	struct log_stream *ls = state;
	size_t n = 0;

	while (n < max) {
		if (ls->off == ls->line.len && !next_lines(ls))
			break;
		size_t k = ls->line.len - ls->off;

		if (k > max - n)
			k = max - n;
		memcpy(buf + n, ls->line.buf + ls->off, k);
		ls->off += k;
		n += k;
	}
	return (long)n;
}

static int
query_seq(struct http_req *req, const char *name, int64_t dflt, int64_t *out)
{
	const char *v = http_query(req, name);

	if (!v) {
		*out = dflt;
		return 0;
	}
	if (parse_i64(v, 1, INT64_MAX, out) < 0) {
		http_problem(req, 400, "bad-query", NULL, "%s must be a record seq (1 or more), not '%s'",
			     name, v);
		return -1;
	}
	return 0;
}

void
api_get_audit_log(struct http_req *req)
{
	struct app *app = app_of(req);
	const struct principal *who = http_principal(req);
	struct log_stream *ls;
	struct aupd_error err;
	struct ledger_head h;
	unsigned char prev[LEDGER_HASH_LEN] = {0};
	int64_t from, to;
	sqlite3_stmt *st;

	if (!api_check_query(req, (const char *[]){"from", "to", NULL}))
		return;
	if (query_seq(req, "from", 1, &from) < 0 || query_seq(req, "to", INT64_MAX, &to) < 0)
		return;
	if (to < from) {
		http_problem(req, 400, "bad-query", NULL, "to (%lld) is before from (%lld)",
			     (long long)to, (long long)from);
		return;
	}
	ls = xcalloc(1, sizeof(*ls));
	sb_init(&ls->line);
	ls->scoped = who->tenant_bound;
	snprintf(ls->tenant, sizeof(ls->tenant), "%s", who->tenant);
	/* its own connection: the stream holds one read snapshot for as long as it runs */
	ls->db = store_open(app->db_path, STORE_READONLY | STORE_NO_MIGRATE, &err);
	if (!ls->db || store_exec(ls->db, "BEGIN", &err) < 0 ||
	    ledger_head_read(ls->db, &h, &err) < 0)
		goto err_db;
	if (from > h.seq + 1) {
		log_stream_free(ls);
		http_problem(req, 400, "bad-query", NULL,
			     "from (%lld) is past the last record (%lld); from = %lld gives the "
			     "empty tail to poll",
			     (long long)from, (long long)h.seq, (long long)(h.seq + 1));
		return;
	}
	if (to > h.seq)
		to = h.seq;
	if (from > 1) {
		if (sqlite3_prepare_v2(ls->db->db, "SELECT hash FROM ledger WHERE seq = ?", -1, &st,
				       NULL) != SQLITE_OK) {
			store_fail(ls->db, &err, "cannot read the ledger");
			goto err_db;
		}
		sqlite3_bind_int64(st, 1, from - 1);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == LEDGER_HASH_LEN)
			memcpy(prev, sqlite3_column_blob(st, 0), LEDGER_HASH_LEN);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(ls->db->db,
			       "SELECT seq, kind, tenant, time, body, hash FROM ledger "
			       "WHERE seq BETWEEN ? AND ? ORDER BY seq",
			       -1, &ls->rec, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ls->db->db,
			       "SELECT seq, hash, time, signature, key_id FROM checkpoints "
			       "WHERE seq BETWEEN ? AND ? ORDER BY seq",
			       -1, &ls->cps, NULL) != SQLITE_OK) {
		store_fail(ls->db, &err, "cannot read the ledger");
		goto err_db;
	}
	sqlite3_bind_int64(ls->rec, 1, from);
	sqlite3_bind_int64(ls->rec, 2, to);
	sqlite3_bind_int64(ls->cps, 1, from);
	sqlite3_bind_int64(ls->cps, 2, to);
	/* the first line says where the stretch starts and which key signs it */
	sb_addf(&ls->line, "{\"log\":{\"from\":%lld,\"to\":%lld,\"prev_hash\":", (long long)from,
		(long long)to);
	add_hex(&ls->line, prev, LEDGER_HASH_LEN);
	sb_adds(&ls->line, ",\"key_id\":");
	json_quote(&ls->line, app->key.key_id);
	sb_adds(&ls->line, ",\"key\":");
	json_quote(&ls->line, app->key.pub_pem);
	sb_addf(&ls->line, ",\"redacted\":%s}}\n", ls->scoped ? "true" : "false");
	http_respond_stream(req, 200, "application/x-ndjson", log_fill, ls, log_stream_free);
	return;

err_db:
	log_err("audit log: %s", err.msg);
	log_stream_free(ls);
	http_problem(req, 503, "storage-unavailable", NULL, "cannot read the ledger");
}
