"""Classic BPF programs for the capture sockets, and attaching them.

The kernel runs these on every frame of the interface before it is queued on
our socket, so a VRID's thread only wakes up for adverts of its own VRID and
family (RFC 5798 7.1 drops every other one anyway) instead of every multicast
frame of the LAN.  Families are 4 or 6, as in the settings.

A program is a list of ``(code, jt, jf, k)`` tuples, the layout of
``struct sock_filter`` (linux/filter.h), so the tests can run it in a small
interpreter without root.
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from freevrrpd.core.settings import VRRP_PROTO, IPAddress
from freevrrpd.net.frames import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6

Instruction = tuple[int, int, int, int]

# Opcodes (linux/bpf_common.h).
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MSH = 0xA0
BPF_JEQ = 0x10
BPF_JSET = 0x40
BPF_K = 0x00

LD_W_ABS = BPF_LD | BPF_W | BPF_ABS
LD_H_ABS = BPF_LD | BPF_H | BPF_ABS
LD_B_ABS = BPF_LD | BPF_B | BPF_ABS
LD_B_IND = BPF_LD | BPF_B | BPF_IND
LDX_B_MSH = BPF_LDX | BPF_B | BPF_MSH
JEQ_K = BPF_JMP | BPF_JEQ | BPF_K
JSET_K = BPF_JMP | BPF_JSET | BPF_K
RET_K = BPF_RET | BPF_K

# Ancillary data (linux/filter.h): a load from SKF_AD_OFF + SKF_AD_PKTTYPE
# yields skb->pkt_type instead of packet bytes.
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
SKF_AD_VLAN_TAG_PRESENT = 48
PKTTYPE_LOAD = (SKF_AD_OFF + SKF_AD_PKTTYPE) & 0xFFFFFFFF
VLAN_PRESENT_LOAD = (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) & 0xFFFFFFFF
ETH_HLEN = 14  # what is kept of an advert that came with an 802.1Q tag
PACKET_OUTGOING = 4  # linux/if_packet.h

SO_ATTACH_FILTER = 26  # asm-generic/socket.h; absent from the socket module

ACCEPT_ALL = 0x40000  # snap length: the whole frame (larger than any Ethernet frame)

ETH_TYPE_OFFSET = 12
IPV4_OFFSET = 14
IPV6_OFFSET = 14
IPV6_NEXT_HEADER = 14 + 6
IPV6_PAYLOAD = 14 + 40


class _Program:
    """Builds a program with symbolic jump targets ``accept`` and ``drop``."""

    def __init__(self) -> None:
        self.body: list[tuple[int, int | str, int | str, int]] = []

    def op(self, code: int, k: int) -> None:
        self.body.append((code, 0, 0, k))

    def jump(self, code: int, k: int, jt: int | str, jf: int | str) -> None:
        self.body.append((code, jt, jf, k))

    def finish(self) -> list[Instruction]:
        accept, drop = len(self.body), len(self.body) + 1
        out: list[Instruction] = []
        for index, (code, jt, jf, k) in enumerate(self.body):
            out.append((code, _target(jt, index, accept, drop),
                        _target(jf, index, accept, drop), k))
        out.append((RET_K, 0, 0, ACCEPT_ALL))
        out.append((RET_K, 0, 0, 0))
        return out


def _target(label: int | str, index: int, accept: int, drop: int) -> int:
    if isinstance(label, int):
        return label
    offset = (accept if label == "accept" else drop) - index - 1
    if not 0 <= offset <= 255:
        raise ValueError("BPF jump out of range")
    return offset


def _not_outgoing(prog: _Program) -> None:
    # Frames we (or a sibling socket on this host) transmit are looped back to
    # ETH_P_ALL taps with pkt_type PACKET_OUTGOING; a router must never take its
    # own advert for a peer's, so such frames are dropped in the kernel.
    prog.op(LD_W_ABS, PKTTYPE_LOAD)
    prog.jump(JEQ_K, PACKET_OUTGOING, "drop", 0)


def _ethertype(prog: _Program, ethertype: int) -> None:
    prog.op(LD_H_ABS, ETH_TYPE_OFFSET)
    prog.jump(JEQ_K, ethertype, 0, "drop")


@dataclass(frozen=True)
class Repeat:
    """An advert a backup has accepted and need not see again unchanged: the frame's
    Ethernet source, IP source and destination, and VRRP message (the IP payload)."""

    mac: bytes
    src: IPAddress
    dst: IPAddress
    payload: bytes

    @property
    def signature(self) -> bytes:
        """What a tap compares frames by (``net.frames.signature``)."""
        return self.mac + self.src.packed + self.dst.packed + self.payload


def vrrp_filter(vrid: int, family: int, repeat: Repeat | None = None,
                to: Collection[IPAddress] = ()) -> list[Instruction]:
    """Accept only VRRP (IP protocol 112) frames of ``family`` whose VRID byte
    (second byte of the VRRP header in both RFC 3768 and RFC 5798) is ``vrid``.
    TTL, version and checksum are left to the codec so that bad adverts are
    counted there rather than vanish.  With ``repeat``, a frame identical to it
    in every byte that counts (TTL 255 and no IP options included) is dropped:
    its arrival is counted by a shared tap instead (``vrid.repeats``).  With ``to``
    (a unicast router: the group and our source address), only frames addressed to
    one of them: a unicast advert between two other routers never wakes us."""
    if not 0 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} out of range")
    prog = _Program()
    _not_outgoing(prog)
    if family == 4:
        _ethertype(prog, ETH_P_IP)
        prog.op(LD_B_ABS, IPV4_OFFSET + 9)  # protocol
        prog.jump(JEQ_K, VRRP_PROTO, 0, "drop")
        # Fragments cannot be checked for a VRID (and adverts are never
        # fragmented): drop on MF or a non-zero fragment offset.
        prog.op(LD_H_ABS, IPV4_OFFSET + 6)
        prog.jump(JSET_K, 0x3FFF, "drop", 0)
        prog.op(LDX_B_MSH, IPV4_OFFSET)  # X = IHL * 4, so IP options are skipped
        prog.op(LD_B_IND, IPV4_OFFSET + 1)  # VRID
    elif family == 6:
        _ethertype(prog, ETH_P_IPV6)
        prog.op(LD_B_ABS, IPV6_NEXT_HEADER)
        prog.jump(JEQ_K, VRRP_PROTO, 0, "drop")
        prog.op(LD_B_ABS, IPV6_PAYLOAD + 1)  # VRID
    else:
        raise ValueError(f"unsupported address family {family}")
    prog.jump(JEQ_K, vrid, 0, "drop")
    # An advert of our VRID that carried an 802.1Q tag is another VLAN's, on the
    # same wire: the kernel keeps the tag aside (skb metadata) before any tap
    # sees the frame.  Only its Ethernet header reaches us, to be counted.
    prog.op(LD_W_ABS, VLAN_PRESENT_LOAD)
    prog.jump(JEQ_K, 0, 1, 0)
    prog.op(RET_K, ETH_HLEN)
    if repeat is not None:
        _drop_repeat(prog, family, repeat)
    if to:
        _addressed_to(prog, family, to)
    return prog.finish()


def _addressed_to(prog: _Program, family: int, to: Collection[IPAddress]) -> None:
    ips = sorted({ip for ip in to if ip.version == family})
    if family == 4:
        prog.op(LD_W_ABS, IPV4_OFFSET + 16)  # destination (the fixed header's)
        for ip in ips:
            prog.jump(JEQ_K, int(ip), "accept", 0)
        prog.op(RET_K, 0)
    else:
        _match_v6(prog, IPV6_OFFSET + 24, ips)


def _drop_repeat(prog: _Program, family: int, r: Repeat) -> None:
    """Drop if the frame is ``r`` again; any difference accepts it on the spot."""
    n = len(r.payload)
    if family == 4:
        fields = [(IPV4_OFFSET, bytes([0x45])),  # version 4, no options
                  (IPV4_OFFSET + 2, (20 + n).to_bytes(2, "big")),  # total length
                  (IPV4_OFFSET + 8, bytes([255])),  # TTL (RFC 5798 7.1)
                  (IPV4_OFFSET + 12, r.src.packed + r.dst.packed),
                  (IPV4_OFFSET + 20, r.payload)]
    else:
        fields = [(IPV6_OFFSET + 4, n.to_bytes(2, "big")),  # payload length
                  (IPV6_OFFSET + 7, bytes([255])),  # hop limit
                  (IPV6_OFFSET + 8, r.src.packed + r.dst.packed),
                  (IPV6_PAYLOAD, r.payload)]
    for offset, data in [(6, r.mac), *fields]:
        _same(prog, offset, data)
    prog.op(RET_K, 0)


def _same(prog: _Program, offset: int, data: bytes) -> None:
    loads = {4: LD_W_ABS, 2: LD_H_ABS, 1: LD_B_ABS}
    at = 0
    while at < len(data):
        width = 4 if len(data) - at >= 4 else 2 if len(data) - at >= 2 else 1
        prog.op(loads[width], offset + at)
        prog.jump(JEQ_K, int.from_bytes(data[at:at + width], "big"), 1, 0)
        prog.op(RET_K, ACCEPT_ALL)
        at += width


def repeats_filter() -> list[Instruction]:
    """Every VRRP advert of the interface, both families, any VRID, none that we send
    and none with an 802.1Q tag: what the repeats tap counts."""
    prog = _Program()
    _not_outgoing(prog)
    prog.op(LD_W_ABS, VLAN_PRESENT_LOAD)
    prog.jump(JEQ_K, 0, 0, "drop")
    prog.op(LD_H_ABS, ETH_TYPE_OFFSET)
    prog.jump(JEQ_K, ETH_P_IP, 0, 2)
    prog.op(LD_B_ABS, IPV4_OFFSET + 9)
    prog.jump(JEQ_K, VRRP_PROTO, "accept", "drop")
    prog.jump(JEQ_K, ETH_P_IPV6, 0, "drop")
    prog.op(LD_B_ABS, IPV6_NEXT_HEADER)
    prog.jump(JEQ_K, VRRP_PROTO, "accept", "drop")
    return prog.finish()


def claim_filter(family: int) -> list[Instruction]:
    """ARP (IPv4) or ICMPv6 neighbour solicitations/advertisements (IPv6)."""
    prog = _Program()
    _not_outgoing(prog)
    if family == 4:
        prog.op(LD_H_ABS, ETH_TYPE_OFFSET)
        prog.jump(JEQ_K, ETH_P_ARP, "accept", "drop")
    elif family == 6:
        _ethertype(prog, ETH_P_IPV6)
        prog.op(LD_B_ABS, IPV6_NEXT_HEADER)
        prog.jump(JEQ_K, IPPROTO_ICMPV6, 0, "drop")
        prog.op(LD_B_ABS, IPV6_PAYLOAD)  # ICMPv6 type
        prog.jump(JEQ_K, 135, "accept", 0)
        prog.jump(JEQ_K, 136, "accept", "drop")
    else:
        raise ValueError(f"unsupported address family {family}")
    return prog.finish()


ARP_SENDER_IP = 14 + 14  # Ethernet header, then htype..sha of an IPv4 ARP packet
ND_TARGET = IPV6_PAYLOAD + 8  # RFC 4861 4.4: the NA's Target Address
IPV6_SOURCE = 14 + 8
# Each address below costs 9 instructions and the jumps past them must stay
# within the 255 a classic BPF jump can reach.
MAX_WATCHED = 28


def claim_watch_filter(family: int, ips: Collection[IPAddress]) -> list[Instruction]:
    """Only the frames that bind one of ``ips`` to a MAC address: ARP whose sender
    address is one of them (IPv4); an NA whose target, or an NS whose source, is
    one of them (IPv6, RFC 4861 7.2.3 / 7.2.6).  Every other ARP and ND frame of
    a busy LAN then never wakes the watcher of each master VRID.  Without
    addresses, or with more than MAX_WATCHED, the broader claim_filter.

    Every test drops on the spot (a RET right after it) rather than jumping to
    the end, which a long list of addresses would put out of a jump's reach."""
    ips = sorted({ip for ip in ips if ip.version == family})
    if not ips or len(ips) > MAX_WATCHED:
        return claim_filter(family)
    prog = _Program()
    _require(prog, LD_W_ABS, PKTTYPE_LOAD, PACKET_OUTGOING, equal=False)
    if family == 4:
        _require(prog, LD_H_ABS, ETH_TYPE_OFFSET, ETH_P_ARP)
        prog.op(LD_W_ABS, ARP_SENDER_IP)
        for ip in ips:
            prog.jump(JEQ_K, int(ip), 0, 1)
            prog.op(RET_K, ACCEPT_ALL)
        prog.op(RET_K, 0)
        return prog.finish()
    _require(prog, LD_H_ABS, ETH_TYPE_OFFSET, ETH_P_IPV6)
    _require(prog, LD_B_ABS, IPV6_NEXT_HEADER, IPPROTO_ICMPV6)
    prog.op(LD_B_ABS, IPV6_PAYLOAD)  # ICMPv6 type
    block = 9 * len(ips) + 1  # one address check each, then a drop
    prog.jump(JEQ_K, 136, 0, block)  # neighbour advertisement: its target
    _match_v6(prog, ND_TARGET, ips)
    prog.jump(JEQ_K, 135, 0, block - 1)  # neighbour solicitation: its source
    _match_v6(prog, IPV6_SOURCE, ips)  # (anything else: to the drop ending this)
    return prog.finish()


