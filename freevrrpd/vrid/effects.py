"""Carrying out the core's actions on Linux: adverts, addresses, announcements.

One ``Effects`` object per virtual router, used only from that router's
thread.  Each method is idempotent where the kernel allows it, so a retry
after an error (logged and counted by the caller) is always safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.mac import mac_text, virtual_mac
from freevrrpd.core.packet import Advert, encode
from freevrrpd.core.settings import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    IPAddress,
    RouterSettings,
    VirtualAddress,
)
from freevrrpd.net.capture import PacketSocket
from freevrrpd.net.frames import ETH_P_ARP, ETH_P_IPV6, garp_frame, unsolicited_na_frame, vrrp_frame
from freevrrpd.net.netlink import Netlink


class Effects:
    def __init__(self, settings: RouterSettings, netlink: Netlink, sock: PacketSocket,
                 log: logging.Logger) -> None:
        self.settings = settings
        self.netlink = netlink
        self.sock = sock
        self.log = log
        self.link_mac = netlink.link_mac(settings.interface)
        self.vmac = virtual_mac(settings.vrid, settings.family)
        self.macvlan: str | None = None
        self.src_ip: IPAddress | None = None
        self._frames: dict[Advert, bytes] = {}
        self._announce: dict[str, PacketSocket] = {}
        self.group = VRRP_GROUP_V4 if settings.family == 4 else VRRP_GROUP_V6

    @property
    def advert_mac(self) -> bytes:
        """Ethernet source of our adverts: the virtual MAC when in use (RFC 5798 7.3)."""
        return self.vmac if self.settings.use_vmac else self.link_mac

    def refresh_source(self) -> IPAddress | None:
        """Our primary address: IPv4 primary, or IPv6 link-local (RFC 5798 5.1.2.1)."""
        s = self.settings
        if s.family == 4:
            ip: IPAddress | None = self.netlink.primary_ipv4(s.interface, exclude=s.ips)
        else:
            ip = self.netlink.link_local_ipv6(s.interface, exclude=s.ips)
        if ip != self.src_ip:
            self._frames.clear()
            self.src_ip = ip
        return ip

    def update_settings(self, settings: RouterSettings) -> None:
        self.settings = settings
        self._frames.clear()

    def send_advert(self, advert: Advert) -> None:
        # Encode once per advert and reuse the bytes until something changes:
        # an advert is the hot path (up to 100 per second per VRID).
        frame = self._frames.get(advert)
        if frame is None:
            if self.src_ip is None:
                raise OSError(f"no usable source address on {self.settings.interface}")
            payload = encode(advert, self.src_ip, self.group, self.settings.checksum_pseudo_header)
            frame = vrrp_frame(self.advert_mac, self.src_ip, self.group, payload)
            self._frames[advert] = frame
        self.sock.send(frame)

    # ---- addresses ----------------------------------------------------------------
    def _target(self, va: VirtualAddress) -> str:
        """Where an address lives: its ``dev:``, else the macvlan or the interface."""
        return va.device or self.macvlan or self.settings.interface

    def claim(self, addresses: Sequence[VirtualAddress] | None = None) -> None:
        s = self.settings
        if s.use_vmac and self.macvlan is None:
            self.macvlan = self.netlink.ensure_macvlan(s.interface, s.vrid, s.family)
            self.log.debug("%s: virtual MAC %s on %s", s.name, mac_text(self.vmac), self.macvlan)
        todo = s.addresses if addresses is None else addresses
        for va in todo:
            self.netlink.add_address(self._target(va), va.interface)
        self.log.info("%s: claimed %s", s.name, ", ".join(str(a) for a in todo))

    def release(self, addresses: Sequence[VirtualAddress] | None = None) -> None:
        """Remove ``addresses`` (all, and the virtual MAC, when None)."""
        s = self.settings
        todo = s.addresses if addresses is None else addresses
        failed = []
        for va in todo:
            try:
                self.netlink.del_address(self._target(va), va.interface)
            except Exception as exc:  # one failure must not keep the others configured
                failed.append(f"{va}: {exc}")
        if addresses is None and self.macvlan is not None:
            self.netlink.delete_link(self.macvlan)
            self.macvlan = None
        self.log.info("%s: released %s", s.name, ", ".join(str(a) for a in todo))
        if failed:
            raise OSError("cannot remove " + "; ".join(failed))

    # ---- announcements (RFC 5798 6.4.1 / 6.4.2) -------------------------------------
    def _announce_socket(self, dev: str) -> PacketSocket:
        sock = self._announce.get(dev)
        if sock is None:
            ethertype = ETH_P_ARP if self.settings.family == 4 else ETH_P_IPV6
            sock = PacketSocket(dev, ethertype)
            self._announce[dev] = sock
        return sock

    def announce(self, addresses: Sequence[VirtualAddress] | None = None) -> int:
        s = self.settings
        sent = 0
        for va in s.addresses if addresses is None else addresses:
            dev = va.device or s.interface
            mac = self.advert_mac if va.device is None else self.netlink.link_mac(dev)
            sock = self._announce_socket(dev)
            if isinstance(va.ip, IPv4Address):
                sock.send(garp_frame(mac, va.ip))
            elif isinstance(va.ip, IPv6Address):
                sock.send(unsolicited_na_frame(mac, va.ip, va.ip))
            sent += 1
        return sent

    def close(self) -> None:
        for sock in self._announce.values():
            sock.close()
        self._announce.clear()
