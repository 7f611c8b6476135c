"""The netlink adapter (links, addresses, the virtual MAC) against a real kernel,
inside throw-away network namespaces (see nl_helpers)."""

from __future__ import annotations

import os
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_interface
from typing import Any

import pytest

from freevrrpd.net.netlink import Netlink, NetlinkError, vmac_name
from tests.support.nl_helpers import (
    VMAC4_5,
    VMAC6_5,
    addr_json,
    in_ns,
    link_json,
    links,
    pair,
    proc_sys,
    sh,
    veth,
    with_netlink,
)
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]


# ---- addresses ------------------------------------------------------------------------
def test_ipv4_addresses_add_and_delete_are_idempotent(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)

    def body(nl: Netlink) -> None:
        real, vip, host = (ip_interface("192.0.2.1/24"), ip_interface("192.0.2.77/24"),
                           ip_interface("198.51.100.9/32"))
        for _ in range(2):
            nl.add_address("va", real)
            nl.add_address("va", vip)
            nl.add_address("va", host)
        v4 = [i for i in nl.addresses("va") if i.version == 4]
        assert sorted(v4) == sorted([real, vip, host])  # once each
        # Deleting the VIP twice, and a never-added address of the same subnet,
        # must leave the interface's real address alone.
        for _ in range(2):
            nl.del_address("va", vip)
        nl.del_address("va", ip_interface("192.0.2.78/24"))
        nl.del_address("no-such-dev", vip)
        assert sorted(i for i in nl.addresses("va") if i.version == 4) == sorted([real, host])

    in_ns(a, with_netlink(body))
    info = {i["local"]: i for i in addr_json(a, "va") if i["family"] == "inet"}
    assert set(info) == {"192.0.2.1", "198.51.100.9"}
    assert info["192.0.2.1"]["broadcast"] == "192.0.2.255"
    assert "broadcast" not in info["198.51.100.9"]  # none on /32 (or /31: RFC 3021)


def test_ipv6_address_is_usable_at_once_and_idempotent(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b, up=False)
    # Make ordinary DAD last 50 s so "not tentative" below proves IFA_F_NODAD.
    sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv6.conf.va.dad_transmits=50")
    sh("ip", "-n", a, "link", "set", "va", "up")
    sh("ip", "-n", b, "link", "set", "vb", "up")
    sh("ip", "-n", a, "addr", "add", "2001:db8::99/64", "dev", "va")  # control: plain add
    vip = ip_interface("2001:db8::1/64")

    def body(nl: Netlink) -> list[Any]:
        nl.add_address("va", vip)
        nl.add_address("va", vip)
        return nl.addresses("va")

    assert in_ns(a, with_netlink(body)).count(vip) == 1
    info = {i["local"]: i for i in addr_json(a, "va") if i["family"] == "inet6"}
    assert info["2001:db8::99"].get("tentative") is True
    assert not info["2001:db8::1"].get("tentative")

    def delete_twice(nl: Netlink) -> None:
        nl.del_address("va", vip)
        nl.del_address("va", vip)

    in_ns(a, with_netlink(delete_twice))
    assert "2001:db8::1" not in {i["local"] for i in addr_json(a, "va")}


def test_primary_ipv4_skips_secondary_link_scope_and_virtual_addresses(
        netns: Callable[[], str]) -> None:
    a = netns()
    pair(a, "d0", "d1")
    for cmd in (["169.254.7.7/16", "scope", "link"],  # not global
                ["203.0.113.9/24"],                    # a VIP that landed first
                ["192.0.2.1/24"],                      # the real one
                ["192.0.2.2/24"]):                     # secondary in the same subnet
        sh("ip", "-n", a, "addr", "add", *cmd, "dev", "d0")

    def body(nl: Netlink) -> tuple[Any, ...]:
        return (nl.primary_ipv4("d0"),
                nl.primary_ipv4("d0", exclude=[IPv4Address("203.0.113.9")]),
                nl.primary_ipv4("d0", exclude=[IPv4Address("203.0.113.9"),
                                               IPv4Address("192.0.2.1")]),
                nl.primary_ipv4("no-such-dev"))

    assert in_ns(a, with_netlink(body)) == (IPv4Address("203.0.113.9"),
                                            IPv4Address("192.0.2.1"), None, None)


