"""Network namespaces and the processes started in them, for the lab.

Everything here runs real commands (``ip``, ``ip netns exec``) against the
kernel. Nothing ever touches the root namespace's interfaces: links are created
by ``ip -n NS`` straight inside lab namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The lab may only ever use documentation ranges (RFC 5737, RFC 3849), so that
# nothing it sends can reach a real host even if a namespace leaked a route.
ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv4Network("192.0.2.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
    ipaddress.IPv4Network("203.0.113.0/24"),
    ipaddress.IPv6Network("2001:db8::/32"),
)
# Targets that never leave the LAN: link-local and link-scope multicast.
_LINK_SCOPE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("fe80::/10"),
    ipaddress.IPv6Network("ff02::/16"),
    ipaddress.IPv4Network("224.0.0.0/24"),
)


class LabError(RuntimeError):
    """The lab could not build, run or clean something up."""


class CommandError(subprocess.CalledProcessError):
    """A failed command whose message includes what it wrote to stderr."""

    def __str__(self) -> str:
        err = self.stderr
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        text = super().__str__()
        return f"{text}: {err.strip()}" if err else text


def check_address(addr: str, *, link_scope: bool = False) -> None:
    """Refuse any address outside the lab's documentation ranges."""
    ip = ipaddress.ip_interface(addr.split("%", 1)[0]).ip
    nets = ALLOWED_NETWORKS + (_LINK_SCOPE if link_scope else ())
    if not any(ip.version == net.version and ip in net for net in nets):
        raise LabError(f"{addr}: outside the lab's documentation ranges")


def run_cmd(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run with the lab's defaults: text, captured, checked, bounded."""
    check = kw.pop("check", True)
    kw.setdefault("text", True)
    if "stdout" not in kw and "stderr" not in kw:
        kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 60)
    proc: subprocess.CompletedProcess[str] = subprocess.run(list(argv), check=False, **kw)
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group that ``proc`` leads, only while it is unreaped.

    An unreaped leader keeps its pid (the group id) reserved, so the signal
    cannot hit a stranger that got the number later.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


class ProcessRegistry:
    """Every process the lab started; all of them are ended at cleanup."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []

    def track(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.append(proc)

    def live(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [p for p in self._procs if p.poll() is None]

    def terminate_all(self, grace: float = 3.0) -> None:
        """SIGTERM every live process group, SIGKILL what is left after ``grace``."""
        live = self.live()
        for proc in live:
            kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in live:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                kill_group(proc, signal.SIGKILL)
        for proc in live:
            kill_group(proc, signal.SIGKILL)  # stragglers in the group of a leader still alive
            try:
                # A process with many sockets (hundreds of VRIDs) takes seconds
                # to die: the kernel releases each packet socket in turn.
                proc.wait(20.0)
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"process {proc.pid} survived SIGKILL") from exc


@dataclass
class Site:
    """What every node of one lab shares: its processes, its scratch folder, and the
    command that runs freevrrpd."""

    procs: ProcessRegistry
    tmpdir: str
    daemon_command: list[str]


class Namespace:
    """One network namespace of the lab: run commands and inspect it."""

    def __init__(self, name: str, netns: str, registry: ProcessRegistry) -> None:
        self.name = name
        self.netns = netns
        self._registry = registry

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} netns={self.netns}>"

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the namespace; text, output captured, checked by default."""
        return run_cmd(self.exec_argv(argv), **kw)

    def popen(
        self, argv: Sequence[str], log_path: str | None = None, **kw: Any
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the namespace, in a new session, tracked by the lab.

        With ``log_path`` its stdout and stderr are appended to that file;
        otherwise they go to /dev/null unless ``stdout``/``stderr`` are given.
        """
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw["start_new_session"] = True  # a process group of its own: cleanup kills it whole
        log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed below
        try:
            kw.setdefault("stdout", log if log else subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.STDOUT if log else subprocess.DEVNULL)
            proc: subprocess.Popen[bytes] = subprocess.Popen(self.exec_argv(argv), **kw)
        finally:
            if log:
                log.close()  # the child holds its own copy
        self._registry.track(proc)
        return proc

    def sysctl(self, key: str, value: str) -> None:
        """Set a sysctl inside this namespace only (net.* is per namespace)."""
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def get_sysctl(self, key: str) -> str:
        return self.run(["sysctl", "-n", key]).stdout.strip()

    def _ip_json(self, *args: str) -> list[dict[str, Any]]:
        out = run_cmd(["ip", "-n", self.netns, "-j", *args]).stdout
        data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
        return data

    def links(self) -> list[str]:
        """Interface names in the namespace."""
        return [str(link["ifname"]) for link in self._ip_json("link", "show")]

    def link(self, ifname: str) -> dict[str, Any]:
        """``ip -j -d link show dev IFNAME`` as a dict (flags, operstate, address...)."""
        links = self._ip_json("-d", "link", "show", "dev", ifname)
        if not links:
            raise LabError(f"{self.netns}: no interface {ifname}")
        return links[0]

    def carrier(self, ifname: str) -> bool:
        """True when the interface reports LOWER_UP (carrier present)."""
        return "LOWER_UP" in self.link(ifname).get("flags", [])

    def addresses(self, ifname: str | None = None) -> list[str]:
        """Every address in the namespace (or on ``ifname``) as ``ip/prefix``."""
        args = ["addr", "show"] + (["dev", ifname] if ifname else [])
        return [
            f"{info['local']}/{info['prefixlen']}"
            for link in self._ip_json(*args)
            for info in link.get("addr_info", [])
        ]

    def pids(self) -> list[int]:
        """Every process whose network namespace is this one."""
        out = run_cmd(["ip", "netns", "pids", self.netns], check=False).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL whatever still runs in the namespace (also what left our groups)."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise LabError(f"{self.netns}: processes {pids} would not die")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def exists(self) -> bool:
        return Path("/run/netns", self.netns).exists()
