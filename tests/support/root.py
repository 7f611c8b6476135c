"""Whether the namespace tests may run: they need root, and never skip under CI=true."""

from __future__ import annotations

import os

import pytest

ROOT = os.geteuid() == 0
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tests marked `netns` need root; under CI=true they must run, never skip.
needs_root = pytest.mark.skipif(not ROOT and not CI, reason="needs root for network namespaces")
