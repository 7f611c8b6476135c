"""The Debian package (issue 12, section 1), built, installed and run as an operator would.

``make deb`` builds freevrrpd_<version>_all.deb with Debian's own tools from
the tracked files; lintian finds no error in it; ``apt-get install ./…deb``
brings in Debian's own libraries (python3-pyroute2 0.7.2 on Debian 12); the
installed /usr/sbin/freevrrpd, run by /usr/bin/python3 with nothing of this
tree on its path, elects a master and fails over in the lab; remove and purge
leave none of its files behind.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Daemon, Host, Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import VIP, WAIT, build_lan, has_ip, state_re, wait_until
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]

TREE = Path(__file__).resolve().parents[2]
# Debian's tools and interpreter, whatever comes first in this PATH.
DEBIAN_ENV = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
              "DEBIAN_FRONTEND": "noninteractive"}
INSTALLED = ["/usr/sbin/freevrrpd", "/usr/sbin/freevrrpctl",
             "/lib/systemd/system/freevrrpd.service", "/etc/init.d/freevrrpd",
             "/etc/default/freevrrpd", "/usr/share/man/man8/freevrrpd.8.gz",
             "/usr/share/man/man8/freevrrpctl.8.gz", "/usr/share/man/man5/freevrrpd.conf.5.gz",
             "/usr/share/doc/freevrrpd/copyright", "/usr/share/doc/freevrrpd/STATUS.md.gz",
             "/usr/share/doc/freevrrpd/OPERATIONS.md.gz",
             "/usr/share/doc/freevrrpd/examples/freevrrpd.conf.example",
             "/usr/share/doc/freevrrpd/examples/master.sh",
             "/usr/lib/python3/dist-packages/freevrrpd/__init__.py"]


def run(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # From /: "python3 -c" puts the working directory first on its path.
    out = subprocess.run(list(argv), capture_output=True, text=True, env=DEBIAN_ENV,
                         timeout=timeout, check=False, cwd="/")
    if check:
        assert out.returncode == 0, f"{argv}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def installed() -> bool:
    out = run("dpkg-query", "-W", "-f=${Status}", "freevrrpd", check=False)
    return "install ok installed" in out.stdout


@pytest.fixture(scope="module")
def deb() -> Path:
    run("make", "-C", str(TREE), "deb")
    (package,) = (TREE / "build" / "deb").glob("freevrrpd_*_all.deb")
    return package


@pytest.fixture
def package(deb: Path) -> Iterator[Path]:
    """Installed with apt for the test, purged after it (also when it fails)."""
    if installed():  # left by an interrupted run
        run("apt-get", "purge", "-y", "-q", "freevrrpd")
    run("apt-get", "install", "-y", "-q", str(deb))
    try:
        yield deb
    finally:
        run("apt-get", "purge", "-y", "-q", "freevrrpd", check=False)


def test_lintian_finds_no_error(deb: Path) -> None:
    out = run("lintian", "--fail-on", "error", str(deb), check=False)
    errors = [line for line in out.stdout.splitlines() if line.startswith("E:")]
    assert out.returncode == 0 and errors == [], out.stdout


def start_installed(host: Host, conf: str, *extra: str) -> Daemon:
    # Nothing of this tree on the path: the package's module, Debian's libraries.
    argv = ["/usr/sbin/freevrrpd", "-F", "-d", "-f", "{conf}", "-p", "{pidfile}",
            "-s", "{socket}", *extra]
    return host.start_daemon(conf, argv=argv, env={"PYTHONPATH": "", "PATH": DEBIAN_ENV["PATH"]})


def test_installed_package_elects_fails_over_and_purges_clean(package: Path, lab: Lab) -> None:
    for path in INSTALLED:
        assert Path(path).exists(), f"{path} is not installed"
    # No live configuration: the service has nothing to claim until the operator
    # writes one (the unit's ConditionFileNotEmpty=).
    assert not Path("/etc/freevrrpd.conf").exists()
    assert Path("/usr/sbin/freevrrpd").read_text().startswith("#!/usr/bin/python3")
    where = run("/usr/bin/python3", "-c", "import freevrrpd, pyroute2; "
                "print(freevrrpd.__file__, pyroute2.__file__)").stdout
    assert where.split() == ["/usr/lib/python3/dist-packages/freevrrpd/__init__.py",
                             "/usr/lib/python3/dist-packages/pyroute2/__init__.py"], where

    net = build_lan(lab)
    # With metrics: Debian's python3-prometheus-client (0.16 on Debian 12) serves them.
    d1 = start_installed(net.r1, vrid(1, 200, advertint=0.1), "--metrics", "127.0.0.1:9105")
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = start_installed(net.r2, vrid(1, 100, advertint=0.1))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    cmdline = Path(f"/proc/{d1.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:2] == [b"/usr/bin/python3", b"/usr/sbin/freevrrpd"], cmdline
    ctl = ["/usr/sbin/freevrrpctl", "-s", str(d2.socket_path), "status", "--json"]
    wait_until(lambda: '"master": "192.0.2.1"' in net.r2.run(ctl).stdout,
               "the installed freevrrpctl to show r1 as r2's master")
    assert net.c.ping(VIP)
    scrape = net.r1.run(["/usr/bin/python3", "-c", "import urllib.request; print(urllib.request."
                         "urlopen('http://127.0.0.1:9105/metrics', timeout=5).read().decode())"])
    assert 'freevrrpd_state{' in scrape.stdout and "freevrrpd_build_info" in scrape.stdout
    mark = d2.mark()
    net.r1.isolate()
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, mark)
    assert has_ip(net.r2, VIP) and net.c.ping(VIP)
    assert d1.stop() == 0 and d2.stop() == 0

    files = run("dpkg-query", "-L", "freevrrpd").stdout.split()
    run("apt-get", "remove", "-y", "-q", "freevrrpd")
    assert not Path("/usr/sbin/freevrrpd").exists()
    run("apt-get", "purge", "-y", "-q", "freevrrpd")
    assert not installed()
    left = [f for f in files if not Path(f).is_dir() and (Path(f).exists() or Path(f).is_symlink())]
    assert left == [], left
    assert not Path("/usr/lib/python3/dist-packages/freevrrpd").exists()
    assert not Path("/etc/default/freevrrpd").exists()
