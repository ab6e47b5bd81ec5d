/* cli_replay.c - aupd replay: judge NDJSON events offline with the daemon's evaluator */
#include "aupd/cli.h"
#include "aupd/event.h"
#include "aupd/policy.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLAY_MAX_LINE (8u << 20)
#define BATCH_LINES 512
#define INFLIGHT 8     /* batches read ahead of the judge */
#define MAX_PARSERS 2

static const char replay_usage[] =
	"usage: aupd replay --rules FILE|DIR [--rules ...] [--format ndjson]\n"
	"                   [--default-effect allow|flag|deny] EVENTS.ndjson\n"
	"\n"
	"Judges events offline with fresh in-memory state and prints one verdict JSON per\n"
	"line: seq counts 1, 2, 3... and decided_at is the event's own time, so the output\n"
	"is reproducible.  EVENTS is NDJSON, one event per line ('-' reads stdin).  Before\n"
	"each event, a retention-overdue record is printed for every deletion obligation\n"
	"whose deadline is at or before that event's time (decided_at: that event's time).\n"
	"A resent event (same tenant and id) prints its original verdict with\n"
	"\"duplicate\": true.  A line that is not a valid event is reported on stderr as\n"
	"EVENTS:LINE: error: DETAIL (at POINTER) and skipped.\n"
	"\n"
	"  -r, --rules FILE|DIR      rule files or directories (repeatable)\n"
	"  -f, --format ndjson       the input format (only ndjson)\n"
	"  -d, --default-effect E    verdict when no rule fires (default allow)\n"
	"  -h, --help                show this help\n"
	"\n"
	"Exit status: 0 success, 1 rules that do not load or bad event lines, 2 bad usage.\n";

/* ---- reading and parsing, in batches (on parser threads when there are cores) ---- */

struct item {
	size_t lineno;
	bool ok;
	struct event ev; /* ok */
	char *error;	 /* !ok: the whole message line */
};

struct batch {
	uint64_t seq;
	int owner; /* the parser that fills it, and frees what it held */
	size_t n;
	bool live; /* items still hold events and errors */
	struct item items[BATCH_LINES];
	/* the lines as read */
	char *text;
	size_t len, cap;
	size_t offs[BATCH_LINES], lens[BATCH_LINES];
};

struct reader {
	pthread_mutex_t mu;
	pthread_cond_t space, done;
	FILE *in;
	const char *name;
	char *line;
	size_t line_cap;
	size_t lineno;
	uint64_t next_seq;
	size_t inflight;
	bool eof, read_error;
	int read_errno;
	struct batch *slots[INFLIGHT]; /* parsed batches by seq % INFLIGHT */
	struct batch *pool[MAX_PARSERS + 1][INFLIGHT]; /* free batches, by owner */
	size_t n_pool[MAX_PARSERS + 1];
};

struct parser {
	struct reader *r;
	int id;
};

static char *
line_error(const char *name, size_t lineno, const char *fmt, const char *a, const char *b)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "%s:%zu: error: ", name, lineno);

	snprintf(msg + n, sizeof(msg) - (size_t)n, fmt, a, b);
	return xstrdup(msg);
}

/* Reads up to BATCH_LINES non-blank lines into b (the reader's lock is held). */
static void
fill_batch(struct reader *r, struct batch *b)
{
	ssize_t got;

	b->n = 0;
	b->len = 0;
	while (b->n < BATCH_LINES && (got = getline(&r->line, &r->line_cap, r->in)) >= 0) {
		size_t s = 0, e = (size_t)got;

		r->lineno++;
		while (s < e && (r->line[s] == ' ' || r->line[s] == '\t' || r->line[s] == '\r'))
			s++;
		while (e > s && (r->line[e - 1] == '\n' || r->line[e - 1] == '\r' ||
				 r->line[e - 1] == ' ' || r->line[e - 1] == '\t'))
			e--;
		if (s == e)
			continue;
		b->items[b->n].lineno = r->lineno;
		if (e - s > REPLAY_MAX_LINE) {
			b->lens[b->n] = SIZE_MAX;
			b->n++;
			continue;
		}
		if (b->len + (e - s) + 1 > b->cap) {
			b->cap = (b->len + (e - s) + 1) * 2;
			b->text = xrealloc(b->text, b->cap);
		}
		memcpy(b->text + b->len, r->line + s, e - s);
		b->offs[b->n] = b->len;
		b->lens[b->n] = e - s;
		b->len += e - s;
		b->text[b->len++] = '\0';
		b->n++;
	}
	if (b->n < BATCH_LINES) {
		r->eof = true;
		if (ferror(r->in)) {
			r->read_error = true;
			r->read_errno = errno;
		}
	}
}

