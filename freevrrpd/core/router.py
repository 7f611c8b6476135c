"""The VRRP state machine of one virtual router, free of I/O.

RFC 5798 section 6 (VRRPv3) and RFC 3768 section 6 (VRRPv2).  Every entry
point takes ``now`` (seconds on the caller's monotonic clock) and returns the
actions the caller must carry out, in order; ``next_deadline()`` says when the
caller must call ``handle_timer`` next.  The states are Initialize, Backup,
Master, plus Fault ("not eligible": link down, address conflict, a failed
dependency, no source address) and Stopped; ``states.ALLOWED`` is the whole
graph.  The router also owns the rules around the protocol: the
probe-before-claim hold (``probing``), the announcement bursts (``announce``)
and every counter that status reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from freevrrpd.core import states
from freevrrpd.core.actions import (
    Action,
    ClaimAddresses,
    ReleaseAddresses,
    Report,
    RunHook,
    SendAdvert,
    StartProbe,
    State,
    Transition,
)
from freevrrpd.core.announce import AnnounceSchedule
from freevrrpd.core.changes import Change, advert_of, diff
from freevrrpd.core.mac import mac_text
from freevrrpd.core.packet import Advert
from freevrrpd.core.probing import CONFLICT, PROBE_TIME, ConflictCheck, Holder, Verdict
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.core.timing import master_down_interval, skew_time
from freevrrpd.core.validate import Validator


class Router:
    """One virtual router: feed it time, packets and faults; it answers with actions."""

    def __init__(self, settings: RouterSettings, primary_ip: IPAddress | None = None,
                 faults: Collection[str] = ()) -> None:
        self.settings = settings
        # Our address on the interface: the source of our adverts and the tie-breaker
        # between equal priorities (RFC 5798 6.4.3: the higher primary address wins).
        self.primary_ip = primary_ip
        self.priority = settings.priority
        self.state = State.INITIALIZE
        # RFC 5798 6.1: a v3 backup learns Master_Adver_Interval from the master.
        self.master_adver_int_cs = settings.advert_int_cs
        self.master_ip: IPAddress | None = None
        self.master_priority: int | None = None
        self.faults: set[str] = set(faults)  # reasons for not being eligible
        self.adver_timer: float | None = None
        self.master_down_timer: float | None = None
        self.preempt_timer: float | None = None
        self.announcements = AnnounceSchedule()
        self.check = ConflictCheck()
        self.validator = Validator(settings)
        # MACs of routers of this VRID (their adverts passed every check): they
        # answer ARP/ND for the virtual addresses, which is never a conflict.
        self.peer_macs: frozenset[bytes] = frozenset()
        self.sent = 0
        self.received = 0
        self.validated = 0
        self.transitions = 0
        self.last_transition: Transition | None = None
        self.last_transition_at: float | None = None

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

    @property
    def skew_time(self) -> float:
        return skew_time(self.settings.version, self.priority, self.master_adver_int_cs)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval(self.settings.version, self.priority, self.master_adver_int_cs)

    @property
    def no_source_reason(self) -> str:
        kind = "IPv4 address" if self.settings.family == 4 else "IPv6 link-local address"
        return f"no {kind} on {self.settings.interface}"

    def next_deadline(self) -> float | None:
        held = self.held
        timers = [
            t
            for t in (self.adver_timer, None if held else self.master_down_timer,
                      None if held else self.preempt_timer, self.announcements.timer,
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
            actions += [SendAdvert(0), ReleaseAddresses()]
            self.sent += 1
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
        """Our primary address changed (None: the interface has none, not eligible)."""
        self.primary_ip = ip
        return self.set_fault(self.no_source_reason, ip is None, now)

    def malformed(self) -> None:
        """A captured frame that is not a well-formed IP packet of protocol 112."""
        self.drops["malformed"] += 1

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
        self.priority = settings.priority
        self.validator = Validator(settings, self.validator)
        if not settings.preempt or settings.preempt_delay <= 0:
            self.preempt_timer = None
        if self.state is State.MASTER:
            if change.advert_changed:
                self.adver_timer = now
                return self.handle_timer(now)
            return []
        if self.state is State.BACKUP and settings.owner:
            return self._to_master(now, "became address owner (priority 255) on reload")
        return []

    def handle_timer(self, now: float) -> list[Action]:
        actions = self._probe_timer(now)
        if self.announcements.timer is not None and now >= self.announcements.timer:
            actions += self.announcements.fire(self.settings, now)
        if self.state is State.MASTER and self.adver_timer is not None and now >= self.adver_timer:
            # RFC 5798 6.4.3: Adver_Timer fires -> send an advert, restart the timer.
            actions.append(SendAdvert(self.priority))
            self.sent += 1
            self.adver_timer = now + self.settings.advert_int
        if self.state is State.BACKUP and not self.held:
            if self.master_down_timer is not None and now >= self.master_down_timer:
                # RFC 5798 6.4.2: Master_Down_Timer fires -> become master.
                peer = self.master_priority
                why = (f"master resigned (priority 0), waited Skew_Time {self.skew_time:.3f} s"
                       if peer == 0 else
                       f"no advert from master for {self.master_down_interval:.3f} s"
                       " (Master_Down_Interval)")
                actions += self._to_master(now, why, peer)
            elif self.preempt_timer is not None and now >= self.preempt_timer:
                actions += self._to_master(
                    now, f"preempting lower-priority master {self.master_ip}"
                    f" after preemptdelay {self.settings.preempt_delay:g} s", self.master_priority)
        return actions

    def receive(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int,
                now: float, src_mac: bytes | None = None) -> list[Action]:
        """An IP packet of protocol 112 for our VRID arrived (RFC 5798 7.1, RFC 3768 7.1).
        ``src_mac`` is the frame's Ethernet source, learnt as a router of this VRID's
        when the advert passes every check."""
        actions: list[Action] = []
        advert, reports = self.validator.check(payload, src, dst, ttl, self.primary_ip)
        actions += reports
        if advert is not None:
            # Counted in every state: peers are learnt even while not eligible.
            self.validated += 1
            if src_mac is not None and src_mac not in self.peer_macs:
                self.peer_macs = self.peer_macs | {src_mac}
        if advert is None or self.state in (State.STOPPED, State.INITIALIZE, State.FAULT):
            return actions
        self.received += 1
        if self.state is State.BACKUP:
            actions += self._backup_receive(advert, src, now)
        elif self.state is State.MASTER:
            actions += self._master_receive(advert, src, now)
        return actions

    # ---- the conflict check (``probing``) -----------------------------------------
    def probe_finished(self, now: float, holders: Collection[Holder] | None) -> list[Action]:
        """The probe asked for by ``StartProbe`` ended: ``holders`` are the (address,
        MAC) pairs of every host that answered; None when the probe could not run."""
        if not self.check.running:
            return []
        verdict = self.check.finished(now, holders, self.settings, self.peer_macs)
        return [] if verdict is None else self._carry_out(verdict, now)

    def claim_seen(self, ip: IPAddress, mac: bytes) -> list[Action]:
        """While master, another MAC announced one of our addresses."""
        if mac in self.peer_macs:
            return []
        self.check.conflicts += 1
        return [Report("error", f"{self.settings.name}: address conflict while master: "
                                f"{ip} claimed by {mac_text(mac)}")]

    def _probe_timer(self, now: float) -> list[Action]:
        c = self.check
        actions: list[Action] = []
        if c.confirm_due(now):
            actions += self._carry_out(c.judge(now, self.settings, self.peer_macs), now)
        if c.probe_due(now):
            if self.state is State.BACKUP or (self.state is State.FAULT and c.conflict):
                actions.append(StartProbe(self.settings.ips, PROBE_TIME))
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

    # ---- per-state receive --------------------------------------------------------
    def _backup_receive(self, adv: Advert, src: IPAddress, now: float) -> list[Action]:
        s = self.settings
        if adv.priority == 0:
            # RFC 5798 6.4.2: the master resigned; take over after Skew_Time only.
            self.master_down_timer = now + self.skew_time
            self.preempt_timer = None
            self.master_ip, self.master_priority = None, 0
            return []
        lower = adv.priority < self.priority
        if lower and s.preempt and s.preempt_delay <= 0:
            # RFC 5798 6.4.2: preempting, discard the advert and let Master_Down fire.
            return []
        if s.version == 3:
            self.master_adver_int_cs = adv.interval_cs
        self.master_down_timer = now + self.master_down_interval
        self.master_ip, self.master_priority = src, adv.priority
        if lower and s.preempt:
            # preemptdelay: follow the lower master until the delay has passed once.
            if self.preempt_timer is None:
                self.preempt_timer = now + s.preempt_delay
        else:
            self.preempt_timer = None
        return []

    def _master_receive(self, adv: Advert, src: IPAddress, now: float) -> list[Action]:
        if adv.priority == 0:
            # RFC 5798 6.4.3: answer a resigning peer at once, so nobody waits.  A
            # peer resigning while we are master was master too (a healed split
            # brain): hosts may hold its MAC for our addresses, so re-announce.
            self.adver_timer = now
            return self.handle_timer(now) + self._split_brain_announce(now, src, 0)
        ours = (self.priority, int(self.primary_ip) if self.primary_ip is not None else 0)
        theirs = (adv.priority, int(src))
        if theirs > ours:
            # RFC 5798 6.4.3: a higher priority, or equal priority and a higher
            # primary address (compared as numbers), wins.
            if self.settings.version == 3:
                self.master_adver_int_cs = adv.interval_cs
            self.master_ip, self.master_priority = src, adv.priority
            why = (f"higher priority master {src} (priority {adv.priority})"
                   if adv.priority > self.priority
                   else f"equal priority {adv.priority}, master {src} has the higher address")
            # Two masters (a healed partition, or a preemption): resign with
            # priority 0 so the winner learns it and re-announces the addresses.
            self.sent += 1
            return [SendAdvert(0)] + self._to_backup(now, why, adv.priority)
        # A lower master is still talking: a split brain has healed.  Assert
        # ourselves at once and re-announce so stale ARP caches are fixed.
        self.sent += 1
        self.adver_timer = now + self.settings.advert_int
        return [SendAdvert(self.priority)] + self._split_brain_announce(now, src, adv.priority)

    def _split_brain_announce(self, now: float, peer: IPAddress, priority: int) -> list[Action]:
        return self.announcements.split_brain(self.settings, now, self.master_down_interval,
                                              f"split brain with {peer} (priority {priority})")

    # ---- transitions ------------------------------------------------------------
    def _to_master(self, now: float, why: str, peer: int | None = None) -> list[Action]:
        self.master_down_timer = None
        self.preempt_timer = None
        self.master_ip, self.master_priority = self.primary_ip, self.priority
        self.master_adver_int_cs = self.settings.advert_int_cs
        # RFC 5798 6.4.1/6.4.2: send an advert, announce every address, start
        # Adver_Timer.  The advert goes first: it silences the other backups
        # while the addresses are being installed.
        actions: list[Action] = [SendAdvert(self.priority), ClaimAddresses()]
        self.sent += 1
        self.adver_timer = now + self.settings.advert_int
        actions += self._transition(now, State.MASTER, why, peer)
        return actions + self.announcements.became_master(self.settings, now)

    def _to_backup(self, now: float, why: str, peer: int | None) -> list[Action]:
        old = self.state
        actions: list[Action] = []
        if old is State.MASTER:
            actions.append(ReleaseAddresses())
        self.adver_timer = None
        self.announcements.cancel()
        self.preempt_timer = None
        if old is not State.MASTER:
            self.master_adver_int_cs = self.settings.advert_int_cs
            self.master_ip, self.master_priority = None, None
        self.master_down_timer = now + self.master_down_interval
        actions += self._transition(now, State.BACKUP, why, peer)
        # The address owner (priority 255) owns the addresses by definition.
        if old is State.INITIALIZE and self.settings.conflict_check and not self.settings.owner:
            # Probe before claiming, on every entry into Backup (RFC 5227 2.1.1).
            self.check.entered_backup(now, self.settings.advert_int)
        return actions

    def _to_fault(self, now: float, why: str) -> list[Action]:
        actions: list[Action] = []
        if self.state is State.MASTER:
            # Resign so backups take over after Skew_Time (RFC 5798 6.4.3 Shutdown).
            actions += [SendAdvert(0), ReleaseAddresses()]
            self.sent += 1
        self._clear_timers()
        return actions + self._transition(now, State.FAULT, why, None)

    def _clear_timers(self) -> None:
        self.adver_timer = self.master_down_timer = self.preempt_timer = None
        self.announcements.cancel()
        self.master_ip, self.master_priority = None, None

    def _transition(self, now: float, new: State, why: str, peer: int | None,
                    hook: bool = True) -> list[Action]:
        old = self.state
        states.check(old, new)
        self.state = new
        t = Transition(old, new, why, self.priority, peer)
        self.transitions += 1
        self.last_transition, self.last_transition_at = t, now
        actions: list[Action] = [t]
        if hook:
            actions.append(RunHook(new, old, self.priority))
        return actions
