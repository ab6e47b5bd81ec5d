"""Signed webhook delivery of alerts to a real local HTTPS receiver (issue 5, items 3-5).

The receiver is a threaded http.server behind TLS with its own throw-away CA; the
daemon trusts it through the notifier's ca_file.  It records every request and
checks every X-Aupd-Signature against the shared secret.  It can be stopped
(connection refused), told to answer an error status, or to fail a scripted number
of first attempts, and it comes back on the same port.
"""

import atexit
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import SLOW, Daemon, event, run, write

# printable, distinctive, and long enough that a chance match in a log is impossible
SECRET = "whsec-7Hq2-Xv9Lr4pZt8Kd3nM6bW1yF5cJ0aS"

RULES = """version: 1
rules:
  - id: no-face-search
    severity: high
    effect: deny
    when: {action: face.search}
escalations:
  - id: repeated-denials
    when: {verdict: deny}
    threshold: {count: 3, by: [tenant], window: 1h}
    level: warning
    cooldown: 1h
    notify: [hook]
"""

EVENTS = ("alert.opened", "alert.updated", "alert.acknowledged", "alert.resolved")


# ---- the receiver's throw-away CA and certificate (made once per run) ----

_pki = {}


def pki():
    """{"dir", "ca", "cert", "key"}: a CA and a server certificate for IP 127.0.0.1 it signed."""
    if _pki:
        return _pki
    d = tempfile.mkdtemp(prefix="aupd-it-pki-")
    atexit.register(shutil.rmtree, d, True)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=aupd test hook CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    write(os.path.join(d, "ext.cnf"),
          "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "3", "-extfile", "ext.cnf")
    _pki.update(dir=d, ca=os.path.join(d, "ca.pem"), cert=os.path.join(d, "server.pem"),
                key=os.path.join(d, "server.key"))
    return _pki


# ---- the receiver ----

class Receiver:
    """An HTTPS webhook receiver on 127.0.0.1 that records every request.

    status: what it answers by default (None: it never answers, until release is
    set); script: statuses for the next requests, in order, before falling back to
    status.  stop() closes the port (connection
    refused); start() opens the same port again.
    """

    def __init__(self, secret):
        self.secret = secret.encode()
        self.requests = []
        self.cv = threading.Condition()
        self.status = 200
        self.script = []
        self.release = threading.Event()
        self.port = 0
        self.server = None
        self.thread = None

    def start(self):
        recv = self
        self.release.clear()
        p = pki()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                sig = self.headers.get("X-Aupd-Signature") or ""
                want = "sha256=" + hmac.new(recv.secret, body, hashlib.sha256).hexdigest()
                with recv.cv:
                    status = recv.script.pop(0) if recv.script else recv.status
                    hang = status is None
                    try:
                        doc = json.loads(body)
                    except ValueError:
                        doc = None
                    recv.requests.append({
                        "path": self.path,
                        "delivery": self.headers.get("X-Aupd-Delivery"),
                        "event": self.headers.get("X-Aupd-Event"),
                        "alert": self.headers.get("X-Aupd-Alert"),
                        "content_type": self.headers.get("Content-Type"),
                        "signature": sig,
                        "signature_ok": hmac.compare_digest(sig, want),
                        "body": body,
                        "doc": doc,
                        "answered": 0 if hang else status,
                    })
                    recv.cv.notify_all()
                if hang:
                    # never answer: hold the connection until the test ends
                    recv.release.wait(120 * SLOW)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(p["cert"], p["key"])
        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a refused TLS handshake (test_tls_verification_is_on_without_ca_file)

        srv = Server(("127.0.0.1", self.port), Handler)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
        self.port = srv.server_address[1]
        self.server = srv
        self.thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.server = None

    @property
    def url(self):
        return "https://127.0.0.1:%d/hook" % self.port

    def accepted(self):
        """The requests it answered with a 2xx."""
        with self.cv:
            return [r for r in self.requests if 200 <= r["answered"] < 300]

    def all(self):
        with self.cv:
            return list(self.requests)

    def wait(self, pred, what, timeout=60):
        """Waits until pred(list of all requests) holds; a safety-net timeout only."""
        deadline = time.time() + timeout * SLOW
        with self.cv:
            while not pred(self.requests):
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("receiver: timed out waiting for %s; got %s" % (
                        what, [(r["event"], r["alert"], r["answered"]) for r in self.requests]))
                self.cv.wait(min(left, 0.5))
            return list(self.requests)

    def wait_accepted(self, pairs, timeout=60):
        """Waits until every (alert id, event) in pairs was answered 2xx."""
        want = set(pairs)
        return self.wait(lambda rs: want <= {(r["alert"], r["event"]) for r in rs
                                             if 200 <= r["answered"] < 300},
                         "deliveries %s" % sorted(want), timeout)


# ---- helpers ----

def wait_until(fn, what, timeout=60):
    """Polls fn() until it returns something true; the timeout is a safety net only."""
    deadline = time.time() + timeout * SLOW
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class Setup:
    """A receiver, and a daemon whose notifier `hook` posts to it."""

    def __init__(self, ca_file=True, timeout="2s"):
        self.recv = Receiver(SECRET).start()
        self.d = Daemon()
        try:
            rules = os.path.join(self.d.tmp, "rules", "rules.yaml")
            write(rules, RULES)
            secret_file = os.path.join(self.d.tmp, "hook.secret")
            # a trailing newline, as `echo SECRET > file` leaves it
            write(secret_file, SECRET + "\n")
            os.chmod(secret_file, 0o600)
            conf = "notifiers:\n  hook:\n    url: %s\n    secret_file: %s\n    timeout: %s\n" % (
                self.recv.url, secret_file, timeout)
            if ca_file:
                conf += "    ca_file: %s\n" % pki()["ca"]
            self.d.write_config(conf)
            self.d.start()
            self.ing = self.d.token("ingest-1", "ingest")
            self.aud = self.d.token("auditor-1", "auditor")
            self.op = self.d.token("operator-1", "operator")
        except BaseException:
            self.cleanup()
            raise
        self.n = 0

    def deny(self, tenant="agency-a", minute=0):
        """Posts one face.search event (denied); returns its seq."""
        self.n += 1
        e = event("evt-%d" % self.n, tenant=tenant,
                  time="2026-01-15T10:%02d:%02dZ" % (minute, self.n % 60))
        r = self.d.post("/v1/events", e, token=self.ing)
        assert r.status == 200, r
        v = r.json()["results"][0]
        assert v["verdict"] == "deny", v
        return v["seq"]

    def alerts(self, **filters):
        q = "&".join("%s=%s" % kv for kv in filters.items())
        r = self.d.get("/v1/alerts" + ("?" + q if q else ""), token=self.aud)
        assert r.status == 200, r
        return r.json()["items"]

    def alert(self, id):
        r = self.d.get("/v1/alerts/" + id, token=self.aud)
        assert r.status == 200, r
        return r.json()

    def change(self, id, action, note):
        r = self.d.post("/v1/alerts/%s/%s" % (id, action), {"note": note}, token=self.op)
        assert r.status == 200, r
        return r.json()

    def metric(self, name):
        r = self.d.get("/metrics", token=self.aud)
        assert r.status == 200, r
        m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
        assert m, "no %s in /metrics" % name
        return int(m.group(1))

    def ledger(self, kind):
        """Parsed bodies of the ledger records of one kind, read over GET /v1/audit/log."""
        r = self.d.get("/v1/audit/log", token=self.aud)
        assert r.status == 200, r
        out = []
        for line in r.body.decode().splitlines():
            doc = json.loads(line)
            if doc.get("kind") == kind:
                out.append(json.loads(doc["body"]))
        return out

    def full_log(self):
        with open(self.d.log_path, errors="replace") as f:
            return f.read()

    def check_no_secret(self):
        """The secret is in no log line, no ledger record and no database page."""
        assert SECRET not in self.full_log(), "the webhook secret is in the daemon's log"
        r = self.d.get("/v1/audit/log", token=self.aud)
        assert SECRET.encode() not in r.body, "the webhook secret is in the ledger"
        for name in os.listdir(self.d.state):
            if name.startswith("aupd.db"):
                with open(os.path.join(self.d.state, name), "rb") as f:
                    assert SECRET.encode() not in f.read(), "the secret is in " + name

    def check_signatures(self):
        reqs = self.recv.all()
        bad = [r for r in reqs if not r["signature_ok"]]
        assert not bad, "bad signatures: %r" % [(r["event"], r["signature"]) for r in bad]
        for r in reqs:
            assert r["path"] == "/hook", r["path"]
            assert (r["content_type"] or "").startswith("application/json"), r["content_type"]
            assert r["event"] in EVENTS, r["event"]
            assert r["delivery"] and r["alert"], r
            assert r["doc"] is not None and r["doc"].get("id") == r["alert"], r
        # a receiver may drop what repeats a delivery id: an id never carries new content
        bodies = {}
        for r in reqs:
            bodies.setdefault(r["delivery"], set()).add(r["body"])
        reused = {k: v for k, v in bodies.items() if len(v) > 1}
        assert not reused, "one delivery id, different bodies: %r" % reused

    def cleanup(self):
        try:
            self.recv.stop()
        finally:
            self.d.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def opened_lines(log):
    return re.findall(r"^<(\d)>alert (alert-\d+) opened\b.*$", log, re.M)


def all_delivered(s, ids):
    """Every delivery of every alert in ids has been accepted by the receiver."""
    for id in ids:
        for dl in s.alert(id)["deliveries"]:
            if dl["delivered_at"] is None:
                return False
    return True


# ---- tests ----

def test_opens_at_threshold_and_delivers_signed_alert_json():
    with Setup() as s:
        seqs = [s.deny(minute=1), s.deny(minute=2)]
        # count - 1 denials: no alert, nothing queued
        assert s.alerts() == []
        assert s.metric("aupd_webhook_backlog") == 0
        seqs.append(s.deny(minute=3))
        items = s.alerts()
        assert len(items) == 1, items
        a = items[0]
        assert a["escalation"] == "repeated-denials" and a["level"] == "warning", a
        assert a["state"] == "open" and a["count"] == 3 and a["seqs"] == seqs, a
        assert a["group"] == {"tenant": "agency-a"}, a

        reqs = s.recv.wait_accepted([(a["id"], "alert.opened")])
        opened = [r for r in reqs if r["event"] == "alert.opened"]
        assert len(opened) == 1, opened
        doc = opened[0]["doc"]
        for k in ("id", "escalation", "level", "group", "count", "seqs", "tenant", "state"):
            assert doc[k] == a[k], (k, doc, a)
        assert doc["seqs"] == seqs and doc["count"] == 3
        s.check_signatures()

        # the alert shows the delivery, and the ledger says the receiver was told
        dl = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                 if x["delivered_at"]], "the delivery to be recorded")
        assert len(dl) == 1, dl
        assert dl[0]["delivery"] == opened[0]["delivery"], (dl, opened[0])
        assert dl[0]["event"] == "alert.opened" and dl[0]["notifier"] == "hook", dl
        assert dl[0]["attempts"] == 1 and dl[0]["last_status"] == 200, dl
        assert dl[0]["last_error"] is None, dl
        recs = [x for x in s.ledger("delivery") if x["delivery"] == opened[0]["delivery"]]
        assert len(recs) == 1, s.ledger("delivery")
        assert recs[0]["alert"] == a["id"] and recs[0]["event"] == "alert.opened", recs
        assert recs[0]["notifier"] == "hook" and recs[0]["status"] == 200, recs
        assert s.metric("aupd_webhook_backlog") == 0

        # one log line for the opened alert, at warning level for journald
        lines = opened_lines(s.d.log())
        assert lines == [("4", a["id"])], lines
        s.check_no_secret()
        assert s.d.stop() == 0


