"""Ingest over real HTTPS: validation, batches, idempotency, tokens and roles, limits,
restarts and a crash (issue 3, item 8)."""

import json
import os
import re
import threading
import time
import urllib.parse
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import (SLOW, Daemon, assert_problem, cli, event, ndjson, run)

# small limits so 413 is cheap to reach; frequent checkpoints so verify checks signatures
CONFIG = "limits: {max_body: 4KiB, max_batch: 5}\ncheckpoint: {every: 10}\n"
NDJSON = "application/x-ndjson"
INVALID = "urn:aupd:problem:invalid-event"
VERDICT_KEYS = {"tenant", "id", "seq", "verdict", "matched", "rules_version", "decided_at",
                "duplicate"}


def started(config=CONFIG):
    """A running daemon with an ingest token (d.ing) and an auditor token (d.aud)."""
    d = Daemon(config=config)
    try:
        d.start()
        d.ing = d.token("ingest-1", "ingest")
        d.aud = d.token("auditor-1", "auditor")
    except BaseException:
        d.cleanup()
        raise
    return d


def check_verdict(v, tenant, id, duplicate=False):
    """A verdict document per contract section 4 (rules stand-in: default_effect, nothing matched)."""
    assert isinstance(v, dict), v
    missing = VERDICT_KEYS - set(v)
    assert not missing, "verdict lacks %s: %r" % (sorted(missing), v)
    assert v["tenant"] == tenant and v["id"] == id, v
    assert isinstance(v["seq"], int) and v["seq"] > 0, v
    assert v["verdict"] == "allow", v
    assert v["matched"] == [], v
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", v["rules_version"]), v
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v["decided_at"]), v
    assert v["duplicate"] is duplicate, v
    return v


def results(resp, accepted, rejected):
    """The body of a 200 ingest answer, with its counts checked."""
    assert resp.status == 200, resp
    assert (resp.header("Content-Type") or "").startswith("application/json"), resp.headers
    doc = resp.json()
    assert set(doc) >= {"results", "accepted", "rejected"}, doc
    assert doc["accepted"] == accepted and doc["rejected"] == rejected, doc
    assert len(doc["results"]) == accepted + rejected, doc
    return doc["results"]


def item_problem(p, status, pointer, detail_part=None):
    """One rejected item inside a results array."""
    for k in ("type", "title", "status", "detail", "pointer"):
        assert k in p, "item problem lacks %s: %r" % (k, p)
    assert p["status"] == status, p
    assert p["pointer"] == pointer, "pointer %r, expected %r" % (p["pointer"], pointer)
    if detail_part:
        assert detail_part in p["detail"], "detail %r lacks %r" % (p["detail"], detail_part)


def stored(d, tenant, id):
    """The stored event document, or None when GET answers 404."""
    r = d.get("/v1/events/%s/%s" % (tenant, id), token=d.aud)
    if r.status == 404:
        assert_problem(r, 404)
        return None
    assert r.status == 200, r
    return r.json()


def stored_seq(doc):
    return doc["verdict"]["seq"]


def n_events(d):
    return d.query("SELECT count(*) FROM events")[0][0]


def nested(levels):
    """An object nested `levels` deep ({} is 1)."""
    v = {}
    for _ in range(levels - 1):
        v = {"a": v}
    return v


# (description, changes to a valid event, pointer, detail part) - one per validation rule
RULES = [
    ("id missing", {"id": None}, "/id", "id is required"),
    ("id not a string", {"id": 17}, "/id", "id must be a string"),
    ("id characters", {"id": "evt 1"}, "/id", "id must be 1 to 128 of"),
    ("id too long", {"id": "a" * 129}, "/id", "id must be 1 to 128 of"),
    ("time missing", {"time": None}, "/time", "time is required"),
    ("time not a string", {"time": 1768471200}, "/time", "time must be an RFC 3339 string"),
    ("time without offset", {"time": "2026-01-15T10:00:00"}, "/time", "offset"),
    ("time bad offset", {"time": "2026-01-15T10:00:00+25:00"}, "/time", "out-of-range UTC offset"),
    ("time 10 fraction digits", {"time": "2026-01-15T10:00:00.1234567890Z"}, "/time",
     "more than 9 fractional digits"),
    ("time impossible date", {"time": "2026-02-30T10:00:00Z"}, "/time", "out-of-range field"),
    ("tenant missing", {"tenant": None}, "/tenant", "tenant is required"),
    ("tenant too long", {"tenant": "\u00e9" * 129}, "/tenant",
     "tenant must be 1 to 128 characters long (got 129)"),
    ("tenant control character", {"tenant": "agency\u0001a"}, "/tenant",
     "tenant must not contain control characters"),
    ("actor missing", {"actor": None}, "/actor", "actor is required"),
    ("actor not a string", {"actor": 17}, "/actor", "actor must be a string"),
    ("actor empty", {"actor": ""}, "/actor", "actor must be 1 to 128 characters long (got 0)"),
    ("action missing", {"action": None}, "/action", "action is required"),
    ("action uppercase", {"action": "Face.search"}, "/action",
     "action must be lowercase dotted words"),
    ("action double dot", {"action": "face..search"}, "/action",
     "action must be lowercase dotted words"),
    ("purpose not a string", {"purpose": 5}, "/purpose", "purpose must be a string"),
    ("resource not an object", {"resource": "blob://x"}, "/resource",
     "resource must be an object of strings"),
    ("resource value not a string", {"resource": {"dataset": 1}}, "/resource/dataset",
     "resource.dataset must be a string"),
    ("resource field name", {"resource": {"data set": "x"}}, "/resource/data set",
     "resource field names are"),
    ("resource.created", {"resource": {"created": "yesterday"}}, "/resource/created",
     "resource.created:"),
    ("quantity negative", {"quantity": -1}, "/quantity", "quantity must be a finite number >= 0"),
    ("quantity a string", {"quantity": "5"}, "/quantity", "quantity must be a number"),
    ("attributes not an object", {"attributes": ["a"]}, "/attributes",
     "attributes must be an object"),
    ("unknown field", {"tennant": "agency-a"}, "/tennant", "did you mean 'tenant'?"),
    ("too deep", {"attributes": nested(32)}, None, "nested deeper than 32 levels"),
]


