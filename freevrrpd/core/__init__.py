"""The protocol core: settings, packet codec and the RFC state machine.

Nothing in this package performs I/O or reads a clock: no socket, select,
threading, time, subprocess, os, asyncio or pyroute2 (a unit test enforces
it).  Callers pass the current time in and receive lists of actions back
(see ``actions.py``).  Besides the state machine (``router``, with its
transition table in ``states``) it holds the pure policies around it: the
probe-before-claim hold (``probing``), announcement bursts (``announce``), the
link hold-down of monitored circuits (``linkhold``) and the reload diff
(``changes``).
"""
