"""Never delete what is not ours: the address owner, and addresses the host had
(real daemons in netns).

RFC 5798 3 and 6.4.1: the owner of the virtual address (priority 255) has it as
a real address of its interface and starts as master at once.  The daemon
records what it adds (next to the pid file) and, after a crash, removes only
that; a virtual address that is already one of the interface's own is refused
for any router that is not its owner.
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
    VIP_CIDR,
    WAIT,
    build_lan,
    has_ip,
    leftovers,
    same_argv,
    state_re,
    wait_until,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]
TREE = str(Path(__file__).resolve().parents[2])


def test_the_address_owner_keeps_its_address_through_stop_and_crash(lab: Lab) -> None:
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 255, addr=f"{R1}/24"))
    d.wait_log(state_re(1, "MASTER", old="INIT") + "address owner", WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100, addr=f"{R1}/24"))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    wait_until(lambda: '"master": "192.0.2.1"' in d2.ctl("status", "--json").stdout,
               "r2 to hear the owner")
    assert net.c.ping(R1)
    # The owner's address stays where it is, as the interface's own.
    assert [a for a in net.r1.addresses("eth0") if a.startswith(f"{R1}/")]
    d.kill9()
    assert [a for a in net.r1.addresses("eth0") if a.startswith(f"{R1}/")]
    d1b = net.r1.start_daemon("", argv=same_argv(d))
    d1b.wait_log(state_re(1, "MASTER", old="INIT"), WAIT)
    assert "removed virtual address" not in d1b.log(), d1b.log()
    # Whatever r2 did meanwhile, the owner is master again and r2 its backup.
    wait_until(lambda: '"state": "BACKUP"' in (out := d2.ctl("status", "--json").stdout)
               and '"master": "192.0.2.1"' in out, "r2 to be the owner's backup again")
    assert d1b.stop() == 0
    assert [a for a in net.r1.addresses("eth0") if a.startswith(f"{R1}/")]
    # The host keeps its connected route too (the address was never taken away).
    assert "192.0.2.0/24" in net.r1.run(["ip", "route", "show", "dev", "eth0"]).stdout


def test_a_virtual_address_the_interface_already_has_is_refused_unless_owner(
        lab: Lab) -> None:
    net = build_lan(lab)
    net.r1.run(["ip", "addr", "add", VIP_CIDR, "dev", "eth0"])  # configured by hand
    conf = vrid(1, 100)
    d = net.r1.start_daemon(conf)
    assert d.proc.wait(WAIT) == 2
    assert re.search(rf"\.conf:7: addr: VRID 1 on eth0 \(IPv4\): {re.escape(VIP)} is already "
                     r"an address of eth0", d.log()), d.log()
    assert has_ip(net.r1, VIP)  # and it was not touched
    # freevrrpd -t says so too, where the interface exists.
    check = net.r1.run([sys.executable, "-m", "freevrrpd", "-t", "-f", d.conf_path],
                       check=False, env={**os.environ, "PYTHONPATH": TREE})
    assert check.returncode == 2 and "is already an address of eth0" in check.stderr


def test_after_a_crash_only_what_the_daemon_added_is_removed(lab: Lab) -> None:
    """useVMAC = no: the virtual address lives on eth0 itself, beside the host's own
    addresses of the same subnet; a kill -9 leaves it, the restart removes it and
    nothing else."""
    net = build_lan(lab)
    net.r1.run(["ip", "addr", "add", "192.0.2.77/24", "dev", "eth0"])  # the host's own
    d = net.r1.start_daemon(vrid(1, 200, usevmac=False))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    wait_until(lambda: has_ip(net.r1, VIP), "r1 to hold the VIP")
    d.kill9()
    assert has_ip(net.r1, VIP)
    d1b = net.r1.start_daemon("", argv=same_argv(d))
    d1b.wait_log(rf"cleaned up after an earlier run: removed virtual address {VIP}/24 "
                 r"from eth0", WAIT)
    d1b.wait_log(state_re(1, "MASTER"), WAIT)
    assert d1b.stop() == 0
    assert leftovers(net.r1, VIP) == []
    assert has_ip(net.r1, "192.0.2.77") and has_ip(net.r1, R1)
