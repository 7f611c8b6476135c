"""The daemon process: pid file, logging, signals, one worker thread per VRID."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import resource
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from freevrrpd.control import ControlServer
from freevrrpd.core.settings import RouterSettings
from freevrrpd.net.netlink import Netlink
from freevrrpd.pidfile import PidFile, PidFileError
from freevrrpd.supervisor import Supervisor, check_interfaces

log = logging.getLogger("freevrrpd")



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


def run(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> int:
    setup_logging(opts.foreground, opts.debug)
    raise_open_file_limit()
    netlink = Netlink()
    problems = check_interfaces(routers, netlink)
    netlink.close()
    if problems:
        for p in problems:
            print(f"freevrrpd: {p}", file=sys.stderr)
        return 2
    # Lock the pid file before daemonizing, so that a second instance fails in
    # the foreground with a message and a non-zero exit; the child inherits the lock.
    pidfile = PidFile(opts.pidfile)
    try:
        pidfile.acquire()
    except PidFileError as exc:
        print(f"freevrrpd: {exc}", file=sys.stderr)
        return 1
    if not opts.foreground:
        assert pidfile.fd is not None
        daemonize([pidfile.fd])
        setup_logging(False, opts.debug)
        pidfile.write_pid()
    netlink = Netlink()
    sup = Supervisor(routers, netlink, os.path.abspath(opts.config))
    stop = threading.Event()
    reload_wanted = threading.Event()
    wake = threading.Event()  # set by every handler: the main loop acts at once

    def on_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: resigning and releasing addresses", signal.Signals(signum).name)
        # A second signal must not cut the resignation short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()
        wake.set()

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        sup.dump()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        # Reload on the main loop, not inside the handler.  Unlike the original,
        # SIGHUP never touches priorities.
        reload_wanted.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGHUP, on_hup)
    control: ControlServer | None = None
    try:
        sup.start()
        control = ControlServer(opts.socket, {"status": sup.status, "reload": sup.reload})
        control.start()
        if opts.metrics:
            from freevrrpd.metrics import serve

            serve(opts.metrics, sup.status)
            log.info("metrics on http://%s/metrics", opts.metrics)
        notify(f"READY=1\nSTATUS={len(sup.workers)} virtual router(s)\nMAINPID={os.getpid()}")
        while not stop.is_set():
            wake.wait(1.0)  # the timeout is only a safety net
            wake.clear()
            if reload_wanted.is_set() and not stop.is_set():
                reload_wanted.clear()
                log.info("received SIGHUP: reloading %s", sup.config_path)
                sup.reload()
                notify("READY=1")
    except Exception as exc:
        log.error("cannot run: %s", exc)
        return_code = 1
    else:
        return_code = 0
    finally:
        notify("STOPPING=1")
        if control is not None:
            control.close()
        sup.stop()
        netlink.close()
        pidfile.release()
    log.info("freevrrpd stopped (pid %d)", os.getpid())
    return return_code
