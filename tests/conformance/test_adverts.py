"""What freevrrpd puts on the wire, judged by Wireshark's dissectors (tshark).

One lab run serves every test of this module: two freevrrpd routers on one
switch, each configured with the same ten virtual routers covering VRRPv2
(with and without a password), VRRPv3 over IPv4 (checksum with and without
the pseudo-header) and VRRPv3 over IPv6, each with useVMAC yes and no. r1
(priority 200) becomes master of all ten; r2 (priority 100) starts as backup;
r1 is stopped (it resigns with priority 0) and r2 takes over. tcpdump on the
switch records everything; the tests then check every advert, gratuitous ARP
and unsolicited neighbour advertisement against RFC 5798 / RFC 3768.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lab import Host, Lab
from lab.daemon import Daemon
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.tshark import CHECKSUM_BAD, CHECKSUM_GOOD, Packet, dissect

pytestmark = [pytest.mark.netns, needs_root]

GARP_COUNT = 3  # announcements per address per burst, set in every [VRID] below
R1_PRIORITY, R2_PRIORITY = 200, 100
WAIT = 20.0  # generous: a busy 2-core machine must not fail a positive check


@dataclass(frozen=True)
class Case:
    id: str
    vrid: int
    version: int
    vips: tuple[str, ...]
    interval: float  # seconds
    use_vmac: bool
    password: str | None = None
    pseudo_header: bool = True

    @property
    def family(self) -> int:
        return ipaddress.ip_interface(self.vips[0]).version

    @property
    def ips(self) -> list[str]:
        return [str(ipaddress.ip_interface(v).ip) for v in self.vips]

    @property
    def vmac(self) -> str:
        """RFC 5798 7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6)."""
        return f"00:00:5e:00:0{1 if self.family == 4 else 2}:{self.vrid:02x}"

    @property
    def log_name(self) -> str:
        return f"VRID {self.vrid} on eth0 (IPv{self.family})"

    def conf(self, priority: int) -> str:
        extra: dict[str, Any] = {
            "useVMAC": self.use_vmac,
            "garpcount": GARP_COUNT,
            "garprepeatdelay": 0,  # one burst per transition: countable
        }
        if self.password is not None:
            extra["password"] = self.password
        if not self.pseudo_header:
            extra["checksumpseudoheader"] = False
        return vrid(serverid=self.vrid, priority=priority, addr=", ".join(self.vips),
                    version=self.version, advertint=self.interval, **extra)


CASES = [
    Case("v2", 21, 2, ("192.0.2.21/24",), 1, use_vmac=True),
    Case("v2-novmac", 22, 2, ("192.0.2.22/24", "192.0.2.122/24"), 1, use_vmac=False),
    Case("v2-password", 23, 2, ("192.0.2.23/24",), 1, use_vmac=True, password="s3cret"),
    # Eight octets, the longest RFC 2338 simple-text password.
    Case("v2-password-novmac", 24, 2, ("192.0.2.24/24",), 1, use_vmac=False,
         password="8octets!"),
    Case("v3-ipv4", 31, 3, ("192.0.2.31/24", "192.0.2.131/24"), 0.1, use_vmac=True),
    Case("v3-ipv4-novmac", 32, 3, ("192.0.2.32/24",), 0.25, use_vmac=False),
    Case("v3-ipv4-nopseudo", 33, 3, ("192.0.2.33/24",), 0.1, use_vmac=True,
         pseudo_header=False),
    Case("v3-ipv4-nopseudo-novmac", 34, 3, ("192.0.2.34/24",), 0.5, use_vmac=False,
         pseudo_header=False),
    Case("v3-ipv6", 61, 3, ("2001:db8::61/64",), 0.1, use_vmac=True),
    Case("v3-ipv6-novmac", 62, 3, ("2001:db8::62/64", "2001:db8::162/64"), 0.2,
         use_vmac=False),
]
BY_VRID = {c.vrid: c for c in CASES}


def cases(wanted: Callable[[Case], bool] = lambda c: True) -> pytest.MarkDecorator:
    """Parametrize over the cases a test applies to (never a skip: CI runs them all)."""
    chosen = [c for c in CASES if wanted(c)]
    return pytest.mark.parametrize("case", chosen, ids=[c.id for c in chosen])


@dataclass(frozen=True)
class Router:
    name: str
    mac: str
    ipv4: str
    link_local: str


@dataclass
class Run:
    pcap: str
    r1: Router
    r2: Router
    r2_started: float  # wall clock, comparable with frame.time_epoch
    r1_stopped: float
    # Dissected with the RFC 5798 checksum (pseudo-header) and, frame for frame,
    # with Wireshark's "VRRPv3 checksum as in VRRPv2" preference.
    packets: list[Packet]
    packets_no_pseudo: list[Packet]
    # Default tshark preferences, including ARP duplicate-address detection.
    packets_dup_check: list[Packet]
    r2_links: dict[str, list[str]] = field(default_factory=dict)  # MAC -> addresses

    def router(self, src: str) -> str:
        for r in (self.r1, self.r2):
            if src in (r.ipv4, r.link_local):
                return r.name
        raise AssertionError(f"advert from unknown source {src}")

    def mac_of(self, name: str) -> str:
        return self.r1.mac if name == "r1" else self.r2.mac

    def dissection(self, frame: Packet) -> Packet:
        """The frame as dissected with the checksum mode its VRID is configured for."""
        vrids = frame.all("vrrp.virt_rtr_id")
        if vrids and int(vrids[0]) in BY_VRID and not BY_VRID[int(vrids[0])].pseudo_header:
            return self.packets_no_pseudo[frame.number - 1]
        return frame

    def adverts(self, case: Case) -> list[Packet]:
        found = [self.dissection(p) for p in self.packets
                 if p.has("vrrp") and p.all("vrrp.virt_rtr_id") == [str(case.vrid)]]
        assert found, f"no adverts of VRID {case.vrid} captured"
        return found

    def resign_time(self, case: Case) -> float:
        """When r1's priority-0 advert of this VRID went out."""
        zero = [p for p in self.adverts(case) if p.num("vrrp.prio") == 0]
        assert len(zero) == 1, f"VRID {case.vrid}: {len(zero)} priority-0 adverts"
        return float(zero[0].get("frame.time_epoch"))


