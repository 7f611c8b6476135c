"""A locked pid file: a second instance on the same file refuses to start."""

from __future__ import annotations

import contextlib
import fcntl
import os


class PidFileError(Exception):
    pass


class PidFile:
    """Holds an exclusive lock on ``path`` for the life of the process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise PidFileError(f"cannot create the pid file {self.path}: "
                               f"{exc.strerror or exc} (run as root, or give a path this user "
                               "may write with -p)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise PidFileError(
                f"{self.path} is locked: freevrrpd is already running"
                + (f" as pid {other}" if other else "")
                + " (use -p to run another instance with its own pid file)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise PidFileError(f"cannot lock {self.path}: {exc.strerror}") from None
        self._fd = fd
        self.write_pid()

    @property
    def fd(self) -> int | None:
        return self._fd

    def write_pid(self) -> None:
        """Record our pid (again after daemonizing: the lock passes to the child)."""
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
