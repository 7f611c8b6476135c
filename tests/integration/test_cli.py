"""The ``freevrrpd`` command line, run as a real process (issue 3 section 1).

Only the test with a missing interface needs root: the daemon looks the
interface up over netlink, which it does inside a lab namespace here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from freevrrpd import __version__
from lab import Lab
from tests.support.root import needs_root

TREE = Path(__file__).resolve().parents[2]
EXAMPLE = TREE / "conf" / "freevrrpd.conf.example"
ORIGINAL = TREE / "tests" / "data" / "original-sample.conf"


def freevrrpd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TREE)}
    return subprocess.run([sys.executable, "-m", "freevrrpd", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=TREE)


def test_version() -> None:
    out = freevrrpd("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"freevrrpd {__version__}"


def test_help_lists_the_original_flags() -> None:
    out = freevrrpd("-h")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: freevrrpd")
    for flag in ("-f FILE", "-F", "-c DIR", "-p PIDFILE", "-d", "-t", "--version"):
        assert re.search(rf"^\s+{re.escape(flag)}\b", out.stdout, re.MULTILINE), flag


@pytest.mark.parametrize("path", [EXAMPLE, ORIGINAL], ids=["example", "original-sample"])
def test_check_prints_one_line_per_vrid(path: Path) -> None:
    """-t reads the file without touching the network: one summary line per
    [VRID] section, then an OK line."""
    sections = sum(1 for line in path.read_text().splitlines() if line.strip() == "[VRID]")
    assert sections >= 2
    out = freevrrpd("-t", "-f", str(path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == sections + 1, out.stdout
    for line in lines[:-1]:
        assert re.match(r"VRID \d+ IPv[46] on \S+: v[23] priority \d+ ", line), line
    assert lines[-1] == f"{path}: OK, {sections} virtual router(s)"


def test_check_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "broken.conf"
    conf.write_text(
        "[VRID]\n"  # 1
        "serverid = 1\n"  # 2
        "interface = eth0\n"  # 3
        "priority = 300\n"  # 4: out of range
        "addr = 192.0.2.254/24\n"  # 5
        "nonsense = 1\n"  # 6: unknown keyword
        "\n"  # 7
        "[VRID]\n"  # 8
        "serverid = 2\n"  # 9
        "addr = 192.0.2.253/24\n"  # 10
        "preempt = perhaps\n"  # 11: not a boolean; the section has no interface
    )
    out = freevrrpd("-t", "-f", str(conf))
    assert out.returncode != 0
    assert out.stdout == ""
    assert "4 error(s) in the configuration" in out.stderr
    errors = [line.strip() for line in out.stderr.splitlines() if line.startswith("  ")]
    where = [(e.split(": ", 2)[0], e.split(": ", 2)[1]) for e in errors]
    assert where == [(f"{conf}:4", "priority"), (f"{conf}:6", "nonsense"),
                     (f"{conf}:8", "interface"), (f"{conf}:11", "preempt")], out.stderr


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.conf"
    out = freevrrpd("-t", "-f", str(missing))
    assert out.returncode != 0
    assert str(missing) in out.stderr


@pytest.mark.netns
@needs_root
def test_a_missing_interface_is_named_with_file_and_line(lab: Lab) -> None:
    """The daemon refuses to start on an interface that does not exist (in its
    network namespace), naming the file, line and interface."""
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, "192.0.2.1/24")
    conf = Path(lab.tmpdir, "noiface.conf")
    conf.write_text("[VRID]\nserverid = 1\ninterface = eth9\naddr = 192.0.2.254/24\n")
    pid = Path(lab.tmpdir, "noiface.pid")
    argv = [sys.executable, "-m", "freevrrpd", "-F", "-f", str(conf), "-p", str(pid),
            "-s", str(Path(lab.tmpdir, "noiface.sock"))]
    out = r1.run(argv, check=False, timeout=60, env={**os.environ, "PYTHONPATH": str(TREE)})
    assert out.returncode != 0
    # Named at the `interface =` line (3), not at the section header.
    assert re.search(rf"{re.escape(str(conf))}:3: interface: .*\beth9\b", out.stderr), out.stderr
    assert not pid.exists()
    assert "eth9" not in " ".join(r1.links())
