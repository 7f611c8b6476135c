"""VRRP adverts as seen by the switch: decode IPv4 frames of protocol 112 from a pcap.

Independent of freevrrpd's own codec on purpose: the benchmark judges both
daemons by what is on the wire (RFC 3768 section 5.1 / RFC 5798 section 5.1).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path

_PCAP_MICRO = 0xA1B2C3D4
_PCAP_NANO = 0xA1B23C4D
_ETH_P_IP = 0x0800
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
    """The advert in an Ethernet frame, or None if it is not an IPv4 VRRP packet."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = 14
    if ethertype == _ETH_P_8021Q and len(frame) >= 18:
        (ethertype,) = struct.unpack_from("!H", frame, 16)
        offset = 18
    if ethertype != _ETH_P_IP or len(frame) < offset + 20:
        return None
    ihl = (frame[offset] & 0x0F) * 4
    if frame[offset + 9] != _PROTO_VRRP or len(frame) < offset + ihl + 8:
        return None
    src_ip = str(ipaddress.IPv4Address(frame[offset + 12 : offset + 16]))
    vrrp = frame[offset + ihl :]
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
    """Reads a pcap that tcpdump is still writing, returning only what is new each time.

    Re-reading the whole file on every poll would cost the benchmark CPU that
    the daemons under test then compete with on a small machine.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0
        self._endian = ""
        self._scale = 0.0
        self.adverts: list[Advert] = []

    def poll(self) -> list[Advert]:
        """New adverts since the last call (also appended to ``self.adverts``)."""
        try:
            with Path(self.path).open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        pos = 0
        if not self._endian:
            if len(data) < 24:
                return []
            for endian in ("<", ">"):
                (magic,) = struct.unpack(endian + "I", data[:4])
                if magic in (_PCAP_MICRO, _PCAP_NANO):
                    self._endian = endian
                    self._scale = 1e-6 if magic == _PCAP_MICRO else 1e-9
                    break
            else:
                raise ValueError(f"{self.path}: not a pcap file")
            pos = 24
        record = struct.Struct(self._endian + "IIII")
        new: list[Advert] = []
        while pos + record.size <= len(data):
            sec, frac, caplen, _orig = record.unpack_from(data, pos)
            if pos + record.size + caplen > len(data):
                break  # tcpdump is still writing this record
            start = pos + record.size
            advert = decode(sec + frac * self._scale, data[start : start + caplen])
            if advert is not None:
                new.append(advert)
            pos = start + caplen
        self._offset += pos
        self.adverts.extend(new)
        return new


def from_ip(adverts: list[Advert], ip: str, after: float = 0.0,
            before: float = float("inf")) -> list[Advert]:
    """Adverts sent from ``ip`` with after < time < before, in time order."""
    return [a for a in adverts if a.src_ip == ip and after < a.time < before]
