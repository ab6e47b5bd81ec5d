/* policy.h - rulesets (contract section 7): load, compile, evaluate, keep window state */
#ifndef AUPD_POLICY_H
#define AUPD_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/event.h"
#include "aupd/types.h"
#include "aupd/util.h"

/*
 * A compiled ruleset: immutable once loaded, shared between threads by
 * reference counting.  A policy_state holds what evaluation accumulates
 * (sliding windows, open deletion obligations, escalation windows); it
 * belongs to one thread (the daemon's sequencer, or a replay).
 */
struct ruleset;
struct policy_state;

struct ruleset_opts {
	/* Notifier names from the configuration; NULL: `notify:` names are not checked. */
	const char *const *notifiers;
	size_t n_notifiers;
};

/*
 * Loads rule files and directories (a directory contributes its *.yaml
 * files in name order).  Every problem is added to `dl` as a positioned
 * diagnostic ("FILE:LINE:COL: error: MESSAGE"); on any problem NULL is
 * returned.  The result has one reference, owned by the caller.
 */
struct ruleset *ruleset_load(const char *const *paths, size_t n_paths,
			     const struct ruleset_opts *opts, struct diag_list *dl);
/* Thread-safe reference counting; ruleset_unref(NULL) is a no-op. */
struct ruleset *ruleset_ref(struct ruleset *rs);
void ruleset_unref(struct ruleset *rs);

/* "sha256:" and the hex SHA-256 over the loaded files' bytes in load order. */
const char *ruleset_version(const struct ruleset *rs);
size_t ruleset_n_files(const struct ruleset *rs);
const char *ruleset_file_path(const struct ruleset *rs, size_t i);
const unsigned char *ruleset_file_bytes(const struct ruleset *rs, size_t i, size_t *len);
size_t ruleset_n_rules(const struct ruleset *rs);
size_t ruleset_n_escalations(const struct ruleset *rs);
size_t ruleset_n_exemptions(const struct ruleset *rs);
/* The `tests:` cases of the loaded files, in file order. */
size_t ruleset_n_tests(const struct ruleset *rs);
/*
 * Runs test case i from empty state and returns true when every `expect`
 * holds; otherwise appends one line per failure to `report`
 * ("FILE:LINE: test 'NAME': event ID: expected ...; got ...").
 */
bool ruleset_test_run(const struct ruleset *rs, size_t i, struct strbuf *report);
/*
 * A description for GET /v1/rules (new reference):
 * {"rules_version", "files": [path...], "rules": [{"id", "kind", "effect",
 * "severity", "mode", "tags", "description"}...], "escalations": [...],
 * "exemptions": [...]}.
 */
json_t *ruleset_describe(const struct ruleset *rs);
/* The longest sliding window of any limit rule or escalation, in microseconds. */
int64_t ruleset_max_window(const struct ruleset *rs);

/* One rule that fired for an event. */
struct match {
	const char *rule; /* borrowed from the ruleset */
	enum effect effect;
	enum severity severity;
	bool shadow;
	const char *exempted; /* exemption id (borrowed), or NULL */
	char *message;        /* owned */
	const char *const *tags; /* borrowed */
	size_t n_tags;
};

/* A deletion obligation opened or discharged by an event (retention `track`). */
enum obligation_op {
	OBL_OPEN,
	OBL_DISCHARGE,
};

struct obligation {
	enum obligation_op op;
	char *rule;
	char *tenant;
	char *resource_id;
	aupd_time deadline;
	char *opened_by;    /* event id that opened it */
	int64_t opened_seq; /* the seq of the verdict that opened it (its key in storage) */
	enum effect effect;
	enum severity severity;
	bool shadow;
	/*
	 * The four strings are one allocation, at `rule`, that
	 * obligation_clear() releases.  Otherwise they are borrowed (as in a
	 * verdict's OBL_OPEN obligations, from the judged event and the
	 * ruleset, or in one built on the stack) and left alone.
	 */
	bool owned;
};

struct verdict {
	enum effect verdict;
	struct match *matched; /* every rule that fired, in ruleset order */
	size_t n_matched;
	/*
	 * Changes to persist with the verdict.  An obligation it opens borrows
	 * its strings from the event and the ruleset; one it discharges owns
	 * them (`owned`).
	 */
	struct obligation *obligations;
	size_t n_obligations;
};

void verdict_clear(struct verdict *v);
/*
 * Releases an obligation the policy layer handed out (in a verdict, or from
 * policy_take_overdue()): its strings if `owned`.
 */
void obligation_clear(struct obligation *o);

enum eval_flags {
	/*
	 * Rebuilding state from stored events: windows and escalation windows
	 * are fed, obligations are neither opened nor discharged.
	 */
	EVAL_REPLAY = 1 << 0,
	/*
	 * For tests: every resource field is looked up afresh, not through
	 * the per-event cache, to check that the cache changes nothing.
	 */
	EVAL_UNCACHED = 1 << 1,
	/*
	 * For tests: every rule is judged on its own `when`, in ruleset
	 * order, not through the action index and its folded conditions.
	 */
	EVAL_UNINDEXED = 1 << 2,
};

