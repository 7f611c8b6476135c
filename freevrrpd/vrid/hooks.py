"""Transition scripts (masterscript, backupscript, faultscript, stopscript).

The original freevrrpd ran these with system() from the VRID's own thread, so a
script that took longer than about three seconds stopped the adverts and let a
peer take over. Here every VRID owns a HookRunner whose worker thread runs the
scripts one at a time, in the order they were submitted, while the VRID's
thread keeps its RFC 5798 section 6.4.3 advert schedule.

A script runs through ``/bin/sh -c`` (as system() did), in its own process
group, with stdin from /dev/null and stdout/stderr captured into an unlinked
temporary file (not a pipe: a script may start a background service that keeps
the descriptor open, and a pipe would then make us wait for that service or
kill it with SIGPIPE later). A script whose shell outlives the timeout has its
whole process group killed: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from freevrrpd.core.actions import State
from freevrrpd.core.settings import RouterSettings
from freevrrpd.vrid.osthread import name_os_thread

__all__ = ["KILL_GRACE", "OUTPUT_LINES", "HookResult", "HookRunner", "hook_env",
           "transition_scripts"]

# Seconds between SIGTERM and SIGKILL for a script that outlived its timeout.
KILL_GRACE = 1.0
# How many lines of a script's output are copied into the log.
OUTPUT_LINES = 10
# How many bytes of a script's output are read back at most.
_OUTPUT_BYTES = 8192


@dataclass(frozen=True)
class HookResult:
    """How one script run ended."""

    kind: str
    command: str
    # The shell's exit status; negative when it died from a signal (-N); None
    # when it could not be started or was abandoned at shutdown.
    returncode: int | None
    duration: float
    timed_out: bool
    error: str | None
    # The first lines the script wrote to stdout/stderr (for logs and tests).
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None

    @property
    def outcome(self) -> str:
        """In words, for logs and events: ``exited 0``, ``exited 1``, or the error."""
        return "exited 0" if self.ok else self.error or f"exited {self.returncode}"


# keepalived's words for the states, as its generic notify script gets them.
KEEPALIVED_STATES = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT",
                     State.STOPPED: "STOP"}


def transition_scripts(s: RouterSettings, new: State, old: State,
                       priority: int) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, command, environment) of each script of a transition, in the order they
    run: the state's own script, then the generic ``notify`` (keepalived's order)."""
    env = hook_env(s.vrid, s.interface, s.family, new.value, old.value, priority,
                   [a.interface.with_prefixlen for a in s.addresses])
    jobs = []
    command = {State.MASTER: s.masterscript, State.BACKUP: s.backupscript,
               State.FAULT: s.faultscript, State.STOPPED: s.stopscript}.get(new)
    if command:
        jobs.append((new.name.lower(), command, env))
    if s.notify and new in KEEPALIVED_STATES:
        args = f"INSTANCE {shlex.quote(s.instance)} {KEEPALIVED_STATES[new]} {priority}"
        jobs.append(("notify", f"{s.notify} {args}", env))
    return jobs


def hook_env(
    vrid: int,
    interface: str,
    family: int,
    new_state: str,
    old_state: str,
    priority: int,
    addresses: Sequence[str],
) -> dict[str, str]:
    """The variables that tell a script what happened.

    ``family`` is 4 or 6; ``addresses`` are the virtual addresses as ``ip/prefix``.
    """
    if family not in (4, 6):
        raise ValueError(f"unknown address family {family!r}")
    fam = str(family)
    return {
        "FREEVRRPD_VRID": str(vrid),
        "FREEVRRPD_INTERFACE": interface,
        "FREEVRRPD_FAMILY": fam,
        "FREEVRRPD_STATE": new_state,
        "FREEVRRPD_PREVIOUS_STATE": old_state,
        "FREEVRRPD_PRIORITY": str(priority),
        "FREEVRRPD_ADDRESSES": " ".join(addresses),
    }


@dataclass(frozen=True)
class _Job:
    kind: str
    command: str
    env: dict[str, str]


