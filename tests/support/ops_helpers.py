"""Helpers for the operations tests (reload, freevrrpctl, metrics): issue 5.

The LAN is the one of ``daemon_helpers``: r1 (192.0.2.1), r2 (192.0.2.2) and a
client on one switch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from freevrrpd.core.timing import master_down_interval
from lab import Daemon

# Any state change of any virtual router, as the worker logs it.
ANY_TRANSITION = r"VRID \d+ on \S+ \(IPv\d\): \S+ -> \S+: "


def rewrite(daemon: Daemon, conf_text: str) -> None:
    """Replace the daemon's configuration file (read again on the next reload)."""
    Path(daemon.conf_path).write_text(conf_text)


def reload_done(added: int = 0, removed: int = 0, restarted: int = 0, changed: int = 0,
                unchanged: int = 0) -> str:
    """The log line that ends a successful reload (freevrrpd/supervisor.py)."""
    return (rf"reload done: {added} added, {removed} removed, {restarted} restarted, "
            rf"{changed} changed, {unchanged} unchanged")


def reloaded(added: int = 0, removed: int = 0, restarted: int = 0, changed: int = 0,
             unchanged: int = 0) -> str:
    """What ``freevrrpctl reload`` prints on success."""
    return (f"reloaded: {added} added, {removed} removed, {restarted} restarted, "
            f"{changed} changed, {unchanged} unchanged")


def status(daemon: Daemon) -> dict[str, Any]:
    """``freevrrpctl status --json``, parsed."""
    out = daemon.ctl("status", "--json").stdout
    data: dict[str, Any] = json.loads(out)
    return data


def vrid_status(daemon: Daemon, vrid: int, family: int = 4) -> dict[str, Any]:
    for v in status(daemon)["vrids"]:
        if v["vrid"] == vrid and v["family"] == family:
            found: dict[str, Any] = v
            return found
    raise AssertionError(f"VRID {vrid} (IPv{family}) not in the status of {daemon!r}")


def transitions_since(daemon: Daemon, mark: int) -> list[str]:
    """The state-change lines the daemon logged after ``mark``."""
    text = daemon.log()[mark:]
    return [line for line in text.splitlines() if re.search(ANY_TRANSITION, line)]


def mdi(priority: int, advertint: float, version: int = 3) -> float:
    """Master_Down_Interval of a backup (RFC 5798 6.1)."""
    return master_down_interval(version, priority, round(advertint * 100))
