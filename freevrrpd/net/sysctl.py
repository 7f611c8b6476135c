"""Per-interface kernel settings that make a virtual-MAC interface behave.

Written through /proc/sys/net/..., which the kernel resolves in the network
namespace of the calling thread: the daemon runs inside the namespace it
serves, so "current namespace" is always the right one.

Why each value (the meaning of each key: the kernel's
Documentation/networking/ip-sysctl.rst): with a macvlan
carrying the virtual MAC (RFC 5798 7.3) on top of the parent interface, the
host has two interfaces on one LAN.  Linux follows the weak host model and,
by default, answers ARP for *any* local address on *any* interface, so both
the parent (with its own MAC) and the macvlan (with the virtual MAC) would
answer for a virtual address; the parent is processed first, so neighbours
would learn the parent's MAC and lose the VIP on the next failover.  The
settings below make each interface speak only for its own addresses.
"""

from __future__ import annotations

import os

PROC_SYS_NET = "/proc/sys/net"

# IPv4 settings of the macvlan, for both address families' virtual MACs.
VMAC_IPV4 = (
    # arp_ignore=1: answer ARP only for addresses configured on the interface
    # the request came in on.  The macvlan then answers for the VIPs but not for
    # the host's real addresses; without it, neighbours asking for the router's
    # own address could learn the virtual MAC, which moves to another router at
    # the next failover.  (Also on IPv6 virtual MACs, which hold no IPv4
    # address at all and must therefore answer no ARP.)
    ("arp_ignore", 1),
    # arp_announce=2: the sender address of our own ARP requests is always an
    # address of the outgoing interface, so the virtual MAC is never paired
    # with a real address in a neighbour's cache.
    ("arp_announce", 2),
    # arp_filter=0: arp_filter=1 answers only if the route back to the asker
    # leaves through this interface, but the parent's connected route for the
    # same subnet usually wins, so the macvlan would never answer for the VIPs.
    ("arp_filter", 0),
    # rp_filter=0: packets for a VIP arrive on the macvlan (destination MAC is
    # the virtual MAC) while the route back to their source uses the parent;
    # strict reverse-path filtering (1, a common distribution default for new
    # interfaces) would drop them.  The kernel uses max(all, dev), see
    # pitfalls() for the system-wide value we cannot override.
    ("rp_filter", 0),
    # promote_secondaries=1: several VIPs in one subnet on the macvlan are one
    # primary plus secondaries; removing the primary (a reload dropping one
    # address) would otherwise delete all its secondaries with it.
    ("promote_secondaries", 1),
)
# Deliberately not set: accept_local.  It only makes the IP layer accept
# packets whose *source* is one of our own addresses (our own adverts looped
# back by the macvlan, for a daemon reading them from an IP socket).  We read
# adverts with AF_PACKET on the parent, before the IP layer, so it changes
# nothing for us and would only widen what the host accepts.

# IPv4 settings of the parent interface when an IPv4 virtual MAC sits on it.
PARENT_IPV4 = (
    # arp_ignore=1: the parent must not answer ARP for the VIPs, which live on
    # the macvlan; it still answers for its own addresses.
    ("arp_ignore", 1),
    # arp_announce=2: traffic sent from a VIP usually leaves through the parent
    # (its connected route comes first); its ARP requests must carry the
    # parent's own address, or every neighbour asked would map the VIP to the
    # parent's MAC (RFC 826 merge rule).
    ("arp_announce", 2),
)
# These stay set when the macvlan goes: several VRIDs may share one parent,
# and both values are the recommended ones for any multi-homed host.

