"""The HTTPS server, the command line, start-up and shutdown (issue 2)."""

import os
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aupdtest import (AUPD, SOURCE, Daemon, assert_problem, cli, run, write)


def test_health_and_ready_over_tls():
    with Daemon() as d:
        d.start()
        r = d.get("/healthz")
        assert r.status == 200 and r.json() == {"status": "ok"}, r
        r = d.get("/readyz")
        assert r.status == 200, r
        assert d.stop() == 0


def test_generated_tls_pair_and_fingerprint_logged():
    with Daemon() as d:
        d.start()
        key = os.path.join(d.state, "tls", "key.pem")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        fp = subprocess.run(["openssl", "x509", "-in", d.cert_path, "-noout", "-fingerprint",
                             "-sha256"], capture_output=True, text=True, check=True)
        fingerprint = fp.stdout.strip().split("=", 1)[1]
        assert fingerprint in d.log(), d.log()
        # a restart reuses the same pair
        assert d.stop() == 0
        d.start()
        assert fingerprint in d.log()
        d.stop()


def test_state_files_are_private():
    with Daemon() as d:
        d.start()
        d.stop()
        for name in ("aupd.db", "ledger.key"):
            mode = stat.S_IMODE(os.stat(os.path.join(d.state, name)).st_mode)
            assert mode == 0o600, "%s is %o" % (name, mode)
        assert stat.S_IMODE(os.stat(d.state).st_mode) == 0o700


