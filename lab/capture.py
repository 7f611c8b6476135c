"""Watching the lab: tcpdump captures (read with ``pcap``) and a background pinger."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .netns import LabError, Namespace
from .pcap import read_pcap

if TYPE_CHECKING:
    from .hosts import Host

_DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


class Capture:
    """tcpdump writing a pcap in a lab namespace; listening when constructed."""

    def __init__(
        self,
        ns: Namespace,
        iface: str,
        filter: str,
        path: str,
        log_path: str,
        nano: bool = False,
        timeout: float = 10.0,
        snaplen: int | None = None,
    ) -> None:
        self.path = path
        self.log_path = log_path
        # -U: flush per packet, so the file is readable while tcpdump runs.
        # -Z root: Debian's tcpdump otherwise drops to its own user, which may
        # not write into the lab's private temporary directory.
        # -B: a 16 MiB kernel buffer, or bursts (many VRIDs advertising in the
        # same millisecond) are dropped before tcpdump reads them.
        argv = ["tcpdump", "-n", "-i", iface, "-U", "--immediate-mode", "-B", "16384",
                "-Z", "root", "-w", path]
        if nano:
            argv += ["--time-stamp-precision", "nano"]
        if snaplen:
            # With --immediate-mode libpcap sizes each ring slot for a whole
            # snapshot: a short one (adverts fit in 256 bytes) packs more frames
            # into the buffer for long bursts.
            argv += ["-s", str(snaplen)]
        if filter:
            argv.append(filter)
        self.proc = ns.popen(argv, log_path=log_path)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.proc.poll() is not None:
                raise LabError(f"tcpdump on {ns.netns}/{iface} failed:\n{self.log()}")
            if time.monotonic() > deadline:
                raise LabError(f"tcpdump on {ns.netns}/{iface} not listening:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        return _read(self.log_path)

    def dropped(self) -> int | None:
        """Frames the kernel dropped before tcpdump read them (known after stop())."""
        match = _DROPPED.search(self.log())
        return int(match.group(1)) if match else None

    def stop(self, timeout: float = 5.0) -> str:
        """Stop tcpdump and wait until it has closed the file; returns its path."""
        _interrupt(self.proc, timeout)
        return self.path

    def packets(self) -> list[tuple[float, bytes]]:
        """What was captured so far (all of it after stop())."""
        return read_pcap(self.path)


_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*?icmp_seq=(\d+)", re.MULTILINE)
_NO_ANSWER = re.compile(r"^\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)", re.MULTILINE)
_STATS = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class PingReport:
    """A parsed ping log. Timestamps are wall-clock (time.time()), from ping -D."""

    replies: list[tuple[float, int]]  # (time, icmp_seq), in arrival order
    unanswered: list[tuple[float, int]]  # "no answer yet" reports (ping -O)
    transmitted: int | None  # from the closing statistics, once stopped

    @property
    def received(self) -> int:
        return len({seq for _, seq in self.replies})

    @property
    def sent(self) -> int:
        if self.transmitted is not None:
            return self.transmitted
        seqs = [seq for _, seq in self.replies + self.unanswered]
        return max(seqs, default=0)

    @property
    def lost(self) -> int:
        return max(self.sent - self.received, 0)

    def longest_gap(self) -> tuple[float, float, float]:
        """(gap, last reply before it, first reply after it), longest first."""
        times = [t for t, _ in self.replies]
        best = (0.0, 0.0, 0.0)
        for before, after in zip(times, times[1:], strict=False):
            if after - before > best[0]:
                best = (after - before, before, after)
        return best

    def first_reply_after(self, t: float) -> float | None:
        return next((ts for ts, _ in self.replies if ts > t), None)

    def last_reply_before(self, t: float) -> float | None:
        return next((ts for ts, _ in reversed(self.replies) if ts < t), None)


class Pinger:
    """``ping -D -O -i INTERVAL`` running in a host until stop() or lab cleanup."""

    def __init__(self, host: Host, target: str, interval: float, log_path: str) -> None:
        self.target = target
        self.interval = interval
        self.log_path = log_path
        argv = ["ping", "-n", "-D", "-O", "-i", f"{interval:g}", target]
        self.started = time.time()
        self.proc = host.popen(argv, log_path=log_path)

    def log(self) -> str:
        return _read(self.log_path)

    def stop(self, timeout: float = 5.0) -> PingReport:
        """SIGINT (ping then prints its statistics), wait, and parse."""
        _interrupt(self.proc, timeout)
        return self.report()

    def report(self) -> PingReport:
        """Parse what ping has written so far (complete after stop())."""
        text = self.log()
        stats = _STATS.search(text)
        return PingReport(
            replies=[(float(t), int(s)) for t, s in _REPLY.findall(text)],
            unanswered=[(float(t), int(s)) for t, s in _NO_ANSWER.findall(text)],
            transmitted=int(stats.group(1)) if stats else None,
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _interrupt(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT (tcpdump flushes, ping prints its statistics), then wait; kill if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
