#!/usr/bin/env python3
"""Regenerate the VRRP advert captures in this directory from real peers.

Run as root:  python3 tests/data/captures/capture_peers.py [--only NAME ...]

Builds a throw-away namespace lab (names ``fv`` + random hex), one bridge
namespace and one namespace per peer, joined by veth pairs:

    fv<id>k (keepalived, eth0 192.0.2.11/24 2001:db8::11/64) --k0-+
                                                                  br0  in fv<id>b
    fv<id>f (FRR zebra+vrrpd, eth0 192.0.2.12/24 2001:db8::12/64) --f0-+

For each scenario it starts the peer with a per-run config in a temp dir,
records its adverts with ``tcpdump -w`` on the bridge port facing that peer,
stops the peer (masters send a priority-0 advert on shutdown, RFC 5798 6.4.3),
and writes ``<name>.pcap`` plus README.md describing versions and configs.
Everything (processes, namespaces, temp dir) is removed in ``finally``.
Addresses come only from 192.0.2.0/24, 2001:db8::/64 and fe80::/64.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEEPALIVED = "/usr/sbin/keepalived"
ZEBRA = "/usr/lib/frr/zebra"
VRRPD = "/usr/lib/frr/vrrpd"
# Fixed, locally administered MACs make the peers' EUI-64 link-local sources
# (fe80::ff:fe00:11 and fe80::ff:fe00:12) the same on every run.
PEERS = {
    "keepalived": ("k", "02:00:00:00:00:11", "192.0.2.11/24", "2001:db8::11/64"),
    "frr": ("f", "02:00:00:00:00:12", "192.0.2.12/24", "2001:db8::12/64"),
}
ADVERTS_WANTED = 4  # adverts to record before the peer is stopped


@dataclass(frozen=True)
class Scenario:
    name: str
    peer: str  # "keepalived" or "frr"
    family: int
    config: str  # the peer's configuration file, verbatim


def keepalived_conf(
    version: int, vrid: int, prio: int, advert_int: str, vips: list[str], auth: str = ""
) -> str:
    lines = "\n".join(f"        {v}" for v in vips)
    return (
        "global_defs {\n"
        "    router_id fvcapture\n"
        f"    vrrp_version {version}\n"
        "}\n"
        f"vrrp_instance VI_{vrid} {{\n"
        "    state BACKUP\n"
        "    interface eth0\n"
        f"    virtual_router_id {vrid}\n"
        f"    priority {prio}\n"
        f"    advert_int {advert_int}\n"
        f"{auth}"
        "    virtual_ipaddress {\n"
        f"{lines}\n"
        "    }\n"
        "}\n"
    )


FRR_VRRPD_CONF = """\
interface eth0
 vrrp 57 version 3
 vrrp 57 priority 180
 vrrp 57 advertisement-interval 300
 vrrp 57 ip 192.0.2.57
 vrrp 57 ip 192.0.2.58
 vrrp 57 ipv6 2001:db8::57
!
"""

SCENARIOS = [
    Scenario(
        "keepalived_v2",
        "keepalived",
        4,
        keepalived_conf(2, 51, 150, "1", ["192.0.2.51/24", "192.0.2.52/24"]),
    ),
    Scenario(
        "keepalived_v2_password",
        "keepalived",
        4,
        keepalived_conf(
            2,
            52,
            120,
            "2",
            ["192.0.2.53/24"],
            "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n",
        ),
    ),
    Scenario(
        "keepalived_v3_ipv4",
        "keepalived",
        4,
        keepalived_conf(3, 53, 200, "0.5", ["192.0.2.54/24", "192.0.2.55/24", "192.0.2.56/24"]),
    ),
    Scenario(
        "keepalived_v3_ipv6",
        "keepalived",
        6,
        keepalived_conf(3, 54, 100, "0.25", ["fe80::54/64", "2001:db8::54/64"]),
    ),
    Scenario("frr_v3_ipv4", "frr", 4, FRR_VRRPD_CONF),
    Scenario("frr_v3_ipv6", "frr", 6, FRR_VRRPD_CONF),
]


def run(*args: str, netns: str | None = None) -> str:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done.stdout


def pcap_records(path: Path) -> int:
    """Number of complete records in a (possibly still growing) pcap file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if len(data) < 24:
        return 0
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offset, count = 24, 0
    while offset + 16 <= len(data):
        (incl,) = struct.unpack_from(endian + "I", data, offset + 8)
        if offset + 16 + incl > len(data):
            break
        offset += 16 + incl
        count += 1
    return count


