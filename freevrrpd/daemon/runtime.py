"""Runtime control without a reload: ``freevrrpctl demote`` and ``promote``.

For maintenance an operator lowers a router's priority, or makes it not
eligible, until undone or until the daemon restarts (keepalived has nothing
alike, ucarp a signal).  The router's own thread applies it (``Router.demote``):
its next advert carries the new priority at once.  Who asked is logged (the
control socket's peer uid).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from freevrrpd.core.tracking import Demotion
from freevrrpd.vrid.worker import VridWorker

log = logging.getLogger("freevrrpd")


def select(workers: Sequence[VridWorker], spec: str) -> list[VridWorker]:
    """The routers ``spec`` names: ``all``, ``VRID``, ``VRID/IF`` or ``VRID/IF/FAMILY``."""
    if spec == "all":
        return list(workers)
    parts = spec.split("/")
    return [w for w in workers
            if [str(w.settings.vrid), w.settings.interface,
                str(w.settings.family)][:len(parts)] == parts]


def demote(workers: Sequence[VridWorker], spec: str, by: int | None, uid: int,
           undo: bool = False) -> dict[str, object]:
    """Demote (``by`` None: not eligible) or, with ``undo``, promote the routers of
    ``spec``; the answer names those whose thread took it."""
    chosen = select(workers, spec)
    if not chosen:
        return {"ok": False, "error": f"no virtual router matches {spec!r} (give VRID, "
                                      "VRID/IF, VRID/IF/FAMILY or all)"}
    what = "promote" if undo else ("demote, not eligible" if by is None else f"demote by {by}")
    log.warning("control socket: uid %d asks: %s %s", uid, what, spec)
    demotion = None if undo else Demotion(by, uid)
    done = [w.settings.name for w in chosen if w.demote(demotion)]
    return {"ok": len(done) == len(chosen), "routers": done}
