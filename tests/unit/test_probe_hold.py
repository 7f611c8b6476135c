"""Probe before claiming, on a fake clock (RFC 5227 2.1.1, RFC 4862 5.4; core.probing).

A backup probes its virtual addresses on every entry into Backup and its
Master_Down / preemption timers wait for that probe ("the hold").  Answers
from routers of the VRID are no conflict; any other holder makes the router
not eligible until a later probe finds the addresses free.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.actions import Report, StartProbe, State
from freevrrpd.core.packet import encode
from freevrrpd.core.probing import (
    CONFLICT,
    PROBE_TIME,
    RECHECK_CONFLICT,
    RECHECK_OK,
    settle_time,
)
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V4, RouterSettings, VirtualAddress
from tests.support.sim import SimLan

VIP = ip_address("192.0.2.254")
FOREIGN_MAC = bytes.fromhex("02aa00000001")
V3 = {"version": 3, "advert_int_cs": 10, "conflict_check": True}  # 100 ms adverts


def probe_window() -> float:
    """How long an entry into Backup waits before the timers may run: settle, then probe."""
    return settle_time(0.1) + PROBE_TIME


def test_a_lone_backup_becomes_master_only_after_its_probe() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=200, **V3)
    lan.start()
    mdi = a.router.master_down_interval
    assert mdi < probe_window()  # the probe is what the first election waits for
    lan.run_for(mdi + 0.01)
    assert lan.masters() == [] and a.router.held
    lan.run_for(probe_window())
    assert lan.masters() == ["a"]
    ((t_probe, probe),) = a.probes
    assert t_probe == pytest.approx(settle_time(0.1)) and probe.addresses == (VIP,)
    # The timer ran out during the probe: it fires Skew_Time after the probe ended.
    (t_master,) = lan.became_master_at("a")
    assert t_master == pytest.approx(t_probe + PROBE_TIME + a.router.skew_time)


def test_backups_started_together_still_take_over_in_priority_order() -> None:
    lan = SimLan()
    lan.add("high", "192.0.2.1", priority=200, **V3)
    lan.add("low", "192.0.2.2", priority=100, **V3)
    lan.start()
    lan.run_for(10)
    assert lan.masters() == ["high"]
    assert lan.became_master_at("low") == []


def test_a_master_answering_the_probe_is_no_conflict() -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200, **V3)
    lan.start("m")
    lan.run_for(5)
    assert lan.masters() == ["m"]
    b = lan.add("b", "192.0.2.2", priority=100, **V3)
    lan.start("b")
    lan.run_for(5)
    # The master holds the VIP and answers, but its adverts were accepted first.
    assert b.probes and b.state is State.BACKUP and not b.router.faults
    assert b.router.conflicts == 0


def test_an_unknown_holder_is_judged_only_after_its_adverts_had_time_to_arrive() -> None:
    r = Router(RouterSettings(vrid=1, interface="eth0", family=4,
                              addresses=(VirtualAddress(ip_interface(f"{VIP}/24")),), **V3),
               ip_address("192.0.2.2"))
    r.start(0.0)
    (probe,) = [a for a in r.handle_timer(settle_time(0.1)) if isinstance(a, StartProbe)]
    peer = bytes.fromhex("020000000009")
    assert r.probe_finished(1.2, {(VIP, peer)}) == []  # a suspect: wait before judging
    assert r.held and r.state is State.BACKUP
    # Its advert arrives in the meantime: it is a router of this VRID.
    src = ip_address("192.0.2.9")
    advert = encode(Router(r.settings, src).build_advert(200), src, VRRP_GROUP_V4)
    r.receive(advert, src, VRRP_GROUP_V4, 255, 1.3, src_mac=peer)
    assert peer in r.peer_macs
    r.handle_timer(1.2 + settle_time(0.1))
    assert r.state is State.BACKUP and not r.held and r.conflicts == 0


def test_a_foreign_holder_makes_the_router_not_eligible_until_it_leaves() -> None:
    lan = SimLan()
    lan.foreign[VIP] = FOREIGN_MAC
    a = lan.add("a", "192.0.2.1", priority=200, **V3)
    lan.start()
    lan.run_for(5)
    assert a.state is State.FAULT and a.router.faults == {CONFLICT}
    assert lan.masters() == [] and not a.holds_addresses
    errors = [r.message for r in a.reports if r.level == "error"]
    assert errors and "192.0.2.254 is held by 02:aa:00:00:00:01" in errors[0]
    # It probes again every RECHECK_CONFLICT seconds, still finding the holder.
    first_fault = a.transitions[-1][0]
    lan.run_for(2 * RECHECK_CONFLICT)
    assert a.state is State.FAULT and a.router.conflicts >= 2
    later = [t for t, _p in a.probes if t > first_fault]
    assert later and later[0] == pytest.approx(first_fault + RECHECK_CONFLICT, abs=0.01)
    # The host goes away: the next probe clears the fault, and after a fresh
    # probe as a new backup the router becomes master.
    del lan.foreign[VIP]
    lan.run_for(RECHECK_CONFLICT + 5)
    assert lan.masters() == ["a"] and not a.router.faults
    assert any(isinstance(r, Report) and "conflict over" in r.message for r in a.reports)


def test_a_probe_that_cannot_run_still_lifts_the_hold() -> None:
    settings = RouterSettings(vrid=1, interface="eth0", family=4,
                              addresses=(VirtualAddress(ip_interface(f"{VIP}/24")),), **V3)
    r = Router(settings, ip_address("192.0.2.1"))
    r.start(0.0)
    assert [a for a in r.handle_timer(settle_time(0.1)) if isinstance(a, StartProbe)]
    assert r.next_deadline() is None  # waiting for the adapter's answer only
    r.probe_finished(0.5, None)
    assert not r.held and r.state is State.BACKUP
    r.handle_timer(0.5 + r.skew_time)
    assert r.state is State.MASTER


def test_a_backup_keeps_probing_every_minute() -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200, **V3)
    b = lan.add("b", "192.0.2.2", priority=100, **V3)
    lan.start()
    lan.run_for(2 * RECHECK_OK + 5)
    times = [t for t, _p in b.probes]
    assert len(times) == 3
    assert times[1] - times[0] == pytest.approx(PROBE_TIME + RECHECK_OK, abs=0.01)


def test_no_probe_for_the_owner_or_with_conflictcheck_off() -> None:
    lan = SimLan()
    owner = lan.add("o", "192.0.2.1", priority=255, **V3)
    off = lan.add("x", "192.0.2.2", priority=100, **{**V3, "conflict_check": False})
    lan.foreign[VIP] = FOREIGN_MAC
    lan.start()
    lan.run_for(5)
    assert owner.probes == [] and off.probes == []
    assert owner.state is State.MASTER and not off.router.faults


def test_a_peer_answering_from_its_own_mac_is_no_conflict() -> None:
    """FRR's habit: the backup's host keeps the address and answers ARP from its NIC's
    MAC while its adverts come from the virtual MAC.  Probing the peer's source
    address too shows that MAC belongs to a router of this VRID."""
    lan = SimLan()
    peer = lan.add("frr", "192.0.2.2", priority=100, **V3)
    peer.answer_mac, peer.keeps_addresses = bytes.fromhex("02bb00000002"), True
    lan.start("frr")
    lan.run_for(5)
    a = lan.add("a", "192.0.2.1", priority=200, **V3)
    lan.start("a")
    lan.run_for(5)
    assert lan.masters() == ["a"] and a.router.conflicts == 0
    assert a.probes[0][1].peers == (peer.ip,)
    assert peer.answer_mac in a.router.peer_macs


def test_a_conflict_ends_at_once_when_its_holder_turns_out_to_be_a_peer() -> None:
    """We are in conflict with a host that answers for the address; when that host's
    VRRP daemon starts, its first advert makes us probe again at once (not after
    RECHECK_CONFLICT), the holder is recognised as a router of the VRID, and we
    become master."""
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=200, **V3)
    frr = lan.add("frr", "192.0.2.2", priority=100, **V3)
    frr.answer_mac, frr.keeps_addresses = bytes.fromhex("02bb00000002"), True
    lan.start("a")
    lan.run_for(3)
    assert a.state is State.FAULT and a.router.faults == {CONFLICT}
    started = lan.now
    lan.start("frr")
    lan.run_for(5)
    assert lan.masters() == ["a"]
    over = [r for r in a.reports if "conflict over" in r.message]
    assert over
    (t_clear,) = [t for t, tr in a.transitions if tr.old is State.FAULT]
    assert t_clear - started < RECHECK_CONFLICT / 2
