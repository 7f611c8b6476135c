"""freevrrpd.conf reader: the original format, every keyword, every rule."""

from __future__ import annotations

import dataclasses
import logging
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from freevrrpd.config import (
    KEYWORDS,
    ConfigError,
    ConfigProblem,
    load_config,
    parse_conf,
    summary,
)
from freevrrpd.core.settings import RouterSettings, Source, VirtualAddress

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "freevrrpd.conf.example"

# Lines 1-4; anything appended starts at line 5.
BASE = "[VRID]\nserverid = 1\ninterface = eth0\naddr = 192.0.2.1/24\n"


def sec(vrid: int, addr: str | None = None, interface: str = "eth0") -> str:
    """A minimal four-line section (its own address: one address, one router)."""
    addr = addr or f"192.0.2.{vrid}/24"
    return f"[VRID]\nserverid = {vrid}\ninterface = {interface}\naddr = {addr}\n"


def one(extra: str = "", base: str = BASE) -> RouterSettings:
    (settings,) = parse_conf(base + extra, "t.conf")
    return settings


def problems_of(text: str, path: str = "t.conf") -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_conf(text, path)
    return info.value.problems


def the_problem(text: str) -> ConfigProblem:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


def va(text: str, device: str | None = None) -> VirtualAddress:
    return VirtualAddress(ip_interface(text), device)


# --- the original's sample -------------------------------------------------------------


def test_original_sample_loads_unchanged() -> None:
    warnings: list[ConfigProblem] = []
    first, second = load_config(DATA / "original-sample.conf", warnings)
    assert first == RouterSettings(
        vrid=1,
        interface="rl0",
        addresses=(
            va("10.0.0.1/32"),
            va("192.168.1.1/30", "vlan100"),
            va("192.168.10.1/30", "vlan101"),
        ),
        priority=255,
        carrier_timeout=10.0,
        spanning_tree_latency=0.0,
        monitored_circuits=True,
        mc_clear_errors_count=3600,
        masterscript="/usr/local/bin/master_script.sh",
        backupscript="/usr/local/bin/backup_script.sh",
        vrids_dep=(2,),  # VRID 3 is not in the file: dropped with a warning
        password="vrid1",
    )
    assert second == RouterSettings(
        vrid=2, interface="xl0", addresses=(va("192.168.1.2/32"),), password="vrid2"
    )
    assert first.source == Source(str(DATA / "original-sample.conf"), 1)
    assert second.source.line == 14
    assert [(w.line, w.keyword) for w in warnings] == [(12, "vridsdep")]
    assert "serverid 3" in warnings[0].message


def test_original_sample_is_the_design_docs_text() -> None:
    # shared/ lies beside the checkout (also in CI).
    doc = Path(__file__).resolve().parents[3] / "shared" / "design" / "ORIGINAL-FREEVRRPD.md"
    if not doc.exists():
        pytest.skip("design document not present in this checkout")
    block = doc.read_text().split("```\n")[1]
    assert (DATA / "original-sample.conf").read_text() == block


# --- defaults ------------------------------------------------------------------------


def test_every_default_is_filled_in() -> None:
    settings = one()
    assert settings == RouterSettings(vrid=1, interface="eth0", addresses=(va("192.0.2.1/24"),))
    assert (settings.family, settings.version, settings.priority) == (4, 2, 100)
    assert (settings.advert_int_cs, settings.preempt, settings.preempt_delay) == (100, True, 0.0)
    assert (settings.accept, settings.password, settings.checksum_pseudo_header) == (
        True,  # not the RFC's default: see RouterSettings.accept
        None,
        True,
    )
    assert (settings.hook_timeout, settings.garp_count, settings.garp_interval) == (30.0, 5, 0.0)
    assert (settings.garp_repeat_delay, settings.conflict_check) == (5.0, True)
    assert (settings.use_vmac, settings.send_gratuitous_arp, settings.monitored_circuits) == (
        True,
        True,
        True,
    )
    assert (settings.mc_clear_errors_count, settings.carrier_timeout) == (3600, 10.0)
    assert settings.source == Source("t.conf", 1)


