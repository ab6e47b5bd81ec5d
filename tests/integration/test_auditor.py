"""The auditor API (issue 6, item 9): verdict filters alone and combined, limits and
paging under concurrent ingest, tenant scoping on every endpoint, required and
recorded justifications, CSV quoting, the summary report, /metrics, and
`aupd verify --url` against an intact and a tampered ledger."""

import csv
import io
import json
import os
import re
import socket
import sqlite3
import threading
import time
import warnings
from collections import Counter

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import SLOW, Daemon, assert_problem, cli, event, run, write

RULES = """version: 1
rules:
  - id: no-face-search
    severity: high
    effect: deny
    when: {action: face.search}
  - id: flag-export
    severity: medium
    effect: flag
    when: {action: data.export}
  - id: watch-night-shift
    mode: shadow
    effect: deny
    when: {actor: night-analyst}
escalations:
  - id: denials
    when: {verdict: deny}
    threshold: {count: 3, by: [tenant], window: 1h}
    level: warning
    cooldown: 1h
"""

TENANTS = ("tenant-alpha", "tenant-bravo")
ACTORS = ("day-analyst", "night-analyst", "auditor-x")
ACTIONS = ("face.search", "data.export", "data.read")
VERDICT_OF = {"face.search": "deny", "data.export": "flag", "data.read": "allow"}
FILTERS = ("tenant", "actor", "action", "rule", "verdict", "since", "until")


def rules_of(e):
    """The rules (enforcing or shadow) that match an event of the stream."""
    r = []
    if e["action"] == "face.search":
        r.append("no-face-search")
    if e["action"] == "data.export":
        r.append("flag-export")
    if e["actor"] == "night-analyst":
        r.append("watch-night-shift")
    return r


