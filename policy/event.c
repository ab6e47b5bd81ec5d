/* event.c - usage events: validation per the contract's field table, request bodies */
#include "aupd/event.h"
#include "policy_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_keys[] = {"id",	     "time",	 "tenant",   "actor",
					 "action",   "purpose",	 "resource", "quantity",
					 "attributes"};

static int
problem(struct event_problem *prob, const char *pointer, const char *fmt, ...)
{
	va_list ap;

	prob->status = 400;
	snprintf(prob->pointer, sizeof(prob->pointer), "%s", pointer);
	va_start(ap, fmt);
	vsnprintf(prob->detail, sizeof(prob->detail), fmt, ap);
	va_end(ap);
	return -1;
}

/* Appends an RFC 6901 escaped token ("~" -> "~0", "/" -> "~1"). */
static void
pointer_push(char *ptr, size_t cap, const char *token)
{
	size_t n = strlen(ptr), need = n + 1;

	/*
	 * All of the token or nothing: a pointer cut short would name another
	 * field, so one that does not fit leaves the pointer at the parent,
	 * which holds the offending member (the detail names it).
	 */
	for (const char *t = token; *t; t++)
		need += *t == '~' || *t == '/' ? 2 : 1;
	if (need >= cap)
		return;
	ptr[n++] = '/';
	for (const char *t = token; *t; t++) {
		if (*t == '~' || *t == '/') {
			ptr[n++] = '~';
			ptr[n++] = *t == '~' ? '0' : '1';
		} else {
			ptr[n++] = *t;
		}
	}
	ptr[n] = '\0';
}

/* Code points in a valid UTF-8 string; -1 when it holds a control character. */
static long
printable_length(const char *s, size_t len)
{
	long n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return -1; /* C1 controls */
		if ((c & 0xc0) != 0x80)
			n++;
	}
	return n;
}

bool
event_valid_id(const char *s, size_t len)
{
	if (len < 1 || len > EVENT_MAX_FIELD)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

/* Lowercase dotted words: [a-z][a-z0-9_-]* joined by single dots. */
bool
event_valid_action(const char *s, size_t len)
{
	bool word_start = true;

	if (len < 1 || len > EVENT_MAX_FIELD)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (word_start) {
			if (c < 'a' || c > 'z')
				return false;
			word_start = false;
		} else if (c == '.') {
			word_start = true;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			     c == '-')) {
			return false;
		}
	}
	return !word_start;
}

bool
event_resource_key_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* Finds a string holding NUL anywhere in v; fills the pointer to it. */
static bool
find_nul(const json_t *v, char *ptr, size_t cap, int depth)
{
	size_t n = strlen(ptr);

	if (depth > EVENT_MAX_DEPTH + 1)
		return false;
	if (json_is_string(v))
		return strlen(json_string_value(v)) != json_string_length(v);
	if (json_is_object(v)) {
		const char *key;
		json_t *val;

		json_object_foreach((json_t *)v, key, val) {
			pointer_push(ptr, cap, key);
			if (find_nul(val, ptr, cap, depth + 1))
				return true;
			ptr[n] = '\0';
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			char idx[24];

			snprintf(idx, sizeof(idx), "%zu", i);
			pointer_push(ptr, cap, idx);
			if (find_nul(json_array_get(v, i), ptr, cap, depth + 1))
				return true;
			ptr[n] = '\0';
		}
	}
	return false;
}

int
json_depth(const json_t *v, int limit)
{
	int best = 0;

	if (limit < 0)
		return 0;
	if (json_is_object(v)) {
		const char *key;
		json_t *val;

		json_object_foreach((json_t *)v, key, val) {
			int d = json_depth(val, limit - 1);

			if (d > best)
				best = d;
			if (best > limit)
				break;
		}
		return best + 1;
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			int d = json_depth(json_array_get(v, i), limit - 1);

			if (d > best)
				best = d;
			if (best > limit)
				break;
		}
		return best + 1;
	}
	return 0;
}

/* A required or optional printable string field. */
static int
string_field(json_t *obj, const char *key, bool required, const char **out,
	     struct event_problem *prob)
{
	json_t *v = json_object_get(obj, key);
	char ptr[80];
	long n;