static void
parse_batch(const char *name, struct batch *b)
{
	b->live = true;
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		struct event_problem prob;
		json_error_t jerr;
		char col[24];
		int rc;

		it->error = NULL;
		it->ok = false;
		if (b->lens[i] == SIZE_MAX) {
			it->error = line_error(name, it->lineno, "the line is longer than %s bytes%s",
					       "8388608", "");
			continue;
		}
		rc = event_parse(b->text + b->offs[i], b->lens[i], &it->ev, &prob, &jerr);
		if (rc == EVENT_PARSE_NOT_JSON) {
			snprintf(col, sizeof(col), "%d", jerr.column);
			it->error = line_error(name, it->lineno, "invalid JSON: %s (column %s)",
					       jerr.text, col);
			continue;
		}
		if (rc == EVENT_PARSE_INVALID) {
			if (prob.pointer[0])
				it->error = line_error(name, it->lineno, "%s (at %s)", prob.detail,
						       prob.pointer);
			else
				it->error = line_error(name, it->lineno, "%s%s", prob.detail, "");
		} else {
			it->ok = true;
		}
	}
}

static struct batch *
batch_get(struct reader *r, int owner)
{
	struct batch *b;

	if (r->n_pool[owner])
		return r->pool[owner][--r->n_pool[owner]];
	b = xcalloc(1, sizeof(*b));
	b->owner = owner;
	return b;
}

static void
batch_put(struct reader *r, struct batch *b)
{
	r->pool[b->owner][r->n_pool[b->owner]++] = b;
}

/*
 * Frees what a judged batch still holds.  Its parser does it before
 * refilling it, so that memory goes back to the thread (and allocator
 * arena) that allocated it.
 */
static void
batch_clear(struct batch *b)
{
	if (!b->live)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (b->items[i].ok)
			event_clear(&b->items[i].ev);
		else
			free(b->items[i].error);
	}
	b->live = false;
}

