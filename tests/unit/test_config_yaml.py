"""YAML form of the config, parity with freevrrpd.conf, and property tests of both."""

from __future__ import annotations

from decimal import Decimal
from ipaddress import ip_interface
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freevrrpd.config import ConfigError, ConfigProblem, load_config, parse_conf, parse_yaml
from freevrrpd.config.values import BadValue, parse_advert_int_cs
from freevrrpd.core.settings import RouterSettings, Source, VirtualAddress

DATA = Path(__file__).resolve().parent.parent / "data" / "config"

ROUTER = "  serverid: 1\n  interface: eth0\n  addr: 192.0.2.1/24\n"


def yaml_problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "t.yaml")
    return info.value.problems


def test_list_and_vrids_shapes_are_the_same() -> None:
    as_list = parse_yaml("-" + ROUTER[1:])
    as_key = parse_yaml("vrids:\n  -" + ROUTER.replace("\n  ", "\n    ")[1:])
    assert as_list == as_key == parse_conf("[VRID]\nserverid=1\ninterface=eth0\naddr=192.0.2.1/24")
    assert as_list[0].source == Source("<string>", 1)


def test_parity_with_the_conf_format() -> None:
    from_conf = load_config(DATA / "parity.conf")
    from_yaml = load_config(DATA / "parity.yaml")
    assert from_conf == from_yaml
    assert len(from_conf) == 3
    first = from_yaml[0]
    assert (first.preempt, first.accept, first.use_vmac, first.monitored_circuits) == (
        False,
        True,
        False,
        False,
    )
    assert (first.preempt_delay, first.hook_timeout, first.vrids_dep) == (1.5, 12.5, (20, 30))
    assert from_yaml[1].advert_int_cs == 5 and from_yaml[1].version == 3
    assert from_yaml[2].checksum_pseudo_header is False
    assert [s.source.line for s in from_yaml] == [2, 33, 39]


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("preempt: yes", "preempt", True),  # a YAML bool, read as its text
        ("preempt: on", "preempt", True),
        ("preempt: 'no'", "preempt", False),
        ("useVMAC: False", "use_vmac", False),
        ("version: 3\n  advertint: 0.05", "advert_int_cs", 5),
        ("advertint: 2", "advert_int_cs", 200),
        ("priority: 0200", "priority", 200),  # text, not YAML 1.1 octal
        ("password: 0123", "password", "0123"),
        ("password: 'a#b'", "password", "a#b"),
        ("masterscript: /bin/notify master --x=1", "masterscript", "/bin/notify master --x=1"),
        ("PRIORITY: 7", "priority", 7),
    ],
)
def test_yaml_scalars_are_read_as_text(line: str, field: str, expected: object) -> None:
    (router,) = parse_yaml("-" + ROUTER[1:] + "  " + line + "\n")
    assert getattr(router, field) == expected


def test_yaml_sexagesimal_is_not_a_number() -> None:
    # YAML 1.1 reads 1:30 as 90; as text it is no number of seconds.
    (problem,) = yaml_problems("-" + ROUTER[1:] + "  garpinterval: 1:30\n")
    assert (problem.line, problem.keyword) == (4, "garpinterval")


def test_addr_as_list_or_string() -> None:
    listed = parse_yaml(
        "- serverid: 1\n  interface: eth0\n  addr:\n    - 2001:db8::1/64\n"
        "    - eth1:2001:db8:1::1/64\n"
    )
    inline = parse_yaml(
        "- serverid: 1\n  interface: eth0\n  addr: 2001:db8::1/64, eth1:2001:db8:1::1/64\n"
    )
    assert listed == inline
    assert listed[0].addresses == (
        VirtualAddress(ip_interface("2001:db8::1/64")),
        VirtualAddress(ip_interface("2001:db8:1::1/64"), "eth1"),
    )
    assert listed[0].version == 3


