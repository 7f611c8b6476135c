"""The kernel's name of a thread (``top -H``, ``ps -L``, ``/proc/PID/task``).

Each virtual router runs on a thread of its own; giving the OS thread the
Python thread's name lets an operator see which router uses the CPU.  Written
through /proc rather than prctl(PR_SET_NAME), which would need ctypes.
"""

from __future__ import annotations

import contextlib
import threading

COMM_MAX = 15  # TASK_COMM_LEN - 1


def name_os_thread() -> None:
    """Call first thing on the thread to be named; a failure changes nothing."""
    name = threading.current_thread().name[:COMM_MAX]
    with (contextlib.suppress(OSError),
          open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f):
        f.write(name)
