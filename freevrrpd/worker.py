"""One thread per virtual router: the only place its core meets the world.

The thread waits on its capture socket, its claim watcher and a wake-up pipe
until the core's next deadline (``time.monotonic``: an NTP step never fires
a timer), feeds the core, and carries out the actions it returns.  An error
while acting is logged, counted and retried on the next event; it never ends
the thread or touches the other virtual routers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from freevrrpd.core.actions import (
    Action,
    Announce,
    ClaimAddresses,
    ReleaseAddresses,
    Report,
    RunHook,
    SendAdvert,
    State,
    Transition,
)
from freevrrpd.core.router import Router
from freevrrpd.core.settings import RouterSettings
from freevrrpd.effects import Effects
from freevrrpd.guard import ConflictGuard
from freevrrpd.hooks import HookResult, HookRunner, hook_env
from freevrrpd.net.capture import vrrp_socket
from freevrrpd.net.family import address_family
from freevrrpd.net.frames import mac_str, parse_ip_frame
from freevrrpd.net.netlink import Netlink
from freevrrpd.status import snapshot

RETRY = 1.0  # seconds before an action that failed is retried
T = TypeVar("T")
FD_SETSIZE = 1024  # select() cannot watch descriptors at or above this
# Longer waits end early by 1/500 of their length, then sleep the rest.
SLACK_SPLIT = 0.2  # seconds


def _wait_readable(fds: list[int], timeout: float | None) -> list[int]:
    """The descriptors of ``fds`` that became readable within ``timeout`` seconds.

    A timer must not fire late: Linux lets a select()/poll() timeout run over
    by 0.1 % of its length (the kernel's select_estimate_accuracy), a whole
    millisecond on a 1 s advert interval.  Such a wait ends a little early and
    a plain sleep, late by only the 50 us timer slack, covers the rest.
    select() cannot take descriptors past FD_SETSIZE, which a daemon with more
    than a hundred or so VRIDs has; poll() can but counts whole milliseconds,
    so the sleep covers the fraction too.  A frame that arrived during the
    sleep is reported, so it is handled before the timer.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    if timeout is not None and timeout > SLACK_SPLIT:
        timeout -= timeout / 500
    poller: select.poll | None = None
    if max(fds) < FD_SETSIZE:
        ready: list[int] = select.select(fds, [], [], timeout)[0]
    else:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        ready = [fd for fd, _ in poller.poll(None if timeout is None else int(timeout * 1000))]
    rest = 0.0 if deadline is None else deadline - time.monotonic()
    if ready or rest <= 0:
        return ready
    time.sleep(rest)
    if poller is not None:
        return [fd for fd, _ in poller.poll(0)]
    return select.select(fds, [], [], 0)[0]


@dataclass(frozen=True)
class Command:
    name: str  # "fault" | "stop" | "dump" | "call"
    args: tuple[Any, ...] = ()


class VridWorker(threading.Thread):
    def __init__(self, settings: RouterSettings, netlink: Netlink, log: logging.Logger,
                 on_state: Callable[[VridWorker, State], None] | None = None) -> None:
        super().__init__(name=f"vrid-{settings.vrid}-{settings.interface}-v{settings.family}",
                         daemon=True)
        self.settings = settings
        self.netlink = netlink
        self.log = log
        self.on_state = on_state
        self.router = Router(settings)
        self.errors: Counter[str] = Counter()
        self.conflicts = 0
        self.peer_macs: set[bytes] = set()
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._pipe_lock = threading.Lock()
        self._pipe_closed = False
        self.sock = vrrp_socket(settings.interface, settings.vrid, address_family(settings.family))
        self.effects = Effects(settings, netlink, self.sock, log)
        self.hooks = HookRunner(settings.name, settings.hook_timeout, log, self._hook_done)
        self.guard = ConflictGuard(self)
        self.stopped = threading.Event()
        self._retry_at: float | None = None
        self._pending_claim: bool | None = None  # True claim / False release still to do

    # ---- called from other threads ----------------------------------------------------
    def post(self, name: str, *args: Any) -> None:
        self.commands.put(Command(name, args))
        with self._pipe_lock:
            if self._pipe_closed:  # a late post from the guard or the monitor
                return
            # A full pipe already means "wake up": dropping this byte loses nothing.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _close_pipe(self) -> None:
        # Under the lock: a descriptor number closed here may be reused at once,
        # and a late post() must never write into someone else's socket.
        with self._pipe_lock:
            self._pipe_closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)

    def stop(self) -> None:
        self.post("stop")

    def call(self, fn: Callable[[float], T], timeout: float = 2.0) -> T | None:
        """Run ``fn(now)`` on the worker's thread and return its result (None on timeout)."""
        done = threading.Event()
        box: list[T] = []

        def run(now: float) -> None:
            try:
                box.append(fn(now))
            finally:
                done.set()

        self.post("call", run)
        if not done.wait(timeout) or not box:
            return None
        return box[0]

    # ---- reload (on the worker's thread) ----------------------------------------------------
    def apply_settings(self, new: RouterSettings, now: float) -> list[str]:
        """Take a reloaded configuration with the fewest disruptions; say what changed."""
        old = self.settings
        changes = [f.name for f in fields(RouterSettings)
                   if f.compare and getattr(old, f.name) != getattr(new, f.name)]
        if not changes:
            return []
        master = self.router.state is State.MASTER
        removed = [a for a in old.addresses if a not in new.addresses]
        added = [a for a in new.addresses if a not in old.addresses]
        if master and removed:
            self._do_safely("release", lambda: self.effects.release(removed), now)
        self.settings = new
        self.effects.update_settings(new)
        self.hooks.timeout = new.hook_timeout if new.hook_timeout > 0 else None
        if self.guard.watcher is not None:
            self.guard.watcher.ips = frozenset(new.ips)
        actions = self.router.update_settings(new, now)
        if master and added:
            self._do_safely("claim", lambda: self.effects.claim(added), now)
            self._do_safely("announce", lambda: self.effects.announce(added), now)
        self._do(actions, now)
        return changes

    def _do_safely(self, what: str, fn: Callable[[], object], now: float) -> None:
        try:
            fn()
        except Exception as exc:
            self.errors[what] += 1
            self.log.error("%s: %s failed during reload: %s", self.settings.name, what, exc)

    # ---- the thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception:  # pragma: no cover - last resort, keeps the process alive
            self.log.exception("%s: worker crashed", self.settings.name)
        finally:
            self.stopped.set()

    def _run(self) -> None:
        now = time.monotonic()
        self.router.primary_ip = self.effects.refresh_source()
        if self.router.primary_ip is None:
            self._do(self.router.set_fault(self._no_source_reason(), True, now), now)
        self._do(self.router.start(now), now)
        self.guard.start()
        running = True
        while running:
            now = time.monotonic()
            deadlines = [d for d in (self._timer_deadline(), self._retry_at) if d is not None]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            fds = [self.sock.fileno(), self._wake_r]
            watcher = self.guard.watcher
            if watcher is not None:
                fds.append(watcher.fileno())
            ready = _wait_readable(fds, timeout)
            now = time.monotonic()
            if self.sock.fileno() in ready:
                self._receive(now)
            if watcher is not None and watcher.fileno() in ready:
                self.guard.check_claims(watcher)
            if self._wake_r in ready:
                running = self._commands(now)
                if not running:
                    break
            if self._retry_at is not None and now >= self._retry_at:
                self._retry(now)
            deadline = self._timer_deadline()
            if deadline is not None and now >= deadline:
                self._do(self.router.handle_timer(now), now)
        self._shutdown()

    def _timer_deadline(self) -> float | None:
        # Probe before claiming (RFC 5227 2.1.1, RFC 4862 5.4): a backup's timers
        # (Master_Down, preemption) wait for the guard's probe after entering
        # Backup, which short advert intervals would otherwise outrun.
        if self.guard.probe_pending and self.router.state is State.BACKUP:
            return None
        return self.router.next_deadline()

    def _receive(self, now: float) -> None:
        for frame in self.sock.recv_all():
            rx = parse_ip_frame(frame)
            if rx is None or rx.proto != 112:
                self.router.drops["malformed"] += 1
                continue
            before = self.router.validated
            actions = self.router.receive(rx.payload, rx.src_ip, rx.dst_ip, rx.ttl, now)
            if self.router.validated > before:
                # Routers of this VRID answer ARP for the VIPs: never a conflict.
                self.peer_macs.add(rx.src_mac)
            self._do(actions, now)

    def _commands(self, now: float) -> bool:
        while True:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return True
            if cmd.name == "stop":
                return False
            if cmd.name == "fault":
                reason, active = cmd.args
                self._do(self.router.set_fault(reason, active, now), now)
            elif cmd.name == "dump":
                self.log.info("%s", self.describe())
            elif cmd.name == "call":
                cmd.args[0](now)

    def close_unstarted(self) -> None:
        """Free the sockets of a worker whose thread never ran."""
        self.effects.close()
        self.sock.close()
        self._close_pipe()
        self.stopped.set()

    def _shutdown(self) -> None:
        now = time.monotonic()
        # Resign first (RFC 5798 6.4.3: priority 0 lets a backup take over after
        # Skew_Time); a probe still listening must not delay that.
        self._do(self.router.shutdown(now), now)
        # A probe under way is abandoned, not awaited: its thread only reads.
        self.guard.stop(wait=0.0)
        if self._pending_claim is False:
            self._retry(now)
        self.hooks.close()
        self.effects.close()
        self.sock.close()
        self._close_pipe()

    # ---- acting -----------------------------------------------------------------------
    def _do(self, actions: list[Action], now: float) -> None:
        for action in actions:
            try:
                self._act(action, now)
            except Exception as exc:
                kind = type(action).__name__
                self.errors[kind] += 1
                self.log.error("%s: %s failed: %s (retrying in %.0f s)",
                               self.settings.name, kind, exc, RETRY)
                if isinstance(action, ClaimAddresses | ReleaseAddresses):
                    self._pending_claim = isinstance(action, ClaimAddresses)
                    self._retry_at = now + RETRY

    def _act(self, action: Action, now: float) -> None:
        s = self.settings
        if isinstance(action, SendAdvert):
            self.effects.send_advert(self.router, action.priority)
        elif isinstance(action, ClaimAddresses):
            self._pending_claim = None
            self.effects.claim()
            self.guard.master_started()
        elif isinstance(action, ReleaseAddresses):
            self._pending_claim = None
            self.guard.master_stopped()
            self.effects.release()
        elif isinstance(action, Announce):
            n = self.effects.announce()
            self.log.debug("%s: announced %d address(es): %s", s.name, n, action.reason)
        elif isinstance(action, Transition):
            peer = "" if action.peer_priority is None else f", peer priority {action.peer_priority}"
            self.log.info("%s: %s -> %s: %s (priority %d%s)", s.name, action.old.value,
                          action.new.value, action.reason, action.priority, peer)
            if action.new is State.BACKUP and action.old is State.INITIALIZE:
                self.guard.entered_backup()
            if self.on_state is not None:
                self.on_state(self, action.new)
        elif isinstance(action, RunHook):
            self._run_hook(action)
        elif isinstance(action, Report):
            level = {"info": logging.INFO, "warning": logging.WARNING}.get(action.level,
                                                                           logging.ERROR)
            self.log.log(level, "%s", action.message)

    def _run_hook(self, action: RunHook) -> None:
        s = self.settings
        command = {State.MASTER: s.masterscript, State.BACKUP: s.backupscript,
                   State.FAULT: s.faultscript, State.STOPPED: s.stopscript}.get(action.new)
        if not command:
            return
        env = hook_env(s.vrid, s.interface, s.family, action.new.value, action.old.value,
                       action.priority, [a.interface.with_prefixlen for a in s.addresses])
        self.hooks.submit(action.new.name.lower(), command, env)

    def _hook_done(self, result: HookResult) -> None:
        if not result.ok:
            self.errors["hook"] += 1

    def _retry(self, now: float) -> None:
        self._retry_at = None
        pending, self._pending_claim = self._pending_claim, None
        if pending is True and self.router.state is State.MASTER:
            self._do([ClaimAddresses()], now)
        elif pending is False:
            self._do([ReleaseAddresses()], now)
        if self.router.primary_ip is None:
            self._refresh_source(now)

    def _refresh_source(self, now: float) -> None:
        ip = self.effects.refresh_source()
        self.router.primary_ip = ip
        self._do(self.router.set_fault(self._no_source_reason(), ip is None, now), now)
        if ip is None:
            self._retry_at = now + RETRY

    def _no_source_reason(self) -> str:
        kind = "IPv4 address" if self.settings.family == 4 else "IPv6 link-local address"
        return f"no {kind} on {self.settings.interface}"

    # ---- status ---------------------------------------------------------------------
    def describe(self) -> str:
        """One log line with the same facts as ``freevrrpctl status`` (SIGUSR1)."""
        v = snapshot(self)
        drops = ", ".join(f"{k} {n}" for k, n in v["drops"].items()) or "none"
        last = v["last_transition"]
        why = f"{last['from']}->{last['to']} ({last['reason']})" if last else "none"
        hook = v["last_hook"]
        hook_text = (f"{hook['kind']} rc={hook['returncode']} {hook['duration']}s"
                     if hook else "none")
        return (f"{self.settings.name}: state {v['state']}, priority {v['priority']} "
                f"(effective {v['effective_priority']}), master {v['master'] or 'unknown'}, "
                f"faults [{', '.join(v['faults'])}], sent {v['adverts_sent']}, "
                f"received {v['adverts_received']}, drops {drops}, conflicts {v['conflicts']}, "
                f"errors {sum(v['errors'].values())}, "
                f"peer MACs [{', '.join(mac_str(m) for m in sorted(self.peer_macs))}], "
                f"last transition {why}, last hook {hook_text}")
