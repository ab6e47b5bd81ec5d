"""aupd verify --db: exit codes and one-line reports on a real daemon's ledger, intact and
tampered with (contract sections 1 and 6; issue 3, item 5)."""

import atexit
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import (Daemon, cli, event, query, run)

_golden = {}


def golden():
    """A ledger written by a real daemon run (made once): tokens, verdicts, access
    records, and checkpoints every 5 records."""
    if _golden:
        return _golden
    d = Daemon(config="checkpoint: {every: 5}\n")
    atexit.register(d.cleanup)
    d.start()
    ing = d.token("ingest-1", "ingest")
    aud = d.token("auditor-1", "auditor", tenant="agency-a")
    for i in range(6):
        r = d.post("/v1/events", [event("g-%d-%d" % (i, j), tenant="agency-a" if j % 2 == 0 else "agency-b")
                                  for j in range(4)], token=ing)
        assert r.status == 200, r
        assert d.get("/v1/events/agency-a/g-%d-0" % i, token=aud).status == 200
    assert d.stop() == 0
    _golden.update(dir=d.state, db=d.db_path, pub=d.pubkey_path)
    rows = query(d.db_path, "SELECT seq, kind, tenant FROM ledger ORDER BY seq")
    _golden["rows"] = rows
    _golden["cps"] = [r[0] for r in query(d.db_path, "SELECT seq FROM checkpoints ORDER BY seq")]
    assert len(rows) >= 30 and len(_golden["cps"]) >= 4, (len(rows), _golden["cps"])
    assert {r[1] for r in rows} >= {"rules", "token", "verdict", "access"}, rows
    return _golden


class Copy:
    """A private copy of the golden database, with ledger.pub.pem beside it."""

    def __init__(self):
        g = golden()
        self.dir = tempfile.mkdtemp(prefix="aupd-verify-")
        self.db = os.path.join(self.dir, "aupd.db")
        for suffix in ("", "-wal"):
            if os.path.exists(g["db"] + suffix):
                shutil.copy(g["db"] + suffix, self.db + suffix)
        self.pub = os.path.join(self.dir, "ledger.pub.pem")
        shutil.copy(g["pub"], self.pub)
        self.rows = g["rows"]
        self.cps = g["cps"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, statement, args=()):
        con = sqlite3.connect(self.db)
        try:
            with con:
                cur = con.execute(statement, args)
                assert cur.rowcount != 0, statement
        finally:
            con.close()

    def get(self, statement, args=()):
        return query(self.db, statement, args)

    def flip(self, table, column, seq, offset):
        (blob,), = self.get("SELECT %s FROM %s WHERE seq = ?" % (column, table), (seq,))
        b = bytearray(blob)
        b[offset] ^= 0x01
        self.sql("UPDATE %s SET %s = ? WHERE seq = ?" % (table, column), (bytes(b), seq))

    def verify(self, *extra):
        return cli("verify", "--db", self.db, *extra, check=False)

    def middle(self, kind="verdict"):
        """A record of `kind` in the middle of the ledger, not at a checkpoint."""
        seqs = [r[0] for r in self.rows if r[1] == kind and r[0] not in self.cps]
        return seqs[len(seqs) // 2]


def one_line(text):
    lines = text.splitlines()
    assert len(lines) == 1, "expected one line, got %r" % text
    return lines[0]


def assert_ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    line = one_line(p.stdout)
    assert line.startswith("ok:"), line
    return line


def error_line(stderr):
    """The one error line on stderr (notes aside)."""
    return one_line("\n".join(l for l in stderr.splitlines() if " note: " not in l))


def assert_bad(p, seq):
    """Exit 1 and one error line on stderr naming `seq N` as the first bad record."""
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    line = error_line(p.stderr)
    assert ("seq %d:" % seq) in line or line.endswith("seq %d" % seq) or \
        ("seq %d " % seq) in line, "expected seq %d in %r" % (seq, line)
    assert not p.stdout.startswith("ok"), p.stdout
    return line


def other_key(dirname):
    """A fresh Ed25519 key pair made with openssl; returns (private, public) paths."""
    priv = os.path.join(dirname, "other.key")
    pub = os.path.join(dirname, "other.pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return priv, pub


# ---- intact ----

def test_intact_ledger():
    with Copy() as c:
        line = assert_ok(c.verify())
        assert "%d records" % len(c.rows) in line, line
        assert "%d checkpoints" % len(c.cps) in line, line
        assert "valid signatures" in line and "NOT" not in line, line
        line = assert_ok(c.verify("--key", c.pub))
        assert "valid signatures" in line, line
        # the head it reports is the last stored hash
        (h,), = c.get("SELECT hex(hash) FROM ledger ORDER BY seq DESC LIMIT 1")
        assert h.lower() in line, (h, line)


def test_intact_database_in_place_of_the_daemon():
    # the daemon's own state_dir, with its own ledger.pub.pem beside the database
    g = golden()
    p = cli("verify", "--db", g["db"], check=False)
    assert_ok(p)


# ---- each tampering names its seq ----

def test_flipped_body_byte():
    with Copy() as c:
        n = c.middle()
        (body,), = c.get("SELECT body FROM ledger WHERE seq = ?", (n,))
        c.flip("ledger", "body", n, len(body) - 3)
        assert_bad(c.verify(), n)


def test_flipped_byte_in_a_stored_hash():
    with Copy() as c:
        n = c.middle("access")
        c.flip("ledger", "hash", n, 0)
        assert_bad(c.verify(), n)


def test_deleted_record():
    with Copy() as c:
        n = c.middle()
        c.sql("DELETE FROM ledger WHERE seq = ?", (n,))
        assert_bad(c.verify(), n)


def test_swapped_records():
    with Copy() as c:
        n = c.middle()
        c.sql("UPDATE ledger SET seq = -1 WHERE seq = ?", (n,))
        c.sql("UPDATE ledger SET seq = ? WHERE seq = ?", (n, n + 1))
        c.sql("UPDATE ledger SET seq = ? WHERE seq = -1", (n + 1,))
        assert_bad(c.verify(), n)


def test_tail_truncated_after_a_checkpoint():
    with Copy() as c:
        last_cp = c.cps[-1]
        c.sql("DELETE FROM ledger WHERE seq >= ?", (last_cp - 1,))
        line = assert_bad(c.verify(), last_cp - 1)
        assert "checkpoint" in line, line
        # events left by the daemon's index are no help to a truncation
        assert c.get("SELECT max(seq) FROM ledger")[0][0] == last_cp - 2


def test_forged_checkpoint_hash():
    with Copy() as c:
        cp = c.cps[1]
        (h,), = c.get("SELECT hash FROM ledger WHERE seq = ?", (cp - 1,))
        c.sql("UPDATE checkpoints SET hash = ? WHERE seq = ?", (h, cp))
        assert_bad(c.verify(), cp)


def test_forged_checkpoint_signature():
    with Copy() as c:
        cp = c.cps[2]
        c.flip("checkpoints", "signature", cp, 5)
        assert_bad(c.verify(), cp)


def test_checkpoint_signed_by_another_key():
    with Copy() as c:
        cp = c.cps[1]
        priv, pub = other_key(c.dir)
        (h, t), = c.get("SELECT hash, time FROM checkpoints WHERE seq = ?", (cp,))
        secs, us = divmod(t, 1000000)
        import time as _t
        stamp = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(secs)) + ".%06dZ" % us
        msg = os.path.join(c.dir, "msg")
        with open(msg, "wb") as f:
            f.write(("aupd-checkpoint-v1\n%d\n%s\n%s\n" % (cp, h.hex(), stamp)).encode())
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", priv, "-rawin", "-in", msg],
                             check=True, capture_output=True).stdout
        assert len(sig) == 64
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        key_id = hashlib.sha256(der[-32:]).hexdigest()[:32]
        c.sql("UPDATE checkpoints SET signature = ?, key_id = ? WHERE seq = ?", (sig, key_id, cp))
        assert_bad(c.verify(), cp)
        # and when it keeps the genuine key id
        (kid,), = c.get("SELECT key_id FROM checkpoints WHERE seq = ?", (c.cps[0],))
        c.sql("UPDATE checkpoints SET key_id = ? WHERE seq = ?", (kid, cp))
        assert_bad(c.verify(), cp)


