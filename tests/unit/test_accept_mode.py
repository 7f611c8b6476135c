"""Accept_Mode policy (RFC 5798 6.1, 6.4.3): which addresses the kernel's filter refuses."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core.settings import RouterSettings, VirtualAddress, refuses_packets
from freevrrpd.daemon import acceptmode
from freevrrpd.net import nftables


def router(vrid: int, *addrs: str, **kw: object) -> RouterSettings:
    return RouterSettings(vrid=vrid, interface="eth0",  # type: ignore[arg-type]
                          addresses=tuple(VirtualAddress(ip_interface(a)) for a in addrs), **kw)


def test_only_non_owners_without_accept_refuse() -> None:
    assert not refuses_packets(router(1, "192.0.2.1/24"))  # the default accepts
    assert refuses_packets(router(1, "192.0.2.1/24", accept=False))
    # RFC 5798 6.4.3 / RFC 3768 6.4.3: the owner accepts, whatever accept says.
    assert not refuses_packets(router(1, "192.0.2.1/24", accept=False, priority=255))


def test_the_refused_set_is_the_union_of_those_routers_addresses() -> None:
    routers = [router(1, "192.0.2.1/24", "192.0.2.2/24", accept=False),
               router(2, "198.51.100.1/24"),
               router(3, "2001:db8::1/64", accept=False, family=6, version=3)]
    assert acceptmode.refused_addresses(routers) == {
        ip_address("192.0.2.1"), ip_address("192.0.2.2"), ip_address("2001:db8::1")}


def test_the_ruleset_replaces_the_table_and_keeps_neighbour_discovery() -> None:
    text = nftables.accept_ruleset("t", [ip_address("192.0.2.2"), ip_address("2001:db8::1"),
                                         ip_address("192.0.2.1")])
    lines = text.splitlines()
    # Create, delete, create: one atomic replacement, whether the table exists or not.
    assert lines[:3] == ["table inet t", "delete table inet t", "table inet t {"]
    assert "elements = { 192.0.2.1, 192.0.2.2 }" in text
    assert "elements = { 2001:db8::1 }" in text
    nd = next(i for i, line in enumerate(lines) if "nd-neighbor-solicit" in line)
    drop = next(i for i, line in enumerate(lines) if "@refused6" in line and "drop" in line)
    assert nd < drop
    assert "elements" not in nftables.accept_ruleset("t", [])


def test_without_nft_accept_no_is_refused_with_file_and_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nftables, "nft_path", lambda: None)
    assert acceptmode.problems([router(1, "192.0.2.1/24")]) == []
    r = router(1, "192.0.2.1/24", accept=False)
    r = replace(r, source=replace(r.source, path="f.conf", keywords=(("accept", 7),)))
    (problem,) = acceptmode.problems([r])
    assert problem.startswith("f.conf:7: accept: VRID 1 on eth0 (IPv4): ")
    assert "nftables" in problem
