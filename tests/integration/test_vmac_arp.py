"""End to end: a client resolves the VIP to the virtual MAC, not the parent's
(the macvlan/ARP pitfall of PEERS.md), for IPv4 and IPv6."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_interface

import pytest

from freevrrpd.net.netlink import Netlink
from tests.support.nl_helpers import (
    VMAC4_5,
    VMAC6_5,
    in_ns,
    link_json,
    neigh_mac,
    sh,
    tx_packets,
    veth,
    with_netlink,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]


# ---- ARP / ND end to end: the keepalived pitfall -------------------------------------
def _router_with_vip(a: str, vip: str, family: int, real: str) -> Callable[[Netlink], str]:
    def body(nl: Netlink) -> str:
        nl.add_address("va", ip_interface(real))
        name = nl.ensure_macvlan("va", 5, family)
        nl.add_address(name, ip_interface(vip))
        return name
    return body


def test_client_resolves_the_vip_to_the_virtual_mac(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    # Strict reverse-path filtering for new interfaces, as some distributions
    # ship: the macvlan's own rp_filter=0 must still let pings to the VIP in.
    sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=1")
    sh("ip", "-n", b, "addr", "add", "192.0.2.2/24", "dev", "vb")
    vmac = in_ns(a, with_netlink(_router_with_vip(a, "192.0.2.254/24", 4, "192.0.2.1/24")))
    parent_mac = link_json(a, "va")["address"]

    sh("ip", "netns", "exec", b, "ping", "-c1", "-W5", "192.0.2.254")
    assert neigh_mac(b, "192.0.2.254") == VMAC4_5
    # The real address: only the parent may answer.  A second answer from the
    # macvlan would lose the race in B's cache, so count what the macvlan sends.
    sh("ip", "-n", b, "neigh", "flush", "all")  # (B may know it from A's own request)
    sent = tx_packets(a, vmac)
    sh("ip", "netns", "exec", b, "ping", "-c1", "-W5", "192.0.2.1")
    assert neigh_mac(b, "192.0.2.1") == parent_mac
    assert tx_packets(a, vmac) == sent

    # Traffic *from* the VIP leaves through the parent; its ARP request must not
    # teach the client "VIP is at the parent's MAC" (arp_announce=2).
    sh("ip", "-n", a, "neigh", "flush", "all")
    sh("ip", "-n", b, "neigh", "flush", "all")
    sh("ip", "netns", "exec", a, "ping", "-c1", "-W5", "-I", "192.0.2.254", "192.0.2.2")
    assert neigh_mac(b, "192.0.2.254") in (None, VMAC4_5)


def test_without_the_sysctls_the_parent_answers_for_the_vip(netns: Callable[[], str]) -> None:
    """Control for the test above: with kernel defaults the pitfall is real here."""
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "-n", a, "addr", "add", "192.0.2.1/24", "dev", "va")
    sh("ip", "-n", b, "addr", "add", "192.0.2.2/24", "dev", "vb")
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "m0", "address", VMAC4_5,
       "type", "macvlan", "mode", "private")
    sh("ip", "-n", a, "addr", "add", "192.0.2.254/24", "dev", "m0")
    sh("ip", "-n", a, "link", "set", "m0", "up")
    sh("ip", "netns", "exec", b, "ping", "-c1", "-W5", "192.0.2.254")
    assert neigh_mac(b, "192.0.2.254") == link_json(a, "va")["address"]


def test_client_resolves_the_ipv6_vip_to_the_virtual_mac(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "-n", b, "addr", "add", "2001:db8::2/64", "dev", "vb", "nodad")
    in_ns(a, with_netlink(_router_with_vip(a, "2001:db8::254/64", 6, "2001:db8::1/64")))
    parent_mac = link_json(a, "va")["address"]

    sh("ip", "netns", "exec", b, "ping", "-6", "-c1", "-W5", "2001:db8::254")
    assert neigh_mac(b, "2001:db8::254") == VMAC6_5
    sh("ip", "netns", "exec", b, "ping", "-6", "-c1", "-W5", "2001:db8::1")
    assert neigh_mac(b, "2001:db8::1") == parent_mac
