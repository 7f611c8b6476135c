"""Network-namespace lab for the demo, the integration tests and the benchmarks.

Harness, not product: it lives beside the package and is not installed with it.

Real kernel, no mocks: a switch is a bridge in its own namespace, a host is a
namespace with ``eth0`` plugged into it. Only documentation address ranges
are accepted (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

    with Lab() as lab:
        lan = lab.add_switch()
        r1 = lab.add_host("r1", lan, "192.0.2.1/24", "2001:db8::1/64")
        client = lab.add_host("client", lan, "192.0.2.100/24")
        assert client.ping("192.0.2.1")
"""

from .adverts import SeenAdvert, adverts
from .capture import Capture, Pinger, PingReport
from .daemon import Daemon
from .hosts import Host, Switch
from .netns import ALLOWED_NETWORKS, CommandError, LabError, Namespace
from .pcap import PcapTail, read_pcap
from .topology import Lab

__all__ = [
    "ALLOWED_NETWORKS",
    "Capture",
    "CommandError",
    "Daemon",
    "Host",
    "Lab",
    "LabError",
    "Namespace",
    "PcapTail",
    "PingReport",
    "Pinger",
    "SeenAdvert",
    "Switch",
    "adverts",
    "read_pcap",
]