def bad_event(i, changes):
    e = event("rule-%02d" % i)
    for k, v in changes.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def check_depth_pointer(pointer):
    assert pointer == "" or pointer.startswith("/attributes"), pointer


# ---- validation ----

def test_every_validation_rule_single():
    with started() as d:
        for i, (what, changes, pointer, part) in enumerate(RULES):
            r = d.post("/v1/events", bad_event(i, changes), token=d.ing)
            try:
                doc = assert_problem(r, 400, part)
                assert doc["type"] == INVALID, doc
                if pointer is None:
                    check_depth_pointer(doc.get("pointer"))
                else:
                    assert doc.get("pointer") == pointer, doc
            except AssertionError as e:
                raise AssertionError("%s: %s" % (what, e))
        # nothing of any of them was stored (the ones that still have an id and tenant)
        assert n_events(d) == 0
        assert stored(d, "agency-a", "rule-02") is None
        assert d.verify().returncode == 0


def test_every_validation_rule_in_a_batch():
    with started(config="checkpoint: {every: 10}\n") as d:
        body = [event("good-1")] + [bad_event(i, c) for i, (_, c, _, _) in enumerate(RULES)]
        body.append(event("good-2"))
        res = results(d.post("/v1/events", body, token=d.ing), 2, len(RULES))
        check_verdict(res[0], "agency-a", "good-1")
        check_verdict(res[-1], "agency-a", "good-2")
        assert res[-1]["seq"] > res[0]["seq"]
        for i, (what, _, pointer, part) in enumerate(RULES):
            p = res[i + 1]
            try:
                item_problem(p, 400, p["pointer"] if pointer is None else pointer, part)
                if pointer is None:
                    check_depth_pointer(p["pointer"])
                assert p["type"] == INVALID, p
            except AssertionError as e:
                raise AssertionError("%s: %s" % (what, e))
        assert n_events(d) == 2


def test_nul_and_pointer_escaping():
    with started() as d:
        head = '{"id":"nul-1","time":"2026-01-15T10:00:00Z","tenant":"agency-a","action":"data.read"'
        r = d.post("/v1/events", head + ',"actor":"a\\u0000b"}', token=d.ing,
                   content_type="application/json")
        assert_problem(r, 400, "NUL", "/actor")
        r = d.post("/v1/events",
                   head + ',"actor":"a","attributes":{"a/b~c":{"x":"v\\u0000"}}}',
                   token=d.ing, content_type="application/json")
        assert_problem(r, 400, "NUL", "/attributes/a~1b~0c/x")
        r = d.post("/v1/events", event("esc-1", **{"x/y~z": 1}), token=d.ing)
        assert_problem(r, 400, "unknown field", "/x~1y~0z")
        assert n_events(d) == 0


def test_invalid_utf8_and_non_finite():
    with started() as d:
        body = json.dumps(event("utf-1")).encode().replace(b"analyst-17", b"analyst-\xff")
        r = d.post("/v1/events", body, token=d.ing, content_type="application/json")
        assert_problem(r, 400)
        # in NDJSON the bad line is one rejected item; its neighbours are stored
        lines = [json.dumps(event("utf-2")).encode(), body, json.dumps(event("utf-3")).encode()]
        res = results(d.post("/v1/events", b"\n".join(lines) + b"\n", token=d.ing,
                             content_type=NDJSON), 2, 1)
        check_verdict(res[0], "agency-a", "utf-2")
        item_problem(res[1], 400, "")
        check_verdict(res[2], "agency-a", "utf-3")
        # a quantity too large for a double does not parse
        r = d.post("/v1/events", json.dumps(event("inf-1")).replace('"face.search"',
                   '"face.search", "quantity": 1e400'), token=d.ing,
                   content_type="application/json")
        assert_problem(r, 400)
        assert stored(d, "agency-a", "inf-1") is None
        assert stored(d, "agency-a", "utf-1") is None
        assert n_events(d) == 2


