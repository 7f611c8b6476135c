"""Tracking (issue 11): weights and clamping, rise and fall, the owner untouched, a
check that hangs, the config keywords and their errors, sync groups' decisions,
the peer table and the event stream's order.  The state machine runs on the
simulated LAN's fake clock; checks run real (short) commands."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address, ip_interface
from pathlib import Path

import pytest

from freevrrpd.config import ConfigError, parse_conf, parse_yaml
from freevrrpd.core.actions import Action, PriorityChange, SendAdvert, State
from freevrrpd.core.linkhold import FaultChange
from freevrrpd.core.router import Router
from freevrrpd.core.settings import RouterSettings, SyncGroup, VirtualAddress
from freevrrpd.core.tracking import CheckScript, CheckState, Demotion, Track, Tracking
from freevrrpd.daemon.syncgroups import SyncGroups
from freevrrpd.daemon.tracking import TrackMonitor, read_number
from freevrrpd.vrid.commands import Command
from freevrrpd.vrid.events import EventBus
from tests.support.sim import LATENCY, SimLan

EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "freevrrpd.conf.example"
BASE = "[VRID]\nserverid = 1\ninterface = eth0\naddr = 192.0.2.254/24\n"


# ---- the priority ------------------------------------------------------------------

def test_weights_add_while_failing_or_healthy_and_stay_within_1_to_254() -> None:
    t = Tracking([Track("script", "a", -50), Track("interface", "up", 30),
                  Track("file", "/f", 2)])
    assert t.effective(100) == 130  # healthy: +30 for the positive weight only
    t.record(("script", "a"), 0)
    assert t.effective(100) == 80
    t.record(("interface", "up"), 0)
    assert t.effective(100) == 50
    t.record(("file", "/f"), -40)  # -40 * 2
    assert t.effective(100) == 1  # clamped, never 0 (that is a resignation)
    t.record(("file", "/f"), 100)
    assert t.effective(240) == 254  # clamped below the owner's 255
    assert t.effective(255) == 255  # the owner is never changed (RFC 5798 6.1)
    assert t.faults() == set()


def test_weight_0_makes_the_router_not_eligible_and_files_past_minus_254() -> None:
    t = Tracking([Track("script", "a", 0), Track("file", "/f", 0), Track("file", "/g", -1)])
    assert t.faults() == set()
    t.record(("script", "a"), 0)
    t.record(("file", "/f"), 3)
    t.record(("file", "/g"), 254)
    assert t.faults() == {"check a failing", "track file /f holds 3", "track file /g holds 254"}
    t.demotion = Demotion(None, 1000)
    assert "demoted by freevrrpctl (uid 1000)" in t.faults()


def test_rise_and_fall_count_results_in_a_row() -> None:
    state = CheckState(CheckScript("c", "x", rise=2, fall=3))
    assert [state.result(r) for r in (False, False, True, False, False, False)] == \
        [False, False, False, False, False, True]
    assert not state.ok
    assert [state.result(r) for r in (True, False, True, True)] == [False, False, False, True]
    assert state.ok


def _pair(tracks: tuple[Track, ...] = ()) -> tuple[SimLan, Router]:
    lan = SimLan()
    high = lan.add("high", "192.0.2.2", priority=200, conflict_check=False, tracks=tracks)
    lan.add("low", "192.0.2.1", priority=100, conflict_check=False)
    lan.start()
    lan.run_for(5)
    assert lan.masters() == ["high"]
    return lan, high.router


def test_a_failing_check_lowers_the_advert_at_once_and_the_backup_takes_over() -> None:
    lan, router = _pair((Track("script", "chk", -150),))
    node = lan.nodes["high"]
    at = lan.now
    actions = router.track(("script", "chk"), 0, at)
    assert PriorityChange(200, 50, "check chk failing (weight -150)") in actions
    lan._apply(node, actions)
    # The new priority goes out at once, not at the next Adver_Timer.
    assert node.sent[-1] == (at, 50)
    lan.run_for(5)
    assert lan.masters() == ["low"]
    low = lan.nodes["low"].router
    took = lan.became_master_at("low")[-1]
    assert took == pytest.approx(at + LATENCY + low.skew_time)
    # Healthy again: the master (100) hears 200 and steps back.
    lan._apply(node, router.track(("script", "chk"), 1, lan.now))
    lan.run_for(5)
    assert lan.masters() == ["high"]


def test_the_owner_is_never_demoted_by_weights_but_weight_0_still_counts() -> None:
    s = RouterSettings(vrid=1, interface="eth0", addresses=(), priority=255,
                       tracks=(Track("script", "w", -100), Track("script", "z", 0)))
    r = Router(s, IPv4Address("192.0.2.1"))
    r.start(0.0)
    assert r.state is State.MASTER
    assert r.track(("script", "w"), 0, 1.0) == []
    assert r.priority == 255
    out = r.track(("script", "z"), 0, 2.0)
    assert r.state is State.FAULT and any(isinstance(a, SendAdvert) and a.priority == 0
                                          for a in out)


def test_a_demotion_is_undone_by_promote() -> None:
    lan, router = _pair()
    lan._apply(lan.nodes["high"], router.demote(Demotion(120, 0), lan.now))
    lan.run_for(3)
    assert lan.masters() == ["low"] and router.priority == 80
    lan._apply(lan.nodes["high"], router.demote(None, lan.now))
    lan.run_for(3)
    assert lan.masters() == ["high"] and router.priority == 200


# ---- the checks' thread ------------------------------------------------------------

def _monitor(check: CheckScript, got: list[tuple[object, ...]]) -> TrackMonitor:
    s = RouterSettings(vrid=1, interface="eth0", addresses=(),
                       tracks=(Track("script", check.name, -10, check),))
    return TrackMonitor([s], lambda key, change: got.append((key, change)),
                        logging.getLogger("test"))


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_check_that_hangs_is_killed_at_its_timeout_counts_as_a_failure_and_is_not_doubled(
) -> None:
    got: list[tuple[object, ...]] = []
    mon = _monitor(CheckScript("hang", "sleep 30", interval=0.05, timeout=0.3, fall=1), got)
    mon.start()
    try:
        _wait(lambda: bool(got), 5.0)
        status = mon.status()["hang"]
        assert status["status"] == "failing" and status["last_timed_out"]
        assert status["runs"] == 1  # one at a time: the runs due meanwhile were skipped
        assert got[0][1].value == 0  # type: ignore[attr-defined]
    finally:
        mon.stop()


def test_a_check_is_run_every_interval_and_reports_only_changes(tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    flag.touch()
    got: list[tuple[object, ...]] = []
    mon = _monitor(CheckScript("f", f"test -e {flag}", interval=0.05, timeout=1, rise=2,
                               fall=2), got)
    mon.start()
    try:
        _wait(lambda: mon.status()["f"]["runs"] >= 4)
        assert got == []  # healthy from the start: nothing to say
        flag.unlink()
        _wait(lambda: bool(got))
        assert mon.status()["f"]["failures"] >= 2
    finally:
        mon.stop()


def test_a_track_file_number_is_its_first_word_and_0_when_unreadable(tmp_path: Path) -> None:
    f = tmp_path / "prio"
    f.write_text("-20 because\n")
    assert read_number(str(f)) == -20
    f.write_text("lots")
    assert read_number(str(f)) == 0
    assert read_number(str(tmp_path / "missing")) == 0


# ---- the config ----------------------------------------------------------------------

CHECK = "[CHECK]\nname = chk\nscript = /bin/true\ninterval = 2\nweight = -30\nfall = 3\n"


def test_checks_interfaces_files_and_groups_are_read_with_their_weights() -> None:
    text = (CHECK + "[SYNCGROUP]\nname = g\nnotify = /bin/echo\ntrackingweight = yes\n" + BASE
            + "trackscript = chk, chk2 weight -5\ntrackinterface = eth1 weight -20, eth2\n"
            + "trackfile = /run/p\nsyncgroup = g\n"
            + "[CHECK]\nname = chk2\nscript = /bin/false\n")
    (s,) = parse_conf(text)
    assert [(t.kind, t.name, t.weight) for t in s.tracks] == [
        ("script", "chk", -30), ("script", "chk2", -5), ("interface", "eth1", -20),
        ("interface", "eth2", 0), ("file", "/run/p", 1)]
    assert s.tracks[0].check == CheckScript("chk", "/bin/true", 2.0, 2.0, -30, 1, 3, 1)
    assert s.sync_group == SyncGroup("g", notify="/bin/echo", line=7, tracking_weight=True)


def test_yaml_has_checks_and_syncgroups_too() -> None:
    text = ("checks:\n  - {name: chk, script: /bin/true, weight: -30}\n"
            "syncgroups:\n  - {name: g, trackingweight: yes}\n"
            "vrids:\n  - serverid: 1\n    interface: eth0\n    addr: 192.0.2.254/24\n"
            "    trackscript: [chk, chk weight 10]\n    syncgroup: g\n")
    with pytest.raises(ConfigError, match=r"t.yaml:9: trackscript: 'chk' is listed twice"):
        parse_yaml(text, "t.yaml")
    (s,) = parse_yaml(text.replace(", chk weight 10", ""), "t.yaml")
    assert s.tracks[0].weight == -30 and s.sync_group is not None


@pytest.mark.parametrize("lines,where,message", [
    ("trackscript = nope\n", "t.conf:12: trackscript", "no check named 'nope' (known: chk)"),
    ("trackscript = chk weight 255\n", "t.conf:12: trackscript", "out of range -254..254"),
    ("trackinterface = eth1 weight -300\n", "t.conf:12: trackinterface", "out of range"),
    ("trackfile = relative\n", "t.conf:12: trackfile", "give an absolute path"),
    ("syncgroup = none\n", "t.conf:12: syncgroup", "no sync group named 'none'"),
])
def test_tracking_mistakes_name_the_file_and_line(lines: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_conf(CHECK + "\n" + BASE + lines, "t.conf")
    assert f"{where}: " in str(exc.value) and message in str(exc.value), str(exc.value)


def test_check_section_mistakes_name_the_file_and_line() -> None:
    text = ("[CHECK]\nname = a\ninterval = 0\nweight = -999\nrise = x\nbogus = 1\n"
            "[CHECK]\nname = a\nscript = /bin/true\n" + BASE + "trackscript = a\n")
    with pytest.raises(ConfigError) as exc:
        parse_conf(text, "t.conf")
    got = str(exc.value)
    for want in ("t.conf:1: script: required", "t.conf:3: interval: 0 seconds is out of range",
                 "t.conf:4: weight: weight -999 is out of range",
                 "t.conf:5: rise: expected a whole number", "t.conf:6: bogus: unknown keyword "
                 "in a [CHECK] section"):
        assert want in got, got


def test_the_examples_check_and_syncgroup_sections_load_when_uncommented() -> None:
    text = EXAMPLE.read_text()
    tail = text[text.index("#[CHECK]"):]
    sections = "\n".join(line[1:] if line.startswith("#") and (" = " in line or line.startswith(
        "#[")) else line for line in tail.splitlines())
    (s,) = parse_conf(sections + "\n" + BASE + "trackscript = chk_gateway\nsyncgroup = uplinks\n")
    assert s.tracks[0].check is not None and s.tracks[0].check.fall == 2
    assert s.sync_group is not None and s.sync_group.notify == "/etc/keepalived/notify.sh"


# ---- sync groups ---------------------------------------------------------------------

VIPS = (VirtualAddress(ip_interface("192.0.2.254/24")),)


class FakeMember:
    def __init__(self, vrid: int, group: SyncGroup) -> None:
        self.settings = RouterSettings(vrid=vrid, interface=f"eth{vrid}", addresses=VIPS,
                                       priority=200, conflict_check=False, sync_group=group)
        self.router = Router(self.settings, IPv4Address(f"192.0.2.{vrid}"))
        self.posted: list[Command] = []
        self.later_calls: list[list[Action]] = []

    def post(self, command: Command) -> None:
        self.posted.append(command)
        if isinstance(command, FaultChange):
            self.router.set_fault(command.reason, command.active, 0.0)

    def later(self, fn: Callable[[Router, float], list[Action]]) -> None:
        self.later_calls.append(fn(self.router, 0.0))


def _two_masters() -> tuple[SyncGroups, FakeMember, FakeMember]:
    g = SyncGroup("g")
    a, b = FakeMember(1, g), FakeMember(2, g)
    groups = SyncGroups(logging.getLogger("test"))
    groups.bind([a, b])
    for m in (a, b):
        m.router.start(0.0)
        m.router.handle_timer(10.0)  # both master
        groups.report(m.settings.key, m.router)
    return groups, a, b


def test_a_sync_group_follows_own_faults_only_and_recovers() -> None:
    groups, a, b = _two_masters()
    a.router.set_fault("link eth1 down", True, 11.0)
    groups.report(a.settings.key, a.router)
    assert b.router.state is State.FAULT
    assert b.router.faults == {"sync group g: VRID 1 on eth1 (IPv4) not eligible"}
    groups.report(b.settings.key, b.router)  # b's FAULT is the group's: a is not held by it
    assert a.router.faults == {"link eth1 down"}
    a.router.set_fault("link eth1 down", False, 12.0)
    groups.report(a.settings.key, a.router)
    assert b.router.faults == set() and b.router.state is State.BACKUP


def test_a_member_that_loses_the_election_takes_the_others_to_backup_and_holds_them() -> None:
    groups, a, b = _two_masters()
    # A higher master on a's LAN: a becomes backup, outranked.
    from freevrrpd.core.packet import encode
    from freevrrpd.core.settings import VRRP_GROUP_V4
    peer = RouterSettings(vrid=1, interface="x", addresses=VIPS, priority=250)
    data = encode(Router(peer).build_advert(250), IPv4Address("192.0.2.99"), VRRP_GROUP_V4)
    a.router.receive(data, IPv4Address("192.0.2.99"), VRRP_GROUP_V4, 255, 11.0)
    assert a.router.state is State.BACKUP
    groups.report(a.settings.key, a.router)
    assert b.router.state is State.BACKUP  # stepped down: resigned with priority 0
    assert any(isinstance(x, SendAdvert) and x.priority == 0 for x in b.later_calls[0])
    assert b.router.preempt_held == "sync group g: VRID 1 on eth1 (IPv4) follows a higher master"


# ---- the event stream ----------------------------------------------------------------

def test_events_are_numbered_in_order_kept_for_a_reconnect_and_never_block() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    threads = [threading.Thread(target=lambda n=n: [bus.publish("report", f"r{n}", f"{n}.{i}")
                                                    for i in range(200)]) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sub.get(0.1)
    assert [e["seq"] for e in got] == list(range(1, 801))
    late = bus.subscribe(since=790)
    assert [e["seq"] for e in late.get(0.1)] == list(range(791, 801))
    gone = bus.subscribe(since=10)  # the ring keeps the last 1000 only: nothing lost here
    assert gone.get(0.1)[0]["seq"] == 11
    sub.close()
    bus.publish("reload", None, "x")
    assert sub.get(0.01) == []


# ---- the repeats tap keeps the Master_Down_Timer (a stale one here) ------------------

def _backup_expecting() -> tuple[Router, bytes]:
    from freevrrpd.core.actions import ExpectRepeats
    from freevrrpd.core.packet import encode
    from freevrrpd.core.settings import VRRP_GROUP_V4

    s = RouterSettings(vrid=1, interface="eth0", addresses=VIPS, priority=100, version=3,
                       conflict_check=False, tracks=(Track("script", "c", 120),))
    r = Router(s, IPv4Address("192.0.2.2"), repeats=True, tracks={("script", "c"): 0})
    r.start(0.0)
    master = Router(RouterSettings(vrid=1, interface="x", addresses=VIPS, priority=150,
                                   version=3), IPv4Address("192.0.2.1"))
    data = encode(master.build_advert(150), IPv4Address("192.0.2.1"), VRRP_GROUP_V4)
    out = r.receive(data, IPv4Address("192.0.2.1"), VRRP_GROUP_V4, 255, 0.5, b"\x02" * 6)
    assert any(isinstance(a, ExpectRepeats) for a in out)
    return r, data


def test_a_backup_whose_tap_kept_the_timer_preempts_after_skew_time_not_at_once() -> None:
    r, _data = _backup_expecting()
    # 100 s later the tap has counted every repeat; the router's own timer is stale.
    assert r.master_down_timer is not None and r.master_down_timer < 100.0
    r.track(("script", "c"), 1, 100.0)  # healthy: +120 = 220 > the master's 150
    assert r.priority == 220 and r.master_down_timer == pytest.approx(100.0 + r.skew_time)


def test_a_backup_that_stops_the_tap_takes_its_last_count_and_does_not_take_over() -> None:
    r, _data = _backup_expecting()
    assert r._forget_repeats()  # as a reload or a new priority does: StopRepeats
    r.repeats_taken(IPv4Address("192.0.2.1"), 99.9, 999)
    assert r.master_down_timer == pytest.approx(99.9 + r.master_down_interval)
    assert r.handle_timer(100.0) == [] and r.state is State.BACKUP
    assert r.peers.status(100.0)[0]["adverts"] == 1000


def test_the_taps_last_count_never_delays_the_takeover_after_a_resignation() -> None:
    """Found by test_sigterm_hands_over_within_skew_time: the priority-0 advert
    stops the tap, whose last record must not push Skew_Time out to a
    Master_Down_Interval."""
    from freevrrpd.core.packet import encode
    from freevrrpd.core.settings import VRRP_GROUP_V4

    r, _data = _backup_expecting()
    master = Router(RouterSettings(vrid=1, interface="x", addresses=VIPS, priority=150,
                                   version=3), IPv4Address("192.0.2.1"))
    bye = encode(master.build_advert(0), IPv4Address("192.0.2.1"), VRRP_GROUP_V4)
    r.receive(bye, IPv4Address("192.0.2.1"), VRRP_GROUP_V4, 255, 50.0, b"\x02" * 6)
    r.repeats_taken(IPv4Address("192.0.2.1"), 49.99, 40)
    assert r.master_down_timer == pytest.approx(50.0 + r.skew_time)


def test_in_a_sync_group_weights_count_as_0_unless_trackingweight(
        caplog: pytest.LogCaptureFixture) -> None:
    """keepalived's rule: a weight on one member alone would keep the group from
    moving (the peer's members do not preempt while one follows a higher master)."""
    text = (CHECK + "[SYNCGROUP]\nname = g\n" + BASE
            + "trackscript = chk\ntrackinterface = eth1 weight -20\nsyncgroup = g\n")
    with caplog.at_level(logging.WARNING):
        (s,) = parse_conf(text, "t.conf")
    assert [t.weight for t in s.tracks] == [0, 0]
    assert "t.conf:15: syncgroup: in sync group g the tracking weights count as 0" in caplog.text
    (s,) = parse_conf(text.replace("name = g\n", "name = g\ntrackingweight = yes\n"), "t.conf")
    assert [t.weight for t in s.tracks] == [-30, -20]


def test_conflicts_reach_the_event_stream_by_their_topic_not_their_words() -> None:
    from freevrrpd.core.actions import Report
    from freevrrpd.vrid.journal import Journal

    s = RouterSettings(vrid=1, interface="eth0", addresses=VIPS)
    r = Router(s, IPv4Address("192.0.2.1"))
    (claimed,) = r.claim_seen(IPv4Address("192.0.2.254"), b"\x02\x00\x00\x00\x00\x09")
    bus = EventBus()
    sub = bus.subscribe()
    journal = Journal(s.name, logging.getLogger("test"), bus)
    assert isinstance(claimed, Report)
    journal.record(claimed)
    journal.record(Report("warning", "misconfigured peer: address conflict in its list?"))
    assert [e["kind"] for e in sub.get(0.1)] == ["conflict", "report"]
