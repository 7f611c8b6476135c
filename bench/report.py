"""REPORT.md: the figures of one run, side by side, with the targets below (RATIO_TARGETS...)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .busylan import BusyLanResult
from .common import label, median
from .failover import FailoverResult, HandoverResult
from .startup import ElectionResult, StartupResult
from .steady import SteadyResult
from .tracking import TrackResult

# Issue 4, section 3: failover gap / Master_Down_Interval, per advert interval.
RATIO_TARGETS = {1.0: 1.01, 0.1: 1.02, 0.01: 1.10}
JITTER_P99_TARGET_MS = 1.0
# Issue 13: CPU at most 1.0x keepalived's as master, 3x as backup; memory by
# the number of routers; an owner's first advert and SIGTERM-to-exit in time.
CPU_FACTOR_TARGET = {"master": 1.0, "backup": 3.0}
RSS_TARGET_MIB = {1: 30.0, 100: 40.0, 255: 45.0}
STARTUP_TARGET_MS = 100.0
EXIT_TARGET_S = 1.0
# The figures before issue 13 (bench/REPORT.md of that time, and the issue's
# measurements beside keepalived 2.2.7), kept beside each run's.
BEFORE = {
    ("100 VRIDs, VRRPv3 100 ms", "cpu"): "8.4 (7.3x; later 9.4-12.9, 2.3x)",
    ("100 VRIDs, VRRPv3 100 ms", "rss"): "45.4",
    ("255 VRIDs, VRRPv3 1 s", "cpu"): "3.4 (11.3x; later 4.5-5.8, 4.5x)",
    ("255 VRIDs, VRRPv3 1 s", "rss"): "57.5",
    ("255 VRIDs, VRRPv3 1 s", "threads"): "514",
    ("255 VRIDs, VRRPv3 1 s", "exit"): "6.6-9.7 s",
    ("100 VRIDs, VRRPv3 100 ms, as backup", "cpu"): "14.1-15.7 (12-25x)",
    ("startup", "owner"): "336-399 ms (33x)",
}


@dataclass
class Results:
    mode: str
    started: str  # local time, ISO
    seconds: float
    environment: dict[str, str]
    failover: list[FailoverResult]
    handover: list[HandoverResult]
    steady: list[SteadyResult]
    startup: list[StartupResult]
    elections: list[ElectionResult] = field(default_factory=list)
    busy: list[BusyLanResult] = field(default_factory=list)
    tracking: list[TrackResult] = field(default_factory=list)


def _f(value: float | None, fmt: str = ".3f", scale: float = 1.0) -> str:
    if value is None or math.isnan(value):
        return "—"
    return format(value * scale, fmt)


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or math.isnan(ours) or math.isnan(theirs) or not theirs:
        return "—"
    return f"{ours / theirs:.2f}"


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def _by_impl(items: Sequence[object], impl: str) -> object | None:
    return next((i for i in items if getattr(i, "impl", None) == impl), None)


class _Table:
    def __init__(self, *header: str) -> None:
        self.lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(self, *cells: str) -> None:
        self.lines.append("| " + " | ".join(cells) + " |")

    def text(self) -> str:
        return "\n".join(self.lines)


def _errors(results: Results) -> list[str]:
    out = []
    for group in (results.failover, results.handover, results.steady, results.startup,
                  results.elections, results.tracking):
        for r in group:
            if r.error:
                out.append(f"- {r.impl}, {type(r).__name__}: {r.error}")
    return out


def _failover_pairs(results: Results) -> list[tuple[FailoverResult, FailoverResult | None]]:
    pairs = []
    for fv in (r for r in results.failover if r.impl == "freevrrpd"):
        ka = next((r for r in results.failover if r.impl == "keepalived"
                   and r.version == fv.version and r.interval == fv.interval
                   and r.unicast == fv.unicast), None)
        pairs.append((fv, ka))
    return pairs


def _fo_stats(r: FailoverResult | None) -> tuple[float, float, float, float]:
    """(median ratio, max ratio, median outage, max outage)."""
    if r is None or not r.reps:
        return (math.nan,) * 4
    ratios = [x.ratio for x in r.reps]
    outages = [x.outage for x in r.reps if x.outage is not None]
    return (median(ratios), max(ratios), median(outages) if outages else math.nan,
            max(outages) if outages else math.nan)


def summary(results: Results) -> str:
    t = _Table("measure", "freevrrpd", "keepalived", "freevrrpd / keepalived", "target",
               "freevrrpd vs target", "freevrrpd before issue 13")
    for fv, ka in _failover_pairs(results):
        case = label(fv.version, fv.interval, fv.unicast)
        f, k = _fo_stats(fv), _fo_stats(ka)
        target = RATIO_TARGETS.get(fv.interval)
        ok = None if target is None or math.isnan(f[1]) else f[1] <= target
        t.row(f"failover {case}: gap / Master_Down_Interval, median (max)",
              f"{_f(f[0], '.4f')} ({_f(f[1], '.4f')})", f"{_f(k[0], '.4f')} ({_f(k[1], '.4f')})",
              _ratio(f[0], k[0]), f"max <= {target}" if target else "—", _verdict(ok), "—")
        t.row(f"failover {case}: client ping outage, median (max) ms",
              f"{_f(f[2], '.0f', 1000)} ({_f(f[3], '.0f', 1000)})",
              f"{_f(k[2], '.0f', 1000)} ({_f(k[3], '.0f', 1000)})", _ratio(f[2], k[2]), "—", "—",
              "—")
    for fv_h in (r for r in results.handover if r.impl == "freevrrpd"):
        ka_h = next((r for r in results.handover if r.impl == "keepalived"
                     and r.interval == fv_h.interval and r.version == fv_h.version), None)
        fm = median([x.delay for x in fv_h.reps])
        km = median([x.delay for x in ka_h.reps]) if ka_h else math.nan
        t.row(f"hand-over {label(fv_h.version, fv_h.interval)} (SIGTERM): priority-0 advert "
              f"to backup's first advert, median ms (Skew_Time {1000 * fv_h.skew:.1f} ms)",
              _f(fm, ".1f", 1000), _f(km, ".1f", 1000), _ratio(fm, km), "—", "—", "—")
    for fv_s in (r for r in results.steady if r.impl == "freevrrpd"):
        ka_s = next((r for r in results.steady if r.impl == "keepalived"
                     and r.label == fv_s.label), None)
        _steady_rows(t, fv_s, ka_s if ka_s is not None and not ka_s.error else None)
    fv_u = _by_impl(results.startup, "freevrrpd")
    ka_u = _by_impl(results.startup, "keepalived")
    fu = median(fv_u.times) if isinstance(fv_u, StartupResult) else math.nan
    ku = median(ka_u.times) if isinstance(ka_u, StartupResult) else math.nan
    t.row("start-up: launch to first advert (owner, priority 255), median ms",
          _f(fu, ".0f", 1000), _f(ku, ".0f", 1000), _ratio(fu, ku),
          f"<= {STARTUP_TARGET_MS:g} ms", _verdict(None if math.isnan(fu) else
                                                  1000 * fu <= STARTUP_TARGET_MS),
          BEFORE[("startup", "owner")])
    for fv_t in (r for r in results.tracking if r.impl == "freevrrpd"):
        ka_t = next((r for r in results.tracking if r.impl == "keepalived"
                     and r.label == fv_t.label), None)
        for what in ("backup's first advert as master", "master's first lowered advert"):
            tf, tk = _track_ms(fv_t, what), _track_ms(ka_t, what)
            t.row(f"track script fails on the master ({fv_t.label}, check every 1 s, fall 1, "
                  f"weight -150): failing run to the {what}, median (max) ms",
                  f"{_f(tf[0], '.0f', 1000)} ({_f(tf[1], '.0f', 1000)})",
                  f"{_f(tk[0], '.0f', 1000)} ({_f(tk[1], '.0f', 1000)})",
                  _ratio(tf[0], tk[0]), "—", "—", "—")
    for b in results.busy:
        t.row(f"unicast backup on a busy LAN ({b.rate:g} flooded adverts/s between other "
              f"routers of the VRID, 10/s from its master): frames/s that wake its thread, "
              f"with the unicast filter (without it)",
              f"{b.with_filter:.1f} ({b.without_filter:.1f})" if not b.error else "—",
              "—", "—", "—", "—", "—")
    return t.text()


def _track_ms(r: TrackResult | None, what: str) -> tuple[float, float]:
    """Median and max seconds of a track-script case (NaN when it has none)."""
    values: list[float] = []
    for rep in r.reps if r is not None else []:
        v = rep.took_over if what.startswith("backup") else rep.lowered
        if v is not None:
            values.append(v)
    return median(values), max(values, default=math.nan)


def _steady_rows(t: _Table, fv: SteadyResult, ka: SteadyResult | None) -> None:
    case, bad = fv.label, fv.error is not None

    def row(what: str, ours: float, theirs: float, fmt: str, target: str,
            ok: bool | None, key: str) -> None:
        t.row(f"{case}: {what}", _f(None if bad else ours, fmt), _f(theirs, fmt),
              _ratio(ours, theirs), target, _verdict(None if bad else ok),
              BEFORE.get((case, key), "—"))

    nan = math.nan
    kcpu = ka.cpu_percent if ka else nan
    factor = CPU_FACTOR_TARGET.get(fv.role)
    row("CPU % of one core", fv.cpu_percent, kcpu, ".2f",
        f"<= {factor:g} x keepalived" if factor else "—",
        None if factor is None or math.isnan(kcpu) else fv.cpu_percent <= factor * kcpu, "cpu")
    limit = RSS_TARGET_MIB.get(fv.vrids) if fv.role == "master" else None
    row("resident memory MiB", fv.rss_mib, ka.rss_mib if ka else nan, ".1f",
        f"<= {limit:g} MiB" if limit else "—", None if limit is None else fv.rss_mib <= limit,
        "rss")
    row("threads", fv.threads, ka.threads if ka else nan, ".0f", "—", None, "threads")
    if fv.role == "master":
        row("advert jitter p99 ms", fv.jitter_p99_ms, ka.jitter_p99_ms if ka else nan, ".3f",
            f"<= {JITTER_P99_TARGET_MS:g} ms", fv.jitter_p99_ms <= JITTER_P99_TARGET_MS,
            "jitter")
        row("launch until every VRID advertised, s", fv.startup_all_s,
            ka.startup_all_s if ka else nan, ".2f", "—", None, "startup")
        row("worst start-up gap after a first advert, ms over the interval",
            fv.startup_gap_max_ms, ka.startup_gap_max_ms if ka else nan, ".1f", "—", None,
            "gap")
    else:
        row("VRIDs the backup advertised during the window", fv.takeovers,
            ka.takeovers if ka else nan, ".0f", "0", fv.takeovers == 0, "takeovers")
    row("SIGTERM to exit, s", fv.exit_s, ka.exit_s if ka else nan, ".2f",
        f"<= {EXIT_TARGET_S:g} s" if fv.vrids >= 255 else "—",
        fv.exit_s <= EXIT_TARGET_S if fv.vrids >= 255 else None, "exit")


def _failover_details(results: Results) -> str:
    t = _Table("daemon", "case", "rep", "gap ms", "theory ms", "ratio", "ping outage ms")
    for r in results.failover:
        for n, rep in enumerate(r.reps, 1):
            t.row(r.impl, label(r.version, r.interval, r.unicast), str(n),
                  _f(rep.gap, ".2f", 1000),
                  _f(r.theory, ".2f", 1000), _f(rep.ratio, ".4f"), _f(rep.outage, ".1f", 1000))
    return t.text()


def _handover_details(results: Results) -> str:
    t = _Table("daemon", "case", "Skew_Time ms", "delays ms")
    for r in results.handover:
        t.row(r.impl, label(r.version, r.interval), _f(r.skew, ".1f", 1000),
              ", ".join(_f(x.delay, ".1f", 1000) for x in r.reps) or "—")
    return t.text()


def _steady_details(results: Results) -> str:
    t = _Table("daemon", "case", "window s", "CPU %", "RSS MiB", "processes / threads",
               "adverts seen / expected", "jitter median / p99 / max ms",
               "start-up: all advertised s / worst gap ms", "SIGTERM: all resigned ms / exited s")
    for r in results.steady:
        t.row(r.impl, r.label, _f(r.window, ".1f"),
              _f(r.cpu_percent, ".2f"), _f(r.rss_mib, ".1f"), f"{r.processes} / {r.threads}",
              f"{r.adverts} / {r.expected}"
              + (f" ({r.capture_drops} lost by tcpdump)" if r.capture_drops else "")
              + (f"; took over {r.takeovers}" if r.role == "backup" else ""),
              f"{_f(r.jitter_median_ms)} / {_f(r.jitter_p99_ms)} / {_f(r.jitter_max_ms)}",
              f"{_f(r.startup_all_s, '.2f')} / {_f(r.startup_gap_max_ms, '.1f')}",
              f"{r.resigned} in {_f(r.resign_s, '.0f', 1000)} / {_f(r.exit_s, '.2f')}")
    return t.text()


def _startup_details(results: Results) -> str:
    t = _Table("daemon", "launch to first advert, ms (each run)")
    for r in results.startup:
        t.row(r.impl, ", ".join(_f(x, ".0f", 1000) for x in r.times) or "—")
    return t.text()


def _election_details(results: Results) -> str:
    t = _Table("daemon", "addresses", "launch to first advert as master, ms (each run)")
    for r in results.elections:
        t.row(r.impl, str(r.addresses), ", ".join(_f(x, ".0f", 1000) for x in r.times) or "—")
    return t.text()


BUSY_LAN = """\
Other routers of the same VRID talk unicast among themselves on the LAN (two
clusters that reused a VRID, another tenant), to a MAC the switch has not
learnt, so the bridge floods their adverts to our port too.  Two capture
sockets in the backup's namespace carry the router's kernel filter, one with
its unicast part (adverts to the group or to our own address only) and one
without it; each frame that passes would wake the router's thread
(`bench/busylan.py`)."""

METHOD = """\
## Method

