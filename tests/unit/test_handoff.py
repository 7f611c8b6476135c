"""A master's periodic adverts handed to a transmitter, and a backup told which
repeats of its master's advert need not wake it (fake clock, no I/O).

The election must come out exactly as when every advert goes through the
router's own timers (RFC 5798 6.4.2, 6.4.3).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.actions import (
    Advertise,
    ClaimAddresses,
    ExpectRepeats,
    ReleaseAddresses,
    SendAdvert,
    Silence,
    State,
    StopRepeats,
)
from freevrrpd.core.packet import encode
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V4, RouterSettings, VirtualAddress
from tests.support.sim import SimLan

S = RouterSettings(vrid=1, interface="eth0", version=3, advert_int_cs=10, priority=200,
                   conflict_check=False,
                   addresses=(VirtualAddress(ip_interface("192.0.2.254/24")),))
ME, PEER = ip_address("192.0.2.1"), ip_address("192.0.2.2")
MAC = bytes.fromhex("020000000002")


def advert_from(priority: int, src: object = PEER, settings: RouterSettings = S) -> bytes:
    return encode(Router(settings, src).build_advert(priority), src, VRRP_GROUP_V4)  # type: ignore[arg-type]


def master(handoff: bool = True) -> tuple[Router, list[object]]:
    r = Router(S, ME, handoff=handoff)
    r.start(0.0)
    return r, r.handle_timer(1.0)


def test_a_new_master_sends_its_first_advert_itself_then_hands_over() -> None:
    r, actions = master()
    assert actions[:3] == [SendAdvert(200), Advertise(200), ClaimAddresses()]
    assert r.adver_timer is None and r.state is State.MASTER
    # No periodic SendAdvert of its own afterwards.
    assert not [a for a in r.handle_timer(5.0) if isinstance(a, SendAdvert)]
    assert r.next_deadline() is None or r.next_deadline() > 5.0 or r.announce_timer


@pytest.mark.parametrize("how", ["outranked", "fault", "shutdown"])
def test_the_periodic_adverts_stop_before_the_resignation(how: str) -> None:
    r, _ = master()
    if how == "outranked":
        actions = r.receive(advert_from(250), PEER, VRRP_GROUP_V4, 255, 2.0, MAC)
    elif how == "fault":
        actions = r.set_fault("link eth0 down", True, 2.0)
    else:
        actions = r.shutdown(2.0)
    assert actions[:2] == [Silence(), SendAdvert(0)]
    assert ReleaseAddresses() in actions


def test_a_changed_advert_goes_out_at_once_and_replaces_the_periodic_one() -> None:
    r, _ = master()
    assert r.update_settings(replace(S, priority=150), 3.0)[:2] == [SendAdvert(150),
                                                                   Advertise(150)]
    assert r.update_settings(replace(S, priority=150, masterscript="x"), 4.0) == []


def test_a_resigning_peer_is_answered_at_once_without_a_new_schedule() -> None:
    r, _ = master()
    actions = r.receive(advert_from(0), PEER, VRRP_GROUP_V4, 255, 2.0, MAC)
    assert actions[0] == SendAdvert(200) and Advertise(200) not in actions


def test_without_handoff_nothing_changes() -> None:
    r, actions = master(handoff=False)
    assert actions[:2] == [SendAdvert(200), ClaimAddresses()]
    assert r.adver_timer == pytest.approx(1.1)


@pytest.mark.parametrize("handoff", [False, True])
def test_elections_on_a_simulated_lan_are_the_same_with_a_transmitter(handoff: bool) -> None:
    lan = SimLan()
    for name, ip, prio in (("a", "192.0.2.1", 200), ("b", "192.0.2.2", 150),
                           ("c", "192.0.2.3", 100)):
        lan.add(name, ip, handoff=handoff, priority=prio, version=3, advert_int_cs=10)
    lan.start()
    lan.run_for(3)
    assert lan.masters() == ["a"]
    lan.nodes["a"].connected = False
    cut = lan.now
    lan.run_for(2)
    assert lan.masters() == ["a", "b"]  # a cannot hear anyone: both master
    (t_b,) = lan.became_master_at("b")
    # b takes over at its Master_Down_Interval after a's last advert.
    last_a = max(t for t, p in lan.nodes["a"].sent if t <= cut)
    assert t_b - last_a == pytest.approx(lan.nodes["b"].router.master_down_interval, abs=1e-3)
    lan.nodes["a"].connected = True
    lan.run_for(2)
    assert lan.masters() == ["a"]
    assert lan.became_master_at("c") == []


# ---- the backup side -------------------------------------------------------------------


def backup() -> Router:
    r = Router(replace(S, priority=100), ME, repeats=True)
    r.start(0.0)
    return r


def test_a_backup_says_which_repeats_need_not_reach_it() -> None:
    r = backup()
    data = advert_from(200)
    actions = r.receive(data, PEER, VRRP_GROUP_V4, 255, 0.1, MAC)
    assert actions == [ExpectRepeats(PEER, MAC, VRRP_GROUP_V4, data)]
    assert r.receive(data, PEER, VRRP_GROUP_V4, 255, 0.2, MAC) == []  # the same: said once
    # Reported later in one call: the same as receiving each.
    before = r.received
    r.repeats_arrived(0.9, 7)
    assert r.received == before + 7
    assert r.master_down_timer == pytest.approx(0.9 + r.master_down_interval)


def test_a_new_master_or_a_new_advert_changes_what_is_expected() -> None:
    r = backup()
    r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.1, MAC)
    other = ip_address("192.0.2.3")
    new = advert_from(220, other)
    actions = r.receive(new, other, VRRP_GROUP_V4, 255, 0.2, bytes.fromhex("020000000003"))
    assert actions == [ExpectRepeats(other, bytes.fromhex("020000000003"), VRRP_GROUP_V4, new)]


def test_adverts_that_do_more_than_restart_the_timer_are_never_repeats() -> None:
    r = backup()
    r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.1, MAC)
    # A resignation: Skew_Time, not Master_Down_Interval.
    assert r.receive(advert_from(0), PEER, VRRP_GROUP_V4, 255, 0.2, MAC) == [StopRepeats()]
    # A lower master we preempt: its adverts are discarded, not counted.
    r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.3, MAC)
    assert r.receive(advert_from(50), PEER, VRRP_GROUP_V4, 255, 0.4, MAC) == [StopRepeats()]


def test_leaving_backup_stops_the_repeats() -> None:
    r = backup()
    r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.1, MAC)
    actions = r.handle_timer(5.0)  # the master went quiet: take over
    assert StopRepeats() in actions and r.state is State.MASTER
    assert r.repeats_arrived(5.1, 3) == [] and r.master_down_timer is None


def test_repeats_are_not_said_by_a_router_that_was_not_asked() -> None:
    r = Router(replace(S, priority=100), ME)
    r.start(0.0)
    assert r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.1, MAC) == []


def test_a_reload_makes_every_advert_count_again() -> None:
    """With a new priority the master's advert may mean something else (a lower
    master to preempt): the expectation goes, the next advert decides anew."""
    r = backup()
    r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.1, MAC)
    assert StopRepeats() in r.update_settings(replace(S, priority=250), 0.2)
    assert r.receive(advert_from(200), PEER, VRRP_GROUP_V4, 255, 0.3, MAC) == []
