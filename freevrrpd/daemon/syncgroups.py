"""Sync groups: virtual routers (any interface, either family) that move together.

keepalived's vrrp_sync_group, as operators expect it:

* when a member is not eligible for a reason of its own (link down, a check,
  a conflict...), every other member is not eligible either, with the reason
  ``sync group G: <member> not eligible``; when the last such member recovers,
  they all become eligible again.  Only a member's own reasons count, so the
  group cannot hold itself down;
* when a member master loses the election (MASTER -> BACKUP), the other
  members that are master resign and become backup too;
* while a member is backup to a master that outranks it, no other member
  preempts: they would only be pushed back (a flap);
* the group's own scripts run when the group as a whole changes: MASTER (all
  members master), FAULT (any member not eligible), BACKUP (all members
  backup or master, not all master).

Each router's thread shows its router after its events (``report``); when
its view (state, its own faults, whether it is outranked) changed, the group decides
here and asks the other members' threads through their mailboxes, never
waiting for them.  A router's own decisions stay on its own thread.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from freevrrpd.core.actions import Action, State
from freevrrpd.core.linkhold import FaultChange
from freevrrpd.core.router import Router
from freevrrpd.core.settings import RouterKey, RouterSettings, SyncGroup
from freevrrpd.vrid.commands import Command
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.hooks import HookRunner

PREFIX = "sync group "


class Member(Protocol):
    settings: RouterSettings

    def post(self, command: Command) -> None: ...
    def later(self, fn: Callable[[Router, float], list[Action]]) -> None: ...


@dataclass(frozen=True)
class View:
    """What the group needs to know of one member."""

    state: State
    own_faults: frozenset[str]
    outranked: bool  # backup to a master of higher or equal priority


def view_of(router: Router) -> View:
    """On the member's thread."""
    own = frozenset(f for f in router.faults if not f.startswith(PREFIX))
    mp = router.master_priority
    outranked = (router.state is State.BACKUP and mp is not None and mp > 0
                 and mp >= router.priority)
    return View(router.state, own, outranked)


def _step_down(why: str, router: Router, now: float) -> list[Action]:
    return router.step_down(why, now)


def _hold(why: str | None, router: Router, now: float) -> list[Action]:
    return router.hold_preempt(why, now)


def group_state(views: Sequence[View | None]) -> str | None:
    states = [v.state for v in views if v is not None]
    if len(states) < len(views):
        return None
    if any(s is State.FAULT for s in states):
        return "FAULT"
    if all(s is State.MASTER for s in states):
        return "MASTER"
    if all(s in (State.MASTER, State.BACKUP) for s in states):
        return "BACKUP"
    return None


class SyncGroups:
    def __init__(self, log: logging.Logger, events: EventBus | None = None) -> None:
        self.log = log
        self.events = events
        self.lock = threading.Lock()
        self.members: dict[str, list[RouterKey]] = {}
        self.groups: dict[str, SyncGroup] = {}
        self.workers: dict[RouterKey, Member] = {}
        self.views: dict[RouterKey, View] = {}
        self.imposed: dict[RouterKey, set[str]] = {}  # group faults we set on a member
        self.held: dict[RouterKey, str | None] = {}
        self.state: dict[str, str | None] = {}
        self.runners: dict[str, HookRunner] = {}

    def bind(self, workers: Sequence[Member]) -> None:
        """The members to follow: every router with a ``syncgroup`` (again after a reload)."""
        with self.lock:
            self.workers = {w.settings.key: w for w in workers
                            if w.settings.sync_group is not None}
            self.members, self.groups = {}, {}
            for key, w in self.workers.items():
                g = w.settings.sync_group
                assert g is not None
                self.members.setdefault(g.name, []).append(key)
                self.groups[g.name] = g
            self.views = {k: v for k, v in self.views.items() if k in self.workers}
            for name in self.groups:
                if name not in self.runners:
                    self.runners[name] = HookRunner(f"sync group {name}", 30.0, self.log)

    def report(self, key: RouterKey, router: Router) -> None:
        """On a member's thread, after its events: act if its view changed."""
        view = view_of(router)
        with self.lock:
            w = self.workers.get(key)
            old = self.views.get(key)
            if w is None or w.settings.sync_group is None or old == view:
                return
            name = w.settings.sync_group.name
            self.views[key] = view
            members = self.members[name]
            if old is not None and old.state is State.MASTER and view.state is State.BACKUP:
                why = f"{PREFIX}{name}: {w.settings.name} became BACKUP"
                for k in members:
                    if k != key and self._state(k) is State.MASTER:
                        self.workers[k].later(partial(_step_down, why))
            self._faults(name, members)
            self._holds(name, members)
            self._group_changed(name, members)

    def _state(self, key: RouterKey) -> State | None:
        v = self.views.get(key)
        return None if v is None else v.state

    def _faults(self, name: str, members: list[RouterKey]) -> None:
        for k in members:
            want = {f"{PREFIX}{name}: {self.workers[o].settings.name} not eligible"
                    for o in members if o != k and (v := self.views.get(o)) and v.own_faults}
            have = self.imposed.setdefault(k, set())
            for reason in sorted(want - have):
                self.workers[k].post(FaultChange(k, reason, True))
            for reason in sorted(have - want):
                self.workers[k].post(FaultChange(k, reason, False))
            self.imposed[k] = want

    def _holds(self, name: str, members: list[RouterKey]) -> None:
        for k in members:
            by = [self.workers[o].settings.name for o in members
                  if o != k and (v := self.views.get(o)) and v.outranked]
            why = f"{PREFIX}{name}: {by[0]} follows a higher master" if by else None
            if self.held.get(k) != why:
                self.held[k] = why
                self.workers[k].later(partial(_hold, why))

    def _group_changed(self, name: str, members: list[RouterKey]) -> None:
        new = group_state([self.views.get(k) for k in members])
        if new is None or new == self.state.get(name):
            return
        old, self.state[name] = self.state.get(name), new
        names = [self.workers[k].settings.name for k in members]
        text = f"{PREFIX}{name}: {old or 'INIT'} -> {new} ({'; '.join(names)})"
        self.log.info("%s", text)
        if self.events is not None:
            self.events.publish("group", None, text, group=name, old=old, new=new)
        g = self.groups[name]
        env = {"FREEVRRPD_GROUP": name, "FREEVRRPD_GROUP_STATE": new,
               "FREEVRRPD_GROUP_PREVIOUS_STATE": old or "INIT",
               "FREEVRRPD_GROUP_MEMBERS": "; ".join(names)}
        script = {"MASTER": g.masterscript, "BACKUP": g.backupscript,
                  "FAULT": g.faultscript}[new]
        runner = self.runners[name]
        if script:
            runner.submit(new.lower(), script, env)
        if g.notify:
            runner.submit("notify", f"{g.notify} GROUP {shlex.quote(name)} {new}", env)

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()