def _require(prog: _Program, load: int, offset: int, value: int, equal: bool = True) -> None:
    """Drop unless the loaded value equals ``value`` (or, with ``equal=False``, unless
    it differs)."""
    prog.op(load, offset)
    prog.jump(JEQ_K, value, 1 if equal else 0, 0 if equal else 1)
    prog.op(RET_K, 0)


def _match_v6(prog: _Program, offset: int, ips: Sequence[IPAddress]) -> None:
    """Accept if the 16 bytes at ``offset`` are one of ``ips``, else drop."""
    for ip in ips:
        words = [int.from_bytes(ip.packed[i:i + 4], "big") for i in (0, 4, 8, 12)]
        for index, word in enumerate(words):
            prog.op(LD_W_ABS, offset + 4 * index)
            # A mismatch skips the rest of this address: 2 per word left, and the RET.
            prog.jump(JEQ_K, word, 0, 2 * (3 - index) + 1)
        prog.op(RET_K, ACCEPT_ALL)
    prog.op(RET_K, 0)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def attach(sock: socket.socket, program: Sequence[Instruction]) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program during the call, so the
    ctypes array only has to live until setsockopt returns (held in ``array``)."""
    if not program or len(program) > 4096:  # BPF_MAXINSNS
        raise ValueError("BPF program must have 1..4096 instructions")
    array = (_SockFilter * len(program))(*(_SockFilter(*insn) for insn in program))
    fprog = _SockFprog(len(program), ctypes.cast(array, ctypes.POINTER(_SockFilter)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
