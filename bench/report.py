"""REPORT.md: the figures of one run, side by side, with the targets below (RATIO_TARGETS...)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .common import label, median
from .failover import FailoverResult, HandoverResult
from .steady import ElectionResult, StartupResult, SteadyResult

# Issue 4, section 3: failover gap / Master_Down_Interval, per advert interval.
RATIO_TARGETS = {1.0: 1.01, 0.1: 1.02, 0.01: 1.10}
JITTER_P99_TARGET_MS = 1.0
CPU_FACTOR_TARGET = 2.0
RSS_TARGET_MIB = 40.0


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
                  results.elections):
        for r in group:
            if r.error:
                out.append(f"- {r.impl}, {type(r).__name__}: {r.error}")
    return out


def _failover_pairs(results: Results) -> list[tuple[FailoverResult, FailoverResult | None]]:
    pairs = []
    for fv in (r for r in results.failover if r.impl == "freevrrpd"):
        ka = next((r for r in results.failover if r.impl == "keepalived"
                   and r.version == fv.version and r.interval == fv.interval), None)
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
               "freevrrpd vs target")
    for fv, ka in _failover_pairs(results):
        case = label(fv.version, fv.interval)
        f, k = _fo_stats(fv), _fo_stats(ka)
        target = RATIO_TARGETS.get(fv.interval)
        ok = None if target is None or math.isnan(f[1]) else f[1] <= target
        t.row(f"failover {case}: gap / Master_Down_Interval, median (max)",
              f"{_f(f[0], '.4f')} ({_f(f[1], '.4f')})", f"{_f(k[0], '.4f')} ({_f(k[1], '.4f')})",
              _ratio(f[0], k[0]), f"max <= {target}" if target else "—", _verdict(ok))
        t.row(f"failover {case}: client ping outage, median (max) ms",
              f"{_f(f[2], '.0f', 1000)} ({_f(f[3], '.0f', 1000)})",
              f"{_f(k[2], '.0f', 1000)} ({_f(k[3], '.0f', 1000)})", _ratio(f[2], k[2]), "—", "—")
    for fv_h in (r for r in results.handover if r.impl == "freevrrpd"):
        ka_h = next((r for r in results.handover if r.impl == "keepalived"
                     and r.interval == fv_h.interval and r.version == fv_h.version), None)
        fm = median([x.delay for x in fv_h.reps])
        km = median([x.delay for x in ka_h.reps]) if ka_h else math.nan
        t.row(f"hand-over {label(fv_h.version, fv_h.interval)} (SIGTERM): priority-0 advert "
              f"to backup's first advert, median ms (Skew_Time {1000 * fv_h.skew:.1f} ms)",
              _f(fm, ".1f", 1000), _f(km, ".1f", 1000), _ratio(fm, km), "—", "—")
    for fv_s in (r for r in results.steady if r.impl == "freevrrpd"):
        ka_s = next((r for r in results.steady if r.impl == "keepalived"
                     and r.vrids == fv_s.vrids and r.interval == fv_s.interval), None)
        case = f"{fv_s.vrids} VRIDs, {label(fv_s.version, fv_s.interval)}"
        bad = fv_s.error is not None
        kcpu = ka_s.cpu_percent if ka_s and not ka_s.error else math.nan
        cpu_ok = None if bad or math.isnan(kcpu) else (
            fv_s.cpu_percent <= CPU_FACTOR_TARGET * kcpu)
        t.row(f"steady {case}: CPU % of one core", _f(None if bad else fv_s.cpu_percent, ".2f"),
              _f(kcpu, ".2f"), _ratio(fv_s.cpu_percent, kcpu),
              f"<= {CPU_FACTOR_TARGET:g} x keepalived", _verdict(cpu_ok))
        krss = ka_s.rss_mib if ka_s and not ka_s.error else math.nan
        t.row(f"steady {case}: resident memory MiB", _f(None if bad else fv_s.rss_mib, ".1f"),
              _f(krss, ".1f"), _ratio(fv_s.rss_mib, krss), f"<= {RSS_TARGET_MIB:g} MiB",
              _verdict(None if bad else fv_s.rss_mib <= RSS_TARGET_MIB))
        kj = ka_s.jitter_p99_ms if ka_s and not ka_s.error else math.nan
        km = ka_s.jitter_median_ms if ka_s and not ka_s.error else math.nan
        t.row(f"steady {case}: advert jitter median / p99 ms",
              "—" if bad else f"{fv_s.jitter_median_ms:.3f} / {fv_s.jitter_p99_ms:.3f}",
              f"{_f(km)} / {_f(kj)}", _ratio(fv_s.jitter_p99_ms, kj) + " (p99)",
              f"p99 <= {JITTER_P99_TARGET_MS:g} ms",
              _verdict(None if bad else fv_s.jitter_p99_ms <= JITTER_P99_TARGET_MS))
    fv_u = _by_impl(results.startup, "freevrrpd")
    ka_u = _by_impl(results.startup, "keepalived")
    fu = median(fv_u.times) if isinstance(fv_u, StartupResult) else math.nan
    ku = median(ka_u.times) if isinstance(ka_u, StartupResult) else math.nan
    t.row("start-up: launch to first advert (owner, priority 255), median ms",
          _f(fu, ".0f", 1000), _f(ku, ".0f", 1000), _ratio(fu, ku), "—", "—")
    return t.text()


def _failover_details(results: Results) -> str:
    t = _Table("daemon", "case", "rep", "gap ms", "theory ms", "ratio", "ping outage ms")
    for r in results.failover:
        for n, rep in enumerate(r.reps, 1):
            t.row(r.impl, label(r.version, r.interval), str(n), _f(rep.gap, ".2f", 1000),
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
               "SIGTERM: all resigned ms / exited s")
    for r in results.steady:
        t.row(r.impl, f"{r.vrids} VRIDs, {label(r.version, r.interval)}", _f(r.window, ".1f"),
              _f(r.cpu_percent, ".2f"), _f(r.rss_mib, ".1f"), f"{r.processes} / {r.threads}",
              f"{r.adverts} / {r.expected}"
              + (f" ({r.capture_drops} lost by tcpdump)" if r.capture_drops else ""),
              f"{r.jitter_median_ms:.3f} / {r.jitter_p99_ms:.3f} / {r.jitter_max_ms:.3f}",
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
  255).  After every VRID advertises and a settling time (start-up announcements
  done), CPU = utime + stime of all the daemon's processes and threads
  (/proc/PID/stat) over the window; memory = sum of VmRSS at its end; jitter =
  per VRID, |consecutive advert delta - interval| from the capture, pooled
  (keepalived sends the adverts of all VRIDs in one burst, so a burst on either
  edge of the window moves its count by N).  Then SIGTERM: time until every
  VRID's priority-0 advert was seen and until the daemon exited.
- **Start-up**: a priority-255 owner (keepalived: `state MASTER`) starts as
  master at once (RFC 5798 6.4.1); launch (just before Popen) to the first advert.
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
        METHOD,
        "## Environment", "", env, "",
    ]
    return "\n".join(parts)
