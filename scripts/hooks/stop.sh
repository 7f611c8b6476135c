#!/bin/sh
#
# Example stopscript for freevrrpd: run when a virtual router
# is shut down with the daemon (addresses released).
# In freevrrpd.conf:   stopscript = /usr/local/share/freevrrpd/hooks/stop.sh
#
# It logs the transition and records the state (see record-state.sh beside it
# for the variables freevrrpd passes and what is recorded), then runs the
# site-specific actions below.

. "$(dirname "$0")/record-state.sh"

# --- Site-specific actions: uncomment and adapt -----------------------------
# Stop what only the master should run:
#systemctl stop haproxy.service
exit 0
