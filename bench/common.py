"""Shared pieces of the scenarios: topology, waiting on the capture, statistics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from freevrrpd.core.timing import master_down_interval, skew_time
from lab import Host, Lab, LabError, Pinger, Switch

from .capture import SwitchCapture, switch_capture
from .wire import PcapTail

T = TypeVar("T")

R1_IP = "192.0.2.1"
R2_IP = "192.0.2.2"
CLIENT_IP = "192.0.2.100"
VIP = "192.0.2.254/24"
MASTER_PRIO = 200
BACKUP_PRIO = 100


def theory_master_down(version: int, interval: float, priority: int = BACKUP_PRIO) -> float:
    """Master_Down_Interval of the backup (RFC 3768 6.1 / RFC 5798 6.1)."""
    return master_down_interval(version, priority, round(interval * 100))


def theory_skew(version: int, interval: float, priority: int = BACKUP_PRIO) -> float:
    return skew_time(version, priority, round(interval * 100))


def label(version: int, interval: float, unicast: bool = False) -> str:
    ms = interval * 1000
    text = f"VRRPv{version} {interval:g} s" if ms >= 1000 else f"VRRPv{version} {ms:g} ms"
    return text + (" unicast" if unicast else "")


@dataclass
class LanLab:
    """Two routers and a client on one switch, with a VRRP capture on the switch."""

    lab: Lab
    switch: Switch
    r1: Host
    r2: Host
    client: Host
    capture: SwitchCapture
    tail: PcapTail


def lan_lab(lab: Lab, no_multicast: bool = False) -> LanLab:
    sw = lab.add_switch()
    if no_multicast:
        sw.drop_vrrp_multicast()
    r1 = lab.add_host("r1", sw, f"{R1_IP}/24")
    r2 = lab.add_host("r2", sw, f"{R2_IP}/24")
    client = lab.add_host("client", sw, f"{CLIENT_IP}/24")
    # The bridge sees every advert a port lets in: an isolated port's are dropped
    # before the bridge, exactly like for the backup.
    cap = switch_capture(lab, sw, "ip proto 112", "lan")
    return LanLab(lab, sw, r1, r2, client, cap, PcapTail(cap.path))


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             poll: float = 0.01) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def wait_stable(tail: PcapTail, master_ip: str, other_ips: Sequence[str], interval: float,
                timeout: float) -> None:
    """Until ``master_ip`` has sent 3 adverts in a row with nobody else advertising."""
    def stable() -> bool | None:
        tail.poll()
        now = time.time()
        last_other = max((a.time for a in tail.adverts if a.src_ip in other_ips), default=0.0)
        ours = [a.time for a in tail.adverts if a.src_ip == master_ip and a.time > last_other]
        quiet = now - last_other > 3 * interval
        fresh = bool(ours) and now - ours[-1] < 2 * interval + 0.05
        return True if len(ours) >= 3 and quiet and fresh else None

    wait_for(stable, timeout, f"{master_ip} to be the only master", poll=0.02)


def wait_reply(pinger: Pinger, after: float, timeout: float) -> float | None:
    """The first ping reply later than ``after``, or None after ``timeout``."""
    try:
        return wait_for(lambda: pinger.report().first_reply_after(after), timeout,
                        "a ping reply", poll=0.05)
    except LabError:
        return None


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
