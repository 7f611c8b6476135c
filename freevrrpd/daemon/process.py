"""Becoming a service: detaching, telling systemd, enough open files."""

from __future__ import annotations

import logging
import os
import resource
import socket

log = logging.getLogger("freevrrpd")


# LSB exit codes (init-script actions): 2 invalid argument (a bad configuration),
# 4 user had insufficient privilege.
EXIT_CONFIG = 2
EXIT_PRIVILEGE = 4
CAP_NET_ADMIN, CAP_NET_RAW = 12, 13  # linux/capability.h


def missing_privileges() -> str | None:
    """What the daemon lacks to run, in words, or None: it opens packet sockets
    (CAP_NET_RAW) and changes addresses, links and sysctls (CAP_NET_ADMIN)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return None  # cannot tell: let the first operation say
    lacking = [name for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN),
                                      ("CAP_NET_RAW", CAP_NET_RAW)) if not caps >> bit & 1]
    if not lacking:
        return None
    return (f"cannot run without {' and '.join(lacking)}: freevrrpd opens packet sockets "
            "and changes addresses and interfaces; run it as root, or give it the "
            "capabilities CAP_NET_ADMIN and CAP_NET_RAW (the systemd unit does)")


def daemonize(keep: list[int]) -> None:
    """Detach (fork, setsid, fork): the parent returns to the shell at once, the
    grandchild runs on with ``keep`` open and everything else closed."""
    # Close the log handlers properly first (the syslog socket): their
    # descriptors are closed below, and a finalizer would later close whatever
    # new socket got the same number.
    for handler in logging.getLogger().handlers:
        handler.close()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    start = 3
    for fd in sorted(keep):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, min(top, 65536))


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
