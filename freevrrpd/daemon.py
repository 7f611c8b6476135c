"""The daemon process: pid file, logging, signals, one worker thread per VRID."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from freevrrpd.circuits import CircuitMonitor
from freevrrpd.core.settings import RouterSettings
from freevrrpd.net.netlink import Netlink
from freevrrpd.pidfile import PidFile, PidFileError
from freevrrpd.worker import VridWorker

log = logging.getLogger("freevrrpd")

STOP_TIMEOUT = 10.0  # seconds to wait for every VRID to resign and its stop hook


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
            handler = syslog
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def check_interfaces(routers: Sequence[RouterSettings], netlink: Netlink) -> list[str]:
    problems = []
    for s in routers:
        names = [s.interface] + [a.device for a in s.addresses if a.device]
        for name in names:
            if netlink.ifindex(name) is None:
                problems.append(f"{s.source}: {s.name}: interface {name} does not exist")
    return problems


def daemonize() -> None:
    import daemon  # python-daemon

    # Our own signal handlers are installed afterwards; keep python-daemon's off.
    ctx = daemon.DaemonContext(working_directory="/", umask=0o022, signal_map={},
                               detach_process=True)
    ctx.open()


class Daemon:
    def __init__(self, routers: Sequence[RouterSettings], netlink: Netlink) -> None:
        self.routers = routers
        self.netlink = netlink
        self.workers: list[VridWorker] = []
        self.monitor: CircuitMonitor | None = None
        self.stop_event = threading.Event()

    def cleanup_stale(self) -> None:
        """Remove what a kill -9 of an earlier run left behind, before claiming anything."""
        for s in self.routers:
            vips = [(a.device or s.interface, a.interface) for a in s.addresses]
            for line in self.netlink.cleanup_stale(s.interface, s.vrid, s.family, vips):
                log.warning("%s: cleaned up after an earlier run: %s", s.name, line)

    def start(self) -> None:
        self.cleanup_stale()
        self.workers = [VridWorker(s, self.netlink, log) for s in self.routers]
        self.monitor = CircuitMonitor(self.workers, log)
        self.monitor.initial_faults()
        for w in self.workers:
            w.start()
        self.monitor.start()
        log.info("freevrrpd started: %d virtual router(s): %s", len(self.workers),
                 "; ".join(w.settings.name for w in self.workers))

    def dump(self) -> None:
        for w in self.workers:
            w.post("dump")
        if self.monitor is not None:
            for name, up in sorted(self.monitor.up.items()):
                log.info("link %s: %s, errors %d", name, "up" if up else "down",
                         self.monitor.errors.get(name, 0))

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for w in self.workers:
            w.stopped.wait(max(0.0, deadline - time.monotonic()))
            if not w.stopped.is_set():
                log.error("%s: did not stop within %.0f s", w.settings.name, STOP_TIMEOUT)


def run(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> int:
    setup_logging(opts.foreground, opts.debug)
    netlink = Netlink()
    problems = check_interfaces(routers, netlink)
    if problems:
        for p in problems:
            print(f"freevrrpd: {p}", file=sys.stderr)
        return 2
    netlink.close()
    if not opts.foreground:
        daemonize()
        setup_logging(False, opts.debug)
    pidfile = PidFile(opts.pidfile)
    try:
        pidfile.acquire()
    except PidFileError as exc:
        log.error("%s", exc)
        if not opts.foreground:
            return 1
        print(f"freevrrpd: {exc}", file=sys.stderr)
        return 1
    netlink = Netlink()
    d = Daemon(routers, netlink)

    def on_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: resigning and releasing addresses", signal.Signals(signum).name)
        d.stop_event.set()

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        d.dump()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        # Reload is not implemented yet.  Unlike the original we leave every
        # priority as it is (the original set priority 0 and never restored it).
        log.warning("SIGHUP: reload is not implemented yet; configuration unchanged")

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        d.start()
        while not d.stop_event.wait(1.0):
            pass
        d.stop()
    finally:
        netlink.close()
        pidfile.release()
    log.info("freevrrpd stopped (pid %d)", os.getpid())
    return 0
