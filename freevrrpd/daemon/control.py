"""The control socket: a UNIX stream socket (mode 0600) that freevrrpctl talks to.

One request per connection: the client writes one line (a command word and
its arguments: ``status``, ``reload``, ``demote 1/eth0 by 50``...), the daemon
answers with one JSON document and closes.  ``events [SEQ]`` is the exception:
the connection then stays open and carries the event stream (``vrid.events``)
as JSON lines, from the events after SEQ that are still kept, until the
client leaves.  Every request knows who sent it (the socket's peer uid,
SO_PEERCRED), for the log.  Served by ``BoundedServer``: idle or dripping
clients cannot hold up the others.  The socket of another running daemon is
never taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from freevrrpd.daemon.server import BoundedServer
from freevrrpd.vrid.events import EventBus

log = logging.getLogger("freevrrpd")


@dataclass(frozen=True)
class Request:
    args: list[str]  # the words after the command, as written
    uid: int  # who sent it (-1 if unknown)


Handler = Callable[[Request], Mapping[str, object]]
MAX_FOLLOWERS = 16  # event streams served at once
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
    def __init__(self, path: str, handlers: dict[str, Handler],
                 events: EventBus | None = None) -> None:
        self.path = path
        self.handlers = handlers
        self.events = events
        self._followers: set[threading.Thread] = set()
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

    def _answer(self, request: bytes, conn: socket.socket) -> bytes | None:
        words = request.decode(errors="replace").split()
        command = words[0].lower() if words else ""
        req = Request(words[1:], peer_uid(conn))
        if command == "events" and self.events is not None:
            return self._follow(conn, req)
        handler = self.handlers.get(command)
        reply: Mapping[str, object]
        if handler is None:
            known = sorted([*self.handlers, *(["events"] if self.events else [])])
            reply = {"ok": False, "error": f"unknown command {command!r}; "
                                           f"known: {', '.join(known)}"}
        else:
            try:
                reply = handler(req)
            except Exception as exc:  # the client always gets an answer
                log.exception("control socket: %s failed", command)
                reply = {"ok": False, "error": f"{command} failed: {exc}"}
        return json.dumps(reply, indent=1).encode() + b"\n"

    def _follow(self, conn: socket.socket, req: Request) -> bytes | None:
        """Start streaming events to ``conn`` on a thread of its own."""
        self._followers = {t for t in self._followers if t.is_alive()}
        if len(self._followers) >= MAX_FOLLOWERS:
            return json.dumps({"ok": False, "error": f"{MAX_FOLLOWERS} event streams are "
                               "already served"}).encode() + b"\n"
        since = int(req.args[0]) if req.args and req.args[0].isdigit() else None
        thread = threading.Thread(target=self._stream, args=(conn, since), daemon=True,
                                  name="events")
        self._followers.add(thread)
        thread.start()
        return None

    def _stream(self, conn: socket.socket, since: int | None) -> None:
        assert self.events is not None
        sub = self.events.subscribe(since)
        poller = select.poll()
        poller.register(conn, select.POLLIN | select.POLLHUP)
        try:
            conn.setblocking(True)
            conn.settimeout(10.0)  # a client that stops reading is cut off
            conn.sendall(json.dumps({"ok": True, "seq": self.events.seq}).encode() + b"\n")
            while True:
                events = sub.get(1.0)
                if events:
                    conn.sendall(b"".join(json.dumps(e).encode() + b"\n" for e in events))
                if sub.closed and not sub.queue:
                    return
                if poller.poll(0):  # the client hung up (or wrote: it may not)
                    return
        except OSError:
            return
        finally:
            sub.close()
            conn.close()

    def close(self) -> None:
        self._server.close()
        if self.events is not None:
            self.events.close()
        for thread in list(self._followers):
            thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a UNIX socket (SO_PEERCRED)."""
    try:
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except (OSError, AttributeError):
        return -1
    return int(uid)


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
