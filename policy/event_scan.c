/*
 * event_scan.c - events read straight from their JSON text
 *
 * Telemetry sends events of one shape: ASCII strings without escapes in the
 * contract's fields, a few resource fields, a plain quantity, a small
 * attributes object.  The scanner reads that shape without building a JSON
 * tree: one pass over the text, one allocation for the strings.  It takes an
 * event only when json_loadb() followed by event_from_json() would accept it
 * with the same values; for anything else (escapes or non-ASCII bytes in the
 * fields, numbers that could overflow, unknown or duplicate keys, any error)
 * it steps aside and event_parse() takes the jansson path, which also words
 * the problem.  The attributes object is checked as jansson checks it
 * (grammar, duplicate keys, NUL, nesting) and kept as text, parsed only when
 * a rule reads it.  tests/fuzz/fuzz_event.c holds the two paths to the same
 * answers.
 */
#include "aupd/event.h"
#include "policy_int.h"

#include <stdlib.h>
#include <string.h>

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)
#define MAX_KEYS 64	   /* keys per object the scanner checks for duplicates */
#define MAX_NUMBER_LEN 40 /* longer numbers go to jansson (no overflow question) */

struct span {
	const char *p;
	size_t n;
};

struct scan {
	const char *p, *end;
};

enum field { F_ID, F_TIME, F_TENANT, F_ACTOR, F_ACTION, F_PURPOSE, F_N };

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
eat(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* A string of printable ASCII without escapes; s->p at its opening quote. */
static int
plain_string(struct scan *s, struct span *out)
{
	const char *p = s->p + 1;

	while (p < s->end) {
		unsigned char c = (unsigned char)*p;

		if (c == '"') {
			out->p = s->p + 1;
			out->n = (size_t)(p - out->p);
			s->p = p + 1;
			return 0;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return -1;
		p++;
	}
	return -1;
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Any ASCII JSON string; escapes allowed except NUL and surrogates. */
static int
skip_string(struct scan *s)
{
	const char *p = s->p + 1;

	while (p < s->end) {
		unsigned char c = (unsigned char)*p;

		if (c == '"') {
			s->p = p + 1;
			return 0;
		}
		if (c < 0x20 || c >= 0x80)
			return -1;
		if (c == '\\') {
			unsigned u;

			if (++p >= s->end)
				return -1;
			switch (*p) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				break;
			case 'u':
				if (s->end - p < 5 || hex4(p + 1, &u) < 0 || u == 0 ||
				    (u >= 0xd800 && u <= 0xdfff))
					return -1;
				p += 4;
				break;
			default:
				return -1;
			}
		}
		p++;
	}
	return -1;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A JSON number that jansson reads without overflow: at most 18 integer
 * digits, no exponent, at most MAX_NUMBER_LEN characters.  Sets *neg.
 */
static int
number(struct scan *s, struct span *out, bool *neg)
{
	const char *p = s->p, *digits;

	*neg = p < s->end && *p == '-';
	if (*neg)
		p++;
	digits = p;
	if (p < s->end && *p == '0') {
		p++;
	} else {
		while (p < s->end && is_digit(*p))
			p++;
	}
	if (p == digits || p - digits > 18)
		return -1;
	if (p < s->end && *p == '.') {
		const char *f = ++p;

		while (p < s->end && is_digit(*p))
			p++;
		if (p == f)
			return -1;
	}
	if (p < s->end && (*p == 'e' || *p == 'E' || is_digit(*p)))
		return -1; /* exponents (and "01") are for jansson to judge */
	if (p - s->p > MAX_NUMBER_LEN)
		return -1;
	out->p = s->p;
	out->n = (size_t)(p - s->p);
	s->p = p;
	return 0;
}

static int
literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* Is keys[n] one of keys[0..n-1]?  (Duplicate keys are jansson's to refuse.) */
static bool
seen_before(const struct span *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i].n == keys[n].n && !memcmp(keys[i].p, keys[n].p, keys[n].n))
			return true;
	return false;
}

static int skip_value(struct scan *s, int level);

/* An object at nesting `level` (the event is 1), its keys plain and distinct. */
static int
skip_object(struct scan *s, int level)
{
	struct span keys[MAX_KEYS];
	size_t n = 0;

	if (level > EVENT_MAX_DEPTH)
		return -1;
	s->p++; /* { */
	if (eat(s, '}'))
		return 0;
	do {
		skip_ws(s);
		if (s->p >= s->end || *s->p != '"' || n == MAX_KEYS || plain_string(s, &keys[n]) < 0)
			return -1;
		if (seen_before(keys, n))
			return -1;
		n++;
		if (!eat(s, ':') || skip_value(s, level + 1) < 0)
			return -1;
	} while (eat(s, ','));
	return eat(s, '}') ? 0 : -1;
}

static int
skip_array(struct scan *s, int level)
{
	if (level > EVENT_MAX_DEPTH)
		return -1;
	s->p++; /* [ */
	if (eat(s, ']'))
		return 0;
	do {
		if (skip_value(s, level + 1) < 0)
			return -1;
	} while (eat(s, ','));
	return eat(s, ']') ? 0 : -1;
}

/* Any JSON value, checked and skipped; `level` is the nesting a container here would have. */
static int
skip_value(struct scan *s, int level)
{
	struct span num;
	bool neg;

	skip_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		return skip_object(s, level);
	case '[':
		return skip_array(s, level);
	case '"':
		return skip_string(s);
	case 't':
		return literal(s, "true", 4);
	case 'f':
		return literal(s, "false", 5);
	case 'n':
		return literal(s, "null", 4);
	default:
		return number(s, &num, &neg);
	}
}

/* A string value of the event; s->p before it. */
static int
field_string(struct scan *s, struct span *out)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return -1;
	return plain_string(s, out);
}