class HookRunner:
    """Runs one VRID's transition scripts on a worker thread, in order.

    ``name`` prefixes every log line (e.g. ``"VRID 1"``). ``timeout`` is the
    longest a script may run, in seconds; ``math.inf`` or a value <= 0 means no
    limit. ``on_result`` is called on the worker thread after each script.
    The worker thread starts with the first submission, so VRIDs without
    scripts cost no thread.
    """

    def __init__(
        self,
        name: str,
        timeout: float,
        logger: logging.Logger,
        on_result: Callable[[HookResult], None] | None = None,
        quiet: bool = False,
    ) -> None:
        """``quiet``: every run logged at debug level only (health checks, run every
        few seconds: their owner logs what changed)."""
        self.name = name
        self._info = logging.DEBUG if quiet else logging.INFO
        self._warn = logging.DEBUG if quiet else logging.WARNING
        self.timeout: float | None = None if timeout <= 0 or math.isinf(timeout) else timeout
        self._log = logger
        self._on_result = on_result
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._abort = False
        self._pending = 0  # submitted and not yet finished
        self._proc: subprocess.Popen[bytes] | None = None
        self._last: HookResult | None = None

    # -- the VRID's side -------------------------------------------------------

    def submit(self, kind: str, command: str, env: Mapping[str, str]) -> None:
        """Queue ``command`` and return at once; never raises for a bad script."""
        if not command.strip():
            return
        job = _Job(kind, command, {**os.environ, **env})
        with self._lock:
            if self._closed:
                self._log.warning("%s: %sscript not run: shutting down", self.name, kind)
                return
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"hooks {self.name}", daemon=True
                )
                self._thread.start()
            # Queued under the lock, so a concurrent close() cannot put its end
            # marker in front of it.
            self._queue.put(job)

    def last(self) -> HookResult | None:
        """The most recent finished script, if any."""
        with self._lock:
            return self._last

    def pending(self) -> int:
        """Scripts submitted and not finished yet (running or queued)."""
        with self._lock:
            return self._pending

    def close(self, wait: float | None = None) -> None:
        """Stop taking scripts; let the queued ones (e.g. stopscript) finish.

        Waits at most ``wait`` seconds; by default long enough for every
        pending script to use its whole timeout. Past that, the running script's
        process group is killed and the scripts still queued are dropped, with a
        warning each.
        """
        with self._lock:
            if self._closed and self._thread is None:
                return
            self._closed = True
            thread = self._thread
            if wait is None:
                per_hook = (self.timeout if self.timeout is not None else 30.0) + KILL_GRACE
                wait = self._pending * (per_hook + 1.0) + 1.0
        if thread is None:
            return
        self._queue.put(None)
        thread.join(max(wait, 0.0))
        if thread.is_alive():
            with self._lock:
                self._abort = True
                proc = self._proc
            if proc is not None:
                _kill_group(proc, signal.SIGKILL)
            thread.join(KILL_GRACE + 1.0)
        with self._lock:
            self._thread = None

    # -- the worker thread -----------------------------------------------------

    def _work(self) -> None:
        name_os_thread()
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                abort = self._abort
            if abort:
                self._log.warning(
                    "%s: %sscript dropped: shutdown time ran out", self.name, job.kind
                )
                result = HookResult(job.kind, job.command, None, 0.0, False, "dropped at shutdown")
            else:
                try:
                    result = self._run(job)
                except Exception as exc:  # a worker that dies would silence every later hook
                    self._log.exception("%s: %sscript failed", self.name, job.kind)
                    result = HookResult(job.kind, job.command, None, 0.0, False, repr(exc))
            with self._lock:
                self._last = result
                self._pending -= 1
            if self._on_result is not None:
                try:
                    self._on_result(result)
                except Exception:
                    self._log.exception("%s: hook result callback failed", self.name)

    def _run(self, job: _Job) -> HookResult:
        label = f"{self.name}: {job.kind}script"
        self._log.debug("%s: running %r", label, job.command)
        start = time.monotonic()
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", job.command],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=job.env,
                    close_fds=True,
                    start_new_session=True,  # own process group: a timeout kills it all
                )
            except (OSError, ValueError) as exc:
                duration = time.monotonic() - start
                self._log.log(self._warn, "%s could not be started: %s", label, exc)
                return HookResult(job.kind, job.command, None, duration, False, str(exc))
            with self._lock:
                self._proc = proc
            timed_out = False
            try:
                proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._log.log(self._warn,
                    "%s still running after %.1f s: killing it", label, self.timeout or 0.0
                )
                _kill_group(proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(KILL_GRACE)
                # Whatever of the group ignored SIGTERM (or outlived the shell) goes now.
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
            finally:
                with self._lock:
                    self._proc = None
            duration = time.monotonic() - start
            out.seek(0)
            output = out.read(_OUTPUT_BYTES).decode("utf-8", "replace")
        rc = proc.returncode
        lines = output.splitlines()[:OUTPUT_LINES]
        with self._lock:
            aborted = self._abort
        error: str | None = None
        if timed_out:
            error = f"timed out after {self.timeout:.1f} s"
            self._log.log(self._warn, "%s killed after %.2f s (%s)", label, duration, _status(rc))
        elif aborted:
            error = "killed at shutdown"
            self._log.log(self._warn, "%s killed at shutdown after %.2f s", label, duration)
        elif rc == 0:
            self._log.log(self._info, "%s exited 0 after %.2f s", label, duration)
        else:
            self._log.log(self._warn, "%s %s after %.2f s", label, _status(rc), duration)
        level = logging.DEBUG if rc == 0 and error is None else self._warn
        for line in lines:
            self._log.log(level, "%s: | %s", label, line)
        return HookResult(job.kind, job.command, rc, duration, timed_out, error, "\n".join(lines))


def _status(rc: int | None) -> str:
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited {rc}"


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id is the shell's pid. The kernel keeps that number reserved
    # while the shell is unreaped or any member of its group lives; once all are
    # gone it could only come back after pid numbers wrap around, far later than
    # the moment we signal, and then killpg finds no group (ESRCH).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
