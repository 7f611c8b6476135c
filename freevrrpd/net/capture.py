"""AF_PACKET sockets: receive filtered frames of one interface, send whole frames.

Sending complete Ethernet frames is what lets a master put the virtual MAC in
the source field (RFC 5798 section 7.3) on the parent interface, whether or not
a macvlan with that MAC exists.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from freevrrpd.core.settings import VRRP_GROUP_V4, VRRP_GROUP_V6, IPAddress
from freevrrpd.net.bpf import Instruction, attach, claim_filter, claim_watch_filter, vrrp_filter
from freevrrpd.net.closing import Closing
from freevrrpd.net.frames import ALL_NODES, ETH_P_ARP, ETH_P_IPV6, multicast_mac

T = TypeVar("T")
ETH_P_ALL = 0x0003
SOL_PACKET = 263  # linux/socket.h; the socket module does not export it
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux 4.20+
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; not exported by the socket module
SO_TIMESTAMPNS = 35  # asm-generic/socket.h (SO_TIMESTAMPNS_OLD); also the cmsg type
_TIMESPEC = struct.Struct("@ll")  # struct timespec: tv_sec, tv_nsec
SIOCGIFINDEX = 0x8933
SIOCGIFHWADDR = 0x8927
MAX_FRAME = 65536


class PacketSocket(Closing):
    """A non-blocking AF_PACKET/SOCK_RAW socket bound to one interface."""

    def __init__(self, ifname: str, ethertype: int, program: Sequence[Instruction] | None = None,
                 multicast: bytes | None = None) -> None:
        self.ifname = ifname
        self.ethertype = ethertype
        # Protocol 0: the socket is hooked to no packet type and so queues
        # nothing until bind() names one. Attaching the filter before that
        # bind leaves no window in which unfiltered frames could be queued.
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if program is not None:
                attach(self._sock, program)
            self._sock.bind((ifname, ethertype))
            self._sock.setblocking(False)
            # Both ioctls go through this socket, so they resolve the name in
            # the socket's network namespace.
            self.ifindex, self.hwaddr = self._ioctl_ifindex(), self._ioctl_hwaddr()
            if multicast is not None:
                self.add_multicast(multicast)
        except BaseException:
            self._sock.close()
            raise

    def set_filter(self, program: Sequence[Instruction]) -> None:
        """Replace the socket's BPF program (the kernel swaps it atomically)."""
        attach(self._sock, program)

    def set_rcvbuf(self, size: int) -> None:
        """A receive buffer of ``size`` bytes (past rmem_max with CAP_NET_ADMIN)."""
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def ignore_outgoing(self) -> None:
        """PACKET_IGNORE_OUTGOING: no copies of frames this host sends."""
        try:
            self._sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError as exc:
            if exc.errno != errno.ENOPROTOOPT:
                raise

    def _ioctl_ifindex(self) -> int:
        request = struct.pack("16si20x", self.ifname.encode(), 0)
        reply = fcntl.ioctl(self._sock.fileno(), SIOCGIFINDEX, request)
        index: int = struct.unpack_from("16si", reply)[1]
        return index

    def _ioctl_hwaddr(self) -> bytes:
        request = struct.pack("16s24x", self.ifname.encode())
        reply = fcntl.ioctl(self._sock.fileno(), SIOCGIFHWADDR, request)
        return reply[18:24]  # struct sockaddr after the name: family (2) + address

    def add_multicast(self, mac: bytes) -> None:
        """PACKET_ADD_MEMBERSHIP: have the NIC accept frames for the group MAC
        (01:00:5e:00:00:12 for 224.0.0.18) even if no IP socket joined the group.
        The membership ends with the socket."""
        mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_MULTICAST, len(mac), mac)
        self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    def fileno(self) -> int:
        return self._sock.fileno()

    def stamp(self) -> None:
        """SO_TIMESTAMPNS: each frame carries the kernel's time of arrival
        (CLOCK_REALTIME, in nanoseconds), read with ``recv_stamped``."""
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def recv_stamped(self, limit: int = 64) -> list[tuple[bytes, int]]:
        """Like ``recv_all``, with each frame's arrival time (0 if the kernel gave none)."""
        space = socket.CMSG_SPACE(_TIMESPEC.size)
        return [(data, _stamp(ancillary)) for data, ancillary, _flags, _addr
                in self._drain(limit, lambda: self._sock.recvmsg(MAX_FRAME, space))]

    def recv_all(self, limit: int = 64) -> list[bytes]:
        """Whatever is queued, up to ``limit`` frames, without blocking."""
        return self._drain(limit, lambda: self._sock.recv(MAX_FRAME))

    def _drain(self, limit: int, read: Callable[[], T]) -> list[T]:
        got: list[T] = []
        while len(got) < limit:
            try:
                got.append(read())
            except BlockingIOError:
                break
            except OSError as exc:
                # The kernel reports a link going down (or away) once as a
                # socket error; link state is netlink's business, not ours.
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    break
                raise
        return got

    def send(self, frame: bytes) -> None:
        """Send one complete Ethernet frame. The protocol is taken from the frame
        so that ARP sent on an IP socket is still marked as ARP for the kernel."""
        if len(frame) < 14:
            raise ValueError("frame shorter than an Ethernet header")
        (ethertype,) = struct.unpack_from("!H", frame, 12)
        sent = self._sock.sendto(frame, (self.ifname, ethertype))
        if sent != len(frame):
            raise OSError(errno.EMSGSIZE, f"short send on {self.ifname}: {sent}/{len(frame)}")

    def close(self) -> None:
        self._sock.close()



def _stamp(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = _TIMESPEC.unpack_from(value)
            return int(sec * 1_000_000_000 + nsec)
    return 0


def vrrp_socket(ifname: str, vrid: int, family: int) -> PacketSocket:
    """Adverts of one VRID and family (4 or 6) on ``ifname`` (RFC 5798 7.1: only
    adverts of our VRID reach the router's thread).

    Bound to ETH_P_ALL, not to the IP ethertype: sockets of a specific
    ethertype are served after the device's rx handler, and a macvlan in
    private mode consumes frames whose source is its own (virtual) MAC, which
    is exactly what a peer master's adverts carry.  ETH_P_ALL taps see the
    frame before that; the BPF program checks the ethertype itself.
    """
    if family not in (4, 6):
        raise ValueError(f"unsupported address family {family!r} (4 or 6)")
    group = VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6
    sock = PacketSocket(ifname, ETH_P_ALL, vrrp_filter(vrid, family), multicast_mac(group))
    # An ETH_P_ALL tap also gets a copy of every frame this host sends, only
    # for the filter to drop it: with N VRIDs each advert sent ran N filters,
    # the top kernel cost of a busy master (`make bench`, perf).  Older kernels
    # lack the option; the filter still drops those copies there.
    sock.ignore_outgoing()
    return sock


def claim_socket(ifname: str, family: int,
                 watch: Collection[IPAddress] | None = None) -> PacketSocket:
    """ARP, or NS/NA, on ``ifname``. For IPv6 it joins all-nodes, where DAD
    defences and unsolicited advertisements are sent (RFC 4862 section 5.4.4).
    With ``watch``, only frames that bind one of those addresses to a MAC."""
    program = claim_filter(family) if watch is None else claim_watch_filter(family, watch)
    if family == 4:
        return PacketSocket(ifname, ETH_P_ARP, program)
    if family == 6:
        return PacketSocket(ifname, ETH_P_IPV6, program, multicast_mac(ALL_NODES))
    raise ValueError(f"unsupported address family {family!r} (4 or 6)")
