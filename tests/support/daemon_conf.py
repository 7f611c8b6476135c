"""Config text for lab daemons: short VRRPv3 intervals unless a test is about timing."""

from __future__ import annotations


def vrid(serverid: int = 1, priority: int = 100, addr: str = "192.0.2.254/24",
         interface: str = "eth0", version: int = 3, advertint: float = 0.05,
         **extra: object) -> str:
    lines = [
        "[VRID]",
        f"serverid = {serverid}",
        f"interface = {interface}",
        f"priority = {priority}",
        f"version = {version}",
        f"advertint = {advertint:g}",
        f"addr = {addr}",
        # Tests cut links on purpose: come back at once unless the test says otherwise.
        "carriertimeout = 0",
    ]
    for key, value in extra.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
