"""sendmmsg bursts (``vrid.burst``) on a local datagram socket pair: every frame,
in order, from a vector built once; a full receiver takes part of a burst and
the rest is the caller's."""

from __future__ import annotations

import socket

import pytest

from freevrrpd.vrid import burst
from freevrrpd.vrid.burst import Burst

pytestmark = pytest.mark.skipif(burst._SENDMMSG is None, reason="no sendmmsg in this libc")


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(2048))
        except BlockingIOError:
            return got


def test_a_burst_sends_every_frame_in_order_and_reuses_its_vector() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    frames = [bytes([n]) * (40 + n) for n in range(8)]
    sender = Burst()
    assert sender.send(a, frames) == 8
    assert drain(b) == frames
    vector = sender._vector
    assert sender.send(a, list(frames)) == 8 and sender._vector is vector  # the same frames
    assert drain(b) == frames
    changed = frames[:3] + [b"new frame"]
    assert sender.send(a, changed) == 4 and sender._vector is not vector
    assert drain(b) == changed
    assert sender.send(a, []) == 0


def test_what_a_full_receiver_does_not_take_is_left_to_the_caller() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel's minimum, about
    frames = [bytes([n]) * 1000 for n in range(40)]
    sent = Burst().send(a, frames)
    assert 0 < sent < len(frames)
    assert drain(b) == frames[:sent]
    assert Burst().send(a, frames) >= 0  # drained: room again, never an exception for full
