"""A burst of frames in one system call: sendmmsg(2) on a packet socket.

The transmitter sends every due advert of an interface at once.  One send()
per frame costs a system call each and, worse, hands the interpreter lock
around a hundred times a burst: while a hundred routers become master
together, each hand-off waited for a busy thread and a burst of 100 adverts
took 25-38 ms (measured) instead of about 1.  sendmmsg sends them all in one
call, made through ``ctypes.PyDLL``, which keeps the lock: the call cannot
block (MSG_DONTWAIT, and a send buffer sized for the burst), so nothing waits
on it.  What the kernel did not take (a full buffer) is left to the caller,
which sends it frame by frame.  Without sendmmsg (not glibc) ``send_burst``
sends nothing and the caller does the same.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Sequence
from typing import Any

MSG_DONTWAIT = 0x40
SO_SNDBUFFORCE = 32  # asm-generic/socket.h
SNDBUF = 4 << 20  # bytes: a burst of a thousand adverts and their buffers


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _sendmmsg() -> Any:
    try:
        fn = ctypes.PyDLL(None, use_errno=True).sendmmsg
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SENDMMSG = _sendmmsg()


def size_for_bursts(sock: socket.socket) -> None:
    """A send buffer that holds a whole burst (past wmem_max with CAP_NET_ADMIN)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)


class Burst:
    """The vector of one interface's due frames, built again only when they change
    (in a steady state, every burst is the same frames)."""

    def __init__(self) -> None:
        self._frames: tuple[bytes, ...] = ()
        self._keep: list[object] = []  # the buffers the vector points into
        self._vector: ctypes.Array[_MMsgHdr] | None = None

    def send(self, sock: socket.socket, frames: Sequence[bytes]) -> int:
        """How many of ``frames``, from the first, the kernel took (0 without
        sendmmsg); raises OSError if it took none for a reason of its own."""
        if _SENDMMSG is None or not frames:
            return 0
        key = tuple(frames)
        if key != self._frames or self._vector is None:
            self._vector = self._build(key)
        sent = int(_SENDMMSG(sock.fileno(), ctypes.addressof(self._vector), len(key),
                             MSG_DONTWAIT))
        if sent < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.ENOBUFS):  # full: the caller sends the rest
                return 0
            raise OSError(err, os.strerror(err))
        return sent

    def _build(self, frames: tuple[bytes, ...]) -> ctypes.Array[_MMsgHdr]:
        n = len(frames)
        buffers = [ctypes.create_string_buffer(f, len(f)) for f in frames]
        iovs = (_IoVec * n)()
        vector = (_MMsgHdr * n)()
        for i, (buf, frame) in enumerate(zip(buffers, frames, strict=True)):
            iovs[i].iov_base = ctypes.addressof(buf)
            iovs[i].iov_len = len(frame)
            vector[i].msg_hdr.msg_iov = ctypes.addressof(iovs) + i * ctypes.sizeof(_IoVec)
            vector[i].msg_hdr.msg_iovlen = 1
        self._frames, self._keep = frames, [buffers, iovs]
        return vector
