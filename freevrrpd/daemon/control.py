"""The control socket: a UNIX stream socket (mode 0600) that freevrrpctl talks to.

One request per connection: the client writes one line (``status`` or
``reload``), the daemon answers with one JSON document and closes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("freevrrpd")

Handler = Callable[[], Mapping[str, object]]


class ControlServer(threading.Thread):
    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        super().__init__(name="control", daemon=True)
        self.path = path
        self.handlers = handlers
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # our pid file lock already proved no other instance owns it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: the socket can reload the daemon
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.sock.listen(8)
        self._stop_r, self._stop_w = os.pipe()

    def run(self) -> None:
        # poll(), not select(): created after the workers' sockets, our
        # descriptors exceed FD_SETSIZE (1024) with a few hundred VRIDs.
        poller = select.poll()
        for fd in (self.sock.fileno(), self._stop_r):
            poller.register(fd, select.POLLIN)
        while True:
            ready = [fd for fd, _ in poller.poll()]
            if self._stop_r in ready:
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
            command = data.decode(errors="replace").strip().lower()
            handler = self.handlers.get(command)
            if handler is None:
                reply: Mapping[str, object] = {"ok": False,
                                         "error": f"unknown command {command!r}; "
                                                  f"known: {', '.join(sorted(self.handlers))}"}
            else:
                reply = handler()
            conn.sendall(json.dumps(reply, indent=1).encode() + b"\n")
        except Exception as exc:
            log.error("control socket: %s", exc)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self.join(timeout=3)
        self.sock.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def request(path: str, command: str, timeout: float = 10.0) -> dict[str, Any]:
    """Client side: send ``command`` and return the daemon's JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer
