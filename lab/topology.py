"""The lab: switches (bridges) and hosts, each in a network namespace of its own.

A switch is a Linux bridge alone in its namespace, with no address of its own
(IPv6 is disabled there so it does not even get a link-local one). A host gets
a veth pair created straight across namespaces: ``eth0`` in the host, the
other end enslaved to the bridge. Cleanup is airtight: every process the lab
started is killed, then whatever else runs in its namespaces, then the
namespaces are deleted (which destroys their links), on a normal exit, on an
exception, on SIGINT/SIGTERM and, as a last resort, at interpreter exit.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .capture import Capture, Pinger
from .hosts import Host, Switch
from .netns import LabError, Namespace, ProcessRegistry, Site, check_address, run_cmd

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")
_Handler = Any  # what signal.signal returns: a callable, SIG_DFL/SIG_IGN or None


class Lab:
    """A set of namespaces that is always removed again. Use as a context manager."""

    def __init__(
        self,
        prefix: str | None = None,
        keep: bool = False,
        daemon_command: Sequence[str] | None = None,
    ) -> None:
        self.id = secrets.token_hex(3)
        self.prefix = prefix or f"fv{self.id}"
        if not re.fullmatch(r"fv[a-z0-9]{1,10}", self.prefix):
            raise LabError(f"lab prefix {self.prefix!r} must be 'fv' and a short unique id")
        self.keep = keep or os.environ.get("FREEVRRPD_LAB_KEEP", "") not in ("", "0")
        self.daemon_command = list(daemon_command or (sys.executable, "-m", "freevrrpd"))
        self.procs = ProcessRegistry()
        # Seconds a process gets between SIGTERM and SIGKILL at cleanup.
        self.kill_grace = 3.0
        self.namespaces: list[Namespace] = []  # creation order; deleted in reverse
        self.switches: dict[str, Switch] = {}
        self.hosts: dict[str, Host] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._saved_handlers: dict[int, _Handler] = {}
        self._captures = itertools.count(1)
        self._links = itertools.count(1)  # add_link: unique port names and MACs
        self.tmpdir = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        # What the nodes share (they never hold the lab itself).
        self.site = Site(self.procs, self.tmpdir, self.daemon_command)
        atexit.register(self.close)

    # -- life cycle ------------------------------------------------------------

    def __enter__(self) -> Lab:
        # SIGTERM would otherwise end the interpreter without running __exit__.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved_handlers[sig] = signal.signal(sig, _raise_interrupt)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Do not hide the body's own exception behind a cleanup error.
            self.close(raise_errors=exc is None)
        finally:
            for sig, handler in self._saved_handlers.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            self._saved_handlers.clear()

    def close(self, raise_errors: bool = True) -> None:
        """Kill every process, delete every namespace, remove the temp dir."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        deferred: list[int] = []
        shielded = _shield_signals(deferred)
        errors: list[str] = []
        try:
            try:
                self.procs.terminate_all(self.kill_grace)
            except Exception as exc:
                errors.append(str(exc))
            for ns in reversed(self.namespaces):
                try:
                    if ns.exists():
                        ns.kill_all()
                        run_cmd(["ip", "netns", "del", ns.netns])
                except Exception as exc:
                    errors.append(f"{ns.netns}: {exc}")
            if self.keep:
                print(f"lab {self.prefix}: files kept in {self.tmpdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
        finally:
            _restore_signals(shielded)
        if errors and raise_errors:
            raise LabError("lab cleanup: " + "; ".join(errors))
        if errors:
            print(f"lab {self.prefix} cleanup: {'; '.join(errors)}", file=sys.stderr)
        if deferred and raise_errors:
            raise KeyboardInterrupt(f"signal {deferred[0]} during lab cleanup")

    # -- building --------------------------------------------------------------

    def _new_namespace(self, ns: Namespace) -> None:
        with self._lock:
            if self._closed:
                raise LabError("lab already closed")
            # Recorded before it exists, so an interruption right after creation
            # still gets it deleted.
            self.namespaces.append(ns)
        run_cmd(["ip", "netns", "add", ns.netns])

    def add_switch(self, name: str = "lan") -> Switch:
        """A bridge in namespace ``<prefix>sw-<name>``, up, with no address."""
        if not _NAME.fullmatch(name) or name in self.switches:
            raise LabError(f"bad or duplicate switch name {name!r}")
        sw = Switch(self.site, name, f"{self.prefix}sw-{name}")
        self._new_namespace(sw)
        self.switches[name] = sw
        for scope in ("all", "default"):
            sw.sysctl(f"net.ipv6.conf.{scope}.disable_ipv6", "1")
        ip = ["ip", "-n", sw.netns, "link"]
        bridge_opts = "type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
        run_cmd([*ip, "add", sw.bridge, *bridge_opts.split()])
        run_cmd([*ip, "set", sw.bridge, "up"])
        return sw

    def add_host(
        self,
        name: str,
        switch: Switch,
        ipv4: str | None,
        ipv6: str | None = None,
        mac: str | None = None,
        dad: bool = False,
    ) -> Host:
        """A namespace ``<prefix>-<name>`` with ``eth0`` on ``switch``.

        Addresses without a prefix length get /24 (IPv4) or /64 (IPv6). Unless
        ``dad`` is set, duplicate address detection is off in the host (RFC 4862
        section 5.4 allows it), so link-local addresses are usable at once.
        """
        if not _NAME.fullmatch(name) or name in self.hosts:
            raise LabError(f"bad or duplicate host name {name!r}")
        v4 = ipaddress.IPv4Interface(_with_prefix(ipv4, 24)) if ipv4 else None
        v6 = ipaddress.IPv6Interface(_with_prefix(ipv6, 64)) if ipv6 else None
        for addr in (v4, v6):
            if addr is not None:
                check_address(str(addr))
        index = len(self.hosts) + 1
        if mac is None:
            # Locally administered, derived from the lab id: readable in captures.
            lab_id = f"{self.id[0:2]}:{self.id[2:4]}:{self.id[4:6]}"
            mac = f"02:{lab_id}:{index >> 8:02x}:{index & 255:02x}"
        port = f"p{index}-{name}"[:15]
        host = Host(self.site, name, f"{self.prefix}-{name}", switch, port, mac.lower(), v4, v6)
        self._new_namespace(host)
        self.hosts[name] = host
        switch.hosts.append(host)
        run_cmd(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        if not dad:
            for scope in ("all", "default"):
                host.sysctl(f"net.ipv6.conf.{scope}.accept_dad", "0")
        # Both ends are born inside lab namespaces: the root namespace never sees them.
        host.plug()
        return host

    def add_link(
        self,
        host: Host,
        switch: Switch,
        ifname: str,
        ipv4: str | None = None,
        ipv6: str | None = None,
    ) -> str:
        """A further interface ``ifname`` of ``host``, plugged into ``switch``.

        Returns the bridge port's name (in the switch's namespace): set it down
        there to cut this link, as ``Host.cut`` does for eth0.
        """
        if not re.fullmatch(r"[a-z][a-z0-9]{0,14}", ifname) or ifname in host.links():
            raise LabError(f"bad or duplicate interface name {ifname!r} on {host.name}")
        for addr in (ipv4, ipv6):
            if addr is not None:
                check_address(addr)
        n = next(self._links)
        port = f"x{n}-{host.name}"[:15]
        lab_id = f"{self.id[0:2]}:{self.id[2:4]}:{self.id[4:6]}"
        mac = f"06:{lab_id}:{n >> 8:02x}:{n & 255:02x}"  # locally administered, unlike eth0's
        veth = f"add {port} type veth peer name {ifname} address {mac} netns {host.netns}"
        run_cmd(["ip", "-n", switch.netns, "link", *veth.split()])
        run_cmd(["ip", "-n", switch.netns, "link", "set", port, "master", switch.bridge, "up"])
        if ipv4 is not None:
            run_cmd(["ip", "-n", host.netns, "addr", "add", _with_prefix(ipv4, 24), "dev", ifname])
        if ipv6 is not None:
            v6 = _with_prefix(ipv6, 64)
            run_cmd(["ip", "-n", host.netns, "addr", "add", v6, "dev", ifname, "nodad"])
        run_cmd(["ip", "-n", host.netns, "link", "set", ifname, "up"])
        return port

    # -- observing -------------------------------------------------------------

    def capture(
        self,
        target: Namespace,
        iface: str | None = None,
        filter: str = "",
        path: str | None = None,
        nano: bool = False,
        snaplen: int | None = None,
    ) -> Capture:
        """tcpdump in ``target``'s namespace, to a pcap file; returns once listening.

        ``iface`` defaults to eth0 on a host and to the bridge on a switch (which
        tcpdump puts in promiscuous mode, so it sees frames between any ports).
        """
        if iface is None:
            iface = Switch.bridge if isinstance(target, Switch) else Host.ifname
        n = next(self._captures)
        base = Path(self.tmpdir, f"{target.name}-{iface}-{n}")
        return Capture(target, iface, filter, path or str(base) + ".pcap", str(base) + ".log",
                       nano, snaplen=snaplen)

    def pinger(self, host: Host, target: str, interval: float = 0.01) -> Pinger:
        """Ping ``target`` from ``host`` every ``interval`` s in the background."""
        check_address(target, link_scope=True)
        n = next(self._captures)
        return Pinger(host, target, interval, str(Path(self.tmpdir, f"{host.name}-ping-{n}.log")))


def _with_prefix(addr: str, default_prefix: int) -> str:
    return addr if "/" in addr else f"{addr}/{default_prefix}"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _shield_signals(deferred: list[int]) -> dict[int, _Handler]:
    """Hold SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave debris."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def note(signum: int, frame: FrameType | None) -> None:
        deferred.append(signum)

    return {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(saved: dict[int, _Handler]) -> None:
    for sig, handler in saved.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


__all__ = ["Lab"]