def handshake(d, version, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    ctx.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return t.version(), t.cipher()[0]


def test_tls_versions_and_ciphers():
    with Daemon() as d:
        d.start()
        assert handshake(d, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
        assert handshake(d, ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
        for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            try:
                v = handshake(d, old)
            except (ssl.SSLError, ConnectionError, OSError):
                continue
            raise AssertionError("%s was accepted: %r" % (old, v))
        # TLS 1.2 without forward secrecy or with CBC: refused
        for weak in ("AES128-SHA", "AES256-SHA256", "DES-CBC3-SHA"):
            try:
                v = handshake(d, ssl.TLSVersion.TLSv1_2, weak + ":@SECLEVEL=0")
            except (ssl.SSLError, ConnectionError, OSError):
                continue
            raise AssertionError("weak cipher %s was accepted: %r" % (weak, v))
        assert d.get("/healthz").status == 200
        d.stop()


def test_problem_json_404_405():
    with Daemon() as d:
        d.start()
        doc = assert_problem(d.get("/nope"), 404)
        assert doc["type"].startswith("urn:aupd:problem:")
        r = d.post("/healthz", body="{}", content_type="application/json")
        assert_problem(r, 405)
        assert "GET" in (r.header("Allow") or "")
        r = d.request("DELETE", "/v1/events")
        assert_problem(r, 405)
        assert r.header("Allow") == "POST"
        d.stop()


def test_sigterm_exits_zero_and_finishes():
    with Daemon() as d:
        d.start()
        conn = d.connect()
        assert d.request("GET", "/healthz", conn=conn).status == 200
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, d.log()
        assert "stopped" in d.log()
        d.start()
        assert d.stop(signal.SIGINT) == 0


def test_sighup_keeps_serving():
    with Daemon() as d:
        d.start()
        d.proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            if "reload" in d.log():
                break
            import time
            time.sleep(0.05)
        assert d.get("/healthz").status == 200
        assert d.proc.poll() is None
        assert d.stop() == 0


def test_systemd_notify_ready():
    with Daemon() as d:
        path = os.path.join(d.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(20)
        try:
            d.start(env={"NOTIFY_SOCKET": path})
            msg = s.recv(4096).decode()
            assert "READY=1" in msg, msg
            d.stop()
            msg = s.recv(4096).decode()
            assert "STOPPING=1" in msg, msg
        finally:
            s.close()


def test_plain_http_only_on_loopback():
    with Daemon(tls=False) as d:
        d.start()
        assert d.get("/healthz").status == 200
        assert "without TLS" in d.log()
        d.stop()
        d.write_config("listen: 0.0.0.0:0\n")
        # the generated config already has listen: put the non-loopback one last
        text = open(d.config_path).read().replace("listen: 127.0.0.1:0\n", "")
        write(d.config_path, text)
        p = subprocess.run([AUPD, "serve", "--config", d.config_path], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1, p
        assert "tls.enabled: false is only allowed" in p.stderr, p.stderr
        assert d.config_path + ":" in p.stderr


def test_bad_configuration_names_the_line():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "bad.yaml")
    write(path, "listen: 127.0.0.1:8443\nlimits:\n  max_bodyy: 1MiB\n")
    p = subprocess.run([AUPD, "serve", "--config", path], capture_output=True, text=True)
    assert p.returncode == 1
    assert "%s:3:3: error: unknown limits key 'max_bodyy' (did you mean 'max_body'?)" % path \
        in p.stderr, p.stderr
    p = subprocess.run([AUPD, "serve", "--config", os.path.join(tmp, "missing.yaml")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "missing.yaml" in p.stderr


def test_address_in_use_is_a_clear_error():
    with Daemon() as d:
        d.start()
        with Daemon() as e:
            text = open(e.config_path).read().replace("listen: 127.0.0.1:0",
                                                      "listen: 127.0.0.1:%d" % d.port)
            write(e.config_path, text)
            e.start(expect_fail=True)
            assert e.proc.wait(timeout=30) == 75  # temporary: systemd retries
            assert "cannot listen on 127.0.0.1:%d" % d.port in e.log(), e.log()
        d.stop()


def test_configuration_without_rules_key_starts():
    # every key has a default: a file naming only where to listen and keep state starts,
    # with the default rules directory, or with no rules while it does not exist
    with Daemon() as d:
        write(d.config_path, "listen: 127.0.0.1:0\nstate_dir: %s\n" % d.state)
        d.start()
        assert d.get("/readyz").status == 200
        if not os.path.exists("/etc/aupd/rules.d"):
            assert "/etc/aupd/rules.d: the default rules directory does not exist" in d.log()
            tok = d.token("aud", "auditor")
            assert d.get("/v1/rules", token=tok).json()["rules"] == []
        d.stop()


def test_usage_errors_are_one_line():
    for args in ([], ["rules"], ["rules", "check"], ["rules", "test"], ["token"],
                 ["token", "create"], ["token", "create", "--bogus"], ["token", "list", "-c"],
                 ["serve", "--bogus"], ["serve", "--config"], ["serve", "-x"],
                 ["replay", "events.ndjson"], ["replay", "--rules", "r"],
                 ["verify", "--frobnicate"], ["version", "extra"], ["frobnicate"]):
        p = cli(*args, check=False)
        assert p.returncode == 2, (args, p)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("aupd: "), (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)
    p = cli("serve", "--config", check=False)
    assert "option '--config' needs a value" in p.stderr, p.stderr
    p = cli("serve", "--bogus", check=False)
    assert "unknown option '--bogus'" in p.stderr, p.stderr
    p = cli("serve", "--help=x", check=False)
    assert p.returncode == 2 and "option '--help=x' takes no value" in p.stderr, p.stderr


def test_rules_errors_always_have_a_position():
    tmp = tempfile.mkdtemp()
    missing = os.path.join(tmp, "missing.yaml")
    p = cli("rules", "check", missing, check=False)
    assert p.returncode == 1 and p.stderr.startswith(missing + ":1:1: error: cannot open"), p
    bad = os.path.join(tmp, "bad.yaml")
    write(bad, "version: 1\nrules:\n  - id: x\n    bogus: 1\n")
    for sub in ("check", "test"):
        p = cli("rules", sub, bad, missing, check=False)
        assert p.returncode == 1, p
        errs = p.stderr.splitlines()
        assert bad + ":4:5: error: unknown rule key 'bogus'" in errs, errs
        assert missing + ":1:1: error: cannot open: No such file or directory" in errs, errs
    # rules test ends with its summary line all the same
    assert p.stdout.splitlines()[-1] == "0 passed, 0 failed", p
    assert "aupd: rules test: the rules do not load (2 errors); no test ran" in errs, errs


def test_every_subcommand_has_help():
    for args in (["--help"], ["serve", "--help"], ["rules", "--help"], ["replay", "--help"],
                 ["verify", "--help"], ["token", "--help"], ["token", "create", "--help"],
                 ["version", "--help"]):
        p = cli(*args, check=False)
        assert p.returncode == 0 and p.stdout.startswith("usage: aupd"), (args, p)
    p = cli("version")
    assert p.stdout.startswith("aupd ")
    p = cli("frobnicate", check=False)
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = cli("serve", "--bogus", check=False)
    assert p.returncode == 2


def test_systemd_unit_verifies():
    if not shutil_which("systemd-analyze"):
        print("skip: systemd-analyze is not installed")
        return
    unit = open(os.path.join(SOURCE, "systemd", "aupd.service")).read()
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "aupd.service")
    write(path, unit.replace("/usr/bin/aupd", os.path.abspath(AUPD)))
    p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for key in ("Type=notify", "ExecReload=", "ProtectSystem=strict", "NoNewPrivileges=yes",
                "CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes",
                "SystemCallFilter=@system-service", "RestrictAddressFamilies=",
                "StateDirectory=aupd", "ConfigurationDirectory=aupd"):
        assert key in unit, key


def test_install_layout():
    build = os.path.dirname(os.path.abspath(AUPD))
    if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
        print("skip: %s is not a CMake build tree" % build)
        return
    prefix = tempfile.mkdtemp()
    p = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    for f in ("bin/aupd", "lib/systemd/system/aupd.service", "lib/sysusers.d/aupd.conf",
              "etc/aupd/aupd.yaml", "etc/aupd/rules.d/10-face-recognition.yaml",
              "share/doc/aupd/README.md", "share/doc/aupd/docs/api.md"):
        assert os.path.exists(os.path.join(prefix, f)), f
    unit = open(os.path.join(prefix, "lib/systemd/system/aupd.service")).read()
    assert "ExecStart=%s/bin/aupd serve" % prefix in unit, unit
    # the installed configuration and sample rules load together as they are
    p = subprocess.run([os.path.join(prefix, "bin/aupd"), "rules", "check", "--config",
                        os.path.join(prefix, "etc/aupd/aupd.yaml"),
                        os.path.join(prefix, "etc/aupd/rules.d")], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("OK:"), p.stderr
    import shutil
    shutil.rmtree(prefix)


def shutil_which(name):
    import shutil
    return shutil.which(name)


run(globals())