class Lab:
    """The namespaces, veths and bridge; tracks every process it starts."""

    def __init__(self, workdir: Path) -> None:
        self.id = secrets.token_hex(3)
        self.bridge_ns = f"fv{self.id}b"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workdir = workdir

    def ns(self, peer: str) -> str:
        return f"fv{self.id}{PEERS[peer][0]}"

    def build(self) -> None:
        self._add_ns(self.bridge_ns)
        run("ip", "link", "add", "br0", "type", "bridge", netns=self.bridge_ns)
        run("ip", "link", "set", "br0", "up", netns=self.bridge_ns)
        for peer, (letter, mac, v4, v6) in PEERS.items():
            ns = self.ns(peer)
            self._add_ns(ns)
            # No DAD inside the lab so link-local sources exist at once (RFC 4862 5.4
            # allows DupAddrDetectTransmits = 0).
            for key in ("default", "all"):
                run("sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0", netns=ns)
            port = f"{letter}0"
            run(
                "ip", "link", "add", port, "netns", self.bridge_ns, "type", "veth",
                "peer", "name", "eth0", "netns", ns, "address", mac,
            )  # fmt: skip
            run("ip", "link", "set", port, "master", "br0", "up", netns=self.bridge_ns)
            run("ip", "addr", "add", v4, "dev", "eth0", netns=ns)
            run("ip", "addr", "add", v6, "dev", "eth0", "nodad", netns=ns)
            run("ip", "link", "set", "lo", "up", netns=ns)
            run("ip", "link", "set", "eth0", "up", netns=ns)

    def _add_ns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)

    def start(self, ns: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args], stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        for ns in self.namespaces:
            # Children that outlived their parent (e.g. keepalived's VRRP process).
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], check=False)


def start_keepalived(lab: Lab, sc: Scenario, tmp: Path) -> list[subprocess.Popen[bytes]]:
    conf = tmp / "keepalived.conf"
    conf.write_text(sc.config)
    args = [
        KEEPALIVED, "-n", "-l", "-D", "-G", "-P", "-f", str(conf),
        "-p", str(tmp / "keepalived.pid"), "-r", str(tmp / "vrrp.pid"),
    ]  # fmt: skip
    return [lab.start(lab.ns("keepalived"), args, tmp / "keepalived.log")]


