"""Address-conflict detection on the wire: probes and the claim watcher.

Before a backup claims a virtual address it does not own, it asks the LAN
whether anyone already holds it: an ARP probe (RFC 5227 section 2.1.1) for
IPv4, a duplicate-address-detection solicitation (RFC 4862 section 5.4.2) for
IPv6.  A holder answers (the Linux kernel replies to ARP probes for addresses
it holds, and defends IPv6 addresses with an NA to ff02::1, RFC 4862 5.4.3).
``Probe`` does that for a set of addresses at once, without blocking: the
router's thread waits on its sockets and its deadline with everything else.
While master, ``ClaimWatcher`` reports anyone else announcing our addresses.
What an answer means is the protocol core's decision (``core.probing``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from ipaddress import IPv4Address

from freevrrpd.core.settings import IPAddress
from freevrrpd.net.bpf import claim_watch_filter
from freevrrpd.net.capture import PacketSocket, claim_socket
from freevrrpd.net.closing import Closing
from freevrrpd.net.frames import Claim, arp_probe_frame, dad_ns_frame, parse_claim

# RFC 5227 section 1.1 sends PROBE_NUM = 3 probes 1-2 s apart and waits
# ANNOUNCE_WAIT = 2 s: several seconds a failover cannot afford. The same
# count, spread evenly over the caller's window, keeps the protection against
# a single lost probe or answer.
PROBE_COUNT = 3

Target = tuple[str, bytes, IPAddress]  # (device, our MAC on it, address to probe)


class Probe:
    """One probe window for several addresses, possibly on several devices.

    ``targets`` name for each address the device it lives on and the probe's
    sender hardware address there (RFC 5227 wants the interface's own; a
    unicast ARP reply is addressed to it).  Every address is probed in the same
    window, so the time a backup waits does not grow with their number.  Call
    ``on_readable`` when a descriptor of ``filenos()`` is readable and
    ``on_timer`` at ``deadline()``; ``holders`` collects every (address, MAC)
    that answered, except ``ignore_macs`` and the devices' own MACs.
    """

    def __init__(self, targets: Sequence[Target], window: float, now: float,
                 ignore_macs: Collection[bytes] = ()) -> None:
        self.holders: set[tuple[IPAddress, bytes]] = set()
        self._socks: list[tuple[PacketSocket, frozenset[IPAddress], list[bytes]]] = []
        groups: dict[tuple[str, int], list[Target]] = {}
        for target in targets:
            groups.setdefault((target[0], target[2].version), []).append(target)
        try:
            for (dev, family), items in groups.items():
                sock = claim_socket(dev, family)
                frames = [arp_probe_frame(mac, ip) if isinstance(ip, IPv4Address)
                          else dad_ns_frame(mac, ip) for _dev, mac, ip in items]
                self._socks.append((sock, frozenset(ip for _d, _m, ip in items), frames))
        except BaseException:
            self.close()
            raise
        self._ignore = {*ignore_macs, *(t[1] for t in targets),
                        *(sock.hwaddr for sock, _ips, _f in self._socks)}
        self._sends = [now + index * window / PROBE_COUNT for index in range(PROBE_COUNT)]
        self.end = now + window

    def filenos(self) -> list[int]:
        return [sock.fileno() for sock, _ips, _frames in self._socks]

    def deadline(self) -> float:
        return min(self._sends[0], self.end) if self._sends else self.end

    def on_timer(self, now: float) -> bool:
        """Send the probes that are due; True once the window is over."""
        while self._sends and self._sends[0] <= now:
            self._sends.pop(0)
            for sock, _ips, frames in self._socks:
                for frame in frames:
                    sock.send(frame)
        return now >= self.end

    def on_readable(self) -> None:
        for sock, ips, _frames in self._socks:
            for raw in sock.recv_all():
                claim = parse_claim(raw)
                if claim is not None and claim.ip in ips and claim.mac not in self._ignore:
                    self.holders.add((claim.ip, claim.mac))

    def close(self) -> None:
        for sock, _ips, _frames in self._socks:
            sock.close()
        self._socks.clear()


class ClaimWatcher(Closing):
    """Watches ARP (IPv4) or NS/NA (IPv6) for foreign MACs claiming our VIPs."""

    def __init__(self, ifname: str, family: int, ips: Collection[IPAddress],
                 own_macs: Collection[bytes]) -> None:
        self._family = family
        self._ips = frozenset(ip for ip in ips if ip.version == family)
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
        self._ips = frozenset(ip for ip in ips if ip.version == self._family)
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

