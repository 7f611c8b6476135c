"""The VRRPv2/v3 advertisement codec: known bytes, errors, round-trips, real peers.

The expected bytes below were written field by field from RFC 3768 section 5 and
RFC 5798 section 5; their checksums were computed with ``ref_checksum`` (an
independent implementation in tests/support/packets.py) and cross-checked with tshark's VRRP
dissector.  The codec's own encoder is never used to produce an expected value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings

from freevrrpd.core.packet import (
    Advert,
    PacketError,
    decode,
    encode,
    internet_checksum,
    password_auth_data,
)
from freevrrpd.core.settings import IPAddress
from tests.support.packets import (
    ref_checksum,
    valid_adverts,
    with_checksum,
)

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
GROUP4 = IPv4Address("224.0.0.18")
GROUP6 = IPv6Address("ff02::12")


def ip(text: str) -> IPAddress:
    return ip_address(text)


# --------------------------------------------------------------------------- tables

V2_NONE = Advert(2, 1, 100, 100, (ip("192.0.2.1"),), 0, bytes(8))
V2_PASS = Advert(2, 10, 200, 300, (ip("192.0.2.100"), ip("192.0.2.101")), 1, b"secret\x00\x00")
V2_AH = Advert(2, 20, 254, 25500, (ip("192.0.2.20"),), 2, bytes(range(1, 9)))
V3_V4 = Advert(3, 7, 255, 100, (ip("192.0.2.7"),))
V3_V4_MANY = Advert(3, 1, 0, 1, (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")))
V3_V6 = Advert(3, 200, 1, 4095, (ip("fe80::1"), ip("2001:db8::1")))

# (id, advert, src, dst, pseudo_header, message as hex)
TABLE = [
    # ver/type 21, VRID 1, prio 100, count 1 | auth 0, 1 s, checksum | addr | 8 zero octets
    ("v2-none", V2_NONE, "192.0.2.10", GROUP4, True,
     "21016401 0001b8fa c0000201 0000000000000000"),
    # auth type 1, 3 s, two addresses, "secret" NUL padded to 8 octets
    ("v2-password", V2_PASS, "192.0.2.10", GROUP4, True,
     "210ac802 010354d9 c0000264 c0000265 7365637265740000"),
    # auth type 2 (RFC 2338 AH, reserved in RFC 3768) decodes; max 255 s
    ("v2-ah-255s", V2_AH, "192.0.2.10", GROUP4, True,
     "2114fe01 02ff0bc2 c0000214 0102030405060708"),
    # v2 ignores the pseudo_header switch entirely (RFC 3768 5.3.8)
    ("v2-switch-ignored", V2_NONE, "192.0.2.10", GROUP4, False,
     "21016401 0001b8fa c0000201 0000000000000000"),
    # ver/type 31, VRID 7, prio 255, count 1 | rsvd 0 + 100 cs, checksum | addr
    ("v3-ipv4", V3_V4, "192.0.2.2", GROUP4, True,
     "3107ff01 00646af9 c0000207"),
    # same advert, checksum without the IPv4 pseudo-header
    ("v3-ipv4-no-pseudo", V3_V4, "192.0.2.2", GROUP4, False,
     "3107ff01 00640d8b c0000207"),
    # priority 0, 1 cs, three addresses
    ("v3-ipv4-many", V3_V4_MANY, "192.0.2.3", GROUP4, True,
     "31010003 0001e657 c0000201 c0000202 c0000203"),
    # IPv6: VRID 200, prio 1, 4095 cs (all 12 bits), link-local + global
    ("v3-ipv6", V3_V6, "fe80::2", GROUP6, True,
     "31c80102 0fff92ca fe800000000000000000000000000001"
     " 20010db8000000000000000000000001"),
    # IPv6 always uses the pseudo-header (RFC 2460 8.1): the switch is ignored
    ("v3-ipv6-switch-ignored", V3_V6, "fe80::2", GROUP6, False,
     "31c80102 0fff92ca fe800000000000000000000000000001"
     " 20010db8000000000000000000000001"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("advert", "src", "dst", "pseudo", "hexmsg"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_table_encode_and_decode(
    advert: Advert, src: str, dst: IPAddress, pseudo: bool, hexmsg: str
) -> None:
    wire = bytes.fromhex(hexmsg)
    assert encode(advert, ip(src), dst, pseudo_header=pseudo) == wire
    assert decode(wire, ip(src), dst, pseudo_header=pseudo) == advert


@pytest.mark.parametrize(
    ("src", "dst", "pseudo", "hexmsg"), [row[2:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_table_checksums_verify_independently(
    src: str, dst: IPAddress, pseudo: bool, hexmsg: str
) -> None:
    wire = bytes.fromhex(hexmsg)
    # v2: message only; v3: pseudo-header unless switched off, and always for IPv6.
    effective = wire[0] >> 4 == 3 and (pseudo or dst.version == 6)
    assert with_checksum(wire, ip(src), dst, effective) == wire


def test_internet_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: these octets sum to 0xddf2, so the checksum is 0x220d.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7220d")) == 0
    assert internet_checksum(b"\x01") == ref_checksum(b"\x01") == 0xFEFF  # odd length


def test_password_auth_data() -> None:
    assert password_auth_data("s3cret") == b"s3cret\x00\x00"
    assert password_auth_data("12345678") == b"12345678"
    assert password_auth_data("") == bytes(8)
    with pytest.raises(PacketError) as err:
        password_auth_data("123456789")
    assert err.value.reason == "auth_data"


def test_short_auth_data_is_nul_padded_on_encode() -> None:
    short = replace(V2_PASS, auth_data=b"secret")
    wire = encode(short, ip("192.0.2.10"), GROUP4)
    assert wire == encode(V2_PASS, ip("192.0.2.10"), GROUP4)
    assert decode(wire, ip("192.0.2.10"), GROUP4).auth_data == b"secret\x00\x00"


def test_v3_reserved_bits_are_ignored_on_receive() -> None:
    # RFC 5798 5.2.6: rsvd MUST be zero on transmit and is ignored on receive.
    wire = bytes.fromhex("3107ff01 f064 0000 c0000207")
    wire = with_checksum(wire, ip("192.0.2.2"), GROUP4, pseudo=True)
    assert decode(wire, ip("192.0.2.2"), GROUP4) == V3_V4


def test_v2_auth_data_is_returned_as_received() -> None:
    # RFC 3768 5.3.10: ignored on reception -- the codec passes it on untouched.
    wire = bytes.fromhex("21016401 00010000 c0000201 4142434445464748")
    wire = with_checksum(wire, ip("192.0.2.10"), GROUP4, pseudo=False)
    assert decode(wire, ip("192.0.2.10"), GROUP4).auth_data == b"ABCDEFGH"


# --------------------------------------------------------------------------- errors

S4, S6 = ip("192.0.2.10"), ip("fe80::2")
GOOD_V2 = bytes.fromhex("21016401 0001b8fa c0000201 0000000000000000")
GOOD_V3 = bytes.fromhex("3107ff01 00646af9 c0000207")
GOOD_V6 = bytes.fromhex(TABLE[7][5])


def fixed(hexmsg: str, src: IPAddress = S4, dst: IPAddress = GROUP4) -> bytes:
    msg = bytes.fromhex(hexmsg)
    return with_checksum(msg, src, dst, pseudo=msg[0] >> 4 == 3)


DECODE_ERRORS = [
    ("empty", b"", S4, GROUP4, "length"),
    ("7 octets", GOOD_V3[:7], S4, GROUP4, "length"),
    ("version 1", fixed("11016401 00010000 c0000201 0000000000000000"), S4, GROUP4,
     "version"),
    ("version 4", fixed("4107ff01 00640000 c0000207"), S4, GROUP4, "version"),
    ("type 2", fixed("3207ff01 00640000 c0000207"), S4, GROUP4, "type"),
    ("type 0", fixed("20016401 00010000 c0000201 0000000000000000"), S4, GROUP4, "type"),
    ("v2 from IPv6", GOOD_V2, S6, GROUP6, "family"),
    ("src/dst families differ", GOOD_V3, S4, GROUP6, "family"),
    ("count 0", fixed("3107ff00 00640000"), S4, GROUP4, "count"),
    ("v2 without auth data", GOOD_V2[:-8], S4, GROUP4, "length"),
    ("v2 one octet extra", GOOD_V2 + b"\x00", S4, GROUP4, "length"),
    ("v3 count says 2, one address", fixed("3107ff02 00640000 c0000207"), S4, GROUP4,
     "length"),
    ("v3 trailing octets", GOOD_V3 + bytes(8), S4, GROUP4, "length"),
    ("v3 IPv4 message from IPv6 source", GOOD_V3, S6, GROUP6, "length"),
    ("v3 IPv6 message from IPv4 source", GOOD_V6, S4, GROUP4, "length"),
    ("bad checksum v2", GOOD_V2[:6] + b"\x12\x34" + GOOD_V2[8:], S4, GROUP4, "checksum"),
    ("bad checksum v3", GOOD_V3[:6] + b"\x12\x34" + GOOD_V3[8:], S4, GROUP4, "checksum"),
    ("v3 without pseudo-header, expected with", bytes.fromhex("3107ff01 00640d8b c0000207"), S4,
     GROUP4, "checksum"),
    ("v3 checksum with another source", GOOD_V3, ip("192.0.2.99"), GROUP4, "checksum"),
    ("v3 checksum with another destination", GOOD_V3, ip("192.0.2.2"), ip("192.0.2.1"),
     "checksum"),
    ("VRID 0", fixed("3100ff01 00640000 c0000207"), S4, GROUP4, "vrid"),
    ("v2 interval 0", fixed("21016401 00000000 c0000201 0000000000000000"), S4, GROUP4,
     "interval"),
    ("v3 interval 0", fixed("3107ff01 00000000 c0000207"), S4, GROUP4, "interval"),
    ("v3 interval 0, reserved bits set", fixed("3107ff01 f0000000 c0000207"), S4, GROUP4,
     "interval"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "src", "dst", "reason"),
    [row[1:] for row in DECODE_ERRORS],
    ids=[row[0] for row in DECODE_ERRORS],
)
def test_decode_rejects(data: bytes, src: IPAddress, dst: IPAddress, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        decode(data, src, dst)
    assert err.value.reason == reason
    assert isinstance(err.value, ValueError)
    assert len(str(err.value)) > 10  # a sentence, not just the slug


def test_checksum_error_names_both_values() -> None:
    with pytest.raises(PacketError, match="checksum 0x1234 does not match computed 0x6af9"):
        decode(GOOD_V3[:6] + b"\x12\x34" + GOOD_V3[8:], ip("192.0.2.2"), GROUP4)


def test_pseudo_header_switch_must_match_sender() -> None:
    no_pseudo = bytes.fromhex("3107ff01 00640d8b c0000207")
    with pytest.raises(PacketError):
        decode(no_pseudo, ip("192.0.2.2"), GROUP4, pseudo_header=True)
    with pytest.raises(PacketError):
        decode(GOOD_V3, ip("192.0.2.2"), GROUP4, pseudo_header=False)


ENCODE_ERRORS = [
    ("version 4", replace(V3_V4, version=4), S4, GROUP4, "version"),
    ("type 2", replace(V3_V4, type=2), S4, GROUP4, "type"),
    ("VRID 0", replace(V3_V4, vrid=0), S4, GROUP4, "vrid"),
    ("VRID 256", replace(V3_V4, vrid=256), S4, GROUP4, "vrid"),
    ("priority 256", replace(V3_V4, priority=256), S4, GROUP4, "priority"),
    ("priority -1", replace(V3_V4, priority=-1), S4, GROUP4, "priority"),
    ("no addresses", replace(V3_V4, addresses=()), S4, GROUP4, "count"),
    ("256 addresses", replace(V3_V4, addresses=(ip("192.0.2.1"),) * 256), S4, GROUP4, "count"),
    ("v2 over IPv6", replace(V2_NONE, addresses=(ip("fe80::1"),)), S6, GROUP6, "family"),
    ("v2 IPv6 address", replace(V2_NONE, addresses=(ip("fe80::1"),)), S4, GROUP4, "family"),
    ("v3 mixed families", replace(V3_V4, addresses=(ip("192.0.2.1"), ip("fe80::1"))), S4,
     GROUP4, "family"),
    ("v3 IPv4 addresses from IPv6", V3_V4, S6, GROUP6, "family"),
    ("src/dst families differ", V3_V4, S4, GROUP6, "family"),
    ("v2 interval 1.5 s", replace(V2_NONE, interval_cs=150), S4, GROUP4, "interval"),
    ("v2 interval 0", replace(V2_NONE, interval_cs=0), S4, GROUP4, "interval"),
    ("v2 interval 256 s", replace(V2_NONE, interval_cs=25600), S4, GROUP4, "interval"),
    ("v3 interval 0", replace(V3_V4, interval_cs=0), S4, GROUP4, "interval"),
    ("v3 interval 4096", replace(V3_V4, interval_cs=4096), S4, GROUP4, "interval"),
    ("v2 auth type 256", replace(V2_NONE, auth_type=256), S4, GROUP4, "auth_type"),
    ("v2 9 auth octets", replace(V2_NONE, auth_data=bytes(9)), S4, GROUP4, "auth_data"),
    ("v3 with auth type", replace(V3_V4, auth_type=1), S4, GROUP4, "auth_type"),
    ("v3 with auth data", replace(V3_V4, auth_data=b"pw"), S4, GROUP4, "auth_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("advert", "src", "dst", "reason"),
    [row[1:] for row in ENCODE_ERRORS],
    ids=[row[0] for row in ENCODE_ERRORS],
)
def test_encode_rejects(advert: Advert, src: IPAddress, dst: IPAddress, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        encode(advert, src, dst)
    assert err.value.reason == reason


# --------------------------------------------------------------------------- round-trips

@settings(max_examples=300, deadline=None)
@given(valid_adverts())
def test_round_trip(case: tuple[Advert, IPAddress, IPAddress, bool]) -> None:
    advert, src, dst, pseudo = case
    wire = encode(advert, src, dst, pseudo_header=pseudo)
    size = 4 if src.version == 4 else 16
    assert len(wire) == 8 + size * len(advert.addresses) + (8 if advert.version == 2 else 0)
    # The checksum verifies with the independent implementation.
    use_pseudo = advert.version == 3 and (pseudo or src.version == 6)
    assert with_checksum(wire, src, dst, use_pseudo) == wire
    assert decode(wire, src, dst, pseudo_header=pseudo) == advert


# --------------------------------------------------------------------------- real peers


@dataclass(frozen=True)
class Frame:
    src: IPAddress
    dst: IPAddress
    hop_limit: int
    payload: bytes  # the VRRP message


def read_pcap(path: Path) -> list[Frame]:
    """Tiny pcap reader: classic pcap, Ethernet link type, IPv4/IPv6 carrying VRRP."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise AssertionError(f"{path.name}: not a pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    assert linktype == 1, "expected Ethernet captures"
    frames, offset = [], 24
    while offset < len(data):
        _, _, incl, orig = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        assert incl == orig, "truncated capture"
        ethertype, ip = struct.unpack_from("!H", frame, 12)[0], frame[14:]
        if ethertype == 0x8100:  # one 802.1Q tag
            ethertype, ip = struct.unpack_from("!H", frame, 16)[0], frame[18:]
        if ethertype == 0x0800:
            ihl, total, ttl, proto = ip[0] & 0x0F, *struct.unpack_from("!H", ip, 2), ip[8], ip[9]
            assert proto == 112
            # Short frames carry Ethernet padding: the IP total length bounds the payload.
            frames.append(
                Frame(IPv4Address(ip[12:16]), IPv4Address(ip[16:20]), ttl, ip[ihl * 4 : total])
            )
        elif ethertype == 0x86DD:
            plen, nxt, hlim = struct.unpack_from("!HBB", ip, 4)
            assert nxt == 112, "no extension headers expected"
            frames.append(
                Frame(IPv6Address(ip[8:24]), IPv6Address(ip[24:40]), hlim, ip[40 : 40 + plen])
            )
    return frames


