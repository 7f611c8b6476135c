"""Receive-side checks of an advert (RFC 5798 section 7.1, RFC 3768 section 7.1).

Every dropped packet is counted by reason; a peer whose adverts disagree with
our configuration is reported once per (peer, problem), not once per packet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

from freevrrpd.core.actions import Report
from freevrrpd.core.packet import Advert, PacketError, decode, password_auth_data
from freevrrpd.core.settings import IPAddress, RouterSettings

AUTH_NAMES = {0: "none", 1: "simple text password", 2: "IP authentication header"}
# Drops of captured frames that never reach the checks below.
FrameDrop = Literal["malformed", "vlan"]
# Every reason an advert or frame is dropped for (docs/STATUS.md): metrics
# export each from 0, so an alert on the first increase sees the first drop.
DROP_REASONS = ("ttl", "length", "version", "type", "count", "checksum", "vrid", "interval",
                "family", "auth_type", "auth", "addresses", "own", "malformed", "vlan",
                "peer")


class Validator:
    """Decodes and checks received adverts for one virtual router."""

    def __init__(self, settings: RouterSettings, previous: Validator | None = None) -> None:
        self.settings = settings
        self.auth_type = 0
        self.auth_data = bytes(8)
        if settings.version == 2 and settings.password is not None:
            self.auth_type, self.auth_data = 1, password_auth_data(settings.password)
        self.ips = frozenset(settings.ips)
        self.peers = frozenset(settings.unicast_peers)
        # Counters and the reported set survive a reload of the settings.
        self.drops: Counter[str] = previous.drops if previous else Counter()
        self.limit: ReportLimit = previous.limit if previous else ReportLimit()
        self._now = 0.0
        self.last_drop: str | None = None  # the reason of the last check's drop

    def check(self, payload: bytes, src: IPAddress, dst: IPAddress, ttl: int,
              primary_ip: IPAddress | None, now: float = 0.0) -> tuple[Advert | None, list[Report]]:
        """Return the advert if it passes every check, and the reports to log."""
        self._now = now
        self.last_drop = None
        s = self.settings
        reports: list[Report] = []
        if self.peers and src not in self.peers:
            # unicastpeer: only the listed routers take part in this election.
            return self._drop("peer", src, "is not one of the unicastpeer addresses", reports)
        if ttl != 255 and not (self.peers and not s.unicast_ttl_check):
            # RFC 5798 7.1: MUST verify that the IP TTL / Hop Limit is 255
            # (the sender is on this link, nobody routed the packet here).
            return self._drop("ttl", src, f"TTL {ttl}, not 255: packet was routed", reports)
        try:
            adv = decode(payload, src, dst, s.checksum_pseudo_header)
        except PacketError as exc:
            hint = self._checksum_hint(exc, payload, src, dst)
            return self._drop(exc.reason, src, hint or str(exc), reports)
        if adv.vrid != s.vrid:
            return self._drop("vrid", None, "", reports)
        if primary_ip is not None and src == primary_ip:
            return self._drop("own", None, "", reports)
        if adv.version != s.version:
            return self._drop("version", src,
                              f"sends VRRPv{adv.version}, we run VRRPv{s.version}", reports)
        if s.version == 2:
            # RFC 3768 7.1: the auth type MUST match the local one; a VRID without a
            # password refuses authenticated packets too (the original accepted them).
            if adv.auth_type != self.auth_type:
                return self._drop(
                    "auth_type", src,
                    f"authentication {AUTH_NAMES.get(adv.auth_type, adv.auth_type)}, ours is "
                    f"{AUTH_NAMES[self.auth_type]}", reports)
            if self.auth_type == 1 and adv.auth_data != self.auth_data:
                return self._drop("auth", src, "wrong password", reports)
            if adv.interval_cs != s.advert_int_cs:
                # RFC 3768 7.1: the advert interval MUST match, else discard.
                return self._drop(
                    "interval", src,
                    f"advert interval {adv.interval_cs / 100:g} s, ours is "
                    f"{s.advert_int_cs / 100:g} s", reports)
        if s.priority == 255 and adv.priority == 255:
            # RFC 5798 7.1 says an address owner drops every advert; the verified
            # erratum 8298 (to RFC 9568, its successor) says to log it and go on
            # processing, else two owners stay master forever.  We follow the
            # erratum: two owners settle by primary address (RFC 5798 6.4.3).
            self._report_once("owner", src, "also claims to be the address owner "
                              "(priority 255)", reports)
        if frozenset(adv.addresses) != self.ips and adv.priority != 255:
            # RFC 5798 7.1 / RFC 3768 7.1: a mismatching address list is logged and,
            # unless the sender is the address owner, dropped.
            theirs = ", ".join(str(a) for a in adv.addresses)
            ours = ", ".join(str(a) for a in s.ips)
            return self._drop("addresses", src,
                              f"address list [{theirs}] differs from ours [{ours}]", reports)
        return adv, reports

    def _drop(self, reason: str, peer: IPAddress | None, detail: str,
              reports: list[Report]) -> tuple[None, list[Report]]:
        self.drops[reason] += 1
        self.last_drop = reason
        if peer is not None:
            self._report_once(reason, peer, f"{detail} (dropping its adverts, reason "
                              f"'{reason}'; reported once)", reports)
        return None, reports

    def _report_once(self, reason: str, peer: IPAddress, detail: str,
                     reports: list[Report]) -> None:
        name = self.settings.name
        reports += self.limit.report((peer, reason), self._now, lambda: Report(
            "warning", f"{name}: misconfigured peer {peer}: {detail}"), name)


    def _checksum_hint(self, exc: PacketError, payload: bytes, src: IPAddress,
                       dst: IPAddress) -> str | None:
        """Say so when a checksum fails only because of the pseudo-header mode."""
        s = self.settings
        if exc.reason != "checksum" or s.version != 3 or s.family != 4:
            return None
        try:
            decode(payload, src, dst, not s.checksum_pseudo_header)
        except PacketError:
            return None
        mode = "without" if s.checksum_pseudo_header else "with"
        return (f"computes the VRRPv3 checksum {mode} the IPv4 pseudo-header; set "
                f"checksumpseudoheader = {'no' if s.checksum_pseudo_header else 'yes'} to match")


class ReportLimit:
    """"Reported once" against spoofed sources: a bounded memory of what was
    reported (the oldest forgotten first), and a bucket of at most BURST warnings,
    refilled at PER_MINUTE a minute; what it holds back is counted and said in
    the next warning that goes out."""

    MEMORY = 1024  # (peer, reason) pairs remembered
    BURST = 10
    PER_MINUTE = 10

    def __init__(self) -> None:
        self._seen: dict[tuple[IPAddress, str], None] = {}
        self._tokens = float(self.BURST)
        self._at: float | None = None
        self.suppressed = 0

    def report(self, key: tuple[IPAddress, str], now: float, make: Callable[[], Report],
               name: str) -> list[Report]:
        if key in self._seen:
            return []
        if len(self._seen) >= self.MEMORY:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = None
        if self._at is not None:
            self._tokens = min(self.BURST, self._tokens + (now - self._at) * self.PER_MINUTE / 60)
        self._at = now
        if self._tokens < 1:
            self.suppressed += 1
            return []
        self._tokens -= 1
        out = [make()]
        if self.suppressed:
            out.append(Report("warning", f"{name}: {self.suppressed} more misconfigured-peer "
                                         "warning(s) held back (many sources: spoofed?)"))
            self.suppressed = 0
        return out
