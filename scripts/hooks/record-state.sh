#!/bin/sh
#
# Shared by the example hooks (master.sh, backup.sh, fault.sh, stop.sh), which
# source it; it can also serve alone as any of masterscript, backupscript,
# faultscript or stopscript.
#
# freevrrpd runs it through /bin/sh without waiting for it (the adverts go on),
# one script at a time per virtual router, and kills it after hooktimeout
# seconds (default 30).  Its output goes to freevrrpd's log.  It gets:
#
#   FREEVRRPD_VRID            virtual router id, 1..255
#   FREEVRRPD_INTERFACE       interface of the virtual router, e.g. eth0
#   FREEVRRPD_FAMILY          4 or 6
#   FREEVRRPD_STATE           the new state: MASTER, BACKUP, FAULT or STOPPED
#   FREEVRRPD_PREVIOUS_STATE  the state before: INIT, BACKUP, MASTER or FAULT
#   FREEVRRPD_PRIORITY        the router's priority, 1..255
#   FREEVRRPD_ADDRESSES       the virtual addresses: "ip/prefix ip/prefix ..."
#
# It logs the transition (syslog tag freevrrpd-hook, else stderr) and
# writes the state to $FREEVRRPD_STATE_DIR (default /run/freevrrpd), one file
# per virtual router: vrid-<VRID>-ipv<FAMILY>-<INTERFACE>.state, holding the
# line "STATE PRIORITY ADDRESSES", for monitoring or other scripts to read.
# Under the systemd unit only /run and a private /tmp are writable, and the
# capabilities are CAP_NET_ADMIN and CAP_NET_RAW; see freevrrpd(8).

set -u
: "${FREEVRRPD_VRID:?is not set: this script is meant to be run by freevrrpd}"

vr="VRID $FREEVRRPD_VRID on $FREEVRRPD_INTERFACE (IPv$FREEVRRPD_FAMILY)"
msg="$vr: $FREEVRRPD_PREVIOUS_STATE -> $FREEVRRPD_STATE,"
msg="$msg priority $FREEVRRPD_PRIORITY, addresses $FREEVRRPD_ADDRESSES"
logger -t freevrrpd-hook -p daemon.notice -- "$msg" 2>/dev/null || echo "$msg" >&2

dir=${FREEVRRPD_STATE_DIR:-/run/freevrrpd}
file="$dir/vrid-$FREEVRRPD_VRID-ipv$FREEVRRPD_FAMILY-$FREEVRRPD_INTERFACE.state"
mkdir -p "$dir" &&
	echo "$FREEVRRPD_STATE $FREEVRRPD_PRIORITY $FREEVRRPD_ADDRESSES" > "$file.tmp" &&
	mv -f "$file.tmp" "$file" || exit 1

