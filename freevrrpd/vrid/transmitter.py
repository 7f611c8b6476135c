"""One shared transmitter for the periodic adverts of every master (RFC 5798 6.4.3).

A router's thread stays the only place that decides: on becoming master it
sends its first advert itself and hands the transmitter the frame of the
periodic ones (``put``); on a change it hands over the new frame; before it
resigns it takes it back (``withdraw``, which returns only when no further
send of it can happen).  The transmitter wakes once per burst: every router
with the same advert interval is on the same grid of the monotonic clock
(keepalived's alignment; RFC 5798 leaves the phase open), so a hundred masters
cost one wake-up per interval instead of a hundred.

A lease keeps the safety of separate threads: a frame goes out only while its
router's thread has renewed the lease in the last ``lease_for(interval)``
seconds (20 advert intervals, at least 2 s, at most 10 s).  A thread that
hangs or dies stops being advertised within that time, and its backups take
over as they would for a router that stopped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

LEASE_INTERVALS = 20
LEASE_MIN, LEASE_MAX = 2.0, 10.0  # seconds
RENEW_AT = 0.5  # renew when this part of the lease has passed
LATE = 0.0005  # seconds: entries this close to due go out in the same burst


def lease_for(interval: float) -> float:
    """How long a handed-over frame is sent without its router's thread renewing."""
    return min(max(LEASE_INTERVALS * interval, LEASE_MIN), LEASE_MAX)


def next_slot(now: float, interval: float) -> float:
    """The next point after ``now`` of the grid of ``interval`` seconds."""
    return (math.floor(now / interval) + 1) * interval


@dataclass
class _Entry:
    name: str  # the router's, for the log
    ifname: str
    frame: bytes
    interval: float
    due: float
    lease_until: float
    sent: int = 0


class Transmitter(threading.Thread):
    def __init__(self, log: logging.Logger) -> None:
        super().__init__(name="transmitter", daemon=True)
        self.log = log
        self._entries: dict[Hashable, _Entry] = {}
        self._sent: dict[Hashable, int] = {}  # kept after a withdraw, for status
        self._cond = threading.Condition()
        self._socks: dict[str, socket.socket] = {}
        self._stopping = False

    # ---- the routers' threads ----------------------------------------------------------
    def put(self, key: Hashable, name: str, ifname: str, frame: bytes, interval: float,
            now: float) -> None:
        """Send ``frame`` on ``ifname`` every ``interval`` seconds from the next grid
        slot on, instead of whatever this router handed over before."""
        with self._cond:
            self._entries[key] = _Entry(name, ifname, frame, interval, next_slot(now, interval),
                                        now + lease_for(interval))
            self._cond.notify()

    def renew(self, key: Hashable, now: float) -> None:
        with self._cond:
            entry = self._entries.get(key)
            if entry is not None:
                entry.lease_until = now + lease_for(entry.interval)

    def withdraw(self, key: Hashable) -> None:
        """No more periodic adverts of this router (after this returns, none)."""
        with self._cond:
            self._entries.pop(key, None)

    def sent(self, key: Hashable) -> int:
        """Periodic adverts sent for this router."""
        with self._cond:
            return self._sent.get(key, 0)

    # ---- the thread ---------------------------------------------------------------------
    def run(self) -> None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                due = min((e.due for e in self._entries.values()), default=None)
                if due is None or due > now:
                    self._cond.wait(None if due is None else due - now)
                    continue
                self._burst(now)

    def _burst(self, now: float) -> None:
        """Every entry due now, in one go (the lock is held: withdraw waits)."""
        for key, entry in list(self._entries.items()):
            if entry.due > now + LATE:
                continue
            if now > entry.lease_until:
                del self._entries[key]
                self.log.error("%s: its thread has not renewed its advert lease for %.1f s: "
                               "no longer advertised", entry.name, lease_for(entry.interval))
                continue
            self._send(entry)
            entry.sent += 1
            self._sent[key] = self._sent.get(key, 0) + 1
            # The next slot of the grid; a stall is not caught up with a burst.
            entry.due = max(entry.due + entry.interval, next_slot(now, entry.interval))

    def _send(self, entry: _Entry) -> None:
        sock = self._socks.get(entry.ifname)
        if sock is None:
            # Protocol 0: a socket that sends and never receives.
            sock = self._socks[entry.ifname] = socket.socket(socket.AF_PACKET,
                                                             socket.SOCK_RAW, 0)
        (ethertype,) = struct.unpack_from("!H", entry.frame, 12)
        try:
            sock.sendto(entry.frame, (entry.ifname, ethertype))
        except OSError as exc:
            # The interface went away (its router hears of it from the link
            # monitor and withdraws); anything else is worth a line.
            if exc.errno not in (errno.ENXIO, errno.ENODEV, errno.ENETDOWN):
                self.log.warning("%s: periodic advert not sent: %s", entry.name, exc)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self.is_alive():
            self.join(timeout=2)
        for sock in self._socks.values():
            with contextlib.suppress(OSError):
                sock.close()
        self._socks.clear()
