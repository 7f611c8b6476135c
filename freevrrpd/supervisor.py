"""The set of virtual routers of one daemon: start, status, reload, stop.

Reload compares the new configuration with the running one by identity
(VRID, family, interface): unchanged routers are not touched at all, changed
ones take the change on their own thread with the fewest disruptions,
removed ones resign as on shutdown, new ones start.  A file with any error
changes nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from freevrrpd import __version__
from freevrrpd.circuits import CircuitMonitor
from freevrrpd.config import ConfigError, ConfigProblem, load_config
from freevrrpd.core.settings import RouterSettings
from freevrrpd.net.netlink import Netlink
from freevrrpd.status import snapshot
from freevrrpd.worker import VridWorker

log = logging.getLogger("freevrrpd")

STOP_TIMEOUT = 10.0  # seconds to wait for a VRID to resign and run its stop hook


def check_interfaces(routers: Sequence[RouterSettings], netlink: Netlink) -> list[str]:
    problems = []
    for s in routers:
        names = [("interface", s.interface)]
        names += [("addr", a.device) for a in s.addresses if a.device]
        for keyword, name in names:
            if netlink.ifindex(name) is None:
                problems.append(f"{s.source.at(keyword)}: {keyword}: {s.name}: "
                                f"interface {name} does not exist")
    return problems


def _snap(worker: VridWorker, now: float) -> dict[str, Any]:
    return snapshot(worker)


def needs_restart(old: RouterSettings, new: RouterSettings) -> bool:
    """Changes that move addresses between interfaces or change the protocol version:
    the router resigns and starts again (the only reload that disrupts)."""
    devices = {a.device for a in old.addresses} != {a.device for a in new.addresses}
    return old.use_vmac != new.use_vmac or old.version != new.version or devices


class Supervisor:
    def __init__(self, routers: Sequence[RouterSettings], netlink: Netlink,
                 config_path: str) -> None:
        self.routers = tuple(routers)
        self.netlink = netlink
        self.config_path = config_path
        self.workers: list[VridWorker] = []
        self.monitor: CircuitMonitor | None = None
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.reloads = 0

    # ---- life cycle ------------------------------------------------------------------
    def _cleanup_stale(self, s: RouterSettings) -> None:
        """Remove what a kill -9 of an earlier run left behind, before claiming anything."""
        vips = [(a.device or s.interface, a.interface) for a in s.addresses]
        for line in self.netlink.cleanup_stale(s.interface, s.vrid, s.family, vips):
            log.warning("%s: cleaned up after an earlier run: %s", s.name, line)

    def _new_worker(self, s: RouterSettings) -> VridWorker:
        self._cleanup_stale(s)
        worker = VridWorker(s, self.netlink, log)
        self.workers.append(worker)
        return worker

    def start(self) -> None:
        with self.lock:
            fresh = [self._new_worker(s) for s in self.routers]
            self._restart_monitor(fresh)
            for w in fresh:
                w.start()
        log.info("freevrrpd %s started: %d virtual router(s): %s", __version__,
                 len(self.workers), "; ".join(w.settings.name for w in self.workers))

    def _restart_monitor(self, fresh: Sequence[VridWorker]) -> None:
        previous = self.monitor
        if previous is not None:
            previous.stop()
        self.monitor = CircuitMonitor(self.workers, log)
        self.monitor.initial_faults(fresh)
        if previous is not None:
            self.monitor.carry_over(previous)
        self.monitor.start()

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
            self._stop_workers(self.workers)
            if self.monitor is not None:
                self.monitor.stop()
                self.monitor = None

    # ---- status ----------------------------------------------------------------------
    def dump(self) -> None:
        for w in self.workers:
            w.post("dump")
        if self.monitor is not None:
            for name, up in sorted(self.monitor.up.items()):
                log.info("link %s: %s, errors %d", name, "up" if up else "down",
                         self.monitor.errors.get(name, 0))

    def status(self) -> dict[str, Any]:
        with self.lock:
            vrids = []
            for w in self.workers:
                snap = w.call(partial(_snap, w), timeout=1.0)
                vrids.append(snap if snap is not None else snapshot(w))
            links = {}
            if self.monitor is not None:
                links = {name: {"up": up, "errors": self.monitor.errors.get(name, 0)}
                         for name, up in sorted(self.monitor.up.items())}
            return {"ok": True, "pid": os.getpid(), "version": __version__,
                    "config": self.config_path, "started": round(self.started_at, 3),
                    "reloads": self.reloads, "links": links, "vrids": vrids}

    # ---- reload ----------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        with self.lock:
            return self._reload()

    def _reload(self) -> dict[str, Any]:
        warnings: list[ConfigProblem] = []
        try:
            new = load_config(self.config_path, warnings)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("reload refused: %s", p)
            log.error("reload refused: %d error(s) in %s; still running the old configuration",
                      len(exc.problems), self.config_path)
            return {"ok": False, "errors": [str(p) for p in exc.problems]}
        for warning in warnings:
            log.warning("reload: %s", warning)
        missing = check_interfaces(new, self.netlink)
        if missing:
            for text in missing:
                log.error("reload refused: %s", text)
            return {"ok": False, "errors": missing}

        running = {w.settings.key: w for w in self.workers}
        wanted = {s.key: s for s in new}
        removed = [w for key, w in running.items() if key not in wanted]
        restart = [w for key, w in running.items()
                   if key in wanted and needs_restart(w.settings, wanted[key])]
        result: dict[str, Any] = {"ok": True, "added": [], "removed": [], "restarted": [],
                                  "changed": {}, "unchanged": 0}
        for w in removed:
            log.info("reload: %s removed from the configuration: resigning", w.settings.name)
            result["removed"].append(w.settings.name)
        for w in restart:
            log.info("reload: %s changed in a way that needs a restart (virtual MAC, version "
                     "or address devices): resigning and starting again", w.settings.name)
            result["restarted"].append(w.settings.name)
        self._stop_workers(removed + restart)
        gone = set(removed + restart)
        self.workers = [w for w in self.workers if w not in gone]

        for w in self.workers:
            s = wanted[w.settings.key]
            changes = w.call(partial(w.apply_settings, s), timeout=5.0)
            if changes is None:
                log.error("reload: %s did not answer; left unchanged", w.settings.name)
            elif changes:
                log.info("reload: %s: changed %s", s.name, ", ".join(changes))
                result["changed"][s.name] = changes
            else:
                result["unchanged"] += 1

        fresh = []
        for key, s in wanted.items():
            if key not in running or running[key] in gone:
                fresh.append(self._new_worker(s))
                if key not in running:
                    log.info("reload: %s added", s.name)
                    result["added"].append(s.name)
        if fresh or gone or result["changed"]:
            # The monitor decides at construction which routers it watches
            # (monitoredcircuits, carriertimeout): rebuild it, keeping its state.
            self._restart_monitor(fresh)
        for w in fresh:
            w.start()
        self.routers = tuple(new)
        self.reloads += 1
        log.info("reload done: %d added, %d removed, %d restarted, %d changed, %d unchanged",
                 len(result["added"]), len(result["removed"]), len(result["restarted"]),
                 len(result["changed"]), result["unchanged"])
        return result
