"""Real freevrrpd daemons in the lab: the address-conflict checker, and clean
starts and stops (kill -9 then restart, SIGTERM, the pid-file lock).

Issue 3 sections 1, 3 and 7. The LAN is the one of ``daemon_helpers``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from lab import Host, Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    VIP,
    VIP6,
    VIP6_CIDR,
    VIP_CIDR,
    WAIT,
    build_lan,
    has_ip,
    leftovers,
    never,
    same_argv,
    state_re,
    vmac_links,
    wait_until,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]

TREE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- the address-conflict checker (issue 3 section 3) ----------------------------------


def test_rogue_host_holding_the_vip_is_detected_and_the_vip_not_claimed(lab: Lab) -> None:
    """RFC 5227 2.1.1 probe before claiming: the client holds the VIP, so the lone
    router logs the conflict (address and MAC), goes to FAULT and never installs
    the VIP; once the client lets go, the next probe finds it free and the
    router becomes master."""
    net = build_lan(lab)
    net.c.run(["ip", "addr", "add", VIP_CIDR, "dev", "eth0"])
    d = net.r1.start_daemon(vrid(1, 100))
    d.wait_log(rf"address conflict: {re.escape(VIP)} is held by {net.c.mac}", WAIT)
    d.wait_log(state_re(1, "FAULT") + "address conflict", WAIT)
    # Many Master_Down_Intervals (0.16 s here): still not master, VIP never here.
    never(lambda: has_ip(net.r1, VIP), "r1 installed the VIP the client holds", 2.0)
    assert not re.search(state_re(1, "MASTER"), d.log()), d.log()
    assert has_ip(net.c, VIP)
    mark = d.mark()
    net.c.run(["ip", "addr", "del", VIP_CIDR, "dev", "eth0"])
    # The guard probes again 10 s after the conflict (RECHECK_CONFLICT).
    d.wait_log(r"address conflict over", 15.0, mark)
    d.wait_log(state_re(1, "MASTER"), WAIT, mark)
    wait_until(lambda: has_ip(net.r1, VIP), "r1 to install the VIP")
    assert d.stop() == 0


def test_rogue_host_holding_an_ipv6_vip_is_detected_by_dad(lab: Lab) -> None:
    """RFC 4862 5.4: a duplicate-address-detection probe finds the client holding
    the IPv6 VIP; the router stays in FAULT and never installs it."""
    net = build_lan(lab)
    net.c.run(["ip", "addr", "add", VIP6_CIDR, "dev", "eth0", "nodad"])
    d = net.r1.start_daemon(vrid(1, 100, addr=VIP6_CIDR))
    d.wait_log(rf"address conflict: {re.escape(VIP6)} is held by {net.c.mac}", WAIT)
    d.wait_log(state_re(1, "FAULT", family=6) + "address conflict", WAIT)
    never(lambda: has_ip(net.r1, VIP6), "r1 installed the IPv6 VIP the client holds", 2.0)
    assert not re.search(state_re(1, "MASTER", family=6), d.log()), d.log()
    assert d.stop() == 0


def _announce_from(host: Host, ip: str, count: int = 3) -> None:
    """Send ``count`` gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for ``ip``
    from ``host``'s eth0, with its own MAC, as a misconfigured host would."""
    code = textwrap.dedent(f"""
        import time
        from ipaddress import ip_address
        from freevrrpd.net.capture import PacketSocket
        from freevrrpd.core.mac import mac_bytes
        from freevrrpd.net.frames import ETH_P_ARP, ETH_P_IPV6, garp_frame, unsolicited_na_frame
        ip = ip_address({ip!r})
        mac = mac_bytes({host.mac!r})
        v4 = ip.version == 4
        frame = garp_frame(mac, ip) if v4 else unsolicited_na_frame(mac, ip, ip)
        with PacketSocket("eth0", ETH_P_ARP if v4 else ETH_P_IPV6) as sock:
            for _ in range({count}):
                sock.send(frame)
                time.sleep(0.1)
    """)
    env = {**os.environ, "PYTHONPATH": TREE}
    host.run([sys.executable, "-c", code], env=env)


