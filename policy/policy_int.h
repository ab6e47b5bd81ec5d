/* policy_int.h - the policy layer's internal structures: compiled rules, conditions, state */
#ifndef AUPD_POLICY_INT_H
#define AUPD_POLICY_INT_H

#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/policy.h"
#include "aupd/yamldoc.h"

/* ---- event.c: the contract's field checks, shared with the scanner (event_scan.c) ---- */

/* 1 to 128 of A-Z a-z 0-9 . _ : - */
bool event_valid_id(const char *s, size_t len);
/* lowercase dotted words such as face.search, at most 128 characters */
bool event_valid_action(const char *s, size_t len);

/* ---- arena.c: build-once allocations owned by a ruleset ---- */

struct arena {
	struct arena_block *head;
};

/* Zeroed memory that lives until arena_free(); never NULL. */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a);

/* ---- htab.c: open addressing of pointers with 32-bit hashes ---- */

/*
 * A slot: the item's hash folded to 32 bits (htab_hash), 32 bits the table's
 * user keeps beside it (aux: carried when slots move, 0 on insertion), and
 * the item.  Sixteen bytes, so that a probe touches one cache line and a
 * sweep can read aux without touching the items.
 */
struct hslot {
	uint32_t h; /* 0 marks an empty slot; htab_hash() is never 0 */
	uint32_t aux;
	void *p;
};

