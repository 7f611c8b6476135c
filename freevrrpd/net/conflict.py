"""Address-conflict detection (issue 3, section 3).

Before a backup claims a virtual address it does not own, it asks the LAN
whether anyone already holds it: an ARP probe (RFC 5227 section 2.1.1) for
IPv4, a duplicate-address-detection solicitation (RFC 4862 section 5.4.2) for
IPv6. A holder answers (the Linux kernel replies to ARP probes for addresses
it holds, and defends IPv6 addresses with an NA to ff02::1, RFC 4862 5.4.3).
While master, ``ClaimWatcher`` reports anyone else announcing our addresses.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Collection
from ipaddress import IPv4Address

from freevrrpd.core.settings import IPAddress
from freevrrpd.net.bpf import claim_watch_filter
from freevrrpd.net.capture import claim_socket
from freevrrpd.net.frames import Claim, arp_probe_frame, dad_ns_frame, parse_claim

# RFC 5227 section 1.1 sends PROBE_NUM = 3 probes 1-2 s apart and waits
# ANNOUNCE_WAIT = 2 s: several seconds a failover cannot afford. The same
# count, spread evenly over the caller's timeout, keeps the protection against
# a single lost probe or answer.
PROBE_COUNT = 3


def _family(ip: IPAddress) -> int:
    return socket.AF_INET if isinstance(ip, IPv4Address) else socket.AF_INET6


def probe(ifname: str, mac: bytes, ip: IPAddress, timeout: float = 1.0,
          ignore_macs: Collection[bytes] = ()) -> bytes | None:
    """Probe ``ip`` on ``ifname`` for up to ``timeout`` seconds (blocking).

    ``mac`` is the probe's sender hardware address; RFC 5227 wants the
    interface's own, and a unicast ARP reply is addressed to it. Returns the
    MAC of the first holder that is neither ``mac``, the interface's MAC nor in
    ``ignore_macs`` (our other MACs, the virtual MAC, known routers of the
    VRID), or None when nobody answered.
    """
    frame = arp_probe_frame(mac, ip) if isinstance(ip, IPv4Address) else dad_ns_frame(mac, ip)
    with claim_socket(ifname, _family(ip)) as sock:
        ignored = {mac, sock.hwaddr, *ignore_macs}
        start = time.monotonic()
        deadline = start + timeout
        sends = [start + index * timeout / PROBE_COUNT for index in range(PROBE_COUNT)]
        # poll(), not select(): with many VRIDs probing at once the socket's
        # descriptor can exceed FD_SETSIZE (1024), which select() refuses.
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        while True:
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                sock.send(frame)
            for raw in sock.recv_all():
                claim = parse_claim(raw)
                if claim is not None and claim.ip == ip and claim.mac not in ignored:
                    return claim.mac
            if now >= deadline:
                return None
            wake = min(deadline, sends[0]) if sends else deadline
            poller.poll(max(0.0, wake - now) * 1000)


class ClaimWatcher:
    """Watches ARP (IPv4) or NS/NA (IPv6) for foreign MACs claiming our VIPs."""

    def __init__(self, ifname: str, family: int, ips: Collection[IPAddress],
                 own_macs: Collection[bytes]) -> None:
        self._family = family
        self._version = 4 if family == socket.AF_INET else 6
        self._ips = frozenset(ip for ip in ips if ip.version == self._version)
        # The kernel passes only frames naming our addresses: a master VRID must
        # not wake for every ARP and ND frame of the LAN (`make bench`: 50 ARP/s
        # cost 255 VRIDs 70 % of a core).
        self._sock = claim_socket(ifname, family, self._ips)
        self.own_macs = frozenset({*own_macs, self._sock.hwaddr})

    @property
    def ips(self) -> frozenset[IPAddress]:
        return self._ips

    @ips.setter
    def ips(self, ips: Collection[IPAddress]) -> None:
        """New addresses (a reload): the kernel's filter follows them."""
        self._ips = frozenset(ip for ip in ips if ip.version == self._version)
        self._sock.set_filter(claim_watch_filter(self._family, self._ips))

    def fileno(self) -> int:
        return self._sock.fileno()

    def poll(self) -> list[Claim]:
        """Claims queued since the last call, without blocking."""
        claims: list[Claim] = []
        for raw in self._sock.recv_all():
            claim = parse_claim(raw)
            if claim is not None and claim.ip in self.ips and claim.mac not in self.own_macs:
                claims.append(claim)
        return claims

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ClaimWatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
