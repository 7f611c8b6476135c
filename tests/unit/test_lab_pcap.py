"""The lab's pcap reader, on files built byte by byte."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lab import read_pcap


def pcap(endian: str, magic: int, records: list[tuple[int, int, bytes]]) -> bytes:
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, frac, frame in records:
        out += struct.pack(endian + "IIII", sec, frac, len(frame), len(frame)) + frame
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_microsecond_files_in_both_byte_orders(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "u.pcap"
    path.write_bytes(pcap(endian, 0xA1B2C3D4, [(100, 250000, b"abc"), (101, 1, b"")]))
    frames = read_pcap(str(path))
    assert [f for _, f in frames] == [b"abc", b""]
    assert frames[0][0] == pytest.approx(100.25) and frames[1][0] == pytest.approx(101.000001)


def test_nanosecond_files(tmp_path: Path) -> None:
    path = tmp_path / "n.pcap"
    path.write_bytes(pcap("<", 0xA1B23C4D, [(7, 500_000_001, b"\x01\x02")]))
    ((ts, frame),) = read_pcap(str(path))
    assert frame == b"\x01\x02" and ts == pytest.approx(7.500000001, abs=1e-9)


def test_a_record_still_being_written_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap("<", 0xA1B2C3D4, [(1, 0, b"whole"), (2, 0, b"partial")])[:-3])
    assert [f for _, f in read_pcap(str(path))] == [b"whole"]
    path.write_bytes(b"")
    assert read_pcap(str(path)) == []


def test_not_a_pcap(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))  # pcapng: not handled
    with pytest.raises(ValueError, match="not a pcap"):
        read_pcap(str(path))