def test_link_local_ipv6_is_the_usable_one(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b, up=False)
    sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv6.conf.va.dad_transmits=50")
    pair(a, "d0", "d1")
    sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv6.conf.d0.accept_dad=0")
    for dev in ("va", "d0"):
        sh("ip", "-n", a, "link", "set", dev, "up")
    sh("ip", "-n", b, "link", "set", "vb", "up")
    sh("ip", "-n", a, "addr", "add", "fe80::1/64", "dev", "d0", "nodad")  # e.g. a VIP
    mac = link_json(a, "d0")["address"]

    def body(nl: Netlink) -> tuple[Any, ...]:
        return (nl.link_local_ipv6("va"),  # still tentative: DAD takes 50 s here
                nl.link_local_ipv6("d0", exclude=[IPv6Address("fe80::1")]),
                nl.link_local_ipv6("d0", exclude=[]),
                nl.link_local_ipv6("no-such-dev"))

    tentative, eui64, any_ll, missing = in_ns(a, with_netlink(body))
    assert tentative is None and missing is None
    b0 = int(mac[:2], 16) ^ 0x02  # RFC 4291 appendix A: modified EUI-64
    assert eui64 == IPv6Address(f"fe80::{b0:02x}{mac[3:5]}:{mac[6:8]}ff:fe{mac[9:11]}:"
                                f"{mac[12:14]}{mac[15:17]}")
    assert any_ll in (eui64, IPv6Address("fe80::1"))


def test_link_state_index_and_mac(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)

    def states(nl: Netlink) -> tuple[bool, bool, bool]:
        # lo's operstate is UNKNOWN (no driver support), yet it works.
        return nl.link_up("va"), nl.link_up("lo"), nl.link_up("no-such-dev")

    assert in_ns(a, with_netlink(states)) == (True, True, False)
    sh("ip", "-n", b, "link", "set", "vb", "down")  # carrier loss on va
    sh("ip", "-n", a, "link", "set", "lo", "down")  # admin down
    assert in_ns(a, with_netlink(states)) == (False, False, False)

    def ids(nl: Netlink) -> tuple[Any, ...]:
        with pytest.raises(NetlinkError, match="no-such-dev"):
            nl.link_mac("no-such-dev")
        return nl.ifindex("va"), nl.ifindex("no-such-dev"), nl.link_mac("va")

    index, missing, mac = in_ns(a, with_netlink(ids))
    info = link_json(a, "va")
    assert (index, missing, mac) == (info["ifindex"], None,
                                     bytes.fromhex(info["address"].replace(":", "")))


def test_errors_are_sentences_and_calls_from_many_threads_work(
        netns: Callable[[], str]) -> None:
    a = netns()
    pair(a, "d0", "d1")

    def body(nl: Netlink) -> list[Any]:
        import threading

        with pytest.raises(NetlinkError, match=r"cannot add 192\.0\.2\.5/24 to nope") as err:
            nl.add_address("nope", ip_interface("192.0.2.5/24"))
        assert err.value.code == 19  # ENODEV
        failures: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for _ in range(20):
                    nl.add_address("d0", ip_interface(f"198.51.100.{n}/24"))
                    assert nl.link_mac("d0")
                    nl.del_address("d0", ip_interface(f"198.51.100.{n}/24"))
                nl.add_address("d0", ip_interface(f"198.51.100.{n}/24"))
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        result = sorted(str(i) for i in nl.addresses("d0") if i.version == 4)
        nl.close()
        nl.close()
        with pytest.raises(NetlinkError, match="closed"):
            nl.ifindex("d0")
        return result

    assert in_ns(a, lambda: body(Netlink())) == sorted(f"198.51.100.{n}/24" for n in range(1, 9))


def test_netlink_used_before_a_fork_works_in_the_child(netns: Callable[[], str]) -> None:
    """python-daemon forks; an object already used before must not hang after."""
    a = netns()

    def body(nl: Netlink) -> int:
        assert nl.ifindex("lo") == 1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if nl.ifindex("lo") == 1 and nl.link_up("lo") is False else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert nl.ifindex("lo") == 1  # and the parent's object still works
        return os.waitstatus_to_exitcode(status)

    sh("ip", "-n", a, "link", "set", "lo", "down")
    assert in_ns(a, with_netlink(body)) == 0


# ---- the virtual MAC ------------------------------------------------------------------
VMAC_V4_SYSCTLS = {"ipv4/conf/{}/arp_ignore": 1, "ipv4/conf/{}/arp_announce": 2,
                   "ipv4/conf/{}/arp_filter": 0, "ipv4/conf/{}/rp_filter": 0,
                   "ipv4/conf/{}/promote_secondaries": 1}


