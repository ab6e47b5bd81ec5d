/* writer.c - the sequencer: one thread that judges, sequences, hashes and group-commits */
#include "aupd/writer.h"
#include "aupd/alerts.h"
#include "aupd/eventkeys.h"
#include "aupd/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS_PER_COMMIT 20000
/*
 * The checkpointer copies WAL frames into the database as they come, but the
 * WAL file only starts over once a checkpoint completed before a write: under
 * continuous ingest that never happens by itself and the WAL grows without
 * end.  Past this many frames the writer itself completes a checkpoint
 * between two batches (most frames are copied already) and restarts the WAL.
 */
#define WAL_RESTART_FRAMES (64 * 1024)
/*
 * The checkpointer is woken whenever this many frames were added since it
 * last was (and once a second), so that it stays close behind the writer and
 * the restart above has little left to copy: a restart blocks ingest while
 * it runs: 40-60 ms when the checkpointer ran once a second, 2-9 ms when it
 * was woken every 1024 frames, which moved the p99 of single-event ingest
 * from 13-35 ms to 5-8 ms (bench/run).  Every 256 frames (a wake about every
 * 15 commits of single events), five A/B runs of single events gave p99
 * 3.6-4.9 ms against 4.8-11.4 ms at 1024, at the same throughput.
 */
#define WAL_WAKE_FRAMES 256
#define PROBE_INTERVAL_US (1 * AUPD_USEC)
#define TICK_US (500 * 1000)

struct writer {
	const struct config *cfg;
	const struct ledger_key *key;
	struct dbconn *db;

	pthread_t thread;
	pthread_t ckpt_thread;
	struct dbconn *ckpt_db;
	bool ckpt_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t ckpt_cv;
	struct writer_job *head, *tail;
	unsigned queued_events;
	bool stopping;
	bool stopped;

	/* rules: written by the writer thread under rules_mu, read by anyone */
	pthread_mutex_t rules_mu;
	struct ruleset *rules;
	aupd_time rules_loaded_at;

	/* writer-thread state */
	struct policy_state *state;
	struct eventkeys *keys; /* the idempotency index */
	bool state_dirty;
	int64_t last_cp_seq;
	int64_t last_cp_mono;
	atomic_bool healthy;
	int64_t next_probe_mono;
	int wal_frames; /* frames in the WAL after the last commit (wal hook) */
	int wal_woken;	/* wal_frames when the checkpointer was last woken */
	_Atomic int wal_copied; /* frames the checkpointer had copied when it last finished */
	struct strbuf body, doc, scratch;

	struct writer_stats stats;
	long long pending_verdicts[3]; /* overdue verdicts of the batch, counted on commit */
};

void
ingest_items_free(struct ingest_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		event_clear(&items[i].ev);
		free(items[i].verdict_doc);
	}
	free(items);
}

void
writer_job_free(struct writer_job *job)
{
	if (!job)
		return;
	ingest_items_free(job->items, job->n_items);
	free(job->rec_kind);
	free(job->rec_tenant);
	free(job->rec_members);
	ruleset_unref(job->rules);
	free(job->reason);
	free(job->alert_id);
	free(job->alert_action);
	free(job->note);
	free(job->token);
	free(job->scope_tenant);
	free(job->alert_doc);
	free(job->delivery_error);
	free(job->delivery_id);
	free(job);
}

struct ruleset *
writer_rules(struct writer *w)
{
	struct ruleset *rs;

	pthread_mutex_lock(&w->rules_mu);
	rs = ruleset_ref(w->rules);
	pthread_mutex_unlock(&w->rules_mu);
	return rs;
}

aupd_time
writer_rules_loaded_at(struct writer *w)
{
	aupd_time t;

	pthread_mutex_lock(&w->rules_mu);
	t = w->rules_loaded_at;
	pthread_mutex_unlock(&w->rules_mu);
	return t;
}

bool
writer_healthy(struct writer *w)
{
	return atomic_load(&w->healthy);
}

struct eventkeys *
writer_event_keys(struct writer *w)
{
	return w->keys;
}

struct writer_stats *
writer_stats(struct writer *w)
{
	return &w->stats;
}