def test_result_is_a_tuple_of_frozen_settings() -> None:
    result = parse_conf(BASE)
    assert isinstance(result, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result[0].priority = 1  # type: ignore[misc]


# --- every keyword, good values ---------------------------------------------------------

GOOD = [
    ("priority = 255", "priority", 255),
    ("priority = 1", "priority", 1),
    ("version = 3", "version", 3),
    ("version = 2", "version", 2),
    ("advertint = 255", "advert_int_cs", 25500),
    ("advertint = 3.0", "advert_int_cs", 300),
    ("version = 3\nadvertint = 0.01", "advert_int_cs", 1),
    ("version = 3\nadvertint = 40.95", "advert_int_cs", 4095),
    ("version = 3\nadvertint = 0.5", "advert_int_cs", 50),
    ("version = 3\nadvertint = 2", "advert_int_cs", 200),
    ("preempt = no", "preempt", False),
    ("preempt = OFF", "preempt", False),
    ("preempt = 0", "preempt", False),
    ("preempt = False", "preempt", False),
    ("preempt = True", "preempt", True),
    ("preemptdelay = 2.5", "preempt_delay", 2.5),
    ("preemptdelay = 3600", "preempt_delay", 3600.0),
    ("accept = yes", "accept", True),
    ("accept = no", "accept", False),
    ("version = 3\naccept = on", "accept", True),
    ("version = 3\nchecksumpseudoheader = no", "checksum_pseudo_header", False),
    ("checksumpseudoheader = yes", "checksum_pseudo_header", True),
    ("password = 12345678", "password", "12345678"),
    ("password = a#b", "password", "a#b"),  # no end-of-line comments, as in the original
    ("masterscript = /bin/x --y=1 # kept", "masterscript", "/bin/x --y=1 # kept"),
    ("backupscript = /bin/notify backup", "backupscript", "/bin/notify backup"),
    ("faultscript = /bin/notify fault", "faultscript", "/bin/notify fault"),
    ("stopscript = /bin/notify stop", "stopscript", "/bin/notify stop"),
    ("hooktimeout = 5", "hook_timeout", 5.0),
    ("hooktimeout = 0.5", "hook_timeout", 0.5),
    ("garpcount = 0", "garp_count", 0),
    ("garpcount = 100", "garp_count", 100),
    ("garpinterval = 0.2", "garp_interval", 0.2),
    ("garprepeatdelay = 0", "garp_repeat_delay", 0.0),
    ("garprefresh = 300", "garp_refresh", 300.0),
    ("unicastpeer = 192.0.2.2, 192.0.2.3", "unicast_peers",
     (ip_address("192.0.2.2"), ip_address("192.0.2.3"))),
    ("unicastpeer = 192.0.2.2\nunicastsrc = 192.0.2.9", "unicast_src", ip_address("192.0.2.9")),
    ("unicastttlcheck = no", "unicast_ttl_check", False),
    ("dynamicinterfaces = yes", "dynamic_interfaces", True),
    ("notify = /etc/keepalived/notify.sh", "notify", "/etc/keepalived/notify.sh"),
    ("name = VI_1", "name_text", "VI_1"),
    ("garprefreshcount = 3", "garp_refresh_count", 3),
    ("conflictcheck = no", "conflict_check", False),
    ("monitoredcircuits = no", "monitored_circuits", False),
    ("MCClearErrorsCount = 0", "mc_clear_errors_count", 0),
    ("carriertimeout = 2.5", "carrier_timeout", 2.5),
    ("spanningtreelatency = 30", "spanning_tree_latency", 30.0),
    ("useVMAC = no", "use_vmac", False),
    ("sendgratuitousarp = no", "send_gratuitous_arp", False),
    ("AHencryption = no", "ah_encryption", False),
    ("useIKE = no", "use_ike", False),
    ("presharedkey = abc", "preshared_key", "abc"),
    # keywords are case-insensitive
    ("USEVMAC = no", "use_vmac", False),
    ("mcclearerrorscount = 7", "mc_clear_errors_count", 7),
    ("AdvertInt = 4", "advert_int_cs", 400),
]


@pytest.mark.parametrize(("extra", "field", "expected"), GOOD)
def test_good_value(extra: str, field: str, expected: object) -> None:
    assert getattr(one(extra + "\n"), field) == expected


@pytest.mark.parametrize("word", ["yes", "YES", "true", "True", "on", "On", "1"])
def test_true_spellings(word: str) -> None:
    assert one(f"useVMAC = {word}\n", BASE).use_vmac is True
    assert one(f"preempt = {word}\n").preempt is True


@pytest.mark.parametrize("word", ["no", "NO", "false", "FALSE", "off", "Off", "0"])
def test_false_spellings(word: str) -> None:
    assert one(f"useVMAC = {word}\n").use_vmac is False


def test_vridsdep_refers_to_other_sections() -> None:
    text = BASE + "vridsdep = 2 , 3\n" + sec(2) + sec(3)
    first, second, third = parse_conf(text)
    assert first.vrids_dep == (2, 3)
    assert (second.vrid, third.vrid) == (2, 3)


def test_vridsdep_to_a_vrid_of_another_family_counts() -> None:
    text = BASE + "vridsdep = 2\n[VRID]\nserverid = 2\ninterface = eth0\naddr = 2001:db8::2/64\n"
    assert parse_conf(text)[0].vrids_dep == (2,)


def test_dangling_vridsdep_is_logged_when_no_list_is_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="freevrrpd.config"):
        (settings,) = parse_conf(BASE + "vridsdep = 9\n", "t.conf")
    assert settings.vrids_dep == ()
    assert "t.conf:5: vridsdep: no [VRID] section with serverid 9" in caplog.text


