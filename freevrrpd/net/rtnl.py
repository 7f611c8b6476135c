"""rtnetlink requests on a socket of our own, and reading their answers.

Messages are pyroute2's (``net.pyroute``): it encodes and decodes them, the
same in its 0.7 and 0.9 releases; sending, batching and waiting for the
kernel's answer are done here.  Only ``Netlink`` (``net.netlink``) uses these
steps; they let "already so" pass where that is the goal (idempotent add and
delete) and raise ``NetlinkError`` with the kernel's errno otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from freevrrpd.net import sysctl
from freevrrpd.net.pyroute import ifaddrmsg, ifinfmsg

IPIface = IPv4Interface | IPv6Interface

# linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFF_UP = 0x1
RT_SCOPE_UNIVERSE = 0
SOL_NETLINK, NETLINK_GET_STRICT_CHK = 270, 12
_HDR = struct.Struct("=IHHII")


class NetlinkError(Exception):
    """A netlink or sysctl operation failed; the message names the interface/address."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # errno value when the kernel gave one


def describe(exc: BaseException) -> str:
    """The reason in an error, in words."""
    if isinstance(exc, NetlinkError):
        return os.strerror(exc.code) if exc.code else str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def error_code(exc: BaseException) -> int | None:
    if isinstance(exc, NetlinkError):
        return exc.code
    if isinstance(exc, OSError):
        return exc.errno
    return None


Request = tuple[Any, int, int]  # (message, type, flags)


class RtnlSocket:
    """One NETLINK_ROUTE socket, used from one thread at a time (``Netlink``'s lock)."""

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK,
                                       socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                       socket.NETLINK_ROUTE)
        except OSError as exc:  # refused by a sandbox (seccomp), or no netlink at all
            raise NetlinkError(f"cannot open a netlink socket: {describe(exc)}",
                               exc.errno) from exc
        self._sock.bind((0, 0))
        # Linux 4.20+: dumps filtered by the kernel (an address dump of one
        # interface, not of all); older kernels ignore it and dump_addr filters.
        with contextlib.suppress(OSError):
            self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def request(self, msg: Any, mtype: int, flags: int = 0) -> list[Any]:
        """Send one request and return the messages of the answer (a dump's, or the
        object asked for); raise NetlinkError with the kernel's errno."""
        (code, answer), = self.batch([(msg, mtype, flags)])
        if code:
            raise NetlinkError(os.strerror(code), code)
        return answer

    def batch(self, requests: Sequence[Request]) -> list[tuple[int, list[Any]]]:
        """Several requests in one send; (errno, answer messages) for each, in order.
        The kernel still does them one by one, but in one round trip."""
        seqs, data = [], b""
        for msg, mtype, flags in requests:
            self._seq = self._seq % 0x7FFFFFFF + 1
            seqs.append(self._seq)
            msg["header"]["type"] = mtype
            msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
            msg["header"]["sequence_number"] = self._seq
            msg["header"]["pid"] = 0
            msg.encode()
            data += bytes(msg.data)
        self._sock.sendall(data)
        results: dict[int, tuple[int, list[Any]]] = {}
        answers: dict[int, list[Any]] = {seq: [] for seq in seqs}
        kinds = {seq: mtype for seq, (_m, mtype, _f) in zip(seqs, requests, strict=True)}
        while len(results) < len(seqs):
            for mtype, seq, raw in _messages(self._sock.recv(1 << 16)):
                if seq not in answers or seq in results:
                    continue
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", raw, _HDR.size)[0]
                    results[seq] = (code, answers[seq])
                elif mtype == NLMSG_DONE:
                    results[seq] = (0, answers[seq])
                else:
                    answers[seq].append(_decode(raw, kinds[seq]))
        return [results[seq] for seq in seqs]


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    offset = 0
    while offset + _HDR.size <= len(data):
        length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size or offset + length > len(data):
            return
        yield mtype, seq, data[offset:offset + length]
        offset += (length + 3) & ~3


def _decode(raw: bytes, request: int) -> Any:
    msg: Any = (ifaddrmsg if request in (RTM_GETADDR, RTM_NEWADDR, RTM_DELADDR)
                else ifinfmsg)(raw)
    msg.decode()
    return msg


# ---- reading messages ----------------------------------------------------------------
def _linkinfo(msg: Any) -> Any:
    return msg.get_attr("IFLA_LINKINFO")