	snprintf(ptr, sizeof(ptr), "/%s", key);
	if (!v) {
		if (required)
			return problem(prob, ptr, "%s is required", key);
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return problem(prob, ptr, "%s must be a string", key);
	n = printable_length(json_string_value(v), json_string_length(v));
	if (n < 0)
		return problem(prob, ptr, "%s must not contain control characters", key);
	if (n < 1 || n > EVENT_MAX_FIELD)
		return problem(prob, ptr, "%s must be 1 to %d characters long (got %ld)", key,
			       EVENT_MAX_FIELD, n);
	*out = json_string_value(v);
	return 0;
}

int
kv_compare(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

void
kv_sort(struct kv *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct kv x = a[i];
		size_t j = i;

		for (; j > 0 && kv_compare(&a[j - 1], &x) > 0; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

static int
resource_field(json_t *res, struct event *ev, struct event_problem *prob)
{
	const char *key, *why;
	json_t *val;
	size_t i = 0;

	if (!json_is_object(res))
		return problem(prob, "/resource", "resource must be an object of strings");
	if (json_object_size(res) > EVENT_MAX_RESOURCE_KEYS)
		return problem(prob, "/resource", "resource has more than %d fields",
			       EVENT_MAX_RESOURCE_KEYS);
	ev->resource = xcalloc(json_object_size(res) + 1, sizeof(*ev->resource));
	json_object_foreach(res, key, val) {
		char ptr[160] = "/resource";

		pointer_push(ptr, sizeof(ptr), key);
		if (!event_resource_key_valid(key))
			return problem(prob, ptr,
				       "resource field names are 1-64 of A-Z a-z 0-9 _ -");
		if (!json_is_string(val))
			return problem(prob, ptr, "resource.%s must be a string", key);
		if (printable_length(json_string_value(val), json_string_length(val)) < 0)
			return problem(prob, ptr, "resource.%s must not contain control characters",
				       key);
		if (json_string_length(val) > EVENT_MAX_RESOURCE_VALUE)
			return problem(prob, ptr, "resource.%s is longer than %d bytes", key,
				       EVENT_MAX_RESOURCE_VALUE);
		if (!strcmp(key, "created")) {
			if (time_parse_rfc3339(json_string_value(val), json_string_length(val),
					       &ev->resource_created, &why) < 0)
				return problem(prob, ptr, "resource.created: %s", why);
			ev->has_created = true;
		}
		ev->resource[i].key = key;
		ev->resource[i].val = json_string_value(val);
		i++;
	}
	ev->n_resource = i;
	kv_sort(ev->resource, i);
	return 0;
}

static int event_fill(json_t *obj, struct event *ev, struct event_problem *prob);

int
event_from_json(json_t *obj, struct event *ev, struct event_problem *prob)
{
	memset(ev, 0, sizeof(*ev));
	if (event_fill(obj, ev, prob) == 0)
		return 0;
	free(ev->resource);
	memset(ev, 0, sizeof(*ev)); /* a rejected event is left empty */
	return -1;
}

static int
event_fill(json_t *obj, struct event *ev, struct event_problem *prob)
{
	const char *key, *why;
	json_t *val, *v;
	char ptr[160] = "";

	if (!json_is_object(obj))
		return problem(prob, "", "an event must be a JSON object");
	json_object_foreach(obj, key, val) {
		bool known = false;

		for (size_t i = 0; i < AUPD_ARRAY_LEN(event_keys); i++)
			if (!strcmp(key, event_keys[i]))
				known = true;
		if (!known) {
			const char *s = suggest_word(key, event_keys, AUPD_ARRAY_LEN(event_keys));

			pointer_push(ptr, sizeof(ptr), key);
			if (s)
				return problem(prob, ptr,
					       "unknown field '%s' (did you mean '%s'? other data "
					       "goes under attributes)",
					       key, s);
			return problem(prob, ptr,
				       "unknown field '%s' (other data goes under attributes)", key);
		}
	}
	if (json_depth(obj, EVENT_MAX_DEPTH + 1) > EVENT_MAX_DEPTH)
		return problem(prob, "", "the event is nested deeper than %d levels",
			       EVENT_MAX_DEPTH);
	if (find_nul(obj, ptr, sizeof(ptr), 0))
		return problem(prob, ptr, "strings must not contain NUL characters");

	v = json_object_get(obj, "id");
	if (!v)
		return problem(prob, "/id", "id is required");
	if (!json_is_string(v))
		return problem(prob, "/id", "id must be a string");
	if (!event_valid_id(json_string_value(v), json_string_length(v)))
		return problem(prob, "/id", "id must be 1 to 128 of A-Z a-z 0-9 . _ : -");
	ev->id = json_string_value(v);

	v = json_object_get(obj, "time");
	if (!v)
		return problem(prob, "/time", "time is required");
	if (!json_is_string(v))
		return problem(prob, "/time", "time must be an RFC 3339 string");
	if (time_parse_rfc3339(json_string_value(v), json_string_length(v), &ev->time, &why) < 0)
		return problem(prob, "/time", "time: %s", why);
	ev->time_str = json_string_value(v);

	if (string_field(obj, "tenant", true, &ev->tenant, prob) < 0 ||
	    string_field(obj, "actor", true, &ev->actor, prob) < 0)
		goto err_clear;

	v = json_object_get(obj, "action");
	if (!v)
		return problem(prob, "/action", "action is required");
	if (!json_is_string(v) || !event_valid_action(json_string_value(v), json_string_length(v)))
		return problem(prob, "/action",
			       "action must be lowercase dotted words such as face.search or "
			       "data.delete (at most 128 characters)");
	ev->action = json_string_value(v);

	if (string_field(obj, "purpose", false, &ev->purpose, prob) < 0)
		goto err_clear;

	if ((v = json_object_get(obj, "resource")) && resource_field(v, ev, prob) < 0)
		goto err_clear;

	ev->quantity = 1;
	if ((v = json_object_get(obj, "quantity"))) {
		double q;

		if (!json_is_number(v)) {
			problem(prob, "/quantity", "quantity must be a number");
			goto err_clear;
		}
		q = json_number_value(v);
		if (!isfinite(q) || q < 0) {
			problem(prob, "/quantity", "quantity must be a finite number >= 0");
			goto err_clear;
		}
		ev->quantity = q;
		ev->has_quantity = true;
	}
	if ((v = json_object_get(obj, "attributes"))) {
		if (!json_is_object(v)) {
			problem(prob, "/attributes", "attributes must be an object");
			goto err_clear;
		}
		ev->attributes = v;
	}
	ev->doc = json_incref(obj);
	return 0;

err_clear:
	return -1;
}

void
event_clear(struct event *ev)
{
	if (ev->own)
		free(ev->own); /* resource lives in it */
	else
		free(ev->resource);
	if (ev->attr_parsed)
		json_decref(ev->attributes);
	json_decref(ev->doc);
	memset(ev, 0, sizeof(*ev));
}

const char *
kv_lookup(const struct kv *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	if (hi <= 8) {
		/*
		 * The usual few fields: testing the first two bytes spares most
		 * comparisons (created, collected_for, classification).
		 */
		for (size_t i = 0; i < hi; i++) {
			const char *k = v[i].key;

			if (k[0] == key[0] && (!k[0] || k[1] == key[1]) && !strcmp(k, key))
				return v[i].val;
			if ((unsigned char)k[0] > (unsigned char)key[0])
				break; /* sorted: it would have come before */
		}
		return NULL;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(key, v[mid].key);

		if (c == 0)
			return v[mid].val;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
event_resource(const struct event *ev, const char *key)
{
	return kv_lookup(ev->resource, ev->n_resource, key);
}

/* ---- request bodies ---- */

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static void
push_item(struct body_item **items, size_t *n, size_t *cap, json_t *json)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*items = xrealloc(*items, *cap * sizeof(**items));
	}
	memset(&(*items)[*n], 0, sizeof(**items));
	(*items)[*n].json = json;
	(*n)++;
}

/* An item the scanner reads and validates at once (true), with its bytes kept. */
static bool
scan_item(struct body_item **items, size_t *n, size_t *cap, const char *s, size_t len)
{
	struct event ev;

	if (event_scan(s, len, &ev) < 0)
		return false;
	push_item(items, n, cap, NULL);
	(*items)[*n - 1].ev = ev;
	(*items)[*n - 1].has_event = true;
	(*items)[*n - 1].raw = s;
	(*items)[*n - 1].raw_len = len;
	return true;
}

int
body_split(const char *body, size_t len, enum body_format fmt, size_t max_items,
	   struct body_item **items, size_t *n, bool *single, bool *too_many,
	   struct aupd_error *err)
{
	size_t cap = 0;
	json_error_t jerr;
	bool real_fallback = false;

	*items = NULL;
	*n = 0;
	*single = false;
	*too_many = false;
	if (fmt == BODY_JSON) {
		const char *s = body, *e = body + len;
		json_t *doc;

		while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
			e--;
		if (s < e && *s == '{' && scan_item(items, n, &cap, s, (size_t)(e - s))) {
			*single = true;
			return 0;
		}
		doc = json_loadb(body, len, LOAD_FLAGS, &jerr);

		if (!doc && json_error_code(&jerr) == json_error_numeric_overflow) {
			/* an integer beyond 64 bits: kept as a double rather than spoil the batch */
			doc = json_loadb(body, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, &jerr);
			real_fallback = true;
		}
		if (!doc) {
			aupd_error_set(err, "the body is not valid JSON: %s (line %d, column %d)",
				       jerr.text, jerr.line, jerr.column);
			return -1;
		}
		if (json_is_array(doc)) {
			if (json_array_size(doc) > max_items) {
				*too_many = true;
				aupd_error_set(err,
					       "the batch holds %zu events; limits.max_batch is %zu",
					       json_array_size(doc), max_items);
				json_decref(doc);
				return -1;
			}
			if (json_array_size(doc) == 0) {
				aupd_error_set(err, "the body is an empty array");
				json_decref(doc);
				return -1;
			}
			for (size_t i = 0; i < json_array_size(doc); i++)
				push_item(items, n, &cap, json_incref(json_array_get(doc, i)));
			json_decref(doc);
			return 0;
		}
		if (!json_is_object(doc)) {
			aupd_error_set(err, "the body must be an event object or an array of them");
			json_decref(doc);
			return -1;
		}
		*single = true;
		push_item(items, n, &cap, doc);
		if (!real_fallback) {
			(*items)[0].raw = s;
			(*items)[0].raw_len = (size_t)(e - s);
		}
		return 0;
	}

	/* NDJSON: one JSON value per line */
	const char *p = body, *end = body + len;
	size_t lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *s = p, *e = le;

		lineno++;
		while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		p = nl ? nl + 1 : end;
		if (s == e)
			continue;
		if (*n >= max_items) {
			*too_many = true;
			aupd_error_set(err, "the batch holds more than %zu events (limits.max_batch)",
				       max_items);
			body_items_free(*items, *n);
			*items = NULL;
			*n = 0;
			return -1;
		}
		if (scan_item(items, n, &cap, s, (size_t)(e - s)))
			continue;
		json_t *doc = json_loadb(s, (size_t)(e - s), LOAD_FLAGS, &jerr);

		if (!doc && json_error_code(&jerr) == json_error_numeric_overflow) {
			doc = json_loadb(s, (size_t)(e - s), LOAD_FLAGS | JSON_DECODE_INT_AS_REAL,
					 &jerr);
			real_fallback = true;
		} else {
			real_fallback = false;
		}
		push_item(items, n, &cap, doc);
		if (doc && !real_fallback) {
			(*items)[*n - 1].raw = s;
			(*items)[*n - 1].raw_len = (size_t)(e - s);
		}
		if (!doc) {
			struct event_problem *pr = &(*items)[*n - 1].prob;

			problem(pr, "", "line %zu is not valid JSON: %s (column %d)", lineno,
				jerr.text, jerr.column);
		}
	}
	if (*n == 0) {
		aupd_error_set(err, "the body holds no events");
		return -1;
	}
	return 0;
}

void
body_items_free(struct body_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		event_clear(&items[i].ev);
		json_decref(items[i].json);
	}
	free(items);
}

int
body_item_event(struct body_item *it, struct event *ev, struct event_problem *prob)
{
	if (it->has_event) {
		*ev = it->ev;
		memset(&it->ev, 0, sizeof(it->ev));
		it->has_event = false;
		return 0;
	}
	if (!it->json) {
		memset(ev, 0, sizeof(*ev));
		*prob = it->prob;
		return -1;
	}
	return event_from_json(it->json, ev, prob);
}
