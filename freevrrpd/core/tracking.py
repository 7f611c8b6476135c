"""Priorities that follow health: tracked checks, interfaces and files, free of I/O.

keepalived's semantics, which operators bring with them (vrrp_script,
track_interface, track_file): a tracked item with a negative weight lowers
the priority by its weight while it fails, one with a positive weight raises
it by its weight while it is healthy, and one with weight 0 makes the virtual
router not eligible (FAULT) while it fails.  A track file holds a number that
is multiplied by its weight (weight 0: any number but 0 is a failure).  The
effective priority is clamped to 1..254; an address owner (255) keeps 255
(RFC 5798 6.1: only the owner may use it, and it is never lowered).  A
runtime demotion (``freevrrpctl demote``) is one more such item.

Values come from the daemon (``daemon.tracking``): 1 healthy / 0 failing for
checks and interfaces, the number read for files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TrackKey = tuple[str, str]  # (kind, name): ("script", check), ("interface", ifname), ("file", path)
MAX_WEIGHT = 254
OWNER = 255


@dataclass(frozen=True)
class CheckScript:
    """A ``[CHECK]`` section (keepalived's vrrp_script): run ``script`` every
    ``interval`` seconds, killed after ``timeout``; ``fall`` failures in a row
    make it failing, ``rise`` successes in a row healthy again."""

    name: str
    script: str
    interval: float = 1.0
    timeout: float = 1.0
    weight: int = 0
    rise: int = 1
    fall: int = 1
    line: int = 0  # the section's header line, for messages


@dataclass(frozen=True)
class Track:
    """One tracked item of a virtual router and its weight."""

    kind: str  # "script", "interface" or "file"
    name: str
    weight: int
    check: CheckScript | None = None  # for kind "script"

    @property
    def key(self) -> TrackKey:
        return (self.kind, self.name)

    def __str__(self) -> str:
        what = {"script": "check", "interface": "interface", "file": "track file"}[self.kind]
        return f"{what} {self.name}"


@dataclass(frozen=True)
class TrackChange:
    """For the thread of router ``key`` (VRID, family, interface): a tracked item's
    new value."""

    key: tuple[int, int, str]
    track: TrackKey
    value: int


@dataclass(frozen=True)
class Demotion:
    """Set at run time by an operator: lower the priority by ``by``, or (``by`` None)
    make the router not eligible; ``uid`` is who asked."""

    by: int | None
    uid: int

    @property
    def reason(self) -> str:
        return f"demoted by freevrrpctl (uid {self.uid})"


def healthy(track: Track, value: int) -> bool:
    if track.kind == "file":
        return value == 0 if track.weight == 0 else value * track.weight > -MAX_WEIGHT
    return bool(value)


def contribution(track: Track, value: int) -> int:
    """What the item adds to the priority now (0 for weight 0)."""
    if track.kind == "file":
        return max(-MAX_WEIGHT, min(MAX_WEIGHT, value * track.weight))
    if track.weight > 0:
        return track.weight if value else 0
    return 0 if value else track.weight


def fault_reason(track: Track, value: int) -> str:
    if track.kind == "file":
        return f"{track} holds {value}"
    return f"{track} {'down' if track.kind == 'interface' else 'failing'}"


class Tracking:
    """The tracked items of one virtual router and their last known values."""

    def __init__(self, tracks: Sequence[Track], values: Mapping[TrackKey, int] | None = None,
                 previous: Tracking | None = None) -> None:
        self.tracks = tuple(tracks)
        known = dict(previous.values) if previous is not None else {}
        known.update(values or {})
        # Unknown until told: a check is healthy until it fails (keepalived's
        # default), an interface up, a file 0.
        self.values: dict[TrackKey, int] = {
            t.key: known.get(t.key, 0 if t.kind == "file" else 1) for t in self.tracks}
        self.demotion: Demotion | None = previous.demotion if previous is not None else None

    def record(self, key: TrackKey, value: int) -> bool:
        """Record a value; whether it changed."""
        if key not in self.values or self.values[key] == value:
            return False
        self.values[key] = value
        return True

    def effective(self, base: int) -> int:
        if base >= OWNER:
            return OWNER
        total = base + sum(contribution(t, self.values[t.key]) for t in self.tracks
                           if t.weight != 0)
        if self.demotion is not None and self.demotion.by is not None:
            total -= self.demotion.by
        return max(1, min(MAX_WEIGHT, total))

    def faults(self) -> set[str]:
        """Reasons for not being eligible: failing items of weight 0 (and files past
        -254), and a demotion to not eligible."""
        out = {fault_reason(t, self.values[t.key]) for t in self.tracks
               if (t.weight == 0 or t.kind == "file") and not healthy(t, self.values[t.key])}
        if self.demotion is not None and self.demotion.by is None:
            out.add(self.demotion.reason)
        return out

    def why(self, key: TrackKey) -> str:
        """The log's words for the item's current value."""
        for t in self.tracks:
            if t.key == key:
                value = self.values[key]
                if t.kind == "file":
                    return f"{t} holds {value} (weight {t.weight:+d})"
                state = ("up" if value else "down") if t.kind == "interface" else \
                    ("healthy" if value else "failing")
                return f"{t} {state} (weight {t.weight:+d})"
        return str(key)

    def describe(self) -> list[dict[str, object]]:
        """For status: every item, its weight, value and what it adds now."""
        return [{"kind": t.kind, "name": t.name, "weight": t.weight,
                 "value": self.values[t.key],
                 "healthy": healthy(t, self.values[t.key]),
                 "adds": contribution(t, self.values[t.key]) if t.weight else 0}
                for t in self.tracks]


class CheckState:
    """Rise and fall of one check (keepalived's vrrp_script rise/fall)."""

    def __init__(self, check: CheckScript, ok: bool = True) -> None:
        self.check = check
        self.ok = ok
        self.streak = 0  # results in a row that disagree with ``ok``

    def result(self, ok: bool) -> bool:
        """Take one run's outcome; True when the check's status changed."""
        if ok == self.ok:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.check.rise if ok else self.check.fall):
            self.ok, self.streak = ok, 0
            return True
        return False
