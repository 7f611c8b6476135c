"""What a virtual router tells: its log lines and its events, from one place.

Each transition, priority change and report of the core is one log line that
says why, and the same fact as one event of the ordered stream
(``vrid.events``); hook results too.
"""

from __future__ import annotations

import logging

from freevrrpd.core.actions import PriorityChange, Report, State, Transition
from freevrrpd.vrid.events import EventBus
from freevrrpd.vrid.hooks import HookResult

LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class Journal:
    def __init__(self, name: str, log: logging.Logger, events: EventBus | None = None) -> None:
        self.name = name
        self.log = log
        self.events = events

    def _publish(self, kind: str, message: str, **data: object) -> None:
        if self.events is not None:
            self.events.publish(kind, self.name, message, **data)

    def record(self, action: Transition | PriorityChange | Report) -> None:
        if isinstance(action, Transition):
            peer = "" if action.peer_priority is None else f", peer priority {action.peer_priority}"
            text = (f"{action.old.value} -> {action.new.value}: {action.reason} "
                    f"(priority {action.priority}{peer})")
            # Not eligible is a warning: the router cannot do its job.
            level = logging.WARNING if action.new is State.FAULT else logging.INFO
            self.log.log(level, "%s: %s", self.name, text)
            self._publish("transition", text, old=action.old.value, new=action.new.value,
                          reason=action.reason, priority=action.priority)
        elif isinstance(action, PriorityChange):
            text = f"priority {action.old} -> {action.new}: {action.reason}"
            self.log.info("%s: %s", self.name, text)
            self._publish("priority", text, old=action.old, new=action.new,
                          reason=action.reason)
        else:
            self.log.log(LOG_LEVELS[action.level], "%s", action.message)
            self._publish(action.topic, action.message, level=action.level)

    def hook(self, result: HookResult) -> None:
        self._publish("hook", f"{result.kind}script {result.outcome} after {result.duration:.2f} s",
                      script=result.kind, returncode=result.returncode,
                      duration=round(result.duration, 3), timed_out=result.timed_out)
