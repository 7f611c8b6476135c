"""Helpers for the netlink tests: throw-away namespaces and code run inside them.

The library acts on "the current namespace" (the daemon runs inside its own),
so each test body that uses it runs in a forked child that joined the test's
namespace with setns(2); /proc/sys/net then shows that namespace too.  Set-up
and checks from outside use ``ip -n``.  Addresses: documentation ranges only.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import secrets
import select
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from freevrrpd.net.netlink import Netlink

CLONE_NEWNET = 0x40000000
CHILD_TIMEOUT = 60.0
VMAC4_5 = "00:00:5e:00:01:05"
VMAC6_5 = "00:00:5e:00:02:05"


def sh(*args: str, check: bool = True) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def _setns(name: str) -> None:
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, "setns"):  # Python 3.12+
            os.setns(fd, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_ns(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn(*args) in a child process inside namespace ``name``; return its
    result or re-raise its failure (with the child's traceback)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 0
        try:
            os.close(rfd)
            try:
                _setns(name)
                result: tuple[str, Any] = ("ok", fn(*args))
            except BaseException:
                result = ("error", traceback.format_exc())
            try:
                data = pickle.dumps(result)
            except Exception:
                data = pickle.dumps(("error", f"unpicklable result {result!r}"))
            with os.fdopen(wfd, "wb") as out:
                out.write(data)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    with os.fdopen(rfd, "rb") as inp:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([inp], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"test body in {name} did not finish in {CHILD_TIMEOUT} s")
            chunk = os.read(inp.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError(f"test body in {name} died without a result")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError(f"in namespace {name}:\n{value}")
    return value


def veth(a: str, b: str, up: bool = True) -> None:
    """veth ``va`` in namespace a, its peer ``vb`` in namespace b."""
    sh("ip", "-n", a, "link", "add", "name", "va", "type", "veth", "peer", "name", "vb",
       "netns", b)
    if up:
        sh("ip", "-n", a, "link", "set", "va", "up")
        sh("ip", "-n", b, "link", "set", "vb", "up")


def pair(ns: str, name: str, peer: str) -> None:
    """A veth pair with both ends in ``ns`` (this kernel has no dummy driver)."""
    sh("ip", "-n", ns, "link", "add", "name", name, "type", "veth", "peer", "name", peer)
    sh("ip", "-n", ns, "link", "set", peer, "up")


def link_json(ns: str, dev: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(sh("ip", "-n", ns, "-j", "-d", "link", "show",
                                               "dev", dev))
    return data[0]


def addr_json(ns: str, dev: str) -> list[dict[str, Any]]:
    data = json.loads(sh("ip", "-n", ns, "-j", "addr", "show", "dev", dev))
    info: list[dict[str, Any]] = data[0]["addr_info"]
    return info


def links(ns: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(sh("ip", "-n", ns, "-j", "-d", "link", "show"))
    return data


def proc_sys(ns: str, path: str) -> int:
    return int(sh("ip", "netns", "exec", ns, "cat", f"/proc/sys/net/{path}").strip())


def neigh_mac(ns: str, ip: str) -> str | None:
    data = json.loads(sh("ip", "-n", ns, "-j", "neigh", "show", ip))
    return data[0].get("lladdr") if data else None


def tx_packets(ns: str, dev: str) -> int:
    data = json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev))
    return int(data[0]["stats64"]["tx"]["packets"])


def with_netlink(fn: Callable[[Netlink], Any]) -> Callable[[], Any]:
    def body() -> Any:
        nl = Netlink()
        try:
            return fn(nl)
        finally:
            nl.close()
    return body


@contextlib.contextmanager
def namespaces() -> Iterator[Callable[[], str]]:
    """Factory of fresh namespaces (fv + random hex), all removed afterwards,
    with any process left in them."""
    made: list[str] = []

    def make() -> str:
        name = "fv" + secrets.token_hex(3)
        sh("ip", "netns", "add", name)
        made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in made:
            for pid in sh("ip", "netns", "pids", name, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", name, check=False)
