"""docs/openapi.yaml describes exactly the server's routes (issue 6).

The server's routes come from the `app_routes` table in daemon/api.c; the
document's from the `paths:` section of docs/openapi.yaml, read by a small
indentation-based reader (no YAML library: the standard library has none).
Both directions fail: a route the server has and the document lacks, and a
documented method and path the server does not have.  Then a running daemon
is asked each documented method and path with an operator token (templated
segments filled with any value): the router must know it, so neither its
"no resource" 404 nor a 405 may come back.
"""

import json
import os
import re
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import SOURCE, Daemon, run

API_C = os.path.join(SOURCE, "daemon", "api.c")
OPENAPI = os.path.join(SOURCE, "docs", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def server_routes(path=API_C):
    """{(METHOD, pattern)} from app_routes, with every `{}` segment written as `{}`."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"app_routes\s*\[\s*\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert m, "no app_routes table in %s" % path
    table = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    routes = set(re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"', table))
    assert routes, "app_routes in %s has no {\"METHOD\", \"/path\", ...} entries" % path
    return routes


def _key(line):
    """(indent, key) of a `key:` line of block YAML, or None."""
    m = re.match(r"^( *)(\"[^\"]*\"|'[^']*'|[^\s#'\"][^:#]*?)\s*:(\s|$)", line)
    if not m:
        return None
    key = m.group(2)
    if key[0] in "\"'":
        key = key[1:-1]
    return len(m.group(1)), key


def document_routes(path=OPENAPI):
    """{(METHOD, path)} from the top-level `paths:` mapping of an OpenAPI YAML file.

    Reads only what this needs: path keys (the first indentation under `paths:`)
    and the HTTP-method keys one level below each.  Other keys, block scalars
    and deeper lines are skipped by their indentation.
    """
    with open(path) as f:
        lines = f.read().split("\n")
    routes, in_paths, path_indent, method_indent, current = set(), False, None, None, None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            k = _key(line)
            if in_paths:
                break  # the next top-level key ends the section
            if k and k[1] == "paths":
                assert line.split(":", 1)[1].split("#")[0].strip() == "", \
                    "%s:%d: write paths: as a block mapping" % (path, n)
                in_paths = True
            continue
        if not in_paths:
            continue
        if path_indent is None:
            path_indent = indent
        if indent < path_indent:
            raise AssertionError("%s:%d: unexpected indentation in paths:" % (path, n))
        if indent == path_indent:
            k = _key(line)
            assert k and k[1].startswith("/"), "%s:%d: a path key must start with /" % (path, n)
            current, method_indent = k[1], None
            continue
        if method_indent is None:
            method_indent = indent
        if indent == method_indent:
            k = _key(line)
            if k and k[1].lower() in HTTP_METHODS:
                routes.add((k[1].upper(), current))
    assert in_paths, "%s has no top-level paths:" % path
    return routes


def _shape(p):
    """A path with every {name} (OpenAPI) or {} (api.c) template written as {}."""
    return re.sub(r"\{[^}/]*\}", "{}", p)


def test_parsers_read_what_they_should():
    # the reader itself: nested keys, quoted keys, block scalars, other top-level keys
    import tempfile
    doc = "\n".join([
        "openapi: 3.1.0",
        "paths:",
        "  /a:",
        "    summary: |",
        "      get: this is text, not a method",
        "    get:",
        "      responses:",
        "        post: {}",
        "    parameters: []",
        "  \"/b/{x}/c\":",
        "    # a comment",
        "    post: {responses: {}}",
        "    delete:",
        "      description: x",
        "components:",
        "  /z:",
        "    get: {}",
        ""])
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(doc)
    try:
        assert document_routes(f.name) == {("GET", "/a"), ("POST", "/b/{x}/c"),
                                           ("DELETE", "/b/{x}/c")}, document_routes(f.name)
    finally:
        os.unlink(f.name)
    routes = server_routes()
    assert ("POST", "/v1/events") in routes and ("GET", "/healthz") in routes, routes


def test_document_and_server_have_the_same_routes():
    server = {(m, _shape(p)) for m, p in server_routes()}
    doc = {(m, _shape(p)): p for m, p in document_routes()}
    missing = sorted(server - set(doc))
    extra = sorted(set(doc) - server)
    problems = []
    if missing:
        problems.append("routes in daemon/api.c that docs/openapi.yaml lacks: " +
                        ", ".join("%s %s" % r for r in missing))
    if extra:
        problems.append("routes in docs/openapi.yaml that daemon/api.c lacks: " +
                        ", ".join("%s %s" % (m, doc[(m, p)]) for m, p in extra))
    assert not problems, "; ".join(problems)


def _router_miss(resp):
    """True when the answer says the server has no such route (not a missing record)."""
    if resp.status == 405:
        return True
    if resp.status != 404:
        return False
    try:
        detail = resp.json().get("detail", "")
    except ValueError:
        return True
    return detail.startswith("no resource at ")


def test_running_daemon_answers_every_documented_route():
    with Daemon() as d:
        d.start()
        op = d.token("openapi-operator", "operator")
        failed = []
        for method, path in sorted(document_routes()):
            url = re.sub(r"\{[^}/]*\}", "x", path)
            body = json.dumps({}) if method in ("POST", "PUT", "PATCH") else None
            r = d.request(method, url, body=body, token=op,
                          content_type="application/json" if body else None)
            if _router_miss(r):
                failed.append("%s %s -> %r" % (method, url, r))
        # the check above must be able to fail: an unknown path is the router's 404
        assert _router_miss(d.get("/v1/no-such-route", token=op))
        assert _router_miss(d.request("DELETE", "/v1/rules", token=op))
        assert d.stop() == 0
        assert not failed, "documented routes the daemon does not have: " + "; ".join(failed)


run(globals())