# IPv6 settings of an IPv6 virtual MAC.  Neighbour discovery needs no
# counterpart of arp_ignore: Linux answers a solicitation only for addresses on
# the interface it arrived on (RFC 4861 7.2.3), so the parent stays silent for
# the VIPs by itself.  But both routers of a VRID carry the same virtual MAC,
# so anything derived from it is a duplicate on the LAN, and every packet it
# sends teaches the switches where the virtual MAC lives.
VMAC_IPV6 = (
    # addr_gen_mode=1 (none): no EUI-64 link-local address.  It would be the
    # same on every router of the VRID; DAD (RFC 4862 5.4) would fail on one
    # and the neighbour solicitations it sends would pull the virtual MAC
    # towards that router.  Adverts use the parent's link-local address
    # (RFC 5798 5.1.2.1); the VIPs are added explicitly.  Must be written
    # before the link goes up: the address is made at the first up.
    ("addr_gen_mode", 1),
    # accept_dad=0 / dad_transmits=0: the VRRP election has already decided who
    # owns the VIPs (RFC 5798 8.2 is the conflict check); DAD would delay them
    # by a second and probe with the virtual MAC.  add_address also sets
    # IFA_F_NODAD on each VIP.
    ("accept_dad", 0),
    ("dad_transmits", 0),
    # autoconf=0 / accept_ra=0: no SLAAC addresses from router advertisements;
    # they too would be identical on every router of the VRID.
    ("accept_ra", 0),
    ("autoconf", 0),
)

# An IPv4 virtual MAC speaks no IPv6 at all: no link-local address, no
# multicast listener reports sent with the virtual MAC from a router that is
# not the master.
VMAC_IPV4_ONLY = (("disable_ipv6", 1),)


def _path(proto: str, ifname: str, key: str) -> str:
    if not ifname or "/" in ifname or ifname in (".", ".."):
        raise OSError(f"invalid interface name {ifname!r}")
    return os.path.join(PROC_SYS_NET, proto, "conf", ifname, key)


def read(proto: str, ifname: str, key: str) -> int:
    """Value of net.<proto>.conf.<ifname>.<key> ("all" and "default" work too)."""
    with open(_path(proto, ifname, key)) as f:
        return int(f.read().strip())


def write(proto: str, ifname: str, key: str, value: int) -> None:
    """Set net.<proto>.conf.<ifname>.<key>; skip the write if already set."""
    path = _path(proto, ifname, key)
    try:
        with open(path) as f:
            if f.read().strip() == str(value):
                return
    except OSError:
        pass  # the write below gives the error that matters
    with open(path, "w") as f:
        f.write(f"{value}\n")


def tune_vmac(vmac: str, parent: str, family: int) -> None:
    """Apply the settings above to a freshly made virtual-MAC interface (still down)."""
    for key, value in VMAC_IPV4:
        write("ipv4", vmac, key, value)
    if family == 4:
        for key, value in PARENT_IPV4:
            write("ipv4", parent, key, value)
    ipv6_dir = os.path.join(PROC_SYS_NET, "ipv6", "conf", vmac)
    if not os.path.isdir(ipv6_dir):
        if family == 6:
            raise OSError(f"IPv6 is not available on {vmac} (kernel without IPv6?)")
        return  # no IPv6 in this kernel: nothing to switch off
    for key, value in VMAC_IPV4_ONLY if family == 4 else VMAC_IPV6:
        write("ipv6", vmac, key, value)


def vmac_tuned(vmac: str, family: int) -> bool:
    """Whether an existing virtual-MAC interface already has our IPv6 settings.

    Those must be in place before the link first goes up, so an interface made
    by someone else is replaced rather than fixed afterwards.
    """
    try:
        if family == 4:
            return read("ipv6", vmac, "disable_ipv6") == 1
        return read("ipv6", vmac, "addr_gen_mode") == 1 and read("ipv6", vmac, "accept_dad") == 0
    except (OSError, ValueError):
        return family == 4  # no IPv6 in the kernel: an IPv4 VMAC is fine


def pitfalls(vmac: str) -> list[str]:
    """System-wide values that defeat the per-interface ones (the kernel takes
    the larger of ``all`` and the interface's value); we leave ``all`` to the
    administrator and warn instead."""
    found = []
    try:
        if read("ipv4", "all", "rp_filter") == 1:
            found.append(
                f"net.ipv4.conf.all.rp_filter=1 (strict) makes the kernel drop packets "
                f"for the virtual addresses arriving on {vmac}; set it to 0 or 2 (loose)"
            )
        if read("ipv4", "all", "arp_filter") == 1:
            found.append(
                f"net.ipv4.conf.all.arp_filter=1 may stop {vmac} from answering ARP for "
                f"the virtual addresses; set it to 0"
            )
    except (OSError, ValueError):
        pass
    return found
