/* message.c - message templates of rules: compile "{path}" placeholders, render per firing */
#include "policy_int.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum seg_kind kind;
	enum rule_kind only; /* RK_CONDITION: any kind */
} specials[] = {
	{"limit.total", SEG_LIMIT_TOTAL, RK_LIMIT},
	{"limit.max", SEG_LIMIT_MAX, RK_LIMIT},
	{"limit.window", SEG_LIMIT_WINDOW, RK_LIMIT},
	{"retention.max", SEG_RETENTION_MAX, RK_RETENTION},
	{"retention.deadline", SEG_RETENTION_DEADLINE, RK_RETENTION},
	{"rule", SEG_RULE, RK_CONDITION},
};


static struct msg_seg *
seg_push(struct loader *ld, struct msg_tpl *t, size_t *cap)
{
	if (t->n == *cap) {
		struct msg_seg *segs = arena_alloc(&ld->rs->arena, *cap * 2 * sizeof(*segs));

		memcpy(segs, t->segs, t->n * sizeof(*segs));
		t->segs = segs;
		*cap *= 2;
	}
	memset(&t->segs[t->n], 0, sizeof(t->segs[0]));
	return &t->segs[t->n++];
}

static void
text_push(struct loader *ld, struct msg_tpl *t, size_t *cap, const char *s, size_t len)
{
	struct msg_seg *g;

	if (!len)
		return;
	if (t->n && t->segs[t->n - 1].kind == SEG_TEXT) {
		/* merge with the previous text (after a {{ or }} escape) */
		g = &t->segs[t->n - 1];
		char *joined = arena_alloc(&ld->rs->arena, g->len + len + 1);

		memcpy(joined, g->text, g->len);
		memcpy(joined + g->len, s, len);
		g->text = joined;
		g->len += len;
		return;
	}
	g = seg_push(ld, t, cap);
	g->kind = SEG_TEXT;
	g->text = arena_strndup(&ld->rs->arena, s, len);
	g->len = len;
}

struct msg_tpl *
message_compile(struct loader *ld, yaml_node_t *n, enum rule_kind kind)
{
	const char *s = ynode_str(n), *p, *start;
	struct msg_tpl *t;
	size_t cap = 8;
	bool bad = false;

	if (!s || n->type != YAML_SCALAR_NODE || ynode_is_null(n)) {
		ydiag(ld->dl, ld->yd, n, "message must be a string, not %s", ynode_describe(n));
		return NULL;
	}
	t = arena_alloc(&ld->rs->arena, sizeof(*t));
	t->segs = arena_alloc(&ld->rs->arena, cap * sizeof(*t->segs));
	for (p = start = s; *p;) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			text_push(ld, t, &cap, start, (size_t)(p - start) + 1);
			p += 2;
			start = p;
			continue;
		}
		if (*p != '{') {
			p++;
			continue;
		}
		text_push(ld, t, &cap, start, (size_t)(p - start));
		const char *close = strchr(p, '}');
		char name[256], why[400];
		bool found = false;

		if (!close) {
			ydiag(ld->dl, ld->yd, n,
			      "message has an unclosed '{' (write {{ for a literal brace)");
			return NULL;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(close - p - 1), p + 1);
		for (size_t i = 0; i < AUPD_ARRAY_LEN(specials); i++) {
			if (strcmp(name, specials[i].name) != 0)
				continue;
			found = true;
			if (specials[i].only != RK_CONDITION && specials[i].only != kind) {
				ydiag(ld->dl, ld->yd, n,
				      "placeholder {%s} is only available in %s rules (this is a %s "
				      "rule)",
				      name, rule_kind_names[specials[i].only], rule_kind_names[kind]);
				bad = true;
				break;
			}
			seg_push(ld, t, &cap)->kind = specials[i].kind;
		}
		if (!found) {
			struct path path;

			if (path_parse(name, PCTX_EVENT, &ld->rs->arena, &path, why, sizeof(why)) <
			    0) {
				ydiag(ld->dl, ld->yd, n, "unknown placeholder {%s} in message: %s",
				      name, why);
				bad = true;
			} else {
				struct msg_seg *g = seg_push(ld, t, &cap);

				loader_intern_key(ld, &path);
				g->kind = SEG_PATH;
				g->path = path;
			}
		}
		p = close + 1;
		start = p;
	}
	text_push(ld, t, &cap, start, (size_t)(p - start));
	return bad ? NULL : t;
}

