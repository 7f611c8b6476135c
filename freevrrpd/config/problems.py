"""Shared shapes of the config reader: problems, errors and raw sections.

Both front-ends (freevrrpd.conf and YAML) only turn text into ``RawSection``
objects; one validator (``config_build``) turns those into settings, so the
two formats cannot drift apart in what they accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class ConfigProblem(NamedTuple):
    """One mistake in a configuration file.

    ``line`` is 1-based; 0 means the whole file (unreadable, no ``[VRID]``).
    ``keyword`` is the keyword as the user wrote it, or None for syntax errors.
    """

    path: str
    line: int
    keyword: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else self.path
        if self.keyword is None:
            return f"{where}: {self.message}"
        return f"{where}: {self.keyword}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a file, reported at once; past MAX_ERRORS of them only
    their number (``more``), told in the last of ``problems``."""

    def __init__(self, problems: list[ConfigProblem], more: int = 0) -> None:
        self.problems = list(problems)
        self.more = more
        if more:
            path = self.problems[0].path if self.problems else ""
            self.problems.append(ConfigProblem(path, 0, None, f"... and {more} more error(s) "
                                               "not shown; fix these first"))
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def count(self) -> int:
        """How many errors there are in all."""
        return len(self.problems) + (self.more - 1 if self.more else 0)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class RawEntry:
    """One ``key = value`` as written, before any interpretation."""

    keyword: str  # as written (case preserved, for messages)
    value: str  # surrounding whitespace stripped
    line: int


@dataclass
class RawSection:
    """One ``[VRID]`` section (or one YAML mapping) before validation."""

    line: int  # line of the header (or of the mapping's first key)
    entries: list[RawEntry] = field(default_factory=list)
    kind: str = "VRID"  # or CHECK, SYNCGROUP (config.tracks)


MAX_ERRORS = 50  # reported one by one; beyond that, only how many more there were


class Problems:
    """Collector that every stage appends to, so nothing stops at the first error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []  # legal but suspicious; never fatal
        self.more = 0  # errors past MAX_ERRORS, counted only

    def add(self, line: int, keyword: str | None, message: str) -> None:
        if len(self.items) >= MAX_ERRORS:
            self.more += 1
            return
        self.items.append(ConfigProblem(self.path, line, keyword, message))


    def warn(self, line: int, keyword: str | None, message: str) -> None:
        self.warnings.append(ConfigProblem(self.path, line, keyword, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            # Stable sort: file order, and detection order within one line.
            raise ConfigError(sorted(self.items, key=lambda p: p.line), self.more)
