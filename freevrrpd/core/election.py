"""The election of RFC 5798 section 6.4 (RFC 3768 section 6.4), free of I/O.

The states and their timers, what a backup and a master do with an accepted
advert, and the transitions between states, each checked against the table in
``states``.  ``Router`` (router.py) builds on it with what surrounds the
election: faults, the source address, the probe-before-claim hold, reloads.
"""

from __future__ import annotations

from freevrrpd.core import states
from freevrrpd.core.actions import (
    Action,
    Advertise,
    ClaimAddresses,
    ReleaseAddresses,
    RunHook,
    SendAdvert,
    Silence,
    State,
    Transition,
)
from freevrrpd.core.announce import AnnounceSchedule
from freevrrpd.core.packet import Advert
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.core.timing import master_down_interval, skew_time


class Election:
    def __init__(self, settings: RouterSettings, primary_ip: IPAddress | None,
                 handoff: bool = False) -> None:
        self.settings = settings
        # Periodic adverts handed to a shared transmitter (Advertise / Silence)
        # instead of one SendAdvert per Adver_Timer expiry: the router's thread
        # then does not wake for each of them.
        self.handoff = handoff
        # Our address on the interface: the source of our adverts and the tie-breaker
        # between equal priorities (RFC 5798 6.4.3: the higher primary address wins).
        self.primary_ip = primary_ip
        self.priority = settings.priority
        self.state = State.INITIALIZE
        # RFC 5798 6.1: a v3 backup learns Master_Adver_Interval from the master.
        self.master_adver_int_cs = settings.advert_int_cs
        self.master_ip: IPAddress | None = None
        self.master_priority: int | None = None
        self.adver_timer: float | None = None
        self.master_down_timer: float | None = None
        self.preempt_timer: float | None = None
        self.announcements = AnnounceSchedule()
        self.sent = 0
        self.transitions = 0
        self.last_transition: Transition | None = None
        self.last_transition_at: float | None = None
        # Why this backup may not preempt now (a sync group member outranked,
        # daemon.syncgroups); None: it may, as configured.
        self.preempt_held: str | None = None
        self.preempting_lower: str | None = None  # the reason, while taking over from one

    @property
    def preempting(self) -> bool:
        """Preempt_Mode (RFC 5798 6.1), unless held by the sync group."""
        return self.settings.preempt and self.preempt_held is None

    @property
    def skew_time(self) -> float:
        return skew_time(self.settings.version, self.priority, self.master_adver_int_cs)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval(self.settings.version, self.priority, self.master_adver_int_cs)

    @property
    def held(self) -> bool:
        """Whether a backup's timers wait (the probe before claiming, in Router)."""
        return False

    def _entered_backup(self, now: float) -> None:
        """Called on every entry into Backup from Initialize."""

    def handle_timer(self, now: float) -> list[Action]:
        return self._election_timers(now)

    def _election_timers(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.state is State.MASTER and self.adver_timer is not None and now >= self.adver_timer:
            # RFC 5798 6.4.3: Adver_Timer fires -> send an advert, restart the timer.
            actions += self._advert_now(now)
        if self.state is State.BACKUP and not self.held:
            if self.master_down_timer is not None and now >= self.master_down_timer:
                # RFC 5798 6.4.2: Master_Down_Timer fires -> become master.
                peer = self.master_priority
                why = (f"master resigned (priority 0), waited Skew_Time {self.skew_time:.3f} s"
                       if peer == 0 else self.preempting_lower or
                       f"no advert from master for {self.master_down_interval:.3f} s"
                       " (Master_Down_Interval)")
                actions += self._to_master(now, why, peer)
            elif self.preempt_timer is not None and now >= self.preempt_timer:
                actions += self._to_master(
                    now, f"preempting lower-priority master {self.master_ip}"
                    f" after preemptdelay {self.settings.preempt_delay:g} s", self.master_priority)
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
        if lower and self.preempting and s.preempt_delay <= 0:
            # RFC 5798 6.4.2: preempting, discard the advert.  The RFC then lets
            # Master_Down_Interval pass; we take over after Skew_Time, as for a
            # master that resigns: the outcome is the RFC's, a lower master (its
            # check failed, its priority fell) hands over at once, and backups still
            # take over in priority order, Skew_Time apart.
            self._preempt_soon(now, src, adv.priority)
            return []
        if s.version == 3:
            self.master_adver_int_cs = adv.interval_cs
        self.master_down_timer = now + self.master_down_interval
        self.preempting_lower = None
        self.master_ip, self.master_priority = src, adv.priority
        if lower and self.preempting:
            # preemptdelay: follow the lower master until the delay has passed once.
            if self.preempt_timer is None:
                self.preempt_timer = now + s.preempt_delay
        else:
            self.preempt_timer = None
        return []

    def _preempt_soon(self, now: float, src: IPAddress | None, priority: int | None) -> None:
        soon = now + self.skew_time
        if self.master_down_timer is None or self.master_down_timer > soon:
            self.master_down_timer = soon
        self.master_ip, self.master_priority = src, priority  # what status shows
        self.preempting_lower = (f"preempting lower-priority master {src} (priority "
                                 f"{priority}) after Skew_Time {self.skew_time:.3f} s")

    def _master_receive(self, adv: Advert, src: IPAddress, now: float) -> list[Action]:
        if adv.priority == 0:
            # RFC 5798 6.4.3: answer a resigning peer at once, so nobody waits.  A
            # peer resigning while we are master was master too (a healed split
            # brain): hosts may hold its MAC for our addresses, so re-announce.
            return self._advert_now(now) + self._split_brain_announce(now, src, 0)
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
            return self._resign() + self._to_backup(now, why, adv.priority)
        # A lower master is still talking: a split brain has healed.  Assert
        # ourselves at once and re-announce so stale ARP caches are fixed.
        return self._advert_now(now) + self._split_brain_announce(now, src, adv.priority)

    # ---- our adverts --------------------------------------------------------------
    def _advert_now(self, now: float) -> list[Action]:
        """An advert at once, and Adver_Timer restarted (RFC 5798 6.4.3)."""
        self.sent += 1
        if not self.handoff:
            self.adver_timer = now + self.settings.advert_int
        return [SendAdvert(self.priority)]

    def _start_adverts(self, now: float) -> list[Action]:
        """The periodic adverts from now on: the Adver_Timer, or the transmitter."""
        if self.handoff:
            return [Advertise(self.priority)]
        self.adver_timer = now + self.settings.advert_int
        return []

    def _resign(self) -> list[Action]:
        """RFC 5798 6.4.3: priority 0, so a backup takes over after Skew_Time; the
        periodic adverts stop first."""
        self.sent += 1
        self.adver_timer = None
        return [Silence(), SendAdvert(0)] if self.handoff else [SendAdvert(0)]

    def _split_brain_announce(self, now: float, peer: IPAddress, priority: int) -> list[Action]:
        return self.announcements.split_brain(self.settings, now, self.master_down_interval,
                                              f"split brain with {peer} (priority {priority})")

    # ---- transitions ------------------------------------------------------------
    def _to_master(self, now: float, why: str, peer: int | None = None) -> list[Action]:
        self.master_down_timer = None
        self.preempting_lower = None
        self.preempt_timer = None
        self.master_ip, self.master_priority = self.primary_ip, self.priority
        self.master_adver_int_cs = self.settings.advert_int_cs
        # RFC 5798 6.4.1/6.4.2: send an advert, announce every address, start
        # Adver_Timer.  The advert goes first: it silences the other backups
        # while the addresses are being installed.
        actions = self._advert_now(now) + self._start_adverts(now) + [ClaimAddresses()]
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
        self.preempting_lower = None
        actions += self._transition(now, State.BACKUP, why, peer)
        if old is State.INITIALIZE:
            self._entered_backup(now)
        return actions

    def _to_fault(self, now: float, why: str) -> list[Action]:
        actions: list[Action] = []
        if self.state is State.MASTER:
            # Resign so backups take over after Skew_Time (RFC 5798 6.4.3 Shutdown).
            actions += self._resign() + [ReleaseAddresses()]
        self._clear_timers()
        return actions + self._transition(now, State.FAULT, why, None)

    def _clear_timers(self) -> None:
        self.adver_timer = self.master_down_timer = self.preempt_timer = None
        self.preempting_lower = None
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
