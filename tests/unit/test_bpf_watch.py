"""The claim watcher's filter passes only frames that bind one of our addresses.

Run in the interpreter of tests/support/bpf_vm.py and in the kernel (AF_UNIX, no root), over
ARP and ND frames that do and do not name a watched address.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from freevrrpd.core.settings import IPAddress
from freevrrpd.net import bpf
from freevrrpd.net.frames import (
    _arp_frame,
    arp_probe_frame,
    dad_ns_frame,
    garp_frame,
    unsolicited_na_frame,
    vrrp_frame,
)
from tests.support.bpf_vm import MAC, PACKET_HOST, PACKET_OUTGOING, kernel_accepts, run

AF4, AF6 = 4, 6
VIP4, OTHER4 = IPv4Address("198.51.100.7"), IPv4Address("192.0.2.100")
VIP6, OTHER6 = IPv6Address("2001:db8::7"), IPv6Address("2001:db8::100")
BROADCAST = b"\xff" * 6


def ns_from(src: IPv6Address, target: IPv6Address) -> bytes:
    """A neighbour solicitation sent from ``src`` (the DAD frame with its source set)."""
    frame = bytearray(dad_ns_frame(MAC, target))
    frame[22:38] = src.packed  # IPv6 source address; the filter ignores checksums
    return bytes(frame)


SAMPLES4 = {
    "garp for vip": garp_frame(MAC, VIP4),
    "arp reply from vip": _arp_frame(MAC, 2, MAC, VIP4, MAC, OTHER4),
    "garp for other": garp_frame(MAC, OTHER4),
    "arp request for vip from other": _arp_frame(BROADCAST, 1, MAC, OTHER4, bytes(6), VIP4),
    "arp probe for vip": arp_probe_frame(MAC, VIP4),
    "vrrp advert": vrrp_frame(MAC, OTHER4, IPv4Address("224.0.0.18"), bytes(12)),
}
SAMPLES6 = {
    "na for vip": unsolicited_na_frame(MAC, VIP6, VIP6),
    "na for other": unsolicited_na_frame(MAC, OTHER6, OTHER6),
    "ns from vip": ns_from(VIP6, OTHER6),
    "ns from other for vip": ns_from(OTHER6, VIP6),
    "dad ns for vip": dad_ns_frame(MAC, VIP6),
}
EXPECTED = {AF4: {"garp for vip", "arp reply from vip"}, AF6: {"na for vip", "ns from vip"}}


@pytest.mark.parametrize("family", [AF4, AF6], ids=["ipv4", "ipv6"])
def test_only_frames_binding_a_watched_address_pass(family: int) -> None:
    vip: IPAddress = VIP4 if family == AF4 else VIP6
    program = bpf.claim_watch_filter(family, [vip])
    samples = {**SAMPLES4, **SAMPLES6}
    accepted = {name for name, frame in samples.items() if run(program, frame, PACKET_HOST)}
    assert accepted == EXPECTED[family]
    for name, frame in samples.items():
        assert kernel_accepts(program, frame) == (name in EXPECTED[family]), name
        assert run(program, frame, PACKET_OUTGOING) == 0, name


@pytest.mark.parametrize("family", [AF4, AF6], ids=["ipv4", "ipv6"])
def test_every_address_up_to_the_limit_is_watched(family: int) -> None:
    def addr(n: int) -> IPAddress:
        return IPv4Address(f"198.51.100.{n}") if family == AF4 else IPv6Address(f"2001:db8::{n}")

    def claim(ip: IPAddress) -> bytes:
        if isinstance(ip, IPv4Address):
            return garp_frame(MAC, ip)
        return unsolicited_na_frame(MAC, ip, ip)

    ips = [addr(n) for n in range(1, bpf.MAX_WATCHED + 1)]
    program = bpf.claim_watch_filter(family, ips)
    assert len(program) <= 4096
    for ip in ips:
        assert run(program, claim(ip)) and kernel_accepts(program, claim(ip)), ip
    assert not run(program, claim(addr(200)))


@pytest.mark.parametrize("family", [AF4, AF6], ids=["ipv4", "ipv6"])
def test_too_many_or_no_addresses_fall_back_to_the_broad_filter(family: int) -> None:
    many = [IPv4Address(f"198.51.100.{n}") if family == AF4 else IPv6Address(f"2001:db8::{n}")
            for n in range(1, bpf.MAX_WATCHED + 2)]
    assert bpf.claim_watch_filter(family, many) == bpf.claim_filter(family)
    assert bpf.claim_watch_filter(family, []) == bpf.claim_filter(family)
    # Addresses of the other family are not ours to watch on this socket.
    other: IPAddress = VIP6 if family == AF4 else VIP4
    assert bpf.claim_watch_filter(family, [other]) == bpf.claim_filter(family)
