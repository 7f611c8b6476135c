"""Monitored circuits as a pure policy: link events and time in, faults out.

``monitoredcircuits = yes`` makes a router not eligible while its interface is
down; so are the VRIDs listed in its ``vridsdep`` (the original's one-way sync
group: when my link fails, these go too).  When the link returns it must stay
up ``carriertimeout`` seconds (against a flapping port) and then
``spanningtreelatency`` more (until a switch port forwards) before the routers
become eligible again.  The original's error counter is kept: a link failure
counts one error, and the counter resets after the link has been up
``MCClearErrorsCount`` seconds (0 = never reset).

``LinkHold`` never reads a clock or a socket: the daemon's link monitor feeds
it the link states it learns from netlink and calls ``handle_timer`` at
``next_deadline()``; the results are ``FaultChange`` records for the routers'
threads and ``Report`` lines for the log.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from freevrrpd.core.actions import Report
from freevrrpd.core.settings import RouterKey, RouterSettings


def link_reason(ifname: str) -> str:
    return f"link {ifname} down"


def dep_reason(vrid: int, ifname: str) -> str:
    return f"dependency: VRID {vrid} lost link {ifname}"


@dataclass(frozen=True)
class FaultChange:
    """Set (``active``) or clear one reason that makes router ``key`` not eligible."""

    key: RouterKey
    reason: str
    active: bool


Output = FaultChange | Report


class LinkHold:
    def __init__(self, routers: Sequence[RouterSettings], up: Mapping[str, bool]) -> None:
        """``up``: whether each interface in ``names_of(routers)`` is usable now."""
        self.routers = tuple(routers)
        self.monitored = tuple(s for s in routers if s.monitored_circuits)
        self.names = names_of(routers)
        self.up: dict[str, bool] = {n: bool(up.get(n, False)) for n in sorted(self.names)}
        self.errors: dict[str, int] = dict.fromkeys(self.names, 0)
        self.up_since: dict[str, float] = {}
        self.pending: dict[RouterKey, float] = {}  # routers whose link came back: when

    # ---- start and reload --------------------------------------------------------
    def initial(self, now: float, fresh: Collection[RouterKey] | None = None
                ) -> tuple[dict[RouterKey, set[str]], list[Report]]:
        """Faults of the routers that have not started yet (``fresh``, default all),
        for links that are down now."""
        keys = {s.key for s in self.routers} if fresh is None else set(fresh)
        faults: dict[RouterKey, set[str]] = {}
        reports = []
        for name, up in self.up.items():
            if up:
                self.up_since[name] = now
                continue
            reports.append(Report("warning", f"link {name} is down at start: its virtual "
                                             "routers are not eligible"))
            for s in self._on(name):
                if s.key in keys:
                    faults.setdefault(s.key, set()).add(link_reason(name))
                for dep in self._deps(s):
                    if dep.key in keys:
                        faults.setdefault(dep.key, set()).add(dep_reason(s.vrid, name))
        return faults, reports

    def carry_over(self, previous: LinkHold, now: float,
                   fresh: Collection[RouterKey] = ()) -> list[Output]:
        """After a reload: keep the error counters and pending returns, and act on
        link changes between the previous policy's last state and now."""
        for name in self.up:
            if name in previous.errors:
                self.errors[name] = previous.errors[name]
            if name in previous.up_since:
                self.up_since[name] = previous.up_since[name]
        kept = {s.key for s in self.monitored} - set(fresh)
        self.pending = {k: t for k, t in previous.pending.items() if k in kept}
        out: list[Output] = []
        for name, up in list(self.up.items()):
            if name in previous.up and previous.up[name] != up:
                self.up[name] = previous.up[name]
                out += self.link_changed(name, up, now)
        return out

    # ---- events ------------------------------------------------------------------
    def link_changed(self, name: str, usable: bool, now: float) -> list[Output]:
        if name not in self.up or self.up[name] == usable:
            return []
        self.up[name] = usable
        out: list[Output] = []
        if not usable:
            self.errors[name] += 1
            self.up_since.pop(name, None)
            out.append(Report("warning", f"link {name} down (error {self.errors[name]}): its "
                                         "virtual routers step down"))
            for s in self._on(name):
                self.pending.pop(s.key, None)
                out.append(FaultChange(s.key, link_reason(name), True))
                for dep in self._deps(s):
                    out.append(Report("warning", f"{dep.name} follows {s.name} (vridsdep)"))
                    out.append(FaultChange(dep.key, dep_reason(s.vrid, name), True))
            return out
        self.up_since[name] = now
        for s in self._on(name):
            hold = s.carrier_timeout + s.spanning_tree_latency
            out.append(Report("info", f"link {name} up: {s.name} eligible again in {hold:.1f} s "
                                      f"(carriertimeout {s.carrier_timeout:g} s + "
                                      f"spanningtreelatency {s.spanning_tree_latency:g} s)"))
            self.pending[s.key] = now + hold
        return out + self.handle_timer(now)

    def next_deadline(self) -> float | None:
        times = list(self.pending.values())
        for name, since in self.up_since.items():
            limit = self._clear_after(name)
            if limit > 0 and self.errors.get(name):
                times.append(since + limit)
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Output]:
        out: list[Output] = []
        by_key = {s.key: s for s in self.monitored}
        for key, when in list(self.pending.items()):
            if now >= when:
                del self.pending[key]
                s = by_key[key]
                out.append(FaultChange(key, link_reason(s.interface), False))
                for dep in self._deps(s):
                    out.append(FaultChange(dep.key, dep_reason(s.vrid, s.interface), False))
        for name, since in self.up_since.items():
            limit = self._clear_after(name)
            if limit > 0 and self.errors.get(name) and now - since >= limit:
                out.append(Report("info", f"link {name}: error counter reset after {limit} s up"))
                self.errors[name] = 0
        return out

    # ---- helpers -----------------------------------------------------------------
    def _on(self, name: str) -> list[RouterSettings]:
        return [s for s in self.monitored if s.interface == name]

    def _deps(self, s: RouterSettings) -> list[RouterSettings]:
        wanted = set(s.vrids_dep)
        return [d for d in self.routers if d.vrid in wanted and d.key != s.key]

    def _clear_after(self, name: str) -> int:
        limits = [s.mc_clear_errors_count for s in self._on(name)]
        return min(limits) if limits else 0


def names_of(routers: Sequence[RouterSettings]) -> frozenset[str]:
    """The interfaces that monitored circuits watch."""
    return frozenset(s.interface for s in routers if s.monitored_circuits)
