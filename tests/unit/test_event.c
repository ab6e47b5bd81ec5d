/* test_event.c - event validation (contract section 3) and request body splitting */
#include "aupd/event.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A valid event; tests change one field at a time. */
static json_t *
base(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "evt-000123", "time",
			 "2026-01-15T10:00:00Z", "tenant", "agency-a", "actor", "analyst-17",
			 "action", "face.search");
}

static json_t *
with(const char *key, json_t *val)
{
	json_t *e = base();

	if (val)
		json_object_set_new(e, key, val);
	else
		json_object_del(e, key);
	return e;
}

/* Validates `obj` (reference stolen) and expects success; the caller clears `ev`. */
static void
ok(json_t *obj, struct event *ev)
{
	struct event_problem prob = {0};
	char *text = json_dumps(obj, JSON_COMPACT);
	int rc = event_from_json(obj, ev, &prob);
	struct event parsed;

	ck_assert_msg(rc == 0, "rejected %s: %s (pointer '%s')", text, prob.detail, prob.pointer);
	/* read from its text (by the scanner when it can), the same event */
	ck_assert_msg(event_parse(text, strlen(text), &parsed, &prob, NULL) == EVENT_PARSE_OK,
		      "event_parse rejected %s: %s", text, prob.detail);
	ck_assert_msg(event_equal(ev, &parsed), "event_parse read %s differently", text);
	event_clear(&parsed);
	free(text);
	json_decref(obj);
}

static void
ok_clear(json_t *obj)
{
	struct event ev;

	ok(obj, &ev);
	event_clear(&ev);
}

/* Validates `obj` (reference stolen) and expects a 400 at `pointer` whose detail holds `part`. */
static void
bad(json_t *obj, const char *pointer, const char *part)
{
	struct event_problem prob = {0};
	struct event ev;
	char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	int rc = event_from_json(obj, &ev, &prob);
	struct event_problem prob2 = {0};

	ck_assert_msg(rc == -1, "accepted %s", text);
	ck_assert_msg(prob.status == 400, "%s: status %d", text, prob.status);
	ck_assert_msg(!strcmp(prob.pointer, pointer), "%s: pointer '%s', expected '%s'", text,
		      prob.pointer, pointer);
	ck_assert_msg(strstr(prob.detail, part) != NULL, "%s: detail '%s' lacks '%s'", text,
		      prob.detail, part);
	/* read from its text, the same problem (a bare scalar is not even a JSON text to jansson) */
	rc = event_parse(text, strlen(text), &ev, &prob2, NULL);
	if (json_is_object(obj) || json_is_array(obj)) {
		ck_assert_msg(rc == EVENT_PARSE_INVALID, "event_parse gave %d for %s", rc, text);
		ck_assert_str_eq(prob2.pointer, prob.pointer);
		ck_assert_str_eq(prob2.detail, prob.detail);
	} else {
		ck_assert_msg(rc == EVENT_PARSE_NOT_JSON, "event_parse gave %d for %s", rc, text);
	}
	free(text);
	json_decref(obj);
}

/* A string of `n` copies of `unit`. */
static char *
repeat(const char *unit, size_t n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * n + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, unit, len);
	s[len * n] = '\0';
	return s;
}

static json_t *
with_str(const char *key, const char *val)
{
	return with(key, json_string(val));
}

START_TEST(valid_event_fields)
{
	struct event ev;
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:i, "
			      "s:{s:s, s:s}}",
			      "id", "evt-000123", "time", "2026-01-15T10:00:00Z", "tenant",
			      "agency-a", "actor", "analyst-17", "action", "face.search", "purpose",
			      "case-investigation", "resource", "id", "blob://photos/2025/123.jpg",
			      "dataset", "visa-photos", "classification", "biometric",
			      "collected_for", "visa-processing", "created", "2025-07-01T00:00:00Z",
			      "quantity", 250, "attributes", "region", "usgov-virginia", "case",
			      "C-2291");
	struct tm created = {.tm_year = 125, .tm_mon = 6, .tm_mday = 1};
	struct tm when = {.tm_year = 126, .tm_mon = 0, .tm_mday = 15, .tm_hour = 10};

	ok(e, &ev);
	ck_assert_str_eq(ev.id, "evt-000123");
	ck_assert_str_eq(ev.tenant, "agency-a");
	ck_assert_str_eq(ev.actor, "analyst-17");
	ck_assert_str_eq(ev.action, "face.search");
	ck_assert_str_eq(ev.purpose, "case-investigation");
	ck_assert_str_eq(ev.time_str, "2026-01-15T10:00:00Z");
	ck_assert_int_eq(ev.time, (aupd_time)timegm(&when) * AUPD_USEC);
	ck_assert(ev.has_quantity);
	ck_assert(ev.quantity == 250);
	ck_assert_uint_eq(ev.n_resource, 5);
	ck_assert_str_eq(event_resource(&ev, "dataset"), "visa-photos");
	ck_assert_str_eq(event_resource(&ev, "id"), "blob://photos/2025/123.jpg");
	ck_assert_str_eq(event_resource(&ev, "collected_for"), "visa-processing");
	ck_assert_ptr_null(event_resource(&ev, "owner"));
	ck_assert(ev.has_created);
	ck_assert_int_eq(ev.resource_created, (aupd_time)timegm(&created) * AUPD_USEC);
	ck_assert_ptr_nonnull(ev.attributes);
	ck_assert_str_eq(json_string_value(json_object_get(ev.attributes, "case")), "C-2291");
	ck_assert_ptr_nonnull(ev.doc);
	event_clear(&ev);
	ck_assert_ptr_null(ev.doc);
}
END_TEST

START_TEST(optional_fields_absent)
{
	struct event ev;

	ok(base(), &ev);
	ck_assert_ptr_null(ev.purpose);
	ck_assert(!ev.has_quantity);
	ck_assert(ev.quantity == 1); /* the documented default */
	ck_assert_uint_eq(ev.n_resource, 0);
	ck_assert(!ev.has_created);
	ck_assert_ptr_null(ev.attributes);
	ck_assert_ptr_null(event_resource(&ev, "id"));
	event_clear(&ev);
}
END_TEST

