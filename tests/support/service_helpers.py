"""Helpers for the service tests: run init scripts in a lab host, read the syslog."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lab import Host

REPO = Path(__file__).resolve().parents[2]
DAEMON = REPO / ".venv" / "bin" / "freevrrpd"
INIT_SCRIPT = REPO / "scripts" / "init.d" / "freevrrpd"
RC_SCRIPT = REPO / "scripts" / "rc.d" / "freevrrpd"
UNIT = REPO / "scripts" / "freevrrpd.service"
HOOKS = REPO / "scripts" / "hooks"
INSTALLER = REPO / "scripts" / "install-service.sh"
SANDBOX = Path(__file__).with_name("sandbox_exec.py")

# Run "$@" in a private mount namespace whose /dev is a small tmpfs with the
# usual character devices and $1 (our listener's socket) as /dev/log, so that a
# daemonized freevrrpd logs to the test.  The host's /dev is never touched.
DEV_LOG_SETUP = r"""
set -e
sock=$1; shift
mount -t tmpfs -o mode=755,size=64k fvdev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
ln -s /proc/self/fd /dev/fd
ln -s fd/0 /dev/stdin
ln -s fd/1 /dev/stdout
ln -s fd/2 /dev/stderr
touch /dev/log
mount --bind "$sock" /dev/log
exec "$@"
"""


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Exists and is not a zombie (an init that does not reap orphans keeps them)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return re.search(r"^State:\s*[ZX]", status, re.M) is None


def catches(pid: int, sig: signal.Signals) -> bool:
    """True when ``pid`` has a handler installed for ``sig`` (SigCgt in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)
    assert match is not None, status
    return bool(int(match.group(1), 16) >> (sig - 1) & 1)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def read_pid(pidfile: Path) -> int:
    return int(pidfile.read_text().strip())


class DatagramListener:
    """An AF_UNIX datagram socket collecting what a daemon sends: a stand-in for
    /dev/log (syslog) or for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._messages: list[str] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="syslog", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._messages.append(data.decode(errors="replace").rstrip("\x00\n"))

    def messages(self) -> list[str]:
        with self._lock:
            return list(self._messages)

    def mark(self) -> int:
        return len(self.messages())

    def wait(self, regex: str, since: int = 0, timeout: float = 15.0) -> str:
        """The first message from index ``since`` on that matches ``regex``."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages()[since:]:
                if pattern.search(message):
                    return message
            if time.monotonic() > deadline:
                tail = "\n".join(self.messages()[-30:])
                raise AssertionError(f"no syslog message {regex!r} within {timeout} s:\n{tail}")
            time.sleep(0.05)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2.0)
        self._sock.close()


class Script:
    """An init script run as ``sh SCRIPT COMMAND`` inside a lab host.

    With ``syslog``, /dev/log of the script (and so of the daemon it starts) is
    that listener's socket.
    """

    def __init__(self, host: Host, path: Path, env: dict[str, str],
                 syslog: DatagramListener | None = None) -> None:
        self.host = host
        self.path = path
        self.env = env
        self.syslog = syslog

    def __call__(self, command: str) -> subprocess.CompletedProcess[str]:
        assigns = [f"{k}={v}" for k, v in self.env.items()]
        argv = ["env", *assigns, "sh", str(self.path), command]
        if self.syslog is not None:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    DEV_LOG_SETUP, "dev-log", str(self.syslog.path), *argv]
        return self.host.run(argv, check=False, timeout=120)
