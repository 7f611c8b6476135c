"""One thread per virtual router: the only place its core meets the world.

The thread waits on its capture socket, its conflict checker's sockets and a
wake-up pipe until the core's next deadline (``time.monotonic``: an NTP step
never fires a timer), feeds the core, and carries out the actions it returns.
An error while acting is logged, counted and retried on the next event; it
never ends the thread or touches the other virtual routers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from freevrrpd.core import actions as act
from freevrrpd.core.actions import Action, State
from freevrrpd.core.changes import Change
from freevrrpd.core.linkhold import FaultChange
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_PROTO, RouterKey, RouterSettings
from freevrrpd.core.tracking import Demotion, TrackChange, TrackKey
from freevrrpd.net.capture import PacketSocket
from freevrrpd.net.frames import ETH_HLEN, parse_ip_frame
from freevrrpd.net.linkwatch import AddressChange, LinkIndex
from freevrrpd.net.netlink import Netlink, NetlinkError
from freevrrpd.vrid.addressbook import AddressBook
from freevrrpd.vrid.commands import Call, Control
from freevrrpd.vrid.conflict import ConflictGuard
from freevrrpd.vrid.effects import Effects
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.hooks import HookResult, HookRunner, transition_scripts
from freevrrpd.vrid.journal import Journal
from freevrrpd.vrid.link import Link
from freevrrpd.vrid.mailbox import Mailbox
from freevrrpd.vrid.osthread import name_os_thread
from freevrrpd.vrid.repeats import RepeatsTap
from freevrrpd.vrid.sharing import Sharing
from freevrrpd.vrid.status import RouterStatus, describe, snapshot
from freevrrpd.vrid.transmitter import Transmitter
from freevrrpd.vrid.wait import wait_readable

RETRY = 1.0  # seconds before an action that failed is retried
T = TypeVar("T")


class VridWorker(Mailbox, threading.Thread):
    def __init__(self, settings: RouterSettings, netlink: Netlink, log: logging.Logger,
                 book: AddressBook, faults: Collection[str] = (),
                 transmitter: Transmitter | None = None, tap: RepeatsTap | None = None,
                 tracks: Mapping[TrackKey, int] | None = None,
                 events: EventBus | None = None) -> None:
        threading.Thread.__init__(
            self, name=f"vrid-{settings.vrid}-{settings.interface}-v{settings.family}",
            daemon=True)
        Mailbox.__init__(self)
        self.settings = settings
        self.netlink = netlink
        self.log = log
        # ``faults``: reasons for not being eligible known before the start (a link
        # that is down): the router starts in FAULT with them.
        # ``tracks``: the values of its tracked items known now (core.tracking).
        self.router = Router(settings, faults=faults, handoff=transmitter is not None,
                             repeats=tap is not None, tracks=tracks)
        self.journal = Journal(settings.name, log, events)
        # The sync group (daemon.syncgroups) sees the router after each event.
        self.group: Callable[[RouterKey, Router], None] | None = None
        self.errors: Counter[str] = Counter()
        self.effects = Effects(settings, netlink, log, book)
        self.hooks = HookRunner(settings.name, settings.hook_timeout, log, self._hook_done)
        self.guard = ConflictGuard(settings, netlink.link_mac, log)
        # The capture socket, while the interface exists: opened on the thread.
        self.link = Link(settings, self.effects, self.guard, log)
        # The periodic adverts through the shared transmitter, the master's
        # repeats counted by the shared tap.
        self.sharing = Sharing(self.effects, self.link, transmitter, tap)
        self.stopped = threading.Event()
        self._retry_at: float | None = None
        self._poked = False  # by the repeats tap: Master_Down deadline passed
        self._pending_claim: bool | None = None  # True claim / False release still to do
        self._source_failed = False

    # ---- called from other threads ----------------------------------------------------
    def stop(self) -> None:
        self.post(Control.STOP)

    def _poke(self) -> None:
        """From the repeats tap: our Master_Down deadline passed with no repeat."""
        self.post(Control.WAKE)

    # ---- on the worker's thread ---------------------------------------------------------
    def apply_change(self, change: Change, now: float) -> tuple[str, ...]:
        """Take a reload's change (``core.changes``) with the fewest disruptions."""
        if not change:
            return ()
        new = change.new
        master = self.router.state is State.MASTER
        if master and change.removed:
            self._do_safely("release", lambda: self.effects.release(change.removed))
        self.settings = new
        self.effects.update_settings(new)
        self.guard.update_settings(new)
        self.hooks.timeout = new.hook_timeout if new.hook_timeout > 0 else None
        actions = self.router.apply(change, now)
        self.sharing.readvertise(now)  # the frame may differ (checksum mode, ...)
        if master and change.added:
            self._do_safely("claim", lambda: self.effects.claim(change.added))
            self._do_safely("announce", lambda: self.effects.announce(change.added))
        self._do(actions, now)
        return change.fields

    def later(self, fn: Callable[[Router, float], list[act.Action]]) -> None:
        """Have the router's thread carry out ``fn(router, now)``'s actions; never
        waits (for the sync groups, called from other routers' threads)."""
        self.post(Call(lambda now: self._do(fn(self.router, now), now)))

    def demote(self, demotion: Demotion | None) -> bool:
        """``freevrrpctl demote`` / ``promote``: whether the thread took it."""
        def run(now: float) -> bool:
            self._do(self.router.demote(demotion, now), now)
            return True

        return self.call(run) is not None

    def status(self) -> RouterStatus:
        """The status record; call on the worker's thread (``status_now`` from others)."""
        return snapshot(self.router, self.errors, self.hooks.last(), self.sharing.sent())

    def status_now(self, timeout: float = 1.0) -> RouterStatus:
        """The status, taken on the worker's thread; read directly if it does not answer."""
        snap = self.call(lambda _now: self.status(), timeout)
        return snap if snap is not None else self.status()

    def _do_safely(self, what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as exc:
            self.errors[what] += 1
            self.log.error("%s: %s failed during reload: %s", self.settings.name, what, exc)

    # ---- the thread -------------------------------------------------------------------
    def run(self) -> None:
        name_os_thread()
        try:
            self._run()
        except Exception:  # pragma: no cover - last resort, keeps the process alive
            self.log.exception("%s: worker crashed", self.settings.name)
        finally:
            self.stopped.set()

    def _run(self) -> None:
        now = time.monotonic()
        if self.link.attach():
            self._refresh_source(now)
        else:
            self._do(self.router.set_fault(self.link.missing, True, now), now)
        self._do(self.router.start(now), now)
        lease = self.sharing.lease
        while True:
            now = time.monotonic()
            self.sharing.rearm(self.router.master_down_timer)
            due = min((d for d in (self.router.next_deadline(self._watched()), self._retry_at,
                                   self.guard.deadline(), self.sharing.check_at())
                       if d is not None), default=None)
            timeout = max(0.0, due - now) if due is not None else None
            sock = self.link.sock
            fds = [self._wake_r, *self.guard.filenos()]
            lease.waiting(due)  # renews the transmitter's lease (vrid.transmitter)
            ready = wait_readable(fds if sock is None else [sock.fileno(), *fds], timeout)
            now = time.monotonic()
            lease.busy(now)
            if self.sharing.readvertise_if_lost(now):
                self.log.warning("%s: advertising again (its thread was stuck)",
                                 self.settings.name)
            if sock is not None and sock.fileno() in ready:
                self._receive(sock, now)
            self._guard(ready, now)
            if self._wake_r in ready and not self._commands(now):
                break
            if self._retry_at is not None and now >= self._retry_at:
                self._retry(now)
            if self.sharing.tap_failed(now):
                self.log.error("%s: the repeats tap stopped: every advert of the master "
                               "is seen again", self.settings.name)
                self._do(self.router.repeats_unavailable(), now)
            self._timers(now)
            if (group := self.group) is not None:
                group(self.settings.key, self.router)
        self._shutdown()

    def _watched(self) -> bool:
        """The tap keeps our Master_Down deadline and has not said it passed."""
        return self.sharing.watched() and not self._poked

    def _timers(self, now: float) -> None:
        # While the repeats tap keeps the Master_Down deadline, the core's timer
        # is stale until the record is read: only the tap's poke makes it due.
        # The poke stays until the record is read: a router held by its probe
        # reads it when the probe is over.
        deadline = self.router.next_deadline(self._watched())
        if deadline is None or now < deadline:
            return
        mdt = self.router.master_down_timer
        if mdt is not None and now >= mdt and not self.router.held:
            self._poked = False
            # The master's unchanged adverts were counted by the tap, not seen
            # here: take them into account before deciding it is gone.
            got = self.sharing.repeats()
            if got is not None:
                self._do(self.router.repeats_arrived(*got), now)
                deadline = self.router.next_deadline()
                if deadline is None or now < deadline:
                    return
        self._do(self.router.handle_timer(now), now)

    def _receive(self, sock: PacketSocket, now: float) -> None:
        for frame in sock.recv_all():
            if len(frame) == ETH_HLEN:
                # Cut to its Ethernet header by the kernel filter: it carried an
                # 802.1Q tag, so it is another VLAN's (net.bpf.vrrp_filter).
                self.router.frame_dropped("vlan")
                continue
            rx = parse_ip_frame(frame)
            if rx is None or rx.proto != VRRP_PROTO:
                self.router.frame_dropped("malformed")
                continue
            self._do(self.router.receive(rx.payload, rx.src_ip, rx.dst_ip, rx.ttl, now,
                                         rx.src_mac), now)

    def _guard(self, ready: list[int], now: float) -> None:
        for claim in self.guard.claims(ready):
            self._do(self.router.claim_seen(claim.ip, claim.mac), now)
        over, holders = self.guard.progress(ready, now)
        if over:
            self._do(self.router.probe_finished(now, holders), now)

    def _commands(self, now: float) -> bool:
        while True:
            cmd = self.next_command()
            if cmd is None:
                return True
            if cmd is Control.STOP:
                return False
            if isinstance(cmd, FaultChange):
                self._do(self.router.set_fault(cmd.reason, cmd.active, now), now)
            elif isinstance(cmd, TrackChange):
                self._do(self.router.track(cmd.track, cmd.value, now), now)
            elif isinstance(cmd, LinkIndex):
                self._link_moved(cmd, now)
            elif isinstance(cmd, AddressChange):
                if self.link.sock is not None:
                    self._refresh_source(now)
            elif cmd is Control.WAKE:
                self._poked = True  # _timers reads the tap's record
            elif cmd is Control.DUMP:
                self.log.info("%s", self.describe())
            elif isinstance(cmd, Call):
                cmd.fn(now)

    def _link_moved(self, event: LinkIndex, now: float) -> None:
        """The interface (or a ``dev:`` device) was deleted, or created again."""
        change = self.link.moved(event.name, event.ifindex)
        missing = self.link.missing
        if change in ("gone", "moved"):
            self.sharing.interface_moved()
            self._do(self.router.set_fault(missing, True, now), now)
        if change in ("back", "moved"):
            self._refresh_source(now)
            self._do(self.router.set_fault(missing, False, now), now)

    def close_unstarted(self) -> None:
        """Free what a worker whose thread never ran holds."""
        self.effects.close()
        self._close_pipe()
        self.stopped.set()

    def _shutdown(self) -> None:
        now = time.monotonic()
        # Resign first (RFC 5798 6.4.3: priority 0 lets a backup take over after
        # Skew_Time); a probe still listening is abandoned, not awaited.
        self._do(self.router.shutdown(now), now)
        self.guard.close()
        if self._pending_claim is False:
            self._retry(now)
        self.hooks.close()
        self.link.detach()
        self._close_pipe()

    # ---- acting -----------------------------------------------------------------------
    def _do(self, actions: list[Action], now: float) -> None:
        for action in actions:
            try:
                self._act(action, now)
            except Exception as exc:
                kind = type(action).__name__
                self.errors[kind] += 1
                self.log.error("%s: %s failed: %s (retrying in %.0f s)",
                               self.settings.name, kind, exc, RETRY)
                if isinstance(action, act.ClaimAddresses | act.ReleaseAddresses):
                    self._pending_claim = isinstance(action, act.ClaimAddresses)
                    self._retry_at = now + RETRY

    def _act(self, action: Action, now: float) -> None:
        s = self.settings
        if isinstance(action, act.SendAdvert):
            self.effects.send_advert(self.router.build_advert(action.priority))
        elif isinstance(action, act.Advertise):
            self.sharing.advertise(self.router.build_advert(action.priority), now)
        elif isinstance(action, act.Silence):
            self.sharing.silence()
        elif isinstance(action, act.ExpectRepeats):
            r = self.router
            self.sharing.expect(action, r.master_down_interval, r.master_down_timer or now,
                                self._poke, now)
        elif isinstance(action, act.StopRepeats):
            last = self.sharing.stop_repeats()
            if last is not None:  # the tap's count: the Master_Down_Timer it kept
                self.router.repeats_taken(*last)
        elif isinstance(action, act.ClaimAddresses):
            self._pending_claim = None
            self.effects.claim()
            self.guard.master_started()
        elif isinstance(action, act.ReleaseAddresses):
            self._pending_claim = None
            self.guard.master_stopped()
            self.effects.release()
        elif isinstance(action, act.Announce):
            n = self.effects.announce()
            self.log.debug("%s: announced %d address(es): %s", s.name, n, action.reason)
        elif isinstance(action, act.Transition | act.PriorityChange | act.Report):
            self.journal.record(action)
        elif isinstance(action, act.RunHook):
            self._run_hook(action)
        elif isinstance(action, act.StartProbe) and not self.guard.start_probe(action, now):
            self._do(self.router.probe_finished(now, None), now)

    def _run_hook(self, action: act.RunHook) -> None:
        for job in transition_scripts(self.settings, action.new, action.old, action.priority):
            self.hooks.submit(*job)

    def _hook_done(self, result: HookResult) -> None:
        if not result.ok:
            self.errors["hook"] += 1
        self.journal.hook(result)

    def _retry(self, now: float) -> None:
        self._retry_at = None
        pending, self._pending_claim = self._pending_claim, None
        if pending is True and self.router.state is State.MASTER:
            self._do([act.ClaimAddresses()], now)
        elif pending is False:
            self._do([act.ReleaseAddresses()], now)
        if self._source_failed:
            self._refresh_source(now)

    def _refresh_source(self, now: float) -> None:
        """Read our primary address again (at start, and on the link monitor's
        address events: no polling)."""
        try:
            ip = self.effects.refresh_source()
        except NetlinkError as exc:
            self.errors["source"] += 1
            self.log.error("%s: cannot read the addresses of %s: %s (retrying in %.0f s)",
                           self.settings.name, self.settings.interface, exc, RETRY)
            self._source_failed, self._retry_at = True, now + RETRY
            return
        self._source_failed = False
        changed = ip != self.router.primary_ip
        self._do(self.router.set_source(ip, now), now)
        if changed:
            self.sharing.readvertise(now)  # the periodic frame carries the source

    # ---- status ---------------------------------------------------------------------
    def describe(self) -> str:
        """One log line with the same facts as ``freevrrpctl status`` (SIGUSR1)."""
        return describe(self.settings.name, self.status(), self.router.peer_macs)
