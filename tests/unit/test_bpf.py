"""The capture filters (freevrrpd.net.bpf), without root.

Each program runs twice over the same sample frames: in a small classic-BPF
interpreter (tests/support/bpf_vm.py), and in the kernel itself through an AF_UNIX datagram socket
(SO_ATTACH_FILTER needs no privilege there; the filter sees the datagram as
if it were the frame, with pkt_type PACKET_HOST).
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from freevrrpd.core.mac import virtual_mac as vmac
from freevrrpd.core.packet import internet_checksum
from freevrrpd.net import bpf
from freevrrpd.net.frames import (
    arp_probe_frame,
    dad_ns_frame,
    garp_frame,
    unsolicited_na_frame,
    vrrp_frame,
)
from tests.support.bpf_vm import (
    MAC,
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    PACKET_OUTGOING,
    kernel_accepts,
    run,
)

SRC4, GROUP4 = IPv4Address("192.0.2.2"), IPv4Address("224.0.0.18")
SRC6, GROUP6 = IPv6Address("fe80::2"), IPv6Address("ff02::12")
AF4, AF6 = 4, 6


def advert(vrid: int, version: int = 3) -> bytes:
    return bytes([(version << 4) | 1, vrid, 100, 1, 0, 100, 0, 0]) + SRC4.packed


def with_proto(frame: bytes, proto: int) -> bytes:
    data = bytearray(frame)
    data[23] = proto
    data[24:26] = b"\0\0"
    data[24:26] = struct.pack("!H", internet_checksum(bytes(data[14:34])))
    return bytes(data)


def with_ip_option(frame: bytes) -> bytes:
    """The same IPv4 frame with a 4-byte router-alert option (IHL 6)."""
    header = bytearray(frame[14:34] + b"\x94\x04\x00\x00")
    header[0] = 0x46
    header[2:4] = struct.pack("!H", len(frame) - 14 + 4)
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", internet_checksum(bytes(header)))
    return frame[:14] + bytes(header) + frame[34:]


def fragment(frame: bytes, flags_offset: int) -> bytes:
    data = bytearray(frame)
    data[20:22] = struct.pack("!H", flags_offset)
    return bytes(data)


V4_7 = vrrp_frame(MAC, SRC4, GROUP4, advert(7))
V4_8 = vrrp_frame(MAC, SRC4, GROUP4, advert(8))
V6_7 = vrrp_frame(MAC, SRC6, GROUP6, advert(7))
V6_8 = vrrp_frame(MAC, SRC6, GROUP6, advert(8))
GARP = garp_frame(vmac(7, AF4), IPv4Address("192.0.2.100"))
NA = unsolicited_na_frame(vmac(7, AF6), IPv6Address("2001:db8::100"),
                          IPv6Address("2001:db8::100"))
NS = dad_ns_frame(MAC, IPv6Address("2001:db8::100"))
MLD_REPORT = vrrp_frame(MAC, SRC6, GROUP6, bytes([143, 0, 0, 0]) + b"\0" * 20)
MLD_REPORT = MLD_REPORT[:20] + b"\x3a" + MLD_REPORT[21:]  # ICMPv6, type 143

SAMPLES = {
    "v4 vrid 7": V4_7,
    "v4 vrid 7 v2": vrrp_frame(MAC, SRC4, GROUP4, advert(7, version=2)),
    "v4 vrid 7 with IP option": with_ip_option(V4_7),
    "v4 vrid 8": V4_8,
    "v4 vrid 8 with IP option": with_ip_option(V4_8),
    "v4 udp, byte 1 = 7": with_proto(V4_7, 17),
    "v4 vrid 7 first fragment": fragment(V4_7, 0x2000),
    "v4 vrid 7 later fragment": fragment(V4_7, 0x0010),
    "v6 vrid 7": V6_7,
    "v6 vrid 8": V6_8,
    "arp": GARP,
    "arp probe": arp_probe_frame(MAC, IPv4Address("192.0.2.100")),
    "na": NA,
    "ns": NS,
    "mld": MLD_REPORT,
    "runt": V4_7[:23],
}

EXPECTED: dict[tuple[str, int, int], set[str]] = {
    ("vrrp", 7, AF4): {"v4 vrid 7", "v4 vrid 7 v2", "v4 vrid 7 with IP option"},
    ("vrrp", 8, AF4): {"v4 vrid 8", "v4 vrid 8 with IP option"},
    ("vrrp", 7, AF6): {"v6 vrid 7"},
    ("vrrp", 8, AF6): {"v6 vrid 8"},
    ("claim", 0, AF4): {"arp", "arp probe"},
    ("claim", 0, AF6): {"na", "ns"},
}


def program_for(kind: str, vrid: int, family: int) -> list[tuple[int, int, int, int]]:
    return bpf.vrrp_filter(vrid, family) if kind == "vrrp" else bpf.claim_filter(family)


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda key: f"{key[0]}-{key[1]}-{key[2]}")
def test_filter_accepts_exactly_the_expected_frames(key: tuple[str, int, int]) -> None:
    program = program_for(*key)
    for pkttype in (PACKET_HOST, PACKET_MULTICAST, PACKET_BROADCAST, PACKET_OTHERHOST):
        accepted = {name for name, frame in SAMPLES.items() if run(program, frame, pkttype)}
        assert accepted == EXPECTED[key], f"pkttype {pkttype}"


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda key: f"{key[0]}-{key[1]}-{key[2]}")
def test_filter_drops_outgoing_frames(key: tuple[str, int, int]) -> None:
    program = program_for(*key)
    assert not any(run(program, frame, PACKET_OUTGOING) for frame in SAMPLES.values())


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda key: f"{key[0]}-{key[1]}-{key[2]}")
def test_kernel_agrees_with_interpreter(key: tuple[str, int, int]) -> None:
    program = program_for(*key)
    accepted = {name for name, frame in SAMPLES.items() if kernel_accepts(program, frame)}
    assert accepted == EXPECTED[key]


def test_accepted_frames_are_kept_whole() -> None:
    assert run(bpf.vrrp_filter(7, AF4), V4_7) >= 65535


def test_programs_are_well_formed() -> None:
    for key in EXPECTED:
        program = program_for(*key)
        assert program[-1][0] == bpf.RET_K and program[-2][0] == bpf.RET_K
        for index, (code, jt, jf, _k) in enumerate(program):
            if code & 0x07 == 0x05:  # every jump lands inside the program
                assert index + 1 + max(jt, jf) < len(program)


def test_vrrp_filter_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        bpf.vrrp_filter(256, AF4)
    with pytest.raises(ValueError):
        bpf.vrrp_filter(1, socket.AF_UNIX)
    with pytest.raises(ValueError):
        bpf.claim_filter(socket.AF_UNIX)


def test_attach_rejects_empty_program() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(ValueError):
        bpf.attach(sock, [])


@pytest.mark.parametrize("frame", [V4_7, V6_7], ids=["ipv4", "ipv6"])
def test_an_advert_with_a_vlan_tag_is_cut_to_its_ethernet_header(frame: bytes) -> None:
    """Another VLAN's advert of our VRID (tag kept aside by the kernel) reaches the
    router only as its 14-byte Ethernet header, to be counted, never processed."""
    family = AF4 if frame is V4_7 else AF6
    program = bpf.vrrp_filter(7, family)
    assert run(program, frame, PACKET_MULTICAST, vlan=True) == 14
    assert run(program, frame, PACKET_MULTICAST) == bpf.ACCEPT_ALL
    other = V4_8 if frame is V4_7 else V6_8  # another VRID: dropped, tag or not
    assert run(program, other, PACKET_MULTICAST, vlan=True) == 0


def test_a_repeat_of_the_masters_advert_is_dropped_and_nothing_else() -> None:
    """A backup's filter drops the advert it last accepted from its master, byte for
    byte; any change (priority, source, TTL, another MAC) reaches it."""
    from freevrrpd.net.frames import signature

    payload = advert(7)
    frame = vrrp_frame(MAC, SRC4, GROUP4, payload)
    rule = bpf.Repeat(MAC, SRC4, GROUP4, payload)
    program = bpf.vrrp_filter(7, AF4, rule)
    assert run(program, frame, PACKET_MULTICAST) == 0
    assert kernel_accepts(program, frame) is False
    assert signature(frame) == rule.signature
    changed = {
        "priority": vrrp_frame(MAC, SRC4, GROUP4, payload[:2] + b"\x65" + payload[3:]),
        "source": vrrp_frame(MAC, IPv4Address("192.0.2.3"), GROUP4, payload),
        "mac": vrrp_frame(bytes.fromhex("02000000000c"), SRC4, GROUP4, payload),
        "ttl": vrrp_frame(MAC, SRC4, GROUP4, payload)[:22] + b"\x40" + frame[23:],
    }
    for what, other in changed.items():
        assert run(program, other, PACKET_MULTICAST) == bpf.ACCEPT_ALL, what
    assert run(program, frame, PACKET_MULTICAST, vlan=True) == 14  # still counted as vlan
    v6 = vrrp_frame(MAC, SRC6, GROUP6, advert(7, 3)[:8] + bytes(16))
    rule6 = bpf.Repeat(MAC, SRC6, GROUP6, v6[54:])
    assert run(bpf.vrrp_filter(7, AF6, rule6), v6, PACKET_MULTICAST) == 0
    assert run(bpf.vrrp_filter(7, AF6, rule6), V6_7, PACKET_MULTICAST) == bpf.ACCEPT_ALL


def test_the_repeats_tap_sees_every_vrid_and_family_but_not_ours_or_tagged() -> None:
    program = bpf.repeats_filter()
    for frame in (V4_7, V4_8, V6_7, V6_8):
        assert run(program, frame, PACKET_MULTICAST) == bpf.ACCEPT_ALL
        assert run(program, frame, PACKET_OUTGOING) == 0
        assert run(program, frame, PACKET_MULTICAST, vlan=True) == 0
    for frame in (GARP, NA, NS):
        assert run(program, frame, PACKET_MULTICAST) == 0


def test_the_tap_counts_exactly_the_repeats_the_filter_drops_and_the_receive_path_takes() -> None:
    """Every one-byte change of a repeat, and padding: the tap's signature matches
    if and only if the router's filter dropped the frame as a repeat and the
    receive path would have taken it as an IP packet (RFC 5798 6.4.2: only such
    an advert restarts Master_Down_Timer)."""
    from freevrrpd.net.frames import parse_ip_frame, signature

    payload = advert(7)
    frame = vrrp_frame(MAC, SRC4, GROUP4, payload)
    v6payload = advert(7, 3)[:8] + bytes(16)
    v6 = vrrp_frame(MAC, SRC6, GROUP6, v6payload)
    cases = [(frame, bpf.Repeat(MAC, SRC4, GROUP4, payload), AF4),
             (v6, bpf.Repeat(MAC, SRC6, GROUP6, v6payload), AF6)]
    checked = 0
    for original, rule, family in cases:
        with_rule = bpf.vrrp_filter(7, family, rule)
        without = bpf.vrrp_filter(7, family)
        variants = [original, original + bytes(14)]  # Ethernet padding
        for i in range(len(original)):
            for value in {original[i] ^ 0x01, original[i] ^ 0x80, 0, 255}:
                variants.append(original[:i] + bytes([value]) + original[i + 1:])
        for variant in variants:
            dropped = (run(with_rule, variant, PACKET_MULTICAST) == 0
                       and run(without, variant, PACKET_MULTICAST) != 0)
            counted = signature(variant) == rule.signature
            assert counted == (dropped and parse_ip_frame(variant) is not None), variant.hex()
            checked += 1
    assert checked > 400


@pytest.mark.parametrize("family", [AF4, AF6])
def test_a_unicast_router_hears_adverts_to_the_group_or_to_itself_only(family: int) -> None:
    """unicastpeer: adverts to our address (and to the group) wake the router; a
    unicast advert between two other routers of the VRID never does."""
    if family == AF4:
        me, other, src, group = (IPv4Address("192.0.2.1"), IPv4Address("192.0.2.3"), SRC4,
                                 GROUP4)
    else:
        me, other, src, group = (IPv6Address("2001:db8::1"), IPv6Address("2001:db8::3"),
                                 IPv6Address("2001:db8::2"), GROUP6)
    program = bpf.vrrp_filter(7, family, to=(group, me))

    def frame(dst: IPv4Address | IPv6Address) -> bytes:
        payload = advert(7) if family == AF4 else bytes([0x31, 7, 100, 1, 0, 100, 0, 0]) + \
            src.packed
        return vrrp_frame(MAC, src, dst, payload, dst_mac=bytes(6))

    for dst, wanted in ((me, True), (group, True), (other, False)):
        assert (run(program, frame(dst), PACKET_HOST) > 0) is wanted, dst
        assert kernel_accepts(program, frame(dst)) is wanted, dst
    # Another VRID to our address: still not ours.
    assert run(bpf.vrrp_filter(8, family, to=(group, me)), frame(me), PACKET_HOST) == 0
