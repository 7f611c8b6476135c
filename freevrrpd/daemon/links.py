"""Monitored circuits: the thread that turns netlink link events into faults.

It only reports: ``LinkWatcher`` (netlink RTMGRP_LINK, no polling) says which
watched interface changed, the pure policy ``core.linkhold.LinkHold`` decides
which routers become (not) eligible and when, and each ``FaultChange`` is posted
to the router's own thread.  The thread sleeps until the next event or the
policy's next deadline.
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
from freevrrpd.core.linkhold import FaultChange, LinkHold, Output, names_of
from freevrrpd.core.settings import RouterKey, RouterSettings
from freevrrpd.net.linkwatch import LinkWatcher

LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LinkStatus(TypedDict):
    up: bool
    errors: int


class LinkMonitor(threading.Thread):
    def __init__(self, routers: Sequence[RouterSettings],
                 deliver: Callable[[FaultChange], None], log: logging.Logger) -> None:
        super().__init__(name="links", daemon=True)
        self.deliver = deliver
        self.log = log
        names = names_of(routers)
        self.watcher = LinkWatcher(names) if names else None
        up = {n: self.watcher.state(n) for n in names} if self.watcher is not None else {}
        self.policy = LinkHold(routers, up)
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

    # ---- status ----------------------------------------------------------------------------
    def links(self) -> dict[str, LinkStatus]:
        with self._lock:
            return {name: {"up": up, "errors": self.policy.errors.get(name, 0)}
                    for name, up in sorted(self.policy.up.items())}

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
            with self._lock:
                deadline = self.policy.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            # poll() counts whole milliseconds: round up, never wake before the deadline.
            ready = [f for f, _ in poller.poll(None if timeout is None else timeout * 1000 + 1)]
            if self._halt.is_set():
                break
            out: list[Output] = []
            with self._lock:
                if fd in ready:
                    for name, usable in self.watcher.poll():
                        out += self.policy.link_changed(name, usable, time.monotonic())
                out += self.policy.handle_timer(time.monotonic())
            self._emit(out)

    def _emit(self, out: Sequence[Output]) -> None:
        for item in out:
            if isinstance(item, Report):
                self.log.log(LOG_LEVELS[item.level], "%s", item.message)
            else:
                self.deliver(item)

    def stop(self) -> None:
        self._halt.set()
        os.write(self._wake_w, b"x")
        if self.watcher is not None:
            if self.is_alive():
                self.join(timeout=2)
            self.watcher.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
