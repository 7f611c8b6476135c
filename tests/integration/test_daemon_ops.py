"""Real freevrrpd daemons in the lab: transition scripts, monitored circuits and
vridsdep, and the operator's signals (SIGHUP, SIGUSR1).

Issue 3 sections 1, 4, 5 and 7. The LAN is the one of ``daemon_helpers``.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from lab import Daemon, Lab, adverts
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    VIP,
    VIP6_CIDR,
    VIP_CIDR,
    WAIT,
    build_lan,
    has_ip,
    max_gap,
    r1_returns,
    state_re,
    wait_until,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]

KINDS = ("master", "backup", "fault", "stop")


def script_blocks(path: Path) -> list[dict[str, str]]:
    """The FREEVRRPD_* environments one script appended to ``path``, in order."""
    if not path.exists():
        return []
    blocks = []
    for chunk in path.read_text().split("---\n")[1:]:
        pairs = (line.split("=", 1) for line in chunk.splitlines() if "=" in line)
        blocks.append({k.removeprefix("FREEVRRPD_"): v for k, v in pairs})
    return blocks


def test_scripts_run_with_their_environment(lab: Lab) -> None:
    """Issue 3 section 4: masterscript, backupscript, faultscript and stopscript
    run through /bin/sh with variables naming VRID, interface, family, new and
    previous state, priority and addresses, for IPv4 and IPv6 virtual routers."""
    net = build_lan(lab)
    tmp = Path(lab.tmpdir)
    # Each script appends a block per run to <kind>-<VRID>.env.
    scripts = "".join(
        f"{kind}script = {{ echo ---; env | grep ^FREEVRRPD_ | sort; }}"
        f" >> {tmp}/{kind}-$FREEVRRPD_VRID.env\n"
        for kind in KINDS
    )
    conf = vrid(1, 200) + scripts + vrid(2, 200, addr=VIP6_CIDR) + scripts
    d = net.r1.start_daemon(conf)
    for n, fam in ((1, 4), (2, 6)):
        d.wait_log(state_re(n, "MASTER", fam), WAIT)
    mark = d.mark()
    net.r1.cut()
    for n, fam in ((1, 4), (2, 6)):
        d.wait_log(state_re(n, "FAULT", fam, old="MASTER") + "link eth0 down", WAIT, mark)
    mark = d.mark()
    net.r1.reconnect()
    for n, fam in ((1, 4), (2, 6)):
        d.wait_log(state_re(n, "MASTER", fam), WAIT, mark)
    assert d.stop() == 0  # the stop scripts have run when the daemon has exited
    expected = {  # kind -> (state, previous state) of every run, in order
        "backup": [("BACKUP", "INIT"), ("BACKUP", "INIT")],  # start, link back
        "master": [("MASTER", "BACKUP"), ("MASTER", "BACKUP")],
        "fault": [("FAULT", "MASTER")],
        "stop": [("STOPPED", "MASTER")],
    }
    for vr, family, addr in (("1", "4", VIP_CIDR), ("2", "6", VIP6_CIDR)):
        for kind, runs in expected.items():
            blocks = script_blocks(tmp / f"{kind}-{vr}.env")
            assert [(b.get("STATE"), b.get("PREVIOUS_STATE")) for b in blocks] == runs, (
                f"VRID {vr} {kind}script runs: {blocks}\n{d.log()}")
            for env in blocks:
                assert env["VRID"] == vr and env["INTERFACE"] == "eth0", env
                assert env["FAMILY"] == family and env["PRIORITY"] == "200", env
                assert env["ADDRESSES"] == addr, env


def test_hanging_masterscript_does_not_delay_adverts(lab: Lab) -> None:
    """Issue 3 section 4: a script that hangs runs beside the VRID's thread, which
    keeps its advert schedule (the original ran scripts inline and stalled);
    the script is killed after hooktimeout."""
    net = build_lan(lab)
    interval = 0.1  # timing is the point here: a little slack for 2 busy cores
    sw = lab.switches["lan"]
    cap = lab.capture(sw, filter="ip proto 112")
    d1 = net.r1.start_daemon(vrid(1, 200, advertint=interval, masterscript="sleep 30",
                                  hooktimeout=2))
    became_master = d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100, advertint=interval))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    d1.wait_log(r"masterscript still running after 2\.0 s: killing it", WAIT,
                became_master.end())
    killed = d1.wait_log(r"masterscript killed after (\d+\.\d+) s", WAIT, became_master.end())
    assert 2.0 <= float(killed.group(1)) < 5.0
    time.sleep(0.5)  # a few adverts after the kill, too
    packets = (cap.stop(), cap.packets())[1]
    sent = adverts(packets, src=R1, vrid=1)
    assert len(sent) >= 2.0 / interval * 0.8, f"only {len(sent)} adverts from r1"
    assert {a.priority for a in sent} == {200}
    gap = max_gap([a.time for a in sent])
    assert gap < 3 * interval, f"adverts stalled for {gap:.3f} s while the script hung"
    assert not re.search(state_re(1, "MASTER"), d2.log()), d2.log()
    # The whole process group of the script went: no `sleep 30` is left in r1.
    assert not [p for p in net.r1.pids() if _cmdline(p).startswith("sleep")]
    assert d1.stop() == 0 and d2.stop() == 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_link_down_hands_over_and_vridsdep_follows(lab: Lab) -> None:
    """Issue 3 section 5: r1's eth0 loses carrier, so VRID 1 (on eth0) goes to
    FAULT and VRID 2 (on eth1, whose link is fine) follows through vridsdep,
    resigning with priority 0 so r2 takes over after Skew_Time; both return to
    r1 (preemption) when the link is back."""
    net = build_lan(lab)
    lan2 = lab.add_switch("lan2")
    lab.add_link(net.r1, lan2, "eth1", "198.51.100.1/24")
    lab.add_link(net.r2, lan2, "eth1", "198.51.100.2/24")
    vip2 = "198.51.100.254"
    conf1 = vrid(1, 200, vridsdep=2) + vrid(2, 200, addr=f"{vip2}/24", interface="eth1")
    conf2 = vrid(1, 100) + vrid(2, 100, addr=f"{vip2}/24", interface="eth1")
    d1 = net.r1.start_daemon(conf1)
    for n in (1, 2):
        d1.wait_log(state_re(n, "MASTER"), WAIT)
    d2 = net.r2.start_daemon(conf2)
    for n in (1, 2):
        d2.wait_log(state_re(n, "BACKUP"), WAIT)
    m1, m2 = d1.mark(), d2.mark()
    net.r1.cut()
    d1.wait_log(state_re(1, "FAULT", old="MASTER") + "link eth0 down", WAIT, m1)
    d1.wait_log(state_re(2, "FAULT", old="MASTER") + "dependency: VRID 1 lost link eth0",
                WAIT, m1)
    # VRID 2's resignation reaches r2 over the healthy eth1 link (RFC 5798 6.4.2).
    d2.wait_log(state_re(2, "MASTER", old="BACKUP") + r"master resigned \(priority 0\)",
                WAIT, m2)
    # VRID 1's resignation is lost on the cut link: r2 waits Master_Down_Interval.
    d2.wait_log(state_re(1, "MASTER", old="BACKUP") + "no advert from master", WAIT, m2)
    wait_until(lambda: has_ip(net.r2, VIP) and has_ip(net.r2, vip2), "r2 to hold both VIPs")
    assert not has_ip(net.r1, VIP) and not has_ip(net.r1, vip2)
    assert net.r1.carrier("eth1")  # VRID 2 stepped down although its own link is fine
    r1_returns(net, d1, d2, (1, 2), VIP, vip2)
    wait_until(lambda: not has_ip(net.r2, VIP) and not has_ip(net.r2, vip2),
               "r2 to release both VIPs")
    assert d1.stop() == 0 and d2.stop() == 0


def _pair(lab: Lab) -> tuple[Daemon, Daemon]:
    """r1 master (priority 200) and r2 backup (priority 100) of VRID 1; r1 also
    master of an IPv6 VRID 2."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200) + vrid(2, 200, addr=VIP6_CIDR))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d1.wait_log(state_re(2, "MASTER", family=6), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    return d1, d2


