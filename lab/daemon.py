"""A freevrrpd process running in a lab host, with its log file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .netns import LabError, Namespace, kill_group


class LoggedProcess:
    """A process of the lab whose output goes to ``log_path``: read and wait on it."""

    proc: subprocess.Popen[bytes]
    log_path: str

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def log(self) -> str:
        """Everything the process wrote to stderr/stdout so far."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        """The log's current length: pass as ``since`` to wait for new lines only."""
        return len(self.log())

    def wait_log(self, regex: str, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        """Poll the log until ``regex`` matches (multiline) after offset ``since``.

        Raises LabError with the log's tail on timeout or when the process
        exits without the line having appeared.
        """
        pattern = re.compile(regex, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.running  # read before the log: no line is missed
            text = self.log()
            match = pattern.search(text, since)
            if match:
                return match
            if exited:
                raise LabError(
                    f"{self!r} exited ({self.returncode}) without logging {regex!r}:\n"
                    + _tail(text)
                )
            if time.monotonic() > deadline:
                raise LabError(f"{self!r}: no {regex!r} within {timeout} s:\n" + _tail(text))
            time.sleep(0.02)


class Daemon(LoggedProcess):
    """Started by ``Host.start_daemon``; the lab kills it at cleanup if still running."""

    def __init__(
        self,
        host: Namespace,
        proc: subprocess.Popen[bytes],
        argv: Sequence[str],
        conf_path: str,
        pid_path: str,
        log_path: str,
        socket_path: str | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.host = host
        self.proc = proc
        self.argv = list(argv)
        self.conf_path = conf_path
        self.pid_path = pid_path
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"<Daemon pid={self.pid} on {self.host.name}>"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``freevrrpctl -s SOCKET ARGS`` against this daemon (in its namespace)."""
        assert self.socket_path is not None, "daemon started without a control socket"
        argv = [sys.executable, "-m", "freevrrpd.ctl", "-s", self.socket_path, *args]
        return self.host.run(argv, check=check)

    @property
    def pid(self) -> int:
        # `ip netns exec` execs the command, so this is the daemon itself.
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        if self.running:
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Send ``sig`` and wait; returns the exit code (negative: killed by signal).

        A daemon that outlives ``timeout`` is killed (its whole group) and
        LabError is raised, since that is a bug worth a failing test.
        """
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(5.0)
            raise LabError(
                f"{self!r} still running {timeout} s after signal {sig}:\n" + _tail(self.log())
            ) from None

    def kill9(self) -> None:
        """Crash it: SIGKILL the daemon alone (its scripts, if any, live on)."""
        self.send_signal(signal.SIGKILL)
        self.proc.wait(5.0)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