def test_several_yaml_errors_are_all_reported_with_their_lines() -> None:
    path = DATA / "several-errors.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.line, p.keyword) for p in info.value.problems] == [
        (3, "serverid"),
        (5, "addr"),
        (6, "bogus"),
        (7, "preempt"),
        (8, "preempt"),  # duplicate key: YAML's composer keeps both, we refuse
        (10, "interface"),  # missing, named at the mapping's first line
        (12, "version"),
        (13, "password"),
        (17, "advertint"),
        (18, "vridsdep"),
        (19, "AHencryption"),
        (20, "masterscript"),  # a mapping is not a value
    ]


@pytest.mark.parametrize(
    ("text", "line", "keyword", "words"),
    [
        ("", 0, None, "no [VRID] section"),
        ("# nothing\n", 0, None, "no [VRID] section"),
        ("[]\n", 0, None, "no [VRID] section"),
        ("{}\n", 0, None, "no [VRID] section"),
        ("vrids: []\n", 0, None, "no [VRID] section"),
        ("just text\n", 1, None, "expected a list of virtual routers"),
        ("routers:\n  - serverid: 1\n", 1, "routers", "expected 'vrids'"),
        ("vrids: 5\n", 1, "vrids", "expected a list"),
        ("- 5\n", 1, None, "must be a mapping"),
        ("- serverid: 1\n  interface: eth0\n  addr: [192.0.2.1/24\n", 4, None, "YAML syntax"),
        ("- a: b\n - c\n", 2, None, "YAML syntax"),
        ("- serverid: 1\n---\n- serverid: 2\n", 2, None, "YAML syntax"),
        ("-" + ROUTER[1:] + "  priority:\n", 4, "priority", "no value"),
        ("-" + ROUTER[1:] + "  priority: ~\n", 4, "priority", "no value"),
        ("-" + ROUTER[1:] + "  addr2: [1, [2]]\n", 4, "addr2", "single values"),
        ("-" + ROUTER[1:] + "  ? [a]\n  : b\n", 4, None, "plain word"),
        ("-" + ROUTER[1:] + "  <<: 5\n", 4, "<<", "unknown keyword"),
        ("- serverid: 1\n  interface: eth0\x00\n", 2, None, "U+0000 is not allowed"),
        ("[" * 3000, 0, None, "nested too deeply"),
        ("-" + ROUTER[1:] + '  password: "\\ud800"\n', 4, "password", "not valid text"),
        ("-" + ROUTER[1:] + "  masterscript: {a: b}\n", 4, "masterscript", "got a mapping"),
    ],
)
def test_yaml_structure_errors(text: str, line: int, keyword: str | None, words: str) -> None:
    problems = yaml_problems(text)
    assert (problems[0].line, problems[0].keyword) == (line, keyword), problems
    assert words in problems[0].message


def test_yaml_lists_hold_single_values_only() -> None:
    (problem,) = yaml_problems("-" + ROUTER[1:] + "  vridsdep: [1, [2]]\n")
    assert (problem.line, problem.keyword) == (4, "vridsdep")


def test_yaml_does_not_construct_python_objects() -> None:
    text = "-" + ROUTER[1:] + "  masterscript: !!python/object/apply:os.system ['true']\n"
    (router,) = parse_yaml(text)
    assert router.masterscript == "true"  # the tag is ignored; nothing was run


# --- property tests (both formats) ------------------------------------------------------------

BOOL_WORDS = {True: ["yes", "Yes", "true", "ON", "1"], False: ["no", "NO", "False", "off", "0"]}


def _keyword_case(draw: st.DrawFn, keyword: str) -> str:
    return draw(st.sampled_from([keyword, keyword.lower(), keyword.upper()]))


