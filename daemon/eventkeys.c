/* eventkeys.c - which (tenant, id) pairs are stored: the idempotency index, kept cheap to grow */
#include "aupd/eventkeys.h"
#include "aupd/keyfilter.h"
#include "aupd/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES 16
#define MERGE_BUCKETS 256
/*
 * A merge first groups its keys by bucket, in two passes over the table set
 * aside (counting, then placing), each in PREP_STEPS steps: done at once,
 * that took 34 ms of the sequencer's time for a million keys, up to 130 ms
 * on a busy host.
 */
#define PREP_STEPS 32

/* A key with its event's seq. */
struct keyseq {
	int64_t key;
	int64_t seq;
};

/*
 * A slot of the table of recent keys: 12 bytes, not 16, the seq being kept
 * as its distance from the table's base (every seq in memory is after it).
 * At the default limits.keys_in_memory the table has 2 M slots: 24 MiB.
 */
struct recent {
	uint32_t key_lo, key_hi;
	uint32_t off; /* seq - base; 0: an empty slot */
};
_Static_assert(sizeof(struct recent) == 12, "a slot of recent keys is 12 bytes");

struct eventkeys {
	pthread_rwlock_t lock; /* guards everything below but `merge` */
	struct keyfilter *bloom;
	struct recent *slots; /* open addressing; a key may repeat (hash collisions) */
	size_t cap, used;
	int64_t base; /* the seqs in `slots` are after it, by less than 2^32 */
	int64_t top;  /* the highest seq put in the tables since they were last emptied */
	/*
	 * During a merge, the table of the keys being merged, for lookups: set
	 * aside when the merge starts (the keys that come meanwhile go to a
	 * fresh table), so that neither end rebuilds a table while ingest
	 * waits.  NULL otherwise, and after a reload (which puts every key not
	 * merged yet in the fresh table); merge.src owns the memory.
	 */
	struct {
		struct recent *slots;
		size_t cap;
		int64_t base;
	} prev;
	/*
	 * Keys whose seq is 2^32 or more past `base`: only after billions of
	 * ledger records without an event.  They make a merge due at once, which
	 * rebases the table; meanwhile they are found here.
	 */
	struct keyseq *far;
	size_t n_far, cap_far;
	int64_t merged_seq; /* keys of events up to this seq are in event_keys */
	bool incomplete;    /* the last reload failed: no merge until one succeeds */
	size_t merge_every;
	/*
	 * A merge in progress (the sequencer's alone): the keys of events up to
	 * merge.upto, sorted, written slice by slice, each slice a transaction
	 * between two batches, so that ingest never waits for a whole merge.  The
	 * keys stay in memory (and findable) until the last slice committed.
	 */
	struct {
		bool active;
		/* the table set aside and the far keys when it started: what it merges */
		struct recent *src;
		size_t src_cap;
		int64_t src_base;
		struct keyseq *far;
		size_t n_far;
		size_t expect;	/* keys in them (for pacing before they are counted) */
		unsigned prep;	/* preparation steps done, of 2 * PREP_STEPS */
		/*
		 * Grouped by bucket (the key's top bits, in key order) by the
		 * preparation steps, and each bucket sorted just before its first
		 * slice: no one pause sorts them all.
		 */
		struct keyseq *keys;
		size_t bucket_end[MERGE_BUCKETS];
		unsigned sorted; /* buckets sorted so far */
		size_t n, done, slice;
		size_t added; /* keys added since it started: it keeps ahead of twice that pace */
		int64_t upto;
		int64_t t_us;	  /* time spent in its slices */
		int64_t pause_us; /* the longest slice */
		bool reloaded;	  /* eventkeys_reload() meanwhile: the table holds merged keys too */
	} merge;
	/*
	 * A larger Bloom filter in the making (the sequencer's alone), once
	 * `bloom` is full, a slice between two batches: event_keys in key
	 * order, then the events after `from_seq` up to `to_seq` (the keys in
	 * memory when it started) in seq order; the keys added meanwhile go
	 * into both.  Every key stored when it started is in one of the two,
	 * even if a merge moves it meanwhile, since event_keys only grows.
	 * (Walking the keys in memory instead took 100 ms at once: a few
	 * hundred thousand keys, six cache misses each.)  `bloom` answers
	 * until the scans end and this one replaces it.
	 */
	struct {
		struct keyfilter *bloom; /* NULL: no rebuild in progress */
		bool in_events;		 /* the second scan */
		int64_t next;		 /* the scan goes on from this key, or after this seq */
		int64_t from_seq, to_seq;
		size_t slice;		 /* keys read a slice */
		size_t n, slices;
		int64_t t_us, pause_us;
	} rebuild;
};

