"""Where the daemon's log goes: stderr in the foreground, else syslog (the original's tag).

In the foreground under systemd, stderr is a stream to the journal
(``JOURNAL_STREAM`` names it): each line then starts with its syslog priority
in the sd-daemon form (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>``
debug; sd-daemon(3)), so that ``journalctl -p warning -u freevrrpd`` finds
refused reloads and conflicts, and it carries no time of its own (the journal
stamps every line).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

SYSLOG_SOCKET = "/dev/log"
# logging levels -> syslog priorities (RFC 5424 6.2.1), as sd-daemon(3) prefixes.
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{PRIORITIES.get(record.levelno, 6)}>"
        # A multi-line record (a traceback) keeps its priority on every line.
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def to_journal(stream_fd: int = 2) -> bool:
    """Whether ``stream_fd`` is the journal stream systemd connected (JOURNAL_STREAM
    holds its device and inode, systemd.exec(5))."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream_fd)
    except OSError:
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


def syslog_available(path: str = SYSLOG_SOCKET) -> bool:
    """A syslog daemon listens at ``path`` (a detached daemon logs there)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def setup_logging(foreground: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JournalFormatter() if to_journal() else
                             logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        try:
            syslog = logging.handlers.SysLogHandler(
                address=SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
            syslog.ident = "freevrrpd: "  # the original's syslog tag
            # Python >= 3.11 ignores a failed connect (no syslog daemon) and
            # then prints a traceback for every record: use stderr instead.
            sock = getattr(syslog, "socket", None)
            if sock is None or sock.fileno() < 0:
                syslog.close()
                raise OSError("no syslog socket at /dev/log")
            handler = syslog
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)  # "Using selector: ..." at -d
