"""Service files without a daemon: the systemd unit, the man pages, install-service.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from freevrrpd.config.build import KEYWORDS, SIMPLE
from freevrrpd.core.settings import RouterSettings
from tests.support.service_helpers import DAEMON, INSTALLER, REPO, UNIT, output

MAN_PAGES = sorted((REPO / "man").glob("*.[1-9]"))


# -- the systemd unit ----------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_runs_in_the_foreground_reloads_synchronously_and_keeps_two_capabilities() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]  # the daemon sends READY=1 (see test_service.py)
    assert " -F " in s["ExecStart"][0] and s["ExecStart"][0].endswith(" $DAEMON_ARGS")
    assert s["EnvironmentFile"] == ["-/etc/default/freevrrpd"]
    # freevrrpctl waits for the daemon's verdict: a refused file fails the reload.
    assert s["ExecReload"] == ["/usr/local/sbin/freevrrpctl -s /run/freevrrpd.sock reload"]
    assert s["ConditionFileNotEmpty"] == ["/etc/freevrrpd.conf"]
    assert s["RestartPreventExitStatus"] == ["2 4"]
    assert s["Restart"] == ["on-failure"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert s["AmbientCapabilities"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    # /proc/sys must stay writable: the daemon sets arp_* sysctls.
    assert "ProtectKernelTunables" not in s
    families = s["RestrictAddressFamilies"][0].split()
    assert sorted(families) == sorted(
        ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"]
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point it at this tree's.
    unit = tmp_path / "freevrrpd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/sbin/freevrrpd ", f"{DAEMON} ")
                    .replace("/usr/local/sbin/freevrrpctl", str(DAEMON.with_name("freevrrpctl"))))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", output(result)



# -- man pages ---------------------------------------------------------------------------


def test_both_man_pages_exist() -> None:
    assert {p.name for p in MAN_PAGES} >= {"freevrrpd.8", "freevrrpd.conf.5"}


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page: Path) -> None:
    if shutil.which("man") is None or shutil.which("groff") is None:
        pytest.fail("man and groff are needed (Debian: man-db, groff-base)")
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"}
    rendered = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                              text=True, env=env, check=False, timeout=60)
    assert rendered.returncode == 0 and rendered.stderr == "", output(rendered)
    assert "NAME" in rendered.stdout and "SEE ALSO" in rendered.stdout
    lint = subprocess.run(["groff", "-ww", "-z", "-man", str(page)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert lint.returncode == 0 and lint.stderr == "", output(lint)


def conf_page_entries() -> dict[str, str]:
    """keyword (lower case) -> its .TP entry's text, from freevrrpd.conf.5."""
    text = (REPO / "man" / "freevrrpd.conf.5").read_text()
    keywords = text.split(".SH KEYWORDS", 1)[1].split("\n.SH ", 1)[0]
    entries: dict[str, str] = {}
    for block in keywords.split(".TP\n")[1:]:
        tag, _, body = block.partition("\n")
        match = re.fullmatch(r'\.BI "(\w+) = " .*', tag)
        assert match, f"unexpected tag line {tag!r}"
        entries[match.group(1).lower()] = body
    return entries


def test_conf_man_page_documents_every_keyword_once() -> None:
    assert sorted(conf_page_entries()) == sorted(KEYWORDS)


def test_conf_man_page_defaults_match_the_reader() -> None:
    # Only the required fields given: every other field holds the reader's default.
    base = RouterSettings(vrid=1, interface="eth0", addresses=())
    written: dict[str, str] = {}
    for keyword, body in conf_page_entries().items():
        match = re.search(r"^Default: (\S+)\.$", body, re.M)
        assert match, f"{keyword}: no 'Default: VALUE.' line"
        written[keyword] = match.group(1)
    for keyword, (field, parse) in SIMPLE.items():
        expected = getattr(base, field)
        got = None if written[keyword] == "none" else parse(written[keyword])
        assert got == expected, f"{keyword}: page says {written[keyword]}, reader has {expected!r}"
    assert written["advertint"] == f"{base.advert_int:g}"
    assert written["version"] == str(base.version)
    assert written["checksumpseudoheader"] == "yes" and base.checksum_pseudo_header
    assert written["ahencryption"] == written["useike"] == "no"
    assert not base.ah_encryption and not base.use_ike
    for keyword in ("serverid", "interface", "addr", "password", "vridsdep"):
        assert written[keyword] == "none"


# -- install-service.sh --------------------------------------------------------------------


def fake_tools(bin_dir: Path, log: Path) -> None:
    """systemctl & co. that only record being called: the installer must not call them."""
    bin_dir.mkdir()
    for tool in ("systemctl", "update-rc.d", "service", "insserv"):
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
        path.chmod(0o755)


