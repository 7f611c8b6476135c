"""Small helpers for the daemon election tests: LAN set-up, log checks, pcap reading.

Shared by test_daemon_election.py and test_daemon_failover.py.  Expected timer
values are computed here from the RFC formulas, not with the daemon's own code,
so a wrong formula in the daemon cannot hide behind a wrong expectation.
"""

from __future__ import annotations

import ipaddress
import math
import re
import signal
import struct
import subprocess
import time
from collections.abc import Sequence

from freevrrpd.core.mac import mac_text as mac_str
from freevrrpd.net.frames import ETH_P_ARP
from lab import Capture, Daemon, Host, Lab, SeenAdvert, Switch
from lab import adverts as lab_adverts

VIP4 = "192.0.2.254"
VIP6 = "2001:db8::fe"
# RFC 5798 section 7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6).
VMAC4 = "00:00:5e:00:01:01"
VMAC6 = "00:00:5e:00:02:01"
CLIENT4 = "192.0.2.100/24"
CLIENT6 = "2001:db8::100/64"
# On entering Backup a router probes the virtual addresses before its timers
# run (RFC 5227 2.1.1 / RFC 4862 5.4, issue 3 section 3): about 1.5 advert
# intervals plus a one-second probe.  Tests that time a failover let it finish.
PROBE_SETTLE = 2.0


# ---- RFC 5798 section 6.1 timers (VRRPv3, interval in seconds) ----------------------------
def skew(priority: int, interval: float) -> float:
    """Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256."""
    return (256 - priority) * interval / 256


def mdi(priority: int, interval: float) -> float:
    """Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time."""
    return 3 * interval + skew(priority, interval)


# ---- the LAN ----------------------------------------------------------------------------
def build_lan(lab: Lab, n: int = 3, ipv6: bool = False) -> tuple[Switch, list[Host], Host]:
    """Routers r1..rn at 192.0.2.i (2001:db8::i), and a client c at .100 (::100)."""
    lan = lab.add_switch()
    routers = [
        lab.add_host(f"r{i}", lan, f"192.0.2.{i}/24", f"2001:db8::{i}/64" if ipv6 else None)
        for i in range(1, n + 1)
    ]
    client = lab.add_host("c", lan, CLIENT4, CLIENT6 if ipv6 else None)
    return lan, routers, client


def start_together(lan: Switch, routers: Sequence[Host], confs: Sequence[str]) -> list[Daemon]:
    """Start one daemon per router so that all of them begin the election at once.

    A Python daemon takes a few hundred milliseconds to start, more than the
    Skew_Time differences an election between simultaneous starters turns on.
    So each router starts with its cable unplugged (its VRIDs wait in FAULT:
    not eligible) and then all switch ports come up in one ``ip -batch``
    command: every router enters Backup within a millisecond or two, as after
    a switch reboot.
    """
    for host in routers:
        host.cut()
    daemons = []
    for host, conf in zip(routers, confs, strict=True):
        d = host.start_daemon(conf)
        d.wait_log(r"INIT -> FAULT", timeout=15)
        daemons.append(d)
    batch = "".join(f"link set {host.port} up\n" for host in routers)
    lan.run(["ip", "-batch", "-"], input=batch)
    for host in routers:
        host.reconnect()
    return daemons


def start_master_first(pairs: Sequence[tuple[Host, str]], family: int = 4) -> list[Daemon]:
    """Start the first (host, conf) and wait until it is master, then the others.

    For tests about what happens after an election: no start-up race at all.
    Returns the daemons in the order given; the others are backups on return.
    """
    (host, conf), rest = pairs[0], pairs[1:]
    first = host.start_daemon(conf)
    wait_master(first, family=family, timeout=15)
    daemons = [first] + [h.start_daemon(c) for h, c in rest]
    for d in daemons[1:]:
        d.wait_log(r"INIT -> BACKUP", timeout=15)
    return daemons


def stop_all(daemons: Sequence[Daemon]) -> None:
    """SIGTERM every daemon at once, then check each one exited with status 0.

    One signal each: a second SIGTERM that lands while the interpreter is
    already finalizing meets the default action and kills the process.
    """
    for d in daemons:
        d.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for d in daemons:
        try:
            codes[d.host.name] = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            codes[d.host.name] = None  # the lab's cleanup kills it
    assert all(rc == 0 for rc in codes.values()), f"exit codes {codes}"


