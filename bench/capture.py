"""The benchmark's switch capture: the lab's, tuned to keep up with bursts.

Adverts and their headers fit in 256 bytes; a short snapshot and the lab's
16 MiB buffer keep a burst of adverts (keepalived sends all due adverts back
to back) from being dropped by the kernel.  Nanosecond time stamps for jitter.
"""

from __future__ import annotations

from lab import Lab, Switch
from lab.capture import Capture

SwitchCapture = Capture  # the type the bench modules name


def switch_capture(lab: Lab, switch: Switch, filter: str, name: str) -> Capture:
    """tcpdump on the switch's bridge, writing a nanosecond pcap; listening on return."""
    return lab.capture(switch, filter=filter, path=f"{lab.tmpdir}/bench-{name}.pcap",
                       nano=True, snaplen=256)
