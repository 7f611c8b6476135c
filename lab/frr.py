"""FRR's vrrpd (Debian's package ``frr``: zebra + vrrpd) as a peer in the lab.

As FRR's documentation says: the operator creates, on every router (backups
too), a macvlan carrying the virtual MAC (00:00:5e:00:01:VRID, RFC 5798 7.3)
with the virtual addresses on it; vrrpd keeps it protodown while it is not
master.  Until it has done so, the host answers ARP for the virtual address
from its own MAC (Linux answers on any interface unless arp_ignore says
otherwise).  zebra and vrrpd run in the host's namespace with their files in
the lab's scratch folder.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .daemon import LoggedProcess
from .hosts import Host
from .netns import LabError, kill_group

ZEBRA = "/usr/lib/frr/zebra"
VRRPD = "/usr/lib/frr/vrrpd"
_counter = itertools.count(1)


def vrrpd_conf(vrid: int, priority: int, vips: Sequence[str], interval_ms: int = 100,
               interface: str = "eth0") -> str:
    lines = [f"interface {interface}", f" vrrp {vrid} version 3",
             f" vrrp {vrid} priority {priority}",
             f" vrrp {vrid} advertisement-interval {interval_ms}"]
    lines += [f" vrrp {vrid} {'ip' if '.' in v else 'ipv6'} {v.split('/')[0]}" for v in vips]
    return "\n".join([*lines, "!", ""])


class Frr(LoggedProcess):
    """zebra and vrrpd in a lab host; vrrpd's log is this object's log."""

    def __init__(self, host: Host, vrid: int, priority: int, vips: Sequence[str],
                 interval_ms: int = 100, start: bool = True) -> None:
        """The macvlan at once; zebra and vrrpd too unless ``start`` is False
        (then ``start()`` later: the window at boot before vrrpd runs)."""
        self.host = host
        self.dir = Path(host.site.tmpdir, f"{host.name}-frr-{next(_counter)}")
        self.dir.mkdir()
        self._macvlan(vrid, vips)
        (self.dir / "zebra.conf").write_text("!\n")
        (self.dir / "vrrpd.conf").write_text(vrrpd_conf(vrid, priority, vips, interval_ms))
        # The daemons drop privileges to FRR's own user, who must write here.
        for path in (self.dir, self.dir / "zebra.conf", self.dir / "vrrpd.conf"):
            shutil.chown(path, "frr", "frr")
        Path(host.site.tmpdir).chmod(0o711)
        self.log_path = str(self.dir / "vrrpd.log")
        if start:
            self.start()

    def start(self) -> None:
        host = self.host
        common = ["-P", "0", "--vty_socket", str(self.dir), "-z", str(self.dir / "zserv.api"),
                  "--log", "stdout"]
        self.zebra = host.popen([ZEBRA, "-f", str(self.dir / "zebra.conf"),
                                 "-i", str(self.dir / "zebra.pid"), *common],
                                log_path=str(self.dir / "zebra.log"))
        deadline = time.monotonic() + 10
        while not (self.dir / "zserv.api").exists():
            if time.monotonic() > deadline or self.zebra.poll() is not None:
                raise LabError("zebra did not come up:\n"
                               + (self.dir / "zebra.log").read_text(errors="replace"))
            time.sleep(0.05)
        self.proc = host.popen([VRRPD, "-f", str(self.dir / "vrrpd.conf"),
                                "-i", str(self.dir / "vrrpd.pid"), *common],
                               log_path=self.log_path)

    def _macvlan(self, vrid: int, vips: Sequence[str]) -> None:
        v6 = any(":" in v for v in vips)
        name, mac = (f"vrrp{6 if v6 else 4}-{vrid}",
                     f"00:00:5e:00:0{2 if v6 else 1}:{vrid:02x}")
        run = self.host.run
        run(["ip", "link", "add", name, "link", "eth0", "type", "macvlan", "mode", "bridge"])
        run(["ip", "link", "set", name, "address", mac, "addrgenmode", "random"])
        for vip in vips:
            run(["ip", "addr", "add", vip, "dev", name, "nodad"])
        run(["ip", "link", "set", name, "up"])

    def __repr__(self) -> str:
        pid = self.proc.pid if hasattr(self, "proc") else None
        return f"<Frr vrrpd pid={pid} on {self.host.name}>"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM vrrpd (it resigns with priority 0), then zebra."""
        for proc in (getattr(self, "proc", None), getattr(self, "zebra", None)):
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc, signal.SIGKILL)
                proc.wait(5.0)
