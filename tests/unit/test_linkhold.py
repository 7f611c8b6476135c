"""Monitored circuits as a pure policy on a fake clock (core.linkhold).

Link events and time go in; faults for the routers and log lines come out:
carriertimeout + spanningtreelatency of hold-down after a link returns,
vridsdep fan-out, the original's error counter and MCClearErrorsCount.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_interface

import pytest

from freevrrpd.core.actions import Report
from freevrrpd.core.linkhold import FaultChange, LinkHold, dep_reason, link_reason
from freevrrpd.core.settings import RouterSettings, VirtualAddress


def router(vrid: int, interface: str = "eth0", **kw: object) -> RouterSettings:
    base: dict[str, object] = {
        "vrid": vrid, "interface": interface, "carrier_timeout": 10.0,
        "addresses": (VirtualAddress(ip_interface(f"192.0.2.{vrid}/24")),),
    }
    base.update(kw)
    return RouterSettings(**base)  # type: ignore[arg-type]


def faults(out: list[FaultChange | Report]) -> list[tuple[int, str, bool]]:
    return [(f.key[0], f.reason, f.active) for f in out if isinstance(f, FaultChange)]


def test_watches_only_the_interfaces_of_monitored_routers() -> None:
    hold = LinkHold([router(1), router(2, "eth1", monitored_circuits=False)], {"eth0": True})
    assert hold.names == {"eth0"} and hold.up == {"eth0": True}


def test_a_link_down_at_start_makes_its_routers_and_their_dependents_not_eligible() -> None:
    routers = [router(1, vrids_dep=(2,)), router(2, "eth1"), router(3, "eth1")]
    hold = LinkHold(routers, {"eth0": False, "eth1": True})
    initial, reports = hold.initial(0.0)
    assert initial == {routers[0].key: {link_reason("eth0")},
                       routers[1].key: {dep_reason(1, "eth0")}}
    assert [r.level for r in reports] == ["warning"] and "eth0 is down" in reports[0].message
    # After a reload only the routers not started yet get initial faults.
    again, _ = hold.initial(5.0, fresh=[routers[2].key])
    assert again == {}


def test_link_down_then_up_waits_carriertimeout_plus_spanningtreelatency() -> None:
    r = router(1, carrier_timeout=4.0, spanning_tree_latency=1.5)
    hold = LinkHold([r], {"eth0": True})
    assert faults(hold.link_changed("eth0", False, 10.0)) == [(1, "link eth0 down", True)]
    assert hold.errors["eth0"] == 1
    out = hold.link_changed("eth0", True, 20.0)
    assert faults(out) == []
    assert any("eligible again in 5.5 s" in r.message for r in out if isinstance(r, Report))
    assert hold.next_deadline() == pytest.approx(25.5)
    assert faults(hold.handle_timer(25.4)) == []
    assert faults(hold.handle_timer(25.5)) == [(1, "link eth0 down", False)]
    assert hold.next_deadline() is None or hold.next_deadline() > 25.5


def test_a_flap_inside_the_hold_down_starts_it_again() -> None:
    hold = LinkHold([router(1)], {"eth0": True})
    hold.link_changed("eth0", False, 0.0)
    hold.link_changed("eth0", True, 1.0)
    hold.link_changed("eth0", False, 5.0)  # down again before carriertimeout ran out
    assert faults(hold.handle_timer(11.0)) == []
    hold.link_changed("eth0", True, 12.0)
    assert faults(hold.handle_timer(21.9)) == []
    assert faults(hold.handle_timer(22.0)) == [(1, "link eth0 down", False)]
    assert hold.errors["eth0"] == 2


def test_vridsdep_follows_in_both_directions() -> None:
    routers = [router(1, vrids_dep=(2, 3)), router(2, "eth1"), router(3, "eth2")]
    hold = LinkHold(routers, {"eth0": True, "eth1": True, "eth2": True})
    out = hold.link_changed("eth0", False, 0.0)
    assert faults(out) == [(1, "link eth0 down", True), (2, dep_reason(1, "eth0"), True),
                           (3, dep_reason(1, "eth0"), True)]
    assert any("follows" in r.message for r in out if isinstance(r, Report))
    hold.link_changed("eth0", True, 1.0)
    assert faults(hold.handle_timer(11.0)) == [(1, "link eth0 down", False),
                                               (2, dep_reason(1, "eth0"), False),
                                               (3, dep_reason(1, "eth0"), False)]
    # One way only: eth1 failing takes nobody else along.
    assert faults(hold.link_changed("eth1", False, 20.0)) == [(2, "link eth1 down", True)]


def test_the_error_counter_resets_after_mcclearerrorscount_seconds_up() -> None:
    hold = LinkHold([router(1, mc_clear_errors_count=60, carrier_timeout=0.0)], {"eth0": True})
    hold.link_changed("eth0", False, 0.0)
    hold.link_changed("eth0", True, 1.0)
    hold.handle_timer(1.0)
    assert hold.errors["eth0"] == 1 and hold.next_deadline() == pytest.approx(61.0)
    out = hold.handle_timer(61.0)
    assert hold.errors["eth0"] == 0
    assert any("error counter reset" in r.message for r in out if isinstance(r, Report))
    # 0 means never.
    never = LinkHold([router(1, mc_clear_errors_count=0)], {"eth0": True})
    never.link_changed("eth0", False, 0.0)
    never.link_changed("eth0", True, 1.0)
    never.handle_timer(100_000.0)
    assert never.errors["eth0"] == 1


def test_a_reload_keeps_counters_and_acts_on_changes_seen_in_between() -> None:
    old = LinkHold([router(1), router(2, "eth1")], {"eth0": True, "eth1": True})
    old.link_changed("eth0", False, 0.0)
    old.link_changed("eth1", False, 0.0)
    old.link_changed("eth1", True, 1.0)  # eth1 pending its return at 11.0
    # The new file changes VRID 2's priority; eth0 came back while nobody watched.
    new = LinkHold([router(1), replace(router(2, "eth1"), priority=50)],
                   {"eth0": True, "eth1": True})
    out = new.carry_over(old, 2.0)
    assert new.errors == {"eth0": 1, "eth1": 1}
    assert new.pending[router(2, "eth1").key] == pytest.approx(11.0)
    assert new.pending[router(1).key] == pytest.approx(12.0)
    assert any("eth0 up" in r.message for r in out if isinstance(r, Report))
