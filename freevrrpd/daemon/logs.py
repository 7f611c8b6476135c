"""Where the daemon's log goes: stderr in the foreground, else syslog (the original's tag)."""

from __future__ import annotations

import logging
import logging.handlers
import sys


def setup_logging(foreground: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handler: logging.Handler
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        try:
            syslog = logging.handlers.SysLogHandler(
                address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
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