static void *
parser_main(void *arg)
{
	struct parser *p = arg;
	struct reader *r = p->r;

	for (;;) {
		struct batch *b;

		pthread_mutex_lock(&r->mu);
		while (!r->eof && r->inflight >= INFLIGHT)
			pthread_cond_wait(&r->space, &r->mu);
		if (r->eof) {
			pthread_cond_broadcast(&r->done);
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		b = batch_get(r, p->id);
		r->inflight++;
		pthread_mutex_unlock(&r->mu);
		batch_clear(b);
		pthread_mutex_lock(&r->mu);
		if (r->eof) {
			/*
			 * Another parser met the end meanwhile: the judge stops at
			 * the last sequence number taken, so take none (a batch
			 * numbered now would never be judged, nor given back).
			 */
			batch_put(r, b);
			r->inflight--;
			pthread_cond_broadcast(&r->done);
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		/* the sequence number and the lines are taken together, in order */
		b->seq = r->next_seq++;
		fill_batch(r, b);
		pthread_mutex_unlock(&r->mu);

		parse_batch(r->name, b);

		pthread_mutex_lock(&r->mu);
		r->slots[b->seq % INFLIGHT] = b;
		pthread_cond_broadcast(&r->done);
		pthread_mutex_unlock(&r->mu);
	}
}

/* ---- judging, in input order ---- */

/* Events judged so far, by (tenant, id): what a resend prints. */
struct seen_rec {
	size_t key_off; /* tenant NUL id NUL in keys */
	int64_t seq;
	aupd_time decided_at;
	enum effect verdict;
	struct match *matched;
	size_t n_matched;
};

struct seen {
	uint64_t *hashes; /* open addressing: hash, and record index + 1 */
	uint32_t *idx;
	size_t cap;
	struct seen_rec *recs;
	size_t n, cap_recs;
	char *keys;
	size_t keys_len, keys_cap;
};

struct judge {
	struct ruleset *rs;
	struct policy_state *st;
	enum effect default_effect;
	struct seen seen;
	struct strbuf out;
	struct strbuf errs;
	int64_t seq;
	bool bad;
};

static uint64_t
key_hash(const char *tenant, const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = tenant; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h ^= h >> 29;
	return h ? h : 1;
}

static struct seen_rec *
seen_find(struct seen *s, const struct event *ev, uint64_t h)
{
	size_t tl = strlen(ev->tenant);

	if (!s->cap)
		return NULL;
	for (size_t i = h & (s->cap - 1); s->hashes[i]; i = (i + 1) & (s->cap - 1)) {
		struct seen_rec *r;
		const char *k;

		if (s->hashes[i] != h)
			continue;
		r = &s->recs[s->idx[i]];
		k = s->keys + r->key_off;
		if (!strcmp(k, ev->tenant) && !strcmp(k + tl + 1, ev->id))
			return r;
	}
	return NULL;
}

static void
seen_place(struct seen *s, uint64_t h, uint32_t idx)
{
	size_t i = h & (s->cap - 1);

	while (s->hashes[i])
		i = (i + 1) & (s->cap - 1);
	s->hashes[i] = h;
	s->idx[i] = idx;
}

static struct seen_rec *
seen_add(struct seen *s, const struct event *ev, uint64_t h)
{
	size_t tl = strlen(ev->tenant), il = strlen(ev->id);
	struct seen_rec *r;

	if ((s->n + 1) * 10 > s->cap * 7) {
		size_t old = s->cap;
		uint64_t *hashes = s->hashes;
		uint32_t *idx = s->idx;

		s->cap = s->cap ? s->cap * 2 : 4096;
		s->hashes = xcalloc(s->cap, sizeof(*s->hashes));
		s->idx = xcalloc(s->cap, sizeof(*s->idx));
		for (size_t i = 0; i < old; i++)
			if (hashes[i])
				seen_place(s, hashes[i], idx[i]);
		free(hashes);
		free(idx);
	}
	if (s->n == s->cap_recs) {
		s->cap_recs = s->cap_recs ? s->cap_recs * 2 : 4096;
		s->recs = xrealloc(s->recs, s->cap_recs * sizeof(*s->recs));
	}
	if (s->keys_len + tl + il + 2 > s->keys_cap) {
		s->keys_cap = (s->keys_len + tl + il + 2) * 2;
		s->keys = xrealloc(s->keys, s->keys_cap);
	}
	r = &s->recs[s->n];
	memset(r, 0, sizeof(*r));
	r->key_off = s->keys_len;
	memcpy(s->keys + s->keys_len, ev->tenant, tl + 1);
	memcpy(s->keys + s->keys_len + tl + 1, ev->id, il + 1);
	s->keys_len += tl + il + 2;
	seen_place(s, h, (uint32_t)s->n);
	s->n++;
	return r;
}

static void
seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct verdict v = {.matched = s->recs[i].matched, .n_matched = s->recs[i].n_matched};

		verdict_clear(&v);
	}
	free(s->recs);
	free(s->hashes);
	free(s->idx);
	free(s->keys);
}

static void
emit_overdue(struct judge *j, aupd_time now)
{
	struct obligation *obs = NULL;
	size_t n = policy_take_overdue(j->st, now, &obs);

	for (size_t i = 0; i < n; i++) {
		struct verdict v;

		policy_overdue_verdict(j->rs, &obs[i], &v);
		/* recorded when noticed, as the daemon does: at the next event's time */
		overdue_encode(&j->out, &obs[i], &v, ++j->seq, ruleset_version(j->rs), now);
		sb_addc(&j->out, '\n');
		verdict_clear(&v);
		obligation_clear(&obs[i]);
	}
	free(obs);
}

