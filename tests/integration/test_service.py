"""Init scripts and the systemd unit's sandbox, with real daemons in a lab namespace.

The init scripts run inside a lab host (``ip netns exec``) and drive a
daemonized freevrrpd (no -F) that claims a virtual address there; its syslog
reaches the test through a private /dev/log (see ``service_helpers``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Host, Lab
from tests.support.daemon_conf import vrid
from tests.support.root import needs_root
from tests.support.service_helpers import (
    DAEMON,
    HOOKS,
    INIT_SCRIPT,
    RC_SCRIPT,
    SANDBOX,
    DatagramListener,
    Script,
    alive,
    catches,
    output,
    read_pid,
    wait_until,
)

VIP = "192.0.2.254/24"
# A daemonized freevrrpd logs to syslog, facility daemon (3), tag "freevrrpd":
# <PRI> = 3 * 8 + severity (RFC 5424 6.2.1); info = 6, so <30>.
INFO = r"^<30>freevrrpd: INFO "


@pytest.fixture
def router(lab: Lab) -> Host:
    if not DAEMON.exists():
        pytest.fail(f"{DAEMON} is missing: run `make install` first")
    lan = lab.add_switch()
    return lab.add_host("r1", lan, "192.0.2.1/24")


@pytest.fixture
def syslog(lab: Lab) -> Iterator[DatagramListener]:
    listener = DatagramListener(Path(lab.tmpdir, "log.sock"))
    try:
        yield listener
    finally:
        listener.close()


def has_vip(host: Host) -> bool:
    return VIP in host.addresses()


# -- SysV init script ------------------------------------------------------------


def init_script(lab: Lab, host: Host, conf_text: str, syslog: DatagramListener | None = None,
                **extra: str) -> tuple[Script, Path]:
    tmp = Path(lab.tmpdir)
    conf = tmp / "init.conf"
    conf.write_text(conf_text)
    pidfile = tmp / "init.pid"
    env = {
        # The host's own /etc/default/freevrrpd must not leak into the test.
        "FREEVRRPD_DEFAULTS": "/dev/null",
        "DAEMON": str(DAEMON),
        "CONFIG": str(conf),
        "PIDFILE": str(pidfile),
        # The control socket stays in the lab's directory, not in /run.
        "DAEMON_ARGS": f"-d -s {tmp / 'init.sock'}",
        **extra,
    }
    return Script(host, INIT_SCRIPT, env, syslog), pidfile


@pytest.mark.netns
@needs_root
def test_init_script_starts_reports_reloads_restarts_and_stops(
    lab: Lab, router: Host, syslog: DatagramListener
) -> None:
    script, pidfile = init_script(lab, router, vrid(priority=100, addr=VIP), syslog)

    started = script("start")
    assert started.returncode == 0, output(started)
    # The daemon forked away from the script, runs in the namespace, logs to syslog.
    pid = read_pid(pidfile)
    assert pid in router.pids()
    syslog.wait(INFO + r"freevrrpd\b.* started: 1 virtual router")
    syslog.wait(r"BACKUP -> MASTER")
    wait_until("the daemon to claim the VIP", lambda: has_vip(router))

    status = script("status")
    assert status.returncode == 0, output(status)
    assert f"running (pid {pid})" in status.stdout

    again = script("start")
    assert again.returncode == 0, output(again)
    assert "already running" in again.stdout + again.stderr
    assert read_pid(pidfile) == pid

    # reload: the daemon gets SIGHUP, says so, and keeps running as master.
    assert catches(pid, signal.SIGHUP)
    mark = syslog.mark()
    reloaded = script("reload")
    assert reloaded.returncode == 0, output(reloaded)
    syslog.wait(r"(?i)sighup|reload", since=mark)
    time.sleep(0.5)
    assert alive(pid) and read_pid(pidfile) == pid
    assert has_vip(router)

    restarted = script("restart")
    assert restarted.returncode == 0, output(restarted)
    new_pid = read_pid(pidfile)
    assert new_pid != pid and not alive(pid) and alive(new_pid)
    wait_until("the restarted daemon to claim the VIP", lambda: has_vip(router))

    mark = syslog.mark()
    stopped = script("stop")
    assert stopped.returncode == 0, output(stopped)
    assert not alive(new_pid)
    assert not pidfile.exists()
    assert not has_vip(router)  # SIGTERM released the address
    syslog.wait(r"received SIGTERM", since=mark)
    syslog.wait(INFO + r"freevrrpd stopped", since=mark)

    status = script("status")
    assert status.returncode == 3, output(status)  # LSB: program is not running
    assert script("stop").returncode == 0  # LSB: stopping a stopped service succeeds
    assert script("reload").returncode == 7  # LSB: program is not running


@pytest.mark.netns
@needs_root
def test_init_script_reports_a_broken_config_a_missing_file_and_a_missing_program(
    lab: Lab, router: Host
) -> None:
    script, pidfile = init_script(lab, router, vrid(priority=100, addr=VIP) + "serverid = 300\n")
    broken = script("start")
    assert broken.returncode != 0, output(broken)
    assert "serverid" in broken.stderr  # the daemon's message, with line and keyword
    assert script("status").returncode == 3
    assert router.pids() == []

    missing_conf, _ = init_script(lab, router, "", CONFIG="/nonexistent/freevrrpd.conf")
    result = missing_conf("start")
    assert result.returncode == 6, output(result)  # LSB: program is not configured

    missing_prog, _ = init_script(lab, router, "", DAEMON="/nonexistent/freevrrpd")
    result = missing_prog("start")
    assert result.returncode == 5, output(result)  # LSB: program is not installed
    assert not pidfile.exists()


def test_init_script_has_an_lsb_header_and_the_usual_commands() -> None:
    text = INIT_SCRIPT.read_text()
    header = re.search(r"^### BEGIN INIT INFO\n(.*?)^### END INIT INFO$", text, re.S | re.M)
    assert header is not None
    for field in ("Provides:", "Required-Start:", "Required-Stop:", "Default-Start:",
                  "Default-Stop:", "Short-Description:"):
        assert f"# {field}" in header.group(1)
    usage = subprocess.run(["sh", str(INIT_SCRIPT), "bogus"], capture_output=True, text=True,
                           env={**os.environ, "FREEVRRPD_DEFAULTS": "/dev/null"}, check=False)
    assert usage.returncode == 2
    assert "start|stop|restart|reload|force-reload|status" in usage.stderr


# -- rc.d script -----------------------------------------------------------------


def rc_script(lab: Lab, host: Host, enable: str,
              syslog: DatagramListener | None = None) -> tuple[Script, Path]:
    tmp = Path(lab.tmpdir)
    conf = tmp / "rc.conf.vrrp"
    conf.write_text(vrid(priority=100, addr=VIP))
    pidfile = tmp / "rc.pid"
    rcconf = tmp / "rc.conf.d-freevrrpd"
    rcconf.write_text(
        f'freevrrpd_enable="{enable}"\n'
        f'freevrrpd_program="{DAEMON}"\n'
        f'freevrrpd_config="{conf}"\n'
        f'freevrrpd_pidfile="{pidfile}"\n'
        f'freevrrpd_flags="-d -s {tmp / "rc.sock"}"\n'
    )
    return Script(host, RC_SCRIPT, {"FREEVRRPD_RCCONF": str(rcconf)}, syslog), pidfile


@pytest.mark.netns
@needs_root
def test_rc_d_script_starts_reports_reloads_and_stops(
    lab: Lab, router: Host, syslog: DatagramListener
) -> None:
    script, pidfile = rc_script(lab, router, "YES", syslog)
    assert script("rcvar").stdout.strip() == "freevrrpd_enable=YES"

    started = script("start")
    assert started.returncode == 0, output(started)
    assert "Starting freevrrpd." in started.stdout
    pid = read_pid(pidfile)
    assert pid in router.pids()
    syslog.wait(INFO + r"freevrrpd\b.* started: ")
    wait_until("the daemon to claim the VIP", lambda: has_vip(router))

    status = script("status")
    assert status.returncode == 0, output(status)
    assert f"freevrrpd is running as pid {pid}." in status.stdout

    assert script("start").returncode == 1  # rc.subr: "already running?"

    mark = syslog.mark()
    reloaded = script("reload")
    assert reloaded.returncode == 0, output(reloaded)
    syslog.wait(r"(?i)sighup|reload", since=mark)
    time.sleep(0.5)
    assert alive(pid) and has_vip(router)

    stopped = script("stop")
    assert stopped.returncode == 0, output(stopped)
    assert f"Waiting for PIDS: {pid}." in stopped.stdout
    assert not alive(pid) and not pidfile.exists() and not has_vip(router)

    status = script("status")
    assert status.returncode == 1 and "not running" in status.stdout


@pytest.mark.netns
@needs_root
def test_rc_d_script_needs_enable_or_the_one_prefix(lab: Lab, router: Host) -> None:
    script, pidfile = rc_script(lab, router, "NO")
    refused = script("start")
    assert refused.returncode == 1
    assert "Set freevrrpd_enable to YES" in refused.stderr
    assert not pidfile.exists() and router.pids() == []

    started = script("onestart")
    assert started.returncode == 0, output(started)
    # No syslog here (no /dev/log): the daemon must not spill logging tracebacks.
    assert "Traceback" not in started.stderr, output(started)
    pid = read_pid(pidfile)
    assert script("onestatus").returncode == 0
    stopped = script("onestop")
    assert stopped.returncode == 0, output(stopped)
    assert not alive(pid)


# -- the systemd unit's sandbox ------------------------------------------------------


@pytest.mark.netns
@needs_root
def test_daemon_and_example_hooks_work_inside_the_units_sandbox(lab: Lab, router: Host) -> None:
    """What the unit allows is enough: caps, NoNewPrivileges, MDWE, address families.

    sandbox_exec.py applies the unit's NoNewPrivileges=, SystemCallArchitectures=,
    RestrictAddressFamilies= and MemoryDenyWriteExecute=; setpriv applies its
    CapabilityBoundingSet= and AmbientCapabilities=.  The example hooks run as
    masterscript and stopscript.
    """
    state_dir = Path(lab.tmpdir, "state")
    mdwe_file = Path(lab.tmpdir, "hook-mdwe")
    mdwe_probe = (f"{sys.executable} -c 'import ctypes; "
                  f"print(ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))' > {mdwe_file}")
    conf = vrid(priority=100, addr=VIP,
                masterscript=f"{HOOKS / 'master.sh'} && {mdwe_probe}",
                stopscript=str(HOOKS / "stop.sh"))
    caps = "-all,+net_admin,+net_raw"
    argv = [sys.executable, str(SANDBOX), "setpriv", "--bounding-set", caps, "--inh-caps", caps,
            "--ambient-caps", caps, str(DAEMON), "-F", "-d", "-f", "{conf}", "-p", "{pidfile}",
            "-s", "{socket}"]
    # Type=notify: systemd's $NOTIFY_SOCKET, here a datagram socket of the test.
    notify = DatagramListener(Path(lab.tmpdir, "notify.sock"))
    env = {"FREEVRRPD_STATE_DIR": str(state_dir), "NOTIFY_SOCKET": str(notify.path)}
    try:
        sandboxed_daemon(lab, router, conf, argv, env, notify, state_dir, mdwe_file)
    finally:
        notify.close()


def sandboxed_daemon(lab: Lab, router: Host, conf: str, argv: list[str], env: dict[str, str],
                     notify: DatagramListener, state_dir: Path, mdwe_file: Path) -> None:
    daemon = router.start_daemon(conf, argv=argv, env=env)
    try:
        daemon.wait_log(r"-> MASTER", timeout=20)
    except Exception:
        if daemon.returncode == 77:
            pytest.skip("kernel without PR_SET_MDWE or seccomp: " + daemon.log())
        raise
    status = Path(f"/proc/{daemon.pid}/status").read_text()
    assert re.search(r"^CapEff:\s*0*3000$", status, re.M), status  # NET_ADMIN | NET_RAW
    assert re.search(r"^CapBnd:\s*0*3000$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s*1$", status, re.M), status
    assert re.search(r"^Seccomp:\s*2$", status, re.M), status
    wait_until("the VIP", lambda: has_vip(router))
    # The sysctls that ProtectKernelTunables= would have made read-only.
    assert router.get_sysctl("net.ipv4.conf.eth0.arp_ignore") == "1"
    assert router.get_sysctl("net.ipv4.conf.eth0.arp_announce") == "2"

    state = state_dir / "vrid-1-ipv4-eth0.state"
    wait_until("master.sh to write the state file", state.exists)
    assert state.read_text() == f"MASTER 100 {VIP}\n"
    wait_until("the MDWE probe of the hook", lambda: mdwe_file.exists()
               and mdwe_file.read_text().strip() != "")
    assert mdwe_file.read_text().strip() == "1"  # inherited from the daemon
    daemon.wait_log(r"masterscript exited 0", timeout=10)
    # READY=1 once every virtual router's thread runs (Type=notify in the unit).
    assert "READY=1" in notify.wait(r"READY=1").splitlines()

    assert daemon.stop(timeout=20) == 0
    notify.wait(r"STOPPING=1")
    assert state.read_text() == f"STOPPED 100 {VIP}\n"
    assert not has_vip(router)


def test_sandbox_helper_refuses_other_address_families() -> None:
    """The emulation itself: with only AF_UNIX allowed, AF_INET fails with EAFNOSUPPORT."""
    probe = ("import socket, errno\n"
             "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()\n"
             "try:\n"
             "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    result = subprocess.run([sys.executable, str(SANDBOX), "--families", "unix",
                             sys.executable, "-c", probe],
                            capture_output=True, text=True, check=False, timeout=60)
    if result.returncode == 77:
        pytest.skip(result.stderr)
    assert result.returncode == 0 and result.stdout.strip() == "EAFNOSUPPORT", output(result)


def test_reload_tells_systemd_and_a_refused_file_fails_the_units_reload(
        lab: Lab, router: Host) -> None:
    """Issue 12, section 3: RELOADING=1 with MONOTONIC_USEC before a reload and
    READY=1 after it (sd_notify(3)); the unit's ExecReload (freevrrpctl reload)
    fails when the daemon refuses the file, here for an interface that does not
    exist, and the old configuration runs on."""
    notify = DatagramListener(Path(lab.tmpdir, "notify.sock"))
    try:
        daemon = router.start_daemon(vrid(priority=100, addr=VIP),
                                     env={"NOTIFY_SOCKET": str(notify.path)})
        daemon.wait_log(r"-> MASTER", timeout=20)
        notify.wait(r"READY=1")
        ctl = str(DAEMON.with_name("freevrrpctl"))
        unit_reload = [ctl, "-s", str(daemon.socket_path), "reload"]
        since = len(notify.messages())
        assert router.run(unit_reload, check=False).returncode == 0
        reloading = notify.wait(r"RELOADING=1", since)
        stamp = int(re.search(r"MONOTONIC_USEC=(\d+)", reloading).group(1))  # type: ignore[union-attr]
        assert abs(stamp / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 30
        notify.wait(r"^READY=1$", since + 1)
        Path(daemon.conf_path).write_text(vrid(priority=100, addr=VIP, interface="eth9"))
        since = len(notify.messages())
        refused = router.run(unit_reload, check=False)
        assert refused.returncode != 0 and "interface eth9 does not exist" in refused.stderr
        notify.wait(r"RELOADING=1", since)
        notify.wait(r"^READY=1$", since + 1)
        assert has_vip(router) and daemon.stop() == 0
    finally:
        notify.close()
