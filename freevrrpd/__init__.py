"""freevrrpd: a VRRPv2/VRRPv3 daemon for Linux, config-compatible with FreeBSD's freevrrpd."""

__version__ = "0.1.0"
