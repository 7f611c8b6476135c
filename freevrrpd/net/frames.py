"""Ethernet frames around VRRP adverts, ARP and neighbour discovery.

Pure functions: bytes in, bytes out, no sockets. The daemon sends complete
frames through AF_PACKET (``capture.py``), so everything a kernel would fill in
(Ethernet source, IP header, checksums) is built here, which is what lets a
master send from the virtual MAC without owning an interface that carries it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.packet import internet_checksum
from freevrrpd.core.settings import VRRP_PROTO, IPAddress

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
IPPROTO_ICMPV6 = 58

ETH_HLEN = 14
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ALL_NODES = IPv6Address("ff02::1")

# RFC 4861 section 4.3/4.4 message types and option types.
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
ND_OPT_SOURCE_LLADDR = 1
ND_OPT_TARGET_LLADDR = 2
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000

ARPOP_REQUEST = 1
ARPOP_REPLY = 2

# Network Control (CS6, RFC 4594): VRRP is the kind of traffic that class is for.
DEFAULT_TOS = 0xC0

# IPv6 extension headers (RFC 8200 section 4) that would have to be chased to
# reach the upper-layer header; VRRP and ND never carry them, so such frames
# are simply refused.
_IPV6_EXTENSION_HEADERS = frozenset({0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254})


def multicast_mac(group: IPAddress) -> bytes:
    """Ethernet address of an IP multicast group (RFC 1112 section 6.4, RFC 2464 section 7)."""
    if not group.is_multicast:
        raise ValueError(f"{group} is not a multicast address")
    raw = group.packed
    if isinstance(group, IPv4Address):
        return bytes((0x01, 0x00, 0x5E, raw[1] & 0x7F, raw[2], raw[3]))
    return b"\x33\x33" + raw[12:]


def solicited_node(target: IPv6Address) -> IPv6Address:
    """RFC 4291 section 2.7.1: ff02::1:ffXX:XXXX from the low 24 bits."""
    return IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + target.packed[13:])


def _ipv6_pseudo_header(src: IPv6Address, dst: IPv6Address, length: int, proto: int) -> bytes:
    # RFC 8200 section 8.1: upper-layer checksums cover this pseudo-header.
    return src.packed + dst.packed + struct.pack("!I3xB", length, proto)


def _ethernet(dst: bytes, src: bytes, ethertype: int) -> bytes:
    if len(dst) != 6 or len(src) != 6:
        raise ValueError("MAC addresses are 6 bytes")
    return dst + src + struct.pack("!H", ethertype)


def _ipv4_header(src: IPv4Address, dst: IPv4Address, proto: int, length: int,
                 ttl: int, tos: int, ident: int) -> bytes:
    # Flags and fragment offset 0: DF is left off as RFC 5798 sets no
    # requirement and adverts are far below any MTU.
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + length, ident & 0xFFFF, 0,
                         ttl, proto, 0, src.packed, dst.packed)
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:]


def _ipv6_header(src: IPv6Address, dst: IPv6Address, next_header: int, length: int,
                 hop_limit: int, tclass: int) -> bytes:
    first = (6 << 28) | (tclass << 20)
    return struct.pack("!IHBB", first, length, next_header, hop_limit) + src.packed + dst.packed


def vrrp_frame(src_mac: bytes, src_ip: IPAddress, dst_ip: IPAddress, payload: bytes, *,
               dst_mac: bytes | None = None, tos: int = DEFAULT_TOS, ident: int = 0) -> bytes:
    """A complete VRRP frame. TTL / hop limit 255 (RFC 5798 section 5.1.1.3 / 5.1.2.3)
    so receivers can tell it never crossed a router. The Ethernet destination is
    the group's MAC; a unicast destination needs ``dst_mac`` from the caller."""
    if dst_mac is None:
        if not dst_ip.is_multicast:
            raise ValueError(f"{dst_ip} is not multicast: pass dst_mac")
        dst_mac = multicast_mac(dst_ip)
    if isinstance(src_ip, IPv4Address) and isinstance(dst_ip, IPv4Address):
        header = _ipv4_header(src_ip, dst_ip, VRRP_PROTO, len(payload), 255, tos, ident)
        return _ethernet(dst_mac, src_mac, ETH_P_IP) + header + payload
    if isinstance(src_ip, IPv6Address) and isinstance(dst_ip, IPv6Address):
        header = _ipv6_header(src_ip, dst_ip, VRRP_PROTO, len(payload), 255, tos)
        return _ethernet(dst_mac, src_mac, ETH_P_IPV6) + header + payload
    raise ValueError("source and destination must be of the same address family")


@dataclass(frozen=True)
class Received:
    src_mac: bytes
    dst_mac: bytes
    src_ip: IPAddress
    dst_ip: IPAddress
    ttl: int
    proto: int
    payload: bytes


