"""Helpers for the tests that run real freevrrpd daemons in the namespace lab.

The LAN of these tests: routers r1 (192.0.2.1) and r2 (192.0.2.2), a client c
(192.0.2.100) on one switch, virtual address 192.0.2.254/24 (IPv6:
2001:db8::254/64).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from lab import Daemon, Host, Lab

VIP = "192.0.2.254"
VIP_CIDR = f"{VIP}/24"
VIP6 = "2001:db8::254"
VIP6_CIDR = f"{VIP6}/64"
R1, R2, CLIENT = "192.0.2.1", "192.0.2.2", "192.0.2.100"
WAIT = 10.0  # seconds for anything that should happen "soon": generous on 2 busy cores


@dataclass
class Lan:
    lab: Lab
    r1: Host
    r2: Host
    c: Host


def build_lan(lab: Lab) -> Lan:
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, f"{R1}/24", "2001:db8::1/64")
    r2 = lab.add_host("r2", sw, f"{R2}/24", "2001:db8::2/64")
    c = lab.add_host("c", sw, f"{CLIENT}/24", "2001:db8::100/64")
    return Lan(lab, r1, r2, c)


def state_re(vrid: int, new: str, family: int = 4, old: str = r"\S+") -> str:
    """The log line of a state change of VRID ``vrid`` into ``new``."""
    return rf"VRID {vrid} on \S+ \(IPv{family}\): {old} -> {new}: "


def same_argv(daemon: Daemon) -> list[str]:
    """``daemon``'s command line: same config, pid file and control socket."""
    return list(daemon.argv)


def wait_until(ready: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def never(bad: Callable[[], bool], what: str, duration: float) -> None:
    """Poll for ``duration`` seconds; fail as soon as ``bad()`` is true."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert not bad(), what
        time.sleep(0.05)


def has_ip(host: Host, ip: str) -> bool:
    return any(a.split("/", 1)[0] == ip for a in host.addresses())


def vmac_links(host: Host) -> list[str]:
    """Interfaces of ``host`` that are macvlans or carry a VRRP virtual MAC
    (00:00:5e:00:01:xx / 00:00:5e:00:02:xx, RFC 5798 7.3)."""
    out = host.run(["ip", "-j", "-d", "link", "show"]).stdout
    found = []
    for link in json.loads(out or "[]"):
        kind = link.get("linkinfo", {}).get("info_kind")
        mac = str(link.get("address", ""))
        if kind == "macvlan" or re.fullmatch(r"00:00:5e:00:0[12]:[0-9a-f]{2}", mac):
            found.append(f"{link['ifname']} ({kind}, {mac})")
    return found


def nft_tables(host: Host) -> list[str]:
    """The nftables tables of freevrrpd (Accept_Mode) on ``host``."""
    out = host.run(["nft", "list", "tables"]).stdout
    return [line for line in out.splitlines() if "freevrrpd" in line]


def leftovers(host: Host, *ips: str) -> list[str]:
    """What a stopped daemon must not leave on ``host``: virtual addresses, VMAC links,
    its nftables table."""
    return [ip for ip in ips if has_ip(host, ip)] + vmac_links(host) + nft_tables(host)


def max_gap(times: list[float]) -> float:
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def r1_returns(net: Lan, d1: Daemon, d2: Daemon, vrids: tuple[int, ...], *vips: str) -> None:
    """Reconnect r1's eth0: each VRID of ``vrids`` is r1's again (it preempts r2) and r1
    holds every address of ``vips``."""
    m1, m2 = d1.mark(), d2.mark()
    net.r1.reconnect()
    for n in vrids:
        d1.wait_log(state_re(n, "MASTER", old="BACKUP"), WAIT, m1)
        d2.wait_log(state_re(n, "BACKUP", old="MASTER"), WAIT, m2)
    wait_until(lambda: all(has_ip(net.r1, ip) for ip in vips), "r1 to hold the VIPs again")
