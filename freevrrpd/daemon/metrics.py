"""Optional Prometheus endpoint (off by default; ``--metrics ADDR:PORT``).

A custom collector reads the same status the control socket serves, at scrape
time: nothing is counted twice and the VRID threads do no extra work.
prometheus-client is imported only when the endpoint is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from freevrrpd.vrid.status import STATES

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from freevrrpd.daemon.supervisor import DaemonStatus

LABELS = ["vrid", "interface", "family"]


def families(status: DaemonStatus) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    state = GaugeMetricFamily("freevrrpd_state", "1 for the state the virtual router is in",
                              labels=[*LABELS, "state"])
    prio = GaugeMetricFamily("freevrrpd_effective_priority",
                             "Priority in adverts (0 when not eligible)", labels=LABELS)
    transitions = CounterMetricFamily("freevrrpd_transitions", "State changes", labels=LABELS)
    sent = CounterMetricFamily("freevrrpd_adverts_sent", "Adverts sent", labels=LABELS)
    received = CounterMetricFamily("freevrrpd_adverts_received", "Adverts accepted",
                                   labels=LABELS)
    drops = CounterMetricFamily("freevrrpd_drops", "Adverts dropped, by reason",
                                labels=[*LABELS, "reason"])
    conflicts = CounterMetricFamily("freevrrpd_conflicts", "Address conflicts seen",
                                    labels=LABELS)
    hooks = CounterMetricFamily("freevrrpd_hook_failures",
                                "Transition scripts that failed or timed out", labels=LABELS)
    for v in status["vrids"]:
        lv = [str(v["vrid"]), v["interface"], str(v["family"])]
        for name in STATES:
            state.add_metric([*lv, name], 1.0 if v["state"] == name else 0.0)
        prio.add_metric(lv, v["effective_priority"])
        transitions.add_metric(lv, v["transitions"])
        sent.add_metric(lv, v["adverts_sent"])
        received.add_metric(lv, v["adverts_received"])
        for reason, n in v["drops"].items():
            drops.add_metric([*lv, reason], n)
        conflicts.add_metric(lv, v["conflicts"])
        hooks.add_metric(lv, v["hook_failures"])
    yield from (state, prio, transitions, sent, received, drops, conflicts, hooks)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics wants ADDR:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(listen: str, status: Callable[[], DaemonStatus]) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    class Collector:
        def collect(self) -> Iterator[Any]:
            return families(status())

    host, port = parse_listen(listen)
    registry = CollectorRegistry()
    registry.register(Collector())  # type: ignore[arg-type]
    start_http_server(port, addr=host, registry=registry)
