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

Like the steps in ``rtnl``, these run on ``Netlink``'s worker thread.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from functools import partial
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError as PyrouteError

from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.net import rtnl, sysctl


def vmac_name(family: int, vrid: int, parent_index: int) -> str:
    """Name of our virtual-MAC interface: deterministic (same after a restart,
    found again after a crash) and within IFNAMSIZ-1 = 15 characters.  The
    parent's index rather than its name keeps it short; no dots, so that
    ``sysctl net.ipv4.conf.NAME.x`` works too."""
    name = f"vrrp{family}-{vrid}-{parent_index}"
    if len(name) > 15:
        name = f"v{family}-{vrid}-{parent_index:x}"  # at most "v6-255-7fffffff"
    return name


def _candidates(ipr: Any, pindex: int, mac: bytes, name: str) -> list[Any]:
    """Links holding ``mac`` on the parent, or our name; the one with our name first."""
    found = [m for m in ipr.link("dump")
             if m.get("IFLA_IFNAME") == name
             or (rtnl.kind(m) == "macvlan" and m.get("IFLA_LINK") == pindex
                 and rtnl.link_mac(m) == mac)]
    return sorted(found, key=lambda m: m.get("IFLA_IFNAME") != name)


def ensure(ipr: Any, parent: str, vrid: int, family: int) -> str:
    """Make (or reuse) the up, tuned private macvlan for (vrid, family) on parent.

    Reused only if it is a private macvlan on ``parent`` with the virtual MAC
    and our IPv6 settings (those must precede its first up); anything else
    holding the MAC on ``parent`` or our name is removed and made anew.
    """
    mac = virtual_mac(vrid, family)
    pindex = int(rtnl.need_link(ipr, parent)["index"])
    name = vmac_name(family, vrid, pindex)
    keep: Any = None
    for msg in _candidates(ipr, pindex, mac, name):
        ifname = msg.get("IFLA_IFNAME")
        good = (rtnl.kind(msg) == "macvlan" and msg.get("IFLA_LINK") == pindex
                and rtnl.link_mac(msg) == mac and rtnl.macvlan_mode(msg) == "private"
                and sysctl.vmac_tuned(ifname, family))
        if keep is None and good:
            keep = msg
        elif rtnl.kind(msg) == "macvlan":
            ipr.link("del", index=msg["index"])
        else:
            raise rtnl.NetlinkError(f"a {rtnl.kind(msg) or 'non-macvlan'} interface already "
                                    f"has the name {name}", errno.EEXIST)
    if keep is None:
        ipr.link("add", ifname=name, kind="macvlan", link=pindex,
                 address=mac_text(mac), macvlan_mode="private")
        ifname, index = name, int(rtnl.need_link(ipr, name)["index"])
    else:
        ifname, index = keep.get("IFLA_IFNAME"), int(keep["index"])
    sysctl.tune_vmac(ifname, parent, family)  # while still down: see addr_gen_mode
    ipr.link("set", index=index, state="up")
    return str(ifname)


def cleanup(ipr: Any, parent: str, vrid: int, family: int,
            vips: Sequence[tuple[str, IPv4Interface | IPv6Interface]]) -> list[str]:
    """Remove the virtual-MAC interfaces of (vrid, family) on parent and the listed
    addresses where present; one sentence per thing removed (or not removable)."""
    mac = virtual_mac(vrid, family)
    done: list[str] = []
    plink = rtnl.find_link(ipr, parent)
    if plink is not None:
        pindex = int(plink["index"])
        for msg in _candidates(ipr, pindex, mac, vmac_name(family, vrid, pindex)):
            if rtnl.kind(msg) != "macvlan":
                continue
            what = (f"virtual-MAC interface {msg.get('IFLA_IFNAME')} "
                    f"({mac_text(rtnl.link_mac(msg))} on {parent})")
            done.append(_try(partial(ipr.link, "del", index=msg["index"]), what))
    for dev, iface in vips:
        try:
            present = [a for a in rtnl.dump_addr(ipr, dev, required=False)
                       if rtnl.same_address(rtnl.addr_iface(a), iface)]
        except PyrouteError as exc:
            done.append(f"could not check for {iface} on {dev}: {rtnl.describe(exc)}")
            continue
        for msg in present:
            addr = rtnl.addr_iface(msg)
            done.append(_try(partial(rtnl.del_addr, ipr, dev, msg["index"], addr),
                             f"virtual address {addr} from {dev}"))
    return done


def _try(action: Callable[[], object], what: str) -> str:
    try:
        action()
    except (PyrouteError, OSError) as exc:
        return f"could not remove {what} left by an earlier run: {rtnl.describe(exc)}"
    return f"removed {what} left by an earlier run"
