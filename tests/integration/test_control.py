"""freevrrpctl and the control socket against real daemons (issue 5 section 2).

The status table and its JSON form (checked field by field against
docs/STATUS.md), drops counted by reason, the socket's mode, the errors when
the daemon is gone, and SIGUSR1 writing the same state to the log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
from typing import Any

import pytest

from lab import Daemon, Host, Lab
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    VIP,
    VIP6_CIDR,
    VIP_CIDR,
    WAIT,
    build_lan,
    state_re,
    wait_until,
)
from tests.support.ops_helpers import status
from tests.support.root import needs_root
from tests.support.status_fields import documented, flatten, type_errors

pytestmark = [pytest.mark.netns, needs_root]

VIP2, VIP_V2, VIP_V2_PEER = "192.0.2.253", "192.0.2.250", "192.0.2.249"


def by_vrid(st: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["vrid"]: v for v in st["vrids"]}


def ctl_at(host: Host, socket_path: str, *args: str) -> Any:
    """freevrrpctl with an explicit socket path, in ``host``'s namespace."""
    argv = [sys.executable, "-m", "freevrrpd.ctl", "-s", socket_path, *args]
    return host.run(argv, check=False)


def test_status_table_and_json_with_drops_by_reason(lab: Lab) -> None:
    """r1 runs an IPv4 and an IPv6 VRRPv3 router and a VRRPv2 one with a
    password; r2 is misconfigured on purpose (another address list on VRID 1,
    another password on VRID 3), so r1 drops its adverts and counts why."""
    net = build_lan(lab)
    # VRID 2 tracks a check and eth0 (issue 11's status fields), without effect.
    check = "[CHECK]\nname = chk\nscript = true\ninterval = 0.5\nweight = -10\n"
    conf1 = (check + vrid(1, 200, masterscript="exit 3")
             + vrid(2, 200, addr=VIP6_CIDR, trackscript="chk", trackinterface="eth0 weight 5")
             + vrid(3, 100, addr=f"{VIP_V2}/24", version=2, advertint=10, password="secret"))
    # r2's VRID 3 has priority 255 (owner): it starts as master at once, so its
    # adverts flow without waiting a VRRPv2 Master_Down_Interval.  r1's VRID 3
    # (30 s Master_Down_Interval) stays BACKUP for the whole test: the password
    # is checked before the interval (RFC 3768 7.1), so the drops say "auth".
    conf2 = (vrid(1, 100, addr=f"{VIP2}/24")
             + vrid(3, 255, addr=f"{VIP_V2_PEER}/24", version=2, advertint=1, password="wrong"))
    d1 = net.r1.start_daemon(conf1)
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d1.wait_log(state_re(2, "MASTER", family=6), WAIT)
    d2 = net.r2.start_daemon(conf2)

    def counted() -> bool:
        v = by_vrid(status(d1))
        return (v[1]["drops"].get("addresses", 0) > 0 and v[3]["drops"].get("auth", 0) > 0
                and v[1]["last_hook"] is not None)

    wait_until(counted, "r1 to count r2's adverts as dropped and run its masterscript")
    d1.wait_log(r"VRID 3 on eth0 \(IPv4\): misconfigured peer 192\.0\.2\.2: wrong password",
                WAIT)
    d1.wait_log(r"VRID 1 on eth0 \(IPv4\): misconfigured peer 192\.0\.2\.2: address list "
                rf"\[{VIP2}\] differs from ours \[{VIP}\]", WAIT)

    # --json: parses, and has exactly the documented fields with their types.
    d1.ctl("demote", "2", "--by", "1")
    wait_until(lambda: status(d1)["checks"]["chk"]["runs"] > 0, "the check to run once")
    st = status(d1)
    docs = documented()
    found = flatten(st)
    assert set(found) == set(docs), (
        f"undocumented: {sorted(set(found) - set(docs))}; "
        f"documented but missing: {sorted(set(docs) - set(found))}")
    assert type_errors(found, docs) == []
    assert st["ok"] is True and st["pid"] == d1.pid and st["config"] == d1.conf_path
    assert st["reloads"] == 0 and st["links"] == {"eth0": {"up": True, "errors": 0}}
    v = by_vrid(st)
    assert sorted(v) == [1, 2, 3]
    one, six, two = v[1], v[2], v[3]
    assert (one["state"], one["priority"], one["effective_priority"]) == ("MASTER", 200, 200)
    assert one["master"] == R1 and one["is_master"] and one["addresses"] == [VIP_CIDR]
    assert one["family"] == 4 and one["version"] == 3 and one["adverts_sent"] > 0
    assert one["last_transition"]["to"] == "MASTER" and one["transitions"] == 2
    assert one["last_hook"]["kind"] == "master" and one["last_hook"]["returncode"] == 3
    assert one["hook_failures"] == 1 and one["errors"] == {"hook": 1}
    assert six["family"] == 6 and six["state"] == "MASTER"
    assert six["master"] == net.r1.link_local() and six["addresses"] == [VIP6_CIDR]
    # 200, +5 while eth0 is up, -1 demoted; the healthy check adds nothing.
    assert six["effective_priority"] == 204 and six["demoted"] == {"by": 1, "uid": 0}
    assert [(t["name"], t["adds"]) for t in six["tracks"]] == [("chk", 0), ("eth0", 5)]
    assert st["checks"]["chk"]["status"] == "healthy" and st["checks"]["chk"]["last_exit"] == 0
    assert two["version"] == 2 and two["state"] == "BACKUP" and two["master"] is None
    assert two["drops"]["auth"] > 0 and two["adverts_received"] == 0

    # The table: one row per VRID with state, priorities, master, VIPs, counters.
    out = d1.ctl("status").stdout.splitlines()
    assert re.match(rf"freevrrpd \S+ pid {d1.pid}, config {re.escape(d1.conf_path)}, "
                    r"3 virtual router\(s\), 0 reload\(s\)$", out[0]), out[0]
    assert out[1].split() == ["VRID", "IF", "FAM", "STATE", "PRIO", "EFF", "MASTER", "VIPS",
                              "SENT", "RECV", "DROPS", "CONFL", "LAST", "TRANSITION", "LAST",
                              "HOOK"]
    rows = {int(line.split()[0]): line for line in out[2:]}
    assert sorted(rows) == [1, 2, 3], out
    assert re.match(rf"1\s+eth0\s+v3/IPv4\s+MASTER\s+200\s+200\s+{R1}\s+{VIP_CIDR}\s+\d+\s+\d+"
                    r"\s+addresses=\d+\s+0\s+BACKUP->MASTER \d+s ago: no advert from master.*"
                    r"master rc=3$", rows[1]), rows[1]
    assert re.match(rf"2\s+eth0\s+v3/IPv6\s+MASTER\s+200\s+204\s+{net.r1.link_local()}\s+"
                    rf"{VIP6_CIDR}\s+\d+\s+0\s+0\s+0\s+BACKUP->MASTER .*\s+-$", rows[2]), rows[2]
    assert re.match(rf"3\s+eth0\s+v2/IPv4\s+BACKUP\s+100\s+100\s+-\s+{VIP_V2}/24\s+0\s+0\s+"
                    r"auth=\d+\s+0\s+INIT->BACKUP .*: startup\s+-$", rows[3]), rows[3]

    # r2 sees r1's VRID 1 adverts with the other list: dropped there too.
    assert by_vrid(status(d2))[1]["drops"]["addresses"] > 0

    # A clean stop removes the socket: freevrrpctl says the daemon is not running.
    sock = d1.socket_path
    assert sock is not None and d1.stop() == 0 and d2.stop() == 0
    assert not os.path.exists(sock)
    gone = d1.ctl("status", check=False)
    assert gone.returncode == 3 and gone.stdout == ""
    assert f"freevrrpctl: {sock} does not exist: is freevrrpd running" in gone.stderr