def test_integers_beyond_64_bits_do_not_spoil_a_batch():
    # RFC 8259 numbers have no size limit; attributes may hold any JSON, quantity any
    # number >= 0.  Such an item is accepted or rejected on its own, never the whole body.
    with started(config="checkpoint: {every: 10}\n") as d:
        big = json.dumps(event("big-2"))[:-1] + ', "attributes": {"account": 123456789012345678901234567890}}'
        body = "[" + json.dumps(event("big-1")) + ", " + big + ", " + json.dumps(event("big-3")) + "]"
        r = d.post("/v1/events", body, token=d.ing, content_type="application/json")
        assert r.status == 200, r
        res = r.json()["results"]
        check_verdict(res[0], "agency-a", "big-1")
        if "type" in res[1]:
            item_problem(res[1], 400, "/attributes/account")
        else:
            check_verdict(res[1], "agency-a", "big-2")
        check_verdict(res[2], "agency-a", "big-3")
        body = json.dumps(event("big-4"))[:-1] + ', "quantity": 10000000000000000000}'
        r = d.post("/v1/events", body, token=d.ing, content_type="application/json")
        if r.status == 400:
            assert_problem(r, 400, None, "/quantity")
        else:
            check_verdict(results(r, 1, 0)[0], "agency-a", "big-4")


# ---- single, array, NDJSON ----

def test_single_event_accepted():
    with started() as d:
        e = event("evt-000123", purpose="case-investigation", quantity=250,
                  resource={"id": "blob://photos/2025/123.jpg", "dataset": "visa-photos",
                            "created": "2025-07-01T00:00:00Z"},
                  attributes={"region": "usgov-virginia", "case": "C-2291", "n": [1, {"x": None}]})
        res = results(d.post("/v1/events", e, token=d.ing), 1, 0)
        v = check_verdict(res[0], "agency-a", "evt-000123")
        doc = stored(d, "agency-a", "evt-000123")
        assert doc is not None
        assert doc["event"] == e, doc
        assert stored_seq(doc) == v["seq"], (doc, v)
        assert doc["verdict"]["decided_at"] == v["decided_at"]
        assert doc["verdict"]["rules_version"] == v["rules_version"]
        assert d.verify().returncode == 0


def test_single_event_rejected_is_the_bare_problem():
    with started() as d:
        r = d.post("/v1/events", event("bad id"), token=d.ing)
        doc = assert_problem(r, 400, "id must be 1 to 128 of", "/id")
        assert "results" not in doc
        assert doc["type"] == INVALID and doc["title"], doc
        assert n_events(d) == 0


def test_array_with_good_and_bad_items():
    with started() as d:
        body = [event("arr-1"), event("arr-2", quantity=-5), event("arr-3", tenant="agency-b"),
                event("arr-4", action="Face.Search"), event("arr-5")]
        res = results(d.post("/v1/events", body, token=d.ing), 3, 2)
        v1 = check_verdict(res[0], "agency-a", "arr-1")
        item_problem(res[1], 400, "/quantity", ">= 0")
        v3 = check_verdict(res[2], "agency-b", "arr-3")
        item_problem(res[3], 400, "/action")
        v5 = check_verdict(res[4], "agency-a", "arr-5")
        # in order, one ledger position each
        assert v1["seq"] < v3["seq"] < v5["seq"], res
        assert stored_seq(stored(d, "agency-a", "arr-1")) == v1["seq"]
        assert stored_seq(stored(d, "agency-b", "arr-3")) == v3["seq"]
        assert stored_seq(stored(d, "agency-a", "arr-5")) == v5["seq"]
        assert stored(d, "agency-a", "arr-2") is None
        assert stored(d, "agency-a", "arr-4") is None
        assert n_events(d) == 3
        # a batch of only bad items is still a 200 with every problem
        res = results(d.post("/v1/events", [event("x y"), {"id": "z"}], token=d.ing), 0, 2)
        item_problem(res[0], 400, "/id")
        item_problem(res[1], 400, "/time")
        # an array item that is not an object
        res = results(d.post("/v1/events", [7, event("arr-6")], token=d.ing), 1, 1)
        item_problem(res[0], 400, "")
        check_verdict(res[1], "agency-a", "arr-6")


