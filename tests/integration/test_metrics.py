"""The Prometheus endpoint, scraped for real inside a lab namespace (issue 5 section 3).

``--metrics 127.0.0.1:PORT`` listens on the namespace's own loopback; the
scrape runs in that namespace too, so nothing leaves the lab.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab import Daemon, Host, Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import R2, WAIT, build_lan, state_re, wait_until
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]

PORT = 9477  # in the lab's namespace: nothing else listens there
VIP2, VIP2_PEER = "192.0.2.250", "192.0.2.251"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

SCRAPE = ("import sys, urllib.request; "
          "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")


def scrape(host: Host, port: int = PORT) -> Samples:
    """GET /metrics from inside ``host``; every sample by (name, labels)."""
    text = host.run([sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{port}/metrics"]).stdout
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    """The sample ``metric`` whose labels include ``labels`` (exactly one must match)."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == metric and want <= ls]
    assert len(found) <= 1, f"{metric}{labels} is ambiguous: {found}"
    return found[0] if found else None


def listeners(host: Host) -> list[str]:
    """Local addresses of the TCP sockets listening in ``host``'s namespace."""
    out = host.run(["ss", "-Hltn"]).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_metrics_endpoint_reports_state_counters_and_drops(lab: Lab) -> None:
    """State per VRID, effective priority, transitions, adverts sent (growing
    between two scrapes) and received, drops by reason, hook failures; a
    daemon started without --metrics listens on no TCP port."""
    net = build_lan(lab)
    # VRID 2 of r2 has another address list: r1 drops its adverts ("addresses").
    check = "[CHECK]\nname = chk\nscript = exit 1\ninterval = 0.2\nweight = -20\n"
    d1 = net.r1.start_daemon(check + vrid(1, 200, masterscript="exit 3")
                             + vrid(2, 200, addr=f"{VIP2}/24", trackscript="chk"),
                             extra_args=["--metrics", f"127.0.0.1:{PORT}"])
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100) + vrid(2, 100, addr=f"{VIP2_PEER}/24"))
    d1.wait_log(rf"metrics on http://127\.0\.0\.1:{PORT}/metrics", WAIT)
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    one = {"vrid": "1", "interface": "eth0", "family": "4"}
    two = {"vrid": "2", "interface": "eth0", "family": "4"}

    def ready() -> bool:
        s = scrape(net.r1)
        return ((value(s, "freevrrpd_drops_total", reason="addresses", **two) or 0) > 0
                and (value(s, "freevrrpd_hook_failures_total", **one) or 0) > 0)

    wait_until(ready, "r1 to count dropped adverts and the failed masterscript")
    first = scrape(net.r1)
    time.sleep(0.5)
    second = scrape(net.r1)

    for state in ("INIT", "BACKUP", "MASTER", "FAULT", "STOPPED"):
        want = 1.0 if state == "MASTER" else 0.0
        assert value(first, "freevrrpd_state", state=state, **one) == want, state
    assert value(first, "freevrrpd_effective_priority", **one) == 200.0
    assert value(first, "freevrrpd_transitions_total", **one) == 2.0  # INIT->BACKUP->MASTER
    sent1 = value(first, "freevrrpd_adverts_sent_total", **one)
    sent2 = value(second, "freevrrpd_adverts_sent_total", **one)
    assert sent1 is not None and sent2 is not None
    # 0.5 s at a 0.05 s interval is ~10 adverts; half of that is plenty of margin.
    assert sent2 >= sent1 + 5, (sent1, sent2)
    assert value(first, "freevrrpd_adverts_received_total", **one) == 0.0  # r2 is silent
    assert (value(first, "freevrrpd_drops_total", reason="addresses", **two) or 0) > 0
    # Every reason is exported from 0 (an alert on increase() sees the first drop).
    assert value(first, "freevrrpd_drops_total", reason="addresses", **one) == 0.0
    assert value(first, "freevrrpd_hook_failures_total", **one) == 1.0
    assert value(first, "freevrrpd_hook_failures_total", **two) == 0.0
    assert value(first, "freevrrpd_conflicts_total", **one) == 0.0
    # Issue 11: tracking, the check, the peer table, demotion.
    assert value(first, "freevrrpd_track_healthy", kind="script", name="chk", **two) == 0.0
    assert value(first, "freevrrpd_track_weight_applied", kind="script", name="chk",
                 **two) == -20.0
    assert value(first, "freevrrpd_effective_priority", **two) == 180.0
    assert value(first, "freevrrpd_check_healthy", check="chk") == 0.0
    assert (value(first, "freevrrpd_check_failures_total", check="chk") or 0) >= 1
    assert value(first, "freevrrpd_demoted", **one) == 0.0
    assert value(first, "freevrrpd_peer_refused_total", peer=R2, **two) == \
        value(first, "freevrrpd_drops_total", reason="addresses", **two)
    # Counters are Prometheus counters: *_total in the exposition, with created times
    # left out (the daemon's own start is in the status document).
    names = {n for n, _ in first}
    assert {"freevrrpd_state", "freevrrpd_effective_priority", "freevrrpd_transitions_total",
            "freevrrpd_adverts_sent_total", "freevrrpd_adverts_received_total",
            "freevrrpd_drops_total", "freevrrpd_conflicts_total",
            "freevrrpd_hook_failures_total"} <= names, names

    # Only the loopback address asked for listens; r2 (no --metrics) listens nowhere.
    assert listeners(net.r1) == [f"127.0.0.1:{PORT}"]
    assert listeners(net.r2) == []
    _stop(d1, d2)


