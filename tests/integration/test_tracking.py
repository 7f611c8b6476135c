"""Priorities that follow health, sync groups and runtime demotion, with real daemons
(issue 11): a failing check or a tracked interface going down moves the master to
the backup and back; a sync group moves its routers on two LANs together;
freevrrpctl demotes and promotes; the peer table and the event stream say what
happened, in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import Daemon, Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    R2,
    VIP,
    WAIT,
    build_lan,
    has_ip,
    r1_returns,
    state_re,
    wait_until,
)
from tests.support.ops_helpers import vrid_status
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]


def check_section(name: str, flag: Path, **extra: object) -> str:
    lines = ["[CHECK]", f"name = {name}", f"script = test -e {flag}", "interval = 0.1",
             *(f"{k} = {v}" for k, v in extra.items())]
    return "\n".join(lines) + "\n"


def follow_events(d: Daemon) -> subprocess.Popen[str]:
    """``freevrrpctl events --json`` against ``d``, in its namespace."""
    assert d.socket_path is not None
    argv = d.host.exec_argv([sys.executable, "-m", "freevrrpd.ctl", "-s", d.socket_path,
                             "events", "--json"])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def stop_events(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    proc.terminate()
    out, _err = proc.communicate(timeout=5)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_failing_check_moves_the_master_to_the_backup_and_back(lab: Lab) -> None:
    """r1 (priority 200) tracks a check with weight -150 and fall/rise 2: when it
    fails r1 advertises 50 at once and r2 (100) takes over after its Skew_Time;
    when it recovers r1 preempts back.  Status, the peer table and the event
    stream say so."""
    net = build_lan(lab)
    flag = Path(lab.site.tmpdir, "r1-healthy")
    flag.touch()
    d1 = net.r1.start_daemon(check_section("chk_up", flag, weight=-150, rise=2, fall=2)
                             + vrid(1, 200, trackscript="chk_up"))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    events = follow_events(d1)
    time.sleep(0.5)
    m1, m2 = d1.mark(), d2.mark()
    flag.unlink()
    d1.wait_log(r"check chk_up now failing \(exited 1 after [0-9.]+ s; fall 2 reached\)",
                WAIT, m1)
    d1.wait_log(r"VRID 1 on eth0 \(IPv4\): priority 200 -> 50: check chk_up failing "
                r"\(weight -150\)", WAIT, m1)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP") + f"preempting lower-priority master {R1} "
                r"\(priority 50\)", WAIT, m2)
    d1.wait_log(state_re(1, "BACKUP", old="MASTER") + f"higher priority master {R2}", WAIT, m1)
    wait_until(lambda: has_ip(net.r2, VIP) and not has_ip(net.r1, VIP), "the VIP to move")
    v = vrid_status(d1, 1)
    assert v["priority"] == 200 and v["effective_priority"] == 50
    assert v["tracks"] == [{"kind": "script", "name": "chk_up", "weight": -150, "value": 0,
                            "healthy": False, "adds": -150}]
    checks = json.loads(d1.ctl("status", "--json").stdout)["checks"]
    assert checks["chk_up"]["status"] == "failing" and checks["chk_up"]["last_exit"] == 1
    peers = vrid_status(d1, 1)["peers"]
    assert [(p["address"], p["priority"]) for p in peers] == [(R2, 100)]
    assert "192.0.2.2" in d1.ctl("status", "--peers").stdout

    m1, m2 = d1.mark(), d2.mark()
    flag.touch()
    d1.wait_log(r"check chk_up now healthy \(exited 0 after [0-9.]+ s; rise 2 reached\)",
                WAIT, m1)
    d1.wait_log(state_re(1, "MASTER", old="BACKUP") + "preempting lower-priority master",
                WAIT, m1)
    d2.wait_log(state_re(1, "BACKUP", old="MASTER"), WAIT, m2)
    wait_until(lambda: has_ip(net.r1, VIP) and not has_ip(net.r2, VIP), "the VIP to return")
    seen = stop_events(events)
    kinds = [(e["kind"], e.get("new")) for e in seen]
    # In the order they happened: the drop, the hand-over, the recovery, the return.
    order = [("priority", 50), ("transition", "BACKUP"), ("priority", 200),
             ("transition", "MASTER")]
    at = [kinds.index(k) for k in order]
    assert at == sorted(at), kinds
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_tracked_interface_going_down_moves_the_master_and_back(lab: Lab) -> None:
    """r1 tracks its uplink eth1 (not its VRRP interface) with weight 0: while
    eth1 is down r1 is not eligible (FAULT) and r2 serves the VIP."""
    net = build_lan(lab)
    up = lab.add_switch("up")
    lab.add_link(net.r1, up, "eth1", "198.51.100.1/24")
    d1 = net.r1.start_daemon(vrid(1, 200, trackinterface="eth1"))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    m1, m2 = d1.mark(), d2.mark()
    net.r1.run(["ip", "link", "set", "eth1", "down"])
    d1.wait_log("tracked interface eth1 down", WAIT, m1)
    d1.wait_log(state_re(1, "FAULT", old="MASTER") + "interface eth1 down", WAIT, m1)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP") + r"master resigned \(priority 0\)",
                WAIT, m2)
    wait_until(lambda: has_ip(net.r2, VIP) and not has_ip(net.r1, VIP), "the VIP to move")
    m1, m2 = d1.mark(), d2.mark()
    net.r1.run(["ip", "link", "set", "eth1", "up"])
    d1.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m1)
    d2.wait_log(state_re(1, "BACKUP", old="MASTER"), WAIT, m2)
    wait_until(lambda: has_ip(net.r1, VIP) and not has_ip(net.r2, VIP), "the VIP to return")
    assert d1.stop() == 0 and d2.stop() == 0


def test_demote_and_promote_move_the_master_and_name_who_asked(lab: Lab) -> None:
    """``freevrrpctl demote 1 --by 150`` lowers r1's priority in its next advert
    (r2 takes over); ``promote`` undoes it; ``demote 1`` alone makes r1 not
    eligible.  Each is logged with the uid that asked."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    m1, m2 = d1.mark(), d2.mark()
    out = d1.ctl("demote", "1", "--by", "150").stdout
    assert "VRID 1 on eth0 (IPv4)" in out, out
    d1.wait_log(r"uid 0 asks: demote by 150 1", WAIT, m1)
    d1.wait_log(r"priority 200 -> 50: demoted by freevrrpctl \(uid 0\): priority lowered by "
                "150", WAIT, m1)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP") + "preempting lower-priority master",
                WAIT, m2)
    assert vrid_status(d1, 1)["demoted"] == {"by": 150, "uid": 0}
    m1, m2 = d1.mark(), d2.mark()
    d1.ctl("promote", "1/eth0/4")
    d1.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m1)
    assert vrid_status(d1, 1)["demoted"] is None
    m1, m2 = d1.mark(), d2.mark()
    d1.ctl("demote", "all")
    d1.wait_log(state_re(1, "FAULT", old="MASTER") + r"demoted by freevrrpctl \(uid 0\)",
                WAIT, m1)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m2)
    bad = d1.ctl("demote", "9", check=False)
    assert bad.returncode == 1 and "no virtual router matches '9'" in bad.stderr
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_sync_group_moves_its_routers_on_two_lans_together(lab: Lab) -> None:
    """VRID 1 (LAN 1) and VRID 2 (LAN 2) in one sync group on each router: cutting
    r1's LAN 1 puts VRID 2 in FAULT too, so r2 becomes master of both; the group
    script runs with the group's name and state; both come back together."""
    net = build_lan(lab)
    lan2 = lab.add_switch("lan2")
    lab.add_link(net.r1, lan2, "eth1", "198.51.100.1/24")
    lab.add_link(net.r2, lan2, "eth1", "198.51.100.2/24")
    vip2 = "198.51.100.254"
    out = Path(lab.site.tmpdir, "group.log")
    group = ("[SYNCGROUP]\nname = gw\n"
             f"notify = echo $FREEVRRPD_GROUP $FREEVRRPD_GROUP_STATE \"$@\" >> {out}\n")

    def conf(prio: int, script: bool) -> str:
        return ((group if script else group.split("notify")[0])
                + vrid(1, prio, syncgroup="gw")
                + vrid(2, prio, addr=f"{vip2}/24", interface="eth1", syncgroup="gw"))

    d1 = net.r1.start_daemon(conf(200, True))
    for n in (1, 2):
        d1.wait_log(state_re(n, "MASTER"), WAIT)
    d1.wait_log(r"sync group gw: BACKUP -> MASTER", WAIT)
    d2 = net.r2.start_daemon(conf(100, False))
    for n in (1, 2):
        d2.wait_log(state_re(n, "BACKUP"), WAIT)
    m1, m2 = d1.mark(), d2.mark()
    net.r1.cut()
    d1.wait_log(state_re(1, "FAULT", old="MASTER") + "link eth0 down", WAIT, m1)
    d1.wait_log(state_re(2, "FAULT", old="MASTER") + r"sync group gw: VRID 1 on eth0 "
                r"\(IPv4\) not eligible", WAIT, m1)
    d2.wait_log(state_re(2, "MASTER", old="BACKUP"), WAIT, m2)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m2)
    wait_until(lambda: has_ip(net.r2, VIP) and has_ip(net.r2, vip2), "r2 to hold both VIPs")
    assert vrid_status(d1, 2)["sync_group"] == "gw"
    r1_returns(net, d1, d2, (1, 2), VIP, vip2)
    wait_until(lambda: "gw MASTER GROUP gw MASTER" in out.read_text().splitlines()[-1:][0],
               "the group script for MASTER again")
    lines = out.read_text().splitlines()
    # Both backup at start, then master; FAULT once for the cut, however many members.
    assert lines[:3] == ["gw BACKUP GROUP gw BACKUP", "gw MASTER GROUP gw MASTER",
                         "gw FAULT GROUP gw FAULT"], lines
    assert lines.count("gw FAULT GROUP gw FAULT") == 1, lines
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_track_file_moves_the_master_and_a_reload_that_drops_it_moves_it_back(
        lab: Lab) -> None:
    """r1 tracks a file with weight -1: writing 150 into it makes r1 advertise 50 and
    r2 take over; a reload without the trackfile brings r1's 200 back at once."""
    net = build_lan(lab)
    prio = Path(lab.site.tmpdir, "r1-prio")
    prio.write_text("0\n")
    d1 = net.r1.start_daemon(vrid(1, 200, trackfile=f"{prio} weight -1"))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    m1, m2 = d1.mark(), d2.mark()
    prio.write_text("150\n")
    d1.wait_log(rf"track file {prio} now holds 150 \(was 0\)", WAIT, m1)
    d1.wait_log(rf"priority 200 -> 50: track file {prio} holds 150 \(weight -1\)", WAIT, m1)
    d2.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m2)
    m1, m2 = d1.mark(), d2.mark()
    Path(d1.conf_path).write_text(vrid(1, 200))
    out = d1.ctl("reload").stdout
    assert "tracks" in out, out
    d1.wait_log(state_re(1, "MASTER", old="BACKUP"), WAIT, m1)
    d2.wait_log(state_re(1, "BACKUP", old="MASTER"), WAIT, m2)
    assert vrid_status(d1, 1)["effective_priority"] == 200
    assert d1.stop() == 0 and d2.stop() == 0


