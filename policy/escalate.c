/* escalate.c - count recorded verdicts toward escalations in exact sliding windows */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

void
escalation_hit_clear(struct escalation_hit *h)
{
	if (!h)
		return;
	free(h->group_key);
	json_decref(h->group);
	free(h->seqs);
	memset(h, 0, sizeof(*h));
}

static bool
eligible(const struct match *m)
{
	return !m->shadow && !m->exempted;
}

/*
 * Whether the verdict counts toward e, and with which matched rule: the
 * condition must hold together with one enforcing, unexempted matched
 * rule; a verdict without one matches only conditions naming no rule field.
 */
static bool
counts(const struct escalation *e, struct evctx *c, const struct match **chosen)
{
	const struct verdict *v = c->v;
	const struct match *first = NULL;

	for (size_t i = 0; i < v->n_matched; i++) {
		const struct match *m = &v->matched[i];

		if (!eligible(m))
			continue;
		if (!first)
			first = m;
		if (!e->names_rule_fields)
			break;
		c->m = m;
		if (!e->when || cond_eval(e->when, c)) {
			*chosen = m;
			return true;
		}
	}
	if (e->names_rule_fields)
		return false;
	c->m = first;
	*chosen = first;
	return !e->when || cond_eval(e->when, c);
}

static json_t *
group_json(const struct escalation *e, struct evctx *c)
{
	json_t *o = json_object();
	struct strbuf sb;
	struct value v;

	sb_init(&sb);
	for (size_t i = 0; i < e->n_by; i++) {
		sb_reset(&sb);
		path_get(&e->by[i], c, &v);
		value_render(&v, &sb);
		json_object_set_new(o, e->by[i].text, json_string(sb.buf ? sb.buf : ""));
	}
	sb_free(&sb);
	return o;
}

size_t
policy_escalate(const struct ruleset *rs, struct policy_state *st, const struct event *ev,
		const struct obligation *ob, const struct verdict *v, int64_t seq, aupd_time t,
		unsigned flags, struct escalation_hit **hits)
{
	struct evctx c = {.rs = rs, .ev = ev, .ob = ob, .v = v};
	size_t n = 0, cap = 0;

	*hits = NULL;
	state_bind(st, rs);
	for (size_t i = 0; i < rs->n_escs; i++) {
		const struct escalation *e = &rs->escs[i];
		const struct match *chosen = NULL;
		struct escalation_hit *h;
		struct wgroup *g;

		c.m = NULL;
		if (!counts(e, &c, &chosen))
			continue;
		c.m = chosen;
		group_key(e->by, e->n_by, &c, &st->keybuf);
		g = window_add(st->esc_win[i], st->keybuf.buf, st->keybuf.len, t, 1, seq);
		if (flags & EVAL_REPLAY)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			*hits = xrealloc(*hits, cap * sizeof(**hits));
		}
		h = &(*hits)[n++];
		memset(h, 0, sizeof(*h));
		h->escalation = e->id;
		h->level = e->level;
		h->group_key = xstrndup(st->keybuf.buf, st->keybuf.len);
		h->group = group_json(e, &c);
		h->notify = e->notify;
		h->n_notify = e->n_notify;
		h->cooldown_us = e->cooldown;
		h->window_us = e->window;
		h->count = (size_t)g->running;
		h->crossed = g->running >= (double)e->count;
		if (h->crossed)
			h->seqs = window_seqs(st->esc_win[i], g, &h->n_seqs, &h->first, &h->last);
		else
			h->first = h->last = t;
	}
	return n;
}
