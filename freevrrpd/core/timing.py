"""Protocol timers of RFC 3768 section 6.1 (VRRPv2) and RFC 5798 section 6.1 (VRRPv3).

All values are in seconds (floats); the core never reads a clock, callers
pass ``now`` in and deadlines are absolute values on the caller's clock.
"""

from __future__ import annotations


def skew_time(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Skew_Time: how much longer a lower-priority backup waits.

    RFC 3768 6.1: ``(256 - Priority) / 256`` seconds.
    RFC 5798 6.1: ``((256 - Priority) * Master_Adver_Interval) / 256``
    (Master_Adver_Interval in centiseconds, the result too).
    """
    if version == 2:
        return (256 - priority) / 256.0
    return ((256 - priority) * master_adver_int_cs) / 256.0 / 100.0


def master_down_interval(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Master_Down_Interval: ``3 * interval + Skew_Time`` (both RFCs, section 6.1)."""
    return 3 * master_adver_int_cs / 100.0 + skew_time(version, priority, master_adver_int_cs)
