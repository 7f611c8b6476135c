"""Link and address events: rtnetlink RTMGRP_LINK (and the address groups), no polling.

``LinkWatcher`` owns a plain non-blocking netlink socket subscribed to link
(and optionally address) events; the daemon's link monitor
(``freevrrpd.daemon.links``) waits on ``fileno()`` and calls ``events()`` when
it is readable.  Messages are decoded with pyroute2's ``ifinfmsg`` and
``ifaddrmsg``.  A plain socket rather than a pyroute2 ``IPRoute`` because the
latter keeps its socket per thread and reads it from an asyncio loop, which
does not mix with select() on a descriptor owned by another thread.

The initial state comes from a link dump taken *after* subscribing, so no
change can fall between the two; an event queued before the dump may then
report a state that the dump already superseded, immediately followed by
the current one -- every event carries the whole state, so the last report
is always right.  If the kernel drops events (ENOBUFS), what is still queued
is discarded and the state re-read from a fresh dump (and every watched link
reported as "any address may have changed").  One owner thread.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Collection, Iterator
from ipaddress import ip_address
from typing import Any, NamedTuple

from freevrrpd.core.settings import IPAddress
from freevrrpd.net.closing import Closing
from freevrrpd.net.pyroute import ifaddrmsg, ifinfmsg

# linux/rtnetlink.h, linux/netlink.h, linux/if.h
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x10
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; not exported by the socket module

_NLMSGHDR = struct.Struct("=IHHII")
RCVBUF = 1 << 20  # room for a burst of events (every link of a busy host flapping)
RECV_SIZE = 1 << 18  # one datagram; link messages with VF info can exceed 32 KiB


def link_usable(flags: int, operstate: str | None) -> bool:
    """Whether a link can carry VRRP traffic.

    Admin up (IFF_UP) *and* carrier (IFF_LOWER_UP) *and* RFC 2863 operational
    state UP or UNKNOWN.  UNKNOWN is what drivers without operstate support
    report while working (dummy, loopback, some tunnels); veth reports UP only
    while its peer is up, so a downed peer counts as carrier loss.  DORMANT
    (e.g. 802.1X not yet authorised), TESTING, LOWERLAYERDOWN (a macvlan or
    VLAN whose parent is down) and DOWN are not usable.
    """
    return bool(flags & IFF_UP and flags & IFF_LOWER_UP) and operstate in (None, "UP", "UNKNOWN")


def _messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, sequence, whole message) for each netlink message in a datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return  # truncated or corrupt: ignore the rest of this datagram
        yield mtype, flags, seq, data[offset:offset + length]
        offset += (length + 3) & ~3


def _decode(raw: bytes) -> tuple[int, str | None, bool] | None:
    """(ifindex, name, usable) of an RTM_NEWLINK/RTM_DELLINK message about a link;
    None for the bridge's per-port messages (family AF_BRIDGE), whose
    RTM_DELLINK means "left the bridge", not "deleted"."""
    msg: Any = ifinfmsg(raw)
    msg.decode()
    if msg["family"] != socket.AF_UNSPEC:
        return None
    return int(msg["index"]), msg.get_attr("IFLA_IFNAME"), link_usable(
        int(msg["flags"]), msg.get_attr("IFLA_OPERSTATE"))


def dump_links() -> dict[int, tuple[str, bool]]:
    """{ifindex: (name, usable)} of every link in the current namespace."""
    for _attempt in range(5):
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                           socket.NETLINK_ROUTE) as sock:
            sock.bind((0, 0))
            seq = 1
            # struct ifinfomsg: family, pad, type, index, flags, change (all zero).
            body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
            sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK,
                                     NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            links: dict[int, tuple[str, bool]] = {}
            interrupted = done = False
            while not done:
                for mtype, flags, mseq, raw in _messages(sock.recv(RECV_SIZE)):
                    if mseq != seq:
                        continue
                    interrupted |= bool(flags & NLM_F_DUMP_INTR)
                    if mtype == NLMSG_DONE:
                        done = True
                    elif mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", raw, _NLMSGHDR.size)[0]
                        raise OSError(code, f"link dump failed: {os.strerror(code)}")
                    elif mtype == RTM_NEWLINK and (link := _decode(raw)) and link[1]:
                        links[link[0]] = (link[1], link[2])
            if not interrupted:  # else links changed during the dump: take another
                return links
    return links


class LinkState(NamedTuple):
    """A watched link became usable or unusable (a deleted link is not usable)."""

    name: str
    usable: bool


class LinkIndex(NamedTuple):
    """A watched name now belongs to interface ``ifindex`` (None: it does not exist):
    a link deleted and created again under the same name has a new index."""

    name: str
    ifindex: int | None


class AddressChange(NamedTuple):
    """An address was added to (or removed from) a watched link; ``address`` None
    means events were lost and any address may have changed."""

    name: str
    address: IPAddress | None
    added: bool


Event = LinkState | LinkIndex | AddressChange


class LinkWatcher(Closing):
    """State and index of some links, and their address changes, from netlink events."""

    def __init__(self, names: Collection[str], rcvbuf: int = RCVBUF,
                 addresses: bool = False) -> None:
        self._names = frozenset(names)
        self._state: dict[str, bool] = {}
        self._where: dict[str, int | None] = {}  # watched name -> ifindex
        self._index: dict[int, str] = {}  # ifindex -> watched name
        self._sock = socket.socket(socket.AF_NETLINK,
                                   socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_ROUTE)
        try:
            try:  # SO_RCVBUFFORCE passes rmem_max when we have CAP_NET_ADMIN
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            groups = RTMGRP_LINK | (RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR if addresses else 0)
            self._sock.bind((0, groups))  # subscribe first, then read the state
            self._resync([])
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def state(self, name: str) -> bool:
        """Last known state of a watched link (False while it does not exist)."""
        if name not in self._names:
            raise KeyError(f"{name} is not watched")
        return self._state[name]

    def index(self, name: str) -> int | None:
        """The interface index of a watched name (None while it does not exist)."""
        if name not in self._names:
            raise KeyError(f"{name} is not watched")
        return self._where.get(name)

    def poll(self) -> list[tuple[str, bool]]:
        """The usable/not-usable changes among ``events()``, as (name, usable)."""
        return [(e.name, e.usable) for e in self.events() if isinstance(e, LinkState)]

    def events(self) -> list[Event]:
        """Read every pending event without blocking; what changed, oldest first."""
        out: list[Event] = []
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                # Events were lost.  The kernel reports that *before* handing out
                # what is still queued, which is older than the loss: drop it all,
                # then read the truth.
                self._discard_pending()
                self._resync(out)
                out += [AddressChange(name, None, True) for name in sorted(self._names)]
                continue
            for mtype, _flags, _seq, raw in _messages(data):
                if mtype in (RTM_NEWLINK, RTM_DELLINK) and (link := _decode(raw)) is not None:
                    index, name, usable = link
                    gone = mtype == RTM_DELLINK
                    self._event(out, index, name, usable and not gone, gone)
                elif mtype in (RTM_NEWADDR, RTM_DELADDR):
                    change = self._address(raw, mtype == RTM_NEWADDR)
                    if change is not None:
                        out.append(change)

    def _address(self, raw: bytes, added: bool) -> AddressChange | None:
        msg: Any = ifaddrmsg(raw)
        msg.decode()
        name = self._index.get(int(msg["index"]))
        if name is None:
            return None
        text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        return AddressChange(name, ip_address(text) if text else None, added)

    def _discard_pending(self) -> None:
        while True:
            try:
                self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise

    def _event(self, out: list[Event], index: int, name: str | None,
               usable: bool, gone: bool) -> None:
        old = self._index.get(index)
        if old is not None and (gone or name != old):  # deleted or renamed away
            del self._index[index]
            self._set(out, old, False, None)
        if name in self._names and not gone:
            self._index[index] = name
            self._set(out, name, usable, index)

    def _set(self, out: list[Event], name: str, usable: bool, index: int | None) -> None:
        if self._where.get(name) != index:
            self._where[name] = index
            out.append(LinkIndex(name, index))
        if self._state.get(name) != usable:
            self._state[name] = usable
            out.append(LinkState(name, usable))

    def _resync(self, out: list[Event]) -> None:
        links = dump_links()
        self._index = {i: n for i, (n, _u) in links.items() if n in self._names}
        where = {n: i for i, n in self._index.items()}
        now = {name: False for name in self._names}
        now.update({n: u for n, u in links.values() if n in self._names})
        first = not self._state
        for name, usable in sorted(now.items()):
            if first:
                self._state[name], self._where[name] = usable, where.get(name)
            else:
                self._set(out, name, usable, where.get(name))

    def close(self) -> None:
        self._sock.close()
