/* event.h - usage events (contract section 3): parsing, validation, request bodies */
#ifndef AUPD_EVENT_H
#define AUPD_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aupd/util.h"

#define EVENT_MAX_DEPTH 32
#define EVENT_MAX_FIELD 128       /* characters in id, tenant, actor, action, purpose */
#define EVENT_MAX_RESOURCE_VALUE 2048
#define EVENT_MAX_RESOURCE_KEYS 64

struct kv {
	const char *key;
	const char *val;
};

/*
 * A top-level member of the attributes object as the scanner read it: its
 * key, and its value's text when the value is plain (a string without
 * escapes, given without its quotes; a number; true, false or null).
 */
enum attr_kind { ATTR_STRING, ATTR_NUMBER, ATTR_TRUE, ATTR_FALSE, ATTR_NULL, ATTR_OTHER };
struct attr_member {
	const char *key;
	const char *text; /* NULL for ATTR_OTHER: parse the attributes (event_attributes()) */
	enum attr_kind kind;
};
#define EVENT_SCAN_ATTRS 16 /* members the scanner keeps; more: attrs_all is false */

/*
 * A validated event.  Read by event_from_json(), every string is borrowed
 * from `doc` (the JSON object it was read from), which the event holds one
 * reference to.  Read from text by the scanner of event_parse(), `doc` is
 * NULL and the strings, `resource` and the attributes' text live in `own`.
 * event_clear() releases either.  `resource` is sorted by key.  Read the
 * attributes with event_attributes().
 */
struct event {
	const char *id;
	const char *tenant;
	const char *actor;
	const char *action;
	const char *purpose; /* NULL when absent */
	const char *time_str;
	aupd_time time;
	double quantity; /* 1 when absent */
	bool has_quantity;
	struct kv *resource;
	size_t n_resource;
	aupd_time resource_created; /* valid when has_created */
	bool has_created;
	json_t *attributes; /* borrowed from doc, or parsed from attr_text on first use */
	json_t *doc;
	char *own;             /* the scanner's copy of the strings (resource points into it) */
	const char *attr_text; /* the attributes object as JSON text (in own), or NULL */
	size_t attr_len;
	bool attr_parsed; /* attributes was parsed from attr_text: released with the event */
	struct attr_member *attrs; /* the scanner's view of the attributes' members (in own) */
	size_t n_attrs;
	bool attrs_all; /* attrs holds every member: a key not in it is absent */
};

/* Why an item was rejected: RFC 6901 pointer into the item, and a sentence. */
struct event_problem {
	int status; /* 400, or 413 for an item too large */
	char pointer[160];
	char detail[400];
};

/*
 * Validates one event object per the contract's field table (unknown keys,
 * types, lengths, id characters, RFC 3339 times with offsets, quantity,
 * nesting depth).  On success fills `ev` (taking a new reference to obj) and
 * returns 0; otherwise fills `prob` and returns -1, leaving `ev` empty.
 */
int event_from_json(json_t *obj, struct event *ev, struct event_problem *prob);
void event_clear(struct event *ev);

/*
 * Parses and validates one event from its JSON text: the same acceptance,
 * values and problems as json_loadb() (duplicate keys rejected, NUL allowed
 * by the parser and then refused by the validator) followed by
 * event_from_json(), but events of the usual shape (ASCII, no escapes in
 * the contract's fields, plain numbers) are read by a scanner straight into
 * one allocation, without building a JSON tree; anything else takes the
 * jansson path.  Returns EVENT_PARSE_OK, EVENT_PARSE_REAL when integers
 * beyond 64 bits were read as reals (the text then no longer says exactly
 * what was judged: store a re-encoding of ev->doc), EVENT_PARSE_INVALID
 * with `prob` filled, or EVENT_PARSE_NOT_JSON with `jerr` filled.
 */
enum {
	EVENT_PARSE_OK = 0,
	EVENT_PARSE_REAL = 1,
	EVENT_PARSE_INVALID = -1,
	EVENT_PARSE_NOT_JSON = -2,
};
int event_parse(const char *text, size_t len, struct event *ev, struct event_problem *prob,
		json_error_t *jerr);
/* The scanner alone: 0 and `ev` filled, or -1 (and `ev` empty) when the jansson path must decide. */
int event_scan(const char *text, size_t len, struct event *ev);

/*
 * The text of the value of `key` in the JSON object `text`, found by the
 * scanner without parsing the rest (0); -1 when the key is absent or the
 * scanner cannot tell (non-ASCII, escapes in keys...): use jansson then.
 * Members before `key` are checked; members after it are not.
 */
int json_member_span(const char *text, size_t len, const char *key, const char **val,
		     size_t *val_len);

/* The event's attributes object, or NULL when it has none (parsed on first use). */
const json_t *event_attributes(const struct event *ev);
/* Does the scanner's view of the attributes (attrs) agree with the parsed object? */
bool event_attrs_consistent(const struct event *ev);
/* Do two events carry the same fields and values (however each was read)? */
bool event_equal(const struct event *a, const struct event *b);

/* Is this a valid resource field name (1-64 of A-Z a-z 0-9 _ -)? */
bool event_resource_key_valid(const char *s);
/* qsort/bsearch order of struct kv by key. */
int kv_compare(const void *a, const void *b);
/*
 * Sorts an event's resource fields into kv_compare order (distinct keys,
 * at most EVENT_MAX_RESOURCE_KEYS, usually a few): an insertion sort, spared
 * qsort()'s calls through a pointer (2% of scanning an event).
 */
void kv_sort(struct kv *a, size_t n);

/* A resource field ("id", "dataset", ...) of the event itself, or NULL. */
const char *event_resource(const struct event *ev, const char *key);
/* The value of `key` in v[0..n), sorted by key (strcmp), or NULL. */
const char *kv_lookup(const struct kv *v, size_t n, const char *key);

/*
 * One item of a request body: an event the scanner already read and
 * validated (has_event), else a parsed JSON value for event_from_json(), or
 * why it could not be parsed.  body_item_event() gives the event or the problem.
 */
struct body_item {
	struct event ev;
	bool has_event;
	json_t *json; /* NULL when the item did not parse, or has_event */
	struct event_problem prob;
	/*
	 * The item's own bytes in the body (a single object, or an NDJSON line),
	 * when they can be kept as they came; NULL for array elements.
	 */
	const char *raw;
	size_t raw_len;
};

enum body_format {
	BODY_JSON,   /* one object, or an array of objects */
	BODY_NDJSON, /* one object per line; blank lines are skipped */
};

/*
 * Splits a request body into items.  For BODY_JSON, a body that does not
 * parse is an error (-1, `err` set) and nothing is returned; a single object
 * gives one item and sets *single.  For BODY_NDJSON, each line is an item and
 * a line that does not parse becomes an item with a problem.  More than
 * `max_items` items is an error with *too_many set.  The caller frees items
 * with body_items_free().
 */
int body_split(const char *body, size_t len, enum body_format fmt, size_t max_items,
	       struct body_item **items, size_t *n, bool *single, bool *too_many,
	       struct aupd_error *err);
void body_items_free(struct body_item *items, size_t n);
/*
 * The item's event, validated, moved to `ev` (0); or -1 with `prob` filled.
 * Call it once per item.
 */
int body_item_event(struct body_item *it, struct event *ev, struct event_problem *prob);

/* Maximum nesting depth of a JSON value (a scalar is 0, {} is 1). */
int json_depth(const json_t *v, int limit);

#endif
