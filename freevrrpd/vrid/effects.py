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
from freevrrpd.net.unicast import UnicastSender
from freevrrpd.vrid.addressbook import AddressBook


class Effects:
    def __init__(self, settings: RouterSettings, netlink: Netlink, log: logging.Logger,
                 book: AddressBook) -> None:
        self.settings = settings
        self.netlink = netlink
        self.log = log
        self.book = book  # what we add is recorded there, and only that is ever removed
        # The address owner's own addresses (RFC 5798 3): already on the interface,
        # neither added nor removed by us, and usable as our source address.
        self.owned: frozenset[VirtualAddress] = frozenset()
        # The interface's socket and MAC, while it exists (``attach``).
        self.sock: PacketSocket | None = None
        self.link_mac = b""
        self.vmac = virtual_mac(settings.vrid, settings.family)
        self.macvlan: str | None = None
        self.src_ip: IPAddress | None = None
        self._frames: dict[Advert, bytes] = {}
        # Unicast peers (``unicastpeer``): their payloads, and the socket they go by.
        self._unicast: dict[Advert, list[tuple[bytes, IPAddress]]] = {}
        self.unicast: UnicastSender | None = None
        self._unicast_failed: list[str] = []
        self._announce: dict[str, PacketSocket] = {}
        self.group = VRRP_GROUP_V4 if settings.family == 4 else VRRP_GROUP_V6

    def attach(self, sock: PacketSocket) -> None:
        """Send through ``sock``, on the interface as it is now (also when it was
        created again: its MAC may differ, our virtual-MAC interface went with the
        old one)."""
        self.detach()
        self.link_mac = self.netlink.link_mac(self.settings.interface)
        self.owned = self._owned()
        self.sock = sock

    def _owned(self) -> frozenset[VirtualAddress]:
        s = self.settings
        if not s.owner:
            return frozenset()
        found = set()
        for dev in {a.device or s.interface for a in s.addresses}:
            present = {a.ip for a in self.netlink.addresses(dev)}
            found |= {a for a in s.addresses if (a.device or s.interface) == dev
                      and a.ip in present and not self.book.ours(dev, str(a.interface))}
        return frozenset(found)

    def detach(self) -> None:
        """The interface is gone: nothing can be sent until ``attach``.  Our
        virtual-MAC interface went with it, and the addresses on that."""
        self.close()
        if self.macvlan is not None:
            self.book.removed((self.macvlan, str(a.interface)) for a in self.settings.addresses
                              if a.device is None)
        self.sock, self.macvlan = None, None
        self._frames.clear()

    def forget(self, device: str) -> None:
        """A ``dev:`` device was deleted or created again: reopen its socket next time."""
        sock = self._announce.pop(device, None)
        if sock is not None:
            sock.close()

    @property
    def advert_mac(self) -> bytes:
        """Ethernet source of our adverts: the virtual MAC when in use (RFC 5798 7.3)."""
        return self.vmac if self.settings.use_vmac else self.link_mac

    def refresh_source(self) -> IPAddress | None:
        """Our primary address: IPv4 primary, or IPv6 link-local (RFC 5798 5.1.2.1)."""
        s = self.settings
        # Our virtual addresses are never the source, but for the owner's own.
        exclude = [a.ip for a in s.addresses if a not in self.owned]
        ip: IPAddress | None
        if s.unicast_src is not None:
            # unicastsrc: that address, while the interface has it.
            present = {a.ip for a in self.netlink.addresses(s.interface)}
            ip = s.unicast_src if s.unicast_src in present else None
        elif s.family == 4:
            ip = self.netlink.primary_ipv4(s.interface, exclude=exclude)
        else:
            ip = self.netlink.link_local_ipv6(s.interface, exclude=exclude)
        if ip != self.src_ip:
            self._frames.clear()
            self._close_unicast()
            self.src_ip = ip
        if s.unicast and ip is not None and self.sock is not None and self.unicast is None:
            # Open already as a backup: while it exists, the kernel does not answer
            # the peers' unicast adverts with ICMP "protocol unreachable".  If it
            # cannot be opened yet (the address still tentative), the first send
            # tries again, where a failure is counted and retried like any other.
            try:
                self._unicast_sender()
            except OSError as exc:
                self.log.debug("%s: unicast socket not open yet: %s", s.name, exc)
        return ip

    def update_settings(self, settings: RouterSettings) -> None:
        self.settings = settings
        self._frames.clear()
        self._unicast.clear()

    def frame(self, advert: Advert) -> bytes:
        """The whole Ethernet frame of ``advert``, encoded once and reused until
        something changes (the source address, the settings)."""
        frame = self._frames.get(advert)
        if frame is None:
            if self.src_ip is None:
                raise OSError(f"no usable source address on {self.settings.interface}")
            payload = encode(advert, self.src_ip, self.group, self.settings.checksum_pseudo_header)
            frame = vrrp_frame(self.advert_mac, self.src_ip, self.group, payload)
            self._frames[advert] = frame
        return frame

    def send_advert(self, advert: Advert) -> None:
        if self.settings.unicast:
            self._send_unicast(advert)
            return
        frame = self.frame(advert)
        if self.sock is None:
            # The interface is gone (a resignation on its way out): nothing to send on.
            self.log.debug("%s: advert not sent: no interface", self.settings.name)
            return
        self.sock.send(frame)

    def _send_unicast(self, advert: Advert) -> None:
        """To every peer (keepalived's unicast_peer), each with its own checksum."""
        s = self.settings
        if self.sock is None:
            self.log.debug("%s: advert not sent: no interface", s.name)
            return
        if self.src_ip is None:
            raise OSError(f"no usable source address on {s.interface}")
        messages = self._unicast.get(advert)
        if messages is None:
            messages = [(encode(advert, self.src_ip, peer, s.checksum_pseudo_header), peer)
                        for peer in s.unicast_peers]
            self._unicast = {advert: messages}
        failed = self._unicast_sender().send(messages)
        if failed != self._unicast_failed:  # a line when it changes, not per advert
            self._unicast_failed = failed
            if failed:
                self.log.warning("%s: adverts not delivered to %s", s.name, "; ".join(failed))

    def _unicast_sender(self) -> UnicastSender:
        """The socket of our unicast adverts, bound to our source (opened once)."""
        if self.unicast is None:
            assert self.src_ip is not None
            self.unicast = UnicastSender(self.settings.interface, self.src_ip)
        return self.unicast

    def _close_unicast(self) -> None:
        self._unicast.clear()
        if self.unicast is not None:
            self.unicast.close()
            self.unicast = None

    # ---- addresses ----------------------------------------------------------------
    def _target(self, va: VirtualAddress) -> str:
        """Where an address lives: its ``dev:``, else the macvlan or the interface."""
        return va.device or self.macvlan or self.settings.interface

    def claim(self, addresses: Sequence[VirtualAddress] | None = None) -> None:
        s = self.settings
        if s.use_vmac and self.macvlan is None:
            self.macvlan = self.netlink.ensure_macvlan(s.interface, s.vrid, s.family)
            self.log.debug("%s: virtual MAC %s on %s", s.name, mac_text(self.vmac), self.macvlan)
        todo = [a for a in (s.addresses if addresses is None else addresses)
                if a not in self.owned]
        by_target: dict[str, list[VirtualAddress]] = {}
        for va in todo:
            by_target.setdefault(self._target(va), []).append(va)
        for target, vas in by_target.items():
            # Recorded first: a crash right after the add still finds them.
            for va in vas:
                self.book.added(target, str(va.interface))
            self.netlink.add_addresses(target, [va.interface for va in vas])
        if todo:
            self.log.info("%s: claimed %s", s.name, ", ".join(str(a) for a in todo))

    def release(self, addresses: Sequence[VirtualAddress] | None = None) -> None:
        """Remove ``addresses`` (all, and the virtual MAC, when None)."""
        s = self.settings
        todo = [a for a in (s.addresses if addresses is None else addresses)
                if a not in self.owned]
        failed, gone = [], []
        for va in todo:
            target = self._target(va)
            try:
                self.netlink.del_address(target, va.interface)
                gone.append((target, str(va.interface)))
            except Exception as exc:  # one failure must not keep the others configured
                failed.append(f"{va}: {exc}")
        self.book.removed(gone)
        if addresses is None and self.macvlan is not None:
            self.netlink.delete_link(self.macvlan)
            self.macvlan = None
        if todo:
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
            # The MAC that answers for the address: the virtual MAC, unless the
            # address lives on another device or is the owner's own.
            own = va.device is None and va not in self.owned
            mac = self.advert_mac if own else self.netlink.link_mac(dev)
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
        self._close_unicast()
