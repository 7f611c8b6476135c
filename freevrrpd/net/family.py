"""Settings say 4 or 6; sockets want AF_INET or AF_INET6."""

from __future__ import annotations

import socket


def address_family(family: int) -> int:
    if family in (4, socket.AF_INET):
        return socket.AF_INET
    if family in (6, socket.AF_INET6):
        return socket.AF_INET6
    raise ValueError(f"unknown address family {family!r}")
