"""Start-up: an address owner's launch to first advert, and a first election.

RFC 5798 6.4.1: a router of priority 255 starts as master at once; any other
waits Master_Down_Interval (and freevrrpd first probes its addresses,
RFC 5227 2.1.1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

from lab import Lab, LabError

from . import peers
from .capture import switch_capture
from .common import R1_IP, wait_for
from .wire import Advert, PcapTail


@dataclass
class StartupResult:
    impl: str
    times: list[float] = field(default_factory=list)  # launch -> first advert, seconds
    error: str | None = None


def _first_after(tail: PcapTail, t: float) -> Advert | None:
    return next((a for a in tail.poll() if a.time > t), None)


def _launches(impl: str, vr: peers.VirtualRouter, reps: int, name: str,
              timeout: float) -> tuple[list[float], str | None]:
    """Launch ``impl`` with ``vr`` ``reps`` times: launch (just before Popen) to
    its first advert seen by the switch, each time."""
    times: list[float] = []
    error = None
    with Lab() as lab:
        sw = lab.add_switch()
        host = lab.add_host("r1", sw, f"{R1_IP}/24")
        cap = switch_capture(lab, sw, "ip proto 112", name)
        tail = PcapTail(cap.path)
        try:
            for _ in range(reps):
                daemon = peers.start(impl, host, [vr])
                first = wait_for(partial(_first_after, tail, daemon.launched), timeout,
                                 "the first advert")
                times.append(first.time - daemon.launched)
                daemon.stop()
                time.sleep(0.3)
                tail.poll()  # the priority-0 advert of the stop
        except LabError as exc:
            error = str(exc).splitlines()[0]
        finally:
            cap.stop()
    return times, error


def run_startup(impl: str, reps: int) -> StartupResult:
    """Launch to the first advert of a priority-255 owner, which starts as master
    at once (RFC 5798 6.4.1)."""
    vr = peers.VirtualRouter(1, 255, peers.bulk_vip(1), 3, 1.0)
    times, error = _launches(impl, vr, reps, "startup", 10.0)
    return StartupResult(impl, times, error)


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
    more = tuple(f"198.51.100.{n}/24" for n in range(2, addresses + 1))
    vr = peers.VirtualRouter(1, 100, "198.51.100.1/24", 3, 0.1, more)
    times, error = _launches(impl, vr, reps, f"election-{addresses}", 60.0)
    return ElectionResult(impl, addresses, times, error)