def kind(msg: Any) -> str | None:
    """IFLA_INFO_KIND ("macvlan", "veth", ...); None for physical interfaces."""
    info = _linkinfo(msg)
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def macvlan_mode(msg: Any) -> str | None:
    info = _linkinfo(msg)
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    return data.get_attr("IFLA_MACVLAN_MODE") if data is not None else None


def name(msg: Any) -> str | None:
    value = msg.get_attr("IFLA_IFNAME")
    return str(value) if value is not None else None


def link_mac(msg: Any) -> bytes:
    text = msg.get_attr("IFLA_ADDRESS") or ""
    return bytes.fromhex(text.replace(":", ""))


def addr_flags(msg: Any) -> int:
    # IFA_FLAGS carries all 32 bits; the header field only the low 8.
    flags = msg.get_attr("IFA_FLAGS")
    return int(flags if flags is not None else msg["flags"])


def addr_iface(msg: Any) -> IPIface:
    # For IPv4 IFA_LOCAL is our address (IFA_ADDRESS is the peer on
    # point-to-point links); IPv6 has only IFA_ADDRESS.
    ip = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    return ip_interface(f"{ip}/{msg['prefixlen']}")


def same_address(a: IPIface, b: IPIface) -> bool:
    """Whether the kernel sees one address: IPv4 is keyed by address and prefix,
    IPv6 by address only."""
    if a.version == 4:
        return a == b
    return a.ip == b.ip


# ---- steps ---------------------------------------------------------------------------
def _link(index: int = 0, attrs: Sequence[tuple[str, Any]] = ()) -> Any:
    msg: Any = ifinfmsg()
    msg["index"] = index
    msg["attrs"] = [list(a) for a in attrs]
    return msg


def find_link(nl: RtnlSocket, link: str) -> Any | None:
    """The RTM_NEWLINK message of interface ``link``, None if there is none."""
    try:
        found = nl.request(_link(attrs=[("IFLA_IFNAME", link)]), RTM_GETLINK)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    return found[0] if found else None


def need_link(nl: RtnlSocket, link: str) -> Any:
    msg = find_link(nl, link)
    if msg is None:
        raise NetlinkError(f"there is no interface named {link}", errno.ENODEV)
    return msg


def dump_links(nl: RtnlSocket) -> list[Any]:
    return nl.request(_link(), RTM_GETLINK, NLM_F_DUMP)


def delete_link(nl: RtnlSocket, index: int) -> None:
    try:
        nl.request(_link(index), RTM_DELLINK)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise


def set_up(nl: RtnlSocket, index: int) -> None:
    msg = _link(index)
    msg["flags"] = msg["change"] = IFF_UP
    nl.request(msg, RTM_NEWLINK)


def add_macvlan(nl: RtnlSocket, link: str, parent: int, mac: str, group: int) -> None:
    """A private macvlan (see ``macvlan``), in link group ``group``, still down."""
    info = {"attrs": [["IFLA_INFO_KIND", "macvlan"],
                      ["IFLA_INFO_DATA", {"attrs": [["IFLA_MACVLAN_MODE", "private"]]}]]}
    msg = _link(attrs=[("IFLA_IFNAME", link), ("IFLA_LINK", parent), ("IFLA_ADDRESS", mac),
                       ("IFLA_GROUP", group), ("IFLA_LINKINFO", info)])
    nl.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)


def delete_group(nl: RtnlSocket, group: int) -> None:
    """Every link of ``group`` in one request: the kernel unregisters them together
    (one RCU grace period for all, not one each)."""
    try:
        nl.request(_link(attrs=[("IFLA_GROUP", group)]), RTM_DELLINK)
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.ENOENT):
            raise


def _addr(index: int, iface: IPIface) -> Any:
    msg: Any = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    return msg


def dump_addr(nl: RtnlSocket, link: str, family: int = socket.AF_UNSPEC,
              required: bool = True) -> list[Any]:
    """Address messages of interface ``link``; [] for a missing one unless required."""
    found = need_link(nl, link) if required else find_link(nl, link)
    if found is None:
        return []
    msg: Any = ifaddrmsg()
    msg["family"] = family
    index = int(found["index"])
    # With NETLINK_GET_STRICT_CHK the kernel dumps this interface's addresses
    # only (not every address of the host: 37 ms each with 255 macvlans); the
    # filter below is for kernels that ignore the index.
    msg["index"] = index
    return [m for m in nl.request(msg, RTM_GETADDR, NLM_F_DUMP) if int(m["index"]) == index]