unsigned
writer_queued(struct writer *w)
{
	unsigned n;

	pthread_mutex_lock(&w->mu);
	n = w->queued_events;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int
writer_submit(struct writer *w, struct writer_job *job, const char **why)
{
	unsigned n = job->kind == JOB_EVENTS ? (unsigned)job->n_items : 1;

	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		*why = "the daemon is shutting down";
		return -1;
	}
	if (job->kind == JOB_EVENTS && !atomic_load(&w->healthy)) {
		pthread_mutex_unlock(&w->mu);
		*why = "storage is not taking writes (disk full or I/O errors); retry later";
		return -1;
	}
	if (job->kind == JOB_EVENTS && w->queued_events + n > w->cfg->queue_events &&
	    w->queued_events > 0) {
		pthread_mutex_unlock(&w->mu);
		atomic_fetch_add(&w->stats.queue_full, 1);
		*why = "the write queue is full (limits.queue_events); retry shortly";
		return -1;
	}
	job->next = NULL;
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	w->queued_events += n;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* ---- records ---- */

static int
append_record(struct writer *w, struct ledger_head *h, const char *kind, const char *tenant,
	      aupd_time now, const char *members, struct aupd_error *err)
{
	return ledger_append_members(w->db, h, kind, tenant, now, members, &w->body, err);
}

/* A ledger record naming the ruleset in force, with its files' bytes (replay's source). */
static int
append_rules_record(struct writer *w, struct ledger_head *h, const struct ruleset *rs,
		    const char *reason, struct aupd_error *err)
{
	struct strbuf *m = &w->scratch;

	sb_reset(m);
	sb_adds(m, ",\"rules_version\":");
	json_quote(m, ruleset_version(rs));
	sb_adds(m, ",\"reason\":");
	json_quote(m, reason);
	sb_adds(m, ",\"files\":[");
	for (size_t i = 0; i < ruleset_n_files(rs); i++) {
		size_t len;
		const unsigned char *bytes = ruleset_file_bytes(rs, i, &len);
		char *text = xstrndup((const char *)bytes, len);

		sb_adds(m, i ? ",{\"path\":" : "{\"path\":");
		json_quote(m, ruleset_file_path(rs, i));
		sb_adds(m, ",\"content\":");
		json_quote(m, text);
		sb_addc(m, '}');
		free(text);
	}
	sb_adds(m, "]}");
	if (append_record(w, h, "rules", NULL, time_now(), m->buf, err) < 0)
		return -1;
	return store_meta_set(w->db, "rules_version", ruleset_version(rs), err);
}

/* The stored verdict of an earlier copy of an event, marked as a duplicate. */
static int
duplicate_doc(struct writer *w, int64_t seq, struct ingest_item *it, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(w->db, ST_LEDGER_GET, err);
	json_t *body = NULL, *verdict;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		body = json_loadb(sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4), 0,
				  NULL);
	sqlite3_reset(st);
	verdict = body ? json_object_get(body, "verdict") : NULL;
	if (!verdict) {
		json_decref(body);
		aupd_error_set(err, "%s: ledger record %lld for a stored event is unreadable",
			       w->db->path, (long long)seq);
		return -1;
	}
	json_object_set_new(verdict, "duplicate", json_true());
	it->verdict_doc = json_dumps(verdict, JSON_COMPACT);
	it->doc_len = strlen(it->verdict_doc);
	it->seq = seq;
	it->duplicate = true;
	json_decref(body);
	return 0;
}

/* 1 when (tenant, id) is stored (and it->... filled), 0 when new, -1 on error. */
static int
find_duplicate(struct writer *w, struct ingest_item *it, int64_t key, struct aupd_error *err)
{
	int64_t seq = eventkeys_find(w->keys, w->db, key, it->ev.tenant, it->ev.id, err);

	if (seq <= 0)
		return seq < 0 ? -1 : 0;
	return duplicate_doc(w, seq, it, err) < 0 ? -1 : 1;
}

static int
dump_to_sb(const char *buf, size_t size, void *data)
{
	sb_add(data, buf, size);
	return 0;
}

static int
store_obligations(struct writer *w, const struct verdict *v, int64_t seq, struct aupd_error *err)
{
	for (size_t i = 0; i < v->n_obligations; i++) {
		const struct obligation *o = &v->obligations[i];
		sqlite3_stmt *st = store_stmt(w->db, o->op == OBL_OPEN ? ST_OBLIGATION_OPEN
									: ST_OBLIGATION_CLOSE,
					      err);

		if (!st)
			return -1;
		/* opened by this verdict, or closed by it: the one opened at o->opened_seq */
		sqlite3_bind_int64(st, 1, o->op == OBL_OPEN ? seq : o->opened_seq);
		sqlite3_bind_text(st, 2, o->rule, -1, SQLITE_STATIC);
		if (o->op == OBL_OPEN) {
			sqlite3_bind_text(st, 3, o->tenant, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, o->resource_id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 5, o->deadline);
			sqlite3_bind_text(st, 6, o->opened_by ? o->opened_by : "", -1,
					  SQLITE_STATIC);
			sqlite3_bind_int(st, 7, o->effect);
			sqlite3_bind_int(st, 8, o->severity);
			sqlite3_bind_int(st, 9, o->shadow);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return store_fail(w->db, err, "cannot store an obligation");
		}
		sqlite3_reset(st);
	}
	return 0;
}

static int
index_verdict(struct writer *w, const struct event *ev, const struct verdict *v, int64_t seq,
	      int64_t key, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(w->db, ST_EVENT_INSERT, err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_text(st, 3, ev->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ev->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ev->action, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, v->verdict);
	sqlite3_bind_int64(st, 8, ev->time);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return store_fail(w->db, err, "cannot index a verdict");
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < v->n_matched; i++) {
		if (!(st = store_stmt(w->db, ST_RULE_INSERT, err)))
			return -1;
		sqlite3_bind_text(st, 1, v->matched[i].rule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, ev->tenant, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, seq);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return store_fail(w->db, err, "cannot index a verdict's rules");
		}
		sqlite3_reset(st);
	}
	return 0;
}

