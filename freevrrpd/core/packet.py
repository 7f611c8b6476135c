"""VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) advertisement codec.

Pure functions over bytes: the caller hands over the VRRP message (the IP
payload, without the IP header) together with the IP source and destination,
which VRRPv3 needs for its checksum pseudo-header.

Wire formats (both 8-octet headers, RFC 3768 5.1 / RFC 5798 5.1)::

    v2: |2|1| VRID | Priority | Count | AuthType | AdverInt(s) | Checksum |
        IPv4 address * Count, then 8 octets of Authentication Data
    v3: |3|1| VRID | Priority | Count | rsvd(4) MaxAdverInt(12, cs) | Checksum |
        IPv4 or IPv6 address * Count

Decoding is strict and raises only :class:`PacketError`; encoding produces
exact bytes, checksum included, and refuses anything it could not decode back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.settings import VRRP_PROTO, IPAddress

ADVERTISEMENT = 1  # RFC 3768 5.3.2 / RFC 5798 5.2.2: the only packet type defined
AUTH_NONE = 0  # RFC 3768 5.3.6
AUTH_PASSWORD = 1  # RFC 2338 5.3.6.2 simple text password, "reserved" in RFC 3768 5.3.6
AUTH_DATA_LEN = 8  # RFC 3768 5.3.10: always present in v2, 8 octets
HEADER_LEN = 8
MAX_INTERVAL_V2_S = 0xFF  # RFC 3768 5.3.7: 8-bit seconds
MAX_INTERVAL_V3_CS = 0x0FFF  # RFC 5798 5.2.7: 12-bit centiseconds

_HEADER = struct.Struct("!BBBBHH")


class PacketError(ValueError):
    """A VRRP message that cannot be decoded, or an advert that cannot be encoded.

    ``reason`` is a short stable slug (for drop counters); ``str()`` is a sentence.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Advert:
    """The fields of one advertisement, independent of the wire version.

    ``interval_cs`` is in centiseconds for both versions; a v2 advert carries
    whole seconds, so it must be a multiple of 100.  ``auth_type`` and
    ``auth_data`` exist only in v2; decode returns the 8 authentication
    octets exactly as received (compare with :func:`password_auth_data`).
    """

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    type: int = ADVERTISEMENT


