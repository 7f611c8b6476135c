"""``python -m tests.support.frozen_master FREEZE_FILE DAEMON_ARGS...``: the real
daemon (``freevrrpd.cli.main``), with one thing added for the lease test:
once FREEZE_FILE exists, every router's thread is kept busy on purpose (a call
posted to it that does not return for a minute), as a thread stuck in a
system call would be.  The shared transmitter must then stop its adverts
within the lease (``freevrrpd.vrid.transmitter``)."""

from __future__ import annotations

import os
import sys
import threading
import time

from freevrrpd.cli import main
from freevrrpd.vrid.commands import Call
from freevrrpd.vrid.worker import VridWorker

STUCK_FOR = 60.0


def _freeze_when_asked(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.01)
    for thread in threading.enumerate():
        if isinstance(thread, VridWorker):
            thread.post(Call(lambda _now: time.sleep(STUCK_FOR)))
    print("frozen: every router thread is busy", file=sys.stderr, flush=True)


if __name__ == "__main__":
    threading.Thread(target=_freeze_when_asked, args=(sys.argv[1],), daemon=True).start()
    sys.exit(main(sys.argv[2:]))
