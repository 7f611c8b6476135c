"""Frame building and parsing (freevrrpd.net.frames), without root.

The hex vectors below were checked with tshark (IPv4 header and ICMPv6
checksums reported "correct", fields decoded as named in each test).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freevrrpd.core.mac import mac_bytes
from freevrrpd.core.mac import mac_text as mac_str
from freevrrpd.core.mac import virtual_mac as vmac
from freevrrpd.net import frames
from freevrrpd.net.frames import (
    Claim,
    arp_probe_frame,
    dad_ns_frame,
    garp_frame,
    multicast_mac,
    parse_claim,
    parse_ip_frame,
    unsolicited_na_frame,
    vrrp_frame,
)

MAC_A = bytes.fromhex("02000000000a")
VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")
ADVERT4 = bytes([0x31, 7, 100, 1, 0, 100, 0, 0]) + VIP4.packed
ADVERT6 = bytes([0x31, 7, 100, 1, 0, 100, 0, 0]) + IPv6Address("fe80::100").packed

VRRP4_HEX = ("01005e000012" "02000000000a" "0800"
             "45c0002000000000ff70189a" "c0000201" "e0000012"
             "3107640100640000c0000264")
GARP_HEX = ("ffffffffffff" "00005e000107" "0806" "0001080006040001"
            "00005e000107" "c0000264" "000000000000" "c0000264")
PROBE_HEX = ("ffffffffffff" "02000000000a" "0806" "0001080006040001"
             "02000000000a" "00000000" "000000000000" "c0000264")
NA_HEX = ("333300000001" "00005e000207" "86dd" "6000000000203aff"
          "20010db8000000000000000000000100" "ff020000000000000000000000000001"
          "88001926a0000000" "20010db8000000000000000000000100"
          "0201" "00005e000207")
DAD_HEX = ("3333ff345678" "02000000000a" "86dd" "6000000000183aff"
           "00000000000000000000000000000000" "ff0200000000000000000001ff345678"
           "87008d9600000000" "20010db8000000000000000012345678")


def checksum(data: bytes) -> int:
    """Independent RFC 1071 sum for cross-checking the module's."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for index in range(0, len(data), 2):
        total += (data[index] << 8) | data[index + 1]
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return total ^ 0xFFFF


def icmpv6_ok(frame: bytes) -> bool:
    ip6 = frame[14:]
    length = struct.unpack_from("!H", ip6, 4)[0]
    pseudo = ip6[8:40] + struct.pack("!I3xB", length, 58)
    return checksum(pseudo + ip6[40:40 + length]) == 0


# --- addresses ---

def test_vmac_rfc5798_section_7_3() -> None:
    assert vmac(7, 4) == bytes.fromhex("00005e000107")
    assert vmac(255, 6) == bytes.fromhex("00005e0002ff")
    for bad in (0, 256):
        with pytest.raises(ValueError):
            vmac(bad, 4)
    with pytest.raises(ValueError):
        vmac(1, 5)


def test_mac_text_round_trip() -> None:
    assert mac_str(bytes.fromhex("00005e0001ff")) == "00:00:5e:00:01:ff"
    assert mac_bytes("00:00:5E:00:01:FF") == bytes.fromhex("00005e0001ff")
    assert mac_bytes("2-0-0-0-0-a") == MAC_A
    for bad in ("", "00:11:22:33:44", "00:11:22:33:44:555", "zz:00:00:00:00:00"):
        with pytest.raises(ValueError):
            mac_bytes(bad)


@pytest.mark.parametrize(("group", "mac"), [
    ("224.0.0.18", "01:00:5e:00:00:12"),
    ("239.129.2.3", "01:00:5e:01:02:03"),  # only the low 23 bits map (RFC 1112 6.4)
    ("ff02::12", "33:33:00:00:00:12"),
    ("ff02::1:ff34:5678", "33:33:ff:34:56:78"),
])
def test_multicast_mac(group: str, mac: str) -> None:
    assert mac_str(multicast_mac(ip_address(group))) == mac


def test_multicast_mac_rejects_unicast() -> None:
    with pytest.raises(ValueError):
        multicast_mac(VIP4)


def test_solicited_node_group() -> None:
    assert frames.solicited_node(IPv6Address("2001:db8::1234:5678")) == \
        IPv6Address("ff02::1:ff34:5678")


