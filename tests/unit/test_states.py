"""The transition table (core.states): the whole graph in one place; nothing else."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface

import pytest

from freevrrpd.core import states
from freevrrpd.core.actions import State, Transition
from freevrrpd.core.router import Router
from freevrrpd.core.settings import RouterSettings, VirtualAddress
from tests.support.sim import SimLan

SETTINGS = RouterSettings(vrid=1, interface="eth0", conflict_check=False,
                          addresses=(VirtualAddress(ip_interface("192.0.2.254/24")),))


def test_every_state_has_its_row_and_no_self_loop() -> None:
    assert set(states.ALLOWED) == set(State)
    assert all(state not in targets for state, targets in states.ALLOWED.items())
    # FAULT is left only through Initialize (a fresh Startup) or Shutdown.
    assert states.ALLOWED[State.FAULT] == {State.INITIALIZE, State.STOPPED}


@pytest.mark.parametrize(("old", "new"), [
    (State.BACKUP, State.INITIALIZE), (State.MASTER, State.INITIALIZE),
    (State.FAULT, State.MASTER), (State.FAULT, State.BACKUP), (State.MASTER, State.MASTER),
])
def test_an_edge_outside_the_table_raises(old: State, new: State) -> None:
    with pytest.raises(states.IllegalTransition):
        states.check(old, new)


def test_the_router_checks_every_transition() -> None:
    r = Router(SETTINGS, ip_address("192.0.2.1"), faults={"link eth0 down"})
    r.start(0.0)
    assert r.state is State.FAULT
    r.state = State.MASTER  # a bug elsewhere left a faulted router master
    with pytest.raises(states.IllegalTransition):
        r.set_fault("link eth0 down", False, 1.0)  # would be MASTER -> INIT


def test_a_busy_simulated_lan_only_takes_allowed_edges() -> None:
    lan = SimLan()
    for i, prio in enumerate((200, 150, 100), start=1):
        lan.add(f"r{i}", f"192.0.2.{i}", priority=prio, version=3, advert_int_cs=10)
    lan.start()
    lan.run_for(2)
    lan.fault("r1", "link eth0 down", True)
    lan.run_for(2)
    lan.nodes["r2"].connected = False
    lan.run_for(2)
    lan.fault("r1", "link eth0 down", False)
    lan.nodes["r2"].connected = True
    lan.run_for(2)
    lan.shutdown("r1")
    lan.run_for(2)
    edges: list[Transition] = [t for n in lan.nodes.values() for _at, t in n.transitions]
    assert len(edges) > 8
    assert all(t.new in states.ALLOWED[t.old] for t in edges)