All figures come from one run of `python -m bench.run` in the namespace lab
(`lab`): each scenario builds fresh namespaces with a Linux bridge as
the switch, runs freevrrpd and then Debian's keepalived with the same virtual
routers, and judges both by what a `tcpdump` on the bridge saw (nanosecond
timestamps).  Both daemons run with like-for-like options: no virtual MAC
(keepalived's default), Accept_Mode on, otherwise each one's defaults
(freevrrpd without `-d`; keepalived `--vrrp --dont-fork` with
`garp_master_delay 0`).

- **Failover**: r1 (priority 200) is master, r2 (priority 100) backup, a client
  pings the virtual address every 10 ms (`ping -i 0.0099`:
  iputils paces `-i 0.01` at about 16 ms here).  r1's bridge port is set to the
  "disabled" state (`Host.isolate()`: a silent cut, carrier stays up).  Gap = r2's
  first advert minus r1's last advert seen by the bridge; theory = r2's
  Master_Down_Interval, `3 * interval + (256 - 100) / 256 s` for VRRPv2 (RFC 3768
  6.1) and `3 * interval + (256 - 100) * interval / 256` for VRRPv3 (RFC 5798
  6.1).  Outage = the longest silence between the client's ping replies from
  just before the cut until the first reply after the new master's first
  advert.  After each run r1 is reconnected, preempts, and the client's ARP
  cache is flushed.
- **Hand-over**: the same pair; r1 gets SIGTERM and resigns with a priority-0
  advert (RFC 5798 6.4.3); delay = r2's first advert minus that advert, against
  r2's Skew_Time.
- **Steady state**: one router is master (priority 100, nobody else on the LAN)
  of N VRIDs, VRID n with virtual address 198.51.100.n/24 (203.0.113.1/24 for
  255).  "As backup": r2 runs keepalived as master of the same VRIDs (priority
  200, for both daemons under test) and the daemon under test is their backup
  (priority 100); it must not advertise.  "4 interfaces x 250": four LANs, one
  per interface of r1 (three IPv4 documentation ranges, then 2001:db8:4::/64
  over VRRPv3 IPv6), VRIDs 1-250 on each.  Start-up: launch until every VRID
  advertised, and the largest gap between consecutive adverts of a VRID after
  its first (a master must advertise every interval from its first advert on),
  over the interval.  After every VRID advertises and a settling time (start-up announcements
  done), CPU = utime + stime of all the daemon's processes and threads
  (/proc/PID/stat) over the window; memory = sum of VmRSS at its end; jitter =
  per VRID, |consecutive advert delta - interval| from the capture, pooled
  (keepalived sends the adverts of all VRIDs in one burst, so a burst on either
  edge of the window moves its count by N).  Then SIGTERM: time until every
  VRID's priority-0 advert was seen and until the daemon exited.
- **Start-up**: a priority-255 owner (keepalived: `state MASTER`) starts as
  master at once (RFC 5798 6.4.1); launch (just before Popen) to the first advert.
- **Track script**: r1 (200) tracks a check of a flag file with weight -150
  (freevrrpd `[CHECK]` + `trackscript`, keepalived `vrrp_script` + `track_script`,
  both every 1 s, fall 1); r2 has 100.  The check writes its own time when it
  fails; from that instant to r1's first advert with priority 50, and to r2's
  first advert as master.  freevrrpd sends the new priority at once and its
  backup takes over Skew_Time after the lower advert; keepalived's backup
  waits for its Master_Down_Interval.
- **First election**: a lone router of priority 100 (VRRPv3, 100 ms) with 1
  or 20 virtual addresses: launch to its first advert as master.  freevrrpd
  first probes the addresses (RFC 5227 2.1.1 / RFC 4862 5.4), all in one 1 s
  window; keepalived does not probe, so it is the floor.

These are benchmarks, not tests: nothing asserts them and `make test` does not
run them.  `python -m bench.run --quick` runs a reduced set (fewer repetitions,
shorter windows, no VRRPv2 1 s failover) in under a minute and writes
bench/out/REPORT-quick.md instead.  Figures move with the load of the machine:
the load average before and after the run is recorded below.
"""


def render(results: Results, picture: str | None) -> str:
    env = "\n".join(f"- {k}: {v}" for k, v in results.environment.items())
    parts = [
        "# freevrrpd vs keepalived: side-by-side benchmark",
        "",
        f"Generated by `python -m bench.run{' --quick' if results.mode == 'quick' else ''}` "
        f"({results.mode} run) on {results.started}, {results.seconds:.0f} s. "
        f"Raw data: bench/out/results{'-quick' if results.mode == 'quick' else ''}.json "
        "(not committed).",
        "",
        "## Summary",
        "",
        summary(results),
        "",
    ]
    errors = _errors(results)
    if errors:
        parts += ["Scenarios that failed in this run:", "", *errors, ""]
    if picture:
        parts += ["## A failover", "", f"![failover timeline]({picture})", "",
                  "Each marker on the first two rows is an advert seen by the switch; "
                  "the third row shows the client's ping replies (every 10 ms). "
                  "The grey band is the backup's theoretical Master_Down_Interval, "
                  "counted from the old master's last advert.", ""]
    parts += [
        "## Failover, every repetition", "", _failover_details(results), "",
        "## Hand-over on SIGTERM", "", _handover_details(results), "",
        "## Steady state", "", _steady_details(results), "",
        "## Start-up", "", _startup_details(results), "",
        "## First election, with many addresses", "", _election_details(results), "",
        "## A unicast backup on a busy LAN", "", BUSY_LAN, "",
        METHOD,
        "## Environment", "", env, "",
    ]
    return "\n".join(parts)
