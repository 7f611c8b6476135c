"""The one reload diff (core.changes): old and new settings of a router -> what to do."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.changes import diff
from freevrrpd.core.settings import RouterSettings, VirtualAddress

A = VirtualAddress(ip_interface("192.0.2.254/24"))
B = VirtualAddress(ip_interface("192.0.2.253/24"))
ON_ETH1 = VirtualAddress(ip_interface("198.51.100.1/24"), "eth1")
BASE = RouterSettings(vrid=1, interface="eth0", addresses=(A,))


def test_identical_settings_change_nothing() -> None:
    change = diff(BASE, replace(BASE))
    assert not change and change.fields == () and not change.restart
    assert not change.advert_changed and change.added == change.removed == ()


def test_a_new_priority_is_taken_in_place_and_changes_the_advert() -> None:
    change = diff(BASE, replace(BASE, priority=150))
    assert change.fields == ("priority",) and not change.restart and change.advert_changed


def test_scripts_and_timers_change_no_advert() -> None:
    change = diff(BASE, replace(BASE, masterscript="/bin/true", hook_timeout=5.0,
                                carrier_timeout=3.0))
    assert change.fields == ("masterscript", "hook_timeout", "carrier_timeout")
    assert not change.advert_changed and not change.restart


@pytest.mark.parametrize("field", ["advert_int_cs", "password"])
def test_what_the_advert_carries_changes_it(field: str) -> None:
    new = replace(BASE, **{field: 200 if field == "advert_int_cs" else "pw"})
    assert diff(BASE, new).advert_changed


def test_addresses_added_and_removed_by_difference() -> None:
    change = diff(replace(BASE, addresses=(A,)), replace(BASE, addresses=(B, A)))
    assert change.added == (B,) and change.removed == () and change.advert_changed
    change = diff(replace(BASE, addresses=(A, B)), replace(BASE, addresses=(B,)))
    assert change.added == () and change.removed == (A,)


@pytest.mark.parametrize("new", [
    replace(BASE, use_vmac=False),
    replace(BASE, version=3, advert_int_cs=100),
    replace(BASE, addresses=(A, ON_ETH1)),  # an address on another device
])
def test_virtual_mac_version_or_devices_need_a_restart(new: RouterSettings) -> None:
    assert diff(BASE, new).restart


def test_another_router_is_not_a_change() -> None:
    with pytest.raises(ValueError):
        diff(BASE, replace(BASE, vrid=2))


def test_unicast_peers_change_in_place_but_not_the_transport() -> None:
    one = replace(BASE, unicast_peers=(ip_address("192.0.2.2"),))
    two = replace(one, unicast_peers=(ip_address("192.0.2.2"), ip_address("192.0.2.3")))
    assert diff(one, two).fields == ("unicast_peers",) and not diff(one, two).restart
    assert not diff(one, two).advert_changed
    # Multicast to unicast and back: how the adverts travel changes (vrid.worker).
    assert diff(BASE, one).restart and diff(one, BASE).restart
    # Another source address: the router starts again with it.
    assert diff(one, replace(one, unicast_src=ip_address("192.0.2.9"))).restart