struct htab {
	struct hslot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

uint64_t hash_bytes(const void *data, size_t len);
static inline uint64_t
hash_str(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return hash_bytes(s, n);
}

/* The slot hash of a 64-bit hash: never 0. */
static inline uint32_t
htab_hash(uint64_t h)
{
	uint32_t x = (uint32_t)(h ^ (h >> 32));

	return x ? x : 1;
}

/* Inserts an item known to be absent; returns its slot (valid until the next insertion). */
size_t htab_insert(struct htab *t, uint32_t h, void *p);
/* Removes the item in slot i; returns true when another item moved into slot i. */
bool htab_remove_at(struct htab *t, size_t i);
void htab_free(struct htab *t);
/* First slot index for h; probe with (i + 1) & (cap - 1) until an empty slot. */
static inline size_t
htab_start(const struct htab *t, uint32_t h)
{
	return (size_t)h & (t->cap - 1);
}

/* ---- strset.c: immutable string sets and maps, built once at load ---- */

struct strmap {
	const char **keys; /* slots, NULL when empty */
	void **vals;
	uint64_t *hashes;
	size_t cap; /* a power of two; 0 when n <= STRMAP_LINEAR */
	size_t n;
	const char **lkeys; /* the items in insertion order */
	void **lvals;
};

#define STRMAP_LINEAR 8

/* Builds a map of n distinct keys (later duplicates are ignored). */
void strmap_build(struct strmap *m, struct arena *a, const char *const *keys, void *const *vals,
		  size_t n);
/* The value for key, or NULL; `found` (optional) tells a NULL value from absence. */
void *strmap_get(const struct strmap *m, const char *key, bool *found);
static inline bool
strmap_has(const struct strmap *m, const char *key)
{
	bool found = false;

	strmap_get(m, key, &found);
	return found;
}

/* ---- paths (path.c) ---- */

enum path_kind {
	P_ID,
	P_TENANT,
	P_ACTOR,
	P_ACTION,
	P_PURPOSE,
	P_QUANTITY,
	P_TIME,
	P_TIME_HOUR,
	P_TIME_WEEKDAY,
	P_RESOURCE,
	P_ATTR,
	/* escalations only: the verdict's own fields and its matched rules' */
	P_VERDICT,
	P_RULE,
	P_SEVERITY,
	P_EFFECT,
	P_TAGS,
};

/* Where a path may be used. */
enum path_ctx {
	PCTX_EVENT,	 /* rules, exemptions, messages */
	PCTX_ESCALATION, /* escalations: event fields and verdict fields */
};

struct path {
	enum path_kind kind;
	const char *text; /* as written */
	const char *key;  /* P_RESOURCE: the field name */
	const char **segs; /* P_ATTR: the keys under attributes */
	size_t n_segs;
	int key_id; /* P_RESOURCE: slot in the per-event cache, or -1 */
	bool created; /* P_RESOURCE: resource.created, a time */
	/* id, tenant, actor, action, purpose: 1 + the string's offset in struct event (else 0) */
	unsigned short ev_off;
};

/* Resource fields resolved once per event (the event's value, else its dataset's). */
#define RES_CACHE_KEYS 16
#define RES_KEY_COLLECTED_FOR 0
#define RES_KEY_ID 1
#define RES_KEY_DATASET 2

static inline bool
path_is_rule_field(enum path_kind k)
{
	return k == P_RULE || k == P_SEVERITY || k == P_EFFECT || k == P_TAGS;
}

/* Parses a path: 0, or -1 with a sentence in `why` (a buffer of whylen bytes). */
int path_parse(const char *s, enum path_ctx ctx, struct arena *a, struct path *out, char *why,
	       size_t whylen);

enum vkind {
	V_MISSING,
	V_STR,
	V_NUM,
	V_BOOL,
	V_TIME, /* a string that is an RFC 3339 time (time, resource.created) */
	V_RANK, /* an effect or severity name with its rank */
	V_TAGS,
	V_JSON, /* an attribute object or array */
};

struct value {
	enum vkind k;
	const char *s;
	double n;
	aupd_time t;
	int rank;
	bool b;
	const json_t *j;
	const char *const *tags;
	size_t n_tags;
};

struct dataset {
	const char *name;
	struct kv *fields; /* sorted by key */
	size_t n_fields;
	bool has_created;
	aupd_time created;
	const char *res[RES_CACHE_KEYS]; /* its value of each ruleset res_keys[i], or NULL */
};

/* What a path is resolved against. */
struct evctx {
	const struct ruleset *rs;
	const struct event *ev; /* NULL for a retention-overdue record */
	const struct obligation *ob;
	const struct verdict *v; /* escalations */
	const struct match *m;	 /* escalations: the matched rule under test */
	const struct dataset *ds;
	bool ds_done;
	bool uncached; /* EVAL_UNCACHED */
	bool res_done; /* res[] is filled */
	const char *res[RES_CACHE_KEYS]; /* by ruleset res_keys index */
};

void path_get_slow(const struct path *p, struct evctx *c, struct value *out);
/* Fills c->res[] (ruleset res_keys order): what ctx_resource() gives for each name. */
void ctx_resolve(struct evctx *c);

/* A resource field, the event's own or else its dataset's; NULL when missing. */
const char *ctx_resource(struct evctx *c, const char *key);

/* ctx_resource() through the per-event cache slot `id` (-1: no slot). */
static inline const char *
ctx_resource_id(struct evctx *c, const char *key, int id)
{
	/* EVAL_UNCACHED: looked up every time, the reference the cache is tested against */
	if (id < 0 || c->uncached)
		return ctx_resource(c, key);
	if (!c->res_done)
		ctx_resolve(c);
	return c->res[id];
}
/*
 * The value of a path for the event (or verdict, or overdue obligation) in
 * c.  The event's own strings, and resource fields once resolved, are read
 * here, inline: they are most of the paths conditions test.
 */
static inline void
path_get(const struct path *p, struct evctx *c, struct value *out)
{
	if (p->ev_off && c->ev) {
		out->s = *(const char *const *)(const void *)((const char *)c->ev + p->ev_off - 1);
		out->k = out->s ? V_STR : V_MISSING;
		return;
	}
	if (p->kind == P_RESOURCE && !p->created) {
		out->s = ctx_resource_id(c, p->key, p->key_id);
		out->k = out->s ? V_STR : V_MISSING;
		return;
	}
	path_get_slow(p, c, out);
}

/* Renders a value as text for messages and group keys (missing: ""). */
void value_render(const struct value *v, struct strbuf *sb);
/* The value as a number for `sum`; 0 when missing or not numeric. */
double value_amount(const struct value *v);
/* Formats a number without a trailing .0 when integral. */
void number_format(double d, char *buf, size_t len);

/* ---- conditions (cond.c, cond_compile.c) ---- */

enum cond_op {
	OP_EQ,
	OP_NE,
	OP_IN,
	OP_NOT_IN,
	OP_GT,
	OP_GTE,
	OP_LT,
	OP_LTE,
	OP_EXISTS,
	OP_GLOB,
	OP_REGEX,
};

struct operand {
	const char *s;
	bool num_ok;	/* the text reads as a finite number */
	bool plain_num; /* ... and was written as a plain YAML number */
	double num;
	bool time_ok; /* parses as RFC 3339 */
	aupd_time t;
	int b;	  /* 0/1 for plain false/true, else -1 */
	int rank; /* effect or severity rank for those paths, else -1 */
};

/* A list operand: the items, and a set of their texts for fast string lookup. */
struct oplist {
	const char *name; /* "$name", or NULL for an inline list */
	struct operand *items;
	size_t n;
	struct strmap set;
	bool any_num;
};

enum cond_kind {
	C_TRUE,
	C_FALSE,
	C_ALL,
	C_ANY,
	C_NOT,
	C_TEST,
};

struct cond {
	enum cond_kind kind;
	struct cond **kids;
	size_t n_kids;
	/* C_TEST */
	struct path path;
	enum cond_op op;
	struct operand arg;
	const struct oplist *list;
	regex_t *re;
	bool exists;
};

bool cond_eval(const struct cond *c, struct evctx *ctx);
/* True when the condition names one of rule, severity, effect, tags anywhere. */
bool cond_names_rule_fields(const struct cond *c);

/* ---- the loader's state, shared by the rules_load*.c files ---- */

struct lfile {
	char *path;
	char *bytes;
	size_t len;
	struct ydoc yd;
	bool parsed;
};

struct idrec {
	const char *id;
	const char *file;
	int line;
};

struct loader {
	struct ruleset *rs;
	struct diag_list *dl;
	const struct ruleset_opts *opts;
	struct lfile *files;
	size_t n_files;
	struct ydoc *yd; /* the file being compiled */
	/* lists by name */
	struct oplist **lists;
	size_t n_lists;
	/* every rule, escalation and exemption id so far */
	struct idrec *ids;
	size_t n_ids, cap_ids;
	/* ids of rules that did not compile: references to them add no second error */
	const char **broken;
	size_t n_broken;
	enum path_ctx pctx; /* where conditions being compiled live */
	int depth;	    /* nesting of conditions and test values */
	const char *what;   /* "rule 'x'" for messages */
};

struct cond *cond_compile(struct loader *ld, yaml_node_t *node);
/* An operand from a scalar node, checked against the path's kind; -1 after a diagnostic. */
int operand_compile(struct loader *ld, yaml_node_t *n, const struct path *p, enum cond_op op,
		    struct operand *out);
/* A list operand: a YAML sequence of scalars or a plain "$name"; p may be NULL. */
const struct oplist *oplist_compile(struct loader *ld, yaml_node_t *n, const struct path *p,
				    enum cond_op op);
/* Keeps a compiled regex for ruleset_free(). */
void ruleset_keep_regex(struct ruleset *rs, regex_t *re);
const struct oplist *loader_list(struct loader *ld, const char *name);
/* Gives a resource path its per-event cache slot. */
void loader_intern_key(struct loader *ld, struct path *p);
/* A path from a scalar node; -1 after a diagnostic. */
int path_compile(struct loader *ld, yaml_node_t *n, enum path_ctx ctx, struct path *out);

bool loader_id(struct loader *ld, yaml_node_t *n, const char *kind, const char **out);
const char *loader_str(struct loader *ld, yaml_node_t *n, const char *what);
int loader_duration(struct loader *ld, yaml_node_t *n, const char *what, int64_t *out);
/* A YAML list node, or NULL after a diagnostic. */
yaml_node_t *loader_seq(struct loader *ld, yaml_node_t *n, const char *what);
yaml_node_t *loader_map(struct loader *ld, yaml_node_t *n, const char *what);
int loader_effect(struct loader *ld, yaml_node_t *n, enum effect *out);
/* The index of the node's name in names[count]; -1 after a diagnostic (with a did-you-mean). */
int loader_enum(struct loader *ld, yaml_node_t *n, const char *what, const char *const *names,
		size_t count);
/* by: [tenant], the default of limits and escalations. */
void loader_default_by(struct loader *ld, struct path **by, size_t *n_by);
/*
 * Enters one level of nesting (conditions, test values): 0, and the caller
 * decrements ld->depth when done; -1 after a diagnostic when too deep.
 */
int loader_depth_enter(struct loader *ld, yaml_node_t *n);
#define LOADER_MAX_DEPTH 64

/* ---- messages (message.c) ---- */

enum seg_kind {
	SEG_TEXT,
	SEG_PATH,
	SEG_LIMIT_TOTAL,
	SEG_LIMIT_MAX,
	SEG_LIMIT_WINDOW,
	SEG_RETENTION_MAX,
	SEG_RETENTION_DEADLINE,
	SEG_RULE,
};

struct msg_seg {
	enum seg_kind kind;
	const char *text;
	size_t len;
	struct path path;
};

struct msg_tpl {
	struct msg_seg *segs;
	size_t n;
};

enum rule_kind {
	RK_CONDITION, /* a plain rule: fires when `when` holds */
	RK_LIMIT,
	RK_RETENTION,
	RK_REUSE,
};

/* "plain", "limit", "retention", "reuse" (ruleset.c). */
extern const char *const rule_kind_names[];

struct rule;

struct msg_tpl *message_compile(struct loader *ld, yaml_node_t *n, enum rule_kind kind);

/* What a fired rule reports besides the event's fields. */
struct fire_info {
	double total;
	aupd_time deadline;
	const char *group; /* limit: the group's values, for generated messages */
	bool unknown;	   /* reuse: fired for a missing purpose or collected_for */
};

char *message_render(const struct rule *r, struct evctx *c, const struct fire_info *fi);

/* ---- the compiled ruleset ---- */

struct limit_spec {
	bool count; /* sum: count */
	struct path sum;
	struct path *by;
	size_t n_by;
	int64_t window;
	const char *window_text; /* as written, for messages */
	double max;
};

struct retention_spec {
	struct path age_of;
	int64_t max;
	const char *max_text;
	bool track;
	struct cond *deleted_by; /* NULL: no track */
};

struct reuse_spec {
	struct strmap allowed; /* collected_for -> struct oplist * */
	bool unknown_fires;
};

struct exemption;

struct rule {
	const char *id;
	size_t id_len;
	uint64_t id_hash; /* hash_bytes() of id, for the obligations' keys */
	const char *description;
	const char *file;
	int line;
	size_t index;
	enum rule_kind kind;
	enum severity severity;
	enum effect effect;
	bool shadow;
	const char **tags;
	size_t n_tags;
	struct cond *when; /* NULL: every event */
	struct msg_tpl *message;
	struct limit_spec limit;
	struct retention_spec retention;
	struct reuse_spec reuse;
	const struct exemption **exemptions; /* the exemptions naming this rule, in order */
	size_t n_exemptions;
};

struct exemption {
	const char *id;
	const char *reason;
	const char **rules;
	size_t n_rules;
	struct cond *when;
	bool has_expires;
	aupd_time expires;
	const char *file;
	int line;
};

struct escalation {
	const char *id;
	const char *description;
	const char *file;
	int line;
	struct cond *when;
	bool names_rule_fields;
	size_t count;
	struct path *by;
	size_t n_by;
	int64_t window;
	int64_t cooldown;
	enum alert_level level;
	const char **notify;
	size_t n_notify;
};

struct test_expect {
	const char *id;
	const char *tenant; /* NULL: match by id alone */
	int line;
	bool has_verdict;
	enum effect verdict;
	bool has_rules;
	const char **rules;
	size_t n_rules;
	bool has_alerts; /* escalations whose threshold this verdict meets */
	const char **alerts;
	size_t n_alerts;
};

struct rule_test {
	const char *name;
	const char *file;
	int line;
	enum effect default_effect;
	json_t **events;
	int *event_lines;
	size_t n_events;
	struct test_expect *expect;
	size_t n_expect;
};

/*
 * Rules that can match an event with a given action, in ruleset order, and
 * their conditions with the tests of the action decided for it (ruleset.c):
 * when[i] (NULL: always) stands for the rule's `when`, deleted_by[i] for its
 * retention `deleted_by` (NULL without track).
 */
struct candidates {
	const uint32_t *idx;
	const struct cond *const *when;
	const struct cond *const *deleted_by;
	size_t n;
};

struct rs_file {
	char *path;
	unsigned char *bytes;
	size_t len;
};

struct ruleset {
	atomic_int refs;
	uint64_t serial; /* unique per load, for policy_state binding */
	char version[80];
	struct arena arena;
	struct rs_file *files;
	size_t n_files;
	struct rule *rules;
	size_t n_rules;
	struct escalation *escs;
	size_t n_escs;
	struct exemption *exs;
	size_t n_exs;
	struct dataset *datasets;
	size_t n_datasets;
	struct strmap dataset_map;
	struct rule_test *tests;
	size_t n_tests;
	struct strmap action_index; /* action -> struct candidates * */
	struct candidates unpinned;
	struct candidates unindexed; /* every rule on its own conditions (EVAL_UNINDEXED) */
	regex_t **regexes;
	size_t n_regexes, cap_regexes;
	const char *res_keys[RES_CACHE_KEYS]; /* resource field names with a cache slot */
	size_t n_res_keys;
	int64_t max_window;
};

/* rules_load_rule.c: one rule; false after diagnostics */
bool load_rule(struct loader *ld, yaml_node_t *item, struct rule *r);
/* rules_load_more.c */
void load_escalations(struct loader *ld, yaml_node_t *seq);
void load_exemptions(struct loader *ld, yaml_node_t *seq);
void load_tests(struct loader *ld, yaml_node_t *seq);
/* ruleset.c */
void ruleset_build_index(struct ruleset *rs);
void ruleset_free(struct ruleset *rs);
const struct rule *ruleset_rule(const struct ruleset *rs, const char *id);

/* ---- windows (window.c) ---- */

struct wentry {
	int64_t t;
	double amount;
};

/*
 * One group's entries, oldest first, in a ring of `cap` (a power of two)
 * slots.  One allocation holds the header, the key and (8-aligned after
 * it) the ring; escalation windows keep each entry's verdict seq after the
 * ring.  A group always holds at least one entry, and moves when its ring
 * is resized: window_add() returns where it is.
 */
struct wgroup {
	int64_t cur;	/* the time the running sum is positioned at */
	double running; /* the sum over [lo, hi) */
	uint32_t cap, head, n;
	uint32_t lo, hi; /* [lo, hi) holds the entries in (cur - W, cur] */
	uint32_t nsub;	 /* subtractions since running was last recomputed */
	uint32_t keylen;
	bool inexact;	    /* running may carry rounding error */
	bool cur_is_newest; /* cur is the newest entry's time (the last add was in order) */
	char key[];
};

struct window {
	int64_t w;
	int64_t slack;
	bool with_seqs;
	struct htab groups;
	size_t entries;
	size_t sweep_pos;
};

struct window *window_new(int64_t w, bool with_seqs);
void window_free(struct window *win);
/*
 * Adds an entry of `amount` at time t to the group `key` and positions the
 * group's running sum on (t - W, t]; the total is g->running afterwards.
 */
struct wgroup *window_add(struct window *win, const char *key, size_t keylen, int64_t t,
			  double amount, int64_t seq);
/* The seqs of the group's entries in its current window, oldest first (new array). */
int64_t *window_seqs(const struct window *win, const struct wgroup *g, size_t *n,
		     int64_t *first, int64_t *last);
/*
 * Visits up to `budget` slots: frees groups whose newest entry is older than
 * ref - W - slack, and trims old entries of the others.
 */
void window_sweep(struct window *win, int64_t ref, size_t budget);
size_t window_entries(const struct window *win, size_t *bytes);

/* ---- obligations (obligation.c) ---- */

struct obl_node;

/* A heap entry: what the heap orders by, beside the node. */
struct obl_hent {
	aupd_time deadline;
	uint64_t order; /* opening order: ties of deadline pop in it */
	struct obl_node *n;
};

struct obl_table {
	struct htab map; /* (rule, tenant, resource id) -> struct obl_node */
	/*
	 * A large map grows a few slots at a time: `old` is the map it outgrew,
	 * whose slots from `mig` on are not yet moved (a removed entry there
	 * is left with p NULL, so that probe chains stay whole).  old.slots is
	 * NULL when no move is under way.
	 */
	struct htab old;
	size_t mig;
	struct htab strs; /* rule ids, interned */
	struct obl_hent *heap; /* by (deadline, opening order) */
	struct {
		struct obl_node *n;
		uint32_t i;
	} idx_pend[32]; /* heap_idx writes not done yet */
	size_t n_idx_pend;
	size_t n, cap;
	uint64_t next_order;
	/*
	 * The nodes' memory (util.h): half the events of a biometric stream
	 * open an obligation, and nodes are freed far less often than they are
	 * made (at deletion or expiry, days later).
	 */
	struct sizepool pool;
};

/* The key of (rule, tenant, resource id) as far as the table knows its parts. */
struct obl_key {
	const char *rule, *tenant, *rid;
	size_t rl, tl, il;
	uint64_t rh, th, ih;
	struct istr *irule; /* NULL: no open obligation names the rule */
	struct obl_node *node; /* obl_open_prepare(): the node to fill if the key is new */
};

void obl_init(struct obl_table *t);
void obl_free_all(struct obl_table *t);
/* The open obligation of (rule, tenant, resource), or NULL. */
struct obl_node *obl_find(struct obl_table *t, const char *rule, const char *tenant,
			  const char *resource_id);
/* Opens an obligation (a copy of o's strings) unless it is open: true when opened; o->op is ignored. */
bool obl_open(struct obl_table *t, const struct obligation *o);
/*
 * obl_open() in two halves: the first hashes o's key and starts loading its
 * slot of the table, a cache miss, so that the second, called after other
 * work and before any other change to the table, finds it loaded.
 */
void obl_open_prepare(struct obl_table *t, const struct obligation *o, size_t rule_len,
		      uint64_t rule_hash, struct obl_key *k);
bool obl_open_finish(struct obl_table *t, struct obl_key *k, const struct obligation *o);
/* Removes n and copies it into out (owned strings, op OBL_DISCHARGE). */
void obl_discharge(struct obl_table *t, struct obl_node *n, struct obligation *out);
size_t obl_take_due(struct obl_table *t, aupd_time now, struct obligation **out);
size_t obl_count(const struct obl_table *t);
/* The bytes the open obligations use, allocator overhead aside. */
size_t obl_bytes(const struct obl_table *t);

/* ---- state (eval.c) ---- */

struct swin {
	char *id;
	int64_t w;
	bool esc;
	bool keep;
	struct window *win;
};

struct policy_state {
	uint64_t bound_serial;
	struct swin *wins;
	size_t n_wins, cap_wins;
	struct window **rule_win; /* by rule index */
	size_t n_rule_win;
	struct window **esc_win; /* by escalation index */
	size_t n_esc_win;
	struct obl_table obl;
	int64_t seq; /* policy_next_seq() */
	struct strbuf keybuf;
	uint64_t evals;
	int64_t sweep_t[3];
	unsigned n_sweep_t;
	size_t sweep_win;
	/* obligations the event being judged opens, finished after its last rule */
	struct {
		struct obl_key k;
		size_t idx; /* in the verdict's obligations */
	} pend[4];
	size_t n_pend;
};

void state_bind(struct policy_state *st, const struct ruleset *rs);
/* The id of the first unexpired exemption (at time t) covering r whose when holds, or NULL. */
const char *rule_exempted(const struct rule *r, struct evctx *c, aupd_time t);
/* Builds the group key of `by` paths into sb (values joined by '\x1f'). */
void group_key(const struct path *by, size_t n_by, struct evctx *c, struct strbuf *sb);

#endif
