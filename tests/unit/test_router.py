"""Elections on a simulated LAN with a fake clock (RFC 5798 section 6, RFC 3768 section 6)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.actions import (
    Announce,
    ClaimAddresses,
    ReleaseAddresses,
    RunHook,
    SendAdvert,
    State,
    Transition,
)
from freevrrpd.core.packet import encode
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V4, RouterSettings, VirtualAddress
from freevrrpd.core.timing import master_down_interval, skew_time
from tests.support.sim import LATENCY, SimLan


def settings(**kw: object) -> RouterSettings:
    # Routers driven by hand here answer no address probe (tests/unit/test_probe_hold.py
    # covers the probe): without one, a backup's timers would wait for it.
    base: dict[str, object] = {
        "vrid": 1, "interface": "eth0", "conflict_check": False,
        "addresses": (VirtualAddress(ip_interface("192.0.2.254/24")),),
    }
    base.update(kw)
    return RouterSettings(**base)  # type: ignore[arg-type]


def test_timers_follow_the_rfcs() -> None:
    # RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 s.
    assert skew_time(2, 100, 100) == pytest.approx(156 / 256)
    assert master_down_interval(2, 100, 100) == pytest.approx(3 + 156 / 256)
    # RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    assert skew_time(3, 100, 10) == pytest.approx(156 * 0.1 / 256)
    assert master_down_interval(3, 200, 1) == pytest.approx(0.03 + 56 * 0.01 / 256)


def test_higher_priority_wins_among_three() -> None:
    lan = SimLan()
    lan.add("a", "192.0.2.1", priority=200)
    lan.add("b", "192.0.2.2", priority=150)
    lan.add("c", "192.0.2.3", priority=100)
    lan.start()
    lan.run_for(20)
    assert lan.masters() == ["a"]
    # a's Master_Down_Interval expires first: 3 + (256-200)/256 s.
    assert lan.became_master_at("a") == [pytest.approx(3 + 56 / 256)]
    assert lan.became_master_at("b") == [] and lan.became_master_at("c") == []
    assert lan.nodes["a"].holds_addresses and not lan.nodes["b"].holds_addresses
    assert lan.nodes["b"].router.master_ip == ip_address("192.0.2.1")


@pytest.mark.parametrize("low,high", [("192.0.2.9", "192.0.2.10"), ("192.0.2.1", "192.0.2.200")])
def test_tie_goes_to_the_higher_address_compared_as_numbers(low: str, high: str) -> None:
    lan = SimLan()
    lan.add("low", low, priority=100)
    lan.add("high", high, priority=100)
    lan.start()
    lan.run_for(10)
    assert lan.masters() == ["high"]
    last = lan.nodes["low"].transitions[-1][1]
    assert last.new is State.BACKUP and "higher address" in last.reason


def test_preempt_on_higher_priority_takes_over_skew_time_after_the_lower_advert() -> None:
    lan = SimLan()
    low = lan.add("low", "192.0.2.1", priority=100, conflict_check=False)
    high = lan.add("high", "192.0.2.2", priority=200, conflict_check=False)
    lan.start("low")
    lan.run_for(10)
    assert lan.masters() == ["low"]
    lan.start("high")
    started = lan.now
    lan.run_for(10)
    assert lan.masters() == ["high"]
    # It discards the lower advert (RFC 5798 6.4.2) and, instead of the RFC's
    # Master_Down_Interval, takes over after Skew_Time, as for a resignation.
    heard = min(t for t, _p in low.sent if t >= started) + LATENCY
    assert lan.became_master_at("high") == [pytest.approx(heard + high.router.skew_time)]
    assert heard + high.router.skew_time < started + high.router.master_down_interval


def test_preempt_off_keeps_the_lower_master() -> None:
    lan = SimLan()
    lan.add("low", "192.0.2.1", priority=100)
    lan.add("high", "192.0.2.2", priority=200, preempt=False)
    lan.start("low")
    lan.run_for(10)
    lan.start("high")
    lan.run_for(30)
    assert lan.masters() == ["low"]
    # ... but it still takes over when the lower master dies.
    lan.nodes["low"].connected = False
    lan.run_for(10)
    assert "high" in lan.masters()


def test_preempt_delay_waits_before_preempting() -> None:
    lan = SimLan()
    lan.add("low", "192.0.2.1", priority=100)
    lan.add("high", "192.0.2.2", priority=200, preempt_delay=5.0)
    lan.start("low")
    lan.run_for(10)
    lan.start("high")
    started = lan.now
    lan.run_for(4)
    assert lan.masters() == ["low"]
    lan.run_for(10)
    assert lan.masters() == ["high"]
    (t,) = lan.became_master_at("high")
    # First lower advert arrives within one interval of the start, then 5 s pass.
    assert started + 5 <= t <= started + 1 + 5 + 0.01
    assert "preemptdelay" in lan.nodes["high"].transitions[-1][1].reason


def test_priority_zero_hands_over_after_skew_time() -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200)
    b = lan.add("b", "192.0.2.2", priority=100)
    lan.start()
    lan.run_for(10)
    assert lan.masters() == ["m"]
    lan.shutdown("m")
    # The resignation is a priority-0 advert (RFC 5798 6.4.3) and addresses go.
    assert lan.nodes["m"].sent[-1] == (lan.now, 0)
    assert not lan.nodes["m"].holds_addresses
    t0 = lan.now
    lan.run_for(5)
    assert lan.masters() == ["b"]
    assert lan.became_master_at("b") == [pytest.approx(t0 + LATENCY + b.router.skew_time)]


def test_master_answers_a_priority_zero_advert_at_once() -> None:
    r = Router(settings(priority=200), ip_address("192.0.2.1"))
    r.start(0)
    r.handle_timer(100)  # not master yet: becomes master
    assert r.state is State.MASTER
    zero = encode(Router(settings(), ip_address("192.0.2.2")).build_advert(0),
                  ip_address("192.0.2.2"), VRRP_GROUP_V4)
    actions = r.receive(zero, ip_address("192.0.2.2"), VRRP_GROUP_V4, 255, 100.2)
    assert SendAdvert(200) in actions
    assert r.adver_timer == pytest.approx(101.2)


def test_silent_master_is_replaced_at_exactly_master_down_interval() -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200)
    b = lan.add("b", "192.0.2.2", priority=100)
    lan.start()
    lan.run_for(10.5)
    last_advert = lan.nodes["m"].sent[-1][0]
    lan.nodes["m"].connected = False
    lan.run_for(10)
    assert "b" in lan.masters()
    (t,) = lan.became_master_at("b")
    assert t == pytest.approx(last_advert + LATENCY + master_down_interval(2, 100, 100))
    assert b.holds_addresses


@pytest.mark.parametrize("interval_cs", [1, 10])
def test_v3_short_intervals_master_down(interval_cs: int) -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200, version=3, advert_int_cs=interval_cs)
    b = lan.add("b", "192.0.2.2", priority=100, version=3, advert_int_cs=interval_cs)
    lan.start()
    lan.run_for(1)
    last_advert = lan.nodes["m"].sent[-1][0]
    lan.nodes["m"].connected = False
    lan.run_for(1)
    (t,) = lan.became_master_at("b")
    assert t - last_advert - LATENCY == pytest.approx(b.router.master_down_interval)
    assert b.router.master_down_interval == pytest.approx(3 * interval_cs / 100
                                                          + 156 * interval_cs / 100 / 256)


def test_v3_backup_learns_the_masters_interval() -> None:
    lan = SimLan()
    lan.add("m", "192.0.2.1", priority=200, version=3, advert_int_cs=50)
    b = lan.add("b", "192.0.2.2", priority=100, version=3, advert_int_cs=100)
    lan.start("m")
    lan.run_for(5)
    lan.start("b")
    lan.run_for(2)
    assert b.router.master_adver_int_cs == 50
    assert b.router.master_down_interval == pytest.approx(1.5 + 156 * 0.5 / 256)
    last_advert = lan.nodes["m"].sent[-1][0]
    lan.nodes["m"].connected = False
    lan.run_for(5)
    (t,) = lan.became_master_at("b")
    assert t == pytest.approx(last_advert + LATENCY + 1.5 + 156 * 0.5 / 256)
    # As master it advertises its own configured interval again.
    assert b.router.master_adver_int_cs == 100


def test_owner_takes_over_at_once() -> None:
    lan = SimLan()
    lan.add("b", "192.0.2.2", priority=100)
    lan.add("owner", "192.0.2.1", priority=255)
    lan.start("b")
    lan.run_for(10)
    lan.start("owner")
    t = lan.now
    assert lan.became_master_at("owner") == [t]
    lan.run_for(1)
    assert lan.masters() == ["owner"]
    assert lan.nodes["b"].transitions[-1][1].new is State.BACKUP


def test_three_routers_second_best_takes_over() -> None:
    lan = SimLan()
    lan.add("a", "192.0.2.1", priority=250)
    lan.add("b", "192.0.2.2", priority=200)
    lan.add("c", "192.0.2.3", priority=100)
    lan.start()
    lan.run_for(10)
    lan.nodes["a"].connected = False
    lan.run_for(10)
    assert set(lan.masters()) == {"a", "b"}  # a is cut off and still thinks it is master
    assert lan.became_master_at("c") == []
    lan.nodes["a"].connected = True
    lan.run_for(3)
    assert lan.masters() == ["a"]


def test_misconfigured_peer_is_reported_once_and_its_adverts_dropped() -> None:
    lan = SimLan()
    good = lan.add("good", "192.0.2.1", priority=100)
    bad = lan.add("bad", "192.0.2.2", priority=200, advert_int_cs=200)
    lan.start()
    lan.run_for(30)
    # RFC 3768 7.1: a v2 interval mismatch MUST be discarded, so both are master.
    assert set(lan.masters()) == {"good", "bad"}
    assert good.router.drops["interval"] >= 10
    warnings = [r for r in good.reports if "misconfigured peer 192.0.2.2" in r.message]
    assert len(warnings) == 1 and "advert interval 2 s" in warnings[0].message
    assert bad.router.drops["interval"] >= 10


def test_address_list_mismatch_dropped_unless_owner() -> None:
    other = (VirtualAddress(ip_interface("192.0.2.253/24")),)
    lan = SimLan()
    good = lan.add("good", "192.0.2.1", priority=100)
    lan.add("bad", "192.0.2.2", priority=200, addresses=other)
    lan.start()
    lan.run_for(10)
    assert good.router.drops["addresses"] > 0
    assert any("address list" in r.message for r in good.reports)


def test_wrong_password_cannot_take_over() -> None:
    lan = SimLan()
    good = lan.add("good", "192.0.2.1", priority=100, password="secret")
    evil = lan.add("evil", "192.0.2.2", priority=254, password="guess")
    lan.start("good")
    lan.run_for(10)
    lan.start("evil")
    lan.run_for(30)
    assert good.state is State.MASTER
    assert lan.became_master_at("good") == [pytest.approx(3 + 156 / 256)]
    assert good.router.drops["auth"] > 20
    assert sum("wrong password" in r.message for r in good.reports) == 1
    assert evil.router.drops["auth"] > 0


def test_unauthenticated_vrid_refuses_authenticated_adverts() -> None:
    lan = SimLan()
    plain = lan.add("plain", "192.0.2.1", priority=100)
    lan.add("auth", "192.0.2.2", priority=200, password="x")
    lan.start()
    lan.run_for(10)
    assert plain.router.drops["auth_type"] > 0


def test_ttl_not_255_is_dropped() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=100)
    routed = lan.add("routed", "192.0.2.2", priority=200)
    routed.ttl = 254
    lan.start()
    lan.run_for(10)
    assert a.router.drops["ttl"] > 0 and "a" in lan.masters()


def test_version_mismatch_dropped_and_reported() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=100)
    lan.add("v3", "192.0.2.2", priority=200, version=3)
    lan.start()
    lan.run_for(10)
    assert a.router.drops["version"] > 0
    assert any("VRRPv3" in r.message for r in a.reports)


def test_checksum_mode_mismatch_explained() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=100, version=3, advert_int_cs=10)
    lan.add("cisco", "192.0.2.2", priority=200, version=3, advert_int_cs=10,
            checksum_pseudo_header=False)
    lan.start()
    lan.run_for(2)
    assert a.router.drops["checksum"] > 0
    assert any("checksumpseudoheader = no" in r.message for r in a.reports)


def test_partition_heals_to_one_master_within_an_interval_and_reannounces() -> None:
    lan = SimLan()
    hi = lan.add("hi", "192.0.2.1", priority=200)
    lan.add("lo", "192.0.2.2", priority=100)
    lan.start()
    lan.run_for(10)
    lan.nodes["hi"].connected = False
    lan.run_for(10)
    assert set(lan.masters()) == {"hi", "lo"}
    announces_before = len(hi.announces)
    lan.nodes["hi"].connected = True
    healed = lan.now
    lan.run_for(1.0)
    assert lan.masters() == ["hi"]
    (t, tr) = lan.nodes["lo"].transitions[-1]
    assert tr.new is State.BACKUP and t - healed <= 1.0 + 2 * LATENCY
    assert len(hi.announces) > announces_before


def test_fault_resigns_and_recovery_returns() -> None:
    lan = SimLan()
    m = lan.add("m", "192.0.2.1", priority=200)
    b = lan.add("b", "192.0.2.2", priority=100)
    lan.start()
    lan.run_for(10)
    lan.fault("m", "link eth0 down", True)
    assert m.state is State.FAULT and m.sent[-1][1] == 0 and not m.holds_addresses
    t0 = lan.now
    lan.run_for(5)
    assert lan.became_master_at("b") == [pytest.approx(t0 + LATENCY + b.router.skew_time)]
    lan.fault("m", "link eth0 down", False)
    assert m.state is State.BACKUP
    lan.run_for(10)
    assert lan.masters() == ["m"]


def test_fault_while_faulted_and_start_in_fault() -> None:
    r = Router(settings(), ip_address("192.0.2.1"))
    actions = r.set_fault("conflict", True, 0)
    assert r.state is State.FAULT and any(isinstance(a, Transition) for a in actions)
    assert r.start(0) == [] and r.state is State.FAULT
    assert r.set_fault("link", True, 1) == []
    assert r.set_fault("conflict", False, 2) == []
    assert r.state is State.FAULT
    r.set_fault("link", False, 3)
    assert r.state is State.BACKUP
    assert r.next_deadline() == pytest.approx(3 + r.master_down_interval)


def test_hooks_and_order_of_actions_on_becoming_master() -> None:
    r = Router(settings(priority=255), ip_address("192.0.2.1"))
    actions = r.start(0)
    kinds = [type(a) for a in actions]
    assert kinds[:2] == [SendAdvert, ClaimAddresses]
    assert RunHook(State.MASTER, State.INITIALIZE, 255) in actions
    assert Announce in kinds
    shutdown = r.shutdown(1)
    assert shutdown[:2] == [SendAdvert(0), ReleaseAddresses()]
    assert RunHook(State.STOPPED, State.MASTER, 255) in shutdown
    assert r.next_deadline() is None


def test_gratuitous_arp_bursts() -> None:
    r = Router(settings(priority=255, garp_count=3, garp_repeat_delay=5.0), ip_address("192.0.2.1"))
    first = [a for a in r.start(0) if isinstance(a, Announce)]
    assert len(first) == 3
    assert r.announce_timer == 5.0
    second = [a for a in r.handle_timer(5.0) if isinstance(a, Announce)]
    assert len(second) == 3 and r.announce_timer is None


def test_gratuitous_arp_spaced_and_disabled() -> None:
    r = Router(settings(priority=255, garp_count=2, garp_interval=0.5, garp_repeat_delay=0),
               ip_address("192.0.2.1"))
    assert sum(isinstance(a, Announce) for a in r.start(0)) == 1
    assert sum(isinstance(a, Announce) for a in r.handle_timer(0.5)) == 1
    assert r.announce_timer is None
    off = Router(settings(priority=255, send_gratuitous_arp=False), ip_address("192.0.2.1"))
    assert not any(isinstance(a, Announce) for a in off.start(0))


def _announces(actions: list[object]) -> int:
    return sum(isinstance(a, Announce) for a in actions)


def test_periodic_refresh_while_master_and_only_then() -> None:
    # garprefresh (keepalived's garp_master_refresh): every 60 s while master,
    # garprefreshcount announcements, on top of the bursts of becoming master.
    r = Router(settings(priority=255, garp_count=1, garp_repeat_delay=0, garp_refresh=60.0,
                        garp_refresh_count=2), ip_address("192.0.2.1"))
    assert _announces(r.start(0)) == 1
    assert r.announce_timer == 60.0
    assert _announces(r.handle_timer(59.9)) == 0
    assert _announces(r.handle_timer(60.0)) == 2 and r.announce_timer == 120.0
    assert _announces(r.handle_timer(120.0)) == 2
    # Leaving Master stops it (RFC 5798 6.4.3: only a master announces).
    r.shutdown(121.0)
    assert r.announce_timer is None


def test_refresh_off_by_default_and_a_reload_starts_or_stops_it() -> None:
    s = settings(priority=255, garp_count=1, garp_repeat_delay=0)
    r = Router(s, ip_address("192.0.2.1"))
    r.start(0)
    assert r.announce_timer is None
    r.update_settings(replace(s, garp_refresh=10.0), 3.0)
    assert r.announce_timer == 13.0
    assert _announces(r.handle_timer(13.0)) == 1
    r.update_settings(replace(s, garp_refresh=0.0), 14.0)
    assert r.announce_timer is None


def test_reload_priority_change_is_sent_at_once() -> None:
    s = settings(priority=255)
    r = Router(s, ip_address("192.0.2.1"))
    r.start(0)
    actions = r.update_settings(replace(s, priority=120), 0.5)
    assert SendAdvert(120) in actions and r.state is State.MASTER
    assert r.adver_timer == pytest.approx(1.5)
    # An unchanged advert sends nothing extra and keeps the schedule.
    assert r.update_settings(replace(s, priority=120, masterscript="x"), 0.7) == []
    assert r.adver_timer == pytest.approx(1.5)
    with pytest.raises(ValueError):
        r.update_settings(replace(s, vrid=2), 1)
    b = Router(settings(priority=100, preempt_delay=5), ip_address("192.0.2.2"))
    b.start(0)
    b.preempt_timer = 3.0
    assert b.update_settings(settings(priority=150, preempt=False), 1) == []
    assert b.state is State.BACKUP and b.preempt_timer is None and b.priority == 150
    b.update_settings(settings(priority=255), 2)
    assert b.state is State.MASTER


def test_reload_moves_the_master_on_the_simulated_lan() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=200)
    b = lan.add("b", "192.0.2.2", priority=100)
    lan.start()
    lan.run_for(10)
    assert lan.masters() == ["a"]
    lan._apply(a, a.router.update_settings(replace(a.router.settings, priority=50), lan.now))
    t0 = lan.now
    lan.run_for(10)
    assert lan.masters() == ["b"]
    # b discards the lower adverts and takes over after its Master_Down_Interval.
    (t,) = lan.became_master_at("b")
    assert t0 < t <= t0 + b.router.master_down_interval + 0.01


def test_v2_advert_carries_password_and_ipv6_v3_advert() -> None:
    r = Router(settings(password="pw"), ip_address("192.0.2.1"))
    adv = r.build_advert(100)
    assert adv.auth_type == 1 and adv.auth_data == b"pw" + bytes(6)
    v6 = Router(settings(version=3, family=6,
                         addresses=(VirtualAddress(ip_interface("2001:db8::1/64")),)),
                ip_address("fe80::1"))
    adv6 = v6.build_advert(100)
    assert adv6.version == 3 and adv6.auth_type == 0 and adv6.auth_data == b""


def test_ipv6_election() -> None:
    lan = SimLan()
    lan.add("a", "fe80::1", priority=100, version=3, advert_int_cs=10)
    lan.add("b", "fe80::2", priority=150, version=3, advert_int_cs=10)
    lan.start()
    lan.run_for(2)
    assert lan.masters() == ["b"]


def test_stopped_router_ignores_everything() -> None:
    r = Router(settings(), ip_address("192.0.2.1"))
    r.start(0)
    r.shutdown(1)
    assert r.state is State.STOPPED
    data = encode(Router(settings(), ip_address("192.0.2.2")).build_advert(200),
                  ip_address("192.0.2.2"), VRRP_GROUP_V4)
    assert r.receive(data, ip_address("192.0.2.2"), VRRP_GROUP_V4, 255, 2) == []
    assert r.set_fault("x", True, 3) == []
    assert r.shutdown(4) == []


def test_two_owners_settle_by_address_and_are_reported() -> None:
    # RFC 9568 erratum 8298: an owner logs another owner's adverts and processes them.
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=255)
    b = lan.add("b", "192.0.2.2", priority=255)
    lan.start()
    lan.run_for(5)
    assert lan.masters() == ["b"]
    assert sum("address owner" in r.message for r in a.reports) == 1
    assert b.router.drops.total() == 0


def test_owner_returning_is_not_a_misconfiguration() -> None:
    lan = SimLan()
    backup = lan.add("b", "192.0.2.2", priority=100)
    owner = lan.add("owner", "192.0.2.1", priority=255)
    lan.start("b")
    lan.run_for(10)
    lan.start("owner")
    lan.run_for(5)
    assert lan.masters() == ["owner"]
    assert owner.reports == [] and owner.router.drops.total() == 0
    assert backup.state is State.BACKUP


# ---- unicast peers (issue 10, section 1) --------------------------------------------------


def test_unicast_routers_hear_only_their_listed_peers() -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=100, unicast_peers=(ip_address("192.0.2.2"),))
    b = lan.add("b", "192.0.2.2", priority=150, unicast_peers=(ip_address("192.0.2.1"),))
    # A router of the VRID that is not listed cannot take over, however high.
    lan.add("stranger", "192.0.2.3", priority=250)
    lan.start()
    lan.run_for(20)
    assert "b" in lan.masters() and "a" not in lan.masters()
    assert a.router.drops["peer"] > 0 and b.router.drops["peer"] > 0
    assert a.router.master_ip == ip_address("192.0.2.2")
    assert sum("not one of the unicastpeer addresses" in r.message for r in a.reports) == 1


@pytest.mark.parametrize("check", [True, False])
def test_unicastttlcheck_no_accepts_a_routed_peer(check: bool) -> None:
    lan = SimLan()
    a = lan.add("a", "192.0.2.1", priority=100, unicast_ttl_check=check,
                unicast_peers=(ip_address("198.51.100.2"),))
    routed = lan.add("routed", "198.51.100.2", priority=200,
                     unicast_peers=(ip_address("192.0.2.1"),))
    routed.ttl = 254
    lan.start()
    lan.run_for(10)
    assert (a.router.drops["ttl"] > 0) is check
    assert ("a" in lan.masters()) is check