static const char sql_event_at[] = "SELECT tenant, id FROM events WHERE seq = ?";
static const char sql_archived[] = "SELECT seq FROM event_keys WHERE key = ?";
/* ?1 is INT64_MIN for the first slice: no key is below it */
static const char sql_keys_from[] = "SELECT key FROM event_keys WHERE key >= ? ORDER BY key LIMIT ?";
static const char sql_event_keys_after[] =
	"SELECT seq, key FROM events WHERE seq > ?1 AND seq <= ?3 AND key != 0 ORDER BY seq LIMIT ?2";
static const char sql_merge[] = "INSERT OR IGNORE INTO event_keys (key, seq) VALUES (?, ?)";
static const char sql_sync_normal[] = "PRAGMA synchronous = NORMAL";
static const char sql_sync_full[] = "PRAGMA synchronous = FULL";
/*
 * MERGE_ROWS keys a statement: a merge of a million keys took 0.57-0.61 s,
 * against 0.99-1.11 s with one key a statement
 */
#define MERGE_ROWS 32
#define ROWS_2 "(?, ?), (?, ?)"
#define ROWS_8 ROWS_2 ", " ROWS_2 ", " ROWS_2 ", " ROWS_2
#define ROWS_32 ROWS_8 ", " ROWS_8 ", " ROWS_8 ", " ROWS_8
static const char sql_merge_rows[] = "INSERT OR IGNORE INTO event_keys (key, seq) VALUES " ROWS_32;

static size_t
slot_in(size_t cap, int64_t key)
{
	return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 7) & (cap - 1);
}

static size_t
slot_of(const struct eventkeys *ek, int64_t key)
{
	return slot_in(ek->cap, key);
}

static inline int64_t
slot_key(const struct recent *r)
{
	return (int64_t)(((uint64_t)r->key_hi << 32) | r->key_lo);
}

static inline int64_t
slot_seq(const struct eventkeys *ek, const struct recent *r)
{
	return ek->base + (int64_t)r->off;
}

static void
recent_put(struct eventkeys *ek, int64_t key, int64_t seq)
{
	size_t i;

	if (seq > ek->top)
		ek->top = seq;
	if (seq <= ek->base || seq - ek->base > (int64_t)UINT32_MAX) {
		if (ek->n_far == ek->cap_far) {
			ek->cap_far = ek->cap_far ? 2 * ek->cap_far : 16;
			ek->far = xrealloc(ek->far, ek->cap_far * sizeof(*ek->far));
		}
		ek->far[ek->n_far++] = (struct keyseq){key, seq};
		return;
	}
	if (2 * (ek->used + 1) > ek->cap) {
		struct recent *old = ek->slots;
		size_t oldcap = ek->cap;

		ek->cap *= 2;
		ek->slots = xcalloc(ek->cap, sizeof(*ek->slots));
		ek->used = 0;
		for (size_t j = 0; j < oldcap; j++)
			if (old[j].off)
				recent_put(ek, slot_key(&old[j]), slot_seq(ek, &old[j]));
		free(old);
	}
	for (i = slot_of(ek, key); ek->slots[i].off; i = (i + 1) & (ek->cap - 1))
		;
	ek->slots[i].key_lo = (uint32_t)(uint64_t)key;
	ek->slots[i].key_hi = (uint32_t)((uint64_t)key >> 32);
	ek->slots[i].off = (uint32_t)(seq - ek->base);
	ek->used++;
}

/* Empties the tables; the seqs put next are after `base`. */
static void
recent_clear(struct eventkeys *ek, int64_t base)
{
	memset(ek->slots, 0, ek->cap * sizeof(*ek->slots));
	ek->used = 0;
	ek->n_far = 0;
	ek->base = base;
	ek->top = base;
	ek->prev.slots = NULL;
}

