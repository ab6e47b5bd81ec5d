/* rules_load_rule.c - compile one rule: its common fields and its kind (limit, retention, reuse) */
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const severity_names[] = {"info", "low", "medium", "high", "critical"};
static const char *const rule_keys[] = {"id",	 "description", "severity",  "effect",
					"mode",	 "tags",	"when",	     "limit",
					"retention", "reuse",	"message"};
static const char *const limit_keys[] = {"sum", "by", "window", "max"};
static const char *const retention_keys[] = {"age_of", "max", "track"};
static const char *const track_keys[] = {"deleted_by"};
static const char *const reuse_keys[] = {"allowed", "unknown"};

static int
load_by(struct loader *ld, yaml_node_t *v, enum path_ctx ctx, struct path **by, size_t *n_by)
{
	size_t n = 0;
	bool bad = false;

	if (v->type == YAML_SCALAR_NODE && !ynode_is_null(v)) {
		*by = arena_alloc(&ld->rs->arena, sizeof(**by));
		if (path_compile(ld, v, ctx, *by) < 0)
			return -1;
		*n_by = 1;
		return 0;
	}
	if (!loader_seq(ld, v, "by"))
		return -1;
	*by = arena_alloc(&ld->rs->arena,
			  ((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1) *
				  sizeof(**by));
	YSEQ_FOREACH(ld->yd, v, it) {
		if (path_compile(ld, ydoc_node(ld->yd, *it), ctx, &(*by)[n]) < 0)
			bad = true;
		else
			n++;
	}
	*n_by = n;
	return bad ? -1 : 0;
}

void
loader_default_by(struct loader *ld, struct path **by, size_t *n_by)
{
	char why[8];

	*by = arena_alloc(&ld->rs->arena, sizeof(**by));
	if (path_parse("tenant", PCTX_EVENT, &ld->rs->arena, *by, why, sizeof(why)) < 0)
		abort(); /* "tenant" is always a field */
	*n_by = 1;
}

static bool
load_limit(struct loader *ld, yaml_node_t *keynode, yaml_node_t *v, struct limit_spec *l)
{
	yaml_node_t *n;
	bool ok = true;

	if (!loader_map(ld, v, "limit"))
		return false;
	if (ymap_check_keys(ld->yd, v, limit_keys, AUPD_ARRAY_LEN(limit_keys), "limit", ld->dl))
		ok = false;
	l->count = true;
	if ((n = ymap_get(ld->yd, v, "sum", NULL))) {
		const char *s = loader_str(ld, n, "sum");

		if (!s) {
			ok = false;
		} else if (strcmp(s, "count") != 0) {
			if (path_compile(ld, n, PCTX_EVENT, &l->sum) < 0) {
				ok = false;
			} else if (l->sum.kind != P_QUANTITY && l->sum.kind != P_RESOURCE &&
				   l->sum.kind != P_ATTR) {
				ydiag(ld->dl, ld->yd, n,
				      "sum must be count, quantity, or a numeric resource.NAME or "
				      "attributes.NAME field, not '%s'",
				      s);
				ok = false;
			} else {
				l->count = false;
			}
		}
	}
	if ((n = ymap_get(ld->yd, v, "by", NULL))) {
		if (load_by(ld, n, PCTX_EVENT, &l->by, &l->n_by) < 0)
			ok = false;
	} else {
		loader_default_by(ld, &l->by, &l->n_by);
	}
	if ((n = ymap_get(ld->yd, v, "window", NULL))) {
		if (loader_duration(ld, n, "window", &l->window) < 0)
			ok = false;
		else
			l->window_text = arena_strdup(&ld->rs->arena, ynode_str(n));
	} else {
		ydiag(ld->dl, ld->yd, keynode, "limit needs a window (e.g. window: 24h)");
		ok = false;
	}
	if ((n = ymap_get(ld->yd, v, "max", NULL))) {
		bool number = ynode_number(n, &l->max) == 0;

		if (!number || l->max < 0) {
			/* a negative number as written ("-1"), anything else described */
			ydiag(ld->dl, ld->yd, n, "max must be a number >= 0, not %s",
			      number ? ynode_str(n) : ynode_describe(n));
			ok = false;
		}
	} else {
		ydiag(ld->dl, ld->yd, keynode, "limit needs max (fires when the total exceeds it)");
		ok = false;
	}
	return ok;
}

static bool
load_retention(struct loader *ld, yaml_node_t *keynode, yaml_node_t *v, struct retention_spec *r)
{
	yaml_node_t *n, *t;
	bool ok = true;

	if (!loader_map(ld, v, "retention"))
		return false;
	if (ymap_check_keys(ld->yd, v, retention_keys, AUPD_ARRAY_LEN(retention_keys), "retention",
			    ld->dl))
		ok = false;
	if ((n = ymap_get(ld->yd, v, "age_of", NULL))) {
		if (path_compile(ld, n, PCTX_EVENT, &r->age_of) < 0) {
			ok = false;
		} else if (r->age_of.kind != P_RESOURCE && r->age_of.kind != P_ATTR) {
			ydiag(ld->dl, ld->yd, n,
			      "age_of must be a resource.NAME or attributes.NAME field holding an "
			      "RFC 3339 time, such as resource.created");
			ok = false;
		}
	} else {
		ydiag(ld->dl, ld->yd, keynode, "retention needs age_of (e.g. age_of: resource.created)");
		ok = false;
	}
	if ((n = ymap_get(ld->yd, v, "max", NULL))) {
		if (loader_duration(ld, n, "max", &r->max) < 0)
			ok = false;
		else
			r->max_text = arena_strdup(&ld->rs->arena, ynode_str(n));
	} else {
		ydiag(ld->dl, ld->yd, keynode, "retention needs max (e.g. max: 180d)");
		ok = false;
	}
	if ((t = ymap_get(ld->yd, v, "track", NULL))) {
		if (!loader_map(ld, t, "track"))
			return false;
		if (ymap_check_keys(ld->yd, t, track_keys, AUPD_ARRAY_LEN(track_keys), "track",
				    ld->dl))
			ok = false;
		if ((n = ymap_get(ld->yd, t, "deleted_by", NULL))) {
			if (!(r->deleted_by = cond_compile(ld, n)))
				ok = false;
			r->track = true;
		} else {
			ydiag(ld->dl, ld->yd, t,
			      "track needs deleted_by (e.g. deleted_by: {action: data.delete})");
			ok = false;
		}
	}
	return ok;
}

static bool
load_reuse(struct loader *ld, yaml_node_t *keynode, yaml_node_t *v, struct reuse_spec *r)
{
	static const char *const unknown_names[] = {"deny", "allow"};
	struct path purpose = {.kind = P_PURPOSE, .text = "purpose", .key_id = -1};
	yaml_node_t *n;
	bool ok = true;

	if (!loader_map(ld, v, "reuse"))
		return false;
	if (ymap_check_keys(ld->yd, v, reuse_keys, AUPD_ARRAY_LEN(reuse_keys), "reuse", ld->dl))
		ok = false;
	r->unknown_fires = true;
	if ((n = ymap_get(ld->yd, v, "unknown", NULL))) {
		int i = loader_enum(ld, n, "unknown (deny or allow)", unknown_names, 2);

		if (i < 0)
			ok = false;
		else
			r->unknown_fires = i == 0;
	}
	if (!(n = ymap_get(ld->yd, v, "allowed", NULL))) {
		ydiag(ld->dl, ld->yd, keynode,
		      "reuse needs allowed (collected_for: [purposes it may serve])");
		return false;
	}
	if (!loader_map(ld, n, "allowed"))
		return false;
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start), i = 0;
	const char **keys = xcalloc(count + 1, sizeof(*keys));
	void **vals = xcalloc(count + 1, sizeof(*vals));

	YMAP_FOREACH(ld->yd, n, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key), *lv = ydoc_node(ld->yd, pair->value);
		const char *cf = loader_str(ld, k, "a collected_for value");
		const struct oplist *l;
		bool dup = false;

		if (!cf) {
			ok = false;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			dup |= !strcmp(keys[j], cf);
		if (dup) {
			ydiag(ld->dl, ld->yd, k, "duplicate collected_for '%s' in allowed", cf);
			ok = false;
			continue;
		}
		if (!(l = oplist_compile(ld, lv, &purpose, OP_IN))) {
			ok = false;
			continue;
		}
		keys[i] = arena_strdup(&ld->rs->arena, cf);
		vals[i] = (void *)l;
		i++;
	}
	strmap_build(&r->allowed, &ld->rs->arena, keys, vals, i);
	free(keys);
	free(vals);
	return ok;
}

