"""freevrrpd and keepalived (Debian's 2.2.7) as peers of one virtual router.

For every mode both speak (VRRPv2 with and without a password, VRRPv3 over
IPv4 and IPv6) the two daemons run in lab namespaces on one switch with the
same VRID, and each side's own log, the adverts on the wire and the hosts'
addresses must agree on who is master.  Election, failover and preemption both
ways also over unicast (keepalived's ``unicast_src_ip`` / ``unicast_peer``,
freevrrpd's ``unicastsrc`` / ``unicastpeer``) on a switch that drops multicast.

Not here: VRRPv3/IPv4 with the checksum computed without the pseudo-header.
keepalived 2.2.7 cannot send or accept that for multicast adverts (its only
switch, ``old_unicast_checksum``, applies to unicast peers), so there is no
peer to interoperate with; docs/CONFORMANCE.md records the gap, and
tests/conformance checks our side of that mode with tshark.
"""

from __future__ import annotations

import time

import pytest

from lab import Lab
from tests.support.interop import MODES, UNICAST_MODES, V2_MODES, Mode, Pair, drops
from tests.support.root import needs_root

pytestmark = [pytest.mark.netns, needs_root]

modes = pytest.mark.parametrize("mode", MODES, ids=[m.id for m in MODES])
# Election, failover and preemption both ways, also over keepalived's unicast.
all_modes = pytest.mark.parametrize("mode", MODES + UNICAST_MODES,
                                    ids=[m.id for m in MODES + UNICAST_MODES])
HIGH, LOW = 200, 100


@all_modes
def test_freevrrpd_higher_is_master_survives_a_partition_and_takes_back_over(
    lab: Lab, mode: Mode
) -> None:
    pair = Pair(lab, mode)
    pair.start(fv_priority=HIGH, ka_priority=LOW)
    # (a) freevrrpd is master, keepalived backup, for 10 intervals without a flap.
    pair.wait_master(pair.fv)
    pair.hold(pair.fv, intervals=10)
    # (c) cut the master off the LAN (carrier stays): keepalived takes over.
    fv_mark, mark = pair.fvd.mark(), pair.kad.mark()
    pair.fv.isolate()
    pair.wait_ka("MASTER", since=mark)
    assert pair.has_vip(pair.ka)
    # It comes back: the two masters meet, the higher priority wins on both sides.
    mark = pair.kad.mark()
    pair.fv.reconnect()
    pair.wait_ka("BACKUP", since=mark)
    pair.wait_master(pair.fv)
    # freevrrpd, hearing nobody, stayed master throughout and won the reunion.
    assert pair.fv_states(fv_mark) == []
    pair.hold(pair.fv, intervals=3)


@all_modes
def test_keepalived_higher_is_master_survives_a_partition_and_takes_back_over(
    lab: Lab, mode: Mode
) -> None:
    pair = Pair(lab, mode)
    pair.start(fv_priority=LOW, ka_priority=HIGH)
    # (b) keepalived is master, freevrrpd backup, for 10 intervals without a flap.
    pair.wait_master(pair.ka)
    pair.hold(pair.ka, intervals=10)
    # (c) cut keepalived off: freevrrpd takes over.
    mark = pair.fvd.mark()
    pair.ka.isolate()
    pair.wait_fv("MASTER", since=mark)
    assert pair.has_vip(pair.fv)
    # keepalived comes back and takes over again; freevrrpd steps down.
    mark = pair.fvd.mark()
    pair.ka.reconnect()
    pair.wait_fv("BACKUP", since=mark)
    pair.wait_master(pair.ka)
    pair.hold(pair.ka, intervals=3)
    # freevrrpd stepped down because of keepalived's higher priority, nothing else.
    assert f"higher priority master {pair.source(pair.ka)} (priority {HIGH})" in pair.fvd.log()


@modes
@pytest.mark.parametrize("freevrrpd_higher_address", [True, False],
                         ids=["freevrrpd-higher-address", "keepalived-higher-address"])
def test_equal_priorities_elect_the_higher_primary_address_on_both_sides(
    lab: Lab, mode: Mode, freevrrpd_higher_address: bool
) -> None:
    """RFC 5798 6.4.3: two masters of equal priority; the higher address stays.

    Started together on one LAN, whoever's Master_Down_Timer fires first wins,
    since a backup accepts an equal-priority master (RFC 5798 6.4.2) and
    freevrrpd starts later than keepalived. So both start cut off from each
    other, each becomes master, and the tie is decided when the LAN heals.
    """
    pair = Pair(lab, mode, freevrrpd_higher_address=freevrrpd_higher_address)
    pair.fv.isolate()
    pair.start(fv_priority=150, ka_priority=150)
    pair.wait_fv("MASTER")
    pair.wait_ka("MASTER")
    pair.fv.reconnect()
    winner, loser = (pair.fv, pair.ka) if freevrrpd_higher_address else (pair.ka, pair.fv)
    pair.wait_master(winner)
    pair.hold(winner, intervals=3)
    if loser is pair.fv:
        expected = f"equal priority 150, master {pair.source(winner)} has the higher address"
        assert expected in pair.fvd.log()
    else:
        assert "with same priority 150 but higher IP address than ours" in pair.kad.log()


@pytest.mark.parametrize("mode", V2_MODES, ids=[m.id for m in V2_MODES])
def test_password_mismatch_is_rejected_on_both_sides(lab: Lab, mode: Mode) -> None:
    """RFC 3768 7.1: the auth type must match and the password must be right.

    With a password configured, keepalived's is different; without, only
    keepalived has one (an auth type mismatch). Neither accepts the other, so
    both end up master.
    """
    pair = Pair(lab, mode)
    fv_password = "fvpass" if mode.password else None
    pair.start(fv_priority=HIGH, ka_priority=LOW, fv_password=fv_password, ka_password="kapass")
    pair.wait_fv("MASTER")
    pair.wait_ka("MASTER")
    pair.fvd.wait_log(r"misconfigured peer .*dropping its adverts", timeout=10)
    status = pair.status()
    assert "state MASTER" in status
    reason = "auth" if mode.password else "auth_type"
    assert drops(status).get(reason, 0) > 0, status
    peer = pair.source(pair.ka)
    if mode.password:
        assert f"misconfigured peer {peer}: wrong password" in pair.fvd.log()
        pair.kad.wait_log(r"received an invalid passwd!", timeout=10)
    else:
        detail = "authentication simple text password, ours is none"
        assert f"misconfigured peer {peer}: {detail}" in pair.fvd.log()
        pair.kad.wait_log(r"received a 0 auth, expecting 1!", timeout=10)
    # Both stay master: neither counts the other's adverts. (Only ours are
    # checked on the wire: keepalived 2.2.7 as master postpones its own advert
    # whenever it receives one it rejects, so against a peer on the same
    # interval it may stay silent for seconds while still claiming MASTER.)
    fv_mark, ka_mark = pair.fvd.mark(), pair.kad.mark()
    start = time.time()
    time.sleep(3 * mode.interval)
    end = time.time()
    time.sleep(0.2)  # let tcpdump flush
    assert pair.fv_states(fv_mark) == [] and pair.kad.states(ka_mark) == []
    assert pair.fv_state() == "MASTER" and pair.kad.state() == "MASTER"
    ours = [a for a in pair.adverts(start, end) if a.src == pair.source(pair.fv)]
    assert len(ours) >= 2 and {a.priority for a in ours} == {HIGH}
    assert pair.source(pair.ka) in {a.src for a in pair.adverts()}
    assert pair.has_vip(pair.fv) and pair.has_vip(pair.ka)