/* Finds up to `max` - *n seqs stored with `key` in the table (slots, cap, base). */
static void
table_find(const struct recent *slots, size_t cap, int64_t base, int64_t key, int64_t *cand,
	   size_t *n, size_t max)
{
	for (size_t i = slot_in(cap, key); slots[i].off && *n < max; i = (i + 1) & (cap - 1))
		if (slot_key(&slots[i]) == key)
			cand[(*n)++] = base + (int64_t)slots[i].off;
}

/* Drops the keys of events up to `upto` (merged), keeping the later ones. */
static void
recent_drop_upto(struct eventkeys *ek, int64_t upto)
{
	struct recent *old = ek->slots;
	struct keyseq *far = ek->far;
	size_t n_far = ek->n_far;
	int64_t oldbase = ek->base;

	ek->slots = xcalloc(ek->cap, sizeof(*ek->slots));
	ek->used = 0;
	ek->far = NULL;
	ek->n_far = ek->cap_far = 0;
	ek->base = upto;
	for (size_t i = 0; i < ek->cap; i++)
		if (old[i].off && oldbase + (int64_t)old[i].off > upto)
			recent_put(ek, slot_key(&old[i]), oldbase + (int64_t)old[i].off);
	for (size_t i = 0; i < n_far; i++)
		if (far[i].seq > upto)
			recent_put(ek, far[i].key, far[i].seq);
	free(old);
	free(far);
}

