"""Packet adapters on real kernels: two network namespaces joined by a veth pair.

Sockets are opened from this test process after switching the calling thread
into a namespace with setns(2); a socket stays in the namespace it was created
in, so the test then uses it from anywhere. No processes run in the
namespaces, and the namespaces (with their veth ends) are deleted after each
test, also on failure.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import select
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from freevrrpd.net import bpf
from freevrrpd.net.announce import announce
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket, claim_socket, vrrp_socket
from freevrrpd.net.conflict import ClaimWatcher, probe
from freevrrpd.net.frames import (
    ETH_P_IP,
    Claim,
    garp_frame,
    internet_checksum,
    mac_bytes,
    mac_str,
    parse_ip_frame,
    unsolicited_na_frame,
    vmac,
    vrrp_frame,
)

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="needs root for network namespaces"),
]

IF = "fv0"
MAC_A, MAC_B = mac_bytes("02:00:00:00:00:0a"), mac_bytes("02:00:00:00:00:0b")
A4, B4 = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
GROUP4, GROUP6 = IPv4Address("224.0.0.18"), IPv6Address("ff02::12")
VIP4, VIP6 = IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")
AF4, AF6 = socket.AF_INET, socket.AF_INET6
CLONE_NEWNET = 0x40000000
WAIT = 5.0  # generous: a busy 2-core machine must never fail a positive check
QUIET = 0.3  # how long a negative check listens after the positive arrived

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the body with this thread in ``netns``; always switch back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
    finally:
        os.close(home)


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


@dataclass
class Lab:
    a: str
    b: str

    def sysctl(self, netns: str, setting: str) -> None:
        # Only ever inside our own test namespaces.
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", setting],
                       check=True, capture_output=True, timeout=10)

    def neighbour(self, netns: str, addr: IPv4Address | IPv6Address) -> dict[str, Any] | None:
        entries = json.loads(ip("-n", netns, "-j", "neigh", "show", "to", str(addr),
                                "dev", IF) or "[]")
        return entries[0] if entries else None


@pytest.fixture
def lab() -> Iterator[Lab]:
    tag = secrets.token_hex(3)
    lab = Lab(f"fv{tag}a", f"fv{tag}b")
    try:
        ip("netns", "add", lab.a)
        ip("netns", "add", lab.b)
        ip("-n", lab.a, "link", "add", IF, "address", mac_str(MAC_A), "type", "veth",
           "peer", "name", IF, "address", mac_str(MAC_B), "netns", lab.b)
        for netns, v4, v6 in ((lab.a, A4, A6), (lab.b, B4, B6)):
            ip("-n", netns, "addr", "add", f"{v4}/24", "dev", IF)
            ip("-n", netns, "addr", "add", f"{v6}/64", "dev", IF, "nodad")
            ip("-n", netns, "link", "set", IF, "up")
        for netns in (lab.a, lab.b):
            assert wait_for(partial(link_ready, netns)), f"{IF} in {netns} not ready"
        yield lab
    finally:
        for netns in (lab.a, lab.b):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)


def link_ready(netns: str) -> bool:
    """Carrier is up and IPv6 has configured the link (its link-local address
    exists); before that the kernel has no multicast route and drops ND."""
    (link,) = json.loads(ip("-n", netns, "-j", "addr", "show", "dev", IF))
    return link.get("operstate") == "UP" and any(
        info.get("family") == "inet6" and info.get("scope") == "link"
        for info in link.get("addr_info", []))


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def collect(sock: PacketSocket | ClaimWatcher, until: Callable[[list[Any]], bool]) -> list[Any]:
    """Everything ``sock`` yields until ``until(items)`` holds (or WAIT passes),
    plus whatever else arrives within QUIET after that."""
    items: list[Any] = []
    read: Callable[[], list[Any]] = (sock.recv_all if isinstance(sock, PacketSocket)
                                     else sock.poll)
    deadline = time.monotonic() + WAIT
    while not until(items) and time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        items.extend(read())
    time.sleep(QUIET)
    items.extend(read())
    return items


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
        assert announce(sock, virtual, [new, stale]) == 2

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
        assert announce(sock, virtual, [VIP6], ll_src=source) == 1

    def updated() -> bool:
        entry = lab.neighbour(lab.b, VIP6)
        return bool(entry and entry.get("lladdr") == mac_str(virtual))

    assert wait_for(updated), lab.neighbour(lab.b, VIP6)
    entry = lab.neighbour(lab.b, VIP6)
    assert entry is not None and "router" in entry  # the R flag was honoured


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
            for family, vip in ((AF4, VIP4), (AF6, VIP6)):
                with socket.socket(family, socket.SOCK_DGRAM) as udp:
                    udp.sendto(b"x", (str(vip), 9))  # makes A's kernel resolve the VIP
        assert Claim(VIP4, MAC_B) in collect(watch4, lambda items: bool(items))
        assert Claim(VIP6, MAC_B) in collect(watch6, lambda items: bool(items))