def test_update_ack_and_resolve_are_delivered():
    with Setup() as s:
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]
        s.recv.wait_accepted([(a["id"], "alert.opened")])
        last = s.deny(minute=10)  # within the cooldown: the same alert grows
        s.recv.wait_accepted([(a["id"], "alert.updated")])
        up = [r for r in s.recv.accepted() if r["event"] == "alert.updated"]
        assert max(r["doc"]["count"] for r in up) == 4, [r["doc"] for r in up]
        assert max(r["doc"]["last_seq"] for r in up) == last, [r["doc"] for r in up]
        assert len(s.alerts()) == 1

        acked = s.change(a["id"], "ack", "looking into it")
        assert acked["state"] == "acknowledged", acked
        s.recv.wait_accepted([(a["id"], "alert.acknowledged")])
        resolved = s.change(a["id"], "resolve", "tenant contacted")
        assert resolved["state"] == "resolved", resolved
        s.recv.wait_accepted([(a["id"], "alert.resolved")])

        by_event = {r["event"]: r for r in s.recv.accepted()}
        assert by_event["alert.acknowledged"]["doc"]["state"] == "acknowledged"
        assert by_event["alert.resolved"]["doc"]["state"] == "resolved"
        ids = [r["delivery"] for r in s.recv.accepted()]
        assert len(ids) == len(set(ids)), "a delivery id was reused for new content: %r" % ids
        s.check_signatures()
        wait_until(lambda: all_delivered(s, [a["id"]]), "every delivery to be recorded")
        events = sorted(x["event"] for x in s.ledger("delivery"))
        assert events == sorted(["alert.opened", "alert.updated", "alert.acknowledged",
                                 "alert.resolved"]), events
        s.check_no_secret()