# --- every keyword, bad values: (appended text, line, keyword, words of the message) -----

BAD = [
    ("priority = 0", 5, "priority", "reserved"),
    ("priority = 256", 5, "priority", "out of range 1..255"),
    ("priority = abc", 5, "priority", "whole number"),
    ("priority = -1", 5, "priority", "whole number"),
    ("priority = 1e2", 5, "priority", "whole number"),
    ("priority = 10 0", 5, "priority", "whole number"),
    ("version = 4", 5, "version", "out of range 2..3"),
    ("version = 1", 5, "version", "out of range"),
    ("advertint = 0.5", 5, "advertint", "whole seconds"),
    ("advertint = 256", 5, "advertint", "1..255"),
    ("advertint = 0", 5, "advertint", "1..255"),
    ("advertint = fast", 5, "advertint", "number of seconds"),
    ("version = 3\nadvertint = 41", 6, "advertint", "0.01..40.95"),
    ("version = 3\nadvertint = 0", 6, "advertint", "0.01..40.95"),
    ("version = 3\nadvertint = 0.005", 6, "advertint", "steps of 0.01"),
    ("preempt = maybe", 5, "preempt", "yes or no"),
    ("preemptdelay = -1", 5, "preemptdelay", "number of seconds"),
    ("preemptdelay = 3601", 5, "preemptdelay", "out of range 0..3600"),
    ("preemptdelay = nan", 5, "preemptdelay", "number of seconds"),
    ("accept = perhaps", 5, "accept", "yes or no"),
    ("checksumpseudoheader = no", 5, "checksumpseudoheader", "only VRRPv3 over IPv4"),
    ("checksumpseudoheader = nope", 5, "checksumpseudoheader", "yes or no"),
    ("hooktimeout = 0", 5, "hooktimeout", "out of range"),
    ("hooktimeout = 3601", 5, "hooktimeout", "out of range"),
    ("garpcount = 101", 5, "garpcount", "out of range 0..100"),
    ("garpinterval = 61", 5, "garpinterval", "out of range 0..60"),
    ("garprepeatdelay = x", 5, "garprepeatdelay", "number of seconds"),
    ("garprefresh = 86401", 5, "garprefresh", "out of range 0..86400"),
    ("unicastpeer = 192.0.2.2, 192.0.2.2", 5, "unicastpeer", "listed twice"),
    ("unicastpeer = 2001:db8::2", 5, "unicastpeer", "IPv6 address for an IPv4 virtual router"),
    ("unicastpeer = 192.0.2.2, 2001:db8::2", 5, "unicastpeer", "mixes IPv4 and IPv6"),
    ("unicastpeer = 224.0.0.18", 5, "unicastpeer", "a host's own address"),
    ("unicastpeer = 192.0.2.0/24", 5, "unicastpeer", "not an IP address"),
    ("unicastsrc = 192.0.2.9", 5, "unicastsrc", "without unicastpeer"),
    ("name = two words", 5, "name", "one word"),
    ("garprefreshcount = 0", 5, "garprefreshcount", "out of range 1..100"),
    ("conflictcheck = 2", 5, "conflictcheck", "yes or no"),
    ("monitoredcircuits = sometimes", 5, "monitoredcircuits", "yes or no"),
    ("MCClearErrorsCount = 1000001", 5, "MCClearErrorsCount", "out of range"),
    ("MCClearErrorsCount = lots", 5, "MCClearErrorsCount", "whole number"),
    ("carriertimeout = abc", 5, "carriertimeout", "number of seconds"),
    ("spanningtreelatency = 3601", 5, "spanningtreelatency", "out of range"),
    ("useVMAC = maybe", 5, "useVMAC", "yes or no"),
    ("sendgratuitousarp = x", 5, "sendgratuitousarp", "yes or no"),
    ("password = 123456789", 5, "password", "at most 8 octets"),
    ("password = \u00e9\u00e9\u00e9\u00e9\u00e9", 5, "password", "at most 8 octets"),
    ("version = 3\npassword = x", 6, "password", "no authentication"),
    ("AHencryption = yes", 5, "AHencryption", "not implemented"),
    ("AHencryption = maybe", 5, "AHencryption", "yes or no"),
    ("useIKE = yes", 5, "useIKE", "not implemented"),
    ("vridsdep = 1", 5, "vridsdep", "cannot depend on itself"),
    ("vridsdep = 0", 5, "vridsdep", "out of range 1..255"),
    ("vridsdep = 2,,3", 5, "vridsdep", "empty item"),
    ("vridsdep = 2, 2", 5, "vridsdep", "listed twice"),
    ("bogus = 1", 5, "bogus", "unknown keyword"),
    ("use VMAC = yes", 5, "use VMAC", "unknown keyword"),
    ("priority = 100\npriority = 101", 6, "priority", "given twice"),
    ("Priority = 100\nPRIORITY = 1", 6, "PRIORITY", "first at line 5"),
    ("serverid = 1", 5, "serverid", "given twice"),
    ("priority =", 5, "priority", "no value"),
    ("masterscript =   ", 5, "masterscript", "no value"),
    ("presharedkey =", 5, "presharedkey", "no value"),
    ("just some words", 5, None, "expected 'keyword = value'"),
    ("= 5", 5, None, "expected 'keyword = value'"),
    ("[FOO]", 5, None, "unknown section header '[FOO]'"),
    ("[global]\npriority = 1", 5, None, "unknown section header"),
    ("[VRID", 5, None, "unknown section header"),
]


