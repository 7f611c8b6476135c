"""The two daemons under test, behind one small interface.

Both get the same virtual routers with like-for-like options: no virtual MAC
(keepalived's default; freevrrpd's default is on), Accept_Mode on (keepalived
without vrrp_strict answers for its addresses) so the client can ping the
virtual address, and otherwise each daemon's defaults.  freevrrpd runs
without -d (debug logging), as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lab import Host
from lab.daemon import LoggedProcess
from lab.keepalived import Keepalived, KeepalivedInstance, keepalived_conf

IMPLS = ("freevrrpd", "keepalived")


@dataclass(frozen=True)
class VirtualRouter:
    vrid: int
    priority: int
    vip: str  # "192.0.2.254/24"
    version: int = 3
    interval: float = 0.1  # seconds
    more: tuple[str, ...] = ()  # further virtual addresses
    interface: str = "eth0"
    peers: tuple[str, ...] = ()  # unicast peers (the source is the primary address)

    @property
    def ip(self) -> str:
        return self.vip.split("/", 1)[0]

    @property
    def vips(self) -> list[str]:
        return [self.vip, *self.more]


def bulk_vip(vrid: int) -> str:
    """A distinct virtual address per VRID, all in documentation ranges (RFC 5737)."""
    return f"198.51.100.{vrid}/24" if vrid <= 254 else f"203.0.113.{vrid - 254}/24"


def freevrrpd_conf(vrs: Sequence[VirtualRouter]) -> str:
    out: list[str] = []
    for vr in vrs:
        out += [
            "[VRID]",
            f"serverid = {vr.vrid}",
            f"interface = {vr.interface}",
            f"priority = {vr.priority}",
            f"version = {vr.version}",
            f"advertint = {vr.interval:g}",
            f"addr = {', '.join(vr.vips)}",
            "usevmac = no",
            "accept = yes",
            *([f"unicastpeer = {', '.join(vr.peers)}"] if vr.peers else []),
            "",
        ]
    return "\n".join(out)


class Running(LoggedProcess):
    """One daemon process (keepalived: a parent and its VRRP child) in a lab host."""

    def __init__(self, impl: str, host: Host, launched: float,
                 proc: subprocess.Popen[bytes], log_path: str) -> None:
        self.impl = impl
        self.host = host
        self.launched = launched  # time.time() just before Popen
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """Every process of the daemon: the host runs nothing else."""
        return self.host.pids()

    def terminate(self) -> None:
        """SIGTERM: a master resigns with priority 0 (RFC 5798 6.4.3), then exits."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def wait(self, timeout: float = 15.0) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> None:
        self.terminate()
        if self.wait(timeout) is None:
            self.proc.kill()
            self.proc.wait(5.0)


def start(impl: str, host: Host, vrs: Sequence[VirtualRouter]) -> Running:
    """Launch ``impl`` in ``host`` with the virtual routers ``vrs``."""
    if impl == "freevrrpd":
        conf = freevrrpd_conf(vrs)
        argv = [*host.site.daemon_command, "-F", "-f", "{conf}", "-p", "{pidfile}", "-s",
                "{socket}"]
        launched = time.time()
        daemon = host.start_daemon(conf, argv=argv)
        return Running(impl, host, launched, daemon.proc, daemon.log_path)
    if impl == "keepalived":
        instances = [
            KeepalivedInstance(vrid=vr.vrid, priority=vr.priority, vips=vr.vips,
                               version=vr.version, advert_int=vr.interval,
                               interface=vr.interface, name=f"VI_{vr.interface}_{vr.vrid}",
                               unicast_peers=vr.peers)
            for vr in vrs
        ]
        conf = keepalived_conf(*instances, router_id=f"fv-{host.name}")
        if all(vr.priority == 255 for vr in vrs):
            # keepalived starts an address owner as master at once only with an
            # initial state MASTER; with BACKUP it waits Master_Down_Interval.
            conf = conf.replace("state BACKUP", "state MASTER")
        launched = time.time()
        ka = Keepalived(host, conf)
        return Running(impl, host, launched, ka.proc, ka.log_path)
    raise ValueError(f"unknown implementation {impl!r}")
