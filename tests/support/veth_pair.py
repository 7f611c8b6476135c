"""Two network namespaces joined by a veth pair, for the packet-adapter tests.

Sockets are opened from the test process after switching the calling thread
into a namespace with setns(2); a socket stays in the namespace it was created
in, so the test then uses it from anywhere.  No processes run in the
namespaces, and the namespaces (with their veth ends) are deleted after each
test, also on failure.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from freevrrpd.core.mac import mac_bytes, mac_text
from freevrrpd.net.capture import PacketSocket
from freevrrpd.net.conflict import ClaimWatcher

IF = "fv0"
MAC_A, MAC_B = mac_bytes("02:00:00:00:00:0a"), mac_bytes("02:00:00:00:00:0b")
A4, B4 = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
GROUP4, GROUP6 = IPv4Address("224.0.0.18"), IPv6Address("ff02::12")
VIP4, VIP6 = IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")
AF4, AF6 = 4, 6
CLONE_NEWNET = 0x40000000
WAIT = 5.0  # generous: a busy 2-core machine must never fail a positive check
QUIET = 0.3  # how long a negative check listens after the positive arrived

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the body with this thread in ``netns``; always switch back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
    finally:
        os.close(home)


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


@dataclass
class Lab:
    a: str
    b: str

    def sysctl(self, netns: str, setting: str) -> None:
        # Only ever inside our own test namespaces.
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", setting],
                       check=True, capture_output=True, timeout=10)

    def neighbour(self, netns: str, addr: IPv4Address | IPv6Address) -> dict[str, Any] | None:
        entries = json.loads(ip("-n", netns, "-j", "neigh", "show", "to", str(addr),
                                "dev", IF) or "[]")
        return entries[0] if entries else None


def link_ready(netns: str) -> bool:
    """Carrier is up and IPv6 has configured the link (its link-local address
    exists); before that the kernel has no multicast route and drops ND."""
    (link,) = json.loads(ip("-n", netns, "-j", "addr", "show", "dev", IF))
    return link.get("operstate") == "UP" and any(
        info.get("family") == "inet6" and info.get("scope") == "link"
        for info in link.get("addr_info", []))


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def collect(sock: PacketSocket | ClaimWatcher, until: Callable[[list[Any]], bool]) -> list[Any]:
    """Everything ``sock`` yields until ``until(items)`` holds (or WAIT passes),
    plus whatever else arrives within QUIET after that."""
    items: list[Any] = []
    read: Callable[[], list[Any]] = (sock.recv_all if isinstance(sock, PacketSocket)
                                     else sock.poll)
    deadline = time.monotonic() + WAIT
    while not until(items) and time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        items.extend(read())
    time.sleep(QUIET)
    items.extend(read())
    return items


@contextmanager
def veth_pair() -> Iterator[Lab]:
    """Two fresh namespaces joined by a veth pair, addressed and up; removed after."""
    tag = secrets.token_hex(3)
    lab = Lab(f"fv{tag}a", f"fv{tag}b")
    try:
        ip("netns", "add", lab.a)
        ip("netns", "add", lab.b)
        ip("-n", lab.a, "link", "add", IF, "address", mac_text(MAC_A), "type", "veth",
           "peer", "name", IF, "address", mac_text(MAC_B), "netns", lab.b)
        for netns, v4, v6 in ((lab.a, A4, A6), (lab.b, B4, B6)):
            ip("-n", netns, "addr", "add", f"{v4}/24", "dev", IF)
            ip("-n", netns, "addr", "add", f"{v6}/64", "dev", IF, "nodad")
            ip("-n", netns, "link", "set", IF, "up")
        for netns in (lab.a, lab.b):
            assert wait_for(partial(link_ready, netns)), f"{IF} in {netns} not ready"
        yield lab
    finally:
        for netns in (lab.a, lab.b):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)
