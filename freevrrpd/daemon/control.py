"""The control socket: a UNIX stream socket (mode 0600) that freevrrpctl talks to.

One request per connection: the client writes one line (``status`` or
``reload``), the daemon answers with one JSON document and closes.  Served by
``BoundedServer``: idle or dripping clients cannot hold up the others.  The
socket of another running daemon is never taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from freevrrpd.daemon.server import BoundedServer

log = logging.getLogger("freevrrpd")

Handler = Callable[[], Mapping[str, object]]
MAX_REQUEST = 1024  # bytes: a command word and a newline
DEADLINE = 2.0  # seconds a client has to send its line


class ControlError(Exception):
    """The control socket cannot be set up (in use, or not creatable)."""


def _in_use(path: str) -> bool:
    """Whether a live daemon answers on ``path`` (a stale socket file refuses)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class ControlServer:
    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        if _in_use(path):
            raise ControlError(f"{path} is the control socket of a running freevrrpd; give "
                               "this instance its own with -s (and its own pid file with -p)")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: nobody answers on it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: the socket can reload the daemon
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot create the control socket {path}: "
                               f"{exc.strerror or exc}") from None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(64)
        self._server = BoundedServer("control", sock, lambda buf: b"\n" in buf,
                                     self._answer, deadline=DEADLINE, max_request=MAX_REQUEST)

    def start(self) -> None:
        self._server.start()

    def _answer(self, request: bytes) -> bytes:
        command = request.decode(errors="replace").strip().lower()
        handler = self.handlers.get(command)
        reply: Mapping[str, object]
        if handler is None:
            reply = {"ok": False, "error": f"unknown command {command!r}; "
                                           f"known: {', '.join(sorted(self.handlers))}"}
        else:
            try:
                reply = handler()
            except Exception as exc:  # the client always gets an answer
                log.exception("control socket: %s failed", command)
                reply = {"ok": False, "error": f"{command} failed: {exc}"}
        return json.dumps(reply, indent=1).encode() + b"\n"

    def close(self) -> None:
        self._server.close()
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
