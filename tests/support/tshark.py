"""Dissecting lab captures with tshark: an independent judge of what we send.

Our own decoder would only agree with our own encoder; Wireshark's dissectors
were written by other people from the RFCs, validate checksums and flag
malformed packets and protocol oddities as "expert info".
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TSHARK = "tshark"

# Wireshark's expert severities (epan/proto.h: PI_CHAT .. PI_ERROR).
CHAT, NOTE, WARN, ERROR = 0x200000, 0x400000, 0x600000, 0x800000

# Checksum status values of Wireshark's checksum fields.
CHECKSUM_BAD, CHECKSUM_GOOD, CHECKSUM_UNVERIFIED = 0, 1, 2

DEFAULT_PREFS = {
    # Verify the IPv4 header checksum too (off by default in Wireshark).
    "ip.check_checksum": "TRUE",
}


@dataclass(frozen=True)
class Expert:
    severity: int
    message: str

    def __str__(self) -> str:
        names = {CHAT: "chat", NOTE: "note", WARN: "warning", ERROR: "error"}
        return f"{names.get(self.severity, hex(self.severity))}: {self.message}"


@dataclass
class Packet:
    """One dissected frame: every field by name (all occurrences), its expert infos."""

    number: int
    protocols: list[str]
    fields: dict[str, list[str]] = field(default_factory=dict)
    experts: list[Expert] = field(default_factory=list)
    malformed: bool = False

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def get(self, name: str) -> str:
        """The single value of ``name``; KeyError if absent, ValueError if repeated."""
        values = self.fields.get(name)
        if not values:
            raise KeyError(f"frame {self.number}: no field {name}")
        if len(values) != 1:
            raise ValueError(f"frame {self.number}: {name} occurs {len(values)} times: {values}")
        return values[0]

    def num(self, name: str) -> int:
        return int(self.get(name), 0)

    def has(self, protocol: str) -> bool:
        return protocol in self.protocols

    def problems(self, min_severity: int = WARN) -> list[str]:
        """Malformed-packet and expert infos at ``min_severity`` or worse."""
        out = [f"frame {self.number}: malformed packet"] if self.malformed else []
        out += [f"frame {self.number}: {e}" for e in self.experts if e.severity >= min_severity]
        return out


def dissect(
    pcap: str, prefs: Mapping[str, str] | None = None, display_filter: str | None = None
) -> list[Packet]:
    """Every frame of ``pcap`` (or those matching ``display_filter``), dissected."""
    argv = [TSHARK, "-n", "-r", pcap, "-T", "json", "--no-duplicate-keys"]
    for key, value in {**DEFAULT_PREFS, **(prefs or {})}.items():
        argv += ["-o", f"{key}:{value}"]
    if display_filter:
        argv += ["-Y", display_filter]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    frames: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return [_packet(frame["_source"]["layers"]) for frame in frames]


def _packet(layers: dict[str, Any]) -> Packet:
    frame = layers.get("frame", {})
    pkt = Packet(
        number=int(frame.get("frame.number", "0")),
        protocols=str(frame.get("frame.protocols", "")).split(":"),
    )
    _walk(layers, pkt)
    return pkt


def _walk(node: Any, pkt: Packet, key: str = "") -> None:
    if key == "_ws.malformed":
        pkt.malformed = True
    if key == "_ws.expert":
        for info in node if isinstance(node, list) else [node]:
            _expert(info, pkt)
        return
    if isinstance(node, dict):
        for k, v in node.items():
            _walk(v, pkt, k)
    elif isinstance(node, list):
        for item in node:
            _walk(item, pkt, key)
    elif key:
        pkt.fields.setdefault(key, []).append(str(node))


def _expert(info: Any, pkt: Packet) -> None:
    if not isinstance(info, dict):
        return
    severity = info.get("_ws.expert.severity", "0")
    messages = info.get("_ws.expert.message", "")
    sev = [severity] if isinstance(severity, str) else list(severity)
    msg = [messages] if isinstance(messages, str) else list(messages)
    for s, m in zip(sev, msg, strict=False):
        pkt.experts.append(Expert(int(s, 0), str(m)))
    if "_ws.malformed" in info or any("Malformed" in str(m) for m in msg):
        pkt.malformed = True