def internet_checksum(data: bytes) -> int:
    """16-bit one's complement of the one's complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"  # an odd final octet is padded with zero (RFC 1071 section 1)
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def password_auth_data(password: str) -> bytes:
    """The 8 Authentication Data octets for a text password, NUL padded.

    RFC 2338 5.3.6.2 / 5.3.10 (kept for compatibility by RFC 3768 5.3.10).
    """
    raw = password.encode("utf-8")
    if len(raw) > AUTH_DATA_LEN:
        raise PacketError(
            "auth_data", f"password is {len(raw)} octets, at most {AUTH_DATA_LEN} fit"
        )
    return raw.ljust(AUTH_DATA_LEN, b"\x00")


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """RFC 5798 5.2.8: the upper-layer pseudo-header of the IP version in use."""
    if isinstance(src, IPv6Address):
        # RFC 2460 8.1: source, destination, 32-bit length, 3 zero octets, next header.
        return struct.pack("!16s16sI3xB", src.packed, dst.packed, length, VRRP_PROTO)
    # IPv4, laid out as for TCP/UDP (RFC 793 3.1): source, destination, zero, protocol,
    # 16-bit length.
    return struct.pack("!4s4sxBH", src.packed, dst.packed, VRRP_PROTO, length)


def _checksum(version: int, message: bytes, src: IPAddress, dst: IPAddress, pseudo: bool) -> int:
    """Checksum of ``message`` (whose checksum field is zero) for its version.

    v2 covers only the VRRP message (RFC 3768 5.3.8).  v3 adds the pseudo-header
    (RFC 5798 5.2.8); ``pseudo=False`` leaves it out for IPv4 peers that do so.
    For IPv6 the flag is ignored: RFC 2460 8.1 makes the pseudo-header mandatory
    for every upper-layer checksum, and the kernel's IPV6_CHECKSUM uses it too.
    """
    if version == 3 and (pseudo or isinstance(src, IPv6Address)):
        return internet_checksum(_pseudo_header(src, dst, len(message)) + message)
    return internet_checksum(message)


def _check_family(version: int, src: IPAddress, dst: IPAddress) -> None:
    if version == 2 and not (isinstance(src, IPv4Address) and isinstance(dst, IPv4Address)):
        # RFC 3768 is IPv4 only.
        raise PacketError("family", f"VRRPv2 is IPv4 only, not {src} -> {dst}")
    if src.version != dst.version:
        raise PacketError("family", f"source {src} and destination {dst} differ in family")


def _field(name: str, value: int, low: int, high: int, reason: str) -> None:
    if not low <= value <= high:
        raise PacketError(reason, f"{name} {value} is outside {low}..{high}")


def encode(advert: Advert, src: IPAddress, dst: IPAddress, pseudo_header: bool = True) -> bytes:
    """The exact VRRP message (no IP header) for ``advert`` sent from ``src`` to ``dst``."""
    version = advert.version
    if version not in (2, 3):
        raise PacketError("version", f"version {version} is neither 2 nor 3")
    if advert.type != ADVERTISEMENT:
        raise PacketError("type", f"type {advert.type} is not 1 (ADVERTISEMENT)")
    _check_family(version, src, dst)
    # RFC 3768 5.3.3 / RFC 5798 5.2.3: VRIDs are 1..255.
    _field("VRID", advert.vrid, 1, 255, "vrid")
    _field("priority", advert.priority, 0, 255, "priority")
    # RFC 3768 5.3.9 / RFC 5798 5.2.9: one or more addresses, counted in 8 bits.
    _field("address count", len(advert.addresses), 1, 255, "count")
    for address in advert.addresses:
        if address.version != src.version:
            raise PacketError(
                "family", f"address {address} is not IPv{src.version} like the source {src}"
            )
    addresses = b"".join(a.packed for a in advert.addresses)
    if version == 2:
        seconds, rest = divmod(advert.interval_cs, 100)
        if rest:
            raise PacketError(
                "interval", f"VRRPv2 interval {advert.interval_cs} cs is not whole seconds"
            )
        _field("VRRPv2 interval (s)", seconds, 1, MAX_INTERVAL_V2_S, "interval")
        _field("auth type", advert.auth_type, 0, 255, "auth_type")
        if len(advert.auth_data) > AUTH_DATA_LEN:
            raise PacketError(
                "auth_data",
                f"auth data is {len(advert.auth_data)} octets, at most {AUTH_DATA_LEN} fit",
            )
        second_word = (advert.auth_type << 8) | seconds
        trailer = advert.auth_data.ljust(AUTH_DATA_LEN, b"\x00")
    else:
        _field("VRRPv3 interval (cs)", advert.interval_cs, 1, MAX_INTERVAL_V3_CS, "interval")
        if advert.auth_type != AUTH_NONE or advert.auth_data:
            # RFC 5798 removed authentication (section 9 explains why).
            raise PacketError("auth_type", "VRRPv3 has no authentication fields")
        second_word = advert.interval_cs  # reserved high 4 bits sent as zero (RFC 5798 5.2.6)
        trailer = b""
    head = struct.pack(
        "!BBBB", (version << 4) | advert.type, advert.vrid, advert.priority, len(advert.addresses)
    )
    body = struct.pack("!H", second_word)
    zeroed = head + body + b"\x00\x00" + addresses + trailer
    checksum = _checksum(version, zeroed, src, dst, pseudo_header)
    return head + body + struct.pack("!H", checksum) + addresses + trailer


def decode(data: bytes, src: IPAddress, dst: IPAddress, pseudo_header: bool = True) -> Advert:
    """Parse and validate one VRRP message received from ``src`` on ``dst``.

    Raises :class:`PacketError` (and nothing else) for anything malformed.
    """
    data = bytes(data)
    if len(data) < HEADER_LEN:
        raise PacketError("length", f"{len(data)} octets is shorter than the 8-octet header")
    vt, vrid, priority, count, second_word, checksum = _HEADER.unpack_from(data)
    version, ptype = vt >> 4, vt & 0x0F
    if version not in (2, 3):
        raise PacketError("version", f"version {version} is neither 2 nor 3")
    if ptype != ADVERTISEMENT:
        raise PacketError("type", f"type {ptype} is not 1 (ADVERTISEMENT)")
    _check_family(version, src, dst)
    if count == 0:
        # RFC 3768 5.3.9 / RFC 5798 5.2.9: "one or more" addresses.
        raise PacketError("count", "address count is 0, at least one address is required")
    size = 16 if isinstance(src, IPv6Address) else 4
    trailer = AUTH_DATA_LEN if version == 2 else 0
    expected = HEADER_LEN + size * count + trailer
    if len(data) != expected:
        raise PacketError(
            "length",
            f"{len(data)} octets, but VRRPv{version} with {count} IPv{src.version} "
            f"address(es) is {expected}",
        )
    computed = _checksum(version, data[:6] + b"\x00\x00" + data[8:], src, dst, pseudo_header)
    if computed != checksum:
        raise PacketError(
            "checksum", f"checksum {checksum:#06x} does not match computed {computed:#06x}"
        )
    if vrid == 0:
        raise PacketError("vrid", "VRID 0 is not a valid virtual router (1..255)")
    ip_type = IPv6Address if size == 16 else IPv4Address
    addresses = tuple(
        ip_type(data[HEADER_LEN + i * size : HEADER_LEN + (i + 1) * size]) for i in range(count)
    )
    if version == 2:
        auth_type, seconds = second_word >> 8, second_word & 0xFF
        if seconds == 0:
            raise PacketError("interval", "advertisement interval is 0 seconds")
        return Advert(
            version, vrid, priority, seconds * 100, addresses, auth_type, data[-AUTH_DATA_LEN:]
        )
    interval_cs = second_word & MAX_INTERVAL_V3_CS  # high 4 bits reserved: ignored on receive
    if interval_cs == 0:
        raise PacketError("interval", "max advertisement interval is 0 centiseconds")
    return Advert(version, vrid, priority, interval_cs, addresses)
