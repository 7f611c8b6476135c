"""Steady state of many virtual routers, as master or as backup, on one or more LANs.

Master: the daemon on r1 is the only router of N VRIDs per LAN (priority 100):
each becomes master after its Master_Down_Interval.  Backup: r2 runs keepalived
as master of the same VRIDs (priority 200, for both daemons under test, so the
backups hear the same adverts) and the daemon under test on r1 is their
backup (priority 100).  Measured over a window after everything settled: CPU
(utime+stime of every process of the daemon, all threads), resident memory at
its end, and, as master, the advert interval jitter of each VRID from the
switch captures (RFC 5798 6.4.3: the master re-arms Adver_Timer each time).
Start-up: launch until every VRID advertised, and the largest gap between a
VRID's first adverts and the window (a master must advertise every interval
from its first advert on).  Then SIGTERM: resignations and exit.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from lab import Host, Lab, LabError, Switch

from . import peers, procstat
from .capture import SwitchCapture, switch_capture
from .common import label as interval_label
from .common import median, percentile, theory_master_down, wait_for
from .wire import Advert, PcapTail

# (interface, the host's address, the virtual address of VRID n) of each LAN;
# three IPv4 documentation ranges (RFC 5737), then IPv6 (RFC 3849).
LANS = (("eth0", "192.0.2.254/24", "192.0.2.{n}/24"),
        ("eth1", "198.51.100.254/24", "198.51.100.{n}/24"),
        ("eth2", "203.0.113.254/24", "203.0.113.{n}/24"),
        ("eth3", "2001:db8:4::fe/64", "2001:db8:4::{n:x}/64"))
BACKUP_IP = {"eth0": "192.0.2.253/24", "eth1": "198.51.100.253/24",
             "eth2": "203.0.113.253/24", "eth3": "2001:db8:4::fd/64"}
SINGLE_VIP = peers.bulk_vip  # one LAN: the figures of earlier reports


@dataclass(frozen=True)
class SteadyCase:
    vrids: int  # per LAN
    version: int
    interval: float
    window: float  # seconds of measurement
    settle: float  # seconds after the last VRID became master
    role: str = "master"  # or "backup" (beside a keepalived master)
    lans: int = 1

    @property
    def total(self) -> int:
        return self.vrids * self.lans

    @property
    def label(self) -> str:
        where = f" ({self.lans} interfaces x {self.vrids})" if self.lans > 1 else ""
        return (f"{self.total} VRIDs{where}, {interval_label(self.version, self.interval)}"
                f"{', as backup' if self.role == 'backup' else ''}")


@dataclass
class SteadyResult:
    impl: str
    vrids: int
    version: int
    interval: float
    role: str = "master"
    lans: int = 1
    window: float = 0.0
    cpu_percent: float = 0.0  # of one core
    rss_mib: float = 0.0
    processes: int = 0
    threads: int = 0
    adverts: int = 0
    expected: int = 0
    jitter_median_ms: float = math.nan
    jitter_p99_ms: float = math.nan
    jitter_max_ms: float = math.nan
    capture_drops: int | None = None
    startup_all_s: float = math.nan  # launch -> every VRID advertised (master role)
    startup_gap_max_ms: float = math.nan  # worst gap - interval after a VRID's first advert
    takeovers: int = 0  # backup role: VRIDs the backup advertised (should be none)
    resigned: int = 0  # VRIDs whose priority-0 advert was seen after SIGTERM
    resign_s: float = math.nan  # SIGTERM -> last priority-0 advert
    exit_s: float = math.nan  # SIGTERM -> process exit
    error: str | None = None

    @property
    def label(self) -> str:
        return SteadyCase(self.vrids // max(self.lans, 1), self.version, self.interval, 0, 0,
                          self.role, self.lans).label


@dataclass
class _Lan:
    ifname: str
    switch: Switch
    capture: SwitchCapture
    tail: PcapTail


def _routers(case: SteadyCase, priority: int) -> list[peers.VirtualRouter]:
    out = []
    for ifname, _host_ip, vip in LANS[:case.lans]:
        for n in range(1, case.vrids + 1):
            address = SINGLE_VIP(n) if case.lans == 1 else vip.format(n=n)
            out.append(peers.VirtualRouter(n, priority, address, case.version, case.interval,
                                           interface=ifname))
    return out


def _topology(lab: Lab, case: SteadyCase) -> tuple[Host, Host | None, list[_Lan]]:
    switches = [lab.add_switch(f"lan{i}") for i in range(case.lans)]
    first_ip = "192.0.2.1/24" if case.lans == 1 else LANS[0][1]
    r1 = lab.add_host("r1", switches[0], first_ip)
    r2 = None
    if case.role == "backup":
        r2 = lab.add_host("r2", switches[0], "192.0.2.2/24" if case.lans == 1
                          else BACKUP_IP["eth0"])
    lans = []
    for i, (ifname, host_ip, _vip) in enumerate(LANS[:case.lans]):
        if i:
            v6 = ":" in host_ip
            lab.add_link(r1, switches[i], ifname, ipv6=host_ip if v6 else None,
                         ipv4=None if v6 else host_ip)
            if r2 is not None:
                ip = BACKUP_IP[ifname]
                lab.add_link(r2, switches[i], ifname, ipv6=ip if v6 else None,
                             ipv4=None if v6 else ip)
        cap = switch_capture(lab, switches[i], "ip proto 112 or ip6 proto 112", f"steady{i}")
        lans.append(_Lan(ifname, switches[i], cap, PcapTail(cap.path)))
    return r1, r2, lans


def run_steady(impl: str, case: SteadyCase) -> SteadyResult:
    result = SteadyResult(impl, case.total, case.version, case.interval, case.role, case.lans)
    with Lab() as lab:
        r1, r2, lans = _topology(lab, case)
        try:
            if r2 is not None:  # the same master for both daemons under test
                master = peers.start("keepalived", r2, _routers(case, 200))
                _wait_all(lans, case, master.launched)
            launched = time.time()
            daemon = peers.start(impl, r1, _routers(case, 100))
            if r2 is None:
                result.startup_all_s = _wait_all(lans, case, launched)
            else:
                time.sleep(theory_master_down(case.version, case.interval) + 1.0)
            time.sleep(case.settle)
            _measure(result, daemon, lans, case)
            _stop(result, daemon, lans)
        except LabError as exc:
            result.error = str(exc).splitlines()[0]
        finally:
            for lan in lans:
                lan.capture.stop()
            result.capture_drops = sum(lan.capture.dropped() or 0 for lan in lans)
    return result


def _wait_all(lans: list[_Lan], case: SteadyCase, since: float) -> float:
    """Until every VRID of every LAN advertised after ``since``; seconds it took."""
    seen: set[tuple[str, int]] = set()
    last = since

    def everyone() -> bool | None:
        nonlocal last
        for lan in lans:
            for a in lan.tail.poll():
                if a.time > since and a.priority > 0 and (lan.ifname, a.vrid) not in seen:
                    seen.add((lan.ifname, a.vrid))
                    last = max(last, a.time)
        return True if len(seen) >= case.total else None

    limit = 60.0 + case.total * 0.05 + theory_master_down(case.version, case.interval)
    wait_for(everyone, limit, f"all {case.total} VRIDs to advertise", poll=0.1)
    return last - since


def _measure(result: SteadyResult, daemon: peers.Running, lans: list[_Lan],
             case: SteadyCase) -> None:
    pids = daemon.pids()
    cpu0, t0 = procstat.total_cpu(pids), time.time()
    time.sleep(case.window)  # nothing else of ours runs meanwhile
    cpu1, t1 = procstat.total_cpu(pids), time.time()
    result.rss_mib = procstat.total_rss_kib(pids) / 1024
    result.processes = len(pids)
    result.threads = sum(procstat.threads(p) for p in pids)
    result.window = t1 - t0
    result.cpu_percent = 100 * (cpu1 - cpu0) / (t1 - t0)
    time.sleep(0.2)
    mine = {lan.ifname: _from_host(lan, daemon.host) for lan in lans}
    if case.role == "backup":
        result.takeovers = len({(i, a.vrid) for i, advs in mine.items() for a in advs
                                if t0 <= a.time <= t1})
    else:
        _jitter(result, mine, t0, t1, case)
    if daemon.proc.poll() is not None:
        raise LabError(f"{result.impl} exited during the measurement")


def _from_host(lan: _Lan, host: Host) -> list[Advert]:
    """The adverts the daemon under test sent on this LAN, by their Ethernet source
    (no virtual MAC in these runs: the interface's own)."""
    lan.tail.poll()
    mac = str(host.link(lan.ifname)["address"])
    return [a for a in lan.tail.adverts if a.src_mac == mac]


def _jitter(result: SteadyResult, mine: dict[str, list[Advert]], t0: float, t1: float,
            case: SteadyCase) -> None:
    per_vrid: dict[tuple[str, int], list[float]] = defaultdict(list)
    first: dict[tuple[str, int], float] = {}
    startup_gaps: list[float] = []
    for ifname, advs in mine.items():
        for a in advs:
            if a.priority == 0:
                continue
            key = (ifname, a.vrid)
            if t0 <= a.time <= t1:
                per_vrid[key].append(a.time)
            elif a.time < t0:
                if key in first:
                    startup_gaps.append(a.time - first[key] - case.interval)
                first[key] = a.time
    deltas: list[float] = []
    for times in per_vrid.values():
        deltas += [abs(b - a - case.interval) for a, b in zip(times, times[1:], strict=False)]
    result.adverts = sum(len(t) for t in per_vrid.values())
    result.expected = round(case.total * (t1 - t0) / case.interval)
    result.jitter_median_ms = 1000 * median(deltas)
    result.jitter_p99_ms = 1000 * percentile(deltas, 99)
    result.jitter_max_ms = 1000 * max(deltas, default=math.nan)
    result.startup_gap_max_ms = 1000 * max(startup_gaps, default=math.nan)


def _stop(result: SteadyResult, daemon: peers.Running, lans: list[_Lan]) -> None:
    """SIGTERM: every master resigns with priority 0 (RFC 5798 6.4.3); time the last
    resignation and the exit.  Waited for here, so that a slow exit is measured
    rather than cut short by the lab's cleanup."""
    sent = time.time()
    daemon.terminate()
    code = daemon.wait(120.0)
    result.exit_s = time.time() - sent if code is not None else math.nan
    time.sleep(0.2)
    zeros = []
    for lan in lans:
        for a in _from_host(lan, daemon.host):
            if a.time > sent and a.priority == 0:
                zeros.append((lan.ifname, a.vrid, a.time))
    result.resigned = len({(i, v) for i, v, _t in zeros})
    result.resign_s = max(t for _i, _v, t in zeros) - sent if zeros else math.nan