static bool
resource_key_ok(const struct span *k)
{
	if (k->n < 1 || k->n > 64)
		return false;
	for (size_t i = 0; i < k->n; i++) {
		char c = k->p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

struct scanned {
	struct span f[F_N];
	struct span res_key[EVENT_MAX_RESOURCE_KEYS], res_val[EVENT_MAX_RESOURCE_KEYS];
	size_t n_res;
	bool has_res;
	struct span attrs;
	struct span attr_key[EVENT_SCAN_ATTRS], attr_val[EVENT_SCAN_ATTRS];
	enum attr_kind attr_kind[EVENT_SCAN_ATTRS];
	size_t n_attrs, n_attr_members;
};

/*
 * The attributes object: checked like any value nested at level 2, and its
 * first EVENT_SCAN_ATTRS members noted with their plain values.
 */
static int
scan_attributes(struct scan *s, struct scanned *sc)
{
	struct span keys[MAX_KEYS];
	size_t n = 0;

	skip_ws(s);
	if (s->p >= s->end || *s->p != '{')
		return -1;
	sc->attrs.p = s->p++;
	if (!eat(s, '}')) {
		do {
			const char *v;
			enum attr_kind kind = ATTR_OTHER;
			struct span val = {NULL, 0};

			skip_ws(s);
			if (s->p >= s->end || *s->p != '"' || n == MAX_KEYS || plain_string(s, &keys[n]) < 0)
				return -1;
			if (seen_before(keys, n))
				return -1;
			if (!eat(s, ':'))
				return -1;
			skip_ws(s);
			v = s->p;
			if (v < s->end && *v == '"' && plain_string(s, &val) == 0) {
				kind = ATTR_STRING;
			} else if (skip_value(s, 3) < 0) {
				return -1;
			} else if (*v == 't' || *v == 'f' || *v == 'n') {
				kind = *v == 't' ? ATTR_TRUE : *v == 'f' ? ATTR_FALSE : ATTR_NULL;
			} else if (*v == '-' || is_digit(*v)) {
				kind = ATTR_NUMBER;
				val = (struct span){v, (size_t)(s->p - v)};
			}
			if (n < EVENT_SCAN_ATTRS) {
				sc->attr_key[n] = keys[n];
				sc->attr_val[n] = val;
				sc->attr_kind[n] = kind;
			}
			n++;
		} while (eat(s, ','));
		if (!eat(s, '}'))
			return -1;
	}
	sc->attrs.n = (size_t)(s->p - sc->attrs.p);
	sc->n_attr_members = n;
	sc->n_attrs = n < EVENT_SCAN_ATTRS ? n : EVENT_SCAN_ATTRS;
	return 0;
}

static int
scan_resource(struct scan *s, struct scanned *sc, struct event *ev)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '{')
		return -1;
	s->p++;
	sc->has_res = true;
	if (eat(s, '}'))
		return 0;
	do {
		struct span *k = &sc->res_key[sc->n_res], *v = &sc->res_val[sc->n_res];

		skip_ws(s);
		if (sc->n_res == EVENT_MAX_RESOURCE_KEYS || s->p >= s->end || *s->p != '"' ||
		    plain_string(s, k) < 0 || !resource_key_ok(k) || !eat(s, ':') ||
		    field_string(s, v) < 0 || v->n > EVENT_MAX_RESOURCE_VALUE)
			return -1;
		if (seen_before(sc->res_key, sc->n_res))
			return -1;
		if (k->n == 7 && !memcmp(k->p, "created", 7)) {
			const char *why;

			if (time_parse_rfc3339(v->p, v->n, &ev->resource_created, &why) < 0)
				return -1;
			ev->has_created = true;
		}
		sc->n_res++;
	} while (eat(s, ','));
	return eat(s, '}') ? 0 : -1;
}

