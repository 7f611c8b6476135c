"""Packet adapters on real kernels: two network namespaces joined by a veth pair.

The pair and its helpers are in tests/support/veth_pair.py.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from ipaddress import IPv4Address, IPv6Address

import pytest

from freevrrpd.core.mac import mac_text as mac_str
from freevrrpd.core.mac import virtual_mac as vmac
from freevrrpd.core.packet import internet_checksum
from freevrrpd.net import bpf
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket, claim_socket, vrrp_socket
from freevrrpd.net.conflict import ClaimWatcher, Probe
from freevrrpd.net.frames import (
    ETH_P_IP,
    Claim,
    garp_frame,
    parse_ip_frame,
    unsolicited_na_frame,
    vrrp_frame,
)
from tests.support.root import needs_root
from tests.support.veth_pair import (
    AF4,
    AF6,
    B4,
    GROUP4,
    GROUP6,
    IF,
    MAC_A,
    MAC_B,
    VIP4,
    VIP6,
    Lab,
    collect,
    inside,
    ip,
    veth_pair,
    wait_for,
)

pytestmark = [pytest.mark.netns, needs_root]



@pytest.fixture
def lab() -> Iterator[Lab]:
    with veth_pair() as pair:
        yield pair


def advert(vrid: int, family: int) -> bytes:
    """A VRRPv3 advert built by hand (checksum left 0: the filters never look at it)."""
    vip = VIP4 if family == AF4 else IPv6Address("fe80::100")
    return bytes([0x31, vrid, 100, 1, 0x00, 100, 0, 0]) + vip.packed


def v4_frame(vrid: int) -> bytes:
    return vrrp_frame(MAC_B, B4, GROUP4, advert(vrid, AF4))


def v6_frame(vrid: int) -> bytes:
    return vrrp_frame(MAC_B, IPv6Address("fe80::b"), GROUP6, advert(vrid, AF6))


def udp_lookalike() -> bytes:
    """IPv4 protocol 17 whose byte 1 after the header is 7, like a VRID 7 advert."""
    frame = bytearray(v4_frame(7))
    frame[23], frame[24:26] = 17, b"\0\0"
    frame[24:26] = internet_checksum(bytes(frame[14:34])).to_bytes(2, "big")
    return bytes(frame)


def test_vrrp_socket_gets_only_its_vrid_and_family(lab: Lab) -> None:
    with ExitStack() as stack:
        with inside(lab.a):
            rx4 = stack.enter_context(vrrp_socket(IF, 7, AF4))
            rx6 = stack.enter_context(vrrp_socket(IF, 7, AF6))
            witness = stack.enter_context(PacketSocket(IF, ETH_P_ALL))
        with inside(lab.b):
            tx = stack.enter_context(PacketSocket(IF, ETH_P_IP))
        assert (rx4.hwaddr, rx4.ifindex) == (MAC_A, witness.ifindex)
        unwanted = [v4_frame(8), udp_lookalike(), v6_frame(8)]
        for frame in [*unwanted, v4_frame(7), v6_frame(7)]:
            tx.send(frame)

        got4 = collect(rx4, lambda items: bool(items))
        got6 = collect(rx6, lambda items: bool(items))
        assert got4 == [v4_frame(7)]
        assert got6 == [v6_frame(7)]
        # The unwanted frames did reach the interface: an unfiltered socket saw them.
        seen = collect(witness, lambda items: all(f in items for f in unwanted))
        assert all(frame in seen for frame in unwanted)

        parsed = parse_ip_frame(got4[0])
        assert parsed is not None
        assert (parsed.src_mac, parsed.dst_mac, parsed.src_ip, parsed.dst_ip) == (
            MAC_B, bytes.fromhex("01005e000012"), B4, GROUP4)
        assert (parsed.ttl, parsed.proto, parsed.payload) == (255, 112, advert(7, AF4))


@pytest.mark.parametrize("family", [AF4, AF6], ids=["ipv4", "ipv6"])
def test_own_and_sibling_frames_are_not_received(lab: Lab, family: int) -> None:
    frame = v4_frame(7) if family == AF4 else v6_frame(7)
    with ExitStack() as stack:
        with inside(lab.a):
            sender = stack.enter_context(vrrp_socket(IF, 7, family))
            sibling = stack.enter_context(vrrp_socket(IF, 7, family))
            # ETH_P_ALL sockets are where the kernel loops outgoing frames back
            # (pkt_type PACKET_OUTGOING): one with our filter, one without.
            tap = stack.enter_context(PacketSocket(IF, ETH_P_ALL, bpf.vrrp_filter(7, family)))
            raw_tap = stack.enter_context(PacketSocket(IF, ETH_P_ALL))
        with inside(lab.b):
            peer = stack.enter_context(vrrp_socket(IF, 7, family))
        sender.send(frame)

        assert collect(peer, lambda items: bool(items)) == [frame]
        assert frame in collect(raw_tap, lambda items: frame in items)
        for sock in (sender, sibling, tap):
            assert sock.recv_all() == []


def test_multicast_membership_follows_the_socket(lab: Lab) -> None:
    def groups() -> str:
        return ip("-n", lab.a, "maddr", "show", "dev", IF)

    assert "01:00:5e:00:00:12" not in groups()
    with inside(lab.a):
        sock = vrrp_socket(IF, 7, AF4)
    with sock:
        assert "01:00:5e:00:00:12" in groups()
    assert "01:00:5e:00:00:12" not in groups()


def test_gratuitous_arp_updates_the_neighbour_table(lab: Lab) -> None:
    new, stale = VIP4, IPv4Address("192.0.2.101")
    # Linux learns from gratuitous ARP only for existing entries, or for any
    # address with arp_accept=1 (set in the test namespace only).
    lab.sysctl(lab.b, f"net.ipv4.conf.{IF}.arp_accept=1")
    ip("-n", lab.b, "neigh", "replace", str(stale), "lladdr", "02:00:00:00:99:99",
       "dev", IF, "nud", "stale")
    virtual = vmac(7, AF4)
    with inside(lab.a), vrrp_socket(IF, 7, AF4) as sock:
        for vip in (new, stale):  # RFC 5798 6.4.1: one gratuitous ARP per address
            sock.send(garp_frame(virtual, vip))

    def updated() -> bool:
        entries = [lab.neighbour(lab.b, addr) for addr in (new, stale)]
        return all(entry and entry.get("lladdr") == mac_str(virtual) for entry in entries)

    assert wait_for(updated), [lab.neighbour(lab.b, addr) for addr in (new, stale)]


@pytest.mark.parametrize("source", [None, IPv6Address("fe80::a")], ids=["from-vip", "from-ll"])
def test_unsolicited_na_updates_a_stale_ipv6_neighbour(lab: Lab, source: IPv6Address | None
                                                       ) -> None:
    ip("-n", lab.b, "neigh", "replace", str(VIP6), "lladdr", "02:00:00:00:99:99",
       "dev", IF, "nud", "stale")
    virtual = vmac(7, AF6)
    with inside(lab.a), vrrp_socket(IF, 7, AF6) as sock:
        sock.send(unsolicited_na_frame(virtual, VIP6 if source is None else source, VIP6))

    def updated() -> bool:
        entry = lab.neighbour(lab.b, VIP6)
        return bool(entry and entry.get("lladdr") == mac_str(virtual))

    assert wait_for(updated), lab.neighbour(lab.b, VIP6)
    entry = lab.neighbour(lab.b, VIP6)
    assert entry is not None and "router" in entry  # the R flag was honoured


def probe(ifname: str, mac: bytes, target: IPv4Address | IPv6Address, timeout: float,
          ignore_macs: tuple[bytes, ...] = ()) -> bytes | None:
    """Run one ``Probe`` window to its end, as the router's thread would; the MAC of
    the first holder, or None."""
    probe = Probe([(ifname, mac, target)], timeout, time.monotonic(), ignore_macs)
    try:
        while not probe.on_timer(time.monotonic()):
            select.select(probe.filenos(), [], [], max(0.0, probe.deadline() - time.monotonic()))
            probe.on_readable()
    finally:
        probe.close()
    return min(mac for _ip, mac in probe.holders) if probe.holders else None


def test_probe_finds_the_holder_of_an_address(lab: Lab) -> None:
    ip("-n", lab.b, "addr", "add", f"{VIP4}/24", "dev", IF)
    ip("-n", lab.b, "addr", "add", f"{VIP6}/64", "dev", IF, "nodad")
    with inside(lab.a):
        assert probe(IF, MAC_A, VIP4, timeout=3.0) == MAC_B
        assert probe(IF, MAC_A, VIP6, timeout=3.0) == MAC_B
        # A holder whose MAC is ours to ignore (say, the current master) is no conflict.
        assert probe(IF, MAC_A, VIP4, timeout=0.6, ignore_macs=[MAC_B]) is None


def test_probe_of_a_free_address_finds_nobody(lab: Lab) -> None:
    with inside(lab.a):
        assert probe(IF, MAC_A, IPv4Address("192.0.2.200"), timeout=0.6) is None
        assert probe(IF, MAC_A, IPv6Address("2001:db8::200"), timeout=0.6) is None


def test_claim_watcher_reports_a_foreign_host_announcing_our_vip(lab: Lab) -> None:
    own4, own6 = vmac(7, AF4), vmac(7, AF6)
    with ExitStack() as stack:
        with inside(lab.a):
            watch4 = stack.enter_context(ClaimWatcher(IF, AF4, [VIP4, VIP6], [own4]))
            watch6 = stack.enter_context(ClaimWatcher(IF, AF6, [VIP4, VIP6], [own6]))
        with inside(lab.b):
            rogue = stack.enter_context(claim_socket(IF, AF4))
        for frame in (garp_frame(own4, VIP4),  # our own virtual MAC: not foreign
                      garp_frame(MAC_B, IPv4Address("192.0.2.55")),  # not our VIP
                      unsolicited_na_frame(own6, VIP6, VIP6),
                      garp_frame(MAC_B, VIP4),
                      unsolicited_na_frame(MAC_B, VIP6, VIP6)):
            rogue.send(frame)
        assert collect(watch4, lambda items: bool(items)) == [Claim(VIP4, MAC_B)]
        assert collect(watch6, lambda items: bool(items)) == [Claim(VIP6, MAC_B)]


def test_claim_watcher_sees_a_kernel_answering_for_our_vip(lab: Lab) -> None:
    # The rogue is a plain Linux host with the VIP configured: its kernel
    # answers A's address resolution (ARP reply / solicited NA) for it.
    ip("-n", lab.b, "addr", "add", f"{VIP4}/24", "dev", IF)
    ip("-n", lab.b, "addr", "add", f"{VIP6}/64", "dev", IF, "nodad")
    with ExitStack() as stack:
        with inside(lab.a):
            watch4 = stack.enter_context(ClaimWatcher(IF, AF4, [VIP4], [MAC_A]))
            watch6 = stack.enter_context(ClaimWatcher(IF, AF6, [VIP6], [MAC_A]))
            for family, vip in ((socket.AF_INET, VIP4), (socket.AF_INET6, VIP6)):
                with socket.socket(family, socket.SOCK_DGRAM) as udp:
                    udp.sendto(b"x", (str(vip), 9))  # makes A's kernel resolve the VIP
        assert Claim(VIP4, MAC_B) in collect(watch4, lambda items: bool(items))
        assert Claim(VIP6, MAC_B) in collect(watch6, lambda items: bool(items))
