/* sqlite_baseline.c - the baseline: raw SQLite inserts of aupd's own rows, same schema, same fsyncs */
#include "aupd/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Copies the verdict records an aupd run stored (ledger rows, their events
 * index rows, verdict_rules rows and the obligations they opened that were
 * still open) into memory, then inserts them into a
 * fresh database made by the same schema code (WAL, synchronous=FULL), in
 * transactions of BATCH events: what SQLite alone costs for exactly the rows
 * aupd writes, without judging, encoding or hashing.
 */

struct row {
	int64_t seq, key, time_ev, time_rec;
	int verdict;
	char *tenant, *id, *actor, *action, *kind;
	void *body, *hash;
	int body_len, hash_len;
	char **rules;
	int n_rules;
	struct obl *obls;
	int n_obls;
};

struct obl {
	char *rule, *resource, *opened_by;
	int64_t deadline;
	int effect, severity, shadow;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
dup_blob(const void *p, int n)
{
	void *q = xmalloc((size_t)n + 1);

	memcpy(q, p, (size_t)n);
	return q;
}

/*
 * The row with `seq`, looked for from rows[*j] on (a merge of two lists
 * ordered by seq: *j only moves forward), or NULL when no row has it.
 */
static struct row *
row_of_seq(struct row *rows, long n, long *j, int64_t seq)
{
	while (*j < n && rows[*j].seq < seq)
		(*j)++;
	return *j < n && rows[*j].seq == seq ? &rows[*j] : NULL;
}

int
main(int argc, char **argv)
{
	struct aupd_error err;
	struct dbconn *src, *dst;
	sqlite3_stmt *sel, *rules, *obls, *ins_l, *ins_e, *ins_r, *ins_o;
	struct row *rows;
	long want, batch, passes = 1, n = 0, rule_rows = 0, obl_rows = 0;
	double t0, t1, first = 0;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: sqlite_baseline FROM.db TO.db ROWS BATCH [PASSES]\n");
		return 2;
	}
	want = atol(argv[3]);
	batch = atol(argv[4]);
	if (argc == 6)
		passes = atol(argv[5]);
	if (want <= 0 || batch <= 0 || passes <= 0)
		return 2;
	if (!(src = store_open(argv[1], STORE_READONLY, &err))) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	rows = xcalloc((size_t)want, sizeof(*rows));
	sqlite3_prepare_v2(src->db,
			   "SELECT l.seq, l.kind, l.tenant, l.time, l.body, l.hash, e.key, e.id, "
			   "e.actor, e.action, e.verdict, e.time FROM ledger l JOIN events e ON "
			   "e.seq = l.seq ORDER BY l.seq LIMIT ?",
			   -1, &sel, NULL);
	/* one ordered pass over the rule matches (keyed by seq), merged with the rows */
	sqlite3_prepare_v2(src->db, "SELECT seq, rule FROM verdict_rules WHERE seq <= ? ORDER BY seq",
			   -1, &rules, NULL);
	sqlite3_bind_int64(sel, 1, want);
	while (n < want && sqlite3_step(sel) == SQLITE_ROW) {
		struct row *r = &rows[n++];

		r->seq = sqlite3_column_int64(sel, 0);
		r->kind = xstrdup((const char *)sqlite3_column_text(sel, 1));
		r->tenant = xstrdup((const char *)sqlite3_column_text(sel, 2));
		r->time_rec = sqlite3_column_int64(sel, 3);
		r->body_len = sqlite3_column_bytes(sel, 4);
		r->body = dup_blob(sqlite3_column_blob(sel, 4), r->body_len);
		r->hash_len = sqlite3_column_bytes(sel, 5);
		r->hash = dup_blob(sqlite3_column_blob(sel, 5), r->hash_len);
		r->key = sqlite3_column_int64(sel, 6);
		r->id = xstrdup((const char *)sqlite3_column_text(sel, 7));
		r->actor = xstrdup((const char *)sqlite3_column_text(sel, 8));
		r->action = xstrdup((const char *)sqlite3_column_text(sel, 9));
		r->verdict = sqlite3_column_int(sel, 10);
		r->time_ev = sqlite3_column_int64(sel, 11);
	}
	sqlite3_finalize(sel);
	if (n) {
		long j = 0;

		sqlite3_bind_int64(rules, 1, rows[n - 1].seq);
		while (sqlite3_step(rules) == SQLITE_ROW) {
			struct row *r = row_of_seq(rows, n, &j, sqlite3_column_int64(rules, 0));

			if (!r)
				continue;
			r->rules = xrealloc(r->rules, (size_t)(r->n_rules + 1) * sizeof(char *));
			r->rules[r->n_rules++] = xstrdup((const char *)sqlite3_column_text(rules, 1));
			rule_rows++;
		}
	}
	sqlite3_finalize(rules);
	sqlite3_prepare_v2(src->db,
			   "SELECT opened_seq, rule, resource, opened_by, deadline, effect, severity, "
			   "shadow FROM obligations WHERE opened_seq <= ? ORDER BY opened_seq",
			   -1, &obls, NULL);
	if (n) {
		long j = 0;

		sqlite3_bind_int64(obls, 1, rows[n - 1].seq);
		while (sqlite3_step(obls) == SQLITE_ROW) {
			struct row *r = row_of_seq(rows, n, &j, sqlite3_column_int64(obls, 0));
			struct obl *o;

			if (!r)
				continue;
			r->obls = xrealloc(r->obls, (size_t)(r->n_obls + 1) * sizeof(*r->obls));
			o = &r->obls[r->n_obls++];
			o->rule = xstrdup((const char *)sqlite3_column_text(obls, 1));
			o->resource = xstrdup((const char *)sqlite3_column_text(obls, 2));
			o->opened_by = xstrdup((const char *)sqlite3_column_text(obls, 3));
			o->deadline = sqlite3_column_int64(obls, 4);
			o->effect = sqlite3_column_int(obls, 5);
			o->severity = sqlite3_column_int(obls, 6);
			o->shadow = sqlite3_column_int(obls, 7);
			obl_rows++;
		}
	}
	sqlite3_finalize(obls);
	store_close(src);
	if (n == 0) {
		fprintf(stderr, "sqlite_baseline: no verdict records in %s\n", argv[1]);
		return 1;
	}
	unlink(argv[2]);
	if (!(dst = store_open(argv[2], STORE_CREATE, &err))) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	store_exec(dst, "PRAGMA cache_size = -32768", &err); /* as aupd's writer */
	sqlite3_prepare_v2(dst->db,
			   "INSERT INTO ledger (seq, kind, tenant, time, body, hash) "
			   "VALUES (?, ?, ?, ?, ?, ?)",
			   -1, &ins_l, NULL);
	sqlite3_prepare_v2(dst->db,
			   "INSERT INTO events (seq, key, tenant, id, actor, action, verdict, time) "
			   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			   -1, &ins_e, NULL);
	sqlite3_prepare_v2(dst->db,
			   "INSERT OR IGNORE INTO verdict_rules (rule, tenant, seq) VALUES (?, ?, ?)", -1,
			   &ins_r, NULL);
	sqlite3_prepare_v2(dst->db,
			   "INSERT INTO obligations (opened_seq, rule, tenant, resource, deadline, "
			   "opened_by, effect, severity, shadow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   -1, &ins_o, NULL);
	/*
	 * With PASSES > 1 the same rows go in again and again, their sequence
	 * numbers moved past the last pass's: the database grows by ROWS records
	 * a pass, and each pass's rate shows what SQLite alone loses as it grows.
	 */
	for (long pass = 0; pass < passes; pass++) {
		int64_t off = pass * rows[n - 1].seq;

		t0 = now_s();
		for (long i = 0; i < n; i += batch) {
			store_exec(dst, "BEGIN IMMEDIATE", &err);
			for (long j = i; j < n && j < i + batch; j++) {
				struct row *r = &rows[j];

				sqlite3_bind_int64(ins_l, 1, r->seq + off);
				sqlite3_bind_text(ins_l, 2, r->kind, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins_l, 3, r->tenant, -1, SQLITE_STATIC);
				sqlite3_bind_int64(ins_l, 4, r->time_rec);
				sqlite3_bind_blob(ins_l, 5, r->body, r->body_len, SQLITE_STATIC);
				sqlite3_bind_blob(ins_l, 6, r->hash, r->hash_len, SQLITE_STATIC);
				sqlite3_step(ins_l);
				sqlite3_reset(ins_l);
				sqlite3_bind_int64(ins_e, 1, r->seq + off);
				sqlite3_bind_int64(ins_e, 2, r->key);
				sqlite3_bind_text(ins_e, 3, r->tenant, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins_e, 4, r->id, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins_e, 5, r->actor, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins_e, 6, r->action, -1, SQLITE_STATIC);
				sqlite3_bind_int(ins_e, 7, r->verdict);
				sqlite3_bind_int64(ins_e, 8, r->time_ev);
				sqlite3_step(ins_e);
				sqlite3_reset(ins_e);
				for (int k = 0; k < r->n_rules; k++) {
					sqlite3_bind_text(ins_r, 1, r->rules[k], -1, SQLITE_STATIC);
					sqlite3_bind_text(ins_r, 2, r->tenant, -1, SQLITE_STATIC);
					sqlite3_bind_int64(ins_r, 3, r->seq + off);
					sqlite3_step(ins_r);
					sqlite3_reset(ins_r);
				}
				for (int k = 0; k < r->n_obls; k++) {
					const struct obl *o = &r->obls[k];

					sqlite3_bind_int64(ins_o, 1, r->seq + off);
					sqlite3_bind_text(ins_o, 2, o->rule, -1, SQLITE_STATIC);
					sqlite3_bind_text(ins_o, 3, r->tenant, -1, SQLITE_STATIC);
					sqlite3_bind_text(ins_o, 4, o->resource, -1, SQLITE_STATIC);
					sqlite3_bind_int64(ins_o, 5, o->deadline);
					sqlite3_bind_text(ins_o, 6, o->opened_by, -1, SQLITE_STATIC);
					sqlite3_bind_int(ins_o, 7, o->effect);
					sqlite3_bind_int(ins_o, 8, o->severity);
					sqlite3_bind_int(ins_o, 9, o->shadow);
					sqlite3_step(ins_o);
					sqlite3_reset(ins_o);
				}
			}
			if (store_exec(dst, "COMMIT", &err) < 0) {
				fprintf(stderr, "%s\n", err.msg);
				return 1;
			}
		}
		t1 = now_s();
		if (pass == 0) {
			first = (double)n / (t1 - t0);
			printf("sqlite baseline: %ld events (%ld rule rows, %ld obligation rows) in "
			       "transactions of %ld: %.0f events/s, %.0f commits/s\n",
			       n, rule_rows, obl_rows, batch, first,
			       (double)((n + batch - 1) / batch) / (t1 - t0));
		} else {
			printf("sqlite baseline: pass %ld, %ld to %ld records: %.0f events/s (%.0f%% of "
			       "the first pass)\n",
			       pass + 1, pass * n, (pass + 1) * n, (double)n / (t1 - t0),
			       100.0 * (double)n / (t1 - t0) / first);
		}
		fflush(stdout);
	}
	sqlite3_finalize(ins_l);
	sqlite3_finalize(ins_e);
	sqlite3_finalize(ins_r);
	sqlite3_finalize(ins_o);
	store_close(dst);
	for (long i = 0; i < n; i++) {
		struct row *r = &rows[i];

		free(r->kind);
		free(r->tenant);
		free(r->body);
		free(r->hash);
		free(r->id);
		free(r->actor);
		free(r->action);
		for (int k = 0; k < r->n_rules; k++)
			free(r->rules[k]);
		free(r->rules);
		for (int k = 0; k < r->n_obls; k++) {
			free(r->obls[k].rule);
			free(r->obls[k].resource);
			free(r->obls[k].opened_by);
		}
		free(r->obls);
	}
	free(rows);
	return 0;
}
