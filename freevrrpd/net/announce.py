"""Gratuitous ARP and unsolicited neighbour advertisements for a new master.

RFC 5798 section 6.4.1 (and 6.4.2 on becoming master): for every virtual
address, tell the LAN that it is now at the virtual router MAC, so hosts and
switches stop sending to the old master. How often and how far apart is the
daemon's decision; this module sends one round.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.settings import IPAddress
from freevrrpd.net.capture import PacketSocket
from freevrrpd.net.frames import garp_frame, unsolicited_na_frame


def announcement_frames(mac: bytes, ips: Sequence[IPAddress],
                        ll_src: IPv6Address | None = None) -> list[bytes]:
    """One frame per address: a gratuitous ARP request for IPv4, an unsolicited NA
    for IPv6 (sourced from ``ll_src`` when given, else from the VIP itself, see
    ``frames.unsolicited_na_frame``)."""
    frames: list[bytes] = []
    for ip in ips:
        if isinstance(ip, IPv4Address):
            frames.append(garp_frame(mac, ip))
        else:
            frames.append(unsolicited_na_frame(mac, ip if ll_src is None else ll_src, ip))
    return frames


def announce(sock: PacketSocket, mac: bytes, ips: Sequence[IPAddress],
             ll_src: IPv6Address | None = None) -> int:
    """Send one announcement per address on ``sock``; returns the number sent.
    A failed send raises OSError at once: it means the link is unusable, and
    the caller retries the whole round."""
    sent = 0
    for frame in announcement_frames(mac, ips, ll_src):
        sock.send(frame)
        sent += 1
    return sent
