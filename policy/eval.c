/* eval.c - judge one event: rule kinds, exemptions, the verdict; and the state it accumulates */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

#define SWEEP_EVERY 256	 /* evaluations between two sweep steps */
#define SWEEP_BUDGET 512 /* hash slots one step visits, at least */

struct policy_state *
policy_state_new(void)
{
	struct policy_state *st = xcalloc(1, sizeof(*st));

	obl_init(&st->obl);
	sb_init(&st->keybuf);
	return st;
}

void
policy_state_free(struct policy_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_wins; i++) {
		free(st->wins[i].id);
		window_free(st->wins[i].win);
	}
	free(st->wins);
	free(st->rule_win);
	free(st->esc_win);
	obl_free_all(&st->obl);
	sb_free(&st->keybuf);
	free(st);
}

static struct window *
keep_window(struct policy_state *st, const char *id, int64_t w, bool esc)
{
	struct swin *s;

	for (size_t i = 0; i < st->n_wins; i++) {
		s = &st->wins[i];
		if (s->esc == esc && s->w == w && !strcmp(s->id, id)) {
			s->keep = true;
			return s->win;
		}
	}
	if (st->n_wins == st->cap_wins) {
		st->cap_wins = st->cap_wins ? st->cap_wins * 2 : 16;
		st->wins = xrealloc(st->wins, st->cap_wins * sizeof(*st->wins));
	}
	s = &st->wins[st->n_wins++];
	s->id = xstrdup(id);
	s->w = w;
	s->esc = esc;
	s->keep = true;
	s->win = window_new(w, esc);
	return s->win;
}

void
policy_state_retain(struct policy_state *st, const struct ruleset *rs)
{
	size_t k = 0;

	for (size_t i = 0; i < st->n_wins; i++)
		st->wins[i].keep = false;
	free(st->rule_win);
	free(st->esc_win);
	st->rule_win = xcalloc(rs->n_rules + 1, sizeof(*st->rule_win));
	st->esc_win = xcalloc(rs->n_escs + 1, sizeof(*st->esc_win));
	st->n_rule_win = rs->n_rules;
	st->n_esc_win = rs->n_escs;
	for (size_t i = 0; i < rs->n_rules; i++)
		if (rs->rules[i].kind == RK_LIMIT)
			st->rule_win[i] = keep_window(st, rs->rules[i].id,
						      rs->rules[i].limit.window, false);
	for (size_t i = 0; i < rs->n_escs; i++)
		st->esc_win[i] = keep_window(st, rs->escs[i].id, rs->escs[i].window, true);
	for (size_t i = 0; i < st->n_wins; i++) {
		if (st->wins[i].keep) {
			st->wins[k++] = st->wins[i];
		} else {
			free(st->wins[i].id);
			window_free(st->wins[i].win);
		}
	}
	st->n_wins = k;
	st->sweep_win = 0;
	st->bound_serial = rs->serial;
}

void
state_bind(struct policy_state *st, const struct ruleset *rs)
{
	if (st->bound_serial != rs->serial)
		policy_state_retain(st, rs);
}

size_t
policy_state_window_entries(const struct policy_state *st, size_t *bytes)
{
	size_t n = 0, b = sizeof(*st) + st->cap_wins * sizeof(*st->wins);

	for (size_t i = 0; i < st->n_wins; i++) {
		size_t wb = 0;

		n += window_entries(st->wins[i].win, &wb);
		b += wb;
	}
	if (bytes)
		*bytes = b;
	return n;
}

static int64_t
median3(const int64_t *v)
{
	int64_t a = v[0], b = v[1], c = v[2];

	if ((a <= b && b <= c) || (c <= b && b <= a))
		return b;
	if ((b <= a && a <= c) || (c <= a && a <= b))
		return a;
	return c;
}

/*
 * Frees idle groups a little at a time.  "Now" is the median of the event
 * times at the last three steps, so that one event with a wild client
 * time cannot make every group look idle.
 */
static void
sweep_step(struct policy_state *st, aupd_time t)
{
	struct window *win;

	st->sweep_t[st->n_sweep_t % 3] = t;
	if (++st->n_sweep_t < 3 || st->n_wins == 0)
		return;
	win = st->wins[st->sweep_win++ % st->n_wins].win;
	window_sweep(win, median3(st->sweep_t), SWEEP_BUDGET + win->groups.cap / 256);
}