def test_changed_kind_column():
    with Copy() as c:
        n = c.middle()
        c.sql("UPDATE ledger SET kind = 'access' WHERE seq = ?", (n,))
        assert_bad(c.verify(), n)


def test_changed_tenant_column():
    with Copy() as c:
        n = c.middle()
        c.sql("UPDATE ledger SET tenant = 'agency-z' WHERE seq = ?", (n,))
        assert_bad(c.verify(), n)


# ---- keys ----

def test_key_option_with_a_different_key():
    with Copy() as c:
        _, pub = other_key(c.dir)
        assert_bad(c.verify("--key", pub), c.cps[0])
        # the genuine key still verifies
        assert_ok(c.verify("--key", c.pub))


def test_without_key_uses_the_public_key_beside_the_database():
    with Copy() as c:
        _, pub = other_key(c.dir)
        shutil.copy(pub, c.pub)
        assert_bad(c.verify(), c.cps[0])
        # with no key at all the chain is still checked, and it says signatures were not
        os.remove(c.pub)
        p = c.verify()
        line = assert_ok(p)
        assert "NOT checked" in line, line
        assert "ledger.pub.pem" in p.stderr, p.stderr
        c.flip("ledger", "body", c.middle(), 20)
        assert_bad(c.verify(), c.middle())


def test_missing_or_unreadable_inputs():
    with Copy() as c:
        missing = os.path.join(c.dir, "nope", "aupd.db")
        p = cli("verify", "--db", missing, check=False)
        assert p.returncode == 1, p
        assert missing in error_line(p.stderr), p.stderr
        assert p.stdout == ""
        missing_key = os.path.join(c.dir, "missing.pem")
        p = c.verify("--key", missing_key)
        assert p.returncode == 1, p
        assert missing_key in error_line(p.stderr), p.stderr
        junk = os.path.join(c.dir, "junk.db")
        with open(junk, "w") as f:
            f.write("this is not a database\n" * 100)
        p = cli("verify", "--db", junk, "--key", c.pub, check=False)
        assert p.returncode == 1, p
        assert "junk.db" in p.stderr, p.stderr
        notakey = os.path.join(c.dir, "notakey.pem")
        with open(notakey, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        p = c.verify("--key", notakey)
        assert p.returncode == 1, p


def test_bad_usage_exits_2():
    with Copy() as c:
        for args in ([], ["--db"], ["--frobnicate"], ["--db", c.db, "extra"],
                     ["--db", c.db, "--url", "https://127.0.0.1:1"], ["--key", c.pub]):
            p = cli("verify", *args, check=False)
            assert p.returncode == 2, (args, p.returncode, p.stderr)
            assert p.stderr.strip(), args
            assert not p.stdout.startswith("ok"), args
        p = cli("verify", "--help", check=False)
        assert p.returncode == 0 and "--db" in p.stdout, p


run(globals())
