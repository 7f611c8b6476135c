"""Fixtures of the netlink tests: bare namespaces without the lab's bridge."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.nl_helpers import namespaces


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """A factory of fresh `fv…` namespaces, all removed after the test."""
    with namespaces() as make:
        yield make
