"""YAML front-end of the config reader.

Accepted shapes (keywords are the freevrrpd.conf keywords, any case)::

    - serverid: 1              vrids:
      interface: eth0            - serverid: 1
      addr: 192.0.2.1/24           interface: eth0
                                   addr: [192.0.2.1/24, 192.0.2.2/24]

The document is composed (not constructed) so every node keeps its line, and
scalars are taken as their source text: ``preempt: yes`` and
``advertint: 0.05`` reach the same value parsers as the .conf format, with no
YAML 1.1 surprises (``on`` as a bool, ``1:30`` as sexagesimal, ...).
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from freevrrpd.config.problems import Problems, RawEntry, RawSection

_NULL_TAG = "tag:yaml.org,2002:null"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def read_yaml(text: str, problems: Problems) -> list[RawSection] | None:
    """Raw sections of a YAML document; None when it could not be read at all."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.add(int(mark.line) + 1 if mark else 0, None, f"YAML syntax error: {exc.problem}")
        return None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, e.g. NUL
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problems.add(line, None, f"YAML error: character U+{char:04X} is not allowed")
        return None
    except yaml.YAMLError as exc:
        problems.add(0, None, f"YAML error: {exc}")
        return None
    except RecursionError:  # the composer recurses once per nesting level
        problems.add(0, None, "YAML error: nested too deeply")
        return None
    if root is None:
        return []
    items = _router_nodes(root, problems)
    if items is None:
        return None
    sections: list[RawSection] = []
    for kind, item in items:
        if not isinstance(item, MappingNode):
            what = KINDS_TEXT[kind]
            problems.add(_line(item), None, f"{what} must be a mapping of keyword: value")
            continue
        section = _section(item, problems)
        section.kind = kind
        sections.append(section)
    if problems and not sections:
        return None  # already explained; "no virtual router" would only repeat it
    return sections


# Top-level keys: the sections of freevrrpd.conf, each a list of mappings.
KINDS = {"vrids": "VRID", "checks": "CHECK", "syncgroups": "SYNCGROUP"}
KINDS_TEXT = {"VRID": "a virtual router", "CHECK": "a check", "SYNCGROUP": "a sync group"}


def _router_nodes(root: Node, problems: Problems) -> list[tuple[str, Node]] | None:
    if isinstance(root, SequenceNode):
        return [("VRID", n) for n in root.value]
    if isinstance(root, MappingNode):
        found: list[tuple[str, Node]] = []
        vrids = False
        for key, value in root.value:
            name = key.value if isinstance(key, ScalarNode) else None
            kind = KINDS.get(name.lower()) if isinstance(name, str) else None
            if kind is None:
                problems.add(_line(key), name, "unknown top-level key; expected 'vrids' "
                             "(and 'checks', 'syncgroups')")
            elif not isinstance(value, SequenceNode):
                problems.add(_line(value), name, f"expected a list of {KINDS_TEXT[kind][2:]}s")
            else:
                vrids = vrids or kind == "VRID"
                found += [(kind, n) for n in value.value]
        if not vrids and problems:
            return None
        return found
    problems.add(_line(root), None, "expected a list of virtual routers (or 'vrids:' and a list)")
    return None


def _section(node: MappingNode, problems: Problems) -> RawSection:
    section = RawSection(_line(node))
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            problems.add(_line(key), None, "a keyword must be a plain word")
            continue
        keyword = str(key.value)
        text = _value_text(keyword, _line(key), value, problems)
        if text is not None:
            section.entries.append(RawEntry(keyword, text, _line(key)))
    return section


def _value_text(keyword: str, line: int, node: Node, problems: Problems) -> str | None:
    """The value as text, as it would read in freevrrpd.conf."""
    if isinstance(node, ScalarNode):
        return "" if node.tag == _NULL_TAG else str(node.value).strip()
    if isinstance(node, SequenceNode):
        # A list is the .conf comma list (addr, vridsdep).
        parts: list[str] = []
        for item in node.value:
            if not isinstance(item, ScalarNode) or item.tag == _NULL_TAG:
                problems.add(_line(item), keyword, "list items must be single values")
                return None
            parts.append(str(item.value).strip())
        return ", ".join(parts) if parts else ""
    problems.add(line, keyword, "expected a value or a list, got a mapping")
    return None
