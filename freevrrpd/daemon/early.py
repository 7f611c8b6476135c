"""The address owner's first advert, sent as soon as the configuration is read.

RFC 5798 6.4.1: a router of priority 255 owns the virtual addresses and, on
startup, sends an advert and becomes master at once.  That advert needs no
netlink and none of the daemon's threads: the configuration, the interface's
MAC and primary address (one ioctl, or /proc for IPv6) and one raw socket.
So it goes out here, a few tens of milliseconds after launch, before the rest
of the daemon is imported (about 200 ms more); the owner's thread then starts
as master and advertises as usual (one extra advert, which RFC 5798 allows:
backups only restart their timer).  If the daemon then fails to start, it
resigns what it sent with a priority-0 advert (RFC 5798 6.4.3), so that the
backups take over after Skew_Time rather than Master_Down_Interval.

Nothing is sent when another instance holds the pid file, or without the
privileges for a raw socket (the daemon then reports that itself).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.changes import advert_of
from freevrrpd.core.mac import virtual_mac
from freevrrpd.core.packet import encode
from freevrrpd.core.settings import VRRP_GROUP_V4, VRRP_GROUP_V6, IPAddress, RouterSettings
from freevrrpd.net.frames import vrrp_frame

SIOCGIFADDR, SIOCGIFHWADDR = 0x8915, 0x8927
IFA_F_TENTATIVE, IFA_F_DADFAILED = 0x40, 0x08
IPV6_LINK_SCOPE = 0x20


class FirstAdverts:
    """What was sent early, to resign it if the daemon does not come up."""

    def __init__(self) -> None:
        self._sent: list[tuple[RouterSettings, bytes, IPAddress]] = []  # (settings, mac, src)

    def send(self, routers: Sequence[RouterSettings], pidfile: str) -> int:
        """The first advert of every owner; how many went out."""
        # A unicast owner sends through its own socket once it runs (net.unicast).
        owners = [s for s in routers if s.owner and not s.unicast]
        if not owners or _locked(pidfile):
            return 0
        for s in owners:
            with contextlib.suppress(OSError):
                mac, src = _addresses(s)
                if src is not None:
                    _send(s, mac, src, 255)
                    self._sent.append((s, mac, src))
        return len(self._sent)

    def resign(self) -> None:
        """Priority 0 for each advert sent (the daemon did not start)."""
        for s, mac, src in self._sent:
            with contextlib.suppress(OSError):
                _send(s, mac, src, 0)
        self._sent.clear()


def _locked(pidfile: str) -> bool:
    """Whether another instance holds the pid file's lock (``daemon.pidfile``)."""
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no pid file yet: nobody runs
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the lock just taken
    return False


def _send(s: RouterSettings, mac: bytes, src: IPAddress, priority: int) -> None:
    group = VRRP_GROUP_V4 if s.family == 4 else VRRP_GROUP_V6
    payload = encode(advert_of(s, priority), src, group, s.checksum_pseudo_header)
    frame = vrrp_frame(mac, src, group, payload)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((s.interface, 0))
        sock.send(frame)


def _addresses(s: RouterSettings) -> tuple[bytes, IPAddress | None]:
    """(Ethernet source, IP source) of the router's adverts, as the router's thread
    picks them (``vrid.effects``): the virtual MAC when in use (RFC 5798 7.3), the
    interface's primary IPv4 or a usable IPv6 link-local address (RFC 5798 5.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        name = struct.pack("16s", s.interface.encode())
        mac = (virtual_mac(s.vrid, s.family) if s.use_vmac else
               fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, name + bytes(24))[18:24])
        if s.family == 6:
            return mac, _link_local(s.interface)
        try:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, name + bytes(24))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:  # no IPv4 address
                return mac, None
            raise
        return mac, IPv4Address(reply[20:24])


def _link_local(ifname: str) -> IPv6Address | None:
    with open("/proc/net/if_inet6") as f:
        for line in f:
            addr, _index, _plen, scope, flags, name = line.split()
            if (name == ifname and int(scope, 16) == IPV6_LINK_SCOPE
                    and not int(flags, 16) & (IFA_F_TENTATIVE | IFA_F_DADFAILED)):
                return IPv6Address(bytes.fromhex(addr))
    return None
