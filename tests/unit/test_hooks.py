"""Transition scripts: real /bin/sh processes, short timeouts."""

from __future__ import annotations

import logging
import queue
import re
import socket
import time
from pathlib import Path

import pytest

from freevrrpd.vrid import hooks
from freevrrpd.vrid.hooks import HookResult, HookRunner, hook_env

LOG = logging.getLogger("test.hooks")


class Collector:
    """on_result callback that lets a test wait for results."""

    def __init__(self) -> None:
        self.results: queue.SimpleQueue[HookResult] = queue.SimpleQueue()

    def __call__(self, result: HookResult) -> None:
        self.results.put(result)

    def get(self, timeout: float = 10.0) -> HookResult:
        return self.results.get(timeout=timeout)


def _dead(pid: int) -> bool:
    """True when pid is gone or a zombie (killed, waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _dead(pid):
            return True
        time.sleep(0.02)
    return _dead(pid)


def test_hook_env_names_every_variable() -> None:
    env = hook_env(7, "eth0", 4, "MASTER", "BACKUP", 150, ["192.0.2.10/24", "192.0.2.11/32"])
    assert env == {
        "FREEVRRPD_VRID": "7",
        "FREEVRRPD_INTERFACE": "eth0",
        "FREEVRRPD_FAMILY": "4",
        "FREEVRRPD_STATE": "MASTER",
        "FREEVRRPD_PREVIOUS_STATE": "BACKUP",
        "FREEVRRPD_PRIORITY": "150",
        "FREEVRRPD_ADDRESSES": "192.0.2.10/24 192.0.2.11/32",
    }
    v6 = hook_env(1, "eth1", 6, "BACKUP", "INIT", 100, [])
    assert v6["FREEVRRPD_FAMILY"] == "6"
    # Families are 4 or 6 everywhere; a socket constant is not one.
    for bad in (5, socket.AF_INET6):
        with pytest.raises(ValueError):
            hook_env(1, "eth1", bad, "BACKUP", "INIT", 100, [])


def test_script_sees_its_environment_merged_over_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FV_TEST_INHERITED", "kept")
    got = Collector()
    runner = HookRunner("VRID 7", 5.0, LOG, got)
    env = hook_env(7, "eth0", 6, "MASTER", "BACKUP", 200, ["2001:db8::1/64"])
    runner.submit(
        "master",
        'echo "$FREEVRRPD_VRID|$FREEVRRPD_INTERFACE|$FREEVRRPD_FAMILY|$FREEVRRPD_STATE|'
        '$FREEVRRPD_PREVIOUS_STATE|$FREEVRRPD_PRIORITY|$FREEVRRPD_ADDRESSES|$FV_TEST_INHERITED"',
        env,
    )
    result = got.get()
    runner.close()
    assert result.ok
    assert result.output == "7|eth0|6|MASTER|BACKUP|200|2001:db8::1/64|kept"
    assert runner.last() == result


def test_hooks_of_one_runner_run_in_order_one_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "order"
    got = Collector()
    runner = HookRunner("VRID 1", 5.0, LOG, got)
    kinds = ["master", "backup", "fault", "backup", "master", "stop"]
    for i, kind in enumerate(kinds):
        # Earlier scripts sleep longer: if two ran at once, the order would flip.
        # The "running" marker catches overlap directly.
        delay = 0.05 * (len(kinds) - i)
        runner.submit(
            kind,
            f"[ -e {tmp_path}/running ] && echo overlap >> {out}; touch {tmp_path}/running; "
            f"sleep {delay}; echo {i} >> {out}; rm {tmp_path}/running",
            {},
        )
    results = [got.get() for _ in kinds]
    runner.close()
    assert [r.kind for r in results] == kinds
    assert out.read_text().split() == [str(i) for i in range(len(kinds))]


def test_submit_does_not_wait_for_a_running_script(tmp_path: Path) -> None:
    runner = HookRunner("VRID 2", 10.0, LOG)
    start = time.monotonic()
    runner.submit("master", f"touch {tmp_path}/started; sleep 2", {})
    runner.submit("backup", "true", {})
    submitted = time.monotonic() - start
    # The first script is really running while we are back already.
    deadline = time.monotonic() + 5
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (tmp_path / "started").exists()
    assert submitted < 0.5
    assert runner.pending() == 2
    assert runner.last() is None  # the sleeping script has not finished
    runner.close(wait=0.0)  # shutdown bound spent: the sleep is killed


def test_a_hanging_script_and_its_children_are_killed_at_timeout(tmp_path: Path) -> None:
    got = Collector()
    runner = HookRunner("VRID 3", 0.5, LOG, got)
    runner.submit(
        "master",
        f"echo $$ > {tmp_path}/shell; sleep 60 & echo $! > {tmp_path}/child; wait",
        {},
    )
    result = got.get()
    runner.close()
    shell = int((tmp_path / "shell").read_text())
    child = int((tmp_path / "child").read_text())
    assert result.timed_out
    assert result.error is not None and "timed out" in result.error
    assert result.returncode is not None and result.returncode < 0
    assert 0.4 < result.duration < 5.0
    assert _wait_dead(shell)
    assert _wait_dead(child)


def test_a_script_ignoring_sigterm_gets_sigkill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks, "KILL_GRACE", 0.2)
    got = Collector()
    runner = HookRunner("VRID 4", 0.3, LOG, got)
    runner.submit(
        "backup",
        f"trap '' TERM; echo $$ > {tmp_path}/shell; "
        f"sh -c \"trap '' TERM; sleep 60\" & echo $! > {tmp_path}/child; wait",
        {},
    )
    result = got.get()
    runner.close()
    assert result.timed_out
    assert result.returncode == -9
    assert _wait_dead(int((tmp_path / "shell").read_text()))
    assert _wait_dead(int((tmp_path / "child").read_text()))


def test_close_runs_the_queued_stop_script(tmp_path: Path) -> None:
    out = tmp_path / "log"
    runner = HookRunner("VRID 5", 5.0, LOG)
    runner.submit("master", f"sleep 0.3; echo master >> {out}", {})
    runner.submit("stop", f"echo stop >> {out}", {})
    runner.close()
    assert out.read_text().split() == ["master", "stop"]
    result = runner.last()
    assert result is not None and result.kind == "stop" and result.ok
    # Closed: later submissions are refused, not run.
    runner.submit("master", f"echo late >> {out}", {})
    time.sleep(0.2)
    assert out.read_text().split() == ["master", "stop"]


def test_close_bound_kills_the_running_script_and_drops_the_rest(tmp_path: Path) -> None:
    got = Collector()
    runner = HookRunner("VRID 6", 30.0, LOG, got)
    runner.submit("master", "sleep 30", {})
    runner.submit("stop", f"touch {tmp_path}/stop-ran", {})
    start = time.monotonic()
    runner.close(wait=0.3)
    assert time.monotonic() - start < 5.0
    first, second = got.get(), got.get()
    assert first.error == "killed at shutdown" and first.returncode == -9
    assert second.kind == "stop" and second.error == "dropped at shutdown"
    assert not (tmp_path / "stop-ran").exists()


def test_failing_script_reports_its_code_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    got = Collector()
    runner = HookRunner("VRID 8", 5.0, LOG, got)
    runner.submit("fault", "echo something broke >&2; exit 3", {})
    runner.submit("master", "/nonexistent/freevrrpd-test-script", {})
    runner.submit("backup", "true", {})
    failed, missing, fine = got.get(), got.get(), got.get()
    runner.close()
    assert failed.returncode == 3 and not failed.ok and failed.error is None
    assert failed.output == "something broke"
    assert missing.returncode == 127
    assert fine.ok
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(re.fullmatch(r"VRID 8: faultscript exited 3 after \d+\.\d\d s", m) for m in warnings)
    assert "VRID 8: faultscript: | something broke" in warnings
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(re.fullmatch(r"VRID 8: backupscript exited 0 after \d+\.\d\d s", m) for m in infos)


def test_a_broken_callback_does_not_stop_later_scripts(tmp_path: Path) -> None:
    calls: list[str] = []

    def callback(result: HookResult) -> None:
        calls.append(result.kind)
        raise RuntimeError("callback bug")

    runner = HookRunner("VRID 9", 5.0, LOG, callback)
    runner.submit("master", "true", {})
    runner.submit("backup", f"touch {tmp_path}/second", {})
    runner.close()
    assert calls == ["master", "backup"]
    assert (tmp_path / "second").exists()


def test_empty_command_and_unused_runner_cost_nothing() -> None:
    runner = HookRunner("VRID 10", 5.0, LOG)
    runner.submit("master", "   ", {})
    assert runner.pending() == 0
    assert runner._thread is None  # no script, no thread
    runner.close()
    runner.close()  # twice is fine


def test_no_timeout_means_no_limit() -> None:
    got = Collector()
    runner = HookRunner("VRID 11", 0, LOG, got)
    assert runner.timeout is None
    runner.submit("master", "sleep 0.2; exit 0", {})
    assert got.get().ok
    runner.close()


def test_keepalived_notify_runs_after_the_states_own_script_with_its_four_arguments() -> None:
    from ipaddress import ip_interface

    from freevrrpd.core.actions import State
    from freevrrpd.core.settings import RouterSettings, VirtualAddress

    s = RouterSettings(vrid=7, interface="eth0", masterscript="/m",
                       addresses=(VirtualAddress(ip_interface("192.0.2.1/24")),),
                       notify="/etc/keepalived/notify.sh", name_text="VI_1")
    jobs = hooks.transition_scripts(s, State.MASTER, State.BACKUP, 150)
    assert [(kind, command) for kind, command, _ in jobs] == [
        ("master", "/m"), ("notify", "/etc/keepalived/notify.sh INSTANCE VI_1 MASTER 150")]
    # keepalived says STOP where we say STOPPED; the default name is the identity.
    unnamed = RouterSettings(vrid=7, interface="eth0", addresses=s.addresses, notify="/n")
    ((_, command, env),) = hooks.transition_scripts(unnamed, State.STOPPED, State.MASTER, 0)
    assert command == "/n INSTANCE vrid7-eth0-v4 STOP 0"
    assert env["FREEVRRPD_STATE"] == "STOPPED"
    assert hooks.transition_scripts(RouterSettings(vrid=7, interface="eth0", addresses=()),
                                    State.BACKUP, State.INITIALIZE, 100) == []
