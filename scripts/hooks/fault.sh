#!/bin/sh
#
# Example faultscript for freevrrpd: run when a virtual router cannot take
# part (link down, address conflict, a failed VRID it depends on).
# In freevrrpd.conf:   faultscript = /usr/local/share/freevrrpd/hooks/fault.sh
#
# It logs the transition and records the state (see record-state.sh beside it
# for the variables freevrrpd passes and what is recorded), then runs the
# site-specific actions below.

. "$(dirname "$0")/record-state.sh"

# --- Site-specific actions: uncomment and adapt -----------------------------
# Someone should look at this router:
#curl -fsS -m 5 -d "$msg" https://monitoring.example/alert >/dev/null
# Stop what only the master should run (its addresses are already released):
#systemctl stop haproxy.service
exit 0
