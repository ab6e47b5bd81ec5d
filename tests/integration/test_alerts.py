"""Escalations and alerts over HTTP (issue 5, items 1, 2 and 5): thresholds at the window
edge, cooldowns by event time, a ladder, groups, restarts, the ack/resolve lifecycle,
roles, filters, paging, CSV and tenant scoping of /v1/alerts."""

import csv
import io
import json
import os
import re
import signal
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import Daemon, assert_problem, event, run, write

RULES = """version: 1
rules:
  - id: no-face-search
    severity: high
    effect: deny
    when: {action: face.search}
  - id: no-face-match
    severity: critical
    effect: deny
    when: {action: face.match}
escalations:
  - id: denials
    when: {verdict: deny}
    threshold: {count: 3, by: [tenant], window: 1h}
    level: warning
    cooldown: 1h
"""

# three escalations over the same verdicts: nothing in the daemon knows they form a ladder
LADDER = """version: 1
rules:
  - id: no-face-search
    severity: high
    effect: deny
    when: {action: face.search}
  - id: no-face-match
    severity: critical
    effect: deny
    when: {action: face.match}
escalations:
  - id: ladder-warning
    when: {verdict: deny}
    threshold: {count: 3, by: [tenant], window: 1h}
    level: warning
    cooldown: 1h
  - id: ladder-critical
    when: {verdict: deny}
    threshold: {count: 5, by: [tenant], window: 1h}
    level: critical
    cooldown: 1h
  - id: ladder-suspend
    when: {rule: no-face-match, severity: critical}
    threshold: {count: 1, by: [tenant], window: 24h}
    level: suspend
    cooldown: 24h
"""

# grouped by tenant and actor (the group's JSON holds commas and quotes in CSV)
BY_ACTOR = """version: 1
rules:
  - id: no-face-search
    severity: high
    effect: deny
    when: {action: face.search}
escalations:
  - id: analyst-denials
    when: {verdict: deny}
    threshold: {count: 2, by: [tenant, actor], window: 1h}
    level: notice
    cooldown: 1h
"""


def ts(h, m, s=0, day=15):
    return "2026-01-%02dT%02d:%02d:%02dZ" % (day, h, m, s)