def parse_ip_frame(frame: bytes) -> Received | None:
    """Ethernet + IPv4/IPv6 header checks; ``None`` for anything malformed.
    Trailing bytes past the IP length are Ethernet padding and are dropped."""
    if len(frame) < ETH_HLEN:
        return None
    dst_mac, src_mac = frame[0:6], frame[6:12]
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    packet = frame[ETH_HLEN:]
    if ethertype == ETH_P_IP:
        return _parse_ipv4(src_mac, dst_mac, packet)
    if ethertype == ETH_P_IPV6:
        return _parse_ipv6(src_mac, dst_mac, packet)
    return None


def _parse_ipv4(src_mac: bytes, dst_mac: bytes, packet: bytes) -> Received | None:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header_len = (packet[0] & 0x0F) * 4
    (total_len, frag) = struct.unpack_from("!H2xH", packet, 2)
    if header_len < 20 or total_len < header_len or total_len > len(packet):
        return None
    if frag & 0x3FFF:  # MF set or non-zero offset: a fragment, never a whole advert
        return None
    if internet_checksum(packet[:header_len]) != 0:
        return None
    return Received(src_mac, dst_mac, IPv4Address(packet[12:16]), IPv4Address(packet[16:20]),
                    packet[8], packet[9], packet[header_len:total_len])


def _parse_ipv6(src_mac: bytes, dst_mac: bytes, packet: bytes) -> Received | None:
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    (payload_len, next_header, hop_limit) = struct.unpack_from("!HBB", packet, 4)
    if 40 + payload_len > len(packet) or next_header in _IPV6_EXTENSION_HEADERS:
        return None
    return Received(src_mac, dst_mac, IPv6Address(packet[8:24]), IPv6Address(packet[24:40]),
                    hop_limit, next_header, packet[40:40 + payload_len])


def signature(frame: bytes) -> bytes | None:
    """What makes an advert the same as another for a backup: Ethernet source, IP
    source and destination, VRRP message; None unless it is a whole VRRP packet
    the receive path would accept as IP (header checksum, lengths, no fragment)
    with TTL / hop limit 255 and, for IPv4, no options (``net.bpf.Repeat`` drops
    exactly these).  By slicing, not parsing: the tap runs it on every advert."""
    if frame[12:14] == b"\x08\x00":
        if (len(frame) < 34 or frame[14] != 0x45 or frame[22] != 255 or frame[23] != VRRP_PROTO
                or frame[20] & 0x3F or frame[21]):  # MF or an offset: a fragment
            return None
        end = ETH_HLEN + int.from_bytes(frame[16:18], "big")
        # A valid header sums to 0xFFFF in one's complement, so as a number it is a
        # multiple of 0xFFFF (2**16 = 1 modulo 0xFFFF; RFC 1071 2): one C operation.
        if not 34 <= end <= len(frame) or int.from_bytes(frame[14:34], "big") % 0xFFFF:
            return None
        return frame[6:12] + frame[26:end]
    if frame[12:14] == b"\x86\xdd":
        if (len(frame) < 54 or frame[14] >> 4 != 6 or frame[20] != VRRP_PROTO
                or frame[21] != 255):
            return None
        end = 54 + int.from_bytes(frame[18:20], "big")
        return frame[6:12] + frame[22:end] if end <= len(frame) else None
    return None


# --- ARP (RFC 826), gratuitous ARP (RFC 5798 section 6.4.1) and probes (RFC 5227) ---

def _arp_frame(dst_mac: bytes, op: int, sha: bytes, spa: IPv4Address, tha: bytes,
               tpa: IPv4Address) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, sha, spa.packed, tha, tpa.packed)
    return _ethernet(dst_mac, sha, ETH_P_ARP) + body


def garp_frame(mac: bytes, ip: IPv4Address) -> bytes:
    """Gratuitous ARP request, sender = target = the VIP (RFC 5798 section 6.4.1).
    A request rather than a reply: RFC 5227 section 3 explains requests are
    handled by more stacks; the target hardware address is zero as it says."""
    return _arp_frame(BROADCAST_MAC, ARPOP_REQUEST, mac, ip, ZERO_MAC, ip)


def arp_probe_frame(mac: bytes, target: IPv4Address) -> bytes:
    """RFC 5227 section 2.1.1: sender IP 0.0.0.0 so no cache learns a binding from it."""
    return _arp_frame(BROADCAST_MAC, ARPOP_REQUEST, mac, IPv4Address(0), ZERO_MAC, target)


# --- neighbour discovery (RFC 4861) and duplicate address detection (RFC 4862) ---