# --- VRRP frames ---

def test_vrrp_frame_ipv4_bytes() -> None:
    frame = vrrp_frame(MAC_A, IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"), ADVERT4)
    assert frame.hex() == VRRP4_HEX
    assert checksum(frame[14:34]) == 0
    assert frame[22] == 255 and frame[23] == 112  # TTL, protocol
    assert frame[20:22] == b"\0\0"  # DF off, not a fragment


def test_vrrp_frame_ipv4_ident_is_checksummed() -> None:
    frame = vrrp_frame(MAC_A, IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"), ADVERT4,
                       ident=0x1234)
    assert frame[18:20] == b"\x12\x34" and checksum(frame[14:34]) == 0


def test_vrrp_frame_ipv6_header() -> None:
    frame = vrrp_frame(MAC_A, IPv6Address("fe80::1"), IPv6Address("ff02::12"), ADVERT6)
    assert frame[:14] == bytes.fromhex("33330000001202000000000a86dd")
    ip6 = frame[14:54]
    assert ip6[0] >> 4 == 6
    assert struct.unpack_from("!H", ip6, 4)[0] == len(ADVERT6)
    assert ip6[6] == 112 and ip6[7] == 255
    assert frame[54:] == ADVERT6


def test_vrrp_frame_unicast_needs_dst_mac() -> None:
    with pytest.raises(ValueError):
        vrrp_frame(MAC_A, IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), ADVERT4)
    frame = vrrp_frame(MAC_A, IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), ADVERT4,
                       dst_mac=bytes.fromhex("02000000000b"))
    assert frame[:6] == bytes.fromhex("02000000000b")


def test_vrrp_frame_rejects_mixed_families() -> None:
    with pytest.raises(ValueError):
        vrrp_frame(MAC_A, IPv4Address("192.0.2.1"), IPv6Address("ff02::12"), ADVERT4)


def test_parse_ip_frame_ipv4() -> None:
    frame = bytes.fromhex(VRRP4_HEX) + b"\0" * 14  # Ethernet padding is not payload
    got = parse_ip_frame(frame)
    assert got == frames.Received(MAC_A, bytes.fromhex("01005e000012"),
                                  IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"),
                                  255, 112, ADVERT4)


def test_parse_ip_frame_ipv4_with_options() -> None:
    # IHL 6: one 4-byte option (router alert); the payload starts after it.
    header = bytearray(bytes.fromhex("46c0002400000000ff700000c0000201e0000012" "94040000"))
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    frame = bytes.fromhex("01005e00001202000000000a0800") + bytes(header) + ADVERT4
    got = parse_ip_frame(frame)
    assert got is not None and got.payload == ADVERT4


def test_parse_ip_frame_ipv6() -> None:
    frame = vrrp_frame(MAC_A, IPv6Address("fe80::1"), IPv6Address("ff02::12"), ADVERT6)
    got = parse_ip_frame(frame + b"\0" * 6)
    assert got is not None
    assert (got.src_ip, got.dst_ip, got.ttl, got.proto, got.payload) == (
        IPv6Address("fe80::1"), IPv6Address("ff02::12"), 255, 112, ADVERT6)


def _patch4(frame: bytes, offset: int, value: bytes, fix_checksum: bool = True) -> bytes:
    data = bytearray(frame)
    data[14 + offset:14 + offset + len(value)] = value
    if fix_checksum:
        data[24:26] = b"\0\0"
        data[24:26] = struct.pack("!H", checksum(bytes(data[14:34])))
    return bytes(data)


GOOD4 = bytes.fromhex(VRRP4_HEX)


@pytest.mark.parametrize("frame", [
    b"",
    GOOD4[:13],
    GOOD4[:30],  # truncated IP header
    _patch4(GOOD4, 0, b"\x55"),  # version 5
    _patch4(GOOD4, 0, b"\x44"),  # IHL 4
    _patch4(GOOD4, 2, b"\x00\x40"),  # total length beyond the frame
    _patch4(GOOD4, 2, b"\x00\x10"),  # total length below the header
    _patch4(GOOD4, 6, b"\x20\x00"),  # MF: first fragment
    _patch4(GOOD4, 6, b"\x00\x01"),  # non-zero fragment offset
    _patch4(GOOD4, 10, b"\x12\x34", fix_checksum=False),  # wrong header checksum
    GOOD4[:12] + b"\x08\x06" + GOOD4[14:],  # not IP at all
    GOOD4[:12] + b"\x81\x00" + GOOD4[14:],  # VLAN tag left in the frame
])
def test_parse_ip_frame_rejects_malformed_ipv4(frame: bytes) -> None:
    assert parse_ip_frame(frame) is None


