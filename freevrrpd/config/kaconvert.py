"""``freevrrpd --import-keepalived FILE``: the VRRP part of a keepalived.conf as a
freevrrpd.conf, and a list of what could not be carried over.

Each ``vrrp_instance`` becomes one ``[VRID]`` section (two when its virtual
addresses mix IPv4 and IPv6, which keepalived also splits by family), headed
by a comment naming the instance and where it was written.  keepalived's
defaults are written out where ours differ (``use_vmac`` is off by default
there, ``useVMAC`` on here; its IPv4 instances speak VRRPv2 unless
``version 3`` or ``vrrp_version 3``).  The mapping, keyword by keyword, is in
docs/KEEPALIVED.md.  LVS (``virtual_server``...) is not VRRP: counted, not
listed.  ``vrrp_script`` becomes a ``[CHECK]``, ``vrrp_sync_group`` a
``[SYNCGROUP]``, ``track_script`` / ``track_interface`` / ``track_file`` the
``track*`` keywords.  What has no equivalent yet is listed with its file and
line, so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_interface

from freevrrpd.config.kaparse import Node, parse
from freevrrpd.config.values import NAME_RE

LVS = {"virtual_server", "virtual_server_group", "real_server"}
# keepalived keyword -> freevrrpd keyword, for values taken as they are.
SIMPLE = {"interface": "interface", "virtual_router_id": "serverid", "priority": "priority",
          "advert_int": "advertint", "preempt_delay": "preemptdelay",
          "garp_master_delay": "garprepeatdelay", "garp_master_repeat": "garpcount",
          "garp_master_refresh": "garprefresh",
          "garp_master_refresh_repeat": "garprefreshcount", "garp_interval": "garpinterval",
          "unicast_src_ip": "unicastsrc"}
SCRIPTS = {"notify_master": "masterscript", "notify_backup": "backupscript",
           "notify_fault": "faultscript", "notify_stop": "stopscript", "notify": "notify"}
# Taken into account elsewhere, or meaningless here (said in a comment, not listed).
NOTED = {"state": "freevrrpd elects the master; priority 255 marks the address owner",
         "smtp_alert": "no mail: see freevrrpctl status and the metrics",
         "dont_track_primary": "the interface's own state is monitoredcircuits"}


@dataclass
class Conversion:
    text: str
    routers: int
    skipped: list[str] = field(default_factory=list)  # "file:line: what and why"
    lvs: int = 0


def _value(node: Node) -> str:
    return " ".join(node.args)


def _addresses(block: Node | None, interface: str | None,
               skipped: list[str]) -> list[tuple[int, str]]:
    """``virtual_ipaddress`` entries as (family, ``[dev:]ip/prefix``); keepalived's
    default prefix is the host's (/32, /128)."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for entry in block.children if block is not None else []:
        text, words = entry.keyword, entry.args
        try:
            iface = ip_interface(text if "/" in text else f"{text}/{128 if ':' in text else 32}")
        except ValueError:
            skipped.append(f"{entry.where}: virtual_ipaddress {text}: not an address")
            continue
        device = words[words.index("dev") + 1] if "dev" in words[:-1] else None
        rest = [w for i, w in enumerate(words) if w != "dev" and (i == 0 or words[i - 1] != "dev")]
        if rest:
            skipped.append(f"{entry.where}: virtual_ipaddress {text}: {' '.join(rest)} ignored "
                           f"(label, scope, brd... are not set by freevrrpd)")
        if str(iface.ip) in seen:
            skipped.append(f"{entry.where}: virtual_ipaddress {iface.ip} listed again: kept once")
            continue
        seen.add(str(iface.ip))
        on_other = device is not None and device != interface
        out.append((iface.version,
                    f"{device}:{iface.with_prefixlen}" if on_other else iface.with_prefixlen))
    return out


def _unicast_of_family(section: dict[str, str], family: int, name: str, where: str,
                       skipped: list[str]) -> None:
    """An instance split by family keeps, in each part, the unicast addresses of that
    family; a part left without peers uses multicast (and says so)."""
    if "unicastpeer" not in section:
        return
    mine = [p for p in section["unicastpeer"].split(", ") if (":" in p) == (family == 6)]
    src = section.get("unicastsrc")
    if src is not None and (":" in src) != (family == 6):
        del section["unicastsrc"]
    if mine:
        section["unicastpeer"] = ", ".join(mine)
        return
    del section["unicastpeer"]
    section.pop("unicastsrc", None)
    skipped.append(f"{where}: vrrp_instance {name}: its IPv{family} addresses have no "
                   f"IPv{family} unicast peer: that part uses multicast")


