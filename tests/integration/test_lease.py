"""The transmitter's lease in the lab: a master whose router thread is stuck on
purpose stops advertising within the lease, and its backup (a real daemon)
takes over Master_Down_Interval later (RFC 5798 6.4.2), as it would for a
router that stopped.  The master here is the real daemon with its router
threads made busy by ``tests.support.frozen_master``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from freevrrpd.vrid.transmitter import lease_for
from lab import Lab
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.service_helpers import DatagramListener
from tests.support.vrrp_lab import (
    adverts,
    build_lan,
    first_advert,
    last_advert,
    mdi,
    wait_master,
)

pytestmark = [pytest.mark.netns, needs_root]


def test_a_master_with_a_stuck_thread_goes_silent_within_the_lease_and_its_backup_takes_over(
        lab: Lab) -> None:
    interval = 0.1
    lan, (r1, r2), _ = build_lan(lab, n=2)
    cap = lab.capture(lan)
    freeze = Path(lab.tmpdir, "freeze")
    master = r2.start_daemon(
        vrid(priority=200, advertint=interval),
        argv=[sys.executable, "-m", "tests.support.frozen_master", str(freeze), "-F", "-d",
              "-f", "{conf}", "-p", "{pidfile}", "-s", "{socket}"])
    wait_master(master)
    backup = r1.start_daemon(vrid(priority=100, advertint=interval))
    backup.wait_log(r"-> BACKUP", timeout=10)
    time.sleep(1.0)
    since = backup.mark()
    frozen_at = time.time()
    freeze.touch()
    master.wait_log(r"frozen: every router thread is busy", timeout=5)
    term = lease_for(interval)
    wait_master(backup, since=since, timeout=term + 5)
    master.wait_log(r"busy or stuck for 2\.0 s: no longer advertised", timeout=2)
    time.sleep(0.3)
    advs = adverts(cap)
    old = last_advert(advs, "192.0.2.2")
    new = first_advert(advs, "192.0.2.1", after=frozen_at)
    assert old is not None and new is not None
    silent_after = old.time - frozen_at
    gap = new.time - old.time
    print(f"\nlast advert {silent_after:.3f} s after the freeze (lease {term} s); "
          f"backup's first {gap:.3f} s later (Master_Down_Interval {mdi(100, interval):.3f} s)")
    # The transmitter kept advertising while the lease held, then stopped.
    assert term - 0.2 <= silent_after <= term + 0.3
    # RFC 5798 6.4.2: the backup takes over when Master_Down_Timer fires.
    assert 0.9 * mdi(100, interval) <= gap <= mdi(100, interval) + 0.25
    master.kill9()
    backup.stop()


def test_the_watchdog_is_fed_only_while_every_router_thread_keeps_its_timers(
        lab: Lab) -> None:
    """Issue 12, section 3: with systemd's watchdog (WATCHDOG_USEC), WATCHDOG=1 goes
    out every half period while the router threads are well, and stops once one
    has been stuck for its lease, so that systemd restarts the daemon."""
    lan, (r1,), _ = build_lan(lab, n=1)
    freeze = Path(lab.tmpdir, "freeze")
    notify = DatagramListener(Path(lab.tmpdir, "notify.sock"))
    try:
        d = r1.start_daemon(
            vrid(priority=200, advertint=0.1),
            argv=[sys.executable, "-m", "tests.support.frozen_master", str(freeze), "-F", "-d",
                  "-f", "{conf}", "-p", "{pidfile}", "-s", "{socket}"],
            env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})
        wait_master(d)
        time.sleep(1.6)
        fed = [m for m in notify.messages() if m == "WATCHDOG=1"]
        assert len(fed) >= 2, notify.messages()  # every 0.5 s
        freeze.touch()
        d.wait_log(r"frozen: every router thread is busy", timeout=5)
        d.wait_log(r"not feeding systemd's watchdog: thread of VRID 1 on eth0 \(IPv4\) dead or "
                   r"stuck", timeout=lease_for(0.1) + 3)
        count = len([m for m in notify.messages() if m == "WATCHDOG=1"])
        time.sleep(1.5)
        assert len([m for m in notify.messages() if m == "WATCHDOG=1"]) == count
        d.kill9()
    finally:
        notify.close()
