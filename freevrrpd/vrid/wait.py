"""Waiting for descriptors or a deadline, on time (the router thread's only wait)."""

from __future__ import annotations

import select
import time

FD_SETSIZE = 1024  # select() cannot watch descriptors at or above this
# Longer waits end early by 1/500 of their length, then sleep the rest.
SLACK_SPLIT = 0.2  # seconds


def wait_readable(fds: list[int], timeout: float | None) -> list[int]:
    """The descriptors of ``fds`` that became readable within ``timeout`` seconds.

    A timer must not fire late: Linux lets a select()/poll() timeout run over
    by 0.1 % of its length (the kernel's select_estimate_accuracy), a whole
    millisecond on a 1 s advert interval.  Such a wait ends a little early and
    a plain sleep, late by only the 50 us timer slack, covers the rest.
    select() cannot take descriptors past FD_SETSIZE, which a daemon with more
    than a hundred or so VRIDs has; poll() can but counts whole milliseconds,
    so the sleep covers the fraction too.  A frame that arrived during the
    sleep is reported, so it is handled before the timer.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    if timeout is not None and timeout > SLACK_SPLIT:
        timeout -= timeout / 500
    poller: select.poll | None = None
    if max(fds) < FD_SETSIZE:
        ready: list[int] = select.select(fds, [], [], timeout)[0]
    else:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        ready = [fd for fd, _ in poller.poll(None if timeout is None else int(timeout * 1000))]
    rest = 0.0 if deadline is None else deadline - time.monotonic()
    if ready or rest <= 0:
        return ready
    time.sleep(rest)
    if poller is not None:
        return [fd for fd, _ in poller.poll(0)]
    return select.select(fds, [], [], 0)[0]
