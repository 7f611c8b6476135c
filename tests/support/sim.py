"""A simulated LAN of I/O-free routers driven by a fake clock (no sleeping).

Each step jumps to the earliest deadline (a router timer, a packet in flight
or the end of an address probe), so a 30-second election runs in
milliseconds.  Routers probe their addresses only when a test asks for it
(``conflict_check=True``); the LAN then answers each probe at the end of its
window with every holder: a router of the VRID that holds the addresses, and
the foreign hosts in ``SimLan.foreign``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address

from freevrrpd.core.actions import (
    Action,
    Advertise,
    Announce,
    ClaimAddresses,
    ReleaseAddresses,
    Report,
    SendAdvert,
    Silence,
    StartProbe,
    State,
    Transition,
)
from freevrrpd.core.packet import encode
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V4, VRRP_GROUP_V6, IPAddress, RouterSettings

LATENCY = 0.0001  # one-way delay on the simulated wire


@dataclass
class Node:
    name: str
    router: Router
    connected: bool = True
    holds_addresses: bool = False
    transitions: list[tuple[float, Transition]] = field(default_factory=list)
    sent: list[tuple[float, int]] = field(default_factory=list)
    announces: list[float] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    # Overrides what this node puts on the wire (a rogue or misconfigured peer).
    wire_settings: RouterSettings | None = None
    ttl: int = 255
    mac: bytes = b"\x02\x00\x00\x00\x00\x00"
    probes: list[tuple[float, StartProbe]] = field(default_factory=list)
    # The host's own MAC, which answers ARP/ND when it differs from what its adverts
    # carry (FRR: adverts from the virtual MAC, answers from the NIC's MAC).
    answer_mac: bytes | None = None
    keeps_addresses: bool = False  # answers for the addresses in every state (FRR)
    periodic: int | None = None  # the priority the simulated transmitter sends with
    periodic_sent: int = 0
    _periodic_gen: int = 0

    @property
    def state(self) -> State:
        return self.router.state

    @property
    def ip(self) -> IPAddress:
        assert self.router.primary_ip is not None
        return self.router.primary_ip


class SimLan:
    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self._wire: list[tuple[float, int, str, bytes]] = []
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        # Hosts that are not VRRP routers but hold an address: address -> their MAC.
        self.foreign: dict[IPAddress, bytes] = {}

    def add(self, name: str, ip: str, handoff: bool = False, **settings: object) -> Node:
        """A router; ``handoff``: its periodic adverts go through a simulated shared
        transmitter (Advertise / Silence), as in the daemon."""
        fields: dict[str, object] = {
            "vrid": 1, "interface": "eth0",
            "addresses": (),
        }
        fields.update(settings)
        addr = ip_address(ip)
        if not fields["addresses"]:
            from freevrrpd.core.settings import VirtualAddress
            vip = "192.0.2.254/24" if addr.version == 4 else "2001:db8::fe/64"
            from ipaddress import ip_interface
            fields["addresses"] = (VirtualAddress(ip_interface(vip)),)
        fields.setdefault("family", addr.version)
        fields.setdefault("conflict_check", False)
        mac = bytes((2, 0, 0, 0, 0, len(self.nodes) + 1))
        router = Router(RouterSettings(**fields), addr, handoff=handoff)  # type: ignore[arg-type]
        node = Node(name, router, mac=mac)
        self.nodes[name] = node
        return node

    # ---- driving ------------------------------------------------------------------
    def start(self, *names: str) -> None:
        for name in names or tuple(self.nodes):
            node = self.nodes[name]
            self._apply(node, node.router.start(self.now))

    def shutdown(self, name: str) -> None:
        node = self.nodes[name]
        self._apply(node, node.router.shutdown(self.now))

    def fault(self, name: str, reason: str, active: bool) -> None:
        node = self.nodes[name]
        self._apply(node, node.router.set_fault(reason, active, self.now))

    def next_event(self) -> float | None:
        times = [t for n in self.nodes.values() if (t := n.router.next_deadline()) is not None]
        if self._wire:
            times.append(self._wire[0][0])
        if self._events:
            times.append(self._events[0][0])
        return min(times) if times else None

    def run_until(self, end: float) -> None:
        while (t := self.next_event()) is not None and t <= end:
            self.now = max(self.now, t)
            while self._wire and self._wire[0][0] <= self.now:
                _, _, sender, data = heapq.heappop(self._wire)
                self._deliver(sender, data)
            while self._events and self._events[0][0] <= self.now:
                heapq.heappop(self._events)[2]()
            for node in list(self.nodes.values()):
                d = node.router.next_deadline()
                if d is not None and d <= self.now:
                    self._apply(node, node.router.handle_timer(self.now))
        self.now = max(self.now, end)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # ---- queries --------------------------------------------------------------------
    def masters(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.state is State.MASTER]

    def became_master_at(self, name: str) -> list[float]:
        return [t for t, tr in self.nodes[name].transitions if tr.new is State.MASTER]

    # ---- internals ------------------------------------------------------------------
    def _apply(self, node: Node, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendAdvert):
                node.sent.append((self.now, action.priority))
                if node.connected:
                    self._broadcast(node, action.priority)
            elif isinstance(action, Transition):
                node.transitions.append((self.now, action))
            elif isinstance(action, ClaimAddresses):
                node.holds_addresses = True
            elif isinstance(action, ReleaseAddresses):
                node.holds_addresses = False
            elif isinstance(action, Announce):
                node.announces.append(self.now)
            elif isinstance(action, Report):
                node.reports.append(action)
            elif isinstance(action, Advertise):
                node.periodic = action.priority
                node._periodic_gen += 1
                self._tick(node, node._periodic_gen, self.now + node.router.settings.advert_int)
            elif isinstance(action, Silence):
                node.periodic = None
                node._periodic_gen += 1
            elif isinstance(action, StartProbe):
                node.probes.append((self.now, action))
                end = self.now + action.window
                heapq.heappush(self._events, (end, next(self._seq),
                                              lambda n=node, a=action: self._probe_done(n, a)))

    def _tick(self, node: Node, gen: int, at: float) -> None:
        """The shared transmitter: one advert per interval while Advertise holds."""
        def fire() -> None:
            if node._periodic_gen != gen or node.periodic is None:
                return
            node.sent.append((self.now, node.periodic))
            node.periodic_sent += 1
            if node.connected:
                self._broadcast(node, node.periodic)
            self._tick(node, gen, self.now + node.router.settings.advert_int)
        heapq.heappush(self._events, (at, next(self._seq), fire))

    def holders(self, prober: Node, ips: tuple[IPAddress, ...]) -> set[tuple[IPAddress, bytes]]:
        """Who answers a probe for ``ips``: routers holding them, and foreign hosts."""
        found = {(ip, mac) for ip, mac in self.foreign.items() if ip in ips}
        for other in self.nodes.values():
            if other is prober or not other.connected:
                continue
            mac = other.answer_mac or other.mac
            if other.holds_addresses or other.keeps_addresses:
                found |= {(ip, mac) for ip in other.router.settings.ips if ip in ips}
            if other.ip in ips:  # a peer's own address, probed to learn its MAC
                found.add((other.ip, mac))
        return found if prober.connected else set()

    def _probe_done(self, node: Node, action: StartProbe) -> None:
        holders = self.holders(node, action.addresses + action.peers)
        self._apply(node, node.router.probe_finished(self.now, holders))

    def _broadcast(self, node: Node, priority: int) -> None:
        router = node.router
        if node.wire_settings is not None:
            router = Router(node.wire_settings, node.ip)
        s = router.settings
        dst = VRRP_GROUP_V4 if s.family == 4 else VRRP_GROUP_V6
        data = encode(router.build_advert(priority), node.ip, dst, s.checksum_pseudo_header)
        heapq.heappush(self._wire, (self.now + LATENCY, next(self._seq), node.name, data))

    def _deliver(self, sender: str, data: bytes) -> None:
        src = self.nodes[sender]
        if not src.connected:
            return
        for node in self.nodes.values():
            if node is src or not node.connected:
                continue
            dst = VRRP_GROUP_V4 if src.ip.version == 4 else VRRP_GROUP_V6
            self._apply(node, node.router.receive(data, src.ip, dst, src.ttl, self.now, src.mac))