static int
scan_quantity(struct scan *s, struct event *ev)
{
	char buf[MAX_NUMBER_LEN + 1];
	struct span num;
	bool neg;

	skip_ws(s);
	if (number(s, &num, &neg) < 0 || neg)
		return -1; /* negative quantities (and -0) are for the validator to refuse */
	memcpy(buf, num.p, num.n);
	buf[num.n] = '\0';
	ev->quantity = strtod(buf, NULL);
	ev->has_quantity = true;
	return 0;
}

/* Which of the event's keys `k` is (0..8), or -1. */
static int
key_index(const struct span *k)
{
#define KEY(s) {s, sizeof(s) - 1}
	/* lengths kept beside the names: a strlen() each was 4% of scanning */
	static const struct {
		const char *name;
		size_t len;
	} keys[] = {KEY("id"),	    KEY("time"),     KEY("tenant"),   KEY("actor"),	 KEY("action"),
		    KEY("purpose"), KEY("resource"), KEY("quantity"), KEY("attributes")};
#undef KEY

	for (int i = 0; i < (int)AUPD_ARRAY_LEN(keys); i++)
		if (keys[i].len == k->n && !memcmp(keys[i].name, k->p, k->n))
			return i;
	return -1;
}

static int
scan_members(struct scan *s, struct scanned *sc, struct event *ev)
{
	unsigned seen = 0;

	if (!eat(s, '{') || eat(s, '}'))
		return -1;
	do {
		struct span k;
		int i;

		skip_ws(s);
		if (s->p >= s->end || *s->p != '"' || plain_string(s, &k) < 0 ||
		    (i = key_index(&k)) < 0 || (seen & (1u << i)) || !eat(s, ':'))
			return -1;
		seen |= 1u << i;
		if (i < F_N) {
			if (field_string(s, &sc->f[i]) < 0)
				return -1;
		} else if (i == F_N) {
			if (scan_resource(s, sc, ev) < 0)
				return -1;
		} else if (i == F_N + 1) {
			if (scan_quantity(s, ev) < 0)
				return -1;
		} else if (scan_attributes(s, sc) < 0) {
			return -1;
		}
	} while (eat(s, ','));
	if (!eat(s, '}'))
		return -1;
	skip_ws(s);
	return s->p == s->end ? 0 : -1;
}

/* The contract's checks of event_from_json() on what the scanner read. */
static bool
fields_valid(const struct scanned *sc, struct event *ev)
{
	const struct span *f = sc->f;
	const char *why;

	if (!f[F_ID].p || !event_valid_id(f[F_ID].p, f[F_ID].n))
		return false;
	if (!f[F_TIME].p || time_parse_rfc3339(f[F_TIME].p, f[F_TIME].n, &ev->time, &why) < 0)
		return false;
	for (int i = F_TENANT; i <= F_PURPOSE; i++) {
		if (i == F_ACTION)
			continue;
		if (!f[i].p) {
			if (i != F_PURPOSE)
				return false;
		} else if (f[i].n < 1 || f[i].n > EVENT_MAX_FIELD) {
			return false; /* ASCII: one byte per character */
		}
	}
	return f[F_ACTION].p && event_valid_action(f[F_ACTION].p, f[F_ACTION].n);
}

