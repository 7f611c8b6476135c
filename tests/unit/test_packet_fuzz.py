"""Fuzz of the VRRP decoder: whatever the bytes, only PacketError may come out.

Random bytes mostly die at the version/length checks, so the mutated packets
start from valid adverts and, in one variant, get their checksum repaired after
the mutation so the later checks (VRID, interval, address parsing) are reached.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import example, given, settings
from hypothesis import strategies as st

from freevrrpd.core.packet import Advert, PacketError, decode, encode
from freevrrpd.core.settings import IPAddress
from tests.support.packets import valid_adverts, with_checksum

V4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
V6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
ANY_ADDR: st.SearchStrategy[IPAddress] = st.one_of(V4, V6)


def decode_or_packet_error(
    data: bytes, src: IPAddress, dst: IPAddress, pseudo: bool
) -> Advert | PacketError:
    """Decode; a PacketError is returned, any other exception fails the test."""
    try:
        advert = decode(data, src, dst, pseudo_header=pseudo)
    except PacketError as err:
        assert err.reason and str(err)
        return err
    # Whatever decodes is a sane advert of the sender's family.
    assert advert.version in (2, 3) and advert.type == 1
    assert 1 <= advert.vrid <= 255 and 0 <= advert.priority <= 255
    assert advert.addresses and all(a.version == src.version for a in advert.addresses)
    assert advert.interval_cs > 0
    return advert


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), ANY_ADDR, ANY_ADDR, st.booleans())
@example(b"", IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"), True)
@example(b"\x31" + bytes(7), IPv6Address("fe80::1"), IPv6Address("ff02::12"), True)
def test_random_bytes(data: bytes, src: IPAddress, dst: IPAddress, pseudo: bool) -> None:
    decode_or_packet_error(data, src, dst, pseudo)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=300), ANY_ADDR, st.booleans())
def test_random_bytes_behind_valid_header(data: bytes, src: IPAddress, pseudo: bool) -> None:
    # Force a plausible version/type so the length and address checks are exercised.
    for first in (0x21, 0x31):
        decode_or_packet_error(bytes([first]) + data[1:], src, src, pseudo)


MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("grow"), st.integers(1, 40), st.integers(0, 255)),
    st.tuples(st.just("drop"), st.integers(0, 10_000), st.just(0)),
)


def mutate(wire: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(wire)
    for kind, where, value in mutations:
        if kind == "grow":
            buf += bytes([value]) * where
        elif not buf:
            continue
        elif kind == "set":
            buf[where % len(buf)] = value
        elif kind == "flip":
            buf[where % len(buf)] ^= 1 << value
        elif kind == "cut":
            del buf[where % len(buf) :]
        else:
            del buf[where % len(buf)]
    return bytes(buf)


@settings(max_examples=500, deadline=None)
@given(
    valid_adverts(),
    st.lists(MUTATION, min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    ANY_ADDR,
)
def test_mutated_valid_adverts(
    case: tuple[Advert, IPAddress, IPAddress, bool],
    mutations: list[tuple[str, int, int]],
    repair: bool,
    other_src: bool,
    stranger: IPAddress,
) -> None:
    advert, src, dst, pseudo = case
    wire = mutate(encode(advert, src, dst, pseudo_header=pseudo), mutations)
    if repair and len(wire) >= 8:
        use_pseudo = wire[0] >> 4 == 3 and (pseudo or src.version == 6)
        wire = with_checksum(wire, src, dst, use_pseudo)
    decode_or_packet_error(wire, stranger if other_src else src, dst, pseudo)


@settings(max_examples=200, deadline=None)
@given(valid_adverts(), st.integers(0, 7), st.integers(0, 255))
def test_single_octet_change_with_checksum_repaired(
    case: tuple[Advert, IPAddress, IPAddress, bool], where: int, value: int
) -> None:
    # Every header octet takes every value: either a clean decode or a named error.
    advert, src, dst, pseudo = case
    wire = bytearray(encode(advert, src, dst, pseudo_header=pseudo))
    wire[where] = value
    use_pseudo = wire[0] >> 4 == 3 and (pseudo or src.version == 6)
    fixed = with_checksum(bytes(wire), src, dst, use_pseudo)
    result = decode_or_packet_error(fixed, src, dst, pseudo)
    if isinstance(result, PacketError):
        # The checksum was repaired for whatever version the octet now says.
        assert result.reason in {"version", "type", "family", "count", "length", "vrid", "interval"}