def test_receiver_down_then_back_receives_every_alert():
    with Setup() as s:
        s.recv.stop()
        for m in range(3):
            s.deny("agency-a", minute=m)
        for m in range(3):
            s.deny("agency-b", minute=m)
        alerts = s.alerts()
        assert [x["group"] for x in alerts] == [{"tenant": "agency-a"}, {"tenant": "agency-b"}]
        ids = [x["id"] for x in alerts]
        s.change(ids[0], "ack", "seen")
        # two more denials within the cooldown: updates of the first alert, count 5 at last
        s.deny("agency-a", minute=5)
        last = s.deny("agency-a", minute=6)

        # while it is down, each delivery shows its attempts and the last error
        def failing():
            dls = [dl for id in ids for dl in s.alert(id)["deliveries"]]
            return all(dl["attempts"] >= 2 for dl in dls) and dls
        dls = wait_until(failing, "two failed attempts of every delivery")
        for dl in dls:
            assert dl["delivered_at"] is None and dl["next_attempt"], dl
            assert dl["last_error"], dl
            assert dl["last_status"] is None, dl
        # opened twice, acknowledged once, updated once or twice (an untried update
        # may be rewritten with the newer count)
        kinds = sorted(dl["event"] for dl in dls)
        assert kinds[:3] == ["alert.acknowledged", "alert.opened", "alert.opened"], kinds
        assert kinds[3:] in (["alert.updated"], ["alert.updated"] * 2), kinds
        assert s.metric("aupd_webhook_backlog") == len(dls)
        assert s.recv.all() == []
        assert "webhook alert.opened for %s to hook failed" % ids[0] in s.d.log()

        s.recv.start()
        s.recv.wait_accepted([(ids[0], "alert.opened"), (ids[1], "alert.opened"),
                              (ids[0], "alert.acknowledged"), (ids[0], "alert.updated")])
        wait_until(lambda: all_delivered(s, ids), "every delivery to be recorded")
        # the latest content reached the receiver
        up = [r["doc"] for r in s.recv.accepted() if r["event"] == "alert.updated"]
        assert max((d["count"], d["last_seq"]) for d in up) == (5, last), up
        assert s.metric("aupd_webhook_backlog") == 0
        s.check_signatures()
        # one log line per opened alert
        lines = opened_lines(s.d.log())
        assert sorted(lines) == sorted([("4", ids[0]), ("4", ids[1])]), lines
        s.check_no_secret()


