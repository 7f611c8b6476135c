"""When a new master announces its addresses (RFC 5798 6.4.1 / 6.4.2).

A burst of ``garpcount`` gratuitous ARPs / unsolicited NAs, ``garpinterval``
apart, and (keepalived's garp_master_delay habit) a second burst
``garprepeatdelay`` later, which catches hosts whose caches were refreshed by
the old master in between.  While master, ``garprefresh`` seconds apart,
``garprefreshcount`` more (keepalived's garp_master_refresh): hosts and
switches with long caches (hours on some routers) keep the mapping even after
a short dual-master episode taught them the other router's MAC.
"""

from __future__ import annotations

from freevrrpd.core.actions import Action, Announce
from freevrrpd.core.settings import RouterSettings


class AnnounceSchedule:
    def __init__(self) -> None:
        self._burst: float | None = None
        self._refresh: float | None = None
        self._left = 0
        self._repeat = False
        self._last_split: float | None = None

    @property
    def timer(self) -> float | None:
        """When ``fire`` is due next: a burst's next announcement or the refresh."""
        due = [t for t in (self._burst, self._refresh) if t is not None]
        return min(due) if due else None

    def became_master(self, s: RouterSettings, now: float) -> list[Action]:
        # A resignation from the old master in the same breath needs no second
        # burst (see split_brain).
        self._last_split = now
        self.reschedule_refresh(s, now)
        return self.schedule(s, now, first_done=False)

    def reschedule_refresh(self, s: RouterSettings, now: float) -> None:
        """Start (or, after a reload changed it, restart) the periodic refresh."""
        on = s.send_gratuitous_arp and s.garp_refresh > 0 and s.garp_refresh_count > 0
        self._refresh = now + s.garp_refresh if on else None

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
        self._burst, self._refresh, self._left = None, None, 0

    def schedule(self, s: RouterSettings, now: float, first_done: bool) -> list[Action]:
        """Start the bursts; ``first_done``: the caller already sent one announcement."""
        if not s.send_gratuitous_arp or s.garp_count <= 0:
            return []
        self._left = s.garp_count - (1 if first_done else 0)
        self._repeat = s.garp_repeat_delay > 0
        self._burst = now
        return self._fire_burst(s, now) if not first_done else []

    def fire(self, s: RouterSettings, now: float) -> list[Action]:
        """The announcements due at ``now``; moves the timers on."""
        actions: list[Action] = []
        if self._burst is not None and now >= self._burst:
            actions += self._fire_burst(s, now)
        if self._refresh is not None and now >= self._refresh:
            actions += [Announce("periodic refresh")] * s.garp_refresh_count
            self._refresh = now + s.garp_refresh
        return actions

    def _fire_burst(self, s: RouterSettings, now: float) -> list[Action]:
        actions: list[Action] = []
        while self._left > 0:
            actions.append(Announce("new master"))
            self._left -= 1
            if s.garp_interval > 0:
                break
        if self._left > 0:
            self._burst = now + s.garp_interval
        elif self._repeat:
            self._repeat = False
            self._left = s.garp_count
            self._burst = now + s.garp_repeat_delay
        else:
            self._burst = None
        return actions
