"""Probe before claiming: the address-conflict check's rules and its state.

Before a backup may claim its virtual addresses it asks the LAN whether
another host holds one (RFC 5227 2.1.1 ARP probe, RFC 4862 5.4 duplicate
address detection).  While that probe runs after an entry into Backup, the
backup's Master_Down and preemption timers wait ("the hold"): short advert
intervals would otherwise outrun the probe.  A holder that is a VRRP router of
this VRID (its adverts were accepted) is no conflict; any other holder makes
the router not eligible (``CONFLICT``) until a later probe finds the addresses
free.  ``Router`` drives this and carries out the verdicts; the adapter only
sends the probes and reports who answered.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from freevrrpd.core.actions import Report
from freevrrpd.core.mac import mac_text
from freevrrpd.core.settings import IPAddress, RouterSettings

CONFLICT = "address conflict"
RECHECK_CONFLICT = 10.0  # seconds between probes while a conflict lasts
RECHECK_OK = 60.0  # seconds between probes while backup and all is well
PROBE_TIME = 1.0  # seconds one probe listens for answers (all addresses at once)

Holder = tuple[IPAddress, bytes]  # (virtual address, MAC of a host that answered for it)


def settle_time(advert_int: float) -> float:
    """How long to let a master's adverts arrive before probing, and before calling
    an unknown holder a conflict: its MAC may belong to a router of this VRID
    whose adverts have not been heard yet (two routers started together)."""
    return min(max(1.5 * advert_int, 0.2), 3.0)


@dataclass(frozen=True)
class Verdict:
    """What a finished probe means for the router."""

    reports: tuple[Report, ...] = ()
    conflict: bool | None = None  # set (True) or clear (False) the CONFLICT fault
    lifted: bool = False  # the hold after an entry into Backup is over


class ConflictCheck:
    """State of the conflict check of one virtual router (see the module doc)."""

    def __init__(self) -> None:
        self.hold = False  # a backup's timers wait for a probe after entering Backup
        self.running = False  # a probe is under way (StartProbe sent, no result yet)
        self.conflict = False
        self.conflicts = 0  # conflicts seen, for status
        self.next_at: float | None = None  # when the next probe starts
        self.confirm_at: float | None = None  # when unknown holders are judged
        self.suspects: tuple[Holder, ...] = ()
        self.holder: Holder | None = None  # who holds an address while the conflict lasts
        self.entries = 0  # entries into Backup; a probe lifts only its own entry's hold
        self.probe_entry = 0

    def deadline(self) -> float | None:
        if self.running:  # nothing fires while the adapter probes
            return None
        times = [t for t in (self.next_at, self.confirm_at) if t is not None]
        return min(times) if times else None

    def entered_backup(self, now: float, advert_int: float) -> None:
        self.entries += 1
        self.hold = True
        self.next_at = now + settle_time(advert_int)

    def probe_due(self, now: float) -> bool:
        """Time for the next probe; the caller says at once whether it starts one."""
        if self.next_at is None or now < self.next_at or self.running or self.confirm_at:
            return False
        self.running, self.next_at, self.probe_entry = True, None, self.entries
        return True

    def confirm_due(self, now: float) -> bool:
        if self.confirm_at is None or now < self.confirm_at:
            return False
        self.confirm_at = None
        return True

    def finished(self, now: float, holders: Collection[Holder] | None, s: RouterSettings,
                 peers: Collection[bytes]) -> Verdict | None:
        """The probe ended (``holders`` None: it could not run).  None: unknown holders
        answered, judged at ``confirm_at`` once their adverts had time to arrive."""
        self.running = False
        if holders is None:
            return self.over(now)
        self.suspects = self._foreign(holders, s, peers)
        if self.suspects:
            self.confirm_at = now + settle_time(s.advert_int)
            return None
        return self.judge(now, s, peers)

    def judge(self, now: float, s: RouterSettings, peers: Collection[bytes]) -> Verdict:
        foreign, self.suspects = self._foreign(self.suspects, s, peers), ()
        if foreign:
            ip, mac = foreign[0]
            self.holder = (ip, mac)
            self.conflicts += 1
            report = Report("error", f"{s.name}: address conflict: {ip} is held by "
                            f"{mac_text(mac)}, which is not a VRRP router of this VRID; not "
                            f"claiming it (probing again in {RECHECK_CONFLICT:.0f} s)", "conflict")
            was, self.conflict = self.conflict, True
            return self.over(now, (report,), None if was else True)
        if not self.conflict:
            return self.over(now)
        self.conflict, self.holder = False, None
        report = Report("info", f"{s.name}: address conflict over: no other host answers "
                                f"for {', '.join(str(ip) for ip in s.ips)}", "conflict")
        return self.over(now, (report,), False)

    def holder_is_peer(self, now: float, s: RouterSettings, mac: bytes) -> Verdict | None:
        """``mac`` turned out to be a router of this VRID: if it holds the address of
        our conflict, the conflict is over now (the entry into Backup probes again)."""
        if not self.conflict or self.holder is None or self.holder[1] != mac:
            return None
        ip = self.holder[0]
        self.conflict, self.holder = False, None
        report = Report("info", f"{s.name}: address conflict over: {ip} is held by "
                                f"{mac_text(mac)}, a router of this VRID", "conflict")
        return Verdict((report,), False)

    def probe_soon(self, now: float) -> None:
        """Probe at once (a new router of the VRID spoke while a conflict lasts)."""
        if not self.running and self.confirm_at is None:
            self.next_at = now

    def over(self, now: float, reports: tuple[Report, ...] = (),
             conflict: bool | None = None) -> Verdict:
        """A probe round is done: lift its entry's hold, schedule the next one."""
        lifted = self.hold and self.probe_entry == self.entries
        if lifted:
            self.hold = False
        if self.next_at is None:  # an entry into Backup may have asked for one already
            recheck = RECHECK_CONFLICT if self.conflict or conflict else RECHECK_OK
            self.next_at = now + recheck
        return Verdict(reports, conflict, lifted)

    @staticmethod
    def _foreign(holders: Collection[Holder], s: RouterSettings,
                 peers: Collection[bytes]) -> tuple[Holder, ...]:
        """Holders that are not routers of this VRID, in the order of ``addr``."""
        order = {ip: i for i, ip in enumerate(s.ips)}
        found = {h for h in holders if h[1] not in peers and h[0] in order}
        return tuple(sorted(found, key=lambda h: (order[h[0]], h[1])))
