"""The virtual-MAC interface: a macvlan carrying the VRRP virtual MAC.

RFC 5798 7.3 (RFC 3768 7.3 for IPv4): the virtual router MAC address is
00-00-5E-00-01-{VRID} for IPv4 and 00-00-5E-00-02-{VRID} for IPv6.  A
macvlan on the VRID's interface carries it and holds the virtual addresses
while master; the sysctls in ``freevrrpd.net.sysctl`` make it, and only it,
answer ARP/ND for them.

Why private mode (keepalived's choice too): a private macvlan behaves like a
separate NIC on the wire.  The virtual-MAC interfaces of several VRIDs on one
parent never switch frames to each other inside the host, and frames whose
source is the virtual MAC itself (the peer master's adverts and gratuitous
ARPs, which carry the same virtual MAC) still reach a private macvlan, where
bridge and VEPA mode filter them out as "sent by one of our own ports".  The
adverts themselves are received on the parent, which sees them in any mode.

Like the steps in ``rtnl``, these run under ``Netlink``'s lock.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from functools import partial
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.net import rtnl, sysctl
from freevrrpd.net.rtnl import RtnlSocket


def vmac_name(family: int, vrid: int, parent_index: int) -> str:
    """Name of our virtual-MAC interface: deterministic (same after a restart,
    found again after a crash) and within IFNAMSIZ-1 = 15 characters.  The
    parent's index rather than its name keeps it short; no dots, so that
    ``sysctl net.ipv4.conf.NAME.x`` works too."""
    name = f"vrrp{family}-{vrid}-{parent_index}"
    if len(name) > 15:
        name = f"v{family}-{vrid}-{parent_index:x}"  # at most "v6-255-7fffffff"
    return name


def _candidates(nl: RtnlSocket, pindex: int, mac: bytes, link: str) -> list[Any]:
    """Links holding ``mac`` on the parent, or our name; the one with our name first.
    One dump of every link: for the clean-up at start, not for each claim."""
    found = [m for m in rtnl.dump_links(nl)
             if rtnl.name(m) == link
             or (rtnl.kind(m) == "macvlan" and m.get_attr("IFLA_LINK") == pindex
                 and rtnl.link_mac(m) == mac)]
    return sorted(found, key=lambda m: rtnl.name(m) != link)


def _good(msg: Any, pindex: int, mac: bytes, family: int) -> bool:
    return (rtnl.kind(msg) == "macvlan" and msg.get_attr("IFLA_LINK") == pindex
            and rtnl.link_mac(msg) == mac and rtnl.macvlan_mode(msg) == "private"
            and sysctl.vmac_tuned(str(rtnl.name(msg)), family))


def ensure(nl: RtnlSocket, parent: str, vrid: int, family: int, group: int) -> str:
    """Make (or reuse) the up, tuned private macvlan for (vrid, family) on parent,
    in link group ``group`` (deleted all at once when the daemon stops).

    Ours is found by its name, not by a dump of every link (a thousand routers
    may claim at once).  It is reused if it is a private macvlan on ``parent``
    with the virtual MAC and our IPv6 settings (those must precede its first
    up), else made anew.  The kernel refuses to bring it up while another
    macvlan on the parent is up with the same MAC (EADDRINUSE); only then are
    the links dumped and the other holders removed.  A down one holding the MAC
    is left alone: it takes no traffic.
    """
    mac = virtual_mac(vrid, family)
    pindex = int(rtnl.need_link(nl, parent)["index"])
    link = vmac_name(family, vrid, pindex)
    found = rtnl.find_link(nl, link)
    if found is not None and not _good(found, pindex, mac, family):
        _remove_ours(nl, found, link)
        found = None
    if found is None:
        rtnl.add_macvlan(nl, link, pindex, mac_text(mac), group)
        found = rtnl.need_link(nl, link)
    sysctl.tune_vmac(link, parent, family)  # while still down: see addr_gen_mode
    try:
        rtnl.set_up(nl, int(found["index"]))
    except rtnl.NetlinkError as exc:
        if exc.code != errno.EADDRINUSE:
            raise
        for msg in _candidates(nl, pindex, mac, link):
            if rtnl.name(msg) != link:
                rtnl.delete_link(nl, int(msg["index"]))
        rtnl.set_up(nl, int(found["index"]))
    return link


def _remove_ours(nl: RtnlSocket, msg: Any, link: str) -> None:
    """Our name on something that is not right as it is: a macvlan of ours left
    in another mode or on another parent is removed; anything else is not ours
    to remove."""
    if rtnl.kind(msg) != "macvlan":
        raise rtnl.NetlinkError(f"a {rtnl.kind(msg) or 'non-macvlan'} interface already "
                                f"has the name {link}", errno.EEXIST)
    rtnl.delete_link(nl, int(msg["index"]))


def cleanup(nl: RtnlSocket, parent: str, vrid: int, family: int,
            vips: Sequence[tuple[str, IPv4Interface | IPv6Interface]]) -> list[str]:
    """Remove the virtual-MAC interfaces of (vrid, family) on parent and the listed
    addresses where present; one sentence per thing removed (or not removable)."""
    mac = virtual_mac(vrid, family)
    done: list[str] = []
    plink = rtnl.find_link(nl, parent)
    if plink is not None:
        pindex = int(plink["index"])
        for msg in _candidates(nl, pindex, mac, vmac_name(family, vrid, pindex)):
            if rtnl.kind(msg) != "macvlan":
                continue
            what = (f"virtual-MAC interface {rtnl.name(msg)} "
                    f"({mac_text(rtnl.link_mac(msg))} on {parent})")
            done.append(_try(partial(rtnl.delete_link, nl, int(msg["index"])), what))
    for dev, iface in vips:
        try:
            present = [a for a in rtnl.dump_addr(nl, dev, required=False)
                       if rtnl.same_address(rtnl.addr_iface(a), iface)]
        except rtnl.NetlinkError as exc:
            done.append(f"could not check for {iface} on {dev}: {rtnl.describe(exc)}")
            continue
        for msg in present:
            addr = rtnl.addr_iface(msg)
            done.append(_try(partial(rtnl.del_addr, nl, dev, int(msg["index"]), addr),
                             f"virtual address {addr} from {dev}"))
    return done


def _try(action: Callable[[], object], what: str) -> str:
    try:
        action()
    except (rtnl.NetlinkError, OSError) as exc:
        return f"could not remove {what} left by an earlier run: {rtnl.describe(exc)}"
    return f"removed {what} left by an earlier run"
