"""Idempotency across the in-memory keys and the merged index: a resent event is a
duplicate whether its key was merged or is still in memory, before and after a
restart and a SIGKILL; GET /v1/events finds both."""

from aupdtest import Daemon, event, ndjson, run


def post_all(d, token, events):
    r = d.post("/v1/events", ndjson(events), token=token, content_type="application/x-ndjson")
    assert r.status == 200, r
    return r.json()["results"]


def test_duplicates_across_merges_and_restarts():
    # merge every 7 keys, so batches of 10 cross merges all the time
    with Daemon(config="limits: {keys_in_memory: 7}\n") as d:
        ingest = d.token("idem-ingest", "ingest")
        auditor = d.token("idem-auditor", "auditor")
        d.start()
        first = {}
        for b in range(6):
            for v in post_all(d, ingest, [event("k%d-%d" % (b, i)) for i in range(10)]):
                assert not v["duplicate"], v
                first[v["id"]] = v["seq"]

        def resend_all():
            for b in range(6):
                ids = ["k%d-%d" % (b, i) for i in range(10)]
                for v in post_all(d, ingest, [event(i) for i in ids]):
                    assert v["duplicate"] and v["seq"] == first[v["id"]], v
            # the same ids under another tenant are new events
            for v in post_all(d, ingest, [event("k0-%d" % i, tenant="other-%d" % n)
                                          for i in range(3)]):
                assert not v["duplicate"], v

        assert "event keys into the idempotency index" in d.log(), d.log()
        n = 0
        resend_all()
        for stop in ("SIGTERM", "SIGKILL"):
            d.stop() if stop == "SIGTERM" else d.kill9()
            d.start()
            n += 1
            resend_all()
            for i in ("k0-0", "k3-7", "k5-9"):
                r = d.get("/v1/events/agency-a/%s" % i, token=auditor)
                assert r.status == 200 and r.json()["seq"] == first[i], r
        assert d.stop() == 0
        assert d.verify().returncode == 0


run(globals())