static void
judge_event(struct judge *j, const struct event *ev)
{
	uint64_t h = key_hash(ev->tenant, ev->id);
	struct seen_rec *s;
	struct verdict v;

	emit_overdue(j, ev->time);
	if ((s = seen_find(&j->seen, ev, h))) {
		struct verdict orig = {.verdict = s->verdict, .matched = s->matched,
				       .n_matched = s->n_matched};

		verdict_encode(&j->out, ev, &orig, s->seq, ruleset_version(j->rs), s->decided_at,
			       true);
		sb_addc(&j->out, '\n');
		return;
	}
	policy_eval(j->rs, j->st, ev, j->default_effect, 0, &v);
	verdict_encode(&j->out, ev, &v, ++j->seq, ruleset_version(j->rs), ev->time, false);
	sb_addc(&j->out, '\n');
	s = seen_add(&j->seen, ev, h);
	s->seq = j->seq;
	s->decided_at = ev->time;
	s->verdict = v.verdict;
	/* keep the matches for a resend; obligations are not part of it */
	s->matched = v.matched;
	s->n_matched = v.n_matched;
	v.matched = NULL;
	v.n_matched = 0;
	verdict_clear(&v);
}

static int
flush_out(struct strbuf *sb, FILE *f)
{
	if (sb->len && fwrite(sb->buf, 1, sb->len, f) != sb->len)
		return -1;
	sb_reset(sb);
	return 0;
}

static int
judge_batch(struct judge *j, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		if (it->ok) {
			judge_event(j, &it->ev);
		} else {
			sb_adds(&j->errs, it->error);
			sb_addc(&j->errs, '\n');
			j->bad = true;
		}
	}
	if (j->errs.len && flush_out(&j->errs, stderr) < 0)
		return -1;
	if (j->out.len >= (1u << 20) && flush_out(&j->out, stdout) < 0)
		return -1;
	return 0;
}

/*
 * Parsing and validating an event costs several times judging it: with two
 * cores or more, parser threads read ahead while this thread judges in
 * order.  AUPD_REPLAY_PARSERS overrides the count (0: all on this thread).
 */
static int
parser_count(void)
{
	const char *env = getenv("AUPD_REPLAY_PARSERS");
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t v;

	if (env && parse_i64(env, 0, MAX_PARSERS, &v) == 0)
		return (int)v;
	if (n < 2)
		return 0;
	/* the judging thread needs a fraction of a core: parsers may take them all */
	return n < MAX_PARSERS ? (int)n : MAX_PARSERS;
}

