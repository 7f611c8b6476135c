"""The repeats tap: one capture per interface counts the unchanged adverts of the
masters that backups wait for, so that a backup's thread does not wake for each.

RFC 5798 6.4.2: a backup that receives an advert of its master (priority at
least its own, or no preemption) restarts its Master_Down_Timer; an advert
identical to the last one it accepted does nothing else.  Such a backup says
so (``ExpectRepeats``); its thread's kernel filter then drops those repeats,
and this tap, which reads every advert of the interface in batches on one
thread, records when they arrived.  The backup's thread reads the record at
its Master_Down deadline (``take``: the tap's socket is drained first, so
nothing still queued is missed) and restarts its timer from the last arrival,
exactly as if it had received each.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

from freevrrpd.net import bpf
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket
from freevrrpd.net.frames import signature

RCVBUF = 4 << 20  # bytes: a burst of a thousand adverts


@dataclass
class _Watch:
    ifname: str
    sig: bytes
    last: float | None = None  # monotonic time of the last repeat seen
    count: int = 0  # repeats since the last take


class RepeatsTap(threading.Thread):
    def __init__(self, log: logging.Logger) -> None:
        super().__init__(name="repeats", daemon=True)
        self.log = log
        self._lock = threading.Lock()
        self._watches: dict[Hashable, _Watch] = {}
        self._by_sig: dict[tuple[str, bytes], set[Hashable]] = {}
        self._socks: dict[str, PacketSocket] = {}
        self._changed_r, self._changed_w = socket.socketpair()
        self._changed_r.setblocking(False)
        self._stopping = False

    # ---- the routers' threads -----------------------------------------------------------
    def expect(self, key: Hashable, ifname: str, sig: bytes) -> None:
        """Count the repeats of ``sig`` on ``ifname`` for ``key`` (before its filter
        starts dropping them)."""
        with self._lock:
            self._forget(key)
            if ifname not in self._socks:
                sock = PacketSocket(ifname, ETH_P_ALL, bpf.repeats_filter())
                sock.ignore_outgoing()
                sock.set_rcvbuf(RCVBUF)
                self._socks[ifname] = sock
                self._changed_w.send(b"x")
            self._watches[key] = _Watch(ifname, sig)
            self._by_sig.setdefault((ifname, sig), set()).add(key)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._forget(key)

    def take(self, key: Hashable) -> tuple[float, int] | None:
        """(last arrival, how many) of the repeats since the last take; None if none."""
        with self._lock:
            watch = self._watches.get(key)
            if watch is None:
                return None
            self._read(watch.ifname, time.monotonic())  # what is still queued counts too
            if watch.last is None or watch.count == 0:
                return None
            found = (watch.last, watch.count)
            watch.count = 0
            return found

    # ---- the thread ---------------------------------------------------------------------
    def run(self) -> None:
        poller = select.poll()
        poller.register(self._changed_r.fileno(), select.POLLIN)
        registered: dict[int, str] = {}
        while not self._stopping:
            ready = [fd for fd, _e in poller.poll()]
            now = time.monotonic()
            with self._lock:
                if self._changed_r.fileno() in ready:
                    # The set of sockets changed: register them anew.
                    with contextlib.suppress(BlockingIOError):
                        self._changed_r.recv(4096)
                    for fd in registered:
                        poller.unregister(fd)
                    registered = {sock.fileno(): name for name, sock in self._socks.items()}
                    for fd in registered:
                        poller.register(fd, select.POLLIN)
                for fd in ready:
                    if fd in registered:
                        self._read(registered[fd], now)

    def reopen(self, ifname: str) -> None:
        """The interface was deleted or created again: its capture goes, and comes
        back with the next ``expect`` on it."""
        with self._lock:
            sock = self._socks.pop(ifname, None)
            if sock is not None:
                sock.close()
                self._changed_w.send(b"x")

    def _read(self, ifname: str, now: float) -> None:
        sock = self._socks.get(ifname)
        if sock is None:
            return
        for frame in sock.recv_all(limit=4096):
            sig = signature(frame)
            if sig is None:
                continue
            for key in self._by_sig.get((ifname, sig), ()):
                watch = self._watches[key]
                watch.last, watch.count = now, watch.count + 1

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
        self._changed_w.send(b"x")
        if self.is_alive():
            self.join(timeout=2)
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        self._changed_r.close()
        self._changed_w.close()
