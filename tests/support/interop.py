"""freevrrpd next to keepalived in the lab: one switch, one host each, one VRID.

A ``Pair`` owns the two hosts, a capture of every advert on the switch, and
the two daemons once started; it answers "who is master now, by each side's
own account", "who sent adverts between t0 and t1" and "where is the VIP".
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass
from typing import Any

from lab import Capture, Daemon, Host, Lab, LabError, SeenAdvert, adverts
from lab.keepalived import Keepalived, KeepalivedInstance, start_keepalived
from tests.support.daemon_conf import vrid

WAIT = 20.0  # seconds; generous, a busy 2-core machine must not fail a positive check


@dataclass(frozen=True)
class Mode:
    """One protocol flavour both sides are configured for."""

    id: str
    vrid: int
    version: int
    family: int
    interval: float  # seconds: VRRPv2 whole seconds, VRRPv3 centiseconds
    password: str | None = None
    unicast: bool = False  # unicast peers on a switch that drops multicast

    @property
    def vip(self) -> str:
        return "192.0.2.254/24" if self.family == 4 else "2001:db8::254/64"

    @property
    def vip_ip(self) -> str:
        return self.vip.split("/")[0]

    @property
    def log_name(self) -> str:
        return f"VRID {self.vrid} on eth0 (IPv{self.family})"

    def address(self, host: tuple[str, str, str]) -> str:
        """A host's unicast address of this family (IPv6: its global one, sent from
        with unicastsrc / unicast_src_ip)."""
        return host[0 if self.family == 4 else 1].split("/")[0]

    def freevrrpd_conf(self, priority: int, password: str | None = None,
                       me: tuple[str, str, str] = ("", "", ""),
                       peer: tuple[str, str, str] = ("", "", "")) -> str:
        chosen = password or self.password
        extra: dict[str, Any] = {"password": chosen} if chosen else {}
        if self.unicast:
            extra |= {"unicastpeer": self.address(peer), "unicastsrc": self.address(me)}
            if self.family == 6:
                # keepalived 2.2.7 sends IPv6 unicast adverts with the host's default hop
                # limit (64) unless its config says unicast_ttl 255; as operators'
                # files rarely do, our side accepts them (unicastttlcheck = no).
                extra["unicastttlcheck"] = False
        return vrid(serverid=self.vrid, priority=priority, addr=self.vip, version=self.version,
                    advertint=self.interval, **extra)

    def keepalived(self, priority: int, password: str | None = None,
                   me: tuple[str, str, str] = ("", "", ""),
                   peer: tuple[str, str, str] = ("", "", "")) -> KeepalivedInstance:
        unicast: dict[str, Any] = {}
        if self.unicast:
            unicast = {"unicast_src": self.address(me), "unicast_peers": [self.address(peer)]}
        return KeepalivedInstance(vrid=self.vrid, priority=priority, vips=[self.vip],
                                  version=self.version, advert_int=self.interval,
                                  password=password or self.password, **unicast)


MODES = [
    Mode("v2", 51, 2, 4, 1.0),
    Mode("v2-password", 52, 2, 4, 1.0, password="s3cret"),
    Mode("v3-ipv4", 53, 3, 4, 0.1),
    Mode("v3-ipv6", 54, 3, 6, 0.1),
]
V2_MODES = [m for m in MODES if m.version == 2]
# keepalived's unicast_src_ip / unicast_peer (issue 10): v2, v3 over IPv4 and IPv6.
UNICAST_MODES = [
    Mode("unicast-v2", 61, 2, 4, 1.0, unicast=True),
    Mode("unicast-v3-ipv4", 63, 3, 4, 0.1, unicast=True),
    Mode("unicast-v3-ipv6", 64, 3, 6, 0.1, unicast=True),
]

# Two hosts, "low" and "high" by primary address. The fixed MACs give EUI-64
# link-local addresses (fe80::ff:fe00:1 < fe80::ff:fe00:2) ordered like the IPv4 ones,
# so "higher primary address" means the same host in both families.
LOW = ("192.0.2.1/24", "2001:db8::1/64", "02:00:00:00:00:01")
HIGH = ("192.0.2.2/24", "2001:db8::2/64", "02:00:00:00:00:02")


class Pair:
    """freevrrpd in host "fv", keepalived in host "ka", on one switch."""

    def __init__(self, lab: Lab, mode: Mode, freevrrpd_higher_address: bool = False) -> None:
        self.lab = lab
        self.mode = mode
        self.lan = lab.add_switch()
        fv_addr, ka_addr = (HIGH, LOW) if freevrrpd_higher_address else (LOW, HIGH)
        self.fv_addr, self.ka_addr = fv_addr, ka_addr
        if mode.unicast:
            self.lan.drop_vrrp_multicast()
        self.fv = lab.add_host("fv", self.lan, fv_addr[0], fv_addr[1], mac=fv_addr[2])
        self.ka = lab.add_host("ka", self.lan, ka_addr[0], ka_addr[1], mac=ka_addr[2])
        proto = "ip proto 112" if mode.family == 4 else "ip6 proto 112"
        self.capture: Capture = lab.capture(self.lan, filter=proto)
        self.daemon: Daemon | None = None
        self.keepalived: Keepalived | None = None

    # ---- starting -----------------------------------------------------------------
    def start(self, fv_priority: int, ka_priority: int, fv_password: str | None = None,
              ka_password: str | None = None) -> None:
        """Start both at (nearly) the same time: keepalived, then freevrrpd."""
        fv, ka = self.fv_addr, self.ka_addr
        self.keepalived = start_keepalived(
            self.ka, self.mode.keepalived(ka_priority, ka_password, me=ka, peer=fv))
        self.daemon = self.fv.start_daemon(
            self.mode.freevrrpd_conf(fv_priority, fv_password, me=fv, peer=ka))

    @property
    def fvd(self) -> Daemon:
        assert self.daemon is not None, "freevrrpd not started"
        return self.daemon

    @property
    def kad(self) -> Keepalived:
        assert self.keepalived is not None, "keepalived not started"
        return self.keepalived

    # ---- each side's own account --------------------------------------------------
    def _fv_transition(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.mode.log_name) + r": (\w+) -> (\w+):")

    def fv_states(self, since: int = 0) -> list[str]:
        return [m.group(2) for m in self._fv_transition().finditer(self.fvd.log(), since)]

    def fv_state(self) -> str | None:
        states = self.fv_states()
        return states[-1] if states else None

    def wait_fv(self, state: str, since: int = 0, timeout: float = WAIT) -> None:
        self.fvd.wait_log(re.escape(self.mode.log_name) + rf": \w+ -> {state}:", timeout, since)

    def wait_ka(self, state: str, since: int = 0, timeout: float = WAIT) -> None:
        self.kad.wait_state(state, timeout, since)

    def status(self, timeout: float = 10.0) -> str:
        """freevrrpd's SIGUSR1 status line for the VRID."""
        mark = self.fvd.mark()
        self.fvd.send_signal(10)  # SIGUSR1
        pattern = re.escape(self.mode.log_name) + r": state .*$"
        return self.fvd.wait_log(pattern, timeout, since=mark).group(0)

    # ---- the wire ---------------------------------------------------------------------
    def adverts(self, start: float = 0.0, end: float = float("inf")) -> list[SeenAdvert]:
        """Adverts of our VRID captured between ``start`` and ``end`` (wall clock)."""
        return [a for a in adverts(self.capture.packets(), vrid=self.mode.vrid)
                if start <= a.time <= end]

    def source(self, host: Host) -> str:
        """The advert source of ``host``: primary IPv4 or link-local IPv6 (RFC 5798 5.1.2);
        with unicast, its unicast source (the global IPv6 address)."""
        if self.mode.unicast:
            return self.mode.address(self.fv_addr if host is self.fv else self.ka_addr)
        if self.mode.family == 4:
            assert host.ipv4 is not None
            return str(host.ipv4.ip)
        ll = host.link_local()
        assert ll is not None
        return ll

    def has_vip(self, host: Host) -> bool:
        vip = ipaddress.ip_interface(self.mode.vip)
        return any(ipaddress.ip_interface(a) == vip for a in host.addresses())

    # ---- checks -------------------------------------------------------------------------
    def hold(self, master: Host, intervals: int = 10) -> None:
        """Over ``intervals`` advert intervals: nobody changes state on either side,
        only ``master`` advertises, at the configured rate, and only it holds the VIP."""
        fv_mark, ka_mark = self.fvd.mark(), self.kad.mark()
        start = time.time()
        time.sleep(intervals * self.mode.interval)
        end = time.time()
        time.sleep(0.2)  # let tcpdump flush the last frames of the window
        assert self.fv_states(fv_mark) == [], self.fvd.log()[fv_mark:]
        assert self.kad.states(ka_mark) == [], self.kad.log()[ka_mark:]
        seen = self.adverts(start, end)
        sources = {a.src for a in seen}
        assert sources == {self.source(master)}, f"adverts from {sources}, master is {master}"
        # A master sends one per interval; allow for the window's ragged ends.
        assert len(seen) >= intervals - 2, f"{len(seen)} adverts in {intervals} intervals"
        backup = self.ka if master is self.fv else self.fv
        assert self.has_vip(master), f"{master.name} is master but lacks {self.mode.vip}"
        assert not self.has_vip(backup), f"{backup.name} is backup but holds {self.mode.vip}"

    def wait_master(self, master: Host, timeout: float = WAIT) -> None:
        """Until ``master`` says MASTER and the other says BACKUP, each in its own log."""
        deadline = time.monotonic() + timeout
        fv_want, ka_want = ("MASTER", "BACKUP") if master is self.fv else ("BACKUP", "MASTER")
        while (self.fv_state(), self.kad.state()) != (fv_want, ka_want):
            if time.monotonic() > deadline:
                raise LabError(
                    f"wanted freevrrpd {fv_want} / keepalived {ka_want}, have "
                    f"{self.fv_state()} / {self.kad.state()}\n--- freevrrpd:\n"
                    f"{self.fvd.log()[-3000:]}\n--- keepalived:\n{self.kad.log()[-3000:]}")
            time.sleep(0.05)


def drops(status: str) -> dict[str, int]:
    """The ``drops`` counters of a SIGUSR1 status line, by reason."""
    match = re.search(r"drops (.*?), conflicts", status)
    assert match, status
    if match.group(1) == "none":
        return {}
    return {k: int(v) for k, v in (item.rsplit(" ", 1) for item in match.group(1).split(", "))}
