"""``python -m bench.run [--quick]``: run every scenario for both daemons, write the report.

Needs root (network namespaces).  The full run takes about twelve minutes;
the quick one about two.  Each scenario runs freevrrpd, then keepalived, in
fresh namespaces of the same lab package.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from .busylan import BusyLanResult, run_busy_lan
from .failover import Case, FailoverResult, HandoverResult, run_failover, run_handover
from .peers import IMPLS
from .plot import failover_png
from .report import Results, render
from .startup import ElectionResult, StartupResult, run_election, run_startup
from .steady import SteadyCase, SteadyResult, run_steady
from .tracking import TrackResult, run_tracking

BENCH = Path(__file__).resolve().parent
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Plan:
    failover: tuple[Case, ...]
    handover: tuple[Case, ...]
    steady: tuple[SteadyCase, ...]
    startup_reps: int
    picture_interval: float  # which failover case the picture shows
    elections: tuple[int, ...] = (1, 20)  # address counts of the first-election case
    # (version, advert interval, repetitions) of the track-script case
    tracking: tuple[tuple[int, float, int], ...] = ((3, 1.0, 3), (3, 0.1, 3))


FULL = Plan(
    failover=(Case(2, 1.0, 3), Case(3, 0.1, 5), Case(3, 0.01, 10),
              Case(2, 1.0, 3, unicast=True), Case(3, 0.1, 5, unicast=True)),
    handover=(Case(3, 0.1, 3), Case(2, 1.0, 2)),
    steady=(SteadyCase(1, 3, 0.1, window=10.0, settle=5.0),
            SteadyCase(255, 3, 1.0, window=20.0, settle=10.0),
            SteadyCase(100, 3, 0.1, window=20.0, settle=10.0),
            SteadyCase(100, 3, 0.1, window=20.0, settle=10.0, role="backup"),
            SteadyCase(250, 3, 1.0, window=20.0, settle=15.0, lans=4)),
    startup_reps=5,
    picture_interval=0.1,
)
QUICK = Plan(
    failover=(Case(3, 0.1, 1), Case(3, 0.01, 2), Case(3, 0.1, 1, unicast=True)),
    handover=(Case(3, 0.1, 1),),
    steady=(SteadyCase(100, 3, 0.1, window=3.0, settle=2.0),
            SteadyCase(100, 3, 0.1, window=3.0, settle=2.0, role="backup")),
    startup_reps=3,
    picture_interval=0.1,
    tracking=((3, 0.1, 1),),
)


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _guarded(what: str, fn: Callable[[], R], fallback: Callable[[str], R]) -> R:
    """Run one scenario; an unexpected error becomes that scenario's result, not the end."""
    _say(what)
    try:
        return fn()
    except Exception as exc:  # a benchmark reports what failed and goes on
        _say(f"{what}: {type(exc).__name__}: {exc}")
        return fallback(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _environment() -> dict[str, str]:
    def cmd(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "kernel": platform.release(),
        "CPU": f"{cpu}, {os.cpu_count()} logical CPUs",
        "Python": platform.python_version(),
        "keepalived": cmd(["keepalived", "--version"]),
        "freevrrpd tree": cmd(["git", "-C", str(BENCH.parent), "describe", "--always", "--dirty"]),
        "load average before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _failed_failover(impl: str, case: Case, error: str) -> FailoverResult:
    return FailoverResult(impl, case.version, case.interval, 0.0, error=error,
                          unicast=case.unicast)


def _failed_handover(impl: str, case: Case, error: str) -> HandoverResult:
    return HandoverResult(impl, case.version, case.interval, 0.0, error=error)


def _failed_steady(impl: str, sc: SteadyCase, error: str) -> SteadyResult:
    return SteadyResult(impl, sc.total, sc.version, sc.interval, sc.role, sc.lans, error=error)


def run(plan: Plan, mode: str) -> Results:
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.monotonic()
    env = _environment()
    failover: list[FailoverResult] = []
    handover: list[HandoverResult] = []
    steady: list[SteadyResult] = []
    startup: list[StartupResult] = []
    for case in plan.failover:
        for impl in IMPLS:
            failover.append(_guarded(
                f"failover {case.label} x{case.reps}: {impl}", partial(run_failover, impl, case),
                partial(_failed_failover, impl, case)))
    for case in plan.handover:
        for impl in IMPLS:
            handover.append(_guarded(
                f"hand-over {case.label} x{case.reps}: {impl}",
                partial(run_handover, impl, case), partial(_failed_handover, impl, case)))
    for sc in plan.steady:
        for impl in IMPLS:
            steady.append(_guarded(
                f"steady state {sc.label}: {impl}", partial(run_steady, impl, sc),
                partial(_failed_steady, impl, sc)))
    for impl in IMPLS:
        startup.append(_guarded(
            f"start-up x{plan.startup_reps}: {impl}",
            partial(run_startup, impl, plan.startup_reps), partial(StartupResult, impl, [])))
    elections: list[ElectionResult] = []
    for count in plan.elections:
        for impl in IMPLS:
            elections.append(_guarded(
                f"first election with {count} address(es) x{plan.startup_reps}: {impl}",
                partial(run_election, impl, count, plan.startup_reps),
                partial(ElectionResult, impl, count, [])))
    tracking: list[TrackResult] = []
    for version, interval, reps in plan.tracking:
        for impl in IMPLS:
            tracking.append(_guarded(
                f"track script failure VRRPv{version} {interval:g} s x{reps}: {impl}",
                partial(run_tracking, impl, version, interval, reps),
                partial(TrackResult, impl, version, interval, [])))
    busy = [_guarded("unicast backup on a busy LAN", run_busy_lan,
                     lambda error: BusyLanResult(1000.0, 10.0, error=error))]
    env["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return Results(mode, started, time.monotonic() - t0, env, failover, handover, steady,
                   startup, elections, busy, tracking)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="reduced run (< 1 min); report in bench/out/REPORT-quick.md")
    opts = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    plan, mode = (QUICK, "quick") if opts.quick else (FULL, "full")
    results = run(plan, mode)
    (out / ("results-quick.json" if opts.quick else "results.json")).write_text(
        json.dumps(dataclasses.asdict(results), indent=1, default=str))
    if opts.quick:
        report_path, png_path, png_ref = out / "REPORT-quick.md", out / "failover-quick.png", \
            "failover-quick.png"
    else:
        report_path, png_path, png_ref = BENCH / "REPORT.md", BENCH / "failover.png", \
            "failover.png"
    shown = [r for r in results.failover
             if r.interval == plan.picture_interval and not r.unicast]
    picture = png_ref if failover_png(shown, str(png_path)) else None
    if picture is None:
        _say("no picture: matplotlib missing or no failover succeeded")
    text = render(results, picture)
    report_path.write_text(text)
    print(text)
    _say(f"report written to {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