CHECK_KEYS = ("script", "interval", "timeout", "weight", "rise", "fall")
GROUP_SCRIPTS = {"notify_master": "masterscript", "notify_backup": "backupscript",
                 "notify_fault": "faultscript", "notify": "notify"}


def _check(node: Node, skipped: list[str]) -> list[str]:
    """A vrrp_script as a [CHECK] section (none without a script line)."""
    name = _value(node)
    if node.first("script") is None:
        skipped.append(f"{node.where}: vrrp_script {name} has no script line (a "
                       "conditional one?): not converted, nor the track_script that use it")
        return []
    out = ["", f"# vrrp_script {name} ({node.where})", "[CHECK]", f"name = {name}"]
    for child in node.children:
        if child.keyword in CHECK_KEYS and child.args:
            if child.keyword == "weight" and len(child.args) > 1:
                skipped.append(f"{child.where}: weight {_value(child)}: only the number is "
                               "kept ('reverse' has no equivalent)")
            value = child.args[0] if child.keyword == "weight" else _value(child)
            out.append(f"{child.keyword} = {value}")
        else:
            skipped.append(f"{child.where}: {child.keyword} (vrrp_script {name}): no "
                           "equivalent (checks run as the daemon's user and start healthy)")
    return out


def _group(node: Node, instances: set[str],
           skipped: list[str]) -> tuple[list[str], list[str]]:
    """A vrrp_sync_group as a [SYNCGROUP] section, and its members' names."""
    name = _value(node)
    out = ["", f"# vrrp_sync_group {name} ({node.where})", "[SYNCGROUP]", f"name = {name}"]
    members: list[str] = []
    for child in node.children:
        if child.keyword == "group":
            members += [c.keyword for c in child.children]
        elif child.keyword in GROUP_SCRIPTS:
            out.append(f"{GROUP_SCRIPTS[child.keyword]} = {_value(child)}")
        elif child.keyword == "sync_group_tracking_weight":
            out.append("trackingweight = yes")
        elif not child.args and not child.children and child.keyword in instances:
            members.append(child.keyword)  # old samples list the members bare
        else:
            skipped.append(f"{child.where}: {child.keyword} (vrrp_sync_group {name}): no "
                           "equivalent yet")
    return out, members


def _tracks(child: Node, files: dict[str, tuple[str, str]], checks: set[str],
            skipped: list[str]) -> str:
    """track_script / track_interface / track_file entries as ``NAME [weight N]``."""
    items = []
    for entry in child.children:
        name, words = entry.keyword, entry.args
        weight = words[words.index("weight") + 1] if "weight" in words[:-1] else None
        if child.keyword == "track_script" and name not in checks:
            skipped.append(f"{entry.where}: track_script {name}: no vrrp_script converted of "
                           "that name")
            continue
        if child.keyword == "track_file":
            if name not in files:
                skipped.append(f"{entry.where}: track_file {name}: no vrrp_track_file of that "
                               "name")
                continue
            name, weight = files[name][0], weight or files[name][1]
        items.append(name if weight is None else f"{name} weight {weight}")
    return ", ".join(items)


