"""systemd's watchdog (WatchdogSec=, sd_watchdog_enabled(3)): WATCHDOG=1 only while
every virtual router's thread is alive and keeping its timers.

A router's thread says when it waits and when it is busy (``vrid.transmitter.Lease``):
the same test that stops the transmitter advertising a stuck router (busy, or
overdue in a wait, for longer than its lease) keeps the watchdog from being fed,
so systemd restarts a daemon with a hung or dead router thread.
"""

from __future__ import annotations

import os


def interval(environ: dict[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 (half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises), or None when systemd asks for none or asks another process."""
    env = os.environ if environ is None else environ
    usec, owner = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2e6
