"""A table of our own in the kernel's packet filter (nftables), through ``nft -f -``.

Used for Accept_Mode (RFC 5798 6.1, 6.4.3): packets addressed to a virtual
address of a router that must not accept them are dropped in the kernel's
input path, never copied to userspace.  One table per daemon instance holds
two sets of addresses; the whole table is replaced in one transaction (``nft``
applies a file atomically), so there is never a moment with half a ruleset.
No policy here: the caller says which addresses.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection
from ipaddress import IPv4Address, IPv6Address

from freevrrpd.core.settings import IPAddress

NFT_TIMEOUT = 10.0  # seconds; nft answers in milliseconds unless the host is wedged


class NftError(Exception):
    pass


def nft_path() -> str | None:
    return shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin")


def _elements(ips: Collection[IPAddress]) -> str:
    return f" elements = {{ {', '.join(sorted(str(ip) for ip in ips))} }};" if ips else ""


def accept_ruleset(table: str, refused: Collection[IPAddress]) -> str:
    """The whole table: drop what is addressed to ``refused``, except neighbour
    discovery (a master still answers NS for its addresses: RFC 5798 6.4.3) and
    what the host sends itself (``lo``).  ARP is not IP and never meets it."""
    v4 = [ip for ip in refused if isinstance(ip, IPv4Address)]
    v6 = [ip for ip in refused if isinstance(ip, IPv6Address)]
    # "table; delete table; table {...}": create-or-replace in one transaction.
    return (f"table inet {table}\ndelete table inet {table}\n"
            f"table inet {table} {{\n"
            f"  set refused4 {{ type ipv4_addr;{_elements(v4)} }}\n"
            f"  set refused6 {{ type ipv6_addr;{_elements(v6)} }}\n"
            f"  chain input {{\n"
            f"    type filter hook input priority filter; policy accept;\n"
            f"    iif \"lo\" accept\n"
            f"    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n"
            f"    ip daddr @refused4 counter drop\n"
            f"    ip6 daddr @refused6 counter drop\n"
            f"  }}\n"
            f"}}\n")


def _run(script: str) -> None:
    nft = nft_path()
    if nft is None:
        raise NftError("nft not found (Debian package nftables)")
    try:
        out = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True,
                             timeout=NFT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"nft: {exc}") from exc
    if out.returncode != 0:
        raise NftError(f"nft: {out.stderr.strip() or f'exit {out.returncode}'}")


def replace_table(table: str, refused: Collection[IPAddress]) -> None:
    _run(accept_ruleset(table, refused))


def delete_table(table: str) -> None:
    """Remove the table if it is there (``table`` first makes the delete never fail)."""
    _run(f"table inet {table}\ndelete table inet {table}\n")
