"""A small classic-BPF interpreter, and the kernel's own verdict, for filter tests.

The kernel runs the same programs through an AF_UNIX datagram socket
(SO_ATTACH_FILTER needs no privilege there; the filter sees the datagram as
if it were the frame, with pkt_type PACKET_HOST).
"""

from __future__ import annotations

import operator
import socket
from collections.abc import Sequence

from freevrrpd.net import bpf

MAC = bytes.fromhex("02000000000b")  # the sender of the sample frames
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)


ALU = {0x00: operator.add, 0x10: operator.sub, 0x20: operator.mul, 0x40: operator.or_,
       0x50: operator.and_, 0x60: operator.lshift, 0x70: operator.rshift}


def run(program: Sequence[tuple[int, int, int, int]], frame: bytes, pkttype: int = 0,
        vlan: bool = False) -> int:
    """Classic BPF interpreter (the subset of linux/filter.h a socket filter may use).
    ``vlan``: the frame came with an 802.1Q tag, which the kernel keeps aside.
    Returns the number of bytes to keep; 0 drops the frame."""
    assert 0 < len(program) <= 4096
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        assert pc < len(program), "fell off the end of the program"
        code, jt, jf, k = program[pc]
        pc += 1
        cls, size, mode = code & 0x07, code & 0x18, code & 0xE0
        if cls in (0x00, 0x01):  # LD, LDX
            if mode == 0x00:  # IMM
                value = k
            elif mode == 0x80:  # LEN
                value = len(frame)
            elif mode == 0x60:  # MEM
                value = mem[k]
            elif cls == 0x01 and mode == 0xA0:  # MSH: 4 * (P[k] & 0xf)
                if k >= len(frame):
                    return 0
                value = (frame[k] & 0x0F) * 4
            else:
                offset = k if mode == 0x20 else x + k  # ABS or IND
                if k >= 0x80000000:  # ancillary: pkttype and the VLAN tag are understood
                    ancillary = {bpf.PKTTYPE_LOAD: pkttype, bpf.VLAN_PRESENT_LOAD: int(vlan)}
                    assert mode == 0x20 and k in ancillary, f"ancillary load {k:#x}"
                    value = ancillary[k]
                else:
                    width = {0x00: 4, 0x08: 2, 0x10: 1}[size]
                    if offset + width > len(frame):
                        return 0  # the kernel drops on out-of-bounds loads
                    value = int.from_bytes(frame[offset:offset + width], "big")
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x03:  # STX
            mem[k] = x
        elif cls == 0x04:  # ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            a = (-a if op == 0x80 else ALU[op](a, operand)) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:  # JA
                pc += k
                continue
            operand = x if code & 0x08 else k
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand,
                     0x40: bool(a & operand)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:  # MISC: TAX / TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        else:
            raise AssertionError(f"unknown opcode {code:#x}")


def kernel_accepts(program: Sequence[tuple[int, int, int, int]], frame: bytes) -> bool:
    receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with receiver, sender:
        bpf.attach(receiver, program)
        sender.send(frame)  # AF_UNIX queues (or filters out) before send returns
        try:
            data = receiver.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        assert data == frame  # kept whole
        return True
