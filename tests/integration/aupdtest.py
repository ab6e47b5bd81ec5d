"""aupdtest - start the real aupd daemon with a generated configuration and talk HTTPS to it.

Standard library only.  Environment (set by ctest): AUPD_BIN, the aupd binary;
AUPD_SOURCE_DIR, the source tree.  Each test file calls run(globals()), which runs
every test_* function in file order and exits 1 if any failed.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

AUPD = os.environ.get("AUPD_BIN") or os.path.join(os.path.dirname(__file__), "../../build/aupd")
SOURCE = os.environ.get("AUPD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")
# sanitizer builds are several times slower to start and answer
SLOW = 4 if os.environ.get("AUPD_SANITIZED") else 1


def cli(*args, config=None, check=True, input=None, timeout=60):
    """Runs `aupd ARGS...`; returns CompletedProcess with text stdout/stderr."""
    cmd = [AUPD] + list(args)
    if config:
        cmd += ["--config", config]
    p = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout * SLOW)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    return p


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Daemon:
    """One aupd serve process in its own temporary state directory."""

    def __init__(self, rules=None, config="", tls=True, tmp=None, keep_tmp=False):
        self.tmp = tmp or tempfile.mkdtemp(prefix="aupd-it-")
        self.own_tmp = tmp is None and not keep_tmp
        self.state = os.path.join(self.tmp, "state")
        self.config_path = os.path.join(self.tmp, "aupd.yaml")
        self.log_path = os.path.join(self.tmp, "aupd.log")
        self.tls = tls
        self.proc = None
        self.port = None
        if rules is None:
            rules_dir = os.path.join(self.tmp, "rules")
            os.makedirs(rules_dir, exist_ok=True)
            rules = [rules_dir]
        elif isinstance(rules, str):
            rules = [rules]
        self.rules = rules
        self.extra_config = config
        self.write_config()

    def write_config(self, extra=None):
        if extra is not None:
            self.extra_config = extra
        lines = [
            "listen: 127.0.0.1:0",
            "state_dir: %s" % self.state,
            "rules: [%s]" % ", ".join(json.dumps(r) for r in self.rules),
        ]
        if not self.tls:
            lines.append("tls: {enabled: false}")
        text = "\n".join(lines) + "\n" + self.extra_config
        with open(self.config_path, "w") as f:
            f.write(text)

    # ---- process ----

    def start(self, env=None, expect_fail=False, timeout=20):
        self.log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        logf = open(self.log_path, "a")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([AUPD, "serve", "--config", self.config_path],
                                     stdout=logf, stderr=logf, env=e)
        logf.close()
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            log = self.log()
            m = re.search(r"listening on https?://[^ ]*:(\d+)", log)
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                if expect_fail:
                    return self
                raise AssertionError("aupd exited %d at start:\n%s" % (self.proc.returncode, log))
            time.sleep(0.05)
        raise AssertionError("aupd did not start listening:\n%s" % self.log())

    def log(self):
        """The log of the current run."""
        with open(self.log_path, errors="replace") as f:
            f.seek(getattr(self, "log_offset", 0))
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and waits; returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("aupd did not stop within %ds after %s" % (timeout, sig))
        self.proc = None
        if rc != 0 and sig != signal.SIGKILL:
            # a failed stop is rare and timing-bound: say how it ended and what aupd last logged
            how = ("signal %s" % signal.Signals(-rc).name) if rc < 0 else ("exit status %d" % rc)
            sys.stderr.write("aupd ended with %s after %s; the end of its log:\n%s\n"
                             % (how, signal.Signals(sig).name, self.log()[-3000:]))
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ---- tokens and files ----

    def token(self, name, role, tenant=None):
        args = ["token", "create", "--name", name, "--role", role]
        if tenant is not None:
            args += ["--tenant", tenant]
        return cli(*args, config=self.config_path).stdout.strip()

    @property
    def db_path(self):
        return os.path.join(self.state, "aupd.db")

    @property
    def cert_path(self):
        return os.path.join(self.state, "tls", "cert.pem")

    @property
    def pubkey_path(self):
        return os.path.join(self.state, "ledger.pub.pem")

    def verify(self, check=True):
        return cli("verify", "--db", self.db_path, "--key", self.pubkey_path, check=check)

    # ---- HTTP ----

    def context(self, **kw):
        ctx = ssl.create_default_context(cafile=self.cert_path)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def connect(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(),
                                               timeout=timeout * SLOW)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def request(self, method, path, body=None, token=None, headers=None, content_type=None,
                conn=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            content_type = content_type or "application/json"
        if isinstance(body, str):
            body = body.encode()
        if content_type:
            h["Content-Type"] = content_type
        own = conn is None
        c = conn or self.connect()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            if own:
                c.close()

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)

    def post(self, path, body=None, token=None, **kw):
        return self.request("POST", path, body=body, token=token, **kw)

    def post_chunked(self, path, chunks, token=None, content_type=None, timeout=10):
        """POSTs `chunks` (bytes) with Transfer-Encoding: chunked and no Content-Length.

        A server may answer before the body is complete and close the connection;
        the response is read all the same.  `timeout` (seconds, scaled by SLOW) is a
        safety net for a server that never answers.
        """
        h = {"Content-Type": content_type} if content_type else {}
        if token:
            h["Authorization"] = "Bearer " + token
        c = self.connect(timeout=timeout)
        try:
            try:
                c.request("POST", path, body=iter(chunks), headers=h, encode_chunked=True)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # answered early; the response may still be readable
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def query(self, sql, args=()):
        """Rows of a read-only SQL query on the daemon's database (safe while it runs)."""
        return query(self.db_path, sql, args)


def event(id, tenant="agency-a", **kw):
    """A valid event; keyword arguments override or add fields (None removes one)."""
    e = {"id": id, "time": "2026-01-15T10:00:00Z", "tenant": tenant, "actor": "analyst-17",
         "action": "face.search"}
    for k, v in kw.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def query(db_path, sql, args=()):
    """Rows of a read-only SQL query on an SQLite file."""
    con = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def assert_problem(resp, status, detail_part=None, pointer=None):
    assert resp.status == status, "expected %d, got %r" % (status, resp)
    ct = resp.header("Content-Type") or ""
    assert ct.startswith("application/problem+json"), "content type %r" % ct
    doc = resp.json()
    for k in ("type", "title", "status", "detail"):
        assert k in doc, "problem lacks %s: %r" % (k, doc)
    assert doc["status"] == status
    if detail_part:
        assert detail_part in doc["detail"], "detail %r lacks %r" % (doc["detail"], detail_part)
    if pointer is not None:
        assert doc.get("pointer") == pointer, "pointer %r, expected %r" % (doc.get("pointer"),
                                                                          pointer)
    return doc


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(namespace):
    """Runs every test_* function of a module in order; exits 1 on any failure."""
    only = sys.argv[1:]
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    failed = []
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn()
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception:
            failed.append(name)
            print("FAIL %s (%.1fs)" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - len(failed) if not only else len(only) - len(failed),
                                    len(failed)))
    sys.exit(1 if failed else 0)
