"""The configuration against the host it runs on: interfaces, their addresses, MTUs.

Checked before the routers start, at every reload, and by ``freevrrpd -t``
(there only for the interfaces that exist): every problem is a sentence
naming the file, the line and the keyword, as the config reader's are.
"""

from __future__ import annotations

from collections.abc import Sequence

from freevrrpd.core.settings import IPAddress, RouterSettings
from freevrrpd.daemon import acceptmode
from freevrrpd.net.netlink import Netlink
from freevrrpd.vrid.addressbook import AddressBook

IP_HEADER = {4: 20, 6: 40}  # RFC 791 / RFC 8200, without options or extension headers
ADDRESS = {4: 4, 6: 16}
VRRP_HEADER = 8  # RFC 3768 5.1 / RFC 5798 5.1
V2_AUTH = 8  # RFC 3768 5.3.10: the authentication data of a VRRPv2 advert


def advert_size(s: RouterSettings, count: int | None = None) -> int:
    """Bytes of the IP packet that carries the advert."""
    n = len(s.addresses) if count is None else count
    return (IP_HEADER[s.family] + VRRP_HEADER + ADDRESS[s.family] * n
            + (V2_AUTH if s.version == 2 else 0))


def host_problems(routers: Sequence[RouterSettings], netlink: Netlink, book: AddressBook,
                  require_interfaces: bool = True) -> list[str]:
    problems: list[str] = []
    for s in routers:
        names = [("interface", s.interface)] + [("addr", a.device) for a in s.addresses
                                                if a.device]
        present: dict[str, set[IPAddress]] = {}
        for keyword, name in names:
            if netlink.ifindex(name) is None:
                # dynamicinterfaces: the router waits in FAULT for its interface
                # (vrid.link.Link, the same path as an interface deleted and created
                # again); a ``dev:`` device must still exist.
                waits = keyword == "interface" and s.dynamic_interfaces
                if require_interfaces and not waits:
                    problems.append(f"{s.source.at(keyword)}: {keyword}: {s.name}: "
                                    f"interface {name} does not exist")
            else:
                present[name] = {a.ip for a in netlink.addresses(name)}
        problems += _own_addresses(s, present, book)
        if s.interface in present:
            problems += _mtu(s, netlink.mtu(s.interface))
    return problems + acceptmode.problems(routers)


def _own_addresses(s: RouterSettings, present: dict[str, set[IPAddress]],
                   book: AddressBook) -> list[str]:
    """A virtual address the interface already has as its own belongs to the owner
    alone (RFC 5798 3: priority 255); for anyone else it would be taken away."""
    if s.owner:
        return []
    out = []
    for a in s.addresses:
        dev = a.device or s.interface
        if a.ip in present.get(dev, set()) and not book.ours(dev, str(a.interface)):
            out.append(f"{s.source.at('addr')}: addr: {s.name}: {a.ip} is already an address "
                       f"of {dev}, not one freevrrpd added; a virtual address must not be "
                       f"configured on the interface, unless this router is its owner "
                       f"(priority = 255)")
    return out


def _mtu(s: RouterSettings, mtu: int) -> list[str]:
    size = advert_size(s)
    if size <= mtu:
        return []
    fit = (mtu - advert_size(s, 0)) // ADDRESS[s.family]
    return [f"{s.source.at('addr')}: addr: {s.name}: {len(s.addresses)} addresses make an "
            f"advert of {size} bytes, over the MTU of {s.interface} ({mtu}); at most {fit} "
            f"IPv{s.family} addresses fit in one advert there"]
