"""Real freevrrpd daemons handing over the virtual router (issue 3, section 7).

Failover on a cut link, SIGTERM hand-over, the client's neighbour entry with
and without the virtual MAC, and a healed partition.  Gaps are measured on the
switch (a pcap on the bridge sees every advert that reached the LAN) and
compared with the RFC 5798 section 6.1 timers computed from the priorities.
"""

from __future__ import annotations

import time

import pytest

from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.vrrp_lab import (
    PROBE_SETTLE,
    VIP4,
    VMAC4,
    adverts,
    build_lan,
    count,
    first_advert,
    garps,
    last_advert,
    mdi,
    reaches,
    skew,
    start_master_first,
    stop_all,
    wait_master,
    wait_neigh,
)

pytestmark = [pytest.mark.netns, needs_root]


def test_failover_on_a_silent_master_takes_master_down_interval(lab: Lab) -> None:
    # Timing is the point: a 0.2 s interval makes Master_Down_Interval (0.68 s
    # for priority 150) large against thread wake-up jitter.
    interval = 0.2
    lan, routers, client = build_lan(lab)
    cap = lab.capture(lan)
    r1, r2, r3 = routers
    conf = {p: vrid(priority=p, advertint=interval) for p in (100, 150, 200)}
    d3, d2, d1 = start_master_first([(r3, conf[200]), (r2, conf[150]), (r1, conf[100])])
    time.sleep(PROBE_SETTLE)
    assert reaches(client, VIP4)
    m2, m3 = d2.mark(), d3.mark()
    # Isolated, not unplugged: r3 keeps its carrier, notices nothing and stays
    # master; only its adverts stop reaching the LAN.
    r3.isolate()
    wait_master(d2, since=m2, timeout=5)
    assert reaches(client, VIP4)
    time.sleep(0.2)
    advs = adverts(cap)
    old = last_advert(advs, "192.0.2.3")
    assert old is not None
    new = first_advert(advs, "192.0.2.2", after=old.time)
    assert new is not None
    gap, expected = new.time - old.time, mdi(150, interval)
    print(f"\nfailover gap {gap:.3f} s, Master_Down_Interval {expected:.3f} s, "
          f"ratio {gap / expected:.3f}")
    # RFC 5798 6.4.2: the backup takes over when Master_Down_Timer fires.
    assert 0.9 * expected <= gap <= expected + 0.25
    assert count(d3, r"MASTER -> ", since=m3) == 0  # the silent master never noticed
    stop_all([d1, d2, d3])


def test_sigterm_hands_over_within_skew_time(lab: Lab) -> None:
    # A 0.3 s interval separates Skew_Time (0.18 s for priority 100) clearly
    # from Master_Down_Interval (1.08 s).
    interval = 0.3
    lan, (r1, r2), _ = build_lan(lab, n=2)
    cap = lab.capture(lan)
    confs = [vrid(priority=p, advertint=interval) for p in (200, 100)]
    d2, d1 = start_master_first([(r2, confs[0]), (r1, confs[1])])
    time.sleep(PROBE_SETTLE)
    m1 = d1.mark()
    assert d2.stop() == 0
    wait_master(d1, since=m1, timeout=5)
    time.sleep(0.2)
    advs = adverts(cap)
    resign = first_advert(advs, "192.0.2.2", priority=0)
    assert resign is not None, "no priority-0 advert from the stopping master"
    new = first_advert(advs, "192.0.2.1", after=resign.time)
    assert new is not None
    gap, expected, down = new.time - resign.time, skew(100, interval), mdi(100, interval)
    print(f"\nSIGTERM hand-over {gap:.3f} s, Skew_Time {expected:.3f} s, "
          f"Master_Down_Interval {down:.3f} s")
    # RFC 5798 6.4.2: on a priority-0 advert the backup waits Skew_Time only.
    assert 0.8 * expected <= gap < expected + 0.2
    assert gap < down / 2
    stop_all([d1])


