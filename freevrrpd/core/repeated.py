"""The election, with the master's repeated adverts counted elsewhere, free of I/O.

RFC 5798 6.4.2: a backup that receives its master's advert only restarts its
Master_Down_Timer.  When such an advert would arrive again unchanged, the
router says so with ``ExpectRepeats`` and the daemon counts the repeats
outside the router's thread (the repeats tap), reporting them with
``repeats_arrived`` when the timer is due, and with ``repeats_taken`` when it
stops counting (``StopRepeats``): the router's own Master_Down_Timer is stale
while the tap keeps it.  Also here: the counters of received adverts and the
table of every router heard (``peers``).
"""

from __future__ import annotations

from freevrrpd.core.actions import Action, ExpectRepeats, State, StopRepeats
from freevrrpd.core.election import Election
from freevrrpd.core.packet import Advert
from freevrrpd.core.peers import PeerTable
from freevrrpd.core.settings import IPAddress, RouterSettings


class Repeated(Election):
    def __init__(self, settings: RouterSettings, primary_ip: IPAddress | None,
                 handoff: bool = False, repeats: bool = False) -> None:
        super().__init__(settings, primary_ip, handoff)
        self.repeats = repeats
        self.expecting: ExpectRepeats | None = None
        self.peers = PeerTable()
        self.received = 0
        self.validated = 0

    def repeats_arrived(self, last_at: float, count: int) -> list[Action]:
        """``count`` repeats of the advert of ``ExpectRepeats`` arrived, the last at
        ``last_at``: the same as receiving each of them."""
        if self.expecting is None or self.state is not State.BACKUP or count <= 0:
            return []
        self._count(self.expecting.src, last_at, count)
        self.master_down_timer = last_at + self.master_down_interval
        return []

    def repeats_taken(self, src: IPAddress, last_at: float, count: int) -> None:
        """The tap stopped counting (after ``StopRepeats``): its last record.  The
        Master_Down_Timer it kept becomes ours again, unless an advert just set a
        shorter one on purpose: the master resigned (Skew_Time, RFC 5798 6.4.2) or
        we take over from a lower master (``_preempt_soon``)."""
        if count <= 0:
            return
        self._count(src, last_at, count)
        if (self.state is State.BACKUP and self.preempting_lower is None
                and self.master_priority != 0 and self.master_down_timer is not None):
            self.master_down_timer = max(self.master_down_timer,
                                         last_at + self.master_down_interval)

    def _count(self, src: IPAddress, last_at: float, count: int) -> None:
        self.received += count
        self.validated += count
        self.peers.repeats(src, count, last_at)

    def repeats_unavailable(self) -> list[Action]:
        """Whoever counted the repeats stopped: see every advert again."""
        self.repeats = False
        return self._forget_repeats()

    def _forget_repeats(self) -> list[Action]:
        if self.expecting is None:
            return []
        self.expecting = None
        return [StopRepeats()]

    def _preempt_soon(self, now: float, src: IPAddress | None, priority: int | None) -> None:
        if self.expecting is not None:
            self.master_down_timer = None  # kept by the tap until now: stale here
        super()._preempt_soon(now, src, priority)

    def _expect(self, adv: Advert, src: IPAddress, dst: IPAddress, mac: bytes | None,
                payload: bytes) -> list[Action]:
        s = self.settings
        # What only restarts the timer: not a resignation, not a lower master that
        # we preempt at once (its adverts are discarded).
        lower_preempted = adv.priority < self.priority and self.preempting
        plain = (adv.priority != 0 and mac is not None and self.master_ip == src
                 and not (lower_preempted and s.preempt_delay <= 0))
        want = ExpectRepeats(src, mac, dst, payload) if plain and mac is not None else None
        if want == self.expecting:
            return []
        self.expecting = want
        return [StopRepeats() if want is None else want]

    def _transition(self, now: float, new: State, why: str, peer: int | None,
                    hook: bool = True) -> list[Action]:
        actions = self._forget_repeats() if new is not State.BACKUP else []
        return actions + super()._transition(now, new, why, peer, hook)