START_TEST(required_fields_missing)
{
	bad(with("id", NULL), "/id", "id is required");
	bad(with("time", NULL), "/time", "time is required");
	bad(with("tenant", NULL), "/tenant", "tenant is required");
	bad(with("actor", NULL), "/actor", "actor is required");
	bad(with("action", NULL), "/action", "action is required");
}
END_TEST

START_TEST(required_fields_mistyped)
{
	bad(with("id", json_integer(5)), "/id", "id must be a string");
	bad(with("id", json_null()), "/id", "id must be a string");
	bad(with("time", json_integer(1768471200)), "/time", "time must be an RFC 3339 string");
	bad(with("tenant", json_true()), "/tenant", "tenant must be a string");
	bad(with("actor", json_null()), "/actor", "actor must be a string");
	bad(with("actor", json_pack("{s:s}", "name", "x")), "/actor", "actor must be a string");
	bad(with("action", json_pack("[s]", "face.search")), "/action",
	    "action must be lowercase dotted words");
}
END_TEST

START_TEST(not_an_object)
{
	bad(json_pack("[{s:s}]", "id", "x"), "", "an event must be a JSON object");
	bad(json_string("evt"), "", "an event must be a JSON object");
}
END_TEST

START_TEST(id_characters_and_length)
{
	char *s;

	ok_clear(with_str("id", "A.b_c:d-9"));
	ok_clear(with_str("id", "x"));
	s = repeat("a", 128);
	ok_clear(with_str("id", s));
	free(s);
	s = repeat("a", 129);
	bad(with_str("id", s), "/id", "id must be 1 to 128 of A-Z a-z 0-9 . _ : -");
	free(s);
	bad(with_str("id", ""), "/id", "id must be 1 to 128 of");
	bad(with_str("id", "evt 1"), "/id", "id must be 1 to 128 of");
	bad(with_str("id", "evt/1"), "/id", "id must be 1 to 128 of");
	bad(with_str("id", "evt#1"), "/id", "id must be 1 to 128 of");
	bad(with_str("id", "\xc3\xa9vt"), "/id", "id must be 1 to 128 of");
}
END_TEST

START_TEST(time_forms)
{
	ok_clear(with_str("time", "2026-01-15T12:30:00+02:30"));
	ok_clear(with_str("time", "2026-01-15T10:00:00.123456789Z"));
	ok_clear(with_str("time", "2026-01-15t10:00:00z"));
	bad(with_str("time", "2026-01-15T10:00:00"), "/time", "offset");
	bad(with_str("time", "2026-01-15T10:00:00.5"), "/time", "no UTC offset");
	bad(with_str("time", "2026-01-15T10:00:00+25:00"), "/time", "out-of-range UTC offset");
	bad(with_str("time", "2026-01-15T10:00:00+0100"), "/time", "not an RFC 3339 date-time");
	bad(with_str("time", "2026-01-15T10:00:00.1234567890Z"), "/time",
	    "more than 9 fractional digits");
	bad(with_str("time", "2026-02-30T10:00:00Z"), "/time", "out-of-range field");
	bad(with_str("time", "yesterday"), "/time", "time: not an RFC 3339 date-time");
	bad(with_str("time", ""), "/time", "not an RFC 3339 date-time");
}
END_TEST

START_TEST(time_without_offset_says_so)
{
	/* the commonest offset-less time gets the same precise detail as one with a fraction */
	bad(with_str("time", "2026-01-15T10:00:00"), "/time", "time: time has no UTC offset");
	bad(with("resource", json_pack("{s:s}", "created", "2025-07-01T00:00:00")),
	    "/resource/created", "resource.created: time has no UTC offset");
}
END_TEST

START_TEST(rejected_event_is_left_empty)
{
	/* event.h: on failure `ev` is left empty, whichever field was wrong */
	static const char *const fields[] = {"id", "time", "tenant", "actor", "action"};

	for (size_t i = 0; i < AUPD_ARRAY_LEN(fields); i++) {
		struct event_problem prob = {0};
		struct event ev;
		json_t *e = with(fields[i], json_integer(1));

		memset(&ev, 0xa5, sizeof(ev));
		ck_assert_int_eq(event_from_json(e, &ev, &prob), -1);
		ck_assert_msg(ev.id == NULL && ev.tenant == NULL && ev.doc == NULL &&
				      ev.time_str == NULL && ev.resource == NULL,
			      "bad %s: the event is not left empty (id=%p time_str=%p)", fields[i],
			      (void *)ev.id, (void *)ev.time_str);
		json_decref(e);
	}
}
END_TEST

START_TEST(tenant_and_actor_lengths_in_code_points)
{
	static const char *const fields[] = {"tenant", "actor"};

	for (size_t i = 0; i < AUPD_ARRAY_LEN(fields); i++) {
		const char *f = fields[i];
		char ptr[16], detail[96];
		char *s;

		snprintf(ptr, sizeof(ptr), "/%s", f);
		/* 128 two-byte characters (256 bytes) are 128 characters */
		s = repeat("\xc3\xa9", 128);
		ok_clear(with_str(f, s));
		free(s);
		/* 128 three-byte and four-byte characters too */
		s = repeat("\xe2\x82\xac", 128);
		ok_clear(with_str(f, s));
		free(s);
		s = repeat("\xf0\x9f\x98\x80", 128);
		ok_clear(with_str(f, s));
		free(s);
		s = repeat("a", 128);
		ok_clear(with_str(f, s));
		free(s);
		snprintf(detail, sizeof(detail), "%s must be 1 to 128 characters long (got 129)", f);
		s = repeat("\xc3\xa9", 129);
		bad(with_str(f, s), ptr, detail);
		free(s);
		s = repeat("a", 129);
		bad(with_str(f, s), ptr, detail);
		free(s);
		snprintf(detail, sizeof(detail), "%s must be 1 to 128 characters long (got 0)", f);
		bad(with_str(f, ""), ptr, detail);
		snprintf(detail, sizeof(detail), "%s must not contain control characters", f);
		bad(with_str(f, "a\tb"), ptr, detail);
		bad(with_str(f, "a\nb"), ptr, detail);
		bad(with_str(f, "a\x7f"), ptr, detail);
		bad(with_str(f, "a\xc2\x85z"), ptr, detail); /* U+0085, a C1 control */
		bad(with_str(f, "\x1b[31m"), ptr, detail);
		/* printable non-ASCII and spaces are fine */
		ok_clear(with_str(f, "Agence Fran\xc3\xa7" "aise \xe6\x97\xa5\xe6\x9c\xac"));
	}
}
END_TEST

