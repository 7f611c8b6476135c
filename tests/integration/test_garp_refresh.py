"""A master repeats its announcements every ``garprefresh`` seconds (issue 10, section 3).

Hosts and switches with long ARP / neighbour caches keep the virtual address's
MAC after a short dual-master episode only if the master re-announces it; the
bursts of RFC 5798 6.4.1 / 6.4.2 happen on becoming master alone.  Judged on
the wire: the switch's capture of gratuitous ARP (IPv4) and unsolicited
neighbour advertisements (IPv6) for the virtual address.
"""

from __future__ import annotations

import time

import pytest

from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.vrrp_lab import (
    VIP4,
    VIP6,
    build_lan,
    garps,
    stop_all,
    unsolicited_nas,
    wait_master,
)

pytestmark = [pytest.mark.netns, needs_root]

REFRESH = 0.5  # seconds
WATCH = 3.2  # seconds of master time watched


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("refresh", [REFRESH, 0.0], ids=["refresh", "off"])
def test_announcements_repeat_at_the_interval_and_only_when_asked(
        lab: Lab, family: int, refresh: float) -> None:
    lan, routers, _ = build_lan(lab, n=1, ipv6=family == 6)
    cap = lab.capture(lan)
    vip = VIP4 if family == 4 else VIP6
    addr = f"{vip}/24" if family == 4 else f"{vip}/64"
    # One announcement on becoming master, no second burst: whatever follows
    # is the refresh.
    conf = vrid(addr=addr, garpcount=1, garprepeatdelay=0, garprefresh=refresh,
                garprefreshcount=2 if refresh else 1)
    d = routers[0].start_daemon(conf)
    wait_master(d, family=family, timeout=15)
    time.sleep(WATCH)
    stop_all([d])
    seen = [t for t, _ in (garps(cap, vip) if family == 4 else unsolicited_nas(cap, vip))]
    assert seen, "no announcement on becoming master"
    after_first = [t - seen[0] for t in seen[1:]]
    if not refresh:
        assert after_first == []
        return
    # garprefreshcount = 2: two announcements at each refresh, REFRESH apart.
    rounds = sorted({round(t / REFRESH) for t in after_first})
    assert len(after_first) == 2 * len(rounds)
    assert len(rounds) >= int(WATCH / REFRESH) - 1
    assert rounds == list(range(1, len(rounds) + 1))
    for t in after_first:
        assert abs(t - REFRESH * round(t / REFRESH)) < 0.1, after_first
