"""Classic pcap files as tcpdump writes them: read whole, or followed while written."""

from __future__ import annotations

import struct
from pathlib import Path

_PCAP_MICRO = 0xA1B2C3D4
_PCAP_NANO = 0xA1B23C4D
_HEADER = 24
Record = tuple[float, bytes]  # (timestamp, frame)


class PcapTail:
    """Reads a pcap that tcpdump is still writing, returning only what is new each time.

    Handles both byte orders and both microsecond and nanosecond magic.  A record
    cut short (tcpdump still writing) waits for the next read; a file too short
    for the global header (nothing flushed yet) reads as nothing.  Re-reading the
    whole file on every poll would cost CPU that the daemons under test then
    compete with on a small machine.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0
        self._record: struct.Struct | None = None
        self._scale = 0.0

    def read(self) -> list[Record]:
        try:
            with Path(self.path).open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        return self.feed(data)

    def feed(self, data: bytes) -> list[Record]:
        """Records in ``data``, the bytes of the file from where the last read stopped."""
        pos = 0
        if self._record is None:
            if len(data) < _HEADER:
                return []
            self._record, self._scale = _header(data, self.path)
            pos = _HEADER
        out: list[Record] = []
        size = self._record.size
        while pos + size <= len(data):
            sec, frac, caplen, _orig = self._record.unpack_from(data, pos)
            if pos + size + caplen > len(data):
                break  # tcpdump is still writing this record
            start = pos + size
            out.append((sec + frac * self._scale, data[start:start + caplen]))
            pos = start + caplen
        self._offset += pos
        return out


def _header(data: bytes, path: str) -> tuple[struct.Struct, float]:
    for endian in ("<", ">"):
        (magic,) = struct.unpack(endian + "I", data[:4])
        if magic in (_PCAP_MICRO, _PCAP_NANO):
            return struct.Struct(endian + "IIII"), 1e-6 if magic == _PCAP_MICRO else 1e-9
    raise ValueError(f"{path}: not a pcap file (magic {data[:4].hex()})")


def read_pcap(path: str) -> list[Record]:
    """(timestamp, frame) for every complete record of a classic pcap file."""
    return PcapTail(path).feed(Path(path).read_bytes())
