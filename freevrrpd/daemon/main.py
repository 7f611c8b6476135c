"""The daemon process: pid file, logging, signals, the main loop."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from freevrrpd.core.settings import RouterSettings
from freevrrpd.daemon.control import ControlServer
from freevrrpd.daemon.logs import setup_logging
from freevrrpd.daemon.pidfile import PidFile, PidFileError
from freevrrpd.daemon.process import daemonize, notify, raise_open_file_limit
from freevrrpd.daemon.supervisor import Supervisor, check_interfaces
from freevrrpd.net.netlink import Netlink

log = logging.getLogger("freevrrpd")


class Signals:
    """What the handlers ask of the main loop; every handler wakes it at once."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.wake = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGUSR1, self.on_usr1)
        signal.signal(signal.SIGHUP, self.on_hup)

    def on_stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: resigning and releasing addresses", signal.Signals(signum).name)
        # A second signal must not cut the resignation short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.stop.set()
        self.wake.set()

    def on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.sup.dump()

    def on_hup(self, signum: int, frame: FrameType | None) -> None:
        # Reload on the main loop, not inside the handler.  Unlike the original,
        # SIGHUP never touches priorities.
        self.reload.set()
        self.wake.set()


def _prepare(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> PidFile | int:
    """Everything before the routers start: the interfaces exist, the pid file is
    ours, the process is detached.  An exit code when it cannot run."""
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
    return pidfile


def _serve(sup: Supervisor, sig: Signals, opts: argparse.Namespace) -> ControlServer:
    sup.start()
    control = ControlServer(opts.socket, {"status": sup.status, "reload": sup.reload})
    control.start()
    if opts.metrics:
        from freevrrpd.daemon.metrics import serve  # prometheus-client only when asked

        serve(opts.metrics, sup.status)
        log.info("metrics on http://%s/metrics", opts.metrics)
    notify(f"READY=1\nSTATUS={len(sup.workers)} virtual router(s)\nMAINPID={os.getpid()}")
    return control


def _loop(sup: Supervisor, sig: Signals) -> None:
    while not sig.stop.is_set():
        sig.wake.wait(1.0)  # the timeout is only a safety net
        sig.wake.clear()
        if sig.reload.is_set() and not sig.stop.is_set():
            sig.reload.clear()
            log.info("received SIGHUP: reloading %s", sup.config_path)
            sup.reload()
            notify("READY=1")


def run(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> int:
    prepared = _prepare(routers, opts)
    if isinstance(prepared, int):
        return prepared
    pidfile = prepared
    netlink = Netlink()
    sup = Supervisor(routers, netlink, os.path.abspath(opts.config))
    sig = Signals(sup)
    sig.install()
    control: ControlServer | None = None
    return_code = 0
    try:
        control = _serve(sup, sig, opts)
        _loop(sup, sig)
    except Exception as exc:
        log.error("cannot run: %s", exc)
        return_code = 1
    finally:
        notify("STOPPING=1")
        if control is not None:
            control.close()
        sup.stop()
        netlink.close()
        pidfile.release()
    log.info("freevrrpd stopped (pid %d)", os.getpid())
    return return_code
