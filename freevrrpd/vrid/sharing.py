"""A router thread's side of the shared transmitter and the repeats tap.

The router's core decides (``Advertise`` / ``Silence``, ``ExpectRepeats`` /
``StopRepeats``); this carries it out: it hands the transmitter the frame
and it installs the kernel filter that drops the
master's unchanged adverts once the tap counts them.  Without a transmitter
or a tap (the core tests, a router on its own) nothing here runs.

The lease is the worker's (``Lease``: it says when it waits and when it is
busy); while the tap keeps the Master_Down deadline, the worker looks every
``CHECK_EVERY`` seconds that the tap still runs, and goes back to seeing every
advert if it does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from freevrrpd.core.actions import ExpectRepeats
from freevrrpd.core.packet import Advert
from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.net import bpf
from freevrrpd.vrid.effects import Effects
from freevrrpd.vrid.link import Link
from freevrrpd.vrid.repeats import CHECK_EVERY, RepeatsTap
from freevrrpd.vrid.transmitter import Lease, Transmitter


class Sharing:
    def __init__(self, effects: Effects, link: Link,
                 transmitter: Transmitter | None, tap: RepeatsTap | None) -> None:
        self.effects = effects
        self.link = link
        self.transmitter = transmitter
        self.tap = tap
        self._advert: Advert | None = None  # what the transmitter sends for us
        # The worker says when it waits and when it is busy; busy from its creation.
        self.lease = Lease(time.monotonic())
        self._repeat: bpf.Repeat | None = None  # what our filter drops
        self._check_at: float | None = None  # when to look that the tap still runs
        self._told: float | None = None  # the Master_Down_Timer the tap was given

    @property
    def settings(self) -> RouterSettings:
        """The router's settings as they are now (a reload replaces them in effects)."""
        return self.effects.settings

    @property
    def key(self) -> tuple[int, int, str]:
        return self.settings.key

    # ---- periodic adverts (RFC 5798 6.4.3) -----------------------------------------------
    def advertise(self, advert: Advert, now: float) -> None:
        assert self.transmitter is not None
        s = self.settings
        self._advert = advert
        self.transmitter.put(self.key, s.name, s.interface, self.effects.frame(advert),
                             s.advert_int, now, self.lease)

    def readvertise(self, now: float) -> None:
        """The frame may have changed (settings, source address): hand it over again
        (a unicast router's filter names our source address: set it again)."""
        if self.settings.unicast:
            self.refilter()
        if self._advert is not None:
            self.advertise(self._advert, now)

    def silence(self) -> None:
        if self.transmitter is not None:
            self.transmitter.withdraw(self.key)
        self._advert = None

    def readvertise_if_lost(self, now: float) -> bool:
        """If the transmitter stopped our adverts because this thread held no lease
        (it was stuck), hand the frame over again; True if it did."""
        if self._advert is None or not self.lease.lost:
            return False
        self.readvertise(now)
        return True

    def sent(self) -> int:
        return self.transmitter.sent(self.key) if self.transmitter is not None else 0

    # ---- repeats of the master's advert (RFC 5798 6.4.2) ---------------------------------
    def expect(self, action: ExpectRepeats, master_down_interval: float, due: float,
               poke: Callable[[], None], now: float) -> None:
        """Let the tap count the repeats and keep the Master_Down deadline ``due``;
        it calls ``poke`` when that passes with no repeat."""
        if self.tap is None:
            return
        self._repeat = bpf.Repeat(action.mac, action.src, action.dst, action.payload)
        # The tap counts before the filter drops: no repeat falls between the two.
        self.tap.expect(self.key, self.settings.interface, self._repeat.signature,
                        master_down_interval, due, poke)
        self._told = due
        self.refilter()
        if self._check_at is None:
            self._check_at = now + CHECK_EVERY

    def rearm(self, master_down_timer: float | None) -> None:
        """Tell the tap of each Master_Down_Timer the core sets while it watches."""
        if self._repeat is None or master_down_timer in (None, self._told):
            return
        self._told = master_down_timer
        if self.tap is not None and master_down_timer is not None:
            self.tap.rearm(self.key, master_down_timer)

    def watched(self) -> bool:
        """Whether the tap keeps our Master_Down deadline (and wakes us for it)."""
        return self._repeat is not None

    def check_at(self) -> float | None:
        return self._check_at if self._repeat is not None else None

    def tap_failed(self, now: float) -> bool:
        """Due for the look at the tap: True if it no longer runs."""
        if self._check_at is None or now < self._check_at:
            return False
        self._check_at = now + CHECK_EVERY
        return self.tap is not None and not self.tap.is_alive()

    def stop_repeats(self) -> tuple[IPAddress, float, int] | None:
        """Stop counting; the last record (source, last arrival, count), if any."""
        if self._repeat is None:
            return None
        src, got = self._repeat.src, self.repeats()
        self._repeat = None
        self._check_at = None
        self.refilter()
        if self.tap is not None:
            self.tap.forget(self.key)
        return None if got is None else (src, *got)

    def refilter(self) -> None:
        """The capture's kernel filter, for what we expect now (also on a new socket)."""
        sock = self.link.sock
        if sock is not None:
            s = self.settings
            src = self.effects.src_ip
            to = (self.effects.group, src) if s.unicast and src is not None else ()
            sock.set_filter(bpf.vrrp_filter(s.vrid, s.family, self._repeat, to))

    def repeats(self) -> tuple[float, int] | None:
        """(last arrival, count) of the repeats the filter dropped since last asked."""
        if self.tap is None or self._repeat is None:
            return None
        return self.tap.take(self.key)

    def interface_moved(self) -> None:
        if self.tap is not None:
            self.tap.reopen(self.settings.interface)
