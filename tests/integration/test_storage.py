"""Storage trouble: a full disk, a locked, read-only, truncated or corrupted database.

The full-disk test mounts a small tmpfs as state_dir; it needs root (CI runs as
root) and is skipped, with the reason printed, where mounting is not allowed.
"""

import hashlib
import os
import sqlite3
import subprocess
import threading
import time

from aupdtest import AUPD, SLOW, Daemon, assert_problem, event, ndjson, run


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def test_full_disk_refuses_then_resumes_by_itself():
    if os.geteuid() != 0:
        print("skip: mounting a tmpfs needs root")
        return
    with Daemon() as d:
        mnt = os.path.join(d.tmp, "small")
        ok, why = mount_tmpfs(mnt, "2m")
        if not ok:
            print("skip: cannot mount a tmpfs here: %s" % why)
            return
        try:
            d.state = os.path.join(mnt, "state")
            text = open(d.config_path).read().replace(os.path.join(d.tmp, "state"), d.state)
            with open(d.config_path, "w") as f:
                f.write(text)
            token = d.token("disk-ingest", "ingest")
            auditor = d.token("disk-auditor", "auditor")
            d.start()
            acked, n, refused = [], 0, None
            while n < 200000:
                batch = [event("fill-%d" % (n + i), attributes={"pad": "x" * 400})
                         for i in range(200)]
                n += len(batch)
                r = d.post("/v1/events", ndjson(batch), token=token,
                           content_type="application/x-ndjson")
                if r.status == 200:
                    acked += [it["id"] for it in r.json()["results"]]
                    continue
                refused = r
                break
            assert refused is not None, "the disk never filled"
            assert_problem(refused, 503)
            assert refused.header("Retry-After"), refused.headers
            r = d.get("/readyz")
            assert r.status == 503, r
            # still refused while full, quickly and with a problem document
            r = d.post("/v1/events", event("while-full"), token=token)
            assert_problem(r, 503)
            # space comes back: ingest resumes by itself
            subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
            deadline = time.time() + 30 * SLOW
            while time.time() < deadline and d.get("/readyz").status != 200:
                time.sleep(0.2)
            assert d.get("/readyz").status == 200, d.log()
            r = d.post("/v1/events", event("after-space"), token=token)
            assert r.status == 200, r
            # nothing acknowledged was lost
            for i in acked[:: max(1, len(acked) // 50)] + acked[-3:] + ["after-space"]:
                g = d.get("/v1/events/agency-a/%s" % i, token=auditor)
                assert g.status == 200, (i, g)
            assert "storage takes writes again" in d.log(), d.log()
            assert d.stop() == 0
            c = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
            stored = {row[0] for row in c.execute("SELECT id FROM events")}
            c.close()
            assert set(acked) <= stored, "%d acknowledged events missing" % len(set(acked) - stored)
            assert d.verify().returncode == 0
        finally:
            if d.proc:
                d.kill9()
            umount(mnt)


def started_db():
    """A daemon that ran once and stopped: its database holds a few records."""
    d = Daemon()
    token = d.token("t-ingest", "ingest")
    d.start()
    assert d.post("/v1/events", [event("a1"), event("a2")], token=token).status == 200
    assert d.stop() == 0
    return d


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def start_fails(d, timeout=60):
    p = subprocess.run([AUPD, "serve", "--config", d.config_path], capture_output=True, text=True,
                       timeout=timeout * SLOW)
    return p.returncode, p.stderr


def test_database_locked_by_another_process():
    with started_db() as d:
        c = sqlite3.connect(d.db_path, timeout=1)
        c.execute("BEGIN EXCLUSIVE")
        try:
            rc, err = start_fails(d)
        finally:
            c.rollback()
            c.close()
        assert rc == 75, (rc, err)  # temporary: systemd retries
        assert d.db_path in err and "locked" in err, err
        d.start()  # the lock gone, it starts
        assert d.stop() == 0
        assert d.verify().returncode == 0


def test_truncated_database_is_refused_and_left_alone():
    with started_db() as d:
        size = os.path.getsize(d.db_path)
        with open(d.db_path, "r+b") as f:
            f.truncate(size // 2)
        before = digest(d.db_path)
        rc, err = start_fails(d)
        assert rc == 1, (rc, err)
        assert d.db_path in err, err
        assert digest(d.db_path) == before, "a failed start changed the database"


def test_corrupted_database_is_refused_and_left_alone():
    with started_db() as d:
        with open(d.db_path, "r+b") as f:
            f.write(b"this is not an SQLite database..")
        before = digest(d.db_path)
        rc, err = start_fails(d)
        assert rc == 1, (rc, err)
        assert d.db_path in err and "not an SQLite database" in err, err
        assert digest(d.db_path) == before


def test_foreign_database_is_refused():
    with Daemon() as d:
        os.makedirs(d.state, mode=0o700)
        c = sqlite3.connect(d.db_path)
        c.execute("CREATE TABLE x (y)")
        c.commit()
        c.close()
        rc, err = start_fails(d)
        assert rc == 1 and "is not an aupd database" in err, (rc, err)


def test_read_only_database_is_a_clear_error():
    if os.geteuid() != 0:
        print("skip: needs root to mount a read-only file system")
        return
    with started_db() as d:
        mnt = os.path.join(d.tmp, "ro")
        ok, why = mount_tmpfs(mnt, "16m")
        if not ok:
            print("skip: cannot mount a tmpfs here: %s" % why)
            return
        try:
            subprocess.run(["cp", "-a", d.state + "/.", mnt], check=True)
            subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
            text = open(d.config_path).read().replace(d.state, mnt)
            with open(d.config_path, "w") as f:
                f.write(text)
            rc, err = start_fails(d)
            assert rc == 1, (rc, err)
            assert mnt in err, err
            # the ledger itself is intact and readable
            p = subprocess.run([AUPD, "verify", "--db", os.path.join(mnt, "aupd.db")],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        finally:
            umount(mnt)


RETENTION_RULES = """version: 1
rules:
  - id: keep-180d
    severity: high
    effect: deny
    when: {resource.classification: biometric}
    retention:
      age_of: resource.created
      max: 180d
      track:
        deleted_by: {action: data.delete}
"""


def test_obligations_stored_by_seq_follow_their_resource():
    """Obligations are stored under the seq of the verdict that opened them; a deletion after
    a restart removes exactly that row, and a resource can be opened again."""
    def bio(id, rid, action="data.read"):
        return event(id, action=action, resource={"id": rid, "classification": "biometric",
                                                  "created": "2026-01-01T00:00:00Z"})

    with Daemon() as d:
        with open(os.path.join(d.rules[0], "ret.yaml"), "w") as f:
            f.write(RETENTION_RULES)
        d.start()
        ing = d.token("ing", "ingest")
        r = d.post("/v1/events", ndjson([bio("o1", "r1"), bio("o2", "r2"), bio("o3", "r1")]),
                   token=ing, content_type="application/x-ndjson")
        assert r.status == 200, r
        seqs = [x["seq"] for x in r.json()["results"]]
        rows = d.query("SELECT opened_seq, rule, resource, opened_by FROM obligations "
                       "ORDER BY opened_seq")
        # o3 reads r1 again: already open, no second row
        assert rows == [(seqs[0], "keep-180d", "r1", "o1"), (seqs[1], "keep-180d", "r2", "o2")], rows
        assert d.stop() == 0
        d.start()
        assert "restored 2 open deletion obligations" in d.log(), d.log()
        assert d.post("/v1/events", bio("del1", "r1", "data.delete"), token=ing).status == 200
        assert d.query("SELECT resource FROM obligations") == [("r2",)]
        r = d.post("/v1/events", bio("o4", "r1"), token=ing)
        assert r.status == 200, r
        assert d.query("SELECT opened_seq, resource FROM obligations ORDER BY opened_seq") == \
            [(seqs[1], "r2"), (r.json()["results"][0]["seq"], "r1")]
        assert d.stop() == 0
        assert d.verify().returncode == 0


run(globals())
