"""How other threads reach a virtual router's thread: a queue and a wake-up pipe.

Commands (``vrid.commands``) are queued, and one byte in a non-blocking pipe
wakes the thread from its wait on its sockets; the thread drains both between
its own events, so it stays the only thread that touches its router.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from freevrrpd.vrid.commands import Call, Command

T = TypeVar("T")


class Mailbox:
    def __init__(self) -> None:
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._pipe_lock = threading.Lock()
        self._pipe_closed = False

    def post(self, command: Command) -> None:
        self.commands.put(command)
        with self._pipe_lock:
            if self._pipe_closed:  # a late post from the link monitor
                return
            # A full pipe already means "wake up": dropping this byte loses nothing.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _close_pipe(self) -> None:
        # Under the lock: a descriptor number closed here may be reused at once,
        # and a late post() must never write into someone else's socket.
        with self._pipe_lock:
            self._pipe_closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)

    def call(self, fn: Callable[[float], T], timeout: float = 2.0) -> T | None:
        """Run ``fn(now)`` on the thread and return its result (None on timeout)."""
        done = threading.Event()
        box: list[T] = []

        def run(now: float) -> None:
            try:
                box.append(fn(now))
            finally:
                done.set()

        self.post(Call(run))
        if not done.wait(timeout) or not box:
            return None
        return box[0]

    def next_command(self) -> Command | None:
        """On the thread: the next command queued, None when there is none."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        try:
            return self.commands.get_nowait()
        except queue.Empty:
            return None
