"""LinkWatcher: link events through netlink, waited for with select()."""

from __future__ import annotations

import json
import select
import time
from collections.abc import Callable

import pytest

from freevrrpd.net.linkwatch import LinkWatcher
from tests.support.nl_helpers import (
    in_ns,
    pair,
    sh,
    veth,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]


# ---- link events ----------------------------------------------------------------------
def wait_state(w: LinkWatcher, name: str, usable: bool, seen: list[tuple[str, bool]],
               timeout: float = 10.0) -> None:
    """Wait on the watcher's descriptor (select, as the daemon does) until ``name``
    is reported in state ``usable``."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"{name} not reported {usable} within {timeout} s; saw {seen}"
        ready, _, _ = select.select([w.fileno()], [], [], left)
        if ready:
            changes = w.poll()
            seen += changes
            if [c for c in changes if c[0] == name][-1:] == [(name, usable)]:
                assert w.state(name) is usable
                return


def test_link_watcher_reports_carrier_admin_and_deletion(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)

    def body() -> list[tuple[str, bool]]:
        seen: list[tuple[str, bool]] = []
        with LinkWatcher(["va", "late0"]) as w:
            assert w.state("va") is True and w.state("late0") is False
            assert w.poll() == []  # nothing pending: returns at once
            with pytest.raises(KeyError):
                w.state("lo")
            steps = [(["ip", "-n", b, "link", "set", "vb", "down"], "va", False),  # carrier
                     (["ip", "-n", b, "link", "set", "vb", "up"], "va", True),
                     (["ip", "link", "set", "va", "down"], "va", False),  # admin
                     (["ip", "link", "set", "va", "up"], "va", True),
                     (["ip", "link", "add", "name", "late0", "type", "veth", "peer", "name",
                       "late1"], None, None),
                     (["ip", "link", "set", "late1", "up"], None, None),
                     (["ip", "link", "set", "late0", "up"], "late0", True),
                     (["ip", "link", "del", "va"], "va", False)]  # deleted
            for cmd, name, usable in steps:
                sh(*cmd)
                if name is not None:
                    wait_state(w, name, bool(usable), seen)
        return seen

    seen = in_ns(a, body)
    assert ("va", False) in seen and ("late0", True) in seen


def test_link_watcher_ignores_a_port_leaving_its_bridge(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "-n", a, "link", "add", "name", "br0", "type", "bridge")
    pair(a, "p0", "p1")
    for cmd in (["p0", "up"], ["p0", "master", "br0"], ["br0", "up"]):
        sh("ip", "-n", a, "link", "set", *cmd)

    def body() -> list[tuple[str, bool]]:
        seen: list[tuple[str, bool]] = []
        with LinkWatcher(["p0", "va"]) as w:
            assert w.state("p0") is True
            # The bridge reports the port's departure as RTM_DELLINK (AF_BRIDGE).
            sh("ip", "link", "set", "p0", "nomaster")
            sh("ip", "-n", b, "link", "set", "vb", "down")  # a marker event after it
            wait_state(w, "va", False, seen)
            assert w.state("p0") is True
        return seen

    assert ("p0", False) not in in_ns(a, body)


def test_link_watcher_recovers_from_lost_events(netns: Callable[[], str]) -> None:
    """A receive buffer too small for a burst: the kernel drops events (ENOBUFS)
    and the watcher must re-read the truth instead of missing the last change."""
    a, b = netns(), netns()
    veth(a, b)

    def body() -> tuple[bool, bool, bool]:
        with LinkWatcher(["va"], rcvbuf=1) as w:  # the kernel rounds up to its minimum
            for _ in range(10):
                sh("ip", "link", "set", "va", "down")
                sh("ip", "link", "set", "va", "up")
            # Let the kernel finish (it may defer operstate by up to a second), so
            # every event is sent -- and most dropped -- before we read.  What is
            # left queued are the *first* events ("down"): stale after the loss.
            deadline = time.monotonic() + 10
            while json.loads(sh("ip", "-j", "link", "show", "dev", "va"))[0]["operstate"] != "UP":
                assert time.monotonic() < deadline, "va did not come back up"
                time.sleep(0.05)
            ready, _, _ = select.select([w.fileno()], [], [], 10)
            first = w.poll()
            up_after_loss = w.state("va")
            sh("ip", "link", "set", "va", "down")  # and events flow again afterwards
            wait_state(w, "va", False, [])
            return bool(ready), first[-1:] in ([], [("va", True)]), up_after_loss

    assert in_ns(a, body) == (True, True, True)
