"""The claim watcher's kernel filter: other hosts' ARP never wakes a master VRID.

A LAN's ordinary ARP traffic used to wake the watcher of every master VRID
(with 255 VRIDs, 50 ARP frames/s cost 70 % of a core); now only frames that
bind one of the VRID's own addresses reach the socket, and a reload that
changes the addresses moves the filter with them.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import ExitStack
from ipaddress import IPv4Address, IPv6Address

import pytest

from freevrrpd.net.capture import claim_socket
from freevrrpd.net.conflict import ClaimWatcher
from freevrrpd.net.frames import Claim, garp_frame, unsolicited_na_frame
from tests.support.root import needs_root
from tests.support.veth_pair import (  # the two-namespace pair and its helpers
    AF4,
    AF6,
    IF,
    MAC_A,
    MAC_B,
    QUIET,
    VIP4,
    VIP6,
    Lab,
    collect,
    inside,
    veth_pair,
)

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def lab() -> Iterator[Lab]:
    with veth_pair() as pair:
        yield pair

OTHER4, OTHER6 = IPv4Address("192.0.2.55"), IPv6Address("2001:db8::55")


def test_unrelated_arp_and_nd_never_reach_the_watcher(lab: Lab) -> None:
    with ExitStack() as stack:
        with inside(lab.a):
            watch4 = stack.enter_context(ClaimWatcher(IF, AF4, [VIP4], [MAC_A]))
            watch6 = stack.enter_context(ClaimWatcher(IF, AF6, [VIP6], [MAC_A]))
        with inside(lab.b):
            rogue4 = stack.enter_context(claim_socket(IF, AF4))
            rogue6 = stack.enter_context(claim_socket(IF, AF6))
        rogue4.send(garp_frame(MAC_B, OTHER4))
        rogue6.send(unsolicited_na_frame(MAC_B, OTHER6, OTHER6))
        # Not even readable: the kernel dropped them before queueing.
        ready, _, _ = select.select([watch4, watch6], [], [], QUIET)
        assert ready == []
        rogue4.send(garp_frame(MAC_B, VIP4))
        assert collect(watch4, lambda items: bool(items)) == [Claim(VIP4, MAC_B)]


def test_watcher_follows_a_reload_of_its_addresses(lab: Lab) -> None:
    new = IPv4Address("192.0.2.101")
    with ExitStack() as stack:
        with inside(lab.a):
            watch = stack.enter_context(ClaimWatcher(IF, AF4, [VIP4], [MAC_A]))
        with inside(lab.b):
            rogue = stack.enter_context(claim_socket(IF, AF4))
        watch.ips = frozenset({new})
        assert watch.ips == {new}
        rogue.send(garp_frame(MAC_B, VIP4))  # no longer ours
        rogue.send(garp_frame(MAC_B, new))
        assert collect(watch, lambda items: bool(items)) == [Claim(new, MAC_B)]
