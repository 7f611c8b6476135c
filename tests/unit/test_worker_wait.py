"""The worker's wait survives descriptors past FD_SETSIZE (many VRIDs) and stays on time."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator

import pytest

from freevrrpd.vrid.wait import FD_SETSIZE, SLACK_SPLIT, wait_readable

HIGH_FD = FD_SETSIZE + 100


@pytest.fixture
def high_pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose read end is numbered above FD_SETSIZE, as with 255 VRIDs."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH_FD:
        pytest.skip(f"open-file limit {soft} too low for descriptor {HIGH_FD}")
    r, w = os.pipe()
    high = os.dup2(r, HIGH_FD)
    os.close(r)
    try:
        yield high, w
    finally:
        os.close(high)
        os.close(w)


def test_readable_descriptor_above_fd_setsize_is_reported(high_pipe: tuple[int, int]) -> None:
    r, w = high_pipe
    os.write(w, b"x")
    assert wait_readable([r], 1.0) == [r]


def test_timeout_above_fd_setsize_never_fires_early(high_pipe: tuple[int, int]) -> None:
    r, _w = high_pipe
    start = time.monotonic()
    assert wait_readable([r], 0.0025) == []
    # poll() counts whole milliseconds; the sub-millisecond rest is slept.
    assert time.monotonic() - start >= 0.0025


def test_low_descriptors_use_the_precise_path() -> None:
    r, w = os.pipe()
    try:
        assert wait_readable([r], 0.001) == []
        os.write(w, b"x")
        assert wait_readable([r], None) == [r]
    finally:
        os.close(r)
        os.close(w)


def test_long_wait_is_split_but_never_ends_early() -> None:
    # Above SLACK_SPLIT the wait ends early by design and a sleep covers the rest.
    r, w = os.pipe()
    try:
        start = time.monotonic()
        assert wait_readable([r], SLACK_SPLIT + 0.05) == []
        assert time.monotonic() - start >= SLACK_SPLIT + 0.05
    finally:
        os.close(r)
        os.close(w)