static struct alert_tx
alert_tx(struct writer *w, struct ledger_head *h)
{
	return (struct alert_tx){.db = w->db, .head = h, .scratch = &w->body,
				 .members = &w->scratch};
}

/* Feeds a recorded verdict to the escalations; a met threshold opens or updates an alert. */
static int
escalate(struct writer *w, struct ledger_head *h, const struct ruleset *rs,
	 const struct event *ev, const struct obligation *ob, const struct verdict *v,
	 int64_t seq, aupd_time t, struct aupd_error *err)
{
	struct escalation_hit *hits = NULL;
	size_t n = policy_escalate(rs, w->state, ev, ob, v, seq, t, 0, &hits);
	struct alert_tx tx = alert_tx(w, h);
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = alerts_on_hit(&tx, &hits[i], seq, t, err);
		escalation_hit_clear(&hits[i]);
	}
	free(hits);
	atomic_fetch_add(&w->stats.alerts_opened, tx.opened);
	atomic_fetch_add(&w->stats.alerts_updated, tx.updated);
	return rc;
}

static int
judge_one(struct writer *w, struct ledger_head *h, const struct ruleset *rs,
	  struct ingest_item *it, struct aupd_error *err)
{
	const struct event *ev = &it->ev;
	int64_t key = it->key;
	int64_t seq = h->seq + 1;
	aupd_time now = time_now();
	struct verdict v;
	int rc = find_duplicate(w, it, key, err);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	policy_next_seq(w->state, seq);
	policy_eval(rs, w->state, ev, w->cfg->default_effect, 0, &v);
	sb_reset(&w->doc);
	verdict_encode(&w->doc, ev, &v, seq, ruleset_version(rs), now, false);
	sb_reset(&w->body);
	ledger_body_begin(&w->body, seq, "verdict", now, ev->tenant);
	sb_adds(&w->body, ",\"event\":");
	/* the bytes the client sent, when they are whole: nothing re-encoded */
	if (it->raw)
		sb_add(&w->body, it->raw, it->raw_len);
	else
		json_dump_callback(ev->doc, dump_to_sb, &w->body, JSON_COMPACT);
	sb_adds(&w->body, ",\"verdict\":");
	sb_add(&w->body, w->doc.buf, w->doc.len);
	sb_addc(&w->body, '}');
	rc = ledger_append(w->db, h, "verdict", ev->tenant, now, w->body.buf, w->body.len, err);
	if (rc == 0)
		rc = index_verdict(w, ev, &v, seq, key, err);
	if (rc == 0)
		eventkeys_add(w->keys, key, seq); /* a rollback reloads them (rebuild_state) */
	if (rc == 0)
		rc = store_obligations(w, &v, seq, err);
	if (rc == 0)
		rc = escalate(w, h, rs, ev, NULL, &v, seq, ev->time, err);
	if (rc == 0) {
		it->verdict_doc = xstrndup(w->doc.buf, w->doc.len);
		it->doc_len = w->doc.len;
		it->seq = seq;
		it->verdict = v.verdict;
	}
	verdict_clear(&v);
	return rc;
}

/*
 * A retention-overdue record is a verdict too: indexed like one, so auditors
 * find it with the others (action "retention.overdue", no event id or actor;
 * key 0 is never an event's, whose keys are hashes).
 */
static int
index_overdue(struct writer *w, const struct obligation *o, const struct verdict *v, int64_t seq,
	      struct aupd_error *err)
{
	struct event ev = {
		.id = "",
		.tenant = o->tenant,
		.actor = "",
		.action = "retention.overdue",
		.time = o->deadline,
	};
	int rc = index_verdict(w, &ev, v, seq, 0, err);

	if (rc == 0)
		w->pending_verdicts[v->verdict]++;
	return rc;
}

/* Records retention-overdue verdicts for obligations whose deadline passed. */
static int
record_overdue(struct writer *w, struct ledger_head *h, const struct ruleset *rs, aupd_time now,
	       struct aupd_error *err)
{
	struct obligation *obs = NULL;
	size_t n = policy_take_overdue(w->state, now, &obs);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct obligation *o = &obs[i];
		struct verdict v;
		sqlite3_stmt *st;

