"""Real freevrrpd daemons electing a master in the namespace lab (issue 3, section 7).

Routers r1..r3 (192.0.2.1..3, 2001:db8::1..3) and a client c (.100) share one
switch; the virtual address is 192.0.2.254 (2001:db8::fe).  Every test reads
what the daemons logged and, where timing or the wire is the point, what the
switch saw in a pcap.  Short VRRPv3 intervals keep the tests fast.
"""

from __future__ import annotations

import time

import pytest

from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.vrrp_lab import (
    VIP4,
    VIP6,
    VMAC4,
    VMAC6,
    adverts,
    build_lan,
    count,
    first_advert,
    master_line,
    reaches,
    start_master_first,
    start_together,
    status,
    stop_all,
    wait_master,
)

pytestmark = [pytest.mark.netns, needs_root]

FAST = 0.05  # seconds: the advert interval of tests where timing is not the point


# Both with the conflict checker (the default: a backup's timers wait for its
# first probe of the VIP, issue 3 section 3) and without it.
@pytest.mark.parametrize("conflictcheck", [True, False], ids=["default", "no-conflictcheck"])
def test_three_routers_entering_backup_at_once_elect_the_highest_and_serve_the_vmac(
    lab: Lab, conflictcheck: bool,
) -> None:
    # The lower routers lose the race only by their Skew_Time (RFC 5798 6.1):
    # 0.195 * interval for priority 150 against 200.  A 0.2 s interval leaves
    # them ~40 ms of scheduling slack on a busy machine.
    interval = 0.2
    lan, routers, client = build_lan(lab)
    cap = lab.capture(lan)
    confs = [vrid(priority=p, advertint=interval, conflictcheck=conflictcheck)
             for p in (100, 150, 200)]
    daemons = start_together(lan, routers, confs)
    wait_master(daemons[2], timeout=5)
    time.sleep(12 * interval)  # RFC 5798 6.4.2: a backup that hears the master stays backup
    for d in daemons[:2]:
        assert count(d, r"INIT -> BACKUP") == 1, d.log()
        assert count(d, master_line()) == 0, f"{d.host.name} became master:\n{d.log()}"
    assert count(daemons[2], master_line()) == 1
    assert reaches(client, VIP4)
    assert client.neigh(VIP4) == VMAC4
    # Only the master ever advertised (RFC 5798 6.4.2: backups stay silent).
    assert {a.src for a in adverts(cap)} == {"192.0.2.3"}
    stop_all(daemons)


def test_the_old_master_returns_and_preempts(lab: Lab) -> None:
    _, (r1, r2), _ = build_lan(lab, n=2)
    d2, d1 = start_master_first([(r2, vrid(priority=200)), (r1, vrid(priority=100))])
    m1 = d1.mark()
    r2.cut()
    wait_master(d1, since=m1)
    m1, m2 = d1.mark(), d2.mark()
    r2.reconnect()
    # RFC 5798 6.4.2: Preempt_Mode is True by default, so the higher-priority
    # backup ignores the lower master's adverts and takes over again.
    wait_master(d2, since=m2, timeout=5)
    d1.wait_log(r"MASTER -> BACKUP", since=m1, timeout=5)
    time.sleep(10 * FAST)
    assert count(d1, master_line(), since=m1) == 0, d1.log()[m1:]
    assert count(d2, r"MASTER -> ", since=m2) == 0, d2.log()[m2:]
    stop_all([d1, d2])


def test_preempt_no_keeps_the_returning_higher_router_backup(lab: Lab) -> None:
    lan, (r1, r2), _ = build_lan(lab, n=2)
    cap = lab.capture(lan)
    pairs = [(r2, vrid(priority=200, preempt=False)), (r1, vrid(priority=100))]
    d2, d1 = start_master_first(pairs)
    m1 = d1.mark()
    r2.cut()
    wait_master(d1, since=m1)
    m1, m2 = d1.mark(), d2.mark()
    r2.reconnect()
    back = time.time()
    d2.wait_log(r"INIT -> BACKUP", since=m2, timeout=5)
    time.sleep(15 * FAST)  # >= 10 advert intervals
    # RFC 5798 6.4.2: with Preempt_Mode False a backup accepts a lower master.
    assert count(d2, master_line(), since=m2) == 0, d2.log()[m2:]
    assert count(d1, r"MASTER -> ", since=m1) == 0, d1.log()[m1:]
    assert first_advert(adverts(cap), "192.0.2.2", after=back) is None
    assert status(d2)[0] == "BACKUP" and status(d1)[0] == "MASTER"
    stop_all([d1, d2])


