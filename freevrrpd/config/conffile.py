"""The freevrrpd.conf text format: repeated ``[VRID]`` sections of ``keyword = value``.

The original daemon's format, read as a superset:

* every virtual router is a section that starts with a ``[VRID]`` line; the
  header repeats, which is why a stock INI parser cannot read the file;
* ``keyword = value`` lines; keywords are case-insensitive (the original was
  case-sensitive, so every file it read still reads the same);
* a line whose first non-blank character is ``#`` is a comment (the original
  only allowed column 0).  There are no end-of-line comments: ``#`` inside a
  value is part of it, as in the original (a password may contain ``#``, a
  script is run by the shell, which reads its own comments); for any other
  keyword a `` #`` after the value is refused with a message saying so;
* blank lines, CRLF line ends, a last line without a newline and a UTF-8 byte
  order mark at the start are fine.

This module only splits the text into raw sections; ``build`` validates them.
"""

from __future__ import annotations

import re

from freevrrpd.config.problems import Problems, RawEntry, RawSection

# Keywords whose values may hold a '#': a password, and commands (the shell reads
# its own comments).
HASH_OK = frozenset({"password", "presharedkey", "masterscript", "backupscript",
                     "faultscript", "stopscript", "notify", "script"})
SECTION_KINDS = ("VRID", "CHECK", "SYNCGROUP")
_END_COMMENT = re.compile(r"\s#")
# The top-level blocks of a keepalived.conf: a file pasted from keepalived gets
# one message that says how to convert it, not one error per line.
_KEEPALIVED = re.compile(r"^[ \t]*(vrrp_instance|vrrp_sync_group|vrrp_script|global_defs|"
                         r"virtual_server)\b[^=]*$", re.M)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:40] + "..."


def read_conf(text: str, problems: Problems) -> list[RawSection]:
    """Split the text into raw ``[VRID]`` sections; syntax errors go to ``problems``."""
    text = text.removeprefix("\ufeff")
    pasted = _KEEPALIVED.search(text)
    if pasted and not re.search(r"^\s*\[\s*(VRID|CHECK|SYNCGROUP)\s*\]", text, re.M | re.I):
        at = text.count("\n", 0, pasted.start()) + 1
        problems.add(at, None, f"this looks like a keepalived.conf ({pasted.group(1)}), not "
                     "a freevrrpd.conf; convert it with: freevrrpd --import-keepalived FILE "
                     "> freevrrpd.conf (docs/KEEPALIVED.md has the mapping)")
        return []
    sections: list[RawSection] = []
    current: RawSection | None = None
    in_unknown = False  # keys under a bad header are not reported a second time
    # split("\n") rather than splitlines(): the latter also breaks on \f, \v,
    # \x1c... which would shift line numbers against what an editor shows.
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            kind = line[1:-1].strip().upper() if line.endswith("]") else ""
            if kind in SECTION_KINDS:
                current = RawSection(number, kind=kind)
                sections.append(current)
                in_unknown = False
            else:
                problems.add(number, None, f"unknown section header {line!r}; the sections are "
                             "[VRID], [CHECK] and [SYNCGROUP]")
                current, in_unknown = None, True
            continue
        keyword, equals, value = line.partition("=")
        keyword, value = keyword.strip(), value.strip()
        if not equals or not keyword:
            problems.add(number, None, f"expected 'keyword = value', got {_short(line)!r}")
        elif _END_COMMENT.search(value) and keyword.lower() not in HASH_OK:
            problems.add(number, keyword, "a '#' after the value is not a comment here (only "
                         "whole lines are comments); put the comment on a line of its own")
            # Read on without it, so that this is the line's only error.
            value = _END_COMMENT.split(value, 1)[0].strip()
            if current is not None:
                current.entries.append(RawEntry(keyword, value, number))
        elif current is not None:
            current.entries.append(RawEntry(keyword, value, number))
        elif not in_unknown:
            problems.add(number, keyword, "comes before the first [VRID] header")
    return sections