START_TEST(action_forms)
{
	static const char *const good[] = {"face.search", "data.read", "data.delete",
					   "storage.write", "face", "a.b.c", "face.search2",
					   "face_db.match-v2"};
	static const char *const wrong[] = {"Face.search", "face.Search", "face..search", ".x",
					    "x.", "face search", "", "1face.search", "face.2x",
					    "face/search", "face.search\n", "f\xc3\xa4" "ce.search"};
	char *s;

	for (size_t i = 0; i < AUPD_ARRAY_LEN(good); i++)
		ok_clear(with_str("action", good[i]));
	for (size_t i = 0; i < AUPD_ARRAY_LEN(wrong); i++)
		bad(with_str("action", wrong[i]), "/action",
		    "action must be lowercase dotted words such as face.search");
	s = repeat("a", 128);
	ok_clear(with_str("action", s));
	free(s);
	s = repeat("a", 129);
	bad(with_str("action", s), "/action", "at most 128 characters");
	free(s);
}
END_TEST

START_TEST(purpose_type)
{
	struct event ev;

	ok(with_str("purpose", "case-investigation"), &ev);
	ck_assert_str_eq(ev.purpose, "case-investigation");
	event_clear(&ev);
	bad(with("purpose", json_integer(5)), "/purpose", "purpose must be a string");
	bad(with("purpose", json_null()), "/purpose", "purpose must be a string");
	bad(with("purpose", json_pack("[s]", "a")), "/purpose", "purpose must be a string");
	bad(with_str("purpose", ""), "/purpose", "purpose must be 1 to 128 characters long");
	bad(with_str("purpose", "a\x01"), "/purpose", "purpose must not contain control characters");
}
END_TEST

START_TEST(resource_rules)
{
	struct event ev;
	char *s;

	bad(with_str("resource", "blob://x"), "/resource", "resource must be an object of strings");
	bad(with("resource", json_pack("[s]", "x")), "/resource",
	    "resource must be an object of strings");
	bad(with("resource", json_null()), "/resource", "resource must be an object of strings");
	bad(with("resource", json_pack("{s:i}", "dataset", 5)), "/resource/dataset",
	    "resource.dataset must be a string");
	bad(with("resource", json_pack("{s:s, s:n}", "dataset", "d", "id")), "/resource/id",
	    "resource.id must be a string");
	bad(with("resource", json_pack("{s:{s:s}}", "owner", "a", "b")), "/resource/owner",
	    "resource.owner must be a string");
	bad(with("resource", json_pack("{s:s}", "data set", "x")), "/resource/data set",
	    "resource field names are 1-64 of A-Z a-z 0-9 _ -");
	bad(with("resource", json_pack("{s:s}", "a/b", "x")), "/resource/a~1b",
	    "resource field names are");
	bad(with("resource", json_pack("{s:s}", "a~b", "x")), "/resource/a~0b",
	    "resource field names are");
	bad(with("resource", json_pack("{s:s}", "", "x")), "/resource/", "resource field names are");
	s = repeat("k", 64);
	ok_clear(with("resource", json_pack("{s:s}", s, "x")));
	free(s);
	bad(with("resource", json_pack("{s:s}", "dataset", "a\nb")), "/resource/dataset",
	    "resource.dataset must not contain control characters");
	/* created must be RFC 3339 with an offset */
	bad(with("resource", json_pack("{s:s}", "created", "yesterday")), "/resource/created",
	    "resource.created: not an RFC 3339 date-time");
	bad(with("resource", json_pack("{s:s}", "created", "2025-07-01")), "/resource/created",
	    "resource.created:");
	bad(with("resource", json_pack("{s:s}", "created", "2025-07-01T00:00:00.5")),
	    "/resource/created", "no UTC offset");
	bad(with("resource", json_pack("{s:i}", "created", 1751328000)), "/resource/created",
	    "resource.created must be a string");
	/* other resource fields are free-form strings */
	ok(with("resource", json_pack("{s:s, s:s}", "owner", "team-7", "created",
				      "2025-07-01T02:00:00+02:00")),
	   &ev);
	ck_assert_str_eq(event_resource(&ev, "owner"), "team-7");
	ck_assert(ev.has_created);
	ck_assert_int_eq(ev.resource_created, 1751328000LL * AUPD_USEC);
	event_clear(&ev);
	ok_clear(with("resource", json_object()));
}
END_TEST

/*
 * Every field found, and none made up, for few fields (a scan) and many (a
 * binary search), with names sharing their first bytes.
 */
