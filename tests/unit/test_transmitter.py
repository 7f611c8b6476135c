"""The shared transmitter on a fake clock: bursts on the interval's grid, the
lease, withdraw, and a stall that is not caught up with (RFC 5798 6.4.3:
a master sends an advert every Advertisement_Interval)."""

from __future__ import annotations

import logging
from collections.abc import Hashable

import pytest

from freevrrpd.vrid.transmitter import (
    LEASE_MAX,
    LEASE_MIN,
    Lease,
    Transmitter,
    _Entry,
    lease_for,
    next_slot,
)


class Recording(Transmitter):
    """The transmitter with its sends recorded instead of put on a wire; its thread
    is never started: the test calls ``_burst`` with the time it chooses."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("test-transmitter"))
        self.wire: list[tuple[float, str, bytes]] = []
        self.now = 0.0

    def _send(self, ifname: str, entries: list[_Entry]) -> None:
        self.wire += [(self.now, ifname, e.frame) for e in entries]

    def due(self) -> float | None:
        return min((e.due for e in self._entries.values()), default=None)

    def run_until(self, end: float) -> None:
        """What the thread does: a burst at each due time up to ``end``."""
        while (due := self.due()) is not None and due <= end + 1e-9:
            self.now = due
            self._burst(due)


def parked() -> Lease:
    lease = Lease(0.0)
    lease.waiting(None)  # an idle master: waits for events only
    return lease


def put(tx: Recording, key: Hashable, at: float, frame: bytes = b"f",
        interval: float = 0.1, lease: Lease | None = None) -> Lease:
    lease = lease or parked()
    tx.put(key, str(key), "eth0", frame, interval, at, lease)
    return lease


def test_lease_length_is_twenty_intervals_within_two_and_ten_seconds() -> None:
    assert lease_for(0.01) == LEASE_MIN == 2.0
    assert lease_for(0.2) == 4.0
    assert lease_for(1.0) == LEASE_MAX == 10.0
    assert lease_for(40.95) == LEASE_MAX


def test_routers_of_one_interval_share_the_grid_and_go_out_in_one_burst() -> None:
    tx = Recording()
    put(tx, "a", at=0.013)
    put(tx, "b", at=0.071)
    tx.run_until(1.0)
    times_a = [t for t, _i, f in tx.wire if f == b"f"]
    assert len(tx.wire) == 20  # ten slots (0.1 .. 1.0), two routers each
    assert sorted(set(times_a)) == pytest.approx([0.1 * n for n in range(1, 11)])
    assert tx.sent("a") == tx.sent("b") == 10


def test_the_first_periodic_advert_is_one_interval_or_less_after_the_handover() -> None:
    # The router's thread sent its first advert itself (RFC 5798 6.4.1/6.4.2);
    # the transmitter's first is on the next slot, never later than one interval.
    assert next_slot(5.0001, 1.0) == 6
    assert next_slot(5.0, 1.0) == 6
    assert next_slot(3.0, 0.1) == 31  # 3.0 / 0.1 is 29.999...: not slot 30 (3.0 s)
    tx = Recording()
    put(tx, "a", at=3.25, interval=1.0)
    tx.run_until(4.0)
    assert [t for t, _i, _f in tx.wire] == [4.0]


def test_a_new_frame_replaces_the_old_one_and_keeps_the_count() -> None:
    tx = Recording()
    lease = put(tx, "a", at=0.0, frame=b"old")
    tx.run_until(0.3)
    put(tx, "a", at=0.3, frame=b"new", lease=lease)
    tx.run_until(0.6)
    assert [f for _t, _i, f in tx.wire] == [b"old"] * 3 + [b"new"] * 3
    assert tx.sent("a") == 6


def test_nothing_goes_out_after_withdraw_and_the_count_stays() -> None:
    tx = Recording()
    put(tx, "a", at=0.0)
    tx.run_until(0.5)
    tx.withdraw("a")
    tx.run_until(5.0)
    assert len(tx.wire) == 5 and tx.sent("a") == 5
    put(tx, "a", at=5.0)  # master again: counting goes on
    tx.run_until(5.2)
    assert tx.sent("a") == 7


def test_a_stall_is_not_caught_up_with_a_burst() -> None:
    tx = Recording()
    put(tx, "a", at=0.0)
    tx.run_until(0.2)
    tx.now = 1.234  # the transmitter did not run for a second
    tx._burst(1.234)
    tx.run_until(1.5)
    times = [round(t, 3) for t, _i, _f in tx.wire]
    assert times == [0.1, 0.2, 1.234, 1.3, 1.4, 1.5]


def test_a_router_thread_busy_for_longer_than_the_lease_stops_being_advertised(
        caplog: pytest.LogCaptureFixture) -> None:
    tx = Recording()
    stuck = Lease(0.0)
    put(tx, "stuck", at=0.0, lease=stuck)
    fine = put(tx, "fine", at=0.0)
    stuck.busy(0.5)  # left its wait at 0.5 s and never came back
    with caplog.at_level(logging.ERROR):
        tx.run_until(5.0)
    sent_stuck = [t for t, _i, f in tx.wire if f == b"f"]
    term = lease_for(0.1)
    assert tx.sent("stuck") == round((0.5 + term) / 0.1) - 1  # up to 2.5 s, not at it
    assert max(t for t in sent_stuck) <= 5.0
    assert stuck.lost and not fine.lost
    assert tx.sent("fine") == 50
    assert "busy or stuck for 2.0 s" in caplog.text


def test_a_wait_overdue_by_more_than_the_lease_loses_it_and_a_parked_one_does_not() -> None:
    tx = Recording()
    overdue = Lease(0.0)
    overdue.waiting(1.0)  # its wait should have ended at 1 s
    put(tx, "overdue", at=0.0, lease=overdue)
    put(tx, "parked", at=0.0)
    tx.run_until(20.0)
    assert tx.sent("overdue") == round((1.0 + lease_for(0.1)) / 0.1) - 1
    assert tx.sent("parked") == 200


def test_a_thread_that_comes_back_gets_its_lease_again_on_the_next_put() -> None:
    tx = Recording()
    lease = Lease(0.0)
    put(tx, "a", at=0.0, lease=lease)
    lease.busy(0.0)
    tx.run_until(3.0)
    assert lease.lost
    n = tx.sent("a")
    lease.waiting(None)
    put(tx, "a", at=3.0, lease=lease)  # what the worker does on seeing ``lost``
    assert not lease.lost
    tx.run_until(4.0)
    assert tx.sent("a") == n + 10
