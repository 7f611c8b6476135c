"""The thread that runs the health checks and reads the track files.

Every ``[CHECK]`` tracked by any virtual router is run here, once however many
routers track it, through its own ``HookRunner`` (the transition scripts'
runner: never on a router's thread, its process group killed at the
timeout, which counts as a failure).  A run still going when the next is due
is not doubled: that slot is skipped, as keepalived does.  Rise and fall are
``core.tracking.CheckState``'s; a check whose status changes is logged once and
sent as a ``TrackChange`` to the threads of the routers that track it.  Track
files are read every ``FILE_POLL`` seconds, and a changed number sent the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from freevrrpd.core.settings import RouterKey, RouterSettings
from freevrrpd.core.tracking import CheckScript, CheckState, TrackChange, TrackKey
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.hooks import HookResult, HookRunner
from freevrrpd.vrid.osthread import name_os_thread

FILE_POLL = 1.0  # seconds between two reads of the track files


class CheckStatus(TypedDict):
    script: str
    interval: float
    status: str  # "healthy" or "failing"
    runs: int
    failures: int
    last_exit: int | None
    last_duration: float | None
    last_timed_out: bool
    last_error: str | None


def read_number(path: str) -> int:
    """A track file's number: its first word; 0 when missing or not a number (keepalived)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            words = f.read(256).split()
        return int(words[0]) if words else 0
    except (OSError, ValueError):
        return 0


@dataclass
class _Check:
    check: CheckScript
    state: CheckState
    runner: HookRunner
    due: float
    runs: int = 0
    failures: int = 0
    last: HookResult | None = None


class TrackMonitor(threading.Thread):
    def __init__(self, routers: Sequence[RouterSettings],
                 deliver: Callable[[RouterKey, TrackChange], None], log: logging.Logger,
                 previous: TrackMonitor | None = None, events: EventBus | None = None) -> None:
        super().__init__(name="checks", daemon=True)
        self.events = events
        self.routers = tuple(routers)
        self.deliver = deliver
        self.log = log
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = False
        now = time.monotonic()
        self.checks: dict[str, _Check] = {}
        for s in routers:
            for t in s.tracks:
                if t.check is None or t.name in self.checks:
                    continue
                old = previous.checks.get(t.name) if previous is not None else None
                # A check whose definition did not change keeps its status on reload.
                ok = old.state.ok if old is not None and old.check == t.check else True
                runner = HookRunner(f"check {t.name}", t.check.timeout, log,
                                    self._done_for(t.name), quiet=True)
                self.checks[t.name] = _Check(t.check, CheckState(t.check, ok), runner, now)
        self.files = {t.name: read_number(t.name) for s in routers for t in s.tracks
                      if t.kind == "file"}

    def values(self, s: RouterSettings) -> dict[TrackKey, int]:
        """What ``s`` tracks among the checks and files, as known now."""
        with self._lock:
            out: dict[TrackKey, int] = {}
            for t in s.tracks:
                if t.kind == "script" and t.name in self.checks:
                    out[t.key] = int(self.checks[t.name].state.ok)
                elif t.kind == "file":
                    out[t.key] = self.files.get(t.name, 0)
            return out

    def resend(self) -> None:
        """Every value to every router (after a reload: routers ignore the unchanged)."""
        for s in self.routers:
            for key, value in self.values(s).items():
                self.deliver(s.key, TrackChange(s.key, key, value))

    # ---- the thread -------------------------------------------------------------------
    def run(self) -> None:
        name_os_thread()
        if not self.checks and not self.files:
            return  # nothing tracked: no thread left waiting
        next_poll = time.monotonic()
        while True:
            now = time.monotonic()
            with self._lock:
                if self._halt:
                    return
                for c in self.checks.values():
                    if now >= c.due:
                        if c.runner.pending() == 0:  # never two runs of one check
                            c.runner.submit("", c.check.script, {})
                        while c.due <= now:
                            c.due += c.check.interval
                due = min((c.due for c in self.checks.values()), default=None)
            if self.files and now >= next_poll:
                self._poll_files()
                next_poll = now + FILE_POLL
            if self.files:
                due = next_poll if due is None else min(due, next_poll)
            self._wake.wait(None if due is None else max(0.0, due - time.monotonic()))
            self._wake.clear()

    def _done_for(self, name: str) -> Callable[[HookResult], None]:
        return lambda result: self._done(name, result)

    def _done(self, name: str, result: HookResult) -> None:
        """On the check's runner thread: one run ended."""
        with self._lock:
            c = self.checks.get(name)
            if c is None or self._halt:
                return
            c.runs += 1
            c.last = result
            c.failures += int(not result.ok)
            changed = c.state.result(result.ok)
            ok = c.state.ok
        if not changed:
            return
        count = f"rise {c.check.rise}" if ok else f"fall {c.check.fall}"
        level = logging.INFO if ok else logging.WARNING
        text = (f"check {name} now {'healthy' if ok else 'failing'} ({result.outcome} after "
                f"{result.duration:.2f} s; {count} reached)")
        self.log.log(level, "%s", text)
        if self.events is not None:
            self.events.publish("check", None, text, check=name, healthy=ok,
                                returncode=result.returncode)
        self._send(("script", name), int(ok))

    def _poll_files(self) -> None:
        for path, old in list(self.files.items()):
            value = read_number(path)
            if value == old:
                continue
            with self._lock:
                self.files[path] = value
            text = f"track file {path} now holds {value} (was {old})"
            self.log.info("%s", text)
            if self.events is not None:
                self.events.publish("check", None, text, file=path, value=value)
            self._send(("file", path), value)

    def _send(self, key: TrackKey, value: int) -> None:
        for s in self.routers:
            if any(t.key == key for t in s.tracks):
                self.deliver(s.key, TrackChange(s.key, key, value))

    # ---- status and end ---------------------------------------------------------------
    def status(self) -> dict[str, CheckStatus]:
        with self._lock:
            return {name: {"script": c.check.script, "interval": c.check.interval,
                           "status": "healthy" if c.state.ok else "failing",
                           "runs": c.runs, "failures": c.failures,
                           "last_exit": c.last.returncode if c.last else None,
                           "last_duration": round(c.last.duration, 3) if c.last else None,
                           "last_timed_out": c.last.timed_out if c.last else False,
                           "last_error": c.last.error if c.last else None}
                    for name, c in sorted(self.checks.items())}

    def stop(self) -> None:
        with self._lock:
            self._halt = True
        self._wake.set()
        if self.is_alive():
            self.join(timeout=2)
        for c in self.checks.values():
            c.runner.close(wait=0.5)
