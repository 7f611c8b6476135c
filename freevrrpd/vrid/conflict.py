"""The address-conflict checker of one virtual router, on the router's own thread.

The core decides when to probe and what an answer means (``core.probing``);
this adapter runs the probe it asks for (``StartProbe``: all addresses in one
window, RFC 5227 2.1.1 / RFC 4862 5.4) and, while master, the claim watcher
that reports any other MAC announcing our addresses.  Both only add
descriptors and a deadline to the router thread's wait: no thread of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from freevrrpd.core.actions import StartProbe
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.net.conflict import ClaimWatcher, Probe
from freevrrpd.net.frames import Claim

Holders = set[tuple[IPAddress, bytes]]


class ConflictGuard:
    def __init__(self, settings: RouterSettings, link_mac: Callable[[str], bytes],
                 log: logging.Logger) -> None:
        self.settings = settings
        self.link_mac = link_mac  # the MAC of a device, for the probe's sender address
        # Ours (the interface's and the virtual MAC): never a holder, never a claimant.
        self.own_macs: frozenset[bytes] = frozenset()
        self.log = log
        self.probe: Probe | None = None
        self.watcher: ClaimWatcher | None = None

    def update_settings(self, settings: RouterSettings) -> None:
        self.settings = settings
        if self.watcher is not None:
            self.watcher.ips = frozenset(settings.ips)

    # ---- the probe ---------------------------------------------------------------------
    def start_probe(self, action: StartProbe, now: float) -> bool:
        """Start the probe; False (logged) when it cannot run at all."""
        s = self.settings
        self.stop_probe()
        devices = {a.ip: a.device or s.interface for a in s.addresses}
        try:
            # Peers' source addresses are on the router's own interface.
            targets = [(dev, self.link_mac(dev), ip)
                       for ip in (*action.addresses, *action.peers)
                       for dev in (devices.get(ip, s.interface),)]
            self.probe = Probe(targets, action.window, now, self.own_macs)
            self.log.debug("%s: probing %s for %.1f s%s", s.name,
                           ", ".join(str(ip) for ip in action.addresses), action.window,
                           f" (and peers {', '.join(map(str, action.peers))})"
                           if action.peers else "")
        except OSError as exc:
            self.log.error("%s: cannot probe %s: %s", s.name,
                           ", ".join(str(ip) for ip in action.addresses), exc)
            return False
        return True

    def filenos(self) -> list[int]:
        fds = [] if self.probe is None else self.probe.filenos()
        if self.watcher is not None:
            fds.append(self.watcher.fileno())
        return fds

    def deadline(self) -> float | None:
        return None if self.probe is None else self.probe.deadline()

    def claims(self, ready: Collection[int]) -> list[Claim]:
        """What the claim watcher saw, when its descriptor is among ``ready``."""
        if self.watcher is not None and self.watcher.fileno() in ready:
            return self.watcher.poll()
        return []

    def progress(self, ready: Collection[int], now: float) -> tuple[bool, Holders | None]:
        """Work on the probe: (over, holders); holders None when it failed (logged)."""
        probe = self.probe
        if probe is None:
            return False, None
        try:
            if any(fd in ready for fd in probe.filenos()):
                probe.on_readable()
            if now < probe.deadline() or not probe.on_timer(now):
                return False, None
        except OSError as exc:
            self.log.error("%s: address probe failed: %s", self.settings.name, exc)
            self.stop_probe()
            return True, None
        self.stop_probe()
        return True, probe.holders

    def stop_probe(self) -> None:
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    # ---- watching while master -------------------------------------------------------------
    def master_started(self) -> None:
        s = self.settings
        if not s.conflict_check or s.owner or self.watcher is not None:
            return
        self.watcher = ClaimWatcher(s.interface, s.family, s.ips, self.own_macs)

    def master_stopped(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None

    def close(self) -> None:
        self.stop_probe()
        self.master_stopped()
