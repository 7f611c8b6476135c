"""When a new master announces its addresses (RFC 5798 6.4.1 / 6.4.2).

A burst of ``garpcount`` gratuitous ARPs / unsolicited NAs, ``garpinterval``
apart, and (keepalived's garp_master_delay habit) a second burst
``garprepeatdelay`` later, which catches hosts whose caches were refreshed by
the old master in between.
"""

from __future__ import annotations

from freevrrpd.core.actions import Action, Announce
from freevrrpd.core.settings import RouterSettings


class AnnounceSchedule:
    def __init__(self) -> None:
        self.timer: float | None = None
        self._left = 0
        self._repeat = False
        self._last_split: float | None = None

    def became_master(self, s: RouterSettings, now: float) -> list[Action]:
        # A resignation from the old master in the same breath needs no second
        # burst (see split_brain).
        self._last_split = now
        return self.schedule(s, now, first_done=False)

    def split_brain(self, s: RouterSettings, now: float, master_down: float,
                    what: str) -> list[Action]:
        """Two masters met (a healed partition): hosts may hold the other's MAC for
        our addresses, so re-announce, at most once per Master_Down_Interval."""
        if self._last_split is not None and now - self._last_split < master_down:
            return []
        self._last_split = now
        actions: list[Action] = [Announce(f"{what} resolved")]
        return actions + self.schedule(s, now, first_done=True)

    def cancel(self) -> None:
        self.timer, self._left = None, 0

    def schedule(self, s: RouterSettings, now: float, first_done: bool) -> list[Action]:
        """Start the bursts; ``first_done``: the caller already sent one announcement."""
        if not s.send_gratuitous_arp or s.garp_count <= 0:
            return []
        self._left = s.garp_count - (1 if first_done else 0)
        self._repeat = s.garp_repeat_delay > 0
        self.timer = now
        return self.fire(s, now) if not first_done else []

    def fire(self, s: RouterSettings, now: float) -> list[Action]:
        """The announcements due at ``now``; moves the timer on."""
        actions: list[Action] = []
        while self._left > 0:
            actions.append(Announce("new master"))
            self._left -= 1
            if s.garp_interval > 0:
                break
        if self._left > 0:
            self.timer = now + s.garp_interval
        elif self._repeat:
            self._repeat = False
            self._left = s.garp_count
            self.timer = now + s.garp_repeat_delay
        else:
            self.timer = None
        return actions
