"""The address-conflict checker of one virtual router.

Before a backup may claim its virtual addresses, a background thread probes
them (RFC 5227 2.1.1 ARP probe, RFC 4862 5.4 duplicate address detection).  A
host that is not a VRRP router of this VRID answering for one of them makes
the router not eligible ("address conflict") until a later probe finds the
address free.  While master, a claim watcher reports any other MAC that
announces one of our addresses.  Probes never run on the router's own thread:
they take about a second and the protocol timers must keep their schedule.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

from freevrrpd.core.actions import State
from freevrrpd.net.conflict import ClaimWatcher, probe
from freevrrpd.net.family import address_family
from freevrrpd.net.frames import mac_str

if TYPE_CHECKING:
    from freevrrpd.worker import VridWorker

CONFLICT = "address conflict"
RECHECK_CONFLICT = 10.0  # seconds between probes while a conflict lasts
RECHECK_OK = 60.0  # seconds between probes while backup and all is well
PROBE_TIME = 1.0  # seconds one probe listens for an answer


class ConflictGuard:
    def __init__(self, worker: VridWorker) -> None:
        self.worker = worker
        self.watcher: ClaimWatcher | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conflict = False
        # Set from the router entering Backup until a probe has run since: the
        # worker holds the backup's timers meanwhile (probe before claiming).
        self.probe_pending = False
        self._kick = threading.Event()
        self._entries = 0  # entries into Backup: a stale "probe done" is ignored

    @property
    def enabled(self) -> bool:
        s = self.worker.settings
        # The address owner (priority 255) owns the addresses by definition.
        return s.conflict_check and not s.owner

    def own_macs(self) -> set[bytes]:
        eff = self.worker.effects
        return {eff.link_mac, eff.vmac}

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"guard-{self.worker.name}")
        self._thread.start()

    def entered_backup(self) -> None:
        """Worker thread: the router entered Backup from Init; probe before it may claim."""
        if not self.enabled:
            return
        self._entries += 1
        self.probe_pending = True
        self._kick.set()

    def stop(self, wait: float = PROBE_TIME * 3) -> None:
        self._stop.set()
        self._kick.set()
        self.master_stopped()
        if self._thread is not None and wait > 0:
            self._thread.join(timeout=wait)

    # ---- probing, on the guard's own thread ---------------------------------------------
    def _loop(self) -> None:
        s = self.worker.settings
        while not self._stop.is_set():
            # A probe on every entry into Backup, and then every RECHECK_* seconds.
            self._kick.wait(RECHECK_CONFLICT if self._conflict else RECHECK_OK)
            self._kick.clear()
            entry, pending = self._entries, self.probe_pending
            # Give the master's adverts a chance to arrive first, so that its MAC is
            # known as a VRRP router's and its answers are not taken for a conflict.
            if pending and self._stop.wait(min(max(1.5 * s.advert_int, 0.2), 3.0)):
                return
            if self._stop.is_set():
                return
            state = self.worker.router.state
            try:
                if state is State.BACKUP or (state is State.FAULT and self._conflict):
                    self._probe_all()
            except Exception:
                # The hold below must be lifted whatever happened, or this backup
                # could never become master.
                self.worker.log.exception("%s: address probe failed", s.name)
            if pending:
                # Queued after any fault the probe posted: the worker never sees
                # the hold lifted before the conflict.
                self.worker.post("call", partial(self._probe_done, entry))

    def _probe_done(self, entry: int, now: float) -> None:
        """Worker thread: lift the hold, unless the router entered Backup again since."""
        if entry != self._entries:
            return
        self.probe_pending = False
        r = self.worker.router
        if r.state is State.BACKUP and r.master_down_timer is not None:
            # Timers that ran out during the probe must not all fire at once:
            # routers that entered Backup together still take over in priority
            # order, Skew_Time apart (RFC 5798 6.1, 6.4.2).
            r.master_down_timer = max(r.master_down_timer, now + r.skew_time)

    def _probe_all(self) -> None:
        s = self.worker.settings
        log = self.worker.log
        for va in s.addresses:
            if self._stop.is_set():
                return
            ignore = self.own_macs() | set(self.worker.peer_macs)
            dev = va.device or s.interface
            try:
                mac = probe(dev, self.worker.netlink.link_mac(dev), va.ip, PROBE_TIME, ignore)
            except OSError as exc:
                log.error("%s: cannot probe %s on %s: %s", s.name, va.ip, dev, exc)
                return
            if mac is not None and mac not in self.worker.peer_macs:
                # A peer that became master while we probed answers (or announces,
                # RFC 5798 6.4.1) from a MAC the snapshot above did not hold yet.
                # Give the worker thread time to see its adverts before calling it
                # a conflict: two routers started together otherwise fault forever.
                self._stop.wait(min(max(1.5 * s.advert_int, 0.2), 3.0))
            if mac is not None and mac not in self.worker.peer_macs:
                self.worker.conflicts += 1
                log.error("%s: address conflict: %s is held by %s, which is not a VRRP router "
                          "of this VRID; not claiming it (probing again in %.0f s)",
                          s.name, va.ip, mac_str(mac), RECHECK_CONFLICT)
                if not self._conflict:
                    self._conflict = True
                    self.worker.post("fault", CONFLICT, True)
                return
        if self._conflict:
            log.info("%s: address conflict over: no other host answers for %s", s.name,
                     ", ".join(str(a.ip) for a in s.addresses))
            self._conflict = False
            self.worker.post("fault", CONFLICT, False)

    # ---- watching while master, on the worker's thread ---------------------------------------
    def master_started(self) -> None:
        if not self.enabled or self.watcher is not None:
            return
        s = self.worker.settings
        self.watcher = ClaimWatcher(s.interface, address_family(s.family), s.ips,
                                    self.own_macs())

    def master_stopped(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None

    def check_claims(self, watcher: ClaimWatcher) -> None:
        s = self.worker.settings
        for claim in watcher.poll():
            if claim.mac in self.worker.peer_macs:
                continue
            self.worker.conflicts += 1
            self.worker.log.error("%s: address conflict while master: %s claimed by %s",
                                  s.name, claim.ip, mac_str(claim.mac))
