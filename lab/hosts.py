"""The lab's nodes: a switch (a bridge) and hosts plugged into it.

Each lives in a network namespace of its own. A host's ``eth0`` is one end of
a veth pair whose other end is a port of the switch's bridge; cutting or
isolating a host acts on that port, inside the switch's namespace.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .daemon import Daemon
from .netns import LabError, Namespace, Site, check_address, run_cmd


class Switch(Namespace):
    """A bridge ("br0") in its own namespace: STP off, no forward delay, no snooping."""

    bridge = "br0"

    def __init__(self, site: Site, name: str, netns: str) -> None:
        super().__init__(name, netns, site.procs)
        self.site = site
        self.hosts: list[Host] = []

    # What a cloud or VM network does to VRRP's groups (RFC 5798 5.1.1.2 / 5.1.2.2):
    # an nftables rule of the bridge family that drops them, with a counter.
    NO_VRRP_MULTICAST = """
table bridge fvnomcast {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip daddr 224.0.0.18 counter drop
    ip6 daddr ff02::12 counter drop
  }
}
"""

    def drop_vrrp_multicast(self) -> None:
        """From now on the switch forwards no frame to 224.0.0.18 or ff02::12."""
        self.run(["nft", "-f", "-"], input=self.NO_VRRP_MULTICAST)

    def vrrp_multicast_dropped(self) -> int:
        """Frames to the VRRP groups dropped since ``drop_vrrp_multicast``."""
        out = self.run(["nft", "list", "table", "bridge", "fvnomcast"]).stdout
        return sum(int(part.split()[1]) for part in out.split("counter")[1:])


class Host(Namespace):
    """A namespace with one ``eth0`` plugged into a switch."""

    ifname = "eth0"

    def __init__(
        self,
        site: Site,
        name: str,
        netns: str,
        switch: Switch,
        port: str,
        mac: str,
        ipv4: ipaddress.IPv4Interface | None,
        ipv6: ipaddress.IPv6Interface | None,
    ) -> None:
        super().__init__(name, netns, site.procs)
        self.site = site
        self.switch = switch
        self.port = port  # the veth end on the bridge, in the switch's namespace
        self.mac = mac
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self._daemons = itertools.count(1)

    # -- the wire --------------------------------------------------------------

    def cut(self, wait: float = 5.0) -> None:
        """Unplug the cable: the bridge port goes down, so eth0 loses carrier.

        Waits (up to ``wait`` s) until eth0 reports the lost carrier.
        """
        run_cmd(["ip", "-n", self.switch.netns, "link", "set", self.port, "down"])
        self._wait_for(lambda: not self.carrier(self.ifname), wait, "eth0 to lose carrier")

    def isolate(self) -> None:
        """A silent partition: the bridge drops this port's frames, carrier stays.

        A bridge port in the "disabled" STP state neither forwards nor learns;
        with STP off the kernel lets us set that state by hand.
        """
        self._port_state("0")

    def reconnect(self, wait: float = 5.0) -> None:
        """Undo cut() and isolate(); returns once the port forwards again.

        Carrier changes reach the bridge through the kernel's link watcher,
        which may take up to a second, so this waits for the port to be up
        and forwarding rather than trusting the command alone. If eth0 itself
        is down (set down inside the host) this raises after ``wait`` s.
        """
        run_cmd(["ip", "-n", self.switch.netns, "link", "set", self.port, "up"])

        def forwarding() -> bool:
            info = self.switch.link(self.port)
            if info.get("operstate") != "UP" or not self.carrier(self.ifname):
                return False
            if self._bridge_port().get("state") != "forwarding":
                self._port_state("3", check=False)
                return False
            return True

        self._wait_for(forwarding, wait, f"bridge port {self.port} to forward")

    def _port_state(self, state: str, check: bool = True) -> None:
        argv = ["bridge", "-n", self.switch.netns, "link", "set", "dev", self.port, "state", state]
        run_cmd(argv, check=check)

    def _bridge_port(self) -> dict[str, Any]:
        out = run_cmd(["bridge", "-n", self.switch.netns, "-j", "link", "show", "dev", self.port])
        ports: list[dict[str, Any]] = json.loads(out.stdout or "[]")
        return ports[0] if ports else {}

    def _wait_for(self, ready: Callable[[], bool], wait: float, what: str) -> None:
        deadline = time.monotonic() + wait
        while not ready():
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: timed out waiting for {what}")
            time.sleep(0.01)

    link_down = cut
    link_up = reconnect

    def unplug(self) -> None:
        """Delete eth0 (and with it the switch's end of the cable)."""
        run_cmd(["ip", "-n", self.netns, "link", "del", self.ifname])

    def plug(self, addresses: bool = True) -> None:
        """Create eth0 again after ``unplug``: same name, MAC and (unless told
        otherwise) addresses, but a new interface index, as when a NIC or a VM's
        interface is re-created."""
        veth = (f"add {self.port} type veth peer name {self.ifname} address {self.mac} "
                f"netns {self.netns}")
        run_cmd(["ip", "-n", self.switch.netns, "link", *veth.split()])
        run_cmd(["ip", "-n", self.switch.netns, "link", "set", self.port, "master",
                 self.switch.bridge, "up"])
        if addresses and self.ipv4 is not None:
            run_cmd(["ip", "-n", self.netns, "addr", "add", str(self.ipv4), "dev", self.ifname])
        if addresses and self.ipv6 is not None:
            run_cmd(["ip", "-n", self.netns, "addr", "add", str(self.ipv6), "dev", self.ifname,
                     "nodad"])
        run_cmd(["ip", "-n", self.netns, "link", "set", self.ifname, "up"])

    # -- looking around --------------------------------------------------------

    def ping(self, target: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True when at least one of ``count`` echo requests got a reply."""
        check_address(target, link_scope=True)
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", f"{timeout:g}", target]
        return self.run(argv, check=False, timeout=count * 0.2 + timeout + 10).returncode == 0

    def neigh(self, ip: str) -> str | None:
        """The MAC (lower case) this host's neighbour table holds for ``ip``."""
        entries = self._ip_json("neigh", "show", "to", ip)
        for entry in entries:
            state = entry.get("state", [])
            if "lladdr" in entry and "FAILED" not in state and "INCOMPLETE" not in state:
                return str(entry["lladdr"]).lower()
        return None

    def flush_neigh(self) -> None:
        run_cmd(["ip", "-n", self.netns, "neigh", "flush", "dev", self.ifname])

    def link_local(self) -> str | None:
        """eth0's IPv6 link-local address, without prefix length."""
        for addr in self.addresses(self.ifname):
            ip = addr.split("/", 1)[0]
            if ipaddress.ip_address(ip).is_link_local:
                return ip
        return None

    # -- processes -------------------------------------------------------------

    def start_daemon(
        self,
        conf_text: str,
        extra_args: Sequence[str] = (),
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Daemon:
        """Write ``conf_text`` and run freevrrpd in the foreground in this host.

        The command line is ``[*site.daemon_command, "-F", "-d", "-f", CONF, "-p",
        PIDFILE, "-s", SOCKET, *extra_args]``. ``argv`` replaces it; in it the exact
        tokens ``{conf}``, ``{pidfile}``, ``{log}``, ``{socket}`` and ``{tmpdir}``
        become those paths.
        """
        base = Path(self.site.tmpdir, f"{self.name}-freevrrpd-{next(self._daemons)}")
        conf, pid, log, sock = (str(base.with_suffix(s))
                                for s in (".conf", ".pid", ".log", ".sock"))
        Path(conf).write_text(conf_text)
        if argv is None:
            cmd = [*self.site.daemon_command, "-F", "-d", "-f", conf, "-p", pid, "-s", sock,
                   *extra_args]
        else:
            tokens = {"{conf}": conf, "{pidfile}": pid, "{log}": log, "{tmpdir}": self.site.tmpdir,
                      "{socket}": sock}
            cmd = [tokens.get(arg, arg) for arg in argv]
        full_env = dict(os.environ)
        # `python -m freevrrpd` must find this very tree, installed or not.
        tree = str(Path(__file__).resolve().parents[1])
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (tree, full_env.get("PYTHONPATH", "")) if p
        )
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        proc = self.popen(cmd, log_path=log, env=full_env)
        return Daemon(self, proc, cmd, conf, pid, log, sock)
