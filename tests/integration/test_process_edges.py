"""The daemon process at its edges (real daemons in netns): signals at start, bad
files given to a running daemon, privileges, a second instance, the MTU, and
a metrics endpoint that whoever reaches it cannot use to starve the routers.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from lab import Lab, adverts
from tests.support.daemon_conf import vrid
from tests.support.daemon_helpers import (
    R1,
    WAIT,
    build_lan,
    has_ip,
    max_gap,
    never,
    state_re,
    wait_until,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]
TREE = str(Path(__file__).resolve().parents[2])
ENV = {**os.environ, "PYTHONPATH": TREE}


def test_a_sighup_as_soon_as_the_pid_file_appears_does_not_kill_it(lab: Lab) -> None:
    """logrotate and init scripts signal the pid in the file at once: five starts,
    each hit by SIGHUP the moment the pid file exists."""
    net = build_lan(lab)
    for n in range(5):
        d = net.r1.start_daemon(vrid(1, 200))
        deadline = time.monotonic() + WAIT
        while not os.path.exists(d.pid_path) or not Path(d.pid_path).read_text().strip():
            assert time.monotonic() < deadline and d.running, d.log()
            time.sleep(0.001)
        os.kill(int(Path(d.pid_path).read_text()), signal.SIGHUP)
        d.wait_log(state_re(1, "BACKUP|MASTER"), WAIT)
        assert d.running, f"start {n}: killed by an early SIGHUP:\n{d.log()}"
        assert d.stop() == 0


def test_a_bad_file_given_to_a_running_daemon_changes_nothing(lab: Lab) -> None:
    """SIGHUP and freevrrpctl reload with a number Python cannot even convert: the
    reload is refused, the old configuration runs on, the control socket answers."""
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 200))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    Path(d.conf_path).write_text(vrid(1, 200).replace("priority = 200",
                                                      "priority = " + "9" * 5000))
    mark = d.mark()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"reload refused", WAIT, mark)
    out = d.ctl("reload", check=False)
    assert out.returncode == 1 and "priority" in out.stderr and "out of range" in out.stderr
    assert d.running and has_ip(net.r1, "192.0.2.254")
    assert '"state": "MASTER"' in d.ctl("status", "--json").stdout


def test_without_the_capabilities_it_says_which_and_exits_4(lab: Lab) -> None:
    net = build_lan(lab)
    conf = Path(lab.tmpdir, "r1.conf")
    conf.write_text(vrid(1, 200))
    Path(lab.tmpdir).chmod(0o755)
    conf.chmod(0o644)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            sys.executable, "-m", "freevrrpd", "-F", "-f", str(conf),
            "-p", f"{lab.tmpdir}/nobody.pid", "-s", f"{lab.tmpdir}/nobody.sock"]
    done = net.r1.run(argv, check=False, env=ENV, timeout=30)
    assert done.returncode == 4, done.stderr
    assert "CAP_NET_ADMIN and CAP_NET_RAW" in done.stderr and "Traceback" not in done.stderr


def test_a_second_instance_leaves_the_first_ones_control_socket_alone(lab: Lab) -> None:
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 200))
    d.wait_log(state_re(1, "MASTER"), WAIT)
    assert d.socket_path is not None
    other = net.r1.start_daemon(vrid(2, 200, addr="192.0.2.253/24"),
                                argv=[sys.executable, "-m", "freevrrpd", "-F", "-f", "{conf}",
                                      "-p", "{pidfile}", "-s", d.socket_path])
    assert other.proc.wait(WAIT) == 1
    assert "is the control socket of a running freevrrpd" in other.log(), other.log()
    assert not re.search(state_re(2, r"\S+"), other.log())  # it started no router
    assert '"vrid": 1' in d.ctl("status", "--json").stdout  # the first still answers


def test_debug_log_is_ours_and_a_fault_at_start_is_a_warning(lab: Lab) -> None:
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, None, "2001:db8::1/64")
    d = r1.start_daemon(vrid(1, 200))  # no IPv4 address: FAULT at start
    d.wait_log(r"WARNING VRID 1 on eth0 \(IPv4\): INIT -> FAULT", WAIT)
    assert "Using selector" not in d.log()


def test_under_systemd_each_line_carries_its_priority_and_no_time(lab: Lab) -> None:
    """Issue 12, section 3: with -F and stderr connected to the journal (systemd
    says so in JOURNAL_STREAM: the stream's device and inode), lines start with the
    sd-daemon priority, so that journalctl -p warning finds warnings, and carry no
    time stamp of their own (the journal has one)."""
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, None, "2001:db8::1/64")
    conf, log = Path(lab.tmpdir, "journal.conf"), Path(lab.tmpdir, "journal.log")
    conf.write_text(vrid(1, 200))
    log.touch()
    st = log.stat()
    argv = [sys.executable, "-m", "freevrrpd", "-F", "-d", "-f", str(conf), "-p",
            str(Path(lab.tmpdir, "journal.pid")), "-s", str(Path(lab.tmpdir, "journal.sock"))]
    proc = r1.popen(argv, log_path=str(log),
                    env={**ENV, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    wait_until(lambda: "INIT -> FAULT" in log.read_text(), "the FAULT at start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    lines = [line for line in log.read_text().splitlines() if line]
    assert lines and all(re.match(r"<[2-7]>(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line)
                         for line in lines), lines
    assert any(line.startswith("<4>WARNING VRID 1 on eth0 (IPv4): INIT -> FAULT")
               for line in lines), lines
    assert any(line.startswith("<6>INFO freevrrpd") for line in lines)
    assert not any(re.search(r"\d\d:\d\d:\d\d", line[:30]) for line in lines)


def test_detached_without_syslog_it_says_so_before_detaching(lab: Lab) -> None:
    """Without -F the log goes to syslog; with no syslog daemon at /dev/log, say so
    on stderr first rather than log into /dev/null once detached.  The daemon runs
    in a mount namespace of its own whose /dev is a small tmpfs without /dev/log,
    whatever the machine has."""
    sw = lab.add_switch()
    r1 = lab.add_host("r1", sw, "192.0.2.1/24")
    conf = Path(lab.tmpdir, "detach.conf")
    conf.write_text(vrid(1, 100))
    pid = Path(lab.tmpdir, "detach.pid")
    argv = [sys.executable, "-m", "freevrrpd", "-f", str(conf), "-p", str(pid), "-s",
            str(Path(lab.tmpdir, "detach.sock"))]
    no_dev_log = ('mount -t tmpfs -o mode=755,size=64k fvdev /dev && '
                  'mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/urandom c 1 9 && '
                  'exec "$@"')
    out = r1.run(["unshare", "-m", "--propagation", "private", "sh", "-c", no_dev_log, "sh",
                  *argv], check=False, timeout=60, env=ENV)
    assert out.returncode == 0, out.stderr
    def detached() -> bool:  # the pid file names the detached child once it runs
        try:
            os.kill(int(pid.read_text()), 0)
        except (OSError, ValueError):
            return False
        return True

    wait_until(detached, "the detached daemon's pid file")
    os.kill(int(pid.read_text()), signal.SIGTERM)
    assert "no syslog daemon listens at /dev/log" in out.stderr, out.stderr


def test_freevrrpd_t_refuses_an_advert_larger_than_the_mtu(lab: Lab) -> None:
    net = build_lan(lab)
    many = ", ".join(f"2001:db8::{n:x}/64" for n in range(1, 101))
    conf = Path(lab.tmpdir, "big.conf")
    conf.write_text(vrid(1, 200, addr=many))
    done = net.r1.run([sys.executable, "-m", "freevrrpd", "-t", "-f", str(conf)],
                      check=False, env=ENV)
    assert done.returncode == 2, done.stderr
    assert re.search(r"big\.conf:7: addr: .*100 addresses make an advert of 1648 bytes, over "
                     r"the MTU of eth0 \(1500\); at most 90 IPv6 addresses fit", done.stderr)


HOLDER = """
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
held, refused = [], 0
for _ in range(int(sys.argv[2])):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        refused += 1
print("holding", len(held), "refused", refused, flush=True)
time.sleep(float(sys.argv[3]))
for s in held:
    s.close()
print("dropped", flush=True)
time.sleep(30)
"""


def test_thousands_of_idle_metrics_connections_do_not_stall_the_routers(lab: Lab) -> None:
    """2000 connections to the metrics port, held and then dropped together: the
    master keeps its advert schedule (no gap over 1.5 intervals) and the backup
    never takes over."""
    net = build_lan(lab)
    interval = 0.1
    d1 = net.r1.start_daemon(vrid(1, 200, advertint=interval),
                             extra_args=["--metrics", "127.0.0.1:9477"])
    d2 = net.r2.start_daemon(vrid(1, 100, advertint=interval))
    d1.wait_log(state_re(1, "MASTER"), WAIT)
    d2.wait_log(state_re(1, "BACKUP"), WAIT)
    cap = lab.capture(net.r1.switch, filter="ip proto 112")
    mark2 = d2.mark()
    holder = net.r1.popen([sys.executable, "-c", HOLDER, "9477", "2000", "3"],
                          log_path=f"{lab.tmpdir}/holder.log")
    log = Path(f"{lab.tmpdir}/holder.log")
    wait_until(lambda: log.exists() and "holding" in log.read_text(), "the connections", 60.0)
    threads = int(net.r1.run(["sh", "-c", f"ls /proc/{d1.pid}/task | wc -l"]).stdout)
    wait_until(lambda: "dropped" in log.read_text(), "the drop", 20.0)
    time.sleep(2.0)
    cap.stop()
    holder.kill()
    sent = [a.time for a in adverts(cap.packets(), src=R1, vrid=1)]
    assert len(sent) > 30
    gap = max_gap(sent)
    print(f"largest advert gap with 2000 connections held and dropped: {gap * 1000:.1f} ms")
    assert gap < 1.5 * interval
    assert not re.search(state_re(1, "MASTER"), d2.log()[mark2:]), d2.log()[mark2:]
    print(f"threads while holding: {threads}; {log.read_text().splitlines()[0]}")
    assert threads < 20, threads  # no thread per connection


def test_metrics_export_every_drop_reason_from_zero_and_the_build(lab: Lab) -> None:
    net = build_lan(lab)
    d = net.r1.start_daemon(vrid(1, 200), extra_args=["--metrics", "127.0.0.1:9478"])
    d.wait_log(state_re(1, "MASTER"), WAIT)
    scrape = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
              "'http://127.0.0.1:9478/metrics', timeout=5).read().decode())")
    text = net.r1.run([sys.executable, "-c", scrape]).stdout
    for reason in ("ttl", "checksum", "addresses", "vlan", "malformed"):
        assert re.search(rf'freevrrpd_drops_total\{{.*reason="{reason}".*\}} 0\.0', text), reason
    assert 'freevrrpd_build_info{version="' in text
    never(lambda: not d.running, "the daemon died", 0.5)


def test_netlink_refused_at_start_is_one_line_not_a_traceback(lab: Lab) -> None:
    """A sandbox without AF_NETLINK (a unit's RestrictAddressFamilies gone wrong)."""
    net = build_lan(lab)
    conf = Path(lab.tmpdir, "r1.conf")
    conf.write_text(vrid(1, 200))
    sandbox = Path(TREE, "tests", "support", "sandbox_exec.py")
    argv = [sys.executable, str(sandbox), "--families", "unix,inet,inet6,packet",
            sys.executable, "-m", "freevrrpd", "-F", "-f", str(conf),
            "-p", f"{lab.tmpdir}/r1.pid", "-s", f"{lab.tmpdir}/r1.sock"]
    done = net.r1.run(argv, check=False, env=ENV, timeout=30)
    if done.returncode == 77:
        pytest.skip("the kernel lacks seccomp filters")  # pragma: no cover
    assert done.returncode == 1, done.stderr
    assert "cannot look at the interfaces" in done.stderr and "Traceback" not in done.stderr
