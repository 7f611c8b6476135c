"""freevrrpctl without a daemon: the table, the messages, the exit codes (no root).

The control socket here is a real UNIX socket in a temporary directory, served
by the daemon's own ``ControlServer`` with canned answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from freevrrpd import ctl
from freevrrpd.core.router import Router
from freevrrpd.core.settings import RouterSettings, VirtualAddress
from freevrrpd.core.tracking import Demotion, Track
from freevrrpd.daemon.control import ControlError, ControlServer, Request, request
from freevrrpd.daemon.links import LinkStatus
from freevrrpd.daemon.supervisor import DaemonStatus
from freevrrpd.daemon.tracking import CheckStatus
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.hooks import HookResult
from freevrrpd.vrid.status import RouterStatus, snapshot
from tests.support.status_fields import documented, flatten, type_errors

NOW = 1_767_225_600.0
TREE = Path(__file__).resolve().parents[2]


def vrid_doc(**over: Any) -> dict[str, Any]:
    """One ``vrids[]`` element as docs/STATUS.md describes it."""
    v: dict[str, Any] = {
        "vrid": 1, "interface": "eth0", "family": 4, "version": 3, "state": "MASTER",
        "priority": 200, "effective_priority": 200, "master": "192.0.2.1",
        "master_priority": None, "is_master": True, "primary_address": "192.0.2.1",
        "addresses": ["192.0.2.254/24", "192.0.2.253/24"], "advert_interval": 1.0,
        "master_down_interval": 3.21875, "use_vmac": True, "faults": [],
        "last_transition": {"time": NOW - 30, "from": "BACKUP", "to": "MASTER",
                            "reason": "no advert from master for 3.219 s"},
        "transitions": 2, "adverts_sent": 1234, "adverts_received": 7,
        "drops": {"addresses": 3, "auth": 1}, "conflicts": 0, "errors": {"hook": 1},
        "hook_failures": 1,
        "last_hook": {"kind": "master", "command": "exit 3", "returncode": 3,
                      "duration": 0.01, "timed_out": False, "error": None},
        "transport": "multicast", "unicast_peers": [],
        "tracks": [{"kind": "script", "name": "chk", "weight": -50, "value": 0,
                    "healthy": False, "adds": -50}],
        "demoted": {"by": 10, "uid": 0}, "sync_group": "G", "preempt_held": None,
        "peers": [{"address": "192.0.2.2", "mac": "02:00:00:00:00:02", "priority": 100,
                   "advert_interval": 1.0, "last_seen": 0.5, "adverts": 9, "refused": 1,
                   "last_drop": "auth"}],
    }
    v.update(over)
    return v


def status_doc(*vrids: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "pid": 4242, "version": "9.9", "config": "/etc/freevrrpd.conf",
            "started": NOW - 3600, "reloads": 2, "links": {"eth0": {"up": True, "errors": 0}},
            "checks": {"chk": {"script": "exit 1", "interval": 1.0, "status": "failing",
                               "runs": 5, "failures": 5, "last_exit": 1, "last_duration": 0.01,
                               "last_timed_out": False, "last_error": None}},
            "vrids": list(vrids)}


BACKUP6 = vrid_doc(
    vrid=7, family=6, state="BACKUP", priority=100, effective_priority=100,
    master=None, is_master=False, primary_address="fe80::1", addresses=["2001:db8::254/64"],
    last_transition=None, drops={}, errors={}, hook_failures=0,
    last_hook={"kind": "backup", "command": "sleep 99", "returncode": -9, "duration": 30.0,
               "timed_out": True, "error": None})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


# ---- the table ------------------------------------------------------------------------

def test_rows_render_every_column(clock: None) -> None:
    rows = ctl.rows(status_doc(vrid_doc(), BACKUP6))
    assert rows[0] == [
        "1", "eth0", "v3/IPv4", "MASTER", "200", "200", "192.0.2.1",
        "192.0.2.254/24,192.0.2.253/24", "1234", "7", "addresses=3,auth=1", "0",
        "BACKUP->MASTER 30s ago: no advert from master for 3.219 s", "master rc=3"]
    # No master known, no transition yet, no drops; a hook that timed out.
    assert rows[1] == [
        "7", "eth0", "v3/IPv6", "BACKUP", "100", "100", "-", "2001:db8::254/64", "1234", "7",
        "0", "0", "-", "backup rc=-9 TIMEOUT"]


def test_table_has_a_header_and_aligned_columns(clock: None) -> None:
    text = ctl.table(status_doc(vrid_doc(), BACKUP6))
    lines = text.splitlines()
    assert lines[0] == ("freevrrpd 9.9 pid 4242, config /etc/freevrrpd.conf, "
                        "2 virtual router(s), 2 reload(s)")
    assert lines[1].split("  ")[0] == "VRID"
    assert len(lines) == 4
    # Every column starts at the same offset in every line.
    starts = [lines[1].index(col) for col in ("STATE", "MASTER", "VIPS", "LAST HOOK")]
    for line, state in ((lines[2], "MASTER"), (lines[3], "BACKUP")):
        assert line.index(state) == starts[0], line
    assert lines[3][starts[1]] == "-" and lines[3][starts[2]:].startswith("2001:db8::254/64")
    assert lines[2].endswith("master rc=3") and lines[3].endswith("backup rc=-9 TIMEOUT")
    assert all(line == line.rstrip() for line in lines)


def test_table_without_virtual_routers() -> None:
    text = ctl.table(status_doc())
    assert "0 virtual router(s)" in text and len(text.splitlines()) == 2


@pytest.mark.parametrize(("ago", "text"), [
    (0.4, "0s ago"), (59, "59s ago"), (119, "119s ago"), (150, "2m ago"),
    (7199, "120m ago"), (7200, "2.0h ago"), (90000, "25.0h ago"), (-5, "0s ago")])
def test_ages_are_short(clock: None, ago: float, text: str) -> None:
    assert ctl._ago(NOW - ago) == text
    assert ctl._ago(None) == "-"


# ---- talking to a daemon ----------------------------------------------------------------

@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, Callable[[], dict[str, Any]]]], str]]:
    """Start a ControlServer with the given handlers; returns its socket path."""
    servers: list[ControlServer] = []

    def start(handlers: dict[str, Callable[[], dict[str, Any]]]) -> str:
        path = str(tmp_path / f"ctl{len(servers)}.sock")
        server = ControlServer(path, {k: (lambda _r, h=h: h()) for k, h in handlers.items()})
        server.start()
        servers.append(server)
        return path

    yield start
    for server in servers:
        server.close()


def test_status_prints_the_table(serve: Any, capsys: pytest.CaptureFixture[str],
                                 clock: None) -> None:
    path = serve({"status": lambda: status_doc(vrid_doc())})
    assert ctl.main(["-s", path, "status"]) == 0
    out = capsys.readouterr().out
    assert out == ctl.table(status_doc(vrid_doc())) + "\n"


def test_status_json_prints_the_document(serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    doc = status_doc(vrid_doc(), BACKUP6)
    path = serve({"status": lambda: doc})
    assert ctl.main(["-s", path, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == doc


def test_reload_prints_what_changed(serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    answer = {"ok": True, "added": ["VRID 3 on eth0 (IPv4)"], "removed": [],
              "restarted": ["VRID 4 on eth0 (IPv4)"],
              "changed": {"VRID 1 on eth0 (IPv4)": ["priority", "addresses"]}, "unchanged": 5}
    path = serve({"reload": lambda: answer})
    assert ctl.main(["-s", path, "reload"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "reloaded: 1 added, 0 removed, 1 restarted, 1 changed, 5 unchanged",
        "  VRID 1 on eth0 (IPv4): priority, addresses"]


def test_refused_reload_exits_1_and_prints_every_error(
        serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    errors = ["/etc/freevrrpd.conf:4: priority: 300 is out of range 1..255",
              "/etc/freevrrpd.conf:9: bogus: unknown keyword"]
    path = serve({"reload": lambda: {"ok": False, "errors": errors}})
    assert ctl.main(["-s", path, "reload"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "freevrrpctl: reload refused; the daemon keeps the old configuration:",
        *(f"  {e}" for e in errors)]


def test_status_peers_prints_every_router_heard(serve: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = serve({"status": lambda: status_doc(vrid_doc())})
    assert ctl.main(["-s", path, "status", "--peers"]) == 0
    head, row = capsys.readouterr().out.splitlines()
    assert head.split() == ["VRID", "IF", "FAM", "PEER", "MAC", "PRIO", "INTERVAL", "LAST",
                            "SEEN", "ADVERTS", "REFUSED", "LAST", "DROP"]
    assert row.split() == ["1", "eth0", "IPv4", "192.0.2.2", "02:00:00:00:00:02", "100", "1s",
                           "0.5s", "ago", "9", "1", "auth"]


def test_demote_and_promote_send_the_router_and_say_what_was_done(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The words reach the daemon as written (interface names keep their case),
    with the uid of the process that asked."""
    got: list[tuple[list[str], int]] = []

    def answer(req: Request) -> dict[str, Any]:
        got.append((req.args, req.uid))
        if req.args[0] == "9":
            return {"ok": False, "error": "no virtual router matches '9'"}
        return {"ok": True, "routers": ["VRID 1 on Eth0 (IPv4)"]}

    path = str(tmp_path / "ctl.sock")
    server = ControlServer(path, {"demote": answer, "promote": answer})
    server.start()
    try:
        assert ctl.main(["-s", path, "demote", "1/Eth0", "--by", "50"]) == 0
        assert capsys.readouterr().out == "demoted: VRID 1 on Eth0 (IPv4)\n"
        assert ctl.main(["-s", path, "promote", "1/Eth0/4"]) == 0
        assert ctl.main(["-s", path, "demote", "9"]) == 1
        assert "no virtual router matches '9'" in capsys.readouterr().err
    finally:
        server.close()
    assert got == [(["1/Eth0", "by", "50"], os.getuid()), (["1/Eth0/4"], os.getuid()),
                   (["9"], os.getuid())]