def test_with_the_virtual_mac_the_client_entry_stays_the_vmac_across_failover(lab: Lab) -> None:
    _, (r1, r2), client = build_lan(lab, n=2)
    d2, d1 = start_master_first([(r2, vrid(priority=200)), (r1, vrid(priority=100))])
    assert reaches(client, VIP4)
    assert client.neigh(VIP4) == VMAC4
    m1 = d1.mark()
    r2.cut()
    wait_master(d1, since=m1)
    # RFC 5798 7.3: the new master answers with the same virtual MAC, so the
    # client's entry needs no change at all.
    assert client.neigh(VIP4) == VMAC4
    assert reaches(client, VIP4)
    assert client.neigh(VIP4) == VMAC4
    stop_all([d1, d2])


def test_without_the_virtual_mac_gratuitous_arp_moves_the_client_entry(lab: Lab) -> None:
    _, (r1, r2), client = build_lan(lab, n=2)
    confs = [vrid(priority=p, useVMAC=False) for p in (200, 100)]
    d2, d1 = start_master_first([(r2, confs[0]), (r1, confs[1])])
    assert reaches(client, VIP4)  # creates the client's entry
    assert client.neigh(VIP4) == r2.mac
    m1 = d1.mark()
    r2.cut()
    wait_master(d1, since=m1)
    # The client sends nothing here: only r1's gratuitous ARP (RFC 5798 6.4.2)
    # can have moved its entry to r1's own MAC.
    assert wait_neigh(client, VIP4, r1.mac) == r1.mac
    assert reaches(client, VIP4)
    stop_all([d1, d2])


def test_a_healed_partition_leaves_one_master_which_reannounces(lab: Lab) -> None:
    interval = 0.1
    lan, (r1, r2), client = build_lan(lab, n=2)
    cap = lab.capture(lan)
    # No second gratuitous-ARP burst: any announcement after healing is then
    # the split-brain one.
    confs = [vrid(priority=p, advertint=interval, garprepeatdelay=0) for p in (200, 100)]
    d1, d2 = start_master_first([(r1, confs[0]), (r2, confs[1])])
    time.sleep(PROBE_SETTLE)
    m1, m2 = d1.mark(), d2.mark()
    r1.isolate()
    wait_master(d2, since=m2, timeout=5)
    time.sleep(3 * interval)
    assert count(d1, r"MASTER -> ", since=m1) == 0  # two masters now
    m2 = d2.mark()
    healing = time.time()
    r1.reconnect()
    d2.wait_log(r"MASTER -> BACKUP", since=m2, timeout=5)
    time.sleep(10 * interval)
    advs = adverts(cap)
    resign = first_advert(advs, "192.0.2.2", after=healing, priority=0)
    assert resign is not None, "the loser did not resign with priority 0"
    took = resign.time - healing
    print(f"\npartition healed: one master after {took:.3f} s (interval {interval} s)")
    # RFC 5798 6.4.3: a master hearing a higher priority becomes backup; each
    # side hears the other within one interval of healing.
    assert took <= interval + 0.25
    assert first_advert(advs, "192.0.2.2", after=resign.time) is None
    assert len([a for a in advs if a.src == "192.0.2.1" and a.time > resign.time]) >= 5
    assert count(d1, r"MASTER -> ", since=m1) == 0
    assert count(d2, r"MASTER -> BACKUP", since=m2) == 1
    # The winner re-announces the address from the virtual MAC, so the switch
    # and the hosts learn where it is again.
    assert count(d1, r"announced \d+ address\(es\): split brain", since=m1) >= 1, d1.log()[m1:]
    assert any(mac == VMAC4 for _, mac in garps(cap, VIP4, after=healing))
    assert reaches(client, VIP4)
    stop_all([d1, d2])


def test_a_master_lost_during_the_backups_start_up_probe_is_taken_over_after_it(
        lab: Lab) -> None:
    """The backup's Master_Down deadline is kept by the repeats tap while the
    backup's own timers wait for its probe (RFC 5227 2.1.1): when the master
    goes silent inside that second, the backup still takes over once the
    probe is done, Master_Down_Interval later (RFC 5798 6.4.2)."""
    _, (r1, r2), _client = build_lan(lab, n=2)
    (d2,) = start_master_first([(r2, vrid(priority=200))])
    d1 = r1.start_daemon(vrid(priority=100))
    d1.wait_log(r"probing 192\.0\.2\.254", timeout=10)
    r2.cut()  # inside the 1 s probe
    m = d1.wait_log(r"BACKUP -> MASTER: (.*)", timeout=5)
    assert "Master_Down_Interval" in m.group(1)
    stop_all([d1, d2])