def install(dest: Path, tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    return subprocess.run(["sh", str(INSTALLER),
                           f"DESTDIR={dest}", *args],
                          capture_output=True, text=True, env=env, check=False, timeout=600)


def test_install_service_with_destdir_installs_the_expected_files(tmp_path: Path) -> None:
    dest = tmp_path / "stage"
    called = tmp_path / "called.log"
    fake_tools(tmp_path / "bin", called)
    result = install(dest, tmp_path / "bin")
    assert result.returncode == 0, output(result)

    venv = dest / "opt" / "freevrrpd"
    expected = {
        "etc/systemd/system/freevrrpd.service": 0o644,
        "etc/init.d/freevrrpd": 0o755,
        "usr/local/share/freevrrpd/freevrrpd.conf.example": 0o644,
        "usr/local/share/freevrrpd/rc.d/freevrrpd": 0o755,
        "usr/local/share/freevrrpd/hooks/master.sh": 0o755,
        "usr/local/share/freevrrpd/hooks/backup.sh": 0o755,
        "usr/local/share/freevrrpd/hooks/fault.sh": 0o755,
        "usr/local/share/freevrrpd/hooks/stop.sh": 0o755,
        "usr/local/share/freevrrpd/hooks/record-state.sh": 0o755,
        "usr/local/share/man/man8/freevrrpd.8": 0o644,
        "usr/local/share/man/man5/freevrrpd.conf.5": 0o644,
    }
    for rel, mode in expected.items():
        path = dest / rel
        assert path.is_file(), rel
        assert path.stat().st_mode & 0o777 == mode, f"{rel}: mode {path.stat().st_mode:o}"
    link = dest / "usr/local/sbin/freevrrpd"
    assert os.readlink(link) == "/opt/freevrrpd/bin/freevrrpd"  # the final path, not DESTDIR
    # No live configuration (it would claim the example's addresses at the first
    # start): the example is installed as one, and the script says what to do.
    assert not (dest / "etc/freevrrpd.conf").exists()
    assert "share/freevrrpd/freevrrpd.conf.example" in result.stdout
    # Everything outside DESTDIR untouched, nothing enabled or started.
    assert not called.exists(), called.read_text()

    # The venv runs at /opt/freevrrpd: no staging path may remain in it.
    script = venv / "bin" / "freevrrpd"
    assert script.read_text().splitlines()[0] == "#!/opt/freevrrpd/bin/python"
    for path in [*venv.joinpath("bin").iterdir(), venv / "pyvenv.cfg"]:
        if path.is_file() and not path.is_symlink():
            assert str(dest) not in path.read_text(errors="replace"), path
    # The staged package itself works: it checks the installed example config.
    # (Run away from the checkout, so that only the venv can provide freevrrpd.)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import sys, freevrrpd, freevrrpd.cli; print(freevrrpd.__file__); "
                            "sys.exit(freevrrpd.cli.main(sys.argv[1:]))",
                            "-t", "-f",
                            str(dest / "usr/local/share/freevrrpd/freevrrpd.conf.example")],
                           capture_output=True, text=True, check=False, timeout=60,
                           cwd=tmp_path, env=clean)
    assert check.returncode == 0 and "OK, 2 virtual router(s)" in check.stdout, output(check)
    assert check.stdout.startswith(str(venv / "lib")), output(check)


def test_install_service_keeps_the_config_and_follows_prefix(tmp_path: Path) -> None:
    dest = tmp_path / "stage"
    called = tmp_path / "called.log"
    fake_tools(tmp_path / "bin", called)
    mine = "# my own configuration\n"
    (dest / "etc").mkdir(parents=True)
    (dest / "etc/freevrrpd.conf").write_text(mine)
    result = install(dest, tmp_path / "bin", "PREFIX=/usr", "UNITDIR=/usr/lib/systemd/system",
                     "VENV=/opt/fv")
    assert result.returncode == 0, output(result)
    assert (dest / "etc/freevrrpd.conf").read_text() == mine
    assert os.readlink(dest / "usr/sbin/freevrrpd") == "/opt/fv/bin/freevrrpd"
    unit = (dest / "usr/lib/systemd/system/freevrrpd.service").read_text()
    assert "ExecStart=/usr/sbin/freevrrpd -F" in unit
    assert "/usr/local/sbin" not in unit and "/usr/local/share" not in unit
    init = (dest / "etc/init.d/freevrrpd").read_text()
    assert "${DAEMON:=/usr/sbin/freevrrpd}" in init
    page = (dest / "usr/share/man/man8/freevrrpd.8").read_text()
    assert "/usr/share/freevrrpd/hooks" in page and "/usr/local/share" not in page
    assert not called.exists(), called.read_text()


# -- the source distribution -------------------------------------------------------------


def test_the_sdist_carries_the_service_files_and_installs_from_itself(tmp_path: Path) -> None:
    """Issue 12, section 2: man pages, service files, hooks, the example, the docs,
    the tests and the Debian packaging are in the sdist, and install-service.sh
    works from it unpacked, not only from a checkout."""
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                            "--outdir", str(tmp_path / "dist"), str(REPO)],
                           capture_output=True, text=True, check=False, timeout=300)
    assert built.returncode == 0, output(built)
    (sdist,) = (tmp_path / "dist").glob("freevrrpd-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(tmp_path / "src", filter="data")
    for rel in ("LICENSE", "man/freevrrpd.8", "man/freevrrpd.conf.5", "man/freevrrpctl.8",
                "scripts/freevrrpd.service", "scripts/init.d/freevrrpd", "scripts/rc.d/freevrrpd",
                "scripts/hooks/master.sh", "scripts/install-service.sh",
                "conf/freevrrpd.conf.example", "docs/STATUS.md", "docs/OPERATIONS.md",
                "debian/control", "debian/rules", "tests/unit/test_router.py",
                "tests/data/original-sample.conf", "lab/topology.py", "Makefile"):
        assert rel in names, f"{rel} is not in {sdist.name}"
    assert not any("__pycache__" in n or n.startswith(".venv") for n in names)
    (root,) = (tmp_path / "src").iterdir()
    called = tmp_path / "called.log"
    fake_tools(tmp_path / "bin", called)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    dest = tmp_path / "stage"
    result = subprocess.run(["sh", str(root / "scripts/install-service.sh"), f"DESTDIR={dest}"],
                            capture_output=True, text=True, env=env, check=False, timeout=600)
    assert result.returncode == 0, output(result)
    assert (dest / "etc/systemd/system/freevrrpd.service").is_file()
    assert (dest / "opt/freevrrpd/bin/freevrrpd").is_file()
    assert not called.exists()
