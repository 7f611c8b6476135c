"""Read freevrrpd.conf (or YAML) into frozen, validated ``RouterSettings``.

The freevrrpd.conf format (``conffile``) is the original daemon's, read as
a superset.  Unlike the original, every mistake is an error naming the file,
the line and the keyword, and all of a file's errors are reported together
(``ConfigError``).
Files named ``*.yaml`` / ``*.yml`` are read as YAML (see ``yamlfile``) with
the same keywords and the same validation.
"""

from __future__ import annotations

import os
import stat

from freevrrpd.config.build import build
from freevrrpd.config.conffile import read_conf
from freevrrpd.config.problems import ConfigError, ConfigProblem, Problems
from freevrrpd.core.settings import RouterSettings

YAML_SUFFIXES = (".yaml", ".yml")



MAX_FILE = 4 << 20  # bytes: a thousand virtual routers need a few hundred KiB


def load_config(
    path: str | os.PathLike[str], warnings: list[ConfigProblem] | None = None
) -> tuple[RouterSettings, ...]:
    """Read and validate a config file; raise ``ConfigError`` listing every problem.

    The format follows the extension: ``.yaml``/``.yml`` is YAML, anything
    else the freevrrpd.conf format.  Interfaces are not checked for existence.
    Warnings (legal but suspicious settings) are appended to ``warnings``
    when it is given, else logged on the ``freevrrpd.config`` logger.  Only a
    regular file of at most MAX_FILE bytes is read: a FIFO or a device would
    hang the reader, a huge file exhaust it.
    """
    name = os.fspath(path)
    data = _read(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([ConfigProblem(name, line, None, "not UTF-8 text")]) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ConfigError([ConfigProblem(name, line, None, "a NUL byte: not a text file")])
    if os.path.splitext(name)[1].lower() in YAML_SUFFIXES:
        return parse_yaml(text, name, warnings)
    return parse_conf(text, name, warnings)


def _read(name: str) -> bytes:
    def refuse(why: str) -> ConfigError:
        return ConfigError([ConfigProblem(name, 0, None, why)])

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise refuse(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise refuse("cannot read the file: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("cannot read the file: it is not a regular file (a FIFO, a socket "
                         "or a device?); give the path of a configuration file")
        if info.st_size > MAX_FILE:
            raise refuse(f"cannot read the file: {info.st_size} bytes is more than a "
                         f"configuration file can be ({MAX_FILE} bytes at most)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise refuse(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE:
        raise refuse(f"cannot read the file: more than a configuration file can be "
                     f"({MAX_FILE} bytes at most)")
    return data


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
        import logging  # not before: the owner's first advert waits for this module

        for warning in problems.warnings:
            logging.getLogger(__name__).warning("%s", warning)
    return settings