def test_ndjson_with_good_and_bad_lines():
    with started() as d:
        text = ("\n" + json.dumps(event("nd-1")) + "\r\n"
                "{not json}\n"
                "\n   \n" + json.dumps(event("nd-2", time="2026-01-15")) + "\n"
                + json.dumps(event("nd-3")) + "\r\n"
                + json.dumps(event("nd-4", tenant="agency-b")))
        res = results(d.post("/v1/events", text, token=d.ing, content_type=NDJSON), 3, 2)
        v1 = check_verdict(res[0], "agency-a", "nd-1")
        item_problem(res[1], 400, "", "not valid JSON")
        item_problem(res[2], 400, "/time")
        v3 = check_verdict(res[3], "agency-a", "nd-3")
        v4 = check_verdict(res[4], "agency-b", "nd-4")
        assert v1["seq"] < v3["seq"] < v4["seq"]
        assert stored_seq(stored(d, "agency-b", "nd-4")) == v4["seq"]
        assert stored(d, "agency-a", "nd-2") is None
        # one NDJSON line is a batch of one, answered with results
        res = results(d.post("/v1/events", json.dumps(event("nd-x y")) + "\n", token=d.ing,
                             content_type=NDJSON), 0, 1)
        item_problem(res[0], 400, "/id")
        res = results(d.post("/v1/events", ndjson([event("nd-5")]), token=d.ing,
                             content_type="application/x-ndjson; charset=utf-8"), 1, 0)
        check_verdict(res[0], "agency-a", "nd-5")
        assert n_events(d) == 4


def test_body_that_does_not_parse_stores_nothing():
    with started() as d:
        good = json.dumps(event("np-1"))
        for body in ("[" + good + ", {", good[:-1], "[" + good + "] x", "", "[]", "null", "\"x\""):
            r = d.post("/v1/events", body, token=d.ing, content_type="application/json")
            assert_problem(r, 400)
        assert stored(d, "agency-a", "np-1") is None
        r = d.post("/v1/events", "\n\n", token=d.ing, content_type=NDJSON)
        assert_problem(r, 400)
        assert n_events(d) == 0


# ---- idempotency ----

def test_duplicates():
    with started() as d:
        first = check_verdict(results(d.post("/v1/events", event("dup-1"), token=d.ing), 1, 0)[0],
                              "agency-a", "dup-1")
        again = results(d.post("/v1/events", event("dup-1"), token=d.ing), 1, 0)[0]
        check_verdict(again, "agency-a", "dup-1", duplicate=True)
        for k in ("seq", "verdict", "matched", "rules_version", "decided_at"):
            assert again[k] == first[k], (k, first, again)
        # same tenant and id with other content: still the original, not judged again
        changed = results(d.post("/v1/events", event("dup-1", actor="someone-else", quantity=9),
                                 token=d.ing), 1, 0)[0]
        check_verdict(changed, "agency-a", "dup-1", duplicate=True)
        assert changed["seq"] == first["seq"]
        assert stored(d, "agency-a", "dup-1")["event"]["actor"] == "analyst-17"
        # both copies in one batch, and the same id under another tenant
        res = results(d.post("/v1/events", [event("dup-2"), event("dup-2"),
                                             event("dup-2", tenant="agency-b")],
                             token=d.ing), 3, 0)
        a = check_verdict(res[0], "agency-a", "dup-2")
        b = check_verdict(res[1], "agency-a", "dup-2", duplicate=True)
        c = check_verdict(res[2], "agency-b", "dup-2")
        assert a["seq"] == b["seq"] and a["decided_at"] == b["decided_at"], res
        assert c["seq"] != a["seq"], res
        # in NDJSON too
        res = results(d.post("/v1/events", ndjson([event("dup-3"), event("dup-3")]),
                             token=d.ing, content_type=NDJSON), 2, 0)
        check_verdict(res[0], "agency-a", "dup-3")
        check_verdict(res[1], "agency-a", "dup-3", duplicate=True)
        assert res[0]["seq"] == res[1]["seq"]
        # each (tenant, id) is indexed once, and judged once in the ledger
        assert n_events(d) == 4
        assert d.query("SELECT count(*) FROM ledger WHERE kind = 'verdict'")[0][0] == 4
        # after a restart
        assert d.stop() == 0
        d.start()
        after = results(d.post("/v1/events", event("dup-1"), token=d.ing), 1, 0)[0]
        check_verdict(after, "agency-a", "dup-1", duplicate=True)
        assert after["seq"] == first["seq"] and after["decided_at"] == first["decided_at"]
        assert n_events(d) == 4
        assert d.verify().returncode == 0


