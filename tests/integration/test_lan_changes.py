"""A LAN that changes under a running daemon, and start-up races (real daemons, netns).

Addresses that appear after the start or go away while running, interfaces
deleted and created again, adverts of another VLAN on the same wire: the
daemon follows netlink events, goes through FAULT while it cannot work, and
never ends with two masters.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    VIP,
    WAIT,
    build_lan,
    has_ip,
    never,
    state_re,
    wait_until,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]
TREE = str(Path(__file__).resolve().parents[2])


def masters(lan_hosts: list, ip: str = VIP) -> list[str]:  # type: ignore[type-arg]
    return [h.name for h in lan_hosts if has_ip(h, ip)]


# ---- start-up races -----------------------------------------------------------------


def test_an_ipv4_address_added_after_the_start_makes_the_router_eligible(lab: Lab) -> None:
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, None, "2001:db8::1/64")
    d = r1.start_daemon(vrid(1, 200))
    d.wait_log(state_re(1, "FAULT") + r"no IPv4 address on eth0", WAIT)
    mark = d.mark()
    r1.run(["ip", "addr", "add", f"{R1}/24", "dev", "eth0"])
    d.wait_log(state_re(1, "MASTER"), WAIT, mark)
    wait_until(lambda: has_ip(r1, VIP), "r1 to install the VIP")


def test_a_tentative_link_local_address_is_waited_for(lab: Lab) -> None:
    """The IPv6 source address (RFC 5798 5.1.2.1) is still tentative at start:
    the router waits in FAULT and joins as soon as DAD is over."""
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, f"{R1}/24", "2001:db8::1/64", dad=True)
    r1.sysctl("net.ipv6.conf.eth0.dad_transmits", "3")  # about 3 s of DAD
    r1.run(["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "link"])
    r1.run(["ip", "addr", "add", "fe80::1/64", "dev", "eth0"])  # tentative now
    d = r1.start_daemon(vrid(1, 200, addr="2001:db8::254/64"))
    d.wait_log(state_re(1, "FAULT", family=6) + r"no IPv6 link-local address on eth0", WAIT)
    d.wait_log(state_re(1, "MASTER", family=6), 15.0)
    assert "tentative" not in r1.run(["ip", "-6", "addr", "show", "dev", "eth0",
                                      "scope", "link"]).stdout


def test_the_own_address_removed_and_added_again_while_running(lab: Lab) -> None:
    """Without a source address a master resigns (FAULT); the backup takes over;
    with the address back, the higher-priority router preempts again."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200))
    d2 = net.r2.start_daemon(vrid(1, 100))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    mark1, mark2 = d1.mark(), d2.mark()
    net.r1.run(["ip", "addr", "del", f"{R1}/24", "dev", "eth0"])
    d1.wait_log(state_re(1, "FAULT", old="MASTER") + r"no IPv4 address on eth0", WAIT, mark1)
    d2.wait_log(state_re(1, "MASTER"), WAIT, mark2)
    wait_until(lambda: masters([net.r1, net.r2]) == ["r2"], "only r2 to hold the VIP")
    mark1 = d1.mark()
    net.r1.run(["ip", "addr", "add", f"{R1}/24", "dev", "eth0"])
    d1.wait_log(state_re(1, "MASTER"), WAIT, mark1)
    wait_until(lambda: masters([net.r1, net.r2]) == ["r1"], "only r1 to hold the VIP")


def test_another_address_left_becomes_the_primary(lab: Lab) -> None:
    net = build_lan(lab)
    net.r1.run(["ip", "addr", "add", "198.51.100.1/24", "dev", "eth0"])
    d1 = net.r1.start_daemon(vrid(1, 200))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    mark = d1.mark()
    net.r1.run(["ip", "addr", "del", f"{R1}/24", "dev", "eth0"])
    d1.wait_log(r"primary address 192\.0\.2\.1 -> 198\.51\.100\.1", WAIT, mark)
    never(lambda: bool(re.search(state_re(1, r"\S+"), d1.log()[mark:])),
          "r1 changed state over its new primary address", 1.0)
    status = d1.ctl("status", "--json").stdout
    assert '"primary_address": "198.51.100.1"' in status