/* The group key of a limit rule; single-field keys are used in place. */
static const char *
limit_key(const struct rule *r, struct policy_state *st, struct evctx *c, size_t *len)
{
	if (r->limit.n_by == 1) {
		struct value v;

		path_get(&r->limit.by[0], c, &v);
		if (v.k == V_STR || v.k == V_TIME) {
			*len = strlen(v.s);
			return v.s;
		}
	}
	group_key(r->limit.by, r->limit.n_by, c, &st->keybuf);
	*len = st->keybuf.len;
	return st->keybuf.buf;
}

static bool
eval_limit(const struct rule *r, const struct cond *when, struct policy_state *st,
	   struct evctx *c, struct fire_info *fi)
{
	struct wgroup *g;
	const char *key;
	double amount = 1;
	size_t len;

	if (when && !cond_eval(when, c))
		return false;
	if (!r->limit.count) {
		if (r->limit.sum.kind == P_QUANTITY) {
			amount = c->ev->quantity;
		} else {
			struct value v;

			path_get(&r->limit.sum, c, &v);
			amount = value_amount(&v);
		}
	}
	key = limit_key(r, st, c, &len);
	g = window_add(st->rule_win[r->index], key, len, c->ev->time, amount, 0);
	fi->total = g->running;
	fi->group = key;
	return g->running > r->limit.max;
}

static void
push_obligation(struct verdict *out, const struct obligation *o)
{
	out->obligations = xrealloc(out->obligations,
				    (out->n_obligations + 1) * sizeof(*out->obligations));
	out->obligations[out->n_obligations++] = *o;
}

static bool
eval_retention(const struct rule *r, const struct cond *when, const struct cond *deleted_by,
	       struct policy_state *st, struct evctx *c, unsigned flags, struct verdict *out,
	       struct fire_info *fi)
{
	const struct retention_spec *rt = &r->retention;
	const struct event *ev = c->ev;
	const char *rid = NULL, *why;
	struct obl_node *node;
	struct value v;
	aupd_time age;

	if (rt->track && cond_eval(deleted_by, c)) {
		/* a deletion is what the rule asks for: it discharges, and never fires */
		if (!(flags & EVAL_REPLAY) && (rid = ctx_resource_id(c, "id", RES_KEY_ID)) &&
		    (node = obl_find(&st->obl, r->id, ev->tenant, rid))) {
			struct obligation done;

			obl_discharge(&st->obl, node, &done);
			push_obligation(out, &done);
		}
		return false;
	}
	if (when && !cond_eval(when, c))
		return false;
	/* without resource.id a tracked rule neither fires nor opens anything */
	if (rt->track && !(rid = ctx_resource_id(c, "id", RES_KEY_ID)))
		return false;
	path_get(&rt->age_of, c, &v);
	if (v.k == V_TIME)
		age = v.t;
	else if (v.k != V_STR || time_parse_rfc3339(v.s, strlen(v.s), &age, &why) < 0)
		return false;
	fi->deadline = age + rt->max;
	if (rt->track && !(flags & EVAL_REPLAY)) {
		struct obligation o = {
			.op = OBL_OPEN,
			.rule = (char *)r->id,
			.tenant = (char *)ev->tenant,
			.resource_id = (char *)rid,
			.deadline = fi->deadline,
			.opened_by = (char *)ev->id,
			.opened_seq = st->seq,
			.effect = r->effect,
			.severity = r->severity,
			.shadow = r->shadow,
		};

		/*
		 * The verdict borrows o's strings from the event and the rule.
		 * It is listed now, in rule order, and opened (or dropped, when
		 * already open) after the event's last rule: its slot of the
		 * table loads meanwhile.
		 */
		push_obligation(out, &o);
		if (st->n_pend < AUPD_ARRAY_LEN(st->pend)) {
			obl_open_prepare(&st->obl, &o, r->id_len, r->id_hash,
					 &st->pend[st->n_pend].k);
			st->pend[st->n_pend++].idx = out->n_obligations - 1;
		} else if (!obl_open(&st->obl, &o)) {
			out->n_obligations--;
		}
	}
	return ev->time - age > rt->max;
}