@pytest.mark.parametrize(("extra", "line", "keyword", "words"), BAD)
def test_bad_value(extra: str, line: int, keyword: str | None, words: str) -> None:
    problem = the_problem(BASE + extra + "\n")
    assert (problem.path, problem.line, problem.keyword) == ("t.conf", line, keyword)
    assert words in problem.message


@pytest.mark.parametrize(
    ("serverid", "words"),
    [("0", "out of range 1..255"), ("256", "out of range"), ("one", "whole number")],
)
def test_bad_serverid(serverid: str, words: str) -> None:
    problem = the_problem(BASE.replace("serverid = 1", f"serverid = {serverid}"))
    assert (problem.line, problem.keyword) == (2, "serverid")
    assert words in problem.message


@pytest.mark.parametrize("name", ["", "a" * 16, "eth/0", "eth 0", ".", "..", "eth0:1"])
def test_bad_interface_name(name: str) -> None:
    problem = the_problem(BASE.replace("interface = eth0", f"interface = {name}"))
    assert (problem.line, problem.keyword) == (3, "interface")


def test_interfaces_are_only_names() -> None:
    assert one(base=BASE.replace("eth0", "doesnotexist0")).interface == "doesnotexist0"


# --- addr --------------------------------------------------------------------------------

GOOD_ADDR = [
    ("192.0.2.1/24", [va("192.0.2.1/24")]),
    ("192.0.2.1/24,192.0.2.2/32", [va("192.0.2.1/24"), va("192.0.2.2/32")]),
    (" 192.0.2.1/24 ,\teth1:198.51.100.1/24 ", [va("192.0.2.1/24"), va("198.51.100.1/24", "eth1")]),
    ("vlan100:192.168.1.1/30", [va("192.168.1.1/30", "vlan100")]),
    ("2001:db8::1/64", [va("2001:db8::1/64")]),
    ("eth1:2001:db8::1/64", [va("2001:db8::1/64", "eth1")]),
    ("fe80::1/64, 2001:db8::2/64", [va("fe80::1/64"), va("2001:db8::2/64")]),
    ("br-lan.10:2001:db8:1::1/48", [va("2001:db8:1::1/48", "br-lan.10")]),
]