# ---- interfaces deleted and created again -------------------------------------------


@pytest.mark.parametrize(("who", "monitored"), [("backup", True), ("master", True),
                                                 ("backup", False), ("master", False)])
def test_an_interface_created_again_is_used_again(lab: Lab, who: str, monitored: bool) -> None:
    """eth0 deleted and created with a new index: the router goes to FAULT while it
    is gone, opens its sockets on the new interface, and afterwards there is one
    master again (no split brain: the backup hears the master)."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200, monitoredcircuits=monitored))
    d2 = net.r2.start_daemon(vrid(1, 100, monitoredcircuits=monitored))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    host, d = (net.r2, d2) if who == "backup" else (net.r1, d1)
    mark = d.mark()
    host.unplug()
    d.wait_log(r"interface eth0 disappeared", WAIT, mark)
    # A monitored circuit sees the link go down first; otherwise the addresses go
    # (the kernel removes them with the link), or the link itself.
    why = ("link eth0 down" if monitored else
           "(interface eth0 does not exist|no IPv4 address on eth0)")
    d.wait_log(state_re(1, "FAULT") + why, WAIT, mark)
    host.plug()
    d.wait_log(r"eth0 is back \(index \d+\)", WAIT, mark)
    d.wait_log(state_re(1, "BACKUP", old="INIT"), WAIT, mark)
    if who == "master":
        d1.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, mark)
    wait_until(lambda: masters([net.r1, net.r2]) == ["r1"], "r1 alone to hold the VIP")
    # And it stays that way: the backup hears the master's adverts.
    never(lambda: masters([net.r1, net.r2]) != ["r1"], "two masters or none", 2.0)
    assert net.c.ping(VIP)


# ---- another VLAN on the same wire --------------------------------------------------

TAGGED_SENDER = """
import sys, time
from ipaddress import ip_address
from freevrrpd.core.packet import Advert, encode
from freevrrpd.core.settings import VRRP_GROUP_V4, VRRP_GROUP_V6
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket
from freevrrpd.net.frames import vrrp_frame
version, family, interval, vip, src = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                       ip_address(sys.argv[4]), ip_address(sys.argv[5]))
group = VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6
advert = Advert(version, 1, 254, round(interval * 100), (vip,),
                *((0, bytes(8)) if version == 2 else ()))
frame = vrrp_frame(bytes.fromhex("020000000099"), src, group, encode(advert, src, group))
with PacketSocket("eth0", ETH_P_ALL) as sock:
    while True:
        for tag in (5, 100, 4094):  # 802.1Q: TPID 0x8100, then the VLAN id
            sock.send(frame[:12] + b"\\x81\\x00" + tag.to_bytes(2, "big") + frame[12:])
        time.sleep(interval)
