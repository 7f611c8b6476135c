"""Unicast peers on a LAN that drops multicast (issue 10, section 1).

The switch drops every frame to 224.0.0.18 and ff02::12 (an nftables rule of
the bridge family in the switch's namespace), as cloud and VM networks do:
multicast VRRP never arrives there.  With ``unicastpeer``, two and three
routers elect, fail over on a silent cut, and preempt back, over IPv4 and IPv6;
a router that is not a listed peer cannot take over.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab import Host, Lab, Switch
from tests.support.daemon_conf import vrid
from tests.support.ops_helpers import transitions_since, vrid_status
from tests.support.root import needs_root
from tests.support.vrrp_lab import PROBE_SETTLE, count, reaches, stop_all, wait_master

pytestmark = [pytest.mark.netns, needs_root]

INTERVAL = 0.1
def lan(lab: Lab, n: int) -> tuple[Switch, list[Host], Host]:
    sw = lab.add_switch()
    sw.drop_vrrp_multicast()
    routers = [lab.add_host(f"r{i}", sw, f"192.0.2.{i}/24", f"2001:db8::{i}/64")
               for i in range(1, n + 1)]
    client = lab.add_host("c", sw, "192.0.2.100/24", "2001:db8::100/64")
    return sw, routers, client


def conf(i: int, n: int, family: int, priority: int, peers: range | None = None,
         vmac: bool = True) -> str:
    """Router ``i`` of ``n``, listing the others (or ``peers``); IPv6 routers send from
    their global address (unicastsrc), so that is how the others list them."""
    others = [j for j in (peers or range(1, n + 1)) if j != i]
    if family == 4:
        return vrid(1, priority, advertint=INTERVAL, usevmac=vmac,
                    unicastpeer=", ".join(f"192.0.2.{j}" for j in others))
    return vrid(1, priority, addr="2001:db8::fe/64", advertint=INTERVAL, usevmac=vmac,
                unicastpeer=", ".join(f"2001:db8::{j}" for j in others),
                unicastsrc=f"2001:db8::{i}")


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("n", [2, 3])
def test_unicast_routers_elect_fail_over_and_preempt_without_multicast(
        lab: Lab, family: int, n: int) -> None:
    sw, routers, client = lan(lab, n)
    vip = "192.0.2.254" if family == 4 else "2001:db8::fe"
    prios = [200, 150, 100][:n]
    vmac = n == 3  # with the virtual MAC (three routers) and without it (two)
    first = routers[0].start_daemon(conf(1, n, family, prios[0], vmac=vmac))
    wait_master(first, family=family, timeout=15)
    others = [h.start_daemon(conf(i, n, family, p, vmac=vmac))
              for i, (h, p) in enumerate(zip(routers[1:], prios[1:], strict=True), start=2)]
    for d in others:
        d.wait_log(r"INIT -> BACKUP", timeout=15)
    time.sleep(PROBE_SETTLE)
    daemons = [first, *others]
    # Elected: r1 alone is master; its backups hear it over unicast only.
    assert [vrid_status(d, 1, family)["state"] for d in daemons] == \
        ["MASTER"] + ["BACKUP"] * (n - 1)
    status = vrid_status(others[0], 1, family)
    assert status["transport"] == "unicast" and status["adverts_received"] > 0
    assert status["master"] == ("192.0.2.1" if family == 4 else "2001:db8::1")
    assert sw.vrrp_multicast_dropped() == 0  # nobody sent any
    assert reaches(client, vip)
    # Failover: r1 cut off silently; r2 (the next priority) takes over.
    marks = [d.mark() for d in daemons]
    routers[0].isolate()
    wait_master(others[0], since=marks[1], family=family, timeout=5)
    assert reaches(client, vip)
    if n == 3:
        assert count(others[1], r"-> MASTER", since=marks[2]) == 0
    # Preemption: r1 back, it takes over again (RFC 5798 6.4.2) and r2 steps down.
    routers[0].reconnect()
    others[0].wait_log(r"MASTER -> BACKUP", timeout=5, since=marks[1])
    assert count(first, r"-> MASTER", since=marks[0]) == 0  # it never stopped being master
    assert reaches(client, vip)
    stop_all(daemons)


@pytest.mark.parametrize("family", [4, 6])
def test_a_router_that_is_not_a_listed_peer_cannot_take_over(lab: Lab, family: int) -> None:
    sw, routers, client = lan(lab, 3)
    r1, r2, r3 = routers
    d1 = r1.start_daemon(conf(1, 2, family, 150))
    wait_master(d1, family=family, timeout=15)
    d2 = r2.start_daemon(conf(2, 2, family, 100))
    d2.wait_log(r"INIT -> BACKUP", timeout=15)
    mark1, mark2 = d1.mark(), d2.mark()
    # r3 lists r1 and r2, but they do not list it: its priority-250 adverts are
    # dropped (reason "peer") and r1 stays master, r2 its backup.
    d3 = r3.start_daemon(conf(3, 3, family, 250))
    d3.wait_log(r"-> MASTER", timeout=15)
    time.sleep(1.0)
    assert transitions_since(d1, mark1) == [] and transitions_since(d2, mark2) == []
    assert vrid_status(d1, 1, family)["drops"].get("peer", 0) > 0
    assert vrid_status(d2, 1, family)["drops"].get("peer", 0) > 0
    assert "is not one of the unicastpeer addresses" in d1.log()
    stop_all([d1, d2, d3])


def test_reload_adds_and_removes_peers_without_a_transition(lab: Lab) -> None:
    """A third router joins: the two running ones list it by reload, without a
    transition or a restart, and r1 (master) now advertises to it too; a peer
    removed again is one reload, again without a transition."""
    sw, routers, client = lan(lab, 3)
    r1, r2, r3 = routers
    d1 = r1.start_daemon(conf(1, 2, 4, 150))
    wait_master(d1, timeout=15)
    d2 = r2.start_daemon(conf(2, 2, 4, 100))
    d2.wait_log(r"INIT -> BACKUP", timeout=15)
    marks = [d1.mark(), d2.mark()]
    for d, i, prio in ((d1, 1, 150), (d2, 2, 100)):
        Path(d.conf_path).write_text(conf(i, 3, 4, prio))
        assert "1 changed" in d.ctl("reload").stdout
    d3 = r3.start_daemon(conf(3, 3, 4, 50))
    d3.wait_log(r"INIT -> BACKUP", timeout=15)
    time.sleep(PROBE_SETTLE)
    assert vrid_status(d3, 1)["master"] == "192.0.2.1"
    # r3 hears r1: the reloaded r1 sends to the new peer as well.
    assert vrid_status(d1, 1)["unicast_peers"] == ["192.0.2.2", "192.0.2.3"]
    assert transitions_since(d1, marks[0]) == [] and transitions_since(d2, marks[1]) == []
    # Removed again from r1's list: one more in-place change.
    Path(d1.conf_path).write_text(conf(1, 2, 4, 150))
    assert "1 changed" in d1.ctl("reload").stdout
    assert transitions_since(d1, marks[0]) == []
    assert "restarted" not in d1.log()[marks[0]:].replace("0 restarted", "")
    stop_all([d1, d2, d3])


def test_ipv6_peers_by_their_link_local_addresses(lab: Lab) -> None:
    """Without unicastsrc an IPv6 router sends from its link-local address (RFC 5798
    5.1.2.1), so that is how its peers list it; the scope is the router's interface."""
    sw, (r1, r2), client = lan(lab, 2)
    ll1, ll2 = r1.link_local(), r2.link_local()
    assert ll1 is not None and ll2 is not None
    d1 = r1.start_daemon(vrid(1, 200, addr="2001:db8::fe/64", advertint=INTERVAL,
                              unicastpeer=ll2))
    wait_master(d1, family=6, timeout=15)
    d2 = r2.start_daemon(vrid(1, 100, addr="2001:db8::fe/64", advertint=INTERVAL,
                              unicastpeer=ll1))
    d2.wait_log(r"INIT -> BACKUP", timeout=15)
    time.sleep(PROBE_SETTLE)
    status = vrid_status(d2, 1, 6)
    assert status["master"] == ll1 and status["adverts_received"] > 0
    assert sw.vrrp_multicast_dropped() == 0
    mark = d2.mark()
    r1.isolate()
    wait_master(d2, since=mark, family=6, timeout=5)
    assert reaches(client, "2001:db8::fe")
    stop_all([d1, d2])