def add_request(index: int, iface: IPIface, label: str | None) -> Request:
    msg = _addr(index, iface)
    attrs: list[list[Any]] = [["IFA_ADDRESS", str(iface.ip)]]
    if isinstance(iface, IPv4Interface):
        attrs.append(["IFA_LOCAL", str(iface.ip)])
        if iface.network.prefixlen <= 30:  # RFC 3021: no broadcast on /31 (or /32)
            attrs.append(["IFA_BROADCAST", str(iface.network.broadcast_address)])
        if label is not None:
            attrs.append(["IFA_LABEL", label])
    else:
        msg["flags"] = IFA_F_NODAD
        attrs.append(["IFA_FLAGS", IFA_F_NODAD])
    msg["attrs"] = attrs
    return msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL


def add_addr(nl: RtnlSocket, index: int, iface: IPIface, label: str | None) -> None:
    (code, _answer), = nl.batch([add_request(index, iface, label)])
    if code and code != errno.EEXIST:
        raise NetlinkError(os.strerror(code), code)


def del_request(index: int, iface: IPIface) -> Request:
    msg = _addr(index, iface)
    attrs: list[list[Any]] = [["IFA_ADDRESS", str(iface.ip)]]
    if isinstance(iface, IPv4Interface):
        # Without IFA_LOCAL the kernel deletes the first address of the same
        # subnet and prefix, which may be the interface's real address.
        attrs.append(["IFA_LOCAL", str(iface.ip)])
    msg["attrs"] = attrs
    return msg, RTM_DELADDR, 0


GONE = (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT)  # "already so" for a delete


def del_addr(nl: RtnlSocket, link: str, index: int, iface: IPIface) -> None:
    if isinstance(iface, IPv4Interface):
        keep_secondaries(nl, link, [iface])
    (code, _answer), = nl.batch([del_request(index, iface)])
    if code and code not in GONE:
        raise NetlinkError(os.strerror(code), code)


def keep_secondaries(nl: RtnlSocket, link: str, ifaces: Sequence[IPv4Interface]) -> None:
    """Before deleting a *primary* IPv4 address, make sure the kernel promotes
    its secondaries instead of deleting them with it (promote_secondaries=0 is
    the kernel default).  A VIP that reached the interface before the real
    address of its subnet is that primary; without this, releasing the VIP
    would take the host's own address away.  One dump for all of ``ifaces``."""
    present = [(addr_iface(m), addr_flags(m))
               for m in dump_addr(nl, link, socket.AF_INET, required=False)]
    for iface in ifaces:
        same_net = [a for a, _f in present if a.network == iface.network]
        primary = any(a == iface and not f & IFA_F_SECONDARY for a, f in present)
        if (primary and len(same_net) > 1
                and sysctl.read("ipv4", link, "promote_secondaries") == 0):
            sysctl.write("ipv4", link, "promote_secondaries", 1)
            return


BATCH = 200  # requests per send: well inside a netlink socket's buffers


def delete_many(nl: RtnlSocket, addresses: Sequence[tuple[str, IPIface]],
                links: Sequence[str], group: int) -> list[tuple[str, IPIface, str]]:
    """The removals of a whole daemon's exit at once: the addresses in a few
    batched requests (one look at each interface), then the virtual-MAC
    interfaces by their link group (the kernel unregisters them together) and
    any left by name.  What could not be removed: (interface, address, reason)."""
    by_link: dict[str, list[IPIface]] = {}
    for link, iface in addresses:
        if link not in links:  # a deleted interface takes its addresses along
            by_link.setdefault(link, []).append(iface)
    requests: list[Request] = []
    what: list[tuple[str, IPIface]] = []
    for link, ifaces in by_link.items():
        msg = find_link(nl, link)
        if msg is None:
            continue  # the interface is gone, and its addresses with it
        v4 = [i for i in ifaces if isinstance(i, IPv4Interface)]
        if v4:
            keep_secondaries(nl, link, v4)
        requests += [del_request(int(msg["index"]), i) for i in ifaces]
        what += [(link, i) for i in ifaces]
    failed: list[tuple[str, IPIface, str]] = []
    for start in range(0, len(requests), BATCH):
        answers = nl.batch(requests[start:start + BATCH])
        for (code, _answer), (link, iface) in zip(answers, what[start:start + BATCH],
                                                   strict=True):
            if code and code not in GONE:
                failed.append((link, iface, os.strerror(code)))
    if group:
        delete_group(nl, group)
    for link in links:
        msg = find_link(nl, link)
        if msg is not None:
            delete_link(nl, int(msg["index"]))
    return failed