static int
replay_stream(struct judge *j, struct reader *r)
{
	pthread_t threads[MAX_PARSERS];
	struct parser parsers[MAX_PARSERS];
	int n_threads = parser_count(), started = 0, rc = 0;

	if (n_threads == 0) {
		struct batch *b = batch_get(r, 0);

		while (!r->eof && rc == 0) {
			batch_clear(b);
			fill_batch(r, b);
			parse_batch(r->name, b);
			rc = judge_batch(j, b);
		}
		batch_put(r, b);
		return rc;
	}
	json_object_seed(0); /* before threads: jansson seeds its hash tables once */
	for (int i = 0; i < n_threads; i++) {
		parsers[started] = (struct parser){r, started};
		if (pthread_create(&threads[started], NULL, parser_main, &parsers[started]) == 0)
			started++;
	}
	if (started == 0) {
		cli_error("replay: cannot start a thread");
		return -1;
	}
	for (uint64_t k = 0;; k++) {
		struct batch *b;

		pthread_mutex_lock(&r->mu);
		while (!(r->slots[k % INFLIGHT] && r->slots[k % INFLIGHT]->seq == k) &&
		       !(r->eof && k == r->next_seq))
			pthread_cond_wait(&r->done, &r->mu);
		if (r->eof && k == r->next_seq) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		b = r->slots[k % INFLIGHT];
		r->slots[k % INFLIGHT] = NULL;
		pthread_mutex_unlock(&r->mu);

		if (rc == 0)
			rc = judge_batch(j, b);

		pthread_mutex_lock(&r->mu);
		batch_put(r, b);
		r->inflight--;
		pthread_cond_broadcast(&r->space);
		pthread_mutex_unlock(&r->mu);
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return rc;
}

int
cmd_replay(int argc, char **argv)
{
	const char **paths = calloc((size_t)argc + 1, sizeof(*paths));
	const char *events = NULL, *format = "ndjson";
	struct judge j = {.default_effect = EFFECT_ALLOW};
	struct reader r = {0};
	struct diag_list dl = {0};
	size_t n_paths = 0;
	int rc = 0;

	if (!paths)
		return 2;
	for (int i = 1; i < argc; i++) {
		const char *val;
		int m;

		if (cli_is_help(argv[i])) {
			fputs(replay_usage, stdout);
			free(paths);
			return 0;
		}
		if ((m = cli_option(argc, argv, &i, "--rules", "-r", &val)) > 0) {
			paths[n_paths++] = val;
		} else if (m == 0 && (m = cli_option(argc, argv, &i, "--format", "-f", &val)) > 0) {
			format = val;
		} else if (m == 0 &&
			   (m = cli_option(argc, argv, &i, "--default-effect", "-d", &val)) > 0) {
			if (effect_parse(val, &j.default_effect) < 0) {
				cli_error("replay: --default-effect is allow, flag or deny, not '%s'",
					  val);
				free(paths);
				return 2;
			}
		} else if (m < 0) {
			free(paths);
			return 2;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("replay: unknown option '%s' (see aupd replay --help)", argv[i]);
			free(paths);
			return 2;
		} else if (events) {
			cli_error("replay: one EVENTS file only ('%s' and '%s')", events, argv[i]);
			free(paths);
			return 2;
		} else {
			events = argv[i];
		}
	}
	if (strcmp(format, "ndjson") != 0) {
		cli_error("replay: unknown format '%s' (only ndjson)", format);
		free(paths);
		return 2;
	}
	if (n_paths == 0 || !events) {
		cli_error("replay: %s (see 'aupd replay --help')",
			  n_paths == 0 ? "--rules FILE|DIR is required"
				       : "name the EVENTS file (or - for stdin)");
		free(paths);
		return 2;
	}
	j.rs = ruleset_load(paths, n_paths, NULL, &dl);
	free(paths);
	if (!j.rs) {
		cli_print_diags(&dl);
		diag_list_free(&dl);
		return 1;
	}
	if (!strcmp(events, "-")) {
		r.in = stdin;
		r.name = "<stdin>";
	} else if (!(r.in = fopen(events, "r"))) {
		cli_error("cannot open %s: %s", events, strerror(errno));
		ruleset_unref(j.rs);
		return 1;
	} else {
		r.name = events;
	}
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.space, NULL);
	pthread_cond_init(&r.done, NULL);
	j.st = policy_state_new();
	sb_init(&j.out);
	sb_init(&j.errs);
	if (replay_stream(&j, &r) < 0 || flush_out(&j.out, stdout) < 0 || fflush(stdout) != 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		rc = 1;
	}
	if (r.read_error) {
		cli_error("cannot read %s: %s", r.name, strerror(r.read_errno));
		rc = 1;
	}
	if (j.bad)
		rc = 1;
	if (r.in != stdin)
		fclose(r.in);
	for (size_t k = 0; k <= MAX_PARSERS; k++) {
		for (size_t i = 0; i < r.n_pool[k]; i++) {
			batch_clear(r.pool[k][i]);
			free(r.pool[k][i]->text);
			free(r.pool[k][i]);
		}
	}
	free(r.line);
	pthread_cond_destroy(&r.space);
	pthread_cond_destroy(&r.done);
	pthread_mutex_destroy(&r.mu);
	sb_free(&j.out);
	sb_free(&j.errs);
	seen_free(&j.seen);
	policy_state_free(j.st);
	ruleset_unref(j.rs);
	return rc;
}
