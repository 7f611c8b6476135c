"""The lab's keepalived.conf writer: what it writes, and that keepalived accepts it.

``keepalived --config-test`` parses a file without starting anything and
needs no root, so these run everywhere keepalived is installed (the Makefile
installs it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.keepalived import KEEPALIVED, KeepalivedInstance, keepalived_conf
from tests.support.interop import MODES, Mode
from tests.support.root import CI

# Under CI=true keepalived must be there (make test installs it): fail, never skip.
pytestmark = pytest.mark.skipif(
    not Path(KEEPALIVED).exists() and not CI,
    reason="keepalived is not installed (make system-deps installs it)",
)


def config_test(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    return subprocess.run([KEEPALIVED, "--config-test", "--use-file", str(conf)],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("mode", MODES, ids=[m.id for m in MODES])
def test_every_interop_mode_writes_a_config_keepalived_accepts(tmp_path: Path, mode: Mode
                                                               ) -> None:
    done = config_test(tmp_path, keepalived_conf(mode.keepalived(150)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""  # not even a warning


def test_a_broken_config_is_refused_so_the_check_above_means_something(tmp_path: Path) -> None:
    text = keepalived_conf(KeepalivedInstance(vrid=5, priority=100, vips=["192.0.2.254/24"]))
    done = config_test(tmp_path, text.replace("virtual_router_id", "virtual_router_idd"))
    assert done.returncode != 0 and "Unknown keyword" in done.stdout + done.stderr


def test_instance_text() -> None:
    inst = KeepalivedInstance(vrid=7, priority=120, vips=["192.0.2.254/24", "192.0.2.253/24"],
                              password="s3cret", preempt=False)
    text = inst.render()
    for line in ("vrrp_instance VI_7 {", "state BACKUP", "virtual_router_id 7", "priority 120",
                 "advert_int 1", "version 2", "nopreempt", "auth_type PASS", "auth_pass s3cret",
                 "192.0.2.254/24", "192.0.2.253/24"):
        assert line in text, line
    six = KeepalivedInstance(vrid=8, priority=100, vips=["2001:db8::254/64"], advert_int=0.1)
    assert "version 3" in six.render() and "advert_int 0.1" in six.render()
    assert six.family == 6 and six.instance_name == "VI_8"


def test_a_password_with_vrrpv3_is_refused() -> None:
    with pytest.raises(ValueError, match="VRRPv2"):
        KeepalivedInstance(vrid=7, priority=100, vips=["192.0.2.254/24"], version=3,
                           password="x").render()
