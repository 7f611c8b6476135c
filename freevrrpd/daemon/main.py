"""The daemon process: privileges, pid file, logging, signals, the main loop.

The signal handlers are installed before anything else, the pid file among
it: an init script or logrotate that signals the pid in the file as soon as
it appears must find the daemon ready for it.  The handlers only set flags;
the main loop acts on them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from freevrrpd.core.settings import RouterSettings
from freevrrpd.daemon import watchdog
from freevrrpd.daemon.control import ControlError, ControlServer, Handler, Request
from freevrrpd.daemon.hostcheck import host_problems
from freevrrpd.daemon.logs import setup_logging, syslog_available
from freevrrpd.daemon.pidfile import PidFile, PidFileError
from freevrrpd.daemon.process import (
    EXIT_CONFIG,
    EXIT_PRIVILEGE,
    daemonize,
    missing_privileges,
    notify,
    raise_open_file_limit,
)
from freevrrpd.daemon.server import BoundedServer
from freevrrpd.daemon.supervisor import Supervisor
from freevrrpd.net.netlink import Netlink, NetlinkError, group_of
from freevrrpd.vrid.addressbook import AddressBook, book_path

log = logging.getLogger("freevrrpd")


class Signals:
    """What the handlers ask of the main loop; every handler wakes it at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stopped_by = ""
        self.reload = threading.Event()
        self.dump = threading.Event()
        self.wake = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGUSR1, self.on_usr1)
        signal.signal(signal.SIGHUP, self.on_hup)

    def on_stop(self, signum: int, frame: FrameType | None) -> None:
        # A second signal must not cut the resignation short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.stopped_by = signal.Signals(signum).name
        self.stop.set()
        self.wake.set()

    def on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.dump.set()
        self.wake.set()

    def on_hup(self, signum: int, frame: FrameType | None) -> None:
        # Unlike the original, SIGHUP never touches priorities: it reloads.
        self.reload.set()
        self.wake.set()


