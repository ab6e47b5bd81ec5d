"""The bad-input catalogue: malformed requests of every kind, each with its expected
status and problem type; afterwards the server still serves and stored nothing.

Each case is (name, request, status, problem slug or None).  A request is either
keyword arguments for Daemon.request, or raw bytes sent over TLS as they are.
"""

import json
import socket
import sqlite3
import ssl

from aupdtest import Daemon, event, ndjson, run

GOOD = event("good-1")


def ev(**kw):
    """A valid event with fields replaced (None removes one), as JSON text."""
    e = event("bad-1")
    for k, v in kw.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return json.dumps(e)


def deep(n):
    v = 1
    for _ in range(n):
        v = {"a": v}
    return v


CASES = [
    # ---- bodies that do not parse: 400, nothing stored ----
    ("unterminated object", {"body": '{"id": "x"'}, 400, "bad-request"),
    ("trailing comma", {"body": '{"id": "x",}'}, 400, "bad-request"),
    ("single quotes", {"body": "{'id': 'x'}"}, 400, "bad-request"),
    ("bare word", {"body": "hello"}, 400, "bad-request"),
    ("NaN literal", {"body": '{"id":"x","quantity":NaN}'}, 400, "bad-request"),
    ("Infinity literal", {"body": '{"id":"x","quantity":Infinity}'}, 400, "bad-request"),
    ("number overflow 1e400", {"body": ev()[:-1] + ',"quantity":1e400}'}, 400, "bad-request"),
    ("duplicate key", {"body": '{"id":"a","id":"b"}'}, 400, "bad-request"),
    ("two documents", {"body": ev() + ev()}, 400, "bad-request"),
    ("empty body", {"body": ""}, 400, "bad-request"),
    ("whitespace body", {"body": "   \n "}, 400, "bad-request"),
    ("null body", {"body": "null"}, 400, "bad-request"),
    ("number body", {"body": "42"}, 400, "bad-request"),
    ("string body", {"body": '"event"'}, 400, "bad-request"),
    ("empty array", {"body": "[]"}, 400, "bad-request"),
    ("nested 3000 deep", {"body": "[" * 3000 + "]" * 3000}, 400, "bad-request"),
    ("invalid UTF-8 in a string", {"body": b'{"id":"x","tenant":"\xff\xfe","time":"t"}'}, 400,
     "bad-request"),
    ("overlong UTF-8", {"body": b'{"id":"x","actor":"\xc0\xaf"}'}, 400, "bad-request"),
    ("lone surrogate escape", {"body": '{"id":"x","actor":"\\ud800"}'}, 400, "bad-request"),
    ("UTF-16 body", {"body": ev().encode("utf-16")}, 400, "bad-request"),
    ("ndjson of blank lines", {"body": "\n\n\n", "content_type": "application/x-ndjson"}, 400,
     "bad-request"),
    # ---- single events that parse but are invalid: the item's problem itself ----
    ("not an object in an array", {"body": "[1]"}, 200, None),
    ("missing id", {"body": ev(id=None)}, 400, "invalid-event"),
    ("empty id", {"body": ev(id="")}, 400, "invalid-event"),
    ("id 129 characters", {"body": ev(id="a" * 129)}, 400, "invalid-event"),
    ("id with a space", {"body": ev(id="a b")}, 400, "invalid-event"),
    ("id with a slash", {"body": ev(id="a/b")}, 400, "invalid-event"),
    ("id non-ASCII", {"body": ev(id="ä")}, 400, "invalid-event"),
    ("id a number", {"body": ev(id=7)}, 400, "invalid-event"),
    ("id null", {"body": '{"id":null,"time":"2026-01-15T10:00:00Z","tenant":"a","actor":"b",'
                         '"action":"x.y"}'}, 400, "invalid-event"),
    ("missing time", {"body": ev(time=None)}, 400, "invalid-event"),
    ("time without offset", {"body": ev(time="2026-01-15T10:00:00")}, 400, "invalid-event"),
    ("time date only", {"body": ev(time="2026-01-15")}, 400, "invalid-event"),
    ("time February 30", {"body": ev(time="2026-02-30T10:00:00Z")}, 400, "invalid-event"),
    ("time month 13", {"body": ev(time="2026-13-01T10:00:00Z")}, 400, "invalid-event"),
    ("time hour 24", {"body": ev(time="2026-01-15T24:00:00Z")}, 400, "invalid-event"),
    ("time offset +25:00", {"body": ev(time="2026-01-15T10:00:00+25:00")}, 400,
     "invalid-event"),
    ("time 10 fraction digits", {"body": ev(time="2026-01-15T10:00:00.0123456789Z")}, 400,
     "invalid-event"),
    ("time a number", {"body": ev(time=1768471200)}, 400, "invalid-event"),
    ("time empty", {"body": ev(time="")}, 400, "invalid-event"),
    ("missing tenant", {"body": ev(tenant=None)}, 400, "invalid-event"),
    ("tenant empty", {"body": ev(tenant="")}, 400, "invalid-event"),
    ("tenant 129 characters", {"body": ev(tenant="é" * 129)}, 400, "invalid-event"),
    ("tenant with a newline", {"body": ev(tenant="a\nb")}, 400, "invalid-event"),
    ("tenant with a tab", {"body": ev(tenant="a\tb")}, 400, "invalid-event"),
    ("tenant an object", {"body": ev(tenant={"x": 1})}, 400, "invalid-event"),
    ("missing actor", {"body": ev(actor=None)}, 400, "invalid-event"),
    ("actor with DEL", {"body": ev(actor="a\x7f")}, 400, "invalid-event"),
    ("actor with a C1 control", {"body": ev(actor="a\u0085b")}, 400, "invalid-event"),
    ("missing action", {"body": ev(action=None)}, 400, "invalid-event"),
    ("action uppercase", {"body": ev(action="Face.search")}, 400, "invalid-event"),
    ("action double dot", {"body": ev(action="face..search")}, 400, "invalid-event"),
    ("action leading dot", {"body": ev(action=".face")}, 400, "invalid-event"),
    ("action trailing dot", {"body": ev(action="face.")}, 400, "invalid-event"),
    ("action with a space", {"body": ev(action="face search")}, 400, "invalid-event"),
    ("action starts with a digit", {"body": ev(action="1face")}, 400, "invalid-event"),
    ("purpose a number", {"body": ev(purpose=3)}, 400, "invalid-event"),
    ("purpose empty", {"body": ev(purpose="")}, 400, "invalid-event"),
    ("resource a string", {"body": ev(resource="blob://x")}, 400, "invalid-event"),
    ("resource value a number", {"body": ev(resource={"id": 1})}, 400, "invalid-event"),
    ("resource value null", {"body": ev(resource={"id": None})}, 400, "invalid-event"),
    ("resource bad field name", {"body": ev(resource={"a.b": "x"})}, 400, "invalid-event"),
    ("resource.created not a time", {"body": ev(resource={"created": "yesterday"})}, 400,
     "invalid-event"),
    ("resource value too long", {"body": ev(resource={"id": "x" * 3000})}, 400,
     "invalid-event"),
    ("quantity negative", {"body": ev(quantity=-1)}, 400, "invalid-event"),
    ("quantity a string", {"body": ev(quantity="5")}, 400, "invalid-event"),
    ("quantity a boolean", {"body": ev(quantity=True)}, 400, "invalid-event"),
    ("quantity null", {"body": ev(quantity=None)[:-1] + ',"quantity":null}'}, 400,
     "invalid-event"),
    ("attributes a list", {"body": ev(attributes=[1, 2])}, 400, "invalid-event"),
    ("attributes 33 deep", {"body": ev(attributes=deep(32))}, 400, "invalid-event"),
    ("NUL in a string", {"body": ev(actor="a\u0000b")}, 400, "invalid-event"),
    ("unknown field", {"body": ev(tenat="a")}, 400, "invalid-event"),
    ("unknown field at the top of an array item", {"body": "[" + ev(extra=1) + "]"}, 200, None),
    # ---- content types ----
    ("no content type", {"body": ev(), "content_type": None}, 415, "unsupported-media-type"),
    ("text/plain", {"body": ev(), "content_type": "text/plain"}, 415, "unsupported-media-type"),
    ("application/xml", {"body": ev(), "content_type": "application/xml"}, 415,
     "unsupported-media-type"),
    ("multipart/form-data", {"body": ev(), "content_type": "multipart/form-data; boundary=x"},
     415, "unsupported-media-type"),
    ("form-urlencoded", {"body": "id=x", "content_type": "application/x-www-form-urlencoded"},
     415, "unsupported-media-type"),
    ("application/jsonx", {"body": ev(), "content_type": "application/jsonx"}, 415,
     "unsupported-media-type"),
    # ---- sizes ----
    ("body over max_body", {"body": ev(attributes={"pad": "x" * 9000})}, 413, "too-large"),
    ("batch over max_batch", {"body": "[" + ",".join([json.dumps(event("b%d" % i))
                                                      for i in range(6)]) + "]"}, 413,
     "batch-too-large"),
    ("ndjson over max_batch", {"body": ndjson([event("n%d" % i) for i in range(6)]),
                               "content_type": "application/x-ndjson"}, 413, "batch-too-large"),
    # ---- methods and paths ----
    ("GET /v1/events", {"method": "GET", "body": None}, 405, "method-not-allowed"),
    ("PUT /v1/events", {"method": "PUT"}, 405, "method-not-allowed"),
    ("DELETE /v1/events", {"method": "DELETE", "body": None}, 405, "method-not-allowed"),
    ("PATCH /v1/events", {"method": "PATCH"}, 405, "method-not-allowed"),
    ("trailing slash", {"path": "/v1/events/"}, 404, "not-found"),
    ("double slash", {"path": "//v1/events"}, 404, "not-found"),
    ("upper case path", {"path": "/V1/EVENTS"}, 404, "not-found"),
    ("dot segments", {"path": "/v1/../v1/events"}, 404, "not-found"),
    ("bad percent escape", {"method": "GET", "path": "/v1/events/a%ZZ/b", "body": None}, 400,
     "bad-request"),
    ("encoded NUL in the path", {"method": "GET", "path": "/v1/events/a%00/b", "body": None},
     400, "bad-request"),
    ("too many segments", {"method": "GET", "path": "/v1/events/a/b/c", "body": None}, 404,
     "not-found"),
    ("unknown query parameter", {"method": "GET", "path": "/v1/verdicts?tenat=a", "body": None,
                                 "token": "auditor"}, 400, "bad-query"),
    ("limit 0", {"method": "GET", "path": "/v1/verdicts?limit=0", "body": None,
                 "token": "auditor"}, 400, "bad-query"),
    ("limit not a number", {"method": "GET", "path": "/v1/verdicts?limit=ten", "body": None,
                            "token": "auditor"}, 400, "bad-query"),
    ("forged cursor", {"method": "GET", "path": "/v1/verdicts?cursor=zzz", "body": None,
                       "token": "auditor"}, 400, "bad-query"),
    ("since not a time", {"method": "GET", "path": "/v1/verdicts?since=yesterday",
                          "body": None, "token": "auditor"}, 400, "bad-query"),
    # ---- tokens ----
    ("no Authorization", {"token": None}, 401, "unauthorized"),
    ("Basic scheme", {"token": None, "headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, 401,
     "unauthorized"),
    ("Bearer without a token", {"token": None, "headers": {"Authorization": "Bearer"}}, 401,
     "unauthorized"),
    ("Bearer and spaces", {"token": None, "headers": {"Authorization": "Bearer    "}}, 401,
     "unauthorized"),
    ("unknown token", {"token": "aupd_" + "A" * 43}, 401, "unauthorized"),
    ("a 4 KiB token", {"token": "x" * 4096}, 401, "unauthorized"),
    ("token with a NUL byte", {"token": None, "headers": {"Authorization": "Bearer a%00b"}},
     401, "unauthorized"),
    ("auditor token posting events", {"token": "auditor"}, 403, "forbidden"),
    ("ingest token reading verdicts", {"method": "GET", "path": "/v1/verdicts", "body": None},
     403, "forbidden"),
    ("foreign tenant for a bound token", {"token": "bound", "body": ev(tenant="other")}, 403,
     "forbidden-tenant"),
]

RAW_CASES = [
    # raw HTTP over TLS: framing errors libmicrohttpd answers itself (or closes)
    ("Content-Length not a number",
     b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", (400,)),
    ("request line garbage", b"GARBAGE\r\n\r\n", (400, None)),
    ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", (400, 200, None)),
    ("64 KiB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
     (431, 413, 400, None)),
    ("HTTP/0.9 style", b"GET /healthz\r\n\r\n", (400, 505, None)),
    ("unknown HTTP version", b"GET /healthz HTTP/3.7\r\nHost: x\r\n\r\n", (505, 400, None)),
]


def raw(d, data):
    """Sends raw bytes over TLS; returns the status of the answer, or None if closed."""
    ctx = d.context()
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            try:
                t.sendall(data)
                got = t.recv(4096)
            except (ConnectionError, ssl.SSLError, socket.timeout):
                return None
    if not got.startswith(b"HTTP/1."):
        return None
    return int(got.split(b" ", 2)[1])


def test_catalogue():
    with Daemon(config="limits: {max_body: 8KiB, max_batch: 5}\n") as d:
        tokens = {"ingest": d.token("cat-ingest", "ingest"),
                  "auditor": d.token("cat-auditor", "auditor"),
                  "bound": d.token("cat-bound", "ingest", tenant="agency-a")}
        d.start()
        failures = []
        for name, spec, status, slug in CASES:
            spec = dict(spec)
            method = spec.pop("method", "POST")
            path = spec.pop("path", "/v1/events")
            body = spec.pop("body", GOOD)
            ct = spec.pop("content_type", "application/json")
            tok = spec.pop("token", "ingest")
            headers = spec.pop("headers", None)
            if isinstance(body, dict):
                body = json.dumps(body)
            r = d.request(method, path, body=body, content_type=ct,
                          token=tokens.get(tok, tok) if tok else None, headers=headers)
            problem = None
            if (r.header("Content-Type") or "").startswith("application/problem+json"):
                problem = r.json()
            if r.status != status:
                failures.append("%s: status %d, expected %d: %s" % (name, r.status, status,
                                                                   r.body[:200]))
            elif slug and (not problem or problem.get("type") != "urn:aupd:problem:" + slug
                           or not problem.get("detail")):
                failures.append("%s: problem %r, expected type %s" % (name, problem, slug))
            elif status == 200:
                doc = r.json()  # per-item rejection inside a 200 envelope
                if doc["accepted"] != 0 or doc["rejected"] != 1:
                    failures.append("%s: %r" % (name, doc))
        for name, data, statuses in RAW_CASES:
            got = raw(d, data)
            if got not in statuses:
                failures.append("%s (raw): got %r, expected one of %r" % (name, got, statuses))
        assert not failures, "\n".join(failures)
        print("cases: %d requests, %d raw" % (len(CASES), len(RAW_CASES)))
        # the server still serves, and stored nothing from all of that
        assert d.get("/healthz").status == 200
        r = d.post("/v1/events", GOOD, token=tokens["ingest"])
        assert r.status == 200 and r.json()["accepted"] == 1, r
        assert d.stop() == 0
        c = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        ids = [row[0] for row in c.execute("SELECT id FROM events")]
        c.close()
        assert ids == ["good-1"], ids
        assert d.verify().returncode == 0


run(globals())
