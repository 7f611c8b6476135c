"""A "conflict" that is really a VRRP peer (real daemons in netns, FRR and freevrrpd).

A router of the same VRID that keeps the virtual address configured while
backup (FRR's habit: its macvlan carries the address, and the host answers ARP
for it from its own MAC) answers our probe from a MAC that is not the one its
adverts come from.  It is a router of this VRID all the same: the
higher-priority router must end as the only master, never stuck in FAULT.
"""

from __future__ import annotations

import re
import shutil

import pytest

from lab import Lab
from lab.frr import VRRPD, Frr
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import VIP, VIP_CIDR, WAIT, build_lan, never, state_re
from tests.support.root import CI, needs_root

pytestmark = [pytest.mark.netns, needs_root,
              pytest.mark.skipif(not CI and shutil.which(VRRPD) is None,
                                 reason="FRR is not installed (make test installs it)")]


def test_frr_holding_the_address_as_master_is_a_peer_not_a_conflict(lab: Lab) -> None:
    net = build_lan(lab)
    frr = Frr(net.r2, 1, 100, [VIP_CIDR], interval_ms=100)
    frr.wait_log(r"\[VRID 1\] \[IPv4\] Backup -> Master", WAIT)
    mark = frr.mark()
    d = net.r1.start_daemon(vrid(1, 200, advertint=0.1))
    d.wait_log(state_re(1, "MASTER"), 15.0)
    frr.wait_log(r"\[VRID 1\] \[IPv4\] Master -> Backup", WAIT, mark)
    assert "address conflict" not in d.log(), d.log()
    # And it stays so: freevrrpd the only master, FRR a backup.
    mark = frr.mark()
    never(lambda: bool(re.search(r"Backup -> Master", frr.log()[mark:])),
          "FRR became master again", 2.0)
    assert net.c.ping(VIP)


def test_frr_holding_the_address_while_we_are_in_conflict_clears_it(lab: Lab) -> None:
    """We start first and FRR's host answers for the address before FRR's vrrpd
    runs (as at boot): a conflict.  Once its adverts show it is a router of this
    VRID, the conflict clears at once, not after the next 10 s re-probe, and the
    higher-priority freevrrpd becomes master."""
    net = build_lan(lab)
    # FRR's macvlan and address first, its vrrpd later: the host answers ARP meanwhile.
    frr = Frr(net.r2, 1, 100, [VIP_CIDR], interval_ms=100, start=False)
    d = net.r1.start_daemon(vrid(1, 200, advertint=0.1))
    d.wait_log(state_re(1, "FAULT") + "address conflict", WAIT)
    mark = d.mark()
    frr.start()
    d.wait_log(r"address conflict over", 6.0, mark)
    master = d.wait_log(state_re(1, "MASTER"), WAIT, mark)
    frr.wait_log(r"\[VRID 1\] \[IPv4\] \S+ -> Backup", WAIT)
    never(lambda: bool(re.search(state_re(1, "FAULT"), d.log()[master.end():])),
          "freevrrpd went back to FAULT", 1.0)


def test_a_freevrrpd_peer_whose_host_answers_for_the_address(lab: Lab) -> None:
    """The same with a freevrrpd peer: its adverts come from the virtual MAC, its
    host answers ARP for the address from its own MAC (the address kept on a
    second interface, arp_ignore at the Linux default)."""
    net = build_lan(lab)
    d2 = net.r2.start_daemon(vrid(1, 100, advertint=0.1))
    d2.wait_log(state_re(1, "MASTER"), WAIT)
    net.r2.run(["ip", "link", "add", "hold0", "type", "veth", "peer", "name", "hold1"])
    net.r2.run(["ip", "addr", "add", f"{VIP}/32", "dev", "hold0"])
    for name in ("hold0", "hold1"):
        net.r2.run(["ip", "link", "set", name, "up"])
    net.r2.sysctl("net.ipv4.conf.eth0.arp_ignore", "0")
    mark2 = d2.mark()
    d1 = net.r1.start_daemon(vrid(1, 200, advertint=0.1))
    d1.wait_log(state_re(1, "MASTER"), 15.0)
    d2.wait_log(state_re(1, "BACKUP", old="MASTER"), WAIT, mark2)
    assert "address conflict" not in d1.log(), d1.log()
