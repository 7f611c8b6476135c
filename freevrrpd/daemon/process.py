"""Becoming a service: detaching, telling systemd, enough open files."""

from __future__ import annotations

import logging
import os
import resource
import socket

log = logging.getLogger("freevrrpd")


def daemonize(keep: list[int]) -> None:
    import daemon  # python-daemon

    # python-daemon closes every descriptor behind the Python objects' backs.
    # Close the syslog socket properly first: left to its finalizer it would
    # later close whatever new socket (e.g. netlink) got the same number.
    for handler in logging.getLogger().handlers:
        handler.close()
    # Our own signal handlers are installed afterwards; keep python-daemon's off.
    ctx = daemon.DaemonContext(working_directory="/", umask=0o022, signal_map={},
                               detach_process=True, files_preserve=keep)
    ctx.open()


def notify(state: str) -> None:
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (Type=notify)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("cannot notify systemd: %s", exc)


def raise_open_file_limit() -> None:
    """Each virtual router holds about five descriptors (capture socket, wake-up
    pipe, announcement and probe sockets): 255 of them pass the usual soft
    limit of 1024, so take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d: %s", soft, exc)