static bool
eval_reuse(const struct rule *r, const struct cond *when, struct evctx *c, struct fire_info *fi)
{
	const char *purpose = c->ev->purpose, *cf;
	const struct oplist *allowed;

	if (when && !cond_eval(when, c))
		return false;
	cf = ctx_resource_id(c, "collected_for", RES_KEY_COLLECTED_FOR);
	if (!purpose || !cf) {
		fi->unknown = true;
		return r->reuse.unknown_fires;
	}
	allowed = strmap_get(&r->reuse.allowed, cf, NULL);
	return !allowed || !strmap_has(&allowed->set, purpose);
}

const char *
rule_exempted(const struct rule *r, struct evctx *c, aupd_time t)
{
	for (size_t i = 0; i < r->n_exemptions; i++) {
		const struct exemption *x = r->exemptions[i];

		if (x->has_expires && t >= x->expires)
			continue;
		if (x->when && !cond_eval(x->when, c))
			continue;
		return x->id;
	}
	return NULL;
}

/* Opens the obligations eval_retention() listed; drops those already open. */
static void
finish_opens(struct policy_state *st, struct verdict *out)
{
	size_t gone = 0;

	for (size_t i = 0; i < st->n_pend; i++) {
		size_t at = st->pend[i].idx - gone;

		if (obl_open_finish(&st->obl, &st->pend[i].k, &out->obligations[at]))
			continue;
		memmove(&out->obligations[at], &out->obligations[at + 1],
			(out->n_obligations - at - 1) * sizeof(*out->obligations));
		out->n_obligations--;
		gone++;
	}
	st->n_pend = 0;
}

void
policy_eval(const struct ruleset *rs, struct policy_state *st, const struct event *ev,
	    enum effect default_effect, unsigned flags, struct verdict *out)
{
	struct evctx c = {.rs = rs, .ev = ev, .uncached = flags & EVAL_UNCACHED};
	const struct candidates *cand;
	enum effect best = EFFECT_ALLOW;
	bool enforced = false;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	state_bind(st, rs);
	if (flags & EVAL_UNINDEXED)
		cand = &rs->unindexed;
	else if (!(cand = strmap_get(&rs->action_index, ev->action, NULL)))
		cand = &rs->unpinned;
	for (size_t k = 0; k < cand->n; k++) {
		const struct rule *r = &rs->rules[cand->idx[k]];
		const struct cond *when = cand->when[k];
		struct fire_info fi = {0};
		struct match *m;
		bool fired = false;

		switch (r->kind) {
		case RK_CONDITION:
			fired = !when || cond_eval(when, &c);
			break;
		case RK_LIMIT:
			fired = eval_limit(r, when, st, &c, &fi);
			break;
		case RK_RETENTION:
			fired = eval_retention(r, when, cand->deleted_by[k], st, &c, flags, out, &fi);
			break;
		case RK_REUSE:
			fired = eval_reuse(r, when, &c, &fi);
			break;
		}
		if (!fired)
			continue;
		if (out->n_matched == cap) {
			cap = cap ? cap * 2 : 4;
			out->matched = xrealloc(out->matched, cap * sizeof(*out->matched));
		}
		m = &out->matched[out->n_matched++];
		m->rule = r->id;
		m->effect = r->effect;
		m->severity = r->severity;
		m->shadow = r->shadow;
		m->tags = r->tags;
		m->n_tags = r->n_tags;
		m->exempted = rule_exempted(r, &c, ev->time);
		m->message = message_render(r, &c, &fi);
		if (!m->shadow && !m->exempted && (!enforced || m->effect > best)) {
			best = m->effect;
			enforced = true;
		}
	}
	finish_opens(st, out);
	out->verdict = enforced ? best : default_effect;
	if (++st->evals % SWEEP_EVERY == 0)
		sweep_step(st, ev->time);
}

void
verdict_clear(struct verdict *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_matched; i++)
		free(v->matched[i].message);
	free(v->matched);
	for (size_t i = 0; i < v->n_obligations; i++)
		obligation_clear(&v->obligations[i]);
	free(v->obligations);
	memset(v, 0, sizeof(*v));
}

void
policy_next_seq(struct policy_state *st, int64_t seq)
{
	st->seq = seq;
}

void
policy_obligation_restore(struct policy_state *st, const struct obligation *o)
{
	obl_open(&st->obl, o);
}

size_t
policy_obligation_count(const struct policy_state *st)
{
	return obl_count(&st->obl);
}

size_t
policy_take_overdue(struct policy_state *st, aupd_time now, struct obligation **out)
{
	return obl_take_due(&st->obl, now, out);
}
