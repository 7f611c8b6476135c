"""``freevrrpctl``: ask a running freevrrpd for its state, make it reload, demote or
promote a virtual router, or follow its events."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from freevrrpd import __version__
from freevrrpd.cli import DEFAULT_SOCKET, quiet_pipe
from freevrrpd.daemon.control import request

COLUMNS = ["VRID", "IF", "FAM", "STATE", "PRIO", "EFF", "MASTER", "VIPS", "SENT", "RECV",
           "DROPS", "CONFL", "LAST TRANSITION", "LAST HOOK"]


def _ago(when: float | None) -> str:
    if when is None:
        return "-"
    secs = max(0.0, time.time() - when)
    if secs < 120:
        return f"{secs:.0f}s ago"
    if secs < 7200:
        return f"{secs / 60:.0f}m ago"
    return f"{secs / 3600:.1f}h ago"


def _unicast(status: dict[str, Any]) -> bool:
    return any(v.get("transport") == "unicast" for v in status["vrids"])


def columns(status: dict[str, Any]) -> list[str]:
    """With unicast routers, a PEERS column after VIPS ("multicast" for the others)."""
    if not _unicast(status):
        return COLUMNS
    at = COLUMNS.index("VIPS") + 1
    return [*COLUMNS[:at], "PEERS", *COLUMNS[at:]]


def rows(status: dict[str, Any]) -> list[list[str]]:
    out = []
    unicast = _unicast(status)
    for v in status["vrids"]:
        last = v["last_transition"]
        hook = v["last_hook"]
        drops = ",".join(f"{k}={n}" for k, n in v["drops"].items()) or "0"
        out.append([
            str(v["vrid"]), v["interface"], f"v{v['version']}/IPv{v['family']}", v["state"],
            str(v["priority"]), str(v["effective_priority"]), v["master"] or "-",
            ",".join(v["addresses"]), str(v["adverts_sent"]), str(v["adverts_received"]),
            drops, str(v["conflicts"]),
            "-" if last is None else
            f"{last['from']}->{last['to']} {_ago(last['time'])}: {last['reason']}",
            "-" if hook is None else
            f"{hook['kind']} rc={hook['returncode']}{' TIMEOUT' if hook['timed_out'] else ''}",
        ])
        if unicast:
            peers = ",".join(v.get("unicast_peers") or []) or "multicast"
            out[-1].insert(COLUMNS.index("VIPS") + 1, peers)
    return out


def table(status: dict[str, Any]) -> str:
    head_row = columns(status)
    data = [head_row, *rows(status)]
    widths = [max(len(r[i]) for r in data) for i in range(len(head_row))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in data]
    head = (f"freevrrpd {status['version']} pid {status['pid']}, config {status['config']}, "
            f"{len(status['vrids'])} virtual router(s), {status['reloads']} reload(s)")
    return "\n".join([head, *lines])


PEER_COLUMNS = ["VRID", "IF", "FAM", "PEER", "MAC", "PRIO", "INTERVAL", "LAST SEEN", "ADVERTS",
                "REFUSED", "LAST DROP"]


def peer_table(status: dict[str, Any]) -> str:
    """``status --peers``: every router heard, per virtual router."""
    data = [PEER_COLUMNS]
    for v in status["vrids"]:
        for p in v.get("peers", []):
            interval = "-" if p["advert_interval"] is None else f"{p['advert_interval']:g}s"
            data.append([str(v["vrid"]), v["interface"], f"IPv{v['family']}", p["address"],
                         p["mac"] or "-", "-" if p["priority"] is None else str(p["priority"]),
                         interval, f"{p['last_seen']:.1f}s ago", str(p["adverts"]),
                         str(p["refused"]), p["last_drop"] or "-"])
    widths = [max(len(r[i]) for r in data) for i in range(len(PEER_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in data)


def event_line(e: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
    millis = int((e["time"] % 1) * 1000)
    who = f"{e['router']}: " if e.get("router") else ""
    return f"{stamp}.{millis:03d} #{e['seq']} {e['kind']}: {who}{e['message']}"


def follow(path: str, since: int | None, as_json: bool) -> int:
    """``events``: print the daemon's events as they happen, until it stops."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(f"events {'' if since is None else since}".strip().encode() + b"\n")
        with sock.makefile("rb") as stream:
            first = json.loads(stream.readline() or b"{}")
            if not first.get("ok"):
                print(f"freevrrpctl: {first.get('error', 'no event stream')}", file=sys.stderr)
                return 1
            for line in stream:
                event = json.loads(line)
                print(line.decode().rstrip() if as_json else event_line(event), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return quiet_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="freevrrpctl", description="Control a running freevrrpd.")
    p.add_argument("-s", dest="socket", default=DEFAULT_SOCKET, metavar="SOCKET",
                   help=f"the daemon's control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--version", action="version", version=f"freevrrpctl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="state of every virtual router")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.add_argument("--peers", action="store_true",
                    help="every router heard on each virtual router's LAN")
    sub.add_parser("reload", help="re-read the configuration (as SIGHUP)")
    router_help = "VRID, VRID/IF, VRID/IF/FAMILY or all"
    de = sub.add_parser("demote", help="lower a router's priority, or make it not eligible, "
                        "until promote or a restart")
    de.add_argument("router", help=router_help)
    de.add_argument("--by", type=int, metavar="N",
                    help="lower the priority by N (default: not eligible, FAULT)")
    pr = sub.add_parser("promote", help="undo demote")
    pr.add_argument("router", help=router_help)
    ev = sub.add_parser("events", help="follow transitions, priority changes, conflicts, "
                        "hook results, checks and reloads as they happen")
    ev.add_argument("--json", action="store_true", help="one JSON document per line")
    ev.add_argument("--since", type=int, metavar="SEQ",
                    help="first the kept events numbered after SEQ (resume without loss)")
    opts = p.parse_args(argv)
    command = opts.command
    if command == "demote":
        command = f"demote {opts.router}" + ("" if opts.by is None else f" by {opts.by}")
    elif command == "promote":
        command = f"promote {opts.router}"
    try:
        if opts.command == "events":
            try:
                return follow(opts.socket, opts.since, opts.json)
            except KeyboardInterrupt:  # Ctrl-C ends following: no traceback
                return 0
        # A reload waits for removed routers to resign and their stop scripts.
        answer = request(opts.socket, command, timeout=120.0 if opts.command == "reload"
                         else 10.0)
    except FileNotFoundError:
        print(f"freevrrpctl: {opts.socket} does not exist: is freevrrpd running "
              "(with -s pointing there)?", file=sys.stderr)
        return 3
    except ConnectionRefusedError:
        print(f"freevrrpctl: nobody listens on {opts.socket}: freevrrpd is not running",
              file=sys.stderr)
        return 3
    except PermissionError:
        print(f"freevrrpctl: permission denied on {opts.socket} (run as root)", file=sys.stderr)
        return 3
    except (OSError, ValueError) as exc:
        print(f"freevrrpctl: cannot talk to freevrrpd on {opts.socket}: {exc}", file=sys.stderr)
        return 3
    if opts.command == "status":
        print(json.dumps(answer, indent=2) if opts.json else
              peer_table(answer) if opts.peers else table(answer))
        return 0
    if opts.command in ("demote", "promote"):
        if not answer.get("ok"):
            print(f"freevrrpctl: {answer.get('error') or 'not every router answered'}",
                  file=sys.stderr)
            return 1
        print(f"{opts.command}d: {'; '.join(answer['routers'])}")
        return 0
    if not answer.get("ok"):
        print("freevrrpctl: reload refused; the daemon keeps the old configuration:",
              file=sys.stderr)
        for err in answer.get("errors", []):
            print(f"  {err}", file=sys.stderr)
        return 1
    parts = [f"{len(answer[k])} {k}" for k in ("added", "removed", "restarted", "changed")]
    print(f"reloaded: {', '.join(parts)}, {answer['unchanged']} unchanged")
    for name, fields in answer["changed"].items():
        print(f"  {name}: {', '.join(fields)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
