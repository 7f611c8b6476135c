"""The daemon process: the set of virtual routers (``supervisor``), link events
(``links``), the pid file, the control socket, metrics, logging, and the main
loop with its signals (``main``)."""
