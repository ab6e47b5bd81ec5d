/* rules_load.c - load rule files: YAML to a compiled ruleset, reporting every error with its position */
#include "policy_int.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RULES_MAX_FILE_BYTES (4u << 20)

static const char *const top_keys[] = {"version",     "lists",	    "datasets", "rules",
				       "escalations", "exemptions", "tests"};

/* ---- small typed readers, shared with the other rules_load*.c ---- */

const char *
loader_str(struct loader *ld, yaml_node_t *n, const char *what)
{
	const char *s = ynode_str(n);

	if (!s || n->type != YAML_SCALAR_NODE || ynode_is_null(n)) {
		ydiag(ld->dl, ld->yd, n, "%s must be a string, not %s", what, ynode_describe(n));
		return NULL;
	}
	if (!*s) {
		ydiag(ld->dl, ld->yd, n, "%s must not be empty", what);
		return NULL;
	}
	return s;
}

yaml_node_t *
loader_seq(struct loader *ld, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SEQUENCE_NODE) {
		ydiag(ld->dl, ld->yd, n, "%s must be a list, not %s", what, ynode_describe(n));
		return NULL;
	}
	return n;
}

yaml_node_t *
loader_map(struct loader *ld, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_MAPPING_NODE) {
		ydiag(ld->dl, ld->yd, n, "%s must be a mapping, not %s", what, ynode_describe(n));
		return NULL;
	}
	return n;
}

int
loader_duration(struct loader *ld, yaml_node_t *n, const char *what, int64_t *out)
{
	const char *s = ynode_str(n), *why;

	if (!s || n->type != YAML_SCALAR_NODE || ynode_is_null(n)) {
		ydiag(ld->dl, ld->yd, n, "%s must be a duration such as 30s, 15m, 24h or 90d, not %s",
		      what, ynode_describe(n));
		return -1;
	}
	if (duration_parse(s, out, &why) < 0) {
		ydiag(ld->dl, ld->yd, n, "bad duration '%s' for %s: %s", s, what, why);
		return -1;
	}
	if (*out <= 0) {
		ydiag(ld->dl, ld->yd, n, "%s must be longer than 0", what);
		return -1;
	}
	return 0;
}

void
loader_intern_key(struct loader *ld, struct path *p)
{
	struct ruleset *rs = ld->rs;

	if (p->kind != P_RESOURCE)
		return;
	for (size_t i = 0; i < rs->n_res_keys; i++) {
		if (!strcmp(rs->res_keys[i], p->key)) {
			p->key_id = (int)i;
			return;
		}
	}
	if (rs->n_res_keys < RES_CACHE_KEYS) {
		rs->res_keys[rs->n_res_keys] = arena_strdup(&rs->arena, p->key);
		p->key_id = (int)rs->n_res_keys++;
	}
}

int
loader_depth_enter(struct loader *ld, yaml_node_t *n)
{
	if (ld->depth >= LOADER_MAX_DEPTH) {
		ydiag(ld->dl, ld->yd, n, "nested deeper than %d levels", LOADER_MAX_DEPTH);
		return -1;
	}
	ld->depth++;
	return 0;
}

static bool
valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == ':' || *s == '-'))
			return false;
	return true;
}

static bool
id_eq(const struct idrec *r, const char *id)
{
	return !strcmp(r->id, id);
}

/*
 * Checks an id's characters and registers it in the ruleset-wide namespace
 * (rules, escalations and exemptions share it).
 */
bool
loader_id(struct loader *ld, yaml_node_t *n, const char *kind, const char **out)
{
	const char *s = loader_str(ld, n, "id");

	*out = NULL;
	if (!s)
		return false;
	if (!valid_id(s)) {
		ydiag(ld->dl, ld->yd, n, "bad %s id '%s': ids are 1-128 of A-Z a-z 0-9 . _ : -",
		      kind, s);
		return false;
	}
	for (size_t i = 0; i < ld->n_ids; i++) {
		if (id_eq(&ld->ids[i], s)) {
			ydiag(ld->dl, ld->yd, n, "duplicate id '%s' (first used at %s:%d)", s,
			      ld->ids[i].file, ld->ids[i].line);
			return false;
		}
	}
	if (ld->n_ids == ld->cap_ids) {
		ld->cap_ids = ld->cap_ids ? ld->cap_ids * 2 : 32;
		ld->ids = xrealloc(ld->ids, ld->cap_ids * sizeof(*ld->ids));
	}
	*out = arena_strdup(&ld->rs->arena, s);
	ld->ids[ld->n_ids++] = (struct idrec){*out, ld->yd->file, ynode_line(n)};
	return true;
}

