"""Every state change a virtual router may make, in one table (h11's habit).

RFC 5798 6.4 (RFC 3768 6.4) draws Initialize -> Backup | Master, Backup ->
Master, Master -> Backup, and any state -> Initialize on Shutdown.  This daemon
adds two states: FAULT ("not eligible": link down, address conflict, failed
dependency, no source address), which a router leaves only through Initialize,
so that it starts again exactly as at Startup; and STOPPED, the end of a
Shutdown, from which a router may be started again.  ``Router`` checks every
transition against the table: an edge missing from it is a bug of ours, and
raises rather than being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from freevrrpd.core.actions import State

INIT, BACKUP, MASTER, FAULT, STOPPED = (State.INITIALIZE, State.BACKUP, State.MASTER,
                                        State.FAULT, State.STOPPED)

ALLOWED: Mapping[State, frozenset[State]] = {
    # RFC 5798 6.4.1 Startup: an owner becomes master, everyone else backup; a
    # router that is not eligible at start goes to FAULT instead.
    INIT: frozenset({BACKUP, MASTER, FAULT, STOPPED}),
    # 6.4.2: Master_Down_Timer or preemption -> master; Shutdown -> stopped.
    BACKUP: frozenset({MASTER, FAULT, STOPPED}),
    # 6.4.3: a higher-priority advert -> backup; Shutdown -> stopped.
    MASTER: frozenset({BACKUP, FAULT, STOPPED}),
    # The last fault cleared: start again from Initialize (no hook runs).
    FAULT: frozenset({INIT, STOPPED}),
    # Started again after a Shutdown, as from Initialize.
    STOPPED: frozenset({BACKUP, MASTER, FAULT}),
}


class IllegalTransition(RuntimeError):
    """The state machine tried an edge that ``ALLOWED`` does not have (our bug)."""


def check(old: State, new: State) -> None:
    if new not in ALLOWED[old]:
        raise IllegalTransition(f"{old.value} -> {new.value} is not a transition of "
                                "freevrrpd's state machine (freevrrpd/core/states.py)")
