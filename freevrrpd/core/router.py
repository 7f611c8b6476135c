"""The VRRP state machine of one virtual router, free of I/O.

RFC 5798 section 6 (VRRPv3) and RFC 3768 section 6 (VRRPv2).  Every entry
point takes ``now`` (seconds on the caller's monotonic clock) and returns the
actions the caller must carry out, in order; ``next_deadline()`` says when to
call ``handle_timer`` next.  States: Initialize, Backup, Master, Fault ("not
eligible": link down, conflict, a failed dependency or check, no source
address) and Stopped (``states.ALLOWED``).  The election is ``election``'s; the
router adds the rules around it: receive checks (``validate``), faults, the
source address, the probe before claiming (``probing``), tracking
(``tracking``), the peer table (``peers``), reloads, and the status counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

from freevrrpd.core.actions import (
    Action,
    PriorityChange,
    ReleaseAddresses,
    Report,
    StartProbe,
    State,
)
from freevrrpd.core.changes import Change, advert_of, diff
from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.core.packet import Advert
from freevrrpd.core.probing import CONFLICT, PROBE_TIME, ConflictCheck, Holder, Verdict
from freevrrpd.core.repeated import Repeated
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.core.tracking import Demotion, Tracking, TrackKey
from freevrrpd.core.validate import FrameDrop, Validator


class Router(Repeated):
    """One virtual router: feed it time, packets and faults; it answers with actions."""

    def __init__(self, settings: RouterSettings, primary_ip: IPAddress | None = None,
                 faults: Collection[str] = (), handoff: bool = False,
                 repeats: bool = False, tracks: Mapping[TrackKey, int] | None = None) -> None:
        """``handoff``: periodic adverts through ``Advertise``; ``repeats``: say with
        ``ExpectRepeats`` which adverts need not reach ``receive`` one by one;
        ``tracks``: the values of tracked items known at start (``core.tracking``)."""
        super().__init__(settings, primary_ip, handoff, repeats)
        self.tracking = Tracking(settings.tracks, tracks)
        self.priority = self.tracking.effective(settings.priority)
        # Reasons for not being eligible; those of the tracking apart too.
        self.tracked_faults = self.tracking.faults()
        self.faults: set[str] = set(faults) | self.tracked_faults
        self.check = ConflictCheck()
        self.validator = Validator(settings)
        # Routers of this VRID (their adverts passed every check) answer ARP/ND for
        # the virtual addresses, which is never a conflict: the virtual MAC, the
        # adverts' source MACs, and the real MACs behind their source addresses
        # (a host that keeps the address while backup answers from its own MAC).
        self.peer_macs: frozenset[bytes] = frozenset({virtual_mac(settings.vrid,
                                                                  settings.family)})
        self.peer_ips: set[IPAddress] = set()

    # ---- what the caller asks -------------------------------------------------
    @property
    def drops(self) -> Counter[str]:
        return self.validator.drops

    @property
    def conflicts(self) -> int:
        return self.check.conflicts

    @property
    def announce_timer(self) -> float | None:
        return self.announcements.timer

    @property
    def held(self) -> bool:
        """A backup waiting for its probe before its timers may fire (``probing``)."""
        return self.check.hold and self.state is State.BACKUP

    def _entered_backup(self, now: float) -> None:
        # Probe before claiming, on every entry into Backup (RFC 5227 2.1.1); the
        # address owner (priority 255) owns the addresses by definition.
        if self.settings.conflict_check and not self.settings.owner:
            self.check.entered_backup(now, self.settings.advert_int)

    @property
    def no_source_reason(self) -> str:
        kind = "IPv4 address" if self.settings.family == 4 else "IPv6 link-local address"
        return f"no {kind} on {self.settings.interface}"

    def next_deadline(self, watched: bool = False) -> float | None:
        """The earliest timer.  ``watched``: the Master_Down_Timer is kept by the
        repeats tap, which wakes the thread when it passes (while ``expecting``)."""
        held = self.held or (watched and self.expecting is not None)
        hold_preempt = self.held
        timers = [
            t
            for t in (self.adver_timer, None if held else self.master_down_timer,
                      None if hold_preempt else self.preempt_timer, self.announcements.timer,
                      self.check.deadline())
            if t is not None
        ]
        return min(timers) if timers else None

    def build_advert(self, priority: int) -> Advert:
        """The advert this router sends with ``priority`` (RFC 5798 5.2 / RFC 3768 5.3)."""
        return advert_of(self.settings, priority)

    # ---- events -----------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """RFC 5798 6.4.1: the Startup event in Initialize."""
        if self.state not in (State.INITIALIZE, State.STOPPED):
            return []
        if self.faults:
            return self._to_fault(now, "not eligible at start: " + ", ".join(sorted(self.faults)))
        if self.priority == 255:
            return self._to_master(now, "address owner (priority 255) starts as master")
        return self._to_backup(now, "startup", None)

    def shutdown(self, now: float) -> list[Action]:
        """RFC 5798 6.4.2/6.4.3 Shutdown: a master resigns with priority 0."""
        actions: list[Action] = []
        old = self.state
        if old is State.MASTER:
            actions += self._resign() + [ReleaseAddresses()]
        self._clear_timers()
        if old is not State.STOPPED:
            actions += self._transition(now, State.STOPPED, "shutdown", None)
        return actions

    def set_fault(self, reason: str, active: bool, now: float) -> list[Action]:
        """Mark a reason that makes this router not eligible (or clear it)."""
        had = bool(self.faults)
        if active:
            self.faults.add(reason)
        else:
            self.faults.discard(reason)
        if self.state is State.STOPPED or (self.state is State.INITIALIZE and not active):
            return []  # start() decides with the faults it finds
        if self.faults and not had:
            return self._to_fault(now, reason)
        if had and not self.faults:
            actions = self._transition(now, State.INITIALIZE, f"cleared: {reason}", None,
                                       hook=False)
            return actions + self.start(now)
        return []

    def set_source(self, ip: IPAddress | None, now: float) -> list[Action]:
        """Our primary address changed (None: the interface has none, not eligible).
        Another address of the interface simply takes over as the source of our
        adverts and the tie-breaker (RFC 5798 5.1.1.1, 5.1.2.1, 6.4.3)."""
        old, self.primary_ip = self.primary_ip, ip
        actions: list[Action] = []
        if old is not None and ip is not None and old != ip:
            actions.append(Report("info", f"{self.settings.name}: primary address "
                                          f"{old} -> {ip}"))
        return actions + self.set_fault(self.no_source_reason, ip is None, now)

    def frame_dropped(self, reason: FrameDrop) -> None:
        """A captured frame that is no advert here: ``malformed`` (not an IP packet
        of protocol 112) or ``vlan`` (802.1Q tagged: another VLAN on the wire)."""
        self.drops[reason] += 1

    def update_settings(self, settings: RouterSettings, now: float) -> list[Action]:
        """Apply a reloaded configuration of this router (same VRID, family, interface)."""
        return self.apply(diff(self.settings, settings), now)

    def apply(self, change: Change, now: float) -> list[Action]:
        """Take a reload's change with no disruption: the state is kept, and a master
        whose advert changed (priority, interval, addresses, password) sends the new
        one at once, so a backup that now outranks it preempts after its
        Master_Down_Interval (RFC 5798 6.4.2)."""
        settings = change.new
        self.settings = settings
        before = self.priority
        self.tracking = Tracking(settings.tracks, previous=self.tracking)
        self.priority = self.tracking.effective(settings.priority)
        self.validator = Validator(settings, self.validator)
        if not settings.preempt or settings.preempt_delay <= 0:
            self.preempt_timer = None
        # What a repeat of the master's advert means depends on our settings
        # (priority, preemption): every advert must be seen again.
        actions = self._forget_repeats()
        if self.state is State.MASTER:
            if {"garp_refresh", "garp_refresh_count", "send_gratuitous_arp"} & set(change.fields):
                self.announcements.reschedule_refresh(settings, now)
            if change.advert_changed or self.priority != before:
                return actions + self._advert_now(now) + self._start_adverts(now)
            return actions
        if self.state is State.BACKUP and settings.owner:
            return actions + self._to_master(now, "became address owner (priority 255) on "
                                                  "reload")
        return actions + self._track_faults(now)

    # ---- tracking, demotion, sync groups --------------------------------------------
    def track(self, key: TrackKey, value: int, now: float) -> list[Action]:
        """A tracked item's value changed (1/0 healthy/failing, or a file's number)."""
        if not self.tracking.record(key, value):
            return []
        return self._retrack(now, self.tracking.why(key))

    def demote(self, demotion: Demotion | None, now: float) -> list[Action]:
        """An operator lowered our priority or made us not eligible (None: undone)."""
        old, self.tracking.demotion = self.tracking.demotion, demotion
        if demotion is None:
            why = "demotion undone" if old is None else f"{old.reason} undone"
        elif demotion.by is None:
            why = f"{demotion.reason}: not eligible"
        else:
            why = f"{demotion.reason}: priority lowered by {demotion.by}"
        return self._retrack(now, why)

    def _retrack(self, now: float, why: str) -> list[Action]:
        """Apply the tracking's priority and faults; the advert carries the new
        priority at once (RFC 5798 6.4.3: a master's advert says its priority)."""
        actions: list[Action] = []
        new = self.tracking.effective(self.settings.priority)
        if new != self.priority:
            actions.append(PriorityChange(self.priority, new, why))
            self.priority = new
            if self.state is State.MASTER:
                actions += self._advert_now(now) + self._start_adverts(now)
            self._preempt_if_outranking(now)
            # What a repeat of the master's advert means depends on our priority.
            actions += self._forget_repeats()
        return actions + self._track_faults(now)

    def _track_faults(self, now: float) -> list[Action]:
        actions: list[Action] = []
        old, self.tracked_faults = self.tracked_faults, self.tracking.faults()
        for reason in sorted(self.tracked_faults - old):
            actions += self.set_fault(reason, True, now)
        for reason in sorted(old - self.tracked_faults):
            actions += self.set_fault(reason, False, now)
        return actions

    def step_down(self, why: str, now: float) -> list[Action]:
        """A master whose sync group moved to backup resigns (RFC 5798 6.4.3) and
        follows; a backup or a router not eligible stays as it is."""
        if self.state is not State.MASTER:
            return []
        actions = self._resign()
        self.master_ip, self.master_priority = None, None  # no master known yet
        return actions + self._to_backup(now, why, None)

    def hold_preempt(self, why: str | None, now: float) -> list[Action]:
        """A sync group holds (or frees) our preemption; freed, a backup that
        outranks its master takes over after Skew_Time."""
        self.preempt_held = why
        self._preempt_if_outranking(now)
        return self._forget_repeats()

    def _preempt_if_outranking(self, now: float) -> None:
        """A backup that now outranks its master (our priority rose, a hold ended)
        takes over after Skew_Time (RFC 5798 6.4.2)."""
        mp = self.master_priority
        if (self.state is State.BACKUP and mp and mp < self.priority and self.preempting
                and self.settings.preempt_delay <= 0):
            self._preempt_soon(now, self.master_ip, mp)

    def handle_timer(self, now: float) -> list[Action]:
        actions = self._probe_timer(now)
        if self.announcements.timer is not None and now >= self.announcements.timer:
            actions += self.announcements.fire(self.settings, now)
        return actions + self._election_timers(now)

    def receive(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int,
                now: float, src_mac: bytes | None = None) -> list[Action]:
        """An IP packet of protocol 112 for our VRID arrived (RFC 5798 7.1, RFC 3768 7.1).
        ``src_mac`` is the frame's Ethernet source, learnt as a router of this VRID's
        when the advert passes every check."""
        actions: list[Action] = []
        advert, reports = self.validator.check(payload, src, dst, ttl, self.primary_ip, now)
        actions += reports
        if advert is not None:
            # Counted in every state: peers are learnt even while not eligible.
            self.validated += 1
            self.peers.heard(src, src_mac, advert, now)
            actions += self._learn_peer(src, src_mac, now)
        elif self.validator.last_drop not in (None, "own", "vrid"):
            self.peers.refused(src, self.validator.last_drop, now)
        if advert is None or self.state in (State.STOPPED, State.INITIALIZE, State.FAULT):
            return actions
        self.received += 1
        if self.state is State.BACKUP:
            actions += self._backup_receive(advert, src, now)
            if self.repeats:
                actions += self._expect(advert, src, dst, src_mac, payload)
        elif self.state is State.MASTER:
            actions += self._master_receive(advert, src, now)
        return actions

    # ---- the conflict check (``probing``) -----------------------------------------
    def probe_finished(self, now: float, holders: Collection[Holder] | None) -> list[Action]:
        """The probe asked for by ``StartProbe`` ended: ``holders`` are the (address,
        MAC) pairs of every host that answered, for our addresses and for the peers'
        source addresses; None when the probe could not run."""
        if not self.check.running:
            return []
        learnt = {mac for ip, mac in holders or () if ip in self.peer_ips}
        self.peer_macs = self.peer_macs | learnt
        verdict = self.check.finished(now, holders, self.settings, self.peer_macs)
        return [] if verdict is None else self._carry_out(verdict, now)

    def claim_seen(self, ip: IPAddress, mac: bytes) -> list[Action]:
        """While master, another MAC announced one of our addresses."""
        if mac in self.peer_macs:
            return []
        self.check.conflicts += 1
        return [Report("error", f"{self.settings.name}: address conflict while master: "
                                f"{ip} claimed by {mac_text(mac)}", "conflict")]

    def _learn_peer(self, src: IPAddress, mac: bytes | None, now: float) -> list[Action]:
        """A router of this VRID spoke: if it is the holder of our conflict, the
        conflict is over at once; a new one while in conflict is probed at once,
        so its real MAC is learnt (RFC 5227 2.1.1 probes answer for it too)."""
        new_ip = src not in self.peer_ips
        self.peer_ips.add(src)
        if mac is not None and mac not in self.peer_macs:
            self.peer_macs = self.peer_macs | {mac}
            verdict = self.check.holder_is_peer(now, self.settings, mac)
            if verdict is not None:
                return self._carry_out(verdict, now)
        if new_ip and self.check.conflict:
            self.check.probe_soon(now)
        return []

    def _probe_timer(self, now: float) -> list[Action]:
        c = self.check
        actions: list[Action] = []
        if c.confirm_due(now):
            actions += self._carry_out(c.judge(now, self.settings, self.peer_macs), now)
        if c.probe_due(now):
            if self.state is State.BACKUP or (self.state is State.FAULT and c.conflict):
                peers = tuple(sorted(ip for ip in self.peer_ips
                                     if ip.version == self.settings.family))
                actions.append(StartProbe(self.settings.ips, PROBE_TIME, peers))
            else:
                c.running = False
                actions += self._carry_out(c.over(now), now)
        return actions

    def _carry_out(self, verdict: Verdict, now: float) -> list[Action]:
        if verdict.lifted and self.state is State.BACKUP and self.master_down_timer:
            # Timers that ran out during the probe must not all fire at once:
            # routers that entered Backup together still take over in priority
            # order, Skew_Time apart (RFC 5798 6.1, 6.4.2).
            self.master_down_timer = max(self.master_down_timer, now + self.skew_time)
        actions: list[Action] = list(verdict.reports)
        if verdict.conflict is not None:
            actions += self.set_fault(CONFLICT, verdict.conflict, now)
        return actions