def test_ensure_macvlan_ipv4_makes_a_private_tuned_vmac_once(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=1")

    def body(nl: Netlink) -> tuple[str, str, int]:
        first = nl.ensure_macvlan("va", 5, 4)
        second = nl.ensure_macvlan("va", 5, 4)
        return first, second, nl.ifindex("va") or 0

    first, second, parent_index = in_ns(a, with_netlink(body))
    assert first == second == vmac_name(4, 5, parent_index) and len(first) <= 15
    info = link_json(a, first)
    assert info["address"] == VMAC4_5
    assert info["link"] == "va"
    assert info["linkinfo"]["info_kind"] == "macvlan"
    assert info["linkinfo"]["info_data"]["mode"] == "private"
    assert "UP" in info["flags"] and "LOWER_UP" in info["flags"]
    assert [link["ifname"] for link in links(a) if link.get("address") == VMAC4_5] == [first]
    for path, value in VMAC_V4_SYSCTLS.items():
        assert proc_sys(a, path.format(first)) == value, path
    assert proc_sys(a, f"ipv6/conf/{first}/disable_ipv6") == 1
    assert addr_json(a, first) == []  # in particular no IPv6 link-local with the vmac
    assert proc_sys(a, "ipv4/conf/va/arp_ignore") == 1
    assert proc_sys(a, "ipv4/conf/va/arp_announce") == 2


def test_ensure_macvlan_ipv6_has_no_link_local_and_no_dad(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)

    def body(nl: Netlink) -> tuple[str, str]:
        return nl.ensure_macvlan("va", 5, 6), nl.ensure_macvlan("va", 5, 4)

    v6, v4 = in_ns(a, with_netlink(body))
    assert v6 != v4
    info = link_json(a, v6)
    assert info["address"] == VMAC6_5 and info["linkinfo"]["info_data"]["mode"] == "private"
    assert "LOWER_UP" in info["flags"]
    for key, value in {"addr_gen_mode": 1, "accept_dad": 0, "dad_transmits": 0,
                       "accept_ra": 0, "autoconf": 0, "disable_ipv6": 0}.items():
        assert proc_sys(a, f"ipv6/conf/{v6}/{key}") == value, key
    assert proc_sys(a, f"ipv4/conf/{v6}/arp_ignore") == 1  # no ARP for the host's IPv4
    assert addr_json(a, v6) == []  # no EUI-64 link-local from the shared virtual MAC


def test_ensure_macvlan_replaces_a_wrong_one_and_reuses_a_right_one(
        netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    parent = int(link_json(a, "va")["ifindex"])
    # Wrong: bridge mode, up, holding VRID 6's MAC under another name.
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "old6", "address",
       "00:00:5e:00:01:06", "type", "macvlan", "mode", "bridge")
    sh("ip", "-n", a, "link", "set", "old6", "up")
    # Wrong: our name for VRID 8, but in bridge mode.
    ours8 = vmac_name(4, 8, parent)
    sh("ip", "-n", a, "link", "add", "link", "va", "name", ours8, "address",
       "00:00:5e:00:01:08", "type", "macvlan", "mode", "bridge")
    # Right in every way, left by an earlier run (a crash): reused as it is.
    ours7 = vmac_name(4, 7, parent)
    sh("ip", "-n", a, "link", "add", "link", "va", "name", ours7, "address",
       "00:00:5e:00:01:07", "type", "macvlan", "mode", "private")
    sh("ip", "netns", "exec", a, "sysctl", "-qw", f"net.ipv6.conf.{ours7}.disable_ipv6=1")
    index7 = link_json(a, ours7)["ifindex"]
    # Down and holding VRID 9's MAC: takes no traffic, left alone.
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "down9", "address",
       "00:00:5e:00:01:09", "type", "macvlan", "mode", "private")

    def body(nl: Netlink) -> list[str]:
        return [nl.ensure_macvlan("va", vrid, 4) for vrid in (6, 7, 8, 9)]

    names = in_ns(a, with_netlink(body))
    assert names == [vmac_name(4, vrid, parent) for vrid in (6, 7, 8, 9)]
    present = {link["ifname"] for link in links(a)}
    assert "old6" not in present and "down9" in present
    for name in names:
        info = link_json(a, name)
        assert info["linkinfo"]["info_data"]["mode"] == "private" and "UP" in info["flags"]
    assert link_json(a, ours7)["ifindex"] == index7


def test_delete_link_is_idempotent(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)

    def body(nl: Netlink) -> Any:
        name = nl.ensure_macvlan("va", 9, 4)
        nl.delete_link(name)
        nl.delete_link(name)
        return name, nl.ifindex(name)

    name, index = in_ns(a, with_netlink(body))
    assert index is None and name not in {link["ifname"] for link in links(a)}