static const char *
copy(char **at, const struct span *sp)
{
	char *s = *at;

	memcpy(s, sp->p, sp->n);
	s[sp->n] = '\0';
	*at += sp->n + 1;
	return s;
}

int
event_scan(const char *text, size_t len, struct event *ev)
{
	struct scan s = {text, text + len};
	struct scanned sc;
	const char **dst[F_N];
	size_t size;
	char *at;

	memset(ev, 0, sizeof(*ev));
	memset(sc.f, 0, sizeof(sc.f));
	sc.n_res = 0;
	sc.has_res = false;
	sc.attrs.p = NULL;
	sc.attrs.n = 0;
	sc.n_attrs = sc.n_attr_members = 0;
	ev->quantity = 1;
	if (scan_members(&s, &sc, ev) < 0 || !fields_valid(&sc, ev)) {
		memset(ev, 0, sizeof(*ev));
		return -1;
	}

	/* one block: the resource array, then every string */
	size = (sc.has_res ? sc.n_res + 1 : 0) * sizeof(struct kv);
	for (int i = 0; i < F_N; i++)
		size += sc.f[i].p ? sc.f[i].n + 1 : 0;
	for (size_t i = 0; i < sc.n_res; i++)
		size += sc.res_key[i].n + sc.res_val[i].n + 2;
	size += sc.attrs.p ? sc.attrs.n + 1 : 0;
	size += sc.n_attrs * sizeof(struct attr_member);
	for (size_t i = 0; i < sc.n_attrs; i++)
		size += sc.attr_key[i].n + 1 + (sc.attr_val[i].p ? sc.attr_val[i].n + 1 : 0);
	ev->own = xmalloc(size);
	at = ev->own;
	if (sc.has_res) {
		ev->resource = (struct kv *)(void *)at;
		memset(ev->resource, 0, (sc.n_res + 1) * sizeof(struct kv));
		at += (sc.n_res + 1) * sizeof(struct kv);
	}
	if (sc.n_attrs) {
		ev->attrs = (struct attr_member *)(void *)at;
		at += sc.n_attrs * sizeof(struct attr_member);
	}
	dst[F_ID] = &ev->id;
	dst[F_TIME] = &ev->time_str;
	dst[F_TENANT] = &ev->tenant;
	dst[F_ACTOR] = &ev->actor;
	dst[F_ACTION] = &ev->action;
	dst[F_PURPOSE] = &ev->purpose;
	for (int i = 0; i < F_N; i++)
		if (sc.f[i].p)
			*dst[i] = copy(&at, &sc.f[i]);
	for (size_t i = 0; i < sc.n_res; i++) {
		ev->resource[i].key = copy(&at, &sc.res_key[i]);
		ev->resource[i].val = copy(&at, &sc.res_val[i]);
	}
	ev->n_resource = sc.n_res;
	kv_sort(ev->resource, sc.n_res);
	if (sc.attrs.p) {
		ev->attr_text = copy(&at, &sc.attrs);
		ev->attr_len = sc.attrs.n;
	}
	for (size_t i = 0; i < sc.n_attrs; i++) {
		ev->attrs[i].key = copy(&at, &sc.attr_key[i]);
		ev->attrs[i].text = sc.attr_val[i].p ? copy(&at, &sc.attr_val[i]) : NULL;
		ev->attrs[i].kind = sc.attr_kind[i];
	}
	ev->n_attrs = sc.n_attrs;
	ev->attrs_all = sc.n_attr_members <= EVENT_SCAN_ATTRS;
	return 0;
}