def test_ipv6_vrid_elects_answers_ping6_with_the_ipv6_virtual_mac_and_fails_over(
    lab: Lab,
) -> None:
    _, (r1, r2), client = build_lan(lab, n=2, ipv6=True)
    confs = [vrid(priority=p, version=3, addr="2001:db8::fe/64") for p in (200, 100)]
    d2, d1 = start_master_first([(r2, confs[0]), (r1, confs[1])], family=6)
    assert reaches(client, VIP6)
    assert client.neigh(VIP6) == VMAC6
    m1 = d1.mark()
    r2.cut()
    wait_master(d1, since=m1, family=6)
    assert reaches(client, VIP6)
    assert client.neigh(VIP6) == VMAC6
    stop_all([d1, d2])


def test_one_host_is_master_of_one_vrid_and_backup_of_another(lab: Lab) -> None:
    lan, (r1, r2), client = build_lan(lab, n=2)
    vip2 = "192.0.2.253"

    def conf(prio1: int, prio2: int) -> str:
        return vrid(1, prio1) + "\n" + vrid(2, prio2, addr=f"{vip2}/24")

    def settled() -> bool:
        return ([status(d1, 1)[0], status(d1, 2)[0], status(d2, 1)[0], status(d2, 2)[0]]
                == ["MASTER", "BACKUP", "BACKUP", "MASTER"])

    cap = lab.capture(lan)
    d1, d2 = r1.start_daemon(conf(200, 100)), r2.start_daemon(conf(100, 200))
    wait_master(d1, vrid=1, timeout=10)
    wait_master(d2, vrid=2, timeout=10)
    deadline = time.monotonic() + 5
    while not settled():  # both VRIDs started at once: allow the start-up race to end
        assert time.monotonic() < deadline, d1.log() + d2.log()
        time.sleep(0.1)
    m1, m2, since = d1.mark(), d2.mark(), time.time()
    time.sleep(12 * FAST)
    assert count(d1, r" -> ", since=m1) == 0 and count(d2, r" -> ", since=m2) == 0
    assert settled()
    held1, held2 = r1.addresses(), r2.addresses()
    assert f"{VIP4}/24" in held1 and f"{vip2}/24" not in held1
    assert f"{vip2}/24" in held2 and f"{VIP4}/24" not in held2
    assert reaches(client, VIP4) and reaches(client, vip2)
    assert client.neigh(VIP4) == VMAC4 and client.neigh(vip2) == "00:00:5e:00:01:02"
    senders = {(a.vrid, a.src) for a in adverts(cap) if a.time > since}
    assert senders == {(1, "192.0.2.1"), (2, "192.0.2.2")}
    stop_all([d1, d2])


def test_a_wrong_password_cannot_disturb_the_election(lab: Lab) -> None:
    # Passwords exist only in VRRPv2 (RFC 3768 5.3.6), whose interval is whole
    # seconds: r1 needs Master_Down_Interval (3.6 s) to become master.
    lan, routers, _ = build_lan(lab)
    r1, r3 = routers[0], routers[2]
    cap = lab.capture(lan)
    d1 = r1.start_daemon(vrid(priority=100, version=2, advertint=1, password="right"))
    wait_master(d1, timeout=10)
    m1 = d1.mark()
    rogue = r3.start_daemon(vrid(priority=254, version=2, advertint=1, password="wrong"))
    # The rogue drops r1's adverts, so it becomes master too and advertises 254.
    wait_master(rogue, timeout=10)
    time.sleep(2.5)  # two more rogue adverts
    state, drops = status(d1)
    assert state == "MASTER"
    assert count(d1, r"MASTER -> ", since=m1) == 0, d1.log()[m1:]
    # RFC 3768 7.1: an advert whose authentication does not match is discarded.
    assert drops.get("auth", 0) > 0, drops
    line = r"misconfigured peer 192\.0\.2\.3: wrong password"
    assert count(d1, line) == 1, d1.log()
    advs = adverts(cap)
    first_rogue = first_advert(advs, "192.0.2.3", priority=254)
    assert first_rogue is not None
    later = [a for a in advs if a.src == "192.0.2.1" and a.time > first_rogue.time]
    assert len(later) >= 2 and all(a.priority == 100 for a in later)
    stop_all([d1, rogue])
