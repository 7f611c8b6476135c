"""What other threads may ask of a virtual router's thread: a union of typed records.

Posted with ``VridWorker.post``; the worker's thread carries them out in order,
between its own events, so it stays the only thread that touches the router.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from freevrrpd.core.linkhold import FaultChange
from freevrrpd.core.tracking import TrackChange
from freevrrpd.net.linkwatch import AddressChange, LinkIndex


class Control(enum.Enum):
    """Requests that carry no data."""

    STOP = "resign and end the thread (shutdown, or a reload that removes the router)"
    DUMP = "write the router's status to the log (SIGUSR1)"
    WAKE = "the Master_Down deadline the repeats tap keeps passed with no repeat"


@dataclass(frozen=True)
class Call:
    """Run ``fn(now)`` on the router's thread (status snapshots, reloads)."""

    fn: Callable[[float], None]


# What the link monitor learns is posted as it is: a FaultChange of the link
# hold-down policy (core.linkhold), an interface gone or back (LinkIndex), an
# address that may be our new source (AddressChange); a tracked item's new value
# (TrackChange, from the link monitor and the checks' thread).
Command = FaultChange | LinkIndex | AddressChange | TrackChange | Control | Call
