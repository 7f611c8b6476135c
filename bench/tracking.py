"""A track script fails on the master: how soon does the backup advertise as master?

r1 (priority 200) tracks a check with weight -150 (freevrrpd: ``[CHECK]`` +
``trackscript``; keepalived: ``vrrp_script`` + ``track_script``), r2 has 100.
The check tests for a flag file; with fall 1 its first failing run is the one
that reaches the fall count, and it writes its own wall-clock time just before
it exits 1.  We remove the flag and measure, on the switch's capture:

* ``lowered``: that failing run to the master's first advert with priority 50;
* ``took_over``: that failing run to the backup's first advert (r2, priority 100).

Both daemons run the check every second (keepalived's usual ``interval 1``).
freevrrpd sends the lowered priority at once and its backup takes over after
Skew_Time (RFC 5798 6.4.2, as for a resignation); the figure says what
keepalived does with the same configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from lab import Host, Lab, LabError
from lab.keepalived import Keepalived, KeepalivedInstance, keepalived_conf

from . import peers
from .common import BACKUP_PRIO, MASTER_PRIO, R1_IP, R2_IP, VIP, label, lan_lab, wait_for
from .wire import Advert, PcapTail, from_ip

WEIGHT = -150
CHECK_INTERVAL = 1


@dataclass
class TrackRep:
    failed: float  # the check's failing run (wall clock, written by the script)
    lowered: float | None  # to the master's first lowered advert, seconds
    took_over: float  # to the backup's first advert as master, seconds


@dataclass
class TrackResult:
    impl: str
    version: int
    interval: float
    reps: list[TrackRep] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return label(self.version, self.interval)


def _script(flag: Path, fails: Path) -> str:
    """The check, as a file both daemons run (keepalived runs scripts without a shell)."""
    path = flag.with_name("check.sh")
    path.write_text(f"#!/bin/sh\ntest -e {flag} && exit 0\ndate +%s.%N >> {fails}\nexit 1\n")
    path.chmod(0o755)
    return str(path)


def _start(impl: str, host: Host, prio: int, version: int, interval: float,
           script: str | None) -> None:
    vr = peers.VirtualRouter(1, prio, VIP, version, interval)
    if impl == "freevrrpd":
        conf = peers.freevrrpd_conf([vr])
        if script is not None:
            conf = (f"[CHECK]\nname = chk\nscript = {script}\ninterval = {CHECK_INTERVAL}\n"
                    f"weight = {WEIGHT}\n\n" + conf.rstrip("\n") + "\ntrackscript = chk\n")
        argv = [*host.site.daemon_command, "-F", "-f", "{conf}", "-p", "{pidfile}", "-s",
                "{socket}"]
        host.start_daemon(conf, argv=argv)
        return
    inst = KeepalivedInstance(vrid=1, priority=prio, vips=[VIP], version=version,
                              advert_int=interval)
    conf = keepalived_conf(inst, router_id=f"fv-{host.name}")
    if script is not None:
        block = (f'vrrp_script chk {{\n    script "{script}"\n    interval {CHECK_INTERVAL}\n'
                 f"    weight {WEIGHT}\n    fall 1\n    rise 1\n}}\n")
        conf = conf.replace("vrrp_instance", block + "vrrp_instance", 1)
        conf = conf.replace("    virtual_ipaddress {",
                            "    track_script {\n        chk\n    }\n    virtual_ipaddress {")
    Keepalived(host, conf)


def _first(ll_tail: PcapTail, ip: str, after: float, priority: int) -> Advert | None:
    ll_tail.poll()
    found = [a for a in from_ip(ll_tail.adverts, ip, after=after) if a.priority == priority]
    return found[0] if found else None


def run_tracking(impl: str, version: int, interval: float, reps: int) -> TrackResult:
    result = TrackResult(impl, version, interval)
    with Lab() as lab:
        ll = lan_lab(lab)
        flag = Path(lab.site.tmpdir, "healthy")
        fails = Path(lab.site.tmpdir, "fails")
        flag.touch()
        try:
            _start(impl, ll.r2, BACKUP_PRIO, version, interval, None)
            _start(impl, ll.r1, MASTER_PRIO, version, interval, _script(flag, fails))
            settle = 10.0 + 8 * interval
            wait_for(partial(_first, ll.tail, R1_IP, 0.0, MASTER_PRIO), settle, "r1 as master")
            for _ in range(reps):
                time.sleep(CHECK_INTERVAL + 4 * interval)  # steady, and a healthy run or two
                fails.unlink(missing_ok=True)
                removed = time.time()
                flag.unlink()
                took = wait_for(partial(_first, ll.tail, R2_IP, removed, BACKUP_PRIO),
                                CHECK_INTERVAL + 10 * interval + 10.0, "the backup's advert")
                failed = wait_for(lambda: _failed_at(fails), 5.0, "the check's failure")
                low = _first(ll.tail, R1_IP, removed, MASTER_PRIO + WEIGHT)
                result.reps.append(TrackRep(failed, None if low is None else low.time - failed,
                                            took.time - failed))
                healed = time.time()
                flag.touch()
                wait_for(partial(_first, ll.tail, R1_IP, healed, MASTER_PRIO),
                         CHECK_INTERVAL + 10 * interval + 10.0, "r1 to take back over")
        except LabError as exc:
            result.error = str(exc).splitlines()[0]
        finally:
            ll.capture.stop()
    return result


def _failed_at(path: Path) -> float | None:
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None
    return float(words[0]) if words else None
