"""The ordered event stream: transitions, priority changes, conflicts, hook results,
checks and reloads, numbered in the order they happened.

The reliable alternative to keepalived's notify FIFO (keepalived issues 996,
1055): every event gets the next sequence number under one lock and is
appended, in that order, to every subscriber's queue and to a ring of the last
``KEEP``; a client that reconnects asks for the events after the last number it
saw and misses nothing the ring still holds (it is told when it did miss some).
Publishing never blocks a router's thread: a subscriber that falls
``MAX_BEHIND`` events behind is cut off with a last event saying so.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

Event = dict[str, Any]
KEEP = 1000  # events kept for clients that reconnect
MAX_BEHIND = 10000  # events queued for one slow client before it is cut off


class Subscription:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.queue: collections.deque[Event] = collections.deque()
        self.ready = threading.Condition(bus.lock)
        self.closed = False

    def get(self, timeout: float) -> list[Event]:
        """The events queued so far (waiting up to ``timeout`` for one)."""
        with self.ready:
            if not self.queue and not self.closed:
                self.ready.wait(timeout)
            out = list(self.queue)
            self.queue.clear()
            return out

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = 0
        self.ring: collections.deque[Event] = collections.deque(maxlen=KEEP)
        self.subscribers: list[Subscription] = []

    def publish(self, kind: str, router: str | None, message: str, **data: Any) -> None:
        with self.lock:
            self.seq += 1
            event: Event = {"seq": self.seq, "time": round(time.time(), 6), "kind": kind,
                            "router": router, "message": message, **data}
            self.ring.append(event)
            for sub in list(self.subscribers):
                if len(sub.queue) >= MAX_BEHIND:
                    sub.queue.append({"seq": self.seq, "time": event["time"], "kind": "lost",
                                      "router": None, "message": "this client fell "
                                      f"{MAX_BEHIND} events behind: cut off"})
                    self._drop(sub)
                    continue
                sub.queue.append(event)
                sub.ready.notify()

    def subscribe(self, since: int | None = None) -> Subscription:
        """A new subscriber; ``since``: first the kept events numbered after it."""
        sub = Subscription(self)
        with self.lock:
            if since is not None:
                kept = [e for e in self.ring if e["seq"] > since]
                first = kept[0]["seq"] if kept else self.seq + 1
                if first > since + 1:
                    sub.queue.append({"seq": since, "time": round(time.time(), 6),
                                      "kind": "lost", "router": None,
                                      "message": f"events {since + 1}..{first - 1} are no "
                                      "longer kept"})
                sub.queue.extend(kept)
            self.subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        sub.closed = True
        sub.ready.notify_all()

    def close(self) -> None:
        with self.lock:
            for sub in list(self.subscribers):
                self._drop(sub)
