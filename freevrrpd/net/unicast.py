"""Adverts to unicast peers: a raw IP socket of protocol 112 on the router's interface.

Multicast adverts go out as whole Ethernet frames (``frames``, ``capture``):
their destination MAC follows from the group.  A unicast peer's MAC does not:
the kernel has to route the packet and resolve the neighbour (ARP / ND), which
only a socket of the IP layer gets.  The IP header is the kernel's (source
bound here, TTL / hop limit 255 as RFC 5798 5.1.1.3 / 5.1.2.3 ask, traffic
class CS6); the VRRP checksum is already in the payload, computed over the
pseudo-header with the peer as destination (RFC 5798 5.2.8).

The socket never reads: a filter that drops everything keeps its queue empty.
Its existence has a use of its own: the kernel delivers the peers' unicast
adverts to it (and the capture reads them), so it does not answer them with
ICMP "protocol unreachable".
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from freevrrpd.core.settings import VRRP_PROTO, IPAddress
from freevrrpd.net import bpf
from freevrrpd.net.frames import DEFAULT_TOS

IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)  # linux/in6.h


class UnicastSender:
    def __init__(self, ifname: str, src: IPAddress) -> None:
        self.ifindex = socket.if_nametoindex(ifname)
        family = socket.AF_INET if src.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_RAW, VRRP_PROTO)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if src.version == 4:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DEFAULT_TOS)
                sock.bind((str(src), 0))
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, DEFAULT_TOS)
                sock.bind((str(src), 0, 0, self.ifindex if src.is_link_local else 0))
            bpf.attach(sock, [(bpf.RET_K, 0, 0, 0)])
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def _address(self, peer: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        if peer.version == 4:
            return (str(peer), 0)
        return (str(peer), 0, 0, self.ifindex if peer.is_link_local else 0)

    def send(self, messages: Iterable[tuple[bytes, IPAddress]]) -> list[str]:
        """Send each payload to its peer; the failures, one line each (a peer whose
        neighbour entry failed must not keep the others from their adverts)."""
        failed = []
        for payload, peer in messages:
            try:
                self.sock.sendto(payload, self._address(peer))
            except OSError as exc:
                failed.append(f"{peer}: {exc.strerror or exc}")
        return failed

    def close(self) -> None:
        self.sock.close()
