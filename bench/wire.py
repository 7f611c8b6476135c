"""VRRP adverts as seen by the switch: decode IPv4 frames of protocol 112 from a pcap.

The pcap records come from the lab's reader; the adverts in them are decoded
here, independent of freevrrpd's own codec on purpose: the benchmark judges both
daemons by what is on the wire (RFC 3768 section 5.1 / RFC 5798 section 5.1).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from lab import pcap

_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_ETH_P_8021Q = 0x8100
_PROTO_VRRP = 112


@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement on the wire."""

    time: float  # capture timestamp, wall clock (time.time())
    src_mac: str
    src_ip: str
    version: int
    vrid: int
    priority: int
    interval: float  # seconds, from the advert itself


def decode(ts: float, frame: bytes) -> Advert | None:
    """The advert in an Ethernet frame, or None if it is not a VRRP packet."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = 14
    if ethertype == _ETH_P_8021Q and len(frame) >= 18:
        (ethertype,) = struct.unpack_from("!H", frame, 16)
        offset = 18
    if ethertype == _ETH_P_IPV6 and len(frame) >= offset + 48:
        if frame[offset + 6] != _PROTO_VRRP:
            return None
        src_ip = str(ipaddress.IPv6Address(frame[offset + 8 : offset + 24]))
        vrrp = frame[offset + 40 :]
    elif ethertype == _ETH_P_IP and len(frame) >= offset + 20:
        ihl = (frame[offset] & 0x0F) * 4
        if frame[offset + 9] != _PROTO_VRRP or len(frame) < offset + ihl + 8:
            return None
        src_ip = str(ipaddress.IPv4Address(frame[offset + 12 : offset + 16]))
        vrrp = frame[offset + ihl :]
    else:
        return None
    version = vrrp[0] >> 4
    if version == 2:
        interval = float(vrrp[5])  # RFC 3768 5.3.7: Adver Int, whole seconds
    elif version == 3:
        # RFC 5798 5.2.7: 12-bit Max Adver Int in centiseconds.
        interval = (((vrrp[4] & 0x0F) << 8) | vrrp[5]) / 100.0
    else:
        return None
    src_mac = ":".join(f"{b:02x}" for b in frame[6:12])
    return Advert(ts, src_mac, src_ip, version, vrrp[1], vrrp[2], interval)


class PcapTail:
    """The adverts of a pcap that tcpdump is still writing, new ones on each poll."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._records = pcap.PcapTail(path)
        self.adverts: list[Advert] = []

    def poll(self) -> list[Advert]:
        """New adverts since the last call (also appended to ``self.adverts``)."""
        new = [a for ts, frame in self._records.read() if (a := decode(ts, frame)) is not None]
        self.adverts.extend(new)
        return new


def from_ip(adverts: list[Advert], ip: str, after: float = 0.0,
            before: float = float("inf")) -> list[Advert]:
    """Adverts sent from ``ip`` with after < time < before, in time order."""
    return [a for a in adverts if a.src_ip == ip and after < a.time < before]
