"""Shared fixtures: the namespace lab for tests that run real daemons."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from freevrrpd.lab import Lab

ROOT = os.geteuid() == 0
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tests marked `netns` need root; under CI=true they must run, never skip.
needs_root = pytest.mark.skipif(not ROOT and not CI, reason="needs root for network namespaces")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh lab (namespaces `fv<random>`), removed after the test, also on failure."""
    with Lab() as lab:
        yield lab
