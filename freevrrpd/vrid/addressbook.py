"""What this daemon added to the host, kept in a file across a crash.

A master adds its virtual addresses (and a virtual-MAC interface); a kill -9
leaves them behind, and the next start removes them before claiming anything.
Only what a run of freevrrpd recorded here is removed: never an address the
host had of its own (the address owner's, RFC 5798 3, or one an operator
configured), whatever it looks like.  The file is an append-only log of
``+ device address`` / ``- device address`` lines, rewritten short at start;
it lives next to the pid file, so each instance (``-p``) has its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable

Entry = tuple[str, str]  # (device, "ip/prefix")

log = logging.getLogger("freevrrpd")


class AddressBook:
    def __init__(self, path: str | None, read_only: bool = False) -> None:
        """``read_only``: only look (``freevrrpd -t``); never write the file."""
        self.path = path
        self._lock = threading.Lock()
        self._warned = False
        # What an earlier run added and did not remove: leftovers to clean up.
        self.left: frozenset[Entry] = frozenset(self._replay())
        self._ours: set[Entry] = set(self.left)
        if read_only:
            self.path = None
        else:
            self._rewrite()

    def ours(self, device: str, address: str) -> bool:
        with self._lock:
            return (device, address) in self._ours

    def added(self, device: str, address: str) -> None:
        self._record("+", [(device, address)])

    def removed(self, entries: Iterable[Entry]) -> None:
        self._record("-", list(entries))

    # ---- the file ----------------------------------------------------------------------
    def _replay(self) -> set[Entry]:
        found: set[Entry] = set()
        if self.path is None:
            return found
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    sign, _, rest = line.strip().partition(" ")
                    device, _, address = rest.partition(" ")
                    if sign == "+" and address:
                        found.add((device, address))
                    elif sign == "-":
                        found.discard((device, address))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read %s (what an earlier run added): %s", self.path, exc)
        return found

    def _rewrite(self) -> None:
        if self.path is None:
            return
        tmp = f"{self.path}.new"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(f"+ {device} {address}\n" for device, address in sorted(self._ours))
            os.replace(tmp, self.path)
        except OSError as exc:
            self._warn(exc)

    def _record(self, sign: str, entries: list[Entry]) -> None:
        with self._lock:
            for entry in entries:
                (self._ours.add if sign == "+" else self._ours.discard)(entry)
            if self.path is None or not entries:
                return
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.writelines(f"{sign} {device} {address}\n" for device, address in entries)
            except OSError as exc:
                self._warn(exc)

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("cannot record the addresses freevrrpd adds in %s: %s; after a "
                        "crash they will not be removed at the next start", self.path, exc)

    def close(self) -> None:
        """Nothing of ours is left (a clean stop): the file goes."""
        with self._lock:
            if self.path is not None and not self._ours:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)


def book_path(pidfile: str) -> str:
    """Where the book of the instance with this pid file lives (beside it)."""
    return (pidfile[:-4] if pidfile.endswith(".pid") else pidfile) + ".addresses"
