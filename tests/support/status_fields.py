"""docs/STATUS.md as data: the documented fields of ``freevrrpctl status --json``.

The tests compare a real status document with the table in docs/STATUS.md,
so the documentation of that stable interface cannot drift from the code.
A field is written as a path: ``vrids[].last_transition.reason``; objects
keyed by a name use a placeholder (``links.<interface>.up``,
``vrids[].drops.<reason>``, ``vrids[].errors.<kind>``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

STATUS_MD = Path(__file__).resolve().parents[2] / "docs" / "STATUS.md"

# Objects whose keys are data (interface names, drop reasons, error kinds).
KEYED = {"links": "<interface>", "drops": "<reason>", "errors": "<kind>", "checks": "<name>"}

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|")


def documented(path: Path = STATUS_MD) -> dict[str, str]:
    """Field path -> documented type, from the tables of docs/STATUS.md."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            fields[m.group(1)] = m.group(2)
    return fields


def flatten(value: Any, path: str = "", out: dict[str, list[Any]] | None = None
            ) -> dict[str, list[Any]]:
    """Every field path of a status document with the values found there."""
    if out is None:
        out = {}
    if path:
        out.setdefault(path, []).append(value)
    if isinstance(value, dict):
        last = path.rsplit(".", 1)[-1].removesuffix("[]")
        for key, item in value.items():
            name: str = KEYED.get(last, str(key))
            flatten(item, f"{path}.{name}" if path else name, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            for key, field in item.items():
                flatten(field, f"{path}[].{key}", out)
    return out


def _is(value: Any, kind: str) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
        "list of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "list of objects": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    }
    return checks[kind](value)


def type_errors(found: dict[str, list[Any]], docs: dict[str, str]) -> list[str]:
    """Values whose type is not the documented one (``A or B`` allows both)."""
    errors = []
    for path, values in found.items():
        kinds = [k.strip() for k in docs.get(path, "").split(" or ") if k.strip()]
        for v in values:
            if kinds and not any(_is(v, k) for k in kinds):
                errors.append(f"{path} = {v!r} is not {docs[path]}")
    return errors
