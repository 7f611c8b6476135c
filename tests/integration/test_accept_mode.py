"""Accept_Mode enforced by the kernel's filter (RFC 5798 6.1, 6.4.3; issue 10, section 2).

A master that is not the address owner, with ``accept = no``, must not accept
packets addressed to its virtual addresses, yet still answers ARP / neighbour
solicitations for them (hosts must reach the gateway's MAC) and keeps VRRP
going.  With ``accept = yes`` (the default) or as the owner it accepts them.
The daemon's nftables table goes with a clean stop, and after a kill -9 with
the next start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    VIP,
    VIP6,
    VIP6_CIDR,
    VIP_CIDR,
    WAIT,
    build_lan,
    leftovers,
    nft_tables,
    same_argv,
    state_re,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.mark.parametrize("family", [4, 6])
def test_a_non_owner_master_answers_its_addresses_only_with_accept(lab: Lab,
                                                                     family: int) -> None:
    net = build_lan(lab)
    vip, cidr = (VIP, VIP_CIDR) if family == 4 else (VIP6, VIP6_CIDR)
    d = net.r1.start_daemon(vrid(1, 100, addr=cidr, accept=False))
    d.wait_log(state_re(1, "MASTER", family), WAIT)
    # No echo reply from a master that must not accept ...
    assert not net.c.ping(vip, count=3)
    # ... but the client did resolve the address to the virtual MAC (ARP / ND answered).
    vmac = "00:00:5e:00:01:01" if family == 4 else "00:00:5e:00:02:01"
    assert net.c.neigh(vip) == vmac
    assert nft_tables(net.r1)
    # The real address of the router is untouched by the filter.
    assert net.c.ping(R1)
    # Reload to accept = yes: the same master now answers, without a transition.
    since = d.mark()
    Path(d.conf_path).write_text(vrid(1, 100, addr=cidr, accept=True))
    assert d.ctl("reload").returncode == 0
    assert net.c.ping(vip, count=3)
    assert not nft_tables(net.r1)
    assert "-> " not in d.log()[since:]
    assert d.stop() == 0
    assert leftovers(net.r1, vip) == []


def test_the_default_and_the_owner_accept(lab: Lab) -> None:
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 100, addr=VIP_CIDR))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    assert net.c.ping(VIP, count=3)
    assert not nft_tables(net.r1)
    assert d.stop() == 0
    # The owner (priority 255) accepts whatever accept says (RFC 5798 6.4.3).
    owner = net.r1.start_daemon(vrid(1, 255, addr=f"{R1}/24", accept=False))
    owner.wait_log(state_re(1, "MASTER"), WAIT)
    assert net.c.ping(R1, count=3)
    assert owner.stop() == 0


def test_no_rule_is_left_after_sigterm_or_after_kill_9_and_a_restart(lab: Lab) -> None:
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 100, addr=VIP_CIDR, accept=False))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    assert len(nft_tables(net.r1)) == 1
    d.kill9()
    assert len(nft_tables(net.r1)) == 1  # a crash leaves it ...
    # ... the next start, now with accept = yes, removes it ...
    Path(d.conf_path).write_text(vrid(1, 100, addr=VIP_CIDR, accept=True))
    d2 = net.r1.start_daemon("", argv=same_argv(d))
    d2.wait_log(state_re(1, "MASTER"), WAIT)
    assert not nft_tables(net.r1)
    assert net.c.ping(VIP, count=3)
    # ... and a crash with accept = no followed by a start with accept = no keeps one.
    d2.kill9()
    Path(d.conf_path).write_text(vrid(1, 100, addr=VIP_CIDR, accept=False))
    d3 = net.r1.start_daemon("", argv=same_argv(d))
    d3.wait_log(state_re(1, "MASTER"), WAIT)
    assert len(nft_tables(net.r1)) == 1
    assert not net.c.ping(VIP, count=3)
    assert d3.stop() == 0
    assert leftovers(net.r1, VIP) == []
