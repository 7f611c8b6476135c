"""One line per virtual router, for ``freevrrpd -t``."""

from __future__ import annotations

from freevrrpd.core.settings import RouterSettings, refuses_packets


def _seconds(value: float) -> str:
    return f"{value:g}s"


def summary(settings: RouterSettings) -> str:
    """One line describing a virtual router, for ``freevrrpd -t``."""
    s = settings
    yes = {True: "yes", False: "no"}
    parts = [
        f"VRID {s.vrid} IPv{s.family} on {s.interface}:",
        f"v{s.version}",
        f"priority {s.priority}",
        f"advert {_seconds(s.advert_int)}",
        f"preempt {yes[s.preempt]}",
    ]
    if s.preempt and s.preempt_delay:
        parts.append(f"delay {_seconds(s.preempt_delay)}")
    if refuses_packets(s):
        parts.append("accept no")  # enforced by the kernel's filter (daemon.acceptmode)
    if s.password is not None:
        parts.append("auth password")
    if not s.checksum_pseudo_header:
        parts.append("checksum without pseudo-header")
    parts.append(f"vmac {yes[s.use_vmac]}")
    parts.append("addrs " + ",".join(str(a) for a in s.addresses))
    return " ".join(parts)
