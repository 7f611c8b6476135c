"""Every router heard on a virtual router's LAN: the peer table, free of I/O.

What an operator needs to diagnose a split brain or two clusters on one VRID:
each source that sent an advert for our VRID, its MAC, priority and advert
interval, when it was last heard, how many adverts it sent, and why its
adverts were last refused (the drop reasons of ``validate``).  Bounded: past
MAX_PEERS sources (a flood of spoofed ones) the longest silent is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from freevrrpd.core.mac import mac_text
from freevrrpd.core.packet import Advert
from freevrrpd.core.settings import IPAddress

MAX_PEERS = 64


class PeerStatus(TypedDict):
    address: str
    mac: str | None
    priority: int | None
    advert_interval: float | None
    last_seen: float  # seconds ago
    adverts: int
    refused: int
    last_drop: str | None


@dataclass
class Peer:
    mac: bytes | None = None
    priority: int | None = None
    interval_cs: int | None = None
    last_seen: float = 0.0
    adverts: int = 0  # accepted
    refused: int = 0
    last_drop: str | None = None


class PeerTable:
    def __init__(self) -> None:
        self.peers: dict[IPAddress, Peer] = {}

    def _get(self, src: IPAddress, now: float) -> Peer:
        peer = self.peers.get(src)
        if peer is None:
            if len(self.peers) >= MAX_PEERS:
                oldest = min(self.peers, key=lambda ip: self.peers[ip].last_seen)
                del self.peers[oldest]
            peer = self.peers[src] = Peer()
        peer.last_seen = now
        return peer

    def heard(self, src: IPAddress, mac: bytes | None, adv: Advert, now: float,
              count: int = 1) -> None:
        """``count`` adverts like ``adv`` were accepted from ``src``, the last at ``now``."""
        peer = self._get(src, now)
        if mac is not None:
            peer.mac = mac
        peer.priority, peer.interval_cs = adv.priority, adv.interval_cs
        peer.adverts += count

    def repeats(self, src: IPAddress, count: int, last_at: float) -> None:
        """Repeats of the master's advert counted elsewhere (the repeats tap)."""
        peer = self.peers.get(src)
        if peer is not None:
            peer.adverts += count
            peer.last_seen = max(peer.last_seen, last_at)

    def refused(self, src: IPAddress, reason: str, now: float) -> None:
        peer = self._get(src, now)
        peer.refused += 1
        peer.last_drop = reason

    def status(self, now: float) -> list[PeerStatus]:
        return [{"address": str(ip), "mac": mac_text(p.mac) if p.mac else None,
                 "priority": p.priority,
                 "advert_interval": None if p.interval_cs is None else p.interval_cs / 100,
                 "last_seen": round(max(0.0, now - p.last_seen), 3),
                 "adverts": p.adverts, "refused": p.refused, "last_drop": p.last_drop}
                for ip, p in sorted(self.peers.items(), key=lambda kv: (kv[0].version, kv[0]))]
