"""Crash safety: SIGKILL at a random moment during sustained ingest, many times over.

After every kill: each event acknowledged with 2xx is stored with the seq it was
acknowledged with, no record is half-written (aupd verify passes), the daemon
restarts without repair, and the window totals it reports equal a recount of the
stored events.  AUPD_CRASH_CYCLES overrides the number of cycles (default 20).
"""

import json
import os
import random
import sqlite3
import threading
import time

from aupdtest import SLOW, Daemon, event, ndjson, run, write

# 20 in the normal build; the sanitizer build, several times slower, does fewer
CYCLES = int(os.environ.get("AUPD_CRASH_CYCLES", "20" if SLOW == 1 else "6"))

# A counting rule that always fires (max 0), so every verdict reports the window
# total in its message: the daemon's own view of the window, checkable from outside.
RULES = """
version: 1
rules:
  - id: face-count
    effect: flag
    severity: low
    when: {action: face.search}
    limit: {by: [tenant], window: 30d, max: 0}
    message: "total {limit.total}"
"""


class Client(threading.Thread):
    """Posts events (single or batches) until stopped; records every 2xx answer."""

    def __init__(self, d, token, name, batch):
        super().__init__(daemon=True)
        self.d, self.token, self.name, self.batch = d, token, name, batch
        self.acked = {}  # id -> seq
        self.stop = False
        self.n = 0

    def run(self):
        conn = None
        while not self.stop:
            evs = []
            for _ in range(self.batch):
                self.n += 1
                evs.append(event("%s-%d" % (self.name, self.n), tenant="t%d" % (self.n % 3),
                                 time="2026-11-20T10:%02d:%02dZ" % (self.n // 60 % 60, self.n % 60)))
            try:
                if conn is None:
                    conn = self.d.connect(timeout=5)
                if self.batch == 1:
                    r = self.d.request("POST", "/v1/events", body=evs[0], token=self.token,
                                       conn=conn)
                else:
                    r = self.d.request("POST", "/v1/events", body=ndjson(evs), token=self.token,
                                       content_type="application/x-ndjson", conn=conn)
            except Exception:
                conn = None
                time.sleep(0.01)
                continue
            if 200 <= r.status < 300:
                for item in r.json()["results"]:
                    assert "seq" in item, item
                    self.acked[item["id"]] = item["seq"]


def stored_ids(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return dict(c.execute("SELECT id, seq FROM events"))
    finally:
        c.close()


def probe_total(d, token, tenant, n):
    """Sends one more face.search for `tenant`; returns the total its verdict reports."""
    r = d.post("/v1/events", event("probe-%s-%d" % (tenant, n), tenant=tenant,
                                   time="2026-11-21T00:00:00Z"), token=token)
    assert r.status == 200, r
    m = r.json()["results"][0]["matched"]
    assert m and m[0]["rule"] == "face-count", m
    return int(m[0]["message"].split()[-1])


def test_sigkill_cycles_lose_nothing():
    rng = random.Random(7)
    with Daemon() as d:
        write(os.path.join(d.rules[0], "count.yaml"), RULES)
        d.write_config("checkpoint: {every: 50, interval: 1s}\n")
        token = d.token("crash-ingest", "ingest")
        acked = {}
        probes = 0
        for cycle in range(CYCLES):
            d.start()
            clients = [Client(d, token, "c%d-s" % cycle, 1), Client(d, token, "c%d-b" % cycle, 20)]
            for c in clients:
                c.start()
            # a random moment: between 0.2 and 1.5 s of sustained ingest
            time.sleep(rng.uniform(0.2, 1.5) * SLOW)
            d.kill9()
            for c in clients:
                c.stop = True
            for c in clients:
                c.join(timeout=30)
                acked.update(c.acked)
            stored = stored_ids(d.db_path)
            lost = [i for i in acked if i not in stored]
            assert not lost, "cycle %d: %d acknowledged events lost, e.g. %s" % (
                cycle, len(lost), lost[:5])
            moved = [i for i, s in acked.items() if stored[i] != s]
            assert not moved, "cycle %d: events stored under another seq: %s" % (cycle, moved[:5])
            p = d.verify(check=False)
            assert p.returncode == 0, "cycle %d: verify failed: %s" % (cycle, p.stderr)
        # a last start: windows come back equal to a recount of what is stored
        d.start()
        db = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        for tenant in ("t0", "t1", "t2"):
            stored_count = db.execute(
                "SELECT count(*) FROM events WHERE tenant = ? AND action = 'face.search'",
                (tenant,)).fetchone()[0]
            probes += 1
            total = probe_total(d, token, tenant, probes)
            assert total == stored_count + 1, "tenant %s: window total %d, recount %d + 1" % (
                tenant, total, stored_count)
        db.close()
        assert d.stop() == 0
        assert d.verify().returncode == 0
        assert len(acked) > CYCLES, "too few events were acknowledged to mean anything"
        print("cycles: %d, events acknowledged: %d" % (CYCLES, len(acked)))


run(globals())