def test_socket_is_private_and_a_dead_daemon_is_reported(lab: Lab) -> None:
    """The socket is created with mode 0600; after kill -9 its file is stale and
    freevrrpctl reports nobody listening (exit 3); a new daemon on the same
    path replaces the stale file and answers."""
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, f"{R1}/24")
    d = r1.start_daemon(vrid(1, 200))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    sock = d.socket_path
    assert sock is not None
    info = os.stat(sock)
    assert stat.S_ISSOCK(info.st_mode), oct(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == 0
    assert json.loads(d.ctl("status", "--json").stdout)["vrids"][0]["state"] == "MASTER"

    d.kill9()
    assert os.path.exists(sock), "kill -9 cannot remove the socket file"
    for command in ("status", "reload"):
        dead = d.ctl(command, check=False)
        assert dead.returncode == 3 and dead.stdout == "", dead
        assert f"freevrrpctl: nobody listens on {sock}: freevrrpd is not running" in dead.stderr

    again = r1.start_daemon("", argv=[*lab.daemon_command, "-F", "-f", d.conf_path, "-p",
                                      d.pid_path, "-s", sock])
    again.wait_log(state_re(1, "MASTER"), WAIT)
    answer = ctl_at(r1, sock, "status", "--json")
    assert answer.returncode == 0, answer
    assert json.loads(answer.stdout)["pid"] == again.pid
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert again.stop() == 0
    missing = ctl_at(r1, sock, "status")
    assert missing.returncode == 3 and "does not exist" in missing.stderr


def _usr1_line(d: Daemon, name: str, since: int) -> str:
    return d.wait_log(rf"{re.escape(name)}: state .*$", WAIT, since).group(0)


def test_sigusr1_logs_the_state_that_freevrrpctl_reports(lab: Lab) -> None:
    """SIGUSR1 still writes one line per virtual router (and per monitored
    link) to the log, with the same facts as ``freevrrpctl status``."""
    net = build_lan(lab)
    d1 = net.r1.start_daemon(vrid(1, 200) + vrid(2, 200, addr=VIP6_CIDR))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d1.wait_log(state_re(2, "MASTER", family=6), WAIT)
    d2 = net.r2.start_daemon(vrid(1, 100))
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    wait_until(lambda: by_vrid(status(d2))[1]["master"] == R1, "r2 to know its master")
    m1, m2 = d1.mark(), d2.mark()
    d1.send_signal(signal.SIGUSR1)
    d2.send_signal(signal.SIGUSR1)
    for d, mark in ((d1, m1), (d2, m2)):
        st = status(d)
        for v in st["vrids"]:
            name = f"VRID {v['vrid']} on {v['interface']} (IPv{v['family']})"
            line = _usr1_line(d, name, mark)
            assert f"state {v['state']}, priority {v['priority']}" in line, line
            assert re.search(rf"master {re.escape(v['master'] or 'unknown')}\b", line), line
            assert re.search(r"sent \d+, received \d+, drops .*, conflicts \d+, errors \d+",
                             line), line
            assert "last transition " in line and "last hook " in line, line
        d.wait_log(r"link eth0: up, errors 0", WAIT, mark)
    line = _usr1_line(d2, "VRID 1 on eth0 (IPv4)", m2)
    assert int(re.search(r"received (\d+)", line).group(1)) > 0, line  # type: ignore[union-attr]
    assert d1.stop() == 0 and d2.stop() == 0