int
loader_enum(struct loader *ld, yaml_node_t *n, const char *what, const char *const *names,
	    size_t count)
{
	const char *s = loader_str(ld, n, what), *best;

	if (!s)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	best = suggest_word(s, names, count);
	if (best)
		ydiag(ld->dl, ld->yd, n, "unknown %s '%s' (did you mean '%s'?)", what, s, best);
	else
		ydiag(ld->dl, ld->yd, n, "unknown %s '%s'", what, s);
	return -1;
}

static const char *const effect_names[] = {"allow", "flag", "deny"};

int
loader_effect(struct loader *ld, yaml_node_t *n, enum effect *out)
{
	int i = loader_enum(ld, n, "effect", effect_names, 3);

	if (i < 0)
		return -1;
	*out = (enum effect)i;
	return 0;
}

/* ---- files ---- */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
add_file(struct loader *ld, char *path)
{
	ld->files = xrealloc(ld->files, (ld->n_files + 1) * sizeof(*ld->files));
	memset(&ld->files[ld->n_files], 0, sizeof(ld->files[0]));
	ld->files[ld->n_files++].path = path;
}

static void
expand_path(struct loader *ld, const char *path)
{
	struct stat sb;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *d;

	if (stat(path, &sb) < 0) {
		diag_add(ld->dl, path, 0, 0, "cannot open: %s", strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		add_file(ld, xstrdup(path));
		return;
	}
	if (!(d = opendir(path))) {
		diag_add(ld->dl, path, 0, 0, "cannot open directory: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *full;

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		full = path_join(path, de->d_name);
		if (stat(full, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			free(full);
			continue;
		}
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = full;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++)
		add_file(ld, names[i]);
	free(names);
}

static void
read_files(struct loader *ld)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	char hex[65];
	unsigned dlen = 0;
	size_t kept = 0;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		abort();
	ld->rs->files = xcalloc(ld->n_files + 1, sizeof(*ld->rs->files));
	for (size_t i = 0; i < ld->n_files; i++) {
		struct lfile *f = &ld->files[i];
		struct aupd_error err;

		f->bytes = file_read_all(f->path, RULES_MAX_FILE_BYTES, &f->len, &err);
		if (!f->bytes) {
			diag_add(ld->dl, f->path, 0, 0, "%s", err.msg);
			continue;
		}
		EVP_DigestUpdate(md, f->bytes, f->len);
		/* diagnostics and rules keep pointing at the ruleset's copy of the name */
		ld->rs->files[kept].path = xstrdup(f->path);
		ld->rs->files[kept].bytes = xmalloc(f->len + 1);
		memcpy(ld->rs->files[kept].bytes, f->bytes, f->len + 1);
		ld->rs->files[kept].len = f->len;
		f->parsed = ydoc_load(&f->yd, ld->rs->files[kept].path, f->bytes, f->len, ld->dl) == 0;
		kept++;
	}
	ld->rs->n_files = kept;
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	hex_encode(digest, 32, hex);
	snprintf(ld->rs->version, sizeof(ld->rs->version), "sha256:%s", hex);
}

/* ---- lists and datasets ---- */

static void
load_lists(struct loader *ld, yaml_node_t *map)
{
	if (!loader_map(ld, map, "lists"))
		return;
	YMAP_FOREACH(ld->yd, map, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key), *v = ydoc_node(ld->yd, pair->value);
		const char *name = loader_str(ld, k, "a list name");
		const struct oplist *prev;
		struct oplist *l;

		if (!name)
			continue;
		if (!valid_id(name)) {
			ydiag(ld->dl, ld->yd, k,
			      "bad list name '%s': names are 1-128 of A-Z a-z 0-9 . _ : -", name);
			continue;
		}
		if ((prev = loader_list(ld, name))) {
			ydiag(ld->dl, ld->yd, k, "duplicate list '%s'", name);
			continue;
		}
		if (!loader_seq(ld, v, "a list under lists:"))
			continue;
		if (!(prev = oplist_compile(ld, v, NULL, OP_IN)))
			continue;
		l = (struct oplist *)prev;
		l->name = arena_alloc(&ld->rs->arena, strlen(name) + 2);
		((char *)l->name)[0] = '$';
		strcpy((char *)l->name + 1, name);
		ld->lists = xrealloc(ld->lists, (ld->n_lists + 1) * sizeof(*ld->lists));
		ld->lists[ld->n_lists++] = l;
	}
}



static void
load_dataset(struct loader *ld, yaml_node_t *k, yaml_node_t *v, struct dataset *ds)
{
	size_t n = 0;

	ds->fields = arena_alloc(&ld->rs->arena,
				 ((size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start) +
				  1) * sizeof(*ds->fields));
	YMAP_FOREACH(ld->yd, v, pair) {
		yaml_node_t *fk = ydoc_node(ld->yd, pair->key), *fv = ydoc_node(ld->yd, pair->value);
		const char *f = loader_str(ld, fk, "a dataset field name"), *val, *why;
		bool dup = false;

		if (!f)
			continue;
		if (!event_resource_key_valid(f)) {
			ydiag(ld->dl, ld->yd, fk,
			      "bad field name '%s': resource field names are 1-64 of A-Z a-z 0-9 _ -",
			      f);
			continue;
		}
		if (!strcmp(f, "dataset") || !strcmp(f, "id")) {
			ydiag(ld->dl, ld->yd, fk,
			      "a dataset cannot set resource.%s (it belongs to each event)", f);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			dup |= !strcmp(ds->fields[i].key, f);
		if (dup) {
			ydiag(ld->dl, ld->yd, fk, "duplicate field '%s' in dataset '%s'", f,
			      ds->name);
			continue;
		}
		if (!(val = loader_str(ld, fv, "a dataset field")))
			continue;
		if (!strcmp(f, "created")) {
			if (time_parse_rfc3339(val, strlen(val), &ds->created, &why) < 0) {
				ydiag(ld->dl, ld->yd, fv, "resource.created of dataset '%s': %s",
				      ds->name, why);
				continue;
			}
			ds->has_created = true;
		}
		ds->fields[n].key = arena_strdup(&ld->rs->arena, f);
		ds->fields[n].val = arena_strdup(&ld->rs->arena, val);
		n++;
	}
	ds->n_fields = n;
	qsort(ds->fields, n, sizeof(*ds->fields), kv_compare);
	(void)k;
}

static void
load_datasets(struct loader *ld, yaml_node_t *map, struct dataset *out, size_t *n)
{
	if (!loader_map(ld, map, "datasets"))
		return;
	YMAP_FOREACH(ld->yd, map, pair) {
		yaml_node_t *k = ydoc_node(ld->yd, pair->key), *v = ydoc_node(ld->yd, pair->value);
		const char *name = loader_str(ld, k, "a dataset name");
		bool dup = false;

		if (!name)
			continue;
		for (size_t i = 0; i < *n; i++)
			dup |= !strcmp(out[i].name, name);
		if (dup) {
			ydiag(ld->dl, ld->yd, k, "duplicate dataset '%s'", name);
			continue;
		}
		if (!loader_map(ld, v, "a dataset (a mapping of resource fields)"))
			continue;
		out[*n].name = arena_strdup(&ld->rs->arena, name);
		load_dataset(ld, k, v, &out[*n]);
		(*n)++;
	}
}

static size_t
seq_len(yaml_node_t *n)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t
map_len(yaml_node_t *n)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* ---- the whole load ---- */

static yaml_node_t *
file_root(struct loader *ld, struct lfile *f)
{
	yaml_node_t *root;

	if (!f->parsed)
		return NULL;
	ld->yd = &f->yd;
	root = ydoc_root(&f->yd);
	if (!root || (root->type == YAML_SCALAR_NODE && ynode_is_null(root)))
		return NULL;
	return root->type == YAML_MAPPING_NODE ? root : NULL;
}

static void
check_top(struct loader *ld, struct lfile *f)
{
	yaml_node_t *root, *v;
	int64_t version;

	if (!f->parsed)
		return;
	ld->yd = &f->yd;
	root = ydoc_root(&f->yd);
	if (!root || (root->type == YAML_SCALAR_NODE && ynode_is_null(root)))
		return;
	if (root->type != YAML_MAPPING_NODE) {
		ydiag(ld->dl, ld->yd, root,
		      "a rules file must be a mapping (version, lists, datasets, rules, "
		      "escalations, exemptions, tests), not %s",
		      ynode_describe(root));
		return;
	}
	ymap_check_keys(ld->yd, root, top_keys, AUPD_ARRAY_LEN(top_keys), "top-level", ld->dl);
	if ((v = ymap_get(ld->yd, root, "version", NULL)) &&
	    (ynode_i64(v, INT64_MIN, INT64_MAX, &version) < 0 || version != 1))
		ydiag(ld->dl, ld->yd, v, "unsupported version '%s' (this aupd reads version: 1)",
		      ynode_str(v) ? ynode_str(v) : ynode_describe(v));
}

void
ruleset_keep_regex(struct ruleset *rs, regex_t *re)
{
	if (rs->n_regexes == rs->cap_regexes) {
		rs->cap_regexes = rs->cap_regexes ? rs->cap_regexes * 2 : 8;
		rs->regexes = xrealloc(rs->regexes, rs->cap_regexes * sizeof(*rs->regexes));
	}
	rs->regexes[rs->n_regexes++] = re;
}

static void
load_all(struct loader *ld)
{
	struct ruleset *rs = ld->rs;
	size_t n_rules = 0, n_datasets = 0;
	yaml_node_t *root, *v;

	for (size_t i = 0; i < ld->n_files; i++)
		check_top(ld, &ld->files[i]);
	/* pass 1: what rules refer to, from every file */
	for (size_t i = 0; i < ld->n_files; i++) {
		if (!(root = file_root(ld, &ld->files[i])))
			continue;
		if ((v = ymap_get(ld->yd, root, "lists", NULL)))
			load_lists(ld, v);
		n_datasets += map_len(ymap_get(ld->yd, root, "datasets", NULL));
		n_rules += seq_len(ymap_get(ld->yd, root, "rules", NULL));
	}
	rs->datasets = arena_alloc(&rs->arena, (n_datasets + 1) * sizeof(*rs->datasets));
	for (size_t i = 0; i < ld->n_files; i++) {
		if ((root = file_root(ld, &ld->files[i])) &&
		    (v = ymap_get(ld->yd, root, "datasets", NULL)))
			load_datasets(ld, v, rs->datasets, &rs->n_datasets);
	}
	{
		const char **keys = xcalloc(rs->n_datasets + 1, sizeof(*keys));
		void **vals = xcalloc(rs->n_datasets + 1, sizeof(*vals));

		for (size_t i = 0; i < rs->n_datasets; i++) {
			keys[i] = rs->datasets[i].name;
			vals[i] = &rs->datasets[i];
		}
		strmap_build(&rs->dataset_map, &rs->arena, keys, vals, rs->n_datasets);
		free(keys);
		free(vals);
	}
	/* pass 2: rules */
	rs->rules = arena_alloc(&rs->arena, (n_rules + 1) * sizeof(*rs->rules));
	ld->pctx = PCTX_EVENT;
	for (size_t i = 0; i < ld->n_files; i++) {
		if (!(root = file_root(ld, &ld->files[i])) ||
		    !(v = ymap_get(ld->yd, root, "rules", NULL)))
			continue;
		if (!loader_seq(ld, v, "rules"))
			continue;
		YSEQ_FOREACH(ld->yd, v, it) {
			struct rule *r = &rs->rules[rs->n_rules];

			if (load_rule(ld, ydoc_node(ld->yd, *it), r)) {
				r->index = rs->n_rules++;
				if (r->kind == RK_LIMIT && r->limit.window > rs->max_window)
					rs->max_window = r->limit.window;
			} else {
				if (r->id) {
					ld->broken = xrealloc(ld->broken, (ld->n_broken + 1) *
										  sizeof(*ld->broken));
					ld->broken[ld->n_broken++] = r->id;
				}
				memset(r, 0, sizeof(*r));
			}
		}
	}
	/* pass 3: what refers to rules */
	for (size_t i = 0; i < ld->n_files; i++) {
		if (!(root = file_root(ld, &ld->files[i])))
			continue;
		if ((v = ymap_get(ld->yd, root, "escalations", NULL)))
			load_escalations(ld, v);
	}
	for (size_t i = 0; i < ld->n_files; i++) {
		if (!(root = file_root(ld, &ld->files[i])))
			continue;
		if ((v = ymap_get(ld->yd, root, "exemptions", NULL)))
			load_exemptions(ld, v);
	}
	for (size_t i = 0; i < ld->n_files; i++) {
		if (!(root = file_root(ld, &ld->files[i])))
			continue;
		if ((v = ymap_get(ld->yd, root, "tests", NULL)))
			load_tests(ld, v);
	}
}

struct diag_order {
	struct aupd_error e;
	size_t file_rank;
	size_t index;
};

static int
diag_cmp(const void *a, const void *b)
{
	const struct diag_order *x = a, *y = b;

	if (x->file_rank != y->file_rank)
		return x->file_rank < y->file_rank ? -1 : 1;
	if (x->e.line != y->e.line)
		return x->e.line < y->e.line ? -1 : 1;
	if (x->e.col != y->e.col)
		return x->e.col < y->e.col ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Puts the diagnostics of this load in file order, then line and column order. */
static void
sort_diags(struct loader *ld, size_t from)
{
	struct diag_list *dl = ld->dl;
	size_t n = dl->n - from;
	struct diag_order *v;

	if (n < 2)
		return;
	v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		v[i].e = dl->v[from + i];
		v[i].index = i;
		v[i].file_rank = ld->n_files;
		for (size_t k = 0; k < ld->n_files; k++) {
			if (!strcmp(ld->files[k].path, v[i].e.file)) {
				v[i].file_rank = k;
				break;
			}
		}
	}
	qsort(v, n, sizeof(*v), diag_cmp);
	for (size_t i = 0; i < n; i++)
		dl->v[from + i] = v[i].e;
	free(v);
}

struct ruleset *
ruleset_load(const char *const *paths, size_t n_paths, const struct ruleset_opts *opts,
	     struct diag_list *dl)
{
	static atomic_uint_fast64_t serials;
	struct loader ld = {0};
	size_t errors = dl->n;
	struct ruleset *rs = xcalloc(1, sizeof(*rs));

	atomic_init(&rs->refs, 1);
	rs->serial = atomic_fetch_add(&serials, 1) + 1;
	rs->res_keys[RES_KEY_COLLECTED_FOR] = "collected_for";
	rs->res_keys[RES_KEY_ID] = "id";
	rs->res_keys[RES_KEY_DATASET] = "dataset";
	rs->n_res_keys = 3;
	ld.rs = rs;
	ld.dl = dl;
	ld.opts = opts;
	for (size_t i = 0; i < n_paths; i++)
		expand_path(&ld, paths[i]);
	read_files(&ld);
	load_all(&ld);
	if (dl->n == errors) {
		ruleset_build_index(rs);
		for (size_t i = 0; i < rs->n_rules; i++) {
			rs->rules[i].id_len = strlen(rs->rules[i].id);
			rs->rules[i].id_hash = hash_bytes(rs->rules[i].id, rs->rules[i].id_len);
		}
		/* every field a rule names, looked up in each dataset once */
		for (size_t i = 0; i < rs->n_datasets; i++)
			for (size_t k = 0; k < rs->n_res_keys; k++)
				rs->datasets[i].res[k] = kv_lookup(rs->datasets[i].fields,
								   rs->datasets[i].n_fields,
								   rs->res_keys[k]);
	} else {
		sort_diags(&ld, errors);
	}
	for (size_t i = 0; i < ld.n_files; i++) {
		ydoc_free(&ld.files[i].yd);
		free(ld.files[i].bytes);
		free(ld.files[i].path);
	}
	free(ld.files);
	free(ld.lists);
	free(ld.ids);
	free(ld.broken);
	if (dl->n != errors) {
		ruleset_free(rs);
		return NULL;
	}
	return rs;
}
