"""Receive-side MUSTs of RFC 5798 7.1 / RFC 3768 7.1 not covered by tests/unit.

Pure core tests (no root, no sockets): adverts are encoded with our codec and
fed to a Router, as the worker does with what its socket receives.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.actions import ReleaseAddresses, SendAdvert, State
from freevrrpd.core.packet import Advert, encode
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V4, VRRP_GROUP_V6, RouterSettings, VirtualAddress

ME4, PEER4 = ip_address("192.0.2.1"), ip_address("192.0.2.2")
ME6, PEER6 = ip_address("fe80::1"), ip_address("fe80::2")


def router(priority: int, version: int = 3, family: int = 4, vip: str = "192.0.2.254/24",
           now: float = 0.0) -> Router:
    s = RouterSettings(vrid=7, interface="eth0", family=family, version=version,
                       priority=priority, advert_int_cs=100,
                       addresses=(VirtualAddress(ip_interface(vip)),))
    r = Router(s, primary_ip=ME4 if family == 4 else ME6)
    r.start(now)
    return r


def advert(priority: int, version: int = 3, ips: tuple[str, ...] = ("192.0.2.254",)) -> Advert:
    return Advert(version=version, vrid=7, priority=priority, interval_cs=100,
                  addresses=tuple(ip_address(i) for i in ips),
                  auth_type=0, auth_data=bytes(8) if version == 2 else b"")


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("their_priority", [0, 100, 254])
def test_the_address_owner_is_never_displaced(version: int, their_priority: int) -> None:
    """RFC 5798 7.1 / RFC 3768 7.1 make the owner (priority 255) discard adverts so
    that nothing displaces it. freevrrpd follows the verified erratum 8298 to RFC
    9568 instead (process, and log another owner): a non-owner advert is processed
    but can never win against 255, so the owner stays master and holds its addresses.
    Two owners: tests/unit/test_router.py::test_two_owners_settle_by_address_and_are_reported.
    """
    owner = router(255, version)
    assert owner.state is State.MASTER
    data = encode(advert(their_priority, version), PEER4, VRRP_GROUP_V4)
    actions = owner.receive(data, PEER4, VRRP_GROUP_V4, 255, 1.0)
    assert owner.state is State.MASTER
    assert not [a for a in actions if isinstance(a, ReleaseAddresses)]
    # A master hearing a lower (or resigning) master asserts itself at once
    # (RFC 5798 6.4.3), so no host keeps a stale binding.
    assert [a.priority for a in actions if isinstance(a, SendAdvert)] == [255]
    assert owner.drops.total() == 0


@pytest.mark.parametrize("version", [2, 3])
def test_an_address_list_mismatch_from_the_owner_is_processed(version: int) -> None:
    """RFC 5798 7.1 / RFC 3768 7.1: a mismatching address list is dropped only
    when the sender is not the address owner; the owner's advert is processed."""
    backup = router(100, version)
    assert backup.state is State.BACKUP
    theirs = ("192.0.2.253",)
    data = encode(advert(255, version, theirs), PEER4, VRRP_GROUP_V4)
    backup.receive(data, PEER4, VRRP_GROUP_V4, 255, 1.0)
    assert backup.received == 1 and backup.drops["addresses"] == 0
    assert backup.master_ip == PEER4 and backup.master_priority == 255
    data = encode(advert(254, version, theirs), PEER4, VRRP_GROUP_V4)
    backup.receive(data, PEER4, VRRP_GROUP_V4, 255, 1.1)
    assert backup.received == 1 and backup.drops["addresses"] == 1


@pytest.mark.parametrize("version", [2, 3])
def test_a_backup_of_another_vrid_ignores_the_advert(version: int) -> None:
    """RFC 5798 7.1: the VRID must be configured on the receiving interface."""
    backup = router(100, version)
    other = Advert(version=version, vrid=8, priority=200, interval_cs=100,
                   addresses=(ip_address("192.0.2.254"),), auth_type=0,
                   auth_data=bytes(8) if version == 2 else b"")
    backup.receive(encode(other, PEER4, VRRP_GROUP_V4), PEER4, VRRP_GROUP_V4, 255, 1.0)
    assert backup.drops["vrid"] == 1 and backup.received == 0 and backup.master_ip is None


@pytest.mark.parametrize("hops", [0, 1, 64, 254])
def test_an_ipv6_advert_with_a_hop_limit_below_255_is_dropped(hops: int) -> None:
    """RFC 5798 7.1: MUST verify that the IPv6 Hop Limit is 255 (the IPv4 TTL
    case is tests/unit/test_router.py::test_ttl_not_255_is_dropped)."""
    backup = router(100, 3, family=6, vip="2001:db8::254/64")
    data = encode(advert(200, 3, ("2001:db8::254",)), PEER6, VRRP_GROUP_V6)
    backup.receive(data, PEER6, VRRP_GROUP_V6, hops, 1.0)
    assert backup.drops["ttl"] == 1 and backup.received == 0 and backup.master_ip is None
    backup.receive(data, PEER6, VRRP_GROUP_V6, 255, 1.1)
    assert backup.received == 1 and backup.master_ip == PEER6


def test_a_vrrpv3_router_drops_vrrpv2_adverts() -> None:
    """RFC 5798 7.1: MUST verify that the VRRP version is 3 (the other way round,
    RFC 3768 7.1, is tests/unit/test_router.py::test_version_mismatch_dropped_and_reported)."""
    backup = router(100, 3)
    data = encode(advert(200, 2), PEER4, VRRP_GROUP_V4)
    backup.receive(data, PEER4, VRRP_GROUP_V4, 255, 1.0)
    assert backup.drops["version"] == 1 and backup.received == 0
