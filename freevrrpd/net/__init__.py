"""Linux adapters, no policy: frames, BPF, packet sockets, netlink, sysctls, probes."""