def test_parse_ip_frame_rejects_malformed_ipv6() -> None:
    good = vrrp_frame(MAC_A, IPv6Address("fe80::1"), IPv6Address("ff02::12"), ADVERT6)
    assert parse_ip_frame(good[:53]) is None  # truncated header
    assert parse_ip_frame(good[:-1]) is None  # payload length beyond the frame
    assert parse_ip_frame(good[:14] + b"\x40" + good[15:]) is None  # version 4
    hop_by_hop = bytearray(good)
    hop_by_hop[20] = 0  # an extension header we do not chase
    assert parse_ip_frame(bytes(hop_by_hop)) is None


addresses4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
addresses6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@given(src=addresses4, group=st.integers(0, 2**28 - 1), payload=st.binary(max_size=200),
       ident=st.integers(0, 0xFFFF))
def test_ipv4_round_trip(src: IPv4Address, group: int, payload: bytes, ident: int) -> None:
    dst = IPv4Address((224 << 24) | group)
    got = parse_ip_frame(vrrp_frame(MAC_A, src, dst, payload, ident=ident))
    assert got is not None
    assert (got.src_ip, got.dst_ip, got.payload, got.ttl, got.proto) == (src, dst, payload,
                                                                         255, 112)
    assert got.dst_mac == multicast_mac(dst)


@given(src=addresses6, payload=st.binary(max_size=200))
def test_ipv6_round_trip(src: IPv6Address, payload: bytes) -> None:
    got = parse_ip_frame(vrrp_frame(MAC_A, src, IPv6Address("ff02::12"), payload))
    assert got is not None and (got.src_ip, got.payload) == (src, payload)


@given(st.binary(max_size=120))
def test_parsers_never_raise(data: bytes) -> None:
    parse_ip_frame(data)
    parse_claim(data)
    for ethertype in (b"\x08\x00", b"\x86\xdd", b"\x08\x06"):
        parse_ip_frame(data[:12] + ethertype + data[14:])
        parse_claim(data[:12] + ethertype + data[14:])


# --- ARP ---

def test_garp_frame_bytes() -> None:
    assert garp_frame(vmac(7, 4), VIP4).hex() == GARP_HEX


def test_arp_probe_frame_bytes() -> None:
    assert arp_probe_frame(MAC_A, VIP4).hex() == PROBE_HEX


def test_parse_claim_arp() -> None:
    assert parse_claim(bytes.fromhex(GARP_HEX)) == Claim(VIP4, vmac(7, 4))
    # ARP reply: sender IP / sender MAC (the Ethernet source is not what counts).
    reply = bytearray(bytes.fromhex(GARP_HEX))
    reply[6:12] = MAC_A
    reply[20:22] = b"\x00\x02"
    reply[22:28] = bytes.fromhex("02000000000b")
    assert parse_claim(bytes(reply)) == Claim(VIP4, bytes.fromhex("02000000000b"))
    assert parse_claim(bytes.fromhex(PROBE_HEX)) is None  # sender 0.0.0.0 claims nothing


def test_parse_claim_rejects_odd_arp() -> None:
    rarp = bytearray(bytes.fromhex(GARP_HEX))
    rarp[20:22] = b"\x00\x03"
    assert parse_claim(bytes(rarp)) is None
    token_ring = bytearray(bytes.fromhex(GARP_HEX))
    token_ring[14:16] = b"\x00\x06"
    assert parse_claim(bytes(token_ring)) is None
    assert parse_claim(bytes.fromhex(GARP_HEX)[:40]) is None


# --- neighbour discovery ---

def test_unsolicited_na_bytes_and_checksum() -> None:
    frame = unsolicited_na_frame(vmac(7, 6), VIP6, VIP6)
    assert frame.hex() == NA_HEX
    assert icmpv6_ok(frame)