START_TEST(resource_lookup_few_and_many)
{
	static const char *const names[] = {"c",  "ca", "cb",	"classification",
					    "cl", "co", "collected_for", "crea",
					    "d",  "id", "z",  "Z",	"_x", "-y"};
	static const char *const absent[] = {"a", "cc", "cla", "classificatio", "classifications",
					     "collected", "created", "e", "ida", "zz", "Y", "0"};
	struct event ev;

	for (size_t n = 1; n <= sizeof(names) / sizeof(names[0]); n++) {
		json_t *res = json_object();

		for (size_t i = 0; i < n; i++)
			json_object_set_new(res, names[i], json_sprintf("v-%s", names[i]));
		ok(with("resource", res), &ev);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			const char *v = event_resource(&ev, names[i]);
			char want[64];

			snprintf(want, sizeof(want), "v-%s", names[i]);
			if (i < n)
				ck_assert_msg(v && !strcmp(v, want), "%zu fields: %s -> %s", n,
					      names[i], v ? v : "(none)");
			else
				ck_assert_msg(!v, "%zu fields: %s found", n, names[i]);
		}
		for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
			ck_assert_msg(!event_resource(&ev, absent[i]), "%zu fields: %s found", n,
				      absent[i]);
		event_clear(&ev);
	}
}
END_TEST

START_TEST(resource_long_key_pointer)
{
	/* the pointer names the offending field, even for a long name */
	char *s = repeat("k", 65), ptr[128];

	snprintf(ptr, sizeof(ptr), "/resource/%s", s);
	bad(with("resource", json_pack("{s:s}", s, "x")), ptr, "resource field names are");
	free(s);
}
END_TEST

START_TEST(quantity_rules)
{
	struct event ev;

	ok(with("quantity", json_integer(0)), &ev);
	ck_assert(ev.has_quantity && ev.quantity == 0);
	event_clear(&ev);
	ok(with("quantity", json_real(1e15)), &ev);
	ck_assert(ev.quantity == 1e15);
	event_clear(&ev);
	ok(with("quantity", json_real(2.5)), &ev);
	ck_assert(ev.quantity == 2.5);
	event_clear(&ev);
	ok(with("quantity", json_integer(1000000000000000LL)), &ev);
	ck_assert(ev.quantity == 1e15);
	event_clear(&ev);
	bad(with("quantity", json_integer(-1)), "/quantity", "quantity must be a finite number >= 0");
	bad(with("quantity", json_real(-0.5)), "/quantity", "quantity must be a finite number >= 0");
	bad(with_str("quantity", "5"), "/quantity", "quantity must be a number");
	bad(with("quantity", json_true()), "/quantity", "quantity must be a number");
	bad(with("quantity", json_null()), "/quantity", "quantity must be a number");
}
END_TEST

START_TEST(attributes_rules)
{
	struct event ev;

	bad(with("attributes", json_pack("[i]", 1)), "/attributes", "attributes must be an object");
	bad(with_str("attributes", "region=x"), "/attributes", "attributes must be an object");
	bad(with("attributes", json_null()), "/attributes", "attributes must be an object");
	ok(with("attributes", json_pack("{s:{s:[i,b,n,f]}, s:s}", "a", "b", 1, 1, 2.5, "region",
					"x")),
	   &ev);
	ck_assert_ptr_nonnull(json_object_get(ev.attributes, "a"));
	event_clear(&ev);
	ok_clear(with("attributes", json_object()));
}
END_TEST

START_TEST(unknown_top_level_keys)
{
	bad(with_str("tennant", "x"), "/tennant",
	    "unknown field 'tennant' (did you mean 'tenant'? other data goes under attributes)");
	bad(with_str("purpse", "x"), "/purpse", "(did you mean 'purpose'?");
	bad(with_str("region", "x"), "/region",
	    "unknown field 'region' (other data goes under attributes)");
	bad(with_str("a/b~c", "x"), "/a~1b~0c", "unknown field 'a/b~c'");
	{
		/* a name too long for the pointer: the pointer names the event, never a cut name */
		char *k = repeat("k", 300), *s = repeat("/", 100), want[200];

		bad(with_str(k, "x"), "", "unknown field 'kkkk");
		bad(with_str(s, "x"), "", "unknown field '////");
		free(k);
		free(s);
		/* the longest that fits is given whole (1 + 158 bytes of 160) */
		k = repeat("k", 158);
		snprintf(want, sizeof(want), "/%s", k);
		bad(with_str(k, "x"), want, "unknown field");
		free(k);
	}
}
END_TEST

/* An object nested `levels` deep: 1 is {}, 2 is {"a":{}}, ... */
static json_t *
nested(int levels)
{
	json_t *v = json_object();

	for (int i = 1; i < levels; i++)
		v = json_pack("{s:o}", "a", v);
	return v;
}

/* Rejected for depth; the pointer is the document or leads into attributes. */
static void
too_deep(json_t *e)
{
	struct event_problem prob = {0};
	struct event ev;

	ck_assert_int_eq(event_from_json(e, &ev, &prob), -1);
	ck_assert_int_eq(prob.status, 400);
	ck_assert_msg(strstr(prob.detail, "nested deeper than 32 levels"), "%s", prob.detail);
	ck_assert_msg(prob.pointer[0] == '\0' || !strncmp(prob.pointer, "/attributes", 11),
		      "pointer '%s'", prob.pointer);
	json_decref(e);
}

START_TEST(nesting_depth)
{
	json_t *e;

	/* the event object is level 1, attributes level 2 */
	e = with("attributes", nested(31));
	ck_assert_int_eq(json_depth(e, 100), 32);
	ok_clear(e);
	e = with("attributes", nested(32));
	ck_assert_int_eq(json_depth(e, 100), 33);
	too_deep(e);
	too_deep(with("attributes", nested(200)));
	/* arrays count as levels too */
	e = with("attributes", json_pack("{s:o}", "a", json_array()));
	ck_assert_int_eq(json_depth(e, 100), 3);
	json_decref(e);
	e = json_array();
	for (int i = 1; i < 30; i++)
		e = json_pack("[o]", e);
	ok_clear(with("attributes", json_pack("{s:o}", "a", e))); /* 1 + 1 + 30 = 32 */
	e = json_array();
	for (int i = 1; i < 31; i++)
		e = json_pack("[o]", e);
	too_deep(with("attributes", json_pack("{s:o}", "a", e)));
	/* json_depth itself */
	e = json_integer(1);
	ck_assert_int_eq(json_depth(e, 10), 0);
	json_decref(e);
	e = json_object();
	ck_assert_int_eq(json_depth(e, 10), 1);
	json_decref(e);
}
END_TEST