@pytest.mark.parametrize(("value", "expected"), GOOD_ADDR)
def test_good_addr(value: str, expected: list[VirtualAddress]) -> None:
    base = BASE.replace("addr = 192.0.2.1/24", f"addr = {value}")
    settings = one(base=base)
    assert list(settings.addresses) == expected
    assert settings.family == (6 if ":" in str(expected[0].interface.ip) else 4)


BAD_ADDR = [
    ("192.0.2.1", "prefix length is required"),
    ("2001:db8::1", "prefix length is required"),
    ("eth1:192.0.2.1", "prefix length is required"),
    ("eth1:2001:db8::1", "prefix length is required"),
    ("192.0.2.1/33", "out of range /1../32"),
    ("2001:db8::1/129", "out of range /1../128"),
    ("192.0.2.1/0", "out of range"),
    ("192.0.2.1/255.255.255.0", "must be a length"),
    ("224.0.0.18/32", "multicast"),
    ("ff02::12/128", "multicast"),
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("127.0.0.1/8", "loopback"),
    ("::1/128", "loopback"),
    ("255.255.255.255/32", "broadcast"),
    ("::ffff:192.0.2.1/128", "IPv4-mapped"),
    ("192.0.2.1/24, 2001:db8::1/64", "mixes IPv4 and IPv6"),
    ("192.0.2.1/24,,192.0.2.2/24", "empty item"),
    ("192.0.2.1/24,", "empty item"),
    ("192.0.2.1/24, 192.0.2.1/32", "listed twice"),
    ("host.example/24", "not an IP address"),
    ("bad/dev:192.0.2.1/24", "not a valid interface name"),
    ("averyveryverylongname0:192.0.2.1/24", "longer than 15"),
    ("eth1:host.example/24", "not an IP address"),
    ("fe80::1%eth0/64", "not an IP address"),
]


@pytest.mark.parametrize(("value", "words"), BAD_ADDR)
def test_bad_addr(value: str, words: str) -> None:
    problem = the_problem(BASE.replace("addr = 192.0.2.1/24", f"addr = {value}"))
    assert (problem.line, problem.keyword) == (4, "addr")
    assert words in problem.message


def test_every_bad_address_of_a_line_is_reported() -> None:
    found = problems_of(BASE.replace("192.0.2.1/24", "192.0.2.1, 10.0.0.1/24, 127.0.0.1/8, foo"))
    assert [(p.line, p.keyword) for p in found] == [(4, "addr")] * 3