		policy_overdue_verdict(rs, o, &v);
		sb_reset(&w->doc);
		overdue_encode(&w->doc, o, &v, h->seq + 1, ruleset_version(rs), now);
		sb_reset(&w->scratch);
		sb_adds(&w->scratch, ",\"overdue\":");
		sb_add(&w->scratch, w->doc.buf, w->doc.len);
		sb_addc(&w->scratch, '}');
		rc = append_record(w, h, "retention-overdue", o->tenant, now, w->scratch.buf, err);
		if (rc == 0 && (st = store_stmt(w->db, ST_OBLIGATION_CLOSE, err))) {
			sqlite3_bind_int64(st, 1, o->opened_seq);
			sqlite3_bind_text(st, 2, o->rule, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = store_fail(w->db, err, "cannot close an obligation");
			sqlite3_reset(st);
		} else if (rc == 0) {
			rc = -1;
		}
		if (rc == 0)
			rc = index_overdue(w, o, &v, h->seq, err);
		if (rc == 0)
			rc = escalate(w, h, rs, NULL, o, &v, h->seq, o->deadline, err);
		if (rc == 0)
			atomic_fetch_add(&w->stats.overdue_recorded, 1);
		verdict_clear(&v);
	}
	for (size_t i = 0; i < n; i++)
		obligation_clear(&obs[i]);
	free(obs);
	return rc;
}

/*
 * Signs a checkpoint inside the batch's transaction whenever checkpoint.every
 * records accumulated since the last one (`*cp_seq`), and, on a timer tick,
 * when checkpoint.interval passed with records unsigned.
 */
static int
checkpoint_due(struct writer *w, const struct ledger_head *h, int64_t *cp_seq, bool timer,
	       struct aupd_error *err)
{
	bool by_count = h->seq - *cp_seq >= (int64_t)w->cfg->checkpoint_every;
	bool by_time = timer && time_mono_us() - w->last_cp_mono >= w->cfg->checkpoint_interval_us;

	if (h->seq <= *cp_seq || !w->key->priv || !(by_count || by_time))
		return 0;
	if (ledger_checkpoint(w->db, h, time_now(), w->key, err) < 0)
		return -1;
	*cp_seq = h->seq;
	return 0;
}

static void
bucket(struct writer *w, size_t events)
{
	int b = 0;

	for (size_t lim = 1; b < 7 && events > lim; lim *= 10)
		b++;
	atomic_fetch_add(&w->stats.batch_buckets[b], 1);
}

static void rebuild_state(struct writer *w);
static void bound_wal(struct writer *w);

/*
 * One group commit: every queued job in one transaction.  Jobs are answered
 * after COMMIT returned (or failed), never before.
 */
static void
run_batch(struct writer *w, struct writer_job *jobs, bool timer)
{
	struct aupd_error err = {0};
	struct ledger_head h;
	struct ruleset *rs = NULL, *before = w->rules;
	int64_t cp_seq = w->last_cp_seq, first_seq;
	size_t events = 0;
	int rc;

	memset(w->pending_verdicts, 0, sizeof(w->pending_verdicts));
	if (w->state_dirty)
		rebuild_state(w);
	rc = store_begin_immediate(w->db, &err);
	if (rc == 0)
		rc = ledger_head_read(w->db, &h, &err);
	first_seq = rc == 0 ? h.seq : 0;
	for (struct writer_job *j = jobs; j && rc == 0; j = j->next) {
		switch (j->kind) {
		case JOB_EVENTS:
			pthread_mutex_lock(&w->rules_mu);
			rs = w->rules;
			pthread_mutex_unlock(&w->rules_mu);
			for (size_t i = 0; i < j->n_items && rc == 0; i++) {
				rc = judge_one(w, &h, rs, &j->items[i], &err);
				if (rc == 0)
					rc = checkpoint_due(w, &h, &cp_seq, false, &err);
			}
			events += j->n_items;
			break;
		case JOB_RECORD:
			rc = append_record(w, &h, j->rec_kind, j->rec_tenant, time_now(),
					   j->rec_members, &err);
			j->seq = h.seq;
			break;
		case JOB_ALERT: {
			struct alert_tx tx = alert_tx(w, &h);

			j->alert_result = alerts_change(&tx, j->alert_id, j->alert_action, j->note,
							j->token, j->scope_tenant, &j->alert_doc, &err);
			if (j->alert_result < 0)
				rc = -1;
			break;
		}
		case JOB_OUTBOX: {
			struct alert_tx tx = alert_tx(w, &h);

			rc = outbox_record(&tx, j->outbox_id, j->delivery_id, j->delivered, j->http_status,
					   j->delivery_error, j->next_attempt, &err);
			break;
		}
		case JOB_RELOAD:
			rc = append_rules_record(w, &h, j->rules, j->reason, &err);
			j->seq = h.seq;
			if (rc == 0) {
				/* events after this record in the batch are judged by the new rules */
				struct ruleset *old;

				pthread_mutex_lock(&w->rules_mu);
				old = w->rules;
				w->rules = j->rules;
				w->rules_loaded_at = time_now();
				pthread_mutex_unlock(&w->rules_mu);
				j->rules = old; /* freed with the job */
				policy_state_retain(w->state, w->rules);
			}
			break;
		}
	}
	if (rc == 0 && timer) {
		pthread_mutex_lock(&w->rules_mu);
		rs = w->rules;
		pthread_mutex_unlock(&w->rules_mu);
		rc = record_overdue(w, &h, rs, time_now(), &err);
	}
	if (rc == 0)
		rc = checkpoint_due(w, &h, &cp_seq, timer, &err);
	if (rc == 0)
		rc = store_commit(w->db, &err);
	if (rc < 0) {
		store_rollback(w->db);
		atomic_fetch_add(&w->stats.commit_failures, 1);
		log_err("commit failed, nothing of this batch was stored: %s", err.msg);
		/* what evaluation did to windows and obligations is undone by a rebuild */
		w->state_dirty = true;
		atomic_store(&w->healthy, false);
		if (w->rules != before) {
			/* the reload's record was not stored: the old rules stay in force */
			struct ruleset *newest;

			pthread_mutex_lock(&w->rules_mu);
			newest = w->rules;
			w->rules = ruleset_ref(before);
			pthread_mutex_unlock(&w->rules_mu);
			ruleset_unref(newest);
		}
		w->next_probe_mono = time_mono_us() + PROBE_INTERVAL_US;
	} else {
		atomic_fetch_add(&w->stats.commits, 1);
		for (int e = 0; e < 3; e++)
			atomic_fetch_add(&w->stats.verdicts[e], w->pending_verdicts[e]);
		atomic_fetch_add(&w->stats.records, h.seq - first_seq);
		atomic_store(&w->stats.head_seq, h.seq);
		if (events) {
			atomic_fetch_add(&w->stats.batch_events_sum, (long long)events);
			bucket(w, events);
		}
		if (cp_seq != w->last_cp_seq) {
			w->last_cp_seq = cp_seq;
			w->last_cp_mono = time_mono_us();
		}
	}
	while (jobs) {
		struct writer_job *next = jobs->next;

		jobs->status = rc < 0 ? -1 : 0;
		if (rc < 0)
			snprintf(jobs->error, sizeof(jobs->error), "%s", err.msg);
		else if (jobs->kind == JOB_EVENTS)
			for (size_t i = 0; i < jobs->n_items; i++) {
				if (jobs->items[i].duplicate) {
					atomic_fetch_add(&w->stats.events_duplicate, 1);
				} else {
					atomic_fetch_add(&w->stats.events_accepted, 1);
					atomic_fetch_add(&w->stats.verdicts[jobs->items[i].verdict], 1);
				}
			}
		if (jobs->done)
			jobs->done(jobs);
		else
			writer_job_free(jobs);
		jobs = next;
	}
}

