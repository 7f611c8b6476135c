"""The freevrrpd.conf text format: repeated ``[VRID]`` sections of ``keyword = value``.

The original daemon's format, read as a superset:

* every virtual router is a section that starts with a ``[VRID]`` line; the
  header repeats, which is why a stock INI parser cannot read the file;
* ``keyword = value`` lines; keywords are case-insensitive (the original was
  case-sensitive, so every file it read still reads the same);
* a line whose first non-blank character is ``#`` is a comment (the original
  only allowed column 0).  There are no end-of-line comments: ``#`` inside a
  value is part of it, as in the original (a password may contain ``#``);
* blank lines, CRLF line ends and a last line without a newline are fine.

This module only splits the text into raw sections; ``build`` validates them.
"""

from __future__ import annotations

from freevrrpd.config.problems import Problems, RawEntry, RawSection


def read_conf(text: str, problems: Problems) -> list[RawSection]:
    """Split the text into raw ``[VRID]`` sections; syntax errors go to ``problems``."""
    text = text.removeprefix("\ufeff")
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
            if line.endswith("]") and line[1:-1].strip().upper() == "VRID":
                current = RawSection(number)
                sections.append(current)
                in_unknown = False
            else:
                problems.add(number, None, f"unknown section header {line!r}; only [VRID] exists")
                current, in_unknown = None, True
            continue
        keyword, equals, value = line.partition("=")
        keyword, value = keyword.strip(), value.strip()
        if not equals or not keyword:
            problems.add(number, None, f"expected 'keyword = value', got {line!r}")
        elif current is not None:
            current.entries.append(RawEntry(keyword, value, number))
        elif not in_unknown:
            problems.add(number, keyword, "comes before the first [VRID] header")
    return sections