def test_receiver_answering_503_then_back():
    with Setup() as s:
        s.recv.status = 503
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]
        s.recv.wait(lambda rs: len(rs) >= 2, "two refused attempts")
        dl = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                 if x["attempts"] >= 2], "two recorded attempts")[0]
        assert dl["last_status"] == 503 and "503" in dl["last_error"], dl
        assert dl["delivered_at"] is None, dl

        s.recv.status = 200
        s.recv.wait_accepted([(a["id"], "alert.opened")])
        reqs = s.recv.all()
        # every attempt of the one delivery: same id, same bytes, same signature
        assert {r["delivery"] for r in reqs} == {dl["delivery"]}, reqs
        assert len({r["body"] for r in reqs}) == 1 and len({r["signature"] for r in reqs}) == 1
        done = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                   if x["delivered_at"]], "the delivery to be recorded")[0]
        assert done["last_status"] == 200 and done["attempts"] == len(reqs), (done, len(reqs))
        s.check_signatures()
        s.check_no_secret()


def test_repeated_delivery_carries_the_same_delivery_id():
    with Setup() as s:
        s.recv.script = [500]
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]
        reqs = s.recv.wait_accepted([(a["id"], "alert.opened")])
        assert [r["answered"] for r in reqs] == [500, 200], reqs
        first, second = reqs
        assert first["delivery"] == second["delivery"], (first["delivery"], second["delivery"])
        assert first["body"] == second["body"]
        assert first["signature"] == second["signature"]
        done = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                   if x["delivered_at"]], "the delivery to be recorded")
        assert len(done) == 1 and done[0]["attempts"] == 2, done
        assert done[0]["delivery"] == first["delivery"], done
        recs = s.ledger("delivery")
        assert [x["delivery"] for x in recs] == [first["delivery"]], recs
        assert recs[0]["attempts"] == 2, recs
        s.check_signatures()


