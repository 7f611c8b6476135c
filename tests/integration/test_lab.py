"""The namespace lab itself, on the real kernel: wiring, failures, cleanup, tools."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Host, Lab, LabError, read_pcap

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 and not os.environ.get("CI"),
        reason="needs root for network namespaces",
    ),
]

A4, B4 = "192.0.2.1", "192.0.2.2"
A6, B6 = "2001:db8::1", "2001:db8::2"


def netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def alive(pid: int) -> bool:
    """True unless the pid is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture
def pair(lab: Lab) -> tuple[Host, Host]:
    lan = lab.add_switch()
    a = lab.add_host("a", lan, f"{A4}/24", f"{A6}/64")
    b = lab.add_host("b", lan, f"{B4}/24", f"{B6}/64")
    return a, b


def test_two_hosts_ping_each_other_over_the_switch(lab: Lab, pair: tuple[Host, Host]) -> None:
    a, b = pair
    assert a.ping(B4) and b.ping(A4)
    assert a.ping(B6) and b.ping(A6)
    assert a.neigh(B4) == b.mac and b.neigh(A6) == a.mac
    assert a.ipv4 == ipaddress.IPv4Interface(f"{A4}/24") and a.ifname == "eth0"
    assert f"{A6}/64" in a.addresses() and f"{A4}/24" in a.addresses("eth0")
    assert a.links() == ["lo", "eth0"]
    ll = a.link_local()
    assert ll is not None and b.ping(f"{ll}%eth0")
    sw = lab.switches["lan"]
    assert sw.addresses() == []  # the bridge has no address, not even link-local
    assert sw.link("br0")["linkinfo"]["info_data"]["stp_state"] == 0
    # Nothing of the lab appeared in the root namespace.
    root = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert a.port not in root and b.port not in root
    assert {ns.netns for ns in lab.namespaces} <= netns_list()


def test_cut_takes_the_carrier_away_and_reconnect_restores_it(pair: tuple[Host, Host]) -> None:
    a, b = pair
    assert a.ping(B4)
    a.cut()
    link = a.link("eth0")
    assert "LOWER_UP" not in link["flags"] and "NO-CARRIER" in link["flags"]
    assert not a.ping(B4, timeout=0.5) and not b.ping(A4, timeout=0.5)
    a.reconnect()
    assert a.carrier("eth0")
    assert a.ping(B4, timeout=2) and b.ping(A6, timeout=2)


def test_isolate_drops_frames_but_keeps_the_carrier(pair: tuple[Host, Host]) -> None:
    a, b = pair
    assert b.ping(A4)
    a.isolate()
    assert a.carrier("eth0") and a.link("eth0")["operstate"] == "UP"
    assert not b.ping(A4, timeout=0.5) and not a.ping(B6, timeout=0.5)
    a.reconnect()
    assert b.ping(A4, timeout=2)


def test_addresses_outside_the_documentation_ranges_are_refused(
    lab: Lab, pair: tuple[Host, Host]
) -> None:
    lan = lab.switches["lan"]
    with pytest.raises(LabError):
        lab.add_host("c", lan, "10.1.2.3/24")
    with pytest.raises(LabError):
        lab.add_host("d", lan, None, "fd00::1/64")
    with pytest.raises(LabError):
        pair[0].ping("8.8.8.8")
    assert set(lab.hosts) == {"a", "b"}


