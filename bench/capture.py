"""A switch capture that keeps up with bursts of adverts.

The lab's ``Capture`` runs tcpdump with its default snapshot length (256 KiB)
and ``--immediate-mode``; libpcap then sizes each ring slot for a whole
snapshot, so its 2 MiB buffer holds only a handful of frames and a burst of
adverts (keepalived sends all due adverts back to back) is partly dropped by
the kernel.  Adverts and their headers fit in 256 bytes, and a bigger buffer
absorbs the rest.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from freevrrpd.lab import Lab, LabError, Switch

_DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


class SwitchCapture:
    """tcpdump on the switch's bridge, writing a nanosecond pcap; listening when built."""

    def __init__(self, lab: Lab, switch: Switch, filter: str, name: str,
                 timeout: float = 10.0) -> None:
        base = Path(lab.tmpdir, f"bench-{name}")
        self.path = str(base.with_suffix(".pcap"))
        self.log_path = str(base.with_suffix(".log"))
        argv = ["tcpdump", "-n", "-i", switch.bridge, "-U", "--immediate-mode", "-Z", "root",
                "-s", "256", "-B", "16384", "--time-stamp-precision", "nano",
                "-w", self.path, filter]
        self.proc = switch.popen(argv, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump on {switch.netns} did not start:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)

    def dropped(self) -> int | None:
        """Frames the kernel dropped before tcpdump read them (known after stop())."""
        match = _DROPPED.search(self.log())
        return int(match.group(1)) if match else None
