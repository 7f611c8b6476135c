"""The thread that follows the LAN under the routers: links and addresses, from netlink.

It only reports: ``LinkWatcher`` (netlink events, no polling) says which
interface of a router changed.  For monitored circuits the pure policy
``core.linkhold.LinkHold`` decides which routers become (not) eligible and when,
and each ``FaultChange`` goes to the router's own thread.  An interface that
disappears or comes back with a new index (``LinkIndex``), and an address that
could be a router's source address (``AddressChange``), go to the routers on
that interface, which decide for themselves.  The thread sleeps until the
next event or the policy's next deadline.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import TypedDict

from freevrrpd.core.actions import Report
from freevrrpd.core.linkhold import LinkHold, Output, names_of
from freevrrpd.core.settings import IPAddress, RouterKey, RouterSettings
from freevrrpd.core.tracking import TrackChange, TrackKey
from freevrrpd.net.linkwatch import AddressChange, Event, LinkIndex, LinkState, LinkWatcher
from freevrrpd.vrid.commands import Command
from freevrrpd.vrid.osthread import name_os_thread

Deliver = Callable[[RouterKey, Command], None]

LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LinkStatus(TypedDict):
    up: bool
    errors: int


class LinkMonitor(threading.Thread):
    def __init__(self, routers: Sequence[RouterSettings], deliver: Deliver,
                 log: logging.Logger) -> None:
        super().__init__(name="links", daemon=True)
        self.deliver = deliver
        self.log = log
        self.routers = tuple(routers)
        # trackinterface: any interface, watched for the routers that track it.
        self.tracked = {t.name for s in routers for t in s.tracks if t.kind == "interface"}
        names = {s.interface for s in routers} | {a.device for s in routers
                                                   for a in s.addresses if a.device}
        names |= self.tracked
        self.watcher = LinkWatcher(names, addresses=True) if names else None
        self.track_up = {n: self.watcher.state(n) for n in self.tracked} if self.watcher else {}
        monitored = names_of(routers)
        up = {n: self.watcher.state(n) for n in monitored} if self.watcher is not None else {}
        self.policy = LinkHold(routers, up)
        # Virtual addresses on each interface: their comings and goings are ours,
        # never a change of a router's source address.
        self._vips: dict[str, frozenset[IPAddress]] = {}
        for s in routers:
            for a in s.addresses:
                dev = a.device or s.interface
                self._vips[dev] = self._vips.get(dev, frozenset()) | {a.ip}
        self._lock = threading.Lock()  # the policy is read by status() from other threads
        self._halt = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    # ---- before the thread starts --------------------------------------------------------
    def initial(self, fresh: Collection[RouterKey] | None = None) -> dict[RouterKey, set[str]]:
        """Faults of the routers not started yet (``fresh``, default all) whose link is
        down now: their threads start with them."""
        with self._lock:
            faults, reports = self.policy.initial(time.monotonic(), fresh)
        self._emit(list(reports))
        return faults

    def carry_over(self, previous: LinkMonitor, fresh: Collection[RouterKey]) -> None:
        """After a reload: keep the previous policy's counters and pending returns."""
        with self._lock:
            out = self.policy.carry_over(previous.policy, time.monotonic(), fresh)
        self._emit(out)

    def track_values(self, s: RouterSettings) -> dict[TrackKey, int]:
        """The tracked interfaces of ``s``: 1 up, 0 down (or missing)."""
        with self._lock:
            return {t.key: int(self.track_up.get(t.name, False)) for t in s.tracks
                    if t.kind == "interface"}

    def resend(self) -> None:
        """Every tracked interface's state to its routers (after a reload)."""
        for s in self.routers:
            for key, value in self.track_values(s).items():
                self.deliver(s.key, TrackChange(s.key, key, value))

    # ---- status ----------------------------------------------------------------------------
    def links(self) -> dict[str, LinkStatus]:
        with self._lock:
            return {name: {"up": up, "errors": self.policy.errors.get(name, 0)}
                    for name, up in sorted(self.policy.up.items())}

    # ---- the thread --------------------------------------------------------------------------
    def run(self) -> None:
        name_os_thread()
        if self.watcher is None:
            return
        fd = self.watcher.fileno()
        # poll(), not select(): with many VRIDs (or after a reload) this
        # descriptor can exceed FD_SETSIZE (1024), which select() refuses.
        poller = select.poll()
        for watched in (fd, self._wake_r):
            poller.register(watched, select.POLLIN)
        while not self._halt.is_set():
            with self._lock:
                deadline = self.policy.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            # poll() counts whole milliseconds: round up, never wake before the deadline.
            ready = [f for f, _ in poller.poll(None if timeout is None else timeout * 1000 + 1)]
            if self._halt.is_set():
                break
            out: list[Output] = []
            events = self.watcher.events() if fd in ready else []
            with self._lock:
                for event in events:
                    if isinstance(event, LinkState):
                        out += self.policy.link_changed(event.name, event.usable,
                                                        time.monotonic())
                out += self.policy.handle_timer(time.monotonic())
            self._emit(out)
            for event in events:
                self._forward(event)
                if isinstance(event, LinkState) and event.name in self.tracked:
                    self._tracked(event.name, event.usable)

    def _tracked(self, name: str, up: bool) -> None:
        with self._lock:
            if self.track_up.get(name) == up:
                return
            self.track_up[name] = up
        self.log.log(logging.INFO if up else logging.WARNING, "tracked interface %s %s", name,
                     "up" if up else "down")
        for s in self.routers:
            for t in s.tracks:
                if t.kind == "interface" and t.name == name:
                    self.deliver(s.key, TrackChange(s.key, t.key, int(up)))

    def _forward(self, event: Event) -> None:
        """Interfaces and addresses to the routers they concern."""
        if isinstance(event, LinkIndex):
            for s in self.routers:
                if event.name == s.interface or event.name in {a.device for a in s.addresses}:
                    self.deliver(s.key, event)
        elif isinstance(event, AddressChange) and self._source_candidate(event):
            family = None if event.address is None else event.address.version
            for s in self.routers:
                if s.interface == event.name and family in (None, s.family):
                    self.deliver(s.key, event)

    def _source_candidate(self, event: AddressChange) -> bool:
        """Whether the address could be a router's source (RFC 5798 5.1.2.1: IPv6
        adverts come from the link-local address)."""
        ip = event.address
        if ip is None:
            return True
        if ip in self._vips.get(event.name, frozenset()):
            return False
        return ip.version == 4 or ip.is_link_local

    def _emit(self, out: Sequence[Output]) -> None:
        for item in out:
            if isinstance(item, Report):
                self.log.log(LOG_LEVELS[item.level], "%s", item.message)
            else:
                self.deliver(item.key, item)

    def stop(self) -> None:
        self._halt.set()
        os.write(self._wake_w, b"x")
        if self.watcher is not None:
            if self.is_alive():
                self.join(timeout=2)
            self.watcher.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