"""


@pytest.mark.parametrize(("version", "family"), [(2, 4), (3, 4), (3, 6)])
def test_adverts_tagged_for_another_vlan_are_not_from_this_lan(lab: Lab, version: int,
                                                              family: int) -> None:
    """A priority-254 advert of our VRID inside an 802.1Q frame (VLAN 5, 100, 4094)
    must not make the master of the untagged LAN step down; it is counted."""
    net = build_lan(lab)
    vip = VIP if family == 4 else "2001:db8::254"
    addr = f"{vip}/24" if family == 4 else f"{vip}/64"
    src = "192.0.2.99" if family == 4 else "fe80::99"
    interval = 1.0 if version == 2 else 0.05
    d1 = net.r1.start_daemon(vrid(1, 200, addr=addr, version=version, advertint=interval))
    d1.wait_log(state_re(1, "MASTER", family=family), WAIT)
    mark = d1.mark()
    net.r2.popen([sys.executable, "-c", TAGGED_SENDER, str(version), str(family),
                  str(interval), vip, src], log_path=f"{lab.tmpdir}/tagged.log",
                 env={**os.environ, "PYTHONPATH": TREE})
    never(lambda: bool(re.search(state_re(1, "BACKUP", family=family), d1.log()[mark:])),
          "r1 stepped down for a tagged advert", 4.0)
    status = d1.ctl("status", "--json").stdout
    assert re.search(r'"vlan": [1-9]', status), status
    assert has_ip(net.r1, vip)


# ---- many addresses -----------------------------------------------------------------


def test_twenty_addresses_are_probed_in_one_window(lab: Lab) -> None:
    """RFC 5227 probes for every address at once: a router with 20 virtual addresses
    becomes master as soon as one with a single address would (it took 22.5 s when
    the addresses were probed one after the other)."""
    net = build_lan(lab)
    vips = ", ".join(f"192.0.2.{200 + n}/24" for n in range(20))
    d = net.r1.start_daemon(vrid(1, 200, addr=vips, advertint=0.1))
    backup = d.wait_log(state_re(1, "BACKUP"), WAIT)
    master = d.wait_log(state_re(1, "MASTER"), WAIT)
    probes = re.findall(r"probing (\S+(?:, \S+)*) for 1\.0 s", d.log()[:master.start()])
    assert len(probes) == 1 and len(probes[0].split(", ")) == 20, probes
    stamp = re.compile(r"^\S+ (\d\d:\d\d:\d\d,\d{3})", re.M)

    def seconds(pos: int) -> float:
        h, m, rest = stamp.findall(d.log()[:pos])[-1].split(":")
        return int(h) * 3600 + int(m) * 60 + float(rest.replace(",", "."))

    took = seconds(master.end()) - seconds(backup.end())
    print(f"20 addresses: backup to master in {took:.2f} s")
    assert took < 3.0  # settle 0.15 s + one 1 s probe + Skew_Time; 20 probes in a row: 20 s
    wait_until(lambda: all(has_ip(net.r1, f"192.0.2.{200 + n}") for n in range(20)),
               "all 20 addresses")


# ---- an interface that does not exist yet (dynamicinterfaces) ------------------------


def test_with_dynamicinterfaces_a_router_waits_for_its_interface(lab: Lab) -> None:
    """keepalived's dynamic_interfaces: the file is accepted, the router waits in
    FAULT and joins when the interface appears (the same path as an interface
    created again); without the switch the file is refused, at start and reload."""
    net = build_lan(lab)
    net.r1.unplug()
    refused = net.r1.start_daemon(vrid(1, 100))
    assert refused.proc.wait(30) != 0
    assert "interface eth0 does not exist" in refused.log()
    d = net.r1.start_daemon(vrid(1, 100, dynamicinterfaces=True))
    d.wait_log(state_re(1, "FAULT", old="INIT") + r".*interface eth0 does not exist", WAIT)
    # Reload keeps it waiting; a second router on a missing interface is refused
    # without the switch and taken with it.
    text = vrid(1, 100, dynamicinterfaces=True)
    Path(d.conf_path).write_text(text + vrid(2, 100, addr="192.0.2.253/24", interface="eth7"))
    assert d.ctl("reload", check=False).returncode != 0
    Path(d.conf_path).write_text(text + vrid(2, 100, addr="192.0.2.253/24", interface="eth7",
                                             dynamicinterfaces=True))
    assert d.ctl("reload").returncode == 0
    d.wait_log(r"VRID 2 on eth7 \(IPv4\): INIT -> FAULT: .*interface eth7 does not exist", WAIT)
    mark = d.mark()
    net.r1.plug()
    d.wait_log(state_re(1, "MASTER"), WAIT, mark)
    assert net.c.ping(VIP)
    assert d.log()[mark:].count("-> FAULT") == 0
    assert d.stop() == 0
