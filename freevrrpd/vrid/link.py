"""The router's interface as it comes and goes: its capture socket, and what sends.

An interface may not exist yet at start, and may be deleted and created again
(same name, new index) while the daemon runs.  ``Link`` opens the capture
socket when the interface is there and closes everything that was bound to
the old one when it goes; the worker decides what that means for the router
(FAULT while it is gone).
"""

from __future__ import annotations

import errno
import logging

from freevrrpd.core.settings import RouterSettings
from freevrrpd.net.capture import PacketSocket, vrrp_socket
from freevrrpd.net.netlink import NetlinkError
from freevrrpd.vrid.conflict import ConflictGuard
from freevrrpd.vrid.effects import Effects


class Link:
    def __init__(self, settings: RouterSettings, effects: Effects, guard: ConflictGuard,
                 log: logging.Logger) -> None:
        self.settings = settings
        self.effects = effects
        self.guard = guard
        self.log = log
        self.sock: PacketSocket | None = None

    @property
    def missing(self) -> str:
        """The fault while the interface does not exist."""
        return f"interface {self.settings.interface} does not exist"

    def attach(self) -> bool:
        """Open the capture socket on the interface; False when there is none."""
        s = self.settings
        try:
            sock = vrrp_socket(s.interface, s.vrid, s.family)
        except OSError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENXIO):
                raise
            return False
        try:
            self.effects.attach(sock)
        except NetlinkError:
            sock.close()  # gone again in between
            return False
        self.sock = sock
        self.guard.own_macs = frozenset({self.effects.link_mac, self.effects.vmac})
        return True

    def detach(self) -> None:
        """Close everything bound to the interface (the capture, the probe and the
        claim watcher, the announcement sockets)."""
        self.guard.close()
        self.effects.detach()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def moved(self, name: str, ifindex: int | None) -> str | None:
        """The interface (or a ``dev:`` device) was deleted or created again: "gone",
        "back", "moved" (gone and back in one event) or None (nothing to do)."""
        s = self.settings
        if name != s.interface:
            self.effects.forget(name)
            return None
        if self.sock is not None and self.sock.ifindex == ifindex:
            return None
        change = None
        if self.sock is not None:
            self.log.warning("%s: interface %s %s", s.name, s.interface,
                             "disappeared" if ifindex is None else "was created again")
            self.detach()
            change = "gone"
        if ifindex is None or not self.attach():
            return change
        assert self.sock is not None
        self.log.info("%s: %s is back (index %d)", s.name, s.interface, self.sock.ifindex)
        return "moved" if change else "back"
