"""MAC addresses as the protocol defines them, and as people read them."""

from __future__ import annotations


def virtual_mac(vrid: int, family: int) -> bytes:
    """The virtual router MAC address (RFC 5798 7.3, RFC 3768 7.3):
    00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} out of range 1..255")
    if family not in (4, 6):
        raise ValueError(f"unsupported address family {family!r} (4 or 6)")
    return bytes((0x00, 0x00, 0x5E, 0x00, 0x01 if family == 4 else 0x02, vrid))


def mac_text(mac: bytes) -> str:
    """``00:00:5e:00:01:07``: lower-case hex, colon separated (as ``ip link`` prints)."""
    return ":".join(f"{octet:02x}" for octet in mac)


def mac_bytes(text: str) -> bytes:
    """The six octets of ``00:00:5e:00:01:07`` (or with dashes)."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(part) <= 2 for part in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(part, 16) for part in parts)