int
event_parse(const char *text, size_t len, struct event *ev, struct event_problem *prob,
	    json_error_t *jerr)
{
	json_error_t local;
	json_t *doc;
	int rc = EVENT_PARSE_OK;

	if (!jerr)
		jerr = &local;
	if (event_scan(text, len, ev) == 0)
		return EVENT_PARSE_OK;
	doc = json_loadb(text, len, LOAD_FLAGS, jerr);
	if (!doc && json_error_code(jerr) == json_error_numeric_overflow) {
		/* an integer beyond 64 bits: kept as a double rather than refuse the event */
		doc = json_loadb(text, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, jerr);
		rc = EVENT_PARSE_REAL;
	}
	if (!doc)
		return EVENT_PARSE_NOT_JSON;
	if (event_from_json(doc, ev, prob) < 0)
		rc = EVENT_PARSE_INVALID;
	json_decref(doc);
	return rc;
}

const json_t *
event_attributes(const struct event *ev)
{
	if (!ev->attributes && ev->attr_text) {
		/* a cache filled on first use: the event is read by one thread at a time */
		struct event *mut = (struct event *)ev;

		mut->attributes = json_loadb(ev->attr_text, ev->attr_len, LOAD_FLAGS, NULL);
		mut->attr_parsed = mut->attributes != NULL;
		if (!mut->attributes)
			mut->attr_text = NULL; /* cannot happen: the scanner checked it */
	}
	return ev->attributes;
}

int
json_member_span(const char *text, size_t len, const char *key, const char **val,
		 size_t *val_len)
{
	struct scan s = {text, text + len};
	size_t klen = strlen(key);

	if (!eat(&s, '{') || eat(&s, '}'))
		return -1;
	do {
		struct span k;
		const char *start;

		skip_ws(&s);
		if (s.p >= s.end || *s.p != '"' || plain_string(&s, &k) < 0 || !eat(&s, ':'))
			return -1;
		skip_ws(&s);
		start = s.p;
		if (skip_value(&s, 2) < 0)
			return -1;
		if (k.n == klen && !memcmp(k.p, key, klen)) {
			*val = start;
			*val_len = (size_t)(s.p - start);
			return 0;
		}
	} while (eat(&s, ','));
	return -1;
}

bool
event_attrs_consistent(const struct event *ev)
{
	const json_t *obj;

	if (!ev->attr_text)
		return ev->n_attrs == 0;
	obj = event_attributes(ev);
	if (!obj || (ev->attrs_all && json_object_size(obj) != ev->n_attrs))
		return false;
	for (size_t i = 0; i < ev->n_attrs; i++) {
		const struct attr_member *a = &ev->attrs[i];
		json_t *v = json_object_get(obj, a->key);
		bool ok;

		switch (a->kind) {
		case ATTR_STRING:
			ok = json_is_string(v) && !strcmp(json_string_value(v), a->text);
			break;
		case ATTR_NUMBER:
			ok = json_is_number(v) && json_number_value(v) == strtod(a->text, NULL);
			break;
		case ATTR_TRUE:
			ok = json_is_true(v);
			break;
		case ATTR_FALSE:
			ok = json_is_false(v);
			break;
		case ATTR_NULL:
			ok = json_is_null(v);
			break;
		default:
			ok = v != NULL && !a->text;
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

static bool
str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool
event_equal(const struct event *a, const struct event *b)
{
	const json_t *ja = event_attributes(a), *jb = event_attributes(b);

	if (!str_eq(a->id, b->id) || !str_eq(a->tenant, b->tenant) ||
	    !str_eq(a->actor, b->actor) || !str_eq(a->action, b->action) ||
	    !str_eq(a->purpose, b->purpose) || !str_eq(a->time_str, b->time_str) ||
	    a->time != b->time || a->quantity != b->quantity ||
	    a->has_quantity != b->has_quantity || a->n_resource != b->n_resource ||
	    a->has_created != b->has_created ||
	    (a->has_created && a->resource_created != b->resource_created))
		return false;
	for (size_t i = 0; i < a->n_resource; i++)
		if (!str_eq(a->resource[i].key, b->resource[i].key) ||
		    !str_eq(a->resource[i].val, b->resource[i].val))
			return false;
	return ja == jb || (ja && jb && json_equal(ja, jb));
}
