"""What wakes a unicast backup's thread on a busy LAN, with and without the unicast
part of its kernel filter (issue 10).

A LAN where other routers of the same VRID talk unicast among themselves (two
clusters that reused a VRID, or a cloud network's other tenants): their frames
go to a MAC the switch has not learnt, so it floods them to every port, ours
too (as it does until it learns, or when its table is full).  A sender in the
lab emits such adverts at ``rate`` per second, plus the adverts our master
sends us (10 per second, VRRPv3 100 ms).  In the backup's namespace, two capture
sockets with the router's kernel filter count what passes: one as a unicast
router has it (adverts to the group or to our address only, ``bpf.vrrp_filter``
with ``to``), one without that part (what the filter lets through for a
multicast router).  Every frame that passes is a wake-up of the router's thread.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from lab import Lab, LabError

US, MASTER, OTHER, THEIR_PEER = "192.0.2.2", "192.0.2.1", "192.0.2.8", "192.0.2.7"
UNKNOWN_MAC = "02:00:00:00:00:77"  # a MAC no port has used: flooded by the bridge

SENDER = """
import sys, time
from ipaddress import ip_address
from freevrrpd.core.packet import Advert, encode
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket
from freevrrpd.net.frames import vrrp_frame
rate, seconds, our_mac = float(sys.argv[1]), float(sys.argv[2]), bytes.fromhex(sys.argv[3])
def frame(src, dst, mac):
    src, dst = ip_address(src), ip_address(dst)
    adv = Advert(3, 1, 100, 10, (ip_address("192.0.2.254"),))
    return vrrp_frame(bytes.fromhex("020000000099"), src, dst, encode(adv, src, dst), dst_mac=mac)
noise = frame("{other}", "{their_peer}", bytes.fromhex("{unknown}"))
ours = frame("{master}", "{us}", our_mac)
end = time.monotonic() + seconds
step, next_ours = 1.0 / rate, time.monotonic()
with PacketSocket("eth0", ETH_P_ALL) as sock:
    t = time.monotonic()
    while t < end:
        sock.send(noise)
        if t >= next_ours:
            sock.send(ours)
            next_ours += 0.1
        t += step
        time.sleep(max(0.0, t - time.monotonic()))
""".format(other=OTHER, their_peer=THEIR_PEER, unknown=UNKNOWN_MAC.replace(":", ""),
           master=MASTER, us=US)

COUNTER = f"""
import json, select, sys, time
from ipaddress import ip_address
from freevrrpd.core.settings import VRRP_GROUP_V4
from freevrrpd.net.bpf import vrrp_filter
from freevrrpd.net.capture import ETH_P_ALL, PacketSocket
seconds = float(sys.argv[1])
socks = {{"with": PacketSocket("eth0", ETH_P_ALL, vrrp_filter(1, 4, to=(VRRP_GROUP_V4,
                                                                   ip_address("{US}")))),
         "without": PacketSocket("eth0", ETH_P_ALL, vrrp_filter(1, 4))}}
counts = dict.fromkeys(socks, 0)
print("ready", flush=True)
end = time.monotonic() + seconds
while (left := end - time.monotonic()) > 0:
    ready, _, _ = select.select([s.fileno() for s in socks.values()], [], [], left)
    for name, s in socks.items():
        if s.fileno() in ready:
            counts[name] += len(s.recv_all())
print(json.dumps(counts), flush=True)
"""


@dataclass
class BusyLanResult:
    rate: float  # flooded adverts per second between other routers
    seconds: float
    with_filter: float = 0.0  # frames per second that pass, i.e. wake the thread
    without_filter: float = 0.0
    error: str | None = None


def run_busy_lan(rate: float = 1000.0, seconds: float = 10.0) -> BusyLanResult:
    result = BusyLanResult(rate, seconds)
    with Lab() as lab:
        sw = lab.add_switch()
        backup = lab.add_host("r2", sw, f"{US}/24")
        sender = lab.add_host("noise", sw, f"{OTHER}/24")
        py = [sys.executable, "-c"]
        counter = backup.popen([*py, COUNTER, str(seconds + 1.0)], stdout=-1, stderr=None)
        assert counter.stdout is not None
        if counter.stdout.readline().strip() != b"ready":
            raise LabError("the counter did not start")
        sender.run([*py, SENDER, str(rate), str(seconds), backup.mac.replace(":", "")],
                   timeout=seconds + 30)
        out, _ = counter.communicate(timeout=30)
        counts = json.loads(out.decode().strip().splitlines()[-1])
        result.with_filter = counts["with"] / seconds
        result.without_filter = counts["without"] / seconds
    return result
