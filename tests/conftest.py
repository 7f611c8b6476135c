"""Shared fixtures: the namespace lab for tests that run real daemons."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh lab (namespaces `fv<random>`), removed after the test, also on failure."""
    with Lab() as lab:
        yield lab
