"""freevrrpd.conf (or YAML) -> frozen, validated ``RouterSettings``, errors with file:line.

``load`` reads a file; ``conffile`` and ``yamlfile`` turn text into raw
sections; ``build`` (with the single-value parsers of ``values``) validates
them; ``problems`` holds the error types; ``summary`` the ``-t`` lines.
"""

from freevrrpd.config.build import KEYWORDS
from freevrrpd.config.load import load_config, parse_conf, parse_yaml
from freevrrpd.config.problems import ConfigError, ConfigProblem
from freevrrpd.config.summary import summary

__all__ = [
    "KEYWORDS",
    "ConfigError",
    "ConfigProblem",
    "load_config",
    "parse_conf",
    "parse_yaml",
    "summary",
]