def _prepare(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> PidFile | int:
    """Everything before the routers start: privileges, the interfaces, the pid
    file, detaching.  An exit code when it cannot run."""
    setup_logging(opts.foreground, opts.debug)
    missing = missing_privileges()
    if missing:
        print(f"freevrrpd: {missing}", file=sys.stderr)
        return EXIT_PRIVILEGE
    raise_open_file_limit()
    netlink = Netlink()
    try:
        problems = host_problems(routers, netlink,
                                 AddressBook(book_path(opts.pidfile), read_only=True))
    except NetlinkError as exc:
        print(f"freevrrpd: cannot look at the interfaces: {exc}", file=sys.stderr)
        return 1
    finally:
        netlink.close()
    if problems:
        for p in problems:
            print(f"freevrrpd: {p}", file=sys.stderr)
        return EXIT_CONFIG
    # Lock the pid file before daemonizing, so that a second instance fails in
    # the foreground with a message and a non-zero exit; the child inherits the lock.
    pidfile = PidFile(opts.pidfile)
    try:
        pidfile.acquire()
    except PidFileError as exc:
        print(f"freevrrpd: {exc}", file=sys.stderr)
        return 1
    if not opts.foreground:
        if not syslog_available():
            # Detached, stderr is /dev/null: the log would be lost without a word.
            print("freevrrpd: warning: no syslog daemon listens at /dev/log, so the log "
                  "is lost once the daemon detaches; start one, or run freevrrpd -F under "
                  "a supervisor (systemd collects its stderr)", file=sys.stderr)
        assert pidfile.fd is not None
        daemonize([pidfile.fd])
        setup_logging(False, opts.debug)
        pidfile.write_pid()
    return pidfile


def handlers(sup: Supervisor) -> dict[str, Handler]:
    """The control socket's commands (``events`` is the socket's own: a stream)."""
    return {"status": lambda _r: sup.status(), "reload": lambda _r: sup.reload(),
            "demote": lambda r: _demote(sup, r, undo=False),
            "promote": lambda r: _demote(sup, r, undo=True)}


def _demote(sup: Supervisor, req: Request, undo: bool) -> Mapping[str, object]:
    """``demote ROUTER [by N]`` (no N: not eligible), ``promote ROUTER``."""
    args, by = req.args, None
    if not undo and len(args) == 3 and args[1].lower() == "by":
        by = int(args[2]) if args[2].isdigit() and 1 <= int(args[2]) <= 254 else 0
        if not by:
            return {"ok": False, "error": f"by {args[2]!r}: give a number from 1 to 254"}
    elif len(args) != 1:
        usage = "promote ROUTER" if undo else "demote ROUTER [by N]"
        return {"ok": False, "error": f"usage: {usage}; ROUTER is VRID, VRID/IF, "
                                      "VRID/IF/FAMILY or all"}
    return sup.demote(args[0], by, req.uid, undo)


def _serve(sup: Supervisor, control: ControlServer,
           opts: argparse.Namespace) -> BoundedServer | None:
    sup.start()
    control.start()
    metrics = None
    if opts.metrics:
        from freevrrpd.daemon.metrics import serve  # prometheus-client only when asked

        metrics = serve(opts.metrics, sup.status, lambda: sup.stuck(time.monotonic()))
        log.info("metrics on http://%s/metrics", opts.metrics)
    notify(f"READY=1\nSTATUS={len(sup.workers)} virtual router(s)\nMAINPID={os.getpid()}")
    return metrics


def _loop(sup: Supervisor, sig: Signals) -> None:
    every = watchdog.interval()
    reported: list[str] = []
    while not sig.stop.is_set():
        sig.wake.wait(1.0 if every is None else min(1.0, every))
        sig.wake.clear()
        if every is not None:
            stuck = sup.stuck(time.monotonic())
            if not stuck:
                notify("WATCHDOG=1")
            elif stuck != reported:
                log.error("not feeding systemd's watchdog: thread of %s dead or stuck",
                          ", ".join(stuck))
            reported = stuck
        if sig.dump.is_set():
            sig.dump.clear()
            sup.dump()
        if sig.reload.is_set() and not sig.stop.is_set():
            sig.reload.clear()
            log.info("received SIGHUP: reloading %s", sup.config_path)
            sup.reload()  # tells systemd RELOADING=1, then READY=1
    log.info("received %s: resigning and releasing addresses", sig.stopped_by)


def run(routers: Sequence[RouterSettings], opts: argparse.Namespace) -> int:
    sig = Signals()
    sig.install()
    prepared = _prepare(routers, opts)
    if isinstance(prepared, int):
        return prepared
    pidfile = prepared
    # Our virtual-MAC interfaces join a link group of this instance's own: at
    # the exit they go in one request (``Netlink.flush_deletes``).
    group = group_of(os.path.abspath(opts.pidfile))
    netlink = Netlink(group=group)
    book = AddressBook(book_path(opts.pidfile))
    # The nftables table of Accept_Mode is this instance's own, as the link group.
    sup = Supervisor(routers, netlink, os.path.abspath(opts.config), book,
                     accept_table=f"freevrrpd_{group:08x}")
    try:
        # Before any router starts: another daemon's socket stops us here.
        control = ControlServer(opts.socket, handlers(sup), sup.events)
    except ControlError as exc:
        print(f"freevrrpd: {exc}", file=sys.stderr)
        netlink.close()
        pidfile.release()
        return 1
    return_code = 0
    metrics: BoundedServer | None = None
    try:
        metrics = _serve(sup, control, opts)
        _loop(sup, sig)
    except Exception as exc:
        log.error("cannot run: %s", exc)
        return_code = 1
    finally:
        notify("STOPPING=1")
        control.close()
        if metrics is not None:
            metrics.close()
        sup.stop()
        netlink.close()
        book.close()
        pidfile.release()
    log.info("freevrrpd stopped (pid %d)", os.getpid())
    return return_code
