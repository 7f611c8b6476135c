"""Small synchronous steps over one pyroute2 ``IPRoute``, and reading its messages.

Only ``Netlink``'s worker thread calls these (see ``freevrrpd.net.netlink``);
they take the ``IPRoute`` as their first argument and let pyroute2's errors
through, except where "already so" is the goal (idempotent add/delete).
"""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError as PyrouteError

from freevrrpd.net import sysctl

IPIface = IPv4Interface | IPv6Interface

# linux/if_addr.h, linux/rtnetlink.h
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE = 0


class NetlinkError(Exception):
    """A netlink or sysctl operation failed; the message names the interface/address."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # errno value when the kernel gave one


def describe(exc: BaseException) -> str:
    """The reason in an error, in words."""
    if isinstance(exc, PyrouteError):
        return os.strerror(exc.code) if exc.code else str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def error_code(exc: BaseException) -> int | None:
    if isinstance(exc, PyrouteError):
        return int(exc.code)
    if isinstance(exc, OSError):
        return exc.errno
    return None


# ---- reading messages ----------------------------------------------------------------
def kind(msg: Any) -> str | None:
    """IFLA_INFO_KIND ("macvlan", "veth", ...); None for physical interfaces."""
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def macvlan_mode(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    data = info.get("IFLA_INFO_DATA") if info is not None else None
    return data.get("IFLA_MACVLAN_MODE") if data is not None else None


def link_mac(msg: Any) -> bytes:
    text = msg.get("IFLA_ADDRESS") or ""
    return bytes.fromhex(text.replace(":", ""))


def addr_flags(msg: Any) -> int:
    # IFA_FLAGS carries all 32 bits; the header field only the low 8.
    flags = msg.get("IFA_FLAGS")
    return int(flags if flags is not None else msg["flags"])


def addr_iface(msg: Any) -> IPIface:
    # For IPv4 IFA_LOCAL is our address (IFA_ADDRESS is the peer on
    # point-to-point links); IPv6 has only IFA_ADDRESS.
    ip = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    return ip_interface(f"{ip}/{msg['prefixlen']}")


def same_address(a: IPIface, b: IPIface) -> bool:
    """Whether the kernel sees one address: IPv4 is keyed by address and prefix,
    IPv6 by address only."""
    if a.version == 4:
        return a == b
    return a.ip == b.ip


# ---- steps ---------------------------------------------------------------------------
def find_link(ipr: Any, name: str) -> Any | None:
    """The RTM_NEWLINK message of interface ``name``, None if there is none."""
    try:
        return ipr.link("get", ifname=name)[0]
    except PyrouteError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def need_link(ipr: Any, name: str) -> Any:
    msg = find_link(ipr, name)
    if msg is None:
        raise NetlinkError(f"there is no interface named {name}", errno.ENODEV)
    return msg


def dump_addr(ipr: Any, name: str, family: int = socket.AF_UNSPEC,
              required: bool = True) -> list[Any]:
    """Address messages of interface ``name``; [] for a missing one unless required."""
    link = need_link(ipr, name) if required else find_link(ipr, name)
    if link is None:
        return []
    return list(ipr.addr("dump", index=link["index"], family=family))


def add_addr(ipr: Any, index: int, iface: IPIface, label: str | None) -> None:
    spec: dict[str, Any] = {"index": index, "address": str(iface.ip),
                            "prefixlen": iface.network.prefixlen}
    if isinstance(iface, IPv4Interface):
        spec["local"] = str(iface.ip)
        if iface.network.prefixlen <= 30:  # RFC 3021: no broadcast on /31 (or /32)
            spec["broadcast"] = str(iface.network.broadcast_address)
        if label is not None:
            spec["label"] = label
    else:
        spec["flags"] = IFA_F_NODAD
    try:
        ipr.addr("add", **spec)
    except PyrouteError as exc:
        if exc.code != errno.EEXIST:
            raise


def del_addr(ipr: Any, ifname: str, index: int, iface: IPIface) -> None:
    spec: dict[str, Any] = {"index": index, "address": str(iface.ip),
                            "prefixlen": iface.network.prefixlen}
    if isinstance(iface, IPv4Interface):
        # Without IFA_LOCAL the kernel deletes the first address of the same
        # subnet and prefix, which may be the interface's real address.
        spec["local"] = str(iface.ip)
        keep_secondaries(ipr, ifname, index, iface)
    try:
        ipr.addr("del", **spec)
    except PyrouteError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            raise


def keep_secondaries(ipr: Any, ifname: str, index: int, iface: IPv4Interface) -> None:
    """Before deleting a *primary* IPv4 address, make sure the kernel promotes
    its secondaries instead of deleting them with it (promote_secondaries=0 is
    the kernel default).  A VIP that reached the interface before the real
    address of its subnet is that primary; without this, releasing the VIP
    would take the host's own address away."""
    same_net = [m for m in ipr.addr("dump", index=index, family=socket.AF_INET)
                if addr_iface(m).network == iface.network]
    target = [m for m in same_net if addr_iface(m) == iface]
    if (target and not addr_flags(target[0]) & IFA_F_SECONDARY and len(same_net) > 1
            and sysctl.read("ipv4", ifname, "promote_secondaries") == 0):
        sysctl.write("ipv4", ifname, "promote_secondaries", 1)
