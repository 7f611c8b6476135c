"""Accept_Mode (RFC 5798 6.1, 6.4.3) for the whole daemon: one nftables table.

A master that is not the address owner and has ``accept = no`` must not accept
packets addressed to its virtual addresses; the kernel's filter drops them (a
set of addresses in a table of this instance's own).  The set follows the
configuration, not the state: while a router is not master its addresses are
not local, so the filter has nothing to drop, and a failover needs no filter
change on its way (nothing added to the take-over's path).  The table is
recorded in the address book like an address, so a ``kill -9`` leaves nothing
the next start does not remove.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from freevrrpd.core.settings import IPAddress, RouterSettings, refuses_packets
from freevrrpd.net import nftables
from freevrrpd.vrid.addressbook import AddressBook

BOOK_DEVICE = "nftables"  # the address book's "device" for our table

log = logging.getLogger("freevrrpd")


def refused_addresses(routers: Sequence[RouterSettings]) -> frozenset[IPAddress]:
    return frozenset(ip for s in routers if refuses_packets(s) for ip in s.ips)


def problems(routers: Sequence[RouterSettings]) -> list[str]:
    """What stops Accept_Mode from being enforced on this host (start, reload, -t)."""
    if not refused_addresses(routers) or nftables.nft_path() is not None:
        return []
    s = next(s for s in routers if refuses_packets(s))
    return [f"{s.source.at('accept')}: accept: {s.name}: accept = no is enforced with "
            f"nftables, and nft is not installed (Debian package nftables); install it "
            f"or set accept = yes"]


class AcceptMode:
    def __init__(self, table: str, book: AddressBook) -> None:
        self.table = table
        self.book = book
        self.refused: frozenset[IPAddress] = frozenset()
        self.installed = (BOOK_DEVICE, table) in book.left  # an earlier run's, still there

    def sync(self, routers: Sequence[RouterSettings]) -> None:
        """Make the table say what ``routers`` want (raises ``nftables.NftError``)."""
        refused = refused_addresses(routers)
        if refused == self.refused and (self.installed == bool(refused)):
            return
        if refused:
            self.book.added(BOOK_DEVICE, self.table)
            nftables.replace_table(self.table, refused)
            self.installed = True
            log.info("accept = no: the kernel drops packets to %s (nftables table inet %s)",
                     ", ".join(sorted(map(str, refused))), self.table)
        else:
            self.close()
        self.refused = refused

    def close(self) -> None:
        if not self.installed:
            return
        try:
            nftables.delete_table(self.table)
        except nftables.NftError as exc:
            log.error("cannot remove nftables table inet %s: %s", self.table, exc)
            return
        self.installed = False
        self.book.removed([(BOOK_DEVICE, self.table)])