/* A small write that needs disk space: tells when storage works again. */
static void
probe(struct writer *w)
{
	struct aupd_error err;
	char now[32];

	snprintf(now, sizeof(now), "%lld", (long long)time_now());
	if (store_begin_immediate(w->db, &err) == 0 &&
	    store_meta_set(w->db, "probe", now, &err) == 0 && store_commit(w->db, &err) == 0) {
		log_notice("storage takes writes again; ingest resumes");
		atomic_store(&w->healthy, true);
		return;
	}
	store_rollback(w->db);
	w->next_probe_mono = time_mono_us() + PROBE_INTERVAL_US;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	int64_t next_tick = time_mono_us() + TICK_US;

	for (;;) {
		struct writer_job *jobs = NULL, **tailp = &jobs;
		unsigned taken = 0;
		bool timer = false, stop, merged;

		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stopping && time_mono_us() < next_tick) {
			struct timespec ts;
			int64_t wait_us = next_tick - time_mono_us();

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait_us / AUPD_USEC;
			ts.tv_nsec += (wait_us % AUPD_USEC) * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		}
		/* take whole jobs up to the per-commit cap (always at least one) */
		while (w->head && (taken == 0 || taken < MAX_EVENTS_PER_COMMIT)) {
			struct writer_job *j = w->head;
			unsigned n = j->kind == JOB_EVENTS ? (unsigned)j->n_items : 1;

			w->head = j->next;
			if (!w->head)
				w->tail = NULL;
			j->next = NULL;
			*tailp = j;
			tailp = &j->next;
			taken += n;
			w->queued_events -= n;
		}
		stop = w->stopping && !w->head;
		pthread_mutex_unlock(&w->mu);

		if (time_mono_us() >= next_tick) {
			size_t bytes = 0, entries = policy_state_window_entries(w->state, &bytes);

			timer = true;
			next_tick = time_mono_us() + TICK_US;
			atomic_store(&w->stats.window_entries, (long long)entries);
			atomic_store(&w->stats.window_bytes, (long long)bytes);
			atomic_store(&w->stats.obligations,
				     (long long)policy_obligation_count(w->state));
		}
		if (!atomic_load(&w->healthy) && time_mono_us() >= w->next_probe_mono)
			probe(w);
		if (jobs || (timer && atomic_load(&w->healthy)))
			run_batch(w, jobs, timer && atomic_load(&w->healthy));
		/* key merges go a slice at a time, paced by ingest (eventkeys_merge_due) */
		merged = false;
		while (atomic_load(&w->healthy) && !w->state_dirty && eventkeys_merge_due(w->keys)) {
			struct aupd_error err;

			merged = true;
			if (eventkeys_merge(w->keys, w->db, &err) < 0) {
				log_warn("event key merge deferred: %s", err.msg);
				break;
			}
		}
		/* and a filter rebuild a slice a turn, when no merge slice ran in it */
		if (!merged && atomic_load(&w->healthy) && !w->state_dirty &&
		    eventkeys_rebuild_due(w->keys)) {
			struct aupd_error err;

			if (eventkeys_rebuild(w->keys, w->db, &err) < 0)
				log_warn("idempotency filter rebuild deferred: %s", err.msg);
		}
		bound_wal(w);
		if (stop && !jobs)
			break;
	}
	return NULL;
}