def test_concurrent_duplicates_are_judged_once():
    with started(config="checkpoint: {every: 10}\n") as d:
        ids = ["cc-%d" % i for i in range(40)]
        answers = [[], [], []]

        def post(k):
            conn = d.connect()
            try:
                for i in range(0, len(ids), 10):
                    r = d.post("/v1/events", [event(x) for x in ids[i:i + 10]], token=d.ing,
                               conn=conn)
                    answers[k].extend(results(r, 10, 0))
            finally:
                conn.close()

        threads = [threading.Thread(target=post, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60 * SLOW)
        assert all(len(a) == len(ids) for a in answers), [len(a) for a in answers]
        for i, id in enumerate(ids):
            copies = [a[i] for a in answers]
            assert all(c["id"] == id for c in copies), copies
            assert len({c["seq"] for c in copies}) == 1, copies
            assert sorted(c["duplicate"] for c in copies) == [False, True, True], copies
        assert n_events(d) == len(ids)
        assert d.query("SELECT count(*) FROM ledger WHERE kind = 'verdict'")[0][0] == len(ids)


def test_tenant_and_id_with_special_characters():
    with started() as d:
        tenant = "Agence fran\u00e7aise / d\u00e9partement 7 ?#%"
        res = results(d.post("/v1/events", [event("a:b.c_d-1", tenant=tenant),
                                            event("a:b.c_d-1")], token=d.ing), 2, 0)
        v = check_verdict(res[0], tenant, "a:b.c_d-1")
        doc = stored(d, urllib.parse.quote(tenant, safe=""), "a:b.c_d-1")
        assert doc is not None and stored_seq(doc) == v["seq"], doc
        assert doc["event"]["tenant"] == tenant
        # the same id under another tenant is another event
        assert stored_seq(stored(d, "agency-a", "a:b.c_d-1")) == res[1]["seq"] != v["seq"]


# ---- authentication and authorisation ----

def test_401():
    with started() as d:
        e = event("auth-1")
        for headers in ({}, {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
                        {"Authorization": "Token " + d.ing}, {"Authorization": "Bearer"},
                        {"Authorization": "Bearer aupd_notarealtoken"},
                        {"Authorization": "Bearer " + d.ing[:-1]}):
            r = d.post("/v1/events", e, headers=headers)
            assert_problem(r, 401)
            assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r.headers
            r = d.get("/v1/events/agency-a/auth-1", headers=headers)
            assert_problem(r, 401)
        assert n_events(d) == 0
        # the scheme name is case-insensitive (RFC 9110)
        r = d.post("/v1/events", e, headers={"Authorization": "bearer " + d.ing})
        assert results(r, 1, 0)


def test_revoked_token_is_refused_at_once():
    with started() as d:
        tok = d.token("short-lived", "ingest")
        aud = d.token("short-lived-auditor", "auditor")
        conn = d.connect()
        results(d.post("/v1/events", event("rev-1"), token=tok, conn=conn), 1, 0)
        assert d.get("/v1/events/agency-a/rev-1", token=aud).status == 200
        cli("token", "revoke", "short-lived", config=d.config_path)
        # the very next request, even on the same keep-alive connection
        assert_problem(d.post("/v1/events", event("rev-2"), token=tok, conn=conn), 401)
        conn.close()
        assert_problem(d.post("/v1/events", event("rev-3"), token=tok), 401)
        cli("token", "revoke", "short-lived-auditor", config=d.config_path)
        assert_problem(d.get("/v1/events/agency-a/rev-1", token=aud), 401)
        assert stored(d, "agency-a", "rev-2") is None
        assert stored(d, "agency-a", "rev-3") is None
        # other tokens keep working
        results(d.post("/v1/events", event("rev-4"), token=d.ing), 1, 0)


def test_403_roles():
    with started() as d:
        results(d.post("/v1/events", event("role-1"), token=d.ing), 1, 0)
        r = d.get("/v1/events/agency-a/role-1", token=d.ing)
        assert_problem(r, 403)
        r = d.post("/v1/events", event("role-2"), token=d.aud)
        assert_problem(r, 403)
        # operators read (aupd token --help) but do not ingest
        op = d.token("operator-1", "operator")
        assert_problem(d.post("/v1/events", event("role-3"), token=op), 403)
        r = d.get("/v1/events/agency-a/role-1", token=op)
        assert r.status == 200 and r.json()["event"]["id"] == "role-1", r
        assert stored(d, "agency-a", "role-2") is None
        assert stored(d, "agency-a", "role-3") is None
        assert n_events(d) == 1


def test_tenant_bound_ingest_token():
    with started() as d:
        bound = d.token("ingest-a", "ingest", tenant="agency-a")
        res = results(d.post("/v1/events", [event("tb-1"), event("tb-2", tenant="agency-b"),
                                            event("tb-3")], token=bound), 2, 1)
        check_verdict(res[0], "agency-a", "tb-1")
        item_problem(res[1], 403, "/tenant", "agency-a")
        check_verdict(res[2], "agency-a", "tb-3")
        # a single foreign event: the bare 403 problem
        r = d.post("/v1/events", event("tb-4", tenant="agency-b"), token=bound)
        assert_problem(r, 403, None, "/tenant")
        # NDJSON as well
        res = results(d.post("/v1/events", ndjson([event("tb-5", tenant="agency-b")]),
                             token=bound, content_type=NDJSON), 0, 1)
        item_problem(res[0], 403, "/tenant")
        for id in ("tb-2", "tb-4", "tb-5"):
            assert stored(d, "agency-b", id) is None, id
        assert n_events(d) == 2


def test_tenant_bound_auditor_token():
    with started() as d:
        results(d.post("/v1/events", [event("ta-1"), event("ta-2", tenant="agency-b")],
                       token=d.ing), 2, 0)
        bound = d.token("auditor-a", "auditor", tenant="agency-a")
        r = d.get("/v1/events/agency-a/ta-1", token=bound)
        assert r.status == 200 and r.json()["event"]["id"] == "ta-1", r
        assert_problem(d.get("/v1/events/agency-b/ta-2", token=bound), 403)
        # whether or not the other tenant's event exists
        assert_problem(d.get("/v1/events/agency-b/nothing-here", token=bound), 403)
        assert_problem(d.get("/v1/events/agency-a/nothing-here", token=bound), 404)


def test_404_unknown_event():
    with started() as d:
        results(d.post("/v1/events", event("known"), token=d.ing), 1, 0)
        assert_problem(d.get("/v1/events/agency-a/unknown", token=d.aud), 404)
        assert_problem(d.get("/v1/events/agency-z/known", token=d.aud), 404)
        assert d.get("/v1/events/agency-a/known", token=d.aud).status == 200


# ---- limits and media types ----

def padded(id, size):
    """A valid event whose JSON encoding is exactly `size` bytes."""
    e = event(id, attributes={"pad": ""})
    e["attributes"]["pad"] = "p" * (size - len(json.dumps(e)))
    body = json.dumps(e)
    assert len(body) == size
    return body


def test_413_content_length():
    with started() as d:
        r = d.post("/v1/events", padded("big-1", 4097), token=d.ing,
                   content_type="application/json")
        assert_problem(r, 413)
        assert stored(d, "agency-a", "big-1") is None
        # exactly max_body is fine
        res = results(d.post("/v1/events", padded("big-2", 4096), token=d.ing,
                             content_type="application/json"), 1, 0)
        check_verdict(res[0], "agency-a", "big-2")
        # far over, in NDJSON
        r = d.post("/v1/events", ndjson([event("big-3", attributes={"p": "x" * 3000})] * 2),
                   token=d.ing, content_type=NDJSON)
        assert_problem(r, 413)
        assert stored(d, "agency-a", "big-3") is None
        assert d.get("/healthz").status == 200


def test_413_chunked():
    with started() as d:
        # a small chunked body is read whole
        body = json.dumps(event("ch-1")).encode()
        r = d.post_chunked("/v1/events", [body[:20], body[20:]], token=d.ing,
                           content_type="application/json")
        check_verdict(results(r, 1, 0)[0], "agency-a", "ch-1")
        # over max_body with no Content-Length: 413 while it arrives
        body = padded("ch-2", 6000).encode()
        chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        try:
            r = d.post_chunked("/v1/events", chunks, token=d.ing, content_type="application/json")
        except (OSError, ConnectionError) as e:
            raise AssertionError("no answer to a chunked body over limits.max_body: %r" % e)
        assert_problem(r, 413)
        assert stored(d, "agency-a", "ch-2") is None
        assert d.get("/healthz").status == 200


def test_413_batch_too_large():
    with started() as d:
        six = [event("bt-%d" % i) for i in range(6)]
        assert_problem(d.post("/v1/events", six, token=d.ing), 413, "max_batch")
        assert_problem(d.post("/v1/events", ndjson(six), token=d.ing, content_type=NDJSON), 413,
                       "max_batch")
        assert n_events(d) == 0
        res = results(d.post("/v1/events", six[:5], token=d.ing), 5, 0)
        assert [v["id"] for v in res] == ["bt-%d" % i for i in range(5)]
        assert n_events(d) == 5


def test_415_media_types():
    with started() as d:
        body = json.dumps(event("mt-1"))
        assert_problem(d.post("/v1/events", body, token=d.ing, content_type="text/plain"), 415)
        assert_problem(d.post("/v1/events", body, token=d.ing), 415)  # no Content-Type
        assert_problem(d.post("/v1/events", body, token=d.ing,
                              content_type="application/x-www-form-urlencoded"), 415)
        assert stored(d, "agency-a", "mt-1") is None
        res = results(d.post("/v1/events", body, token=d.ing,
                             content_type="application/json; charset=utf-8"), 1, 0)
        check_verdict(res[0], "agency-a", "mt-1")
        assert n_events(d) == 1


# ---- restart, tokens, and the ledger ----

def test_restart_keeps_events_chain_and_idempotency():
    with started() as d:
        acked = {}
        for i in range(4):
            res = results(d.post("/v1/events", [event("rs-%d-%d" % (i, j)) for j in range(5)],
                                 token=d.ing), 5, 0)
            acked.update({v["id"]: v["seq"] for v in res})
        assert d.verify().returncode == 0
        head = d.query("SELECT max(seq) FROM ledger")[0][0]
        assert d.query("SELECT count(*) FROM checkpoints")[0][0] >= 1
        assert d.stop() == 0
        assert d.verify().returncode == 0
        d.start()
        for id, seq in acked.items():
            doc = stored(d, "agency-a", id)
            assert doc is not None and stored_seq(doc) == seq, (id, seq, doc)
        res = results(d.post("/v1/events", [event("rs-0-0"), event("rs-new")], token=d.ing), 2, 0)
        check_verdict(res[0], "agency-a", "rs-0-0", duplicate=True)
        assert res[0]["seq"] == acked["rs-0-0"]
        check_verdict(res[1], "agency-a", "rs-new")
        assert res[1]["seq"] > head
        assert n_events(d) == len(acked) + 1
        assert d.stop() == 0
        p = d.verify()
        assert p.returncode == 0 and p.stdout.startswith("ok:"), p


def test_token_create_while_running_and_token_records():
    with started() as d:
        before = d.query("SELECT count(*) FROM ledger WHERE kind = 'token'")[0][0]
        assert before == 2  # the two tokens made by started()
        tok = d.token("late-ingest", "ingest", tenant="agency-a")
        assert re.fullmatch(r"\S{20,}", tok), tok
        results(d.post("/v1/events", event("late-1"), token=tok), 1, 0)
        results(d.post("/v1/events", event("late-2"), token=d.ing), 1, 0)
        cli("token", "revoke", "late-ingest", config=d.config_path)
        assert_problem(d.post("/v1/events", event("late-3"), token=tok), 401)
        rows = d.query("SELECT seq, tenant, body FROM ledger WHERE kind = 'token' ORDER BY seq")
        assert len(rows) == 4, rows
        docs = [json.loads(r[2]) for r in rows]
        assert [(x["action"], x["name"]) for x in docs] == [
            ("create", "ingest-1"), ("create", "auditor-1"), ("create", "late-ingest"),
            ("revoke", "late-ingest")], docs
        assert docs[0]["role"] == "ingest" and docs[1]["role"] == "auditor", docs
        assert rows[2][1] == "agency-a" and docs[2]["tenant"] == "agency-a", rows[2]
        # only hashes are stored: no secret is anywhere in the database files or the log
        files = [d.db_path + suffix for suffix in ("", "-wal")]
        data = b"".join(open(f, "rb").read() for f in files if os.path.exists(f))
        for secret in (tok, d.ing, d.aud):
            assert secret.encode() not in data
            assert secret not in d.log()
        # token list shows active tokens (never secrets); a name is unique while active
        out = cli("token", "list", config=d.config_path).stdout
        assert "ingest-1" in out and "auditor-1" in out and "late-ingest" not in out, out
        assert all(secret not in out for secret in (tok, d.ing, d.aud))
        out = cli("token", "list", "--all", config=d.config_path).stdout
        assert "late-ingest" in out, out
        p = cli("token", "create", "--name", "ingest-1", "--role", "ingest",
                config=d.config_path, check=False)
        assert p.returncode == 1 and p.stdout == "", p
        again = d.token("late-ingest", "auditor")
        assert again != tok
        r = d.get("/v1/events/agency-a/late-1", token=again)
        assert r.status == 200, r
        assert_problem(d.post("/v1/events", event("late-5"), token=tok), 401)
        # appends from the CLI and the daemon form one intact chain
        results(d.post("/v1/events", event("late-4"), token=d.ing), 1, 0)
        p = d.verify()
        assert p.returncode == 0, p.stderr
        seqs = [r[0] for r in d.query("SELECT seq FROM ledger ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1)), seqs


def test_cli_while_running_leaves_the_daemon_writes_durable():
    # `aupd token create` (another process) runs while the daemon writes: an event
    # acknowledged afterwards is in the database file for every reader, and survives kill -9
    with started() as d:
        d.token("third", "ingest")
        v = check_verdict(results(d.post("/v1/events", event("cli-1"), token=d.ing), 1, 0)[0],
                          "agency-a", "cli-1")
        rows = d.query("SELECT kind, tenant FROM ledger WHERE seq = ?", (v["seq"],))
        assert rows == [("verdict", "agency-a")], (v["seq"], rows)
        p = d.verify()
        assert "seq 1..%d" % v["seq"] in p.stdout, (v["seq"], p.stdout)
        d.kill9()
        d.start()
        doc = stored(d, "agency-a", "cli-1")
        assert doc is not None and stored_seq(doc) == v["seq"], (v, doc)
        assert d.verify().returncode == 0


# ---- a crash mid-stream ----

KILL_CONFIG = "checkpoint: {every: 500}\n"


class Poster(threading.Thread):
    """Posts events in a loop (singles and batches of 50); records each (tenant, id) answered 2xx.

    A short pause between requests keeps the acknowledged set small enough to check
    every event over the API afterwards.
    """

    def __init__(self, d, token, name, stop):
        super().__init__(daemon=True)
        self.d, self.token, self.tag, self.stop = d, token, name, stop
        self.acked = {}
        self.n = 0
        self.unexpected = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            batch = self.n % 2 == 1
            events = [event("%s-%d" % (self.tag, self.n * 100 + i),
                            tenant="agency-%d" % (i % 3)) for i in range(50 if batch else 1)]
            self.n += 1
            try:
                conn = conn or self.d.connect(timeout=10)
                r = self.d.post("/v1/events", events if batch else events[0], token=self.token,
                                conn=conn)
            except Exception:
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.01)
                continue
            if 200 <= r.status < 300:
                for v in r.json()["results"]:
                    self.acked[(v["tenant"], v["id"])] = v["seq"]
            elif r.status != 503:
                self.unexpected.append(r)
            time.sleep(0.01)
        if conn:
            conn.close()


def get_all(d, items, failures):
    conn = d.connect()
    try:
        for (tenant, id), seq in items:
            r = d.get("/v1/events/%s/%s" % (tenant, id), token=d.aud, conn=conn)
            if r.status != 200 or stored_seq(r.json()) != seq:
                failures.append((tenant, id, seq, r))
    except Exception as e:
        failures.append(e)
    finally:
        conn.close()


def check_acked(d, all_acked, new_acked):
    """Every acknowledged event is stored at the seq it was acknowledged with."""
    rows = dict(((t, i), s) for t, i, s in d.query("SELECT tenant, id, seq FROM events"))
    lost = [(k, s) for k, s in all_acked.items() if rows.get(k) != s]
    assert not lost, "%d acknowledged events lost or moved, e.g. %r" % (len(lost), lost[:5])
    # and the API serves each one acknowledged in this run (three connections in parallel)
    items = sorted(new_acked.items())
    failures = []
    workers = [threading.Thread(target=get_all, args=(d, items[i::3], failures))
               for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, "%d lookups failed, e.g. %r" % (len(failures), failures[:3])


def test_verify_while_the_daemon_writes():
    # contract: aupd verify --db is safe while the daemon runs
    with started(config=KILL_CONFIG) as d:
        stop = threading.Event()
        posters = [Poster(d, d.ing, "vw%d" % t, stop) for t in range(2)]
        for p in posters:
            p.start()
        try:
            for _ in range(5):
                p = d.verify(check=False)
                assert p.returncode == 0 and p.stdout.startswith("ok:"), (p.stdout, p.stderr)
                time.sleep(0.2)
        finally:
            stop.set()
            for t in posters:
                t.join(timeout=60 * SLOW)
        assert all(not t.unexpected for t in posters), [t.unexpected[:3] for t in posters]
        assert sum(len(t.acked) for t in posters) > 0
        assert d.stop() == 0
        assert d.verify().returncode == 0


def test_kill_9_mid_stream_loses_no_acknowledged_event():
    with started(config=KILL_CONFIG) as d:
        acked = {}
        for cycle in range(3):
            stop = threading.Event()
            posters = [Poster(d, d.ing, "k%d%d" % (cycle, t), stop) for t in range(3)]
            for p in posters:
                p.start()
            # let the stream run, then kill the daemon while requests are in flight
            deadline = time.time() + 30 * SLOW
            time.sleep(2)
            while sum(len(p.acked) for p in posters) == 0 and time.time() < deadline:
                time.sleep(0.1)
            d.kill9()
            stop.set()
            new = {}
            for p in posters:
                p.join(timeout=60 * SLOW)
                assert not p.is_alive()
                assert not p.unexpected, p.unexpected[:3]
                new.update(p.acked)
            assert new, "nothing was acknowledged"
            acked.update(new)
            d.start()
            check_acked(d, acked, new)
            p = d.verify()
            assert p.returncode == 0, "cycle %d: %s" % (cycle, p.stderr)
            distinct = d.query("SELECT count(*) FROM (SELECT DISTINCT tenant, id FROM events)")[0][0]
            assert n_events(d) == distinct, (n_events(d), distinct)
            assert n_events(d) >= len(acked)
        # and the daemon still takes events after three crashes
        results(d.post("/v1/events", event("after-crashes"), token=d.ing), 1, 0)
        assert d.stop() == 0
        assert d.verify().returncode == 0


run(globals())