# What capture_peers.py configured (see tests/data/captures/README.md).
PEER_CAPTURES = {
    "keepalived_v2": (
        Advert(2, 51, 150, 100, (ip("192.0.2.51"), ip("192.0.2.52")), 0, bytes(8)),
        ip("192.0.2.11"),
    ),
    "keepalived_v2_password": (
        Advert(2, 52, 120, 200, (ip("192.0.2.53"),), 1, password_auth_data("s3cret")),
        ip("192.0.2.11"),
    ),
    "keepalived_v3_ipv4": (
        Advert(3, 53, 200, 50, (ip("192.0.2.54"), ip("192.0.2.55"), ip("192.0.2.56"))),
        ip("192.0.2.11"),
    ),
    "keepalived_v3_ipv6": (
        Advert(3, 54, 100, 25, (ip("fe80::54"), ip("2001:db8::54"))),
        ip("fe80::ff:fe00:11"),
    ),
    "frr_v3_ipv4": (
        Advert(3, 57, 180, 30, (ip("192.0.2.57"), ip("192.0.2.58"))),
        ip("192.0.2.12"),
    ),
    "frr_v3_ipv6": (
        Advert(3, 57, 180, 30, (ip("2001:db8::57"),)),
        ip("fe80::200:5eff:fe00:239"),  # FRR sends from the IPv6 macvlan's link-local
    ),
}


@pytest.mark.parametrize("name", sorted(PEER_CAPTURES))
def test_captured_peer_adverts(name: str) -> None:
    expected, sender = PEER_CAPTURES[name]
    frames = read_pcap(CAPTURES / f"{name}.pcap")
    assert len(frames) >= 4
    group = GROUP4 if sender.version == 4 else GROUP6
    priorities = []
    for frame in frames:
        assert (frame.src, frame.dst, frame.hop_limit) == (sender, group, 255)
        advert = decode(frame.payload, frame.src, frame.dst)
        priorities.append(advert.priority)
        # A master leaving sends priority 0 (RFC 5798 6.4.3); all else is as configured.
        assert replace(advert, priority=expected.priority) == expected
        assert encode(advert, frame.src, frame.dst) == frame.payload
    assert set(priorities) <= {expected.priority, 0}
    assert priorities.count(expected.priority) >= 3
