"""Optional Prometheus endpoint (off by default; ``--metrics ADDR:PORT``), and health.

Beside ``/metrics`` the same port answers what load balancers and Kubernetes
probes ask (keepalived PR 2682 asked for it): ``/health`` is 200 while every
virtual router's thread is alive and keeping its timers (the watchdog's test,
``Supervisor.stuck``), else 503 naming the stuck ones;
``/master/INTERFACE/VRID/FAMILY`` is 200 only while that virtual router is
master, 503 with its state otherwise, 404 for one that is not configured.

A custom collector reads the same status the control socket serves, at scrape
time: nothing is counted twice and the VRID threads do no extra work.  It is
served by ``BoundedServer`` (no thread per connection, a deadline per request,
a cap on connections), so whoever can reach the port cannot starve the
routers' threads.  prometheus-client is imported only when the endpoint is
asked for.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from freevrrpd import __version__
from freevrrpd.core.validate import DROP_REASONS
from freevrrpd.daemon.server import BoundedServer
from freevrrpd.vrid.status import STATES

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from freevrrpd.daemon.supervisor import DaemonStatus

LABELS = ["vrid", "interface", "family"]
MAX_CLIENTS = 16  # scrapers at once; Prometheus needs one
DEADLINE = 5.0  # seconds a client has to send its request


def families(status: DaemonStatus) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

    info = InfoMetricFamily("freevrrpd_build", "The freevrrpd version running")
    info.add_metric([], {"version": __version__})
    state = GaugeMetricFamily("freevrrpd_state", "1 for the state the virtual router is in",
                              labels=[*LABELS, "state"])
    prio = GaugeMetricFamily("freevrrpd_effective_priority",
                             "Priority in adverts (0 when not eligible)", labels=LABELS)
    transitions = CounterMetricFamily("freevrrpd_transitions", "State changes", labels=LABELS)
    sent = CounterMetricFamily("freevrrpd_adverts_sent", "Adverts sent", labels=LABELS)
    received = CounterMetricFamily("freevrrpd_adverts_received", "Adverts accepted",
                                   labels=LABELS)
    drops = CounterMetricFamily("freevrrpd_drops", "Adverts dropped, by reason (every "
                                "reason from 0)", labels=[*LABELS, "reason"])
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
        for reason in DROP_REASONS:
            drops.add_metric([*lv, reason], v["drops"].get(reason, 0))
        conflicts.add_metric(lv, v["conflicts"])
        hooks.add_metric(lv, v["hook_failures"])
    yield from (info, state, prio, transitions, sent, received, drops, conflicts, hooks)
    yield from tracking_families(status)


def tracking_families(status: DaemonStatus) -> Iterator[Metric]:
    """Demotions, tracked items, checks and the peer table."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    demoted = GaugeMetricFamily("freevrrpd_demoted", "1 while demoted by freevrrpctl",
                                labels=LABELS)
    track = GaugeMetricFamily("freevrrpd_track_healthy", "1 while a tracked item is healthy",
                              labels=[*LABELS, "kind", "name"])
    adds = GaugeMetricFamily("freevrrpd_track_weight_applied", "What a tracked item adds to "
                             "the priority now", labels=[*LABELS, "kind", "name"])
    check = GaugeMetricFamily("freevrrpd_check_healthy", "1 while a check is healthy",
                              labels=["check"])
    runs = CounterMetricFamily("freevrrpd_check_runs", "Runs of a check", labels=["check"])
    fails = CounterMetricFamily("freevrrpd_check_failures", "Failed or timed-out runs",
                                labels=["check"])
    peer_labels = [*LABELS, "peer"]
    p_prio = GaugeMetricFamily("freevrrpd_peer_priority", "Priority in a peer's last advert",
                               labels=peer_labels)
    p_seen = GaugeMetricFamily("freevrrpd_peer_last_seen_seconds", "Seconds since a peer "
                               "was last heard", labels=peer_labels)
    p_adv = CounterMetricFamily("freevrrpd_peer_adverts", "Adverts accepted from a peer",
                                labels=peer_labels)
    p_ref = CounterMetricFamily("freevrrpd_peer_refused", "Adverts of a peer refused",
                                labels=peer_labels)
    for v in status["vrids"]:
        lv = [str(v["vrid"]), v["interface"], str(v["family"])]
        demoted.add_metric(lv, 0.0 if v["demoted"] is None else 1.0)
        for t in v["tracks"]:
            track.add_metric([*lv, t["kind"], t["name"]], 1.0 if t["healthy"] else 0.0)
            adds.add_metric([*lv, t["kind"], t["name"]], t["adds"])
        for p in v["peers"]:
            pl = [*lv, p["address"]]
            if p["priority"] is not None:
                p_prio.add_metric(pl, p["priority"])
            p_seen.add_metric(pl, p["last_seen"])
            p_adv.add_metric(pl, p["adverts"])
            p_ref.add_metric(pl, p["refused"])
    for name, c in status["checks"].items():
        check.add_metric([name], 1.0 if c["status"] == "healthy" else 0.0)
        runs.add_metric([name], c["runs"])
        fails.add_metric([name], c["failures"])
    yield from (demoted, track, adds, check, runs, fails, p_prio, p_seen, p_adv, p_ref)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics wants ADDR:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _response(code: str, body: bytes, kind: str = "text/plain; charset=utf-8") -> bytes:
    head = (f"HTTP/1.0 {code}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def health(path: str, status: Callable[[], DaemonStatus],
           stuck: Callable[[], list[str]]) -> tuple[str, bytes] | None:
    """(HTTP status, body) of a health path, None if ``path`` is none."""
    if path == "/health":
        bad = stuck()
        if bad:
            return "503 Service Unavailable", ("stuck: " + ", ".join(bad) + "\n").encode()
        return "200 OK", b"ok\n"
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "master":
        return None
    _, interface, vrid, family = parts
    for v in status()["vrids"]:
        if (v["interface"], str(v["vrid"]), str(v["family"])) == (interface, vrid, family):
            code = "200 OK" if v["state"] == "MASTER" else "503 Service Unavailable"
            return code, f"{v['state']}\n".encode()
    return "404 Not Found", b"no such virtual router\n"


def serve(listen: str, status: Callable[[], DaemonStatus],
          stuck: Callable[[], list[str]] = list) -> BoundedServer:
    """Start the endpoint; GET /metrics answers with the current status, /health and
    /master/... as ``health`` says."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    class Collector:
        def collect(self) -> Iterator[Any]:
            return families(status())

    registry = CollectorRegistry()
    registry.register(Collector())  # type: ignore[arg-type]

    def answer(request: bytes, _conn: socket.socket) -> bytes:
        line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(line) < 2 or line[0] not in ("GET", "HEAD"):
            return _response("405 Method Not Allowed", b"GET /metrics\n")
        path = line[1].split("?", 1)[0]
        checked = health(path, status, stuck)
        if checked is not None:
            return _response(checked[0], b"" if line[0] == "HEAD" else checked[1])
        if path not in ("/metrics", "/"):
            return _response("404 Not Found", b"GET /metrics, /health or "
                             b"/master/INTERFACE/VRID/FAMILY\n")
        body = generate_latest(registry)
        return _response("200 OK", b"" if line[0] == "HEAD" else body, CONTENT_TYPE_LATEST)

    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    server = BoundedServer("metrics", sock, lambda buf: b"\r\n\r\n" in buf or b"\n\n" in buf,
                           answer, deadline=DEADLINE, max_clients=MAX_CLIENTS, workers=1)
    server.start()
    return server
