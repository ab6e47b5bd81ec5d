"""Security: TLS versions and ciphers (checked with openssl s_client), secrets kept out of
logs and the ledger, file modes, and dropping root after binding."""

import os
import pwd
import shutil
import sqlite3
import stat
import subprocess

from aupdtest import AUPD, Daemon, event, run, write


def s_client(d, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
                        "-servername", "localhost"] + list(args),
                       input="", capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if "Cipher is" in line:
            return p.returncode, line.split("Cipher is", 1)[1].strip()
    return p.returncode, "(none)"


def test_openssl_s_client_versions_and_ciphers():
    with Daemon() as d:
        d.start()
        rc, cipher = s_client(d, "-tls1_3")
        assert rc == 0 and cipher.startswith("TLS_"), (rc, cipher)
        rc, cipher = s_client(d, "-tls1_2")
        assert rc == 0 and ("GCM" in cipher or "CHACHA20" in cipher), (rc, cipher)
        print("TLS 1.2 negotiated %s" % cipher)
        for old in ("-tls1_1", "-tls1"):
            rc, cipher = s_client(d, old, "-cipher", "DEFAULT:@SECLEVEL=0")
            assert cipher == "(NONE)" or cipher == "(none)", (old, rc, cipher)
        for weak in ("AES128-SHA", "AES256-SHA256", "ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA",
                     "RC4-SHA", "NULL-SHA256", "ADH-AES128-GCM-SHA256"):
            rc, cipher = s_client(d, "-tls1_2", "-cipher", weak + ":@SECLEVEL=0")
            assert cipher in ("(NONE)", "(none)"), (weak, rc, cipher)
        d.stop()


def test_secrets_stay_out_of_logs_and_ledger():
    with Daemon(config="log_level: debug\n") as d:
        secret_file = os.path.join(d.tmp, "hook.secret")
        write(secret_file, "hook-secret-7f3a9c\n")
        os.chmod(secret_file, 0o600)
        d.write_config("log_level: debug\nnotifiers:\n  hook:\n    url: https://127.0.0.1:9/x\n"
                       "    secret_file: %s\n" % secret_file)
        ingest = d.token("sec-ingest", "ingest")
        auditor = d.token("sec-auditor", "auditor")
        d.start()
        assert d.post("/v1/events", event("s1"), token=ingest).status == 200
        assert d.get("/v1/verdicts", token=auditor).status == 200
        assert d.get("/v1/verdicts", token=ingest[:-2] + "xx").status == 401
        revoked = d.token("sec-revoked", "auditor")
        # used once, so that the running daemon has checked (and kept) it
        assert d.get("/v1/verdicts", token=revoked).status == 200
        from aupdtest import cli
        cli("token", "revoke", "sec-revoked", config=d.config_path)
        assert d.get("/v1/verdicts", token=revoked).status == 401
        assert d.stop() == 0
        key_pem = open(os.path.join(d.state, "ledger.key")).read()
        key_body = "".join(l for l in key_pem.splitlines() if "PRIVATE KEY" not in l)
        tls_key = "".join(l for l in open(os.path.join(d.state, "tls", "key.pem")).read()
                          .splitlines() if "PRIVATE KEY" not in l)
        log = d.log()
        secrets = [ingest, auditor, revoked, ingest[:-2] + "xx", "hook-secret-7f3a9c",
                   key_body[:40], tls_key[:40]]
        for s in secrets:
            assert s not in log, "a secret reached the log"
        db = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
        bodies = b"".join(r[0] for r in db.execute("SELECT body FROM ledger"))
        hashes = [r[0] for r in db.execute("SELECT hash FROM tokens")]
        db.close()
        for s in secrets:
            assert s.encode() not in bodies, "a secret reached the ledger"
        import hashlib
        assert hashlib.sha256(ingest.encode()).digest() in hashes  # stored hashed, only


def test_files_are_private():
    with Daemon() as d:
        d.token("mode-ingest", "ingest")
        d.start()
        modes = {}
        for root, dirs, files in os.walk(d.state):
            for n in dirs + files:
                p = os.path.join(root, n)
                modes[os.path.relpath(p, d.state)] = stat.S_IMODE(os.stat(p).st_mode)
        d.stop()
        for name in ("aupd.db", "aupd.db-wal", "aupd.db-shm", "ledger.key", "tls/key.pem"):
            if name in modes:
                assert modes[name] in (0o600, 0o640), (name, oct(modes[name]))
        assert modes["tls"] == 0o700 and modes["ledger.key"] == 0o600, modes
        # public material may be read by others
        assert modes["ledger.pub.pem"] == 0o644 and modes["tls/cert.pem"] == 0o644, modes


def test_root_drops_to_the_configured_user():
    if os.geteuid() != 0:
        print("skip: not running as root")
        return
    nobody = pwd.getpwnam("nobody")
    with Daemon() as d:
        os.chmod(d.tmp, 0o755)  # the account must reach state_dir and the rules
        d.write_config("user: nobody\n")
        ingest = d.token("drop-ingest", "ingest")  # made by root before the start
        d.start()
        with open("/proc/%d/status" % d.proc.pid) as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid"))}
        assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
        assert ids["Gid"][0] == str(nobody.pw_gid), ids
        assert "running as user nobody" in d.log()
        assert d.post("/v1/events", event("drop-1"), token=ingest).status == 200
        d.stop()
        for n in ("aupd.db", "ledger.key", "tls/key.pem"):
            assert os.stat(os.path.join(d.state, n)).st_uid == nobody.pw_uid, n
        # and it starts again as root, dropping again, with what it wrote
        d.start()
        assert d.post("/v1/events", event("drop-2"), token=ingest).status == 200
        assert d.stop() == 0
        assert d.verify().returncode == 0


def test_root_without_user_only_on_loopback():
    if os.geteuid() != 0:
        print("skip: not running as root")
        return
    with Daemon() as d:
        d.start()  # 127.0.0.1: allowed, with a warning
        assert "running as root: set `user:`" in d.log()
        d.stop()
        # reachable from the network as root: refused, nothing created
        text = open(d.config_path).read().replace("listen: 127.0.0.1:0\n", "listen: 0.0.0.0:0\n")
        write(d.config_path, text)
        shutil.rmtree(d.state)
        p = subprocess.run([AUPD, "serve", "--config", d.config_path], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1, p
        assert "refusing to run as root while listening on 0.0.0.0:0" in p.stderr, p.stderr
        assert not os.path.exists(d.state)
        # the same address with user: binds, then drops
        os.chmod(d.tmp, 0o755)
        d.write_config("user: nobody\n")
        text = open(d.config_path).read().replace("listen: 127.0.0.1:0\n", "listen: 0.0.0.0:0\n")
        write(d.config_path, text)
        d.start()
        assert "running as user nobody" in d.log()
        assert d.get("/healthz").status == 200
        assert d.stop() == 0


def test_unknown_user_is_refused():
    if os.geteuid() != 0:
        print("skip: not running as root")
        return
    with Daemon() as d:
        d.write_config("user: no-such-account-aupd\n")
        d.start(expect_fail=True)
        assert d.proc.wait(timeout=30) == 1
        assert "user 'no-such-account-aupd'" in d.log(), d.log()


run(globals())