/*
 * Judges one event: every rule is evaluated (never first-match-wins);
 * windows take the event; obligations are opened and discharged.  `out`
 * borrows from `ev` and `rs` (rule ids, opened obligations): read it while
 * both are alive.  `out` must be cleared with verdict_clear().  Never fails.
 */
void policy_eval(const struct ruleset *rs, struct policy_state *st, const struct event *ev,
		 enum effect default_effect, unsigned flags, struct verdict *out);

struct policy_state *policy_state_new(void);
void policy_state_free(struct policy_state *st);
/*
 * After a reload: keeps the windows of rules and escalations whose id and
 * window are unchanged in `rs`, and drops the rest.
 */
void policy_state_retain(struct policy_state *st, const struct ruleset *rs);
/* Entries held in sliding windows, and an estimate of the bytes they use. */
size_t policy_state_window_entries(const struct policy_state *st, size_t *bytes);

/*
 * The seq the next verdict will be recorded under: obligations it opens
 * carry it (opened_seq), their key in storage.  The writer sets it before
 * each evaluation; offline evaluation may leave it 0.
 */
void policy_next_seq(struct policy_state *st, int64_t seq);

/* Loads an obligation kept in storage (at start-up), with its opened_seq. */
void policy_obligation_restore(struct policy_state *st, const struct obligation *o);
/* Open obligations. */
size_t policy_obligation_count(const struct policy_state *st);
/*
 * Takes every obligation whose deadline is <= now (in deadline order) out
 * of the state; the caller records each as a retention-overdue verdict and
 * frees the array with obligation_clear() on each and free().
 */
size_t policy_take_overdue(struct policy_state *st, aupd_time now, struct obligation **out);

/*
 * The verdict of a retention-overdue record: one match for the obligation's
 * rule, with the effect, severity and shadow flag stored in the obligation
 * and a message naming the resource and the deadline.  Clear with
 * verdict_clear().
 */
void policy_overdue_verdict(const struct ruleset *rs, const struct obligation *o,
			    struct verdict *out);

/* ---- escalations ---- */

struct escalation_hit {
	const char *escalation; /* id, borrowed */
	enum alert_level level;
	char *group_key; /* owned: group values joined by '\x1f' */
	json_t *group;   /* owned: {"tenant": "a", ...} */
	const char *const *notify; /* borrowed */
	size_t n_notify;
	int64_t cooldown_us;
	int64_t window_us;
	bool crossed;         /* the threshold is met (else: a matching verdict below it) */
	size_t count;         /* verdicts in the window, this one included */
	int64_t *seqs;        /* owned: seqs of the verdicts in the window, oldest first */
	size_t n_seqs;
	aupd_time first;      /* time of the oldest counted verdict */
	aupd_time last;
};

void escalation_hit_clear(struct escalation_hit *h);

/*
 * Feeds one recorded verdict to the escalations.  `ev` is the judged event,
 * or NULL for a retention-overdue record (then `ob` describes it); `t` is the
 * event's time (the deadline for overdue records).  For each escalation the
 * verdict counts toward, an entry is returned: `crossed` when its threshold
 * is met with this verdict counted (then with the seqs in the window), else
 * a match below the threshold, which still updates an alert whose cooldown
 * covers it.  The caller frees each with escalation_hit_clear() and the array
 * with free().  With EVAL_REPLAY the windows are fed and nothing is returned.
 */
size_t policy_escalate(const struct ruleset *rs, struct policy_state *st, const struct event *ev,
		       const struct obligation *ob, const struct verdict *v, int64_t seq,
		       aupd_time t, unsigned flags, struct escalation_hit **hits);

/* ---- verdict documents (contract section 4) ---- */

/*
 * Appends the verdict document for an event: {"tenant", "id", "seq",
 * "verdict", "matched": [...], "rules_version", "decided_at", "duplicate"}.
 */
void verdict_encode(struct strbuf *sb, const struct event *ev, const struct verdict *v,
		    int64_t seq, const char *rules_version, aupd_time decided_at, bool duplicate);
/*
 * Appends the document of a retention-overdue record: {"kind":
 * "retention-overdue", "tenant", "resource": {"id"}, "rule", "deadline",
 * "opened_by", "seq", "verdict", "matched": [...], "rules_version", "decided_at"}.
 */
void overdue_encode(struct strbuf *sb, const struct obligation *o, const struct verdict *v,
		    int64_t seq, const char *rules_version, aupd_time decided_at);

/* Appends s as a JSON string literal (with quotes). */
void json_quote(struct strbuf *sb, const char *s);

#endif
