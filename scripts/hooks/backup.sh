#!/bin/sh
#
# Example backupscript for freevrrpd: run when a virtual router
# becomes BACKUP (another router is master).
# In freevrrpd.conf:   backupscript = /usr/local/share/freevrrpd/hooks/backup.sh
#
# It logs the transition and records the state (see record-state.sh beside it
# for the variables freevrrpd passes and what is recorded), then runs the
# site-specific actions below.

. "$(dirname "$0")/record-state.sh"

# --- Site-specific actions: uncomment and adapt -----------------------------
# Stop what only the master should run:
#systemctl stop haproxy.service
#ip route del 203.0.113.0/24 via 192.0.2.254 dev "$FREEVRRPD_INTERFACE" 2>/dev/null
exit 0
