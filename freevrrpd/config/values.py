"""Parsers for single configuration values.

Each takes the value as text (YAML scalars are read as their source text too,
so both formats go through the same code) and returns the typed value or
raises ``BadValue`` with a message meant for the user.  The original daemon
read any garbage number as 0; here nothing is guessed.
"""

from __future__ import annotations

import re
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
)
from typing import NamedTuple

from freevrrpd.core.settings import IPAddress, IPInterface, VirtualAddress


class BadValue(ValueError):
    """A value that cannot be used; the message says why."""


_INT = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")

_TRUE = frozenset({"yes", "true", "on", "1"})
_FALSE = frozenset({"no", "false", "off", "0"})

# Linux IFNAMSIZ is 16 including the terminating NUL.
_IFNAME_MAX = 15


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise BadValue(f"expected yes or no (or true/false, on/off, 1/0), got {text!r}")


# Digits worth converting: anything longer is out of every range here (and
# Python refuses to convert more than 4300 digits at all).
_MAX_DIGITS = 18


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def parse_int(text: str, lo: int, hi: int) -> int:
    word = text.strip()
    if not _INT.fullmatch(word):
        raise BadValue(f"expected a whole number from {lo} to {hi}, got {_short(text)!r}")
    if len(word.lstrip("0")) > _MAX_DIGITS:
        raise BadValue(f"{_short(word)} is out of range {lo}..{hi}")
    value = int(word)
    if not lo <= value <= hi:
        raise BadValue(f"{value} is out of range {lo}..{hi}")
    return value


def _p10(n: int) -> int:
    return int(10**n)


class Exact(NamedTuple):
    """A decimal number exactly as written: ``units`` / 10 ** ``places``.  Not
    ``decimal.Decimal``, whose import (with ``numbers``) costs the start-up of an
    address owner several milliseconds (``daemon.early``); nothing here needs more
    than whole numbers."""

    units: int
    places: int
    text: str

    def __str__(self) -> str:
        return self.text

    def scaled(self, power: int) -> tuple[int, bool]:
        """(the number times 10 ** power, rounded down; whether that was exact)."""
        whole, rest = divmod(self.units * _p10(power), _p10(self.places))
        return whole, rest == 0

    def within(self, lo: float, hi: float) -> bool:
        low, high = parse_decimal(_fmt(lo)), parse_decimal(_fmt(hi))
        return (low.units * _p10(self.places) <= self.units * _p10(low.places)
                and self.units * _p10(high.places) <= high.units * _p10(self.places))


def parse_decimal(text: str) -> Exact:
    """A plain non-negative decimal number: ``10``, ``0.5``.  No exponents, no sign."""
    word = text.strip()
    if not _DECIMAL.fullmatch(word):
        raise BadValue(f"expected a number of seconds such as 1 or 0.5, got {_short(text)!r}")
    if len(word) > 2 * _MAX_DIGITS:
        raise BadValue(f"{_short(word)}: too many digits for a number of seconds")
    whole, _dot, fraction = word.partition(".")
    return Exact(int(whole + fraction), len(fraction), word)


def parse_seconds(text: str, lo: float, hi: float) -> float:
    value = parse_decimal(text)
    if not value.within(lo, hi):
        raise BadValue(f"{value} seconds is out of range {_fmt(lo)}..{_fmt(hi)}")
    return value.units / _p10(value.places)


def _fmt(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def parse_advert_int_cs(text: str, version: int) -> int:
    """Advertisement interval in centiseconds.

    RFC 3768 section 5.3.7: the v2 field is 8 bits of whole seconds (1..255).
    RFC 5798 section 5.2.7: the v3 field is 12 bits of centiseconds (1..4095,
    i.e. 0.01..40.95 s).
    """
    value = parse_decimal(text)
    if version == 2:
        seconds, exact = value.scaled(0)
        if not exact:
            raise BadValue(
                f"VRRPv2 advertises whole seconds (RFC 3768 5.3.7), got {value}; "
                "use version = 3 for sub-second intervals"
            )
        if not 1 <= seconds <= 255:
            raise BadValue(f"{value} is out of range 1..255 seconds for VRRPv2")
        return seconds * 100
    centis, exact = value.scaled(2)
    if not exact:
        raise BadValue(f"VRRPv3 intervals go in steps of 0.01 s (RFC 5798 5.2.7), got {value}")
    if not 1 <= centis <= 4095:
        raise BadValue(f"{value} is out of range 0.01..40.95 seconds for VRRPv3")
    return centis


def parse_interface_name(text: str) -> str:
    """A Linux interface name: what the kernel's dev_valid_name() accepts.

    Whether the interface exists is the daemon's business, not the reader's.
    """
    name = text.strip()
    if not name:
        raise BadValue("empty interface name")
    if len(name) > _IFNAME_MAX:
        raise BadValue(f"interface name {name!r} is longer than {_IFNAME_MAX} characters")
    if name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name):
        raise BadValue(f"{name!r} is not a valid interface name")
    return name