def test_at_most_255_addresses() -> None:
    many = ", ".join(f"198.51.100.{i}/32" for i in range(1, 255)) + ", 192.0.2.1/32"
    assert len(one(base=BASE.replace("192.0.2.1/24", many)).addresses) == 255
    problem = the_problem(BASE.replace("192.0.2.1/24", many + ", 192.0.2.2/32"))
    assert "at most 255" in problem.message


# --- family and version ----------------------------------------------------------------

V6 = BASE.replace("192.0.2.1/24", "2001:db8::1/64")


def test_ipv6_defaults_to_version_3() -> None:
    settings = one(base=V6)
    assert (settings.family, settings.version) == (6, 3)


def test_ipv6_with_version_3_is_fine() -> None:
    assert one("version = 3\nadvertint = 0.1\n", V6).advert_int_cs == 10


def test_ipv6_defaulted_version_allows_centisecond_adverts() -> None:
    assert one("advertint = 0.25\n", V6).advert_int_cs == 25


def test_ipv6_with_version_2_is_an_error() -> None:
    problem = the_problem(V6 + "version = 2\n")
    assert (problem.line, problem.keyword) == (5, "version")
    assert "IPv4 only" in problem.message


def test_ipv6_password_says_version_3_was_implied() -> None:
    problem = the_problem(V6 + "password = x\n")
    assert (problem.line, problem.keyword) == (5, "password")
    assert "implied by the IPv6 addresses" in problem.message


def test_ipv6_cannot_drop_the_pseudo_header() -> None:
    problem = the_problem(V6 + "checksumpseudoheader = no\n")
    assert (problem.line, problem.keyword) == (5, "checksumpseudoheader")


def test_a_bad_version_does_not_cascade() -> None:
    found = problems_of(BASE + "version = 9\nchecksumpseudoheader = no\nadvertint = 0.5\n")
    assert [(p.line, p.keyword) for p in found] == [(5, "version")]


def test_a_bad_version_still_checks_the_interval_is_a_number() -> None:
    found = problems_of(BASE + "version = 9\nadvertint = soon\n")
    assert [(p.line, p.keyword) for p in found] == [(5, "version"), (6, "advertint")]


def test_unusable_characters_are_refused() -> None:
    problem = the_problem(BASE + "masterscript = a\x00b\n")
    assert (problem.line, problem.keyword) == (5, "masterscript")
    assert "not valid text" in problem.message


def test_version_3_ipv4() -> None:
    settings = one("version = 3\n")
    assert (settings.family, settings.version, settings.advert_int_cs) == (4, 3, 100)


# --- sections -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["serverid", "interface", "addr"])
def test_missing_required_keyword_is_named_at_the_header(missing: str) -> None:
    second = "\n".join(line for line in sec(2).splitlines() if not line.startswith(missing))
    problem = the_problem(BASE + "# comment\n" + second + "\n")
    assert (problem.line, problem.keyword) == (6, missing)
    assert "required" in problem.message


def test_empty_section_reports_all_three_missing() -> None:
    found = problems_of("[VRID]\n")
    assert [(p.line, p.keyword) for p in found] == [
        (1, "serverid"),
        (1, "interface"),
        (1, "addr"),
    ]


def test_keyword_before_the_first_header() -> None:
    problem = the_problem("# top\npriority = 100\n" + BASE)
    assert (problem.line, problem.keyword) == (2, "priority")
    assert "before the first [VRID]" in problem.message


def test_keys_under_an_unknown_header_are_not_reported_twice() -> None:
    found = problems_of(BASE + "[FOO]\nserverid = 7\nwhatever = 1\n" + sec(2))
    assert [(p.line, p.keyword) for p in found] == [(5, None)]


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n", "   \n\t\n", "# no newline"])
def test_file_without_any_vrid(text: str) -> None:
    problem = the_problem(text)
    assert (problem.line, problem.keyword) == (0, None)
    assert "no [VRID] section" in problem.message


@pytest.mark.parametrize("header", ["[VRID]", "[vrid]", "[ VRID ]", "  [VRID]  "])
def test_header_spellings(header: str) -> None:
    assert one(base=BASE.replace("[VRID]", header)).vrid == 1


