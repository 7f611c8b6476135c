"""A small bounded server for the control socket and the metrics endpoint.

One thread waits (poll) on the listening socket and on every client; a client
gets ``deadline`` seconds to send one request of at most ``max_request``
bytes, and at most ``max_clients`` are served at once (more are turned away
at once).  A complete request is answered on a small pool of threads, so a
slow answer (a reload) never holds up the others.  No thread per client: a
thousand idle connections cost a thousand descriptors, not a thousand
threads fighting the routers' threads for the interpreter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from freevrrpd.vrid.osthread import name_os_thread

log = logging.getLogger("freevrrpd")


class BoundedServer(threading.Thread):
    def __init__(self, name: str, listener: socket.socket, complete: Callable[[bytes], bool],
                 handle: Callable[[bytes, socket.socket], bytes | None], deadline: float = 5.0,
                 max_request: int = 8192, max_clients: int = 64, workers: int = 2) -> None:
        super().__init__(name=name, daemon=True)
        self.listener = listener
        self.complete = complete  # does this buffer hold a whole request?
        # The answer to a request (raising: the client is dropped; None: the handler
        # keeps the connection, a stream of its own).
        self.handle = handle
        self.deadline, self.max_request, self.max_clients = deadline, max_request, max_clients
        self.listener.setblocking(False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._clients: dict[int, tuple[socket.socket, float, bytearray]] = {}
        self._stop_r, self._stop_w = os.pipe()

    def run(self) -> None:
        name_os_thread()
        poller = select.poll()
        for fd in (self.listener.fileno(), self._stop_r):
            poller.register(fd, select.POLLIN)
        while True:
            timeout = None
            if self._clients:
                first = min(t for _s, t, _b in self._clients.values())
                timeout = max(0.0, first - time.monotonic()) * 1000 + 1
            events = poller.poll(timeout)
            ready = {fd for fd, _e in events}
            if self._stop_r in ready:
                return
            if self.listener.fileno() in ready:
                self._accept(poller)
            for fd in ready & set(self._clients):
                self._read(poller, fd)
            now = time.monotonic()
            for fd, (_sock, until, _buf) in list(self._clients.items()):
                if now >= until:
                    self._drop(poller, fd)  # too slow: the others come first

    def _accept(self, poller: select.poll) -> None:
        while True:
            try:
                conn, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%s: accept failed: %s", self.name, exc)
                return
            if len(self._clients) >= self.max_clients:
                conn.close()  # full: refused at once rather than queued
                continue
            conn.setblocking(False)
            self._clients[conn.fileno()] = (conn, time.monotonic() + self.deadline, bytearray())
            poller.register(conn.fileno(), select.POLLIN)

    def _read(self, poller: select.poll, fd: int) -> None:
        conn, until, buf = self._clients[fd]
        try:
            chunk = conn.recv(self.max_request + 1 - len(buf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(poller, fd)
            return
        buf += chunk
        if self.complete(bytes(buf)) or len(buf) > self.max_request:
            poller.unregister(fd)
            del self._clients[fd]
            self._pool.submit(self._answer, conn, bytes(buf))

    def _answer(self, conn: socket.socket, request: bytes) -> None:
        try:
            reply = self.handle(request, conn)
            if reply is None:
                return  # the handler took the connection
            conn.settimeout(self.deadline)
            conn.sendall(reply)
        except Exception as exc:
            log.warning("%s: %s", self.name, exc)
        conn.close()

    def _drop(self, poller: select.poll, fd: int) -> None:
        conn, _until, _buf = self._clients.pop(fd)
        with contextlib.suppress(KeyError, ValueError):
            poller.unregister(fd)
        conn.close()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        if self.is_alive():
            self.join(timeout=3)
        for conn, _until, _buf in self._clients.values():
            conn.close()
        self._clients.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.listener.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
