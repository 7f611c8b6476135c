"""The VRRP state machine of one virtual router, free of I/O.

RFC 5798 section 6 (VRRPv3) and RFC 3768 section 6 (VRRPv2).  Every entry
point takes ``now`` (seconds on the caller's monotonic clock) and returns the
actions the caller must carry out, in order; ``next_deadline()`` says when the
caller must call ``handle_timer`` next.  The states are Initialize, Backup,
Master, plus Fault ("not eligible": link down, address conflict, a failed
dependency) and Stopped.
"""

from __future__ import annotations

from collections import Counter

from freevrrpd.core.actions import (
    Action,
    Announce,
    ClaimAddresses,
    ReleaseAddresses,
    RunHook,
    SendAdvert,
    State,
    Transition,
)
from freevrrpd.core.packet import Advert, password_auth_data
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.core.timing import master_down_interval, skew_time
from freevrrpd.core.validate import Validator


class Router:
    """One virtual router: feed it time, packets and faults; it answers with actions."""

    def __init__(self, settings: RouterSettings, primary_ip: IPAddress | None = None) -> None:
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
        self.faults: set[str] = set()
        self.adver_timer: float | None = None
        self.master_down_timer: float | None = None
        self.preempt_timer: float | None = None
        self.announce_timer: float | None = None
        self._announce_left = 0
        self._announce_repeat = False
        self._last_split_announce: float | None = None
        self.validator = Validator(settings)
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
    def skew_time(self) -> float:
        return skew_time(self.settings.version, self.priority, self.master_adver_int_cs)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval(self.settings.version, self.priority, self.master_adver_int_cs)

    def next_deadline(self) -> float | None:
        timers = [
            t
            for t in (self.adver_timer, self.master_down_timer, self.preempt_timer,
                      self.announce_timer)
            if t is not None
        ]
        return min(timers) if timers else None

    def build_advert(self, priority: int) -> Advert:
        """The advert this router sends with ``priority`` (RFC 5798 5.2 / RFC 3768 5.3)."""
        s = self.settings
        auth_type, auth_data = 0, b""
        if s.version == 2:
            auth_data = bytes(8)
            if s.password is not None:
                auth_type, auth_data = 1, password_auth_data(s.password)
        return Advert(
            version=s.version,
            vrid=s.vrid,
            priority=priority,
            interval_cs=s.advert_int_cs,
            addresses=s.ips,
            auth_type=auth_type,
            auth_data=auth_data,
        )

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
        self.state = State.STOPPED
        if old is not State.STOPPED:
            actions += self._transition(now, old, State.STOPPED, "shutdown", None)
        return actions

    def set_fault(self, reason: str, active: bool, now: float) -> list[Action]:
        """Mark a reason that makes this router not eligible (or clear it)."""
        had = bool(self.faults)
        if active:
            self.faults.add(reason)
        else:
            self.faults.discard(reason)
        if self.state is State.STOPPED:
            return []
        if self.faults and not had:
            return self._to_fault(now, reason)
        if had and not self.faults:
            self.state = State.INITIALIZE
            actions = self._transition(now, State.FAULT, State.INITIALIZE,
                                       f"cleared: {reason}", None, hook=False)
            return actions + self.start(now)
        return []

    def update_settings(self, settings: RouterSettings, now: float) -> list[Action]:
        """Apply a reloaded configuration of this virtual router (same VRID, family
        and interface).  Nothing is disrupted: the state is kept, and a master
        whose advert changed (priority, interval, addresses, password) sends the
        new one at once, so a backup that now outranks it preempts after its
        Master_Down_Interval (RFC 5798 6.4.2)."""
        old = self.settings
        if settings.key != old.key:
            raise ValueError(f"{settings.name} is not {old.name}")
        self.settings = settings
        self.priority = settings.priority
        self.validator = Validator(settings, self.validator)
        if not settings.preempt or settings.preempt_delay <= 0:
            self.preempt_timer = None
        if self.state is State.MASTER:
            if self.build_advert(settings.priority) != Router(old).build_advert(old.priority):
                self.adver_timer = now
                return self.handle_timer(now)
            return []
        if self.state is State.BACKUP and settings.owner:
            return self._to_master(now, "became address owner (priority 255) on reload")
        return []

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.announce_timer is not None and now >= self.announce_timer:
            actions += self._announce_round(now)
        if self.state is State.MASTER and self.adver_timer is not None and now >= self.adver_timer:
            # RFC 5798 6.4.3: Adver_Timer fires -> send an advert, restart the timer.
            actions.append(SendAdvert(self.priority))
            self.sent += 1
            self.adver_timer = now + self.settings.advert_int
        if self.state is State.BACKUP:
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
                now: float) -> list[Action]:
        """An IP packet of protocol 112 for our VRID arrived (RFC 5798 7.1, RFC 3768 7.1)."""
        actions: list[Action] = []
        advert, reports = self.validator.check(payload, src, dst, ttl, self.primary_ip)
        actions += reports
        if advert is not None:
            # Counted in every state: the caller learns which MACs belong to this
            # VRID's routers (never address conflicts) even while not eligible.
            self.validated += 1
        if advert is None or self.state in (State.STOPPED, State.INITIALIZE, State.FAULT):
            return actions
        self.received += 1
        if self.state is State.BACKUP:
            actions += self._backup_receive(advert, src, now)
        elif self.state is State.MASTER:
            actions += self._master_receive(advert, src, now)
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
        """Re-announce after two masters met, at most once per Master_Down_Interval."""
        last = self._last_split_announce
        if last is not None and now - last < self.master_down_interval:
            return []
        self._last_split_announce = now
        why = f"split brain with {peer} (priority {priority}) resolved"
        actions: list[Action] = [Announce(why)]
        return actions + self._schedule_announce(now, first_done=True)

    # ---- transitions ------------------------------------------------------------
    def _to_master(self, now: float, why: str, peer: int | None = None) -> list[Action]:
        old = self.state
        self.state = State.MASTER
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
        # We announce now; a resignation from the old master in the same breath
        # needs no second burst.
        self._last_split_announce = now
        actions += self._transition(now, old, State.MASTER, why, peer)
        actions += self._schedule_announce(now, first_done=False)
        return actions

    def _to_backup(self, now: float, why: str, peer: int | None) -> list[Action]:
        old = self.state
        actions: list[Action] = []
        if old is State.MASTER:
            actions.append(ReleaseAddresses())
        self.state = State.BACKUP
        self.adver_timer = None
        self.announce_timer, self._announce_left = None, 0
        self.preempt_timer = None
        if old is not State.MASTER:
            self.master_adver_int_cs = self.settings.advert_int_cs
            self.master_ip, self.master_priority = None, None
        self.master_down_timer = now + self.master_down_interval
        return actions + self._transition(now, old, State.BACKUP, why, peer)

    def _to_fault(self, now: float, why: str) -> list[Action]:
        old = self.state
        actions: list[Action] = []
        if old is State.MASTER:
            # Resign so backups take over after Skew_Time (RFC 5798 6.4.3 Shutdown).
            actions += [SendAdvert(0), ReleaseAddresses()]
            self.sent += 1
        self._clear_timers()
        self.state = State.FAULT
        return actions + self._transition(now, old, State.FAULT, why, None)

    def _clear_timers(self) -> None:
        self.adver_timer = self.master_down_timer = self.preempt_timer = None
        self.announce_timer, self._announce_left = None, 0
        self.master_ip, self.master_priority = None, None

    def _transition(self, now: float, old: State, new: State, why: str, peer: int | None,
                    hook: bool = True) -> list[Action]:
        t = Transition(old, new, why, self.priority, peer)
        self.transitions += 1
        self.last_transition, self.last_transition_at = t, now
        actions: list[Action] = [t]
        if hook and old is not new:
            actions.append(RunHook(new, old, self.priority))
        return actions

    # ---- announcements (RFC 5798 6.4.1: gratuitous ARP / unsolicited NA) --------
    def _schedule_announce(self, now: float, first_done: bool) -> list[Action]:
        s = self.settings
        if not s.send_gratuitous_arp or s.garp_count <= 0:
            return []
        self._announce_left = s.garp_count - (1 if first_done else 0)
        self._announce_repeat = s.garp_repeat_delay > 0
        self.announce_timer = now
        return self._announce_round(now) if not first_done else []

    def _announce_round(self, now: float) -> list[Action]:
        s = self.settings
        actions: list[Action] = []
        while self._announce_left > 0:
            actions.append(Announce("new master"))
            self._announce_left -= 1
            if s.garp_interval > 0:
                break
        if self._announce_left > 0:
            self.announce_timer = now + s.garp_interval
        elif self._announce_repeat:
            # keepalived's habit (garp_master_delay): a second burst a few seconds
            # later catches hosts whose caches were refreshed in between.
            self._announce_repeat = False
            self._announce_left = s.garp_count
            self.announce_timer = now + s.garp_repeat_delay
        else:
            self.announce_timer = None
        return actions