def test_unsolicited_na_fields() -> None:
    mac = vmac(9, 6)
    frame = unsolicited_na_frame(mac, IPv6Address("fe80::a"), VIP6)
    assert frame[:6] == bytes.fromhex("333300000001") and frame[6:12] == mac
    assert frame[21] == 255  # hop limit, RFC 4861 7.1.2
    assert IPv6Address(frame[22:38]) == IPv6Address("fe80::a")
    assert IPv6Address(frame[38:54]) == IPv6Address("ff02::1")
    icmp = frame[54:]
    assert icmp[0] == 136 and icmp[1] == 0
    flags = struct.unpack_from("!I", icmp, 4)[0]
    assert flags & frames.NA_FLAG_ROUTER and flags & frames.NA_FLAG_OVERRIDE
    assert not flags & frames.NA_FLAG_SOLICITED  # must be clear when sent to multicast
    assert IPv6Address(icmp[8:24]) == VIP6
    assert icmp[24:] == b"\x02\x01" + mac
    assert icmpv6_ok(frame)


def test_dad_ns_bytes() -> None:
    frame = dad_ns_frame(MAC_A, IPv6Address("2001:db8::1234:5678"))
    assert frame.hex() == DAD_HEX
    assert icmpv6_ok(frame)
    assert len(frame) == 14 + 40 + 24  # no source link-layer address option


def test_parse_claim_na() -> None:
    mac = vmac(7, 6)
    assert parse_claim(unsolicited_na_frame(mac, VIP6, VIP6)) == Claim(VIP6, mac)


def _icmpv6(src: IPv6Address, dst: IPv6Address, message: bytes, hop_limit: int = 255,
            eth_src: bytes = MAC_A) -> bytes:
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), 58)
    message = message[:2] + struct.pack("!H", checksum(pseudo + message)) + message[4:]
    header = struct.pack("!IHBB", 6 << 28, len(message), 58, hop_limit)
    return (bytes.fromhex("333300000001") + eth_src + b"\x86\xdd" + header + src.packed
            + dst.packed + message)


def test_parse_claim_na_without_option_uses_ethernet_source() -> None:
    na = struct.pack("!BBHI16s", 136, 0, 0, 0x60000000, VIP6.packed)
    frame = _icmpv6(VIP6, IPv6Address("ff02::1"), na)
    assert parse_claim(frame) == Claim(VIP6, MAC_A)


def test_parse_claim_ns_from_an_address() -> None:
    other = bytes.fromhex("02000000000b")
    ns = struct.pack("!BBHI16s", 135, 0, 0, 0, IPv6Address("2001:db8::1").packed) \
        + b"\x01\x01" + other
    frame = _icmpv6(VIP6, IPv6Address("ff02::1:ff00:1"), ns)
    assert parse_claim(frame) == Claim(VIP6, other)
    assert parse_claim(dad_ns_frame(MAC_A, VIP6)) is None  # DAD: source ::


def test_parse_claim_rejects_invalid_nd() -> None:
    na = struct.pack("!BBHI16s", 136, 0, 0, 0x20000000, VIP6.packed) + b"\x02\x01" + MAC_A
    assert parse_claim(_icmpv6(VIP6, IPv6Address("ff02::1"), na, hop_limit=64)) is None
    bad_code = na[:1] + b"\x01" + na[2:]
    assert parse_claim(_icmpv6(VIP6, IPv6Address("ff02::1"), bad_code)) is None
    zero_length_option = na[:24] + b"\x02\x00" + MAC_A
    assert parse_claim(_icmpv6(VIP6, IPv6Address("ff02::1"), zero_length_option)) is None
    truncated_option = na[:24] + b"\x02\x02" + MAC_A
    assert parse_claim(_icmpv6(VIP6, IPv6Address("ff02::1"), truncated_option)) is None
    corrupt = bytearray(_icmpv6(VIP6, IPv6Address("ff02::1"), na))
    corrupt[-1] ^= 1  # checksum no longer matches
    assert parse_claim(bytes(corrupt)) is None
    echo = struct.pack("!BBHI", 128, 0, 0, 0) + VIP6.packed
    assert parse_claim(_icmpv6(VIP6, IPv6Address("ff02::1"), echo)) is None
