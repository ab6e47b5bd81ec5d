/* yamldoc.c - libyaml documents with positions, for the configuration and rules loaders */
#include "aupd/yamldoc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Aliases make a document a graph; walking one can take exponential time
 * ("billion laughs"), and the rules language has `lists:` for reuse.
 */
static int
reject_aliases(struct ydoc *yd, struct diag_list *dl)
{
	size_t n = (size_t)(yd->doc.nodes.top - yd->doc.nodes.start);
	unsigned char *refs = xcalloc(n + 1, 1);
	int rc = 0;

	for (yaml_node_t *node = yd->doc.nodes.start; node < yd->doc.nodes.top && !rc; node++) {
		int ids[2];

		if (node->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = node->data.sequence.items.start;
			     it < node->data.sequence.items.top && !rc; it++)
				if (*it >= 1 && (size_t)*it <= n && refs[*it]++)
					rc = *it;
		} else if (node->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
			     p < node->data.mapping.pairs.top && !rc; p++) {
				ids[0] = p->key;
				ids[1] = p->value;
				for (int i = 0; i < 2 && !rc; i++)
					if (ids[i] >= 1 && (size_t)ids[i] <= n && refs[ids[i]]++)
						rc = ids[i];
			}
		}
	}
	free(refs);
	if (rc) {
		yaml_node_t *node = ydoc_node(yd, rc);

		ydiag(dl, yd, node, "YAML aliases are not supported (this anchored node is used "
				    "more than once); use lists: and $name for reuse");
		return -1;
	}
	return 0;
}

int
ydoc_load(struct ydoc *yd, const char *file, const void *buf, size_t len, struct diag_list *dl)
{
	yaml_parser_t parser;
	yaml_document_t extra;

	memset(yd, 0, sizeof(*yd));
	yd->file = file;
	if (!yaml_parser_initialize(&parser)) {
		diag_add(dl, file, 0, 0, "cannot initialize the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &yd->doc)) {
		const yaml_mark_t *m = parser.problem ? &parser.problem_mark : &parser.context_mark;

		diag_add(dl, file, (int)m->line + 1, (int)m->column + 1, "invalid YAML: %s%s%s",
			 parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	yd->loaded = true;
	if (reject_aliases(yd, dl) < 0) {
		yaml_parser_delete(&parser);
		return -1;
	}
	if (yaml_document_get_root_node(&yd->doc)) {
		if (!yaml_parser_load(&parser, &extra)) {
			const yaml_mark_t *m = &parser.problem_mark;

			diag_add(dl, file, (int)m->line + 1, (int)m->column + 1,
				 "invalid YAML: %s", parser.problem ? parser.problem : "syntax error");
			yaml_parser_delete(&parser);
			return -1;
		}
		if (yaml_document_get_root_node(&extra)) {
			yaml_node_t *r = yaml_document_get_root_node(&extra);

			diag_add(dl, file, ynode_line(r), ynode_col(r),
				 "a second YAML document is not allowed here (one document per file)");
			yaml_document_delete(&extra);
			yaml_parser_delete(&parser);
			return -1;
		}
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);
	return 0;
}

void
ydoc_free(struct ydoc *yd)
{
	if (yd->loaded)
		yaml_document_delete(&yd->doc);
	yd->loaded = false;
}

yaml_node_t *
ydoc_root(struct ydoc *yd)
{
	return yd->loaded ? yaml_document_get_root_node(&yd->doc) : NULL;
}

yaml_node_t *
ydoc_node(struct ydoc *yd, int id)
{
	return yaml_document_get_node(&yd->doc, id);
}

bool
ynode_is_null(const yaml_node_t *n)
{
	const char *s;

	if (!n || n->type != YAML_SCALAR_NODE || !ynode_plain(n))
		return false;
	s = (const char *)n->data.scalar.value;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

const char *
ynode_str(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

bool
ynode_plain(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

int
ynode_bool(const yaml_node_t *n)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
	const char *s = ynode_str(n);

	if (!s || !ynode_plain(n))
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i]))
			return 1;
		if (!strcasecmp(s, no[i]))
			return 0;
	}
	return -1;
}

int
ynode_i64(const yaml_node_t *n, int64_t min, int64_t max, int64_t *out)
{
	const char *s = ynode_str(n);

	if (!s || !ynode_plain(n))
		return -1;
	return parse_i64(s, min, max, out);
}

int
ynode_number(const yaml_node_t *n, double *out)
{
	const char *s = ynode_str(n);
	char *end;
	double v;

	if (!s || !ynode_plain(n) || !*s)
		return -1;
	if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.'))
		return -1;
	v = strtod(s, &end);
	if (*end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

const char *
ynode_describe(const yaml_node_t *n)
{
	double d;

	if (!n)
		return "nothing";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (ynode_is_null(n))
			return "null";
		if (ynode_bool(n) >= 0)
			return "a boolean";
		if (ynode_number(n, &d) == 0)
			return "a number";
		return "a string";
	default:
		return "nothing";
	}
}

void
ydiag(struct diag_list *dl, struct ydoc *yd, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(dl, yd->file, n ? ynode_line(n) : 0, n ? ynode_col(n) : 0, fmt, ap);
	va_end(ap);
}

int
ymap_check_keys(struct ydoc *yd, yaml_node_t *map, const char *const *allowed, size_t n,
		const char *what, struct diag_list *dl)
{
	int problems = 0;

	YMAP_FOREACH(yd, map, p) {
		yaml_node_t *k = ydoc_node(yd, p->key);
		const char *key = ynode_str(k);
		bool known = false;

		if (!key) {
			ydiag(dl, yd, k, "%s keys must be strings, not %s", what, ynode_describe(k));
			problems++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (!strcmp(key, allowed[i]))
				known = true;
		if (!known) {
			const char *s = suggest_word(key, allowed, n);

			if (s)
				ydiag(dl, yd, k, "unknown %s key '%s' (did you mean '%s'?)", what, key, s);
			else
				ydiag(dl, yd, k, "unknown %s key '%s'", what, key);
			problems++;
			continue;
		}
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *other = ynode_str(ydoc_node(yd, q->key));

			if (other && !strcmp(other, key)) {
				ydiag(dl, yd, k, "duplicate %s key '%s'", what, key);
				problems++;
				break;
			}
		}
	}
	return problems;
}

yaml_node_t *
ymap_get(struct ydoc *yd, yaml_node_t *map, const char *key, yaml_node_t **keynode)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	YMAP_FOREACH(yd, map, p) {
		yaml_node_t *k = ydoc_node(yd, p->key);
		const char *s = ynode_str(k);

		if (s && !strcmp(s, key)) {
			if (keynode)
				*keynode = k;
			return ydoc_node(yd, p->value);
		}
	}
	return NULL;
}