def _instance(node: Node, default_version: int, skipped: list[str],
              groups: dict[str, str] | None = None,
              files: dict[str, tuple[str, str]] | None = None,
              checks: set[str] | None = None) -> list[str]:
    name = node.args[0] if node.args else "?"
    lines: dict[str, str] = {}
    if groups and name in groups:
        lines["syncgroup"] = groups[name]
    if NAME_RE.fullmatch(name):
        lines["name"] = name  # what a generic notify script is told
    notes: list[str] = []
    interface = None
    for child in node.children:
        key = child.keyword
        if key in SIMPLE:
            lines[SIMPLE[key]] = _value(child)
            if key == "interface":
                interface = _value(child)
        elif key in SCRIPTS:
            lines[SCRIPTS[key]] = _value(child)
        elif key == "version":
            lines["version"] = _value(child)
        elif key == "nopreempt":
            lines["preempt"] = "no"
        elif key in ("accept", "no_accept"):
            lines["accept"] = "yes" if key == "accept" else "no"
        elif key == "use_vmac":
            lines["useVMAC"] = "yes"
        elif key == "authentication":
            kind, password = child.first("auth_type"), child.first("auth_pass")
            if kind is not None and _value(kind).upper() == "PASS" and password is not None:
                # RFC 3768 5.3.10: eight octets; keepalived cuts a longer one the same way.
                lines["password"] = _value(password)[:8]
                if len(_value(password)) > 8:
                    skipped.append(f"{password.where}: auth_pass longer than 8 characters: "
                                   "only its first 8 are used (keepalived does the same)")
            else:
                skipped.append(f"{child.where}: authentication other than PASS (IPsec AH) "
                               "is not implemented")
        elif key == "unicast_peer":
            lines["unicastpeer"] = ", ".join(c.keyword for c in child.children)
        elif key in ("track_script", "track_interface", "track_file"):
            items = _tracks(child, files or {}, checks or set(), skipped)
            if items:
                lines[key.replace("_", "")] = items
        elif key in NOTED:
            notes.append(f"# {' '.join([key, *child.args])}: {NOTED[key]}")
        elif key != "virtual_ipaddress":
            skipped.append(f"{child.where}: {key} (vrrp_instance {name}): no equivalent yet")
    lines.setdefault("useVMAC", "no")  # keepalived's default; freevrrpd's is yes
    addrs = _addresses(node.first("virtual_ipaddress"), interface, skipped)
    families = {f: [text for fam, text in addrs if fam == f] for f in (4, 6)}
    split = all(families.values())
    out: list[str] = []
    for family, group in families.items():
        if not group:
            continue
        section = dict(lines)
        _unicast_of_family(section, family, name, node.where, skipped)
        # IPv6 exists only in VRRPv3 (RFC 5798): keepalived switches such an instance too.
        version = "3" if family == 6 else section.get("version") or str(default_version)
        section["version"] = version
        if version == "3":
            section.pop("password", None)  # keepalived ignores it with VRRPv3 as well
        what = f", its IPv{family} addresses" if split else ""
        out += ["", f"# vrrp_instance {name} ({node.where}){what}", *notes, "[VRID]"]
        order = ["serverid", "interface", "version", "priority", "advertint"]
        for key in order + sorted(k for k in section if k not in order):
            if key in section:
                out.append(f"{key} = {section[key]}")
        out.append(f"addr = {', '.join(group)}")
    if not addrs:
        skipped.append(f"{node.where}: vrrp_instance {name} has no virtual_ipaddress: "
                       "not converted")
    return out


def convert(path: str) -> Conversion:
    root = parse(path)
    skipped: list[str] = []
    default_version = 2
    lvs = 0
    for node in root.children:
        if node.keyword == "global_defs":
            version = node.first("vrrp_version")
            if version is not None:
                default_version = int(_value(version)) if _value(version) in ("2", "3") else 2
            for other in node.children:
                if other.keyword.startswith("vrrp_") and other.keyword != "vrrp_version":
                    skipped.append(f"{other.where}: global_defs {other.keyword}: no equivalent "
                                   "yet")
    body: list[str] = []
    routers = 0
    groups: dict[str, str] = {}
    files: dict[str, tuple[str, str]] = {}  # vrrp_track_file name -> (path, weight)
    checks: set[str] = set()
    instances = {n.args[0] for n in root.children if n.keyword == "vrrp_instance" and n.args}
    for node in root.children:
        if node.keyword == "vrrp_sync_group":
            section, members = _group(node, instances, skipped)
            body += section
            groups.update(dict.fromkeys(members, _value(node)))
        elif node.keyword == "vrrp_script":
            section = _check(node, skipped)
            if section:
                checks.add(_value(node))
            body += section
        elif node.keyword == "vrrp_track_file":
            where, given = node.first("file"), node.first("weight")
            if where is not None:
                files[_value(node)] = (_value(where), _value(given) if given else "1")
    for node in root.children:
        if node.keyword == "vrrp_instance":
            section = _instance(node, default_version, skipped, groups, files, checks)
            routers += section.count("[VRID]")
            body += section
        elif node.keyword in LVS:
            lvs += 1
        elif node.keyword not in ("global_defs", "vrrp_sync_group", "vrrp_script",
                                  "vrrp_track_file"):
            skipped.append(f"{node.where}: {node.keyword} {_value(node)}: no equivalent yet"
                           .replace("  ", " "))
    head = [f"# freevrrpd.conf converted from {path} by freevrrpd --import-keepalived.",
            "# Check it with freevrrpd -t -f FILE; see docs/KEEPALIVED.md for the mapping."]
    return Conversion("\n".join(head + body) + "\n", routers, skipped, lvs)