def stream():
    """36 events over three days, two tenants, three actors and three actions; each
    combination of tenant, actor and action occurs twice, at different times."""
    out = []
    for i in range(36):
        day = 14 + i // 12
        e = event("s-%03d" % i, tenant=TENANTS[i % 2], actor=ACTORS[(i // 2) % 3],
                  action=ACTIONS[(i // 6) % 3],
                  time="2026-01-%02dT%02d:%02d:00Z" % (day, 2 * (i % 12), i))
        out.append(e)
    return out


class Setup:
    """A daemon with RULES, tokens ing, aud, op, and the stream posted (self.stream[i]["seq"])."""

    def __init__(self, config="", post_stream=True, rules=RULES):
        self.d = Daemon(config=config)
        try:
            write(os.path.join(self.d.tmp, "rules", "rules.yaml"), rules)
            self.d.start()
            self.ing = self.d.token("ingest-1", "ingest")
            self.aud = self.d.token("auditor-1", "auditor")
            self.op = self.d.token("operator-1", "operator")
            self.stream = []
            if post_stream:
                self.stream = stream()
                r = self.d.post("/v1/events", self.stream, token=self.ing)
                assert r.status == 200 and r.json()["accepted"] == 36, r
                for e, v in zip(self.stream, r.json()["results"]):
                    assert v["verdict"] == VERDICT_OF[e["action"]], (e, v)
                    e["seq"] = v["seq"]
        except BaseException:
            self.d.cleanup()
            raise

    def get(self, path, token=None, **kw):
        return self.d.get(path, token=token or self.aud, **kw)

    def verdicts(self, query, token=None):
        r = self.get("/v1/verdicts?" + query, token=token)
        assert r.status == 200, (query, r)
        doc = r.json()
        assert set(doc) == {"items", "next_cursor"}, doc
        return doc

    def seqs(self, query, token=None):
        doc = self.verdicts(query + ("&" if query else "") + "limit=1000", token=token)
        assert doc["next_cursor"] is None, doc
        return [it["seq"] for it in doc["items"]]

    def audit_log(self, token=None, headers=None):
        r = self.get("/v1/audit/log", token=token, headers=headers)
        assert r.status == 200, r
        return [json.loads(line) for line in r.body.decode().splitlines()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.d.cleanup()


def expected(events, **f):
    """Seqs of the stream's events that a verdicts query with filters f should answer."""
    out = []
    for e in events:
        if "tenant" in f and e["tenant"] != f["tenant"]:
            continue
        if "actor" in f and e["actor"] != f["actor"]:
            continue
        if "action" in f and e["action"] != f["action"]:
            continue
        if "verdict" in f and VERDICT_OF[e["action"]] != f["verdict"]:
            continue
        if "rule" in f and f["rule"] not in rules_of(e):
            continue
        # since inclusive, until exclusive, on the event's own time
        if "since" in f and e["time"] < f["since"]:
            continue
        if "until" in f and e["time"] >= f["until"]:
            continue
        out.append(e["seq"])
    return out


def qs(f):
    return "&".join("%s=%s" % kv for kv in f.items())


# ---- verdict queries ----

def test_each_filter_alone_and_combined():
    with Setup() as s:
        ev = s.stream
        assert s.seqs("") == [e["seq"] for e in ev]
        values = {
            "tenant": TENANTS + ("nobody",),
            "actor": ACTORS + ("nobody",),
            "action": ACTIONS + ("data.delete",),
            "rule": ("no-face-search", "flag-export", "watch-night-shift", "no-such-rule"),
            "verdict": ("allow", "flag", "deny"),
            # exact event times: since takes the event at its time, until leaves it out
            "since": (ev[7]["time"], ev[30]["time"], "2026-01-14T00:00:00Z",
                      "2027-01-01T00:00:00Z"),
            "until": (ev[7]["time"], ev[30]["time"], "2026-01-14T00:00:00Z",
                      "2027-01-01T00:00:00Z"),
        }
        for name in FILTERS:
            for v in values[name]:
                got = s.seqs("%s=%s" % (name, v))
                want = expected(ev, **{name: v})
                assert got == want, (name, v, got, want)
        # a filter on the time of the event, not of the decision: all were decided now
        assert s.seqs("since=" + ev[12]["time"]) == [e["seq"] for e in ev[12:]]
        assert s.seqs("until=" + ev[12]["time"]) == [e["seq"] for e in ev[:12]]
        # an offset other than Z means the same instant
        assert s.seqs("since=2026-01-15T01:00:00%2B01:00") == \
            expected(ev, since="2026-01-15T00:00:00Z")

        combos = [
            {"tenant": "tenant-alpha", "actor": "night-analyst"},
            {"tenant": "tenant-bravo", "action": "face.search", "verdict": "deny"},
            {"rule": "no-face-search", "tenant": "tenant-alpha"},
            {"rule": "watch-night-shift", "verdict": "flag"},
            {"rule": "flag-export", "since": ev[10]["time"], "until": ev[30]["time"]},
            {"verdict": "allow", "actor": "auditor-x", "since": ev[5]["time"]},
            {"action": "data.read", "until": ev[33]["time"], "tenant": "tenant-alpha"},
            {"verdict": "deny", "action": "data.read"},  # contradictory: nothing
            {"tenant": "tenant-bravo", "actor": "night-analyst", "action": "face.search",
             "rule": "watch-night-shift", "verdict": "deny", "since": ev[0]["time"],
             "until": "2026-01-16T12:00:00Z"},
        ]
        for f in combos:
            got, want = s.seqs(qs(f)), expected(ev, **f)
            assert got == want, (f, got, want)
        # the combined queries are not all empty or all full: they test something
        assert all(0 < len(expected(ev, **f)) < 36 for f in combos[:7] + combos[8:]), combos

        # items are verdict documents with their event
        it = s.verdicts("tenant=tenant-alpha&limit=1")["items"][0]
        e = ev[0]
        assert it["seq"] == e["seq"] and it["id"] == e["id"] and it["tenant"] == e["tenant"], it
        for k in ("verdict", "matched", "rules_version", "decided_at"):
            assert k in it, it
        assert {k: it["event"][k] for k in e if k != "seq"} == \
            {k: v for k, v in e.items() if k != "seq"}, it["event"]

        for bad in ("verdict=maybe", "since=2026-13-01T00:00:00Z", "until=noon",
                    "cursor=%21%21"):
            assert_problem(s.get("/v1/verdicts?" + bad), 400)


def test_limit_bounds_and_default():
    with Setup(post_stream=False) as s:
        evs = [event("l-%03d" % i, action="data.read") for i in range(105)]
        r = s.d.post("/v1/events", evs, token=s.ing)
        assert r.status == 200 and r.json()["accepted"] == 105, r
        seqs = [v["seq"] for v in r.json()["results"]]
        doc = s.verdicts("")
        assert len(doc["items"]) == 100 and doc["next_cursor"], len(doc["items"])
        assert [it["seq"] for it in doc["items"]] == seqs[:100]
        rest = s.verdicts("cursor=" + doc["next_cursor"])
        assert [it["seq"] for it in rest["items"]] == seqs[100:], rest
        assert rest["next_cursor"] is None
        assert len(s.verdicts("limit=1000")["items"]) == 105
        assert len(s.verdicts("limit=1")["items"]) == 1
        for bad in ("0", "1001", "-1", "ten", ""):
            doc = assert_problem(s.get("/v1/verdicts?limit=" + bad), 400)
        assert "limit" in doc["detail"], doc


def test_unknown_query_parameter_is_400_with_a_suggestion():
    with Setup(post_stream=False) as s:
        for path, bad, good in (("/v1/verdicts", "tenat", "tenant"),
                                ("/v1/verdicts", "untill", "until"),
                                ("/v1/reports/summary", "sinse", "since"),
                                ("/v1/alerts", "escalaton", "escalation"),
                                ("/v1/audit/log", "form", "from")):
            doc = assert_problem(s.get("%s?%s=x" % (path, bad)), 400)
            assert bad in doc["detail"] and "did you mean '%s'" % good in doc["detail"], doc


def test_paging_under_concurrent_ingest():
    with Setup(post_stream=False) as s:
        r = s.d.post("/v1/events", [event("p-%03d" % i) for i in range(40)], token=s.ing)
        assert r.status == 200, r
        before = [v["seq"] for v in r.json()["results"]]
        accepted = list(before)
        lock = threading.Lock()
        posted = threading.Semaphore(0)
        errors = []

        def ingest():
            # posts while the pages are read, 1 or 2 events at a time, 120 in all
            try:
                n = 0
                while n < 120:
                    batch = [event("q-%03d" % (n + k)) for k in range(1 + n % 2)]
                    n += len(batch)
                    resp = s.d.post("/v1/events", batch, token=s.ing)
                    assert resp.status == 200, resp
                    with lock:
                        accepted.extend(v["seq"] for v in resp.json()["results"])
                    posted.release()
            except BaseException as e:  # reported by the main thread
                errors.append(e)
                posted.release()

        t = threading.Thread(target=ingest)
        union, cursor, n_pages = [], None, 0
        t.start()
        try:
            while True:
                if n_pages == 2:
                    # ingest has stored something since paging began: later pages see it
                    assert posted.acquire(timeout=60 * SLOW), "ingest made no progress"
                r = s.get("/v1/verdicts?limit=7" + ("&cursor=" + cursor if cursor else ""))
                assert r.status == 200, r
                doc = r.json()
                assert len(doc["items"]) <= 7
                union += [it["seq"] for it in doc["items"]]
                n_pages += 1
                cursor = doc["next_cursor"]
                if cursor is None:
                    break
                assert n_pages < 1000, "paging does not end"
        finally:
            t.join()
        assert not errors, errors
        assert len(union) == len(set(union)), "repeated: %r" % [
            q for q, c in Counter(union).items() if c > 1]
        assert union == sorted(union), union
        assert union[:len(before)] == before, "a page skipped events that existed at the start"
        newer = union[len(before):]
        assert newer, "no event stored during paging was paged"
        # no gaps: every accepted event up to the last one paged was paged
        with lock:
            acc = sorted(accepted)
        assert set(newer) <= set(acc), "paged a seq that is no accepted event"
        assert [q for q in acc if q <= union[-1]] == union, "a gap in the pages"
        # and nothing accepted is missing once ingest has stopped
        everything = s.seqs("")
        assert everything == acc, "an accepted event is missing from the verdicts"


def test_tenant_pages_cross_epochs():
    """Queries by tenant seek their indexes one epoch (16384 records) at a time: a sparse
    tenant's pages, with and without a rule, run across epochs in seq order with no gap
    and nothing repeated, past an epoch where it has nothing, and its summary counts
    every epoch."""
    # without the escalation, whose alert records would take seqs between the events
    with Setup(post_stream=False, rules=RULES.split("escalations:")[0]) as s:
        alpha = []
        for b in range(10):  # 50000 events: epochs 0 to 3
            evs = []
            for i in range(5000):
                k = b * 5000 + i
                # tenant-alpha now and then in epochs 0 and 3, a run across the boundary
                # of epochs 0 and 1, and nothing in epoch 2 (seqs 32768 to 49151)
                t = "tenant-alpha" if (k % 997 == 0 and (k < 16000 or k >= 49500)) or \
                    16370 <= k <= 16400 else "tenant-bravo"
                evs.append(event("x-%05d" % k, tenant=t, action=ACTIONS[k % 3],
                                 actor=ACTORS[k % 2]))
            r = s.d.post("/v1/events", evs, token=s.ing)
            assert r.status == 200 and r.json()["accepted"] == 5000, r
            for e, v in zip(evs, r.json()["results"]):
                e["seq"] = v["seq"]
                if e["tenant"] == "tenant-alpha":
                    alpha.append(e)
        epochs = Counter(e["seq"] >> 14 for e in alpha)
        assert epochs[0] and epochs[1] and not epochs[2] and epochs[3], epochs

        def paged(query, limit):
            out, cursor = [], None
            while True:
                doc = s.verdicts(query + "&limit=%d" % limit +
                                 ("&cursor=" + cursor if cursor else ""))
                assert len(doc["items"]) <= limit, doc
                out += [it["seq"] for it in doc["items"]]
                cursor = doc["next_cursor"]
                if cursor is None:
                    return out
                assert len(out) < 50000, "paging does not end"

        want = [e["seq"] for e in alpha]
        for limit in (1, 7, 1000):
            assert paged("tenant=tenant-alpha", limit) == want, limit
        want_rule = [e["seq"] for e in alpha if "no-face-search" in rules_of(e)]
        assert want_rule and paged("tenant=tenant-alpha&rule=no-face-search", 3) == want_rule
        want_night = [e["seq"] for e in alpha if "watch-night-shift" in rules_of(e)]
        assert paged("tenant=tenant-alpha&rule=watch-night-shift&action=data.export", 2) == [
            e["seq"] for e in alpha
            if e["action"] == "data.export" and e["seq"] in want_night]
        # a cursor in the second epoch starts there; one in the empty third goes on to the fourth
        for cur in (16384, 40000):
            doc = s.verdicts("tenant=tenant-alpha&limit=1000&cursor=c%x" % cur)
            assert [it["seq"] for it in doc["items"]] == [q for q in want if q > cur], doc
        assert s.verdicts("tenant=nobody")["items"] == []
        # a cursor past everything (the largest one there is) is an empty last page
        doc = s.verdicts("tenant=tenant-alpha&cursor=c7fffffffffffffff")
        assert doc == {"items": [], "next_cursor": None}, doc

        doc = s.get("/v1/reports/summary?tenant=tenant-alpha").json()
        assert doc["total"] == len(alpha), doc
        assert doc["by_verdict"] == {v: sum(VERDICT_OF[e["action"]] == v for e in alpha)
                                     for v in ("allow", "flag", "deny")}, doc
        assert doc["by_rule"] == dict(Counter(r for e in alpha for r in rules_of(e))), doc
        doc = s.get("/v1/reports/summary").json()
        assert doc["total"] == 50000, doc


# ---- tenant scoping ----

def test_scoping_on_every_endpoint():
    with Setup() as s:
        alpha = [e for e in s.stream if e["tenant"] == "tenant-alpha"]
        bravo = [e for e in s.stream if e["tenant"] == "tenant-bravo"]
        # an alert for each tenant (3 denials within an hour)
        for t in TENANTS:
            evs = [event("al-%s-%d" % (t, i), tenant=t, time="2026-01-20T10:0%d:00Z" % i)
                   for i in range(3)]
            r = s.d.post("/v1/events", evs, token=s.ing)
            assert r.status == 200, r
            (alpha if t == "tenant-alpha" else bravo).extend(
                dict(e, seq=v["seq"]) for e, v in zip(evs, r.json()["results"]))
        alerts = s.get("/v1/alerts").json()["items"]
        assert [a["tenant"] for a in alerts] == list(TENANTS), alerts
        a_alert, b_alert = alerts
        tok = s.d.token("auditor-bravo", "auditor", tenant="tenant-bravo")

        # events
        assert_problem(s.get("/v1/events/tenant-alpha/%s" % alpha[0]["id"], token=tok), 403)
        r = s.get("/v1/events/tenant-bravo/%s" % bravo[0]["id"], token=tok)
        assert r.status == 200, r
        # verdicts
        assert_problem(s.get("/v1/verdicts?tenant=tenant-alpha", token=tok), 403)
        assert s.seqs("", token=tok) == [e["seq"] for e in bravo]
        assert s.seqs("tenant=tenant-bravo", token=tok) == [e["seq"] for e in bravo]
        assert s.seqs("rule=no-face-search", token=tok) == \
            [e["seq"] for e in bravo if "no-face-search" in rules_of(e)]
        r = s.get("/v1/verdicts", token=tok, headers={"Accept": "text/csv"})
        assert r.status == 200 and b"tenant-alpha" not in r.body, r
        # summary
        doc = s.get("/v1/reports/summary", token=tok).json()
        assert doc["tenant"] == "tenant-bravo" and doc["total"] == len(bravo), doc
        assert_problem(s.get("/v1/reports/summary?tenant=tenant-alpha", token=tok), 403)
        # alerts
        r = s.get("/v1/alerts", token=tok)
        assert [a["id"] for a in r.json()["items"]] == [b_alert["id"]], r
        assert_problem(s.get("/v1/alerts?tenant=tenant-alpha", token=tok), 403)
        assert_problem(s.get("/v1/alerts/" + a_alert["id"], token=tok), 403, "tenant-bravo")
        assert s.get("/v1/alerts/" + b_alert["id"], token=tok).status == 200
        # the audit log: its own records whole, the others' only seq and hash
        r = s.get("/v1/audit/log", token=tok)
        assert r.status == 200, r
        # (its own access records name what it asked for, tenant-alpha included)
        for line in r.body.decode().splitlines():
            if "tenant-alpha" in line:
                doc = json.loads(line)
                assert doc.get("kind") == "access" and doc.get("tenant") == "tenant-bravo", line
                assert json.loads(doc["body"])["token"] == "auditor-bravo", line
        for e in alpha:
            assert ('"%s"' % e["id"]).encode() not in r.body, e["id"]
        lines = [json.loads(x) for x in r.body.decode().splitlines()]
        assert lines[0]["log"]["redacted"] is True, lines[0]
        records = [x for x in lines[1:] if "seq" in x]
        assert [x["seq"] for x in records] == list(range(1, len(records) + 1))
        own = set()
        for x in records:
            if x.get("redacted"):
                assert set(x) == {"seq", "hash", "redacted"}, x
            else:
                assert x["tenant"] == "tenant-bravo", x
                own.add(x["seq"])
        assert {e["seq"] for e in bravo} <= own, "its own verdicts are redacted"
        assert {e["seq"] for e in alpha}.isdisjoint(own)
        assert b_alert["opened_seq"] in own and a_alert["opened_seq"] not in own
        # ... and the chain still verifies through the redacted records
        p = cli("verify", "--url", "https://127.0.0.1:%d" % s.d.port, "--token", tok,
                "--key", s.d.pubkey_path, "--cacert", s.d.cert_path, check=False)
        assert p.returncode == 0, p.stderr
        assert "other tenants" in p.stdout, p.stdout
        # the head and the metrics name no tenant
        r = s.get("/v1/audit/head", token=tok)
        assert r.status == 200 and set(r.json()) >= {"seq", "hash", "checkpoint"}, r
        assert b"tenant-alpha" not in r.body
        r = s.get("/metrics", token=tok)
        assert r.status == 200 and b"tenant-alpha" not in r.body, r
        # an unscoped auditor sees both
        assert s.seqs("") == sorted(e["seq"] for e in alpha + bravo)


# ---- the access audit ----

def access_records(d):
    con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True, timeout=30)
    try:
        rows = con.execute("SELECT seq, tenant, body FROM ledger WHERE kind = 'access' "
                           "ORDER BY seq").fetchall()
    finally:
        con.close()
    return [(seq, tenant, json.loads(body)) for seq, tenant, body in rows]


def test_justification_required_and_recorded():
    with Setup(config="audit: {require_justification: true}\n") as s:
        n0 = len(access_records(s.d))
        doc = assert_problem(s.get("/v1/verdicts?tenant=tenant-alpha&limit=5"), 428)
        assert "X-Justification" in doc["detail"], doc
        assert_problem(s.get("/v1/verdicts", headers={"X-Justification": ""}), 428)
        assert_problem(s.get("/v1/alerts", token=s.op), 428)
        assert_problem(s.d.post("/v1/alerts/alert-1/ack", {"note": "x"}, token=s.op), 428)
        # ingest tokens are not asked
        r = s.d.post("/v1/events", event("j-1", action="data.read"), token=s.ing)
        assert r.status == 200, r

        why = 'case 4711, warrant "12"'
        r = s.get("/v1/verdicts?tenant=tenant-alpha&limit=5", headers={"X-Justification": why})
        assert r.status == 200 and len(r.json()["items"]) == 5, r
        # recorded before the answer came: the record is on disk now
        recs = access_records(s.d)
        last = recs[-1][2]
        assert last["token"] == "auditor-1" and last["method"] == "GET", last
        assert last["target"] == "/v1/verdicts?tenant=tenant-alpha&limit=5", last
        assert last["status"] == 200 and last["justification"] == why, last
        assert last["role"] == "auditor", last

        # the refused requests are recorded too, with their status
        def refused():
            return [b for _, _, b in access_records(s.d)[n0:] if b["status"] == 428]
        deadline = time.time() + 30 * SLOW
        while len(refused()) < 4 and time.time() < deadline:
            time.sleep(0.1)
        got = refused()
        assert len(got) == 4, got
        assert got[0]["target"] == "/v1/verdicts?tenant=tenant-alpha&limit=5", got
        assert "justification" not in got[0], got[0]
        assert {b["token"] for b in got} == {"auditor-1", "operator-1"}, got
        assert {(b["method"], b["target"]) for b in got if b["token"] == "operator-1"} == {
            ("GET", "/v1/alerts"), ("POST", "/v1/alerts/alert-1/ack")}, got
        # no ingest request is an access record
        assert all(b["token"] != "ingest-1" for _, _, b in access_records(s.d)), recs

        # the same record as an outside auditor reads it
        lines = s.audit_log(headers={"X-Justification": "yearly review"})
        acc = [json.loads(x["body"]) for x in lines if x.get("kind") == "access"]
        assert any(b.get("justification") == why and b["status"] == 200 for b in acc), acc


def test_access_records_of_a_scoped_token_and_without_the_setting():
    with Setup() as s:
        # without audit.require_justification the header is optional and kept when sent
        assert s.get("/v1/rules").status == 200
        r = s.get("/v1/reports/summary?tenant=tenant-bravo",
                  headers={"X-Justification": "quarterly report"})
        assert r.status == 200, r
        recs = access_records(s.d)
        a, b = recs[-2][2], recs[-1][2]
        assert a["target"] == "/v1/rules" and "justification" not in a, a
        assert b["target"] == "/v1/reports/summary?tenant=tenant-bravo", b
        assert b["justification"] == "quarterly report" and b["status"] == 200, b
        # a tenant-bound token's access is its tenant's record
        tok = s.d.token("auditor-bravo", "auditor", tenant="tenant-bravo")
        assert s.get("/v1/alerts", token=tok).status == 200
        seq, tenant, body = access_records(s.d)[-1]
        assert body["token"] == "auditor-bravo" and tenant == "tenant-bravo", (tenant, body)


def test_unknown_paths_and_wrong_methods_are_recorded():
    with Setup() as s:
        n0 = len(access_records(s.d))
        assert_problem(s.get("/v1/nothing-here?x=1", headers={"X-Justification": "probe"}), 404)
        assert_problem(s.d.request("DELETE", "/v1/verdicts", token=s.op), 405)
        assert_problem(s.get("/v1/%zz"), 400)
        # an ingest token, no token and an unknown token are not recorded
        assert_problem(s.get("/v1/nothing-here", token=s.ing), 404)
        assert_problem(s.d.get("/v1/nothing-here", token=None), 404)
        assert_problem(s.d.get("/v1/nothing-here", token="not-a-token"), 404)

        def recorded():
            return [b for _, _, b in access_records(s.d)[n0:]]
        deadline = time.time() + 30 * SLOW
        while len(recorded()) < 3 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        got = recorded()
        assert [(b["token"], b["method"], b["target"], b["status"]) for b in got] == [
            ("auditor-1", "GET", "/v1/nothing-here?x=1", 404),
            ("operator-1", "DELETE", "/v1/verdicts", 405),
            ("auditor-1", "GET", "/v1/%zz", 400)], got
        assert got[0]["justification"] == "probe", got


def test_unknown_paths_need_a_justification_when_asked():
    with Setup(config="audit: {require_justification: true}\n", post_stream=False) as s:
        assert_problem(s.get("/v1/nothing-here"), 428)
        assert_problem(s.get("/v1/nothing-here", headers={"X-Justification": "probe"}), 404)
        # without a valid token an unknown path is 404 as for anyone
        assert_problem(s.d.get("/v1/nothing-here", token=None), 404)


def test_rate_limit_per_token():
    with Setup(config="limits: {rate_per_token: 1, rate_burst: 2}\n",
               post_stream=False) as s:
        # 1 request a second with a burst of 2: a quick run of requests meets a 429
        # (the loop allows 30 tries, far more than a second's worth of refill)
        seen = []
        for _ in range(30):
            r = s.get("/v1/rules")
            seen.append(r.status)
            if r.status == 429:
                break
        assert seen[-1] == 429 and set(seen[:-1]) == {200} and len(seen) >= 3, seen
        doc = assert_problem(r, 429)
        assert "auditor-1" in doc["detail"], doc
        retry = r.header("Retry-After")
        assert retry and retry.isdigit() and int(retry) >= 1, r.headers
        # per token: another token still has its burst
        assert s.get("/v1/rules", token=s.op).status == 200
        # requests to unknown paths count too: the operator's burst of 2 is spent
        seen = [s.get("/v1/nothing-here", token=s.op).status for _ in range(30)]
        assert seen[0] == 404 and 429 in seen[:3], seen


# ---- CSV ----

def test_csv_quoting():
    # Which CSV fields can carry which characters: the verdict CSV's columns come from
    # the event (tenant, id, time, actor, action, purpose, resource id and dataset) and
    # from rule ids.  id, action, time and rule ids allow neither commas nor quotes;
    # tenant, actor, purpose and resource values are printable text, so they can hold
    # commas and quotes but no control characters: CR and LF are refused at ingest
    # (checked below), so no field can carry a line break into the CSV.
    with Setup(post_stream=False) as s:
        odd = [
            event("c-1", tenant="t,1", actor='a,"b"', purpose='x, "y"',
                  resource={"id": 'blob://p/1,2"3"', "dataset": "ds,1"}),
            event("c-2", tenant="t,1", actor='"', purpose=",", action="data.read"),
            event("c-3", tenant="t,1", actor="plain", purpose="caf\u00e9 \u2013 r\u00e9sum\u00e9",
                  action="data.export"),
        ]
        r = s.d.post("/v1/events", odd, token=s.ing)
        assert r.status == 200 and r.json()["accepted"] == 3, r
        for field, value, pointer in (("actor", "a\nb", "/actor"),
                                      ("purpose", "x\r\ny", "/purpose"),
                                      ("tenant", "t\r1", "/tenant"),
                                      ("resource", {"id": "a\nb"}, "/resource/id")):
            resp = s.d.post("/v1/events", event("nl", **{field: value}), token=s.ing)
            assert_problem(resp, 400, pointer=pointer)

        r = s.get("/v1/verdicts?tenant=t%2C1", headers={"Accept": "text/csv"})
        assert r.status == 200, r
        assert (r.header("Content-Type") or "").startswith("text/csv"), r.headers
        text = r.body.decode()
        assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), repr(text)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        header = rows[0]
        for col in ("seq", "tenant", "id", "time", "actor", "action", "purpose", "verdict"):
            assert col in header, header
        js = s.verdicts("tenant=t%2C1")["items"]
        assert len(rows) == 1 + len(js) == 4, rows
        for row, it in zip(rows[1:], js):
            assert len(row) == len(header), row
            rec = dict(zip(header, row))
            ev = it["event"]
            assert int(rec["seq"]) == it["seq"] and rec["id"] == it["id"], rec
            assert rec["tenant"] == "t,1" and rec["actor"] == ev["actor"], rec
            assert rec["purpose"] == ev["purpose"] and rec["verdict"] == it["verdict"], rec
            assert rec["time"] == ev["time"] and rec["action"] == ev["action"], rec
        rec = dict(zip(header, rows[1]))
        assert 'blob://p/1,2"3"' in rec.values() and "ds,1" in rec.values(), rec
        # RFC 4180: a field with a comma or quote is quoted, inner quotes doubled
        for raw in ('"a,""b"""', '"x, ""y"""', '"blob://p/1,2""3"""', '"ds,1"', '"t,1"',
                    '""""', '","'):
            assert "," + raw + "," in text, (raw, text)

        # paged CSV: the cursor comes in X-Next-Cursor
        r = s.get("/v1/verdicts?tenant=t%2C1&limit=2", headers={"Accept": "text/csv"})
        rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
        assert len(rows) == 3 and r.header("X-Next-Cursor"), (rows, r.headers)
        r = s.get("/v1/verdicts?tenant=t%2C1&limit=2&cursor=" + r.header("X-Next-Cursor"),
                  headers={"Accept": "text/csv"})
        rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
        assert len(rows) == 2 and int(rows[1][0]) == js[2]["seq"], rows
        assert r.header("X-Next-Cursor") is None, r.headers


# ---- the summary report ----

def summary_of(events, tenant=None, since=None, until=None):
    sel = [e for e in events if (tenant is None or e["tenant"] == tenant)
           and (since is None or e["time"] >= since) and (until is None or e["time"] < until)]
    by_verdict = {"allow": 0, "flag": 0, "deny": 0}
    by_rule = Counter()
    days = {}
    for e in sel:
        v = VERDICT_OF[e["action"]]
        by_verdict[v] += 1
        by_rule.update(rules_of(e))
        d = days.setdefault(e["time"][:10], {"day": e["time"][:10], "total": 0, "allow": 0,
                                             "flag": 0, "deny": 0})
        d["total"] += 1
        d[v] += 1
    return {"total": len(sel), "by_verdict": by_verdict, "by_rule": dict(by_rule),
            "by_day": [days[k] for k in sorted(days)]}


def check_summary(doc, want):
    for k in ("total", "by_verdict", "by_rule", "by_day"):
        assert doc[k] == want[k], (k, doc[k], want[k])


def test_summary_report():
    with Setup() as s:
        ev = s.stream
        r = s.get("/v1/reports/summary")
        assert r.status == 200, r
        doc = r.json()
        assert doc["tenant"] is None, doc
        check_summary(doc, summary_of(ev))
        assert len(doc["by_day"]) == 3 and doc["total"] == 36

        doc = s.get("/v1/reports/summary?tenant=tenant-alpha").json()
        assert doc["tenant"] == "tenant-alpha", doc
        check_summary(doc, summary_of(ev, "tenant-alpha"))

        since, until = "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"
        doc = s.get("/v1/reports/summary?tenant=tenant-bravo&since=%s&until=%s" % (
            since, until)).json()
        want = summary_of(ev, "tenant-bravo", since, until)
        check_summary(doc, want)
        assert [d["day"] for d in doc["by_day"]] == ["2026-01-15"], doc
        assert doc["since"].startswith("2026-01-15T00:00:00") and \
            doc["until"].startswith("2026-01-16T00:00:00"), doc

        # an event exactly at since counts, one exactly at until does not
        doc = s.get("/v1/reports/summary?since=%s&until=%s" % (ev[5]["time"], ev[9]["time"])
                    ).json()
        check_summary(doc, summary_of(ev, since=ev[5]["time"], until=ev[9]["time"]))
        assert doc["total"] == 4, doc

        doc = s.get("/v1/reports/summary?tenant=nobody").json()
        assert doc["total"] == 0 and doc["by_rule"] == {} and doc["by_day"] == [], doc
        assert doc["by_verdict"] == {"allow": 0, "flag": 0, "deny": 0}, doc
        assert_problem(s.get("/v1/reports/summary?since=tomorrow"), 400)


# ---- /metrics ----

def metrics(s):
    r = s.get("/metrics")
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").startswith("text/plain"), r.headers
    out, typed = {}, set()
    for line in r.body.decode().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN)', line)
        assert m, "not Prometheus text: %r" % line
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "no TYPE for %s" % name
        out[name + (m.group(2) or "")] = float(m.group(3))
    return out


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_metrics():
    with Setup(post_stream=False) as s:
        # a notifier nobody listens on: its deliveries stay in the backlog
        secret = os.path.join(s.d.tmp, "hook.secret")
        write(secret, "metrics-test-secret\n")
        s.d.stop()
        s.d.write_config("notifiers:\n  hook:\n    url: https://127.0.0.1:%d/hook\n"
                         "    secret_file: %s\n    timeout: 2s\n" % (free_port(), secret))
        write(os.path.join(s.d.tmp, "rules", "rules.yaml"),
              RULES.replace("cooldown: 1h", "cooldown: 1h\n    notify: [hook]"))
        s.d.start()

        m0 = metrics(s)
        for k in ('aupd_events_accepted_total', 'aupd_events_rejected_total{reason="invalid"}',
                  'aupd_verdicts_total{verdict="allow"}', 'aupd_verdicts_total{verdict="deny"}',
                  'aupd_verdicts_total{verdict="flag"}', 'aupd_ledger_seq',
                  'aupd_alerts_open{level="warning"}', 'aupd_webhook_backlog',
                  'aupd_http_request_duration_seconds_count{route="verdicts"}',
                  'aupd_http_request_duration_seconds_count{route="events_post"}',
                  'aupd_commit_batch_events_count'):
            assert k in m0, "%s missing from /metrics" % k
        assert m0['aupd_alerts_open{level="warning"}'] == 0 and m0["aupd_webhook_backlog"] == 0

        r = s.d.post("/v1/events", [event("m-%d" % i, time="2026-01-15T10:0%d:00Z" % i)
                                    for i in range(3)]
                     + [event("m-x", action="data.read"), event("m-y", action="data.export")],
                     token=s.ing)
        assert r.status == 200 and r.json()["accepted"] == 5, r
        last_seq = max(v["seq"] for v in r.json()["results"])
        assert_problem(s.d.post("/v1/events", event("bad", time="yesterday"), token=s.ing), 400)
        assert_problem(s.d.post("/v1/events", event("m-z"), token="no-such-token"), 401)
        assert s.get("/v1/verdicts?limit=1").status == 200
        m1 = metrics(s)

        def delta(k):
            return m1[k] - m0[k]
        assert delta("aupd_events_accepted_total") == 5
        assert delta('aupd_events_rejected_total{reason="invalid"}') == 1
        assert delta('aupd_events_rejected_total{reason="unauthorized"}') == 1
        assert delta('aupd_verdicts_total{verdict="deny"}') == 3
        assert delta('aupd_verdicts_total{verdict="allow"}') == 1
        assert delta('aupd_verdicts_total{verdict="flag"}') == 1
        assert delta('aupd_http_request_duration_seconds_count{route="verdicts"}') == 1
        assert delta('aupd_http_request_duration_seconds_count{route="events_post"}') == 3
        assert delta("aupd_commit_batch_events_count") >= 1
        # the histogram is cumulative and ends in its count
        buckets = [v for k, v in m1.items()
                   if k.startswith('aupd_http_request_duration_seconds_bucket{route="verdicts"')]
        assert buckets == sorted(buckets) and len(buckets) > 2, buckets
        assert buckets[-1] == m1['aupd_http_request_duration_seconds_count{route="verdicts"}']
        assert m1['aupd_alerts_open{level="warning"}'] == 1
        assert m1['aupd_alerts_open{level="critical"}'] == 0
        assert m1["aupd_webhook_backlog"] == 1
        con = sqlite3.connect("file:%s?mode=ro" % s.d.db_path, uri=True)
        head = con.execute("SELECT max(seq) FROM ledger").fetchone()[0]
        con.close()
        assert last_seq <= m1["aupd_ledger_seq"] <= head, (last_seq, m1["aupd_ledger_seq"], head)
        # the rules in force, as an info metric
        rules = s.get("/v1/rules").json()
        info = [k for k in m1 if k.startswith("aupd_rules_info{")]
        assert len(info) == 1 and m1[info[0]] == 1, info
        assert 'version="%s"' % rules["rules_version"] in info[0], (info, rules)
        assert 'rules="3"' in info[0], info

        # resolving the alert takes it off the gauge
        alert = s.get("/v1/alerts").json()["items"][0]["id"]
        assert s.d.post("/v1/alerts/%s/resolve" % alert, {"note": "ok"}, token=s.op).status == 200
        assert metrics(s)['aupd_alerts_open{level="warning"}'] == 0


# ---- aupd verify --url ----

def test_verify_over_the_api_detects_a_tampered_record():
    with Setup(config="checkpoint: {every: 5}\n") as s:
        def verify():
            return cli("verify", "--url", "https://127.0.0.1:%d" % s.d.port,
                       "--token", s.aud, "--key", s.d.pubkey_path, "--cacert", s.d.cert_path,
                       check=False)

        p = verify()
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("ok:") and "with valid signatures" in p.stdout, p.stdout
        ncp = int(re.search(r"(\d+) checkpoints", p.stdout).group(1))
        assert ncp >= 1, p.stdout

        victim = s.stream[20]["seq"]
        assert s.d.stop() == 0
        con = sqlite3.connect(s.d.db_path)
        try:
            (body,) = con.execute("SELECT body FROM ledger WHERE seq = ?", (victim,)).fetchone()
            raw = bytes(body) if not isinstance(body, str) else body.encode()
            i = raw.index(b'"actor":"') + len(b'"actor":"')
            changed = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]  # one byte, same length
            assert changed != raw and len(changed) == len(raw)
            con.execute("UPDATE ledger SET body = ? WHERE seq = ?",
                        (changed if not isinstance(body, str) else changed.decode(), victim))
            con.commit()
        finally:
            con.close()
        s.d.start()
        assert s.get("/healthz").status == 200
        p = verify()
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "seq %d" % victim in p.stderr, p.stderr
        assert not p.stdout.startswith("ok"), p.stdout
        # the file verifier agrees
        p = s.d.verify(check=False)
        assert p.returncode == 1 and "seq %d" % victim in p.stderr, p.stderr


run(globals())