def test_layout_superset_of_the_original() -> None:
    text = (
        "\ufeff# BOM, then comments\r\n"
        "   # indented comment\r\n"
        "\t# tab-indented comment\r\n"
        "\r\n"
        "[VRID]\r\n"
        "  serverid=1\r\n"
        "\tinterface   =   eth0\t\r\n"
        "ADDR = 192.0.2.1/24\r\n"
        "\r\n"
        "[VRID]\r\n"
        "serverid = 2\n"  # mixed line ends
        "Interface = eth0\n"
        "addr = 192.0.2.2/24"  # no newline at the end
    )
    first, second = parse_conf(text, "x.conf")
    assert (first.vrid, first.interface, first.source.line) == (1, "eth0", 5)
    assert (second.vrid, second.addresses, second.source.line) == (2, (va("192.0.2.2/24"),), 10)


def test_line_numbers_are_not_shifted_by_form_feeds() -> None:
    problem = the_problem("[VRID]\nserverid = 1\x0c2\ninterface = eth0\naddr = 192.0.2.1/24\n")
    assert problem.line == 2


def test_same_vrid_family_and_interface_twice() -> None:
    problem = the_problem(BASE + BASE.replace("192.0.2.1/24", "192.0.2.9/24"))
    assert (problem.line, problem.keyword) == (6, "serverid")
    assert "already defined by the section at line 1" in problem.message


def test_same_vrid_twice_is_fine_with_another_family_or_interface() -> None:
    text = BASE + V6 + BASE.replace("eth0", "eth1")
    assert [s.key for s in parse_conf(text)] == [(1, 4, "eth0"), (1, 6, "eth0"), (1, 4, "eth1")]


# --- several errors at once, and the error types --------------------------------------------


def test_several_errors_are_all_reported_with_their_lines() -> None:
    path = DATA / "config" / "several-errors.conf"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(p.line, p.keyword) for p in info.value.problems]
    assert found == [
        (2, "priority"),  # before the first [VRID]
        (4, "serverid"),  # 300
        (6, "addr"),  # no prefix
        (7, "bogus"),
        (8, "preempt"),  # maybe
        (9, "preempt"),  # twice
        (11, "interface"),  # missing, named at the header
        (14, "version"),  # 2 with IPv6
        (15, "password"),  # too long
        (16, None),  # [FOO]
        (22, "advertint"),  # 0.5 with v2
        (23, "vridsdep"),  # itself
        (24, "AHencryption"),
    ]
    assert all(p.path == str(path) for p in info.value.problems)
    lines = str(info.value).splitlines()
    assert len(lines) == len(found)
    assert lines[1] == f"{path}:4: serverid: 300 is out of range 1..255"


def test_problem_text() -> None:
    assert str(ConfigProblem("a.conf", 3, "priority", "bad")) == "a.conf:3: priority: bad"
    assert str(ConfigProblem("a.conf", 3, None, "bad")) == "a.conf:3: bad"
    assert str(ConfigProblem("a.conf", 0, None, "gone")) == "a.conf: gone"
    error = ConfigError([ConfigProblem("a", 1, "k", "m"), ConfigProblem("a", 2, None, "n")])
    assert str(error) == "a:1: k: m\na:2: n"