def test_sighup_leaves_the_priority_alone(lab: Lab) -> None:
    """Issue 3 section 1: the original's SIGHUP set every VRID to priority 0 and
    never restored it; here SIGHUP reloads the (unchanged) configuration and the
    master stays master, advertising its configured priority."""
    d1, d2 = _pair(lab)
    cap = lab.capture(lab.switches["lan"], filter="ip proto 112")
    m1, m2 = d1.mark(), d2.mark()
    d1.send_signal(signal.SIGHUP)
    d1.wait_log(r"received SIGHUP", WAIT, m1)
    # The configuration is unchanged: the reload changes nothing at all.
    done = d1.wait_log(r"reload done: .*$", WAIT, m1).group(0)
    assert re.search(r"\b0 changed\b", done) and re.search(r"\b0 restarted\b", done), done
    sent_at = time.time()
    time.sleep(1.0)
    packets = (cap.stop(), cap.packets())[1]
    after = [a for a in adverts(packets, src=R1, vrid=1) if a.time > sent_at]
    assert len(after) >= 5, f"r1 sent only {len(after)} adverts after SIGHUP"
    assert {a.priority for a in after} == {200}
    assert d1.running and not re.search(r" -> ", d1.log()[m1:]), d1.log()[m1:]
    assert not re.search(state_re(1, "MASTER"), d2.log()[m2:]), d2.log()[m2:]
    assert d1.stop() == 0 and d2.stop() == 0


def test_sigusr1_writes_every_vrid_state_to_the_log(lab: Lab) -> None:
    """Issue 3 section 1: SIGUSR1 logs one status line per virtual router."""
    d1, d2 = _pair(lab)
    time.sleep(0.5)  # r2 has heard r1's adverts by now
    m1, m2 = d1.mark(), d2.mark()
    d1.send_signal(signal.SIGUSR1)
    d2.send_signal(signal.SIGUSR1)
    # Issue 3 section 1 / COMMON.md: state, priority, master, faults, counters,
    # peer MACs, last transition and last hook.
    fields = [r"faults \[[^]]*\]", r"sent \d+", r"received \d+", r"drops ", r"conflicts \d+",
              r"errors \d+", r"peer MACs \[", r"last transition ", r"last hook "]
    for n, fam in ((1, 4), (2, 6)):
        line = d1.wait_log(rf"VRID {n} on eth0 \(IPv{fam}\): state MASTER, priority 200\b.*$",
                           WAIT, m1).group(0)
        assert all(re.search(f, line) for f in fields), line
        assert re.search(r"last transition BACKUP->MASTER", line), line
    line = d2.wait_log(r"VRID 1 on eth0 \(IPv4\): state BACKUP, priority 100\b.*$",
                       WAIT, m2).group(0)
    assert all(re.search(f, line) for f in fields), line
    assert re.search(rf"master {re.escape(R1)}\b", line), line
    received = int(re.search(r"received (\d+)", line).group(1))  # type: ignore[union-attr]
    assert received > 0, line
    assert d1.stop() == 0 and d2.stop() == 0