@st.composite
def routers(draw: st.DrawFn) -> tuple[dict[str, str], RouterSettings]:
    """Random valid settings and the keyword text that should produce them."""
    vrid = draw(st.integers(1, 255))
    family = draw(st.sampled_from([4, 6]))
    version = 3 if family == 6 else draw(st.sampled_from([2, 3]))
    hosts = draw(st.lists(st.integers(1, 254), min_size=1, max_size=4, unique=True))
    net = "192.0.2.{}/24" if family == 4 else "2001:db8::{:x}/64"
    addresses = tuple(
        VirtualAddress(ip_interface(net.format(h)), draw(st.sampled_from([None, "eth1", "vlan7"])))
        for h in hosts
    )
    # RFC 3768: whole seconds; RFC 5798: centiseconds.
    advert_cs = draw(st.integers(1, 255)) * 100 if version == 2 else draw(st.integers(1, 4095))
    priority = draw(st.integers(1, 255))
    preempt = draw(st.booleans())
    vmac = draw(st.booleans())
    delay_cs = draw(st.integers(0, 360000))
    delay = delay_cs / 100
    garp = draw(st.integers(0, 100))
    values = {
        "serverid": str(vrid),
        "interface": "eth0",
        "addr": ", ".join(str(a) for a in addresses),
        "priority": str(priority),
        "advertint": str(Decimal(advert_cs) / 100),
        "preempt": draw(st.sampled_from(BOOL_WORDS[preempt])),
        "useVMAC": draw(st.sampled_from(BOOL_WORDS[vmac])),
        "preemptdelay": str(Decimal(delay_cs) / 100),
        "garpcount": str(garp),
    }
    if draw(st.booleans()) or (family == 4 and version == 3):
        values["version"] = str(version)
    values = {_keyword_case(draw, k): v for k, v in values.items()}
    expected = RouterSettings(
        vrid=vrid,
        interface="eth0",
        addresses=addresses,
        family=family,
        version=version,
        priority=priority,
        advert_int_cs=advert_cs,
        preempt=preempt,
        use_vmac=vmac,
        preempt_delay=delay,
        garp_count=garp,
    )
    return values, expected


def as_conf(values: dict[str, str]) -> str:
    return "[VRID]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def as_yaml(values: dict[str, str]) -> str:
    return "-" + "".join(f"  {k}: {_yaml_scalar(k, v)}\n" for k, v in values.items())[1:]


def _yaml_scalar(keyword: str, value: str) -> str:
    # Addresses may start with a device name: quote them as a YAML user would.
    return f'"{value}"' if keyword.lower() == "addr" else value


@settings(max_examples=150, deadline=None)
@given(routers())
def test_random_routers_read_the_same_in_both_formats(
    case: tuple[dict[str, str], RouterSettings],
) -> None:
    values, expected = case
    assert parse_conf(as_conf(values)) == (expected,)
    assert parse_yaml(as_yaml(values)) == (expected,)


@given(st.integers(1, 4095), st.sampled_from(["{}", "{:.2f}", "{:.3f}"]))
def test_v3_advertint_round_trips(centis: int, form: str) -> None:
    text = form.format(Decimal(centis) / 100)
    assert parse_advert_int_cs(text, 3) == centis


@given(st.integers(1, 255), st.sampled_from(["{}", "{}.0", "{}.00"]))
def test_v2_advertint_round_trips(seconds: int, form: str) -> None:
    assert parse_advert_int_cs(form.format(seconds), 2) == seconds * 100


@given(st.integers(1, 25500).filter(lambda c: c % 100))
def test_v2_refuses_fractions_of_a_second(centis: int) -> None:
    with pytest.raises(BadValue):
        parse_advert_int_cs(str(Decimal(centis) / 100), 2)


LINES = st.sampled_from(
    [
        "[VRID]",
        "[FOO]",
        "serverid = 1",
        "serverid = 2",
        "interface = eth0",
        "interface = eth1",
        "addr = 192.0.2.1/24",
        "addr = 2001:db8::1/64",
        "addr = eth1:2001:db8::2/64",
        "version = 2",
        "version = 3",
        "advertint = 0.5",
        "password = x",
        "vridsdep = 1, 2",
        "# comment",
        "",
        "priority = 0",
        "checksumpseudoheader = no",
        "garbage",
        "=",
        "addr = ,",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=30)), max_size=20))
def test_conf_reader_fails_only_with_config_error(lines: list[str]) -> None:
    try:
        result = parse_conf("\n".join(lines))
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, ConfigProblem) for p in exc.problems)
    else:
        assert result and all(isinstance(r, RouterSettings) for r in result)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_yaml_reader_fails_only_with_config_error(text: str) -> None:
    try:
        parse_yaml(text)
    except ConfigError as exc:
        assert exc.problems
