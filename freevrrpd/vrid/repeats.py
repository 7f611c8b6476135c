"""The repeats tap: one capture per interface counts the unchanged adverts of the
masters that backups wait for, so that a backup's thread does not wake for each.

RFC 5798 6.4.2: a backup that receives an advert of its master (priority at
least its own, or no preemption) restarts its Master_Down_Timer; an advert
identical to the last one it accepted does nothing else.  Such a backup says
so (``ExpectRepeats``); its thread's kernel filter then drops those repeats,
and this tap, which reads every advert of the interface in batches on one
thread, records when they arrived and keeps the backup's Master_Down deadline
(the last arrival plus Master_Down_Interval).  When a deadline passes with no
repeat, the tap wakes that backup's thread (``poke``), which reads the record
(``take``: the tap's socket is drained first, so nothing still queued is
missed), restarts its timer from the last arrival exactly as if it had
received each, and decides.  The tap decides nothing.

The backup's thread also wakes now and then by itself (``CHECK_EVERY``) to see
that the tap still runs; if it does not, the backup goes back to seeing every
advert.

The tap reads in batches: after a read it lets ``BATCH`` seconds of adverts
gather in the socket rather than waking for each (a hundred masters send a
hundred adverts a burst, not all at the same microsecond).  Arrival times are
the kernel's (SO_TIMESTAMPNS), so a frame read late still counts from when it
came; the kernel stamps in wall-clock time, turned into the monotonic clock at
the read and kept between the previous read and this one, which bounds what a
step of the wall clock can do.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Hashable

from freevrrpd.net import bpf
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket
from freevrrpd.net.frames import signature
from freevrrpd.vrid.osthread import name_os_thread
from freevrrpd.vrid.wait import wait_readable

RCVBUF = 4 << 20  # bytes: thousands of queued adverts (about 1 KiB of buffer each)
BATCH = 0.02  # seconds of adverts gathered per read
CHECK_EVERY = 2.0  # seconds: how often a backup relying on the tap looks at it


class _Watch:
    __slots__ = ("ifname", "sig", "mdi", "due", "poke", "last", "count", "poked")

    def __init__(self, ifname: str, sig: bytes, mdi: float, due: float,
                 poke: Callable[[], None]) -> None:
        self.ifname, self.sig, self.mdi, self.due, self.poke = ifname, sig, mdi, due, poke
        self.last: float | None = None  # monotonic time of the last repeat seen
        self.count = 0  # repeats since the last take
        self.poked = False  # woken for this deadline already


class RepeatsTap(threading.Thread):
    def __init__(self, log: logging.Logger) -> None:
        super().__init__(name="repeats", daemon=True)
        self.log = log
        self._lock = threading.Lock()
        self._watches: dict[Hashable, _Watch] = {}
        self._by_sig: dict[tuple[str, bytes], set[Hashable]] = {}
        self._socks: dict[str, PacketSocket] = {}
        self._read_at: dict[str, float] = {}  # when each socket was last read
        self._changed_r, self._changed_w = socket.socketpair()
        self._changed_r.setblocking(False)
        self._changed_w.setblocking(False)
        self._stopping = False

    # ---- the routers' threads -----------------------------------------------------------
    def expect(self, key: Hashable, ifname: str, sig: bytes, master_down_interval: float,
               due: float, poke: Callable[[], None]) -> None:
        """Count the repeats of ``sig`` on ``ifname`` for ``key`` (call before its
        filter starts dropping them); ``poke`` it when ``due`` (its Master_Down
        deadline, moved on by each repeat) passes."""
        with self._lock:
            self._forget(key)
            if ifname not in self._socks:
                sock = PacketSocket(ifname, ETH_P_ALL, bpf.repeats_filter())
                sock.ignore_outgoing()
                sock.set_rcvbuf(RCVBUF)
                sock.stamp()
                self._socks[ifname] = sock
                self._read_at[ifname] = time.monotonic()
            self._watches[key] = _Watch(ifname, sig, master_down_interval, due, poke)
            self._by_sig.setdefault((ifname, sig), set()).add(key)
            self._wake_tap()  # a new deadline, maybe a new socket

    def rearm(self, key: Hashable, due: float) -> None:
        """The backup's core set its Master_Down_Timer to ``due`` (a probe ended, a
        record was read): the deadline is that, or later if a repeat says so."""
        with self._lock:
            watch = self._watches.get(key)
            if watch is None:
                return
            watch.due = due if watch.last is None else max(due, watch.last + watch.mdi)
            watch.poked = False
            self._wake_tap()

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._forget(key)

    def take(self, key: Hashable) -> tuple[float, int] | None:
        """(last arrival, how many) of the repeats since the last take; None if none."""
        with self._lock:
            watch = self._watches.get(key)
            if watch is None:
                return None
            self._read(watch.ifname)  # what is still queued counts too
            if watch.last is None or watch.count == 0:
                return None
            found = (watch.last, watch.count)
            watch.count = 0
            return found

    # ---- the thread ---------------------------------------------------------------------
    def run(self) -> None:
        name_os_thread()
        while not self._stopping:
            with self._lock:
                fds = [self._changed_r.fileno(), *(s.fileno() for s in self._socks.values())]
                due = self._next_due()
            now = time.monotonic()
            ready = wait_readable(fds, None if due is None else max(0.0, due - now))
            with self._lock:
                if self._changed_r.fileno() in ready:
                    with contextlib.suppress(BlockingIOError):
                        self._changed_r.recv(4096)
                read = False
                for ifname, sock in list(self._socks.items()):
                    if sock.fileno() in ready:
                        self._read(ifname)
                        read = True
                self._poke_due(time.monotonic())
                due = self._next_due()
            if read:
                # Let the next adverts gather, but not past a deadline.
                pause = BATCH if due is None else min(BATCH, due - time.monotonic())
                if pause > 0:
                    time.sleep(pause)

    def _wake_tap(self) -> None:
        # A full pair already means "wake up": dropping this byte loses nothing.
        with contextlib.suppress(BlockingIOError):
            self._changed_w.send(b"x")

    def _next_due(self) -> float | None:
        return min((w.due for w in self._watches.values() if not w.poked), default=None)

    def _poke_due(self, now: float) -> None:
        """Wake the backups whose deadline passed with no repeat (the sockets of
        their interfaces drained first)."""
        late = [w for w in self._watches.values() if not w.poked and w.due <= now]
        for ifname in {w.ifname for w in late}:
            self._read(ifname)
        for watch in late:
            if watch.due <= now:
                watch.poked = True
                watch.poke()

    def reopen(self, ifname: str) -> None:
        """The interface was deleted or created again: its capture goes, and comes
        back with the next ``expect`` on it."""
        with self._lock:
            sock = self._socks.pop(ifname, None)
            self._read_at.pop(ifname, None)
            if sock is not None:
                sock.close()
                self._wake_tap()

    def _read(self, ifname: str) -> None:
        sock = self._socks.get(ifname)
        if sock is None:
            return
        now, wall = time.monotonic(), time.time_ns()
        since = self._read_at.get(ifname, now)  # nothing read now came before that
        self._read_at[ifname] = now
        for frame, at in sock.recv_stamped(limit=4096):
            keys = self._by_sig.get((ifname, signature(frame) or b""))
            if not keys:
                continue
            arrived = min(max(now - (wall - at) / 1e9, since), now) if at else now
            for key in keys:
                watch = self._watches[key]
                watch.count += 1
                if watch.last is None or arrived > watch.last:
                    watch.last = arrived
                    watch.due = max(watch.due, arrived + watch.mdi)

    def _forget(self, key: Hashable) -> None:
        watch = self._watches.pop(key, None)
        if watch is not None:
            keys = self._by_sig.get((watch.ifname, watch.sig))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_sig[(watch.ifname, watch.sig)]

    def stop(self) -> None:
        self._stopping = True
        self._wake_tap()
        if self.is_alive():
            self.join(timeout=2)
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        self._changed_r.close()
        self._changed_w.close()