# ---- logs ---------------------------------------------------------------------------------
def vrid_name(vrid: int = 1, family: int = 4) -> str:
    return re.escape(f"VRID {vrid} on eth0 (IPv{family}):")


def master_line(vrid: int = 1, family: int = 4) -> str:
    return vrid_name(vrid, family) + r" \w+ -> MASTER"


def count(d: Daemon, regex: str, since: int = 0) -> int:
    return len(re.findall(regex, d.log()[since:], re.MULTILINE))


def wait_master(d: Daemon, since: int = 0, vrid: int = 1, family: int = 4,
                timeout: float = 10.0) -> None:
    d.wait_log(master_line(vrid, family), timeout=timeout, since=since)


def status(d: Daemon, vrid: int = 1, family: int = 4) -> tuple[str, dict[str, int]]:
    """SIGUSR1, then (state, drops by reason) from the status line it logs."""
    since = d.mark()
    d.send_signal(signal.SIGUSR1)
    m = d.wait_log(vrid_name(vrid, family) + r" state (\w+),.* drops (.*?), conflicts",
                   timeout=5, since=since)
    drops = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(2))}
    return m.group(1), drops


# ---- the client's view -----------------------------------------------------------------------
def reaches(host: Host, ip: str, timeout: float = 5.0) -> bool:
    """Ping until one echo is answered (True) or ``timeout`` s have passed."""
    family = "-6" if ":" in ip else "-4"
    deadline = time.monotonic() + timeout
    while True:
        argv = ["ping", family, "-n", "-q", "-c", "1", "-W", "1", ip]
        if host.run(argv, check=False, timeout=10).returncode == 0:
            return True
        if time.monotonic() > deadline:
            return False


def wait_neigh(host: Host, ip: str, mac: str, timeout: float = 2.0) -> str | None:
    """Poll the neighbour table (sending nothing) until ``ip`` maps to ``mac``."""
    deadline = time.monotonic() + timeout
    while True:
        seen = host.neigh(ip)
        if seen == mac or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


# ---- what the switch saw ---------------------------------------------------------------------
def adverts(cap: Capture) -> list[SeenAdvert]:
    """Every well-formed VRRP advert in the capture, in order."""
    return lab_adverts(cap.packets(), valid_only=True)


def first_advert(advs: Sequence[SeenAdvert], src: str, after: float = -math.inf,
                 priority: int | None = None) -> SeenAdvert | None:
    """The first advert from ``src`` later than ``after`` (with that priority, if given)."""
    return next((a for a in advs if a.src == src and a.time > after
                 and (priority is None or a.priority == priority)), None)


def last_advert(advs: Sequence[SeenAdvert], src: str,
                before: float = math.inf) -> SeenAdvert | None:
    return next((a for a in reversed(advs) if a.src == src and a.time < before), None)


def garps(cap: Capture, ip: str, after: float = -math.inf) -> list[tuple[float, str]]:
    """(time, sender MAC) of every gratuitous ARP for ``ip`` (sender IP = target IP = ip)."""
    packed = bytes(int(octet) for octet in ip.split("."))
    out = []
    for ts, frame in cap.packets():
        if ts <= after or len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
            continue
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if spa == packed and tpa == packed:
            out.append((ts, mac_str(sha)))
    return out


def unsolicited_nas(cap: Capture, ip: str, after: float = -math.inf) -> list[tuple[float, str]]:
    """(time, Ethernet source) of every neighbour advertisement whose target is ``ip``
    (RFC 4861 4.4: ICMPv6 type 136, the target 8 bytes into the message)."""
    target = ipaddress.IPv6Address(ip).packed
    out = []
    for ts, frame in cap.packets():
        if ts <= after or len(frame) < 78 or struct.unpack_from("!H", frame, 12)[0] != 0x86DD:
            continue
        if frame[20] == 58 and frame[54] == 136 and frame[62:78] == target:
            out.append((ts, mac_str(frame[6:12])))
    return out