def test_another_mac_announcing_the_vip_while_master_is_logged(lab: Lab) -> None:
    """Issue 3 section 3: while master, a gratuitous ARP (or unsolicited NA) for
    a virtual address from another MAC is logged as a conflict."""
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 100) + vrid(2, 100, addr=VIP6_CIDR))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    d.wait_log(state_re(2, "MASTER", family=6), WAIT)
    wait_until(lambda: has_ip(net.r1, VIP) and has_ip(net.r1, VIP6), "r1 to hold both VIPs")
    mark = d.mark()
    _announce_from(net.c, VIP)
    _announce_from(net.c, VIP6)
    d.wait_log(rf"address conflict while master: {re.escape(VIP)} claimed by {net.c.mac}",
               WAIT, mark)
    d.wait_log(rf"address conflict while master: {re.escape(VIP6)} claimed by {net.c.mac}",
               WAIT, mark)
    assert d.stop() == 0


# ---- clean start and stop (issue 3 section 1) ----------------------------------------


def test_kill9_then_restart_leaves_no_stale_address_or_interface(lab: Lab) -> None:
    """A crashed master leaves its VIP and virtual-MAC interface behind; the
    restarted daemon removes them before claiming anything, whether it comes
    back as backup (r2 took over, no preemption) or becomes master again."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200, preempt=False))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    wait_until(lambda: has_ip(net.r1, VIP), "r1 to hold the VIP")
    mark2 = d2.mark()
    d1.kill9()
    stale = vmac_links(net.r1)
    assert has_ip(net.r1, VIP) and len(stale) == 1, stale
    assert re.fullmatch(r"vrrp4-1-\d+ \(macvlan, 00:00:5e:00:01:01\)", stale[0]), stale
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, mark2)
    # The same config and pid file; the pid file is stale, not locked.
    d1b = net.r1.start_daemon("", argv=same_argv(d1))
    d1b.wait_log(r"cleaned up after an earlier run: removed virtual-MAC interface "
                 r"\S+ \(00:00:5e:00:01:01 on eth0\)", WAIT)
    d1b.wait_log(state_re(1, "BACKUP"), WAIT)
    # Backup (preempt = no, r2 is master): nothing of the crashed run is left.
    never(lambda: bool(leftovers(net.r1, VIP)), "stale VIP or VMAC link on backup r1", 2.0)
    assert not re.search(state_re(1, "MASTER"), d1b.log()), d1b.log()
    assert has_ip(net.r2, VIP)
    # r2 leaves; the restarted r1 becomes master with a single, fresh VMAC link.
    mark = d1b.mark()
    assert d2.stop() == 0
    d1b.wait_log(state_re(1, "MASTER"), WAIT, mark)
    wait_until(lambda: has_ip(net.r1, VIP), "r1 to hold the VIP again")
    assert len(vmac_links(net.r1)) == 1, vmac_links(net.r1)
    assert d1b.stop() == 0
    assert leftovers(net.r1, VIP) == [] and leftovers(net.r2, VIP) == []
    assert not os.path.exists(d1.pid_path)


def test_sigterm_leaves_nothing_behind_and_the_pid_file_is_locked(lab: Lab) -> None:
    """A second instance on the same pid file refuses to start (and touches
    nothing); SIGTERM makes the master release everything, remove its pid file
    and exit 0."""
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 100) + vrid(2, 100, addr=VIP6_CIDR))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    d.wait_log(state_re(2, "MASTER", family=6), WAIT)
    wait_until(lambda: has_ip(net.r1, VIP) and has_ip(net.r1, VIP6), "r1 to hold both VIPs")
    with open(d.pid_path) as f:
        assert f.read().strip() == str(d.pid)
    second = net.r1.start_daemon("", argv=same_argv(d))
    try:
        rc = second.proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail("a second instance on a locked pid file kept running:\n" + second.log())
    assert rc != 0
    assert re.search(rf"{re.escape(d.pid_path)} is locked: freevrrpd is already running "
                     rf"as pid {d.pid}", second.log()), second.log()
    # The refused instance removed nothing of the running one.
    assert d.running and has_ip(net.r1, VIP) and has_ip(net.r1, VIP6)
    assert len(vmac_links(net.r1)) == 2, vmac_links(net.r1)
    assert "cleaned up" not in second.log()
    assert d.stop() == 0
    assert leftovers(net.r1, VIP, VIP6) == []
    assert not os.path.exists(d.pid_path)
    assert re.search(r"freevrrpd stopped", d.log())
