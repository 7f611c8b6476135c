"""``freevrrpctl``: ask a running freevrrpd for its state, or make it reload."""

from __future__ import annotations

import argparse
import json
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
    sub.add_parser("reload", help="re-read the configuration (as SIGHUP)")
    opts = p.parse_args(argv)
    try:
        # A reload waits for removed routers to resign and their stop scripts.
        answer = request(opts.socket, opts.command, timeout=120.0 if opts.command == "reload"
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
        print(json.dumps(answer, indent=2) if opts.json else table(answer))
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
