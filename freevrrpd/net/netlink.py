"""Links, addresses and virtual-MAC interfaces over rtnetlink (pyroute2).

One ``Netlink`` per daemon process, shared by every VRID thread.  pyroute2 0.9
keeps its socket and asyncio event loop per *thread* (a call from a second
thread silently opens another socket and loop), so instead of a lock around
one ``IPRoute`` every call runs on one private worker thread that owns it:
calls are serialised, each multi-step operation (create a macvlan, tune it,
bring it up) is atomic with respect to the other VRIDs, and no netlink state
is touched from two threads.  The worker starts on the first call; after a
fork (daemonizing) the child starts its own.

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
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as PyrouteError

from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.net import macvlan, rtnl, sysctl
from freevrrpd.net.linkwatch import LinkWatcher, link_usable
from freevrrpd.net.macvlan import vmac_name
from freevrrpd.net.rtnl import NetlinkError

__all__ = ["LinkWatcher", "Netlink", "NetlinkError", "link_usable", "vmac_name"]

log = logging.getLogger(__name__)

IPAddr = IPv4Address | IPv6Address
_T = TypeVar("_T")

CALL_TIMEOUT = 30.0  # seconds; a netlink call normally takes well under a millisecond


class Netlink:
    """Synchronous, thread-safe rtnetlink adapter for the daemon (see module doc)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")
        self._pid = os.getpid()
        self._ipr: Any = None  # IPRoute; created, used and closed on the worker only
        self._lock = threading.Lock()
        self._closed = False
        self._warned: set[str] = set()

    # ---- plumbing -------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[Any], _T]) -> _T:
        with self._lock:
            if self._closed:
                raise NetlinkError(f"{what}: the netlink adapter is closed", errno.EBADF)
            if self._pid != os.getpid():
                # We were forked (daemonizing) after being used: the worker thread
                # did not come along, and the socket is the parent's.  Start over.
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")
                self._pid, self._ipr = os.getpid(), None
            future = self._pool.submit(self._on_worker, fn)
        try:
            return future.result(timeout=CALL_TIMEOUT)
        except NetlinkError as exc:  # raised by our own checks on the worker
            raise NetlinkError(f"{what}: {exc}", exc.code) from exc
        except FutureTimeout as exc:
            raise NetlinkError(f"{what}: no answer from the kernel", errno.ETIMEDOUT) from exc
        except Exception as exc:
            raise NetlinkError(f"{what}: {rtnl.describe(exc)}", rtnl.error_code(exc)) from exc

    def _on_worker(self, fn: Callable[[Any], _T]) -> _T:
        if self._ipr is None:
            self._ipr = IPRoute(groups=0)  # requests only: events are LinkWatcher's job
        try:
            return fn(self._ipr)
        except (PyrouteError, NetlinkError):
            raise  # the kernel said no; the socket itself is fine
        except Exception:
            # Anything else (a socket error, pyroute2 confused) may have broken
            # the socket: reopen it on the next call.  Cheap, so no finer test.
            self._reset()
            raise

    def _reset(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            try:
                ipr.close()
            except Exception:  # closing a broken socket may fail too
                log.debug("closing the netlink socket failed", exc_info=True)

    def close(self) -> None:
        """Close the socket and stop the worker thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pool.submit(self._reset)
        self._pool.shutdown(wait=True)

    # ---- links ----------------------------------------------------------------------
    def ifindex(self, name: str) -> int | None:
        """Index of interface ``name``, None if there is none."""
        def run(ipr: Any) -> int | None:
            msg = rtnl.find_link(ipr, name)
            return None if msg is None else int(msg["index"])
        return self._call(f"cannot look up interface {name}", run)

    def link_mac(self, name: str) -> bytes:
        """The interface's current MAC address (6 bytes)."""
        return self._call(f"cannot read the MAC address of {name}",
                          lambda ipr: rtnl.link_mac(rtnl.need_link(ipr, name)))

    def mtu(self, name: str) -> int:
        """The interface's MTU (IFLA_MTU)."""
        return self._call(f"cannot read the MTU of {name}",
                          lambda ipr: int(rtnl.need_link(ipr, name).get("IFLA_MTU")))

    def link_up(self, name: str) -> bool:
        """Whether the interface can carry traffic (``link_usable``); False if missing."""
        def run(ipr: Any) -> bool:
            msg = rtnl.find_link(ipr, name)
            return msg is not None and link_usable(msg["flags"], msg.get("IFLA_OPERSTATE"))
        return self._call(f"cannot read the state of {name}", run)

    def delete_link(self, name: str) -> None:
        """Remove interface ``name``; nothing happens if it does not exist."""
        def run(ipr: Any) -> None:
            try:
                ipr.link("del", ifname=name)
            except PyrouteError as exc:
                if exc.code != errno.ENODEV:
                    raise
        self._call(f"cannot delete interface {name}", run)

    # ---- addresses ------------------------------------------------------------------
    def addresses(self, ifname: str) -> list[IPv4Interface | IPv6Interface]:
        """Every address on the interface, in kernel order (IPv4 primaries first)."""
        return self._call(f"cannot list the addresses of {ifname}",
                          lambda ipr: [rtnl.addr_iface(m) for m in rtnl.dump_addr(ipr, ifname)])

    def primary_ipv4(self, name: str, exclude: Collection[IPAddr] = ()) -> IPv4Address | None:
        """First primary (not secondary) global IPv4 address not in ``exclude`` (our
        virtual addresses): the source of IPv4 adverts (RFC 3768 5.1.1 / RFC 5798
        5.1.1.1).  None if there is none or the interface is missing."""
        def run(ipr: Any) -> IPv4Address | None:
            for msg in rtnl.dump_addr(ipr, name, socket.AF_INET, required=False):
                ip = rtnl.addr_iface(msg).ip
                if (msg["scope"] == rtnl.RT_SCOPE_UNIVERSE and isinstance(ip, IPv4Address)
                        and not rtnl.addr_flags(msg) & rtnl.IFA_F_SECONDARY
                        and ip not in exclude):
                    return ip
            return None
        return self._call(f"cannot read the addresses of {name}", run)

    def link_local_ipv6(self, name: str, exclude: Collection[IPAddr] = ()) -> IPv6Address | None:
        """A usable (not tentative, not DAD-failed) fe80::/10 address not in
        ``exclude``: the source of IPv6 adverts (RFC 5798 5.1.2.1).  None if there
        is none yet (DAD still running) or the interface is missing."""
        unusable = rtnl.IFA_F_TENTATIVE | rtnl.IFA_F_DADFAILED

        def run(ipr: Any) -> IPv6Address | None:
            for msg in rtnl.dump_addr(ipr, name, socket.AF_INET6, required=False):
                ip = rtnl.addr_iface(msg).ip
                if (isinstance(ip, IPv6Address) and ip.is_link_local and ip not in exclude
                        and not rtnl.addr_flags(msg) & unusable):
                    return ip
            return None
        return self._call(f"cannot read the addresses of {name}", run)

    def add_address(self, ifname: str, iface: IPv4Interface | IPv6Interface,
                    label: str | None = None) -> None:
        """Add ``iface`` to ``ifname``; already present is fine.

        IPv4 gets the subnet's broadcast address (none for /31 and /32, RFC 3021)
        and the optional label.  IPv6 gets IFA_F_NODAD: the election already
        decided who owns the address, so it is usable at once instead of
        tentative for a second (RFC 4862 5.4).
        """
        def run(ipr: Any) -> None:
            rtnl.add_addr(ipr, rtnl.need_link(ipr, ifname)["index"], iface, label)
        self._call(f"cannot add {iface} to {ifname}", run)

    def del_address(self, ifname: str, iface: IPv4Interface | IPv6Interface) -> None:
        """Remove ``iface`` from ``ifname``; already gone (or no such link) is fine.
        Removing a primary IPv4 address promotes its secondaries (see rtnl)."""
        def run(ipr: Any) -> None:
            link = rtnl.find_link(ipr, ifname)
            if link is not None:
                rtnl.del_addr(ipr, ifname, link["index"], iface)
        self._call(f"cannot remove {iface} from {ifname}", run)

    # ---- virtual MAC ----------------------------------------------------------------
    def ensure_macvlan(self, parent: str, vrid: int, family: int) -> str:
        """Make (or reuse) the up private macvlan carrying the virtual MAC of
        (``vrid``, ``family``) on ``parent``, with the ARP/ND sysctls set, and
        return its name (``vmac_name``).  Details in ``freevrrpd.net.macvlan``."""
        def run(ipr: Any) -> str:
            name = macvlan.ensure(ipr, parent, vrid, family)
            for warning in sysctl.pitfalls(name):
                if warning not in self._warned:  # once per process
                    self._warned.add(warning)
                    log.warning("%s", warning)
            return name
        mac = mac_text(virtual_mac(vrid, family))
        return self._call(f"cannot set up the virtual MAC {mac} on {parent}", run)

    def cleanup_stale(self, parent: str, vrid: int, family: int,
                      vips: Sequence[tuple[str, IPv4Interface | IPv6Interface]]) -> list[str]:
        """Remove what a killed earlier run left for this VRID: macvlans on
        ``parent`` carrying its virtual MAC (found by MAC and parent, or by our
        name) and those of the listed (device, address) pairs that are present.
        Returns one sentence per removal, for the log.

        Call it at start-up before claiming anything, and never list addresses the
        host owns for real (an address owner's own address).  Best effort: a
        failure is reported among the sentences and the rest goes on.
        """
        return self._call(f"cannot clean up after an earlier run on {parent}",
                          lambda ipr: macvlan.cleanup(ipr, parent, vrid, family, vips))
