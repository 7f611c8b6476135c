"""Bad configuration input: a message with file, line and keyword, never a traceback
or a hang (tests/data/bad, and files made here: huge, a FIFO, a device, a directory).

Each file goes through ``freevrrpd -t`` in this process, within 2 s, and must
end with exit status 2 and the expected ``file:line: keyword: reason``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from freevrrpd import cli
from freevrrpd.config import load_config

DATA = Path(__file__).resolve().parents[1] / "data"
TREE = Path(__file__).resolve().parents[2]

# file -> (line, keyword, part of the reason)
CORPUS = {
    "huge-priority.conf": (5, "priority", "is out of range 1..255"),
    "huge-prefix.conf": (4, "addr", "is out of range /1../32"),
    "digits-5000.conf": (5, "priority", "(5000 characters) is out of range 1..255"),
    "huge-vridsdep.conf": (5, "vridsdep", "is out of range 1..255"),
    "huge-advertint.conf": (6, "advertint", "too many digits"),
    "exponent.yaml": (1, "serverid", "expected a whole number"),
    "digits-30.yaml": (1, "serverid", "is out of range 1..255"),
    "yaml-syntax.yaml": (4, None, "YAML syntax error"),
    "yaml-type.yaml": (1, "vrids", "expected a list of virtual routers"),
    "binary.conf": (2, None, "not UTF-8 text"),
    "nul.conf": (5, None, "a NUL byte"),
    "end-comment.conf": (4, "addr", "a '#' after the value is not a comment here"),
    "nopreempt.conf": (5, "nopreempt", "here: preempt = no"),
    "typo.conf": (5, "priorty", "did you mean priority?"),
    "same-vip.conf": (8, "addr", "is already a virtual address of the section at line 1"),
    "not-a-section.conf": (1, "serverid", "comes before the first [VRID] header"),
}


def check(path: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    start = time.monotonic()
    code = cli.main(["-t", "-f", str(path)])
    took = time.monotonic() - start
    return code, capsys.readouterr().err, took


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_bad_file_gets_its_message(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    line, keyword, reason = CORPUS[name]
    path = DATA / "bad" / name
    code, err, took = check(path, capsys)
    assert code == 2, err
    where = f"{path}:{line}: " + (f"{keyword}: " if keyword else "")
    assert where in err and reason in err, err
    assert "Traceback" not in err
    assert took < 2.0


def test_the_corpus_is_all_here() -> None:
    assert {p.name for p in (DATA / "bad").iterdir()} == set(CORPUS)


@pytest.mark.parametrize("name", ["crlf.conf", "bom.conf"])
def test_crlf_line_ends_and_a_byte_order_mark_are_fine(name: str) -> None:
    (settings,) = load_config(DATA / "config" / name)
    assert settings.vrid == 1 and str(settings.addresses[0]) == "192.0.2.1/24"


def test_a_huge_file_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    path = tmp_path / "junk.conf"
    with path.open("wb") as f:  # 50 MB, sparse: costs no disk
        f.truncate(50 * 1024 * 1024)
    code, err, took = check(path, capsys)
    assert code == 2 and "more than a configuration file can be" in err and took < 2.0


def test_a_file_of_junk_reports_some_errors_and_counts_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.conf"
    path.write_text("[VRID]\n" + "this is no keyword\n" * 5000)
    code, err, took = check(path, capsys)
    assert code == 2 and took < 2.0
    # 5000 junk lines, and the three keywords the section lacks: 50 shown.
    assert "5003 error(s)" in err and "and 4953 more error(s) not shown" in err, err[-300:]
    assert err.count("expected 'keyword = value'") == 50


def test_a_fifo_or_a_device_is_refused_without_waiting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        code, err, took = check(path, capsys)
        assert code == 2 and "not a regular file" in err and took < 2.0


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err, _took = check(tmp_path, capsys)
    assert code == 2 and "it is a directory" in err


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.conf"
    path.write_text("[VRID]\nserverid = 1\ninterface = eth0\naddr = 192.0.2.1/24\n")
    path.chmod(0)
    tmp_path.chmod(0o755)
    argv = [sys.executable, "-m", "freevrrpd", "-t", "-f", str(path)]
    if os.geteuid() == 0:  # root reads anything: ask as nobody
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(TREE)})
    assert done.returncode == 2, done.stderr
    assert "cannot read the file: Permission denied" in done.stderr