def test_everything_is_removed_after_the_block_even_when_it_raises() -> None:
    with pytest.raises(RuntimeError, match="body failed"), Lab() as lab:
        lan = lab.add_switch()
        h = lab.add_host("h", lan, "192.0.2.10/24")
        lab.add_host("g", lan, "192.0.2.11/24")
        proc = h.popen(["sleep", "60"])
        # A process that left our process group is still found in the namespace.
        h.run(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 < /dev/null &"])
        escaped = h.pids()
        names = {ns.netns for ns in lab.namespaces}
        assert len(names) == 3 and names <= netns_list()
        raise RuntimeError("body failed")
    assert not names & netns_list()
    assert proc.returncode is not None
    assert escaped and not any(alive(pid) for pid in escaped)
    assert not Path(lab.tmpdir).exists()


def test_popen_processes_are_killed_on_exit_even_if_they_ignore_sigterm() -> None:
    with Lab() as lab:
        lab.kill_grace = 0.5
        h = lab.add_host("h", lab.add_switch(), "192.0.2.10/24")
        polite = h.popen(["sleep", "60"])
        stubborn = h.popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"])
        log = Path(lab.tmpdir, "out.log")
        talker = h.popen(["sh", "-c", "echo hello; sleep 60"], log_path=str(log))
        deadline = time.monotonic() + 5
        while "hello" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    for proc in (polite, stubborn, talker):
        assert proc.returncode is not None and not alive(proc.pid)
    assert stubborn.returncode == -signal.SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_lab_process_cleans_up(sig: signal.Signals) -> None:
    script = textwrap.dedent(
        """
        import time
        from lab import Lab
        with Lab() as lab:
            h = lab.add_host("h", lab.add_switch(), "192.0.2.10/24")
            p = h.popen(["sleep", "60"])
            print(lab.tmpdir, p.pid, *[ns.netns for ns in lab.namespaces], flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        tmpdir, pid, *names = child.stdout.readline().split()
        assert names and set(names) <= netns_list()
        child.send_signal(sig)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not set(names) & netns_list()
    assert not alive(int(pid))
    assert not Path(tmpdir).exists()


def test_atexit_cleans_a_lab_that_was_never_closed() -> None:
    script = textwrap.dedent(
        """
        from lab import Lab
        lab = Lab()
        lab.add_host("h", lab.add_switch(), "192.0.2.10/24")
        print(*[ns.netns for ns in lab.namespaces], flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    names = set(out.stdout.split())
    assert out.returncode == 0 and len(names) == 2
    assert not names & netns_list()


def _icmp_echoes(frames: list[tuple[float, bytes]]) -> list[tuple[str, str, int]]:
    """(src, dst, ICMP type) for the IPv4 ICMP echo frames."""
    out = []
    for _, frame in frames:
        if frame[12:14] != b"\x08\x00" or frame[14 + 9] != 1:
            continue
        ihl = (frame[14] & 0x0F) * 4
        src = str(ipaddress.IPv4Address(frame[26:30]))
        dst = str(ipaddress.IPv4Address(frame[30:34]))
        out.append((src, dst, frame[14 + ihl]))
    return out


def test_capture_records_pings_and_read_pcap_parses_them(lab: Lab, pair: tuple[Host, Host]) -> None:
    a, b = pair
    on_host = lab.capture(a, filter="icmp")
    on_switch = lab.capture(lab.switches["lan"])  # the bridge, all traffic
    start = time.time()
    assert a.ping(B4, count=3)
    on_host.stop()
    on_switch.stop()
    for cap in (on_host, on_switch):
        frames = read_pcap(cap.path)
        echoes = _icmp_echoes(frames)
        assert echoes.count((A4, B4, 8)) == 3, cap.path
        assert echoes.count((B4, A4, 0)) == 3, cap.path
        assert all(start - 1 < ts < time.time() + 1 for ts, _ in frames)
    frames = read_pcap(on_host.path)
    assert all(frame[12:14] == b"\x08\x00" for _, frame in frames)  # the filter applied
    request = next(f for _, f in frames if f[14 + 20] == 8)
    assert request[0:6] == bytes.fromhex(b.mac.replace(":", ""))
    assert request[6:12] == bytes.fromhex(a.mac.replace(":", ""))


def test_pinger_measures_the_gap_of_a_half_second_cut(lab: Lab, pair: tuple[Host, Host]) -> None:
    a, b = pair
    assert b.ping(A4)
    pinger = lab.pinger(b, A4, interval=0.01)
    time.sleep(0.3)
    cut_at = time.time()
    a.cut()
    time.sleep(0.5)
    a.reconnect()
    back_at = time.time()
    time.sleep(0.3)
    report = pinger.stop()
    gap, before, after = report.longest_gap()
    assert 0.4 < gap < 3.0
    assert before <= cut_at + 0.1 and after >= back_at - 0.1
    assert report.first_reply_after(cut_at + 0.05) == after
    assert report.last_reply_before(cut_at + 0.05) == before
    assert report.transmitted is not None and report.lost > 10
    assert report.received > 20 and report.unanswered


def test_start_daemon_runs_in_the_host_with_its_files(lab: Lab, pair: tuple[Host, Host]) -> None:
    a, _ = pair
    stand_in = textwrap.dedent(
        """
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        conf, pidfile = sys.argv[1], sys.argv[2]
        open(pidfile, "w").write(str(os.getpid()))
        print("config says", open(conf).read().strip(), file=sys.stderr)
        print("interfaces", os.listdir("/sys/class/net"), file=sys.stderr)
        time.sleep(60)
        """
    )
    argv = [sys.executable, "-c", stand_in, "{conf}", "{pidfile}"]
    daemon = a.start_daemon("[VRID]\nserverid = 1", argv=argv)
    assert daemon.wait_log(r"config says \[VRID\]", timeout=10)
    assert "eth0" in daemon.wait_log(r"^interfaces .*$", timeout=10).group(0)
    assert Path(daemon.pid_path).read_text() == str(daemon.pid)
    assert Path(daemon.conf_path).parent == Path(lab.tmpdir)
    mark = daemon.mark()
    with pytest.raises(LabError):
        daemon.wait_log("config says", timeout=0.2, since=mark)
    assert daemon.stop() == 0

    crashing = a.start_daemon("", argv=["sleep", "60"])
    crashing.kill9()
    assert crashing.returncode == -signal.SIGKILL

    # The real command line (the daemon itself is the lead's; only its shape here).
    real = a.start_daemon("# empty\n", extra_args=["--check"])
    assert real.argv == [
        *lab.daemon_command,
        "-F",
        "-d",
        "-f",
        real.conf_path,
        "-p",
        real.pid_path,
        "-s",
        real.socket_path,
        "--check",
    ]
    real.stop(signal.SIGKILL)