def test_a_group_member_that_loses_the_election_takes_the_group_along_without_flapping(
        lab: Lab) -> None:
    """r1 has VRIDs 1 and 2 (two LANs) in one group, r2 the same routers without a
    group.  Demoting r1's VRID 1 lets r2 preempt it; r1's VRID 2 resigns and follows
    although its own priority is higher than r2's, and does not preempt back while
    VRID 1 follows the higher master.  Promote: both return.  (Between two grouped
    daemons r2's VRID 1 would not preempt at all while its VRID 2 follows r1's
    higher one: a group takes over whole or not at all.)"""
    net = build_lan(lab)
    lan2 = lab.add_switch("lan2")
    lab.add_link(net.r1, lan2, "eth1", "198.51.100.1/24")
    lab.add_link(net.r2, lan2, "eth1", "198.51.100.2/24")
    vip2 = "198.51.100.254"

    def conf(prio: int, grouped: bool) -> str:
        group = {"syncgroup": "gw"} if grouped else {}
        return (("[SYNCGROUP]\nname = gw\n" if grouped else "") + vrid(1, prio, **group)
                + vrid(2, prio, addr=f"{vip2}/24", interface="eth1", **group))

    d1 = net.r1.start_daemon(conf(200, True))
    for n in (1, 2):
        d1.wait_log(state_re(n, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(conf(100, False))
    for n in (1, 2):
        d2.wait_log(state_re(n, "BACKUP"), WAIT)
    time.sleep(1.2)  # r2's probes before claiming are over
    m1, m2 = d1.mark(), d2.mark()
    d1.ctl("demote", "1/eth0", "--by", "150")
    d2.wait_log(state_re(1, "MASTER", old="BACKUP") + "preempting lower-priority master", WAIT,
                m2)
    d1.wait_log(state_re(1, "BACKUP", old="MASTER") + "higher priority master", WAIT, m1)
    d1.wait_log(state_re(2, "BACKUP", old="MASTER") + r"sync group gw: VRID 1 on eth0 "
                r"\(IPv4\) became BACKUP", WAIT, m1)
    d2.wait_log(state_re(2, "MASTER", old="BACKUP") + r"master resigned \(priority 0\)", WAIT,
                m2)
    wait_until(lambda: has_ip(net.r2, VIP) and has_ip(net.r2, vip2), "r2 to hold both VIPs")
    time.sleep(1.0)  # 20 advert intervals: r1's VRID 2 (200) does not preempt r2's (100)
    assert vrid_status(d1, 2)["state"] == "BACKUP"
    assert vrid_status(d1, 2)["preempt_held"] == ("sync group gw: VRID 1 on eth0 (IPv4) "
                                                  "follows a higher master")
    assert not has_ip(net.r1, vip2)
    m1, m2 = d1.mark(), d2.mark()
    d1.ctl("promote", "all")
    for n in (1, 2):
        d1.wait_log(state_re(n, "MASTER", old="BACKUP") + "preempting lower-priority master",
                    WAIT, m1)
        d2.wait_log(state_re(n, "BACKUP", old="MASTER"), WAIT, m2)
    wait_until(lambda: has_ip(net.r1, VIP) and has_ip(net.r1, vip2), "r1 to hold both VIPs")
    assert vrid_status(d1, 2)["preempt_held"] is None
    assert d1.stop() == 0 and d2.stop() == 0
