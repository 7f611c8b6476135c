"""Read freevrrpd.conf (or YAML) into frozen, validated ``RouterSettings``.

The freevrrpd.conf format is the original daemon's, read as a superset:

* every virtual router is a section that starts with a ``[VRID]`` line; the
  header repeats, which is why a stock INI parser cannot read the file;
* ``keyword = value`` lines; keywords are case-insensitive (the original was
  case-sensitive, so every file it read still reads the same);
* a line whose first non-blank character is ``#`` is a comment (the original
  only allowed column 0).  There are no end-of-line comments: ``#`` inside a
  value is part of it, as in the original (a password may contain ``#``);
* blank lines, CRLF line ends and a last line without a newline are fine.

Unlike the original, every mistake is an error naming the file, the line and
the keyword, and all of a file's errors are reported together (``ConfigError``).
Files named ``*.yaml`` / ``*.yml`` are read as YAML (see ``config_yaml``) with
the same keywords and the same validation.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from freevrrpd.config_build import KEYWORDS, build
from freevrrpd.config_model import ConfigError, ConfigProblem, Problems, RawEntry, RawSection
from freevrrpd.config_yaml import read_yaml
from freevrrpd.core.settings import RouterSettings

__all__ = [
    "KEYWORDS",
    "ConfigError",
    "ConfigProblem",
    "load_config",
    "parse_conf",
    "parse_yaml",
    "summary",
]

YAML_SUFFIXES = (".yaml", ".yml")

log = logging.getLogger(__name__)


def load_config(
    path: str | os.PathLike[str], warnings: list[ConfigProblem] | None = None
) -> tuple[RouterSettings, ...]:
    """Read and validate a config file; raise ``ConfigError`` listing every problem.

    The format follows the extension: ``.yaml``/``.yml`` is YAML, anything
    else the freevrrpd.conf format.  Interfaces are not checked for existence.
    Warnings (legal but suspicious settings) are appended to ``warnings``
    when it is given, else logged on the ``freevrrpd.config`` logger.
    """
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = ConfigProblem(name, 0, None, f"cannot read the file: {reason}")
        raise ConfigError([problem]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([ConfigProblem(name, line, None, "not UTF-8 text")]) from None
    if Path(name).suffix.lower() in YAML_SUFFIXES:
        return parse_yaml(text, name, warnings)
    return parse_conf(text, name, warnings)


def parse_conf(
    text: str, path: str = "<string>", warnings: list[ConfigProblem] | None = None
) -> tuple[RouterSettings, ...]:
    """Parse freevrrpd.conf text; ``path`` is only used in messages and ``source``."""
    problems = Problems(path)
    sections = _read_conf(text, problems)
    return _finish(build(sections, problems), problems, warnings)


def parse_yaml(
    text: str, path: str = "<string>", warnings: list[ConfigProblem] | None = None
) -> tuple[RouterSettings, ...]:
    """Parse the YAML form; same keywords and validation as ``parse_conf``."""
    problems = Problems(path)
    sections = read_yaml(text, problems)
    settings = build(sections, problems) if sections is not None else ()
    return _finish(settings, problems, warnings)


def _finish(
    settings: tuple[RouterSettings, ...],
    problems: Problems,
    warnings: list[ConfigProblem] | None,
) -> tuple[RouterSettings, ...]:
    problems.raise_if_any()
    if warnings is not None:
        warnings.extend(problems.warnings)
    else:
        for warning in problems.warnings:
            log.warning("%s", warning)
    return settings


def _read_conf(text: str, problems: Problems) -> list[RawSection]:
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


def _seconds(value: float) -> str:
    return f"{value:g}s"


def summary(settings: RouterSettings) -> str:
    """One line describing a virtual router, for ``freevrrpd -t``."""
    s = settings
    yes = {True: "yes", False: "no"}
    parts = [
        f"VRID {s.vrid} IPv{s.family} on {s.interface}:",
        f"v{s.version}",
        f"priority {s.priority}",
        f"advert {_seconds(s.advert_int)}",
        f"preempt {yes[s.preempt]}",
    ]
    if s.preempt and s.preempt_delay:
        parts.append(f"delay {_seconds(s.preempt_delay)}")
    if s.accept:
        parts.append("accept yes")
    if s.password is not None:
        parts.append("auth password")
    if not s.checksum_pseudo_header:
        parts.append("checksum without pseudo-header")
    parts.append(f"vmac {yes[s.use_vmac]}")
    parts.append("addrs " + ",".join(str(a) for a in s.addresses))
    return " ".join(parts)
