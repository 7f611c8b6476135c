"""What the core asks the world to do.

The state machine never acts; it returns these small frozen records and the
daemon's adapters carry them out, in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from freevrrpd.core.settings import IPAddress


class State(enum.Enum):
    """RFC 5798 section 6.4 states, plus FAULT for "not eligible"."""

    INITIALIZE = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    # Not eligible to be master: link down, address conflict, dependency failed.
    # Behaves like Initialize towards the network (no adverts, no addresses).
    FAULT = "FAULT"
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class SendAdvert:
    """Send an advertisement with this priority (0 = resigning, RFC 5798 6.4.3)."""

    priority: int


@dataclass(frozen=True)
class Advertise:
    """From now on, send an advert with this priority every advert interval (the
    periodic adverts of a master, RFC 5798 6.4.3, handed to a shared transmitter)."""

    priority: int


@dataclass(frozen=True)
class Silence:
    """Stop the periodic adverts of ``Advertise`` (before a resignation, or a change)."""


@dataclass(frozen=True)
class ExpectRepeats:
    """The advert just accepted from the current master (``payload`` from ``src``,
    Ethernet source ``mac``, to ``dst``) would, arriving again unchanged, only
    restart the Master_Down_Timer (RFC 5798 6.4.2): repeats of it may be counted
    elsewhere and reported with ``Router.repeats_arrived`` instead of one by one."""

    src: IPAddress
    mac: bytes
    dst: IPAddress
    payload: bytes


@dataclass(frozen=True)
class StopRepeats:
    """Every advert must reach ``Router.receive`` again."""


@dataclass(frozen=True)
class ClaimAddresses:
    """Install the virtual addresses (and the virtual MAC when in use)."""


@dataclass(frozen=True)
class ReleaseAddresses:
    """Remove the virtual addresses (and the virtual MAC when in use)."""


@dataclass(frozen=True)
class Announce:
    """Gratuitous ARP / unsolicited NA for every virtual address (RFC 5798 6.4.1)."""

    reason: str


@dataclass(frozen=True)
class RunHook:
    """Run the transition script for ``new`` (``masterscript`` etc.)."""

    new: State
    old: State
    priority: int


@dataclass(frozen=True)
class Transition:
    """A state change, for the log: says why and which priorities were involved."""

    old: State
    new: State
    reason: str
    priority: int
    peer_priority: int | None = None


@dataclass(frozen=True)
class PriorityChange:
    """The effective priority changed (tracking, a demotion, a reload): says why."""

    old: int
    new: int
    reason: str


Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Report:
    """Something an operator should read once: a misconfigured peer, a conflict.
    ``topic`` sorts it in the event stream (``conflict`` for address conflicts)."""

    level: Level
    message: str
    topic: str = "report"


@dataclass(frozen=True)
class StartProbe:
    """Probe the virtual addresses before they may be claimed (RFC 5227 2.1.1 ARP
    probe, RFC 4862 5.4 duplicate address detection) for ``window`` seconds, and
    report every holder with ``Router.probe_finished``.  The source addresses of
    the VRID's other routers (``peers``) are probed too: their answers say which
    real MACs belong to routers of this VRID."""

    addresses: tuple[IPAddress, ...]
    window: float
    peers: tuple[IPAddress, ...] = ()


Action = (SendAdvert | Advertise | Silence | ExpectRepeats | StopRepeats | ClaimAddresses
          | ReleaseAddresses | Announce | RunHook | Transition | PriorityChange | Report
          | StartProbe)
