"""Validate raw sections into frozen ``RouterSettings``.

One validator for both file formats.  Every problem is recorded and the work
goes on, so a file with five mistakes reports five, each with its line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from freevrrpd.config.problems import Problems, RawEntry, RawSection
from freevrrpd.config.suggest import suggestion
from freevrrpd.config.tracks import (
    VRID_KEYWORDS,
    build_checks,
    build_groups,
    unused_checks,
    vrid_tracks,
)
from freevrrpd.config.values import (
    BadValue,
    family_of,
    parse_address,
    parse_advert_int_cs,
    parse_bool,
    parse_command,
    parse_decimal,
    parse_host,
    parse_int,
    parse_interface_name,
    parse_name,
    parse_password,
    parse_peer_list,
    parse_seconds,
    parse_vrid_list,
    split_list,
)
from freevrrpd.core.settings import RouterSettings, Source, VirtualAddress


def _parse_priority(text: str) -> int:
    if text.strip() == "0":
        # RFC 3768 5.3.4 / RFC 5798 5.2.4: priority 0 only signals that the
        # current master is giving up; it is never a configured priority.
        raise BadValue(
            "priority 0 is reserved for a master that resigns (RFC 5798 5.2.4); use 1..255"
        )
    return parse_int(text, 1, 255)


def _parse_hook_timeout(text: str) -> float:
    return parse_seconds(text, 0.01, 3600)


def _ints(lo: int, hi: int) -> Callable[[str], int]:
    return partial(parse_int, lo=lo, hi=hi)


def _secs(lo: float, hi: float) -> Callable[[str], float]:
    return partial(parse_seconds, lo=lo, hi=hi)


# Keywords that map straight onto one RouterSettings field, with no dependence
# on other keywords, by kind of value: canonical (lower-case) keyword -> field.
BOOLEANS = {"monitoredcircuits": "monitored_circuits", "usevmac": "use_vmac",
            "sendgratuitousarp": "send_gratuitous_arp", "preempt": "preempt",
            "accept": "accept", "conflictcheck": "conflict_check",
            "dynamicinterfaces": "dynamic_interfaces",
            "unicastttlcheck": "unicast_ttl_check"}
# presharedkey is only meaningful with AHencryption, which is refused below;
# accepted and kept (unused) so that the original's files load unchanged.
COMMANDS = {"masterscript": "masterscript", "backupscript": "backupscript",
            "faultscript": "faultscript", "stopscript": "stopscript",
            "presharedkey": "preshared_key", "notify": "notify"}
# ... and those with a range: keyword -> (field, parser).
RANGED: dict[str, tuple[str, Callable[[str], Any]]] = {
    "priority": ("priority", _parse_priority),
    "hooktimeout": ("hook_timeout", _parse_hook_timeout),
    "mcclearerrorscount": ("mc_clear_errors_count", _ints(0, 1_000_000)),
    "carriertimeout": ("carrier_timeout", _secs(0, 3600)),
    "spanningtreelatency": ("spanning_tree_latency", _secs(0, 3600)),
    "preemptdelay": ("preempt_delay", _secs(0, 3600)),
    "garpcount": ("garp_count", _ints(0, 100)),
    "garpinterval": ("garp_interval", _secs(0, 60)),
    "garprepeatdelay": ("garp_repeat_delay", _secs(0, 3600)),
    "garprefresh": ("garp_refresh", _secs(0, 86400)),
    "garprefreshcount": ("garp_refresh_count", _ints(1, 100)),
    "name": ("name_text", parse_name),
}
SIMPLE: dict[str, tuple[str, Callable[[str], Any]]] = {
    **RANGED,
    **{keyword: (name, parse_bool) for keyword, name in BOOLEANS.items()},
    **{keyword: (name, parse_command) for keyword, name in COMMANDS.items()},
}

# Keywords whose checks depend on other keywords of the section or the file.
SPECIAL = (
    "serverid",
    "interface",
    "addr",
    "version",
    "advertint",
    "password",
    "checksumpseudoheader",
    "ahencryption",
    "useike",
    "vridsdep",
    "unicastpeer",
    "unicastsrc",
    *VRID_KEYWORDS,
)

KEYWORDS: frozenset[str] = frozenset(SIMPLE) | frozenset(SPECIAL)
REQUIRED = ("serverid", "interface", "addr")


@dataclass
class _Section:
    """What could be read from one section, even if parts of it were wrong."""

    raw: RawSection
    values: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, RawEntry] = field(default_factory=dict)
    vrid: int | None = None
    family: int | None = None
    interface: str | None = None
    vrids_dep: tuple[int, ...] = ()


class _Builder:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def error(self, entry: RawEntry, message: str) -> None:
        self.problems.add(entry.line, entry.keyword, message)

    def parse(self, sec: _Section, name: str, parser: Callable[[str], Any]) -> Any:
        entry = sec.entries.get(name)
        if entry is None:
            return None
        try:
            return parser(entry.value)
        except BadValue as exc:
            self.error(entry, str(exc))
            return None

    def index(self, sec: _Section) -> None:
        for entry in sec.raw.entries:
            name = entry.keyword.lower()
            if name not in KEYWORDS:
                self.error(entry, "unknown keyword" + suggestion(entry.keyword, KEYWORDS))
            elif name in sec.entries:
                first = sec.entries[name].line
                self.error(entry, f"given twice in one section (first at line {first})")
            else:
                sec.entries[name] = entry  # present, even if unusable: no "missing" too
                if not entry.value:
                    self.error(entry, "no value given")
                elif not _is_text(entry.value):
                    self.error(entry, "the value contains characters that are not valid text")

    def section(self, raw: RawSection) -> _Section:
        sec = _Section(raw)
        self.index(sec)
        present = {n for n, e in sec.entries.items() if e.value and _is_text(e.value)}
        for name, (fieldname, parser) in SIMPLE.items():
            if name in present and (value := self.parse(sec, name, parser)) is not None:
                sec.values[fieldname] = value
        for name in REQUIRED:
            if name not in sec.entries:
                # Named at the header line: that is where the section that lacks it starts.
                self.problems.add(raw.line, name, "required, but missing from this virtual router")
        vrid = self.parse(sec, "serverid", _vrid) if "serverid" in present else None
        sec.vrid = vrid
        if "interface" in present:
            sec.interface = self.parse(sec, "interface", parse_interface_name)
        if "addr" in present:
            self.addresses(sec)
        self.version_dependent(sec, present)
        self.auth_and_ipsec(sec, present)
        self.unicast(sec, present)
        if "vridsdep" in present:
            deps = self.parse(sec, "vridsdep", parse_vrid_list)
            if deps is not None:
                if vrid is not None and vrid in deps:
                    self.error(sec.entries["vridsdep"], f"VRID {vrid} cannot depend on itself")
                sec.vrids_dep = deps
        return sec

    def addresses(self, sec: _Section) -> None:
        entry = sec.entries["addr"]
        try:
            items = split_list(entry.value)
        except BadValue as exc:
            self.error(entry, str(exc))
            return
        found: list[VirtualAddress] = []
        for item in items:
            try:
                address = parse_address(item)
            except BadValue as exc:
                self.error(entry, str(exc))
                continue
            if found and family_of(address) != family_of(found[0]):
                # RFC 5798 5.2.9: one advertisement carries one family, so one
                # virtual router is IPv4 or IPv6; use two sections (same VRID is fine).
                self.error(
                    entry,
                    f"{item!r}: mixes IPv4 and IPv6 in one virtual router; "
                    "write one [VRID] section per family",
                )
                continue
            if any(a.ip == address.ip for a in found):
                self.error(entry, f"{item!r}: address {address.ip} is listed twice")
                continue
            found.append(address)
        if len(found) > 255:
            # RFC 3768 5.3.5 / RFC 5798 5.2.5: the address count is one octet.
            self.error(entry, f"{len(found)} addresses; an advertisement carries at most 255")
        if found:
            sec.family = family_of(found[0])
            sec.values["addresses"] = tuple(found)

    def version_dependent(self, sec: _Section, present: set[str]) -> None:
        version: int | None = None
        if "version" in present:
            version = self.parse(sec, "version", partial(parse_int, lo=2, hi=3))
            if version == 2 and sec.family == 6:
                self.error(
                    sec.entries["version"],
                    "VRRPv2 is IPv4 only (RFC 3768); IPv6 addresses need version = 3 (RFC 5798)",
                )
        elif sec.family == 6:
            version = 3  # IPv6 exists only in VRRPv3 (RFC 5798), so it is implied
        else:
            version = 2
        if version is not None:
            sec.values["version"] = version
        if "advertint" in present:
            if version is None:  # still report a malformed number
                self.parse(sec, "advertint", parse_decimal)
            else:
                cs = self.parse(sec, "advertint", partial(parse_advert_int_cs, version=version))
                if cs is not None:
                    sec.values["advert_int_cs"] = cs
        if "password" in present:
            password = self.parse(sec, "password", parse_password)
            if version == 3:
                why = " (implied by the IPv6 addresses)" if "version" not in present else ""
                self.error(
                    sec.entries["password"],
                    f"version 3{why} has no "
                    "authentication (RFC 5798 removed it); remove the password",
                )
            elif password is not None:
                sec.values["password"] = password
        if "checksumpseudoheader" in present:
            with_header = self.parse(sec, "checksumpseudoheader", parse_bool)
            if with_header is False and (version == 2 or sec.family == 6):
                # RFC 5798 5.2.8: the pseudo-header is part of the v3 checksum;
                # leaving it out is a quirk of some IPv4 peers only.  The v2
                # checksum (RFC 3768 5.3.8) never had one.
                self.error(
                    sec.entries["checksumpseudoheader"],
                    "only VRRPv3 over IPv4 can leave the pseudo-header out of the checksum",
                )
            elif with_header is not None:
                sec.values["checksum_pseudo_header"] = with_header

    def unicast(self, sec: _Section, present: set[str]) -> None:
        """Adverts to listed peers instead of the group (keepalived's unicast_peer)."""
        for name, fieldname, parser in (("unicastpeer", "unicast_peers", parse_peer_list),
                                        ("unicastsrc", "unicast_src", parse_host)):
            if name not in present or (value := self.parse(sec, name, parser)) is None:
                continue
            first = value[0] if isinstance(value, tuple) else value
            if sec.family is not None and first.version != sec.family:
                self.error(sec.entries[name], f"IPv{first.version} address for an IPv"
                           f"{sec.family} virtual router (the family of its addr)")
                continue
            sec.values[fieldname] = value
        if "unicastsrc" in present and "unicastpeer" not in present:
            self.error(sec.entries["unicastsrc"], "a unicast source without unicastpeer; "
                       "list the peers, or remove it")

    def auth_and_ipsec(self, sec: _Section, present: set[str]) -> None:
        for name, fieldname, what in (
            ("ahencryption", "ah_encryption", "IPsec AH authentication"),
            ("useike", "use_ike", "IKE keying for IPsec AH"),
        ):
            if name in present and (on := self.parse(sec, name, parse_bool)) is not None:
                if on:
                    self.error(
                        sec.entries[name],
                        f"{what} is not implemented; set it to no or remove the line",
                    )
                else:
                    sec.values[fieldname] = False


def _is_text(value: str) -> bool:
    """False for lone surrogates (YAML "\\ud800" escapes), which no OS name can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _vrid(text: str) -> int:
    return parse_int(text, 1, 255)  # RFC 5798 5.2.3: VRID 1..255


def build(sections: list[RawSection], problems: Problems) -> tuple[RouterSettings, ...]:
    """Validate every section, then the rules that span sections."""
    checks = build_checks([r for r in sections if r.kind == "CHECK"], problems)
    groups = build_groups([r for r in sections if r.kind == "SYNCGROUP"], problems)
    sections = [r for r in sections if r.kind == "VRID"]
    if not sections:
        if not problems:  # else already explained (a keepalived.conf, a bad header...)
            problems.add(0, None, "no [VRID] section: the file defines no virtual router")
        return ()
    builder = _Builder(problems)
    built = [builder.section(raw) for raw in sections]
    used: set[str] = set()
    for sec in built:
        given = {k: e for k, e in sec.entries.items() if e.value and _is_text(e.value)}
        sec.values.update(vrid_tracks(given, checks, groups, problems, used))
    unused_checks(checks, used, problems)
    _cross_check(builder, built)
    if problems:
        return ()
    result: list[RouterSettings] = []
    for sec in built:
        assert sec.vrid is not None and sec.interface is not None and sec.family is not None
        result.append(
            RouterSettings(
                vrid=sec.vrid,
                interface=sec.interface,
                family=sec.family,
                vrids_dep=sec.vrids_dep,
                source=Source(problems.path, sec.raw.line,
                              tuple((e.keyword.lower(), e.line) for e in sec.raw.entries)),
                **sec.values,
            )
        )
    return tuple(result)


def _cross_check(builder: _Builder, built: list[_Section]) -> None:
    seen: dict[tuple[int, int, str], _Section] = {}
    for sec in built:
        if sec.vrid is None or sec.family is None or sec.interface is None:
            continue
        key = (sec.vrid, sec.family, sec.interface)
        first = seen.setdefault(key, sec)
        if first is not sec:
            builder.error(
                sec.entries["serverid"],
                f"VRID {sec.vrid} (IPv{sec.family}) on {sec.interface} is already "
                f"defined by the section at line {first.raw.line}",
            )
    # One address, one virtual router on an interface: two would fight over it.
    holders: dict[tuple[str, object], _Section] = {}
    for sec in built:
        for address in sec.values.get("addresses", ()):
            where = (address.device or sec.interface or "", address.ip)
            first = holders.setdefault(where, sec)
            if first is not sec:
                builder.error(sec.entries["addr"],
                              f"{address.ip} on {where[0]} is already a virtual address of "
                              f"the section at line {first.raw.line} "
                              f"(addr at line {first.entries['addr'].line})")
    # A dependency on a VRID this file does not define is a warning, not an
    # error: the original's own sample has "vridsdep = 2, 3" with no VRID 3 and
    # must load unchanged (a file shared by hosts that run different VRIDs).
    # The unknown VRIDs are dropped, so the daemon only sees real ones.
    defined = {sec.vrid for sec in built if sec.vrid is not None}
    for sec in built:
        missing = [v for v in sec.vrids_dep if v not in defined]
        if missing:
            entry = sec.entries["vridsdep"]
            names = ", ".join(str(v) for v in missing)
            builder.problems.warn(
                entry.line,
                entry.keyword,
                f"no [VRID] section with serverid {names} in this file; ignored",
            )
            sec.vrids_dep = tuple(v for v in sec.vrids_dep if v in defined)