def _router(host: Host) -> Router:
    assert host.ipv4 is not None
    ll = host.link_local()
    assert ll is not None
    return Router(host.name, host.mac, str(host.ipv4.ip), ll)


def _links_by_mac(host: Host) -> dict[str, list[str]]:
    links = json.loads(host.run(["ip", "-j", "addr", "show"]).stdout)
    return {
        str(link["address"]): [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]]
        for link in links
        if "address" in link
    }


def _wait_all(daemon: Daemon, transition: str) -> None:
    for case in CASES:
        daemon.wait_log(re.escape(f"{case.log_name}: {transition}"), timeout=WAIT)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    keep = tmp_path_factory.mktemp("conformance")
    with Lab() as lab:
        lan = lab.add_switch()
        h1 = lab.add_host("r1", lan, "192.0.2.1/24", "2001:db8::1/64")
        h2 = lab.add_host("r2", lan, "192.0.2.2/24", "2001:db8::2/64")
        cap = lab.capture(lan, filter="ip proto 112 or ip6 proto 112 or arp or icmp6")
        d1 = h1.start_daemon("".join(c.conf(R1_PRIORITY) for c in CASES))
        _wait_all(d1, "BACKUP -> MASTER")
        r2_started = time.time()
        d2 = h2.start_daemon("".join(c.conf(R2_PRIORITY) for c in CASES))
        _wait_all(d2, "INIT -> BACKUP")
        time.sleep(1.0)  # a few adverts of r1 while r2 listens
        r1_stopped = time.time()
        assert d1.stop() == 0
        _wait_all(d2, "BACKUP -> MASTER")
        time.sleep(1.2)  # at least one more advert of every VRID from r2
        r2_links = _links_by_mac(h2)
        cap.stop()
        pcap = str(keep / "conformance.pcap")
        shutil.copyfile(cap.path, pcap)
        r1, r2 = _router(h1), _router(h2)
    # Without vmac a failover moves an address to another MAC on purpose, which
    # tshark's ARP heuristic reports as a duplicate address: see the vmac test.
    quiet = {"arp.detect_duplicate_ips": "FALSE"}
    yield Run(
        pcap=pcap,
        r1=r1,
        r2=r2,
        r2_started=r2_started,
        r1_stopped=r1_stopped,
        packets=dissect(pcap, quiet),
        packets_no_pseudo=dissect(pcap, {**quiet, "vrrp.v3_checksum_as_in_v2": "TRUE"}),
        packets_dup_check=dissect(pcap),
        r2_links=r2_links,
    )


# ---- every frame ------------------------------------------------------------------

def test_no_frame_is_malformed_or_draws_an_expert_warning(run: Run) -> None:
    """Adverts, announcements, ARP probes, DAD solicitations, MLD: all of it."""
    assert len(run.packets) == len(run.packets_no_pseudo) > 50
    problems = [msg for p in run.packets for msg in run.dissection(p).problems()]
    assert not problems, "\n".join(problems)


