"""The VRRP adverts in a capture, for the demo, the tests and the interop checks.

The header fields are read straight from the bytes (RFC 3768 5.1 / RFC 5798
5.1: version and type, VRID, priority, count, then the interval), so that an
advert the codec would refuse still shows; ``valid`` says whether freevrrpd's
codec accepts it (with or without the VRRPv3 IPv4 pseudo-header).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address

from freevrrpd.core.mac import mac_text
from freevrrpd.core.packet import PacketError, decode
from freevrrpd.core.settings import VRRP_PROTO
from freevrrpd.net.frames import Received, parse_ip_frame


@dataclass(frozen=True)
class SeenAdvert:
    time: float
    src: str  # source IP address
    mac: str  # source MAC address
    version: int
    vrid: int
    priority: int
    interval_cs: int  # v2: whole seconds times 100; v3: the 12-bit centiseconds
    valid: bool


def _valid(rx: Received) -> bool:
    for pseudo in (True, False):
        try:
            decode(rx.payload, rx.src_ip, rx.dst_ip, pseudo)
        except PacketError:
            continue
        return True
    return False


def adverts(packets: Iterable[tuple[float, bytes]], src: str | None = None,
            vrid: int | None = None, valid_only: bool = False) -> list[SeenAdvert]:
    """Every VRRP advert (IP protocol 112) in ``packets``, in order; optionally only
    those from ``src``, of ``vrid``, or those the codec accepts."""
    seen = []
    for ts, frame in packets:
        rx = parse_ip_frame(frame)
        if rx is None or rx.proto != VRRP_PROTO or len(rx.payload) < 8:
            continue
        p = rx.payload
        version = p[0] >> 4
        interval = p[5] * 100 if version == 2 else int.from_bytes(p[4:6], "big") & 0x0FFF
        adv = SeenAdvert(ts, str(rx.src_ip), mac_text(rx.src_mac), version, p[1], p[2],
                         interval, _valid(rx))
        if src is not None and ip_address(adv.src) != ip_address(src):
            continue
        if (vrid is not None and adv.vrid != vrid) or (valid_only and not adv.valid):
            continue
        seen.append(adv)
    return seen
