"""Read freevrrpd.conf (or YAML) into frozen, validated ``RouterSettings``.

The freevrrpd.conf format (``conffile``) is the original daemon's, read as
a superset.  Unlike the original, every mistake is an error naming the file,
the line and the keyword, and all of a file's errors are reported together
(``ConfigError``).
Files named ``*.yaml`` / ``*.yml`` are read as YAML (see ``yamlfile``) with
the same keywords and the same validation.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from freevrrpd.config.build import build
from freevrrpd.config.conffile import read_conf
from freevrrpd.config.problems import ConfigError, ConfigProblem, Problems
from freevrrpd.core.settings import RouterSettings

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
    sections = read_conf(text, problems)
    return _finish(build(sections, problems), problems, warnings)


def parse_yaml(
    text: str, path: str = "<string>", warnings: list[ConfigProblem] | None = None
) -> tuple[RouterSettings, ...]:
    """Parse the YAML form; same keywords and validation as ``parse_conf``."""
    from freevrrpd.config.yamlfile import read_yaml  # pyyaml only for YAML files

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
