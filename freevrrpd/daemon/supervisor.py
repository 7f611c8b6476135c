"""The set of virtual routers of one daemon: start, status, reload, stop.

Reload compares the new configuration with the running one by identity
(VRID, family, interface) and one diff per router (``core.changes``):
unchanged routers are not touched at all, changed ones take the change on
their own thread with the fewest disruptions, removed ones resign as on
shutdown, new ones start.  A file with any error changes nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import ip_interface
from typing import Literal, TypedDict

from freevrrpd import __version__
from freevrrpd.config import ConfigError, ConfigProblem, load_config
from freevrrpd.core.changes import Change, diff
from freevrrpd.core.settings import RouterKey, RouterSettings
from freevrrpd.core.tracking import TrackKey
from freevrrpd.daemon import acceptmode, runtime
from freevrrpd.daemon.acceptmode import AcceptMode
from freevrrpd.daemon.hostcheck import host_problems
from freevrrpd.daemon.links import LinkMonitor, LinkStatus
from freevrrpd.daemon.process import notify
from freevrrpd.daemon.syncgroups import SyncGroups
from freevrrpd.daemon.tracking import CheckStatus, TrackMonitor
from freevrrpd.net.netlink import Netlink, NetlinkError
from freevrrpd.net.nftables import NftError
from freevrrpd.vrid.addressbook import AddressBook
from freevrrpd.vrid.commands import Command, Control
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.repeats import RepeatsTap
from freevrrpd.vrid.status import RouterStatus
from freevrrpd.vrid.transmitter import Transmitter, lease_for
from freevrrpd.vrid.worker import VridWorker

log = logging.getLogger("freevrrpd")

STOP_TIMEOUT = 10.0  # seconds to wait for a VRID to resign and run its stop hook


class DaemonStatus(TypedDict):
    ok: Literal[True]
    pid: int
    version: str
    config: str
    started: float
    reloads: int
    links: dict[str, LinkStatus]
    checks: dict[str, CheckStatus]
    vrids: list[RouterStatus]


class ReloadRefused(TypedDict):
    ok: Literal[False]
    errors: list[str]


class ReloadDone(TypedDict):
    ok: Literal[True]
    added: list[str]
    removed: list[str]
    restarted: list[str]
    changed: dict[str, list[str]]
    unchanged: int


ReloadResult = ReloadRefused | ReloadDone


@dataclass
class _Plan:
    """What a reload does, router by router."""

    removed: list[VridWorker] = field(default_factory=list)
    restart: list[VridWorker] = field(default_factory=list)
    changes: dict[RouterKey, Change] = field(default_factory=dict)  # kept routers
    fresh: list[RouterSettings] = field(default_factory=list)  # added or restarted


class Supervisor:
    def __init__(self, routers: Sequence[RouterSettings], netlink: Netlink,
                 config_path: str, book: AddressBook | None = None,
                 accept_table: str = "freevrrpd") -> None:
        self.routers = tuple(routers)
        self.netlink = netlink
        self.config_path = config_path
        self.book = book if book is not None else AddressBook(None)
        self.accept = AcceptMode(accept_table, self.book)
        # Shared by every router: the periodic adverts of the masters, and the
        # repeats of their masters' adverts that backups need not see one by one.
        self.transmitter = Transmitter(log)
        self.tap = RepeatsTap(log)
        self.workers: list[VridWorker] = []
        self.monitor: LinkMonitor | None = None
        self.tracker: TrackMonitor | None = None
        self.events = EventBus()  # the ordered stream of freevrrpctl events
        self.groups = SyncGroups(log, self.events)
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.reloads = 0

    # ---- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            self.transmitter.start()
            self.tap.start()
            self._cleanup_unconfigured()
            # The filter before any router may become master (NftError: no start).
            self.accept.sync(self.routers)
            fresh = self._start_routers(self.routers)
        log.info("freevrrpd %s started: %d virtual router(s): %s", __version__,
                 len(fresh), "; ".join(w.settings.name for w in fresh))

    def _start_routers(self, fresh: Sequence[RouterSettings],
                       previous: LinkMonitor | None = None) -> list[VridWorker]:
        """(Re)build the link monitor for the whole set, then start ``fresh`` routers
        with the faults their links have now."""
        all_routers = [w.settings for w in self.workers] + list(fresh)
        monitor = LinkMonitor(all_routers, self._deliver, log)
        faults = monitor.initial({s.key for s in fresh})
        old_tracker = self.tracker
        tracker = self.tracker = TrackMonitor(all_routers, self._deliver, log, old_tracker,
                                              self.events)
        if old_tracker is not None:
            old_tracker.stop()
        workers = [self._new_worker(s, faults.get(s.key, ()),
                                    {**monitor.track_values(s), **tracker.values(s)})
                   for s in fresh]
        if previous is not None:
            monitor.carry_over(previous, [s.key for s in fresh])
        self.monitor = monitor
        monitor.start()
        tracker.start()
        self.groups.bind(self.workers)
        for w in self.workers:
            w.group = self.groups.report if w.settings.sync_group is not None else None
        if previous is not None:  # a reload: what kept routers track may be new to them
            monitor.resend()
            tracker.resend()
        for w in workers:
            w.start()
        return workers

    def _cleanup_unconfigured(self) -> None:
        """Addresses an earlier run added for routers that are no longer configured."""
        configured = {(a.device or s.interface, str(a.interface))
                      for s in self.routers for a in s.addresses}
        for dev, text in sorted(self.book.left - configured):
            if dev == acceptmode.BOOK_DEVICE:
                continue  # not an address: AcceptMode.sync decides about the table
            try:
                self.netlink.del_address(dev, ip_interface(text))
                log.warning("cleaned up after an earlier run: removed virtual address %s "
                            "from %s", text, dev)
            except (NetlinkError, ValueError) as exc:
                log.warning("could not remove %s from %s, left by an earlier run: %s",
                            text, dev, exc)
            self.book.removed([(dev, text)])

    def _new_worker(self, s: RouterSettings, faults: Collection[str],
                    tracks: dict[TrackKey, int]) -> VridWorker:
        # Remove what a kill -9 of an earlier run left behind, before claiming
        # anything: its virtual-MAC interfaces, and the addresses it recorded (never
        # one the host had of its own).
        vips = [(a.device or s.interface, a.interface) for a in s.addresses
                if (a.device or s.interface, str(a.interface)) in self.book.left]
        for line in self.netlink.cleanup_stale(s.interface, s.vrid, s.family, vips):
            log.warning("%s: cleaned up after an earlier run: %s", s.name, line)
        self.book.removed((dev, str(iface)) for dev, iface in vips)
        # A unicast router sends and hears its own adverts: the shared transmitter
        # and the repeats tap work on multicast frames (net.unicast says why).
        multicast = not s.unicast
        worker = VridWorker(s, self.netlink, log, self.book, faults,
                            transmitter=self.transmitter if multicast else None,
                            tap=self.tap if multicast else None, tracks=tracks,
                            events=self.events)
        self.workers.append(worker)
        return worker

    def _deliver(self, key: RouterKey, command: Command) -> None:
        """From the link monitor's thread: to the router's own thread."""
        for w in self.workers:
            if w.settings.key == key:
                w.post(command)

    def _stop_workers(self, workers: Sequence[VridWorker]) -> None:
        for w in workers:
            if w.is_alive():
                w.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for w in workers:
            if not w.is_alive() and not w.stopped.is_set():
                w.close_unstarted()
                continue
            w.stopped.wait(max(0.0, deadline - time.monotonic()))
            if not w.stopped.is_set():
                log.error("%s: did not stop within %.0f s", w.settings.name, STOP_TIMEOUT)

    def stop(self) -> None:
        with self.lock:
            # Resign first: backups take over after Skew_Time (RFC 5798 6.4.3).
            # Every router's thread sends its priority-0 advert and hands its
            # removals over; they are done together once all have resigned.
            self.netlink.defer_deletes()
            self._stop_workers(self.workers)
            try:
                failed = self.netlink.flush_deletes()
            except NetlinkError as exc:
                log.error("%s", exc)
                failed = []
            for link, iface, why in failed:
                log.error("cannot remove %s from %s: %s", iface, link, why)
                self.book.added(link, str(iface))  # still there: the next start removes it
            self.accept.close()
            if self.monitor is not None:
                self.monitor.stop()
                self.monitor = None
            if self.tracker is not None:
                self.tracker.stop()
            self.groups.close()
            self.events.close()
            self.transmitter.stop()
            self.tap.stop()

    # ---- status ----------------------------------------------------------------------
    def dump(self) -> None:
        for w in self.workers:
            w.post(Control.DUMP)
        for name, link in self._links().items():
            log.info("link %s: %s, errors %d", name, "up" if link["up"] else "down",
                     link["errors"])

    def _links(self) -> dict[str, LinkStatus]:
        return {} if self.monitor is None else self.monitor.links()

    def stuck(self, now: float) -> list[str]:
        """Routers whose thread died, or has been busy or overdue for longer than its
        lease (``vrid.transmitter.lease_for``): what keeps the watchdog unfed."""
        with self.lock:
            # A router still in the list has not been asked to stop: stopped means
            # its thread ended on its own (it crashed).
            return [w.settings.name for w in self.workers
                    if w.stopped.is_set()
                    or not w.sharing.lease.holds(now, lease_for(w.settings.advert_int))]

    def status(self) -> DaemonStatus:
        with self.lock:
            vrids = [w.status_now() for w in self.workers]
            return {"ok": True, "pid": os.getpid(), "version": __version__,
                    "config": self.config_path, "started": round(self.started_at, 3),
                    "reloads": self.reloads, "links": self._links(),
                    "checks": self.tracker.status() if self.tracker is not None else {},
                    "vrids": vrids}

    # ---- runtime control ---------------------------------------------------------------
    def demote(self, spec: str, by: int | None, uid: int, undo: bool = False) -> dict[str, object]:
        """``freevrrpctl demote`` and ``promote`` (``daemon.runtime``)."""
        with self.lock:
            return runtime.demote(self.workers, spec, by, uid, undo)

    # ---- reload ----------------------------------------------------------------------
    def reload(self) -> ReloadResult:
        """SIGHUP and ``freevrrpctl reload`` alike; systemd hears RELOADING=1 first
        and READY=1 after, whatever the outcome (sd_notify(3), Type=notify-reload)."""
        stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notify(f"RELOADING=1\nMONOTONIC_USEC={stamp}")
        try:
            return self._reload_now()
        finally:
            notify("READY=1")

    def _reload_now(self) -> ReloadResult:
        with self.lock:
            try:
                new = self._read_new()
            except Exception as exc:  # whatever went wrong, the old configuration runs on
                log.exception("reload refused: cannot read or check %s", self.config_path)
                return {"ok": False, "errors": [f"{self.config_path}: cannot read or check "
                                                f"the file: {exc}"]}
            if isinstance(new, list):
                return {"ok": False, "errors": new}
            try:
                self.accept.sync(new)
            except NftError as exc:
                log.error("reload refused: accept = no cannot be enforced: %s", exc)
                return {"ok": False, "errors": [f"{self.config_path}: accept: {exc}"]}
            return self._reload(new)

    def _read_new(self) -> tuple[RouterSettings, ...] | list[str]:
        """The new configuration, or the errors that refuse it (logged)."""
        warnings: list[ConfigProblem] = []
        try:
            new = load_config(self.config_path, warnings)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("reload refused: %s", p)
            log.error("reload refused: %d error(s) in %s; still running the old configuration",
                      len(exc.problems), self.config_path)
            return [str(p) for p in exc.problems]
        for warning in warnings:
            log.warning("reload: %s", warning)
        problems = host_problems(new, self.netlink, self.book)
        for text in problems:
            log.error("reload refused: %s", text)
        return problems or new

    def _plan(self, new: Sequence[RouterSettings]) -> _Plan:
        plan = _Plan()
        wanted = {s.key: s for s in new}
        for w in self.workers:
            s = wanted.get(w.settings.key)
            if s is None:
                log.info("reload: %s removed from the configuration: resigning",
                         w.settings.name)
                plan.removed.append(w)
                continue
            change = diff(w.settings, s)
            if change.restart:
                log.info("reload: %s changed in a way that needs a restart (%s): resigning "
                         "and starting again", s.name, ", ".join(change.fields))
                plan.restart.append(w)
                plan.fresh.append(s)
            else:
                plan.changes[s.key] = change
        running = {w.settings.key for w in self.workers}
        for s in new:
            if s.key not in running:
                log.info("reload: %s added", s.name)
                plan.fresh.append(s)
        # Fresh routers in file order, after the kept ones.
        order = list(wanted)
        plan.fresh.sort(key=lambda s: order.index(s.key))
        return plan

    def _reload(self, new: tuple[RouterSettings, ...]) -> ReloadDone:
        plan = self._plan(new)
        result: ReloadDone = {
            "ok": True, "added": [], "unchanged": 0, "changed": {},
            "removed": [w.settings.name for w in plan.removed],
            "restarted": [w.settings.name for w in plan.restart]}
        gone = plan.removed + plan.restart
        self._stop_workers(gone)
        self.workers = [w for w in self.workers if w not in gone]
        for w in self.workers:
            change = plan.changes[w.settings.key]
            fields = w.call(partial(w.apply_change, change), timeout=5.0)
            if fields is None:
                log.error("reload: %s did not answer; left unchanged", w.settings.name)
            elif fields:
                log.info("reload: %s: changed %s", change.new.name, ", ".join(fields))
                result["changed"][change.new.name] = list(fields)
            else:
                result["unchanged"] += 1
        restarted = {w.settings.key for w in plan.restart}
        result["added"] = [s.name for s in plan.fresh if s.key not in restarted]
        if plan.fresh or gone or result["changed"]:
            # The monitor decides at construction which routers it watches
            # (monitoredcircuits, carriertimeout): rebuild it, keeping its state.
            previous, self.monitor = self.monitor, None
            if previous is not None:
                previous.stop()
            self._start_routers(plan.fresh, previous)
        self.routers = new
        self.reloads += 1
        self.events.publish("reload", None, f"reload: {len(result['added'])} added, "
                            f"{len(result['removed'])} removed, {len(result['restarted'])} "
                            f"restarted, {len(result['changed'])} changed",
                            added=result["added"], removed=result["removed"],
                            restarted=result["restarted"], changed=result["changed"])
        log.info("reload done: %d added, %d removed, %d restarted, %d changed, %d unchanged",
                 len(result["added"]), len(result["removed"]), len(result["restarted"]),
                 len(result["changed"]), result["unchanged"])
        return result
