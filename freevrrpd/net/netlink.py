"""Links, addresses and virtual-MAC interfaces over rtnetlink.

One ``Netlink`` per daemon process, shared by every VRID thread: one socket of
our own (``rtnl``, messages by pyroute2) behind a lock, so each multi-step
operation (create a macvlan, tune it, bring it up) is atomic with respect to
the other VRIDs.  After a fork the child opens its own socket.

Everything acts on the network namespace of the calling process (the daemon
runs inside the namespace it serves) and never runs ``ip``.  The steps live
in ``rtnl`` (links, addresses), ``macvlan`` (the virtual MAC) and ``sysctl``
(ARP/ND settings and why); ``LinkWatcher`` (link events) in ``linkwatch``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable, Collection, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import TypeVar

from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.net import macvlan, rtnl, sysctl
from freevrrpd.net.macvlan import vmac_name
from freevrrpd.net.rtnl import NetlinkError, RtnlSocket

__all__ = ["Netlink", "NetlinkError", "group_of", "vmac_name"]

log = logging.getLogger(__name__)

IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface
_T = TypeVar("_T")


def group_of(tag: str) -> int:
    """A link group of our own (IFLA_GROUP) for the virtual-MAC interfaces of one
    daemon instance, from a tag of it (its pid file): never 0, the default group."""
    return zlib.crc32(tag.encode()) | 0x40000000


class Netlink:
    """Synchronous, thread-safe rtnetlink adapter for the daemon (see module doc)."""

    def __init__(self, group: int = 0) -> None:
        self.group = group  # the link group our virtual-MAC interfaces join (0: none)
        self._lock = threading.Lock()
        self._nl: RtnlSocket | None = None
        self._pid = os.getpid()
        self._closed = False
        self._warned: set[str] = set()
        # At the daemon's exit: removals collected, done at once (``flush_deletes``).
        self._deferred: tuple[list[tuple[str, IPIface]], list[str]] | None = None

    # ---- plumbing -------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[RtnlSocket], _T]) -> _T:
        with self._lock:
            if self._closed:
                raise NetlinkError(f"{what}: the netlink adapter is closed", errno.EBADF)
            if self._nl is None or self._pid != os.getpid():
                # A fork (daemonizing) after use: the socket is the parent's.
                self._pid, self._nl = os.getpid(), self._open()
            try:
                return fn(self._nl)
            except NetlinkError as exc:
                raise NetlinkError(f"{what}: {exc}", exc.code) from exc
            except OSError as exc:
                # The socket itself may be broken: a new one next time.
                self._nl.close()
                self._nl = None
                raise NetlinkError(f"{what}: {rtnl.describe(exc)}", exc.errno) from exc

    @staticmethod
    def _open() -> RtnlSocket:
        return RtnlSocket()

    def close(self) -> None:
        """Close the socket; idempotent."""
        with self._lock:
            self._closed = True
            if self._nl is not None:
                self._nl.close()
                self._nl = None

    # ---- the exit: every removal at once --------------------------------------------
    def defer_deletes(self) -> None:
        """From now on addresses and interfaces to remove are collected, and removed
        together by ``flush_deletes``: at the exit of a daemon of many routers, one
        request per few hundred addresses instead of one round trip (and a dump of
        the interface) each, and the virtual-MAC interfaces unregistered together."""
        with self._lock:
            self._deferred = ([], [])

    def _defer(self, add: Callable[[tuple[list[tuple[str, IPIface]], list[str]]], None],
               ) -> bool:
        with self._lock:
            if self._deferred is None:
                return False
            add(self._deferred)
            return True

    def flush_deletes(self) -> list[tuple[str, IPIface, str]]:
        """Do the collected removals; (interface, address, reason) of each that failed."""
        with self._lock:
            deferred, self._deferred = self._deferred, None
        if deferred is None:
            return []
        addresses, links = deferred
        return self._call("cannot remove the virtual addresses and interfaces",
                          lambda nl: rtnl.delete_many(nl, addresses, links, self.group))

    # ---- links ----------------------------------------------------------------------
    def ifindex(self, link: str) -> int | None:
        """Index of interface ``link``, None if there is none."""
        def run(nl: RtnlSocket) -> int | None:
            msg = rtnl.find_link(nl, link)
            return None if msg is None else int(msg["index"])
        return self._call(f"cannot look up interface {link}", run)

    def link_mac(self, link: str) -> bytes:
        """The interface's current MAC address (6 bytes)."""
        return self._call(f"cannot read the MAC address of {link}",
                          lambda nl: rtnl.link_mac(rtnl.need_link(nl, link)))

    def mtu(self, link: str) -> int:
        """The interface's MTU (IFLA_MTU)."""
        return self._call(f"cannot read the MTU of {link}",
                          lambda nl: int(rtnl.need_link(nl, link).get_attr("IFLA_MTU")))

    def link_up(self, link: str) -> bool:
        """Whether the interface can carry traffic (``link_usable``); False if missing."""
        from freevrrpd.net.linkwatch import link_usable

        def run(nl: RtnlSocket) -> bool:
            msg = rtnl.find_link(nl, link)
            return msg is not None and link_usable(int(msg["flags"]),
                                                   msg.get_attr("IFLA_OPERSTATE"))
        return self._call(f"cannot read the state of {link}", run)

    def delete_link(self, link: str) -> None:
        """Remove interface ``link``; nothing happens if it does not exist."""
        if self._defer(lambda d: d[1].append(link)):
            return

        def run(nl: RtnlSocket) -> None:
            msg = rtnl.find_link(nl, link)
            if msg is not None:
                rtnl.delete_link(nl, int(msg["index"]))
        self._call(f"cannot delete interface {link}", run)

    def delete_group(self) -> None:
        """Every virtual-MAC interface of this instance at once (at exit)."""
        if self.group:
            self._call("cannot delete the virtual-MAC interfaces",
                       lambda nl: rtnl.delete_group(nl, self.group))

    # ---- addresses ------------------------------------------------------------------
    def addresses(self, link: str) -> list[IPIface]:
        """Every address on the interface, in kernel order (IPv4 primaries first)."""
        return self._call(f"cannot list the addresses of {link}",
                          lambda nl: [rtnl.addr_iface(m) for m in rtnl.dump_addr(nl, link)])

    def primary_ipv4(self, link: str, exclude: Collection[IPAddr] = ()) -> IPv4Address | None:
        """First primary (not secondary) global IPv4 address not in ``exclude`` (our
        virtual addresses): the source of IPv4 adverts (RFC 3768 5.1 / RFC 5798
        5.1.1.1).  None if there is none or the interface is missing."""
        def run(nl: RtnlSocket) -> IPv4Address | None:
            for msg in rtnl.dump_addr(nl, link, socket.AF_INET, required=False):
                ip = rtnl.addr_iface(msg).ip
                if (msg["scope"] == rtnl.RT_SCOPE_UNIVERSE and isinstance(ip, IPv4Address)
                        and not rtnl.addr_flags(msg) & rtnl.IFA_F_SECONDARY
                        and ip not in exclude):
                    return ip
            return None
        return self._call(f"cannot read the addresses of {link}", run)

    def link_local_ipv6(self, link: str, exclude: Collection[IPAddr] = ()) -> IPv6Address | None:
        """A usable (not tentative, not DAD-failed) fe80::/10 address not in
        ``exclude``: the source of IPv6 adverts (RFC 5798 5.1.2.1).  None if there
        is none yet (DAD still running) or the interface is missing."""
        unusable = rtnl.IFA_F_TENTATIVE | rtnl.IFA_F_DADFAILED

        def run(nl: RtnlSocket) -> IPv6Address | None:
            for msg in rtnl.dump_addr(nl, link, socket.AF_INET6, required=False):
                ip = rtnl.addr_iface(msg).ip
                if (isinstance(ip, IPv6Address) and ip.is_link_local and ip not in exclude
                        and not rtnl.addr_flags(msg) & unusable):
                    return ip
            return None
        return self._call(f"cannot read the addresses of {link}", run)

    def add_address(self, link: str, iface: IPIface, label: str | None = None) -> None:
        """Add ``iface`` to ``link``; already present is fine.

        IPv4 gets the subnet's broadcast address (none for /31 and /32, RFC 3021)
        and the optional label.  IPv6 gets IFA_F_NODAD: the election already
        decided who owns the address, so it is usable at once instead of
        tentative for a second (RFC 4862 5.4).
        """
        def run(nl: RtnlSocket) -> None:
            rtnl.add_addr(nl, int(rtnl.need_link(nl, link)["index"]), iface, label)
        self._call(f"cannot add {iface} to {link}", run)

    def add_addresses(self, link: str, ifaces: Sequence[IPIface]) -> None:
        """``add_address`` for several, in one request (a router of many addresses
        claims them in one round trip); every failure is named."""
        def run(nl: RtnlSocket) -> None:
            index = int(rtnl.need_link(nl, link)["index"])
            answers = nl.batch([rtnl.add_request(index, i, None) for i in ifaces])
            bad = [(i, code) for i, (code, _a) in zip(ifaces, answers, strict=True)
                   if code and code != errno.EEXIST]
            if bad:
                raise NetlinkError("; ".join(f"{i}: {os.strerror(c)}" for i, c in bad),
                                   bad[0][1])
        self._call(f"cannot add addresses to {link}", run)

    def del_address(self, link: str, iface: IPIface) -> None:
        """Remove ``iface`` from ``link``; already gone (or no such link) is fine.
        Removing a primary IPv4 address promotes its secondaries (see rtnl)."""
        if self._defer(lambda d: d[0].append((link, iface))):
            return

        def run(nl: RtnlSocket) -> None:
            msg = rtnl.find_link(nl, link)
            if msg is not None:
                rtnl.del_addr(nl, link, int(msg["index"]), iface)
        self._call(f"cannot remove {iface} from {link}", run)

    # ---- virtual MAC ----------------------------------------------------------------
    def ensure_macvlan(self, parent: str, vrid: int, family: int) -> str:
        """Make (or reuse) the up private macvlan carrying the virtual MAC of
        (``vrid``, ``family``) on ``parent``, with the ARP/ND sysctls set, and
        return its name (``vmac_name``).  Details in ``freevrrpd.net.macvlan``."""
        def run(nl: RtnlSocket) -> str:
            link = macvlan.ensure(nl, parent, vrid, family, self.group)
            for warning in sysctl.pitfalls(link):
                if warning not in self._warned:  # once per process
                    self._warned.add(warning)
                    log.warning("%s", warning)
            return link
        mac = mac_text(virtual_mac(vrid, family))
        return self._call(f"cannot set up the virtual MAC {mac} on {parent}", run)

    def cleanup_stale(self, parent: str, vrid: int, family: int,
                      vips: Sequence[tuple[str, IPIface]]) -> list[str]:
        """Remove what a killed earlier run left for this VRID: macvlans on
        ``parent`` carrying its virtual MAC (found by MAC and parent, or by our
        name) and those of the listed (device, address) pairs that are present.
        Returns one sentence per removal, for the log.

        Call it at start-up before claiming anything, and never list addresses the
        host owns for real (an address owner's own address).  Best effort: a
        failure is reported among the sentences and the rest goes on.
        """
        return self._call(f"cannot clean up after an earlier run on {parent}",
                          lambda nl: macvlan.cleanup(nl, parent, vrid, family, vips))
