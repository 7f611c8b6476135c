"""``[CHECK]`` and ``[SYNCGROUP]`` sections, and the keywords that use them.

In the file's style::

    [CHECK]                          [SYNCGROUP]
    name = chk_http                  name = uplinks
    script = /usr/local/bin/chk      masterscript = /etc/vrrp/group-master
    interval = 2                     notify = /etc/vrrp/group-notify
    timeout = 1
    weight = -50
    rise = 2
    fall = 2

    [VRID]
    ...
    trackscript = chk_http, chk_db weight -20
    trackinterface = eth2 weight -30, eth3
    trackfile = /run/freevrrpd/prio weight 1
    syncgroup = uplinks

A tracked item takes ``weight N`` after its name (keepalived's words); without
it a check has the weight of its section, an interface 0 (not eligible while
down, as ``monitoredcircuits``) and a file 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from freevrrpd.config.problems import Problems, RawEntry, RawSection
from freevrrpd.config.suggest import suggestion
from freevrrpd.config.values import (
    BadValue,
    parse_bool,
    parse_command,
    parse_int,
    parse_interface_name,
    parse_name,
    parse_seconds,
    split_list,
)
from freevrrpd.core.settings import SyncGroup
from freevrrpd.core.tracking import MAX_WEIGHT, CheckScript, Track

CHECK_KEYWORDS = ("name", "script", "interval", "timeout", "weight", "rise", "fall")
GROUP_KEYWORDS = ("name", "masterscript", "backupscript", "faultscript", "notify",
                  "trackingweight")
GROUP_SCRIPTS = GROUP_KEYWORDS[1:5]
VRID_KEYWORDS = ("trackscript", "trackinterface", "trackfile", "syncgroup")
T = TypeVar("T")
_ITEM = re.compile(r"(?P<name>\S+)(?:\s+weight\s+(?P<weight>\S+))?", re.I)


def parse_weight(text: str) -> int:
    word = text.strip()
    negative = word.startswith("-")
    value = parse_int(word.lstrip("+-") if word[:1] in "+-" else word, 0, 10**6)
    value = -value if negative else value
    if not -MAX_WEIGHT <= value <= MAX_WEIGHT:
        raise BadValue(f"weight {value} is out of range -{MAX_WEIGHT}..{MAX_WEIGHT}")
    return value


def _entries(raw: RawSection, known: tuple[str, ...], what: str,
             problems: Problems) -> dict[str, RawEntry]:
    found: dict[str, RawEntry] = {}
    for e in raw.entries:
        name = e.keyword.lower()
        if name not in known:
            problems.add(e.line, e.keyword, f"unknown keyword in a [{what}] section"
                         + suggestion(e.keyword, known))
        elif name in found:
            problems.add(e.line, e.keyword, f"given twice in one section (first at line "
                         f"{found[name].line})")
        elif not e.value:
            problems.add(e.line, e.keyword, "no value given")
        else:
            found[name] = e
    if "name" not in found:
        problems.add(raw.line, "name", f"required, but missing from this [{what}] section")
    return found


def _value(entries: Mapping[str, RawEntry], name: str, parse: Callable[[str], T],
           problems: Problems, default: T) -> T:
    entry = entries.get(name)
    if entry is None:
        return default
    try:
        return parse(entry.value)
    except BadValue as exc:
        problems.add(entry.line, entry.keyword, str(exc))
        return default


def _taken(name: str, defined: Mapping[str, CheckScript | SyncGroup],
           entries: Mapping[str, RawEntry], what: str, problems: Problems) -> bool:
    if name not in defined:
        return False
    problems.add(entries["name"].line, "name", f"a {what} named {name!r} is already defined "
                 f"at line {defined[name].line}")
    return True


def build_checks(sections: list[RawSection], problems: Problems) -> dict[str, CheckScript]:
    checks: dict[str, CheckScript] = {}
    for raw in sections:
        e = _entries(raw, CHECK_KEYWORDS, "CHECK", problems)
        name: str | None = _value(e, "name", parse_name, problems, None)
        script: str | None = _value(e, "script", parse_command, problems, None)
        if "script" not in e:
            problems.add(raw.line, "script", "required, but missing from this [CHECK] section")
        interval = _value(e, "interval", lambda t: parse_seconds(t, 0.01, 3600), problems, 1.0)
        timeout = _value(e, "timeout", lambda t: parse_seconds(t, 0.01, 3600), problems,
                         interval)
        weight = _value(e, "weight", parse_weight, problems, 0)
        rise = _value(e, "rise", lambda t: parse_int(t, 1, 1000), problems, 1)
        fall = _value(e, "fall", lambda t: parse_int(t, 1, 1000), problems, 1)
        if name is None or script is None or _taken(name, checks, e, "check", problems):
            continue
        checks[name] = CheckScript(name, script, interval, timeout, weight, rise, fall, raw.line)
    return checks


def build_groups(sections: list[RawSection], problems: Problems) -> dict[str, SyncGroup]:
    groups: dict[str, SyncGroup] = {}
    for raw in sections:
        e = _entries(raw, GROUP_KEYWORDS, "SYNCGROUP", problems)
        name: str | None = _value(e, "name", parse_name, problems, None)
        scripts: dict[str, str | None] = {
            k: _value(e, k, parse_command, problems, None) for k in GROUP_SCRIPTS}
        weights = _value(e, "trackingweight", parse_bool, problems, False)
        if name is None or _taken(name, groups, e, "sync group", problems):
            continue
        groups[name] = SyncGroup(name, scripts["masterscript"], scripts["backupscript"],
                                 scripts["faultscript"], scripts["notify"], raw.line, weights)
    return groups


def _items(entry: RawEntry, problems: Problems) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    try:
        parts = split_list(entry.value)
    except BadValue as exc:
        problems.add(entry.line, entry.keyword, str(exc))
        return out
    for part in parts:
        m = _ITEM.fullmatch(part.strip())
        if m is None:
            problems.add(entry.line, entry.keyword, f"{part!r}: expected NAME or NAME weight N")
            continue
        try:
            weight = parse_weight(m["weight"]) if m["weight"] is not None else None
        except BadValue as exc:
            problems.add(entry.line, entry.keyword, f"{part!r}: {exc}")
            continue
        if any(name == m["name"] for name, _w in out):
            problems.add(entry.line, entry.keyword, f"{m['name']!r} is listed twice")
            continue
        out.append((m["name"], weight))
    return out


def vrid_tracks(entries: Mapping[str, RawEntry], checks: Mapping[str, CheckScript],
                groups: Mapping[str, SyncGroup], problems: Problems,
                used: set[str]) -> dict[str, object]:
    """The ``tracks`` and ``sync_group`` of one [VRID] section (its keywords by
    lower-case name); the names of the checks it uses are added to ``used``."""
    tracks: list[Track] = []
    if (entry := entries.get("trackscript")) is not None:
        for name, weight in _items(entry, problems):
            check = checks.get(name)
            if check is None:
                known = ", ".join(sorted(checks)) or "none: define it in a [CHECK] section"
                problems.add(entry.line, entry.keyword, f"no check named {name!r} (known: "
                             f"{known})")
                continue
            used.add(name)
            tracks.append(Track("script", name, check.weight if weight is None else weight,
                                check))
    if (entry := entries.get("trackinterface")) is not None:
        for name, weight in _items(entry, problems):
            try:
                parse_interface_name(name)
            except BadValue as exc:
                problems.add(entry.line, entry.keyword, str(exc))
                continue
            tracks.append(Track("interface", name, 0 if weight is None else weight))
    if (entry := entries.get("trackfile")) is not None:
        for name, weight in _items(entry, problems):
            if not name.startswith("/"):
                problems.add(entry.line, entry.keyword, f"{name!r}: give an absolute path")
                continue
            tracks.append(Track("file", name, 1 if weight is None else weight))
    out: dict[str, object] = {}
    if (entry := entries.get("syncgroup")) is not None:
        group = groups.get(entry.value)
        if group is None:
            known = ", ".join(sorted(groups)) or "none: define it in a [SYNCGROUP] section"
            problems.add(entry.line, entry.keyword, f"no sync group named {entry.value!r} "
                         f"(known: {known})")
        else:
            out["sync_group"] = group
            if not group.tracking_weight and any(t.weight for t in tracks):
                # keepalived's rule: in a sync group a failing item is a fault.
                problems.warn(entry.line, entry.keyword, f"in sync group {group.name} the "
                              "tracking weights count as 0 (a failing item makes the group "
                              "not eligible); set trackingweight = yes in its [SYNCGROUP] to "
                              "use them")
                tracks = [Track(t.kind, t.name, 0, t.check) for t in tracks]
    if tracks:
        out["tracks"] = tuple(tracks)
    return out


def unused_checks(checks: Mapping[str, CheckScript], used: set[str],
                  problems: Problems) -> None:
    for name, check in checks.items():
        if name not in used:
            problems.warn(check.line, "name", f"check {name!r} is tracked by no [VRID]; "
                          "it is not run")
