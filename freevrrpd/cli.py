"""The ``freevrrpd`` command line: the original's flags plus a few of our own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from freevrrpd import __version__
from freevrrpd.config import ConfigError, ConfigProblem, load_config, summary
from freevrrpd.core.settings import RouterSettings

DEFAULT_CONFIG = "/etc/freevrrpd.conf"
DEFAULT_PIDFILE = "/run/freevrrpd.pid"
DEFAULT_SOCKET = "/run/freevrrpd.sock"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="freevrrpd",
        description="VRRPv2/VRRPv3 daemon (RFC 3768, RFC 5798), "
        "config-compatible with FreeBSD's freevrrpd.",
    )
    p.add_argument("-f", dest="config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"configuration file (default {DEFAULT_CONFIG}; *.yaml/*.yml read as YAML)")
    p.add_argument("-F", dest="foreground", action="store_true",
                   help="stay in the foreground and log to stderr")
    p.add_argument("-c", dest="chroot", metavar="DIR",
                   help="chroot to DIR before reading the config")
    p.add_argument("-p", dest="pidfile", default=DEFAULT_PIDFILE, metavar="PIDFILE",
                   help=f"pid file, locked while running (default {DEFAULT_PIDFILE})")
    p.add_argument("-s", dest="socket", default=DEFAULT_SOCKET, metavar="SOCKET",
                   help=f"control socket for freevrrpctl (default {DEFAULT_SOCKET})")
    p.add_argument("--metrics", metavar="ADDR:PORT",
                   help="serve Prometheus metrics on ADDR:PORT (off by default)")
    p.add_argument("-d", dest="debug", action="store_true", help="debug logging")
    p.add_argument("-t", dest="check", action="store_true",
                   help="check the configuration, print one line per virtual router, exit")
    p.add_argument("--import-keepalived", metavar="FILE",
                   help="print the VRRP part of keepalived.conf FILE as a freevrrpd.conf; "
                   "what cannot be carried over is listed on stderr")
    p.add_argument("--version", action="version", version=f"freevrrpd {__version__}")
    return p


def import_keepalived(path: str) -> int:
    from freevrrpd.config.kaconvert import convert
    from freevrrpd.config.kaparse import KeepalivedError

    try:
        result = convert(path)
    except KeepalivedError as exc:
        print(f"freevrrpd: cannot read {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(result.text)
    print(f"freevrrpd: converted {result.routers} virtual router(s) from {path}",
          file=sys.stderr)
    if result.skipped:
        print(f"freevrrpd: not carried over ({len(result.skipped)}):", file=sys.stderr)
        for line in result.skipped:
            print(f"  {line}", file=sys.stderr)
    if result.lvs:
        print(f"freevrrpd: {result.lvs} LVS section(s) ignored (not VRRP)", file=sys.stderr)
    return 0


def host_check(routers: Sequence[RouterSettings], pidfile: str) -> list[str]:
    """``-t``: the checks against the interfaces that exist here (addresses, MTU)."""
    from freevrrpd.daemon.hostcheck import host_problems  # netlink only when asked
    from freevrrpd.net.netlink import Netlink, NetlinkError
    from freevrrpd.vrid.addressbook import AddressBook, book_path

    netlink = Netlink()
    try:
        book = AddressBook(book_path(pidfile), read_only=True)
        return host_problems(routers, netlink, book, require_interfaces=False)
    except NetlinkError as exc:
        print(f"freevrrpd: warning: cannot look at the interfaces: {exc}", file=sys.stderr)
        return []
    finally:
        netlink.close()


EXIT_SIGPIPE = 128 + 13  # what a shell reports for a reader that went away


def quiet_pipe(run: Callable[[], int]) -> int:
    """Run a command whose output may go into a pipe that closes early
    (``| head -1``): no traceback then, the exit status a killed writer has."""
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more can be written; keep the interpreter's own final flush
        # from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGPIPE
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return quiet_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    p = parser()
    opts = p.parse_args(argv)
    if opts.import_keepalived:
        return import_keepalived(opts.import_keepalived)
    if opts.metrics:
        from freevrrpd.daemon.metrics import parse_listen

        try:
            parse_listen(opts.metrics)
        except ValueError as exc:
            p.error(str(exc))
    if opts.chroot:
        try:
            os.chroot(opts.chroot)
            os.chdir("/")
        except OSError as exc:
            print(f"freevrrpd: cannot chroot to {opts.chroot}: {exc.strerror}", file=sys.stderr)
            return 2
    warnings: list[ConfigProblem] = []
    try:
        routers = load_config(opts.config, warnings)
    except ConfigError as exc:
        print(f"freevrrpd: {exc.count} error(s) in the configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"freevrrpd: warning: {warning}", file=sys.stderr)
    if opts.check:
        against = host_check(routers, opts.pidfile)
        if against:
            print(f"freevrrpd: {len(against)} error(s) against this host:", file=sys.stderr)
            for text in against:
                print(f"  {text}", file=sys.stderr)
            return 2
        for settings in routers:
            print(summary(settings))
        print(f"{opts.config}: OK, {len(routers)} virtual router(s)")
        return 0
    # RFC 5798 6.4.1: an owner advertises at once, before the rest is imported.
    from freevrrpd.daemon.early import FirstAdverts

    early = FirstAdverts()
    early.send(routers, opts.pidfile)
    from freevrrpd.daemon.main import run  # imported late: -t and errors need no netlink

    code = run(routers, opts)
    if code != 0:
        early.resign()
    return code