# ---- adverts (RFC 5798 5.1, 5.2, 7.2; RFC 3768 5.1, 5.3, 7.2) ------------------------

@cases()
def test_advert_checksum_is_good(run: Run, case: Case) -> None:
    for p in run.adverts(case):
        assert p.num("vrrp.checksum.status") == CHECKSUM_GOOD, f"frame {p.number}"
        assert not p.problems(), p.problems()
        if case.family == 4:
            assert p.num("ip.checksum.status") == CHECKSUM_GOOD


@cases(lambda c: c.version == 3 and c.family == 4)
def test_checksum_mode_is_really_the_configured_one(run: Run, case: Case) -> None:
    """Judged with the other checksum rule, a VRRPv3/IPv4 advert must fail: the
    pseudo-header switch really changes what is summed (RFC 5798 5.2.8)."""
    other = run.packets if not case.pseudo_header else run.packets_no_pseudo
    for p in run.adverts(case):
        assert other[p.number - 1].num("vrrp.checksum.status") == CHECKSUM_BAD


@cases()
def test_advert_fields_are_as_configured(run: Run, case: Case) -> None:
    for p in run.adverts(case):
        assert p.num("vrrp.version") == case.version
        assert p.num("vrrp.type") == 1  # ADVERTISEMENT
        assert p.num("vrrp.virt_rtr_id") == case.vrid
        assert p.num("vrrp.addr_count") == len(case.vips)
        field = "vrrp.ip_addr" if case.family == 4 else "vrrp.ipv6_addr"
        assert p.all(field) == case.ips  # in the configured order
        if case.version == 2:
            assert p.num("vrrp.adver_int") == case.interval  # whole seconds
            assert p.num("vrrp.auth_type") == (0 if case.password is None else 1)
            if case.password is not None:
                assert p.get("vrrp.auth_string") == case.password
        else:
            # 12-bit Max Adver Int in centiseconds, reserved bits zero (RFC 5798 5.2.7).
            assert p.num("vrrp.short_adver_int") == round(case.interval * 100)
            assert p.num("vrrp.reserved_mbz") == 0
            assert "vrrp.auth_type" not in p.fields


@cases()
def test_priorities_follow_the_election(run: Run, case: Case) -> None:
    """r1 advertises 200, resigns once with 0 (RFC 5798 6.4.3 Shutdown); r2 then 100."""
    sent = [(run.router(_src(p, case)), p.num("vrrp.prio")) for p in run.adverts(case)]
    r1 = [prio for who, prio in sent if who == "r1"]
    r2 = [prio for who, prio in sent if who == "r2"]
    assert r1[-1] == 0 and set(r1[:-1]) == {R1_PRIORITY} and len(r1) >= 2
    assert r2 and set(r2) == {R2_PRIORITY}
    # Nobody else talked in between: r2 speaks only after r1 resigned.
    assert sent.index(("r1", 0)) == len(r1) - 1


@cases()
def test_advert_ip_header(run: Run, case: Case) -> None:
    for p in run.adverts(case):
        who = run.router(_src(p, case))
        if case.family == 4:
            assert p.num("ip.ttl") == 255
            assert p.num("ip.proto") == 112
            assert p.get("ip.dst") == "224.0.0.18"
            assert p.get("eth.dst") == "01:00:5e:00:00:12"
            # RFC 5798 7.2: the source is the interface's primary IPv4 address.
            assert p.get("ip.src") == (run.r1 if who == "r1" else run.r2).ipv4
        else:
            assert p.num("ipv6.hlim") == 255
            assert p.num("ipv6.nxt") == 112
            assert p.get("ipv6.dst") == "ff02::12"
            assert p.get("eth.dst") == "33:33:00:00:00:12"
            # RFC 5798 7.2: the source is the interface's link-local address.
            assert p.get("ipv6.src") == (run.r1 if who == "r1" else run.r2).link_local


@cases()
def test_advert_ethernet_source(run: Run, case: Case) -> None:
    """RFC 5798 7.2: the virtual router MAC; with useVMAC = no, the interface's own."""
    for p in run.adverts(case):
        who = run.router(_src(p, case))
        assert p.get("eth.src") == (case.vmac if case.use_vmac else run.mac_of(who))


# ---- announcements on becoming master (RFC 5798 6.4.1 / 6.4.2) -----------------------

