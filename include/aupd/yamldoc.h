/* yamldoc.h - libyaml documents with positions, for the configuration and rules loaders */
#ifndef AUPD_YAMLDOC_H
#define AUPD_YAMLDOC_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "aupd/util.h"

struct ydoc {
	yaml_document_t doc;
	const char *file; /* borrowed: the name used in diagnostics */
	bool loaded;
};

/*
 * Parses the first YAML document in buf.  A syntax error, or a second
 * document, is added to `dl` with its position and -1 returned.  An empty
 * input loads as a document without a root (ydoc_root() is NULL).
 */
int ydoc_load(struct ydoc *yd, const char *file, const void *buf, size_t len,
	      struct diag_list *dl);
void ydoc_free(struct ydoc *yd);

yaml_node_t *ydoc_root(struct ydoc *yd);
yaml_node_t *ydoc_node(struct ydoc *yd, int id);

static inline int ynode_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static inline int ynode_col(const yaml_node_t *n) { return (int)n->start_mark.column + 1; }

/* "a mapping", "a list", "a string", "a number", "a boolean", "null". */
const char *ynode_describe(const yaml_node_t *n);
bool ynode_is_null(const yaml_node_t *n);
/* The scalar's text, or NULL for a non-scalar. */
const char *ynode_str(const yaml_node_t *n);
/* True when the scalar was written without quotes. */
bool ynode_plain(const yaml_node_t *n);
/* Plain true/false (and yes/no/on/off); -1 when not a boolean. */
int ynode_bool(const yaml_node_t *n);
/* A plain integer scalar; -1 when it is not one (or out of range). */
int ynode_i64(const yaml_node_t *n, int64_t min, int64_t max, int64_t *out);
/* A plain number scalar (integer or decimal); -1 when not one. */
int ynode_number(const yaml_node_t *n, double *out);

/* Adds a diagnostic at the node's position. */
void ydiag(struct diag_list *dl, struct ydoc *yd, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Checks a mapping's keys against `allowed`: each unknown key is reported
 * (with a did-you-mean when one is close), and so is a repeated key.
 * `what` names the mapping in messages ("configuration", "rule").
 * Returns the number of problems found.
 */
int ymap_check_keys(struct ydoc *yd, yaml_node_t *map, const char *const *allowed, size_t n,
		    const char *what, struct diag_list *dl);
/* The value for `key` in a mapping, or NULL; `keynode` receives the key's node. */
yaml_node_t *ymap_get(struct ydoc *yd, yaml_node_t *map, const char *key, yaml_node_t **keynode);

#define YMAP_FOREACH(yd, map, pair)                                                   \
	for (yaml_node_pair_t *pair = (map)->data.mapping.pairs.start;                \
	     pair < (map)->data.mapping.pairs.top; pair++)
#define YSEQ_FOREACH(yd, seq, item)                                                   \
	for (yaml_node_item_t *item = (seq)->data.sequence.items.start;               \
	     item < (seq)->data.sequence.items.top; item++)

#endif
