"""Abusive clients: slow headers, slow bodies, thousands of idle connections, a client
that never reads, a flood from one token.  The daemon keeps serving others within
its configured limits:

- limits.connection_timeout (here 2 s): an idle or stalled connection is closed;
- limits.max_connections (here 400): connections beyond it are refused at once;
- limits.rate_per_token / rate_burst (here 50/s, burst 50): further requests get 429.
"""

import resource
import socket
import subprocess
import ssl
import threading
import time

from aupdtest import SLOW, Daemon, event, run

CONFIG = """limits:
  connection_timeout: 2s
  max_connections: 400
  rate_per_token: 50
  rate_burst: 50
"""


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n), hard), hard))


def tls(d, timeout=10):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    return d.context().wrap_socket(s, server_hostname="127.0.0.1")


def server_holds(d, sock):
    """True while the daemon still has an established connection with this client socket."""
    port = sock.getsockname()[1]
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % d.port],
                         capture_output=True, text=True, check=True).stdout
    return any(line.split()[-1].endswith(":%d" % port) for line in out.splitlines() if line)


def served_quickly(d, token, limit_s=3.0):
    """A normal client's request is answered (200) within limit_s seconds."""
    t0 = time.time()
    r = d.get("/v1/verdicts?limit=1", token=token)
    return r.status == 200 and time.time() - t0 < limit_s * SLOW, r


def closed_by_server(sock, within_s):
    """True when the server ends the connection within `within_s` (what it sent first is
    read and dropped)."""
    deadline = time.time() + within_s
    while True:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        if time.time() > deadline:
            return False


def test_slow_headers_and_bodies_are_cut_off():
    with Daemon(config=CONFIG) as d:
        auditor = d.token("abuse-auditor", "auditor")
        ingest = d.token("abuse-ingest", "ingest")
        d.start()
        slow = []
        for i in range(40):
            t = tls(d)
            t.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # headers that never finish
            slow.append(t)
        for i in range(40):
            t = tls(d)
            t.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      ingest.encode() + b"\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 5000\r\n\r\n{\"id\":")  # a body that stalls
            slow.append(t)
        ok, r = served_quickly(d, auditor)
        assert ok, r
        # each stalled connection is closed once the timeout passes
        for t in slow:
            assert closed_by_server(t, 10 * SLOW), "a stalled connection stayed open"
            t.close()
        ok, r = served_quickly(d, auditor)
        assert ok, r
        assert d.stop() == 0


def test_thousands_of_idle_connections():
    raise_fd_limit(4096)
    with Daemon(config=CONFIG) as d:
        auditor = d.token("idle-auditor", "auditor")
        d.start()
        idle = []
        for i in range(300):  # under max_connections: others are still served
            idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=10))
        ok, r = served_quickly(d, auditor)
        assert ok, r
        # every one of them is shut once connection_timeout passes, TLS never started
        time.sleep(3 * SLOW)
        assert not any(server_holds(d, s) for s in idle[:20])
        for s in idle:
            assert closed_by_server(s, 6 * SLOW), "an idle connection outlived the timeout"
            s.close()
        # far over max_connections: the excess waits in the listen queue or is refused,
        # slots are freed timeout after timeout, and others are served again
        idle = []
        for i in range(1500):
            try:
                idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=2))
            except OSError:
                pass
        deadline = time.time() + 40 * SLOW
        while time.time() < deadline:
            ok, r = served_quickly(d, auditor, limit_s=10)
            if ok:
                break
        assert ok, r
        for s in idle:
            s.close()
        assert d.proc.poll() is None
        assert d.stop() == 0


def test_a_client_that_never_reads():
    with Daemon(config=CONFIG) as d:
        auditor = d.token("lazy-auditor", "auditor")
        other = d.token("other-auditor", "auditor")
        ingest = d.token("lazy-ingest", "ingest")
        d.start()
        for i in range(20):
            d.post("/v1/events", [event("lz-%d-%d" % (i, j)) for j in range(5)], token=ingest)
        t = tls(d)
        req = ("GET /v1/verdicts?limit=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % auditor).encode()
        t.sendall(req * 40)  # pipelined, answers never read
        ok, r = served_quickly(d, other)
        assert ok, r
        time.sleep(6 * SLOW)  # connection_timeout, never reading a byte
        assert not server_holds(d, t), "the daemon still holds a client that never reads"
        t.close()
        t.close()
        assert d.stop() == 0


def test_flood_from_one_token_gets_429_others_served():
    with Daemon(config=CONFIG) as d:
        flooder = d.token("flood-ingest", "ingest")
        other = d.token("calm-ingest", "ingest")
        d.start()
        statuses = []
        stop = False

        def flood():
            conn = d.connect()
            n = 0
            while not stop:
                n += 1
                r = d.request("POST", "/v1/events", body=event("fl-%d" % n), token=flooder,
                              conn=conn)
                statuses.append((r.status, r.header("Retry-After")))

        th = threading.Thread(target=flood, daemon=True)
        th.start()
        time.sleep(1.5 * SLOW)
        calm = [d.post("/v1/events", event("calm-%d" % i), token=other).status for i in range(5)]
        stop = True
        th.join(timeout=30)
        limited = [s for s in statuses if s[0] == 429]
        assert limited, "the flood was never limited: %d requests" % len(statuses)
        assert all(ra and int(ra) >= 1 for _, ra in limited), limited[:3]
        assert {s for s, _ in statuses} <= {200, 429}, set(statuses)
        assert calm == [200] * 5, calm
        assert d.stop() == 0


run(globals())
