"""CPU time and resident memory of processes, from /proc (all threads included)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (the kernel sums its threads into /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def rss_kib(pid: int) -> int:
    """VmRSS of the process, in KiB (0 for a kernel thread or a zombie)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def total_cpu(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def total_rss_kib(pids: Iterable[int]) -> int:
    return sum(rss_kib(p) for p in pids)


def thread_kind(comm: str) -> str:
    """The kind of a freevrrpd thread from its kernel name ("vrid-7-eth0-v4" -> "vrid")."""
    return comm.split("-", 1)[0].split(" ", 1)[0]


def by_thread_kind(pids: Iterable[int]) -> dict[str, tuple[float, int, int]]:
    """CPU seconds, voluntary and involuntary context switches, per thread kind."""
    out: dict[str, tuple[float, int, int]] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                comm = Path(f"{base}/comm").read_text().strip()
                # schedstat: nanoseconds on a CPU, where stat counts 10 ms ticks
                # (too coarse for a hundred threads that each run a little).
                run_ns = int(Path(f"{base}/schedstat").read_text().split()[0])
                status = Path(f"{base}/status").read_text()
            except OSError:
                continue
            cpu = run_ns / 1e9
            counts = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            vol = int(counts.get("voluntary_ctxt_switches", "0"))
            invol = int(counts.get("nonvoluntary_ctxt_switches", "0"))
            c, v, n = out.get(thread_kind(comm), (0.0, 0, 0))
            out[thread_kind(comm)] = (c + cpu, v + vol, n + invol)
    return out


def delta(before: dict[str, tuple[float, int, int]],
          after: dict[str, tuple[float, int, int]]) -> dict[str, tuple[float, int, int]]:
    zero = (0.0, 0, 0)
    return {k: (v[0] - before.get(k, zero)[0], v[1] - before.get(k, zero)[1],
                v[2] - before.get(k, zero)[2]) for k, v in after.items()}
