"""Monitored circuits: link events from netlink make virtual routers not eligible.

``monitoredcircuits = yes`` watches the interface's carrier and operational
state through netlink link events (no polling).  When the link fails, its
virtual routers go to FAULT (a master resigns with priority 0, RFC 5798
6.4.3) and so do the VRIDs listed in their ``vridsdep`` (a sync group).  When
the link returns it must stay up ``carriertimeout`` seconds (against a
flapping port) and then ``spanningtreelatency`` more (until a switch port
forwards) before the routers become eligible again.  The original's error
counter is kept: a link failure counts one error, and the counter resets after
the link has been up ``MCClearErrorsCount`` seconds (0 = never reset).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from freevrrpd.net.netlink import LinkWatcher

if TYPE_CHECKING:
    from freevrrpd.worker import VridWorker


def link_reason(ifname: str) -> str:
    return f"link {ifname} down"


def dep_reason(vrid: int, ifname: str) -> str:
    return f"dependency: VRID {vrid} lost link {ifname}"


class CircuitMonitor(threading.Thread):
    def __init__(self, workers: Sequence[VridWorker], log: logging.Logger) -> None:
        super().__init__(name="circuits", daemon=True)
        self.workers = [w for w in workers if w.settings.monitored_circuits]
        self.all_workers = list(workers)
        self.log = log
        names = sorted({w.settings.interface for w in self.workers})
        self.watcher = LinkWatcher(names) if names else None
        self.up: dict[str, bool] = {n: self.watcher.state(n) for n in names} if self.watcher else {}
        self.errors: dict[str, int] = dict.fromkeys(names, 0)
        self.up_since: dict[str, float] = {}
        # Pending returns: (deadline, worker) per worker whose link came back.
        self._pending: dict[VridWorker, float] = {}
        self._halt = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    def carry_over(self, previous: CircuitMonitor) -> None:
        """After a reload: keep the old monitor's error counters and pending returns,
        and act on link changes that happened while no monitor was watching."""
        now = time.monotonic()
        for name in self.up:
            if name in previous.errors:
                self.errors[name] = previous.errors[name]
            if name in previous.up_since:
                self.up_since[name] = previous.up_since[name]
        self._pending = {w: t for w, t in previous._pending.items() if w in self.workers}
        for name, up in list(self.up.items()):
            if name in previous.up and previous.up[name] != up:
                self.up[name] = previous.up[name]
                self._change(name, up, now)

    # ---- before the workers start --------------------------------------------------------
    def initial_faults(self, only: Collection[VridWorker] | None = None) -> None:
        """Mark routers whose link is down before their threads start (``only``:
        the routers not started yet, after a reload)."""
        now = time.monotonic()
        fresh = set(self.all_workers if only is None else only)
        for name, up in self.up.items():
            if up:
                self.up_since[name] = now
                continue
            self.log.warning("link %s is down at start: its virtual routers are not eligible",
                             name)
            for w in self.workers:
                if w.settings.interface == name:
                    if w in fresh:
                        w.router.faults.add(link_reason(name))
                    for dep in self._deps(w):
                        if dep in fresh:
                            dep.router.faults.add(dep_reason(w.settings.vrid, name))

    def _deps(self, w: VridWorker) -> list[VridWorker]:
        wanted = set(w.settings.vrids_dep)
        return [d for d in self.all_workers if d.settings.vrid in wanted and d is not w]

    # ---- the thread --------------------------------------------------------------------------
    def run(self) -> None:
        if self.watcher is None:
            return
        fd = self.watcher.fileno()
        # poll(), not select(): with many VRIDs (or after a reload) this
        # descriptor can exceed FD_SETSIZE (1024), which select() refuses.
        poller = select.poll()
        for watched in (fd, self._wake_r):
            poller.register(watched, select.POLLIN)
        while not self._halt.is_set():
            now = time.monotonic()
            timeout = 1.0
            if self._pending:
                timeout = max(0.0, min(min(self._pending.values()) - now, 1.0))
            ready = [f for f, _ in poller.poll(timeout * 1000)]
            if self._halt.is_set():
                break
            if fd in ready:
                for name, usable in self.watcher.poll():
                    self._change(name, usable, time.monotonic())
            self._tick(time.monotonic())

    def stop(self) -> None:
        self._halt.set()
        os.write(self._wake_w, b"x")
        if self.watcher is not None:
            if self.is_alive():
                self.join(timeout=2)
            self.watcher.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _change(self, name: str, usable: bool, now: float) -> None:
        if name not in self.up or self.up[name] == usable:
            return
        self.up[name] = usable
        if not usable:
            self.errors[name] += 1
            self.up_since.pop(name, None)
            self.log.warning("link %s down (error %d): its virtual routers step down",
                             name, self.errors[name])
            for w in self.workers:
                if w.settings.interface != name:
                    continue
                self._pending.pop(w, None)
                w.post("fault", link_reason(name), True)
                for dep in self._deps(w):
                    self.log.warning("%s follows %s (vridsdep)", dep.settings.name,
                                     w.settings.name)
                    dep.post("fault", dep_reason(w.settings.vrid, name), True)
            return
        self.up_since[name] = now
        for w in self.workers:
            if w.settings.interface == name:
                hold = w.settings.carrier_timeout + w.settings.spanning_tree_latency
                self.log.info("link %s up: %s eligible again in %.1f s (carriertimeout %g s + "
                              "spanningtreelatency %g s)", name, w.settings.name, hold,
                              w.settings.carrier_timeout, w.settings.spanning_tree_latency)
                self._pending[w] = now + hold
        self._tick(now)

    def _tick(self, now: float) -> None:
        for w, when in list(self._pending.items()):
            if now >= when:
                del self._pending[w]
                name = w.settings.interface
                w.post("fault", link_reason(name), False)
                for dep in self._deps(w):
                    dep.post("fault", dep_reason(w.settings.vrid, name), False)
        for name, since in self.up_since.items():
            limits = [w.settings.mc_clear_errors_count for w in self.workers
                      if w.settings.interface == name]
            limit = min(limits) if limits else 0
            if limit > 0 and self.errors.get(name) and now - since >= limit:
                self.log.info("link %s: error counter reset after %d s up", name, limit)
                self.errors[name] = 0