bool
load_rule(struct loader *ld, yaml_node_t *item, struct rule *r)
{
	static const char *const kinds[] = {"limit", "retention", "reuse"};
	static const char *const modes[] = {"enforce", "shadow"};
	yaml_node_t *n, *k, *kindkey = NULL, *kindval = NULL;
	bool ok = true;
	int i;

	r->file = ld->yd->file;
	r->line = ynode_line(item);
	r->severity = SEV_MEDIUM;
	r->effect = EFFECT_DENY;
	if (!loader_map(ld, item, "a rule"))
		return false;
	if (ymap_check_keys(ld->yd, item, rule_keys, AUPD_ARRAY_LEN(rule_keys), "rule", ld->dl))
		ok = false;
	if (!(n = ymap_get(ld->yd, item, "id", NULL))) {
		ydiag(ld->dl, ld->yd, item, "a rule needs an id");
		ok = false;
	} else if (!loader_id(ld, n, "rule", &r->id)) {
		ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "description", NULL))) {
		const char *s = loader_str(ld, n, "description");

		if (s)
			r->description = arena_strdup(&ld->rs->arena, s);
		else
			ok = false;
	}
	if ((n = ymap_get(ld->yd, item, "severity", NULL))) {
		if ((i = loader_enum(ld, n, "severity", severity_names, 5)) < 0)
			ok = false;
		else
			r->severity = (enum severity)i;
	}
	if ((n = ymap_get(ld->yd, item, "effect", NULL)) && loader_effect(ld, n, &r->effect) < 0)
		ok = false;
	if ((n = ymap_get(ld->yd, item, "mode", NULL))) {
		if ((i = loader_enum(ld, n, "mode", modes, 2)) < 0)
			ok = false;
		else
			r->shadow = i == 1;
	}
	if ((n = ymap_get(ld->yd, item, "tags", NULL))) {
		if (!loader_seq(ld, n, "tags")) {
			ok = false;
		} else {
			r->tags = arena_alloc(&ld->rs->arena,
					      ((size_t)(n->data.sequence.items.top -
							n->data.sequence.items.start) +
					       1) * sizeof(*r->tags));
			YSEQ_FOREACH(ld->yd, n, it) {
				const char *t = loader_str(ld, ydoc_node(ld->yd, *it), "a tag");

				if (t)
					r->tags[r->n_tags++] = arena_strdup(&ld->rs->arena, t);
				else
					ok = false;
			}
		}
	}
	if ((n = ymap_get(ld->yd, item, "when", NULL)) && !(r->when = cond_compile(ld, n)))
		ok = false;
	r->kind = RK_CONDITION;
	for (size_t j = 0; j < AUPD_ARRAY_LEN(kinds); j++) {
		if (!(n = ymap_get(ld->yd, item, kinds[j], &k)))
			continue;
		if (kindkey) {
			ydiag(ld->dl, ld->yd, k,
			      "a rule takes only one of limit, retention and reuse (this one also "
			      "has %s at line %d)",
			      ynode_str(kindkey), ynode_line(kindkey));
			ok = false;
			continue;
		}
		kindkey = k;
		kindval = n;
		r->kind = (enum rule_kind)(RK_LIMIT + j);
	}
	if (kindkey) {
		switch (r->kind) {
		case RK_LIMIT:
			ok &= load_limit(ld, kindkey, kindval, &r->limit);
			break;
		case RK_RETENTION:
			ok &= load_retention(ld, kindkey, kindval, &r->retention);
			break;
		case RK_REUSE:
			ok &= load_reuse(ld, kindkey, kindval, &r->reuse);
			break;
		case RK_CONDITION:
			break;
		}
	}
	if ((n = ymap_get(ld->yd, item, "message", NULL)) &&
	    !(r->message = message_compile(ld, n, r->kind)))
		ok = false;
	return ok;
}
