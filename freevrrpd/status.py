"""Status of a virtual router as plain data: for freevrrpctl, SIGUSR1 and metrics.

The field names are a stable interface (documented in docs/STATUS.md): add
fields, never rename or remove them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from freevrrpd.core.actions import State

if TYPE_CHECKING:
    from freevrrpd.worker import VridWorker

STATES = [s.value for s in State]


def _wall(monotonic_at: float | None) -> float | None:
    """A monotonic instant as a Unix time, for people and JSON."""
    if monotonic_at is None:
        return None
    return round(time.time() - (time.monotonic() - monotonic_at), 3)


def snapshot(worker: VridWorker, now: float | None = None) -> dict[str, Any]:
    """Everything an operator asks about one virtual router (call on its thread)."""
    r = worker.router
    s = worker.settings
    last = r.last_transition
    hook = worker.hooks.last()
    eligible = r.state in (State.MASTER, State.BACKUP)
    master: str | None
    if r.state is State.MASTER:
        master = str(r.primary_ip) if r.primary_ip else "self"
    else:
        master = str(r.master_ip) if r.master_ip is not None else None
    return {
        "vrid": s.vrid,
        "interface": s.interface,
        "family": s.family,
        "version": s.version,
        "state": r.state.value,
        "priority": s.priority,
        "effective_priority": r.priority if eligible else 0,
        "master": master,
        "master_priority": r.master_priority if r.state is State.BACKUP else None,
        "is_master": r.state is State.MASTER,
        "primary_address": str(r.primary_ip) if r.primary_ip else None,
        "addresses": [str(a) for a in s.addresses],
        "advert_interval": s.advert_int,
        "master_down_interval": round(r.master_down_interval, 6),
        "use_vmac": s.use_vmac,
        "faults": sorted(r.faults),
        "last_transition": None if last is None else {
            "time": _wall(r.last_transition_at),
            "from": last.old.value,
            "to": last.new.value,
            "reason": last.reason,
        },
        "transitions": r.transitions,
        "adverts_sent": r.sent,
        "adverts_received": r.received,
        "drops": dict(sorted(r.drops.items())),
        "conflicts": worker.conflicts,
        "errors": dict(sorted(worker.errors.items())),
        "hook_failures": worker.errors.get("hook", 0),
        "last_hook": None if hook is None else {
            "kind": hook.kind,
            "command": hook.command,
            "returncode": hook.returncode,
            "duration": round(hook.duration, 3),
            "timed_out": hook.timed_out,
            "error": hook.error,
        },
    }