def test_cleanup_stale_removes_only_this_vrids_leftovers(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    pair(a, "d0", "d1")
    # A killed run of VRID 7 left: a vmac under a name we no longer use, a VIP
    # on the parent and one on another device.  Around it: things to keep.
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "stale7", "address",
       "00:00:5e:00:01:07", "type", "macvlan", "mode", "private")
    sh("ip", "-n", a, "addr", "add", "192.0.2.70/24", "dev", "stale7")
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "other8", "address",
       "00:00:5e:00:01:08", "type", "macvlan", "mode", "private")
    sh("ip", "-n", a, "link", "add", "link", "va", "name", "v6of7", "address",
       "00:00:5e:00:02:07", "type", "macvlan", "mode", "private")
    for addr, dev in (("192.0.2.1/24", "va"), ("192.0.2.71/24", "va"),
                      ("203.0.113.7/24", "d0"), ("203.0.113.8/24", "d0")):
        sh("ip", "-n", a, "addr", "add", addr, "dev", dev)
    sh("ip", "-n", a, "addr", "add", "2001:db8::7/64", "dev", "d0", "nodad")
    vips = [("va", ip_interface("192.0.2.71/24")), ("d0", ip_interface("203.0.113.7/24")),
            ("d0", ip_interface("2001:db8::7/64")), ("gone0", ip_interface("192.0.2.72/24")),
            ("va", ip_interface("192.0.2.73/24"))]

    def body(nl: Netlink) -> tuple[list[str], list[str]]:
        return nl.cleanup_stale("va", 7, 4, vips), nl.cleanup_stale("va", 7, 4, vips)

    said, again = in_ns(a, with_netlink(body))
    assert again == []
    assert len(said) == 4 and all("earlier run" in s for s in said)
    assert any("stale7" in s and "00:00:5e:00:01:07" in s for s in said)
    assert any("192.0.2.71/24" in s and "va" in s for s in said)
    names = {link["ifname"] for link in links(a)}
    assert "stale7" not in names and {"other8", "v6of7", "va", "d0"} <= names
    assert {i["local"] for i in addr_json(a, "va")} >= {"192.0.2.1"}
    assert "192.0.2.71" not in {i["local"] for i in addr_json(a, "va")}
    # 203.0.113.7 was the primary of its subnet: removing it must promote the
    # host's 203.0.113.8, not delete it along (promote_secondaries).
    assert {i["local"] for i in addr_json(a, "d0") if i["scope"] == "global"} == {"203.0.113.8"}


def test_removals_deferred_to_the_exit_go_at_once_and_keep_the_hosts_address(
        netns: Callable[[], str]) -> None:
    """At the daemon's exit every router hands its removals over; they are done
    together: addresses on interfaces that stay in batched requests (a VIP that
    is the primary of its subnet still promotes the host's own address), the
    virtual-MAC interfaces by link group (their addresses go with them), and a
    failure is reported, not raised."""
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "-n", a, "addr", "add", "203.0.113.7/24", "dev", "va")  # the VIP came first
    sh("ip", "-n", a, "addr", "add", "203.0.113.8/24", "dev", "va")  # the host's own
    sh("ip", "-n", a, "addr", "add", "198.51.100.9/24", "dev", "va")

    def body(_nl: Netlink) -> Any:
        nl = Netlink(group=0x4000_1234)
        try:
            vmacs = [nl.ensure_macvlan("va", vrid, 4) for vrid in (1, 2, 3)]
            for n, vmac in enumerate(vmacs, start=1):
                nl.add_address(vmac, ip_interface(f"192.0.2.{n}/24"))
            nl.defer_deletes()
            nl.del_address("va", ip_interface("203.0.113.7/24"))
            nl.del_address("va", ip_interface("198.51.100.9/24"))
            nl.del_address("nosuch0", ip_interface("192.0.2.99/24"))  # gone already: fine
            for n, vmac in enumerate(vmacs, start=1):
                nl.del_address(vmac, ip_interface(f"192.0.2.{n}/24"))
                nl.delete_link(vmac)
            before = nl.addresses("va")  # nothing happened yet
            failed = nl.flush_deletes()
            return before, failed, nl.addresses("va")
        finally:
            nl.close()

    before, failed, after = in_ns(a, with_netlink(body))
    assert ip_interface("203.0.113.7/24") in before and failed == []
    assert {str(i) for i in after if i.version == 4} == {"203.0.113.8/24"}
    assert not [link for link in links(a) if link["ifname"].startswith("vrrp")]


def test_a_routers_addresses_are_added_in_one_request(netns: Callable[[], str]) -> None:
    a, b = netns(), netns()
    veth(a, b)
    sh("ip", "-n", a, "addr", "add", "192.0.2.2/24", "dev", "va")  # already there: fine

    def body(nl: Netlink) -> Any:
        nl.add_addresses("va", [ip_interface(x) for x in
                                ("192.0.2.1/24", "192.0.2.2/24", "2001:db8::5/64")])
        try:
            nl.add_addresses("nosuch0", [ip_interface("192.0.2.9/24")])
        except NetlinkError as exc:
            return nl.addresses("va"), str(exc)
        return nl.addresses("va"), None

    present, error = in_ns(a, with_netlink(body))
    assert {"192.0.2.1/24", "192.0.2.2/24", "2001:db8::5/64"} <= {str(i) for i in present}
    assert error is not None and "nosuch0" in error