def start_frr(lab: Lab, sc: Scenario, tmp: Path) -> list[subprocess.Popen[bytes]]:
    ns = lab.ns("frr")
    # vrrpd needs a macvlan carrying each virtual MAC (00:00:5e:00:01:VRID for
    # IPv4, 00:00:5e:00:02:VRID for IPv6, RFC 5798 7.3) with the virtual addresses.
    for name, mac, addrs in (
        ("vrrp4", "00:00:5e:00:01:39", ["192.0.2.57/24", "192.0.2.58/24"]),
        ("vrrp6", "00:00:5e:00:02:39", ["2001:db8::57/64"]),
    ):
        if name in run("ip", "-o", "link", "show", netns=ns):
            continue
        # FRR's docs add "addrgenmode random" so that two routers' macvlans get
        # different link-locals; with one router the EUI-64 default is fine and
        # keeps the capture reproducible.
        run("ip", "link", "add", name, "link", "eth0", "type", "macvlan", "mode", "bridge",
            netns=ns)  # fmt: skip
        run("ip", "link", "set", name, "address", mac, netns=ns)
        for addr in addrs:
            run("ip", "addr", "add", addr, "dev", name, "nodad", netns=ns)
        run("ip", "link", "set", name, "up", netns=ns)
    (tmp / "zebra.conf").write_text("!\n")
    (tmp / "vrrpd.conf").write_text(sc.config)
    # The daemons drop privileges to FRR's own user (frr, vty group frrvty), so
    # that user must be able to write its pid files and sockets here.
    shutil.chown(tmp, "frr", "frr")
    tmp.parent.chmod(0o711)
    for conf in ("zebra.conf", "vrrpd.conf"):
        shutil.chown(tmp / conf, "frr", "frr")
    common = ["-P", "0", "--vty_socket", str(tmp)]
    zserv = str(tmp / "zserv.api")
    zebra = lab.start(
        ns,
        [ZEBRA, "-f", str(tmp / "zebra.conf"), "-i", str(tmp / "zebra.pid"), "-z", zserv,
         "--log", "stdout", *common],
        tmp / "zebra.log",
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not Path(zserv).exists():
        if time.monotonic() > deadline or zebra.poll() is not None:
            raise RuntimeError(f"zebra did not come up:\n{(tmp / 'zebra.log').read_text()}")
        time.sleep(0.1)
    vrrpd = lab.start(
        ns,
        [VRRPD, "-f", str(tmp / "vrrpd.conf"), "-i", str(tmp / "vrrpd.pid"), "-z", zserv,
         "--log", "stdout", *common],
        tmp / "vrrpd.log",
    )  # fmt: skip
    return [vrrpd, zebra]  # stop order: vrrpd first so it can send its priority-0 advert


def capture(lab: Lab, sc: Scenario, workdir: Path) -> Path:
    tmp = workdir / sc.name
    tmp.mkdir()
    pcap = tmp / f"{sc.name}.pcap"
    port = f"{PEERS[sc.peer][0]}0"
    proto = "ip proto 112" if sc.family == 4 else "ip6 proto 112"
    dump = lab.start(
        lab.bridge_ns,
        ["tcpdump", "-i", port, "-U", "-s", "0", "-Z", "root", "-w", str(pcap), proto],
        tmp / "tcpdump.log",
    )
    time.sleep(1.0)  # tcpdump attaches its filter asynchronously
    peers = (start_keepalived if sc.peer == "keepalived" else start_frr)(lab, sc, tmp)
    deadline = time.monotonic() + 30
    while pcap_records(pcap) < ADVERTS_WANTED:
        if time.monotonic() > deadline or any(p.poll() is not None for p in peers):
            logs = "\n".join(f.read_text() for f in sorted(tmp.glob("*.log")))
            raise RuntimeError(f"{sc.name}: no adverts captured\n{logs}")
        time.sleep(0.2)
    for proc in peers:
        lab.stop(proc)
    time.sleep(1.0)  # let the shutdown advert reach the capture
    lab.stop(dump, signal.SIGINT)
    return pcap


def peer_versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return (out.stdout + out.stderr).splitlines()[0].strip()

    return {
        "keepalived": first_line([KEEPALIVED, "--version"]),
        "frr": first_line([VRRPD, "--version"]),
    }


def write_readme(results: list[Scenario], versions: dict[str, str]) -> None:
    parts = [
        "# VRRP adverts captured from real peers\n\n",
        "Produced by `capture_peers.py` in this directory (run as root; it builds a\n",
        "namespace lab, starts each peer, records with `tcpdump -w` on the bridge port\n",
        "facing the peer, stops the peer and cleans up). Decoded by\n",
        "`tests/unit/test_packet.py`, which also checks that our encoder reproduces every\n",
        "captured VRRP message byte for byte. The last advert in each file is usually the\n",
        "peer's priority-0 advert sent on shutdown.\n\n",
        "Lab: peer `eth0` has MAC 02:00:00:00:00:11 (keepalived) or 02:00:00:00:00:12\n",
        "(FRR), addresses 192.0.2.11/24 + 2001:db8::11/64 (keepalived) or\n",
        "192.0.2.12/24 + 2001:db8::12/64 (FRR), EUI-64 link-local; FRR additionally has\n",
        "macvlans `vrrp4` (00:00:5e:00:01:39) and `vrrp6` (00:00:5e:00:02:39).\n\n",
        "Neither installed peer has a switch for a VRRPv3/IPv4 checksum without the\n",
        "pseudo-header (keepalived 2.2.7 only has `old_unicast_checksum`, for unicast;\n",
        "FRR 8.4 has none), so no such capture exists; the unit tests cover that mode.\n\n",
    ]
    for sc in results:
        tool = "keepalived (`keepalived -n -l -D -G -P -f CONF -p PID -r VRRPPID`)"
        if sc.peer == "frr":
            tool = "FRR zebra + vrrpd (`vrrpd -f vrrpd.conf -z zserv.api -P 0 --vty_socket DIR`)"
        parts.append(
            f"## {sc.name}.pcap\n\n{tool}, `{versions[sc.peer]}`, "
            f"capture filter `{'ip' if sc.family == 4 else 'ip6'} proto 112`.\n\n"
            f"```\n{sc.config}```\n\n"
        )
    (HERE / "README.md").write_text("".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario names to regenerate")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    wanted = [s for s in SCENARIOS if not opts.only or s.name in opts.only]
    workdir = Path(tempfile.mkdtemp(prefix="fvcapture-"))
    lab = Lab(workdir)
    try:
        lab.build()
        for sc in wanted:
            pcap = capture(lab, sc, workdir)
            shutil.copyfile(pcap, HERE / pcap.name)
            print(f"{sc.name}: {pcap_records(pcap)} adverts -> {HERE / pcap.name}")
    finally:
        lab.teardown()
        shutil.rmtree(workdir, ignore_errors=True)
    write_readme(SCENARIOS, peer_versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