/*
 * WAL checkpoints run here, on their own connection, so the sequencer's
 * commits never pay for copying pages into the database file.
 */
static void *
checkpointer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		struct timespec ts;
		int log = 0, done = 0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&w->ckpt_cv, &w->mu, &ts);
		if (w->stopping)
			break;
		pthread_mutex_unlock(&w->mu);
		if (sqlite3_wal_checkpoint_v2(w->ckpt_db->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
					      &done) != SQLITE_OK)
			log_debug("WAL checkpoint: %s", sqlite3_errmsg(w->ckpt_db->db));
		else
			atomic_store(&w->wal_copied, done);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int
on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	((struct writer *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

/* Keeps the WAL bounded: see WAL_RESTART_FRAMES and WAL_WAKE_FRAMES. */
static void
bound_wal(struct writer *w)
{
	int log = 0, done = 0, rc;
	int64_t t0;

	if (w->wal_frames < w->wal_woken)
		w->wal_woken = 0; /* the WAL started over */
	if (w->wal_frames - w->wal_woken >= WAL_WAKE_FRAMES) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_signal(&w->ckpt_cv);
		pthread_mutex_unlock(&w->mu);
		w->wal_woken = w->wal_frames;
	}
	/*
	 * Restart once the checkpointer is (nearly) done with the WAL, when little
	 * is left to copy and sync; if it cannot keep up, at twice the size anyway.
	 */
	if (w->wal_frames < WAL_RESTART_FRAMES ||
	    (w->wal_frames - atomic_load(&w->wal_copied) > WAL_WAKE_FRAMES &&
	     w->wal_frames < 2 * WAL_RESTART_FRAMES))
		return;
	t0 = time_mono_us();
	/* a reader on an old snapshot (a long audit-log download) must not stall ingest */
	sqlite3_busy_timeout(w->db->db, 50);
	rc = sqlite3_wal_checkpoint_v2(w->db->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
	sqlite3_busy_timeout(w->db->db, 5000);
	if (rc == SQLITE_OK) {
		log_debug("WAL restarted after %d frames (%lld ms)", w->wal_frames,
			  (long long)((time_mono_us() - t0) / 1000));
		w->wal_frames = 0;
		w->wal_woken = 0;
		atomic_store(&w->wal_copied, 0);
	} else {
		/* a long reader holds old frames: try again after the next batch */
		log_debug("WAL restart deferred (%d of %d frames copied): %s", done, log,
			  sqlite3_errmsg(w->db->db));
	}
}

/* ---- start-up: state from storage ---- */

static int
restore_obligations(struct writer *w, struct aupd_error *err)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	if (sqlite3_prepare_v2(w->db->db,
			       "SELECT rule, tenant, resource, deadline, opened_by, effect, "
			       "severity, shadow, opened_seq FROM obligations",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(w->db, err, "cannot read obligations");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct obligation o = {
			.op = OBL_OPEN,
			.rule = (char *)sqlite3_column_text(st, 0),
			.tenant = (char *)sqlite3_column_text(st, 1),
			.resource_id = (char *)sqlite3_column_text(st, 2),
			.deadline = sqlite3_column_int64(st, 3),
			.opened_by = (char *)sqlite3_column_text(st, 4),
			.effect = (enum effect)sqlite3_column_int(st, 5),
			.severity = (enum severity)sqlite3_column_int(st, 6),
			.shadow = sqlite3_column_int(st, 7) != 0,
			.opened_seq = sqlite3_column_int64(st, 8),
		};

		policy_obligation_restore(w->state, &o);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(w->db, err, "cannot read obligations");
	if (n)
		log_info("restored %zu open deletion obligations", n);
	return 0;
}

/* The first seq recorded at or after `t` (records are appended in time order). */
static int64_t
first_seq_since(struct writer *w, aupd_time t, int64_t head)
{
	sqlite3_stmt *st;
	int64_t lo = 1, hi = head + 1;

	if (sqlite3_prepare_v2(w->db->db, "SELECT time FROM ledger WHERE seq >= ? ORDER BY seq LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return 1;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		aupd_time mt = INT64_MAX;

		sqlite3_bind_int64(st, 1, mid);
		if (sqlite3_step(st) == SQLITE_ROW)
			mt = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (mt < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	sqlite3_finalize(st);
	return lo;
}

/* Feeds a stored retention-overdue record back to the escalations. */
static void
replay_overdue(struct writer *w, const struct ruleset *rs, json_t *doc, int64_t seq)
{
	json_t *m = json_array_get(json_object_get(doc, "matched"), 0);
	const char *deadline = json_string_value(json_object_get(doc, "deadline")), *why;
	struct obligation o = {
		.op = OBL_OPEN,
		.rule = (char *)json_string_value(json_object_get(doc, "rule")),
		.tenant = (char *)json_string_value(json_object_get(doc, "tenant")),
		.resource_id = (char *)json_string_value(
			json_object_get(json_object_get(doc, "resource"), "id")),
		.opened_by = (char *)json_string_value(json_object_get(doc, "opened_by")),
		.shadow = json_is_true(json_object_get(m, "shadow")),
	};
	struct escalation_hit *hits = NULL;
	struct verdict v;

	if (!o.rule || !o.tenant || !o.resource_id || !deadline ||
	    time_parse_rfc3339(deadline, strlen(deadline), &o.deadline, &why) < 0 ||
	    effect_parse(json_string_value(json_object_get(m, "effect")), &o.effect) < 0 ||
	    severity_parse(json_string_value(json_object_get(m, "severity")), &o.severity) < 0)
		return;
	policy_overdue_verdict(rs, &o, &v);
	policy_escalate(rs, w->state, NULL, &o, &v, seq, o.deadline, EVAL_REPLAY, &hits);
	free(hits);
	verdict_clear(&v);
}

/*
 * Windows come back by replaying the verdict records of the last stretch
 * (longest window, twice, plus an hour of lateness) through the evaluator,
 * in ledger order: the order they were first judged in.  Escalation windows
 * are fed the same verdicts; nothing is recorded and no alert is raised.
 */
static int
replay_windows(struct writer *w, const struct ruleset *rs, struct aupd_error *err)
{
	int64_t span = ruleset_max_window(rs);
	struct ledger_head h;
	sqlite3_stmt *st;
	int64_t from, n = 0, t0 = time_mono_us();
	int rc;

	if (span <= 0)
		return 0;
	if (ledger_head_read(w->db, &h, err) < 0)
		return -1;
	from = first_seq_since(w, time_now() - 2 * span - 3600 * AUPD_USEC, h.seq);
	if (sqlite3_prepare_v2(w->db->db,
			       "SELECT seq, kind, body FROM ledger WHERE seq >= ? "
			       "AND kind IN ('verdict', 'retention-overdue') ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(w->db, err, "cannot read the ledger");
	sqlite3_bind_int64(st, 1, from);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		bool overdue = !strcmp((const char *)sqlite3_column_text(st, 1), "retention-overdue");
		const char *text = sqlite3_column_blob(st, 2), *evtext;
		size_t len = (size_t)sqlite3_column_bytes(st, 2), evlen;
		json_t *body = NULL, *evj = NULL;
		struct escalation_hit *hits = NULL;
		struct event_problem prob;
		struct event ev;
		struct verdict v;
		int ok;

		/* the event's bytes as stored, found without parsing the verdict after them */
		if (!overdue && json_member_span(text, len, "event", &evtext, &evlen) == 0) {
			ok = event_parse(evtext, evlen, &ev, &prob, NULL) >= 0;
		} else {
			body = json_loadb(text, len, 0, NULL);
			evj = body ? json_object_get(body, overdue ? "overdue" : "event") : NULL;
			ok = evj && !overdue && event_from_json(evj, &ev, &prob) == 0;
		}
		if (evj && overdue) {
			replay_overdue(w, rs, evj, seq);
			n++;
		} else if (ok) {
			policy_eval(rs, w->state, &ev, w->cfg->default_effect, EVAL_REPLAY, &v);
			policy_escalate(rs, w->state, &ev, NULL, &v, seq, ev.time, EVAL_REPLAY, &hits);
			free(hits);
			verdict_clear(&v);
			event_clear(&ev);
			n++;
		}
		json_decref(body);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(w->db, err, "cannot read the ledger");
	if (n)
		log_info("rebuilt rule and escalation windows from %lld stored verdicts in %lld ms",
			 (long long)n, (long long)((time_mono_us() - t0) / 1000));
	return 0;
}

static void
rebuild_state(struct writer *w)
{
	struct aupd_error err;
	struct ruleset *rs = writer_rules(w);

	policy_state_free(w->state);
	w->state = policy_state_new();
	if (eventkeys_reload(w->keys, w->db, &err) < 0 || restore_obligations(w, &err) < 0 ||
	    replay_windows(w, rs, &err) < 0)
		log_err("cannot rebuild window state: %s (will retry)", err.msg);
	else
		w->state_dirty = false;
	ruleset_unref(rs);
}

static int
read_last_checkpoint(struct writer *w, struct aupd_error *err)
{
	sqlite3_stmt *st = store_stmt(w->db, ST_CHECKPOINT_LAST, err);

	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		w->last_cp_seq = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	w->last_cp_mono = time_mono_us();
	return 0;
}

struct writer *
writer_start(const struct config *cfg, const char *db_path, const struct ledger_key *key,
	     struct ruleset *rules, struct aupd_error *err)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	char *recorded = NULL;

	w->cfg = cfg;
	w->key = key;
	w->rules = rules;
	w->rules_loaded_at = time_now();
	atomic_store(&w->healthy, true);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->ckpt_cv, NULL);
	pthread_mutex_init(&w->rules_mu, NULL);
	sb_init(&w->body);
	sb_init(&w->doc);
	sb_init(&w->scratch);
	w->db = store_open(db_path, STORE_CREATE, err);
	if (!w->db)
		goto err_free;
	/*
	 * 32 MiB of page cache: as fast as 64 MiB at 1M records (42 k events/s
	 * in batches; 16 MiB: 32 k) and 34 MB less resident (bench/run).
	 */
	if (store_exec(w->db, "PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 0", err) < 0)
		goto err_free;
	sqlite3_wal_hook(w->db->db, on_wal_commit, w);
	/* the write lock, once: another process holding it is a start-up error, not a stall */
	if (store_begin_immediate(w->db, err) < 0)
		goto err_free;
	store_rollback(w->db);
	if (read_last_checkpoint(w, err) < 0)
		goto err_free;
	w->state = policy_state_new();
	if (restore_obligations(w, err) < 0 || replay_windows(w, rules, err) < 0)
		goto err_free;
	if (!(w->keys = eventkeys_load(w->db, cfg->keys_in_memory, err)))
		goto err_free;
	recorded = store_meta_get(w->db, "rules_version");
	if (!recorded || strcmp(recorded, ruleset_version(rules)) != 0) {
		struct ledger_head h;

		if (store_begin_immediate(w->db, err) < 0)
			goto err_free;
		if (ledger_head_read(w->db, &h, err) < 0 ||
		    append_rules_record(w, &h, rules, "start", err) < 0 ||
		    store_commit(w->db, err) < 0) {
			store_rollback(w->db);
			goto err_free;
		}
	}
	free(recorded);
	recorded = NULL;
	w->ckpt_db = store_open(db_path, STORE_NO_MIGRATE, err);
	if (!w->ckpt_db)
		goto err_free;
	if (pthread_create(&w->ckpt_thread, NULL, checkpointer_main, w) != 0) {
		aupd_error_set(err, "cannot start the checkpoint thread: %s", strerror(errno));
		goto err_free;
	}
	w->ckpt_started = true;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		aupd_error_set(err, "cannot start the writer thread: %s", strerror(errno));
		goto err_free;
	}
	return w;

err_free:
	if (w->ckpt_started) {
		pthread_mutex_lock(&w->mu);
		w->stopping = true;
		pthread_cond_broadcast(&w->ckpt_cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->ckpt_thread, NULL);
	}
	store_close(w->ckpt_db);
	free(recorded);
	eventkeys_free(w->keys);
	policy_state_free(w->state);
	store_close(w->db);
	sb_free(&w->body);
	sb_free(&w->doc);
	sb_free(&w->scratch);
	ruleset_unref(rules); /* the reference was ours to take, even on failure */
	free(w);
	return NULL;
}

/* A clean stop signs the last head, so nothing recorded is left without a checkpoint. */
static void
final_checkpoint(struct writer *w)
{
	struct aupd_error err;
	struct ledger_head h;

	if (!atomic_load(&w->healthy) || !w->key->priv)
		return;
	if (store_begin_immediate(w->db, &err) < 0)
		goto fail;
	if (ledger_head_read(w->db, &h, &err) < 0)
		goto fail;
	if (h.seq > w->last_cp_seq &&
	    (ledger_checkpoint(w->db, &h, time_now(), w->key, &err) < 0 ||
	     store_commit(w->db, &err) < 0))
		goto fail;
	store_rollback(w->db);
	return;
fail:
	store_rollback(w->db);
	log_warn("no checkpoint at shutdown: %s", err.msg);
}

void
writer_stop(struct writer *w)
{
	if (!w || w->stopped)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_cond_broadcast(&w->ckpt_cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_join(w->ckpt_thread, NULL);
	store_close(w->ckpt_db);
	w->ckpt_db = NULL;
	final_checkpoint(w);
	w->stopped = true;
}

void
writer_free(struct writer *w)
{
	if (!w)
		return;
	writer_stop(w);
	/*
	 * Called once every other connection of this process is closed: the
	 * WAL is copied into the database and emptied, so a clean stop leaves
	 * one self-contained file.
	 */
	if (sqlite3_wal_checkpoint_v2(w->db->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
	    SQLITE_OK)
		log_warn("final WAL checkpoint: %s", sqlite3_errmsg(w->db->db));
	store_close(w->db);
	eventkeys_free(w->keys);
	policy_state_free(w->state);
	ruleset_unref(w->rules);
	sb_free(&w->body);
	sb_free(&w->doc);
	sb_free(&w->scratch);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->ckpt_cv);
	pthread_mutex_destroy(&w->rules_mu);
	free(w);
}