def _icmpv6_frame(src_mac: bytes, dst_mac: bytes, src: IPv6Address, dst: IPv6Address,
                  message: bytes) -> bytes:
    checksum = internet_checksum(
        _ipv6_pseudo_header(src, dst, len(message), IPPROTO_ICMPV6) + message)
    message = message[:2] + struct.pack("!H", checksum) + message[4:]
    # Hop limit 255: RFC 4861 section 7.1 receivers drop ND messages with any other.
    header = _ipv6_header(src, dst, IPPROTO_ICMPV6, len(message), 255, 0)
    return _ethernet(dst_mac, src_mac, ETH_P_IPV6) + header + message


def unsolicited_na_frame(mac: bytes, src_ip: IPv6Address, target: IPv6Address) -> bytes:
    """Unsolicited neighbour advertisement to all-nodes (RFC 4861 section 7.2.6) as
    RFC 5798 section 6.4.1 asks: Router flag set, Solicited clear, Override set,
    target = the virtual address, target link-layer address = ``mac``.

    ``src_ip`` must be an address of the sending interface (RFC 4861 section 4.4);
    ``announce`` uses the VIP itself unless given a link-local address, like the
    Linux kernel's own unsolicited NAs: the VIP is assigned while we are master
    and needs no link-local address on a macvlan. Receivers (RFC 4861 7.1.2)
    put no other condition on the source."""
    flags = NA_FLAG_ROUTER | NA_FLAG_OVERRIDE
    option = struct.pack("!BB6s", ND_OPT_TARGET_LLADDR, 1, mac)
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_ADVERT, 0, 0, flags, target.packed) + option
    return _icmpv6_frame(mac, multicast_mac(ALL_NODES), src_ip, ALL_NODES, message)


def dad_ns_frame(mac: bytes, target: IPv6Address) -> bytes:
    """Duplicate address detection NS (RFC 4862 section 5.4.2): source ::, sent to the
    target's solicited-node group, and no source link-layer option (RFC 4861 7.1.1
    makes receivers drop DAD solicitations that carry one)."""
    group = solicited_node(target)
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_SOLICIT, 0, 0, 0, target.packed)
    return _icmpv6_frame(mac, multicast_mac(group), IPv6Address(0), group, message)


# --- someone saying "ip is at mac" ---

@dataclass(frozen=True)
class Claim:
    ip: IPAddress
    mac: bytes


def parse_claim(frame: bytes) -> Claim | None:
    """ARP request/reply sender binding, or the binding an NA (or NS) announces."""
    if len(frame) >= ETH_HLEN + 28 and frame[12:14] == b"\x08\x06":
        return _arp_claim(frame[ETH_HLEN:ETH_HLEN + 28])
    received = parse_ip_frame(frame)
    if received is None or received.proto != IPPROTO_ICMPV6:
        return None
    return _nd_claim(received)


def _arp_claim(body: bytes) -> Claim | None:
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", body)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) or op not in (ARPOP_REQUEST, ARPOP_REPLY):
        return None
    sender = IPv4Address(body[14:18])
    if sender == IPv4Address(0):
        # A probe (RFC 5227 2.1.1) claims nothing. Another router of our VRID
        # probing the same VIP at the same moment must not count as a holder.
        return None
    return Claim(sender, body[8:14])


def _nd_claim(received: Received) -> Claim | None:
    src, dst, message = received.src_ip, received.dst_ip, received.payload
    assert isinstance(src, IPv6Address) and isinstance(dst, IPv6Address)
    # RFC 4861 section 7.1.1/7.1.2 validity: hop limit 255, code 0, checksum, length.
    if received.ttl != 255 or len(message) < 24 or message[1] != 0:
        return None
    if internet_checksum(_ipv6_pseudo_header(src, dst, len(message), IPPROTO_ICMPV6)
                         + message) != 0:
        return None
    options = _nd_options(message[24:])
    if options is None:
        return None
    if message[0] == ND_NEIGHBOR_ADVERT:
        target = IPv6Address(message[8:24])
        return Claim(target, options.get(ND_OPT_TARGET_LLADDR, received.src_mac))
    if message[0] == ND_NEIGHBOR_SOLICIT and not src.is_unspecified:
        # A solicitation from an address binds that address to the sender,
        # just as an ARP request's sender fields do.
        return Claim(src, options.get(ND_OPT_SOURCE_LLADDR, received.src_mac))
    return None


def _nd_options(data: bytes) -> dict[int, bytes] | None:
    """Link-layer address options by type; ``None`` if an option is malformed."""
    found: dict[int, bytes] = {}
    while data:
        if len(data) < 2 or data[1] == 0 or len(data) < data[1] * 8:
            return None  # RFC 4861 section 4.6: length 0 is invalid
        kind, size = data[0], data[1] * 8
        if kind in (ND_OPT_SOURCE_LLADDR, ND_OPT_TARGET_LLADDR) and size >= 8:
            found.setdefault(kind, data[2:8])
        data = data[size:]
    return found