static int
recent_order(const void *a, const void *b)
{
	const struct keyseq *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A key goes into the filter, and into the one being rebuilt if there is one. */
static void
bloom_add(struct eventkeys *ek, int64_t key)
{
	keyfilter_add(ek->bloom, key);
	if (ek->rebuild.bloom)
		keyfilter_add(ek->rebuild.bloom, key);
}

static int
load_recent(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, "SELECT key, seq FROM events WHERE seq > ? AND key != 0", -1,
			       &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot read recent event keys");
	sqlite3_bind_int64(st, 1, ek->merged_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t key = sqlite3_column_int64(st, 0);

		bloom_add(ek, key);
		recent_put(ek, key, sqlite3_column_int64(st, 1));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_fail(c, err, "cannot read recent event keys");
}

/* The Bloom filter over every stored key: the archive, then the recent ones. */
static int
load_bloom(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err)
{
	sqlite3_stmt *st;
	uint64_t n = 0;
	int rc;

	if (sqlite3_prepare_v2(c->db,
			       "SELECT (SELECT count(*) FROM event_keys) + "
			       "(SELECT count(*) FROM events WHERE seq > ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot count event keys");
	sqlite3_bind_int64(st, 1, ek->merged_seq);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	keyfilter_free(ek->bloom);
	ek->bloom = keyfilter_new(n + ek->merge_every);
	if (sqlite3_prepare_v2(c->db, "SELECT key FROM event_keys", -1, &st, NULL) != SQLITE_OK)
		return store_fail(c, err, "cannot read event keys");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		keyfilter_add(ek->bloom, sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_fail(c, err, "cannot read event keys");
}

struct eventkeys *
eventkeys_load(struct dbconn *c, uint32_t merge_every, struct aupd_error *err)
{
	struct eventkeys *ek = xcalloc(1, sizeof(*ek));
	char *merged = store_meta_get(c, "keys_merged_seq");

	pthread_rwlock_init(&ek->lock, NULL);
	ek->merged_seq = merged ? atoll(merged) : 0;
	ek->base = ek->merged_seq;
	ek->top = ek->base;
	ek->merge_every = merge_every ? merge_every : 1;
	/*
	 * 256 slices a merge: one of a million keys takes 3 ms or so of the
	 * sequencer's time (64 made single events' p99 12-14 ms while a merge
	 * went on, 256 5.6-6.4 ms)
	 */
	ek->merge.slice = ek->merge_every / 256 ? ek->merge_every / 256 : 1;
	/*
	 * and twice that many keys a slice of a filter rebuild: 8,192 by
	 * default, about 3 ms (the whole rebuild at once took 739 ms at 2 M
	 * stored keys, and single events' p99 went to 592 ms)
	 */
	ek->rebuild.slice = 2 * ek->merge.slice;
	free(merged);
	ek->cap = 1024;
	while (ek->cap < 2 * ek->merge_every)
		ek->cap *= 2;
	ek->slots = xcalloc(ek->cap, sizeof(*ek->slots));
	if (load_bloom(ek, c, err) < 0 || load_recent(ek, c, err) < 0) {
		eventkeys_free(ek);
		return NULL;
	}
	return ek;
}

void
eventkeys_free(struct eventkeys *ek)
{
	if (!ek)
		return;
	keyfilter_free(ek->bloom);
	keyfilter_free(ek->rebuild.bloom);
	free(ek->slots);
	free(ek->merge.src);
	free(ek->merge.far);
	free(ek->far);
	free(ek->merge.keys);
	pthread_rwlock_destroy(&ek->lock);
	free(ek);
}

/* Does the event at `seq` have this tenant and id?  1 yes, 0 no, -1 on error. */
static int
is_event(struct dbconn *c, int64_t seq, const char *tenant, const char *id, struct aupd_error *err)
{
	sqlite3_stmt *st = store_cached(c, sql_event_at, err);
	int rc, same = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		same = !strcmp((const char *)sqlite3_column_text(st, 0), tenant) &&
		       !strcmp((const char *)sqlite3_column_text(st, 1), id);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(c, err, "cannot read an event");
	return same;
}

int64_t
eventkeys_find(struct eventkeys *ek, struct dbconn *c, int64_t key, const char *tenant,
	       const char *id, struct aupd_error *err)
{
	int64_t cand[MAX_CANDIDATES], found = 0;
	size_t n = 0;
	sqlite3_stmt *st;
	bool maybe;
	int rc;

	/* consult memory before storage: a merge commits before it clears memory */
	pthread_rwlock_rdlock(&ek->lock);
	maybe = keyfilter_maybe(ek->bloom, key);
	if (maybe) {
		table_find(ek->slots, ek->cap, ek->base, key, cand, &n, MAX_CANDIDATES);
		if (ek->prev.slots)
			table_find(ek->prev.slots, ek->prev.cap, ek->prev.base, key, cand, &n,
				   MAX_CANDIDATES);
		for (size_t i = 0; i < ek->n_far && n < MAX_CANDIDATES; i++)
			if (ek->far[i].key == key)
				cand[n++] = ek->far[i].seq;
	}
	pthread_rwlock_unlock(&ek->lock);
	if (!maybe)
		return 0; /* never stored: the common case costs no lookup at all */
	for (size_t i = 0; i < n; i++) {
		rc = is_event(c, cand[i], tenant, id, err);
		if (rc != 0)
			return rc < 0 ? -1 : cand[i];
	}
	if (!(st = store_cached(c, sql_archived, err)))
		return -1;
	sqlite3_bind_int64(st, 1, key);
	while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		int same = is_event(c, seq, tenant, id, err);

		if (same < 0) {
			sqlite3_reset(st);
			return -1;
		}
		if (same)
			found = seq;
	}
	if (!found && rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return store_fail(c, err, "cannot look up an event key");
	}
	sqlite3_reset(st);
	return found;
}

void
eventkeys_add(struct eventkeys *ek, int64_t key, int64_t seq)
{
	pthread_rwlock_wrlock(&ek->lock);
	bloom_add(ek, key);
	recent_put(ek, key, seq);
	pthread_rwlock_unlock(&ek->lock);
	if (ek->merge.active)
		ek->merge.added++;
}

bool
eventkeys_merge_due(const struct eventkeys *ek)
{
	if (ek->incomplete)
		return false;
	if (ek->n_far)
		return true; /* a merge rebases the table: every slice at once */
	if (!ek->merge.active)
		return ek->used >= ek->merge_every;
	/*
	 * A step whenever the merge is not ahead of the pace that ends it once
	 * half of merge_every new keys arrived: ingest pays a step now and then,
	 * never the whole merge at once.  Steps: the preparation's, then the
	 * slices.
	 */
	size_t keys = ek->merge.prep < 2 * PREP_STEPS ? ek->merge.expect : ek->merge.n;
	double steps = 2.0 * PREP_STEPS + (double)((keys + ek->merge.slice - 1) / ek->merge.slice);
	double done = (double)ek->merge.prep + (double)ek->merge.done / (double)ek->merge.slice;

	return done * (double)ek->merge_every <= 2.0 * (double)ek->merge.added * steps;
}

/* A key's bucket: its top 8 bits, numbered in the keys' (signed) order. */
static unsigned
key_bucket(int64_t key)
{
	return (unsigned)(((uint64_t)key ^ 0x8000000000000000ULL) >> 56);
}

/*
 * Starts a merge of every recent key: the table is set aside (still
 * searched) and new keys go to a fresh one; the far keys are copied, since
 * the list stays in use.  The keys are grouped by merge_prepare().
 */
static void
merge_start(struct eventkeys *ek)
{
	int64_t upto = ek->top > ek->merged_seq ? ek->top : ek->merged_seq;
	size_t n_far = ek->n_far;

	ek->merge.far = xmalloc((n_far ? n_far : 1) * sizeof(*ek->merge.far));
	if (n_far)
		memcpy(ek->merge.far, ek->far, n_far * sizeof(*ek->far));
	ek->merge.n_far = n_far;
	ek->merge.expect = ek->used + n_far;
	pthread_rwlock_wrlock(&ek->lock);
	ek->merge.src = ek->prev.slots = ek->slots;
	ek->merge.src_cap = ek->prev.cap = ek->cap;
	ek->merge.src_base = ek->prev.base = ek->base;
	ek->slots = xcalloc(ek->cap, sizeof(*ek->slots));
	ek->used = 0;
	ek->base = upto;
	pthread_rwlock_unlock(&ek->lock);
	ek->merge.active = true;
	ek->merge.upto = upto;
	ek->merge.prep = 0;
	memset(ek->merge.bucket_end, 0, sizeof(ek->merge.bucket_end));
	ek->merge.keys = NULL;
	ek->merge.reloaded = false;
	ek->merge.n = 0;
	ek->merge.sorted = 0;
	ek->merge.done = 0;
	ek->merge.added = 0;
	ek->merge.t_us = 0;
	ek->merge.pause_us = 0;
}

/* Counts (first pass) or places (second pass) a key of the merge by its bucket. */
static void
merge_group(struct eventkeys *ek, bool place, struct keyseq k)
{
	size_t *end = &ek->merge.bucket_end[key_bucket(k.key)];

	if (k.key == 0) /* an event stored without a key */
		return;
	if (place)
		ek->merge.keys[(*end)++] = k;
	else
		(*end)++;
}

/*
 * One step of grouping the keys by bucket, so that each page of the index
 * is visited once: PREP_STEPS steps count the keys of each bucket, a
 * 1/PREP_STEPS part of the table each (and the far keys at the last), then
 * as many place them.  After both, bucket_end[b] is where bucket b ends.
 */
static void
merge_prepare(struct eventkeys *ek)
{
	bool place = ek->merge.prep >= PREP_STEPS;
	unsigned step = ek->merge.prep % PREP_STEPS;
	size_t per = (ek->merge.src_cap + PREP_STEPS - 1) / PREP_STEPS;
	size_t from = step * per, to = from + per;
	const struct recent *src = ek->merge.src;

	if (to > ek->merge.src_cap)
		to = ek->merge.src_cap;
	for (size_t i = from; i < to; i++)
		if (src[i].off)
			merge_group(ek, place,
				    (struct keyseq){slot_key(&src[i]),
						    ek->merge.src_base + (int64_t)src[i].off});
	ek->merge.prep++;
	if (step != PREP_STEPS - 1)
		return;
	for (size_t i = 0; i < ek->merge.n_far; i++)
		merge_group(ek, place, ek->merge.far[i]);
	if (!place) {
		size_t *end = ek->merge.bucket_end, n = 0;

		for (unsigned b = 0; b < MERGE_BUCKETS; b++) {
			n += end[b];
			end[b] = n - end[b]; /* for now, where the bucket starts */
		}
		ek->merge.n = n;
		ek->merge.keys = xmalloc((n ? n : 1) * sizeof(*ek->merge.keys));
	}
}

/* Sorts every bucket that holds a key before `end`. */
static void
merge_sort_upto(struct eventkeys *ek, size_t end)
{
	while (ek->merge.sorted < MERGE_BUCKETS) {
		unsigned b = ek->merge.sorted;
		size_t from = b ? ek->merge.bucket_end[b - 1] : 0;

		if (from >= end)
			break;
		qsort(ek->merge.keys + from, ek->merge.bucket_end[b] - from,
		      sizeof(*ek->merge.keys), recent_order);
		ek->merge.sorted++;
	}
}

static void rebuild_start(struct eventkeys *ek);

/* Counts a step of the merge begun at t0 (monotonic microseconds). */
static void
merge_timed(struct eventkeys *ek, int64_t t0)
{
	int64_t t = time_mono_us() - t0;

	ek->merge.t_us += t;
	if (t > ek->merge.pause_us)
		ek->merge.pause_us = t;
}

/*
 * A merge slice's commit is not synced (synchronous=NORMAL for it alone):
 * it copies keys the events table already holds durably, and WAL commits
 * reach the disk in order, so the next batch's synced commit carries it.
 * A crash loses at most the slices after that commit; keys_merged_seq,
 * written with the last slice, then still points before them and a
 * restart takes their keys from the events table again.  Syncing each
 * slice cost 257 fsyncs a merge of a million keys, on a busy disk up to
 * 160 ms of the sequencer's time in one slice.
 */
static int
merge_sync(struct dbconn *c, const char *sql, struct aupd_error *err)
{
	sqlite3_stmt *st = store_cached(c, sql, err);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail(c, err, "cannot set synchronous");
}

/* Back to synced commits, without which no batch may commit: failing that ends the daemon. */
static void
merge_sync_full(struct dbconn *c)
{
	struct aupd_error err;

	if (merge_sync(c, sql_sync_full, &err) < 0) {
		log_err("cannot make commits synced again after an event key merge: %s", err.msg);
		abort();
	}
}

int
eventkeys_merge(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err)
{
	int64_t t0 = time_mono_us();
	sqlite3_stmt *st;
	size_t end;
	bool last;

	if (!ek->merge.active)
		merge_start(ek);
	if (ek->merge.prep < 2 * PREP_STEPS) {
		merge_prepare(ek);
		merge_timed(ek, t0);
		return 0;
	}
	end = ek->merge.done + ek->merge.slice;
	if (end > ek->merge.n)
		end = ek->merge.n;
	last = end == ek->merge.n;
	merge_sort_upto(ek, end);
	if (merge_sync(c, sql_sync_normal, err) < 0)
		return -1;
	if (store_begin_immediate(c, err) < 0) {
		merge_sync_full(c);
		return -1;
	}
	for (size_t i = ek->merge.done; i < end;) {
		size_t rows = end - i >= MERGE_ROWS ? MERGE_ROWS : 1;

		if (!(st = store_cached(c, rows > 1 ? sql_merge_rows : sql_merge, err)))
			goto err_rollback;
		for (size_t r = 0; r < rows; r++, i++) {
			sqlite3_bind_int64(st, (int)(2 * r + 1), ek->merge.keys[i].key);
			sqlite3_bind_int64(st, (int)(2 * r + 2), ek->merge.keys[i].seq);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_fail(c, err, "cannot merge event keys");
			sqlite3_reset(st);
			goto err_rollback;
		}
		sqlite3_reset(st);
	}
	if (last) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%lld", (long long)ek->merge.upto);
		if (store_meta_set(c, "keys_merged_seq", buf, err) < 0)
			goto err_rollback;
	}
	if (store_commit(c, err) < 0)
		goto err_rollback;
	merge_sync_full(c);
	ek->merge.done = end;
	if (!last) {
		merge_timed(ek, t0);
		return 0;
	}

	/* every slice is in: the keys leave memory */
	pthread_rwlock_wrlock(&ek->lock);
	if (ek->merge.reloaded) {
		recent_drop_upto(ek, ek->merge.upto);
	} else {
		size_t k = 0;

		for (size_t i = 0; i < ek->n_far; i++)
			if (ek->far[i].seq > ek->merge.upto)
				ek->far[k++] = ek->far[i];
		ek->n_far = k;
	}
	ek->prev.slots = NULL;
	ek->merged_seq = ek->merge.upto;
	pthread_rwlock_unlock(&ek->lock);
	if (keyfilter_full(ek->bloom) && !ek->rebuild.bloom)
		rebuild_start(ek);
	merge_timed(ek, t0);
	log_info("merged %zu event keys into the idempotency index in %lld ms (%zu slices, the "
		 "longest %.1f ms)",
		 ek->merge.n, (long long)(ek->merge.t_us / 1000),
		 (ek->merge.n + ek->merge.slice - 1) / ek->merge.slice,
		 (double)ek->merge.pause_us / 1000.0);
	free(ek->merge.keys);
	ek->merge.keys = NULL;
	free(ek->merge.src);
	ek->merge.src = NULL;
	free(ek->merge.far);
	ek->merge.far = NULL;
	ek->merge.active = false;
	return 0;

err_rollback:
	store_rollback(c);
	merge_sync_full(c);
	return -1;
}

/*
 * Starts a larger filter: sized for the keys the full one took (a few
 * counted twice, if ever stored twice) and a merge's worth more;
 * eventkeys_rebuild() fills it.
 */
static void
rebuild_start(struct eventkeys *ek)
{
	ek->rebuild.bloom = keyfilter_new(keyfilter_keys(ek->bloom) + ek->merge_every);
	ek->rebuild.in_events = false;
	ek->rebuild.next = INT64_MIN;
	ek->rebuild.from_seq = ek->merged_seq;
	ek->rebuild.to_seq = ek->top;
	ek->rebuild.n = 0;
	ek->rebuild.slices = 0;
	ek->rebuild.t_us = 0;
	ek->rebuild.pause_us = 0;
}

bool
eventkeys_rebuild_due(const struct eventkeys *ek)
{
	return ek->rebuild.bloom != NULL;
}

int
eventkeys_rebuild(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err)
{
	int64_t t0 = time_mono_us(), last = INT64_MIN, t;
	struct keyfilter *old;
	sqlite3_stmt *st;
	size_t rows = 0;
	int rc;

	if (!ek->rebuild.bloom)
		return 0;
	if (!(st = store_cached(c, ek->rebuild.in_events ? sql_event_keys_after : sql_keys_from, err)))
		return -1;
	sqlite3_bind_int64(st, 1, ek->rebuild.next);
	sqlite3_bind_int64(st, 2, (int64_t)ek->rebuild.slice);
	if (ek->rebuild.in_events)
		sqlite3_bind_int64(st, 3, ek->rebuild.to_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* the key, or the seq and the key */
		last = sqlite3_column_int64(st, 0);
		keyfilter_add(ek->rebuild.bloom, sqlite3_column_int64(st, ek->rebuild.in_events));
		rows++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(c, err, "cannot read event keys for the idempotency filter");
	t = time_mono_us() - t0;
	ek->rebuild.t_us += t;
	if (t > ek->rebuild.pause_us)
		ek->rebuild.pause_us = t;
	ek->rebuild.n += rows;
	ek->rebuild.slices++;
	if (rows == ek->rebuild.slice && (ek->rebuild.in_events || last != INT64_MAX)) {
		/*
		 * more to read: after this seq, or from the next key (a key stored
		 * under several seqs may straddle two slices: added twice, harmless)
		 */
		ek->rebuild.next = ek->rebuild.in_events ? last : last + 1;
		return 0;
	}
	if (!ek->rebuild.in_events) {
		ek->rebuild.in_events = true;
		ek->rebuild.next = ek->rebuild.from_seq;
		return 0;
	}
	pthread_rwlock_wrlock(&ek->lock);
	old = ek->bloom;
	ek->bloom = ek->rebuild.bloom;
	ek->rebuild.bloom = NULL;
	pthread_rwlock_unlock(&ek->lock);
	keyfilter_free(old);
	log_info("rebuilt the idempotency filter larger over %zu stored keys in %lld ms (%zu "
		 "slices, the longest %.1f ms)",
		 ek->rebuild.n, (long long)(ek->rebuild.t_us / 1000), ek->rebuild.slices,
		 (double)ek->rebuild.pause_us / 1000.0);
	return 0;
}

int
eventkeys_reload(struct eventkeys *ek, struct dbconn *c, struct aupd_error *err)
{
	int rc;

	pthread_rwlock_wrlock(&ek->lock);
	recent_clear(ek, ek->merged_seq);
	rc = load_recent(ek, c, err);
	pthread_rwlock_unlock(&ek->lock);
	/* a table loaded in part must not be merged: merged_seq would pass the keys left out */
	ek->incomplete = rc < 0;
	if (ek->merge.active && rc == 0)
		ek->merge.reloaded = true;
	return rc;
}
