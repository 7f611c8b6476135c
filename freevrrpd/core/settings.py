"""Frozen, validated settings of one virtual router.

The config reader (``freevrrpd.config``) builds these from freevrrpd.conf or
YAML with every default filled in; the core and the daemon only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from freevrrpd.core.tracking import Track

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
RouterKey = tuple[int, int, str]  # (VRID, family, interface): who a virtual router is

# RFC 5798 section 5.1.1.2 / RFC 3768 section 5.2.7: VRRP is IP protocol 112.
VRRP_PROTO = 112
VRRP_GROUP_V4 = IPv4Address("224.0.0.18")
VRRP_GROUP_V6 = IPv6Address("ff02::12")


@dataclass(frozen=True)
class VirtualAddress:
    """One ``addr`` entry: an address with its prefix, optionally on another device."""

    interface: IPInterface
    device: str | None = None  # ``dev:ip/prefix`` puts the address on ``dev``

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip

    def __str__(self) -> str:
        text = self.interface.with_prefixlen
        return f"{self.device}:{text}" if self.device else text


@dataclass(frozen=True)
class SyncGroup:
    """A ``[SYNCGROUP]`` section (keepalived's vrrp_sync_group): virtual routers
    that move together, and the scripts run when the group as a whole changes."""

    name: str
    masterscript: str | None = None
    backupscript: str | None = None
    faultscript: str | None = None
    notify: str | None = None
    line: int = 0
    # keepalived's sync_group_tracking_weight: members' tracking weights count.
    # Without it a failing tracked item makes its member (so the group) not
    # eligible: a weight on one member alone would stop the group from moving.
    tracking_weight: bool = False


@dataclass(frozen=True)
class Source:
    """Where a setting came from, for error and log messages."""

    path: str = "<built-in>"
    line: int = 0  # the section's header line
    # (keyword in lower case, line) of every setting written in the section.
    keywords: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"

    def at(self, keyword: str) -> str:
        """``path:line`` of ``keyword`` in the section (its header if not written)."""
        for name, line in self.keywords:
            if name == keyword.lower():
                return f"{self.path}:{line}"
        return str(self)


@dataclass(frozen=True)
class RouterSettings:
    """Everything one virtual router (one ``[VRID]`` section) is configured with."""

    vrid: int
    interface: str
    addresses: tuple[VirtualAddress, ...]
    family: int = 4  # 4 or 6; one virtual router is one address family (RFC 5798 5.2)
    version: int = 2  # 2 = RFC 3768, 3 = RFC 5798
    priority: int = 100
    # Advertisement interval in centiseconds (v2: multiples of 100, 1..255 s;
    # v3: 1..4095 cs).  Centiseconds everywhere keeps v2 and v3 on one scale.
    advert_int_cs: int = 100
    preempt: bool = True
    preempt_delay: float = 0.0  # seconds
    # RFC 5798 6.1 Accept_Mode.  The RFC's default is False; ours is True, as freevrrpd
    # has always behaved and as keepalived does unless vrrp_strict: services bound to a
    # virtual address (a load balancer, SSH, monitoring pings) keep working.
    accept: bool = True
    password: str | None = None  # RFC 3768 auth type 1, at most 8 octets
    # RFC 5798 5.2.8 says the v3 checksum covers an IPv4/IPv6 pseudo-header; some
    # vendors leave it out for IPv4.  False = compute it without (both sides must agree).
    checksum_pseudo_header: bool = True
    masterscript: str | None = None
    backupscript: str | None = None
    faultscript: str | None = None
    stopscript: str | None = None
    # keepalived's generic notify script: run on every transition with the four
    # arguments it gets there (INSTANCE, the name, MASTER|BACKUP|FAULT|STOP, priority).
    notify: str | None = None
    name_text: str | None = None  # ``name``: the instance name given to notify
    hook_timeout: float = 30.0  # seconds a transition script may run before it is killed
    monitored_circuits: bool = True
    mc_clear_errors_count: int = 3600
    vrids_dep: tuple[int, ...] = ()
    carrier_timeout: float = 10.0  # seconds
    spanning_tree_latency: float = 0.0  # seconds
    use_vmac: bool = True
    send_gratuitous_arp: bool = True
    garp_count: int = 5  # announcements sent on becoming master
    garp_interval: float = 0.0  # seconds between them
    garp_repeat_delay: float = 5.0  # seconds until the second burst (0 = none)
    garp_refresh: float = 0.0  # seconds between refreshes while master (0 = none)
    garp_refresh_count: int = 1  # announcements per refresh
    conflict_check: bool = True  # probe VIPs before claiming them (RFC 5227 / RFC 4862 DAD)
    # The interface may not exist yet at start or reload (keepalived's
    # dynamic_interfaces): wait for it in FAULT instead of refusing the file.
    dynamic_interfaces: bool = False
    # Unicast (keepalived's unicast_peer): adverts go to each of these instead of
    # the group, and only theirs are accepted.  RFC 5798 leaves the transport open.
    unicast_peers: tuple[IPAddress, ...] = ()
    unicast_src: IPAddress | None = None  # our source (default: the primary address)
    # no = accept the listed peers' adverts with any TTL (peers behind a router,
    # keepalived's unicast_ttl); the RFC's TTL 255 check otherwise (RFC 5798 7.1).
    unicast_ttl_check: bool = True
    # Tracked checks, interfaces and files with their weights (core.tracking).
    tracks: tuple[Track, ...] = ()
    sync_group: SyncGroup | None = None
    ah_encryption: bool = False
    use_ike: bool = False
    preshared_key: str | None = None
    source: Source = field(default=Source(), compare=False)

    @property
    def key(self) -> RouterKey:
        """Identity of the virtual router: (VRID, family, interface)."""
        return (self.vrid, self.family, self.interface)

    @property
    def owner(self) -> bool:
        """Priority 255: the address owner (RFC 5798 6.1)."""
        return self.priority == 255

    @property
    def advert_int(self) -> float:
        """Advertisement interval in seconds."""
        return self.advert_int_cs / 100.0

    @property
    def instance(self) -> str:
        """The name notify scripts get (``name``, else one made of the identity)."""
        return self.name_text or f"vrid{self.vrid}-{self.interface}-v{self.family}"

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        return tuple(a.ip for a in self.addresses)

    @property
    def name(self) -> str:
        return f"VRID {self.vrid} on {self.interface} (IPv{self.family})"


def refuses_packets(s: RouterSettings) -> bool:
    """RFC 5798 6.4.3: a master MUST NOT accept packets addressed to the virtual
    addresses unless it is their owner or Accept_Mode is True (RFC 3768 6.4.3:
    unless it is the owner)."""
    return not s.accept and not s.owner
