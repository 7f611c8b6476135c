"""Linux adapters around the core: capture, sending, netlink, announcements, probes."""
