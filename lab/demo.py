"""``make demo``: three real freevrrpd routers in a namespace lab, failover and preemption.

    python -m lab.demo        (as root; `make demo` builds the venv first)

r1/r2/r3 (priorities 200/150/100) share VRID 1 with the virtual IP 192.0.2.254;
a client pings it every 10 ms while r1, the master, has its cable pulled
(``Host.cut``: the bridge port goes down, as when a cable is unplugged), then
plugged back in. The takeover gap is measured on the wire, on the switch, and
put next to RFC 5798 section 6.1's Master_Down_Interval. Everything runs in
``fv*`` namespaces that the ``Lab`` context manager removes on any exit.
Exit status: 0 when every step happened as expected, 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime

from freevrrpd.core.settings import VRRP_PROTO
from freevrrpd.core.timing import master_down_interval
from lab import Capture, Daemon, Host, Lab, PingReport, adverts

VIP = "192.0.2.254"
VRID = 1
VMAC = f"00:00:5e:00:01:{VRID:02x}"  # RFC 5798 section 7.3
ADVERT_CS = 20  # VRRPv3 carries centiseconds (RFC 5798 5.2.7): 0.2 s keeps the demo short
ROUTERS = (("r1", "192.0.2.1", 200), ("r2", "192.0.2.2", 150), ("r3", "192.0.2.3", 100))
DEADLINE = 10.0  # seconds any expected state change may take before the demo gives up

_TRANSITION = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ VRID \d+ on \S+ \(IPv4\): "
    r"(\w+) -> (\w+): (.*)$",
    re.MULTILINE,
)


class DemoError(RuntimeError):
    """Something the demo expected did not happen."""


def conf(priority: int) -> str:
    return "\n".join([
        "[VRID]", f"serverid = {VRID}", "interface = eth0", f"priority = {priority}",
        "version = 3", f"advertint = {ADVERT_CS / 100:g}", f"addr = {VIP}/24",
        "preempt = yes", "usevmac = yes",
        # The cable comes back for good in this demo: eligible again at once.
        "carriertimeout = 0", "",
    ])


class Demo:
    def __init__(self, lab: Lab, start: float) -> None:
        self.lab, self.start = lab, start
        self.routers: dict[str, tuple[Host, Daemon, str, int]] = {}
        self.facts: dict[str, str] = {}

    def say(self, text: str, t: float | None = None) -> None:
        """One line stamped with ``t`` (when it happened; default now), relative to start."""
        print(f"[+{(time.time() if t is None else t) - self.start:6.3f}s] {text}", flush=True)

    def mdi(self, priority: int) -> float:
        return master_down_interval(3, priority, ADVERT_CS)

    def transitions(self, name: str, since: int = 0) -> list[tuple[float, str, str, str]]:
        """(time, old, new, why) for each state change ``name`` logged after ``since``."""
        text = self.routers[name][1].log()[since:]
        return [
            (datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f").timestamp(), old, new, why)
            for ts, old, new, why in _TRANSITION.findall(text)
        ]

    def state(self, name: str) -> str:
        return next((new for _, _, new, _ in reversed(self.transitions(name))), "INIT")

    def marks(self) -> dict[str, int]:
        return {name: daemon.mark() for name, (_, daemon, _, _) in self.routers.items()}

    def show_transitions(self, marks: dict[str, int], *extra: tuple[float, str]) -> None:
        """The logged state changes since ``marks`` and ``extra`` events, in time order."""
        lines = [(t, f"  {name} log: {old} -> {new}: {why}")
                 for name, since in marks.items()
                 for t, old, new, why in self.transitions(name, since)]
        for t, text in sorted([*lines, *extra]):
            self.say(text, t)

    def wait_states(self, want: dict[str, str], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while any(self.state(n) != s for n, s in want.items()):
            for name, (_, daemon, _, _) in self.routers.items():
                if not daemon.running:
                    raise DemoError(
                        f"{name}'s freevrrpd exited ({daemon.returncode}) awaiting {what}")
            if time.monotonic() > deadline:
                now = ", ".join(f"{n} {self.state(n)}" for n in self.routers)
                raise DemoError(f"no {what} within {DEADLINE:g} s (states: {now})")
            time.sleep(0.02)

    def log_tails(self, lines: int = 12) -> None:
        for name, (_, daemon, _, _) in self.routers.items():
            print(f"--- last {lines} lines of {name}'s freevrrpd log ({daemon.log_path}):")
            for line in daemon.log().splitlines()[-lines:]:
                print(f"    {line}")
        sys.stdout.flush()

    # -- the story ---------------------------------------------------------------

    def run(self) -> None:
        lab = self.lab
        self.say(f"1. building the lab {lab.prefix}: a switch, r1/r2/r3, a client")
        lan = lab.add_switch()
        hosts = {name: lab.add_host(name, lan, f"{ip}/24") for name, ip, _ in ROUTERS}
        client = lab.add_host("client", lan, "192.0.2.100/24")
        for name, ip, prio in ROUTERS:
            self.say(f"  {name}  {ip}/24  priority {prio:3}  MAC {hosts[name].mac}")
        self.say(f"  client  {client.ipv4}  MAC {client.mac}")
        self.say(f"  VRID {VRID}: VRRPv3, advertisement interval {ADVERT_CS / 100:g} s, "
                 f"virtual IP {VIP}/24, virtual MAC {VMAC}, preempt on")
        for name, _, prio in ROUTERS[1:]:
            self.say(f"  RFC 5798 6.1 Master_Down_Interval of {name} = 3 x {ADVERT_CS / 100:g} s"
                     f" + Skew_Time (256-{prio})x{ADVERT_CS / 100:g}/256 s"
                     f" = {self.mdi(prio):.3f} s")
        for name, ip, prio in ROUTERS:
            self.routers[name] = (hosts[name], hosts[name].start_daemon(conf(prio)), ip, prio)
        pids = ", ".join(f"{n} pid {r[1].pid}" for n, r in self.routers.items())
        self.say(f"  started a freevrrpd in each router ({pids})")

        self.say("2. the election")
        self.wait_states({"r1": "MASTER", "r2": "BACKUP", "r3": "BACKUP"}, "election of r1")
        self.show_transitions(dict.fromkeys(self.routers, 0))
        self.say("  master: r1; backups: r2, r3")
        if not client.ping(VIP, count=1, timeout=2):
            raise DemoError(f"the client cannot ping the virtual IP {VIP}")
        neigh = client.neigh(VIP)
        self.say(f"  client pings {VIP}: reply; its neighbour entry: {VIP} -> {neigh}")
        if neigh != VMAC:
            raise DemoError(f"the client's neighbour entry for {VIP} is {neigh}, not {VMAC}")
        self.say("  that is the virtual MAC: hosts never need to re-learn it on failover")

        self.say("3. client pings the VIP every 10 ms; capturing VRRP on the switch")
        cap = lab.capture(lan, filter=f"ip proto {VRRP_PROTO}")
        pinger = lab.pinger(client, VIP, interval=0.01)
        time.sleep(1.0)
        if pinger.report().received == 0:
            raise DemoError("the client's background ping gets no replies")
        r1, marks = hosts["r1"], self.marks()
        self.say("  cutting r1 off the LAN: cut() pulls its cable (the bridge port goes down;"
                 " whatever r1 sends now is lost)")
        t_cut = time.time()
        r1.cut()
        self.say("  r1 is cut off", t_cut)

        self.say("4. the backup takes over")
        self.wait_states({"r2": "MASTER"}, "failover to r2")
        time.sleep(1.0)
        if self.state("r3") != "BACKUP":
            raise DemoError(f"r3 is {self.state('r3')} after the failover, expected BACKUP")
        self.failover_report(cap, pinger.report(), t_cut, marks)
        self.say(f"  client's neighbour entry now: {VIP} -> {client.neigh(VIP)}")

        self.say("5. r1's cable is plugged back in")
        marks, t_back = self.marks(), time.time()
        r1.reconnect()
        self.say("  r1 is back on the LAN", t_back)
        self.wait_states({"r1": "MASTER", "r2": "BACKUP", "r3": "BACKUP"}, "preemption by r1")
        time.sleep(1.0)
        report = pinger.stop()
        cap.stop()
        self.preempt_report(cap, report, t_back, marks)
        master = [name for name in self.routers if self.state(name) == "MASTER"]
        self.say(f"  master now: {', '.join(master)}")
        times = [t for t, _ in report.replies]
        step = statistics.median(b - a for a, b in zip(times, times[1:], strict=False))
        self.say(f"  client ping totals: {report.sent} sent in {times[-1] - times[0]:.1f} s"
                 f" (one every {step * 1000:.0f} ms in practice, asked for 10 ms),"
                 f" {report.received} answered, {report.lost} lost")
        for name, (_, daemon, _, _) in self.routers.items():
            if not daemon.running:
                raise DemoError(f"{name}'s freevrrpd exited ({daemon.returncode})")
        self.say("6. stopping the daemons and removing the lab")

    def adverts(self, cap: Capture) -> list[tuple[float, str, int]]:
        """(time, source IP, priority) of each VRRP advert the switch carried."""
        return [(a.time, a.src, a.priority) for a in adverts(cap.packets(), valid_only=True)]

    def failover_report(
        self, cap: Capture, report: PingReport, t_cut: float, marks: dict[str, int]
    ) -> None:
        ads = self.adverts(cap)
        r1_ip, r2_ip, r3_ip = (self.routers[n][2] for n in ("r1", "r2", "r3"))
        first = next((a for a in ads if a[0] > t_cut and a[1] == r2_ip), None)
        last = next((a for a in reversed(ads) if first and a[0] < first[0] and a[1] == r1_ip),
                    None)
        if first is None or last is None:
            raise DemoError("the capture does not show r1's last and r2's first advert")
        gap = first[0] - last[0]
        mdi = self.mdi(150)
        # On a loaded machine r3's timer (39 ms longer) may fire too; r2 then outranks it.
        r3 = [(t, f"  on the wire: r3's advert (priority {p}): its timer ran out as well")
              for t, src, p in ads if src == r3_ip and last[0] < t < first[0] + 1.0]
        self.show_transitions(
            marks,
            (last[0], f"  on the wire: r1's last advert (priority {last[2]})"),
            (first[0], f"  on the wire: r2's first advert (priority {first[2]})"),
            *r3,
        )
        self.say(f"  failover gap: {gap:.3f} s between r1's last and r2's first advert;"
                 f" RFC Master_Down_Interval of r2: {mdi:.3f} s ({gap - mdi:+.3f} s)")
        lost, longest = window_loss(report, t_cut, first[0] + 0.5)
        self.say(f"  client during failover: lost pings: {lost}, longest gap {longest:.3f} s")
        self.facts.update(gap=f"{gap:.3f}", mdi=f"{mdi:.3f}", lost=str(lost),
                          longest=f"{longest:.3f}")

    def preempt_report(
        self, cap: Capture, report: PingReport, t_back: float, marks: dict[str, int]
    ) -> None:
        r1_ip, r2_ip = self.routers["r1"][2], self.routers["r2"][2]
        ads = self.adverts(cap)
        first = next((a for a in ads if a[0] > t_back and a[1] == r1_ip), None)
        last = next((a for a in reversed(ads) if a[1] == r2_ip), None)
        if first is None or last is None:
            raise DemoError("the capture shows no advert from r1 after it came back")
        self.show_transitions(
            marks,
            (first[0], f"  on the wire: r1's first advert since its return (priority {first[2]})"),
            (last[0], f"  on the wire: r2's last advert (priority {last[2]}"
                      f"{': it resigns' if last[2] == 0 else ''})"),
        )
        after = self.transitions("r1")[-1][0]
        self.say(f"  preemption: r1 is master again {after - t_back:.3f} s after it was plugged"
                 f" back in (RFC: its Master_Down_Interval {self.mdi(200):.3f} s, as a backup"
                 f" that ignores lower-priority adverts)")
        lost, longest = window_loss(report, t_back, report.replies[-1][0])
        self.say(f"  client during preemption: lost pings: {lost}, longest gap {longest:.3f} s")
        self.facts.update(preempt=f"{after - t_back:.3f}", plost=str(lost))


def window_loss(report: PingReport, t0: float, t1: float) -> tuple[int, float]:
    """Pings lost and the longest silence between replies that overlap [t0, t1]."""
    answered = {seq for _, seq in report.replies}
    replies = sorted(report.replies)
    lost, longest = 0, 0.0
    for (ta, sa), (tb, sb) in zip(replies, replies[1:], strict=False):
        if tb >= t0 and ta <= t1:
            longest = max(longest, tb - ta)
            lost += sum(1 for seq in range(sa + 1, sb) if seq not in answered)
    return lost, longest


def leftovers(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(prefix)]


def main() -> int:
    if os.geteuid() != 0:
        print("freevrrpd demo: needs root for network namespaces (try: sudo make demo)",
              file=sys.stderr)
        return 2
    if missing := [t for t in ("ip", "bridge", "tcpdump", "ping") if not shutil.which(t)]:
        print(f"freevrrpd demo: missing {missing} (`make system-deps`)", file=sys.stderr)
        return 2
    start = time.time()
    demo: Demo | None = None
    failure = ""
    try:
        with Lab() as lab:
            demo = Demo(lab, start)
            try:
                demo.run()
            except Exception as exc:
                failure = str(exc) if isinstance(exc, DemoError) else f"{exc!r}"
                demo.say(f"FAILED: {failure}")
                demo.log_tails()  # the logs live in the lab's directory: print them first
        prefix = lab.prefix
    except KeyboardInterrupt:
        print(f"[+{time.time() - start:6.3f}s] interrupted: the lab has been removed",
              flush=True)
        return 130
    except Exception as exc:  # the lab itself failed to clean up
        print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
        return 1
    running = [name for name, (_, d, _, _) in demo.routers.items() if d.running]
    if left := leftovers(prefix) + running:
        print(f"FAILED: left behind after cleanup: {left}", flush=True)
        return 1
    demo.say(f"  lab {prefix} removed: its {len(lab.namespaces)} namespaces are gone,"
             " every daemon has exited")
    if failure:
        print(f"demo FAILED after {time.time() - start:.1f} s: {failure}", flush=True)
        return 1
    f = demo.facts
    print(f"summary: r1 elected master; cut off, r2 took over after {f['gap']} s on the wire"
          f" (RFC Master_Down_Interval {f['mdi']} s), client lost {f['lost']} pings"
          f" (longest gap {f['longest']} s); r1 preempted {f['preempt']} s after its return"
          f" ({f['plost']} pings lost); demo OK in {time.time() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
