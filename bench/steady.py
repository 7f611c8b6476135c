"""Steady state as master of many VRIDs, and start-up time of an address owner.

Steady state: CPU (utime+stime of every process of the daemon, all threads)
over a window, resident memory at its end, and the advert interval jitter of
each VRID from the switch capture: consecutive advert deltas minus the
configured interval (RFC 5798 6.4.3: the master re-arms Adver_Timer each time).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

from lab import Lab, LabError

from . import peers, procstat
from .capture import switch_capture
from .common import R1_IP, label, median, percentile, theory_master_down, wait_for
from .wire import Advert, PcapTail


@dataclass(frozen=True)
class SteadyCase:
    vrids: int
    version: int
    interval: float
    window: float  # seconds of measurement
    settle: float  # seconds after the last VRID became master

    @property
    def label(self) -> str:
        return f"{self.vrids} VRIDs, {label(self.version, self.interval)}"


@dataclass
class SteadyResult:
    impl: str
    vrids: int
    version: int
    interval: float
    window: float = 0.0
    cpu_percent: float = 0.0  # of one core
    rss_mib: float = 0.0
    processes: int = 0
    threads: int = 0
    adverts: int = 0
    expected: int = 0
    jitter_median_ms: float = 0.0
    jitter_p99_ms: float = 0.0
    jitter_max_ms: float = 0.0
    capture_drops: int | None = None
    resigned: int = 0  # VRIDs whose priority-0 advert was seen after SIGTERM
    resign_s: float = math.nan  # SIGTERM -> last priority-0 advert
    exit_s: float = math.nan  # SIGTERM -> process exit
    error: str | None = None


@dataclass
class StartupResult:
    impl: str
    times: list[float] = field(default_factory=list)  # launch -> first advert, seconds
    error: str | None = None


def _bulk(case: SteadyCase) -> list[peers.VirtualRouter]:
    # Priority 100, as a real router: each VRID becomes master after its
    # Master_Down_Interval, as nobody else speaks for it.
    return [peers.VirtualRouter(n, 100, peers.bulk_vip(n), case.version, case.interval)
            for n in range(1, case.vrids + 1)]


def run_steady(impl: str, case: SteadyCase) -> SteadyResult:
    result = SteadyResult(impl, case.vrids, case.version, case.interval)
    with Lab() as lab:
        sw = lab.add_switch()
        host = lab.add_host("r1", sw, f"{R1_IP}/24")
        cap = switch_capture(lab, sw, "ip proto 112", "steady")
        tail = PcapTail(cap.path)
        try:
            daemon = peers.start(impl, host, _bulk(case))
            seen: set[int] = set()

            def all_master() -> bool | None:
                seen.update(a.vrid for a in tail.poll() if a.src_ip == R1_IP)
                return True if len(seen) >= case.vrids else None

            limit = 30.0 + theory_master_down(case.version, case.interval)
            wait_for(all_master, limit, f"all {case.vrids} VRIDs to advertise", poll=0.1)
            time.sleep(case.settle)
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
            tail.poll()
            _jitter(result, tail, t0, t1, case)
            if daemon.proc.poll() is not None:
                raise LabError(f"{impl} exited during the measurement")
            _stop(result, daemon, tail)
        except LabError as exc:
            result.error = str(exc).splitlines()[0]
        finally:
            cap.stop()
            result.capture_drops = cap.dropped()
    return result


def _stop(result: SteadyResult, daemon: peers.Running, tail: PcapTail) -> None:
    """SIGTERM: every VRID resigns with priority 0 (RFC 5798 6.4.3); time the last
    resignation and the exit.  Waited for here, so that a slow exit is measured
    rather than cut short by the lab's cleanup."""
    sent = time.time()
    daemon.terminate()
    code = daemon.wait(120.0)
    result.exit_s = time.time() - sent if code is not None else math.nan
    time.sleep(0.2)
    tail.poll()
    zeros = [a.time for a in tail.adverts if a.time > sent and a.priority == 0]
    result.resigned = len({a.vrid for a in tail.adverts if a.time > sent and a.priority == 0})
    result.resign_s = max(zeros) - sent if zeros else math.nan


def _jitter(result: SteadyResult, tail: PcapTail, t0: float, t1: float,
            case: SteadyCase) -> None:
    per_vrid: dict[int, list[float]] = defaultdict(list)
    for a in tail.adverts:
        if a.src_ip == R1_IP and t0 <= a.time <= t1:
            per_vrid[a.vrid].append(a.time)
    deltas: list[float] = []
    for times in per_vrid.values():
        deltas += [abs(b - a - case.interval) for a, b in zip(times, times[1:], strict=False)]
    result.adverts = sum(len(t) for t in per_vrid.values())
    result.expected = round(case.vrids * (t1 - t0) / case.interval)
    result.jitter_median_ms = 1000 * median(deltas)
    result.jitter_p99_ms = 1000 * percentile(deltas, 99)
    result.jitter_max_ms = 1000 * max(deltas, default=float("nan"))


def _first_after(tail: PcapTail, t: float) -> Advert | None:
    return next((a for a in tail.poll() if a.time > t), None)


def run_startup(impl: str, reps: int) -> StartupResult:
    """Launch (Popen) to the first advert of a priority-255 owner, which starts as
    master at once (RFC 5798 6.4.1)."""
    result = StartupResult(impl)
    vr = peers.VirtualRouter(1, 255, peers.bulk_vip(1), 3, 1.0)
    with Lab() as lab:
        sw = lab.add_switch()
        host = lab.add_host("r1", sw, f"{R1_IP}/24")
        cap = switch_capture(lab, sw, "ip proto 112", "startup")
        tail = PcapTail(cap.path)
        try:
            for _ in range(reps):
                daemon = peers.start(impl, host, [vr])
                first = wait_for(partial(_first_after, tail, daemon.launched), 10.0,
                                 "the first advert")
                result.times.append(first.time - daemon.launched)
                daemon.stop()
                time.sleep(0.3)
                tail.poll()  # the priority-0 advert of the stop
        except LabError as exc:
            result.error = str(exc).splitlines()[0]
        finally:
            cap.stop()
    return result


@dataclass
class ElectionResult:
    impl: str
    addresses: int
    times: list[float] = field(default_factory=list)  # launch -> first advert, seconds
    error: str | None = None


def run_election(impl: str, addresses: int, reps: int) -> ElectionResult:
    """A lone router of priority 100 (VRRPv3, 100 ms) with ``addresses`` virtual
    addresses: launch to its first advert as master.  freevrrpd probes the
    addresses first (RFC 5227 2.1.1), all of them in one window; keepalived does
    not probe."""
    result = ElectionResult(impl, addresses)
    more = tuple(f"198.51.100.{n}/24" for n in range(2, addresses + 1))
    vr = peers.VirtualRouter(1, 100, "198.51.100.1/24", 3, 0.1, more)
    with Lab() as lab:
        sw = lab.add_switch()
        host = lab.add_host("r1", sw, f"{R1_IP}/24")
        cap = switch_capture(lab, sw, "ip proto 112", f"election-{addresses}")
        tail = PcapTail(cap.path)
        try:
            for _ in range(reps):
                daemon = peers.start(impl, host, [vr])
                first = wait_for(partial(_first_after, tail, daemon.launched), 60.0,
                                 "the first advert")
                result.times.append(first.time - daemon.launched)
                daemon.stop()
                time.sleep(0.3)
                tail.poll()
        except LabError as exc:
            result.error = str(exc).splitlines()[0]
        finally:
            cap.stop()
    return result