# --- files --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.conf")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == (str(tmp_path / "nope.conf"), 0)
    assert "cannot read" in problem.message and "No such file" in problem.message


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(BASE.encode() + b"password = caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.line, p.message) for p in info.value.problems] == [(5, "not UTF-8 text")]


def test_format_follows_the_extension(tmp_path: Path) -> None:
    conf = tmp_path / "r.conf"
    conf.write_text(BASE)
    yml = tmp_path / "r.YML"
    yml.write_text("- serverid: 1\n  interface: eth0\n  addr: 192.0.2.1/24\n")
    assert load_config(conf) == load_config(yml) == load_config(str(conf))
    wrong = tmp_path / "r.yaml"
    wrong.write_text(BASE)
    with pytest.raises(ConfigError):
        load_config(wrong)


# --- summary and the example file --------------------------------------------------------------


def test_summary_of_defaults() -> None:
    assert summary(one()) == (
        "VRID 1 IPv4 on eth0: v2 priority 100 advert 1s preempt yes vmac yes addrs 192.0.2.1/24"
    )


def test_summary_of_a_v3_router() -> None:
    settings = one(
        "advertint = 0.05\npreemptdelay = 2\naccept = no\nuseVMAC = no\n",
        V6.replace("2001:db8::1/64", "2001:db8::1/64, eth1:2001:db8:1::1/64"),
    )
    assert summary(settings) == (
        "VRID 1 IPv6 on eth0: v3 priority 100 advert 0.05s preempt yes delay 2s accept no "
        "vmac no addrs 2001:db8::1/64,eth1:2001:db8:1::1/64"
    )


def test_summary_mentions_auth_and_checksum_quirk_but_not_the_password() -> None:
    assert "auth password" in summary(one("password = hunter2\n"))
    assert "hunter2" not in summary(one("password = hunter2\n"))
    quirk = one("version = 3\nchecksumpseudoheader = no\n")
    assert "checksum without pseudo-header" in summary(quirk)


def test_example_file_loads() -> None:
    first, second = load_config(EXAMPLE)
    assert (first.key, second.key) == ((1, 4, "eth0"), (1, 6, "eth0"))
    assert second.version == 3 and second.advert_int_cs == 10


def test_example_file_documents_every_keyword() -> None:
    text = EXAMPLE.read_text().lower()
    for keyword in KEYWORDS:
        assert f"\n# {keyword}:" in text, f"{keyword} has no explanation"
        assert f"\n#{keyword} = " in text or f"\n{keyword} = " in text, f"{keyword} has no line"


def test_example_file_comments_start_in_column_0() -> None:
    # The original only knew comments that start in column 0.
    for line in EXAMPLE.read_text().splitlines():
        assert not line.lstrip().startswith("#") or line.startswith("#"), line


def test_example_file_commented_lines_are_valid_settings() -> None:
    """Uncommenting a documented keyword must give a file that still loads (the
    [CHECK] and [SYNCGROUP] examples at the end have a test of their own)."""
    text = EXAMPLE.read_text().split("#[CHECK]")[0]
    settable = [
        line[1:]
        for line in text.splitlines()
        if line.startswith("#")
        and " = " in line
        and line[1:2].isalpha()
        and line[1:].split(" = ")[0].lower() in KEYWORDS
    ]
    ignored = {
        "ahencryption",
        "useike",
        "presharedkey",
        "password",
        "vridsdep",
        "version",
        "checksumpseudoheader",
        "trackscript",  # the [CHECK] and [SYNCGROUP] it names are commented out
        "syncgroup",
    }
    body = "\n".join(s for s in settable if s.split(" = ")[0].lower() not in ignored)
    settings = one(body + "\n")
    assert settings.masterscript == "/usr/local/bin/master_script.sh"


def test_decimal_numbers_are_kept_exact_without_floats() -> None:
    from freevrrpd.config.values import BadValue, parse_advert_int_cs, parse_decimal, parse_seconds

    assert parse_decimal("0.10").scaled(2) == (10, True)
    assert parse_decimal("0.015").scaled(2) == (1, False)
    assert parse_advert_int_cs("40.95", 3) == 4095
    assert parse_advert_int_cs("3.0", 2) == 300
    for bad, version in (("0.015", 3), ("40.96", 3), ("1.5", 2), ("0", 3), ("256", 2)):
        with pytest.raises(BadValue):
            parse_advert_int_cs(bad, version)
    # 0.1 + 0.2 is not 0.3 in floats; here the bounds hold exactly.
    assert parse_seconds("0.3", 0.3, 0.3) == 0.3
    with pytest.raises(BadValue, match="0.30001 seconds is out of range"):
        parse_seconds("0.30001", 0, 0.3)
