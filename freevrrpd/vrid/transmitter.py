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
router's thread holds the lease (``Lease``).  The thread renews it each time
it goes back to its wait, saying until when it waits; it loses it when it has
been busy (out of its wait) for longer than ``lease_for(interval)`` (20 advert
intervals, at least 2 s, at most 10 s) or stayed in a wait that long past the
wait's own deadline.  A thread that hangs in a call, loops or dies therefore
stops being advertised within that time, and its backups take over as they
would for a router that stopped; an idle master costs no wake-up for it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import socket
import threading
import time
from collections.abc import Hashable

from freevrrpd.vrid.burst import Burst, size_for_bursts
from freevrrpd.vrid.osthread import name_os_thread

LEASE_INTERVALS = 20
LEASE_MIN, LEASE_MAX = 2.0, 10.0  # seconds
LATE = 0.0005  # seconds: entries this close to due go out in the same burst


def lease_for(interval: float) -> float:
    """How long a router's thread may be busy (or overdue) before its periodic
    adverts stop."""
    return min(max(LEASE_INTERVALS * interval, LEASE_MIN), LEASE_MAX)


def next_slot(now: float, interval: float) -> int:
    """The number of the first point after ``now`` of the grid of ``interval``
    seconds (slot n is at n * interval: numbers, so that no error adds up)."""
    slot = math.floor(now / interval) + 1
    # now / interval may round down (3.0 / 0.1 is 29.999...): never the slot of now.
    return slot + 1 if slot * interval <= now + 1e-9 else slot


class Lease:
    """What a router's thread says of itself, read by the transmitter without a lock:
    one attribute, replaced whole (a tuple), so a reader never sees half of it."""

    __slots__ = ("_state", "lost")

    def __init__(self, now: float) -> None:
        self._state: tuple[bool, float | None] = (False, now)  # (waiting, until/since)
        self.lost = False  # set by the transmitter when it stopped advertising

    def waiting(self, until: float | None) -> None:
        """Going back to the wait, which ends at ``until`` (None: only on an event)."""
        self._state = (True, until)

    def busy(self, now: float) -> None:
        """Out of the wait since ``now``."""
        self._state = (False, now)

    def holds(self, now: float, term: float) -> bool:
        waiting, at = self._state
        if at is None:  # waiting for an event only: nothing is overdue
            return True
        return now < at + term


class _Entry:
    __slots__ = ("name", "ifname", "frame", "interval", "term", "slot", "due", "lease",
                 "sent")

    def __init__(self, name: str, ifname: str, frame: bytes, interval: float, slot: int,
                 lease: Lease, sent: int) -> None:
        self.name, self.ifname, self.frame = name, ifname, frame
        self.interval, self.term = interval, lease_for(interval)
        self.slot, self.due = slot, slot * interval
        self.lease, self.sent = lease, sent


class Transmitter(threading.Thread):
    def __init__(self, log: logging.Logger) -> None:
        super().__init__(name="transmitter", daemon=True)
        self.log = log
        self._entries: dict[Hashable, _Entry] = {}
        self._sent: dict[Hashable, int] = {}  # of withdrawn entries, for status
        self._cond = threading.Condition()
        self._socks: dict[str, socket.socket] = {}
        self._bursts: dict[str, Burst] = {}
        self._stopping = False

    # ---- the routers' threads ----------------------------------------------------------
    def put(self, key: Hashable, name: str, ifname: str, frame: bytes, interval: float,
            now: float, lease: Lease) -> None:
        """Send ``frame`` on ``ifname`` every ``interval`` seconds from the next grid
        slot on, instead of whatever this router handed over before, while the
        router's thread holds ``lease``."""
        with self._cond:
            old = self._entries.get(key)
            sent = old.sent if old is not None else self._sent.pop(key, 0)
            # A new frame for the same interval keeps its place on the grid.
            same = old is not None and old.interval == interval
            slot = old.slot if old is not None and same else next_slot(now, interval)
            lease.lost = False
            self._entries[key] = _Entry(name, ifname, frame, interval, slot, lease, sent)
            self._cond.notify()

    def withdraw(self, key: Hashable) -> None:
        """No more periodic adverts of this router (after this returns, none)."""
        with self._cond:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._sent[key] = entry.sent

    def sent(self, key: Hashable) -> int:
        """Periodic adverts sent for this router."""
        with self._cond:
            entry = self._entries.get(key)
            return entry.sent if entry is not None else self._sent.get(key, 0)

    # ---- the thread ---------------------------------------------------------------------
    def run(self) -> None:
        name_os_thread()
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
        limit = now + LATE
        due: dict[str, list[_Entry]] = {}
        for key, entry in list(self._entries.items()):
            if entry.due > limit:
                continue
            if not entry.lease.holds(now, entry.term):
                self._lose(key, entry)
                continue
            due.setdefault(entry.ifname, []).append(entry)
            entry.sent += 1
            # The next slot of the grid; a stall is not caught up with a burst.
            entry.slot += 1
            if entry.slot * entry.interval <= now:
                entry.slot = next_slot(now, entry.interval)
            entry.due = entry.slot * entry.interval
        for ifname, entries in due.items():
            self._send(ifname, entries)

    def _lose(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self._sent[key] = entry.sent
        entry.lease.lost = True
        self.log.error("%s: its thread has been busy or stuck for %.1f s: no longer "
                       "advertised (its backups take over)", entry.name, entry.term)

    def _send(self, ifname: str, entries: list[_Entry]) -> None:
        """One sendmmsg for the interface (``vrid.burst``), then frame by frame
        whatever it did not take."""
        sock = self._socks.get(ifname)
        try:
            if sock is None:
                sock = self._socks[ifname] = _sender(ifname)
            done = self._bursts.setdefault(ifname, Burst()).send(sock, [e.frame for e in entries])
            for entry in entries[done:]:
                # send(), not sendto(): sendto() with an interface name costs an
                # extra ioctl (SIOCGIFINDEX) per frame.
                sock.send(entry.frame)
        except OSError as exc:
            # The interface went away (its router hears of it from the link
            # monitor and withdraws); anything else is worth a line.
            if sock is not None and exc.errno in (errno.ENXIO, errno.ENODEV):
                self._drop_socket(ifname)  # bound to the old index
            elif exc.errno not in (errno.ENXIO, errno.ENODEV, errno.ENETDOWN):
                names = ", ".join(e.name for e in entries)
                self.log.warning("periodic adverts not sent (%s): %s", names, exc)

    def _drop_socket(self, ifname: str) -> None:
        sock = self._socks.pop(ifname, None)
        self._bursts.pop(ifname, None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self.is_alive():
            self.join(timeout=2)
        for ifname in list(self._socks):
            self._drop_socket(ifname)


def _sender(ifname: str) -> socket.socket:
    """A socket that sends frames on ``ifname`` and never receives: bound with
    protocol 0, which no frame matches; the frames say their own ethertype."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, 0))
        size_for_bursts(sock)
    except OSError:
        sock.close()
        raise
    return sock
