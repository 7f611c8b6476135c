"""A router thread's side of the shared transmitter and the repeats tap.

The router's core decides (``Advertise`` / ``Silence``, ``ExpectRepeats`` /
``StopRepeats``); this carries it out: it hands the transmitter the frame
and renews its lease, and it installs the kernel filter that drops the
master's unchanged adverts once the tap counts them.  Without a transmitter
or a tap (the core tests, a router on its own) nothing here runs.
"""

from __future__ import annotations

from freevrrpd.core.actions import ExpectRepeats
from freevrrpd.core.packet import Advert
from freevrrpd.core.settings import RouterSettings
from freevrrpd.net import bpf
from freevrrpd.vrid.effects import Effects
from freevrrpd.vrid.link import Link
from freevrrpd.vrid.repeats import RepeatsTap
from freevrrpd.vrid.transmitter import RENEW_AT, Transmitter, lease_for


class Sharing:
    def __init__(self, settings: RouterSettings, effects: Effects, link: Link,
                 transmitter: Transmitter | None, tap: RepeatsTap | None) -> None:
        self.settings = settings
        self.effects = effects
        self.link = link
        self.transmitter = transmitter
        self.tap = tap
        self._advert: Advert | None = None  # what the transmitter sends for us
        self._renew_at: float | None = None
        self._repeat: bpf.Repeat | None = None  # what our filter drops

    @property
    def key(self) -> tuple[int, int, str]:
        return self.settings.key

    # ---- periodic adverts (RFC 5798 6.4.3) -----------------------------------------------
    def advertise(self, advert: Advert, now: float) -> None:
        assert self.transmitter is not None
        s = self.settings
        self._advert = advert
        self.transmitter.put(self.key, s.name, s.interface, self.effects.frame(advert),
                             s.advert_int, now)
        self._renew_at = now + RENEW_AT * lease_for(s.advert_int)

    def readvertise(self, now: float) -> None:
        """The frame may have changed (settings, source address): hand it over again."""
        if self._advert is not None:
            self.advertise(self._advert, now)

    def silence(self) -> None:
        if self.transmitter is not None:
            self.transmitter.withdraw(self.key)
        self._advert = self._renew_at = None

    def deadline(self) -> float | None:
        return self._renew_at

    def renew(self, now: float) -> None:
        if self._renew_at is not None and now >= self._renew_at and self.transmitter:
            self.transmitter.renew(self.key, now)
            self._renew_at = now + RENEW_AT * lease_for(self.settings.advert_int)

    def sent(self) -> int:
        return self.transmitter.sent(self.key) if self.transmitter is not None else 0

    # ---- repeats of the master's advert (RFC 5798 6.4.2) ---------------------------------
    def expect(self, action: ExpectRepeats) -> None:
        if self.tap is None:
            return
        self._repeat = bpf.Repeat(action.mac, action.src, action.dst, action.payload)
        # The tap counts before the filter drops: no repeat falls between the two.
        self.tap.expect(self.key, self.settings.interface, self._repeat.signature)
        self.refilter()

    def stop_repeats(self) -> None:
        if self._repeat is None:
            return
        self._repeat = None
        self.refilter()
        if self.tap is not None:
            self.tap.forget(self.key)

    def refilter(self) -> None:
        """The capture's kernel filter, for what we expect now (also on a new socket)."""
        sock = self.link.sock
        if sock is not None:
            s = self.settings
            sock.set_filter(bpf.vrrp_filter(s.vrid, s.family, self._repeat))

    def repeats(self) -> tuple[float, int] | None:
        """(last arrival, count) of the repeats the filter dropped since last asked."""
        if self.tap is None or self._repeat is None:
            return None
        return self.tap.take(self.key)

    def interface_moved(self) -> None:
        if self.tap is not None:
            self.tap.reopen(self.settings.interface)