class Setup:
    """A daemon with the given rules and ingest (ing), auditor (aud), operator (op) tokens."""

    def __init__(self, rules=RULES):
        self.d = Daemon()
        try:
            write(os.path.join(self.d.tmp, "rules", "rules.yaml"), rules)
            self.d.start()
            self.ing = self.d.token("ingest-1", "ingest")
            self.aud = self.d.token("auditor-1", "auditor")
            self.op = self.d.token("operator-1", "operator")
        except BaseException:
            self.d.cleanup()
            raise
        self.n = 0

    def post(self, time, tenant="agency-a", action="face.search", actor="analyst-17"):
        """Posts one event; returns its seq."""
        self.n += 1
        e = event("evt-%d" % self.n, tenant=tenant, time=time, action=action, actor=actor)
        r = self.d.post("/v1/events", e, token=self.ing)
        assert r.status == 200, r
        v = r.json()["results"][0]
        assert v["verdict"] == "deny", v
        return v["seq"]

    def alerts(self, query="", token=None):
        r = self.d.get("/v1/alerts" + query, token=token or self.aud)
        assert r.status == 200, r
        doc = r.json()
        assert set(doc) == {"items", "next_cursor"}, doc
        return doc["items"]

    def alert(self, id, token=None):
        r = self.d.get("/v1/alerts/" + id, token=token or self.aud)
        assert r.status == 200, r
        return r.json()

    def change(self, id, action, note=None, token=None):
        body = {} if note is None else {"note": note}
        return self.d.post("/v1/alerts/%s/%s" % (id, action), body, token=token or self.op)

    def ledger_alerts(self):
        """Bodies of the "alert" ledger records, over GET /v1/audit/log."""
        r = self.d.get("/v1/audit/log", token=self.aud)
        assert r.status == 200, r
        out = []
        for line in r.body.decode().splitlines():
            doc = json.loads(line)
            if doc.get("kind") == "alert":
                out.append(json.loads(doc["body"]))
        return out

    def metric(self, name):
        r = self.d.get("/metrics", token=self.aud)
        m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
        assert m, "no %s in /metrics" % name
        return int(m.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.d.cleanup()


def test_threshold_at_the_window_edge():
    with Setup() as s:
        # (t - W, t]: the verdict at exactly t - W does not count
        s.post(ts(10, 0), "edge")
        b = s.post(ts(10, 30), "edge")
        c = s.post(ts(11, 0), "edge")
        assert s.alerts() == [], "an alert opened with only 2 verdicts inside the window"
        d = s.post(ts(11, 0), "edge")
        [a] = s.alerts()
        assert a["seqs"] == [b, c, d] and a["count"] == 3, a
        assert a["first_time"] == "2026-01-15T10:30:00.000Z", a
        assert a["last_time"] == "2026-01-15T11:00:00.000Z", a
        assert a["opened_seq"] > d and a["last_seq"] == d, a

        # one second later than t - W is inside
        x = s.post(ts(10, 0, 1), "inside")
        y = s.post(ts(10, 30), "inside")
        assert len(s.alerts()) == 1
        z = s.post(ts(11, 0), "inside")
        items = s.alerts("?tenant=inside")
        assert len(items) == 1 and items[0]["seqs"] == [x, y, z], items
        assert items[0]["first_time"] == "2026-01-15T10:00:01.000Z", items


def test_cooldown_by_event_time():
    with Setup() as s:
        seqs = [s.post(ts(10, 0)), s.post(ts(10, 10)), s.post(ts(10, 20))]
        [a] = s.alerts()
        assert a["seqs"] == seqs and a["count"] == 3, a
        assert a["cooldown_until"] == "2026-01-15T11:20:00.000Z", a

        # within the cooldown: the same alert grows
        u1 = s.post(ts(10, 30))
        u2 = s.post(ts(11, 19, 59))
        items = s.alerts()
        assert len(items) == 1, items
        a = items[0]
        assert a["count"] == 5 and a["last_seq"] == u2, a
        assert a["seqs"] == seqs, "the seqs that crossed the threshold changed: %r" % a
        assert a["last_time"] == "2026-01-15T11:19:59.000Z", a
        hist = [h["action"] for h in s.alert(a["id"])["history"]]
        assert hist == ["opened", "updated", "updated"], hist

        # after the cooldown (by event time, not by the clock): a new alert
        n = s.post(ts(11, 20, 1))
        items = s.alerts()
        assert len(items) == 2, items
        old, new = items
        assert old["id"] == a["id"] and old["count"] == 5 and old["last_seq"] == u2, old
        # the window (10:20:01, 11:20:01] holds 10:30, 11:19:59 and 11:20:01
        assert new["seqs"] == [u1, u2, n] and new["count"] == 3, new
        assert new["cooldown_until"] == "2026-01-15T12:20:01.000Z", new


def test_cooldown_counts_every_matching_verdict():
    # issue 5: "Within the cooldown, further matching verdicts update the open alert's
    # count and last seq instead of opening another" - also when the window has
    # emptied below the threshold again (cooldown longer than the window, as in the
    # sample ladder's 1h window / 4h cooldown)
    rules = RULES.replace("cooldown: 1h", "cooldown: 4h")
    with Setup(rules) as s:
        for m in range(3):
            s.post(ts(10, m))
        [a] = s.alerts()
        assert a["cooldown_until"] == "2026-01-15T14:02:00.000Z", a
        late = s.post(ts(12, 0))  # alone in its window, inside the cooldown
        items = s.alerts()
        assert len(items) == 1, items
        assert items[0]["count"] == 4 and items[0]["last_seq"] == late, (
            "a denial within the cooldown was not counted on the open alert: %r" % items[0])


def test_late_burst_before_an_alert_is_not_merged_into_it():
    # Events may arrive late (windows are by event time, contract section 7).  A
    # burst that crossed the threshold two hours before an open alert is not
    # "within the cooldown" of that alert: it opens its own alert instead of being
    # counted on the later one.
    with Setup() as s:
        for m in range(3):
            s.post(ts(11, m))
        [a] = s.alerts()
        late = [s.post(ts(8, m)) for m in range(3)]
        items = s.alerts()
        assert items[0]["id"] == a["id"], items
        assert items[0]["count"] == 3, (
            "a burst at 08:00-08:02 was counted on the alert opened at 11:02: %r" % items[0])
        assert len(items) == 2 and items[1]["seqs"] == late, items


def test_ladder_without_special_cases():
    with Setup(LADDER) as s:
        seqs = [s.post(ts(9, m)) for m in range(2)]
        assert s.alerts() == []
        seqs.append(s.post(ts(9, 2)))
        items = s.alerts()
        assert [(x["escalation"], x["level"]) for x in items] == [("ladder-warning", "warning")]
        seqs += [s.post(ts(9, 3)), s.post(ts(9, 4))]
        items = s.alerts()
        assert [(x["escalation"], x["level"]) for x in items] == [
            ("ladder-warning", "warning"), ("ladder-critical", "critical")], items
        warn, crit = items
        assert warn["seqs"] == seqs[:3] and warn["count"] == 5 and warn["last_seq"] == seqs[4]
        assert crit["seqs"] == seqs and crit["count"] == 5, crit

        # one critical re-use: suspend, and the two lower rungs count it too
        m = s.post(ts(9, 5), action="face.match")
        items = s.alerts()
        assert [x["level"] for x in items] == ["warning", "critical", "suspend"], items
        warn, crit, susp = items
        assert susp["escalation"] == "ladder-suspend" and susp["seqs"] == [m], susp
        assert susp["count"] == 1 and susp["group"] == {"tenant": "agency-a"}, susp
        assert warn["count"] == 6 and warn["last_seq"] == m, warn
        assert crit["count"] == 6 and crit["last_seq"] == m, crit
        assert s.alerts("?level=suspend") == [susp]

        # one log line per opened alert, with the journald level of its rung
        lines = re.findall(r"^<(\d)>alert (alert-\d+) opened", s.d.log(), re.M)
        assert [x[1] for x in lines] == [warn["id"], crit["id"], susp["id"]], lines
        assert lines[0][0] == "4" and lines[1][0] == "2", lines
        assert int(lines[2][0]) <= 2, "suspend is logged less urgently than critical: %r" % lines
        assert s.metric('aupd_alerts_open{level="suspend"}') == 1


def test_separate_groups():
    with Setup() as s:
        a = [s.post(ts(10, 0), "tenant-a")]
        b = [s.post(ts(10, 0), "tenant-b")]
        a.append(s.post(ts(10, 1), "tenant-a"))
        b.append(s.post(ts(10, 1), "tenant-b"))
        assert s.alerts() == [], "4 verdicts of two tenants opened an alert"
        a.append(s.post(ts(10, 2), "tenant-a"))
        items = s.alerts()
        assert len(items) == 1 and items[0]["group"] == {"tenant": "tenant-a"}, items
        assert items[0]["seqs"] == a and items[0]["tenant"] == "tenant-a", items
        b.append(s.post(ts(10, 2), "tenant-b"))
        items = s.alerts()
        assert [x["group"] for x in items] == [{"tenant": "tenant-a"}, {"tenant": "tenant-b"}]
        assert items[1]["seqs"] == b and items[1]["tenant"] == "tenant-b", items
        assert items[0]["count"] == 3 and items[1]["count"] == 3, items


def test_restart_keeps_windows_and_cooldowns():
    with Setup() as s:
        seqs = [s.post(ts(10, 0)), s.post(ts(10, 1))]
        assert s.d.stop(signal.SIGTERM) == 0
        s.d.start()
        seqs.append(s.post(ts(10, 2)))
        [a] = s.alerts()
        assert a["seqs"] == seqs and a["count"] == 3, a

        # within the cooldown after a restart (and after a crash): no second alert
        assert s.d.stop(signal.SIGTERM) == 0
        s.d.start()
        u = s.post(ts(10, 30))
        s.d.kill9()
        s.d.start()
        v = s.post(ts(10, 40))
        items = s.alerts()
        assert len(items) == 1, items
        assert items[0]["id"] == a["id"] and items[0]["count"] == 5, items
        assert items[0]["last_seq"] == v and u < v, items

        # a second group's window survives a SIGKILL too
        b = [s.post(ts(10, 0), "tenant-b"), s.post(ts(10, 1), "tenant-b")]
        s.d.kill9()
        s.d.start()
        b.append(s.post(ts(10, 2), "tenant-b"))
        items = s.alerts("?tenant=tenant-b")
        assert len(items) == 1 and items[0]["seqs"] == b, items


def open_alert(s, tenant="agency-a", hour=10):
    for m in range(3):
        s.post(ts(hour, m), tenant)
    return s.alerts("?tenant=" + tenant)[-1]


def test_ack_resolve_lifecycle_and_409():
    with Setup() as s:
        a = open_alert(s, "tenant-a")
        b = open_alert(s, "tenant-b")
        assert s.metric('aupd_alerts_open{level="warning"}') == 2

        r = s.change(a["id"], "ack", "looking into it")
        assert r.status == 200, r
        assert r.json()["state"] == "acknowledged" and r.json()["id"] == a["id"], r
        assert s.alert(a["id"])["state"] == "acknowledged"
        assert_problem(s.change(a["id"], "ack", "again"), 409)
        r = s.change(a["id"], "resolve", "tenant retrained")
        assert r.status == 200 and r.json()["state"] == "resolved", r
        assert_problem(s.change(a["id"], "resolve", "again"), 409)
        assert_problem(s.change(a["id"], "ack", "after resolve"), 409)
        assert s.alert(a["id"])["state"] == "resolved"

        # open -> resolved directly, without a note
        r = s.change(b["id"], "resolve")
        assert r.status == 200 and r.json()["state"] == "resolved", r
        assert s.metric('aupd_alerts_open{level="warning"}') == 0

        hist = s.alert(a["id"])["history"]
        assert [h["action"] for h in hist] == ["opened", "acknowledged", "resolved"], hist
        assert hist[1]["token"] == "operator-1" and hist[1]["note"] == "looking into it", hist
        assert hist[2]["token"] == "operator-1" and hist[2]["note"] == "tenant retrained", hist
        assert [h["seq"] for h in hist] == sorted(h["seq"] for h in hist), hist

        # every change is a ledger record
        recs = [x for x in s.ledger_alerts() if x["alert"]["id"] == a["id"]]
        assert [x["action"] for x in recs] == ["opened", "acknowledged", "resolved"], recs
        assert recs[1]["note"] == "looking into it" and recs[1]["token"] == "operator-1", recs
        assert recs[2]["alert"]["state"] == "resolved", recs
        assert [x["seq"] for x in recs] == [h["seq"] for h in hist], (recs, hist)

        # bad bodies
        c = open_alert(s, "tenant-c")
        assert_problem(s.d.post("/v1/alerts/%s/ack" % c["id"], {"note": 5}, token=s.op), 400,
                       pointer="/note")
        assert_problem(s.d.post("/v1/alerts/%s/ack" % c["id"], {"note": "x", "by": "me"},
                                token=s.op), 400)
        assert_problem(s.d.post("/v1/alerts/%s/ack" % c["id"], "note", token=s.op,
                                content_type="text/plain"), 415)
        assert s.alert(c["id"])["state"] == "open"


def test_404_unknown_ids():
    with Setup() as s:
        open_alert(s)
        for path in ("/v1/alerts/alert-99999", "/v1/alerts/nope"):
            assert_problem(s.d.get(path, token=s.aud), 404)
        for action in ("ack", "resolve"):
            assert_problem(s.change("alert-99999", action, "x"), 404)


def test_roles():
    with Setup() as s:
        a = open_alert(s)
        for action in ("ack", "resolve"):
            assert_problem(s.change(a["id"], action, "x", token=s.aud), 403)
            assert_problem(s.change(a["id"], action, "x", token=s.ing), 403)
        assert s.alert(a["id"])["state"] == "open"
        assert_problem(s.d.get("/v1/alerts", token=s.ing), 403)
        assert_problem(s.d.get("/v1/alerts/" + a["id"], token=s.ing), 403)
        assert_problem(s.d.get("/v1/alerts"), 401)
        assert_problem(s.change(a["id"], "ack", "x", token="not-a-token"), 401)
        # operators may read
        assert s.alerts(token=s.op) == s.alerts()


def pages(s, query, limit):
    """Every page of /v1/alerts with `limit`; returns the list of pages (id lists)."""
    out, cursor = [], None
    for _ in range(100):
        q = "?limit=%d%s%s" % (limit, "&" + query if query else "",
                               "&cursor=" + cursor if cursor else "")
        r = s.d.get("/v1/alerts" + q, token=s.aud)
        assert r.status == 200, r
        doc = r.json()
        out.append([x["id"] for x in doc["items"]])
        cursor = doc["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def test_filters_and_paging():
    with Setup(LADDER) as s:
        # tenant-a: warning and critical; tenant-b: warning, critical, suspend
        for m in range(5):
            s.post(ts(9, m), "tenant-a")
        time.sleep(0.05)  # so that tenant-b's alerts open in a later millisecond
        for m in range(5):
            s.post(ts(9, m), "tenant-b")
        s.post(ts(9, 6), "tenant-b", action="face.match")
        every = s.alerts()
        ids = [x["id"] for x in every]
        assert len(every) == 5, every
        assert [(x["tenant"], x["level"]) for x in every] == [
            ("tenant-a", "warning"), ("tenant-a", "critical"), ("tenant-b", "warning"),
            ("tenant-b", "critical"), ("tenant-b", "suspend")], every
        opened = [x["opened_seq"] for x in every]
        assert opened == sorted(opened), "not in ledger order: %r" % every
        assert s.change(ids[0], "ack", "x").status == 200
        assert s.change(ids[3], "resolve", "x").status == 200

        def q(query):
            return [x["id"] for x in s.alerts("?" + query)]

        assert q("state=open") == [ids[1], ids[2], ids[4]]
        assert q("state=acknowledged") == [ids[0]]
        assert q("state=resolved") == [ids[3]]
        assert q("level=warning") == [ids[0], ids[2]]
        assert q("level=suspend") == [ids[4]]
        assert q("tenant=tenant-a") == ids[:2]
        assert q("tenant=nobody") == []
        assert q("escalation=ladder-critical") == [ids[1], ids[3]]
        assert q("tenant=tenant-b&level=critical&state=resolved") == [ids[3]]
        assert q("tenant=tenant-b&state=open&escalation=ladder-warning") == [ids[2]]
        # since/until on the time the alert opened: since inclusive, until exclusive
        first_b = every[2]["opened_at"]
        assert q("since=" + first_b) == ids[2:]
        assert q("until=" + first_b) == ids[:2]
        assert q("since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z") == ids
        assert q("since=2100-01-01T00:00:00Z") == []

        # paging: every alert once, in order, whatever the page size
        for limit in (1, 2, 3, 5):
            p = pages(s, "", limit)
            assert [i for page in p for i in page] == ids, (limit, p)
            assert all(len(page) == limit for page in p[:-1]), (limit, p)
        p = pages(s, "tenant=tenant-b", 2)
        assert p == [ids[2:4], ids[4:]], p
        p = pages(s, "state=open", 1)
        assert p == [[ids[1]], [ids[2]], [ids[4]]], p

        for bad in ("limit=0", "limit=1001", "state=closed", "level=info", "since=yesterday",
                    "cursor=zzz"):
            assert_problem(s.d.get("/v1/alerts?" + bad, token=s.aud), 400)
        doc = assert_problem(s.d.get("/v1/alerts?leve=warning", token=s.aud), 400)
        assert "level" in doc["detail"], doc


def parse_csv(resp):
    assert resp.status == 200, resp
    ct = resp.header("Content-Type") or ""
    assert ct.startswith("text/csv"), ct
    text = resp.body.decode()
    assert text.endswith("\r\n"), repr(text[-20:])
    # every record ends with CRLF (no field here carries a line break)
    assert "\n" not in text.replace("\r\n", ""), repr(text)
    return list(csv.reader(io.StringIO(text, newline="")))


def test_alerts_csv():
    with Setup(BY_ACTOR) as s:
        odd = 'a,"b" c'
        for m in range(2):
            s.post(ts(10, m), "tenant-a", actor=odd)
        for m in range(2):
            s.post(ts(10, m), "tenant-a", actor="plain")
        js = s.alerts()
        assert [x["group"] for x in js] == [{"tenant": "tenant-a", "actor": odd},
                                            {"tenant": "tenant-a", "actor": "plain"}], js
        r = s.d.get("/v1/alerts", token=s.aud, headers={"Accept": "text/csv"})
        rows = parse_csv(r)
        header = rows[0]
        for col in ("id", "escalation", "level", "state", "tenant", "group", "count",
                    "opened_seq", "last_seq"):
            assert col in header, header
        assert len(rows) == 3, rows
        for row, a in zip(rows[1:], js):
            assert len(row) == len(header), row
            rec = dict(zip(header, row))
            assert rec["id"] == a["id"] and rec["escalation"] == a["escalation"], rec
            assert rec["level"] == a["level"] and rec["state"] == a["state"], rec
            assert rec["tenant"] == a["tenant"], rec
            assert json.loads(rec["group"]) == a["group"], rec
            assert int(rec["count"]) == a["count"], rec
            assert int(rec["opened_seq"]) == a["opened_seq"], rec
            assert int(rec["last_seq"]) == a["last_seq"], rec
        # the group field (commas and quotes) is quoted, its quotes doubled
        assert '"{""actor"":""a,\\""b\\"" c"",""tenant"":""tenant-a""}"' in r.body.decode(), \
            r.body.decode()

        # CSV pages like JSON: the cursor in X-Next-Cursor
        r = s.d.get("/v1/alerts?limit=1", token=s.aud, headers={"Accept": "text/csv"})
        rows = parse_csv(r)
        assert len(rows) == 2 and rows[1][header.index("id")] == js[0]["id"], rows
        cur = r.header("X-Next-Cursor")
        assert cur, r.headers
        r = s.d.get("/v1/alerts?limit=1&cursor=" + cur, token=s.aud,
                    headers={"Accept": "text/csv"})
        rows = parse_csv(r)
        assert len(rows) == 2 and rows[1][header.index("id")] == js[1]["id"], rows
        assert r.header("X-Next-Cursor") is None, r.headers


def test_tenant_scoping():
    with Setup() as s:
        a = open_alert(s, "tenant-a")
        b = open_alert(s, "tenant-b")
        aud_b = s.d.token("auditor-b", "auditor", tenant="tenant-b")
        op_b = s.d.token("operator-b", "operator", tenant="tenant-b")
        for tok in (aud_b, op_b):
            assert [x["id"] for x in s.alerts(token=tok)] == [b["id"]]
            assert [x["id"] for x in s.alerts("?state=open", token=tok)] == [b["id"]]
            assert_problem(s.d.get("/v1/alerts?tenant=tenant-a", token=tok), 403)
            assert_problem(s.d.get("/v1/alerts/" + a["id"], token=tok), 403, a["id"])
            assert_problem(s.d.get("/v1/alerts/alert-99999", token=tok), 404)
            assert s.alert(b["id"], token=tok)["tenant"] == "tenant-b"
        r = s.d.get("/v1/alerts", token=aud_b, headers={"Accept": "text/csv"})
        assert "tenant-a" not in r.body.decode(), r.body
        for action in ("ack", "resolve"):
            assert_problem(s.change(a["id"], action, "x", token=op_b), 403, a["id"])
        assert s.alert(a["id"])["state"] == "open"
        # another tenant's alert is 403 whatever its state (not 409 once resolved)
        assert s.change(a["id"], "resolve", "done").status == 200
        for action in ("ack", "resolve"):
            assert_problem(s.change(a["id"], action, "x", token=op_b), 403, a["id"])
        r = s.change(b["id"], "ack", "mine", token=op_b)
        assert r.status == 200 and r.json()["state"] == "acknowledged", r


run(globals())
