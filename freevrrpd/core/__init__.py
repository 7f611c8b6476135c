"""The protocol core: settings, packet codec and the RFC state machine.

Nothing in this package performs I/O or reads a clock: no socket, threading,
time, subprocess, select or pyroute2.  Callers pass the current time in and
receive lists of actions back (see ``actions.py``).
"""