def parse_password(text: str) -> str:
    """Simple text password of RFC 2338 5.3.6.1, at most 8 octets.

    RFC 3768 5.3.6 keeps auth type 1 on the wire only for compatibility with
    RFC 2338 peers (the original freevrrpd among them).
    """
    if not text:
        raise BadValue("empty password")
    size = len(text.encode("utf-8"))
    if size > 8:
        raise BadValue(f"a VRRPv2 password is at most 8 octets (RFC 2338 5.3.6.1), got {size}")
    return text


def parse_command(text: str) -> str:
    if not text.strip():
        raise BadValue("empty command")
    return text.strip()


def split_list(text: str) -> list[str]:
    """Comma-separated items, whitespace around commas allowed, no empty items."""
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise BadValue(f"empty item in the list {text!r} (stray comma?)")
    return items


def parse_vrid_list(text: str) -> tuple[int, ...]:
    vrids: list[int] = []
    for item in split_list(text):
        vrid = parse_int(item, 1, 255)
        if vrid in vrids:
            raise BadValue(f"VRID {vrid} is listed twice")
        vrids.append(vrid)
    return tuple(vrids)


def _try_ip(text: str) -> IPAddress | None:
    if "%" in text:  # a scope id is a property of the device, not of the address
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


def _with_prefix(ip: IPAddress, prefix: str, entry: str) -> IPInterface:
    bits = 32 if ip.version == 4 else 128
    if not _INT.fullmatch(prefix):
        raise BadValue(f"{_short(entry)!r}: the prefix must be a length such as /24, "
                       f"got /{_short(prefix)}")
    if len(prefix.lstrip("0")) > 3:
        raise BadValue(f"{_short(entry)!r}: prefix /{_short(prefix)} is out of range "
                       f"/1../{bits}")
    length = int(prefix)
    if not 1 <= length <= bits:
        raise BadValue(f"{entry!r}: prefix /{length} is out of range /1../{bits}")
    if isinstance(ip, IPv4Address):
        return IPv4Interface((ip, length))
    return IPv6Interface((ip, length))


def _check_usable(ip: IPAddress, entry: str) -> None:
    """Refuse addresses that can never be a router's virtual address."""
    if ip.is_multicast:
        raise BadValue(f"{entry!r}: a multicast address cannot be a virtual address")
    if ip.is_unspecified:
        raise BadValue(f"{entry!r}: the unspecified address cannot be a virtual address")
    if ip.is_loopback:
        raise BadValue(f"{entry!r}: a loopback address cannot be a virtual address")
    if ip == IPv4Address("255.255.255.255"):
        raise BadValue(f"{entry!r}: the broadcast address cannot be a virtual address")
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        raise BadValue(f"{entry!r}: write an IPv4-mapped address as plain IPv4")


def _address_part(text: str, entry: str) -> IPInterface:
    head, slash, prefix = text.rpartition("/")
    if not slash:
        ip = _try_ip(text)
        if ip is not None:
            raise BadValue(f"{entry!r}: a prefix length is required, e.g. {ip}/{ip.max_prefixlen}")
        raise BadValue(f"{entry!r}: {text!r} is not an IP address with a prefix")
    ip = _try_ip(head)
    if ip is None:
        raise BadValue(f"{entry!r}: {head!r} is not an IP address")
    _check_usable(ip, entry)
    return _with_prefix(ip, prefix, entry)


def parse_address(entry: str) -> VirtualAddress:
    """One ``ip/prefix`` or ``dev:ip/prefix`` item of an ``addr`` list.

    IPv6 addresses contain colons, so: if the text (before any ``/``) is an
    address as a whole, it has no device; otherwise the part before the first
    colon names the device (Linux names never contain a colon).
    """
    head = entry.rpartition("/")[0] if "/" in entry else entry
    if _try_ip(head) is not None or ":" not in entry:
        return VirtualAddress(_address_part(entry, entry))
    device, _, rest = entry.partition(":")
    try:
        device = parse_interface_name(device)
    except BadValue as exc:
        raise BadValue(f"{entry!r}: {exc}") from None
    return VirtualAddress(_address_part(rest, entry), device)


def family_of(address: VirtualAddress) -> int:
    return 4 if isinstance(address.interface, IPv4Interface) else 6


def parse_host(text: str) -> IPAddress:
    """One unicast address (a peer, or our source): a plain IP, no prefix, no scope
    (a link-local peer is reached on the router's own interface)."""
    ip = _try_ip(text)
    if ip is None:
        why = ("the scope is the router's interface; leave %... out" if "%" in text
               else "not an IP address")
        raise BadValue(f"{_short(text)!r}: {why}")
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        raise BadValue(f"{text!r}: a unicast peer is a host's own address")
    return ip


def parse_peer_list(text: str) -> tuple[IPAddress, ...]:
    peers: list[IPAddress] = []
    for item in split_list(text):
        ip = parse_host(item)
        if ip in peers:
            raise BadValue(f"{item!r}: listed twice")
        if peers and ip.version != peers[0].version:
            raise BadValue(f"{item!r}: mixes IPv4 and IPv6; the peers are of the router's "
                           f"family")
        peers.append(ip)
    return tuple(peers)


NAME_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


def parse_name(text: str) -> str:
    """An instance name, as keepalived's vrrp_instance names are: one word."""
    if not NAME_RE.fullmatch(text):
        raise BadValue(f"{_short(text)!r}: a name is one word of at most 64 letters, digits "
                       "and _ . : @ -")
    return text
