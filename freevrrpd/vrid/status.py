"""Status of a virtual router as plain data: for freevrrpctl, SIGUSR1 and metrics.

The field names are a stable interface (docs/STATUS.md, checked against these
types by the tests): add fields, never rename or remove them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TypedDict

from freevrrpd.core.actions import State
from freevrrpd.core.mac import mac_text
from freevrrpd.core.peers import PeerStatus
from freevrrpd.core.router import Router
from freevrrpd.vrid.hooks import HookResult

STATES = [s.value for s in State]
# Nested records of RouterStatus; functional form, as "from" is a Python keyword.
TransitionStatus = TypedDict("TransitionStatus", {"time": float | None, "from": str,
                                                  "to": str, "reason": str})
class HookStatus(TypedDict):
    """HookResult's fields but its output (the log has that)."""

    kind: str
    command: str
    duration: float
    timed_out: bool
    returncode: int | None
    error: str | None


class TrackStatus(TypedDict):
    kind: str  # script, interface or file
    name: str
    weight: int
    value: int  # 1/0 healthy/failing (up/down), or the file's number
    healthy: bool
    adds: int  # what it adds to the priority now


class DemotionStatus(TypedDict):
    by: int | None  # None: not eligible
    uid: int


class RouterStatus(TypedDict):
    vrid: int
    interface: str
    family: int
    version: int
    state: str
    priority: int
    effective_priority: int
    master: str | None
    master_priority: int | None
    is_master: bool
    primary_address: str | None
    addresses: list[str]
    advert_interval: float
    master_down_interval: float
    use_vmac: bool
    transport: str
    unicast_peers: list[str]
    faults: list[str]
    last_transition: TransitionStatus | None
    transitions: int
    adverts_sent: int
    adverts_received: int
    drops: dict[str, int]
    conflicts: int
    errors: dict[str, int]
    hook_failures: int
    last_hook: HookStatus | None
    tracks: list[TrackStatus]
    demoted: DemotionStatus | None
    sync_group: str | None
    preempt_held: str | None
    peers: list[PeerStatus]


def wall_time(monotonic_at: float | None) -> float | None:
    """A monotonic instant as a Unix time, for people and JSON."""
    if monotonic_at is None:
        return None
    return round(time.time() - (time.monotonic() - monotonic_at), 3)


def hook_status(hook: HookResult | None) -> HookStatus | None:
    if hook is None:
        return None
    return {"kind": hook.kind, "command": hook.command, "returncode": hook.returncode,
            "duration": round(hook.duration, 3), "timed_out": hook.timed_out,
            "error": hook.error}


def snapshot(router: Router, errors: Mapping[str, int], last_hook: HookResult | None,
             periodic_sent: int = 0) -> RouterStatus:
    """Everything an operator asks about one virtual router (call on its thread);
    ``periodic_sent``: the adverts the shared transmitter sent for it."""
    r, s = router, router.settings
    last = r.last_transition
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
        "transport": "unicast" if s.unicast else "multicast",
        "unicast_peers": [str(p) for p in s.unicast_peers],
        "faults": sorted(r.faults),
        "last_transition": None if last is None else {
            "time": wall_time(r.last_transition_at),
            "from": last.old.value,
            "to": last.new.value,
            "reason": last.reason,
        },
        "transitions": r.transitions,
        "adverts_sent": r.sent + periodic_sent,
        "adverts_received": r.received,
        "drops": dict(sorted(r.drops.items())),
        "conflicts": r.conflicts,
        "errors": dict(sorted(errors.items())),
        "hook_failures": errors.get("hook", 0),
        "last_hook": hook_status(last_hook),
        "tracks": [TrackStatus(**t) for t in r.tracking.describe()],  # type: ignore[typeddict-item]
        "demoted": None if r.tracking.demotion is None else {
            "by": r.tracking.demotion.by, "uid": r.tracking.demotion.uid},
        "sync_group": s.sync_group.name if s.sync_group else None,
        "preempt_held": r.preempt_held,
        "peers": r.peers.status(time.monotonic()),
    }


def describe(name: str, v: RouterStatus, peer_macs: Iterable[bytes]) -> str:
    """One log line with the same facts as ``freevrrpctl status`` (SIGUSR1)."""
    drops = ", ".join(f"{k} {n}" for k, n in v["drops"].items()) or "none"
    last = v["last_transition"]
    why = f"{last['from']}->{last['to']} ({last['reason']})" if last else "none"
    hook = v["last_hook"]
    hook_text = f"{hook['kind']} rc={hook['returncode']} {hook['duration']}s" if hook else "none"
    return (f"{name}: state {v['state']}, priority {v['priority']} "
            f"(effective {v['effective_priority']}), master {v['master'] or 'unknown'}, "
            f"faults [{', '.join(v['faults'])}], sent {v['adverts_sent']}, "
            f"received {v['adverts_received']}, drops {drops}, conflicts {v['conflicts']}, "
            f"errors {sum(v['errors'].values())}, "
            f"peer MACs [{', '.join(mac_text(m) for m in sorted(peer_macs))}], "
            f"last transition {why}, last hook {hook_text}")