/* Parses `body` like the server does (NUL allowed by the parser) and validates its one item. */
static void
bad_body(const char *body, size_t len, const char *pointer, const char *part)
{
	struct body_item *items;
	struct aupd_error err = {0};
	size_t n;
	bool single, too_many;

	ck_assert_msg(body_split(body, len, BODY_JSON, 10, &items, &n, &single, &too_many, &err) == 0,
		      "body did not parse: %s", err.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_nonnull(items[0].json);
	bad(json_incref(items[0].json), pointer, part);
	body_items_free(items, n);
}

#define EV_HEAD                                                                                    \
	"{\"id\":\"e1\",\"time\":\"2026-01-15T10:00:00Z\",\"tenant\":\"t\",\"action\":\"data.read\""

START_TEST(nul_in_strings)
{
	static const char b1[] = EV_HEAD ",\"actor\":\"a\\u0000b\"}";
	static const char b2[] =
		EV_HEAD ",\"actor\":\"a\",\"attributes\":{\"x/y\":{\"k~\":\"v\\u0000\"}}}";
	static const char b3[] =
		EV_HEAD ",\"actor\":\"a\",\"attributes\":{\"list\":[\"ok\",\"a\\u0000\"]}}";
	static const char b4[] = EV_HEAD ",\"actor\":\"a\",\"resource\":{\"id\":\"\\u0000\"}}";
	static const char b5[] = EV_HEAD ",\"actor\":\"a\",\"purpose\":\"p\\u0000\"}";

	bad_body(b1, sizeof(b1) - 1, "/actor", "strings must not contain NUL characters");
	bad_body(b2, sizeof(b2) - 1, "/attributes/x~1y/k~0", "must not contain NUL");
	bad_body(b3, sizeof(b3) - 1, "/attributes/list/1", "must not contain NUL");
	bad_body(b4, sizeof(b4) - 1, "/resource/id", "must not contain NUL");
	bad_body(b5, sizeof(b5) - 1, "/purpose", "must not contain NUL");
}
END_TEST

/* ---- body_split ---- */

static void
split_ok(const char *body, enum body_format fmt, size_t max, struct body_item **items, size_t *n,
	 bool *single)
{
	struct aupd_error err = {0};
	bool too_many = true;

	ck_assert_msg(body_split(body, strlen(body), fmt, max, items, n, single, &too_many, &err) ==
			      0,
		      "body_split failed: %s", err.msg);
	ck_assert(!too_many);
}

static void
split_bad(const char *body, enum body_format fmt, size_t max, bool want_too_many,
	  const char *part)
{
	struct aupd_error err = {0};
	struct body_item *items = (void *)1;
	size_t n = 99;
	bool single, too_many;

	ck_assert_msg(body_split(body, strlen(body), fmt, max, &items, &n, &single, &too_many,
				 &err) == -1,
		      "body accepted: %s", body);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(items);
	ck_assert_int_eq(too_many, want_too_many);
	ck_assert_msg(strstr(err.msg, part) != NULL, "error '%s' lacks '%s'", err.msg, part);
}

static const char *
item_id(const struct body_item *it)
{
	return it->has_event ? it->ev.id : json_string_value(json_object_get(it->json, "id"));
}

START_TEST(split_single_object)
{
	struct body_item *items;
	size_t n;
	bool single;

	split_ok("{\"id\":\"a\"}", BODY_JSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 1);
	ck_assert(single);
	ck_assert_str_eq(item_id(&items[0]), "a");
	body_items_free(items, n);
}
END_TEST

START_TEST(split_array)
{
	struct body_item *items;
	size_t n;
	bool single;

	split_ok("[{\"id\":\"a\"}, {\"id\":\"b\"}, 7, {\"id\":\"c\"}]", BODY_JSON, 5, &items, &n,
		 &single);
	ck_assert_uint_eq(n, 4);
	ck_assert(!single);
	ck_assert_str_eq(item_id(&items[0]), "a");
	ck_assert_str_eq(item_id(&items[1]), "b");
	ck_assert(json_is_integer(items[2].json)); /* event_from_json rejects it, per item */
	ck_assert_str_eq(item_id(&items[3]), "c");
	body_items_free(items, n);
	/* a one-element array is not a single event */
	split_ok("[{\"id\":\"a\"}]", BODY_JSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 1);
	ck_assert(!single);
	body_items_free(items, n);
}
END_TEST

START_TEST(split_empty_and_non_object)
{
	split_bad("[]", BODY_JSON, 5, false, "empty array");
	split_bad("5", BODY_JSON, 5, false, "");
	split_bad("\"evt\"", BODY_JSON, 5, false, "");
	split_bad("null", BODY_JSON, 5, false, "");
	split_bad("", BODY_JSON, 5, false, "not valid JSON");
}
END_TEST

START_TEST(split_invalid_json)
{
	split_bad("{\"id\": }", BODY_JSON, 5, false, "not valid JSON");
	split_bad("{\"id\": }", BODY_JSON, 5, false, "line 1, column 8");
	split_bad("{\n\"id\": \"x\",\n}", BODY_JSON, 5, false, "(line 3, column");
	split_bad("[{\"id\":\"a\"}, {\"id\":\"b\"]", BODY_JSON, 5, false, "not valid JSON");
	/* duplicate keys make an object ambiguous */
	split_bad("{\"id\":\"a\",\"id\":\"b\"}", BODY_JSON, 5, false, "not valid JSON");
	/* invalid UTF-8 */
	split_bad("{\"id\":\"\xff\"}", BODY_JSON, 5, false, "not valid JSON");
	/* two values */
	split_bad("{\"id\":\"a\"} {\"id\":\"b\"}", BODY_JSON, 5, false, "not valid JSON");
}
END_TEST

START_TEST(split_max_items)
{
	struct body_item *items;
	size_t n;
	bool single;

	split_ok("[{},{},{},{},{}]", BODY_JSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 5);
	body_items_free(items, n);
	split_bad("[{},{},{},{},{},{}]", BODY_JSON, 5, true, "max_batch");
	split_ok("{}\n{}\n\n{}\n{}\n\n{}\n\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 5);
	body_items_free(items, n);
	split_bad("{}\n{}\n{}\n{}\n{}\n{}\n", BODY_NDJSON, 5, true, "max_batch");
	/* lines that do not parse count as items too */
	split_bad("{}\nx\n{}\ny\n{}\nz\n", BODY_NDJSON, 5, true, "max_batch");
}
END_TEST

START_TEST(split_ndjson)
{
	struct body_item *items;
	size_t n;
	bool single;

	split_ok("\n{\"id\":\"a\"}\n\n   \n\t\n{\"id\":\"b\"}\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 2);
	ck_assert(!single);
	ck_assert_str_eq(item_id(&items[0]), "a");
	ck_assert_str_eq(item_id(&items[1]), "b");
	body_items_free(items, n);
	/* the last line needs no newline; a single line is not a "single" body */
	split_ok("{\"id\":\"a\"}", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 1);
	ck_assert(!single);
	body_items_free(items, n);
	/* CRLF line endings */
	split_ok("{\"id\":\"a\"}\r\n{\"id\":\"b\"}\r\n\r\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(items[0].json);
	ck_assert_ptr_nonnull(items[1].json);
	ck_assert_str_eq(item_id(&items[1]), "b");
	body_items_free(items, n);
	split_bad("\n\n  \n", BODY_NDJSON, 5, false, "no events");
}
END_TEST

START_TEST(split_ndjson_bad_line)
{
	struct body_item *items;
	size_t n;
	bool single;

	split_ok("{\"id\":\"a\"}\n{a}\n{\"id\":\"c\"}\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(item_id(&items[0]), "a");
	ck_assert_int_eq(items[0].prob.status, 0);
	ck_assert_ptr_null(items[1].json);
	ck_assert_int_eq(items[1].prob.status, 400);
	ck_assert_msg(strstr(items[1].prob.detail, "line 2 is not valid JSON"), "%s",
		      items[1].prob.detail);
	ck_assert_str_eq(items[2].prob.pointer, "");
	ck_assert_str_eq(item_id(&items[2]), "c");
	body_items_free(items, n);
	/* line numbers count blank lines; invalid UTF-8 spoils only its line */
	split_ok("\n\n{\"id\":\"\xff\"}\n{\"id\":\"d\"}\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_null(items[0].json);
	ck_assert_msg(strstr(items[0].prob.detail, "line 3 is not valid JSON"), "%s",
		      items[0].prob.detail);
	ck_assert_str_eq(item_id(&items[1]), "d");
	body_items_free(items, n);
	/* a JSON array on one line is an item (rejected later as not an object) */
	split_ok("[1,2]\n", BODY_NDJSON, 5, &items, &n, &single);
	ck_assert_uint_eq(n, 1);
	ck_assert(json_is_array(items[0].json));
	body_items_free(items, n);
}
END_TEST

/* ---- event_parse: the scanner and the jansson path give the same answers ---- */

#define EV_OK                                                                                      \
	"{\"id\":\"e1\",\"time\":\"2026-01-15T10:00:00Z\",\"tenant\":\"t\",\"actor\":\"a\","          \
	"\"action\":\"data.read\""

/*
 * `text` through event_parse(): expect `want` (an EVENT_PARSE_ code), the
 * scanner taking it or not as `scanned` says, and the same event or problem as
 * json_loadb() + event_from_json().
 */
static void
agree(const char *text, bool scanned, int want)
{
	struct event fast, slow;
	struct event_problem p1 = {0}, p2 = {0};
	json_error_t jerr;
	size_t len = strlen(text);
	int rc = event_parse(text, len, &fast, &p1, &jerr);
	json_t *doc;

	ck_assert_msg(rc == want, "%s: event_parse gave %d, expected %d (%s)", text, rc, want,
		      p1.detail);
	ck_assert_msg((event_scan(text, len, &slow) == 0) == scanned, "%s: scanner %s it", text,
		      scanned ? "did not take" : "took");
	event_clear(&slow);
	doc = json_loadb(text, len,
			 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
				 (want == EVENT_PARSE_REAL ? JSON_DECODE_INT_AS_REAL : 0),
			 NULL);
	if (want == EVENT_PARSE_NOT_JSON) {
		ck_assert_ptr_null(doc);
		return;
	}
	ck_assert_ptr_nonnull(doc);
	if (want == EVENT_PARSE_INVALID) {
		ck_assert_int_eq(event_from_json(doc, &slow, &p2), -1);
		ck_assert_str_eq(p1.pointer, p2.pointer);
		ck_assert_str_eq(p1.detail, p2.detail);
	} else {
		ck_assert_int_eq(event_from_json(doc, &slow, &p2), 0);
		ck_assert_msg(event_equal(&fast, &slow), "%s: read differently", text);
		ck_assert_msg(event_attrs_consistent(&fast), "%s: attributes noted wrongly", text);
		event_clear(&slow);
		event_clear(&fast);
	}
	json_decref(doc);
}

START_TEST(scanner_takes_the_usual_shape)
{
	struct event ev;
	struct event_problem prob;
	const json_t *attrs;
	static const char full[] =
		" {\"id\":\"evt-1\",\"time\":\"2026-01-15T10:00:00+01:00\",\"tenant\":\"agency-a\","
		"\"actor\":\"analyst-17\",\"action\":\"face.search\",\"purpose\":\"case-work\","
		"\"resource\":{\"id\":\"blob://p/1.jpg\",\"dataset\":\"visa-photos\","
		"\"created\":\"2025-07-01T00:00:00Z\"},\"quantity\":12.5,"
		"\"attributes\":{\"case\":\"C-1\",\"n\":[1,-2.5,true,null,{\"k\":\"a\\\"b\\u00e9\"}]}}\r\n";

	agree(full, true, EVENT_PARSE_OK);
	ck_assert_int_eq(event_parse(full, strlen(full), &ev, &prob, NULL), EVENT_PARSE_OK);
	ck_assert_ptr_nonnull(ev.own);
	ck_assert_ptr_null(ev.doc);
	ck_assert_str_eq(ev.id, "evt-1");
	ck_assert_int_eq(ev.time, (aupd_time)1768467600 * AUPD_USEC); /* 2026-01-15T09:00:00Z */
	ck_assert_str_eq(ev.purpose, "case-work");
	ck_assert_uint_eq(ev.n_resource, 3);
	ck_assert_str_eq(ev.resource[0].key, "created"); /* sorted */
	ck_assert_str_eq(event_resource(&ev, "dataset"), "visa-photos");
	ck_assert(ev.has_created);
	ck_assert(ev.quantity == 12.5 && ev.has_quantity);
	ck_assert_ptr_null(ev.attributes); /* not parsed until read */
	attrs = event_attributes(&ev);
	ck_assert_str_eq(json_string_value(json_object_get(attrs, "case")), "C-1");
	ck_assert_ptr_eq(event_attributes(&ev), attrs);
	event_clear(&ev);

	agree(EV_OK "}", true, EVENT_PARSE_OK);
	agree(EV_OK ",\"resource\":{}}", true, EVENT_PARSE_OK);
	agree(EV_OK ",\"quantity\":0}", true, EVENT_PARSE_OK);
	agree(EV_OK ",\"quantity\":123456789012345678}", true, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{}}", true, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{\"a\":{\"a\":{\"a\":[[],{}]}}}}", true, EVENT_PARSE_OK);
}
END_TEST

START_TEST(scanner_steps_aside)
{
	/* accepted, by jansson: escapes, non-ASCII, exponents, long numbers, big integers */
	agree(EV_OK ",\"purpose\":\"a\\/b\"}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"purpose\":\"caf\xc3\xa9\"}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{\"name\":\"Jos\xc3\xa9\"}}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{\"\\u0061\":1}}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{\"e\":\"\\ud83d\\ude00\"}}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"quantity\":1e3}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"quantity\":1234567890123456789}", false, EVENT_PARSE_OK);
	agree(EV_OK ",\"attributes\":{\"big\":123456789012345678901234567890}}", false,
	      EVENT_PARSE_REAL);
	/* refused, with jansson's or the validator's words */
	agree(EV_OK ",\"quantity\":-1}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"quantity\":\"1\"}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"purpose\":null}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"purpose\":\"\"}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"purpose\":\"a\x7f\"}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"resource\":{\"bad key\":\"x\"}}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"resource\":{\"created\":\"yesterday\"}}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"resource\":{\"n\":1}}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"attributes\":[]}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"attributes\":{\"s\":\"a\\u0000\"}}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"colour\":\"red\"}", false, EVENT_PARSE_INVALID);
	agree("{\"id\":\"e 1\",\"time\":\"2026-01-15T10:00:00Z\",\"tenant\":\"t\",\"actor\":\"a\","
	      "\"action\":\"data.read\"}",
	      false, EVENT_PARSE_INVALID);
	agree("{\"id\":\"e1\",\"time\":\"2026-01-15T10:00:00Z\",\"tenant\":\"t\",\"actor\":\"a\","
	      "\"action\":\"Data.Read\"}",
	      false, EVENT_PARSE_INVALID);
	agree("{}", false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"attributes\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{"
	      "\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{"
	      "\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}}}}}}}}}}}}"
	      "}}}}}}}}}}}}",
	      false, EVENT_PARSE_INVALID);
	agree(EV_OK ",\"id\":\"e2\"}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"attributes\":{\"a\":1,\"a\":2}}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"quantity\":01}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"quantity\":1.}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"attributes\":{\"t\":tru}}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"attributes\":{\"s\":\"\\ud800\"}}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",\"attributes\":{\"s\":\"\\x\"}}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK "} {}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK ",}", false, EVENT_PARSE_NOT_JSON);
	agree(EV_OK, false, EVENT_PARSE_NOT_JSON);
	agree("", false, EVENT_PARSE_NOT_JSON);
}
END_TEST

START_TEST(scanner_notes_plain_attributes)
{
	struct event ev;
	static const char text[] = EV_OK ",\"attributes\":{\"case\":\"C-1\",\"n\":-2.5,\"i\":7,"
				   "\"t\":true,\"f\":false,\"z\":null,\"o\":{\"k\":1},\"e\":\"a\\nb\"}}";

	ck_assert_int_eq(event_scan(text, strlen(text), &ev), 0);
	ck_assert_uint_eq(ev.n_attrs, 8);
	ck_assert(ev.attrs_all);
	ck_assert_str_eq(ev.attrs[0].key, "case");
	ck_assert_int_eq(ev.attrs[0].kind, ATTR_STRING);
	ck_assert_str_eq(ev.attrs[0].text, "C-1");
	ck_assert_int_eq(ev.attrs[1].kind, ATTR_NUMBER);
	ck_assert_str_eq(ev.attrs[1].text, "-2.5");
	ck_assert_int_eq(ev.attrs[3].kind, ATTR_TRUE);
	ck_assert_int_eq(ev.attrs[5].kind, ATTR_NULL);
	ck_assert_int_eq(ev.attrs[6].kind, ATTR_OTHER); /* an object: parsed when read */
	ck_assert_int_eq(ev.attrs[7].kind, ATTR_OTHER); /* an escape: the same */
	ck_assert_ptr_null(ev.attributes);
	ck_assert(event_attrs_consistent(&ev));
	event_clear(&ev);
	/* more members than the scanner notes: the rest are not known to be absent */
	agree(EV_OK ",\"attributes\":{\"a0\":0,\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,"
	      "\"a7\":7,\"a8\":8,\"a9\":9,\"b0\":0,\"b1\":1,\"b2\":2,\"b3\":3,\"b4\":4,\"b5\":5,\"b6\":6}}",
	      true, EVENT_PARSE_OK);
	ck_assert_int_eq(event_scan(EV_OK ",\"attributes\":{\"a0\":0,\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,"
				    "\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9,\"b0\":0,\"b1\":1,\"b2\":2,"
				    "\"b3\":3,\"b4\":4,\"b5\":5,\"b6\":6}}",
				    strlen(EV_OK) + 135, &ev),
			 0);
	ck_assert_uint_eq(ev.n_attrs, EVENT_SCAN_ATTRS);
	ck_assert(!ev.attrs_all);
	event_clear(&ev);
}
END_TEST

START_TEST(split_keeps_scanned_events)
{
	struct body_item *items;
	struct event_problem prob;
	struct event ev;
	size_t n;
	bool single;

	split_ok(EV_OK "}\n{\"id\":\"x\"}\n" EV_OK ",\"purpose\":\"\\u0070\"}\n", BODY_NDJSON, 5,
		 &items, &n, &single);
	ck_assert_uint_eq(n, 3);
	ck_assert(items[0].has_event && !items[0].json);
	ck_assert(!items[1].has_event && items[1].json);
	ck_assert(!items[2].has_event && items[2].json);
	ck_assert_uint_eq(items[0].raw_len, strlen(EV_OK "}"));
	ck_assert_int_eq(body_item_event(&items[0], &ev, &prob), 0);
	ck_assert_str_eq(ev.id, "e1");
	event_clear(&ev);
	ck_assert_int_eq(body_item_event(&items[1], &ev, &prob), -1);
	ck_assert_str_eq(prob.pointer, "/time");
	ck_assert_int_eq(body_item_event(&items[2], &ev, &prob), 0);
	ck_assert_str_eq(ev.purpose, "p");
	event_clear(&ev);
	body_items_free(items, n);
	/* a single object, kept as sent without the surrounding whitespace */
	split_ok("\n " EV_OK "} \n", BODY_JSON, 5, &items, &n, &single);
	ck_assert(single && items[0].has_event);
	ck_assert_uint_eq(items[0].raw_len, strlen(EV_OK "}"));
	ck_assert(!memcmp(items[0].raw, EV_OK "}", items[0].raw_len));
	body_items_free(items, n); /* frees the event not taken */
}
END_TEST

START_TEST(member_span)
{
	static const char body[] = "{\"seq\":7,\"kind\":\"verdict\",\"tenant\":\"t\\\"x\",\"n\":[1,{\"event\":2}],"
				   "\"event\": {\"id\":\"a\",\"attributes\":{\"event\":1}} ,\"verdict\":{}}";
	const char *v;
	size_t n;

	ck_assert_int_eq(json_member_span(body, strlen(body), "event", &v, &n), 0);
	ck_assert_uint_eq(n, strlen("{\"id\":\"a\",\"attributes\":{\"event\":1}}"));
	ck_assert(!memcmp(v, "{\"id\":\"a\"", 9));
	ck_assert_int_eq(json_member_span(body, strlen(body), "seq", &v, &n), 0);
	ck_assert(n == 1 && *v == '7');
	ck_assert_int_eq(json_member_span(body, strlen(body), "absent", &v, &n), -1);
	static const char utf8[] = "{\"k\":\"caf\xc3\xa9\",\"event\":{}}";

	ck_assert_int_eq(json_member_span(utf8 + 11, strlen(utf8 + 11) - 1, "event", &v, &n),
			 -1); /* not an object */
	ck_assert_int_eq(json_member_span(utf8, strlen(utf8), "event", &v, &n),
			 -1); /* non-ASCII before it: jansson's turn */
	ck_assert_int_eq(json_member_span("[1]", 3, "event", &v, &n), -1);
}
END_TEST

static Suite *
event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("validation");

	tcase_add_test(tc, valid_event_fields);
	tcase_add_test(tc, optional_fields_absent);
	tcase_add_test(tc, required_fields_missing);
	tcase_add_test(tc, required_fields_mistyped);
	tcase_add_test(tc, not_an_object);
	tcase_add_test(tc, id_characters_and_length);
	tcase_add_test(tc, time_forms);
	tcase_add_test(tc, time_without_offset_says_so);
	tcase_add_test(tc, rejected_event_is_left_empty);
	tcase_add_test(tc, tenant_and_actor_lengths_in_code_points);
	tcase_add_test(tc, action_forms);
	tcase_add_test(tc, purpose_type);
	tcase_add_test(tc, resource_rules);
	tcase_add_test(tc, resource_lookup_few_and_many);
	tcase_add_test(tc, resource_long_key_pointer);
	tcase_add_test(tc, quantity_rules);
	tcase_add_test(tc, attributes_rules);
	tcase_add_test(tc, unknown_top_level_keys);
	tcase_add_test(tc, nesting_depth);
	tcase_add_test(tc, nul_in_strings);
	suite_add_tcase(s, tc);

	tc = tcase_create("body");
	tcase_add_test(tc, split_single_object);
	tcase_add_test(tc, split_array);
	tcase_add_test(tc, split_empty_and_non_object);
	tcase_add_test(tc, split_invalid_json);
	tcase_add_test(tc, split_max_items);
	tcase_add_test(tc, split_ndjson);
	tcase_add_test(tc, split_ndjson_bad_line);
	tcase_add_test(tc, scanner_takes_the_usual_shape);
	tcase_add_test(tc, scanner_steps_aside);
	tcase_add_test(tc, scanner_notes_plain_attributes);
	tcase_add_test(tc, split_keeps_scanned_events);
	tcase_add_test(tc, member_span);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(event_suite());
}