def test_receiver_that_never_answers_times_out_and_is_retried():
    with Setup() as s:
        s.recv.status = None  # takes the request, never answers
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]
        dl = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                 if x["attempts"] >= 1], "a timed-out attempt")[0]
        assert dl["delivered_at"] is None and dl["last_status"] is None, dl
        assert "time" in dl["last_error"].lower(), dl  # "Operation timed out ..."
        s.recv.status = 200
        reqs = s.recv.wait_accepted([(a["id"], "alert.opened")])
        # the receiver saw the body before the daemon gave up: the retry has the same id
        assert len(reqs) >= 2 and {r["delivery"] for r in reqs} == {dl["delivery"]}, reqs
        s.check_signatures()


def test_pending_update_is_sent_once_with_the_latest_content():
    # while the notifier is busy with a receiver that does not answer (for up to the
    # 5 s timeout), two updates of the alert queue up: the untried one is rewritten
    # with the newer count under a new delivery id, so one update carries count 5
    with Setup(timeout="5s") as s:
        s.recv.status = None
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]["id"]
        s.recv.wait(lambda rs: len(rs) == 1, "the opened alert in flight")
        s.deny(minute=10)
        last = s.deny(minute=11)
        s.recv.status = 200
        s.recv.wait_accepted([(a, "alert.opened"), (a, "alert.updated")])
        wait_until(lambda: all_delivered(s, [a]), "every delivery to be recorded")
        dls = s.alert(a)["deliveries"]
        assert [x["event"] for x in dls] == ["alert.opened", "alert.updated"], dls
        up = [r for r in s.recv.accepted() if r["event"] == "alert.updated"]
        assert len(up) == 1, [r["doc"] for r in up]
        assert up[0]["doc"]["count"] == 5 and up[0]["doc"]["last_seq"] == last, up[0]["doc"]
        assert up[0]["delivery"] == dls[1]["delivery"], (up[0]["delivery"], dls)
        s.check_signatures()


def restart_during_outage(sig):
    with Setup() as s:
        s.recv.stop()
        for m in range(3):
            s.deny("agency-a", minute=m)
        a = s.alerts()[0]["id"]
        wait_until(lambda: s.alert(a)["deliveries"][0]["attempts"] >= 1, "a failed attempt")
        s.change(a, "ack", "on it")
        # an alert opened just before the stop, possibly never tried
        for m in range(3):
            s.deny("agency-b", minute=m)
        b = s.alerts(tenant="agency-b")[0]["id"]
        rc = s.d.stop(sig)
        if sig == signal.SIGTERM:
            assert rc == 0, s.d.log()
        assert s.recv.all() == []

        s.recv.start()
        s.d.start()
        s.recv.wait_accepted([(a, "alert.opened"), (a, "alert.acknowledged"),
                              (b, "alert.opened")])
        wait_until(lambda: all_delivered(s, [a, b]), "every delivery to be recorded")
        assert s.metric("aupd_webhook_backlog") == 0
        s.check_signatures()
        # each delivery recorded as done went to the receiver under its id
        got = {r["delivery"] for r in s.recv.accepted()}
        for id in (a, b):
            for dl in s.alert(id)["deliveries"]:
                assert dl["delivery"] in got, (dl, got)
        recorded = {x["delivery"] for x in s.ledger("delivery")}
        assert got == recorded, (got, recorded)
        s.check_no_secret()


def test_sigterm_during_outage_still_delivers_everything():
    restart_during_outage(signal.SIGTERM)


def test_sigkill_during_outage_still_delivers_everything():
    restart_during_outage(signal.SIGKILL)


def test_tls_verification_is_on_without_ca_file():
    # the receiver's CA is not in the system store: without ca_file nothing may be sent
    with Setup(ca_file=False) as s:
        for m in range(3):
            s.deny(minute=m)
        a = s.alerts()[0]
        dl = wait_until(lambda: [x for x in s.alert(a["id"])["deliveries"]
                                 if x["attempts"] >= 1], "a failed attempt")[0]
        assert dl["delivered_at"] is None, dl
        assert "certificate" in (dl["last_error"] or "").lower(), dl
        assert s.recv.all() == [], "a request reached an untrusted receiver"
        s.check_no_secret()


run(globals())