def _announcements(run: Run, case: Case) -> dict[str, list[Packet]]:
    """Gratuitous ARPs / unsolicited NAs for the VIPs, split by the sending router.

    r1's come before r2 started; r2's after r1 resigned. In between, r2 probes
    the VIPs (RFC 5227 / RFC 4862 DAD) and r1's kernel defends them: those
    frames are the kernel's, not announcements, and are left out here.
    """
    resign = run.resign_time(case)
    out: dict[str, list[Packet]] = {"r1": [], "r2": []}
    for p in run.packets:
        if case.family == 4:
            if not p.has("arp") or p.all("arp.src.proto_ipv4") != p.all("arp.dst.proto_ipv4"):
                continue
            target = p.get("arp.src.proto_ipv4")
        else:
            if not p.has("icmpv6") or p.all("icmpv6.type") != ["136"]:
                continue
            target = p.get("icmpv6.nd.na.target_address")
        if target not in case.ips:
            continue
        when = float(p.get("frame.time_epoch"))
        if when < run.r2_started:
            out["r1"].append(p)
        elif when >= resign:
            out["r2"].append(p)
    return out


@cases()
def test_each_new_master_announces_every_address(run: Run, case: Case) -> None:
    sent = _announcements(run, case)
    for who in ("r1", "r2"):
        targets = [p.get("arp.src.proto_ipv4" if case.family == 4
                         else "icmpv6.nd.na.target_address") for p in sent[who]]
        assert sorted(targets) == sorted(case.ips * GARP_COUNT), f"{who}: {targets}"


@cases()
def test_announcement_fields(run: Run, case: Case) -> None:
    for who, frames in _announcements(run, case).items():
        mac = case.vmac if case.use_vmac else run.mac_of(who)
        for p in frames:
            assert not p.problems(), p.problems()
            assert p.get("eth.src") == mac
            if case.family == 4:
                # A broadcast ARP request whose sender and target are the VIP,
                # sender hardware address the virtual MAC.
                assert p.get("eth.dst") == "ff:ff:ff:ff:ff:ff"
                assert p.num("arp.opcode") == 1
                assert p.get("arp.src.hw_mac") == mac
                assert p.get("arp.src.proto_ipv4") == p.get("arp.dst.proto_ipv4")
            else:
                # To all-nodes, Router set, Solicited clear, Override set, target
                # link-layer address the virtual MAC; hop limit 255 (RFC 4861 7.1.2).
                assert p.get("ipv6.dst") == "ff02::1"
                assert p.get("eth.dst") == "33:33:00:00:00:01"
                assert p.num("ipv6.hlim") == 255
                assert p.num("icmpv6.checksum.status") == CHECKSUM_GOOD
                assert p.num("icmpv6.nd.na.flag.r") == 1
                assert p.num("icmpv6.nd.na.flag.s") == 0
                assert p.num("icmpv6.nd.na.flag.o") == 1
                assert p.num("icmpv6.opt.type") == 2  # target link-layer address
                assert p.get("icmpv6.opt.linkaddr") == mac


@cases(lambda c: c.family == 4)
def test_virtual_mac_failover_never_rebinds_an_address(run: Run, case: Case) -> None:
    """With the virtual MAC the address stays on one MAC across the failover, so
    tshark's duplicate-address detector stays quiet; without it, the new master's
    gratuitous ARPs move the address to its own MAC (which the detector reports)."""
    dups = [e.message for p in run.packets_dup_check for e in p.experts
            if "Duplicate IP address" in e.message]
    flagged = [ip for ip in case.ips if any(f"({ip})" in m for m in dups)]
    assert flagged == ([] if case.use_vmac else case.ips)


# ---- RFC 5798 7.4: no interface identifier from the virtual MAC -----------------------

@cases(lambda c: c.use_vmac)
def test_virtual_mac_interface_has_no_link_local_from_the_virtual_mac(
    run: Run, case: Case
) -> None:
    addrs = run.r2_links.get(case.vmac)
    assert addrs is not None, f"r2 has no interface with {case.vmac}: {run.r2_links}"
    assert sorted(addrs) == sorted(case.vips)  # the VIPs, and no fe80:: address
    # Nor did anything on the wire use a source derived from the virtual MAC.
    low = int(case.vmac[-5:].replace(":", ""), 16)
    eui64 = ipaddress.IPv6Address("fe80::200:5eff:fe00:0") + low
    assert not [p.number for p in run.packets if p.all("ipv6.src") == [str(eui64)]]


def _src(p: Packet, case: Case) -> str:
    return p.get("ip.src" if case.family == 4 else "ipv6.src")
