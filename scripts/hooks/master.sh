#!/bin/sh
#
# Example masterscript for freevrrpd: run when a virtual router
# becomes MASTER (it now holds the virtual addresses).
# In freevrrpd.conf:   masterscript = /usr/local/share/freevrrpd/hooks/master.sh
#
# It logs the transition and records the state (see record-state.sh beside it
# for the variables freevrrpd passes and what is recorded), then runs the
# site-specific actions below.

. "$(dirname "$0")/record-state.sh"

# --- Site-specific actions: uncomment and adapt -----------------------------
# Start the service the virtual addresses front, now that they are ours:
#systemctl start haproxy.service
# A route that only the master should carry:
#ip route replace 203.0.113.0/24 via 192.0.2.254 dev "$FREEVRRPD_INTERFACE"
# Tell a monitoring system:
#curl -fsS -m 5 -d "$msg" https://monitoring.example/vrrp >/dev/null
exit 0