static void
generated(struct strbuf *sb, const struct rule *r, struct evctx *c, const struct fire_info *fi)
{
	char a[40], b[40];
	const char *cf, *purpose, *rid;
	struct value v;

	switch (r->kind) {
	case RK_CONDITION:
		sb_addf(sb, "rule %s matched", r->id);
		break;
	case RK_LIMIT:
		number_format(fi->total, a, sizeof(a));
		number_format(r->limit.max, b, sizeof(b));
		if (r->limit.n_by == 0) {
			sb_adds(sb, "all events");
		} else {
			for (const char *g = fi->group; *g; g++) {
				if (*g == '\x1f')
					sb_adds(sb, ", ");
				else
					sb_addc(sb, *g);
			}
		}
		sb_addf(sb, ": %s in %s, over %s", a, r->limit.window_text, b);
		break;
	case RK_RETENTION:
		time_format_ms(fi->deadline, a, sizeof(a));
		/* through its own slot of the per-event cache, not another field's */
		rid = ctx_resource_id(c, "id", RES_KEY_ID);
		sb_adds(sb, rid ? rid : "the resource");
		sb_addf(sb, " is older than %s (%s: ", r->retention.max_text,
			r->retention.age_of.text);
		path_get(&r->retention.age_of, c, &v);
		value_render(&v, sb);
		sb_addf(sb, "; due for deletion by %s)", a);
		break;
	case RK_REUSE:
		cf = ctx_resource(c, "collected_for");
		purpose = c->ev ? c->ev->purpose : NULL;
		if (cf)
			sb_addf(sb, "%s data", cf);
		else
			sb_adds(sb, "data of unknown origin (no collected_for)");
		if (purpose)
			sb_addf(sb, " used for %s", purpose);
		else
			sb_adds(sb, " used without a declared purpose");
		break;
	}
}

char *
message_render(const struct rule *r, struct evctx *c, const struct fire_info *fi)
{
	struct strbuf sb;
	char buf[40];
	struct value v;

	sb_init(&sb);
	sb_grow(&sb, 120);
	if (!r->message) {
		if (r->description)
			sb_adds(&sb, r->description);
		else
			generated(&sb, r, c, fi);
		return sb_detach(&sb, NULL);
	}
	for (size_t i = 0; i < r->message->n; i++) {
		const struct msg_seg *g = &r->message->segs[i];

		switch (g->kind) {
		case SEG_TEXT:
			sb_add(&sb, g->text, g->len);
			break;
		case SEG_PATH:
			path_get(&g->path, c, &v);
			value_render(&v, &sb);
			break;
		case SEG_LIMIT_TOTAL:
			number_format(fi->total, buf, sizeof(buf));
			sb_adds(&sb, buf);
			break;
		case SEG_LIMIT_MAX:
			number_format(r->limit.max, buf, sizeof(buf));
			sb_adds(&sb, buf);
			break;
		case SEG_LIMIT_WINDOW:
			sb_adds(&sb, r->limit.window_text);
			break;
		case SEG_RETENTION_MAX:
			sb_adds(&sb, r->retention.max_text);
			break;
		case SEG_RETENTION_DEADLINE:
			time_format_ms(fi->deadline, buf, sizeof(buf));
			sb_adds(&sb, buf);
			break;
		case SEG_RULE:
			sb_adds(&sb, r->id);
			break;
		}
	}
	return sb_detach(&sb, NULL);
}
