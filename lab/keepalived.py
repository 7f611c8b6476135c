"""keepalived (Debian's /usr/sbin/keepalived) as a peer in the lab.

Used by the interoperability tests and the benchmarks: write a small
keepalived.conf for one VRRP instance and run keepalived in the foreground
inside a lab host, with its own config, pid files and log in ``lab.tmpdir``,
so several keepalived processes in different namespaces never share a file.

keepalived forks a VRRP child even with ``-n``; the parent starts it in the
same process group, so the lab's cleanup (which kills whole groups and then
whatever is left in the namespace) ends both.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .daemon import LoggedProcess
from .netns import LabError, kill_group

if TYPE_CHECKING:
    from .hosts import Host

KEEPALIVED = "/usr/sbin/keepalived"

# "(VI_1) Entering MASTER STATE", also "Entering BACKUP STATE (init)".
_STATE = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>MASTER|BACKUP|FAULT) STATE")
_counter = itertools.count(1)


@dataclass(frozen=True)
class KeepalivedInstance:
    """One ``vrrp_instance`` block; the defaults suit the lab."""

    vrid: int
    priority: int
    vips: Sequence[str]  # "192.0.2.254/24", "2001:db8::254/64"
    version: int = 2
    advert_int: float = 1.0  # seconds; v2 whole seconds, v3 in 10 ms steps
    password: str | None = None  # VRRPv2 auth_type PASS
    preempt: bool = True
    interface: str = "eth0"
    name: str | None = None
    unicast_src: str | None = None  # unicast_src_ip
    unicast_peers: Sequence[str] = ()  # unicast_peer { ... }: adverts to these only

    @property
    def instance_name(self) -> str:
        return self.name or f"VI_{self.vrid}"

    @property
    def family(self) -> int:
        return ipaddress.ip_interface(self.vips[0]).version

    def render(self) -> str:
        v3 = self.version == 3 or self.family == 6
        if v3 and self.password is not None:
            # keepalived would only warn and ignore it: VRRPv3 has no authentication.
            raise ValueError("a password needs VRRPv2 (RFC 5798 removed authentication)")
        lines = [
            f"vrrp_instance {self.instance_name} {{",
            # keepalived only honours nopreempt with an initial BACKUP state, and
            # starting as MASTER skips the election we want to observe.
            "    state BACKUP",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.vrid}",
            f"    priority {self.priority}",
            f"    advert_int {self.advert_int:g}",
            # No announcement delays or repeats: they only slow the tests down.
            "    garp_master_delay 0",
        ]
        # IPv6 exists only in VRRPv3; keepalived would switch on its own, with a warning.
        lines.append(f"    version {3 if v3 else 2}")
        if not self.preempt:
            lines.append("    nopreempt")
        if self.password is not None:
            lines += [
                "    authentication {",
                "        auth_type PASS",
                f"        auth_pass {self.password}",
                "    }",
            ]
        if self.unicast_src is not None:
            lines.append(f"    unicast_src_ip {self.unicast_src}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {p}" for p in self.unicast_peers), "    }"]
        lines.append("    virtual_ipaddress {")
        lines += [f"        {vip}" for vip in self.vips]
        lines += ["    }", "}"]
        return "\n".join(lines) + "\n"


def keepalived_conf(*instances: KeepalivedInstance, router_id: str = "fvlab") -> str:
    """A whole keepalived.conf: global_defs plus the instances."""
    head = [
        "global_defs {",
        f"    router_id {router_id}",
        # Scripts are never used here; this silences the security warning.
        "    script_user root",
        "    vrrp_garp_master_delay 0",
        "    vrrp_garp_master_repeat 1",
        "}",
    ]
    return "\n".join(head) + "\n" + "".join(i.render() for i in instances)


class Keepalived(LoggedProcess):
    """A keepalived process in a lab host; the lab kills it at cleanup if still running."""

    def __init__(self, host: Host, conf_text: str) -> None:
        self.host = host
        base = Path(host.site.tmpdir, f"{host.name}-keepalived-{next(_counter)}")
        self.conf_path = str(base.with_suffix(".conf"))
        self.pid_path = str(base.with_suffix(".pid"))
        self.vrrp_pid_path = str(base) + "-vrrp.pid"
        self.log_path = str(base.with_suffix(".log"))
        Path(self.conf_path).write_text(conf_text)
        self.argv = [
            KEEPALIVED,
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "--use-file", self.conf_path,
            "--pid", self.pid_path,
            "--vrrp_pid", self.vrrp_pid_path,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] = host.popen(self.argv, log_path=self.log_path)

    def __repr__(self) -> str:
        return f"<Keepalived pid={self.proc.pid} on {self.host.name}>"

    def states(self, since: int = 0) -> list[str]:
        """Every state keepalived entered (MASTER/BACKUP/FAULT), in order."""
        return [m.group("state") for m in _STATE.finditer(self.log(), since)]

    def state(self) -> str | None:
        """The state keepalived entered last, or None before its first transition."""
        states = self.states()
        return states[-1] if states else None

    def wait_state(self, state: str, timeout: float = 10.0, since: int = 0) -> None:
        self.wait_log(rf"\) Entering {state} STATE", timeout, since)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (a master resigns with priority 0) and wait; returns the exit code."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(5.0)
            raise LabError(f"{self!r} still running {timeout} s after SIGTERM") from None


def start_keepalived(host: Host, *instances: KeepalivedInstance) -> Keepalived:
    """Run keepalived with ``instances`` in ``host``."""
    return Keepalived(host, keepalived_conf(*instances, router_id=f"fv-{host.name}"))


__all__ = ["KEEPALIVED", "Keepalived", "KeepalivedInstance", "keepalived_conf", "start_keepalived"]
