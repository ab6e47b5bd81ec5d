/* writer.h - the sequencer: one thread that judges, sequences, hashes and group-commits */
#ifndef AUPD_WRITER_H
#define AUPD_WRITER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aupd/config.h"
#include "aupd/event.h"
#include "aupd/ledger.h"
#include "aupd/policy.h"
#include "aupd/store.h"

struct writer;

/* One event of an ingest job; the writer fills the result fields. */
struct ingest_item {
	struct event ev;   /* validated; owned by the item */
	const char *raw;   /* the event's bytes as received (borrowed), or NULL */
	size_t raw_len;
	int64_t key;       /* store_event_key(tenant, id), computed by the request thread */
	char *verdict_doc; /* result: the verdict document (owned) */
	size_t doc_len;
	int64_t seq;
	enum effect verdict;
	bool duplicate;
};

enum job_kind {
	JOB_EVENTS, /* judge and record events */
	JOB_RECORD, /* append one prepared record (access audit, alert changes, ...) */
	JOB_RELOAD, /* switch to a new ruleset and record it */
	JOB_ALERT,  /* acknowledge or resolve an alert */
	JOB_OUTBOX, /* record a webhook delivery attempt */
};

struct writer_job {
	enum job_kind kind;
	/* JOB_EVENTS */
	struct ingest_item *items;
	size_t n_items;
	/* JOB_RECORD: the members after the record header, e.g. ",\"a\":1}" */
	char *rec_kind;
	char *rec_tenant;
	char *rec_members;
	/* JOB_RELOAD: the new ruleset (the writer takes this reference) and why */
	struct ruleset *rules;
	char *reason;
	/* JOB_ALERT: alert id, "ack" or "resolve", note, token name, token's tenant (or NULL) */
	char *alert_id;
	char *alert_action;
	char *note;
	char *token;
	char *scope_tenant;
	int alert_result; /* 0, 403, 404 or 409 */
	char *alert_doc;  /* the alert after the change */
	/* JOB_OUTBOX */
	int64_t outbox_id;
	char *delivery_id;
	bool delivered;
	int http_status;
	char *delivery_error;
	aupd_time next_attempt;
	/* results */
	int status; /* 0 committed; -1 not stored (error holds why) */
	char error[512];
	int64_t seq; /* JOB_RECORD / JOB_RELOAD: the record's seq */
	/*
	 * Called on the writer thread once the job's transaction committed or
	 * failed; NULL for fire-and-forget jobs, which the writer frees itself.
	 * The writer does not touch the job after calling it.
	 */
	void (*done)(struct writer_job *job);
	void *arg;
	struct writer_job *next;
};

struct writer_stats {
	atomic_llong events_accepted;
	atomic_llong events_duplicate;
	atomic_llong verdicts[3]; /* by effect */
	atomic_llong commits;
	atomic_llong commit_failures;
	atomic_llong queue_full;
	atomic_llong records;
	atomic_llong batch_events_sum;
	atomic_llong batch_buckets[8]; /* events per commit: <=1, <=10, <=100, <=1000, ... */
	atomic_llong head_seq;
	atomic_llong overdue_recorded;
	atomic_llong alerts_opened;
	atomic_llong alerts_updated;
	atomic_llong window_entries; /* refreshed about once a second */
	atomic_llong window_bytes;
	atomic_llong obligations;
};

/*
 * Opens the write connection, rebuilds policy state (obligations from
 * storage, windows by replaying recent verdicts), records the ruleset if it
 * changed since the last run, and starts the thread.  Takes the reference
 * to `rules`.  `key` and `cfg` must outlive the writer.  NULL with `err`.
 */
struct writer *writer_start(const struct config *cfg, const char *db_path,
			    const struct ledger_key *key, struct ruleset *rules,
			    struct aupd_error *err);
/*
 * Queues a job.  -1 when the queue is full, the writer is stopping, or
 * storage is failing (the job is untouched: answer 503); 0 otherwise.
 */
int writer_submit(struct writer *w, struct writer_job *job, const char **why);
/*
 * Finishes every queued job, stops the threads and signs a last checkpoint;
 * later submissions are refused.  The writer stays allocated (for late
 * callers) until writer_free().
 */
void writer_stop(struct writer *w);
/*
 * Stops (if needed), empties the WAL into the database and frees; call it
 * after the process's other connections to the database are closed.  NULL
 * is a no-op.
 */
void writer_free(struct writer *w);

/* A new reference to the ruleset in force. */
struct ruleset *writer_rules(struct writer *w);
/* Wall-clock time (us) the ruleset in force was loaded. */
aupd_time writer_rules_loaded_at(struct writer *w);
/* False while storage refuses writes (disk full, I/O errors): ingest is refused. */
bool writer_healthy(struct writer *w);
struct writer_stats *writer_stats(struct writer *w);
/* The idempotency index (lookups are thread-safe). */
struct eventkeys *writer_event_keys(struct writer *w);
/* Events queued and not yet committed. */
unsigned writer_queued(struct writer *w);

void ingest_items_free(struct ingest_item *items, size_t n);
void writer_job_free(struct writer_job *job);

#endif