def _stop(*daemons: Daemon) -> None:
    for d in daemons:
        assert d.stop() == 0, d.log()


def test_metrics_follow_a_state_change(lab: Lab) -> None:
    """When the master goes away the backup's metrics move to MASTER."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100), extra_args=["--metrics", f"127.0.0.1:{PORT}"])
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    labels = {"vrid": "1", "interface": "eth0", "family": "4"}
    wait_until(lambda: (value(scrape(net.r2), "freevrrpd_adverts_received_total", **labels)
                        or 0) > 0, "r2 to receive adverts")
    s = scrape(net.r2)
    assert value(s, "freevrrpd_state", state="BACKUP", **labels) == 1.0
    assert value(s, "freevrrpd_effective_priority", **labels) == 100.0
    assert value(s, "freevrrpd_transitions_total", **labels) == 1.0
    mark = d2.mark()
    assert d1.stop() == 0
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, mark)
    s = scrape(net.r2)
    assert value(s, "freevrrpd_state", state="MASTER", **labels) == 1.0
    assert value(s, "freevrrpd_state", state="BACKUP", **labels) == 0.0
    assert value(s, "freevrrpd_transitions_total", **labels) == 2.0
    assert d2.stop() == 0


GET = ("import sys, urllib.request, urllib.error\n"
       "try:\n"
       "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
       "    print(r.status, r.read().decode())\n"
       "except urllib.error.HTTPError as e:\n"
       "    print(e.code, e.read().decode())\n")


def get(host: Host, path: str) -> tuple[int, str]:
    out = host.run([sys.executable, "-c", GET, f"http://127.0.0.1:{PORT}{path}"]).stdout
    code, _, body = out.partition(" ")
    return int(code), body.strip()


def test_health_says_alive_and_which_router_is_master(lab: Lab) -> None:
    """Issue 11, section 4: /health is 200 while every router thread keeps its
    timers and 503 once one is stuck; /master/IF/VRID/FAMILY is 200 on the master
    only (for load balancers and Kubernetes probes)."""
    net = build_lan(lab)
    freeze = Path(lab.tmpdir, "freeze")
    argv = [sys.executable, "-m", "tests.support.frozen_master", str(freeze), "-F", "-d", "-f",
            "{conf}", "-p", "{pidfile}", "-s", "{socket}", "--metrics", f"127.0.0.1:{PORT}"]
    d1 = net.r1.start_daemon(vrid(1, 200, advertint=0.1), argv=argv)
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100, advertint=0.1), ["--metrics", f"127.0.0.1:{PORT}"])
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    assert get(net.r1, "/health") == (200, "ok")
    assert get(net.r1, "/master/eth0/1/4") == (200, "MASTER")
    assert get(net.r2, "/master/eth0/1/4") == (503, "BACKUP")
    assert get(net.r2, "/master/eth0/2/4")[0] == 404
    freeze.touch()
    d1.wait_log(r"frozen: every router thread is busy", timeout=5)
    wait_until(lambda: get(net.r1, "/health")[0] == 503, "r1's health to fail", timeout=10)
    assert "VRID 1 on eth0 (IPv4)" in get(net.r1, "/health")[1]
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT)
    assert get(net.r2, "/master/eth0/1/4") == (200, "MASTER")
    d1.kill9()
    assert d2.stop() == 0