def test_events_follow_in_order_and_resume_after_a_sequence_number(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bus = EventBus()
    path = str(tmp_path / "ctl.sock")
    server = ControlServer(path, {}, bus)
    server.start()
    for n in range(3):
        bus.publish("transition", "VRID 1 on eth0 (IPv4)", f"step {n}", new="MASTER")

    def later() -> None:
        time.sleep(0.5)
        bus.publish("reload", None, "reload: 0 added")
        time.sleep(0.3)
        server.close()  # the daemon stops: the stream ends

    threading.Thread(target=later, daemon=True).start()
    assert ctl.main(["-s", path, "events", "--json", "--since", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(e["seq"], e["kind"], e["message"]) for e in lines] == [
        (2, "transition", "step 1"), (3, "transition", "step 2"),
        (4, "reload", "reload: 0 added")]
    assert lines[0]["new"] == "MASTER" and lines[0]["router"] == "VRID 1 on eth0 (IPv4)"
    text = ctl.event_line(lines[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} #2 transition: VRID 1 on "
                        r"eth0 \(IPv4\): step 1", text), text


def test_missing_socket_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "nothing.sock")
    for command in (["status"], ["status", "--json"], ["reload"]):
        assert ctl.main(["-s", path, *command]) == 3
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (f"freevrrpctl: {path} does not exist: is freevrrpd running "
                       "(with -s pointing there)?\n")


def test_stale_socket_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a killed daemon leaves behind: the file, with nobody listening."""
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert ctl.main(["-s", path, "status"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"freevrrpctl: nobody listens on {path}: freevrrpd is not running\n"


def test_not_a_daemon_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Something listens but does not answer with JSON."""
    path = str(tmp_path / "other.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer_garbage() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"hello, I am not freevrrpd\n")

    t = threading.Thread(target=answer_garbage)
    t.start()
    try:
        assert ctl.main(["-s", path, "status"]) == 3
    finally:
        t.join(5)
        server.close()
    err = capsys.readouterr().err
    assert err.startswith(f"freevrrpctl: cannot talk to freevrrpd on {path}: "), err


def test_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ctl.main([])
    assert exc.value.code == 2
    assert "usage: freevrrpctl" in capsys.readouterr().err


# ---- the server side ------------------------------------------------------------------

def test_control_socket_is_private_and_replaces_a_stale_file(tmp_path: Path) -> None:
    path = str(tmp_path / "run" / "freevrrpd.sock")
    os.makedirs(os.path.dirname(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(path)
    server = ControlServer(path, {"status": lambda _r: {"ok": True, "n": 1}})
    server.start()
    try:
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert request(path, "status") == {"ok": True, "n": 1}
        assert request(path, "STATUS") == {"ok": True, "n": 1}  # commands are case-blind
        answer = request(path, "bogus")
        assert answer["ok"] is False and "unknown command 'bogus'" in answer["error"]
    finally:
        server.close()
    assert not os.path.exists(path)


# ---- the status document --------------------------------------------------------------

def test_snapshot_has_exactly_the_documented_fields() -> None:
    # No address probe: this router is driven by hand, with nobody to answer one.
    settings = RouterSettings(vrid=9, interface="eth0", version=3, priority=200,
                              advert_int_cs=100, conflict_check=False,
                              addresses=(VirtualAddress(IPv4Interface("192.0.2.254/24")),),
                              tracks=(Track("interface", "eth9", -10),))
    router = Router(settings, IPv4Address("192.0.2.1"))
    router.peers.heard(IPv4Address("192.0.2.2"), b"\x02" * 6, router.build_advert(100), 0.0)
    router.demote(Demotion(5, 0), 0.0)
    # The snapshot turns monotonic instants into Unix times: feed it this clock.
    t0 = time.monotonic()
    router.start(t0)
    router.handle_timer(t0 + 10.0)  # Master_Down_Timer expires: MASTER
    router.drops["addresses"] += 3
    hook = HookResult("master", "exit 3", 3, 0.0123, False, None)
    snap = snapshot(router, Counter({"hook": 1}), hook)
    docs = {k: v for k, v in documented().items() if k.startswith("vrids[]")}
    found = flatten({"vrids": [snap]})
    del found["vrids"]
    assert set(found) == set(docs)
    assert type_errors(found, docs) == []
    assert snap["state"] == "MASTER" and snap["master"] == "192.0.2.1"
    assert snap["last_transition"]["from"] == "BACKUP" and snap["transitions"] == 2
    assert snap["drops"] == {"addresses": 3} and snap["hook_failures"] == 1
    # Priority 200 demoted by 5: Skew_Time (256 - 195) / 256 (RFC 5798 6.1).
    assert snap["effective_priority"] == 195
    assert snap["master_down_interval"] == pytest.approx(3 + 61 / 256)
    assert abs(snap["last_transition"]["time"] - (time.time() + 10.0)) < 5

    # Not eligible: effective priority 0, no master, nothing to report yet.
    idle = snapshot(Router(settings), Counter(), None)
    assert (idle["state"], idle["effective_priority"], idle["master"]) == ("INIT", 0, None)
    assert idle["last_transition"] is None and idle["last_hook"] is None
    assert idle["primary_address"] is None


def test_the_status_types_name_exactly_the_documented_fields() -> None:
    """The TypedDicts the daemon builds its answers from are docs/STATUS.md's tables."""
    docs = documented()

    def paths(td: Any, prefix: str) -> set[str]:
        found = set()
        for name, kind in get_type_hints(td).items():
            found.add(f"{prefix}{name}")
            for inner in (kind, *get_args(kind)):
                if is_typeddict(inner):
                    listed = get_origin(kind) is list
                    found |= paths(inner, f"{prefix}{name}{'[]' if listed else ''}.")
        return found

    vrid_fields = paths(RouterStatus, "vrids[].")
    top = set(get_type_hints(DaemonStatus))
    keyed = {"vrids[].drops.<reason>", "vrids[].errors.<kind>"}
    links = {"links.<interface>", *{f"links.<interface>.{k}" for k in get_type_hints(LinkStatus)}}
    checks = {"checks.<name>", *{f"checks.<name>.{k}" for k in get_type_hints(CheckStatus)}}
    assert vrid_fields | keyed | top | links | checks == set(docs)


# ---- the control socket under stress (hardening) -----------------------------------------

def test_idle_and_dripping_clients_do_not_hold_up_status(serve: Any) -> None:
    """Clients that connect and send nothing, or drip bytes, each get DEADLINE seconds
    and never block the others: a status request meanwhile is answered at once."""
    path = serve({"status": lambda: {"ok": True, "n": 1}})
    idle = []
    for _ in range(20):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        idle.append(sock)
    dripper = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dripper.connect(path)
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                dripper.send(b"s")
            except OSError:
                return
            time.sleep(0.05)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        took = []
        for _ in range(5):
            start = time.monotonic()
            assert request(path, "status", timeout=1.0) == {"ok": True, "n": 1}
            took.append(time.monotonic() - start)
        print(f"status with 20 idle clients and a dripping one: {max(took) * 1000:.1f} ms")
    finally:
        stop.set()
        for sock in [*idle, dripper]:
            sock.close()


def test_too_many_clients_are_turned_away_not_queued(serve: Any) -> None:
    path = serve({"status": lambda: {"ok": True}})
    hogs = []
    for _ in range(80):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        hogs.append(sock)
    try:
        time.sleep(0.2)
        closed = 0
        for sock in hogs:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                closed += sock.recv(1) == b""
        assert closed >= 80 - 64  # over the cap: closed at once
    finally:
        for sock in hogs:
            sock.close()


def test_a_request_too_long_is_answered_and_closed(serve: Any) -> None:
    path = serve({"status": lambda: {"ok": True}})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"x" * 5000)
        answer = json.loads(sock.recv(65536))
    assert answer["ok"] is False and "unknown command" in answer["error"]


def test_a_failing_handler_still_answers(serve: Any) -> None:
    def broken() -> dict[str, Any]:
        raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    path = serve({"reload": broken})
    answer = request(path, "reload")
    assert answer["ok"] is False and "4300 digits" in answer["error"]


def test_a_second_daemon_never_takes_over_a_live_control_socket(serve: Any) -> None:
    path = serve({"status": lambda: {"ok": True}})
    with pytest.raises(ControlError, match="control socket of a running freevrrpd"):
        ControlServer(path, {})
    assert request(path, "status") == {"ok": True}  # the first one still answers


def test_a_stale_control_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # a file nobody listens on: a crashed daemon's
    server = ControlServer(path, {"status": lambda _r: {"ok": True}})
    server.start()
    try:
        assert request(path, "status") == {"ok": True}
    finally:
        server.close()


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    """``freevrrpctl status --json | true``: the reader is gone before we write."""
    (tmp_path / "doc.json").write_text(json.dumps(status_doc(*[vrid_doc(vrid=n)
                                                                 for n in range(1, 200)])))
    script = ("import socket, sys, os\n"
              f"s = socket.socket(socket.AF_UNIX); s.bind({str(tmp_path / 'c.sock')!r});"
              " s.listen(1)\n"
              "print('ready', flush=True)\n"
              "c, _ = s.accept(); c.recv(100)\n"
              f"c.sendall(open({str(tmp_path / 'doc.json')!r}, 'rb').read()); c.close()\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        shell = (f"{sys.executable} -m freevrrpd.ctl -s {tmp_path / 'c.sock'} status --json "
                 "| true; echo \"status ${PIPESTATUS[0]}\" >&2")
        done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "PYTHONPATH": str(TREE)})
    finally:
        server.kill()
        server.wait()
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert "status 141" in done.stderr, done.stderr  # as a writer killed by SIGPIPE


def test_freevrrpd_t_into_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    conf = tmp_path / "many.conf"
    conf.write_text("".join(f"[VRID]\nserverid = {n}\ninterface = eth0\n"
                            f"addr = 198.51.100.{n}/24\n" for n in range(1, 250)))
    # `true` is gone long before the interpreter has started: the first write fails.
    shell = (f"{sys.executable} -m freevrrpd -t -f {conf} | true; "
             "echo \"status ${PIPESTATUS[0]}\" >&2")
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(TREE)})
    assert "Traceback" not in done.stderr and "status 141" in done.stderr, done.stderr
