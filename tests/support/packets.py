"""Reference pieces for the codec tests: an independent RFC 1071 checksum, the
pseudo-headers, and a hypothesis strategy of valid adverts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from freevrrpd.core.packet import Advert
from freevrrpd.core.settings import IPAddress


def ref_checksum(data: bytes) -> int:
    """RFC 1071 checksum, written independently of the codec (byte pairs, folded each step)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ref_pseudo(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    if src.version == 4:  # as for TCP: src, dst, zero, protocol, 16-bit length
        return src.packed + dst.packed + bytes([0, 112]) + length.to_bytes(2, "big")
    # RFC 2460 8.1: src, dst, 32-bit length, three zero octets, next header
    return src.packed + dst.packed + length.to_bytes(4, "big") + bytes([0, 0, 0, 112])


def with_checksum(msg: bytes, src: IPAddress, dst: IPAddress, pseudo: bool) -> bytes:
    """``msg`` with its checksum field recomputed by the reference implementation."""
    zeroed = msg[:6] + b"\x00\x00" + msg[8:]
    covered = (ref_pseudo(src, dst, len(msg)) if pseudo else b"") + zeroed
    return zeroed[:6] + ref_checksum(covered).to_bytes(2, "big") + zeroed[8:]


V4_ADDR = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
V6_ADDR = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def valid_adverts(draw: st.DrawFn) -> tuple[Advert, IPAddress, IPAddress, bool]:
    version = draw(st.sampled_from([2, 3]))
    family = 4 if version == 2 else draw(st.sampled_from([4, 6]))
    addr: st.SearchStrategy[IPAddress] = V4_ADDR if family == 4 else V6_ADDR
    addresses = tuple(draw(st.lists(addr, min_size=1, max_size=255 if family == 4 else 40)))
    common = {
        "vrid": draw(st.integers(1, 255)),
        "priority": draw(st.integers(0, 255)),
        "addresses": addresses,
    }
    if version == 2:
        advert = Advert(
            2,
            interval_cs=100 * draw(st.integers(1, 255)),
            auth_type=draw(st.integers(0, 255)),
            auth_data=draw(st.binary(min_size=8, max_size=8)),
            **common,  # type: ignore[arg-type]
        )
    else:
        advert = Advert(3, interval_cs=draw(st.integers(1, 4095)), **common)  # type: ignore[arg-type]
    return advert, draw(addr), draw(addr), draw(st.booleans())
